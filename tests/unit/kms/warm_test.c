/*
 * warm_test.c — loading the key cache at start (kms/key_warm.h): every key
 * of every namespace is loaded in batches, keys already cached are skipped,
 * the pass stops at its bound, and a key written between the generations
 * and the install is refused rather than cached stale.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "kms/key_cache.h"
#include "kms/key_warm.h"
#include "kms/kms.h"
#include "storage/storage.h"
#include "testlib.h"
#include "core/banned.h"

static char tmp_root[] = "/tmp/kinko-warm-test-XXXXXX";
static struct storage *st;

#define NS1 "111122223333:us-east-1"
#define NS2 "111122223333:eu-west-1"
/* More than two batches in the first namespace. */
#define N1 600
#define N2 3

static void key_id(unsigned i, char out[37])
{
	snprintf(out, 37, "%08x-0000-4000-8000-%012x", i, i);
}

/* A key document without material (none is needed to cache a snapshot). */
static K_MUST_CHECK k_status put_key(const char *ns, const char *id, const char *state,
				     int64_t expect)
{
	char doc[512];
	snprintf(doc, sizeof doc,
		 "{\"KeyId\":\"%s\",\"Arn\":\"arn:aws:kms:%s:111122223333:key/%s\","
		 "\"KeyState\":\"%s\",\"KeySpec\":\"SYMMETRIC_DEFAULT\",\"KeyUsage\":\"ENCRYPT_"
		 "DECRYPT\"}",
		 id, strchr(ns, ':') + 1, id, state);
	struct storage_op op = {STORAGE_PUT, "key", ns, id, kslice_cstr(doc), expect};
	return storage_apply(st, &op, 1);
}

static bool cached(const char *ns, unsigned i)
{
	char id[37];
	key_id(i, id);
	struct kms_key *k = NULL;
	bool in = kms_key_cached(ns, id, &k);
	kms_key_unref(k);
	return in;
}

static void test_loads_every_key_and_skips_loaded_ones(void)
{
	char id[37];
	key_id(7, id);
	struct kms_key *k = NULL;
	CHECK_STATUS(kms_key_get(NS1, id, &k), K_OK); /* a request came first */
	CHECK_EQ_INT(kms_cache_size(), 1);
	struct kms_warm_options o = {.max_keys = 1000, .rate = 0};
	struct kms_warm_stats s;
	CHECK_STATUS(kms_warm_run(&o, &s), K_OK);
	CHECK_EQ_INT(s.listed, N1 + N2);
	CHECK_EQ_INT(s.loaded, N1 + N2 - 1);
	CHECK_EQ_INT(s.skipped, 1);
	CHECK_EQ_INT(s.refused, 0);
	CHECK_EQ_INT(s.failed, 0);
	CHECK(s.done);
	CHECK_EQ_INT(kms_cache_size(), N1 + N2);
	CHECK(cached(NS1, 0) && cached(NS1, N1 - 1) && cached(NS2, N1) && cached(NS2, N1 + N2 - 1));
	/* The request's snapshot stayed: the pass did not replace it. */
	struct kms_key *again = NULL;
	CHECK(kms_key_cached(NS1, id, &again));
	CHECK(again == k);
	kms_key_unref(again);
	kms_key_unref(k);
	/* A second pass finds everything cached. */
	CHECK_STATUS(kms_warm_run(&o, &s), K_OK);
	CHECK_EQ_INT(s.skipped, N1 + N2);
	CHECK_EQ_INT(s.loaded, 0);
}

static void test_stops_at_the_bound(void)
{
	kms_cache_clear();
	CHECK_EQ_INT(kms_cache_size(), 0);
	/* Store order: NS2 ("...:eu-west-1") before NS1 ("...:us-east-1"). */
	struct kms_warm_options o = {.max_keys = 300, .rate = 0};
	struct kms_warm_stats s;
	CHECK_STATUS(kms_warm_run(&o, &s), K_OK);
	CHECK_EQ_INT(s.listed, 300);
	CHECK_EQ_INT(s.loaded, 300);
	CHECK_EQ_INT(kms_cache_size(), 300);
	CHECK(cached(NS2, N1) && cached(NS1, 0) && cached(NS1, 300 - N2 - 1));
	CHECK(!cached(NS1, 300 - N2));
	/* Nothing at all with a bound of 0. */
	kms_cache_clear();
	o.max_keys = 0;
	CHECK_STATUS(kms_warm_run(&o, &s), K_OK);
	CHECK_EQ_INT(s.listed, 0);
	CHECK_EQ_INT(kms_cache_size(), 0);
}

/* A bounded rate paces the pass: 603 keys at 2,000 a second take 0.3 s or more. */
static void test_rate_paces_the_pass(void)
{
	kms_cache_clear();
	struct kms_warm_options o = {.max_keys = 1000, .rate = 2000};
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	struct kms_warm_stats s;
	CHECK_STATUS(kms_warm_run(&o, &s), K_OK);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	CHECK(secs >= 0.25);
	CHECK_EQ_INT(s.loaded, N1 + N2);
}

/* A write between the generations and the install: refused, and the next use reads it. */
static void test_a_key_changed_meanwhile_is_refused(void)
{
	kms_cache_clear();
	char id[37];
	key_id(1, id);
	uint64_t gens[KMS_CACHE_SHARDS];
	kms_cache_gens(gens);
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	int64_t version = 0;
	CHECK_STATUS(storage_get(st, "key", NS1, id, &doc, &version), K_OK);
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	kbuf_release(&doc);
	CHECK(j != NULL);
	/* Another node disables the key after the batch was read. */
	CHECK_STATUS(put_key(NS1, id, "Disabled", version), K_OK);
	struct kms_key *stale = NULL;
	CHECK_STATUS(kms_key_from_doc(NS1, j, version, &stale), K_OK);
	json_decref(j);
	CHECK(stale != NULL && !kms_cache_install(stale, gens));
	CHECK(!cached(NS1, 1));
	struct kms_key *k = NULL;
	CHECK_STATUS(kms_key_get(NS1, id, &k), K_OK);
	if (k != NULL)
		CHECK_EQ_INT(k->state, KS_DISABLED);
	kms_key_unref(k);
	/* With fresh generations the same install is taken. */
	kms_cache_clear();
	kms_cache_gens(gens);
	CHECK_STATUS(kms_key_get(NS1, id, &k), K_OK);
	kms_cache_forget(NS1, id);
	CHECK(!kms_cache_install(k, gens)); /* the forget bumped the shard */
}

int main(void)
{
	if (mkdtemp(tmp_root) == NULL)
		return 1;
	if (k_failed(storage_sqlite_open(tmp_root, &st)) || k_failed(kms_init(st)))
		return 1;
	char id[37];
	for (unsigned i = 0; i < N1; i++) {
		key_id(i, id);
		if (k_failed(put_key(NS1, id, "Enabled", STORAGE_ABSENT)))
			return 1;
	}
	for (unsigned i = N1; i < N1 + N2; i++) {
		key_id(i, id);
		if (k_failed(put_key(NS2, id, "Enabled", STORAGE_ABSENT)))
			return 1;
	}
	RUN(test_loads_every_key_and_skips_loaded_ones);
	RUN(test_stops_at_the_bound);
	RUN(test_rate_paces_the_pass);
	RUN(test_a_key_changed_meanwhile_is_refused);
	kms_shutdown();
	storage_close(st);
	tl_remove_tree(tmp_root);
	return tl_summary();
}
