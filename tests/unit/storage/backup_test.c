/*
 * backup_test.c — storage_backup (storage.h): a consistent, checked,
 * self-contained copy of a SQLite store taken while writers go on.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"
#include "testlib.h"
#include "core/banned.h"

static char tmp_root[] = "/tmp/kinko-backup-test-XXXXXX";

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmp_root, name);
}

static struct storage *open_dir(const char *name)
{
	char dir[256];
	path_of(dir, sizeof dir, name);
	struct storage *s = NULL;
	CHECK_STATUS(storage_sqlite_open(dir, &s), K_OK);
	return s;
}

static K_MUST_CHECK k_status put(struct storage *s, const char *kind, const char *id,
				 const char *doc)
{
	struct storage_op op = {STORAGE_PUT,	  kind,		 "111122223333:us-east-1", id,
				kslice_cstr(doc), STORAGE_ABSENT};
	return storage_apply(s, &op, 1);
}

struct counts {
	char kinds[4][16];
	uint64_t n[4];
	size_t len;
};

static K_MUST_CHECK k_status count_cb(void *arg, const char *kind, uint64_t n)
{
	struct counts *c = arg;
	if (c->len == 4)
		return K_E_LIMIT_EXCEEDED;
	snprintf(c->kinds[c->len], sizeof c->kinds[0], "%s", kind);
	c->n[c->len++] = n;
	return K_OK;
}

struct writer {
	struct storage *s;
	atomic_bool stop;
	unsigned written;
};

static void *write_loop(void *arg)
{
	struct writer *w = arg;
	char id[32];
	while (!atomic_load(&w->stop) && w->written < 5000) {
		snprintf(id, sizeof id, "w%06u", w->written);
		if (k_failed(put(w->s, "secret", id, "{\"v\":1}")))
			break;
		w->written++;
	}
	return NULL;
}

static K_MUST_CHECK k_status count_list(void *arg, const char *ns, const char *id,
					struct kslice doc, int64_t version)
{
	(void)ns;
	(void)id;
	(void)doc;
	(void)version;
	(*(unsigned *)arg)++;
	return K_OK;
}

/* A copy taken under a writer holds every record committed before it, in counts that match. */
static void test_backup_while_writing(void)
{
	struct storage *s = open_dir("live");
	char id[32];
	for (unsigned i = 0; i < 50; i++) {
		snprintf(id, sizeof id, "k%03u", i);
		CHECK_STATUS(put(s, "key", id, "{\"KeyId\":\"x\"}"), K_OK);
	}
	struct writer w = {.s = s};
	atomic_init(&w.stop, false);
	pthread_t t;
	CHECK_EQ_INT(pthread_create(&t, NULL, write_loop, &w), 0);
	usleep(20000);
	char copy[256];
	path_of(copy, sizeof copy, "copy.db");
	struct counts c = {0};
	struct kbuf why;
	kbuf_init(&why, 1024);
	k_status rc = storage_backup(s, copy, count_cb, &c, &why);
	atomic_store(&w.stop, true);
	pthread_join(t, NULL);
	CHECK_STATUS(rc, K_OK);
	CHECK_EQ_INT((int)c.len, 2);
	CHECK_STR(c.kinds[0], "key");
	CHECK_EQ_INT((int)c.n[0], 50);
	CHECK_STR(c.kinds[1], "secret");
	CHECK(c.n[1] <= w.written);

	/* One self-contained file, mode 0600, no WAL beside it. */
	struct stat sb;
	CHECK_EQ_INT(stat(copy, &sb), 0);
	CHECK_EQ_INT((int)(sb.st_mode & 0777), 0600);
	char wal[300];
	snprintf(wal, sizeof wal, "%s-wal", copy);
	CHECK(access(wal, F_OK) != 0);

	/* The copy opens as a store and lists what the counts said. */
	struct storage *b = NULL;
	CHECK_STATUS(storage_sqlite_open_file(tmp_root, "copy.db", &b), K_OK);
	if (b != NULL) {
		CHECK_STATUS(storage_check(b), K_OK);
		unsigned keys = 0, secrets = 0;
		CHECK_STATUS(storage_list(b, "key", NULL, NULL, NULL, 0, count_list, &keys), K_OK);
		CHECK_STATUS(storage_list(b, "secret", NULL, NULL, NULL, 0, count_list, &secrets),
			     K_OK);
		CHECK_EQ_INT((int)keys, 50);
		CHECK_EQ_INT((int)secrets, (int)c.n[1]);
		storage_close(b);
	}
	kbuf_release(&why);
	storage_close(s);
}

/* An existing destination is never overwritten; bad arguments are refused. */
static void test_refusals(void)
{
	struct storage *s = open_dir("refuse");
	CHECK_STATUS(put(s, "key", "a", "{}"), K_OK);
	char dest[256];
	path_of(dest, sizeof dest, "exists.db");
	FILE *f = fopen(dest, "w");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs("keep me", f);
		fclose(f);
	}
	struct kbuf why;
	kbuf_init(&why, 1024);
	CHECK_STATUS(storage_backup(s, dest, NULL, NULL, &why), K_E_STORE_UNAVAILABLE);
	CHECK(strstr(kbuf_cstr(&why), "cannot create") != NULL);
	struct stat sb;
	CHECK_EQ_INT(stat(dest, &sb), 0);
	CHECK_EQ_INT((int)sb.st_size, 7);
	CHECK_STATUS(storage_backup(s, "", NULL, NULL, &why), K_E_VALIDATION);
	CHECK_STATUS(storage_backup(NULL, dest, NULL, NULL, &why), K_E_VALIDATION);
	/* A callback's refusal stops the backup and removes the partial copy. */
	path_of(dest, sizeof dest, "stopped.db");
	struct counts full = {.len = 4};
	CHECK_STATUS(storage_backup(s, dest, count_cb, &full, &why), K_E_LIMIT_EXCEEDED);
	CHECK(access(dest, F_OK) != 0);
	kbuf_release(&why);
	storage_close(s);
}

/* A backend other than SQLite answers K_E_UNSUPPORTED. */
static K_MUST_CHECK k_status other_check(struct storage *s)
{
	(void)s;
	return K_OK;
}

static void test_other_backend(void)
{
	static const struct storage_vtbl vt = {.check = other_check};
	struct storage other = {.vt = &vt};
	char dest[256];
	path_of(dest, sizeof dest, "other.db");
	struct kbuf why;
	kbuf_init(&why, 1024);
	CHECK_STATUS(storage_backup(&other, dest, NULL, NULL, &why), K_E_UNSUPPORTED);
	CHECK(access(dest, F_OK) != 0);
	kbuf_release(&why);
}

int main(void)
{
	if (mkdtemp(tmp_root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_backup_while_writing);
	RUN(test_refusals);
	RUN(test_other_backend);
	tl_remove_tree(tmp_root);
	return tl_summary();
}
