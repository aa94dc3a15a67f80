/*
 * pg.c — the PostgreSQL storage backend (see storage.h for the contract):
 * opening the store, its schema, the connection pool and the vtable.
 *
 * One table, kinko_docs, holds every document keyed by (kind, ns, id),
 * with the "C" collation so that listings come in byte order as SQLite's
 * do. kinko_schema holds the schema version; the migrations run under an
 * advisory lock, so several nodes starting at once take turns and the
 * first one does the work.
 *
 * Sessions: each connection runs with synchronous_commit on (a COMMIT
 * returns once the WAL is flushed, and on the synchronous standbys if the
 * server names any), a statement and lock timeout, and TCP keepalives, so
 * that no request thread waits long on a server that went away. libpq's
 * connect_timeout defaults to 3 s unless the URL sets its own.
 *
 * The pool is bounded (PG_POOL_MAX connections; a caller waits at most
 * PG_POOL_WAIT_MS for one). A connection that saw an error is closed, not
 * reused. When a new connection cannot be made, further attempts are held
 * back for PG_BACKOFF_MS and calls fail at once with
 * K_E_STORE_UNAVAILABLE meanwhile: a server that is down costs a request
 * no wait. A pooled connection that the server closed (a restart) fails on
 * first use; every idle one is then retired and the call tried once more
 * on a new connection, so kinko recovers by itself once the server is back.
 *
 * The backend's files:
 *   pg.c         opening, the schema, connections and the pool, the vtable;
 *   pg_ops.c     get, list, apply, purge, check, scrub, kinds;
 *   pg_listen.c  the change feed across nodes: NOTIFY payloads and the
 *                listener thread.
 */
#include "storage/pg_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/banned.h"

/* Connections per node: kinko's request threads top out at 64, plus the
 * scheduler and listings' nested calls; a busy node queues beyond that. */
#define PG_POOL_MAX 72u
#define PG_POOL_IDLE_MAX 16u
#define PG_POOL_WAIT_MS 5000
#define PG_BACKOFF_MS 250
#define CONNINFO_MAX 4096u

/* The schema migrations, in order: entry i brings the version from i to i + 1. */
static const char *const migrations[] = {
	/* 1: the document table. */
	"CREATE TABLE kinko_docs ("
	" kind text COLLATE \"C\" NOT NULL,"
	" ns text COLLATE \"C\" NOT NULL,"
	" id text COLLATE \"C\" NOT NULL,"
	" version bigint NOT NULL CHECK (version >= 1),"
	" doc bytea NOT NULL,"
	" PRIMARY KEY (kind, ns, id))",
};

#define N_MIGRATIONS ((int64_t)(sizeof migrations / sizeof migrations[0]))

/* Any number: the advisory lock the migrations run under ("kinko" in ASCII). */
#define MIGRATION_LOCK "461721023343"

static const char *const stmt_sql[PG_STMT_COUNT] = {
	[PG_GET] = "SELECT version, doc FROM kinko_docs WHERE kind = $1 AND ns = $2 AND id = $3",
	[PG_LOCK] = "SELECT version FROM kinko_docs WHERE kind = $1 AND ns = $2 AND id = $3"
		    " FOR UPDATE",
	[PG_INSERT] = "INSERT INTO kinko_docs (kind, ns, id, version, doc)"
		      " VALUES ($1, $2, $3, 1, $4)",
	[PG_UPDATE] = "UPDATE kinko_docs SET version = version + 1, doc = $4"
		      " WHERE kind = $1 AND ns = $2 AND id = $3",
	[PG_DELETE] = "DELETE FROM kinko_docs WHERE kind = $1 AND ns = $2 AND id = $3",
	[PG_NOTIFY] = "SELECT pg_notify('" PG_CHANNEL "', $1)",
	/* $3: exclusive "after", $4: prefix (also the inclusive lower bound), $5: page size. */
	[PG_LIST_NS] = "SELECT ns, id, version, doc FROM kinko_docs"
		       " WHERE kind = $1 AND ns = $2 AND id > $3 AND id >= $4"
		       " AND starts_with(id, $4) ORDER BY id LIMIT $5",
	/* ($2, $3): the last row of the previous page; $4: "after"; $5: prefix; $6: page size. */
	[PG_LIST_ALL] = "SELECT ns, id, version, doc FROM kinko_docs"
			" WHERE kind = $1 AND (ns, id) > ($2, $3) AND id > $4"
			" AND starts_with(id, $5) ORDER BY ns, id LIMIT $6",
};

/* The server's message on one line, without the password-bearing conninfo. */
static int msg_len(const char *m)
{
	size_t n = strcspn(m != NULL ? m : "", "\n");
	return n > 300 ? 300 : (int)n;
}

/* The server's notices ("relation already exists, skipping") go to the debug log, not stderr. */
static void notice_to_log(void *arg, const char *message)
{
	(void)arg;
	LOG_DEBUG("storage: PostgreSQL notice: %.*s", msg_len(message), message);
}

PGconn *pg_connect(struct pg_store *st, const char *purpose, bool quiet)
{
	/* kinko's defaults come first: what the URL says overrides them. */
	const char *const keys[] = {"connect_timeout",	   "keepalives",       "keepalives_idle",
				    "keepalives_interval", "keepalives_count", "tcp_user_timeout",
				    "application_name",	   "dbname",	       NULL};
	const char *const vals[] = {"3", "1", "5", "2", "2", "5000", "kinko", st->conninfo, NULL};
	PGconn *pc = PQconnectdbParams(keys, vals, 1);
	if (pc == NULL || PQstatus(pc) != CONNECTION_OK) {
		const char *m = pc != NULL ? PQerrorMessage(pc) : "out of memory";
		if (!quiet)
			LOG_WARN("storage: cannot connect to PostgreSQL (%s): %.*s", purpose,
				 msg_len(m), m);
		PQfinish(pc);
		return NULL;
	}
	PQsetNoticeProcessor(pc, notice_to_log, NULL);
	PGresult *r = PQexec(pc, "SET synchronous_commit TO on;"
				 " SET statement_timeout TO 5000;"
				 " SET lock_timeout TO 5000;"
				 " SET idle_in_transaction_session_timeout TO 30000");
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		LOG_WARN("storage: cannot set up a PostgreSQL session: %.*s",
			 msg_len(PQresultErrorMessage(r)), PQresultErrorMessage(r));
	PQclear(r);
	if (!ok) {
		PQfinish(pc);
		return NULL;
	}
	return pc;
}

static void conn_close(struct pg_conn *c)
{
	if (c == NULL)
		return;
	PQfinish(c->pc);
	free(c);
}

static void close_list(struct pg_conn *c)
{
	while (c != NULL) {
		struct pg_conn *next = c->next;
		conn_close(c);
		c = next;
	}
}

/* Waits on the pool's condition variable, at most until deadline (monotonic ns). */
static void wait_until(struct pg_store *st, int64_t deadline)
{
	struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000),
			      .tv_nsec = (long)(deadline % 1000000000)};
	(void)pthread_cond_timedwait(&st->cv, &st->mu, &ts);
}

k_status pg_pool_acquire(struct pg_store *st, struct pg_conn **out)
{
	struct pg_conn *c = NULL, *drop = NULL;
	int64_t deadline = kclock_mono_ns() + (int64_t)PG_POOL_WAIT_MS * 1000000;
	pthread_mutex_lock(&st->mu);
	for (;;) {
		while (st->idle != NULL && c == NULL) {
			c = st->idle;
			st->idle = c->next;
			st->n_idle--;
			if (c->gen != st->gen) {
				st->n_open--;
				c->next = drop;
				drop = c;
				c = NULL;
			}
		}
		if (c != NULL || st->n_open < st->max_open)
			break;
		if (kclock_mono_ns() >= deadline) {
			pthread_mutex_unlock(&st->mu);
			close_list(drop);
			LOG_WARN("storage: every PostgreSQL connection stayed busy for %d ms",
				 PG_POOL_WAIT_MS);
			return K_E_STORE_UNAVAILABLE;
		}
		wait_until(st, deadline);
	}
	bool refused = false;
	if (c == NULL) {
		refused = kclock_mono_ns() < st->next_open_ns;
		if (!refused)
			st->n_open++;
	}
	uint64_t gen = st->gen;
	bool quiet = st->down_logged;
	pthread_mutex_unlock(&st->mu);
	close_list(drop);
	/* Not logged: the failed connect was, and a dead server must not flood the log. */
	ENSURE(!refused, K_E_STORE_UNAVAILABLE);
	if (c != NULL) {
		c->fresh = false;
		*out = c;
		return K_OK;
	}
	c = calloc(1, sizeof *c);
	/* One line per outage, not one per attempt. */
	PGconn *pc = c != NULL ? pg_connect(st, "pool", quiet) : NULL;
	pthread_mutex_lock(&st->mu);
	if (pc == NULL) {
		st->n_open--;
		st->next_open_ns = kclock_mono_ns() + (int64_t)PG_BACKOFF_MS * 1000000;
		st->down_logged = true;
		pthread_cond_signal(&st->cv);
	} else if (st->down_logged) {
		st->down_logged = false;
		LOG_INFO("storage: PostgreSQL is reachable again");
	}
	pthread_mutex_unlock(&st->mu);
	if (pc == NULL) {
		free(c);
		return K_E_STORE_UNAVAILABLE;
	}
	c->pc = pc;
	c->gen = gen;
	c->fresh = true;
	*out = c;
	return K_OK;
}

void pg_pool_release(struct pg_store *st, struct pg_conn *c)
{
	struct pg_conn *drop = NULL;
	if (c == NULL)
		return;
	bool lost = PQstatus(c->pc) != CONNECTION_OK;
	if (lost || PQtransactionStatus(c->pc) != PQTRANS_IDLE)
		c->broken = true;
	pthread_mutex_lock(&st->mu);
	if (lost && c->gen == st->gen) {
		/* The server closed this one: the idle ones are likely closed too. */
		st->gen++;
		drop = st->idle;
		st->n_open -= st->n_idle;
		st->idle = NULL;
		st->n_idle = 0;
	}
	bool keep = !c->broken && c->gen == st->gen && st->n_idle < PG_POOL_IDLE_MAX;
	if (keep) {
		c->next = st->idle;
		st->idle = c;
		st->n_idle++;
	} else {
		st->n_open--;
	}
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
	close_list(drop);
	if (!keep)
		conn_close(c);
}

bool pg_retry_stale(struct pg_store *st, struct pg_conn *c)
{
	(void)st;
	return c != NULL && !c->fresh && PQstatus(c->pc) != CONNECTION_OK;
}

/*
 * SQLSTATE classes: 23505 (a unique key: another node created the record
 * first) is a failed precondition; everything else is the store being
 * unavailable for now (timeouts, a restart, a serialization failure).
 */
k_status pg_fail(struct pg_conn *c, const PGresult *res, const char *what)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state != NULL && strcmp(state, "23505") == 0)
		return K_E_CONFLICT;
	const char *m = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(c->pc);
	if (m == NULL || m[0] == 0)
		m = PQerrorMessage(c->pc);
	LOG_WARN("storage: %s failed: %.*s (sqlstate %s)", what, msg_len(m), m,
		 state != NULL ? state : "none");
	c->broken = true;
	return K_E_STORE_UNAVAILABLE;
}

static K_MUST_CHECK k_status prepare(struct pg_conn *c, enum pg_stmt id)
{
	if (c->prepared[id])
		return K_OK;
	char name[32];
	snprintf(name, sizeof name, "kinko_%d", (int)id);
	PGresult *r = PQprepare(c->pc, name, stmt_sql[id], 0, NULL);
	k_status rc = PQresultStatus(r) == PGRES_COMMAND_OK ? K_OK : pg_fail(c, r, "prepare");
	PQclear(r);
	if (k_ok(rc))
		c->prepared[id] = true;
	return rc;
}

k_status pg_run(struct pg_conn *c, enum pg_stmt id, int n, const char *const *vals, const int *lens,
		const int *fmts, ExecStatusType want, PGresult **res, const char *what)
{
	GUARD(prepare(c, id));
	char name[32];
	snprintf(name, sizeof name, "kinko_%d", (int)id);
	PGresult *r = PQexecPrepared(c->pc, name, n, vals, lens, fmts, 1);
	if (PQresultStatus(r) != want) {
		k_status rc = pg_fail(c, r, what);
		PQclear(r);
		return rc;
	}
	*res = r;
	return K_OK;
}

k_status pg_exec(struct pg_conn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c->pc, sql);
	k_status rc = PQresultStatus(r) == PGRES_COMMAND_OK ? K_OK : pg_fail(c, r, what);
	PQclear(r);
	return rc;
}

k_status pg_check_name(const char *s, bool may_be_empty)
{
	ENSURE(s != NULL, K_E_VALIDATION);
	size_t n = strnlen(s, STORAGE_MAX_NAME + 1);
	ENSURE(n <= STORAGE_MAX_NAME, K_E_VALIDATION);
	ENSURE(n > 0 || may_be_empty, K_E_VALIDATION);
	return K_OK;
}

/* One row, one integer column (text format) of a query without parameters. */
static K_MUST_CHECK k_status query_int(struct pg_conn *c, const char *sql, bool *found,
				       int64_t *out)
{
	PGresult *r = PQexec(c->pc, sql);
	k_status rc = K_OK;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = pg_fail(c, r, "read the schema version");
	} else if (PQntuples(r) == 0) {
		*found = false;
	} else {
		*found = true;
		*out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	}
	PQclear(r);
	return rc;
}

/*
 * Brings the schema up to date in one transaction, under an advisory
 * lock held until it ends: a node that starts meanwhile waits, then finds
 * the work done. A database from a newer build is refused.
 */
static K_MUST_CHECK k_status migrate(struct pg_conn *c, struct kbuf *why)
{
	k_status rc = K_OK;
	bool found = false;
	int64_t have = 0;
	GUARD(pg_exec(c, "BEGIN", "begin migration"));
	GUARD_GOTO(pg_exec(c, "SET LOCAL lock_timeout TO 0; SET LOCAL statement_timeout TO 60000",
			   "migration timeouts"));
	PGresult *r = PQexec(c->pc, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")");
	rc = PQresultStatus(r) == PGRES_TUPLES_OK ? K_OK : pg_fail(c, r, "migration lock");
	PQclear(r);
	GUARD_GOTO(rc);
	GUARD_GOTO(pg_exec(c, "CREATE TABLE IF NOT EXISTS kinko_schema (version bigint NOT NULL)",
			   "schema table"));
	GUARD_GOTO(query_int(c, "SELECT version FROM kinko_schema", &found, &have));
	if (!found)
		GUARD_GOTO(
			pg_exec(c, "INSERT INTO kinko_schema (version) VALUES (0)", "schema row"));
	if (have > N_MIGRATIONS) {
		LOG_ERROR("storage: the database has schema version %" PRId64
			  ", newer than this build's %" PRId64 "; refusing to open it",
			  have, N_MIGRATIONS);
		kbuf_note(why,
			  "the PostgreSQL database has kinko schema version %" PRId64
			  ", newer than this build's %" PRId64,
			  have, N_MIGRATIONS);
		rc = K_E_INTERNAL;
		goto out;
	}
	for (int64_t v = have; v < N_MIGRATIONS; v++) {
		GUARD_GOTO(pg_exec(c, migrations[v], "schema migration"));
		LOG_INFO("storage: applied PostgreSQL schema migration %" PRId64, v + 1);
	}
	if (have < N_MIGRATIONS) {
		char sql[96];
		snprintf(sql, sizeof sql, "UPDATE kinko_schema SET version = %" PRId64,
			 N_MIGRATIONS);
		GUARD_GOTO(pg_exec(c, sql, "set schema version"));
	}
	GUARD_GOTO(pg_exec(c, "COMMIT", "commit migration"));
	return K_OK;
out:
	if (PQtransactionStatus(c->pc) != PQTRANS_IDLE)
		k_ignore(pg_exec(c, "ROLLBACK", "rollback migration"));
	return rc;
}

static void store_free(struct pg_store *st)
{
	if (st == NULL)
		return;
	pg_listen_stop(st);
	close_list(st->idle);
	if (st->n_open != st->n_idle)
		LOG_ERROR("storage: closed while %zu calls were still running",
			  st->n_open - st->n_idle);
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->cv);
	storage_feed_release(&st->feed);
	free(st->conninfo);
	free(st);
}

static void pg_close(struct storage *s)
{
	store_free(pg_store_of(s));
}

static K_MUST_CHECK k_status pg_subscribe(struct storage *s, storage_change_cb cb, void *arg)
{
	return storage_feed_add(&pg_store_of(s)->feed, cb, arg);
}

static const struct storage_vtbl pg_vtbl = {
	.get = pg_get,
	.apply = pg_apply,
	.list = pg_list,
	.check = pg_check,
	.close = pg_close,
	.purge = pg_purge,
	.scrub = pg_scrub,
	.subscribe = pg_subscribe,
	.kinds = pg_kinds,
	.mark = pg_mark,
};

static K_MUST_CHECK k_status cv_init(pthread_cond_t *cv)
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

/* The node id in NOTIFY payloads: random, so that two handles never share one. */
static void make_node_id(char out[17])
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
		v = (uint64_t)kclock_mono_ns() ^ ((uint64_t)getpid() << 32);
	snprintf(out, 17, "%016" PRIx64, v);
}

static struct pg_store *store_new(const char *conninfo)
{
	struct pg_store *st = calloc(1, sizeof *st);
	if (st == NULL)
		return NULL;
	st->conninfo = strdup(conninfo);
	bool ok = st->conninfo != NULL;
	bool mu = ok && pthread_mutex_init(&st->mu, NULL) == 0;
	bool cv = mu && k_ok(cv_init(&st->cv));
	bool feed = cv && k_ok(storage_feed_init(&st->feed));
	if (!feed) {
		if (cv)
			pthread_cond_destroy(&st->cv);
		if (mu)
			pthread_mutex_destroy(&st->mu);
		free(st->conninfo);
		free(st);
		return NULL;
	}
	st->base.vt = &pg_vtbl;
	st->base.shared = true;
	st->max_open = PG_POOL_MAX;
	atomic_init(&st->stop, false);
	make_node_id(st->node);
	return st;
}

static K_MUST_CHECK k_status pg_open(const char *conninfo, struct storage **out, struct kbuf *why)
{
	k_status rc = K_OK;
	struct pg_conn *c = NULL;
	ENSURE(strnlen(conninfo, CONNINFO_MAX) < CONNINFO_MAX, K_E_VALIDATION);
	*out = NULL;
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL) {
		kbuf_note(why, "the PostgreSQL URL is not valid: %.*s", msg_len(err),
			  err != NULL ? err : "out of memory");
		PQfreemem(err);
		return K_E_VALIDATION;
	}
	PQconninfoFree(opts);
	struct pg_store *st = store_new(conninfo);
	ENSURE(st != NULL, K_E_INTERNAL);
	rc = pg_pool_acquire(st, &c);
	if (k_failed(rc)) {
		kbuf_note(why, "cannot connect to the PostgreSQL store (see the log for the "
			       "server's answer)");
		goto out;
	}
	GUARD_GOTO(migrate(c, why));
	rc = pg_listen_start(st);
	if (k_failed(rc)) {
		kbuf_note(why, "cannot LISTEN for the change feed on the PostgreSQL store");
		goto out;
	}
	*out = &st->base;
out:
	pg_pool_release(st, c);
	if (k_failed(rc)) {
		if (why != NULL && kbuf_cstr(why)[0] == 0)
			kbuf_note(why, "cannot open the PostgreSQL store (%s)", k_status_name(rc));
		store_free(st);
	}
	return rc;
}

k_status storage_pg_open(const char *conninfo, struct storage **out, struct kbuf *why)
{
	ENSURE(conninfo != NULL && out != NULL, K_E_VALIDATION);
	struct kbuf scratch;
	kbuf_init(&scratch, KBUF_NOTE_MAX);
	k_status rc = pg_open(conninfo, out, why != NULL ? why : &scratch);
	kbuf_release(&scratch);
	return rc;
}
