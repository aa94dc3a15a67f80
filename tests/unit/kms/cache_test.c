/*
 * cache_test.c — the key and alias caches follow the store's change feed:
 * a write made behind the cache (straight to the store, as another node
 * would) is seen on the next lookup, and a write through the KMS path
 * refreshes the cache without a read.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kms/kms.h"
#include "storage/storage.h"
#include "testlib.h"
#include "core/banned.h"

static char tmp_root[] = "/tmp/kinko-cache-test-XXXXXX";
static struct storage *st;

#define NS "111122223333:us-east-1"
#define KEY1 "0b5e2c5e-8d4c-4f0e-9d7a-1a2b3c4d5e6f"
#define KEY2 "7c1d4a9e-2f3b-4c5d-8e9f-0a1b2c3d4e5f"

/* A key document without material (none is needed to cache a snapshot). */
static K_MUST_CHECK k_status put_key(const char *id, const char *state, int64_t expect)
{
	char doc[512];
	snprintf(doc, sizeof doc,
		 "{\"KeyId\":\"%s\",\"Arn\":\"arn:aws:kms:us-east-1:111122223333:key/%s\","
		 "\"KeyState\":\"%s\",\"KeySpec\":\"SYMMETRIC_DEFAULT\",\"KeyUsage\":\"ENCRYPT_"
		 "DECRYPT\"}",
		 id, id, state);
	struct storage_op op = {STORAGE_PUT, "key", NS, id, kslice_cstr(doc), expect};
	return storage_apply(st, &op, 1);
}

static K_MUST_CHECK k_status put_alias(const char *name, const char *target)
{
	char doc[256];
	snprintf(doc, sizeof doc, "{\"AliasName\":\"%s\",\"TargetKeyId\":\"%s\"}", name, target);
	struct storage_op op = {STORAGE_PUT, "alias", NS, name, kslice_cstr(doc), STORAGE_ANY};
	return storage_apply(st, &op, 1);
}

static K_MUST_CHECK k_status del(const char *kind, const char *id)
{
	struct storage_op op = {STORAGE_DEL, kind, NS, id, {NULL, 0}, STORAGE_ANY};
	return storage_apply(st, &op, 1);
}

static void test_key_changed_behind_the_cache(void)
{
	struct kms_key *a = NULL, *b = NULL;
	CHECK_STATUS(put_key(KEY1, "Enabled", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(kms_key_get(NS, KEY1, &a), K_OK);
	if (a == NULL)
		return;
	CHECK_EQ_INT(a->state, KS_ENABLED);
	/* Cached: the same snapshot again. */
	CHECK_STATUS(kms_key_get(NS, KEY1, &b), K_OK);
	CHECK(a == b);
	kms_key_unref(b);
	/* Another writer disables it through the store alone. */
	CHECK_STATUS(put_key(KEY1, "Disabled", 1), K_OK);
	CHECK_STATUS(kms_key_get(NS, KEY1, &b), K_OK);
	if (b != NULL) {
		CHECK(b != a);
		CHECK_EQ_INT(b->state, KS_DISABLED);
		CHECK_EQ_INT(b->version, 2);
		kms_key_unref(b);
	}
	/* The holder of the old snapshot finishes with it undisturbed. */
	CHECK_EQ_INT(a->state, KS_ENABLED);
	kms_key_unref(a);
	/* And deletes it. */
	CHECK_STATUS(del("key", KEY1), K_OK);
	b = NULL;
	CHECK_STATUS(kms_key_get(NS, KEY1, &b), K_E_NOT_FOUND);
	CHECK(b == NULL);
}

static void test_local_write_refreshes(void)
{
	struct kms_key *k = NULL, *nk = NULL, *again = NULL;
	CHECK_STATUS(put_key(KEY2, "Enabled", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(kms_key_get(NS, KEY2, &k), K_OK);
	if (k == NULL)
		return;
	json_t *doc = json_deep_copy(k->doc);
	json_object_set_new(doc, "KeyState", json_string("Disabled"));
	CHECK_STATUS(kms_key_update(k, doc, NULL, &nk), K_OK);
	CHECK_STATUS(kms_key_get(NS, KEY2, &again), K_OK);
	/* The snapshot the write made is the cached one: no read after the write. */
	CHECK(nk != NULL && again == nk);
	if (again != NULL)
		CHECK_EQ_INT(again->state, KS_DISABLED);
	kms_key_unref(again);
	kms_key_unref(nk);
	kms_key_unref(k);
}

static void test_alias_changed_behind_the_cache(void)
{
	char target[37] = "";
	CHECK_STATUS(put_alias("alias/app", KEY1), K_OK);
	CHECK_STATUS(kms_alias_lookup(NS, "alias/app", target), K_OK);
	CHECK_STR(target, KEY1);
	CHECK_STATUS(put_alias("alias/app", KEY2), K_OK);
	CHECK_STATUS(kms_alias_lookup(NS, "alias/app", target), K_OK);
	CHECK_STR(target, KEY2);
	CHECK_STATUS(del("alias", "alias/app"), K_OK);
	CHECK_STATUS(kms_alias_lookup(NS, "alias/app", target), K_E_NOT_FOUND);
}

static void test_purge_empties_the_account(void)
{
	struct kms_key *k = NULL;
	char target[37];
	CHECK_STATUS(put_key(KEY1, "Enabled", STORAGE_ANY), K_OK);
	CHECK_STATUS(put_alias("alias/kept", KEY1), K_OK);
	CHECK_STATUS(kms_key_get(NS, KEY1, &k), K_OK);
	kms_key_unref(k);
	CHECK_STATUS(kms_alias_lookup(NS, "alias/kept", target), K_OK);
	CHECK_STATUS(storage_purge(st, "111122223333:"), K_OK);
	k = NULL;
	CHECK_STATUS(kms_key_get(NS, KEY1, &k), K_E_NOT_FOUND);
	CHECK_STATUS(kms_alias_lookup(NS, "alias/kept", target), K_E_NOT_FOUND);
}

int main(void)
{
	if (mkdtemp(tmp_root) == NULL)
		return 1;
	if (k_failed(storage_sqlite_open(tmp_root, &st)) || k_failed(kms_init(st)))
		return 1;
	RUN(test_key_changed_behind_the_cache);
	RUN(test_local_write_refreshes);
	RUN(test_alias_changed_behind_the_cache);
	RUN(test_purge_empties_the_account);
	kms_shutdown();
	storage_close(st);
	tl_remove_tree(tmp_root);
	return tl_summary();
}
