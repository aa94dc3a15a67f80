/*
 * service.c — the Secrets Manager operation table ("secretsmanager."
 * targets, SigV4 service "secretsmanager"): the API surface as data.
 *
 * Each row's handler is wrapped so that internal failures surface as
 * Secrets Manager's own exception, InternalServiceError, rather than the
 * KMS one ("An error occurred on the server side.").
 */
#include "secrets/internal.h"
#include "secrets/secrets.h"

#include "core/banned.h"

static k_status sm_map(k_status rc)
{
	switch (rc) {
	case K_E_INTERNAL:
	case K_E_STORE_UNAVAILABLE:
	case K_E_CONFLICT:
		return K_E_SM_INTERNAL;
	default:
		return rc;
	}
}

#define WRAP(fn)                                                                   \
	static k_status fn##_w(struct api_ctx *c, json_t *in, json_t *out)         \
	{                                                                          \
		return sm_map(fn(c, in, out));                                     \
	}

WRAP(sm_op_batch_get_secret_value)
WRAP(sm_op_cancel_rotate_secret)
WRAP(sm_op_create_secret)
WRAP(sm_op_delete_resource_policy)
WRAP(sm_op_delete_secret)
WRAP(sm_op_describe_secret)
WRAP(sm_op_get_random_password)
WRAP(sm_op_get_resource_policy)
WRAP(sm_op_get_secret_value)
WRAP(sm_op_list_secret_version_ids)
WRAP(sm_op_list_secrets)
WRAP(sm_op_put_resource_policy)
WRAP(sm_op_put_secret_value)
WRAP(sm_op_remove_regions_from_replication)
WRAP(sm_op_replicate_secret_to_regions)
WRAP(sm_op_restore_secret)
WRAP(sm_op_rotate_secret)
WRAP(sm_op_stop_replication_to_replica)
WRAP(sm_op_tag_resource)
WRAP(sm_op_untag_resource)
WRAP(sm_op_update_secret)
WRAP(sm_op_update_secret_version_stage)
WRAP(sm_op_validate_resource_policy)

/*
 * One row per operation, every field named (req/req.h):
 *   OP(name, handler, resource, quota, mutates)
 * resource: NONE (identity policies on "*"), SECRET (SecretId, through
 *   sm_lookup, the only lookup handlers have, which authorizes), CUSTOM
 *   (the handler authorizes: a new secret's ARN), SECRET_IF_NAMED (the
 *   secret when the request names one, else Resource "*"). Secrets have no
 *   key-state rule.
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
#define SHARED_READ "secrets-read", 10000
#define WRITES "secrets-write", 50
#define ROTATION "secrets-rotation", 50
#define TAGS "secrets-tags", 50
#define POLICY "secrets-policy", 50
#define OWN(rate) NULL, rate
#define WRITE true
#define READ false

#define OP(...) OP_(__VA_ARGS__)
#define OP_(nm, fn, res, memb, qcls, qrate, mut)                                                          \
	{.name = nm, .handler = fn##_w, .action = "secretsmanager:" nm, .resource = res,        \
	 .member = memb, .state = API_STATE_NA, .quota = {qcls, qrate}, .mutates = mut, .key_use = false,     \
	 .max_body = 256u << 10}

static const struct api_operation sm_ops[] = {
	/* secrets and their values */
	OP("CreateSecret", sm_op_create_secret, CUSTOM, OWN(50), WRITE),
	OP("GetSecretValue", sm_op_get_secret_value, SECRET, SHARED_READ, READ),
	OP("BatchGetSecretValue", sm_op_batch_get_secret_value, NONE, OWN(100), READ),
	OP("PutSecretValue", sm_op_put_secret_value, SECRET, WRITES, WRITE),
	OP("UpdateSecret", sm_op_update_secret, SECRET, WRITES, WRITE),
	OP("DescribeSecret", sm_op_describe_secret, SECRET, SHARED_READ, READ),
	OP("ListSecrets", sm_op_list_secrets, NONE, OWN(100), READ),
	OP("ListSecretVersionIds", sm_op_list_secret_version_ids, SECRET, OWN(50), READ),
	OP("UpdateSecretVersionStage", sm_op_update_secret_version_stage, SECRET, WRITES, WRITE),
	/* deletion */
	OP("DeleteSecret", sm_op_delete_secret, SECRET, OWN(50), WRITE),
	OP("RestoreSecret", sm_op_restore_secret, SECRET, OWN(50), WRITE),
	/* rotation */
	OP("RotateSecret", sm_op_rotate_secret, SECRET, ROTATION, WRITE),
	OP("CancelRotateSecret", sm_op_cancel_rotate_secret, SECRET, ROTATION, WRITE),
	/* tags */
	OP("TagResource", sm_op_tag_resource, SECRET, TAGS, WRITE),
	OP("UntagResource", sm_op_untag_resource, SECRET, TAGS, WRITE),
	/* passwords */
	OP("GetRandomPassword", sm_op_get_random_password, NONE, OWN(50), READ),
	/* resource policies */
	OP("PutResourcePolicy", sm_op_put_resource_policy, SECRET, POLICY, WRITE),
	OP("GetResourcePolicy", sm_op_get_resource_policy, SECRET, POLICY, READ),
	OP("DeleteResourcePolicy", sm_op_delete_resource_policy, SECRET, POLICY, WRITE),
	OP("ValidateResourcePolicy", sm_op_validate_resource_policy, SECRET_IF_NAMED, POLICY, READ),
	/* replication */
	OP("ReplicateSecretToRegions", sm_op_replicate_secret_to_regions, SECRET, WRITES, WRITE),
	OP("RemoveRegionsFromReplication", sm_op_remove_regions_from_replication, SECRET, WRITES,
	   WRITE),
	OP("StopReplicationToReplica", sm_op_stop_replication_to_replica, SECRET, WRITES, WRITE),
};

static const struct api_service sm_service = {
	.target_prefix = "secretsmanager.",
	.signing_name = "secretsmanager",
	.event_source = "secretsmanager.amazonaws.com",
	.ops = sm_ops,
	.n_ops = sizeof sm_ops / sizeof sm_ops[0],
	.authorize = sm_authorize,
	.resources = API_RES_BIT(API_RES_NONE) | API_RES_BIT(API_RES_SECRET) | API_RES_BIT(API_RES_CUSTOM),
};

const struct api_service *secrets_service_table(void)
{
	return &sm_service;
}

k_status secrets_init(struct storage *st)
{
	GUARD(sm_set_store(st));
	return secrets_scheduler_init();
}
