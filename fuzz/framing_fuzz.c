/*
 * framing_fuzz.c — the request framing rules (http/framing.h).
 *
 * Input: header lines "Name: value", one per line (at most 32). The
 * verdict must be one of 0, 400, 413 and 501, with a reason; and a
 * request it lets through must be unambiguous: never both Content-Length
 * and Transfer-Encoding, at most one Content-Length line of digits only
 * and at most max_body, at most one Transfer-Encoding line.
 */
#include <stdlib.h>
#include <string.h>

#include "http/framing.h"
#include "core/buf.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 32
#define MAX_BODY 4096u

static bool digits_only(struct kslice v, uint64_t *n)
{
	size_t i = 0, j = v.len;
	while (i < j && (v.ptr[i] == ' ' || v.ptr[i] == '\t'))
		i++;
	while (j > i && (v.ptr[j - 1] == ' ' || v.ptr[j - 1] == '\t'))
		j--;
	if (i == j)
		return false;
	*n = 0;
	for (; i < j; i++) {
		if (v.ptr[i] < '0' || v.ptr[i] > '9')
			return false;
		*n = *n > 1000000 ? *n : *n * 10 + (uint64_t)(v.ptr[i] - '0');
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_header h[MAX_HEADERS];
	size_t n = 0, start = 0;
	for (size_t i = 0; i <= size && n < MAX_HEADERS; i++) {
		if (i < size && data[i] != '\n')
			continue;
		const uint8_t *line = data + start;
		size_t len = i - start;
		start = i + 1;
		const uint8_t *colon = memchr(line, ':', len);
		if (colon == NULL)
			continue;
		h[n].name = kslice_make(line, (size_t)(colon - line));
		h[n].value = kslice_make(colon + 1, len - (size_t)(colon - line) - 1);
		n++;
	}
	const char *why = NULL;
	int status = http_framing_check(h, n, MAX_BODY, &why);
	if (why == NULL || (status != 0 && status != 400 && status != 413 && status != 501))
		abort();
	if (status != 0)
		return 0;
	unsigned te = 0, cl = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t len = 0;
		if (kslice_eq_nocase_cstr(h[i].name, "transfer-encoding")) {
			te++;
		} else if (kslice_eq_nocase_cstr(h[i].name, "content-length")) {
			cl++;
			if (!digits_only(h[i].value, &len) || len > MAX_BODY)
				abort();
		}
	}
	if ((te > 0 && cl > 0) || cl > 1 || te > 1)
		abort();
	return 0;
}
