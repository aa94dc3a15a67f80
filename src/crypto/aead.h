/*
 * aead.h — plain AES-256-GCM under a key's material, for callers that
 * keep their own ciphertext format (the XKS proxy API's ciphertext,
 * initialization vector and tag, each returned on its own).
 *
 * The material is never the GCM key itself: each use derives a key with
 * HKDF-SHA256(ikm = material, salt = empty, info = label), so that the
 * same material serving kinko's own blobs (crypto.h, per-message keys) and
 * a caller's raw GCM under its label never shares a GCM key between the
 * two. The IV is 12 random bytes per message (crypto_nonce).
 */
#ifndef KINKO_CRYPTO_AEAD_H
#define KINKO_CRYPTO_AEAD_H

#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

#define CRYPTO_AEAD_IV_LEN 12
#define CRYPTO_AEAD_TAG_LEN 16

/*
 * Encrypts pt under the key derived from material (32 bytes) and label,
 * with aad; writes the new IV into iv, appends the ciphertext (pt.len
 * bytes) to ct and writes the tag into tag. ct needs room for the tag as
 * well (it passes through ct): K_E_VALIDATION if ct cannot grow by
 * pt.len + CRYPTO_AEAD_TAG_LEN, K_E_INTERNAL otherwise; ct is unchanged
 * on failure.
 */
K_MUST_CHECK k_status crypto_aead_seal(const struct ksecret *material, struct kslice label,
				       struct kslice aad, struct kslice pt,
				       uint8_t iv[CRYPTO_AEAD_IV_LEN], struct kbuf *ct,
				       uint8_t tag[CRYPTO_AEAD_TAG_LEN]);

/*
 * Decrypts what crypto_aead_seal made, appending the plaintext to pt only
 * once the tag has verified. K_E_INVALID_CIPHERTEXT on any authentication
 * failure (other key, label, AAD, IV, tag or ciphertext) and for an IV or
 * tag of the wrong length; K_E_VALIDATION if pt cannot grow by ct.len;
 * pt is unchanged on failure.
 */
K_MUST_CHECK k_status crypto_aead_open(const struct ksecret *material, struct kslice label,
				       struct kslice iv, struct kslice aad, struct kslice ct,
				       struct kslice tag, struct kbuf *pt);

#endif
