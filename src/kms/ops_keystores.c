/*
 * ops_keystores.c — the custom key store operations: CreateCustomKeyStore,
 * DescribeCustomKeyStores, UpdateCustomKeyStore, DeleteCustomKeyStore,
 * ConnectCustomKeyStore, DisconnectCustomKeyStore
 * (https://docs.aws.amazon.com/kms/latest/developerguide/key-store-overview.html).
 *
 * An AWS_CLOUDHSM store is a PKCS#11 token of the configuration
 * (docs/KEYSTORES.md). An EXTERNAL_KEY_STORE store's settings are checked
 * and kept; connecting one asks its proxy's GetHealthStatus through the
 * XKS client (keystores_xks.c).
 */
#include "kms/keystores_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "crypto/crypto.h"
#include "keystore/pkcs11.h"
#include "kms/store.h"
#include "core/banned.h"

static const char *const store_types[] = {"AWS_CLOUDHSM", "EXTERNAL_KEY_STORE", NULL};
static const char *const connectivities[] = {"PUBLIC_ENDPOINT", "VPC_ENDPOINT_SERVICE", NULL};

/* CloudHsmClusterId's shape: cluster-[2-7a-zA-Z]{11,16}. */
static K_MUST_CHECK k_status cluster_member(struct api_ctx *c, json_t *in, const char **out)
{
	GUARD(api_string(c, in, "CloudHsmClusterId", false, 19, 24, out));
	const char *s = *out;
	if (s != NULL && (strncmp(s, "cluster-", 8) != 0 ||
			  s[8 + strspn(s + 8, "234567abcdefghijklmnopqrstuvwxyz"
					      "ABCDEFGHIJKLMNOPQRSTUVWXYZ")] != 0))
		return api_fail(c, K_E_VALIDATION,
				"CloudHsmClusterId must match cluster-[2-7a-zA-Z]{11,16}.");
	return K_OK;
}

/* The proxy members of a request (all optional here; cks_check_xks decides). */
static K_MUST_CHECK k_status xks_members(struct api_ctx *c, json_t *in, struct cks_xks *x,
					 bool *any)
{
	GUARD(api_string(c, in, "XksProxyUriEndpoint", false, 10, 128, &x->endpoint));
	GUARD(api_string(c, in, "XksProxyUriPath", false, 10, 128, &x->path));
	GUARD(api_string(c, in, "XksProxyVpcEndpointServiceName", false, 20, 64, &x->vpc_service));
	GUARD(api_enum(c, in, "XksProxyConnectivity", false, connectivities, &x->connectivity));
	json_t *cred = json_object_get(in, "XksProxyAuthenticationCredential");
	if (cred != NULL && !json_is_object(cred))
		return api_fail(
			c, K_E_SERIALIZATION,
			"Unexpected value type for member 'XksProxyAuthenticationCredential'");
	if (cred != NULL) {
		GUARD(api_string(c, cred, "AccessKeyId", true, 1, 128, &x->access_key_id));
		GUARD(api_string(c, cred, "RawSecretAccessKey", true, 1, 128, &x->secret));
	}
	const char *owner = NULL;
	GUARD(api_string(c, in, "XksProxyVpcEndpointServiceOwner", false, 12, 12, &owner));
	*any = x->endpoint || x->path || x->vpc_service || x->connectivity || cred || owner;
	return K_OK;
}

static void new_store_id(char out[KMS_CKS_ID_LEN + 1])
{
	uint8_t r[9];
	if (k_failed(crypto_nonce(r, sizeof r)))
		memset(r, 0, sizeof r);
	char hex[19];
	for (size_t i = 0; i < sizeof r; i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	snprintf(out, KMS_CKS_ID_LEN + 1, "cks-%.17s", hex);
}

/* The proxy settings as the record keeps them (the secret wrapped apart). */
static json_t *xks_config(const struct cks_xks *x)
{
	json_t *j =
		json_pack("{s:s, s:s, s:s, s:s}", "Connectivity", x->connectivity, "AccessKeyId",
			  x->access_key_id, "UriEndpoint", x->endpoint, "UriPath", x->path);
	if (j != NULL && x->vpc_service != NULL)
		json_object_set_new(j, "VpcEndpointServiceName", json_string(x->vpc_service));
	return j;
}

/* An AWS_CLOUDHSM store's checks: a configured token, its trust anchor. */
static K_MUST_CHECK k_status check_cloudhsm(struct api_ctx *c, const char *cluster,
					    const char *anchor, const char *password)
{
	if (cluster == NULL || anchor == NULL || password == NULL)
		return api_fail(c, K_E_VALIDATION,
				"An AWS_CLOUDHSM key store needs CloudHsmClusterId, "
				"TrustAnchorCertificate and KeyStorePassword.");
	if (!keystore_p11_token_known(cluster))
		return api_fail(c, K_E_CLUSTER_NOT_FOUND,
				"No token with the id %s is configured on this server.", cluster);
	if (k_failed(keystore_p11_trust_anchor_matches(cluster, anchor)))
		return api_fail(c, K_E_INCORRECT_TRUST_ANCHOR,
				"The trust anchor certificate is not the one of %s.", cluster);
	return K_OK;
}

struct create_req {
	const char *name, *type, *cluster, *anchor, *password;
	struct cks_xks x;
	bool any_xks;
};

static K_MUST_CHECK k_status create_members(struct api_ctx *c, json_t *in, struct create_req *r)
{
	GUARD(api_string(c, in, "CustomKeyStoreName", true, 1, 256, &r->name));
	GUARD(api_enum(c, in, "CustomKeyStoreType", false, store_types, &r->type));
	GUARD(cluster_member(c, in, &r->cluster));
	GUARD(api_string(c, in, "TrustAnchorCertificate", false, 1, 5000, &r->anchor));
	GUARD(api_string(c, in, "KeyStorePassword", false, 7, 32, &r->password));
	GUARD(xks_members(c, in, &r->x, &r->any_xks));
	if (r->type == NULL)
		r->type = "AWS_CLOUDHSM";
	bool hsm = strcmp(r->type, "AWS_CLOUDHSM") == 0;
	if (hsm && r->any_xks)
		return api_fail(c, K_E_VALIDATION,
				"The XksProxy parameters apply only to EXTERNAL_KEY_STORE key "
				"stores.");
	if (!hsm && (r->cluster || r->anchor || r->password))
		return api_fail(c, K_E_VALIDATION,
				"CloudHsmClusterId, TrustAnchorCertificate and KeyStorePassword "
				"apply only to AWS_CLOUDHSM key stores.");
	if (hsm)
		return check_cloudhsm(c, r->cluster, r->anchor, r->password);
	return cks_check_xks(c, &r->x);
}

/* CreateCustomKeyStore: a new store, DISCONNECTED. */
k_status kms_op_create_custom_key_store(struct api_ctx *c, json_t *in, json_t *out)
{
	struct create_req r = {0};
	GUARD(create_members(c, in, &r));
	bool hsm = strcmp(r.type, "AWS_CLOUDHSM") == 0;
	GUARD(cks_check_unique(c, NULL, r.name, hsm ? r.cluster : NULL, hsm ? NULL : &r.x));
	char id[KMS_CKS_ID_LEN + 1];
	new_store_id(id);
	json_t *doc =
		json_pack("{s:s, s:s, s:s, s:o, s:s}", "CustomKeyStoreId", id, "CustomKeyStoreName",
			  r.name, "CustomKeyStoreType", r.type, "CreationDate",
			  kjson_date(api_now_ms(c)), "ConnectionState", "DISCONNECTED");
	if (doc == NULL)
		return K_E_INTERNAL;
	struct kbuf wrapped;
	kbuf_init(&wrapped, KMS_CKS_WRAPPED);
	k_status rc = kms_cks_wrap(c->ns, id, hsm ? "KeyStorePassword" : "RawSecretAccessKey",
				   hsm ? r.password : r.x.secret, &wrapped);
	if (k_ok(rc) && hsm) {
		json_object_set_new(doc, "CloudHsmClusterId", json_string(r.cluster));
		json_object_set_new(doc, "TrustAnchorCertificate", json_string(r.anchor));
		json_object_set_new(doc, "WrappedKeyStorePassword",
				    json_string(kbuf_cstr(&wrapped)));
	} else if (k_ok(rc)) {
		json_object_set_new(doc, "XksProxyConfiguration", xks_config(&r.x));
		json_object_set_new(doc, "WrappedXksSecret", json_string(kbuf_cstr(&wrapped)));
	}
	if (k_ok(rc))
		rc = kms_cks_put(c, id, doc, STORAGE_ABSENT);
	kbuf_release(&wrapped);
	json_decref(doc);
	GUARD(rc);
	json_object_set_new(out, "CustomKeyStoreId", json_string(id));
	return K_OK;
}

/* ---- DescribeCustomKeyStores ------------------------------------------------- */

/* One CustomKeyStoresListEntry: the record's public members and its state now. */
static json_t *list_entry(const char *ns, json_t *doc)
{
	static const char *const members[] = {"CustomKeyStoreId",	"CustomKeyStoreName",
					      "CustomKeyStoreType",	"CloudHsmClusterId",
					      "TrustAnchorCertificate", "CreationDate",
					      "XksProxyConfiguration",	NULL};
	json_t *e = json_object();
	if (e == NULL)
		return NULL;
	for (size_t i = 0; members[i] != NULL; i++) {
		json_t *v = json_object_get(doc, members[i]);
		if (v != NULL)
			json_object_set(e, members[i], v);
	}
	const char *code = NULL;
	const char *id = json_string_value(json_object_get(doc, "CustomKeyStoreId"));
	const char *state = kms_cks_state(ns, id ? id : "", doc, &code);
	json_object_set_new(e, "ConnectionState", json_string(state));
	if (code != NULL && strcmp(state, "FAILED") == 0)
		json_object_set_new(e, "ConnectionErrorCode", json_string(code));
	return e;
}

struct describe {
	const char *ns, *name;
	json_t *list;
	size_t limit;
	bool more;
	char last[KMS_CKS_ID_LEN + 1];
};

static K_MUST_CHECK k_status describe_cb(void *arg, const char *ns, const char *id,
					 struct kslice text, int64_t version)
{
	struct describe *d = arg;
	json_t *doc = json_loadb((const char *)text.ptr, text.len, 0, NULL);
	if (doc == NULL)
		return K_E_INTERNAL;
	const char *name = json_string_value(json_object_get(doc, "CustomKeyStoreName"));
	k_status rc = K_OK;
	if (d->name == NULL || (name != NULL && strcmp(name, d->name) == 0)) {
		if (json_array_size(d->list) == d->limit) {
			d->more = true;
			rc = K_E_LIMIT_EXCEEDED; /* stop; not an error for the caller */
		} else {
			json_array_append_new(d->list, list_entry(d->ns, doc));
			snprintf(d->last, sizeof d->last, "%s", id);
		}
	}
	json_decref(doc);
	return rc;
}

static bool marker_ok(const char *m)
{
	return strlen(m) == KMS_CKS_ID_LEN && strncmp(m, "cks-", 4) == 0 &&
	       m[4 + strspn(m + 4, "0123456789abcdef")] == 0;
}

/* DescribeCustomKeyStores: one store by id or name, or a page of them all. */
k_status kms_op_describe_custom_key_stores(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *id, *name, *marker;
	int64_t limit = 100;
	bool has_limit;
	GUARD(api_string(c, in, "CustomKeyStoreId", false, 1, 64, &id));
	GUARD(api_string(c, in, "CustomKeyStoreName", false, 1, 256, &name));
	GUARD(api_int(c, in, "Limit", false, 1, 1000, &has_limit, &limit));
	GUARD(api_string(c, in, "Marker", false, 1, 1024, &marker));
	if (id != NULL && name != NULL)
		return api_fail(c, K_E_VALIDATION,
				"Specify CustomKeyStoreId or CustomKeyStoreName, not both.");
	if (marker != NULL && !marker_ok(marker))
		return api_fail(c, K_E_INVALID_MARKER, "Invalid marker");
	struct describe d = {.ns = c->ns, .name = name, .limit = (size_t)limit};
	d.list = json_array();
	if (d.list == NULL)
		return K_E_INTERNAL;
	if (id != NULL) {
		json_t *doc = NULL;
		int64_t version;
		k_status rc = kms_cks_load(c, id, &doc, &version);
		if (k_failed(rc)) {
			json_decref(d.list);
			return rc;
		}
		json_array_append_new(d.list, list_entry(c->ns, doc));
		json_decref(doc);
	} else {
		k_status rc = storage_list(kms_store(), KMS_CKS_KIND, c->ns, NULL, marker, SIZE_MAX,
					   describe_cb, &d);
		if (k_failed(rc) && !k_is(rc, K_E_LIMIT_EXCEEDED)) {
			json_decref(d.list);
			return rc;
		}
	}
	if (name != NULL && json_array_size(d.list) == 0) {
		json_decref(d.list);
		return api_fail(c, K_E_CUSTOM_KEY_STORE_NOT_FOUND,
				"Custom key store %s does not exist in this account and Region.",
				name);
	}
	json_object_set_new(out, "CustomKeyStores", d.list);
	json_object_set_new(out, "Truncated", json_boolean(d.more));
	if (d.more)
		json_object_set_new(out, "NextMarker", json_string(d.last));
	return K_OK;
}

/* ---- UpdateCustomKeyStore ------------------------------------------------------ */

struct update_req {
	const char *id, *name, *cluster, *password;
	struct cks_xks x;
	bool any_xks;
};

/* The XKS members a request changes, over the record's. */
static void merge_xks(json_t *doc, struct cks_xks *x)
{
	json_t *cfg = json_object_get(doc, "XksProxyConfiguration");
	if (x->endpoint == NULL)
		x->endpoint = json_string_value(json_object_get(cfg, "UriEndpoint"));
	if (x->path == NULL)
		x->path = json_string_value(json_object_get(cfg, "UriPath"));
	if (x->connectivity == NULL)
		x->connectivity = json_string_value(json_object_get(cfg, "Connectivity"));
	if (x->vpc_service == NULL && strcmp(x->connectivity, "VPC_ENDPOINT_SERVICE") == 0)
		x->vpc_service = json_string_value(json_object_get(cfg, "VpcEndpointServiceName"));
	if (x->access_key_id == NULL) {
		x->access_key_id = json_string_value(json_object_get(cfg, "AccessKeyId"));
		x->secret_kept = true; /* the stored one, checked when it was set */
	}
}

/* What an update changes in an AWS_CLOUDHSM store's record. */
static K_MUST_CHECK k_status update_cloudhsm(struct api_ctx *c, json_t *doc,
					     const struct update_req *r)
{
	const char *cur = json_string_value(json_object_get(doc, "CloudHsmClusterId"));
	if (r->any_xks)
		return api_fail(c, K_E_VALIDATION,
				"The XksProxy parameters apply only to EXTERNAL_KEY_STORE key "
				"stores.");
	if (r->cluster != NULL && !keystore_p11_token_known(r->cluster))
		return api_fail(c, K_E_CLUSTER_NOT_FOUND,
				"No token with the id %s is configured on this server.",
				r->cluster);
	if (r->cluster != NULL && (cur == NULL || strcmp(cur, r->cluster) != 0))
		return api_fail(c, K_E_CLUSTER_NOT_RELATED,
				"%s is another token than %s: it does not hold this store's keys.",
				r->cluster, cur ? cur : "");
	if (r->password == NULL)
		return K_OK;
	struct kbuf wrapped;
	kbuf_init(&wrapped, KMS_CKS_WRAPPED);
	k_status rc = kms_cks_wrap(c->ns, r->id, "KeyStorePassword", r->password, &wrapped);
	if (k_ok(rc))
		json_object_set_new(doc, "WrappedKeyStorePassword",
				    json_string(kbuf_cstr(&wrapped)));
	kbuf_release(&wrapped);
	return rc;
}

/* What an update changes in an external key store's record. */
static K_MUST_CHECK k_status update_xks(struct api_ctx *c, json_t *doc, struct update_req *r)
{
	if (r->cluster != NULL || r->password != NULL)
		return api_fail(c, K_E_VALIDATION,
				"CloudHsmClusterId and KeyStorePassword apply only to AWS_CLOUDHSM "
				"key stores.");
	if (!r->any_xks)
		return K_OK;
	bool new_secret = r->x.secret != NULL;
	merge_xks(doc, &r->x);
	GUARD(cks_check_xks(c, &r->x));
	GUARD(cks_check_unique(c, r->id, NULL, NULL, &r->x));
	json_object_set_new(doc, "XksProxyConfiguration", xks_config(&r->x));
	if (!new_secret)
		return K_OK;
	struct kbuf wrapped;
	kbuf_init(&wrapped, KMS_CKS_WRAPPED);
	k_status rc = kms_cks_wrap(c->ns, r->id, "RawSecretAccessKey", r->x.secret, &wrapped);
	if (k_ok(rc))
		json_object_set_new(doc, "WrappedXksSecret", json_string(kbuf_cstr(&wrapped)));
	kbuf_release(&wrapped);
	return rc;
}

static K_MUST_CHECK k_status update_members(struct api_ctx *c, json_t *in, struct update_req *r)
{
	GUARD(api_string(c, in, "CustomKeyStoreId", true, 1, 64, &r->id));
	GUARD(api_string(c, in, "NewCustomKeyStoreName", false, 1, 256, &r->name));
	GUARD(api_string(c, in, "KeyStorePassword", false, 7, 32, &r->password));
	GUARD(cluster_member(c, in, &r->cluster));
	return xks_members(c, in, &r->x, &r->any_xks);
}

/*
 * UpdateCustomKeyStore: a new name at any time while CONNECTED or
 * DISCONNECTED; every other change only while DISCONNECTED.
 */
k_status kms_op_update_custom_key_store(struct api_ctx *c, json_t *in, json_t *out)
{
	struct update_req r = {0};
	GUARD(update_members(c, in, &r));
	json_t *doc = NULL;
	int64_t version;
	GUARD(kms_cks_load(c, r.id, &doc, &version));
	const char *code;
	const char *state = kms_cks_state(c->ns, r.id, doc, &code);
	bool name_only = !r.any_xks && r.cluster == NULL && r.password == NULL;
	k_status rc = K_OK;
	if (strcmp(state, "DISCONNECTED") != 0 && !(name_only && strcmp(state, "CONNECTED") == 0))
		rc = api_fail(c, K_E_CKS_INVALID_STATE,
			      "Custom key store %s is %s; disconnect it first.", r.id, state);
	const char *type = json_string_value(json_object_get(doc, "CustomKeyStoreType"));
	bool hsm = type != NULL && strcmp(type, "AWS_CLOUDHSM") == 0;
	if (k_ok(rc) && r.name != NULL)
		rc = cks_check_unique(c, r.id, r.name, NULL, NULL);
	if (k_ok(rc))
		rc = hsm ? update_cloudhsm(c, doc, &r) : update_xks(c, doc, &r);
	if (k_ok(rc) && r.name != NULL)
		json_object_set_new(doc, "CustomKeyStoreName", json_string(r.name));
	if (k_ok(rc))
		rc = kms_cks_put(c, r.id, doc, version);
	json_decref(doc);
	return rc;
}

/* ---- DeleteCustomKeyStore, ConnectCustomKeyStore, DisconnectCustomKeyStore --- */

/* DeleteCustomKeyStore: only a DISCONNECTED store that holds no keys. */
k_status kms_op_delete_custom_key_store(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *id;
	GUARD(api_string(c, in, "CustomKeyStoreId", true, 1, 64, &id));
	json_t *doc = NULL;
	int64_t version;
	GUARD(kms_cks_load(c, id, &doc, &version));
	const char *code;
	const char *state = kms_cks_state(c->ns, id, doc, &code);
	k_status rc = K_OK;
	size_t keys = 0;
	if (strcmp(state, "DISCONNECTED") != 0)
		rc = api_fail(c, K_E_CKS_INVALID_STATE,
			      "Custom key store %s is %s; disconnect it first.", id, state);
	if (k_ok(rc))
		rc = cks_count_keys(c, id, &keys);
	if (k_ok(rc) && keys > 0)
		rc = api_fail(c, K_E_CKS_HAS_CMKS,
			      "Custom key store %s still holds %zu KMS keys; delete them first.",
			      id, keys);
	json_decref(doc);
	GUARD(rc);
	struct storage_op op = {
		.op = STORAGE_DEL, .kind = KMS_CKS_KIND, .ns = c->ns, .id = id, .expect = version};
	return storage_apply(kms_store(), &op, 1);
}

/* Sets the record's state (and error code, or none) and writes it. */
static K_MUST_CHECK k_status set_state(struct api_ctx *c, const char *id, json_t *doc,
				       int64_t version, const char *state, const char *code)
{
	json_object_set_new(doc, "ConnectionState", json_string(state));
	if (code != NULL)
		json_object_set_new(doc, "ConnectionErrorCode", json_string(code));
	else
		json_object_del(doc, "ConnectionErrorCode");
	return kms_cks_put(c, id, doc, version);
}

/* Logs in to the store's token with the stored PIN; FAILED with AWS's code if it cannot. */
static K_MUST_CHECK k_status connect_cloudhsm(struct api_ctx *c, const char *id, json_t *doc,
					      int64_t version)
{
	const char *cluster = json_string_value(json_object_get(doc, "CloudHsmClusterId"));
	const char *wrapped = json_string_value(json_object_get(doc, "WrappedKeyStorePassword"));
	struct kbuf aad;
	kbuf_init(&aad, KBUF_NOTE_MAX);
	enum p11_conn_error why = P11_ERR_CLUSTER_NOT_FOUND;
	k_status rc = kms_cks_aad(c->ns, id, "KeyStorePassword", &aad);
	bool ok = k_ok(rc) && cluster != NULL && wrapped != NULL &&
		  k_ok(keystore_p11_connect_wrapped(cluster, kbuf_slice(&aad), wrapped, &why));
	kbuf_release(&aad);
	GUARD(rc);
	if (!ok)
		LOG_WARN("custom key store %s: connecting %s failed (%s)", id,
			 cluster ? cluster : "", keystore_p11_error_name(why));
	return set_state(c, id, doc, version, ok ? "CONNECTED" : "FAILED",
			 ok ? NULL : keystore_p11_error_name(why));
}

/*
 * ConnectCustomKeyStore: valid unless the store is DISCONNECTING or
 * FAILED (a FAILED store is disconnected first). The call succeeds even
 * when the connection does not: the store is then FAILED with its
 * ConnectionErrorCode, as in AWS.
 */
k_status kms_op_connect_custom_key_store(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *id;
	GUARD(api_string(c, in, "CustomKeyStoreId", true, 1, 64, &id));
	json_t *doc = NULL;
	int64_t version;
	GUARD(kms_cks_load(c, id, &doc, &version));
	const char *code;
	const char *state = kms_cks_state(c->ns, id, doc, &code);
	const char *type = json_string_value(json_object_get(doc, "CustomKeyStoreType"));
	k_status rc = K_OK;
	if (strcmp(state, "FAILED") == 0 || strcmp(state, "DISCONNECTING") == 0)
		rc = api_fail(c, K_E_CKS_INVALID_STATE,
			      "Custom key store %s is %s; disconnect it, then connect it.", id,
			      state);
	else if (strcmp(state, "CONNECTED") == 0)
		rc = K_OK;
	else if (type != NULL && strcmp(type, "AWS_CLOUDHSM") == 0)
		rc = connect_cloudhsm(c, id, doc, version);
	else
		rc = kms_cks_connect_xks(c, id, doc, version);
	json_decref(doc);
	return rc;
}

/* DisconnectCustomKeyStore: valid unless DISCONNECTED (or DISCONNECTING). */
k_status kms_op_disconnect_custom_key_store(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *id;
	GUARD(api_string(c, in, "CustomKeyStoreId", true, 1, 64, &id));
	json_t *doc = NULL;
	int64_t version;
	GUARD(kms_cks_load(c, id, &doc, &version));
	const char *code;
	const char *state = kms_cks_state(c->ns, id, doc, &code);
	k_status rc = K_OK;
	if (strcmp(state, "DISCONNECTED") == 0 || strcmp(state, "DISCONNECTING") == 0) {
		rc = api_fail(c, K_E_CKS_INVALID_STATE, "Custom key store %s is %s.", id, state);
	} else {
		const char *cluster = json_string_value(json_object_get(doc, "CloudHsmClusterId"));
		if (cluster != NULL)
			keystore_p11_disconnect(cluster);
		rc = set_state(c, id, doc, version, "DISCONNECTED", NULL);
	}
	json_decref(doc);
	return rc;
}
