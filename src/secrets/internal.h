/*
 * internal.h — shared between the files of src/secrets/ (not a public
 * contract; see secrets.h for that).
 */
#ifndef KINKO_SECRETS_INTERNAL_H
#define KINKO_SECRETS_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "req/req.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/buf.h"
#include "core/result.h"
#include "storage/storage.h"

#define SM_MAX_VALUE 65536u /* SecretString / SecretBinary, bytes */
/* The buffers a value's record is built and read in (sealed value, data key, their base64 forms). */
#define SM_SEALED_VALUE_MAX (SM_MAX_VALUE + 1024u)   /* a value sealed under its data key */
#define SM_VALUE_BLOB_MAX (2 * SM_MAX_VALUE)	     /* a sealed value decoded from its record */
#define SM_VALUE_TEXT_MAX (2 * SM_MAX_VALUE + 4096u) /* a sealed value as base64 */
#define SM_VALUE_RECORD_MAX (4 * SM_MAX_VALUE)	     /* a value's stored record */
#define SM_WRAPPED_KEY_MAX 1024u		     /* a data key wrapped by KMS */
#define SM_WRAPPED_KEY_TEXT_MAX 2048u		     /* that key as base64 */
#define SM_CONTEXT_MAX 4096u			     /* a value's encryption context, canonical */
#define SM_MAX_VERSIONS 100			     /* versions kept per secret */
#define SM_MAX_STAGES 20			     /* staging labels per version */
#define SM_DAY 86400

/* A loaded secret document. */
struct sm_secret {
	json_t *doc;	 /* owned */
	int64_t version; /* storage version of doc */
	char ns[64];
};

/* The store secrets_init was given (borrowed; set once, before serving). */
struct storage *sm_store(void);
/* K_E_VALIDATION for NULL. */
K_MUST_CHECK k_status sm_set_store(struct storage *st);
/*
 * Write sections: writers of the same secret take turns, writers of
 * different secrets do not wait for each other.
 *
 * sm_lock() opens the calling thread's section for one secret; the secret
 * is locked by the section's sm_load (sm_op_secret loads through it) before
 * it is read, on a lock striped by the hash of (ns, name), and stays
 * locked until sm_unlock(). If the section loads another secret (a
 * lookup that tries two names), the lock moves to it: such a section
 * protects the last secret it loaded. A section that changes more than
 * one secret (a primary and its replicas) opens with sm_lock_all()
 * instead, which waits for every other section to end and keeps new ones
 * out. Sections do not nest. sm_save's version precondition still backs
 * the locks up: a writer that bypassed them gets K_E_CONFLICT, never a
 * lost update.
 */
void sm_lock(void);
void sm_lock_all(void);
void sm_unlock(void);

/*
 * The secret a handler acts on. The pipeline's authorize step
 * (sm_authorize) resolves the row's member (SecretId), authorizes the
 * caller with the row's action and applies the row's state rule before
 * the handler runs; the handler takes the secret with sm_op_secret and
 * has no unchecked way to the row's secret. Inside a write section
 * (sm_lock) sm_op_secret reads the secret again under the lock, and
 * checks it again if it changed meanwhile. Release with
 * sm_secret_release.
 */
K_MUST_CHECK k_status sm_op_secret(struct api_ctx *c, struct sm_secret *out);
/*
 * The checked resolver for a secret that is not the row's (each secret
 * of BatchGetSecretValue, the secret a CreateSecret just made, a forced
 * DeleteSecret): finds it by name, full ARN or partial ARN (without the
 * random suffix) in the caller's namespace, or by its complete ARN in
 * another account of the same region (cross-account access; out->ns is
 * then that account's), then authorizes the caller with `action` (NULL:
 * the operation's) and applies the state rule `rule` (API_STATE_ANY or
 * API_STATE_MANAGE, which refuses a secret scheduled for deletion).
 * ResourceNotFoundException, AccessDeniedException or
 * InvalidRequestException otherwise, and *out is empty.
 */
K_MUST_CHECK k_status sm_resolve_secret(struct api_ctx *c, const char *secret_id,
					const char *action, enum api_state_rule rule,
					struct sm_secret *out);
/* The pipeline's side (authz.c): the row's secret into c->resource, and its release. */
K_MUST_CHECK k_status sm_resolve_row(struct api_ctx *c, const char *secret_id);
void sm_release_resource(struct api_ctx *c);
/*
 * The same, by namespace and name (for the scheduler and rotation). Outside
 * a write section it reads through the read cache (cache.c); inside one,
 * from the store.
 */
K_MUST_CHECK k_status sm_load(const char *ns, const char *name, struct sm_secret *out);
/* True while the calling thread is in a write section (sm_lock, sm_lock_all). */
bool sm_in_section(void);
/*
 * The read cache (cache.c): a record of kind "secret" or "secretvalue" into
 * out (its version into *version when not NULL), from the cache or, on a
 * miss, from the store (then cached). sm_cache_on_change is the store's
 * change feed subscriber that keeps it exact; sm_cache_clear empties it;
 * sm_cache_bytes is the text it holds.
 */
K_MUST_CHECK k_status sm_cache_get(const char *kind, const char *ns, const char *id,
				   struct kbuf *out, int64_t *version);
void sm_cache_on_change(void *arg, const struct storage_event *ev);
void sm_cache_clear(void);
size_t sm_cache_bytes(void);
void sm_secret_release(struct sm_secret *s);
/*
 * Writes s->doc (precondition: s->version) together with `extra` ops in
 * one atomic apply; s->version is advanced on success.
 */
K_MUST_CHECK k_status sm_save(struct sm_secret *s, const struct storage_op *extra, size_t n_extra);

const char *sm_name(const struct sm_secret *s);
const char *sm_arn(const struct sm_secret *s);
bool sm_deleted(const struct sm_secret *s);
bool sm_is_replica(const struct sm_secret *s);
/*
 * The secret's primary Region into out: a replica's PrimaryRegion, or
 * the secret's own Region when it has replicas. False for a secret that
 * is not replicated.
 */
bool sm_primary_region(json_t *doc, char *out, size_t n);
/* InvalidRequestException for a secret scheduled for deletion. */
K_MUST_CHECK k_status sm_require_live(struct api_ctx *c, const struct sm_secret *s);
K_MUST_CHECK k_status sm_require_primary(struct api_ctx *c, const struct sm_secret *s);

/* Versions and staging labels (doc["Versions"]: {id: {"Stages": [...], ...}}). */
json_t *sm_versions(const struct sm_secret *s);
/* True if some version of s holds a value (not only reserved by RotateSecret). */
bool sm_has_value(const struct sm_secret *s);
/* The version that carries a label, or NULL. */
const char *sm_stage_owner(const struct sm_secret *s, const char *stage);
bool sm_version_has_stage(json_t *version, const char *stage);
void sm_stage_remove(json_t *version, const char *stage);
void sm_stage_add(json_t *version, const char *stage);
/*
 * Moves a label to version `to` (removing it from any other version).
 * Moving AWSCURRENT gives the version it left AWSPREVIOUS, as AWS does.
 */
void sm_stage_move(struct sm_secret *s, const char *stage, const char *to);

/*
 * Adds a version with a value: encrypts it, attaches `stages` (a JSON
 * array of labels, moved from other versions), removes deprecated
 * versions beyond the limit, and saves the secret and the value in one
 * apply. ClientRequestToken rules: a version with this id and the same
 * value succeeds again unchanged; with another value it fails with
 * ResourceExistsException (sm_token_in_use). `*created` tells whether a version was made.
 */
K_MUST_CHECK k_status sm_put_version(struct api_ctx *c, struct sm_secret *s, const char *vid,
				     struct kslice value, bool binary, json_t *stages,
				     bool *created);
/*
 * ResourceExistsException for a ClientRequestToken that names a version
 * of s holding another value (AWS's message).
 */
K_MUST_CHECK k_status sm_token_in_use(struct api_ctx *c, const struct sm_secret *s,
				      const char *token);
/* The same, with `extra` storage ops in the same atomic apply (only when a version is made). */
K_MUST_CHECK k_status sm_put_version_ops(struct api_ctx *c, struct sm_secret *s, const char *vid,
					 struct kslice value, bool binary, json_t *stages,
					 const struct storage_op *extra, size_t n_extra,
					 bool *created);
/*
 * Decrypts a version's value into out (max SM_MAX_VALUE). DecryptionFailure
 * when the KMS key cannot be used.
 */
K_MUST_CHECK k_status sm_get_value(struct api_ctx *c, const struct sm_secret *s, const char *vid,
				   struct kbuf *out, bool *binary);
/*
 * Encrypts a value for version `vid` of secret s under its KMS key (the
 * secret's KmsKeyId or aws/secretsmanager of c's region); *record is the
 * value record's text (kjson_free), key_arn the key used.
 */
K_MUST_CHECK k_status sm_seal_value(struct api_ctx *c, const struct sm_secret *s, const char *vid,
				    struct kslice value, bool binary, char **record, char *key_arn,
				    size_t key_arn_len);
/*
 * UpdateSecret with a new KmsKeyId: storage ops that re-encrypt the
 * AWSCURRENT, AWSPENDING and AWSPREVIOUS versions under the secret's
 * (new) key, keeping each one's previous encryption (record.c). Apply
 * re->ops with the secret document, then sm_reencrypt_release.
 */
struct sm_reencrypt {
	struct storage_op ops[3];
	char ids[3][200];
	char vids[3][80];
	char old_arns[3][160];
	char *records[3];
	size_t n;
};
K_MUST_CHECK k_status sm_reencrypt(struct api_ctx *c, struct sm_secret *s, struct sm_reencrypt *re,
				   bool *skipped);
void sm_reencrypt_release(struct sm_reencrypt *re);
/* The storage id of a version's value record ("<uid>/<vid>"). */
void sm_value_id(const struct sm_secret *s, const char *vid, char *out, size_t n);
/* Storage ops to delete every value record of a secret (appended to a list). */
K_MUST_CHECK k_status sm_purge(const char *ns, const struct sm_secret *s);

/* Sets c's kms:ViaService (this region's Secrets Manager) and the KMS action. */
void sm_via_kms(struct api_ctx *c, const char *action);
/* The six random characters that end a secret's ARN. */
void sm_random_suffix(char out[7]);
/* A new version id (UUID v4 text). */
void sm_uuid(char out[37]);
/* Seconds at the start of the UTC day of t (LastAccessedDate resolution). */
int64_t sm_day(int64_t t);
/*
 * Dates. AWS reports CreatedDate, LastChangedDate, DeletedDate and
 * LastRotatedDate to the millisecond (the JSON protocol carries a
 * timestamp as seconds since the epoch, with a fraction), so that secrets
 * created in the same second still sort by creation. They are stored as
 * JSON reals; documents written by earlier builds hold integer seconds,
 * and both read with kjson_date_seconds / sm_date_cmp.
 *
 * The request's time in milliseconds comes from api_now_ms (req/req.h), a
 * new date from kjson_date and a stored one in seconds from
 * kjson_date_seconds (core/json.h).
 * sm_date_cmp: orders two stored dates (absent first); -1, 0 or 1.
 */
int sm_date_cmp(const json_t *a, const json_t *b);

/* Scheduled work (rotation.c): due-index tasks. */
#define SM_TASK_PURGE "sm.purge"
#define SM_TASK_ROTATE "sm.rotate"
/*
 * Fills a due-index PUT op for `task` at `when` naming secret s; id_out
 * (SCHEDULER_DUE_ID_MAX + 1 bytes) must live until the apply.
 */
K_MUST_CHECK k_status sm_due_op(const struct sm_secret *s, const char *task, int64_t when,
				char *id_out, size_t n, struct storage_op *op);
K_MUST_CHECK k_status secrets_scheduler_init(void);

/* Rotation (rotation.c). */
K_MUST_CHECK k_status sm_rotation_start(struct api_ctx *c, const char *name, const char *token,
					const char *lambda_arn);
/*
 * RotateImmediately=false: runs only the testSecret step on version
 * `token` (a copy of AWSCURRENT that RotateSecret reserved with
 * AWSPENDING), then removes that version.
 */
K_MUST_CHECK k_status sm_rotation_test_start(struct api_ctx *c, const char *name, const char *token,
					     const char *lambda_arn);
/* The next rotation time after `from`, per the stored RotationRules; 0 if none. */
int64_t sm_next_rotation(json_t *rules, int64_t from);
/* Validates RotationRules (AutomaticallyAfterDays, Duration, ScheduleExpression). */
K_MUST_CHECK k_status sm_validate_rules(struct api_ctx *c, json_t *rules);

/* GetRandomPassword (password.c). */
/*
 * The metadata DescribeSecret shows (for_list: as ListSecrets shows it),
 * as a new object the caller owns (ops.c).
 */
json_t *sm_describe(const struct sm_secret *s, bool for_list);
/* Copies doc's member into out when it is present and not null (ops.c). */
void sm_copy_member(json_t *out, json_t *doc, const char *member);
/*
 * The ARNs of the secrets of c's account that pass the filters (with the
 * ones planned for deletion when include_deleted), in *names, a new array
 * the caller owns. The filters are validated first (ops_list.c).
 */
K_MUST_CHECK k_status sm_list_matching(struct api_ctx *c, json_t *filters, bool include_deleted,
				       json_t **names);

K_MUST_CHECK k_status sm_op_get_random_password(struct api_ctx *c, json_t *in, json_t *out);

/* Handlers (ops.c, ops_manage.c). */
K_MUST_CHECK k_status sm_op_create_secret(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_get_secret_value(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_batch_get_secret_value(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_put_secret_value(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_update_secret(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_describe_secret(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_list_secrets(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_list_secret_version_ids(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_update_secret_version_stage(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_delete_secret(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_restore_secret(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_rotate_secret(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_cancel_rotate_secret(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_tag_resource(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_untag_resource(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_put_resource_policy(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_get_resource_policy(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_delete_resource_policy(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_validate_resource_policy(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_replicate_secret_to_regions(struct api_ctx *c, json_t *in, json_t *out);
K_MUST_CHECK k_status sm_op_remove_regions_from_replication(struct api_ctx *c, json_t *in,
							    json_t *out);
K_MUST_CHECK k_status sm_op_stop_replication_to_replica(struct api_ctx *c, json_t *in, json_t *out);

/*
 * Authorization (authz.c): IAM identity policies and the secret's resource
 * policy, evaluated by the policy engine with the current action (the
 * operation's, or c->authz.action when it names a secretsmanager: action).
 * sm_authorize is the service's authorize hook (it resolves the row's
 * secret, sm_resolve_row); the resolvers call sm_authorize_secret on the
 * secret they find; CreateSecret calls sm_authorize_new with the new
 * secret's ARN. AccessDeniedException with
 * AWS's message otherwise.
 */
K_MUST_CHECK k_status sm_authorize(struct api_ctx *c, json_t *in);
K_MUST_CHECK k_status sm_authorize_secret(struct api_ctx *c, const struct sm_secret *s);
K_MUST_CHECK k_status sm_authorize_new(struct api_ctx *c, const char *arn);
/*
 * Validates a resource policy with the policy engine
 * (MalformedPolicyDocumentException with its reason); *public tells
 * whether it grants access to every principal ("*").
 */
K_MUST_CHECK k_status sm_check_resource_policy(struct api_ctx *c, const char *text, bool *public);

/* Replication (replica.c): copies a primary's state to its replicas. */
K_MUST_CHECK k_status sm_sync_replicas(struct api_ctx *c, const char *name);
/*
 * ReplicateSecretToRegions for the secret a CreateSecret just made (its
 * ARN; authorized with the operation's action through sm_resolve_secret).
 * `in` holds AddReplicaRegions and ForceOverwriteReplicaSecret.
 */
K_MUST_CHECK k_status sm_replicate_new(struct api_ctx *c, const char *arn, json_t *in, json_t *out);

#endif
