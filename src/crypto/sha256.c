/*
 * sha256.c — incremental SHA-256 on a reusable context (crypto.h).
 *
 * The context is OpenSSL's EVP_MD_CTX itself, behind our own opaque type,
 * so making one is a single allocation and using it none: begin
 * re-initialises it with the SHA-256 implementation fetched once for the
 * process (EVP_DigestInit_ex2 with a fetched EVP_MD reuses the context's
 * memory and skips the provider lookup an implicit fetch would do).
 */
#include "crypto/crypto.h"

#include <pthread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/banned.h"

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md; /* kept for the life of the process; NULL if the fetch failed */

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static EVP_MD_CTX *md_ctx(struct crypto_sha256_ctx *c)
{
	return (EVP_MD_CTX *)(void *)c;
}

struct crypto_sha256_ctx *crypto_sha256_ctx_new(void)
{
	if (pthread_once(&sha256_once, sha256_fetch) != 0 || sha256_md == NULL)
		return NULL;
	return (struct crypto_sha256_ctx *)(void *)EVP_MD_CTX_new();
}

void crypto_sha256_ctx_free(struct crypto_sha256_ctx *c)
{
	EVP_MD_CTX_free(md_ctx(c));
}

k_status crypto_sha256_begin(struct crypto_sha256_ctx *c)
{
	/* sha256_md is set: a context exists only once the fetch has succeeded. */
	ENSURE(c != NULL && EVP_DigestInit_ex2(md_ctx(c), sha256_md, NULL) == 1, K_E_INTERNAL);
	return K_OK;
}

k_status crypto_sha256_update(struct crypto_sha256_ctx *c, const void *p, size_t n)
{
	ENSURE(EVP_DigestUpdate(md_ctx(c), p, n) == 1, K_E_INTERNAL);
	return K_OK;
}

k_status crypto_sha256_end(struct crypto_sha256_ctx *c, uint8_t out[CRYPTO_SHA256_LEN])
{
	unsigned int len = 0;
	if (EVP_DigestFinal_ex(md_ctx(c), out, &len) != 1 || len != CRYPTO_SHA256_LEN) {
		OPENSSL_cleanse(out, CRYPTO_SHA256_LEN);
		return K_E_INTERNAL;
	}
	return K_OK;
}
