/*
 * keystore.h — the root of trust that protects key material at rest.
 *
 * Everything kinko stores about a key's material is wrapped under the root
 * key: keystore_wrap() on the way to storage, keystore_unwrap() on the way
 * back into memory. The interface is deliberately narrow (wrap, unwrap,
 * close) so that a PKCS#11 token can hold the root key later, or the whole
 * keystore can move into its own process.
 *
 * The file backend keeps a 32-byte root key in a file of mode 0600. In dev
 * mode the file is created on first start. The root key is never logged.
 */
#ifndef KINKO_KEYSTORE_KEYSTORE_H
#define KINKO_KEYSTORE_KEYSTORE_H

#include <stdbool.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

/*
 * Loads the root key from `path`; when `create` and the file does not
 * exist, makes a new random key and writes it with mode 0600 (fsync'd).
 * A file with wider permissions than 0600 is refused.
 */
K_MUST_CHECK k_status keystore_open_file(const char *path, bool create, struct kbuf *msg);
/* Wraps material; `aad` binds it to its owner (key ARN and version). */
K_MUST_CHECK k_status keystore_wrap(struct kslice aad, const struct ksecret *material,
				    struct kbuf *out);
/* Unwraps into a new secret owned by the caller. */
K_MUST_CHECK k_status keystore_unwrap(struct kslice aad, struct kslice wrapped,
				      struct ksecret **out);
/*
 * The loaded root key's check value (crypto_check_value), appended to out
 * as 2 * CRYPTO_CHECK_VALUE_LEN lower-case hex digits. The store keeps it
 * (see KEYSTORE_CHECK_KIND) so that a root key that is valid but not the
 * store's is refused at start instead of failing every call.
 * K_E_INTERNAL without a root key or on failure, K_E_VALIDATION if out
 * cannot hold it.
 */
K_MUST_CHECK k_status keystore_check_value(struct kbuf *out);
/*
 * K_OK if `hex` is the loaded root key's check value (compared in constant
 * time), K_E_VALIDATION if it is not, K_E_INTERNAL without a root key.
 */
K_MUST_CHECK k_status keystore_check_value_matches(struct kslice hex);
void keystore_close(void);

/* Where the store keeps the check value: one record, {"KeyCheckValue": HEX}. */
#define KEYSTORE_CHECK_KIND "meta"
#define KEYSTORE_CHECK_NS ""
#define KEYSTORE_CHECK_ID "root-key-check-value"
/* The key check value as hex text (crypto/crypto.h's CRYPTO_CHECK_VALUE_LEN bytes). */
#define KEYSTORE_CHECK_VALUE_HEX (2 * CRYPTO_CHECK_VALUE_LEN)

#endif
