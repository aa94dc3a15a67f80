/*
 * commit_test.c — the commitment to key material (crypto/commit.c): a
 * known answer (HMAC-SHA-256 computed outside kinko), and the check's
 * refusal of other material, another material ARN and another length.
 */
#include <string.h>

#include "crypto/commit.h"
#include "testlib.h"

#include "core/banned.h"

#define ARN "arn:aws:kms::111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"

/* HMAC-SHA-256, key 0x01..0x20, data CRYPTO_COMMIT_LABEL ARN (Python's hmac module). */
static const uint8_t known[CRYPTO_COMMIT_LEN] = {0x07, 0xf1, 0x3c, 0xbf, 0x9a, 0x5b, 0x6c, 0x51,
						 0x7c, 0x34, 0x1d, 0x7a, 0xcf, 0x53, 0xa2, 0x87,
						 0x54, 0xd1, 0xd4, 0xef, 0x01, 0x23, 0x96, 0x3f,
						 0x0d, 0x75, 0x6d, 0x5a, 0x03, 0xe3, 0x00, 0xa7};

static struct ksecret *material(uint8_t first)
{
	uint8_t b[32];
	for (size_t i = 0; i < sizeof b; i++)
		b[i] = (uint8_t)(first + i);
	return ksecret_from(b, sizeof b);
}

static void test_known_answer(void)
{
	struct ksecret *m = material(1);
	uint8_t got[CRYPTO_COMMIT_LEN];
	CHECK_STATUS(crypto_material_commitment(m, ARN, got), K_OK);
	CHECK(memcmp(got, known, sizeof known) == 0);
	/* The same again: a commitment is a function of material and ARN alone. */
	uint8_t again[CRYPTO_COMMIT_LEN];
	CHECK_STATUS(crypto_material_commitment(m, ARN, again), K_OK);
	CHECK(memcmp(got, again, sizeof got) == 0);
	ksecret_free(m);
}

static void test_check(void)
{
	struct ksecret *m = material(1), *other = material(2);
	struct kslice want = {known, sizeof known};
	CHECK_STATUS(crypto_material_commitment_check(m, ARN, want), K_OK);
	CHECK_STATUS(crypto_material_commitment_check(other, ARN, want),
		     K_E_INCORRECT_KEY_MATERIAL);
	CHECK_STATUS(crypto_material_commitment_check(
			     m,
			     "arn:aws:kms::111122223333:key/mrk-00000000000000000000000000000000",
			     want),
		     K_E_INCORRECT_KEY_MATERIAL);
	struct kslice shorter = {known, sizeof known - 1};
	CHECK_STATUS(crypto_material_commitment_check(m, ARN, shorter), K_E_INCORRECT_KEY_MATERIAL);
	/* Every bit of the commitment matters. */
	uint8_t flipped[CRYPTO_COMMIT_LEN];
	size_t refused = 0;
	for (size_t i = 0; i < sizeof known; i++) {
		memcpy(flipped, known, sizeof known);
		flipped[i] ^= 0x80;
		struct kslice f = {flipped, sizeof flipped};
		if (k_is(crypto_material_commitment_check(m, ARN, f), K_E_INCORRECT_KEY_MATERIAL))
			refused++;
	}
	CHECK(refused == sizeof known);
	/* No material is no commitment. */
	uint8_t out[CRYPTO_COMMIT_LEN];
	CHECK_STATUS(crypto_material_commitment(NULL, ARN, out), K_E_INTERNAL);
	ksecret_free(m);
	ksecret_free(other);
}

int main(void)
{
	RUN(test_known_answer);
	RUN(test_check);
	return tl_summary();
}
