/*
 * ectx_fuzz.c — the encryption-context canonicalizer.
 *
 * Input: JSON text. Whatever jansson accepts goes to
 * crypto_ectx_canonical(), which must refuse anything but an object of
 * strings (leaving its output untouched) and, for an object, produce an
 * encoding that parses back (count, then length-prefixed pairs in
 * strictly increasing key order) to exactly the object's pairs.
 */
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "crypto/crypto.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the canonical encoding back and checks it against the object. */
static void check_encoding(const json_t *ctx, struct kslice enc)
{
	struct kcursor c = kcursor_make(enc);
	uint32_t count;
	if (k_failed(kcursor_read_u32be(&c, &count)))
		abort();
	if (ctx == NULL ? count != 0 : count != json_object_size(ctx))
		abort();
	struct kslice prev = {NULL, 0};
	for (uint32_t i = 0; i < count; i++) {
		uint32_t kl, vl;
		struct kslice k, v;
		if (k_failed(kcursor_read_u32be(&c, &kl)) ||
		    k_failed(kcursor_read_slice(&c, kl, &k)) ||
		    k_failed(kcursor_read_u32be(&c, &vl)) ||
		    k_failed(kcursor_read_slice(&c, vl, &v)))
			abort();
		if (i > 0) {
			size_t m = prev.len < k.len ? prev.len : k.len;
			int cmp = m ? memcmp(prev.ptr, k.ptr, m) : 0;
			if (cmp > 0 || (cmp == 0 && prev.len >= k.len))
				abort(); /* keys must be strictly increasing */
		}
		prev = k;
		char key[1024];
		if (kl >= sizeof key || memchr(k.ptr, 0, kl) != NULL)
			continue; /* jansson keys with NUL cannot be looked up by C string */
		memcpy(key, k.ptr, kl);
		key[kl] = 0;
		const json_t *jv = json_object_get(ctx, key);
		if (!json_is_string(jv) || json_string_length(jv) != vl ||
		    (vl > 0 && memcmp(json_string_value(jv), v.ptr, vl) != 0))
			abort();
	}
	if (kcursor_left(&c) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 200000)
		return 0;
	json_error_t err;
	json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	struct kbuf out;
	kbuf_init(&out, CRYPTO_ECTX_MAX + 16);
	if (j != NULL) {
		k_status rc = crypto_ectx_canonical(j, &out);
		if (k_ok(rc))
			check_encoding(j, kbuf_slice(&out));
		else if (!k_is(rc, K_E_VALIDATION) || out.len != 0)
			abort();
		json_decref(j);
	}
	kbuf_reset(&out);
	if (k_failed(crypto_ectx_canonical(NULL, &out)))
		abort();
	check_encoding(NULL, kbuf_slice(&out));
	kbuf_release(&out);
	return 0;
}
