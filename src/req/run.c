/*
 * run.c — running one row once its caller is known: the service's
 * authorize step, the handler, the release of what was resolved
 * (req/req.h). The pipeline runs requests through these; a service runs
 * work on an owner's behalf (scheduled rotation) through api_call.
 */
#include "req/req.h"

#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/banned.h"

/* A row or handler that skipped its check: refused, never answered as a success. */
static K_MUST_CHECK k_status fail_closed(struct api_ctx *c)
{
	LOG_ERROR("operation %s ran without authorizing its resource; refused", c->op->name);
	return api_fail(c, K_E_INTERNAL, "The request was not authorized.");
}

/*
 * Authorization from the row, before the handler: the service's authorize
 * step checks the row's resource with the row's action and applies its
 * state rule (kms/authz.h, secrets/authz.c). Rows on resources the
 * handler names itself (CUSTOM) are authorized as the handler's checked
 * resolver finds them; every other row must leave here authorized.
 */
k_status api_authorize(struct api_ctx *c, json_t *in)
{
	const struct api_operation *op = c->op;
	if (op->resource == API_RES_PUBLIC)
		c->authorized = true;
	else if (c->service->authorize != NULL)
		GUARD(c->service->authorize(c, in));
	ENSURE(c->authorized || op->resource == API_RES_CUSTOM, fail_closed(c));
	return K_OK;
}

/* The handler; a success that no check authorized is refused (fail closed). */
k_status api_run_handler(struct api_ctx *c, json_t *in, json_t *out)
{
	k_status rc = c->op->handler(c, in, out);
	ENSURE(k_failed(rc) || c->authorized, fail_closed(c));
	return rc;
}

void api_release_resource(struct api_ctx *c)
{
	if (c->resource != NULL && c->service != NULL && c->service->release_resource != NULL)
		c->service->release_resource(c);
	c->resource = NULL;
}

k_status api_call(struct api_ctx *c, json_t *in, json_t *out)
{
	k_status rc = api_authorize(c, in);
	if (k_ok(rc))
		rc = api_run_handler(c, in, out);
	api_release_resource(c);
	return rc;
}

const struct api_operation *api_service_op(const struct api_service *svc, const char *name)
{
	for (size_t i = 0; svc != NULL && i < svc->n_ops; i++) {
		if (strcmp(svc->ops[i].name, name) == 0)
			return &svc->ops[i];
	}
	return NULL;
}

int64_t api_now_ms(const struct api_ctx *c)
{
	return kclock_ms_within(c->now);
}
