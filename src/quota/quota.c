/*
 * quota.c — token buckets (GCRA) per account, region and operation class.
 *
 * GCRA keeps one number per bucket, the "theoretical arrival time" (tat):
 * a call at time t is allowed when tat - burst <= t, and then moves tat
 * to max(tat, t) + interval. With interval = 1/rate and burst = one
 * second, that is a token bucket of `rate` tokens refilled at `rate` per
 * second. The update is a compare-and-swap loop on one atomic word.
 * Buckets live in a fixed open-addressed table of atomic pointers; they
 * are created on first use and never freed while serving.
 *
 * In a cluster each node enforces its share of the rate: rate divided by
 * the live nodes (cluster_live_nodes(), an atomic the heartbeat thread
 * keeps), so that the nodes together allow about the account's rate, as
 * AWS does. The interval is worked out at each call from that count, so a
 * node that joins or leaves changes every share within a heartbeat or
 * two (docs/CLUSTER.md, "Quotas").
 */
#include "quota/quota.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster.h"
#include "core/clock.h"
#include "core/log.h"
#include "metrics/metrics.h"
#include "core/hash.h"
#include "core/banned.h"

#define TABLE 4096
#define MAX_OVERRIDES 64

struct override {
	char name[64];
	double rate;
};

struct bucket {
	char key[160];
	double rate; /* the cluster's rate; this node takes its share */
	_Atomic int64_t tat;
};

static atomic_bool on;
static struct override overrides[MAX_OVERRIDES];
static size_t n_overrides;
static _Atomic(struct bucket *) buckets[TABLE];

void quota_enable(bool v)
{
	atomic_store(&on, v);
}

bool quota_enabled(void)
{
	return atomic_load_explicit(&on, memory_order_relaxed);
}

k_status quota_set(const char *spec, bool (*known)(const char *name), struct kbuf *msg)
{
	const char *eq = strchr(spec, '=');
	if (eq == NULL || eq == spec || (size_t)(eq - spec) >= sizeof overrides[0].name) {
		kbuf_note(msg, "bad quota %s (want CLASS=RATE or Operation=RATE)", spec);
		return K_E_VALIDATION;
	}
	char name[64];
	snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
	char *end = NULL;
	double rate = strtod(eq + 1, &end);
	if (end == NULL || *end != 0 || !(rate > 0) || rate > 1e9) {
		kbuf_note(msg, "bad quota rate in %s (want a number of requests per second > 0)",
			  spec);
		return K_E_VALIDATION;
	}
	if (known == NULL || !known(name)) {
		kbuf_note(msg, "unknown quota class or operation %s", name);
		return K_E_VALIDATION;
	}
	if (n_overrides >= MAX_OVERRIDES) {
		kbuf_note(msg, "too many quota overrides");
		return K_E_VALIDATION;
	}
	snprintf(overrides[n_overrides].name, sizeof overrides[0].name, "%s", name);
	overrides[n_overrides].rate = rate;
	n_overrides++;
	quota_enable(true);
	return K_OK;
}

/* The larger regions' symmetric quota (requests-per-second.html). */
static double symmetric_rate(const char *region)
{
	static const char *const r50k[] = {"us-east-1", "us-west-2", "eu-west-1", NULL};
	static const char *const r10k[] = {"us-east-2",
					   "ap-southeast-1",
					   "ap-southeast-2",
					   "ap-northeast-1",
					   "eu-central-1",
					   "eu-west-2",
					   NULL};
	for (size_t i = 0; r50k[i] != NULL; i++) {
		if (strcmp(region, r50k[i]) == 0)
			return 50000;
	}
	for (size_t i = 0; r10k[i] != NULL; i++) {
		if (strcmp(region, r10k[i]) == 0)
			return 10000;
	}
	return 5500;
}

double quota_rate(const char *region, const char *op, const char *cls, double rate)
{
	if (!(rate > 0))
		return 0;
	const char *own = cls != NULL ? cls : op;
	/* The latest override wins; an operation's own override beats its class's. */
	double r = 0;
	for (size_t i = 0; i < n_overrides; i++) {
		if (strcmp(overrides[i].name, own) == 0)
			r = overrides[i].rate;
	}
	for (size_t i = 0; i < n_overrides; i++) {
		if (strcmp(overrides[i].name, op) == 0)
			r = overrides[i].rate;
	}
	if (r > 0)
		return r;
	if (cls != NULL && strcmp(cls, "symmetric") == 0)
		return symmetric_rate(region);
	return rate;
}

static struct bucket *bucket_for(const char *key, double rate)
{
	uint64_t h = khash(key);
	for (size_t probe = 0; probe < TABLE; probe++) {
		size_t i = (size_t)((h + probe) & (TABLE - 1));
		struct bucket *b = atomic_load_explicit(&buckets[i], memory_order_acquire);
		if (b != NULL) {
			if (strcmp(b->key, key) == 0)
				return b;
			continue;
		}
		struct bucket *nb = calloc(1, sizeof *nb);
		if (nb == NULL)
			return NULL;
		snprintf(nb->key, sizeof nb->key, "%s", key);
		nb->rate = rate;
		atomic_init(&nb->tat, 0);
		struct bucket *expected = NULL;
		if (atomic_compare_exchange_strong(&buckets[i], &expected, nb))
			return nb;
		free(nb);
		if (strcmp(expected->key, key) == 0)
			return expected;
	}
	return NULL;
}

k_status quota_take(const char *service, const char *account, const char *region, const char *op,
		    const char *cls, double rate)
{
	if (!quota_enabled() || op == NULL || !(rate > 0))
		return K_OK;
	rate = quota_rate(region, op, cls, rate);
	char key[160];
	snprintf(key, sizeof key, "%s|%s|%s|%s", service, account, region, cls != NULL ? cls : op);
	struct bucket *b = bucket_for(key, rate);
	if (b == NULL)
		return K_OK; /* table full: fail open rather than refuse everyone */
	/* This node's share; a burst of one second's worth of it. */
	double share = b->rate / (double)cluster_live_nodes();
	int64_t interval_ns = (int64_t)(1e9 / share);
	if (interval_ns < 1)
		interval_ns = 1;
	int64_t burst_ns = share >= 1 ? 1000000000ll : interval_ns;
	int64_t now = kclock_mono_ns();
	int64_t tat = atomic_load_explicit(&b->tat, memory_order_relaxed);
	for (;;) {
		int64_t base = tat > now ? tat : now;
		if (base - now + interval_ns > burst_ns) {
			metrics_throttled();
			return K_E_THROTTLING;
		}
		if (atomic_compare_exchange_weak_explicit(&b->tat, &tat, base + interval_ns,
							  memory_order_relaxed,
							  memory_order_relaxed))
			return K_OK;
	}
}

void quota_reset(void)
{
	for (size_t i = 0; i < TABLE; i++) {
		struct bucket *b = atomic_exchange(&buckets[i], NULL);
		free(b);
	}
}
