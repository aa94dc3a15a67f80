/*
 * hkdf.c — HKDF-SHA256 (RFC 5869) over a per-thread, reused HMAC context.
 *
 * OpenSSL's EVP_KDF "HKDF" costs a context, a digest fetch and, inside
 * Extract, an EVP_Q_mac that fetches HMAC and SHA-256 by name on every
 * call; on the Encrypt path that setup outweighs the dozen SHA-256 blocks
 * the derivation hashes. Here HKDF is composed from OpenSSL's own HMAC
 * (EVP_MAC "HMAC", fetched once per process) on one EVP_MAC_CTX per
 * thread, rekeyed with EVP_MAC_init for every step:
 *
 *   Extract: PRK  = HMAC(salt, IKM)
 *   Expand:  T(i) = HMAC(PRK, T(i-1) || info || i),  T(0) = empty
 *            OKM  = T(1) || T(2) || ... truncated to the length asked for
 *
 * No primitive is written here: this is RFC 5869's composition of HMAC,
 * and the unit tests check it byte for byte against EVP_KDF "HKDF" and the
 * RFC's SHA-256 test cases.
 *
 * After the last step the context is rekeyed with an all-zero key, so the
 * HMAC state keyed with PRK (and OpenSSL's copy of PRK) does not stay in
 * OpenSSL's heap between calls. PRK and the T blocks are wiped.
 *
 * Lifetime: each thread's context is created on first use and freed at
 * thread exit by a pthread key destructor. The main thread has no
 * thread-exit destructor, so its context lives for the life of the process
 * (scrubbed as above after every call).
 */
#include "crypto/crypto.h"
#include "crypto/internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/thread.h"
#include "core/banned.h"

#define HKDF_HASH_LEN 32
#define HKDF_MAX_OKM (255 * HKDF_HASH_LEN)

static pthread_once_t hkdf_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hkdf_hmac;

/* An HMAC key of 32 zero bytes: RFC 5869's default salt and the scrub key. */
static const uint8_t hkdf_zero_key[HKDF_HASH_LEN];

static void hkdf_init(void)
{
	hkdf_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static void hkdf_ctx_drop(void *p)
{
	EVP_MAC_CTX_free(p); /* wipes the keyed states */
}

/* A thread's HMAC-SHA256 context (no key yet); NULL on failure. */
static void *hkdf_ctx_make(void)
{
	if (pthread_once(&hkdf_once, hkdf_init) != 0 || hkdf_hmac == NULL)
		return NULL;
	/* OSSL_PARAM wants a mutable string; OpenSSL only reads it. */
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hkdf_hmac);
	if (ctx != NULL && EVP_MAC_CTX_set_params(ctx, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

static struct kthread_slot hkdf_slot = KTHREAD_SLOT_INIT(hkdf_ctx_make, hkdf_ctx_drop);

/*
 * One HMAC over up to three pieces. EVP_MAC_init with a key replaces the
 * previous key entirely (a NULL key would mean "reuse the last one", which
 * is why an empty key is passed as zeros by the caller).
 */
static K_MUST_CHECK k_status hmac3(EVP_MAC_CTX *ctx, const uint8_t *key, size_t keylen,
				   struct kslice a, struct kslice b, struct kslice c,
				   uint8_t out[HKDF_HASH_LEN])
{
	size_t outl = 0;
	ENSURE(EVP_MAC_init(ctx, key, keylen, NULL) == 1, K_E_INTERNAL);
	ENSURE(a.len == 0 || EVP_MAC_update(ctx, a.ptr, a.len) == 1, K_E_INTERNAL);
	ENSURE(b.len == 0 || EVP_MAC_update(ctx, b.ptr, b.len) == 1, K_E_INTERNAL);
	ENSURE(c.len == 0 || EVP_MAC_update(ctx, c.ptr, c.len) == 1, K_E_INTERNAL);
	ENSURE(EVP_MAC_final(ctx, out, &outl, HKDF_HASH_LEN) == 1 && outl == HKDF_HASH_LEN,
	       K_E_INTERNAL);
	return K_OK;
}

k_status crypto_hkdf_sha256(struct kslice ikm, struct kslice salt, struct kslice info, uint8_t *okm,
			    size_t okm_len)
{
	k_status rc = K_E_INTERNAL;
	uint8_t prk[HKDF_HASH_LEN];
	uint8_t t[HKDF_HASH_LEN];
	EVP_MAC_CTX *ctx = NULL;
	size_t done = 0;

	ENSURE(okm != NULL && okm_len > 0 && okm_len <= HKDF_MAX_OKM, K_E_INTERNAL);
	ENSURE(ikm.ptr != NULL || ikm.len == 0, K_E_INTERNAL);
	ENSURE(salt.ptr != NULL || salt.len == 0, K_E_INTERNAL);
	ENSURE(info.ptr != NULL || info.len == 0, K_E_INTERNAL);
	ctx = kthread_get(&hkdf_slot);
	ENSURE(ctx != NULL, K_E_INTERNAL);

	/* RFC 5869 2.2: "if not provided, [salt] is set to a string of HashLen zeros". */
	if (salt.len == 0)
		salt = kslice_make(hkdf_zero_key, sizeof hkdf_zero_key);
	GUARD_GOTO(hmac3(ctx, salt.ptr, salt.len, ikm, kslice_make(NULL, 0), kslice_make(NULL, 0),
			 prk));
	for (uint8_t i = 1; done < okm_len; i++) {
		struct kslice prev = kslice_make(t, i == 1 ? 0 : sizeof t);
		GUARD_GOTO(hmac3(ctx, prk, sizeof prk, prev, info, kslice_make(&i, 1), t));
		size_t n = okm_len - done < sizeof t ? okm_len - done : sizeof t;
		memcpy(okm + done, t, n);
		done += n;
	}
	rc = K_OK;
out:
	/* Leave no PRK-keyed state (nor OpenSSL's copy of PRK) in the reused context. */
	if (EVP_MAC_init(ctx, hkdf_zero_key, sizeof hkdf_zero_key, NULL) != 1) {
		kthread_forget(&hkdf_slot); /* frees ctx, and with it any keyed state */
		rc = K_E_INTERNAL;
	}
	OPENSSL_cleanse(prk, sizeof prk);
	OPENSSL_cleanse(t, sizeof t);
	if (k_failed(rc))
		OPENSSL_cleanse(okm, okm_len);
	return rc;
}
