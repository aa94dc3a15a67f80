/*
 * keyops_test.c — the key-operations interface (keystore/keyops.h): every
 * operation of the software store through the dispatch functions, the
 * failures that must fail (wrong context, wrong key, tampering, a token of
 * another key), the reference format pinned against the root-key wrap,
 * handles letting their material go, and a second, fake store chosen per
 * key, which is the seam a PKCS#11 store will use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto/asym.h"
#include "crypto/crypto.h"
#include "keystore/keyops.h"
#include "keystore/keystore.h"
#include "kms/kms.h"
#include "testlib.h"
#include "core/banned.h"

#define ARN "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
#define OTHER_ARN "arn:aws:kms:us-east-1:111122223333:key/0000abcd-12ab-34cd-56ef-1234567890ab"

static const uint8_t key_id[16] = {0x12, 0x34, 0xab, 0xcd, 0x12, 0xab, 0x34, 0xcd,
				   0x56, 0xef, 0x12, 0x34, 0x56, 0x78, 0x90, 0xab};

/* A new key of the software store: generate version 1 and open it. */
static struct keystore_key *soft_key(const char *spec, const char *arn, struct kbuf *ref)
{
	struct keystore_key *h = NULL;
	if (k_failed(keystore_generate(&keystore_soft, spec, arn, ref)))
		return NULL;
	struct kslice r = kbuf_slice(ref);
	if (k_failed(keystore_open(&keystore_soft, arn, key_id, &r, 1, &h)))
		return NULL;
	return h;
}

static void canon_of(const char *json, struct kbuf *out)
{
	json_t *ctx = json != NULL ? json_loads(json, 0, NULL) : NULL;
	CHECK_STATUS(crypto_ectx_canonical(ctx, out), K_OK);
	json_decref(ctx);
}

static void test_symmetric_round_trip(void)
{
	struct kbuf ref, canon, other, blob, pt;
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	kbuf_init(&canon, 4096);
	kbuf_init(&other, 4096);
	kbuf_init(&blob, 8192);
	kbuf_init(&pt, 8192);
	struct keystore_key *h = soft_key("SYMMETRIC_DEFAULT", ARN, &ref);
	CHECK(h != NULL);
	if (h == NULL)
		return;
	CHECK_EQ_INT(keystore_key_versions(h), 1);
	CHECK_STR(keystore_key_store(h), "soft");
	canon_of("{\"purpose\":\"test\"}", &canon);
	canon_of("{\"purpose\":\"other\"}", &other);
	CHECK_STATUS(keystore_encrypt(h, kbuf_slice(&canon), KSLICE_LIT("hello"), &blob), K_OK);
	struct crypto_blob b;
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob), &b), K_OK);
	CHECK(memcmp(b.key_id, key_id, 16) == 0);
	CHECK_EQ_INT(b.version, 1);
	CHECK_STATUS(keystore_decrypt(h, &b, kbuf_slice(&canon), &pt), K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&pt), "hello"));

	/* The wrong context, a version the key lacks, a flipped byte: all fail. */
	kbuf_reset(&pt);
	CHECK_STATUS(keystore_decrypt(h, &b, kbuf_slice(&other), &pt), K_E_INVALID_CIPHERTEXT);
	CHECK_EQ_INT(pt.len, 0);
	struct crypto_blob wrong_version = b;
	wrong_version.version = 2;
	CHECK_STATUS(keystore_decrypt(h, &wrong_version, kbuf_slice(&canon), &pt),
		     K_E_INVALID_CIPHERTEXT);
	blob.ptr[blob.len - 1] ^= 1;
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob), &b), K_OK);
	CHECK_STATUS(keystore_decrypt(h, &b, kbuf_slice(&canon), &pt), K_E_INVALID_CIPHERTEXT);

	/* Another key's material does not open this key's blobs. */
	struct kbuf ref2;
	kbuf_init(&ref2, KEYSTORE_MAX_REF);
	struct keystore_key *h2 = soft_key("SYMMETRIC_DEFAULT", ARN, &ref2);
	blob.ptr[blob.len - 1] ^= 1;
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob), &b), K_OK);
	CHECK_STATUS(keystore_decrypt(h2, &b, kbuf_slice(&canon), &pt), K_E_INVALID_CIPHERTEXT);
	keystore_key_unref(h2);
	kbuf_release(&ref2);

	keystore_key_unref(h);
	kbuf_release(&ref);
	kbuf_release(&canon);
	kbuf_release(&other);
	kbuf_release(&blob);
	kbuf_release(&pt);
}

/*
 * The reference is the material wrapped under the root key with
 * "kinko/material/v1|ARN|VERSION" as AAD, in base64, and blobs are the
 * crypto.h format under that material: what every stored key and every
 * ciphertext already out there rely on.
 */
static void test_reference_format_pinned(void)
{
	struct kbuf ref, raw, aad, blob, pt;
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	kbuf_init(&raw, KEYSTORE_MAX_REF);
	kbuf_init(&aad, 512);
	kbuf_init(&blob, 8192);
	kbuf_init(&pt, 8192);
	struct keystore_key *h = soft_key("SYMMETRIC_DEFAULT", ARN, &ref);
	CHECK(h != NULL);
	struct ksecret *m = NULL;
	CHECK_STATUS(kbuf_decode_base64(&raw, kbuf_slice(&ref)), K_OK);
	CHECK_STATUS(kbuf_appendf(&aad, "kinko/material/v1|%s|1", ARN), K_OK);
	CHECK_STATUS(keystore_unwrap(kbuf_slice(&aad), kbuf_slice(&raw), &m), K_OK);
	CHECK(m != NULL && ksecret_len(m) == 32);
	static const uint8_t empty_ctx[4];
	CHECK_STATUS(keystore_encrypt(h, kslice_make(empty_ctx, 4), KSLICE_LIT("pinned"), &blob),
		     K_OK);
	struct crypto_blob b;
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob), &b), K_OK);
	CHECK_STATUS(crypto_sym_decrypt(m, &b, kslice_make(empty_ctx, 4), &pt), K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&pt), "pinned"));
	/* And a blob made by crypto/ directly opens through the handle. */
	kbuf_reset(&blob);
	kbuf_reset(&pt);
	CHECK_STATUS(crypto_sym_encrypt(m, key_id, 1, kslice_make(empty_ctx, 4), KSLICE_LIT("old"),
					&blob),
		     K_OK);
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob), &b), K_OK);
	CHECK_STATUS(keystore_decrypt(h, &b, kslice_make(empty_ctx, 4), &pt), K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&pt), "old"));
	/* A reference opens only for the ARN it was made for. */
	struct keystore_key *wrong = NULL;
	struct kslice r = kbuf_slice(&ref);
	CHECK_STATUS(keystore_open(&keystore_soft, OTHER_ARN, key_id, &r, 1, &wrong), K_E_INTERNAL);
	CHECK(wrong == NULL);
	ksecret_free(m);
	keystore_key_unref(h);
	kbuf_release(&ref);
	kbuf_release(&raw);
	kbuf_release(&aad);
	kbuf_release(&blob);
	kbuf_release(&pt);
}

static void test_data_keys(void)
{
	struct kbuf ref, canon, blob, pt, spki, pair_blob;
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	kbuf_init(&canon, 4096);
	kbuf_init(&blob, 8192);
	kbuf_init(&pt, 8192);
	kbuf_init(&spki, ASYM_MAX_SPKI);
	kbuf_init(&pair_blob, ASYM_MAX_PKCS8 + CRYPTO_BLOB_OVERHEAD);
	struct keystore_key *h = soft_key("SYMMETRIC_DEFAULT", ARN, &ref);
	CHECK(h != NULL);
	canon_of("{\"k\":\"v\"}", &canon);

	struct ksecret *dk = ksecret_scratch(32);
	CHECK(dk != NULL);
	CHECK_STATUS(keystore_generate_data_key(h, kbuf_slice(&canon), dk, &blob), K_OK);
	struct crypto_blob b;
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob), &b), K_OK);
	CHECK_STATUS(keystore_decrypt(h, &b, kbuf_slice(&canon), &pt), K_OK);
	CHECK(pt.len == 32 && memcmp(pt.ptr, ksecret_cbytes(dk), 32) == 0);
	ksecret_scratch_done(dk);

	struct ksecret *priv = NULL;
	kbuf_reset(&pt);
	CHECK_STATUS(keystore_generate_data_key_pair(h, "ECC_NIST_P256", kbuf_slice(&canon), &spki,
						     &pair_blob, &priv),
		     K_OK);
	CHECK(priv != NULL && spki.len > 0);
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&pair_blob), &b), K_OK);
	CHECK_STATUS(keystore_decrypt(h, &b, kbuf_slice(&canon), &pt), K_OK);
	CHECK(priv != NULL && pt.len == ksecret_len(priv) &&
	      memcmp(pt.ptr, ksecret_cbytes(priv), pt.len) == 0);
	ksecret_free(priv);

	/* Without the plaintext: only the public key and the blob. */
	kbuf_reset(&spki);
	kbuf_reset(&pair_blob);
	CHECK_STATUS(keystore_generate_data_key_pair(h, "RSA_2048", kbuf_slice(&canon), &spki,
						     &pair_blob, NULL),
		     K_OK);
	CHECK(spki.len > 0 && pair_blob.len > CRYPTO_BLOB_OVERHEAD);

	keystore_key_unref(h);
	kbuf_release(&ref);
	kbuf_release(&canon);
	kbuf_release(&blob);
	kbuf_release(&pt);
	kbuf_release(&spki);
	kbuf_release(&pair_blob);
}

/* Rotation: the new handle has both versions, encrypts under the new one, opens the old blobs. */
static void test_new_version(void)
{
	struct kbuf ref1, ref2, blob1, blob2, pt;
	kbuf_init(&ref1, KEYSTORE_MAX_REF);
	kbuf_init(&ref2, KEYSTORE_MAX_REF);
	kbuf_init(&blob1, 8192);
	kbuf_init(&blob2, 8192);
	kbuf_init(&pt, 8192);
	static const uint8_t ctx[4];
	struct kslice ectx = kslice_make(ctx, 4);
	struct keystore_key *h1 = soft_key("SYMMETRIC_DEFAULT", ARN, &ref1), *h2 = NULL;
	CHECK(h1 != NULL);
	CHECK_STATUS(keystore_encrypt(h1, ectx, KSLICE_LIT("one"), &blob1), K_OK);
	CHECK_STATUS(keystore_new_version(h1, "SYMMETRIC_DEFAULT", ARN, &ref2, &h2), K_OK);
	CHECK_EQ_INT(keystore_key_versions(h1), 1);
	CHECK_EQ_INT(keystore_key_versions(h2), 2);
	CHECK_STATUS(keystore_encrypt(h2, ectx, KSLICE_LIT("two"), &blob2), K_OK);
	struct crypto_blob b1, b2;
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob1), &b1), K_OK);
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob2), &b2), K_OK);
	CHECK_EQ_INT(b2.version, 2);
	CHECK_STATUS(keystore_decrypt(h2, &b1, ectx, &pt), K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&pt), "one"));
	kbuf_reset(&pt);
	CHECK_STATUS(keystore_decrypt(h2, &b2, ectx, &pt), K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&pt), "two"));
	CHECK_STATUS(keystore_decrypt(h1, &b2, ectx, &pt), K_E_INVALID_CIPHERTEXT);

	/* Both references reopen, in order, as the key document keeps them. */
	struct kslice refs[2] = {kbuf_slice(&ref1), kbuf_slice(&ref2)};
	struct keystore_key *h3 = NULL;
	CHECK_STATUS(keystore_open(&keystore_soft, ARN, key_id, refs, 2, &h3), K_OK);
	kbuf_reset(&pt);
	CHECK_STATUS(keystore_decrypt(h3, &b2, ectx, &pt), K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&pt), "two"));
	/* Out of order they do not: each is bound to its version. */
	struct kslice swapped[2] = {kbuf_slice(&ref2), kbuf_slice(&ref1)};
	struct keystore_key *h4 = NULL;
	CHECK_STATUS(keystore_open(&keystore_soft, ARN, key_id, swapped, 2, &h4), K_E_INTERNAL);

	keystore_key_unref(h1);
	keystore_key_unref(h2);
	keystore_key_unref(h3);
	kbuf_release(&ref1);
	kbuf_release(&ref2);
	kbuf_release(&blob1);
	kbuf_release(&blob2);
	kbuf_release(&pt);
}

static void test_sign_verify_public_key(void)
{
	struct kbuf ref, sig, spki;
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	kbuf_init(&sig, ASYM_MAX_SIG);
	kbuf_init(&spki, ASYM_MAX_SPKI);
	struct keystore_key *h = soft_key("ECC_NIST_P256", ARN, &ref);
	CHECK(h != NULL);
	bool valid = false;
	CHECK_STATUS(keystore_sign(h, "ECDSA_SHA_256", false, KSLICE_LIT("message"), &sig), K_OK);
	CHECK_STATUS(keystore_verify(h, "ECDSA_SHA_256", false, KSLICE_LIT("message"),
				     kbuf_slice(&sig), &valid),
		     K_OK);
	CHECK(valid);
	CHECK_STATUS(keystore_verify(h, "ECDSA_SHA_256", false, KSLICE_LIT("massage"),
				     kbuf_slice(&sig), &valid),
		     K_OK);
	CHECK(!valid);
	/* The public key verifies the signature outside kinko too. */
	CHECK_STATUS(keystore_public_key(h, &spki), K_OK);
	const unsigned char *p = spki.ptr;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki.len);
	CHECK(pk != NULL);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	CHECK(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) == 1);
	CHECK(EVP_DigestVerify(md, sig.ptr, sig.len, (const unsigned char *)"message", 7) == 1);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	keystore_key_unref(h);
	kbuf_release(&ref);
	kbuf_release(&sig);
	kbuf_release(&spki);
}

static void test_rsa_oaep(void)
{
	struct kbuf ref, ct, pt;
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	kbuf_init(&ct, 512);
	kbuf_init(&pt, 512);
	struct keystore_key *h = soft_key("RSA_2048", ARN, &ref);
	CHECK(h != NULL);
	CHECK_STATUS(keystore_asym_encrypt(h, "RSAES_OAEP_SHA_256", KSLICE_LIT("secret"), &ct),
		     K_OK);
	CHECK_STATUS(keystore_asym_decrypt(h, "RSAES_OAEP_SHA_256", kbuf_slice(&ct), &pt), K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&pt), "secret"));
	kbuf_reset(&pt);
	CHECK_STATUS(keystore_asym_decrypt(h, "RSAES_OAEP_SHA_1", kbuf_slice(&ct), &pt),
		     K_E_INVALID_CIPHERTEXT);
	/* The bound by spec is the bound of the key. */
	CHECK_EQ_INT(asym_oaep_max_plaintext_spec("RSA_2048", "RSAES_OAEP_SHA_1"), 214);
	CHECK_EQ_INT(asym_oaep_max_plaintext_spec("RSA_2048", "RSAES_OAEP_SHA_256"), 190);
	CHECK_EQ_INT(asym_oaep_max_plaintext_spec("RSA_4096", "RSAES_OAEP_SHA_256"), 446);
	CHECK_EQ_INT(asym_oaep_max_plaintext_spec("ECC_NIST_P256", "RSAES_OAEP_SHA_256"), 0);
	uint8_t big[191] = {0};
	kbuf_reset(&ct);
	CHECK_STATUS(
		keystore_asym_encrypt(h, "RSAES_OAEP_SHA_256", kslice_make(big, sizeof big), &ct),
		K_E_VALIDATION);
	keystore_key_unref(h);
	kbuf_release(&ref);
	kbuf_release(&ct);
	kbuf_release(&pt);
}

static void test_mac(void)
{
	struct kbuf ref;
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	struct keystore_key *h = soft_key("HMAC_256", ARN, &ref);
	CHECK(h != NULL);
	uint8_t mac[KEYSTORE_MAX_MAC];
	size_t n = 0;
	bool valid = false;
	CHECK_STATUS(keystore_mac(h, "HMAC_SHA_256", KSLICE_LIT("msg"), mac, &n), K_OK);
	CHECK_EQ_INT(n, 32);
	CHECK_STATUS(keystore_mac_verify(h, "HMAC_SHA_256", KSLICE_LIT("msg"), kslice_make(mac, n),
					 &valid),
		     K_OK);
	CHECK(valid);
	CHECK_STATUS(keystore_mac_verify(h, "HMAC_SHA_256", KSLICE_LIT("msh"), kslice_make(mac, n),
					 &valid),
		     K_OK);
	CHECK(!valid);
	CHECK_STATUS(keystore_mac_verify(h, "HMAC_SHA_256", KSLICE_LIT("msg"),
					 kslice_make(mac, n - 1), &valid),
		     K_OK);
	CHECK(!valid);
	keystore_key_unref(h);
	kbuf_release(&ref);
}

static void test_derive_shared_secret(void)
{
	struct kbuf ref_a, ref_b, spki_a, spki_b;
	kbuf_init(&ref_a, KEYSTORE_MAX_REF);
	kbuf_init(&ref_b, KEYSTORE_MAX_REF);
	kbuf_init(&spki_a, ASYM_MAX_SPKI);
	kbuf_init(&spki_b, ASYM_MAX_SPKI);
	struct keystore_key *a = soft_key("ECC_NIST_P256", ARN, &ref_a);
	struct keystore_key *b = soft_key("ECC_NIST_P256", OTHER_ARN, &ref_b);
	CHECK(a != NULL && b != NULL);
	CHECK_STATUS(keystore_public_key(a, &spki_a), K_OK);
	CHECK_STATUS(keystore_public_key(b, &spki_b), K_OK);
	struct ksecret *ab = NULL, *ba = NULL, *bad = NULL;
	CHECK_STATUS(keystore_derive_shared_secret(a, kbuf_slice(&spki_b), &ab), K_OK);
	CHECK_STATUS(keystore_derive_shared_secret(b, kbuf_slice(&spki_a), &ba), K_OK);
	CHECK(ab != NULL && ba != NULL && ksecret_len(ab) == ksecret_len(ba) &&
	      memcmp(ksecret_cbytes(ab), ksecret_cbytes(ba), ksecret_len(ab)) == 0);
	CHECK_STATUS(keystore_derive_shared_secret(a, KSLICE_LIT("not a key"), &bad),
		     K_E_VALIDATION);
	ksecret_free(ab);
	ksecret_free(ba);
	keystore_key_unref(a);
	keystore_key_unref(b);
	kbuf_release(&ref_a);
	kbuf_release(&ref_b);
	kbuf_release(&spki_a);
	kbuf_release(&spki_b);
}

/* RSAES_OAEP_SHA_256 of material to the wrapping key, as a client would. */
static void wrap_for_import(struct kslice spki, const uint8_t *m, size_t n, struct kbuf *out)
{
	const unsigned char *p = spki.ptr;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki.len);
	EVP_PKEY_CTX *ctx = pk != NULL ? EVP_PKEY_CTX_new(pk, NULL) : NULL;
	uint8_t ct[512];
	size_t len = sizeof ct;
	CHECK(ctx != NULL && EVP_PKEY_encrypt_init(ctx) == 1);
	CHECK(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1);
	CHECK(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1);
	CHECK(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1);
	CHECK(EVP_PKEY_encrypt(ctx, ct, &len, m, n) == 1);
	CHECK_STATUS(kbuf_append(out, ct, len), K_OK);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
}

struct import_case {
	struct kbuf spki, token, enc, fp, ref;
	struct keystore_import req;
};

static K_MUST_CHECK k_status import_once(struct import_case *ic, const char *token_arn,
					 const char *arn, int64_t made, int64_t now,
					 const uint8_t *m, size_t n, const char *fingerprint)
{
	kbuf_init(&ic->spki, ASYM_MAX_SPKI);
	kbuf_init(&ic->token, 6144);
	kbuf_init(&ic->enc, 6144);
	kbuf_init(&ic->fp, 1024);
	kbuf_init(&ic->ref, KEYSTORE_MAX_REF);
	CHECK_STATUS(keystore_import_params(&keystore_soft, token_arn, "RSA_2048",
					    "RSAES_OAEP_SHA_256", made + 86400, &ic->spki,
					    &ic->token),
		     K_OK);
	wrap_for_import(kbuf_slice(&ic->spki), m, n, &ic->enc);
	ic->req = (struct keystore_import){
		.arn = arn,
		.key_id = key_id,
		.spec = "SYMMETRIC_DEFAULT",
		.token = kbuf_slice(&ic->token),
		.encrypted = kbuf_slice(&ic->enc),
		.now = now,
		.fingerprint = fingerprint,
		.fingerprint_out = &ic->fp,
		.ref = &ic->ref,
	};
	return keystore_import(&keystore_soft, &ic->req);
}

static void import_done(struct import_case *ic)
{
	keystore_key_unref(ic->req.key);
	kbuf_release(&ic->spki);
	kbuf_release(&ic->token);
	kbuf_release(&ic->enc);
	kbuf_release(&ic->fp);
	kbuf_release(&ic->ref);
}

static void test_import(void)
{
	uint8_t m[32], other[32];
	CHECK_STATUS(crypto_random(m, sizeof m), K_OK);
	CHECK_STATUS(crypto_random(other, sizeof other), K_OK);
	const int64_t now = 1700000000;
	struct import_case first, again, wrong, expired, stolen, short_m;

	CHECK_STATUS(import_once(&first, ARN, ARN, now, now, m, sizeof m, NULL), K_OK);
	CHECK_STR(first.req.wrap_alg, "RSAES_OAEP_SHA_256");
	CHECK(first.req.key != NULL && first.fp.len > 0 && first.ref.len > 0);
	/* The imported material is the material the handle uses. */
	struct kbuf blob, pt;
	kbuf_init(&blob, 8192);
	kbuf_init(&pt, 8192);
	static const uint8_t ctx[4];
	struct ksecret *ms = ksecret_from(m, sizeof m);
	CHECK_STATUS(
		crypto_sym_encrypt(ms, key_id, 1, kslice_make(ctx, 4), KSLICE_LIT("imp"), &blob),
		K_OK);
	struct crypto_blob b;
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob), &b), K_OK);
	if (first.req.key != NULL)
		CHECK_STATUS(keystore_decrypt(first.req.key, &b, kslice_make(ctx, 4), &pt), K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&pt), "imp"));
	/* Its reference reopens. */
	struct keystore_key *re = NULL;
	struct kslice r = kbuf_slice(&first.ref);
	CHECK_STATUS(keystore_open(&keystore_soft, ARN, key_id, &r, 1, &re), K_OK);
	keystore_key_unref(re);

	const char *fp = kbuf_cstr(&first.fp);
	CHECK_STATUS(import_once(&again, ARN, ARN, now, now + 10, m, sizeof m, fp), K_OK);
	CHECK_STR(kbuf_cstr(&again.fp), fp);
	CHECK_STATUS(import_once(&wrong, ARN, ARN, now, now, other, sizeof other, fp),
		     K_E_INCORRECT_KEY_MATERIAL);
	CHECK(wrong.req.key == NULL && wrong.fp.len == 0 && wrong.ref.len == 0);
	CHECK_STATUS(import_once(&expired, ARN, ARN, now, now + 86401, m, sizeof m, NULL),
		     K_E_EXPIRED_IMPORT_TOKEN);
	CHECK_STATUS(import_once(&stolen, OTHER_ARN, ARN, now, now, m, sizeof m, NULL),
		     K_E_INVALID_IMPORT_TOKEN);
	CHECK_STATUS(import_once(&short_m, ARN, ARN, now, now, m, 16, NULL), K_E_VALIDATION);
	/* Garbage instead of wrapped material. */
	struct import_case garbage;
	kbuf_init(&garbage.spki, ASYM_MAX_SPKI);
	kbuf_init(&garbage.token, 6144);
	kbuf_init(&garbage.enc, 16);
	kbuf_init(&garbage.fp, 1024);
	kbuf_init(&garbage.ref, KEYSTORE_MAX_REF);
	CHECK_STATUS(keystore_import_params(&keystore_soft, ARN, "RSA_2048", "RSAES_OAEP_SHA_1",
					    now + 86400, &garbage.spki, &garbage.token),
		     K_OK);
	garbage.req = (struct keystore_import){
		.arn = ARN,
		.key_id = key_id,
		.spec = "SYMMETRIC_DEFAULT",
		.token = kbuf_slice(&garbage.token),
		.encrypted = KSLICE_LIT("garbage"),
		.now = now,
		.fingerprint_out = &garbage.fp,
		.ref = &garbage.ref,
	};
	CHECK_STATUS(keystore_import(&keystore_soft, &garbage.req), K_E_INVALID_CIPHERTEXT);
	CHECK_STR(garbage.req.wrap_alg, "RSAES_OAEP_SHA_1");

	ksecret_free(ms);
	kbuf_release(&blob);
	kbuf_release(&pt);
	import_done(&first);
	import_done(&again);
	import_done(&wrong);
	import_done(&expired);
	import_done(&stolen);
	import_done(&short_m);
	import_done(&garbage);
}

static void test_envelope(void)
{
	struct kbuf ref, canon, other, dk, blob, out;
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	kbuf_init(&canon, 4096);
	kbuf_init(&other, 4096);
	kbuf_init(&dk, 1024);
	kbuf_init(&blob, 8192);
	kbuf_init(&out, 8192);
	struct keystore_key *h = soft_key("SYMMETRIC_DEFAULT", ARN, &ref);
	CHECK(h != NULL);
	canon_of("{\"SecretARN\":\"a\",\"SecretVersionId\":\"v\"}", &canon);
	canon_of("{\"SecretARN\":\"a\",\"SecretVersionId\":\"w\"}", &other);
	CHECK_STATUS(keystore_envelope_seal(h, kbuf_slice(&canon), KSLICE_LIT("value"), &dk, &blob),
		     K_OK);
	CHECK_STATUS(keystore_envelope_open(h, kbuf_slice(&canon), kbuf_slice(&dk),
					    kbuf_slice(&blob), &out),
		     K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&out), "value"));
	kbuf_reset(&out);
	CHECK_STATUS(keystore_envelope_open(h, kbuf_slice(&other), kbuf_slice(&dk),
					    kbuf_slice(&blob), &out),
		     K_E_INVALID_CIPHERTEXT);
	CHECK_STATUS(keystore_envelope_open(h, kbuf_slice(&canon), kbuf_slice(&blob),
					    kbuf_slice(&blob), &out),
		     K_E_INVALID_CIPHERTEXT);
	CHECK_EQ_INT(out.len, 0);
	keystore_key_unref(h);
	kbuf_release(&ref);
	kbuf_release(&canon);
	kbuf_release(&other);
	kbuf_release(&dk);
	kbuf_release(&blob);
	kbuf_release(&out);
}

/*
 * A handle holds its material in ksecrets (wiped by ksecret_free); when
 * the last reference goes, destroy() frees every one of them, the parsed
 * private key's source included, and a handle shared by two holders
 * keeps its material until both let go.
 */
static void test_destroy_wipes(void)
{
	unsigned long before = ksecret_live();
	struct kbuf ref1, ref2, sig;
	kbuf_init(&ref1, KEYSTORE_MAX_REF);
	kbuf_init(&ref2, KEYSTORE_MAX_REF);
	kbuf_init(&sig, ASYM_MAX_SIG);
	struct keystore_key *h = soft_key("SYMMETRIC_DEFAULT", ARN, &ref1), *h2 = NULL;
	CHECK_STATUS(keystore_new_version(h, "SYMMETRIC_DEFAULT", ARN, &ref2, &h2), K_OK);
	CHECK_EQ_INT(ksecret_live(), before + 3);
	keystore_key_ref(h2);
	keystore_key_unref(h2);
	CHECK_EQ_INT(ksecret_live(), before + 3);
	keystore_key_unref(h);
	CHECK_EQ_INT(ksecret_live(), before + 2);
	keystore_key_unref(h2);
	CHECK_EQ_INT(ksecret_live(), before);

	kbuf_reset(&ref1);
	struct keystore_key *a = soft_key("ECC_NIST_P256", ARN, &ref1);
	CHECK_STATUS(keystore_sign(a, "ECDSA_SHA_256", false, KSLICE_LIT("m"), &sig), K_OK);
	keystore_key_unref(a);
	CHECK_EQ_INT(ksecret_live(), before);

	/* A handle without material answers that it has none. */
	struct keystore_key *none = NULL;
	CHECK_STATUS(keystore_open(&keystore_soft, ARN, key_id, NULL, 0, &none), K_OK);
	CHECK_EQ_INT(keystore_key_versions(none), 0);
	CHECK_STATUS(keystore_encrypt(none, KSLICE_LIT("\0\0\0\0"), KSLICE_LIT("x"), &sig),
		     K_E_INVALID_STATE);
	CHECK_STATUS(keystore_sign(none, "ECDSA_SHA_256", false, KSLICE_LIT("m"), &sig),
		     K_E_INVALID_STATE);
	keystore_key_unref(none);
	CHECK_EQ_INT(ksecret_live(), before);
	kbuf_release(&ref1);
	kbuf_release(&ref2);
	kbuf_release(&sig);
}

static void test_generate_unsupported(void)
{
	struct kbuf ref;
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	CHECK_STATUS(keystore_generate(&keystore_soft, "SM2", ARN, &ref), K_E_UNSUPPORTED);
	CHECK_STATUS(keystore_generate(&keystore_soft, "NOPE", ARN, &ref), K_E_UNSUPPORTED);
	CHECK_EQ_INT(ref.len, 0);
	kbuf_release(&ref);
}

/* ---- a second store ------------------------------------------------------- */

/*
 * The fake store: material is a fixed test key the store "holds" (as a
 * token would), references are the text "fake:N", and it counts what it
 * is asked to do. It implements only encryption: everything else must
 * answer K_E_UNSUPPORTED through the dispatch.
 */
struct fake_key {
	struct keystore_key pub;
	struct ksecret *m;
};

static int fake_calls, fake_destroyed;

static K_MUST_CHECK k_status fake_open(const char *arn, const uint8_t id[16],
				       const struct kslice *refs, uint32_t n,
				       struct keystore_key **out);

static void fake_destroy(struct keystore_key *h)
{
	struct fake_key *f = (struct fake_key *)h;
	fake_destroyed++;
	ksecret_free(f->m);
	free(f);
}

static K_MUST_CHECK k_status fake_encrypt(const struct keystore_key *h, struct kslice ectx,
					  struct kslice pt, struct kbuf *blob)
{
	fake_calls++;
	const struct fake_key *f = (const struct fake_key *)h;
	return crypto_sym_encrypt(f->m, h->key_id, h->versions, ectx, pt, blob);
}

static K_MUST_CHECK k_status fake_decrypt(const struct keystore_key *h, const struct crypto_blob *b,
					  struct kslice ectx, struct kbuf *pt)
{
	fake_calls++;
	const struct fake_key *f = (const struct fake_key *)h;
	return crypto_sym_decrypt(f->m, b, ectx, pt);
}

static const struct keystore_ops fake_ops = {
	.name = "fake",
	.open = fake_open,
	.destroy = fake_destroy,
	.encrypt = fake_encrypt,
	.decrypt = fake_decrypt,
};

static K_MUST_CHECK k_status fake_open(const char *arn, const uint8_t id[16],
				       const struct kslice *refs, uint32_t n,
				       struct keystore_key **out)
{
	for (uint32_t i = 0; i < n; i++)
		ENSURE(kslice_has_prefix(refs[i], "fake:"), K_E_INTERNAL);
	struct fake_key *f = calloc(1, sizeof *f);
	ENSURE(f != NULL, K_E_INTERNAL);
	static const uint8_t fixed[32] = {1, 2, 3, 4, 5, 6, 7, 8};
	f->m = ksecret_from(fixed, sizeof fixed);
	f->pub.ops = &fake_ops;
	atomic_init(&f->pub.refs, 1);
	f->pub.versions = n;
	memcpy(f->pub.key_id, id, 16);
	*out = &f->pub;
	return K_OK;
}

static void test_registry(void)
{
	CHECK(keystore_find(NULL) == &keystore_soft);
	CHECK(keystore_find("") == &keystore_soft);
	CHECK(keystore_find("soft") == &keystore_soft);
	CHECK(keystore_find("fake") == NULL);
	CHECK_STATUS(keystore_register(&fake_ops), K_OK);
	CHECK(keystore_find("fake") == &fake_ops);
	CHECK_STATUS(keystore_register(&fake_ops), K_E_ALREADY_EXISTS);
	CHECK_STATUS(keystore_register(&keystore_soft), K_E_ALREADY_EXISTS);
}

/* A key document with the given store, built as kms writes them. */
static json_t *key_doc(const char *id, const char *store, const char *ref)
{
	char arn[160];
	snprintf(arn, sizeof arn, "arn:aws:kms:us-east-1:111122223333:key/%s", id);
	json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[{s:i, s:s, s:i}]}", "KeyId", id,
				"Arn", arn, "KeyState", "Enabled", "KeySpec", "SYMMETRIC_DEFAULT",
				"KeyUsage", "ENCRYPT_DECRYPT", "Materials", "Version", 1, "Wrapped",
				ref, "Created", 1);
	if (doc != NULL && store != NULL)
		json_object_set_new(doc, "KeyStore", json_string(store));
	return doc;
}

/*
 * Each key goes to the store its document names: two keys side by side,
 * one in each store, answer through the same calls, and the fake store
 * sees exactly the calls for its key.
 */
static void test_dispatch_per_key(void)
{
	const char *soft_id = "1234abcd-12ab-34cd-56ef-1234567890ab";
	const char *fake_id = "5678abcd-12ab-34cd-56ef-1234567890ab";
	char soft_arn[160];
	snprintf(soft_arn, sizeof soft_arn, "arn:aws:kms:us-east-1:111122223333:key/%s", soft_id);
	struct kbuf ref, blob_s, blob_f, pt, sig;
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	kbuf_init(&blob_s, 8192);
	kbuf_init(&blob_f, 8192);
	kbuf_init(&pt, 8192);
	kbuf_init(&sig, 1024);
	CHECK_STATUS(keystore_generate(&keystore_soft, "SYMMETRIC_DEFAULT", soft_arn, &ref), K_OK);
	json_t *dsoft = key_doc(soft_id, NULL, kbuf_cstr(&ref));
	json_t *dfake = key_doc(fake_id, "fake", "fake:1");
	json_t *dnone = key_doc(fake_id, "pkcs11-not-here", "x");
	struct kms_key *ks = NULL, *kf = NULL, *kn = NULL;
	CHECK_STATUS(kms_key_from_doc("111122223333:us-east-1", dsoft, 1, &ks), K_OK);
	CHECK_STATUS(kms_key_from_doc("111122223333:us-east-1", dfake, 1, &kf), K_OK);
	CHECK_STATUS(kms_key_from_doc("111122223333:us-east-1", dnone, 1, &kn), K_E_INTERNAL);
	CHECK(ks != NULL && kf != NULL);
	if (ks == NULL || kf == NULL)
		goto out;
	CHECK(ks->handle->ops == &keystore_soft);
	CHECK(kf->handle->ops == &fake_ops);
	CHECK_STR(keystore_key_store(kf->handle), "fake");
	CHECK(memcmp(kf->handle->key_id, kf->uuid, 16) == 0);

	static const uint8_t ctx[4];
	struct kslice ectx = kslice_make(ctx, 4);
	int calls = fake_calls;
	CHECK_STATUS(keystore_encrypt(ks->handle, ectx, KSLICE_LIT("to soft"), &blob_s), K_OK);
	CHECK_EQ_INT(fake_calls, calls);
	CHECK_STATUS(keystore_encrypt(kf->handle, ectx, KSLICE_LIT("to fake"), &blob_f), K_OK);
	CHECK_EQ_INT(fake_calls, calls + 1);
	struct crypto_blob bs, bf;
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob_s), &bs), K_OK);
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob_f), &bf), K_OK);
	CHECK_STATUS(keystore_decrypt(kf->handle, &bf, ectx, &pt), K_OK);
	CHECK_EQ_INT(fake_calls, calls + 2);
	CHECK(kslice_eq_cstr(kbuf_slice(&pt), "to fake"));
	/* Each store's blobs open only in that store. */
	kbuf_reset(&pt);
	CHECK_STATUS(keystore_decrypt(kf->handle, &bs, ectx, &pt), K_E_INVALID_CIPHERTEXT);
	CHECK_STATUS(keystore_decrypt(ks->handle, &bf, ectx, &pt), K_E_INVALID_CIPHERTEXT);
	CHECK_STATUS(keystore_decrypt(ks->handle, &bs, ectx, &pt), K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&pt), "to soft"));

	/* What the fake store lacks is unsupported, not a crash or a fallback. */
	bool valid = true;
	struct ksecret *dk = ksecret_new(32);
	CHECK_STATUS(keystore_sign(kf->handle, "ECDSA_SHA_256", false, KSLICE_LIT("m"), &sig),
		     K_E_UNSUPPORTED);
	CHECK_STATUS(keystore_verify(kf->handle, "ECDSA_SHA_256", false, KSLICE_LIT("m"),
				     KSLICE_LIT("s"), &valid),
		     K_E_UNSUPPORTED);
	CHECK(!valid);
	CHECK_STATUS(keystore_generate_data_key(kf->handle, ectx, dk, &blob_f), K_E_UNSUPPORTED);
	CHECK_STATUS(keystore_generate(&fake_ops, "SYMMETRIC_DEFAULT", "arn", &ref),
		     K_E_UNSUPPORTED);
	ksecret_free(dk);

	/* The snapshot's last reference destroys the fake handle. */
	int destroyed = fake_destroyed;
	kms_key_unref(kf);
	kf = NULL;
	CHECK_EQ_INT(fake_destroyed, destroyed + 1);
out:
	kms_key_unref(ks);
	kms_key_unref(kf);
	json_decref(dsoft);
	json_decref(dfake);
	json_decref(dnone);
	kbuf_release(&ref);
	kbuf_release(&blob_s);
	kbuf_release(&blob_f);
	kbuf_release(&pt);
	kbuf_release(&sig);
}

int main(void)
{
	char dir[] = "/tmp/kinko-keyops-test-XXXXXX";
	if (mkdtemp(dir) == NULL)
		return 1;
	char path[256];
	snprintf(path, sizeof path, "%s/root.key", dir);
	struct kbuf msg;
	kbuf_init(&msg, 512);
	if (k_failed(keystore_open_file(path, true, &msg))) {
		fprintf(stderr, "root key: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	kbuf_release(&msg);
	RUN(test_symmetric_round_trip);
	RUN(test_reference_format_pinned);
	RUN(test_data_keys);
	RUN(test_new_version);
	RUN(test_sign_verify_public_key);
	RUN(test_rsa_oaep);
	RUN(test_mac);
	RUN(test_derive_shared_secret);
	RUN(test_import);
	RUN(test_envelope);
	RUN(test_destroy_wipes);
	RUN(test_generate_unsupported);
	RUN(test_registry);
	RUN(test_dispatch_per_key);
	keystore_unregister_all();
	keystore_close();
	unlink(path);
	rmdir(dir);
	return tl_summary();
}
