/*
 * sts.c — GetCallerIdentity, AssumeRole, the session issuing the other
 * role-session operations share, and the operation table (see sts.h).
 */
#include "sts/sts.h"
#include "sts/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "req/req.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "policy/policy.h"
#include "core/arn.h"
#include "core/banned.h"

/*
 * GetCallerIdentity (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html):
 * "No permissions are required to perform this operation."
 */
static K_MUST_CHECK k_status sts_get_caller_identity(struct api_ctx *c, json_t *in, json_t *out)
{
	json_object_set_new(out, "UserId", json_string(c->principal.principal_id));
	json_object_set_new(out, "Account", json_string(c->principal.account));
	json_object_set_new(out, "Arn", json_string(c->principal.arn));
	return K_OK;
}

bool sts_valid_session_name(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || n > 64)
		return false;
	for (const char *p = s; *p; p++) {
		char ch = *p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || strchr("_+=,.@-", ch) != NULL;
		if (!ok)
			return false;
	}
	return true;
}

static K_MUST_CHECK k_status denied(struct api_ctx *c, const char *role_arn)
{
	return api_fail(c, K_E_ACCESS_DENIED,
			"User: %s is not authorized to perform: sts:AssumeRole on resource: %s",
			c->principal.arn, role_arn);
}

/*
 * Who may assume a role (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html):
 * an explicit Deny anywhere refuses; the trust policy must allow the
 * caller — naming it directly is enough in the role's own account; naming
 * the account (root) delegates to the caller's identity policies, which
 * must then allow sts:AssumeRole on the role. From another account both
 * the trust policy and the caller's identity policies must allow it.
 */
static bool may_assume(struct api_ctx *c, const struct identity *role, const char *role_arn,
		       const char *action, const char *session_name, const char *external_id,
		       const json_t *tags)
{
	struct policy_req req;
	memset(&req, 0, sizeof req);
	const struct identity *id = c->principal.identity;
	const char *caller_role = id ? identity_role_arn(id) : NULL;
	req.principal_arn = c->principal.arn;
	req.principal_account = c->principal.account;
	req.role_arn = caller_role;
	req.action = action;
	req.resource = role_arn;
	sts_req_add_request_tags(&req, tags);
	identity_add_principal_tags(id, &req);
	char now[32];
	time_t t = (time_t)c->now;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
	policy_req_add_str(&req, "aws:CurrentTime", now);
	policy_req_add_str(&req, "aws:PrincipalArn", caller_role ? caller_role : c->principal.arn);
	policy_req_add_str(&req, "aws:PrincipalAccount", c->principal.account);
	policy_req_add_str(&req, "aws:SourceIp", c->req->source_ip[0] ? c->req->source_ip : NULL);
	policy_req_add_str(&req, "aws:SecureTransport", c->req->secure ? "true" : "false");
	policy_req_add_str(&req, "sts:RoleSessionName", session_name);
	policy_req_add_str(&req, "sts:ExternalId", external_id);

	struct policy_result tr;
	policy_evaluate(role_trust_policy(role), &req, &tr);
	bool id_allow = strcmp(c->principal.type, "Root") == 0;
	for (size_t i = 0; i < identity_policy_count(id); i++) {
		struct policy_result ir;
		policy_evaluate(identity_policy(id, i), &req, &ir);
		if (ir.explicit_deny)
			return false;
		id_allow = id_allow || ir.allow_direct;
	}
	if (tr.explicit_deny)
		return false;
	struct k_arn role_parts;
	bool same = k_arn_parse_cstr(role_arn, &role_parts) &&
		    kslice_eq_cstr(role_parts.account, c->principal.account);
	if (same && tr.allow_direct)
		return true;
	return (tr.allow_direct || tr.allow_account) && id_allow;
}

/* AssumeRole (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html). */
static K_MUST_CHECK k_status sts_assume_role(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *role_arn, *session, *dur_s, *external_id, *policy;
	GUARD(api_string(c, in, "RoleArn", true, 20, 2048, &role_arn));
	GUARD(api_string(c, in, "RoleSessionName", true, 2, 64, &session));
	GUARD(api_string(c, in, "DurationSeconds", false, 1, 8, &dur_s));
	GUARD(api_string(c, in, "ExternalId", false, 2, 1224, &external_id));
	GUARD(api_string(c, in, "Policy", false, 1, 2048, &policy));
	GUARD(sts_check_session_args(c, session, policy, in));
	struct k_arn role_parts;
	GUARD(sts_parse_role_arn(c, role_arn, &role_parts));
	/* AWS: "You cannot call AssumeRole with the access key for the root user." */
	if (strcmp(c->principal.type, "Root") == 0)
		return api_fail(c, K_E_ACCESS_DENIED, "Roles may not be assumed by root accounts.");
	json_t *tags = NULL;
	GUARD(sts_read_tags(c, in, &tags));
	const struct identity *role = config_find_role(role_arn);
	/* Session tags need sts:TagSession too ("The role's trust policy must allow it"). */
	if (role == NULL ||
	    !may_assume(c, role, role_arn, "sts:AssumeRole", session, external_id, tags) ||
	    (tags != NULL &&
	     !may_assume(c, role, role_arn, "sts:TagSession", session, external_id, tags))) {
		json_decref(tags);
		return denied(c, role_arn);
	}
	c->authorized =
		true; /* the role's trust policy and the caller's identity policies allow it */
	int64_t duration;
	k_status rc = sts_duration(c, role, dur_s, &duration);
	if (k_ok(rc))
		rc = sts_issue_session(c, role, role_arn, &role_parts, session, duration, policy,
				       tags, out);
	json_decref(tags);
	return rc;
}

void sts_format_time(int64_t when, char *out, size_t n)
{
	time_t t = (time_t)when;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Whether a form member's name begins with `prefix` (list members: "PolicyArns.member.1.arn"). */
static bool has_member_prefix(json_t *in, const char *prefix)
{
	const char *k;
	json_t *v;
	json_object_foreach(in, k, v)
	{
		if (strncmp(k, prefix, strlen(prefix)) == 0)
			return true;
	}
	return false;
}

k_status sts_check_session_args(struct api_ctx *c, const char *session, const char *policy,
				json_t *in)
{
	if (!sts_valid_session_name(session))
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value '%.64s' at 'roleSessionName' "
				"failed to satisfy constraint: Member must satisfy regular "
				"expression pattern: [\\w+=,.@-]*",
				session);
	/* kinko has no managed policies for PolicyArns to name. */
	if (has_member_prefix(in, "PolicyArns."))
		return api_fail(c, K_E_VALIDATION,
				"PolicyArns names managed policies, which this server does not "
				"have; give the session policy inline in Policy.");
	return sts_check_session_policy(c, policy);
}

/*
 * A session policy (Policy): an identity policy of at most 2048
 * characters ("The plaintext that you use for both inline and managed
 * session policies can't exceed 2,048 characters", checked by api_string),
 * parsed now so that a malformed one is refused before a session exists.
 */
k_status sts_check_session_policy(struct api_ctx *c, const char *policy)
{
	if (policy == NULL)
		return K_OK;
	struct policy *p = NULL;
	struct kbuf why;
	kbuf_init(&why, KBUF_NOTE_MAX);
	k_status rc = policy_parse(kslice_cstr(policy), POLICY_IDENTITY, &p, &why);
	policy_free(p);
	if (k_failed(rc))
		rc = api_fail(c, K_E_MALFORMED_POLICY, "%s", kbuf_cstr(&why));
	kbuf_release(&why);
	return rc;
}

k_status sts_parse_role_arn(struct api_ctx *c, const char *role_arn, struct k_arn *parts)
{
	if (!k_arn_parse_cstr(role_arn, parts) || !kslice_eq_cstr(parts->partition, "aws") ||
	    !k_arn_is(parts, "iam", K_ARN_ROLE) || parts->region.len != 0 ||
	    parts->account.len != K_ARN_ACCOUNT_LEN)
		return api_fail(c, K_E_VALIDATION, "%s is invalid", role_arn);
	return K_OK;
}

/* DurationSeconds: 900 to 43200 by the model, and at most the role's MaxSessionDuration. */
k_status sts_duration(struct api_ctx *c, const struct identity *role, const char *dur_s,
		      int64_t *out)
{
	*out = 3600;
	if (dur_s != NULL) {
		char *end = NULL;
		long long v = strtoll(dur_s, &end, 10);
		if (end == NULL || *end != 0 || v < 900 || v > 43200)
			return api_fail(c, K_E_VALIDATION,
					"1 validation error detected: Value '%s' at "
					"'durationSeconds' failed to satisfy constraint: Member "
					"must have value greater than or equal to 900",
					dur_s);
		*out = v;
	}
	if (*out > role_max_session(role))
		return api_fail(c, K_E_VALIDATION,
				"The requested DurationSeconds exceeds the MaxSessionDuration set "
				"for this role.");
	return K_OK;
}

/*
 * A new session of `role` for `duration` seconds: made, kept in the
 * store (every node accepts it), and rendered as Credentials and
 * AssumedRoleUser.
 */
k_status sts_issue_session(struct api_ctx *c, const struct identity *role, const char *role_arn,
			   const struct k_arn *role_parts, const char *session, int64_t duration,
			   const char *policy, json_t *tags, json_t *out)
{
	int64_t expires = c->now + duration;
	struct config_session cs;
	GUARD(config_new_session(role, session, expires, policy, tags, &cs));
	k_status saved = sts_session_save(role_arn, session, &cs, expires, policy, tags);
	if (k_failed(saved)) {
		crypto_wipe(&cs, sizeof cs);
		return saved;
	}
	char exp[32];
	sts_format_time(expires, exp, sizeof exp);
	char arn[256], role_session[256];
	snprintf(role_session, sizeof role_session, "%.*s/%s", (int)role_parts->id.len,
		 (const char *)role_parts->id.ptr, session);
	struct k_arn assumed = k_arn_of("sts", "", NULL, K_ARN_ASSUMED_ROLE, role_session);
	assumed.account = role_parts->account;
	k_arn_format(&assumed, arn, sizeof arn);
	char rid[128];
	snprintf(rid, sizeof rid, "%s:%s", identity_unique_id(role), session);
	json_object_set_new(out, "Credentials",
			    json_pack("{s:s, s:s, s:s, s:s}", "AccessKeyId", cs.access_key,
				      "SecretAccessKey", cs.secret, "SessionToken", cs.token,
				      "Expiration", exp));
	json_object_set_new(out, "AssumedRoleUser",
			    json_pack("{s:s, s:s}", "AssumedRoleId", rid, "Arn", arn));
	/* "A percentage value that indicates the packed size of the session policies and session tags". */
	size_t packed = (policy ? strlen(policy) : 0) + sts_tags_size(tags);
	if (policy != NULL || tags != NULL)
		json_object_set_new(out, "PackedPolicySize",
				    json_integer((json_int_t)((packed * 100 + 2047) / 2048)));
	crypto_wipe(&cs, sizeof cs);
	return K_OK;
}

/*
 * The rows (req/req.h): AssumeRole is authorized by its handler against
 * the role's trust policy (CUSTOM); GetCallerIdentity and GetSessionToken
 * need no permission (PUBLIC: GetSessionToken's handler still refuses an
 * explicit Deny and session credentials). kinko applies no STS request quota.
 */
#define OP(nm, fn, res, mut, anon)                                                                 \
	{                                                                                          \
		.name = nm, .handler = fn, .action = "sts:" nm, .resource = res, .member = NULL,   \
		.state = API_STATE_NA, .quota = {NULL, API_QUOTA_NONE}, .mutates = mut,            \
		.key_use = false, .max_body = 0, .anonymous = anon                                 \
	}

static const struct api_operation sts_ops[] = {
	OP("AssumeRole", sts_assume_role, API_RES_CUSTOM, true, false),
	OP("AssumeRoleWithWebIdentity", sts_assume_role_with_web_identity, API_RES_CUSTOM, true,
	   true),
	OP("DecodeAuthorizationMessage", sts_decode_authorization_message, API_RES_CUSTOM, false,
	   false),
	OP("GetAccessKeyInfo", sts_get_access_key_info, API_RES_CUSTOM, false, false),
	OP("GetCallerIdentity", sts_get_caller_identity, API_RES_PUBLIC, false, false),
	OP("GetFederationToken", sts_get_federation_token, API_RES_CUSTOM, true, false),
	OP("GetSessionToken", sts_get_session_token, API_RES_PUBLIC, true, false),
};

static const struct api_service sts_service = {
	.target_prefix = "AWSSecurityTokenServiceV20110615.",
	.signing_name = "sts",
	.event_source = "sts.amazonaws.com",
	.ops = sts_ops,
	.n_ops = sizeof sts_ops / sizeof sts_ops[0],
	.resources = API_RES_BIT(API_RES_PUBLIC) | API_RES_BIT(API_RES_CUSTOM),
	.query_protocol = true,
	.xml_namespace = "https://sts.amazonaws.com/doc/2011-06-15/",
};

const struct api_service *sts_service_table(void)
{
	return &sts_service;
}
