/*
 * peerwrap.h — key material sealed for a peer deployment (multi-Region
 * keys across deployments, docs/REGIONS.md "Across deployments").
 *
 * Each deployment has an RSA wrapping key pair; its peers pin the public
 * key (PEM) in their configuration. A sender seals for one peer:
 *
 *   "KPW1" | u16 length of E | E = RSAES-OAEP-SHA-256(peer public key, K)
 *          | IV (12 bytes) | AES-256-GCM(K, IV, AAD = LABEL || aad, payload) | tag (16)
 *
 * where K is a fresh random AES-256 key used for this one message and
 * LABEL is "kinko/peer-wrap/v1". Only the holder of the peer's private
 * key recovers K; the caller's aad (the key ARN, the Regions) binds the
 * message to its purpose, so a sealed message cannot be replayed as
 * another key's material. Everything is OpenSSL (EVP); nothing here
 * implements a primitive.
 */
#ifndef KINKO_CRYPTO_PEERWRAP_H
#define KINKO_CRYPTO_PEERWRAP_H

#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"
#include "crypto/asym.h"

/* The wrapping key pair's spec (asym_generate). */
#define CRYPTO_PEER_KEY_SPEC "RSA_3072"
/* The smallest RSA modulus accepted as a peer's pinned key, in bits. */
#define CRYPTO_PEER_MIN_BITS 2048
/* The longest PEM text of a public key accepted. */
#define CRYPTO_PEER_MAX_PEM 8192
/* Bytes a sealed message adds to its payload, at most (4096-bit keys). */
#define CRYPTO_PEER_OVERHEAD (4 + 2 + 512 + 12 + 16)

/*
 * K_OK if pem is one PEM public key (SubjectPublicKeyInfo) of RSA with
 * at least CRYPTO_PEER_MIN_BITS bits; K_E_VALIDATION otherwise.
 */
K_MUST_CHECK k_status crypto_peer_pem_check(struct kslice pem);

/*
 * Seals payload for the holder of peer_pem's private key, with aad
 * bound; appends the message to out (unchanged on failure).
 * K_E_VALIDATION for a pem crypto_peer_pem_check refuses or an out too
 * small, K_E_INTERNAL if OpenSSL fails.
 */
K_MUST_CHECK k_status crypto_peer_seal(struct kslice peer_pem, struct kslice aad,
				       const struct ksecret *payload, struct kbuf *out);

/*
 * Opens a sealed message with the private key own and the same aad: the
 * payload in a new secret the caller frees. K_E_INVALID_CIPHERTEXT for a
 * message that is malformed, sealed for another key, or altered in any
 * byte, or whose aad differs.
 */
K_MUST_CHECK k_status crypto_peer_open(const struct asym_key *own, struct kslice aad,
				       struct kslice sealed, struct ksecret **out);

/* own's public key as PEM text (SubjectPublicKeyInfo), appended to out. */
K_MUST_CHECK k_status crypto_peer_public_pem(const struct asym_key *own, struct kbuf *out);

/* The SHA-256 of a PEM public key's DER, as 64 hex digits (for logs and checks). */
K_MUST_CHECK k_status crypto_peer_fingerprint(struct kslice pem, char out[65]);

#endif
