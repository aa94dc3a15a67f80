/*
 * service.c — the KMS operation table: the API surface as data.
 * Rows are grouped by feature (the dispatcher sorts its own copy).
 * Each row names the handler and the IAM action that authorizes it.
 */
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
	OP("ReEncrypt", kms_op_re_encrypt, false),
	/* lifecycle: aliases, tags, states, deletion, rotation */
	/* asymmetric, HMAC, key agreement, imported material */
	/* authorization: key policies, grants */
};

static const struct api_service kms_service = {
	.target_prefix = "TrentService.",
	.signing_name = "kms",
	.event_source = "kms.amazonaws.com",
	.ops = kms_ops,
	.n_ops = sizeof kms_ops / sizeof kms_ops[0],
};

void kms_register(void)
{
	api_register_service(&kms_service);
}
