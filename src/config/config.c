/*
 * config.c — settings and the identity table (see config.h).
 */
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "core/log.h"
#include "core/banned.h"

struct identity {
	char access_key[SIGV4_MAX_ACCESS_KEY + 1];
	struct ksecret *secret;
	char account[13];
	char type[16];        /* "Root" or "IAMUser" */
	char name[128];       /* user name; empty for root */
	char principal_id[64];
	json_t *policies;     /* array of policy documents */
};

#define MAX_IDENTITIES 4096
static struct identity *ids;   /* sorted by access key after install */
static size_t n_ids;

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->listen_host, sizeof cfg->listen_host, "127.0.0.1");
	cfg->listen_port = 4599;
	snprintf(cfg->data_dir, sizeof cfg->data_dir, "kinko-data");
	cfg->max_connections = 4096;
	cfg->idle_timeout_s = 60;
}

static int cmp_identity(const void *a, const void *b)
{
	return strcmp(((const struct identity *)a)->access_key,
		      ((const struct identity *)b)->access_key);
}

/*
 * Unique ids such as AIDA... are derived from the account and user name, so
 * that they are stable across restarts.
 */
static void derive_principal_id(struct identity *id)
{
	if (strcmp(id->type, "Root") == 0) {
		snprintf(id->principal_id, sizeof id->principal_id, "%s", id->account);
		return;
	}
	unsigned char md[32];
	unsigned int mdlen = 0;
	char in[256];
	int n = snprintf(in, sizeof in, "%s/%s", id->account, id->name);
	EVP_Digest(in, (size_t)(n > 0 ? n : 0), md, &mdlen, EVP_sha256(), NULL);
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	char out[22] = "AIDA";
	for (int i = 0; i < 17; i++)
		out[4 + i] = al[md[i] & 31];
	out[21] = 0;
	snprintf(id->principal_id, sizeof id->principal_id, "%s", out);
}

static k_status add_identity(const char *account, const char *type, const char *name,
			     const char *ak, const char *sk, json_t *policies, struct kbuf *msg)
{
	if (n_ids >= MAX_IDENTITIES)
		return K_E_LIMIT_EXCEEDED;
	if (ids == NULL) {
		ids = calloc(MAX_IDENTITIES, sizeof *ids);
		if (ids == NULL)
			return K_E_INTERNAL;
	}
	size_t akl = strlen(ak), skl = strlen(sk);
	if (akl == 0 || akl > SIGV4_MAX_ACCESS_KEY || skl == 0 || skl > 256) {
		kbuf_note(msg, "access key or secret of %s has a bad length", account);
		return K_E_VALIDATION;
	}
	for (size_t i = 0; i < n_ids; i++) {
		if (strcmp(ids[i].access_key, ak) == 0) {
			kbuf_note(msg, "access key %s is declared twice", ak);
			return K_E_VALIDATION;
		}
	}
	struct identity *id = &ids[n_ids];
	memset(id, 0, sizeof *id);
	snprintf(id->access_key, sizeof id->access_key, "%s", ak);
	snprintf(id->account, sizeof id->account, "%s", account);
	snprintf(id->type, sizeof id->type, "%s", type);
	snprintf(id->name, sizeof id->name, "%s", name ? name : "");
	id->secret = ksecret_from((const uint8_t *)sk, skl);
	if (id->secret == NULL)
		return K_E_INTERNAL;
	id->policies = policies ? json_incref(policies) : json_array();
	derive_principal_id(id);
	n_ids++;
	qsort(ids, n_ids, sizeof *ids, cmp_identity);
	return K_OK;
}

k_status config_install_dev_identity(void)
{
	struct kbuf msg;
	kbuf_init(&msg, 256);
	k_status rc = add_identity("000000000000", "Root", NULL, "test", "test", NULL, &msg);
	kbuf_release(&msg);
	return rc;
}

static bool valid_account(const char *a)
{
	if (a == NULL || strlen(a) != 12)
		return false;
	for (int i = 0; i < 12; i++) {
		if (a[i] < '0' || a[i] > '9')
			return false;
	}
	return true;
}

static k_status load_keys(const char *account, const char *type, const char *name, json_t *keys,
			  json_t *policies, struct kbuf *msg)
{
	size_t i;
	json_t *k;
	if (keys == NULL)
		return K_OK;
	if (!json_is_array(keys)) {
		kbuf_note(msg, "access keys of account %s must be a list", account);
		return K_E_VALIDATION;
	}
	json_array_foreach(keys, i, k)
	{
		const char *ak = json_string_value(json_object_get(k, "access_key_id"));
		const char *sk = json_string_value(json_object_get(k, "secret_access_key"));
		if (ak == NULL || sk == NULL) {
			kbuf_note(msg, "an access key of account %s lacks access_key_id or secret_access_key",
					   account);
			return K_E_VALIDATION;
		}
		GUARD(add_identity(account, type, name, ak, sk, policies, msg));
	}
	return K_OK;
}

static k_status load_accounts(json_t *accounts, struct kbuf *msg)
{
	size_t i, j;
	json_t *acct, *user;
	if (accounts == NULL)
		return K_OK;
	if (!json_is_array(accounts)) {
		kbuf_note(msg, "%s", "\"accounts\" must be a list");
		return K_E_VALIDATION;
	}
	json_array_foreach(accounts, i, acct)
	{
		const char *id = json_string_value(json_object_get(acct, "id"));
		if (!valid_account(id)) {
			kbuf_note(msg, "%s", "each account needs a 12-digit \"id\"");
			return K_E_VALIDATION;
		}
		GUARD(load_keys(id, "Root", NULL, json_object_get(acct, "root_access_keys"), NULL, msg));
		json_t *users = json_object_get(acct, "users");
		if (users != NULL && !json_is_array(users)) {
			kbuf_note(msg, "users of account %s must be a list", id);
			return K_E_VALIDATION;
		}
		json_array_foreach(users, j, user)
		{
			const char *name = json_string_value(json_object_get(user, "name"));
			if (name == NULL || name[0] == 0 || strlen(name) > 64) {
				kbuf_note(msg, "a user of account %s lacks a valid name", id);
				return K_E_VALIDATION;
			}
			json_t *pol = json_object_get(user, "policies");
			if (pol != NULL && !json_is_array(pol)) {
				kbuf_note(msg, "policies of user %s must be a list", name);
				return K_E_VALIDATION;
			}
			GUARD(load_keys(id, "IAMUser", name, json_object_get(user, "access_keys"), pol, msg));
		}
	}
	return K_OK;
}

static void copy_str(json_t *root, const char *member, char *dst, size_t n)
{
	const char *s = json_string_value(json_object_get(root, member));
	if (s != NULL)
		snprintf(dst, n, "%s", s);
}

k_status config_load_file(struct config *cfg, const char *path, struct kbuf *msg)
{
	json_error_t err;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL || !json_is_object(root)) {
		kbuf_note(msg, "%s:%d: %s", path, err.line, root ? "not an object" : err.text);
		json_decref(root);
		return K_E_VALIDATION;
	}
	const char *listen = json_string_value(json_object_get(root, "listen"));
	if (listen != NULL) {
		const char *colon = strrchr(listen, ':');
		char *end = NULL;
		unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
		if (colon == NULL || end == NULL || *end != 0 || port == 0 || port > 65535 ||
		    (size_t)(colon - listen) >= sizeof cfg->listen_host) {
			kbuf_note(msg, "bad \"listen\" address: %s", listen);
			json_decref(root);
			return K_E_VALIDATION;
		}
		snprintf(cfg->listen_host, sizeof cfg->listen_host, "%.*s", (int)(colon - listen), listen);
		cfg->listen_port = (unsigned)port;
	}
	copy_str(root, "data_dir", cfg->data_dir, sizeof cfg->data_dir);
	copy_str(root, "root_key_file", cfg->root_key_file, sizeof cfg->root_key_file);
	json_t *th = json_object_get(root, "threads");
	if (json_is_integer(th) && json_integer_value(th) > 0 && json_integer_value(th) <= 256)
		cfg->threads = (unsigned)json_integer_value(th);
	json_t *mc = json_object_get(root, "max_connections");
	if (json_is_integer(mc) && json_integer_value(mc) > 0 && json_integer_value(mc) <= 65536)
		cfg->max_connections = (unsigned)json_integer_value(mc);
	k_status rc = load_accounts(json_object_get(root, "accounts"), msg);
	json_decref(root);
	return rc;
}

void config_release(void)
{
	for (size_t i = 0; i < n_ids; i++) {
		ksecret_free(ids[i].secret);
		json_decref(ids[i].policies);
	}
	free(ids);
	ids = NULL;
	n_ids = 0;
}

k_status config_lookup_access_key(const char *access_key, const struct kslice *token,
				  const struct identity **out)
{
	struct identity key;
	snprintf(key.access_key, sizeof key.access_key, "%s", access_key);
	const struct identity *id = ids ? bsearch(&key, ids, n_ids, sizeof *ids, cmp_identity) : NULL;
	if (id == NULL)
		return K_E_UNRECOGNIZED_CLIENT;
	/* Long-term keys carry no session token; a token with one is not ours. */
	if (token != NULL && token->len > 0)
		return K_E_UNRECOGNIZED_CLIENT;
	*out = id;
	return K_OK;
}

const struct ksecret *identity_secret(const struct identity *id)
{
	return id->secret;
}

void identity_principal(const struct identity *id, const char *access_key, struct principal *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->account, sizeof out->account, "%s", id->account);
	snprintf(out->type, sizeof out->type, "%s", id->type);
	snprintf(out->principal_id, sizeof out->principal_id, "%s", id->principal_id);
	snprintf(out->access_key, sizeof out->access_key, "%s", access_key);
	if (strcmp(id->type, "Root") == 0)
		snprintf(out->arn, sizeof out->arn, "arn:aws:iam::%s:root", id->account);
	else
		snprintf(out->arn, sizeof out->arn, "arn:aws:iam::%s:user/%s", id->account, id->name);
	out->identity = id;
}

const json_t *identity_policies(const struct identity *id)
{
	return id->policies;
}
