/*
 * ed25519.c — Ed25519 keys, signatures and verification (ed25519.h).
 *
 * The opaque key is OpenSSL's EVP_PKEY itself; signing and verifying use
 * the one-shot EVP_DigestSign / EVP_DigestVerify with no digest, which is
 * how OpenSSL runs pure Ed25519.
 */
#include "crypto/ed25519.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/banned.h"

static EVP_PKEY *pkey_of(const struct crypto_ed25519 *k)
{
	return (EVP_PKEY *)(void *)k;
}

k_status crypto_ed25519_from_seed(const struct ksecret *seed, struct crypto_ed25519 **out)
{
	ENSURE(seed != NULL && ksecret_len(seed) == CRYPTO_ED25519_SEED_LEN, K_E_INTERNAL);
	EVP_PKEY *p = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, ksecret_cbytes(seed),
						   CRYPTO_ED25519_SEED_LEN);
	ENSURE(p != NULL, K_E_INTERNAL);
	*out = (struct crypto_ed25519 *)(void *)p;
	return K_OK;
}

k_status crypto_ed25519_from_pem(const char *pem, struct crypto_ed25519 **out)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	ENSURE(b != NULL, K_E_INTERNAL);
	EVP_PKEY *p = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	BIO_free(b);
	ENSURE(p != NULL, K_E_VALIDATION);
	*out = (struct crypto_ed25519 *)(void *)p;
	return K_OK;
}

void crypto_ed25519_free(struct crypto_ed25519 *k)
{
	EVP_PKEY_free(pkey_of(k));
}

k_status crypto_ed25519_public_raw(const struct crypto_ed25519 *k,
				   uint8_t out[CRYPTO_ED25519_PUBLIC_LEN])
{
	size_t n = CRYPTO_ED25519_PUBLIC_LEN;
	ENSURE(EVP_PKEY_get_raw_public_key(pkey_of(k), out, &n) == 1 &&
		       n == CRYPTO_ED25519_PUBLIC_LEN,
	       K_E_INTERNAL);
	return K_OK;
}

k_status crypto_ed25519_public_pem(const struct crypto_ed25519 *k, struct kbuf *out)
{
	BIO *b = BIO_new(BIO_s_mem());
	ENSURE(b != NULL, K_E_INTERNAL);
	k_status rc = K_E_INTERNAL;
	char *p = NULL;
	if (PEM_write_bio_PUBKEY(b, pkey_of(k)) == 1) {
		long n = BIO_get_mem_data(b, &p);
		if (n > 0)
			rc = kbuf_append(out, p, (size_t)n);
	}
	BIO_free(b);
	return rc;
}

k_status crypto_ed25519_sign(const struct crypto_ed25519 *k, struct kslice msg,
			     uint8_t sig[CRYPTO_ED25519_SIG_LEN])
{
	size_t n = CRYPTO_ED25519_SIG_LEN;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	ENSURE(ctx != NULL, K_E_INTERNAL);
	k_status rc = K_E_INTERNAL;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey_of(k)) == 1 &&
	    EVP_DigestSign(ctx, sig, &n, msg.ptr, msg.len) == 1 && n == CRYPTO_ED25519_SIG_LEN)
		rc = K_OK;
	EVP_MD_CTX_free(ctx);
	return rc;
}

k_status crypto_ed25519_verify(const struct crypto_ed25519 *k, struct kslice msg, struct kslice sig,
			       bool *valid)
{
	*valid = false;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	ENSURE(ctx != NULL, K_E_INTERNAL);
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey_of(k)) == 1 &&
	    EVP_DigestVerify(ctx, sig.ptr, sig.len, msg.ptr, msg.len) == 1)
		*valid = true;
	EVP_MD_CTX_free(ctx);
	return K_OK;
}
