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

/* Values are up to 64 KB, base64 grows them by a third: allow 256 KB bodies. */
#define OP(name, fn, ro) {name, fn##_w, "secretsmanager:" name, ro, 256u << 10}

static const struct api_operation sm_ops[] = {
	/* secrets and their values */
	OP("CreateSecret", sm_op_create_secret, false),
	OP("GetSecretValue", sm_op_get_secret_value, true),
	OP("BatchGetSecretValue", sm_op_batch_get_secret_value, true),
	OP("PutSecretValue", sm_op_put_secret_value, false),
	OP("UpdateSecret", sm_op_update_secret, false),
	OP("DescribeSecret", sm_op_describe_secret, true),
	OP("ListSecrets", sm_op_list_secrets, true),
	OP("ListSecretVersionIds", sm_op_list_secret_version_ids, true),
	OP("UpdateSecretVersionStage", sm_op_update_secret_version_stage, false),
	/* deletion */
	OP("DeleteSecret", sm_op_delete_secret, false),
	OP("RestoreSecret", sm_op_restore_secret, false),
	/* rotation */
	OP("RotateSecret", sm_op_rotate_secret, false),
	OP("CancelRotateSecret", sm_op_cancel_rotate_secret, false),
	/* tags */
	OP("TagResource", sm_op_tag_resource, false),
	OP("UntagResource", sm_op_untag_resource, false),
	/* passwords */
	OP("GetRandomPassword", sm_op_get_random_password, true),
	/* resource policies */
	OP("PutResourcePolicy", sm_op_put_resource_policy, false),
	OP("GetResourcePolicy", sm_op_get_resource_policy, true),
	OP("DeleteResourcePolicy", sm_op_delete_resource_policy, false),
	OP("ValidateResourcePolicy", sm_op_validate_resource_policy, true),
	/* replication */
	OP("ReplicateSecretToRegions", sm_op_replicate_secret_to_regions, false),
	OP("RemoveRegionsFromReplication", sm_op_remove_regions_from_replication, false),
	OP("StopReplicationToReplica", sm_op_stop_replication_to_replica, false),
};

static const struct api_service sm_service = {
	.target_prefix = "secretsmanager.",
	.signing_name = "secretsmanager",
	.event_source = "secretsmanager.amazonaws.com",
	.ops = sm_ops,
	.n_ops = sizeof sm_ops / sizeof sm_ops[0],
	.authorize = sm_authorize,
};

k_status secrets_init(struct storage *st)
{
	GUARD(sm_set_store(st));
	api_register_service(&sm_service);
	return secrets_scheduler_init();
}
