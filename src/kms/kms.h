/*
 * kms.h — the KMS service: key records, the in-memory key cache, and the
 * operation handlers (registered with api/ as the "TrentService." table).
 *
 * A key lives in storage as one JSON document (kind "key", ns
 * "ACCOUNT:REGION", id = key UUID, or "mrk-" and 32 hex digits for a
 * multi-Region key, kms/multiregion.h) holding its metadata and the
 * references its key store gave for its material versions ("Materials"; for the
 * software store, the material wrapped under the root key). "KeyStore"
 * names the store (absent: the software store, keystore/keyops.h). In
 * memory a key is an immutable, reference-counted snapshot (struct
 * kms_key) holding a handle on its material in that store, opened when
 * the snapshot is made, so a crypto request touches no storage. Handlers
 * ask the handle for operations (keystore_encrypt, keystore_sign, ...)
 * and never see key bytes.
 * A change is a new document written with a version precondition, then a
 * new snapshot swapped into the cache; readers holding the old snapshot
 * finish with it undisturbed. The key and alias caches also listen to the
 * store's change feed (storage.h): a write to a key or alias record, made
 * anywhere, drops the cached entry, and the next use reads the store.
 * A key's policy lives in its document, so it rides with it; its grants
 * are records of their own, cached per key (kms/grants.h).
 */
#ifndef KINKO_KMS_KMS_H
#define KINKO_KMS_KMS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "req/req.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/result.h"
#include "core/secret.h"
#include "keystore/keyops.h"
#include "storage/storage.h"

/*
 * Member limits of the AWS KMS API reference, and the buffers they bound.
 * Plaintext: "Length Constraints: Minimum length of 1. Maximum length of
 * 4096." CiphertextBlob and Signature: "Maximum length of 6144." Message
 * (Sign, Verify, GenerateMac): 4096. PublicKey (DeriveSharedSecret): 8192.
 */
#define KMS_MAX_PLAINTEXT 4096
#define KMS_MAX_CIPHERTEXT 6144
#define KMS_MAX_SIGNATURE 6144
#define KMS_MAX_MESSAGE 4096
#define KMS_MAX_PUBLIC_KEY 8192
/* A ciphertext blob kinko writes (at most KMS_MAX_CIPHERTEXT, with room for the header). */
#define KMS_CIPHERTEXT_BUF 8192
/* One RSA block: RSAES-OAEP's ciphertext or plaintext under RSA-4096 (512 bytes). */
#define KMS_MAX_RSA_BLOCK 512

enum kms_key_state {
	KS_ENABLED,
	KS_DISABLED,
	KS_PENDING_DELETION,
	KS_PENDING_IMPORT,
	KS_UNAVAILABLE,
	KS_CREATING,
	KS_PENDING_REPLICA_DELETION,
	KS_UPDATING,
	KS_UNKNOWN
};

struct kms_key {
	atomic_int refs;
	char id[37];
	char arn[160];
	char ns[64];
	uint8_t uuid[16];
	json_t *doc;	 /* the stored document (no plaintext material) */
	int64_t version; /* storage version of doc */
	enum kms_key_state state;
	const char *spec;  /* points into doc */
	const char *usage; /* points into doc */
	/* The key's material in its store, shared between snapshots; never
	 * NULL. keystore_key_versions() is 0 for a key without material. */
	struct keystore_key *handle;
	/* Authorization: the key policy, parsed once per snapshot (kms/authz.h); may be NULL. */
	struct policy *policy;
};

/*
 * Gives the KMS service its store (kept for the life of the process; the
 * kms/ files reach it through kms/store.h) and subscribes the key and
 * alias caches to its change feed. Call once per store, before serving.
 */
K_MUST_CHECK k_status kms_init(struct storage *st);
/*
 * Moves the grants that older versions kept inside key documents into
 * grant records (kms/grants.h), one transaction per key. Needs kms_init
 * and the root key (it opens the keys). Run once at start, before serving.
 */
K_MUST_CHECK k_status kms_grants_migrate_all(struct storage *st);
/*
 * For tools that read a store of their own (kinko policy simulate): adds
 * the grant records of the key whose document key_doc is, in namespace
 * ns, to the document's "Grants" list (created if missing).
 */
K_MUST_CHECK k_status kms_grants_into_doc(struct storage *st, const char *ns, json_t *key_doc);
void kms_shutdown(void);
/* The KMS operation table, for the pipeline's registry (api_register_service). */
const struct api_service *kms_service_table(void);

void kms_key_unref(struct kms_key *k);
const char *kms_state_name(enum kms_key_state s);
enum kms_key_state kms_state_parse(const char *s);

/*
 * The checked resolver for a key other than the row's (ReEncrypt's
 * destination, an alias's target, a ciphertext's key): resolves a KeyId
 * member (key id, key ARN, alias name, alias ARN) in the caller's
 * namespace (or a key ARN of another account in the region), authorizes
 * the caller with c->authz.action or the row's action, and returns a
 * referenced snapshot. NotFoundException with AWS's message when it does
 * not resolve. `allow_alias` is false for the operations whose KeyId may
 * not be an alias. The caller applies the state rule
 * (kms_check_key_state). kms_key_get below is the unchecked lookup, for
 * kinko's own work (the scheduler, AWS managed keys, a key just created).
 */
K_MUST_CHECK k_status kms_resolve_key(struct api_ctx *c, const char *key_id, bool allow_alias,
				      struct kms_key **out);
/* A referenced snapshot of the key if the cache holds it (no storage read). */
bool kms_key_cached(const char *ns, const char *id, struct kms_key **out);
/* Looks a key up by its UUID in a namespace (cache first, then storage). */
K_MUST_CHECK k_status kms_key_get(const char *ns, const char *id, struct kms_key **out);

/*
 * Writes a changed document for a key (precondition: the snapshot's
 * version) and replaces the cached snapshot. `handle` is the material of
 * the new snapshot (NULL: keep the current one); the call takes its
 * reference, on failure too. On K_OK *out (if non-NULL) receives a
 * reference to the new snapshot. Takes ownership of newdoc.
 */
K_MUST_CHECK k_status kms_key_update(struct kms_key *k, json_t *newdoc, struct keystore_key *handle,
				     struct kms_key **out);
/*
 * Like kms_key_update, and the extra storage ops (due-index records,
 * alias records...) are applied in the same atomic write as the key.
 */
K_MUST_CHECK k_status kms_key_update_ops(struct kms_key *k, json_t *newdoc,
					 struct keystore_key *handle,
					 const struct storage_op *extra, size_t n_extra,
					 struct kms_key **out);
/* Drops a key from the cache (after deletion, or on an external change). */
void kms_cache_forget(const char *ns, const char *id);
/* Empties the cache. */
void kms_cache_clear(void);
/* The change-feed subscribers of the key and the alias cache (storage_change_cb). */
void kms_cache_on_change(void *arg, const struct storage_event *ev);
void kms_alias_cache_on_change(void *arg, const struct storage_event *ev);

/* Builds a snapshot from a stored document (opens its material in its store). */
K_MUST_CHECK k_status kms_key_from_doc(const char *ns, json_t *doc, int64_t version,
				       struct kms_key **out);

/*
 * The key store a key document names ("KeyStore"; absent: the software
 * store). NULL, logged, for a store this server does not have.
 */
const struct keystore_ops *kms_doc_store(json_t *doc);

/*
 * The key-state rule for using a key in a cryptographic operation:
 * Enabled passes; Disabled -> DisabledException; every other state ->
 * KMSInvalidStateException, with AWS's messages. The row's own key
 * (c->resource) passed the row's rule in the pipeline and is not checked
 * again.
 */
K_MUST_CHECK k_status kms_require_enabled(struct api_ctx *c, const struct kms_key *k);

/*
 * Sets a base64 blob member from a secret that is the answer (a data key,
 * a private key, a shared secret): api_set_blob without the bytes passing
 * through the handler (ops_crypto.c).
 */
K_MUST_CHECK k_status kms_set_secret_blob(json_t *out, const char *member, const struct ksecret *s);

/* The KeyMetadata structure of DescribeKey / CreateKey. */
json_t *kms_key_metadata(const struct kms_key *k);

/*
 * KMS's dates (CreationDate, DeletionDate, ValidTo, RotationDate, a
 * grant's or alias's CreationDate ...) are epoch seconds with
 * milliseconds, as AWS returns them: kjson_date and kjson_date_seconds
 * (core/json.h), with the request's time from api_now_ms (req/req.h) and
 * scheduled work's from kclock_ms_within (core/clock.h).
 */

/* "arn:aws:kms:REGION:ACCOUNT:key/ID" */
void kms_key_arn(const struct api_ctx *c, const char *id, char *out, size_t n);

/* Validates a Tags list (count, lengths, reserved "aws:" prefix). */
K_MUST_CHECK k_status kms_validate_tags(struct api_ctx *c, json_t *tags);
/* Checks that a key policy is a JSON policy document. */
K_MUST_CHECK k_status kms_validate_policy_text(struct api_ctx *c, const char *policy);

/* Handlers (one file per group). */
K_MUST_CHECK k_status kms_op_create_key(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_describe_key(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_list_keys(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_encrypt(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_decrypt(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_re_encrypt(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_generate_data_key(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_generate_data_key_without_plaintext(struct api_ctx *c, json_t *in,
								 json_t *out);
K_MUST_CHECK k_status kms_op_generate_random(struct api_ctx *c, json_t *in, json_t *out);
/* GetKeyLastUsage (ops_usage.c), read from the audit trail's last-use index */
K_MUST_CHECK k_status kms_op_get_key_last_usage(struct api_ctx *c, json_t *in, json_t *out);

/* AWS managed keys (managed.c) */
/*
 * Finds, or creates on first use, the AWS managed key behind
 * alias/aws/<service> in the caller's namespace (KeyManager "AWS", AWS's
 * description and managed-key policy). Safe when requests race to create
 * it: exactly one key is created. On K_OK *out is a referenced snapshot
 * (release with kms_key_unref).
 */
K_MUST_CHECK k_status kms_managed_key(struct api_ctx *c, const char *service, struct kms_key **out);

/* Lifecycle: aliases, tags, key states, deletion, rotation (ops_aliases.c,
 * ops_tags.c, ops_lifecycle.c, ops_rotation.c) */
/*
 * The alias cache: alias name -> target key id per namespace, sharded,
 * filled from storage on a miss and emptied of an alias by the change
 * feed when its record is written, so resolving an alias on a crypto
 * request reads no storage once warm. K_E_NOT_FOUND if the alias does
 * not exist.
 */
K_MUST_CHECK k_status kms_alias_lookup(const char *ns, const char *name, char target[37]);
/* The longest alias name, "alias/" included. */
#define ALIAS_NAME_MAX 256
/*
 * Reads the alias record (kind "alias") from the store: *doc_out gets the
 * parsed document (TargetKeyId checked present), *version (optional) its
 * version. K_E_NOT_FOUND if there is none.
 */
K_MUST_CHECK k_status kms_alias_read(const char *ns, const char *name, json_t **doc_out,
				     int64_t *version);
/* "The alias/aws/ prefix is reserved for AWS managed keys": no caller may create, change or delete such a name. */
bool kms_alias_reserved(const char *name);
/*
 * The alias index of a key (ops_aliases.c): storage kind of the record
 * (id = key id) listing the names of the key's aliases, written with
 * every alias change so the 50-aliases-per-key quota is checked
 * atomically. Whoever deletes a key deletes its index record with it.
 */
#define KMS_ALIAS_INDEX_KIND "aliasindex"
/*
 * AWS's key-state table (ops_lifecycle.c), as data: for a row's state
 * rule (req/req.h) and the key's state, K_OK or DisabledException /
 * KMSInvalidStateException with AWS's message.
 */
K_MUST_CHECK k_status kms_check_state_rule(struct api_ctx *c, const struct kms_key *k,
					   enum api_state_rule rule);
/*
 * The same with the rule of the operation c->op (the cryptographic rule
 * outside KMS's own rows). kms_require_enabled applies it too. The
 * pipeline has applied it to the row's key already (kms_op_key); handlers
 * use it for a second key.
 */
K_MUST_CHECK k_status kms_check_key_state(struct api_ctx *c, const struct kms_key *k);
/*
 * The key the operation's row names, resolved, authorized with the row's
 * IAM action and checked against its key-state rule by the pipeline
 * before the handler ran (kms_authorize). On K_OK *out holds a new
 * reference (release with kms_key_unref). K_E_INTERNAL for a row that
 * names no key. This is how a handler gets its key: it cannot fetch the
 * row's key any other way.
 */
K_MUST_CHECK k_status kms_op_key(struct api_ctx *c, struct kms_key **out);
/* True for KeyManager "AWS" keys (AWS managed keys). */
bool kms_key_is_aws_managed(const struct kms_key *k);
/*
 * K_OK for a customer managed key; for an AWS managed key the
 * AccessDeniedException AWS gives to any change of it (disable, delete,
 * rotate, tag, describe, policy): use it in every such operation.
 */
K_MUST_CHECK k_status kms_deny_aws_managed(struct api_ctx *c, const struct kms_key *k);
/* Registers the lifecycle's scheduled work (deletions, rotations). */
K_MUST_CHECK k_status kms_lifecycle_init(void);
K_MUST_CHECK k_status kms_op_create_alias(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_update_alias(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_delete_alias(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_list_aliases(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_tag_resource(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_untag_resource(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_list_resource_tags(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_update_key_description(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_enable_key(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_disable_key(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_schedule_key_deletion(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_cancel_key_deletion(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_enable_key_rotation(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_disable_key_rotation(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_get_key_rotation_status(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_rotate_key_on_demand(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_list_key_rotations(struct api_ctx *c, json_t *in, json_t *out);
/* Scheduled work (ops_lifecycle.c / ops_rotation.c), run by the scheduler. */
K_MUST_CHECK k_status kms_run_due_deletions(int64_t now);
K_MUST_CHECK k_status kms_run_due_rotations(int64_t now);
/* Adds a new material version to a key now (rotation); *out the new snapshot. */
K_MUST_CHECK k_status kms_rotate_key(struct kms_key *k, int64_t now, bool on_demand,
				     struct kms_key **out);
/* The due-index task of automatic rotation (scheduler/scheduler.h), shared with managed.c. */
#define KMS_ROTATE_TASK "kms.rotate"
/* The due-index task of scheduled deletion (ops_lifecycle.c), shared with mrk_peer_unlink.c. */
#define KMS_DELETE_TASK "kms.delete"
/*
 * Audit of kinko's own work (glue): writes the "AwsServiceEvent" AWS logs
 * for work KMS does by itself (event "RotateKey", "DeleteKey") with the
 * key as the resource; `details` (borrowed, may be NULL) becomes
 * serviceEventDetails. Defined in ops_lifecycle.c.
 */
K_MUST_CHECK k_status kms_key_service_event(const struct kms_key *k, const char *event_name,
					    json_t *details, k_status outcome);

/* Asymmetric, HMAC, key agreement, imported material (ops_asym.c, ops_import.c) */
/* True for RSA and ECC keys (they have a public key). */
bool kms_key_is_asymmetric(const struct kms_key *k);
/*
 * Encrypt / Decrypt with an RSA ENCRYPT_DECRYPT key (RSAES_OAEP_SHA_1/256):
 * each checks usage, algorithm, limits and DryRun, acts, and fills out.
 * kms_asym_encrypt gets the resolved key; kms_asym_decrypt resolves
 * key_id itself (required for these keys).
 */
K_MUST_CHECK k_status kms_asym_encrypt(struct api_ctx *c, struct kms_key *k, const char *alg,
				       struct kslice pt, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_asym_decrypt(struct api_ctx *c, const char *key_id, const char *alg,
				       struct kslice ct, json_t *in, json_t *out);
/*
 * The same steps without rendering, for ReEncrypt: encrypt appends the
 * ciphertext to ct; decrypt appends the plaintext to pt and on K_OK gives
 * a reference to the key in *key_out.
 */
K_MUST_CHECK k_status kms_asym_encrypt_raw(struct api_ctx *c, struct kms_key *k, const char *alg,
					   struct kslice pt, json_t *in, struct kbuf *ct);
K_MUST_CHECK k_status kms_asym_decrypt_raw(struct api_ctx *c, const char *key_id, const char *alg,
					   struct kslice ct, json_t *in, struct kbuf *pt,
					   struct kms_key **key_out);
/* Registers the expiry of imported key material with the scheduler. */
K_MUST_CHECK k_status kms_import_init(void);
K_MUST_CHECK k_status kms_op_sign(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_verify(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_get_public_key(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_generate_mac(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_verify_mac(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_derive_shared_secret(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_generate_data_key_pair(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_generate_data_key_pair_without_plaintext(struct api_ctx *c, json_t *in,
								      json_t *out);
K_MUST_CHECK k_status kms_op_get_parameters_for_import(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_import_key_material(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_delete_imported_key_material(struct api_ctx *c, json_t *in,
							  json_t *out);

/* Authorization: key policies and grants (ops_policy.c, ops_grants.c; checks in authz.h) */
K_MUST_CHECK k_status kms_op_get_key_policy(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_put_key_policy(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_list_key_policies(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_create_grant(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_list_grants(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_list_retirable_grants(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_retire_grant(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_revoke_grant(struct api_ctx *c, json_t *in, json_t *out);
/* A key by id in any account of a region (Decrypt across accounts); not authorized. */
K_MUST_CHECK k_status kms_key_get_any_account(const char *region, const char *id,
					      struct kms_key **out);
/*
 * Resolves a key without authorizing (grant retirement by token, where
 * the retiring principal is checked by the handler).
 */
K_MUST_CHECK k_status kms_resolve_key_noauth(struct api_ctx *c, const char *key_id,
					     bool allow_alias, struct kms_key **out);

#endif
