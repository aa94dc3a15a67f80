/*
 * keystores.c — custom key store records, their connection state, and the
 * keys inside them (kms/keystores.h).
 */
#include "kms/keystores.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/secret.h"
#include "keystore/keystore.h"
#include "keystore/pkcs11.h"
#include "kms/store.h"
#include "kms/xks_keys.h"
#include "core/banned.h"

static json_t *parse_doc(struct kbuf *b)
{
	return json_loadb((const char *)b->ptr, b->len, JSON_REJECT_DUPLICATES, NULL);
}

/* The record, or NULL (none, or the store failed). */
static json_t *load_ns(const char *ns, const char *id, int64_t *version)
{
	struct kbuf b;
	kbuf_init(&b, STORAGE_MAX_DOC);
	json_t *doc = NULL;
	if (k_ok(storage_get(kms_store(), KMS_CKS_KIND, ns, id, &b, version)))
		doc = parse_doc(&b);
	kbuf_release(&b);
	return doc;
}

json_t *kms_cks_find(const char *ns, const char *id)
{
	int64_t version;
	return load_ns(ns, id, &version);
}

k_status kms_cks_load(struct api_ctx *c, const char *id, json_t **doc, int64_t *version)
{
	struct kbuf b;
	kbuf_init(&b, STORAGE_MAX_DOC);
	k_status rc = storage_get(kms_store(), KMS_CKS_KIND, c->ns, id, &b, version);
	if (k_ok(rc)) {
		*doc = parse_doc(&b);
		rc = *doc != NULL ? K_OK : K_E_INTERNAL;
	}
	kbuf_release(&b);
	if (k_is(rc, K_E_NOT_FOUND))
		return api_fail(c, K_E_CUSTOM_KEY_STORE_NOT_FOUND,
				"Custom key store %s does not exist in this account and Region.",
				id);
	return rc;
}

k_status kms_cks_put(struct api_ctx *c, const char *id, json_t *doc, int64_t expect)
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL)
		return K_E_INTERNAL;
	struct storage_op op = {
		.op = STORAGE_PUT,
		.kind = KMS_CKS_KIND,
		.ns = c->ns,
		.id = id,
		.doc = kslice_cstr(text),
		.expect = expect,
	};
	k_status rc = storage_apply(kms_store(), &op, 1);
	kjson_free(text);
	return rc;
}

k_status kms_cks_aad(const char *ns, const char *id, const char *what, struct kbuf *out)
{
	return kbuf_appendf(out, "kinko/custom-key-store/v1|%s|%s|%s", what, ns, id);
}

k_status kms_cks_wrap(const char *ns, const char *id, const char *what, const char *secret,
		      struct kbuf *out)
{
	struct kbuf aad, raw;
	kbuf_init(&aad, KBUF_NOTE_MAX);
	kbuf_init(&raw, KMS_CKS_WRAPPED);
	struct ksecret *s = ksecret_from((const uint8_t *)secret, strlen(secret));
	k_status rc = s != NULL ? kms_cks_aad(ns, id, what, &aad) : K_E_INTERNAL;
	if (k_ok(rc))
		rc = keystore_wrap(kbuf_slice(&aad), s, &raw);
	if (k_ok(rc))
		rc = kbuf_append_base64(out, raw.ptr, raw.len);
	ksecret_free(s);
	kbuf_release(&aad);
	kbuf_release(&raw);
	return rc;
}

/* Logs this node in to a CONNECTED store's token with the stored PIN. */
static void resume(const char *ns, const char *id, json_t *doc)
{
	const char *cluster = json_string_value(json_object_get(doc, "CloudHsmClusterId"));
	const char *wrapped = json_string_value(json_object_get(doc, "WrappedKeyStorePassword"));
	if (cluster == NULL || wrapped == NULL)
		return;
	struct kbuf aad;
	kbuf_init(&aad, KBUF_NOTE_MAX);
	enum p11_conn_error why;
	if (k_ok(kms_cks_aad(ns, id, "KeyStorePassword", &aad)) &&
	    k_failed(keystore_p11_connect_wrapped(cluster, kbuf_slice(&aad), wrapped, &why)))
		LOG_WARN("custom key store %s: cannot log in to %s (%s)", id, cluster,
			 keystore_p11_error_name(why));
	kbuf_release(&aad);
}

static bool is_cloudhsm(json_t *doc)
{
	const char *type = json_string_value(json_object_get(doc, "CustomKeyStoreType"));
	return type != NULL && strcmp(type, "AWS_CLOUDHSM") == 0;
}

/*
 * Another node's Disconnect (or Delete) on a shared store: the change feed
 * marks the records changed, and the next use of a store or token key here
 * logs out of every token whose store is no longer CONNECTED.
 */
static atomic_bool changed;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;

static void on_change(void *arg, const struct storage_event *ev)
{
	if (ev->kind == NULL || strcmp(ev->kind, KMS_CKS_KIND) == 0)
		atomic_store(&changed, true);
}

static void watch(void)
{
	if (k_failed(storage_subscribe(kms_store(), on_change, NULL)))
		LOG_WARN("custom key stores: no change feed; a Disconnect on another node is "
			 "seen here after a restart");
}

struct wanted {
	bool up[P11_MAX_TOKENS]; /* by keystore_p11_token_id index */
};

static K_MUST_CHECK k_status wanted_cb(void *arg, const char *ns, const char *id,
				       struct kslice text, int64_t version)
{
	struct wanted *w = arg;
	json_t *doc = json_loadb((const char *)text.ptr, text.len, 0, NULL);
	const char *cluster = json_string_value(json_object_get(doc, "CloudHsmClusterId"));
	const char *st = json_string_value(json_object_get(doc, "ConnectionState"));
	for (size_t i = 0; cluster != NULL && st != NULL && i < keystore_p11_token_count(); i++)
		if (strcmp(keystore_p11_token_id(i), cluster) == 0 && strcmp(st, "CONNECTED") == 0)
			w->up[i] = true;
	json_decref(doc);
	return K_OK;
}

/* Logs out of the tokens no CONNECTED store names any more (after a change). */
static void follow_changes(void)
{
	pthread_once(&watch_once, watch);
	if (!atomic_load_explicit(&changed, memory_order_relaxed) ||
	    !atomic_exchange(&changed, false))
		return;
	struct wanted w = {0};
	if (k_failed(storage_list(kms_store(), KMS_CKS_KIND, NULL, NULL, NULL, SIZE_MAX, wanted_cb,
				  &w))) {
		atomic_store(&changed, true); /* try again on the next use */
		return;
	}
	for (size_t i = 0; i < keystore_p11_token_count(); i++) {
		const char *token = keystore_p11_token_id(i);
		if (!w.up[i] && keystore_p11_state(token, NULL) != P11_DISCONNECTED) {
			LOG_INFO("token %s: its store is no longer connected; logging out", token);
			keystore_p11_disconnect(token);
		}
	}
}

const char *kms_cks_state(const char *ns, const char *id, json_t *doc, const char **code)
{
	follow_changes();
	const char *state = json_string_value(json_object_get(doc, "ConnectionState"));
	*code = json_string_value(json_object_get(doc, "ConnectionErrorCode"));
	if (state == NULL)
		return "DISCONNECTED";
	if (strcmp(state, "CONNECTED") != 0 || !is_cloudhsm(doc))
		return state;
	const char *cluster = json_string_value(json_object_get(doc, "CloudHsmClusterId"));
	enum p11_conn_error why = P11_ERR_NONE;
	enum p11_state here = keystore_p11_state(cluster, &why);
	if (here == P11_DISCONNECTED) {
		resume(ns, id, doc);
		here = keystore_p11_state(cluster, &why);
	}
	if (here == P11_CONNECTED)
		return "CONNECTED";
	*code = keystore_p11_error_name(why != P11_ERR_NONE ? why : P11_ERR_CLUSTER_NOT_FOUND);
	return "FAILED";
}

/* ---- keys in custom key stores -------------------------------------------- */

/* The members CreateKey pairs with an Origin, before any store is read. */
static K_MUST_CHECK k_status check_origin_members(struct api_ctx *c, const char *store_id,
						  const char *origin, const char *xks_key_id)
{
	bool external = strcmp(origin, "EXTERNAL_KEY_STORE") == 0;
	if (xks_key_id != NULL && !external)
		return api_fail(c, K_E_VALIDATION,
				"XksKeyId is valid only when Origin is EXTERNAL_KEY_STORE.");
	if (store_id == NULL)
		return api_fail(c, K_E_VALIDATION,
				"CustomKeyStoreId is required when Origin is %s.", origin);
	if (external && xks_key_id == NULL)
		return api_fail(c, K_E_VALIDATION,
				"XksKeyId is required when Origin is EXTERNAL_KEY_STORE.");
	return K_OK;
}

k_status kms_cks_check_new_key(struct api_ctx *c, const char *store_id, const char *origin,
			       const char *spec, const char *usage, const char *xks_key_id)
{
	GUARD(check_origin_members(c, store_id, origin, xks_key_id));
	json_t *doc = NULL;
	int64_t version;
	GUARD(kms_cks_load(c, store_id, &doc, &version));
	k_status rc = K_OK;
	const char *code;
	bool hsm = is_cloudhsm(doc);
	const char *want = hsm ? "AWS_CLOUDHSM" : "EXTERNAL_KEY_STORE";
	if (strcmp(origin, want) != 0)
		rc = api_fail(c, K_E_UNSUPPORTED,
			      "A key in custom key store %s must have the Origin %s.", store_id,
			      want);
	else if (strcmp(spec, "SYMMETRIC_DEFAULT") != 0 || strcmp(usage, "ENCRYPT_DECRYPT") != 0)
		rc = api_fail(c, K_E_UNSUPPORTED,
			      "Custom key stores hold only SYMMETRIC_DEFAULT keys for "
			      "ENCRYPT_DECRYPT.");
	else if (!hsm)
		rc = kms_xks_check_new_key(c, store_id, doc, xks_key_id);
	else if (strcmp(kms_cks_state(c->ns, store_id, doc, &code), "CONNECTED") != 0)
		rc = api_fail(c, K_E_CKS_INVALID_STATE, "Custom key store %s is not connected.",
			      store_id);
	json_decref(doc);
	return rc;
}

static bool uuid_bytes(const char *s, uint8_t out[16])
{
	size_t j = 0;
	for (size_t i = 0; s[i] != 0 && j < 32; i++) {
		char ch = s[i];
		if (ch == '-')
			continue;
		int d = ch >= '0' && ch <= '9'	 ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
						 : -1;
		if (d < 0)
			return false;
		out[j / 2] = (uint8_t)(j % 2 == 0 ? d << 4 : out[j / 2] | d);
		j++;
	}
	return j == 32;
}

k_status kms_cks_generate(struct api_ctx *c, json_t *doc, const char *store_id, const char *arn)
{
	json_t *store = NULL;
	int64_t version;
	GUARD(kms_cks_load(c, store_id, &store, &version));
	const char *cluster = json_string_value(json_object_get(store, "CloudHsmClusterId"));
	const char *id = json_string_value(json_object_get(doc, "KeyId"));
	uint8_t uuid[16];
	struct kbuf ref;
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	k_status rc = cluster != NULL && id != NULL && uuid_bytes(id, uuid) ? K_OK : K_E_INTERNAL;
	if (k_ok(rc))
		rc = keystore_p11_generate(cluster, uuid, arn, &ref);
	if (k_is(rc, K_E_INVALID_STATE))
		rc = api_fail(c, K_E_CKS_INVALID_STATE,
			      "Custom key store %s is not connected: its token did not answer.",
			      store_id);
	if (k_ok(rc)) {
		json_object_set_new(doc, "KeyStore", json_string(P11_STORE_NAME));
		json_object_set_new(doc, "CustomKeyStoreId", json_string(store_id));
		json_object_set_new(doc, "CloudHsmClusterId", json_string(cluster));
		json_object_set_new(doc, "Materials",
				    json_pack("[{s:i, s:s, s:I}]", "Version", 1, "Wrapped",
					      kbuf_cstr(&ref), "Created", (json_int_t)c->now));
	}
	kbuf_release(&ref);
	json_decref(store);
	return rc;
}

enum kms_key_state kms_key_state_now(const struct kms_key *k)
{
	if (kms_key_is_xks(k)) /* its store's record says whether it is connected */
		return (k->state == KS_ENABLED || k->state == KS_DISABLED) &&
				       !kms_xks_key_available(k)
			       ? KS_UNAVAILABLE
			       : k->state;
	if (k->handle != NULL && strcmp(keystore_key_store(k->handle), P11_STORE_NAME) == 0)
		follow_changes();
	if ((k->state != KS_ENABLED && k->state != KS_DISABLED) ||
	    keystore_key_available(k->handle))
		return k->state;
	const char *sid = json_string_value(json_object_get(k->doc, "CustomKeyStoreId"));
	int64_t version;
	json_t *store = sid != NULL ? load_ns(k->ns, sid, &version) : NULL;
	if (store != NULL) {
		const char *code;
		(void)kms_cks_state(k->ns, sid, store, &code); /* logs in if it should be */
		json_decref(store);
	}
	return keystore_key_available(k->handle) ? k->state : KS_UNAVAILABLE;
}
