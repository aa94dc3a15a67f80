/*
 * metrics.h — counters and histograms for the Prometheus text endpoint
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Every counter is a relaxed atomic in a fixed table indexed by
 * (service slot, operation slot, error code), so the request path takes
 * no lock: one atomic add for the count, two for the latency histogram.
 * Gauges that describe stored state (keys per state and spec, secrets)
 * are computed when /metrics is scraped, by the sources registered here.
 */
#ifndef KINKO_METRICS_METRICS_H
#define KINKO_METRICS_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"

#define METRICS_MAX_SERVICES 8
#define METRICS_MAX_OPS 96
/* The rendered /metrics page (every series of every operation). */
#define METRICS_PAGE_MAX (32u << 20)

/*
 * Counts one finished request. svc_slot/op_slot index the dispatcher's
 * tables (op_slot METRICS_MAX_OPS-1 collects calls to unknown operations);
 * names are static strings, remembered for rendering. `seconds` is the
 * wall time from arrival to the response.
 */
void metrics_request(unsigned svc_slot, const char *svc_name, unsigned op_slot, const char *op_name,
		     k_status code, double seconds);
void metrics_throttled(void);
void metrics_audit_failure(void);
void metrics_rotation(bool ok);

/*
 * A gauge source appends complete Prometheus lines (with # HELP/# TYPE)
 * when /metrics is scraped. Register before serving.
 */
typedef void (*metrics_source)(struct kbuf *out);
void metrics_add_source(metrics_source fn);
/*
 * Registers the gauges computed from the store (keys per state and spec,
 * secrets); st is kept (borrowed) for the life of the process.
 */
struct storage;
void metrics_register_store_gauges(struct storage *st);

/* The whole exposition text (appended to out). */
K_MUST_CHECK k_status metrics_render(struct kbuf *out);

/*
 * The /metrics listener: a separate small HTTP server on host:port
 * (GET /metrics only). *bound_port gets the port bound (port 0: any).
 */
K_MUST_CHECK k_status metrics_http_start(const char *host, unsigned port, unsigned *bound_port);
void metrics_http_stop(void);

#endif
