/*
 * jwt.c — JWS signature checks of JSON Web Tokens against a JWKS
 * (jwt.h), with OpenSSL 3's EVP interface.
 */
#include "crypto/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <string.h>

#include "core/buf.h"
#include "core/banned.h"

/* One decoded part of a token: the header, the claims or the signature. */
#define JWT_PART_MAX JWT_MAX_TOKEN
/* An RSA modulus of 8192 bits, the largest key accepted, with room for its base64. */
#define JWT_KEY_PART_MAX 2048u
/* A DER ECDSA signature of P-384: two 48-byte integers and their framing. */
#define JWT_DER_SIG_MAX 128u

/* One algorithm: its JOSE name, digest, key type and (EC) curve and coordinate size. */
struct jwt_alg {
	const char *name;
	const char *digest;
	const char *kty;
	const char *crv;   /* EC: the JWK curve name */
	const char *group; /* EC: OpenSSL's group name */
	size_t coord;	   /* EC: bytes of r, s, x and y */
};

static const struct jwt_alg algs[] = {
	{"RS256", "SHA256", "RSA", NULL, NULL, 0},
	{"RS384", "SHA384", "RSA", NULL, NULL, 0},
	{"RS512", "SHA512", "RSA", NULL, NULL, 0},
	{"ES256", "SHA256", "EC", "P-256", "prime256v1", 32},
	{"ES384", "SHA384", "EC", "P-384", "secp384r1", 48},
};

static const struct jwt_alg *find_alg(const char *name)
{
	for (size_t i = 0; name != NULL && i < sizeof algs / sizeof algs[0]; i++) {
		if (strcmp(algs[i].name, name) == 0)
			return &algs[i];
	}
	return NULL;
}

/* The "=" padding base64url leaves out: at most two, one more as margin. */
#define JWT_B64_PAD 3u

/* base64url without padding (RFC 7515 section 2) into `out`. */
static K_MUST_CHECK k_status b64url_decode(struct kslice in, struct kbuf *out)
{
	ENSURE(in.len % 4 != 1, K_E_VALIDATION);
	struct kbuf std;
	kbuf_init(&std, in.len + JWT_B64_PAD);
	k_status rc = K_OK;
	for (size_t i = 0; i < in.len && k_ok(rc); i++) {
		char ch = (char)in.ptr[i];
		if (ch == '-')
			ch = '+';
		else if (ch == '_')
			ch = '/';
		else if (ch == '+' || ch == '/' || ch == '=')
			rc = K_E_VALIDATION;
		if (k_ok(rc))
			rc = kbuf_append(&std, &ch, 1);
	}
	while (k_ok(rc) && std.len % 4 != 0)
		rc = kbuf_append(&std, "=", 1);
	if (k_ok(rc))
		rc = kbuf_decode_base64(out, kbuf_slice(&std));
	kbuf_release(&std);
	return rc;
}

static K_MUST_CHECK k_status decode_object(struct kslice part, json_t **out)
{
	struct kbuf raw;
	kbuf_init(&raw, JWT_PART_MAX);
	k_status rc = b64url_decode(part, &raw);
	*out = NULL;
	if (k_ok(rc))
		*out = json_loadb((const char *)raw.ptr, raw.len, JSON_REJECT_DUPLICATES, NULL);
	kbuf_release(&raw);
	GUARD(rc);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return K_E_VALIDATION;
	}
	return K_OK;
}

/* The three parts of a compact token; K_E_VALIDATION unless there are exactly three. */
static K_MUST_CHECK k_status split(const char *token, struct kslice parts[3])
{
	size_t n = strlen(token);
	ENSURE(n > 0 && n <= JWT_MAX_TOKEN, K_E_VALIDATION);
	const char *d1 = memchr(token, '.', n);
	ENSURE(d1 != NULL, K_E_VALIDATION);
	const char *d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token));
	ENSURE(d2 != NULL && memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)) == NULL,
	       K_E_VALIDATION);
	parts[0] = kslice_make(token, (size_t)(d1 - token));
	parts[1] = kslice_make(d1 + 1, (size_t)(d2 - d1 - 1));
	parts[2] = kslice_make(d2 + 1, n - (size_t)(d2 + 1 - token));
	return K_OK;
}

k_status jwt_decode(const char *token, json_t **header, json_t **claims)
{
	*header = NULL;
	*claims = NULL;
	struct kslice parts[3];
	GUARD(split(token, parts));
	GUARD(decode_object(parts[0], header));
	k_status rc = decode_object(parts[1], claims);
	if (k_failed(rc)) {
		json_decref(*header);
		*header = NULL;
	}
	return rc;
}

/* A base64url member of a JWK, decoded into `out`. */
static K_MUST_CHECK k_status jwk_bytes(const json_t *jwk, const char *member, struct kbuf *out)
{
	const json_t *v = json_object_get(jwk, member);
	ENSURE(json_is_string(v), K_E_VALIDATION);
	return b64url_decode(kslice_make(json_string_value(v), json_string_length(v)), out);
}

static K_MUST_CHECK k_status pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **out)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	k_status rc = K_E_VALIDATION;
	if (params != NULL && ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1)
		rc = K_OK;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return rc;
}

/* An RSA public key from a JWK's "n" and "e". */
static K_MUST_CHECK k_status rsa_key(const json_t *jwk, EVP_PKEY **out)
{
	struct kbuf n, e;
	kbuf_init(&n, JWT_KEY_PART_MAX);
	kbuf_init(&e, JWT_KEY_PART_MAX);
	BIGNUM *bn = NULL, *be = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	k_status rc = jwk_bytes(jwk, "n", &n);
	GUARD_GOTO(rc);
	GUARD_GOTO(jwk_bytes(jwk, "e", &e));
	/* RFC 7518 section 3.3: "A key of size 2048 bits or larger MUST be used". */
	ENSURE_GOTO(n.len >= 256 && e.len > 0, K_E_VALIDATION);
	bn = BN_bin2bn(n.ptr, (int)n.len, NULL);
	be = BN_bin2bn(e.ptr, (int)e.len, NULL);
	bld = OSSL_PARAM_BLD_new();
	ENSURE_GOTO(bn != NULL && be != NULL && bld != NULL, K_E_INTERNAL);
	ENSURE_GOTO(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
			    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1,
		    K_E_INTERNAL);
	rc = pkey_from_params("RSA", bld, out);
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	kbuf_release(&n);
	kbuf_release(&e);
	return rc;
}

/* An EC public key from a JWK's "x" and "y" on the algorithm's curve. */
static K_MUST_CHECK k_status ec_key(const json_t *jwk, const struct jwt_alg *alg, EVP_PKEY **out)
{
	struct kbuf x, y, pub;
	kbuf_init(&x, JWT_KEY_PART_MAX);
	kbuf_init(&y, JWT_KEY_PART_MAX);
	kbuf_init(&pub, JWT_KEY_PART_MAX);
	OSSL_PARAM_BLD *bld = NULL;
	k_status rc = jwk_bytes(jwk, "x", &x);
	GUARD_GOTO(rc);
	GUARD_GOTO(jwk_bytes(jwk, "y", &y));
	ENSURE_GOTO(x.len == alg->coord && y.len == alg->coord, K_E_VALIDATION);
	static const uint8_t uncompressed = 0x04;
	GUARD_GOTO(kbuf_append(&pub, &uncompressed, 1));
	GUARD_GOTO(kbuf_append(&pub, x.ptr, x.len));
	GUARD_GOTO(kbuf_append(&pub, y.ptr, y.len));
	bld = OSSL_PARAM_BLD_new();
	ENSURE_GOTO(bld != NULL, K_E_INTERNAL);
	ENSURE_GOTO(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, alg->group,
						    0) == 1 &&
			    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub.ptr,
							     pub.len) == 1,
		    K_E_INTERNAL);
	rc = pkey_from_params("EC", bld, out);
out:
	OSSL_PARAM_BLD_free(bld);
	kbuf_release(&x);
	kbuf_release(&y);
	kbuf_release(&pub);
	return rc;
}

/*
 * Whether a JWK may check a token of this algorithm: its "kty" (and for
 * EC its "crv") must be the algorithm's, its "use", when given, "sig",
 * its "alg", when given, the token's, and its "kid" the token's when the
 * token names one.
 */
static bool jwk_fits(const json_t *jwk, const struct jwt_alg *alg, const char *kid)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *use = json_string_value(json_object_get(jwk, "use"));
	const json_t *ja = json_object_get(jwk, "alg");
	const char *jkid = json_string_value(json_object_get(jwk, "kid"));
	if (kty == NULL || strcmp(kty, alg->kty) != 0)
		return false;
	if (alg->crv != NULL) {
		const char *crv = json_string_value(json_object_get(jwk, "crv"));
		if (crv == NULL || strcmp(crv, alg->crv) != 0)
			return false;
	}
	if (use != NULL && strcmp(use, "sig") != 0)
		return false;
	if (ja != NULL && (!json_is_string(ja) || strcmp(json_string_value(ja), alg->name) != 0))
		return false;
	return kid == NULL || (jkid != NULL && strcmp(kid, jkid) == 0);
}

/* ECDSA's raw r||s (RFC 7518 section 3.4) as the DER Ecdsa-Sig-Value OpenSSL checks. */
static K_MUST_CHECK k_status ecdsa_der(const struct kbuf *raw, size_t coord, struct kbuf *der)
{
	ENSURE(raw->len == 2 * coord, K_E_KMS_INVALID_SIGNATURE);
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw->ptr, (int)coord, NULL);
	BIGNUM *s = BN_bin2bn(raw->ptr + coord, (int)coord, NULL);
	k_status rc = K_E_INTERNAL;
	if (sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s) == 1) {
		r = s = NULL; /* the signature owns them */
		unsigned char *p = NULL;
		int n = i2d_ECDSA_SIG(sig, &p);
		if (n > 0)
			rc = kbuf_append(der, p, (size_t)n);
		OPENSSL_free(p);
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return rc;
}

/* The signature over "header.payload" checked with one key. */
static K_MUST_CHECK k_status verify_with(EVP_PKEY *key, const struct jwt_alg *alg,
					 struct kslice signed_part, const struct kbuf *sig)
{
	struct kbuf der;
	kbuf_init(&der, JWT_DER_SIG_MAX);
	const struct kbuf *check = sig;
	if (alg->crv != NULL) {
		k_status rc = ecdsa_der(sig, alg->coord, &der);
		if (k_failed(rc)) {
			kbuf_release(&der);
			return rc;
		}
		check = &der;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	k_status rc = K_E_KMS_INVALID_SIGNATURE;
	if (md != NULL &&
	    EVP_DigestVerifyInit_ex(md, NULL, alg->digest, NULL, NULL, key, NULL) == 1 &&
	    EVP_DigestVerify(md, check->ptr, check->len, signed_part.ptr, signed_part.len) == 1)
		rc = K_OK;
	EVP_MD_CTX_free(md);
	kbuf_release(&der);
	return rc;
}

/* Tries the keys of the set that fit; the first that verifies decides. */
static K_MUST_CHECK k_status verify_keys(const json_t *keys, const struct jwt_alg *alg,
					 const char *kid, struct kslice signed_part,
					 const struct kbuf *sig)
{
	k_status rc = K_E_NOT_FOUND;
	size_t i;
	const json_t *jwk;
	json_array_foreach(keys, i, jwk)
	{
		if (!jwk_fits(jwk, alg, kid))
			continue;
		EVP_PKEY *key = NULL;
		k_status kr = alg->crv != NULL ? ec_key(jwk, alg, &key) : rsa_key(jwk, &key);
		if (k_ok(kr))
			kr = verify_with(key, alg, signed_part, sig);
		EVP_PKEY_free(key);
		if (k_ok(kr))
			return K_OK;
		rc = kr;
	}
	return rc;
}

k_status jwt_verify(const char *token, const json_t *jwks)
{
	struct kslice parts[3];
	GUARD(split(token, parts));
	json_t *header = NULL;
	GUARD(decode_object(parts[0], &header));
	const json_t *jalg = json_object_get(header, "alg");
	const struct jwt_alg *alg = find_alg(json_string_value(jalg));
	const json_t *jkid = json_object_get(header, "kid");
	const json_t *keys = json_object_get(jwks, "keys");
	struct kbuf sig;
	kbuf_init(&sig, JWT_PART_MAX);
	k_status rc = K_E_UNSUPPORTED;
	ENSURE_GOTO(alg != NULL, K_E_UNSUPPORTED);
	ENSURE_GOTO(jkid == NULL || json_is_string(jkid), K_E_VALIDATION);
	ENSURE_GOTO(json_is_array(keys), K_E_NOT_FOUND);
	GUARD_GOTO(b64url_decode(parts[2], &sig));
	struct kslice signed_part = kslice_make(parts[0].ptr, parts[0].len + 1 + parts[1].len);
	rc = verify_keys(keys, alg, json_string_value(jkid), signed_part, &sig);
out:
	kbuf_release(&sig);
	json_decref(header);
	return rc;
}
