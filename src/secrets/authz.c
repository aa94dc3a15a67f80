/*
 * authz.c — Secrets Manager authorization: every operation is checked with
 * its IAM action (secretsmanager:<Operation>) against the caller's identity
 * policies and the secret's resource policy, with IAM's evaluation logic.
 *
 * The rules (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
 * https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples_cross.html):
 *   1. "An explicit deny in any of these policies overrides the allow."
 *   2. Same account: "Resource-based policies grant permissions to the
 *      principal that is specified in the policy" — the request is allowed
 *      when an identity policy or the resource policy allows it. The
 *      account root has every identity permission in its own account.
 *   3. Another account ("cross-account access"): "the resource-based
 *      policy in the trusting account and the identity-based policy in the
 *      trusted account must both allow the request", and the caller names
 *      the secret by its complete ARN. The secret's KMS key must let the
 *      caller decrypt (record.c): "you can't use the AWS managed key
 *      aws/secretsmanager for cross-account access".
 * Operations without a secret (ListSecrets, GetRandomPassword,
 * BatchGetSecretValue itself, ValidateResourcePolicy without SecretId) are
 * checked on Resource "*"; CreateSecret on the new secret's ARN;
 * BatchGetSecretValue also needs secretsmanager:GetSecretValue on each
 * secret (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_BatchGetSecretValue.html).
 *
 * Condition keys: aws:PrincipalArn, aws:PrincipalAccount, aws:CurrentTime,
 * aws:EpochTime, aws:RequestedRegion, aws:username, aws:userid,
 * aws:PrincipalType, aws:PrincipalTag/KEY (identity_policy_context),
 * aws:SourceIp, aws:SecureTransport, secretsmanager:ResourceTag/KEY and
 * aws:ResourceTag/KEY (the secret's tags), aws:RequestTag/KEY and
 * aws:TagKeys (the request's Tags / TagKeys), secretsmanager:SecretId,
 * secretsmanager:Name, secretsmanager:Description, secretsmanager:KmsKeyId,
 * secretsmanager:VersionId, secretsmanager:VersionStage,
 * secretsmanager:RotationLambdaARN, secretsmanager:BlockPublicPolicy,
 * secretsmanager:ForceDeleteWithoutRecovery,
 * secretsmanager:RecoveryWindowInDays
 * (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html).
 *
 * A resource policy is parsed by the IAM policy engine (policy/policy.h)
 * when it is checked; secrets have no snapshot cache to keep it in.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config/config.h"
#include "core/arn.h"
#include "core/log.h"
#include "policy/policy.h"
#include "secrets/internal.h"
#include "secrets/secrets.h"
#include "core/banned.h"

/*
 * The request body of the Secrets Manager request this thread is serving,
 * recorded by the authorize hook so that checks made later by the handler
 * (through sm_resolve_secret or sm_op_secret) can read the request's condition keys. It belongs to
 * the api_ctx it was recorded for and is used only with that one.
 */
static __thread const struct api_ctx *body_ctx;
static __thread const json_t *body_in;

static const json_t *request_body(const struct api_ctx *c)
{
	return body_ctx == c ? body_in : NULL;
}

/* Secrets Manager tags ({"Key","Value"}) in the engine's form ({"TagKey","TagValue"}). */
static json_t *engine_tags(const json_t *tags)
{
	if (!json_is_array(tags))
		return NULL;
	json_t *out = json_array();
	size_t i;
	const json_t *t;
	json_array_foreach(tags, i, t)
	{
		const char *k = json_string_value(json_object_get(t, "Key"));
		const char *v = json_string_value(json_object_get(t, "Value"));
		if (k != NULL && out != NULL)
			json_array_append_new(
				out, json_pack("{s:s, s:s}", "TagKey", k, "TagValue", v ? v : ""));
	}
	return out;
}

/* Everything one decision depends on. */
struct sm_inputs {
	struct api_ctx *c;
	const char *action;
	const char *resource;	     /* the secret ARN, or "*" */
	const char *owner;	     /* the secret's account; NULL: the caller's */
	const struct policy *rp;     /* the secret's resource policy, or NULL */
	const json_t *resource_tags; /* engine form, or NULL */
	const json_t *request_tags;  /* engine form, or NULL */
};

struct strbufs {
	char time[32];
	char epoch[24];
	char bools[3][8];
	char window[24];
};

static void add_bool(struct policy_req *r, const json_t *in, const char *member, const char *key,
		     char *buf, size_t n)
{
	const json_t *v = json_object_get(in, member);
	if (!json_is_boolean(v))
		return;
	snprintf(buf, n, "%s", json_is_true(v) ? "true" : "false");
	policy_req_add_str(r, key, buf);
}

static void fill_req(const struct sm_inputs *x, const char *role_arn, struct policy_req *r,
		     struct strbufs *b)
{
	struct api_ctx *c = x->c;
	memset(r, 0, sizeof *r);
	r->principal_arn = c->principal.arn;
	r->principal_account = c->principal.account;
	r->role_arn = role_arn;
	r->action = x->action;
	r->resource = x->resource;
	time_t t = (time_t)c->now;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(b->time, sizeof b->time, "%Y-%m-%dT%H:%M:%SZ", &tm);
	policy_req_add_str(r, "aws:CurrentTime", b->time);
	snprintf(b->epoch, sizeof b->epoch, "%lld", (long long)c->now);
	policy_req_add_str(r, "aws:EpochTime", b->epoch);
	policy_req_add_str(r, "aws:RequestedRegion", c->region[0] ? c->region : NULL);
	/* Session tags first: a session's tag wins over its role's tag of the same key. */
	identity_add_principal_tags(c->principal.identity, r);
	identity_policy_context(c->principal.identity, r);
	policy_req_add_str(r, "aws:PrincipalArn", role_arn ? role_arn : c->principal.arn);
	policy_req_add_str(r, "aws:PrincipalAccount", c->principal.account);
	if (c->req != NULL) {
		policy_req_add_str(r, "aws:SourceIp",
				   c->req->source_ip[0] ? c->req->source_ip : NULL);
		policy_req_add_str(r, "aws:SecureTransport", c->req->secure ? "true" : "false");
	}
	if (x->resource_tags != NULL) {
		policy_req_add(r, (struct policy_value){.key = "secretsmanager:ResourceTag/",
							.kind = PV_TAGS,
							.json = x->resource_tags});
		policy_req_add(r, (struct policy_value){.key = "aws:ResourceTag/",
							.kind = PV_TAGS,
							.json = x->resource_tags});
	}
	if (x->request_tags != NULL) {
		policy_req_add(r, (struct policy_value){.key = "aws:RequestTag/",
							.kind = PV_TAGS,
							.json = x->request_tags});
		policy_req_add(r, (struct policy_value){.key = "aws:TagKeys",
							.kind = PV_TAG_KEYS,
							.json = x->request_tags});
	}
	const json_t *in = request_body(c);
	if (in == NULL)
		return;
	const json_t *tag_keys = json_object_get(in, "TagKeys");
	if (x->request_tags == NULL && json_is_array(tag_keys))
		policy_req_add(r, (struct policy_value){.key = "aws:TagKeys",
							.kind = PV_JSON_LIST,
							.json = tag_keys});
	static const char *const strs[][2] = {
		{"SecretId", "secretsmanager:SecretId"},
		{"Name", "secretsmanager:Name"},
		{"Description", "secretsmanager:Description"},
		{"KmsKeyId", "secretsmanager:KmsKeyId"},
		{"VersionId", "secretsmanager:VersionId"},
		{"VersionStage", "secretsmanager:VersionStage"},
		{"RotationLambdaARN", "secretsmanager:RotationLambdaARN"},
	};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		policy_req_add_str(r, strs[i][1],
				   json_string_value(json_object_get(in, strs[i][0])));
	add_bool(r, in, "BlockPublicPolicy", "secretsmanager:BlockPublicPolicy", b->bools[0],
		 sizeof b->bools[0]);
	add_bool(r, in, "ForceDeleteWithoutRecovery", "secretsmanager:ForceDeleteWithoutRecovery",
		 b->bools[1], sizeof b->bools[1]);
	const json_t *w = json_object_get(in, "RecoveryWindowInDays");
	if (json_is_integer(w)) {
		snprintf(b->window, sizeof b->window, "%lld", (long long)json_integer_value(w));
		policy_req_add_str(r, "secretsmanager:RecoveryWindowInDays", b->window);
	}
}

enum sm_verdict {
	SV_ALLOW,
	SV_DENY_RESOURCE,
	SV_DENY_IDENTITY,
	SV_NO_RESOURCE,
	SV_NO_IDENTITY
};

static enum sm_verdict decide(const struct sm_inputs *x)
{
	struct api_ctx *c = x->c;
	const struct identity *id = c->principal.identity;
	const char *role_arn = id ? identity_role_arn(id) : NULL;
	struct policy_req req;
	struct strbufs b;
	fill_req(x, role_arn, &req, &b);

	bool id_allow = false;
	size_t n = identity_policy_count(id);
	for (size_t i = 0; i < n; i++) {
		struct policy_result ir;
		policy_evaluate(identity_policy(id, i), &req, &ir);
		if (ir.explicit_deny)
			return SV_DENY_IDENTITY;
		id_allow = id_allow || ir.allow_direct;
	}
	/* An STS session policy bounds its session: it must allow too (kms/authz.c). */
	const struct policy *sp = identity_session_policy(id);
	struct policy_result sr = {.allow_direct = true};
	if (sp != NULL)
		policy_evaluate(sp, &req, &sr);
	if (sr.explicit_deny)
		return SV_DENY_IDENTITY;
	if (!sr.allow_direct)
		return SV_NO_IDENTITY;
	struct policy_result rp = {
		.deny_index = -1, .allow_index = -1, .deny_sid = "", .allow_sid = ""};
	if (x->rp != NULL)
		policy_evaluate(x->rp, &req, &rp);
	if (rp.explicit_deny)
		return SV_DENY_RESOURCE;
	/* The root user has every identity permission in its own account. */
	bool identity_ok = id_allow || strcmp(c->principal.type, "Root") == 0;
	bool same = x->owner == NULL || strcmp(x->owner, c->principal.account) == 0;
	if (same)
		return identity_ok || rp.allow_direct ? SV_ALLOW : SV_NO_IDENTITY;
	if (!rp.allow_direct && !rp.allow_account)
		return SV_NO_RESOURCE;
	return identity_ok ? SV_ALLOW : SV_NO_IDENTITY;
}

/*
 * AWS's wording: "User: ARN is not authorized to perform: ACTION on
 * resource: ARN because no identity-based policy allows the ACTION action"
 * (or "... because no resource-based policy allows ...", "... with an
 * explicit deny in an identity-based policy", "... in a resource-based
 * policy").
 */
static K_MUST_CHECK k_status check(const struct sm_inputs *x)
{
	enum sm_verdict v = decide(x);
	if (v == SV_ALLOW) {
		x->c->authorized = true;
		return K_OK;
	}
	const char *why = v == SV_DENY_RESOURCE ? "with an explicit deny in a resource-based policy"
			  : v == SV_DENY_IDENTITY
				  ? "with an explicit deny in an identity-based policy"
			  : v == SV_NO_RESOURCE ? "because no resource-based policy allows the"
						: "because no identity-based policy allows the";
	bool expl = v == SV_DENY_RESOURCE || v == SV_DENY_IDENTITY;
	char msg[1400];
	snprintf(msg, sizeof msg,
		 "User: %s is not authorized to perform: %s on resource: %s %s%s%s%s",
		 x->c->principal.arn, x->action, x->resource, why, expl ? "" : " ",
		 expl ? "" : x->action, expl ? "" : " action");
	LOG_DEBUG("access denied: %s", msg);
	return api_fail(x->c, K_E_ACCESS_DENIED, "%s", msg);
}

/* The action of the check being made: the handler's override or the operation's. */
static const char *current_action(const struct api_ctx *c)
{
	if (c->authz.action != NULL && strncmp(c->authz.action, "secretsmanager:", 15) == 0)
		return c->authz.action;
	return c->op ? c->op->action : NULL;
}

/* A check without a secret (Resource "*" or a new secret's ARN). */
static K_MUST_CHECK k_status check_no_secret(struct api_ctx *c, const char *action,
					     const char *resource)
{
	const json_t *in = request_body(c);
	json_t *req_tags = engine_tags(in ? json_object_get(in, "Tags") : NULL);
	struct sm_inputs x = {
		.c = c, .action = action, .resource = resource, .request_tags = req_tags};
	k_status rc = check(&x);
	json_decref(req_tags);
	return rc;
}

k_status sm_authorize_new(struct api_ctx *c, const char *arn)
{
	const char *action = current_action(c);
	if (action == NULL)
		return K_OK;
	return check_no_secret(c, action, arn);
}

k_status sm_authorize_secret(struct api_ctx *c, const struct sm_secret *s)
{
	const char *action = current_action(c);
	if (action == NULL)
		return K_OK; /* an internal call outside any operation */
	char owner[13];
	snprintf(owner, sizeof owner, "%.12s", s->ns);
	struct policy *rp = NULL;
	const char *text = json_string_value(json_object_get(s->doc, "ResourcePolicy"));
	if (text != NULL && text[0] != 0) {
		struct kbuf msg;
		kbuf_init(&msg, KBUF_NOTE_MAX);
		if (k_failed(policy_parse(kslice_cstr(text), POLICY_RESOURCE, &rp, &msg)))
			LOG_WARN("secret %s has an unusable resource policy: %s", sm_arn(s),
				 kbuf_cstr(&msg));
		kbuf_release(&msg);
	}
	const json_t *in = request_body(c);
	json_t *res_tags = engine_tags(json_object_get(s->doc, "Tags"));
	json_t *req_tags = engine_tags(in ? json_object_get(in, "Tags") : NULL);
	struct sm_inputs x = {.c = c,
			      .action = action,
			      .resource = sm_arn(s),
			      .owner = owner,
			      .rp = rp,
			      .resource_tags = res_tags,
			      .request_tags = req_tags};
	k_status rc = check(&x);
	json_decref(res_tags);
	json_decref(req_tags);
	policy_free(rp);
	return rc;
}

/*
 * The service's authorize hook: records the request body for the checks'
 * condition keys and authorizes from the row (secrets/service.c).
 * Operations on no secret are checked on Resource "*". A SECRET row's
 * member is validated and resolved, the caller authorized on the secret
 * with the row's action and the row's state rule applied; the secret is
 * left in c->resource for sm_op_secret. A CUSTOM row that names a member
 * (ValidateResourcePolicy's optional SecretId) does the same when the
 * request holds it, and acts on no secret otherwise; a CUSTOM row without
 * one (CreateSecret, DeleteSecret) authorizes in its handler through
 * sm_authorize_new or sm_resolve_secret.
 */
k_status sm_authorize(struct api_ctx *c, json_t *in)
{
	body_ctx = c;
	body_in = in;
	c->authz.action = NULL;
	const struct api_operation *op = c->op;
	const char *id = NULL;
	switch (op->resource) {
	case API_RES_NONE:
		return check_no_secret(c, op->action, "*");
	case API_RES_CUSTOM:
		if (op->member == NULL)
			return K_OK;
		GUARD(api_string(c, in, op->member, false, 1, 2048, &id));
		if (id == NULL)
			return check_no_secret(c, op->action, "*");
		return sm_resolve_row(c, id);
	case API_RES_SECRET:
		GUARD(api_string(c, in, op->member, true, 1, 2048, &id));
		return sm_resolve_row(c, id);
	default:
		return K_E_INTERNAL;
	}
}

/* A Condition that limits who may use a statement naming every principal. */
static bool limits_principal(const json_t *cond)
{
	static const char *const keys[] = {"aws:PrincipalAccount",
					   "aws:PrincipalArn",
					   "aws:PrincipalOrgID",
					   "aws:PrincipalOrgPaths",
					   "aws:SourceAccount",
					   "aws:SourceArn",
					   "aws:SourceOwner",
					   "aws:SourceVpc",
					   "aws:SourceVpce",
					   "aws:userid",
					   "aws:username",
					   "kms:CallerAccount",
					   NULL};
	const char *op;
	const json_t *block;
	json_object_foreach((json_t *)cond, op, block)
	{
		/* Only positive, exact operators narrow the principal. */
		if (strncmp(op, "StringEquals", 12) != 0 && strncmp(op, "ArnEquals", 9) != 0 &&
		    strncmp(op, "StringLike", 10) != 0 && strncmp(op, "ArnLike", 7) != 0)
			continue;
		if (strstr(op, "IfExists") != NULL)
			continue;
		const char *k;
		const json_t *vals;
		json_object_foreach((json_t *)block, k, vals)
		{
			for (size_t i = 0; keys[i] != NULL; i++) {
				if (strcasecmp(k, keys[i]) != 0)
					continue;
				bool wild = false;
				size_t j;
				const json_t *e;
				if (json_is_string(vals))
					wild = strcmp(json_string_value(vals), "*") == 0;
				json_array_foreach(vals, j, e) wild =
					wild || (json_is_string(e) &&
						 strcmp(json_string_value(e), "*") == 0);
				if (!wild)
					return true;
			}
		}
	}
	return false;
}

static bool names_everyone(const json_t *pr)
{
	if (json_is_string(pr))
		return strcmp(json_string_value(pr), "*") == 0;
	const json_t *aws = json_object_get(pr, "AWS");
	if (json_is_string(aws))
		return strcmp(json_string_value(aws), "*") == 0;
	size_t i;
	const json_t *e;
	json_array_foreach(aws, i, e)
	{
		if (json_is_string(e) && strcmp(json_string_value(e), "*") == 0)
			return true;
	}
	return false;
}

/*
 * Resource policy validation: the policy engine's parser decides what is
 * a valid policy (MalformedPolicyDocumentException with its reason).
 * `public` is set when an Allow statement grants access to every
 * principal ("Principal": "*", {"AWS": "*"}, or NotPrincipal) without a
 * condition that narrows the principal to known accounts or sources:
 * "BlockPublicPolicy ... block resource-based policies that allow broad
 * access to the secret, for example those that use a wildcard for the
 * principal."
 * (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutResourcePolicy.html)
 */
k_status sm_check_resource_policy(struct api_ctx *c, const char *text, bool *public)
{
	*public = false;
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	struct policy *p = NULL;
	k_status rc = policy_parse(kslice_cstr(text), POLICY_RESOURCE, &p, &msg);
	if (k_failed(rc)) {
		rc = api_fail(c,
			      k_is(rc, K_E_LIMIT_EXCEEDED) ? K_E_SM_LIMIT_EXCEEDED
							   : K_E_SM_MALFORMED_POLICY,
			      "This resource policy contains a syntax error: %s",
			      msg.len ? kbuf_cstr(&msg) : "it is not a valid policy document.");
		kbuf_release(&msg);
		return rc;
	}
	kbuf_release(&msg);
	policy_free(p);
	json_t *doc = json_loads(text, 0, NULL);
	json_t *st = json_object_get(doc, "Statement");
	json_t *one = NULL;
	if (json_is_object(st)) {
		one = json_array();
		json_array_append(one, st);
		st = one;
	}
	size_t i;
	json_t *s;
	json_array_foreach(st, i, s)
	{
		const char *eff = json_string_value(json_object_get(s, "Effect"));
		if (eff == NULL || strcmp(eff, "Allow") != 0)
			continue;
		bool everyone = json_object_get(s, "NotPrincipal") != NULL ||
				names_everyone(json_object_get(s, "Principal"));
		if (everyone && !limits_principal(json_object_get(s, "Condition")))
			*public = true;
	}
	json_decref(one);
	json_decref(doc);
	return K_OK;
}

/*
 * The policy simulator's view (secrets.h): the same decide() a request
 * gets, for a principal named by its ARN, on a stored secret document (its
 * ARN, resource policy and tags) or on Resource "*".
 */
json_t *sm_simulate(const char *principal_arn, const struct identity *id, const json_t *secret_doc,
		    const char *action, const char *region)
{
	struct api_ctx c;
	memset(&c, 0, sizeof c);
	c.now = (int64_t)time(NULL);
	snprintf(c.region, sizeof c.region, "%s", region);
	snprintf(c.principal.arn, sizeof c.principal.arn, "%s", principal_arn);
	struct k_arn pa;
	if (k_arn_parse_cstr(principal_arn, &pa) && pa.account.len == K_ARN_ACCOUNT_LEN)
		memcpy(c.principal.account, pa.account.ptr, K_ARN_ACCOUNT_LEN);
	snprintf(c.principal.type, sizeof c.principal.type, "%s",
		 id != NULL							 ? identity_type(id)
		 : k_arn_parse_cstr(principal_arn, &pa) && pa.kind == K_ARN_ROOT ? "Root"
										 : "IAMUser");
	c.principal.identity = id;
	kbuf_init(&c.err_msg, API_ERROR_MESSAGE_MAX);
	const char *arn = json_string_value(json_object_get(secret_doc, "ARN"));
	char owner[13] = "";
	struct k_arn sa;
	if (arn != NULL && k_arn_parse_cstr(arn, &sa) && sa.account.len == K_ARN_ACCOUNT_LEN)
		memcpy(owner, sa.account.ptr, K_ARN_ACCOUNT_LEN);
	struct policy *rp = NULL;
	json_t *out = json_object();
	const char *text = json_string_value(json_object_get(secret_doc, "ResourcePolicy"));
	if (text != NULL) {
		struct kbuf msg;
		kbuf_init(&msg, KBUF_NOTE_MAX);
		if (k_failed(policy_parse(kslice_cstr(text), POLICY_RESOURCE, &rp, &msg)))
			json_object_set_new(out, "ResourcePolicyError",
					    json_string(kbuf_cstr(&msg)));
		kbuf_release(&msg);
	}
	json_t *tags = engine_tags(json_object_get(secret_doc, "Tags"));
	struct sm_inputs x = {.c = &c,
			      .action = action,
			      .resource = arn != NULL ? arn : "*",
			      .owner = owner[0] ? owner : NULL,
			      .rp = rp,
			      .resource_tags = tags};
	enum sm_verdict v = decide(&x);
	if (v == SV_ALLOW) {
		char why[1400];
		snprintf(why, sizeof why, "%s may perform %s on %s", principal_arn, action,
			 x.resource);
		json_object_set_new(out, "Reason", json_string(why));
	} else {
		k_ignore(check(&x)); /* writes AWS's refusal message into c.err_msg */
		json_object_set_new(out, "Reason", json_string(kbuf_cstr(&c.err_msg)));
	}
	json_object_set_new(out, "Decision",
			    json_string(v == SV_ALLOW ? "allowed"
					: v == SV_DENY_RESOURCE || v == SV_DENY_IDENTITY
						? "explicitDeny"
						: "implicitDeny"));
	json_object_set_new(out, "Resource", json_string(x.resource));
	json_decref(tags);
	policy_free(rp);
	kbuf_release(&c.err_msg);
	return out;
}
