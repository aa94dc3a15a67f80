/*
 * seed.h — `kinko serve --seed FILE` (or "seed_file" in the
 * configuration): KMS keys and Secrets Manager secrets created at start
 * for a test environment, through the operation pipeline.
 *
 * The file (docs/OPERATIONS.md, "Seeding a test environment"):
 *   {"account": "000000000000", "region": "us-east-1",
 *    "keys":    [ {"AliasName": "alias/app", ...CreateKey's members...} ],
 *    "secrets": [ {...CreateSecret's members: Name, SecretString or
 *                  SecretBinary, Description, KmsKeyId, Tags...} ]}
 * account defaults to the dev account 000000000000, region to us-east-1.
 */
#ifndef KINKO_CLI_SEED_H
#define KINKO_CLI_SEED_H

#include <stddef.h>
#include "core/buf.h"
#include "core/result.h"

/*
 * The configuration file's "seed_file" member, resolved against the
 * configuration file's folder when relative, into out (n bytes); out is
 * "" when the member is absent or config_path is NULL. K_E_VALIDATION
 * with a reason in msg when it is not a string or does not fit.
 */
K_MUST_CHECK k_status seed_file_from_config(const char *config_path, char *out, size_t n,
					    struct kbuf *msg);

/*
 * Creates what the seed file lists and is not there yet: a key whose
 * alias exists, or a secret whose name exists, is left as it is, so a
 * restart with the same file changes nothing. Each call runs the
 * operation's row (authorization, handler) as the account root and is
 * written to the audit trail as any call. Call after the services and the
 * audit trail are open, before serving. The first failure stops with
 * "seed FILE: keys[I] (NAME): Operation: Exception: message" in msg.
 */
K_MUST_CHECK k_status seed_run(const char *path, struct kbuf *msg);

/*
 * For serve: the seed file of --seed (flag_path) or else of the
 * configuration's "seed_file", run by seed_run. 0, or 1 with the reason on
 * standard error (the server must then stop).
 */
int seed_at_start(const char *flag_path, const char *config_path);

#endif
