/*
 * web_identity.c — AssumeRoleWithWebIdentity for OpenID Connect
 * providers (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html):
 * an ID token (a JWT) from a provider of the role's account buys a
 * session of the role, if the role's trust policy allows the provider.
 *
 * "Calling AssumeRoleWithWebIdentity does not require the use of AWS
 * security credentials": the request comes unsigned (the row is
 * anonymous) and the token is what is checked — its signature against
 * the provider's JWKS (crypto/jwt.h), its issuer, audience, expiry,
 * not-before, issue time and subject — before the trust policy.
 */
#include "sts/internal.h"

#include <stdio.h>
#include <string.h>

#include "config/oidc.h"
#include "crypto/jwt.h"
#include "policy/policy.h"
#include "core/banned.h"

/* How far a token's nbf and iat may lie ahead of kinko's clock (clock skew). */
#define STS_JWT_SKEW_S 300
/* IAM's condition key names: HOST/PATH:aud and HOST/PATH:sub. */
#define STS_OIDC_KEY_MAX (OIDC_URL_MAX + 8)

static K_MUST_CHECK k_status bad_token(struct api_ctx *c, const char *why)
{
	return api_fail(c, K_E_STS_INVALID_IDENTITY_TOKEN, "%s", why);
}

/* A numeric date claim; false when absent, *ok false when present but not a number. */
static bool date_claim(const json_t *claims, const char *name, int64_t *out, bool *ok)
{
	const json_t *v = json_object_get(claims, name);
	*ok = v == NULL || json_is_number(v);
	if (v == NULL || !json_is_number(v))
		return false;
	*out = (int64_t)json_number_value(v);
	return true;
}

/*
 * The time claims (RFC 7519 section 4.1): exp is required and must be
 * after now (ExpiredTokenException otherwise, as AWS answers); nbf and
 * iat, when present, must not be ahead of now by more than the skew.
 */
static K_MUST_CHECK k_status check_times(struct api_ctx *c, const json_t *claims)
{
	int64_t exp = 0, nbf = 0, iat = 0;
	bool ok_exp, ok_nbf, ok_iat;
	bool has_exp = date_claim(claims, "exp", &exp, &ok_exp);
	bool has_nbf = date_claim(claims, "nbf", &nbf, &ok_nbf);
	bool has_iat = date_claim(claims, "iat", &iat, &ok_iat);
	if (!has_exp || !ok_nbf || !ok_iat)
		return bad_token(c, "The token's exp claim is missing, or a date claim is not a "
				    "number.");
	if (c->now >= exp)
		return api_fail(c, K_E_STS_EXPIRED_WEB_TOKEN,
				"Token expired: current date/time %lld must be before the "
				"expiration date/time %lld",
				(long long)c->now, (long long)exp);
	if (has_nbf && nbf > c->now + STS_JWT_SKEW_S)
		return bad_token(c, "The token is not valid yet (nbf is in the future).");
	if (has_iat && iat > c->now + STS_JWT_SKEW_S)
		return bad_token(c, "The token was issued in the future (iat).");
	return K_OK;
}

/* The token's audience (a string or a list) must hold one of the provider's client ids. */
static const char *matching_audience(const json_t *claims, const struct oidc_provider *p)
{
	const json_t *aud = json_object_get(claims, "aud");
	if (json_is_string(aud))
		return oidc_provider_has_client(p, json_string_value(aud)) ? json_string_value(aud)
									   : NULL;
	size_t i;
	const json_t *a;
	json_array_foreach(aud, i, a)
	{
		if (json_is_string(a) && oidc_provider_has_client(p, json_string_value(a)))
			return json_string_value(a);
	}
	return NULL;
}

/*
 * The token's signature against the provider's key set. A key id the set
 * lacks (the provider may have rotated its keys) asks for one fresh fetch
 * of a jwks_url and tries again (jwks_fetch.c).
 */
static K_MUST_CHECK k_status verify_signature(const char *token, const struct oidc_provider *p)
{
	json_t *jwks = oidc_provider_jwks(p);
	k_status v = jwks != NULL ? jwt_verify(token, jwks) : K_E_NOT_FOUND;
	json_decref(jwks);
	if (!k_is(v, K_E_NOT_FOUND) || oidc_provider_jwks_url(p) == NULL || !sts_jwks_refetch(p))
		return v;
	jwks = oidc_provider_jwks(p);
	v = jwks != NULL ? jwt_verify(token, jwks) : K_E_NOT_FOUND;
	json_decref(jwks);
	return v;
}

/*
 * The provider named by the token's iss in the role's account, the
 * signature, the dates, the audience and the subject. *provider,
 * *aud and *sub point into the configuration and `claims`.
 */
static K_MUST_CHECK k_status check_token(struct api_ctx *c, const char *token, const char *account,
					 const json_t *claims,
					 const struct oidc_provider **provider, const char **aud,
					 const char **sub)
{
	const char *iss = json_string_value(json_object_get(claims, "iss"));
	if (iss == NULL)
		return bad_token(c, "The token has no iss claim.");
	*provider = config_oidc_find(account, iss);
	if (*provider == NULL)
		return api_fail(c, K_E_STS_INVALID_IDENTITY_TOKEN,
				"No OpenIDConnect provider found in your account for %.255s", iss);
	k_status v = verify_signature(token, *provider);
	if (k_is(v, K_E_UNSUPPORTED))
		return bad_token(c, "The token's signing algorithm is not accepted (RS256, "
				    "RS384, RS512, ES256 and ES384 are).");
	if (k_failed(v))
		return bad_token(c, "The token's signature could not be verified with the "
				    "provider's keys.");
	GUARD(check_times(c, claims));
	*aud = matching_audience(claims, *provider);
	if (*aud == NULL)
		return bad_token(c, "Incorrect token audience");
	*sub = json_string_value(json_object_get(claims, "sub"));
	if (*sub == NULL || (*sub)[0] == 0 || strlen(*sub) > 255)
		return bad_token(c, "The token has no valid sub claim.");
	return K_OK;
}

/*
 * The role's trust policy must allow {"Federated": PROVIDER_ARN} the
 * action sts:AssumeRoleWithWebIdentity, with the condition keys IAM
 * gives OIDC federation (HOST/PATH:aud, HOST/PATH:sub) and the usual
 * request keys; an explicit Deny refuses.
 */
static bool trust_allows(struct api_ctx *c, const struct identity *role, const char *role_arn,
			 const char *action, const struct oidc_provider *p, const char *aud,
			 const char *sub, const char *session, const json_t *tags)
{
	struct policy_req req;
	memset(&req, 0, sizeof req);
	req.federated = oidc_provider_arn(p);
	req.action = action;
	sts_req_add_request_tags(&req, tags);
	req.resource = role_arn;
	char k_aud[STS_OIDC_KEY_MAX], k_sub[STS_OIDC_KEY_MAX], now[32];
	snprintf(k_aud, sizeof k_aud, "%s:aud", oidc_provider_name(p));
	snprintf(k_sub, sizeof k_sub, "%s:sub", oidc_provider_name(p));
	sts_format_time(c->now, now, sizeof now);
	policy_req_add_str(&req, k_aud, aud);
	policy_req_add_str(&req, k_sub, sub);
	policy_req_add_str(&req, "aws:FederatedProvider", oidc_provider_arn(p));
	policy_req_add_str(&req, "aws:CurrentTime", now);
	policy_req_add_str(&req, "aws:SourceIp", c->req->source_ip[0] ? c->req->source_ip : NULL);
	policy_req_add_str(&req, "aws:SecureTransport", c->req->secure ? "true" : "false");
	policy_req_add_str(&req, "sts:RoleSessionName", session);
	struct policy_result tr;
	policy_evaluate(role_trust_policy(role), &req, &tr);
	return !tr.explicit_deny && tr.allow_direct;
}

k_status sts_assume_role_with_web_identity(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *role_arn, *session, *token, *dur_s, *provider_id, *policy;
	GUARD(api_string(c, in, "RoleArn", true, 20, 2048, &role_arn));
	GUARD(api_string(c, in, "RoleSessionName", true, 2, 64, &session));
	GUARD(api_string(c, in, "WebIdentityToken", true, 4, JWT_MAX_TOKEN, &token));
	GUARD(api_string(c, in, "ProviderId", false, 4, 2048, &provider_id));
	GUARD(api_string(c, in, "DurationSeconds", false, 1, 8, &dur_s));
	GUARD(api_string(c, in, "Policy", false, 1, 2048, &policy));
	GUARD(sts_check_session_args(c, session, policy, in));
	/* ProviderId names OAuth 2.0 providers only: "Do not specify this value for OpenID Connect ID tokens." */
	if (provider_id != NULL)
		return api_fail(c, K_E_VALIDATION,
				"ProviderId is for OAuth 2.0 providers, which this server does "
				"not serve; OpenID Connect tokens name their provider in iss.");
	struct k_arn role_parts;
	GUARD(sts_parse_role_arn(c, role_arn, &role_parts));
	snprintf(c->principal.type, sizeof c->principal.type, "%s", "WebIdentityUser");
	json_t *header = NULL, *claims = NULL;
	if (k_failed(jwt_decode(token, &header, &claims)))
		return bad_token(c, "The ID Token provided is not a valid JWT.");
	json_decref(header);
	char account[K_ARN_ACCOUNT_LEN + 1];
	snprintf(account, sizeof account, "%.*s", (int)role_parts.account.len,
		 (const char *)role_parts.account.ptr);
	const struct oidc_provider *p = NULL;
	const char *aud = NULL, *sub = NULL;
	k_status rc = check_token(c, token, account, claims, &p, &aud, &sub);
	json_t *tags = NULL;
	if (k_ok(rc))
		rc = sts_token_tags(c, claims, &tags);
	const struct identity *role = config_find_role(role_arn);
	/* Tags from the token need sts:TagSession in the trust policy too. */
	if (k_ok(rc) && (role == NULL ||
			 !trust_allows(c, role, role_arn, "sts:AssumeRoleWithWebIdentity", p, aud,
				       sub, session, tags) ||
			 (tags != NULL && !trust_allows(c, role, role_arn, "sts:TagSession", p, aud,
							sub, session, tags))))
		rc = api_fail(c, K_E_ACCESS_DENIED,
			      "Not authorized to perform sts:AssumeRoleWithWebIdentity");
	int64_t duration = 0;
	if (k_ok(rc)) {
		c->authorized = true; /* the provider's token and the role's trust policy */
		rc = sts_duration(c, role, dur_s, &duration);
	}
	if (k_ok(rc))
		rc = sts_issue_session(c, role, role_arn, &role_parts, session, duration, policy,
				       tags, out);
	if (k_ok(rc)) {
		json_object_set_new(out, "SubjectFromWebIdentityToken", json_string(sub));
		json_object_set_new(out, "Provider", json_string(oidc_provider_url(p)));
		json_object_set_new(out, "Audience", json_string(aud));
	}
	json_decref(tags);
	json_decref(claims);
	return rc;
}
