/*
 * xks.c — the "xks" section of the configuration (see xks.h).
 */
#include "config/xks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/xks_access.h"
#include "core/arn.h"
#include "core/banned.h"

static struct config_xks section;

const struct config_xks *config_xks(void)
{
	return &section;
}

void config_xks_set_listen(const char *listen)
{
	kstr_copy(section.listen, sizeof section.listen, listen);
}

/* The spec's externalKeyId alphabet: A-Z a-z 0-9 hyphen, period, underscore. */
static bool key_id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CONFIG_XKS_MAX_KEY_ID)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._") == n;
}

/*
 * "XksProxyUriPath ... MUST NOT exceed 128 characters and MUST NOT include
 * any characters other than a through z, A through Z, 0 through 9, slash
 * (/), dash (-) and underscore (_)", and it ends in /kms/xks/v1
 * (aws-kms-xksproxy-api-spec, "API operations").
 */
static bool uri_path_ok(const char *s)
{
	size_t n = strlen(s);
	size_t tail = strlen(CONFIG_XKS_DEFAULT_URI_PATH);
	if (n < tail || n > CONFIG_XKS_MAX_URI_PATH || s[0] != '/')
		return false;
	if (strcmp(s + n - tail, CONFIG_XKS_DEFAULT_URI_PATH) != 0)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/-_") == n;
}

static K_MUST_CHECK k_status load_credentials(json_t *list, struct kbuf *msg)
{
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "access_key_id"));
		const char *secret = json_string_value(json_object_get(e, "secret_access_key"));
		if (id == NULL || secret == NULL || id[0] == 0 || secret[0] == 0 ||
		    strlen(id) > CONFIG_XKS_MAX_ACCESS_KEY) {
			kbuf_note(msg,
				  "xks.credentials[%zu] needs an access_key_id (1 to %d "
				  "characters) and a secret_access_key",
				  i, CONFIG_XKS_MAX_ACCESS_KEY);
			return K_E_VALIDATION;
		}
		if (section.n_credentials == CONFIG_XKS_MAX_CREDENTIALS) {
			kbuf_note(msg, "xks.credentials: at most %d", CONFIG_XKS_MAX_CREDENTIALS);
			return K_E_VALIDATION;
		}
		if (config_xks_credential(id) != NULL) {
			kbuf_note(msg, "xks.credentials: access key id %s is given twice", id);
			return K_E_VALIDATION;
		}
		struct config_xks_credential *c = &section.credentials[section.n_credentials];
		c->secret = ksecret_from((const uint8_t *)secret, strlen(secret));
		if (c->secret == NULL)
			return K_E_INTERNAL;
		kstr_copy(c->access_key_id, sizeof c->access_key_id, id);
		section.n_credentials++;
	}
	return K_OK;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(((const struct config_xks_key *)a)->external_id,
		      ((const struct config_xks_key *)b)->external_id);
}

static K_MUST_CHECK k_status load_keys(json_t *map, struct kbuf *msg)
{
	size_t n = json_object_size(map);
	if (n > CONFIG_XKS_MAX_KEYS) {
		kbuf_note(msg, "xks.keys: at most %d keys", CONFIG_XKS_MAX_KEYS);
		return K_E_VALIDATION;
	}
	section.keys = n > 0 ? calloc(n, sizeof *section.keys) : NULL;
	if (n > 0 && section.keys == NULL)
		return K_E_INTERNAL;
	const char *id;
	json_t *v;
	json_object_foreach(map, id, v)
	{
		const char *arn = json_string_value(v);
		struct k_arn a;
		if (!key_id_ok(id)) {
			kbuf_note(msg,
				  "xks.keys: \"%.140s\" is not an external key id (1 to 128 of "
				  "A-Z a-z 0-9 . - _)",
				  id);
			return K_E_VALIDATION;
		}
		if (arn == NULL || strlen(arn) >= sizeof section.keys[0].key_arn ||
		    !k_arn_parse_cstr(arn, &a) ||
		    (!k_arn_is(&a, "kms", K_ARN_KEY) && !k_arn_is(&a, "kms", K_ARN_ALIAS)) ||
		    a.region.len == 0 || a.account.len == 0) {
			kbuf_note(msg,
				  "xks.keys.%s must be a KMS key or alias ARN "
				  "(arn:aws:kms:REGION:ACCOUNT:key/ID or ...:alias/NAME)",
				  id);
			return K_E_VALIDATION;
		}
		struct config_xks_key *k = &section.keys[section.n_keys++];
		kstr_copy(k->external_id, sizeof k->external_id, id);
		kstr_copy(k->key_arn, sizeof k->key_arn, arn);
	}
	if (section.n_keys > 1)
		qsort(section.keys, section.n_keys, sizeof *section.keys, key_cmp);
	return K_OK;
}

/* A path member, relative to the configuration file's folder unless absolute. */
static K_MUST_CHECK k_status copy_path(const char *s, const char *cfg_path, char *dst, size_t n,
				       struct kbuf *msg)
{
	const char *slash = strrchr(cfg_path, '/');
	int w = s[0] == '/' || slash == NULL
			? snprintf(dst, n, "%s", s)
			: snprintf(dst, n, "%.*s/%s", (int)(slash - cfg_path), cfg_path, s);
	if (w < 0 || (size_t)w >= n) {
		kbuf_note(msg, "xks.client_ca_file is too long (at most %zu bytes)", n - 1);
		return K_E_VALIDATION;
	}
	return K_OK;
}

static K_MUST_CHECK k_status load_strings(json_t *sec, const char *cfg_path, struct kbuf *msg)
{
	const char *listen = json_string_value(json_object_get(sec, "listen"));
	const char *path = json_string_value(json_object_get(sec, "uri_path"));
	const char *region = json_string_value(json_object_get(sec, "region"));
	const char *ca = json_string_value(json_object_get(sec, "client_ca_file"));
	const char *cn = json_string_value(json_object_get(sec, "client_subject"));
	if (cn != NULL && strlen(cn) >= sizeof section.client_subject) {
		kbuf_note(msg, "xks.client_subject is too long");
		return K_E_VALIDATION;
	}
	kstr_copy(section.client_subject, sizeof section.client_subject, cn != NULL ? cn : "");
	if (listen != NULL)
		config_xks_set_listen(listen);
	if (path != NULL && !uri_path_ok(path)) {
		kbuf_note(msg,
			  "xks.uri_path \"%.140s\" must be [/PREFIX]/kms/xks/v1, at most 128 "
			  "of a-z A-Z 0-9 / - _",
			  path);
		return K_E_VALIDATION;
	}
	kstr_copy(section.uri_path, sizeof section.uri_path,
		  path != NULL ? path : CONFIG_XKS_DEFAULT_URI_PATH);
	if (region != NULL && strlen(region) >= sizeof section.region) {
		kbuf_note(msg, "xks.region is too long");
		return K_E_VALIDATION;
	}
	kstr_copy(section.region, sizeof section.region, region != NULL ? region : "");
	if (ca != NULL && ca[0] != 0)
		return copy_path(ca, cfg_path, section.client_ca_file,
				 sizeof section.client_ca_file, msg);
	return K_OK;
}

k_status config_xks_load(json_t *sec, const char *cfg_path, struct kbuf *msg)
{
	config_xks_release();
	if (sec == NULL)
		return K_OK;
	section.present = true;
	k_status rc = load_strings(sec, cfg_path, msg);
	if (k_ok(rc))
		rc = load_credentials(json_object_get(sec, "credentials"), msg);
	if (k_ok(rc))
		rc = load_keys(json_object_get(sec, "keys"), msg);
	if (k_ok(rc))
		rc = config_xks_access_load(json_object_get(sec, "authorization"), msg);
	if (k_failed(rc))
		config_xks_release();
	return rc;
}

const struct config_xks_credential *config_xks_credential(const char *access_key_id)
{
	for (size_t i = 0; i < section.n_credentials; i++) {
		if (strcmp(section.credentials[i].access_key_id, access_key_id) == 0)
			return &section.credentials[i];
	}
	return NULL;
}

const char *config_xks_key_arn(const char *external_id)
{
	struct config_xks_key probe;
	if (strlen(external_id) >= sizeof probe.external_id || section.n_keys == 0)
		return NULL;
	kstr_copy(probe.external_id, sizeof probe.external_id, external_id);
	const struct config_xks_key *k =
		bsearch(&probe, section.keys, section.n_keys, sizeof *section.keys, key_cmp);
	return k != NULL ? k->key_arn : NULL;
}

void config_xks_release(void)
{
	config_xks_access_release();
	for (size_t i = 0; i < section.n_credentials; i++)
		ksecret_free(section.credentials[i].secret);
	free(section.keys);
	char keep[sizeof section.listen];
	kstr_copy(keep, sizeof keep, section.listen); /* --xks-listen may come before the file */
	memset(&section, 0, sizeof section);
	kstr_copy(section.listen, sizeof section.listen, keep);
	kstr_copy(section.uri_path, sizeof section.uri_path, CONFIG_XKS_DEFAULT_URI_PATH);
}
