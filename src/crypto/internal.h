/*
 * internal.h — helpers shared by the files of crypto/ and by nothing else.
 *
 * The algorithm objects are fetched from OpenSSL once per process and kept
 * for its lifetime; a fetched EVP_CIPHER or EVP_MAC is immutable and may be
 * used by any number of threads at once (each call makes its own context,
 * or, for HKDF, uses its thread's own).
 */
#ifndef KINKO_CRYPTO_INTERNAL_H
#define KINKO_CRYPTO_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

#define CRYPTO_GCM_IV_LEN 12

/* AES-256-GCM, fetched on first use; NULL if OpenSSL lacks it. */
const EVP_CIPHER *crypto_aes256gcm(void);

/*
 * HKDF-SHA256 (RFC 5869, hkdf.c): okm_len bytes (1 to 255 * 32) derived
 * from ikm with salt and info; an empty salt means 32 zero bytes, as in
 * the RFC. The result is byte-identical to OpenSSL's EVP_KDF "HKDF" with
 * SHA-256. Runs on the calling thread's HMAC context (no allocation or
 * algorithm fetch per call). K_E_INTERNAL on failure, okm wiped then; the
 * caller wipes okm after use.
 */
K_MUST_CHECK k_status crypto_hkdf_sha256(struct kslice ikm, struct kslice salt, struct kslice info,
					 uint8_t *okm, size_t okm_len);

/*
 * AES-256-GCM encryption of pt[0..pt_len) under key/iv with AAD
 * aad1 || aad2, appending ciphertext || tag to out. K_E_VALIDATION if out
 * cannot grow that far, K_E_INTERNAL otherwise; out is left at its old
 * length on failure.
 */
K_MUST_CHECK k_status crypto_gcm_seal(const uint8_t key[32], const uint8_t iv[CRYPTO_GCM_IV_LEN],
				      struct kslice aad1, struct kslice aad2, const uint8_t *pt,
				      size_t pt_len, struct kbuf *out);

/*
 * AES-256-GCM decryption of ct (tag: 16 bytes) into dst[0..ct.len).
 * K_E_INVALID_CIPHERTEXT if the tag does not verify, K_E_INTERNAL if
 * OpenSSL fails; on any failure dst is wiped, so no unauthenticated
 * plaintext survives.
 */
K_MUST_CHECK k_status crypto_gcm_open(const uint8_t key[32], const uint8_t iv[CRYPTO_GCM_IV_LEN],
				      struct kslice aad1, struct kslice aad2, struct kslice ct,
				      struct kslice tag, uint8_t *dst);

/*
 * Cuts b back to len bytes, wiping what is cut. buf.h has no truncation,
 * and the encrypt paths need one to undo a half-written append.
 */
void crypto_kbuf_truncate(struct kbuf *b, size_t len);

/*
 * A new private key for spec as PKCS#8 (asym.c), never one from the pool:
 * what asym_generate does when the pool has none, and how the pool fills.
 * An RSA generation ends early, failing with K_E_INTERNAL, once *stop
 * (NULL: never) is true.
 */
K_MUST_CHECK k_status asym_generate_new(const char *spec, const atomic_bool *stop,
					struct ksecret **pkcs8_out);

#endif
