/*
 * seed.c — keys and secrets created at start from a seed file (seed.h).
 *
 * There is no second CreateKey here: each entry becomes the same calls a
 * client would make (DescribeKey, CreateKey, CreateAlias; DescribeSecret,
 * CreateSecret), run through the operation's row by api_call (its
 * authorization and handler) as the account's root, each with an intent
 * and an event in the audit trail, as api_handle does for a request. Only
 * the wire is skipped: there is no signature to check for a file the
 * operator handed to the server.
 */
#include "cli/seed.h"

#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "api/pipeline.h"
#include "audit/audit.h"
#include "config/config.h"
#include "config/regions.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "crypto/uuid.h"
#include "core/banned.h"

#define SEED_DEFAULT_ACCOUNT "000000000000"
#define SEED_DEFAULT_REGION "us-east-1"
#define SEED_SOURCE "kinko-seed"
#define KMS_SOURCE "kms.amazonaws.com"
#define SM_SOURCE "secretsmanager.amazonaws.com"

k_status seed_file_from_config(const char *config_path, char *out, size_t n, struct kbuf *msg)
{
	ENSURE(out != NULL && n > 0, K_E_VALIDATION);
	out[0] = 0;
	if (config_path == NULL)
		return K_OK;
	json_t *cfg = json_load_file(config_path, 0, NULL);
	const json_t *v = json_object_get(cfg, "seed_file");
	k_status rc = K_OK;
	if (v != NULL && !json_is_string(v)) {
		kbuf_note(msg, "config: \"seed_file\" must be a string (a file name)");
		rc = K_E_VALIDATION;
	} else if (v != NULL) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s", config_path);
		const char *file = json_string_value(v);
		int w = file[0] == '/' ? snprintf(out, n, "%s", file)
				       : snprintf(out, n, "%s/%s", dirname(dir), file);
		if (w < 0 || (size_t)w >= n) {
			kbuf_note(msg, "config: \"seed_file\" is too long");
			out[0] = 0;
			rc = K_E_VALIDATION;
		}
	}
	json_decref(cfg);
	return rc;
}

/* The seed file's account and region, and who acts there. */
struct seed {
	const char *path;
	const char *account, *region;
	const struct identity *root;
	struct kbuf *msg;
	unsigned created, kept;
};

/* One entry being seeded, for the error message. */
struct seed_entry {
	const char *list; /* "keys" or "secrets" */
	size_t index;
	const char *name;
};

static const struct api_service *service_by_source(const char *event_source)
{
	const struct api_service *svc = NULL;
	for (size_t i = 0; (svc = api_service_at(i)) != NULL; i++) {
		if (svc->event_source != NULL && strcmp(svc->event_source, event_source) == 0)
			return svc;
	}
	return NULL;
}

/*
 * One call of an operation as the account root: the intent record, the
 * row's authorization and handler, the audit event, as api_handle runs
 * them. *out is the caller's (the handler's output object); on failure
 * the AWS error is named in err (the exception and the message).
 */
static K_MUST_CHECK k_status seed_call(struct seed *s, const char *event_source, const char *name,
				       json_t *in, json_t **out, struct kbuf *err)
{
	const struct api_service *svc = service_by_source(event_source);
	const struct api_operation *op = api_find_by_event_source(event_source, name);
	if (svc == NULL || op == NULL) {
		kbuf_note(err, "%s: the operation is not registered", name);
		return K_E_INTERNAL;
	}
	struct api_request req;
	api_request_init(&req);
	crypto_uuid_fast(req.request_id);
	snprintf(req.source_ip, sizeof req.source_ip, "%s", SEED_SOURCE);
	req.headers[0].name = kslice_cstr("user-agent");
	req.headers[0].value = kslice_cstr(SEED_SOURCE);
	req.n_headers = 1;
	struct api_ctx c;
	memset(&c, 0, sizeof c);
	c.req = &req;
	c.service = svc;
	c.op = op;
	c.now = kclock_now();
	identity_principal(s->root, "", &c.principal);
	snprintf(c.region, sizeof c.region, "%s", s->region);
	snprintf(c.ns, sizeof c.ns, "%s:%s", s->account, s->region);
	kbuf_init(&c.err_msg, API_ERROR_MESSAGE_MAX);
	*out = json_object();
	struct audit_call_info info;
	api_audit_info(&c, &info);
	k_status rc = *out != NULL ? audit_intent(&info) : K_E_INTERNAL;
	if (k_ok(rc))
		rc = api_call(&c, in, *out);
	if (k_failed(audit_call(&info, in, *out, rc,
				c.err_msg.len ? kbuf_cstr(&c.err_msg) : NULL))) {
		rc = K_E_INTERNAL;
		kbuf_reset(&c.err_msg);
		kbuf_note(&c.err_msg, "The audit log cannot be written.");
	}
	if (k_failed(rc))
		kbuf_note(err, "%s: %s: %s", name, k_status_name(rc),
			  c.err_msg.len ? kbuf_cstr(&c.err_msg) : k_status_message(rc));
	kbuf_release(&c.err_msg);
	api_request_release(&req);
	return rc;
}

/* Names the failing entry: "seed FILE: keys[1] (alias/x): CreateKey: Exception: message". */
static K_MUST_CHECK k_status entry_fail(struct seed *s, const struct seed_entry *e, k_status rc,
					const struct kbuf *err)
{
	kbuf_note(s->msg, "seed %s: %s[%zu] (%s): %s", s->path, e->list, e->index,
		  e->name != NULL ? e->name : "?", kbuf_cstr(err));
	return rc;
}

/* A member that is a string, or NULL. */
static const char *str_member(const json_t *o, const char *name)
{
	return json_string_value(json_object_get(o, name));
}

/*
 * Calls `exists` (DescribeKey / DescribeSecret) with {member: name}: K_OK
 * if it is there, K_E_NOT_FOUND-like codes (`absent`) if not, else the error.
 */
static K_MUST_CHECK k_status probe(struct seed *s, const char *source, const char *exists,
				   const char *member, const char *name, k_status absent,
				   struct kbuf *err)
{
	json_t *in = json_pack("{s:s}", member, name);
	json_t *out = NULL;
	k_status rc = seed_call(s, source, exists, in, &out, err);
	json_decref(in);
	json_decref(out);
	if (k_is(rc, absent))
		kbuf_reset(err);
	return rc;
}

/*
 * One key: left as it is when its alias exists; otherwise CreateKey with
 * the entry's members (a Policy given as a JSON object is passed as its
 * text, as the API takes it), then CreateAlias.
 */
static K_MUST_CHECK k_status seed_key(struct seed *s, const struct seed_entry *e, json_t *entry,
				      struct kbuf *err)
{
	const char *alias = e->name;
	if (alias == NULL) {
		kbuf_note(err,
			  "a key needs \"AliasName\" (alias/NAME), which makes seeding idempotent");
		return K_E_VALIDATION;
	}
	k_status rc = probe(s, KMS_SOURCE, "DescribeKey", "KeyId", alias, K_E_NOT_FOUND, err);
	if (k_ok(rc)) {
		s->kept++;
		return K_OK;
	}
	if (!k_is(rc, K_E_NOT_FOUND))
		return rc;
	json_t *in = json_deep_copy(entry);
	json_object_del(in, "AliasName");
	json_t *policy = json_object_get(in, "Policy");
	if (json_is_object(policy)) {
		char *text = json_dumps(policy, JSON_COMPACT);
		json_object_set_new(in, "Policy", json_string(text != NULL ? text : ""));
		kjson_free(text);
	}
	json_t *out = NULL;
	rc = seed_call(s, KMS_SOURCE, "CreateKey", in, &out, err);
	json_decref(in);
	const char *key_id = str_member(json_object_get(out, "KeyMetadata"), "KeyId");
	if (k_ok(rc) && key_id == NULL)
		rc = K_E_INTERNAL; /* CreateKey answered without a KeyId */
	json_t *ain = k_ok(rc) && key_id != NULL
			      ? json_pack("{s:s, s:s}", "AliasName", alias, "TargetKeyId", key_id)
			      : NULL;
	json_t *aout = NULL;
	if (ain != NULL)
		rc = seed_call(s, KMS_SOURCE, "CreateAlias", ain, &aout, err);
	if (k_ok(rc)) {
		LOG_INFO("seed: created %s (key %s)", alias, key_id);
		s->created++;
	}
	json_decref(ain);
	json_decref(aout);
	json_decref(out);
	return rc;
}

/* One secret: left as it is when its name exists; otherwise CreateSecret with the entry's members. */
static K_MUST_CHECK k_status seed_secret(struct seed *s, const struct seed_entry *e, json_t *entry,
					 struct kbuf *err)
{
	if (e->name == NULL) {
		kbuf_note(err, "a secret needs \"Name\"");
		return K_E_VALIDATION;
	}
	k_status rc =
		probe(s, SM_SOURCE, "DescribeSecret", "SecretId", e->name, K_E_SM_NOT_FOUND, err);
	if (k_ok(rc)) {
		s->kept++;
		return K_OK;
	}
	if (!k_is(rc, K_E_SM_NOT_FOUND))
		return rc;
	json_t *out = NULL;
	rc = seed_call(s, SM_SOURCE, "CreateSecret", entry, &out, err);
	if (k_ok(rc)) {
		LOG_INFO("seed: created secret %s", e->name);
		s->created++;
	}
	json_decref(out);
	return rc;
}

typedef K_MUST_CHECK k_status (*seed_fn)(struct seed *s, const struct seed_entry *e, json_t *entry,
					 struct kbuf *err);

/* Every entry of one list, in order; the first failure stops. */
static K_MUST_CHECK k_status seed_list(struct seed *s, const json_t *doc, const char *list,
				       const char *name_member, seed_fn fn)
{
	const json_t *arr = json_object_get(doc, list);
	if (arr == NULL)
		return K_OK;
	if (!json_is_array(arr)) {
		kbuf_note(s->msg, "seed %s: \"%s\" must be a list", s->path, list);
		return K_E_VALIDATION;
	}
	struct kbuf err;
	kbuf_init(&err, KBUF_NOTE_MAX);
	k_status rc = K_OK;
	for (size_t i = 0; i < json_array_size(arr) && k_ok(rc); i++) {
		json_t *entry = json_array_get(arr, i);
		struct seed_entry e = {list, i, str_member(entry, name_member)};
		kbuf_reset(&err);
		if (!json_is_object(entry)) {
			kbuf_note(&err, "an entry must be an object");
			rc = K_E_VALIDATION;
		} else {
			rc = fn(s, &e, entry, &err);
		}
		if (k_failed(rc))
			rc = entry_fail(s, &e, rc, &err);
	}
	kbuf_release(&err);
	return rc;
}

/* The file's top level: account, region, keys, secrets, and nothing else. */
static K_MUST_CHECK k_status seed_header(struct seed *s, const json_t *doc)
{
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)doc, key, v)
	{
		if (strcmp(key, "account") != 0 && strcmp(key, "region") != 0 &&
		    strcmp(key, "keys") != 0 && strcmp(key, "secrets") != 0) {
			kbuf_note(s->msg,
				  "seed %s: unknown member \"%s\" (the file has account, region, "
				  "keys and secrets)",
				  s->path, key);
			return K_E_VALIDATION;
		}
	}
	s->account = str_member(doc, "account") ? str_member(doc, "account") : SEED_DEFAULT_ACCOUNT;
	s->region = str_member(doc, "region") ? str_member(doc, "region") : SEED_DEFAULT_REGION;
	if (!config_region_known(s->region)) {
		kbuf_note(s->msg, "seed %s: unknown region \"%s\"", s->path, s->region);
		return K_E_VALIDATION;
	}
	char arn[64];
	snprintf(arn, sizeof arn, "arn:aws:iam::%.12s:root", s->account);
	s->root = config_find_principal(arn);
	if (s->root == NULL || strlen(s->account) != 12) {
		kbuf_note(s->msg,
			  "seed %s: the account \"%s\" is not configured (name one of the "
			  "configuration's accounts in \"account\", or serve with --dev for "
			  "000000000000)",
			  s->path, s->account);
		return K_E_VALIDATION;
	}
	return K_OK;
}

int seed_at_start(const char *flag_path, const char *config_path)
{
	char from_config[PATH_MAX];
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	k_status rc = seed_file_from_config(config_path, from_config, sizeof from_config, &msg);
	const char *path = flag_path != NULL ? flag_path : from_config;
	if (k_ok(rc) && path[0] != 0)
		rc = seed_run(path, &msg);
	if (k_failed(rc))
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&msg));
	kbuf_release(&msg);
	return k_ok(rc) ? 0 : 1;
}

k_status seed_run(const char *path, struct kbuf *msg)
{
	ENSURE(path != NULL && msg != NULL, K_E_VALIDATION);
	json_error_t jerr;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(doc)) {
		kbuf_note(msg, "seed %s: %s (line %d)", path,
			  doc == NULL ? jerr.text : "the file must hold a JSON object", jerr.line);
		json_decref(doc);
		return K_E_VALIDATION;
	}
	struct seed s = {.path = path, .msg = msg};
	k_status rc = seed_header(&s, doc);
	/* Keys first: a secret may name a seeded key's alias in KmsKeyId. */
	if (k_ok(rc))
		rc = seed_list(&s, doc, "keys", "AliasName", seed_key);
	if (k_ok(rc))
		rc = seed_list(&s, doc, "secrets", "Name", seed_secret);
	if (k_ok(rc))
		LOG_INFO("seed %s: %u created, %u already there (left as they are), in %s:%s", path,
			 s.created, s.kept, s.account, s.region);
	json_decref(doc);
	return rc;
}
