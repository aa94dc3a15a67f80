/*
 * load.c — reading the configuration file into struct config and the
 * identity tables (see config.h). The file's shape is checked first by
 * config_schema_check (schema.c); the accounts go to config.c's tables.
 */
#include "config/config.h"
#include "config/accounts.h"
#include "config/schema.h"
#include "config/functions.h"
#include "config/hsm_tokens.h"
#include "config/oidc.h"
#include "config/peers.h"
#include "config/regions.h"
#include "config/xks.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/banned.h"

static void copy_str(json_t *root, const char *member, char *dst, size_t n)
{
	const char *s = json_string_value(json_object_get(root, member));
	if (s != NULL)
		snprintf(dst, n, "%s", s);
}

/*
 * A path member of the file: a relative path is taken from the folder of
 * the configuration file (not from wherever kinko was started, which under
 * a service manager is "/"), and the log says so. Refused when the result
 * does not fit.
 */
static K_MUST_CHECK k_status copy_path(json_t *root, const char *member, const char *cfg_path,
				       char *dst, size_t n, struct kbuf *msg)
{
	const char *s = json_string_value(json_object_get(root, member));
	if (s == NULL)
		return K_OK;
	int w;
	if (s[0] == '/') {
		w = snprintf(dst, n, "%s", s);
	} else {
		const char *slash = strrchr(cfg_path, '/');
		int dir_len = slash ? (int)(slash - cfg_path) : 1;
		w = snprintf(dst, n, "%.*s/%s", dir_len, slash ? cfg_path : ".", s);
		if (w >= 0 && (size_t)w < n)
			LOG_INFO("config: %s \"%s\" is relative to the configuration file: %s",
				 member, s, dst);
	}
	if (w < 0 || (size_t)w >= n) {
		kbuf_note(msg, "%s is too long (at most %zu bytes)", member, n - 1);
		return K_E_VALIDATION;
	}
	return K_OK;
}

static K_MUST_CHECK k_status load_listen(json_t *root, struct config *cfg, struct kbuf *msg)
{
	const char *listen = json_string_value(json_object_get(root, "listen"));
	if (listen == NULL)
		return K_OK;
	const char *colon = strrchr(listen, ':');
	char *end = NULL;
	unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
	if (colon == NULL || end == NULL || *end != 0 || port == 0 || port > 65535 ||
	    (size_t)(colon - listen) >= sizeof cfg->listen_host) {
		kbuf_note(msg, "bad \"listen\" address: %s", listen);
		return K_E_VALIDATION;
	}
	snprintf(cfg->listen_host, sizeof cfg->listen_host, "%.*s", (int)(colon - listen), listen);
	cfg->listen_port = (unsigned)port;
	return K_OK;
}

static K_MUST_CHECK k_status load_paths(json_t *root, const char *path, struct config *cfg,
					struct kbuf *msg)
{
	GUARD(copy_path(root, "data_dir", path, cfg->data_dir, sizeof cfg->data_dir, msg));
	const char *rk = json_string_value(json_object_get(root, "root_key_file"));
	if (rk != NULL && strncmp(rk, "pkcs11:", 7) == 0) /* a key in a token: a URI, not a path */
		copy_str(root, "root_key_file", cfg->root_key_file, sizeof cfg->root_key_file);
	else
		GUARD(copy_path(root, "root_key_file", path, cfg->root_key_file,
				sizeof cfg->root_key_file, msg));
	GUARD(copy_path(root, "tls_cert_file", path, cfg->tls_cert_file, sizeof cfg->tls_cert_file,
			msg));
	GUARD(copy_path(root, "tls_key_file", path, cfg->tls_key_file, sizeof cfg->tls_key_file,
			msg));
	GUARD(copy_path(root, "audit_witness_file", path, cfg->audit_witness_file,
			sizeof cfg->audit_witness_file, msg));
	/* HTTPS: a certificate and its key. */
	if ((cfg->tls_cert_file[0] == 0) != (cfg->tls_key_file[0] == 0)) {
		kbuf_note(msg, "%s", "\"tls_cert_file\" and \"tls_key_file\" go together");
		return K_E_VALIDATION;
	}
	copy_str(root, "store", cfg->store_url, sizeof cfg->store_url);
	copy_str(root, "node_id", cfg->node_id, sizeof cfg->node_id);
	copy_str(root, "log_format", cfg->log_format, sizeof cfg->log_format);
	return K_OK;
}

/* A whole-number member (its range checked by config_schema_check), or `current`. */
static unsigned uint_member(json_t *root, const char *member, unsigned current)
{
	json_t *v = json_object_get(root, member);
	return json_is_integer(v) ? (unsigned)json_integer_value(v) : current;
}

/* Connection limits, timeouts, the audit digests' period, and the switches. */
static void load_settings(json_t *root, struct config *cfg)
{
	cfg->threads = uint_member(root, "threads", cfg->threads);
	cfg->max_connections = uint_member(root, "max_connections", cfg->max_connections);
	cfg->per_ip_connections = uint_member(root, "per_ip_connections", cfg->per_ip_connections);
	cfg->idle_timeout_s = uint_member(root, "idle_timeout_s", cfg->idle_timeout_s);
	cfg->header_timeout_s = uint_member(root, "header_timeout_s", cfg->header_timeout_s);
	cfg->body_timeout_s = uint_member(root, "body_timeout_s", cfg->body_timeout_s);
	cfg->audit_digest_seconds =
		uint_member(root, "audit_digest_seconds", cfg->audit_digest_seconds);
	cfg->root_key_in_data_ok = json_is_true(json_object_get(root, "root_key_in_data_dir_ok"));
	cfg->test_mode_outside_dev = json_is_true(json_object_get(root, CONFIG_TEST_MODE_SWITCH));
	cfg->audit_witness_syslog = json_is_true(json_object_get(root, "audit_witness_syslog"));
}

/*
 * Reads the configuration file into cfg and the identity tables. The file's
 * shape (members, types, ranges) is checked first, by config_schema_check.
 */
k_status config_load_file(struct config *cfg, const char *path, struct kbuf *msg)
{
	json_error_t err;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL || !json_is_object(root)) {
		kbuf_note(msg, "%s:%d: %s", path, err.line, root ? "not an object" : err.text);
		json_decref(root);
		return K_E_VALIDATION;
	}
	k_status rc = config_schema_check(root, msg);
	if (k_ok(rc))
		rc = load_listen(root, cfg, msg);
	if (k_ok(rc))
		rc = load_paths(root, path, cfg, msg);
	if (k_ok(rc)) {
		load_settings(root, cfg);
		rc = config_load_accounts(json_object_get(root, "accounts"), msg);
	}
	if (k_ok(rc))
		rc = config_regions_load(json_object_get(root, "regions"), msg);
	/* Secrets Manager rotation functions (config/functions.h). */
	if (k_ok(rc))
		rc = config_functions_load(json_object_get(root, "rotation_functions"), msg);
	/* OpenID Connect providers for AssumeRoleWithWebIdentity (config/oidc.h). */
	if (k_ok(rc))
		rc = config_oidc_load(json_object_get(root, "oidc_providers"), path, msg);
	/* kinko as an XKS proxy (config/xks.h). */
	if (k_ok(rc))
		rc = config_xks_load(json_object_get(root, "xks"), path, msg);
	/* PKCS#11 tokens for custom key stores (config/hsm_tokens.h). */
	if (k_ok(rc))
		rc = config_hsm_tokens_load(json_object_get(root, "hsm_tokens"), path, msg);
	/* Peer deployments of multi-Region keys (config/peers.h). */
	if (k_ok(rc))
		rc = config_peers_load(json_object_get(root, "peers"), path, msg);
	json_decref(root);
	return rc;
}
