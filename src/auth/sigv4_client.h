/*
 * sigv4_client.h — one HTTPS POST to an AWS-style JSON API, signed with
 * SigV4: how kinko calls a peer kinko deployment (kms/mrk_peer.h) with
 * the same signature its own API verifies (auth/sigv4.h's canonical
 * request, string to sign and signature).
 *
 * The call runs on the calling thread through libcurl (core/curl_init.h):
 * TLS verified against ca_file (or the system's CAs), https only, a total
 * timeout, an answer capped by the caller's buffer. SignedHeaders are
 * content-type;host;x-amz-date;x-amz-target, the headers the AWS JSON
 * protocol signs and kinko's API requires to be signed. The date is the
 * real clock's, never the test clock's: the other side checks it against
 * its own real clock.
 */
#ifndef KINKO_AUTH_SIGV4_CLIENT_H
#define KINKO_AUTH_SIGV4_CLIENT_H

#include <stdbool.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

#define SIGV4_CLIENT_TIMEOUT_MS 5000
#define SIGV4_CLIENT_MAX_URL 512

struct sigv4_client_call {
	const char *endpoint;	      /* "https://host[:port]" (a trailing "/" allowed) */
	const char *ca_file;	      /* PEM CAs; NULL or "": the system's */
	const char *access_key_id;    /* the SigV4 access key id */
	const struct ksecret *secret; /* the secret access key's bytes */
	const char *region;	      /* the credential scope's Region */
	const char *service;	      /* the credential scope's service: "kms" */
	const char *target;	      /* X-Amz-Target: "Service.Operation" */
	long timeout_ms;	      /* 0: SIGV4_CLIENT_TIMEOUT_MS */
};

/*
 * POSTs body (application/x-amz-json-1.1) and appends the answer's body
 * to answer; *status is the HTTP status (0 without an answer). K_OK
 * whenever an answer came, whatever its status; K_E_DEPENDENCY_TIMEOUT
 * when none came (no connection, TLS failure, timeout, an answer past
 * answer's cap), with the reason in why (may be NULL). Never logs the
 * secret.
 */
K_MUST_CHECK k_status sigv4_client_post(const struct sigv4_client_call *o, struct kslice body,
					struct kbuf *answer, long *status, struct kbuf *why);

#endif
