/*
 * sts.h — AWS STS on kinko's endpoint: GetCallerIdentity, AssumeRole,
 * AssumeRoleWithWebIdentity (web_identity.c), GetSessionToken,
 * GetFederationToken, GetAccessKeyInfo and DecodeAuthorizationMessage
 * (tokens.c), with session policies and session tags (tags.c).
 *
 * STS speaks the AWS query protocol (api/dispatch.c routes it): POST with
 * Content-Type application/x-www-form-urlencoded and a body such as
 * "Action=GetCallerIdentity&Version=2011-06-15", signed with SigV4 for the
 * service "sts"; answers are XML in STS's shapes.
 *
 * AssumeRole checks the role's trust policy and the caller's identity
 * policies with IAM's rules (same account: the trust policy naming the
 * caller suffices, naming the account needs an identity policy allowing
 * sts:AssumeRole on the role too; another account: both), then issues
 * temporary credentials (ASIA... access key, secret, session token,
 * expiry) from config_new_session(). The session's principal is
 * arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION with exactly the role's
 * identity policies.
 *
 * Sessions are valid on every node sharing the store and the root key
 * (docs/CLUSTER.md, "STS sessions"): AssumeRole also writes the session
 * to the store (kind "sts-session", ns "", id = access key) with its
 * secret access key wrapped under the root key and its token as a SHA-256
 * digest; a node that meets an access key it does not hold reads that
 * record once and installs the session in its own table. The record goes
 * away STS_SESSION_KEEP_S after the session expires (scheduled work).
 */
#ifndef KINKO_STS_STS_H
#define KINKO_STS_STS_H

#include <jansson.h>
#include <stdint.h>
#include "config/config.h"
#include "core/buf.h"
#include "core/result.h"
#include "storage/storage.h"

#define STS_SESSION_KIND "sts-session"
#define STS_EXPIRE_TASK "sts.expire"
#define STS_SESSION_KEEP_S 3600

struct api_service;
/* The STS operation table, for the pipeline's registry (api_register_service). */
const struct api_service *sts_service_table(void);

/*
 * Hands the store to STS: installs the session loader (config.h) and
 * registers the removal of expired session records with the scheduler.
 * Call once at start, before scheduler_start().
 */
K_MUST_CHECK k_status sts_init(struct storage *st);

/*
 * The key sets of OpenID Connect providers configured by jwks_url
 * (config/oidc.h): fetched once here, then kept fresh by a thread of
 * their own (jwks_fetch.c). Call after the configuration is loaded and
 * libcurl initialised (kcurl_global_init, core/curl_init.h); sts_jwks_stop ends the
 * thread. A failed first fetch is logged and retried, not fatal.
 */
K_MUST_CHECK k_status sts_jwks_start(void);
void sts_jwks_stop(void);

/*
 * Writes a new session's record (see above), with its session policy
 * and session tags (NULL: none), which a node that loads the record
 * attaches again. Without sts_init (tools that
 * run no server) K_E_INTERNAL; otherwise the store's error.
 */
K_MUST_CHECK k_status sts_session_save(const char *role_arn, const char *session_name,
				       const struct config_session *cs, int64_t expires,
				       const char *session_policy, const json_t *tags);

#endif
