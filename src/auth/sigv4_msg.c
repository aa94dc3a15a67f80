/*
 * sigv4_msg.c — the messages SigV4 errors carry back to the client.
 *
 * AWS's wording, so that a client's error handling and an operator's
 * searches work as against AWS. Client input is echoed only through
 * sigv4_msg_echo(), bounded and reduced to printable ASCII, and the
 * request's signature is never echoed (sigv4_msg_authz_echo()).
 */
#include "auth/internal.h"

#include <string.h>

#include "core/banned.h"

/*
 * Messages are best effort: a full message buffer keeps what fit and the
 * error code is unaffected. Anything taken from the request is echoed
 * through sigv4_msg_echo(), which caps its length and replaces bytes outside
 * printable ASCII.
 */
void sigv4_msg_clear(struct kbuf *msg)
{
	if (msg != NULL)
		kbuf_reset(msg);
}

void sigv4_msg_add(struct kbuf *msg, const void *p, size_t n)
{
	if (msg == NULL || n == 0)
		return;
	if (k_failed(kbuf_append(msg, p, n)))
		return; /* too long for the caller's buffer: keep what fit */
}

void sigv4_msg_str(struct kbuf *msg, const char *s)
{
	sigv4_msg_add(msg, s, strlen(s));
}

void sigv4_msg_base64(struct kbuf *msg, const uint8_t *p, size_t n)
{
	if (msg == NULL)
		return;
	if (k_failed(kbuf_append_base64(msg, p, n)))
		return; /* too long for the caller's buffer: keep what fit */
}

void sigv4_msg_echo(struct kbuf *msg, struct kslice s, size_t max)
{
	uint8_t tmp[MSG_ECHO_MAX + 3];
	size_t n = 0;
	if (max > MSG_ECHO_MAX)
		max = MSG_ECHO_MAX;
	for (size_t i = 0; i < s.len && n < max; i++) {
		uint8_t c = s.ptr[i];
		tmp[n++] = (c >= 0x20 && c < 0x7f) ? c : (uint8_t)'?';
	}
	if (s.len > max) {
		memcpy(tmp + n, "...", 3);
		n += 3;
	}
	sigv4_msg_add(msg, tmp, n);
}

/*
 * AWS ends its IncompleteSignature messages with "Authorization=<header>".
 * We echo the header too, but with the Signature value replaced: a
 * signature is a credential for the one request it signs, and error bodies
 * end up in logs.
 */
void sigv4_msg_authz_echo(struct kbuf *msg, struct kslice authz, struct kslice sig)
{
	sigv4_msg_str(msg, "Authorization=");
	bool inside =
		sig.len > 0 && sig.ptr >= authz.ptr && sig.ptr + sig.len <= authz.ptr + authz.len;
	if (!inside) {
		sigv4_msg_echo(msg, authz, MSG_ECHO_MAX);
		return;
	}
	size_t before = (size_t)(sig.ptr - authz.ptr);
	sigv4_msg_echo(msg, kslice_make(authz.ptr, before), MSG_ECHO_MAX);
	sigv4_msg_str(msg, "<redacted>");
	size_t after = before + sig.len;
	sigv4_msg_echo(msg, kslice_make(authz.ptr + after, authz.len - after), MSG_ECHO_MAX);
}
