/*
 * p11_internal.h — shared by the PKCS#11 files of keystore/ only:
 * p11_token.c (modules, tokens, connection, the session pool) and
 * pkcs11.c (the key operations).
 */
#ifndef KINKO_KEYSTORE_P11_INTERNAL_H
#define KINKO_KEYSTORE_P11_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <p11-kit/pkcs11.h>
#include "keystore/pkcs11.h"

#define P11_POOL_MAX 32 /* idle sessions kept per token */

struct p11_token {
	char id[P11_CLUSTER_ID_LEN + 1];
	char *module_path;
	char *label;
	long slot;
	char *anchor;
	/*
	 * Operations hold `use` for reading while they use a session;
	 * connect and disconnect hold it for writing, so no session is in
	 * use while the module is set up or torn down.
	 */
	pthread_rwlock_t use;
	pthread_mutex_t pool_mu;
	CK_SESSION_HANDLE idle[P11_POOL_MAX];
	size_t n_idle;
	atomic_int state;	/* enum p11_state */
	atomic_int why;		/* enum p11_conn_error */
	CK_FUNCTION_LIST_PTR f; /* the module's, while connected */
	CK_SLOT_ID slot_id;
	CK_SESSION_HANDLE login; /* the session that logged in; open while connected */
};

/* A token not in the declared list (the root key's), or NULL; cfg is copied. */
struct p11_token *p11_token_new(const struct p11_token_config *cfg);
void p11_token_free(struct p11_token *t);
/* keystore_p11_connect and keystore_p11_disconnect for any token. */
K_MUST_CHECK k_status p11_token_connect(struct p11_token *t, struct kslice pin,
					enum p11_conn_error *why);
void p11_token_disconnect(struct p11_token *t);
/* The declared token of that id, or NULL. */
struct p11_token *p11_token_find(const char *id);
/*
 * Takes the token for an operation: K_OK with `use` held for reading and a
 * session in *s (its own until p11_put), K_E_INVALID_STATE if the token is
 * not connected (nothing held then).
 */
K_MUST_CHECK k_status p11_take(struct p11_token *t, CK_SESSION_HANDLE *s);
/* Returns the session (closed instead if `broken`) and releases `use`. */
void p11_put(struct p11_token *t, CK_SESSION_HANDLE s, bool broken);
/* True for a return value that means the token or its session went away. */
bool p11_rv_lost(CK_RV rv);
/* Marks the token FAILED (NETWORK_ERRORS) after such a return value. */
void p11_mark_lost(struct p11_token *t, CK_RV rv);

/*
 * The root key's RFC 7512 URI (p11_uri.c): pkcs11:token=LABEL;object=LABEL
 * ?module-path=/PATH[&pin-source=file:PATH]. Values are percent-decoded;
 * a value holding a control byte (a decoded %00 included), a '%' without
 * two hexadecimal digits, or longer than P11_URI_VALUE_MAX - 1 bytes is
 * refused: K_E_VALIDATION with the reason in msg, as for a URI without
 * token, object or an absolute module-path. pin_file is "" without a
 * pin-source.
 */
#define P11_URI_VALUE_MAX 1024
struct p11_uri {
	char token[P11_URI_VALUE_MAX], object[P11_URI_VALUE_MAX], module[P11_URI_VALUE_MAX],
		pin_file[P11_URI_VALUE_MAX];
};
K_MUST_CHECK k_status p11_uri_parse(const char *uri, struct p11_uri *u, struct kbuf *msg);

#endif
