/*
 * accounts.h — inside config/: the "accounts" member of the file installed
 * into the identity tables (config.c), called by the file loader (load.c).
 */
#ifndef KINKO_CONFIG_ACCOUNTS_H
#define KINKO_CONFIG_ACCOUNTS_H

#include <jansson.h>

#include "core/buf.h"
#include "core/result.h"

/* Users, keys, roles and tags of every account; a message in msg on refusal. */
K_MUST_CHECK k_status config_load_accounts(json_t *accounts, struct kbuf *msg);

#endif
