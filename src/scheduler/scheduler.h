/*
 * scheduler.h — kinko's one background scheduler for due work.
 *
 * One thread, started by `kinko serve` (cli/serve.c) after the services
 * are initialized, wakes every SCHEDULER_INTERVAL_S seconds (and at once
 * on the test-mode operation KinkoTest.RunScheduler) and calls every
 * registered callback with the server's time, kclock_now() (test clock
 * included).
 *
 * FOR OTHER MODULES (imported material expiry, secret deletion, secret
 * rotation, ...): register your own due-work callback once at start,
 * before scheduler_start():
 *
 *     static k_status secrets_run_due(int64_t now) { ... }
 *     scheduler_register("secrets", secrets_run_due);
 *
 * Contract of a callback:
 *   - It finds its own work that is due at `now` and does each item once.
 *     Make it idempotent: do the change as a storage write with a version
 *     precondition (storage_op.expect), so that if two runs race (or the
 *     server restarted in the middle) exactly one write wins and the other
 *     sees K_E_CONFLICT / K_E_NOT_FOUND and skips the item.
 *   - It is never run twice at the same time: runs are serialized.
 *   - It returns K_OK, or an error that is logged (the next run retries).
 *   - It must not block for long: it runs on the scheduler thread, or on a
 *     request thread for KinkoTest.RunScheduler.
 *
 * Finding due work without scanning everything: the "due index" helpers
 * below keep storage records of kind "due" in ns "" whose ids sort by
 * time ("000001712345678|TASK|NS|ID"). Put the index record in the same
 * storage_apply() as the change that makes the work due (so both or
 * neither are durable), list what is due with scheduler_due_list(), and
 * delete the record in the same apply as the work itself. A stale record
 * (the work was cancelled) is harmless: re-check your own document and
 * drop the record.
 *
 * Once per cluster: several nodes sharing a store each run a scheduler,
 * and scheduler_due_list() hands an item to a callback only on the node
 * that holds its lease. The lease is the due record itself, rewritten by
 * compare-and-swap on its version as {"Owner": NODE_ID, "Expires": T}
 * (cluster/cluster.h names the node) before the callback runs; a node
 * honours another's lease until T, so an item whose node died is taken by
 * another node SCHEDULER_LEASE_S seconds (scheduler time, test clock
 * included) after it was claimed. The callback's usual deletion of the
 * record ends the lease with the work, in the same transaction; a record
 * the callback leaves is given back (rewritten as "{}") after it returns.
 * A callback that runs longer than the lease may see its item taken by
 * another node: the version preconditions above still let only one write
 * win.
 */
#ifndef KINKO_SCHEDULER_SCHEDULER_H
#define KINKO_SCHEDULER_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>
#include "core/result.h"
#include "storage/storage.h"

#define SCHEDULER_INTERVAL_S 2
#define SCHEDULER_MAX_TASKS 16
#define SCHEDULER_DUE_KIND "due"
#define SCHEDULER_DUE_ID_MAX 320
#define SCHEDULER_LEASE_S 120

typedef K_MUST_CHECK k_status (*scheduler_fn)(int64_t now);

/*
 * Registers a due-work callback under a short name (for the log). The
 * name must be a string literal or otherwise live for the whole run.
 * Call before scheduler_start(). K_E_LIMIT_EXCEEDED past
 * SCHEDULER_MAX_TASKS.
 */
K_MUST_CHECK k_status scheduler_register(const char *name, scheduler_fn run_due);

/* Starts the background thread (once). st is the store of the due index. */
K_MUST_CHECK k_status scheduler_start(struct storage *st);
/* Stops the thread and waits for a run in progress to finish. */
void scheduler_stop(void);
/*
 * Runs every callback now, on the calling thread, and waits for it (a
 * run of the background thread in progress is waited for first). The
 * first error of a callback is returned; all callbacks run regardless.
 * Not must-check: the scheduler thread has nothing to do with the result
 * (each failing task is logged by the scheduler itself).
 */
K_MUST_CHECK k_status scheduler_run_now(void);

/*
 * The due index. `task` names the kind of work ("kms.delete"); it must not
 * contain '|'. An id is built as "%015lld|task|ns|id" (when >= 0).
 */
K_MUST_CHECK k_status scheduler_due_id(int64_t when, const char *task, const char *ns,
				       const char *id, char *out, size_t n);

/*
 * Fills a storage op that creates (PUT) or removes (DEL) the due record
 * `due_id` (built by scheduler_due_id; the caller keeps the string alive
 * until the apply). DEL uses STORAGE_ANY: removing a missing one is fine.
 */
void scheduler_due_put_op(struct storage_op *op, const char *due_id);
void scheduler_due_del_op(struct storage_op *op, const char *due_id);

/*
 * Calls cb for every due record of `task` whose time is <= now, oldest
 * first, with the record's ns and id parts and its full due id. The
 * callback may write to the store (including deleting the record).
 * Return non-K_OK from cb to stop (that code is returned).
 */
/*
 * Test mode only (KinkoTest.HoldLeases): after claiming an item, wait
 * `seconds` before running it, so that a test can kill a node that holds a
 * lease. 0 turns it off.
 */
void scheduler_test_hold(int seconds);

typedef K_MUST_CHECK k_status (*scheduler_due_cb)(void *arg, int64_t when, const char *ns,
						  const char *id, const char *due_id);
K_MUST_CHECK k_status scheduler_due_list(const char *task, int64_t now, scheduler_due_cb cb,
					 void *arg);

#endif
