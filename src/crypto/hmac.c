/*
 * hmac.c — SHA-256 and HMAC-SHA256 on per-thread, reused contexts; the
 * SigV4 signing key; byte ranges of a ksecret (contract in hmac.h).
 *
 * Each thread keeps one EVP_MD_CTX and one EVP_MAC_CTX (HMAC with SHA-256
 * selected). EVP_DigestInit_ex2 with the prefetched SHA-256 resets the
 * digest context, and EVP_MAC_init with a key replaces the HMAC context's
 * key and state, so neither is created, freed or looked up per call (the
 * one-shot EVP_Digest and EVP_Q_mac do all three). The algorithms are
 * fetched once per process; a fetched algorithm is immutable and shared
 * by every thread.
 *
 * After each HMAC (or chain of them) the context is rekeyed with an
 * all-zero key. If that fails the context is freed instead, which wipes
 * it, and a new one is made on next use.
 */
#include "crypto/hmac.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/thread.h"
#include "core/banned.h"

#define SIGV4_KEY_PREFIX "AWS4"
#define SIGV4_KEY_PREFIX_LEN 4
#define SIGV4_TERMINATOR "aws4_request"

static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_MAC *alg_hmac;
static EVP_MD *alg_sha256;

static void algs_fetch(void)
{
	alg_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	alg_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

struct hmac_tls {
	EVP_MAC_CTX *hmac; /* HMAC-SHA256, rekeyed for each MAC; NULL after a failed scrub */
	EVP_MD_CTX *md;	   /* reinitialised for each SHA-256 */
};

/* A context for HMAC with SHA-256 selected, no key yet; NULL on failure. */
static EVP_MAC_CTX *hmac_ctx_new(void)
{
	/* OSSL_PARAM wants a mutable string; OpenSSL only reads it. */
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *c = alg_hmac != NULL ? EVP_MAC_CTX_new(alg_hmac) : NULL;
	if (c != NULL && EVP_MAC_CTX_set_params(c, params) != 1) {
		EVP_MAC_CTX_free(c);
		c = NULL;
	}
	return c;
}

static void tls_drop(void *p)
{
	struct hmac_tls *t = p;
	if (t == NULL)
		return;
	EVP_MAC_CTX_free(t->hmac); /* wipes the keyed states */
	EVP_MD_CTX_free(t->md);
	free(t);
}

static void *tls_make(void)
{
	if (pthread_once(&algs_once, algs_fetch) != 0 || alg_hmac == NULL || alg_sha256 == NULL)
		return NULL;
	struct hmac_tls *t = calloc(1, sizeof *t);
	if (t == NULL)
		return NULL;
	t->hmac = hmac_ctx_new();
	t->md = EVP_MD_CTX_new();
	if (t->hmac == NULL || t->md == NULL) {
		tls_drop(t);
		return NULL;
	}
	return t;
}

static struct kthread_slot tls_slot = KTHREAD_SLOT_INIT(tls_make, tls_drop);

void crypto_hmac_thread_release(void)
{
	kthread_forget(&tls_slot);
}

k_status crypto_thread_sha256(const void *p, size_t n, uint8_t out[32])
{
	unsigned int outl = 0;
	struct hmac_tls *t = kthread_get(&tls_slot);

	ENSURE(t != NULL && out != NULL && (p != NULL || n == 0), K_E_INTERNAL);
	if (p == NULL)
		p = "";
	ENSURE(EVP_DigestInit_ex2(t->md, alg_sha256, NULL) == 1 &&
		       EVP_DigestUpdate(t->md, p, n) == 1 &&
		       EVP_DigestFinal_ex(t->md, out, &outl) == 1 && outl == 32,
	       K_E_INTERNAL);
	return K_OK;
}

/*
 * One HMAC on the thread's context. The key must not be empty (a NULL key
 * would mean "keep the last one"). The caller scrubs when done.
 */
static K_MUST_CHECK k_status hmac_once(struct hmac_tls *t, const uint8_t *key, size_t keylen,
				       const void *data, size_t n, uint8_t out[CRYPTO_HMAC_LEN])
{
	size_t outl = 0;
	ENSURE(key != NULL && keylen > 0, K_E_INTERNAL);
	if (t->hmac == NULL)
		t->hmac = hmac_ctx_new();
	ENSURE(t->hmac != NULL, K_E_INTERNAL);
	ENSURE(EVP_MAC_init(t->hmac, key, keylen, NULL) == 1 &&
		       (n == 0 || EVP_MAC_update(t->hmac, data, n) == 1) &&
		       EVP_MAC_final(t->hmac, out, &outl, CRYPTO_HMAC_LEN) == 1 &&
		       outl == CRYPTO_HMAC_LEN,
	       K_E_INTERNAL);
	return K_OK;
}

/* Rekeys the HMAC context with zeros, or frees it if that fails. */
static void hmac_scrub(struct hmac_tls *t)
{
	static const uint8_t zero_key[32];
	if (t->hmac == NULL || EVP_MAC_init(t->hmac, zero_key, sizeof zero_key, NULL) == 1)
		return;
	EVP_MAC_CTX_free(t->hmac);
	t->hmac = NULL;
}

static bool range_ok(const struct ksecret *s, size_t off, size_t n)
{
	size_t len = s != NULL ? ksecret_len(s) : 0;
	return s != NULL && off <= len && n <= len - off;
}

k_status crypto_hmac_sha256_at(const struct ksecret *key, size_t off, size_t len,
			       struct kslice data, uint8_t out[CRYPTO_HMAC_LEN])
{
	struct hmac_tls *t = kthread_get(&tls_slot);

	ENSURE(t != NULL && out != NULL && len > 0 && range_ok(key, off, len), K_E_INTERNAL);
	ENSURE(data.ptr != NULL || data.len == 0, K_E_INTERNAL);
	k_status rc = hmac_once(t, ksecret_cbytes(key) + off, len, data.ptr, data.len, out);
	hmac_scrub(t);
	return rc;
}

k_status crypto_sigv4_signing_key(const struct ksecret *secret, const char *date,
				  const char *region, const char *service, struct ksecret *out,
				  size_t off)
{
	k_status rc = K_OK;
	uint8_t k_date[32];
	uint8_t k_region[32];
	uint8_t k_service[32];
	struct ksecret *k_secret = NULL;
	struct hmac_tls *t = kthread_get(&tls_slot);

	ENSURE(range_ok(out, off, CRYPTO_SIGV4_KEY_LEN), K_E_INTERNAL);
	ENSURE_GOTO(t != NULL && secret != NULL && ksecret_len(secret) > 0, K_E_INTERNAL);
	ENSURE_GOTO(date != NULL && region != NULL && service != NULL, K_E_INTERNAL);
	size_t slen = ksecret_len(secret);
	k_secret = ksecret_new(SIGV4_KEY_PREFIX_LEN + slen);
	ENSURE_GOTO(k_secret != NULL, K_E_INTERNAL);
	uint8_t *ks = ksecret_bytes(k_secret);
	memcpy(ks, SIGV4_KEY_PREFIX, SIGV4_KEY_PREFIX_LEN);
	memcpy(ks + SIGV4_KEY_PREFIX_LEN, ksecret_cbytes(secret), slen);
	GUARD_GOTO(hmac_once(t, ks, SIGV4_KEY_PREFIX_LEN + slen, date, strlen(date), k_date));
	GUARD_GOTO(hmac_once(t, k_date, sizeof k_date, region, strlen(region), k_region));
	GUARD_GOTO(hmac_once(t, k_region, sizeof k_region, service, strlen(service), k_service));
	GUARD_GOTO(hmac_once(t, k_service, sizeof k_service, SIGV4_TERMINATOR,
			     strlen(SIGV4_TERMINATOR), ksecret_bytes(out) + off));
out:
	if (t != NULL)
		hmac_scrub(t);
	if (k_failed(rc))
		OPENSSL_cleanse(ksecret_bytes(out) + off, CRYPTO_SIGV4_KEY_LEN);
	OPENSSL_cleanse(k_date, sizeof k_date);
	OPENSSL_cleanse(k_region, sizeof k_region);
	OPENSSL_cleanse(k_service, sizeof k_service);
	ksecret_free(k_secret);
	return rc;
}

k_status crypto_secret_fingerprint(const struct ksecret *s, uint8_t out[CRYPTO_FINGERPRINT_LEN])
{
	ENSURE(s != NULL, K_E_INTERNAL);
	return crypto_thread_sha256(ksecret_cbytes(s), ksecret_len(s), out);
}

bool crypto_secret_eq_at(const struct ksecret *s, size_t off, const uint8_t *p, size_t n)
{
	if (!range_ok(s, off, n) || (p == NULL && n > 0))
		return false;
	return n == 0 || CRYPTO_memcmp(ksecret_cbytes(s) + off, p, n) == 0;
}

k_status crypto_secret_write_at(struct ksecret *s, size_t off, const uint8_t *p, size_t n)
{
	ENSURE(range_ok(s, off, n) && (p != NULL || n == 0), K_E_INTERNAL);
	if (n > 0)
		memcpy(ksecret_bytes(s) + off, p, n);
	return K_OK;
}

void crypto_secret_wipe_at(struct ksecret *s, size_t off, size_t n)
{
	if (range_ok(s, off, n) && n > 0)
		OPENSSL_cleanse(ksecret_bytes(s) + off, n);
}
