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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
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
	const char *key_arn;	      /* the KMS key (requestMetadata); NULL: none */
	long timeout_ms;	      /* the whole call; 0: the client's default */
};

/* What a failed call was, for the caller's message and log. */
struct kms_xks_failure {
	char proxy_error[48]; /* the proxy's errorName ("KeyNotFoundException"); "" if none */
	bool timed_out;	      /* no answer within the timeout */
	char why[256];	      /* one line */
};

/* GetKeyMetadata's answer, as CreateKey checks it. */
struct kms_xks_key_info {
	char key_spec[32];     /* "AES_256" */
	bool encrypt, decrypt; /* keyUsage holds ENCRYPT, DECRYPT */
	char key_status[16];   /* "ENABLED", "DISABLED" */
};

/* The proxy's layer of a ciphertext, besides the ciphertext itself. */
#define KMS_XKS_IV_MAX 16 /* 12 or 16 bytes */
#define KMS_XKS_TAG_LEN 16
#define KMS_XKS_METADATA_MAX 20 /* ciphertextMetadata */
struct kms_xks_sealed {
	uint8_t iv[KMS_XKS_IV_MAX];
	size_t iv_len;
	uint8_t tag[KMS_XKS_TAG_LEN];
	uint8_t metadata[KMS_XKS_METADATA_MAX];
	size_t metadata_len; /* 0: the proxy sent none */
};

struct kms_xks_link {
	/*
	 * GetHealthStatus: NULL when the proxy answered it, or else AWS's
	 * ConnectionErrorCode for the failure (XKS_PROXY_NOT_REACHABLE,
	 * XKS_PROXY_TIMED_OUT, INVALID_CREDENTIALS ...), with a one-line
	 * reason in why[0..why_len).
	 */
	const char *(*health)(const struct kms_xks_proxy *p, char *why, size_t why_len);
	/*
	 * The calls below return the client's status (xks/client.h's table:
	 * K_E_XKS_PROXY_URI_UNREACHABLE, K_E_XKS_KEY_NOT_FOUND ...) and fill
	 * *f on failure; the caller maps it for its operation.
	 */
	K_MUST_CHECK k_status (*key_metadata)(const struct kms_xks_proxy *p, const char *key_id,
					      struct kms_xks_key_info *out,
					      struct kms_xks_failure *f);
	/* Encrypt (AES_GCM) of pt with aad: the ciphertext appended to ct, the rest in *out. */
	K_MUST_CHECK k_status (*encrypt)(const struct kms_xks_proxy *p, const char *key_id,
					 struct kslice pt, struct kslice aad,
					 struct kms_xks_sealed *out, struct kbuf *ct,
					 struct kms_xks_failure *f);
	/* Decrypt of ct sealed as *in with aad: the plaintext appended to pt. */
	K_MUST_CHECK k_status (*decrypt)(const struct kms_xks_proxy *p, const char *key_id,
					 const struct kms_xks_sealed *in, struct kslice ct,
					 struct kslice aad, struct kbuf *pt,
					 struct kms_xks_failure *f);
};

/* Installs the client (NULL: none). Called once before serving. */
void kms_xks_link_set(const struct kms_xks_link *link);
/* The installed client, or NULL. */
const struct kms_xks_link *kms_xks_link(void);

#endif
