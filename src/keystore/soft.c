/*
 * soft.c — the software key store (see keyops.h).
 *
 * Material rests in the key document wrapped under the root key
 * (keystore_wrap, AES-256-GCM) with the key's ARN and version bound in
 * the AAD, "kinko/material/v1|ARN|VERSION"; the reference of a version is
 * that wrap in base64. A handle holds every version unwrapped in its own
 * ksecret (locked, never dumped, wiped on free), so an operation touches
 * neither storage nor the root key.
 *
 * Symmetric material is 32 bytes (AES-256, blob format in crypto.h); HMAC
 * material is as long as its digest; an asymmetric key's material is its
 * PKCS#8 private key. Parsing that is expensive (an RSA key takes tens of
 * microseconds), so the parsed key of the newest version is made on first
 * use and published with a compare-and-swap; it is immutable and every
 * operation works on its own copy of a context prepared once, so any
 * number of threads can use it at once. An HMAC key is prepared the same
 * way (asym_mac: the digest fetched and the key's pads computed once).
 */
#include "keystore/keyops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "crypto/asym.h"
#include "crypto/commit.h"
#include "keystore/keystore.h"
#include "keystore/soft_refs.h"
#include "core/banned.h"

/* The additional authenticated data of a wrapped material reference (its ARN and version). */
#define SOFT_AAD_MAX 512

struct soft_key {
	struct keystore_key pub;
	_Atomic(struct asym_key *) parsed; /* of v[versions-1], made on first use */
	_Atomic(struct asym_mac *) mac;	   /* HMAC: v[versions-1] prepared, on first use */
	struct ksecret *v[];		   /* v[i] is version i+1 */
};

static const struct soft_key *soft(const struct keystore_key *h)
{
	return (const struct soft_key *)h;
}

static struct soft_key *soft_new(const uint8_t key_id[16], uint32_t n)
{
	struct soft_key *s = calloc(1, sizeof *s + n * sizeof(struct ksecret *));
	if (s == NULL)
		return NULL;
	s->pub.ops = &keystore_soft;
	atomic_init(&s->pub.refs, 1);
	s->pub.versions = n;
	memcpy(s->pub.key_id, key_id, 16);
	atomic_init(&s->parsed, NULL);
	atomic_init(&s->mac, NULL);
	return s;
}

static void soft_destroy(struct keystore_key *h)
{
	struct soft_key *s = (struct soft_key *)h;
	asym_key_free(atomic_load(&s->parsed));
	asym_mac_free(atomic_load(&s->mac));
	for (uint32_t i = 0; i < s->pub.versions; i++)
		ksecret_free(s->v[i]);
	free(s);
}

/* The newest version's material; NULL for a handle without material. */
static const struct ksecret *newest(const struct keystore_key *h)
{
	return h->versions > 0 ? soft(h)->v[h->versions - 1] : NULL;
}

/* ---- material at rest ---- */

static void material_aad(const char *arn, uint32_t version, struct kbuf *aad)
{
	if (k_failed(kbuf_appendf(aad, "kinko/material/v1|%s|%u", arn, version)))
		kbuf_reset(aad);
}

/* Wraps a version for the key document: base64 of the root-key wrap. */
k_status keystore_soft_wrap_ref(const char *arn, uint32_t version, const struct ksecret *m,
				struct kbuf *ref)
{
	struct kbuf aad, wrapped;
	kbuf_init(&aad, SOFT_AAD_MAX);
	kbuf_init(&wrapped, KEYSTORE_MAX_REF);
	material_aad(arn, version, &aad);
	k_status rc = keystore_wrap(kbuf_slice(&aad), m, &wrapped);
	if (k_ok(rc))
		rc = kbuf_append_base64(ref, wrapped.ptr, wrapped.len);
	kbuf_release(&aad);
	kbuf_release(&wrapped);
	return rc;
}

k_status keystore_soft_unwrap_ref(const char *arn, uint32_t version, struct kslice ref,
				  struct ksecret **out)
{
	struct kbuf aad, wrapped;
	kbuf_init(&aad, SOFT_AAD_MAX);
	kbuf_init(&wrapped, KEYSTORE_MAX_REF);
	material_aad(arn, version, &aad);
	k_status rc = kbuf_decode_base64(&wrapped, ref);
	if (k_ok(rc))
		rc = keystore_unwrap(kbuf_slice(&aad), kbuf_slice(&wrapped), out);
	kbuf_release(&aad);
	kbuf_release(&wrapped);
	return rc;
}

/*
 * New material for a key spec: random bytes for symmetric and HMAC keys
 * (HMAC keys are as long as their digest: HMAC_224 has 224 bits, and so
 * on), a PKCS#8 private key for the asymmetric specs.
 */
static K_MUST_CHECK k_status generate_material(const char *spec, struct ksecret **out)
{
	static const struct {
		const char *spec;
		size_t len;
	} sym[] = {{"SYMMETRIC_DEFAULT", 32},
		   {"HMAC_224", 28},
		   {"HMAC_256", 32},
		   {"HMAC_384", 48},
		   {"HMAC_512", 64}};
	*out = NULL;
	for (size_t i = 0; i < sizeof sym / sizeof sym[0]; i++) {
		if (strcmp(sym[i].spec, spec) == 0) {
			*out = crypto_random_secret(sym[i].len);
			return *out != NULL ? K_OK : K_E_INTERNAL;
		}
	}
	if (strncmp(spec, "RSA_", 4) == 0 || strncmp(spec, "ECC_", 4) == 0)
		return asym_generate(spec, out);
	return K_E_UNSUPPORTED;
}

static K_MUST_CHECK k_status soft_generate(const char *spec, const char *arn, struct kbuf *ref)
{
	struct ksecret *m = NULL;
	GUARD(generate_material(spec, &m));
	k_status rc = keystore_soft_wrap_ref(arn, 1, m, ref);
	ksecret_free(m);
	return rc;
}

static K_MUST_CHECK k_status soft_open(const char *arn, const uint8_t key_id[16],
				       const struct kslice *refs, uint32_t n,
				       struct keystore_key **out)
{
	struct soft_key *s = soft_new(key_id, n);
	ENSURE(s != NULL, K_E_INTERNAL);
	for (uint32_t i = 0; i < n; i++) {
		if (k_failed(keystore_soft_unwrap_ref(arn, i + 1, refs[i], &s->v[i]))) {
			LOG_ERROR("cannot unwrap the material of %s", arn);
			soft_destroy(&s->pub);
			return K_E_INTERNAL;
		}
	}
	*out = &s->pub;
	return K_OK;
}

/* Every version of cur (copied) plus new material of spec. */
static K_MUST_CHECK k_status soft_new_version(const struct keystore_key *cur, const char *spec,
					      const char *arn, struct kbuf *ref,
					      struct keystore_key **out)
{
	uint32_t n = cur->versions;
	struct soft_key *s = soft_new(cur->key_id, n + 1);
	ENSURE(s != NULL, K_E_INTERNAL);
	k_status rc = K_OK;
	for (uint32_t i = 0; i < n; i++) {
		const struct ksecret *m = soft(cur)->v[i];
		s->v[i] = ksecret_from(ksecret_cbytes(m), ksecret_len(m));
		ENSURE_GOTO(s->v[i] != NULL, K_E_INTERNAL);
	}
	GUARD_GOTO(generate_material(spec, &s->v[n]));
	GUARD_GOTO(keystore_soft_wrap_ref(arn, n + 1, s->v[n], ref));
	*out = &s->pub;
	return K_OK;
out:
	soft_destroy(&s->pub);
	return rc;
}

/* ---- symmetric ---- */

static K_MUST_CHECK k_status soft_encrypt(const struct keystore_key *h, struct kslice ectx,
					  struct kslice pt, struct kbuf *blob)
{
	const struct ksecret *m = newest(h);
	ENSURE(m != NULL, K_E_INVALID_STATE);
	return crypto_sym_encrypt(m, h->key_id, h->versions, ectx, pt, blob);
}

static K_MUST_CHECK k_status soft_decrypt(const struct keystore_key *h,
					  const struct crypto_blob *blob, struct kslice ectx,
					  struct kbuf *pt)
{
	ENSURE(blob->version >= 1 && blob->version <= h->versions, K_E_INVALID_CIPHERTEXT);
	return crypto_sym_decrypt(soft(h)->v[blob->version - 1], blob, ectx, pt);
}

/*
 * Plain GCM for the XKS proxy, on 32-byte material only. HMAC_256
 * material is 32 bytes too: the caller serves SYMMETRIC_DEFAULT keys
 * alone (xks/proxy.c checks the key's spec before it gets here).
 */
static K_MUST_CHECK k_status soft_gcm_encrypt(const struct keystore_key *h, struct keystore_gcm *g,
					      struct kslice pt, struct kbuf *ct)
{
	const struct ksecret *m = newest(h);
	ENSURE(m != NULL, K_E_INVALID_STATE);
	ENSURE(ksecret_len(m) == CRYPTO_KEY_LEN, K_E_UNSUPPORTED);
	g->version = h->versions;
	return crypto_aead_seal(m, g->label, g->aad, pt, g->iv, ct, g->tag);
}

static K_MUST_CHECK k_status soft_gcm_decrypt(const struct keystore_key *h,
					      const struct keystore_gcm *g, struct kslice ct,
					      struct kbuf *pt)
{
	ENSURE(g->version >= 1 && g->version <= h->versions, K_E_INVALID_CIPHERTEXT);
	const struct ksecret *m = soft(h)->v[g->version - 1];
	ENSURE(ksecret_len(m) == CRYPTO_KEY_LEN, K_E_UNSUPPORTED);
	return crypto_aead_open(m, g->label, kslice_make(g->iv, sizeof g->iv), g->aad, ct,
				kslice_make(g->tag, sizeof g->tag), pt);
}

static K_MUST_CHECK k_status soft_generate_data_key(const struct keystore_key *h,
						    struct kslice ectx, struct ksecret *dk,
						    struct kbuf *blob)
{
	const struct ksecret *m = newest(h);
	ENSURE(m != NULL, K_E_INVALID_STATE);
	size_t n = ksecret_len(dk);
	k_status rc = crypto_random(ksecret_bytes(dk), n);
	if (k_ok(rc))
		rc = crypto_sym_encrypt(m, h->key_id, h->versions, ectx,
					kslice_make(ksecret_cbytes(dk), n), blob);
	if (k_failed(rc))
		crypto_wipe(ksecret_bytes(dk), n);
	return rc;
}

static K_MUST_CHECK k_status soft_generate_data_key_pair(const struct keystore_key *h,
							 const char *pair_spec, struct kslice ectx,
							 struct kbuf *spki, struct kbuf *blob,
							 struct ksecret **priv)
{
	const struct ksecret *m = newest(h);
	ENSURE(m != NULL, K_E_INVALID_STATE);
	struct ksecret *pkcs8 = NULL;
	struct asym_key *ak = NULL;
	k_status rc = K_OK;
	GUARD_GOTO(asym_generate(pair_spec, &pkcs8));
	GUARD_GOTO(asym_key_load(pkcs8, &ak));
	GUARD_GOTO(asym_public_der(ak, spki));
	GUARD_GOTO(crypto_sym_encrypt(m, h->key_id, h->versions, ectx,
				      kslice_make(ksecret_cbytes(pkcs8), ksecret_len(pkcs8)),
				      blob));
	if (priv != NULL) {
		*priv = pkcs8;
		pkcs8 = NULL;
	}
out:
	asym_key_free(ak);
	ksecret_free(pkcs8);
	return rc;
}

/* ---- asymmetric ---- */

/*
 * The parsed private key of the newest version: from the handle, or
 * parsed now and published with a compare-and-swap (a thread that loses
 * the race frees its copy and uses the winner's).
 */
static K_MUST_CHECK k_status parsed_key(const struct keystore_key *h, const struct asym_key **out)
{
	const struct ksecret *m = newest(h);
	ENSURE(m != NULL, K_E_INVALID_STATE);
	struct soft_key *s = (struct soft_key *)h; /* the cache is the one mutable field */
	struct asym_key *p = atomic_load_explicit(&s->parsed, memory_order_acquire);
	if (p == NULL) {
		struct asym_key *fresh = NULL;
		if (k_failed(asym_key_load(m, &fresh)))
			return K_E_INTERNAL;
		struct asym_key *expected = NULL;
		if (atomic_compare_exchange_strong_explicit(&s->parsed, &expected, fresh,
							    memory_order_acq_rel,
							    memory_order_acquire)) {
			p = fresh;
		} else {
			asym_key_free(fresh);
			p = expected;
		}
	}
	*out = p;
	return K_OK;
}

static K_MUST_CHECK k_status soft_public_key(const struct keystore_key *h, struct kbuf *spki)
{
	const struct asym_key *ak = NULL;
	GUARD(parsed_key(h, &ak));
	return asym_public_der(ak, spki);
}

static K_MUST_CHECK k_status soft_sign(const struct keystore_key *h, const char *alg,
				       bool is_digest, struct kslice msg, struct kbuf *sig)
{
	const struct asym_key *ak = NULL;
	GUARD(parsed_key(h, &ak));
	return asym_sign(ak, alg, is_digest, msg, sig);
}

static K_MUST_CHECK k_status soft_verify(const struct keystore_key *h, const char *alg,
					 bool is_digest, struct kslice msg, struct kslice sig,
					 bool *valid)
{
	const struct asym_key *ak = NULL;
	GUARD(parsed_key(h, &ak));
	return asym_verify(ak, alg, is_digest, msg, sig, valid);
}

static K_MUST_CHECK k_status soft_asym_encrypt(const struct keystore_key *h, const char *alg,
					       struct kslice pt, struct kbuf *ct)
{
	const struct asym_key *ak = NULL;
	GUARD(parsed_key(h, &ak));
	return asym_oaep_encrypt(ak, alg, pt, ct);
}

static K_MUST_CHECK k_status soft_asym_decrypt(const struct keystore_key *h, const char *alg,
					       struct kslice ct, struct kbuf *pt)
{
	const struct asym_key *ak = NULL;
	struct ksecret *plain = NULL;
	GUARD(parsed_key(h, &ak));
	GUARD(asym_oaep_decrypt(ak, alg, ct, &plain));
	k_status rc = kbuf_append(pt, ksecret_cbytes(plain), ksecret_len(plain));
	ksecret_free(plain);
	return rc;
}

static K_MUST_CHECK k_status soft_derive_shared_secret(const struct keystore_key *h,
						       struct kslice peer_spki,
						       struct ksecret **out)
{
	const struct asym_key *ak = NULL;
	GUARD(parsed_key(h, &ak));
	return asym_ecdh(ak, peer_spki, out);
}

/* ---- HMAC ---- */

static K_MUST_CHECK k_status soft_mac(const struct keystore_key *h, const char *alg,
				      struct kslice msg, uint8_t mac[KEYSTORE_MAX_MAC],
				      size_t *mac_len)
{
	const struct ksecret *m = newest(h);
	ENSURE(m != NULL, K_E_INVALID_STATE);
	struct soft_key *s = (struct soft_key *)h; /* the cache is a mutable field */
	struct asym_mac *p = atomic_load_explicit(&s->mac, memory_order_acquire);
	if (p == NULL) {
		struct asym_mac *fresh = NULL;
		GUARD(asym_mac_prepare(m, alg, &fresh));
		struct asym_mac *expected = NULL;
		if (atomic_compare_exchange_strong_explicit(&s->mac, &expected, fresh,
							    memory_order_acq_rel,
							    memory_order_acquire)) {
			p = fresh;
		} else {
			asym_mac_free(fresh);
			p = expected;
		}
	}
	/* An HMAC key has one algorithm; another one (refused above this layer) runs one-shot. */
	if (!asym_mac_is_for(p, alg))
		return asym_hmac(m, alg, msg, mac, mac_len);
	return asym_mac_run(p, msg, mac, mac_len);
}

static K_MUST_CHECK k_status soft_mac_verify(const struct keystore_key *h, const char *alg,
					     struct kslice msg, struct kslice given, bool *valid)
{
	uint8_t mac[KEYSTORE_MAX_MAC];
	size_t mac_len = 0;
	k_status rc = soft_mac(h, alg, msg, mac, &mac_len);
	*valid = k_ok(rc) && given.len == mac_len && crypto_memeq(given.ptr, mac, mac_len);
	crypto_wipe(mac, sizeof mac);
	return rc;
}

/* ---- imported material ---- */

/*
 * Import token. AWS's token is opaque; this store's is self-contained: the
 * wrapping private key, the wrapping algorithm and the token's expiry,
 * wrapped under the root key with the key's ARN in the AAD
 * ("kinko/import-token/v1|ARN"). So a token works only for the key it was
 * made for, cannot be altered, needs no storage, and the wrapping private
 * key never leaves kinko unencrypted. Payload (inside the wrap):
 *   u64be valid_to | u8 algorithm index in wrap_algs | PKCS#8 DER
 * The index is part of the token format: the list only ever grows.
 *
 * Material identity. "You must reimport the same key material that was
 * originally imported" (https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys.html),
 * so a key remembers a fingerprint of its material even after the
 * material is deleted or expires: SHA-256 of the material, wrapped under
 * the root key ("kinko/material-fingerprint/v1|ARN"), base64.
 */
#define TOKEN_HEADER 9
#define FINGERPRINT_MAX 1024

static const char *const wrap_algs[] = {"RSAES_PKCS1_V1_5",
					"RSAES_OAEP_SHA_1",
					"RSAES_OAEP_SHA_256",
					"RSA_AES_KEY_WRAP_SHA_1",
					"RSA_AES_KEY_WRAP_SHA_256",
					"SM2PKE",
					NULL};

static void aad_of(const char *arn, const char *what, struct kbuf *aad)
{
	if (k_failed(kbuf_appendf(aad, "kinko/%s/v1|%s", what, arn)))
		kbuf_reset(aad);
}

static K_MUST_CHECK k_status soft_import_params(const char *arn, const char *wrap_spec,
						const char *wrap_alg, int64_t valid_to,
						struct kbuf *spki, struct kbuf *token)
{
	uint8_t idx = 0;
	while (wrap_algs[idx] != NULL && strcmp(wrap_algs[idx], wrap_alg) != 0)
		idx++;
	ENSURE(wrap_algs[idx] != NULL, K_E_UNSUPPORTED);
	struct ksecret *priv = NULL, *payload = NULL;
	struct asym_key *ak = NULL;
	struct kbuf aad;
	kbuf_init(&aad, SOFT_AAD_MAX);
	k_status rc = K_OK;
	GUARD_GOTO(asym_generate(wrap_spec, &priv));
	GUARD_GOTO(asym_key_load(priv, &ak));
	GUARD_GOTO(asym_public_der(ak, spki));
	payload = ksecret_new(TOKEN_HEADER + ksecret_len(priv));
	ENSURE_GOTO(payload != NULL, K_E_INTERNAL);
	uint8_t *p = ksecret_bytes(payload);
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)((uint64_t)valid_to >> (56 - 8 * i));
	p[8] = idx;
	memcpy(p + TOKEN_HEADER, ksecret_cbytes(priv), ksecret_len(priv));
	aad_of(arn, "import-token", &aad);
	GUARD_GOTO(keystore_wrap(kbuf_slice(&aad), payload, token));
out:
	asym_key_free(ak);
	ksecret_free(priv);
	ksecret_free(payload);
	kbuf_release(&aad);
	return rc;
}

/* Opens a token: its wrapping key and algorithm, if it is this key's and not expired. */
static K_MUST_CHECK k_status open_token(struct keystore_import *req, struct asym_key **wrapping)
{
	struct kbuf aad;
	kbuf_init(&aad, SOFT_AAD_MAX);
	aad_of(req->arn, "import-token", &aad);
	struct ksecret *payload = NULL, *priv = NULL;
	k_status rc = keystore_unwrap(kbuf_slice(&aad), req->token, &payload);
	kbuf_release(&aad);
	ENSURE(k_ok(rc), K_E_INVALID_IMPORT_TOKEN);
	const uint8_t *p = ksecret_cbytes(payload);
	uint64_t valid_to = 0;
	ENSURE_GOTO(ksecret_len(payload) > TOKEN_HEADER, K_E_INVALID_IMPORT_TOKEN);
	for (int i = 0; i < 8; i++)
		valid_to = (valid_to << 8) | p[i];
	ENSURE_GOTO(p[8] < sizeof wrap_algs / sizeof wrap_algs[0] - 1, K_E_INVALID_IMPORT_TOKEN);
	ENSURE_GOTO((int64_t)valid_to >= req->now, K_E_EXPIRED_IMPORT_TOKEN);
	req->wrap_alg = wrap_algs[p[8]];
	priv = ksecret_from(p + TOKEN_HEADER, ksecret_len(payload) - TOKEN_HEADER);
	ENSURE_GOTO(priv != NULL, K_E_INTERNAL);
	ENSURE_GOTO(k_ok(asym_key_load(priv, wrapping)), K_E_INVALID_IMPORT_TOKEN);
out:
	ksecret_free(priv);
	ksecret_free(payload);
	return rc;
}

/*
 * What material fits a key spec (https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys-conceptual.html):
 * SYMMETRIC_DEFAULT a 256-bit key; HMAC keys between the digest length
 * and the block size (HMAC_224 28..64 bytes, HMAC_256 32..64, HMAC_384
 * 48..128, HMAC_512 64..128); asymmetric keys a PKCS#8 private key of the
 * key's spec.
 */
static bool material_fits(const char *spec, const struct ksecret *m)
{
	static const struct {
		const char *spec;
		size_t min, max;
	} sym[] = {{"SYMMETRIC_DEFAULT", 32, 32},
		   {"HMAC_224", 28, 64},
		   {"HMAC_256", 32, 64},
		   {"HMAC_384", 48, 128},
		   {"HMAC_512", 64, 128}};
	size_t n = ksecret_len(m);
	for (size_t i = 0; i < sizeof sym / sizeof sym[0]; i++) {
		if (strcmp(spec, sym[i].spec) == 0)
			return n >= sym[i].min && n <= sym[i].max;
	}
	struct asym_key *ak = NULL;
	if (k_failed(asym_key_load(m, &ak)))
		return false;
	const char *got = asym_key_spec(ak);
	bool ok = got != NULL && strcmp(got, spec) == 0;
	asym_key_free(ak);
	return ok;
}

/*
 * Compares the material with the key's fingerprint, or on a first import
 * makes one; either way the fingerprint to keep is appended to out.
 */
static K_MUST_CHECK k_status check_same_material(const struct keystore_import *req,
						 const struct ksecret *m, struct kbuf *out)
{
	struct ksecret *fp = ksecret_new(CRYPTO_SHA256_LEN), *old = NULL;
	ENSURE(fp != NULL, K_E_INTERNAL);
	struct kbuf aad, raw;
	kbuf_init(&aad, SOFT_AAD_MAX);
	kbuf_init(&raw, FINGERPRINT_MAX);
	aad_of(req->arn, "material-fingerprint", &aad);
	k_status rc = K_OK;
	GUARD_GOTO(crypto_sha256(ksecret_cbytes(m), ksecret_len(m), ksecret_bytes(fp)));
	if (req->fingerprint != NULL) {
		GUARD_GOTO(kbuf_decode_base64(&raw, kslice_cstr(req->fingerprint)));
		GUARD_GOTO(keystore_unwrap(kbuf_slice(&aad), kbuf_slice(&raw), &old));
		ENSURE_GOTO(ksecret_len(old) == CRYPTO_SHA256_LEN &&
				    crypto_memeq(ksecret_cbytes(old), ksecret_cbytes(fp),
						 CRYPTO_SHA256_LEN),
			    K_E_INCORRECT_KEY_MATERIAL);
		GUARD_GOTO(kbuf_append_str(out, req->fingerprint));
	} else {
		GUARD_GOTO(keystore_wrap(kbuf_slice(&aad), fp, &raw));
		GUARD_GOTO(kbuf_append_base64(out, raw.ptr, raw.len));
	}
out:
	ksecret_free(fp);
	ksecret_free(old);
	kbuf_release(&aad);
	kbuf_release(&raw);
	return rc;
}

/* The material a peer's primary key committed to (crypto/commit.h), in constant time. */
static K_MUST_CHECK k_status check_commitment(const struct keystore_import *req,
					      const struct ksecret *m)
{
	struct kbuf want;
	kbuf_init(&want, CRYPTO_COMMIT_LEN);
	k_status rc = kbuf_decode_base64(&want, kslice_cstr(req->commitment));
	if (k_ok(rc))
		rc = crypto_material_commitment_check(m, req->arn, kbuf_slice(&want));
	else
		rc = K_E_INCORRECT_KEY_MATERIAL;
	kbuf_release(&want);
	return k_is(rc, K_E_INTERNAL) ? rc : k_ok(rc) ? K_OK : K_E_INCORRECT_KEY_MATERIAL;
}

/* The outputs are all or nothing: they are made aside and appended at the end. */
static K_MUST_CHECK k_status soft_import(struct keystore_import *req)
{
	struct asym_key *wrapping = NULL;
	struct ksecret *material = NULL;
	struct soft_key *s = NULL;
	struct kbuf fp, ref;
	kbuf_init(&fp, FINGERPRINT_MAX);
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	k_status rc = K_OK;
	GUARD_GOTO(open_token(req, &wrapping));
	rc = asym_import_unwrap(wrapping, req->wrap_alg, req->encrypted, &material);
	if (k_is(rc, K_E_VALIDATION))
		rc = K_E_INVALID_CIPHERTEXT;
	GUARD_GOTO(rc);
	ENSURE_GOTO(material_fits(req->spec, material), K_E_VALIDATION);
	if (req->commitment != NULL)
		GUARD_GOTO(check_commitment(req, material));
	GUARD_GOTO(check_same_material(req, material, &fp));
	GUARD_GOTO(keystore_soft_wrap_ref(req->arn, 1, material, &ref));
	s = soft_new(req->key_id, 1);
	ENSURE_GOTO(s != NULL, K_E_INTERNAL);
	s->v[0] = material;
	material = NULL;
	rc = kbuf_append(req->fingerprint_out, fp.ptr, fp.len);
	if (k_ok(rc))
		rc = kbuf_append(req->ref, ref.ptr, ref.len);
	if (k_failed(rc)) {
		soft_destroy(&s->pub);
		goto out;
	}
	req->key = &s->pub;
out:
	asym_key_free(wrapping);
	ksecret_free(material);
	kbuf_release(&fp);
	kbuf_release(&ref);
	return rc;
}

const struct keystore_ops keystore_soft = {
	.name = "soft",
	.generate = soft_generate,
	.open = soft_open,
	.new_version = soft_new_version,
	.destroy = soft_destroy,
	.encrypt = soft_encrypt,
	.decrypt = soft_decrypt,
	.generate_data_key = soft_generate_data_key,
	.generate_data_key_pair = soft_generate_data_key_pair,
	.public_key = soft_public_key,
	.sign = soft_sign,
	.verify = soft_verify,
	.asym_encrypt = soft_asym_encrypt,
	.asym_decrypt = soft_asym_decrypt,
	.derive_shared_secret = soft_derive_shared_secret,
	.mac = soft_mac,
	.mac_verify = soft_mac_verify,
	.import_params = soft_import_params,
	.import = soft_import,
	.gcm_encrypt = soft_gcm_encrypt,
	.gcm_decrypt = soft_gcm_decrypt,
};
