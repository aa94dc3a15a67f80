/*
 * offload.c — the threads that run long requests (see offload.h).
 */
#include "http/offload.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/banned.h"

struct http_offload {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct http_offload_job *head, *tail; /* FIFO */
	bool stopping;
	bool joined; /* http_offload_stop has joined the threads */
	unsigned n;
	pthread_t threads[HTTP_OFFLOAD_MAX_THREADS];
};

/* The next job, or NULL once the pool is stopping and nothing is queued. */
static struct http_offload_job *next_job(struct http_offload *o)
{
	pthread_mutex_lock(&o->mu);
	while (o->head == NULL && !o->stopping)
		pthread_cond_wait(&o->cv, &o->mu);
	struct http_offload_job *job = o->head;
	if (job != NULL) {
		o->head = job->next;
		if (o->head == NULL)
			o->tail = NULL;
	}
	pthread_mutex_unlock(&o->mu);
	return job;
}

/*
 * Linux gives each thread its own nice value (setpriority on the thread
 * id), so only this thread is lowered; a failure leaves it at the
 * request threads' priority, which is slower for them but still correct.
 */
static void lower_priority(void)
{
	id_t tid = (id_t)syscall(SYS_gettid);
	int now = getpriority(PRIO_PROCESS, tid);
	if (setpriority(PRIO_PROCESS, tid, now + HTTP_OFFLOAD_NICE) != 0)
		LOG_DEBUG("http: the offload thread keeps its priority");
}

static void *worker(void *arg)
{
	struct http_offload *o = arg;
	lower_priority();
	for (;;) {
		struct http_offload_job *job = next_job(o);
		if (job == NULL)
			return NULL;
		job->next = NULL;
		job->run(job);
	}
}

k_status http_offload_start(unsigned n, struct http_offload **out)
{
	ENSURE(n >= 1 && n <= HTTP_OFFLOAD_MAX_THREADS, K_E_INTERNAL);
	struct http_offload *o = calloc(1, sizeof *o);
	if (o == NULL)
		return K_E_INTERNAL;
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	for (unsigned i = 0; i < n; i++) {
		if (pthread_create(&o->threads[i], NULL, worker, o) != 0) {
			LOG_ERROR("http: cannot start an offload thread");
			http_offload_free(o);
			return K_E_INTERNAL;
		}
		o->n = i + 1;
	}
	*out = o;
	return K_OK;
}

bool http_offload_submit(struct http_offload *o, struct http_offload_job *job)
{
	pthread_mutex_lock(&o->mu);
	bool taken = !o->stopping;
	if (taken) {
		job->next = NULL;
		if (o->tail != NULL)
			o->tail->next = job;
		else
			o->head = job;
		o->tail = job;
		pthread_cond_signal(&o->cv);
	}
	pthread_mutex_unlock(&o->mu);
	return taken;
}

void http_offload_stop(struct http_offload *o)
{
	if (o == NULL || o->joined)
		return;
	pthread_mutex_lock(&o->mu);
	o->stopping = true;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	for (unsigned i = 0; i < o->n; i++)
		pthread_join(o->threads[i], NULL);
	o->joined = true;
}

void http_offload_free(struct http_offload *o)
{
	if (o == NULL)
		return;
	http_offload_stop(o);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o);
}
