/*
 * config.h — server settings and the identities (accounts, IAM users and
 * their access keys) that SigV4 authenticates.
 *
 * The config file is JSON (docs/CONFIG.md):
 *   {
 *     "listen": "127.0.0.1:4599",
 *     "data_dir": "/var/lib/kinko",
 *     "store": "sqlite:/var/lib/kinko",           (storage.h's storage_open; default data_dir)
 *     "node_id": "node-a",                        (cluster/cluster.h; default kept in data_dir)
 *     "root_key_file": "/etc/kinko/root.key",
 *     "tls_cert_file": "/etc/kinko/cert.pem", "tls_key_file": "/etc/kinko/key.pem",
 *     "max_connections": 4096, "per_ip_connections": 1024, "idle_timeout_s": 60,
 *     "regions": ["my-dc-1"],                     (config/regions.h)
 *     "test_mode_i_understand_this_deletes_data": false,
 *     "header_timeout_s": 20, "body_timeout_s": 60,
 *     "accounts": [
 *       { "id": "111122223333",
 *         "root_access_keys": [ {"access_key_id": "...", "secret_access_key": "..."} ],
 *         "users": [ { "name": "alice",
 *                      "access_keys": [ {"access_key_id": "...", "secret_access_key": "..."} ],
 *                      "policies": [ { IAM policy document } ],
 *                      "tags": {"team": "blue"} } ] } ]
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
#include "req/req.h"
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

struct identity;

struct config {
	char listen_host[128];
	unsigned listen_port;
	char data_dir[512];
	char store_url[1024]; /* a store URL (storage_open); empty: data_dir's SQLite */
	char node_id[256];    /* this node's id (cluster/cluster.h); empty: kept in data_dir */
	char root_key_file[600];
	bool root_key_in_data_ok; /* a root key file inside data_dir is allowed outside dev mode */
	bool dev;
	bool test_mode;
	/*
	 * The file's CONFIG_TEST_MODE_SWITCH: --test-mode may run without
	 * --dev. Test mode lets the principals allowed kinko-test:* empty
	 * their account and move the server's clock (which expires sessions
	 * and carries out pending key deletions), so outside dev mode it takes
	 * a switch whose name says so.
	 */
	bool test_mode_outside_dev;
	unsigned threads; /* 0: one per core */
	unsigned max_connections;
	unsigned idle_timeout_s;
	/* HTTPS and per-client limits (docs/CONFIG.md, docs/SECURITY.md). */
	char tls_cert_file[600];     /* PEM certificate (chain); empty: plain HTTP */
	char tls_key_file[600];	     /* PEM private key for it */
	unsigned per_ip_connections; /* 0: no per-address cap */
	/* The audit trail's period digests and their witness (docs/AUDIT.md). */
	unsigned audit_digest_seconds; /* 0: kinko's default (60 s) */
	char audit_witness_file[600];  /* empty: no witness file */
	bool audit_witness_syslog;
	unsigned header_timeout_s; /* the whole request head, from its start */
	unsigned body_timeout_s;   /* the whole body, from the end of the head */
	char log_format[8];	   /* "text" or "json" (core/log.h); empty: text */
};

#define CONFIG_TEST_MODE_SWITCH "test_mode_i_understand_this_deletes_data"

/* Fills defaults (127.0.0.1:4599, ./kinko-data, ...). */
void config_defaults(struct config *cfg);
/*
 * Loads a config file over the defaults and installs its identities.
 * `msg` receives a human-readable reason on failure.
 */
K_MUST_CHECK k_status config_load_file(struct config *cfg, const char *path, struct kbuf *msg);
/* Installs the dev-mode identity (000000000000, test/test). */
K_MUST_CHECK k_status config_install_dev_identity(void);
/* The same, saying in msg why it cannot (an access key "test" in the file). */
K_MUST_CHECK k_status config_add_dev_identity(struct kbuf *msg);
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

/*
 * Authorization: identity policies parsed at load (a session's are its
 * role's), roles and the temporary credentials of STS sessions.
 * Roles are declared per account:
 *   "roles": [ { "name": "app", "trust_policy": { IAM policy with Principal },
 *                "policies": [ identity policies ], "max_session_duration": 3600 } ]
 * A session's access key (ASIA...) is looked up by config_lookup_access_key
 * together with its session token: a wrong or missing token is
 * UnrecognizedClientException, an expired session ExpiredTokenException.
 * The session table is bounded (4096) and thread-safe.
 */
struct policy;
size_t identity_policy_count(const struct identity *id);
const struct policy *identity_policy(const struct identity *id, size_t i);
/* The role ARN of an assumed-role session; NULL for other identities. */
const char *identity_role_arn(const struct identity *id);
/* "Root", "IAMUser", "AssumedRole". */
const char *identity_type(const struct identity *id);
/* AIDA.../AROA... (and "AROA...:SESSION" for sessions). */
const char *identity_unique_id(const struct identity *id);
/*
 * Adds the identity's own condition keys to a request context:
 * aws:username, aws:userid, aws:PrincipalType and aws:PrincipalTag/KEY
 * from the "tags" of users and roles ({"KEY": "VALUE"}; a session has its
 * role's). Nothing for NULL. The values are borrowed until config_release().
 * A key several sources give is read from the first one added
 * (policy_cond.c), so tags that must override these (a session's own
 * tags over its role's) go into the context before this call.
 */
struct policy_req;
void identity_policy_context(const struct identity *id, struct policy_req *r);
/* A configured role by ARN, or NULL. Valid until config_release(). */
const struct identity *config_find_role(const char *role_arn);
const struct policy *role_trust_policy(const struct identity *role);
int64_t role_max_session(const struct identity *role);

/*
 * The account of an access key kinko knows: a long-term key, or a live
 * session's (from the store if this node does not hold it). False otherwise.
 */
bool config_access_key_account(const char *access_key, char out[13]);

/* The identity (user, root, role; a session's role) behind a principal ARN, or NULL. */
const struct identity *config_find_principal(const char *arn);

struct config_session {
	char access_key[24];
	char secret[48];
	char token[160];
	uint8_t token_hash[32]; /* SHA-256 of token: what the session table keeps */
};
/*
 * Creates temporary credentials for `role` that expire at `expires`
 * (a user or root identity instead of a role: a GetSessionToken session
 * that acts as that principal, with its policies)
 * (kclock seconds), with an STS session policy (a JSON identity policy;
 * NULL: none) and session tags ([{"TagKey", "TagValue", "Transitive"}],
 * which the session keeps a reference to; NULL: none). The session's
 * permissions are then those its identity policies and the session policy
 * both allow (kms/authz.c, secrets/authz.c); its tags are its
 * aws:PrincipalTag/KEY keys. K_E_MALFORMED_POLICY for a session policy
 * that does not parse; K_E_LIMIT_EXCEEDED when the table is full of live
 * sessions. The caller wipes *out after rendering it.
 */
K_MUST_CHECK k_status config_new_session(const struct identity *role, const char *session_name,
					 int64_t expires, const char *policy, json_t *tags,
					 struct config_session *out);
/*
 * Installs a session made elsewhere (another node; sts/sts.c keeps them
 * in the store) in this process's table: its access key, the SHA-256 of
 * its token, its expiry, and its secret access key, which the table takes
 * (freed on every path). K_E_LIMIT_EXCEEDED when the table is full.
 */
K_MUST_CHECK k_status config_install_session(const struct identity *role, const char *session_name,
					     const char *access_key, const uint8_t token_hash[32],
					     int64_t expires, struct ksecret *secret,
					     const char *policy, json_t *tags);
/*
 * The loader config_lookup_access_key calls, once, for a session access
 * key (ASIA...) with a token that is not in the table: it installs the
 * session (config_install_session) if the store has it. Set once at start.
 */
typedef K_MUST_CHECK k_status (*config_session_loader)(const char *access_key);
/* Adds a session's aws:PrincipalTag/KEY values to a policy request; nothing for others. */
struct policy_req;
void identity_add_principal_tags(const struct identity *id, struct policy_req *req);
/* A session's tags as above, or NULL. Valid as long as the identity. */
const json_t *identity_session_tags(const struct identity *id);
/* The session policy of a session, or NULL. Valid as long as the identity. */
const struct policy *identity_session_policy(const struct identity *id);
void config_set_session_loader(config_session_loader fn);

#endif
