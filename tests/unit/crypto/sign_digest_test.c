/*
 * sign_digest_test.c — incremental SHA-256 (crypto.h) and Ed25519
 * (crypto/ed25519.h), with the published known answers: FIPS 180-2's
 * SHA-256 examples and RFC 8032 section 7.1's Ed25519 tests 1 and 2.
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/secret.h"
#include "crypto/crypto.h"
#include "crypto/ed25519.h"
#include "testlib.h"

#include "core/banned.h"

static void unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;
		CHECK(sscanf(h + 2 * i, "%2x", &v) == 1);
		out[i] = (uint8_t)v;
	}
}

static void check_hex(const uint8_t *p, size_t n, const char *want)
{
	uint8_t w[128];
	CHECK(strlen(want) == 2 * n && n <= sizeof w);
	unhex(want, w, n);
	CHECK(memcmp(p, w, n) == 0);
}

/* ---- SHA-256 ------------------------------------------------------------- */

static const char abc_sha[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char two_blocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char two_blocks_sha[] =
	"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
static const char empty_sha[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static void test_sha256_oneshot(void)
{
	uint8_t md[CRYPTO_SHA256_LEN];
	CHECK(k_ok(crypto_sha256("abc", 3, md)));
	check_hex(md, sizeof md, abc_sha);
	CHECK(k_ok(crypto_sha256("", 0, md)));
	check_hex(md, sizeof md, empty_sha);
}

/* One context, reused: each begin starts afresh; any split of the input gives the same digest. */
static void test_sha256_incremental(void)
{
	struct crypto_sha256_ctx *c = crypto_sha256_ctx_new();
	CHECK(c != NULL);
	uint8_t md[CRYPTO_SHA256_LEN];
	CHECK(k_ok(crypto_sha256_begin(c)));
	CHECK(k_ok(crypto_sha256_update(c, "a", 1)));
	CHECK(k_ok(crypto_sha256_update(c, "", 0)));
	CHECK(k_ok(crypto_sha256_update(c, "bc", 2)));
	CHECK(k_ok(crypto_sha256_end(c, md)));
	check_hex(md, sizeof md, abc_sha);

	size_t n = strlen(two_blocks);
	for (size_t cut = 0; cut <= n; cut++) {
		CHECK(k_ok(crypto_sha256_begin(c)));
		CHECK(k_ok(crypto_sha256_update(c, two_blocks, cut)));
		CHECK(k_ok(crypto_sha256_update(c, two_blocks + cut, n - cut)));
		CHECK(k_ok(crypto_sha256_end(c, md)));
		check_hex(md, sizeof md, two_blocks_sha);
	}
	CHECK(k_ok(crypto_sha256_begin(c)));
	CHECK(k_ok(crypto_sha256_end(c, md)));
	check_hex(md, sizeof md, empty_sha);
	crypto_sha256_ctx_free(c);
	crypto_sha256_ctx_free(NULL);
}

/* ---- Ed25519 ------------------------------------------------------------- */

static const struct {
	const char *seed, *pub, *msg, *sig;
} rfc8032[] = {
	{"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	 "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
	 "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701"
	 "cf9b46bd25bf5f0595bbe24655141438e7a100b"},
	{"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
	 "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
	 "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d"
	 "0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
};

/* Test 1's public key as PEM (SubjectPublicKeyInfo: 302a300506032b6570032100 || key). */
static const char rfc8032_pem1[] = "-----BEGIN PUBLIC KEY-----\n"
				   "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
				   "-----END PUBLIC KEY-----\n";

static struct crypto_ed25519 *key_from_hex(const char *seed_hex)
{
	struct ksecret *seed = ksecret_new(CRYPTO_ED25519_SEED_LEN);
	CHECK(seed != NULL);
	unhex(seed_hex, ksecret_bytes(seed), CRYPTO_ED25519_SEED_LEN);
	struct crypto_ed25519 *k = NULL;
	CHECK(k_ok(crypto_ed25519_from_seed(seed, &k)));
	ksecret_free(seed);
	return k;
}

static void test_ed25519_kat(void)
{
	for (size_t i = 0; i < sizeof rfc8032 / sizeof rfc8032[0]; i++) {
		struct crypto_ed25519 *k = key_from_hex(rfc8032[i].seed);
		uint8_t pub[CRYPTO_ED25519_PUBLIC_LEN], sig[CRYPTO_ED25519_SIG_LEN], msg[8];
		size_t mlen = strlen(rfc8032[i].msg) / 2;
		unhex(rfc8032[i].msg, msg, mlen);
		CHECK(k_ok(crypto_ed25519_public_raw(k, pub)));
		check_hex(pub, sizeof pub, rfc8032[i].pub);
		CHECK(k_ok(crypto_ed25519_sign(k, kslice_make(msg, mlen), sig)));
		check_hex(sig, sizeof sig, rfc8032[i].sig);
		bool valid = false;
		CHECK(k_ok(crypto_ed25519_verify(k, kslice_make(msg, mlen),
						 kslice_make(sig, sizeof sig), &valid)));
		CHECK(valid);
		crypto_ed25519_free(k);
	}
}

static void test_ed25519_pem(void)
{
	struct crypto_ed25519 *k = key_from_hex(rfc8032[0].seed);
	struct kbuf pem;
	kbuf_init(&pem, 4096);
	CHECK(k_ok(crypto_ed25519_public_pem(k, &pem)));
	CHECK_STR(kbuf_cstr(&pem), rfc8032_pem1);

	/* The public key read back verifies the private key's signature, and nothing else. */
	struct crypto_ed25519 *p = NULL;
	CHECK(k_ok(crypto_ed25519_from_pem(kbuf_cstr(&pem), &p)));
	uint8_t pub[CRYPTO_ED25519_PUBLIC_LEN], sig[CRYPTO_ED25519_SIG_LEN];
	CHECK(k_ok(crypto_ed25519_public_raw(p, pub)));
	check_hex(pub, sizeof pub, rfc8032[0].pub);
	struct kslice msg = KSLICE_LIT("kinko audit digest");
	CHECK(k_ok(crypto_ed25519_sign(k, msg, sig)));
	bool valid = false;
	CHECK(k_ok(crypto_ed25519_verify(p, msg, kslice_make(sig, sizeof sig), &valid)) && valid);
	CHECK(k_ok(crypto_ed25519_verify(p, KSLICE_LIT("kinko audit digesT"),
					 kslice_make(sig, sizeof sig), &valid)));
	CHECK(!valid);
	sig[10] ^= 1;
	CHECK(k_ok(crypto_ed25519_verify(p, msg, kslice_make(sig, sizeof sig), &valid)) && !valid);
	sig[10] ^= 1;
	CHECK(k_ok(crypto_ed25519_verify(p, msg, kslice_make(sig, sizeof sig - 1), &valid)) &&
	      !valid);
	CHECK(k_ok(crypto_ed25519_verify(p, msg, kslice_make(NULL, 0), &valid)) && !valid);
	crypto_ed25519_free(p);
	crypto_ed25519_free(k);
	crypto_ed25519_free(NULL);
	kbuf_release(&pem);
}

static void test_ed25519_refusals(void)
{
	struct crypto_ed25519 *k = NULL;
	CHECK(k_is(crypto_ed25519_from_pem("not a key", &k), K_E_VALIDATION));
	CHECK(k_is(crypto_ed25519_from_pem("", &k), K_E_VALIDATION));
	CHECK(k == NULL);
	struct ksecret *short_seed = ksecret_new(31);
	CHECK(short_seed != NULL);
	CHECK(k_is(crypto_ed25519_from_seed(short_seed, &k), K_E_INTERNAL));
	CHECK(k == NULL);
	ksecret_free(short_seed);
}

int main(void)
{
	RUN(test_sha256_oneshot);
	RUN(test_sha256_incremental);
	RUN(test_ed25519_kat);
	RUN(test_ed25519_pem);
	RUN(test_ed25519_refusals);
	return tl_summary();
}
