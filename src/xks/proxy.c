/*
 * proxy.c — the XKS listener's handler: method, SigV4, route, parse, run,
 * audit, answer (proxy.h).
 */
#include "xks/proxy.h"

#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/sigv4.h"
#include "config/xks.h"
#include "core/clock.h"
#include "core/log.h"
#include "crypto/uuid.h"
#include "xks/internal.h"
#include "core/banned.h"

#define XKS_EVENT_SOURCE "kms-xks-proxy"

/* One request's state, from arrival to answer. */
struct xks_exchange {
	struct api_request *r;
	struct sigv4_auth auth;
	bool authenticated;
	struct xks_route route;
	struct xks_request req;
	char key_account[XKS_ACCOUNT_LEN];
	struct kbuf msg; /* errorMessage */
};

/*
 * Appendix A: the Authorization header names an access key id of the
 * configuration; the signature is checked with its secret under the
 * service kms-xks-proxy, and the date within 5 minutes ("Any requests
 * more than 5 minutes in the past (or future ...) SHOULD fail
 * authentication"). Every failure is AuthenticationFailedException.
 */
static K_MUST_CHECK k_status authenticate(struct xks_exchange *x)
{
	struct api_request *r = x->r;
	struct sigv4_request sr = {
		.method = r->method,
		.path = r->path,
		.query = r->query,
		.headers = r->headers,
		.n_headers = r->n_headers,
		.payload = r->body,
	};
	GUARD(sigv4_parse(&sr, &x->auth, &x->msg));
	const struct config_xks_credential *cred = config_xks_credential(x->auth.access_key);
	if (cred == NULL) {
		kbuf_note(&x->msg, "The access key id is not one of this proxy's");
		return K_E_UNRECOGNIZED_CLIENT;
	}
	const char *region = config_xks()->region;
	if (region[0] != 0 && strcmp(region, x->auth.region) != 0) {
		kbuf_note(&x->msg, "The credential scope's region is not %s", region);
		return K_E_INVALID_SIGNATURE;
	}
	GUARD(sigv4_verify(&sr, &x->auth, cred->secret, XKS_SIGNING_NAME, kclock_now(), &x->msg));
	x->authenticated = true;
	return K_OK;
}

/* The requestParameters of the call's audit event: the metadata and what names the key. */
static json_t *event_parameters(const struct xks_exchange *x)
{
	json_t *in = json_object();
	if (in == NULL)
		return NULL;
	json_t *md = x->req.root != NULL ? json_object_get(x->req.root, "requestMetadata") : NULL;
	if (json_is_object(md))
		json_object_set_new(in, "requestMetadata", json_deep_copy(md));
	if (x->route.key_id.len > 0)
		json_object_set_new(
			in, "externalKeyId",
			json_stringn((const char *)x->route.key_id.ptr, x->route.key_id.len));
	json_t *alg =
		x->req.root != NULL ? json_object_get(x->req.root, "encryptionAlgorithm") : NULL;
	if (json_is_string(alg))
		json_object_set(in, "encryptionAlgorithm", alg);
	return in;
}

/*
 * The call's event, before the answer; K_OK when written (or when the
 * trail is off). The caller is the credential, not an AWS principal: its
 * access key id is the event's principal, and the served key's account its
 * account.
 */
static K_MUST_CHECK k_status record(struct xks_exchange *x, k_status outcome)
{
	struct api_request *r = x->r;
	const struct http_header *ua = NULL;
	for (size_t i = 0; i < r->n_headers && ua == NULL; i++) {
		if (kslice_eq_nocase_cstr(r->headers[i].name, "user-agent"))
			ua = &r->headers[i];
	}
	const char *ak = x->authenticated ? x->auth.access_key : "";
	struct audit_call_info call = {
		.who = {.account = x->key_account,
			.arn = "",
			.type = "XksProxyCredential",
			.principal_id = ak,
			.access_key = ak},
		.event_source = XKS_EVENT_SOURCE,
		.event_name = x->route.op != XKS_OP_NONE ? xks_op_name(x->route.op) : NULL,
		.region = x->authenticated ? x->auth.region : "",
		.request_id = r->request_id,
		.source_ip = r->source_ip,
		.user_agent = ua != NULL ? ua->value : kslice_make("", 0),
		.secure = r->secure,
		.now = kclock_now(),
	};
	json_t *in = event_parameters(x);
	k_status rc = audit_call(&call, in, NULL, outcome, kbuf_cstr(&x->msg));
	json_decref(in);
	return rc;
}

static void answer_error(struct api_request *r, enum xks_error e, const char *message)
{
	kbuf_reset(&r->response);
	r->status = xks_error_status(e);
	if (k_failed(xks_error_body(e, message, &r->response))) {
		kbuf_reset(&r->response);
		r->status = 500;
	}
}

/* Steps 2 to 5 of proxy.h; the answer's body is in r->response on K_OK. */
static K_MUST_CHECK k_status serve(struct xks_exchange *x)
{
	struct api_request *r = x->r;
	/* The route names the audit event even when the caller is refused. */
	k_status route = xks_route(r->path, config_xks()->uri_path, &x->route);
	k_status auth = authenticate(x);
	if (k_failed(auth)) {
		if (x->msg.len == 0)
			kbuf_note(&x->msg, "The request was rejected due to an invalid AWS SigV4 "
					   "signature.");
		return auth;
	}
	if (k_failed(route)) {
		kbuf_note(&x->msg, "The URI path is not one of this proxy's");
		return route;
	}
	k_status parsed = xks_request_parse(x->route.op, r->body, &x->req, &x->msg);
	/*
	 * ValidationException is for "ALL except GetHealthStatus" (the spec's
	 * error table): a health check is answered whatever its body says,
	 * and its requestMetadata is recorded when it has one.
	 */
	if (k_failed(parsed) && x->route.op != XKS_OP_HEALTH)
		return parsed;
	kbuf_reset(&x->msg);
	/* "AccessDeniedException ... ALL except GetHealthStatus" */
	if (x->route.op != XKS_OP_HEALTH)
		GUARD(xks_authorize(&x->req, x->route.key_id, x->key_account, &x->msg));
	struct xks_call c = {
		.req = &x->req,
		.key_id = x->route.key_id,
		.response = &r->response,
		.msg = &x->msg,
	};
	k_status rc = xks_run(&c);
	memcpy(x->key_account, c.key_account, sizeof x->key_account);
	return rc;
}

void xks_proxy_handle(struct api_request *r)
{
	struct xks_exchange x;
	memset(&x, 0, sizeof x);
	x.r = r;
	kbuf_init(&x.msg, KBUF_NOTE_MAX);
	xks_request_init(&x.req);
	crypto_uuid_fast(r->request_id);
	r->content_type = XKS_CONTENT_TYPE;
	/* "it MUST reject the request with a 405 Method Not Allowed error" */
	if (!kslice_eq_cstr(r->method, "POST")) {
		answer_error(r, XKS_E_VALIDATION, "The XKS proxy API takes POST requests only");
		r->status = 405;
		goto out;
	}
	k_status rc = serve(&x);
	if (k_ok(rc) && r->response.len == 0)
		rc = K_E_INTERNAL;
	if (k_failed(record(&x, rc))) {
		LOG_ERROR("xks: request %s: the audit event could not be written", r->request_id);
		answer_error(r, XKS_E_INTERNAL, "The audit trail cannot be written");
		goto out;
	}
	if (k_failed(rc)) {
		LOG_DEBUG("xks: request %s: %s: %s", r->request_id, k_status_name(rc),
			  kbuf_cstr(&x.msg));
		answer_error(r, xks_error_of(rc), kbuf_cstr(&x.msg));
		goto out;
	}
	r->status = 200;
out:
	xks_request_release(&x.req);
	kbuf_release(&x.msg);
}
