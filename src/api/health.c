/*
 * health.c — the unauthenticated liveness and readiness answers for load
 * balancers and orchestrators (api/pipeline.h).
 *
 *   GET /health   200 {"status":"ok"} while the process serves requests.
 *   GET /ready    200 {"status":"ready","checks":{...}} when every probe
 *                 passes; 503 {"status":"not ready","checks":{...}} naming
 *                 the failing ones.
 *
 * The answers name only the probes and "ok" or "failing": no version, no
 * path, no error text, no count. Probes are registered at start (the
 * store, by the command that opened it); the audit trail's probe is
 * built in: failing while a write of the trail failed within the last
 * API_READY_AUDIT_WINDOW_S seconds (calls fail closed meanwhile).
 */
#include "api/pipeline.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "core/jsonw.h"
#include "core/banned.h"

#define API_MAX_PROBES 8
#define API_READY_AUDIT_WINDOW_S 10

struct probe {
	const char *name;
	K_MUST_CHECK k_status (*fn)(void *arg);
	void *arg;
};

static struct probe probes[API_MAX_PROBES];
static size_t n_probes;

void api_health_add(const char *name, k_status (*probe)(void *arg), void *arg)
{
	if (n_probes < API_MAX_PROBES)
		probes[n_probes++] = (struct probe){.name = name, .fn = probe, .arg = arg};
}

void api_health_reset(void)
{
	n_probes = 0;
}

static pthread_mutex_t audit_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t audit_seen;    /* failures counted at the last probe */
static time_t audit_failed_at; /* monotonic seconds of the last increase seen */

/* The audit trail: failing when its failure count rose within the window. */
static bool audit_ok(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t n = audit_write_failures();
	pthread_mutex_lock(&audit_lock);
	if (n != audit_seen) {
		audit_seen = n;
		audit_failed_at = now.tv_sec;
	}
	bool ok = audit_failed_at == 0 || now.tv_sec - audit_failed_at >= API_READY_AUDIT_WINDOW_S;
	pthread_mutex_unlock(&audit_lock);
	return ok;
}

static void answer(struct api_request *r, int status, const char *body)
{
	kbuf_reset(&r->response);
	if (k_failed(kbuf_append_str(&r->response, body)))
		status = 500;
	r->status = status;
	r->content_type = "application/json";
}

static void ready(struct api_request *r)
{
	char body[512];
	size_t len = 0;
	bool all = true;
	len += (size_t)snprintf(body + len, sizeof body - len, "{\"checks\":{");
	for (size_t i = 0; i <= n_probes && len < sizeof body; i++) {
		const char *name = i < n_probes ? probes[i].name : "audit";
		bool ok = i < n_probes ? k_ok(probes[i].fn(probes[i].arg)) : audit_ok();
		all = all && ok;
		len += (size_t)snprintf(body + len, sizeof body - len, "%s\"%s\":\"%s\"",
					i ? "," : "", name, ok ? "ok" : "failing");
	}
	if (len < sizeof body)
		snprintf(body + len, sizeof body - len, "},\"status\":\"%s\"}",
			 all ? "ready" : "not ready");
	answer(r, all ? 200 : 503, body);
}

bool api_health_route(struct api_request *r)
{
	if (!kslice_eq_cstr(r->method, "GET") && !kslice_eq_cstr(r->method, "HEAD"))
		return false;
	if (kslice_eq_cstr(r->path, "/health")) {
		answer(r, 200, "{\"status\":\"ok\"}");
		return true;
	}
	if (kslice_eq_cstr(r->path, "/ready")) {
		ready(r);
		return true;
	}
	return false;
}
