/*
 * sts.h — AWS STS on kinko's endpoint: GetCallerIdentity and AssumeRole.
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
 */
#ifndef KINKO_STS_STS_H
#define KINKO_STS_STS_H

#include "core/buf.h"
#include "core/result.h"

struct api_service;
/* The STS operation table, for the pipeline's registry (api_register_service). */
const struct api_service *sts_service_table(void);

#endif
