/*
 * kms.h — the KMS service: key records, the in-memory key cache, and the
 * operation handlers (registered with api/ as the "TrentService." table).
 *
 * A key lives in storage as one JSON document (kind "key", ns
 * "ACCOUNT:REGION", id = key UUID) holding its metadata and its wrapped
 * backing-key material versions. In memory a key is an immutable,
 * reference-counted snapshot (struct kms_key) with its material already
 * unwrapped into ksecret memory, so a crypto request touches no storage.
 * A change is a new document written with a version precondition, then a
 * new snapshot swapped into the cache; readers holding the old snapshot
 * finish with it undisturbed.
 */
#ifndef KINKO_KMS_KMS_H
#define KINKO_KMS_KMS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "api/api.h"
#include "core/result.h"
#include "core/secret.h"
#include "storage/storage.h"

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

/* Unwrapped backing-key material versions, shared between snapshots. */
struct kms_material {
	atomic_int refs;
	uint32_t n;                 /* versions 1..n */
	struct ksecret *v[];        /* v[i] is version i+1 */
};

struct kms_key {
	atomic_int refs;
	char id[37];
	char arn[160];
	char ns[64];
	uint8_t uuid[16];
	json_t *doc;                /* the stored document (no plaintext material) */
	int64_t version;            /* storage version of doc */
	enum kms_key_state state;
	const char *spec;           /* points into doc */
	const char *usage;          /* points into doc */
	struct kms_material *mat;   /* NULL for keys without local material */
};

/* Sets the store the KMS service uses and registers its operation table. */
void kms_init(struct storage *st);
void kms_shutdown(void);
/* Registers the KMS operation table with the dispatcher. */
void kms_register(void);
struct storage *kms_storage(void);

void kms_key_unref(struct kms_key *k);
const char *kms_state_name(enum kms_key_state s);
enum kms_key_state kms_state_parse(const char *s);

/*
 * Resolves a KeyId member (key id, key ARN, alias name, alias ARN) in the
 * caller's namespace and returns a referenced snapshot. NotFoundException
 * with AWS's message when it does not resolve. `allow_alias` is false for
 * the operations whose KeyId may not be an alias.
 */
K_MUST_CHECK k_status kms_resolve_key(struct api_ctx *c, const char *key_id, bool allow_alias,
				      struct kms_key **out);
/* Looks a key up by its UUID in a namespace (cache first, then storage). */
K_MUST_CHECK k_status kms_key_get(const char *ns, const char *id, struct kms_key **out);

/*
 * Writes a changed document for a key (precondition: the snapshot's
 * version) and replaces the cached snapshot. `mat` is the material of the
 * new snapshot (NULL: keep the current one). On K_OK *out (if non-NULL)
 * receives a reference to the new snapshot. Takes ownership of newdoc.
 */
K_MUST_CHECK k_status kms_key_update(struct kms_key *k, json_t *newdoc, struct kms_material *mat,
				     struct kms_key **out);
/* Drops a key from the cache (after deletion, or on an external change). */
void kms_cache_forget(const char *ns, const char *id);
/* Empties the cache (test-mode reset). */
void kms_cache_clear(void);

/* Builds a snapshot from a stored document (unwraps its material). */
K_MUST_CHECK k_status kms_key_from_doc(const char *ns, json_t *doc, int64_t version,
				       struct kms_key **out);

struct kms_material *kms_material_new(uint32_t n);
void kms_material_unref(struct kms_material *m);

/*
 * Wraps a material version for storage; the AAD binds it to the key ARN
 * and version. The result is base64 text.
 */
K_MUST_CHECK k_status kms_wrap_material(const char *arn, uint32_t version, const struct ksecret *m,
					struct kbuf *b64_out);

/*
 * The key-state rule for using a key in a cryptographic operation:
 * Enabled passes; Disabled -> DisabledException; every other state ->
 * KMSInvalidStateException, with AWS's messages.
 */
K_MUST_CHECK k_status kms_require_enabled(struct api_ctx *c, const struct kms_key *k);

/* The KeyMetadata structure of DescribeKey / CreateKey. */
json_t *kms_key_metadata(const struct kms_key *k);

/* "arn:aws:kms:REGION:ACCOUNT:key/ID" */
void kms_key_arn(const struct api_ctx *c, const char *id, char *out, size_t n);

/* Validates a Tags list (count, lengths, reserved "aws:" prefix). */
K_MUST_CHECK k_status kms_validate_tags(struct api_ctx *c, json_t *tags);
/* Checks that a key policy is a JSON policy document. */
K_MUST_CHECK k_status kms_validate_policy_text(struct api_ctx *c, const char *policy);

/* Handlers (one file per group). */
k_status kms_op_create_key(struct api_ctx *c, json_t *in, json_t *out);
k_status kms_op_describe_key(struct api_ctx *c, json_t *in, json_t *out);
k_status kms_op_list_keys(struct api_ctx *c, json_t *in, json_t *out);
k_status kms_op_encrypt(struct api_ctx *c, json_t *in, json_t *out);
k_status kms_op_decrypt(struct api_ctx *c, json_t *in, json_t *out);
k_status kms_op_re_encrypt(struct api_ctx *c, json_t *in, json_t *out);
k_status kms_op_generate_data_key(struct api_ctx *c, json_t *in, json_t *out);
k_status kms_op_generate_data_key_without_plaintext(struct api_ctx *c, json_t *in, json_t *out);
k_status kms_op_generate_random(struct api_ctx *c, json_t *in, json_t *out);

#endif
