/*
 * mrk_peer_unlink.c — a replica deleted in another deployment leaves the
 * related keys of this one (mrk_peer.h, docs/REGIONS.md "Across
 * deployments").
 *
 * "When the last replica key in the multi-Region key is deleted, the
 * KeyState of the scheduled primary key changes from
 * PendingReplicaDeletion to PendingDeletion" (KeyMetadata,
 * https://docs.aws.amazon.com/kms/latest/APIReference/API_KeyMetadata.html).
 * Within one deployment the replica's deletion changes its related keys
 * in its own transaction (kms_mrk_unlink_replica); a related key another
 * deployment holds hears of it here, from the outbox record written in
 * that transaction.
 */
#include "kms/mrk_peer.h"

#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "kms/store.h"
#include "core/banned.h"

static bool is_primary_doc(json_t *doc)
{
	json_t *cfg = json_object_get(doc, "MultiRegionConfiguration");
	const char *t = json_string_value(json_object_get(cfg, "MultiRegionKeyType"));
	return t != NULL && strcmp(t, "PRIMARY") == 0;
}

/*
 * A primary here sends its new set of related keys on to the other peer
 * Regions (a SynchronizeKeyIn each, through the outbox), so that every
 * deployment converges even if the deleting one could not tell them all.
 */
static K_MUST_CHECK k_status send_on(struct kms_mrk_write *w, const char *gone)
{
	size_t n = w->n;
	for (size_t i = 0; i < n; i++) {
		if (w->keys[i] == NULL || w->ops[i].kind == NULL ||
		    strcmp(w->ops[i].kind, "key") != 0)
			continue;
		json_t *doc = json_loads(w->texts[i], 0, NULL);
		k_status rc = K_OK;
		if (is_primary_doc(doc))
			rc = kms_mrk_peer_enqueue(w->keys[i],
						  json_object_get(doc, "MultiRegionConfiguration"),
						  gone, w);
		json_decref(doc);
		GUARD(rc);
	}
	return K_OK;
}

/*
 * "SynchronizeMultiRegionKey ... cross-Region calls to copy the shared
 * properties of a multi-Region primary key to its replica keys"
 * (https://docs.aws.amazon.com/kms/latest/developerguide/ct-synchronize-multi-region-key.html):
 * each key here whose set of related keys changed records one in its
 * Region, the deleted replica's Region in its details.
 */
static K_MUST_CHECK k_status record(const struct kms_mrk_write *w, size_t n, const char *gone)
{
	k_status rc = K_OK;
	for (size_t i = 0; i < n; i++) {
		if (w->keys[i] == NULL)
			continue;
		json_t *d = json_pack("{s:s, s:s}", "keyId", w->keys[i]->arn,
				      "deletedReplicaRegion", gone);
		k_status one =
			kms_key_service_event(w->keys[i], "SynchronizeMultiRegionKey", d, K_OK);
		json_decref(d);
		if (k_failed(one))
			rc = one;
	}
	return rc;
}

/*
 * KinkoPeer.ReplicaDeletedIn: {"KeyId"; "ReplicaRegion": the Region,
 * served by the calling deployment, whose replica was deleted}. Removes
 * that replica from the configuration of every related key here (the
 * key of this Region and the ones it names), starts the waiting period
 * of a primary in PendingReplicaDeletion that has no replica left, and
 * sends the change on from a primary here; all in one transaction.
 * Idempotent: a repeat finds nothing to change. Answers {"KeyId"}.
 */
k_status kms_mrk_op_replica_deleted_in(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *id = json_string_value(json_object_get(in, "KeyId"));
	const char *gone = json_string_value(json_object_get(in, "ReplicaRegion"));
	if (!kms_mrk_id_valid(id) || gone == NULL)
		return api_fail(c, K_E_VALIDATION, "KeyId and ReplicaRegion are required.");
	if (strcmp(gone, c->region) == 0 || !kms_mrk_region_is_peer(gone))
		return api_fail(c, K_E_VALIDATION,
				"The Region %s is not served by another deployment.", gone);
	struct kms_key *k = NULL;
	k_status rc = kms_key_get(c->ns, id, &k);
	if (k_is(rc, K_E_NOT_FOUND))
		return api_fail(c, K_E_NOT_FOUND, "Key '%s' does not exist", id);
	GUARD(rc);
	struct kms_mrk_write *w = kms_mrk_write_new();
	ENSURE_GOTO(w != NULL, K_E_INTERNAL);
	if (!kms_key_is_mrk(k)) {
		rc = api_fail(c, K_E_UNSUPPORTED, "%s is not a multi-Region key.", k->arn);
		goto out;
	}
	GUARD_GOTO(kms_mrk_unlink_region(k, gone, true, c->now, KMS_DELETE_TASK, w));
	size_t changed = w->n;
	json_object_set_new(out, "KeyId", json_string(k->arn));
	if (changed == 0)
		goto out; /* a repeat */
	GUARD_GOTO(send_on(w, gone));
	GUARD_GOTO(storage_apply(kms_store(), w->ops, w->n));
	for (size_t i = 0; i < changed; i++) {
		if (w->keys[i] != NULL)
			kms_cache_forget(w->keys[i]->ns, w->keys[i]->id);
	}
	LOG_INFO("mrk: the replica of %s in %s was deleted there; it left the related keys here",
		 k->arn, gone);
	rc = record(w, changed, gone);
out:
	kms_mrk_write_free(w);
	kms_key_unref(k);
	return rc;
}
