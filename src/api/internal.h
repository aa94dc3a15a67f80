/*
 * internal.h — what the files of api/ share and nothing outside api/ uses.
 *
 * dispatch.c runs the pipeline of api.h and owns the operation tables; it
 * calls on:
 *   authn.c   SigV4 authentication and the rules kinko adds to it;
 *   query.c   the query protocol (STS): form bodies in, XML out;
 *   render.c  the JSON protocol's error responses;
 *   trail.c   what the audit trail records of the call, as data.
 * Each is called at most once per request.
 */
#ifndef KINKO_API_INTERNAL_H
#define KINKO_API_INTERNAL_H

#include <jansson.h>
#include "api/pipeline.h"
#include "core/buf.h"
#include "core/result.h"

/*
 * The headers a JSON-protocol request must sign besides the host
 * (X-Amz-Target and Content-Type), NULL-terminated; for api_authenticate.
 */
extern const char *const api_json_signed_headers[];

/*
 * Authenticates c->req against c->service's signing name and fills
 * c->principal, c->region and c->ns. `must_sign` lists the headers that must
 * be signed when present (NULL: none beyond the host). K_OK, or the SigV4 /
 * identity error with its message in c->err_msg.
 */
K_MUST_CHECK k_status api_authenticate(struct api_ctx *c, const char *const *must_sign);

/*
 * Parses an application/x-www-form-urlencoded body into a new JSON object
 * of strings, which the caller owns (*out, on K_OK only). K_E_VALIDATION
 * for a bad escape, a NUL or text that is not UTF-8; K_E_INTERNAL when out
 * of memory.
 */
K_MUST_CHECK k_status api_parse_form(struct kslice body, json_t **out);

/* Writes the query protocol's response for c's operation, with out as its result. */
void api_render_query(struct api_request *r, const struct api_ctx *c, const json_t *out);

/* Writes the query protocol's error response for code (msg NULL: the table's message). */
void api_render_query_error(struct api_request *r, const struct api_ctx *c, k_status code,
			    const char *msg);

/* Writes the JSON protocol's error response for code (msg NULL: the table's message). */
void api_render_error(struct api_request *r, k_status code, const char *msg);

/* audit_intent and audit_call (audit/audit.h) for the call in c, with api_audit_info's data. */
K_MUST_CHECK k_status api_audit_intent(const struct api_ctx *c);
K_MUST_CHECK k_status api_audit_call(const struct api_ctx *c, json_t *in, json_t *out, k_status rc,
				     const char *err_msg);

#endif
