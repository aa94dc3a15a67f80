/*
 * lint.h — warnings about a configuration that loads but is likely wrong.
 */
#ifndef KINKO_CLI_LINT_H
#define KINKO_CLI_LINT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Warns (in the server log) about every Action or NotAction of the
 * configuration file's identity and trust policies that names an action of
 * a service kinko serves (kms:, secretsmanager:, sts:, kinko-test:) that
 * does not exist, such as "kms:Decrpyt", with the nearest action, as AWS's
 * policy validator flags them. Call after the operation tables are
 * registered. Returns the number of warnings.
 */
unsigned cli_lint_policy_actions(const char *config_path);

/*
 * Whether `action` ("kms:Decrypt", "kms:Get*") names an action that exists,
 * by the same list; actions of services kinko does not serve pass. When it
 * does not exist, near (n bytes) gets the nearest action within three
 * edits, or "". Call after the operation tables are registered.
 */
bool cli_action_exists(const char *action, char *near, size_t n);

#endif
