/*
 * pg_test.c — the PostgreSQL storage backend: the storage.h contract
 * (contract.c) on one database, then what only a shared backend does: its
 * change feed across two handles (two nodes), a second handle opening the
 * migrated database, and a server that cannot be reached.
 *
 * It needs a server: KINKO_TEST_PG_URL names an empty database
 * (tests/integration/test_pg_store.py starts one and runs this binary).
 * Without it the binary says so and checks nothing.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/storage.h"
#include "storage/contract.h"
#include "testlib.h"
#include "core/banned.h"

static const char *url;

/* Room for the one-line reason storage_open gives when it fails. */
#define WHY_MAX 512u

static struct storage *open_store(void)
{
	struct storage *s = NULL;
	struct kbuf why;
	kbuf_init(&why, WHY_MAX);
	k_status rc = storage_open(url, &s, &why);
	if (k_failed(rc))
		fprintf(stderr, "open: %s\n", kbuf_cstr(&why));
	kbuf_release(&why);
	CHECK_STATUS(rc, K_OK);
	return k_ok(rc) ? s : NULL;
}

/* ---- the change feed across two handles ---------------------------------- */

#define MAX_SEEN 64

struct heard {
	pthread_mutex_t mu;
	char ev[MAX_SEEN][160];
	size_t n;
};

static void on_change(void *arg, const struct storage_event *ev)
{
	struct heard *h = arg;
	pthread_mutex_lock(&h->mu);
	if (h->n < MAX_SEEN) {
		const char *what = ev->what == STORAGE_EV_PUT	 ? "PUT"
				   : ev->what == STORAGE_EV_DEL	 ? "DEL"
				   : ev->what == STORAGE_EV_MARK ? "MARK"
								 : "PURGE";
		snprintf(h->ev[h->n++], sizeof h->ev[0], "%s %s/%s/%s", what,
			 ev->kind ? ev->kind : "-", ev->ns, ev->id ? ev->id : "-");
	}
	pthread_mutex_unlock(&h->mu);
}

/* Waits up to ms for h to hold at least n events; returns how many it holds. */
static size_t wait_for(struct heard *h, size_t n, int ms)
{
	int64_t end = now_ms() + ms;
	for (;;) {
		pthread_mutex_lock(&h->mu);
		size_t have = h->n;
		pthread_mutex_unlock(&h->mu);
		if (have >= n || now_ms() >= end)
			return have;
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static void test_feed_across_nodes(struct storage *a)
{
	struct storage *b = open_store();
	if (b == NULL)
		return;
	struct heard ha = {.mu = PTHREAD_MUTEX_INITIALIZER}, hb = {.mu = PTHREAD_MUTEX_INITIALIZER};
	CHECK_STATUS(storage_subscribe(a, on_change, &ha), K_OK);
	CHECK_STATUS(storage_subscribe(b, on_change, &hb), K_OK);
	struct storage_op ops[2] = {
		{STORAGE_PUT, "key", "111:us-east-1", "fk", KSLICE_LIT("{}"), STORAGE_ANY},
		{STORAGE_DEL, "alias", "111:us-east-1", "alias/x", {NULL, 0}, STORAGE_ANY},
	};
	int64_t t0 = now_ms();
	CHECK_STATUS(storage_apply(a, ops, 2), K_OK);
	/* the writer's own events: at once, on its thread, and only once */
	CHECK_EQ_INT(ha.n, 2);
	CHECK_EQ_INT(wait_for(&hb, 2, 1000), 2);
	CHECK(now_ms() - t0 < 1000);
	CHECK_STR(hb.ev[0], "PUT key/111:us-east-1/fk");
	CHECK_STR(hb.ev[1], "DEL alias/111:us-east-1/alias/x");
	CHECK_STATUS(storage_purge(b, "111:"), K_OK);
	CHECK_EQ_INT(wait_for(&ha, 3, 1000), 3);
	CHECK_STR(ha.ev[2], "PURGE -/111:/-");
	/* a failed write announces nothing anywhere */
	CHECK_STATUS(put(a, "key", "111:us-east-1", "fk2", "{}", 5), K_E_CONFLICT);
	CHECK_EQ_INT(wait_for(&hb, 4, 300), 3);
	CHECK_EQ_INT(ha.n, 3);
	/* the writer never hears its own writes twice */
	CHECK_EQ_INT(wait_for(&ha, 4, 300), 3);
	/* two nodes creating one record: one wins, the other gets a conflict */
	k_status r1 = put(a, "key", "race", "r", "{}", STORAGE_ABSENT);
	k_status r2 = put(b, "key", "race", "r", "{}", STORAGE_ABSENT);
	CHECK_STATUS(r1, K_OK);
	CHECK_STATUS(r2, K_E_CONFLICT);
	storage_close(b);
}

/*
 * A mark sent by one handle after another's write reaches both handles
 * from their listeners, after that write's event; the sender's too.
 */
static void test_mark_across_nodes(struct storage *a)
{
	struct storage *b = open_store();
	if (b == NULL)
		return;
	struct heard ha = {.mu = PTHREAD_MUTEX_INITIALIZER}, hb = {.mu = PTHREAD_MUTEX_INITIALIZER};
	CHECK_STATUS(storage_subscribe(a, on_change, &ha), K_OK);
	CHECK_STATUS(storage_subscribe(b, on_change, &hb), K_OK);
	CHECK_STATUS(put(a, "key", "222:us-east-1", "mk", "{}", STORAGE_ANY), K_OK);
	CHECK_EQ_INT(ha.n, 1);
	CHECK_STATUS(storage_mark(b, "tok-1"), K_OK);
	CHECK_EQ_INT(wait_for(&hb, 2, 1000), 2);
	CHECK_STR(hb.ev[0], "PUT key/222:us-east-1/mk");
	CHECK_STR(hb.ev[1], "MARK " STORAGE_MARK_KIND "//tok-1");
	CHECK_EQ_INT(wait_for(&ha, 2, 1000), 2);
	CHECK_STR(ha.ev[1], "MARK " STORAGE_MARK_KIND "//tok-1");
	/* each hears it once */
	CHECK_EQ_INT(wait_for(&hb, 3, 300), 2);
	CHECK_EQ_INT(wait_for(&ha, 3, 300), 2);
	CHECK_STATUS(storage_mark(b, "not a token"), K_E_VALIDATION);
	storage_close(b);
}

/* Migrations are idempotent: a second handle on a migrated database opens. */
static void test_reopen(void)
{
	struct storage *s = open_store();
	storage_close(s);
	struct storage *bad = NULL;
	struct kbuf why;
	kbuf_init(&why, WHY_MAX);
	CHECK_STATUS(
		storage_open("postgresql://kinko@127.0.0.1:1/none?connect_timeout=2", &bad, &why),
		K_E_STORE_UNAVAILABLE);
	CHECK(strstr(kbuf_cstr(&why), "cannot connect") != NULL);
	CHECK_STATUS(storage_open("postgresql://[::1", &bad, &why), K_E_VALIDATION);
	kbuf_release(&why);
}

int main(void)
{
	url = getenv("KINKO_TEST_PG_URL");
	if (url == NULL || url[0] == 0) {
		printf("pg_test: KINKO_TEST_PG_URL is not set; nothing checked "
		       "(tests/integration/test_pg_store.py runs this against a server)\n");
		return tl_summary();
	}
	struct storage *s = open_store();
	if (s == NULL)
		return tl_summary();
	contract_run(s);
	tl_current = "feed_across_nodes";
	test_feed_across_nodes(s);
	storage_close(s);
	s = open_store();
	if (s == NULL)
		return tl_summary();
	tl_current = "mark_across_nodes";
	test_mark_across_nodes(s);
	storage_close(s);
	RUN(test_reopen);
	return tl_summary();
}
