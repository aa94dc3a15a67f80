/*
 * keyops.h — key operations: the only interface through which kinko uses
 * key material.
 *
 * A key store holds the material of KMS keys and performs every operation
 * that needs it. Callers (kms/, secrets/) hold a handle, struct
 * keystore_key, and ask for operations; they never see key bytes. Each
 * store is one table of functions, struct keystore_ops. The software
 * store (keystore/soft.c) keeps material wrapped under the root key in
 * the key document and unwrapped in locked ksecret memory while a handle
 * lives; a PKCS#11 token or an external key store will be two more tables
 * of the same shape, chosen per key (keystore_find).
 *
 * Persistence. A store describes each material version by a reference,
 * a text the caller keeps in the key document ("Materials"[i]."Wrapped")
 * and hands back to open(). For the software store it is the material
 * wrapped under the root key (base64); for a token it would name the
 * token object. The caller never interprets it.
 *
 * Handles. A handle is immutable once made and reference counted; any
 * number of threads may run operations on it at once. keystore_key_unref
 * on the last reference calls the store's destroy(), which wipes every
 * copy of material the handle holds. A handle with 0 versions (a key
 * whose imported material is not there) answers K_E_INVALID_STATE to
 * every operation that needs material.
 *
 * Every member of struct keystore_ops may be NULL where a store cannot do
 * that operation; the dispatch functions below then answer
 * K_E_UNSUPPORTED. Return conventions are those of each dispatch function.
 */
#ifndef KINKO_KEYSTORE_KEYOPS_H
#define KINKO_KEYSTORE_KEYOPS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"
#include "crypto/aead.h"
#include "crypto/crypto.h"

#define KEYSTORE_MAX_MAC 64	     /* the longest MAC (HMAC-SHA-512) */
#define KEYSTORE_MAX_REF (64u << 10) /* the longest material reference */

struct keystore_ops;
struct keystore_import;
struct keystore_gcm;

/*
 * The part of a handle every store shares. A store allocates its own
 * structure with this as its first member; callers read it only through
 * the functions below.
 */
struct keystore_key {
	const struct keystore_ops *ops;
	atomic_int refs;
	uint32_t versions;  /* material versions 1..versions; 0: none */
	uint8_t key_id[16]; /* the KMS key's UUID, as ciphertext blobs name it */
};

struct keystore_ops {
	const char *name; /* "soft"; what a key document's "KeyStore" names */

	/* ---- material lifecycle ---- */
	K_MUST_CHECK k_status (*generate)(const char *spec, const char *arn, struct kbuf *ref);
	K_MUST_CHECK k_status (*open)(const char *arn, const uint8_t key_id[16],
				      const struct kslice *refs, uint32_t n,
				      struct keystore_key **out);
	K_MUST_CHECK k_status (*new_version)(const struct keystore_key *cur, const char *spec,
					     const char *arn, struct kbuf *ref,
					     struct keystore_key **out);
	void (*destroy)(struct keystore_key *h);
	/*
	 * Destroys the material the references name where the store keeps it
	 * outside the key document (a token's objects). NULL: nothing to do.
	 */
	K_MUST_CHECK k_status (*erase)(const struct kslice *refs, uint32_t n);
	/*
	 * False while the store cannot reach the key's material (a token
	 * that is not connected): the key's state is then Unavailable.
	 * NULL: always available.
	 */
	bool (*available)(const struct keystore_key *h);

	/* ---- symmetric encryption (blob format: crypto.h) ---- */
	K_MUST_CHECK k_status (*encrypt)(const struct keystore_key *h, struct kslice ectx,
					 struct kslice pt, struct kbuf *blob);
	K_MUST_CHECK k_status (*decrypt)(const struct keystore_key *h,
					 const struct crypto_blob *blob, struct kslice ectx,
					 struct kbuf *pt);
	K_MUST_CHECK k_status (*generate_data_key)(const struct keystore_key *h, struct kslice ectx,
						   struct ksecret *dk, struct kbuf *blob);
	K_MUST_CHECK k_status (*generate_data_key_pair)(const struct keystore_key *h,
							const char *pair_spec, struct kslice ectx,
							struct kbuf *spki, struct kbuf *blob,
							struct ksecret **priv);

	/* ---- asymmetric keys ---- */
	K_MUST_CHECK k_status (*public_key)(const struct keystore_key *h, struct kbuf *spki);
	K_MUST_CHECK k_status (*sign)(const struct keystore_key *h, const char *alg, bool is_digest,
				      struct kslice msg, struct kbuf *sig);
	K_MUST_CHECK k_status (*verify)(const struct keystore_key *h, const char *alg,
					bool is_digest, struct kslice msg, struct kslice sig,
					bool *valid);
	K_MUST_CHECK k_status (*asym_encrypt)(const struct keystore_key *h, const char *alg,
					      struct kslice pt, struct kbuf *ct);
	K_MUST_CHECK k_status (*asym_decrypt)(const struct keystore_key *h, const char *alg,
					      struct kslice ct, struct kbuf *pt);
	K_MUST_CHECK k_status (*derive_shared_secret)(const struct keystore_key *h,
						      struct kslice peer_spki,
						      struct ksecret **out);

	/* ---- HMAC keys ---- */
	K_MUST_CHECK k_status (*mac)(const struct keystore_key *h, const char *alg,
				     struct kslice msg, uint8_t mac[KEYSTORE_MAX_MAC],
				     size_t *mac_len);
	K_MUST_CHECK k_status (*mac_verify)(const struct keystore_key *h, const char *alg,
					    struct kslice msg, struct kslice mac, bool *valid);

	/* ---- imported material ---- */
	K_MUST_CHECK k_status (*import_params)(const char *arn, const char *wrap_spec,
					       const char *wrap_alg, int64_t valid_to,
					       struct kbuf *spki, struct kbuf *token);
	K_MUST_CHECK k_status (*import)(struct keystore_import *req);

	/* ---- plain AES-GCM, IV and tag apart (the XKS proxy API) ---- */
	K_MUST_CHECK k_status (*gcm_encrypt)(const struct keystore_key *h, struct keystore_gcm *g,
					     struct kslice pt, struct kbuf *ct);
	K_MUST_CHECK k_status (*gcm_decrypt)(const struct keystore_key *h,
					     const struct keystore_gcm *g, struct kslice ct,
					     struct kbuf *pt);
};

/* ---- choosing a store ------------------------------------------------------- */

/* The software store (keystore/soft.c): the default for every key. */
extern const struct keystore_ops keystore_soft;

/*
 * The store a key document names in its "KeyStore" member: NULL or "" is
 * the software store; otherwise a store added with keystore_register.
 * NULL if no store of that name is registered.
 */
const struct keystore_ops *keystore_find(const char *name);
/*
 * Makes a store available to keystore_find under ops->name. Call before
 * serving (not thread-safe against keystore_find). K_E_ALREADY_EXISTS for
 * a name taken, K_E_LIMIT_EXCEEDED past KEYSTORE_MAX_STORES.
 */
#define KEYSTORE_MAX_STORES 8
K_MUST_CHECK k_status keystore_register(const struct keystore_ops *ops);
/* Forgets every registered store (tests). */
void keystore_unregister_all(void);

/* ---- material lifecycle ----------------------------------------------------- */

/*
 * New material of a key spec ("SYMMETRIC_DEFAULT", "HMAC_256", "RSA_2048",
 * ...) as version 1 of the key `arn`; its reference is appended to ref.
 * K_E_UNSUPPORTED for a spec the store cannot generate.
 */
K_MUST_CHECK k_status keystore_generate(const struct keystore_ops *ops, const char *spec,
					const char *arn, struct kbuf *ref);
/*
 * A handle on the material versions refs[0..n) (version i+1 is refs[i]) of
 * the key `arn` whose UUID is key_id; n may be 0. On K_OK *out holds one
 * reference the caller releases with keystore_key_unref. K_E_INTERNAL if
 * a reference does not open (wrong root key, damage).
 */
K_MUST_CHECK k_status keystore_open(const struct keystore_ops *ops, const char *arn,
				    const uint8_t key_id[16], const struct kslice *refs, uint32_t n,
				    struct keystore_key **out);
/*
 * Rotation: new material of `spec` as version cur->versions + 1, its
 * reference appended to ref, and a new handle (*out, owned by the caller)
 * holding every version of cur and the new one. cur is unchanged.
 */
K_MUST_CHECK k_status keystore_new_version(const struct keystore_key *cur, const char *spec,
					   const char *arn, struct kbuf *ref,
					   struct keystore_key **out);

/*
 * Deletion: destroys the material versions refs[0..n) of a deleted key
 * where the store keeps them apart from the key document (a PKCS#11
 * token's objects: C_DestroyObject). K_OK once none is left (also when
 * some were already gone, and for a store that keeps nothing apart, such
 * as the software store, whose material goes with the document);
 * K_E_INVALID_STATE when the store cannot reach them now (a token not
 * connected): call again later; K_E_INTERNAL for a reference that does
 * not parse.
 */
K_MUST_CHECK k_status keystore_erase(const struct keystore_ops *ops, const struct kslice *refs,
				     uint32_t n);

static inline struct keystore_key *keystore_key_ref(struct keystore_key *h)
{
	if (h != NULL)
		atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
	return h;
}
/* Drops a reference; the last one destroys the handle (material wiped). NULL allowed. */
void keystore_key_unref(struct keystore_key *h);

static inline uint32_t keystore_key_versions(const struct keystore_key *h)
{
	return h != NULL ? h->versions : 0;
}
/* False while the key's store cannot reach its material (keystore_ops.available). */
static inline bool keystore_key_available(const struct keystore_key *h)
{
	return h == NULL || h->ops->available == NULL || h->ops->available(h);
}
static inline const char *keystore_key_store(const struct keystore_key *h)
{
	return h->ops->name;
}

/* ---- symmetric encryption: the hot path, one indirect call each ------------ */

/*
 * Encrypts pt under the newest version with the canonical encryption
 * context ectx (crypto_ectx_canonical), appending a ciphertext blob to
 * out. K_E_INVALID_STATE without material; K_E_VALIDATION if out cannot
 * grow that far; out unchanged on failure.
 */
static inline K_MUST_CHECK k_status keystore_encrypt(const struct keystore_key *h,
						     struct kslice ectx, struct kslice pt,
						     struct kbuf *out)
{
	if (h->ops->encrypt == NULL)
		return K_E_UNSUPPORTED;
	return h->ops->encrypt(h, ectx, pt, out);
}

/*
 * Decrypts a parsed blob of this key (the caller checked blob->key_id),
 * appending the plaintext to out. K_E_INVALID_CIPHERTEXT for a version the
 * key does not have and for any authentication failure (wrong context,
 * tampering); out unchanged then.
 */
static inline K_MUST_CHECK k_status keystore_decrypt(const struct keystore_key *h,
						     const struct crypto_blob *blob,
						     struct kslice ectx, struct kbuf *out)
{
	if (h->ops->decrypt == NULL)
		return K_E_UNSUPPORTED;
	return h->ops->decrypt(h, blob, ectx, out);
}

/*
 * A data key: fills dk (ksecret_len(dk) bytes, the caller's secret, for
 * instance a ksecret_scratch) with new random bytes and appends their
 * encryption under the newest version, with ectx, to blob — the blob
 * Decrypt opens. dk is wiped on failure.
 */
static inline K_MUST_CHECK k_status keystore_generate_data_key(const struct keystore_key *h,
							       struct kslice ectx,
							       struct ksecret *dk,
							       struct kbuf *blob)
{
	if (h->ops->generate_data_key == NULL)
		return K_E_UNSUPPORTED;
	return h->ops->generate_data_key(h, ectx, dk, blob);
}

/*
 * A data key pair of pair_spec ("RSA_2048", "ECC_NIST_P256", ...): its
 * public key (DER SPKI) appended to spki, its PKCS#8 private key encrypted
 * under the newest version (with ectx) appended to blob, and, when priv is
 * not NULL, the PKCS#8 plaintext in a new secret *priv the caller frees.
 */
K_MUST_CHECK k_status keystore_generate_data_key_pair(const struct keystore_key *h,
						      const char *pair_spec, struct kslice ectx,
						      struct kbuf *spki, struct kbuf *blob,
						      struct ksecret **priv);

/* ---- asymmetric, HMAC and key agreement -------------------------------------- */

/* The DER SubjectPublicKeyInfo of an asymmetric key, appended to spki. */
K_MUST_CHECK k_status keystore_public_key(const struct keystore_key *h, struct kbuf *spki);
/*
 * Signs with an AWS signing algorithm (crypto/asym.h says which); msg is
 * the digest when is_digest. Appends the signature to sig.
 */
K_MUST_CHECK k_status keystore_sign(const struct keystore_key *h, const char *alg, bool is_digest,
				    struct kslice msg, struct kbuf *sig);
/* *valid false for a signature that does not verify (not an error). */
K_MUST_CHECK k_status keystore_verify(const struct keystore_key *h, const char *alg, bool is_digest,
				      struct kslice msg, struct kslice sig, bool *valid);
/*
 * RSAES-OAEP with an RSA key. encrypt: K_E_VALIDATION for a plaintext
 * over the bound (asym_oaep_max_plaintext_spec). decrypt appends the
 * plaintext to pt; K_E_INVALID_CIPHERTEXT if it does not decrypt.
 */
K_MUST_CHECK k_status keystore_asym_encrypt(const struct keystore_key *h, const char *alg,
					    struct kslice pt, struct kbuf *ct);
K_MUST_CHECK k_status keystore_asym_decrypt(const struct keystore_key *h, const char *alg,
					    struct kslice ct, struct kbuf *pt);
/*
 * ECDH with a peer's DER SPKI: the raw shared secret in a new secret the
 * caller frees. K_E_VALIDATION if the peer key is malformed or on another
 * curve.
 */
K_MUST_CHECK k_status keystore_derive_shared_secret(const struct keystore_key *h,
						    struct kslice peer_spki, struct ksecret **out);
/* HMAC with an AWS MAC algorithm; the caller wipes mac after use. */
K_MUST_CHECK k_status keystore_mac(const struct keystore_key *h, const char *alg, struct kslice msg,
				   uint8_t mac[KEYSTORE_MAX_MAC], size_t *mac_len);
/* *valid: the MAC of msg is `mac` (compared in constant time). */
K_MUST_CHECK k_status keystore_mac_verify(const struct keystore_key *h, const char *alg,
					  struct kslice msg, struct kslice mac, bool *valid);

/* ---- imported material ------------------------------------------------------- */

/*
 * GetParametersForImport: a new wrapping key pair of wrap_spec for
 * wrap_alg (AWS's WrappingAlgorithm); its public key appended to spki and
 * an import token, bound to the key `arn` and valid until valid_to (epoch
 * seconds), appended to token. The token carries everything import()
 * needs: the store keeps no state between the two calls.
 */
K_MUST_CHECK k_status keystore_import_params(const struct keystore_ops *ops, const char *arn,
					     const char *wrap_spec, const char *wrap_alg,
					     int64_t valid_to, struct kbuf *spki,
					     struct kbuf *token);

/*
 * ImportKeyMaterial, in and out. The fingerprint lets a key insist on
 * "the same key material that was originally imported" after its material
 * is deleted: the store makes it on the first import and the caller keeps
 * it in the key document, opaque, like a reference.
 */
struct keystore_import {
	/* in */
	const char *arn;
	const uint8_t *key_id;	 /* 16 bytes */
	const char *spec;	 /* the key's KeySpec */
	struct kslice token;	 /* from import_params */
	struct kslice encrypted; /* EncryptedKeyMaterial */
	int64_t now;
	const char *fingerprint; /* the key's, NULL before its first import */
	const char *commitment;	 /* base64 (keystore/peer.h) the material must match, or NULL */
	/* out */
	const char *wrap_alg;	      /* the token's WrappingAlgorithm, once it opens */
	struct kbuf *fingerprint_out; /* the fingerprint to keep (appended) */
	struct kbuf *ref;	      /* reference of material version 1 (appended) */
	struct keystore_key *key;     /* handle on the material, owned by the caller */
};
/*
 * Opens the token, unwraps the material and checks it. Errors, in the
 * order they are checked: K_E_INVALID_IMPORT_TOKEN (not a token of this
 * key), K_E_EXPIRED_IMPORT_TOKEN, K_E_INVALID_CIPHERTEXT (does not unwrap
 * with the token's key), K_E_VALIDATION (not material of req->spec),
 * K_E_INCORRECT_KEY_MATERIAL (not the material of req->commitment or of
 * req->fingerprint).
 * Nothing is set in req's outputs but wrap_alg unless K_OK.
 */
K_MUST_CHECK k_status keystore_import(const struct keystore_ops *ops, struct keystore_import *req);

/* ---- plain AES-GCM (the XKS proxy's Encrypt and Decrypt) ------------------ */

/*
 * One AES-256-GCM message whose IV and tag travel apart from its
 * ciphertext, as the XKS proxy API carries them. The GCM key is derived
 * from the material under `label` (crypto/aead.h), never the material
 * itself, so these messages and the key's own blobs never share a key.
 */
struct keystore_gcm {
	struct kslice label;		  /* in: the use's derivation label, e.g. "kinko/xks/v1" */
	struct kslice aad;		  /* in: the whole AAD */
	uint32_t version;		  /* encrypt: out, the newest version; decrypt: in */
	uint8_t iv[CRYPTO_AEAD_IV_LEN];	  /* encrypt: out; decrypt: in */
	uint8_t tag[CRYPTO_AEAD_TAG_LEN]; /* encrypt: out; decrypt: in */
};
/*
 * Encrypts pt under the newest version of a SYMMETRIC_DEFAULT key,
 * appending the ciphertext (pt.len bytes) to ct and filling g's version,
 * iv and tag. K_E_INVALID_STATE without material, K_E_VALIDATION if ct
 * cannot grow by pt.len + CRYPTO_AEAD_TAG_LEN (room the tag passes
 * through); ct unchanged on failure.
 */
K_MUST_CHECK k_status keystore_gcm_encrypt(const struct keystore_key *h, struct keystore_gcm *g,
					   struct kslice pt, struct kbuf *ct);
/*
 * Decrypts with version g->version, appending the plaintext to pt.
 * K_E_INVALID_CIPHERTEXT for a version the key does not have and for any
 * authentication failure; pt unchanged then.
 */
K_MUST_CHECK k_status keystore_gcm_decrypt(const struct keystore_key *h,
					   const struct keystore_gcm *g, struct kslice ct,
					   struct kbuf *pt);

/* ---- envelope encryption (Secrets Manager's values) ------------------------- */

/*
 * Seals a value as Secrets Manager does: a new 256-bit data key
 * (generate_data_key under h with ectx) encrypts the value (a blob with a
 * zero key id, version 1, the same ectx). Appends the data key's blob to
 * wrapped_dk and the value's blob to blob; the data key itself is wiped.
 */
K_MUST_CHECK k_status keystore_envelope_seal(const struct keystore_key *h, struct kslice ectx,
					     struct kslice value, struct kbuf *wrapped_dk,
					     struct kbuf *blob);
/*
 * Opens what keystore_envelope_seal made, appending the value to out.
 * K_E_INVALID_CIPHERTEXT on any failure: a data key not of this key or
 * version, the wrong context, tampering.
 */
K_MUST_CHECK k_status keystore_envelope_open(const struct keystore_key *h, struct kslice ectx,
					     struct kslice wrapped_dk, struct kslice blob,
					     struct kbuf *out);
/*
 * The value half of the envelope, for a data key made elsewhere (a key of
 * an external key store, whose data key the proxy's layer wraps: see
 * kms/envelope.h). keystore_value_seal encrypts value under the 256-bit dk
 * (the blob keystore_envelope_seal makes, appended to blob);
 * keystore_value_open reverses it with the data key's bytes, which it
 * copies into locked memory. K_E_INVALID_CIPHERTEXT on any failure.
 */
K_MUST_CHECK k_status keystore_value_seal(const struct ksecret *dk, struct kslice ectx,
					  struct kslice value, struct kbuf *blob);
K_MUST_CHECK k_status keystore_value_open(struct kslice dk, struct kslice ectx, struct kslice blob,
					  struct kbuf *out);

#endif
