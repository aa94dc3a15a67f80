/*
 * hkdf_test.c — crypto_hkdf_sha256 (crypto/hkdf.c), the HKDF that derives
 * every Encrypt's per-message key and IV.
 *
 * It is composed from OpenSSL's HMAC on a reused per-thread context, so it
 * must give exactly what OpenSSL's own EVP_KDF "HKDF" gives: checked here
 * on RFC 5869's SHA-256 test cases and on many random inputs, in one
 * thread and in several at once, and in orders that would expose state
 * left over in the reused context (a previous key, a previous T block).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "core/buf.h"
#include "crypto/internal.h"
#include "testlib.h"

#include "core/banned.h"

#define MAX_OKM (255 * 32)

static int unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;
	if (n > cap)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return (int)n;
}

static void fill_range(uint8_t *p, size_t n, uint8_t first)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(first + i);
}

/* OpenSSL's EVP_KDF "HKDF" with SHA-256: the reference. 1 on success. */
static int ref_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
		    const uint8_t *info, size_t info_len, uint8_t *okm, size_t okm_len)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[5];
	size_t i = 0;
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	int ok = 0;

	params[i++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
	params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	if (salt_len > 0)
		params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
								salt_len);
	if (info_len > 0)
		params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
								info_len);
	params[i] = OSSL_PARAM_construct_end();
	if (ctx != NULL)
		ok = EVP_KDF_derive(ctx, okm, okm_len, params) == 1;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok;
}

static K_MUST_CHECK k_status ours(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
				  size_t salt_len, const uint8_t *info, size_t info_len,
				  uint8_t *okm, size_t okm_len)
{
	return crypto_hkdf_sha256(kslice_make(ikm, ikm_len), kslice_make(salt, salt_len),
				  kslice_make(info, info_len), okm, okm_len);
}

/* ---- RFC 5869, appendix A, test cases 1-3 (SHA-256) -------------------- */

static const char rfc_okm1[] = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
			       "34007208d5b887185865";
static const char rfc_okm2[] = "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
			       "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
			       "cc30c58179ec3e87c14c01d5c1f3434f1d87";
static const char rfc_okm3[] = "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
			       "9d201395faa4b61a96c8";

static void check_rfc(int tc, const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
		      size_t salt_len, const uint8_t *info, size_t info_len, const char *hex)
{
	uint8_t want[128], got[128], ref[128];
	int n = unhex(hex, want, sizeof want);
	CHECK(n > 0);
	if (n <= 0)
		return;
	memset(got, 0, sizeof got);
	CHECK_STATUS(ours(ikm, ikm_len, salt, salt_len, info, info_len, got, (size_t)n), K_OK);
	if (memcmp(got, want, (size_t)n) != 0)
		fprintf(stderr, "RFC 5869 test case %d: wrong OKM\n", tc);
	CHECK(memcmp(got, want, (size_t)n) == 0);
	/* And the reference agrees with the RFC, so the random test below means something. */
	CHECK(ref_hkdf(ikm, ikm_len, salt, salt_len, info, info_len, ref, (size_t)n));
	CHECK(memcmp(ref, want, (size_t)n) == 0);
}

static void test_rfc5869(void)
{
	uint8_t ikm[80], salt[80], info[80];

	/* Case 1: IKM 0x0b x 22, salt 00..0c, info f0..f9, L = 42. */
	memset(ikm, 0x0b, 22);
	fill_range(salt, 13, 0x00);
	fill_range(info, 10, 0xf0);
	check_rfc(1, ikm, 22, salt, 13, info, 10, rfc_okm1);

	/* Case 2: IKM 00..4f, salt 60..af, info b0..ff, L = 82 (three T blocks). */
	fill_range(ikm, 80, 0x00);
	fill_range(salt, 80, 0x60);
	fill_range(info, 80, 0xb0);
	check_rfc(2, ikm, 80, salt, 80, info, 80, rfc_okm2);

	/*
	 * Case 3: IKM 0x0b x 22, no salt, no info, L = 42. Runs right after
	 * keyed calls on the same thread's context: an empty salt must mean
	 * 32 zero bytes, never "the previous key".
	 */
	memset(ikm, 0x0b, 22);
	check_rfc(3, ikm, 22, NULL, 0, NULL, 0, rfc_okm3);
	check_rfc(3, ikm, 22, salt, 0, info, 0, rfc_okm3);
	/* And back to a keyed salt on the same context. */
	fill_range(salt, 13, 0x00);
	fill_range(info, 10, 0xf0);
	check_rfc(1, ikm, 22, salt, 13, info, 10, rfc_okm1);
}

/* ---- random inputs against EVP_KDF "HKDF" ------------------------------ */

static size_t rand_below(size_t n)
{
	uint32_t r = 0;
	if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
		abort();
	return (size_t)(r % n);
}

/* Runs `rounds` random cases; returns the number that differ from the reference. */
static int random_rounds(int rounds, int *compared)
{
	static _Thread_local uint8_t ikm[160], salt[160], info[300], got[MAX_OKM], ref[MAX_OKM];
	int bad = 0;
	*compared = 0;
	for (int r = 0; r < rounds; r++) {
		size_t ikm_len = 1 + rand_below(sizeof ikm);
		size_t salt_len = rand_below(sizeof salt + 1);
		size_t info_len = rand_below(sizeof info + 1);
		/* Mostly the sizes kinko uses, sometimes the longest HKDF allows. */
		size_t okm_len = r % 50 == 7 ? MAX_OKM - rand_below(40) : 1 + rand_below(200);
		if (RAND_bytes(ikm, (int)ikm_len) != 1 ||
		    (salt_len > 0 && RAND_bytes(salt, (int)salt_len) != 1) ||
		    (info_len > 0 && RAND_bytes(info, (int)info_len) != 1))
			abort();
		if (!ref_hkdf(ikm, ikm_len, salt, salt_len, info, info_len, ref, okm_len)) {
			bad++;
			continue;
		}
		(*compared)++;
		memset(got, 0xee, okm_len);
		if (k_failed(ours(ikm, ikm_len, salt, salt_len, info, info_len, got, okm_len)) ||
		    memcmp(got, ref, okm_len) != 0) {
			if (bad == 0)
				fprintf(stderr,
					"HKDF mismatch: ikm %zu salt %zu info %zu okm %zu\n",
					ikm_len, salt_len, info_len, okm_len);
			bad++;
		}
	}
	return bad;
}

static void test_random_vs_openssl(void)
{
	int compared = 0;
	CHECK_EQ_INT(random_rounds(2000, &compared), 0);
	CHECK_EQ_INT(compared, 2000);
}

/* The exact shape sym.c uses: 32-byte key, 16-byte salt, 50-byte info, 44 bytes out. */
static void test_sym_shape(void)
{
	uint8_t ikm[32], salt[16], info[50], got[44], ref[44];
	int bad = 0;
	for (int r = 0; r < 500; r++) {
		CHECK(RAND_bytes(ikm, sizeof ikm) == 1 && RAND_bytes(salt, sizeof salt) == 1 &&
		      RAND_bytes(info, sizeof info) == 1);
		if (k_failed(ours(ikm, 32, salt, 16, info, 50, got, 44)) ||
		    !ref_hkdf(ikm, 32, salt, 16, info, 50, ref, 44) || memcmp(got, ref, 44) != 0)
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
}

/* Every output length from 1 to 97 (around the 32-byte block edges) is a prefix of the longest. */
static void test_lengths(void)
{
	uint8_t ikm[32], salt[16], info[20], full[97], part[97], ref[97];
	fill_range(ikm, sizeof ikm, 0x10);
	fill_range(salt, sizeof salt, 0x90);
	fill_range(info, sizeof info, 0x30);
	CHECK_STATUS(ours(ikm, 32, salt, 16, info, 20, full, sizeof full), K_OK);
	CHECK(ref_hkdf(ikm, 32, salt, 16, info, 20, ref, sizeof ref));
	CHECK(memcmp(full, ref, sizeof full) == 0);
	int bad = 0;
	for (size_t n = 1; n <= sizeof part; n++) {
		if (k_failed(ours(ikm, 32, salt, 16, info, 20, part, n)) ||
		    memcmp(part, full, n) != 0)
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
}

static void test_bad_arguments(void)
{
	uint8_t ikm[32] = {1}, okm[64];
	memset(okm, 0x5a, sizeof okm);
	CHECK_STATUS(crypto_hkdf_sha256(kslice_make(ikm, 32), kslice_make(NULL, 0),
					kslice_make(NULL, 0), okm, 0),
		     K_E_INTERNAL);
	CHECK_STATUS(crypto_hkdf_sha256(kslice_make(ikm, 32), kslice_make(NULL, 0),
					kslice_make(NULL, 0), NULL, 32),
		     K_E_INTERNAL);
	/* RFC 5869: L <= 255 * HashLen. */
	static uint8_t big[MAX_OKM + 1];
	CHECK_STATUS(crypto_hkdf_sha256(kslice_make(ikm, 32), kslice_make(NULL, 0),
					kslice_make(NULL, 0), big, sizeof big),
		     K_E_INTERNAL);
	CHECK_STATUS(crypto_hkdf_sha256(kslice_make(NULL, 5), kslice_make(NULL, 0),
					kslice_make(NULL, 0), okm, 32),
		     K_E_INTERNAL);
	/* A refused call leaves the thread's context usable. */
	uint8_t a[44], b[44];
	CHECK_STATUS(ours(ikm, 32, ikm, 16, ikm, 8, a, 44), K_OK);
	CHECK(ref_hkdf(ikm, 32, ikm, 16, ikm, 8, b, 44));
	CHECK(memcmp(a, b, 44) == 0);
}

struct worker_result {
	int bad;
	int compared;
};

static void *worker(void *arg)
{
	struct worker_result *r = arg;
	r->bad = random_rounds(300, &r->compared);
	return NULL;
}

/* Each thread has its own context; concurrent use must not mix them up. */
static void test_threads(void)
{
	pthread_t th[4];
	struct worker_result res[4];
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, worker, &res[i]) == 0);
	for (int i = 0; i < 4; i++) {
		CHECK(pthread_join(th[i], NULL) == 0);
		CHECK_EQ_INT(res[i].bad, 0);
		CHECK_EQ_INT(res[i].compared, 300);
	}
}

int main(void)
{
	RUN(test_rfc5869);
	RUN(test_random_vs_openssl);
	RUN(test_sym_shape);
	RUN(test_lengths);
	RUN(test_bad_arguments);
	RUN(test_threads);
	return tl_summary();
}
