/*
 * peer.h — key material between peer deployments (multi-Region keys
 * across deployments, docs/REGIONS.md "Across deployments").
 *
 * The deployment's wrapping key pair (RSA, crypto/peerwrap.h) lives in the
 * store as one record, its private key wrapped under the root key:
 * every node of a cluster shares it, and it survives restarts. It is made
 * at the first start that needs it. Its public key (PEM) is what peers
 * pin in their configuration (`kinko peer wrapping-key` prints it).
 *
 * The material of a multi-Region key leaves only sealed for one peer:
 * keystore_peer_seal unwraps the key's references under this root key
 * and seals them for the peer's pinned public key in one step, so no
 * caller sees the bytes; keystore_peer_open is the other side, which
 * opens them with the wrapping key and wraps each version again under
 * its own root key. Only the software store's references travel
 * (multi-Region keys are never in a custom key store).
 */
#ifndef KINKO_KEYSTORE_PEER_H
#define KINKO_KEYSTORE_PEER_H

#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "storage/storage.h"

/* Where the store keeps the wrapping key pair: {"Wrapped": B64, "PublicKey": PEM}. */
#define KEYSTORE_PEER_KEY_KIND "meta"
#define KEYSTORE_PEER_KEY_NS ""
#define KEYSTORE_PEER_KEY_ID "peer-wrapping-key"
/* The most material versions one transfer carries. */
#define KEYSTORE_PEER_MAX_VERSIONS 4096
/* The largest sealed transfer. */
#define KEYSTORE_PEER_MAX_SEALED (4u << 20)

/*
 * Loads the wrapping key pair from st, making and storing it first when
 * `create` and there is none (a race with another node keeps the first
 * one stored). Needs the root key (keystore_open_file). K_E_NOT_FOUND
 * when absent and !create; K_E_INTERNAL if it does not unwrap.
 */
K_MUST_CHECK k_status keystore_peer_key_load(struct storage *st, bool create);
/* The loaded public key as PEM, appended to out. K_E_INTERNAL before a load. */
K_MUST_CHECK k_status keystore_peer_public_pem(struct kbuf *out);
/* Forgets the loaded key pair (wiped). */
void keystore_peer_key_release(void);

/*
 * Seals versions 1..n of arn's material (software-store references
 * refs[0..n)) for the holder of peer_pem's private key, aad bound;
 * appends the message to out. K_E_VALIDATION for a bad pinned key,
 * K_E_INTERNAL if a reference does not open.
 */
K_MUST_CHECK k_status keystore_peer_seal(const char *arn, const struct kslice *refs, uint32_t n,
					 struct kslice peer_pem, struct kslice aad,
					 struct kbuf *out);

/* Called once per version opened, in order from 1, with its new reference. */
typedef K_MUST_CHECK k_status (*keystore_peer_ref_cb)(void *arg, uint32_t version,
						      struct kslice ref);
/*
 * Opens a sealed transfer with the loaded wrapping key and hands each
 * version, wrapped again under this root key for arn, to each().
 * K_E_INVALID_CIPHERTEXT if it was not sealed for this deployment's key
 * or was altered; K_E_INTERNAL before a load.
 */
K_MUST_CHECK k_status keystore_peer_open(const char *arn, struct kslice aad, struct kslice sealed,
					 keystore_peer_ref_cb each, void *arg);

/*
 * The commitment to version `version` of arn's material (a software-store
 * reference; crypto/commit.h), base64, appended to out: what a peer's
 * ImportKeyMaterial checks imported material against. K_E_INTERNAL if
 * the reference does not open.
 */
K_MUST_CHECK k_status keystore_peer_commitment(const char *arn, uint32_t version, struct kslice ref,
					       struct kbuf *out);

#endif
