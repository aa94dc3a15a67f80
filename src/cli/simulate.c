/*
 * simulate.c — `kinko policy simulate`: reads the configuration and the
 * key's stored document (named as the API names keys: id, ARN, alias name
 * or alias ARN), or a key policy file, asks the evaluation
 * (authz_simulate in kms/authz.c) and prints its explanation
 * (docs/AUTHORIZATION.md).
 */
#include "cli/simulate.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/lint.h"
#include "cli/serve.h"
#include "cli/usage.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/json.h"
#include "kms/authz.h"
#include "kms/kms.h"
#include "secrets/secrets.h"
#include "storage/storage.h"
#include "core/arn.h"
#include "core/banned.h"

/* Where --key points: the namespace (ACCOUNT:REGION) and a key id or an alias name. */
struct key_ref {
	char ns[96];
	char name[300]; /* a key id, or "alias/NAME" */
	bool alias;
};

/* Copies a slice into a C string of n bytes; false when it does not fit. */
static bool slice_to(struct kslice v, char *out, size_t n)
{
	if (v.len == 0 || v.len >= n)
		return false;
	snprintf(out, n, "%.*s", (int)v.len, (const char *)v.ptr);
	return true;
}

/*
 * Reads --key as KMS's KeyId parameter reads it: a key ARN or alias ARN
 * carries its account and Region; a key id or "alias/NAME" is in the
 * caller's account ("To specify a KMS key in a different AWS account, you
 * must use the key ARN or alias ARN",
 * https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html),
 * here the principal's, and in `region`. False after saying why not.
 */
static bool key_ref_parse(const char *key, const char *principal, const char *region,
			  struct key_ref *r)
{
	struct k_arn a;
	char account[16], reg[64];
	if (strncmp(key, "arn:", 4) == 0) {
		bool ok = k_arn_parse_cstr(key, &a) && kslice_eq_cstr(a.service, "kms") &&
			  (a.kind == K_ARN_KEY || a.kind == K_ARN_ALIAS) &&
			  slice_to(a.account, account, sizeof account) &&
			  slice_to(a.region, reg, sizeof reg) &&
			  slice_to(a.id, r->name + 6, sizeof r->name - 6);
		if (!ok) {
			fprintf(stderr,
				"kinko policy simulate: --key %s is not a key ARN or alias ARN\n",
				key);
			return false;
		}
		r->alias = a.kind == K_ARN_ALIAS;
		if (r->alias)
			memcpy(r->name, "alias/", 6);
		else
			memmove(r->name, r->name + 6, strlen(r->name + 6) + 1);
		snprintf(r->ns, sizeof r->ns, "%s:%s", account, reg);
		return true;
	}
	if (!k_arn_parse_cstr(principal, &a) || !slice_to(a.account, account, sizeof account)) {
		fprintf(stderr,
			"kinko policy simulate: --key %s names no account: give the key ARN or "
			"alias ARN, "
			"or a principal ARN with its account\n",
			key);
		return false;
	}
	r->alias = strncmp(key, "alias/", 6) == 0;
	snprintf(r->name, sizeof r->name, "%s", key);
	snprintf(r->ns, sizeof r->ns, "%s:%s", account, region);
	return true;
}

/* Reads one stored document (storage.h) as JSON; NULL when absent or not JSON. */
static json_t *store_doc(struct storage *st, const char *kind, const char *ns, const char *id)
{
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	int64_t ver;
	json_t *j = NULL;
	if (k_ok(storage_get(st, kind, ns, id, &doc, &ver)))
		j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	kbuf_release(&doc);
	return j;
}

/* The store at store_url, opened; NULL after saying why. */
static struct storage *open_store(const char *store_url)
{
	struct storage *st = NULL;
	struct kbuf why;
	kbuf_init(&why, KBUF_NOTE_MAX);
	k_status rc = storage_open(store_url, &st, &why);
	if (k_failed(rc))
		fprintf(stderr, "kinko policy simulate: store: %s\n", kbuf_cstr(&why));
	kbuf_release(&why);
	return k_ok(rc) ? st : NULL;
}

/* The stored document of the key r names (through its alias if it is one); NULL after saying why. */
static json_t *load_key_doc(const char *store_url, const struct key_ref *r)
{
	struct storage *st = open_store(store_url);
	if (st == NULL)
		return NULL;
	char id[300];
	snprintf(id, sizeof id, "%s", r->name);
	json_t *j = NULL;
	if (r->alias) {
		json_t *al = store_doc(st, "alias", r->ns, r->name);
		const char *target = json_string_value(json_object_get(al, "TargetKeyId"));
		if (target != NULL)
			snprintf(id, sizeof id, "%s", target);
		else
			fprintf(stderr,
				"kinko policy simulate: no alias %s in %s of the store %s\n",
				r->name, r->ns, store_url);
		json_decref(al);
		if (target == NULL)
			goto out;
	}
	j = store_doc(st, "key", r->ns, id);
	if (j == NULL)
		fprintf(stderr, "kinko policy simulate: no key %s in %s of the store %s\n", id,
			r->ns, store_url);
	if (j != NULL && k_failed(kms_grants_into_doc(st, r->ns, j))) {
		fprintf(stderr, "kinko policy simulate: cannot read the grants of %s\n", id);
		json_decref(j);
		j = NULL;
	}
out:
	storage_close(st);
	return j;
}

static bool add_pair(json_t *obj, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (eq == NULL || eq == kv)
		return false;
	char key[256];
	snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
	json_t *old = json_object_get(obj, key);
	if (json_is_string(old)) { /* a second value makes a multi-valued key */
		json_t *l = json_pack("[O, s]", old, eq + 1);
		return json_object_set_new(obj, key, l) == 0;
	}
	if (json_is_array(old))
		return json_array_append_new(old, json_string(eq + 1)) == 0;
	return json_object_set_new(obj, key, json_string(eq + 1)) == 0;
}

/* The command's flags, as given. */
struct simulate_args {
	const char *config_path, *data, *principal, *action, *key, *policy_file, *store_url;
	const char *secret; /* --secret NAME_OR_ARN (a Secrets Manager action) */
	const char *region; /* for a key id or alias name (default us-east-1) */
	json_t *ctx, *vals; /* --context and --value pairs (owned by the caller) */
};

/* Reads the flags; false (after the usage) when they do not make a simulation. */
static bool simulate_parse(int argc, char **argv, struct simulate_args *a)
{
	if (argc < 1 || strcmp(argv[0], "simulate") != 0)
		return false;
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (next == NULL)
			return false;
		i++;
		if (strcmp(f, "--config") == 0)
			a->config_path = next;
		else if (strcmp(f, "--data") == 0)
			a->data = next;
		else if (strcmp(f, "--store") == 0)
			a->store_url = next;
		else if (strcmp(f, "--principal") == 0)
			a->principal = next;
		else if (strcmp(f, "--action") == 0)
			a->action = next;
		else if (strcmp(f, "--key") == 0)
			a->key = next;
		else if (strcmp(f, "--secret") == 0)
			a->secret = next;
		else if (strcmp(f, "--region") == 0)
			a->region = next;
		else if (strcmp(f, "--key-policy") == 0)
			a->policy_file = next;
		else if (strcmp(f, "--context") == 0 && add_pair(a->ctx, next))
			continue;
		else if (strcmp(f, "--value") == 0 && add_pair(a->vals, next))
			continue;
		else
			return false;
	}
	if (a->principal == NULL || a->action == NULL)
		return false;
	if (strncasecmp(a->action, "secretsmanager:", 15) == 0)
		return a->key == NULL && a->policy_file == NULL;
	return a->secret == NULL && (a->key == NULL) != (a->policy_file == NULL);
}

/*
 * The store to read the key from, by the server's own rule: --store, else
 * the configuration's "store", else the data folder (a --data given here
 * wins over the configuration's store). Loads the configuration when one
 * is named; false after saying why it cannot.
 */
static bool simulate_store(struct simulate_args *a, struct config *cfg, char *url, size_t n)
{
	if (a->config_path != NULL) {
		struct kbuf msg;
		kbuf_init(&msg, KBUF_NOTE_MAX);
		bool ok = k_ok(config_load_file(cfg, a->config_path, &msg));
		if (!ok)
			fprintf(stderr, "kinko: config: %s\n", kbuf_cstr(&msg));
		kbuf_release(&msg);
		if (!ok)
			return false;
		if (a->store_url == NULL && cfg->store_url[0] != 0 &&
		    strcmp(a->data, "kinko-data") == 0)
			a->store_url = cfg->store_url;
		if (cfg->data_dir[0] != 0 && strcmp(a->data, "kinko-data") == 0)
			a->data = cfg->data_dir;
	}
	if (a->store_url != NULL)
		snprintf(url, n, "%s", a->store_url);
	else
		snprintf(url, n, "sqlite:%s", a->data);
	return true;
}

/* A key of the principal's account described by the policy file alone; NULL after saying why. */
static json_t *policy_key_doc(const char *policy_file, const char *principal)
{
	json_error_t err;
	json_t *p = json_load_file(policy_file, 0, &err);
	if (p == NULL) {
		fprintf(stderr, "kinko: %s: %s\n", policy_file, err.text);
		return NULL;
	}
	char *text = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	char account[13] = "";
	const char *colons = strstr(principal, "::");
	if (colons != NULL)
		snprintf(account, sizeof account, "%.12s", colons + 2);
	json_t *doc = json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:s}", "Policy", text ? text : "", "AWSAccountId",
		account, "Arn", "arn:aws:kms:us-east-1:000000000000:key/simulated", "KeySpec",
		"SYMMETRIC_DEFAULT", "KeyUsage", "ENCRYPT_DECRYPT", "Origin", "AWS_KMS");
	kjson_free(text);
	return doc;
}

/*
 * What the simulation cannot see for itself: a principal the configuration
 * does not declare (no identity policy applies: only a key policy naming
 * it can allow it) and an action that does not exist ("kms:Decrpyt"
 * matches nothing, so it is denied whatever the policies say). Added to
 * the result as "Warnings" and said on stderr.
 */
static void simulate_warnings(json_t *res, const struct simulate_args *a, bool declared)
{
	json_t *w = json_array();
	char line[1024], near[128];
	if (a->config_path != NULL && !declared) {
		snprintf(line, sizeof line,
			 "the principal %s is not declared in the configuration %s: no identity "
			 "policy applies to it, and kinko refuses its requests",
			 a->principal, a->config_path);
		json_array_append_new(w, json_string(line));
	}
	if (!cli_action_exists(a->action, near, sizeof near)) {
		if (near[0] != 0)
			snprintf(line, sizeof line,
				 "the action %s does not exist (did you mean %s?); it matches "
				 "nothing",
				 a->action, near);
		else
			snprintf(line, sizeof line,
				 "the action %s does not exist; it matches nothing", a->action);
		json_array_append_new(w, json_string(line));
	}
	size_t i;
	json_t *x;
	json_array_foreach(w, i, x)
	{
		fprintf(stderr, "kinko policy simulate: warning: %s\n", json_string_value(x));
	}
	if (json_array_size(w) > 0 && res != NULL)
		json_object_set(res, "Warnings", w);
	json_decref(w);
}

/* Prints the decision; 0 when allowed, 1 when not. */
static int simulate_report(const json_t *res)
{
	char *s = res ? json_dumps(res, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	if (s != NULL)
		printf("%s\n", s);
	kjson_free(s);
	return strcmp(json_string_value(json_object_get(res, "Decision")), "allowed") == 0 ? 0 : 1;
}

/*
 * The stored document of the secret --secret names: a name (in the
 * principal's account and --region) or an ARN (its account and region; the
 * name is the ARN's without its 6-character suffix). NULL after saying why.
 */
static json_t *load_secret_doc(const char *store_url, const struct simulate_args *a)
{
	char ns[96], name[600];
	struct k_arn sa, pa;
	if (k_arn_parse_cstr(a->secret, &sa)) {
		if (!k_arn_is(&sa, "secretsmanager", K_ARN_SECRET) || sa.id.len < 8 ||
		    sa.id.ptr[sa.id.len - 7] != '-') {
			fprintf(stderr, "kinko policy simulate: --secret %s is not a secret ARN\n",
				a->secret);
			return NULL;
		}
		snprintf(ns, sizeof ns, "%.*s:%.*s", (int)sa.account.len,
			 (const char *)sa.account.ptr, (int)sa.region.len,
			 (const char *)sa.region.ptr);
		snprintf(name, sizeof name, "%.*s", (int)(sa.id.len - 7), (const char *)sa.id.ptr);
	} else if (k_arn_parse_cstr(a->principal, &pa) && pa.account.len > 0) {
		snprintf(ns, sizeof ns, "%.*s:%s", (int)pa.account.len,
			 (const char *)pa.account.ptr, a->region);
		snprintf(name, sizeof name, "%s", a->secret);
	} else {
		fprintf(stderr,
			"kinko policy simulate: --secret %s names no account: give its ARN\n",
			a->secret);
		return NULL;
	}
	struct storage *st = open_store(store_url);
	if (st == NULL)
		return NULL;
	json_t *j = store_doc(st, "secret", ns, name);
	if (j == NULL)
		fprintf(stderr, "kinko policy simulate: no secret %s in %s of the store %s\n", name,
			ns, store_url);
	storage_close(st);
	return j;
}

/* The key's document: from the store (--key) or made from a policy file (--key-policy). */
static json_t *simulate_key_doc(const struct simulate_args *a, const char *url)
{
	if (a->key == NULL)
		return policy_key_doc(a->policy_file, a->principal);
	struct key_ref r;
	memset(&r, 0, sizeof r);
	if (!key_ref_parse(a->key, a->principal, a->region, &r))
		return NULL;
	return load_key_doc(url, &r);
}

int cli_policy_simulate(int argc, char **argv)
{
	struct simulate_args a = {.data = "kinko-data",
				  .region = "us-east-1",
				  .ctx = json_object(),
				  .vals = json_object()};
	char url[1100];
	json_t *doc = NULL, *res = NULL;
	int status = 2;
	struct config cfg;
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	config_defaults(&cfg);
	if (!simulate_parse(argc, argv, &a)) {
		cli_command_usage(cli_command_find("policy", "simulate", NULL), stderr);
		goto out;
	}
	/* The operation tables hold the list of actions that exist. */
	if (k_failed(cli_register_tables(NULL, false, &msg))) {
		fprintf(stderr, "kinko policy simulate: %s\n", kbuf_cstr(&msg));
		goto out;
	}
	if (!simulate_store(&a, &cfg, url, sizeof url))
		goto out;
	const struct identity *id = config_find_principal(a.principal);
	if (strncasecmp(a.action, "secretsmanager:", 15) == 0) {
		/* A secret's resource policy and tags, or Resource "*" without --secret. */
		if (a.secret != NULL && (doc = load_secret_doc(url, &a)) == NULL)
			goto out;
		res = sm_simulate(a.principal, id, doc, a.action, a.region);
	} else {
		doc = simulate_key_doc(&a, url);
		if (doc == NULL)
			goto out;
		res = authz_simulate(a.principal, id, doc, a.action, a.ctx, a.vals);
	}
	simulate_warnings(res, &a, id != NULL);
	status = simulate_report(res);
out:
	kbuf_release(&msg);
	json_decref(res);
	json_decref(doc);
	json_decref(a.ctx);
	json_decref(a.vals);
	config_release();
	return status;
}
