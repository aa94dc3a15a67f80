/*
 * peers.h — the "peers" section of the configuration: the other kinko
 * deployments that serve some Regions, for multi-Region keys across
 * deployments (docs/REGIONS.md "Across deployments", docs/CONFIG.md).
 *
 *   "peers": {
 *     "accept": ["arn:aws:iam::111122223333:user/kinko-peer"],
 *     "regions": [
 *       {"region": "eu-west-1",
 *        "endpoint": "https://kms.eu.example:4566",
 *        "ca_file": "eu-ca.pem",
 *        "access_key_id": "AKIA...",
 *        "secret_access_key_file": "eu-peer.secret",   (or "secret_access_key_env": "VAR")
 *        "public_key_file": "eu-wrapping-key.pem"}
 *     ]
 *   }
 *
 * "accept" lists the principals (ARNs) that may call this deployment's
 * peer operations (KinkoPeer.*); "regions" names, per Region another
 * deployment serves, how to call it (its endpoint over HTTPS, the CA that
 * issued its certificate, the SigV4 credentials) and its wrapping key's
 * public PEM, pinned: material is sealed for that key only. The secret
 * access key comes from a file or an environment variable, never from
 * the configuration file itself, and is never logged.
 * The section is read once before serving and is read-only after.
 */
#ifndef KINKO_CONFIG_PEERS_H
#define KINKO_CONFIG_PEERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

#define CONFIG_PEERS_MAX 16
#define CONFIG_PEERS_MAX_ACCEPT 16
#define CONFIG_PEER_MAX_ENDPOINT 256
#define CONFIG_PEER_MAX_PATH 600
/* The longest secret access key read from a file or the environment. */
#define CONFIG_PEER_MAX_SECRET 256

struct config_peer {
	char region[33];
	char endpoint[CONFIG_PEER_MAX_ENDPOINT]; /* "https://host:port" */
	char ca_file[CONFIG_PEER_MAX_PATH];	 /* "": the system's CAs */
	char access_key_id[129];
	struct ksecret *secret; /* the secret access key's bytes */
	struct kbuf public_pem; /* the peer's wrapping key, pinned */
	char fingerprint[65];	/* SHA-256 of its DER, for logs */
};

/*
 * Validates and installs a "peers" section (NULL: none). Relative paths
 * are taken from the folder of cfg_path. K_E_VALIDATION with the reason
 * in msg for a Region twice, a bad endpoint, an unreadable secret or a
 * pinned key that is not an RSA public key of at least 2048 bits.
 */
K_MUST_CHECK k_status config_peers_load(json_t *section, const char *cfg_path, struct kbuf *msg);
/* The number of peer Regions, and each. */
size_t config_peer_count(void);
const struct config_peer *config_peer_at(size_t i);
/* The peer that serves region, or NULL when this deployment serves it. */
const struct config_peer *config_peer_for_region(const char *region);
/* True if principal_arn is in "accept". */
bool config_peer_accepts(const char *principal_arn);
/* True if the file has a "peers" section. */
bool config_peers_present(void);
/* Frees the section (secrets wiped). */
void config_peers_release(void);

#endif
