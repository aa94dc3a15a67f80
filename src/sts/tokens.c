/*
 * tokens.c — the STS operations on the caller's own credentials:
 * GetSessionToken, GetAccessKeyInfo and DecodeAuthorizationMessage.
 */
#include "sts/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "policy/policy.h"
#include "sts/sts.h"
#include "core/banned.h"

/* The caller's identity policies on `action` and `resource`: *denied on an explicit Deny. */
static bool identity_decide_res(struct api_ctx *c, const char *action, const char *resource,
				bool *denied)
{
	const struct identity *id = c->principal.identity;
	struct policy_req req;
	memset(&req, 0, sizeof req);
	req.principal_arn = c->principal.arn;
	req.principal_account = c->principal.account;
	req.role_arn = id ? identity_role_arn(id) : NULL;
	req.action = action;
	req.resource = resource;
	policy_req_add_str(&req, "aws:PrincipalArn",
			   req.role_arn ? req.role_arn : req.principal_arn);
	policy_req_add_str(&req, "aws:PrincipalAccount", c->principal.account);
	bool allow = strcmp(c->principal.type, "Root") == 0;
	*denied = false;
	for (size_t i = 0; i < identity_policy_count(id); i++) {
		struct policy_result r;
		policy_evaluate(identity_policy(id, i), &req, &r);
		*denied = *denied || r.explicit_deny;
		allow = allow || r.allow_direct;
	}
	return allow && !*denied;
}

static bool identity_decide(struct api_ctx *c, const char *action, bool *denied)
{
	return identity_decide_res(c, action, "*", denied);
}

static bool identity_decide_on(struct api_ctx *c, const char *action, const char *resource)
{
	bool denied;
	return identity_decide_res(c, action, resource, &denied);
}

bool sts_identity_allows(struct api_ctx *c, const char *action)
{
	bool denied;
	return identity_decide(c, action, &denied);
}

static bool all_chars(const char *s, const char *extra, bool letters)
{
	for (const char *p = s; *p; p++) {
		char ch = *p;
		bool ok = (ch >= '0' && ch <= '9') ||
			  (extra != NULL && strchr(extra, ch) != NULL) ||
			  (letters && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')));
		if (!ok)
			return false;
	}
	return true;
}

/*
 * SerialNumber ([\w+=/:,.@-]*, 9..256) and TokenCode ([\d]*, exactly 6)
 * as the model states them. kinko keeps no MFA devices, so a well-formed
 * pair cannot be validated: it is refused as AWS refuses a code it
 * cannot check, never accepted unchecked.
 */
static K_MUST_CHECK k_status check_mfa(struct api_ctx *c, json_t *in)
{
	const char *serial, *code;
	GUARD(api_string(c, in, "SerialNumber", false, 9, 256, &serial));
	GUARD(api_string(c, in, "TokenCode", false, 6, 6, &code));
	if (serial != NULL && !all_chars(serial, "_+=/:,.@-", true))
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value '%s' at 'serialNumber' failed "
				"to satisfy constraint: Member must satisfy regular expression "
				"pattern: [\\w+=/:,.@-]*",
				serial);
	if (code != NULL && !all_chars(code, NULL, false))
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value at 'tokenCode' failed to "
				"satisfy constraint: Member must satisfy regular expression "
				"pattern: [\\d]*");
	if ((serial == NULL) != (code == NULL))
		return api_fail(c, K_E_VALIDATION,
				"SerialNumber and TokenCode must be given together.");
	if (serial != NULL)
		return api_fail(c, K_E_ACCESS_DENIED,
				"MultiFactorAuthentication failed, unable to validate MFA code. "
				"No MFA device %s is configured on this server.",
				serial);
	return K_OK;
}

/*
 * DurationSeconds: "from 900 seconds (15 minutes) up to a maximum of
 * 129,600 seconds (36 hours), with 43,200 seconds (12 hours) as the
 * default. Sessions for AWS account owners are restricted to a maximum
 * of 3,600 seconds (one hour)."
 */
static K_MUST_CHECK k_status session_duration(struct api_ctx *c, json_t *in, int64_t *out)
{
	bool root = strcmp(c->principal.type, "Root") == 0;
	const char *dur_s;
	GUARD(api_string(c, in, "DurationSeconds", false, 1, 8, &dur_s));
	*out = root ? 3600 : 43200;
	if (dur_s != NULL) {
		char *end = NULL;
		long long v = strtoll(dur_s, &end, 10);
		if (end == NULL || *end != 0 || v < 900 || v > 129600)
			return api_fail(c, K_E_VALIDATION,
					"1 validation error detected: Value '%s' at "
					"'durationSeconds' failed to satisfy constraint: Member "
					"must have value %s",
					dur_s,
					v < 900 ? "greater than or equal to 900"
						: "less than or equal to 129600");
		*out = v;
	}
	if (root && *out > 3600)
		*out = 3600;
	return K_OK;
}

static K_MUST_CHECK k_status issue(struct api_ctx *c, const char *name, int64_t duration,
				   const char *policy, json_t *out);

/*
 * GetSessionToken (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetSessionToken.html):
 * temporary credentials that act as the calling user (or account root),
 * with its policies. "You cannot call GetSessionToken with session
 * credentials": a caller using temporary credentials is refused.
 */
k_status sts_get_session_token(struct api_ctx *c, json_t *in, json_t *out)
{
	int64_t duration;
	GUARD(session_duration(c, in, &duration));
	GUARD(check_mfa(c, in));
	const struct identity *id = c->principal.identity;
	if (strncmp(c->principal.access_key, "ASIA", 4) == 0 || id == NULL)
		return api_fail(c, K_E_ACCESS_DENIED,
				"Cannot call GetSessionToken with session credentials");
	bool denied;
	(void)identity_decide(c, "sts:GetSessionToken", &denied);
	if (denied)
		return api_fail(c, K_E_ACCESS_DENIED,
				"User: %s is not authorized to perform: sts:GetSessionToken",
				c->principal.arn);
	return issue(c, "", duration, NULL, out);
}

/*
 * A session's credentials rendered, its record kept in the store (every
 * node accepts it) and its session policy attached first.
 */
static K_MUST_CHECK k_status issue(struct api_ctx *c, const char *name, int64_t duration,
				   const char *policy, json_t *out)
{
	int64_t expires = c->now + duration;
	struct config_session cs;
	GUARD(config_new_session(c->principal.identity, name, expires, policy, NULL, &cs));
	k_status rc = sts_session_save(c->principal.arn, name, &cs, expires, policy, NULL);
	if (k_ok(rc)) {
		char exp[32];
		sts_format_time(expires, exp, sizeof exp);
		json_object_set_new(out, "Credentials",
				    json_pack("{s:s, s:s, s:s, s:s}", "AccessKeyId", cs.access_key,
					      "SecretAccessKey", cs.secret, "SessionToken",
					      cs.token, "Expiration", exp));
	}
	crypto_wipe(&cs, sizeof cs);
	return rc;
}

/*
 * "If you do not pass a policy to this operation, the resulting federated
 * user session has no permissions": a policy that allows nothing.
 */
static const char no_permissions[] =
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"NotAction\":\"*\","
	"\"Resource\":\"*\"}]}";

/*
 * GetFederationToken (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetFederationToken.html):
 * a session for the federated user NAME (arn:aws:sts::ACCOUNT:federated-user/NAME)
 * whose permissions are those both the calling user's policies and the
 * session policy allow. The caller needs sts:GetFederationToken on that
 * ARN; "You cannot call the GetFederationToken operation using the
 * credentials of a temporary session".
 */
k_status sts_get_federation_token(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *name, *policy;
	GUARD(api_string(c, in, "Name", true, 2, 32, &name));
	GUARD(api_string(c, in, "Policy", false, 1, 2048, &policy));
	if (!sts_valid_session_name(name))
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value '%s' at 'name' failed to "
				"satisfy constraint: Member must satisfy regular expression "
				"pattern: [\\w+=,.@-]*",
				name);
	GUARD(sts_check_session_args(c, "session", policy, in));
	int64_t duration;
	GUARD(session_duration(c, in, &duration));
	char arn[128];
	snprintf(arn, sizeof arn, "arn:aws:sts::%s:federated-user/%s", c->principal.account, name);
	if (strncmp(c->principal.access_key, "ASIA", 4) == 0 || c->principal.identity == NULL)
		return api_fail(c, K_E_ACCESS_DENIED,
				"Cannot call GetFederationToken with session credentials");
	if (!identity_decide_on(c, "sts:GetFederationToken", arn))
		return api_fail(c, K_E_ACCESS_DENIED,
				"User: %s is not authorized to perform: sts:GetFederationToken on "
				"resource: %s",
				c->principal.arn, arn);
	c->authorized = true;
	GUARD(issue(c, name, duration, policy ? policy : no_permissions, out));
	char fid[64];
	snprintf(fid, sizeof fid, "%s:%s", c->principal.account, name);
	json_object_set_new(out, "FederatedUser",
			    json_pack("{s:s, s:s}", "FederatedUserId", fid, "Arn", arn));
	if (policy != NULL)
		json_object_set_new(
			out, "PackedPolicySize",
			json_integer((json_int_t)((strlen(policy) * 100 + 2047) / 2048)));
	return K_OK;
}

/*
 * GetAccessKeyInfo (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetAccessKeyInfo.html):
 * the account an access key id belongs to. AWS derives it from any key
 * id; kinko knows the accounts of its own keys only, and says so for
 * any other.
 */
k_status sts_get_access_key_info(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *ak;
	GUARD(api_string(c, in, "AccessKeyId", true, 16, 128, &ak));
	if (!all_chars(ak, "_", true))
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value at 'accessKeyId' failed to "
				"satisfy constraint: Member must satisfy regular expression "
				"pattern: [\\w]*");
	if (!sts_identity_allows(c, "sts:GetAccessKeyInfo"))
		return api_fail(c, K_E_ACCESS_DENIED,
				"User: %s is not authorized to perform: sts:GetAccessKeyInfo",
				c->principal.arn);
	c->authorized = true;
	char account[13];
	if (!config_access_key_account(ak, account))
		return api_fail(c, K_E_VALIDATION,
				"The access key ID %.128s is not known to this server.", ak);
	json_object_set_new(out, "Account", json_string(account));
	return K_OK;
}

/*
 * DecodeAuthorizationMessage (https://docs.aws.amazon.com/STS/latest/APIReference/API_DecodeAuthorizationMessage.html):
 * decodes the encoded authorization message some AWS services return
 * with a refusal. kinko's refusals carry their reason in plain words and
 * it encodes no messages, so no message is ever one of its own: after
 * the permission check, every message is InvalidAuthorizationMessageException.
 */
k_status sts_decode_authorization_message(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)out;
	const char *msg;
	GUARD(api_string(c, in, "EncodedMessage", true, 1, 10240, &msg));
	if (!sts_identity_allows(c, "sts:DecodeAuthorizationMessage"))
		return api_fail(c, K_E_ACCESS_DENIED,
				"User: %s is not authorized to perform: "
				"sts:DecodeAuthorizationMessage",
				c->principal.arn);
	c->authorized = true;
	return api_fail(c, K_E_STS_INVALID_AUTH_MESSAGE,
			"The authorization message is not valid: this server encodes no "
			"authorization messages.");
}
