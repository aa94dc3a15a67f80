/*
 * scheduler.c — the background scheduler and the due index (see scheduler.h).
 */
#include "scheduler/scheduler.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cluster/cluster.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/banned.h"

struct task {
	const char *name;
	scheduler_fn fn;
	/* Failure log state (under run_mu): a task that keeps failing (the store
	 * down, say) is logged when it starts failing, then once a minute, and
	 * once more when it recovers, rather than at every run. */
	unsigned failures;
	int64_t logged_at; /* monotonic seconds */
};

#define FAILURE_LOG_INTERVAL_S 60

static int64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static void note_result(struct task *t, k_status rc)
{
	if (k_ok(rc)) {
		if (t->failures > 0)
			LOG_INFO("scheduler: task %s recovered after %u failed runs", t->name,
				 t->failures);
		t->failures = 0;
		return;
	}
	int64_t now = mono_s();
	if (t->failures++ == 0) {
		LOG_WARN("scheduler: task %s failed: %s (retried every run; logged again once a "
			 "minute while it fails)",
			 t->name, k_status_name(rc));
		t->logged_at = now;
	} else if (now - t->logged_at >= FAILURE_LOG_INTERVAL_S) {
		LOG_WARN("scheduler: task %s still failing: %s (%u failed runs)", t->name,
			 k_status_name(rc), t->failures);
		t->logged_at = now;
	}
}

static struct task tasks[SCHEDULER_MAX_TASKS];
static size_t n_tasks;
static struct storage *due_store;

/* run_mu serializes runs; mu/cv drive the thread's sleep. */
static pthread_mutex_t run_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static bool started, stopping;
static pthread_t thread;

k_status scheduler_register(const char *name, scheduler_fn run_due)
{
	ENSURE(name != NULL && run_due != NULL, K_E_VALIDATION);
	pthread_mutex_lock(&mu);
	k_status rc = K_OK;
	if (n_tasks >= SCHEDULER_MAX_TASKS) {
		rc = K_E_LIMIT_EXCEEDED;
	} else {
		tasks[n_tasks] = (struct task){.name = name, .fn = run_due};
		n_tasks++;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

/*
 * One run: every callback with the same `now`, in registration order.
 * A failing callback does not stop the others; its error is logged and
 * its work is retried at the next run, which the idempotency rule of
 * scheduler.h makes safe.
 */
k_status scheduler_run_now(void)
{
	k_status first = K_OK;
	pthread_mutex_lock(&run_mu);
	int64_t now = kclock_now();
	pthread_mutex_lock(&mu);
	size_t n = n_tasks;
	pthread_mutex_unlock(&mu);
	for (size_t i = 0; i < n; i++) {
		k_status rc = tasks[i].fn(now);
		note_result(&tasks[i], rc);
		if (k_failed(rc) && k_ok(first))
			first = rc;
	}
	pthread_mutex_unlock(&run_mu);
	return first;
}

static void *scheduler_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	while (!stopping) {
		struct timespec deadline;
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += SCHEDULER_INTERVAL_S;
		while (!stopping) {
			if (pthread_cond_timedwait(&cv, &mu, &deadline) == ETIMEDOUT)
				break;
		}
		if (stopping)
			break;
		pthread_mutex_unlock(&mu);
		k_ignore(scheduler_run_now());
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

k_status scheduler_start(struct storage *st)
{
	ENSURE(st != NULL, K_E_VALIDATION);
	due_store = st;
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	int e = pthread_cond_init(&cv, &attr);
	pthread_condattr_destroy(&attr);
	ENSURE(e == 0, K_E_INTERNAL);
	stopping = false;
	if (pthread_create(&thread, NULL, scheduler_main, NULL) != 0) {
		pthread_cond_destroy(&cv);
		return K_E_INTERNAL;
	}
	started = true;
	return K_OK;
}

void scheduler_stop(void)
{
	if (!started)
		return;
	pthread_mutex_lock(&mu);
	stopping = true;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(thread, NULL);
	pthread_cond_destroy(&cv);
	started = false;
}

k_status scheduler_due_id(int64_t when, const char *task, const char *ns, const char *id, char *out,
			  size_t n)
{
	ENSURE(when >= 0 && task != NULL && ns != NULL && id != NULL, K_E_VALIDATION);
	ENSURE(strchr(task, '|') == NULL && strchr(ns, '|') == NULL, K_E_VALIDATION);
	int len = snprintf(out, n, "%015" PRId64 "|%s|%s|%s", when, task, ns, id);
	ENSURE(len > 0 && (size_t)len < n, K_E_VALIDATION);
	return K_OK;
}

void scheduler_due_put_op(struct storage_op *op, const char *due_id)
{
	memset(op, 0, sizeof *op);
	op->op = STORAGE_PUT;
	op->kind = SCHEDULER_DUE_KIND;
	op->ns = "";
	op->id = due_id;
	op->doc = kslice_cstr("{}");
	op->expect = STORAGE_ANY;
}

void scheduler_due_del_op(struct storage_op *op, const char *due_id)
{
	memset(op, 0, sizeof *op);
	op->op = STORAGE_DEL;
	op->kind = SCHEDULER_DUE_KIND;
	op->ns = "";
	op->id = due_id;
	op->expect = STORAGE_ANY;
}

/*
 * The listing is collected in batches before the callbacks run, so that
 * no read of the index is open while a callback writes to the store.
 */
#define DUE_BATCH 128

struct due_batch {
	const char *task;
	int64_t now;
	size_t n;
	bool more;
	char ids[DUE_BATCH][SCHEDULER_DUE_ID_MAX];
};

static K_MUST_CHECK k_status collect_cb(void *arg, const char *ns, const char *id,
					struct kslice doc, int64_t version)
{
	(void)doc;
	(void)version;
	struct due_batch *b = arg;
	char *end = NULL;
	long long when = strtoll(id, &end, 10);
	if (end == NULL || *end != '|')
		return K_OK; /* not ours: skip */
	if (when > b->now)
		return K_E_LIMIT_EXCEEDED; /* sorted by time: nothing later is due */
	if (b->n == DUE_BATCH) {
		b->more = true;
		return K_E_LIMIT_EXCEEDED;
	}
	size_t tl = strlen(b->task);
	if (strncmp(end + 1, b->task, tl) != 0 || end[1 + tl] != '|')
		return K_OK;
	if (strlen(id) >= SCHEDULER_DUE_ID_MAX)
		return K_OK;
	snprintf(b->ids[b->n++], SCHEDULER_DUE_ID_MAX, "%s", id);
	return K_OK;
}

/* Test mode: seconds to wait between claiming an item and running it. */
static _Atomic int test_hold_s;

void scheduler_test_hold(int seconds)
{
	atomic_store(&test_hold_s, seconds > 0 ? seconds : 0);
}

/*
 * Claims one due item for this node: the lease is the due record itself,
 * rewritten as {"Owner": node, "Expires": now + SCHEDULER_LEASE_S} with the
 * version read as precondition. Of several nodes racing, one write wins
 * and the others see K_E_CONFLICT; a record already gone (the work was
 * done) is K_E_NOT_FOUND. A lease of another node is honoured until it
 * expires, so a node that died holding it delays the item by at most the
 * lease. *claimed says whether this node may run the item; *version is
 * the version of the lease it wrote. Only a store failure is an error.
 */
static K_MUST_CHECK k_status lease_claim(const char *due_id, int64_t now, bool *claimed,
					 int64_t *version)
{
	*claimed = false;
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	int64_t v = 0;
	k_status rc = storage_get(due_store, SCHEDULER_DUE_KIND, "", due_id, &doc, &v);
	if (k_is(rc, K_E_NOT_FOUND)) {
		kbuf_release(&doc);
		return K_OK;
	}
	if (k_failed(rc)) {
		kbuf_release(&doc);
		return rc;
	}
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	kbuf_release(&doc);
	const char *owner = json_string_value(json_object_get(j, "Owner"));
	json_int_t expires = json_integer_value(json_object_get(j, "Expires"));
	bool held = owner != NULL && strcmp(owner, cluster_node_id()) != 0 && expires > now;
	json_decref(j);
	if (held)
		return K_OK;
	json_t *lease = json_pack("{s:s, s:I}", "Owner", cluster_node_id(), "Expires",
				  (json_int_t)(now + SCHEDULER_LEASE_S));
	char *text = lease != NULL ? json_dumps(lease, JSON_COMPACT) : NULL;
	json_decref(lease);
	ENSURE(text != NULL, K_E_INTERNAL);
	struct storage_op op = {.op = STORAGE_PUT,
				.kind = SCHEDULER_DUE_KIND,
				.ns = "",
				.id = due_id,
				.doc = kslice_cstr(text),
				.expect = v};
	rc = storage_apply(due_store, &op, 1);
	kjson_free(text);
	if (k_is(rc, K_E_CONFLICT) || k_is(rc, K_E_NOT_FOUND))
		return K_OK; /* another node claimed it, or finished it, first */
	GUARD(rc);
	*claimed = true;
	*version = v + 1;
	return K_OK;
}

/*
 * Gives back a lease whose item is still in the index (the callback left
 * it for a later run, or failed), so that any node may take it at once.
 * The callback's own work usually deleted the record, lease and all:
 * then there is nothing to give back.
 */
static void lease_release(const char *due_id, int64_t version)
{
	struct storage_op op;
	scheduler_due_put_op(&op, due_id);
	op.expect = version;
	k_status rc = storage_apply(due_store, &op, 1);
	if (k_failed(rc) && !k_is(rc, K_E_CONFLICT) && !k_is(rc, K_E_NOT_FOUND))
		LOG_DEBUG("scheduler: could not release the lease on %s: %s", due_id,
			  k_status_name(rc));
}

/* The test-mode pause between claim and run (scheduler_test_hold). */
static void test_hold(const char *due_id)
{
	int hold = atomic_load(&test_hold_s);
	if (hold <= 0)
		return;
	LOG_INFO("scheduler: holding the lease on %s for %d s (test mode)", due_id, hold);
	struct timespec ts = {.tv_sec = hold, .tv_nsec = 0};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Claims, runs and releases one listed item (see lease_claim). */
static K_MUST_CHECK k_status run_item(const char *due_id, int64_t now, scheduler_due_cb cb,
				      void *arg)
{
	/* "WHEN|task|ns|id": ns has no '|', the id is the rest. */
	char copy[SCHEDULER_DUE_ID_MAX];
	snprintf(copy, sizeof copy, "%s", due_id);
	char *p1 = strchr(copy, '|');
	char *p2 = p1 ? strchr(p1 + 1, '|') : NULL;
	char *p3 = p2 ? strchr(p2 + 1, '|') : NULL;
	if (p3 == NULL)
		return K_OK;
	*p1 = *p2 = *p3 = 0;
	int64_t when = strtoll(copy, NULL, 10);
	bool claimed = false;
	int64_t lease_v = 0;
	GUARD(lease_claim(due_id, now, &claimed, &lease_v));
	if (!claimed)
		return K_OK;
	test_hold(due_id);
	k_status rc = cb(arg, when, p2 + 1, p3 + 1, due_id);
	lease_release(due_id, lease_v);
	return rc;
}

k_status scheduler_due_list(const char *task, int64_t now, scheduler_due_cb cb, void *arg)
{
	ENSURE(due_store != NULL && task != NULL && cb != NULL, K_E_VALIDATION);
	struct due_batch *b = calloc(1, sizeof *b);
	ENSURE(b != NULL, K_E_INTERNAL);
	b->task = task;
	b->now = now;
	char after[SCHEDULER_DUE_ID_MAX] = "";
	k_status rc = K_OK;
	for (;;) {
		b->n = 0;
		b->more = false;
		rc = storage_list(due_store, SCHEDULER_DUE_KIND, "", NULL, after, 0, collect_cb, b);
		if (k_is(rc, K_E_LIMIT_EXCEEDED))
			rc = K_OK;
		if (k_failed(rc))
			break;
		for (size_t i = 0; i < b->n && k_ok(rc); i++)
			rc = run_item(b->ids[i], now, cb, arg);
		if (k_failed(rc) || !b->more)
			break;
		snprintf(after, sizeof after, "%s", b->ids[b->n - 1]);
	}
	free(b);
	return rc;
}
