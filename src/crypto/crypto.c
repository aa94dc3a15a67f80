/*
 * crypto.c — randomness, constant-time comparison, the cached OpenSSL
 * algorithm objects and the AES-256-GCM seal/open used by sym.c and wrap.c.
 */
#include "crypto/crypto.h"
#include "crypto/internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/thread.h"
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

/*
 * Fetching an algorithm walks OpenSSL's provider store under a lock, which
 * is measurable on the Encrypt path; so each one is fetched once and kept
 * for the life of the process. A failed fetch leaves NULL and every
 * operation then reports K_E_INTERNAL.
 */
static void algs_init(void)
{
	algs_aes256gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

const EVP_CIPHER *crypto_aes256gcm(void)
{
	if (pthread_once(&algs_once, algs_init) != 0)
		return NULL;
	return algs_aes256gcm;
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

/*
 * Nonces and IVs (crypto_nonce). RAND_bytes costs a lock, a DRBG call and,
 * in OpenSSL 3.0, a getpid() system call per call to notice a fork; for
 * 16 bytes per Encrypt that is measurable. So each thread draws
 * NONCE_POOL_LEN bytes at once and hands them out in order, wiping every
 * byte as it goes, so a byte is never served twice and none that was
 * served stays in the pool.
 *
 * A forked child inherits copies of the pools; serving the same bytes in
 * parent and child would repeat a nonce, and under one backing key a
 * repeated nonce repeats the GCM key and IV. A pthread_atfork child
 * handler therefore bumps a process-wide generation, and a pool filled in
 * another generation is discarded before use. (posix_spawn, which the
 * rotation runner uses, execs at once and never draws a nonce.)
 *
 * Each pool is freed (wiped) at thread exit by a pthread key destructor;
 * the main thread's, which has no such destructor, lives for the life of
 * the process.
 */
#define NONCE_POOL_LEN 4096

struct nonce_pool {
	size_t pos; /* next byte to serve; NONCE_POOL_LEN when empty */
	unsigned long generation;
	uint8_t bytes[NONCE_POOL_LEN];
};

static pthread_once_t nonce_once = PTHREAD_ONCE_INIT;
static bool nonce_ready;
static atomic_ulong nonce_generation;

static void nonce_pool_free(void *p)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, sizeof(struct nonce_pool));
	free(p);
}

/* Runs in the child of fork(): every pool copied from the parent is stale. */
static void nonce_atfork_child(void)
{
	atomic_fetch_add_explicit(&nonce_generation, 1, memory_order_relaxed);
}

static void nonce_init(void)
{
	nonce_ready = pthread_atfork(NULL, NULL, nonce_atfork_child) == 0;
}

static void *nonce_pool_make(void)
{
	/* The fork handler is registered once, by the first thread to need a pool. */
	if (pthread_once(&nonce_once, nonce_init) != 0 || !nonce_ready)
		return NULL;
	struct nonce_pool *p = calloc(1, sizeof *p);
	if (p != NULL)
		p->pos = NONCE_POOL_LEN;
	return p;
}

static struct kthread_slot nonce_slot = KTHREAD_SLOT_INIT(nonce_pool_make, nonce_pool_free);

static struct nonce_pool *nonce_pool_get(void)
{
	return kthread_get(&nonce_slot);
}

k_status crypto_nonce(uint8_t *p, size_t n)
{
	ENSURE(p != NULL || n == 0, K_E_INTERNAL);
	ENSURE(n <= CRYPTO_NONCE_MAX, K_E_INTERNAL);
	if (n == 0)
		return K_OK;
	struct nonce_pool *pool = nonce_pool_get();
	ENSURE(pool != NULL, K_E_INTERNAL);
	unsigned long gen = atomic_load_explicit(&nonce_generation, memory_order_relaxed);
	if (pool->generation != gen || NONCE_POOL_LEN - pool->pos < n) {
		/* Whatever is left (a stale or too-short tail) is discarded. */
		OPENSSL_cleanse(pool->bytes, sizeof pool->bytes);
		pool->pos = NONCE_POOL_LEN;
		ENSURE(RAND_bytes(pool->bytes, (int)sizeof pool->bytes) == 1, K_E_INTERNAL);
		pool->pos = 0;
		pool->generation = gen;
	}
	memcpy(p, pool->bytes + pool->pos, n);
	OPENSSL_cleanse(pool->bytes + pool->pos, n);
	pool->pos += n;
	return K_OK;
}

struct ksecret *crypto_random_secret(size_t n)
{
	struct ksecret *s = ksecret_new(n);
	if (s == NULL)
		return NULL;
	if (n > INT_MAX || RAND_priv_bytes(ksecret_bytes(s), (int)n) != 1) {
		ksecret_free(s);
		return NULL;
	}
	return s;
}

int crypto_memeq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

void crypto_wipe(void *p, size_t n)
{
	if (p != NULL)
		OPENSSL_cleanse(p, n);
}

k_status crypto_sha256(const void *p, size_t n, uint8_t out[CRYPTO_SHA256_LEN])
{
	unsigned int len = 0;
	if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != CRYPTO_SHA256_LEN) {
		OPENSSL_cleanse(out, CRYPTO_SHA256_LEN);
		return K_E_INTERNAL;
	}
	return K_OK;
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
static K_MUST_CHECK k_status gcm_aad(EVP_CIPHER_CTX *ctx, struct kslice aad, int encrypting)
{
	int outl = 0;
	if (aad.len == 0)
		return K_OK;
	ENSURE(aad.len <= INT_MAX, K_E_INTERNAL);
	if (encrypting)
		ENSURE(EVP_EncryptUpdate(ctx, NULL, &outl, aad.ptr, (int)aad.len) == 1,
		       K_E_INTERNAL);
	else
		ENSURE(EVP_DecryptUpdate(ctx, NULL, &outl, aad.ptr, (int)aad.len) == 1,
		       K_E_INTERNAL);
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
	if (k_failed(rc))
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
			 struct kslice aad1, struct kslice aad2, struct kslice ct,
			 struct kslice tag, uint8_t *dst)
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
	ENSURE_GOTO(EVP_DecryptFinal_ex(ctx, fin, &finl) == 1 && finl == 0, K_E_INVALID_CIPHERTEXT);
	rc = K_OK;
out:
	if (k_failed(rc) && ct.len > 0)
		OPENSSL_cleanse(dst, ct.len);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}
