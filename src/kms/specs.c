/*
 * specs.c — the key spec table (see specs.h).
 *
 * Usages per spec, from AWS's key spec reference
 * (https://docs.aws.amazon.com/kms/latest/developerguide/symm-asymm-choose-key-spec.html):
 *   RSA_*                  ENCRYPT_DECRYPT or SIGN_VERIFY
 *   ECC_NIST_P256/384/521  SIGN_VERIFY or KEY_AGREEMENT
 *   ECC_SECG_P256K1        SIGN_VERIFY
 *   ECC_NIST_EDWARDS25519  SIGN_VERIFY
 *   HMAC_*                 GENERATE_VERIFY_MAC
 * Imported material (Origin EXTERNAL) is allowed for every spec here.
 */
#include "kms/specs.h"

#include <string.h>

#include "core/banned.h"

const char *const kms_spec_names[] = {"RSA_2048",
				      "RSA_3072",
				      "RSA_4096",
				      "ECC_NIST_P256",
				      "ECC_NIST_P384",
				      "ECC_NIST_P521",
				      "ECC_SECG_P256K1",
				      "SYMMETRIC_DEFAULT",
				      "HMAC_224",
				      "HMAC_256",
				      "HMAC_384",
				      "HMAC_512",
				      "SM2",
				      "ECC_NIST_EDWARDS25519",
				      NULL};

const char *const kms_usage_names[] = {"SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC",
				       "KEY_AGREEMENT", NULL};

static const char *const usage_encrypt[] = {"ENCRYPT_DECRYPT", NULL};
static const char *const usage_rsa[] = {"ENCRYPT_DECRYPT", "SIGN_VERIFY", NULL};
static const char *const usage_nist[] = {"SIGN_VERIFY", "KEY_AGREEMENT", NULL};
static const char *const usage_sign[] = {"SIGN_VERIFY", NULL};
static const char *const usage_mac[] = {"GENERATE_VERIFY_MAC", NULL};

/*
 * "KeyUsage ... The default value is ENCRYPT_DECRYPT" (API_CreateKey), so an
 * ECC or HMAC key created without a KeyUsage is refused as incompatible.
 */
static const struct kms_spec specs[] = {
	{"SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", usage_encrypt, true},
	{"RSA_2048", "ENCRYPT_DECRYPT", usage_rsa, true},
	{"RSA_3072", "ENCRYPT_DECRYPT", usage_rsa, true},
	{"RSA_4096", "ENCRYPT_DECRYPT", usage_rsa, true},
	{"ECC_NIST_P256", "ENCRYPT_DECRYPT", usage_nist, true},
	{"ECC_NIST_P384", "ENCRYPT_DECRYPT", usage_nist, true},
	{"ECC_NIST_P521", "ENCRYPT_DECRYPT", usage_nist, true},
	{"ECC_SECG_P256K1", "ENCRYPT_DECRYPT", usage_sign, true},
	{"ECC_NIST_EDWARDS25519", "ENCRYPT_DECRYPT", usage_sign, true},
	{"HMAC_224", "ENCRYPT_DECRYPT", usage_mac, true},
	{"HMAC_256", "ENCRYPT_DECRYPT", usage_mac, true},
	{"HMAC_384", "ENCRYPT_DECRYPT", usage_mac, true},
	{"HMAC_512", "ENCRYPT_DECRYPT", usage_mac, true},
};

/* Specs this build cannot create yet: CreateKey refuses them cleanly. */
static const char *const no_usage[] = {NULL};
static const struct kms_spec unavailable = {"", "ENCRYPT_DECRYPT", no_usage, false};

const struct kms_spec *kms_spec_find(const char *name)
{
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		if (strcmp(specs[i].name, name) == 0)
			return &specs[i];
	}
	return &unavailable;
}

bool kms_spec_allows_usage(const struct kms_spec *s, const char *usage)
{
	for (size_t i = 0; s->usages[i] != NULL; i++) {
		if (strcmp(s->usages[i], usage) == 0)
			return true;
	}
	return false;
}

static bool is(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/*
 * The algorithm lists of KeyMetadata, as DescribeKey shows them
 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_KeyMetadata.html).
 */
void kms_spec_describe(const struct kms_spec *s, const char *usage, json_t *doc)
{
	const char *n = s->name;
	if (is(n, "SYMMETRIC_DEFAULT")) {
		json_object_set_new(doc, "EncryptionAlgorithms",
				    json_pack("[s]", "SYMMETRIC_DEFAULT"));
	} else if (strncmp(n, "RSA_", 4) == 0 && is(usage, "ENCRYPT_DECRYPT")) {
		json_object_set_new(doc, "EncryptionAlgorithms",
				    json_pack("[s,s]", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"));
	} else if (strncmp(n, "RSA_", 4) == 0) {
		json_object_set_new(
			doc, "SigningAlgorithms",
			json_pack("[s,s,s,s,s,s]", "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384",
				  "RSASSA_PSS_SHA_512", "RSASSA_PKCS1_V1_5_SHA_256",
				  "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"));
	} else if (strncmp(n, "ECC_NIST_P", 10) == 0 && is(usage, "KEY_AGREEMENT")) {
		json_object_set_new(doc, "KeyAgreementAlgorithms", json_pack("[s]", "ECDH"));
	} else if (is(n, "ECC_NIST_P256") || is(n, "ECC_SECG_P256K1")) {
		json_object_set_new(doc, "SigningAlgorithms", json_pack("[s]", "ECDSA_SHA_256"));
	} else if (is(n, "ECC_NIST_P384")) {
		json_object_set_new(doc, "SigningAlgorithms", json_pack("[s]", "ECDSA_SHA_384"));
	} else if (is(n, "ECC_NIST_P521")) {
		json_object_set_new(doc, "SigningAlgorithms", json_pack("[s]", "ECDSA_SHA_512"));
	} else if (is(n, "ECC_NIST_EDWARDS25519")) {
		json_object_set_new(doc, "SigningAlgorithms", json_pack("[s]", "ED25519_SHA_512"));
	} else if (strncmp(n, "HMAC_", 5) == 0) {
		char alg[16] = "HMAC_SHA_";
		size_t l = strlen(alg);
		memcpy(alg + l, n + 5, strlen(n + 5) + 1);
		json_object_set_new(doc, "MacAlgorithms", json_pack("[s]", alg));
	}
}
