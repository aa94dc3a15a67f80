/*
 * open_test.c — storage_open: the store URL picks the backend, and a URL
 * that names none is refused with a reason.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"
#include "testlib.h"
#include "core/banned.h"

static char tmp_root[] = "/tmp/kinko-open-test-XXXXXX";

/* Whether tmp_root/name exists. */
static bool exists(const char *name)
{
	char path[512];
	struct stat sb;
	snprintf(path, sizeof path, "%s/%s", tmp_root, name);
	return stat(path, &sb) == 0;
}

/*
 * Opens the URL `scheme` + tmp_root + "/" + rest (rest NULL: scheme alone),
 * writes and reads one record back; on failure checks that the reason
 * holds why_has.
 */
static K_MUST_CHECK k_status open_and_use(const char *scheme, const char *rest, const char *why_has)
{
	char url[512];
	struct storage *s = NULL;
	struct kbuf why;
	kbuf_init(&why, 1024);
	if (rest != NULL)
		snprintf(url, sizeof url, "%s%s/%s", scheme, tmp_root, rest);
	else
		snprintf(url, sizeof url, "%s", scheme);
	k_status rc = storage_open(url, &s, &why);
	if (k_ok(rc)) {
		struct storage_op op = {STORAGE_PUT,	   "key",      "ns", "k",
					kslice_cstr("{}"), STORAGE_ANY};
		CHECK_STATUS(storage_apply(s, &op, 1), K_OK);
		CHECK_STATUS(storage_get(s, "key", "ns", "k", NULL, NULL), K_OK);
		storage_close(s);
	} else {
		CHECK(s == NULL);
		CHECK(why.len > 0);
		if (why_has != NULL && strstr(kbuf_cstr(&why), why_has) == NULL) {
			fprintf(stderr, "  reason: %s\n", kbuf_cstr(&why));
			CHECK(strstr(kbuf_cstr(&why), why_has) != NULL);
		}
	}
	kbuf_release(&why);
	return rc;
}

static void test_sqlite_folder(void)
{
	CHECK_STATUS(open_and_use("sqlite:", "a", NULL), K_OK);
	CHECK(exists("a/kinko.db"));
	/* The same folder again, as a bare path and with an empty authority. */
	CHECK_STATUS(open_and_use("", "a", NULL), K_OK);
	CHECK_STATUS(open_and_use("sqlite://", "a", NULL), K_OK);
	CHECK_STATUS(open_and_use("SQLite:", "a/", NULL), K_OK);
	CHECK(!exists("a/a"));
}

static void test_sqlite_file(void)
{
	CHECK_STATUS(open_and_use("sqlite:", "b/store.db", NULL), K_OK);
	CHECK(exists("b/store.db"));
	CHECK(!exists("b/kinko.db"));
	CHECK_STATUS(open_and_use("", "b/other.db", NULL), K_OK);
	CHECK(exists("b/other.db"));
}

static void test_sqlite_relative(void)
{
	char cwd[512];
	CHECK(getcwd(cwd, sizeof cwd) != NULL);
	CHECK_EQ_INT(chdir(tmp_root), 0);
	struct storage *s = NULL;
	CHECK_STATUS(storage_open("sqlite:rel.db", &s, NULL), K_OK);
	storage_close(s);
	CHECK(exists("rel.db"));
	CHECK_STATUS(storage_open("reldir", &s, NULL), K_OK);
	storage_close(s);
	CHECK(exists("reldir/kinko.db"));
	CHECK_EQ_INT(chdir(cwd), 0);
}

/* Both schemes reach the PostgreSQL backend (a server that is not there:
 * port 1 refuses at once); a URL libpq cannot parse is refused as such.
 * pg_test.c checks the backend against a real server. */
static void test_postgresql_urls(void)
{
	CHECK_STATUS(open_and_use("postgresql://kinko@127.0.0.1:1/kinko", NULL, "cannot connect"),
		     K_E_STORE_UNAVAILABLE);
	CHECK_STATUS(open_and_use("postgres://127.0.0.1:1/kinko", NULL, "cannot connect"),
		     K_E_STORE_UNAVAILABLE);
	CHECK_STATUS(open_and_use("postgresql://[::1", NULL, "not valid"), K_E_VALIDATION);
}

static void test_bad_urls(void)
{
	struct storage *s = (struct storage *)1;
	CHECK_STATUS(storage_open(NULL, &s, NULL), K_E_VALIDATION);
	CHECK(s == NULL);
	CHECK_STATUS(storage_open("", &s, NULL), K_E_VALIDATION);
	CHECK_STATUS(storage_open("x", NULL, NULL), K_E_VALIDATION);
	CHECK_STATUS(open_and_use("sqlite:", NULL, "no path"), K_E_VALIDATION);
	CHECK_STATUS(open_and_use("sqlite://", NULL, "no host"), K_E_VALIDATION);
	CHECK_STATUS(open_and_use("sqlite://host/", "x", "no host"), K_E_VALIDATION);
	CHECK_STATUS(open_and_use("mysql://db/kinko", NULL, "unknown store scheme \"mysql\""),
		     K_E_VALIDATION);
	CHECK_STATUS(open_and_use("file:", "c", "unknown store scheme"), K_E_VALIDATION);
	CHECK(!exists("c"));
	/* Too long. */
	char *big = malloc(8192);
	if (big != NULL) {
		memset(big, 'a', 8191);
		big[8191] = 0;
		memcpy(big, "sqlite:", 7);
		CHECK_STATUS(storage_open(big, &s, NULL), K_E_VALIDATION);
		free(big);
	}
	/* A folder that cannot be made: the backend's error, with a reason. */
	CHECK_STATUS(open_and_use("sqlite:", "no/such/parent", "cannot open"),
		     K_E_STORE_UNAVAILABLE);
}

/* The folder a store keeps its files in, which kinko serve locks. */
static void test_local_dir(void)
{
	char dir[64];
	CHECK_STATUS(storage_local_dir("sqlite:/var/lib/kinko", dir, sizeof dir), K_OK);
	CHECK_STR(dir, "/var/lib/kinko");
	CHECK_STATUS(storage_local_dir("sqlite:/srv/keys/store.db", dir, sizeof dir), K_OK);
	CHECK_STR(dir, "/srv/keys");
	CHECK_STATUS(storage_local_dir("sqlite:///abs/x.db", dir, sizeof dir), K_OK);
	CHECK_STR(dir, "/abs");
	CHECK_STATUS(storage_local_dir("store.db", dir, sizeof dir), K_OK);
	CHECK_STR(dir, ".");
	CHECK_STATUS(storage_local_dir("./data", dir, sizeof dir), K_OK);
	CHECK_STR(dir, "./data");
	CHECK_STATUS(storage_local_dir("/x.db", dir, sizeof dir), K_OK);
	CHECK_STR(dir, "/");
	CHECK_STATUS(storage_local_dir("postgresql://db/kinko", dir, sizeof dir), K_E_UNSUPPORTED);
	CHECK_STATUS(storage_local_dir("mysql://db/kinko", dir, sizeof dir), K_E_UNSUPPORTED);
	CHECK_STATUS(storage_local_dir("sqlite:", dir, sizeof dir), K_E_VALIDATION);
	CHECK_STATUS(storage_local_dir("sqlite://host/x", dir, sizeof dir), K_E_VALIDATION);
	CHECK_STATUS(storage_local_dir("sqlite:/a/very/long/folder/name/that/does/not/fit/in/the/"
				       "sixty/four/bytes/given",
				       dir, sizeof dir),
		     K_E_VALIDATION);
}

int main(void)
{
	if (mkdtemp(tmp_root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_sqlite_folder);
	RUN(test_sqlite_file);
	RUN(test_sqlite_relative);
	RUN(test_postgresql_urls);
	RUN(test_bad_urls);
	RUN(test_local_dir);
	tl_remove_tree(tmp_root);
	return tl_summary();
}
