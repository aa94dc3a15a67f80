/*
 * schema.c — the configuration file's members, their types and ranges
 * (schema.h).
 */
#include "config/schema.h"

#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "config/config.h"
#include "core/distance.h"
#include "core/banned.h"

enum cs_type {
	CS_STRING,
	CS_BOOL,
	CS_INT,
	CS_OBJECT,     /* members listed in sub */
	CS_OBJECTS,    /* a list of objects, each with the members in sub */
	CS_STRINGS,    /* a list of strings */
	CS_STRING_MAP, /* an object whose values are strings, any names */
	CS_POLICY,   /* a policy document: an object or a JSON string, checked where it is parsed */
	CS_POLICIES, /* a list of policy documents */
};

struct cs_member {
	const char *name;
	enum cs_type type;
	json_int_t min, max;	     /* CS_INT */
	const struct cs_member *sub; /* CS_OBJECT, CS_OBJECTS; ends with a NULL name */
};

#define END                                                                                        \
	{                                                                                          \
		NULL, CS_STRING, 0, 0, NULL                                                        \
	}

static const struct cs_member access_key[] = {
	{"access_key_id", CS_STRING, 0, 0, NULL},
	{"secret_access_key", CS_STRING, 0, 0, NULL},
	END,
};

static const struct cs_member user[] = {
	{"name", CS_STRING, 0, 0, NULL},
	{"access_keys", CS_OBJECTS, 0, 0, access_key},
	{"policies", CS_POLICIES, 0, 0, NULL},
	{"tags", CS_STRING_MAP, 0, 0, NULL},
	END,
};

static const struct cs_member role[] = {
	{"name", CS_STRING, 0, 0, NULL},       {"trust_policy", CS_POLICY, 0, 0, NULL},
	{"policies", CS_POLICIES, 0, 0, NULL}, {"max_session_duration", CS_INT, 900, 43200, NULL},
	{"tags", CS_STRING_MAP, 0, 0, NULL},   END,
};

static const struct cs_member account[] = {
	{"id", CS_STRING, 0, 0, NULL},
	{"root_access_keys", CS_OBJECTS, 0, 0, access_key},
	{"users", CS_OBJECTS, 0, 0, user},
	{"roles", CS_OBJECTS, 0, 0, role},
	END,
};

static const struct cs_member rotation_function[] = {
	{"arn", CS_STRING, 0, 0, NULL},
	{"command", CS_STRINGS, 0, 0, NULL},
	{"url", CS_STRING, 0, 0, NULL},
	{"access_key_id", CS_STRING, 0, 0, NULL},
	{"environment", CS_STRING_MAP, 0, 0, NULL},
	{"timeout_seconds", CS_INT, 1, 86400, NULL},
	{"log_file", CS_STRING, 0, 0, NULL},
	END,
};

static const struct cs_member hsm_token[] = {
	{"id", CS_STRING, 0, 0, NULL},
	{"module", CS_STRING, 0, 0, NULL},
	{"token_label", CS_STRING, 0, 0, NULL},
	{"slot", CS_INT, 0, 0xffffffffLL, NULL},
	{"trust_anchor_file", CS_STRING, 0, 0, NULL},
	END,
};

static const struct cs_member oidc_provider[] = {
	{"account", CS_STRING, 0, 0, NULL},
	{"url", CS_STRING, 0, 0, NULL},
	{"client_ids", CS_STRINGS, 0, 0, NULL},
	{"jwks_file", CS_STRING, 0, 0, NULL},
	{"jwks_url", CS_STRING, 0, 0, NULL},
	{"jwks_ca_file", CS_STRING, 0, 0, NULL},
	{"jwks_refresh_seconds", CS_INT, 60, 86400, NULL},
	END,
};

static const struct cs_member xks_rule[] = {
	{"external_key_id", CS_STRING, 0, 0, NULL},
	{"aws_principal_arns", CS_STRINGS, 0, 0, NULL},
	{"kms_operations", CS_STRINGS, 0, 0, NULL},
	END,
};

static const struct cs_member xks[] = {
	{"listen", CS_STRING, 0, 0, NULL},
	{"uri_path", CS_STRING, 0, 0, NULL},
	{"region", CS_STRING, 0, 0, NULL},
	{"client_ca_file", CS_STRING, 0, 0, NULL},
	{"client_subject", CS_STRING, 0, 0, NULL},
	{"credentials", CS_OBJECTS, 0, 0, access_key},
	{"keys", CS_STRING_MAP, 0, 0, NULL},
	{"authorization", CS_OBJECTS, 0, 0, xks_rule},
	END,
};

static const struct cs_member peer_region[] = {
	{"region", CS_STRING, 0, 0, NULL},
	{"endpoint", CS_STRING, 0, 0, NULL},
	{"ca_file", CS_STRING, 0, 0, NULL},
	{"access_key_id", CS_STRING, 0, 0, NULL},
	{"secret_access_key_file", CS_STRING, 0, 0, NULL},
	{"secret_access_key_env", CS_STRING, 0, 0, NULL},
	{"public_key_file", CS_STRING, 0, 0, NULL},
	END,
};

static const struct cs_member peers[] = {
	{"accept", CS_STRINGS, 0, 0, NULL},
	{"regions", CS_OBJECTS, 0, 0, peer_region},
	END,
};

static const struct cs_member top[] = {
	{"listen", CS_STRING, 0, 0, NULL},
	{"data_dir", CS_STRING, 0, 0, NULL},
	{"store", CS_STRING, 0, 0, NULL},
	{"root_key_file", CS_STRING, 0, 0, NULL},
	{"seed_file", CS_STRING, 0, 0, NULL},
	{"node_id", CS_STRING, 0, 0, NULL},
	{"log_format", CS_STRING, 0, 0, NULL},
	{"root_key_in_data_dir_ok", CS_BOOL, 0, 0, NULL},
	{"threads", CS_INT, 0, 256, NULL},
	{"max_connections", CS_INT, 1, 65536, NULL},
	{"per_ip_connections", CS_INT, 0, 65536, NULL},
	{"idle_timeout_s", CS_INT, 1, 3600, NULL},
	{"header_timeout_s", CS_INT, 1, 3600, NULL},
	{"body_timeout_s", CS_INT, 1, 3600, NULL},
	{"tls_cert_file", CS_STRING, 0, 0, NULL},
	{"tls_key_file", CS_STRING, 0, 0, NULL},
	{"regions", CS_STRINGS, 0, 0, NULL},
	{CONFIG_TEST_MODE_SWITCH, CS_BOOL, 0, 0, NULL},
	{"audit_digest_seconds", CS_INT, 1, 86400, NULL},
	{"audit_witness_file", CS_STRING, 0, 0, NULL},
	{"audit_witness_syslog", CS_BOOL, 0, 0, NULL},
	{"accounts", CS_OBJECTS, 0, 0, account},
	{"rotation_functions", CS_OBJECTS, 0, 0, rotation_function},
	{"oidc_providers", CS_OBJECTS, 0, 0, oidc_provider},
	{"xks", CS_OBJECT, 0, 0, xks},
	{"hsm_tokens", CS_OBJECTS, 0, 0, hsm_token},
	{"peers", CS_OBJECT, 0, 0, peers},
	END,
};

#define CS_MAX_PATH 256u

static const char *nearest(const char *name, const struct cs_member *members)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	for (const struct cs_member *m = members; m->name != NULL; m++) {
		size_t d = k_edit_distance(name, m->name);
		if (d < best_d) {
			best_d = d;
			best = m->name;
		}
	}
	/* Only a plausible misspelling: at most a third of the name changed. */
	return best_d <= 2 || best_d <= strlen(name) / 3 ? best : NULL;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "a list";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "a number";
	case JSON_REAL:
		return "a fractional number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "true or false";
	case JSON_NULL:
		return "null";
	}
	return "a value";
}

static K_MUST_CHECK k_status wrong(struct kbuf *msg, const char *path, const char *want,
				   const json_t *v)
{
	kbuf_note(msg, "\"%s\" must be %s, not %s", path, want, type_name(v));
	return K_E_VALIDATION;
}

static K_MUST_CHECK k_status check_object(const json_t *obj, const struct cs_member *members,
					  const char *path, struct kbuf *msg);

static K_MUST_CHECK k_status check_value(const json_t *v, const struct cs_member *m,
					 const char *path, struct kbuf *msg)
{
	char sub[CS_MAX_PATH];
	size_t i;
	const json_t *e;
	switch (m->type) {
	case CS_STRING:
		return json_is_string(v) ? K_OK : wrong(msg, path, "a string", v);
	case CS_BOOL:
		return json_is_boolean(v) ? K_OK : wrong(msg, path, "true or false", v);
	case CS_INT:
		if (!json_is_integer(v))
			return wrong(msg, path, "a whole number", v);
		if (json_integer_value(v) < m->min || json_integer_value(v) > m->max) {
			kbuf_note(msg, "\"%s\" must be from %lld to %lld, not %lld", path,
				  (long long)m->min, (long long)m->max,
				  (long long)json_integer_value(v));
			return K_E_VALIDATION;
		}
		return K_OK;
	case CS_OBJECT:
		if (!json_is_object(v))
			return wrong(msg, path, "an object", v);
		return check_object(v, m->sub, path, msg);
	case CS_OBJECTS:
		if (!json_is_array(v))
			return wrong(msg, path, "a list of objects", v);
		json_array_foreach(v, i, e)
		{
			snprintf(sub, sizeof sub, "%.200s[%zu]", path, i);
			if (!json_is_object(e))
				return wrong(msg, sub, "an object", e);
			GUARD(check_object(e, m->sub, sub, msg));
		}
		return K_OK;
	case CS_STRINGS:
		if (!json_is_array(v))
			return wrong(msg, path, "a list of strings", v);
		json_array_foreach(v, i, e)
		{
			snprintf(sub, sizeof sub, "%.200s[%zu]", path, i);
			if (!json_is_string(e))
				return wrong(msg, sub, "a string", e);
		}
		return K_OK;
	case CS_STRING_MAP: {
		if (!json_is_object(v))
			return wrong(msg, path, "an object of strings", v);
		const char *k;
		json_t *val;
		json_object_foreach((json_t *)v, k, val)
		{
			if (!json_is_string(val)) {
				snprintf(sub, sizeof sub, "%.200s.%.40s", path, k);
				return wrong(msg, sub, "a string", val);
			}
		}
		return K_OK;
	}
	case CS_POLICY:
		return json_is_object(v) || json_is_string(v)
			       ? K_OK
			       : wrong(msg, path, "a policy document (an object)", v);
	case CS_POLICIES:
		if (!json_is_array(v))
			return wrong(msg, path, "a list of policy documents", v);
		json_array_foreach(v, i, e)
		{
			snprintf(sub, sizeof sub, "%.200s[%zu]", path, i);
			if (!json_is_object(e) && !json_is_string(e))
				return wrong(msg, sub, "a policy document (an object)", e);
		}
		return K_OK;
	}
	return K_E_INTERNAL;
}

static K_MUST_CHECK k_status check_object(const json_t *obj, const struct cs_member *members,
					  const char *path, struct kbuf *msg)
{
	const char *k;
	json_t *v;
	char sub[CS_MAX_PATH];
	json_object_foreach((json_t *)obj, k, v)
	{
		if (path[0] != 0)
			snprintf(sub, sizeof sub, "%.200s.%.40s", path, k);
		else
			snprintf(sub, sizeof sub, "%.40s", k);
		const struct cs_member *m = members;
		while (m->name != NULL && strcmp(m->name, k) != 0)
			m++;
		if (m->name == NULL) {
			const char *near = nearest(k, members);
			if (near != NULL)
				kbuf_note(msg, "unknown member \"%s\" (did you mean \"%s\"?)", sub,
					  near);
			else
				kbuf_note(msg, "unknown member \"%s\"", sub);
			return K_E_VALIDATION;
		}
		GUARD(check_value(v, m, sub, msg));
	}
	return K_OK;
}

k_status config_schema_check(const json_t *root, struct kbuf *msg)
{
	if (!json_is_object(root))
		return wrong(msg, "the configuration", "an object", root);
	return check_object(root, top, "", msg);
}
