/*
 * sqlite_conn.c — one SQLite connection of the storage backend: opening
 * and setting it up, its prepared statements, how a failure is logged and
 * marks it, and the checking and binding of record keys.
 *
 * Failure policy: any SQLite error is logged (the SQLite message and the
 * operation, never ids or documents), the transaction is rolled back and
 * the caller gets K_E_STORE_UNAVAILABLE. The connection that saw the error
 * is closed instead of going back to the pool, so once the fault clears
 * (the lock is released, the disk has room again) the next call opens a
 * fresh connection and works.

 */
#include "storage/sqlite_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "core/log.h"
#include "core/banned.h"

/*
 * Statements prepared once per connection. Key parameters are always
 * ?1 kind, ?2 ns, ?3 id. The list statements take ?3 as an inclusive lower
 * bound on id; the exclusive "after" and the prefix end are applied while
 * stepping (see list_rows in sqlite_read.c), so that SQLite has one range
 * term to seek by.
 */
static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_VERSION] = "SELECT version FROM docs WHERE kind = ?1 AND ns = ?2 AND id = ?3",
	[ST_GET] = "SELECT version, doc FROM docs WHERE kind = ?1 AND ns = ?2 AND id = ?3",
	[ST_INSERT] = "INSERT INTO docs (kind, ns, id, version, doc) VALUES (?1, ?2, ?3, 1, ?4)",
	[ST_UPDATE] = "UPDATE docs SET version = version + 1, doc = ?4"
		      " WHERE kind = ?1 AND ns = ?2 AND id = ?3",
	[ST_DELETE] = "DELETE FROM docs WHERE kind = ?1 AND ns = ?2 AND id = ?3",
	[ST_LIST_NS] = "SELECT ns, id, version, doc FROM docs"
		       " WHERE kind = ?1 AND ns = ?2 AND id >= ?3 ORDER BY id",
	[ST_LIST_ALL] = "SELECT ns, id, version, doc FROM docs"
			" WHERE kind = ?1 AND id >= ?3 ORDER BY ns, id",
};

/*
 * Whether a SQLite result code means the files behind the connection went
 * bad, so that the store should reopen them by path (the fault rules are
 * in sqlite_pool.c). Read-only (the filesystem or the file, incl.
 * READONLY_DBMOVED: the file was moved or unlinked under us), any I/O
 * error except running out of memory, cannot open, damaged or not a
 * database (a reopen may find a restored file). Never a lock (BUSY, LOCKED: the files are fine, someone
 * else holds them) nor a full disk (the same files work once there is room).
 */
static bool bad_files(int src)
{
	switch (src & 0xff) {
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return true;
	case SQLITE_IOERR:
		return src != SQLITE_IOERR_NOMEM;
	default:
		return false;
	}
}

/*
 * Logs a SQLite failure and marks the connection for closing. The message
 * names the operation and carries SQLite's own text, which describes the
 * fault (locked, disk full, constraint name) and never the bound values.
 */
k_status sqlite_conn_fail(struct sqlite_conn *c, int src, const char *what)
{
	const char *msg = c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(src);
	LOG_WARN("storage: %s failed: %s (sqlite code %d)", what, msg, src);
	c->broken = true;
	if (bad_files(src))
		c->bad_files = true;
	return K_E_STORE_UNAVAILABLE;
}

void sqlite_conn_close(struct sqlite_conn *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(c->stmt[i]);
	sqlite3_close_v2(c->db);
	free(c);
}

k_status sqlite_conn_exec(struct sqlite_conn *c, const char *sql, const char *what)
{
	int src = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	if (src != SQLITE_OK)
		return sqlite_conn_fail(c, src, what);
	return K_OK;
}

/* Runs a one-row PRAGMA and reads its integer answer. */
k_status sqlite_conn_pragma_int(struct sqlite_conn *c, const char *sql, int64_t *out)
{
	k_status rc = K_OK;
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
	if (src != SQLITE_OK) {
		rc = sqlite_conn_fail(c, src, "pragma");
		goto out;
	}
	src = sqlite3_step(st);
	if (src != SQLITE_ROW) {
		rc = sqlite_conn_fail(c, src, "pragma");
		goto out;
	}
	*out = sqlite3_column_int64(st, 0);
out:
	sqlite3_finalize(st);
	return rc;
}

/*
 * WAL lets readers run beside the one writer, and with synchronous=FULL a
 * commit returns only after the WAL is fsync'd: that is the durability
 * storage.h promises. The mode is checked because SQLite silently keeps the
 * old one where WAL is impossible (some network filesystems).
 * secure_delete overwrites deleted content, so a deleted document (which may
 * hold wrapped key material) does not linger in free pages.
 */
static K_MUST_CHECK k_status conn_setup(struct sqlite_conn *c)
{
	k_status rc = K_OK;
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (src != SQLITE_OK) {
		rc = sqlite_conn_fail(c, src, "set journal mode");
		goto out;
	}
	src = sqlite3_step(st);
	if (src != SQLITE_ROW) {
		rc = sqlite_conn_fail(c, src, "set journal mode");
		goto out;
	}
	const unsigned char *mode = sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		LOG_WARN("storage: the database cannot use write-ahead logging here");
		c->broken = true;
		rc = K_E_STORE_UNAVAILABLE;
		goto out;
	}
	GUARD_GOTO(sqlite_conn_exec(c, "PRAGMA synchronous=FULL", "set synchronous"));
	GUARD_GOTO(sqlite_conn_exec(c, "PRAGMA foreign_keys=ON", "enable foreign keys"));
	GUARD_GOTO(sqlite_conn_exec(c, "PRAGMA secure_delete=ON", "enable secure delete"));
out:
	sqlite3_finalize(st);
	return rc;
}

/*
 * Opens one connection to an existing database file. No SQLITE_OPEN_CREATE:
 * if the file has vanished we fail rather than start an empty store.
 * NOMUTEX because the pool already gives a handle to one thread at a time.
 * The file's identity is taken before and after the open: if the path
 * changed meanwhile we cannot know which file the handle holds, so fail.
 * On a read-only file or filesystem SQLite opens the handle read-only;
 * reads work on it and writes fail with SQLITE_READONLY.
 */
k_status sqlite_conn_open(const char *path, int busy_ms, struct sqlite_conn **out)
{
	k_status rc = K_OK;
	struct stat before, after;
	struct sqlite_conn *c = calloc(1, sizeof *c);
	ENSURE(c != NULL, K_E_INTERNAL);
	if (stat(path, &before) != 0) {
		char eb[128];
		LOG_WARN("storage: cannot open the database: %s", strerror_r(errno, eb, sizeof eb));
		c->broken = c->bad_files = true;
		rc = K_E_STORE_UNAVAILABLE;
		goto out;
	}
	int src = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src != SQLITE_OK) {
		rc = sqlite_conn_fail(c, src, "open");
		goto out;
	}
	sqlite3_extended_result_codes(c->db, 1);
	src = sqlite3_busy_timeout(c->db, busy_ms);
	if (src != SQLITE_OK) {
		rc = sqlite_conn_fail(c, src, "set busy timeout");
		goto out;
	}
	c->busy_ms = busy_ms;
	GUARD_GOTO(conn_setup(c));
	if (stat(path, &after) != 0 || after.st_dev != before.st_dev ||
	    after.st_ino != before.st_ino) {
		LOG_WARN("storage: the database file changed while it was being opened");
		c->broken = c->bad_files = true;
		rc = K_E_STORE_UNAVAILABLE;
		goto out;
	}
	c->dev = before.st_dev;
	c->ino = before.st_ino;
	*out = c;
	c = NULL;
out:
	sqlite_conn_close(c);
	return rc;
}

k_status sqlite_conn_stmt(struct sqlite_conn *c, enum stmt_id id, sqlite3_stmt **out)
{
	if (c->stmt[id] == NULL) {
		int src = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					     &c->stmt[id], NULL);
		if (src != SQLITE_OK)
			return sqlite_conn_fail(c, src, "prepare");
	}
	*out = c->stmt[id];
	return K_OK;
}

/* Resets a cached statement so it holds no read snapshot and no bound pointers. */
void sqlite_stmt_done(sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Runs a cached statement that returns no rows (BEGIN, COMMIT, ...). */
k_status sqlite_conn_run(struct sqlite_conn *c, enum stmt_id id, const char *what)
{
	sqlite3_stmt *st = NULL;
	GUARD(sqlite_conn_stmt(c, id, &st));
	int src = sqlite3_step(st);
	sqlite_stmt_done(st);
	if (src != SQLITE_DONE)
		return sqlite_conn_fail(c, src, what);
	return K_OK;
}

/*
 * Rolls back the open transaction, if any. SQLite rolls back by itself on
 * some errors (disk full, I/O error), in which case there is nothing left
 * to undo and ROLLBACK would only fail.
 */
void sqlite_conn_rollback(struct sqlite_conn *c)
{
	if (sqlite3_get_autocommit(c->db))
		return;
	if (k_failed(sqlite_conn_run(c, ST_ROLLBACK, "rollback")))
		c->broken = true;
}

k_status sqlite_check_name(const char *s, bool may_be_empty)
{
	ENSURE(s != NULL, K_E_VALIDATION);
	size_t n = strnlen(s, STORAGE_MAX_NAME + 1);
	ENSURE(n <= STORAGE_MAX_NAME, K_E_VALIDATION);
	ENSURE(n > 0 || may_be_empty, K_E_VALIDATION);
	return K_OK;
}

k_status sqlite_check_key(const char *kind, const char *ns, const char *id)
{
	GUARD(sqlite_check_name(kind, false));
	GUARD(sqlite_check_name(ns, true));
	GUARD(sqlite_check_name(id, false));
	return K_OK;
}

k_status sqlite_bind_text(struct sqlite_conn *c, sqlite3_stmt *st, int idx, const char *s)
{
	/* SQLITE_STATIC: the caller's strings outlive the statement's use. */
	int src = sqlite3_bind_text64(st, idx, s, strlen(s), SQLITE_STATIC, SQLITE_UTF8);
	if (src != SQLITE_OK)
		return sqlite_conn_fail(c, src, "bind");
	return K_OK;
}

k_status sqlite_bind_key(struct sqlite_conn *c, sqlite3_stmt *st, const char *kind, const char *ns,
			 const char *id)
{
	GUARD(sqlite_bind_text(c, st, 1, kind));
	GUARD(sqlite_bind_text(c, st, 2, ns));
	GUARD(sqlite_bind_text(c, st, 3, id));
	return K_OK;
}
