/*
 * hmac.h — SHA-256 and HMAC-SHA256 on the calling thread's reused OpenSSL
 * contexts, the SigV4 signing key, and byte ranges of a ksecret.
 *
 * Request authentication hashes and MACs several times per request. These
 * functions run on one digest context and one HMAC context per thread,
 * reinitialised for each call, so a call allocates nothing and looks up no
 * algorithm (SHA-256 and HMAC are fetched once per process). Each thread's
 * contexts are made on first use and freed (which wipes them) at thread
 * exit, or now with crypto_hmac_thread_release().
 *
 * Keyed state does not outlive a call: after every HMAC the context is
 * rekeyed with an all-zero key, so neither the key nor a state derived
 * from it stays in OpenSSL's heap between calls.
 *
 * The range functions let a caller keep several keys in one ksecret (a
 * table of cached keys, say) and use them without reading the bytes
 * itself: only crypto/ and keystore/ touch key material.
 */
#ifndef KINKO_CRYPTO_HMAC_H
#define KINKO_CRYPTO_HMAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

#define CRYPTO_HMAC_LEN 32

/*
 * SHA-256 of p[0..n) into out on the thread's digest context (p may be
 * NULL when n is 0). The same result as crypto_sha256(), without its
 * per-call context and lookup. K_E_INTERNAL on failure.
 */
K_MUST_CHECK k_status crypto_thread_sha256(const void *p, size_t n, uint8_t out[32]);

/*
 * HMAC-SHA256 of data keyed with bytes [off, off + len) of `key`, into
 * out. len must be at least 1 and the range inside the secret
 * (K_E_INTERNAL otherwise, and on any OpenSSL failure).
 */
K_MUST_CHECK k_status crypto_hmac_sha256_at(const struct ksecret *key, size_t off, size_t len,
					    struct kslice data, uint8_t out[CRYPTO_HMAC_LEN]);

/*
 * The AWS Signature Version 4 signing key for a secret access key and a
 * credential scope, written into bytes [off, off + 32) of `out`:
 *   kDate    = HMAC("AWS4" + secret, date)
 *   kRegion  = HMAC(kDate, region)
 *   kService = HMAC(kRegion, service)
 *   kSigning = HMAC(kService, "aws4_request")
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 * "AWS4" + secret is assembled in a temporary ksecret and the intermediate
 * keys on the stack; all are wiped before returning. The strings are
 * NUL-terminated. K_E_INTERNAL on failure (an empty secret, a range
 * outside `out`, OpenSSL), the range of `out` wiped then.
 */
#define CRYPTO_SIGV4_KEY_LEN 32
K_MUST_CHECK k_status crypto_sigv4_signing_key(const struct ksecret *secret, const char *date,
					       const char *region, const char *service,
					       struct ksecret *out, size_t off);

/*
 * A fingerprint of a secret, SHA-256 of its bytes (on the thread's digest
 * context): tells whether a secret changed without keeping it. Treat it
 * as secret too (wipe it after use). K_E_INTERNAL on failure.
 */
#define CRYPTO_FINGERPRINT_LEN 32
K_MUST_CHECK k_status crypto_secret_fingerprint(const struct ksecret *s,
						uint8_t out[CRYPTO_FINGERPRINT_LEN]);

/*
 * Whether bytes [off, off + n) of s equal p[0..n), compared in constant
 * time (the time depends on n only). false when the range is outside s.
 */
bool crypto_secret_eq_at(const struct ksecret *s, size_t off, const uint8_t *p, size_t n);

/* Copies p[0..n) into bytes [off, off + n) of s. K_E_INTERNAL if the range is outside s. */
K_MUST_CHECK k_status crypto_secret_write_at(struct ksecret *s, size_t off, const uint8_t *p,
					     size_t n);

/* Wipes bytes [off, off + n) of s; does nothing if the range is outside s. */
void crypto_secret_wipe_at(struct ksecret *s, size_t off, size_t n);

/*
 * Frees (and so wipes) the calling thread's contexts now rather than at
 * thread exit: for the main thread at shutdown and for tests. The next
 * call makes new ones.
 */
void crypto_hmac_thread_release(void);

#endif
