/*
 * policy.h — IAM policy documents: a parser and an evaluator.
 *
 * A policy document (key policy, identity policy or role trust policy) is
 * parsed once into an immutable struct policy; evaluation is a pure
 * function of that parsed form and a request context (struct policy_req),
 * with no allocation and no lock, so one parsed policy may be evaluated by
 * many threads at once.
 *
 * What is supported (the IAM policy grammar,
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html):
 *   Version ("2008-10-17" or "2012-10-17"), Id, Statement (one object or a
 *   list), and per statement Sid, Effect, Principal / NotPrincipal ("*",
 *   {"AWS": ...} with account ids, root, user, role and assumed-role ARNs,
 *   {"Service": ...}), Action / NotAction (wildcards * and ?, matched
 *   without regard to case), Resource / NotResource (wildcards), and
 *   Condition with the String*, Arn*, Numeric*, Date*, Bool, Null,
 *   BinaryEquals, IpAddress / NotIpAddress operators, their ...IfExists
 *   forms and the ForAnyValue: / ForAllValues: set qualifiers.
 * Policy variables ("${aws:username}", "${aws:PrincipalTag/team}", any
 * single-valued key of the request context, "${*}", "${?}", "${$}" and
 * "${key, 'default'}") are replaced in Resource / NotResource and in
 * condition values of "2012-10-17" documents when a statement is
 * evaluated; a variable without a value makes its Resource or condition
 * value match nothing (policy_vars.c).
 */
#ifndef KINKO_POLICY_POLICY_H
#define KINKO_POLICY_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "core/buf.h"
#include "core/result.h"

/* The largest policy document kinko accepts (AWS's key policy quota). */
#define POLICY_MAX_BYTES 32768

enum policy_kind {
	POLICY_RESOURCE, /* key policy: every statement needs Principal or NotPrincipal */
	POLICY_IDENTITY, /* identity policy: no Principal; Resource required */
	POLICY_TRUST,	 /* role trust policy: Principal required */
};

struct policy;

/*
 * Parses a policy document. On K_E_MALFORMED_POLICY `msg` gets the reason
 * (AWS-like wording); K_E_LIMIT_EXCEEDED when the text is longer than
 * POLICY_MAX_BYTES. On K_OK *out is owned by the caller (policy_free).
 */
K_MUST_CHECK k_status policy_parse(struct kslice text, enum policy_kind kind, struct policy **out,
				   struct kbuf *msg);
/* Parses an already-decoded JSON document (config file). */
K_MUST_CHECK k_status policy_parse_json(const json_t *doc, enum policy_kind kind,
					struct policy **out, struct kbuf *msg);
/*
 * A parsed policy is read-only once made, so several owners may share it:
 * policy_ref adds an owner (returns p), policy_free drops one and frees
 * the policy with the last.
 */
struct policy *policy_ref(struct policy *p);
void policy_free(struct policy *p);
size_t policy_statement_count(const struct policy *p);

/*
 * A condition key's value(s) in a request. Keys are matched without
 * regard to case. Kinds:
 *   PV_STRING    the one string `str` (a single-valued key)
 *   PV_STRINGS   values[0..n)
 *   PV_MAP       `key` is a prefix ("kms:EncryptionContext:"); the rest of
 *                the requested key names a member of the JSON object `json`
 *   PV_MAP_KEYS  the member names of the JSON object `json`
 *                (kms:EncryptionContextKeys)
 *   PV_TAGS      `key` is a prefix ("aws:ResourceTag/"); `json` is a list of
 *                {"TagKey","TagValue"} objects
 *   PV_TAG_KEYS  the TagKey members of such a list (aws:TagKeys)
 *   PV_JSON_LIST the strings of a JSON list (kms:GrantOperations)
 * All pointers are borrowed for the duration of the evaluation.
 */
enum policy_value_kind {
	PV_STRING,
	PV_STRINGS,
	PV_MAP,
	PV_MAP_KEYS,
	PV_TAGS,
	PV_TAG_KEYS,
	PV_JSON_LIST
};

struct policy_value {
	const char *key;
	enum policy_value_kind kind;
	const char *str;
	const char *const *values;
	size_t n;
	const json_t *json;
};

#define POLICY_MAX_VALUES 48

/*
 * Who asks to do what to which resource. `principal_arn` is the caller's
 * ARN (arn:aws:iam::A:root, :user/N, :role/R, or
 * arn:aws:sts::A:assumed-role/R/S); `role_arn` is the role of an
 * assumed-role session (a Principal naming the role matches the session),
 * NULL otherwise. `service` is set when an AWS service principal
 * ("kms.amazonaws.com") asks, NULL otherwise.
 */
struct policy_req {
	const char *principal_arn;
	const char *principal_account;
	const char *role_arn;
	const char *service;
	const char *federated; /* the OIDC provider ARN of a web identity */
	const char *action;    /* "kms:Encrypt" */
	const char *resource;  /* the key ARN, or "*" */
	struct policy_value values[POLICY_MAX_VALUES];
	size_t n_values;
};

/* Adds a condition value to a request; false when the table is full. */
bool policy_req_add(struct policy_req *r, struct policy_value v);
/* Shorthand for a single string value (NULL value: not added). */
bool policy_req_add_str(struct policy_req *r, const char *key, const char *value);

/*
 * The outcome of one policy for one request. A statement applies when its
 * principal, action, resource and conditions all match.
 *   explicit_deny   a Deny statement applies
 *   allow_direct    an Allow statement names this principal (its ARN, its
 *                   role, "*", or a service principal)
 *   allow_account   an Allow statement names the principal's account
 *                   (the account id or its root ARN) but not the principal
 *                   itself: in a key policy, this delegates to the
 *                   account's identity policies
 * For identity policies (no Principal element) every applying Allow is
 * allow_direct. `deny_sid` / `allow_sid` point at the deciding statement's
 * Sid (borrowed from the policy; "" when it has none).
 */
struct policy_result {
	bool explicit_deny;
	bool allow_direct;
	bool allow_account;
	const char *deny_sid;
	const char *allow_sid;
	int deny_index; /* statement index, -1 if none */
	int allow_index;
};

void policy_evaluate(const struct policy *p, const struct policy_req *r, struct policy_result *out);

/*
 * Whether a policy, evaluated for `r`, would allow it directly or through
 * the account (used by the lockout safety check).
 */
bool policy_allows(const struct policy *p, const struct policy_req *r);

/* Whether any statement has a condition on `key` (case-insensitive). */
bool policy_uses_key(const struct policy *p, const char *key);

/* Wildcard match (* any run, ? one character); nocase for actions. */
bool policy_wildcard_match(const char *pattern, const char *text, bool nocase);

/*
 * Checks a principal ARN as it may appear in a policy or a grant:
 * "arn:aws:iam::ACCOUNT:root|user/..|role/..", "arn:aws:sts::ACCOUNT:
 * assumed-role/R/S", or a 12-digit account id. Returns true if valid.
 */
bool policy_valid_principal(const char *s);

#endif
