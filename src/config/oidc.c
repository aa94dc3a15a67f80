/*
 * oidc.c — the OpenID Connect identity providers of the config file
 * (oidc.h).
 */
#include "config/oidc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arn.h"
#include "core/banned.h"

struct oidc_provider {
	char account[13];
	char url[OIDC_URL_MAX + 1];
	char name[OIDC_URL_MAX + 1];
	char arn[64 + OIDC_URL_MAX]; /* arn:aws:iam::ACCOUNT:oidc-provider/NAME */
	json_t *client_ids;
	char jwks_url[OIDC_JWKS_URL_MAX + 1]; /* "" for a jwks_file */
	char ca_file[OIDC_PATH_MAX];	      /* "" for the system's CAs */
	int64_t refresh_s;
	pthread_mutex_t lock; /* guards jwks, which a fetcher replaces */
	json_t *jwks;	      /* NULL until a URL's first fetch */
};

static struct oidc_provider *providers;
static size_t n_providers;

static bool all_digits(const char *s, size_t n)
{
	if (s == NULL || strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

/* A file named in the configuration: relative to its folder unless absolute. */
static bool config_relative(const char *file, const char *cfg_path, char *path, size_t n)
{
	const char *slash = strrchr(cfg_path, '/');
	int w = file[0] == '/' || slash == NULL
			? snprintf(path, n, "%s", file)
			: snprintf(path, n, "%.*s/%s", (int)(slash - cfg_path), cfg_path, file);
	return w >= 0 && (size_t)w < n;
}

/* The JWKS file, relative to the configuration file's folder unless absolute. */
static K_MUST_CHECK k_status load_jwks(struct oidc_provider *p, const char *file,
				       const char *cfg_path, struct kbuf *msg)
{
	char path[OIDC_PATH_MAX];
	if (!config_relative(file, cfg_path, path, sizeof path)) {
		kbuf_note(msg, "oidc provider %s: jwks_file is too long", p->url);
		return K_E_VALIDATION;
	}
	json_error_t err;
	p->jwks = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	if (!json_is_array(json_object_get(p->jwks, "keys"))) {
		kbuf_note(msg, "oidc provider %s: %s is not a JWKS ({\"keys\": [...]}): %s", p->url,
			  path, p->jwks ? "no keys list" : err.text);
		return K_E_VALIDATION;
	}
	return K_OK;
}

/*
 * Where the provider's keys come from: a jwks_file read now, or a
 * jwks_url (https only) that sts/ fetches, with an optional
 * jwks_ca_file for a private CA and jwks_refresh_seconds.
 */
static K_MUST_CHECK k_status jwks_source(struct oidc_provider *p, json_t *e, const char *cfg_path,
					 struct kbuf *msg)
{
	const char *file = json_string_value(json_object_get(e, "jwks_file"));
	const char *url = json_string_value(json_object_get(e, "jwks_url"));
	const char *ca = json_string_value(json_object_get(e, "jwks_ca_file"));
	json_t *refresh = json_object_get(e, "jwks_refresh_seconds");
	if ((file == NULL) == (url == NULL)) {
		kbuf_note(msg, "oidc provider %s: give either \"jwks_file\" or \"jwks_url\"",
			  p->url);
		return K_E_VALIDATION;
	}
	if (file != NULL && (ca != NULL || refresh != NULL)) {
		kbuf_note(msg,
			  "oidc provider %s: jwks_ca_file and jwks_refresh_seconds go with "
			  "jwks_url",
			  p->url);
		return K_E_VALIDATION;
	}
	if (file != NULL)
		return load_jwks(p, file, cfg_path, msg);
	if (strncmp(url, "https://", 8) != 0 || strlen(url) <= 8 ||
	    strlen(url) > OIDC_JWKS_URL_MAX) {
		kbuf_note(msg,
			  "oidc provider %s: jwks_url must be an https:// URL of at most %d "
			  "characters",
			  p->url, OIDC_JWKS_URL_MAX);
		return K_E_VALIDATION;
	}
	snprintf(p->jwks_url, sizeof p->jwks_url, "%s", url);
	if (ca != NULL && !config_relative(ca, cfg_path, p->ca_file, sizeof p->ca_file)) {
		kbuf_note(msg, "oidc provider %s: jwks_ca_file is too long", p->url);
		return K_E_VALIDATION;
	}
	p->refresh_s = refresh != NULL ? (int64_t)json_integer_value(refresh)
				       : OIDC_JWKS_REFRESH_DEFAULT_S;
	return K_OK;
}

/*
 * One provider. IAM: the URL "must begin with https://" and is at most
 * 255 characters; client ids are 1..255 characters, at most 100.
 */
static K_MUST_CHECK k_status load_one(json_t *e, const char *cfg_path, struct kbuf *msg)
{
	const char *account = json_string_value(json_object_get(e, "account"));
	const char *url = json_string_value(json_object_get(e, "url"));
	json_t *ids = json_object_get(e, "client_ids");
	if (!all_digits(account, 12) || url == NULL || strncmp(url, "https://", 8) != 0 ||
	    strlen(url) <= 8 || strlen(url) > OIDC_URL_MAX || !json_is_array(ids) ||
	    json_array_size(ids) == 0 || json_array_size(ids) > 100) {
		kbuf_note(msg, "%s",
			  "each oidc provider needs a 12-digit \"account\", an https:// \"url\" "
			  "(at most 255 characters), \"client_ids\" (1 to 100) and a "
			  "\"jwks_file\" or \"jwks_url\"");
		return K_E_VALIDATION;
	}
	ENSURE(n_providers < OIDC_MAX_PROVIDERS, K_E_LIMIT_EXCEEDED);
	struct oidc_provider *p = &providers[n_providers];
	memset(p, 0, sizeof *p);
	pthread_mutex_init(&p->lock, NULL);
	snprintf(p->account, sizeof p->account, "%s", account);
	snprintf(p->url, sizeof p->url, "%s", url);
	snprintf(p->name, sizeof p->name, "%s", url + 8);
	size_t n = strlen(p->name);
	if (n > 0 && p->name[n - 1] == '/')
		p->name[n - 1] = 0;
	snprintf(p->arn, sizeof p->arn, "arn:aws:iam::%s:oidc-provider/%s", account, p->name);
	for (size_t i = 0; i < n_providers; i++) {
		if (strcmp(providers[i].arn, p->arn) == 0) {
			kbuf_note(msg, "oidc provider %s is declared twice", p->arn);
			return K_E_VALIDATION;
		}
	}
	p->client_ids = json_incref(ids);
	n_providers++;
	size_t i;
	json_t *c;
	json_array_foreach(ids, i, c)
	{
		size_t len = json_string_length(c);
		if (!json_is_string(c) || len == 0 || len > 255) {
			kbuf_note(msg, "oidc provider %s: client ids are 1 to 255 characters", url);
			return K_E_VALIDATION;
		}
	}
	return jwks_source(p, e, cfg_path, msg);
}

k_status config_oidc_load(json_t *list, const char *cfg_path, struct kbuf *msg)
{
	if (list == NULL)
		return K_OK;
	if (providers == NULL) {
		providers = calloc(OIDC_MAX_PROVIDERS, sizeof *providers);
		ENSURE(providers != NULL, K_E_INTERNAL);
	}
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		GUARD(load_one(e, cfg_path, msg));
	}
	return K_OK;
}

void config_oidc_release(void)
{
	for (size_t i = 0; i < n_providers; i++) {
		json_decref(providers[i].client_ids);
		json_decref(providers[i].jwks);
		pthread_mutex_destroy(&providers[i].lock);
	}
	free(providers);
	providers = NULL;
	n_providers = 0;
}

const struct oidc_provider *config_oidc_find(const char *account, const char *iss)
{
	if (account == NULL || iss == NULL)
		return NULL;
	const char *bare = strncmp(iss, "https://", 8) == 0 ? iss + 8 : iss;
	size_t n = strlen(bare);
	if (n > 0 && bare[n - 1] == '/')
		n--;
	for (size_t i = 0; i < n_providers; i++) {
		const struct oidc_provider *p = &providers[i];
		if (strcmp(p->account, account) == 0 && strlen(p->name) == n &&
		    strncmp(p->name, bare, n) == 0)
			return p;
	}
	return NULL;
}

const char *oidc_provider_arn(const struct oidc_provider *p)
{
	return p->arn;
}

const char *oidc_provider_name(const struct oidc_provider *p)
{
	return p->name;
}

const char *oidc_provider_url(const struct oidc_provider *p)
{
	return p->url;
}

bool oidc_provider_has_client(const struct oidc_provider *p, const char *aud)
{
	size_t i;
	json_t *c;
	json_array_foreach(p->client_ids, i, c)
	{
		if (aud != NULL && strcmp(json_string_value(c), aud) == 0)
			return true;
	}
	return false;
}

json_t *oidc_provider_jwks(const struct oidc_provider *p)
{
	struct oidc_provider *m = (struct oidc_provider *)p; /* the lock only */
	pthread_mutex_lock(&m->lock);
	json_t *j = json_incref(m->jwks);
	pthread_mutex_unlock(&m->lock);
	return j;
}

void oidc_provider_set_jwks(struct oidc_provider *p, json_t *jwks)
{
	pthread_mutex_lock(&p->lock);
	json_t *old = p->jwks;
	p->jwks = jwks;
	pthread_mutex_unlock(&p->lock);
	json_decref(old);
}

const char *oidc_provider_jwks_url(const struct oidc_provider *p)
{
	return p->jwks_url[0] ? p->jwks_url : NULL;
}

const char *oidc_provider_jwks_ca_file(const struct oidc_provider *p)
{
	return p->ca_file[0] ? p->ca_file : NULL;
}

int64_t oidc_provider_jwks_refresh_s(const struct oidc_provider *p)
{
	return p->refresh_s;
}

size_t config_oidc_count(void)
{
	return n_providers;
}

struct oidc_provider *config_oidc_at(size_t i)
{
	return i < n_providers ? &providers[i] : NULL;
}
