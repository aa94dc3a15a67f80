/*
 * record.c — secret documents, lookup by name or ARN, versions and staging
 * labels (the envelope encryption of version values: record_value.c; see
 * secrets.h).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/json.h"
#include "crypto/crypto.h"
#include "secrets/internal.h"
#include "crypto/uuid.h"
#include "core/hash.h"
#include "core/arn.h"
#include "core/banned.h"

static struct storage *store;

struct storage *sm_store(void)
{
	return store;
}

k_status sm_set_store(struct storage *st)
{
	ENSURE(st != NULL, K_E_VALIDATION);
	store = st;
	return K_OK;
}

/*
 * The write sections of internal.h. A one-secret section holds `sections`
 * shared and at most one stripe; an all-secrets section holds `sections`
 * exclusively (writer-preferring, so a replication call is not starved by
 * a stream of single writes) and no stripe. Two secrets whose hashes meet
 * share a stripe and simply take turns.
 */
#define SM_LOCK_STRIPES 64

enum sm_section {
	SM_SECTION_NONE,
	SM_SECTION_ONE,
	SM_SECTION_ALL
};

static pthread_rwlock_t sections;
static pthread_mutex_t stripes[SM_LOCK_STRIPES];
static pthread_once_t locks_once = PTHREAD_ONCE_INIT;
static _Thread_local struct {
	enum sm_section mode;
	int stripe; /* the stripe held, -1 for none */
} section = {SM_SECTION_NONE, -1};

static void locks_init(void)
{
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&sections, &attr);
	pthread_rwlockattr_destroy(&attr);
	for (size_t i = 0; i < SM_LOCK_STRIPES; i++)
		pthread_mutex_init(&stripes[i], NULL);
}

static int stripe_of(const char *ns, const char *name)
{
	return (int)(khash_pair(ns, name) % SM_LOCK_STRIPES);
}

void sm_lock(void)
{
	pthread_once(&locks_once, locks_init);
	pthread_rwlock_rdlock(&sections);
	section.mode = SM_SECTION_ONE;
	section.stripe = -1;
}

void sm_lock_all(void)
{
	pthread_once(&locks_once, locks_init);
	pthread_rwlock_wrlock(&sections);
	section.mode = SM_SECTION_ALL;
	section.stripe = -1;
}

void sm_unlock(void)
{
	if (section.stripe >= 0)
		pthread_mutex_unlock(&stripes[section.stripe]);
	section.stripe = -1;
	section.mode = SM_SECTION_NONE;
	pthread_rwlock_unlock(&sections);
}

bool sm_in_section(void)
{
	return section.mode != SM_SECTION_NONE;
}

/* In a one-secret section: lock (ns, name)'s stripe before it is read. */
static void section_take(const char *ns, const char *name)
{
	if (section.mode != SM_SECTION_ONE)
		return;
	int i = stripe_of(ns, name);
	if (section.stripe == i)
		return;
	if (section.stripe >= 0)
		pthread_mutex_unlock(&stripes[section.stripe]);
	pthread_mutex_lock(&stripes[i]);
	section.stripe = i;
}

void sm_random_suffix(char out[7])
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	uint8_t b[6];
	if (k_failed(crypto_random(b, sizeof b)))
		memset(b, 0, sizeof b);
	for (int i = 0; i < 6; i++)
		out[i] = al[b[i] % 62];
	out[6] = 0;
}

void sm_uuid(char out[37])
{
	crypto_uuid_random(out);
}

int64_t sm_day(int64_t t)
{
	return t - (t % SM_DAY);
}

int sm_date_cmp(const json_t *a, const json_t *b)
{
	double x = json_is_number(a) ? json_number_value(a) : -1.0;
	double y = json_is_number(b) ? json_number_value(b) : -1.0;
	return (x > y) - (x < y);
}

void sm_secret_release(struct sm_secret *s)
{
	json_decref(s->doc);
	s->doc = NULL;
}

k_status sm_load(const char *ns, const char *name, struct sm_secret *out)
{
	memset(out, 0, sizeof *out);
	if (name[0] == 0 || strlen(name) > 512)
		return K_E_NOT_FOUND;
	section_take(ns, name);
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	k_status rc = section.mode == SM_SECTION_NONE
			      ? sm_cache_get("secret", ns, name, &doc, &out->version)
			      : storage_get(sm_store(), "secret", ns, name, &doc, &out->version);
	if (k_ok(rc)) {
		out->doc = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
		if (out->doc == NULL)
			rc = K_E_INTERNAL;
	}
	kbuf_release(&doc);
	snprintf(out->ns, sizeof out->ns, "%s", ns);
	return rc;
}

static K_MUST_CHECK k_status not_found(struct api_ctx *c)
{
	return api_fail(c, K_E_SM_NOT_FOUND, "Secrets Manager can't find the specified secret.");
}

/*
 * SecretId: "The ARN or name of the secret ... For an ARN, we recommend
 * that you specify a complete ARN rather than a partial ARN."
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
 * A complete ARN ends in the name, a hyphen and six random characters; a
 * partial ARN ends in the name.
 */
static K_MUST_CHECK k_status lookup(struct api_ctx *c, const char *secret_id, struct sm_secret *out)
{
	memset(out, 0, sizeof *out);
	if (strncmp(secret_id, "arn:", 4) != 0) {
		k_status rc = sm_load(c->ns, secret_id, out);
		if (k_is(rc, K_E_NOT_FOUND))
			return not_found(c);
		return rc;
	}
	/* arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[-SUFFIX], SUFFIX = 6 random characters */
	struct k_arn a;
	if (!k_arn_parse_cstr(secret_id, &a) || !kslice_eq_cstr(a.partition, "aws") ||
	    !k_arn_is(&a, "secretsmanager", K_ARN_SECRET) || !kslice_eq_cstr(a.region, c->region) ||
	    a.account.len != K_ARN_ACCOUNT_LEN)
		return not_found(c);
	char account[13], ns[64];
	snprintf(account, sizeof account, "%.12s", (const char *)a.account.ptr);
	bool other = strcmp(account, c->principal.account) != 0;
	snprintf(ns, sizeof ns, "%s:%s", account, c->region);
	const char *rest = (const char *)a.id.ptr; /* runs to the end of secret_id */
	size_t rl = a.id.len;
	/* A complete ARN: NAME-SUFFIX (6 random characters). */
	const size_t sl = K_ARN_SECRET_SUFFIX_LEN + 1;
	if (rl > sl && rest[rl - sl] == '-') {
		char name[513];
		if (rl - sl < sizeof name) {
			snprintf(name, sizeof name, "%.*s", (int)(rl - sl), rest);
			k_status rc = sm_load(ns, name, out);
			if (k_ok(rc) && strcmp(sm_arn(out), secret_id) == 0)
				return K_OK;
			sm_secret_release(out);
			if (k_failed(rc) && !k_is(rc, K_E_NOT_FOUND))
				return rc;
		}
	}
	/*
	 * A partial ARN: the name itself. Another account's secret must be
	 * named by its complete ARN: "you must use the full ARN" for
	 * cross-account access
	 * (https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples_cross.html).
	 */
	if (other)
		return not_found(c);
	k_status rc = sm_load(ns, rest, out);
	if (k_is(rc, K_E_NOT_FOUND))
		return not_found(c);
	return rc;
}

/*
 * The state rule of a secret row (secrets/service.c): API_STATE_MANAGE
 * refuses a secret scheduled for deletion with InvalidRequestException
 * ("You can't perform this operation on the secret because it was marked
 * for deletion."), API_STATE_ANY takes it in every state. A secret row
 * has no other rule (api_check_operation keeps key rules off them).
 */
static K_MUST_CHECK k_status check_state(struct api_ctx *c, enum api_state_rule rule,
					 const struct sm_secret *s)
{
	switch (rule) {
	case API_STATE_ANY:
		return K_OK;
	case API_STATE_MANAGE:
		return sm_require_live(c, s);
	default:
		LOG_ERROR("secret operation %s has the state rule %s, which secrets do not have",
			  c->op ? c->op->name : "-", api_state_rule_name(rule));
		return api_fail(c, K_E_INTERNAL, "The request was not authorized.");
	}
}

/* Authorization with the current action, then the state rule; s is released on failure. */
static K_MUST_CHECK k_status check_found(struct api_ctx *c, enum api_state_rule rule,
					 struct sm_secret *s)
{
	k_status rc = sm_authorize_secret(c, s);
	if (k_ok(rc))
		rc = check_state(c, rule, s);
	if (k_failed(rc))
		sm_secret_release(s);
	return rc;
}

k_status sm_resolve_secret(struct api_ctx *c, const char *secret_id, const char *action,
			   enum api_state_rule rule, struct sm_secret *out)
{
	GUARD(lookup(c, secret_id, out));
	const char *saved = c->authz.action;
	if (action != NULL)
		c->authz.action = action;
	k_status rc = check_found(c, rule, out);
	c->authz.action = saved;
	return rc;
}

/*
 * The row's secret, as the pipeline left it. In a write section the
 * secret is read again under the section's lock, so that the handler
 * changes the stored document it locked; if it changed since the
 * pipeline checked it, it is checked again (authorization and state
 * rule) before the handler sees it.
 */
k_status sm_op_secret(struct api_ctx *c, struct sm_secret *out)
{
	memset(out, 0, sizeof *out);
	const struct sm_secret *res = c->resource;
	if (res == NULL || res->doc == NULL || c->op == NULL || c->op->member == NULL) {
		LOG_ERROR("operation %s asked for a secret the pipeline did not resolve",
			  c->op ? c->op->name : "-");
		return api_fail(c, K_E_INTERNAL, "The request was not authorized.");
	}
	if (section.mode == SM_SECTION_NONE) {
		out->doc = json_deep_copy(res->doc);
		out->version = res->version;
		snprintf(out->ns, sizeof out->ns, "%s", res->ns);
		return out->doc != NULL ? K_OK : K_E_INTERNAL;
	}
	k_status rc = sm_load(res->ns, sm_name(res), out);
	if (k_is(rc, K_E_NOT_FOUND)) {
		sm_secret_release(out);
		return not_found(c);
	}
	if (k_failed(rc)) {
		sm_secret_release(out);
		return rc;
	}
	if (out->version == res->version && strcmp(sm_arn(out), sm_arn(res)) == 0)
		return K_OK;
	return check_found(c, c->op->state, out);
}

k_status sm_resolve_row(struct api_ctx *c, const char *secret_id)
{
	struct sm_secret *s = calloc(1, sizeof *s);
	ENSURE(s != NULL, K_E_INTERNAL);
	k_status rc = sm_resolve_secret(c, secret_id, NULL, c->op->state, s);
	if (k_failed(rc)) {
		free(s);
		return rc;
	}
	c->resource = s;
	return K_OK;
}

void sm_release_resource(struct api_ctx *c)
{
	struct sm_secret *s = c->resource;
	if (s == NULL)
		return;
	sm_secret_release(s);
	free(s);
	c->resource = NULL;
}

k_status sm_save(struct sm_secret *s, const struct storage_op *extra, size_t n_extra)
{
	char *text = json_dumps(s->doc, JSON_COMPACT | JSON_SORT_KEYS);
	ENSURE(text != NULL, K_E_INTERNAL);
	struct storage_op *ops = calloc(n_extra + 1, sizeof *ops);
	if (ops == NULL) {
		kjson_free(text);
		return K_E_INTERNAL;
	}
	ops[0] = (struct storage_op){.op = STORAGE_PUT,
				     .kind = "secret",
				     .ns = s->ns,
				     .id = sm_name(s),
				     .doc = kslice_cstr(text),
				     .expect = s->version};
	for (size_t i = 0; i < n_extra; i++)
		ops[i + 1] = extra[i];
	k_status rc = storage_apply(sm_store(), ops, n_extra + 1);
	if (k_ok(rc))
		s->version = s->version == STORAGE_ABSENT ? 1 : s->version + 1;
	free(ops);
	kjson_free(text);
	return rc;
}

const char *sm_name(const struct sm_secret *s)
{
	const char *n = json_string_value(json_object_get(s->doc, "Name"));
	return n ? n : "";
}

const char *sm_arn(const struct sm_secret *s)
{
	const char *n = json_string_value(json_object_get(s->doc, "ARN"));
	return n ? n : "";
}

bool sm_deleted(const struct sm_secret *s)
{
	return kjson_date_seconds(json_object_get(s->doc, "DeletedDate")) > 0;
}

bool sm_is_replica(const struct sm_secret *s)
{
	return json_is_true(json_object_get(s->doc, "IsReplica"));
}

bool sm_primary_region(json_t *doc, char *out, size_t n)
{
	const char *pr = json_string_value(json_object_get(doc, "PrimaryRegion"));
	if (pr != NULL) {
		snprintf(out, n, "%s", pr);
		return true;
	}
	if (json_array_size(json_object_get(doc, "ReplicationStatus")) == 0)
		return false;
	/* arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-SUFFIX */
	struct k_arn a;
	const char *arn = json_string_value(json_object_get(doc, "ARN"));
	if (!k_arn_parse_cstr(arn, &a) || !kslice_eq_cstr(a.partition, "aws") ||
	    !kslice_eq_cstr(a.service, "secretsmanager") || a.region.len == 0 || a.region.len >= n)
		return false;
	snprintf(out, n, "%.*s", (int)a.region.len, (const char *)a.region.ptr);
	return true;
}

/*
 * "You can't perform this operation on the secret because it was marked
 * for deletion." (InvalidRequestException: "The secret is scheduled for
 * deletion.")
 */
k_status sm_require_live(struct api_ctx *c, const struct sm_secret *s)
{
	if (sm_deleted(s))
		return api_fail(c, K_E_SM_INVALID_REQUEST,
				"You can't perform this operation on the secret because it was "
				"marked for deletion.");
	return K_OK;
}

k_status sm_require_primary(struct api_ctx *c, const struct sm_secret *s)
{
	if (sm_is_replica(s))
		return api_fail(c, K_E_SM_INVALID_REQUEST,
				"Operation is not permitted on a replica secret. Call the "
				"operation on the primary secret in %s.",
				json_string_value(json_object_get(s->doc, "PrimaryRegion")));
	return K_OK;
}

json_t *sm_versions(const struct sm_secret *s)
{
	json_t *v = json_object_get(s->doc, "Versions");
	if (!json_is_object(v)) {
		v = json_object();
		json_object_set_new(s->doc, "Versions", v);
	}
	return v;
}

bool sm_has_value(const struct sm_secret *s)
{
	const char *vid;
	json_t *v;
	json_object_foreach(json_object_get(s->doc, "Versions"), vid, v)
	{
		if (!json_is_true(json_object_get(v, "NoValue")))
			return true;
	}
	return false;
}

bool sm_version_has_stage(json_t *version, const char *stage)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(version, "Stages"), i, e)
	{
		if (strcmp(json_string_value(e), stage) == 0)
			return true;
	}
	return false;
}

const char *sm_stage_owner(const struct sm_secret *s, const char *stage)
{
	const char *vid;
	json_t *v;
	json_object_foreach(json_object_get(s->doc, "Versions"), vid, v)
	{
		if (sm_version_has_stage(v, stage))
			return vid;
	}
	return NULL;
}

void sm_stage_remove(json_t *version, const char *stage)
{
	json_t *st = json_object_get(version, "Stages");
	for (size_t i = json_array_size(st); i > 0; i--) {
		if (strcmp(json_string_value(json_array_get(st, i - 1)), stage) == 0)
			json_array_remove(st, i - 1);
	}
}

void sm_stage_add(json_t *version, const char *stage)
{
	json_t *st = json_object_get(version, "Stages");
	if (!json_is_array(st)) {
		st = json_array();
		json_object_set_new(version, "Stages", st);
	}
	if (!sm_version_has_stage(version, stage))
		json_array_append_new(st, json_string(stage));
}

/*
 * "If this operation moves the staging label AWSCURRENT from another
 * version to this version, then Secrets Manager also automatically moves
 * the staging label AWSPREVIOUS to the version that AWSCURRENT was
 * removed from."
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
 */
void sm_stage_move(struct sm_secret *s, const char *stage, const char *to)
{
	json_t *versions = sm_versions(s);
	char from[80] = "";
	const char *owner = sm_stage_owner(s, stage);
	if (owner != NULL)
		snprintf(from, sizeof from, "%s", owner);
	if (from[0] != 0 && strcmp(from, to) == 0)
		return;
	if (from[0] != 0)
		sm_stage_remove(json_object_get(versions, from), stage);
	sm_stage_add(json_object_get(versions, to), stage);
	if (strcmp(stage, "AWSCURRENT") == 0 && from[0] != 0) {
		const char *prev = sm_stage_owner(s, "AWSPREVIOUS");
		if (prev != NULL)
			sm_stage_remove(json_object_get(versions, prev), "AWSPREVIOUS");
		sm_stage_add(json_object_get(versions, from), "AWSPREVIOUS");
	}
}

/* Versions in creation order (by their sequence number), oldest first. */
static int cmp_seq(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "Seq"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "Seq"));
	return (x > y) - (x < y);
}

/*
 * "Secrets Manager removes outdated versions when there are more than
 * 100, but it does not remove versions created less than 24 hours ago. If
 * you update the secret value more than once every 10 minutes, you create
 * more versions than Secrets Manager removes, and you will reach the quota
 * for secret versions."
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
 * Outdated (deprecated) versions are those without a staging label. The
 * ids removed are appended to `gone` so their value records go too.
 */
static K_MUST_CHECK k_status trim_versions(struct api_ctx *c, struct sm_secret *s, json_t *gone)
{
	json_t *versions = sm_versions(s);
	size_t n = json_object_size(versions);
	if (n <= SM_MAX_VERSIONS)
		return K_OK;
	json_t **list = calloc(n, sizeof *list);
	ENSURE(list != NULL, K_E_INTERNAL);
	size_t i = 0;
	const char *vid;
	json_t *v;
	json_object_foreach(versions, vid, v)
	{
		json_object_set_new(v, "Id", json_string(vid));
		list[i++] = v;
	}
	qsort(list, n, sizeof *list, cmp_seq);
	size_t left = n;
	for (i = 0; i < n && left > SM_MAX_VERSIONS; i++) {
		v = list[i];
		if (json_array_size(json_object_get(v, "Stages")) > 0)
			continue;
		if (kjson_date_seconds(json_object_get(v, "CreatedDate")) > c->now - SM_DAY)
			continue;
		json_array_append(gone, json_object_get(v, "Id"));
		left--;
	}
	json_object_foreach(versions, vid, v) json_object_del(v, "Id");
	free(list);
	for (i = 0; i < json_array_size(gone); i++)
		json_object_del(versions, json_string_value(json_array_get(gone, i)));
	if (left > SM_MAX_VERSIONS)
		return api_fail(
			c, K_E_SM_LIMIT_EXCEEDED,
			"You have exceeded the maximum number of versions (%d) allowed for this "
			"secret. Versions without staging labels are removed after 24 hours.",
			SM_MAX_VERSIONS);
	return K_OK;
}

k_status sm_token_in_use(struct api_ctx *c, const struct sm_secret *s, const char *token)
{
	return api_fail(c, K_E_SM_EXISTS,
			"You can't use ClientRequestToken %s because that value is already in use "
			"for a version of secret %s.",
			token, sm_arn(s));
}

/* True if the stored version holds exactly this value. */
static K_MUST_CHECK k_status same_value(struct api_ctx *c, const struct sm_secret *s,
					const char *vid, struct kslice value, bool binary,
					bool *same)
{
	struct kbuf old;
	kbuf_init(&old, SM_MAX_VALUE);
	bool old_binary = false;
	k_status rc = sm_get_value(c, s, vid, &old, &old_binary);
	*same = k_ok(rc) && old_binary == binary && old.len == value.len &&
		crypto_memeq(old.ptr, value.ptr, value.len);
	kbuf_release(&old);
	return k_is(rc, K_E_SM_NOT_FOUND) ? K_OK : rc;
}

k_status sm_put_version(struct api_ctx *c, struct sm_secret *s, const char *vid,
			struct kslice value, bool binary, json_t *stages, bool *created)
{
	return sm_put_version_ops(c, s, vid, value, binary, stages, NULL, 0, created);
}

/*
 * Records version vid in the secret's document: its sequence number, date,
 * the key that sealed it, and the staging labels that move to it.
 */
static K_MUST_CHECK k_status note_version(struct api_ctx *c, struct sm_secret *s, const char *vid,
					  json_t *existing, const char *key_arn, json_t *stages)
{
	json_t *versions = sm_versions(s);
	json_int_t seq = json_integer_value(json_object_get(s->doc, "NextSeq")) + 1;
	json_object_set_new(s->doc, "NextSeq", json_integer(seq));
	json_t *v = existing ? existing : json_object();
	if (existing == NULL) {
		json_object_set_new(v, "Stages", json_array());
		json_object_set_new(versions, vid, v);
	}
	json_object_del(v, "NoValue");
	int64_t now_ms = api_now_ms(c);
	json_object_set_new(v, "CreatedDate", kjson_date(now_ms));
	json_object_set_new(v, "Seq", json_integer(seq));
	json_object_set_new(v, "KmsKeyArn", json_string(key_arn));
	size_t i;
	json_t *st;
	json_array_foreach(stages, i, st) sm_stage_move(s, json_string_value(st), vid);
	if (json_array_size(json_object_get(v, "Stages")) > SM_MAX_STAGES)
		return api_fail(c, K_E_SM_LIMIT_EXCEEDED,
				"A version can have at most %d staging labels.", SM_MAX_STAGES);
	json_object_set_new(s->doc, "LastChangedDate", kjson_date(now_ms));
	return K_OK;
}

k_status sm_put_version_ops(struct api_ctx *c, struct sm_secret *s, const char *vid,
			    struct kslice value, bool binary, json_t *stages,
			    const struct storage_op *extra, size_t n_extra, bool *created)
{
	*created = false;
	json_t *versions = sm_versions(s);
	json_t *existing = json_object_get(versions, vid);
	/*
	 * "If a version with this value already exists and the version
	 * SecretString and SecretBinary values are the same as those in the
	 * request, then the request is ignored. If a version with this value
	 * already exists and that version's SecretString and SecretBinary
	 * values are different from those in the request, then the request
	 * fails because you cannot modify an existing version."
	 * (API_PutSecretValue, API_CreateSecret.) AWS answers
	 * ResourceExistsException, naming the token and the secret.
	 * A version that RotateSecret reserved (no value yet) takes the value.
	 */
	if (existing != NULL && !json_is_true(json_object_get(existing, "NoValue"))) {
		bool same = false;
		GUARD(same_value(c, s, vid, value, binary, &same));
		if (!same)
			return sm_token_in_use(c, s, vid);
		return K_OK;
	}
	char *record = NULL;
	char key_arn[160];
	GUARD(sm_seal_value(c, s, vid, value, binary, &record, key_arn, sizeof key_arn));
	k_status vrc = note_version(c, s, vid, existing, key_arn, stages);
	if (k_failed(vrc)) {
		kjson_free(record);
		return vrc;
	}

	json_t *gone = json_array();
	char(*ids)[200] = NULL;
	struct storage_op *ops = NULL;
	k_status rc = K_OK;
	ENSURE_GOTO(gone != NULL, K_E_INTERNAL);
	GUARD_GOTO(trim_versions(c, s, gone));
	size_t n = json_array_size(gone) + 1;
	ids = calloc(n, sizeof *ids);
	ops = calloc(n + n_extra, sizeof *ops);
	ENSURE_GOTO(ids != NULL && ops != NULL, K_E_INTERNAL);
	sm_value_id(s, vid, ids[0], sizeof ids[0]);
	ops[0] = (struct storage_op){.op = STORAGE_PUT,
				     .kind = "secretvalue",
				     .ns = s->ns,
				     .id = ids[0],
				     .doc = kslice_cstr(record),
				     .expect = STORAGE_ANY};
	for (size_t i = 1; i < n; i++) {
		sm_value_id(s, json_string_value(json_array_get(gone, i - 1)), ids[i],
			    sizeof ids[i]);
		ops[i] = (struct storage_op){.op = STORAGE_DEL,
					     .kind = "secretvalue",
					     .ns = s->ns,
					     .id = ids[i],
					     .expect = STORAGE_ANY};
	}
	for (size_t i = 0; i < n_extra; i++)
		ops[n + i] = extra[i];
	GUARD_GOTO(sm_save(s, ops, n + n_extra));
	*created = true;
out:
	free(ids);
	free(ops);
	json_decref(gone);
	kjson_free(record);
	return rc;
}

struct purge_state {
	struct storage_op *ops;
	char (*ids)[200];
	size_t n, cap;
};

static K_MUST_CHECK k_status purge_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				      int64_t version)
{
	struct purge_state *p = arg;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		void *ids = realloc(p->ids, cap * sizeof *p->ids);
		ENSURE(ids != NULL, K_E_INTERNAL);
		p->ids = ids;
		p->cap = cap;
	}
	snprintf(p->ids[p->n], sizeof p->ids[p->n], "%s", id);
	p->n++;
	return K_OK;
}

/* Deletes a secret and every value record of it, in one apply. */
k_status sm_purge(const char *ns, const struct sm_secret *s)
{
	char prefix[64];
	snprintf(prefix, sizeof prefix, "%s/", json_string_value(json_object_get(s->doc, "Uid")));
	struct purge_state p = {0};
	k_status rc = storage_list(sm_store(), "secretvalue", ns, prefix, NULL, 0, purge_cb, &p);
	if (k_ok(rc)) {
		p.ops = calloc(p.n + 1, sizeof *p.ops);
		rc = p.ops ? K_OK : K_E_INTERNAL;
	}
	if (k_ok(rc)) {
		for (size_t i = 0; i < p.n; i++)
			p.ops[i] = (struct storage_op){.op = STORAGE_DEL,
						       .kind = "secretvalue",
						       .ns = ns,
						       .id = p.ids[i],
						       .expect = STORAGE_ANY};
		p.ops[p.n] = (struct storage_op){.op = STORAGE_DEL,
						 .kind = "secret",
						 .ns = ns,
						 .id = sm_name(s),
						 .expect = s->version};
		rc = storage_apply(sm_store(), p.ops, p.n + 1);
	}
	free(p.ops);
	free(p.ids);
	return rc;
}
