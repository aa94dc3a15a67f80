/*
 * ops_policy.c — GetKeyPolicy, PutKeyPolicy, ListKeyPolicies.
 *
 * A key has exactly one policy, named "default", kept in its document;
 * the snapshot carries it parsed (kms/authz.h). PutKeyPolicy validates
 * the whole document and the lockout safety check before it writes, so a
 * refused policy leaves nothing half-written.
 */
#include <stdio.h>
#include <string.h>

#include "kms/authz.h"
#include "kms/kms.h"
#include "core/banned.h"

/* "PolicyName ... The only valid value is default." (API_GetKeyPolicy.html) */
static K_MUST_CHECK k_status check_policy_name(struct api_ctx *c, const char *name)
{
	if (name != NULL && strcmp(name, "default") != 0)
		return api_fail(c, K_E_NOT_FOUND, "No such policy exists: %s", name);
	return K_OK;
}

/* GetKeyPolicy (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html). */
k_status kms_op_get_key_policy(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *name;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD(api_string(c, in, "PolicyName", false, 1, 128, &name));
	GUARD(check_policy_name(c, name));
	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	const char *pol = json_string_value(json_object_get(k->doc, "Policy"));
	json_object_set_new(out, "Policy", json_string(pol ? pol : ""));
	json_object_set_new(out, "PolicyName", json_string("default"));
	kms_key_unref(k);
	return K_OK;
}

/*
 * PutKeyPolicy (https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html):
 * "The key policy must allow the calling principal to make a subsequent
 * PutKeyPolicy request on the KMS key" unless BypassPolicyLockoutSafetyCheck;
 * "The policy size limit is 32 KiB (32768 bytes)".
 */
k_status kms_op_put_key_policy(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *name, *policy;
	bool has_bypass, bypass = false;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD(api_string(c, in, "PolicyName", false, 1, 128, &name));
	GUARD(api_string(c, in, "Policy", true, 1, 131072, &policy));
	GUARD(api_bool(c, in, "BypassPolicyLockoutSafetyCheck", &has_bypass, &bypass));
	GUARD(check_policy_name(c, name));
	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	k_status rc = K_OK;
	if (kms_key_is_aws_managed(k)) {
		rc = api_fail(c, K_E_UNSUPPORTED,
			      "%s is an AWS managed key; its policy cannot be changed.", k->arn);
		goto out;
	}
	if (k->state == KS_PENDING_DELETION || k->state == KS_PENDING_REPLICA_DELETION) {
		rc = api_fail(c, K_E_INVALID_STATE, "%s is pending deletion.", k->arn);
		goto out;
	}
	GUARD_GOTO(authz_check_new_key_policy(c, policy, k, has_bypass && bypass));
	json_t *doc = json_deep_copy(k->doc);
	ENSURE_GOTO(doc != NULL, K_E_INTERNAL);
	json_object_set_new(doc, "Policy", json_string(policy));
	GUARD_GOTO(kms_key_update(k, doc, NULL, NULL));
out:
	kms_key_unref(k);
	return rc;
}

/*
 * ListKeyPolicies (https://docs.aws.amazon.com/kms/latest/APIReference/API_ListKeyPolicies.html):
 * "The only key policy name is default."
 */
k_status kms_op_list_key_policies(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *marker;
	int64_t limit = 100;
	bool has_limit;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD(api_int(c, in, "Limit", false, 1, 1000, &has_limit, &limit));
	GUARD(api_string(c, in, "Marker", false, 1, 320, &marker));
	if (marker != NULL)
		return api_fail(c, K_E_INVALID_MARKER, "Invalid marker");
	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	kms_key_unref(k);
	json_object_set_new(out, "PolicyNames", json_pack("[s]", "default"));
	json_object_set_new(out, "Truncated", json_false());
	return K_OK;
}
