/*
 * schema.h — the configuration file's shape, checked before anything in it
 * is used.
 *
 * Every member kinko reads from the configuration file is a row of the
 * tables in schema.c, with its JSON type and, for numbers, its range. A
 * member that is not in the tables (a misspelling such as
 * "max_conections"), a value of the wrong type ("listen": 4599) or a
 * number out of range is an error naming the member's JSON path
 * (accounts[0].users[1].acces_keys) and, for an unknown member, the
 * nearest known name. Adding a configuration member means adding its row.
 */
#ifndef KINKO_CONFIG_SCHEMA_H
#define KINKO_CONFIG_SCHEMA_H

#include <jansson.h>
#include "core/buf.h"
#include "core/result.h"

/* K_OK when `root` has the configuration file's shape; otherwise
 * K_E_VALIDATION with the first problem described in msg. */
K_MUST_CHECK k_status config_schema_check(const json_t *root, struct kbuf *msg);

#endif
