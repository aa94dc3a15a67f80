/*
 * grants.h — a key's grants as records of their own, and the per-key
 * cache authorization reads them from (for the files of kms/ only).
 *
 * Records (storage.h), all in the key's namespace:
 *   "grant"          id "<key id>/<grant id>": the grant's document
 *                    (GrantId, Name, GranteePrincipal, RetiringPrincipal,
 *                    IssuingAccount, Operations, Constraints, CreationDate,
 *                    KeyArn). A key's grants list by the prefix
 *                    "<key id>/"; a grant id begins with its creation time,
 *                    so they list in creation order.
 *   "grant-retiree"  id "<NNN><retiring principal><key id>/<grant id>"
 *                    (NNN: the principal's length in three digits, so that
 *                    the prefix names one principal exactly): the index
 *                    ListRetirableGrants reads, with no walk over every key.
 * A grant and its index record are written and deleted in one transaction.
 * Grants once kept in the key's document ("Grants": [...], older data
 * folders and backups) are moved to records the first time they are
 * needed (kms_grants_migrate), in one transaction with the key's rewrite.
 *
 * The cache: per key, the grants in a compact form (id, operations as a bit
 * set, principals, name, constraints), hashed by grantee, so that
 * authorization finds a caller's grants without a storage read and
 * without a walk over the key's other grants. The store's change feed
 * drops a key's set when one of its grant records changes elsewhere; a
 * write made here (kms_grants_write) updates the set in place. The cache
 * holds at most KMS_GRANT_CACHE_MAX grants in all (about 300 bytes each);
 * loading a set past that empties the cache first.
 */
#ifndef KINKO_KMS_GRANTS_H
#define KINKO_KMS_GRANTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kms/kms.h"
#include "storage/storage.h"

#define KMS_GRANT_KIND "grant"
#define KMS_GRANT_RETIREE_KIND "grant-retiree"
/* "Grants per KMS key: 50,000" (AWS KMS resource quotas). */
#define KMS_MAX_GRANTS_PER_KEY 50000
/* Grants held in the cache, over all keys. */
#define KMS_GRANT_CACHE_MAX 250000u
/* A grant id: 64 hex digits. */
#define KMS_GRANT_ID_LEN 64
/* "<key id>/<grant id>" and its NUL. */
#define KMS_GRANT_RECORD_ID_BUF (36 + 1 + KMS_GRANT_ID_LEN + 1)
/* A principal member: "Length Constraints: Minimum length of 1. Maximum length of 256." */
#define KMS_GRANT_PRINCIPAL_MAX 256
/* "<NNN><principal><key id>/<grant id>" and its NUL. */
#define KMS_GRANT_RETIREE_ID_BUF (3 + KMS_GRANT_PRINCIPAL_MAX + KMS_GRANT_RECORD_ID_BUF)

/* The grant operations, in the service model's order; bit i is the i-th. */
extern const char *const kms_grant_ops[];
/* The bit of one operation name (0 for a name that is no grant operation). */
uint32_t kms_grant_op_bit(const char *op);
/* The bits of a JSON list of operation names. */
uint32_t kms_grant_ops_mask(const json_t *ops);

/* "<key id>/<grant id>" into out (KMS_GRANT_RECORD_ID_BUF bytes). */
void kms_grant_record_id(const char *key_id, const char *grant_id, char *out);
/* The retiree index's prefix for one principal ("NNN" + principal) into out. */
void kms_grant_retiree_prefix(const char *principal, char *out, size_t n);

/*
 * The ops of one grant's write (what: STORAGE_PUT of doc, or STORAGE_DEL):
 * its record and, with a retiring principal, its index record. rec_id
 * (KMS_GRANT_RECORD_ID_BUF) and idx_id (KMS_GRANT_RETIREE_ID_BUF) hold
 * the ids the ops point to. Returns the number of ops (1 or 2).
 */
size_t kms_grant_write_ops(const struct kms_key *k, const char *grant_id, const char *retiring,
			   enum storage_op_kind what, struct kslice doc, char *rec_id, char *idx_id,
			   struct storage_op ops[2]);

/* What a handler needs of one cached grant (copied out). */
struct kms_grant_info {
	char id[KMS_GRANT_ID_LEN + 1];
	uint32_t ops;
	char grantee[KMS_GRANT_PRINCIPAL_MAX + 1];
	char retiring[KMS_GRANT_PRINCIPAL_MAX + 1]; /* "" when none */
};

/*
 * The change feed's subscriber (kms_init subscribes it): drops a key's set
 * when a grant record of the key is written by another thread or node,
 * or the key record is deleted.
 */
void kms_grant_cache_on_change(void *arg, const struct storage_event *ev);
void kms_grant_cache_clear(void);

/*
 * Writers of one key's grants take turns on this node (a striped mutex):
 * CreateGrant's count and its write are one step. Every grant write of a
 * key is made between lock and unlock.
 */
void kms_grants_lock(const struct kms_key *k);
void kms_grants_unlock(const struct kms_key *k);

/*
 * Whether one of k's grants lets the principal (arn, or role_arn for an
 * assumed-role session; may be NULL) perform op (without "kms:") with the
 * encryption context ec (may be NULL), under the grant's constraints.
 * The grant's id into gid on success. Reads the store only when the key's
 * set is not cached. A set that cannot be loaded allows nothing (logged).
 */
bool kms_grants_allow(const struct kms_key *k, const char *arn, const char *role_arn,
		      const char *op, const json_t *ec, char gid[KMS_GRANT_ID_LEN + 1]);

/* A grantee or retiring principal: an IAM principal ARN or a service principal. */
bool kms_valid_grant_principal(const char *p);

/* Whether a grant's Constraints (may be NULL) hold for the encryption context ec. */
bool kms_grant_constraints_hold(const json_t *cons, const json_t *ec);

/*
 * CreateGrant's questions, answered from the set: how many grants k has,
 * and the id of a grant with the same name, principals, operations and
 * constraints, if one exists (*same true, its id in same_id).
 */
K_MUST_CHECK k_status kms_grants_census(const struct kms_key *k, const char *name,
					const char *grantee, const char *retiring, uint32_t ops,
					const json_t *cons, size_t *count, bool *same,
					char same_id[KMS_GRANT_ID_LEN + 1]);

/* One grant of k by id: K_E_NOT_FOUND if k has none such. */
K_MUST_CHECK k_status kms_grants_find(const struct kms_key *k, const char *grant_id,
				      struct kms_grant_info *out);

/*
 * Writes one grant of k (doc, a grant document as above) or deletes one
 * (doc NULL, grant the one to delete), with its index record, in one
 * transaction, and updates the cached set. Between kms_grants_lock and
 * kms_grants_unlock.
 */
K_MUST_CHECK k_status kms_grants_put(const struct kms_key *k, const json_t *doc);
K_MUST_CHECK k_status kms_grants_delete(const struct kms_key *k,
					const struct kms_grant_info *grant);

/*
 * Moves the grants of k's document into records, in one transaction with
 * the key's rewrite without them (a key whose document has none: K_OK,
 * nothing written). A conflict (another writer moved them, or changed the
 * key) is K_OK: the records are read afterwards either way.
 */
K_MUST_CHECK k_status kms_grants_migrate(const struct kms_key *k);
/* kms_grants_migrate_all (kms.h) does it for every key of the store at start. */

/*
 * Reads every grant record of (ns, key_id), calling cb with each document
 * (parsed; borrowed for the call).
 */
typedef K_MUST_CHECK k_status (*kms_grant_doc_cb)(void *arg, const char *record_id,
						  const json_t *doc);
K_MUST_CHECK k_status kms_grants_each(const char *ns, const char *key_id, const char *after,
				      size_t limit, kms_grant_doc_cb cb, void *arg);

/*
 * The ops that delete every grant of (ns, key_id) and their index records,
 * for the key's deletion: *ops (n of them) and the strings they point to
 * live in out until kms_grant_ops_free.
 */
struct kms_grant_ops {
	struct storage_op *ops;
	size_t n;
	json_t *hold; /* the record ids the ops point into */
};
K_MUST_CHECK k_status kms_grants_delete_ops(const char *ns, const char *key_id,
					    struct kms_grant_ops *out);
void kms_grant_ops_free(struct kms_grant_ops *g);

#endif
