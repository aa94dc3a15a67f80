/*
 * ops_versions.c — the version operations: ListSecretVersionIds and
 * UpdateSecretVersionStage.
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_Operations.html
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "secrets/internal.h"
#include "core/banned.h"

static int cmp_version_seq(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "Seq"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "Seq"));
	return (x < y) - (x > y);
}

/*
 * ListSecretVersionIds (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ListSecretVersionIds.html):
 * "IncludeDeprecated: Specifies whether to include versions of secrets
 * that don't have any staging labels attached to them."
 */
k_status sm_op_list_secret_version_ids(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *next;
	int64_t max = 100;
	bool has_max, has_dep, dep;
	GUARD(api_int(c, in, "MaxResults", false, 1, 100, &has_max, &max));
	GUARD(api_string(c, in, "NextToken", false, 1, 4096, &next));
	GUARD(api_bool(c, in, "IncludeDeprecated", &has_dep, &dep));
	size_t start = 0;
	if (next != NULL) {
		char *end = NULL;
		unsigned long v =
			strncmp(next, "kinko1:", 7) == 0 ? strtoul(next + 7, &end, 10) : 0;
		if (end == NULL || *end != 0 || v > 1000)
			return api_fail(c, K_E_SM_INVALID_NEXT_TOKEN,
					"The NextToken value is invalid.");
		start = v;
	}
	struct sm_secret s;
	GUARD(sm_op_secret(c, &s));
	json_t *versions = json_object_get(s.doc, "Versions");
	size_t n = json_object_size(versions), k = 0;
	json_t **list = calloc(n ? n : 1, sizeof *list);
	if (list == NULL) {
		sm_secret_release(&s);
		return K_E_INTERNAL;
	}
	const char *vid;
	json_t *v;
	json_object_foreach(versions, vid, v)
	{
		if (!dep && json_array_size(json_object_get(v, "Stages")) == 0)
			continue;
		json_object_set_new(v, "Id", json_string(vid));
		list[k++] = v;
	}
	qsort(list, k, sizeof *list, cmp_version_seq);
	json_t *arr = json_array();
	size_t end = start + (size_t)max;
	for (size_t i = start; i < k && i < end; i++) {
		v = list[i];
		json_t *e = json_pack("{s:O, s:O}", "VersionId", json_object_get(v, "Id"),
				      "VersionStages", json_object_get(v, "Stages"));
		sm_copy_member(e, v, "CreatedDate");
		sm_copy_member(e, v, "LastAccessedDate");
		/* A re-encrypted version is under its new key and its previous one. */
		const char *ka = json_string_value(json_object_get(v, "KmsKeyArn"));
		const char *pka = json_string_value(json_object_get(v, "PreviousKmsKeyArn"));
		if (ka != NULL && pka != NULL)
			json_object_set_new(e, "KmsKeyIds", json_pack("[s, s]", ka, pka));
		else if (ka != NULL)
			json_object_set_new(e, "KmsKeyIds", json_pack("[s]", ka));
		json_array_append_new(arr, e);
	}
	json_object_set_new(out, "Versions", arr);
	json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
	json_object_set_new(out, "Name", json_string(sm_name(&s)));
	if (end < k) {
		char tok[40];
		snprintf(tok, sizeof tok, "kinko1:%zu", end);
		json_object_set_new(out, "NextToken", json_string(tok));
	}
	free(list);
	sm_secret_release(&s);
	return K_OK;
}

/*
 * UpdateSecretVersionStage (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html):
 * "RemoveFromVersionId: ... If the staging label is already attached to a
 * different version of the secret, then you must include this parameter
 * and specify the version that the label is to be removed from."
 * "If this action results in the last label being removed from a version,
 * then the version is considered to be 'deprecated'."
 * Moving AWSCURRENT puts AWSPREVIOUS on the version it left.
 */
k_status sm_op_update_secret_version_stage(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *stage, *from, *to;
	GUARD(api_string(c, in, "VersionStage", true, 1, 256, &stage));
	GUARD(api_string(c, in, "RemoveFromVersionId", false, 32, 64, &from));
	GUARD(api_string(c, in, "MoveToVersionId", false, 32, 64, &to));
	struct sm_secret s = {0};
	k_status rc = K_OK;
	sm_lock();
	GUARD_GOTO(sm_op_secret(c, &s)); /* live: the row's state rule */
	GUARD_GOTO(sm_require_primary(c, &s));
	json_t *versions = sm_versions(&s);
	const char *owner = sm_stage_owner(&s, stage);
	if (to != NULL && json_object_get(versions, to) == NULL) {
		rc = api_fail(c, K_E_SM_INVALID_PARAMETER,
			      "The version %s doesn't exist in the secret.", to);
		goto out;
	}
	if (from != NULL && json_object_get(versions, from) == NULL) {
		rc = api_fail(c, K_E_SM_INVALID_PARAMETER,
			      "The version %s doesn't exist in the secret.", from);
		goto out;
	}
	if (from != NULL && (owner == NULL || strcmp(owner, from) != 0)) {
		rc = api_fail(c, K_E_SM_INVALID_PARAMETER,
			      "The staging label %s is not attached to version %s.", stage, from);
		goto out;
	}
	if (to != NULL && owner != NULL && strcmp(owner, to) != 0 && from == NULL) {
		rc = api_fail(c, K_E_SM_INVALID_PARAMETER,
			      "The parameter RemoveFromVersionId can't be empty. Staging label %s "
			      "is currently attached to version %s, so you must explicitly "
			      "reference that version in RemoveFromVersionId.",
			      stage, owner);
		goto out;
	}
	if (to == NULL && from == NULL) {
		rc = api_fail(c, K_E_SM_INVALID_PARAMETER,
			      "You must specify MoveToVersionId, RemoveFromVersionId, or both.");
		goto out;
	}
	if (to == NULL && strcmp(stage, "AWSCURRENT") == 0) {
		rc = api_fail(c, K_E_SM_INVALID_PARAMETER,
			      "You can't remove the staging label AWSCURRENT from a version "
			      "without moving it to another version.");
		goto out;
	}
	if (to != NULL) {
		json_t *tv = json_object_get(versions, to);
		if (!sm_version_has_stage(tv, stage) &&
		    json_array_size(json_object_get(tv, "Stages")) >= SM_MAX_STAGES) {
			rc = api_fail(c, K_E_SM_LIMIT_EXCEEDED,
				      "A version can have at most %d staging labels.",
				      SM_MAX_STAGES);
			goto out;
		}
		sm_stage_move(&s, stage, to);
	} else {
		sm_stage_remove(json_object_get(versions, from), stage);
	}
	json_object_set_new(s.doc, "LastChangedDate", kjson_date(api_now_ms(c)));
	GUARD_GOTO(sm_save(&s, NULL, 0));
	sm_unlock();
	rc = sm_sync_replicas(c, sm_name(&s));
	json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
	json_object_set_new(out, "Name", json_string(sm_name(&s)));
	sm_secret_release(&s);
	return rc;
out:
	sm_unlock();
	sm_secret_release(&s);
	return rc;
}
