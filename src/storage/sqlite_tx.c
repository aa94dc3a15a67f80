/*
 * sqlite_tx.c — the SQLite backend's writes: apply's versioned batches,
 * purge and scrub. Each takes a write connection, passes the writer gate
 * and, once committed, tells the change feed.
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

static K_MUST_CHECK k_status check_op(const struct storage_op *op)
{
	ENSURE(op->op == STORAGE_PUT || op->op == STORAGE_DEL, K_E_VALIDATION);
	GUARD(sqlite_check_key(op->kind, op->ns, op->id));
	ENSURE(op->expect >= STORAGE_ANY, K_E_VALIDATION);
	if (op->op == STORAGE_PUT) {
		ENSURE(op->doc.len <= STORAGE_MAX_DOC, K_E_VALIDATION);
		ENSURE(op->doc.ptr != NULL || op->doc.len == 0, K_E_VALIDATION);
	}
	return K_OK;
}

/* The record's current version, 0 if it does not exist. */
static K_MUST_CHECK k_status read_version(struct sqlite_conn *c, const struct storage_op *op,
					  int64_t *out)
{
	k_status rc = K_OK;
	sqlite3_stmt *st = NULL;
	GUARD(sqlite_conn_stmt(c, ST_VERSION, &st));
	GUARD_GOTO(sqlite_bind_key(c, st, op->kind, op->ns, op->id));
	int src = sqlite3_step(st);
	if (src == SQLITE_DONE) {
		*out = 0;
		goto out;
	}
	if (src != SQLITE_ROW) {
		rc = sqlite_conn_fail(c, src, "read version");
		goto out;
	}
	*out = sqlite3_column_int64(st, 0);
out:
	sqlite_stmt_done(st);
	return rc;
}

/* The precondition of storage.h's apply(), given the current version (0: absent). */
static K_MUST_CHECK k_status check_expect(const struct storage_op *op, int64_t cur)
{
	if (op->expect == STORAGE_ANY)
		return K_OK;
	if (op->expect == STORAGE_ABSENT)
		return cur == 0 ? K_OK : K_E_CONFLICT;
	if (cur == 0 && op->op == STORAGE_DEL)
		return K_E_NOT_FOUND;
	return cur == op->expect ? K_OK : K_E_CONFLICT;
}

static K_MUST_CHECK k_status write_row(struct sqlite_conn *c, enum stmt_id id,
				       const struct storage_op *op)
{
	k_status rc = K_OK;
	sqlite3_stmt *st = NULL;
	GUARD(sqlite_conn_stmt(c, id, &st));
	GUARD_GOTO(sqlite_bind_key(c, st, op->kind, op->ns, op->id));
	if (id != ST_DELETE) {
		/* An empty document is bound as an empty blob, not NULL. */
		const void *p = op->doc.len > 0 ? (const void *)op->doc.ptr : "";
		int src = sqlite3_bind_blob64(st, 4, p, op->doc.len, SQLITE_STATIC);
		if (src != SQLITE_OK) {
			rc = sqlite_conn_fail(c, src, "bind");
			goto out;
		}
	}
	int src = sqlite3_step(st);
	if (src != SQLITE_DONE)
		rc = sqlite_conn_fail(c, src, "write");
out:
	sqlite_stmt_done(st);
	return rc;
}

static K_MUST_CHECK k_status apply_one(struct sqlite_conn *c, const struct storage_op *op)
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
static K_MUST_CHECK k_status write_enter(struct sqlite_store *st, int busy_ms)
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
	while (st->writing && k_ok(rc)) {
		if (pthread_cond_timedwait(&st->write_cv, &st->write_mu, &deadline) == ETIMEDOUT)
			rc = K_E_STORE_UNAVAILABLE;
	}
	if (!st->writing) {
		/* Won the gate, even if the deadline passed in the same breath. */
		st->writing = true;
		rc = K_OK;
	}
	pthread_mutex_unlock(&st->write_mu);
	if (k_failed(rc))
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
k_status sqlite_apply(struct storage *s, const struct storage_op *ops, size_t n)
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

	GUARD(sqlite_pool_acquire(st, true, &c));
	GUARD_GOTO(sqlite_conn_writable(c));
	GUARD_GOTO(write_enter(st, c->busy_ms));
	locked = true;
	int64_t changes = sqlite3_total_changes64(c->db);
	GUARD_GOTO(sqlite_conn_run(c, ST_BEGIN, "begin"));
	in_tx = true;
	for (size_t i = 0; i < n; i++)
		GUARD_GOTO(apply_one(c, &ops[i]));
	GUARD_GOTO(sqlite_conn_run(c, ST_COMMIT, "commit"));
	in_tx = false;
	committed = true;
	/* Only a commit that wrote proves the files take writes. */
	if (sqlite3_total_changes64(c->db) != changes)
		sqlite_pool_write_ok(st, c);
out:
	if (in_tx)
		sqlite_conn_rollback(c);
	if (locked)
		write_leave(st);
	sqlite_pool_release(st, c);
	if (committed)
		storage_feed_emit_ops(&st->feed, ops, n);
	return rc;
}

/*
 * Deletes every row whose ns starts with the prefix, in one transaction
 * through the writer gate like apply(). secure_delete is on, so the
 * deleted documents' bytes are overwritten. The prefix is compared with
 * substr() rather than LIKE, so '%' and '_' in it mean themselves.
 */
k_status sqlite_purge(struct storage *s, const char *ns_prefix)
{
	struct sqlite_store *st = store_of(s);
	struct sqlite_conn *c = NULL;
	sqlite3_stmt *stmt = NULL;
	bool locked = false;
	bool in_tx = false;
	bool committed = false;
	k_status rc = K_OK;

	GUARD(sqlite_check_name(ns_prefix, false));
	GUARD(sqlite_pool_acquire(st, true, &c));
	GUARD_GOTO(sqlite_conn_writable(c));
	GUARD_GOTO(write_enter(st, c->busy_ms));
	locked = true;
	int64_t changes = sqlite3_total_changes64(c->db);
	GUARD_GOTO(sqlite_conn_run(c, ST_BEGIN, "begin"));
	in_tx = true;
	int src = sqlite3_prepare_v2(c->db, "DELETE FROM docs WHERE substr(ns, 1, length(?1)) = ?1",
				     -1, &stmt, NULL);
	if (src != SQLITE_OK) {
		rc = sqlite_conn_fail(c, src, "prepare purge");
		goto out;
	}
	GUARD_GOTO(sqlite_bind_text(c, stmt, 1, ns_prefix));
	src = sqlite3_step(stmt);
	if (src != SQLITE_DONE) {
		rc = sqlite_conn_fail(c, src, "purge");
		goto out;
	}
	GUARD_GOTO(sqlite_conn_run(c, ST_COMMIT, "commit"));
	in_tx = false;
	committed = true;
	if (sqlite3_total_changes64(c->db) != changes)
		sqlite_pool_write_ok(st, c);
out:
	sqlite3_finalize(stmt);
	if (in_tx)
		sqlite_conn_rollback(c);
	if (locked)
		write_leave(st);
	sqlite_pool_release(st, c);
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
k_status sqlite_scrub(struct storage *s)
{
	struct sqlite_store *st = store_of(s);
	struct sqlite_conn *c = NULL;
	k_status rc = K_OK;

	GUARD(sqlite_pool_acquire(st, true, &c));
	GUARD_GOTO(sqlite_conn_writable(c));
	GUARD_GOTO(write_enter(st, c->busy_ms));
	int log_frames = -1, done_frames = -1;
	int src = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log_frames,
					    &done_frames);
	write_leave(st);
	if (src == SQLITE_BUSY) {
		LOG_WARN("storage: scrub checkpoint could not complete (busy); will retry");
		rc = K_E_STORE_UNAVAILABLE;
	} else if (src != SQLITE_OK) {
		rc = sqlite_conn_fail(c, src, "scrub checkpoint");
	}
out:
	sqlite_pool_release(st, c);
	return rc;
}
