/*
 * reqstate.c — request states kept per request thread (see reqstate.h).
 */
#include "http/reqstate.h"

#include <stdlib.h>
#include <string.h>

#include "api/pipeline.h"
#include "core/thread.h"
#include "http/server.h"
#include "core/banned.h"

struct spares {
	struct http_req_state *st[HTTP_STATE_SPARES];
	size_t n;
};

static void state_free(struct http_req_state *st)
{
	api_request_release(&st->req);
	kbuf_release(&st->body);
	kbuf_release(&st->query);
	free(st);
}

static void *spares_make(void)
{
	return calloc(1, sizeof(struct spares));
}

static void spares_drop(void *p)
{
	struct spares *s = p;
	while (s->n > 0)
		state_free(s->st[--s->n]);
	free(s);
}

static struct kthread_slot spares_slot = KTHREAD_SLOT_INIT(spares_make, spares_drop);

/* Wipes b's bytes, keeping its allocation unless it grew past HTTP_STATE_KEEP_BYTES. */
static void empty(struct kbuf *b)
{
	if (b->cap > HTTP_STATE_KEEP_BYTES)
		kbuf_release(b);
	else
		kbuf_reset(b);
}

struct http_req_state *http_req_state_take(void)
{
	struct spares *s = kthread_get(&spares_slot);
	struct http_req_state *st = NULL;
	if (s != NULL && s->n > 0) {
		st = s->st[--s->n];
		struct kbuf body = st->body, query = st->query;
		api_request_reuse(&st->req);
		struct api_request req = st->req;
		memset(st, 0, sizeof *st);
		st->req = req;
		st->body = body;
		st->query = query;
	} else {
		st = calloc(1, sizeof *st);
		if (st == NULL)
			return NULL;
		api_request_init(&st->req);
		kbuf_init(&st->body, API_MAX_BODY);
		kbuf_init(&st->query, HTTP_MAX_QUERY_BYTES);
	}
	st->body_limit = API_MAX_BODY;
	return st;
}

void http_req_state_done(struct http_req_state *st)
{
	if (st == NULL)
		return;
	empty(&st->req.response);
	empty(&st->body);
	empty(&st->query);
	struct spares *s = kthread_get(&spares_slot);
	if (s == NULL || s->n >= HTTP_STATE_SPARES) {
		state_free(st);
		return;
	}
	s->st[s->n++] = st;
}

void http_req_state_forget(void)
{
	kthread_forget(&spares_slot);
}
