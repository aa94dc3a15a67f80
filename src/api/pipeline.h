/*
 * pipeline.h — the request pipeline: what the HTTP layer calls for each
 * request, and the registry of the services' operation tables.
 *
 * The HTTP layer fills a struct api_request (req/req.h: raw method, path,
 * query, headers and body) and calls api_handle(). api_handle() runs, in
 * this order and for every operation alike:
 *   1. the service from X-Amz-Target (or the query protocol's Action);
 *   2. SigV4 authentication (auth/sigv4 + config identities);
 *   3. the operation from the service's table (api_operation rows);
 *   4. the JSON body (bounded by the operation's body limit, which the
 *      HTTP layer applies from the head: api_body_limit), read by
 *      core/jsonread.h;
 *   5. from the operation's row: the quota, the authorization of its
 *      resource (resolved and checked against the row's key-state rule,
 *      left in c->resource), then the handler, which validates its
 *      members, acts, and fills the output object;
 *   6. the audit event, with what the trail records handed over as data
 *      (audit/audit.h), then the response: output JSON, or error JSON
 *      from the error table.
 * The services sit below this: they include req/req.h, never this header,
 * and hand their tables to the command that starts kinko, which registers
 * them here.
 */
#ifndef KINKO_API_PIPELINE_H
#define KINKO_API_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "core/buf.h"
#include "core/result.h"
#include "req/req.h"

struct audit_call_info; /* audit/audit.h */
struct audit_op_name;

/* Initializes the request (call before filling it) and releases it after. */
void api_request_init(struct api_request *r);
void api_request_release(struct api_request *r);
/*
 * Empties an initialized request for the next one, as api_request_init
 * does, but keeps the response buffer's allocation (its bytes wiped), so
 * that a request thread answers without allocating it again.
 */
void api_request_reuse(struct api_request *r);

/* Runs the whole pipeline; the response is in r->status/response/content_type. */
void api_handle(struct api_request *r);

/*
 * Liveness and readiness (api/health.c): GET /health and GET /ready,
 * answered before authentication and never audited. api_health_route
 * answers them (true) or leaves the request alone (false); api_handle
 * calls it first. A readiness probe returns K_OK when its dependency
 * works; it must be quick (it runs on a request thread).
 */
bool api_health_route(struct api_request *r);
void api_health_add(const char *name, k_status (*probe)(void *arg), void *arg);
void api_health_reset(void);

/* Finds a header by name (case-insensitive); NULL if absent. */
const struct http_header *api_header(const struct api_request *r, const char *name);

/*
 * Registers a service table (done once at start, before serving). Every
 * row is checked first (api_check_operation); a table with an incomplete
 * row is refused (K_E_VALIDATION, the row named in msg) and kinko must not
 * start.
 */
K_MUST_CHECK k_status api_register_service(const struct api_service *svc, struct kbuf *msg);
/*
 * K_OK when a row says everything the pipeline needs: a name, a handler,
 * an IAM action, a resource kind the service authorizes, a member for the
 * kinds that name one, a key-state rule, and a quota. Otherwise
 * K_E_VALIDATION with "SERVICE.OPERATION: what is missing" in msg.
 */
K_MUST_CHECK k_status api_check_operation(const struct api_service *svc,
					  const struct api_operation *op, struct kbuf *msg);
/* Forgets every registered service (tests). */
void api_reset_services(void);
/* The registered services, in registration order; NULL past the end. */
const struct api_service *api_service_at(size_t i);
/* The row of an operation by the service's event source ("kms.amazonaws.com") and name. */
const struct api_operation *api_find_by_event_source(const char *event_source, const char *name);
/*
 * The registered tables as JSON (`kinko ops --json`): a list of services,
 * each with its rows (name, action, resource, member, state, quotaClass,
 * quotaRate, mutates, keyUse, anonymous, runsLong, maxBody). The caller owns the result.
 */
json_t *api_tables_json(void);
/* Whether a name is an operation or a quota class of a registered service (for --quota). */
bool api_quota_name_known(const char *name);
/*
 * What the audit trail records of the call in c, as data: its caller, its
 * row's name, mutates and key_use, its region, request id, source address,
 * User-Agent and transport. The strings are borrowed from c (valid while c
 * is); c->req must be set.
 */
void api_audit_info(const struct api_ctx *c, struct audit_call_info *out);
/*
 * The registered operations whose successes are uses of their key (the
 * rows' key_use), for audit_options.key_use_ops: writes up to max of them
 * to out and returns how many there are (more than max: call again with
 * room for all). The names are the tables' and live as long as they do.
 */
size_t api_key_use_ops(struct audit_op_name *out, size_t max);

/*
 * The registered operation for an X-Amz-Target value
 * ("TrentService.Encrypt"), and its service in *svc (may be NULL); NULL
 * if none. For the fuzz harnesses that call one handler directly.
 */
const struct api_operation *api_find_operation(const char *target, const struct api_service **svc);

/*
 * Whether the operation the request names (its X-Amz-Target) has a row
 * that says it may take long (runs_long: it generates an RSA key, say),
 * so that the HTTP layer runs it off its request threads. Reads the
 * headers only; false for anything else, which api_handle answers.
 */
bool api_runs_long(struct api_request *r);

/*
 * The largest body the operation the request names takes (its row's
 * max_body; API_DEFAULT_BODY when the headers name no row it knows, or
 * the query protocol). Reads the headers only, before the body is
 * buffered: the HTTP layer refuses a longer body from the head.
 */
size_t api_body_limit(struct api_request *r);

#endif
