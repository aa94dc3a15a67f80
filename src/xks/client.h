/*
 * client.h — an XKS proxy client: kinko calling an external key store
 * proxy (the XKS proxy API v1, xks/wire.h), as AWS KMS does for keys in
 * an EXTERNAL_KEY_STORE custom key store.
 *
 * Each call is one HTTPS POST through libcurl, on the calling thread:
 *   - TLS verified (the system's CAs, or ca_file for a private CA); plain
 *     http:// endpoints are refused unless allow_http (tests only);
 *   - signed with SigV4 (auth/sigv4.h's canonical request and signature)
 *     under the service kms-xks-proxy, SignedHeaders host;x-amz-date, as
 *     the spec's Appendix A says KMS signs;
 *   - bounded by a total timeout (timeout_ms, default
 *     XKS_CLIENT_TIMEOUT_MS) covering the connection, the TLS handshake
 *     and the answer, so a request thread is never held for long; an
 *     answer larger than XKS_MAX_BODY is cut off and refused.
 *
 * Errors. Each function returns the kinko status that KMS answers for the
 * failure ("KMS Considerations" of the spec's error table) and fills
 * *err (may be NULL) with what happened:
 *   no connection, TLS failure, timeout,
 *   ThrottlingException, DependencyTimeoutException  K_E_XKS_PROXY_URI_UNREACHABLE
 *   an answer that is not the operation's JSON, a
 *   bad tag/IV size, a ciphertext of the wrong length,
 *   a CDIV that does not match, ValidationException,
 *   UnsupportedOperationException, InternalException,
 *   an error status without an errorName             K_E_XKS_PROXY_INVALID_RESPONSE
 *   AuthenticationFailedException                     K_E_XKS_PROXY_INCORRECT_AUTH
 *   InvalidUriPathException                           K_E_XKS_PROXY_INVALID_CONFIGURATION
 *   KeyNotFoundException                              K_E_XKS_KEY_NOT_FOUND
 *   InvalidStateException, InvalidKeyUsageException   K_E_XKS_KEY_INVALID_CONFIGURATION
 *   InvalidCiphertextException, AccessDeniedException K_E_INVALID_STATE
 * A KMS cryptographic operation answers every one of them as
 * KMSInvalidStateException (CreateKey as CustomKeyStoreInvalidStateException
 * or the XksKey* exceptions; CreateCustomKeyStore as the XksProxy* ones):
 * the caller maps by operation, with err->proxy_error for the detail.
 */
#ifndef KINKO_XKS_CLIENT_H
#define KINKO_XKS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"
#include "xks/wire.h"

#define XKS_CLIENT_TIMEOUT_MS 2000
#define XKS_CLIENT_MAX_URL 512

struct xks_client_options {
	const char *endpoint;	      /* "https://xks.example.com[:PORT]" (no path) */
	const char *uri_path;	      /* "[/prefix]/kms/xks/v1" */
	const char *access_key_id;    /* the SigV4 access key id */
	const struct ksecret *secret; /* the secret access key's bytes */
	const char *region;	      /* the credential scope's region ("us-east-1") */
	const char *ca_file;	      /* PEM CAs to verify the proxy with; NULL: the system's */
	long timeout_ms;	      /* whole call; 0: XKS_CLIENT_TIMEOUT_MS */
	bool allow_http;	      /* accept an http:// endpoint (tests) */
};

/* What went wrong, for logs and for the caller's own mapping. */
struct xks_client_error {
	long http_status;	    /* 0: no answer */
	bool has_proxy_error;	    /* the proxy answered an errorName of the spec */
	enum xks_error proxy_error; /* that errorName */
	char message[256];	    /* one line: the transport's or the proxy's reason */
	enum xks_transport_error {
		XKS_TRANSPORT_OK = 0,	   /* an answer came (or no call was made) */
		XKS_TRANSPORT_UNREACHABLE, /* no connection (refused, no route, no name) */
		XKS_TRANSPORT_TIMED_OUT,   /* the call's timeout ran out */
		XKS_TRANSPORT_TLS,	   /* the TLS handshake or the proxy's certificate failed */
	} transport;
};

/* GetKeyMetadata's answer. */
struct xks_key_metadata {
	char key_spec[32];
	char key_usage[XKS_MAX_KEY_USAGES][16];
	size_t n_key_usage;
	char key_status[16];
};

/* GetHealthStatus's answer. */
struct xks_health {
	long fleet_size;
	char vendor[128];
	char model[128];
	char ekm_vendor[128];
	size_t n_ekm;
	struct xks_health_ekm {
		char id[128];
		char model[128];
		char health_status[16]; /* ACTIVE, DEGRADED, UNAVAILABLE */
	} ekm[XKS_MAX_FLEET];
};

/* Encrypt's answer, Decrypt's input. */
struct xks_ciphertext {
	struct kbuf ciphertext;
	struct kbuf metadata; /* ciphertextMetadata; empty when absent */
	bool has_metadata;
	uint8_t iv[XKS_IV_LEN_LONG];
	size_t iv_len; /* 12 or 16 */
	uint8_t tag[XKS_TAG_LEN];
};
void xks_ciphertext_init(struct xks_ciphertext *c);
void xks_ciphertext_release(struct xks_ciphertext *c);

K_MUST_CHECK k_status xks_client_health(const struct xks_client_options *o,
					const struct xks_request_metadata *md,
					struct xks_health *out, struct xks_client_error *err);
K_MUST_CHECK k_status xks_client_key_metadata(const struct xks_client_options *o,
					      const char *key_id,
					      const struct xks_request_metadata *md,
					      struct xks_key_metadata *out,
					      struct xks_client_error *err);
/*
 * Encrypts pt (at most XKS_MAX_PLAINTEXT bytes) with aad (has_aad false:
 * no additionalAuthenticatedData member). The call always asks for the
 * CDIV and checks it against the answer (Appendix C), as KMS does.
 * out is initialized by the caller.
 */
K_MUST_CHECK k_status xks_client_encrypt(const struct xks_client_options *o, const char *key_id,
					 const struct xks_request_metadata *md, struct kslice pt,
					 struct kslice aad, bool has_aad,
					 struct xks_ciphertext *out, struct xks_client_error *err);
/* Decrypts `in`, appending the plaintext (as long as the ciphertext) to pt. */
K_MUST_CHECK k_status xks_client_decrypt(const struct xks_client_options *o, const char *key_id,
					 const struct xks_request_metadata *md,
					 const struct xks_ciphertext *in, struct kslice aad,
					 bool has_aad, struct kbuf *pt,
					 struct xks_client_error *err);

/* ---- the answers' parsers (answer.c), exposed for the unit tests and the fuzzer ---- */

/* The status a proxy's error answer maps to (the table above); fills err. */
K_MUST_CHECK k_status xks_answer_error(long http_status, struct kslice body,
				       struct xks_client_error *err);
K_MUST_CHECK k_status xks_answer_metadata(struct kslice body, struct xks_key_metadata *out);
K_MUST_CHECK k_status xks_answer_health(struct kslice body, struct xks_health *out);
/*
 * Encrypt's answer for a plaintext of pt_len bytes; the CDIV, when
 * `aad_for_cdiv` is not NULL, must be the answer's and match.
 */
K_MUST_CHECK k_status xks_answer_encrypt(struct kslice body, size_t pt_len,
					 const struct kslice *aad_for_cdiv,
					 struct xks_ciphertext *out);
K_MUST_CHECK k_status xks_answer_decrypt(struct kslice body, size_t ct_len, struct kbuf *pt);

/* The request body of an operation, appended to out (answer.c). */
K_MUST_CHECK k_status xks_body_metadata(const struct xks_request_metadata *md, struct kbuf *out);
K_MUST_CHECK k_status xks_body_encrypt(const struct xks_request_metadata *md, struct kslice pt,
				       struct kslice aad, bool has_aad, struct kbuf *out);
K_MUST_CHECK k_status xks_body_decrypt(const struct xks_request_metadata *md,
				       const struct xks_ciphertext *in, struct kslice aad,
				       bool has_aad, struct kbuf *out);

#endif
