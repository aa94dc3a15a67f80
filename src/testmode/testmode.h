/*
 * testmode.h — the test-mode API (the "KinkoTest." service).
 *
 * Only `kinko serve --test-mode` registers it (allowed with --dev, or
 * with the configuration's CONFIG_TEST_MODE_SWITCH); without the flag the
 * "KinkoTest." X-Amz-Target prefix is not routed at all and answers
 * UnknownOperationException like any unknown target. Requests are signed
 * with SigV4 like KMS requests (signing service name "kms"):
 *
 *   KinkoTest.AdvanceClock {"Seconds": N}  moves the server clock forward
 *       (kclock_advance) by N seconds, 0..3153600000; answers
 *       {"Offset": total seconds, "Now": server time in epoch seconds}.
 *   KinkoTest.RunScheduler {}  runs every due-work callback now and waits.
 *   KinkoTest.Reset {}  empties the caller's account (every region): all
 *       stored records of every kind (keys, aliases, grants, secrets, ...)
 *       and the in-memory caches; the clock is left as it is.
 *   KinkoTest.FeedBarrier {"Token": T} and KinkoTest.FeedBarrierSeen
 *       {"Token": T}: the feed barrier (testmode/barrier.h).
 *
 * Each is authorized like any operation, through the caller's identity
 * policies with the action kinko-test:AdvanceClock, kinko-test:RunScheduler
 * or kinko-test:Reset on "*": account roots may call them, IAM users and
 * roles only if a policy allows it (AccessDeniedException otherwise).
 *
 * Modules with caches of their own register a reset hook.
 */
#ifndef KINKO_TESTMODE_TESTMODE_H
#define KINKO_TESTMODE_TESTMODE_H

#include "core/result.h"
#include "storage/storage.h"

#define TESTMODE_MAX_HOOKS 16

/*
 * Gives the test operations the store they empty, and subscribes the feed
 * barrier to its change feed (call only under --test-mode, once). A NULL
 * st is for listing the table only (`kinko ops`).
 */
K_MUST_CHECK k_status testmode_init(struct storage *st);
struct api_service;
/* The KinkoTest operation table, for the pipeline's registry (only under --test-mode). */
const struct api_service *testmode_service_table(void);

/*
 * A hook called on KinkoTest.Reset, after the account's records are
 * deleted, with the account id; it drops what the module caches (for
 * that account or all of them). Register at start; any mode (a no-op
 * without --test-mode). K_E_LIMIT_EXCEEDED past TESTMODE_MAX_HOOKS.
 */
typedef void (*testmode_reset_fn)(const char *account);
K_MUST_CHECK k_status testmode_on_reset(testmode_reset_fn fn);

#endif
