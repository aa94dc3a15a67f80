/*
 * trail.c — what the audit trail records of a call, handed to it as data:
 * the pipeline copies the caller, the operation's row facts and the
 * request's origin out of its context into a struct audit_call_info, so
 * that audit/ never reads the pipeline's types. See internal.h.
 */
#include "api/internal.h"

#include <string.h>

#include "audit/audit.h"
#include "core/banned.h"

void api_audit_info(const struct api_ctx *c, struct audit_call_info *out)
{
	const struct http_header *ua = api_header(c->req, "user-agent");
	*out = (struct audit_call_info){
		.who = {.account = c->principal.account,
			.arn = c->principal.arn,
			.type = c->principal.type,
			.principal_id = c->principal.principal_id,
			.access_key = c->principal.access_key},
		.event_source = c->service != NULL ? c->service->event_source : NULL,
		.event_name = c->op != NULL ? c->op->name : NULL,
		/* A call of no known operation is not read-only. */
		.mutates = c->op == NULL || c->op->mutates,
		.key_use = c->op != NULL && c->op->key_use,
		.region = c->region,
		.request_id = c->req->request_id,
		.source_ip = c->req->source_ip,
		.user_agent = ua != NULL ? ua->value : kslice_make("", 0),
		.secure = c->req->secure,
		.now = c->now,
	};
}

k_status api_audit_intent(const struct api_ctx *c)
{
	struct audit_call_info info;
	api_audit_info(c, &info);
	return audit_intent(&info);
}

k_status api_audit_call(const struct api_ctx *c, json_t *in, json_t *out, k_status rc,
			const char *err_msg)
{
	struct audit_call_info info;
	api_audit_info(c, &info);
	return audit_call(&info, in, out, rc, err_msg);
}

size_t api_key_use_ops(struct audit_op_name *out, size_t max)
{
	size_t n = 0;
	const struct api_service *svc;
	for (size_t i = 0; (svc = api_service_at(i)) != NULL; i++) {
		for (size_t j = 0; j < svc->n_ops; j++) {
			if (!svc->ops[j].key_use || svc->event_source == NULL)
				continue;
			if (n < max)
				out[n] =
					(struct audit_op_name){svc->event_source, svc->ops[j].name};
			n++;
		}
	}
	return n;
}
