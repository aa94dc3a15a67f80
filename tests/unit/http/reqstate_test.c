#include "http/reqstate.h"

#include <pthread.h>
#include <string.h>

#include "api/pipeline.h"
#include "http/server.h"
#include "testlib.h"

/* A finished request's state comes back for the next one, emptied and wiped, its buffers kept. */
static void test_reuse(void)
{
	struct http_req_state *st = http_req_state_take();
	CHECK(st != NULL);
	CHECK_EQ_INT(st->body_limit, API_MAX_BODY);
	CHECK(k_ok(kbuf_append_str(&st->body, "{\"Plaintext\":\"c2VjcmV0\"}")));
	CHECK(k_ok(kbuf_append_str(&st->query, "a=b")));
	CHECK(k_ok(kbuf_append_str(&st->req.response, "{\"Plaintext\":\"c2VjcmV0\"}")));
	st->req.n_headers = 3;
	st->req.status = 200;
	st->offloaded = true;
	st->body_limit = 10;
	const uint8_t *body = st->body.ptr, *resp = st->req.response.ptr;
	http_req_state_done(st);
	/* Wiped at the end of the request, not at the next one's start. */
	CHECK(st->body.len == 0 && body[0] == 0 && body[5] == 0);
	CHECK(st->req.response.len == 0 && resp[0] == 0 && resp[5] == 0);

	struct http_req_state *again = http_req_state_take();
	CHECK(again == st);
	CHECK(again->body.ptr == body && again->req.response.ptr == resp);
	CHECK(again->body.len == 0 && again->query.len == 0 && again->req.response.len == 0);
	CHECK_EQ_INT(again->req.n_headers, 0);
	CHECK_EQ_INT(again->req.status, 500);
	CHECK(!again->offloaded && !again->answered);
	CHECK_EQ_INT(again->body_limit, API_MAX_BODY);
	CHECK_EQ_INT(again->body.max, API_MAX_BODY);
	CHECK_EQ_INT(again->query.max, HTTP_MAX_QUERY_BYTES);
	CHECK_EQ_INT(again->req.response.max, API_MAX_RESPONSE);
	http_req_state_done(again);
}

/* A buffer that grew past HTTP_STATE_KEEP_BYTES is freed, not kept. */
static void test_large_buffer_freed(void)
{
	struct http_req_state *st = http_req_state_take();
	CHECK(st != NULL);
	static uint8_t big[HTTP_STATE_KEEP_BYTES + 1];
	CHECK(k_ok(kbuf_append(&st->req.response, big, sizeof big)));
	CHECK(k_ok(kbuf_append_str(&st->body, "{}")));
	http_req_state_done(st);
	CHECK(st->req.response.ptr == NULL && st->req.response.cap == 0);
	CHECK(st->body.ptr != NULL);
	http_req_state_done(http_req_state_take());
}

/* More states in flight than a thread keeps: the rest are freed (ASan: no leak). */
static void test_many(void)
{
	struct http_req_state *st[HTTP_STATE_SPARES + 4];
	for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
		st[i] = http_req_state_take();
		CHECK(st[i] != NULL);
		CHECK(k_ok(kbuf_append_str(&st[i]->body, "x")));
	}
	for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
		http_req_state_done(st[i]);
	http_req_state_forget();
}

struct other {
	struct http_req_state *mine; /* the main thread's spare */
	bool ok;		     /* the other thread got a state of its own */
};

/* Checks nothing itself (the test's counters are the main thread's): says what it saw. */
static void *other_thread(void *arg)
{
	struct other *o = arg;
	struct http_req_state *st = http_req_state_take();
	o->ok = st != NULL && st != o->mine;
	http_req_state_done(st);
	return NULL; /* its spares are freed as the thread ends */
}

/* Each thread keeps its own spares. */
static void test_per_thread(void)
{
	struct http_req_state *mine = http_req_state_take();
	http_req_state_done(mine);
	struct other o = {mine, false};
	pthread_t t;
	int e = pthread_create(&t, NULL, other_thread, &o);
	if (e == 0)
		pthread_join(t, NULL);
	CHECK(e == 0);
	CHECK(o.ok);
	CHECK(http_req_state_take() == mine);
	http_req_state_done(mine);
	http_req_state_forget();
}

int main(void)
{
	RUN(test_reuse);
	RUN(test_large_buffer_freed);
	RUN(test_many);
	RUN(test_per_thread);
	return tl_summary();
}
