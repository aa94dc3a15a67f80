/*
 * peer.c — the wrapping key pair and the sealed transfer of key material
 * between peer deployments (see peer.h).
 */
#include "keystore/peer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "crypto/asym.h"
#include "crypto/commit.h"
#include "crypto/peerwrap.h"
#include "keystore/keyops.h"
#include "keystore/keystore.h"
#include "keystore/soft_refs.h"
#include "core/banned.h"

/* The AAD that binds the wrapped private key to its purpose. */
#define PEER_KEY_AAD "kinko/peer-wrapping-key/v1"
/* The wrapped PKCS#8 of an RSA_3072 key in base64, with room. */
#define PEER_KEY_DOC_MAX (16u << 10)
/* One version's material: a PKCS#8 RSA 4096 key is about 2.4 KB. */
#define MATERIAL_MAX (8u << 10)

/* Loaded once before serving and read-only after. */
static struct asym_key *own;
static struct kbuf own_pem;

void keystore_peer_key_release(void)
{
	asym_key_free(own);
	own = NULL;
	kbuf_release(&own_pem);
}

static K_MUST_CHECK k_status install(struct ksecret *pkcs8)
{
	struct asym_key *k = NULL;
	GUARD(asym_key_load(pkcs8, &k));
	keystore_peer_key_release();
	own = k;
	kbuf_init(&own_pem, CRYPTO_PEER_MAX_PEM);
	return crypto_peer_public_pem(own, &own_pem);
}

/* A new key pair, stored unless another node stored one first. */
static K_MUST_CHECK k_status create_key(struct storage *st)
{
	struct ksecret *pkcs8 = NULL;
	struct kbuf wrapped, b64;
	kbuf_init(&wrapped, PEER_KEY_DOC_MAX);
	kbuf_init(&b64, PEER_KEY_DOC_MAX);
	char *text = NULL;
	k_status rc = asym_generate(CRYPTO_PEER_KEY_SPEC, &pkcs8);
	GUARD_GOTO(rc);
	GUARD_GOTO(install(pkcs8));
	GUARD_GOTO(keystore_wrap(KSLICE_LIT(PEER_KEY_AAD), pkcs8, &wrapped));
	GUARD_GOTO(kbuf_append_base64(&b64, wrapped.ptr, wrapped.len));
	json_t *doc = json_pack("{s:s, s:s}", "Wrapped", kbuf_cstr(&b64), "PublicKey",
				kbuf_cstr(&own_pem));
	text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(doc);
	ENSURE_GOTO(text != NULL, K_E_INTERNAL);
	struct storage_op op = {.op = STORAGE_PUT,
				.kind = KEYSTORE_PEER_KEY_KIND,
				.ns = KEYSTORE_PEER_KEY_NS,
				.id = KEYSTORE_PEER_KEY_ID,
				.doc = kslice_cstr(text),
				.expect = STORAGE_ABSENT};
	rc = storage_apply(st, &op, 1);
	if (k_ok(rc))
		LOG_INFO("peer: made this deployment's wrapping key pair");
out:
	kjson_free(text);
	kbuf_release(&wrapped);
	kbuf_release(&b64);
	ksecret_free(pkcs8);
	return rc;
}

/* The stored key pair: its private key unwrapped and installed. */
static K_MUST_CHECK k_status read_key(struct kslice doc)
{
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	const char *w = json_string_value(json_object_get(j, "Wrapped"));
	struct kbuf raw;
	kbuf_init(&raw, PEER_KEY_DOC_MAX);
	struct ksecret *pkcs8 = NULL;
	k_status rc = w != NULL ? kbuf_decode_base64(&raw, kslice_cstr(w)) : K_E_INTERNAL;
	if (k_ok(rc))
		rc = keystore_unwrap(KSLICE_LIT(PEER_KEY_AAD), kbuf_slice(&raw), &pkcs8);
	if (k_ok(rc))
		rc = install(pkcs8);
	ksecret_free(pkcs8);
	kbuf_release(&raw);
	json_decref(j);
	return k_ok(rc) ? K_OK : K_E_INTERNAL;
}

k_status keystore_peer_key_load(struct storage *st, bool create)
{
	struct kbuf doc;
	kbuf_init(&doc, PEER_KEY_DOC_MAX);
	k_status rc = storage_get(st, KEYSTORE_PEER_KEY_KIND, KEYSTORE_PEER_KEY_NS,
				  KEYSTORE_PEER_KEY_ID, &doc, NULL);
	if (k_is(rc, K_E_NOT_FOUND) && create) {
		rc = create_key(st);
		if (k_is(rc, K_E_CONFLICT)) /* another node made one first: use it */
			rc = storage_get(st, KEYSTORE_PEER_KEY_KIND, KEYSTORE_PEER_KEY_NS,
					 KEYSTORE_PEER_KEY_ID, &doc, NULL);
		else
			goto out;
	}
	if (k_ok(rc))
		rc = read_key(kbuf_slice(&doc));
out:
	kbuf_release(&doc);
	return rc;
}

k_status keystore_peer_public_pem(struct kbuf *out)
{
	ENSURE(own != NULL, K_E_INTERNAL);
	return kbuf_append(out, own_pem.ptr, own_pem.len);
}

/*
 * The payload: u32 count, then per version u32 length and the bytes,
 * built in a locked secret.
 */
static K_MUST_CHECK k_status payload_of(const char *arn, const struct kslice *refs, uint32_t n,
					struct ksecret **out)
{
	*out = NULL;
	ENSURE(n > 0 && n <= KEYSTORE_PEER_MAX_VERSIONS, K_E_VALIDATION);
	struct ksecret **v = calloc(n, sizeof *v);
	ENSURE(v != NULL, K_E_INTERNAL);
	size_t total = 4;
	k_status rc = K_OK;
	for (uint32_t i = 0; i < n && k_ok(rc); i++) {
		rc = keystore_soft_unwrap_ref(arn, i + 1, refs[i], &v[i]);
		if (k_ok(rc))
			total += 4 + ksecret_len(v[i]);
	}
	struct ksecret *p = k_ok(rc) ? ksecret_new(total) : NULL;
	if (p != NULL) {
		uint8_t *w = ksecret_bytes(p);
		size_t at = 0;
		for (uint32_t i = 0; i <= n; i++) {
			uint32_t len = i == 0 ? n : (uint32_t)ksecret_len(v[i - 1]);
			uint8_t be[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
					 (uint8_t)(len >> 8), (uint8_t)len};
			memcpy(w + at, be, 4);
			at += 4;
			if (i > 0) {
				memcpy(w + at, ksecret_cbytes(v[i - 1]), len);
				at += len;
			}
		}
	} else if (k_ok(rc)) {
		rc = K_E_INTERNAL;
	}
	for (uint32_t i = 0; i < n; i++)
		ksecret_free(v[i]);
	free(v);
	*out = p;
	return rc;
}

k_status keystore_peer_seal(const char *arn, const struct kslice *refs, uint32_t n,
			    struct kslice peer_pem, struct kslice aad, struct kbuf *out)
{
	struct ksecret *payload = NULL;
	GUARD(payload_of(arn, refs, n, &payload));
	k_status rc = crypto_peer_seal(peer_pem, aad, payload, out);
	ksecret_free(payload);
	return rc;
}

/* Each version of an opened payload, wrapped again under this root key. */
static K_MUST_CHECK k_status rewrap_each(const char *arn, const struct ksecret *payload,
					 keystore_peer_ref_cb each, void *arg)
{
	struct kcursor cur =
		kcursor_make(kslice_make(ksecret_cbytes(payload), ksecret_len(payload)));
	uint32_t n = 0;
	ENSURE(k_ok(kcursor_read_u32be(&cur, &n)) && n > 0 && n <= KEYSTORE_PEER_MAX_VERSIONS,
	       K_E_INVALID_CIPHERTEXT);
	struct kbuf ref;
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	k_status rc = K_OK;
	for (uint32_t i = 1; i <= n && k_ok(rc); i++) {
		uint32_t len = 0;
		struct kslice m;
		ENSURE_GOTO(k_ok(kcursor_read_u32be(&cur, &len)) && len > 0 &&
				    len <= MATERIAL_MAX && k_ok(kcursor_read_slice(&cur, len, &m)),
			    K_E_INVALID_CIPHERTEXT);
		struct ksecret *s = ksecret_from(m.ptr, m.len);
		ENSURE_GOTO(s != NULL, K_E_INTERNAL);
		kbuf_reset(&ref);
		rc = keystore_soft_wrap_ref(arn, i, s, &ref);
		ksecret_free(s);
		if (k_ok(rc))
			rc = each(arg, i, kbuf_slice(&ref));
	}
	if (k_ok(rc) && kcursor_left(&cur) != 0)
		rc = K_E_INVALID_CIPHERTEXT;
out:
	kbuf_release(&ref);
	return rc;
}

k_status keystore_peer_open(const char *arn, struct kslice aad, struct kslice sealed,
			    keystore_peer_ref_cb each, void *arg)
{
	ENSURE(own != NULL, K_E_INTERNAL);
	struct ksecret *payload = NULL;
	GUARD(crypto_peer_open(own, aad, sealed, &payload));
	k_status rc = rewrap_each(arn, payload, each, arg);
	ksecret_free(payload);
	return rc;
}

k_status keystore_peer_commitment(const char *arn, uint32_t version, struct kslice ref,
				  struct kbuf *out)
{
	struct ksecret *m = NULL;
	GUARD(keystore_soft_unwrap_ref(arn, version, ref, &m));
	uint8_t c[CRYPTO_COMMIT_LEN];
	k_status rc = crypto_material_commitment(m, arn, c);
	ksecret_free(m);
	if (k_ok(rc))
		rc = kbuf_append_base64(out, c, sizeof c);
	return rc;
}
