/*
 * xks.h — the store of keys in external key stores (AWS's
 * EXTERNAL_KEY_STORE origin): kinko's own layer of their double
 * encryption.
 *
 * A key in an external key store is encrypted twice: first under
 * material kinko generates and keeps, wrapped under the root key like a
 * software key's (this store), then under the external key, by the
 * external key store proxy (kms/xks_keys.c calls it). Neither layer alone
 * opens the data (docs/CIPHERTEXT.md, "Keys in external key stores").
 *
 * The handle answers none of the symmetric members itself: a caller that
 * does not add the external layer (a data key sealed for a secret, the
 * XKS proxy serving the key, a data key pair) gets K_E_UNSUPPORTED rather
 * than a ciphertext with one layer. kms takes kinko's layer with
 * keystore_xks_layer and adds the proxy's around it.
 */
#ifndef KINKO_KEYSTORE_XKS_H
#define KINKO_KEYSTORE_XKS_H

#include "keystore/keyops.h"

#define XKS_KEYSTORE_NAME "xks" /* what a key document's "KeyStore" names */

/* The store (name XKS_KEYSTORE_NAME): generate, open and destroy only. */
extern const struct keystore_ops keystore_xks;

/*
 * kinko's layer of a key of this store: a software-store handle on the
 * key's own material, borrowed (valid while h is). NULL when h is not a
 * key of this store.
 */
const struct keystore_key *keystore_xks_layer(const struct keystore_key *h);

#endif
