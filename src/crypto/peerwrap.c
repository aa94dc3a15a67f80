/*
 * peerwrap.c — key material sealed for a peer deployment (peerwrap.h).
 */
#include "crypto/peerwrap.h"

#include <stdio.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto/crypto.h"
#include "crypto/internal.h"
#include "core/banned.h"

#define MAGIC "KPW1"
#define MAGIC_LEN 4
#define LABEL "kinko/peer-wrap/v1"
#define OAEP_ALG "RSAES_OAEP_SHA_256"
#define EPHEMERAL_LEN 32
#define MAX_WRAPPED_KEY 512
#define TAG_LEN 16

/* The public key of a PEM text; NULL if it is not one RSA key of enough bits. */
static EVP_PKEY *load_public(struct kslice pem)
{
	if (pem.len == 0 || pem.len > CRYPTO_PEER_MAX_PEM)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem.ptr, (int)pem.len);
	EVP_PKEY *p = b != NULL ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (p != NULL && (!EVP_PKEY_is_a(p, "RSA") || EVP_PKEY_get_bits(p) < CRYPTO_PEER_MIN_BITS ||
			  EVP_PKEY_get_size(p) > MAX_WRAPPED_KEY)) {
		EVP_PKEY_free(p);
		p = NULL;
	}
	return p;
}

k_status crypto_peer_pem_check(struct kslice pem)
{
	EVP_PKEY *p = load_public(pem);
	EVP_PKEY_free(p);
	return p != NULL ? K_OK : K_E_VALIDATION;
}

/* RSAES-OAEP with SHA-256 and MGF1-SHA-256 of the ephemeral key, appended to out. */
static K_MUST_CHECK k_status oaep_wrap(EVP_PKEY *peer, const uint8_t *key, size_t len,
				       uint8_t wrapped[MAX_WRAPPED_KEY], size_t *wrapped_len)
{
	k_status rc = K_E_INTERNAL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL);
	*wrapped_len = MAX_WRAPPED_KEY;
	if (ctx != NULL && EVP_PKEY_encrypt_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1 &&
	    EVP_PKEY_encrypt(ctx, wrapped, wrapped_len, key, len) == 1)
		rc = K_OK;
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

/*
 * A fresh AES-256 key per message, wrapped for the peer; the payload
 * under it with AES-256-GCM, the label and the caller's aad as AAD.
 */
k_status crypto_peer_seal(struct kslice peer_pem, struct kslice aad, const struct ksecret *payload,
			  struct kbuf *out)
{
	EVP_PKEY *peer = load_public(peer_pem);
	ENSURE(peer != NULL, K_E_VALIDATION);
	size_t start = out->len;
	uint8_t wrapped[MAX_WRAPPED_KEY], iv[CRYPTO_GCM_IV_LEN];
	size_t wlen = 0;
	k_status rc = K_OK;
	struct ksecret *k = crypto_random_secret(EPHEMERAL_LEN);
	ENSURE_GOTO(k != NULL, K_E_INTERNAL);
	GUARD_GOTO(crypto_nonce(iv, sizeof iv));
	GUARD_GOTO(oaep_wrap(peer, ksecret_cbytes(k), EPHEMERAL_LEN, wrapped, &wlen));
	uint8_t len2[2] = {(uint8_t)(wlen >> 8), (uint8_t)wlen};
	GUARD_GOTO(kbuf_append(out, MAGIC, MAGIC_LEN));
	GUARD_GOTO(kbuf_append(out, len2, 2));
	GUARD_GOTO(kbuf_append(out, wrapped, wlen));
	GUARD_GOTO(kbuf_append(out, iv, sizeof iv));
	GUARD_GOTO(crypto_gcm_seal(ksecret_cbytes(k), iv, KSLICE_LIT(LABEL), aad,
				   ksecret_cbytes(payload), ksecret_len(payload), out));
out:
	if (k_failed(rc))
		crypto_kbuf_truncate(out, start);
	ksecret_free(k);
	EVP_PKEY_free(peer);
	return rc;
}

k_status crypto_peer_open(const struct asym_key *own, struct kslice aad, struct kslice sealed,
			  struct ksecret **out)
{
	*out = NULL;
	struct kcursor cur = kcursor_make(sealed);
	struct kslice magic, wrapped, iv, body;
	uint16_t wlen = 0;
	ENSURE(k_ok(kcursor_read_slice(&cur, MAGIC_LEN, &magic)) && kslice_eq_cstr(magic, MAGIC),
	       K_E_INVALID_CIPHERTEXT);
	ENSURE(k_ok(kcursor_read_u16be(&cur, &wlen)) &&
		       k_ok(kcursor_read_slice(&cur, wlen, &wrapped)) &&
		       k_ok(kcursor_read_slice(&cur, CRYPTO_GCM_IV_LEN, &iv)),
	       K_E_INVALID_CIPHERTEXT);
	ENSURE(k_ok(kcursor_read_slice(&cur, kcursor_left(&cur), &body)) && body.len > TAG_LEN,
	       K_E_INVALID_CIPHERTEXT);
	struct ksecret *k = NULL;
	k_status rc = asym_oaep_decrypt(own, OAEP_ALG, wrapped, &k);
	if (k_failed(rc) || ksecret_len(k) != EPHEMERAL_LEN) {
		ksecret_free(k);
		return K_E_INVALID_CIPHERTEXT;
	}
	size_t n = body.len - TAG_LEN;
	struct ksecret *pt = ksecret_new(n);
	ENSURE_GOTO(pt != NULL, K_E_INTERNAL);
	rc = crypto_gcm_open(ksecret_cbytes(k), iv.ptr, KSLICE_LIT(LABEL), aad,
			     kslice_make(body.ptr, n), kslice_make(body.ptr + n, TAG_LEN),
			     ksecret_bytes(pt));
	ENSURE_GOTO(k_ok(rc), K_E_INVALID_CIPHERTEXT);
	*out = pt;
	pt = NULL;
out:
	ksecret_free(pt);
	ksecret_free(k);
	return rc;
}

k_status crypto_peer_public_pem(const struct asym_key *own, struct kbuf *out)
{
	struct kbuf der;
	kbuf_init(&der, MAX_WRAPPED_KEY * 4);
	k_status rc = asym_public_der(own, &der);
	const uint8_t *p = der.ptr;
	EVP_PKEY *pub = k_ok(rc) ? d2i_PUBKEY(NULL, &p, (long)der.len) : NULL;
	BIO *b = BIO_new(BIO_s_mem());
	char *text = NULL;
	long n = 0;
	if (k_ok(rc))
		rc = pub != NULL && b != NULL && PEM_write_bio_PUBKEY(b, pub) == 1 ? K_OK
										   : K_E_INTERNAL;
	if (k_ok(rc)) {
		n = BIO_get_mem_data(b, &text);
		rc = n > 0 ? kbuf_append(out, text, (size_t)n) : K_E_INTERNAL;
	}
	BIO_free(b);
	EVP_PKEY_free(pub);
	kbuf_release(&der);
	return rc;
}

k_status crypto_peer_fingerprint(struct kslice pem, char out[65])
{
	EVP_PKEY *p = load_public(pem);
	ENSURE(p != NULL, K_E_VALIDATION);
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(p, &der);
	uint8_t h[CRYPTO_SHA256_LEN];
	k_status rc = n > 0 ? crypto_sha256(der, (size_t)n, h) : K_E_INTERNAL;
	OPENSSL_free(der);
	EVP_PKEY_free(p);
	GUARD(rc);
	for (size_t i = 0; i < sizeof h; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
	return K_OK;
}
