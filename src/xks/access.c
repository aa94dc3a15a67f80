/*
 * access.c — the proxy's own authorization over requestMetadata
 * (config/xks_access.h): a refused request is the spec's 403
 * AccessDeniedException ("the operation is not authorized based on request
 * metadata"), and its audit event carries the metadata and which list of
 * the rule refused it ("For AccessDenied errors resulting from secondary
 * authorization, XKS Proxy SHOULD also log the specific statement ...
 * responsible for the denial").
 */
#include <stdio.h>
#include <string.h>

#include "config/xks.h"
#include "config/xks_access.h"
#include "core/arn.h"
#include "policy/policy.h"
#include "xks/internal.h"
#include "core/banned.h"

/* Whether text (NULL: the request does not carry it) matches one of the patterns. */
static bool any_match(char *const *patterns, size_t n, const char *text)
{
	for (size_t i = 0; text != NULL && i < n; i++) {
		if (policy_wildcard_match(patterns[i], text, false))
			return true;
	}
	return false;
}

/* The served key's account, for the audit event of a refused request. */
static void account_of(const char *id, char account[XKS_ACCOUNT_LEN])
{
	const char *arn = config_xks_key_arn(id);
	struct k_arn a;
	if (arn != NULL && k_arn_parse_cstr(arn, &a))
		snprintf(account, XKS_ACCOUNT_LEN, "%.*s", (int)a.account.len,
			 (const char *)a.account.ptr);
}

k_status xks_authorize(const struct xks_request *req, struct kslice key_id,
		       char account[XKS_ACCOUNT_LEN], struct kbuf *msg)
{
	char id[CONFIG_XKS_MAX_KEY_ID + 1];
	snprintf(id, sizeof id, "%.*s", (int)key_id.len, (const char *)key_id.ptr);
	const struct config_xks_rule *rule = config_xks_rule(id);
	if (rule == NULL)
		return K_OK;
	const char *who = req->md.aws_principal_arn, *op = req->md.kms_operation;
	if (rule->n_principals > 0 && !any_match(rule->principals, rule->n_principals, who)) {
		account_of(id, account);
		kbuf_note(msg,
			  "awsPrincipalArn %.200s may not use external key %s "
			  "(xks.authorization: aws_principal_arns)",
			  who != NULL ? who : "(none)", id);
		return K_E_ACCESS_DENIED;
	}
	if (rule->n_operations > 0 && !any_match(rule->operations, rule->n_operations, op)) {
		account_of(id, account);
		kbuf_note(msg,
			  "kmsOperation %.100s may not use external key %s "
			  "(xks.authorization: kms_operations)",
			  op != NULL ? op : "(none)", id);
		return K_E_ACCESS_DENIED;
	}
	return K_OK;
}
