/*
 * dispatch.c — the request pipeline shared by every operation (see api.h),
 * and the operation tables it runs from. Authentication is in authn.c, the
 * query protocol's forms and XML in query.c, error JSON in render.c.
 */
#include "api/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/jsonread.h"
#include "core/jsonw.h"
#include "core/clock.h"
#include "core/log.h"
#include "metrics/metrics.h"
#include "quota/quota.h"
#include "crypto/uuid.h"
#include "core/banned.h"

#define MAX_SERVICES 8
/* Runs of a mutating handler whose versioned write lost a race (run_handler_retrying). */
#define API_CONFLICT_RETRIES 4
static const struct api_service *services[MAX_SERVICES];
static size_t n_services;

static bool names_key(enum api_resource r)
{
	return r == API_RES_KEY || r == API_RES_KEY_OR_ALIAS || r == API_RES_OWN_KEY ||
	       r == API_RES_CIPHERTEXT || r == API_RES_REENCRYPT;
}

/*
 * The table check: a row must say what the pipeline needs to authorize it
 * before its handler runs. Kinds that name a resource need the member
 * that names it; a row on a key needs a key-state rule other than "none",
 * and a row on no key the rule "none" (or "any"); every row a quota (or
 * API_QUOTA_NONE). The service must be able to authorize the kind.
 */
k_status api_check_operation(const struct api_service *svc, const struct api_operation *op,
			     struct kbuf *msg)
{
	const char *svc_name = svc->signing_name ? svc->signing_name : svc->target_prefix;
	const char *name = op->name ? op->name : "(unnamed)";
	const char *why = NULL;
	unsigned known = svc->resources;
	if (svc->authorize == NULL)
		known &= API_RES_BIT(API_RES_PUBLIC) | API_RES_BIT(API_RES_CUSTOM);
	if (op->name == NULL || op->name[0] == 0)
		why = "no name";
	else if (op->handler == NULL)
		why = "no handler";
	else if (op->action == NULL || strchr(op->action, ':') == NULL)
		why = "no IAM action";
	else if (op->resource == API_RES_UNSET)
		why = "no resource kind";
	else if (strcmp(api_resource_name(op->resource), "?") == 0 ||
		 (known & API_RES_BIT(op->resource)) == 0)
		why = "a resource kind the service does not authorize";
	else if ((names_key(op->resource) || op->resource == API_RES_ALIAS ||
		  op->resource == API_RES_SECRET) &&
		 (op->member == NULL || op->member[0] == 0))
		why = "no member naming its resource";
	else if (op->state == API_STATE_UNSET)
		why = "no key-state rule";
	else if (strcmp(api_state_rule_name(op->state), "?") == 0)
		why = "an unknown key-state rule";
	else if ((names_key(op->resource) || op->resource == API_RES_GRANT) &&
		 op->state == API_STATE_NA)
		why = "a key resource without a key-state rule";
	else if (op->resource == API_RES_SECRET && op->state != API_STATE_ANY &&
		 op->state != API_STATE_MANAGE)
		why = "a secret resource without a secret state rule (any or manage)";
	else if (!(op->quota.rate > 0) && op->quota.rate != API_QUOTA_NONE)
		why = "no quota";
	else if (op->max_body > API_MAX_BODY)
		why = "a body limit over API_MAX_BODY";
	if (why == NULL)
		return K_OK;
	kbuf_note(msg, "operation %s.%s has %s", svc_name, name, why);
	return K_E_VALIDATION;
}

static int cmp_op(const void *a, const void *b)
{
	return strcmp(((const struct api_operation *)a)->name,
		      ((const struct api_operation *)b)->name);
}

/*
 * Tables are written grouped by feature; the dispatcher keeps a sorted
 * copy so it can binary-search by name. A table with an incomplete row is
 * refused whole: kinko does not start with it.
 */
k_status api_register_service(const struct api_service *svc, struct kbuf *msg)
{
	if (n_services >= MAX_SERVICES) {
		kbuf_note(msg, "too many services");
		return K_E_INTERNAL;
	}
	for (size_t i = 0; i < svc->n_ops; i++)
		GUARD(api_check_operation(svc, &svc->ops[i], msg));
	struct api_service *copy = calloc(1, sizeof *copy);
	struct api_operation *ops = calloc(svc->n_ops ? svc->n_ops : 1, sizeof *ops);
	if (copy == NULL || ops == NULL) {
		free(copy);
		free(ops);
		kbuf_note(msg, "out of memory registering %s", svc->target_prefix);
		return K_E_INTERNAL;
	}
	*copy = *svc;
	memcpy(ops, svc->ops, svc->n_ops * sizeof *ops);
	qsort(ops, svc->n_ops, sizeof *ops, cmp_op);
	copy->ops = ops;
	services[n_services++] = copy;
	return K_OK;
}

void api_reset_services(void)
{
	for (size_t i = 0; i < n_services; i++) {
		free((void *)services[i]->ops);
		free((void *)services[i]);
		services[i] = NULL;
	}
	n_services = 0;
}

const struct api_service *api_service_at(size_t i)
{
	return i < n_services ? services[i] : NULL;
}

const struct api_operation *api_find_by_event_source(const char *event_source, const char *name)
{
	for (size_t i = 0; i < n_services; i++) {
		const struct api_service *svc = services[i];
		if (svc->event_source == NULL || strcmp(svc->event_source, event_source) != 0)
			continue;
		for (size_t j = 0; j < svc->n_ops; j++) {
			if (strcmp(svc->ops[j].name, name) == 0)
				return &svc->ops[j];
		}
	}
	return NULL;
}

static json_t *row_json(const struct api_operation *op)
{
	json_t *o = json_object();
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "name", json_string(op->name));
	json_object_set_new(o, "action", json_string(op->action));
	json_object_set_new(o, "resource", json_string(api_resource_name(op->resource)));
	json_object_set_new(o, "member", op->member ? json_string(op->member) : json_null());
	json_object_set_new(o, "state", json_string(api_state_rule_name(op->state)));
	json_object_set_new(o, "quotaClass", json_string(op->quota.cls ? op->quota.cls : op->name));
	json_object_set_new(o, "quotaRate",
			    op->quota.rate > 0 ? json_real(op->quota.rate) : json_null());
	json_object_set_new(o, "mutates", json_boolean(op->mutates));
	json_object_set_new(o, "keyUse", json_boolean(op->key_use));
	json_object_set_new(o, "anonymous", json_boolean(op->anonymous));
	json_object_set_new(o, "runsLong", json_boolean(op->runs_long));
	json_object_set_new(
		o, "maxBody",
		json_integer((json_int_t)(op->max_body ? op->max_body : API_DEFAULT_BODY)));
	return o;
}

json_t *api_tables_json(void)
{
	json_t *list = json_array();
	for (size_t i = 0; list != NULL && i < n_services; i++) {
		const struct api_service *svc = services[i];
		json_t *ops = json_array();
		for (size_t j = 0; ops != NULL && j < svc->n_ops; j++)
			json_array_append_new(ops, row_json(&svc->ops[j]));
		json_array_append_new(
			list,
			json_pack("{s:s, s:s, s:s, s:b, s:o*}", "targetPrefix", svc->target_prefix,
				  "signingName", svc->signing_name ? svc->signing_name : "",
				  "eventSource", svc->event_source ? svc->event_source : "",
				  "queryProtocol", svc->query_protocol, "operations", ops));
	}
	return list;
}

bool api_quota_name_known(const char *name)
{
	for (size_t i = 0; i < n_services; i++) {
		for (size_t j = 0; j < services[i]->n_ops; j++) {
			const struct api_operation *op = &services[i]->ops[j];
			if (strcmp(op->name, name) == 0 ||
			    (op->quota.cls != NULL && strcmp(op->quota.cls, name) == 0))
				return true;
		}
	}
	return false;
}

void api_request_init(struct api_request *r)
{
	memset(r, 0, sizeof *r);
	kbuf_init(&r->response, API_MAX_RESPONSE);
	r->status = 500;
}

void api_request_reuse(struct api_request *r)
{
	struct kbuf response = r->response;
	kbuf_reset(&response);
	memset(r, 0, sizeof *r);
	r->response = response;
	r->status = 500;
}

void api_request_release(struct api_request *r)
{
	kbuf_release(&r->response);
}

const struct http_header *api_header(const struct api_request *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++) {
		if (kslice_eq_nocase_cstr(r->headers[i].name, name))
			return &r->headers[i];
	}
	return NULL;
}

/*
 * Request ids are UUID-shaped like AWS's. A per-thread random seed plus a
 * counter keeps them unique without a CSPRNG call per request.
 */
static void make_request_id(char out[37])
{
	crypto_uuid_fast(out);
}

static const struct api_operation *find_op(const struct api_service *svc, struct kslice name)
{
	size_t lo = 0, hi = svc->n_ops;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *n = svc->ops[mid].name;
		size_t nl = strlen(n);
		size_t m = nl < name.len ? nl : name.len;
		int cmp = memcmp(n, name.ptr, m);
		if (cmp == 0)
			cmp = (nl > name.len) - (nl < name.len);
		if (cmp == 0)
			return &svc->ops[mid];
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const struct api_service *find_service(struct kslice target, struct kslice *opname)
{
	for (size_t i = 0; i < n_services; i++) {
		if (kslice_has_prefix(target, services[i]->target_prefix)) {
			size_t pl = strlen(services[i]->target_prefix);
			*opname = kslice_make(target.ptr + pl, target.len - pl);
			return services[i];
		}
	}
	return NULL;
}

/* The fuzz harnesses drive one handler directly through this (see api.h). */
const struct api_operation *api_find_operation(const char *target, const struct api_service **svc)
{
	struct kslice opname;
	const struct api_service *s = find_service(kslice_cstr(target), &opname);
	if (s == NULL)
		return NULL;
	if (svc != NULL)
		*svc = s;
	return find_op(s, opname);
}

/*
 * The service and row the X-Amz-Target header names, looked up on the
 * first call and kept in the request: the HTTP layer asks for the body
 * limit and the thread, then the pipeline for the row, from one lookup.
 * Routing only, before anything is authenticated; without the header
 * (the query protocol) both stay NULL.
 */
static void route(struct api_request *r)
{
	if (r->routed)
		return;
	r->routed = true;
	const struct http_header *th = api_header(r, "x-amz-target");
	if (th == NULL)
		return;
	struct kslice opname;
	r->route_service = find_service(th->value, &opname);
	if (r->route_service != NULL)
		r->route_op = find_op(r->route_service, opname);
}

/*
 * The row named by the X-Amz-Target header, if it says the operation may
 * take long. An unknown or unsigned request is answered as usual by
 * api_handle; this only picks the thread it runs on.
 */
bool api_runs_long(struct api_request *r)
{
	route(r);
	return r->route_op != NULL && r->route_op->runs_long;
}

/*
 * The body limit of the operation the request names, from its headers
 * alone, so that the HTTP layer bounds the body before buffering it: the
 * row's max_body for an X-Amz-Target it knows, API_DEFAULT_BODY otherwise
 * (the query protocol's limit, and as much as the pipeline would read
 * before refusing a target it does not know).
 */
size_t api_body_limit(struct api_request *r)
{
	route(r);
	const struct api_operation *op = r->route_op;
	return op != NULL && op->max_body != 0 ? op->max_body : API_DEFAULT_BODY;
}

static const struct api_service *find_query_service(void)
{
	for (size_t i = 0; i < n_services; i++) {
		if (services[i]->query_protocol)
			return services[i];
	}
	return NULL;
}

/*
 * Quotas, before any parsing: "If you exceed a request quota, AWS KMS
 * throttles the request, that is, it rejects an otherwise valid request
 * and returns a ThrottlingException error"
 * (https://docs.aws.amazon.com/kms/latest/developerguide/throttling.html).
 * The row names its class and rate; buckets are the service's own.
 */
static K_MUST_CHECK k_status take_quota(struct api_ctx *c)
{
	const char *svc = c->service->signing_name ? c->service->signing_name : "this service";
	ENSURE(k_ok(quota_take(c->service->target_prefix, c->principal.account, c->region,
			       c->op->name, c->op->quota.cls, c->op->quota.rate)),
	       api_fail(c, K_E_THROTTLING,
			"You have exceeded the rate at which you may call %s. Reduce the frequency "
			"of your calls.",
			svc));
	return K_OK;
}

/* Routing for the query protocol: Action= in a form body (no X-Amz-Target). */
static K_MUST_CHECK k_status run_query(struct api_ctx *c, json_t **in)
{
	struct api_request *r = c->req;
	const struct http_header *ct = api_header(r, "content-type");
	const struct api_service *svc = find_query_service();
	ENSURE(ct != NULL && kslice_has_prefix(ct->value, "application/x-www-form-urlencoded") &&
		       svc != NULL,
	       api_fail(c, K_E_UNKNOWN_OPERATION, "Missing X-Amz-Target header"));
	c->service = svc;
	ENSURE(!r->body_too_large && r->body.len <= API_DEFAULT_BODY, K_E_PAYLOAD_TOO_LARGE);
	/*
	 * An unsigned request (no Authorization header, no query string)
	 * may only name an operation whose row says so: AWS's
	 * AssumeRoleWithWebIdentity "does not require the use of AWS security
	 * credentials"; the token in its body is what is checked.
	 */
	bool anonymous = api_header(r, "authorization") == NULL && r->query.len == 0;
	if (!anonymous)
		GUARD(api_authenticate(c, NULL));
	ENSURE(k_ok(api_parse_form(r->body, in)),
	       api_fail(c, K_E_VALIDATION, "The request body is not a valid form encoding."));
	const char *action = json_string_value(json_object_get(*in, "Action"));
	ENSURE(action != NULL, api_fail(c, K_E_UNKNOWN_OPERATION, "Missing Action parameter"));
	c->op = find_op(c->service, kslice_cstr(action));
	ENSURE(c->op != NULL,
	       api_fail(c, K_E_UNKNOWN_OPERATION, "Could not find operation %.64s", action));
	if (anonymous) {
		ENSURE(c->op->anonymous,
		       api_fail(c, K_E_MISSING_AUTH, "Request is missing Authentication Token"));
		/* No credential scope names a region: STS's global endpoint is us-east-1's. */
		kstr_copy(c->region, sizeof c->region, "us-east-1");
	}
	GUARD(take_quota(c));
	return api_authorize(c, *in);
}

/*
 * One message per reason the JSON reader refused the body, so that a client
 * (or whoever reads the audit log) learns what was wrong with it. No byte
 * of the body is quoted.
 */
static const char *json_reject_reason(enum kjson_error e)
{
	switch (e) {
	case KJSON_NUL:
		return "Invalid JSON in the request body: a string holds a NUL character "
		       "(\\u0000), which is not accepted";
	case KJSON_DUPLICATE:
		return "Invalid JSON in the request body: a member name appears twice in one "
		       "object";
	case KJSON_OVERFLOW:
		return "Invalid JSON in the request body: a number does not fit in 64 bits";
	case KJSON_UTF8:
		return "Invalid JSON in the request body: it is not valid UTF-8";
	case KJSON_DEPTH:
		return "Invalid JSON in the request body: objects or arrays nest too deeply";
	case KJSON_END:
		return "Invalid JSON in the request body: it ends before its JSON value does";
	case KJSON_TRAILING:
		return "Invalid JSON in the request body: more follows its JSON value";
	case KJSON_OUT_OF_MEMORY:
		return "The request body could not be parsed";
	case KJSON_OK:
	case KJSON_SYNTAX:
	default:
		return "Invalid JSON in the request body: a syntax error";
	}
}

/*
 * The handler, run again when its write lost a race: K_E_CONFLICT means a
 * versioned write found the record changed since it was read (another
 * request, or another node of a cluster, wrote it first) and that nothing
 * was applied. The row's resource is resolved and authorized afresh, so
 * the retry sees, and is checked against, what the other writer left. After
 * API_CONFLICT_RETRIES the conflict is answered (as the service names it).
 */
static K_MUST_CHECK k_status run_handler_retrying(struct api_ctx *c, json_t *in, json_t *out)
{
	k_status rc = api_run_handler(c, in, out);
	for (int tries = 0;
	     k_is(rc, K_E_CONFLICT) && c->op->mutates && tries < API_CONFLICT_RETRIES; tries++) {
		api_release_resource(c);
		json_object_clear(out);
		kbuf_reset(&c->err_msg);
		c->authorized = false;
		rc = api_authorize(c, in);
		if (k_ok(rc))
			rc = api_run_handler(c, in, out);
	}
	return rc;
}

/* The steps 1-5 of api.h; the caller renders the result. */
static K_MUST_CHECK k_status run(struct api_ctx *c, json_t **in, json_t *out)
{
	struct api_request *r = c->req;
	/* A head or body over the HTTP layer's caps is refused before anything else. */
	ENSURE(!r->body_too_large, K_E_PAYLOAD_TOO_LARGE);
	ENSURE(kslice_eq_cstr(r->method, "POST"), K_E_NOT_FOUND_HTTP);

	const struct http_header *th = api_header(r, "x-amz-target");
	if (th == NULL) { /* the query protocol (STS) */
		GUARD(run_query(c, in));
		return api_run_handler(c, *in, out);
	}
	route(r);
	c->service = r->route_service;
	ENSURE(c->service != NULL, K_E_UNKNOWN_OPERATION);

	GUARD(api_authenticate(c, api_json_signed_headers));

	c->op = r->route_op;
	ENSURE(c->op != NULL, K_E_UNKNOWN_OPERATION);

	GUARD(take_quota(c));

	const struct http_header *ct = api_header(r, "content-type");
	ENSURE(ct != NULL && (kslice_has_prefix(ct->value, "application/x-amz-json-1.1") ||
			      kslice_has_prefix(ct->value, "application/x-amz-json-1.0")),
	       api_fail(c, K_E_SERIALIZATION,
			"Unsupported Content-Type; expected application/x-amz-json-1.1"));

	size_t limit = c->op->max_body ? c->op->max_body : API_DEFAULT_BODY;
	ENSURE(!r->body_too_large && r->body.len <= limit, K_E_PAYLOAD_TOO_LARGE);

	struct kjson_status jerr = {KJSON_OUT_OF_MEMORY, 0};
	if (r->body.len == 0)
		*in = json_object();
	else
		k_ignore(kjson_read(r->body, in, &jerr)); /* *in NULL, jerr says why */
	ENSURE(*in != NULL, api_fail(c, K_E_SERIALIZATION, "%s (at byte %zu).",
				     json_reject_reason(jerr.error), jerr.position));
	ENSURE(json_is_object(*in),
	       api_fail(c, K_E_SERIALIZATION,
			"Start of structure or map found where not expected."));
	/* Authorization of the row's resource and its key-state rule (kms/authz.h). */
	GUARD(api_authorize(c, *in));
	/*
	 * Audit: a call that changes state first leaves a durable
	 * intent record; if even that cannot be written, it fails here, before
	 * acting, so nothing changes (fail closed).
	 */
	ENSURE(k_ok(api_audit_intent(c)),
	       api_fail(c, K_E_INTERNAL,
			"The audit log cannot be written; the request was not applied."));
	return run_handler_retrying(c, *in, out);
}

/* The service's slot in the dispatcher's table (for metrics). */
static unsigned service_slot(const struct api_service *svc)
{
	for (size_t i = 0; i < n_services; i++) {
		if (services[i] == svc)
			return (unsigned)i;
	}
	return METRICS_MAX_SERVICES - 1;
}

/*
 * Audit and metrics around a call. The event is written after
 * the handler and before the response is rendered; if it cannot be
 * written the client gets an internal error instead of the result.
 */
static K_MUST_CHECK k_status audit_and_count(struct api_ctx *c, json_t *in, json_t *out,
					     k_status rc)
{
	k_status arc =
		api_audit_call(c, in, out, rc, c->err_msg.len ? kbuf_cstr(&c->err_msg) : NULL);
	if (k_failed(arc)) {
		LOG_ERROR("request %s: the audit event could not be written; failing the call",
			  c->req->request_id);
		rc = api_fail(c, K_E_INTERNAL, "The audit log cannot be written; retry later.");
	}
	return rc;
}

/* Counts the call in the metrics; returns its latency in seconds. */
static double count_request(const struct api_ctx *c, k_status rc, const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
	const char *svc = "unknown";
	unsigned ss = METRICS_MAX_SERVICES - 1, os = METRICS_MAX_OPS - 1;
	if (c->service != NULL) {
		ss = service_slot(c->service);
		svc = c->service->signing_name ? c->service->signing_name
					       : c->service->target_prefix;
	}
	if (c->op != NULL && (size_t)(c->op - c->service->ops) < METRICS_MAX_OPS - 1)
		os = (unsigned)(c->op - c->service->ops);
	metrics_request(ss, svc, os, c->op ? c->op->name : "unknown", rc, secs);
	return secs;
}

/*
 * The request line (core/log.h), written once the response is rendered:
 * who called what on which resource, the answer and how long it took.
 * Only identifiers go in it: the resource is the ARN the response names
 * (never a member of the request body), and a refused signature or an
 * unknown caller shows the access key id of the Authorization header's
 * Credential (never the signature). Refusals and throttling are warnings.
 */
static void log_request(const struct api_ctx *c, json_t *out, k_status rc, double ms)
{
	bool refused = k_is(rc, K_E_INVALID_SIGNATURE) || k_is(rc, K_E_UNRECOGNIZED_CLIENT) ||
		       k_is(rc, K_E_INCOMPLETE_SIGNATURE) || k_is(rc, K_E_EXPIRED_TOKEN);
	enum klog_level lvl = refused || k_is(rc, K_E_THROTTLING) ? KLOG_WARN : KLOG_INFO;
	if (!klog_enabled(lvl))
		return;
	char akid[SIGV4_MAX_ACCESS_KEY + 1] = "";
	const struct http_header *auth = api_header(c->req, "authorization");
	const uint8_t *cred = NULL;
	for (size_t i = 0; auth != NULL && c->principal.arn[0] == 0 && i + 11 <= auth->value.len;
	     i++) {
		if (memcmp(auth->value.ptr + i, "Credential=", 11) == 0) {
			cred = auth->value.ptr + i + 11;
			break;
		}
	}
	for (size_t n = 0; cred != NULL && n < SIGV4_MAX_ACCESS_KEY &&
			   cred + n < auth->value.ptr + auth->value.len &&
			   (isalnum(cred[n]) || cred[n] == '_' || cred[n] == '-');
	     n++)
		akid[n] = (char)cred[n];
	const char *resource = json_string_value(json_object_get(out, "ARN"));
	if (resource == NULL)
		resource = json_string_value(
			json_object_get(json_object_get(out, "KeyMetadata"), "Arn"));
	if (resource == NULL)
		resource = json_string_value(json_object_get(out, "KeyId"));
	struct klog_request line = {
		.request_id = c->req->request_id,
		.principal = c->principal.arn[0] ? c->principal.arn : NULL,
		/* A warning names the access key: from the header when no one was authenticated. */
		.access_key = akid[0] ? akid
			      : lvl == KLOG_WARN && c->principal.access_key[0]
				      ? c->principal.access_key
				      : NULL,
		.service = c->service == NULL		      ? NULL
			   : c->service->signing_name != NULL ? c->service->signing_name
							      : c->service->target_prefix,
		.operation = c->op != NULL ? c->op->name : NULL,
		.resource = resource != NULL && strncmp(resource, "arn:", 4) == 0 ? resource : NULL,
		.error_code = k_failed(rc) ? k_status_name(rc) : NULL,
		.status = c->req->status,
		.latency_ms = ms,
	};
	klog_request(lvl, &line);
}

void api_handle(struct api_request *r)
{
	struct api_ctx c;
	memset(&c, 0, sizeof c);
	c.req = r;
	c.now = kclock_now();
	kbuf_init(&c.err_msg, API_ERROR_MESSAGE_MAX);
	make_request_id(r->request_id);
	if (api_health_route(r)) {
		kbuf_release(&c.err_msg);
		return;
	}

	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	json_t *in = NULL;
	json_t *out = json_object();
	k_status rc = out ? run(&c, &in, out) : K_E_INTERNAL;
	/* The service's own error names, in the trail and on the wire alike. */
	rc = api_service_error(c.service, rc);
	rc = api_service_error(c.service, audit_and_count(&c, in, out, rc));
	bool query = c.service != NULL && c.service->query_protocol;
	if (k_ok(rc) && query) {
		api_render_query(r, &c, out);
	} else if (k_ok(rc)) {
		kbuf_reset(&r->response);
		r->status = 200;
		r->content_type = "application/x-amz-json-1.1";
		struct kjw w;
		kjw_start(&w, &r->response);
		kjw_value(&w, out);
		if (k_failed(kjw_finish(&w)))
			rc = K_E_INTERNAL;
	}
	if (k_failed(rc)) {
		if (k_status_http(rc) >= 500)
			LOG_WARN("request %s %s failed: %s", r->request_id, c.op ? c.op->name : "-",
				 k_status_name(rc));
		if (query)
			api_render_query_error(r, &c, rc,
					       c.err_msg.len ? kbuf_cstr(&c.err_msg) : NULL);
		else
			api_render_error(r, rc, c.err_msg.len ? kbuf_cstr(&c.err_msg) : NULL);
	}
	double secs = count_request(&c, rc, &t0);
	log_request(&c, k_ok(rc) ? out : NULL, rc, secs * 1000.0);
	api_release_resource(&c);
	json_decref(in);
	json_decref(out);
	kbuf_release(&c.err_msg);
}
