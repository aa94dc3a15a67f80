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
 * or, in place of jwks_file, the provider's key set by URL:
 *       "jwks_url": "https://oidc.example.com/cluster-1/keys",   https only
 *       "jwks_ca_file": "private-ca.pem",        optional: a private CA
 *       "jwks_refresh_seconds": 3600             optional: 60 to 86400
 *
 * The provider's ARN is arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH
 * (the URL without "https://"), the name trust policies give as
 * {"Federated": ARN} and the prefix of the condition keys HOST/PATH:aud
 * and HOST/PATH:sub. A relative jwks_file is taken from the folder of
 * the configuration file (so is jwks_ca_file). A jwks_file is read once,
 * at load; a jwks_url is fetched by sts/ (jwks_fetch.c), which replaces
 * the provider's key set under its lock. The rest of the table is
 * read-only after load.
 */
#ifndef KINKO_CONFIG_OIDC_H
#define KINKO_CONFIG_OIDC_H

#include <jansson.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"

#define OIDC_MAX_PROVIDERS 100 /* IAM's quota of OIDC providers per account */
#define OIDC_URL_MAX 255       /* IAM's limit on a provider URL */
#define OIDC_JWKS_URL_MAX 2048 /* a jwks_url */
#define OIDC_PATH_MAX 1024     /* a jwks_file or jwks_ca_file path */
#define OIDC_JWKS_REFRESH_DEFAULT_S 3600

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
/*
 * The provider's key set ({"keys": [...]}), a new reference the caller
 * releases with json_decref; NULL while a jwks_url has not been fetched.
 */
json_t *oidc_provider_jwks(const struct oidc_provider *p);
/* Replaces the key set (takes the reference), for the fetcher. */
void oidc_provider_set_jwks(struct oidc_provider *p, json_t *jwks);
/* The provider's jwks_url, or NULL for a jwks_file. */
const char *oidc_provider_jwks_url(const struct oidc_provider *p);
/* Its jwks_ca_file (resolved), or NULL for the system's CAs. */
const char *oidc_provider_jwks_ca_file(const struct oidc_provider *p);
/* Its refresh period in seconds (jwks_url only). */
int64_t oidc_provider_jwks_refresh_s(const struct oidc_provider *p);
/* The providers, by index (0 .. count-1), for the fetcher; valid until release. */
size_t config_oidc_count(void);
struct oidc_provider *config_oidc_at(size_t i);

#endif
