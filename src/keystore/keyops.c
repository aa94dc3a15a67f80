/*
 * keyops.c — choosing a key store, dispatching to it, and the envelope
 * encryption built on its operations (see keyops.h).
 */
#include "keystore/keyops.h"
#include "keystore/pkcs11.h"
#include "keystore/xks.h"

#include <string.h>

#include "core/banned.h"

static const struct keystore_ops *stores[KEYSTORE_MAX_STORES];
static size_t n_stores;

const struct keystore_ops *keystore_find(const char *name)
{
	if (name == NULL || name[0] == 0 || strcmp(name, keystore_soft.name) == 0)
		return &keystore_soft;
	if (strcmp(name, keystore_pkcs11.name) == 0) /* built in: keys in PKCS#11 tokens */
		return &keystore_pkcs11;
	if (strcmp(name, keystore_xks.name) == 0) /* built in: kinko's layer of external keys */
		return &keystore_xks;
	for (size_t i = 0; i < n_stores; i++) {
		if (strcmp(stores[i]->name, name) == 0)
			return stores[i];
	}
	return NULL;
}

k_status keystore_register(const struct keystore_ops *ops)
{
	ENSURE(ops != NULL && ops->name != NULL && ops->name[0] != 0, K_E_INTERNAL);
	ENSURE(keystore_find(ops->name) == NULL, K_E_ALREADY_EXISTS);
	ENSURE(n_stores < KEYSTORE_MAX_STORES, K_E_LIMIT_EXCEEDED);
	stores[n_stores++] = ops;
	return K_OK;
}

void keystore_unregister_all(void)
{
	n_stores = 0;
}

/* ---- lifecycle ---- */

k_status keystore_generate(const struct keystore_ops *ops, const char *spec, const char *arn,
			   struct kbuf *ref)
{
	ENSURE(ops->generate != NULL, K_E_UNSUPPORTED);
	return ops->generate(spec, arn, ref);
}

k_status keystore_open(const struct keystore_ops *ops, const char *arn, const uint8_t key_id[16],
		       const struct kslice *refs, uint32_t n, struct keystore_key **out)
{
	ENSURE(ops->open != NULL, K_E_UNSUPPORTED);
	return ops->open(arn, key_id, refs, n, out);
}

k_status keystore_new_version(const struct keystore_key *cur, const char *spec, const char *arn,
			      struct kbuf *ref, struct keystore_key **out)
{
	ENSURE(cur->ops->new_version != NULL, K_E_UNSUPPORTED);
	return cur->ops->new_version(cur, spec, arn, ref, out);
}

k_status keystore_erase(const struct keystore_ops *ops, const struct kslice *refs, uint32_t n)
{
	if (ops->erase == NULL || n == 0)
		return K_OK;
	return ops->erase(refs, n);
}

void keystore_key_unref(struct keystore_key *h)
{
	if (h == NULL || atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1)
		return;
	h->ops->destroy(h);
}

/* ---- operations ---- */

k_status keystore_generate_data_key_pair(const struct keystore_key *h, const char *pair_spec,
					 struct kslice ectx, struct kbuf *spki, struct kbuf *blob,
					 struct ksecret **priv)
{
	ENSURE(h->ops->generate_data_key_pair != NULL, K_E_UNSUPPORTED);
	return h->ops->generate_data_key_pair(h, pair_spec, ectx, spki, blob, priv);
}

k_status keystore_public_key(const struct keystore_key *h, struct kbuf *spki)
{
	ENSURE(h->ops->public_key != NULL, K_E_UNSUPPORTED);
	return h->ops->public_key(h, spki);
}

k_status keystore_sign(const struct keystore_key *h, const char *alg, bool is_digest,
		       struct kslice msg, struct kbuf *sig)
{
	ENSURE(h->ops->sign != NULL, K_E_UNSUPPORTED);
	return h->ops->sign(h, alg, is_digest, msg, sig);
}

k_status keystore_verify(const struct keystore_key *h, const char *alg, bool is_digest,
			 struct kslice msg, struct kslice sig, bool *valid)
{
	*valid = false;
	ENSURE(h->ops->verify != NULL, K_E_UNSUPPORTED);
	return h->ops->verify(h, alg, is_digest, msg, sig, valid);
}

k_status keystore_asym_encrypt(const struct keystore_key *h, const char *alg, struct kslice pt,
			       struct kbuf *ct)
{
	ENSURE(h->ops->asym_encrypt != NULL, K_E_UNSUPPORTED);
	return h->ops->asym_encrypt(h, alg, pt, ct);
}

k_status keystore_asym_decrypt(const struct keystore_key *h, const char *alg, struct kslice ct,
			       struct kbuf *pt)
{
	ENSURE(h->ops->asym_decrypt != NULL, K_E_UNSUPPORTED);
	return h->ops->asym_decrypt(h, alg, ct, pt);
}

k_status keystore_derive_shared_secret(const struct keystore_key *h, struct kslice peer_spki,
				       struct ksecret **out)
{
	ENSURE(h->ops->derive_shared_secret != NULL, K_E_UNSUPPORTED);
	return h->ops->derive_shared_secret(h, peer_spki, out);
}

k_status keystore_mac(const struct keystore_key *h, const char *alg, struct kslice msg,
		      uint8_t mac[KEYSTORE_MAX_MAC], size_t *mac_len)
{
	ENSURE(h->ops->mac != NULL, K_E_UNSUPPORTED);
	return h->ops->mac(h, alg, msg, mac, mac_len);
}

k_status keystore_mac_verify(const struct keystore_key *h, const char *alg, struct kslice msg,
			     struct kslice mac, bool *valid)
{
	*valid = false;
	ENSURE(h->ops->mac_verify != NULL, K_E_UNSUPPORTED);
	return h->ops->mac_verify(h, alg, msg, mac, valid);
}

k_status keystore_gcm_encrypt(const struct keystore_key *h, struct keystore_gcm *g,
			      struct kslice pt, struct kbuf *ct)
{
	ENSURE(h->ops->gcm_encrypt != NULL, K_E_UNSUPPORTED);
	return h->ops->gcm_encrypt(h, g, pt, ct);
}

k_status keystore_gcm_decrypt(const struct keystore_key *h, const struct keystore_gcm *g,
			      struct kslice ct, struct kbuf *pt)
{
	ENSURE(h->ops->gcm_decrypt != NULL, K_E_UNSUPPORTED);
	return h->ops->gcm_decrypt(h, g, ct, pt);
}

k_status keystore_import_params(const struct keystore_ops *ops, const char *arn,
				const char *wrap_spec, const char *wrap_alg, int64_t valid_to,
				struct kbuf *spki, struct kbuf *token)
{
	ENSURE(ops->import_params != NULL, K_E_UNSUPPORTED);
	return ops->import_params(arn, wrap_spec, wrap_alg, valid_to, spki, token);
}

k_status keystore_import(const struct keystore_ops *ops, struct keystore_import *req)
{
	req->wrap_alg = NULL;
	ENSURE(ops->import != NULL, K_E_UNSUPPORTED);
	return ops->import(req);
}

/* ---- envelope encryption ---- */

/*
 * The data key never leaves keystore/: it is made in locked memory by the
 * key's store, used here with crypto/ and wiped. The value's blob names no
 * KMS key (zero id, version 1) because only its data key's blob does.
 */
#define ENVELOPE_DK_LEN CRYPTO_KEY_LEN
/* The buffer an envelope's data key is unwrapped into (ENVELOPE_DK_LEN, checked after). */
#define KEYSTORE_DATA_KEY_MAX 64
static const uint8_t envelope_zero_id[16];

k_status keystore_envelope_seal(const struct keystore_key *h, struct kslice ectx,
				struct kslice value, struct kbuf *wrapped_dk, struct kbuf *blob)
{
	struct ksecret *dk = ksecret_new(ENVELOPE_DK_LEN);
	ENSURE(dk != NULL, K_E_INTERNAL);
	k_status rc = keystore_generate_data_key(h, ectx, dk, wrapped_dk);
	if (k_ok(rc))
		rc = keystore_value_seal(dk, ectx, value, blob);
	ksecret_free(dk);
	return rc;
}

k_status keystore_value_seal(const struct ksecret *dk, struct kslice ectx, struct kslice value,
			     struct kbuf *blob)
{
	ENSURE(ksecret_len(dk) == ENVELOPE_DK_LEN, K_E_INTERNAL);
	return crypto_sym_encrypt(dk, envelope_zero_id, 1, ectx, value, blob);
}

k_status keystore_value_open(struct kslice dk_bytes, struct kslice ectx, struct kslice blob,
			     struct kbuf *out)
{
	struct crypto_blob b;
	ENSURE(dk_bytes.len == ENVELOPE_DK_LEN, K_E_INVALID_CIPHERTEXT);
	ENSURE(k_ok(crypto_blob_parse(blob, &b)), K_E_INVALID_CIPHERTEXT);
	struct ksecret *dk = ksecret_from(dk_bytes.ptr, dk_bytes.len);
	ENSURE(dk != NULL, K_E_INTERNAL);
	k_status rc = crypto_sym_decrypt(dk, &b, ectx, out);
	ksecret_free(dk);
	return k_ok(rc) ? K_OK : K_E_INVALID_CIPHERTEXT;
}

k_status keystore_envelope_open(const struct keystore_key *h, struct kslice ectx,
				struct kslice wrapped_dk, struct kslice blob, struct kbuf *out)
{
	struct crypto_blob b1;
	struct kbuf dkbuf;
	kbuf_init(&dkbuf, KEYSTORE_DATA_KEY_MAX);
	k_status rc = K_OK;
	ENSURE_GOTO(k_ok(crypto_blob_parse(wrapped_dk, &b1)), K_E_INVALID_CIPHERTEXT);
	ENSURE_GOTO(b1.version >= 1 && b1.version <= keystore_key_versions(h) &&
			    memcmp(b1.key_id, h->key_id, 16) == 0,
		    K_E_INVALID_CIPHERTEXT);
	ENSURE_GOTO(k_ok(keystore_decrypt(h, &b1, ectx, &dkbuf)) && dkbuf.len == ENVELOPE_DK_LEN,
		    K_E_INVALID_CIPHERTEXT);
	rc = keystore_value_open(kbuf_slice(&dkbuf), ectx, blob, out);
out:
	kbuf_release(&dkbuf);
	return rc;
}
