/*
 * xks_access.c — the "authorization" list of the "xks" section
 * (xks_access.h).
 */
#include "config/xks_access.h"

#include <stdlib.h>
#include <string.h>

#include "config/xks.h"
#include "core/banned.h"

static struct config_xks_rule *rules;
static size_t n_rules;

static void rule_free(struct config_xks_rule *r)
{
	for (size_t i = 0; i < r->n_principals; i++)
		free(r->principals[i]);
	for (size_t i = 0; i < r->n_operations; i++)
		free(r->operations[i]);
	free(r->principals);
	free(r->operations);
	free(r->external_id);
}

void config_xks_access_release(void)
{
	for (size_t i = 0; i < n_rules; i++)
		rule_free(&rules[i]);
	free(rules);
	rules = NULL;
	n_rules = 0;
}

const struct config_xks_rule *config_xks_rule(const char *external_id)
{
	for (size_t i = 0; i < n_rules; i++) {
		if (rules[i].external_id != NULL && strcmp(rules[i].external_id, external_id) == 0)
			return &rules[i];
	}
	return NULL;
}

/* A list of patterns `name` of rule i; absent: *n stays 0. */
static K_MUST_CHECK k_status patterns(json_t *rule, const char *name, size_t i, char ***out,
				      size_t *n, struct kbuf *msg)
{
	json_t *list = json_object_get(rule, name);
	if (list == NULL)
		return K_OK;
	size_t len = json_array_size(list);
	if (!json_is_array(list) || len == 0 || len > CONFIG_XKS_MAX_PATTERNS) {
		kbuf_note(msg, "xks.authorization[%zu].%s must list 1 to %d patterns", i, name,
			  CONFIG_XKS_MAX_PATTERNS);
		return K_E_VALIDATION;
	}
	*out = calloc(len, sizeof **out);
	ENSURE(*out != NULL, K_E_INTERNAL);
	size_t j;
	json_t *e;
	json_array_foreach(list, j, e)
	{
		const char *s = json_string_value(e);
		if (s == NULL || s[0] == 0 || strlen(s) > CONFIG_XKS_MAX_PATTERN) {
			kbuf_note(msg,
				  "xks.authorization[%zu].%s[%zu] must be a pattern of 1 to %d "
				  "characters",
				  i, name, j, CONFIG_XKS_MAX_PATTERN);
			return K_E_VALIDATION;
		}
		(*out)[j] = strdup(s);
		ENSURE((*out)[j] != NULL, K_E_INTERNAL);
		(*n)++;
	}
	return K_OK;
}

static K_MUST_CHECK k_status load_rule(json_t *e, size_t i, struct config_xks_rule *r,
				       struct kbuf *msg)
{
	const char *id = json_string_value(json_object_get(e, "external_key_id"));
	if (id == NULL || config_xks_key_arn(id) == NULL) {
		kbuf_note(msg, "xks.authorization[%zu].external_key_id must name a key of xks.keys",
			  i);
		return K_E_VALIDATION;
	}
	if (config_xks_rule(id) != NULL) {
		kbuf_note(msg, "xks.authorization: external key %s has two rules", id);
		return K_E_VALIDATION;
	}
	r->external_id = strdup(id);
	ENSURE(r->external_id != NULL, K_E_INTERNAL);
	GUARD(patterns(e, "aws_principal_arns", i, &r->principals, &r->n_principals, msg));
	GUARD(patterns(e, "kms_operations", i, &r->operations, &r->n_operations, msg));
	if (r->n_principals == 0 && r->n_operations == 0) {
		kbuf_note(msg, "xks.authorization[%zu] needs aws_principal_arns or kms_operations",
			  i);
		return K_E_VALIDATION;
	}
	return K_OK;
}

k_status config_xks_access_load(json_t *list, struct kbuf *msg)
{
	config_xks_access_release();
	size_t n = json_array_size(list);
	if (n == 0)
		return K_OK;
	if (n > CONFIG_XKS_MAX_KEYS) {
		kbuf_note(msg, "xks.authorization: at most %d rules", CONFIG_XKS_MAX_KEYS);
		return K_E_VALIDATION;
	}
	rules = calloc(n, sizeof *rules);
	ENSURE(rules != NULL, K_E_INTERNAL);
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		/* counted first, so that a half-loaded rule is freed by the release
		 * (its external_id is NULL until set) */
		n_rules++;
		k_status rc = load_rule(e, i, &rules[i], msg);
		if (k_failed(rc)) {
			config_xks_access_release();
			return rc;
		}
	}
	return K_OK;
}
