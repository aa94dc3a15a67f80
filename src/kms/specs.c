/*
 * specs.c — the key spec table (see specs.h).
 */
#include "kms/specs.h"

#include <string.h>

#include "crypto/crypto.h"
#include "core/banned.h"

const char *const kms_spec_names[] = {
	"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
	"ECC_SECG_P256K1", "SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512",
	"SM2", "ECC_NIST_EDWARDS25519", NULL};

const char *const kms_usage_names[] = {"SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC",
				       "KEY_AGREEMENT", NULL};

static k_status gen_aes256(struct ksecret **out)
{
	*out = crypto_random_secret(32);
	return *out ? K_OK : K_E_INTERNAL;
}

static k_status gen_unsupported(struct ksecret **out)
{
	*out = NULL;
	return K_E_UNSUPPORTED;
}

static const char *const usage_encrypt[] = {"ENCRYPT_DECRYPT", NULL};

static const struct kms_spec specs[] = {
	{"SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", usage_encrypt, true, gen_aes256},
};

/* Specs this build cannot create yet: CreateKey refuses them cleanly. */
static const char *const no_usage[] = {NULL};
static const struct kms_spec unavailable = {"", "ENCRYPT_DECRYPT", no_usage, false, gen_unsupported};

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

void kms_spec_describe(const struct kms_spec *s, const char *usage, json_t *doc)
{
	if (strcmp(s->name, "SYMMETRIC_DEFAULT") == 0)
		json_object_set_new(doc, "EncryptionAlgorithms", json_pack("[s]", "SYMMETRIC_DEFAULT"));
}
