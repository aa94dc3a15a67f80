/*
 * ectx.c — the canonical encoding of an encryption context.
 *
 * The context is authenticated data: decryption must present the same
 * pairs. JSON gives no stable byte form (key order, escapes), so both
 * sides encode the pairs in one canonical way before they reach GCM.
 */
#include "crypto/crypto.h"
#include "crypto/internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

struct ectx_pair {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *val;
	size_t val_len;
};

/* Bytewise order on the UTF-8 key; a key sorts before any longer key it prefixes. */
static int pair_cmp(const void *a, const void *b)
{
	const struct ectx_pair *x = a, *y = b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = n > 0 ? memcmp(x->key, y->key, n) : 0;
	if (c != 0)
		return c;
	if (x->key_len == y->key_len)
		return 0;
	return x->key_len < y->key_len ? -1 : 1;
}

static K_MUST_CHECK k_status append_field(struct kbuf *out, const uint8_t *p, size_t n)
{
	/* n <= CRYPTO_ECTX_MAX was checked by the caller, so the cast is exact. */
	GUARD(kbuf_append_u32be(out, (uint32_t)n));
	return kbuf_append(out, p, n);
}

/*
 * Length-prefixing every key and value is what keeps {"a":"bc"} and
 * {"ab":"c"} apart; a plain concatenation would encode both as "abc".
 * The whole encoding is measured before anything is written, so a context
 * over the bound fails without touching out.
 */
k_status crypto_ectx_canonical(const json_t *ctx, struct kbuf *out)
{
	k_status rc = K_E_INTERNAL;
	struct ectx_pair *pairs = NULL;
	size_t base = out->len;
	size_t count = 0;
	size_t total = 4;
	const char *key;
	size_t key_len;
	json_t *val;

	if (ctx == NULL)
		return kbuf_append_u32be(out, 0);
	ENSURE(json_is_object(ctx), K_E_VALIDATION);
	size_t n = json_object_size(ctx);
	if (n == 0)
		return kbuf_append_u32be(out, 0);
	/* Every pair takes at least its two 4-byte lengths. */
	ENSURE(n <= (CRYPTO_ECTX_MAX - 4) / 8, K_E_VALIDATION);
	pairs = calloc(n, sizeof *pairs);
	ENSURE(pairs != NULL, K_E_INTERNAL);

	/* Iteration does not modify the object; jansson just lacks a const iterator. */
	json_t *obj = (json_t *)ctx;
	json_object_keylen_foreach(obj, key, key_len, val)
	{
		ENSURE_GOTO(count < n, K_E_INTERNAL);
		ENSURE_GOTO(json_is_string(val), K_E_VALIDATION);
		size_t val_len = json_string_length(val);
		ENSURE_GOTO(key_len <= CRYPTO_ECTX_MAX && val_len <= CRYPTO_ECTX_MAX,
			    K_E_VALIDATION);
		/* total <= CRYPTO_ECTX_MAX here, so this sum cannot overflow. */
		total += 8 + key_len + val_len;
		ENSURE_GOTO(total <= CRYPTO_ECTX_MAX, K_E_VALIDATION);
		pairs[count].key = (const uint8_t *)key;
		pairs[count].key_len = key_len;
		pairs[count].val = (const uint8_t *)json_string_value(val);
		pairs[count].val_len = val_len;
		count++;
	}
	ENSURE_GOTO(count == n, K_E_INTERNAL);
	qsort(pairs, count, sizeof *pairs, pair_cmp);

	GUARD_GOTO(kbuf_append_u32be(out, (uint32_t)count));
	for (size_t i = 0; i < count; i++) {
		GUARD_GOTO(append_field(out, pairs[i].key, pairs[i].key_len));
		GUARD_GOTO(append_field(out, pairs[i].val, pairs[i].val_len));
	}
	rc = K_OK;
out:
	if (k_failed(rc))
		crypto_kbuf_truncate(out, base);
	free(pairs);
	return rc;
}
