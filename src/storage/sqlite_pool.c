/*
 * sqlite_pool.c — the SQLite backend's connection pool and its fault rules.
 *
 * Connections come from a small pool guarded by a mutex: a call takes an
 * idle connection (or opens one), uses it alone, and gives it back. That
 * keeps each sqlite3 handle on one thread at a time, lets a list callback
 * call back into the store (it simply gets another connection), and makes
 * close() able to reach every connection.
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
#include "storage/sqlite_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/banned.h"

/* Idle connections kept open; more are closed when given back. */
#define POOL_MAX_IDLE 16
/* While faulted, at most one write try per this; after a failed open or a
 * read's bad-files error, no open for this long (see the header comment). */
#define REOPEN_BACKOFF_MS 200

/* Closes a list of connections linked by next (taken off the pool under mu). */
static void close_list(struct sqlite_conn *c)
{
	while (c != NULL) {
		struct sqlite_conn *next = c->next;
		sqlite_conn_close(c);
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
k_status sqlite_pool_acquire(struct sqlite_store *st, bool write, struct sqlite_conn **out)
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
	int64_t now = kclock_mono_ns();
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
		k_status rc = sqlite_conn_open(kbuf_cstr(&st->path), busy_ms, &c);
		if (k_failed(rc)) {
			pthread_mutex_lock(&st->mu);
			st->n_open--;
			st->next_open_ns = kclock_mono_ns() + backoff;
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
void sqlite_pool_release(struct sqlite_store *st, struct sqlite_conn *c)
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
		int64_t until = kclock_mono_ns() + (int64_t)REOPEN_BACKOFF_MS * 1000000;
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
		sqlite_conn_close(c);
}

/*
 * Called after a write committed on c: its files take writes, so a fault
 * is over. The connections opened during the fault (read-only handles,
 * or handles on a filesystem since replaced) are retired; c, which just
 * proved itself, joins the new generation.
 */
void sqlite_pool_write_ok(struct sqlite_store *st, struct sqlite_conn *c)
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
k_status sqlite_conn_writable(struct sqlite_conn *c)
{
	if (sqlite3_db_readonly(c->db, "main") != 1)
		return K_OK;
	LOG_WARN("storage: write refused: the database is open read-only (read-only file or "
		 "filesystem)");
	c->broken = c->bad_files = true;
	return K_E_STORE_UNAVAILABLE;
}
