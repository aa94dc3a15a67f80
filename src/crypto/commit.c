/*
 * commit.c — the commitment to key material (contract in commit.h),
 * HMAC-SHA-256 on crypto/'s per-thread context.
 */
#include "crypto/commit.h"

#include <string.h>

#include "crypto/crypto.h"
#include "crypto/hmac.h"
#include "core/banned.h"

/* The HMAC's data: the label and an ARN (at most 2048 characters, KeyId's limit). */
#define COMMIT_DATA_MAX (sizeof CRYPTO_COMMIT_LABEL + 2048)

k_status crypto_material_commitment(const struct ksecret *m, const char *material_arn,
				    uint8_t out[CRYPTO_COMMIT_LEN])
{
	ENSURE(m != NULL && ksecret_len(m) > 0 && material_arn != NULL, K_E_INTERNAL);
	struct kbuf data;
	kbuf_init(&data, COMMIT_DATA_MAX);
	k_status rc = kbuf_appendf(&data, "%s%s", CRYPTO_COMMIT_LABEL, material_arn);
	if (k_ok(rc))
		rc = crypto_hmac_sha256_at(m, 0, ksecret_len(m), kbuf_slice(&data), out);
	kbuf_release(&data);
	return k_ok(rc) ? K_OK : K_E_INTERNAL;
}

k_status crypto_material_commitment_check(const struct ksecret *m, const char *material_arn,
					  struct kslice want)
{
	uint8_t got[CRYPTO_COMMIT_LEN];
	GUARD(crypto_material_commitment(m, material_arn, got));
	bool same = want.len == CRYPTO_COMMIT_LEN && crypto_memeq(got, want.ptr, CRYPTO_COMMIT_LEN);
	memset(got, 0, sizeof got);
	return same ? K_OK : K_E_INCORRECT_KEY_MATERIAL;
}
