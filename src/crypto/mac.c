/*
 * mac.c — HMAC with the AWS MAC algorithms (asym.h): one-shot, and on a
 * key prepared once.
 *
 * A new EVP_MAC_CTX per call costs an allocation, the digest's fetch from
 * the provider store (EVP_MAC_init with the digest parameter: a read lock
 * and a walk of its name map) and the key's two pad blocks. A prepared
 * key does all three once; each call duplicates its context and runs only
 * the message and the final blocks.
 */
#include "crypto/asym.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/banned.h"

/* The HMAC implementation, fetched once per process (immutable, shared by all threads). */
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *mac_hmac;

static void mac_fetch(void)
{
	mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* AWS's MAC algorithms and the digest each names. */
static const struct {
	const char *alg;
	const char *digest;
} mac_algs[] = {
	{"HMAC_SHA_224", "SHA224"},
	{"HMAC_SHA_256", "SHA256"},
	{"HMAC_SHA_384", "SHA384"},
	{"HMAC_SHA_512", "SHA512"},
};
#define N_MAC_ALGS (sizeof mac_algs / sizeof mac_algs[0])

struct asym_mac {
	EVP_MAC_CTX *ctx; /* keyed, never used itself: each call runs on a duplicate */
	size_t alg;	  /* index in mac_algs */
};

/* A context keyed with key for alg (index in mac_algs); NULL on failure. */
static EVP_MAC_CTX *keyed_ctx(const struct ksecret *key, size_t alg)
{
	pthread_once(&mac_once, mac_fetch);
	if (mac_hmac == NULL || key == NULL)
		return NULL;
	/* OSSL_PARAM wants a mutable string; OpenSSL only reads it. */
	char digest[16];
	snprintf(digest, sizeof digest, "%s", mac_algs[alg].digest);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *c = EVP_MAC_CTX_new(mac_hmac);
	if (c != NULL && EVP_MAC_init(c, ksecret_cbytes(key), ksecret_len(key), params) != 1) {
		EVP_MAC_CTX_free(c);
		c = NULL;
	}
	return c;
}

static bool alg_index(const char *alg, size_t *i)
{
	for (*i = 0; *i < N_MAC_ALGS; (*i)++) {
		if (strcmp(mac_algs[*i].alg, alg) == 0)
			return true;
	}
	return false;
}

/* The message and the final blocks on c (which the caller frees). */
static K_MUST_CHECK k_status finish(EVP_MAC_CTX *c, struct kslice msg, uint8_t mac[ASYM_MAX_MAC],
				    size_t *mac_len)
{
	ENSURE(c != NULL, K_E_INTERNAL);
	ENSURE(msg.len == 0 || EVP_MAC_update(c, msg.ptr, msg.len) == 1, K_E_INTERNAL);
	ENSURE(EVP_MAC_final(c, mac, mac_len, ASYM_MAX_MAC) == 1, K_E_INTERNAL);
	return K_OK;
}

k_status asym_hmac(const struct ksecret *key, const char *alg, struct kslice msg,
		   uint8_t mac[ASYM_MAX_MAC], size_t *mac_len)
{
	size_t i;
	ENSURE(alg_index(alg, &i), K_E_INTERNAL);
	EVP_MAC_CTX *c = keyed_ctx(key, i);
	k_status rc = finish(c, msg, mac, mac_len);
	EVP_MAC_CTX_free(c);
	return rc;
}

k_status asym_mac_prepare(const struct ksecret *key, const char *alg, struct asym_mac **out)
{
	size_t i;
	ENSURE(alg_index(alg, &i), K_E_INTERNAL);
	struct asym_mac *p = calloc(1, sizeof *p);
	ENSURE(p != NULL, K_E_INTERNAL);
	p->alg = i;
	p->ctx = keyed_ctx(key, i);
	if (p->ctx == NULL) {
		free(p);
		return K_E_INTERNAL;
	}
	*out = p;
	return K_OK;
}

bool asym_mac_is_for(const struct asym_mac *p, const char *alg)
{
	return p != NULL && strcmp(mac_algs[p->alg].alg, alg) == 0;
}

k_status asym_mac_run(const struct asym_mac *p, struct kslice msg, uint8_t mac[ASYM_MAX_MAC],
		      size_t *mac_len)
{
	ENSURE(p != NULL, K_E_INTERNAL);
	EVP_MAC_CTX *c = EVP_MAC_CTX_dup(p->ctx);
	k_status rc = finish(c, msg, mac, mac_len);
	EVP_MAC_CTX_free(c);
	return rc;
}

void asym_mac_free(struct asym_mac *p)
{
	if (p == NULL)
		return;
	EVP_MAC_CTX_free(p->ctx);
	free(p);
}
