/*
 * blob_fuzz.c — the symmetric ciphertext blob (docs/CIPHERTEXT.md).
 *
 * Input: a candidate blob. crypto_blob_parse() must accept exactly the
 * well-formed ones, with slices inside the input; a parsed blob is then
 * decrypted with a fixed backing key (the tag check must refuse it unless
 * the fuzzer forged GCM), and a blob of the input as plaintext must parse
 * back to the same fields and decrypt to the input.
 */
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "core/secret.h"
#include "crypto/crypto.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ksecret *backing;

static bool inside(struct kslice s, const uint8_t *p, size_t n)
{
	return s.len == 0 || (s.ptr >= p && s.ptr + s.len <= p + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	if (backing == NULL) {
		uint8_t k[CRYPTO_KEY_LEN];
		memset(k, 0x42, sizeof k);
		backing = ksecret_from(k, sizeof k);
		if (backing == NULL)
			abort();
	}
	struct kbuf pt, blob;
	kbuf_init(&pt, 16384);
	kbuf_init(&blob, 16384);
	static const uint8_t empty_ctx[4] = {0, 0, 0, 0};
	struct kslice ectx = kslice_make(empty_ctx, sizeof empty_ctx);

	struct crypto_blob b;
	if (k_ok(crypto_blob_parse(kslice_make(data, size), &b))) {
		if (!inside(b.header, data, size) || !inside(b.ciphertext, data, size) ||
		    !inside(b.tag, data, size) || b.tag.len != CRYPTO_TAG_LEN ||
		    b.header.len != CRYPTO_BLOB_HEADER_LEN)
			abort();
		k_status rc = crypto_sym_decrypt(backing, &b, ectx, &pt);
		if (!k_is(rc, K_E_INVALID_CIPHERTEXT) && k_failed(rc))
			abort();
		kbuf_reset(&pt);
	}

	/* Round trip: the input as plaintext. */
	uint8_t id[16], nonce[16];
	memset(id, 0xA5, sizeof id);
	memset(nonce, 0x5A, sizeof nonce);
	if (k_failed(crypto_sym_encrypt_with_nonce(backing, id, 7, ectx, kslice_make(data, size),
						   nonce, &blob)))
		abort();
	struct crypto_blob rb;
	if (k_failed(crypto_blob_parse(kbuf_slice(&blob), &rb)) || rb.version != 7 ||
	    memcmp(rb.key_id, id, 16) != 0 || rb.ciphertext.len != size)
		abort();
	if (k_failed(crypto_sym_decrypt(backing, &rb, ectx, &pt)) || pt.len != size ||
	    (size > 0 && memcmp(pt.ptr, data, size) != 0))
		abort();
	kbuf_release(&pt);
	kbuf_release(&blob);
	return 0;
}
