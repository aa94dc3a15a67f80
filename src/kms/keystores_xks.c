/*
 * keystores_xks.c — connecting an EXTERNAL_KEY_STORE custom key store
 * (keystores.h): GetHealthStatus through the installed XKS client
 * (kms/xks_link.h) with the store's endpoint, path and credential.
 */
#include <string.h>
#include "core/log.h"
#include "keystore/keystore.h"
#include "kms/keystores.h"
#include "kms/xks_link.h"
#include "core/banned.h"

static const struct kms_xks_link *installed;

void kms_xks_link_set(const struct kms_xks_link *link)
{
	installed = link;
}

const struct kms_xks_link *kms_xks_link(void)
{
	return installed;
}

struct ksecret *kms_cks_xks_secret(const char *ns, const char *id, json_t *doc)
{
	const char *wrapped = json_string_value(json_object_get(doc, "WrappedXksSecret"));
	if (wrapped == NULL)
		return NULL;
	struct kbuf aad, raw;
	kbuf_init(&aad, KBUF_NOTE_MAX);
	kbuf_init(&raw, KMS_CKS_WRAPPED);
	struct ksecret *s = NULL;
	if (k_ok(kms_cks_aad(ns, id, "RawSecretAccessKey", &aad)) &&
	    k_ok(kbuf_decode_base64(&raw, kslice_cstr(wrapped))) &&
	    k_failed(keystore_unwrap(kbuf_slice(&aad), kbuf_slice(&raw), &s)))
		s = NULL;
	kbuf_release(&aad);
	kbuf_release(&raw);
	return s;
}

/* The ConnectionErrorCode of a GetHealthStatus call to the store's proxy; NULL: healthy. */
static const char *health_code(struct api_ctx *c, const char *id, json_t *doc)
{
	json_t *cfg = json_object_get(doc, "XksProxyConfiguration");
	const char *connectivity = json_string_value(json_object_get(cfg, "Connectivity"));
	if (connectivity == NULL || strcmp(connectivity, "PUBLIC_ENDPOINT") != 0)
		return "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND"; /* no VPC endpoint services here */
	const struct kms_xks_link *link = installed;
	if (link == NULL || link->health == NULL)
		return "XKS_PROXY_NOT_REACHABLE";
	struct ksecret *secret = kms_cks_xks_secret(c->ns, id, doc);
	if (secret == NULL)
		return "INTERNAL_ERROR";
	struct kms_xks_proxy p = {
		.endpoint = json_string_value(json_object_get(cfg, "UriEndpoint")),
		.uri_path = json_string_value(json_object_get(cfg, "UriPath")),
		.access_key_id = json_string_value(json_object_get(cfg, "AccessKeyId")),
		.secret = secret,
		.region = c->region,
		.operation = "ConnectCustomKeyStore",
		.request_id = c->req != NULL ? c->req->request_id : "",
		.principal_arn = c->principal.arn,
	};
	char why[256] = "";
	const char *code = p.endpoint != NULL && p.uri_path != NULL && p.access_key_id != NULL
				   ? link->health(&p, why, sizeof why)
				   : "XKS_PROXY_INVALID_CONFIGURATION";
	ksecret_free(secret);
	if (code != NULL)
		LOG_WARN("custom key store %s: the XKS proxy's health check failed: %s (%s)", id,
			 code, why);
	return code;
}

k_status kms_cks_connect_xks(struct api_ctx *c, const char *id, json_t *doc, int64_t version)
{
	const char *code = health_code(c, id, doc);
	json_object_set_new(doc, "ConnectionState",
			    json_string(code == NULL ? "CONNECTED" : "FAILED"));
	if (code != NULL)
		json_object_set_new(doc, "ConnectionErrorCode", json_string(code));
	else
		json_object_del(doc, "ConnectionErrorCode");
	return kms_cks_put(c, id, doc, version);
}
