/*
 * crypto.c — randomness, constant-time comparison, the cached OpenSSL
 * algorithm objects and the AES-256-GCM seal/open used by sym.c and wrap.c.
 */
#include "crypto/crypto.h"
#include "crypto/internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "core/banned.h"

/*
 * Ciphertext goes out through a stack buffer of this size. It matches the
 * largest plaintext KMS accepts in Encrypt, so a typical message costs one
 * append to the output buffer.
 */
#define SEAL_CHUNK 4096
/* EVP lengths are ints; larger inputs are fed in pieces of this size. */
#define OPEN_CHUNK (1u << 30)

static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *algs_aes256gcm;
static EVP_KDF *algs_hkdf;

/*
 * Fetching an algorithm walks OpenSSL's provider store under a lock, which
 * is measurable on the Encrypt path; so each one is fetched once and kept
 * for the life of the process. A failed fetch leaves NULL and every
 * operation then reports K_E_INTERNAL.
 */
static void algs_init(void)
{
	algs_aes256gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	algs_hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
}

const EVP_CIPHER *crypto_aes256gcm(void)
{
	if (pthread_once(&algs_once, algs_init) != 0)
		return NULL;
	return algs_aes256gcm;
}

EVP_KDF *crypto_hkdf(void)
{
	if (pthread_once(&algs_once, algs_init) != 0)
		return NULL;
	return algs_hkdf;
}

k_status crypto_random(uint8_t *p, size_t n)
{
	ENSURE(p != NULL || n == 0, K_E_INTERNAL);
	ENSURE(n <= INT_MAX, K_E_INTERNAL);
	if (n == 0)
		return K_OK;
	ENSURE(RAND_bytes(p, (int)n) == 1, K_E_INTERNAL);
	return K_OK;
}

struct ksecret *crypto_random_secret(size_t n)
{
	struct ksecret *s = ksecret_new(n);
	if (s == NULL)
		return NULL;
	if (crypto_random(ksecret_bytes(s), n) != K_OK) {
		ksecret_free(s);
		return NULL;
	}
	return s;
}

int crypto_memeq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

void crypto_kbuf_truncate(struct kbuf *b, size_t len)
{
	if (b->ptr == NULL || b->len <= len)
		return;
	OPENSSL_cleanse(b->ptr + len, b->len - len);
	b->len = len;
	b->ptr[len] = 0;
}

/* Feeds one piece of AAD; empty pieces are skipped. */
static k_status gcm_aad(EVP_CIPHER_CTX *ctx, struct kslice aad, int encrypting)
{
	int outl = 0;
	if (aad.len == 0)
		return K_OK;
	ENSURE(aad.len <= INT_MAX, K_E_INTERNAL);
	if (encrypting)
		ENSURE(EVP_EncryptUpdate(ctx, NULL, &outl, aad.ptr, (int)aad.len) == 1, K_E_INTERNAL);
	else
		ENSURE(EVP_DecryptUpdate(ctx, NULL, &outl, aad.ptr, (int)aad.len) == 1, K_E_INTERNAL);
	return K_OK;
}

/*
 * The ciphertext is produced a chunk at a time into a stack buffer and
 * appended, so the plaintext is never copied into `out` (for crypto_wrap it
 * is key material, which must stay in locked memory). The capacity check
 * comes first so that an oversized message costs no cryptography.
 */
k_status crypto_gcm_seal(const uint8_t key[32], const uint8_t iv[CRYPTO_GCM_IV_LEN],
			 struct kslice aad1, struct kslice aad2, const uint8_t *pt, size_t pt_len,
			 struct kbuf *out)
{
	k_status rc = K_E_INTERNAL;
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t chunk[SEAL_CHUNK];
	uint8_t tag[CRYPTO_TAG_LEN];
	int finl = 0;
	size_t base = out->len;
	const EVP_CIPHER *aes = crypto_aes256gcm();

	ENSURE(pt != NULL || pt_len == 0, K_E_INTERNAL);
	ENSURE(out->max - out->len >= CRYPTO_TAG_LEN &&
		       out->max - out->len - CRYPTO_TAG_LEN >= pt_len,
	       K_E_VALIDATION);
	ENSURE(aes != NULL, K_E_INTERNAL);
	ctx = EVP_CIPHER_CTX_new();
	ENSURE_GOTO(ctx != NULL, K_E_INTERNAL);
	ENSURE_GOTO(EVP_EncryptInit_ex2(ctx, aes, key, iv, NULL) == 1, K_E_INTERNAL);
	GUARD_GOTO(gcm_aad(ctx, aad1, 1));
	GUARD_GOTO(gcm_aad(ctx, aad2, 1));
	for (size_t done = 0; done < pt_len;) {
		size_t n = pt_len - done < SEAL_CHUNK ? pt_len - done : SEAL_CHUNK;
		int outl = 0;
		ENSURE_GOTO(EVP_EncryptUpdate(ctx, chunk, &outl, pt + done, (int)n) == 1,
			    K_E_INTERNAL);
		/* GCM is a stream mode: OpenSSL returns exactly what it was given. */
		ENSURE_GOTO(outl == (int)n, K_E_INTERNAL);
		GUARD_GOTO(kbuf_append(out, chunk, n));
		done += n;
	}
	ENSURE_GOTO(EVP_EncryptFinal_ex(ctx, chunk, &finl) == 1 && finl == 0, K_E_INTERNAL);
	ENSURE_GOTO(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, CRYPTO_TAG_LEN, tag) == 1,
		    K_E_INTERNAL);
	GUARD_GOTO(kbuf_append(out, tag, sizeof tag));
	rc = K_OK;
out:
	if (rc != K_OK)
		crypto_kbuf_truncate(out, base);
	/* The context holds the expanded key; EVP_CIPHER_CTX_free wipes it. */
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/*
 * Decrypts straight into dst and only then checks the tag, which is how
 * GCM works; so on a bad tag dst is wiped before returning and the caller
 * never sees, let alone releases, unauthenticated bytes.
 */
k_status crypto_gcm_open(const uint8_t key[32], const uint8_t iv[CRYPTO_GCM_IV_LEN],
			 struct kslice aad1, struct kslice aad2, struct kslice ct, struct kslice tag,
			 uint8_t *dst)
{
	k_status rc = K_E_INTERNAL;
	EVP_CIPHER_CTX *ctx = NULL;
	/* EVP_CTRL_AEAD_SET_TAG takes a non-const pointer. */
	uint8_t tagcopy[CRYPTO_TAG_LEN];
	/* GCM's final step writes nothing, but OpenSSL wants somewhere to write it. */
	uint8_t fin[CRYPTO_TAG_LEN];
	int finl = 0;
	const EVP_CIPHER *aes = crypto_aes256gcm();

	ENSURE(tag.len == CRYPTO_TAG_LEN, K_E_INVALID_CIPHERTEXT);
	ENSURE(dst != NULL || ct.len == 0, K_E_INTERNAL);
	ENSURE(aes != NULL, K_E_INTERNAL);
	memcpy(tagcopy, tag.ptr, sizeof tagcopy);
	ctx = EVP_CIPHER_CTX_new();
	ENSURE_GOTO(ctx != NULL, K_E_INTERNAL);
	ENSURE_GOTO(EVP_DecryptInit_ex2(ctx, aes, key, iv, NULL) == 1, K_E_INTERNAL);
	GUARD_GOTO(gcm_aad(ctx, aad1, 0));
	GUARD_GOTO(gcm_aad(ctx, aad2, 0));
	for (size_t done = 0; done < ct.len;) {
		size_t n = ct.len - done < OPEN_CHUNK ? ct.len - done : OPEN_CHUNK;
		int outl = 0;
		ENSURE_GOTO(EVP_DecryptUpdate(ctx, dst + done, &outl, ct.ptr + done, (int)n) == 1,
			    K_E_INTERNAL);
		ENSURE_GOTO(outl == (int)n, K_E_INTERNAL);
		done += n;
	}
	ENSURE_GOTO(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, CRYPTO_TAG_LEN, tagcopy) == 1,
		    K_E_INTERNAL);
	/* The tag comparison happens inside OpenSSL, in constant time. */
	ENSURE_GOTO(EVP_DecryptFinal_ex(ctx, fin, &finl) == 1 && finl == 0,
		    K_E_INVALID_CIPHERTEXT);
	rc = K_OK;
out:
	if (rc != K_OK && ct.len > 0)
		OPENSSL_cleanse(dst, ct.len);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}
