/*
 * functions.h — rotation functions: the stand-in for AWS Lambda that
 * Secrets Manager rotation calls. Each is registered under a Lambda-style
 * ARN, in the config file ("rotation_functions") or with
 * `kinko serve --rotation-function ARN=PATH`:
 *
 *   "rotation_functions": [
 *     { "arn": "arn:aws:lambda:us-east-1:111122223333:function:pg-rotation",
 *       "command": ["/usr/lib/kinko/rotation/postgresql.py"],   (or)
 *       "url": "http://127.0.0.1:9000/rotate",
 *       "access_key_id": "AKIA...",       identity whose credentials the
 *                                          function receives (optional in
 *                                          dev mode: "test")
 *       "environment": { "EXCLUDE_CHARACTERS": "/@\"'\\" },
 *       "timeout_seconds": 300,
 *       "log_file": "/var/log/kinko/pg-rotation.log" } ]
 *
 * The table is built before serving and read-only after.
 */
#ifndef KINKO_CONFIG_FUNCTIONS_H
#define KINKO_CONFIG_FUNCTIONS_H

#include <jansson.h>
#include "core/buf.h"
#include "core/result.h"

/* Validates and adds the entries of a "rotation_functions" list (NULL: none). */
K_MUST_CHECK k_status config_functions_load(json_t *list, struct kbuf *msg);
/* Adds one local executable from "ARN=PATH" (the command-line form). */
K_MUST_CHECK k_status config_functions_add_cli(const char *spec, struct kbuf *msg);
/* The entry registered under `arn`, or NULL. Borrowed; valid until release. */
const json_t *config_function(const char *arn);
void config_functions_release(void);

#endif
