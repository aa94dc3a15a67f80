/*
 * crypto.h — kinko's symmetric cryptography (OpenSSL 3 EVP only).
 *
 * Ciphertext blobs for SYMMETRIC_DEFAULT keys (format in docs/CIPHERTEXT.md):
 *
 *   offset  size  field
 *   0       1     magic 0x4B ('K')
 *   1       1     format version 0x01
 *   2       16    key id (the UUID of the KMS key, binary)
 *   18      4     backing-key version, big endian (1 = first material)
 *   22      16    random nonce
 *   38      n     AES-256-GCM ciphertext
 *   38+n    16    GCM tag
 *
 * Per-message key and IV: HKDF-SHA256(ikm = backing key, salt = nonce,
 * info = "kinko/v1/sym" || header[0..38)) -> 32-byte key || 12-byte IV.
 * AAD = header[0..38) || canonical encryption context.
 * So every message has its own GCM key and the random-IV limit of 2^32
 * messages per key does not apply to the backing key.
 *
 * The canonical encryption context (crypto_ectx_canonical): the pairs
 * sorted by key (bytewise), encoded as
 *   u32be count, then for each pair: u32be keylen, key, u32be vallen, value
 * so {"a":"bc"} and {"ab":"c"} never encode the same. An empty or absent
 * context encodes as the 4 bytes 00 00 00 00.
 *
 * Root-key wrapping (crypto_wrap / crypto_unwrap) protects key material at
 * rest: AES-256-GCM under the root key with a random 12-byte IV and the
 * caller's AAD (the key's ARN and version), output iv || ct || tag.
 */
#ifndef KINKO_CRYPTO_CRYPTO_H
#define KINKO_CRYPTO_CRYPTO_H

#include <jansson.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

#define CRYPTO_BLOB_HEADER_LEN 38
#define CRYPTO_BLOB_OVERHEAD (CRYPTO_BLOB_HEADER_LEN + 16)
#define CRYPTO_BLOB_MAGIC 0x4B
#define CRYPTO_BLOB_VERSION 0x01
#define CRYPTO_KEY_LEN 32     /* backing keys and the root key */
#define CRYPTO_NONCE_LEN 16   /* the blob's random HKDF salt */
#define CRYPTO_TAG_LEN 16     /* GCM tag */
#define CRYPTO_ECTX_MAX 65536 /* largest canonical encryption context */
#define CRYPTO_WRAP_IV_LEN 12
#define CRYPTO_WRAP_OVERHEAD (CRYPTO_WRAP_IV_LEN + CRYPTO_TAG_LEN)

/*
 * Fills p with n bytes from OpenSSL's CSPRNG. K_E_INTERNAL on failure.
 * Use it (or crypto_random_secret) for anything secret.
 */
K_MUST_CHECK k_status crypto_random(uint8_t *p, size_t n);
/*
 * A new secret of n random bytes from OpenSSL's private DRBG (the one
 * OpenSSL keeps for values that must stay secret); NULL on failure.
 */
struct ksecret *crypto_random_secret(size_t n);

/*
 * Fills p with n (at most CRYPTO_NONCE_MAX) random bytes for a PUBLIC
 * value only: a blob nonce, a GCM IV. Never for keys or anything secret.
 * K_E_INTERNAL on failure (or n too large).
 *
 * The bytes come from OpenSSL's CSPRNG through a per-thread pool that one
 * RAND_bytes call refills 4 KiB at a time, which keeps the DRBG call and
 * its fork check off the per-request path. Each byte is served once and
 * wiped from the pool as it is handed out. Fork-safe: a pthread_atfork
 * child handler bumps a generation and every pool inherited from the
 * parent is discarded before its first use in the child, so parent and
 * child never serve the same bytes. A child made by raw clone() or
 * syscall(SYS_fork), which skips the atfork handlers, must not call it.
 * Each thread's pool is wiped and freed when the thread exits.
 */
#define CRYPTO_NONCE_MAX 64
K_MUST_CHECK k_status crypto_nonce(uint8_t *p, size_t n);

/*
 * Canonical encoding of an encryption context (a JSON object of string
 * values, or NULL for none), appended to out. K_E_VALIDATION if ctx is not
 * an object, a value is not a string, or the encoding would pass
 * CRYPTO_ECTX_MAX bytes; out is left unchanged on any failure.
 */
K_MUST_CHECK k_status crypto_ectx_canonical(const json_t *ctx, struct kbuf *out);

struct crypto_blob {
	uint8_t key_id[16];
	uint32_t version;
	uint8_t nonce[16];
	struct kslice header;	  /* bytes 0..38, points into the input */
	struct kslice ciphertext; /* points into the input */
	struct kslice tag;	  /* 16 bytes, points into the input */
};

/* Parses a symmetric blob. K_E_INVALID_CIPHERTEXT if it is not one. */
K_MUST_CHECK k_status crypto_blob_parse(struct kslice in, struct crypto_blob *out);

/*
 * Encrypts plaintext under the 32-byte backing key, appending the whole
 * blob (CRYPTO_BLOB_OVERHEAD + plaintext.len bytes) to out. version must be
 * at least 1. K_E_VALIDATION if out cannot grow that far, K_E_INTERNAL on
 * any other failure; out is left unchanged on failure.
 */
K_MUST_CHECK k_status crypto_sym_encrypt(const struct ksecret *backing, const uint8_t key_id[16],
					 uint32_t version, struct kslice ectx_canonical,
					 struct kslice plaintext, struct kbuf *out);
/*
 * For tests only: crypto_sym_encrypt with the caller's nonce instead of a
 * random one, so that a known-answer test can pin the construction. A
 * repeated nonce repeats the GCM key and IV; production code never calls it.
 */
K_MUST_CHECK k_status crypto_sym_encrypt_with_nonce(const struct ksecret *backing,
						    const uint8_t key_id[16], uint32_t version,
						    struct kslice ectx_canonical,
						    struct kslice plaintext,
						    const uint8_t nonce[16], struct kbuf *out);

/*
 * Decrypts a parsed blob with its backing key, appending the plaintext to
 * out. K_E_INVALID_CIPHERTEXT on any authentication failure (wrong key,
 * wrong context, tampering); out is left unchanged then. K_E_VALIDATION
 * (out unchanged) if out cannot grow by the plaintext's length, K_E_INTERNAL
 * if the backing key is not 32 bytes.
 */
K_MUST_CHECK k_status crypto_sym_decrypt(const struct ksecret *backing,
					 const struct crypto_blob *blob,
					 struct kslice ectx_canonical, struct kbuf *out);

/*
 * Wraps key material under the 32-byte root key (see above), appending
 * CRYPTO_WRAP_OVERHEAD + ksecret_len(material) bytes to out; out is left
 * unchanged on failure.
 */
K_MUST_CHECK k_status crypto_wrap(const struct ksecret *root, struct kslice aad,
				  const struct ksecret *material, struct kbuf *out);
/*
 * Unwraps; *out is a new secret owned by the caller (free it with
 * ksecret_free). K_E_INTERNAL on any failure, authentication included;
 * *out is untouched then.
 */
K_MUST_CHECK k_status crypto_unwrap(const struct ksecret *root, struct kslice aad,
				    struct kslice wrapped, struct ksecret **out);

/*
 * A key's check value: HKDF-SHA256(ikm = key, salt = empty, info =
 * "kinko/v1/key-check-value"), CRYPTO_CHECK_VALUE_LEN bytes into out. It
 * tells whether two keys are the same without revealing either (HKDF's
 * output under its own label says nothing about the key or about what
 * other labels derive). The store keeps the root key's, so that a wrong
 * root key is refused at start. K_E_INTERNAL on failure (out wiped).
 */
#define CRYPTO_CHECK_VALUE_LEN 32
K_MUST_CHECK k_status crypto_check_value(const struct ksecret *key,
					 uint8_t out[CRYPTO_CHECK_VALUE_LEN]);

/* Constant-time equality of two byte strings of the same length: 1 if equal, else 0. */
int crypto_memeq(const void *a, const void *b, size_t n);

/* Wipes n bytes at p in a way the compiler cannot drop (OPENSSL_cleanse). */
void crypto_wipe(void *p, size_t n);

/* SHA-256 of p[0..n) into out. K_E_INTERNAL on failure (out wiped). */
#define CRYPTO_SHA256_LEN 32
K_MUST_CHECK k_status crypto_sha256(const void *p, size_t n, uint8_t out[CRYPTO_SHA256_LEN]);

/*
 * Incremental SHA-256 (sha256.c), for a digest of pieces that are not
 * contiguous. A context is made once (crypto_sha256_ctx_new: NULL on
 * failure) and reused: crypto_sha256_begin starts a new digest,
 * crypto_sha256_update adds bytes, crypto_sha256_end writes the digest to
 * out; then begin again. begin, update and end neither allocate nor fetch
 * (the algorithm is fetched once per process), so a context kept per
 * thread digests on a hot path without touching the heap. A context is
 * used by one thread at a time. Each returns K_E_INTERNAL on failure (end
 * wipes out then); after a failure, begin again before further use.
 */
struct crypto_sha256_ctx;
struct crypto_sha256_ctx *crypto_sha256_ctx_new(void);
void crypto_sha256_ctx_free(struct crypto_sha256_ctx *c);
K_MUST_CHECK k_status crypto_sha256_begin(struct crypto_sha256_ctx *c);
K_MUST_CHECK k_status crypto_sha256_update(struct crypto_sha256_ctx *c, const void *p, size_t n);
K_MUST_CHECK k_status crypto_sha256_end(struct crypto_sha256_ctx *c,
					uint8_t out[CRYPTO_SHA256_LEN]);

#endif
