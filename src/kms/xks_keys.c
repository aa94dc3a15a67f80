/*
 * xks_keys.c — KMS keys in external key stores (kms/xks_keys.h): the
 * checks of CreateKey with XksKeyId, and the double encryption of
 * Encrypt, Decrypt, ReEncrypt and GenerateDataKey* through the store's
 * XKS proxy (https://docs.aws.amazon.com/kms/latest/developerguide/keystore-external.html#concept-double-encryption).
 */
#include "kms/xks_keys.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "crypto/crypto.h"
#include "keystore/xks.h"
#include "kms/keystores.h"
#include "kms/multiregion.h"
#include "kms/store.h"
#include "kms/xks_link.h"
#include "core/banned.h"

#define XKS_AAD_LEN (KMS_XKS_BLOB_HEADER_LEN + CRYPTO_SHA256_LEN)

static const char *doc_string(json_t *doc, const char *member)
{
	return json_string_value(json_object_get(doc, member));
}

static const char *xks_key_id_of(const struct kms_key *k)
{
	return doc_string(json_object_get(k->doc, "XksKeyConfiguration"), "Id");
}

bool kms_key_is_xks(const struct kms_key *k)
{
	return keystore_xks_layer(k->handle) != NULL;
}

static bool store_connected(json_t *store)
{
	const char *state = doc_string(store, "ConnectionState");
	return state != NULL && strcmp(state, "CONNECTED") == 0;
}

bool kms_xks_key_available(const struct kms_key *k)
{
	const char *sid = doc_string(k->doc, "CustomKeyStoreId");
	json_t *store = sid != NULL ? kms_cks_find(k->ns, sid) : NULL;
	bool up = store != NULL && store_connected(store);
	json_decref(store);
	return up;
}

/* ---- calls to the store's proxy ------------------------------------------------ */

/* A store's proxy, ready for calls on behalf of one request. */
struct proxy_call {
	struct kms_xks_proxy p;
	const struct kms_xks_link *link;
	json_t *store;
	struct ksecret *secret;
};

static void call_release(struct proxy_call *pc)
{
	ksecret_free(pc->secret);
	json_decref(pc->store);
}

/* Takes `store` (the record of store_id in ns). K_E_INTERNAL: the credential does not unwrap. */
static K_MUST_CHECK k_status call_init(struct api_ctx *c, const char *ns, const char *store_id,
				       json_t *store, const char *key_arn, struct proxy_call *pc)
{
	memset(pc, 0, sizeof *pc);
	pc->store = store;
	pc->link = kms_xks_link();
	pc->secret = kms_cks_xks_secret(ns, store_id, store);
	json_t *cfg = json_object_get(store, "XksProxyConfiguration");
	pc->p = (struct kms_xks_proxy){
		.endpoint = doc_string(cfg, "UriEndpoint"),
		.uri_path = doc_string(cfg, "UriPath"),
		.access_key_id = doc_string(cfg, "AccessKeyId"),
		.secret = pc->secret,
		.region = c->region,
		.operation = c->op != NULL ? c->op->name : "",
		.request_id = c->req != NULL ? c->req->request_id : "",
		.principal_arn = c->principal.arn,
		.key_arn = key_arn,
	};
	if (pc->secret == NULL || pc->p.endpoint == NULL || pc->p.uri_path == NULL ||
	    pc->p.access_key_id == NULL) {
		LOG_WARN("custom key store %s: its proxy settings or credential do not read",
			 store_id);
		return K_E_INTERNAL;
	}
	return K_OK;
}

/*
 * The proxy of k's store, for a cryptographic operation. "AWS KMS
 * cryptographic operations return KMSInvalidStateException for all
 * failures related to the external configuration or connection state of
 * the external key store" (xks-troubleshooting).
 */
static K_MUST_CHECK k_status call_open(struct api_ctx *c, const struct kms_key *k,
				       struct proxy_call *pc)
{
	const char *sid = doc_string(k->doc, "CustomKeyStoreId");
	json_t *store = sid != NULL ? kms_cks_find(k->ns, sid) : NULL;
	const struct kms_xks_link *link = kms_xks_link();
	if (store == NULL || !store_connected(store) || xks_key_id_of(k) == NULL) {
		json_decref(store);
		return api_fail(c, K_E_INVALID_STATE,
				"%s is unavailable: its custom key store %s is not connected.",
				k->arn, sid ? sid : "");
	}
	if (link == NULL || link->encrypt == NULL || link->decrypt == NULL) {
		json_decref(store);
		return api_fail(c, K_E_INVALID_STATE,
				"%s is unavailable: this server has no XKS proxy client.", k->arn);
	}
	k_status rc = call_init(c, k->ns, sid, store, k->arn, pc);
	if (k_failed(rc))
		call_release(pc);
	return rc;
}

/* A failed proxy call of a cryptographic operation, as AWS answers it. */
static K_MUST_CHECK k_status crypto_failed(struct api_ctx *c, const struct kms_key *k, k_status rc,
					   const struct kms_xks_failure *f)
{
	const char *xid = xks_key_id_of(k);
	/* The proxy's InvalidCiphertextException: its layer did not authenticate (a client error). */
	if (k_is(rc, K_E_INVALID_STATE) &&
	    strcmp(f->proxy_error, "InvalidCiphertextException") == 0)
		return K_E_INVALID_CIPHERTEXT;
	LOG_WARN("%s: the external key store proxy failed %s: %s %s", k->arn,
		 c->op != NULL ? c->op->name : "", f->proxy_error, f->why);
	switch (k_code(rc)) {
	case KC_E_XKS_PROXY_URI_UNREACHABLE:
		return api_fail(c, K_E_INVALID_STATE,
				"The external key store proxy of %s %s "
				"(XksProxyUriUnreachableException).",
				k->arn,
				f->timed_out ? "did not answer in time" : "is not reachable");
	case KC_E_XKS_PROXY_INVALID_RESPONSE:
		return api_fail(c, K_E_INVALID_STATE,
				"The external key store proxy of %s sent an answer that cannot be "
				"interpreted (XksProxyInvalidResponseException).",
				k->arn);
	case KC_E_XKS_PROXY_INCORRECT_AUTH:
		return api_fail(
			c, K_E_INVALID_STATE,
			"The external key store proxy of %s rejected the store's credential "
			"(XksProxyIncorrectAuthenticationCredentialException).",
			k->arn);
	case KC_E_XKS_PROXY_INVALID_CONFIGURATION:
		return api_fail(c, K_E_INVALID_STATE,
				"The external key store proxy of %s rejected its URI path "
				"(XksProxyInvalidConfigurationException).",
				k->arn);
	case KC_E_XKS_KEY_NOT_FOUND:
		return api_fail(c, K_E_INVALID_STATE,
				"The external key %s of %s was not found by the external key store "
				"proxy (XksKeyNotFoundException).",
				xid, k->arn);
	case KC_E_XKS_KEY_INVALID_CONFIGURATION:
		return api_fail(c, K_E_INVALID_STATE,
				"The external key %s of %s is not enabled or cannot perform this "
				"operation in its external key manager "
				"(XksKeyInvalidConfigurationException).",
				xid, k->arn);
	case KC_E_INVALID_STATE: /* AccessDeniedException */
		return api_fail(c, K_E_INVALID_STATE,
				"The external key store proxy of %s refused the request (%s).",
				k->arn,
				f->proxy_error[0] ? f->proxy_error : "AccessDeniedException");
	default:
		return api_fail(c, K_E_INVALID_STATE,
				"The external key store proxy of %s could not be called.", k->arn);
	}
}

/* ---- the layers ---------------------------------------------------------------- */

/* The format-2 header: magic, format, key id, kinko's material version. */
static void make_header(const uint8_t key_id[16], uint32_t version,
			uint8_t out[KMS_XKS_BLOB_HEADER_LEN])
{
	out[0] = CRYPTO_BLOB_MAGIC;
	out[1] = KMS_XKS_BLOB_VERSION;
	memcpy(out + 2, key_id, 16);
	for (int i = 0; i < 4; i++)
		out[18 + i] = (uint8_t)(version >> (24 - 8 * i));
}

/* The proxy's AAD: the header, then SHA-256 of the canonical encryption context. */
static K_MUST_CHECK k_status make_aad(struct kslice header, struct kslice ectx,
				      uint8_t out[XKS_AAD_LEN])
{
	ENSURE(header.len == KMS_XKS_BLOB_HEADER_LEN, K_E_INTERNAL);
	memcpy(out, header.ptr, header.len);
	return crypto_sha256(ectx.ptr, ectx.len, out + KMS_XKS_BLOB_HEADER_LEN);
}

/* Appends the whole format-2 blob to out (unchanged on failure). */
static K_MUST_CHECK k_status write_blob(const uint8_t header[KMS_XKS_BLOB_HEADER_LEN],
					const struct kms_xks_sealed *s, struct kslice ct,
					struct kbuf *out)
{
	struct kbuf b;
	kbuf_init(&b, KMS_CIPHERTEXT_BUF);
	uint8_t iv_len = (uint8_t)s->iv_len, meta_len = (uint8_t)s->metadata_len;
	k_status rc = kbuf_append(&b, header, KMS_XKS_BLOB_HEADER_LEN);
	if (k_ok(rc))
		rc = kbuf_append(&b, &iv_len, 1);
	if (k_ok(rc))
		rc = kbuf_append(&b, s->iv, s->iv_len);
	if (k_ok(rc))
		rc = kbuf_append(&b, &meta_len, 1);
	if (k_ok(rc))
		rc = kbuf_append(&b, s->metadata, s->metadata_len);
	if (k_ok(rc))
		rc = kbuf_append(&b, s->tag, sizeof s->tag);
	if (k_ok(rc))
		rc = kbuf_append(&b, ct.ptr, ct.len);
	if (k_ok(rc))
		rc = kbuf_append(out, b.ptr, b.len);
	kbuf_release(&b);
	return rc;
}

/* The proxy's layer over kinko's format-1 blob `inner`, appended to out. */
static K_MUST_CHECK k_status seal(struct api_ctx *c, const struct kms_key *k, struct kslice ectx,
				  struct kslice inner, struct kbuf *out)
{
	struct crypto_blob ib;
	GUARD(crypto_blob_parse(inner, &ib));
	uint8_t header[KMS_XKS_BLOB_HEADER_LEN], aad[XKS_AAD_LEN];
	make_header(k->uuid, ib.version, header);
	GUARD(make_aad(kslice_make(header, sizeof header), ectx, aad));
	struct proxy_call pc;
	GUARD(call_open(c, k, &pc));
	struct kms_xks_sealed s;
	struct kms_xks_failure f = {0};
	struct kbuf ct;
	kbuf_init(&ct, KMS_CIPHERTEXT_BUF);
	k_status rc = pc.link->encrypt(&pc.p, xks_key_id_of(k), inner, kslice_make(aad, sizeof aad),
				       &s, &ct, &f);
	if (k_failed(rc))
		rc = crypto_failed(c, k, rc, &f);
	else if (ct.len != inner.len || s.iv_len > sizeof s.iv ||
		 s.metadata_len > sizeof s.metadata)
		rc = crypto_failed(c, k, K_E_XKS_PROXY_INVALID_RESPONSE, &f);
	else
		rc = write_blob(header, &s, kbuf_slice(&ct), out);
	kbuf_release(&ct);
	call_release(&pc);
	return rc;
}

k_status kms_xks_encrypt(struct api_ctx *c, const struct kms_key *k, struct kslice ectx,
			 struct kslice pt, struct kbuf *out)
{
	const struct keystore_key *layer = keystore_xks_layer(k->handle);
	ENSURE(layer != NULL, K_E_INTERNAL);
	struct kbuf inner;
	kbuf_init(&inner, KMS_CIPHERTEXT_BUF);
	k_status rc = keystore_encrypt(layer, ectx, pt, &inner);
	if (k_ok(rc))
		rc = seal(c, k, ectx, kbuf_slice(&inner), out);
	kbuf_release(&inner);
	return rc;
}

k_status kms_xks_generate_data_key(struct api_ctx *c, const struct kms_key *k, struct kslice ectx,
				   struct ksecret *dk, struct kbuf *out)
{
	const struct keystore_key *layer = keystore_xks_layer(k->handle);
	ENSURE(layer != NULL, K_E_INTERNAL);
	struct kbuf inner;
	kbuf_init(&inner, KMS_CIPHERTEXT_BUF);
	k_status rc = keystore_generate_data_key(layer, ectx, dk, &inner);
	if (k_ok(rc))
		rc = seal(c, k, ectx, kbuf_slice(&inner), out);
	kbuf_release(&inner);
	return rc;
}

/* The proxy's layer of a parsed format-2 blob opened: kinko's format-1 blob in inner. */
static K_MUST_CHECK k_status unseal(struct api_ctx *c, const struct kms_key *k,
				    const struct kms_xks_blob *b, struct kslice ectx,
				    struct kbuf *inner)
{
	uint8_t aad[XKS_AAD_LEN];
	GUARD(make_aad(b->header, ectx, aad));
	struct kms_xks_sealed s = {.iv_len = b->iv.len, .metadata_len = b->meta.len};
	memcpy(s.iv, b->iv.ptr, b->iv.len);
	memcpy(s.metadata, b->meta.ptr, b->meta.len);
	memcpy(s.tag, b->tag.ptr, b->tag.len);
	struct proxy_call pc;
	GUARD(call_open(c, k, &pc));
	struct kms_xks_failure f = {0};
	k_status rc = pc.link->decrypt(&pc.p, xks_key_id_of(k), &s, b->sealed,
				       kslice_make(aad, sizeof aad), inner, &f);
	if (k_failed(rc))
		rc = crypto_failed(c, k, rc, &f);
	call_release(&pc);
	return rc;
}

k_status kms_xks_decrypt(struct api_ctx *c, const struct kms_key *k, struct kslice ectx,
			 struct kslice blob, struct kbuf *pt)
{
	const struct keystore_key *layer = keystore_xks_layer(k->handle);
	struct kms_xks_blob b;
	GUARD(kms_xks_blob_parse(blob, &b));
	ENSURE(layer != NULL && memcmp(b.key_id, k->uuid, 16) == 0 &&
		       b.version <= keystore_key_versions(layer),
	       K_E_INVALID_CIPHERTEXT);
	struct kbuf inner;
	kbuf_init(&inner, KMS_CIPHERTEXT_BUF);
	struct crypto_blob ib;
	k_status rc = unseal(c, k, &b, ectx, &inner);
	if (k_ok(rc))
		rc = crypto_blob_parse(kbuf_slice(&inner), &ib);
	/* kinko's layer must be of the same key and version as the header the proxy authenticated. */
	if (k_ok(rc) && (memcmp(ib.key_id, b.key_id, 16) != 0 || ib.version != b.version))
		rc = K_E_INVALID_CIPHERTEXT;
	if (k_ok(rc))
		rc = keystore_decrypt(layer, &ib, ectx, pt);
	kbuf_release(&inner);
	return rc;
}

/* ---- CreateKey ------------------------------------------------------------------- */

struct in_use_scan {
	const char *store, *xks_key_id;
	bool found;
};

static K_MUST_CHECK k_status in_use_cb(void *arg, const char *ns, const char *id,
				       struct kslice text, int64_t version)
{
	struct in_use_scan *s = arg;
	json_t *doc = json_loadb((const char *)text.ptr, text.len, 0, NULL);
	const char *store = doc_string(doc, "CustomKeyStoreId");
	const char *xid = doc_string(json_object_get(doc, "XksKeyConfiguration"), "Id");
	if (store != NULL && xid != NULL && strcmp(store, s->store) == 0 &&
	    strcmp(xid, s->xks_key_id) == 0)
		s->found = true;
	json_decref(doc);
	return K_OK;
}

/* GetKeyMetadata's failures, as CreateKey answers them. */
static K_MUST_CHECK k_status create_failed(struct api_ctx *c, const char *store_id, const char *xid,
					   k_status rc, const struct kms_xks_failure *f)
{
	LOG_WARN("custom key store %s: GetKeyMetadata of %s failed: %s %s", store_id, xid,
		 f->proxy_error, f->why);
	if (k_is(rc, K_E_XKS_KEY_NOT_FOUND))
		return api_fail(c, rc,
				"The external key store proxy of %s did not find the external key "
				"%s.",
				store_id, xid);
	if (k_is(rc, K_E_XKS_KEY_INVALID_CONFIGURATION))
		return api_fail(c, rc,
				"The external key %s is not enabled or does not support encryption "
				"and decryption in its external key manager.",
				xid);
	return api_fail(c, K_E_CKS_INVALID_STATE,
			"The external key store proxy of %s could not describe the external key "
			"%s (%s%s).",
			store_id, xid, f->proxy_error[0] ? f->proxy_error : "",
			f->timed_out ? "no answer in time" : (f->proxy_error[0] ? "" : f->why));
}

/*
 * "The external key must be an AES-256 symmetric key that is enabled and
 * performs encryption and decryption" (XksKeyInvalidConfigurationException):
 * the proxy's GetKeyMetadata says so, or CreateKey fails.
 */
static K_MUST_CHECK k_status check_external_key(struct api_ctx *c, const char *store_id,
						json_t *store, const char *xid)
{
	const struct kms_xks_link *link = kms_xks_link();
	if (link == NULL || link->key_metadata == NULL)
		return api_fail(c, K_E_CKS_INVALID_STATE,
				"This server has no XKS proxy client for custom key store %s.",
				store_id);
	struct proxy_call pc;
	k_status rc = call_init(c, c->ns, store_id, json_incref(store), NULL, &pc);
	struct kms_xks_key_info info;
	struct kms_xks_failure f = {0};
	if (k_ok(rc))
		rc = link->key_metadata(&pc.p, xid, &info, &f);
	call_release(&pc);
	if (k_failed(rc) && !k_is(rc, K_E_INTERNAL))
		return create_failed(c, store_id, xid, rc, &f);
	GUARD(rc);
	if (strcmp(info.key_spec, "AES_256") != 0 || !info.encrypt || !info.decrypt ||
	    strcmp(info.key_status, "ENABLED") != 0)
		return api_fail(
			c, K_E_XKS_KEY_INVALID_CONFIGURATION,
			"The external key %s is %s %s%s%s; it must be an ENABLED AES_256 key "
			"for ENCRYPT and DECRYPT.",
			xid, info.key_status, info.key_spec, info.encrypt ? "" : " without ENCRYPT",
			info.decrypt ? "" : " without DECRYPT");
	return K_OK;
}

k_status kms_xks_check_new_key(struct api_ctx *c, const char *store_id, json_t *doc,
			       const char *xks_key_id)
{
	const char *code;
	if (strcmp(kms_cks_state(c->ns, store_id, doc, &code), "CONNECTED") != 0)
		return api_fail(c, K_E_CKS_INVALID_STATE, "Custom key store %s is not connected.",
				store_id);
	struct in_use_scan s = {.store = store_id, .xks_key_id = xks_key_id};
	GUARD(storage_list(kms_store(), "key", c->ns, NULL, NULL, SIZE_MAX, in_use_cb, &s));
	if (s.found)
		return api_fail(
			c, K_E_XKS_KEY_ALREADY_IN_USE,
			"The external key %s is already associated with a KMS key in custom "
			"key store %s.",
			xks_key_id, store_id);
	return check_external_key(c, store_id, doc, xks_key_id);
}

k_status kms_xks_generate(struct api_ctx *c, json_t *doc, const char *store_id,
			  const char *xks_key_id)
{
	struct kbuf ref;
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	k_status rc = keystore_generate(&keystore_xks, "SYMMETRIC_DEFAULT",
					kms_doc_material_arn(doc), &ref);
	if (k_ok(rc)) {
		json_object_set_new(doc, "KeyStore", json_string(XKS_KEYSTORE_NAME));
		json_object_set_new(doc, "CustomKeyStoreId", json_string(store_id));
		json_object_set_new(doc, "XksKeyConfiguration",
				    json_pack("{s:s}", "Id", xks_key_id));
		json_object_set_new(doc, "Materials",
				    json_pack("[{s:i, s:s, s:I}]", "Version", 1, "Wrapped",
					      kbuf_cstr(&ref), "Created", (json_int_t)c->now));
	}
	kbuf_release(&ref);
	return rc;
}
