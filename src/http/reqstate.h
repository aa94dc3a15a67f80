/*
 * reqstate.h — one request's state in the HTTP layer, and the request
 * thread's spare ones.
 *
 * libmicrohttpd hands each request's state from its first callback to
 * its completion notice. A request thread serves one request after
 * another, so it keeps the states of its finished requests, with their
 * buffers (the body, the query, the response), and hands one out to the
 * next request: a request in the steady state allocates none of them.
 * Every buffer is wiped when its request completes, as before it was
 * freed (a body or a response may carry plaintext), and a buffer that
 * grew past HTTP_STATE_KEEP_BYTES is freed instead of kept.
 */
#ifndef KINKO_HTTP_REQSTATE_H
#define KINKO_HTTP_REQSTATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "http/offload.h"
#include "req/req.h"

/* The spare states a request thread keeps. */
#define HTTP_STATE_SPARES 8
/* A kept buffer's largest allocation; a larger one is freed when its request ends. */
#define HTTP_STATE_KEEP_BYTES (64u << 10)

struct MHD_Connection;

/* Per-request state, from the first callback to the completion notice. */
struct http_req_state {
	struct api_request req;
	struct kbuf body;
	struct kbuf query;
	size_t body_limit; /* the operation's (api_body_limit), or API_MAX_BODY */
	char method[16];
	size_t header_bytes;
	bool answered; /* answered from the head alone; the connection closes */
	/*
	 * Run on an offload thread: the connection is suspended from the
	 * moment the job is queued until job.run() has handled the request
	 * and resumed it; libmicrohttpd then calls on_request once more,
	 * which queues the answer.
	 */
	bool offloaded;
	/*
	 * Set (release) by the offload thread once the request is handled,
	 * read (acquire) by the request thread before it answers: the order
	 * between the two threads is stated here, not left to
	 * libmicrohttpd's resume, whose locking the language cannot see.
	 */
	atomic_bool handled;
	struct http_offload_job job;
	struct MHD_Connection *conn;
};

/*
 * A state for a new request: one of the calling thread's spares, or a new
 * one; empty (the request as api_request_init leaves it, the body's cap
 * API_MAX_BODY, the query's HTTP_MAX_QUERY_BYTES). NULL when out of memory.
 */
struct http_req_state *http_req_state_take(void);

/*
 * The request ended: wipes its buffers and keeps the state as one of the
 * calling thread's spares, or frees it when the thread has enough.
 */
void http_req_state_done(struct http_req_state *st);

/* Frees the calling thread's spares (the thread that stops the server). */
void http_req_state_forget(void);

#endif
