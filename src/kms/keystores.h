/*
 * keystores.h — custom key stores (AWS's CreateCustomKeyStore family),
 * for the files of kms/ only.
 *
 * A custom key store is a record of kind KMS_CKS_KIND in the account's
 * namespace, id "cks-" and 17 hexadecimal digits. An AWS_CLOUDHSM store
 * names a PKCS#11 token of the configuration (keystore/pkcs11.h) and keeps
 * the token's user PIN wrapped under the root key; an EXTERNAL_KEY_STORE
 * store keeps its proxy's settings and its credential's secret wrapped.
 *
 * ConnectionState: the record keeps what the last Connect or Disconnect
 * asked for (CONNECTED, DISCONNECTED) or a Connect's failure (FAILED with
 * its ConnectionErrorCode). A CONNECTED AWS_CLOUDHSM store is CONNECTED
 * only while its token is logged in on this node: a token that went away
 * shows FAILED, and a node that has not logged in yet (after a restart,
 * or another node's Connect on a shared store) logs in when the store or
 * one of its keys is next used.
 */
#ifndef KINKO_KMS_KEYSTORES_H
#define KINKO_KMS_KEYSTORES_H

#include <jansson.h>
#include <stdbool.h>
#include "core/buf.h"
#include "core/result.h"
#include "kms/kms.h"
#include "req/req.h"

#define KMS_CKS_KIND "customkeystore"
#define KMS_CKS_ID_LEN 21	   /* "cks-" + 17 hex digits */
#define KMS_CKS_MAX 10		   /* custom key stores per account and Region (AWS quota) */
#define KMS_CKS_WRAPPED (4u << 10) /* a wrapped PIN or credential, base64 */

/* The six operations (ops_keystores.c). */
K_MUST_CHECK k_status kms_op_create_custom_key_store(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_describe_custom_key_stores(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_update_custom_key_store(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_delete_custom_key_store(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_connect_custom_key_store(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status kms_op_disconnect_custom_key_store(struct api_ctx *c, json_t *in,
							 json_t *out);

/* ---- records (keystores.c) ---- */

/*
 * The store `id` of the caller's namespace: *doc (owned by the caller) and
 * its storage version. CustomKeyStoreNotFoundException (through api_fail)
 * if there is none.
 */
K_MUST_CHECK k_status kms_cks_load(struct api_ctx *c, const char *id, json_t **doc,
				   int64_t *version);
/* Writes doc as the store `id`; expect: its version, or STORAGE_ABSENT for a new one. */
K_MUST_CHECK k_status kms_cks_put(struct api_ctx *c, const char *id, json_t *doc, int64_t expect);
/*
 * The state to report: the record's, or for a CONNECTED AWS_CLOUDHSM store
 * its token's here (logging in first if this node has not). *code: the
 * ConnectionErrorCode, or NULL.
 */
const char *kms_cks_state(const char *ns, const char *id, json_t *doc, const char **code);
/* Appends the base64 wrap of a secret under the root key, bound to the store (kms_cks_aad). */
K_MUST_CHECK k_status kms_cks_wrap(const char *ns, const char *id, const char *what,
				   const char *secret, struct kbuf *out);
/* The AAD that binds a wrapped secret to its store. */
K_MUST_CHECK k_status kms_cks_aad(const char *ns, const char *id, const char *what,
				  struct kbuf *out);

/*
 * ConnectCustomKeyStore on an EXTERNAL_KEY_STORE store (keystores_xks.c):
 * GetHealthStatus to its proxy (PUBLIC_ENDPOINT only), then the record
 * CONNECTED, or FAILED with AWS's ConnectionErrorCode, and written.
 */
K_MUST_CHECK k_status kms_cks_connect_xks(struct api_ctx *c, const char *id, json_t *doc,
					  int64_t version);
/*
 * An external key store's credential secret (RawSecretAccessKey),
 * unwrapped into a new secret the caller frees; NULL when the record has
 * none or it does not unwrap.
 */
struct ksecret *kms_cks_xks_secret(const char *ns, const char *id, json_t *doc);
/* The store `id` of namespace ns, or NULL (none, or the store failed); the caller owns it. */
json_t *kms_cks_find(const char *ns, const char *id);

/* ---- keys in custom key stores ---- */

/*
 * CreateKey with CustomKeyStoreId or a custom key store's Origin: checks
 * the request against the store (its type, connected, the key's shape).
 * Answers through api_fail.
 */
K_MUST_CHECK k_status kms_cks_check_new_key(struct api_ctx *c, const char *store_id,
					    const char *origin, const char *spec, const char *usage,
					    const char *xks_key_id);
/*
 * Generates the key inside the store's token and records it in doc:
 * "KeyStore", "CustomKeyStoreId", "CloudHsmClusterId" and "Materials".
 */
K_MUST_CHECK k_status kms_cks_generate(struct api_ctx *c, json_t *doc, const char *store_id,
				       const char *arn);
/*
 * The key's state as AWS reports it: Unavailable for an Enabled or
 * Disabled key whose custom key store cannot reach its material.
 */
enum kms_key_state kms_key_state_now(const struct kms_key *k);

#endif
