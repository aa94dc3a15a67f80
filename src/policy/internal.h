/*
 * internal.h — what the policy module's files share: the parsed form of a
 * policy document. Not part of policy.h's contract; only src/policy/
 * includes it.
 *
 *   policy.c       parsing and validating a document into this form;
 *   policy_cond.c  the condition operators and the request's value sets;
 *   policy_eval.c  evaluating a parsed policy against a request;
 *   policy_vars.c  policy variables ("${aws:username}") in Resource and
 *                  condition values.
 */
#ifndef KINKO_POLICY_INTERNAL_H
#define KINKO_POLICY_INTERNAL_H

#include "policy/policy.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

enum cond_op {
	OP_STRING_EQ,
	OP_STRING_NE,
	OP_STRING_EQ_IC,
	OP_STRING_NE_IC,
	OP_STRING_LIKE,
	OP_STRING_NOT_LIKE,
	OP_NUM_EQ,
	OP_NUM_NE,
	OP_NUM_LT,
	OP_NUM_LE,
	OP_NUM_GT,
	OP_NUM_GE,
	OP_DATE_EQ,
	OP_DATE_NE,
	OP_DATE_LT,
	OP_DATE_LE,
	OP_DATE_GT,
	OP_DATE_GE,
	OP_BOOL,
	OP_BINARY_EQ,
	OP_IP,
	OP_NOT_IP,
	OP_ARN_EQ,
	OP_ARN_LIKE,
	OP_ARN_NE,
	OP_ARN_NOT_LIKE,
	OP_NULL,
};

enum set_qual {
	SET_NONE,
	SET_ANY,
	SET_ALL
};

struct strlist {
	char **v;
	size_t n;
};

struct cond {
	enum cond_op op;
	bool negated;
	bool if_exists;
	enum set_qual set;
	char *key;
	struct strlist values;
	bool vars; /* a value holds a policy variable (Version 2012-10-17) */
};

struct statement {
	char *sid;
	bool deny;
	bool has_principal; /* Principal or NotPrincipal present */
	bool not_principal;
	bool any_principal;	  /* "*" */
	struct strlist aws;	  /* normalized principal ARNs */
	struct strlist service;	  /* service principals */
	struct strlist federated; /* federated principals (OIDC provider ARNs) */
	bool not_action;
	struct strlist actions;
	bool has_resource;
	bool not_resource;
	struct strlist resources;
	bool resource_vars; /* a Resource holds a policy variable (Version 2012-10-17) */
	struct cond *conds;
	size_t n_conds;
	bool inert; /* a key-policy statement without Resource: no effect */
};

struct policy {
	struct statement *st;
	size_t n;
	atomic_int refs; /* policy_ref adds one, policy_free drops one */
};

/*
 * Finds the condition operator named by the first len bytes of name
 * (without set qualifier or IfExists): sets *op and whether it is evaluated
 * as the negation of its positive form. False for an unknown name.
 */
bool policy_cond_find_op(const char *name, size_t len, enum cond_op *op, bool *negated);

/* Whether condition c holds for request r (the IAM rules for absent keys included). */
bool policy_cond_holds(const struct cond *c, const struct policy_req *r);

/*
 * A Resource or condition value with its policy variables replaced:
 * `literal[i]` is true for the bytes that came from a variable (the
 * request's value, a default, "${*}"), which match only themselves and
 * never as wildcards.
 */
#define POLICY_VAR_MAX 2048
#define POLICY_VAR_MAX_KEY 320
struct policy_expansion {
	char text[POLICY_VAR_MAX];
	bool literal[POLICY_VAR_MAX];
	size_t len;
};

/* Whether text holds "${...}". */
bool policy_has_variable(const char *text);
/*
 * Replaces text's variables from r into *e. False when a variable has no
 * value in r and no default, or the result does not fit: then the value
 * matches nothing.
 */
bool policy_expand(const char *text, const struct policy_req *r, struct policy_expansion *e);
/* The single string value of a context key (any case), or NULL (absent or multi-valued). */
const char *policy_req_single(const struct policy_req *r, const char *key);
/* policy_wildcard_match where the pattern bytes with literal[i] set match only themselves. */
bool policy_wildcard_match_lit(const char *pattern, const bool *literal, const char *text,
			       bool nocase);

#endif
