/*
 * mrk_peer_out.c — the calling side of multi-Region keys across
 * deployments: signed calls to a peer, the material sealed for it, the
 * outbox records and the synchronization events (mrk_peer.h).
 */
#include "kms/mrk_peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sigv4_client.h"
#include "config/peers.h"
#include "core/json.h"
#include "core/log.h"
#include "keystore/keyops.h"
#include "keystore/peer.h"
#include "kms/store.h"
#include "core/banned.h"

/* The largest answer a peer operation gives (a key's metadata). */
#define PEER_ANSWER_MAX (256u << 10)
#define PEER_AAD_MAX 512
/* The sealed material in base64 (4 characters for every 3 bytes, and the NUL). */
#define PEER_SEALED_TEXT_MAX (4 * ((KEYSTORE_PEER_MAX_SEALED + 2) / 3) + 1)

bool kms_mrk_region_is_peer(const char *region)
{
	return config_peer_for_region(region) != NULL;
}

k_status kms_mrk_peer_aad(const char *purpose, const char *material_arn, const char *region,
			  struct kbuf *out)
{
	return kbuf_appendf(out, "kinko/mrk-peer/v1|%s|%s|%s", purpose, material_arn, region);
}

/* The peer's refusal as kinko's code: the ones a caller acts on, else internal. */
static k_status peer_error(json_t *ans)
{
	static const k_status known[] = {K_E_ALREADY_EXISTS,	 K_E_NOT_FOUND,
					 K_E_INVALID_CIPHERTEXT, K_E_ACCESS_DENIED,
					 K_E_UNSUPPORTED,	 K_E_INVALID_STATE};
	const char *type = json_string_value(json_object_get(ans, "__type"));
	for (size_t i = 0; type != NULL && i < sizeof known / sizeof known[0]; i++) {
		if (strcmp(type, k_status_name(known[i])) == 0)
			return known[i];
	}
	return K_E_INTERNAL;
}

k_status kms_mrk_peer_call(const char *region, const char *op, json_t *in, json_t **answer,
			   struct kbuf *why)
{
	*answer = NULL;
	const struct config_peer *p = config_peer_for_region(region);
	ENSURE(p != NULL, K_E_INTERNAL);
	char target[96];
	snprintf(target, sizeof target, KMS_PEER_TARGET_PREFIX "%s", op);
	struct sigv4_client_call call = {.endpoint = p->endpoint,
					 .ca_file = p->ca_file,
					 .access_key_id = p->access_key_id,
					 .secret = p->secret,
					 .region = p->region,
					 .service = "kms",
					 .target = target};
	char *body = json_dumps(in, JSON_COMPACT);
	ENSURE(body != NULL, K_E_INTERNAL);
	struct kbuf ans;
	kbuf_init(&ans, PEER_ANSWER_MAX);
	long status = 0;
	k_status rc = sigv4_client_post(&call, kslice_cstr(body), &ans, &status, why);
	kjson_free(body);
	json_t *j = k_ok(rc) ? json_loadb((const char *)ans.ptr, ans.len, 0, NULL) : NULL;
	kbuf_release(&ans);
	if (k_ok(rc) && status == 200 && json_is_object(j)) {
		*answer = j;
		return K_OK;
	}
	if (k_ok(rc)) {
		rc = peer_error(j);
		const char *type = json_string_value(json_object_get(j, "__type"));
		const char *text = json_string_value(json_object_get(j, "message"));
		kbuf_note(why, "the peer serving %s answered %ld %s: %s", region, status,
			  type != NULL ? type : "(no error name)", text != NULL ? text : "");
	}
	json_decref(j);
	return rc;
}

k_status kms_mrk_peer_sealed(const struct kms_key *k, const char *purpose, const char *region,
			     json_t **out)
{
	*out = NULL;
	if (kms_mrk_is_external(k->doc)) {
		/* Each Region imports its own: nothing to seal (the peer takes null). */
		*out = json_null();
		return K_OK;
	}
	const struct config_peer *p = config_peer_for_region(region);
	json_t *mats = json_object_get(k->doc, "Materials");
	size_t n = json_array_size(mats);
	const char *march = kms_doc_material_arn(k->doc);
	ENSURE(p != NULL && n > 0 && n <= KEYSTORE_PEER_MAX_VERSIONS && march != NULL,
	       K_E_INTERNAL);
	struct kslice *refs = calloc(n, sizeof *refs);
	ENSURE(refs != NULL, K_E_INTERNAL);
	struct kbuf aad, sealed, b64;
	kbuf_init(&aad, PEER_AAD_MAX);
	kbuf_init(&sealed, KEYSTORE_PEER_MAX_SEALED);
	kbuf_init(&b64, PEER_SEALED_TEXT_MAX);
	k_status rc = K_OK;
	for (size_t i = 0; i < n; i++) {
		const char *w =
			json_string_value(json_object_get(json_array_get(mats, i), "Wrapped"));
		ENSURE_GOTO(w != NULL, K_E_INTERNAL);
		refs[i] = kslice_cstr(w);
	}
	GUARD_GOTO(kms_mrk_peer_aad(purpose, march, region, &aad));
	GUARD_GOTO(keystore_peer_seal(march, refs, (uint32_t)n, kbuf_slice(&p->public_pem),
				      kbuf_slice(&aad), &sealed));
	GUARD_GOTO(kbuf_append_base64(&b64, sealed.ptr, sealed.len));
	*out = json_string(kbuf_cstr(&b64));
	ENSURE_GOTO(*out != NULL, K_E_INTERNAL);
out:
	free(refs);
	kbuf_release(&aad);
	kbuf_release(&sealed);
	kbuf_release(&b64);
	return rc;
}

/* The material versions' list without the references (which only this root key opens). */
json_t *kms_mrk_peer_versions(json_t *doc)
{
	json_t *list = json_array();
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(doc, "Materials"), i, m)
	{
		json_array_append_new(list, json_pack("{s:O, s:O}", "Version",
						      json_object_get(m, "Version"), "Created",
						      json_object_get(m, "Created")));
	}
	return list;
}

/*
 * The replica's document goes without the primary's references; the
 * peer makes its own from the sealed material.
 */
k_status kms_mrk_peer_replicate(struct api_ctx *c, struct kms_key *k, json_t *doc,
				const char *region, json_t **meta)
{
	*meta = NULL;
	struct kbuf why;
	kbuf_init(&why, KBUF_NOTE_MAX);
	json_t *sealed = NULL, *ans = NULL;
	json_t *replica = json_deep_copy(doc);
	json_t *in = json_object();
	k_status rc = K_OK;
	ENSURE_GOTO(replica != NULL && in != NULL, K_E_INTERNAL);
	/* Imported material stays: the replica imports it (MaterialCommitment). */
	json_object_del(replica, "MaterialFingerprint"); /* bound to this root key */
	json_object_set_new(replica, KMS_MRK_PRIMARY_ROTATION, kms_rotation_settings(k));
	if (!kms_mrk_is_external(k->doc)) {
		json_object_set_new(replica, "Materials", kms_mrk_peer_versions(k->doc));
		GUARD_GOTO(kms_mrk_peer_sealed(k, "replicate", region, &sealed));
		json_object_set_new(in, "EncryptedKeyMaterial", sealed);
	}
	json_object_set_new(in, "Replica", replica);
	replica = NULL;
	rc = kms_mrk_peer_call(region, "ReplicateKeyIn", in, &ans, &why);
	if (k_failed(rc)) {
		LOG_WARN("mrk: ReplicateKey of %s to %s: %s", k->arn, region, kbuf_cstr(&why));
		rc = k_is(rc, K_E_ALREADY_EXISTS)
			     ? api_fail(c, rc,
					"Multi-Region key %s already has a related key in the "
					"Region %s.",
					k->arn, region)
			     : api_fail(c, K_E_INTERNAL,
					"The deployment that serves the Region %s did not create "
					"the replica key.",
					region);
		goto out;
	}
	*meta = json_incref(json_object_get(ans, "ReplicaKeyMetadata"));
	ENSURE_GOTO(json_is_object(*meta), K_E_INTERNAL);
out:
	json_decref(replica);
	json_decref(in);
	json_decref(ans);
	kbuf_release(&why);
	return rc;
}

/*
 * Adds the outbox record of (region, k) to w; `deleted`: the record says
 * that k, a replica, is gone (it takes the place of any record of k's
 * own state, which has nothing left to send).
 */
static K_MUST_CHECK k_status enqueue_one(const struct kms_key *k, const char *region, bool deleted,
					 struct kms_mrk_write *w)
{
	ENSURE(w->n < KMS_MRK_MAX_OPS && w->n_outbox < KMS_MRK_MAX_RELATED, K_E_INTERNAL);
	char *id = w->outbox[w->n_outbox];
	int len = snprintf(id, KMS_MRK_OUTBOX_ID_MAX, "%s|%s|%s", region, k->ns, k->id);
	ENSURE(len > 0 && len < KMS_MRK_OUTBOX_ID_MAX, K_E_INTERNAL);
	json_t *doc = json_pack("{s:s, s:s, s:s}", "Region", region, "Ns", k->ns, "KeyId", k->id);
	if (doc != NULL && deleted)
		json_object_set_new(doc, KMS_MRK_OUTBOX_DELETED, json_true());
	char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(doc);
	ENSURE(text != NULL, K_E_INTERNAL);
	w->n_outbox++;
	w->texts[w->n] = text;
	w->keys[w->n] = NULL;
	w->ops[w->n++] = (struct storage_op){.op = STORAGE_PUT,
					     .kind = KMS_MRK_OUTBOX_KIND,
					     .ns = KMS_MRK_OUTBOX_NS,
					     .id = id,
					     .doc = kslice_cstr(text),
					     .expect = STORAGE_ANY};
	return K_OK;
}

/* Every peer Region among the related keys of cfg but k's own and `skip`. */
static K_MUST_CHECK k_status enqueue_all(const struct kms_key *k, json_t *cfg, const char *skip,
					 bool deleted, struct kms_mrk_write *w)
{
	if (config_peer_count() == 0)
		return K_OK;
	if (cfg == NULL)
		cfg = json_object_get(k->doc, "MultiRegionConfiguration");
	const char *own = k->ns + strcspn(k->ns, ":") + 1;
	const char *primary =
		json_string_value(json_object_get(json_object_get(cfg, "PrimaryKey"), "Region"));
	json_t *list = json_object_get(cfg, "ReplicaKeys");
	for (size_t i = 0; i <= json_array_size(list); i++) {
		const char *r = i == 0 ? primary
				       : json_string_value(json_object_get(
						 json_array_get(list, i - 1), "Region"));
		if (r == NULL || strcmp(r, own) == 0 || (skip != NULL && strcmp(r, skip) == 0) ||
		    !kms_mrk_region_is_peer(r))
			continue;
		GUARD(enqueue_one(k, r, deleted, w));
	}
	return K_OK;
}

k_status kms_mrk_peer_enqueue(const struct kms_key *k, json_t *cfg, const char *skip,
			      struct kms_mrk_write *w)
{
	return enqueue_all(k, cfg, skip, false, w);
}

k_status kms_mrk_peer_enqueue_deleted(const struct kms_key *k, struct kms_mrk_write *w)
{
	if (!kms_key_is_mrk_replica(k))
		return K_OK;
	return enqueue_all(k, NULL, NULL, true, w);
}

/*
 * "The following example shows an AWS CloudTrail log entry generated when
 * AWS KMS synchronizes a multi-Region key. ... The resources element of
 * the CloudTrail log entry includes the key ARN of the multi-Region
 * primary key" (https://docs.aws.amazon.com/kms/latest/developerguide/ct-synchronize-multi-region-key.html),
 * and responseElements.keyId names it too.
 */
k_status kms_mrk_sync_event(const struct kms_key *k, const char *peer)
{
	json_t *d = json_pack("{s:s}", "keyId", k->arn);
	if (d != NULL && peer != NULL)
		json_object_set_new(d, "replicaRegion", json_string(peer));
	k_status rc = kms_key_service_event(k, "SynchronizeMultiRegionKey", d, K_OK);
	json_decref(d);
	return rc;
}
