/*
 * ops.c — the secret operations: CreateSecret, GetSecretValue,
 * BatchGetSecretValue, PutSecretValue, UpdateSecret (DescribeSecret:
 * describe.c; ListSecretVersionIds, UpdateSecretVersionStage:
 * ops_versions.c).
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_Operations.html
 *
 * Each handler reads like the API reference: validate the members, take
 * the secret the pipeline resolved and checked (sm_op_secret), act,
 * render. Mutating handlers hold the secret's write section from reading
 * it to saving it, so that two writers never interleave their label moves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "crypto/crypto.h"
#include "kms/kms.h"
#include "secrets/internal.h"
#include "core/arn.h"
#include "core/banned.h"

/*
 * "The secret name can contain ASCII letters, numbers, and the following
 * characters: /_+=.@-"
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html
 */
static K_MUST_CHECK k_status check_name(struct api_ctx *c, const char *name)
{
	for (const char *p = name; *p; p++) {
		char ch = *p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || strchr("/_+=.@-", ch) != NULL;
		if (!ok)
			return api_fail(
				c, K_E_VALIDATION,
				"Invalid name. Must be a valid name containing alphanumeric "
				"characters, or any of the following: -/_+=.@!");
	}
	return K_OK;
}

/* The value members: exactly one of SecretString and SecretBinary (64 KB each). */
static K_MUST_CHECK k_status read_value(struct api_ctx *c, json_t *in, bool required,
					struct kbuf *bin, const char **str, bool *has_value,
					bool *binary)
{
	bool has_bin = false;
	GUARD(api_string(c, in, "SecretString", false, 1, SM_MAX_VALUE, str));
	GUARD(api_blob(c, in, "SecretBinary", false, 1, SM_MAX_VALUE, bin, &has_bin));
	if (*str != NULL && has_bin)
		return api_fail(c, K_E_SM_INVALID_PARAMETER,
				"You can't specify both a binary secret value and a string secret "
				"value in the same secret.");
	*has_value = *str != NULL || has_bin;
	*binary = has_bin;
	if (required && !*has_value)
		return api_fail(c, K_E_SM_INVALID_PARAMETER,
				"You must provide either SecretString or SecretBinary.");
	return K_OK;
}

static struct kslice value_slice(const char *str, const struct kbuf *bin)
{
	return str ? kslice_cstr(str) : kbuf_slice(bin);
}

/* Tags: at most 50, Key 1..128, Value 0..256, "aws:" reserved. */
static K_MUST_CHECK k_status check_tags(struct api_ctx *c, json_t *tags)
{
	if (tags == NULL || json_is_null(tags))
		return K_OK;
	if (!json_is_array(tags))
		return api_fail(c, K_E_SERIALIZATION, "Unexpected value type for member 'Tags'");
	if (json_array_size(tags) > 50)
		return api_fail(c, K_E_SM_INVALID_PARAMETER,
				"Number of tags exceeds the maximum of 50 per secret.");
	size_t i;
	json_t *t;
	json_array_foreach(tags, i, t)
	{
		if (!json_is_object(t))
			return api_fail(c, K_E_SERIALIZATION,
					"Unexpected value type in member 'Tags'");
		const char *k = NULL, *v = NULL;
		GUARD(api_string(c, t, "Key", true, 1, 128, &k));
		GUARD(api_string(c, t, "Value", false, 0, 256, &v));
		if (strncmp(k, "aws:", 4) == 0)
			return api_fail(c, K_E_SM_INVALID_PARAMETER,
					"Invalid tag key. Tag keys that start with 'aws:' are "
					"reserved for AWS use.");
	}
	return K_OK;
}

/* Merges tags into the document (a tag with an existing key replaces it). */
static void merge_tags(json_t *doc, json_t *tags)
{
	json_t *cur = json_object_get(doc, "Tags");
	if (!json_is_array(cur)) {
		cur = json_array();
		json_object_set_new(doc, "Tags", cur);
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
}

static void new_uid(char out[33])
{
	uint8_t b[16];
	if (k_failed(crypto_random(b, sizeof b)))
		memset(b, 0, sizeof b);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* KmsKeyId must name a key of this account and region (checked at once). */
static K_MUST_CHECK k_status check_kms_key(struct api_ctx *c, const char *kid)
{
	if (kid == NULL || kid[0] == 0)
		return K_OK;
	struct kms_key *k = NULL;
	sm_via_kms(c, "kms:GenerateDataKey");
	k_status rc = kms_resolve_key(c, kid, true, &k);
	c->authz.action = NULL;
	kms_key_unref(k);
	if (k_is(rc, K_E_ACCESS_DENIED))
		return api_fail(c, K_E_ACCESS_DENIED, "Access to KMS is not allowed");
	if (k_is(rc, K_E_NOT_FOUND))
		return api_fail(c, K_E_SM_ENCRYPTION_FAILURE,
				"Secrets Manager can't encrypt the protected secret text using the "
				"provided KMS key. Key %s does not exist.",
				kid);
	return rc;
}

/* A CreateSecret request, validated (create_read). */
struct create_req {
	const char *name, *token, *desc, *kid, *str, *type;
	bool has_value, binary, force;
	struct kbuf bin;
	json_t *tags, *replicas;
	char vid[80];
	char arn[700];
};

/*
 * The members, as the API reference states them, then the secret's KMS
 * key, then the caller's secretsmanager:CreateSecret on the new secret's
 * ARN (its random suffix drawn here).
 */
static K_MUST_CHECK k_status create_read(struct api_ctx *c, json_t *in, struct create_req *r)
{
	bool has_force;
	GUARD(api_string(c, in, "Name", true, 1, 512, &r->name));
	GUARD(api_string(c, in, "ClientRequestToken", false, 32, 64, &r->token));
	GUARD(api_string(c, in, "Description", false, 0, 2048, &r->desc));
	GUARD(api_string(c, in, "KmsKeyId", false, 0, 2048, &r->kid));
	GUARD(api_string(c, in, "Type", false, 0, 256, &r->type));
	GUARD(read_value(c, in, false, &r->bin, &r->str, &r->has_value, &r->binary));
	GUARD(api_bool(c, in, "ForceOverwriteReplicaSecret", &has_force, &r->force));
	r->tags = json_object_get(in, "Tags");
	GUARD(check_tags(c, r->tags));
	GUARD(check_name(c, r->name));
	r->replicas = json_object_get(in, "AddReplicaRegions");
	if (r->replicas != NULL && !json_is_null(r->replicas) &&
	    (!json_is_array(r->replicas) || json_array_size(r->replicas) == 0))
		return api_fail(
			c, K_E_VALIDATION,
			"1 validation error detected: Value at 'addReplicaRegions' failed to "
			"satisfy constraint: Member must have length greater than or equal to 1");
	GUARD(check_kms_key(c, r->kid));
	char suffix[7], name_suffix[600];
	sm_random_suffix(suffix);
	snprintf(name_suffix, sizeof name_suffix, "%s-%s", r->name, suffix);
	struct k_arn secret_arn = k_arn_of("secretsmanager", c->region, c->principal.account,
					   K_ARN_SECRET, name_suffix);
	k_arn_format(&secret_arn, r->arn, sizeof r->arn);
	GUARD(sm_authorize_new(c, r->arn));
	if (r->token != NULL)
		snprintf(r->vid, sizeof r->vid, "%s", r->token);
	else
		sm_uuid(r->vid);
	return K_OK;
}

/*
 * The name is taken. A retry of the same request (same token, same value)
 * succeeds again; the token of a version with another value is "already
 * in use" (API_CreateSecret, ClientRequestToken); any other token meets a
 * name that exists, and a secret scheduled for deletion keeps its name.
 */
static K_MUST_CHECK k_status create_existing(struct api_ctx *c, const struct create_req *r,
					     const struct sm_secret *old, json_t *out)
{
	if (sm_deleted(old))
		return api_fail(c, K_E_SM_INVALID_REQUEST,
				"You can't create this secret because a secret with this name is "
				"already scheduled for deletion.");
	bool same = false;
	json_t *v = json_object_get(json_object_get(old->doc, "Versions"), r->vid);
	bool has_version =
		r->token != NULL && v != NULL && !json_is_true(json_object_get(v, "NoValue"));
	if (has_version && r->has_value) {
		struct kbuf cur;
		kbuf_init(&cur, SM_MAX_VALUE);
		bool cur_bin = false;
		struct kslice val = value_slice(r->str, &r->bin);
		same = k_ok(sm_get_value(c, old, r->vid, &cur, &cur_bin)) && cur_bin == r->binary &&
		       cur.len == val.len && crypto_memeq(cur.ptr, val.ptr, val.len);
		kbuf_release(&cur);
	}
	if (has_version && !same)
		return sm_token_in_use(c, old, r->vid);
	if (!same)
		return api_fail(c, K_E_SM_EXISTS,
				"The operation failed because the secret %s already exists.",
				r->name);
	json_object_set_new(out, "ARN", json_string(sm_arn(old)));
	json_object_set_new(out, "Name", json_string(r->name));
	json_object_set_new(out, "VersionId", json_string(r->vid));
	return K_OK;
}

/*
 * The new secret's document. No RotationEnabled until rotation is
 * configured ("If the secret has never been configured for rotation,
 * Secrets Manager returns null", API_DescribeSecret).
 */
static K_MUST_CHECK k_status create_doc(struct api_ctx *c, const struct create_req *r,
					struct sm_secret *s)
{
	char uid[33];
	new_uid(uid);
	snprintf(s->ns, sizeof s->ns, "%s", c->ns);
	s->version = STORAGE_ABSENT;
	int64_t now_ms = api_now_ms(c);
	s->doc = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "Name", r->name, "ARN", r->arn, "Uid",
			   uid, "CreatedDate", kjson_date(now_ms), "LastChangedDate",
			   kjson_date(now_ms), "Versions", json_object());
	ENSURE(s->doc != NULL, K_E_INTERNAL);
	if (r->desc != NULL)
		json_object_set_new(s->doc, "Description", json_string(r->desc));
	if (r->kid != NULL && r->kid[0] != 0)
		json_object_set_new(s->doc, "KmsKeyId", json_string(r->kid));
	if (r->type != NULL)
		json_object_set_new(s->doc, "Type", json_string(r->type));
	if (json_array_size(r->tags) > 0)
		merge_tags(s->doc, r->tags);
	return K_OK;
}

/* Saves the new secret, with its first version when the request holds a value. */
static K_MUST_CHECK k_status create_save(struct api_ctx *c, const struct create_req *r,
					 struct sm_secret *s)
{
	GUARD(create_doc(c, r, s));
	if (!r->has_value)
		return sm_save(s, NULL, 0);
	json_t *stages = json_pack("[s]", "AWSCURRENT");
	bool created = false;
	k_status rc = sm_put_version(c, s, r->vid, value_slice(r->str, &r->bin), r->binary, stages,
				     &created);
	json_decref(stages);
	return rc;
}

/*
 * In one write section: the name's current holder decides (create_existing),
 * or the new secret is saved. *made tells whether it was; a lost race to
 * the same name is ResourceExistsException.
 */
static K_MUST_CHECK k_status create_store(struct api_ctx *c, const struct create_req *r,
					  json_t *out, bool *made)
{
	struct sm_secret s = {0}, old = {0};
	*made = false;
	sm_lock();
	k_status rc = sm_load(c->ns, r->name, &old);
	if (k_ok(rc))
		rc = create_existing(c, r, &old, out);
	else if (k_is(rc, K_E_NOT_FOUND))
		rc = create_save(c, r, &s);
	bool fresh = old.doc == NULL && k_ok(rc);
	sm_unlock();
	sm_secret_release(&s);
	sm_secret_release(&old);
	if (k_is(rc, K_E_CONFLICT))
		return api_fail(c, K_E_SM_EXISTS,
				"The operation failed because the secret %s already exists.",
				r->name);
	*made = fresh;
	return rc;
}

/* AddReplicaRegions: ReplicateSecretToRegions on the new secret; its status joins the answer. */
static K_MUST_CHECK k_status create_replicas(struct api_ctx *c, const struct create_req *r,
					     json_t *out)
{
	json_t *req = json_pack("{s:O, s:b}", "AddReplicaRegions", r->replicas,
				"ForceOverwriteReplicaSecret", r->force);
	json_t *rout = json_object();
	k_status rc = req && rout ? sm_replicate_new(c, r->arn, req, rout) : K_E_INTERNAL;
	json_t *st = json_object_get(rout, "ReplicationStatus");
	if (k_ok(rc) && st != NULL)
		json_object_set(out, "ReplicationStatus", st);
	json_decref(req);
	json_decref(rout);
	return rc;
}

/* CreateSecret (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html). */
k_status sm_op_create_secret(struct api_ctx *c, json_t *in, json_t *out)
{
	struct create_req r = {0};
	kbuf_init(&r.bin, SM_MAX_VALUE);
	bool made = false;
	k_status rc = K_OK;
	GUARD_GOTO(create_read(c, in, &r));
	GUARD_GOTO(create_store(c, &r, out, &made));
	if (!made)
		goto out; /* an identical retry, answered by create_existing */
	json_object_set_new(out, "ARN", json_string(r.arn));
	json_object_set_new(out, "Name", json_string(r.name));
	if (r.has_value)
		json_object_set_new(out, "VersionId", json_string(r.vid));
	if (json_is_array(r.replicas))
		rc = create_replicas(c, &r, out);
out:
	kbuf_release(&r.bin);
	return rc;
}

/*
 * Picks the version GetSecretValue reads: "If you don't specify either a
 * VersionStage or VersionId, then Secrets Manager returns the AWSCURRENT
 * version." With both, they must name the same version.
 */
static K_MUST_CHECK k_status pick_version(struct api_ctx *c, const struct sm_secret *s,
					  const char *vid, const char *stage, const char **out)
{
	json_t *versions = json_object_get(s->doc, "Versions");
	if (vid != NULL) {
		json_t *v = json_object_get(versions, vid);
		if (v == NULL || json_is_true(json_object_get(v, "NoValue")) ||
		    (stage != NULL && !sm_version_has_stage(v, stage)))
			return api_fail(c, K_E_SM_NOT_FOUND,
					"Secrets Manager can't find the specified secret value for "
					"VersionId: %s",
					vid);
		*out = json_object_iter_key(json_object_iter_at(versions, vid));
		return K_OK;
	}
	if (stage == NULL)
		stage = "AWSCURRENT";
	const char *owner = sm_stage_owner(s, stage);
	if (owner == NULL ||
	    json_is_true(json_object_get(json_object_get(versions, owner), "NoValue")))
		return api_fail(c, K_E_SM_NOT_FOUND,
				"Secrets Manager can't find the specified secret value for staging "
				"label: %s",
				stage);
	*out = owner;
	return K_OK;
}

/*
 * LastAccessedDate: "the date that the secret was last accessed ... the
 * time is rounded down to the date". Written at most once a day.
 */
static void touch_accessed(struct api_ctx *c, const char *ns, const char *name, const char *vid)
{
	int64_t day = sm_day(c->now);
	struct sm_secret s;
	sm_lock();
	if (k_ok(sm_load(ns, name, &s))) {
		json_t *v = json_object_get(json_object_get(s.doc, "Versions"), vid);
		json_object_set_new(s.doc, "LastAccessedDate", json_integer(day));
		if (v != NULL)
			json_object_set_new(v, "LastAccessedDate", json_integer(day));
		/* Best effort: a lost race only delays the date by one read. */
		k_status rc = sm_save(&s, NULL, 0);
		(void)rc;
	}
	sm_secret_release(&s);
	sm_unlock();
}

static void render_value(json_t *out, const struct sm_secret *s, const char *vid,
			 const struct kbuf *val, bool binary)
{
	json_t *v = json_object_get(json_object_get(s->doc, "Versions"), vid);
	json_object_set_new(out, "ARN", json_string(sm_arn(s)));
	json_object_set_new(out, "Name", json_string(sm_name(s)));
	json_object_set_new(out, "VersionId", json_string(vid));
	if (binary) {
		if (k_failed(api_set_blob(out, "SecretBinary", val->ptr, val->len)))
			json_object_del(out, "SecretBinary");
	} else {
		json_object_set_new(out, "SecretString",
				    json_stringn((const char *)val->ptr, val->len));
	}
	json_t *st = json_object_get(v, "Stages");
	json_object_set_new(out, "VersionStages", st ? json_copy(st) : json_array());
	json_object_set(out, "CreatedDate", json_object_get(v, "CreatedDate"));
}

/*
 * Reads the value of a resolved, checked secret into `out` (shared by Get
 * and BatchGet), and releases the secret.
 */
static K_MUST_CHECK k_status read_secret_value(struct api_ctx *c, struct sm_secret *s,
					       const char *vid_in, const char *stage, json_t *out)
{
	struct kbuf val;
	kbuf_init(&val, SM_MAX_VALUE);
	bool binary = false;
	const char *vid = NULL;
	char vid_copy[80];
	k_status rc = K_OK;
	GUARD_GOTO(pick_version(c, s, vid_in, stage, &vid));
	GUARD_GOTO(sm_get_value(c, s, vid, &val, &binary));
	render_value(out, s, vid, &val, binary);
	snprintf(vid_copy, sizeof vid_copy, "%s", vid);
	if (json_integer_value(json_object_get(s->doc, "LastAccessedDate")) != sm_day(c->now))
		touch_accessed(c, s->ns, sm_name(s), vid_copy);
out:
	sm_secret_release(s);
	kbuf_release(&val);
	return rc;
}

/* GetSecretValue (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html). */
k_status sm_op_get_secret_value(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *vid, *stage;
	GUARD(api_string(c, in, "VersionId", false, 32, 64, &vid));
	GUARD(api_string(c, in, "VersionStage", false, 1, 256, &stage));
	struct sm_secret s;
	GUARD(sm_op_secret(c, &s)); /* resolved, authorized, live: checked by the pipeline */
	return read_secret_value(c, &s, vid, stage, out);
}

/*
 * One secret of BatchGetSecretValue: its value appended to values, or its
 * error to errors. Only a server-side failure is returned (the whole call
 * fails then).
 */
static K_MUST_CHECK k_status batch_one(struct api_ctx *c, const char *sid, json_t *values,
				       json_t *errors)
{
	json_t *v = json_object();
	/* Each secret also needs secretsmanager:GetSecretValue, and must not be scheduled for deletion. */
	struct sm_secret s;
	k_status rc =
		sm_resolve_secret(c, sid, "secretsmanager:GetSecretValue", API_STATE_MANAGE, &s);
	if (k_ok(rc))
		rc = read_secret_value(c, &s, NULL, NULL, v);
	if (k_ok(rc)) {
		json_array_append_new(values, v);
		return K_OK;
	}
	json_decref(v);
	if (k_status_http(rc) >= 500)
		return rc;
	json_array_append_new(
		errors, json_pack("{s:s, s:s, s:s}", "SecretId", sid, "ErrorCode",
				  k_status_name(api_service_error(c->service, rc)), "Message",
				  c->err_msg.len ? kbuf_cstr(&c->err_msg) : k_status_message(rc)));
	kbuf_reset(&c->err_msg);
	return K_OK;
}

/*
 * BatchGetSecretValue (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_BatchGetSecretValue.html):
 * "SecretIdList: The ARN or names of the secrets to retrieve. You must
 * include Filters or SecretIdList, but not both." A secret that cannot be
 * read is reported in Errors, not as a failure of the whole call.
 */
k_status sm_op_batch_get_secret_value(struct api_ctx *c, json_t *in, json_t *out)
{
	json_t *ids;
	int64_t max = 20;
	bool has_max;
	const char *next;
	GUARD(api_string_list(c, in, "SecretIdList", 20, 1, 2048, &ids));
	GUARD(api_int(c, in, "MaxResults", false, 1, 20, &has_max, &max));
	GUARD(api_string(c, in, "NextToken", false, 1, 4096, &next));
	json_t *filters = json_object_get(in, "Filters");
	bool has_filters = filters != NULL && !json_is_null(filters);
	if ((ids != NULL) == has_filters)
		return api_fail(
			c, K_E_SM_INVALID_PARAMETER,
			"Either 'SecretIdList' or 'Filters' must be provided, but not both.");
	if (ids != NULL && json_array_size(ids) == 0)
		return api_fail(
			c, K_E_VALIDATION,
			"1 validation error detected: Value '[]' at 'secretIdList' failed to "
			"satisfy constraint: Member must have length greater than or equal to 1");
	if (ids != NULL && has_max)
		return api_fail(c, K_E_SM_INVALID_PARAMETER,
				"MaxResults can only be used with Filters.");
	json_t *list = NULL;
	size_t start = 0;
	if (ids == NULL) {
		GUARD(sm_list_matching(c, filters, false, &list));
		if (next != NULL) {
			char *end = NULL;
			unsigned long v =
				strncmp(next, "kinko1:", 7) == 0 ? strtoul(next + 7, &end, 10) : 0;
			if (end == NULL || *end != 0 || v > json_array_size(list)) {
				json_decref(list);
				return api_fail(c, K_E_SM_INVALID_NEXT_TOKEN,
						"The NextToken value is invalid.");
			}
			start = v;
		}
	} else {
		list = json_incref(ids);
	}
	json_t *values = json_array(), *errors = json_array();
	size_t end = ids ? json_array_size(list) : start + (size_t)max;
	if (end > json_array_size(list))
		end = json_array_size(list);
	for (size_t i = start; i < end; i++) {
		const char *sid = json_string_value(json_array_get(list, i));
		k_status rc = batch_one(c, sid, values, errors);
		if (k_status_http(rc) >= 500) {
			json_decref(values);
			json_decref(errors);
			json_decref(list);
			return rc;
		}
	}
	json_object_set_new(out, "SecretValues", values);
	json_object_set_new(out, "Errors", errors);
	if (ids == NULL && end < json_array_size(list)) {
		char tok[40];
		snprintf(tok, sizeof tok, "kinko1:%zu", end);
		json_object_set_new(out, "NextToken", json_string(tok));
	}
	json_decref(list);
	return K_OK;
}

/* PutSecretValue (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html). */
k_status sm_op_put_secret_value(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *token, *str, *rot;
	json_t *stages;
	bool has_value, binary;
	struct kbuf bin;
	kbuf_init(&bin, SM_MAX_VALUE);
	struct sm_secret s = {0};
	char vid[80];
	bool locked = false, created = false;
	k_status rc = K_OK;
	GUARD_GOTO(api_string(c, in, "ClientRequestToken", false, 32, 64, &token));
	GUARD_GOTO(read_value(c, in, true, &bin, &str, &has_value, &binary));
	GUARD_GOTO(api_string_list(c, in, "VersionStages", SM_MAX_STAGES, 1, 256, &stages));
	GUARD_GOTO(api_string(c, in, "RotationToken", false, 36, 256, &rot));
	if (stages != NULL && json_array_size(stages) == 0) {
		rc = api_fail(
			c, K_E_VALIDATION,
			"1 validation error detected: Value '[]' at 'versionStages' failed to "
			"satisfy constraint: Member must have length greater than or equal to 1");
		goto out;
	}
	if (token != NULL)
		snprintf(vid, sizeof vid, "%s", token);
	else
		sm_uuid(vid);
	json_t *def = json_pack("[s]", "AWSCURRENT");
	sm_lock();
	locked = true;
	rc = sm_op_secret(c, &s); /* live: the row's state rule */
	if (k_ok(rc))
		rc = sm_require_primary(c, &s);
	/*
	 * "If this operation creates the first version for the secret, then
	 * Secrets Manager automatically attaches the staging label AWSCURRENT
	 * to it." (API_PutSecretValue), whatever VersionStages says.
	 */
	json_t *first = NULL;
	if (k_ok(rc) && stages != NULL && !sm_has_value(&s)) {
		first = json_deep_copy(stages);
		if (first == NULL || json_array_append_new(first, json_string("AWSCURRENT")) != 0)
			rc = K_E_INTERNAL;
	}
	if (k_ok(rc))
		rc = sm_put_version(c, &s, vid, value_slice(str, &bin), binary,
				    first    ? first
				    : stages ? stages
					     : def,
				    &created);
	json_decref(first);
	json_decref(def);
	GUARD_GOTO(rc);
	sm_unlock();
	locked = false;
	if (created)
		GUARD_GOTO(sm_sync_replicas(c, sm_name(&s)));
	json_t *v = json_object_get(json_object_get(s.doc, "Versions"), vid);
	json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
	json_object_set_new(out, "Name", json_string(sm_name(&s)));
	json_object_set_new(out, "VersionId", json_string(vid));
	json_object_set_new(out, "VersionStages", json_copy(json_object_get(v, "Stages")));
out:
	if (locked)
		sm_unlock();
	sm_secret_release(&s);
	kbuf_release(&bin);
	return rc;
}

/* UpdateSecret (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecret.html). */
k_status sm_op_update_secret(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *token, *desc, *kid, *str, *type;
	bool has_value, binary;
	struct kbuf bin;
	kbuf_init(&bin, SM_MAX_VALUE);
	struct sm_secret s = {0};
	struct sm_reencrypt re = {0};
	char vid[80];
	bool locked = false, created = false;
	k_status rc = K_OK;
	GUARD_GOTO(api_string(c, in, "ClientRequestToken", false, 32, 64, &token));
	GUARD_GOTO(api_string(c, in, "Description", false, 0, 2048, &desc));
	GUARD_GOTO(api_string(c, in, "KmsKeyId", false, 0, 2048, &kid));
	GUARD_GOTO(api_string(c, in, "Type", false, 0, 256, &type));
	GUARD_GOTO(read_value(c, in, false, &bin, &str, &has_value, &binary));
	GUARD_GOTO(check_kms_key(c, kid));
	if (token != NULL)
		snprintf(vid, sizeof vid, "%s", token);
	else
		sm_uuid(vid);
	sm_lock();
	locked = true;
	GUARD_GOTO(sm_op_secret(c, &s)); /* live: the row's state rule */
	GUARD_GOTO(sm_require_primary(c, &s));
	if (desc != NULL)
		json_object_set_new(s.doc, "Description", json_string(desc));
	if (type != NULL)
		json_object_set_new(s.doc, "Type", json_string(type));
	if (kid != NULL && kid[0] != 0)
		json_object_set_new(s.doc, "KmsKeyId", json_string(kid));
	else if (kid != NULL)
		json_object_del(s.doc, "KmsKeyId");
	json_object_set_new(s.doc, "LastChangedDate", kjson_date(api_now_ms(c)));
	/*
	 * A new KmsKeyId re-encrypts the AWSCURRENT, AWSPENDING and AWSPREVIOUS
	 * versions (record.c, sm_reencrypt), in the same apply as the rest.
	 */
	if (kid != NULL) {
		bool skipped = false;
		GUARD_GOTO(sm_reencrypt(c, &s, &re, &skipped));
		if (skipped)
			LOG_INFO("secret %s: the caller cannot decrypt its versions under the "
				 "previous KMS key; they are not re-encrypted",
				 sm_arn(&s));
	}
	/*
	 * "If you include SecretString or SecretBinary to create a new secret
	 * version, Secrets Manager automatically moves the staging label
	 * AWSCURRENT to the new version."
	 */
	if (has_value) {
		json_t *stages = json_pack("[s]", "AWSCURRENT");
		rc = sm_put_version_ops(c, &s, vid, value_slice(str, &bin), binary, stages, re.ops,
					re.n, &created);
		json_decref(stages);
		GUARD_GOTO(rc);
		/* An identical retry changes nothing else either. */
		if (!created)
			GUARD_GOTO(sm_save(&s, re.ops, re.n));
	} else {
		GUARD_GOTO(sm_save(&s, re.ops, re.n));
	}
	sm_unlock();
	locked = false;
	GUARD_GOTO(sm_sync_replicas(c, sm_name(&s)));
	json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
	json_object_set_new(out, "Name", json_string(sm_name(&s)));
	if (has_value)
		json_object_set_new(out, "VersionId", json_string(vid));
out:
	if (locked)
		sm_unlock();
	sm_reencrypt_release(&re);
	sm_secret_release(&s);
	kbuf_release(&bin);
	return rc;
}
