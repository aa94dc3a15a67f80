/*
 * lastuse.c — the last cryptographic use of each key, fed from the audit
 * stream. The GetKeyLastUsage operation that reads it is in
 * kms/ops_usage.c.
 *
 * The index is a sharded hash map (key ARN -> last use) with a mutex per
 * shard and BUCKETS chains in each; an update is made after the call's event is durable, off the
 * shared path of other keys. It is rebuilt from the logs at start.
 *
 * Cluster-wide (docs/CLUSTER.md, "Key last use"): an updated entry is
 * marked dirty, and a background thread writes the dirty entries to the
 * store about once a second (one transaction per batch), keeping for each
 * key the latest use any node reported. GetKeyLastUsage reads the local
 * entry and the store's and answers with the later one. No store access
 * happens on the call that used the key.
 */
#include "audit/audit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <jansson.h>
#include <time.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "storage/storage.h"
#include "core/lock.h"
#include "core/hash.h"
#include "core/banned.h"

#define SHARDS 64
/* Chains per shard: 65,536 in all, so that 100,000 keys make chains of one or two. */
#define BUCKETS 1024

struct use {
	char arn[300];
	char op[48];
	int64_t t;
	char event_id[40];
	char request_id[40];
	bool dirty; /* newer than what this node last wrote to the store */
	bool live;  /* noted by a call since the start (not read back from the trail) */
	struct use *next;
};

static struct {
	pthread_mutex_t mu;
	struct use *head[BUCKETS];
} shards[SHARDS];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Atomic int64_t tracking_start;

static void init_shards(void)
{
	for (size_t i = 0; i < SHARDS; i++)
		pthread_mutex_init(&shards[i].mu, NULL);
}

/* The shard of arn; *b its chain in the shard. */
static size_t shard_of(const char *arn, size_t *b)
{
	uint64_t h = khash(arn);
	*b = (size_t)((h / SHARDS) % BUCKETS);
	return (size_t)(h % SHARDS);
}

/*
 * A use replaces the kept one if it is later, or in the same second and
 * not a use read back at start (past) over one a call noted (live): the
 * records read back all come before the calls made since the start.
 */
static void note(const char *arn, const char *op, int64_t t, const char *event_id,
		 const char *request_id, bool live)
{
	if (arn == NULL || op == NULL)
		return;
	pthread_once(&once, init_shards);
	size_t b;
	size_t s = shard_of(arn, &b);
	klock(&shards[s].mu);
	struct use *u = shards[s].head[b];
	while (u != NULL && strcmp(u->arn, arn) != 0)
		u = u->next;
	if (u == NULL) {
		u = calloc(1, sizeof *u);
		if (u == NULL) {
			pthread_mutex_unlock(&shards[s].mu);
			return;
		}
		kstr_copy(u->arn, sizeof u->arn, arn);
		u->next = shards[s].head[b];
		shards[s].head[b] = u;
	}
	if (t > u->t || (t == u->t && (live || !u->live))) {
		u->live = live;
		kstr_copy(u->op, sizeof u->op, op);
		u->t = t;
		kstr_copy(u->event_id, sizeof u->event_id, event_id ? event_id : "");
		kstr_copy(u->request_id, sizeof u->request_id, request_id ? request_id : "");
		u->dirty = true;
	}
	pthread_mutex_unlock(&shards[s].mu);
}

void audit_lastuse_note(const char *arn, const char *op, int64_t t, const char *event_id,
			const char *request_id)
{
	note(arn, op, t, event_id, request_id, true);
}

void audit_lastuse_note_past(const char *arn, const char *op, int64_t t, const char *event_id,
			     const char *request_id)
{
	note(arn, op, t, event_id, request_id, false);
}

void audit_lastuse_set_tracking_start(int64_t t)
{
	atomic_store(&tracking_start, t);
}

int64_t audit_lastuse_tracking_start(void)
{
	return atomic_load(&tracking_start);
}

void audit_lastuse_reset(void)
{
	pthread_once(&once, init_shards);
	for (size_t i = 0; i < SHARDS; i++) {
		for (size_t b = 0; b < BUCKETS; b++) {
			pthread_mutex_lock(&shards[i].mu);
			struct use *u = shards[i].head[b];
			shards[i].head[b] = NULL;
			pthread_mutex_unlock(&shards[i].mu);
			while (u != NULL) {
				struct use *n = u->next;
				free(u);
				u = n;
			}
		}
	}
	atomic_store(&tracking_start, 0);
}

bool audit_lastuse_get(const char *arn, struct audit_lastuse *out)
{
	pthread_once(&once, init_shards);
	size_t b;
	size_t s = shard_of(arn, &b);
	bool found = false;
	pthread_mutex_lock(&shards[s].mu);
	for (struct use *u = shards[s].head[b]; u != NULL; u = u->next) {
		if (strcmp(u->arn, arn) == 0) {
			kstr_copy(out->op, sizeof out->op, u->op);
			out->t = u->t;
			kstr_copy(out->event_id, sizeof out->event_id, u->event_id);
			kstr_copy(out->request_id, sizeof out->request_id, u->request_id);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&shards[s].mu);
	return found;
}

/* ---- sharing with the other nodes of a cluster ---- */

#define FLUSH_MS 1000
#define FLUSH_BATCH 256

struct flush_item {
	char arn[300];
	char ns[128];
	struct audit_lastuse u;
	int64_t version; /* the store's, read before the write; STORAGE_ABSENT if none */
	char *doc;
};

static struct storage *shared;
static pthread_mutex_t flush_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t flush_cv;
static bool flush_running, flush_stopping;
static pthread_t flush_thread;

static void use_copy(struct audit_lastuse *out, const struct use *u)
{
	kstr_copy(out->op, sizeof out->op, u->op);
	out->t = u->t;
	kstr_copy(out->event_id, sizeof out->event_id, u->event_id);
	kstr_copy(out->request_id, sizeof out->request_id, u->request_id);
}

/* Where a round's walk over the shards stands: the next chain to look at. */
struct walk {
	size_t shard, bucket;
};

/*
 * Up to max dirty entries, taken (their flag cleared) into items, going on
 * from where the last call of the round stopped, so a round walks the
 * index once whatever the number of batches (starting each batch from the
 * first shard made a round quadratic in the keys used: at 100,000 keys it
 * took most of a core). An entry that turns dirty behind the walk waits
 * for the next round.
 */
static size_t take_dirty(struct flush_item *items, size_t max, struct walk *w)
{
	size_t n = 0;
	for (; w->shard < SHARDS && n < max; w->shard++, w->bucket = 0) {
		klock(&shards[w->shard].mu);
		for (; w->bucket < BUCKETS && n < max; w->bucket++) {
			for (struct use *u = shards[w->shard].head[w->bucket]; u != NULL;
			     u = u->next) {
				if (!u->dirty)
					continue;
				u->dirty = false;
				kstr_copy(items[n].arn, sizeof items[n].arn, u->arn);
				use_copy(&items[n].u, u);
				n++;
				if (n == max)
					break;
			}
			if (n == max)
				break; /* the rest of this chain next time */
		}
		pthread_mutex_unlock(&shards[w->shard].mu);
		if (n == max)
			break;
	}
	return n;
}

/* Parses a stored last use; false if the document is not one. */
static bool parse_use(struct kslice doc, struct audit_lastuse *out)
{
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	const char *op = json_string_value(json_object_get(j, "Operation"));
	json_t *t = json_object_get(j, "Timestamp");
	bool ok = op != NULL && json_is_integer(t);
	if (ok) {
		kstr_copy(out->op, sizeof out->op, op);
		out->t = json_integer_value(t);
		const char *e = json_string_value(json_object_get(j, "CloudTrailEventId"));
		const char *r = json_string_value(json_object_get(j, "KmsRequestId"));
		kstr_copy(out->event_id, sizeof out->event_id, e ? e : "");
		kstr_copy(out->request_id, sizeof out->request_id, r ? r : "");
	}
	json_decref(j);
	return ok;
}

/*
 * The namespace of a key ARN's record, "ACCOUNT:REGION" as the key's own
 * (arn:aws:kms:REGION:ACCOUNT:key/ID), so that emptying an account (the
 * test-mode reset) takes its records too; "" for anything else.
 */
static void arn_ns(const char *arn, char *ns, size_t n)
{
	ns[0] = 0;
	const char *p = arn;
	for (int i = 0; i < 3 && p != NULL; i++) {
		p = strchr(p, ':');
		p = p != NULL ? p + 1 : NULL;
	}
	const char *acct = p != NULL ? strchr(p, ':') : NULL;
	const char *end = acct != NULL ? strchr(acct + 1, ':') : NULL;
	if (end == NULL)
		return;
	snprintf(ns, n, "%.*s:%.*s", (int)(end - acct - 1), acct + 1, (int)(acct - p), p);
}

/* The store's last use of arn; K_E_NOT_FOUND if it has none. */
static K_MUST_CHECK k_status read_shared(const char *arn, struct audit_lastuse *out,
					 int64_t *version)
{
	char ns[128];
	arn_ns(arn, ns, sizeof ns);
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	k_status rc = storage_get(shared, AUDIT_LASTUSE_KIND, ns, arn, &doc, version);
	if (k_ok(rc) && !parse_use(kbuf_slice(&doc), out))
		rc = K_E_INTERNAL;
	kbuf_release(&doc);
	return rc;
}

/* Puts the entries back in the dirty set (a failed write is retried). */
static void redirty(const struct flush_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		audit_lastuse_note(items[i].arn, items[i].u.op, items[i].u.t, items[i].u.event_id,
				   items[i].u.request_id);
}

/*
 * One batch: for each entry, the store's copy is read and the entry kept
 * only if it is later; the writes go in one transaction, each with the
 * version read as precondition, so a later use written meanwhile by
 * another node is never overwritten. A conflict (or any failure) returns
 * the whole batch to the dirty set for the next round.
 */
static K_MUST_CHECK k_status flush_batch(struct flush_item *items, size_t n)
{
	struct storage_op *ops = calloc(n > 0 ? n : 1, sizeof *ops);
	ENSURE(ops != NULL, K_E_INTERNAL);
	size_t nops = 0;
	k_status rc = K_OK;
	for (size_t i = 0; i < n && k_ok(rc); i++) {
		struct audit_lastuse cur;
		int64_t v = 0;
		k_status g = read_shared(items[i].arn, &cur, &v);
		if (k_ok(g) && cur.t >= items[i].u.t)
			continue;
		if (k_is(g, K_E_NOT_FOUND))
			v = STORAGE_ABSENT;
		else if (k_failed(g) && !k_is(g, K_E_INTERNAL)) {
			rc = g;
			break;
		}
		json_t *d = json_pack("{s:s,s:I,s:s,s:s}", "Operation", items[i].u.op, "Timestamp",
				      (json_int_t)items[i].u.t, "CloudTrailEventId",
				      items[i].u.event_id, "KmsRequestId", items[i].u.request_id);
		items[i].doc = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;
		json_decref(d);
		if (items[i].doc == NULL) {
			rc = K_E_INTERNAL;
			break;
		}
		arn_ns(items[i].arn, items[i].ns, sizeof items[i].ns);
		ops[nops++] = (struct storage_op){.op = STORAGE_PUT,
						  .kind = AUDIT_LASTUSE_KIND,
						  .ns = items[i].ns,
						  .id = items[i].arn,
						  .doc = kslice_cstr(items[i].doc),
						  .expect = v};
	}
	if (k_ok(rc) && nops > 0)
		rc = storage_apply(shared, ops, nops);
	for (size_t i = 0; i < n; i++) {
		kjson_free(items[i].doc);
		items[i].doc = NULL;
	}
	free(ops);
	if (k_failed(rc))
		redirty(items, n);
	return rc;
}

static void flush_all(struct flush_item *items)
{
	struct walk w = {0, 0};
	for (;;) {
		size_t n = take_dirty(items, FLUSH_BATCH, &w);
		if (n == 0)
			return;
		k_status rc = flush_batch(items, n);
		if (k_failed(rc)) {
			LOG_DEBUG("audit: sharing the last key uses failed: %s (retried)",
				  k_status_name(rc));
			return;
		}
	}
}

static void *flush_main(void *arg)
{
	struct flush_item *items = arg;
	pthread_mutex_lock(&flush_mu);
	while (!flush_stopping) {
		struct timespec deadline;
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_nsec += (long)FLUSH_MS * 1000000L;
		deadline.tv_sec += deadline.tv_nsec / 1000000000L;
		deadline.tv_nsec %= 1000000000L;
		while (!flush_stopping &&
		       pthread_cond_timedwait(&flush_cv, &flush_mu, &deadline) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&flush_mu);
		flush_all(items); /* also once more when stopping */
		pthread_mutex_lock(&flush_mu);
	}
	pthread_mutex_unlock(&flush_mu);
	free(items);
	return NULL;
}

k_status audit_lastuse_share_start(struct storage *st)
{
	ENSURE(st != NULL && !flush_running, K_E_VALIDATION);
	pthread_once(&once, init_shards);
	shared = st;
	struct flush_item *items = calloc(FLUSH_BATCH, sizeof *items);
	ENSURE(items != NULL, K_E_INTERNAL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	int e = pthread_cond_init(&flush_cv, &attr);
	pthread_condattr_destroy(&attr);
	if (e != 0) {
		free(items);
		return K_E_INTERNAL;
	}
	flush_stopping = false;
	if (pthread_create(&flush_thread, NULL, flush_main, items) != 0) {
		pthread_cond_destroy(&flush_cv);
		free(items);
		return K_E_INTERNAL;
	}
	flush_running = true;
	return K_OK;
}

void audit_lastuse_share_stop(void)
{
	if (!flush_running)
		return;
	pthread_mutex_lock(&flush_mu);
	flush_stopping = true;
	pthread_cond_signal(&flush_cv);
	pthread_mutex_unlock(&flush_mu);
	pthread_join(flush_thread, NULL);
	pthread_cond_destroy(&flush_cv);
	flush_running = false;
}

bool audit_lastuse_get_cluster(const char *arn, struct audit_lastuse *out)
{
	bool found = audit_lastuse_get(arn, out);
	if (shared == NULL)
		return found;
	struct audit_lastuse s;
	int64_t v = 0;
	if (k_failed(read_shared(arn, &s, &v)))
		return found;
	if (!found || s.t > out->t)
		*out = s;
	return true;
}
