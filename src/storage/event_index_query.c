/*
 * event_index_query.c — LookupEvents' reads of the event index
 * (event_index.h; the layout is described in event_index.c).
 *
 * A lookup names one attribute value, which the index may hold as
 * several values of blk: an event name, a source or a read-only flag is
 * the set of operations (rows of op) that have it, and a resource name is
 * an ARN or the ARNs whose part after the last '/' it is. Each such value
 * is one range of blk's blocks in the lookup's order (newest first: time,
 * then seq). The lookup reads each range's blocks newest first, stopping
 * as soon as a seq is older than the limit-th newest kept, and answers
 * the newest `limit` of them, whose places in the trail it then reads
 * from ev: its work is bounded by the page, the number of values and,
 * per value, a block (at most BLOCK_SEQS_MAX seqs) or, when the cursor
 * falls inside a second, that second's blocks, whatever the number of
 * events. The reads run in one read transaction, so they see one state
 * of the index.
 */
#include "storage/event_index.h"
#include "storage/event_index_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/banned.h"

/* The attr values one lookup may merge (the operations kinko knows are far fewer). */
#define VALUES_MAX 4096

struct hit {
	uint64_t seq;
	int64_t t;
	int64_t file;
	uint64_t off;
	uint32_t len;
	char name[EVENT_INDEX_FILE_MAX];
};

/* The newest hits so far, newest first, at most cap. */
struct best {
	struct hit *h;
	size_t n, cap;
};

/* What a lookup reads: attribute code a of attr, and its values (ALL: none, the ev table). */
struct values {
	int a;
	int64_t *v;
	size_t n;
};

static k_status fail(sqlite3 *db, const char *what)
{
	LOG_WARN("event index: %s: %s", what, db != NULL ? sqlite3_errmsg(db) : "no handle");
	return K_E_STORE_UNAVAILABLE;
}

static bool newer(const struct hit *a, const struct hit *b)
{
	return a->t > b->t || (a->t == b->t && a->seq > b->seq);
}

static bool same_hit(const struct hit *a, const struct hit *b)
{
	return a->t == b->t && a->seq == b->seq;
}

/*
 * Puts h among the newest kept (once: blocks split within one event may
 * both hold it); false if it is older than all of a full set.
 */
static bool keep(struct best *b, const struct hit *h)
{
	if (b->n == b->cap && !newer(h, &b->h[b->n - 1]))
		return false;
	size_t at = b->n;
	while (at > 0 && newer(h, &b->h[at - 1]))
		at--;
	if (at > 0 && same_hit(h, &b->h[at - 1]))
		return true;
	size_t last = b->n < b->cap ? b->n++ : b->cap - 1;
	for (size_t i = last; i > at; i--)
		b->h[i] = b->h[i - 1];
	b->h[at] = *h;
	return true;
}

/* Adds the ids sql finds for text (bound as ?1) to out. */
static K_MUST_CHECK k_status ids_of(sqlite3 *db, const char *sql, const char *text, int64_t num,
				    struct values *out)
{
	sqlite3_stmt *st = NULL;
	ENSURE(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, fail(db, "prepare"));
	if (text != NULL)
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, num);
	int src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW && out->n < VALUES_MAX)
		out->v[out->n++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	ENSURE(src == SQLITE_ROW || src == SQLITE_DONE, fail(db, "read ids"));
	return K_OK;
}

/* The attr values that hold q's attribute value (none: no event has it). */
static K_MUST_CHECK k_status values_of(sqlite3 *db, const struct event_index_query *q,
				       struct values *out)
{
	static const char *const op_by_name = "SELECT id FROM op WHERE name IN"
					      " (SELECT id FROM str WHERE s = ?1)";
	static const char *const op_by_source = "SELECT id FROM op WHERE source IN"
						" (SELECT id FROM str WHERE s = ?1)";
	const char *s = q->value != NULL ? q->value : "";
	out->a = (int)q->attr;
	out->n = 0;
	if (q->attr != EVENT_INDEX_ALL && s[0] == 0)
		return K_OK;
	switch (q->attr) {
	case EVENT_INDEX_ALL:
		return K_OK;
	case EVENT_INDEX_EVENT_ID:
		out->v[out->n++] = event_index_eid_value(s);
		return K_OK;
	case EVENT_INDEX_READ_ONLY:
		out->a = EVENT_INDEX_ATTR_OP;
		if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
			return K_OK;
		return ids_of(db, "SELECT id FROM op WHERE ro = ?1", NULL, strcmp(s, "true") == 0,
			      out);
	case EVENT_INDEX_EVENT_NAME:
		out->a = EVENT_INDEX_ATTR_OP;
		return ids_of(db, op_by_name, s, 0, out);
	case EVENT_INDEX_EVENT_SOURCE:
		out->a = EVENT_INDEX_ATTR_OP;
		return ids_of(db, op_by_source, s, 0, out);
	case EVENT_INDEX_RESOURCE_NAME:
		return ids_of(db, "SELECT id FROM str WHERE s = ?1 OR tail = ?1", s, 0, out);
	default:
		return ids_of(db, "SELECT id FROM str WHERE s = ?1", s, 0, out);
	}
}

static const char *const sql_all =
	"SELECT e.seq, e.t, e.file, e.off, e.len FROM ev e"
	" WHERE e.ns = ?1 AND e.t >= ?4 AND e.t <= ?5"
	" AND (e.t, e.seq) < (?6, ?7) ORDER BY e.t DESC, e.seq DESC LIMIT ?8";
/* The blocks of one value from the cursor's second down, newest first (?7, ?8: ev's only). */
static const char *const sql_blk =
	"SELECT t, hi, seqs FROM blk"
	" WHERE ns = ?1 AND a = ?2 AND v = ?3 AND t >= ?4 AND t <= ?5 AND t <= ?6"
	" ORDER BY t DESC, hi DESC";

/*
 * The next seq of a block (written by event_index.c's write_block): a
 * varint step down from the one before (*seq, the block's hi at first).
 * False at the block's end, or where its bytes do not decode.
 */
static bool block_next(const uint8_t *p, size_t n, size_t *pos, int64_t *seq)
{
	uint64_t d = 0;
	for (unsigned shift = 0; *pos < n && shift < 64; shift += 7) {
		uint8_t c = p[(*pos)++];
		d |= (uint64_t)(c & 0x7f) << shift;
		if ((c & 0x80) == 0) {
			if (d > (uint64_t)*seq)
				return false;
			*seq -= (int64_t)d;
			return true;
		}
	}
	return false;
}

/*
 * Reads one range of the ev table or of blk (st bound but for the value)
 * into b, until a seq is not kept. A block's seqs at or past the cursor
 * (?6, ?7) are skipped; a block that does not decode fails the lookup.
 */
static K_MUST_CHECK k_status read_range(sqlite3 *db, sqlite3_stmt *st, bool all,
					const struct event_index_query *q, struct best *b)
{
	int src = SQLITE_DONE;
	bool more = true;
	while (more && (src = sqlite3_step(st)) == SQLITE_ROW) {
		struct hit h = {.t = sqlite3_column_int64(st, all ? 1 : 0)};
		if (all) {
			h.seq = (uint64_t)sqlite3_column_int64(st, 0);
			h.file = sqlite3_column_int64(st, 2);
			h.off = (uint64_t)sqlite3_column_int64(st, 3);
			h.len = (uint32_t)sqlite3_column_int64(st, 4);
			more = keep(b, &h);
			continue;
		}
		const uint8_t *p = sqlite3_column_blob(st, 2);
		size_t n = (size_t)sqlite3_column_bytes(st, 2), pos = 0;
		int64_t seq = sqlite3_column_int64(st, 1);
		h.file = -1; /* its place is read from ev once it is among the answers */
		while (more && block_next(p, n, &pos, &seq)) {
			h.seq = (uint64_t)seq;
			if (q->after_set &&
			    (h.t > q->before_t || (h.t == q->before_t && h.seq >= q->before_seq)))
				continue;
			more = keep(b, &h);
		}
		ENSURE(!more || pos == n, fail(db, "a block of the index does not decode"));
	}
	sqlite3_reset(st);
	ENSURE(!more || src == SQLITE_DONE, fail(db, "query"));
	return K_OK;
}

/* The places in the trail of the hits kept from blocks; one not in ev is dropped. */
static K_MUST_CHECK k_status place_hits(sqlite3 *db, int64_t ns, struct best *b)
{
	sqlite3_stmt *st = NULL;
	ENSURE(sqlite3_prepare_v2(
		       db, "SELECT file, off, len FROM ev WHERE ns = ?1 AND t = ?2 AND seq = ?3",
		       -1, &st, NULL) == SQLITE_OK,
	       fail(db, "prepare"));
	sqlite3_bind_int64(st, 1, ns);
	size_t kept = 0;
	int src = SQLITE_DONE;
	for (size_t i = 0; i < b->n; i++) {
		struct hit *h = &b->h[i];
		if (h->file >= 0) {
			b->h[kept++] = *h;
			continue;
		}
		sqlite3_bind_int64(st, 2, h->t);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)h->seq);
		src = sqlite3_step(st);
		if (src == SQLITE_ROW) {
			h->file = sqlite3_column_int64(st, 0);
			h->off = (uint64_t)sqlite3_column_int64(st, 1);
			h->len = (uint32_t)sqlite3_column_int64(st, 2);
			b->h[kept++] = *h;
		}
		sqlite3_reset(st);
		if (src != SQLITE_ROW && src != SQLITE_DONE)
			break;
	}
	sqlite3_finalize(st);
	b->n = kept;
	ENSURE(src == SQLITE_ROW || src == SQLITE_DONE, fail(db, "read an event's place"));
	return K_OK;
}

/* The newest b->cap rows of q in namespace ns over the values vs. */
static K_MUST_CHECK k_status read_ranges(sqlite3 *db, const struct event_index_query *q, int64_t ns,
					 const struct values *vs, struct best *b)
{
	sqlite3_stmt *st = NULL;
	bool all = q->attr == EVENT_INDEX_ALL;
	ENSURE(sqlite3_prepare_v2(db, all ? sql_all : sql_blk, -1, &st, NULL) == SQLITE_OK,
	       fail(db, "prepare"));
	sqlite3_bind_int64(st, 1, ns);
	sqlite3_bind_int(st, 2, vs->a);
	sqlite3_bind_int64(st, 4, q->from);
	sqlite3_bind_int64(st, 5, q->to);
	sqlite3_bind_int64(st, 6, q->after_set ? q->before_t : INT64_MAX);
	sqlite3_bind_int64(st, 7, q->after_set ? (sqlite3_int64)q->before_seq : INT64_MAX);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)b->cap);
	k_status rc = all ? read_range(db, st, true, q, b) : K_OK;
	for (size_t i = 0; !all && i < vs->n && k_ok(rc); i++) {
		sqlite3_bind_int64(st, 3, vs->v[i]);
		rc = read_range(db, st, false, q, b);
	}
	sqlite3_finalize(st);
	return k_ok(rc) && !all ? place_hits(db, ns, b) : rc;
}

/* The log file names of the hits kept (interned ids in the index). */
static K_MUST_CHECK k_status name_files(sqlite3 *db, struct best *b)
{
	sqlite3_stmt *st = NULL;
	ENSURE(sqlite3_prepare_v2(db, "SELECT s FROM str WHERE id = ?1", -1, &st, NULL) ==
		       SQLITE_OK,
	       fail(db, "prepare"));
	for (size_t i = 0; i < b->n; i++) {
		sqlite3_bind_int64(st, 1, b->h[i].file);
		const unsigned char *s =
			sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
		snprintf(b->h[i].name, sizeof b->h[i].name, "%s", s != NULL ? (const char *)s : "");
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return K_OK;
}

/* Under rmu, in a read transaction: the rows of q, newest first, into b. */
static K_MUST_CHECK k_status find(sqlite3 *db, const struct event_index_query *q, struct values *vs,
				  struct best *b)
{
	int64_t ns = 0;
	sqlite3_stmt *st = NULL;
	ENSURE(sqlite3_prepare_v2(db, "SELECT id FROM str WHERE s = ?1", -1, &st, NULL) ==
		       SQLITE_OK,
	       fail(db, "prepare"));
	sqlite3_bind_text(st, 1, q->ns, -1, SQLITE_STATIC);
	bool known = sqlite3_step(st) == SQLITE_ROW;
	ns = known ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (!known)
		return K_OK; /* no event of this account and region */
	GUARD(values_of(db, q, vs));
	if (q->attr != EVENT_INDEX_ALL && vs->n == 0)
		return K_OK;
	GUARD(read_ranges(db, q, ns, vs, b));
	return name_files(db, b);
}

k_status event_index_query(struct event_index *ix, const struct event_index_query *q,
			   event_index_hit_cb cb, void *arg)
{
	struct values vs = {.v = calloc(VALUES_MAX, sizeof(int64_t))};
	struct best b = {.cap = q->limit, .h = calloc(q->limit > 0 ? q->limit : 1, sizeof *b.h)};
	k_status rc = vs.v != NULL && b.h != NULL ? K_OK : K_E_INTERNAL;
	pthread_mutex_lock(&ix->rmu);
	if (k_ok(rc) && b.cap > 0 && sqlite3_exec(ix->r, "BEGIN", NULL, NULL, NULL) == SQLITE_OK) {
		rc = find(ix->r, q, &vs, &b);
		(void)sqlite3_exec(ix->r, "COMMIT", NULL, NULL, NULL);
	} else if (k_ok(rc) && b.cap > 0) {
		rc = fail(ix->r, "begin a read");
	}
	for (size_t i = 0; k_ok(rc) && i < b.n; i++) {
		if (!cb(arg, b.h[i].seq, b.h[i].t, b.h[i].name, b.h[i].off, b.h[i].len))
			break;
	}
	pthread_mutex_unlock(&ix->rmu);
	free(vs.v);
	free(b.h);
	return rc;
}
