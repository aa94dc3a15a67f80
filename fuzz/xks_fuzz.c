/*
 * xks_fuzz.c — the XKS proxy API's parsers (xks/wire.h, xks/client.h):
 * what the proxy reads from any caller before and after authentication,
 * and what the client reads from any proxy.
 *
 * Input: one selector byte, then the bytes. The selector's low two bits
 * pick the request parser's operation (GetKeyMetadata, Encrypt, Decrypt,
 * GetHealthStatus); every input also goes through the router (as a
 * path) and each answer parser. Invariants: a parsed request has its
 * operation's required members and sizes within the spec's bounds; a
 * parsed Encrypt answer has a 12- or 16-byte IV and a ciphertext of the
 * plaintext's length; the error mapping is always a failure.
 */
#include <stdlib.h>
#include <string.h>

#include "xks/client.h"
#include "xks/wire.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PATH "/p/kms/xks/v1"

static void request(enum xks_op op, struct kslice body)
{
	struct xks_request r;
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	xks_request_init(&r);
	if (k_ok(xks_request_parse(op, body, &r, &msg))) {
		if (r.md.kms_request_id == NULL || r.md.kms_operation == NULL)
			abort();
		if (op != XKS_OP_HEALTH && r.md.aws_principal_arn == NULL)
			abort();
		if (op == XKS_OP_DECRYPT &&
		    ((r.iv.len != XKS_IV_LEN && r.iv.len != XKS_IV_LEN_LONG) ||
		     r.tag.len != XKS_TAG_LEN || r.ciphertext.len > XKS_MAX_PLAINTEXT ||
		     r.ciphertext_metadata.len > XKS_MAX_CIPHERTEXT_METADATA))
			abort();
		if (op == XKS_OP_ENCRYPT &&
		    (r.plaintext.len > XKS_MAX_PLAINTEXT || r.aad.len > XKS_MAX_AAD))
			abort();
	}
	xks_request_release(&r);
	kbuf_release(&msg);
}

static void answers(struct kslice body, size_t n)
{
	struct xks_key_metadata m;
	struct xks_health h;
	struct xks_ciphertext c;
	struct xks_client_error e;
	struct kbuf pt;
	k_ignore(xks_answer_metadata(body, &m));
	k_ignore(xks_answer_health(body, &h));
	xks_ciphertext_init(&c);
	struct kslice aad = kslice_make("", 0);
	if (k_ok(xks_answer_encrypt(body, n, &aad, &c)) &&
	    ((c.iv_len != XKS_IV_LEN && c.iv_len != XKS_IV_LEN_LONG) || c.ciphertext.len != n))
		abort();
	xks_ciphertext_release(&c);
	kbuf_init(&pt, XKS_MAX_PLAINTEXT);
	if (k_ok(xks_answer_decrypt(body, n, &pt)) && pt.len != n)
		abort();
	kbuf_release(&pt);
	if (k_ok(xks_answer_error(400, body, &e)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const enum xks_op ops[] = {XKS_OP_METADATA, XKS_OP_ENCRYPT, XKS_OP_DECRYPT,
					  XKS_OP_HEALTH};
	struct kslice body = kslice_make(data + 1, size - 1);
	request(ops[data[0] & 3], body);
	struct xks_route r;
	if (k_ok(xks_route(body, FUZZ_PATH, &r)) && (r.op == XKS_OP_NONE || r.key_id.len > 128 ||
						     (r.op != XKS_OP_HEALTH && r.key_id.len == 0)))
		abort();
	answers(body, (size_t)(data[0] >> 2));
	return 0;
}
