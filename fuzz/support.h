/*
 * support.h — shared pieces of kinko's libFuzzer harnesses (see
 * docs/SECURITY.md, "Fuzzing").
 *
 * A harness that needs the KMS service calls fuzz_kms_init() once: it
 * makes a temporary data folder (under /dev/shm when it exists, so the
 * store's fsyncs cost little), opens a root key and a SQLite store there,
 * registers the KMS, STS and Secrets Manager services and the dev identity
 * (account 000000000000,
 * access key "test"), and creates one symmetric key with one ciphertext
 * under it. The folder is removed at exit.
 *
 * Inputs name that key and that ciphertext with placeholders, so the
 * fuzzer reaches the handlers' deep paths without guessing a UUID:
 *   @key   the key id          @arn   the key ARN
 *   @blob  a base64 ciphertext of "fuzz" under the key, context {"k":"v"}
 */
#ifndef KINKO_FUZZ_SUPPORT_H
#define KINKO_FUZZ_SUPPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "api/pipeline.h"
#include "core/buf.h"

#define FUZZ_ACCOUNT "000000000000"
#define FUZZ_REGION "us-east-1"

/* Sets up the KMS service over a temporary store (idempotent; aborts on failure). */
void fuzz_kms_init(void);

/*
 * Called once per input by the harnesses that create keys: empties the
 * KMS key cache every few thousand inputs, so a long run's memory stays
 * bounded (the keys stay in the store and reload on use).
 */
void fuzz_bound_cache(void);

/* Appends `in` to out with the placeholders above replaced; K_E_VALIDATION past out's max. */
K_MUST_CHECK k_status fuzz_expand(struct kslice in, struct kbuf *out);

/*
 * Fills a context for the dev identity's root principal in FUZZ_REGION, as
 * api_handle() would after authentication. Release with fuzz_ctx_release().
 */
void fuzz_ctx_init(struct api_ctx *c, struct api_request *r);
void fuzz_ctx_release(struct api_ctx *c);

/*
 * Parses the text form of an HTTP request the harnesses share:
 *   METHOD SP PATH[?QUERY] LF
 *   (NAME ":" VALUE LF)*      at most API_MAX_HEADERS, values untrimmed
 *   LF
 *   BODY
 * into r (whose slices point into `in`). Returns false if the input does
 * not have that shape.
 */
bool fuzz_parse_request(struct kslice in, struct api_request *r);

/* The text of the headers fuzz_sign() adds; must outlive the request's use. */
struct fuzz_sig {
	char host[16];
	char date[17];
	char authz[512];
};

/*
 * Signs r with the dev identity's secret as the AWS SDKs do, for now:
 * adds X-Amz-Date, Authorization and (if missing) Host headers covering
 * host, x-amz-date and, when present, content-type and x-amz-target.
 * Returns false if the request cannot be signed (too many headers, or
 * SigV4 refuses its shape).
 */
bool fuzz_sign(struct api_request *r, struct fuzz_sig *store);

#endif
