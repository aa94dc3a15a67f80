/*
 * xks.h — the "xks" section of the configuration: kinko as an XKS proxy
 * (xks/proxy.h, docs/KEYSTORES.md), the external key store proxy API that
 * AWS KMS and any other XKS client call.
 *
 *   "xks": {
 *     "listen": "0.0.0.0:4600",                 (or --xks-listen HOST:PORT)
 *     "uri_path": "/keystores/a/kms/xks/v1",    ([/prefix]/kms/xks/v1; default /kms/xks/v1)
 *     "region": "us-east-1",                    (the credential scope's region; "" any)
 *     "client_ca_file": "/etc/kinko/xks-clients.pem",   (mTLS: clients must present a
 *                                                certificate issued by this CA)
 *     "client_subject": "cks.kms.us-east-1.amazonaws.com",  (mTLS: and with this CN)
 *     "credentials": [ {"access_key_id": "...", "secret_access_key": "..."} ],
 *     "keys": { "EXTERNAL-KEY-ID": "arn:aws:kms:REGION:ACCOUNT:key/UUID" },
 *     "authorization": [ ... ]                  (per-key rules: config/xks_access.h)
 *   }
 *
 * Credentials are the SigV4 keys the proxy accepts (service name
 * kms-xks-proxy); at least one, and more than one so that they can be
 * rotated as the XKS specification recommends. Each external key id
 * (1 to 128 of A-Z a-z 0-9 . - _) names a kinko KMS key by its key ARN,
 * or by an alias ARN (arn:aws:kms:REGION:ACCOUNT:alias/NAME), which is
 * resolved on each request, so that a seed file's alias can name a key
 * made at the first start.
 * The section is read once before serving and is read-only after.
 */
#ifndef KINKO_CONFIG_XKS_H
#define KINKO_CONFIG_XKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

#define CONFIG_XKS_MAX_CREDENTIALS 8
#define CONFIG_XKS_MAX_KEYS 4096
#define CONFIG_XKS_MAX_KEY_ID 128   /* the spec's externalKeyId bound */
#define CONFIG_XKS_MAX_URI_PATH 128 /* the spec's XksProxyUriPath bound */
#define CONFIG_XKS_MAX_ACCESS_KEY 128
#define CONFIG_XKS_DEFAULT_URI_PATH "/kms/xks/v1"

struct config_xks_credential {
	char access_key_id[CONFIG_XKS_MAX_ACCESS_KEY + 1];
	struct ksecret *secret; /* the secret access key's bytes */
};

struct config_xks_key {
	char external_id[CONFIG_XKS_MAX_KEY_ID + 1];
	char key_arn[256];
};

struct config_xks {
	bool present; /* the file has an "xks" section */
	char listen[192];
	char uri_path[CONFIG_XKS_MAX_URI_PATH + 1];
	char region[33];
	char client_ca_file[600];
	char client_subject[256]; /* mTLS: the client certificate's CN; "": any */
	size_t n_credentials;
	struct config_xks_credential credentials[CONFIG_XKS_MAX_CREDENTIALS];
	size_t n_keys;
	struct config_xks_key *keys; /* sorted by external_id */
};

/*
 * Validates and installs an "xks" section (NULL: none). Relative paths
 * are taken from the folder of cfg_path. K_E_VALIDATION with the reason in
 * msg for a bad uri_path, key id, key ARN or credential.
 */
K_MUST_CHECK k_status config_xks_load(json_t *section, const char *cfg_path, struct kbuf *msg);
/* The installed section (present false when there is none). Never NULL. */
const struct config_xks *config_xks(void);
/* Sets the listen address (the --xks-listen flag, which wins over the file's). */
void config_xks_set_listen(const char *listen);
/* The credential of an access key id, or NULL. */
const struct config_xks_credential *config_xks_credential(const char *access_key_id);
/* The KMS key or alias ARN an external key id names, or NULL. */
const char *config_xks_key_arn(const char *external_id);
/* Frees the section (secrets wiped). */
void config_xks_release(void);

#endif
