/*
 * service.c — the KMS operation table: the API surface as data.
 * Rows are grouped by feature (the dispatcher sorts its own copy).
 * Each row is everything the pipeline knows of an operation (req/req.h).
 */
#include "kms/authz.h"
#include "kms/kms.h"
#include "kms/multiregion.h"
#include "kms/keystores.h"

#include "core/banned.h"

/*
 * One row per operation, every field named (req/req.h, struct
 * api_operation):
 *   OP(name, handler, resource, state rule, quota, mutates, key use)
 * resource: NONE (identity policies on "*"), KEY (KeyId: key id or ARN),
 *   KEY_OR_ALIAS (KeyId may also be an alias), OWN_KEY (a key of the
 *   caller's account), ALIAS (AliasName and its current key), CIPHERTEXT
 *   (the key CiphertextBlob names, or KeyId, which must agree),
 *   REENCRYPT_SOURCE (the same for ReEncrypt's source: SourceKeyId,
 *   kms:ReEncryptFrom; its destination comes through kms_resolve_key with
 *   kms:ReEncryptTo), GRANT (GrantToken, or KeyId and GrantId: the grant
 *   and its key; the grant's retiring principal or grantee may retire it).
 * state rule: AWS's key-state table (ops_lifecycle.c).
 * quota: AWS's KMS quotas (https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html):
 *   SYMMETRIC, RSA, ECC the shared classes, OWN(rate) the operation's own.
 * mutates: the audit event's readOnly is false, an intent record precedes it.
 * key use: a success is a use of the key for GetKeyLastUsage.
 */
#define NONE API_RES_NONE, NULL
#define KEY API_RES_KEY, "KeyId"
#define KEY_OR_ALIAS API_RES_KEY_OR_ALIAS, "KeyId"
#define OWN_KEY API_RES_OWN_KEY, "KeyId"
#define ALIAS API_RES_ALIAS, "AliasName"
#define CIPHERTEXT API_RES_CIPHERTEXT, "CiphertextBlob"
#define REENCRYPT_SOURCE API_RES_REENCRYPT, "CiphertextBlob"
#define GRANT API_RES_GRANT, NULL
#define SYMMETRIC "symmetric", 5500
#define RSA "rsa", 500
#define ECC "ecc", 300
#define OWN(rate) NULL, rate
#define WRITE true
#define READ false
#define USE true
#define NO_USE false

#define OP(...)                                                                                    \
	{                                                                                          \
		OP_FIELDS(__VA_ARGS__)                                                             \
	}
/* An operation that may generate an RSA key: it runs off the request threads. */
#define LONG_OP(...)                                                                               \
	{                                                                                          \
		OP_FIELDS(__VA_ARGS__), .runs_long = true                                          \
	}
#define OP_FIELDS(...) OP_FIELDS_(__VA_ARGS__)
#define OP_FIELDS_(nm, fn, res, memb, st, qcls, qrate, mut, use)                                   \
	.name = nm, .handler = fn, .action = "kms:" nm, .resource = res, .member = memb,           \
	.state = API_STATE_##st, .quota = {qcls, qrate}, .mutates = mut, .key_use = use,           \
	.max_body = 0

static const struct api_operation kms_ops[] = {
	/* keys and symmetric cryptography */
	LONG_OP("CreateKey", kms_op_create_key, NONE, NA, OWN(50), WRITE, NO_USE),
	OP("Decrypt", kms_op_decrypt, CIPHERTEXT, CRYPTO, SYMMETRIC, READ, USE),
	OP("DescribeKey", kms_op_describe_key, KEY_OR_ALIAS, ANY, OWN(2000), READ, NO_USE),
	OP("Encrypt", kms_op_encrypt, KEY_OR_ALIAS, CRYPTO, SYMMETRIC, READ, USE),
	OP("GenerateDataKey", kms_op_generate_data_key, KEY_OR_ALIAS, CRYPTO, SYMMETRIC, READ, USE),
	OP("GenerateDataKeyWithoutPlaintext", kms_op_generate_data_key_without_plaintext,
	   KEY_OR_ALIAS, CRYPTO, SYMMETRIC, READ, USE),
	OP("GenerateRandom", kms_op_generate_random, NONE, NA, SYMMETRIC, READ, NO_USE),
	OP("ListKeys", kms_op_list_keys, NONE, NA, OWN(100), READ, NO_USE),
	/* the last cryptographic use of a key, from the audit stream (ops_usage.c) */
	OP("GetKeyLastUsage", kms_op_get_key_last_usage, KEY, ANY, OWN(100), READ, NO_USE),
	OP("ReEncrypt", kms_op_re_encrypt, REENCRYPT_SOURCE, CRYPTO, SYMMETRIC, READ, USE),
	/* lifecycle: aliases, tags, states, deletion, rotation */
	OP("CancelKeyDeletion", kms_op_cancel_key_deletion, KEY, CANCEL_DELETION, OWN(5), WRITE,
	   NO_USE),
	OP("CreateAlias", kms_op_create_alias, ALIAS, MANAGE, OWN(5), WRITE, NO_USE),
	OP("DeleteAlias", kms_op_delete_alias, ALIAS, ANY, OWN(5), WRITE, NO_USE),
	OP("DisableKey", kms_op_disable_key, KEY, ENABLE_DISABLE, OWN(5), WRITE, NO_USE),
	OP("DisableKeyRotation", kms_op_disable_key_rotation, KEY, CRYPTO, OWN(5), WRITE, NO_USE),
	OP("EnableKey", kms_op_enable_key, KEY, ENABLE_DISABLE, OWN(5), WRITE, NO_USE),
	OP("EnableKeyRotation", kms_op_enable_key_rotation, KEY, CRYPTO, OWN(5), WRITE, NO_USE),
	OP("GetKeyRotationStatus", kms_op_get_key_rotation_status, KEY, ANY, OWN(1000), READ,
	   NO_USE),
	OP("ListAliases", kms_op_list_aliases, NONE, NA, OWN(100), READ, NO_USE),
	OP("ListKeyRotations", kms_op_list_key_rotations, KEY, ANY, OWN(100), READ, NO_USE),
	OP("ListResourceTags", kms_op_list_resource_tags, KEY, ANY, OWN(100), READ, NO_USE),
	OP("RotateKeyOnDemand", kms_op_rotate_key_on_demand, KEY, CRYPTO, OWN(5), WRITE, NO_USE),
	OP("ScheduleKeyDeletion", kms_op_schedule_key_deletion, KEY, MANAGE, OWN(5), WRITE, NO_USE),
	OP("TagResource", kms_op_tag_resource, KEY, MANAGE, OWN(10), WRITE, NO_USE),
	OP("UntagResource", kms_op_untag_resource, KEY, MANAGE, OWN(5), WRITE, NO_USE),
	OP("UpdateAlias", kms_op_update_alias, ALIAS, MANAGE, OWN(5), WRITE, NO_USE),
	OP("UpdateKeyDescription", kms_op_update_key_description, KEY, MANAGE, OWN(5), WRITE,
	   NO_USE),
	/* multi-Region keys (ops_multiregion.c) */
	OP("ReplicateKey", kms_op_replicate_key, KEY, MANAGE, OWN(5), WRITE, NO_USE),
	OP("UpdatePrimaryRegion", kms_op_update_primary_region, KEY, ENABLE_DISABLE, OWN(5), WRITE,
	   NO_USE),
	/* asymmetric, HMAC, key agreement, imported material */
	OP("DeleteImportedKeyMaterial", kms_op_delete_imported_key_material, KEY, IMPORT, OWN(5),
	   WRITE, NO_USE),
	OP("DeriveSharedSecret", kms_op_derive_shared_secret, KEY_OR_ALIAS, CRYPTO, ECC, READ, USE),
	LONG_OP("GenerateDataKeyPair", kms_op_generate_data_key_pair, KEY_OR_ALIAS, CRYPTO, RSA,
		READ, USE),
	LONG_OP("GenerateDataKeyPairWithoutPlaintext",
		kms_op_generate_data_key_pair_without_plaintext, KEY_OR_ALIAS, CRYPTO, RSA, READ,
		USE),
	OP("GenerateMac", kms_op_generate_mac, KEY_OR_ALIAS, CRYPTO, SYMMETRIC, READ, USE),
	LONG_OP("GetParametersForImport", kms_op_get_parameters_for_import, KEY, IMPORT, OWN(5),
		READ, NO_USE),
	OP("GetPublicKey", kms_op_get_public_key, KEY_OR_ALIAS, CRYPTO, OWN(2000), READ, NO_USE),
	OP("ImportKeyMaterial", kms_op_import_key_material, KEY, IMPORT, OWN(5), WRITE, NO_USE),
	OP("Sign", kms_op_sign, KEY_OR_ALIAS, CRYPTO, RSA, READ, USE),
	OP("Verify", kms_op_verify, KEY_OR_ALIAS, CRYPTO, RSA, READ, USE),
	OP("VerifyMac", kms_op_verify_mac, KEY_OR_ALIAS, CRYPTO, SYMMETRIC, READ, USE),
	/* custom key stores (ops_keystores.c): PKCS#11 tokens, external key stores */
	OP("ConnectCustomKeyStore", kms_op_connect_custom_key_store, NONE, NA, OWN(5), WRITE,
	   NO_USE),
	OP("CreateCustomKeyStore", kms_op_create_custom_key_store, NONE, NA, OWN(5), WRITE, NO_USE),
	OP("DeleteCustomKeyStore", kms_op_delete_custom_key_store, NONE, NA, OWN(5), WRITE, NO_USE),
	OP("DescribeCustomKeyStores", kms_op_describe_custom_key_stores, NONE, NA, OWN(5), READ,
	   NO_USE),
	OP("DisconnectCustomKeyStore", kms_op_disconnect_custom_key_store, NONE, NA, OWN(5), WRITE,
	   NO_USE),
	OP("UpdateCustomKeyStore", kms_op_update_custom_key_store, NONE, NA, OWN(5), WRITE, NO_USE),
	/* authorization: key policies, grants */
	OP("CreateGrant", kms_op_create_grant, KEY_OR_ALIAS, CRYPTO, OWN(50), WRITE, NO_USE),
	OP("GetKeyPolicy", kms_op_get_key_policy, OWN_KEY, ANY, OWN(1000), READ, NO_USE),
	OP("ListGrants", kms_op_list_grants, KEY_OR_ALIAS, ANY, OWN(100), READ, NO_USE),
	OP("ListKeyPolicies", kms_op_list_key_policies, OWN_KEY, ANY, OWN(100), READ, NO_USE),
	OP("ListRetirableGrants", kms_op_list_retirable_grants, NONE, NA, OWN(100), READ, NO_USE),
	OP("PutKeyPolicy", kms_op_put_key_policy, OWN_KEY, ANY, OWN(5), WRITE, NO_USE),
	OP("RetireGrant", kms_op_retire_grant, GRANT, ANY, OWN(50), WRITE, NO_USE),
	OP("RevokeGrant", kms_op_revoke_grant, KEY, ANY, OWN(50), WRITE, NO_USE),
};

static const struct api_service kms_service = {
	.target_prefix = "TrentService.",
	.signing_name = "kms",
	.event_source = "kms.amazonaws.com",
	.ops = kms_ops,
	.n_ops = sizeof kms_ops / sizeof kms_ops[0],
	.authorize = kms_authorize, /* authorization (kms/authz.h) */
	.release_resource = kms_release_resource,
	.resources = API_RES_BIT(API_RES_NONE) | API_RES_BIT(API_RES_KEY) |
		     API_RES_BIT(API_RES_KEY_OR_ALIAS) | API_RES_BIT(API_RES_OWN_KEY) |
		     API_RES_BIT(API_RES_ALIAS) | API_RES_BIT(API_RES_CIPHERTEXT) |
		     API_RES_BIT(API_RES_REENCRYPT) | API_RES_BIT(API_RES_GRANT),
};

const struct api_service *kms_service_table(void)
{
	return &kms_service;
}
