/*
 * sqlite_internal.h — what the SQLite backend's files share (see sqlite.c
 * for the map). Not part of the storage contract: only src/storage/sqlite*.c
 * include it.
 */
#ifndef KINKO_STORAGE_SQLITE_INTERNAL_H
#define KINKO_STORAGE_SQLITE_INTERNAL_H

#include "storage/storage.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "storage/feed.h"

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

struct sqlite_conn {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	int busy_ms;	/* the timeout currently set on db */
	bool broken;	/* saw an error: close rather than reuse */
	bool bad_files; /* saw an error that condemns the open files */
	bool for_write; /* taken by a call that writes */
	uint64_t gen;	/* the store's generation when opened */
	dev_t dev;	/* the database file it has open */
	ino_t ino;
	struct sqlite_conn *next; /* idle list link */
};

struct sqlite_store {
	struct storage base;	  /* first, so a struct storage * is the store */
	struct kbuf path;	  /* dir/kinko.db */
	struct storage_feed feed; /* told of every committed write (storage.h) */
	/* The writer gate: `writing` is true while a thread of this process
	 * writes; others wait on write_cv (monotonic clock). */
	pthread_mutex_t write_mu;
	pthread_cond_t write_cv;
	bool writing;
	pthread_mutex_t mu; /* guards the fields below */
	struct sqlite_conn *idle;
	size_t n_idle;
	size_t n_open; /* idle + in use (+ being opened) */
	int busy_ms;
	uint64_t gen;	       /* +1 whenever every open connection is retired */
	bool faulted;	       /* a bad-files error since the last good write */
	int64_t next_open_ns;  /* monotonic: no open before this */
	int64_t next_write_ns; /* monotonic: while faulted, no write before this */
};

static inline struct sqlite_store *store_of(struct storage *s)
{
	return (struct sqlite_store *)s;
}

/* sqlite_conn.c: one connection. */

/*
 * Logs a SQLite failure (the operation and SQLite's text, never bound
 * values), marks c for closing (and its files as bad where src says so)
 * and returns K_E_STORE_UNAVAILABLE.
 */
K_MUST_CHECK k_status sqlite_conn_fail(struct sqlite_conn *c, int src, const char *what);
/* Finalizes c's statements, closes its handle and frees it; NULL is a no-op. */
void sqlite_conn_close(struct sqlite_conn *c);
/* Runs SQL that returns no rows; a failure goes through sqlite_conn_fail. */
K_MUST_CHECK k_status sqlite_conn_exec(struct sqlite_conn *c, const char *sql, const char *what);
/* Runs a one-row PRAGMA and reads its integer answer into *out. */
K_MUST_CHECK k_status sqlite_conn_pragma_int(struct sqlite_conn *c, const char *sql, int64_t *out);
/* Opens one set-up connection to the existing file at path; *out is the caller's. */
K_MUST_CHECK k_status sqlite_conn_open(const char *path, int busy_ms, struct sqlite_conn **out);
/* The cached statement id of c, prepared on first use; owned by c. */
K_MUST_CHECK k_status sqlite_conn_stmt(struct sqlite_conn *c, enum stmt_id id, sqlite3_stmt **out);
/* Resets a cached statement so it holds no read snapshot and no bound pointers. */
void sqlite_stmt_done(sqlite3_stmt *st);
/* Runs a cached statement that returns no rows (BEGIN, COMMIT, ...). */
K_MUST_CHECK k_status sqlite_conn_run(struct sqlite_conn *c, enum stmt_id id, const char *what);
/* Rolls back the open transaction, if any. */
void sqlite_conn_rollback(struct sqlite_conn *c);
/* A kind, ns, id or prefix: at most STORAGE_MAX_NAME bytes, empty only if allowed. */
K_MUST_CHECK k_status sqlite_check_name(const char *s, bool may_be_empty);
/* A record's key: kind and id non-empty, ns possibly empty. */
K_MUST_CHECK k_status sqlite_check_key(const char *kind, const char *ns, const char *id);
/* Binds s (which must outlive the statement's use) as text parameter idx. */
K_MUST_CHECK k_status sqlite_bind_text(struct sqlite_conn *c, sqlite3_stmt *st, int idx,
				       const char *s);
/* Binds ?1 kind, ?2 ns, ?3 id. */
K_MUST_CHECK k_status sqlite_bind_key(struct sqlite_conn *c, sqlite3_stmt *st, const char *kind,
				      const char *ns, const char *id);

/* sqlite_pool.c: the pool and the fault rules. */

/* Takes an idle connection or opens one; give it back with sqlite_pool_release. */
K_MUST_CHECK k_status sqlite_pool_acquire(struct sqlite_store *st, bool write,
					  struct sqlite_conn **out);
/* Gives c back (or closes it); faults the store after a bad-files error. NULL: no-op. */
void sqlite_pool_release(struct sqlite_store *st, struct sqlite_conn *c);
/* After a write committed on c: ends a fault. */
void sqlite_pool_write_ok(struct sqlite_store *st, struct sqlite_conn *c);
/* K_OK unless c's handle is read-only, which is then a bad-files error. */
K_MUST_CHECK k_status sqlite_conn_writable(struct sqlite_conn *c);

/* sqlite_tx.c and sqlite_read.c: the vtable's members (storage.h). */

K_MUST_CHECK k_status sqlite_apply(struct storage *s, const struct storage_op *ops, size_t n);
K_MUST_CHECK k_status sqlite_purge(struct storage *s, const char *ns_prefix);
K_MUST_CHECK k_status sqlite_scrub(struct storage *s);
K_MUST_CHECK k_status sqlite_get(struct storage *s, const char *kind, const char *ns,
				 const char *id, struct kbuf *doc, int64_t *version);
K_MUST_CHECK k_status sqlite_list(struct storage *s, const char *kind, const char *ns,
				  const char *prefix, const char *after, size_t limit,
				  storage_list_cb cb, void *arg);
K_MUST_CHECK k_status sqlite_check(struct storage *s);
K_MUST_CHECK k_status sqlite_kinds(struct storage *s, storage_kind_cb cb,
				   void *arg); /* sqlite_kinds.c */

#endif
