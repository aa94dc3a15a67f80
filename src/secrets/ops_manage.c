/*
 * ops_manage.c — DeleteSecret, RestoreSecret, RotateSecret,
 * CancelRotateSecret, TagResource, UntagResource and the resource-policy
 * operations (ListSecrets: ops_list.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/functions.h"
#include "core/log.h"
#include "scheduler/scheduler.h"
#include "secrets/internal.h"
#include "core/arn.h"
#include "core/banned.h"

/*
 * ForceDeleteWithoutRecovery on a secret that does not exist: "If you
 * forcibly delete an already deleted or nonexistent secret, the operation
 * does not return ResourceNotFoundException." (API_DeleteSecret.) The
 * answer is built from the SecretId: an ARN is returned as given, with
 * the name it holds (less a random suffix); a name gets an ARN with a
 * fresh suffix. The caller still needs secretsmanager:DeleteSecret on
 * that ARN.
 */
static K_MUST_CHECK k_status forget_missing(struct api_ctx *c, const char *id, int64_t now_ms,
					    json_t *out)
{
	char arn[700], name[520];
	struct k_arn given;
	if (k_arn_parse_cstr(id, &given) && given.kind == K_ARN_SECRET) {
		snprintf(arn, sizeof arn, "%s", id);
		snprintf(name, sizeof name, "%.*s", (int)given.id.len, (const char *)given.id.ptr);
		size_t n = strlen(name);
		bool suffixed = n > K_ARN_SECRET_SUFFIX_LEN + 1 &&
				name[n - K_ARN_SECRET_SUFFIX_LEN - 1] == '-';
		for (size_t i = n - K_ARN_SECRET_SUFFIX_LEN; suffixed && i < n; i++)
			suffixed = isalnum((unsigned char)name[i]) != 0;
		if (suffixed)
			name[n - K_ARN_SECRET_SUFFIX_LEN - 1] = 0;
	} else {
		char suffix[7], name_suffix[600];
		sm_random_suffix(suffix);
		snprintf(name, sizeof name, "%s", id);
		snprintf(name_suffix, sizeof name_suffix, "%s-%s", id, suffix);
		struct k_arn a = k_arn_of("secretsmanager", c->region, c->principal.account,
					  K_ARN_SECRET, name_suffix);
		k_arn_format(&a, arn, sizeof arn);
	}
	GUARD(sm_authorize_new(c, arn));
	json_object_set_new(out, "ARN", json_string(arn));
	json_object_set_new(out, "Name", json_string(name));
	json_object_set_new(out, "DeletionDate", kjson_date(now_ms));
	return K_OK;
}

/*
 * DeleteSecret (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html):
 * "RecoveryWindowInDays: The number of days from 7 to 30 that Secrets
 * Manager waits before permanently deleting the secret. You can't use
 * both this parameter and ForceDeleteWithoutRecovery in the same call. If
 * you don't use either, then by default Secrets Manager uses a 30 day
 * recovery window." A primary with replicas cannot be deleted until they
 * are removed.
 */
k_status sm_op_delete_secret(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *id;
	bool has_days = false, has_force, force;
	int64_t days = 30;
	GUARD(api_string(c, in, "SecretId", true, 1, 2048, &id));
	json_t *jd = json_object_get(in, "RecoveryWindowInDays");
	if (jd != NULL && !json_is_null(jd)) {
		if (!json_is_integer(jd))
			return api_fail(c, K_E_SERIALIZATION,
					"Unexpected value type for member 'RecoveryWindowInDays': "
					"expected long");
		has_days = true;
		days = json_integer_value(jd);
	}
	GUARD(api_bool(c, in, "ForceDeleteWithoutRecovery", &has_force, &force));
	if (has_days && force)
		return api_fail(c, K_E_SM_INVALID_PARAMETER,
				"You can't use ForceDeleteWithoutRecovery in conjunction with "
				"RecoveryWindowInDays.");
	if (has_days && (days < 7 || days > 30))
		return api_fail(c, K_E_SM_INVALID_PARAMETER,
				"The RecoveryWindowInDays value must be between 7 and 30 days "
				"(inclusive).");
	struct sm_secret s = {0};
	k_status rc = K_OK;
	int64_t now_ms = api_now_ms(c);
	sm_lock();
	rc = sm_resolve_secret(c, id, NULL, API_STATE_ANY, &s);
	if (k_is(rc, K_E_SM_NOT_FOUND) && force) {
		kbuf_reset(&c->err_msg);
		rc = forget_missing(c, id, now_ms, out);
		goto out;
	}
	GUARD_GOTO(rc);
	if (json_array_size(json_object_get(s.doc, "ReplicationStatus")) > 0) {
		rc = api_fail(c, K_E_SM_INVALID_REQUEST,
			      "You can't delete secret %s that has replicas. Remove the replica "
			      "Regions first.",
			      sm_name(&s));
		goto out;
	}
	if (sm_is_replica(&s)) {
		rc = api_fail(c, K_E_SM_INVALID_REQUEST,
			      "You can't delete a replica secret. Call StopReplicationToReplica or "
			      "RemoveRegionsFromReplication first.");
		goto out;
	}
	if (sm_deleted(&s) && !force) {
		rc = api_fail(c, K_E_SM_INVALID_REQUEST,
			      "You can't perform this operation on the secret because it was "
			      "already scheduled for deletion.");
		goto out;
	}
	json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
	json_object_set_new(out, "Name", json_string(sm_name(&s)));
	if (force) {
		GUARD_GOTO(sm_purge(c->ns, &s));
		json_object_set_new(out, "DeletionDate", kjson_date(now_ms));
		goto out;
	}
	json_object_set_new(s.doc, "DeletedDate", kjson_date(now_ms));
	json_object_set_new(s.doc, "PurgeDate", json_integer(c->now + days * SM_DAY));
	char due[SCHEDULER_DUE_ID_MAX + 1];
	struct storage_op op;
	GUARD_GOTO(sm_due_op(&s, SM_TASK_PURGE, c->now + days * SM_DAY, due, sizeof due, &op));
	GUARD_GOTO(sm_save(&s, &op, 1));
	json_object_set_new(out, "DeletionDate", kjson_date(now_ms + days * SM_DAY * 1000));
out:
	sm_unlock();
	sm_secret_release(&s);
	return rc;
}

/* RestoreSecret (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RestoreSecret.html). */
k_status sm_op_restore_secret(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)in;
	struct sm_secret s = {0};
	k_status rc = K_OK;
	sm_lock();
	GUARD_GOTO(sm_op_secret(c, &s));
	if (sm_deleted(&s)) {
		json_object_del(s.doc, "DeletedDate");
		json_object_del(s.doc, "PurgeDate");
		json_object_set_new(s.doc, "LastChangedDate", kjson_date(api_now_ms(c)));
		GUARD_GOTO(sm_save(&s, NULL, 0));
	}
	json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
	json_object_set_new(out, "Name", json_string(sm_name(&s)));
out:
	sm_unlock();
	sm_secret_release(&s);
	return rc;
}

/*
 * The version RotateImmediately=false's test runs on: AWSPENDING on a copy
 * of the AWSCURRENT value (no value if the secret has none), saved with
 * the secret's other changes and `extra` in one apply.
 */
static K_MUST_CHECK k_status reserve_test_version(struct api_ctx *c, struct sm_secret *s,
						  const char *vid, const struct storage_op *extra,
						  size_t n_extra)
{
	json_t *versions = sm_versions(s);
	if (json_object_get(versions, vid) != NULL)
		return api_fail(c, K_E_SM_EXISTS,
				"A version with the ClientRequestToken %s already exists.", vid);
	json_object_set_new(s->doc, "KinkoRotationStatus",
			    json_pack("{s:s, s:s, s:I, s:b}", "VersionId", vid, "Status",
				      "InProgress", "Date", (json_int_t)c->now, "Test", 1));
	/*
	 * The version is marked as the test's: a rotation that starts meanwhile
	 * takes AWSPENDING from it rather than wait for it.
	 */
	json_int_t seq = json_integer_value(json_object_get(s->doc, "NextSeq")) + 1;
	json_object_set_new(s->doc, "NextSeq", json_integer(seq));
	json_t *tv = json_pack("{s:[], s:b, s:b, s:o, s:I}", "Stages", "NoValue", 1, "RotationTest",
			       1, "CreatedDate", kjson_date(api_now_ms(c)), "Seq", seq);
	if (tv == NULL || json_object_set_new(versions, vid, tv) != 0)
		return K_E_INTERNAL;
	const char *cur = sm_stage_owner(s, "AWSCURRENT");
	json_t *cv = cur ? json_object_get(versions, cur) : NULL;
	if (cv == NULL || json_is_true(json_object_get(cv, "NoValue"))) {
		sm_stage_move(s, "AWSPENDING", vid);
		return sm_save(s, extra, n_extra);
	}
	struct kbuf val;
	kbuf_init(&val, SM_MAX_VALUE);
	bool binary = false, created = false;
	json_t *stages = json_pack("[s]", "AWSPENDING");
	k_status rc = stages ? sm_get_value(c, s, cur, &val, &binary) : K_E_INTERNAL;
	if (k_ok(rc))
		rc = sm_put_version_ops(c, s, vid, kbuf_slice(&val), binary, stages, extra, n_extra,
					&created);
	json_decref(stages);
	kbuf_release(&val); /* wiped */
	return rc;
}

/* A RotateSecret request, validated (rotate_read). */
struct rotate_req {
	const char *token, *lambda, *role;
	bool now;
	json_t *rules;
	char vid[80];
};

static K_MUST_CHECK k_status rotate_read(struct api_ctx *c, json_t *in, struct rotate_req *r)
{
	bool has_now;
	GUARD(api_string(c, in, "ClientRequestToken", false, 32, 64, &r->token));
	GUARD(api_string(c, in, "RotationLambdaARN", false, 0, 2048, &r->lambda));
	GUARD(api_string(c, in, "ExternalSecretRotationRoleArn", false, 20, 2048, &r->role));
	GUARD(api_bool(c, in, "RotateImmediately", &has_now, &r->now));
	if (!has_now)
		r->now = true;
	r->rules = json_object_get(in, "RotationRules");
	if (r->rules != NULL && !json_is_null(r->rules))
		GUARD(sm_validate_rules(c, r->rules));
	else
		r->rules = NULL;
	if (r->token != NULL)
		snprintf(r->vid, sizeof r->vid, "%s", r->token);
	else
		sm_uuid(r->vid);
	return K_OK;
}

/*
 * The rotation function: the request's, else the secret's. AWS refuses
 * at once a function it cannot invoke, and keeps the secret's
 * configuration: "AccessDeniedException: Secrets Manager cannot invoke the
 * specified Lambda function." kinko invokes only the functions registered
 * with --rotation-function or the configuration's rotation_functions.
 */
static K_MUST_CHECK k_status rotate_function(struct api_ctx *c, struct sm_secret *s,
					     const char *lambda, const char **fn)
{
	if (lambda != NULL && lambda[0] != 0)
		json_object_set_new(s->doc, "RotationLambdaARN", json_string(lambda));
	*fn = json_string_value(json_object_get(s->doc, "RotationLambdaARN"));
	if (*fn == NULL || (*fn)[0] == 0)
		return api_fail(c, K_E_SM_INVALID_REQUEST,
				"No Lambda rotation function ARN is associated with this secret.");
	if (config_function(*fn) != NULL)
		return K_OK;
	LOG_INFO("RotateSecret on %s: the rotation function %s is not registered "
		 "(--rotation-function or rotation_functions)",
		 sm_arn(s), *fn);
	return api_fail(
		c, K_E_ACCESS_DENIED,
		"Secrets Manager cannot invoke the specified Lambda function. Ensure that the "
		"function policy grants access to the principal secretsmanager.amazonaws.com.");
}

/*
 * "If you call RotateSecret while a previous rotation is still in
 * progress ... A previous rotation isn't complete. That rotation will be
 * reattempted." A version carrying AWSPENDING that is not AWSCURRENT is
 * an unfinished rotation (a rotation test's version is not).
 */
static K_MUST_CHECK k_status rotate_check_pending(struct api_ctx *c, struct sm_secret *s,
						  const char *vid, const char **pending)
{
	*pending = sm_stage_owner(s, "AWSPENDING");
	json_t *pv = *pending ? json_object_get(sm_versions(s), *pending) : NULL;
	if (*pending != NULL && strcmp(*pending, vid) != 0 &&
	    !sm_version_has_stage(pv, "AWSCURRENT") &&
	    !json_is_true(json_object_get(pv, "RotationTest")))
		return api_fail(
			c, K_E_SM_INVALID_REQUEST,
			"A previous rotation isn't complete. That rotation will be reattempted.");
	return K_OK;
}

/* The rules and the next date: RotationEnabled, and a due-index op in *op when one is scheduled. */
static K_MUST_CHECK k_status rotate_schedule(struct api_ctx *c, struct sm_secret *s,
					     const struct rotate_req *r, char *due, size_t due_len,
					     struct storage_op *op, size_t *n_ops)
{
	if (r->rules != NULL) {
		json_t *rules = json_deep_copy(r->rules);
		json_t *sched = json_object_get(rules, "ScheduleExpression");
		/* "rate(N days)" is also reported as AutomaticallyAfterDays. */
		const char *se = json_string_value(sched);
		if (se != NULL && strncmp(se, "rate(", 5) == 0 && strstr(se, "day") != NULL)
			json_object_set_new(rules, "AutomaticallyAfterDays",
					    json_integer(strtol(se + 5, NULL, 10)));
		json_object_set_new(s->doc, "RotationRules", rules);
	}
	json_object_set_new(s->doc, "RotationEnabled", json_true());
	int64_t base = kjson_date_seconds(json_object_get(s->doc, "LastRotatedDate"));
	if (r->now || base == 0)
		base = c->now;
	int64_t next = sm_next_rotation(json_object_get(s->doc, "RotationRules"), base);
	*n_ops = 0;
	if (next <= 0) {
		json_object_del(s->doc, "NextRotationDate");
		return K_OK;
	}
	json_object_set_new(s->doc, "NextRotationDate", json_integer(next));
	GUARD(sm_due_op(s, SM_TASK_ROTATE, next, due, due_len, op));
	*n_ops = 1;
	return K_OK;
}

/*
 * Secrets Manager reserves the new version with AWSPENDING before it
 * calls createSecret; the rotation function's PutSecretValue with this
 * ClientRequestToken fills it in. An unfinished rotation run again with
 * its own token keeps its version.
 */
static K_MUST_CHECK k_status rotate_reserve(struct api_ctx *c, struct sm_secret *s, const char *vid,
					    const char *pending)
{
	if (pending != NULL && strcmp(pending, vid) == 0)
		return K_OK;
	json_t *versions = sm_versions(s);
	json_t *v = json_object_get(versions, vid);
	if (v != NULL && !sm_version_has_stage(v, "AWSPENDING"))
		return api_fail(c, K_E_SM_EXISTS,
				"A version with the ClientRequestToken %s already exists.", vid);
	if (v == NULL) {
		json_int_t seq = json_integer_value(json_object_get(s->doc, "NextSeq")) + 1;
		json_object_set_new(s->doc, "NextSeq", json_integer(seq));
		v = json_pack("{s:[], s:b, s:o, s:I}", "Stages", "NoValue", 1, "CreatedDate",
			      kjson_date(api_now_ms(c)), "Seq", seq);
		json_object_set_new(versions, vid, v);
	}
	if (pending != NULL)
		sm_stage_remove(json_object_get(versions, pending), "AWSPENDING");
	sm_stage_add(v, "AWSPENDING");
	return K_OK;
}

/*
 * The secret's part of RotateSecret, in its write section: the function,
 * the schedule, and either a rotation now (AWSPENDING reserved) or the
 * test of RotateImmediately=false. The function's ARN goes to fn.
 */
static K_MUST_CHECK k_status rotate_configure(struct api_ctx *c, struct sm_secret *s,
					      const struct rotate_req *r, char *fn_out,
					      size_t fn_len)
{
	const char *fn, *pending;
	GUARD(sm_require_primary(c, s));
	GUARD(rotate_function(c, s, r->lambda, &fn));
	snprintf(fn_out, fn_len, "%s", fn);
	GUARD(rotate_check_pending(c, s, r->vid, &pending));
	char due[SCHEDULER_DUE_ID_MAX + 1];
	struct storage_op op;
	size_t n_ops = 0;
	GUARD(rotate_schedule(c, s, r, due, sizeof due, &op, &n_ops));
	if (!r->now) {
		/*
		 * "If you set RotateImmediately to false, Secrets Manager tests the
		 * rotation configuration by running the testSecret step of the
		 * Lambda rotation function. The test creates an AWSPENDING version
		 * of the secret and then removes it." (API_RotateSecret) The test
		 * version holds a copy of AWSCURRENT's value, so that testSecret
		 * (which reads AWSPENDING) tests the credentials in use; the
		 * configuration, the schedule and the copy are saved in one apply.
		 */
		return reserve_test_version(c, s, r->vid, n_ops ? &op : NULL, n_ops);
	}
	GUARD(rotate_reserve(c, s, r->vid, pending));
	json_object_set_new(s->doc, "KinkoRotationStatus",
			    json_pack("{s:s, s:s, s:I}", "VersionId", r->vid, "Status",
				      "InProgress", "Date", (json_int_t)c->now));
	return sm_save(s, &op, n_ops);
}

/*
 * RotateSecret (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html).
 * "RotateImmediately: Specifies whether to rotate the secret immediately
 * or wait until the next scheduled rotation window." The rotation itself
 * runs on its own thread (rotation.c); this call answers at once with the
 * version id the new value will have.
 */
k_status sm_op_rotate_secret(struct api_ctx *c, json_t *in, json_t *out)
{
	struct rotate_req r = {0};
	GUARD(rotate_read(c, in, &r));
	struct sm_secret s = {0};
	char name[520], fn[2100];
	sm_lock();
	k_status rc = sm_op_secret(c, &s); /* live: the row's state rule */
	if (k_ok(rc))
		rc = rotate_configure(c, &s, &r, fn, sizeof fn);
	if (k_ok(rc)) {
		snprintf(name, sizeof name, "%s", sm_name(&s));
		json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
		json_object_set_new(out, "Name", json_string(name));
		json_object_set_new(out, "VersionId", json_string(r.vid));
	}
	sm_unlock();
	sm_secret_release(&s);
	GUARD(rc);
	if (r.now)
		return sm_rotation_start(c, name, r.vid, fn);
	return sm_rotation_test_start(c, name, r.vid, fn);
}

/*
 * CancelRotateSecret (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CancelRotateSecret.html):
 * "Turns off automatic rotation, and if a rotation is currently in
 * progress, cancels the rotation. ... If you cancel a rotation in
 * progress, it can leave the VersionStage labels in an unexpected state.
 * You might need to remove the staging label AWSPENDING from the
 * partially created version."
 */
k_status sm_op_cancel_rotate_secret(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)in;
	struct sm_secret s = {0};
	k_status rc = K_OK;
	sm_lock();
	GUARD_GOTO(sm_op_secret(c, &s)); /* live: the row's state rule */
	json_object_set_new(s.doc, "RotationEnabled", json_false());
	json_object_del(s.doc, "NextRotationDate");
	json_t *st = json_object_get(s.doc, "KinkoRotationStatus");
	if (json_is_object(st) &&
	    strcmp(json_string_value(json_object_get(st, "Status")), "InProgress") == 0)
		json_object_set_new(st, "Status", json_string("Cancelled"));
	GUARD_GOTO(sm_save(&s, NULL, 0));
	json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
	json_object_set_new(out, "Name", json_string(sm_name(&s)));
	const char *pending = sm_stage_owner(&s, "AWSPENDING");
	if (pending != NULL)
		json_object_set_new(out, "VersionId", json_string(pending));
out:
	sm_unlock();
	sm_secret_release(&s);
	return rc;
}

/* Tags, shared validation with CreateSecret. */
static K_MUST_CHECK k_status tags_valid(struct api_ctx *c, json_t *tags)
{
	if (!json_is_array(tags))
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value null at 'tags' failed to "
				"satisfy constraint: Member must not be null");
	size_t i;
	json_t *t;
	json_array_foreach(tags, i, t)
	{
		const char *k = NULL, *v = NULL;
		if (!json_is_object(t))
			return api_fail(c, K_E_SERIALIZATION,
					"Unexpected value type in member 'Tags'");
		GUARD(api_string(c, t, "Key", true, 1, 128, &k));
		GUARD(api_string(c, t, "Value", false, 0, 256, &v));
		if (strncmp(k, "aws:", 4) == 0)
			return api_fail(c, K_E_SM_INVALID_PARAMETER,
					"Invalid tag key. Tag keys that start with 'aws:' are "
					"reserved for AWS use.");
	}
	return K_OK;
}

/*
 * TagResource (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_TagResource.html):
 * "If you use tags as part of your security strategy, then adding or
 * removing a tag can change permissions." At most 50 tags per secret; a
 * tag with an existing key replaces its value.
 */
k_status sm_op_tag_resource(struct api_ctx *c, json_t *in, json_t *out)
{
	json_t *tags = json_object_get(in, "Tags");
	GUARD(tags_valid(c, tags));
	struct sm_secret s = {0};
	k_status rc = K_OK;
	sm_lock();
	GUARD_GOTO(sm_op_secret(c, &s));
	GUARD_GOTO(sm_require_primary(c, &s));
	json_t *cur = json_object_get(s.doc, "Tags");
	if (!json_is_array(cur)) {
		cur = json_array();
		json_object_set_new(s.doc, "Tags", cur);
	}
	size_t i, j;
	json_t *t, *e;
	json_array_foreach(tags, i, t)
	{
		const char *k = json_string_value(json_object_get(t, "Key"));
		const char *v = json_string_value(json_object_get(t, "Value"));
		bool found = false;
		json_array_foreach(cur, j, e)
		{
			if (strcmp(json_string_value(json_object_get(e, "Key")), k) == 0) {
				json_object_set_new(e, "Value", json_string(v ? v : ""));
				found = true;
			}
		}
		if (!found)
			json_array_append_new(
				cur, json_pack("{s:s, s:s}", "Key", k, "Value", v ? v : ""));
	}
	json_object_del(s.doc, "TagsRemoved");
	if (json_array_size(cur) > 50) {
		rc = api_fail(c, K_E_SM_LIMIT_EXCEEDED,
			      "Number of tags exceeds the maximum of 50 per secret.");
		goto out;
	}
	GUARD_GOTO(sm_save(&s, NULL, 0));
	sm_unlock();
	rc = sm_sync_replicas(c, sm_name(&s));
	sm_secret_release(&s);
	return rc;
out:
	sm_unlock();
	sm_secret_release(&s);
	return rc;
}

/* UntagResource (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UntagResource.html). */
k_status sm_op_untag_resource(struct api_ctx *c, json_t *in, json_t *out)
{
	json_t *keys;
	GUARD(api_string_list(c, in, "TagKeys", 50, 1, 128, &keys));
	if (keys == NULL)
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value null at 'tagKeys' failed to "
				"satisfy constraint: Member must not be null");
	struct sm_secret s = {0};
	k_status rc = K_OK;
	sm_lock();
	GUARD_GOTO(sm_op_secret(c, &s));
	GUARD_GOTO(sm_require_primary(c, &s));
	json_t *cur = json_object_get(s.doc, "Tags");
	size_t i, before = json_array_size(cur);
	json_t *k;
	json_array_foreach(keys, i, k)
	{
		for (size_t j = json_array_size(cur); j > 0; j--) {
			const char *tk = json_string_value(
				json_object_get(json_array_get(cur, j - 1), "Key"));
			if (strcmp(tk, json_string_value(k)) == 0)
				json_array_remove(cur, j - 1);
		}
	}
	/* Once its last tag is removed, AWS shows the secret's Tags as []. */
	if (before > 0 && json_array_size(cur) == 0)
		json_object_set_new(s.doc, "TagsRemoved", json_true());
	GUARD_GOTO(sm_save(&s, NULL, 0));
	sm_unlock();
	rc = sm_sync_replicas(c, sm_name(&s));
	sm_secret_release(&s);
	return rc;
out:
	sm_unlock();
	sm_secret_release(&s);
	return rc;
}

/* PutResourcePolicy (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutResourcePolicy.html). */
k_status sm_op_put_resource_policy(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *policy;
	bool has_block, block, public;
	GUARD(api_string(c, in, "ResourcePolicy", true, 1, 20480, &policy));
	GUARD(api_bool(c, in, "BlockPublicPolicy", &has_block, &block));
	GUARD(sm_check_resource_policy(c, policy, &public));
	/*
	 * "BlockPublicPolicy: Specifies whether to block resource-based
	 * policies that allow broad access to the secret."
	 */
	if (block && public)
		return api_fail(c, K_E_SM_PUBLIC_POLICY,
				"BlockPublicPolicy parameter is set to true, and the resource "
				"policy did not prevent broad access to the secret.");
	struct sm_secret s = {0};
	k_status rc = K_OK;
	sm_lock();
	GUARD_GOTO(sm_op_secret(c, &s)); /* live: the row's state rule */
	json_object_set_new(s.doc, "ResourcePolicy", json_string(policy));
	GUARD_GOTO(sm_save(&s, NULL, 0));
	json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
	json_object_set_new(out, "Name", json_string(sm_name(&s)));
out:
	sm_unlock();
	sm_secret_release(&s);
	return rc;
}

/* GetResourcePolicy (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetResourcePolicy.html). */
k_status sm_op_get_resource_policy(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)in;
	struct sm_secret s;
	GUARD(sm_op_secret(c, &s));
	json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
	json_object_set_new(out, "Name", json_string(sm_name(&s)));
	json_t *p = json_object_get(s.doc, "ResourcePolicy");
	if (p != NULL)
		json_object_set(out, "ResourcePolicy", p);
	sm_secret_release(&s);
	return K_OK;
}

/* DeleteResourcePolicy (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteResourcePolicy.html). */
k_status sm_op_delete_resource_policy(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)in;
	struct sm_secret s = {0};
	k_status rc = K_OK;
	sm_lock();
	GUARD_GOTO(sm_op_secret(c, &s));
	json_object_del(s.doc, "ResourcePolicy");
	GUARD_GOTO(sm_save(&s, NULL, 0));
	json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
	json_object_set_new(out, "Name", json_string(sm_name(&s)));
out:
	sm_unlock();
	sm_secret_release(&s);
	return rc;
}

/*
 * ValidateResourcePolicy (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ValidateResourcePolicy.html):
 * syntax errors are MalformedPolicyDocumentException; a policy that
 * grants broad access fails the public-access check.
 */
k_status sm_op_validate_resource_policy(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *policy;
	bool public;
	/* A SecretId, when given, was resolved and authorized by the pipeline. */
	GUARD(api_string(c, in, "ResourcePolicy", true, 1, 20480, &policy));
	GUARD(sm_check_resource_policy(c, policy, &public));
	json_object_set_new(out, "PolicyValidationPassed", json_boolean(!public));
	json_t *errs = json_array();
	if (public)
		json_array_append_new(
			errs,
			json_pack("{s:s, s:s}", "CheckName", "BLOCK_PUBLIC_POLICY", "ErrorMessage",
				  "The resource policy allows broad access to the secret."));
	json_object_set_new(out, "ValidationErrors", errs);
	return K_OK;
}
