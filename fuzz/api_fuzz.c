/*
 * api_fuzz.c — the HTTP request as the API pipeline sees it.
 *
 * Input: one flags byte, then the text request of support.h (request line,
 * headers, blank line, body) with the @key/@arn/@blob placeholders.
 * Flags bit 0: sign the request with the dev identity for the current time
 * (so the fuzzer gets past SigV4 into the operations); bit 1: mark it as
 * arrived over TLS; bit 2: mark the body as over the size limit, as the
 * HTTP layer does. The request runs through api_handle(), exactly as the
 * HTTP layer hands it over; the response must be well-formed JSON (XML
 * for the query protocol) with an HTTP status, and an error must name its
 * exception.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > API_MAX_BODY + 4096)
		return 0;
	fuzz_kms_init();
	fuzz_bound_cache();
	uint8_t flags = data[0];
	struct kbuf text;
	kbuf_init(&text, 2 * size + 4096);
	struct api_request r;
	api_request_init(&r);
	struct fuzz_sig sig;
	if (k_failed(fuzz_expand(kslice_make(data + 1, size - 1), &text)) ||
	    !fuzz_parse_request(kbuf_slice(&text), &r))
		goto out;
	if ((flags & 1) && !fuzz_sign(&r, &sig))
		goto out;
	r.secure = (flags & 2) != 0;
	r.body_too_large = (flags & 4) != 0;
	snprintf(r.source_ip, sizeof r.source_ip, "192.0.2.1");
	api_handle(&r);
	if (r.status < 200 || r.status > 599 || r.content_type == NULL)
		abort();
	if (r.response.len > 0 && strstr(r.content_type, "xml") != NULL) {
		/* The query protocol (STS over form-encoded POST) answers in XML. */
		if (r.response.ptr[0] != '<')
			abort();
	} else if (r.response.len > 0) {
		json_error_t err;
		json_t *j = json_loadb((const char *)r.response.ptr, r.response.len, 0, &err);
		if (j == NULL)
			abort();
		if (r.status != 200 && !json_is_string(json_object_get(j, "__type")))
			abort();
		json_decref(j);
	}
out:
	api_request_release(&r);
	kbuf_release(&text);
	return 0;
}
