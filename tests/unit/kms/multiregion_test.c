/*
 * multiregion_test.c — multi-Region keys (kms/multiregion.h): the mrk- id
 * form, the material ARN, finding a ciphertext's key by its 16 bytes in
 * either id form, the related keys a configuration names, and the
 * transaction a replica's deletion makes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kms/kms.h"
#include "kms/multiregion.h"
#include "storage/storage.h"
#include "testlib.h"
#include "core/banned.h"

static char tmp_root[] = "/tmp/kinko-mrk-test-XXXXXX";
static struct storage *st;

#define ACCOUNT "111122223333"
#define EAST ACCOUNT ":us-east-1"
#define WEST ACCOUNT ":eu-west-1"
#define MRK "mrk-0123456789abcdef0123456789abcdef"
#define UUID "0b5e2c5e-8d4c-4f0e-9d7a-1a2b3c4d5e6f"
#define ARN_EAST "arn:aws:kms:us-east-1:" ACCOUNT ":key/" MRK
#define ARN_WEST "arn:aws:kms:eu-west-1:" ACCOUNT ":key/" MRK

/* A key document without material, with an optional multi-Region configuration. */
static K_MUST_CHECK k_status put_key(const char *ns, const char *id, const char *arn,
				     const char *state, const char *type)
{
	json_t *doc =
		json_pack("{s:s, s:s, s:s, s:s, s:s}", "KeyId", id, "Arn", arn, "KeyState", state,
			  "KeySpec", "SYMMETRIC_DEFAULT", "KeyUsage", "ENCRYPT_DECRYPT");
	if (type != NULL) {
		json_object_set_new(doc, "MultiRegion", json_true());
		json_object_set_new(doc, "MultiRegionConfiguration",
				    json_pack("{s:s, s:{s:s, s:s}, s:[{s:s, s:s}]}",
					      "MultiRegionKeyType", type, "PrimaryKey", "Arn",
					      ARN_EAST, "Region", "us-east-1", "ReplicaKeys", "Arn",
					      ARN_WEST, "Region", "eu-west-1"));
		json_object_set_new(doc, "PendingWindowInDays", json_integer(9));
	}
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	struct storage_op op = {STORAGE_PUT, "key", ns, id, kslice_cstr(text), STORAGE_ANY};
	k_status rc = storage_apply(st, &op, 1);
	free(text);
	return rc;
}

static void test_ids(void)
{
	uint8_t b[16];
	CHECK(kms_mrk_id_bytes(MRK, b));
	CHECK(b[0] == 0x01 && b[15] == 0xef);
	CHECK(kms_mrk_id_valid(MRK));
	CHECK(!kms_mrk_id_valid(UUID));
	CHECK(!kms_mrk_id_valid("mrk-0123456789ABCDEF0123456789abcdef"));
	CHECK(!kms_mrk_id_valid("mrk-0123456789abcdef0123456789abcde"));
	CHECK(!kms_mrk_id_valid("mrk-0123456789abcdef0123456789abcdeg"));
	CHECK(!kms_mrk_id_valid(NULL));
	char id[37];
	kms_mrk_new_key_id(true, id);
	CHECK(kms_mrk_id_valid(id));
	kms_mrk_new_key_id(false, id);
	CHECK(!kms_mrk_id_valid(id) && strlen(id) == 36 && id[8] == '-');
}

static void test_material_arn(void)
{
	json_t *doc = json_pack("{s:s}", "Arn", ARN_EAST);
	CHECK_STR(kms_doc_material_arn(doc), ARN_EAST);
	json_object_set_new(doc, "MaterialArn", json_string("arn:aws:kms::" ACCOUNT ":key/" MRK));
	CHECK_STR(kms_doc_material_arn(doc), "arn:aws:kms::" ACCOUNT ":key/" MRK);
	json_decref(doc);
}

static void test_blob_id_finds_either_form(void)
{
	CHECK_STATUS(put_key(EAST, MRK, ARN_EAST, "Enabled", "PRIMARY"), K_OK);
	CHECK_STATUS(
		put_key(EAST, UUID, "arn:aws:kms:us-east-1:" ACCOUNT ":key/" UUID, "Enabled", NULL),
		K_OK);
	uint8_t b[16];
	char id[37];
	struct kms_key *k = NULL;
	CHECK(kms_mrk_id_bytes(MRK, b));
	CHECK_STATUS(kms_key_get_by_blob_id(EAST, "us-east-1", b, id, &k), K_OK);
	CHECK(k != NULL && strcmp(k->id, MRK) == 0);
	kms_key_unref(k);
	/* Cached now: the same answer without a read. */
	k = NULL;
	CHECK_STATUS(kms_key_get_by_blob_id(EAST, "us-east-1", b, id, &k), K_OK);
	CHECK(k != NULL && strcmp(k->id, MRK) == 0);
	kms_key_unref(k);
	const uint8_t u[16] = {0x0b, 0x5e, 0x2c, 0x5e, 0x8d, 0x4c, 0x4f, 0x0e,
			       0x9d, 0x7a, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f};
	k = NULL;
	CHECK_STATUS(kms_key_get_by_blob_id(EAST, "us-east-1", u, id, &k), K_OK);
	CHECK(k != NULL && strcmp(k->id, UUID) == 0);
	kms_key_unref(k);
	const uint8_t none[16] = {1};
	k = NULL;
	CHECK_STATUS(kms_key_get_by_blob_id(EAST, "us-east-1", none, id, &k), K_E_NOT_FOUND);
	CHECK(id[8] == '-'); /* the message names the UUID form */
}

static void test_related_keys_and_replica_deletion(void)
{
	CHECK_STATUS(put_key(EAST, MRK, ARN_EAST, "PendingReplicaDeletion", "PRIMARY"), K_OK);
	CHECK_STATUS(put_key(WEST, MRK, ARN_WEST, "PendingDeletion", "REPLICA"), K_OK);
	struct kms_key *p = NULL, *r = NULL, *rel[KMS_MRK_MAX_RELATED];
	CHECK_STATUS(kms_key_get(EAST, MRK, &p), K_OK);
	CHECK_STATUS(kms_key_get(WEST, MRK, &r), K_OK);
	if (p == NULL || r == NULL)
		return;
	CHECK(kms_key_is_mrk(p) && !kms_key_is_mrk_replica(p) && kms_key_has_replicas(p));
	CHECK(kms_key_is_mrk_replica(r) && !kms_key_has_replicas(r));
	size_t n = 0;
	CHECK_STATUS(kms_mrk_related(p, rel, &n), K_OK);
	CHECK(n == 1 && strcmp(rel[0]->ns, WEST) == 0);
	kms_mrk_unref_all(rel, n);
	struct kms_key *back = NULL;
	CHECK_STATUS(kms_mrk_primary_of(r, &back), K_OK);
	CHECK(back != NULL && strcmp(back->ns, EAST) == 0);
	kms_key_unref(back);
	CHECK_STATUS(kms_mrk_primary_of(p, &back), K_E_NOT_FOUND);

	/* The replica's deletion: the primary loses it and starts its own window. */
	struct kms_mrk_write *w = kms_mrk_write_new();
	CHECK_STATUS(kms_mrk_unlink_replica(r, 1000, "kms.delete", w), K_OK);
	CHECK_EQ_INT((int)w->n, 2); /* the primary's due record, then its document */
	CHECK_STATUS(storage_apply(st, w->ops, w->n), K_OK);
	kms_mrk_write_free(w);
	struct kms_key *np = NULL;
	CHECK_STATUS(kms_key_get(EAST, MRK, &np), K_OK);
	if (np != NULL) {
		CHECK_EQ_INT(np->state, KS_PENDING_DELETION);
		json_t *cfg = json_object_get(np->doc, "MultiRegionConfiguration");
		CHECK_EQ_INT((int)json_array_size(json_object_get(cfg, "ReplicaKeys")), 0);
		CHECK(kjson_date_seconds(json_object_get(np->doc, "DeletionDate")) ==
		      1000 + 9 * 86400);
		CHECK(!kms_key_has_replicas(np));
	}
	kms_key_unref(np);
	/* A primary is never unlinked; nothing is written for it. */
	w = kms_mrk_write_new();
	CHECK_STATUS(kms_mrk_unlink_replica(p, 1000, "kms.delete", w), K_OK);
	CHECK_EQ_INT((int)w->n, 0);
	kms_mrk_write_free(w);
	kms_key_unref(p);
	kms_key_unref(r);
}

/*
 * A replica another deployment deleted (kms_mrk_unlink_region, self): the
 * primary here has it in ReplicaKeys but not in the store. It leaves the
 * primary, whose window starts; a repeat, or a Region the set does not
 * name, writes nothing.
 */
static void test_unlink_of_a_replica_held_elsewhere(void)
{
#define MRK2 "mrk-00000000000000000000000000000002"
	const char *arn = "arn:aws:kms:us-east-1:" ACCOUNT ":key/" MRK2;
	CHECK_STATUS(put_key(EAST, MRK2, arn, "PendingReplicaDeletion", "PRIMARY"), K_OK);
	for (int round = 0; round < 2; round++) {
		struct kms_key *p = NULL;
		CHECK_STATUS(kms_key_get(EAST, MRK2, &p), K_OK);
		if (p == NULL)
			return;
		struct kms_mrk_write *w = kms_mrk_write_new();
		CHECK_STATUS(kms_mrk_unlink_region(p, "ap-south-1", true, 500, "kms.delete", w),
			     K_OK);
		CHECK_EQ_INT((int)w->n, 0);
		CHECK_STATUS(kms_mrk_unlink_region(p, "eu-west-1", true, 500, "kms.delete", w),
			     K_OK);
		CHECK_EQ_INT((int)w->n, round == 0 ? 2 : 0);
		CHECK_STATUS(storage_apply(st, w->ops, w->n), K_OK);
		kms_mrk_write_free(w);
		kms_cache_forget(EAST, MRK2);
		kms_key_unref(p);
	}
	struct kms_key *np = NULL;
	CHECK_STATUS(kms_key_get(EAST, MRK2, &np), K_OK);
	if (np != NULL) {
		CHECK_EQ_INT(np->state, KS_PENDING_DELETION);
		CHECK(kjson_date_seconds(json_object_get(np->doc, "DeletionDate")) ==
		      500 + 9 * 86400);
	}
	kms_key_unref(np);
#undef MRK2
}

int main(void)
{
	if (mkdtemp(tmp_root) == NULL)
		return 1;
	if (k_failed(storage_sqlite_open(tmp_root, &st)) || k_failed(kms_init(st)))
		return 1;
	RUN(test_ids);
	RUN(test_material_arn);
	RUN(test_blob_id_finds_either_form);
	RUN(test_related_keys_and_replica_deletion);
	RUN(test_unlink_of_a_replica_held_elsewhere);
	kms_shutdown();
	storage_close(st);
	tl_remove_tree(tmp_root);
	return tl_summary();
}
