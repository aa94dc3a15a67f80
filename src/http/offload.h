/*
 * offload.h — a few threads for the requests that take long.
 *
 * libmicrohttpd serves every connection of one of its threads on that
 * thread, so a request that takes a second (an RSA_4096 key generated
 * for CreateKey) holds up every other connection the thread serves: a
 * GenerateRandom behind it waits for the key. A request whose row says
 * so (api_runs_long) is therefore suspended, handed to one of these
 * threads, and resumed when its answer is ready; its request thread goes
 * on serving the others meanwhile.
 *
 * The threads run at a lower scheduling priority than the request
 * threads (HTTP_OFFLOAD_NICE), so that on a busy machine the short
 * requests keep their cores and the long ones take what is left.
 *
 * A job is the caller's (embedded in the request's state): the pool
 * allocates nothing per job, and queues as many as are submitted (at
 * most one per connection).
 */
#ifndef KINKO_HTTP_OFFLOAD_H
#define KINKO_HTTP_OFFLOAD_H

#include <stdbool.h>
#include "core/result.h"

/* The offload threads' nice value, relative to the request threads'. */
#define HTTP_OFFLOAD_NICE 5
/* The most offload threads a server starts. */
#define HTTP_OFFLOAD_MAX_THREADS 16

struct http_offload;

struct http_offload_job {
	void (*run)(struct http_offload_job *job); /* runs on an offload thread */
	struct http_offload_job *next;		   /* the pool's */
};

/*
 * Starts n threads (1..HTTP_OFFLOAD_MAX_THREADS). K_E_INTERNAL if a thread
 * cannot be started (none is left running).
 */
K_MUST_CHECK k_status http_offload_start(unsigned n, struct http_offload **out);

/*
 * Queues job; one of the threads calls job->run(job) later. false when
 * the pool is stopping: job was not queued and the caller runs it.
 * The job must stay valid until its run() returns.
 */
bool http_offload_submit(struct http_offload *o, struct http_offload_job *job);

/*
 * Stops taking jobs, runs every job already queued and joins the
 * threads; the pool stays allocated, so that a request thread that
 * still submits is refused (and runs the job itself) rather than reading
 * freed memory. A second call does nothing. NULL is accepted.
 */
void http_offload_stop(struct http_offload *o);

/* Stops the pool if it runs, then frees it: once no request thread can submit. NULL is accepted. */
void http_offload_free(struct http_offload *o);

#endif
