/*
 * prepared_test.c — Ed25519 signing and verification on the key's prepared
 * contexts, and HMAC on a prepared key (crypto/asym.h), give the same
 * answers as before: RFC 8032's and RFC 4231's known answers, OpenSSL's
 * one-shot functions run directly, on every call (the first prepares, the
 * later ones copy) and from several threads at once.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "crypto/asym.h"
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

/* RFC 8032, section 7.1, tests 2 and 3 (one and two bytes of message). */
static const struct {
	const char *seed, *msg, *sig;
} rfc8032[] = {
	{"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "72",
	 "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d"
	 "0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
	{"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "af82",
	 "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f7609"
	 "84dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

/* The key as asym_key_load takes it (PKCS#8 DER), and OpenSSL's own EVP_PKEY. */
static struct asym_key *ed_key(const char *seed_hex, EVP_PKEY **pkey)
{
	uint8_t seed[32];
	unhex(seed_hex, seed, sizeof seed);
	*pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
	unsigned char *der = NULL;
	int n = *pkey != NULL ? i2d_PrivateKey(*pkey, &der) : -1;
	struct asym_key *k = NULL;
	if (n > 0) {
		struct ksecret *s = ksecret_from(der, (size_t)n);
		if (s == NULL || k_failed(asym_key_load(s, &k)))
			k = NULL;
		ksecret_free(s);
	}
	OPENSSL_free(der);
	return k;
}

/* OpenSSL's Ed25519 signature on a new context, as kinko made it before. */
static bool openssl_sign(EVP_PKEY *pkey, const uint8_t *msg, size_t n, uint8_t sig[64])
{
	size_t len = 64;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok = c != NULL && EVP_DigestSignInit(c, NULL, NULL, NULL, pkey) == 1 &&
		  EVP_DigestSign(c, sig, &len, msg, n) == 1 && len == 64;
	EVP_MD_CTX_free(c);
	return ok;
}

static void test_ed25519_known_answers(void)
{
	for (size_t t = 0; t < sizeof rfc8032 / sizeof rfc8032[0]; t++) {
		EVP_PKEY *pkey = NULL;
		struct asym_key *k = ed_key(rfc8032[t].seed, &pkey);
		CHECK(k != NULL);
		if (k == NULL) {
			EVP_PKEY_free(pkey);
			continue;
		}
		uint8_t msg[2], want[64], direct[64];
		size_t mlen = strlen(rfc8032[t].msg) / 2;
		unhex(rfc8032[t].msg, msg, mlen);
		unhex(rfc8032[t].sig, want, sizeof want);
		CHECK(openssl_sign(pkey, msg, mlen, direct) && memcmp(direct, want, 64) == 0);
		/* The first call prepares the context, the later ones copy it. */
		for (int round = 0; round < 3; round++) {
			struct kbuf sig;
			kbuf_init(&sig, ASYM_MAX_SIG);
			CHECK_STATUS(asym_sign(k, "ED25519_SHA_512", false, kslice_make(msg, mlen),
					       &sig),
				     K_OK);
			CHECK(sig.len == 64 && memcmp(sig.ptr, want, 64) == 0);
			kbuf_release(&sig);
			bool valid = false;
			CHECK_STATUS(asym_verify(k, "ED25519_SHA_512", false,
						 kslice_make(msg, mlen), kslice_make(want, 64),
						 &valid),
				     K_OK);
			CHECK(valid);
			/* A failed verification leaves the prepared context as it was. */
			want[round] ^= 1;
			CHECK_STATUS(asym_verify(k, "ED25519_SHA_512", false,
						 kslice_make(msg, mlen), kslice_make(want, 64),
						 &valid),
				     K_OK);
			CHECK(!valid);
			want[round] ^= 1;
		}
		asym_key_free(k);
		EVP_PKEY_free(pkey);
	}
}

/* ---- several threads on one key ------------------------------------------------ */

struct ed_job {
	struct asym_key *k;
	const uint8_t *want;
	int bad;
};

static void *ed_worker(void *arg)
{
	struct ed_job *j = arg;
	for (int i = 0; i < 200; i++) {
		struct kbuf sig;
		kbuf_init(&sig, ASYM_MAX_SIG);
		bool valid = false;
		if (k_failed(asym_sign(j->k, "ED25519_SHA_512", false, kslice_make("\x72", 1),
				       &sig)) ||
		    sig.len != 64 || memcmp(sig.ptr, j->want, 64) != 0 ||
		    k_failed(asym_verify(j->k, "ED25519_SHA_512", false, kslice_make("\x72", 1),
					 kslice_make(j->want, 64), &valid)) ||
		    !valid)
			j->bad++;
		kbuf_release(&sig);
	}
	return NULL;
}

static void test_ed25519_threads(void)
{
	EVP_PKEY *pkey = NULL;
	struct asym_key *k = ed_key(rfc8032[0].seed, &pkey);
	CHECK(k != NULL);
	uint8_t want[64];
	unhex(rfc8032[0].sig, want, sizeof want);
	struct ed_job jobs[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct ed_job){.k = k, .want = want};
		CHECK(pthread_create(&th[i], NULL, ed_worker, &jobs[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(jobs[i].bad, 0);
	}
	asym_key_free(k);
	EVP_PKEY_free(pkey);
}

/* ---- HMAC ------------------------------------------------------------------------ */

static const char *const mac_algs[] = {"HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384",
				       "HMAC_SHA_512"};
static const char *const digests[] = {"SHA224", "SHA256", "SHA384", "SHA512"};

/* RFC 4231 test case 2 (key "Jefe"), HMAC-SHA-256. */
static void test_hmac_known_answer(void)
{
	uint8_t want[32];
	unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 32);
	struct ksecret *key = ksecret_from((const uint8_t *)"Jefe", 4);
	struct asym_mac *p = NULL;
	CHECK_STATUS(asym_mac_prepare(key, "HMAC_SHA_256", &p), K_OK);
	CHECK(asym_mac_is_for(p, "HMAC_SHA_256") && !asym_mac_is_for(p, "HMAC_SHA_384"));
	for (int round = 0; round < 3; round++) {
		uint8_t mac[ASYM_MAX_MAC];
		size_t len = 0;
		CHECK_STATUS(
			asym_mac_run(p, kslice_cstr("what do ya want for nothing?"), mac, &len),
			K_OK);
		CHECK(len == 32 && memcmp(mac, want, 32) == 0);
	}
	asym_mac_free(p);
	p = NULL;
	CHECK_STATUS(asym_mac_prepare(key, "HMAC_SHA_1", &p), K_E_INTERNAL);
	CHECK(p == NULL);
	ksecret_free(key);
}

/* Every algorithm, message lengths around the block sizes: prepared = one-shot = OpenSSL's. */
static void test_hmac_matches_openssl(void)
{
	static const size_t lens[] = {0, 1, 63, 64, 100, 127, 128, 129, 4096};
	uint8_t keyb[64], msg[4096];
	CHECK(RAND_bytes(keyb, sizeof keyb) == 1 && RAND_bytes(msg, sizeof msg) == 1);
	for (size_t a = 0; a < 4; a++) {
		/* HMAC keys are as long as their digest (28, 32, 48, 64 bytes). */
		size_t klen = a == 0 ? 28 : a == 1 ? 32 : a == 2 ? 48 : 64;
		struct ksecret *key = ksecret_from(keyb, klen);
		struct asym_mac *p = NULL;
		CHECK_STATUS(asym_mac_prepare(key, mac_algs[a], &p), K_OK);
		for (size_t i = 0; p != NULL && i < sizeof lens / sizeof lens[0]; i++) {
			uint8_t got[ASYM_MAX_MAC], once[ASYM_MAX_MAC], direct[ASYM_MAX_MAC];
			size_t gl = 0, ol = 0, dl = 0;
			CHECK_STATUS(asym_mac_run(p, kslice_make(msg, lens[i]), got, &gl), K_OK);
			CHECK_STATUS(
				asym_hmac(key, mac_algs[a], kslice_make(msg, lens[i]), once, &ol),
				K_OK);
			CHECK(EVP_Q_mac(NULL, "HMAC", NULL, digests[a], NULL, keyb, klen, msg,
					lens[i], direct, sizeof direct, &dl) != NULL);
			CHECK(gl == dl && ol == dl && memcmp(got, direct, dl) == 0 &&
			      memcmp(once, direct, dl) == 0);
		}
		asym_mac_free(p);
		ksecret_free(key);
	}
}

int main(void)
{
	RUN(test_ed25519_known_answers);
	RUN(test_ed25519_threads);
	RUN(test_hmac_known_answer);
	RUN(test_hmac_matches_openssl);
	return tl_summary();
}
