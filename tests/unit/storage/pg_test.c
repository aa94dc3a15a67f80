/*
 * pg_test.c — the PostgreSQL storage backend against the storage.h
 * contract, and its change feed across two handles (two nodes).
 *
 * It needs a server: KINKO_TEST_PG_URL names an empty database
 * (tests/integration/test_pg_store.py starts one and runs this binary).
 * Without it the binary says so and checks nothing.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/storage.h"
#include "testlib.h"
#include "core/banned.h"

static const char *url;

static struct storage *open_store(void)
{
	struct storage *s = NULL;
	struct kbuf why;
	kbuf_init(&why, 512);
	k_status rc = storage_open(url, &s, &why);
	if (k_failed(rc))
		fprintf(stderr, "open: %s\n", kbuf_cstr(&why));
	kbuf_release(&why);
	CHECK_STATUS(rc, K_OK);
	return k_ok(rc) ? s : NULL;
}

static K_MUST_CHECK k_status put(struct storage *s, const char *kind, const char *ns,
				 const char *id, const char *doc, int64_t expect)
{
	struct storage_op op = {STORAGE_PUT, kind, ns, id, kslice_cstr(doc), expect};
	return storage_apply(s, &op, 1);
}

static K_MUST_CHECK k_status del(struct storage *s, const char *kind, const char *ns,
				 const char *id, int64_t expect)
{
	struct storage_op op = {STORAGE_DEL, kind, ns, id, {NULL, 0}, expect};
	return storage_apply(s, &op, 1);
}

static K_MUST_CHECK k_status get_str(struct storage *s, const char *kind, const char *ns,
				     const char *id, char *out, size_t n, int64_t *version)
{
	struct kbuf b;
	kbuf_init(&b, STORAGE_MAX_DOC);
	*version = 0;
	k_status rc = storage_get(s, kind, ns, id, &b, version);
	snprintf(out, n, "%s", kbuf_cstr(&b));
	kbuf_release(&b);
	return rc;
}

struct collect {
	struct kbuf out;
	bool with_ns;
	size_t stop_after;
	size_t calls;
};

static K_MUST_CHECK k_status collect_cb(void *arg, const char *ns, const char *id,
					struct kslice doc, int64_t version)
{
	(void)doc;
	(void)version;
	struct collect *c = arg;
	c->calls++;
	if (c->out.len > 0)
		GUARD(kbuf_append_byte(&c->out, ','));
	if (c->with_ns) {
		GUARD(kbuf_append_str(&c->out, ns));
		GUARD(kbuf_append_byte(&c->out, '/'));
	}
	GUARD(kbuf_append_str(&c->out, id));
	if (c->stop_after != 0 && c->calls >= c->stop_after)
		return K_E_LIMIT_EXCEEDED;
	return K_OK;
}

static K_MUST_CHECK k_status list_str(struct storage *s, const char *kind, const char *ns,
				      const char *prefix, const char *after, size_t limit,
				      char *out, size_t n)
{
	struct collect c = {.with_ns = ns == NULL};
	kbuf_init(&c.out, 64 * 1024);
	k_status rc = storage_list(s, kind, ns, prefix, after, limit, collect_cb, &c);
	snprintf(out, n, "%s", kbuf_cstr(&c.out));
	kbuf_release(&c.out);
	return rc;
}

static void test_put_get(struct storage *s)
{
	char doc[64];
	int64_t v = -5;
	CHECK_STATUS(get_str(s, "key", "pg:us-east-1", "k1", doc, sizeof doc, &v), K_E_NOT_FOUND);
	CHECK_STATUS(put(s, "key", "pg:us-east-1", "k1", "{\"a\":1}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(get_str(s, "key", "pg:us-east-1", "k1", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "{\"a\":1}");
	CHECK_EQ_INT(v, 1);
	CHECK_STATUS(put(s, "key", "pg:us-east-1", "k1", "{\"a\":2}", 1), K_OK);
	CHECK_STATUS(get_str(s, "key", "pg:us-east-1", "k1", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "{\"a\":2}");
	CHECK_EQ_INT(v, 2);
	struct kbuf b;
	kbuf_init(&b, 4);
	CHECK_STATUS(storage_get(s, "key", "pg:us-east-1", "k1", &b, &v), K_E_VALIDATION);
	CHECK_EQ_INT(b.len, 0);
	kbuf_release(&b);
	CHECK_STATUS(put(s, "meta", "", "empty", "", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(get_str(s, "meta", "", "empty", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "");
	CHECK_EQ_INT(v, 1);
	/* binary documents round-trip byte for byte */
	const uint8_t bin[5] = {0, 0xff, '\'', '\\', 0};
	struct storage_op op = {STORAGE_PUT, "blob", "pg", "bin", kslice_make(bin, 5), STORAGE_ANY};
	CHECK_STATUS(storage_apply(s, &op, 1), K_OK);
	kbuf_init(&b, 64);
	CHECK_STATUS(storage_get(s, "blob", "pg", "bin", &b, NULL), K_OK);
	CHECK(b.len == 5 && memcmp(b.ptr, bin, 5) == 0);
	kbuf_release(&b);
	CHECK_STATUS(storage_check(s), K_OK);
}

static void test_limits(struct storage *s)
{
	char name[STORAGE_MAX_NAME + 2];
	memset(name, 'n', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	CHECK_STATUS(put(s, "key", "ns", name, "{}", STORAGE_ANY), K_E_VALIDATION);
	name[STORAGE_MAX_NAME] = '\0';
	CHECK_STATUS(put(s, "key", "lim", name, "{}", STORAGE_ANY), K_OK);
	CHECK_STATUS(storage_get(s, "key", "lim", name, NULL, NULL), K_OK);
	CHECK_STATUS(put(s, "key", "ns", "", "{}", STORAGE_ANY), K_E_VALIDATION);
	CHECK_STATUS(put(s, NULL, "ns", "id", "{}", STORAGE_ANY), K_E_VALIDATION);
	CHECK_STATUS(put(s, "key", "ns", "id", "{}", -2), K_E_VALIDATION);
	CHECK_STATUS(storage_apply(s, NULL, 1), K_E_VALIDATION);
	CHECK_STATUS(storage_apply(s, NULL, 0), K_OK);
	uint8_t *big = malloc(STORAGE_MAX_DOC + 1);
	CHECK(big != NULL);
	if (big != NULL) {
		memset(big, '7', STORAGE_MAX_DOC + 1);
		struct storage_op op = {
			STORAGE_PUT, "blob", "lim", "big", kslice_make(big, STORAGE_MAX_DOC + 1),
			STORAGE_ANY};
		CHECK_STATUS(storage_apply(s, &op, 1), K_E_VALIDATION);
		op.doc.len = STORAGE_MAX_DOC;
		CHECK_STATUS(storage_apply(s, &op, 1), K_OK);
		struct kbuf b;
		kbuf_init(&b, STORAGE_MAX_DOC);
		CHECK_STATUS(storage_get(s, "blob", "lim", "big", &b, NULL), K_OK);
		CHECK(b.len == STORAGE_MAX_DOC && memcmp(b.ptr, big, STORAGE_MAX_DOC) == 0);
		kbuf_release(&b);
		free(big);
	}
	CHECK_STATUS(storage_purge(s, ""), K_E_VALIDATION);
}

static void test_list_paging(struct storage *s)
{
	char out[2048], id[16];
	for (int i = 20; i >= 1; i--) {
		snprintf(id, sizeof id, "a%02d", i);
		CHECK_STATUS(put(s, "pkey", "ns", id, "{}", STORAGE_ABSENT), K_OK);
	}
	for (int i = 1; i <= 5; i++) {
		snprintf(id, sizeof id, "b%02d", i);
		CHECK_STATUS(put(s, "pkey", "ns", id, "{}", STORAGE_ABSENT), K_OK);
	}
	/* byte order, not a locale's: upper case before lower case, '_' between */
	CHECK_STATUS(put(s, "pkey", "ns", "Z", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "pkey", "ns", "_", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(list_str(s, "pkey", "ns", NULL, NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "Z,_,a01,a02,a03,a04,a05,a06,a07,a08,a09,a10,a11,a12,a13,a14,a15,a16,a17,"
		       "a18,a19,a20,b01,b02,b03,b04,b05");
	CHECK_STATUS(list_str(s, "pkey", "ns", NULL, "a03", 3, out, sizeof out), K_OK);
	CHECK_STR(out, "a04,a05,a06");
	CHECK_STATUS(list_str(s, "pkey", "ns", NULL, "a035", 2, out, sizeof out), K_OK);
	CHECK_STR(out, "a04,a05");
	CHECK_STATUS(list_str(s, "pkey", "ns", NULL, "b05", 0, out, sizeof out), K_OK);
	CHECK_STR(out, "");
	CHECK_STATUS(list_str(s, "pkey", "ns", "b", NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "b01,b02,b03,b04,b05");
	CHECK_STATUS(list_str(s, "pkey", "ns", "a1", "a12", 3, out, sizeof out), K_OK);
	CHECK_STR(out, "a13,a14,a15");
	CHECK_STATUS(list_str(s, "pkey", "ns", "a1", "a05", 2, out, sizeof out), K_OK);
	CHECK_STR(out, "a10,a11");
	CHECK_STATUS(list_str(s, "pkey", "ns", "c", NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "");
	/* % and _ in a prefix mean themselves */
	CHECK_STATUS(list_str(s, "pkey", "ns", "_", NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "_");
	struct collect c = {.stop_after = 2};
	kbuf_init(&c.out, 1024);
	CHECK_STATUS(storage_list(s, "pkey", "ns", NULL, NULL, 0, collect_cb, &c),
		     K_E_LIMIT_EXCEEDED);
	CHECK_EQ_INT(c.calls, 2);
	kbuf_release(&c.out);
	/* more rows than one page of the backend */
	for (int i = 0; i < 600; i++) {
		snprintf(id, sizeof id, "m%04d", i);
		CHECK_STATUS(put(s, "many", "ns", id, "{}", STORAGE_ABSENT), K_OK);
	}
	struct collect m = {0};
	kbuf_init(&m.out, 64 * 1024);
	CHECK_STATUS(storage_list(s, "many", "ns", NULL, NULL, 0, collect_cb, &m), K_OK);
	CHECK_EQ_INT(m.calls, 600);
	kbuf_release(&m.out);
	m = (struct collect){.with_ns = true};
	kbuf_init(&m.out, 64 * 1024);
	CHECK_STATUS(storage_list(s, "many", NULL, NULL, NULL, 0, collect_cb, &m), K_OK);
	CHECK_EQ_INT(m.calls, 600);
	kbuf_release(&m.out);
}

static void test_list_all_namespaces(struct storage *s)
{
	char out[512];
	CHECK_STATUS(put(s, "lalias", "222:us-east-1", "alias/b", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "lalias", "111:us-east-1", "alias/z", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "lalias", "111:eu-west-1", "alias/a", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "lalias", "111:us-east-1", "alias/a", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "lalias", "111:us-east-1", "other", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(list_str(s, "lalias", NULL, NULL, NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "111:eu-west-1/alias/a,111:us-east-1/alias/a,111:us-east-1/alias/z,"
		       "111:us-east-1/other,222:us-east-1/alias/b");
	CHECK_STATUS(list_str(s, "lalias", NULL, "alias/", NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "111:eu-west-1/alias/a,111:us-east-1/alias/a,111:us-east-1/alias/z,"
		       "222:us-east-1/alias/b");
	CHECK_STATUS(list_str(s, "lalias", NULL, NULL, NULL, 2, out, sizeof out), K_OK);
	CHECK_STR(out, "111:eu-west-1/alias/a,111:us-east-1/alias/a");
}

struct nested {
	struct storage *s;
	size_t seen;
	k_status err;
};

static K_MUST_CHECK k_status nested_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				       int64_t version)
{
	(void)doc;
	(void)version;
	struct nested *n = arg;
	char out[256];
	n->seen++;
	k_status rc = storage_get(n->s, "nkey", "ns", id, NULL, NULL);
	if (k_ok(rc))
		rc = put(n->s, "ncopy", "ns", id, "{}", STORAGE_ANY);
	if (k_ok(rc))
		rc = list_str(n->s, "nkey", "other", NULL, NULL, 0, out, sizeof out);
	if (k_ok(rc) && strcmp(ns, "ns") != 0)
		rc = K_E_INTERNAL;
	if (k_failed(rc))
		n->err = rc;
	return rc;
}

static void test_nested_calls(struct storage *s)
{
	char out[256];
	CHECK_STATUS(put(s, "nkey", "ns", "a", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "nkey", "ns", "b", "{}", STORAGE_ABSENT), K_OK);
	struct nested n = {s, 0, K_OK};
	CHECK_STATUS(storage_list(s, "nkey", "ns", NULL, NULL, 0, nested_cb, &n), K_OK);
	CHECK_EQ_INT(n.seen, 2);
	CHECK_STATUS(list_str(s, "ncopy", "ns", NULL, NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "a,b");
}

static void test_versions(struct storage *s)
{
	char doc[64];
	int64_t v = 0;
	CHECK_STATUS(put(s, "vkey", "ns", "k", "v1", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "vkey", "ns", "k", "again", STORAGE_ABSENT), K_E_CONFLICT);
	CHECK_STATUS(put(s, "vkey", "ns", "k", "v2", 1), K_OK);
	CHECK_STATUS(put(s, "vkey", "ns", "k", "stale", 1), K_E_CONFLICT);
	CHECK_STATUS(put(s, "vkey", "ns", "k", "v3", STORAGE_ANY), K_OK);
	CHECK_STATUS(put(s, "vkey", "ns", "missing", "x", 1), K_E_CONFLICT);
	CHECK_STATUS(put(s, "vkey", "ns", "fresh", "x", STORAGE_ANY), K_OK);
	CHECK_STATUS(get_str(s, "vkey", "ns", "k", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "v3");
	CHECK_EQ_INT(v, 3);
	struct storage_op batch[3] = {
		{STORAGE_PUT, "vkey", "ns", "new1", KSLICE_LIT("n1"), STORAGE_ABSENT},
		{STORAGE_PUT, "vkey", "ns", "k", KSLICE_LIT("v4"), 3},
		{STORAGE_PUT, "vkey", "ns", "fresh", KSLICE_LIT("x2"), 7},
	};
	CHECK_STATUS(storage_apply(s, batch, 3), K_E_CONFLICT);
	CHECK_STATUS(get_str(s, "vkey", "ns", "new1", doc, sizeof doc, &v), K_E_NOT_FOUND);
	CHECK_STATUS(get_str(s, "vkey", "ns", "k", doc, sizeof doc, &v), K_OK);
	CHECK_EQ_INT(v, 3);
	batch[2] = (struct storage_op){STORAGE_DEL, "vkey", "ns", "nothere", {NULL, 0}, 1};
	CHECK_STATUS(storage_apply(s, batch, 3), K_E_NOT_FOUND);
	CHECK_STATUS(get_str(s, "vkey", "ns", "new1", doc, sizeof doc, &v), K_E_NOT_FOUND);
	batch[2] = (struct storage_op){STORAGE_PUT, "vkey", "ns", "fresh", KSLICE_LIT("x2"), 1};
	CHECK_STATUS(storage_apply(s, batch, 3), K_OK);
	CHECK_STATUS(get_str(s, "vkey", "ns", "k", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "v4");
	CHECK_EQ_INT(v, 4);
	struct storage_op seq[3] = {
		{STORAGE_PUT, "vkey", "ns", "seq", KSLICE_LIT("s1"), STORAGE_ABSENT},
		{STORAGE_PUT, "vkey", "ns", "seq", KSLICE_LIT("s2"), 1},
		{STORAGE_PUT, "vkey", "ns", "seq", KSLICE_LIT("s3"), 2},
	};
	CHECK_STATUS(storage_apply(s, seq, 3), K_OK);
	CHECK_STATUS(get_str(s, "vkey", "ns", "seq", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "s3");
	CHECK_EQ_INT(v, 3);
}

static void test_delete(struct storage *s)
{
	char doc[64];
	int64_t v = 0;
	CHECK_STATUS(put(s, "grant", "ns", "g", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "grant", "ns", "g", "{}", 1), K_OK);
	CHECK_STATUS(del(s, "grant", "ns", "g", 1), K_E_CONFLICT);
	CHECK_STATUS(del(s, "grant", "ns", "g", STORAGE_ABSENT), K_E_CONFLICT);
	CHECK_STATUS(del(s, "grant", "ns", "g", 2), K_OK);
	CHECK_STATUS(get_str(s, "grant", "ns", "g", doc, sizeof doc, &v), K_E_NOT_FOUND);
	CHECK_STATUS(del(s, "grant", "ns", "g", 2), K_E_NOT_FOUND);
	CHECK_STATUS(del(s, "grant", "ns", "g", STORAGE_ANY), K_OK);
	CHECK_STATUS(del(s, "grant", "ns", "g", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "grant", "ns", "g", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(get_str(s, "grant", "ns", "g", doc, sizeof doc, &v), K_OK);
	CHECK_EQ_INT(v, 1);
}

static void test_purge(struct storage *s)
{
	char out[256];
	CHECK_STATUS(put(s, "pur", "777:us-east-1", "a", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "pur2", "777:eu-west-1", "b", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "pur", "7777:us-east-1", "c", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "pur", "77%:us-east-1", "d", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(storage_purge(s, "777:"), K_OK);
	CHECK_STATUS(list_str(s, "pur", NULL, NULL, NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "77%:us-east-1/d,7777:us-east-1/c");
	CHECK_STATUS(list_str(s, "pur2", NULL, NULL, NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "");
	CHECK_STATUS(storage_purge(s, "nothing-here:"), K_OK);
}

/* ---- the change feed across two handles ---------------------------------- */

#define MAX_SEEN 64

struct heard {
	pthread_mutex_t mu;
	char ev[MAX_SEEN][160];
	size_t n;
};

static void on_change(void *arg, const struct storage_event *ev)
{
	struct heard *h = arg;
	pthread_mutex_lock(&h->mu);
	if (h->n < MAX_SEEN) {
		const char *what = ev->what == STORAGE_EV_PUT	 ? "PUT"
				   : ev->what == STORAGE_EV_DEL	 ? "DEL"
				   : ev->what == STORAGE_EV_MARK ? "MARK"
								 : "PURGE";
		snprintf(h->ev[h->n++], sizeof h->ev[0], "%s %s/%s/%s", what,
			 ev->kind ? ev->kind : "-", ev->ns, ev->id ? ev->id : "-");
	}
	pthread_mutex_unlock(&h->mu);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to ms for h to hold at least n events; returns how many it holds. */
static size_t wait_for(struct heard *h, size_t n, int ms)
{
	int64_t end = now_ms() + ms;
	for (;;) {
		pthread_mutex_lock(&h->mu);
		size_t have = h->n;
		pthread_mutex_unlock(&h->mu);
		if (have >= n || now_ms() >= end)
			return have;
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static void test_feed_across_nodes(struct storage *a)
{
	struct storage *b = open_store();
	if (b == NULL)
		return;
	struct heard ha = {.mu = PTHREAD_MUTEX_INITIALIZER}, hb = {.mu = PTHREAD_MUTEX_INITIALIZER};
	CHECK_STATUS(storage_subscribe(a, on_change, &ha), K_OK);
	CHECK_STATUS(storage_subscribe(b, on_change, &hb), K_OK);
	struct storage_op ops[2] = {
		{STORAGE_PUT, "key", "111:us-east-1", "fk", KSLICE_LIT("{}"), STORAGE_ANY},
		{STORAGE_DEL, "alias", "111:us-east-1", "alias/x", {NULL, 0}, STORAGE_ANY},
	};
	int64_t t0 = now_ms();
	CHECK_STATUS(storage_apply(a, ops, 2), K_OK);
	/* the writer's own events: at once, on its thread, and only once */
	CHECK_EQ_INT(ha.n, 2);
	CHECK_EQ_INT(wait_for(&hb, 2, 1000), 2);
	CHECK(now_ms() - t0 < 1000);
	CHECK_STR(hb.ev[0], "PUT key/111:us-east-1/fk");
	CHECK_STR(hb.ev[1], "DEL alias/111:us-east-1/alias/x");
	CHECK_STATUS(storage_purge(b, "111:"), K_OK);
	CHECK_EQ_INT(wait_for(&ha, 3, 1000), 3);
	CHECK_STR(ha.ev[2], "PURGE -/111:/-");
	/* a failed write announces nothing anywhere */
	CHECK_STATUS(put(a, "key", "111:us-east-1", "fk2", "{}", 5), K_E_CONFLICT);
	CHECK_EQ_INT(wait_for(&hb, 4, 300), 3);
	CHECK_EQ_INT(ha.n, 3);
	/* the writer never hears its own writes twice */
	CHECK_EQ_INT(wait_for(&ha, 4, 300), 3);
	/* two nodes creating one record: one wins, the other gets a conflict */
	k_status r1 = put(a, "key", "race", "r", "{}", STORAGE_ABSENT);
	k_status r2 = put(b, "key", "race", "r", "{}", STORAGE_ABSENT);
	CHECK_STATUS(r1, K_OK);
	CHECK_STATUS(r2, K_E_CONFLICT);
	storage_close(b);
}

/*
 * A mark sent by one handle after another's write reaches both handles
 * from their listeners, after that write's event; the sender's too.
 */
static void test_mark_across_nodes(struct storage *a)
{
	struct storage *b = open_store();
	if (b == NULL)
		return;
	struct heard ha = {.mu = PTHREAD_MUTEX_INITIALIZER}, hb = {.mu = PTHREAD_MUTEX_INITIALIZER};
	CHECK_STATUS(storage_subscribe(a, on_change, &ha), K_OK);
	CHECK_STATUS(storage_subscribe(b, on_change, &hb), K_OK);
	CHECK_STATUS(put(a, "key", "222:us-east-1", "mk", "{}", STORAGE_ANY), K_OK);
	CHECK_EQ_INT(ha.n, 1);
	CHECK_STATUS(storage_mark(b, "tok-1"), K_OK);
	CHECK_EQ_INT(wait_for(&hb, 2, 1000), 2);
	CHECK_STR(hb.ev[0], "PUT key/222:us-east-1/mk");
	CHECK_STR(hb.ev[1], "MARK " STORAGE_MARK_KIND "//tok-1");
	CHECK_EQ_INT(wait_for(&ha, 2, 1000), 2);
	CHECK_STR(ha.ev[1], "MARK " STORAGE_MARK_KIND "//tok-1");
	/* each hears it once */
	CHECK_EQ_INT(wait_for(&hb, 3, 300), 2);
	CHECK_EQ_INT(wait_for(&ha, 3, 300), 2);
	CHECK_STATUS(storage_mark(b, "not a token"), K_E_VALIDATION);
	storage_close(b);
}

struct kinds_seen {
	char out[512];
};

static K_MUST_CHECK k_status kinds_cb(void *arg, const char *kind)
{
	struct kinds_seen *k = arg;
	size_t n = strlen(k->out);
	snprintf(k->out + n, sizeof k->out - n, "%s%s", n ? "," : "", kind);
	return K_OK;
}

static void test_kinds(struct storage *s)
{
	struct kinds_seen k = {""};
	CHECK_STATUS(storage_kinds(s, kinds_cb, &k), K_OK);
	CHECK(strstr(k.out, "blob,grant,key,lalias,many,meta,ncopy,nkey,pkey,pur,vkey") != NULL);
	CHECK_STATUS(storage_scrub(s), K_OK);
}

/* Migrations are idempotent: a second handle on a migrated database opens. */
static void test_reopen(void)
{
	struct storage *s = open_store();
	storage_close(s);
	struct storage *bad = NULL;
	struct kbuf why;
	kbuf_init(&why, 512);
	CHECK_STATUS(
		storage_open("postgresql://kinko@127.0.0.1:1/none?connect_timeout=2", &bad, &why),
		K_E_STORE_UNAVAILABLE);
	CHECK(strstr(kbuf_cstr(&why), "cannot connect") != NULL);
	CHECK_STATUS(storage_open("postgresql://[::1", &bad, &why), K_E_VALIDATION);
	kbuf_release(&why);
}

int main(void)
{
	url = getenv("KINKO_TEST_PG_URL");
	if (url == NULL || url[0] == 0) {
		printf("pg_test: KINKO_TEST_PG_URL is not set; nothing checked "
		       "(tests/integration/test_pg_store.py runs this against a server)\n");
		return tl_summary();
	}
	struct storage *s = open_store();
	if (s == NULL)
		return tl_summary();
	tl_current = "put_get";
	test_put_get(s);
	tl_current = "limits";
	test_limits(s);
	tl_current = "list_paging";
	test_list_paging(s);
	tl_current = "list_all_namespaces";
	test_list_all_namespaces(s);
	tl_current = "nested_calls";
	test_nested_calls(s);
	tl_current = "versions";
	test_versions(s);
	tl_current = "delete";
	test_delete(s);
	tl_current = "purge";
	test_purge(s);
	tl_current = "kinds";
	test_kinds(s);
	tl_current = "feed_across_nodes";
	test_feed_across_nodes(s);
	storage_close(s);
	s = open_store();
	if (s == NULL)
		return tl_summary();
	tl_current = "mark_across_nodes";
	test_mark_across_nodes(s);
	storage_close(s);
	RUN(test_reopen);
	return tl_summary();
}
