/*
 * asym.h — kinko's asymmetric, HMAC and key-agreement cryptography
 * (OpenSSL 3 EVP only).
 *
 * Private keys travel and rest as PKCS#8 DER (PrivateKeyInfo) inside a
 * ksecret; public keys leave as DER SubjectPublicKeyInfo, the form AWS's
 * GetPublicKey returns. A parsed key (struct asym_key) is immutable once
 * loaded and may be used by any number of threads at once: every
 * operation makes its own EVP_PKEY_CTX.
 *
 * Algorithm names are AWS's (SigningAlgorithmSpec, EncryptionAlgorithmSpec,
 * MacAlgorithmSpec, AlgorithmSpec for import wrapping). Signatures are
 * what AWS returns: RSASSA-PSS with salt length = digest length,
 * PKCS#1 v1.5, ECDSA as a DER Ecdsa-Sig-Value, Ed25519 as 64 raw bytes.
 */
#ifndef KINKO_CRYPTO_ASYM_H
#define KINKO_CRYPTO_ASYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

#define ASYM_MAX_SIG 1024   /* RSA-4096 is 512 bytes; ECDSA P-521 DER 139 */
#define ASYM_MAX_SPKI 1024  /* RSA-4096 SPKI is 550 bytes */
#define ASYM_MAX_PKCS8 4096 /* RSA-4096 PKCS#8 is about 2.4 KiB */
#define ASYM_MAX_MAC 64

/* A parsed private key (opaque). */
struct asym_key;

/*
 * Generates a private key for an AWS key spec or key-pair spec
 * ("RSA_2048" ... "RSA_4096", "ECC_NIST_P256/P384/P521", "ECC_SECG_P256K1",
 * "ECC_NIST_EDWARDS25519") and returns it as PKCS#8 DER in a new secret
 * owned by the caller. K_E_UNSUPPORTED for any other spec. An RSA key
 * comes from the key pool when it has one ready (keypool.c), and the
 * first call for an RSA spec starts keeping that pool full.
 */
K_MUST_CHECK k_status asym_generate(const char *spec, struct ksecret **pkcs8_out);

/* How many RSA keys of each spec the key pool keeps ready. */
#define ASYM_POOL_DEPTH 2
/*
 * Turns the pool on (a server, before it serves); until then
 * asym_pool_take finds nothing and starts nothing.
 */
void asym_pool_enable(void);
/*
 * Takes a ready key of spec from the pool into *out (true), or returns
 * false (none ready, spec not pooled, or the pool not enabled); with the
 * pool enabled, spec's pool is refilled in the background from then on.
 */
bool asym_pool_take(const char *spec, struct ksecret **out);
/* The keys of spec ready in the pool now (tests, diagnostics). */
unsigned asym_pool_ready(const char *spec);
/*
 * Stops the pool's thread (ending the key it is making), wipes and frees
 * every ready key. A later asym_pool_take finds none and starts no
 * thread; a server calls this once its requests are drained.
 */
void asym_pool_stop(void);

/*
 * Parses PKCS#8 DER into a key the caller frees with asym_key_free.
 * K_E_VALIDATION if the bytes are not a private key.
 */
K_MUST_CHECK k_status asym_key_load(const struct ksecret *pkcs8, struct asym_key **out);
void asym_key_free(struct asym_key *k);

/*
 * The AWS key spec a private key belongs to ("RSA_2048", "ECC_NIST_P256",
 * ...), or NULL if kinko has no spec for it (an RSA-1024 key, a curve AWS
 * does not offer). The string is static.
 */
const char *asym_key_spec(const struct asym_key *k);

/* Appends the DER SubjectPublicKeyInfo of a key to out. */
K_MUST_CHECK k_status asym_public_der(const struct asym_key *k, struct kbuf *out);

/*
 * The digest length an AWS signing algorithm signs (32 for *_SHA_256,
 * 48 for *_SHA_384, 64 for *_SHA_512); 0 for an unknown algorithm.
 * ED25519_SHA_512 signs the message itself and has no digest form here.
 */
size_t asym_sign_digest_len(const char *alg);
/* True if the algorithm can be used with a key of this spec. */
bool asym_sign_alg_fits(const char *alg, const char *spec);

/*
 * Signs msg with an AWS signing algorithm. `is_digest`: msg is already the
 * digest (the caller checked its length with asym_sign_digest_len).
 * Appends the signature to sig. K_E_INTERNAL on an OpenSSL failure.
 */
K_MUST_CHECK k_status asym_sign(const struct asym_key *k, const char *alg, bool is_digest,
				struct kslice msg, struct kbuf *sig);
/*
 * Verifies a signature; *valid is false for a signature that does not
 * verify or is malformed (that is not an error). K_E_INTERNAL only when
 * OpenSSL cannot run the check at all.
 */
K_MUST_CHECK k_status asym_verify(const struct asym_key *k, const char *alg, bool is_digest,
				  struct kslice msg, struct kslice sig, bool *valid);

/*
 * RSAES-OAEP ("RSAES_OAEP_SHA_1" / "RSAES_OAEP_SHA_256", MGF1 with the same
 * hash, no label). asym_oaep_max_plaintext is the largest plaintext for a
 * key (modulus bytes - 2 * hash length - 2), 0 for an unknown algorithm.
 */
size_t asym_oaep_max_plaintext(const struct asym_key *k, const char *alg);
/*
 * The same bound from an AWS key spec ("RSA_2048" ...) instead of a key,
 * for callers that hold no key; 0 for an unknown spec or algorithm.
 */
size_t asym_oaep_max_plaintext_spec(const char *spec, const char *alg);
K_MUST_CHECK k_status asym_oaep_encrypt(const struct asym_key *k, const char *alg, struct kslice pt,
					struct kbuf *out);
/*
 * Decrypts into a new secret owned by the caller. K_E_INVALID_CIPHERTEXT
 * for any ciphertext that does not decrypt.
 */
K_MUST_CHECK k_status asym_oaep_decrypt(const struct asym_key *k, const char *alg, struct kslice ct,
					struct ksecret **out);

/*
 * Unwraps key material wrapped for import with one of AWS's wrapping
 * algorithms: RSAES_OAEP_SHA_1 / RSAES_OAEP_SHA_256 (the material itself
 * under OAEP), RSA_AES_KEY_WRAP_SHA_1 / RSA_AES_KEY_WRAP_SHA_256 (an
 * ephemeral AES-256 key under OAEP, followed by the material under AES
 * key wrap with padding, RFC 5649). K_E_INVALID_CIPHERTEXT if it does not
 * unwrap.
 */
K_MUST_CHECK k_status asym_import_unwrap(const struct asym_key *wrapping, const char *alg,
					 struct kslice wrapped, struct ksecret **out);

/*
 * HMAC with an AWS MAC algorithm ("HMAC_SHA_224" ... "HMAC_SHA_512") over
 * msg, written to mac (ASYM_MAX_MAC bytes) with its length in *mac_len.
 */
K_MUST_CHECK k_status asym_hmac(const struct ksecret *key, const char *alg, struct kslice msg,
				uint8_t mac[ASYM_MAX_MAC], size_t *mac_len);

/*
 * An HMAC key prepared once for one algorithm (mac.c): an EVP_MAC_CTX with
 * the digest chosen and the key's inner and outer pads computed, which each
 * call duplicates (EVP_MAC_CTX_dup reads it only), so any number of threads
 * may use it at once. The prepared context holds state derived from the
 * key: asym_mac_free wipes it (OpenSSL cleanses a freed HMAC context).
 */
struct asym_mac;
/* Prepares key for alg ("HMAC_SHA_224" ... "HMAC_SHA_512"); the caller frees *out. */
K_MUST_CHECK k_status asym_mac_prepare(const struct ksecret *key, const char *alg,
				       struct asym_mac **out);
/* true if p was prepared for alg. */
bool asym_mac_is_for(const struct asym_mac *p, const char *alg);
/* The same output as asym_hmac with the prepared key and algorithm. */
K_MUST_CHECK k_status asym_mac_run(const struct asym_mac *p, struct kslice msg,
				   uint8_t mac[ASYM_MAX_MAC], size_t *mac_len);
void asym_mac_free(struct asym_mac *p);

/*
 * ECDH between a private key and a peer's DER SubjectPublicKeyInfo on the
 * same curve; the raw shared secret (the x coordinate) in a new secret.
 * K_E_VALIDATION if the peer key is malformed or on another curve.
 */
K_MUST_CHECK k_status asym_ecdh(const struct asym_key *k, struct kslice peer_spki,
				struct ksecret **out);

#endif
