/*
 * ops_asym.c — Sign, Verify, GetPublicKey, GenerateMac, VerifyMac,
 * DeriveSharedSecret, GenerateDataKeyPair(WithoutPlaintext), and the
 * RSAES-OAEP branch of Encrypt / Decrypt.
 *
 * The handlers check members, key, usage and algorithm; the key's store
 * (keystore/keyops.h) does the cryptography with material the handlers
 * never see. crypto/asym.h still answers the questions that need no key
 * (which algorithm fits which spec, digest lengths, the OAEP bound).
 */
#include <stdio.h>
#include <string.h>

#include "crypto/asym.h"
#include "crypto/crypto.h"
#include "keystore/keyops.h"
#include "kms/kms.h"
#include "kms/specs.h"
#include "core/banned.h"

bool kms_key_is_asymmetric(const struct kms_key *k)
{
	return k->spec != NULL &&
	       (strncmp(k->spec, "RSA_", 4) == 0 || strncmp(k->spec, "ECC_", 4) == 0);
}

/* DryRun; `in` NULL when the caller checks it itself (ReEncrypt's source). */
static K_MUST_CHECK k_status dry_run(struct api_ctx *c, json_t *in)
{
	bool present = false, dry = false;
	if (in == NULL)
		return K_OK;
	GUARD(api_bool(c, in, "DryRun", &present, &dry));
	return dry ? K_E_DRY_RUN : K_OK;
}

/* KMSInvalidStateException for a key without material. */
static K_MUST_CHECK k_status require_material(struct api_ctx *c, const struct kms_key *k)
{
	if (keystore_key_versions(k->handle) == 0)
		return api_fail(c, K_E_INVALID_STATE, "%s has no key material.", k->arn);
	return K_OK;
}

/*
 * Enabled, the usage the operation needs, and a key of an asymmetric spec
 * where the operation needs one. InvalidKeyUsageException otherwise, as
 * AWS: "The KeyUsage value of the KMS key is incompatible with the API
 * operation" (https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html#API_Sign_Errors).
 */
static K_MUST_CHECK k_status require_usage(struct api_ctx *c, const struct kms_key *k,
					   const char *usage)
{
	GUARD(kms_require_enabled(c, k));
	if (k->usage == NULL || strcmp(k->usage, usage) != 0)
		return api_fail(c, K_E_INVALID_KEY_USAGE,
				"%s key usage is %s which is not valid for %s.", k->arn,
				k->usage ? k->usage : "unknown", c->op->name);
	return K_OK;
}

static K_MUST_CHECK k_status incompatible(struct api_ctx *c, const struct kms_key *k,
					  const char *alg)
{
	return api_fail(c, K_E_INVALID_KEY_USAGE, "Algorithm %s is incompatible with key spec %s.",
			alg, k->spec ? k->spec : "unknown");
}

/* ---- Sign / Verify ---------------------------------------------------------- */

static const char *const sign_algs[] = {"RSASSA_PSS_SHA_256",
					"RSASSA_PSS_SHA_384",
					"RSASSA_PSS_SHA_512",
					"RSASSA_PKCS1_V1_5_SHA_256",
					"RSASSA_PKCS1_V1_5_SHA_384",
					"RSASSA_PKCS1_V1_5_SHA_512",
					"ECDSA_SHA_256",
					"ECDSA_SHA_384",
					"ECDSA_SHA_512",
					"SM2DSA",
					"ML_DSA_SHAKE_256",
					"ED25519_SHA_512",
					"ED25519_PH_SHA_512",
					NULL};
static const char *const message_types[] = {"RAW", "DIGEST", "EXTERNAL_MU", NULL};

struct sign_req {
	const char *key_id, *alg, *type;
	struct kbuf msg;
	bool is_digest;
	struct kms_key *k;
};

/*
 * The part Sign and Verify share: members, key, usage, algorithm, message
 * type. "When the value of MessageType is DIGEST, the length of the
 * Message value must match the length of hashed messages for the specified
 * signing algorithm" (https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html);
 * RAW messages are at most 4096 bytes (the member's limit).
 */
static K_MUST_CHECK k_status sign_prepare(struct api_ctx *c, json_t *in, struct sign_req *r)
{
	json_t *tokens;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &r->key_id));
	GUARD(api_blob(c, in, "Message", true, 1, 4096, &r->msg, NULL));
	GUARD(api_enum(c, in, "MessageType", false, message_types, &r->type));
	GUARD(api_enum(c, in, "SigningAlgorithm", true, sign_algs, &r->alg));
	GUARD(api_string_list(c, in, "GrantTokens", 10, 1, 8192, &tokens));
	r->is_digest = r->type != NULL && strcmp(r->type, "DIGEST") == 0;
	GUARD(kms_op_key(c, &r->k));
	GUARD(require_usage(c, r->k, "SIGN_VERIFY"));
	if (!kms_key_is_asymmetric(r->k) || !asym_sign_alg_fits(r->alg, r->k->spec))
		return incompatible(c, r->k, r->alg);
	if (r->type != NULL && strcmp(r->type, "EXTERNAL_MU") == 0)
		return api_fail(c, K_E_VALIDATION,
				"MessageType EXTERNAL_MU is only valid for ML-DSA keys.");
	if (r->is_digest) {
		size_t want = asym_sign_digest_len(r->alg);
		if (want == 0)
			return api_fail(c, K_E_VALIDATION,
					"Signing algorithm %s requires MessageType RAW.", r->alg);
		if (r->msg.len != want)
			return api_fail(c, K_E_VALIDATION,
					"Digest is invalid length for algorithm %s.", r->alg);
	}
	GUARD(require_material(c, r->k));
	return dry_run(c, in);
}

/* Sign (https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html). */
k_status kms_op_sign(struct api_ctx *c, json_t *in, json_t *out)
{
	struct sign_req r = {0};
	struct kbuf sig;
	kbuf_init(&r.msg, KMS_MAX_MESSAGE);
	kbuf_init(&sig, ASYM_MAX_SIG);
	k_status rc = K_OK;
	GUARD_GOTO(sign_prepare(c, in, &r));
	GUARD_GOTO(keystore_sign(r.k->handle, r.alg, r.is_digest, kbuf_slice(&r.msg), &sig));
	GUARD_GOTO(api_set_blob(out, "Signature", sig.ptr, sig.len));
	json_object_set_new(out, "KeyId", json_string(r.k->arn));
	json_object_set_new(out, "SigningAlgorithm", json_string(r.alg));
out:
	kms_key_unref(r.k);
	kbuf_release(&r.msg);
	kbuf_release(&sig);
	return rc;
}

/*
 * Verify (https://docs.aws.amazon.com/kms/latest/APIReference/API_Verify.html):
 * "If the signature is verified, the value of the SignatureValid field in
 * the response is True. If the signature verification fails, the Verify
 * operation fails with an KMSInvalidSignatureException exception."
 */
k_status kms_op_verify(struct api_ctx *c, json_t *in, json_t *out)
{
	struct sign_req r = {0};
	struct kbuf sig;
	kbuf_init(&r.msg, KMS_MAX_MESSAGE);
	kbuf_init(&sig, KMS_MAX_SIGNATURE);
	k_status rc = K_OK;
	bool valid = false;
	GUARD_GOTO(api_blob(c, in, "Signature", true, 1, 6144, &sig, NULL));
	GUARD_GOTO(sign_prepare(c, in, &r));
	GUARD_GOTO(keystore_verify(r.k->handle, r.alg, r.is_digest, kbuf_slice(&r.msg),
				   kbuf_slice(&sig), &valid));
	ENSURE_GOTO(valid, K_E_KMS_INVALID_SIGNATURE);
	json_object_set_new(out, "KeyId", json_string(r.k->arn));
	json_object_set_new(out, "SignatureValid", json_true());
	json_object_set_new(out, "SigningAlgorithm", json_string(r.alg));
out:
	kms_key_unref(r.k);
	kbuf_release(&r.msg);
	kbuf_release(&sig);
	return rc;
}

/* ---- GetPublicKey ----------------------------------------------------------- */

/*
 * GetPublicKey (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetPublicKey.html):
 * the DER-encoded X.509 SubjectPublicKeyInfo, with the key spec, usage and
 * algorithm lists. Symmetric and HMAC keys have no public key
 * (UnsupportedOperationException).
 */
k_status kms_op_get_public_key(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id;
	json_t *tokens;
	struct kms_key *k = NULL;
	struct kbuf der;
	kbuf_init(&der, ASYM_MAX_SPKI);
	k_status rc = K_OK;
	GUARD_GOTO(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD_GOTO(api_string_list(c, in, "GrantTokens", 10, 1, 8192, &tokens));
	GUARD_GOTO(kms_op_key(c, &k));
	if (!kms_key_is_asymmetric(k)) {
		rc = api_fail(c, K_E_UNSUPPORTED, "%s is not an asymmetric KMS key.", k->arn);
		goto out;
	}
	GUARD_GOTO(require_material(c, k));
	GUARD_GOTO(keystore_public_key(k->handle, &der));
	GUARD_GOTO(api_set_blob(out, "PublicKey", der.ptr, der.len));
	json_object_set_new(out, "KeyId", json_string(k->arn));
	json_object_set_new(out, "KeySpec", json_string(k->spec));
	json_object_set_new(out, "CustomerMasterKeySpec", json_string(k->spec));
	json_object_set_new(out, "KeyUsage", json_string(k->usage));
	static const char *const lists[] = {"EncryptionAlgorithms", "SigningAlgorithms",
					    "KeyAgreementAlgorithms", NULL};
	for (size_t i = 0; lists[i] != NULL; i++) {
		json_t *v = json_object_get(k->doc, lists[i]);
		if (json_is_array(v))
			json_object_set(out, lists[i], v);
	}
out:
	kms_key_unref(k);
	kbuf_release(&der);
	return rc;
}

/* ---- GenerateMac / VerifyMac ------------------------------------------------ */

static const char *const mac_algs[] = {"HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384",
				       "HMAC_SHA_512", NULL};

/* HMAC_256 keys take HMAC_SHA_256 only, and so on. */
static bool mac_alg_fits(const char *alg, const char *spec)
{
	return spec != NULL && strncmp(spec, "HMAC_", 5) == 0 && strcmp(alg + 9, spec + 5) == 0;
}

/* The part GenerateMac and VerifyMac share: members, key, usage, algorithm. */
static K_MUST_CHECK k_status mac_prepare(struct api_ctx *c, json_t *in, struct kbuf *msg,
					 struct kms_key **k_out, const char **alg_out)
{
	const char *key_id, *alg;
	json_t *tokens;
	GUARD(api_blob(c, in, "Message", true, 1, 4096, msg, NULL));
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD(api_enum(c, in, "MacAlgorithm", true, mac_algs, &alg));
	GUARD(api_string_list(c, in, "GrantTokens", 10, 1, 8192, &tokens));
	GUARD(kms_op_key(c, k_out));
	GUARD(require_usage(c, *k_out, "GENERATE_VERIFY_MAC"));
	if (!mac_alg_fits(alg, (*k_out)->spec))
		return incompatible(c, *k_out, alg);
	GUARD(require_material(c, *k_out));
	GUARD(dry_run(c, in));
	*alg_out = alg;
	return K_OK;
}

/* GenerateMac (https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateMac.html). */
k_status kms_op_generate_mac(struct api_ctx *c, json_t *in, json_t *out)
{
	struct kms_key *k = NULL;
	const char *alg = NULL;
	uint8_t mac[KEYSTORE_MAX_MAC];
	size_t mac_len = 0;
	struct kbuf msg;
	kbuf_init(&msg, KMS_MAX_MESSAGE);
	k_status rc = K_OK;
	GUARD_GOTO(mac_prepare(c, in, &msg, &k, &alg));
	GUARD_GOTO(keystore_mac(k->handle, alg, kbuf_slice(&msg), mac, &mac_len));
	GUARD_GOTO(api_set_blob(out, "Mac", mac, mac_len));
	json_object_set_new(out, "KeyId", json_string(k->arn));
	json_object_set_new(out, "MacAlgorithm", json_string(alg));
out:
	crypto_wipe(mac, sizeof mac);
	kms_key_unref(k);
	kbuf_release(&msg);
	return rc;
}

/*
 * VerifyMac (https://docs.aws.amazon.com/kms/latest/APIReference/API_VerifyMac.html):
 * "If the HMAC is verified, ... MacValid ... True. If the HMAC is not
 * verified, the VerifyMac operation fails with a KMSInvalidMacException".
 * The key store compares in constant time.
 */
k_status kms_op_verify_mac(struct api_ctx *c, json_t *in, json_t *out)
{
	struct kms_key *k = NULL;
	const char *alg = NULL;
	bool valid = false;
	struct kbuf given, msg;
	kbuf_init(&given, KMS_MAX_SIGNATURE);
	kbuf_init(&msg, KMS_MAX_MESSAGE);
	k_status rc = K_OK;
	GUARD_GOTO(api_blob(c, in, "Mac", true, 1, 6144, &given, NULL));
	GUARD_GOTO(mac_prepare(c, in, &msg, &k, &alg));
	GUARD_GOTO(
		keystore_mac_verify(k->handle, alg, kbuf_slice(&msg), kbuf_slice(&given), &valid));
	ENSURE_GOTO(valid, K_E_KMS_INVALID_MAC);
	json_object_set_new(out, "KeyId", json_string(k->arn));
	json_object_set_new(out, "MacValid", json_true());
	json_object_set_new(out, "MacAlgorithm", json_string(alg));
out:
	kms_key_unref(k);
	kbuf_release(&given);
	kbuf_release(&msg);
	return rc;
}

/* ---- DeriveSharedSecret ----------------------------------------------------- */

/*
 * DeriveSharedSecret (https://docs.aws.amazon.com/kms/latest/APIReference/API_DeriveSharedSecret.html):
 * ECDH between the KEY_AGREEMENT key's private key and the peer's
 * DER-encoded SubjectPublicKeyInfo; the raw shared secret is returned
 * (the caller runs its own KDF on it).
 */
k_status kms_op_derive_shared_secret(struct api_ctx *c, json_t *in, json_t *out)
{
	static const char *const algs[] = {"ECDH", NULL};
	const char *key_id, *alg;
	json_t *tokens;
	struct kbuf peer;
	kbuf_init(&peer, KMS_MAX_PUBLIC_KEY);
	struct kms_key *k = NULL;
	struct ksecret *secret = NULL;
	k_status rc = K_OK;
	GUARD_GOTO(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD_GOTO(api_enum(c, in, "KeyAgreementAlgorithm", true, algs, &alg));
	GUARD_GOTO(api_blob(c, in, "PublicKey", true, 1, 8192, &peer, NULL));
	GUARD_GOTO(api_string_list(c, in, "GrantTokens", 10, 1, 8192, &tokens));
	if (json_object_get(in, "Recipient") != NULL) {
		rc = api_fail(
			c, K_E_UNSUPPORTED,
			"Recipient (Nitro Enclaves attestation) is not supported by this server.");
		goto out;
	}
	GUARD_GOTO(kms_op_key(c, &k));
	GUARD_GOTO(require_usage(c, k, "KEY_AGREEMENT"));
	GUARD_GOTO(require_material(c, k));
	GUARD_GOTO(dry_run(c, in));
	rc = keystore_derive_shared_secret(k->handle, kbuf_slice(&peer), &secret);
	if (k_is(rc, K_E_VALIDATION)) {
		rc = api_fail(c, K_E_VALIDATION,
			      "The public key is not a valid DER-encoded SubjectPublicKeyInfo for "
			      "the key spec %s.",
			      k->spec);
		goto out;
	}
	GUARD_GOTO(rc);
	GUARD_GOTO(kms_set_secret_blob(out, "SharedSecret", secret));
	json_object_set_new(out, "KeyId", json_string(k->arn));
	json_object_set_new(out, "KeyAgreementAlgorithm", json_string(alg));
	json_t *origin = json_object_get(k->doc, "Origin");
	json_object_set_new(
		out, "KeyOrigin",
		json_string(json_is_string(origin) ? json_string_value(origin) : "AWS_KMS"));
out:
	ksecret_free(secret);
	kms_key_unref(k);
	kbuf_release(&peer);
	return rc;
}

/* ---- GenerateDataKeyPair ---------------------------------------------------- */

static const char *const pair_specs[] = {
	"RSA_2048",	 "RSA_3072",	    "RSA_4096", "ECC_NIST_P256",	 "ECC_NIST_P384",
	"ECC_NIST_P521", "ECC_SECG_P256K1", "SM2",	"ECC_NIST_EDWARDS25519", NULL};

/*
 * GenerateDataKeyPair / GenerateDataKeyPairWithoutPlaintext
 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateDataKeyPair.html):
 * "returns a plaintext public key, a plaintext private key, and a copy of
 * the private key that is encrypted under the symmetric encryption KMS key
 * you specify"; the private key is PKCS#8 DER, the public key DER SPKI.
 * The encrypted copy is an ordinary symmetric ciphertext under that key
 * with the encryption context, so Decrypt returns the PKCS#8 bytes.
 */
static K_MUST_CHECK k_status data_key_pair(struct api_ctx *c, json_t *in, json_t *out,
					   bool with_plaintext)
{
	const char *key_id, *spec;
	json_t *ctx, *tokens;
	struct kms_key *k = NULL;
	struct ksecret *priv = NULL;
	struct kbuf canon, blob, pub;
	kbuf_init(&canon, CRYPTO_ECTX_MAX);
	kbuf_init(&blob, ASYM_MAX_PKCS8 + CRYPTO_BLOB_OVERHEAD);
	kbuf_init(&pub, ASYM_MAX_SPKI);
	k_status rc = K_OK;
	GUARD_GOTO(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD_GOTO(api_enum(c, in, "KeyPairSpec", true, pair_specs, &spec));
	GUARD_GOTO(api_string_map(c, in, "EncryptionContext", &ctx));
	GUARD_GOTO(api_string_list(c, in, "GrantTokens", 10, 1, 8192, &tokens));
	if (json_object_get(in, "Recipient") != NULL) {
		rc = api_fail(
			c, K_E_UNSUPPORTED,
			"Recipient (Nitro Enclaves attestation) is not supported by this server.");
		goto out;
	}
	if (strcmp(spec, "SM2") == 0) {
		rc = api_fail(c, K_E_UNSUPPORTED,
			      "KeyPairSpec SM2 is only available in China Regions.");
		goto out;
	}
	GUARD_GOTO(kms_op_key(c, &k));
	GUARD_GOTO(require_usage(c, k, "ENCRYPT_DECRYPT"));
	if (k->spec == NULL || strcmp(k->spec, "SYMMETRIC_DEFAULT") != 0) {
		rc = api_fail(
			c, K_E_INVALID_KEY_USAGE,
			"%s key spec %s is not valid for %s; use a symmetric encryption KMS key.",
			k->arn, k->spec ? k->spec : "unknown", c->op->name);
		goto out;
	}
	GUARD_GOTO(require_material(c, k));
	GUARD_GOTO(dry_run(c, in));
	GUARD_GOTO(crypto_ectx_canonical(ctx, &canon));
	GUARD_GOTO(keystore_generate_data_key_pair(k->handle, spec, kbuf_slice(&canon), &pub, &blob,
						   with_plaintext ? &priv : NULL));
	GUARD_GOTO(api_set_blob(out, "PrivateKeyCiphertextBlob", blob.ptr, blob.len));
	if (with_plaintext)
		GUARD_GOTO(kms_set_secret_blob(out, "PrivateKeyPlaintext", priv));
	GUARD_GOTO(api_set_blob(out, "PublicKey", pub.ptr, pub.len));
	json_object_set_new(out, "KeyId", json_string(k->arn));
	json_object_set_new(out, "KeyPairSpec", json_string(spec));
out:
	ksecret_free(priv);
	kms_key_unref(k);
	kbuf_release(&canon);
	kbuf_release(&blob);
	kbuf_release(&pub);
	return rc;
}

k_status kms_op_generate_data_key_pair(struct api_ctx *c, json_t *in, json_t *out)
{
	return data_key_pair(c, in, out, true);
}

k_status kms_op_generate_data_key_pair_without_plaintext(struct api_ctx *c, json_t *in, json_t *out)
{
	return data_key_pair(c, in, out, false);
}

/* ---- Encrypt / Decrypt with RSA keys ---------------------------------------- */

/*
 * The usage and algorithm rule of RSAES-OAEP. "EncryptionAlgorithm ...
 * The default value, SYMMETRIC_DEFAULT, represents the only supported
 * algorithm that is valid for symmetric encryption KMS keys"
 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_Encrypt.html),
 * so an RSA key needs RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256 named.
 */
static K_MUST_CHECK k_status require_oaep(struct api_ctx *c, const struct kms_key *k,
					  const char *alg)
{
	GUARD(require_usage(c, k, "ENCRYPT_DECRYPT"));
	if (k->spec == NULL || strncmp(k->spec, "RSA_", 4) != 0 || alg == NULL ||
	    (strcmp(alg, "RSAES_OAEP_SHA_1") != 0 && strcmp(alg, "RSAES_OAEP_SHA_256") != 0))
		return incompatible(c, k, alg ? alg : "SYMMETRIC_DEFAULT");
	return K_OK;
}

/*
 * AWS's plaintext limits for RSA keys
 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_Encrypt.html):
 * RSA_2048 214 / 190 bytes (RSAES_OAEP_SHA_1 / _256), RSA_3072 342 / 318,
 * RSA_4096 470 / 446 — the OAEP bound, modulus - 2 * hash - 2.
 */
k_status kms_asym_encrypt_raw(struct api_ctx *c, struct kms_key *k, const char *alg,
			      struct kslice pt, json_t *in, struct kbuf *ct)
{
	GUARD(require_oaep(c, k, alg));
	GUARD(require_material(c, k));
	size_t max = asym_oaep_max_plaintext_spec(k->spec, alg);
	if (pt.len > max)
		return api_fail(
			c, K_E_VALIDATION,
			"Plaintext length %zu exceeds the maximum of %zu bytes for %s with %s.",
			pt.len, max, k->spec, alg);
	GUARD(dry_run(c, in));
	return keystore_asym_encrypt(k->handle, alg, pt, ct);
}

k_status kms_asym_encrypt(struct api_ctx *c, struct kms_key *k, const char *alg, struct kslice pt,
			  json_t *in, json_t *out)
{
	struct kbuf ct;
	kbuf_init(&ct, KMS_MAX_RSA_BLOCK);
	k_status rc = kms_asym_encrypt_raw(c, k, alg, pt, in, &ct);
	if (k_ok(rc))
		rc = api_set_blob(out, "CiphertextBlob", ct.ptr, ct.len);
	kbuf_release(&ct);
	GUARD(rc);
	json_object_set_new(out, "KeyId", json_string(k->arn));
	json_object_set_new(out, "EncryptionAlgorithm", json_string(alg));
	return K_OK;
}

/*
 * Decrypt of an RSAES-OAEP ciphertext: "If you used an asymmetric KMS key,
 * you must specify the KeyId and EncryptionAlgorithm" (API_Decrypt). An
 * asymmetric ciphertext carries no key id, so KeyId is required here.
 */
k_status kms_asym_decrypt_raw(struct api_ctx *c, const char *key_id, const char *alg,
			      struct kslice ct, json_t *in, struct kbuf *pt,
			      struct kms_key **key_out)
{
	if (key_id == NULL)
		return api_fail(c, K_E_VALIDATION,
				"KeyId is required when the EncryptionAlgorithm is %s.", alg);
	struct kms_key *k = NULL;
	k_status rc = K_OK;
	GUARD_GOTO(kms_resolve_key(c, key_id, true, &k));
	GUARD_GOTO(require_oaep(c, k, alg));
	GUARD_GOTO(require_material(c, k));
	GUARD_GOTO(dry_run(c, in));
	GUARD_GOTO(keystore_asym_decrypt(k->handle, alg, ct, pt));
	*key_out = k;
	k = NULL;
out:
	kms_key_unref(k);
	return rc;
}

k_status kms_asym_decrypt(struct api_ctx *c, const char *key_id, const char *alg, struct kslice ct,
			  json_t *in, json_t *out)
{
	struct kms_key *k = NULL;
	struct kbuf pt;
	kbuf_init(&pt, KMS_MAX_RSA_BLOCK);
	k_status rc = K_OK;
	GUARD_GOTO(kms_asym_decrypt_raw(c, key_id, alg, ct, in, &pt, &k));
	GUARD_GOTO(api_set_blob(out, "Plaintext", pt.ptr, pt.len));
	json_object_set_new(out, "KeyId", json_string(k->arn));
	json_object_set_new(out, "EncryptionAlgorithm", json_string(alg));
out:
	kms_key_unref(k);
	kbuf_release(&pt);
	return rc;
}
