/*
 * cdiv_compare_test.c — a proxy's ciphertextDataIntegrityValue is
 * compared with the one kinko computes in constant time, through
 * crypto_memeq (crypto/crypto.h). This test is linked with
 * --wrap=crypto_memeq (Makefile), so each call from the library lands
 * in __wrap_crypto_memeq below, which counts it and compares for real.
 */
#include <string.h>

#include "crypto/crypto.h"
#include "xks/client.h"
#include "testlib.h"
#include "core/banned.h"

int __real_crypto_memeq(const void *a, const void *b, size_t n);
int __wrap_crypto_memeq(const void *a, const void *b, size_t n);

static size_t memeq_calls, memeq_last_len;

int __wrap_crypto_memeq(const void *a, const void *b, size_t n)
{
	memeq_calls++;
	memeq_last_len = n;
	return __real_crypto_memeq(a, b, n);
}

/* The spec's Encrypt answer (Appendix C), with the CDIV given in `cdiv`. */
static k_status answer(const char *cdiv, const char *aad)
{
	char body[512];
	int n = snprintf(body, sizeof body,
			 "{\"authenticationTag\":\"vBxN2ncH1oEkR8WVXpmyYQ==\",\"ciphertext\":"
			 "\"ghxkK1txeDNn3q8Y\",\"ciphertextDataIntegrityValue\":\"%s\","
			 "\"ciphertextMetadata\":\"a2V5X3ZlcnNpb249MQ==\","
			 "\"initializationVector\":\"HMrlRw85cAJUd5Ax\"}",
			 cdiv);
	CHECK(n > 0 && (size_t)n < sizeof body);
	struct kslice a = kslice_cstr(aad);
	struct xks_ciphertext c;
	xks_ciphertext_init(&c);
	k_status rc = xks_answer_encrypt(kslice_make(body, (size_t)n), 12, &a, &c);
	xks_ciphertext_release(&c);
	return rc;
}

#define GOOD_CDIV "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="
/* The same 32 bytes with the last one changed (0xc7 -> 0xc6). */
#define LAST_BYTE_OFF "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsY="
/* The same 32 bytes with the first one changed (0xa8 -> 0xa9). */
#define FIRST_BYTE_OFF "qXA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="
#define AAD "project=nile,department=marketing"

/* The matching CDIV is accepted, and through one constant-time compare of its 32 bytes. */
static void test_match_compared_in_constant_time(void)
{
	memeq_calls = 0;
	memeq_last_len = 0;
	CHECK_STATUS(answer(GOOD_CDIV, AAD), K_OK);
	CHECK_EQ_INT(memeq_calls, 1);
	CHECK_EQ_INT(memeq_last_len, XKS_CDIV_LEN);
}

/* A CDIV off in its first or its last byte is refused, by the same compare. */
static void test_mismatch_compared_in_constant_time(void)
{
	memeq_calls = 0;
	CHECK_STATUS(answer(LAST_BYTE_OFF, AAD), K_E_XKS_PROXY_INVALID_RESPONSE);
	CHECK_EQ_INT(memeq_calls, 1);
	memeq_calls = 0;
	CHECK_STATUS(answer(FIRST_BYTE_OFF, AAD), K_E_XKS_PROXY_INVALID_RESPONSE);
	CHECK_EQ_INT(memeq_calls, 1);
}

/* A CDIV of the wrong length is refused before any compare. */
static void test_wrong_length_not_compared(void)
{
	memeq_calls = 0;
	CHECK_STATUS(answer("qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXg==", AAD),
		     K_E_XKS_PROXY_INVALID_RESPONSE);
	CHECK_EQ_INT(memeq_calls, 0);
}

int main(void)
{
	RUN(test_match_compared_in_constant_time);
	RUN(test_mismatch_compared_in_constant_time);
	RUN(test_wrong_length_not_compared);
	return tl_summary();
}
