/*
 * kms_link.c — kms's XKS client (xks/kms_link.h): GetHealthStatus for
 * ConnectCustomKeyStore, its failures as AWS's ConnectionErrorCode.
 */
#include "xks/kms_link.h"

#include <stdio.h>
#include "xks/client.h"
#include "core/banned.h"

static const char *link_ca_file;

const char *xks_connection_error_code(k_status st, const struct xks_client_error *err)
{
	switch (k_code(st)) {
	case KC_OK:
		return NULL;
	case KC_E_XKS_PROXY_URI_UNREACHABLE:
		if (err->has_proxy_error)
			return "XKS_PROXY_TIMED_OUT"; /* ThrottlingException, DependencyTimeoutException */
		if (err->transport == XKS_TRANSPORT_TIMED_OUT)
			return "XKS_PROXY_TIMED_OUT";
		if (err->transport == XKS_TRANSPORT_TLS)
			return "XKS_PROXY_INVALID_TLS_CONFIGURATION";
		return "XKS_PROXY_NOT_REACHABLE";
	case KC_E_XKS_PROXY_INCORRECT_AUTH:
		return "INVALID_CREDENTIALS";
	case KC_E_XKS_PROXY_INVALID_CONFIGURATION:
		return "XKS_PROXY_INVALID_CONFIGURATION";
	case KC_E_INVALID_STATE: /* AccessDeniedException (InvalidCiphertext has no place here) */
		return err->has_proxy_error && err->proxy_error == XKS_E_ACCESS_DENIED
			       ? "XKS_PROXY_ACCESS_DENIED"
			       : "XKS_PROXY_INVALID_RESPONSE";
	default:
		return "XKS_PROXY_INVALID_RESPONSE";
	}
}

static const char *health(const struct kms_xks_proxy *p, char *why, size_t why_len)
{
	struct xks_client_options o = {
		.endpoint = p->endpoint,
		.uri_path = p->uri_path,
		.access_key_id = p->access_key_id,
		.secret = p->secret,
		.region = p->region,
		.ca_file = link_ca_file != NULL && link_ca_file[0] != 0 ? link_ca_file : NULL,
	};
	struct xks_request_metadata md = {
		.kms_operation = p->operation,
		.kms_request_id = p->request_id,
		.aws_principal_arn = p->principal_arn,
	};
	struct xks_health h;
	struct xks_client_error err;
	k_status st = xks_client_health(&o, &md, &h, &err);
	const char *code = xks_connection_error_code(st, &err);
	if (code != NULL && why_len > 0)
		snprintf(why, why_len, "%s", err.message);
	return code;
}

static const struct kms_xks_link link = {.health = health};

const struct kms_xks_link *xks_kms_link(const char *ca_file)
{
	link_ca_file = ca_file;
	return &link;
}
