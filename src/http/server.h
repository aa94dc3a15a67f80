/*
 * server.h — the HTTP/1.1 front end (libmicrohttpd).
 *
 * An epoll thread pool sized to the cores accepts connections with
 * keep-alive. Each request's headers and body are gathered (bounded:
 * API_MAX_HEADERS headers, API_MAX_BODY bytes; a larger body is drained
 * and refused), then api_handle() runs inline on the worker thread: the
 * crypto path is short, and handing a request to another thread costs
 * more than it saves.
 */
#ifndef KINKO_HTTP_SERVER_H
#define KINKO_HTTP_SERVER_H

#include <stdbool.h>
#include "core/result.h"

struct http_options {
	const char *host;          /* "127.0.0.1", "::1", "0.0.0.0" */
	unsigned port;             /* 0: any free port */
	unsigned threads;          /* 0: one per core */
	unsigned max_connections;
	unsigned idle_timeout_s;
};

struct http_server;

/* Starts serving; *bound_port gets the port actually bound. */
K_MUST_CHECK k_status http_start(const struct http_options *o, struct http_server **out,
				 unsigned *bound_port);
void http_stop(struct http_server *s);

#endif
