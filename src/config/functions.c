/*
 * functions.c — the rotation-function table (see functions.h).
 */
#include "config/functions.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arn.h"
#include "core/banned.h"

static json_t *table; /* object: arn -> entry */

static bool lambda_arn(const char *arn)
{
	struct k_arn a;
	return k_arn_parse_cstr(arn, &a) && kslice_eq_cstr(a.partition, "aws") &&
	       kslice_eq_cstr(a.service, "lambda") && kslice_has_prefix(a.resource, "function:");
}

/* True if an http:// URL names this machine: localhost, 127.0.0.0/8 or [::1]. */
static bool loopback_url(const char *url)
{
	const char *h = url + 7;
	size_t n = strcspn(h, "/");
	char host[64];
	if (h[0] == '[') {
		const char *close = memchr(h, ']', n);
		if (close == NULL || (size_t)(close - h) - 1 >= sizeof host)
			return false;
		snprintf(host, sizeof host, "%.*s", (int)(close - h - 1), h + 1);
		struct in6_addr a6;
		return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	size_t hl = strcspn(h, ":/");
	if (hl == 0 || hl >= sizeof host)
		return false;
	snprintf(host, sizeof host, "%.*s", (int)hl, h);
	struct in_addr a4;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return strcasecmp(host, "localhost") == 0;
}

/* The PATH a command without a '/' is looked up in: the server's own, or the usual one. */
#define FUNCTIONS_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/*
 * Finds a command as posix_spawnp will: a name with a '/' is a path, any
 * other is looked for in PATH. False if no directory holds it.
 */
static bool find_command(const char *cmd, char *out, size_t n)
{
	if (strchr(cmd, '/') != NULL) {
		kstr_copy(out, n, cmd);
		return true;
	}
	const char *path = getenv("PATH");
	if (path == NULL || path[0] == 0)
		path = FUNCTIONS_DEFAULT_PATH;
	for (const char *p = path; *p != 0;) {
		size_t len = strcspn(p, ":");
		int w = snprintf(out, n, "%.*s/%s", (int)len, len ? p : ".", cmd);
		if (w > 0 && (size_t)w < n && access(out, F_OK) == 0)
			return true;
		p += len;
		if (*p == ':')
			p++;
	}
	return false;
}

/*
 * A rotation function's executable is checked when kinko starts, not at
 * its first rotation: it must exist, be a regular file kinko may execute,
 * and not be writable by every user (anyone could then run code with the
 * credentials the function is given).
 */
static K_MUST_CHECK k_status check_command(const char *arn, const char *cmd, struct kbuf *msg)
{
	char path[PATH_MAX];
	struct stat st;
	const char *why = NULL;
	if (!find_command(cmd, path, sizeof path) || stat(path, &st) != 0)
		why = strchr(cmd, '/') != NULL ? "does not exist" : "is not found in PATH";
	else if (!S_ISREG(st.st_mode))
		why = "is not a regular file";
	else if (access(path, X_OK) != 0)
		why = "is not executable (chmod +x it)";
	else if ((st.st_mode & S_IWOTH) != 0)
		why = "is writable by every user (chmod o-w it)";
	if (why == NULL)
		return K_OK;
	kbuf_note(msg, "rotation function %s: the executable %s %s", arn, cmd, why);
	return K_E_VALIDATION;
}

static K_MUST_CHECK k_status add_entry(json_t *e, struct kbuf *msg)
{
	const char *arn = json_string_value(json_object_get(e, "arn"));
	json_t *cmd = json_object_get(e, "command");
	const char *url = json_string_value(json_object_get(e, "url"));
	if (!lambda_arn(arn)) {
		kbuf_note(msg, "a rotation function needs an \"arn\" like "
			       "arn:aws:lambda:REGION:ACCOUNT:function:NAME");
		return K_E_VALIDATION;
	}
	bool has_cmd = json_is_array(cmd) && json_array_size(cmd) > 0;
	if (has_cmd == (url != NULL)) {
		kbuf_note(msg,
			  "rotation function %s needs exactly one of \"command\" (a list) and "
			  "\"url\"",
			  arn);
		return K_E_VALIDATION;
	}
	size_t i;
	json_t *a;
	json_array_foreach(cmd, i, a)
	{
		if (!json_is_string(a)) {
			kbuf_note(msg,
				  "the command of rotation function %s must be a list of strings",
				  arn);
			return K_E_VALIDATION;
		}
	}
	if (has_cmd)
		GUARD(check_command(arn, json_string_value(json_array_get(cmd, 0)), msg));
	if (url != NULL && strncmp(url, "http://", 7) != 0) {
		kbuf_note(msg, "rotation function %s: only http:// URLs are supported", arn);
		return K_E_VALIDATION;
	}
	/*
	 * An endpoint gets the credentials of access_key_id in request headers
	 * (secrets/rotation.c): over plain http only on this machine, so that
	 * no secret key crosses the network in clear text.
	 */
	if (url != NULL && json_object_get(e, "access_key_id") != NULL && !loopback_url(url)) {
		kbuf_note(msg,
			  "rotation function %s: an http:// endpoint with \"access_key_id\" must "
			  "be on this machine (127.0.0.0/8, [::1] or localhost); kinko does not "
			  "send a secret key over plain http to another host",
			  arn);
		return K_E_VALIDATION;
	}
	json_t *env = json_object_get(e, "environment");
	const char *k;
	json_t *v;
	if (env != NULL && !json_is_object(env)) {
		kbuf_note(msg, "the environment of rotation function %s must be an object", arn);
		return K_E_VALIDATION;
	}
	json_object_foreach(env, k, v)
	{
		if (!json_is_string(v) || strchr(k, '=') != NULL) {
			kbuf_note(msg, "rotation function %s: environment values must be strings",
				  arn);
			return K_E_VALIDATION;
		}
	}
	if (table == NULL)
		table = json_object();
	if (table == NULL || json_object_set(table, arn, e) != 0)
		return K_E_INTERNAL;
	return K_OK;
}

k_status config_functions_load(json_t *list, struct kbuf *msg)
{
	if (list == NULL)
		return K_OK;
	if (!json_is_array(list)) {
		kbuf_note(msg, "%s", "\"rotation_functions\" must be a list");
		return K_E_VALIDATION;
	}
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		if (!json_is_object(e)) {
			kbuf_note(msg, "%s", "each rotation function must be an object");
			return K_E_VALIDATION;
		}
		GUARD(add_entry(e, msg));
	}
	return K_OK;
}

k_status config_functions_add_cli(const char *spec, struct kbuf *msg)
{
	const char *eq = strchr(spec, '=');
	if (eq == NULL || eq[1] == 0) {
		kbuf_note(msg, "--rotation-function wants ARN=PATH, not %s", spec);
		return K_E_VALIDATION;
	}
	json_t *e = json_pack("{s:s%, s:[s]}", "arn", spec, (size_t)(eq - spec), "command", eq + 1);
	if (e == NULL)
		return K_E_INTERNAL;
	k_status rc = add_entry(e, msg);
	json_decref(e);
	return rc;
}

const json_t *config_function(const char *arn)
{
	return table ? json_object_get(table, arn) : NULL;
}

void config_functions_release(void)
{
	json_decref(table);
	table = NULL;
}
