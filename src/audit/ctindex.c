/*
 * ctindex.c — this node's audit events, indexed into the shared store in
 * the background, so that CloudTrail LookupEvents on any node of a
 * cluster answers over every node's events (docs/CLUSTER.md, "Audit
 * across nodes").
 *
 * The trail stays the record of truth (its chain, its fail-closed
 * writes); the index is a copy for queries. A written event is queued in
 * memory (a copy of its line); a thread writes the queue to the store
 * about twice a second, in batches of one transaction each. A full queue
 * drops events from the index (counted and logged), never from the trail.
 * Records: kind AUDIT_CTINDEX_KIND, ns "ACCOUNT:REGION" of the event, id
 * "%015lld|NODE|EVENT_ID" (eventTime in seconds), so a listing runs in
 * time order. Off unless audit_ctindex_start() ran (`kinko serve` starts
 * it on a shared store only): a single node pays nothing.
 */
#include "audit/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster.h"
#include "core/log.h"
#include "storage/storage.h"
#include "core/banned.h"

#define QUEUE_MAX 65536
#define BATCH 256
#define FLUSH_MS 500

static _Atomic bool on;
static struct storage *store;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static char **queue;
static size_t n_queued;
static unsigned long dropped;
static bool running, stopping;
static pthread_t thread;

bool audit_ctindex_enabled(void)
{
	return atomic_load_explicit(&on, memory_order_relaxed);
}

void audit_ctindex_note(const char *json, size_t len)
{
	if (!audit_ctindex_enabled())
		return;
	char *copy = malloc(len + 1);
	if (copy != NULL) {
		memcpy(copy, json, len);
		copy[len] = 0;
	}
	pthread_mutex_lock(&mu);
	if (copy != NULL && n_queued < QUEUE_MAX) {
		queue[n_queued++] = copy;
		copy = NULL;
	} else {
		dropped++;
	}
	pthread_mutex_unlock(&mu);
	free(copy);
}

struct indexed {
	char ns[64];
	char id[200];
	char *doc;
};

/* The record of one event line; false if the line lacks what the index needs. */
static bool index_of(char *line, struct indexed *out)
{
	json_t *e = json_loads(line, 0, NULL);
	const char *when = json_string_value(json_object_get(e, "eventTime"));
	const char *acct = json_string_value(json_object_get(e, "recipientAccountId"));
	const char *region = json_string_value(json_object_get(e, "awsRegion"));
	const char *eid = json_string_value(json_object_get(e, "eventID"));
	int64_t t = 0;
	bool ok = when != NULL && acct != NULL && region != NULL && eid != NULL &&
		  audit_parse_iso8601(when, &t) && t >= 0;
	if (ok) {
		int a = snprintf(out->ns, sizeof out->ns, "%s:%s", acct, region);
		int b = snprintf(out->id, sizeof out->id, "%015" PRId64 "|%s|%s", t,
				 cluster_node_id(), eid);
		ok = a > 0 && (size_t)a < sizeof out->ns && b > 0 && (size_t)b < sizeof out->id;
	}
	json_decref(e);
	out->doc = line;
	return ok;
}

/* Writes items[0..n) (lines, freed here) in batches; a failed batch is logged and dropped. */
static void write_items(char **items, size_t n)
{
	struct indexed *ix = calloc(BATCH, sizeof *ix);
	struct storage_op *ops = calloc(BATCH, sizeof *ops);
	for (size_t i = 0; i < n;) {
		size_t k = 0;
		for (; i < n && k < BATCH; i++) {
			if (ix == NULL || ops == NULL || !index_of(items[i], &ix[k])) {
				free(items[i]);
				continue;
			}
			ops[k] = (struct storage_op){.op = STORAGE_PUT,
						     .kind = AUDIT_CTINDEX_KIND,
						     .ns = ix[k].ns,
						     .id = ix[k].id,
						     .doc = kslice_cstr(ix[k].doc),
						     .expect = STORAGE_ANY};
			k++;
		}
		k_status rc = k > 0 ? storage_apply(store, ops, k) : K_OK;
		if (k_failed(rc))
			LOG_WARN(
				"audit: %zu events not indexed for LookupEvents on other nodes: %s",
				k, k_status_name(rc));
		for (size_t j = 0; j < k; j++)
			free(ix[j].doc);
	}
	free(ix);
	free(ops);
}

static void flush(void)
{
	pthread_mutex_lock(&mu);
	char **items = queue;
	size_t n = n_queued;
	unsigned long lost = dropped;
	char **fresh = calloc(QUEUE_MAX, sizeof *fresh);
	if (fresh != NULL) {
		queue = fresh;
		n_queued = 0;
		dropped = 0;
	}
	pthread_mutex_unlock(&mu);
	if (fresh == NULL)
		return; /* out of memory: the queue stays, the next round tries again */
	if (lost > 0)
		LOG_WARN("audit: %lu events were not indexed for LookupEvents on other nodes "
			 "(queue full)",
			 lost);
	write_items(items, n);
	free(items);
}

static void *ctindex_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	while (!stopping) {
		struct timespec deadline;
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_nsec += (long)FLUSH_MS * 1000000L;
		deadline.tv_sec += deadline.tv_nsec / 1000000000L;
		deadline.tv_nsec %= 1000000000L;
		while (!stopping && pthread_cond_timedwait(&cv, &mu, &deadline) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&mu);
		flush(); /* once more when stopping */
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

k_status audit_ctindex_start(struct storage *st)
{
	ENSURE(st != NULL && !running, K_E_VALIDATION);
	store = st;
	queue = calloc(QUEUE_MAX, sizeof *queue);
	ENSURE(queue != NULL, K_E_INTERNAL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	int e = pthread_cond_init(&cv, &attr);
	pthread_condattr_destroy(&attr);
	ENSURE(e == 0, K_E_INTERNAL);
	stopping = false;
	if (pthread_create(&thread, NULL, ctindex_main, NULL) != 0) {
		pthread_cond_destroy(&cv);
		return K_E_INTERNAL;
	}
	running = true;
	atomic_store(&on, true);
	return K_OK;
}

void audit_ctindex_stop(void)
{
	if (!running)
		return;
	atomic_store(&on, false);
	pthread_mutex_lock(&mu);
	stopping = true;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(thread, NULL);
	pthread_cond_destroy(&cv);
	for (size_t i = 0; i < n_queued; i++)
		free(queue[i]);
	free(queue);
	queue = NULL;
	n_queued = 0;
	running = false;
}

struct other_walk {
	int64_t to;
	audit_ctindex_cb cb;
	void *arg;
};

static K_MUST_CHECK k_status other_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				      int64_t version)
{
	(void)ns;
	(void)version;
	struct other_walk *w = arg;
	char *end = NULL;
	long long t = strtoll(id, &end, 10);
	if (end == NULL || *end != '|')
		return K_OK;
	if (w->to >= 0 && t > w->to)
		return K_E_LIMIT_EXCEEDED; /* in time order: nothing later matches */
	const char *node = end + 1;
	const char *bar = strchr(node, '|');
	size_t me = strlen(cluster_node_id());
	if (bar == NULL ||
	    ((size_t)(bar - node) == me && strncmp(node, cluster_node_id(), me) == 0))
		return K_OK; /* this node's own events come from its trail */
	json_t *e = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	if (e == NULL)
		return K_OK;
	char nd[CLUSTER_NODE_ID_MAX + 1];
	snprintf(nd, sizeof nd, "%.*s", (int)(bar - node), node);
	bool go = w->cb(w->arg, nd, bar + 1, e);
	json_decref(e);
	return go ? K_OK : K_E_LIMIT_EXCEEDED;
}

k_status audit_ctindex_list_others(const char *ns, int64_t from, int64_t to, audit_ctindex_cb cb,
				   void *arg)
{
	ENSURE(store != NULL && ns != NULL && cb != NULL, K_E_VALIDATION);
	char after[32] = "";
	if (from > 0)
		snprintf(after, sizeof after, "%015" PRId64, from - 1);
	struct other_walk w = {.to = to, .cb = cb, .arg = arg};
	/* Ids of second from-1 sort after "%015lld" of it; those are skipped by the caller's time filter. */
	k_status rc = storage_list(store, AUDIT_CTINDEX_KIND, ns, NULL, after[0] ? after : NULL, 0,
				   other_cb, &w);
	return k_is(rc, K_E_LIMIT_EXCEEDED) ? K_OK : rc;
}
