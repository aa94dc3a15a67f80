/*
 * ops_aliases.c — CreateAlias, UpdateAlias, DeleteAlias, ListAliases, and
 * the alias cache that kms_resolve_key uses.
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
#include "kms/kms.h"
#include "core/banned.h"

/*
 * The alias cache. Encrypt with an alias is a hot path, so resolution must
 * not read storage or take a global lock: the table is split into shards,
 * each with its own rwlock, like the key cache. A miss reads storage and
 * fills the entry. Writers (Create/Update/DeleteAlias, deletion of a key,
 * reset) update the entry after their storage write and bump the shard's
 * generation; a filler that read storage before a concurrent write sees
 * the generation moved and does not install its (possibly stale) answer.
 */
#define ALIAS_SHARDS 32
#define ALIAS_BUCKETS 64
#define ALIAS_NAME_MAX 256

struct alias_entry {
	struct alias_entry *next;
	char ns[64];
	char name[ALIAS_NAME_MAX + 1];
	char target[37];
};

struct alias_shard {
	pthread_rwlock_t lock;
	uint64_t gen;
	struct alias_entry *b[ALIAS_BUCKETS];
};

static struct alias_shard acache[ALIAS_SHARDS];
static pthread_once_t acache_once = PTHREAD_ONCE_INIT;

static void acache_init(void)
{
	for (size_t i = 0; i < ALIAS_SHARDS; i++)
		pthread_rwlock_init(&acache[i].lock, NULL);
}

static uint64_t alias_hash(const char *ns, const char *name)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = ns; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	h = (h ^ '|') * 1099511628211ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h;
}

static struct alias_shard *shard_of(const char *ns, const char *name, size_t *bucket)
{
	pthread_once(&acache_once, acache_init);
	uint64_t h = alias_hash(ns, name);
	*bucket = (size_t)((h / ALIAS_SHARDS) % ALIAS_BUCKETS);
	return &acache[h % ALIAS_SHARDS];
}

static struct alias_entry **find_slot(struct alias_shard *sh, size_t b, const char *ns,
				      const char *name)
{
	struct alias_entry **pp = &sh->b[b];
	while (*pp != NULL && !(strcmp((*pp)->name, name) == 0 && strcmp((*pp)->ns, ns) == 0))
		pp = &(*pp)->next;
	return pp;
}

/* Installs or removes an entry; the caller holds the shard's write lock. */
static void put_locked(struct alias_shard *sh, size_t b, const char *ns, const char *name,
		       const char *target)
{
	struct alias_entry **pp = find_slot(sh, b, ns, name);
	if (target == NULL) {
		if (*pp != NULL) {
			struct alias_entry *e = *pp;
			*pp = e->next;
			free(e);
		}
		return;
	}
	if (*pp == NULL) {
		if (strlen(ns) >= sizeof((*pp)->ns) || strlen(name) > ALIAS_NAME_MAX)
			return;
		struct alias_entry *e = calloc(1, sizeof *e);
		if (e == NULL)
			return;
		snprintf(e->ns, sizeof e->ns, "%s", ns);
		snprintf(e->name, sizeof e->name, "%s", name);
		e->next = sh->b[b];
		sh->b[b] = e;
		pp = &sh->b[b];
	}
	snprintf((*pp)->target, sizeof (*pp)->target, "%s", target);
}

void kms_alias_cache_set(const char *ns, const char *name, const char *target)
{
	size_t b;
	struct alias_shard *sh = shard_of(ns, name, &b);
	pthread_rwlock_wrlock(&sh->lock);
	sh->gen++;
	put_locked(sh, b, ns, name, target);
	pthread_rwlock_unlock(&sh->lock);
}

void kms_alias_cache_clear(void)
{
	pthread_once(&acache_once, acache_init);
	for (size_t s = 0; s < ALIAS_SHARDS; s++) {
		pthread_rwlock_wrlock(&acache[s].lock);
		acache[s].gen++;
		for (size_t b = 0; b < ALIAS_BUCKETS; b++) {
			struct alias_entry *e = acache[s].b[b];
			while (e != NULL) {
				struct alias_entry *next = e->next;
				free(e);
				e = next;
			}
			acache[s].b[b] = NULL;
		}
		pthread_rwlock_unlock(&acache[s].lock);
	}
}

/* Reads an alias record; *doc_out (optional) gets the parsed document. */
static k_status alias_read(const char *ns, const char *name, json_t **doc_out, int64_t *version)
{
	struct kbuf doc;
	kbuf_init(&doc, 64u << 10);
	k_status rc = storage_get(kms_storage(), "alias", ns, name, &doc, version);
	if (rc != K_OK) {
		kbuf_release(&doc);
		return rc;
	}
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	kbuf_release(&doc);
	ENSURE(j != NULL && json_string_value(json_object_get(j, "TargetKeyId")) != NULL,
	       (json_decref(j), K_E_INTERNAL));
	*doc_out = j;
	return K_OK;
}

k_status kms_alias_lookup(const char *ns, const char *name, char target[37])
{
	size_t b;
	struct alias_shard *sh = shard_of(ns, name, &b);
	pthread_rwlock_rdlock(&sh->lock);
	struct alias_entry *e = *find_slot(sh, b, ns, name);
	bool hit = e != NULL;
	if (hit)
		snprintf(target, 37, "%s", e->target);
	uint64_t gen = sh->gen;
	pthread_rwlock_unlock(&sh->lock);
	if (hit)
		return K_OK;

	json_t *j = NULL;
	GUARD(alias_read(ns, name, &j, NULL));
	snprintf(target, 37, "%s", json_string_value(json_object_get(j, "TargetKeyId")));
	json_decref(j);
	pthread_rwlock_wrlock(&sh->lock);
	if (sh->gen == gen && *find_slot(sh, b, ns, name) == NULL)
		put_locked(sh, b, ns, name, target);
	pthread_rwlock_unlock(&sh->lock);
	return K_OK;
}

static void alias_arn(const struct api_ctx *c, const char *name, char *out, size_t n)
{
	snprintf(out, n, "arn:aws:kms:%s:%s:%s", c->region, c->principal.account, name);
}

/*
 * AliasName (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateAlias.html#KMS-CreateAlias-request-AliasName):
 * 1..256 characters matching ^[a-zA-Z0-9:/_-]+$; "The alias must begin
 * with alias/ followed by a name ... The alias name can contain only
 * alphanumeric characters, forward slashes (/), underscores (_), and
 * dashes (-). The alias name cannot begin with alias/aws/. The alias/aws/
 * prefix is reserved for AWS managed keys." (checked apart, below).
 */
static k_status check_alias_name(struct api_ctx *c, const char *name)
{
	for (const char *p = name; *p; p++) {
		char ch = *p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == ':' || ch == '/' || ch == '_' || ch == '-';
		if (!ok)
			return api_fail(c, K_E_VALIDATION,
					"1 validation error detected: Value '%s' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
					name);
	}
	if (strncmp(name, "alias/", 6) != 0)
		return api_fail(c, K_E_VALIDATION,
				"Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html");
	if (strchr(name, ':') != NULL || name[6] == 0)
		return api_fail(c, K_E_INVALID_ALIAS_NAME,
				"%s contains invalid characters for an alias", name);
	return K_OK;
}

/* "The alias/aws/ prefix is reserved for AWS managed keys." */
static k_status check_not_reserved(struct api_ctx *c, const char *name)
{
	if (strncmp(name, "alias/aws/", 10) == 0)
		return api_fail(c, K_E_NOT_AUTHORIZED,
				"Cannot create, update or delete alias with the reserved prefix 'alias/aws/': %s",
				name);
	return K_OK;
}

static k_status dry_run(struct api_ctx *c, json_t *in)
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
static k_status resolve_target(struct api_ctx *c, const char *target_id, struct kms_key **out)
{
	struct kms_key *k = NULL;
	GUARD(kms_resolve_key(c, target_id, false, &k));
	k_status rc = kms_check_key_state(c, k);
	if (rc == K_OK && kms_key_is_aws_managed(k))
		rc = api_fail(c, K_E_NOT_AUTHORIZED,
			      "An alias cannot point to the AWS managed key %s.", k->arn);
	if (rc != K_OK) {
		kms_key_unref(k);
		return rc;
	}
	*out = k;
	return K_OK;
}

/* CreateAlias (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateAlias.html). */
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
	json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:I}", "AliasName", name, "AliasArn", arn,
				"TargetKeyId", k->id, "CreationDate", (json_int_t)c->now,
				"LastUpdatedDate", (json_int_t)c->now);
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	k_status rc = K_OK;
	ENSURE_GOTO(text != NULL, K_E_INTERNAL);
	GUARD_GOTO(dry_run(c, in));
	struct storage_op op = {.op = STORAGE_PUT, .kind = "alias", .ns = c->ns, .id = name,
				.doc = kslice_cstr(text), .expect = STORAGE_ABSENT};
	rc = storage_apply(kms_storage(), &op, 1);
	if (rc == K_E_CONFLICT) {
		rc = api_fail(c, K_E_ALREADY_EXISTS, "An alias with the name %s already exists", arn);
		goto out;
	}
	GUARD_GOTO(rc);
	kms_alias_cache_set(c->ns, name, k->id);
	(void)out;
out:
	kjson_free(text);
	json_decref(doc);
	kms_key_unref(k);
	return rc;
}

/*
 * UpdateAlias (https://docs.aws.amazon.com/kms/latest/APIReference/API_UpdateAlias.html):
 * "The current and new KMS key must be the same type (both symmetric or
 * both asymmetric or both HMAC), and they must have the same key usage."
 */
k_status kms_op_update_alias(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *name, *target_id;
	GUARD(api_string(c, in, "AliasName", true, 1, 256, &name));
	GUARD(api_string(c, in, "TargetKeyId", true, 1, 2048, &target_id));
	GUARD(check_alias_name(c, name));
	GUARD(check_not_reserved(c, name));
	char arn[400];
	alias_arn(c, name, arn, sizeof arn);
	json_t *doc = NULL;
	int64_t version = 0;
	k_status rc = alias_read(c->ns, name, &doc, &version);
	if (rc == K_E_NOT_FOUND)
		return api_fail(c, K_E_NOT_FOUND, "Alias %s is not found.", arn);
	GUARD(rc);
	struct kms_key *k = NULL, *cur = NULL;
	char *text = NULL;
	GUARD_GOTO(resolve_target(c, target_id, &k));
	const char *cur_id = json_string_value(json_object_get(doc, "TargetKeyId"));
	if (kms_key_get(c->ns, cur_id, &cur) == K_OK) {
		const char *a = cur->spec ? cur->spec : "", *b = k->spec ? k->spec : "";
		bool same_class = (strcmp(a, "SYMMETRIC_DEFAULT") == 0) == (strcmp(b, "SYMMETRIC_DEFAULT") == 0) &&
				  (strncmp(a, "HMAC_", 5) == 0) == (strncmp(b, "HMAC_", 5) == 0);
		bool same_usage = cur->usage && k->usage && strcmp(cur->usage, k->usage) == 0;
		if (!same_class || !same_usage) {
			rc = api_fail(c, K_E_VALIDATION,
				      "%s and %s are not the same key type or do not have the same key usage.",
				      cur->arn, k->arn);
			goto out;
		}
	}
	json_object_set_new(doc, "TargetKeyId", json_string(k->id));
	json_object_set_new(doc, "LastUpdatedDate", json_integer(c->now));
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	ENSURE_GOTO(text != NULL, K_E_INTERNAL);
	GUARD_GOTO(dry_run(c, in));
	struct storage_op op = {.op = STORAGE_PUT, .kind = "alias", .ns = c->ns, .id = name,
				.doc = kslice_cstr(text), .expect = version};
	GUARD_GOTO(storage_apply(kms_storage(), &op, 1));
	kms_alias_cache_set(c->ns, name, k->id);
	(void)out;
out:
	kjson_free(text);
	json_decref(doc);
	kms_key_unref(k);
	kms_key_unref(cur);
	return rc;
}

/* DeleteAlias (https://docs.aws.amazon.com/kms/latest/APIReference/API_DeleteAlias.html). */
k_status kms_op_delete_alias(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *name;
	GUARD(api_string(c, in, "AliasName", true, 1, 256, &name));
	GUARD(check_alias_name(c, name));
	GUARD(check_not_reserved(c, name));
	char arn[400];
	alias_arn(c, name, arn, sizeof arn);
	json_t *doc = NULL;
	int64_t version = 0;
	k_status rc = alias_read(c->ns, name, &doc, &version);
	if (rc == K_E_NOT_FOUND)
		return api_fail(c, K_E_NOT_FOUND, "Alias %s is not found.", arn);
	GUARD(rc);
	json_decref(doc);
	GUARD(dry_run(c, in));
	struct storage_op op = {.op = STORAGE_DEL, .kind = "alias", .ns = c->ns, .id = name,
				.expect = version};
	rc = storage_apply(kms_storage(), &op, 1);
	if (rc == K_E_NOT_FOUND)
		return api_fail(c, K_E_NOT_FOUND, "Alias %s is not found.", arn);
	GUARD(rc);
	kms_alias_cache_set(c->ns, name, NULL);
	(void)out;
	return K_OK;
}

struct alias_list {
	json_t *aliases;
	const char *key_filter; /* key id, or NULL */
	size_t limit;
	char last[ALIAS_NAME_MAX + 1];
	bool more;
};

static k_status alias_list_cb(void *arg, const char *id, struct kslice doc, int64_t version)
{
	(void)version;
	struct alias_list *st = arg;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	const char *target = json_string_value(json_object_get(j, "TargetKeyId"));
	if (j == NULL || (st->key_filter != NULL && (target == NULL || strcmp(target, st->key_filter) != 0))) {
		json_decref(j);
		return K_OK;
	}
	if (json_array_size(st->aliases) == st->limit) {
		json_decref(j);
		st->more = true;
		return K_E_LIMIT_EXCEEDED; /* stop: not an error */
	}
	json_t *e = json_object();
	static const char *const members[] = {"AliasName", "AliasArn", "TargetKeyId",
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
 * last alias name returned.
 */
k_status kms_op_list_aliases(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *marker;
	int64_t limit = 50;
	bool has_limit;
	GUARD(api_string(c, in, "KeyId", false, 1, 2048, &key_id));
	GUARD(api_int(c, in, "Limit", false, 1, 100, &has_limit, &limit));
	GUARD(api_string(c, in, "Marker", false, 1, 1024, &marker));
	if (marker != NULL && (strncmp(marker, "alias/", 6) != 0 || strlen(marker) > ALIAS_NAME_MAX))
		return api_fail(c, K_E_INVALID_MARKER, "Invalid marker");
	struct kms_key *k = NULL;
	if (key_id != NULL)
		GUARD(kms_resolve_key(c, key_id, false, &k));
	struct alias_list st = {.aliases = json_array(), .limit = (size_t)limit,
				.key_filter = k ? k->id : NULL};
	k_status rc = K_OK;
	ENSURE_GOTO(st.aliases != NULL, K_E_INTERNAL);
	rc = storage_list(kms_storage(), "alias", c->ns, NULL, marker, 0, alias_list_cb, &st);
	if (rc == K_E_LIMIT_EXCEEDED)
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
