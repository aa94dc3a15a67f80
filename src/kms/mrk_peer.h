/*
 * mrk_peer.h — multi-Region keys across deployments (kms/ only;
 * docs/REGIONS.md "Across deployments").
 *
 * A Region the configuration's "peers" section names (config/peers.h) is
 * served by another kinko deployment. There, a replica is created by the
 * peer itself: ReplicateKey sends it the replica's document and the
 * key's material sealed for the peer's pinned wrapping key
 * (keystore/peer.h) in one signed request to its KinkoPeer.ReplicateKeyIn
 * operation; the primary records the replica once the peer has answered.
 *
 * Later changes of the shared properties (a rotation's new material, the
 * set of related keys) reach the peer through an outbox: a record per
 * (peer Region, key), written in the same transaction as the change, that
 * a background worker sends (KinkoPeer.SynchronizeKeyIn) with retries and
 * backoff until the peer acknowledges, and then deletes. A peer that was
 * down catches up when it answers again; the receiving side is idempotent
 * (it keeps the versions it has and adds the newer ones).
 */
#ifndef KINKO_KMS_MRK_PEER_H
#define KINKO_KMS_MRK_PEER_H

#include "kms/multiregion.h"

/* The outbox's records: kind, namespace; the id is "REGION|NS|KEYID". */
#define KMS_MRK_OUTBOX_KIND "mrk-outbox"
#define KMS_MRK_OUTBOX_NS ""

/* The peer operations' target prefix on the normal API port. */
#define KMS_PEER_TARGET_PREFIX "KinkoPeer."

/* True if region is served by a peer deployment. */
bool kms_mrk_region_is_peer(const char *region);

/*
 * ReplicateKey to a peer's Region: the replica document `doc` (made as
 * for a local replica, MultiRegionConfiguration included; borrowed) and
 * the primary k's material, sealed for the peer, go to the peer; its
 * answer's ReplicaKeyMetadata goes to *meta (a new reference). The
 * caller then records the replica in every related key here.
 */
K_MUST_CHECK k_status kms_mrk_peer_replicate(struct api_ctx *c, struct kms_key *k, json_t *doc,
					     const char *region, json_t **meta);

/*
 * Adds to w an outbox record for every peer Region among k's related keys
 * (ReplicaKeys and PrimaryKey of `cfg`, NULL: k's own), but `skip` (may
 * be NULL): the change w makes reaches them later.
 */
K_MUST_CHECK k_status kms_mrk_peer_enqueue(const struct kms_key *k, json_t *cfg, const char *skip,
					   struct kms_mrk_write *w);

/*
 * A replica's deletion reaches the other deployments (docs/REGIONS.md):
 * adds to w, in the transaction that deletes the replica k, an outbox
 * record marked KMS_MRK_OUTBOX_DELETED for every peer Region among its
 * related keys; the worker sends it as KinkoPeer.ReplicaDeletedIn, where
 * the replica leaves every related key's configuration.
 */
#define KMS_MRK_OUTBOX_DELETED "ReplicaDeleted"
K_MUST_CHECK k_status kms_mrk_peer_enqueue_deleted(const struct kms_key *k,
						   struct kms_mrk_write *w);
/* KinkoPeer.ReplicaDeletedIn, the receiving side (mrk_peer_unlink.c). */
K_MUST_CHECK k_status kms_mrk_op_replica_deleted_in(struct api_ctx *c, json_t *in, json_t *out);
/*
 * Automatic rotation's settings, a shared property set on the primary:
 * its deployment sends them with ReplicateKeyIn's document and every
 * SynchronizeKeyIn, and a replica here keeps them as the document member
 * KMS_MRK_PRIMARY_ROTATION, which GetKeyRotationStatus shows.
 * kms_rotation_settings: k's own, {"KeyRotationEnabled"} and, while on,
 * "RotationPeriodInDays" and "NextRotationDate" (epoch seconds); a new
 * reference, NULL if out of memory. kms_rotation_settings_parse: the same
 * members checked and copied from what a peer sent (a new reference), or
 * NULL when they are missing or out of range (ops_rotation.c).
 */
#define KMS_MRK_PRIMARY_ROTATION "PrimaryRotation"
json_t *kms_rotation_settings(const struct kms_key *k);
json_t *kms_rotation_settings_parse(json_t *in);

/*
 * The SynchronizeMultiRegionKey event of a primary whose shared
 * properties were copied to its replicas (`peer`: the Region of a peer
 * that acknowledged, NULL within this deployment).
 */
K_MUST_CHECK k_status kms_mrk_sync_event(const struct kms_key *k, const char *peer);

/*
 * UpdatePrimaryRegion to `region`, which a peer serves (k: the primary
 * here): the peer makes its replica the primary, then k becomes its
 * replica (mrk_peer_primary.c). An error leaves nothing changed here.
 */
K_MUST_CHECK k_status kms_mrk_peer_update_primary(struct api_ctx *c, struct kms_key *k,
						  const char *region);
/* KinkoPeer.UpdatePrimaryRegionIn, the peer's half of it. */
K_MUST_CHECK k_status kms_peer_op_update_primary_in(struct api_ctx *c, json_t *in, json_t *out);

/* True for a key document with imported material (Origin EXTERNAL). */
bool kms_mrk_is_external(json_t *doc);
/*
 * Sets doc's "MaterialCommitment" to the commitment to k's imported
 * material (mrk_peer_import.c); KMSInvalidStateException when k has none.
 */
K_MUST_CHECK k_status kms_mrk_peer_commit(struct api_ctx *c, const struct kms_key *k, json_t *doc);

/*
 * The peer operations' table (KinkoPeer.*), authorized by "peers.accept";
 * registered only when the configuration has a "peers" section.
 */
const struct api_service *kms_peer_service_table(void);

/*
 * The outbox worker: a thread that sends the outbox's records. start:
 * K_E_INTERNAL if the thread cannot start; stop waits for it. Neither
 * does anything without peer Regions.
 */
K_MUST_CHECK k_status kms_mrk_peer_sync_start(void);
void kms_mrk_peer_sync_stop(void);

/* ---- shared by the mrk_peer*.c files ---- */

/* The AAD of a sealed transfer: purpose, material ARN, the receiving Region. */
K_MUST_CHECK k_status kms_mrk_peer_aad(const char *purpose, const char *material_arn,
				       const char *region, struct kbuf *out);
/*
 * One signed call to the peer of `region`: target "KinkoPeer.OP", body
 * in, the answer's JSON in *answer (a new reference) on a 200. A refusal
 * by the peer is its error code when kinko knows it (AlreadyExists,
 * NotFound, InvalidCiphertext ...), else K_E_INTERNAL; no answer is
 * K_E_DEPENDENCY_TIMEOUT. why gets a one-line reason.
 */
K_MUST_CHECK k_status kms_mrk_peer_call(const char *region, const char *op, json_t *in,
					json_t **answer, struct kbuf *why);
/*
 * Opens the request's EncryptedKeyMaterial (sealed for this deployment's
 * wrapping key, for `purpose` and this Region) into the material list of
 * the key whose material ARN is march ([{Version, Wrapped, Created}], a
 * new reference); InvalidCiphertextException when it does not open.
 */
K_MUST_CHECK k_status kms_mrk_peer_open(struct api_ctx *c, json_t *in, const char *purpose,
					const char *march, json_t *versions, json_t **mats);
/* A key document's material versions without their references ([{Version, Created}]). */
json_t *kms_mrk_peer_versions(json_t *doc);
/*
 * The key's material sealed for the peer of `region`, base64, as a new
 * JSON string; JSON null for imported material, which never travels.
 */
K_MUST_CHECK k_status kms_mrk_peer_sealed(const struct kms_key *k, const char *purpose,
					  const char *region, json_t **out);

#endif
