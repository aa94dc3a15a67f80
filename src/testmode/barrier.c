/*
 * barrier.c — KinkoTest.FeedBarrier and KinkoTest.FeedBarrierSeen (see
 * barrier.h). The marks seen are kept in a ring, the newest overwriting
 * the oldest: a harness asks about a mark within moments of sending it.
 */
#include "testmode/barrier.h"

#include <pthread.h>
#include <string.h>

#include "req/req.h"
#include "core/banned.h"

static struct storage *store;
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char seen[TESTMODE_BARRIER_SEEN][STORAGE_MAX_MARK + 1];
static size_t seen_next;

static void on_change(void *arg, const struct storage_event *ev)
{
	(void)arg;
	if (ev->what != STORAGE_EV_MARK || ev->id == NULL || strlen(ev->id) > STORAGE_MAX_MARK)
		return;
	pthread_mutex_lock(&seen_mu);
	memcpy(seen[seen_next], ev->id, strlen(ev->id) + 1);
	seen_next = (seen_next + 1) % TESTMODE_BARRIER_SEEN;
	pthread_mutex_unlock(&seen_mu);
}

static bool was_seen(const char *token)
{
	bool found = false;
	pthread_mutex_lock(&seen_mu);
	for (size_t i = 0; i < TESTMODE_BARRIER_SEEN && !found; i++)
		found = strcmp(seen[i], token) == 0;
	pthread_mutex_unlock(&seen_mu);
	return found;
}

k_status testmode_barrier_init(struct storage *st)
{
	store = st;
	return storage_subscribe(st, on_change, NULL);
}

/* The request's Token, checked as a mark's token. */
static K_MUST_CHECK k_status read_token(struct api_ctx *c, json_t *in, const char **token)
{
	GUARD(api_string(c, in, "Token", true, 1, STORAGE_MAX_MARK, token));
	if (k_failed(storage_mark_check(*token)))
		return api_fail(c, K_E_VALIDATION,
				"Token must be 1 to %u letters, digits, '-' or '_'",
				STORAGE_MAX_MARK);
	return K_OK;
}

k_status testmode_op_feed_barrier(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *token = NULL;
	GUARD(read_token(c, in, &token));
	k_status rc = storage_mark(store, token);
	if (k_failed(rc))
		return api_fail(c, K_E_INTERNAL, "The feed barrier could not be sent: %s",
				k_status_name(rc));
	json_object_set_new(out, "Token", json_string(token));
	return K_OK;
}

k_status testmode_op_feed_barrier_seen(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *token = NULL;
	GUARD(read_token(c, in, &token));
	json_object_set_new(out, "Seen", json_boolean(was_seen(token)));
	return K_OK;
}
