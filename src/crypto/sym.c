/*
 * sym.c — Encrypt and Decrypt for SYMMETRIC_DEFAULT keys.
 *
 * Each message gets its own AES-256-GCM key and IV, derived with HKDF from
 * the backing key and a fresh 16-byte nonce (see crypto.h). A backing key
 * can then encrypt far more than the 2^32 messages that random 96-bit IVs
 * allow under a single GCM key.
 */
#include "crypto/crypto.h"
#include "crypto/internal.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "core/banned.h"

#define SYM_INFO_LABEL "kinko/v1/sym"
#define SYM_INFO_LABEL_LEN (sizeof(SYM_INFO_LABEL) - 1)
#define SYM_NONCE_OFFSET 22
/* HKDF output: the GCM key, then the GCM IV. */
#define SYM_OKM_LEN (CRYPTO_KEY_LEN + CRYPTO_GCM_IV_LEN)

/*
 * HKDF-SHA256(ikm = backing key, salt = nonce, info = label || header).
 * The header goes into info so that the derived key is bound to the key
 * id, the backing-key version and the format version, not only to the
 * nonce. okm is the caller's stack array; the caller wipes it. The
 * derivation runs on the thread's reused HMAC context (hkdf.c), which
 * gives the same bytes as OpenSSL's EVP_KDF "HKDF" without its per-call
 * context and algorithm fetches.
 */
static K_MUST_CHECK k_status sym_derive(const struct ksecret *backing, const uint8_t *header,
					uint8_t okm[SYM_OKM_LEN])
{
	uint8_t info[SYM_INFO_LABEL_LEN + CRYPTO_BLOB_HEADER_LEN];

	memcpy(info, SYM_INFO_LABEL, SYM_INFO_LABEL_LEN);
	memcpy(info + SYM_INFO_LABEL_LEN, header, CRYPTO_BLOB_HEADER_LEN);
	return crypto_hkdf_sha256(kslice_make(ksecret_cbytes(backing), ksecret_len(backing)),
				  kslice_make(header + SYM_NONCE_OFFSET, CRYPTO_NONCE_LEN),
				  kslice_make(info, sizeof info), okm, SYM_OKM_LEN);
}

static void put_u32be(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

k_status crypto_sym_encrypt(const struct ksecret *backing, const uint8_t key_id[16],
			    uint32_t version, struct kslice ectx_canonical, struct kslice plaintext,
			    struct kbuf *out)
{
	uint8_t nonce[CRYPTO_NONCE_LEN];
	GUARD(crypto_nonce(nonce, sizeof nonce));
	return crypto_sym_encrypt_with_nonce(backing, key_id, version, ectx_canonical, plaintext,
					     nonce, out);
}

/*
 * Writes header || ciphertext || tag. The header is both part of the HKDF
 * info and the first part of the AAD (the context follows it), so any
 * change to it, the format version included, fails authentication. The
 * derived key and IV live in a stack array that is wiped on every exit.
 */
k_status crypto_sym_encrypt_with_nonce(const struct ksecret *backing, const uint8_t key_id[16],
				       uint32_t version, struct kslice ectx_canonical,
				       struct kslice plaintext, const uint8_t nonce[16],
				       struct kbuf *out)
{
	k_status rc = K_E_INTERNAL;
	uint8_t header[CRYPTO_BLOB_HEADER_LEN];
	uint8_t okm[SYM_OKM_LEN];
	size_t base = out->len;

	ENSURE(backing != NULL && ksecret_len(backing) == CRYPTO_KEY_LEN, K_E_INTERNAL);
	ENSURE(key_id != NULL && nonce != NULL && version != 0, K_E_INTERNAL);
	ENSURE(plaintext.ptr != NULL || plaintext.len == 0, K_E_INTERNAL);
	ENSURE(ectx_canonical.ptr != NULL || ectx_canonical.len == 0, K_E_INTERNAL);
	/* Refuse before any cryptography if the blob cannot fit. */
	ENSURE(out->max - out->len >= CRYPTO_BLOB_OVERHEAD &&
		       out->max - out->len - CRYPTO_BLOB_OVERHEAD >= plaintext.len,
	       K_E_VALIDATION);

	header[0] = CRYPTO_BLOB_MAGIC;
	header[1] = CRYPTO_BLOB_VERSION;
	memcpy(header + 2, key_id, 16);
	put_u32be(header + 18, version);
	memcpy(header + SYM_NONCE_OFFSET, nonce, CRYPTO_NONCE_LEN);

	GUARD_GOTO(sym_derive(backing, header, okm));
	GUARD_GOTO(kbuf_append(out, header, sizeof header));
	GUARD_GOTO(crypto_gcm_seal(okm, okm + CRYPTO_KEY_LEN, kslice_make(header, sizeof header),
				   ectx_canonical, plaintext.ptr, plaintext.len, out));
	rc = K_OK;
out:
	OPENSSL_cleanse(okm, sizeof okm);
	if (k_failed(rc))
		crypto_kbuf_truncate(out, base);
	return rc;
}

/*
 * The plaintext is staged in a private heap buffer and appended to out
 * only after the tag has verified, so a failed decryption leaves out
 * exactly as it was. The staging buffer is wiped before it is freed.
 */
k_status crypto_sym_decrypt(const struct ksecret *backing, const struct crypto_blob *blob,
			    struct kslice ectx_canonical, struct kbuf *out)
{
	k_status rc = K_E_INTERNAL;
	uint8_t okm[SYM_OKM_LEN];
	uint8_t *pt = NULL;
	size_t n;

	ENSURE(backing != NULL && ksecret_len(backing) == CRYPTO_KEY_LEN, K_E_INTERNAL);
	ENSURE(blob != NULL, K_E_INTERNAL);
	ENSURE(ectx_canonical.ptr != NULL || ectx_canonical.len == 0, K_E_INTERNAL);
	/* A hand-built blob must still look like one crypto_blob_parse returned. */
	ENSURE(blob->header.ptr != NULL && blob->header.len == CRYPTO_BLOB_HEADER_LEN,
	       K_E_INVALID_CIPHERTEXT);
	ENSURE(blob->tag.ptr != NULL && blob->tag.len == CRYPTO_TAG_LEN, K_E_INVALID_CIPHERTEXT);
	ENSURE(blob->ciphertext.ptr != NULL || blob->ciphertext.len == 0, K_E_INVALID_CIPHERTEXT);
	n = blob->ciphertext.len;
	ENSURE(out->max - out->len >= n, K_E_VALIDATION);

	/*
	 * Salt and info come from the header bytes themselves, the same bytes
	 * that are authenticated, rather than from the parsed copies.
	 */
	GUARD_GOTO(sym_derive(backing, blob->header.ptr, okm));
	if (n > 0) {
		pt = malloc(n);
		ENSURE_GOTO(pt != NULL, K_E_INTERNAL);
	}
	GUARD_GOTO(crypto_gcm_open(okm, okm + CRYPTO_KEY_LEN, blob->header, ectx_canonical,
				   blob->ciphertext, blob->tag, pt));
	GUARD_GOTO(kbuf_append(out, pt, n));
	rc = K_OK;
out:
	OPENSSL_cleanse(okm, sizeof okm);
	if (pt != NULL) {
		OPENSSL_cleanse(pt, n);
		free(pt);
	}
	return rc;
}
