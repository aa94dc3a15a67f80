/*
 * oidc.h — OpenID Connect identity providers, the IAM OIDC providers
 * that sts:AssumeRoleWithWebIdentity trusts. Declared in the config file:
 *
 *   "oidc_providers": [
 *     { "account": "111122223333",
 *       "url": "https://oidc.example.com/cluster-1",   the tokens' "iss"
 *       "client_ids": ["sts.amazonaws.com"],            accepted "aud" values
 *       "jwks_file": "/etc/kinko/cluster-1.jwks.json" } ]
 *
 * The provider's ARN is arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH
 * (the URL without "https://"), the name trust policies give as
 * {"Federated": ARN} and the prefix of the condition keys HOST/PATH:aud
 * and HOST/PATH:sub. A relative jwks_file is taken from the folder of
 * the configuration file. The JWKS is read once, at load; the table is
 * read-only after.
 */
#ifndef KINKO_CONFIG_OIDC_H
#define KINKO_CONFIG_OIDC_H

#include <jansson.h>
#include "core/buf.h"
#include "core/result.h"

#define OIDC_MAX_PROVIDERS 100 /* IAM's quota of OIDC providers per account */
#define OIDC_URL_MAX 255       /* IAM's limit on a provider URL */

struct oidc_provider;

/* Validates and adds the entries of an "oidc_providers" list (NULL: none). */
K_MUST_CHECK k_status config_oidc_load(json_t *list, const char *cfg_path, struct kbuf *msg);
void config_oidc_release(void);

/*
 * The provider of `account` whose URL is the token issuer `iss` (with
 * or without "https://"), or NULL. Borrowed; valid until release.
 */
const struct oidc_provider *config_oidc_find(const char *account, const char *iss);
/* arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH */
const char *oidc_provider_arn(const struct oidc_provider *p);
/* HOST/PATH: the URL without "https://", the prefix of its condition keys. */
const char *oidc_provider_name(const struct oidc_provider *p);
/* The provider's URL as configured. */
const char *oidc_provider_url(const struct oidc_provider *p);
/* Whether `aud` is one of the provider's client ids. */
bool oidc_provider_has_client(const struct oidc_provider *p, const char *aud);
/* The provider's key set ({"keys": [...]}); borrowed. */
const json_t *oidc_provider_jwks(const struct oidc_provider *p);

#endif
