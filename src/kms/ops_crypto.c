/*
 * ops_crypto.c — Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
 * GenerateDataKeyWithoutPlaintext, GenerateRandom for symmetric keys.
 *
 * The hot path: validate members, resolve the key from the in-memory
 * cache, check its state and usage, ask its key store to run AES-GCM with
 * a derived per-message key (keystore/keyops.h), render. No storage
 * access, no global lock.
 */
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "keystore/keyops.h"
#include "kms/authz.h"
#include "kms/kms.h"
#include "kms/multiregion.h"
#include "kms/xks_keys.h"
#include "core/banned.h"

static const char *const enc_algs[] = {"SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1",
				       "RSAES_OAEP_SHA_256", "SM2PKE", NULL};

/* The usage and algorithm checks of a symmetric encryption key. */
static K_MUST_CHECK k_status require_encrypt_key(struct api_ctx *c, const struct kms_key *k,
						 const char *alg)
{
	GUARD(kms_require_enabled(c, k));
	if (k->usage == NULL || strcmp(k->usage, "ENCRYPT_DECRYPT") != 0)
		return api_fail(c, K_E_INVALID_KEY_USAGE,
				"%s key usage is %s which is not valid for %s.", k->arn,
				k->usage ? k->usage : "unknown", c->op->name);
	if (alg != NULL && strcmp(alg, "SYMMETRIC_DEFAULT") != 0)
		return api_fail(c, K_E_INVALID_KEY_USAGE,
				"Algorithm %s is incompatible with key spec %s.", alg,
				k->spec ? k->spec : "unknown");
	if (keystore_key_versions(k->handle) == 0)
		return api_fail(c, K_E_INVALID_STATE, "%s has no key material.", k->arn);
	return K_OK;
}

k_status kms_set_secret_blob(json_t *out, const char *member, const struct ksecret *s)
{
	struct kbuf b;
	kbuf_init(&b, API_MAX_BASE64);
	k_status rc = ksecret_append_base64(s, &b);
	if (k_ok(rc) && json_object_set_new(out, member, json_stringn(kbuf_cstr(&b), b.len)) != 0)
		rc = K_E_INTERNAL;
	kbuf_release(&b);
	return rc;
}

static K_MUST_CHECK k_status dry_run(struct api_ctx *c, json_t *in)
{
	bool present, dry;
	GUARD(api_bool(c, in, "DryRun", &present, &dry));
	return dry ? K_E_DRY_RUN : K_OK;
}

/*
 * Encrypts pt under the key's newest material, appending the blob to out;
 * a key of an external key store seals under both of its layers.
 */
static K_MUST_CHECK k_status sym_encrypt(struct api_ctx *c, const struct kms_key *k, json_t *ctx,
					 struct kslice pt, struct kbuf *out)
{
	struct kbuf canon;
	kbuf_init(&canon, CRYPTO_ECTX_MAX);
	k_status rc = crypto_ectx_canonical(ctx, &canon);
	if (k_ok(rc) && kms_key_is_xks(k))
		rc = kms_xks_encrypt(c, k, kbuf_slice(&canon), pt, out);
	else if (k_ok(rc))
		rc = keystore_encrypt(k->handle, kbuf_slice(&canon), pt, out);
	kbuf_release(&canon);
	return rc;
}

/* The key id a symmetric blob names: format 1, or format 2 (a key of an external key store). */
static K_MUST_CHECK k_status blob_key_id(struct kslice bytes, uint8_t key_id[16])
{
	if (kms_xks_blob_claims(bytes)) {
		struct kms_xks_blob xb;
		GUARD(kms_xks_blob_parse(bytes, &xb));
		memcpy(key_id, xb.key_id, 16);
		return K_OK;
	}
	struct crypto_blob blob;
	GUARD(crypto_blob_parse(bytes, &blob));
	memcpy(key_id, blob.key_id, 16);
	return K_OK;
}

/*
 * The key of a symmetric ciphertext, resolved and authorized with the
 * current action. With a KeyId the blob must belong to that key
 * (IncorrectKeyException otherwise). A blob that does not parse is
 * InvalidCiphertextException, which AWS returns without a message.
 */
static K_MUST_CHECK k_status ciphertext_key(struct api_ctx *c, const char *key_id,
					    struct kslice blob_bytes, struct kms_key **key_out)
{
	uint8_t blob_id[16];
	struct kms_key *k = NULL;
	if (key_id != NULL) {
		GUARD(kms_resolve_key(c, key_id, true, &k));
		if (k_failed(blob_key_id(blob_bytes, blob_id))) {
			kms_key_unref(k);
			return K_E_INVALID_CIPHERTEXT;
		}
		if (memcmp(blob_id, k->uuid, 16) != 0) {
			kms_key_unref(k);
			return api_fail(c, K_E_INCORRECT_KEY,
					"The key ID in the request does not identify a CMK that "
					"can perform this operation.");
		}
		*key_out = k;
		return K_OK;
	}
	GUARD(blob_key_id(blob_bytes, blob_id));
	char id[37];
	/* A UUID or a multi-Region key id, in this account or another of the Region. */
	k_status rc = kms_key_get_by_blob_id(c->ns, c->region, blob_id, id, &k);
	/*
	 * The ciphertext names a key this account and Region does not
	 * have (any more): "After a KMS key is deleted, you can no longer
	 * decrypt the data that was encrypted under that KMS key"
	 * (https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html).
	 * AWS answers NotFoundException naming the key, as for any
	 * operation on a deleted key
	 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_Decrypt.html#API_Decrypt_Errors).
	 */
	/* Authorization: a ciphertext of another account's key (kms/authz.h decides). */
	if (k_is(rc, K_E_NOT_FOUND)) {
		char arn[160];
		kms_key_arn(c, id, arn, sizeof arn);
		return api_fail(c, K_E_NOT_FOUND, "Key '%s' does not exist", arn);
	}
	GUARD(rc);
	/* Authorization: the key the ciphertext names (kms/authz.h). */
	rc = authz_key(c, k);
	if (k_failed(rc)) {
		kms_key_unref(k);
		return rc;
	}
	*key_out = k;
	return K_OK;
}

/* sym_open of a format-2 blob: both layers, through the key's external key store. */
static K_MUST_CHECK k_status xks_open(struct api_ctx *c, const struct kms_key *k, const char *alg,
				      struct kslice blob_bytes, json_t *ctx, struct kbuf *pt)
{
	struct kbuf canon;
	kbuf_init(&canon, CRYPTO_ECTX_MAX);
	k_status rc = require_encrypt_key(c, k, alg);
	if (k_ok(rc))
		rc = crypto_ectx_canonical(ctx, &canon);
	if (k_ok(rc))
		rc = kms_xks_decrypt(c, k, kbuf_slice(&canon), blob_bytes, pt);
	kbuf_release(&canon);
	return rc;
}

/*
 * Decrypts a symmetric ciphertext under its key k. Any authentication
 * failure is InvalidCiphertextException.
 */
static K_MUST_CHECK k_status sym_open(struct api_ctx *c, const struct kms_key *k, const char *alg,
				      struct kslice blob_bytes, json_t *ctx, struct kbuf *pt)
{
	/* A key of an external key store opens only its double-encrypted blobs. */
	if (kms_key_is_xks(k) != kms_xks_blob_claims(blob_bytes))
		return K_E_INVALID_CIPHERTEXT;
	if (kms_key_is_xks(k))
		return xks_open(c, k, alg, blob_bytes, ctx, pt);
	struct crypto_blob blob;
	GUARD(crypto_blob_parse(blob_bytes, &blob));
	struct kbuf canon;
	kbuf_init(&canon, CRYPTO_ECTX_MAX);
	k_status rc = require_encrypt_key(c, k, alg);
	if (k_ok(rc) && (blob.version == 0 || blob.version > keystore_key_versions(k->handle)))
		rc = K_E_INVALID_CIPHERTEXT;
	if (k_ok(rc))
		rc = crypto_ectx_canonical(ctx, &canon);
	if (k_ok(rc))
		rc = keystore_decrypt(k->handle, &blob, kbuf_slice(&canon), pt);
	kbuf_release(&canon);
	return rc;
}

static bool is_oaep(const char *alg)
{
	return alg != NULL && strncmp(alg, "RSAES_OAEP_", 11) == 0;
}

/* The members of a ReEncrypt request, validated in the service model's order. */
struct reencrypt_req {
	const char *src_id, *dst_id, *src_alg, *dst_alg;
	json_t *src_ctx, *dst_ctx, *tokens;
};

static K_MUST_CHECK k_status reencrypt_read(struct api_ctx *c, json_t *in, struct kbuf *ct,
					    struct reencrypt_req *r)
{
	GUARD(api_blob(c, in, "CiphertextBlob", true, 1, 6144, ct, NULL));
	GUARD(api_string_map(c, in, "SourceEncryptionContext", &r->src_ctx));
	GUARD(api_string(c, in, "SourceKeyId", false, 1, 2048, &r->src_id));
	GUARD(api_string(c, in, "DestinationKeyId", true, 1, 2048, &r->dst_id));
	GUARD(api_string_map(c, in, "DestinationEncryptionContext", &r->dst_ctx));
	GUARD(api_enum(c, in, "SourceEncryptionAlgorithm", false, enc_algs, &r->src_alg));
	GUARD(api_enum(c, in, "DestinationEncryptionAlgorithm", false, enc_algs, &r->dst_alg));
	GUARD(api_string_list(c, in, "GrantTokens", 10, 1, 8192, &r->tokens));
	return K_OK;
}

/* The ciphertext's key, or key_id's for RSAES-OAEP (required there). */
static K_MUST_CHECK k_status blob_or_oaep_key(struct api_ctx *c, const char *key_id,
					      const char *alg, struct kslice ct,
					      struct kms_key **out)
{
	if (!is_oaep(alg))
		return ciphertext_key(c, key_id, ct, out);
	if (key_id == NULL)
		return api_fail(c, K_E_VALIDATION,
				"KeyId is required when the EncryptionAlgorithm is %s.", alg);
	return kms_resolve_key(c, key_id, true, out);
}

/*
 * ReEncrypt's source as the authorization sees it: kms:ReEncryptFrom,
 * with the source's encryption context and algorithm. The destination's
 * (kms:ReEncryptTo) are set by the handler before it resolves that key.
 */
static void reencrypt_source_authz(struct api_ctx *c, const struct reencrypt_req *r)
{
	c->authz.action = "kms:ReEncryptFrom";
	c->authz.encryption_context = r->src_ctx;
	c->authz.encryption_algorithm = r->src_alg;
}

/*
 * The resource of the CIPHERTEXT and REENCRYPT kinds (kms/authz.h): the
 * members validated as the service model has them, then the key: for
 * RSAES-OAEP the KeyId (required), otherwise the key the blob's header
 * names, which must be KeyId's when one is given. Decrypt's is authorized
 * with the operation's action; ReEncrypt's source with kms:ReEncryptFrom.
 */
k_status kms_resolve_ciphertext(struct api_ctx *c, json_t *in, struct kms_key **out)
{
	struct kbuf ct;
	kbuf_init(&ct, KMS_MAX_CIPHERTEXT);
	k_status rc = K_OK;
	if (c->op->resource == API_RES_REENCRYPT) {
		struct reencrypt_req r = {0};
		GUARD_GOTO(reencrypt_read(c, in, &ct, &r));
		reencrypt_source_authz(c, &r);
		rc = blob_or_oaep_key(c, r.src_id, r.src_alg, kbuf_slice(&ct), out);
		c->authz.action = NULL;
		goto out;
	}
	const char *key_id, *alg;
	json_t *ctx, *tokens;
	GUARD_GOTO(api_blob(c, in, c->op->member, true, 1, 6144, &ct, NULL));
	GUARD_GOTO(api_string_map(c, in, "EncryptionContext", &ctx));
	GUARD_GOTO(api_string_list(c, in, "GrantTokens", 10, 1, 8192, &tokens));
	GUARD_GOTO(api_string(c, in, "KeyId", false, 1, 2048, &key_id));
	GUARD_GOTO(api_enum(c, in, "EncryptionAlgorithm", false, enc_algs, &alg));
	rc = blob_or_oaep_key(c, key_id, alg, kbuf_slice(&ct), out);
out:
	kbuf_release(&ct);
	return rc;
}

/* Encrypt (https://docs.aws.amazon.com/kms/latest/APIReference/API_Encrypt.html). */
k_status kms_op_encrypt(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *alg;
	json_t *ctx, *tokens;
	struct kbuf pt, blob;
	kbuf_init(&pt, KMS_MAX_PLAINTEXT);
	kbuf_init(&blob, KMS_CIPHERTEXT_BUF);
	struct kms_key *k = NULL;
	k_status rc = K_OK;
	GUARD_GOTO(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD_GOTO(api_blob(c, in, "Plaintext", true, 1, 4096, &pt, NULL));
	GUARD_GOTO(api_string_map(c, in, "EncryptionContext", &ctx));
	GUARD_GOTO(api_string_list(c, in, "GrantTokens", 10, 1, 8192, &tokens));
	GUARD_GOTO(api_enum(c, in, "EncryptionAlgorithm", false, enc_algs, &alg));
	GUARD_GOTO(kms_op_key(c, &k));
	if (kms_key_is_asymmetric(k)) { /* RSAES-OAEP (ops_asym.c) */
		rc = kms_asym_encrypt(c, k, alg, kbuf_slice(&pt), in, out);
		goto out;
	}
	GUARD_GOTO(require_encrypt_key(c, k, alg));
	GUARD_GOTO(dry_run(c, in));
	GUARD_GOTO(sym_encrypt(c, k, ctx, kbuf_slice(&pt), &blob));
	GUARD_GOTO(api_set_blob(out, "CiphertextBlob", blob.ptr, blob.len));
	json_object_set_new(out, "KeyId", json_string(k->arn));
	json_object_set_new(out, "EncryptionAlgorithm", json_string("SYMMETRIC_DEFAULT"));
out:
	kms_key_unref(k);
	kbuf_release(&pt);
	kbuf_release(&blob);
	return rc;
}

/* Decrypt (https://docs.aws.amazon.com/kms/latest/APIReference/API_Decrypt.html). */
k_status kms_op_decrypt(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *alg;
	json_t *ctx, *tokens;
	struct kbuf ct, pt;
	kbuf_init(&ct, KMS_MAX_CIPHERTEXT);
	kbuf_init(&pt, KMS_MAX_CIPHERTEXT);
	struct kms_key *k = NULL;
	k_status rc = K_OK;
	GUARD_GOTO(api_blob(c, in, "CiphertextBlob", true, 1, 6144, &ct, NULL));
	GUARD_GOTO(api_string_map(c, in, "EncryptionContext", &ctx));
	GUARD_GOTO(api_string_list(c, in, "GrantTokens", 10, 1, 8192, &tokens));
	GUARD_GOTO(api_string(c, in, "KeyId", false, 1, 2048, &key_id));
	GUARD_GOTO(api_enum(c, in, "EncryptionAlgorithm", false, enc_algs, &alg));
	if (is_oaep(alg)) { /* ops_asym.c, through the checked resolver */
		rc = kms_asym_decrypt(c, key_id, alg, kbuf_slice(&ct), in, out);
		goto out;
	}
	/* The ciphertext's key: resolved, authorized, state-checked by the pipeline. */
	GUARD_GOTO(kms_op_key(c, &k));
	GUARD_GOTO(sym_open(c, k, alg, kbuf_slice(&ct), ctx, &pt));
	GUARD_GOTO(dry_run(c, in));
	GUARD_GOTO(api_set_blob(out, "Plaintext", pt.ptr, pt.len));
	json_object_set_new(out, "KeyId", json_string(k->arn));
	json_object_set_new(out, "EncryptionAlgorithm", json_string("SYMMETRIC_DEFAULT"));
out:
	kms_key_unref(k);
	kbuf_release(&ct);
	kbuf_release(&pt);
	return rc;
}

/*
 * ReEncrypt (https://docs.aws.amazon.com/kms/latest/APIReference/API_ReEncrypt.html).
 * The source key (the ciphertext's, or SourceKeyId's) was resolved,
 * authorized with kms:ReEncryptFrom and state-checked by the pipeline;
 * the destination is resolved here with kms:ReEncryptTo.
 */
k_status kms_op_re_encrypt(struct api_ctx *c, json_t *in, json_t *out)
{
	struct reencrypt_req r = {0};
	struct kbuf ct, pt, blob;
	kbuf_init(&ct, KMS_MAX_CIPHERTEXT);
	kbuf_init(&pt, KMS_MAX_CIPHERTEXT);
	kbuf_init(&blob, KMS_CIPHERTEXT_BUF);
	struct kms_key *src = NULL, *dst = NULL;
	k_status rc = K_OK;
	GUARD_GOTO(reencrypt_read(c, in, &ct, &r));
	GUARD_GOTO(kms_op_key(c, &src));
	reencrypt_source_authz(c, &r);
	if (is_oaep(r.src_alg)) { /* ops_asym.c, through the checked resolver */
		kms_key_unref(src);
		src = NULL;
		GUARD_GOTO(kms_asym_decrypt_raw(c, r.src_id, r.src_alg, kbuf_slice(&ct), NULL, &pt,
						&src));
	} else {
		GUARD_GOTO(sym_open(c, src, r.src_alg, kbuf_slice(&ct), r.src_ctx, &pt));
	}
	c->authz.action = "kms:ReEncryptTo";
	c->authz.encryption_context = r.dst_ctx;
	c->authz.encryption_algorithm = r.dst_alg;
	c->authz.request_alias = strncmp(r.dst_id, "alias/", 6) == 0 ? r.dst_id : NULL;
	GUARD_GOTO(kms_resolve_key(c, r.dst_id, true, &dst));
	c->authz.action = NULL;
	if (kms_key_is_asymmetric(dst)) { /* RSAES-OAEP (ops_asym.c) */
		GUARD_GOTO(kms_asym_encrypt_raw(c, dst, r.dst_alg, kbuf_slice(&pt), in, &blob));
	} else {
		GUARD_GOTO(require_encrypt_key(c, dst, r.dst_alg));
		GUARD_GOTO(dry_run(c, in));
		GUARD_GOTO(sym_encrypt(c, dst, r.dst_ctx, kbuf_slice(&pt), &blob));
	}
	GUARD_GOTO(api_set_blob(out, "CiphertextBlob", blob.ptr, blob.len));
	json_object_set_new(out, "SourceKeyId", json_string(src->arn));
	json_object_set_new(out, "KeyId", json_string(dst->arn));
	json_object_set_new(out, "SourceEncryptionAlgorithm",
			    json_string(r.src_alg ? r.src_alg : "SYMMETRIC_DEFAULT"));
	json_object_set_new(out, "DestinationEncryptionAlgorithm",
			    json_string(r.dst_alg ? r.dst_alg : "SYMMETRIC_DEFAULT"));
out:
	c->authz.action = NULL;
	kms_key_unref(src);
	kms_key_unref(dst);
	kbuf_release(&ct);
	kbuf_release(&pt);
	kbuf_release(&blob);
	return rc;
}

/*
 * GenerateDataKey and GenerateDataKeyWithoutPlaintext share everything but
 * the Plaintext member. "You must specify either the KeySpec or the
 * NumberOfBytes parameter (but not both) in every GenerateDataKey request."
 */
static K_MUST_CHECK k_status data_key(struct api_ctx *c, json_t *in, json_t *out,
				      bool with_plaintext)
{
	const char *key_id, *spec;
	json_t *ctx, *tokens;
	int64_t nbytes = 0;
	bool has_n;
	static const char *const specs[] = {"AES_256", "AES_128", NULL};
	struct kbuf blob;
	kbuf_init(&blob, KMS_CIPHERTEXT_BUF);
	struct kbuf canon;
	kbuf_init(&canon, CRYPTO_ECTX_MAX);
	struct kms_key *k = NULL;
	struct ksecret *dk = NULL;
	k_status rc = K_OK;
	GUARD_GOTO(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD_GOTO(api_string_map(c, in, "EncryptionContext", &ctx));
	GUARD_GOTO(api_int(c, in, "NumberOfBytes", false, 1, 1024, &has_n, &nbytes));
	GUARD_GOTO(api_enum(c, in, "KeySpec", false, specs, &spec));
	GUARD_GOTO(api_string_list(c, in, "GrantTokens", 10, 1, 8192, &tokens));
	if (has_n == (spec != NULL)) {
		rc = api_fail(c, K_E_VALIDATION,
			      "Please specify either number of bytes or key spec.");
		goto out;
	}
	if (spec != NULL)
		nbytes = strcmp(spec, "AES_256") == 0 ? 32 : 16;
	GUARD_GOTO(kms_op_key(c, &k));
	GUARD_GOTO(require_encrypt_key(c, k, NULL));
	GUARD_GOTO(dry_run(c, in));
	GUARD_GOTO(crypto_ectx_canonical(ctx, &canon));
	/* A per-thread locked scratch buffer: no mmap/munmap per request. */
	dk = ksecret_scratch((size_t)nbytes);
	ENSURE_GOTO(dk != NULL, K_E_INTERNAL);
	if (kms_key_is_xks(k))
		GUARD_GOTO(kms_xks_generate_data_key(c, k, kbuf_slice(&canon), dk, &blob));
	else
		GUARD_GOTO(keystore_generate_data_key(k->handle, kbuf_slice(&canon), dk, &blob));
	GUARD_GOTO(api_set_blob(out, "CiphertextBlob", blob.ptr, blob.len));
	if (with_plaintext)
		GUARD_GOTO(kms_set_secret_blob(out, "Plaintext", dk));
	json_object_set_new(out, "KeyId", json_string(k->arn));
out:
	ksecret_scratch_done(dk);
	kms_key_unref(k);
	kbuf_release(&blob);
	kbuf_release(&canon);
	return rc;
}

k_status kms_op_generate_data_key(struct api_ctx *c, json_t *in, json_t *out)
{
	return data_key(c, in, out, true);
}

k_status kms_op_generate_data_key_without_plaintext(struct api_ctx *c, json_t *in, json_t *out)
{
	return data_key(c, in, out, false);
}

/* GenerateRandom (https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateRandom.html). */
k_status kms_op_generate_random(struct api_ctx *c, json_t *in, json_t *out)
{
	int64_t n = 0;
	bool has_n;
	const char *store_id;
	GUARD(api_int(c, in, "NumberOfBytes", true, 1, 1024, &has_n, &n));
	GUARD(api_string(c, in, "CustomKeyStoreId", false, 1, 64, &store_id));
	if (store_id != NULL)
		return api_fail(c, K_E_CUSTOM_KEY_STORE_NOT_FOUND,
				"Custom key store '%s' does not exist.", store_id);
	uint8_t buf[1024];
	GUARD(crypto_random(buf, (size_t)n));
	k_status rc = api_set_blob(out, "Plaintext", buf, (size_t)n);
	crypto_wipe(buf, sizeof buf);
	return rc;
}
