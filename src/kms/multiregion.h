/*
 * multiregion.h — multi-Region keys within one deployment (kms/ only).
 *
 * Multi-Region keys are interoperable KMS keys in different Regions with
 * the same key id and key material
 * (https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-overview.html).
 * Here a Region is a namespace of the one store ("ACCOUNT:REGION"), so the
 * related keys of a multi-Region key are the documents with the same key
 * id ("mrk-" and 32 hex digits) in the namespaces of the account's
 * Regions. Every related document carries the whole
 * "MultiRegionConfiguration" (its own MultiRegionKeyType, the PrimaryKey,
 * every ReplicaKey), and every change that touches more than one of them
 * (ReplicateKey, UpdatePrimaryRegion, a rotation, a replica's deletion) is
 * one storage transaction with each document's version as precondition.
 *
 * The material: the related keys share their material references. A
 * multi-Region key's material is bound to "MaterialArn", its key ARN
 * without the Region, in place of its key ARN (kms_doc_material_arn), so
 * the references the key store gives one related key open in all of them
 * and a ciphertext made under one decrypts under any other.
 */
#ifndef KINKO_KMS_MULTIREGION_H
#define KINKO_KMS_MULTIREGION_H

#include "kms/kms.h"
#include "scheduler/scheduler.h"

/* The most related keys of one multi-Region key (primary and replicas). */
#define KMS_MRK_MAX_RELATED 16

/* True for a multi-Region key id ("mrk-" and 32 lower-case hex digits). */
bool kms_mrk_id_valid(const char *id);
/* The 16 bytes a ciphertext blob names for a multi-Region key id (valid ids only). */
bool kms_mrk_id_bytes(const char *id, uint8_t out[16]);

/*
 * The ARN a key's material is bound to in its key store: "MaterialArn"
 * of a multi-Region key, else its "Arn". Borrowed from doc.
 */
const char *kms_doc_material_arn(json_t *doc);

/* True if the key is a multi-Region key, a replica of one. */
bool kms_key_is_mrk(const struct kms_key *k);
bool kms_key_is_mrk_replica(const struct kms_key *k);
/* True for a multi-Region primary key that has replica keys. */
bool kms_key_has_replicas(const struct kms_key *k);

/*
 * CreateKey's MultiRegion member: K_OK, or AWS's refusal of a multi-Region
 * key in a custom key store.
 */
K_MUST_CHECK k_status kms_mrk_check_create(struct api_ctx *c, bool multi_region, const char *origin,
					   const char *store_id);
/* A new key id: "mrk-" and 32 random hex digits for a multi-Region key, else a UUID. */
void kms_mrk_new_key_id(bool multi_region, char out[37]);
/* Marks a new key document as a multi-Region primary key with no replicas. */
K_MUST_CHECK k_status kms_mrk_make_primary(const struct api_ctx *c, json_t *doc);

/*
 * The key a symmetric ciphertext blob names (its 16-byte key id) in ns,
 * then in any account of region: the UUID form first, then the
 * multi-Region form. *id receives the id looked up last (for messages).
 * K_E_NOT_FOUND when neither exists.
 */
K_MUST_CHECK k_status kms_key_get_by_blob_id(const char *ns, const char *region,
					     const uint8_t key_id[16], char id[37],
					     struct kms_key **out);

/*
 * A write to several related keys in one transaction: the keys' new
 * documents (PUT with their version as precondition) and any other ops
 * (due records). Strings the ops point to live in the struct.
 */
#define KMS_MRK_MAX_OPS (3 * KMS_MRK_MAX_RELATED + 4)
/* An outbox record's id (mrk_peer.h): "REGION|NS|KEYID". */
#define KMS_MRK_OUTBOX_ID_MAX 160
struct kms_mrk_write {
	size_t n;
	struct storage_op ops[KMS_MRK_MAX_OPS];
	char *texts[KMS_MRK_MAX_OPS];
	struct kms_key *keys[KMS_MRK_MAX_OPS]; /* held so ns and id stay valid */
	char due[4][SCHEDULER_DUE_ID_MAX];
	size_t n_due;
	char outbox[KMS_MRK_MAX_RELATED][KMS_MRK_OUTBOX_ID_MAX]; /* peers' outbox ids */
	size_t n_outbox;
	size_t n_shared; /* replicas here a rotation's material reached (kms_mrk_share_rotation) */
};
/* A write set on the heap (it is large), empty; NULL if out of memory. */
struct kms_mrk_write *kms_mrk_write_new(void);
/* Frees w and what it holds (NULL: nothing). */
void kms_mrk_write_free(struct kms_mrk_write *w);
/* Adds a PUT of doc for k (precondition k's version); takes doc's reference. */
K_MUST_CHECK k_status kms_mrk_write_put(struct kms_mrk_write *w, struct kms_key *k, json_t *doc);
/* Adds a due record PUT or DEL (scheduler.h) for (when, task, ns, id). */
K_MUST_CHECK k_status kms_mrk_write_due(struct kms_mrk_write *w, bool put, int64_t when,
					const char *task, const char *ns, const char *id);

/*
 * The related keys of k other than k itself, each a referenced snapshot
 * (*n of them, at most KMS_MRK_MAX_RELATED); a related key that is gone
 * is skipped. Release with kms_mrk_unref_all.
 */
K_MUST_CHECK k_status kms_mrk_related(const struct kms_key *k, struct kms_key **out, size_t *n);
void kms_mrk_unref_all(struct kms_key **keys, size_t n);

/*
 * Rotation of a primary key: adds to w the PUT of every replica's
 * document with the primary's new "Materials" and "Rotations" (from
 * newdoc), so the new material reaches every replica in the rotation's
 * own transaction (counted in w->n_shared), and an outbox record for
 * each replica another deployment holds (kms/mrk_peer.h).
 */
K_MUST_CHECK k_status kms_mrk_share_rotation(const struct kms_key *k, json_t *newdoc,
					     struct kms_mrk_write *w);

/*
 * ScheduleKeyDeletion of a primary key with replicas
 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html):
 * "If you schedule the deletion of a primary key with replicas, its key
 * state changes to PendingReplicaDeletion and it cannot be replicated or
 * used in cryptographic operations." "If the KMS key is a multi-Region
 * primary key with replica keys, the waiting period begins when the last
 * of its replica keys is deleted." Writes the state and the window
 * (KeyMetadata's PendingDeletionWindowInDays) and fills the answer, which
 * has no DeletionDate.
 */
K_MUST_CHECK k_status kms_mrk_schedule_primary_deletion(struct api_ctx *c, struct kms_key *k,
							int64_t days, json_t *out);
/*
 * A replica's deletion: adds to w the documents of its related keys
 * without it in ReplicaKeys, and for a primary in PendingReplicaDeletion
 * whose last replica this was, its PendingDeletion state, DeletionDate
 * (now + its window) and due record of `task`; and an outbox record for
 * each peer Region among them (kms_mrk_peer_enqueue_deleted).
 */
K_MUST_CHECK k_status kms_mrk_unlink_replica(struct kms_key *k, int64_t now, const char *task,
					     struct kms_mrk_write *w);
/*
 * The same for a replica in `region` that is gone, applied to the keys of
 * this store related to k (and k itself when `self`); a key that does not
 * list region is left as it is, so a repeat adds nothing to w.
 */
K_MUST_CHECK k_status kms_mrk_unlink_region(struct kms_key *k, const char *region, bool self,
					    int64_t now, const char *task, struct kms_mrk_write *w);

/*
 * The imported-material fingerprint the key must match: its own, else a
 * related key's ("the same key material" in every related key). A new
 * reference to the JSON string, or NULL when no related key has imported.
 */
json_t *kms_mrk_fingerprint(const struct kms_key *k);

/* The primary key of a replica (a reference), or K_E_NOT_FOUND. */
K_MUST_CHECK k_status kms_mrk_primary_of(const struct kms_key *k, struct kms_key **out);

/*
 * AWS's default key policy for a key of `account` (ops_keys.c), as JSON
 * text to free with kjson_free; NULL if out of memory.
 */
char *kms_default_key_policy(const char *account);

/* ReplicateKey and UpdatePrimaryRegion (ops_multiregion.c). */
K_MUST_CHECK k_status kms_op_replicate_key(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_update_primary_region(struct api_ctx *c, json_t *in, json_t *out);

#endif
