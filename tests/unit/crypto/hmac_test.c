/*
 * hmac_test.c — crypto/hmac.c: SHA-256 and HMAC-SHA256 on the per-thread
 * reused contexts, the SigV4 signing key, and the ksecret range helpers.
 *
 * Known answers: AWS's documented signing-key example ("Examples of how
 * to derive a signing key", secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
 * 20120215, us-east-1, iam), RFC 4231 test case 2 for HMAC-SHA256, and
 * FIPS 180-2's SHA-256 of the empty string and of "abc". The reused
 * contexts are checked against OpenSSL's one-shot functions on many
 * inputs, in orders that would show state left over from a previous call.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/buf.h"
#include "core/secret.h"
#include "crypto/crypto.h"
#include "crypto/hmac.h"
#include "testlib.h"

#include "core/banned.h"

static const char aws_secret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
static const char aws_key_hex[] =
	"f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d";

static void to_hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static struct ksecret *secret_str(const char *s)
{
	return ksecret_from((const uint8_t *)s, strlen(s));
}

/* OpenSSL's one-shot HMAC-SHA256: the reference. 1 on success. */
static int ref_hmac(const uint8_t *key, size_t keylen, const uint8_t *data, size_t n,
		    uint8_t out[32])
{
	size_t outl = 0;
	return EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen, data, n, out, 32,
			 &outl) != NULL &&
	       outl == 32;
}

static void test_sigv4_kat(void)
{
	char hex[65];
	struct ksecret *secret = secret_str(aws_secret);
	struct ksecret *out = ksecret_new(32);
	CHECK(secret != NULL && out != NULL);
	if (secret == NULL || out == NULL)
		goto done;
	CHECK_STATUS(crypto_sigv4_signing_key(secret, "20120215", "us-east-1", "iam", out, 0),
		     K_OK);
	to_hex(ksecret_cbytes(out), 32, hex);
	CHECK_STR(hex, aws_key_hex);
	/* Again on the same (scrubbed) context: the same key. */
	CHECK_STATUS(crypto_sigv4_signing_key(secret, "20120215", "us-east-1", "iam", out, 0),
		     K_OK);
	to_hex(ksecret_cbytes(out), 32, hex);
	CHECK_STR(hex, aws_key_hex);
	/* Another scope gives another key. */
	CHECK_STATUS(crypto_sigv4_signing_key(secret, "20120216", "us-east-1", "iam", out, 0),
		     K_OK);
	to_hex(ksecret_cbytes(out), 32, hex);
	CHECK(strcmp(hex, aws_key_hex) != 0);
done:
	ksecret_free(secret);
	ksecret_free(out);
}

/*
 * Derived into the middle of a larger secret: only that range is written,
 * and crypto_hmac_sha256_at keyed from it agrees with OpenSSL's HMAC keyed
 * with the known key.
 */
static void test_sigv4_at_offset(void)
{
	uint8_t zero[32], key[32], mac[32], want[32];
	char hex[65];
	const char *msg = "AWS4-HMAC-SHA256\n20120215T000000Z\nscope\nhash";
	struct ksecret *secret = secret_str(aws_secret);
	struct ksecret *table = ksecret_new(96);
	memset(zero, 0, sizeof zero);
	CHECK(secret != NULL && table != NULL);
	if (secret == NULL || table == NULL)
		goto done;
	CHECK_STATUS(crypto_sigv4_signing_key(secret, "20120215", "us-east-1", "iam", table, 32),
		     K_OK);
	const uint8_t *b = ksecret_cbytes(table);
	CHECK(memcmp(b, zero, 32) == 0);
	CHECK(memcmp(b + 64, zero, 32) == 0);
	to_hex(b + 32, 32, hex);
	CHECK_STR(hex, aws_key_hex);

	memcpy(key, b + 32, 32);
	CHECK(ref_hmac(key, sizeof key, (const uint8_t *)msg, strlen(msg), want));
	CHECK_STATUS(crypto_hmac_sha256_at(table, 32, 32, kslice_cstr(msg), mac), K_OK);
	CHECK(memcmp(mac, want, 32) == 0);
	/* An empty message is a valid one. */
	CHECK(ref_hmac(key, sizeof key, (const uint8_t *)"", 0, want));
	CHECK_STATUS(crypto_hmac_sha256_at(table, 32, 32, kslice_make(NULL, 0), mac), K_OK);
	CHECK(memcmp(mac, want, 32) == 0);

	/* Out of range: refused, and nothing outside the range is written. */
	CHECK_STATUS(crypto_sigv4_signing_key(secret, "20120215", "us-east-1", "iam", table, 65),
		     K_E_INTERNAL);
	CHECK(memcmp(ksecret_cbytes(table) + 64, zero, 32) == 0);
	CHECK_STATUS(crypto_hmac_sha256_at(table, 80, 32, kslice_cstr(msg), mac), K_E_INTERNAL);
	CHECK_STATUS(crypto_hmac_sha256_at(table, 0, 0, kslice_cstr(msg), mac), K_E_INTERNAL);
	CHECK_STATUS(crypto_hmac_sha256_at(table, SIZE_MAX, 2, kslice_cstr(msg), mac),
		     K_E_INTERNAL);
	CHECK_STATUS(crypto_hmac_sha256_at(NULL, 0, 32, kslice_cstr(msg), mac), K_E_INTERNAL);
done:
	ksecret_free(secret);
	ksecret_free(table);
}

static void test_sigv4_bad_arguments(void)
{
	struct ksecret *empty = ksecret_new(0);
	struct ksecret *secret = secret_str(aws_secret);
	struct ksecret *out = ksecret_new(32);
	CHECK(secret != NULL && out != NULL);
	if (secret == NULL || out == NULL)
		goto done;
	if (empty != NULL)
		CHECK_STATUS(
			crypto_sigv4_signing_key(empty, "20120215", "us-east-1", "iam", out, 0),
			K_E_INTERNAL);
	CHECK_STATUS(crypto_sigv4_signing_key(NULL, "20120215", "us-east-1", "iam", out, 0),
		     K_E_INTERNAL);
	CHECK_STATUS(crypto_sigv4_signing_key(secret, NULL, "us-east-1", "iam", out, 0),
		     K_E_INTERNAL);
	CHECK_STATUS(crypto_sigv4_signing_key(secret, "20120215", "us-east-1", "iam", NULL, 0),
		     K_E_INTERNAL);
done:
	ksecret_free(empty);
	ksecret_free(secret);
	ksecret_free(out);
}

/* RFC 4231 test case 2: key "Jefe", "what do ya want for nothing?". */
static void test_hmac_rfc4231(void)
{
	uint8_t mac[32];
	char hex[65];
	struct ksecret *key = secret_str("Jefe");
	CHECK(key != NULL);
	if (key == NULL)
		return;
	CHECK_STATUS(
		crypto_hmac_sha256_at(key, 0, 4, kslice_cstr("what do ya want for nothing?"), mac),
		K_OK);
	to_hex(mac, 32, hex);
	CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	ksecret_free(key);
}

static void test_sha256(void)
{
	uint8_t got[32], want[32], buf[300];
	char hex[65];

	CHECK_STATUS(crypto_thread_sha256(NULL, 0, got), K_OK);
	to_hex(got, 32, hex);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_STATUS(crypto_thread_sha256("abc", 3, got), K_OK);
	to_hex(got, 32, hex);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CHECK_STATUS(crypto_thread_sha256(NULL, 1, got), K_E_INTERNAL);

	CHECK(RAND_bytes(buf, sizeof buf) == 1);
	for (size_t n = 0; n <= sizeof buf; n += 7) {
		CHECK_STATUS(crypto_thread_sha256(buf, n, got), K_OK);
		CHECK_STATUS(crypto_sha256(buf, n, want), K_OK);
		CHECK(memcmp(got, want, 32) == 0);
	}
}

/* HMACs with random keys and messages, interleaved with hashes. */
static void test_hmac_random(void)
{
	uint8_t key[100], data[200], got[32], want[32], h[32];
	for (int round = 0; round < 200; round++) {
		size_t kl = 1 + (size_t)round % sizeof key;
		size_t dl = (size_t)(round * 13) % sizeof data;
		CHECK(RAND_bytes(key, (int)kl) == 1 && RAND_bytes(data, (int)dl) == 1);
		struct ksecret *k = ksecret_from(key, kl);
		CHECK(k != NULL);
		if (k == NULL)
			return;
		CHECK(ref_hmac(key, kl, data, dl, want));
		CHECK_STATUS(crypto_hmac_sha256_at(k, 0, kl, kslice_make(data, dl), got), K_OK);
		CHECK(memcmp(got, want, 32) == 0);
		CHECK_STATUS(crypto_thread_sha256(data, dl, h), K_OK);
		ksecret_free(k);
	}
}

static void test_fingerprint(void)
{
	uint8_t got[CRYPTO_FINGERPRINT_LEN], want[32];
	struct ksecret *s = secret_str(aws_secret);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK_STATUS(crypto_secret_fingerprint(s, got), K_OK);
	CHECK_STATUS(crypto_sha256(aws_secret, strlen(aws_secret), want), K_OK);
	CHECK(memcmp(got, want, 32) == 0);
	CHECK_STATUS(crypto_secret_fingerprint(NULL, got), K_E_INTERNAL);
	ksecret_free(s);
}

static void test_ranges(void)
{
	const uint8_t abc[3] = {'a', 'b', 'c'};
	uint8_t zero[8];
	struct ksecret *s = ksecret_new(8);
	memset(zero, 0, sizeof zero);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK_STATUS(crypto_secret_write_at(s, 5, abc, 3), K_OK);
	CHECK(crypto_secret_eq_at(s, 5, abc, 3));
	CHECK(!crypto_secret_eq_at(s, 4, abc, 3));
	CHECK(crypto_secret_eq_at(s, 0, zero, 5));
	CHECK(!crypto_secret_eq_at(s, 6, abc, 3)); /* past the end */
	CHECK(!crypto_secret_eq_at(s, SIZE_MAX, abc, 3));
	CHECK(!crypto_secret_eq_at(NULL, 0, abc, 3));
	CHECK(crypto_secret_eq_at(s, 8, abc, 0));
	CHECK_STATUS(crypto_secret_write_at(s, 6, abc, 3), K_E_INTERNAL);
	CHECK_STATUS(crypto_secret_write_at(s, SIZE_MAX, abc, 3), K_E_INTERNAL);
	CHECK_STATUS(crypto_secret_write_at(NULL, 0, abc, 3), K_E_INTERNAL);
	crypto_secret_wipe_at(s, 6, 3); /* out of range: nothing happens */
	CHECK(crypto_secret_eq_at(s, 5, abc, 3));
	crypto_secret_wipe_at(s, 5, 3);
	CHECK(crypto_secret_eq_at(s, 0, zero, 8));
	crypto_secret_wipe_at(NULL, 0, 3);
	ksecret_free(s);
}

/* Released contexts are remade on next use. */
static void test_release(void)
{
	uint8_t got[32];
	char hex[65];
	crypto_hmac_thread_release();
	crypto_hmac_thread_release();
	CHECK_STATUS(crypto_thread_sha256("abc", 3, got), K_OK);
	to_hex(got, 32, hex);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	crypto_hmac_thread_release();
	test_sigv4_kat();
}

static void *thread_main(void *arg)
{
	int *ok = arg;
	char hex[65];
	struct ksecret *secret = secret_str(aws_secret);
	struct ksecret *out = ksecret_new(32);
	*ok = secret != NULL && out != NULL;
	for (int i = 0; i < 200 && *ok; i++) {
		*ok = k_ok(
			crypto_sigv4_signing_key(secret, "20120215", "us-east-1", "iam", out, 0));
		to_hex(ksecret_cbytes(out), 32, hex);
		*ok = *ok && strcmp(hex, aws_key_hex) == 0;
	}
	ksecret_free(secret);
	ksecret_free(out);
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[4];
	int ok[4] = {0};
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, thread_main, &ok[i]) == 0);
	for (int i = 0; i < 4; i++) {
		CHECK(pthread_join(th[i], NULL) == 0);
		CHECK(ok[i]);
	}
}

int main(void)
{
	RUN(test_sigv4_kat);
	RUN(test_sigv4_at_offset);
	RUN(test_sigv4_bad_arguments);
	RUN(test_hmac_rfc4231);
	RUN(test_sha256);
	RUN(test_hmac_random);
	RUN(test_fingerprint);
	RUN(test_ranges);
	RUN(test_release);
	RUN(test_threads);
	crypto_hmac_thread_release(); /* the main thread's contexts */
	return tl_summary();
}
