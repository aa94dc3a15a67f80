/*
 * aead.c — AES-256-GCM under a derived key, IV and tag apart (aead.h).
 */
#include "crypto/aead.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "crypto/internal.h"
#include "core/banned.h"

/* The GCM key for (material, label): HKDF-SHA256 with an empty salt. */
static K_MUST_CHECK k_status derive(const struct ksecret *material, struct kslice label,
				    uint8_t key[CRYPTO_KEY_LEN])
{
	ENSURE(material != NULL && ksecret_len(material) == CRYPTO_KEY_LEN, K_E_INTERNAL);
	return crypto_hkdf_sha256(kslice_make(ksecret_cbytes(material), CRYPTO_KEY_LEN),
				  kslice_make(NULL, 0), label, key, CRYPTO_KEY_LEN);
}

k_status crypto_aead_seal(const struct ksecret *material, struct kslice label, struct kslice aad,
			  struct kslice pt, uint8_t iv[CRYPTO_AEAD_IV_LEN], struct kbuf *ct,
			  uint8_t tag[CRYPTO_AEAD_TAG_LEN])
{
	uint8_t key[CRYPTO_KEY_LEN];
	size_t base = ct->len;
	ENSURE(ct->max - ct->len >= pt.len + CRYPTO_AEAD_TAG_LEN, K_E_VALIDATION);
	GUARD(crypto_nonce(iv, CRYPTO_AEAD_IV_LEN));
	k_status rc = derive(material, label, key);
	/* crypto_gcm_seal appends ciphertext || tag; the tag is moved out after. */
	if (k_ok(rc))
		rc = crypto_gcm_seal(key, iv, aad, kslice_make(NULL, 0), pt.ptr, pt.len, ct);
	OPENSSL_cleanse(key, sizeof key);
	if (k_failed(rc))
		return rc;
	memcpy(tag, ct->ptr + base + pt.len, CRYPTO_AEAD_TAG_LEN);
	crypto_kbuf_truncate(ct, base + pt.len);
	return K_OK;
}

k_status crypto_aead_open(const struct ksecret *material, struct kslice label, struct kslice iv,
			  struct kslice aad, struct kslice ct, struct kslice tag, struct kbuf *pt)
{
	uint8_t key[CRYPTO_KEY_LEN];
	uint8_t *stage = NULL;
	ENSURE(iv.len == CRYPTO_AEAD_IV_LEN && tag.len == CRYPTO_AEAD_TAG_LEN,
	       K_E_INVALID_CIPHERTEXT);
	ENSURE(pt->max - pt->len >= ct.len, K_E_VALIDATION);
	if (ct.len > 0) {
		stage = malloc(ct.len);
		ENSURE(stage != NULL, K_E_INTERNAL);
	}
	k_status rc = derive(material, label, key);
	if (k_ok(rc))
		rc = crypto_gcm_open(key, iv.ptr, aad, kslice_make(NULL, 0), ct, tag, stage);
	if (k_ok(rc))
		rc = kbuf_append(pt, stage, ct.len);
	OPENSSL_cleanse(key, sizeof key);
	if (stage != NULL) {
		OPENSSL_cleanse(stage, ct.len);
		free(stage);
	}
	return rc;
}
