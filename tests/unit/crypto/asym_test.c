/*
 * asym_test.c — unit tests of crypto/asym: key generation and parsing,
 * signatures (RAW and DIGEST) with tampering, RSAES-OAEP, import
 * unwrapping (both AWS wrapping forms), HMAC known answers, ECDH.
 */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto/asym.h"
#include "crypto/crypto.h"
#include "testlib.h"
#include "core/banned.h"

static struct asym_key *make_key(const char *spec)
{
	struct ksecret *der = NULL;
	struct asym_key *k = NULL;
	if (k_failed(asym_generate(spec, &der)))
		return NULL;
	if (k_failed(asym_key_load(der, &k)))
		k = NULL;
	ksecret_free(der);
	return k;
}

static void test_generate_and_spec(void)
{
	static const char *const specs[] = {"RSA_2048",
					    "ECC_NIST_P256",
					    "ECC_NIST_P384",
					    "ECC_NIST_P521",
					    "ECC_SECG_P256K1",
					    "ECC_NIST_EDWARDS25519",
					    NULL};
	for (size_t i = 0; specs[i] != NULL; i++) {
		struct asym_key *k = make_key(specs[i]);
		CHECK(k != NULL);
		if (k == NULL)
			continue;
		CHECK_STR(asym_key_spec(k), specs[i]);
		struct kbuf pub;
		kbuf_init(&pub, ASYM_MAX_SPKI);
		CHECK_STATUS(asym_public_der(k, &pub), K_OK);
		const unsigned char *p = pub.ptr;
		EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)pub.len);
		CHECK(pk != NULL);
		EVP_PKEY_free(pk);
		kbuf_release(&pub);
		asym_key_free(k);
	}
	struct ksecret *der = NULL;
	CHECK_STATUS(asym_generate("SYMMETRIC_DEFAULT", &der), K_E_UNSUPPORTED);
	CHECK(der == NULL);
}

static void test_load_rejects_garbage(void)
{
	struct ksecret *junk = ksecret_from((const uint8_t *)"not a key at all", 16);
	struct asym_key *k = NULL;
	CHECK_STATUS(asym_key_load(junk, &k), K_E_VALIDATION);
	CHECK(k == NULL);
	ksecret_free(junk);
}

static void sign_roundtrip(struct asym_key *k, const char *alg)
{
	const char *msg = "the message to sign";
	struct kbuf sig;
	kbuf_init(&sig, ASYM_MAX_SIG);
	bool valid = false;
	CHECK_STATUS(asym_sign(k, alg, false, kslice_cstr(msg), &sig), K_OK);
	CHECK_STATUS(asym_verify(k, alg, false, kslice_cstr(msg), kbuf_slice(&sig), &valid), K_OK);
	CHECK(valid);
	/* The DIGEST form of the same message verifies the RAW signature. */
	size_t dl = asym_sign_digest_len(alg);
	if (dl != 0) {
		const EVP_MD *md = dl == 32 ? EVP_sha256() : dl == 48 ? EVP_sha384() : EVP_sha512();
		uint8_t dig[64];
		unsigned int n = 0;
		CHECK(EVP_Digest(msg, strlen(msg), dig, &n, md, NULL) == 1);
		CHECK_STATUS(
			asym_verify(k, alg, true, kslice_make(dig, n), kbuf_slice(&sig), &valid),
			K_OK);
		CHECK(valid);
		CHECK_STATUS(asym_verify(k, alg, true, kslice_make(dig, n - 1), kbuf_slice(&sig),
					 &valid),
			     K_E_VALIDATION);
	}
	/* Tampered message and tampered signature both fail, without error. */
	CHECK_STATUS(asym_verify(k, alg, false, kslice_cstr("the message to sigN"),
				 kbuf_slice(&sig), &valid),
		     K_OK);
	CHECK(!valid);
	sig.ptr[sig.len / 2] ^= 0x01;
	CHECK_STATUS(asym_verify(k, alg, false, kslice_cstr(msg), kbuf_slice(&sig), &valid), K_OK);
	CHECK(!valid);
	kbuf_release(&sig);
}

static void test_sign_verify(void)
{
	struct asym_key *rsa = make_key("RSA_2048");
	static const char *const rsa_algs[] = {"RSASSA_PSS_SHA_256",
					       "RSASSA_PSS_SHA_384",
					       "RSASSA_PSS_SHA_512",
					       "RSASSA_PKCS1_V1_5_SHA_256",
					       "RSASSA_PKCS1_V1_5_SHA_384",
					       "RSASSA_PKCS1_V1_5_SHA_512",
					       NULL};
	for (size_t i = 0; rsa && rsa_algs[i] != NULL; i++)
		sign_roundtrip(rsa, rsa_algs[i]);
	struct kbuf sig;
	kbuf_init(&sig, ASYM_MAX_SIG);
	CHECK_STATUS(asym_sign(rsa, "ECDSA_SHA_256", false, kslice_cstr("m"), &sig),
		     K_E_INVALID_KEY_USAGE);
	asym_key_free(rsa);

	struct asym_key *p256 = make_key("ECC_NIST_P256");
	sign_roundtrip(p256, "ECDSA_SHA_256");
	CHECK(!asym_sign_alg_fits("ECDSA_SHA_384", "ECC_NIST_P256"));
	asym_key_free(p256);
	struct asym_key *p384 = make_key("ECC_NIST_P384");
	sign_roundtrip(p384, "ECDSA_SHA_384");
	asym_key_free(p384);
	struct asym_key *p521 = make_key("ECC_NIST_P521");
	sign_roundtrip(p521, "ECDSA_SHA_512");
	asym_key_free(p521);
	struct asym_key *k1 = make_key("ECC_SECG_P256K1");
	sign_roundtrip(k1, "ECDSA_SHA_256");
	asym_key_free(k1);

	struct asym_key *ed = make_key("ECC_NIST_EDWARDS25519");
	sign_roundtrip(ed, "ED25519_SHA_512");
	kbuf_reset(&sig);
	CHECK_STATUS(asym_sign(ed, "ED25519_SHA_512", false, kslice_cstr("m"), &sig), K_OK);
	CHECK_EQ_INT((int)sig.len, 64);
	asym_key_free(ed);
	kbuf_release(&sig);

	CHECK_EQ_INT((int)asym_sign_digest_len("RSASSA_PSS_SHA_384"), 48);
	CHECK_EQ_INT((int)asym_sign_digest_len("ED25519_SHA_512"), 0);
}

static void test_oaep(void)
{
	struct asym_key *k = make_key("RSA_2048");
	CHECK_EQ_INT((int)asym_oaep_max_plaintext(k, "RSAES_OAEP_SHA_1"), 214);
	CHECK_EQ_INT((int)asym_oaep_max_plaintext(k, "RSAES_OAEP_SHA_256"), 190);
	uint8_t pt[190];
	memset(pt, 0x5a, sizeof pt);
	struct kbuf ct;
	kbuf_init(&ct, 512);
	CHECK_STATUS(asym_oaep_encrypt(k, "RSAES_OAEP_SHA_256", kslice_make(pt, sizeof pt), &ct),
		     K_OK);
	CHECK_EQ_INT((int)ct.len, 256);
	struct ksecret *out = NULL;
	CHECK_STATUS(asym_oaep_decrypt(k, "RSAES_OAEP_SHA_256", kbuf_slice(&ct), &out), K_OK);
	CHECK(out != NULL && ksecret_len(out) == sizeof pt &&
	      memcmp(ksecret_cbytes(out), pt, sizeof pt) == 0);
	ksecret_free(out);
	out = NULL;
	/* The other hash does not decrypt it; neither does a flipped bit. */
	CHECK_STATUS(asym_oaep_decrypt(k, "RSAES_OAEP_SHA_1", kbuf_slice(&ct), &out),
		     K_E_INVALID_CIPHERTEXT);
	ct.ptr[10] ^= 1;
	CHECK_STATUS(asym_oaep_decrypt(k, "RSAES_OAEP_SHA_256", kbuf_slice(&ct), &out),
		     K_E_INVALID_CIPHERTEXT);
	kbuf_reset(&ct);
	uint8_t big[191] = {0};
	CHECK_STATUS(asym_oaep_encrypt(k, "RSAES_OAEP_SHA_256", kslice_make(big, sizeof big), &ct),
		     K_E_VALIDATION);
	kbuf_release(&ct);
	asym_key_free(k);
}

/*
 * Wraps like AWS's documented openssl commands do, but through the EVP
 * API: RSA-OAEP of an AES key, then AES-256 key wrap with padding.
 */
static void test_import_unwrap(void)
{
	struct asym_key *k = make_key("RSA_2048");
	struct kbuf pub;
	kbuf_init(&pub, ASYM_MAX_SPKI);
	CHECK_STATUS(asym_public_der(k, &pub), K_OK);
	const unsigned char *pp = pub.ptr;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &pp, (long)pub.len);
	uint8_t material[32], aes[32];
	CHECK_STATUS(crypto_random(material, sizeof material), K_OK);
	CHECK_STATUS(crypto_random(aes, sizeof aes), K_OK);

	uint8_t blob[512 + 64];
	size_t rsa_len = 256;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
	CHECK(EVP_PKEY_encrypt_init(ctx) == 1);
	CHECK(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1);
	CHECK(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1);
	CHECK(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1);
	CHECK(EVP_PKEY_encrypt(ctx, blob, &rsa_len, aes, sizeof aes) == 1);
	EVP_PKEY_CTX_free(ctx);

	EVP_CIPHER_CTX *cctx = EVP_CIPHER_CTX_new();
	EVP_CIPHER_CTX_set_flags(cctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	int n = 0, fin = 0;
	CHECK(EVP_EncryptInit_ex(cctx, EVP_aes_256_wrap_pad(), NULL, aes, NULL) == 1);
	CHECK(EVP_EncryptUpdate(cctx, blob + rsa_len, &n, material, sizeof material) == 1);
	CHECK(EVP_EncryptFinal_ex(cctx, blob + rsa_len + n, &fin) == 1);
	EVP_CIPHER_CTX_free(cctx);
	size_t total = rsa_len + (size_t)(n + fin);

	struct ksecret *out = NULL;
	CHECK_STATUS(
		asym_import_unwrap(k, "RSA_AES_KEY_WRAP_SHA_256", kslice_make(blob, total), &out),
		K_OK);
	CHECK(out != NULL && ksecret_len(out) == 32 &&
	      memcmp(ksecret_cbytes(out), material, 32) == 0);
	ksecret_free(out);
	out = NULL;
	CHECK_STATUS(
		asym_import_unwrap(k, "RSA_AES_KEY_WRAP_SHA_1", kslice_make(blob, total), &out),
		K_E_INVALID_CIPHERTEXT);
	blob[total - 1] ^= 1;
	CHECK_STATUS(
		asym_import_unwrap(k, "RSA_AES_KEY_WRAP_SHA_256", kslice_make(blob, total), &out),
		K_E_INVALID_CIPHERTEXT);
	CHECK(out == NULL);
	EVP_PKEY_free(pk);
	kbuf_release(&pub);
	asym_key_free(k);
}

/* RFC 4231 test case 2 (key "Jefe"). */
static void test_hmac_rfc4231(void)
{
	static const uint8_t want256[32] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
					    0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
					    0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
					    0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
	static const uint8_t want224[28] = {
		0xa3, 0x0e, 0x01, 0x09, 0x8b, 0xc6, 0xdb, 0xbf, 0x45, 0x69, 0x0f, 0x3a, 0x7e, 0x9e,
		0x6d, 0x0f, 0x8b, 0xbe, 0xa2, 0xa3, 0x9e, 0x61, 0x48, 0x00, 0x8f, 0xd0, 0x5e, 0x44};
	struct ksecret *key = ksecret_from((const uint8_t *)"Jefe", 4);
	uint8_t mac[ASYM_MAX_MAC];
	size_t len = 0;
	struct kslice msg = kslice_cstr("what do ya want for nothing?");
	CHECK_STATUS(asym_hmac(key, "HMAC_SHA_256", msg, mac, &len), K_OK);
	CHECK_EQ_INT((int)len, 32);
	CHECK(memcmp(mac, want256, 32) == 0);
	CHECK_STATUS(asym_hmac(key, "HMAC_SHA_224", msg, mac, &len), K_OK);
	CHECK_EQ_INT((int)len, 28);
	CHECK(memcmp(mac, want224, 28) == 0);
	CHECK_STATUS(asym_hmac(key, "HMAC_SHA_512", msg, mac, &len), K_OK);
	CHECK_EQ_INT((int)len, 64);
	ksecret_free(key);
}

static void test_ecdh(void)
{
	struct asym_key *a = make_key("ECC_NIST_P256");
	struct asym_key *b = make_key("ECC_NIST_P256");
	struct asym_key *c = make_key("ECC_NIST_P384");
	struct kbuf pa, pb, pc;
	kbuf_init(&pa, ASYM_MAX_SPKI);
	kbuf_init(&pb, ASYM_MAX_SPKI);
	kbuf_init(&pc, ASYM_MAX_SPKI);
	CHECK_STATUS(asym_public_der(a, &pa), K_OK);
	CHECK_STATUS(asym_public_der(b, &pb), K_OK);
	CHECK_STATUS(asym_public_der(c, &pc), K_OK);
	struct ksecret *s1 = NULL, *s2 = NULL, *s3 = NULL;
	CHECK_STATUS(asym_ecdh(a, kbuf_slice(&pb), &s1), K_OK);
	CHECK_STATUS(asym_ecdh(b, kbuf_slice(&pa), &s2), K_OK);
	CHECK(s1 && s2 && ksecret_len(s1) == 32 && ksecret_len(s2) == 32 &&
	      memcmp(ksecret_cbytes(s1), ksecret_cbytes(s2), 32) == 0);
	CHECK_STATUS(asym_ecdh(a, kbuf_slice(&pc), &s3), K_E_VALIDATION);
	CHECK_STATUS(asym_ecdh(a, kslice_make(pb.ptr, pb.len - 1), &s3), K_E_VALIDATION);
	CHECK(s3 == NULL);
	ksecret_free(s1);
	ksecret_free(s2);
	kbuf_release(&pa);
	kbuf_release(&pb);
	kbuf_release(&pc);
	asym_key_free(a);
	asym_key_free(b);
	asym_key_free(c);
}

int main(void)
{
	RUN(test_generate_and_spec);
	RUN(test_load_rejects_garbage);
	RUN(test_sign_verify);
	RUN(test_oaep);
	RUN(test_import_unwrap);
	RUN(test_hmac_rfc4231);
	RUN(test_ecdh);
	return tl_summary();
}
