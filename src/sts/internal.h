/*
 * internal.h — what the STS handlers share inside sts/: the checks of
 * the members every way of getting a role session has, and the issuing
 * of the session itself.
 */
#ifndef KINKO_STS_INTERNAL_H
#define KINKO_STS_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config/config.h"
#include "core/arn.h"
#include "req/req.h"

/* RoleSessionName's pattern [\w+=,.@-]*, 2 to 64 characters. */
bool sts_valid_session_name(const char *s);
/* `when` (epoch seconds) as ISO 8601 UTC, "2026-12-07T07:00:00Z". */
void sts_format_time(int64_t when, char *out, size_t n);
/* RoleSessionName's pattern; the session policy (Policy) checked; PolicyArns refused. */
K_MUST_CHECK k_status sts_check_session_args(struct api_ctx *c, const char *session,
					     const char *policy, json_t *in);
/* A session policy (NULL: none) that parses as an identity policy; MalformedPolicyDocument otherwise. */
K_MUST_CHECK k_status sts_check_session_policy(struct api_ctx *c, const char *policy);
/* A role ARN (arn:aws:iam::ACCOUNT:role/NAME), parsed into *parts; ValidationError otherwise. */
K_MUST_CHECK k_status sts_parse_role_arn(struct api_ctx *c, const char *role_arn,
					 struct k_arn *parts);
/* DurationSeconds (NULL: 3600) within 900..43200 and the role's maximum. */
K_MUST_CHECK k_status sts_duration(struct api_ctx *c, const struct identity *role,
				   const char *dur_s, int64_t *out);
/*
 * Issues a session of `role` (ARN `role_arn`) named `session` for
 * `duration` seconds with the session policy `policy` (NULL: none, else
 * already checked) and the session tags `tags` (NULL: none), keeps it in the store and renders Credentials,
 * AssumedRoleUser and PackedPolicySize into `out`. The caller has authorized it.
 */
K_MUST_CHECK k_status sts_issue_session(struct api_ctx *c, const struct identity *role,
					const char *role_arn, const struct k_arn *role_parts,
					const char *session, int64_t duration, const char *policy,
					json_t *tags, json_t *out);

/*
 * Whether the caller's identity policies allow `action` on "*" with no
 * explicit Deny (the account root: no Deny is enough).
 */
bool sts_identity_allows(struct api_ctx *c, const char *action);

/* GetSessionToken, GetFederationToken, GetAccessKeyInfo, DecodeAuthorizationMessage (tokens.c). */
K_MUST_CHECK k_status sts_get_session_token(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sts_get_federation_token(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sts_get_access_key_info(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sts_decode_authorization_message(struct api_ctx *c, json_t *in, json_t *out);

/*
 * Session tags (tags.c): *out receives a new [{"TagKey", "TagValue",
 * "Transitive"}] array (NULL: none) from the Tags / TransitiveTagKeys
 * members plus the calling session's transitive tags, or from an OIDC
 * token's "https://aws.amazon.com/tags" claim. ValidationError (for the
 * token InvalidIdentityToken) on a bad tag.
 */
struct policy_req;
K_MUST_CHECK k_status sts_read_tags(struct api_ctx *c, json_t *in, json_t **out);
K_MUST_CHECK k_status sts_token_tags(struct api_ctx *c, const json_t *claims, json_t **out);
/* aws:RequestTag/KEY and aws:TagKeys for a trust policy's sts:TagSession check. */
void sts_req_add_request_tags(struct policy_req *req, const json_t *tags);
/* The characters of the tags' keys and values (PackedPolicySize). */
size_t sts_tags_size(const json_t *tags);

/* AssumeRoleWithWebIdentity (web_identity.c). */
K_MUST_CHECK k_status sts_assume_role_with_web_identity(struct api_ctx *c, json_t *in, json_t *out);

/*
 * Asks the JWKS fetcher for a fresh key set of p (a token named a key id
 * the cached set lacks) and waits for that fetch, briefly. false when p
 * has no jwks_url, the request is rate-limited, or no fetch finished in
 * time; the provider's set is then what it was.
 */
struct oidc_provider;
bool sts_jwks_refetch(const struct oidc_provider *p);

#endif
