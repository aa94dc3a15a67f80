/*
 * ops_aliases.c — CreateAlias, UpdateAlias, DeleteAlias and ListAliases
 * (the alias cache that kms_resolve_key uses is alias_cache.c).
 *
 * An alias is a storage record (kind "alias", ns "ACCOUNT:REGION", id the
 * alias name "alias/...") holding AliasName, AliasArn, TargetKeyId,
 * CreationDate and LastUpdatedDate. Names are unique per account and
 * region because the store's (kind, ns, id) is.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "kms/alias_index.h"
#include "kms/kms.h"
#include "kms/store.h"
#include "core/hash.h"
#include "core/arn.h"
#include "core/banned.h"

static void alias_arn(const struct api_ctx *c, const char *name, char *out, size_t n)
{
	/* name is "alias/..." (the resource as it stands). */
	struct k_arn a = k_arn_of("kms", c->region, c->principal.account, K_ARN_OTHER, name);
	k_arn_format(&a, out, n);
}

/*
 * AliasName (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateAlias.html#KMS-CreateAlias-request-AliasName):
 * 1..256 characters matching ^[a-zA-Z0-9:/_-]+$; "The alias must begin
 * with alias/ followed by a name ... The alias name can contain only
 * alphanumeric characters, forward slashes (/), underscores (_), and
 * dashes (-). The alias name cannot begin with alias/aws/. The alias/aws/
 * prefix is reserved for AWS managed keys." (checked apart, below).
 */
static K_MUST_CHECK k_status check_alias_name(struct api_ctx *c, const char *name)
{
	for (const char *p = name; *p; p++) {
		char ch = *p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == ':' || ch == '/' || ch == '_' ||
			  ch == '-';
		if (!ok)
			return api_fail(c, K_E_VALIDATION,
					"1 validation error detected: Value '%s' at 'aliasName' "
					"failed to satisfy constraint: Member must satisfy regular "
					"expression pattern: ^[a-zA-Z0-9:/_-]+$",
					name);
	}
	if (strncmp(name, "alias/", 6) != 0)
		return api_fail(
			c, K_E_VALIDATION,
			"Alias must start with the prefix \"alias/\". Please see "
			"https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html");
	if (strchr(name, ':') != NULL || name[6] == 0)
		return api_fail(c, K_E_INVALID_ALIAS_NAME,
				"%s contains invalid characters for an alias", name);
	return K_OK;
}

bool kms_alias_reserved(const char *name)
{
	return strncmp(name, "alias/aws/", 10) == 0;
}

static K_MUST_CHECK k_status check_not_reserved(struct api_ctx *c, const char *name)
{
	if (kms_alias_reserved(name))
		return api_fail(c, K_E_NOT_AUTHORIZED,
				"Cannot create, update or delete alias with the reserved prefix "
				"'alias/aws/': %s",
				name);
	return K_OK;
}

static K_MUST_CHECK k_status dry_run(struct api_ctx *c, json_t *in)
{
	bool present, dry;
	GUARD(api_bool(c, in, "DryRun", &present, &dry));
	return dry ? K_E_DRY_RUN : K_OK;
}

/*
 * The target of an alias: a key id or key ARN (not an alias), a customer
 * managed key ("You cannot create an alias for an AWS managed key" — the
 * alias/aws/ names are AWS's), in a state the key-state table allows.
 */
static K_MUST_CHECK k_status resolve_target(struct api_ctx *c, const char *target_id,
					    struct kms_key **out)
{
	struct kms_key *k = NULL;
	GUARD(kms_resolve_key(c, target_id, false, &k));
	k_status rc = kms_check_key_state(c, k);
	if (k_ok(rc) && kms_key_is_aws_managed(k))
		rc = api_fail(c, K_E_NOT_AUTHORIZED,
			      "An alias cannot point to the AWS managed key %s.", k->arn);
	if (k_failed(rc)) {
		kms_key_unref(k);
		return rc;
	}
	*out = k;
	return K_OK;
}

/*
 * The aliases-per-key quota. "Aliases per KMS key: 50" — "Customer
 * created aliases" (https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html#aliases-per-key);
 * "If you have exceeded a resource limit, requests to create an
 * additional resource of that type generate an LimitExceededException
 * error message." AWS documents no message text for this quota.
 *
 * Each customer managed key with aliases has an alias index record (kind
 * KMS_ALIAS_INDEX_KIND, id the key id) listing the names of its aliases.
 * Every write that adds an alias to a key or takes one from it (Create-,
 * Update-, DeleteAlias) writes the alias record and the index in one
 * atomic apply, with the index's version (or "must not exist") as its
 * precondition. Two requests racing to give a key its 50th alias both
 * read an index of 49 names; one applies, the other's apply conflicts and
 * it starts over, now seeing 50. A key without an index record has no
 * alias once its namespace's indexes are complete (alias_index.c).
 */
#define KEY_ALIASES_MAX 50
#define ALIAS_WRITE_ATTEMPTS 32

static bool index_has(json_t *names, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v)
	{
		const char *s = json_string_value(v);
		if (s != NULL && strcmp(s, name) == 0)
			return true;
	}
	return false;
}

static void index_remove(json_t *names, const char *name)
{
	for (size_t i = json_array_size(names); i-- > 0;) {
		const char *s = json_string_value(json_array_get(names, i));
		if (s != NULL && strcmp(s, name) == 0)
			json_array_remove(names, i);
	}
}

/*
 * Adds an alias to a key's index: LimitExceededException when the key
 * already has KEY_ALIASES_MAX aliases (and not this one).
 */
static K_MUST_CHECK k_status index_add(struct api_ctx *c, const struct kms_key *k, json_t *names,
				       const char *name)
{
	if (index_has(names, name))
		return K_OK;
	if (json_array_size(names) >= KEY_ALIASES_MAX)
		return api_fail(c, K_E_LIMIT_EXCEEDED,
				"The request was rejected because the KMS key %s already has %d "
				"aliases, the maximum number of aliases per KMS key.",
				k->arn, KEY_ALIASES_MAX);
	ENSURE(json_array_append_new(names, json_string(name)) == 0, K_E_INTERNAL);
	return K_OK;
}

/* The PUT of a key's index; *text (freed by the caller with kjson_free) backs op->doc. */
static K_MUST_CHECK k_status index_put_op(const char *ns, const char *key_id, json_t *names,
					  int64_t version, char **text, struct storage_op *op)
{
	json_t *doc = json_pack("{s:s, s:O}", "KeyId", key_id, "Aliases", names);
	ENSURE(doc != NULL, K_E_INTERNAL);
	*text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	ENSURE(*text != NULL, K_E_INTERNAL);
	*op = (struct storage_op){.op = STORAGE_PUT,
				  .kind = KMS_ALIAS_INDEX_KIND,
				  .ns = ns,
				  .id = key_id,
				  .doc = kslice_cstr(*text),
				  .expect = version};
	return K_OK;
}

/* True when the alias record exists (K_OK), K_E_NOT_FOUND when not. */
static K_MUST_CHECK k_status alias_exists(const char *ns, const char *name)
{
	int64_t v = 0;
	return storage_get(kms_store(), "alias", ns, name, NULL, &v);
}

/*
 * CreateAlias (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateAlias.html).
 * The alias record ("must not exist") and the target's alias index (its
 * version) go in one apply; a conflict is either the name taken
 * (AlreadyExistsException) or a concurrent change of the index (retry).
 */
k_status kms_op_create_alias(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *name, *target_id;
	GUARD(api_string(c, in, "AliasName", true, 1, 256, &name));
	GUARD(api_string(c, in, "TargetKeyId", true, 1, 2048, &target_id));
	GUARD(check_alias_name(c, name));
	GUARD(check_not_reserved(c, name));
	struct kms_key *k = NULL;
	GUARD(resolve_target(c, target_id, &k));
	char arn[400];
	alias_arn(c, name, arn, sizeof arn);
	int64_t now_ms = api_now_ms(c);
	json_t *doc = json_pack("{s:s, s:s, s:s, s:o, s:o}", "AliasName", name, "AliasArn", arn,
				"TargetKeyId", k->id, "CreationDate", kjson_date(now_ms),
				"LastUpdatedDate", kjson_date(now_ms));
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_t *names = NULL;
	char *itext = NULL;
	k_status rc = K_OK;
	ENSURE_GOTO(text != NULL, K_E_INTERNAL);
	for (int attempt = 0;; attempt++) {
		ENSURE_GOTO(attempt < ALIAS_WRITE_ATTEMPTS, K_E_CONFLICT);
		json_decref(names);
		names = NULL;
		kjson_free(itext);
		itext = NULL;
		rc = alias_exists(c->ns, name);
		if (k_ok(rc)) {
			rc = api_fail(c, K_E_ALREADY_EXISTS,
				      "An alias with the name %s already exists", arn);
			goto out;
		}
		ENSURE_GOTO(k_is(rc, K_E_NOT_FOUND), rc);
		int64_t iver = 0;
		GUARD_GOTO(kms_alias_index_load(c->ns, k->id, &names, &iver));
		GUARD_GOTO(index_add(c, k, names, name));
		struct storage_op ops[2] = {
			{.op = STORAGE_PUT,
			 .kind = "alias",
			 .ns = c->ns,
			 .id = name,
			 .doc = kslice_cstr(text),
			 .expect = STORAGE_ABSENT},
		};
		GUARD_GOTO(index_put_op(c->ns, k->id, names, iver, &itext, &ops[1]));
		GUARD_GOTO(dry_run(c, in));
		rc = storage_apply(kms_store(), ops, 2);
		if (!k_is(rc, K_E_CONFLICT))
			break;
	}
	GUARD_GOTO(rc);
	(void)out;
out:
	kjson_free(text);
	kjson_free(itext);
	json_decref(names);
	json_decref(doc);
	kms_key_unref(k);
	return rc;
}

/*
 * One attempt of UpdateAlias's write: the key the alias points at now,
 * the two keys' alias indexes and their texts, and the storage operations
 * that write them with the alias.
 */
struct alias_move {
	struct kms_key *cur;
	json_t *new_names, *old_names;
	char *text, *new_itext, *old_itext;
	struct storage_op ops[3];
	size_t n;
};

static void alias_move_clear(struct alias_move *m)
{
	kms_key_unref(m->cur);
	json_decref(m->new_names);
	json_decref(m->old_names);
	kjson_free(m->text);
	kjson_free(m->new_itext);
	kjson_free(m->old_itext);
	memset(m, 0, sizeof *m);
}

/*
 * "The current and new KMS key must be the same type (both symmetric or
 * both asymmetric or both HMAC), and they must have the same key usage."
 */
static K_MUST_CHECK k_status check_same_kind(struct api_ctx *c, const struct kms_key *cur,
					     const struct kms_key *k)
{
	const char *a = cur->spec ? cur->spec : "", *b = k->spec ? k->spec : "";
	bool same_class =
		(strcmp(a, "SYMMETRIC_DEFAULT") == 0) == (strcmp(b, "SYMMETRIC_DEFAULT") == 0) &&
		(strncmp(a, "HMAC_", 5) == 0) == (strncmp(b, "HMAC_", 5) == 0);
	bool same_usage = cur->usage && k->usage && strcmp(cur->usage, k->usage) == 0;
	if (!same_class || !same_usage)
		return api_fail(
			c, K_E_VALIDATION,
			"%s and %s are not the same key type or do not have the same key usage.",
			cur->arn, k->arn);
	return K_OK;
}

/*
 * Prepares m (cleared) to move alias `name`, read as doc at version, to
 * key k: the alias document, and when the target changes the new key's
 * index (the quota) and the old key's, unless that key is gone.
 */
static K_MUST_CHECK k_status alias_move_prepare(struct api_ctx *c, const char *name, json_t *doc,
						int64_t version, struct kms_key *k,
						struct alias_move *m)
{
	const char *cur_id = json_string_value(json_object_get(doc, "TargetKeyId"));
	k_status rc = kms_key_get(c->ns, cur_id, &m->cur);
	ENSURE(k_ok(rc) || k_is(rc, K_E_NOT_FOUND), rc);
	if (m->cur != NULL)
		GUARD(check_same_kind(c, m->cur, k));
	m->n = 1;
	if (strcmp(cur_id, k->id) != 0) {
		int64_t iver = 0;
		GUARD(kms_alias_index_load(c->ns, k->id, &m->new_names, &iver));
		GUARD(index_add(c, k, m->new_names, name));
		GUARD(index_put_op(c->ns, k->id, m->new_names, iver, &m->new_itext,
				   &m->ops[m->n++]));
		if (m->cur != NULL) {
			GUARD(kms_alias_index_load(c->ns, m->cur->id, &m->old_names, &iver));
			index_remove(m->old_names, name);
			GUARD(index_put_op(c->ns, m->cur->id, m->old_names, iver, &m->old_itext,
					   &m->ops[m->n++]));
		}
	}
	json_object_set_new(doc, "TargetKeyId", json_string(k->id));
	json_object_set_new(doc, "LastUpdatedDate", kjson_date(api_now_ms(c)));
	m->text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	ENSURE(m->text != NULL, K_E_INTERNAL);
	m->ops[0] = (struct storage_op){.op = STORAGE_PUT,
					.kind = "alias",
					.ns = c->ns,
					.id = name,
					.doc = kslice_cstr(m->text),
					.expect = version};
	return K_OK;
}

/*
 * UpdateAlias (https://docs.aws.amazon.com/kms/latest/APIReference/API_UpdateAlias.html).
 * Moving the alias to another key writes the alias (its version), the new
 * key's index (the quota) and the old key's index in one apply, read
 * again and retried on a concurrent change.
 */
k_status kms_op_update_alias(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *name, *target_id;
	GUARD(api_string(c, in, "AliasName", true, 1, 256, &name));
	GUARD(api_string(c, in, "TargetKeyId", true, 1, 2048, &target_id));
	GUARD(check_alias_name(c, name));
	GUARD(check_not_reserved(c, name));
	char arn[K_ARN_BUF];
	alias_arn(c, name, arn, sizeof arn);
	json_t *doc = NULL;
	int64_t version = 0;
	k_status rc = kms_alias_read(c->ns, name, &doc, &version);
	if (k_is(rc, K_E_NOT_FOUND))
		return api_fail(c, K_E_NOT_FOUND, "Alias %s is not found.", arn);
	GUARD(rc);
	struct kms_key *k = NULL;
	struct alias_move m;
	memset(&m, 0, sizeof m);
	GUARD_GOTO(resolve_target(c, target_id, &k));
	for (int attempt = 0;; attempt++) {
		ENSURE_GOTO(attempt < ALIAS_WRITE_ATTEMPTS, K_E_CONFLICT);
		if (attempt > 0) {
			json_decref(doc);
			doc = NULL;
			rc = kms_alias_read(c->ns, name, &doc, &version);
			if (k_is(rc, K_E_NOT_FOUND)) {
				rc = api_fail(c, K_E_NOT_FOUND, "Alias %s is not found.", arn);
				goto out;
			}
			GUARD_GOTO(rc);
		}
		alias_move_clear(&m);
		GUARD_GOTO(alias_move_prepare(c, name, doc, version, k, &m));
		GUARD_GOTO(dry_run(c, in));
		rc = storage_apply(kms_store(), m.ops, m.n);
		if (!k_is(rc, K_E_CONFLICT))
			break;
	}
	GUARD_GOTO(rc);
	(void)out;
out:
	alias_move_clear(&m);
	json_decref(doc);
	kms_key_unref(k);
	return rc;
}

/*
 * DeleteAlias (https://docs.aws.amazon.com/kms/latest/APIReference/API_DeleteAlias.html).
 * The alias (its version) and its key's index go in one apply.
 */
k_status kms_op_delete_alias(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *name;
	GUARD(api_string(c, in, "AliasName", true, 1, 256, &name));
	GUARD(check_alias_name(c, name));
	GUARD(check_not_reserved(c, name));
	char arn[400];
	alias_arn(c, name, arn, sizeof arn);
	json_t *doc = NULL, *names = NULL;
	struct kms_key *cur = NULL;
	char *itext = NULL;
	k_status rc = K_OK;
	for (int attempt = 0;; attempt++) {
		ENSURE_GOTO(attempt < ALIAS_WRITE_ATTEMPTS, K_E_CONFLICT);
		json_decref(doc);
		json_decref(names);
		doc = names = NULL;
		kms_key_unref(cur);
		cur = NULL;
		kjson_free(itext);
		itext = NULL;
		int64_t version = 0;
		rc = kms_alias_read(c->ns, name, &doc, &version);
		if (k_is(rc, K_E_NOT_FOUND)) {
			rc = api_fail(c, K_E_NOT_FOUND, "Alias %s is not found.", arn);
			goto out;
		}
		GUARD_GOTO(rc);
		struct storage_op ops[2] = {
			{.op = STORAGE_DEL,
			 .kind = "alias",
			 .ns = c->ns,
			 .id = name,
			 .expect = version},
		};
		size_t n = 1;
		const char *cur_id = json_string_value(json_object_get(doc, "TargetKeyId"));
		rc = kms_key_get(c->ns, cur_id, &cur);
		ENSURE_GOTO(k_ok(rc) || k_is(rc, K_E_NOT_FOUND), rc);
		rc = K_OK;
		if (cur != NULL) {
			int64_t iver = 0;
			GUARD_GOTO(kms_alias_index_load(c->ns, cur->id, &names, &iver));
			index_remove(names, name);
			GUARD_GOTO(index_put_op(c->ns, cur->id, names, iver, &itext, &ops[n++]));
		}
		GUARD_GOTO(dry_run(c, in));
		rc = storage_apply(kms_store(), ops, n);
		if (k_is(rc, K_E_NOT_FOUND)) {
			rc = api_fail(c, K_E_NOT_FOUND, "Alias %s is not found.", arn);
			goto out;
		}
		if (!k_is(rc, K_E_CONFLICT))
			break;
	}
	GUARD_GOTO(rc);
	(void)out;
out:
	json_decref(doc);
	json_decref(names);
	kms_key_unref(cur);
	kjson_free(itext);
	return rc;
}

/*
 * AWS's predefined aliases (https://docs.aws.amazon.com/kms/latest/APIReference/API_ListAliases.html):
 * "The response might include several aliases that do not have a
 * TargetKeyId field. These are predefined aliases that AWS has created
 * but has not yet associated with a KMS key. Aliases that AWS creates in
 * your account, including predefined aliases, do not count against your
 * KMS aliases quota." These are the ones ListAliases shows in a new
 * account and Region, alias/aws/secretsmanager among them (managed.c
 * creates its key on first use). Sorted in byte order, as the store
 * lists ids, so the two lists merge into one ordered listing.
 */
static const char *const predefined_aliases[] = {
	"alias/aws/dynamodb",
	"alias/aws/ebs",
	"alias/aws/elasticfilesystem",
	"alias/aws/es",
	"alias/aws/glue",
	"alias/aws/kinesisvideo",
	"alias/aws/rds",
	"alias/aws/redshift",
	"alias/aws/s3",
	"alias/aws/secretsmanager",
	"alias/aws/ssm",
	"alias/aws/xray",
	NULL,
};

struct alias_list {
	const struct api_ctx *c;
	json_t *aliases;
	const char *key_filter; /* key id, or NULL */
	size_t limit;
	size_t pre; /* next predefined_aliases entry; with no key filter only */
	char last[ALIAS_NAME_MAX + 1];
	bool more;
};

/*
 * Emits the predefined aliases that sort before `bound` (all of them when
 * bound is NULL), without TargetKeyId. One equal to bound is a stored
 * record (the managed key exists): it is skipped here and listed from the
 * store, so no name appears twice.
 */
static K_MUST_CHECK k_status emit_predefined(struct alias_list *st, const char *bound)
{
	if (st->key_filter != NULL)
		return K_OK;
	for (const char *name; (name = predefined_aliases[st->pre]) != NULL;) {
		int cmp = bound != NULL ? strcmp(name, bound) : -1;
		if (cmp > 0)
			break;
		st->pre++;
		if (cmp == 0)
			break;
		if (json_array_size(st->aliases) == st->limit) {
			st->pre--;
			st->more = true;
			return K_E_LIMIT_EXCEEDED; /* stop: not an error */
		}
		char arn[400];
		alias_arn(st->c, name, arn, sizeof arn);
		json_t *e = json_pack("{s:s, s:s}", "AliasName", name, "AliasArn", arn);
		ENSURE(e != NULL && json_array_append_new(st->aliases, e) == 0, K_E_INTERNAL);
		snprintf(st->last, sizeof st->last, "%s", name);
	}
	return K_OK;
}

static K_MUST_CHECK k_status alias_list_cb(void *arg, const char *ns, const char *id,
					   struct kslice doc, int64_t version)
{
	(void)version;
	struct alias_list *st = arg;
	GUARD(emit_predefined(st, id));
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	const char *target = json_string_value(json_object_get(j, "TargetKeyId"));
	if (j == NULL ||
	    (st->key_filter != NULL && (target == NULL || strcmp(target, st->key_filter) != 0))) {
		json_decref(j);
		return K_OK;
	}
	if (json_array_size(st->aliases) == st->limit) {
		json_decref(j);
		st->more = true;
		return K_E_LIMIT_EXCEEDED; /* stop: not an error */
	}
	json_t *e = json_object();
	static const char *const members[] = {"AliasName",    "AliasArn",	 "TargetKeyId",
					      "CreationDate", "LastUpdatedDate", NULL};
	for (size_t i = 0; members[i] != NULL; i++) {
		json_t *v = json_object_get(j, members[i]);
		if (v != NULL)
			json_object_set(e, members[i], v);
	}
	json_array_append_new(st->aliases, e);
	snprintf(st->last, sizeof st->last, "%s", id);
	json_decref(j);
	return K_OK;
}

/*
 * ListAliases (https://docs.aws.amazon.com/kms/latest/APIReference/API_ListAliases.html):
 * Limit 1..100 (default 50); KeyId filters by target and takes a key id or
 * key ARN ("This parameter is optional. If you omit it, ListAliases
 * returns all aliases in the account and Region."); the marker is the
 * last alias name returned. Without KeyId the stored aliases and the
 * predefined ones are merged in name order, so a marker serves both.
 */
k_status kms_op_list_aliases(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *marker;
	int64_t limit = 50;
	bool has_limit;
	GUARD(api_string(c, in, "KeyId", false, 1, 2048, &key_id));
	GUARD(api_int(c, in, "Limit", false, 1, 100, &has_limit, &limit));
	GUARD(api_string(c, in, "Marker", false, 1, 1024, &marker));
	if (marker != NULL &&
	    (strncmp(marker, "alias/", 6) != 0 || strlen(marker) > ALIAS_NAME_MAX))
		return api_fail(c, K_E_INVALID_MARKER, "Invalid marker");
	struct kms_key *k = NULL;
	if (key_id != NULL)
		GUARD(kms_resolve_key(c, key_id, false, &k));
	struct alias_list st = {.c = c,
				.aliases = json_array(),
				.limit = (size_t)limit,
				.key_filter = k ? k->id : NULL};
	while (marker != NULL && predefined_aliases[st.pre] != NULL &&
	       strcmp(predefined_aliases[st.pre], marker) <= 0)
		st.pre++;
	k_status rc = K_OK;
	ENSURE_GOTO(st.aliases != NULL, K_E_INTERNAL);
	rc = storage_list(kms_store(), "alias", c->ns, NULL, marker, 0, alias_list_cb, &st);
	if (k_ok(rc))
		rc = emit_predefined(&st, NULL);
	if (k_is(rc, K_E_LIMIT_EXCEEDED) && st.more)
		rc = K_OK;
	GUARD_GOTO(rc);
	json_object_set_new(out, "Aliases", st.aliases);
	st.aliases = NULL;
	json_object_set_new(out, "Truncated", json_boolean(st.more));
	if (st.more)
		json_object_set_new(out, "NextMarker", json_string(st.last));
out:
	json_decref(st.aliases);
	kms_key_unref(k);
	return rc;
}
