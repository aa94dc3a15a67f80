/*
 * server.h — the HTTP/1.1 front end (libmicrohttpd).
 *
 * An epoll thread pool sized to the cores accepts connections with
 * keep-alive. Each request's head is checked first (http/framing.h:
 * refused from the head, with the connection closed, when its body could
 * not be delimited unambiguously or is larger than its operation takes);
 * its headers and body are gathered (bounded: API_MAX_HEADERS headers,
 * the operation's body limit), then api_handle() runs inline on the
 * worker thread: the crypto path is short, and handing a request to
 * another thread costs more than it saves. A request's state and its
 * buffers are kept by the thread for the next request (http/reqstate.h).
 *
 * HTTPS: with a certificate and key (PEM files) the listener speaks TLS
 * 1.3, and 1.2 with ECDHE and AEAD suites only (HTTP_TLS_PRIORITIES in
 * server.c), and every request it carries is marked secure (the
 * aws:SecureTransport condition key).
 *
 * Limits against slow and greedy clients (docs/SECURITY.md), kept by the
 * connection table beside libmicrohttpd (http/conns.h):
 *   max_connections      all connections at once (default 4096); at the
 *                        limit a newcomer pushes out the oldest connection
 *                        that has not completed a request, or is answered
 *                        503 and closed; never left in the backlog. The
 *                        soft file-descriptor limit is raised to fit
 *   per_ip_connections   connections from one address (0: no cap)
 *   header_timeout_s     the whole request head (default 20)
 *   body_timeout_s       the whole body (default 60)
 *   idle_timeout_s       a connection that sends nothing for this long is
 *                        closed (default 60), and a keep-alive connection
 *                        must start its next request within it
 *   headers              HTTP_MAX_HEADER_BYTES of names and values and
 *                        API_MAX_HEADERS headers (else 413); the whole
 *                        request head must fit in the per-connection
 *                        memory (HTTP_CONNECTION_MEMORY), else 431 / 414
 *   body                 the operation's limit (api_body_limit: its
 *                        row's max_body, named by X-Amz-Target; at most
 *                        API_MAX_BODY): a larger Content-Length is
 *                        answered 413 from the head; a chunked body that
 *                        grows past it is cut off
 * A connection the server closes with input unread lingers, draining it,
 * so the client reads the answer instead of a reset. Connections are
 * served by an epoll event loop: a held connection costs a descriptor and
 * its memory, never a thread.
 */
#ifndef KINKO_HTTP_SERVER_H
#define KINKO_HTTP_SERVER_H

#include <stdbool.h>
#include "core/buf.h"
#include "core/result.h"

#define HTTP_MAX_HEADER_BYTES (16u << 10)
#define HTTP_CONNECTION_MEMORY (24u << 10)
/* A request's query string, decoded (Query API operations carry their parameters there). */
#define HTTP_MAX_QUERY_BYTES 8192

struct api_request;

struct http_options {
	const char *host;	     /* "127.0.0.1", "::1", "0.0.0.0" */
	unsigned port;		     /* 0: any free port */
	unsigned threads;	     /* 0: one per core */
	unsigned max_connections;    /* 0: 4096 */
	unsigned idle_timeout_s;     /* 0: 60 */
	unsigned header_timeout_s;   /* 0: 20; the whole request head */
	unsigned body_timeout_s;     /* 0: 60; the whole body */
	unsigned per_ip_connections; /* 0: no cap */
	const char *tls_cert_file;   /* NULL or "": plain HTTP */
	const char *tls_key_file;
	/*
	 * Mutual TLS: a PEM file of the CAs whose client certificates are
	 * accepted (NULL or "": none asked for). A connection whose client
	 * presents no certificate, or one that does not verify against these
	 * CAs, is closed at its first request, unanswered.
	 */
	const char *tls_client_ca_file;
	/*
	 * With tls_client_ca_file: the common name (CN) the client
	 * certificate's subject must have, exactly (NULL or "": any).
	 */
	const char *tls_client_subject;
	/*
	 * What answers each request (NULL: the API pipeline, api_handle). The
	 * XKS proxy's listener passes xks_proxy_handle (xks/proxy.h).
	 */
	void (*handle)(struct api_request *r);
};

struct http_server;

/*
 * Starts serving; *bound_port gets the port actually bound.
 * K_E_VALIDATION for a bad address or unreadable TLS files (logged),
 * K_E_INTERNAL if the listener cannot start.
 */
K_MUST_CHECK k_status http_start(const struct http_options *o, struct http_server **out,
				 unsigned *bound_port);
void http_stop(struct http_server *s);

#endif
