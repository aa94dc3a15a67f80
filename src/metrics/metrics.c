/*
 * metrics.c — lock-free request counters and latency histograms, and
 * their Prometheus text rendering (see metrics.h).
 */
#include "metrics/metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/secret.h"
#include "core/banned.h"

#define S METRICS_MAX_SERVICES
#define O METRICS_MAX_OPS
#define NB 14
#define MAX_SOURCES 16

static const double bounds[NB] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				  0.1,	  0.25,	 0.5,	 1.0,	2.5,  5.0,   10.0};

static _Atomic uint64_t counts[S][O][K_STATUS_COUNT];
static _Atomic uint64_t buckets[S][O][NB + 1]; /* last: +Inf only */
static _Atomic uint64_t sum_ns[S][O];
static _Atomic(const char *) svc_names[S];
static _Atomic(const char *) op_names[S][O];
static _Atomic uint64_t throttled, audit_failures, rotations_ok, rotations_failed;
static metrics_source sources[MAX_SOURCES];
static size_t n_sources;

void metrics_request(unsigned s, const char *svc, unsigned o, const char *op, k_status code,
		     double seconds)
{
	if (s >= S || o >= O || (unsigned)k_code(code) >= K_STATUS_COUNT)
		return;
	if (atomic_load_explicit(&op_names[s][o], memory_order_relaxed) == NULL) {
		atomic_store(&svc_names[s], svc);
		atomic_store(&op_names[s][o], op);
	}
	atomic_fetch_add_explicit(&counts[s][o][k_code(code)], 1, memory_order_relaxed);
	size_t b = 0;
	while (b < NB && seconds > bounds[b])
		b++;
	atomic_fetch_add_explicit(&buckets[s][o][b], 1, memory_order_relaxed);
	double ns = seconds * 1e9;
	atomic_fetch_add_explicit(&sum_ns[s][o], ns > 0 ? (uint64_t)ns : 0, memory_order_relaxed);
}

void metrics_throttled(void)
{
	atomic_fetch_add_explicit(&throttled, 1, memory_order_relaxed);
}

void metrics_audit_failure(void)
{
	atomic_fetch_add_explicit(&audit_failures, 1, memory_order_relaxed);
}

void metrics_rotation(bool ok)
{
	atomic_fetch_add_explicit(ok ? &rotations_ok : &rotations_failed, 1, memory_order_relaxed);
}

void metrics_add_source(metrics_source fn)
{
	if (n_sources < MAX_SOURCES)
		sources[n_sources++] = fn;
}

static uint64_t ld(_Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

/* The exception name of the code numbered c (the error series walk every code). */
static const char *code_name(int c)
{
	return k_status_name((k_status){(enum k_code)c});
}

/* kinko_requests_total: one series per operation seen. */
static K_MUST_CHECK k_status render_requests(struct kbuf *b)
{
	GUARD(kbuf_append_str(b,
			      "# HELP kinko_requests_total API requests by service and operation.\n"
			      "# TYPE kinko_requests_total counter\n"));
	for (unsigned s = 0; s < S; s++) {
		for (unsigned o = 0; o < O; o++) {
			const char *op = atomic_load(&op_names[s][o]);
			if (op == NULL)
				continue;
			uint64_t total = 0;
			for (int c = 0; c < K_STATUS_COUNT; c++)
				total += ld(&counts[s][o][c]);
			GUARD(kbuf_appendf(
				b, "kinko_requests_total{service=\"%s\",operation=\"%s\"} %llu\n",
				atomic_load(&svc_names[s]), op, (unsigned long long)total));
		}
	}
	return K_OK;
}

/*
 * An operation's kinko_errors_total series: several codes share an
 * exception name, so each name's first code counts them all.
 */
static K_MUST_CHECK k_status render_op_errors(struct kbuf *b, unsigned s, unsigned o,
					      const char *op)
{
	for (int c = 1; c < K_STATUS_COUNT; c++) {
		const char *name = code_name(c);
		bool first = true;
		for (int p = 1; p < c; p++) {
			if (strcmp(code_name(p), name) == 0)
				first = false;
		}
		if (!first)
			continue;
		uint64_t n = 0;
		for (int q = c; q < K_STATUS_COUNT; q++) {
			if (strcmp(code_name(q), name) == 0)
				n += ld(&counts[s][o][q]);
		}
		if (n == 0)
			continue;
		GUARD(kbuf_appendf(b,
				   "kinko_errors_total{service=\"%s\",operation=\"%s\",error_code="
				   "\"%s\"} %llu\n",
				   atomic_load(&svc_names[s]), op, name, (unsigned long long)n));
	}
	return K_OK;
}

static K_MUST_CHECK k_status render_errors(struct kbuf *b)
{
	GUARD(kbuf_append_str(b,
			      "# HELP kinko_errors_total API requests that failed, by error code.\n"
			      "# TYPE kinko_errors_total counter\n"));
	for (unsigned s = 0; s < S; s++) {
		for (unsigned o = 0; o < O; o++) {
			const char *op = atomic_load(&op_names[s][o]);
			if (op != NULL)
				GUARD(render_op_errors(b, s, o, op));
		}
	}
	return K_OK;
}

/* kinko_request_duration_seconds: a cumulative histogram per operation. */
static K_MUST_CHECK k_status render_durations(struct kbuf *b)
{
	GUARD(kbuf_append_str(
		b, "# HELP kinko_request_duration_seconds Time from arrival to response.\n"
		   "# TYPE kinko_request_duration_seconds histogram\n"));
	for (unsigned s = 0; s < S; s++) {
		for (unsigned o = 0; o < O; o++) {
			const char *op = atomic_load(&op_names[s][o]);
			if (op == NULL)
				continue;
			const char *svc = atomic_load(&svc_names[s]);
			uint64_t cum = 0;
			for (int k = 0; k < NB; k++) {
				cum += ld(&buckets[s][o][k]);
				GUARD(kbuf_appendf(b,
						   "kinko_request_duration_seconds_bucket{service="
						   "\"%s\",operation=\"%s\",le=\"%g\"} %llu\n",
						   svc, op, bounds[k], (unsigned long long)cum));
			}
			cum += ld(&buckets[s][o][NB]);
			GUARD(kbuf_appendf(b,
					   "kinko_request_duration_seconds_bucket{service=\"%s\","
					   "operation=\"%s\",le=\"+Inf\"} %llu\n"
					   "kinko_request_duration_seconds_sum{service=\"%s\","
					   "operation=\"%s\"} %.9f\n"
					   "kinko_request_duration_seconds_count{service=\"%s\","
					   "operation=\"%s\"} %llu\n",
					   svc, op, (unsigned long long)cum, svc, op,
					   (double)ld(&sum_ns[s][o]) / 1e9, svc, op,
					   (unsigned long long)cum));
		}
	}
	return K_OK;
}

k_status metrics_render(struct kbuf *b)
{
	GUARD(render_requests(b));
	GUARD(render_errors(b));
	GUARD(render_durations(b));
	GUARD(kbuf_appendf(
		b,
		"# HELP kinko_throttled_requests_total Requests refused with ThrottlingException.\n"
		"# TYPE kinko_throttled_requests_total counter\n"
		"kinko_throttled_requests_total %llu\n"
		"# HELP kinko_audit_write_failures_total Audit log writes that failed (the calls "
		"failed closed).\n"
		"# TYPE kinko_audit_write_failures_total counter\n"
		"kinko_audit_write_failures_total %llu\n"
		"# HELP kinko_key_rotations_total Automatic and on-demand key rotations, by "
		"result.\n"
		"# TYPE kinko_key_rotations_total counter\n"
		"kinko_key_rotations_total{result=\"success\"} %llu\n"
		"kinko_key_rotations_total{result=\"failure\"} %llu\n",
		(unsigned long long)ld(&throttled), (unsigned long long)ld(&audit_failures),
		(unsigned long long)ld(&rotations_ok), (unsigned long long)ld(&rotations_failed)));
	GUARD(kbuf_appendf(
		b,
		"# HELP kinko_secret_locked_bytes Bytes of key material memory locked (mlock) "
		"now.\n"
		"# TYPE kinko_secret_locked_bytes gauge\n"
		"kinko_secret_locked_bytes %lu\n"
		"# HELP kinko_secret_mlock_failures_total Locks of key material memory that failed "
		"(RLIMIT_MEMLOCK too low: that memory may be swapped).\n"
		"# TYPE kinko_secret_mlock_failures_total counter\n"
		"kinko_secret_mlock_failures_total %lu\n",
		ksecret_locked_bytes(), ksecret_mlock_failures()));
	for (size_t i = 0; i < n_sources; i++)
		sources[i](b);
	return K_OK;
}
