#include "storage/event_index.h"
#include "storage/event_index_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "testlib.h"

static char dir[] = "/tmp/kinko-evindex-XXXXXX";
static char path[256];

/* An event of id eid at seq (its place in the trail: offset seq * 100, 99 bytes). */
static void add_event_id(struct event_index *ix, uint64_t seq, int64_t t, const char *name,
			 const char *user, const char *arn, const char *eid)
{
	struct event_index_row r = {.seq = seq,
				    .file = "kinko-audit-1.jsonl",
				    .off = seq * 100,
				    .len = 99,
				    .t = t,
				    .ns = "111122223333:us-east-1",
				    .name = name,
				    .source = "kms.amazonaws.com",
				    .user = user,
				    .event_id = eid,
				    .access_key = "",
				    .read_only = strcmp(name, "Encrypt") == 0};
	CHECK(k_ok(event_index_add(ix, &r)));
	if (arn != NULL)
		CHECK(k_ok(event_index_add_resource(ix, seq, t, r.ns, "AWS::KMS::Key", arn)));
}

static void add_event(struct event_index *ix, uint64_t seq, int64_t t, const char *name,
		      const char *user, const char *arn)
{
	char eid[40];
	snprintf(eid, sizeof eid, "event-%llu", (unsigned long long)seq);
	add_event_id(ix, seq, t, name, user, arn, eid);
}

/* An index in a file of its own in the test folder. */
static struct event_index *open_in(const char *name)
{
	char p[300];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	struct event_index *ix = NULL;
	CHECK(k_ok(event_index_open(p, &ix)));
	return ix;
}

struct hits {
	uint64_t seq[16];
	size_t n;
};

static bool hit(void *arg, uint64_t seq, int64_t t, const char *file, uint64_t off, uint32_t len)
{
	struct hits *h = arg;
	CHECK(file != NULL && strcmp(file, "kinko-audit-1.jsonl") == 0);
	CHECK(off == seq * 100 && len == 99 && t > 0);
	if (h->n < 16)
		h->seq[h->n++] = seq;
	return true;
}

/* A query in the test's namespace. */
static struct event_index_query query_of(enum event_index_attr a, const char *v, int64_t from,
					 int64_t to, bool after, int64_t bt, uint64_t bs,
					 size_t limit)
{
	return (struct event_index_query){.ns = "111122223333:us-east-1",
					  .attr = a,
					  .value = v,
					  .from = from,
					  .to = to,
					  .after_set = after,
					  .before_t = bt,
					  .before_seq = bs,
					  .limit = limit};
}

static struct hits run(struct event_index *ix, enum event_index_attr a, const char *v, int64_t from,
		       int64_t to, bool after, int64_t bt, uint64_t bs, size_t limit)
{
	struct hits h = {.n = 0};
	struct event_index_query q = query_of(a, v, from, to, after, bt, bs, limit);
	CHECK(k_ok(event_index_query(ix, &q, hit, &h)));
	return h;
}

/* Rows come newest first by time then seq, filtered by attribute, time and page. */
static void test_query(void)
{
	struct event_index *ix = NULL;
	CHECK(k_ok(event_index_open(path, &ix)));
	CHECK(k_ok(event_index_begin(ix)));
	add_event(ix, 1, 1000, "CreateKey", "root", "arn:aws:kms:us-east-1:111122223333:key/k1");
	add_event(ix, 2, 1001, "Encrypt", "alice", "arn:aws:kms:us-east-1:111122223333:key/k1");
	add_event(ix, 3, 1001, "Encrypt", "root", "arn:aws:kms:us-east-1:111122223333:key/k2");
	add_event(ix, 4, 1005, "DescribeKey", "root", NULL);
	struct event_index_pos pos = {.seq = 4, .off = 500, .oldest = 1000};
	snprintf(pos.file, sizeof pos.file, "kinko-audit-1.jsonl");
	CHECK(k_ok(event_index_commit(ix, &pos)));

	struct hits h = run(ix, EVENT_INDEX_ALL, "", 0, INT64_MAX, false, 0, 0, 10);
	CHECK_EQ_INT(h.n, 4);
	CHECK(h.seq[0] == 4 && h.seq[1] == 3 && h.seq[2] == 2 && h.seq[3] == 1);
	h = run(ix, EVENT_INDEX_EVENT_NAME, "Encrypt", 0, INT64_MAX, false, 0, 0, 10);
	CHECK(h.n == 2 && h.seq[0] == 3 && h.seq[1] == 2);
	h = run(ix, EVENT_INDEX_USERNAME, "root", 0, INT64_MAX, false, 0, 0, 2);
	CHECK(h.n == 2 && h.seq[0] == 4 && h.seq[1] == 3);
	/* The next page starts after the last row of the previous one. */
	h = run(ix, EVENT_INDEX_USERNAME, "root", 0, INT64_MAX, true, 1001, 3, 2);
	CHECK(h.n == 1 && h.seq[0] == 1);
	h = run(ix, EVENT_INDEX_RESOURCE_NAME, "k1", 0, INT64_MAX, false, 0, 0, 10);
	CHECK(h.n == 2 && h.seq[0] == 2 && h.seq[1] == 1);
	h = run(ix, EVENT_INDEX_RESOURCE_NAME, "arn:aws:kms:us-east-1:111122223333:key/k2", 0,
		INT64_MAX, false, 0, 0, 10);
	CHECK(h.n == 1 && h.seq[0] == 3);
	h = run(ix, EVENT_INDEX_READ_ONLY, "true", 0, INT64_MAX, false, 0, 0, 10);
	CHECK_EQ_INT(h.n, 2);
	h = run(ix, EVENT_INDEX_EVENT_ID, "event-1", 0, INT64_MAX, false, 0, 0, 10);
	CHECK(h.n == 1 && h.seq[0] == 1);
	h = run(ix, EVENT_INDEX_ALL, "", 1001, 1002, false, 0, 0, 10);
	CHECK(h.n == 2 && h.seq[0] == 3);
	h = run(ix, EVENT_INDEX_USERNAME, "nobody", 0, INT64_MAX, false, 0, 0, 10);
	CHECK_EQ_INT(h.n, 0);
	/* A source or a read-only flag spans several operations: their ranges merge in order. */
	h = run(ix, EVENT_INDEX_EVENT_SOURCE, "kms.amazonaws.com", 0, INT64_MAX, false, 0, 0, 10);
	CHECK(h.n == 4 && h.seq[0] == 4 && h.seq[1] == 3 && h.seq[2] == 2 && h.seq[3] == 1);
	h = run(ix, EVENT_INDEX_EVENT_SOURCE, "kms.amazonaws.com", 0, INT64_MAX, false, 0, 0, 2);
	CHECK(h.n == 2 && h.seq[0] == 4 && h.seq[1] == 3);
	h = run(ix, EVENT_INDEX_EVENT_SOURCE, "kms.amazonaws.com", 0, INT64_MAX, true, 1001, 3, 2);
	CHECK(h.n == 2 && h.seq[0] == 2 && h.seq[1] == 1);
	h = run(ix, EVENT_INDEX_READ_ONLY, "false", 0, INT64_MAX, false, 0, 0, 10);
	CHECK(h.n == 2 && h.seq[0] == 4 && h.seq[1] == 1);
	h = run(ix, EVENT_INDEX_READ_ONLY, "maybe", 0, INT64_MAX, false, 0, 0, 10);
	CHECK_EQ_INT(h.n, 0);
	h = run(ix, EVENT_INDEX_EVENT_SOURCE, "secretsmanager.amazonaws.com", 0, INT64_MAX, false,
		0, 0, 10);
	CHECK_EQ_INT(h.n, 0);
	h = run(ix, EVENT_INDEX_RESOURCE_TYPE, "AWS::KMS::Key", 1000, 1001, false, 0, 0, 10);
	CHECK(h.n == 3 && h.seq[0] == 3);
	struct event_index_query other = {.ns = "999999999999:us-east-1",
					  .attr = EVENT_INDEX_ALL,
					  .value = "",
					  .to = INT64_MAX,
					  .limit = 10};
	struct hits none = {.n = 0};
	CHECK(k_ok(event_index_query(ix, &other, hit, &none)));
	CHECK_EQ_INT(none.n, 0);
	event_index_close(ix);
}

struct uses {
	char op[32];
	int64_t t;
	size_t n;
};

static bool use(void *arg, const char *arn, const char *op, int64_t t, const char *e, const char *r)
{
	(void)e;
	(void)r;
	struct uses *u = arg;
	CHECK(strcmp(arn, "arn:k1") == 0);
	snprintf(u->op, sizeof u->op, "%s", op);
	u->t = t;
	u->n++;
	return true;
}

/* A later use wins, an earlier one is ignored; a rolled-back batch leaves the checkpoint. */
static void test_uses_and_checkpoint(void)
{
	struct event_index *ix = NULL;
	CHECK(k_ok(event_index_open(path, &ix)));
	struct event_index_pos pos;
	CHECK(k_ok(event_index_pos(ix, &pos)));
	CHECK(pos.seq == 4 && pos.off == 500 && pos.oldest == 1000);
	CHECK_STR(pos.file, "kinko-audit-1.jsonl");
	CHECK(k_ok(event_index_begin(ix)));
	CHECK(k_ok(event_index_note_use(ix, "arn:k1", "Encrypt", 2000, "e1", "r1")));
	CHECK(k_ok(event_index_note_use(ix, "arn:k1", "Decrypt", 1999, "e0", "r0")));
	pos.seq = 6;
	CHECK(k_ok(event_index_commit(ix, &pos)));
	struct uses u = {.n = 0};
	CHECK(k_ok(event_index_each_use(ix, use, &u)));
	CHECK(u.n == 1 && u.t == 2000);
	CHECK_STR(u.op, "Encrypt");
	CHECK(k_ok(event_index_begin(ix)));
	CHECK(k_ok(event_index_note_use(ix, "arn:k1", "Sign", 3000, "e2", "r2")));
	event_index_rollback(ix);
	u.n = 0;
	CHECK(k_ok(event_index_each_use(ix, use, &u)));
	CHECK(u.n == 1 && u.t == 2000);
	CHECK(k_ok(event_index_pos(ix, &pos)));
	CHECK_EQ_INT(pos.seq, 6);
	CHECK(k_ok(event_index_clear(ix)));
	CHECK(k_ok(event_index_pos(ix, &pos)));
	CHECK(pos.seq == 0 && pos.file[0] == 0);
	event_index_close(ix);
}

/* An index of layout 1 (text keys, an "all events" row each) is dropped and starts empty. */
static void test_old_layout_is_rebuilt(void)
{
	char old[300];
	snprintf(old, sizeof old, "%s/old.db", dir);
	sqlite3 *db = NULL;
	CHECK(sqlite3_open(old, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(
		      db,
		      "CREATE TABLE meta(layout INTEGER NOT NULL); INSERT INTO meta VALUES(1);"
		      "CREATE TABLE ev(seq INTEGER PRIMARY KEY, file TEXT NOT NULL,"
		      " off INTEGER NOT NULL, len INTEGER NOT NULL);"
		      "INSERT INTO ev VALUES(1, 'kinko-audit-1.jsonl', 0, 99);"
		      "CREATE TABLE attr(ns TEXT NOT NULL, a INTEGER NOT NULL, v TEXT NOT NULL,"
		      " t INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY(ns, a, v, t, seq))"
		      " WITHOUT ROWID;"
		      "INSERT INTO attr VALUES('111122223333:us-east-1', 0, '', 1000, 1);"
		      "CREATE TABLE lastuse(arn TEXT PRIMARY KEY, op TEXT NOT NULL,"
		      " t INTEGER NOT NULL, eid TEXT NOT NULL, rid TEXT NOT NULL);"
		      "INSERT INTO lastuse VALUES('arn:k1', 'Encrypt', 1000, 'e', 'r');"
		      "CREATE TABLE pos(id INTEGER PRIMARY KEY CHECK(id = 1), seq INTEGER NOT NULL,"
		      " file TEXT NOT NULL, off INTEGER NOT NULL, oldest INTEGER NOT NULL);"
		      "INSERT INTO pos VALUES(1, 1, 'kinko-audit-1.jsonl', 100, 1000);",
		      NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	struct event_index *ix = NULL;
	CHECK(k_ok(event_index_open(old, &ix)));
	struct event_index_pos pos;
	CHECK(k_ok(event_index_pos(ix, &pos)));
	CHECK(pos.seq == 0 && pos.file[0] == 0);
	struct uses u = {.n = 0};
	CHECK(k_ok(event_index_each_use(ix, use, &u)));
	CHECK_EQ_INT(u.n, 0);
	/* The new layout takes events at once. */
	CHECK(k_ok(event_index_begin(ix)));
	add_event(ix, 1, 1000, "CreateKey", "root", "arn:aws:kms:us-east-1:111122223333:key/k1");
	pos.seq = 1;
	CHECK(k_ok(event_index_commit(ix, &pos)));
	struct hits h = run(ix, EVENT_INDEX_ALL, "", 0, INT64_MAX, false, 0, 0, 10);
	CHECK(h.n == 1 && h.seq[0] == 1);
	event_index_close(ix);
	CHECK(sqlite3_open(old, &db) == SQLITE_OK);
	sqlite3_stmt *st = NULL;
	CHECK(sqlite3_prepare_v2(db, "SELECT layout FROM meta", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 3);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

struct walk {
	uint64_t *seq;
	size_t n, cap;
	int64_t last_t;
};

static bool walk_hit(void *arg, uint64_t seq, int64_t t, const char *file, uint64_t off,
		     uint32_t len)
{
	struct walk *w = arg;
	CHECK(file != NULL && strcmp(file, "kinko-audit-1.jsonl") == 0);
	CHECK(off == seq * 100 && len == 99);
	if (w->n < w->cap)
		w->seq[w->n++] = seq;
	w->last_t = t;
	return true;
}

/* Pages through a value's events, `limit` a page; every seq found, in order, into w. */
static void walk_all(struct event_index *ix, enum event_index_attr a, const char *v, size_t limit,
		     struct walk *w)
{
	bool after = false;
	int64_t bt = 0;
	uint64_t bs = 0;
	for (;;) {
		size_t before = w->n;
		struct event_index_query q = query_of(a, v, 0, INT64_MAX, after, bt, bs, limit);
		CHECK(k_ok(event_index_query(ix, &q, walk_hit, w)));
		if (w->n == before || w->n == w->cap)
			return;
		after = true;
		bt = w->last_t;
		bs = w->seq[w->n - 1];
	}
}

/*
 * Blocks: one value's events of one second spread over several blocks
 * (past a block's size, over batches, and over a batch that writes its
 * pairs before its commit because they fill) come back whole, in order,
 * once each, page by page; an event with two resources of one type is
 * found once.
 */
static void test_blocks(void)
{
	struct event_index *ix = open_in("blocks.db");
	const char *arn = "arn:aws:kms:us-east-1:111122223333:key/bulk";
	uint64_t seq = 0;
	CHECK(k_ok(event_index_begin(ix)));
	add_event(ix, ++seq, 4999, "Encrypt", "bulk", arn);
	for (int i = 0; i < 300; i++)
		add_event(ix, ++seq, 5000, "Encrypt", "bulk", arn);
	struct event_index_pos pos = {.seq = seq, .off = 1, .oldest = 4999};
	snprintf(pos.file, sizeof pos.file, "kinko-audit-1.jsonl");
	CHECK(k_ok(event_index_commit(ix, &pos)));
	/* 20,000 events: their 140,000 pairs pass what a batch keeps (131,072). */
	CHECK(k_ok(event_index_begin(ix)));
	for (int i = 0; i < 20000; i++) {
		add_event(ix, ++seq, 5000, i % 2 == 0 ? "Encrypt" : "Decrypt", "bulk", arn);
		if (i == 777)
			CHECK(k_ok(event_index_add_resource(ix, seq, 5000, "111122223333:us-east-1",
							    "AWS::KMS::Key", arn)));
	}
	add_event(ix, ++seq, 5001, "Encrypt", "bulk", arn);
	pos.seq = seq;
	CHECK(k_ok(event_index_commit(ix, &pos)));
	size_t total = (size_t)seq;
	struct walk w = {.seq = calloc(total + 10, sizeof(uint64_t)), .cap = total + 10};
	CHECK(w.seq != NULL);
	for (size_t limit = 1000; w.seq != NULL && limit <= 4000; limit *= 4) {
		w.n = 0;
		walk_all(ix, EVENT_INDEX_USERNAME, "bulk", limit, &w);
		CHECK_EQ_INT(w.n, total);
		bool ordered = w.n == total;
		for (size_t i = 0; ordered && i < w.n; i++)
			ordered = w.seq[i] == total - i;
		CHECK(ordered);
		w.n = 0;
		walk_all(ix, EVENT_INDEX_RESOURCE_NAME, "bulk", limit, &w);
		CHECK_EQ_INT(w.n, total);
		w.n = 0;
		walk_all(ix, EVENT_INDEX_RESOURCE_TYPE, "AWS::KMS::Key", limit, &w);
		CHECK_EQ_INT(w.n, total);
	}
	/* Decrypt: every other event of the big batch, none of the others. */
	w.n = 0;
	walk_all(ix, EVENT_INDEX_EVENT_NAME, "Decrypt", 1000, &w);
	CHECK_EQ_INT(w.n, 10000);
	CHECK(w.n > 0 && w.seq[0] == seq - 1 && w.seq[w.n - 1] == 303);
	/* A page that starts inside a second and inside a block. */
	struct hits h = run(ix, EVENT_INDEX_USERNAME, "bulk", 0, INT64_MAX, true, 5000, 10000, 3);
	CHECK(h.n == 3 && h.seq[0] == 9999 && h.seq[1] == 9998 && h.seq[2] == 9997);
	h = run(ix, EVENT_INDEX_USERNAME, "bulk", 0, 4999, false, 0, 0, 3);
	CHECK(h.n == 1 && h.seq[0] == 1);
	h = run(ix, EVENT_INDEX_EVENT_ID, "event-778", 0, INT64_MAX, false, 0, 0, 3);
	CHECK(h.n == 1 && h.seq[0] == 778);
	free(w.seq);
	event_index_close(ix);
}

/* Event ids of kinko's shape: found by their value, which keeps one thread's ids side by side. */
static void test_event_ids(void)
{
	struct event_index *ix = open_in("eids.db");
	CHECK(k_ok(event_index_begin(ix)));
	const char *ids[] = {"0f1e2d3c-4b5a-4978-8a6b-5c4d0000002a",
			     "0f1e2d3c-4b5a-4978-8a6b-5c4d0000002b",
			     "0F1E2D3C-4B5A-4978-8A6B-5C4D0000002C",
			     "0f1e2d3c-4b5a-4978-8a6b-5c4d0000002z", "short-id"};
	for (uint64_t i = 0; i < 5; i++)
		add_event_id(ix, i + 1, 2000, "Encrypt", "root", NULL, ids[i]);
	struct event_index_pos pos = {.seq = 5, .off = 1, .oldest = 2000};
	snprintf(pos.file, sizeof pos.file, "kinko-audit-1.jsonl");
	CHECK(k_ok(event_index_commit(ix, &pos)));
	for (uint64_t i = 0; i < 5; i++) {
		struct hits h = run(ix, EVENT_INDEX_EVENT_ID, ids[i], 0, INT64_MAX, false, 0, 0, 3);
		CHECK(h.n == 1 && h.seq[0] == i + 1);
	}
	struct hits h = run(ix, EVENT_INDEX_EVENT_ID, "0f1e2d3c-4b5a-4978-8a6b-5c4d0000002d", 0,
			    INT64_MAX, false, 0, 0, 3);
	CHECK_EQ_INT(h.n, 0);
	CHECK(event_index_eid_value(ids[1]) == event_index_eid_value(ids[0]) + 1);
	CHECK(event_index_eid_value(ids[0]) >= 0 && event_index_eid_value(ids[3]) >= 0);
	event_index_close(ix);
}

/* Many uses of a few keys in one batch: the latest of each is kept, across slot clashes. */
static void test_batched_uses(void)
{
	struct event_index *ix = open_in("uses.db");
	CHECK(k_ok(event_index_begin(ix)));
	for (int i = 0; i < 5000; i++) {
		char arn[64];
		snprintf(arn, sizeof arn, "arn:key-%d", i % 1500);
		CHECK(k_ok(event_index_note_use(ix, arn, i % 2 ? "Decrypt" : "Encrypt", 1000 + i,
						"e", "r")));
	}
	/* An earlier use noted after a later one changes nothing. */
	CHECK(k_ok(event_index_note_use(ix, "arn:key-7", "Sign", 10, "e", "r")));
	struct event_index_pos pos = {.seq = 1};
	CHECK(k_ok(event_index_commit(ix, &pos)));
	char p2[300];
	snprintf(p2, sizeof p2, "%s/uses.db", dir);
	sqlite3 *db = NULL;
	CHECK(sqlite3_open(p2, &db) == SQLITE_OK);
	sqlite3_stmt *st = NULL;
	CHECK(sqlite3_prepare_v2(db, "SELECT count(*), min(t), max(t) FROM lastuse", -1, &st,
				 NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_EQ_INT(sqlite3_column_int(st, 0), 1500);
	CHECK_EQ_INT(sqlite3_column_int(st, 1), 1000 + 3500);
	CHECK_EQ_INT(sqlite3_column_int(st, 2), 1000 + 4999);
	sqlite3_finalize(st);
	CHECK(sqlite3_prepare_v2(db, "SELECT op, t FROM lastuse WHERE arn = 'arn:key-7'", -1, &st,
				 NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_STR((const char *)sqlite3_column_text(st, 0), "Decrypt");
	CHECK_EQ_INT(sqlite3_column_int(st, 1), 1000 + 4507);
	sqlite3_finalize(st);
	sqlite3_close(db);
	event_index_close(ix);
}

int main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof path, "%s/index.db", dir);
	RUN(test_query);
	RUN(test_uses_and_checkpoint);
	RUN(test_old_layout_is_rebuilt);
	RUN(test_batched_uses);
	RUN(test_blocks);
	RUN(test_event_ids);
	tl_remove_tree(dir);
	return tl_summary();
}
