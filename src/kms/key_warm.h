/*
 * key_warm.h — loading every key of the store into the key cache at start.
 *
 * Without it, each key is read from the store, parsed and its material
 * unwrapped on its first use after a restart, on the request thread that
 * uses it: over 100,000 keys the first minute after a restart runs at a
 * fraction of the warm rate. A server starts one background thread after
 * it listens (kms_warm_start); the thread walks the store's keys in store
 * order (namespace, then id), a batch of KMS_WARM_BATCH records per read,
 * and installs each key that is not cached yet, at a lower priority than
 * the request threads and at most `rate` keys a second, so requests win
 * the cores. A key that a request loaded first is skipped; a key written
 * or dropped through the change feed while its batch was in flight is
 * refused by the cache's generations (kms/key_cache.h) and left to its
 * next use, so warming never leaves a stale copy, on a store shared by
 * several nodes too.
 */
#ifndef KINKO_KMS_KEY_WARM_H
#define KINKO_KMS_KEY_WARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"

/* Records per store read. */
#define KMS_WARM_BATCH 256
/* The defaults of `kinko serve`: --warm-keys, and the rate. */
#define KMS_WARM_MAX_KEYS_DEFAULT 1000000
#define KMS_WARM_RATE_DEFAULT 50000
/* How much lower than the request threads the warming thread runs (nice). */
#define KMS_WARM_NICE 5

struct kms_warm_options {
	size_t max_keys; /* the first max_keys keys in store order; 0: warm nothing */
	uint32_t rate;	 /* keys read per second at most; 0: no bound */
};

/* What a warm pass did (also in /metrics). */
struct kms_warm_stats {
	uint64_t listed;  /* keys read from the store (at most max_keys) */
	uint64_t loaded;  /* installed in the cache by the pass */
	uint64_t skipped; /* already cached (a request loaded them first) */
	uint64_t refused; /* changed or dropped while their batch was read */
	uint64_t failed;  /* could not be opened (logged) */
	bool done;	  /* the pass ended (every key, the bound, or an error) */
};

/*
 * One pass over the store, on the calling thread (the server runs it on
 * its own thread through kms_warm_start; tests call it directly). Needs
 * kms_init. *out gets the counts (may be NULL). K_OK, or the store's error
 * that stopped the pass (the keys installed before it stay).
 */
K_MUST_CHECK k_status kms_warm_run(const struct kms_warm_options *o, struct kms_warm_stats *out);

/*
 * Starts the background pass (nothing with max_keys 0) and registers its
 * progress with /metrics. Call once, after the server listens.
 */
K_MUST_CHECK k_status kms_warm_start(const struct kms_warm_options *o);

/* Stops the pass (between two keys) and waits for its thread; idempotent. */
void kms_warm_stop(void);

/* The pass's progress and the cache's size, in Prometheus text (a metrics source). */
void kms_warm_metrics(struct kbuf *b);

#endif
