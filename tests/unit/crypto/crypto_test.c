/*
 * crypto_test.c — the symmetric crypto core: blob format, per-message
 * derivation, encryption-context encoding, root-key wrapping.
 *
 * The known-answer vectors (kat_*) were computed independently of this
 * code, with a separate HKDF-SHA256 and AES-GCM implementation, from the
 * inputs written next to them; they pin the construction in crypto.h so
 * that a change to it cannot pass unnoticed.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/secret.h"
#include "crypto/crypto.h"
#include "testlib.h"

#include "core/banned.h"

/* ---- known-answer vectors ------------------------------------------------ */

/* backing key 00 01 .. 1f; key id below; backing-key version 3;
 * nonce a0 a1 .. af; context {"purpose":"kat","dept":"x"};
 * plaintext "kinko known-answer test". */
static const uint8_t kat_key_id[16] = {
	0x6f, 0x1c, 0x2a, 0x9e, 0x4b, 0x3d, 0x4e, 0x5f,
	0x8a, 0x7b, 0x6c, 0x5d, 0x4e, 0x3f, 0x2a, 0x1b,
};
static const char kat_plaintext[] = "kinko known-answer test";
static const uint8_t kat_ectx[35] = {
	0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x64, 0x65, 0x70, 0x74,
	0x00, 0x00, 0x00, 0x01, 0x78, 0x00, 0x00, 0x00, 0x07, 0x70, 0x75, 0x72,
	0x70, 0x6f, 0x73, 0x65, 0x00, 0x00, 0x00, 0x03, 0x6b, 0x61, 0x74,
};
static const uint8_t kat_blob[77] = {
	0x4b, 0x01, 0x6f, 0x1c, 0x2a, 0x9e, 0x4b, 0x3d, 0x4e, 0x5f, 0x8a, 0x7b, 0x6c,
	0x5d, 0x4e, 0x3f, 0x2a, 0x1b, 0x00, 0x00, 0x00, 0x03, 0xa0, 0xa1, 0xa2, 0xa3,
	0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xce,
	0x37, 0xe2, 0xfb, 0x5a, 0x05, 0xff, 0x43, 0x01, 0x2e, 0x0d, 0x05, 0x9b, 0xc9,
	0xaa, 0x31, 0x49, 0x52, 0x7e, 0x12, 0x9d, 0x46, 0x58, 0x40, 0xdf, 0x1d, 0x14,
	0x48, 0x2d, 0x33, 0x34, 0x1e, 0x61, 0x81, 0x1a, 0x40, 0x78, 0x68, 0x52,
};
/* The same inputs with an empty plaintext and no context. */
static const uint8_t kat_blob_empty[54] = {
	0x4b, 0x01, 0x6f, 0x1c, 0x2a, 0x9e, 0x4b, 0x3d, 0x4e, 0x5f, 0x8a, 0x7b, 0x6c, 0x5d,
	0x4e, 0x3f, 0x2a, 0x1b, 0x00, 0x00, 0x00, 0x03, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5,
	0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xe7, 0xda, 0x62, 0x96,
	0x5b, 0xb6, 0xe5, 0x57, 0xe3, 0x83, 0xbd, 0x52, 0xc2, 0x3b, 0x04, 0x58,
};
/* root key 40 41 .. 5f; iv 00 01 .. 0b; material c0 c1 .. df; AAD kat_wrap_aad. */
static const char kat_wrap_aad[] =
	"arn:aws:kms:us-east-1:111122223333:key/6f1c2a9e-4b3d-4e5f-8a7b-6c5d4e3f2a1b#1";
static const uint8_t kat_wrapped[60] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0xfa, 0xc4, 0xae,
	0xbb, 0xb3, 0x49, 0x82, 0x67, 0x0a, 0xdb, 0x4a, 0x09, 0x74, 0x20, 0x02, 0x74, 0x53, 0x15,
	0xff, 0xda, 0xb8, 0x99, 0x7b, 0x84, 0x36, 0xf9, 0x32, 0x4d, 0x9d, 0x6c, 0xb7, 0x81, 0x68,
	0x3b, 0xc7, 0xf6, 0xf6, 0xca, 0xd5, 0x03, 0x22, 0xe1, 0xa7, 0x33, 0x2a, 0x82, 0x92, 0xe5,
};

/* ---- helpers ----------------------------------------------------------- */

static const uint8_t test_key_id[16] = "0123456789abcdef";

static struct ksecret *counting_secret(uint8_t first, size_t n)
{
	uint8_t b[64];
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(first + i);
	return ksecret_from(b, n);
}

/* Canonical encoding of a JSON text; the buffer must be released. */
static K_MUST_CHECK k_status canon(const char *json, struct kbuf *out)
{
	json_error_t err;
	json_t *j = json_loads(json, 0, &err);
	kbuf_init(out, CRYPTO_ECTX_MAX);
	if (j == NULL)
		return K_E_SERIALIZATION;
	k_status rc = crypto_ectx_canonical(j, out);
	json_decref(j);
	return rc;
}

static bool buf_is(const struct kbuf *b, const void *p, size_t n)
{
	return b->len == n && (n == 0 || memcmp(b->ptr, p, n) == 0);
}

/* An output buffer that already holds something, to check it is left alone. */
#define PREFIX "existing"
static void out_with_prefix(struct kbuf *b, size_t max)
{
	kbuf_init(b, max);
	if (k_failed(kbuf_append_str(b, PREFIX)))
		abort();
}

static bool out_untouched(const struct kbuf *b)
{
	return buf_is(b, PREFIX, sizeof(PREFIX) - 1) && kbuf_valid(b);
}

/* Parses and decrypts in one step, as the Decrypt handler will. */
static K_MUST_CHECK k_status parse_and_decrypt(const struct ksecret *k, struct kslice blob,
					       struct kslice ectx, struct kbuf *out)
{
	struct crypto_blob b;
	k_status rc = crypto_blob_parse(blob, &b);
	if (k_failed(rc))
		return rc;
	return crypto_sym_decrypt(k, &b, ectx, out);
}

/* ---- tests ------------------------------------------------------------- */

static void test_roundtrip(void)
{
	struct ksecret *k = crypto_random_secret(32);
	struct kbuf ec;
	CHECK(k != NULL);
	CHECK(k_ok(canon("{\"purpose\":\"test\"}", &ec)));
	static const size_t sizes[] = {0, 1, 4096};
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		size_t n = sizes[s];
		uint8_t *pt = malloc(n + 1);
		CHECK(pt != NULL);
		CHECK(k_ok(crypto_random(pt, n)));
		struct kbuf blob, back;
		kbuf_init(&blob, 8192);
		kbuf_init(&back, 8192);
		CHECK(k_ok(crypto_sym_encrypt(k, test_key_id, 7, kbuf_slice(&ec),
					      kslice_make(pt, n), &blob)));
		CHECK_EQ_INT(blob.len, CRYPTO_BLOB_OVERHEAD + n);

		struct crypto_blob b;
		CHECK(k_ok(crypto_blob_parse(kbuf_slice(&blob), &b)));
		CHECK(memcmp(b.key_id, test_key_id, 16) == 0);
		CHECK_EQ_INT(b.version, 7);
		CHECK(memcmp(b.nonce, blob.ptr + 22, 16) == 0);
		CHECK(b.header.ptr == blob.ptr && b.header.len == CRYPTO_BLOB_HEADER_LEN);
		CHECK(b.ciphertext.ptr == blob.ptr + 38 && b.ciphertext.len == n);
		CHECK(b.tag.ptr == blob.ptr + 38 + n && b.tag.len == 16);
		if (n > 0)
			CHECK(memcmp(b.ciphertext.ptr, pt, n) != 0);

		CHECK(k_ok(crypto_sym_decrypt(k, &b, kbuf_slice(&ec), &back)));
		CHECK(buf_is(&back, pt, n));
		CHECK(kbuf_valid(&back));
		kbuf_release(&blob);
		kbuf_release(&back);
		free(pt);
	}
	kbuf_release(&ec);
	ksecret_free(k);
}

/* Output is appended, not overwritten. */
static void test_appends(void)
{
	struct ksecret *k = crypto_random_secret(32);
	struct kbuf blob, back;
	out_with_prefix(&blob, 1024);
	out_with_prefix(&back, 1024);
	CHECK(k_ok(crypto_sym_encrypt(k, test_key_id, 1, KSLICE_LIT("\0\0\0\0"), KSLICE_LIT("hi"),
				      &blob)));
	CHECK_EQ_INT(blob.len, sizeof(PREFIX) - 1 + CRYPTO_BLOB_OVERHEAD + 2);
	CHECK(memcmp(blob.ptr, PREFIX, sizeof(PREFIX) - 1) == 0);
	struct kslice s =
		kslice_make(blob.ptr + sizeof(PREFIX) - 1, blob.len - (sizeof(PREFIX) - 1));
	CHECK(k_ok(parse_and_decrypt(k, s, KSLICE_LIT("\0\0\0\0"), &back)));
	CHECK(buf_is(&back, PREFIX "hi", sizeof(PREFIX) + 1));
	kbuf_release(&blob);
	kbuf_release(&back);
	ksecret_free(k);
}

static void test_wrong_context(void)
{
	struct ksecret *k = crypto_random_secret(32);
	struct kbuf e1, e2, empty, blob, back;
	CHECK(k_ok(canon("{\"dept\":\"a\"}", &e1)));
	CHECK(k_ok(canon("{\"dept\":\"b\"}", &e2)));
	CHECK(k_ok(canon("{}", &empty)));
	kbuf_init(&blob, 1024);
	out_with_prefix(&back, 1024);
	CHECK(k_ok(crypto_sym_encrypt(k, test_key_id, 1, kbuf_slice(&e1), KSLICE_LIT("secret"),
				      &blob)));
	CHECK(k_is(parse_and_decrypt(k, kbuf_slice(&blob), kbuf_slice(&e2), &back),
		   K_E_INVALID_CIPHERTEXT));
	CHECK(out_untouched(&back));
	CHECK(k_is(parse_and_decrypt(k, kbuf_slice(&blob), kbuf_slice(&empty), &back),
		   K_E_INVALID_CIPHERTEXT));
	CHECK(out_untouched(&back));
	CHECK(k_is(parse_and_decrypt(k, kbuf_slice(&blob), kslice_make(NULL, 0), &back),
		   K_E_INVALID_CIPHERTEXT));
	CHECK(out_untouched(&back));
	CHECK(k_ok(parse_and_decrypt(k, kbuf_slice(&blob), kbuf_slice(&e1), &back)));
	CHECK(buf_is(&back, PREFIX "secret", sizeof(PREFIX) - 1 + 6));
	kbuf_release(&e1);
	kbuf_release(&e2);
	kbuf_release(&empty);
	kbuf_release(&blob);
	kbuf_release(&back);
	ksecret_free(k);
}

/* The example from the format document: concatenation would make these equal. */
static void test_ectx_ambiguity(void)
{
	static const uint8_t a_bc[] = {0, 0, 0, 1, 0, 0, 0, 1, 'a', 0, 0, 0, 2, 'b', 'c'};
	static const uint8_t ab_c[] = {0, 0, 0, 1, 0, 0, 0, 2, 'a', 'b', 0, 0, 0, 1, 'c'};
	struct ksecret *k = crypto_random_secret(32);
	struct kbuf e1, e2, blob, back;
	CHECK(k_ok(canon("{\"a\":\"bc\"}", &e1)));
	CHECK(k_ok(canon("{\"ab\":\"c\"}", &e2)));
	CHECK(buf_is(&e1, a_bc, sizeof a_bc));
	CHECK(buf_is(&e2, ab_c, sizeof ab_c));
	CHECK(!kslice_eq(kbuf_slice(&e1), kbuf_slice(&e2)));
	kbuf_init(&blob, 1024);
	out_with_prefix(&back, 1024);
	CHECK(k_ok(crypto_sym_encrypt(k, test_key_id, 1, kbuf_slice(&e1), KSLICE_LIT("x"), &blob)));
	CHECK(k_is(parse_and_decrypt(k, kbuf_slice(&blob), kbuf_slice(&e2), &back),
		   K_E_INVALID_CIPHERTEXT));
	CHECK(out_untouched(&back));
	kbuf_release(&blob);
	CHECK(k_ok(crypto_sym_encrypt(k, test_key_id, 1, kbuf_slice(&e2), KSLICE_LIT("x"), &blob)));
	CHECK(k_is(parse_and_decrypt(k, kbuf_slice(&blob), kbuf_slice(&e1), &back),
		   K_E_INVALID_CIPHERTEXT));
	CHECK(out_untouched(&back));
	kbuf_release(&e1);
	kbuf_release(&e2);
	kbuf_release(&blob);
	kbuf_release(&back);
	ksecret_free(k);
}

static void test_ectx_order(void)
{
	struct kbuf e1, e2, e3, e4;
	CHECK(k_ok(canon("{\"x\":\"1\",\"y\":\"2\"}", &e1)));
	CHECK(k_ok(canon("{\"y\":\"2\",\"x\":\"1\"}", &e2)));
	CHECK(kslice_eq(kbuf_slice(&e1), kbuf_slice(&e2)));
	CHECK_EQ_INT(e1.len, 4 + 2 * (4 + 1 + 4 + 1));

	/* Bytewise: a prefix sorts first; UTF-8 lead bytes sort after ASCII. */
	static const uint8_t sorted[] = {
		0, 0, 0,   4,	0, 0, 0, 1,    'a',  0, 0, 0, 1, '1', 0, 0,
		0, 2, 'a', 'b', 0, 0, 0, 1,    '2',  0, 0, 0, 1, 'b', 0, 0,
		0, 1, '3', 0,	0, 0, 2, 0xc3, 0xa9, 0, 0, 0, 1, '4',
	};
	CHECK(k_ok(canon("{\"\\u00e9\":\"4\",\"b\":\"3\",\"ab\":\"2\",\"a\":\"1\"}", &e3)));
	CHECK(buf_is(&e3, sorted, sizeof sorted));

	/* A key with an embedded NUL is not the same key as its prefix. */
	static const uint8_t nul_key[] = {0, 0, 0, 2, 0, 0,   0, 1,   'a', 0, 0, 0,
					  0, 0, 0, 0, 3, 'a', 0, 'b', 0,   0, 0, 0};
	json_t *j = json_object();
	CHECK(json_object_setn_new(j, "a\0b", 3, json_string("")) == 0);
	CHECK(json_object_set_new(j, "a", json_string("")) == 0);
	kbuf_init(&e4, 1024);
	CHECK(k_ok(crypto_ectx_canonical(j, &e4)));
	CHECK(buf_is(&e4, nul_key, sizeof nul_key));
	json_decref(j);
	kbuf_release(&e1);
	kbuf_release(&e2);
	kbuf_release(&e3);
	kbuf_release(&e4);
}

static void test_ectx_edges(void)
{
	static const uint8_t zero[] = {0, 0, 0, 0};
	struct kbuf e;
	kbuf_init(&e, 1024);
	CHECK(k_ok(crypto_ectx_canonical(NULL, &e)));
	CHECK(buf_is(&e, zero, 4));
	kbuf_release(&e);
	CHECK(k_ok(canon("{}", &e)));
	CHECK(buf_is(&e, zero, 4));
	kbuf_release(&e);

	/* Non-string values and non-objects are rejected without output. */
	static const char *const bad[] = {
		"{\"a\":1}",
		"{\"a\":\"x\",\"b\":null}",
		"{\"a\":{\"b\":\"c\"}}",
		"{\"a\":[\"b\"]}",
		"{\"a\":true}",
		"[\"a\"]",
		"\"a\"",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *j = json_loads(bad[i], JSON_DECODE_ANY, NULL);
		CHECK(j != NULL);
		out_with_prefix(&e, 1024);
		CHECK(k_is(crypto_ectx_canonical(j, &e), K_E_VALIDATION));
		CHECK(out_untouched(&e));
		kbuf_release(&e);
		json_decref(j);
	}

	/* The bound is on the whole encoding: exactly CRYPTO_ECTX_MAX passes. */
	size_t vlen = CRYPTO_ECTX_MAX - 4 - 8 - 1;
	char *v = malloc(vlen + 2);
	CHECK(v != NULL);
	memset(v, 'v', vlen + 1);
	v[vlen] = 0;
	json_t *j = json_object();
	CHECK(json_object_set_new(j, "k", json_string(v)) == 0);
	kbuf_init(&e, 2 * CRYPTO_ECTX_MAX);
	CHECK(k_ok(crypto_ectx_canonical(j, &e)));
	CHECK_EQ_INT(e.len, CRYPTO_ECTX_MAX);
	kbuf_release(&e);
	v[vlen] = 'v';
	v[vlen + 1] = 0;
	CHECK(json_object_set_new(j, "k", json_string(v)) == 0);
	out_with_prefix(&e, 2 * CRYPTO_ECTX_MAX);
	CHECK(k_is(crypto_ectx_canonical(j, &e), K_E_VALIDATION));
	CHECK(out_untouched(&e));
	kbuf_release(&e);
	json_decref(j);
	free(v);

	/* Many small pairs pass the bound too. */
	j = json_object();
	char key[16];
	for (int i = 0; i < 6000; i++) {
		snprintf(key, sizeof key, "k%05d", i);
		CHECK(json_object_set_new(j, key, json_string("v")) == 0);
	}
	out_with_prefix(&e, 2 * CRYPTO_ECTX_MAX);
	CHECK(k_is(crypto_ectx_canonical(j, &e), K_E_VALIDATION));
	CHECK(out_untouched(&e));
	kbuf_release(&e);
	json_decref(j);

	/* An output buffer too small for the encoding is left as it was. */
	kbuf_init(&e, 10);
	j = json_pack("{s:s}", "key", "value");
	CHECK(k_is(crypto_ectx_canonical(j, &e), K_E_VALIDATION));
	CHECK_EQ_INT(e.len, 0);
	kbuf_release(&e);
	json_decref(j);
}

/* Every byte of the blob is authenticated: flipping any one breaks it. */
static void test_every_byte_flip(void)
{
	struct ksecret *k = crypto_random_secret(32);
	struct kbuf ec, blob, back;
	CHECK(k_ok(canon("{\"purpose\":\"flip\"}", &ec)));
	kbuf_init(&blob, 1024);
	CHECK(k_ok(crypto_sym_encrypt(k, test_key_id, 2, kbuf_slice(&ec),
				      KSLICE_LIT("thirty-two bytes of plaintext!!!"), &blob)));
	uint8_t *copy = malloc(blob.len);
	CHECK(copy != NULL);
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	int failures = 0, wrong_code = 0, touched = 0;
	for (size_t i = 0; i < blob.len; i++) {
		for (size_t m = 0; m < sizeof masks; m++) {
			memcpy(copy, blob.ptr, blob.len);
			copy[i] ^= masks[m];
			out_with_prefix(&back, 1024);
			k_status rc = parse_and_decrypt(k, kslice_make(copy, blob.len),
							kbuf_slice(&ec), &back);
			failures += k_failed(rc);
			wrong_code += !k_is(rc, K_E_INVALID_CIPHERTEXT);
			touched += !out_untouched(&back);
			kbuf_release(&back);
		}
	}
	CHECK_EQ_INT(failures, blob.len * sizeof masks);
	CHECK_EQ_INT(wrong_code, 0);
	CHECK_EQ_INT(touched, 0);
	free(copy);
	kbuf_release(&ec);
	kbuf_release(&blob);
	ksecret_free(k);
}

static void test_truncated(void)
{
	struct ksecret *k = crypto_random_secret(32);
	struct kbuf blob, back, longer;
	struct crypto_blob b;
	kbuf_init(&blob, 1024);
	CHECK(k_ok(crypto_sym_encrypt(k, test_key_id, 1, KSLICE_LIT("\0\0\0\0"),
				      KSLICE_LIT("some plaintext"), &blob)));
	int ok = 0, parsed = 0;
	for (size_t n = 0; n < blob.len; n++) {
		out_with_prefix(&back, 1024);
		k_status rc = crypto_blob_parse(kslice_make(blob.ptr, n), &b);
		if (k_ok(rc)) {
			parsed++;
			rc = crypto_sym_decrypt(k, &b, KSLICE_LIT("\0\0\0\0"), &back);
		}
		ok += k_ok(rc);
		CHECK(k_is(rc, K_E_INVALID_CIPHERTEXT));
		CHECK(out_untouched(&back));
		kbuf_release(&back);
	}
	CHECK_EQ_INT(ok, 0);
	/* Lengths 54 .. len-1 parse (as shorter ciphertexts) and must fail the tag. */
	CHECK_EQ_INT(parsed, blob.len - CRYPTO_BLOB_OVERHEAD);
	CHECK(k_is(crypto_blob_parse(kslice_make(NULL, 0), &b), K_E_INVALID_CIPHERTEXT));

	/* Extra bytes at the end shift the tag and fail too. */
	kbuf_init(&longer, 1024);
	CHECK(k_ok(kbuf_append(&longer, blob.ptr, blob.len)));
	CHECK(k_ok(kbuf_append_byte(&longer, 0)));
	out_with_prefix(&back, 1024);
	CHECK(k_is(parse_and_decrypt(k, kbuf_slice(&longer), KSLICE_LIT("\0\0\0\0"), &back),
		   K_E_INVALID_CIPHERTEXT));
	CHECK(out_untouched(&back));
	kbuf_release(&back);
	kbuf_release(&longer);
	kbuf_release(&blob);
	ksecret_free(k);
}

static void test_wrong_key(void)
{
	struct ksecret *k1 = crypto_random_secret(32);
	struct ksecret *k2 = crypto_random_secret(32);
	struct kbuf blob, back;
	kbuf_init(&blob, 1024);
	out_with_prefix(&back, 1024);
	CHECK(k_ok(crypto_sym_encrypt(k1, test_key_id, 1, KSLICE_LIT("\0\0\0\0"),
				      KSLICE_LIT("data"), &blob)));
	CHECK(k_is(parse_and_decrypt(k2, kbuf_slice(&blob), KSLICE_LIT("\0\0\0\0"), &back),
		   K_E_INVALID_CIPHERTEXT));
	CHECK(out_untouched(&back));
	/* Backing keys are 32 bytes, nothing else. */
	struct ksecret *short_key = crypto_random_secret(16);
	CHECK(k_is(parse_and_decrypt(short_key, kbuf_slice(&blob), KSLICE_LIT("\0\0\0\0"), &back),
		   K_E_INTERNAL));
	CHECK(out_untouched(&back));
	kbuf_release(&blob);
	CHECK(k_is(crypto_sym_encrypt(short_key, test_key_id, 1, KSLICE_LIT("\0\0\0\0"),
				      KSLICE_LIT("data"), &blob),
		   K_E_INTERNAL));
	CHECK_EQ_INT(blob.len, 0);
	kbuf_release(&blob);
	kbuf_release(&back);
	ksecret_free(short_key);
	ksecret_free(k1);
	ksecret_free(k2);
}

/*
 * The parser refuses a foreign format version; and because the header is
 * AAD, changing it after parsing (the slices point into the input) is
 * caught by the tag as well.
 */
static void test_header_is_authenticated(void)
{
	struct ksecret *k = crypto_random_secret(32);
	struct kbuf blob, back;
	struct crypto_blob b;
	kbuf_init(&blob, 1024);
	out_with_prefix(&back, 1024);
	CHECK(k_ok(crypto_sym_encrypt(k, test_key_id, 5, KSLICE_LIT("\0\0\0\0"), KSLICE_LIT("data"),
				      &blob)));

	blob.ptr[1] = 0x02;
	CHECK(k_is(crypto_blob_parse(kbuf_slice(&blob), &b), K_E_INVALID_CIPHERTEXT));
	blob.ptr[1] = CRYPTO_BLOB_VERSION;
	blob.ptr[0] = 'k';
	CHECK(k_is(crypto_blob_parse(kbuf_slice(&blob), &b), K_E_INVALID_CIPHERTEXT));
	blob.ptr[0] = CRYPTO_BLOB_MAGIC;

	CHECK(k_ok(crypto_blob_parse(kbuf_slice(&blob), &b)));
	blob.ptr[1] = 0x02;
	CHECK(k_is(crypto_sym_decrypt(k, &b, KSLICE_LIT("\0\0\0\0"), &back),
		   K_E_INVALID_CIPHERTEXT));
	CHECK(out_untouched(&back));
	blob.ptr[1] = CRYPTO_BLOB_VERSION;

	/* Another backing-key version parses, but does not decrypt. */
	blob.ptr[21] = 6;
	CHECK(k_ok(crypto_blob_parse(kbuf_slice(&blob), &b)));
	CHECK_EQ_INT(b.version, 6);
	CHECK(k_is(crypto_sym_decrypt(k, &b, KSLICE_LIT("\0\0\0\0"), &back),
		   K_E_INVALID_CIPHERTEXT));
	CHECK(out_untouched(&back));
	/* Version 0 is never written, so it is not a blob. */
	blob.ptr[21] = 0;
	CHECK(k_is(crypto_blob_parse(kbuf_slice(&blob), &b), K_E_INVALID_CIPHERTEXT));
	blob.ptr[21] = 5;

	CHECK(k_ok(parse_and_decrypt(k, kbuf_slice(&blob), KSLICE_LIT("\0\0\0\0"), &back)));
	CHECK(buf_is(&back, PREFIX "data", sizeof(PREFIX) - 1 + 4));
	kbuf_release(&blob);
	kbuf_release(&back);
	ksecret_free(k);
}

static void test_nonce_fresh(void)
{
	struct ksecret *k = crypto_random_secret(32);
	struct kbuf b1, b2, back;
	kbuf_init(&b1, 1024);
	kbuf_init(&b2, 1024);
	kbuf_init(&back, 1024);
	CHECK(k_ok(crypto_sym_encrypt(k, test_key_id, 1, KSLICE_LIT("\0\0\0\0"), KSLICE_LIT("same"),
				      &b1)));
	CHECK(k_ok(crypto_sym_encrypt(k, test_key_id, 1, KSLICE_LIT("\0\0\0\0"), KSLICE_LIT("same"),
				      &b2)));
	CHECK(b1.len == b2.len);
	CHECK(!kslice_eq(kbuf_slice(&b1), kbuf_slice(&b2)));
	CHECK(memcmp(b1.ptr + 22, b2.ptr + 22, 16) != 0);
	CHECK(memcmp(b1.ptr + 38, b2.ptr + 38, b1.len - 38) != 0);
	CHECK(k_ok(parse_and_decrypt(k, kbuf_slice(&b1), KSLICE_LIT("\0\0\0\0"), &back)));
	CHECK(k_ok(parse_and_decrypt(k, kbuf_slice(&b2), KSLICE_LIT("\0\0\0\0"), &back)));
	CHECK(buf_is(&back, "samesame", 8));
	kbuf_release(&b1);
	kbuf_release(&b2);
	kbuf_release(&back);
	ksecret_free(k);
}

static void test_limits(void)
{
	struct ksecret *k = crypto_random_secret(32);
	struct kbuf blob, back;
	/* One byte short of the blob: refused, nothing written. */
	kbuf_init(&blob, CRYPTO_BLOB_OVERHEAD + 9);
	CHECK(k_is(crypto_sym_encrypt(k, test_key_id, 1, KSLICE_LIT("\0\0\0\0"),
				      KSLICE_LIT("ten bytes!"), &blob),
		   K_E_VALIDATION));
	CHECK_EQ_INT(blob.len, 0);
	kbuf_release(&blob);
	kbuf_init(&blob, CRYPTO_BLOB_OVERHEAD + 10);
	CHECK(k_ok(crypto_sym_encrypt(k, test_key_id, 1, KSLICE_LIT("\0\0\0\0"),
				      KSLICE_LIT("ten bytes!"), &blob)));
	/* Backing-key version 0 does not exist. */
	struct kbuf other;
	kbuf_init(&other, 1024);
	CHECK(k_is(crypto_sym_encrypt(k, test_key_id, 0, KSLICE_LIT("\0\0\0\0"), KSLICE_LIT("x"),
				      &other),
		   K_E_INTERNAL));
	CHECK_EQ_INT(other.len, 0);
	kbuf_release(&other);
	/* Plaintext that does not fit the output is refused before it is released. */
	kbuf_init(&back, 9);
	CHECK(k_is(parse_and_decrypt(k, kbuf_slice(&blob), KSLICE_LIT("\0\0\0\0"), &back),
		   K_E_VALIDATION));
	CHECK_EQ_INT(back.len, 0);
	kbuf_release(&back);
	kbuf_init(&back, 10);
	CHECK(k_ok(parse_and_decrypt(k, kbuf_slice(&blob), KSLICE_LIT("\0\0\0\0"), &back)));
	CHECK(buf_is(&back, "ten bytes!", 10));
	kbuf_release(&back);
	kbuf_release(&blob);
	ksecret_free(k);
}

static void test_kat_sym(void)
{
	struct ksecret *k = counting_secret(0x00, 32);
	static const uint8_t nonce[16] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
					  0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf};
	struct kbuf ec, blob, back;
	CHECK(k_ok(canon("{\"purpose\":\"kat\",\"dept\":\"x\"}", &ec)));
	CHECK(buf_is(&ec, kat_ectx, sizeof kat_ectx));
	kbuf_init(&blob, 1024);
	kbuf_init(&back, 1024);
	CHECK(k_ok(crypto_sym_encrypt_with_nonce(k, kat_key_id, 3, kbuf_slice(&ec),
						 KSLICE_LIT(kat_plaintext), nonce, &blob)));
	CHECK(buf_is(&blob, kat_blob, sizeof kat_blob));
	CHECK(k_ok(parse_and_decrypt(k, kslice_make(kat_blob, sizeof kat_blob), kbuf_slice(&ec),
				     &back)));
	CHECK(buf_is(&back, kat_plaintext, sizeof kat_plaintext - 1));

	kbuf_reset(&blob);
	kbuf_reset(&back);
	CHECK(k_ok(crypto_sym_encrypt_with_nonce(k, kat_key_id, 3, KSLICE_LIT("\0\0\0\0"),
						 kslice_make(NULL, 0), nonce, &blob)));
	CHECK(buf_is(&blob, kat_blob_empty, sizeof kat_blob_empty));
	CHECK(k_ok(parse_and_decrypt(k, kslice_make(kat_blob_empty, sizeof kat_blob_empty),
				     KSLICE_LIT("\0\0\0\0"), &back)));
	CHECK_EQ_INT(back.len, 0);
	kbuf_release(&ec);
	kbuf_release(&blob);
	kbuf_release(&back);
	ksecret_free(k);
}

static void test_wrap(void)
{
	struct ksecret *root = crypto_random_secret(32);
	struct ksecret *other_root = crypto_random_secret(32);
	struct ksecret *material = crypto_random_secret(32);
	struct ksecret *got = NULL;
	struct kbuf w1, w2;
	struct kslice aad = KSLICE_LIT("arn:aws:kms:eu-west-1:111122223333:key/k#1");
	kbuf_init(&w1, 1024);
	kbuf_init(&w2, 1024);
	CHECK(k_ok(crypto_wrap(root, aad, material, &w1)));
	CHECK_EQ_INT(w1.len, CRYPTO_WRAP_OVERHEAD + 32);
	CHECK(k_ok(crypto_wrap(root, aad, material, &w2)));
	CHECK(!kslice_eq(kbuf_slice(&w1), kbuf_slice(&w2)));

	CHECK(k_ok(crypto_unwrap(root, aad, kbuf_slice(&w1), &got)));
	CHECK(got != NULL && ksecret_len(got) == 32 &&
	      memcmp(ksecret_cbytes(got), ksecret_cbytes(material), 32) == 0);
	ksecret_free(got);
	got = NULL;

	CHECK(k_is(crypto_unwrap(root, KSLICE_LIT("arn:aws:kms:eu-west-1:111122223333:key/k#2"),
				 kbuf_slice(&w1), &got),
		   K_E_INTERNAL));
	CHECK(got == NULL);
	CHECK(k_is(crypto_unwrap(root, kslice_make(NULL, 0), kbuf_slice(&w1), &got), K_E_INTERNAL));
	CHECK(k_is(crypto_unwrap(other_root, aad, kbuf_slice(&w1), &got), K_E_INTERNAL));
	CHECK(got == NULL);
	int bad = 0;
	for (size_t i = 0; i < w1.len; i++) {
		w1.ptr[i] ^= 0x01;
		bad += k_is(crypto_unwrap(root, aad, kbuf_slice(&w1), &got), K_E_INTERNAL);
		w1.ptr[i] ^= 0x01;
	}
	CHECK_EQ_INT(bad, w1.len);
	for (size_t n = 0; n < w1.len; n++)
		CHECK(k_is(crypto_unwrap(root, aad, kslice_make(w1.ptr, n), &got), K_E_INTERNAL));
	CHECK(got == NULL);

	/* A failed wrap leaves the output alone. */
	struct kbuf small;
	kbuf_init(&small, CRYPTO_WRAP_OVERHEAD + 31);
	CHECK(k_is(crypto_wrap(root, aad, material, &small), K_E_VALIDATION));
	CHECK_EQ_INT(small.len, 0);
	kbuf_release(&small);
	kbuf_release(&w1);
	kbuf_release(&w2);
	ksecret_free(root);
	ksecret_free(other_root);
	ksecret_free(material);
}

static void test_kat_wrap(void)
{
	struct ksecret *root = counting_secret(0x40, 32);
	struct ksecret *expect = counting_secret(0xc0, 32);
	struct ksecret *got = NULL;
	CHECK(k_ok(crypto_unwrap(root, KSLICE_LIT(kat_wrap_aad),
				 kslice_make(kat_wrapped, sizeof kat_wrapped), &got)));
	CHECK(got != NULL && ksecret_len(got) == 32 &&
	      memcmp(ksecret_cbytes(got), ksecret_cbytes(expect), 32) == 0);
	ksecret_free(got);
	ksecret_free(root);
	ksecret_free(expect);
}

/*
 * The root key's check value pins its construction: HKDF-SHA256 with an
 * empty salt and the label "kinko/v1/key-check-value" (expected value from
 * RFC 5869's definition computed independently, with Python's hmac).
 */
static void test_check_value(void)
{
	static const uint8_t kat[CRYPTO_CHECK_VALUE_LEN] = {
		0x92, 0x62, 0xe7, 0xdb, 0xe2, 0x39, 0x58, 0x94, 0x29, 0x13, 0x9f,
		0xcb, 0xb0, 0x47, 0x8f, 0x27, 0x9e, 0x6b, 0x80, 0x84, 0xd5, 0x61,
		0x70, 0x8e, 0x7e, 0xfc, 0xc6, 0xce, 0x88, 0x28, 0xca, 0xee};
	struct ksecret *k = counting_secret(0x00, 32);
	struct ksecret *other = counting_secret(0x01, 32);
	struct ksecret *short_key = counting_secret(0x00, 16);
	uint8_t a[CRYPTO_CHECK_VALUE_LEN], b[CRYPTO_CHECK_VALUE_LEN];
	CHECK(k_ok(crypto_check_value(k, a)));
	CHECK(memcmp(a, kat, sizeof kat) == 0);
	CHECK(k_ok(crypto_check_value(k, b)));
	CHECK(memcmp(a, b, sizeof a) == 0);
	CHECK(k_ok(crypto_check_value(other, b)));
	CHECK(memcmp(a, b, sizeof a) != 0);
	CHECK(k_is(crypto_check_value(short_key, b), K_E_INTERNAL));
	CHECK(k_is(crypto_check_value(NULL, b), K_E_INTERNAL));
	ksecret_free(k);
	ksecret_free(other);
	ksecret_free(short_key);
}

static void test_helpers(void)
{
	CHECK(crypto_memeq("abcd", "abcd", 4) == 1);
	CHECK(crypto_memeq("abcd", "abce", 4) == 0);
	CHECK(crypto_memeq("a", "b", 0) == 1);
	struct ksecret *s1 = crypto_random_secret(32);
	struct ksecret *s2 = crypto_random_secret(32);
	CHECK(s1 != NULL && s2 != NULL && ksecret_len(s1) == 32);
	CHECK(!crypto_memeq(ksecret_cbytes(s1), ksecret_cbytes(s2), 32));
	CHECK(crypto_random_secret(0) == NULL);
	CHECK(k_ok(crypto_random(NULL, 0)));
	ksecret_free(s1);
	ksecret_free(s2);
}

/* ---- crypto_nonce: the per-thread pool of public random bytes ---------- */

static int cmp16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* Number of equal neighbours after sorting n 16-byte values. */
static size_t count_repeats(uint8_t (*v)[16], size_t n)
{
	size_t rep = 0;
	qsort(v, n, 16, cmp16);
	for (size_t i = 1; i < n; i++)
		rep += memcmp(v[i - 1], v[i], 16) == 0;
	return rep;
}

#define NONCE_DRAWS 3000

static void test_nonce_pool(void)
{
	static uint8_t v[NONCE_DRAWS][16];
	uint8_t big[CRYPTO_NONCE_MAX + 1];

	CHECK_STATUS(crypto_nonce(NULL, 0), K_OK);
	CHECK_STATUS(crypto_nonce(NULL, 16), K_E_INTERNAL);
	/* Public values only, and small: more than 64 bytes is a caller bug. */
	CHECK_STATUS(crypto_nonce(big, sizeof big), K_E_INTERNAL);
	CHECK_STATUS(crypto_nonce(big, CRYPTO_NONCE_MAX), K_OK);

	/*
	 * Sizes 1..64 in turn, so draws straddle the pool's refills; the first
	 * 16 bytes of every draw of 16 or more must never repeat, and 48 KiB
	 * in all means many refills.
	 */
	size_t n = 0;
	for (size_t i = 0; n < NONCE_DRAWS; i++) {
		size_t len = 1 + i % CRYPTO_NONCE_MAX;
		memset(big, 0, sizeof big);
		CHECK_STATUS(crypto_nonce(big, len), K_OK);
		if (len >= 16)
			memcpy(v[n++], big, 16);
	}
	CHECK_EQ_INT(count_repeats(v, NONCE_DRAWS), 0);
	/* Two back-to-back 16-byte nonces are different bytes of the pool. */
	uint8_t a[16], b[16];
	CHECK_STATUS(crypto_nonce(a, sizeof a), K_OK);
	CHECK_STATUS(crypto_nonce(b, sizeof b), K_OK);
	CHECK(memcmp(a, b, 16) != 0);
}

#define NONCE_THREADS 4
#define NONCE_PER_THREAD 2000
static uint8_t nonce_all[NONCE_THREADS * NONCE_PER_THREAD][16];

static void *nonce_worker(void *arg)
{
	uint8_t(*mine)[16] = arg;
	int bad = 0;
	for (int i = 0; i < NONCE_PER_THREAD; i++)
		bad += k_failed(crypto_nonce(mine[i], 16));
	return bad == 0 ? arg : NULL; /* NULL tells the joiner a draw failed */
}

/* Each thread has its own pool; no two threads ever hand out the same bytes. */
static void test_nonce_threads(void)
{
	pthread_t t[NONCE_THREADS];
	for (int i = 0; i < NONCE_THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, nonce_worker, nonce_all[i * NONCE_PER_THREAD]) ==
		      0);
	for (int i = 0; i < NONCE_THREADS; i++) {
		void *res = NULL;
		CHECK(pthread_join(t[i], &res) == 0);
		CHECK(res != NULL);
	}
	CHECK_EQ_INT(count_repeats(nonce_all, NONCE_THREADS * NONCE_PER_THREAD), 0);
}

/*
 * A forked child inherits a copy of the parent's pool. Without the atfork
 * handler the child's next nonces would be exactly the parent's next
 * nonces; with it, the child discards the copy and draws fresh bytes.
 */
static void test_nonce_fork(void)
{
	enum {
		N = 8
	};
	uint8_t parent[N][16], child[N][16];
	int fds[2];

	CHECK_STATUS(crypto_nonce(parent[0], 16), K_OK); /* the pool is filled before the fork */
	CHECK(pipe(fds) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int ok = 1;
		for (int i = 0; i < N; i++)
			ok &= k_ok(crypto_nonce(child[i], 16));
		ssize_t w = ok ? write(fds[1], child, sizeof child) : -1;
		_exit(w == (ssize_t)sizeof child ? 0 : 1);
	}
	close(fds[1]);
	for (int i = 0; i < N; i++)
		CHECK_STATUS(crypto_nonce(parent[i], 16), K_OK);
	size_t got = 0;
	while (got < sizeof child) {
		ssize_t r = read(fds[0], (uint8_t *)child + got, sizeof child - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fds[0]);
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_EQ_INT(got, sizeof child);
	int same = 0;
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++)
			same += memcmp(parent[i], child[j], 16) == 0;
	CHECK_EQ_INT(same, 0);
}

/* Several threads share the cached algorithm objects and one backing key. */
#define THREADS 4
#define PER_THREAD 300
static struct ksecret *shared_key;

static void *worker(void *arg)
{
	int *errors = arg;
	struct kbuf blob, back;
	kbuf_init(&blob, 1024);
	kbuf_init(&back, 1024);
	for (int i = 0; i < PER_THREAD; i++) {
		uint8_t pt[64];
		if (k_failed(crypto_random(pt, sizeof pt)) ||
		    k_failed(crypto_sym_encrypt(shared_key, test_key_id, 1, KSLICE_LIT("\0\0\0\0"),
						kslice_make(pt, sizeof pt), &blob)) ||
		    k_failed(parse_and_decrypt(shared_key, kbuf_slice(&blob),
					       KSLICE_LIT("\0\0\0\0"), &back)) ||
		    !buf_is(&back, pt, sizeof pt))
			(*errors)++;
		kbuf_reset(&blob);
		kbuf_reset(&back);
	}
	kbuf_release(&blob);
	kbuf_release(&back);
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[THREADS];
	int errors[THREADS] = {0};
	shared_key = crypto_random_secret(32);
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, worker, &errors[i]) == 0);
	int total = 0;
	for (int i = 0; i < THREADS; i++) {
		CHECK(pthread_join(t[i], NULL) == 0);
		total += errors[i];
	}
	CHECK_EQ_INT(total, 0);
	ksecret_free(shared_key);
}

int main(void)
{
	RUN(test_roundtrip);
	RUN(test_appends);
	RUN(test_wrong_context);
	RUN(test_ectx_ambiguity);
	RUN(test_ectx_order);
	RUN(test_ectx_edges);
	RUN(test_every_byte_flip);
	RUN(test_truncated);
	RUN(test_wrong_key);
	RUN(test_header_is_authenticated);
	RUN(test_nonce_fresh);
	RUN(test_limits);
	RUN(test_kat_sym);
	RUN(test_wrap);
	RUN(test_kat_wrap);
	RUN(test_check_value);
	RUN(test_helpers);
	RUN(test_nonce_pool);
	RUN(test_nonce_threads);
	RUN(test_nonce_fork);
	RUN(test_threads);
	return tl_summary();
}
