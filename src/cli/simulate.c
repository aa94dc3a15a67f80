/*
 * simulate.c — `kinko policy simulate`: reads the configuration and the
 * key's stored document (or a key policy file), asks the evaluation
 * (authz_simulate in kms/authz.c) and prints its explanation
 * (docs/AUTHORIZATION.md).
 */
#include "cli/simulate.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/json.h"
#include "kms/authz.h"
#include "storage/storage.h"
#include "core/arn.h"
#include "core/banned.h"

static void simulate_usage(FILE *f)
{
	fprintf(f,
		"usage: kinko policy simulate --config FILE --principal ARN --action kms:ACTION\n"
		"                             (--key KEY_ARN [--data DIR | --store URL] | "
		"--key-policy FILE)\n"
		"                             [--context KEY=VALUE]... [--value "
		"CONDITION_KEY=VALUE]...\n"
		"Prints a JSON explanation; exit status 0 allowed, 1 denied, 2 usage or lookup "
		"error.\n");
}

/* Reads the stored document of a key named by its ARN from the store at a URL (storage.h). */
static json_t *load_key_doc(const char *store_url, const char *arn)
{
	/* arn:aws:kms:REGION:ACCOUNT:key/ID */
	char region[64], account[13], id[64];
	struct k_arn a;
	if (!k_arn_parse_cstr(arn, &a) || !kslice_eq_cstr(a.partition, "aws") ||
	    !k_arn_is(&a, "kms", K_ARN_KEY) || a.region.len == 0 || a.region.len >= sizeof region ||
	    a.account.len != K_ARN_ACCOUNT_LEN)
		return NULL;
	snprintf(region, sizeof region, "%.*s", (int)a.region.len, (const char *)a.region.ptr);
	snprintf(account, sizeof account, "%.*s", (int)a.account.len, (const char *)a.account.ptr);
	snprintf(id, sizeof id, "%.*s", (int)a.id.len, (const char *)a.id.ptr);
	struct storage *st = NULL;
	struct kbuf why;
	kbuf_init(&why, KBUF_NOTE_MAX);
	k_status rc = storage_open(store_url, &st, &why);
	if (k_failed(rc))
		fprintf(stderr, "kinko: store: %s\n", kbuf_cstr(&why));
	kbuf_release(&why);
	if (k_failed(rc))
		return NULL;
	char ns[96];
	snprintf(ns, sizeof ns, "%s:%s", account, region);
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	int64_t ver;
	json_t *j = NULL;
	if (k_ok(storage_get(st, "key", ns, id, &doc, &ver)))
		j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	kbuf_release(&doc);
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
		else if (strcmp(f, "--key-policy") == 0)
			a->policy_file = next;
		else if (strcmp(f, "--context") == 0 && add_pair(a->ctx, next))
			continue;
		else if (strcmp(f, "--value") == 0 && add_pair(a->vals, next))
			continue;
		else
			return false;
	}
	return a->principal != NULL && a->action != NULL &&
	       (a->key == NULL) != (a->policy_file == NULL);
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

/* Prints the decision; 0 when allowed, 1 when not. */
static int simulate_report(const json_t *res)
{
	char *s = res ? json_dumps(res, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	if (s != NULL)
		printf("%s\n", s);
	kjson_free(s);
	return strcmp(json_string_value(json_object_get(res, "Decision")), "allowed") == 0 ? 0 : 1;
}

int cli_policy_simulate(int argc, char **argv)
{
	struct simulate_args a = {
		.data = "kinko-data", .ctx = json_object(), .vals = json_object()};
	char url[1100];
	json_t *doc = NULL, *res = NULL;
	int status = 2;
	struct config cfg;
	config_defaults(&cfg);
	if (!simulate_parse(argc, argv, &a)) {
		simulate_usage(stderr);
		goto out;
	}
	if (!simulate_store(&a, &cfg, url, sizeof url))
		goto out;
	if (a.key != NULL) {
		doc = load_key_doc(url, a.key);
		if (doc == NULL)
			fprintf(stderr, "kinko: key %s not found in the store %s\n", a.key, url);
	} else {
		doc = policy_key_doc(a.policy_file, a.principal);
	}
	if (doc == NULL)
		goto out;
	res = authz_simulate(a.principal, config_find_principal(a.principal), doc, a.action, a.ctx,
			     a.vals);
	status = simulate_report(res);
out:
	json_decref(res);
	json_decref(doc);
	json_decref(a.ctx);
	json_decref(a.vals);
	config_release();
	return status;
}
