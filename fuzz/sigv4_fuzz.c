/*
 * sigv4_fuzz.c — SigV4: the Authorization header, the date, and the
 * canonicalization of method, path, query, headers and payload.
 *
 * Input: the text request of support.h. sigv4_parse() reads it; when that
 * succeeds, the canonical request is built for the parsed SignedHeaders
 * and the signature is verified against the secret "test" at the
 * request's own time, so the date window passes and every step runs; the
 * JSON protocol's must-sign rule runs on it too. A fuzzed request must
 * never verify unless the fuzzer found the HMAC.
 */
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "auth/sigv4.h"
#include "core/secret.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ksecret *secret;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (256u << 10))
		return 0;
	if (secret == NULL) {
		secret = ksecret_from((const uint8_t *)"test", 4);
		if (secret == NULL)
			abort();
	}
	struct api_request r;
	memset(&r, 0, sizeof r);
	if (!fuzz_parse_request(kslice_make(data, size), &r))
		return 0;
	struct sigv4_request sr = {
		.method = r.method,
		.path = r.path,
		.query = r.query,
		.headers = r.headers,
		.n_headers = r.n_headers,
		.payload = r.body,
	};
	struct kbuf msg, creq;
	kbuf_init(&msg, 1024);
	kbuf_init(&creq, 1u << 16);
	struct sigv4_auth auth;
	if (k_ok(sigv4_parse(&sr, &auth, &msg))) {
		size_t before = creq.len;
		if (k_failed(sigv4_canonical_request(&sr, auth.signed_headers, &creq)) &&
		    creq.len != before)
			abort(); /* the contract: out unchanged on failure */
		k_ignore(sigv4_verify(&sr, &auth, secret, NULL, auth.request_time, &msg));
		k_ignore(sigv4_verify(&sr, &auth, secret, "kms", auth.request_time + 301, &msg));
		static const char *const must_sign[] = {"x-amz-target", "content-type", NULL};
		k_ignore(sigv4_require_signed(&sr, &auth, must_sign, &msg));
	}
	kbuf_release(&msg);
	kbuf_release(&creq);
	return 0;
}
