/*
 * authz.h — the KMS authorization step: key policy + identity policies +
 * grants, evaluated with IAM's logic, for every operation.
 *
 * Where it runs:
 *   - kms_resolve_key() authorizes the caller on the key it resolves, with
 *     the operation's IAM action (c->op->action) unless the handler set
 *     c->authz.action first (ReEncrypt: kms:ReEncryptFrom on the source,
 *     kms:ReEncryptTo on the destination). A handler that finds a key by
 *     other means (a ciphertext's key, kms_resolve_ciphertext) calls
 *     authz_key() itself.
 *   - operations that act on no key (CreateKey, ListKeys, ListAliases,
 *     GenerateRandom, ListRetirableGrants, custom key stores) are
 *     authorized by kms_authorize(), the service's authorize hook, against
 *     the caller's identity policies with Resource "*"; alias operations
 *     also need the action on the alias ARN there.
 * kms_authorize() also fills c->authz from the request body (encryption
 * context, algorithm, grant tokens, Operations, Tags, the alias named by
 * KeyId), so the condition keys are available to every later check.
 *
 * The rules (https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html,
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
 *   1. an explicit Deny in the key policy or an identity policy refuses;
 *   2. same account: the key policy allows the principal, or it allows
 *      the account (its root) and an identity policy allows the principal;
 *   3. another account: the key policy allows the principal or its
 *      account, and the caller's identity policy allows it too;
 *   4. a grant on the key whose grantee is the principal (or the role of
 *      an assumed-role session) and whose operations include the action
 *      allows it, within its encryption-context constraints (read from
 *      the key's grant cache, kms/grants.h: no storage read per request).
 * The account root has implicit identity permissions in its own account.
 *
 * Denials are AccessDeniedException with AWS's message:
 *   "User: ARN is not authorized to perform: kms:Decrypt on resource:
 *    KEY_ARN because no resource-based policy allows the kms:Decrypt action"
 * (or "... with an explicit deny in a resource-based policy", "... because
 * no identity-based policy allows ...", "... with an explicit deny in an
 * identity-based policy").
 *
 * kms:ViaService: an internal caller (Secrets Manager calling KMS for a
 * user) sets c->authz.via_service to "secretsmanager.REGION.amazonaws.com"
 * on the api_ctx it passes to the KMS functions, with authz_set_via_service();
 * the caller's principal stays the user's, as in AWS. A grant request made
 * that way also gets kms:GrantIsForAWSResource = true.
 *
 * Performance: a key's policy is parsed once per key snapshot
 * (authz_parse_key_policy, called when the snapshot is built) and identity
 * policies once at config load; a check allocates nothing and takes no lock.
 */
#ifndef KINKO_KMS_AUTHZ_H
#define KINKO_KMS_AUTHZ_H

#include <jansson.h>
#include <stdbool.h>
#include "req/req.h"
#include "core/result.h"

struct kms_key;
struct policy;

/*
 * The key of Decrypt's ciphertext (the pipeline's CIPHERTEXT kind;
 * ops_crypto.c): validates the row's member (CiphertextBlob) and the
 * other members Decrypt takes, then resolves and authorizes the key the
 * blob's header names, which must be KeyId's when one is given
 * (IncorrectKeyException), or KeyId's for RSAES-OAEP. *out is a
 * reference the caller releases. The key-state rule is the caller's.
 */
K_MUST_CHECK k_status kms_resolve_ciphertext(struct api_ctx *c, json_t *in, struct kms_key **out);

/*
 * The parsed "Policy" of a key document, shared with the other keys whose
 * policy has the same text (a reference: policy_free releases it); NULL
 * if it has none or it is invalid.
 */
struct policy *authz_parse_key_policy(const json_t *doc);

/* Authorizes c's principal for the current action (see above) on key k; sets c->authorized. */
K_MUST_CHECK k_status authz_key(struct api_ctx *c, const struct kms_key *k);
/* The same with an explicit action ("kms:ReEncryptTo"). */
K_MUST_CHECK k_status authz_key_action(struct api_ctx *c, const struct kms_key *k,
				       const char *action);
/* Identity-policy-only check of `action` on `resource` ("*" or an ARN). */
K_MUST_CHECK k_status authz_identity(struct api_ctx *c, const char *action, const char *resource);

/*
 * Key policy checks for CreateKey and PutKeyPolicy: parses `text` as a key
 * policy (MalformedPolicyDocumentException / LimitExceededException with
 * the parser's reason) and, unless `bypass`, applies AWS's lockout safety
 * check: "the principal that is making the request must have permission to
 * make a subsequent PutKeyPolicy request on the KMS key"
 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html).
 * `k` is the key being changed (NULL for CreateKey).
 */
K_MUST_CHECK k_status authz_check_new_key_policy(struct api_ctx *c, const char *text,
						 const struct kms_key *k, bool bypass);

/*
 * A grant resolved by the pipeline (API_RES_GRANT): its key (a reference)
 * and its id. Filled by kms_resolve_grant (ops_grants.c), which validates
 * GrantToken, KeyId and GrantId, finds the key (another account's by a
 * grant token), finds the grant (NotFoundException) and authorizes the
 * caller: the grant's retiring principal, its grantee when the grant
 * allows RetireGrant, or a principal whose policies allow the row's action
 * on the key. The handler takes it with kms_op_grant and releases it with
 * kms_grant_ref_release.
 */
struct kms_grant_ref {
	struct kms_key *key;
	char grant_id[129];
};
K_MUST_CHECK k_status kms_resolve_grant(struct api_ctx *c, json_t *in, struct kms_grant_ref *out);
K_MUST_CHECK k_status kms_op_grant(struct api_ctx *c, struct kms_grant_ref *out);
void kms_grant_ref_release(struct kms_grant_ref *g);

/*
 * The KMS service's authorize hook (api_service.authorize): per the row's
 * resource kind, an identity check on "*" (API_RES_NONE), the row's key
 * resolved, authorized and state-checked into c->resource (API_RES_KEY,
 * API_RES_KEY_OR_ALIAS, API_RES_OWN_KEY; API_RES_CIPHERTEXT and
 * API_RES_REENCRYPT, the key a ciphertext names), the alias and its
 * current key (API_RES_ALIAS), a grant and its key (API_RES_GRANT, a
 * struct kms_grant_ref). KMS has no API_RES_CUSTOM rows: a second key
 * (ReEncrypt's destination) comes through the checked resolver
 * kms_resolve_key. kms_release_resource drops what was resolved.
 */
K_MUST_CHECK k_status kms_authorize(struct api_ctx *c, json_t *in);
void kms_release_resource(struct api_ctx *c);

/* For internal callers: the request is made through this AWS service. */
static inline void authz_set_via_service(struct api_ctx *c, const char *service)
{
	c->authz.via_service = service;
}

/*
 * Grant tokens: validates each GrantTokens entry (InvalidGrantTokenException
 * when one is not a kinko grant token). Grants take effect at once in
 * kinko, so a valid token adds nothing beyond the grant itself.
 */
K_MUST_CHECK k_status authz_check_grant_tokens(struct api_ctx *c, const json_t *tokens);

/*
 * The policy simulator: explains whether `principal` may perform `action`
 * on the key whose stored document is `key_doc` (its policy, and its
 * grants as a "Grants" list: kms_grants_into_doc adds the grant records),
 * given an optional encryption context and extra condition values
 * (a JSON object of key -> string or list). The result object has
 * "Decision" ("allowed", "explicitDeny", "implicitDeny"), "Reason" (the
 * message a caller would get), and "Details" naming the deciding
 * statements. identity may be NULL (principals not in the config).
 */
struct identity;
json_t *authz_simulate(const char *principal_arn, const struct identity *identity,
		       const json_t *key_doc, const char *action, const json_t *context,
		       const json_t *values);

#endif
