/*
 * ops_lifecycle.c — the key-state table, EnableKey, DisableKey,
 * ScheduleKeyDeletion, CancelKeyDeletion, and the scheduled deletion of
 * keys whose waiting period has passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/json.h"
#include "core/log.h"
#include "kms/erase.h"
#include "kms/grants.h"
#include "kms/keystores.h"
#include "kms/kms.h"
#include "kms/multiregion.h"
#include "kms/store.h"
#include "scheduler/scheduler.h"
#include "core/banned.h"

/*
 * AWS's key-state table (https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html),
 * as data: each operation's row (kms/service.c) names its rule, and the
 * rule says what each state gives.
 *   OK   the operation proceeds
 *   DIS  DisabledException "<key ARN> is disabled."
 *   INV  KMSInvalidStateException "<key ARN> is pending deletion." (or
 *        "... is pending import.", "... is unavailable.", and for
 *        CancelKeyDeletion "... is not pending deletion.")
 * Columns: Enabled, Disabled, PendingDeletion, PendingImport, Unavailable,
 * Creating, PendingReplicaDeletion, Updating. A multi-Region primary key
 * waiting for its replicas' deletion (PendingReplicaDeletion) answers as
 * a key pending deletion; Creating and Updating (a replica being made, a
 * primary being moved) allow only the read-only rows, and last no longer
 * than their call here (ops_multiregion.c).
 */
enum st_rule {
	OK,
	DIS,
	INV
};

#define N_STATE_COLUMNS 8

static const unsigned char rules[][N_STATE_COLUMNS] = {
	[API_STATE_ANY] = {OK, OK, OK, OK, OK, OK, OK, OK},
	[API_STATE_CRYPTO] = {OK, DIS, INV, INV, INV, INV, INV, INV},
	[API_STATE_MANAGE] = {OK, OK, INV, OK, OK, INV, INV, INV},
	[API_STATE_ENABLE_DISABLE] = {OK, OK, INV, INV, OK, INV, INV, INV},
	[API_STATE_IMPORT] = {OK, OK, INV, OK, INV, INV, INV, INV},
	[API_STATE_CANCEL_DELETION] = {INV, INV, OK, INV, INV, INV, OK, INV},
};

static int state_column(enum kms_key_state s)
{
	switch (s) {
	case KS_ENABLED:
		return 0;
	case KS_DISABLED:
		return 1;
	case KS_PENDING_DELETION:
		return 2;
	case KS_PENDING_IMPORT:
		return 3;
	case KS_UNAVAILABLE:
		return 4;
	case KS_CREATING:
		return 5;
	case KS_PENDING_REPLICA_DELETION:
		return 6;
	case KS_UPDATING:
		return 7;
	default:
		return -1;
	}
}

k_status kms_check_state_rule(struct api_ctx *c, const struct kms_key *k, enum api_state_rule rule)
{
	/* A rule that is not one of the table's (none, unset) is the cryptographic one. */
	if ((size_t)rule >= sizeof rules / sizeof rules[0] || rule == API_STATE_UNSET ||
	    rule == API_STATE_NA)
		rule = API_STATE_CRYPTO;
	enum kms_key_state state = kms_key_state_now(k); /* Unavailable: a store not connected */
	int col = state_column(state);
	enum st_rule r = col < 0 ? INV : (enum st_rule)rules[rule][col];
	switch (r) {
	case OK:
		return K_OK;
	case DIS:
		return api_fail(c, K_E_DISABLED, "%s is disabled.", k->arn);
	default:
		break;
	}
	if (rule == API_STATE_CANCEL_DELETION)
		return api_fail(c, K_E_INVALID_STATE, "%s is not pending deletion.", k->arn);
	switch (state) {
	case KS_PENDING_DELETION:
		return api_fail(c, K_E_INVALID_STATE, "%s is pending deletion.", k->arn);
	case KS_PENDING_REPLICA_DELETION:
		return api_fail(c, K_E_INVALID_STATE, "%s is pending replica deletion.", k->arn);
	case KS_CREATING:
		return api_fail(c, K_E_INVALID_STATE, "%s is creating.", k->arn);
	case KS_UPDATING:
		return api_fail(c, K_E_INVALID_STATE, "%s is updating.", k->arn);
	case KS_PENDING_IMPORT:
		return api_fail(c, K_E_INVALID_STATE, "%s is pending import.", k->arn);
	case KS_DISABLED:
		return api_fail(c, K_E_INVALID_STATE, "%s is disabled.", k->arn);
	default:
		return api_fail(c, K_E_INVALID_STATE, "%s is unavailable.", k->arn);
	}
}

k_status kms_check_key_state(struct api_ctx *c, const struct kms_key *k)
{
	/*
	 * Only KMS's own rows: another service's operation that uses a key
	 * (Secrets Manager's TagResource) uses it cryptographically.
	 */
	enum api_state_rule rule = API_STATE_CRYPTO;
	if (c->op != NULL && c->service != NULL &&
	    strcmp(c->service->target_prefix, "TrentService.") == 0)
		rule = c->op->state;
	return kms_check_state_rule(c, k, rule);
}

bool kms_key_is_aws_managed(const struct kms_key *k)
{
	const char *m = json_string_value(json_object_get(k->doc, "KeyManager"));
	return m != NULL && strcmp(m, "AWS") == 0;
}

/*
 * AWS managed keys: "You cannot manage these KMS keys, rotate them, change
 * their key policies, or schedule them for deletion."
 * (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key)
 * Their key policy allows the account only kms:Describe*, kms:Get*,
 * kms:List* and kms:RevokeGrant, so AWS answers every management call with
 * the AccessDeniedException of a policy that does not allow it.
 */
k_status kms_deny_aws_managed(struct api_ctx *c, const struct kms_key *k)
{
	if (!kms_key_is_aws_managed(k))
		return K_OK;
	const char *action = c->op != NULL ? c->op->action : "kms:?";
	return api_fail(c, K_E_ACCESS_DENIED,
			"User: %s is not authorized to perform: %s on resource: %s because no "
			"resource-based policy allows the %s action",
			c->principal.arn, action, k->arn, action);
}

/* Common start of the management operations: KeyId -> key, state, managed. */
static K_MUST_CHECK k_status manage_key(struct api_ctx *c, json_t *in, struct kms_key **out)
{
	const char *key_id;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	k_status rc = kms_deny_aws_managed(c, k);
	if (k_failed(rc)) {
		kms_key_unref(k);
		return rc;
	}
	*out = k;
	return K_OK;
}

/* Writes the key with a new KeyState (and Enabled, derived at render). */
static K_MUST_CHECK k_status set_state(struct kms_key *k, const char *state)
{
	if (strcmp(kms_state_name(k->state), state) == 0)
		return K_OK;
	json_t *doc = json_deep_copy(k->doc);
	ENSURE(doc != NULL, K_E_INTERNAL);
	json_object_set_new(doc, "KeyState", json_string(state));
	return kms_key_update(k, doc, NULL, NULL);
}

/* EnableKey (https://docs.aws.amazon.com/kms/latest/APIReference/API_EnableKey.html). */
k_status kms_op_enable_key(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)out;
	struct kms_key *k = NULL;
	GUARD(manage_key(c, in, &k));
	k_status rc = set_state(k, "Enabled");
	kms_key_unref(k);
	return rc;
}

/* DisableKey (https://docs.aws.amazon.com/kms/latest/APIReference/API_DisableKey.html). */
k_status kms_op_disable_key(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)out;
	struct kms_key *k = NULL;
	GUARD(manage_key(c, in, &k));
	k_status rc = set_state(k, "Disabled");
	kms_key_unref(k);
	return rc;
}

#define DELETE_TASK KMS_DELETE_TASK

/*
 * ScheduleKeyDeletion (https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html):
 * "PendingWindowInDays: The waiting period, specified in number of days.
 * After the waiting period ends, KMS deletes the KMS key. ... This value
 * is optional. If you include a value, it must be between 7 and 30,
 * inclusive. If you do not include a value, it defaults to 30."
 * The key document and a due-index record are written together, so the
 * deletion is found again after a restart.
 */
k_status kms_op_schedule_key_deletion(struct api_ctx *c, json_t *in, json_t *out)
{
	int64_t days = 30;
	bool has_days;
	GUARD(api_int(c, in, "PendingWindowInDays", false, 1, 365, &has_days, &days));
	if (days < 7 || days > 30)
		return api_fail(c, K_E_VALIDATION,
				"PendingWindowInDays value %lld is not valid: it must be between 7 "
				"and 30 days.",
				(long long)days);
	struct kms_key *k = NULL;
	GUARD(manage_key(c, in, &k));
	k_status rc = K_OK;
	if (kms_key_has_replicas(k)) {
		rc = kms_mrk_schedule_primary_deletion(c, k, days, out);
		goto out;
	}
	int64_t when = c->now + days * 86400;
	char due_id[SCHEDULER_DUE_ID_MAX];
	GUARD_GOTO(scheduler_due_id(when, DELETE_TASK, k->ns, k->id, due_id, sizeof due_id));
	json_t *doc = json_deep_copy(k->doc);
	ENSURE_GOTO(doc != NULL, K_E_INTERNAL);
	json_object_set_new(doc, "KeyState", json_string("PendingDeletion"));
	/* The due date in whole seconds (the scheduler's), the date with the request's milliseconds. */
	int64_t when_ms = when * 1000 + api_now_ms(c) % 1000;
	json_object_set_new(doc, "DeletionDate", kjson_date(when_ms));
	json_object_set_new(doc, "PendingWindowInDays", json_integer(days));
	json_object_set_new(doc, "StateBeforeDeletion", json_string(kms_state_name(k->state)));
	struct storage_op due;
	scheduler_due_put_op(&due, due_id);
	GUARD_GOTO(kms_key_update_ops(k, doc, NULL, &due, 1, NULL));
	json_object_set_new(out, "KeyId", json_string(k->arn));
	json_object_set_new(out, "DeletionDate", kjson_date(when_ms));
	json_object_set_new(out, "KeyState", json_string("PendingDeletion"));
	json_object_set_new(out, "PendingWindowInDays", json_integer(days));
out:
	kms_key_unref(k);
	return rc;
}

/*
 * CancelKeyDeletion (https://docs.aws.amazon.com/kms/latest/APIReference/API_CancelKeyDeletion.html):
 * "If this operation succeeds, the KMS key state changes to Disabled."
 * A key with imported material that never got its material goes back to
 * PendingImport, the state it had.
 */
k_status kms_op_cancel_key_deletion(struct api_ctx *c, json_t *in, json_t *out)
{
	struct kms_key *k = NULL;
	GUARD(manage_key(c, in, &k));
	k_status rc = K_OK;
	const char *before = json_string_value(json_object_get(k->doc, "StateBeforeDeletion"));
	const char *state = before != NULL && strcmp(before, "PendingImport") == 0 ? "PendingImport"
										   : "Disabled";
	/* A primary pending its replicas' deletion has no date and no due record yet. */
	int64_t when = kjson_date_seconds(json_object_get(k->doc, "DeletionDate"));
	char due_id[SCHEDULER_DUE_ID_MAX];
	GUARD_GOTO(scheduler_due_id(when, DELETE_TASK, k->ns, k->id, due_id, sizeof due_id));
	json_t *doc = json_deep_copy(k->doc);
	ENSURE_GOTO(doc != NULL, K_E_INTERNAL);
	json_object_set_new(doc, "KeyState", json_string(state));
	json_object_del(doc, "DeletionDate");
	json_object_del(doc, "PendingWindowInDays");
	json_object_del(doc, "PendingDeletionWindowInDays");
	json_object_del(doc, "StateBeforeDeletion");
	struct storage_op due;
	scheduler_due_del_op(&due, due_id);
	GUARD_GOTO(kms_key_update_ops(k, doc, NULL, &due, 1, NULL));
	json_object_set_new(out, "KeyId", json_string(k->arn));
out:
	kms_key_unref(k);
	return rc;
}

/*
 * kinko's own work on a key goes to the audit trail the way AWS logs it:
 * "After the specified waiting period expires, AWS KMS deletes the KMS key
 * and records an entry like the following one in your CloudTrail log"
 * (https://docs.aws.amazon.com/kms/latest/developerguide/ct-delete-key.html),
 * an event of type AwsServiceEvent invoked by kms.amazonaws.com with the key
 * as its resource; automatic rotation likewise logs "RotateKey"
 * (https://docs.aws.amazon.com/kms/latest/developerguide/ct-rotatekey.html).
 * The account and region are those of the key's namespace ("ACCOUNT:REGION").
 */
k_status kms_key_service_event(const struct kms_key *k, const char *event_name, json_t *details,
			       k_status outcome)
{
	char account[64];
	snprintf(account, sizeof account, "%s", k->ns);
	char *colon = strchr(account, ':');
	ENSURE(colon != NULL, K_E_INTERNAL);
	*colon = 0;
	k_status rc = audit_emit_service_event("kms.amazonaws.com", event_name, account, colon + 1,
					       k->arn, "AWS::KMS::Key", details, outcome);
	if (k_failed(rc))
		LOG_ERROR("audit: the %s event of key %s could not be written: %s", event_name,
			  k->arn, k_status_name(rc));
	return rc;
}

/* The aliases of one key, collected to be deleted with it. */
#define MAX_KEY_ALIASES 64

struct key_aliases {
	const char *key_id;
	size_t n;
	char names[MAX_KEY_ALIASES][257];
	int64_t versions[MAX_KEY_ALIASES];
};

static K_MUST_CHECK k_status collect_aliases(void *arg, const char *ns, const char *id,
					     struct kslice doc, int64_t version)
{
	struct key_aliases *ka = arg;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	const char *t = json_string_value(json_object_get(j, "TargetKeyId"));
	if (t != NULL && strcmp(t, ka->key_id) == 0 && ka->n < MAX_KEY_ALIASES &&
	    strlen(id) < sizeof ka->names[0]) {
		snprintf(ka->names[ka->n], sizeof ka->names[0], "%s", id);
		ka->versions[ka->n] = version;
		ka->n++;
	}
	json_decref(j);
	return K_OK;
}

/*
 * Deletes one key whose waiting period has passed: "When the waiting
 * period expires, KMS deletes the KMS key, its key material, and all
 * KMS metadata associated with it, including all aliases."
 * (https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html)
 * The key document (which holds the only copy of the wrapped material),
 * its aliases and the due record go in one transaction with the key's
 * version as precondition: of two runs, one deletes and the other sees a
 * conflict or a missing key. SQLite's secure_delete overwrites the freed
 * bytes, so the wrapped material does not linger in the live store.
 * A stale due record (the deletion was cancelled, or rescheduled) is
 * only removed. Material kept apart from the document (a token's
 * objects) is queued for destruction in the same transaction (erase.h).
 */
/* Set when a key was deleted and the store's logs still hold its pages. */
static bool scrub_pending;

static K_MUST_CHECK k_status delete_due(void *arg, int64_t when, const char *ns, const char *id,
					const char *due_id)
{
	int64_t now = *(const int64_t *)arg;
	struct storage_op del_due;
	scheduler_due_del_op(&del_due, due_id);
	struct kms_key *k = NULL;
	k_status rc = kms_key_get(ns, id, &k);
	if (k_is(rc, K_E_NOT_FOUND))
		return storage_apply(kms_store(), &del_due, 1);
	GUARD(rc);
	int64_t date = kjson_date_seconds(json_object_get(k->doc, "DeletionDate"));
	if (k->state != KS_PENDING_DELETION || date != when) {
		kms_key_unref(k);
		return storage_apply(kms_store(), &del_due, 1);
	}
	if (date > now) {
		kms_key_unref(k);
		return K_OK;
	}
	/* Deleting a key deletes its grants, in the same transaction. */
	struct kms_grant_ops gops = {0};
	struct key_aliases *ka = calloc(1, sizeof *ka);
	struct storage_op *ops = NULL;
	struct kms_mrk_write *w = kms_mrk_write_new();
	struct kms_erase erase = {0};
	ENSURE_GOTO(ka != NULL && w != NULL, K_E_INTERNAL);
	GUARD_GOTO(kms_erase_ops(k, now, &erase));
	GUARD_GOTO(kms_grants_delete_ops(ns, id, &gops));
	ops = calloc(3 + MAX_KEY_ALIASES + KMS_MRK_MAX_OPS + KMS_ERASE_MAX_OPS + gops.n,
		     sizeof *ops);
	ENSURE_GOTO(ops != NULL, K_E_INTERNAL);
	/* A replica leaves its related keys' configuration in the same transaction. */
	GUARD_GOTO(kms_mrk_unlink_replica(k, now, DELETE_TASK, w));
	ka->key_id = k->id;
	GUARD_GOTO(storage_list(kms_store(), "alias", ns, NULL, NULL, 0, collect_aliases, ka));
	ops[0] = (struct storage_op){
		.op = STORAGE_DEL, .kind = "key", .ns = ns, .id = id, .expect = k->version};
	ops[1] = del_due;
	for (size_t i = 0; i < ka->n; i++)
		ops[2 + i] = (struct storage_op){.op = STORAGE_DEL,
						 .kind = "alias",
						 .ns = ns,
						 .id = ka->names[i],
						 .expect = ka->versions[i]};
	/* The key's alias index (ops_aliases.c), if it has one. */
	ops[2 + ka->n] = (struct storage_op){.op = STORAGE_DEL,
					     .kind = KMS_ALIAS_INDEX_KIND,
					     .ns = ns,
					     .id = id,
					     .expect = STORAGE_ANY};
	for (size_t i = 0; i < w->n; i++)
		ops[3 + ka->n + i] = w->ops[i];
	if (gops.n > 0)
		memcpy(ops + 3 + ka->n + w->n, gops.ops, gops.n * sizeof *ops);
	if (erase.n > 0)
		memcpy(ops + 3 + ka->n + w->n + gops.n, erase.ops, erase.n * sizeof *ops);
	rc = storage_apply(kms_store(), ops, 3 + ka->n + w->n + gops.n + erase.n);
	if (k_is(rc, K_E_CONFLICT) || k_is(rc, K_E_NOT_FOUND)) {
		/* Someone changed the key or an alias meanwhile: the next run retries. */
		kms_cache_forget(ns, id);
		rc = K_OK;
		goto out;
	}
	/* The change feed dropped the key and its aliases from the caches. */
	GUARD_GOTO(rc);
	scrub_pending = true;
	LOG_INFO("deleted key %s after its waiting period", k->arn);
	/* The deletion is durable; its event follows (a failure to write it is
	 * the run's error, logged by the scheduler). */
	rc = kms_key_service_event(k, "DeleteKey", NULL, K_OK);
out:
	kms_erase_release(&erase);
	kms_mrk_write_free(w);
	kms_grant_ops_free(&gops);
	free(ka);
	free(ops);
	kms_key_unref(k);
	return rc;
}

k_status kms_run_due_deletions(int64_t now)
{
	k_status rc = scheduler_due_list(DELETE_TASK, now, delete_due, &now);
	/* Runs are serialized (scheduler.h), so scrub_pending needs no lock.
	 * A scrub that could not complete is retried at the next run. */
	if (scrub_pending && k_ok(storage_scrub(kms_store())))
		scrub_pending = false;
	return rc;
}

k_status kms_lifecycle_init(void)
{
	GUARD(scheduler_register("kms.delete", kms_run_due_deletions));
	GUARD(scheduler_register("kms.rotate", kms_run_due_rotations));
	GUARD(scheduler_register(KMS_ERASE_TASK, kms_run_due_erasures));
	return K_OK;
}
