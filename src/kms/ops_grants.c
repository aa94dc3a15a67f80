/*
 * ops_grants.c — CreateGrant, ListGrants, ListRetirableGrants, RetireGrant,
 * RevokeGrant.
 *
 * A key's grants live in its document ("Grants": [...]) so that every
 * snapshot carries them and authorization (kms/authz.h) reads no storage.
 * Each grant: GrantId (64 hex), Name, GranteePrincipal, RetiringPrincipal,
 * Operations, Constraints, CreationDate, IssuingAccount, and its token.
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
#include "kms/kms.h"
#include "kms/store.h"
#include "policy/policy.h"
#include "core/json.h"
#include "core/arn.h"
#include "core/banned.h"

/*
 * Grants per key: AWS allows 50,000; kinko keeps them in the key record,
 * whose document the store caps at STORAGE_MAX_DOC (about 2,500 grants of
 * some 400 bytes), and rewrites it whole on every change (docs/AUTHORIZATION.md,
 * "Limits").
 */
#define MAX_GRANTS_PER_KEY 1000
/* "Grants for a given principal per KMS key: 500" (AWS KMS resource quotas). */
#define MAX_GRANTS_PER_GRANTEE 500
/*
 * A grant token's text and its decoded bytes: "kgt1" + account + key id +
 * grant id is 116 bytes, 156 in base64url.
 */
#define KMS_GRANT_TOKEN_MAX 512

static const char *const grant_ops[] = {"Decrypt",
					"Encrypt",
					"GenerateDataKey",
					"GenerateDataKeyWithoutPlaintext",
					"ReEncryptFrom",
					"ReEncryptTo",
					"Sign",
					"Verify",
					"GetPublicKey",
					"CreateGrant",
					"RetireGrant",
					"DescribeKey",
					"GenerateDataKeyPair",
					"GenerateDataKeyPairWithoutPlaintext",
					"GenerateMac",
					"VerifyMac",
					"DeriveSharedSecret",
					NULL};

static K_MUST_CHECK k_status dry_run(struct api_ctx *c, json_t *in)
{
	bool present, dry = false;
	GUARD(api_bool(c, in, "DryRun", &present, &dry));
	return dry ? K_E_DRY_RUN : K_OK;
}

/* A grantee or retiring principal: an IAM principal ARN or a service principal. */
static bool valid_grant_principal(const char *p)
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

static bool same_json(const json_t *a, const json_t *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return json_equal((json_t *)a, (json_t *)b) != 0;
}

/* The grant as ListGrants shows it (no token). */
static json_t *grant_entry(const struct kms_key *k, const json_t *g)
{
	json_t *e = json_object();
	json_object_set_new(e, "KeyId", json_string(k->arn));
	static const char *const members[] = {"GrantId",
					      "Name",
					      "CreationDate",
					      "GranteePrincipal",
					      "RetiringPrincipal",
					      "IssuingAccount",
					      "Operations",
					      "Constraints",
					      NULL};
	for (size_t i = 0; members[i] != NULL; i++) {
		json_t *v = json_object_get(g, members[i]);
		if (v != NULL)
			json_object_set(e, members[i], v);
	}
	return e;
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
		for (size_t j = 0; grant_ops[j] != NULL && !known; j++)
			known = strcmp(grant_ops[j], json_string_value(o)) == 0;
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
	if (!valid_grant_principal(grantee))
		return api_fail(c, K_E_VALIDATION, "%s is not a valid grantee principal.", grantee);
	if (retiring != NULL && !valid_grant_principal(retiring))
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
 * "Name ... When this value is present, CreateGrant ... returns the
 * existing grant" when all else matches: that grant of the key, or NULL.
 */
static json_t *same_named_grant(json_t *grants, json_t *in, const char *name, json_t *ops,
				json_t *cons)
{
	size_t i;
	json_t *g;
	if (name == NULL)
		return NULL;
	json_array_foreach(grants, i, g)
	{
		if (same_json(json_object_get(g, "Name"), json_object_get(in, "Name")) &&
		    same_json(json_object_get(g, "GranteePrincipal"),
			      json_object_get(in, "GranteePrincipal")) &&
		    same_json(json_object_get(g, "RetiringPrincipal"),
			      json_object_get(in, "RetiringPrincipal")) &&
		    same_json(json_object_get(g, "Operations"), ops) &&
		    same_json(json_object_get(g, "Constraints"),
			      json_is_object(cons) ? cons : NULL))
			return g;
	}
	return NULL;
}

/* The grant entry to store: a fresh GrantId (64 hex) in gid, its token, the request's members. */
static K_MUST_CHECK k_status new_grant(struct api_ctx *c, const struct kms_key *k, json_t *in,
				       json_t *ops, char gid[65], struct kbuf *token, json_t **out)
{
	const char *key_account = json_string_value(json_object_get(k->doc, "AWSAccountId"));
	const char *name = json_string_value(json_object_get(in, "Name"));
	const char *retiring = json_string_value(json_object_get(in, "RetiringPrincipal"));
	json_t *cons = json_object_get(in, "Constraints");
	uint8_t rnd[32];
	GUARD(crypto_random(rnd, sizeof rnd));
	for (size_t j = 0; j < 32; j++)
		snprintf(gid + 2 * j, 3, "%02x", rnd[j]);
	make_token(key_account ? key_account : c->principal.account, k->id, gid, token);
	char issuing[K_ARN_BUF];
	struct k_arn issuer = k_arn_of("iam", "", c->principal.account, K_ARN_ROOT, NULL);
	k_arn_format(&issuer, issuing, sizeof issuing);
	json_t *ng = json_pack("{s:s, s:s, s:O, s:o, s:s, s:O, s:s}", "GrantId", gid, "Name",
			       name ? name : "", "GranteePrincipal",
			       json_object_get(in, "GranteePrincipal"), "CreationDate",
			       kjson_date(api_now_ms(c)), "IssuingAccount", issuing, "Operations",
			       ops, "Token", kbuf_cstr(token));
	ENSURE(ng != NULL, K_E_INTERNAL);
	if (retiring != NULL)
		json_object_set_new(ng, "RetiringPrincipal", json_string(retiring));
	if (json_is_object(cons) && json_object_size(cons) > 0)
		json_object_set(ng, "Constraints", cons);
	*out = ng;
	return K_OK;
}

/* Stores the key with grant ng (taken) added to its Grants. */
static K_MUST_CHECK k_status add_grant(struct kms_key *k, json_t *ng)
{
	json_t *doc = json_deep_copy(k->doc);
	if (doc == NULL) {
		json_decref(ng);
		return K_E_INTERNAL;
	}
	json_t *list = json_object_get(doc, "Grants");
	if (!json_is_array(list)) {
		list = json_array();
		json_object_set_new(doc, "Grants", list);
	}
	json_array_append_new(list, ng);
	return kms_key_update(k, doc, NULL, NULL);
}

/* How many of a key's grants name this grantee. */
static size_t grants_of(const json_t *grants, const char *grantee)
{
	size_t n = 0, i;
	const json_t *g;
	json_array_foreach(grants, i, g)
	{
		const char *gp = json_string_value(json_object_get(g, "GranteePrincipal"));
		n += gp != NULL && strcmp(gp, grantee) == 0;
	}
	return n;
}

/* CreateGrant (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html). */
k_status kms_op_create_grant(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *grantee, *retiring, *name;
	json_t *ops, *tokens;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD(api_string(c, in, "GranteePrincipal", true, 1, 256, &grantee));
	GUARD(api_string(c, in, "RetiringPrincipal", false, 1, 256, &retiring));
	GUARD(api_string_list(c, in, "Operations", 32, 1, 64, &ops));
	GUARD(api_string_list(c, in, "GrantTokens", 10, 1, 8192, &tokens));
	GUARD(api_string(c, in, "Name", false, 1, 256, &name));
	json_t *cons = json_object_get(in, "Constraints");
	GUARD(check_constraints(c, cons));
	GUARD(check_grant_members(c, ops, grantee, retiring, name));

	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	k_status rc = K_OK;
	struct kbuf token;
	kbuf_init(&token, KMS_GRANT_TOKEN_MAX);
	if (k->state == KS_PENDING_DELETION) {
		rc = api_fail(c, K_E_INVALID_STATE, "%s is pending deletion.", k->arn);
		goto out;
	}
	GUARD_GOTO(dry_run(c, in));
	json_t *grants = json_object_get(k->doc, "Grants");
	json_t *g = same_named_grant(grants, in, name, ops, cons);
	if (g != NULL) {
		json_object_set(out, "GrantId", json_object_get(g, "GrantId"));
		json_object_set(out, "GrantToken", json_object_get(g, "Token"));
		goto out;
	}
	if (json_array_size(grants) >= MAX_GRANTS_PER_KEY) {
		rc = api_fail(c, K_E_LIMIT_EXCEEDED, "The key %s already has %d grants.", k->arn,
			      MAX_GRANTS_PER_KEY);
		goto out;
	}
	if (grants_of(grants, grantee) >= MAX_GRANTS_PER_GRANTEE) {
		rc = api_fail(c, K_E_LIMIT_EXCEEDED,
			      "The key %s already has %d grants for the principal %s.", k->arn,
			      MAX_GRANTS_PER_GRANTEE, grantee);
		goto out;
	}
	char gid[65];
	json_t *ng = NULL;
	GUARD_GOTO(new_grant(c, k, in, ops, gid, &token, &ng));
	GUARD_GOTO(add_grant(k, ng));
	json_object_set_new(out, "GrantId", json_string(gid));
	json_object_set_new(out, "GrantToken", json_string(kbuf_cstr(&token)));
out:
	kbuf_release(&token);
	kms_key_unref(k);
	return rc;
}

/* Limit/Marker paging over a list of grant entries; the marker is an offset. */
static K_MUST_CHECK k_status page(struct api_ctx *c, json_t *in, size_t *start, size_t *limit)
{
	int64_t lim = 50;
	bool has_limit;
	const char *marker;
	GUARD(api_int(c, in, "Limit", false, 1, 100, &has_limit, &lim));
	GUARD(api_string(c, in, "Marker", false, 1, 320, &marker));
	*start = 0;
	if (marker != NULL) {
		char *end = NULL;
		unsigned long long v = strtoull(marker, &end, 10);
		if (end == NULL || *end != 0 || marker[0] == '-' || v > 10000000)
			return api_fail(c, K_E_INVALID_MARKER, "Invalid marker: %.64s", marker);
		*start = (size_t)v;
	}
	*limit = (size_t)lim;
	return K_OK;
}

static void finish_page(json_t *out, json_t *all, size_t start, size_t limit)
{
	json_t *grants = json_array();
	size_t n = json_array_size(all);
	for (size_t i = start; i < n && i < start + limit; i++)
		json_array_append(grants, json_array_get(all, i));
	json_object_set_new(out, "Grants", grants);
	bool more = start + limit < n;
	json_object_set_new(out, "Truncated", json_boolean(more));
	if (more) {
		char m[32];
		snprintf(m, sizeof m, "%zu", start + limit);
		json_object_set_new(out, "NextMarker", json_string(m));
	}
}

/* ListGrants (https://docs.aws.amazon.com/kms/latest/APIReference/API_ListGrants.html). */
k_status kms_op_list_grants(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *grant_id, *grantee;
	size_t start, limit;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD(api_string(c, in, "GrantId", false, 1, 128, &grant_id));
	GUARD(api_string(c, in, "GranteePrincipal", false, 1, 256, &grantee));
	GUARD(page(c, in, &start, &limit));
	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	json_t *all = json_array();
	size_t i;
	json_t *g;
	json_array_foreach(json_object_get(k->doc, "Grants"), i, g)
	{
		if (grant_id != NULL &&
		    strcmp(grant_id, json_string_value(json_object_get(g, "GrantId"))) != 0)
			continue;
		if (grantee != NULL &&
		    strcmp(grantee, json_string_value(json_object_get(g, "GranteePrincipal"))) != 0)
			continue;
		json_array_append_new(all, grant_entry(k, g));
	}
	finish_page(out, all, start, limit);
	json_decref(all);
	kms_key_unref(k);
	return K_OK;
}

struct retirable {
	const char *principal;
	const char *ns;
	json_t *all;
};

static K_MUST_CHECK k_status retirable_cb(void *arg, const char *ns, const char *id,
					  struct kslice doc, int64_t version)
{
	struct retirable *st = arg;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	json_t *grants = json_object_get(j, "Grants");
	const char *arn = json_string_value(json_object_get(j, "Arn"));
	size_t i;
	json_t *g;
	json_array_foreach(grants, i, g)
	{
		const char *rp = json_string_value(json_object_get(g, "RetiringPrincipal"));
		if (rp == NULL || arn == NULL || strcmp(rp, st->principal) != 0)
			continue;
		json_t *e = json_object();
		json_object_set_new(e, "KeyId", json_string(arn));
		static const char *const members[] = {"GrantId",
						      "Name",
						      "CreationDate",
						      "GranteePrincipal",
						      "RetiringPrincipal",
						      "IssuingAccount",
						      "Operations",
						      "Constraints",
						      NULL};
		for (size_t m = 0; members[m] != NULL; m++) {
			json_t *v = json_object_get(g, members[m]);
			if (v != NULL)
				json_object_set(e, members[m], v);
		}
		json_array_append_new(st->all, e);
	}
	json_decref(j);
	return K_OK;
}

/*
 * ListRetirableGrants (https://docs.aws.amazon.com/kms/latest/APIReference/API_ListRetirableGrants.html):
 * the grants, on the keys of the caller's account and Region, whose
 * RetiringPrincipal is the given principal.
 */
k_status kms_op_list_retirable_grants(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *principal;
	size_t start, limit;
	GUARD(api_string(c, in, "RetiringPrincipal", true, 1, 256, &principal));
	GUARD(page(c, in, &start, &limit));
	if (!valid_grant_principal(principal))
		return api_fail(c, K_E_INVALID_ARN, "Invalid principal: %.256s", principal);
	struct retirable st = {.principal = principal, .ns = c->ns, .all = json_array()};
	ENSURE(st.all != NULL, K_E_INTERNAL);
	k_status rc =
		storage_list(kms_store(), "key", c->ns, NULL, NULL, 100000, retirable_cb, &st);
	if (k_ok(rc))
		finish_page(out, st.all, start, limit);
	json_decref(st.all);
	return rc;
}

/* Writes the key without the grant at index `idx`. */
static K_MUST_CHECK k_status remove_grant(struct kms_key *k, size_t idx)
{
	json_t *doc = json_deep_copy(k->doc);
	ENSURE(doc != NULL, K_E_INTERNAL);
	json_array_remove(json_object_get(doc, "Grants"), idx);
	return kms_key_update(k, doc, NULL, NULL);
}

static bool find_grant(const struct kms_key *k, const char *grant_id, size_t *idx, json_t **g)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(k->doc, "Grants"), i, e)
	{
		const char *id = json_string_value(json_object_get(e, "GrantId"));
		if (id != NULL && strcmp(id, grant_id) == 0) {
			*idx = i;
			*g = e;
			return true;
		}
	}
	return false;
}

/* Whether the grant names the caller as one who may retire it. */
static bool may_retire(const struct api_ctx *c, const json_t *g)
{
	const char *rp = json_string_value(json_object_get(g, "RetiringPrincipal"));
	const char *gp = json_string_value(json_object_get(g, "GranteePrincipal"));
	const char *role = c->principal.identity ? identity_role_arn(c->principal.identity) : NULL;
	bool may = rp != NULL &&
		   (strcmp(rp, c->principal.arn) == 0 || (role && strcmp(rp, role) == 0));
	if (!may && gp != NULL &&
	    (strcmp(gp, c->principal.arn) == 0 || (role && strcmp(gp, role) == 0))) {
		size_t i;
		json_t *o;
		json_array_foreach(json_object_get(g, "Operations"), i, o)
		{
			may = may || strcmp(json_string_value(o), "RetireGrant") == 0;
		}
	}
	return may;
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
	size_t idx;
	json_t *g;
	k_status rc = K_OK;
	if (!find_grant(k, grant_id, &idx, &g))
		rc = api_fail(c, K_E_NOT_FOUND, "Grant %.128s does not exist on %s", grant_id,
			      k->arn);
	else if (may_retire(c, g))
		c->authorized = true; /* the grant names the caller as one who may retire it */
	else
		rc = authz_key_action(c, k, "kms:RetireGrant");
	if (k_failed(rc)) {
		kms_key_unref(k);
		return rc;
	}
	out->key = k;
	snprintf(out->grant_id, sizeof out->grant_id, "%s", grant_id);
	return K_OK;
}

/* RetireGrant: the grant, resolved and authorized by the pipeline, leaves its key. */
k_status kms_op_retire_grant(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)out;
	struct kms_grant_ref ref;
	GUARD(kms_op_grant(c, &ref));
	size_t idx;
	json_t *g;
	k_status rc = K_OK;
	if (!find_grant(ref.key, ref.grant_id, &idx, &g))
		rc = api_fail(c, K_E_NOT_FOUND, "Grant %.128s does not exist on %s", ref.grant_id,
			      ref.key->arn);
	if (k_ok(rc))
		rc = dry_run(c, in);
	if (k_ok(rc))
		rc = remove_grant(ref.key, idx);
	kms_grant_ref_release(&ref);
	return rc;
}

/* RevokeGrant (https://docs.aws.amazon.com/kms/latest/APIReference/API_RevokeGrant.html). */
k_status kms_op_revoke_grant(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *grant_id;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD(api_string(c, in, "GrantId", true, 1, 128, &grant_id));
	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	k_status rc = K_OK;
	size_t idx;
	json_t *g;
	if (!find_grant(k, grant_id, &idx, &g)) {
		rc = api_fail(c, K_E_NOT_FOUND, "Grant %.128s does not exist on %s", grant_id,
			      k->arn);
		goto out;
	}
	GUARD_GOTO(dry_run(c, in));
	GUARD_GOTO(remove_grant(k, idx));
out:
	kms_key_unref(k);
	return rc;
}
