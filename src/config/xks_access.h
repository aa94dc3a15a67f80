/*
 * xks_access.h — the XKS proxy's own authorization over requestMetadata:
 * the "authorization" list of the "xks" section (config/xks.h).
 *
 *   "authorization": [
 *     {"external_key_id": "orders-key",
 *      "aws_principal_arns": ["arn:aws:iam::111122223333:role/orders-*"],
 *      "kms_operations": ["Encrypt", "Decrypt", "GenerateDataKey*"]}
 *   ]
 *
 * The spec: "The XKS Proxy MAY use information presented as part of the
 * request (e.g. in the requestMetadata ...) to implement another layer of
 * fine-grained authorization controls besides those implemented by AWS
 * policies" (aws-kms-xksproxy-api-spec, "Authorization"). A key without a
 * rule takes any authenticated request, as before. A key with a rule takes
 * GetKeyMetadata, Encrypt and Decrypt only when every list the rule gives
 * matches: awsPrincipalArn one of aws_principal_arns, kmsOperation one of
 * kms_operations (patterns with * and ?, case-sensitive, as IAM's
 * StringLike); a member the request does not carry matches nothing.
 * GetHealthStatus names no key and is never refused.
 *
 * Each rule names a key of the section's "keys", once; a list, when
 * given, is not empty; a rule gives at least one list.
 */
#ifndef KINKO_CONFIG_XKS_ACCESS_H
#define KINKO_CONFIG_XKS_ACCESS_H

#include <jansson.h>
#include <stddef.h>
#include "core/buf.h"
#include "core/result.h"

#define CONFIG_XKS_MAX_PATTERNS 64
#define CONFIG_XKS_MAX_PATTERN 2048 /* the spec's ARN bound */

struct config_xks_rule {
	char *external_id;
	size_t n_principals;
	char **principals; /* awsPrincipalArn patterns; none: any */
	size_t n_operations;
	char **operations; /* kmsOperation patterns; none: any */
};

/*
 * Validates and installs the "authorization" list (NULL: none); call after
 * the section's keys are loaded. K_E_VALIDATION with the reason in msg.
 */
K_MUST_CHECK k_status config_xks_access_load(json_t *list, struct kbuf *msg);
/* The rule of an external key id, or NULL when it has none. */
const struct config_xks_rule *config_xks_rule(const char *external_id);
void config_xks_access_release(void);

#endif
