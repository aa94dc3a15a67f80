/*
 * service.c — the Secrets Manager operation table ("secretsmanager."
 * targets, SigV4 service "secretsmanager"): the API surface as data, and
 * the service's own names for the pipeline's generic errors.
 */
#include "secrets/internal.h"
#include "secrets/secrets.h"

#include "core/banned.h"

/*
 * Secrets Manager's exceptions for kinko's generic codes, applied by the
 * pipeline to every error it answers (api_service_error), so that no
 * Secrets Manager call answers with a KMS-only name: an internal failure
 * is InternalServiceError ("An error occurred on the server side."), a
 * missing resource ResourceNotFoundException, and so on, as the service
 * model lists them. KMS errors met while a value is sealed or opened are
 * mapped where they happen (record_value.c: EncryptionFailure,
 * DecryptionFailure); those that still reach here name the secret's state.
 */
static const struct api_error_map sm_errors[] = {
	{K_E_INTERNAL, K_E_SM_INTERNAL},
	{K_E_STORE_UNAVAILABLE, K_E_SM_INTERNAL},
	{K_E_CONFLICT, K_E_SM_INTERNAL},
	{K_E_DEPENDENCY_TIMEOUT, K_E_SM_INTERNAL},
	{K_E_NOT_FOUND, K_E_SM_NOT_FOUND},
	{K_E_CUSTOM_KEY_STORE_NOT_FOUND, K_E_SM_NOT_FOUND},
	{K_E_ALREADY_EXISTS, K_E_SM_EXISTS},
	{K_E_LIMIT_EXCEEDED, K_E_SM_LIMIT_EXCEEDED},
	{K_E_MALFORMED_POLICY, K_E_SM_MALFORMED_POLICY},
	{K_E_INVALID_MARKER, K_E_SM_INVALID_NEXT_TOKEN},
	{K_E_INVALID_ARN, K_E_SM_INVALID_PARAMETER},
	{K_E_INVALID_ALIAS_NAME, K_E_SM_INVALID_PARAMETER},
	{K_E_TAG, K_E_SM_INVALID_PARAMETER},
	{K_E_INVALID_GRANT_TOKEN, K_E_SM_INVALID_PARAMETER},
	{K_E_INVALID_GRANT_ID, K_E_SM_INVALID_PARAMETER},
	{K_E_UNSUPPORTED, K_E_SM_INVALID_REQUEST},
	{K_E_DRY_RUN, K_E_SM_INVALID_REQUEST},
	{K_E_NOT_AUTHORIZED, K_E_SM_INVALID_REQUEST},
	{K_E_DISABLED, K_E_SM_INVALID_REQUEST},
	{K_E_INVALID_STATE, K_E_SM_INVALID_REQUEST},
	{K_E_INVALID_KEY_USAGE, K_E_SM_INVALID_REQUEST},
	{K_E_INVALID_CIPHERTEXT, K_E_SM_DECRYPTION_FAILURE},
	{K_E_INCORRECT_KEY, K_E_SM_DECRYPTION_FAILURE},
	{K_E_KMS_INVALID_SIGNATURE, K_E_SM_INVALID_REQUEST},
	{K_E_KMS_INVALID_MAC, K_E_SM_INVALID_REQUEST},
	{K_E_EXPIRED_IMPORT_TOKEN, K_E_SM_INVALID_REQUEST},
	{K_E_INVALID_IMPORT_TOKEN, K_E_SM_INVALID_REQUEST},
	{K_E_INCORRECT_KEY_MATERIAL, K_E_SM_INVALID_REQUEST},
	{K_E_CT_INVALID_LOOKUP_ATTRIBUTES, K_E_SM_INVALID_PARAMETER},
	{K_E_CT_INVALID_TIME_RANGE, K_E_SM_INVALID_PARAMETER},
	{K_E_CT_INVALID_MAX_RESULTS, K_E_SM_INVALID_PARAMETER},
	{K_E_CT_INVALID_NEXT_TOKEN, K_E_SM_INVALID_NEXT_TOKEN},
};

/*
 * One row per operation, every field named (req/req.h):
 *   OP(name, handler, resource, state rule, quota, mutates)
 * resource: NONE (identity policies on "*"), SECRET (SecretId: the
 *   pipeline resolves and authorizes it and applies the state rule; the
 *   handler takes it with sm_op_secret), CUSTOM (the handler authorizes
 *   through sm_authorize_new or the checked resolver sm_resolve_secret:
 *   CreateSecret's new secret; DeleteSecret, whose forced deletion of a
 *   missing secret succeeds, "If you forcibly delete an already deleted or
 *   nonexistent secret, the operation does not return
 *   ResourceNotFoundException"), SECRET_IF_NAMED (the secret when the
 *   request names one, resolved as SECRET, else Resource "*").
 * state rule: LIVE refuses a secret scheduled for deletion
 *   (InvalidRequestException), ANY takes it in every state (DescribeSecret,
 *   RestoreSecret, tags, resource policies ...); rows on no secret NA.
 * quota: Secrets Manager's per-operation request rates
 *   (https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html);
 *   the "combined rate" quotas are classes (GetSecretValue and
 *   DescribeSecret; the value and replication writes; rotation; tags;
 *   resource policies); buckets are Secrets Manager's own (its TagResource
 *   is not KMS's).
 * Values are up to 64 KB, base64 grows them by a third: 256 KB bodies.
 */
#define NONE API_RES_NONE, NULL
#define SECRET API_RES_SECRET, "SecretId"
#define CUSTOM API_RES_CUSTOM, NULL
#define SECRET_IF_NAMED API_RES_CUSTOM, "SecretId"
#define LIVE API_STATE_MANAGE
#define ANY API_STATE_ANY
#define NA API_STATE_NA
#define SHARED_READ "secrets-read", 10000
#define WRITES "secrets-write", 50
#define ROTATION "secrets-rotation", 50
#define TAGS "secrets-tags", 50
#define POLICY "secrets-policy", 50
#define OWN(rate) NULL, rate
#define WRITE true
#define READ false

#define OP(...) OP_(__VA_ARGS__)
#define OP_(nm, fn, res, memb, st, qcls, qrate, mut)                                               \
	{                                                                                          \
		.name = nm, .handler = fn, .action = "secretsmanager:" nm, .resource = res,        \
		.member = memb, .state = st, .quota = {qcls, qrate}, .mutates = mut,               \
		.key_use = false, .max_body = 256u << 10                                           \
	}

static const struct api_operation sm_ops[] = {
	/* secrets and their values */
	OP("CreateSecret", sm_op_create_secret, CUSTOM, NA, OWN(50), WRITE),
	OP("GetSecretValue", sm_op_get_secret_value, SECRET, LIVE, SHARED_READ, READ),
	OP("BatchGetSecretValue", sm_op_batch_get_secret_value, NONE, NA, OWN(100), READ),
	OP("PutSecretValue", sm_op_put_secret_value, SECRET, LIVE, WRITES, WRITE),
	OP("UpdateSecret", sm_op_update_secret, SECRET, LIVE, WRITES, WRITE),
	OP("DescribeSecret", sm_op_describe_secret, SECRET, ANY, SHARED_READ, READ),
	OP("ListSecrets", sm_op_list_secrets, NONE, NA, OWN(100), READ),
	OP("ListSecretVersionIds", sm_op_list_secret_version_ids, SECRET, ANY, OWN(50), READ),
	OP("UpdateSecretVersionStage", sm_op_update_secret_version_stage, SECRET, LIVE, WRITES,
	   WRITE),
	/* deletion */
	OP("DeleteSecret", sm_op_delete_secret, CUSTOM, NA, OWN(50), WRITE),
	OP("RestoreSecret", sm_op_restore_secret, SECRET, ANY, OWN(50), WRITE),
	/* rotation */
	OP("RotateSecret", sm_op_rotate_secret, SECRET, LIVE, ROTATION, WRITE),
	OP("CancelRotateSecret", sm_op_cancel_rotate_secret, SECRET, LIVE, ROTATION, WRITE),
	/* tags */
	OP("TagResource", sm_op_tag_resource, SECRET, ANY, TAGS, WRITE),
	OP("UntagResource", sm_op_untag_resource, SECRET, ANY, TAGS, WRITE),
	/* passwords */
	OP("GetRandomPassword", sm_op_get_random_password, NONE, NA, OWN(50), READ),
	/* resource policies */
	OP("PutResourcePolicy", sm_op_put_resource_policy, SECRET, LIVE, POLICY, WRITE),
	OP("GetResourcePolicy", sm_op_get_resource_policy, SECRET, ANY, POLICY, READ),
	OP("DeleteResourcePolicy", sm_op_delete_resource_policy, SECRET, ANY, POLICY, WRITE),
	OP("ValidateResourcePolicy", sm_op_validate_resource_policy, SECRET_IF_NAMED, ANY, POLICY,
	   READ),
	/* replication */
	OP("ReplicateSecretToRegions", sm_op_replicate_secret_to_regions, SECRET, LIVE, WRITES,
	   WRITE),
	OP("RemoveRegionsFromReplication", sm_op_remove_regions_from_replication, SECRET, ANY,
	   WRITES, WRITE),
	OP("StopReplicationToReplica", sm_op_stop_replication_to_replica, SECRET, ANY, WRITES,
	   WRITE),
};

static const struct api_service sm_service = {
	.target_prefix = "secretsmanager.",
	.signing_name = "secretsmanager",
	.event_source = "secretsmanager.amazonaws.com",
	.ops = sm_ops,
	.n_ops = sizeof sm_ops / sizeof sm_ops[0],
	.authorize = sm_authorize,
	.release_resource = sm_release_resource,
	.errors = sm_errors,
	.n_errors = sizeof sm_errors / sizeof sm_errors[0],
	.resources = API_RES_BIT(API_RES_NONE) | API_RES_BIT(API_RES_SECRET) |
		     API_RES_BIT(API_RES_CUSTOM),
};

const struct api_service *secrets_service_table(void)
{
	return &sm_service;
}

k_status secrets_init(struct storage *st)
{
	GUARD(sm_set_store(st));
	GUARD(storage_subscribe(st, sm_cache_on_change, NULL));
	return secrets_scheduler_init();
}
