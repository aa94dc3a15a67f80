/*
 * keystores_check.c — what CreateCustomKeyStore and UpdateCustomKeyStore
 * check before they write: the external key store proxy's settings (the
 * service model's shapes), and the names, tokens and proxy addresses no
 * two custom key stores may share.
 */
#include "kms/keystores_internal.h"

#include <stdio.h>
#include <string.h>

#include "keystore/pkcs11.h"
#include "kms/store.h"
#include "core/banned.h"

static bool all_of(const char *s, const char *set)
{
	return s[strspn(s, set)] == 0;
}

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/* ^(/[a-zA-Z0-9/_-]+/kms/xks/v\d{1,2})$|^(/kms/xks/v\d{1,2})$ */
static bool path_ok(const char *p)
{
	const char *v = strstr(p, "/kms/xks/v");
	if (v == NULL)
		return false;
	const char *tail = strrchr(p, 'v');
	size_t digits = strlen(tail + 1);
	if (tail != v + 9 || digits < 1 || digits > 2 || !all_of(tail + 1, "0123456789"))
		return false;
	if (v == p)
		return true;
	if (p[0] != '/' || v == p + 1)
		return false;
	for (const char *q = p + 1; q < v; q++)
		if (strchr(ALNUM "/_-", *q) == NULL)
			return false;
	return true;
}

/* ^(com|eu)\.amazonaws\.vpce\.([a-z]+-){2,3}\d+\.vpce-svc-[0-9a-z]+$ */
static bool vpc_service_ok(const char *s)
{
	const char *r = NULL;
	if (strncmp(s, "com.amazonaws.vpce.", 19) == 0)
		r = s + 19;
	else if (strncmp(s, "eu.amazonaws.vpce.", 18) == 0)
		r = s + 18;
	if (r == NULL)
		return false;
	int parts = 0;
	while (*r >= 'a' && *r <= 'z') {
		size_t n = strspn(r, "abcdefghijklmnopqrstuvwxyz");
		if (r[n] != '-')
			return false;
		r += n + 1;
		parts++;
	}
	size_t d = strspn(r, "0123456789");
	if (parts < 2 || parts > 3 || d == 0 || strncmp(r + d, ".vpce-svc-", 10) != 0)
		return false;
	r += d + 10;
	return *r != 0 && all_of(r, "0123456789abcdefghijklmnopqrstuvwxyz");
}

k_status cks_check_xks(struct api_ctx *c, const struct cks_xks *x)
{
	if (x->endpoint == NULL || x->path == NULL || x->access_key_id == NULL ||
	    (x->secret == NULL && !x->secret_kept) || x->connectivity == NULL)
		return api_fail(c, K_E_VALIDATION,
				"An external key store needs XksProxyUriEndpoint, XksProxyUriPath, "
				"XksProxyAuthenticationCredential and XksProxyConnectivity.");
	if (strncmp(x->endpoint, "https://", 8) != 0 || x->endpoint[8] == 0 ||
	    !all_of(x->endpoint + 8, ALNUM ".-"))
		return api_fail(c, K_E_VALIDATION,
				"XksProxyUriEndpoint must be https:// followed by a host name.");
	if (!path_ok(x->path))
		return api_fail(c, K_E_VALIDATION,
				"XksProxyUriPath must be /kms/xks/v1 or /PREFIX/kms/xks/v1.");
	size_t ak = strlen(x->access_key_id), sk = x->secret != NULL ? strlen(x->secret) : 43;
	if (ak < 20 || ak > 30 || !all_of(x->access_key_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") ||
	    sk < 43 || sk > 64 || (x->secret != NULL && !all_of(x->secret, ALNUM "/+=")))
		return api_fail(c, K_E_XKS_PROXY_INCORRECT_AUTH,
				"XksProxyAuthenticationCredential: AccessKeyId must be 20 to 30 "
				"characters of A-Z and 2-7, RawSecretAccessKey 43 to 64 characters "
				"of a-z, A-Z, 0-9, /, + and =.");
	bool vpc = strcmp(x->connectivity, "VPC_ENDPOINT_SERVICE") == 0;
	if (vpc && x->vpc_service == NULL)
		return api_fail(c, K_E_VALIDATION,
				"XksProxyVpcEndpointServiceName is required when "
				"XksProxyConnectivity is VPC_ENDPOINT_SERVICE.");
	if (!vpc && x->vpc_service != NULL)
		return api_fail(c, K_E_XKS_PROXY_INVALID_CONFIGURATION,
				"XksProxyVpcEndpointServiceName is not allowed when "
				"XksProxyConnectivity is PUBLIC_ENDPOINT.");
	if (vpc && !vpc_service_ok(x->vpc_service))
		return api_fail(
			c, K_E_VALIDATION,
			"XksProxyVpcEndpointServiceName is not a VPC endpoint service name.");
	return K_OK;
}

/* ---- what two stores may not share ------------------------------------------ */

struct scan {
	struct api_ctx *c;
	const char *self; /* the store being updated, or NULL */
	const char *name;
	const char *cluster;
	const struct cks_xks *xks;
	k_status found;
	size_t count;
};

static const char *xks_member(json_t *doc, const char *m)
{
	return json_string_value(json_object_get(json_object_get(doc, "XksProxyConfiguration"), m));
}

static bool same(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* The conflict of a store of the caller's namespace with the candidate. */
static k_status conflict_with(struct scan *s, json_t *doc)
{
	const char *name = json_string_value(json_object_get(doc, "CustomKeyStoreName"));
	if (s->name != NULL && same(name, s->name))
		return api_fail(s->c, K_E_CKS_NAME_IN_USE,
				"A custom key store named %s already exists in this account and "
				"Region.",
				s->name);
	const struct cks_xks *x = s->xks;
	if (x == NULL || !same(json_string_value(json_object_get(doc, "CustomKeyStoreType")),
			       "EXTERNAL_KEY_STORE"))
		return K_OK;
	bool vpc = same(x->connectivity, "VPC_ENDPOINT_SERVICE");
	if (same(xks_member(doc, "UriEndpoint"), x->endpoint) &&
	    same(xks_member(doc, "UriPath"), x->path))
		return api_fail(s->c, K_E_XKS_URI_IN_USE,
				"%s%s is the proxy of another external key store.", x->endpoint,
				x->path);
	if (vpc && same(xks_member(doc, "UriEndpoint"), x->endpoint))
		return api_fail(s->c, K_E_XKS_URI_ENDPOINT_IN_USE,
				"%s is the endpoint of another external key store.", x->endpoint);
	if (vpc && same(xks_member(doc, "VpcEndpointServiceName"), x->vpc_service))
		return api_fail(s->c, K_E_XKS_VPC_IN_USE,
				"%s is the VPC endpoint service of another external key store.",
				x->vpc_service);
	return K_OK;
}

static K_MUST_CHECK k_status scan_cb(void *arg, const char *ns, const char *id, struct kslice text,
				     int64_t version)
{
	struct scan *s = arg;
	if (s->self != NULL && strcmp(id, s->self) == 0 && strcmp(ns, s->c->ns) == 0)
		return K_OK;
	json_t *doc = json_loadb((const char *)text.ptr, text.len, 0, NULL);
	if (doc == NULL)
		return K_E_INTERNAL;
	k_status rc = K_OK;
	if (strcmp(ns, s->c->ns) == 0) {
		s->count++;
		rc = conflict_with(s, doc);
	}
	if (k_ok(rc) && s->cluster != NULL &&
	    same(json_string_value(json_object_get(doc, "CloudHsmClusterId")), s->cluster))
		rc = api_fail(s->c, K_E_CLUSTER_IN_USE,
			      "%s is already associated with a custom key store.", s->cluster);
	json_decref(doc);
	if (k_failed(rc))
		s->found = rc;
	return rc;
}

k_status cks_check_unique(struct api_ctx *c, const char *self, const char *name,
			  const char *cluster, const struct cks_xks *xks)
{
	struct scan s = {.c = c, .self = self, .name = name, .cluster = cluster, .xks = xks};
	/* every namespace when a token is named: a token serves one store */
	k_status rc = storage_list(kms_store(), KMS_CKS_KIND, cluster != NULL ? NULL : c->ns, NULL,
				   NULL, SIZE_MAX, scan_cb, &s);
	if (k_failed(s.found))
		return s.found;
	GUARD(rc);
	if (self == NULL && s.count >= KMS_CKS_MAX)
		return api_fail(c, K_E_LIMIT_EXCEEDED,
				"This account and Region already have %d custom key stores.",
				KMS_CKS_MAX);
	return K_OK;
}

/* ---- keys of a store ---------------------------------------------------------- */

struct key_scan {
	const char *store;
	size_t n;
};

static K_MUST_CHECK k_status key_cb(void *arg, const char *ns, const char *id, struct kslice text,
				    int64_t version)
{
	struct key_scan *k = arg;
	json_t *doc = json_loadb((const char *)text.ptr, text.len, 0, NULL);
	if (same(json_string_value(json_object_get(doc, "CustomKeyStoreId")), k->store))
		k->n++;
	json_decref(doc);
	return K_OK;
}

k_status cks_count_keys(struct api_ctx *c, const char *store, size_t *n)
{
	struct key_scan k = {.store = store};
	GUARD(storage_list(kms_store(), "key", c->ns, NULL, NULL, SIZE_MAX, key_cb, &k));
	*n = k.n;
	return K_OK;
}
