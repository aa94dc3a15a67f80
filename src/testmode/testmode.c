/*
 * testmode.c — KinkoTest.AdvanceClock, KinkoTest.Reset,
 * KinkoTest.RunScheduler, KinkoTest.HoldLeases, and the table that adds
 * the feed barrier's operations (barrier.c) (see testmode.h and docs/TESTING.md).
 */
#include "testmode/testmode.h"

#include <pthread.h>
#include <stdio.h>

#include "req/req.h"
#include "core/clock.h"
#include "core/log.h"
#include "kms/authz.h"
#include "kms/kms.h"
#include "scheduler/scheduler.h"
#include "testmode/barrier.h"
#include "core/banned.h"

static struct storage *store;
static pthread_mutex_t hooks_mu = PTHREAD_MUTEX_INITIALIZER;
static testmode_reset_fn hooks[TESTMODE_MAX_HOOKS];
static size_t n_hooks;

k_status testmode_on_reset(testmode_reset_fn fn)
{
	ENSURE(fn != NULL, K_E_VALIDATION);
	k_status rc = K_OK;
	pthread_mutex_lock(&hooks_mu);
	if (n_hooks >= TESTMODE_MAX_HOOKS)
		rc = K_E_LIMIT_EXCEEDED;
	else
		hooks[n_hooks++] = fn;
	pthread_mutex_unlock(&hooks_mu);
	return rc;
}

static K_MUST_CHECK k_status op_advance_clock(struct api_ctx *c, json_t *in, json_t *out)
{
	int64_t seconds = 0;
	bool present;
	GUARD(api_int(c, in, "Seconds", true, 0, (int64_t)100 * 365 * 86400 - 1, &present,
		      &seconds));
	GUARD(kclock_advance(seconds));
	LOG_INFO("test clock advanced by %lld s (offset now %lld s)", (long long)seconds,
		 (long long)kclock_offset());
	json_object_set_new(out, "Offset", json_integer(kclock_offset()));
	json_object_set_new(out, "Now", json_integer(kclock_now()));
	return K_OK;
}

static K_MUST_CHECK k_status op_run_scheduler(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)in;
	k_status rc = scheduler_run_now();
	if (k_failed(rc))
		return api_fail(c, K_E_INTERNAL, "A scheduled task failed: %s", k_status_name(rc));
	json_object_set_new(out, "Now", json_integer(kclock_now()));
	return K_OK;
}

/*
 * HoldLeases: every item the scheduler claims from now on waits Seconds
 * before it runs (0 turns it off), so that a cluster test can kill -9 a
 * node while it holds a lease (scheduler.h).
 */
static K_MUST_CHECK k_status op_hold_leases(struct api_ctx *c, json_t *in, json_t *out)
{
	int64_t seconds = 0;
	bool present;
	GUARD(api_int(c, in, "Seconds", true, 0, 3600, &present, &seconds));
	scheduler_test_hold((int)seconds);
	json_object_set_new(out, "Seconds", json_integer(seconds));
	return K_OK;
}

/*
 * Reset empties the caller's account: the store deletes every record
 * whose ns is "ACCOUNT:..." (all kinds, all regions) in one transaction,
 * which the store's change feed announces to the caches (storage.h); then
 * every registered module hook runs.
 * Stale due-index records are skipped by the scheduler when it finds
 * their documents gone.
 */
static K_MUST_CHECK k_status op_reset(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)in;
	(void)out;
	char prefix[32];
	snprintf(prefix, sizeof prefix, "%s:", c->principal.account);
	GUARD(storage_purge(store, prefix));
	pthread_mutex_lock(&hooks_mu);
	size_t n = n_hooks;
	pthread_mutex_unlock(&hooks_mu);
	for (size_t i = 0; i < n; i++)
		hooks[i](c->principal.account);
	LOG_INFO("test-mode reset of account %s", c->principal.account);
	return K_OK;
}

/* The rows (req/req.h): on no resource, no quota; all but FeedBarrierSeen change state. */
#define OP(nm, fn) OP_MUT(nm, fn, true)
#define OP_MUT(nm, fn, mut)                                                                        \
	{                                                                                          \
		.name = nm, .handler = fn, .action = "kinko-test:" nm, .resource = API_RES_NONE,   \
		.member = NULL, .state = API_STATE_NA, .quota = {NULL, API_QUOTA_NONE},            \
		.mutates = mut, .key_use = false, .max_body = 0                                    \
	}

static const struct api_operation test_ops[] = {
	OP("AdvanceClock", op_advance_clock),
	OP("FeedBarrier", testmode_op_feed_barrier),
	OP_MUT("FeedBarrierSeen", testmode_op_feed_barrier_seen, false),
	OP("Reset", op_reset),
	OP("RunScheduler", op_run_scheduler),
	OP("HoldLeases", op_hold_leases),
};

/*
 * The test operations are authorized like any keyless operation: the
 * caller's identity policies must allow the row's action on "*". The
 * account root has every identity permission in its own account (dev
 * mode's "test" key is the root of 000000000000), so by default only
 * roots may call them; an IAM user or role needs a policy that allows
 * kinko-test:Reset (or kinko-test:*). A denial is AccessDeniedException
 * with IAM's message, and the handler does not run.
 */
static K_MUST_CHECK k_status test_authorize(struct api_ctx *c, json_t *in)
{
	(void)in;
	return c->op->resource == API_RES_NONE ? authz_identity(c, c->op->action, "*")
					       : K_E_INTERNAL;
}

static const struct api_service test_service = {
	.target_prefix = "KinkoTest.",
	.signing_name = "kms",
	.event_source = "kinko.test",
	.ops = test_ops,
	.n_ops = sizeof test_ops / sizeof test_ops[0],
	.authorize = test_authorize,
	.resources = API_RES_BIT(API_RES_NONE),
};

k_status testmode_init(struct storage *st)
{
	store = st;
	return st != NULL ? testmode_barrier_init(st)
			  : K_OK; /* NULL: `kinko ops` lists the table */
}

const struct api_service *testmode_service_table(void)
{
	return &test_service;
}
