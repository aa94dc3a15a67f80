/*
 * barrier.h — the test mode's feed barrier (KinkoTest.FeedBarrier and
 * KinkoTest.FeedBarrierSeen; docs/TESTING.md), for testmode.c's table.
 *
 * FeedBarrier {"Token": T} sends a mark with token T through the store's
 * change feed (storage_mark): every node sharing the store delivers it
 * after every write committed before the call. Each node remembers the
 * last TESTMODE_BARRIER_SEEN marks its feed delivered, and FeedBarrierSeen
 * {"Token": T} answers {"Seen": true} once this node's feed delivered T:
 * from then on this node's caches have dropped whatever those writes
 * changed. A cluster test harness sends one barrier after a write and
 * waits until every node has seen it.
 */
#ifndef KINKO_TESTMODE_BARRIER_H
#define KINKO_TESTMODE_BARRIER_H

#include <jansson.h>

#include "core/result.h"
#include "storage/storage.h"

#define TESTMODE_BARRIER_SEEN 512u

struct api_ctx;

/* Subscribes the barrier's record of marks to st's change feed. */
K_MUST_CHECK k_status testmode_barrier_init(struct storage *st);
K_MUST_CHECK k_status testmode_op_feed_barrier(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status testmode_op_feed_barrier_seen(struct api_ctx *c, json_t *in, json_t *out);

#endif
