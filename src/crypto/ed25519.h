/*
 * ed25519.h — Ed25519 (RFC 8032, pure: the message itself is signed)
 * through OpenSSL 3's EVP API, for keys that kinko holds for itself (the
 * audit digest key), not for KMS keys (those are asym.h's).
 *
 * A key is immutable once made and may be used by any number of threads
 * at once: every signature or verification makes its own context.
 */
#ifndef KINKO_CRYPTO_ED25519_H
#define KINKO_CRYPTO_ED25519_H

#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

#define CRYPTO_ED25519_SEED_LEN 32
#define CRYPTO_ED25519_PUBLIC_LEN 32
#define CRYPTO_ED25519_SIG_LEN 64

/* A private key, or a public key only (opaque). */
struct crypto_ed25519;

/*
 * The private key whose 32-byte seed (RFC 8032's private key) is in seed.
 * *out is owned by the caller (crypto_ed25519_free). K_E_INTERNAL if seed
 * is not 32 bytes or OpenSSL fails; *out untouched then.
 */
K_MUST_CHECK k_status crypto_ed25519_from_seed(const struct ksecret *seed,
					       struct crypto_ed25519 **out);
/*
 * The public key in a PEM "PUBLIC KEY" block (SubjectPublicKeyInfo), the
 * form crypto_ed25519_public_pem writes. K_E_VALIDATION if the text holds
 * no public key. A PEM of another kind of public key is loaded as it is
 * (OpenSSL's PEM reader takes any): its raw public key cannot be read and
 * no Ed25519 signature verifies under it.
 */
K_MUST_CHECK k_status crypto_ed25519_from_pem(const char *pem, struct crypto_ed25519 **out);
void crypto_ed25519_free(struct crypto_ed25519 *k);

/* The 32-byte public key. K_E_INTERNAL if the key is not an Ed25519 key. */
K_MUST_CHECK k_status crypto_ed25519_public_raw(const struct crypto_ed25519 *k,
						uint8_t out[CRYPTO_ED25519_PUBLIC_LEN]);
/* Appends the public key as a PEM "PUBLIC KEY" block (with its final newline) to out. */
K_MUST_CHECK k_status crypto_ed25519_public_pem(const struct crypto_ed25519 *k, struct kbuf *out);

/* Signs msg with a private key: 64 bytes into sig. K_E_INTERNAL on failure. */
K_MUST_CHECK k_status crypto_ed25519_sign(const struct crypto_ed25519 *k, struct kslice msg,
					  uint8_t sig[CRYPTO_ED25519_SIG_LEN]);
/*
 * Verifies sig over msg; *valid is false for a signature that does not
 * verify or is malformed (that is not an error). K_E_INTERNAL only when
 * no check could be run (out of memory).
 */
K_MUST_CHECK k_status crypto_ed25519_verify(const struct crypto_ed25519 *k, struct kslice msg,
					    struct kslice sig, bool *valid);

#endif
