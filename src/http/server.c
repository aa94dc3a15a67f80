/*
 * server.c — libmicrohttpd glue (see server.h).
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/banned.h"

struct http_server {
	struct MHD_Daemon *d;
};

/* Per-request state, from the first callback to the completion notice. */
struct conn_state {
	struct api_request req;
	struct kbuf body;
	struct kbuf query;
	char method[16];
	size_t header_bytes;
};

#define MAX_HEADER_BYTES (16u << 10)

struct header_walk {
	struct conn_state *st;
	bool overflow;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
				     size_t key_size, const char *value, size_t value_size)
{
	struct header_walk *w = cls;
	struct api_request *r = &w->st->req;
	w->st->header_bytes += key_size + value_size;
	if (r->n_headers >= API_MAX_HEADERS || w->st->header_bytes > MAX_HEADER_BYTES) {
		w->overflow = true;
		return MHD_NO;
	}
	r->headers[r->n_headers].name = kslice_make(key, key_size);
	r->headers[r->n_headers].value = kslice_make(value ? value : "", value ? value_size : 0);
	r->n_headers++;
	return MHD_YES;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				  size_t key_size, const char *value, size_t value_size)
{
	struct kbuf *q = cls;
	if (q->len > 0 && kbuf_append_byte(q, '&') != K_OK)
		return MHD_NO;
	if (kbuf_append(q, key, key_size) != K_OK)
		return MHD_NO;
	if (value != NULL) {
		if (kbuf_append_byte(q, '=') != K_OK || kbuf_append(q, value, value_size) != K_OK)
			return MHD_NO;
	}
	return MHD_YES;
}

/* Keep the URL and query arguments exactly as sent: SigV4 signs the raw form. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
}

static enum MHD_Result reply(struct MHD_Connection *conn, struct api_request *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(r->response.len, r->response.ptr,
								    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type",
				r->content_type ? r->content_type : "application/x-amz-json-1.1");
	MHD_add_response_header(resp, "x-amzn-RequestId", r->request_id);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void client_ip(struct MHD_Connection *conn, char *out, size_t n)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(out, n, "unknown");
	if (ci == NULL || ci->client_addr == NULL)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  (socklen_t)n);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
			  (socklen_t)n);
}

/*
 * The access handler is called first with the headers, then once per
 * chunk of body, then once more with no data: that last call runs the API.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct conn_state *st = *con_cls;
	if (st == NULL) {
		st = calloc(1, sizeof *st);
		if (st == NULL)
			return MHD_NO;
		api_request_init(&st->req);
		kbuf_init(&st->body, API_MAX_BODY);
		kbuf_init(&st->query, 8192);
		snprintf(st->method, sizeof st->method, "%s", method);
		*con_cls = st;
		struct header_walk w = {st, false};
		MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect_header, &w);
		if (w.overflow)
			st->req.body_too_large = true; /* refused below, after draining */
		MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &st->query);
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!st->req.body_too_large &&
		    kbuf_append(&st->body, upload_data, *upload_data_size) != K_OK) {
			st->req.body_too_large = true;
			kbuf_release(&st->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	struct api_request *r = &st->req;
	r->method = kslice_cstr(st->method);
	r->path = kslice_cstr(url);
	r->query = kbuf_slice(&st->query);
	r->body = kbuf_slice(&st->body);
	client_ip(conn, r->source_ip, sizeof r->source_ip);
	api_handle(r);
	return reply(conn, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn_state *st = *con_cls;
	if (st == NULL)
		return;
	api_request_release(&st->req);
	kbuf_release(&st->body);
	kbuf_release(&st->query);
	free(st);
	*con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	vsnprintf(line, sizeof line, fmt, ap);
	size_t n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = 0;
	LOG_DEBUG("http: %s", line);
}

k_status http_start(const struct http_options *o, struct http_server **out, unsigned *bound_port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, o->host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)o->port);
	} else if (inet_pton(AF_INET6, o->host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)o->port);
		flags |= MHD_USE_IPv6;
	} else {
		LOG_ERROR("cannot parse listen address %s (give an IP address)", o->host);
		return K_E_VALIDATION;
	}
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = o->threads ? o->threads : (unsigned)(cores > 0 ? cores : 1);
	struct http_server *s = calloc(1, sizeof *s);
	if (s == NULL)
		return K_E_INTERNAL;
	s->d = MHD_start_daemon(
		flags, (uint16_t)o->port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &ss,
		MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
		o->max_connections ? o->max_connections : 4096u, MHD_OPTION_CONNECTION_TIMEOUT,
		o->idle_timeout_s ? o->idle_timeout_s : 60u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)(64u << 10), MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK,
		no_unescape, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
	if (s->d == NULL) {
		LOG_ERROR("cannot listen on %s:%u", o->host, o->port);
		free(s);
		return K_E_INTERNAL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	*bound_port = di ? di->port : o->port;
	*out = s;
	return K_OK;
}

void http_stop(struct http_server *s)
{
	if (s == NULL)
		return;
	MHD_stop_daemon(s->d);
	free(s);
}
