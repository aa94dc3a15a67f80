/*
 * rows.c — the names of an operation row's resource kinds and key-state
 * rules (req/req.h), for `kinko ops`, the row check's messages and logs.
 */
#include "req/req.h"

#include "core/banned.h"

static const char *const resource_names[] = {
	[API_RES_UNSET] = "unset",
	[API_RES_NONE] = "none",
	[API_RES_PUBLIC] = "public",
	[API_RES_KEY] = "key",
	[API_RES_KEY_OR_ALIAS] = "key-or-alias",
	[API_RES_OWN_KEY] = "own-key",
	[API_RES_ALIAS] = "alias",
	[API_RES_SECRET] = "secret",
	[API_RES_CUSTOM] = "custom",
	[API_RES_CIPHERTEXT] = "ciphertext",
	[API_RES_REENCRYPT] = "reencrypt-source",
	[API_RES_GRANT] = "grant",
};

static const char *const state_names[] = {
	[API_STATE_UNSET] = "unset",   [API_STATE_NA] = "none",
	[API_STATE_ANY] = "any",       [API_STATE_CRYPTO] = "crypto",
	[API_STATE_MANAGE] = "manage", [API_STATE_ENABLE_DISABLE] = "enable-disable",
	[API_STATE_IMPORT] = "import", [API_STATE_CANCEL_DELETION] = "cancel-deletion",
};

const char *api_resource_name(enum api_resource r)
{
	return (size_t)r < sizeof resource_names / sizeof resource_names[0] ? resource_names[r]
									    : "?";
}

const char *api_state_rule_name(enum api_state_rule st)
{
	return (size_t)st < sizeof state_names / sizeof state_names[0] ? state_names[st] : "?";
}
