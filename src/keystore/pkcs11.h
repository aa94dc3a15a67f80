/*
 * pkcs11.h — keys kept in a PKCS#11 token (an HSM, SoftHSM2 in tests).
 *
 * The configuration declares tokens ("hsm_tokens", docs/CONFIG.md): an id
 * shaped like a CloudHSM cluster id ("cluster-" and 11 base32 characters),
 * the module (a shared library, loaded with dlopen when the token is first
 * connected), the token's label or slot, and the trust anchor certificate
 * CreateCustomKeyStore must present. A custom key store of type
 * AWS_CLOUDHSM names one token; connecting it logs in with the user PIN.
 *
 * Keys are AES-256 secret keys generated inside the token (CKA_TOKEN,
 * CKA_SENSITIVE, not CKA_EXTRACTABLE): kinko keeps only a reference that
 * names the token and the object's CKA_ID, and every operation runs in the
 * token (CKM_AES_GCM). Blobs keep the layout of docs/CIPHERTEXT.md.
 *
 * Tokens are declared once while the configuration loads, before serving.
 * Connection state changes at run time and is read without a lock by the
 * crypto path (an atomic per token).
 */
#ifndef KINKO_KEYSTORE_PKCS11_H
#define KINKO_KEYSTORE_PKCS11_H

#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"
#include "keystore/keyops.h"

#define P11_MAX_TOKENS 16
#define P11_CLUSTER_ID_LEN 19	   /* "cluster-" + 11 base32 characters */
#define P11_MAX_PIN 128		   /* AWS's KeyStorePassword: 7 to 32 characters */
#define P11_MAX_ANCHOR (64u << 10) /* a trust anchor certificate's PEM text */
#define P11_STORE_NAME "pkcs11"	   /* what a key document's "KeyStore" names */

/* One token of the configuration. */
struct p11_token_config {
	const char *id;		  /* "cluster-" and 11 base32 characters */
	const char *module;	  /* path of the PKCS#11 module */
	const char *label;	  /* the token's label, or NULL to use slot */
	long slot;		  /* the slot id when label is NULL */
	const char *trust_anchor; /* PEM text of the trust anchor certificate */
};

/* True if id has the shape of a CloudHSM cluster id. */
bool keystore_p11_id_valid(const char *id);
/*
 * Declares a token (copies every member). K_E_VALIDATION for a bad id,
 * K_E_ALREADY_EXISTS for an id declared twice, K_E_LIMIT_EXCEEDED past
 * P11_MAX_TOKENS.
 */
K_MUST_CHECK k_status keystore_p11_add_token(const struct p11_token_config *cfg);
/* Disconnects and forgets every token (tests, shutdown). */
void keystore_p11_release_all(void);
/* The declared tokens' ids, i < keystore_p11_token_count(). */
size_t keystore_p11_token_count(void);
const char *keystore_p11_token_id(size_t i);
/* True if the configuration declares the token id. */
bool keystore_p11_token_known(const char *id);
/*
 * K_OK if `pem` is the token's trust anchor (compared without white space),
 * K_E_VALIDATION if it is not, K_E_NOT_FOUND for an unknown token.
 */
K_MUST_CHECK k_status keystore_p11_trust_anchor_matches(const char *id, const char *pem);

/* Why a token is not connected; AWS's ConnectionErrorCode names. */
enum p11_conn_error {
	P11_ERR_NONE,
	P11_ERR_CLUSTER_NOT_FOUND,   /* module or token not there */
	P11_ERR_INVALID_CREDENTIALS, /* wrong PIN */
	P11_ERR_USER_LOCKED_OUT,     /* PIN locked */
	P11_ERR_NETWORK_ERRORS,	     /* the token went away while in use */
	P11_ERR_INTERNAL_ERROR,	     /* anything else */
};
const char *keystore_p11_error_name(enum p11_conn_error e);

enum p11_state {
	P11_DISCONNECTED,
	P11_CONNECTED,
	P11_FAILED
};

/*
 * Loads the module if needed, finds the token and logs in with pin.
 * K_OK when connected (also when it already was); otherwise
 * K_E_INVALID_STATE, the token is FAILED and *why says why. The PIN is
 * not kept.
 */
K_MUST_CHECK k_status keystore_p11_connect(const char *id, struct kslice pin,
					   enum p11_conn_error *why);
/*
 * keystore_p11_connect with a PIN kept wrapped under the root key (base64
 * of keystore_wrap with aad): the PIN is unwrapped only for the login.
 * K_E_INTERNAL if it does not unwrap.
 */
K_MUST_CHECK k_status keystore_p11_connect_wrapped(const char *id, struct kslice aad,
						   const char *wrapped, enum p11_conn_error *why);
/* Logs out and closes the token's sessions; DISCONNECTED after. */
void keystore_p11_disconnect(const char *id);
/*
 * True if the token is connected and answers: a session taken from its
 * pool answers C_GetSessionInfo. A token that went away is marked FAILED.
 */
bool keystore_p11_probe(const char *id);
/* The token's state here; *why (may be NULL) is set for FAILED. */
enum p11_state keystore_p11_state(const char *id, enum p11_conn_error *why);

/*
 * A new AES-256 key inside the connected token `id` for the KMS key `arn`
 * (UUID key_id), version 1; its reference is appended to ref.
 * K_E_INVALID_STATE if the token is not connected.
 */
K_MUST_CHECK k_status keystore_p11_generate(const char *id, const uint8_t key_id[16],
					    const char *arn, struct kbuf *ref);

/*
 * The root key in a token (p11_root.c), for keystore.c: opened from an
 * RFC 7512 URI ("pkcs11:token=...;object=...?module-path=...&pin-source=
 * file:..."; the PIN else from KINKO_PKCS11_PIN); the object is made when
 * the token has none of that label. wrap/unwrap/check_value are those of
 * keystore.h, run inside the token.
 */
K_MUST_CHECK k_status keystore_p11_root_open(const char *uri, struct kbuf *msg);
void keystore_p11_root_close(void);
bool keystore_p11_root_active(void);
/*
 * CONNECTED; FAILED once its token went away; DISCONNECTED when none is
 * open, or when the token came back without the root key object.
 */
enum p11_state keystore_p11_root_state(void);
K_MUST_CHECK k_status keystore_p11_root_wrap(struct kslice aad, const struct ksecret *material,
					     struct kbuf *out);
K_MUST_CHECK k_status keystore_p11_root_unwrap(struct kslice aad, struct kslice wrapped,
					       struct ksecret **out);
K_MUST_CHECK k_status keystore_p11_root_check_value(uint8_t out[32]);

/* The token store's operations (name P11_STORE_NAME). */
extern const struct keystore_ops keystore_pkcs11;

#endif
