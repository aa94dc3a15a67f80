/*
 * wrap.c — key material at rest, encrypted under the root key.
 *
 * Format: iv (12 random bytes) || AES-256-GCM ciphertext || tag (16).
 * The AAD is the caller's (the key's ARN and backing-key version), so a
 * wrapped key copied onto another key's row, or another version, does not
 * unwrap. A wrap happens once per key creation, rotation or import, so one
 * root key sees far fewer than the 2^32 random IVs GCM allows under a
 * single key, and no per-message derivation is needed here.
 */
#include "crypto/crypto.h"
#include "crypto/internal.h"

#include <openssl/crypto.h>

#include "core/banned.h"

k_status crypto_wrap(const struct ksecret *root, struct kslice aad, const struct ksecret *material,
		     struct kbuf *out)
{
	k_status rc = K_E_INTERNAL;
	uint8_t iv[CRYPTO_WRAP_IV_LEN];
	size_t base = out->len;

	ENSURE(root != NULL && ksecret_len(root) == CRYPTO_KEY_LEN, K_E_INTERNAL);
	ENSURE(material != NULL, K_E_INTERNAL);
	ENSURE(aad.ptr != NULL || aad.len == 0, K_E_INTERNAL);
	ENSURE(out->max - out->len >= CRYPTO_WRAP_OVERHEAD &&
		       out->max - out->len - CRYPTO_WRAP_OVERHEAD >= ksecret_len(material),
	       K_E_VALIDATION);
	GUARD(crypto_nonce(iv, sizeof iv));
	GUARD_GOTO(kbuf_append(out, iv, sizeof iv));
	/* Material goes from locked memory straight into the cipher; see crypto_gcm_seal. */
	GUARD_GOTO(crypto_gcm_seal(ksecret_cbytes(root), iv, aad, kslice_make(NULL, 0),
				   ksecret_cbytes(material), ksecret_len(material), out));
	rc = K_OK;
out:
	if (k_failed(rc))
		crypto_kbuf_truncate(out, base);
	return rc;
}

/*
 * The material is decrypted directly into a new ksecret, so it never sits
 * in ordinary memory. A wrong root key, wrong AAD or damaged record are all
 * K_E_INTERNAL: a record kinko wrote itself that no longer unwraps is a
 * server fault, not a client error.
 */
k_status crypto_unwrap(const struct ksecret *root, struct kslice aad, struct kslice wrapped,
		       struct ksecret **out)
{
	k_status rc = K_E_INTERNAL;
	struct ksecret *s = NULL;
	size_t n;

	ENSURE(root != NULL && ksecret_len(root) == CRYPTO_KEY_LEN, K_E_INTERNAL);
	ENSURE(out != NULL, K_E_INTERNAL);
	ENSURE(aad.ptr != NULL || aad.len == 0, K_E_INTERNAL);
	/* A ksecret holds at least one byte, so an empty payload is malformed. */
	ENSURE(wrapped.ptr != NULL && wrapped.len > CRYPTO_WRAP_OVERHEAD, K_E_INTERNAL);
	n = wrapped.len - CRYPTO_WRAP_OVERHEAD;
	s = ksecret_new(n);
	ENSURE(s != NULL, K_E_INTERNAL);
	GUARD_GOTO(
		crypto_gcm_open(ksecret_cbytes(root), wrapped.ptr, aad, kslice_make(NULL, 0),
				kslice_make(wrapped.ptr + CRYPTO_WRAP_IV_LEN, n),
				kslice_make(wrapped.ptr + CRYPTO_WRAP_IV_LEN + n, CRYPTO_TAG_LEN),
				ksecret_bytes(s)));
	*out = s;
	s = NULL;
	rc = K_OK;
out:
	ksecret_free(s);
	if (k_failed(rc))
		rc = K_E_INTERNAL;
	return rc;
}

k_status crypto_check_value(const struct ksecret *key, uint8_t out[CRYPTO_CHECK_VALUE_LEN])
{
	static const char info[] = "kinko/v1/key-check-value";
	ENSURE(key != NULL && ksecret_len(key) == CRYPTO_KEY_LEN, K_E_INTERNAL);
	return crypto_hkdf_sha256(
		kslice_make(ksecret_cbytes(key), ksecret_len(key)), kslice_make(NULL, 0),
		kslice_make((const uint8_t *)info, sizeof info - 1), out, CRYPTO_CHECK_VALUE_LEN);
}
