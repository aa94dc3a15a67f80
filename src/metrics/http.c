/*
 * http.c — the /metrics listener: its own small libmicrohttpd daemon on
 * its own address (--metrics-listen), so scraping can be kept off the
 * API's network. GET /metrics only; no authentication (bind it to a
 * private address).
 */
#include "metrics/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/banned.h"

static struct MHD_Daemon *daemon_;

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *ctype,
				 const void *p, size_t n)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(n, (void *)(uintptr_t)p, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", ctype);
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	(void)cls;
	(void)version;
	(void)upload_data;
	if (*con_cls == NULL) {
		*con_cls = conn;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/metrics") != 0)
		return send_text(conn, 404, "text/plain", "not found\n", 10);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return send_text(conn, 405, "text/plain", "method not allowed\n", 19);
	struct kbuf b;
	kbuf_init(&b, METRICS_PAGE_MAX);
	enum MHD_Result ret;
	if (k_ok(metrics_render(&b)))
		ret = send_text(conn, 200, "text/plain; version=0.0.4; charset=utf-8", b.ptr,
				b.len);
	else
		ret = send_text(conn, 500, "text/plain", "metrics too large\n", 18);
	kbuf_release(&b);
	return ret;
}

k_status metrics_http_start(const char *host, unsigned port, unsigned *bound_port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		flags |= MHD_USE_IPv6;
	} else {
		LOG_ERROR("metrics: cannot parse listen address %s", host);
		return K_E_VALIDATION;
	}
	daemon_ = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, NULL,
				   MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_CONNECTION_LIMIT, 64u,
				   MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
	ENSURE(daemon_ != NULL, K_E_INTERNAL);
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
	*bound_port = di != NULL ? di->port : port;
	return K_OK;
}

void metrics_http_stop(void)
{
	if (daemon_ != NULL)
		MHD_stop_daemon(daemon_);
	daemon_ = NULL;
}
