/*
 * sqlite_read.c — the SQLite backend's reads: get, list and the integrity
 * check. Each takes a read connection; none passes the writer gate.
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

k_status sqlite_get(struct storage *s, const char *kind, const char *ns, const char *id,
		    struct kbuf *doc, int64_t *version)
{
	struct sqlite_store *st = store_of(s);
	struct sqlite_conn *c = NULL;
	sqlite3_stmt *stmt = NULL;
	k_status rc = K_OK;

	GUARD(sqlite_check_key(kind, ns, id));
	GUARD(sqlite_pool_acquire(st, false, &c));
	GUARD_GOTO(sqlite_conn_stmt(c, ST_GET, &stmt));
	GUARD_GOTO(sqlite_bind_key(c, stmt, kind, ns, id));
	int src = sqlite3_step(stmt);
	ENSURE_GOTO(src != SQLITE_DONE, K_E_NOT_FOUND);
	if (src != SQLITE_ROW) {
		rc = sqlite_conn_fail(c, src, "get");
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
	sqlite_stmt_done(stmt);
	sqlite_pool_release(st, c);
	return rc;
}

struct list_query {
	const char *ns;	    /* NULL: every namespace */
	const char *prefix; /* NULL or "": no prefix filter */
	const char *after;  /* NULL or "": from the start */
	size_t limit;	    /* 0: no limit */
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
static K_MUST_CHECK k_status list_rows(struct sqlite_conn *c, sqlite3_stmt *st,
				       const struct list_query *q)
{
	size_t plen = q->prefix != NULL ? strlen(q->prefix) : 0;
	size_t count = 0;

	while (q->limit == 0 || count < q->limit) {
		int src = sqlite3_step(st);
		if (src == SQLITE_DONE)
			return K_OK;
		if (src != SQLITE_ROW)
			return sqlite_conn_fail(c, src, "list");
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

k_status sqlite_list(struct storage *s, const char *kind, const char *ns, const char *prefix,
		     const char *after, size_t limit, storage_list_cb cb, void *arg)
{
	struct sqlite_store *st = store_of(s);
	struct sqlite_conn *c = NULL;
	sqlite3_stmt *stmt = NULL;
	k_status rc = K_OK;
	struct list_query q = {ns, prefix, after, limit, cb, arg};

	ENSURE(cb != NULL, K_E_VALIDATION);
	GUARD(sqlite_check_name(kind, false));
	if (ns != NULL)
		GUARD(sqlite_check_name(ns, true));
	if (prefix != NULL)
		GUARD(sqlite_check_name(prefix, true));
	if (after != NULL)
		GUARD(sqlite_check_name(after, true));
	if (after != NULL && after[0] == '\0')
		q.after = NULL;

	/* The lower bound: the larger of after and prefix ("" when neither). */
	const char *lower = "";
	if (prefix != NULL)
		lower = prefix;
	if (q.after != NULL && strcmp(q.after, lower) > 0)
		lower = q.after;

	GUARD(sqlite_pool_acquire(st, false, &c));
	GUARD_GOTO(sqlite_conn_stmt(c, ns != NULL ? ST_LIST_NS : ST_LIST_ALL, &stmt));
	GUARD_GOTO(sqlite_bind_text(c, stmt, 1, kind));
	if (ns != NULL)
		GUARD_GOTO(sqlite_bind_text(c, stmt, 2, ns));
	GUARD_GOTO(sqlite_bind_text(c, stmt, 3, lower));
	GUARD_GOTO(list_rows(c, stmt, &q));
out:
	sqlite_stmt_done(stmt);
	sqlite_pool_release(st, c);
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
k_status sqlite_check(struct storage *s)
{
	struct sqlite_store *st = store_of(s);
	struct sqlite_conn *c = NULL;
	sqlite3_stmt *stmt = NULL;
	k_status rc = K_OK;

	GUARD(sqlite_pool_acquire(st, false, &c));
	int src = sqlite3_prepare_v2(c->db, "PRAGMA integrity_check", -1, &stmt, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_step(stmt);
	if (src != SQLITE_ROW) {
		int primary = src & 0xff;
		rc = sqlite_conn_fail(c, src, "integrity check");
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
	sqlite_pool_release(st, c);
	return rc;
}
