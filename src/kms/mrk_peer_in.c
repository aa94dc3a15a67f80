/*
 * mrk_peer_in.c — the receiving side of multi-Region keys across
 * deployments: the KinkoPeer operations another kinko deployment calls
 * (mrk_peer.h). Only the principals of "peers.accept" may call them.
 */
#include "kms/mrk_peer.h"

#include <stdio.h>
#include <string.h>

#include "config/peers.h"
#include "core/arn.h"
#include "core/json.h"
#include "core/log.h"
#include "keystore/peer.h"
#include "kms/store.h"
#include "core/banned.h"

#define PEER_AAD_MAX 512

/* What the sealed material opens into: the new "Materials" list. */
struct opened {
	json_t *mats;
	json_t *versions; /* the sender's list: each version's Created */
	int64_t now;
};

static K_MUST_CHECK k_status add_version(void *arg, uint32_t version, struct kslice ref)
{
	struct opened *o = arg;
	json_t *created = json_object_get(json_array_get(o->versions, version - 1), "Created");
	json_t *e = json_pack("{s:I, s:s%, s:I}", "Version", (json_int_t)version, "Wrapped",
			      (const char *)ref.ptr, ref.len, "Created",
			      json_is_integer(created) ? json_integer_value(created)
						       : (json_int_t)o->now);
	ENSURE(e != NULL, K_E_INTERNAL);
	return json_array_append_new(o->mats, e) == 0 ? K_OK : K_E_INTERNAL;
}

/*
 * Opens the request's EncryptedKeyMaterial (sealed for this deployment's
 * wrapping key, for `purpose` and this Region) into the material list of
 * the key whose material ARN is march.
 */
k_status kms_mrk_peer_open(struct api_ctx *c, json_t *in, const char *purpose, const char *march,
			   json_t *versions, json_t **mats)
{
	const char *b64 = json_string_value(json_object_get(in, "EncryptedKeyMaterial"));
	if (b64 == NULL)
		return api_fail(c, K_E_VALIDATION, "EncryptedKeyMaterial is required.");
	struct kbuf raw, aad;
	kbuf_init(&raw, KEYSTORE_PEER_MAX_SEALED);
	kbuf_init(&aad, PEER_AAD_MAX);
	struct opened o = {json_array(), versions, c->now};
	k_status rc = kbuf_decode_base64(&raw, kslice_cstr(b64));
	if (k_ok(rc))
		rc = kms_mrk_peer_aad(purpose, march, c->region, &aad);
	if (k_ok(rc) && o.mats != NULL)
		rc = keystore_peer_open(march, kbuf_slice(&aad), kbuf_slice(&raw), add_version, &o);
	kbuf_release(&raw);
	kbuf_release(&aad);
	if (k_failed(rc) || o.mats == NULL) {
		json_decref(o.mats);
		LOG_WARN("mrk: sealed material for %s from %s does not open: %s", march,
			 c->principal.arn, k_status_name(rc));
		return api_fail(c, K_E_INVALID_CIPHERTEXT,
				"The key material was not sealed for this deployment's wrapping "
				"key.");
	}
	*mats = o.mats;
	return K_OK;
}

/* The key ARN and material ARN of id in the caller's account and this Region. */
static void arns_of(const struct api_ctx *c, const char *id, char arn[K_ARN_BUF],
		    char march[K_ARN_BUF])
{
	struct k_arn a = k_arn_of("kms", c->region, c->principal.account, K_ARN_KEY, id);
	k_arn_format(&a, arn, K_ARN_BUF);
	struct k_arn m = k_arn_of("kms", "", c->principal.account, K_ARN_KEY, id);
	k_arn_format(&m, march, K_ARN_BUF);
}

static bool str_is(json_t *obj, const char *member, const char *want)
{
	const char *v = json_string_value(json_object_get(obj, member));
	return v != NULL && want != NULL && strcmp(v, want) == 0;
}

static const char *primary_arn_of(json_t *doc)
{
	json_t *cfg = json_object_get(doc, "MultiRegionConfiguration");
	return json_string_value(json_object_get(json_object_get(cfg, "PrimaryKey"), "Arn"));
}

/*
 * The replica document a peer sends must be one of this Region and the
 * caller's account, a multi-Region replica in the software store.
 */
static K_MUST_CHECK k_status check_replica_doc(struct api_ctx *c, json_t *doc, const char **id,
					       char arn[K_ARN_BUF], char march[K_ARN_BUF])
{
	*id = json_string_value(json_object_get(doc, "KeyId"));
	if (!json_is_object(doc) || !kms_mrk_id_valid(*id))
		return api_fail(c, K_E_VALIDATION, "Replica must be a multi-Region key document.");
	arns_of(c, *id, arn, march);
	json_t *cfg = json_object_get(doc, "MultiRegionConfiguration");
	if (!str_is(doc, "Arn", arn) || !str_is(doc, "MaterialArn", march) ||
	    !str_is(cfg, "MultiRegionKeyType", "REPLICA") ||
	    !(str_is(doc, "Origin", "AWS_KMS") ||
	      (kms_mrk_is_external(doc) &&
	       json_is_string(json_object_get(doc, "MaterialCommitment")))) ||
	    json_object_get(doc, "KeyStore") != NULL || primary_arn_of(doc) == NULL ||
	    !json_is_string(json_object_get(doc, "KeySpec")))
		return api_fail(c, K_E_VALIDATION,
				"Replica is not a replica key of %s in this Region.", arn);
	return K_OK;
}

/*
 * A replica's copy of its primary's rotation settings: the ones sent when
 * they are well formed (else the copy it had stays); a primary keeps none.
 */
static void set_primary_rotation(json_t *doc, json_t *sent)
{
	json_t *cfg = json_object_get(doc, "MultiRegionConfiguration");
	if (!str_is(cfg, "MultiRegionKeyType", "REPLICA")) {
		json_object_del(doc, KMS_MRK_PRIMARY_ROTATION);
		return;
	}
	json_t *settings = kms_rotation_settings_parse(sent);
	if (settings != NULL)
		json_object_set_new(doc, KMS_MRK_PRIMARY_ROTATION, settings);
}

/* A replica that exists already: the same one again (a retry) answers it. */
static K_MUST_CHECK k_status existing_replica(struct api_ctx *c, struct kms_key *there, json_t *doc,
					      json_t *out)
{
	const char *mine = primary_arn_of(there->doc), *theirs = primary_arn_of(doc);
	if (mine == NULL || theirs == NULL || strcmp(mine, theirs) != 0)
		return api_fail(c, K_E_ALREADY_EXISTS, "%s already exists.", there->arn);
	json_object_set_new(out, "ReplicaKeyMetadata", kms_key_metadata(there));
	return K_OK;
}

static K_MUST_CHECK k_status store_replica(struct api_ctx *c, const char *id, json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	ENSURE(text != NULL, K_E_INTERNAL);
	struct storage_op op = {.op = STORAGE_PUT,
				.kind = "key",
				.ns = c->ns,
				.id = id,
				.doc = kslice_cstr(text),
				.expect = STORAGE_ABSENT};
	k_status rc = storage_apply(kms_store(), &op, 1);
	kjson_free(text);
	if (k_is(rc, K_E_CONFLICT))
		return api_fail(c, K_E_ALREADY_EXISTS, "The replica key was created meanwhile.");
	return rc;
}

/*
 * KinkoPeer.ReplicateKeyIn: {"Replica": the replica's document, its
 * material versions without references; "EncryptedKeyMaterial": base64}. Makes
 * the replica here, its material wrapped again under this root key, and
 * records its creation as AWS does in the replica's Region (a CreateKey
 * AwsServiceEvent). Answers {"ReplicaKeyMetadata"}.
 */
static k_status op_replicate_in(struct api_ctx *c, json_t *in, json_t *out)
{
	json_t *src = json_object_get(in, "Replica");
	const char *id;
	char arn[K_ARN_BUF], march[K_ARN_BUF];
	GUARD(check_replica_doc(c, src, &id, arn, march));
	struct kms_key *there = NULL, *nk = NULL;
	k_status rc = kms_key_get(c->ns, id, &there);
	if (k_ok(rc)) {
		rc = existing_replica(c, there, src, out);
		kms_key_unref(there);
		return rc;
	}
	GUARD(k_is(rc, K_E_NOT_FOUND) ? K_OK : rc);
	json_t *mats = NULL, *doc = json_deep_copy(src);
	ENSURE(doc != NULL, K_E_INTERNAL);
	/* Imported material: PendingImport until its own import (mrk_peer_import.c). */
	bool external = kms_mrk_is_external(src);
	if (!external)
		GUARD_GOTO(kms_mrk_peer_open(c, in, "replicate", march,
					     json_object_get(src, "Materials"), &mats));
	if (mats != NULL)
		json_object_set_new(doc, "Materials", mats);
	else
		json_object_del(doc, "Materials");
	json_object_del(doc, KMS_MRK_PRIMARY_ROTATION); /* kept only as checked */
	set_primary_rotation(doc, json_object_get(src, KMS_MRK_PRIMARY_ROTATION));
	json_object_set_new(doc, "CreationDate", kjson_date(api_now_ms(c)));
	json_object_set_new(doc, "KeyState", json_string(external ? "PendingImport" : "Enabled"));
	json_object_set_new(doc, "Region", json_string(c->region));
	GUARD_GOTO(store_replica(c, id, doc));
	GUARD_GOTO(kms_key_get(c->ns, id, &nk));
	json_object_set_new(out, "ReplicaKeyMetadata", kms_key_metadata(nk));
	json_t *details = json_pack("{s:s}", "replicaKeyArn", nk->arn);
	rc = kms_key_service_event(nk, "CreateKey", details, K_OK);
	json_decref(details);
	LOG_INFO("mrk: replica %s created for the primary %s", nk->arn, primary_arn_of(doc));
out:
	kms_key_unref(nk);
	json_decref(doc);
	return rc;
}

/*
 * The replica's document with the primary's shared properties: the
 * versions it does not have yet (the ones it has stay: a version is the
 * same material everywhere), the rotations' record and the set of
 * related keys. NULL when nothing changes.
 */
static json_t *synced_doc(const struct kms_key *k, json_t *key, json_t *mats)
{
	json_t *doc = json_deep_copy(k->doc);
	json_t *have = json_object_get(doc, "Materials");
	/* A replica waiting for its imported material has none and gets none. */
	if (doc == NULL || (!json_is_array(have) && json_array_size(mats) > 0)) {
		json_decref(doc);
		return NULL;
	}
	size_t n_have = json_array_size(have), n_new = json_array_size(mats);
	for (size_t i = n_have; i < n_new; i++)
		json_array_append(have, json_array_get(mats, i));
	json_t *rots = json_object_get(key, "Rotations");
	if (n_new >= n_have && json_is_array(rots))
		json_object_set(doc, "Rotations", rots);
	json_t *cfg = json_deep_copy(json_object_get(key, "MultiRegionConfiguration"));
	/* A primary here stays one: only UpdatePrimaryRegionIn moves it (a late record). */
	if (!kms_key_is_mrk_replica(k) &&
	    !str_is(json_object_get(cfg, "PrimaryKey"), "Arn", k->arn)) {
		json_decref(cfg);
		cfg = NULL;
	}
	if (json_is_object(cfg)) {
		bool primary = str_is(json_object_get(cfg, "PrimaryKey"), "Arn", k->arn);
		json_object_set_new(cfg, "MultiRegionKeyType",
				    json_string(primary ? "PRIMARY" : "REPLICA"));
		json_object_set_new(doc, "MultiRegionConfiguration", cfg);
	} else {
		json_decref(cfg);
	}
	set_primary_rotation(doc, json_object_get(key, KMS_MRK_PRIMARY_ROTATION));
	if (json_equal(doc, k->doc)) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/*
 * KinkoPeer.SynchronizeKeyIn: {"KeyId"; "Key": the primary's
 * MultiRegionConfiguration, Rotations and material versions;
 * "EncryptedKeyMaterial"}. Idempotent: a repeat changes nothing. Records
 * SynchronizeMultiRegionKey here when something changed.
 */
static k_status op_synchronize_in(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *id = json_string_value(json_object_get(in, "KeyId"));
	json_t *key = json_object_get(in, "Key");
	if (!kms_mrk_id_valid(id) || !json_is_object(key))
		return api_fail(c, K_E_VALIDATION, "KeyId and Key are required.");
	char arn[K_ARN_BUF], march[K_ARN_BUF];
	arns_of(c, id, arn, march);
	struct kms_key *k = NULL;
	if (k_failed(kms_key_get(c->ns, id, &k)))
		return api_fail(c, K_E_NOT_FOUND, "Key '%s' does not exist", arn);
	json_t *mats = NULL, *doc = NULL;
	char *text = NULL;
	k_status rc = K_OK;
	if (!kms_key_is_mrk(k) || !str_is(k->doc, "MaterialArn", march)) {
		rc = api_fail(c, K_E_UNSUPPORTED, "%s is not a multi-Region key.", arn);
		goto out;
	}
	/* Imported material is each Region's own import: only the rest is synchronized. */
	if (kms_mrk_is_external(k->doc))
		mats = json_array();
	else
		GUARD_GOTO(kms_mrk_peer_open(c, in, "synchronize", march,
					     json_object_get(key, "Materials"), &mats));
	doc = synced_doc(k, key, mats);
	json_object_set_new(out, "KeyId", json_string(k->arn));
	if (doc == NULL)
		goto out;
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	ENSURE_GOTO(text != NULL, K_E_INTERNAL);
	struct storage_op op = {.op = STORAGE_PUT,
				.kind = "key",
				.ns = k->ns,
				.id = k->id,
				.doc = kslice_cstr(text),
				.expect = k->version};
	GUARD_GOTO(storage_apply(kms_store(), &op, 1));
	kms_cache_forget(k->ns, k->id);
	rc = kms_mrk_sync_event(k, NULL);
out:
	kjson_free(text);
	json_decref(doc);
	json_decref(mats);
	kms_key_unref(k);
	return rc;
}

/*
 * The peer operations are for the deployments "peers.accept" names, and
 * nobody else: no identity policy grants them.
 */
static K_MUST_CHECK k_status peer_authorize(struct api_ctx *c, json_t *in)
{
	(void)in;
	if (c->op->resource != API_RES_NONE || !config_peer_accepts(c->principal.arn))
		return api_fail(c, K_E_ACCESS_DENIED,
				"User: %s is not a peer deployment of this one (peers.accept).",
				c->principal.arn);
	c->authorized = true;
	return K_OK;
}

#define PEER_OP(nm, fn)                                                                            \
	{                                                                                          \
		.name = nm, .handler = fn, .action = "kinko-peer:" nm, .resource = API_RES_NONE,   \
		.member = NULL, .state = API_STATE_NA, .quota = {NULL, API_QUOTA_NONE},            \
		.mutates = true, .key_use = false, .max_body = API_MAX_BODY                        \
	}

static const struct api_operation peer_ops[] = {
	PEER_OP("ReplicateKeyIn", op_replicate_in),
	PEER_OP("SynchronizeKeyIn", op_synchronize_in),
	PEER_OP("ReplicaDeletedIn", kms_mrk_op_replica_deleted_in),
	PEER_OP("UpdatePrimaryRegionIn", kms_peer_op_update_primary_in),
};

static const struct api_service peer_service = {
	.target_prefix = KMS_PEER_TARGET_PREFIX,
	.signing_name = "kms",
	.event_source = "kms.amazonaws.com",
	.ops = peer_ops,
	.n_ops = sizeof peer_ops / sizeof peer_ops[0],
	.authorize = peer_authorize,
	.resources = API_RES_BIT(API_RES_NONE),
};

const struct api_service *kms_peer_service_table(void)
{
	return &peer_service;
}
