/*
 * sqlite_test.c — the SQLite storage backend: the storage.h contract
 * (contract.c), then what only SQLite does: durability across a kill,
 * file modes, the schema, concurrent writers in one process, a store
 * locked by another writer, and damage found by the integrity check.
 * Every test works in its own folder under a temporary directory that is
 * removed at the end.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "storage/storage.h"
#include "storage/contract.h"
#include "testlib.h"
#include "core/banned.h"

static char tmp_root[] = "/tmp/kinko-storage-test-XXXXXX";

/* Room for the few rows of one EXPLAIN QUERY PLAN, as text. */
#define QUERY_PLAN_MAX 4096u

/* The path of a test's folder, or of a file inside it (name may be NULL). */
static void test_path(char *out, size_t n, const char *dir, const char *name)
{
	if (name != NULL)
		snprintf(out, n, "%s/%s/%s", tmp_root, dir, name);
	else
		snprintf(out, n, "%s/%s", tmp_root, dir);
}

static struct storage *open_store(const char *dir)
{
	char path[256];
	struct storage *s = NULL;
	test_path(path, sizeof path, dir, NULL);
	k_status rc = storage_sqlite_open(path, &s);
	CHECK_STATUS(rc, K_OK);
	return k_ok(rc) ? s : NULL;
}

static mode_t mode_of(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		return (mode_t)-1;
	return sb.st_mode & 07777;
}

/* The storage.h contract (contract.c) on a store of its own. */
static void test_contract(void)
{
	struct storage *s = open_store("contract");
	if (s == NULL)
		return;
	contract_run(s);
	storage_close(s);
}

static void test_durability(void)
{
	struct storage *s = open_store("durable");
	char doc[64], out[256];
	int64_t v = 0;
	if (s == NULL)
		return;
	CHECK_STATUS(put(s, "key", "ns", "k1", "kept", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "key", "ns", "k1", "kept2", 1), K_OK);
	CHECK_STATUS(put(s, "key", "ns", "k2", "gone", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(del(s, "key", "ns", "k2", 1), K_OK);
	storage_close(s);

	s = open_store("durable");
	if (s == NULL)
		return;
	CHECK_STATUS(get_str(s, "key", "ns", "k1", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "kept2");
	CHECK_EQ_INT(v, 2);
	CHECK_STATUS(list_str(s, "key", "ns", NULL, NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "k1");
	CHECK_STATUS(storage_check(s), K_OK);
	storage_close(s);

	/* an acknowledged write survives the process being killed without closing */
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct storage *cs = NULL;
		char path[256];
		test_path(path, sizeof path, "durable", NULL);
		if (k_failed(storage_sqlite_open(path, &cs)) ||
		    k_failed(put(cs, "key", "ns", "k3", "acked", STORAGE_ABSENT)))
			_exit(3);
		raise(SIGKILL);
		_exit(4);
	}
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	s = open_store("durable");
	if (s == NULL)
		return;
	CHECK_STATUS(get_str(s, "key", "ns", "k3", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "acked");
	CHECK_STATUS(storage_check(s), K_OK);
	storage_close(s);
}

/* Opens a store under the given umask and checks the modes it leaves. */
static void check_modes_under_umask(const char *dir, mode_t mask)
{
	char path[256];
	mode_t old = umask(mask);
	struct storage *s = open_store(dir);
	umask(old);
	if (s == NULL)
		return;
	CHECK_STATUS(put(s, "key", "ns", "k", "{}", STORAGE_ABSENT), K_OK);
	test_path(path, sizeof path, dir, NULL);
	CHECK_EQ_INT(mode_of(path), 0700);
	test_path(path, sizeof path, dir, "kinko.db");
	CHECK_EQ_INT(mode_of(path), 0600);
	/* SQLite's companions, present while the store is open */
	test_path(path, sizeof path, dir, "kinko.db-wal");
	CHECK_EQ_INT(mode_of(path), 0600);
	test_path(path, sizeof path, dir, "kinko.db-shm");
	CHECK_EQ_INT(mode_of(path), 0600);
	storage_close(s);
}

static void test_file_modes(void)
{
	char path[256];
	/* a permissive umask must not widen the modes, a strict one not narrow them */
	check_modes_under_umask("modes-open", 0);
	check_modes_under_umask("modes-strict", 0277);

	/* an existing database file with a wide mode is narrowed */
	test_path(path, sizeof path, "modes-wide", NULL);
	CHECK(mkdir(path, 0700) == 0);
	test_path(path, sizeof path, "modes-wide", "kinko.db");
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	CHECK(chmod(path, 0644) == 0);
	struct storage *s = open_store("modes-wide");
	CHECK_EQ_INT(mode_of(path), 0600);
	storage_close(s);

	/* only the last folder is created; a file in the way is refused */
	s = NULL;
	test_path(path, sizeof path, "no-such-parent", "data");
	CHECK_STATUS(storage_sqlite_open(path, &s), K_E_STORE_UNAVAILABLE);
	CHECK(s == NULL);
	test_path(path, sizeof path, "modes-wide", "kinko.db");
	CHECK_STATUS(storage_sqlite_open(path, &s), K_E_STORE_UNAVAILABLE);
	CHECK(s == NULL);
	CHECK_STATUS(storage_sqlite_open("", &s), K_E_VALIDATION);
	CHECK_STATUS(storage_sqlite_open(NULL, &s), K_E_VALIDATION);
}

static void test_schema(void)
{
	char path[256];
	struct storage *s = open_store("schema");
	if (s == NULL)
		return;
	storage_close(s);

	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	test_path(path, sizeof path, "schema", "kinko.db");
	CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_EQ_INT(sqlite3_column_int64(st, 0), 1);
	sqlite3_finalize(st);
	CHECK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_STR((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);

	/* a listing of one (kind, ns) in id order is a search of the primary key, no sort */
	CHECK(sqlite3_prepare_v2(db,
				 "EXPLAIN QUERY PLAN SELECT ns, id, version, doc FROM docs"
				 " WHERE kind = ?1 AND ns = ?2 AND id >= ?3 ORDER BY id",
				 -1, &st, NULL) == SQLITE_OK);
	struct kbuf plan;
	kbuf_init(&plan, QUERY_PLAN_MAX);
	while (sqlite3_step(st) == SQLITE_ROW) {
		CHECK(k_ok(kbuf_append_str(&plan, (const char *)sqlite3_column_text(st, 3))));
		CHECK(k_ok(kbuf_append_byte(&plan, ';')));
	}
	sqlite3_finalize(st);
	CHECK(strstr(kbuf_cstr(&plan), "PRIMARY KEY") != NULL);
	CHECK(strstr(kbuf_cstr(&plan), "TEMP B-TREE") == NULL);
	kbuf_release(&plan);

	/* reopening applies no migration twice; a newer schema is refused */
	s = open_store("schema");
	storage_close(s);
	CHECK(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
	s = NULL;
	test_path(path, sizeof path, "schema", NULL);
	CHECK_STATUS(storage_sqlite_open(path, &s), K_E_INTERNAL);
	CHECK(s == NULL);
	sqlite3_close(db);
}

/* Each worker increments a shared counter n times, retrying on conflicts. */
struct worker {
	struct storage *s;
	int index;
	int n;
	int conflicts;
	k_status err;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char doc[32], id[32];
	for (int i = 0; i < w->n && k_ok(w->err); i++) {
		for (;;) {
			int64_t v = 0;
			k_status rc = get_str(w->s, "ctr", "ns", "counter", doc, sizeof doc, &v);
			if (k_failed(rc)) {
				w->err = rc;
				break;
			}
			long long x = strtoll(doc, NULL, 10);
			snprintf(doc, sizeof doc, "%lld", x + 1);
			snprintf(id, sizeof id, "w%d-%03d", w->index, i);
			struct storage_op ops[2] = {
				{STORAGE_PUT, "ctr", "ns", "counter", kslice_cstr(doc), v},
				{STORAGE_PUT, "mine", "ns", id, KSLICE_LIT("{}"), STORAGE_ABSENT},
			};
			rc = storage_apply(w->s, ops, 2);
			if (k_ok(rc))
				break;
			if (!k_is(rc, K_E_CONFLICT)) {
				w->err = rc;
				break;
			}
			w->conflicts++;
		}
	}
	return NULL;
}

static K_MUST_CHECK k_status count_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				      int64_t version)
{
	(*(size_t *)arg)++;
	return K_OK;
}

static void test_concurrent_writers(void)
{
	enum {
		THREADS = 4,
		PER_THREAD = 40
	};
	struct storage *s = open_store("concurrent");
	struct worker w[THREADS];
	pthread_t t[THREADS];
	char doc[32];
	int64_t v = 0;
	if (s == NULL)
		return;
	CHECK_STATUS(put(s, "ctr", "ns", "counter", "0", STORAGE_ABSENT), K_OK);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){s, i, PER_THREAD, 0, K_OK};
		CHECK(pthread_create(&t[i], NULL, worker_main, &w[i]) == 0);
	}
	int conflicts = 0;
	for (int i = 0; i < THREADS; i++) {
		CHECK(pthread_join(t[i], NULL) == 0);
		CHECK_STATUS(w[i].err, K_OK);
		conflicts += w[i].conflicts;
	}
	CHECK_STATUS(get_str(s, "ctr", "ns", "counter", doc, sizeof doc, &v), K_OK);
	CHECK_EQ_INT(strtoll(doc, NULL, 10), THREADS * PER_THREAD);
	CHECK_EQ_INT(v, THREADS * PER_THREAD + 1);
	size_t n = 0;
	CHECK_STATUS(storage_list(s, "mine", "ns", NULL, NULL, 0, count_cb, &n), K_OK);
	CHECK_EQ_INT(n, THREADS * PER_THREAD);
	printf("concurrent writers: %d conflicts retried\n", conflicts);
	CHECK_STATUS(storage_check(s), K_OK);
	storage_close(s);
}

/* Each writer puts its own records: no conflicts, only contention. */
struct plain_writer {
	struct storage *s;
	int index;
	int per_thread;
	int failures;
};

static void *plain_writer_main(void *arg)
{
	struct plain_writer *w = arg;
	char id[32];
	for (int i = 0; i < w->per_thread; i++) {
		snprintf(id, sizeof id, "p%02d-%02d", w->index, i);
		if (k_failed(put(w->s, "plain", "ns", id, "{}", STORAGE_ABSENT)))
			w->failures++;
	}
	return NULL;
}

/*
 * Many writers of one process, at the default busy timeout: none may fail,
 * and the pool grows past its idle cap and shrinks back. (Left to SQLite's
 * polling busy handler, 32 writers starve each other, one waiting for most
 * of the run; the writer gate fixes that. Timing on a shared machine is too
 * noisy to assert the difference here, so this checks only that nobody fails.)
 */
static void test_many_writers_no_timeouts(void)
{
	enum {
		THREADS = 32,
		PER_THREAD = 25
	};
	struct storage *s = open_store("manywriters");
	struct plain_writer w[THREADS];
	pthread_t t[THREADS];
	if (s == NULL)
		return;
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct plain_writer){s, i, PER_THREAD, 0};
		CHECK(pthread_create(&t[i], NULL, plain_writer_main, &w[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++) {
		CHECK(pthread_join(t[i], NULL) == 0);
		CHECK_EQ_INT(w[i].failures, 0);
	}
	size_t n = 0;
	CHECK_STATUS(storage_list(s, "plain", "ns", NULL, NULL, 0, count_cb, &n), K_OK);
	CHECK_EQ_INT(n, THREADS * PER_THREAD);
	storage_close(s);
}

/* Reads a whole small file into out (NUL-terminated). */
static void read_file(const char *path, char *out, size_t n)
{
	out[0] = '\0';
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	size_t got = fread(out, 1, n - 1, f);
	out[got] = '\0';
	fclose(f);
}

/*
 * A writer that cannot get the lock (here another connection holds it, as
 * a stuck process or a read-only disk would stop writes) fails with
 * K_E_STORE_UNAVAILABLE after the busy timeout, applies nothing, logs
 * without document contents, and the store works again once the lock goes.
 */
static void test_locked_store_recovers(void)
{
	char path[256], logpath[256], log[4096], doc[64];
	int64_t v = 0;
	struct storage *s = open_store("locked");
	if (s == NULL)
		return;
	CHECK_STATUS(put(s, "key", "ns", "k", "SECRET-DOC-1", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(storage_sqlite_set_busy_timeout_ms(s, -1), K_E_VALIDATION);
	CHECK_STATUS(storage_sqlite_set_busy_timeout_ms(s, 150), K_OK);

	sqlite3 *holder = NULL;
	test_path(path, sizeof path, "locked", "kinko.db");
	CHECK(sqlite3_open_v2(path, &holder, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
	CHECK(sqlite3_exec(holder, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK);

	/* capture the log while the writes fail */
	test_path(logpath, sizeof logpath, "locked", "log.txt");
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	int lfd = open(logpath, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	CHECK(saved >= 0 && lfd >= 0);
	dup2(lfd, STDERR_FILENO);

	int64_t t0 = now_ms();
	k_status rc1 = put(s, "key", "ns", "k", "SECRET-DOC-2", 1);
	int64_t waited = now_ms() - t0;
	struct storage_op batch[2] = {
		{STORAGE_PUT, "key", "ns", "new", KSLICE_LIT("SECRET-DOC-3"), STORAGE_ABSENT},
		{STORAGE_DEL, "key", "ns", "k", {NULL, 0}, STORAGE_ANY},
	};
	k_status rc2 = storage_apply(s, batch, 2);

	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(lfd);
	CHECK_STATUS(rc1, K_E_STORE_UNAVAILABLE);
	CHECK_STATUS(rc2, K_E_STORE_UNAVAILABLE);
	CHECK(waited >= 140);
	read_file(logpath, log, sizeof log);
	CHECK(strstr(log, "storage") != NULL);
	CHECK(strstr(log, "locked") != NULL);
	CHECK(strstr(log, "SECRET-DOC") == NULL);

	/* readers are not blocked by a writer (WAL), and see nothing applied */
	CHECK_STATUS(get_str(s, "key", "ns", "k", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "SECRET-DOC-1");
	CHECK_EQ_INT(v, 1);
	CHECK_STATUS(storage_get(s, "key", "ns", "new", NULL, NULL), K_E_NOT_FOUND);

	CHECK(sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(holder);

	CHECK_STATUS(put(s, "key", "ns", "k", "SECRET-DOC-2", 1), K_OK);
	CHECK_STATUS(storage_apply(s, batch, 2), K_OK);
	CHECK_STATUS(storage_get(s, "key", "ns", "new", NULL, &v), K_OK);
	CHECK_EQ_INT(v, 1);
	CHECK_STATUS(storage_get(s, "key", "ns", "k", NULL, NULL), K_E_NOT_FOUND);
	CHECK_STATUS(storage_check(s), K_OK);
	storage_close(s);
}

/* Damaged pages are found by the integrity check. */
static void test_integrity_damage(void)
{
	char path[256], id[16];
	uint8_t filler[1000];
	struct storage *s = open_store("damaged");
	if (s == NULL)
		return;
	memset(filler, 'd', sizeof filler);
	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof id, "id%04d", i);
		struct storage_op op = {
			STORAGE_PUT,   "key", "ns", id, kslice_make(filler, sizeof filler),
			STORAGE_ABSENT};
		CHECK_STATUS(storage_apply(s, &op, 1), K_OK);
	}
	CHECK_STATUS(storage_check(s), K_OK);
	storage_close(s); /* the last close checkpoints the WAL into the file */

	test_path(path, sizeof path, "damaged", "kinko.db");
	int fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	uint8_t junk[4096];
	memset(junk, 0x5a, sizeof junk);
	for (off_t page = 2; page < 8; page++)
		CHECK(pwrite(fd, junk, sizeof junk, page * 4096) == (ssize_t)sizeof junk);
	close(fd);

	fflush(stderr);
	s = open_store("damaged");
	if (s == NULL)
		return;
	CHECK_STATUS(storage_check(s), K_E_INTERNAL);
	storage_close(s);
}

int main(void)
{
	if (mkdtemp(tmp_root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_contract);
	RUN(test_durability);
	RUN(test_file_modes);
	RUN(test_schema);
	RUN(test_concurrent_writers);
	RUN(test_many_writers_no_timeouts);
	RUN(test_locked_store_recovers);
	RUN(test_integrity_damage);
	tl_remove_tree(tmp_root);
	return tl_summary();
}
