/*
 * event_index.c — the audit trail's event index in a SQLite file of its
 * own (event_index.h).
 *
 * Tables (layout 3):
 *   str(id, s, tail)                 interned strings: namespaces, log file
 *                                    names, event names, sources, users,
 *                                    access keys, resource types and ARNs;
 *                                    tail is the part after the last '/'
 *                                    (a ResourceName lookup by key id)
 *   op(id, name, source, ro)         the operations events name: an
 *                                    event's op in blk answers lookups by
 *                                    EventName, EventSource, ReadOnly
 *   ev(ns, t, seq, file, off, len)   one row per event: where it is in the
 *                                    trail; its key (ns, t, seq) is the
 *                                    order of a lookup with no attribute
 *   blk(ns, a, v, t, hi, seqs)       posting blocks: the seqs (hi the
 *                                    highest) of the events of one second
 *                                    t, one batch, that have the attribute
 *                                    value: a is an enum event_index_attr
 *                                    or EVENT_INDEX_ATTR_OP, v the value's
 *                                    id (an event id: event_index_eid_value,
 *                                    the caller checks the event it
 *                                    reads); seqs holds them newest first
 *                                    as varint steps down from hi (the
 *                                    first 0), at most BLOCK_SEQS_MAX. The
 *                                    key is the lookup's order (a batch's
 *                                    seqs are above every earlier one's),
 *                                    so a value is one range of one B-tree
 *   lastuse(arn, op, t, eid, rid)    the last use of each key
 *   pos(id = 1, seq, file, off, oldest)  the checkpoint
 *   meta(layout)                     the layout's number
 * Every key is integers: an insert compares no text. An Encrypt names
 * seven things (its ev row; its operation, id, user, access key, and its
 * resource's type and ARN), but a batch writes one block for all its
 * events of one second that share a value: under load an Encrypt costs
 * its ev row, its id's block and a share of a few blocks (layout 2 wrote
 * a row per event and value, seven B-tree inserts). The writer keeps the
 * ids of recent strings and operations in memory (a direct-mapped cache,
 * emptied when a transaction rolls back) and a batch's key uses until its
 * commit, so a key used by every event of a batch is written once. A
 * batch's (event, value) pairs and key uses are kept until its commit,
 * then sorted by their B-tree key, grouped into blocks and inserted, so
 * that a batch over many keys reads and dirties each leaf page once.
 * Lookups are in event_index_query.c. An index of another layout (layout
 * 1 held text keys and a row per attribute, layout 2 a row per event and
 * value) is dropped and built again from the trail.
 *
 * Durability: WAL with synchronous=NORMAL. A commit is atomic with its
 * checkpoint but may be lost in a power failure (never torn); the
 * indexer then reads the trail again from the checkpoint that survived.
 */
#include "storage/event_index.h"
#include "storage/event_index_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "core/hash.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/banned.h"

#define LAYOUT 3
#define BUSY_MS 5000
/*
 * Page caches, bounded so that the index's memory does not grow with its
 * size. The writer's holds the pages a batch touches: a batch over
 * 100,000 keys dirties a leaf of blk and of lastuse per key, and a
 * cache smaller than that spills pages to the WAL before the commit and
 * reads them again. A reader's reads one range a lookup.
 */
#define WRITER_CACHE_KIB 65536
#define READER_CACHE_KIB 4096

static const char *const schema =
	"CREATE TABLE IF NOT EXISTS meta(layout INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS str(id INTEGER PRIMARY KEY, s TEXT NOT NULL UNIQUE, tail TEXT);"
	"CREATE INDEX IF NOT EXISTS str_tail ON str(tail) WHERE tail IS NOT NULL;"
	"CREATE TABLE IF NOT EXISTS op(id INTEGER PRIMARY KEY, name INTEGER NOT NULL,"
	" source INTEGER NOT NULL, ro INTEGER NOT NULL, UNIQUE(name, source, ro));"
	"CREATE TABLE IF NOT EXISTS ev(ns INTEGER NOT NULL, t INTEGER NOT NULL, seq INTEGER NOT "
	"NULL,"
	" file INTEGER NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL,"
	" PRIMARY KEY(ns, t, seq)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS blk(ns INTEGER NOT NULL, a INTEGER NOT NULL, v INTEGER NOT "
	"NULL,"
	" t INTEGER NOT NULL, hi INTEGER NOT NULL, seqs BLOB NOT NULL,"
	" PRIMARY KEY(ns, a, v, t, hi)) WITHOUT ROWID;"
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

static K_MUST_CHECK k_status conn_open(const char *path, int cache_kib, sqlite3 **out)
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
	char pragmas[160];
	snprintf(pragmas, sizeof pragmas,
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-%d;",
		 cache_kib);
	k_status rc = exec(db, pragmas);
	if (k_failed(rc)) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return K_OK;
}

/* The tables of every layout so far, dropped when the layout is not this one. */
static const char *const drop_all =
	"BEGIN; DROP TABLE IF EXISTS attr; DROP TABLE IF EXISTS blk; DROP TABLE IF EXISTS ev;"
	" DROP TABLE IF EXISTS str;"
	" DROP TABLE IF EXISTS op;"
	" DROP TABLE IF EXISTS lastuse; DROP TABLE IF EXISTS pos; DROP TABLE IF EXISTS meta;"
	" COMMIT;";

/* The layout: created when missing; an index of another layout is dropped and built again. */
static K_MUST_CHECK k_status set_up(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int layout = 0;
	if (sqlite3_prepare_v2(db, "SELECT layout FROM meta", -1, &st, NULL) == SQLITE_OK)
		layout = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (layout == LAYOUT)
		return exec(db, schema);
	if (layout != 0)
		LOG_WARN("event index: layout %d is not %d; rebuilding it from the trail", layout,
			 LAYOUT);
	GUARD(exec(db, drop_all));
	GUARD(exec(db, schema));
	char sql[48];
	snprintf(sql, sizeof sql, "INSERT INTO meta VALUES(%d)", LAYOUT);
	return exec(db, sql);
}

static K_MUST_CHECK k_status prep(struct event_index *ix, const char *sql, sqlite3_stmt **st)
{
	ENSURE(sqlite3_prepare_v3(ix->w, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK,
	       fail(ix->w, "prepare"));
	return K_OK;
}

static K_MUST_CHECK k_status prepare(struct event_index *ix)
{
	GUARD(prep(ix, "INSERT OR IGNORE INTO ev VALUES(?1, ?2, ?3, ?4, ?5, ?6)", &ix->ins_ev));
	GUARD(prep(ix, "INSERT OR IGNORE INTO blk VALUES(?1, ?2, ?3, ?4, ?5, ?6)", &ix->ins_blk));

	GUARD(prep(ix,
		   "INSERT INTO lastuse VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(arn) DO UPDATE SET"
		   " op = excluded.op, t = excluded.t, eid = excluded.eid, rid = excluded.rid"
		   " WHERE excluded.t >= lastuse.t",
		   &ix->ins_use));
	GUARD(prep(ix, "INSERT OR REPLACE INTO pos VALUES(1, ?1, ?2, ?3, ?4)", &ix->set_pos));
	GUARD(prep(ix, "SELECT id FROM str WHERE s = ?1", &ix->get_str));
	GUARD(prep(ix, "INSERT INTO str(s, tail) VALUES(?1, ?2)", &ix->ins_str));
	GUARD(prep(ix, "SELECT id FROM op WHERE name = ?1 AND source = ?2 AND ro = ?3",
		   &ix->get_op));
	return prep(ix, "INSERT INTO op(name, source, ro) VALUES(?1, ?2, ?3)", &ix->ins_op);
}

k_status event_index_open(const char *path, struct event_index **out)
{
	struct event_index *ix = calloc(1, sizeof *ix);
	ENSURE(ix != NULL, K_E_INTERNAL);
	pthread_mutex_init(&ix->wmu, NULL);
	pthread_mutex_init(&ix->rmu, NULL);
	ix->intern = calloc(INTERN_SLOTS, sizeof *ix->intern);
	ix->uses = calloc(USE_SLOTS, sizeof *ix->uses);
	ix->rows = calloc(ATTR_ROWS_MAX, sizeof *ix->rows);
	k_status rc = ix->intern != NULL && ix->uses != NULL && ix->rows != NULL
			      ? conn_open(path, WRITER_CACHE_KIB, &ix->w)
			      : K_E_INTERNAL;
	if (k_ok(rc) && chmod(path, 0600) != 0)
		rc = fail(ix->w, "narrow the file's mode");
	if (k_ok(rc))
		rc = set_up(ix->w);
	if (k_ok(rc))
		rc = prepare(ix);
	if (k_ok(rc))
		rc = conn_open(path, READER_CACHE_KIB, &ix->r);
	if (k_failed(rc)) {
		event_index_close(ix);
		return rc;
	}
	*out = ix;
	return K_OK;
}

/* Forgets the cached string ids (their rows may be gone) and the batch's rows and key uses. */
static void forget(struct event_index *ix)
{
	ix->n_rows = 0;
	for (size_t i = 0; ix->intern != NULL && i < INTERN_SLOTS; i++) {
		free(ix->intern[i].s);
		ix->intern[i].s = NULL;
	}
	for (size_t i = 0; ix->uses != NULL && i < USE_SLOTS; i++)
		ix->uses[i].set = false;
}

void event_index_close(struct event_index *ix)
{
	if (ix == NULL)
		return;
	forget(ix);
	free(ix->intern);
	free(ix->uses);
	free(ix->rows);
	sqlite3_stmt *all[] = {ix->ins_ev,  ix->ins_blk, ix->ins_use, ix->set_pos,
			       ix->get_str, ix->ins_str, ix->get_op,  ix->ins_op};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
	sqlite3_close(ix->w);
	sqlite3_close(ix->r);
	pthread_mutex_destroy(&ix->wmu);
	pthread_mutex_destroy(&ix->rmu);
	free(ix);
}

k_status event_index_clear(struct event_index *ix)
{
	pthread_mutex_lock(&ix->wmu);
	forget(ix);
	k_status rc = exec(ix->w, "BEGIN; DELETE FROM ev; DELETE FROM blk; DELETE FROM str;"
				  " DELETE FROM op; DELETE FROM lastuse; DELETE FROM pos; COMMIT;");
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

/* Remembers key's id in its slot of the cache. */
static void remember(struct intern_slot *slot, const char *key, int64_t id)
{
	char *copy = strdup(key);
	if (copy == NULL)
		return;
	free(slot->s);
	slot->s = copy;
	slot->id = id;
}

/*
 * Steps get (bound by the caller) and, if it finds nothing, ins (bound
 * too): *id the row's id either way.
 */
static K_MUST_CHECK k_status find_or_add(struct event_index *ix, sqlite3_stmt *get,
					 sqlite3_stmt *ins, int64_t *id)
{
	int src = sqlite3_step(get);
	*id = src == SQLITE_ROW ? sqlite3_column_int64(get, 0) : 0;
	sqlite3_reset(get);
	ENSURE(src == SQLITE_ROW || src == SQLITE_DONE, fail(ix->w, "read an id"));
	if (src == SQLITE_DONE) {
		GUARD(run(ix->w, ins));
		*id = sqlite3_last_insert_rowid(ix->w);
	}
	return K_OK;
}

/*
 * The id of s in str, made if missing (the writer, inside its
 * transaction). A string with a '/' keeps its part after the last one as
 * its tail: a ResourceName lookup by a key id finds the key's ARN by it.
 */
static K_MUST_CHECK k_status intern(struct event_index *ix, const char *s, int64_t *id)
{
	struct intern_slot *slot = &ix->intern[khash(s) % INTERN_SLOTS];
	if (slot->s != NULL && strcmp(slot->s, s) == 0) {
		*id = slot->id;
		return K_OK;
	}
	const char *slash = strrchr(s, '/');
	sqlite3_bind_text(ix->get_str, 1, s, -1, SQLITE_STATIC);
	sqlite3_bind_text(ix->ins_str, 1, s, -1, SQLITE_STATIC);
	if (slash != NULL)
		sqlite3_bind_text(ix->ins_str, 2, slash + 1, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(ix->ins_str, 2);
	GUARD(find_or_add(ix, ix->get_str, ix->ins_str, id));
	remember(slot, s, *id);
	return K_OK;
}

/* The id of the operation (name, source, read-only) in op, made if missing. */
static K_MUST_CHECK k_status intern_op(struct event_index *ix, const struct event_index_row *r,
				       int64_t *id)
{
	int64_t name, source;
	GUARD(intern(ix, r->name != NULL ? r->name : "", &name));
	GUARD(intern(ix, r->source != NULL ? r->source : "", &source));
	char key[64]; /* "\1" keeps these keys apart from the strings' in the cache */
	snprintf(key, sizeof key, "\1%lld:%lld:%d", (long long)name, (long long)source,
		 r->read_only ? 1 : 0);
	struct intern_slot *slot = &ix->intern[khash(key) % INTERN_SLOTS];
	if (slot->s != NULL && strcmp(slot->s, key) == 0) {
		*id = slot->id;
		return K_OK;
	}
	sqlite3_stmt *sts[] = {ix->get_op, ix->ins_op};
	for (size_t i = 0; i < 2; i++) {
		sqlite3_bind_int64(sts[i], 1, name);
		sqlite3_bind_int64(sts[i], 2, source);
		sqlite3_bind_int(sts[i], 3, r->read_only ? 1 : 0);
	}
	GUARD(find_or_add(ix, ix->get_op, ix->ins_op, id));
	remember(slot, key, *id);
	return K_OK;
}

/*
 * A 36-character id ending in 8 hex digits: 31 bits of the hash of the
 * rest, then those digits, so that the ids one thread draws
 * (crypto_uuid_fast: a seed, and a counter in the last digits) land side
 * by side in blk instead of on a leaf page each. Any other id: 63 bits
 * of its hash. The value is a function of the text either way.
 */
int64_t event_index_eid_value(const char *eid)
{
	uint64_t low = 0;
	bool split = strlen(eid) == 36;
	for (size_t i = 28; split && i < 36; i++) {
		int d = khex_value((unsigned char)eid[i]);
		split = d >= 0;
		low = low << 4 | (uint64_t)(d & 0xf);
	}
	if (!split)
		return (int64_t)(khash(eid) >> 1);
	char head[29];
	memcpy(head, eid, 28);
	head[28] = 0;
	return (int64_t)((khash(head) & 0x7fffffffu) << 32 | low);
}
/* The pairs' order: (ns, a, v, t, seq), blk's key order but for seq. */
static int row_cmp(const void *pa, const void *pb)
{
	const struct attr_row *a = pa, *b = pb;
	const int64_t ka[] = {a->ns, a->a, a->v, a->t, a->seq};
	const int64_t kb[] = {b->ns, b->a, b->v, b->t, b->seq};
	for (size_t i = 0; i < sizeof ka / sizeof ka[0]; i++) {
		if (ka[i] != kb[i])
			return ka[i] < kb[i] ? -1 : 1;
	}
	return 0;
}

static bool same_block(const struct attr_row *a, const struct attr_row *b)
{
	return a->ns == b->ns && a->a == b->a && a->v == b->v && a->t == b->t;
}

/*
 * Inserts one block: the pairs rows[from..to) (sorted, one value and
 * second), newest first as varint steps down from the highest, a seq
 * held twice written once (an event with two resources of one type).
 */
static K_MUST_CHECK k_status write_block(struct event_index *ix, const struct attr_row *rows,
					 size_t from, size_t to)
{
	uint8_t buf[BLOCK_SEQS_MAX * 10];
	size_t n = 0;
	int64_t prev = rows[to - 1].seq;
	for (size_t i = to; i-- > from;) {
		if (i + 1 < to && rows[i].seq == rows[i + 1].seq)
			continue;
		uint64_t d = (uint64_t)(prev - rows[i].seq);
		prev = rows[i].seq;
		do {
			buf[n++] = (uint8_t)((d & 0x7f) | (d > 0x7f ? 0x80 : 0));
			d >>= 7;
		} while (d != 0);
	}
	sqlite3_stmt *st = ix->ins_blk;
	const struct attr_row *r = &rows[from];
	sqlite3_bind_int64(st, 1, r->ns);
	sqlite3_bind_int64(st, 2, r->a);
	sqlite3_bind_int64(st, 3, r->v);
	sqlite3_bind_int64(st, 4, r->t);
	sqlite3_bind_int64(st, 5, rows[to - 1].seq);
	sqlite3_bind_blob(st, 6, buf, (int)n, SQLITE_STATIC);
	return run(ix->w, st);
}

/*
 * Inserts the pairs kept so far as blocks, in blk's key order: the pairs
 * of one value and second become one block (several past
 * BLOCK_SEQS_MAX), and each leaf page is descended to and dirtied once.
 * Pairs come in seq order, so a block's seqs are above those of every
 * block of its value and second written before it.
 */
static K_MUST_CHECK k_status flush_rows(struct event_index *ix)
{
	qsort(ix->rows, ix->n_rows, sizeof *ix->rows, row_cmp);
	for (size_t i = 0; i < ix->n_rows;) {
		size_t j = i + 1;
		while (j < ix->n_rows && j - i < BLOCK_SEQS_MAX &&
		       same_block(&ix->rows[i], &ix->rows[j]))
			j++;
		GUARD(write_block(ix, ix->rows, i, j));
		i = j;
	}
	ix->n_rows = 0;
	return K_OK;
}

/* Keeps one (event, value) pair for the batch's blocks (writing the kept ones when full). */
static K_MUST_CHECK k_status add_attr(struct event_index *ix, int64_t ns, int a, int64_t v,
				      int64_t t, uint64_t seq)
{
	if (ix->n_rows == ATTR_ROWS_MAX)
		GUARD(flush_rows(ix));
	ix->rows[ix->n_rows++] =
		(struct attr_row){.ns = ns, .a = a, .v = v, .t = t, .seq = (int64_t)seq};
	return K_OK;
}

/* Two interned rows of one event; a value NULL or "" is not written. */
static K_MUST_CHECK k_status add_pair(struct event_index *ix, int64_t ns, int a1, const char *v1,
				      int a2, const char *v2, int64_t t, uint64_t seq)
{
	bool has1 = v1 != NULL && v1[0] != 0, has2 = v2 != NULL && v2[0] != 0;
	int64_t id1 = 0, id2 = 0;
	if (has1)
		GUARD(intern(ix, v1, &id1));
	if (has2)
		GUARD(intern(ix, v2, &id2));
	if (has1)
		GUARD(add_attr(ix, ns, a1, id1, t, seq));
	return has2 ? add_attr(ix, ns, a2, id2, t, seq) : K_OK;
}

/* The rows every event has: its operation (name, source, read-only) and its id. */
static K_MUST_CHECK k_status add_common(struct event_index *ix, int64_t ns,
					const struct event_index_row *r)
{
	int64_t op;
	GUARD(intern_op(ix, r, &op));
	GUARD(add_attr(ix, ns, EVENT_INDEX_ATTR_OP, op, r->t, r->seq));
	return add_attr(ix, ns, EVENT_INDEX_EVENT_ID,
			event_index_eid_value(r->event_id != NULL ? r->event_id : ""), r->t,
			r->seq);
}

k_status event_index_add(struct event_index *ix, const struct event_index_row *r)
{
	int64_t ns, file;
	GUARD(intern(ix, r->ns, &ns));
	GUARD(intern(ix, r->file, &file));
	sqlite3_stmt *st = ix->ins_ev;
	sqlite3_bind_int64(st, 1, ns);
	sqlite3_bind_int64(st, 2, r->t);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)r->seq);
	sqlite3_bind_int64(st, 4, file);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)r->off);
	sqlite3_bind_int64(st, 6, r->len);
	GUARD(run(ix->w, st));
	GUARD(add_common(ix, ns, r));
	return add_pair(ix, ns, EVENT_INDEX_USERNAME, r->user, EVENT_INDEX_ACCESS_KEY,
			r->access_key, r->t, r->seq);
}

k_status event_index_add_resource(struct event_index *ix, uint64_t seq, int64_t t, const char *ns,
				  const char *type, const char *arn)
{
	int64_t nsid;
	GUARD(intern(ix, ns, &nsid));
	bool has_type = type != NULL && type[0] != 0;
	if (arn == NULL || arn[0] == 0)
		return has_type ? add_pair(ix, nsid, EVENT_INDEX_RESOURCE_TYPE, type, 0, NULL, t,
					   seq)
				: K_OK;
	if (has_type)
		return add_pair(ix, nsid, EVENT_INDEX_RESOURCE_TYPE, type,
				EVENT_INDEX_RESOURCE_NAME, arn, t, seq);
	return add_pair(ix, nsid, EVENT_INDEX_RESOURCE_NAME, arn, 0, NULL, t, seq);
}

static K_MUST_CHECK k_status write_use(struct event_index *ix, const struct use_slot *u)
{
	sqlite3_stmt *st = ix->ins_use;
	sqlite3_bind_text(st, 1, u->arn, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, u->op, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, u->t);
	sqlite3_bind_text(st, 4, u->eid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, u->rid, -1, SQLITE_STATIC);
	return run(ix->w, st);
}

/* Copies s into a slot's field; false if it does not fit (the use is written at once instead). */
static bool fits(char *dst, size_t n, const char *s)
{
	size_t len = strlen(s);
	if (len >= n)
		return false;
	memcpy(dst, s, len + 1);
	return true;
}

k_status event_index_note_use(struct event_index *ix, const char *arn, const char *op, int64_t t,
			      const char *event_id, const char *request_id)
{
	struct use_slot *u = &ix->uses[khash(arn) % USE_SLOTS];
	if (u->set && strcmp(u->arn, arn) == 0) {
		if (t < u->t)
			return K_OK; /* a later use of the key is kept */
	} else if (u->set) {
		GUARD(write_use(ix, u)); /* another key in the slot: it goes now */
	}
	u->set = false;
	struct use_slot n = {.set = true, .t = t};
	if (!fits(n.arn, sizeof n.arn, arn) || !fits(n.op, sizeof n.op, op) ||
	    !fits(n.eid, sizeof n.eid, event_id != NULL ? event_id : "") ||
	    !fits(n.rid, sizeof n.rid, request_id != NULL ? request_id : "")) {
		sqlite3_stmt *st = ix->ins_use;
		sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, op, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, t);
		sqlite3_bind_text(st, 4, event_id != NULL ? event_id : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, request_id != NULL ? request_id : "", -1, SQLITE_STATIC);
		return run(ix->w, st);
	}
	*u = n;
	return K_OK;
}

static int use_cmp(const void *pa, const void *pb)
{
	const struct use_slot *const *a = pa, *const *b = pb;
	return strcmp((*a)->arn, (*b)->arn);
}

/*
 * Writes the batch's key uses kept in memory, in the order of lastuse's
 * key (the ARN, compared as bytes), so that the writes walk its B-tree
 * once instead of a random leaf a key.
 */
static K_MUST_CHECK k_status flush_uses(struct event_index *ix)
{
	const struct use_slot **set = malloc(USE_SLOTS * sizeof *set);
	ENSURE(set != NULL, K_E_INTERNAL);
	size_t n = 0;
	for (size_t i = 0; i < USE_SLOTS; i++) {
		if (ix->uses[i].set)
			set[n++] = &ix->uses[i];
	}
	qsort(set, n, sizeof *set, use_cmp);
	k_status rc = K_OK;
	for (size_t i = 0; i < n && k_ok(rc); i++)
		rc = write_use(ix, set[i]);
	free(set);
	for (size_t i = 0; k_ok(rc) && i < USE_SLOTS; i++)
		ix->uses[i].set = false;
	return rc;
}

k_status event_index_commit(struct event_index *ix, const struct event_index_pos *pos)
{
	sqlite3_stmt *st = ix->set_pos;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)pos->seq);
	sqlite3_bind_text(st, 2, pos->file, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)pos->off);
	sqlite3_bind_int64(st, 4, pos->oldest);
	k_status rc = flush_rows(ix);
	if (k_ok(rc))
		rc = flush_uses(ix);
	if (k_ok(rc))
		rc = run(ix->w, st);
	if (k_ok(rc))
		rc = exec(ix->w, "COMMIT");
	if (k_failed(rc)) {
		(void)sqlite3_exec(ix->w, "ROLLBACK", NULL, NULL, NULL);
		forget(ix);
	}
	pthread_mutex_unlock(&ix->wmu);
	return rc;
}

void event_index_rollback(struct event_index *ix)
{
	(void)sqlite3_exec(ix->w, "ROLLBACK", NULL, NULL, NULL);
	forget(ix);
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
