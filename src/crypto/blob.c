/*
 * blob.c — parsing the ciphertext blob of a SYMMETRIC_DEFAULT key.
 */
#include "crypto/crypto.h"

#include <string.h>

#include "core/banned.h"

/*
 * The blob arrives from the client, so this is attacker-controlled input.
 * Fields are read through a cursor into a local struct, and *out is
 * written only once the whole blob has been accepted. Every way of not
 * being a blob is the same answer, K_E_INVALID_CIPHERTEXT, which is what
 * KMS returns for a ciphertext it cannot use.
 */
k_status crypto_blob_parse(struct kslice in, struct crypto_blob *out)
{
	struct crypto_blob b;
	struct kcursor c = kcursor_make(in);
	struct kslice s;
	uint8_t magic = 0, fmt = 0;

	ENSURE(in.ptr != NULL && in.len >= CRYPTO_BLOB_OVERHEAD, K_E_INVALID_CIPHERTEXT);
	memset(&b, 0, sizeof b);
	ENSURE(k_ok(kcursor_read_u8(&c, &magic)) && magic == CRYPTO_BLOB_MAGIC,
	       K_E_INVALID_CIPHERTEXT);
	ENSURE(k_ok(kcursor_read_u8(&c, &fmt)) && fmt == CRYPTO_BLOB_VERSION,
	       K_E_INVALID_CIPHERTEXT);
	ENSURE(k_ok(kcursor_read_slice(&c, sizeof b.key_id, &s)), K_E_INVALID_CIPHERTEXT);
	memcpy(b.key_id, s.ptr, sizeof b.key_id);
	/* Backing-key versions start at 1; 0 is never written. */
	ENSURE(k_ok(kcursor_read_u32be(&c, &b.version)) && b.version != 0, K_E_INVALID_CIPHERTEXT);
	ENSURE(k_ok(kcursor_read_slice(&c, sizeof b.nonce, &s)), K_E_INVALID_CIPHERTEXT);
	memcpy(b.nonce, s.ptr, sizeof b.nonce);
	ENSURE(c.pos == CRYPTO_BLOB_HEADER_LEN, K_E_INVALID_CIPHERTEXT);
	b.header = kslice_make(in.ptr, CRYPTO_BLOB_HEADER_LEN);
	/* Whatever lies between the header and the last 16 bytes is ciphertext. */
	ENSURE(k_ok(kcursor_read_slice(&c, kcursor_left(&c) - CRYPTO_TAG_LEN, &b.ciphertext)),
	       K_E_INVALID_CIPHERTEXT);
	ENSURE(k_ok(kcursor_read_slice(&c, CRYPTO_TAG_LEN, &b.tag)), K_E_INVALID_CIPHERTEXT);
	ENSURE(kcursor_left(&c) == 0, K_E_INVALID_CIPHERTEXT);
	*out = b;
	return K_OK;
}
