/*
 * specs.h — the key specs kinko knows: which usages each allows and the
 * algorithm lists DescribeKey shows. Key stores generate the material
 * (keystore/keyops.h).
 * https://docs.aws.amazon.com/kms/latest/developerguide/symm-asymm-choose-key-spec.html
 */
#ifndef KINKO_KMS_SPECS_H
#define KINKO_KMS_SPECS_H

#include <jansson.h>
#include <stdbool.h>
#include "core/result.h"
#include "core/secret.h"

struct kms_spec {
	const char *name;	   /* "SYMMETRIC_DEFAULT" */
	const char *default_usage; /* usage when CreateKey names none */
	const char *const *usages; /* allowed KeyUsage values */
	bool importable;	   /* Origin EXTERNAL allowed */
};

extern const char *const kms_spec_names[];  /* every KeySpec enum value */
extern const char *const kms_usage_names[]; /* every KeyUsage enum value */

/* The spec row; never NULL for a name from kms_spec_names. */
const struct kms_spec *kms_spec_find(const char *name);
bool kms_spec_allows_usage(const struct kms_spec *s, const char *usage);
/* Adds EncryptionAlgorithms / SigningAlgorithms / MacAlgorithms / ... to a key document. */
void kms_spec_describe(const struct kms_spec *s, const char *usage, json_t *doc);

#endif
