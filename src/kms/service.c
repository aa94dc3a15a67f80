/*
 * service.c — the KMS operation table: the API surface as data.
 * Rows are grouped by feature (the dispatcher sorts its own copy).
 * Each row names the handler and the IAM action that authorizes it.
 */
#include "kms/authz.h"
#include "kms/kms.h"

#include "core/banned.h"

#define OP(name, fn, ro) {name, fn, "kms:" name, ro, 0}

static const struct api_operation kms_ops[] = {
	/* keys and symmetric cryptography */
	OP("CreateKey", kms_op_create_key, false),
	OP("Decrypt", kms_op_decrypt, false),
	OP("DescribeKey", kms_op_describe_key, true),
	OP("Encrypt", kms_op_encrypt, false),
	OP("GenerateDataKey", kms_op_generate_data_key, false),
	OP("GenerateDataKeyWithoutPlaintext", kms_op_generate_data_key_without_plaintext, false),
	OP("GenerateRandom", kms_op_generate_random, false),
	OP("ListKeys", kms_op_list_keys, true),
	/* audit: the last cryptographic use of a key, from the audit stream (src/audit/lastuse.c) */
	OP("GetKeyLastUsage", kms_op_get_key_last_usage, true),
	OP("ReEncrypt", kms_op_re_encrypt, false),
	/* lifecycle: aliases, tags, states, deletion, rotation */
	OP("CancelKeyDeletion", kms_op_cancel_key_deletion, false),
	OP("CreateAlias", kms_op_create_alias, false),
	OP("DeleteAlias", kms_op_delete_alias, false),
	OP("DisableKey", kms_op_disable_key, false),
	OP("DisableKeyRotation", kms_op_disable_key_rotation, false),
	OP("EnableKey", kms_op_enable_key, false),
	OP("EnableKeyRotation", kms_op_enable_key_rotation, false),
	OP("GetKeyRotationStatus", kms_op_get_key_rotation_status, true),
	OP("ListAliases", kms_op_list_aliases, true),
	OP("ListKeyRotations", kms_op_list_key_rotations, true),
	OP("ListResourceTags", kms_op_list_resource_tags, true),
	OP("RotateKeyOnDemand", kms_op_rotate_key_on_demand, false),
	OP("ScheduleKeyDeletion", kms_op_schedule_key_deletion, false),
	OP("TagResource", kms_op_tag_resource, false),
	OP("UntagResource", kms_op_untag_resource, false),
	OP("UpdateAlias", kms_op_update_alias, false),
	OP("UpdateKeyDescription", kms_op_update_key_description, false),
	/* asymmetric, HMAC, key agreement, imported material */
	OP("DeleteImportedKeyMaterial", kms_op_delete_imported_key_material, false),
	OP("DeriveSharedSecret", kms_op_derive_shared_secret, false),
	OP("GenerateDataKeyPair", kms_op_generate_data_key_pair, false),
	OP("GenerateDataKeyPairWithoutPlaintext", kms_op_generate_data_key_pair_without_plaintext, false),
	OP("GenerateMac", kms_op_generate_mac, false),
	OP("GetParametersForImport", kms_op_get_parameters_for_import, false),
	OP("GetPublicKey", kms_op_get_public_key, true),
	OP("ImportKeyMaterial", kms_op_import_key_material, false),
	OP("Sign", kms_op_sign, false),
	OP("Verify", kms_op_verify, false),
	OP("VerifyMac", kms_op_verify_mac, false),
	/* authorization: key policies, grants */
	OP("CreateGrant", kms_op_create_grant, false),
	OP("GetKeyPolicy", kms_op_get_key_policy, true),
	OP("ListGrants", kms_op_list_grants, true),
	OP("ListKeyPolicies", kms_op_list_key_policies, true),
	OP("ListRetirableGrants", kms_op_list_retirable_grants, true),
	OP("PutKeyPolicy", kms_op_put_key_policy, false),
	OP("RetireGrant", kms_op_retire_grant, false),
	OP("RevokeGrant", kms_op_revoke_grant, false),
};

static const struct api_service kms_service = {
	.target_prefix = "TrentService.",
	.signing_name = "kms",
	.event_source = "kms.amazonaws.com",
	.ops = kms_ops,
	.n_ops = sizeof kms_ops / sizeof kms_ops[0],
	.authorize = kms_authorize, /* authorization (kms/authz.h) */
};

void kms_register(void)
{
	api_register_service(&kms_service);
}
