/*
 * xks_link.h — what kms asks of an XKS proxy client for its
 * EXTERNAL_KEY_STORE custom key stores.
 *
 * The client lives in xks/ (xks/client.h), which uses kms, so kms never
 * includes it: cli installs xks's implementation (xks/kms_link.h) with
 * kms_xks_link_set before serving, as it registers the operation tables.
 * Without one, every proxy is XKS_PROXY_NOT_REACHABLE.
 */
#ifndef KINKO_KMS_XKS_LINK_H
#define KINKO_KMS_XKS_LINK_H

#include <stddef.h>
#include "core/secret.h"

/* A store's proxy and the request on whose behalf it is called. */
struct kms_xks_proxy {
	const char *endpoint;	      /* XksProxyUriEndpoint */
	const char *uri_path;	      /* XksProxyUriPath */
	const char *access_key_id;    /* the credential's AccessKeyId */
	const struct ksecret *secret; /* the credential's RawSecretAccessKey */
	const char *region;	      /* the credential scope's region: the store's */
	const char *operation;	      /* the KMS operation (requestMetadata) */
	const char *request_id;	      /* the KMS request id (requestMetadata) */
	const char *principal_arn;    /* the caller (requestMetadata) */
};

struct kms_xks_link {
	/*
	 * GetHealthStatus: NULL when the proxy answered it, or else AWS's
	 * ConnectionErrorCode for the failure (XKS_PROXY_NOT_REACHABLE,
	 * XKS_PROXY_TIMED_OUT, INVALID_CREDENTIALS ...), with a one-line
	 * reason in why[0..why_len).
	 */
	const char *(*health)(const struct kms_xks_proxy *p, char *why, size_t why_len);
};

/* Installs the client (NULL: none). Called once before serving. */
void kms_xks_link_set(const struct kms_xks_link *link);
/* The installed client, or NULL. */
const struct kms_xks_link *kms_xks_link(void);

#endif
