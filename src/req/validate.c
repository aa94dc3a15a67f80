/*
 * validate.c — request member validation with the service model's rules
 * and AWS's message form:
 *   1 validation error detected: Value null at 'keyId' failed to satisfy
 *   constraint: Member must not be null
 * A member of the wrong JSON type is a SerializationException, as the
 * AWS JSON protocol reports it. api_fail records the message of any
 * failure a handler returns; only the pipeline renders it.
 */
#include "req/req.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/thread.h"
#include "core/banned.h"

/* The message is cut at 1 KiB; the code is returned unchanged. */
k_status api_fail(struct api_ctx *c, k_status code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	kbuf_reset(&c->err_msg);
	if (n > 0 && k_failed(kbuf_append_str(&c->err_msg, msg)))
		kbuf_reset(&c->err_msg);
	return code;
}

/* "KeyId" -> "keyId": AWS names members in lower camel case in messages. */
static void camel(const char *member, char *out, size_t n)
{
	snprintf(out, n, "%s", member);
	if (out[0] >= 'A' && out[0] <= 'Z')
		out[0] = (char)(out[0] - 'A' + 'a');
}

static K_MUST_CHECK k_status invalid(struct api_ctx *c, const char *member, const char *shown_value,
				     const char *constraint)
{
	char m[128];
	camel(member, m, sizeof m);
	if (shown_value == NULL)
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value null at '%s' failed to satisfy "
				"constraint: %s",
				m, constraint);
	if (shown_value[0] == 0)
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value at '%s' failed to satisfy "
				"constraint: %s",
				m, constraint);
	return api_fail(c, K_E_VALIDATION,
			"1 validation error detected: Value '%.256s' at '%s' failed to satisfy "
			"constraint: %s",
			shown_value, m, constraint);
}

static K_MUST_CHECK k_status wrong_type(struct api_ctx *c, const char *member, const char *want)
{
	return api_fail(c, K_E_SERIALIZATION, "Unexpected value type for member '%s': expected %s",
			member, want);
}

static K_MUST_CHECK k_status check_len(struct api_ctx *c, const char *member, const char *shown,
				       size_t len, size_t min_len, size_t max_len)
{
	char msg[128];
	if (len < min_len) {
		snprintf(msg, sizeof msg, "Member must have length greater than or equal to %zu",
			 min_len);
		return invalid(c, member, shown, msg);
	}
	if (len > max_len) {
		snprintf(msg, sizeof msg, "Member must have length less than or equal to %zu",
			 max_len);
		return invalid(c, member, shown, msg);
	}
	return K_OK;
}

k_status api_string(struct api_ctx *c, json_t *in, const char *member, bool required,
		    size_t min_len, size_t max_len, const char **out)
{
	*out = NULL;
	json_t *v = json_object_get(in, member);
	if (v == NULL || json_is_null(v)) {
		if (required)
			return invalid(c, member, NULL, "Member must not be null");
		return K_OK;
	}
	if (!json_is_string(v))
		return wrong_type(c, member, "string");
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (strlen(s) != len)
		return api_fail(c, K_E_VALIDATION, "Member '%s' contains a NUL character", member);
	GUARD(check_len(c, member, s, len, min_len, max_len));
	*out = s;
	return K_OK;
}

k_status api_enum(struct api_ctx *c, json_t *in, const char *member, bool required,
		  const char *const *allowed, const char **out)
{
	GUARD(api_string(c, in, member, required, 0, 256, out));
	if (*out == NULL)
		return K_OK;
	for (size_t i = 0; allowed[i] != NULL; i++) {
		if (strcmp(allowed[i], *out) == 0)
			return K_OK;
	}
	char set[1024] = "Member must satisfy enum value set: [";
	size_t used = strlen(set);
	for (size_t i = 0; allowed[i] != NULL && used < sizeof set - 64; i++) {
		int n = snprintf(set + used, sizeof set - used, "%s%s", i ? ", " : "", allowed[i]);
		if (n > 0)
			used += (size_t)n;
	}
	snprintf(set + used, sizeof set - used, "]");
	const char *bad = *out;
	*out = NULL;
	return invalid(c, member, bad, set);
}

k_status api_int(struct api_ctx *c, json_t *in, const char *member, bool required, int64_t min,
		 int64_t max, bool *present, int64_t *out)
{
	*present = false;
	json_t *v = json_object_get(in, member);
	if (v == NULL || json_is_null(v)) {
		if (required)
			return invalid(c, member, NULL, "Member must not be null");
		return K_OK;
	}
	if (!json_is_integer(v))
		return wrong_type(c, member, "integer");
	json_int_t n = json_integer_value(v);
	char shown[32], msg[96];
	snprintf(shown, sizeof shown, "%lld", (long long)n);
	if (n < min) {
		snprintf(msg, sizeof msg, "Member must have value greater than or equal to %lld",
			 (long long)min);
		return invalid(c, member, shown, msg);
	}
	if (n > max) {
		snprintf(msg, sizeof msg, "Member must have value less than or equal to %lld",
			 (long long)max);
		return invalid(c, member, shown, msg);
	}
	*present = true;
	*out = (int64_t)n;
	return K_OK;
}

k_status api_bool(struct api_ctx *c, json_t *in, const char *member, bool *present, bool *out)
{
	*present = false;
	*out = false;
	json_t *v = json_object_get(in, member);
	if (v == NULL || json_is_null(v))
		return K_OK;
	if (!json_is_boolean(v))
		return wrong_type(c, member, "boolean");
	*present = true;
	*out = json_is_true(v);
	return K_OK;
}

/*
 * Blob members arrive base64-encoded. Lengths in the model are of the
 * decoded bytes, and AWS never echoes a blob's value in the message.
 */
k_status api_blob(struct api_ctx *c, json_t *in, const char *member, bool required, size_t min_len,
		  size_t max_len, struct kbuf *out, bool *present)
{
	if (present)
		*present = false;
	json_t *v = json_object_get(in, member);
	if (v == NULL || json_is_null(v)) {
		if (required)
			return invalid(c, member, NULL, "Member must not be null");
		return K_OK;
	}
	if (!json_is_string(v))
		return wrong_type(c, member, "blob");
	size_t enc = json_string_length(v);
	const char *text = json_string_value(v);
	/* The decoded length is known from the text: check it before decoding. */
	if (enc % 4 == 0) {
		size_t pad = (size_t)(enc >= 1 && text[enc - 1] == '=') +
			     (size_t)(enc >= 2 && text[enc - 2] == '=');
		GUARD(check_len(c, member, "", enc / 4 * 3 - pad, min_len, max_len));
	}
	kbuf_reset(out);
	if (k_failed(kbuf_decode_base64(out, kslice_make(text, enc))))
		return api_fail(c, K_E_SERIALIZATION,
				"Base64 encoded value of member '%s' is not valid", member);
	GUARD(check_len(c, member, "", out->len, min_len, max_len));
	if (present)
		*present = true;
	return K_OK;
}

k_status api_string_map(struct api_ctx *c, json_t *in, const char *member, json_t **out)
{
	*out = NULL;
	json_t *v = json_object_get(in, member);
	if (v == NULL || json_is_null(v))
		return K_OK;
	if (!json_is_object(v))
		return wrong_type(c, member, "map");
	const char *k;
	json_t *val;
	json_object_foreach(v, k, val)
	{
		if (!json_is_string(val))
			return wrong_type(c, member, "map of strings");
	}
	*out = v;
	return K_OK;
}

k_status api_string_list(struct api_ctx *c, json_t *in, const char *member, size_t max_items,
			 size_t min_len, size_t max_len, json_t **out)
{
	*out = NULL;
	json_t *v = json_object_get(in, member);
	if (v == NULL || json_is_null(v))
		return K_OK;
	if (!json_is_array(v))
		return wrong_type(c, member, "list");
	if (json_array_size(v) > max_items) {
		char msg[96];
		snprintf(msg, sizeof msg, "Member must have length less than or equal to %zu",
			 max_items);
		return invalid(c, member, "", msg);
	}
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e))
			return wrong_type(c, member, "list of strings");
		GUARD(check_len(c, member, json_string_value(e), json_string_length(e), min_len,
				max_len));
	}
	*out = v;
	return K_OK;
}

static void *base64_make(void)
{
	struct kbuf *b = malloc(sizeof *b);
	if (b != NULL)
		kbuf_init(b, API_MAX_BASE64);
	return b;
}

static void base64_drop(void *p)
{
	kbuf_release(p);
	free(p);
}

/* The thread's base64 text buffer: a blob member costs no allocation of its own. */
static struct kthread_slot base64_slot = KTHREAD_SLOT_INIT(base64_make, base64_drop);

/*
 * The blob's base64 text is made in the thread's buffer and wiped there
 * once jansson has its copy (a Plaintext member is a secret). Base64 is
 * ASCII, so the string goes in without jansson's UTF-8 pass.
 */
k_status api_set_blob(json_t *out, const char *member, const uint8_t *p, size_t n)
{
	struct kbuf *b = kthread_get(&base64_slot);
	if (b == NULL)
		return K_E_INTERNAL;
	k_status rc = kbuf_append_base64(b, p, n);
	if (k_ok(rc) &&
	    json_object_set_new(out, member, json_stringn_nocheck(kbuf_cstr(b), b->len)) != 0)
		rc = K_E_INTERNAL;
	if (b->cap > API_BASE64_KEEP)
		kbuf_release(b);
	else
		kbuf_reset(b);
	return rc;
}

k_status api_service_error(const struct api_service *svc, k_status rc)
{
	for (size_t i = 0; svc != NULL && svc->errors != NULL && i < svc->n_errors; i++) {
		if (k_is(rc, svc->errors[i].from))
			return svc->errors[i].to;
	}
	return rc;
}
