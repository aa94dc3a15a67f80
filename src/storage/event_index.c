/*
 * event_index.c — the audit trail's event index in a SQLite file of its
 * own (event_index.h).
 *
 * Tables:
 *   ev(seq, file, off, len)          where each event is in the trail
 *   attr(ns, a, v, t, seq)           one row per (event, attribute value):
 *                                    a is an enum event_index_attr, and
 *                                    a = EVENT_INDEX_ALL (v "") lists
 *                                    every event; the primary key is the
 *                                    query's order, so a query is one
 *                                    range of one B-tree, read backwards
 *   lastuse(arn, op, t, eid, rid)    the last use of each key
 *   pos(id = 1, seq, file, off, oldest)  the checkpoint
 *   meta(layout)                     the layout's number
 * A query's work is its LIMIT rows of that range plus the B-tree's depth,
 * whatever the number of events.
 */
#include "storage/event_index.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "core/log.h"
#include "core/banned.h"

#define LAYOUT 1
#define BUSY_MS 5000

struct event_index {
	pthread_mutex_t wmu, rmu;
	sqlite3 *w, *r;
	/* ins_attrs: the five attribute rows every event has, in one statement */
	/* ins_attr2: two attribute rows of one event */
	sqlite3_stmt *ins_ev, *ins_attr, *ins_attr2, *ins_attrs, *ins_use, *set_pos;
};

static const char *const schema =
	"CREATE TABLE IF NOT EXISTS meta(layout INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS ev(seq INTEGER PRIMARY KEY, file TEXT NOT NULL,"
	" off INTEGER NOT NULL, len INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS attr(ns TEXT NOT NULL, a INTEGER NOT NULL, v TEXT NOT NULL,"
	" t INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY(ns, a, v, t, seq)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS lastuse(arn TEXT PRIMARY KEY, op TEXT NOT NULL,"
	" t INTEGER NOT NULL, eid TEXT NOT NULL, rid TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS pos(id INTEGER PRIMARY KEY CHECK(id = 1), seq INTEGER NOT NULL,"
	" file TEXT NOT NULL, off INTEGER NOT NULL, oldest INTEGER NOT NULL);";

static k_status fail(sqlite3 *db, const char *what)
{
	LOG_WARN("event index: %s: %s", what, db != NULL ? sqlite3_errmsg(db) : "no handle");
	return K_E_STORE_UNAVAILABLE;
}

static K_MUST_CHECK k_status exec(sqlite3 *db, const char *sql)
{
	ENSURE(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, fail(db, sql));
	return K_OK;
}

static K_MUST_CHECK k_status conn_open(const char *path, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int src = sqlite3_open_v2(
		path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src != SQLITE_OK) {
		k_status rc = fail(db, "open");
		sqlite3_close(db);
		return rc;
	}
	sqlite3_busy_timeout(db, BUSY_MS);
	/* A bounded page cache: the index's memory does not grow with its size. */
	k_status rc = exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			       " PRAGMA cache_size=-4096;");
	if (k_failed(rc)) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return K_OK;
}

/* The layout: created when missing; an index of another layout is emptied. */
static K_MUST_CHECK k_status set_up(sqlite3 *db)
{
	GUARD(exec(db, schema));
	sqlite3_stmt *st = NULL;
	ENSURE(sqlite3_prepare_v2(db, "SELECT layout FROM meta", -1, &st, NULL) == SQLITE_OK,
	       fail(db, "read the layout"));
	int layout = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (layout == LAYOUT)
		return K_OK;
	if (layout != 0)
		LOG_WARN("event index: layout %d is not %d; rebuilding it", layout, LAYOUT);
	return exec(db, "BEGIN; DELETE FROM ev; DELETE FROM attr; DELETE FROM lastuse;"
			" DELETE FROM pos; DELETE FROM meta; INSERT INTO meta VALUES(1); COMMIT;");
}

static K_MUST_CHECK k_status prepare(struct event_index *ix)
{
	static const char *const ev = "INSERT OR REPLACE INTO ev VALUES(?1, ?2, ?3, ?4)";
	static const char *const attr = "INSERT OR IGNORE INTO attr VALUES(?1, ?2, ?3, ?4, ?5)";
	static const char *const attr2 =
		"INSERT OR IGNORE INTO attr VALUES(?1, ?2, ?3, ?4, ?5), (?1, ?6, ?7, ?4, ?5)";
	static const char *const attrs =
		"INSERT OR IGNORE INTO attr VALUES(?1, ?12, '', ?2, ?3), (?1, ?4, ?5, ?2, ?3),"
		" (?1, ?6, ?7, ?2, ?3), (?1, ?8, ?9, ?2, ?3), (?1, ?10, ?11, ?2, ?3)";
	static const char *const use =
		"INSERT INTO lastuse VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(arn) DO UPDATE SET"
		" op = excluded.op, t = excluded.t, eid = excluded.eid, rid = excluded.rid"
		" WHERE excluded.t >= lastuse.t";
	static const char *const pos = "INSERT OR REPLACE INTO pos VALUES(1, ?1, ?2, ?3, ?4)";
	ENSURE(sqlite3_prepare_v3(ix->w, ev, -1, SQLITE_PREPARE_PERSISTENT, &ix->ins_ev, NULL) ==
		       SQLITE_OK,
	       fail(ix->w, "prepare"));
	ENSURE(sqlite3_prepare_v3(ix->w, attr, -1, SQLITE_PREPARE_PERSISTENT, &ix->ins_attr,
				  NULL) == SQLITE_OK,
	       fail(ix->w, "prepare"));
	ENSURE(sqlite3_prepare_v3(ix->w, attr2, -1, SQLITE_PREPARE_PERSISTENT, &ix->ins_attr2,
				  NULL) == SQLITE_OK,
	       fail(ix->w, "prepare"));
	ENSURE(sqlite3_prepare_v3(ix->w, attrs, -1, SQLITE_PREPARE_PERSISTENT, &ix->ins_attrs,
				  NULL) == SQLITE_OK,
	       fail(ix->w, "prepare"));
	ENSURE(sqlite3_prepare_v3(ix->w, use, -1, SQLITE_PREPARE_PERSISTENT, &ix->ins_use, NULL) ==
		       SQLITE_OK,
	       fail(ix->w, "prepare"));
	ENSURE(sqlite3_prepare_v3(ix->w, pos, -1, SQLITE_PREPARE_PERSISTENT, &ix->set_pos, NULL) ==
		       SQLITE_OK,
	       fail(ix->w, "prepare"));
	return K_OK;
}

k_status event_index_open(const char *path, struct event_index **out)
{
	struct event_index *ix = calloc(1, sizeof *ix);
	ENSURE(ix != NULL, K_E_INTERNAL);
	pthread_mutex_init(&ix->wmu, NULL);
	pthread_mutex_init(&ix->rmu, NULL);
	k_status rc = conn_open(path, &ix->w);
	if (k_ok(rc) && chmod(path, 0600) != 0)
		rc = fail(ix->w, "narrow the file's mode");
	if (k_ok(rc))
		rc = set_up(ix->w);
	if (k_ok(rc))
		rc = prepare(ix);
	if (k_ok(rc))
		rc = conn_open(path, &ix->r);
	if (k_failed(rc)) {
		event_index_close(ix);
		return rc;
	}
	*out = ix;
	return K_OK;
}

void event_index_close(struct event_index *ix)
{
	if (ix == NULL)
		return;
	sqlite3_finalize(ix->ins_ev);
	sqlite3_finalize(ix->ins_attr);
	sqlite3_finalize(ix->ins_attr2);
	sqlite3_finalize(ix->ins_attrs);
	sqlite3_finalize(ix->ins_use);
	sqlite3_finalize(ix->set_pos);
	sqlite3_close(ix->w);
	sqlite3_close(ix->r);
	pthread_mutex_destroy(&ix->wmu);
	pthread_mutex_destroy(&ix->rmu);
	free(ix);
}

k_status event_index_clear(struct event_index *ix)
{
	pthread_mutex_lock(&ix->wmu);
	k_status rc = exec(ix->w, "BEGIN; DELETE FROM ev; DELETE FROM attr; DELETE FROM lastuse;"
				  " DELETE FROM pos; COMMIT;");
	pthread_mutex_unlock(&ix->wmu);
	return rc;
}

k_status event_index_pos(struct event_index *ix, struct event_index_pos *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *st = NULL;
	pthread_mutex_lock(&ix->wmu);
	k_status rc = K_OK;
	if (sqlite3_prepare_v2(ix->w, "SELECT seq, file, off, oldest FROM pos WHERE id = 1", -1,
			       &st, NULL) != SQLITE_OK)
		rc = fail(ix->w, "read the checkpoint");
	if (k_ok(rc) && sqlite3_step(st) == SQLITE_ROW) {
		out->seq = (uint64_t)sqlite3_column_int64(st, 0);
		const unsigned char *f = sqlite3_column_text(st, 1);
		snprintf(out->file, sizeof out->file, "%s", f != NULL ? (const char *)f : "");
		out->off = (uint64_t)sqlite3_column_int64(st, 2);
		out->oldest = sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ix->wmu);
	return rc;
}

k_status event_index_begin(struct event_index *ix)
{
	pthread_mutex_lock(&ix->wmu);
	k_status rc = exec(ix->w, "BEGIN IMMEDIATE");
	if (k_failed(rc))
		pthread_mutex_unlock(&ix->wmu);
	return rc;
}

/*
 * Steps an insert once and resets it. Its bindings stay: every caller
 * binds all of a statement's parameters before each step, and the texts
 * bound SQLITE_STATIC are not read after the step.
 */
static K_MUST_CHECK k_status run(sqlite3 *db, sqlite3_stmt *st)
{
	int src = sqlite3_step(st);
	sqlite3_reset(st);
	ENSURE(src == SQLITE_DONE, fail(db, "write"));
	return K_OK;
}

static K_MUST_CHECK k_status add_attr(struct event_index *ix, const char *ns, int a, const char *v,
				      int64_t t, uint64_t seq)
{
	sqlite3_stmt *st = ix->ins_attr;
	sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, a);
	sqlite3_bind_text(st, 3, v != NULL ? v : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, t);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)seq);
	return run(ix->w, st);
}

/* Two rows of one event in one step; a value NULL or "" is not written. */
static K_MUST_CHECK k_status add_pair(struct event_index *ix, const char *ns, int a1,
				      const char *v1, int a2, const char *v2, int64_t t,
				      uint64_t seq)
{
	bool has1 = v1 != NULL && v1[0] != 0, has2 = v2 != NULL && v2[0] != 0;
	if (!has1 || !has2) {
		if (has1)
			return add_attr(ix, ns, a1, v1, t, seq);
		return has2 ? add_attr(ix, ns, a2, v2, t, seq) : K_OK;
	}
	sqlite3_stmt *st = ix->ins_attr2;
	sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, a1);
	sqlite3_bind_text(st, 3, v1, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, t);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)seq);
	sqlite3_bind_int(st, 6, a2);
	sqlite3_bind_text(st, 7, v2, -1, SQLITE_STATIC);
	return run(ix->w, st);
}

/* The rows every event has: all events, its name, source, id and read-only flag. */
static K_MUST_CHECK k_status add_common(struct event_index *ix, const struct event_index_row *r)
{
	sqlite3_stmt *st = ix->ins_attrs;
	sqlite3_bind_text(st, 1, r->ns, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->t);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)r->seq);
	sqlite3_bind_int(st, 4, EVENT_INDEX_EVENT_NAME);
	sqlite3_bind_text(st, 5, r->name != NULL ? r->name : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, EVENT_INDEX_EVENT_SOURCE);
	sqlite3_bind_text(st, 7, r->source != NULL ? r->source : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 8, EVENT_INDEX_EVENT_ID);
	sqlite3_bind_text(st, 9, r->event_id != NULL ? r->event_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 10, EVENT_INDEX_READ_ONLY);
	sqlite3_bind_text(st, 11, r->read_only ? "true" : "false", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 12, EVENT_INDEX_ALL);
	return run(ix->w, st);
}

k_status event_index_add(struct event_index *ix, const struct event_index_row *r)
{
	sqlite3_stmt *st = ix->ins_ev;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->seq);
	sqlite3_bind_text(st, 2, r->file, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)r->off);
	sqlite3_bind_int64(st, 4, r->len);
	GUARD(run(ix->w, st));
	GUARD(add_common(ix, r));
	return add_pair(ix, r->ns, EVENT_INDEX_USERNAME, r->user, EVENT_INDEX_ACCESS_KEY,
			r->access_key, r->t, r->seq);
}

k_status event_index_add_resource(struct event_index *ix, uint64_t seq, int64_t t, const char *ns,
				  const char *type, const char *arn)
{
	if (type != NULL && type[0] != 0)
		GUARD(add_attr(ix, ns, EVENT_INDEX_RESOURCE_TYPE, type, t, seq));
	if (arn == NULL || arn[0] == 0)
		return K_OK;
	const char *slash = strrchr(arn, '/');
	return add_pair(ix, ns, EVENT_INDEX_RESOURCE_NAME, arn, EVENT_INDEX_RESOURCE_NAME,
			slash != NULL ? slash + 1 : NULL, t, seq);
}

k_status event_index_note_use(struct event_index *ix, const char *arn, const char *op, int64_t t,
			      const char *event_id, const char *request_id)
{
	sqlite3_stmt *st = ix->ins_use;
	sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, op, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, t);
	sqlite3_bind_text(st, 4, event_id != NULL ? event_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, request_id != NULL ? request_id : "", -1, SQLITE_STATIC);
	return run(ix->w, st);
}

k_status event_index_commit(struct event_index *ix, const struct event_index_pos *pos)
{
	sqlite3_stmt *st = ix->set_pos;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)pos->seq);
	sqlite3_bind_text(st, 2, pos->file, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)pos->off);
	sqlite3_bind_int64(st, 4, pos->oldest);
	k_status rc = run(ix->w, st);
	if (k_ok(rc))
		rc = exec(ix->w, "COMMIT");
	if (k_failed(rc))
		(void)sqlite3_exec(ix->w, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&ix->wmu);
	return rc;
}

void event_index_rollback(struct event_index *ix)
{
	(void)sqlite3_exec(ix->w, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&ix->wmu);
}

k_status event_index_each_use(struct event_index *ix, event_index_use_cb cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	pthread_mutex_lock(&ix->rmu);
	k_status rc = K_OK;
	if (sqlite3_prepare_v2(ix->r, "SELECT arn, op, t, eid, rid FROM lastuse", -1, &st, NULL) !=
	    SQLITE_OK)
		rc = fail(ix->r, "prepare");
	int src = SQLITE_DONE;
	while (k_ok(rc) && (src = sqlite3_step(st)) == SQLITE_ROW) {
		if (!cb(arg, (const char *)sqlite3_column_text(st, 0),
			(const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2),
			(const char *)sqlite3_column_text(st, 3),
			(const char *)sqlite3_column_text(st, 4)))
			break;
	}
	if (k_ok(rc) && src != SQLITE_ROW && src != SQLITE_DONE)
		rc = fail(ix->r, "read the key uses");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ix->rmu);
	return rc;
}

k_status event_index_query(struct event_index *ix, const struct event_index_query *q,
			   event_index_hit_cb cb, void *arg)
{
	static const char *const sql =
		"SELECT a.seq, a.t, e.file, e.off, e.len FROM attr a JOIN ev e ON e.seq = a.seq"
		" WHERE a.ns = ?1 AND a.a = ?2 AND a.v = ?3 AND a.t >= ?4 AND a.t <= ?5"
		" AND (a.t, a.seq) < (?6, ?7) ORDER BY a.t DESC, a.seq DESC LIMIT ?8";
	sqlite3_stmt *st = NULL;
	pthread_mutex_lock(&ix->rmu);
	k_status rc = K_OK;
	if (sqlite3_prepare_v2(ix->r, sql, -1, &st, NULL) != SQLITE_OK)
		rc = fail(ix->r, "prepare");
	if (k_ok(rc)) {
		sqlite3_bind_text(st, 1, q->ns, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, (int)q->attr);
		sqlite3_bind_text(st, 3, q->value != NULL ? q->value : "", -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, q->from);
		sqlite3_bind_int64(st, 5, q->to);
		sqlite3_bind_int64(st, 6, q->after_set ? q->before_t : INT64_MAX);
		sqlite3_bind_int64(st, 7, q->after_set ? (sqlite3_int64)q->before_seq : INT64_MAX);
		sqlite3_bind_int64(st, 8, (sqlite3_int64)q->limit);
	}
	int src = SQLITE_DONE;
	while (k_ok(rc) && (src = sqlite3_step(st)) == SQLITE_ROW) {
		if (!cb(arg, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
			(const char *)sqlite3_column_text(st, 2),
			(uint64_t)sqlite3_column_int64(st, 3),
			(uint32_t)sqlite3_column_int64(st, 4)))
			break;
	}
	if (k_ok(rc) && src != SQLITE_ROW && src != SQLITE_DONE)
		rc = fail(ix->r, "query");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ix->rmu);
	return rc;
}
