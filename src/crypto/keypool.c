/*
 * keypool.c — RSA keys made ahead of time (see asym.h, asym_generate).
 *
 * An RSA_4096 key takes a second or more to generate; an elliptic-curve
 * key takes well under a millisecond. For each RSA spec, once a key of it
 * has been asked for, one background thread keeps up to
 * ASYM_POOL_DEPTH keys ready, so that a CreateKey (or a
 * GenerateDataKeyPair, or an import's wrapping key) takes one from the
 * pool instead of waiting, and a burst of them waits only for what the
 * pool cannot cover. A spec nobody asks for costs nothing: a server that
 * never makes RSA keys never starts the thread.
 *
 * The keys wait as PKCS#8 in ksecrets (locked, not in core dumps, wiped
 * when freed), each handed out at most once and then removed from the
 * pool. Only a server has a pool (asym_pool_enable): a command that makes
 * one key, or a test, has no thread left generating when it exits. The
 * thread runs at a lower priority than the request threads
 * (ASYM_POOL_NICE), so refilling takes only CPU that nothing else wants.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "crypto/asym.h"
#include "crypto/internal.h"
#include "core/banned.h"

#define ASYM_POOL_NICE 10

static const char *const pooled_specs[] = {"RSA_2048", "RSA_3072", "RSA_4096"};
#define N_POOLED (sizeof pooled_specs / sizeof pooled_specs[0])

struct spec_pool {
	bool wanted; /* a key of this spec was asked for: keep the pool full */
	unsigned n;
	struct ksecret *keys[ASYM_POOL_DEPTH];
};

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static struct spec_pool pools[N_POOLED];
static bool enabled; /* asym_pool_enable was called: a server */
static bool thread_started;
static atomic_bool stopping; /* also read, without the lock, by a generation under way */
static pthread_t refill_thread;

static int pooled_index(const char *spec)
{
	for (size_t i = 0; i < N_POOLED; i++) {
		if (strcmp(pooled_specs[i], spec) == 0)
			return (int)i;
	}
	return -1;
}

/* The first spec that is wanted and not full, or -1; under pool_mu. */
static int spec_to_fill(void)
{
	for (size_t i = 0; i < N_POOLED; i++) {
		if (pools[i].wanted && pools[i].n < ASYM_POOL_DEPTH)
			return (int)i;
	}
	return -1;
}

static void lower_priority(void)
{
	id_t tid = (id_t)syscall(SYS_gettid);
	int now = getpriority(PRIO_PROCESS, tid);
	if (setpriority(PRIO_PROCESS, tid, now + ASYM_POOL_NICE) != 0)
		LOG_DEBUG("crypto: the key pool's thread keeps its priority");
}

/*
 * Generates outside the lock, one key at a time, and puts each key in its
 * pool unless the pool filled meanwhile or is stopping (then the key is
 * wiped).
 */
static void *refill(void *arg)
{
	(void)arg;
	lower_priority();
	pthread_mutex_lock(&pool_mu);
	for (;;) {
		int i = spec_to_fill();
		while (i < 0 && !stopping) {
			pthread_cond_wait(&pool_cv, &pool_mu);
			i = spec_to_fill();
		}
		if (stopping)
			break;
		pthread_mutex_unlock(&pool_mu);
		struct ksecret *key = NULL;
		if (k_failed(asym_generate_new(pooled_specs[i], &stopping, &key)) &&
		    !atomic_load(&stopping))
			LOG_WARN("crypto: the key pool could not make a %s key", pooled_specs[i]);
		pthread_mutex_lock(&pool_mu);
		struct spec_pool *p = &pools[i];
		if (key != NULL && !stopping && p->n < ASYM_POOL_DEPTH) {
			p->keys[p->n++] = key;
			key = NULL;
		}
		ksecret_free(key);
	}
	pthread_mutex_unlock(&pool_mu);
	return NULL;
}

bool asym_pool_take(const char *spec, struct ksecret **out)
{
	int i = pooled_index(spec);
	if (i < 0)
		return false;
	bool taken = false;
	pthread_mutex_lock(&pool_mu);
	struct spec_pool *p = &pools[i];
	if (enabled && !stopping) {
		p->wanted = true;
		if (!thread_started) {
			thread_started = pthread_create(&refill_thread, NULL, refill, NULL) == 0;
			if (!thread_started)
				LOG_WARN("crypto: cannot start the key pool's thread");
		}
		if (p->n > 0) {
			*out = p->keys[--p->n];
			p->keys[p->n] = NULL;
			taken = true;
		}
		pthread_cond_signal(&pool_cv);
	}
	pthread_mutex_unlock(&pool_mu);
	return taken;
}

void asym_pool_enable(void)
{
	pthread_mutex_lock(&pool_mu);
	enabled = true;
	pthread_mutex_unlock(&pool_mu);
}

void asym_pool_stop(void)
{
	pthread_mutex_lock(&pool_mu);
	atomic_store(&stopping, true); /* ends the generation under way too */
	bool joined = thread_started;
	pthread_cond_broadcast(&pool_cv);
	pthread_mutex_unlock(&pool_mu);
	if (joined)
		pthread_join(refill_thread, NULL);
	pthread_mutex_lock(&pool_mu);
	for (size_t i = 0; i < N_POOLED; i++) {
		while (pools[i].n > 0) {
			ksecret_free(pools[i].keys[--pools[i].n]);
			pools[i].keys[pools[i].n] = NULL;
		}
		pools[i].wanted = false;
	}
	thread_started = false;
	pthread_mutex_unlock(&pool_mu);
}

unsigned asym_pool_ready(const char *spec)
{
	int i = pooled_index(spec);
	if (i < 0)
		return 0;
	pthread_mutex_lock(&pool_mu);
	unsigned n = pools[i].n;
	pthread_mutex_unlock(&pool_mu);
	return n;
}
