/*
 * config.h — server settings and the identities (accounts, IAM users and
 * their access keys) that SigV4 authenticates.
 *
 * The config file is JSON (docs/CONFIG.md):
 *   {
 *     "listen": "127.0.0.1:4599",
 *     "data_dir": "/var/lib/kinko",
 *     "root_key_file": "/var/lib/kinko/root.key",
 *     "accounts": [
 *       { "id": "111122223333",
 *         "root_access_keys": [ {"access_key_id": "...", "secret_access_key": "..."} ],
 *         "users": [ { "name": "alice",
 *                      "access_keys": [ {"access_key_id": "...", "secret_access_key": "..."} ],
 *                      "policies": [ { IAM policy document } ] } ] } ]
 *   }
 * Dev mode needs no file: account 000000000000 whose root has the access
 * key "test" with the secret "test".
 *
 * The identity table is built once before serving and is read-only after,
 * so lookups take no lock. Secret keys live in ksecret memory.
 */
#ifndef KINKO_CONFIG_CONFIG_H
#define KINKO_CONFIG_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include "api/api.h"
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

struct identity;

struct config {
	char listen_host[128];
	unsigned listen_port;
	char data_dir[512];
	char root_key_file[600];
	bool dev;
	bool test_mode;
	unsigned threads;         /* 0: one per core */
	unsigned max_connections;
	unsigned idle_timeout_s;
};

/* Fills defaults (127.0.0.1:4599, ./kinko-data, ...). */
void config_defaults(struct config *cfg);
/*
 * Loads a config file over the defaults and installs its identities.
 * `msg` receives a human-readable reason on failure.
 */
K_MUST_CHECK k_status config_load_file(struct config *cfg, const char *path, struct kbuf *msg);
/* Installs the dev-mode identity (000000000000, test/test). */
K_MUST_CHECK k_status config_install_dev_identity(void);
/* Frees the identity table. */
void config_release(void);

/*
 * Finds the identity for an access key. `token` is the X-Amz-Security-Token
 * (empty slice if none). K_E_UNRECOGNIZED_CLIENT if unknown.
 * The identity stays valid until config_release().
 */
K_MUST_CHECK k_status config_lookup_access_key(const char *access_key, const struct kslice *token,
					       const struct identity **out);
const struct ksecret *identity_secret(const struct identity *id);
/* Fills a principal description for the authenticated identity. */
void identity_principal(const struct identity *id, const char *access_key, struct principal *out);
/* The identity's IAM policies (a JSON array, possibly empty); borrowed. */
const json_t *identity_policies(const struct identity *id);

#endif
