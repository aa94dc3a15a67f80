/*
 * feed_test.c — the store's change feed (storage.h) as the SQLite backend
 * emits it: one event per op of each committed write, none for a write
 * that failed or was rolled back, on the writing thread; and the
 * namespace handed to list callbacks.
 */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"
#include "testlib.h"
#include "core/banned.h"

static char tmp_root[] = "/tmp/kinko-feed-test-XXXXXX";

#define MAX_SEEN 32

/* What a subscriber heard: "PUT key/ns/id" lines, and on which thread. */
struct heard {
	char ev[MAX_SEEN][160];
	size_t n;
	bool other_thread;
	pthread_t writer;
};

static void on_change(void *arg, const struct storage_event *ev)
{
	struct heard *h = arg;
	if (!pthread_equal(pthread_self(), h->writer))
		h->other_thread = true;
	if (h->n >= MAX_SEEN)
		return;
	const char *what = ev->what == STORAGE_EV_PUT	  ? "PUT"
			   : ev->what == STORAGE_EV_DEL	  ? "DEL"
			   : ev->what == STORAGE_EV_PURGE ? "PURGE"
			   : ev->what == STORAGE_EV_MARK  ? "MARK"
							  : "?";
	snprintf(h->ev[h->n++], sizeof h->ev[0], "%s %s/%s/%s", what, ev->kind ? ev->kind : "-",
		 ev->ns ? ev->ns : "-", ev->id ? ev->id : "-");
}

static struct storage *open_store(const char *name)
{
	char path[256];
	struct storage *s = NULL;
	snprintf(path, sizeof path, "%s/%s", tmp_root, name);
	CHECK_STATUS(storage_sqlite_open(path, &s), K_OK);
	return s;
}

static K_MUST_CHECK k_status put(struct storage *s, const char *kind, const char *ns,
				 const char *id, int64_t expect)
{
	struct storage_op op = {STORAGE_PUT, kind, ns, id, kslice_cstr("{}"), expect};
	return storage_apply(s, &op, 1);
}

static void test_committed_writes(void)
{
	struct storage *s = open_store("committed");
	struct heard h = {.writer = pthread_self()};
	if (s == NULL)
		return;
	CHECK_STATUS(storage_subscribe(s, on_change, &h), K_OK);
	CHECK_STATUS(put(s, "key", "111:us-east-1", "k1", STORAGE_ABSENT), K_OK);
	CHECK_EQ_INT(h.n, 1);
	CHECK_STR(h.ev[0], "PUT key/111:us-east-1/k1");
	CHECK_STATUS(put(s, "key", "111:us-east-1", "k1", 1), K_OK);
	CHECK_EQ_INT(h.n, 2);
	CHECK_STR(h.ev[1], "PUT key/111:us-east-1/k1");
	/* A batch: one event per op, in the ops' order. */
	struct storage_op ops[3] = {
		{STORAGE_PUT, "alias", "111:us-east-1", "alias/a", kslice_cstr("{}"),
		 STORAGE_ABSENT},
		{STORAGE_DEL, "key", "111:us-east-1", "k1", {NULL, 0}, 2},
		{STORAGE_DEL, "grant", "111:us-east-1", "missing", {NULL, 0}, STORAGE_ANY},
	};
	CHECK_STATUS(storage_apply(s, ops, 3), K_OK);
	CHECK_EQ_INT(h.n, 5);
	CHECK_STR(h.ev[2], "PUT alias/111:us-east-1/alias/a");
	CHECK_STR(h.ev[3], "DEL key/111:us-east-1/k1");
	CHECK_STR(h.ev[4], "DEL grant/111:us-east-1/missing");
	/* An empty batch writes nothing and says nothing. */
	CHECK_STATUS(storage_apply(s, ops, 0), K_OK);
	CHECK_EQ_INT(h.n, 5);
	CHECK(!h.other_thread);
	storage_close(s);
}

static void test_failed_writes_are_silent(void)
{
	struct storage *s = open_store("failed");
	struct heard h = {.writer = pthread_self()};
	if (s == NULL)
		return;
	CHECK_STATUS(put(s, "key", "ns", "k", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(storage_subscribe(s, on_change, &h), K_OK);
	/* A failed precondition. */
	CHECK_STATUS(put(s, "key", "ns", "k", STORAGE_ABSENT), K_E_CONFLICT);
	CHECK_STATUS(put(s, "key", "ns", "k", 7), K_E_CONFLICT);
	/* A batch whose last op fails is rolled back as a whole: nothing is announced. */
	struct storage_op ops[2] = {
		{STORAGE_PUT, "key", "ns", "other", kslice_cstr("{}"), STORAGE_ABSENT},
		{STORAGE_DEL, "key", "ns", "gone", {NULL, 0}, 3},
	};
	CHECK_STATUS(storage_apply(s, ops, 2), K_E_NOT_FOUND);
	CHECK_STATUS(storage_get(s, "key", "ns", "other", NULL, NULL), K_E_NOT_FOUND);
	/* A refused argument. */
	CHECK_STATUS(put(s, "", "ns", "k", STORAGE_ANY), K_E_VALIDATION);
	/* Reads, listings, checks and scrubs are not writes. */
	CHECK_STATUS(storage_get(s, "key", "ns", "k", NULL, NULL), K_OK);
	CHECK_STATUS(storage_check(s), K_OK);
	CHECK_STATUS(storage_scrub(s), K_OK);
	CHECK_EQ_INT(h.n, 0);
	storage_close(s);
}

static void test_purge_is_one_event(void)
{
	struct storage *s = open_store("purge");
	struct heard h = {.writer = pthread_self()};
	if (s == NULL)
		return;
	CHECK_STATUS(put(s, "key", "111:us-east-1", "a", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "alias", "111:eu-west-1", "alias/x", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(storage_subscribe(s, on_change, &h), K_OK);
	CHECK_STATUS(storage_purge(s, "111:"), K_OK);
	CHECK_EQ_INT(h.n, 1);
	CHECK_STR(h.ev[0], "PURGE -/111:/-");
	CHECK_STATUS(storage_purge(s, ""), K_E_VALIDATION);
	CHECK_EQ_INT(h.n, 1);
	storage_close(s);
}

static void test_every_subscriber_hears(void)
{
	struct storage *s = open_store("subscribers");
	struct heard h[STORAGE_MAX_SUBSCRIBERS];
	memset(h, 0, sizeof h);
	if (s == NULL)
		return;
	for (size_t i = 0; i < STORAGE_MAX_SUBSCRIBERS; i++) {
		h[i].writer = pthread_self();
		CHECK_STATUS(storage_subscribe(s, on_change, &h[i]), K_OK);
	}
	struct heard extra = {.writer = pthread_self()};
	CHECK_STATUS(storage_subscribe(s, on_change, &extra), K_E_LIMIT_EXCEEDED);
	CHECK_STATUS(storage_subscribe(s, NULL, NULL), K_E_VALIDATION);
	CHECK_STATUS(put(s, "secret", "ns", "db-password", STORAGE_ABSENT), K_OK);
	for (size_t i = 0; i < STORAGE_MAX_SUBSCRIBERS; i++) {
		CHECK_EQ_INT(h[i].n, 1);
		CHECK_STR(h[i].ev[0], "PUT secret/ns/db-password");
	}
	CHECK_EQ_INT(extra.n, 0);
	storage_close(s);
}

/* Writes from several threads: each event arrives on the thread that wrote. */
struct writer {
	struct storage *s;
	char id[16];
};

static pthread_mutex_t heard_mu = PTHREAD_MUTEX_INITIALIZER;
static size_t heard_total;
static bool heard_wrong_thread;

static void on_change_counted(void *arg, const struct storage_event *ev)
{
	(void)arg;
	pthread_mutex_lock(&heard_mu);
	heard_total++;
	pthread_mutex_unlock(&heard_mu);
	(void)ev;
}

/* The id a writer thread writes: its events must name it. */
static _Thread_local const char *my_id;

static void on_change_thread(void *arg, const struct storage_event *ev)
{
	(void)arg;
	if (my_id == NULL || strcmp(my_id, ev->id) != 0) {
		pthread_mutex_lock(&heard_mu);
		heard_wrong_thread = true;
		pthread_mutex_unlock(&heard_mu);
	}
}

static void *write_many(void *arg)
{
	struct writer *w = arg;
	my_id = w->id;
	for (int i = 0; i < 20; i++) {
		struct storage_op op = {STORAGE_PUT,	   "key",      "ns", w->id,
					kslice_cstr("{}"), STORAGE_ANY};
		if (k_failed(storage_apply(w->s, &op, 1)))
			return (void *)1;
	}
	return NULL;
}

static void test_threads(void)
{
	struct storage *s = open_store("threads");
	if (s == NULL)
		return;
	CHECK_STATUS(storage_subscribe(s, on_change_counted, NULL), K_OK);
	CHECK_STATUS(storage_subscribe(s, on_change_thread, NULL), K_OK);
	struct writer w[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		w[i].s = s;
		snprintf(w[i].id, sizeof w[i].id, "k%d", i);
		CHECK_EQ_INT(pthread_create(&t[i], NULL, write_many, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *r = NULL;
		pthread_join(t[i], &r);
		CHECK(r == NULL);
	}
	CHECK_EQ_INT(heard_total, 80);
	CHECK(!heard_wrong_thread);
	storage_close(s);
}

/* List callbacks get each record's namespace as their argument. */
struct ns_seen {
	char out[512];
};

static K_MUST_CHECK k_status ns_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				   int64_t version)
{
	struct ns_seen *n = arg;
	size_t len = strlen(n->out);
	snprintf(n->out + len, sizeof n->out - len, "%s%s|%s", len ? "," : "", ns, id);
	return K_OK;
}

static void test_list_gives_namespace(void)
{
	struct storage *s = open_store("listns");
	struct ns_seen n = {""};
	if (s == NULL)
		return;
	CHECK_STATUS(put(s, "key", "111:us-east-1", "a", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "key", "222:eu-west-1", "b", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(put(s, "key", "222:eu-west-1", "c", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(storage_list(s, "key", NULL, NULL, NULL, 0, ns_cb, &n), K_OK);
	CHECK_STR(n.out, "111:us-east-1|a,222:eu-west-1|b,222:eu-west-1|c");
	n.out[0] = 0;
	CHECK_STATUS(storage_list(s, "key", "222:eu-west-1", NULL, NULL, 0, ns_cb, &n), K_OK);
	CHECK_STR(n.out, "222:eu-west-1|b,222:eu-west-1|c");
	storage_close(s);
}

/* A mark: one event with the mark's kind and the token; bad tokens refused. */
static void test_mark(void)
{
	struct storage *s = open_store("mark");
	struct heard h = {.writer = pthread_self()};
	if (s == NULL)
		return;
	CHECK_STATUS(storage_subscribe(s, on_change, &h), K_OK);
	CHECK_STATUS(put(s, "key", "111:us-east-1", "k1", STORAGE_ABSENT), K_OK);
	CHECK_STATUS(storage_mark(s, "b-1_x"), K_OK);
	CHECK_EQ_INT(h.n, 2);
	CHECK_STR(h.ev[0], "PUT key/111:us-east-1/k1");
	CHECK_STR(h.ev[1], "MARK " STORAGE_MARK_KIND "//b-1_x");
	char longest[STORAGE_MAX_MARK + 2];
	memset(longest, 'a', sizeof longest);
	longest[STORAGE_MAX_MARK] = 0;
	CHECK_STATUS(storage_mark(s, longest), K_OK);
	longest[STORAGE_MAX_MARK] = 'a';
	longest[STORAGE_MAX_MARK + 1] = 0;
	CHECK_STATUS(storage_mark(s, longest), K_E_VALIDATION);
	CHECK_STATUS(storage_mark(s, ""), K_E_VALIDATION);
	CHECK_STATUS(storage_mark(s, "a b"), K_E_VALIDATION);
	CHECK_STATUS(storage_mark(s, "a:b"), K_E_VALIDATION);
	CHECK_EQ_INT(h.n, 3);
	CHECK_EQ_INT(h.other_thread, false);
	storage_close(s);
}

int main(void)
{
	if (mkdtemp(tmp_root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_committed_writes);
	RUN(test_failed_writes_are_silent);
	RUN(test_purge_is_one_event);
	RUN(test_every_subscriber_hears);
	RUN(test_threads);
	RUN(test_list_gives_namespace);
	RUN(test_mark);
	tl_remove_tree(tmp_root);
	return tl_summary();
}
