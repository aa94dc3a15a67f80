/*
 * internal.h — what the proxy's files share (proxy.c: transport,
 * authentication and audit; ops.c: the four operations).
 */
#ifndef KINKO_XKS_INTERNAL_H
#define KINKO_XKS_INTERNAL_H

#include "core/buf.h"
#include "core/result.h"
#include "xks/wire.h"

/* ciphertextMetadata: the format byte and the material version. */
#define XKS_METADATA_FORMAT 1
#define XKS_METADATA_LEN 5
/* The derivation label of the GCM key kinko's keys use for the XKS API. */
#define XKS_GCM_LABEL "kinko/xks/v1"
/* The largest answer: Encrypt's base64 fields (plaintext-sized ciphertext). */
#define XKS_MAX_RESPONSE (16u << 10)

#define XKS_ACCOUNT_LEN 16

/* What an operation hands back to the dispatcher. */
struct xks_call {
	const struct xks_request *req;
	struct kslice key_id;		   /* the externalKeyId; empty for health */
	char key_account[XKS_ACCOUNT_LEN]; /* the served key's account, once found */
	struct kbuf *response;		   /* the answer's body, on success */
	struct kbuf *msg;		   /* errorMessage, on failure */
};

/*
 * The proxy's authorization over the request's metadata (access.c,
 * config/xks_access.h): K_OK when the external key has no rule or the
 * rule allows it; K_E_ACCESS_DENIED with the reason in msg and the served
 * key's account in `account` otherwise.
 */
K_MUST_CHECK k_status xks_authorize(const struct xks_request *req, struct kslice key_id,
				    char account[XKS_ACCOUNT_LEN], struct kbuf *msg);

/* The operation of c->req->op. */
K_MUST_CHECK k_status xks_run(struct xks_call *c);

#endif
