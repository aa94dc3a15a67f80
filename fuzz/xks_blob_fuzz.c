/*
 * xks_blob_fuzz.c — the format-2 ciphertext blob of keys in external key
 * stores (docs/CIPHERTEXT.md, kms/xks_keys.h).
 *
 * Input: a candidate blob. kms_xks_blob_parse() must accept only blobs
 * that claim format 2, with every slice inside the input, the IV 12 or 16
 * bytes, the metadata at most 20, the tag 16, and the sealed part at least
 * a format-1 blob long; the slices must then cover the input exactly.
 */
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "crypto/crypto.h"
#include "kms/xks_keys.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(struct kslice s, const uint8_t *p, size_t n)
{
	return s.len == 0 || (s.ptr >= p && s.ptr + s.len <= p + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	struct kms_xks_blob b;
	if (k_failed(kms_xks_blob_parse(kslice_make(data, size), &b)))
		return 0;
	if (!kms_xks_blob_claims(kslice_make(data, size)) || b.version == 0)
		abort();
	if (!inside(b.header, data, size) || !inside(b.iv, data, size) ||
	    !inside(b.meta, data, size) || !inside(b.tag, data, size) ||
	    !inside(b.sealed, data, size))
		abort();
	if (b.header.len != KMS_XKS_BLOB_HEADER_LEN || (b.iv.len != 12 && b.iv.len != 16) ||
	    b.meta.len > 20 || b.tag.len != 16 || b.sealed.len < CRYPTO_BLOB_OVERHEAD)
		abort();
	/* header, two length bytes, the fields: the whole input, in order */
	if (b.header.len + 2 + b.iv.len + b.meta.len + b.tag.len + b.sealed.len != size ||
	    b.sealed.ptr + b.sealed.len != data + size)
		abort();
	return 0;
}
