/*
 * dispatch.c — the request pipeline shared by every operation (see api.h).
 */
#include "api/api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/rand.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/json.h"
#include "core/banned.h"

#define MAX_SERVICES 8
static const struct api_service *services[MAX_SERVICES];
static size_t n_services;

static int cmp_op(const void *a, const void *b)
{
	return strcmp(((const struct api_operation *)a)->name, ((const struct api_operation *)b)->name);
}

/*
 * Tables are written grouped by feature; the dispatcher keeps a sorted
 * copy so it can binary-search by name.
 */
void api_register_service(const struct api_service *svc)
{
	if (n_services >= MAX_SERVICES)
		return;
	struct api_service *copy = calloc(1, sizeof *copy);
	struct api_operation *ops = calloc(svc->n_ops ? svc->n_ops : 1, sizeof *ops);
	if (copy == NULL || ops == NULL) {
		free(copy);
		free(ops);
		LOG_ERROR("out of memory registering %s", svc->target_prefix);
		return;
	}
	*copy = *svc;
	memcpy(ops, svc->ops, svc->n_ops * sizeof *ops);
	qsort(ops, svc->n_ops, sizeof *ops, cmp_op);
	copy->ops = ops;
	services[n_services++] = copy;
}

void api_request_init(struct api_request *r)
{
	memset(r, 0, sizeof *r);
	kbuf_init(&r->response, 8u << 20);
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

k_status api_fail(struct api_ctx *c, k_status code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	kbuf_reset(&c->err_msg);
	if (n > 0 && kbuf_append_str(&c->err_msg, msg) != K_OK)
		kbuf_reset(&c->err_msg);
	return code;
}

/*
 * Request ids are UUID-shaped like AWS's. A per-thread random seed plus a
 * counter keeps them unique without a CSPRNG call per request.
 */
static void make_request_id(char out[37])
{
	static __thread uint8_t seed[16];
	static __thread uint64_t counter;
	static __thread int seeded;
	if (!seeded) {
		if (RAND_bytes(seed, sizeof seed) != 1)
			memset(seed, 0x5a, sizeof seed);
		seeded = 1;
	}
	uint8_t b[16];
	memcpy(b, seed, 16);
	uint64_t n = ++counter;
	for (int i = 0; i < 8; i++)
		b[8 + i] ^= (uint8_t)(n >> (8 * i));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
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

/* Writes {"__type":..., "message":...} for an error code. */
static void render_error(struct api_request *r, k_status code, const char *msg)
{
	kbuf_reset(&r->response);
	r->status = k_status_http(code);
	r->content_type = "application/x-amz-json-1.1";
	json_t *o = json_object();
	if (o == NULL)
		return;
	json_object_set_new(o, "__type", json_string(k_status_name(code)));
	if (msg != NULL && msg[0] != 0)
		json_object_set_new(o, "message", json_string(msg));
	else if (k_status_message(code)[0] != 0)
		json_object_set_new(o, "message", json_string(k_status_message(code)));
	char *s = json_dumps(o, JSON_COMPACT);
	if (s != NULL) {
		if (kbuf_append_str(&r->response, s) != K_OK)
			kbuf_reset(&r->response);
		kjson_free(s);
	}
	json_decref(o);
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
	return kbuf_append((struct kbuf *)data, buffer, size) == K_OK ? 0 : -1;
}

/* Authenticates the request and fills the context's principal and region. */
static k_status authenticate(struct api_ctx *c)
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
	const struct identity *id = NULL;
	k_status rc = config_lookup_access_key(auth.access_key, &auth.security_token, &id);
	if (rc != K_OK)
		return rc;
	/* The server's real clock, never the test clock: clients sign with real time. */
	GUARD(sigv4_verify(&sr, &auth, identity_secret(id), c->service->signing_name,
			   (int64_t)time(NULL), &c->err_msg));
	identity_principal(id, auth.access_key, &c->principal);
	snprintf(c->region, sizeof c->region, "%s", auth.region);
	snprintf(c->ns, sizeof c->ns, "%s:%s", c->principal.account, c->region);
	return K_OK;
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

/* The steps 1-5 of api.h; the caller renders the result. */
static k_status run(struct api_ctx *c, json_t **in, json_t *out)
{
	struct api_request *r = c->req;
	ENSURE(kslice_eq_cstr(r->method, "POST"), K_E_NOT_FOUND_HTTP);

	const struct http_header *th = api_header(r, "x-amz-target");
	ENSURE(th != NULL, api_fail(c, K_E_UNKNOWN_OPERATION, "Missing X-Amz-Target header"));
	struct kslice opname;
	c->service = find_service(th->value, &opname);
	ENSURE(c->service != NULL, K_E_UNKNOWN_OPERATION);

	GUARD(authenticate(c));

	c->op = find_op(c->service, opname);
	ENSURE(c->op != NULL, K_E_UNKNOWN_OPERATION);

	const struct http_header *ct = api_header(r, "content-type");
	ENSURE(ct != NULL && (kslice_has_prefix(ct->value, "application/x-amz-json-1.1") ||
			      kslice_has_prefix(ct->value, "application/x-amz-json-1.0")),
	       api_fail(c, K_E_SERIALIZATION, "Unsupported Content-Type; expected application/x-amz-json-1.1"));

	size_t limit = c->op->max_body ? c->op->max_body : API_DEFAULT_BODY;
	ENSURE(!r->body_too_large && r->body.len <= limit, K_E_PAYLOAD_TOO_LARGE);

	json_error_t jerr;
	if (r->body.len == 0)
		*in = json_object();
	else
		*in = json_loadb((const char *)r->body.ptr, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
	ENSURE(*in != NULL && json_is_object(*in),
	       api_fail(c, K_E_SERIALIZATION, "Start of structure or map found where not expected."));
	return c->op->handler(c, *in, out);
}

void api_handle(struct api_request *r)
{
	struct api_ctx c;
	memset(&c, 0, sizeof c);
	c.req = r;
	c.now = kclock_now();
	kbuf_init(&c.err_msg, 2048);
	make_request_id(r->request_id);

	json_t *in = NULL;
	json_t *out = json_object();
	k_status rc = out ? run(&c, &in, out) : K_E_INTERNAL;
	if (rc == K_OK) {
		kbuf_reset(&r->response);
		r->status = 200;
		r->content_type = "application/x-amz-json-1.1";
		if (json_dump_callback(out, dump_cb, &r->response, JSON_COMPACT) != 0)
			rc = K_E_INTERNAL;
	}
	if (rc != K_OK) {
		if (k_status_http(rc) >= 500)
			LOG_WARN("request %s %s failed: %s", r->request_id,
				 c.op ? c.op->name : "-", k_status_name(rc));
		render_error(r, rc, c.err_msg.len ? kbuf_cstr(&c.err_msg) : NULL);
	}
	json_decref(in);
	json_decref(out);
	kbuf_release(&c.err_msg);
}
