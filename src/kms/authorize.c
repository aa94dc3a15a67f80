/*
 * authorize.c — the pipeline's authorization step for KMS (see authz.h):
 * the resource an operation names (an alias, a key, a ciphertext's key, a
 * grant) found once, checked with authz.c's decision, and handed to the
 * handler.
 */
#include "kms/authz.h"

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/json.h"
#include "core/log.h"
#include "kms/kms.h"
#include "kms/store.h"
#include "core/arn.h"
#include "core/banned.h"

/*
 * Alias operations need the action on the alias too
 * (https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html),
 * and UpdateAlias and DeleteAlias also on the key the alias points at now
 * (the handler authorizes a new target as it resolves it).
 */
static K_MUST_CHECK k_status authorize_alias(struct api_ctx *c, json_t *in)
{
	const char *alias = json_string_value(json_object_get(in, c->op->member));
	if (alias == NULL || strncmp(alias, "alias/", 6) != 0) {
		/* The handler reports the validation error; nothing is done. */
		c->authorized = true;
		return K_OK;
	}
	char arn[512];
	struct k_arn alias_arn =
		k_arn_of("kms", c->region, c->principal.account, K_ARN_ALIAS, alias + 6);
	k_arn_format(&alias_arn, arn, sizeof arn);
	GUARD(authz_identity(c, c->op->action, arn));
	/*
	 * An alias/aws/ name is refused by the handler whatever it points
	 * at (NotAuthorizedException): the answer must not depend on
	 * whether the AWS managed key exists yet, whose key policy allows
	 * no alias change.
	 */
	if (kms_alias_reserved(alias))
		return K_OK;
	char target[37];
	struct kms_key *cur = NULL;
	if (strcmp(c->op->name, "CreateAlias") == 0 ||
	    k_failed(kms_alias_lookup(c->ns, alias, target)) ||
	    k_failed(kms_key_get(c->ns, target, &cur)))
		return K_OK; /* the handler reports a missing alias */
	k_status rc = authz_key_action(c, cur, c->op->action);
	kms_key_unref(cur);
	return rc;
}

/*
 * Key policy operations: "Cross-account use: No. You cannot perform this
 * operation on a KMS key in a different Amazon Web Services account."
 * A key ARN of another account does not resolve for them.
 */
static K_MUST_CHECK k_status resolve_own(struct api_ctx *c, const char *key_id,
					 struct kms_key **out)
{
	struct k_arn a;
	if (k_arn_parse_cstr(key_id, &a) && kslice_eq_cstr(a.partition, "aws") &&
	    kslice_eq_cstr(a.service, "kms") && kslice_eq_cstr(a.region, c->region) &&
	    a.account.len == K_ARN_ACCOUNT_LEN && !kslice_eq_cstr(a.account, c->principal.account))
		return api_fail(c, K_E_NOT_FOUND, "Key '%s' does not exist", key_id);
	return kms_resolve_key(c, key_id, false, out);
}

/*
 * The row's key: KeyId validated as the service model has it, resolved,
 * authorized with the row's action (kms_resolve_key), and checked against
 * the row's key-state rule. Left in c->resource for kms_op_key.
 */
static K_MUST_CHECK k_status authorize_key(struct api_ctx *c, json_t *in)
{
	const struct api_operation *op = c->op;
	const char *key_id;
	GUARD(api_string(c, in, op->member, true, 1, 2048, &key_id));
	struct kms_key *k = NULL;
	if (op->resource == API_RES_OWN_KEY)
		GUARD(resolve_own(c, key_id, &k));
	else
		GUARD(kms_resolve_key(c, key_id, op->resource == API_RES_KEY_OR_ALIAS, &k));
	k_status rc = kms_check_state_rule(c, k, op->state);
	if (k_failed(rc)) {
		kms_key_unref(k);
		return rc;
	}
	c->resource = k;
	return K_OK;
}

/*
 * Decrypt's key: the one its ciphertext names, or its KeyId (both must
 * agree), resolved and authorized by kms_resolve_ciphertext (ops_crypto.c)
 * and checked against the row's key-state rule. Left in c->resource for
 * kms_op_key.
 */
static K_MUST_CHECK k_status authorize_ciphertext(struct api_ctx *c, json_t *in)
{
	struct kms_key *k = NULL;
	GUARD(kms_resolve_ciphertext(c, in, &k));
	k_status rc = kms_check_state_rule(c, k, c->op->state);
	if (k_failed(rc)) {
		kms_key_unref(k);
		return rc;
	}
	c->resource = k;
	return K_OK;
}

/*
 * A grant row's grant (kms_resolve_grant, ops_grants.c), checked against
 * the row's key-state rule on its key and left in c->resource for
 * kms_op_grant.
 */
static K_MUST_CHECK k_status authorize_grant(struct api_ctx *c, json_t *in)
{
	struct kms_grant_ref *g = calloc(1, sizeof *g);
	ENSURE(g != NULL, K_E_INTERNAL);
	k_status rc = kms_resolve_grant(c, in, g);
	if (k_ok(rc))
		rc = kms_check_state_rule(c, g->key, c->op->state);
	if (k_failed(rc)) {
		kms_grant_ref_release(g);
		free(g);
		return rc;
	}
	c->resource = g;
	return K_OK;
}

/*
 * The authorize hook: records the request's condition-key inputs, then
 * authorizes the row's resource. Operations that act on no key need the
 * action in an identity policy on Resource "*" ("To create a KMS key, you
 * need kms:CreateKey in an IAM policy"); key operations are authorized on
 * the key their row names (kms/authz.h, "The rules").
 */
k_status kms_authorize(struct api_ctx *c, json_t *in)
{
	c->authz.encryption_context = json_object_get(in, "EncryptionContext");
	c->authz.encryption_algorithm =
		json_string_value(json_object_get(in, "EncryptionAlgorithm"));
	c->authz.grant_tokens = json_object_get(in, "GrantTokens");
	c->authz.grant_operations = json_object_get(in, "Operations");
	c->authz.request_tags = json_object_get(in, "Tags");
	const char *kid = json_string_value(json_object_get(in, "KeyId"));
	struct k_arn kid_arn;
	if (kid != NULL && strncmp(kid, "alias/", 6) == 0)
		c->authz.request_alias = kid;
	else if (k_arn_parse_cstr(kid, &kid_arn) && kid_arn.kind == K_ARN_ALIAS)
		c->authz.request_alias =
			(const char *)kid_arn.resource.ptr; /* "alias/..." to the end */
	if (json_is_array(c->authz.grant_tokens))
		GUARD(authz_check_grant_tokens(c, c->authz.grant_tokens));
	switch (c->op->resource) {
	case API_RES_NONE:
		return authz_identity(c, c->op->action, "*");
	case API_RES_KEY:
	case API_RES_KEY_OR_ALIAS:
	case API_RES_OWN_KEY:
		return authorize_key(c, in);
	case API_RES_ALIAS:
		return authorize_alias(c, in);
	case API_RES_CIPHERTEXT:
	case API_RES_REENCRYPT:
		return authorize_ciphertext(c, in);
	case API_RES_GRANT:
		return authorize_grant(c, in);
	default:
		return K_E_INTERNAL;
	}
}

void kms_release_resource(struct api_ctx *c)
{
	if (c->op != NULL && c->op->resource == API_RES_GRANT && c->resource != NULL) {
		kms_grant_ref_release(c->resource);
		free(c->resource);
	} else {
		kms_key_unref(c->resource);
	}
	c->resource = NULL;
}

void kms_grant_ref_release(struct kms_grant_ref *g)
{
	kms_key_unref(g->key);
	g->key = NULL;
}

k_status kms_op_grant(struct api_ctx *c, struct kms_grant_ref *out)
{
	const struct kms_grant_ref *g = c->resource;
	ENSURE(g != NULL && g->key != NULL && c->op != NULL && c->op->resource == API_RES_GRANT,
	       K_E_INTERNAL);
	atomic_fetch_add(&g->key->refs, 1);
	*out = *g;
	return K_OK;
}

k_status kms_op_key(struct api_ctx *c, struct kms_key **out)
{
	struct kms_key *k = c->resource;
	ENSURE(k != NULL && c->op != NULL &&
		       (c->op->resource == API_RES_KEY || c->op->resource == API_RES_KEY_OR_ALIAS ||
			c->op->resource == API_RES_OWN_KEY ||
			c->op->resource == API_RES_CIPHERTEXT ||
			c->op->resource == API_RES_REENCRYPT),
	       K_E_INTERNAL);
	atomic_fetch_add(&k->refs, 1);
	*out = k;
	return K_OK;
}
