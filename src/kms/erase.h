/*
 * erase.h — destroying a deleted key's material where its key store keeps
 * it apart from the key document (a PKCS#11 token's objects).
 *
 * When a key's waiting period passes, its document goes; for a key whose
 * store keeps material elsewhere (keystore_erase), the same transaction
 * writes an erase record (kind KMS_ERASE_KIND, the key's ns and id,
 * holding its store's name and material references) and a due record of
 * task KMS_ERASE_TASK. The scheduler's "kms.erase" callback, which runs
 * after "kms.delete" on every run (every SCHEDULER_INTERVAL_S seconds,
 * once per cluster), logs in to the key's store if it is recorded
 * CONNECTED but this node has not logged in yet (a restart, another node),
 * destroys the material and deletes both records. A
 * store that cannot reach the material (its token not connected) leaves
 * the records, and the next run tries again, until the token is
 * connected. The key itself is deleted in kinko at once either way.
 */
#ifndef KINKO_KMS_ERASE_H
#define KINKO_KMS_ERASE_H

#include <stddef.h>
#include <stdint.h>
#include "core/result.h"
#include "kms/kms.h"
#include "scheduler/scheduler.h"
#include "storage/storage.h"

#define KMS_ERASE_KIND "erase"
#define KMS_ERASE_TASK "kms.erase"
#define KMS_ERASE_MAX_OPS 2

/* The writes that queue one key's material for destruction; they live until kms_erase_release. */
struct kms_erase {
	char due_id[SCHEDULER_DUE_ID_MAX];
	char *doc;
	struct storage_op ops[KMS_ERASE_MAX_OPS];
	size_t n; /* 0: the key's store keeps nothing apart */
};

/*
 * Fills e with the ops to add to the deletion's transaction of key k at
 * `now` (none for a key of the software store). K_E_INTERNAL when the
 * document cannot be made.
 */
K_MUST_CHECK k_status kms_erase_ops(const struct kms_key *k, int64_t now, struct kms_erase *e);
void kms_erase_release(struct kms_erase *e);

/* The scheduler's callback: destroys what is queued; registered by kms_lifecycle_init. */
K_MUST_CHECK k_status kms_run_due_erasures(int64_t now);

#endif
