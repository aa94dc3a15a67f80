/*
 * asym.c — asymmetric keys, signatures, RSAES-OAEP, import unwrapping,
 * HMAC and ECDH for kinko (see asym.h). Everything goes through OpenSSL 3
 * EVP; nothing here implements a primitive.
 */
#include "crypto/asym.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto/internal.h"
#include "core/banned.h"

/* The signing algorithms that run on an EVP_PKEY_CTX (Ed25519 does not). */
static const char *const ctx_algs[] = {
	"RSASSA_PSS_SHA_256",
	"RSASSA_PSS_SHA_384",
	"RSASSA_PSS_SHA_512",
	"RSASSA_PKCS1_V1_5_SHA_256",
	"RSASSA_PKCS1_V1_5_SHA_384",
	"RSASSA_PKCS1_V1_5_SHA_512",
	"ECDSA_SHA_256",
	"ECDSA_SHA_384",
	"ECDSA_SHA_512",
};
#define N_CTX_ALGS (sizeof ctx_algs / sizeof ctx_algs[0])
enum {
	PREP_SIGN,
	PREP_VERIFY,
	N_PREP
};

struct asym_key {
	EVP_PKEY *pkey;
	const char *spec; /* AWS key spec, static; NULL if none fits */
	/*
	 * A context per operation and algorithm, set up once (sign or verify
	 * init, padding, digest) on first use and never changed after: each
	 * call works on a duplicate of it (EVP_PKEY_CTX_dup reads its source
	 * only), which skips OpenSSL's algorithm fetch and the parameter
	 * set-up of a new context. Published with a compare-and-swap, so the
	 * key stays usable by any number of threads without a lock.
	 */
	_Atomic(EVP_PKEY_CTX *) prepared[N_PREP][N_CTX_ALGS];
	/*
	 * Ed25519 signs and verifies through EVP_DigestSign/Verify, whose
	 * EVP_MD_CTX holds the operation: one per operation, initialised once
	 * on first use and copied for each call, as the contexts above.
	 */
	_Atomic(EVP_MD_CTX *) ed_prepared[N_PREP];
};

/*
 * Digests are fetched once per process; a fetched EVP_MD is immutable and
 * shared by all threads. (HMAC is in mac.c.)
 */
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha1, *md_sha224, *md_sha256, *md_sha384, *md_sha512;

static void algs_fetch(void)
{
	md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	md_sha224 = EVP_MD_fetch(NULL, "SHA224", NULL);
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	md_sha384 = EVP_MD_fetch(NULL, "SHA384", NULL);
	md_sha512 = EVP_MD_fetch(NULL, "SHA512", NULL);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The digest an AWS algorithm name ends with; NULL if none. */
static const EVP_MD *alg_md(const char *alg)
{
	pthread_once(&algs_once, algs_fetch);
	if (ends_with(alg, "_SHA_1"))
		return md_sha1;
	if (ends_with(alg, "_SHA_224"))
		return md_sha224;
	if (ends_with(alg, "_SHA_256"))
		return md_sha256;
	if (ends_with(alg, "_SHA_384"))
		return md_sha384;
	if (ends_with(alg, "_SHA_512"))
		return md_sha512;
	return NULL;
}

/* ---- keys ---------------------------------------------------------------- */

/* OpenSSL's progress callback: a nonzero *stop ends the generation. */
static int keygen_progress(EVP_PKEY_CTX *ctx)
{
	const atomic_bool *stop = EVP_PKEY_CTX_get_app_data(ctx);
	return stop != NULL && atomic_load(stop) ? 0 : 1;
}

/*
 * An RSA key of bits, with OpenSSL's progress callback asking *stop
 * (may be NULL) between candidate primes, so that a generation nobody
 * waits for any more ends within milliseconds. NULL if it failed or
 * was stopped.
 */
static EVP_PKEY *rsa_keygen(unsigned bits, const atomic_bool *stop)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (ctx == NULL)
		return NULL;
	if (EVP_PKEY_keygen_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) == 1) {
		EVP_PKEY_CTX_set_app_data(ctx, (void *)(uintptr_t)stop);
		EVP_PKEY_CTX_set_cb(ctx, keygen_progress);
		if (EVP_PKEY_generate(ctx, &pkey) != 1)
			pkey = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static EVP_PKEY *keygen(const char *spec, const atomic_bool *stop)
{
	if (strcmp(spec, "RSA_2048") == 0)
		return rsa_keygen(2048, stop);
	if (strcmp(spec, "RSA_3072") == 0)
		return rsa_keygen(3072, stop);
	if (strcmp(spec, "RSA_4096") == 0)
		return rsa_keygen(4096, stop);
	if (strcmp(spec, "ECC_NIST_P256") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (strcmp(spec, "ECC_NIST_P384") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	if (strcmp(spec, "ECC_NIST_P521") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	if (strcmp(spec, "ECC_SECG_P256K1") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	if (strcmp(spec, "ECC_NIST_EDWARDS25519") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return NULL;
}

static bool spec_known(const char *spec)
{
	static const char *const known[] = {"RSA_2048",
					    "RSA_3072",
					    "RSA_4096",
					    "ECC_NIST_P256",
					    "ECC_NIST_P384",
					    "ECC_NIST_P521",
					    "ECC_SECG_P256K1",
					    "ECC_NIST_EDWARDS25519",
					    NULL};
	for (size_t i = 0; known[i] != NULL; i++) {
		if (strcmp(known[i], spec) == 0)
			return true;
	}
	return false;
}

/*
 * PKCS#8 DER straight from OpenSSL's encoder into a secret. The encoder's
 * own buffer is wiped as it is freed.
 */
static K_MUST_CHECK k_status encode_pkcs8(EVP_PKEY *pkey, struct ksecret **out)
{
	k_status rc = K_E_INTERNAL;
	unsigned char *der = NULL;
	size_t der_len = 0;
	OSSL_ENCODER_CTX *ectx = OSSL_ENCODER_CTX_new_for_pkey(pkey, EVP_PKEY_KEYPAIR, "DER",
							       "PrivateKeyInfo", NULL);
	ENSURE_GOTO(ectx != NULL && OSSL_ENCODER_CTX_get_num_encoders(ectx) > 0, K_E_INTERNAL);
	ENSURE_GOTO(OSSL_ENCODER_to_data(ectx, &der, &der_len) == 1, K_E_INTERNAL);
	*out = ksecret_from(der, der_len);
	ENSURE_GOTO(*out != NULL, K_E_INTERNAL);
	rc = K_OK;
out:
	if (der != NULL)
		OPENSSL_clear_free(der, der_len);
	OSSL_ENCODER_CTX_free(ectx);
	return rc;
}

k_status asym_generate_new(const char *spec, const atomic_bool *stop, struct ksecret **pkcs8_out)
{
	*pkcs8_out = NULL;
	ENSURE(spec_known(spec), K_E_UNSUPPORTED);
	EVP_PKEY *pkey = keygen(spec, stop);
	ENSURE(pkey != NULL, K_E_INTERNAL);
	k_status rc = encode_pkcs8(pkey, pkcs8_out);
	EVP_PKEY_free(pkey);
	return rc;
}

k_status asym_generate(const char *spec, struct ksecret **pkcs8_out)
{
	*pkcs8_out = NULL;
	if (asym_pool_take(spec, pkcs8_out))
		return K_OK;
	return asym_generate_new(spec, NULL, pkcs8_out);
}

/* Names the AWS spec of a parsed key, from its type, size and curve. */
static const char *spec_of(EVP_PKEY *pkey)
{
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		switch (EVP_PKEY_get_bits(pkey)) {
		case 2048:
			return "RSA_2048";
		case 3072:
			return "RSA_3072";
		case 4096:
			return "RSA_4096";
		default:
			return NULL;
		}
	}
	if (EVP_PKEY_is_a(pkey, "ED25519"))
		return "ECC_NIST_EDWARDS25519";
	if (!EVP_PKEY_is_a(pkey, "EC"))
		return NULL;
	char group[64];
	size_t glen = 0;
	if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
					   &glen) != 1)
		return NULL;
	if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
		return "ECC_NIST_P256";
	if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
		return "ECC_NIST_P384";
	if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
		return "ECC_NIST_P521";
	if (strcmp(group, "secp256k1") == 0)
		return "ECC_SECG_P256K1";
	return NULL;
}

k_status asym_key_load(const struct ksecret *pkcs8, struct asym_key **out)
{
	*out = NULL;
	EVP_PKEY *pkey = NULL;
	const unsigned char *p = ksecret_cbytes(pkcs8);
	size_t len = ksecret_len(pkcs8);
	OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", "PrivateKeyInfo", NULL,
							       EVP_PKEY_KEYPAIR, NULL, NULL);
	ENSURE(dctx != NULL, K_E_INTERNAL);
	int ok = OSSL_DECODER_from_data(dctx, &p, &len);
	OSSL_DECODER_CTX_free(dctx);
	if (ok != 1 || pkey == NULL || len != 0) {
		ERR_clear_error();
		EVP_PKEY_free(pkey);
		return K_E_VALIDATION;
	}
	struct asym_key *k = calloc(1, sizeof *k);
	if (k == NULL) {
		EVP_PKEY_free(pkey);
		return K_E_INTERNAL;
	}
	k->pkey = pkey;
	k->spec = spec_of(pkey);
	*out = k;
	return K_OK;
}

void asym_key_free(struct asym_key *k)
{
	if (k == NULL)
		return;
	for (size_t op = 0; op < N_PREP; op++) {
		for (size_t i = 0; i < N_CTX_ALGS; i++)
			EVP_PKEY_CTX_free(atomic_load(&k->prepared[op][i]));
		EVP_MD_CTX_free(atomic_load(&k->ed_prepared[op]));
	}
	EVP_PKEY_free(k->pkey);
	free(k);
}

const char *asym_key_spec(const struct asym_key *k)
{
	return k->spec;
}

k_status asym_public_der(const struct asym_key *k, struct kbuf *out)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k->pkey, &der);
	ENSURE(n > 0 && der != NULL, K_E_INTERNAL);
	k_status rc = kbuf_append(out, der, (size_t)n);
	OPENSSL_free(der);
	return rc;
}

/* ---- signatures ------------------------------------------------------------ */

size_t asym_sign_digest_len(const char *alg)
{
	if (strcmp(alg, "ED25519_SHA_512") == 0)
		return 0;
	const EVP_MD *md = alg_md(alg);
	if (md == NULL || ends_with(alg, "_SHA_1") || ends_with(alg, "_SHA_224"))
		return 0;
	return (size_t)EVP_MD_get_size(md);
}

/*
 * Which signing algorithms each key spec takes, as AWS lists them
 * (https://docs.aws.amazon.com/kms/latest/developerguide/asymmetric-key-specs.html):
 * RSA keys every RSASSA_PSS_* and RSASSA_PKCS1_V1_5_*; ECC_NIST_P256 and
 * ECC_SECG_P256K1 ECDSA_SHA_256, ECC_NIST_P384 ECDSA_SHA_384,
 * ECC_NIST_P521 ECDSA_SHA_512; ECC_NIST_EDWARDS25519 ED25519_SHA_512.
 */
bool asym_sign_alg_fits(const char *alg, const char *spec)
{
	if (starts_with(spec, "RSA_"))
		return (starts_with(alg, "RSASSA_PSS_SHA_") ||
			starts_with(alg, "RSASSA_PKCS1_V1_5_SHA_")) &&
		       asym_sign_digest_len(alg) != 0;
	if (strcmp(spec, "ECC_NIST_P256") == 0 || strcmp(spec, "ECC_SECG_P256K1") == 0)
		return strcmp(alg, "ECDSA_SHA_256") == 0;
	if (strcmp(spec, "ECC_NIST_P384") == 0)
		return strcmp(alg, "ECDSA_SHA_384") == 0;
	if (strcmp(spec, "ECC_NIST_P521") == 0)
		return strcmp(alg, "ECDSA_SHA_512") == 0;
	if (strcmp(spec, "ECC_NIST_EDWARDS25519") == 0)
		return strcmp(alg, "ED25519_SHA_512") == 0;
	return false;
}

/*
 * Prepares a sign or verify context for a digest-based algorithm: the
 * padding (PSS with salt length = digest length, as AWS; or PKCS#1 v1.5)
 * for RSA, and the digest for all.
 */
static K_MUST_CHECK k_status setup_pkey_ctx(EVP_PKEY_CTX *ctx, const char *alg, const EVP_MD *md)
{
	if (starts_with(alg, "RSASSA_PSS_")) {
		ENSURE(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1, K_E_INTERNAL);
		ENSURE(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) == 1,
		       K_E_INTERNAL);
		ENSURE(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1, K_E_INTERNAL);
	} else if (starts_with(alg, "RSASSA_PKCS1_V1_5_")) {
		ENSURE(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1, K_E_INTERNAL);
	}
	ENSURE(EVP_PKEY_CTX_set_signature_md(ctx, md) == 1, K_E_INTERNAL);
	return K_OK;
}

/* A new sign or verify context for alg, set up from scratch. */
static EVP_PKEY_CTX *new_op_ctx(EVP_PKEY *pkey, int op, const char *alg, const EVP_MD *md)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	int init = ctx == NULL	     ? 0
		   : op == PREP_SIGN ? EVP_PKEY_sign_init(ctx)
				     : EVP_PKEY_verify_init(ctx);
	if (init != 1 || k_failed(setup_pkey_ctx(ctx, alg, md))) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * The context for one sign or verify with alg: a duplicate of the key's
 * prepared context, made and published on the first call (a thread that
 * loses the race frees its own). The caller frees it. NULL on failure.
 */
static EVP_PKEY_CTX *op_ctx(const struct asym_key *k, int op, const char *alg, const EVP_MD *md)
{
	size_t i = 0;
	while (i < N_CTX_ALGS && strcmp(ctx_algs[i], alg) != 0)
		i++;
	if (i == N_CTX_ALGS)
		return new_op_ctx(k->pkey, op, alg, md);
	/* The cache is not part of the key's value: filling it keeps k's contract. */
	_Atomic(EVP_PKEY_CTX *) *slot = &((struct asym_key *)(uintptr_t)k)->prepared[op][i];
	EVP_PKEY_CTX *prep = atomic_load(slot);
	if (prep == NULL) {
		EVP_PKEY_CTX *made = new_op_ctx(k->pkey, op, alg, md);
		if (made == NULL)
			return NULL;
		EVP_PKEY_CTX *none = NULL;
		if (atomic_compare_exchange_strong(slot, &none, made))
			prep = made;
		else {
			EVP_PKEY_CTX_free(made);
			prep = none;
		}
	}
	return EVP_PKEY_CTX_dup(prep);
}

/* The digest of a RAW message, or the caller's DIGEST message as it is. */
static K_MUST_CHECK k_status message_digest(const EVP_MD *md, bool is_digest, struct kslice msg,
					    uint8_t dig[EVP_MAX_MD_SIZE], size_t *dig_len)
{
	if (is_digest) {
		ENSURE(msg.len == (size_t)EVP_MD_get_size(md), K_E_VALIDATION);
		memcpy(dig, msg.ptr, msg.len);
		*dig_len = msg.len;
		return K_OK;
	}
	unsigned int n = 0;
	ENSURE(EVP_Digest(msg.ptr, msg.len, dig, &n, md, NULL) == 1, K_E_INTERNAL);
	*dig_len = n;
	return K_OK;
}

/*
 * A copy of the key's Ed25519 context for op, initialised (EVP_DigestSignInit_ex
 * or EVP_DigestVerifyInit_ex) on the first call and published with a
 * compare-and-swap (a thread that loses the race frees its own); the
 * prepared one is only ever read. The caller frees the copy. NULL on failure.
 */
static EVP_MD_CTX *ed25519_ctx(const struct asym_key *k, int op)
{
	_Atomic(EVP_MD_CTX *) *slot = &((struct asym_key *)(uintptr_t)k)->ed_prepared[op];
	EVP_MD_CTX *prep = atomic_load(slot);
	if (prep == NULL) {
		EVP_MD_CTX *made = EVP_MD_CTX_new();
		int init = made == NULL	     ? 0
			   : op == PREP_SIGN ? EVP_DigestSignInit_ex(made, NULL, NULL, NULL, NULL,
								     k->pkey, NULL)
					     : EVP_DigestVerifyInit_ex(made, NULL, NULL, NULL, NULL,
								       k->pkey, NULL);
		if (init != 1) {
			EVP_MD_CTX_free(made);
			return NULL;
		}
		EVP_MD_CTX *none = NULL;
		if (atomic_compare_exchange_strong(slot, &none, made))
			prep = made;
		else {
			EVP_MD_CTX_free(made);
			prep = none;
		}
	}
	EVP_MD_CTX *copy = EVP_MD_CTX_new();
	if (copy != NULL && EVP_MD_CTX_copy_ex(copy, prep) != 1) {
		EVP_MD_CTX_free(copy);
		copy = NULL;
	}
	return copy;
}

static K_MUST_CHECK k_status ed25519_sign(const struct asym_key *k, struct kslice msg,
					  struct kbuf *sig)
{
	k_status rc = K_E_INTERNAL;
	uint8_t out[64];
	size_t out_len = sizeof out;
	EVP_MD_CTX *mctx = ed25519_ctx(k, PREP_SIGN);
	ENSURE_GOTO(mctx != NULL, K_E_INTERNAL);
	ENSURE_GOTO(EVP_DigestSign(mctx, out, &out_len, msg.ptr, msg.len) == 1, K_E_INTERNAL);
	rc = kbuf_append(sig, out, out_len);
out:
	EVP_MD_CTX_free(mctx);
	return rc;
}

k_status asym_sign(const struct asym_key *k, const char *alg, bool is_digest, struct kslice msg,
		   struct kbuf *sig)
{
	ENSURE(k->spec != NULL && asym_sign_alg_fits(alg, k->spec), K_E_INVALID_KEY_USAGE);
	if (strcmp(alg, "ED25519_SHA_512") == 0) {
		ENSURE(!is_digest, K_E_VALIDATION);
		return ed25519_sign(k, msg, sig);
	}
	const EVP_MD *md = alg_md(alg);
	ENSURE(md != NULL, K_E_INTERNAL);
	uint8_t dig[EVP_MAX_MD_SIZE];
	size_t dig_len = 0;
	GUARD(message_digest(md, is_digest, msg, dig, &dig_len));

	k_status rc = K_E_INTERNAL;
	uint8_t out[ASYM_MAX_SIG];
	size_t out_len = sizeof out;
	EVP_PKEY_CTX *ctx = op_ctx(k, PREP_SIGN, alg, md);
	ENSURE_GOTO(ctx != NULL, K_E_INTERNAL);
	ENSURE_GOTO(EVP_PKEY_sign(ctx, out, &out_len, dig, dig_len) == 1, K_E_INTERNAL);
	rc = kbuf_append(sig, out, out_len);
out:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

static K_MUST_CHECK k_status ed25519_verify(const struct asym_key *k, struct kslice msg,
					    struct kslice sig, bool *valid)
{
	EVP_MD_CTX *mctx = ed25519_ctx(k, PREP_VERIFY);
	ENSURE(mctx != NULL, K_E_INTERNAL);
	*valid = EVP_DigestVerify(mctx, sig.ptr, sig.len, msg.ptr, msg.len) == 1;
	EVP_MD_CTX_free(mctx);
	ERR_clear_error();
	return K_OK;
}

k_status asym_verify(const struct asym_key *k, const char *alg, bool is_digest, struct kslice msg,
		     struct kslice sig, bool *valid)
{
	*valid = false;
	ENSURE(k->spec != NULL && asym_sign_alg_fits(alg, k->spec), K_E_INVALID_KEY_USAGE);
	if (strcmp(alg, "ED25519_SHA_512") == 0) {
		ENSURE(!is_digest, K_E_VALIDATION);
		return ed25519_verify(k, msg, sig, valid);
	}
	const EVP_MD *md = alg_md(alg);
	ENSURE(md != NULL, K_E_INTERNAL);
	uint8_t dig[EVP_MAX_MD_SIZE];
	size_t dig_len = 0;
	GUARD(message_digest(md, is_digest, msg, dig, &dig_len));

	k_status rc = K_E_INTERNAL;
	EVP_PKEY_CTX *ctx = op_ctx(k, PREP_VERIFY, alg, md);
	ENSURE_GOTO(ctx != NULL, K_E_INTERNAL);
	*valid = EVP_PKEY_verify(ctx, sig.ptr, sig.len, dig, dig_len) == 1;
	rc = K_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

/* ---- RSAES-OAEP ------------------------------------------------------------ */

static const EVP_MD *oaep_md(const char *alg)
{
	if (strcmp(alg, "RSAES_OAEP_SHA_1") == 0 || strcmp(alg, "RSA_AES_KEY_WRAP_SHA_1") == 0)
		return alg_md("_SHA_1");
	if (strcmp(alg, "RSAES_OAEP_SHA_256") == 0 || strcmp(alg, "RSA_AES_KEY_WRAP_SHA_256") == 0)
		return alg_md("_SHA_256");
	return NULL;
}

size_t asym_oaep_max_plaintext(const struct asym_key *k, const char *alg)
{
	const EVP_MD *md = oaep_md(alg);
	if (md == NULL || !EVP_PKEY_is_a(k->pkey, "RSA"))
		return 0;
	size_t mod = (size_t)EVP_PKEY_get_size(k->pkey);
	size_t h = (size_t)EVP_MD_get_size(md);
	return mod > 2 * h + 2 ? mod - 2 * h - 2 : 0;
}

size_t asym_oaep_max_plaintext_spec(const char *spec, const char *alg)
{
	static const struct {
		const char *spec;
		size_t modulus;
	} rsa[] = {{"RSA_2048", 256}, {"RSA_3072", 384}, {"RSA_4096", 512}};
	const EVP_MD *md = oaep_md(alg);
	if (md == NULL || spec == NULL)
		return 0;
	size_t h = (size_t)EVP_MD_get_size(md);
	for (size_t i = 0; i < sizeof rsa / sizeof rsa[0]; i++) {
		if (strcmp(rsa[i].spec, spec) == 0)
			return rsa[i].modulus - 2 * h - 2;
	}
	return 0;
}

static K_MUST_CHECK k_status oaep_setup(EVP_PKEY_CTX *ctx, const EVP_MD *md)
{
	ENSURE(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1, K_E_INTERNAL);
	ENSURE(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) == 1, K_E_INTERNAL);
	ENSURE(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1, K_E_INTERNAL);
	return K_OK;
}

k_status asym_oaep_encrypt(const struct asym_key *k, const char *alg, struct kslice pt,
			   struct kbuf *out)
{
	const EVP_MD *md = oaep_md(alg);
	ENSURE(md != NULL && EVP_PKEY_is_a(k->pkey, "RSA"), K_E_INVALID_KEY_USAGE);
	ENSURE(pt.len <= asym_oaep_max_plaintext(k, alg), K_E_VALIDATION);
	k_status rc = K_E_INTERNAL;
	uint8_t ct[512];
	size_t ct_len = sizeof ct;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	ENSURE_GOTO(ctx != NULL && EVP_PKEY_encrypt_init(ctx) == 1, K_E_INTERNAL);
	GUARD_GOTO(oaep_setup(ctx, md));
	ENSURE_GOTO(EVP_PKEY_encrypt(ctx, ct, &ct_len, pt.ptr, pt.len) == 1, K_E_INTERNAL);
	rc = kbuf_append(out, ct, ct_len);
out:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

k_status asym_oaep_decrypt(const struct asym_key *k, const char *alg, struct kslice ct,
			   struct ksecret **out)
{
	*out = NULL;
	const EVP_MD *md = oaep_md(alg);
	ENSURE(md != NULL && EVP_PKEY_is_a(k->pkey, "RSA"), K_E_INVALID_KEY_USAGE);
	ENSURE(ct.len == (size_t)EVP_PKEY_get_size(k->pkey), K_E_INVALID_CIPHERTEXT);
	k_status rc = K_E_INVALID_CIPHERTEXT;
	struct ksecret *pt = ksecret_new(ct.len);
	size_t pt_len = ct.len;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	ENSURE_GOTO(pt != NULL && ctx != NULL && EVP_PKEY_decrypt_init(ctx) == 1, K_E_INTERNAL);
	GUARD_GOTO(oaep_setup(ctx, md));
	ENSURE_GOTO(EVP_PKEY_decrypt(ctx, ksecret_bytes(pt), &pt_len, ct.ptr, ct.len) == 1,
		    K_E_INVALID_CIPHERTEXT);
	*out = ksecret_from(ksecret_cbytes(pt), pt_len);
	ENSURE_GOTO(*out != NULL, K_E_INTERNAL);
	rc = K_OK;
out:
	ksecret_free(pt);
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

/*
 * RFC 5649 unwrap of the material with the ephemeral AES-256 key (OpenSSL's
 * AES-256-WRAP-PAD). The output is at most the input less 8 bytes.
 */
static K_MUST_CHECK k_status aes_kwp_unwrap(const struct ksecret *kek, struct kslice in,
					    struct ksecret **out)
{
	k_status rc = K_E_INVALID_CIPHERTEXT;
	EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-256-WRAP-PAD", NULL);
	EVP_CIPHER_CTX *cctx = EVP_CIPHER_CTX_new();
	struct ksecret *buf = NULL;
	int n = 0, fin = 0;
	ENSURE_GOTO(cipher != NULL && cctx != NULL, K_E_INTERNAL);
	ENSURE_GOTO(in.len >= 16 && in.len % 8 == 0 && in.len <= (1u << 16) &&
			    ksecret_len(kek) == 32,
		    K_E_INVALID_CIPHERTEXT);
	buf = ksecret_new(in.len + 16);
	ENSURE_GOTO(buf != NULL, K_E_INTERNAL);
	EVP_CIPHER_CTX_set_flags(cctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	ENSURE_GOTO(EVP_DecryptInit_ex2(cctx, cipher, ksecret_cbytes(kek), NULL, NULL) == 1,
		    K_E_INTERNAL);
	ENSURE_GOTO(EVP_DecryptUpdate(cctx, ksecret_bytes(buf), &n, in.ptr, (int)in.len) == 1,
		    K_E_INVALID_CIPHERTEXT);
	ENSURE_GOTO(EVP_DecryptFinal_ex(cctx, ksecret_bytes(buf) + n, &fin) == 1,
		    K_E_INVALID_CIPHERTEXT);
	ENSURE_GOTO(n + fin > 0, K_E_INVALID_CIPHERTEXT);
	*out = ksecret_from(ksecret_cbytes(buf), (size_t)(n + fin));
	ENSURE_GOTO(*out != NULL, K_E_INTERNAL);
	rc = K_OK;
out:
	ksecret_free(buf);
	EVP_CIPHER_CTX_free(cctx);
	EVP_CIPHER_free(cipher);
	ERR_clear_error();
	return rc;
}

/*
 * AWS's wrapping algorithms
 * (https://docs.aws.amazon.com/kms/latest/developerguide/importing-get-public-key-and-token.html):
 * "RSA_AES_KEY_WRAP_SHA_*: ... encrypt your key material with an AES
 * symmetric key that you generate and then encrypt the AES symmetric key
 * with the RSA public encryption key", the two concatenated: the RSA
 * ciphertext first (one modulus long), then the AES key wrap output.
 */
k_status asym_import_unwrap(const struct asym_key *wrapping, const char *alg, struct kslice wrapped,
			    struct ksecret **out)
{
	*out = NULL;
	ENSURE(EVP_PKEY_is_a(wrapping->pkey, "RSA"), K_E_INTERNAL);
	if (starts_with(alg, "RSAES_OAEP_"))
		return asym_oaep_decrypt(wrapping, alg, wrapped, out);
	ENSURE(starts_with(alg, "RSA_AES_KEY_WRAP_"), K_E_UNSUPPORTED);
	size_t mod = (size_t)EVP_PKEY_get_size(wrapping->pkey);
	ENSURE(wrapped.len > mod, K_E_INVALID_CIPHERTEXT);
	struct ksecret *kek = NULL;
	GUARD(asym_oaep_decrypt(wrapping, alg, kslice_make(wrapped.ptr, mod), &kek));
	k_status rc = aes_kwp_unwrap(kek, kslice_make(wrapped.ptr + mod, wrapped.len - mod), out);
	ksecret_free(kek);
	return rc;
}

/* ---- ECDH ------------------------------------------------------------------ */

k_status asym_ecdh(const struct asym_key *k, struct kslice peer_spki, struct ksecret **out)
{
	*out = NULL;
	ENSURE(EVP_PKEY_is_a(k->pkey, "EC"), K_E_INVALID_KEY_USAGE);
	const unsigned char *p = peer_spki.ptr;
	EVP_PKEY *peer = d2i_PUBKEY(NULL, &p, (long)peer_spki.len);
	k_status rc = K_E_VALIDATION;
	EVP_PKEY_CTX *ctx = NULL;
	struct ksecret *secret = NULL;
	size_t len = 0;
	ENSURE_GOTO(peer != NULL && p == peer_spki.ptr + peer_spki.len, K_E_VALIDATION);
	ENSURE_GOTO(EVP_PKEY_is_a(peer, "EC"), K_E_VALIDATION);
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	ENSURE_GOTO(ctx != NULL && EVP_PKEY_derive_init(ctx) == 1, K_E_INTERNAL);
	/* validate_peer = 1: the point must be on the curve (and the same curve). */
	ENSURE_GOTO(EVP_PKEY_derive_set_peer_ex(ctx, peer, 1) == 1, K_E_VALIDATION);
	ENSURE_GOTO(EVP_PKEY_derive(ctx, NULL, &len) == 1 && len > 0 && len <= 128, K_E_INTERNAL);
	secret = ksecret_new(len);
	ENSURE_GOTO(secret != NULL, K_E_INTERNAL);
	ENSURE_GOTO(EVP_PKEY_derive(ctx, ksecret_bytes(secret), &len) == 1, K_E_INTERNAL);
	*out = ksecret_from(ksecret_cbytes(secret), len);
	ENSURE_GOTO(*out != NULL, K_E_INTERNAL);
	rc = K_OK;
out:
	ksecret_free(secret);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	ERR_clear_error();
	return rc;
}
