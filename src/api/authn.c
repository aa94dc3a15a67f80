/*
 * authn.c — who is calling: SigV4 authentication of a request, with the
 * rules kinko adds to it (the headers a JSON request must sign, the regions
 * a credential may be scoped to). See internal.h.
 */
#include "api/internal.h"

#include <stdio.h>
#include <time.h>

#include "config/config.h"
#include "config/regions.h"
#include "core/banned.h"

/*
 * What a JSON-protocol request must have signed besides the host: the
 * operation (X-Amz-Target) and the Content-Type. The AWS SDKs always sign
 * both; without this rule a signature over "host;x-amz-date" alone would
 * let anyone on the way turn a signed Encrypt into a DescribeKey (or any
 * other operation) within the signature's five minutes. See sigv4.h.
 */
const char *const api_json_signed_headers[] = {"x-amz-target", "content-type", NULL};

/*
 * Authenticates the request and fills the context's principal and region.
 * `must_sign` lists the headers that must be signed when present (NULL:
 * none beyond the host). The region of the credential scope must be one
 * kinko serves (config/regions.h): AWS answers a region it does not know
 * at DNS already, and a signature scoped to a region that the endpoint
 * does not serve with InvalidSignatureException, "Credential should be
 * scoped to a valid region, not 'REGION'." We give that answer.
 */
k_status api_authenticate(struct api_ctx *c, const char *const *must_sign)
{
	struct api_request *r = c->req;
	struct sigv4_request sr = {
		.method = r->method,
		.path = r->path,
		.query = r->query,
		.headers = r->headers,
		.n_headers = r->n_headers,
		.payload = r->body,
	};
	struct sigv4_auth auth;
	GUARD(sigv4_parse(&sr, &auth, &c->err_msg));
	GUARD(sigv4_require_signed(&sr, &auth, must_sign, &c->err_msg));
	ENSURE(config_region_known(auth.region),
	       api_fail(c, K_E_INVALID_SIGNATURE,
			"Credential should be scoped to a valid region, not '%s'. ", auth.region));
	const struct identity *id = NULL;
	k_status rc = config_lookup_access_key(auth.access_key, &auth.security_token, &id);
	if (k_failed(rc))
		return rc;
	/* The server's real clock, never the test clock: clients sign with real time. */
	GUARD(sigv4_verify(&sr, &auth, identity_secret(id), c->service->signing_name,
			   (int64_t)time(NULL), &c->err_msg));
	identity_principal(id, auth.access_key, &c->principal);
	kstr_copy(c->region, sizeof c->region, auth.region);
	snprintf(c->ns, sizeof c->ns, "%s:%s", c->principal.account, c->region);
	return K_OK;
}
