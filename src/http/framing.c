/*
 * framing.c — the request framing rules of RFC 9112 §6 (see framing.h).
 */
#include "http/framing.h"

#include <stdbool.h>

#include "core/buf.h"
#include "core/banned.h"

static bool is_ows(uint8_t ch)
{
	return ch == ' ' || ch == '\t';
}

static struct kslice trim_ows(struct kslice s)
{
	while (s.len > 0 && is_ows(s.ptr[0])) {
		s.ptr++;
		s.len--;
	}
	while (s.len > 0 && is_ows(s.ptr[s.len - 1]))
		s.len--;
	return s;
}

/*
 * Content-Length = 1*DIGIT (RFC 9110 §8.6). A list ("5, 5") may be
 * accepted by a recipient that checks the members agree; we refuse it:
 * no client we serve sends one, and every leniency here is a place where
 * two parsers can disagree. Values past 2^63 saturate (too large anyway).
 */
static bool parse_length(struct kslice v, uint64_t *out)
{
	v = trim_ows(v);
	if (v.len == 0)
		return false;
	uint64_t n = 0;
	for (size_t i = 0; i < v.len; i++) {
		if (v.ptr[i] < '0' || v.ptr[i] > '9')
			return false;
		unsigned d = (unsigned)(v.ptr[i] - '0');
		n = n > (UINT64_MAX >> 1) / 10 ? UINT64_MAX >> 1 : n * 10 + d;
	}
	*out = n;
	return true;
}

/*
 * Walks the comma-separated transfer codings of one Transfer-Encoding
 * line, counting "chunked" (parameters after ';' ignored, empty list
 * members skipped as RFC 9110 §5.6.1 asks). Returns false on a coding
 * we do not implement.
 */
static bool count_codings(struct kslice v, unsigned *chunked, unsigned *codings)
{
	size_t start = 0;
	for (size_t i = 0; i <= v.len; i++) {
		if (i < v.len && v.ptr[i] != ',')
			continue;
		struct kslice item = kslice_make(v.ptr + start, i - start);
		start = i + 1;
		for (size_t j = 0; j < item.len; j++) {
			if (item.ptr[j] == ';') {
				item.len = j;
				break;
			}
		}
		item = trim_ows(item);
		if (item.len == 0)
			continue;
		(*codings)++;
		if (!kslice_eq_nocase_cstr(item, "chunked"))
			return false;
		(*chunked)++;
	}
	return true;
}

int http_framing_check(const struct http_header *h, size_t n, uint64_t max_body, const char **why)
{
	unsigned te_lines = 0, cl_lines = 0, chunked = 0, codings = 0;
	uint64_t length = 0;
	bool length_ok = true;
	for (size_t i = 0; i < n; i++) {
		if (kslice_eq_nocase_cstr(h[i].name, "transfer-encoding")) {
			te_lines++;
			/*
			 * "A server that receives a request message with a transfer
			 * coding it does not understand SHOULD respond with 501 (Not
			 * Implemented)." (RFC 9112 §6.1)
			 */
			if (!count_codings(h[i].value, &chunked, &codings)) {
				*why = "unsupported transfer coding";
				return 501;
			}
		} else if (kslice_eq_nocase_cstr(h[i].name, "content-length")) {
			cl_lines++;
			length_ok = length_ok && parse_length(h[i].value, &length);
		}
	}
	/*
	 * "A server MAY reject a request that contains both Content-Length
	 * and Transfer-Encoding ... Regardless, the server MUST close the
	 * connection after responding to such a request" (RFC 9112 §6.1).
	 */
	if (te_lines > 0 && cl_lines > 0) {
		*why = "both Content-Length and Transfer-Encoding";
		return 400;
	}
	if (te_lines > 0 && (te_lines != 1 || chunked != 1 || codings != 1)) {
		*why = "chunked must be the one transfer coding, given once";
		return 400;
	}
	/*
	 * "If a message is received without Transfer-Encoding and with an
	 * invalid Content-Length header field, then the message framing is
	 * invalid ... the server MUST respond with a 400 (Bad Request) status
	 * code and then close the connection." (RFC 9112 §6.3)
	 */
	if (cl_lines > 1 || !length_ok) {
		*why = "invalid Content-Length";
		return 400;
	}
	if (cl_lines == 1 && length > max_body) {
		*why = "body larger than the operation takes";
		return 413;
	}
	*why = "";
	return 0;
}
