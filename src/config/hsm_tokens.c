/*
 * hsm_tokens.c — the configuration's "hsm_tokens" (config/hsm_tokens.h).
 */
#include "config/hsm_tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/pkcs11.h"
#include "core/banned.h"

#define HSM_PATH_MAX 1024

/* The whole of a PEM file, at most P11_MAX_ANCHOR bytes; NULL on failure. */
static char *read_anchor(const char *file, const char *cfg_path)
{
	char path[HSM_PATH_MAX];
	const char *slash = strrchr(cfg_path, '/');
	int w = file[0] == '/' || slash == NULL ? snprintf(path, sizeof path, "%s", file)
						: snprintf(path, sizeof path, "%.*s/%s",
							   (int)(slash - cfg_path), cfg_path, file);
	if (w < 0 || (size_t)w >= sizeof path)
		return NULL;
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return NULL;
	char *text = calloc(1, P11_MAX_ANCHOR + 1);
	size_t n = text != NULL ? fread(text, 1, P11_MAX_ANCHOR + 1, fp) : 0;
	fclose(fp);
	if (text == NULL || n == 0 || n > P11_MAX_ANCHOR || strstr(text, "-----BEGIN") == NULL) {
		free(text);
		return NULL;
	}
	return text;
}

static K_MUST_CHECK k_status load_one(const json_t *e, const char *cfg_path, struct kbuf *msg)
{
	const char *id = json_string_value(json_object_get(e, "id"));
	const char *module = json_string_value(json_object_get(e, "module"));
	const char *label = json_string_value(json_object_get(e, "token_label"));
	const char *anchor_file = json_string_value(json_object_get(e, "trust_anchor_file"));
	json_t *slot = json_object_get(e, "slot");
	if (!keystore_p11_id_valid(id)) {
		kbuf_note(msg,
			  "hsm_tokens: id %s is not cluster- followed by 11 characters of "
			  "a-z and 2-7",
			  id ? id : "(missing)");
		return K_E_VALIDATION;
	}
	if (module == NULL || module[0] != '/' || anchor_file == NULL ||
	    (label == NULL) == (slot == NULL)) {
		kbuf_note(msg,
			  "hsm_tokens %s: needs module (an absolute path), trust_anchor_file "
			  "and one of token_label or slot",
			  id);
		return K_E_VALIDATION;
	}
	if (label != NULL && (label[0] == 0 || strlen(label) > 32)) {
		kbuf_note(msg, "hsm_tokens %s: token_label must be 1 to 32 characters", id);
		return K_E_VALIDATION;
	}
	char *anchor = read_anchor(anchor_file, cfg_path);
	if (anchor == NULL) {
		kbuf_note(msg, "hsm_tokens %s: cannot read a PEM certificate from %s", id,
			  anchor_file);
		return K_E_VALIDATION;
	}
	struct p11_token_config cfg = {
		.id = id,
		.module = module,
		.label = label,
		.slot = slot != NULL ? (long)json_integer_value(slot) : -1,
		.trust_anchor = anchor,
	};
	k_status rc = keystore_p11_add_token(&cfg);
	free(anchor);
	if (k_is(rc, K_E_ALREADY_EXISTS))
		kbuf_note(msg, "hsm_tokens: %s is declared twice", id);
	else if (k_failed(rc))
		kbuf_note(msg, "hsm_tokens %s: cannot be declared (at most %d tokens)", id,
			  P11_MAX_TOKENS);
	return k_failed(rc) ? K_E_VALIDATION : K_OK;
}

k_status config_hsm_tokens_load(const json_t *list, const char *cfg_path, struct kbuf *msg)
{
	size_t i;
	const json_t *e;
	json_array_foreach(list, i, e)
	{
		GUARD(load_one(e, cfg_path, msg));
	}
	return K_OK;
}
