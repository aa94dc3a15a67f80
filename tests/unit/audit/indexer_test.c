/*
 * indexer_test.c — the event index's side queue (audit/ixqueue.c): the
 * members it carries are those the indexer reads back from the formatted
 * line, and an index built from the queue, from a queue that overflowed,
 * or by parsing the whole trail again is the same index; a start reads
 * its backlog after it returns, and a stop in the middle of that backlog
 * loses and repeats no event.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/internal.h"
#include "core/json.h"
#include "keystore/keystore.h"
#include "testlib.h"
#include "core/banned.h"

/* A formatted event line, and the start-up messages, are at most this long here. */
#define LINE_CAP (1u << 20)
#define MSG_CAP 1024

static char root[256];

static const char *str_of(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s != NULL ? s : "";
}

/* Packs c's members, pushes them as record 7, and checks them against its formatted line. */
static void check_pack(const struct audit_call_info *c, json_t *in, json_t *out, k_status rc,
		       bool packable)
{
	struct kbuf line;
	kbuf_init(&line, LINE_CAP);
	char id[37];
	struct audit_resources res;
	CHECK(k_ok(audit_format_call(c, in, out, rc, NULL, id, &res, &line)));
	static struct audit_ixq_entry ent;
	CHECK(audit_ixq_pack(c, rc, id, &res, &ent) == packable);
	json_t *e = json_loadb((const char *)line.ptr, line.len, 0, NULL);
	CHECK(e != NULL);
	kbuf_release(&line);
	if (!packable) {
		json_decref(e);
		return;
	}
	audit_ixq_push(ent.bytes, ent.len, 7);
	struct audit_ixq_view v;
	CHECK(!audit_ixq_take(6, &v));
	CHECK(audit_ixq_take(7, &v));
	int64_t t = 0;
	CHECK(audit_parse_iso8601(str_of(e, "eventTime"), &t));
	CHECK(v.seq == 7 && v.t == t);
	CHECK_STR(v.account, str_of(e, "recipientAccountId"));
	CHECK_STR(v.region, str_of(e, "awsRegion"));
	CHECK_STR(v.name, str_of(e, "eventName"));
	CHECK_STR(v.source, str_of(e, "eventSource"));
	const char *user = audit_event_username(e);
	CHECK_STR(v.user, user != NULL ? user : "");
	CHECK_STR(v.event_id, str_of(e, "eventID"));
	CHECK_STR(v.request_id, str_of(e, "requestID"));
	CHECK_STR(v.access_key, str_of(json_object_get(e, "userIdentity"), "accessKeyId"));
	CHECK(v.read_only == json_is_true(json_object_get(e, "readOnly")));
	CHECK(v.failed == (json_object_get(e, "errorCode") != NULL));
	json_t *rs = json_object_get(e, "resources");
	CHECK(v.n_res == json_array_size(rs));
	const char *cur = v.res;
	for (size_t i = 0; i < v.n_res; i++) {
		const char *arn;
		const char *type = audit_ixq_resource(&cur, &arn);
		CHECK_STR(type, str_of(json_array_get(rs, i), "type"));
		CHECK_STR(arn, str_of(json_array_get(rs, i), "ARN"));
	}
	audit_ixq_pop();
	CHECK(!audit_ixq_take(7, &v));
	json_decref(e);
}

static void test_pack_matches_line(void)
{
	CHECK(k_ok(audit_ixq_open(1u << 16)));
	struct audit_call_info c = {
		.who = {.account = "111122223333",
			.type = "AssumedRole",
			.arn = "arn:aws:sts::111122223333:assumed-role/Admin/sess1",
			.principal_id = "AROAEXAMPLE:sess1",
			.access_key = "ASIAEXAMPLE"},
		.event_source = "kms.amazonaws.com",
		.event_name = "Encrypt",
		.key_use = true,
		.region = "eu-west-1",
		.request_id = "11111111-2222-4333-8444-555555555555",
		.source_ip = "127.0.0.1",
		.now = 1738324800,
	};
	json_t *in = json_pack("{s:s}", "KeyId", "1234abcd-12ab-34cd-56ef-1234567890ab");
	check_pack(&c, in, NULL, K_OK, true);
	/* A failed call of the root user, in the default region. */
	c.who.type = "Root";
	c.who.arn = "arn:aws:iam::111122223333:root";
	c.region = "";
	check_pack(&c, in, NULL, K_E_NOT_FOUND, true);
	/* An IAM user with a path; a call that changes state and names two keys. */
	c.who.type = "IAMUser";
	c.who.arn = "arn:aws:iam::111122223333:user/dev/alice";
	c.event_name = "ReEncrypt";
	c.mutates = true;
	json_t *re = json_pack("{s:s,s:s}", "SourceKeyId", "1234abcd-12ab-34cd-56ef-1234567890ab",
			       "DestinationKeyId",
			       "arn:aws:kms:us-east-1:111122223333:key/"
			       "99999999-12ab-34cd-56ef-1234567890ab");
	check_pack(&c, re, NULL, K_OK, true);
	/* A caller that is not authenticated, and no known operation. */
	c.who = (struct audit_who){.account = "",
				   .type = "",
				   .arn = "",
				   .principal_id = "",
				   .access_key = "AKIDUNKNOWN"};
	c.event_name = NULL;
	c.event_source = NULL;
	check_pack(&c, NULL, NULL, K_E_UNKNOWN_OPERATION, true);
	/* A region the line would spell otherwise is left to the parse. */
	c.region = "eu-\xff";
	check_pack(&c, NULL, NULL, K_OK, false);
	json_decref(in);
	json_decref(re);
	audit_ixq_free();
}

struct pair {
	int64_t k[5]; /* ns, a, v, t, seq */
};

static int pair_cmp(const void *pa, const void *pb)
{
	const struct pair *a = pa, *b = pb;
	for (int i = 0; i < 5; i++) {
		if (a->k[i] != b->k[i])
			return a->k[i] < b->k[i] ? -1 : 1;
	}
	return 0;
}

/*
 * The posting blocks' (ns, a, v, t, seq) pairs, sorted, once each: how
 * the pairs fall into blocks depends on the batches, what they hold must
 * not.
 */
static void dump_pairs(sqlite3 *db, FILE *f)
{
	size_t n = 0, cap = 1024;
	struct pair *ps = malloc(cap * sizeof *ps);
	sqlite3_stmt *st = NULL;
	CHECK(sqlite3_prepare_v2(db, "SELECT ns, a, v, t, hi, seqs FROM blk", -1, &st, NULL) ==
	      SQLITE_OK);
	while (ps != NULL && sqlite3_step(st) == SQLITE_ROW) {
		const uint8_t *b = sqlite3_column_blob(st, 5);
		size_t len = (size_t)sqlite3_column_bytes(st, 5), pos = 0;
		int64_t seq = sqlite3_column_int64(st, 4);
		while (pos < len) {
			uint64_t d = 0;
			for (unsigned shift = 0; pos < len; shift += 7) {
				uint8_t c = b[pos++];
				d |= (uint64_t)(c & 0x7f) << shift;
				if ((c & 0x80) == 0)
					break;
			}
			seq -= (int64_t)d;
			if (n == cap) {
				cap *= 2;
				ps = realloc(ps, cap * sizeof *ps);
				CHECK(ps != NULL);
				if (ps == NULL)
					break;
			}
			struct pair *p = &ps[n++];
			for (int c = 0; c < 4; c++)
				p->k[c] = sqlite3_column_int64(st, c);
			p->k[4] = seq;
		}
	}
	sqlite3_finalize(st);
	if (ps != NULL)
		qsort(ps, n, sizeof *ps, pair_cmp);
	for (size_t i = 0; ps != NULL && i < n; i++) {
		if (i > 0 && pair_cmp(&ps[i], &ps[i - 1]) == 0)
			continue;
		fprintf(f, "%lld|%lld|%lld|%lld|%lld|\n", (long long)ps[i].k[0],
			(long long)ps[i].k[1], (long long)ps[i].k[2], (long long)ps[i].k[3],
			(long long)ps[i].k[4]);
	}
	free(ps);
}

/* Every row of every table of the index at path, sorted, as one string (blk as its pairs). */
static char *snapshot(const char *path)
{
	sqlite3 *db = NULL;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	char *tables[16];
	size_t nt = 0;
	sqlite3_stmt *st = NULL;
	CHECK(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &st,
				 NULL) == SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW && nt < 16)
		tables[nt++] = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	char *all = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&all, &len);
	for (size_t i = 0; i < nt; i++) {
		if (strcmp(tables[i], "blk") == 0) {
			fprintf(f, "[blk]\n");
			dump_pairs(db, f);
			free(tables[i]);
			continue;
		}
		char sql[256];
		int n = snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", tables[i]);
		CHECK(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
		int cols = sqlite3_column_count(st);
		sqlite3_finalize(st);
		for (int c = 1; c <= cols && n > 0 && (size_t)n < sizeof sql; c++)
			n += snprintf(sql + n, sizeof sql - (size_t)n, "%s%d",
				      c == 1 ? " ORDER BY " : ", ", c);
		CHECK(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
		fprintf(f, "[%s]\n", tables[i]);
		while (sqlite3_step(st) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(st); c++) {
				const unsigned char *v = sqlite3_column_text(st, c);
				fprintf(f, "%s|", v != NULL ? (const char *)v : "NULL");
			}
			fputc('\n', f);
		}
		sqlite3_finalize(st);
		free(tables[i]);
	}
	fclose(f);
	sqlite3_close(db);
	return all;
}

/* A snapshot whose blocks hold pairs (the comparisons compare something). */
static bool has_pairs(const char *snap)
{
	const char *p = strstr(snap, "[blk]\n");
	return p != NULL && p[6] >= '0' && p[6] <= '9';
}

static const struct audit_op_name uses[] = {{"kms.amazonaws.com", "Encrypt"},
					    {"kms.amazonaws.com", "Decrypt"}};

static void open_trail(const char *dir, size_t queue_bytes, size_t close_max)
{
	char key[512];
	snprintf(key, sizeof key, "%s/signing.key", root);
	struct audit_options o = {.dir = dir,
				  .key_file = key,
				  .sync = AUDIT_SYNC_WRITE,
				  .index_ms = 3600 * 1000,
				  .index_queue_bytes = queue_bytes,
				  .index_close_max = close_max,
				  .key_use_ops = uses,
				  .n_key_use_ops = 2};
	struct kbuf msg;
	kbuf_init(&msg, MSG_CAP);
	CHECK(k_ok(audit_open(&o, &msg)));
	kbuf_release(&msg);
}

/* n calls of several callers, operations, keys and outcomes, a service event among them. */
static void calls(int n)
{
	static const char *const ops[] = {"Encrypt", "Decrypt", "DescribeKey", "CreateKey"};
	static const char *const users[] = {"alice", "bob", "carol"};
	for (int i = 0; i < n; i++) {
		char arn[128], key[64], rid[40];
		snprintf(arn, sizeof arn, "arn:aws:iam::111122223333:user/%s", users[i % 3]);
		snprintf(key, sizeof key, "%08d-12ab-34cd-56ef-1234567890ab", i % 5);
		snprintf(rid, sizeof rid, "req-%d", i);
		struct audit_call_info c = {
			.who = {.account = "111122223333",
				.type = "IAMUser",
				.arn = arn,
				.principal_id = "AIDAEXAMPLE",
				.access_key = i % 2 ? "AKIDODD" : "AKIDEVEN"},
			.event_source = "kms.amazonaws.com",
			.event_name = ops[i % 4],
			.mutates = i % 4 == 3,
			.key_use = i % 4 < 2,
			.region = i % 7 == 0 ? "eu-west-1" : "us-east-1",
			.request_id = rid,
			.source_ip = "127.0.0.1",
			.now = 1738324800 + i / 10,
		};
		json_t *in = json_pack("{s:s}", "KeyId", key);
		k_status rc = i % 6 == 5 ? K_E_NOT_FOUND : K_OK;
		if (c.mutates)
			CHECK(k_ok(audit_intent(&c)));
		CHECK(k_ok(audit_call(&c, in, NULL, rc, NULL)));
		json_decref(in);
		if (i % 50 == 0)
			CHECK(k_ok(audit_emit_service_event(
				"kms.amazonaws.com", "RotateKey", "111122223333", "us-east-1",
				"arn:aws:kms:us-east-1:111122223333:key/"
				"00000001-12ab-34cd-56ef-1234567890ab",
				"AWS::KMS::Key", NULL, K_OK)));
	}
}

/*
 * Writes a trail with the given side queue, indexing it as a running
 * server does; then indexes the same trail again from scratch (a start
 * parses every line) and checks that both indexes hold the same rows.
 * Returns the records the first pass took from the queue.
 */
static uint64_t same_index(const char *name, size_t queue_bytes, int n)
{
	char dir[300], db[400], cmd[1400];
	snprintf(dir, sizeof dir, "%s/%s", root, name);
	snprintf(db, sizeof db, "%s/%s", dir, AUDIT_INDEX_FILE);
	open_trail(dir, queue_bytes, 0);
	uint64_t q0 = audit_index_from_queue(), d0 = audit_ixq_dropped();
	for (int round = 0; round < 4; round++) {
		calls(n / 4);
		audit_drain();
		CHECK(k_ok(audit_index_sync(SIZE_MAX)));
	}
	uint64_t queued = audit_index_from_queue() - q0;
	if (queue_bytes > 0 && queue_bytes < 8192)
		CHECK(audit_ixq_dropped() > d0); /* the small queue overflowed */
	audit_close();
	char *a = snapshot(db);
	snprintf(cmd, sizeof cmd, "rm -f '%s' '%s-wal' '%s-shm'", db, db, db);
	CHECK(system(cmd) == 0);
	open_trail(dir, queue_bytes, 0);
	audit_close();
	char *b = snapshot(db);
	CHECK(strlen(a) > 1000);
	CHECK(has_pairs(a));
	CHECK_STR(a, b);
	/* An index of another layout is dropped at start and built again from the trail. */
	sqlite3 *h = NULL;
	CHECK(sqlite3_open(db, &h) == SQLITE_OK);
	CHECK(sqlite3_exec(h, "UPDATE meta SET layout = 1", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(h);
	open_trail(dir, queue_bytes, 0);
	audit_close();
	char *c = snapshot(db);
	CHECK_STR(a, c);
	free(a);
	free(b);
	free(c);
	return queued;
}

/* The checkpoint's seq of the index file at db. */
static uint64_t checkpoint(const char *db)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	uint64_t seq = 0;
	CHECK(sqlite3_open(db, &h) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(h, "SELECT seq FROM pos", -1, &st, NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		seq = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return seq;
}

/* Waits (up to a minute) until the thread has read the start's backlog. */
static bool backlog_read(void)
{
	for (int i = 0; i < 6000 && !audit_index_backlog_read(); i++)
		usleep(10000);
	return audit_index_backlog_read();
}

/*
 * A trail of many batches whose index is gone: the start returns after
 * one batch and the thread reads the rest; a stop then leaves a partial
 * index (the stop indexes at most close_max more), and the next start
 * goes on from its checkpoint. The end: the same index as one built in
 * one go (every event once), and the last uses of the backlog in memory.
 */
static void test_backlog_after_start(void)
{
	enum {
		N = 40000
	};
	char dir[300], db[400], cmd[1400];
	snprintf(dir, sizeof dir, "%s/backlog", root);
	snprintf(db, sizeof db, "%s/%s", dir, AUDIT_INDEX_FILE);
	open_trail(dir, 0, 0);
	calls(N);
	audit_close();
	char *whole = snapshot(db);
	CHECK(has_pairs(whole));
	uint64_t last = checkpoint(db);
	snprintf(cmd, sizeof cmd, "rm -f '%s' '%s-wal' '%s-shm'", db, db, db);
	CHECK(system(cmd) == 0);

	open_trail(dir, 0, 1000);
	audit_close(); /* the thread is a batch or two in: a partial index */
	uint64_t part = checkpoint(db);
	CHECK(part > 0 && part < last);

	open_trail(dir, 0, 0);
	CHECK(backlog_read());
	struct audit_lastuse u;
	/* Key 4 (i % 5 == 4): its last successful Encrypt or Decrypt in us-east-1 is near the end. */
	CHECK(audit_lastuse_get("arn:aws:kms:us-east-1:111122223333:key/"
				"00000004-12ab-34cd-56ef-1234567890ab",
				&u));
	CHECK(u.t >= 1738324800 + (N - 40) / 10);
	CHECK(k_ok(audit_index_sync(SIZE_MAX)));
	audit_close();
	char *again = snapshot(db);
	CHECK_STR(whole, again);
	CHECK_EQ_INT(checkpoint(db), last);
	free(whole);
	free(again);
}

static void test_queue_overflow_and_rebuild_agree(void)
{
	/* The whole trail from the queue but the service events. */
	CHECK(same_index("full", 0, 400) >= 390);
	/* A queue of a few entries: most lines are parsed, the rest from the queue. */
	uint64_t some = same_index("small", 4096, 400);
	CHECK(some > 0 && some < 400);
}

int main(void)
{
	kjson_init();
	snprintf(root, sizeof root, "/tmp/kinko-indexer-test-%d", (int)getpid());
	mkdir(root, 0700);
	char rk[600];
	snprintf(rk, sizeof rk, "%s/root.key", root);
	struct kbuf msg;
	kbuf_init(&msg, MSG_CAP);
	CHECK(k_ok(keystore_open_file(rk, true, &msg)));
	kbuf_release(&msg);
	RUN(test_pack_matches_line);
	RUN(test_queue_overflow_and_rebuild_agree);
	RUN(test_backlog_after_start);
	tl_remove_tree(root);
	keystore_close();
	return tl_summary();
}
