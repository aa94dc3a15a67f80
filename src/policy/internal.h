/*
 * internal.h — what the policy module's files share: the parsed form of a
 * policy document. Not part of policy.h's contract; only src/policy/
 * includes it.
 *
 *   policy.c       parsing and validating a document into this form;
 *   policy_cond.c  the condition operators and the request's value sets;
 *   policy_eval.c  evaluating a parsed policy against a request.
 */
#ifndef KINKO_POLICY_INTERNAL_H
#define KINKO_POLICY_INTERNAL_H

#include "policy/policy.h"

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
	struct cond *conds;
	size_t n_conds;
	bool inert; /* a key-policy statement without Resource: no effect */
};

struct policy {
	struct statement *st;
	size_t n;
};

/*
 * Finds the condition operator named by the first len bytes of name
 * (without set qualifier or IfExists): sets *op and whether it is evaluated
 * as the negation of its positive form. False for an unknown name.
 */
bool policy_cond_find_op(const char *name, size_t len, enum cond_op *op, bool *negated);

/* Whether condition c holds for request r (the IAM rules for absent keys included). */
bool policy_cond_holds(const struct cond *c, const struct policy_req *r);

#endif
