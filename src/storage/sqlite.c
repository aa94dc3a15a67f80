/*
 * sqlite.c — the SQLite storage backend (see storage.h for the contract):
 * opening the store, its files and schema, and the vtable.
 *
 * One table holds every document, keyed by (kind, ns, id). It is a
 * WITHOUT ROWID table, so the primary key is the table's own b-tree and a
 * listing of one (kind, ns) in id order is a range scan of it.
 *
 * Connections come from a small pool guarded by a mutex: a call takes an
 * idle connection (or opens one), uses it alone, and gives it back. That
 * keeps each sqlite3 handle on one thread at a time, lets a list callback
 * call back into the store (it simply gets another connection), and makes
 * close() able to reach every connection. Writers are serialized twice:
 * within the process by a writer gate (see sqlite_apply in sqlite_tx.c
 * for why), and against other processes by SQLite itself: apply() starts
 * with BEGIN IMMEDIATE, which takes the write lock up front (waiting up to
 * the busy timeout) instead of failing halfway.
 *
 * Failure policy: any SQLite error is logged (the SQLite message and the
 * operation, never ids or documents), the transaction is rolled back and
 * the caller gets K_E_STORE_UNAVAILABLE. The connection that saw the error
 * is closed instead of going back to the pool, so once the fault clears
 * (the lock is released, the disk has room again) the next call opens a
 * fresh connection and works. Errors that condemn the files themselves
 * fault the store until a write succeeds again (see sqlite_pool.c).
 *
 * The backend's files, one idea each:
 *   sqlite.c        opening: the data folder, the database file, the schema
 *                   migrations, the store's lifetime and its vtable;
 *   sqlite_conn.c   one connection: opening and setting it up, its
 *                   prepared statements, failure logging, key binding;
 *   sqlite_pool.c   the connection pool and the fault rules (reopening
 *                   the files by path, the reopen backoff);
 *   sqlite_tx.c     writes: apply, purge and scrub through the writer gate,
 *                   and the change feed they tell;
 *   sqlite_read.c   reads: get, list and the integrity check.
 * sqlite_internal.h holds what they share.
 */
#include "storage/sqlite_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/log.h"
#include "storage/feed.h"
#include "core/banned.h"

#define DB_FILE_NAME "kinko.db"
#define DIR_MAX 4096
/* The database path: folder, "/", file name, NUL. */
#define DB_PATH_MAX (DIR_MAX + 1 + NAME_MAX + 1)
#define DEFAULT_BUSY_MS 5000

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The schema migrations, in order: entry i brings user_version from i to
 * i + 1. All pending ones run in one transaction at open. A shipped entry
 * is never edited; a schema change is a new entry at the end.
 */
static const char *const migrations[] = {
	/* 1: the document table. */
	"CREATE TABLE docs ("
	" kind TEXT NOT NULL,"
	" ns TEXT NOT NULL,"
	" id TEXT NOT NULL,"
	" version INTEGER NOT NULL CHECK (version >= 1),"
	" doc BLOB NOT NULL,"
	" PRIMARY KEY (kind, ns, id)"
	") WITHOUT ROWID",
};

static const struct storage_vtbl sqlite_vtbl;

/*
 * Brings the schema up to date: all pending migrations and the new
 * user_version commit together or not at all. A database from a newer
 * build is refused, since this build cannot know what its schema means.
 */
static K_MUST_CHECK k_status migrate(struct sqlite_conn *c)
{
	k_status rc = K_OK;
	bool in_tx = false;
	int64_t have = 0;
	const int64_t want = (int64_t)ARRAY_LEN(migrations);

	GUARD_GOTO(sqlite_conn_run(c, ST_BEGIN, "begin migration"));
	in_tx = true;
	GUARD_GOTO(sqlite_conn_pragma_int(c, "PRAGMA user_version", &have));
	if (have > want) {
		LOG_ERROR("storage: the database has schema version %" PRId64
			  ", newer than this build's %" PRId64 "; refusing to open it",
			  have, want);
		rc = K_E_INTERNAL;
		goto out;
	}
	for (int64_t v = have; v < want; v++) {
		GUARD_GOTO(sqlite_conn_exec(c, migrations[v], "schema migration"));
		LOG_INFO("storage: applied schema migration %" PRId64, v + 1);
	}
	if (have < want) {
		/* PRAGMA takes no bound parameters; the number is ours. */
		char sql[64];
		snprintf(sql, sizeof sql, "PRAGMA user_version = %" PRId64, want);
		GUARD_GOTO(sqlite_conn_exec(c, sql, "set schema version"));
	}
	GUARD_GOTO(sqlite_conn_run(c, ST_COMMIT, "commit migration"));
	in_tx = false;
out:
	if (in_tx)
		sqlite_conn_rollback(c);
	return rc;
}

static K_MUST_CHECK k_status os_fail(const char *what, const char *path)
{
	char eb[128];
	const char *msg = strerror_r(errno, eb, sizeof eb);
	LOG_WARN("storage: cannot %s %s: %s", what, path, msg);
	return K_E_STORE_UNAVAILABLE;
}

/*
 * Creates the data folder 0700 if missing. mkdir applies the umask, so the
 * mode is set again explicitly. An existing folder is left as the operator
 * made it, with a warning if others can enter it.
 */
static K_MUST_CHECK k_status make_dir(const char *dir)
{
	struct stat sb;
	if (mkdir(dir, 0700) == 0) {
		if (chmod(dir, 0700) != 0)
			return os_fail("set the mode of", dir);
		return K_OK;
	}
	if (errno != EEXIST)
		return os_fail("create the data folder", dir);
	if (stat(dir, &sb) != 0)
		return os_fail("inspect the data folder", dir);
	if (!S_ISDIR(sb.st_mode)) {
		LOG_WARN("storage: %s is not a folder", dir);
		return K_E_STORE_UNAVAILABLE;
	}
	if ((sb.st_mode & 077) != 0)
		LOG_WARN("storage: the data folder %s is open to other users; mode 0700 is advised",
			 dir);
	return K_OK;
}

/*
 * Creates the database file with mode 0600 before SQLite sees it, rather
 * than letting SQLite create it under a temporarily narrowed umask: the
 * umask is process-wide, and other threads may be creating files. SQLite
 * gives the -wal and -shm files it creates the mode of the database file.
 * An existing file with a wider mode is narrowed: it holds key material.
 */
static K_MUST_CHECK k_status make_db_file(const char *path)
{
	k_status rc = K_OK;
	struct stat sb;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return os_fail("open", path);
	if (fstat(fd, &sb) != 0) {
		rc = os_fail("inspect", path);
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		LOG_WARN("storage: %s is not a regular file", path);
		rc = K_E_STORE_UNAVAILABLE;
		goto out;
	}
	if ((sb.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0)
		rc = os_fail("set the mode of", path);
out:
	close(fd);
	return rc;
}

/*
 * Makes the new file's directory entry durable. SQLite syncs the folder
 * when it creates the WAL, but not for a main database file it did not
 * create. Not fatal: some filesystems refuse to sync a folder.
 */
static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		k_ignore(os_fail("sync the folder", dir));
	if (fd >= 0)
		close(fd);
}

/* Closes every pooled connection and frees the store. */
static void store_free(struct sqlite_store *st)
{
	if (st == NULL)
		return;
	struct sqlite_conn *c = st->idle;
	while (c != NULL) {
		struct sqlite_conn *next = c->next;
		sqlite_conn_close(c);
		c = next;
	}
	if (st->n_open != st->n_idle)
		LOG_ERROR("storage: closed while %zu calls were still running",
			  st->n_open - st->n_idle);
	pthread_mutex_destroy(&st->mu);
	pthread_mutex_destroy(&st->write_mu);
	pthread_cond_destroy(&st->write_cv);
	storage_feed_release(&st->feed);
	kbuf_release(&st->path);
	free(st);
}

/* A condition variable whose timed waits run on the monotonic clock. */
static K_MUST_CHECK k_status write_cv_init(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	k_status rc = K_OK;
	ENSURE(pthread_condattr_init(&attr) == 0, K_E_INTERNAL);
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(cv, &attr) != 0)
		rc = K_E_INTERNAL;
	pthread_condattr_destroy(&attr);
	return rc;
}

static void sqlite_close(struct storage *s)
{
	store_free(store_of(s));
}

static K_MUST_CHECK k_status sqlite_subscribe(struct storage *s, storage_change_cb cb, void *arg)
{
	return storage_feed_add(&store_of(s)->feed, cb, arg);
}

/* One process's feed: the mark reaches this handle's subscribers only. */
static K_MUST_CHECK k_status sqlite_mark(struct storage *s, const char *token)
{
	GUARD(storage_mark_check(token));
	storage_feed_emit_mark(&store_of(s)->feed, token);
	return K_OK;
}

static const struct storage_vtbl sqlite_vtbl = {
	.get = sqlite_get,
	.apply = sqlite_apply,
	.list = sqlite_list,
	.check = sqlite_check,
	.close = sqlite_close,
	.purge = sqlite_purge,
	.scrub = sqlite_scrub,
	.subscribe = sqlite_subscribe,
	.kinds = sqlite_kinds,
	.mark = sqlite_mark,
};

k_status storage_sqlite_open(const char *dir, struct storage **out)
{
	return storage_sqlite_open_file(dir, DB_FILE_NAME, out);
}

/* The database file's name: one path component, not "." or "..". */
static bool file_name_ok(const char *file)
{
	size_t n = strnlen(file, NAME_MAX + 1);
	return n > 0 && n <= NAME_MAX && strchr(file, '/') == NULL && strcmp(file, ".") != 0 &&
	       strcmp(file, "..") != 0;
}

k_status storage_sqlite_open_file(const char *dir, const char *file, struct storage **out)
{
	k_status rc = K_OK;
	struct sqlite_store *st = NULL;
	struct sqlite_conn *c = NULL;

	ENSURE(dir != NULL && file != NULL && out != NULL, K_E_VALIDATION);
	*out = NULL;
	size_t dlen = strnlen(dir, DIR_MAX + 1);
	ENSURE(dlen > 0 && dlen <= DIR_MAX, K_E_VALIDATION);
	ENSURE(file_name_ok(file), K_E_VALIDATION);
	/* Handles move between threads (one at a time), which needs a thread-safe build. */
	ENSURE(sqlite3_threadsafe() != 0, K_E_INTERNAL);

	st = calloc(1, sizeof *st);
	ENSURE(st != NULL, K_E_INTERNAL);
	if (pthread_mutex_init(&st->mu, NULL) != 0) {
		free(st);
		BAIL(K_E_INTERNAL);
	}
	if (pthread_mutex_init(&st->write_mu, NULL) != 0) {
		pthread_mutex_destroy(&st->mu);
		free(st);
		BAIL(K_E_INTERNAL);
	}
	if (k_failed(write_cv_init(&st->write_cv))) {
		pthread_mutex_destroy(&st->write_mu);
		pthread_mutex_destroy(&st->mu);
		free(st);
		BAIL(K_E_INTERNAL);
	}
	if (k_failed(storage_feed_init(&st->feed))) {
		pthread_cond_destroy(&st->write_cv);
		pthread_mutex_destroy(&st->write_mu);
		pthread_mutex_destroy(&st->mu);
		free(st);
		BAIL(K_E_INTERNAL);
	}
	st->base.vt = &sqlite_vtbl;
	st->busy_ms = DEFAULT_BUSY_MS;
	kbuf_init(&st->path, DB_PATH_MAX);
	GUARD_GOTO(kbuf_appendf(&st->path, "%s/%s", dir, file));

	GUARD_GOTO(make_dir(dir));
	GUARD_GOTO(make_db_file(kbuf_cstr(&st->path)));
	GUARD_GOTO(sqlite_pool_acquire(st, true, &c));
	GUARD_GOTO(migrate(c));
	sync_dir(dir);

	*out = &st->base;
out:
	sqlite_pool_release(st, c);
	if (k_failed(rc))
		store_free(st);
	return rc;
}

k_status storage_sqlite_set_busy_timeout_ms(struct storage *s, int ms)
{
	ENSURE(s != NULL && s->vt == &sqlite_vtbl, K_E_VALIDATION);
	ENSURE(ms >= 0, K_E_VALIDATION);
	struct sqlite_store *st = store_of(s);
	pthread_mutex_lock(&st->mu);
	st->busy_ms = ms;
	pthread_mutex_unlock(&st->mu);
	return K_OK;
}
