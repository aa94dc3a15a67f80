/*
 * ops_grants.c — CreateGrant, ListGrants, ListRetirableGrants, RetireGrant,
 * RevokeGrant.
 *
 * A grant is a record of its own (kms/grants.h), and authorization reads a
 * key's grants from a per-key cache, not from the store.
 * Each grant: GrantId (64 hex), Name, GranteePrincipal, RetiringPrincipal,
 * Operations, Constraints, CreationDate, IssuingAccount, KeyArn.
 * A grant token is base64url("kgt1" + account + key id + grant id): it
 * names the grant so that RetireGrant can find it from the token alone.
 * Grants take effect at once (there is no eventual consistency here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "crypto/crypto.h"
#include "kms/authz.h"
#include "kms/grants.h"
#include "kms/kms.h"
#include "kms/store.h"
#include "policy/policy.h"
#include "core/json.h"
#include "core/arn.h"
#include "core/banned.h"

/*
 * A grant token's text and its decoded bytes: "kgt1" + account + key id +
 * grant id is 116 bytes, 156 in base64url.
 */
#define KMS_GRANT_TOKEN_MAX 512
/* A ListRetirableGrants marker: "<key id>/<grant id>". */
#define RETIRABLE_MARKER_MAX (KMS_GRANT_RECORD_ID_BUF - 1)

static K_MUST_CHECK k_status dry_run(struct api_ctx *c, json_t *in)
{
	bool present, dry = false;
	GUARD(api_bool(c, in, "DryRun", &present, &dry));
	return dry ? K_E_DRY_RUN : K_OK;
}

/* A grantee or retiring principal: an IAM principal ARN or a service principal. */
bool kms_valid_grant_principal(const char *p)
{
	if (policy_valid_principal(p) && strncmp(p, "arn:", 4) == 0)
		return true;
	size_t n = strlen(p);
	return n > 14 && strcmp(p + n - 14, ".amazonaws.com") == 0 && strchr(p, ':') == NULL;
}

static void make_token(const char *account, const char *key_id, const char *grant_id,
		       struct kbuf *out)
{
	char raw[160];
	int n = snprintf(raw, sizeof raw, "kgt1%s%s%s", account, key_id, grant_id);
	struct kbuf b64;
	kbuf_init(&b64, KMS_GRANT_TOKEN_MAX);
	if (n > 0 && k_ok(kbuf_append_base64(&b64, (const uint8_t *)raw, (size_t)n))) {
		for (size_t i = 0; i < b64.len; i++) {
			uint8_t ch = b64.ptr[i];
			if (ch == '=')
				break;
			if (k_failed(kbuf_append_byte(out, ch == '+' ? '-' : ch == '/' ? '_' : ch)))
				break;
		}
	}
	kbuf_release(&b64);
}

/* Decodes a grant token into its account, key id and grant id. */
static bool parse_token(const char *tok, char account[13], char key_id[37], char grant_id[65])
{
	struct kbuf std, raw;
	kbuf_init(&std, KMS_GRANT_TOKEN_MAX);
	kbuf_init(&raw, KMS_GRANT_TOKEN_MAX);
	bool ok = strlen(tok) < 400;
	for (const char *p = tok; ok && *p; p++)
		ok = k_ok(kbuf_append_byte(&std, (uint8_t)(*p == '-'   ? '+'
							   : *p == '_' ? '/'
								       : *p)));
	while (ok && std.len % 4 != 0)
		ok = k_ok(kbuf_append_byte(&std, '='));
	ok = ok && k_ok(kbuf_decode_base64(&raw, kbuf_slice(&std)));
	ok = ok && raw.len == 4 + 12 + 36 + 64 && memcmp(raw.ptr, "kgt1", 4) == 0;
	if (ok) {
		memcpy(account, raw.ptr + 4, 12);
		account[12] = 0;
		memcpy(key_id, raw.ptr + 16, 36);
		key_id[36] = 0;
		memcpy(grant_id, raw.ptr + 52, 64);
		grant_id[64] = 0;
	}
	kbuf_release(&std);
	kbuf_release(&raw);
	return ok;
}

/* Validates a Constraints structure: encryption context maps of strings. */
static K_MUST_CHECK k_status check_constraints(struct api_ctx *c, json_t *cons)
{
	if (cons == NULL || json_is_null(cons))
		return K_OK;
	if (!json_is_object(cons))
		return api_fail(c, K_E_SERIALIZATION,
				"Unexpected value type for member 'Constraints'");
	const char *k;
	json_t *v;
	json_object_foreach(cons, k, v)
	{
		if (strcmp(k, "EncryptionContextEquals") != 0 &&
		    strcmp(k, "EncryptionContextSubset") != 0)
			return api_fail(c, K_E_SERIALIZATION,
					"Unknown member '%.64s' in 'Constraints'", k);
		json_t *m = NULL;
		GUARD(api_string_map(c, cons, k, &m));
	}
	return K_OK;
}

/* CreateGrant's Operations (each a grant operation), principals and Name, as the service model has them. */
static K_MUST_CHECK k_status check_grant_members(struct api_ctx *c, json_t *ops,
						 const char *grantee, const char *retiring,
						 const char *name)
{
	if (ops == NULL || json_array_size(ops) == 0)
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value null at 'operations' failed to "
				"satisfy constraint: Member must not be null");
	size_t i;
	json_t *o;
	json_array_foreach(ops, i, o)
	{
		bool known = false;
		known = kms_grant_op_bit(json_string_value(o)) != 0;
		if (!known)
			return api_fail(
				c, K_E_VALIDATION,
				"1 validation error detected: Value '[%.64s]' at 'operations' "
				"failed to satisfy constraint: Member must satisfy constraint: "
				"[Member must satisfy enum value set: [Decrypt, Encrypt, "
				"GenerateDataKey, GenerateDataKeyWithoutPlaintext, ReEncryptFrom, "
				"ReEncryptTo, Sign, Verify, GetPublicKey, CreateGrant, "
				"RetireGrant, DescribeKey, GenerateDataKeyPair, "
				"GenerateDataKeyPairWithoutPlaintext, GenerateMac, VerifyMac, "
				"DeriveSharedSecret]]",
				json_string_value(o));
	}
	if (!kms_valid_grant_principal(grantee))
		return api_fail(c, K_E_VALIDATION, "%s is not a valid grantee principal.", grantee);
	if (retiring != NULL && !kms_valid_grant_principal(retiring))
		return api_fail(c, K_E_VALIDATION, "%s is not a valid retiring principal.",
				retiring);
	for (const char *p = name; p != NULL && *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == ':' || *p == '/' || *p == '_' || *p == '-'))
			return api_fail(c, K_E_VALIDATION,
					"1 validation error detected: Value '%.256s' at 'name' "
					"failed to satisfy constraint: Member must satisfy regular "
					"expression pattern: ^[a-zA-Z0-9:/_-]+$",
					name);
	}
	return K_OK;
}

/*
 * A fresh grant id: 64 hex digits, the first 12 the creation time in
 * milliseconds, so that a key's grant records list in creation order; the
 * other 52 random.
 */
static K_MUST_CHECK k_status new_grant_id(int64_t now_ms, char gid[KMS_GRANT_ID_LEN + 1])
{
	uint8_t rnd[26];
	GUARD(crypto_random(rnd, sizeof rnd));
	snprintf(gid, 13, "%012llx", (unsigned long long)now_ms & 0xffffffffffffull);
	for (size_t j = 0; j < sizeof rnd; j++)
		snprintf(gid + 12 + 2 * j, 3, "%02x", rnd[j]);
	return K_OK;
}

/* The grant's document (grants.h) with a fresh GrantId in gid. */
static K_MUST_CHECK k_status new_grant(struct api_ctx *c, const struct kms_key *k, json_t *in,
				       json_t *ops, char gid[KMS_GRANT_ID_LEN + 1], json_t **out)
{
	const char *name = json_string_value(json_object_get(in, "Name"));
	const char *retiring = json_string_value(json_object_get(in, "RetiringPrincipal"));
	json_t *cons = json_object_get(in, "Constraints");
	GUARD(new_grant_id(api_now_ms(c), gid));
	char issuing[K_ARN_BUF];
	struct k_arn issuer = k_arn_of("iam", "", c->principal.account, K_ARN_ROOT, NULL);
	k_arn_format(&issuer, issuing, sizeof issuing);
	json_t *ng = json_pack("{s:s, s:s, s:O, s:o, s:s, s:O, s:s}", "GrantId", gid, "Name",
			       name ? name : "", "GranteePrincipal",
			       json_object_get(in, "GranteePrincipal"), "CreationDate",
			       kjson_date(api_now_ms(c)), "IssuingAccount", issuing, "Operations",
			       ops, "KeyArn", k->arn);
	ENSURE(ng != NULL, K_E_INTERNAL);
	if (retiring != NULL)
		json_object_set_new(ng, "RetiringPrincipal", json_string(retiring));
	if (json_is_object(cons) && json_object_size(cons) > 0)
		json_object_set(ng, "Constraints", cons);
	*out = ng;
	return K_OK;
}

/* The grant's token: it names the key's account, the key and the grant. */
static void grant_token(struct api_ctx *c, const struct kms_key *k, const char *gid,
			struct kbuf *token)
{
	const char *key_account = json_string_value(json_object_get(k->doc, "AWSAccountId"));
	make_token(key_account ? key_account : c->principal.account, k->id, gid, token);
}

/*
 * The grant CreateGrant makes, or the one it returns: "When this value
 * [Name] is present, ... CreateGrant ... returns the existing grant" when
 * the principals, operations and constraints match too. "Grants per KMS
 * key: 50,000" (AWS KMS resource quotas); AWS's quotas page sets no
 * separate limit per grantee. The refusal is worded as the service
 * model's LimitExceededException ("The request was rejected because a
 * quota was exceeded"), as the alias quota's is. Runs under the key's
 * grant lock.
 */
static K_MUST_CHECK k_status create_locked(struct api_ctx *c, struct kms_key *k, json_t *in,
					   json_t *ops, json_t *out)
{
	const char *name = json_string_value(json_object_get(in, "Name"));
	const char *grantee = json_string_value(json_object_get(in, "GranteePrincipal"));
	const char *retiring = json_string_value(json_object_get(in, "RetiringPrincipal"));
	size_t count = 0;
	bool same = false;
	char gid[KMS_GRANT_ID_LEN + 1];
	GUARD(kms_grants_census(k, name, grantee, retiring, kms_grant_ops_mask(ops),
				json_object_get(in, "Constraints"), &count, &same, gid));
	if (!same && count >= KMS_MAX_GRANTS_PER_KEY)
		return api_fail(c, K_E_LIMIT_EXCEEDED,
				"The request was rejected because the KMS key %s already has %d "
				"grants, the maximum number of grants per KMS key.",
				k->arn, KMS_MAX_GRANTS_PER_KEY);
	if (!same) {
		json_t *doc = NULL;
		GUARD(new_grant(c, k, in, ops, gid, &doc));
		k_status rc = kms_grants_put(k, doc);
		json_decref(doc);
		GUARD(rc);
	}
	struct kbuf token;
	kbuf_init(&token, KMS_GRANT_TOKEN_MAX);
	grant_token(c, k, gid, &token);
	json_object_set_new(out, "GrantId", json_string(gid));
	json_object_set_new(out, "GrantToken", json_string(kbuf_cstr(&token)));
	kbuf_release(&token);
	return K_OK;
}

/* CreateGrant (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html). */
k_status kms_op_create_grant(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *grantee, *retiring, *name;
	json_t *ops, *tokens;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD(api_string(c, in, "GranteePrincipal", true, 1, KMS_GRANT_PRINCIPAL_MAX, &grantee));
	GUARD(api_string(c, in, "RetiringPrincipal", false, 1, KMS_GRANT_PRINCIPAL_MAX, &retiring));
	GUARD(api_string_list(c, in, "Operations", 32, 1, 64, &ops));
	GUARD(api_string_list(c, in, "GrantTokens", 10, 1, 8192, &tokens));
	GUARD(api_string(c, in, "Name", false, 1, 256, &name));
	json_t *cons = json_object_get(in, "Constraints");
	GUARD(check_constraints(c, cons));
	GUARD(check_grant_members(c, ops, grantee, retiring, name));

	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	k_status rc = K_OK;
	if (k->state == KS_PENDING_DELETION) {
		rc = api_fail(c, K_E_INVALID_STATE, "%s is pending deletion.", k->arn);
		goto out;
	}
	GUARD_GOTO(dry_run(c, in));
	kms_grants_lock(k);
	rc = create_locked(c, k, in, ops, out);
	kms_grants_unlock(k);
out:
	kms_key_unref(k);
	return rc;
}

/* Whether the grant names the caller as one who may retire it. */
static bool may_retire(const struct api_ctx *c, const struct kms_grant_info *g)
{
	const char *role = c->principal.identity ? identity_role_arn(c->principal.identity) : NULL;
	const char *rp = g->retiring, *gp = g->grantee;
	if (rp[0] != 0 && (strcmp(rp, c->principal.arn) == 0 || (role && strcmp(rp, role) == 0)))
		return true;
	return (g->ops & kms_grant_op_bit("RetireGrant")) != 0 &&
	       (strcmp(gp, c->principal.arn) == 0 || (role && strcmp(gp, role) == 0));
}

/*
 * The grant's key: found without authorization, because who may retire
 * is the grant's business. A grant token names its key's account, which
 * may be another one.
 */
static K_MUST_CHECK k_status grant_key(struct api_ctx *c, const char *token_account,
				       const char *token_key, const char *key_id,
				       struct kms_key **k)
{
	if (token_account == NULL || strcmp(token_account, c->principal.account) == 0)
		return kms_resolve_key_noauth(c, key_id, false, k);
	char ns[64];
	snprintf(ns, sizeof ns, "%s:%s", token_account, c->region);
	k_status rc = kms_key_get(ns, token_key, k);
	if (k_is(rc, K_E_NOT_FOUND))
		return api_fail(c, K_E_NOT_FOUND, "Key '%s' does not exist", key_id);
	return rc;
}

/* One grant of the key, or NotFoundException as AWS words it. */
static K_MUST_CHECK k_status grant_of(struct api_ctx *c, const struct kms_key *k,
				      const char *grant_id, struct kms_grant_info *g)
{
	k_status rc = kms_grants_find(k, grant_id, g);
	if (k_is(rc, K_E_NOT_FOUND))
		return api_fail(c, K_E_NOT_FOUND, "Grant %.128s does not exist on %s", grant_id,
				k->arn);
	return rc;
}

/*
 * RetireGrant's grant (the pipeline's GRANT kind, kms/authz.h): by
 * GrantToken, or by KeyId and GrantId
 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_RetireGrant.html).
 * "The grant's retiring principal ... [or] the grantee principal, if the
 * grant allows the RetireGrant operation" may retire it; kinko also lets a
 * principal whose policies allow kms:RetireGrant on the key do so.
 */
k_status kms_resolve_grant(struct api_ctx *c, json_t *in, struct kms_grant_ref *out)
{
	const char *token, *key_id, *grant_id;
	memset(out, 0, sizeof *out);
	GUARD(api_string(c, in, "GrantToken", false, 1, 8192, &token));
	GUARD(api_string(c, in, "KeyId", false, 1, 2048, &key_id));
	GUARD(api_string(c, in, "GrantId", false, 1, 128, &grant_id));
	char t_account[13], t_key[37], t_grant[65];
	char key_ref[256];
	if (token != NULL) {
		if (!parse_token(token, t_account, t_key, t_grant))
			return api_fail(c, K_E_INVALID_GRANT_TOKEN, "Invalid grant token.");
		snprintf(key_ref, sizeof key_ref, "arn:aws:kms:%s:%s:key/%s", c->region, t_account,
			 t_key);
		key_id = key_ref;
		if (grant_id != NULL && strcmp(grant_id, t_grant) != 0)
			return api_fail(c, K_E_INVALID_GRANT_ID,
					"The GrantId does not match the grant token.");
		grant_id = t_grant;
	} else if (key_id == NULL || grant_id == NULL) {
		return api_fail(c, K_E_VALIDATION,
				"Either GrantToken or both KeyId and GrantId must be given.");
	}
	struct kms_key *k = NULL;
	GUARD(grant_key(c, token ? t_account : NULL, t_key, key_id, &k));
	struct kms_grant_info g;
	k_status rc = grant_of(c, k, grant_id, &g);
	if (k_ok(rc) && may_retire(c, &g))
		c->authorized = true; /* the grant names the caller as one who may retire it */
	else if (k_ok(rc))
		rc = authz_key_action(c, k, "kms:RetireGrant");
	if (k_failed(rc)) {
		kms_key_unref(k);
		return rc;
	}
	out->key = k;
	snprintf(out->grant_id, sizeof out->grant_id, "%s", grant_id);
	return K_OK;
}

/* Deletes one grant of k, under the key's grant lock; DryRun stops before. */
static K_MUST_CHECK k_status delete_grant(struct api_ctx *c, json_t *in, const struct kms_key *k,
					  const char *grant_id)
{
	kms_grants_lock(k);
	struct kms_grant_info g;
	k_status rc = grant_of(c, k, grant_id, &g);
	if (k_ok(rc))
		rc = dry_run(c, in);
	if (k_ok(rc))
		rc = kms_grants_delete(k, &g);
	kms_grants_unlock(k);
	return rc;
}

/* RetireGrant: the grant, resolved and authorized by the pipeline, leaves its key. */
k_status kms_op_retire_grant(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)out;
	struct kms_grant_ref ref;
	GUARD(kms_op_grant(c, &ref));
	k_status rc = delete_grant(c, in, ref.key, ref.grant_id);
	kms_grant_ref_release(&ref);
	return rc;
}

/* RevokeGrant (https://docs.aws.amazon.com/kms/latest/APIReference/API_RevokeGrant.html). */
k_status kms_op_revoke_grant(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)out;
	const char *key_id, *grant_id;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD(api_string(c, in, "GrantId", true, 1, 128, &grant_id));
	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	k_status rc = delete_grant(c, in, k, grant_id);
	kms_key_unref(k);
	return rc;
}
