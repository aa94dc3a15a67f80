/*
 * grant_cache_test.c — a key's grants as records and the per-key grant
 * cache: a grant written through kms_grants_put is in the cached set at
 * once; one written or deleted behind the cache (straight to the store,
 * as another node would) is seen on the next check; constraints hold as
 * AWS states them; grants kept in an older key document are moved to
 * records the first time they are needed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kms/grants.h"
#include "kms/kms.h"
#include "storage/storage.h"
#include "testlib.h"
#include "core/banned.h"

static char tmp_root[] = "/tmp/kinko-grant-cache-test-XXXXXX";
static struct storage *st;

#define NS "111122223333:us-east-1"
#define KEY1 "0b5e2c5e-8d4c-4f0e-9d7a-1a2b3c4d5e6f"
#define KEY2 "7c1d4a9e-2f3b-4c5d-8e9f-0a1b2c3d4e5f"
#define ALICE "arn:aws:iam::111122223333:user/alice"
#define BOB "arn:aws:iam::111122223333:user/bob"
#define GID1 "0000000000010000000000000000000000000000000000000000000000000001"
#define GID2 "0000000000020000000000000000000000000000000000000000000000000002"

/* A key document without material; extra is more members ("" or ",\"Grants\":[...]"). */
static K_MUST_CHECK k_status put_key(const char *id, const char *extra)
{
	char doc[2048];
	snprintf(
		doc, sizeof doc,
		"{\"KeyId\":\"%s\",\"Arn\":\"arn:aws:kms:us-east-1:111122223333:key/%s\","
		"\"KeyState\":\"Enabled\",\"KeySpec\":\"SYMMETRIC_DEFAULT\",\"KeyUsage\":\"ENCRYPT_"
		"DECRYPT\"%s}",
		id, id, extra);
	struct storage_op op = {STORAGE_PUT, "key", NS, id, kslice_cstr(doc), STORAGE_ANY};
	return storage_apply(st, &op, 1);
}

static json_t *grant_doc(const char *gid, const char *grantee, const char *ops_json,
			 const char *cons_json)
{
	char text[1024];
	snprintf(text, sizeof text,
		 "{\"GrantId\":\"%s\",\"GranteePrincipal\":\"%s\",\"Operations\":%s,"
		 "\"RetiringPrincipal\":\"arn:aws:iam::111122223333:root\",\"Name\":\"\"%s%s}",
		 gid, grantee, ops_json, cons_json ? ",\"Constraints\":" : "",
		 cons_json ? cons_json : "");
	return json_loads(text, 0, NULL);
}

static bool allows(const struct kms_key *k, const char *who, const char *op, const char *ec)
{
	char gid[KMS_GRANT_ID_LEN + 1];
	json_t *ctx = ec != NULL ? json_loads(ec, 0, NULL) : NULL;
	bool ok = kms_grants_allow(k, who, NULL, op, ctx, gid);
	json_decref(ctx);
	return ok;
}

static void test_put_and_delete_through_the_cache(void)
{
	struct kms_key *k = NULL;
	CHECK_STATUS(put_key(KEY1, ""), K_OK);
	CHECK_STATUS(kms_key_get(NS, KEY1, &k), K_OK);
	if (k == NULL)
		return;
	CHECK(!allows(k, ALICE, "Encrypt", NULL));
	json_t *g = grant_doc(GID1, ALICE, "[\"Encrypt\"]",
			      "{\"EncryptionContextSubset\":{\"app\":\"x\"}}");
	CHECK_STATUS(kms_grants_put(k, g), K_OK);
	json_decref(g);
	/* Constraints: the subset must be in the context; keys without case. */
	CHECK(!allows(k, ALICE, "Encrypt", NULL));
	CHECK(allows(k, ALICE, "Encrypt", "{\"APP\":\"x\",\"more\":\"y\"}"));
	CHECK(!allows(k, ALICE, "Encrypt", "{\"app\":\"X\"}"));
	CHECK(!allows(k, ALICE, "Decrypt", "{\"app\":\"x\"}"));
	CHECK(!allows(k, BOB, "Encrypt", "{\"app\":\"x\"}"));
	size_t count = 0;
	bool same = true;
	char same_id[KMS_GRANT_ID_LEN + 1];
	CHECK_STATUS(kms_grants_census(k, "n", ALICE, NULL, 1, NULL, &count, &same, same_id), K_OK);
	CHECK_EQ_INT(count, 1);
	CHECK(!same);
	struct kms_grant_info info;
	CHECK_STATUS(kms_grants_find(k, GID1, &info), K_OK);
	CHECK_STR(info.grantee, ALICE);
	CHECK_STR(info.retiring, "arn:aws:iam::111122223333:root");
	CHECK_STATUS(kms_grants_delete(k, &info), K_OK);
	CHECK(!allows(k, ALICE, "Encrypt", "{\"app\":\"x\"}"));
	CHECK_STATUS(kms_grants_find(k, GID1, &info), K_E_NOT_FOUND);
	kms_key_unref(k);
}

static void test_written_behind_the_cache(void)
{
	struct kms_key *k = NULL;
	CHECK_STATUS(kms_key_get(NS, KEY1, &k), K_OK);
	if (k == NULL)
		return;
	CHECK(!allows(k, BOB, "Decrypt", NULL)); /* the set is cached now */
	/* Another node writes a grant record straight to the store. */
	json_t *g = grant_doc(GID2, BOB, "[\"Decrypt\"]", NULL);
	char *text = json_dumps(g, JSON_COMPACT);
	json_decref(g);
	char rec[KMS_GRANT_RECORD_ID_BUF];
	kms_grant_record_id(KEY1, GID2, rec);
	struct storage_op op = {STORAGE_PUT, KMS_GRANT_KIND,	NS,
				rec,	     kslice_cstr(text), STORAGE_ANY};
	CHECK_STATUS(storage_apply(st, &op, 1), K_OK);
	kjson_free(text);
	CHECK(allows(k, BOB, "Decrypt", NULL));
	/* And deletes it. */
	struct storage_op del = {STORAGE_DEL, KMS_GRANT_KIND, NS, rec, {NULL, 0}, STORAGE_ANY};
	CHECK_STATUS(storage_apply(st, &del, 1), K_OK);
	CHECK(!allows(k, BOB, "Decrypt", NULL));
	kms_key_unref(k);
}

static void test_older_document_migrated(void)
{
	struct kms_key *k = NULL;
	CHECK_STATUS(put_key(KEY2, ",\"Grants\":[{\"GrantId\":\"" GID1 "\",\"GranteePrincipal\":"
				   "\"" ALICE "\",\"Operations\":[\"Sign\"],\"Token\":\"t\","
				   "\"RetiringPrincipal\":\"" BOB "\"}]"),
		     K_OK);
	CHECK_STATUS(kms_key_get(NS, KEY2, &k), K_OK);
	if (k == NULL)
		return;
	CHECK(allows(k, ALICE, "Sign", NULL));
	kms_key_unref(k);
	/* The key's document lost its list; the grant and its index are records. */
	k = NULL;
	CHECK_STATUS(kms_key_get(NS, KEY2, &k), K_OK);
	if (k != NULL)
		CHECK(json_object_get(k->doc, "Grants") == NULL);
	char rec[KMS_GRANT_RECORD_ID_BUF];
	kms_grant_record_id(KEY2, GID1, rec);
	CHECK_STATUS(storage_get(st, KMS_GRANT_KIND, NS, rec, NULL, NULL), K_OK);
	char prefix[4 + KMS_GRANT_PRINCIPAL_MAX], idx[KMS_GRANT_RETIREE_ID_BUF];
	kms_grant_retiree_prefix(BOB, prefix, sizeof prefix);
	snprintf(idx, sizeof idx, "%s%s", prefix, rec);
	CHECK_STATUS(storage_get(st, KMS_GRANT_RETIREE_KIND, NS, idx, NULL, NULL), K_OK);
	/* The key's deletion ops name both. */
	struct kms_grant_ops ops;
	CHECK_STATUS(kms_grants_delete_ops(NS, KEY2, &ops), K_OK);
	CHECK_EQ_INT(ops.n, 2);
	kms_grant_ops_free(&ops);
	kms_key_unref(k);
}

static void test_retiree_prefix_names_one_principal(void)
{
	char a[KMS_GRANT_RETIREE_ID_BUF], b[KMS_GRANT_RETIREE_ID_BUF];
	kms_grant_retiree_prefix("arn:aws:iam::111122223333:user/ab", a, sizeof a);
	kms_grant_retiree_prefix("arn:aws:iam::111122223333:user/a", b, sizeof b);
	CHECK(strncmp(a, b, strlen(b)) != 0); /* "a"'s prefix is not a prefix of "ab"'s */
	CHECK_EQ_INT(kms_grant_op_bit("Encrypt"), 2);
	CHECK_EQ_INT(kms_grant_op_bit("PutKeyPolicy"), 0);
}

static bool holds(const char *cons, const char *ec)
{
	json_t *c = json_loads(cons, 0, NULL), *e = json_loads(ec, 0, NULL);
	bool r = kms_grant_constraints_hold(c, e);
	json_decref(c);
	json_decref(e);
	return r;
}

/* "in a grant constraint, the key in each key-value pair is not case
 * sensitive, but the value is case sensitive" (API_GrantConstraints). */
static void test_constraint_keys_without_case(void)
{
	const char *sub = "{\"EncryptionContextSubset\":{\"Dept\":\"a\"}}";
	const char *eq = "{\"EncryptionContextEquals\":{\"Dept\":\"a\"}}";
	CHECK(holds(sub, "{\"dept\":\"a\",\"x\":\"y\"}"));
	CHECK(!holds(sub, "{\"Dept\":\"A\"}"));
	CHECK(!holds(sub, "{}"));
	/* keys that differ only by case: the one carrying the value matches,
	 * in either order */
	CHECK(holds(sub, "{\"DEPT\":\"b\",\"dept\":\"a\"}"));
	CHECK(holds(sub, "{\"dept\":\"a\",\"DEPT\":\"b\"}"));
	CHECK(holds(eq, "{\"DEPT\":\"a\"}"));
	CHECK(!holds(eq, "{\"Dept\":\"a\",\"x\":\"y\"}"));
	CHECK(!holds(eq, "{\"Dept\":\"b\"}"));
	CHECK(holds("{}", "{\"a\":\"b\"}"));
}

int main(void)
{
	if (mkdtemp(tmp_root) == NULL)
		return 1;
	if (k_failed(storage_sqlite_open(tmp_root, &st)) || k_failed(kms_init(st)))
		return 1;
	RUN(test_put_and_delete_through_the_cache);
	RUN(test_written_behind_the_cache);
	RUN(test_older_document_migrated);
	RUN(test_retiree_prefix_names_one_principal);
	RUN(test_constraint_keys_without_case);
	kms_shutdown();
	storage_close(st);
	tl_remove_tree(tmp_root);
	return tl_summary();
}
