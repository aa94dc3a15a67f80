/*
 * conns.h — the HTTP front end's connection table: who gets a connection
 * when they are scarce, how long each phase of a request may take, and
 * how a connection is closed without losing the answer sent on it.
 *
 * libmicrohttpd times a connection out only when it is idle, and every
 * byte restarts that clock; at its connection limit it stops accepting
 * and leaves new clients waiting in the listen backlog. This table sits
 * beside it, fed from its connection, URI-log and completion callbacks,
 * and adds three things.
 *
 * Deadlines per phase, each a total from the phase's start (nginx's
 * client_header_timeout and client_body_timeout):
 *   NEW   accepted, nothing parsed        head_timeout from the accept
 *   HEAD  request line in                 the first request keeps the
 *                                         NEW deadline; later ones get
 *                                         head_timeout from the line
 *   BODY  head complete, body arriving    body_timeout from the head
 *   BUSY  handler running, answer going   none (the idle timeout only)
 *   IDLE  between keep-alive requests     idle_timeout from the last
 *                                         answer, so a request line
 *                                         trickled in is bounded too
 * A housekeeping thread looks four times a second. A connection past its
 * deadline is shut down (shutdown(2), which makes libmicrohttpd close it
 * at once); in HEAD and BODY, over plain HTTP, it is first answered
 * "408 Request Timeout".
 *
 * Admission. A connection is proven once it has completed a request.
 * Unproven connections may hold at most three quarters of max_connections.
 * When a new connection finds no room (max_connections taken, or the
 * unproven share full), the oldest unproven connection that is not being
 * served is shut down to make room. Slow clients therefore push each
 * other out, a client that sends its request at once is served, and a
 * connection that has completed a request is never pushed out. Only when
 * all connections are proven is the newcomer refused: "503 Service
 * Unavailable" and Connection: close (HTTPS: closed), at once, instead
 * of waiting unaccepted in the backlog.
 *
 * Lingering close. When a connection is closed by the server while input
 * is unread (an early refusal such as 413 from Content-Length, 431 or
 * 400), closing at once makes the kernel answer the unread bytes with a
 * reset, which can destroy the answer before the client reads it. Such a
 * socket is kept through a duplicate descriptor, its sending side shut
 * (the client sees the answer, then end of stream), and its input read
 * and dropped until the client closes, for at most HTTP_LINGER_MS
 * (RFC 9112 §9.6, "tear-down").
 *
 * Threads: the http_conn_* calls come from libmicrohttpd's workers, each
 * for a connection that worker owns. The table's mutex is taken when a
 * connection opens, closes or completes its first request, and by the
 * housekeeping thread; a request on a proven connection takes no lock
 * (its phase changes are atomic stores into the connection's own state).
 */
#ifndef KINKO_HTTP_CONNS_H
#define KINKO_HTTP_CONNS_H

#include <stdbool.h>
#include "core/result.h"

#define HTTP_LINGER_MAX 256 /* sockets lingering at once; beyond: closed */
#define HTTP_LINGER_MS 5000 /* longest a closed socket's input is drained */
#define HTTP_REFUSED_MAX 64 /* refused sockets held for their 503 at once */

struct http_conns_options {
	unsigned max_connections; /* > 0 */
	unsigned head_timeout_s;  /* > 0 */
	unsigned body_timeout_s;  /* > 0 */
	unsigned idle_timeout_s;  /* > 0 */
	bool tls;		  /* no plain-text 408/503 on a TLS stream */
};

struct http_conns;
struct http_conn;

/* Makes the table and starts its housekeeping thread. K_E_INTERNAL on failure. */
K_MUST_CHECK k_status http_conns_start(const struct http_conns_options *o, struct http_conns **out);
/*
 * Stops the thread and frees the table; call after libmicrohttpd has
 * closed every connection. Lingering sockets are closed.
 */
void http_conns_stop(struct http_conns *t);

/*
 * A connection was accepted on descriptor fd: admits it, making room or
 * refusing it as described above. Returns its state, owned by the table
 * until http_conn_close(); NULL only if out of memory (the socket is
 * then shut down). The http_conn_* calls below accept NULL and do nothing.
 */
struct http_conn *http_conn_open(struct http_conns *t, int fd);
/*
 * libmicrohttpd is about to close the connection's descriptor: forgets
 * it, lingers on the socket if input is unread, frees c.
 */
void http_conn_close(struct http_conns *t, struct http_conn *c);

/* True for a connection refused at the limit: serve nothing on it. */
bool http_conn_refused(const struct http_conn *c);

/* The phases (conns.h's table); each sets the phase's deadline. */
void http_conn_request_line(struct http_conns *t, struct http_conn *c);
void http_conn_head_done(struct http_conns *t, struct http_conn *c);
void http_conn_busy(struct http_conn *c);
/* The request ended; completed: its answer was sent in full. */
void http_conn_request_done(struct http_conns *t, struct http_conn *c, bool completed);

/* The answer being sent closes the connection before its input was read: linger at close. */
void http_conn_linger(struct http_conn *c);

/* Descriptors the table may hold beyond max_connections (for the descriptor limit). */
unsigned http_conns_extra_fds(void);

#endif
