/*
 * pg_internal.h — what the PostgreSQL backend's files share (see pg.c for
 * the map). Not part of the storage contract: only src/storage/pg*.c
 * include it.
 */
#ifndef KINKO_STORAGE_PG_INTERNAL_H
#define KINKO_STORAGE_PG_INTERNAL_H

#include "storage/storage.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "storage/feed.h"

/* The channel every node LISTENs on and NOTIFYs in its writing transactions. */
#define PG_CHANNEL "kinko_feed"
/* A NOTIFY payload: an event's kind, namespace and id with their separators. */
#define PG_NOTIFY_PAYLOAD_MAX (4 * STORAGE_MAX_NAME)

/*
 * Statements prepared once per connection (named "kinko_<n>"). Key
 * parameters are always $1 kind, $2 ns, $3 id; $4 is the document (bytea,
 * sent in binary). Results are asked for in binary.
 */
enum pg_stmt {
	PG_GET,
	PG_LOCK,
	PG_INSERT,
	PG_UPDATE,
	PG_DELETE,
	PG_NOTIFY,
	PG_LIST_NS,
	PG_LIST_ALL,
	PG_STMT_COUNT
};

struct pg_conn {
	PGconn *pc;
	bool prepared[PG_STMT_COUNT];
	bool broken;	      /* saw an error: close rather than reuse */
	bool fresh;	      /* opened for this call (not taken from the pool) */
	uint64_t gen;	      /* the pool's generation when opened */
	struct pg_conn *next; /* idle list link */
};

struct pg_store {
	struct storage base;	  /* first, so a struct storage * is the store */
	char *conninfo;		  /* the URL as given (may hold a password: never logged) */
	struct storage_feed feed; /* told of every committed write (storage.h) */
	char node[17];		  /* this handle's id in NOTIFY payloads (hex) */
	pthread_mutex_t mu;	  /* guards the pool fields below */
	pthread_cond_t cv;	  /* a connection was given back (monotonic clock) */
	struct pg_conn *idle;
	size_t n_idle;
	size_t n_open; /* idle + in use (+ being opened) */
	size_t max_open;
	uint64_t gen;	      /* +1 when the server went away: idle ones are retired */
	int64_t next_open_ns; /* monotonic: no new connection before this */
	bool down_logged;     /* the outage was logged; log its end once */
	/* The listener (pg_listen.c). */
	pthread_t listener;
	bool listener_started;
	atomic_bool stop;
	PGconn *listen_pc; /* owned by the listener thread once it runs */
};

static inline struct pg_store *pg_store_of(struct storage *s)
{
	return (struct pg_store *)s;
}

/* pg.c: connections and the pool. */

/* Opens and sets up one session (synchronous_commit, timeouts); NULL on failure, logged unless quiet. */
PGconn *pg_connect(struct pg_store *st, const char *purpose, bool quiet);
/* Takes an idle connection or opens one; K_E_STORE_UNAVAILABLE fast while the server is down. */
K_MUST_CHECK k_status pg_pool_acquire(struct pg_store *st, struct pg_conn **out);
/* Gives c back, or closes it if it saw an error. NULL: no-op. */
void pg_pool_release(struct pg_store *st, struct pg_conn *c);
/* Logs a failed command (never bound values), marks c broken; K_E_STORE_UNAVAILABLE or K_E_CONFLICT. */
K_MUST_CHECK k_status pg_fail(struct pg_conn *c, const PGresult *res, const char *what);
/* Runs a prepared statement (preparing it on first use); *res is the caller's on K_OK. */
K_MUST_CHECK k_status pg_run(struct pg_conn *c, enum pg_stmt id, int n, const char *const *vals,
			     const int *lens, const int *fmts, ExecStatusType want, PGresult **res,
			     const char *what);
/* Runs a command without parameters that returns no rows (BEGIN, COMMIT, ...). */
K_MUST_CHECK k_status pg_exec(struct pg_conn *c, const char *sql, const char *what);
/* A kind, ns, id or prefix: at most STORAGE_MAX_NAME bytes, empty only if allowed. */
K_MUST_CHECK k_status pg_check_name(const char *s, bool may_be_empty);
/* Whether the call should be tried once more on a new connection (a stale pooled one). */
bool pg_retry_stale(struct pg_store *st, struct pg_conn *c);

/* pg_ops.c: the vtable's members (storage.h). */

K_MUST_CHECK k_status pg_get(struct storage *s, const char *kind, const char *ns, const char *id,
			     struct kbuf *doc, int64_t *version);
K_MUST_CHECK k_status pg_apply(struct storage *s, const struct storage_op *ops, size_t n);
K_MUST_CHECK k_status pg_list(struct storage *s, const char *kind, const char *ns,
			      const char *prefix, const char *after, size_t limit,
			      storage_list_cb cb, void *arg);
K_MUST_CHECK k_status pg_purge(struct storage *s, const char *ns_prefix);
K_MUST_CHECK k_status pg_check(struct storage *s);
K_MUST_CHECK k_status pg_scrub(struct storage *s);
K_MUST_CHECK k_status pg_mark(struct storage *s, const char *token);
K_MUST_CHECK k_status pg_kinds(struct storage *s, storage_kind_cb cb, void *arg);

/* pg_listen.c: the change feed across nodes. */

/* The NOTIFY payload of one event of this node, into out. */
K_MUST_CHECK k_status pg_payload(const struct pg_store *st, enum storage_event_kind what,
				 const char *kind, const char *ns, const char *id,
				 struct kbuf *out);
/* Connects the listener and starts its thread. */
K_MUST_CHECK k_status pg_listen_start(struct pg_store *st);
/* Stops and joins the listener thread. */
void pg_listen_stop(struct pg_store *st);

#endif
