/*
 * record_value.c — the envelope encryption of secret version values: each
 * value is sealed under a data key of the secret's KMS key, with the
 * version's encryption context, on the caller's behalf (kms:ViaService),
 * and re-sealed when UpdateSecret changes the key (see secrets.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "crypto/crypto.h"
#include "keystore/keyops.h"
#include "kms/authz.h"
#include "kms/envelope.h"
#include "kms/kms.h"
#include "secrets/internal.h"
#include "core/arn.h"
#include "core/banned.h"

/*
 * Secrets Manager uses KMS on the caller's behalf: the caller's principal
 * needs kms:GenerateDataKey (to write) or kms:Decrypt (to read) on the key,
 * with kms:ViaService = secretsmanager.REGION.amazonaws.com, as in AWS.
 * https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html
 */
void sm_via_kms(struct api_ctx *c, const char *action)
{
	static __thread char via[96];
	snprintf(via, sizeof via, "secretsmanager.%s.amazonaws.com", c->region);
	authz_set_via_service(c, via);
	c->authz.action = action;
}

/* "Access to KMS is not allowed" is what AWS says when the key refuses. */
static K_MUST_CHECK k_status kms_denied(struct api_ctx *c)
{
	return api_fail(c, K_E_ACCESS_DENIED, "Access to KMS is not allowed");
}

/*
 * KMS refused the data key: a key of an external key store whose store is
 * disconnected or whose proxy fails (KMSInvalidStateException). Secrets
 * Manager answers EncryptionFailure (writing) or DecryptionFailure
 * (reading) with KMS's message.
 */
static K_MUST_CHECK k_status kms_failed(struct api_ctx *c, k_status rc, bool writing)
{
	if (!k_is(rc, K_E_INVALID_STATE))
		return rc;
	char why[API_ERROR_MESSAGE_MAX];
	snprintf(why, sizeof why, "%.*s", (int)c->err_msg.len, (const char *)c->err_msg.ptr);
	return api_fail(c, writing ? K_E_SM_ENCRYPTION_FAILURE : K_E_SM_DECRYPTION_FAILURE,
			"Secrets Manager can't %s the protected secret text using the provided "
			"KMS key. %s",
			writing ? "encrypt" : "decrypt", why);
}

/* The encryption context AWS uses for a secret version's data key. */
static K_MUST_CHECK k_status value_context(const char *arn, const char *vid, struct kbuf *canon)
{
	json_t *ctx = json_pack("{s:s, s:s}", "SecretARN", arn, "SecretVersionId", vid);
	ENSURE(ctx != NULL, K_E_INTERNAL);
	k_status rc = crypto_ectx_canonical(ctx, canon);
	json_decref(ctx);
	return rc;
}

/*
 * The KMS key of new versions: the secret's KmsKeyId, or the AWS managed
 * key aws/secretsmanager (created on first use). It must be an enabled
 * symmetric encryption key: "EncryptionFailure: Secrets Manager can't
 * encrypt the protected secret text using the provided KMS key. Check that
 * the KMS key is available, enabled, and not in an invalid state."
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/CommonErrors.html
 */
static K_MUST_CHECK k_status encryption_key(struct api_ctx *c, const struct sm_secret *s,
					    struct kms_key **out)
{
	const char *kid = json_string_value(json_object_get(s->doc, "KmsKeyId"));
	k_status rc;
	/*
	 * Another account's secret: its key belongs to the secret's account,
	 * and "you can't use the AWS managed key aws/secretsmanager for
	 * cross-account access"
	 * (https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples_cross.html).
	 */
	char qualified[700];
	if (strncmp(s->ns, c->principal.account, 12) != 0) {
		if (kid == NULL || kid[0] == 0)
			return kms_denied(c);
		if (strncmp(kid, "arn:", 4) != 0) {
			/* The secret's account: the first 12 characters of its namespace. */
			char account[K_ARN_ACCOUNT_LEN + 1];
			snprintf(account, sizeof account, "%.12s", s->ns);
			bool alias = strncmp(kid, "alias/", 6) == 0;
			struct k_arn a = k_arn_of("kms", c->region, account,
						  alias ? K_ARN_OTHER : K_ARN_KEY, kid);
			k_arn_format(&a, qualified, sizeof qualified);
			kid = qualified;
		}
	}
	sm_via_kms(c, "kms:GenerateDataKey");
	if (kid == NULL || kid[0] == 0)
		rc = kms_managed_key(c, "secretsmanager", out);
	else
		rc = kms_resolve_key(c, kid, true, out);
	c->authz.action = NULL;
	if (k_is(rc, K_E_ACCESS_DENIED))
		return kms_denied(c);
	if (k_is(rc, K_E_NOT_FOUND))
		return api_fail(c, K_E_SM_ENCRYPTION_FAILURE,
				"Secrets Manager can't encrypt the protected secret text using the "
				"provided KMS key. Key %s does not exist.",
				kid ? kid : "alias/aws/secretsmanager");
	GUARD(rc);
	struct kms_key *k = *out;
	const char *why = NULL;
	if (k->state != KS_ENABLED)
		why = k->state == KS_DISABLED ? "is disabled" : "is not in a valid state";
	else if (k->usage == NULL || strcmp(k->usage, "ENCRYPT_DECRYPT") != 0 || k->spec == NULL ||
		 strcmp(k->spec, "SYMMETRIC_DEFAULT") != 0 || keystore_key_versions(k->handle) == 0)
		why = "is not a symmetric encryption key";
	if (why != NULL) {
		rc = api_fail(c, K_E_SM_ENCRYPTION_FAILURE,
			      "Secrets Manager can't encrypt the protected secret text using the "
			      "provided KMS key. %s %s.",
			      k->arn, why);
		kms_key_unref(k);
		*out = NULL;
		return rc;
	}
	return K_OK;
}

/*
 * Envelope encryption of one value: a fresh data key encrypts the value;
 * the KMS key encrypts the data key (as GenerateDataKey does), both under
 * the version's encryption context. kms_envelope_seal does both (the
 * key's store, or for a key of an external key store the proxy's layer
 * too); the record holds no plaintext.
 */
k_status sm_seal_value(struct api_ctx *c, const struct sm_secret *s, const char *vid,
		       struct kslice value, bool binary, char **record, char *key_arn,
		       size_t key_arn_len)
{
	struct kms_key *k = NULL;
	struct kbuf canon, wrapped_dk, blob, b64dk, b64v;
	kbuf_init(&canon, SM_CONTEXT_MAX);
	kbuf_init(&wrapped_dk, SM_WRAPPED_KEY_MAX);
	kbuf_init(&blob, SM_SEALED_VALUE_MAX);
	kbuf_init(&b64dk, SM_WRAPPED_KEY_TEXT_MAX);
	kbuf_init(&b64v, SM_VALUE_TEXT_MAX);
	k_status rc = K_OK;
	GUARD_GOTO(encryption_key(c, s, &k));
	GUARD_GOTO(value_context(sm_arn(s), vid, &canon));
	rc = kms_envelope_seal(c, k, kbuf_slice(&canon), value, &wrapped_dk, &blob);
	GUARD_GOTO(kms_failed(c, rc, true));
	GUARD_GOTO(kbuf_append_base64(&b64dk, wrapped_dk.ptr, wrapped_dk.len));
	GUARD_GOTO(kbuf_append_base64(&b64v, blob.ptr, blob.len));
	json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "KeyId", k->id, "KeyNs", k->ns,
			      "KeyArn", k->arn, "DataKey", kbuf_cstr(&b64dk), "Value",
			      kbuf_cstr(&b64v), "Binary", binary);
	ENSURE_GOTO(r != NULL, K_E_INTERNAL);
	*record = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(r);
	ENSURE_GOTO(*record != NULL, K_E_INTERNAL);
	snprintf(key_arn, key_arn_len, "%s", k->arn);
out:
	kms_key_unref(k);
	kbuf_release(&canon);
	kbuf_release(&wrapped_dk);
	kbuf_release(&blob);
	kbuf_release(&b64dk);
	kbuf_release(&b64v);
	return rc;
}

void sm_value_id(const struct sm_secret *s, const char *vid, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", json_string_value(json_object_get(s->doc, "Uid")), vid);
}

/*
 * Decrypts one encryption of a value: a record, or the "Previous" member
 * that keeps it under the key it had before KmsKeyId changed. The KMS key
 * named must still be usable: "DecryptionFailure: Secrets Manager can't
 * decrypt the protected secret text using the provided KMS key." A
 * disabled key, a key pending deletion or a deleted key all end here.
 */
static K_MUST_CHECK k_status open_value(struct api_ctx *c, const struct sm_secret *s,
					const char *vid, json_t *r, struct kbuf *out)
{
	struct kbuf canon, wrapped_dk, blob;
	kbuf_init(&canon, SM_CONTEXT_MAX);
	kbuf_init(&wrapped_dk, SM_WRAPPED_KEY_MAX);
	kbuf_init(&blob, SM_VALUE_BLOB_MAX);
	struct kms_key *k = NULL;
	k_status rc = K_OK;
	const char *kid = json_string_value(json_object_get(r, "KeyId"));
	const char *dk64 = json_string_value(json_object_get(r, "DataKey"));
	const char *v64 = json_string_value(json_object_get(r, "Value"));
	ENSURE_GOTO(kid != NULL && dk64 != NULL && v64 != NULL, K_E_INTERNAL);
	const char *kns = json_string_value(json_object_get(r, "KeyNs"));
	rc = kms_key_get(kns ? kns : s->ns, kid, &k);
	if (k_is(rc, K_E_NOT_FOUND)) {
		rc = api_fail(c, K_E_SM_DECRYPTION_FAILURE,
			      "Secrets Manager can't decrypt the protected secret text using the "
			      "provided KMS key. The KMS key %s does not exist.",
			      kid);
		goto out;
	}
	GUARD_GOTO(rc);
	if (k->state != KS_ENABLED) {
		rc = api_fail(c, K_E_SM_DECRYPTION_FAILURE,
			      "Secrets Manager can't decrypt the protected secret text using the "
			      "provided KMS key. %s is %s.",
			      k->arn,
			      k->state == KS_DISABLED ? "disabled" : kms_state_name(k->state));
		goto out;
	}
	/* The AWS managed key serves its own account only (see encryption_key). */
	const char *manager = json_string_value(json_object_get(k->doc, "KeyManager"));
	if (strncmp(s->ns, c->principal.account, 12) != 0 && manager != NULL &&
	    strcmp(manager, "AWS") == 0) {
		rc = kms_denied(c);
		goto out;
	}
	sm_via_kms(c, "kms:Decrypt");
	rc = authz_key_action(c, k, "kms:Decrypt");
	c->authz.action = NULL;
	if (k_is(rc, K_E_ACCESS_DENIED)) {
		rc = kms_denied(c);
		goto out;
	}
	GUARD_GOTO(rc);
	GUARD_GOTO(value_context(sm_arn(s), vid, &canon));
	GUARD_GOTO(kbuf_decode_base64(&wrapped_dk, kslice_cstr(dk64)));
	GUARD_GOTO(kbuf_decode_base64(&blob, kslice_cstr(v64)));
	rc = kms_envelope_open(c, k, kbuf_slice(&canon), kbuf_slice(&wrapped_dk), kbuf_slice(&blob),
			       out);
	rc = kms_failed(c, rc, false);
	if (k_is(rc, K_E_INVALID_CIPHERTEXT))
		rc = K_E_SM_DECRYPTION_FAILURE;
out:
	kms_key_unref(k);
	kbuf_release(&canon);
	kbuf_release(&wrapped_dk);
	kbuf_release(&blob);
	return rc;
}

/*
 * "Secrets Manager keeps all existing versions encrypted with the previous
 * key. That means you can decrypt AWSCURRENT, AWSPENDING, and AWSPREVIOUS
 * versions with the previous key or the new key."
 * (https://docs.aws.amazon.com/secretsmanager/latest/userguide/manage_update-encryption-key.html)
 * A re-encrypted record is tried under its current key first, then under
 * the previous one; when both fail, the first key's error is reported.
 */
k_status sm_get_value(struct api_ctx *c, const struct sm_secret *s, const char *vid,
		      struct kbuf *out, bool *binary)
{
	char id[200];
	sm_value_id(s, vid, id, sizeof id);
	struct kbuf rec, first;
	kbuf_init(&rec, SM_VALUE_RECORD_MAX);
	kbuf_init(&first, API_ERROR_MESSAGE_MAX);
	json_t *r = NULL;
	k_status rc = sm_in_section()
			      ? storage_get(sm_store(), "secretvalue", s->ns, id, &rec, NULL)
			      : sm_cache_get("secretvalue", s->ns, id, &rec, NULL);
	if (k_is(rc, K_E_NOT_FOUND)) {
		rc = api_fail(
			c, K_E_SM_NOT_FOUND,
			"Secrets Manager can't find the specified secret value for VersionId: %s",
			vid);
		goto out;
	}
	GUARD_GOTO(rc);
	r = json_loadb((const char *)rec.ptr, rec.len, 0, NULL);
	ENSURE_GOTO(r != NULL, K_E_INTERNAL);
	*binary = json_is_true(json_object_get(r, "Binary"));
	rc = open_value(c, s, vid, r, out);
	json_t *prev = json_object_get(r, "Previous");
	if ((k_is(rc, K_E_SM_DECRYPTION_FAILURE) || k_is(rc, K_E_ACCESS_DENIED)) &&
	    json_is_object(prev)) {
		if (k_failed(kbuf_append(&first, c->err_msg.ptr, c->err_msg.len)))
			kbuf_reset(&first);
		kbuf_reset(out);
		if (k_ok(open_value(c, s, vid, prev, out))) {
			kbuf_reset(&c->err_msg);
			rc = K_OK;
		} else {
			kbuf_reset(out);
			kbuf_reset(&c->err_msg);
			if (k_failed(kbuf_append(&c->err_msg, first.ptr, first.len)))
				kbuf_reset(&c->err_msg);
		}
	}
out:
	json_decref(r);
	kbuf_release(&rec);
	kbuf_release(&first);
	return rc;
}

/*
 * UpdateSecret's KmsKeyId: "When you change the encryption key, Secrets
 * Manager re-encrypts AWSCURRENT, AWSPENDING, and AWSPREVIOUS versions with
 * the new key. To avoid locking you out of the secret, Secrets Manager
 * keeps all existing versions encrypted with the previous key. ... If you
 * don't have kms:Decrypt permission to the previous key, when you change
 * the encryption key, Secrets Manager can't decrypt the secret versions to
 * reencrypt them. In this case, the existing versions aren't reencrypted."
 * and "If you disable the previous encryption key, you will not be able to
 * decrypt any secret versions except AWSCURRENT, AWSPENDING, and
 * AWSPREVIOUS."
 * (https://docs.aws.amazon.com/secretsmanager/latest/userguide/manage_update-encryption-key.html)
 *
 * Each labelled version is sealed anew under the secret's (new) key and
 * its record keeps the old encryption as "Previous". All or nothing: if
 * the caller cannot decrypt one of them (DecryptionFailure, no
 * kms:Decrypt), none is re-encrypted and *skipped is set; if the new key
 * cannot encrypt (EncryptionFailure) the error is returned. The ops are
 * applied by the caller together with the secret document.
 */
/* The versions AWSCURRENT, AWSPENDING and AWSPREVIOUS name, each once, that hold a value. */
static size_t labelled_versions(const struct sm_secret *s, const char *vids[3])
{
	static const char *const labels[] = {"AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"};
	json_t *versions = sm_versions(s);
	size_t n = 0;
	for (size_t i = 0; i < 3; i++) {
		const char *vid = sm_stage_owner(s, labels[i]);
		json_t *v = vid ? json_object_get(versions, vid) : NULL;
		bool seen = false;
		for (size_t k = 0; k < n && vid != NULL; k++)
			seen = seen || strcmp(vids[k], vid) == 0;
		if (v != NULL && !seen && !json_is_true(json_object_get(v, "NoValue")))
			vids[n++] = vid;
	}
	return n;
}

/* The members of a value record that say how it was encrypted, kept as its "Previous". */
static json_t *previous_encryption(json_t *old)
{
	json_t *prev = json_object();
	if (prev == NULL)
		return NULL;
	static const char *const kept[] = {"KeyId", "KeyNs", "KeyArn", "DataKey", "Value"};
	for (size_t k = 0; k < sizeof kept / sizeof kept[0]; k++) {
		json_t *m = json_object_get(old, kept[k]);
		if (m != NULL)
			json_object_set(prev, kept[k], m);
	}
	return prev;
}

/*
 * Seals version vid anew under new_arn into re's next slot: the record (its
 * old encryption kept as "Previous"), the op that writes it, and the old
 * key's ARN. Nothing is added when the version is already under new_arn,
 * nor when the caller cannot decrypt it (then *skipped is set). rec and val
 * are scratch buffers, wiped on entry.
 */
static K_MUST_CHECK k_status reencrypt_one(struct api_ctx *c, struct sm_secret *s,
					   struct sm_reencrypt *re, const char *vid,
					   const char *new_arn, struct kbuf *rec, struct kbuf *val,
					   bool *skipped)
{
	json_t *old = NULL, *fresh = NULL;
	char *text = NULL;
	k_status rc = K_OK;
	kbuf_reset(rec);
	kbuf_reset(val);
	sm_value_id(s, vid, re->ids[re->n], sizeof re->ids[re->n]);
	GUARD_GOTO(storage_get(sm_store(), "secretvalue", s->ns, re->ids[re->n], rec, NULL));
	old = json_loadb((const char *)rec->ptr, rec->len, 0, NULL);
	ENSURE_GOTO(old != NULL, K_E_INTERNAL);
	const char *old_arn = json_string_value(json_object_get(old, "KeyArn"));
	if (old_arn != NULL && strcmp(old_arn, new_arn) == 0)
		goto out; /* already under the new key */
	bool binary = false;
	rc = sm_get_value(c, s, vid, val, &binary);
	if (k_is(rc, K_E_SM_DECRYPTION_FAILURE) || k_is(rc, K_E_ACCESS_DENIED)) {
		kbuf_reset(&c->err_msg);
		*skipped = true;
		rc = K_OK;
		goto out;
	}
	GUARD_GOTO(rc);
	char sealed_arn[160];
	GUARD_GOTO(sm_seal_value(c, s, vid, kbuf_slice(val), binary, &text, sealed_arn,
				 sizeof sealed_arn));
	fresh = json_loads(text, 0, NULL);
	ENSURE_GOTO(fresh != NULL, K_E_INTERNAL);
	json_t *prev = previous_encryption(old);
	ENSURE_GOTO(prev != NULL, K_E_INTERNAL);
	json_object_set_new(fresh, "Previous", prev);
	re->records[re->n] = json_dumps(fresh, JSON_COMPACT | JSON_SORT_KEYS);
	ENSURE_GOTO(re->records[re->n] != NULL, K_E_INTERNAL);
	re->ops[re->n] = (struct storage_op){.op = STORAGE_PUT,
					     .kind = "secretvalue",
					     .ns = s->ns,
					     .id = re->ids[re->n],
					     .doc = kslice_cstr(re->records[re->n]),
					     .expect = STORAGE_ANY};
	snprintf(re->vids[re->n], sizeof re->vids[re->n], "%s", vid);
	snprintf(re->old_arns[re->n], sizeof re->old_arns[re->n], "%s", old_arn ? old_arn : "");
	re->n++;
out:
	json_decref(old);
	json_decref(fresh);
	kjson_free(text);
	return rc;
}

k_status sm_reencrypt(struct api_ctx *c, struct sm_secret *s, struct sm_reencrypt *re,
		      bool *skipped)
{
	memset(re, 0, sizeof *re);
	*skipped = false;
	json_t *versions = sm_versions(s);
	const char *vids[3];
	size_t n = labelled_versions(s, vids);
	char new_arn[160] = "";
	if (n > 0) {
		struct kms_key *k = NULL;
		GUARD(encryption_key(c, s, &k));
		snprintf(new_arn, sizeof new_arn, "%s", k->arn);
		kms_key_unref(k);
	}
	struct kbuf rec, val;
	kbuf_init(&rec, SM_VALUE_RECORD_MAX);
	kbuf_init(&val, SM_MAX_VALUE);
	k_status rc = K_OK;
	for (size_t i = 0; i < n && !*skipped; i++)
		GUARD_GOTO(reencrypt_one(c, s, re, vids[i], new_arn, &rec, &val, skipped));
	if (*skipped)
		goto out;
	/* Every record is ready: the versions' metadata follows. */
	for (size_t i = 0; i < re->n; i++) {
		json_t *v = json_object_get(versions, re->vids[i]);
		json_object_set_new(v, "KmsKeyArn", json_string(new_arn));
		if (re->old_arns[i][0] != 0)
			json_object_set_new(v, "PreviousKmsKeyArn", json_string(re->old_arns[i]));
	}
out:
	if (k_failed(rc) || *skipped)
		sm_reencrypt_release(re);
	kbuf_release(&rec);
	kbuf_release(&val);
	return rc;
}

void sm_reencrypt_release(struct sm_reencrypt *re)
{
	for (size_t i = 0; i < re->n; i++)
		kjson_free(re->records[i]);
	memset(re, 0, sizeof *re);
}
