/*
 * xks_blob.c — the format-2 ciphertext blob of keys in external key
 * stores (kms/xks_keys.h; the layout is docs/CIPHERTEXT.md's).
 */
#include "kms/xks_keys.h"

#include <string.h>

#include "crypto/crypto.h"
#include "kms/xks_link.h"
#include "core/banned.h"

bool kms_xks_blob_claims(struct kslice in)
{
	return in.ptr != NULL && in.len >= 2 && in.ptr[0] == CRYPTO_BLOB_MAGIC &&
	       in.ptr[1] == KMS_XKS_BLOB_VERSION;
}

/* One length-prefixed field of at most `max` bytes (at least `min`). */
static K_MUST_CHECK k_status read_field(struct kcursor *c, size_t min, size_t max,
					struct kslice *out)
{
	uint8_t n = 0;
	ENSURE(k_ok(kcursor_read_u8(c, &n)) && n >= min && n <= max, K_E_INVALID_CIPHERTEXT);
	ENSURE(k_ok(kcursor_read_slice(c, n, out)), K_E_INVALID_CIPHERTEXT);
	return K_OK;
}

/*
 * The blob comes from the client: it is read through a cursor into a
 * local struct, and *out is written only once all of it is accepted.
 * The sealed part is at least a format-1 blob of an empty plaintext.
 */
k_status kms_xks_blob_parse(struct kslice in, struct kms_xks_blob *out)
{
	struct kms_xks_blob b;
	struct kcursor c = kcursor_make(in);
	struct kslice s;
	uint8_t magic = 0, fmt = 0;
	memset(&b, 0, sizeof b);
	ENSURE(in.ptr != NULL, K_E_INVALID_CIPHERTEXT);
	ENSURE(k_ok(kcursor_read_u8(&c, &magic)) && magic == CRYPTO_BLOB_MAGIC,
	       K_E_INVALID_CIPHERTEXT);
	ENSURE(k_ok(kcursor_read_u8(&c, &fmt)) && fmt == KMS_XKS_BLOB_VERSION,
	       K_E_INVALID_CIPHERTEXT);
	ENSURE(k_ok(kcursor_read_slice(&c, sizeof b.key_id, &s)), K_E_INVALID_CIPHERTEXT);
	memcpy(b.key_id, s.ptr, sizeof b.key_id);
	ENSURE(k_ok(kcursor_read_u32be(&c, &b.version)) && b.version != 0, K_E_INVALID_CIPHERTEXT);
	b.header = kslice_make(in.ptr, KMS_XKS_BLOB_HEADER_LEN);
	GUARD(read_field(&c, 12, KMS_XKS_IV_MAX, &b.iv));
	ENSURE(b.iv.len == 12 || b.iv.len == 16, K_E_INVALID_CIPHERTEXT);
	GUARD(read_field(&c, 0, KMS_XKS_METADATA_MAX, &b.meta));
	ENSURE(k_ok(kcursor_read_slice(&c, KMS_XKS_TAG_LEN, &b.tag)), K_E_INVALID_CIPHERTEXT);
	ENSURE(kcursor_left(&c) >= CRYPTO_BLOB_OVERHEAD, K_E_INVALID_CIPHERTEXT);
	ENSURE(k_ok(kcursor_read_slice(&c, kcursor_left(&c), &b.sealed)), K_E_INVALID_CIPHERTEXT);
	*out = b;
	return K_OK;
}
