/*
 * xks_keys.h — KMS keys in external key stores (Origin
 * EXTERNAL_KEY_STORE), for the files of kms/ only.
 *
 * Such a key has two layers of material: kinko's own (AES-256, generated
 * at CreateKey and kept wrapped under the root key, keystore/xks.h) and
 * the external key, which only the store's XKS proxy uses (kms/xks_link.h).
 * Every ciphertext is sealed under both, as AWS's double encryption does:
 * kinko's layer is an ordinary format-1 blob bound to the encryption
 * context, which the proxy then encrypts with AES-GCM under the external
 * key, with an AAD binding the blob's header and the context's digest.
 * The result is a format-2 blob (docs/CIPHERTEXT.md). A copy of kinko's
 * store cannot open it without the proxy, nor the proxy without kinko.
 *
 * Failures of the proxy answer as AWS documents for cryptographic
 * operations: KMSInvalidStateException, with the cause (the Xks* exception
 * AWS names for it) in the message; a ciphertext the proxy refuses to
 * authenticate is InvalidCiphertextException.
 */
#ifndef KINKO_KMS_XKS_KEYS_H
#define KINKO_KMS_XKS_KEYS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"
#include "kms/kms.h"
#include "req/req.h"

#define KMS_XKS_BLOB_VERSION 0x02 /* the format byte of a double-encrypted blob */

/*
 * CreateKey in an EXTERNAL_KEY_STORE store `doc` (id store_id), the rest
 * of the request checked: the store is CONNECTED, no key of the store has
 * xks_key_id yet (XksKeyAlreadyInUseException), and the proxy describes
 * the external key as an ENABLED AES_256 key for ENCRYPT and DECRYPT
 * (XksKeyNotFoundException, XksKeyInvalidConfigurationException). Answers
 * through api_fail.
 */
K_MUST_CHECK k_status kms_xks_check_new_key(struct api_ctx *c, const char *store_id, json_t *doc,
					    const char *xks_key_id);
/*
 * Generates kinko's layer of the new key and records the key in doc:
 * "KeyStore", "CustomKeyStoreId", "XksKeyConfiguration" and "Materials".
 */
K_MUST_CHECK k_status kms_xks_generate(struct api_ctx *c, json_t *doc, const char *store_id,
				       const char *xks_key_id);

/* True for a key of an external key store. */
bool kms_key_is_xks(const struct kms_key *k);
/* False while the store of such a key is not CONNECTED (the key is Unavailable). */
bool kms_xks_key_available(const struct kms_key *k);

/*
 * Encrypt under such a key: pt (canonical context ectx) sealed under both
 * layers, the format-2 blob appended to out.
 */
K_MUST_CHECK k_status kms_xks_encrypt(struct api_ctx *c, const struct kms_key *k,
				      struct kslice ectx, struct kslice pt, struct kbuf *out);
/* GenerateDataKey: dk filled with random bytes (wiped on failure), sealed as kms_xks_encrypt. */
K_MUST_CHECK k_status kms_xks_generate_data_key(struct api_ctx *c, const struct kms_key *k,
						struct kslice ectx, struct ksecret *dk,
						struct kbuf *out);
/*
 * Decrypt a format-2 blob of k: both layers opened, the plaintext appended
 * to pt. InvalidCiphertextException for a blob that is not one of k's or
 * does not authenticate (a wrong context included).
 */
K_MUST_CHECK k_status kms_xks_decrypt(struct api_ctx *c, const struct kms_key *k,
				      struct kslice ectx, struct kslice blob, struct kbuf *pt);

/* ---- the format-2 blob (xks_blob.c) ---- */

struct kms_xks_blob {
	uint8_t key_id[16];
	uint32_t version;     /* kinko's material version */
	struct kslice header; /* bytes 0..22: magic, format, key id, version */
	struct kslice iv;     /* the proxy's IV: 12 or 16 bytes */
	struct kslice meta;   /* the proxy's ciphertextMetadata: 0 to 20 bytes */
	struct kslice tag;    /* the proxy's tag: 16 bytes */
	struct kslice sealed; /* the proxy's ciphertext of kinko's format-1 blob */
};
#define KMS_XKS_BLOB_HEADER_LEN 22

/* True when a ciphertext blob claims format 2 (its second byte). */
bool kms_xks_blob_claims(struct kslice in);
/* Parses a format-2 blob (slices into `in`). K_E_INVALID_CIPHERTEXT if it is not one. */
K_MUST_CHECK k_status kms_xks_blob_parse(struct kslice in, struct kms_xks_blob *out);

#endif
