/*
 * sqlite.c — the SQLite storage backend (see storage.h for the contract).
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
 * within the process by a writer gate (see sqlite_apply for why), and against
 * other processes by SQLite itself: apply() starts with BEGIN IMMEDIATE,
 * which takes the write lock up front (waiting up to the busy timeout)
 * instead of failing halfway.
 *
 * Failure policy: any SQLite error is logged (the SQLite message and the
 * operation, never ids or documents), the transaction is rolled back and
 * the caller gets K_E_STORE_UNAVAILABLE. The connection that saw the error
 * is closed instead of going back to the pool, so once the fault clears
 * (the lock is released, the disk has room again) the next call opens a
 * fresh connection and works.
 *
 * Some errors say the files behind the open handles went bad, not just
 * this one call: the filesystem turned read-only, an I/O error, the file
 * was moved or cannot be opened, the file is damaged (see bad_files()). A
 * lock held by another process (SQLITE_BUSY) or a full disk is not one of
 * them: the same files work again once the lock is released or space is
 * freed. After a bad-files error the store is "faulted": every pooled
 * connection is dropped (a generation count retires the ones in use when
 * they come back), and the files are reopened BY PATH, because the
 * operator's fix may be a new mount at the same path (an ext4 that went
 * emergency read-only is unmounted, checked and mounted again, while our
 * old descriptors still point into the detached one). While faulted:
 *   - an idle connection is reused only if the path still names the file
 *     it has open (stat: same device and inode), so no call reads from a
 *     detached filesystem;
 *   - a write call tries the files at most once per REOPEN_BACKOFF_MS;
 *     the writes in between fail at once with K_E_STORE_UNAVAILABLE, so a
 *     dead disk does not cost every write an open() and a log line;
 *   - reads keep working on any connection that can still read (SQLite
 *     opens a file on a read-only filesystem read-only). A read call's
 *     bad-files error, or a failed open, holds further opens back for
 *     REOPEN_BACKOFF_MS (calls that need one meanwhile fail at once).
 * A write's failure does not hold reads back: on a read-only filesystem
 * the next read opens a (read-only) connection and works.
 * The first write that commits ends the fault; connections opened during
 * it (possibly read-only, possibly on the old mount) are retired then.
 * A failed open outside a fault also holds further opens back for the
 * backoff. Prepared statements belong to their connection and die with it.
 */
#include "storage/storage.h"

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
#define DEFAULT_BUSY_MS 5000
/* Idle connections kept open; more are closed when given back. */
#define POOL_MAX_IDLE 16
/* While faulted, at most one write try per this; after a failed open or a
 * read's bad-files error, no open for this long (see the header comment). */
#define REOPEN_BACKOFF_MS 200

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

/*
 * Statements prepared once per connection. Key parameters are always
 * ?1 kind, ?2 ns, ?3 id. The list statements take ?3 as an inclusive lower
 * bound on id; the exclusive "after" and the prefix end are applied while
 * stepping (see list_rows), so that SQLite has one range term to seek by.
 */
enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_VERSION,
	ST_GET,
	ST_INSERT,
	ST_UPDATE,
	ST_DELETE,
	ST_LIST_NS,
	ST_LIST_ALL,
	ST_COUNT
};

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

struct sqlite_conn {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	int busy_ms;              /* the timeout currently set on db */
	bool broken;              /* saw an error: close rather than reuse */
	bool bad_files;           /* saw an error that condemns the open files */
	bool for_write;           /* taken by a call that writes */
	uint64_t gen;             /* the store's generation when opened */
	dev_t dev;                /* the database file it has open */
	ino_t ino;
	struct sqlite_conn *next; /* idle list link */
};

struct sqlite_store {
	struct storage base;      /* first, so a struct storage * is the store */
	struct kbuf path;         /* dir/kinko.db */
	struct storage_feed feed; /* told of every committed write (storage.h) */
	/* The writer gate: `writing` is true while a thread of this process
	 * writes; others wait on write_cv (monotonic clock). */
	pthread_mutex_t write_mu;
	pthread_cond_t write_cv;
	bool writing;
	pthread_mutex_t mu;       /* guards the fields below */
	struct sqlite_conn *idle;
	size_t n_idle;
	size_t n_open;            /* idle + in use (+ being opened) */
	int busy_ms;
	uint64_t gen;             /* +1 whenever every open connection is retired */
	bool faulted;             /* a bad-files error since the last good write */
	int64_t next_open_ns;     /* monotonic: no open before this */
	int64_t next_write_ns;    /* monotonic: while faulted, no write before this */
};

static const struct storage_vtbl sqlite_vtbl;

static struct sqlite_store *store_of(struct storage *s)
{
	return (struct sqlite_store *)s;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Whether a SQLite result code means the files behind the connection went
 * bad, so that the store should reopen them by path (see the header
 * comment). Read-only (the filesystem or the file, incl. READONLY_DBMOVED:
 * the file was moved or unlinked under us), any I/O error except running
 * out of memory, cannot open, damaged or not a database (a reopen may find
 * a restored file). Never a lock (BUSY, LOCKED: the files are fine, someone
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
static k_status conn_fail(struct sqlite_conn *c, int src, const char *what)
{
	const char *msg = c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(src);
	LOG_WARN("storage: %s failed: %s (sqlite code %d)", what, msg, src);
	c->broken = true;
	if (bad_files(src))
		c->bad_files = true;
	return K_E_STORE_UNAVAILABLE;
}

static void conn_close(struct sqlite_conn *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(c->stmt[i]);
	sqlite3_close_v2(c->db);
	free(c);
}

static k_status conn_exec(struct sqlite_conn *c, const char *sql, const char *what)
{
	int src = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	if (src != SQLITE_OK)
		return conn_fail(c, src, what);
	return K_OK;
}

/* Runs a one-row PRAGMA and reads its integer answer. */
static k_status conn_pragma_int(struct sqlite_conn *c, const char *sql, int64_t *out)
{
	k_status rc = K_OK;
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
	if (src != SQLITE_OK) {
		rc = conn_fail(c, src, "pragma");
		goto out;
	}
	src = sqlite3_step(st);
	if (src != SQLITE_ROW) {
		rc = conn_fail(c, src, "pragma");
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
static k_status conn_setup(struct sqlite_conn *c)
{
	k_status rc = K_OK;
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (src != SQLITE_OK) {
		rc = conn_fail(c, src, "set journal mode");
		goto out;
	}
	src = sqlite3_step(st);
	if (src != SQLITE_ROW) {
		rc = conn_fail(c, src, "set journal mode");
		goto out;
	}
	const unsigned char *mode = sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		LOG_WARN("storage: the database cannot use write-ahead logging here");
		c->broken = true;
		rc = K_E_STORE_UNAVAILABLE;
		goto out;
	}
	GUARD_GOTO(conn_exec(c, "PRAGMA synchronous=FULL", "set synchronous"));
	GUARD_GOTO(conn_exec(c, "PRAGMA foreign_keys=ON", "enable foreign keys"));
	GUARD_GOTO(conn_exec(c, "PRAGMA secure_delete=ON", "enable secure delete"));
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
static k_status conn_open(const char *path, int busy_ms, struct sqlite_conn **out)
{
	k_status rc = K_OK;
	struct stat before, after;
	struct sqlite_conn *c = calloc(1, sizeof *c);
	ENSURE(c != NULL, K_E_INTERNAL);
	if (stat(path, &before) != 0) {
		char eb[128];
		LOG_WARN("storage: cannot open the database: %s",
			 strerror_r(errno, eb, sizeof eb));
		c->broken = c->bad_files = true;
		rc = K_E_STORE_UNAVAILABLE;
		goto out;
	}
	int src = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src != SQLITE_OK) {
		rc = conn_fail(c, src, "open");
		goto out;
	}
	sqlite3_extended_result_codes(c->db, 1);
	src = sqlite3_busy_timeout(c->db, busy_ms);
	if (src != SQLITE_OK) {
		rc = conn_fail(c, src, "set busy timeout");
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
	conn_close(c);
	return rc;
}

static k_status conn_stmt(struct sqlite_conn *c, enum stmt_id id, sqlite3_stmt **out)
{
	if (c->stmt[id] == NULL) {
		int src = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					     &c->stmt[id], NULL);
		if (src != SQLITE_OK)
			return conn_fail(c, src, "prepare");
	}
	*out = c->stmt[id];
	return K_OK;
}

/* Resets a cached statement so it holds no read snapshot and no bound pointers. */
static void stmt_done(sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Runs a cached statement that returns no rows (BEGIN, COMMIT, ...). */
static k_status conn_run(struct sqlite_conn *c, enum stmt_id id, const char *what)
{
	sqlite3_stmt *st = NULL;
	GUARD(conn_stmt(c, id, &st));
	int src = sqlite3_step(st);
	stmt_done(st);
	if (src != SQLITE_DONE)
		return conn_fail(c, src, what);
	return K_OK;
}

/*
 * Rolls back the open transaction, if any. SQLite rolls back by itself on
 * some errors (disk full, I/O error), in which case there is nothing left
 * to undo and ROLLBACK would only fail.
 */
static void conn_rollback(struct sqlite_conn *c)
{
	if (sqlite3_get_autocommit(c->db))
		return;
	if (conn_run(c, ST_ROLLBACK, "rollback") != K_OK)
		c->broken = true;
}

/* Closes a list of connections linked by next (taken off the pool under mu). */
static void close_list(struct sqlite_conn *c)
{
	while (c != NULL) {
		struct sqlite_conn *next = c->next;
		conn_close(c);
		c = next;
	}
}

/*
 * Retires every open connection: the idle ones are handed back in *drop
 * (for closing outside the lock), those in use are closed when given
 * back, because their generation is now old. Caller holds mu.
 */
static void retire_all_locked(struct sqlite_store *st, struct sqlite_conn **drop)
{
	st->gen++;
	while (st->idle != NULL) {
		struct sqlite_conn *c = st->idle;
		st->idle = c->next;
		st->n_idle--;
		st->n_open--;
		c->next = *drop;
		*drop = c;
	}
}

/*
 * Takes an idle connection or opens a new one. The pool does not cap the
 * number of connections in use: it is bounded by the callers running at
 * once, and a cap could deadlock a list callback that calls back in.
 * While the store is faulted an idle connection is used only if the path
 * still names its file, and opens are rate-limited (see the header comment).
 */
static k_status pool_acquire(struct sqlite_store *st, bool write, struct sqlite_conn **out)
{
	struct sqlite_conn *c = NULL, *drop = NULL;
	struct stat sb;
	bool have_id = false;
	const int64_t backoff = (int64_t)REOPEN_BACKOFF_MS * 1000000;

	pthread_mutex_lock(&st->mu);
	bool faulted = st->faulted;
	pthread_mutex_unlock(&st->mu);
	if (faulted)
		have_id = stat(kbuf_cstr(&st->path), &sb) == 0;

	pthread_mutex_lock(&st->mu);
	int64_t now = mono_ns();
	if (write && st->faulted) {
		if (now < st->next_write_ns) {
			pthread_mutex_unlock(&st->mu);
			/* Not logged: the fault was, and a dead disk must not flood the log. */
			return K_E_STORE_UNAVAILABLE;
		}
		st->next_write_ns = now + backoff;
	}
	while (st->idle != NULL) {
		c = st->idle;
		st->idle = c->next;
		st->n_idle--;
		bool same = c->gen == st->gen &&
			    (!faulted || (have_id && sb.st_dev == c->dev && sb.st_ino == c->ino));
		if (same)
			break;
		st->n_open--;
		c->next = drop;
		drop = c;
		c = NULL;
	}
	bool refused = false;
	if (c == NULL) {
		if (now < st->next_open_ns)
			refused = true;
		else
			st->n_open++;
	}
	int busy_ms = st->busy_ms;
	uint64_t gen = st->gen;
	pthread_mutex_unlock(&st->mu);
	close_list(drop);
	/* Not logged: the fault was, and a dead disk must not flood the log. */
	ENSURE(!refused, K_E_STORE_UNAVAILABLE);

	if (c == NULL) {
		k_status rc = conn_open(kbuf_cstr(&st->path), busy_ms, &c);
		if (rc != K_OK) {
			pthread_mutex_lock(&st->mu);
			st->n_open--;
			st->next_open_ns = mono_ns() + backoff;
			pthread_mutex_unlock(&st->mu);
			return rc;
		}
		c->gen = gen;
	}
	c->next = NULL;
	c->for_write = write;
	if (c->busy_ms != busy_ms && sqlite3_busy_timeout(c->db, busy_ms) == SQLITE_OK)
		c->busy_ms = busy_ms;
	*out = c;
	return K_OK;
}

/*
 * Gives a connection back. A connection that saw an error, or is somehow
 * still inside a transaction, is closed instead: the next call opens a
 * fresh one, which is how the store recovers once a fault clears. One that
 * saw a bad-files error also retires all the others and faults the store;
 * one from an older generation is closed.
 */
static void pool_release(struct sqlite_store *st, struct sqlite_conn *c)
{
	struct sqlite_conn *drop = NULL;
	if (c == NULL)
		return;
	if (!sqlite3_get_autocommit(c->db))
		c->broken = true;
	pthread_mutex_lock(&st->mu);
	if (c->bad_files && c->gen == st->gen) {
		if (!st->faulted)
			LOG_WARN("storage: the database files failed; reopening them "
				 "(writes fail until they are writable again)");
		st->faulted = true;
		retire_all_locked(st, &drop);
		int64_t until = mono_ns() + (int64_t)REOPEN_BACKOFF_MS * 1000000;
		if (c->for_write)
			st->next_write_ns = until;
		else
			st->next_open_ns = until;
	}
	bool keep = !c->broken && c->gen == st->gen && st->n_idle < POOL_MAX_IDLE;
	if (keep) {
		c->next = st->idle;
		st->idle = c;
		st->n_idle++;
	} else {
		st->n_open--;
	}
	pthread_mutex_unlock(&st->mu);
	close_list(drop);
	if (!keep)
		conn_close(c);
}

/*
 * Called after a write committed on c: its files take writes, so a fault
 * is over. The connections opened during the fault (read-only handles,
 * or handles on a filesystem since replaced) are retired; c, which just
 * proved itself, joins the new generation.
 */
static void pool_write_ok(struct sqlite_store *st, struct sqlite_conn *c)
{
	struct sqlite_conn *drop = NULL;
	pthread_mutex_lock(&st->mu);
	if (st->faulted && c->gen == st->gen) {
		st->faulted = false;
		st->next_open_ns = 0;
		st->next_write_ns = 0;
		retire_all_locked(st, &drop);
		c->gen = st->gen;
		LOG_INFO("storage: the database takes writes again");
	}
	pthread_mutex_unlock(&st->mu);
	close_list(drop);
}

/*
 * A write on a handle SQLite opened read-only (the file or its filesystem
 * was read-only then) can only fail: say so plainly, as a bad-files error,
 * so that the files are reopened once they may be writable again.
 */
static k_status conn_writable(struct sqlite_conn *c)
{
	if (sqlite3_db_readonly(c->db, "main") != 1)
		return K_OK;
	LOG_WARN("storage: write refused: the database is open read-only (read-only file or filesystem)");
	c->broken = c->bad_files = true;
	return K_E_STORE_UNAVAILABLE;
}

static k_status check_name(const char *s, bool may_be_empty)
{
	ENSURE(s != NULL, K_E_VALIDATION);
	size_t n = strnlen(s, STORAGE_MAX_NAME + 1);
	ENSURE(n <= STORAGE_MAX_NAME, K_E_VALIDATION);
	ENSURE(n > 0 || may_be_empty, K_E_VALIDATION);
	return K_OK;
}

static k_status check_key(const char *kind, const char *ns, const char *id)
{
	GUARD(check_name(kind, false));
	GUARD(check_name(ns, true));
	GUARD(check_name(id, false));
	return K_OK;
}

static k_status check_op(const struct storage_op *op)
{
	ENSURE(op->op == STORAGE_PUT || op->op == STORAGE_DEL, K_E_VALIDATION);
	GUARD(check_key(op->kind, op->ns, op->id));
	ENSURE(op->expect >= STORAGE_ANY, K_E_VALIDATION);
	if (op->op == STORAGE_PUT) {
		ENSURE(op->doc.len <= STORAGE_MAX_DOC, K_E_VALIDATION);
		ENSURE(op->doc.ptr != NULL || op->doc.len == 0, K_E_VALIDATION);
	}
	return K_OK;
}

static k_status bind_text(struct sqlite_conn *c, sqlite3_stmt *st, int idx, const char *s)
{
	/* SQLITE_STATIC: the caller's strings outlive the statement's use. */
	int src = sqlite3_bind_text64(st, idx, s, strlen(s), SQLITE_STATIC, SQLITE_UTF8);
	if (src != SQLITE_OK)
		return conn_fail(c, src, "bind");
	return K_OK;
}

static k_status bind_key(struct sqlite_conn *c, sqlite3_stmt *st, const char *kind,
			 const char *ns, const char *id)
{
	GUARD(bind_text(c, st, 1, kind));
	GUARD(bind_text(c, st, 2, ns));
	GUARD(bind_text(c, st, 3, id));
	return K_OK;
}

/* The record's current version, 0 if it does not exist. */
static k_status read_version(struct sqlite_conn *c, const struct storage_op *op, int64_t *out)
{
	k_status rc = K_OK;
	sqlite3_stmt *st = NULL;
	GUARD(conn_stmt(c, ST_VERSION, &st));
	GUARD_GOTO(bind_key(c, st, op->kind, op->ns, op->id));
	int src = sqlite3_step(st);
	if (src == SQLITE_DONE) {
		*out = 0;
		goto out;
	}
	if (src != SQLITE_ROW) {
		rc = conn_fail(c, src, "read version");
		goto out;
	}
	*out = sqlite3_column_int64(st, 0);
out:
	stmt_done(st);
	return rc;
}

/* The precondition of storage.h's apply(), given the current version (0: absent). */
static k_status check_expect(const struct storage_op *op, int64_t cur)
{
	if (op->expect == STORAGE_ANY)
		return K_OK;
	if (op->expect == STORAGE_ABSENT)
		return cur == 0 ? K_OK : K_E_CONFLICT;
	if (cur == 0 && op->op == STORAGE_DEL)
		return K_E_NOT_FOUND;
	return cur == op->expect ? K_OK : K_E_CONFLICT;
}

static k_status write_row(struct sqlite_conn *c, enum stmt_id id, const struct storage_op *op)
{
	k_status rc = K_OK;
	sqlite3_stmt *st = NULL;
	GUARD(conn_stmt(c, id, &st));
	GUARD_GOTO(bind_key(c, st, op->kind, op->ns, op->id));
	if (id != ST_DELETE) {
		/* An empty document is bound as an empty blob, not NULL. */
		const void *p = op->doc.len > 0 ? (const void *)op->doc.ptr : "";
		int src = sqlite3_bind_blob64(st, 4, p, op->doc.len, SQLITE_STATIC);
		if (src != SQLITE_OK) {
			rc = conn_fail(c, src, "bind");
			goto out;
		}
	}
	int src = sqlite3_step(st);
	if (src != SQLITE_DONE)
		rc = conn_fail(c, src, "write");
out:
	stmt_done(st);
	return rc;
}

static k_status apply_one(struct sqlite_conn *c, const struct storage_op *op)
{
	int64_t cur = 0;
	GUARD(read_version(c, op, &cur));
	GUARD(check_expect(op, cur));
	if (op->op == STORAGE_DEL)
		return cur == 0 ? K_OK : write_row(c, ST_DELETE, op);
	return write_row(c, cur == 0 ? ST_INSERT : ST_UPDATE, op);
}

/*
 * Enters the writer gate, waiting at most the busy timeout. A flag under a
 * condition variable rather than a timed mutex lock: the condition
 * variable can wait on the monotonic clock (a wall-clock step must not
 * stretch or cut the wait), and every thread checker understands it.
 */
static k_status write_enter(struct sqlite_store *st, int busy_ms)
{
	struct timespec deadline;
	k_status rc = K_OK;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += busy_ms / 1000;
	deadline.tv_nsec += (long)(busy_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&st->write_mu);
	while (st->writing && rc == K_OK) {
		if (pthread_cond_timedwait(&st->write_cv, &st->write_mu, &deadline) == ETIMEDOUT)
			rc = K_E_STORE_UNAVAILABLE;
	}
	if (!st->writing) {
		/* Won the gate, even if the deadline passed in the same breath. */
		st->writing = true;
		rc = K_OK;
	}
	pthread_mutex_unlock(&st->write_mu);
	if (rc != K_OK)
		LOG_WARN("storage: gave up waiting for this process's other writers after %d ms",
			 busy_ms);
	return rc;
}

static void write_leave(struct sqlite_store *st)
{
	pthread_mutex_lock(&st->write_mu);
	st->writing = false;
	pthread_cond_signal(&st->write_cv);
	pthread_mutex_unlock(&st->write_mu);
}

/*
 * Every op is validated before the transaction starts, so a bad argument
 * costs no lock. BEGIN IMMEDIATE takes the write lock first: the version
 * checks and the writes then see no other writer, which is what makes the
 * preconditions hold at commit. Any failure rolls the whole batch back.
 *
 * Writers of this process first pass the writer gate. SQLite alone would
 * serialize them too, but its busy handler sleeps and polls: under load
 * an unlucky writer keeps losing the race and fails after the busy
 * timeout although the store is healthy (seen with 32 writing threads).
 * Threads waiting at the gate are woken as it frees, so the wait stays
 * short and fair, and SQLite's busy wait is left to other processes.
 *
 * The change feed hears of the write once it committed and the gate and
 * the connection are given back, so a subscriber holds up no writer.
 */
static k_status sqlite_apply(struct storage *s, const struct storage_op *ops, size_t n)
{
	struct sqlite_store *st = store_of(s);
	struct sqlite_conn *c = NULL;
	bool locked = false;
	bool in_tx = false;
	bool committed = false;
	k_status rc = K_OK;

	ENSURE(ops != NULL || n == 0, K_E_VALIDATION);
	for (size_t i = 0; i < n; i++)
		GUARD(check_op(&ops[i]));
	if (n == 0)
		return K_OK;

	GUARD(pool_acquire(st, true, &c));
	GUARD_GOTO(conn_writable(c));
	GUARD_GOTO(write_enter(st, c->busy_ms));
	locked = true;
	int64_t changes = sqlite3_total_changes64(c->db);
	GUARD_GOTO(conn_run(c, ST_BEGIN, "begin"));
	in_tx = true;
	for (size_t i = 0; i < n; i++)
		GUARD_GOTO(apply_one(c, &ops[i]));
	GUARD_GOTO(conn_run(c, ST_COMMIT, "commit"));
	in_tx = false;
	committed = true;
	/* Only a commit that wrote proves the files take writes. */
	if (sqlite3_total_changes64(c->db) != changes)
		pool_write_ok(st, c);
out:
	if (in_tx)
		conn_rollback(c);
	if (locked)
		write_leave(st);
	pool_release(st, c);
	if (committed)
		storage_feed_emit_ops(&st->feed, ops, n);
	return rc;
}

static k_status sqlite_get(struct storage *s, const char *kind, const char *ns, const char *id,
			   struct kbuf *doc, int64_t *version)
{
	struct sqlite_store *st = store_of(s);
	struct sqlite_conn *c = NULL;
	sqlite3_stmt *stmt = NULL;
	k_status rc = K_OK;

	GUARD(check_key(kind, ns, id));
	GUARD(pool_acquire(st, false, &c));
	GUARD_GOTO(conn_stmt(c, ST_GET, &stmt));
	GUARD_GOTO(bind_key(c, stmt, kind, ns, id));
	int src = sqlite3_step(stmt);
	ENSURE_GOTO(src != SQLITE_DONE, K_E_NOT_FOUND);
	if (src != SQLITE_ROW) {
		rc = conn_fail(c, src, "get");
		goto out;
	}
	if (doc != NULL) {
		/* blob before bytes, as SQLite advises; NULL with bytes > 0 is out of memory. */
		const void *p = sqlite3_column_blob(stmt, 1);
		size_t len = (size_t)sqlite3_column_bytes(stmt, 1);
		ENSURE_GOTO(p != NULL || len == 0, K_E_INTERNAL);
		GUARD_GOTO(kbuf_append(doc, p, len));
	}
	if (version != NULL)
		*version = sqlite3_column_int64(stmt, 0);
out:
	stmt_done(stmt);
	pool_release(st, c);
	return rc;
}

struct list_query {
	const char *ns;      /* NULL: every namespace */
	const char *prefix;  /* NULL or "": no prefix filter */
	const char *after;   /* NULL or "": from the start */
	size_t limit;        /* 0: no limit */
	storage_list_cb cb;
	void *arg;
};

/*
 * Steps the listing and hands each matching row to the callback.
 * The statement seeks to max(after, prefix); a row equal to "after" is
 * skipped. Ids sharing a prefix are contiguous in byte order, so in a
 * one-namespace listing the first id past the prefix ends the scan; across
 * namespaces the ids restart with each ns, so non-matching rows are skipped.
 */
static k_status list_rows(struct sqlite_conn *c, sqlite3_stmt *st, const struct list_query *q)
{
	size_t plen = q->prefix != NULL ? strlen(q->prefix) : 0;
	size_t count = 0;

	while (q->limit == 0 || count < q->limit) {
		int src = sqlite3_step(st);
		if (src == SQLITE_DONE)
			return K_OK;
		if (src != SQLITE_ROW)
			return conn_fail(c, src, "list");
		const char *ns = (const char *)sqlite3_column_text(st, 0);
		const char *id = (const char *)sqlite3_column_text(st, 1);
		ENSURE(ns != NULL && id != NULL, K_E_INTERNAL);
		if (q->after != NULL && strcmp(id, q->after) == 0)
			continue;
		if (plen > 0 && strncmp(id, q->prefix, plen) != 0) {
			if (q->ns != NULL)
				return K_OK;
			continue;
		}
		const void *p = sqlite3_column_blob(st, 3);
		size_t len = (size_t)sqlite3_column_bytes(st, 3);
		ENSURE(p != NULL || len == 0, K_E_INTERNAL);
		int64_t version = sqlite3_column_int64(st, 2);
		GUARD(q->cb(q->arg, ns, id, kslice_make(p, len), version));
		count++;
	}
	return K_OK;
}

static k_status sqlite_list(struct storage *s, const char *kind, const char *ns,
			    const char *prefix, const char *after, size_t limit,
			    storage_list_cb cb, void *arg)
{
	struct sqlite_store *st = store_of(s);
	struct sqlite_conn *c = NULL;
	sqlite3_stmt *stmt = NULL;
	k_status rc = K_OK;
	struct list_query q = {ns, prefix, after, limit, cb, arg};

	ENSURE(cb != NULL, K_E_VALIDATION);
	GUARD(check_name(kind, false));
	if (ns != NULL)
		GUARD(check_name(ns, true));
	if (prefix != NULL)
		GUARD(check_name(prefix, true));
	if (after != NULL)
		GUARD(check_name(after, true));
	if (after != NULL && after[0] == '\0')
		q.after = NULL;

	/* The lower bound: the larger of after and prefix ("" when neither). */
	const char *lower = "";
	if (prefix != NULL)
		lower = prefix;
	if (q.after != NULL && strcmp(q.after, lower) > 0)
		lower = q.after;

	GUARD(pool_acquire(st, false, &c));
	GUARD_GOTO(conn_stmt(c, ns != NULL ? ST_LIST_NS : ST_LIST_ALL, &stmt));
	GUARD_GOTO(bind_text(c, stmt, 1, kind));
	if (ns != NULL)
		GUARD_GOTO(bind_text(c, stmt, 2, ns));
	GUARD_GOTO(bind_text(c, stmt, 3, lower));
	GUARD_GOTO(list_rows(c, stmt, &q));
out:
	stmt_done(stmt);
	pool_release(st, c);
	return rc;
}

/*
 * The first finding of an integrity_check report, on one line: the report
 * may open with a "*** in database main ***" header and runs over lines.
 */
static int damage_line_len(const char **text)
{
	const char *t = *text != NULL ? *text : "?";
	const char *nl = strchr(t, '\n');
	if (strncmp(t, "***", 3) == 0 && nl != NULL) {
		t = nl + 1;
		nl = strchr(t, '\n');
	}
	size_t n = nl != NULL ? (size_t)(nl - t) : strlen(t);
	*text = t;
	return n > 200 ? 200 : (int)n;
}

/*
 * PRAGMA integrity_check answers one row "ok", or rows describing damage
 * (page numbers, never content). Only the first is logged. A database too
 * damaged to run the check at all is damaged, not unavailable.
 */
static k_status sqlite_check(struct storage *s)
{
	struct sqlite_store *st = store_of(s);
	struct sqlite_conn *c = NULL;
	sqlite3_stmt *stmt = NULL;
	k_status rc = K_OK;

	GUARD(pool_acquire(st, false, &c));
	int src = sqlite3_prepare_v2(c->db, "PRAGMA integrity_check", -1, &stmt, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_step(stmt);
	if (src != SQLITE_ROW) {
		int primary = src & 0xff;
		rc = conn_fail(c, src, "integrity check");
		if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
			rc = K_E_INTERNAL;
		goto out;
	}
	const char *first = (const char *)sqlite3_column_text(stmt, 0);
	if (first == NULL || strcmp(first, "ok") != 0) {
		int len = damage_line_len(&first);
		LOG_WARN("storage: integrity check found damage: %.*s", len, first);
		rc = K_E_INTERNAL;
	}
out:
	sqlite3_finalize(stmt);
	pool_release(st, c);
	return rc;
}

/*
 * Deletes every row whose ns starts with the prefix, in one transaction
 * through the writer gate like apply(). secure_delete is on, so the
 * deleted documents' bytes are overwritten. The prefix is compared with
 * substr() rather than LIKE, so '%' and '_' in it mean themselves.
 */
static k_status sqlite_purge(struct storage *s, const char *ns_prefix)
{
	struct sqlite_store *st = store_of(s);
	struct sqlite_conn *c = NULL;
	sqlite3_stmt *stmt = NULL;
	bool locked = false;
	bool in_tx = false;
	bool committed = false;
	k_status rc = K_OK;

	GUARD(check_name(ns_prefix, false));
	GUARD(pool_acquire(st, true, &c));
	GUARD_GOTO(conn_writable(c));
	GUARD_GOTO(write_enter(st, c->busy_ms));
	locked = true;
	int64_t changes = sqlite3_total_changes64(c->db);
	GUARD_GOTO(conn_run(c, ST_BEGIN, "begin"));
	in_tx = true;
	int src = sqlite3_prepare_v2(c->db,
				     "DELETE FROM docs WHERE substr(ns, 1, length(?1)) = ?1", -1,
				     &stmt, NULL);
	if (src != SQLITE_OK) {
		rc = conn_fail(c, src, "prepare purge");
		goto out;
	}
	GUARD_GOTO(bind_text(c, stmt, 1, ns_prefix));
	src = sqlite3_step(stmt);
	if (src != SQLITE_DONE) {
		rc = conn_fail(c, src, "purge");
		goto out;
	}
	GUARD_GOTO(conn_run(c, ST_COMMIT, "commit"));
	in_tx = false;
	committed = true;
	if (sqlite3_total_changes64(c->db) != changes)
		pool_write_ok(st, c);
out:
	sqlite3_finalize(stmt);
	if (in_tx)
		conn_rollback(c);
	if (locked)
		write_leave(st);
	pool_release(st, c);
	if (committed) {
		struct storage_event ev = {.what = STORAGE_EV_PURGE, .ns = ns_prefix};
		storage_feed_emit(&st->feed, &ev);
	}
	return rc;
}

/*
 * secure_delete overwrites deleted content in the database pages, but in
 * WAL mode the older images of those pages stay in the -wal file until a
 * checkpoint copies the newest images back and the log is reset.
 * TRUNCATE mode does both and cuts the -wal file to zero bytes. Writers
 * of this process are held at the gate meanwhile; a reader of another
 * connection can keep it from completing (SQLITE_BUSY: retry later).
 */
static k_status sqlite_scrub(struct storage *s)
{
	struct sqlite_store *st = store_of(s);
	struct sqlite_conn *c = NULL;
	k_status rc = K_OK;

	GUARD(pool_acquire(st, true, &c));
	GUARD_GOTO(conn_writable(c));
	GUARD_GOTO(write_enter(st, c->busy_ms));
	int log_frames = -1, done_frames = -1;
	int src = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log_frames,
					    &done_frames);
	write_leave(st);
	if (src == SQLITE_BUSY) {
		LOG_WARN("storage: scrub checkpoint could not complete (busy); will retry");
		rc = K_E_STORE_UNAVAILABLE;
	} else if (src != SQLITE_OK) {
		rc = conn_fail(c, src, "scrub checkpoint");
	}
out:
	pool_release(st, c);
	return rc;
}

/*
 * Brings the schema up to date: all pending migrations and the new
 * user_version commit together or not at all. A database from a newer
 * build is refused, since this build cannot know what its schema means.
 */
static k_status migrate(struct sqlite_conn *c)
{
	k_status rc = K_OK;
	bool in_tx = false;
	int64_t have = 0;
	const int64_t want = (int64_t)ARRAY_LEN(migrations);

	GUARD_GOTO(conn_run(c, ST_BEGIN, "begin migration"));
	in_tx = true;
	GUARD_GOTO(conn_pragma_int(c, "PRAGMA user_version", &have));
	if (have > want) {
		LOG_ERROR("storage: the database has schema version %" PRId64
			  ", newer than this build's %" PRId64 "; refusing to open it",
			  have, want);
		rc = K_E_INTERNAL;
		goto out;
	}
	for (int64_t v = have; v < want; v++) {
		GUARD_GOTO(conn_exec(c, migrations[v], "schema migration"));
		LOG_INFO("storage: applied schema migration %" PRId64, v + 1);
	}
	if (have < want) {
		/* PRAGMA takes no bound parameters; the number is ours. */
		char sql[64];
		snprintf(sql, sizeof sql, "PRAGMA user_version = %" PRId64, want);
		GUARD_GOTO(conn_exec(c, sql, "set schema version"));
	}
	GUARD_GOTO(conn_run(c, ST_COMMIT, "commit migration"));
	in_tx = false;
out:
	if (in_tx)
		conn_rollback(c);
	return rc;
}

static k_status os_fail(const char *what, const char *path)
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
static k_status make_dir(const char *dir)
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
		LOG_WARN("storage: the data folder %s is open to other users; mode 0700 is advised", dir);
	return K_OK;
}

/*
 * Creates the database file with mode 0600 before SQLite sees it, rather
 * than letting SQLite create it under a temporarily narrowed umask: the
 * umask is process-wide, and other threads may be creating files. SQLite
 * gives the -wal and -shm files it creates the mode of the database file.
 * An existing file with a wider mode is narrowed: it holds key material.
 */
static k_status make_db_file(const char *path)
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
		(void)os_fail("sync the folder", dir);
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
		conn_close(c);
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
static k_status write_cv_init(pthread_cond_t *cv)
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

static k_status sqlite_subscribe(struct storage *s, storage_change_cb cb, void *arg)
{
	return storage_feed_add(&store_of(s)->feed, cb, arg);
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
	if (write_cv_init(&st->write_cv) != K_OK) {
		pthread_mutex_destroy(&st->write_mu);
		pthread_mutex_destroy(&st->mu);
		free(st);
		BAIL(K_E_INTERNAL);
	}
	if (storage_feed_init(&st->feed) != K_OK) {
		pthread_cond_destroy(&st->write_cv);
		pthread_mutex_destroy(&st->write_mu);
		pthread_mutex_destroy(&st->mu);
		free(st);
		BAIL(K_E_INTERNAL);
	}
	st->base.vt = &sqlite_vtbl;
	st->busy_ms = DEFAULT_BUSY_MS;
	kbuf_init(&st->path, DIR_MAX + 1 + NAME_MAX + 1);
	GUARD_GOTO(kbuf_appendf(&st->path, "%s/%s", dir, file));

	GUARD_GOTO(make_dir(dir));
	GUARD_GOTO(make_db_file(kbuf_cstr(&st->path)));
	GUARD_GOTO(pool_acquire(st, true, &c));
	GUARD_GOTO(migrate(c));
	sync_dir(dir);

	*out = &st->base;
out:
	pool_release(st, c);
	if (rc != K_OK)
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
