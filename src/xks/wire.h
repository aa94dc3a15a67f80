/*
 * wire.h — the XKS proxy API v1 on the wire, both sides: the URIs, the
 * request bodies, the answers and the error table.
 *
 * The API is AWS's "External Key Store Proxy API Specification"
 * (github.com/aws/aws-kms-xksproxy-api-spec, xks_proxy_api_spec.md):
 * JSON over HTTPS, every call a POST to
 *   [/<path-prefix>]/kms/xks/v1/keys/<externalKeyId>/metadata   GetKeyMetadata
 *   [/<path-prefix>]/kms/xks/v1/keys/<externalKeyId>/encrypt    Encrypt
 *   [/<path-prefix>]/kms/xks/v1/keys/<externalKeyId>/decrypt    Decrypt
 *   [/<path-prefix>]/kms/xks/v1/health                          GetHealthStatus
 * signed with SigV4 under the service name kms-xks-proxy. Errors are
 * {"errorName": ..., "errorMessage": ...} with the spec's HTTP status.
 *
 * This file parses and writes; it does no cryptography and holds no key.
 * The proxy (xks/proxy.h) and the client (xks/client.h) build on it.
 */
#ifndef KINKO_XKS_WIRE_H
#define KINKO_XKS_WIRE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"

#define XKS_SIGNING_NAME "kms-xks-proxy"
#define XKS_CONTENT_TYPE "application/json"
/*
 * "The proxy MUST support the ability to process up to 4300 bytes of
 * plaintext data" and "MUST be able to handle AAD values up to 8192
 * bytes": kinko takes 8192 of each (more is UnsupportedOperationException,
 * as the spec's error table has it for sizes past an implementation's).
 */
#define XKS_MAX_PLAINTEXT 8192
#define XKS_MAX_AAD 8192
/* "the size of the field MUST NOT exceed 20 bytes" (ciphertextMetadata). */
#define XKS_MAX_CIPHERTEXT_METADATA 20
/* "The XKS Proxy MUST support ARN lengths of up to 2048 characters." */
#define XKS_MAX_METADATA_STRING 2048
/* A request or answer body: the base64 of the fields above and the metadata. */
#define XKS_MAX_BODY (64u << 10)
/* "The errorMessage, if included, MUST be less than 512 characters". */
#define XKS_MAX_ERROR_MESSAGE 511
#define XKS_IV_LEN 12 /* what kinko makes; 16 is also legal on the wire */
#define XKS_IV_LEN_LONG 16
#define XKS_TAG_LEN 16
#define XKS_CDIV_LEN 32 /* SHA_256 */
#define XKS_MAX_KEY_USAGES 10
#define XKS_MAX_FLEET 10

/* ---- operations and routes ---------------------------------------------------- */

enum xks_op {
	XKS_OP_NONE = 0,
	XKS_OP_METADATA,
	XKS_OP_ENCRYPT,
	XKS_OP_DECRYPT,
	XKS_OP_HEALTH,
};

/* "GetKeyMetadata", "Encrypt", "Decrypt", "GetHealthStatus" ("" for none). */
const char *xks_op_name(enum xks_op op);

struct xks_route {
	enum xks_op op;
	struct kslice key_id; /* the externalKeyId, into the path; empty for health */
};

/*
 * Takes a request path (raw, without its query) apart under the proxy's
 * uri_path ("[/prefix]/kms/xks/v1"). K_E_NOT_FOUND_HTTP (the spec's
 * InvalidUriPathException) when the path is not one of the four
 * operations under uri_path, or names a key id outside the spec's
 * alphabet or longer than 128.
 */
K_MUST_CHECK k_status xks_route(struct kslice path, const char *uri_path, struct xks_route *out);

/* ---- requests -------------------------------------------------------------------- */

/* requestMetadata; strings borrowed from the parsed body, NULL when absent. */
struct xks_request_metadata {
	const char *aws_principal_arn;
	const char *aws_source_vpc;
	const char *aws_source_vpce;
	const char *kms_key_arn;
	const char *kms_operation;
	const char *kms_request_id;
	const char *kms_via_service;
};

struct xks_request {
	enum xks_op op;
	json_t *root; /* the parsed body, owned */
	struct xks_request_metadata md;
	struct kbuf plaintext;	/* Encrypt (wiped on release) */
	struct kbuf ciphertext; /* Decrypt */
	struct kbuf aad;	/* additionalAuthenticatedData; empty when absent */
	bool has_aad;
	struct kbuf ciphertext_metadata; /* Decrypt's ciphertextMetadata; empty when absent */
	bool has_ciphertext_metadata;
	struct kbuf iv;	 /* Decrypt's initializationVector */
	struct kbuf tag; /* Decrypt's authenticationTag */
	bool want_cdiv;	 /* Encrypt asked for ciphertextDataIntegrityValue (SHA_256) */
};

void xks_request_init(struct xks_request *r);
void xks_request_release(struct xks_request *r);

/*
 * Parses the body of a request for op into r (initialized). Errors, with
 * a message for errorMessage in msg (printable ASCII):
 *   K_E_VALIDATION   not a JSON object, a required member missing, a
 *                    member of the wrong type, bad base64, an algorithm
 *                    other than AES_GCM / SHA_256, ciphertextMetadata over
 *                    20 bytes, an IV not of 12 or 16 bytes or a tag not of
 *                    16 (the ciphertext's own checks come later, in the
 *                    key store)
 *   K_E_UNSUPPORTED  plaintext, ciphertext or AAD over 8192 bytes
 * requestMetadata members that the spec does not name are accepted
 * ("AWS KMS may choose to include additional fields"), and so is any
 * kmsOperation ("MUST NOT reject a request as invalid if it sees a
 * kmsOperation other than those listed").
 */
K_MUST_CHECK k_status xks_request_parse(enum xks_op op, struct kslice body, struct xks_request *r,
					struct kbuf *msg);

/* ---- errors ---------------------------------------------------------------------- */

/*
 * The spec's error table, keyed by the kinko status the proxy's code
 * returns:
 *   K_E_VALIDATION                         400 ValidationException
 *   K_E_INVALID_STATE                      400 InvalidStateException
 *   K_E_INVALID_CIPHERTEXT                 400 InvalidCiphertextException
 *   K_E_INVALID_KEY_USAGE                  400 InvalidKeyUsageException
 *   K_E_INVALID_SIGNATURE, K_E_MISSING_AUTH,
 *   K_E_INCOMPLETE_SIGNATURE,
 *   K_E_UNRECOGNIZED_CLIENT                401 AuthenticationFailedException
 *   K_E_ACCESS_DENIED                      403 AccessDeniedException
 *   K_E_NOT_FOUND                          404 KeyNotFoundException
 *   K_E_NOT_FOUND_HTTP                     404 InvalidUriPathException
 *   K_E_THROTTLING                         429 ThrottlingException
 *   K_E_UNSUPPORTED                        501 UnsupportedOperationException
 *   K_E_DEPENDENCY_TIMEOUT                 503 DependencyTimeoutException
 *   anything else                          500 InternalException
 */
enum xks_error {
	XKS_E_VALIDATION = 0,
	XKS_E_INVALID_STATE,
	XKS_E_INVALID_CIPHERTEXT,
	XKS_E_INVALID_KEY_USAGE,
	XKS_E_AUTHENTICATION_FAILED,
	XKS_E_ACCESS_DENIED,
	XKS_E_KEY_NOT_FOUND,
	XKS_E_INVALID_URI_PATH,
	XKS_E_THROTTLING,
	XKS_E_UNSUPPORTED_OPERATION,
	XKS_E_DEPENDENCY_TIMEOUT,
	XKS_E_INTERNAL,
	XKS_E_COUNT
};

enum xks_error xks_error_of(k_status st);
const char *xks_error_name(enum xks_error e); /* "ValidationException" ... */
int xks_error_status(enum xks_error e);	      /* 400, 401, ... */
/* The error of an errorName; false for a name the spec does not have. */
bool xks_error_parse(const char *name, enum xks_error *out);

/*
 * An error body, {"errorName": ..., "errorMessage": ...}, appended to out.
 * The message is cut to XKS_MAX_ERROR_MESSAGE characters and any byte
 * outside printable ASCII becomes '?'; an empty message is left out.
 */
K_MUST_CHECK k_status xks_error_body(enum xks_error e, const char *message, struct kbuf *out);

/* ---- the AAD kinko's keys authenticate ---------------------------------------------- */

/*
 * "The AAD input for the external key manager should be computed as
 * (2-byte length of additionalAuthenticatedData in big-endian format ||
 * additionalAuthenticatedData || 1-byte length of ciphertextMetadata ||
 * ciphertextMetadata)" (Encrypt, ciphertextMetadata). Appended to out.
 */
K_MUST_CHECK k_status xks_gcm_aad(struct kslice aad, struct kslice ciphertext_metadata,
				  struct kbuf *out);

/*
 * The Ciphertext Data Integrity Value (Appendix C): SHA-256 over
 * aad || ciphertextMetadata || iv || ciphertext || tag.
 */
K_MUST_CHECK k_status xks_cdiv(struct kslice aad, struct kslice ciphertext_metadata,
			       struct kslice iv, struct kslice ciphertext, struct kslice tag,
			       uint8_t out[XKS_CDIV_LEN]);

#endif
