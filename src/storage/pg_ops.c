/*
 * pg_ops.c — the PostgreSQL backend's calls: get, list, apply, purge,
 * check, scrub and kinds. Each takes a pooled connection for the length of
 * its SQL and gives it back before any callback runs.
 */
#include "storage/pg_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/banned.h"

/* Rows per round trip of a listing. */
#define LIST_PAGE 256u

/* A binary int8 column. */
static int64_t col_i64(const PGresult *r, int row, int col)
{
	const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
	if (PQgetlength(r, row, col) != 8)
		return -1;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (int64_t)v;
}

static K_MUST_CHECK k_status check_key(const char *kind, const char *ns, const char *id)
{
	GUARD(pg_check_name(kind, false));
	GUARD(pg_check_name(ns, true));
	GUARD(pg_check_name(id, false));
	return K_OK;
}

static K_MUST_CHECK k_status get_once(struct pg_store *st, struct pg_conn **cp, const char *kind,
				      const char *ns, const char *id, struct kbuf *doc,
				      int64_t *version)
{
	PGresult *r = NULL;
	k_status rc = K_OK;
	const char *vals[3] = {kind, ns, id};
	GUARD(pg_pool_acquire(st, cp));
	GUARD(pg_run(*cp, PG_GET, 3, vals, NULL, NULL, PGRES_TUPLES_OK, &r, "get"));
	ENSURE_GOTO(PQntuples(r) == 1, K_E_NOT_FOUND);
	if (doc != NULL)
		GUARD_GOTO(kbuf_append(doc, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1)));
	if (version != NULL)
		*version = col_i64(r, 0, 0);
out:
	PQclear(r);
	return rc;
}

k_status pg_get(struct storage *s, const char *kind, const char *ns, const char *id,
		struct kbuf *doc, int64_t *version)
{
	struct pg_store *st = pg_store_of(s);
	GUARD(check_key(kind, ns, id));
	k_status rc = K_OK;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct pg_conn *c = NULL;
		rc = get_once(st, &c, kind, ns, id, doc, version);
		bool again = k_failed(rc) && attempt == 0 && pg_retry_stale(st, c);
		pg_pool_release(st, c);
		if (!again)
			break;
	}
	return rc;
}

/* ---- list -------------------------------------------------------------------- */

struct list_query {
	const char *kind;
	const char *ns;	    /* NULL: every namespace */
	const char *prefix; /* "" when none */
	const char *after;  /* "" when none */
	size_t limit;	    /* 0: no limit */
	storage_list_cb cb;
	void *arg;
	/* Where the next page starts (the last row handed out). */
	char last_ns[STORAGE_MAX_NAME + 1];
	char last_id[STORAGE_MAX_NAME + 1];
	size_t count;
};

/* Copies a text column into dst (STORAGE_MAX_NAME + 1 bytes). */
static K_MUST_CHECK k_status col_name(const PGresult *r, int row, int col, char *dst)
{
	int n = PQgetlength(r, row, col);
	ENSURE(n >= 0 && (size_t)n <= STORAGE_MAX_NAME, K_E_INTERNAL);
	memcpy(dst, PQgetvalue(r, row, col), (size_t)n);
	dst[n] = 0;
	return K_OK;
}

/* Fetches one page into *out (NULL when the connection failed). */
static K_MUST_CHECK k_status fetch_page(struct pg_store *st, struct list_query *q, size_t want,
					PGresult **out)
{
	char page[24];
	snprintf(page, sizeof page, "%zu", want);
	k_status rc = K_OK;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct pg_conn *c = NULL;
		rc = pg_pool_acquire(st, &c);
		if (k_ok(rc) && q->ns != NULL) {
			const char *after =
				strcmp(q->last_id, q->after) > 0 ? q->last_id : q->after;
			const char *vals[5] = {q->kind, q->ns, after, q->prefix, page};
			rc = pg_run(c, PG_LIST_NS, 5, vals, NULL, NULL, PGRES_TUPLES_OK, out,
				    "list");
		} else if (k_ok(rc)) {
			const char *vals[6] = {q->kind,	 q->last_ns, q->last_id,
					       q->after, q->prefix,  page};
			rc = pg_run(c, PG_LIST_ALL, 6, vals, NULL, NULL, PGRES_TUPLES_OK, out,
				    "list");
		}
		bool again = k_failed(rc) && attempt == 0 && pg_retry_stale(st, c);
		pg_pool_release(st, c);
		if (!again)
			break;
	}
	return rc;
}

/*
 * Hands one page's rows to the callback, with no connection held (so the
 * callback may call back into the store). *more: the page was full.
 */
static K_MUST_CHECK k_status hand_out(struct list_query *q, PGresult *r, size_t want, bool *more)
{
	int n = PQntuples(r);
	char ns[STORAGE_MAX_NAME + 1], id[STORAGE_MAX_NAME + 1];
	for (int i = 0; i < n; i++) {
		GUARD(col_name(r, i, 0, ns));
		GUARD(col_name(r, i, 1, id));
		int64_t version = col_i64(r, i, 2);
		struct kslice doc = kslice_make(PQgetvalue(r, i, 3), (size_t)PQgetlength(r, i, 3));
		memcpy(q->last_ns, ns, sizeof ns);
		memcpy(q->last_id, id, sizeof id);
		GUARD(q->cb(q->arg, ns, id, doc, version));
		q->count++;
	}
	*more = (size_t)n == want;
	return K_OK;
}

/*
 * Pages through the rows by key (each page starts after the last row
 * handed out), so that no connection or snapshot is held across the
 * callbacks and a listing of any size costs bounded memory.
 */
k_status pg_list(struct storage *s, const char *kind, const char *ns, const char *prefix,
		 const char *after, size_t limit, storage_list_cb cb, void *arg)
{
	struct pg_store *st = pg_store_of(s);
	ENSURE(cb != NULL, K_E_VALIDATION);
	GUARD(pg_check_name(kind, false));
	if (ns != NULL)
		GUARD(pg_check_name(ns, true));
	if (prefix != NULL)
		GUARD(pg_check_name(prefix, true));
	if (after != NULL)
		GUARD(pg_check_name(after, true));
	struct list_query *q = calloc(1, sizeof *q);
	ENSURE(q != NULL, K_E_INTERNAL);
	*q = (struct list_query){.kind = kind,
				 .ns = ns,
				 .prefix = prefix != NULL ? prefix : "",
				 .after = after != NULL ? after : "",
				 .limit = limit,
				 .cb = cb,
				 .arg = arg};
	k_status rc = K_OK;
	bool more = true;
	while (more && k_ok(rc) && (limit == 0 || q->count < limit)) {
		size_t want = LIST_PAGE;
		if (limit != 0 && limit - q->count < want)
			want = limit - q->count;
		PGresult *r = NULL;
		rc = fetch_page(st, q, want, &r);
		if (k_ok(rc))
			rc = hand_out(q, r, want, &more);
		PQclear(r);
	}
	free(q);
	return rc;
}

/* ---- apply and purge ------------------------------------------------------- */

static K_MUST_CHECK k_status check_op(const struct storage_op *op)
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

/*
 * One op inside the transaction. The row is read FOR UPDATE, so a writer
 * on another node waits for this transaction and then sees its version;
 * two nodes creating the same record meet at the primary key instead
 * (23505, a conflict).
 */
static K_MUST_CHECK k_status apply_one(struct pg_conn *c, const struct storage_op *op)
{
	PGresult *r = NULL;
	const char *key[3] = {op->kind, op->ns, op->id};
	GUARD(pg_run(c, PG_LOCK, 3, key, NULL, NULL, PGRES_TUPLES_OK, &r, "read version"));
	int64_t cur = PQntuples(r) == 1 ? col_i64(r, 0, 0) : 0;
	PQclear(r);
	r = NULL;
	GUARD(check_expect(op, cur));
	k_status rc = K_OK;
	if (op->op == STORAGE_DEL) {
		if (cur == 0)
			return K_OK;
		rc = pg_run(c, PG_DELETE, 3, key, NULL, NULL, PGRES_COMMAND_OK, &r, "delete");
	} else {
		const char *vals[4] = {op->kind, op->ns, op->id,
				       op->doc.len > 0 ? (const char *)op->doc.ptr : ""};
		const int lens[4] = {0, 0, 0, (int)op->doc.len};
		const int fmts[4] = {0, 0, 0, 1};
		rc = pg_run(c, cur == 0 ? PG_INSERT : PG_UPDATE, 4, vals, lens, fmts,
			    PGRES_COMMAND_OK, &r, "write");
	}
	PQclear(r);
	return rc;
}

/* Queues the NOTIFY of one event; PostgreSQL delivers it only if the transaction commits. */
static K_MUST_CHECK k_status notify(struct pg_store *st, struct pg_conn *c,
				    enum storage_event_kind what, const char *kind, const char *ns,
				    const char *id)
{
	struct kbuf payload;
	kbuf_init(&payload, PG_NOTIFY_PAYLOAD_MAX);
	PGresult *r = NULL;
	k_status rc = pg_payload(st, what, kind, ns, id, &payload);
	if (k_ok(rc)) {
		const char *vals[1] = {kbuf_cstr(&payload)};
		rc = pg_run(c, PG_NOTIFY, 1, vals, NULL, NULL, PGRES_TUPLES_OK, &r, "notify");
	}
	PQclear(r);
	kbuf_release(&payload);
	return rc;
}

/* *sent: COMMIT went out, so a failure leaves the outcome unknown (no retry). */
static K_MUST_CHECK k_status apply_tx(struct pg_store *st, struct pg_conn *c,
				      const struct storage_op *ops, size_t n, bool *sent)
{
	k_status rc = K_OK;
	GUARD(pg_exec(c, "BEGIN", "begin"));
	for (size_t i = 0; i < n; i++)
		GUARD_GOTO(apply_one(c, &ops[i]));
	for (size_t i = 0; i < n; i++)
		GUARD_GOTO(notify(st, c, ops[i].op == STORAGE_DEL ? STORAGE_EV_DEL : STORAGE_EV_PUT,
				  ops[i].kind, ops[i].ns, ops[i].id));
	*sent = true;
	return pg_exec(c, "COMMIT", "commit");
out:
	if (PQstatus(c->pc) == CONNECTION_OK && PQtransactionStatus(c->pc) != PQTRANS_IDLE &&
	    k_failed(pg_exec(c, "ROLLBACK", "rollback")))
		c->broken = true;
	return rc;
}

/*
 * All ops in one transaction with their NOTIFYs; the COMMIT returns once
 * it is durable (synchronous_commit is on for kinko's sessions). A stale
 * pooled connection found before the COMMIT went out is replaced once;
 * a COMMIT whose answer was lost is reported unavailable (it may or may
 * not have been applied, as with any database).
 */
k_status pg_apply(struct storage *s, const struct storage_op *ops, size_t n)
{
	struct pg_store *st = pg_store_of(s);
	ENSURE(ops != NULL || n == 0, K_E_VALIDATION);
	for (size_t i = 0; i < n; i++)
		GUARD(check_op(&ops[i]));
	if (n == 0)
		return K_OK;
	k_status rc = K_OK;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct pg_conn *c = NULL;
		bool sent = false;
		rc = pg_pool_acquire(st, &c);
		if (k_ok(rc))
			rc = apply_tx(st, c, ops, n, &sent);
		bool again = k_failed(rc) && attempt == 0 && !sent && pg_retry_stale(st, c);
		pg_pool_release(st, c);
		if (!again)
			break;
	}
	if (k_ok(rc))
		storage_feed_emit_ops(&st->feed, ops, n);
	return rc;
}

static K_MUST_CHECK k_status purge_tx(struct pg_store *st, struct pg_conn *c, const char *prefix)
{
	k_status rc = K_OK;
	GUARD(pg_exec(c, "BEGIN", "begin"));
	const char *vals[1] = {prefix};
	PGresult *r = PQexecParams(c->pc, "DELETE FROM kinko_docs WHERE starts_with(ns, $1)", 1,
				   NULL, vals, NULL, NULL, 1);
	rc = PQresultStatus(r) == PGRES_COMMAND_OK ? K_OK : pg_fail(c, r, "purge");
	PQclear(r);
	GUARD_GOTO(rc);
	GUARD_GOTO(notify(st, c, STORAGE_EV_PURGE, NULL, prefix, NULL));
	return pg_exec(c, "COMMIT", "commit");
out:
	if (PQstatus(c->pc) == CONNECTION_OK && PQtransactionStatus(c->pc) != PQTRANS_IDLE &&
	    k_failed(pg_exec(c, "ROLLBACK", "rollback")))
		c->broken = true;
	return rc;
}

k_status pg_purge(struct storage *s, const char *ns_prefix)
{
	struct pg_store *st = pg_store_of(s);
	GUARD(pg_check_name(ns_prefix, false));
	struct pg_conn *c = NULL;
	GUARD(pg_pool_acquire(st, &c));
	k_status rc = purge_tx(st, c, ns_prefix);
	pg_pool_release(st, c);
	if (k_ok(rc)) {
		struct storage_event ev = {.what = STORAGE_EV_PURGE, .ns = ns_prefix};
		storage_feed_emit(&st->feed, &ev);
	}
	return rc;
}

/*
 * The mark's NOTIFY runs in a transaction of its own, so it is queued
 * after every write that committed before the call, and PostgreSQL hands
 * notifications to each listener in commit order. This node's listener
 * delivers it too (pg_listen.c), not this thread: so that here as well it
 * comes after the other nodes' earlier writes.
 */
k_status pg_mark(struct storage *s, const char *token)
{
	struct pg_store *st = pg_store_of(s);
	GUARD(storage_mark_check(token));
	k_status rc = K_OK;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct pg_conn *c = NULL;
		rc = pg_pool_acquire(st, &c);
		if (k_ok(rc))
			rc = notify(st, c, STORAGE_EV_MARK, STORAGE_MARK_KIND, "", token);
		bool again = k_failed(rc) && attempt == 0 && pg_retry_stale(st, c);
		pg_pool_release(st, c);
		if (!again)
			break;
	}
	return rc;
}

/* ---- check, scrub, kinds --------------------------------------------------- */

/*
 * What kinko can check from a session: the schema is this build's and
 * every row keeps the table's invariants. The pages themselves are the
 * server's to check (data checksums, amcheck).
 */
k_status pg_check(struct storage *s)
{
	struct pg_store *st = pg_store_of(s);
	struct pg_conn *c = NULL;
	GUARD(pg_pool_acquire(st, &c));
	PGresult *r = PQexec(c->pc, "SELECT (SELECT max(version) FROM kinko_schema),"
				    " (SELECT count(*) FROM kinko_docs WHERE version < 1"
				    " OR kind = '' OR id = '' OR octet_length(doc) > 1048576)");
	k_status rc = K_OK;
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		rc = pg_fail(c, r, "integrity check");
	} else if (strcmp(PQgetvalue(r, 0, 0), "1") != 0 || strcmp(PQgetvalue(r, 0, 1), "0") != 0) {
		LOG_WARN("storage: integrity check: schema version %s, %s bad rows",
			 PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
		rc = K_E_INTERNAL;
	}
	PQclear(r);
	pg_pool_release(st, c);
	return rc;
}

/*
 * VACUUM makes the space of deleted rows reusable at once. It does not
 * reach the server's WAL, its archives or its standbys: docs/CLUSTER.md
 * says what that means for deleted key material.
 */
k_status pg_scrub(struct storage *s)
{
	struct pg_store *st = pg_store_of(s);
	struct pg_conn *c = NULL;
	GUARD(pg_pool_acquire(st, &c));
	k_status rc = pg_exec(c, "VACUUM kinko_docs", "scrub (vacuum)");
	pg_pool_release(st, c);
	return rc;
}

k_status pg_kinds(struct storage *s, storage_kind_cb cb, void *arg)
{
	struct pg_store *st = pg_store_of(s);
	ENSURE(cb != NULL, K_E_VALIDATION);
	struct pg_conn *c = NULL;
	GUARD(pg_pool_acquire(st, &c));
	PGresult *r = PQexec(c->pc, "SELECT DISTINCT kind FROM kinko_docs ORDER BY kind");
	k_status rc = PQresultStatus(r) == PGRES_TUPLES_OK ? K_OK : pg_fail(c, r, "list kinds");
	pg_pool_release(st, c);
	int n = k_ok(rc) ? PQntuples(r) : 0;
	for (int i = 0; i < n && k_ok(rc); i++)
		rc = cb(arg, PQgetvalue(r, i, 0));
	PQclear(r);
	return rc;
}
