/*
 * commit.h — a commitment to key material (multi-Region keys with
 * imported material across deployments, docs/REGIONS.md).
 *
 * The deployment of a primary key whose material was imported sends, with
 * ReplicateKey, a commitment to that material in place of the material:
 *
 *   HMAC-SHA-256(key = the material,
 *                data = "kinko/mrk-material-commitment/v1|" MATERIAL_ARN)
 *
 * The peer's ImportKeyMaterial accepts only material whose commitment is
 * the same (compared in constant time). The commitment reveals nothing of
 * the material to whoever reads the key's document or the wire, and binds
 * the key's material ARN, so it does not carry over to another key.
 */
#ifndef KINKO_CRYPTO_COMMIT_H
#define KINKO_CRYPTO_COMMIT_H

#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

#define CRYPTO_COMMIT_LEN 32
/* The label before the material ARN in the HMAC's data. */
#define CRYPTO_COMMIT_LABEL "kinko/mrk-material-commitment/v1|"

/* The commitment to material m (at least 1 byte) for material_arn. K_E_INTERNAL on failure. */
K_MUST_CHECK k_status crypto_material_commitment(const struct ksecret *m, const char *material_arn,
						 uint8_t out[CRYPTO_COMMIT_LEN]);

/*
 * K_OK if `want` is the commitment to m for material_arn (constant-time
 * comparison), K_E_INCORRECT_KEY_MATERIAL if not (a `want` of another
 * length included), K_E_INTERNAL on failure.
 */
K_MUST_CHECK k_status crypto_material_commitment_check(const struct ksecret *m,
						       const char *material_arn,
						       struct kslice want);

#endif
