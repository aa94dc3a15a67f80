/*
 * contract.c — the storage.h contract tests that every backend runs
 * (contract.h), and the helpers the backends' own tests share.
 */
#include "storage/contract.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testlib.h"
#include "core/banned.h"

/* A document buffer with room for "x=" and a short document, not for a large one. */
#define SMALL_DOC_MAX 64u
/* Smaller than any document put_get reads back: a get into it must fail. */
#define TOO_SMALL_MAX 4u
/* Rows in a listing larger than one page a backend fetches at a time. */
#define MANY_ROWS 600

k_status put(struct storage *s, const char *kind, const char *ns, const char *id, const char *doc,
	     int64_t expect)
{
	struct storage_op op = {STORAGE_PUT, kind, ns, id, kslice_cstr(doc), expect};
	return storage_apply(s, &op, 1);
}

k_status del(struct storage *s, const char *kind, const char *ns, const char *id, int64_t expect)
{
	struct storage_op op = {STORAGE_DEL, kind, ns, id, {NULL, 0}, expect};
	return storage_apply(s, &op, 1);
}

k_status get_str(struct storage *s, const char *kind, const char *ns, const char *id, char *out,
		 size_t n, int64_t *version)
{
	struct kbuf b;
	kbuf_init(&b, STORAGE_MAX_DOC);
	*version = 0;
	k_status rc = storage_get(s, kind, ns, id, &b, version);
	snprintf(out, n, "%s", kbuf_cstr(&b));
	kbuf_release(&b);
	return rc;
}

k_status collect_cb(void *arg, const char *ns, const char *id, struct kslice doc, int64_t version)
{
	struct collect *c = arg;
	c->calls++;
	if (c->out.len > 0)
		GUARD(kbuf_append_byte(&c->out, ','));
	if (c->with_ns) {
		GUARD(kbuf_append_str(&c->out, ns != NULL ? ns : "(null)"));
		GUARD(kbuf_append_byte(&c->out, '/'));
	}
	GUARD(kbuf_append_str(&c->out, id));
	if (c->stop_after != 0 && c->calls >= c->stop_after)
		return K_E_LIMIT_EXCEEDED;
	return K_OK;
}

k_status list_str(struct storage *s, const char *kind, const char *ns, const char *prefix,
		  const char *after, size_t limit, char *out, size_t n)
{
	struct collect c = {.with_ns = ns == NULL};
	kbuf_init(&c.out, CONTRACT_LIST_MAX);
	k_status rc = storage_list(s, kind, ns, prefix, after, limit, collect_cb, &c);
	snprintf(out, n, "%s", kbuf_cstr(&c.out));
	kbuf_release(&c.out);
	return rc;
}

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Kinds: key, meta, blob. */
static void contract_put_get(struct storage *s)
{
	char doc[64];
	int64_t v = -5;
	CHECK_STATUS(get_str(s, "key", "111:us-east-1", "k1", doc, sizeof doc, &v), K_E_NOT_FOUND);
	CHECK_STATUS(put(s, "key", "111:us-east-1", "k1", "{\"a\":1}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(get_str(s, "key", "111:us-east-1", "k1", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "{\"a\":1}");
	CHECK_EQ_INT(v, 1);
	CHECK_STATUS(put(s, "key", "111:us-east-1", "k1", "{\"a\":2}", 1), K_OK);
	CHECK_STATUS(get_str(s, "key", "111:us-east-1", "k1", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "{\"a\":2}");
	CHECK_EQ_INT(v, 2);

	/* version and doc are optional; doc is appended to what is there */
	CHECK_STATUS(storage_get(s, "key", "111:us-east-1", "k1", NULL, NULL), K_OK);
	struct kbuf b;
	kbuf_init(&b, SMALL_DOC_MAX);
	CHECK(k_ok(kbuf_append_str(&b, "x=")));
	CHECK_STATUS(storage_get(s, "key", "111:us-east-1", "k1", &b, NULL), K_OK);
	CHECK_STR(kbuf_cstr(&b), "x={\"a\":2}");
	kbuf_release(&b);

	/* a buffer too small is a validation error and stays unchanged */
	kbuf_init(&b, TOO_SMALL_MAX);
	CHECK_STATUS(storage_get(s, "key", "111:us-east-1", "k1", &b, &v), K_E_VALIDATION);
	CHECK_EQ_INT(b.len, 0);
	kbuf_release(&b);

	/* an empty document and an empty ns are allowed */
	CHECK_STATUS(put(s, "meta", "", "empty", "", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(get_str(s, "meta", "", "empty", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "");
	CHECK_EQ_INT(v, 1);

	/* binary documents round-trip byte for byte */
	const uint8_t bin[5] = {0, 0xff, '\'', '\\', 0};
	struct storage_op op = {STORAGE_PUT, "blob", "ns", "bin", kslice_make(bin, sizeof bin),
				STORAGE_ANY};
	CHECK_STATUS(storage_apply(s, &op, 1), K_OK);
	kbuf_init(&b, SMALL_DOC_MAX);
	CHECK_STATUS(storage_get(s, "blob", "ns", "bin", &b, NULL), K_OK);
	CHECK(b.len == sizeof bin && memcmp(b.ptr, bin, sizeof bin) == 0);
	kbuf_release(&b);

	/* kinds are separate too */
	CHECK_STATUS(get_str(s, "alias", "111:us-east-1", "k1", doc, sizeof doc, &v),
		     K_E_NOT_FOUND);
	CHECK_STATUS(storage_check(s), K_OK);
}

/* The largest document is taken and read back whole; one byte more is refused. Kind: blob. */
static void check_doc_limit(struct storage *s)
{
	uint8_t *big = malloc(STORAGE_MAX_DOC + 1);
	CHECK(big != NULL);
	if (big == NULL)
		return;
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
	CHECK_EQ_INT(b.len, STORAGE_MAX_DOC);
	CHECK(b.len == STORAGE_MAX_DOC && memcmp(b.ptr, big, STORAGE_MAX_DOC) == 0);
	kbuf_release(&b);
	free(big);
}

/* Kinds: key (in ns "lim"), blob. */
static void contract_limits(struct storage *s)
{
	char name[STORAGE_MAX_NAME + 2];
	memset(name, 'n', sizeof name - 1);
	name[sizeof name - 1] = '\0'; /* 513 bytes */
	CHECK_STATUS(put(s, "key", "lim", name, "{}", STORAGE_ANY), K_E_VALIDATION);
	CHECK_STATUS(put(s, name, "lim", "id", "{}", STORAGE_ANY), K_E_VALIDATION);
	CHECK_STATUS(put(s, "key", name, "id", "{}", STORAGE_ANY), K_E_VALIDATION);
	CHECK_STATUS(storage_get(s, "key", "lim", name, NULL, NULL), K_E_VALIDATION);
	name[STORAGE_MAX_NAME] = '\0'; /* 512 bytes: the largest allowed */
	CHECK_STATUS(put(s, "key", "lim", name, "{}", STORAGE_ANY), K_OK);
	CHECK_STATUS(storage_get(s, "key", "lim", name, NULL, NULL), K_OK);

	CHECK_STATUS(put(s, "key", "lim", "", "{}", STORAGE_ANY), K_E_VALIDATION);
	CHECK_STATUS(put(s, "", "lim", "id", "{}", STORAGE_ANY), K_E_VALIDATION);
	CHECK_STATUS(put(s, NULL, "lim", "id", "{}", STORAGE_ANY), K_E_VALIDATION);
	CHECK_STATUS(put(s, "key", NULL, "id", "{}", STORAGE_ANY), K_E_VALIDATION);
	CHECK_STATUS(put(s, "key", "lim", NULL, "{}", STORAGE_ANY), K_E_VALIDATION);
	CHECK_STATUS(put(s, "key", "lim", "id", "{}", -2), K_E_VALIDATION);
	struct storage_op bad = {
		(enum storage_op_kind)7, "key", "lim", "id", {NULL, 0}, STORAGE_ANY};
	CHECK_STATUS(storage_apply(s, &bad, 1), K_E_VALIDATION);
	CHECK_STATUS(storage_apply(s, NULL, 1), K_E_VALIDATION);
	CHECK_STATUS(storage_apply(s, NULL, 0), K_OK);

	check_doc_limit(s);

	struct collect c = {0};
	kbuf_init(&c.out, SMALL_DOC_MAX);
	CHECK_STATUS(storage_list(s, "key", "lim", NULL, NULL, 0, NULL, NULL), K_E_VALIDATION);
	CHECK_STATUS(storage_list(s, NULL, "lim", NULL, NULL, 0, collect_cb, &c), K_E_VALIDATION);
	CHECK_STATUS(storage_list(s, "key", "lim", NULL, name, 0, collect_cb, &c), K_OK);
	kbuf_release(&c.out);
	/* the empty prefix would purge everything: purge refuses it */
	CHECK_STATUS(storage_purge(s, ""), K_E_VALIDATION);
}

#define PAGING_ALL                                                                                 \
	"Z,_,a01,a02,a03,a04,a05,a06,a07,a08,a09,a10,a11,a12,a13,a14,a15,a16,a17,a18,a19,a20,"     \
	"b01,b02,b03,b04,b05"

/* Paging with "after" = the last id seen walks everything once. */
static void check_paging_walk(struct storage *s)
{
	char out[2048];
	char after[sizeof out] = "";
	int pages = 0;
	struct kbuf all;
	kbuf_init(&all, sizeof out);
	while (pages <= 10) {
		CHECK_STATUS(list_str(s, "pkey", "ns", NULL, after, 7, out, sizeof out), K_OK);
		if (out[0] == '\0')
			break;
		pages++;
		CHECK(all.len == 0 || k_ok(kbuf_append_byte(&all, ',')));
		CHECK(k_ok(kbuf_append_str(&all, out)));
		const char *last = strrchr(out, ',');
		snprintf(after, sizeof after, "%s", last != NULL ? last + 1 : out);
	}
	CHECK_EQ_INT(pages, 4);
	CHECK_STR(kbuf_cstr(&all), PAGING_ALL);
	kbuf_release(&all);
}

/* Kinds: pkey (and alias, never written). */
static void contract_list_paging(struct storage *s)
{
	char out[2048], id[16];
	/* inserted out of order: listing must sort */
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
	CHECK_STR(out, PAGING_ALL);
	CHECK_STATUS(list_str(s, "pkey", "ns", NULL, NULL, 3, out, sizeof out), K_OK);
	CHECK_STR(out, "Z,_,a01");
	CHECK_STATUS(list_str(s, "pkey", "ns", NULL, "", 3, out, sizeof out), K_OK);
	CHECK_STR(out, "Z,_,a01");
	CHECK_STATUS(list_str(s, "pkey", "ns", NULL, "a03", 3, out, sizeof out), K_OK);
	CHECK_STR(out, "a04,a05,a06");
	CHECK_STATUS(list_str(s, "pkey", "ns", NULL, "a035", 2, out, sizeof out), K_OK);
	CHECK_STR(out, "a04,a05");
	CHECK_STATUS(list_str(s, "pkey", "ns", NULL, "b05", 0, out, sizeof out), K_OK);
	CHECK_STR(out, "");

	check_paging_walk(s);

	/* the callback stops the listing with its own code */
	struct collect c = {.stop_after = 2};
	kbuf_init(&c.out, sizeof out);
	CHECK_STATUS(storage_list(s, "pkey", "ns", NULL, NULL, 0, collect_cb, &c),
		     K_E_LIMIT_EXCEEDED);
	CHECK_EQ_INT(c.calls, 2);
	CHECK_STR(kbuf_cstr(&c.out), "Z,_");
	kbuf_release(&c.out);

	/* an empty kind lists nothing */
	CHECK_STATUS(list_str(s, "alias", "ns", NULL, NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "");
}

/* The records of contract_list_paging, listed by prefix. */
static void contract_list_prefix(struct storage *s)
{
	char out[2048];
	/* prefix, alone and with after and limit */
	CHECK_STATUS(list_str(s, "pkey", "ns", "b", NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "b01,b02,b03,b04,b05");
	CHECK_STATUS(list_str(s, "pkey", "ns", "a1", NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "a10,a11,a12,a13,a14,a15,a16,a17,a18,a19");
	CHECK_STATUS(list_str(s, "pkey", "ns", "a1", "a12", 3, out, sizeof out), K_OK);
	CHECK_STR(out, "a13,a14,a15");
	CHECK_STATUS(list_str(s, "pkey", "ns", "a1", "a05", 2, out, sizeof out), K_OK);
	CHECK_STR(out, "a10,a11");
	CHECK_STATUS(list_str(s, "pkey", "ns", "a1", "a19", 0, out, sizeof out), K_OK);
	CHECK_STR(out, "");
	CHECK_STATUS(list_str(s, "pkey", "ns", "a20", NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "a20");
	CHECK_STATUS(list_str(s, "pkey", "ns", "c", NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "");
	CHECK_STATUS(list_str(s, "pkey", "ns", "", NULL, 2, out, sizeof out), K_OK);
	CHECK_STR(out, "Z,_");
	/* % and _ in a prefix mean themselves */
	CHECK_STATUS(list_str(s, "pkey", "ns", "_", NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "_");
}

/* More rows than one page of the backend, in one namespace and in all. Kind: many. */
static void contract_list_many(struct storage *s)
{
	char id[16];
	for (int i = 0; i < MANY_ROWS; i++) {
		snprintf(id, sizeof id, "m%04d", i);
		CHECK_STATUS(put(s, "many", "ns", id, "{}", STORAGE_ABSENT), K_OK);
	}
	struct collect m = {0};
	kbuf_init(&m.out, CONTRACT_LIST_MAX);
	CHECK_STATUS(storage_list(s, "many", "ns", NULL, NULL, 0, collect_cb, &m), K_OK);
	CHECK_EQ_INT(m.calls, MANY_ROWS);
	kbuf_release(&m.out);
	m = (struct collect){.with_ns = true};
	kbuf_init(&m.out, CONTRACT_LIST_MAX);
	CHECK_STATUS(storage_list(s, "many", NULL, NULL, NULL, 0, collect_cb, &m), K_OK);
	CHECK_EQ_INT(m.calls, MANY_ROWS);
	kbuf_release(&m.out);
}

/* Kind: ikey. */
static void contract_ns_isolation(struct storage *s)
{
	char out[256], doc[64];
	int64_t v = 0;
	CHECK_STATUS(put(s, "ikey", "111:us-east-1", "k", "one", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "ikey", "222:us-east-1", "k", "two", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "ikey", "111:eu-west-1", "k", "three", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "ikey", "111:us-east-1", "m", "four", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(get_str(s, "ikey", "111:us-east-1", "k", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "one");
	CHECK_STATUS(get_str(s, "ikey", "222:us-east-1", "k", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "two");
	CHECK_STATUS(list_str(s, "ikey", "111:us-east-1", NULL, NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "k,m");
	CHECK_STATUS(list_str(s, "ikey", "222:us-east-1", NULL, NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "k");
	CHECK_STATUS(list_str(s, "ikey", "333:us-east-1", NULL, NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "");
	CHECK_STATUS(del(s, "ikey", "111:us-east-1", "k", 1), K_OK);
	CHECK_STATUS(get_str(s, "ikey", "222:us-east-1", "k", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "two");
	CHECK_STATUS(get_str(s, "ikey", "111:eu-west-1", "k", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "three");
}

/* Kinds: lalias, lkey. */
static void contract_list_all_namespaces(struct storage *s)
{
	char out[512];
	CHECK_STATUS(put(s, "lalias", "222:us-east-1", "alias/b", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "lalias", "111:us-east-1", "alias/z", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "lalias", "111:eu-west-1", "alias/a", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "lalias", "111:us-east-1", "alias/a", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "lalias", "111:us-east-1", "other", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "lkey", "111:us-east-1", "k", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(list_str(s, "lalias", NULL, NULL, NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "111:eu-west-1/alias/a,111:us-east-1/alias/a,111:us-east-1/alias/z,"
		       "111:us-east-1/other,222:us-east-1/alias/b");
	/* the prefix applies in every namespace */
	CHECK_STATUS(list_str(s, "lalias", NULL, "alias/", NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "111:eu-west-1/alias/a,111:us-east-1/alias/a,111:us-east-1/alias/z,"
		       "222:us-east-1/alias/b");
	CHECK_STATUS(list_str(s, "lalias", NULL, NULL, NULL, 2, out, sizeof out), K_OK);
	CHECK_STR(out, "111:eu-west-1/alias/a,111:us-east-1/alias/a");
}

/* A list callback that reads and writes the same store while the listing runs. */
struct nested {
	struct storage *s;
	size_t seen;
	k_status err;
};

static K_MUST_CHECK k_status nested_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				       int64_t version)
{
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

/* Kinds: nkey, ncopy. */
static void contract_nested_calls(struct storage *s)
{
	char out[256];
	CHECK_STATUS(put(s, "nkey", "ns", "a", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "nkey", "ns", "b", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "nkey", "other", "x", "{}", STORAGE_ABSENT), K_OK);
	struct nested n = {s, 0, K_OK};
	CHECK_STATUS(storage_list(s, "nkey", "ns", NULL, NULL, 0, nested_cb, &n), K_OK);
	CHECK_STATUS(n.err, K_OK);
	CHECK_EQ_INT(n.seen, 2);
	CHECK_STATUS(list_str(s, "ncopy", "ns", NULL, NULL, 0, out, sizeof out), K_OK);
	CHECK_STR(out, "a,b");
}

/* Single puts against each kind of version precondition. Kind: vkey. */
static void contract_versions(struct storage *s)
{
	char doc[64];
	int64_t v = 0;
	CHECK_STATUS(put(s, "vkey", "ns", "k", "v1", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "vkey", "ns", "k", "again", STORAGE_ABSENT), K_E_CONFLICT);
	CHECK_STATUS(put(s, "vkey", "ns", "k", "v2", 1), K_OK);
	CHECK_STATUS(put(s, "vkey", "ns", "k", "stale", 1), K_E_CONFLICT);
	CHECK_STATUS(put(s, "vkey", "ns", "k", "future", 9), K_E_CONFLICT);
	CHECK_STATUS(put(s, "vkey", "ns", "k", "v3", STORAGE_ANY), K_OK);
	CHECK_STATUS(put(s, "vkey", "ns", "missing", "x", 1), K_E_CONFLICT);
	CHECK_STATUS(put(s, "vkey", "ns", "fresh", "x", STORAGE_ANY), K_OK);
	CHECK_STATUS(get_str(s, "vkey", "ns", "k", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "v3");
	CHECK_EQ_INT(v, 3);
	CHECK_STATUS(get_str(s, "vkey", "ns", "fresh", doc, sizeof doc, &v), K_OK);
	CHECK_EQ_INT(v, 1);
	CHECK_STATUS(get_str(s, "vkey", "ns", "missing", doc, sizeof doc, &v), K_E_NOT_FOUND);
}

/* Batches of ops: all or nothing, in order. Runs after contract_versions, on its records. */
static void contract_batches(struct storage *s)
{
	char doc[64];
	int64_t v = 0;
	/* a batch whose third op fails applies none of them */
	struct storage_op batch[3] = {
		{STORAGE_PUT, "vkey", "ns", "new1", KSLICE_LIT("n1"), STORAGE_ABSENT},
		{STORAGE_PUT, "vkey", "ns", "k", KSLICE_LIT("v4"), 3},
		{STORAGE_PUT, "vkey", "ns", "fresh", KSLICE_LIT("x2"), 7},
	};
	CHECK_STATUS(storage_apply(s, batch, 3), K_E_CONFLICT);
	CHECK_STATUS(get_str(s, "vkey", "ns", "new1", doc, sizeof doc, &v), K_E_NOT_FOUND);
	CHECK_STATUS(get_str(s, "vkey", "ns", "k", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "v3");
	CHECK_EQ_INT(v, 3);

	/* the same with a delete of a missing record as the third op */
	batch[2] = (struct storage_op){STORAGE_DEL, "vkey", "ns", "nothere", {NULL, 0}, 1};
	CHECK_STATUS(storage_apply(s, batch, 3), K_E_NOT_FOUND);
	CHECK_STATUS(get_str(s, "vkey", "ns", "new1", doc, sizeof doc, &v), K_E_NOT_FOUND);
	CHECK_STATUS(get_str(s, "vkey", "ns", "k", doc, sizeof doc, &v), K_OK);
	CHECK_EQ_INT(v, 3);

	/* ... and with an invalid third op, refused before anything runs */
	batch[2] = (struct storage_op){STORAGE_PUT, "vkey", "ns", "", KSLICE_LIT("x"), STORAGE_ANY};
	CHECK_STATUS(storage_apply(s, batch, 3), K_E_VALIDATION);
	CHECK_STATUS(get_str(s, "vkey", "ns", "new1", doc, sizeof doc, &v), K_E_NOT_FOUND);

	/* fixed, the batch applies as a whole */
	batch[2] = (struct storage_op){STORAGE_PUT, "vkey", "ns", "fresh", KSLICE_LIT("x2"), 1};
	CHECK_STATUS(storage_apply(s, batch, 3), K_OK);
	CHECK_STATUS(get_str(s, "vkey", "ns", "new1", doc, sizeof doc, &v), K_OK);
	CHECK_EQ_INT(v, 1);
	CHECK_STATUS(get_str(s, "vkey", "ns", "k", doc, sizeof doc, &v), K_OK);
	CHECK_STR(doc, "v4");
	CHECK_EQ_INT(v, 4);
	CHECK_STATUS(get_str(s, "vkey", "ns", "fresh", doc, sizeof doc, &v), K_OK);
	CHECK_EQ_INT(v, 2);

	/* ops run in order: a later op sees the version an earlier one left */
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

/* Kind: grant. */
static void contract_delete(struct storage *s)
{
	char doc[64];
	int64_t v = 0;
	CHECK_STATUS(put(s, "grant", "ns", "g", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "grant", "ns", "g", "{}", 1), K_OK);
	CHECK_STATUS(del(s, "grant", "ns", "g", 1), K_E_CONFLICT);
	CHECK_STATUS(del(s, "grant", "ns", "g", STORAGE_ABSENT), K_E_CONFLICT);
	CHECK_STATUS(get_str(s, "grant", "ns", "g", doc, sizeof doc, &v), K_OK);
	CHECK_STATUS(del(s, "grant", "ns", "g", 2), K_OK);
	CHECK_STATUS(get_str(s, "grant", "ns", "g", doc, sizeof doc, &v), K_E_NOT_FOUND);
	CHECK_STATUS(del(s, "grant", "ns", "g", 2), K_E_NOT_FOUND);
	CHECK_STATUS(del(s, "grant", "ns", "g", STORAGE_ANY), K_OK);
	CHECK_STATUS(del(s, "grant", "ns", "g", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "grant", "ns", "h", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(del(s, "grant", "ns", "h", STORAGE_ANY), K_OK);
	CHECK_STATUS(get_str(s, "grant", "ns", "h", doc, sizeof doc, &v), K_E_NOT_FOUND);
	/* a re-created record starts again at version 1 */
	CHECK_STATUS(put(s, "grant", "ns", "g", "{}", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(get_str(s, "grant", "ns", "g", doc, sizeof doc, &v), K_OK);
	CHECK_EQ_INT(v, 1);
	/* what was deleted can be scrubbed from the store's files */
	CHECK_STATUS(storage_scrub(s), K_OK);
}

/* A purge takes every kind under the ns prefix, matched byte for byte. Kinds: pur, pur2. */
static void contract_purge(struct storage *s)
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

/*
 * Runs last: every kind the tests above left a record of, once each, in
 * byte order; pur2, whose one record was purged, is gone.
 */
static void contract_kinds(struct storage *s)
{
	struct kinds_seen k = {""};
	CHECK_STATUS(storage_kinds(s, kinds_cb, &k), K_OK);
	CHECK_STR(k.out, "blob,grant,ikey,key,lalias,lkey,many,meta,ncopy,nkey,pkey,pur,vkey");
}

void contract_run(struct storage *s)
{
	static const struct {
		const char *name;
		void (*fn)(struct storage *s);
	} tests[] = {
		{"contract_put_get", contract_put_get},
		{"contract_limits", contract_limits},
		{"contract_list_paging", contract_list_paging},
		{"contract_list_prefix", contract_list_prefix},
		{"contract_list_many", contract_list_many},
		{"contract_ns_isolation", contract_ns_isolation},
		{"contract_list_all_namespaces", contract_list_all_namespaces},
		{"contract_nested_calls", contract_nested_calls},
		{"contract_versions", contract_versions},
		{"contract_batches", contract_batches},
		{"contract_delete", contract_delete},
		{"contract_purge", contract_purge},
		{"contract_kinds", contract_kinds},
	};
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		tl_current = tests[i].name;
		tests[i].fn(s);
	}
}
