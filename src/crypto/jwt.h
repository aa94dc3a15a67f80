/*
 * jwt.h — JSON Web Tokens signed with JWS (RFC 7515, 7519), checked
 * against a JSON Web Key Set (RFC 7517), for OpenID Connect identity
 * tokens (sts:AssumeRoleWithWebIdentity).
 *
 * Only the compact form (header.payload.signature, base64url) is read.
 * Accepted algorithms: RS256, RS384, RS512 (RSASSA-PKCS1-v1_5) and ES256,
 * ES384 (ECDSA, signature as the raw r||s of RFC 7518 section 3.4).
 * "alg": "none", the HMAC algorithms and anything else are refused, and a
 * key is used only with the algorithm of its own type and curve (an RSA
 * key never checks an ES256 token, a JWK's own "alg", when present, must
 * equal the token's): no algorithm confusion.
 */
#ifndef KINKO_CRYPTO_JWT_H
#define KINKO_CRYPTO_JWT_H

#include <jansson.h>
#include "core/result.h"

/* The longest token accepted (STS's WebIdentityToken is at most 20000 characters). */
#define JWT_MAX_TOKEN 20000u

/*
 * Splits and decodes a token without checking its signature: *header and
 * *claims receive new JSON objects the caller owns (json_decref).
 * K_E_VALIDATION when the token is not three base64url parts of which the
 * first two are JSON objects.
 */
K_MUST_CHECK k_status jwt_decode(const char *token, json_t **header, json_t **claims);

/*
 * Checks the token's signature with the key of `jwks` ({"keys": [...]})
 * that its header's "kid" names (without a kid, every key of the right
 * type is tried). K_OK when a key verifies it; K_E_UNSUPPORTED for an
 * algorithm not listed above; K_E_NOT_FOUND when no key fits;
 * K_E_KMS_INVALID_SIGNATURE when the signature does not verify;
 * K_E_VALIDATION for a malformed token or key.
 */
K_MUST_CHECK k_status jwt_verify(const char *token, const json_t *jwks);

#endif
