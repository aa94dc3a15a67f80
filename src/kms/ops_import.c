/*
 * ops_import.c — GetParametersForImport, ImportKeyMaterial,
 * DeleteImportedKeyMaterial, and the expiry of imported material.
 *
 * The key's store makes the wrapping key and the import token, opens the
 * token, unwraps and checks the material (keystore_import_params,
 * keystore_import in keystore/keyops.h; the software store's token format
 * is described in keystore/soft.c). The key document keeps what the store
 * hands back: the material's reference and its fingerprint, so that only
 * "the same key material that was originally imported"
 * (https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys.html)
 * can come back after it is deleted or expires.
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "crypto/asym.h"
#include "keystore/keyops.h"
#include "kms/kms.h"
#include "kms/multiregion.h"
#include "kms/store.h"
#include "scheduler/scheduler.h"
#include "kms/specs.h"
#include "core/banned.h"

#define IMPORT_TOKEN_TTL (24 * 3600) /* "The import token ... valid for 24 hours" */
#define IMPORT_MAX_VALID_TO_DAYS 365
#define IMPORT_DUE_TASK "kms.import-expiry"
/* ImportToken and EncryptedKeyMaterial: "Length Constraints: Minimum length of 1. Maximum length of 6144." */
#define KMS_IMPORT_BLOB_MAX 6144
/* The imported material's fingerprint as text (a hex digest). */
#define KMS_IMPORT_FINGERPRINT_MAX 1024

static const char *const wrap_algs[] = {"RSAES_PKCS1_V1_5",
					"RSAES_OAEP_SHA_1",
					"RSAES_OAEP_SHA_256",
					"RSA_AES_KEY_WRAP_SHA_1",
					"RSA_AES_KEY_WRAP_SHA_256",
					"SM2PKE",
					NULL};

/* The imported-material operations need an EXTERNAL key. */
static K_MUST_CHECK k_status require_external(struct api_ctx *c, const struct kms_key *k)
{
	const char *origin = json_string_value(json_object_get(k->doc, "Origin"));
	if (origin == NULL || strcmp(origin, "EXTERNAL") != 0)
		return api_fail(c, K_E_UNSUPPORTED,
				"%s origin is %s which is not valid for this operation.", k->arn,
				origin ? origin : "unknown");
	/* AWS's key-state table: Enabled, Disabled and PendingImport keys only. */
	return kms_check_key_state(c, k);
}

/*
 * GetParametersForImport (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetParametersForImport.html):
 * a fresh RSA wrapping key pair of WrappingKeySpec; the public key (DER
 * SPKI) and an import token that "is valid for 24 hours".
 * RSAES_PKCS1_V1_5 is no longer accepted by AWS; SM2PKE is China-only.
 */
k_status kms_op_get_parameters_for_import(struct api_ctx *c, json_t *in, json_t *out)
{
	static const char *const specs[] = {"RSA_2048", "RSA_3072", "RSA_4096", "SM2", NULL};
	const char *key_id, *alg, *wspec;
	struct kms_key *k = NULL;
	struct kbuf pub, token;
	kbuf_init(&pub, ASYM_MAX_SPKI);
	kbuf_init(&token, KMS_IMPORT_BLOB_MAX);
	k_status rc = K_OK;
	GUARD_GOTO(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD_GOTO(api_enum(c, in, "WrappingAlgorithm", true, wrap_algs, &alg));
	GUARD_GOTO(api_enum(c, in, "WrappingKeySpec", true, specs, &wspec));
	if (strcmp(alg, "RSAES_PKCS1_V1_5") == 0 || strcmp(alg, "SM2PKE") == 0 ||
	    strcmp(wspec, "SM2") == 0) {
		rc = api_fail(c, K_E_UNSUPPORTED,
			      "Wrapping algorithm %s with key spec %s is not supported.", alg,
			      wspec);
		goto out;
	}
	GUARD_GOTO(kms_op_key(c, &k));
	GUARD_GOTO(require_external(c, k));

	int64_t valid_to = c->now + IMPORT_TOKEN_TTL;
	GUARD_GOTO(keystore_import_params(k->handle->ops, kms_doc_material_arn(k->doc), wspec, alg,
					  valid_to, &pub, &token));

	GUARD_GOTO(api_set_blob(out, "ImportToken", token.ptr, token.len));
	GUARD_GOTO(api_set_blob(out, "PublicKey", pub.ptr, pub.len));
	json_object_set_new(out, "KeyId", json_string(k->arn));
	json_object_set_new(out, "ParametersValidTo",
			    kjson_date(valid_to * 1000 + api_now_ms(c) % 1000));
out:
	kms_key_unref(k);
	kbuf_release(&pub);
	kbuf_release(&token);
	return rc;
}

/*
 * The store's verdict on imported material, in AWS's words: a token that
 * is not one of ours for this key, a token past its 24 hours, material
 * that does not unwrap, material of another spec, other material than
 * before.
 */
static K_MUST_CHECK k_status import_failure(struct api_ctx *c, const struct kms_key *k,
					    const char *alg, k_status rc)
{
	switch (k_code(rc)) {
	case KC_E_INVALID_IMPORT_TOKEN:
		return api_fail(
			c, K_E_INVALID_IMPORT_TOKEN,
			"Import token is invalid or is associated with a different KMS key.");
	case KC_E_EXPIRED_IMPORT_TOKEN:
		return api_fail(c, K_E_EXPIRED_IMPORT_TOKEN, "Import token expired.");
	case KC_E_INVALID_CIPHERTEXT:
		return api_fail(c, K_E_INVALID_CIPHERTEXT,
				"The encrypted key material could not be decrypted with the import "
				"parameters (%s).",
				alg);
	case KC_E_VALIDATION:
		return api_fail(c, K_E_INCORRECT_KEY_MATERIAL,
				"The key material is not valid for a KMS key with key spec %s.",
				k->spec);
	case KC_E_INCORRECT_KEY_MATERIAL:
		return api_fail(c, K_E_INCORRECT_KEY_MATERIAL,
				"The key material is not the same key material that was previously "
				"imported into %s.",
				k->arn);
	default:
		return rc;
	}
}

/*
 * ValidTo arrives as epoch seconds (a JSON number, possibly fractional):
 * *out in whole seconds (the scheduler's), *out_ms to the millisecond (the
 * date DescribeKey returns).
 */
static K_MUST_CHECK k_status valid_to_member(struct api_ctx *c, json_t *in, bool *present,
					     int64_t *out, int64_t *out_ms)
{
	json_t *v = json_object_get(in, "ValidTo");
	*present = v != NULL && !json_is_null(v);
	if (!*present)
		return K_OK;
	if (!json_is_number(v))
		return api_fail(c, K_E_SERIALIZATION, "Unexpected value type for member 'ValidTo'");
	double d = json_number_value(v);
	if (!(d > 0 && d < 1e12))
		return api_fail(c, K_E_VALIDATION, "ValidTo is not a valid timestamp.");
	*out = (int64_t)d;
	*out_ms = (int64_t)(d * 1000.0 + 0.5);
	return K_OK;
}

/*
 * ImportKeyMaterial (https://docs.aws.amazon.com/kms/latest/APIReference/API_ImportKeyMaterial.html):
 * "When the value of ExpirationModel is KEY_MATERIAL_EXPIRES, you must
 * specify a value for the ValidTo parameter. When value is
 * KEY_MATERIAL_DOES_NOT_EXPIRE, you must omit the ValidTo parameter."
 * ValidTo "must be a future date and time. The maximum value is 365 days
 * from the request date." Without ExpirationModel, a ValidTo means the
 * material expires and none means it does not.
 */
/*
 * The expiration rule above: *model is given or derived from ValidTo,
 * *expires says which; a ValidTo must be given exactly when the material
 * expires, in the future and within IMPORT_MAX_VALID_TO_DAYS.
 */
static K_MUST_CHECK k_status import_expiration(struct api_ctx *c, const char **model,
					       bool has_valid_to, int64_t valid_to, bool *expires)
{
	if (*model == NULL)
		*model = has_valid_to ? "KEY_MATERIAL_EXPIRES" : "KEY_MATERIAL_DOES_NOT_EXPIRE";
	*expires = strcmp(*model, "KEY_MATERIAL_EXPIRES") == 0;
	if (*expires && !has_valid_to)
		return api_fail(c, K_E_VALIDATION,
				"A validTo date must be set if the ExpirationModel is "
				"KEY_MATERIAL_EXPIRES");
	if (!*expires && has_valid_to)
		return api_fail(c, K_E_VALIDATION,
				"A validTo date must not be set if the ExpirationModel is "
				"KEY_MATERIAL_DOES_NOT_EXPIRE");
	if (*expires &&
	    (valid_to <= c->now || valid_to > c->now + IMPORT_MAX_VALID_TO_DAYS * 86400))
		return api_fail(c, K_E_VALIDATION,
				"ValidTo must be in the future and at most %d days from now.",
				IMPORT_MAX_VALID_TO_DAYS);
	return K_OK;
}

/*
 * The key's document with its imported material: the stored reference,
 * the material's fingerprint, the expiration, and Enabled if it was
 * waiting for its material. NULL if out of memory.
 */
static json_t *imported_doc(const struct api_ctx *c, const struct kms_key *k, const char *model,
			    bool expires, int64_t valid_to_ms, const struct kbuf *stored,
			    const struct kbuf *fp)
{
	json_t *doc = json_deep_copy(k->doc);
	if (doc == NULL)
		return NULL;
	json_object_set_new(doc, "Materials",
			    json_pack("[{s:i, s:s, s:I}]", "Version", 1, "Wrapped",
				      kbuf_cstr(stored), "Created", (json_int_t)c->now));
	json_object_set_new(doc, "MaterialFingerprint", json_string(kbuf_cstr(fp)));
	json_object_set_new(doc, "ExpirationModel", json_string(model));
	if (expires)
		json_object_set_new(doc, "ValidTo", kjson_date(valid_to_ms));
	else
		json_object_del(doc, "ValidTo");
	if (k->state == KS_PENDING_IMPORT)
		json_object_set_new(doc, "KeyState", json_string("Enabled"));
	return doc;
}

k_status kms_op_import_key_material(struct api_ctx *c, json_t *in, json_t *out)
{
	static const char *const models[] = {"KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE",
					     NULL};
	static const char *const import_types[] = {"NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL",
						   NULL};
	const char *key_id, *model, *itype, *desc, *mat_id;
	bool has_valid_to = false, expires = false;
	int64_t valid_to = 0, valid_to_ms = 0;
	struct kms_key *k = NULL, *nk = NULL;
	struct keystore_import req = {0};
	json_t *doc = NULL, *fingerprint = NULL;
	struct kbuf token, wrapped, fp, stored;
	kbuf_init(&token, KMS_IMPORT_BLOB_MAX);
	kbuf_init(&wrapped, KMS_IMPORT_BLOB_MAX);
	kbuf_init(&fp, KMS_IMPORT_FINGERPRINT_MAX);
	kbuf_init(&stored, KEYSTORE_MAX_REF);
	char due_id[SCHEDULER_DUE_ID_MAX];
	struct storage_op due_op;
	k_status rc = K_OK;
	GUARD_GOTO(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD_GOTO(api_blob(c, in, "ImportToken", true, 1, KMS_IMPORT_BLOB_MAX, &token, NULL));
	GUARD_GOTO(api_blob(c, in, "EncryptedKeyMaterial", true, 1, KMS_IMPORT_BLOB_MAX, &wrapped,
			    NULL));
	GUARD_GOTO(api_enum(c, in, "ExpirationModel", false, models, &model));
	GUARD_GOTO(valid_to_member(c, in, &has_valid_to, &valid_to, &valid_to_ms));
	GUARD_GOTO(api_enum(c, in, "ImportType", false, import_types, &itype));
	GUARD_GOTO(api_string(c, in, "KeyMaterialDescription", false, 0, 256, &desc));
	GUARD_GOTO(api_string(c, in, "KeyMaterialId", false, 64, 64, &mat_id));
	GUARD_GOTO(import_expiration(c, &model, has_valid_to, valid_to, &expires));
	GUARD_GOTO(kms_op_key(c, &k));
	GUARD_GOTO(require_external(c, k));
	/* A multi-Region key takes the material its related keys have. */
	fingerprint = kms_mrk_fingerprint(k);
	req = (struct keystore_import){
		.arn = kms_doc_material_arn(k->doc),
		.key_id = k->uuid,
		.spec = k->spec,
		.token = kbuf_slice(&token),
		.encrypted = kbuf_slice(&wrapped),
		.now = c->now,
		.fingerprint = json_string_value(fingerprint),
		/* a replica of a peer's primary: the primary's material only */
		.commitment = json_string_value(json_object_get(k->doc, "MaterialCommitment")),
		.fingerprint_out = &fp,
		.ref = &stored,
	};
	rc = keystore_import(k->handle->ops, &req);
	GUARD_GOTO(import_failure(c, k, req.wrap_alg, rc));

	doc = imported_doc(c, k, model, expires, valid_to_ms, &stored, &fp);
	ENSURE_GOTO(doc != NULL, K_E_INTERNAL);
	size_t n_extra = 0;
	if (expires) {
		GUARD_GOTO(scheduler_due_id(valid_to, IMPORT_DUE_TASK, k->ns, k->id, due_id,
					    sizeof due_id));
		scheduler_due_put_op(&due_op, due_id);
		n_extra = 1;
	}
	rc = kms_key_update_ops(k, doc, req.key, &due_op, n_extra, &nk);
	doc = NULL;
	req.key = NULL;
	GUARD_GOTO(rc);
	json_object_set_new(out, "KeyId", json_string(k->arn));
out:
	json_decref(doc);
	json_decref(fingerprint);
	keystore_key_unref(req.key);
	kms_key_unref(k);
	kms_key_unref(nk);
	kbuf_release(&token);
	kbuf_release(&wrapped);
	kbuf_release(&fp);
	kbuf_release(&stored);
	return rc;
}

/*
 * Takes a key's imported material away: state PendingImport, no material
 * (the fingerprint stays, so only the same material can come back).
 * Shared by DeleteImportedKeyMaterial and expiry.
 */
static K_MUST_CHECK k_status drop_material(struct kms_key *k, const struct storage_op *extra,
					   size_t n_extra)
{
	json_t *doc = json_deep_copy(k->doc);
	ENSURE(doc != NULL, K_E_INTERNAL);
	json_object_del(doc, "Materials");
	json_object_del(doc, "ValidTo");
	json_object_del(doc, "ExpirationModel");
	json_object_set_new(doc, "KeyState", json_string("PendingImport"));
	struct keystore_key *none = NULL;
	if (k_failed(keystore_open(k->handle->ops, k->arn, k->uuid, NULL, 0, &none))) {
		json_decref(doc);
		return K_E_INTERNAL;
	}
	return kms_key_update_ops(k, doc, none, extra, n_extra, NULL);
}

/*
 * DeleteImportedKeyMaterial (https://docs.aws.amazon.com/kms/latest/APIReference/API_DeleteImportedKeyMaterial.html):
 * "the key state of the KMS key changes to PendingImport"; "you can
 * reimport the same key material".
 */
k_status kms_op_delete_imported_key_material(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *mat_id;
	struct kms_key *k = NULL;
	k_status rc = K_OK;
	GUARD_GOTO(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD_GOTO(api_string(c, in, "KeyMaterialId", false, 64, 64, &mat_id));
	GUARD_GOTO(kms_op_key(c, &k));
	GUARD_GOTO(require_external(c, k));
	GUARD_GOTO(drop_material(k, NULL, 0));
	json_object_set_new(out, "KeyId", json_string(k->arn));
out:
	kms_key_unref(k);
	return rc;
}

/*
 * The scheduler's due work: "When the key material expires, AWS KMS
 * deletes the key material and the KMS key becomes unusable"; its state
 * is PendingImport (https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys-set-expiration.html).
 * A due record whose key was re-imported with a later ValidTo, or whose
 * material is already gone, is just dropped.
 */
static K_MUST_CHECK k_status expire_one(void *arg, int64_t when, const char *ns, const char *id,
					const char *due_id)
{
	int64_t now = *(const int64_t *)arg;
	struct storage_op del;
	scheduler_due_del_op(&del, due_id);
	struct kms_key *k = NULL;
	k_status rc = kms_key_get(ns, id, &k);
	if (k_is(rc, K_E_NOT_FOUND))
		return storage_apply(kms_store(), &del, 1);
	GUARD(rc);
	json_t *vt = json_object_get(k->doc, "ValidTo");
	bool due = json_is_number(vt) && kjson_date_seconds(vt) <= now &&
		   json_object_get(k->doc, "Materials") != NULL;
	if (due) {
		rc = drop_material(k, &del, 1);
		if (k_ok(rc))
			LOG_INFO("imported key material of %s expired", k->arn);
	} else {
		rc = storage_apply(kms_store(), &del, 1);
	}
	kms_key_unref(k);
	return k_is(rc, K_E_CONFLICT) ? K_OK : rc;
}

static K_MUST_CHECK k_status run_due_expiry(int64_t now)
{
	return scheduler_due_list(IMPORT_DUE_TASK, now, expire_one, &now);
}

k_status kms_import_init(void)
{
	return scheduler_register("kms.import-expiry", run_due_expiry);
}
