/*
 * lint.c — unknown actions in the configuration's policies (lint.h).
 */
#include "cli/lint.h"

#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "api/pipeline.h"
#include "core/log.h"
#include "policy/policy.h"
#include "core/distance.h"
#include "core/banned.h"

/* The services whose action names kinko knows in full. */
static const char *const linted[] = {"kms:", "secretsmanager:", "sts:", "kinko-test:"};

/*
 * IAM actions of those services that are no operation of kinko's tables:
 * actions without an operation of their own (ReEncrypt's two halves,
 * SynchronizeMultiRegionKey, STS session tagging) and AWS operations kinko
 * does not serve yet. A policy naming them is not mistaken. The actions of
 * kinko's operations come from the operation tables.
 */
static const char *const extra_actions[] = {
	"kms:ReEncryptFrom",	  "kms:ReEncryptTo",	   "kms:SynchronizeMultiRegionKey",
	"sts:TagSession",	  "sts:SetSourceIdentity", "sts:SetContext",
	"sts:AssumeRoleWithSAML", "sts:AssumeRoot",	   "sts:GetServiceBearerToken",
};

struct lint {
	json_t *known; /* array of action strings */
	unsigned warnings;
};

static bool is_linted(const char *action)
{
	for (size_t i = 0; i < sizeof linted / sizeof linted[0]; i++)
		if (strncasecmp(action, linted[i], strlen(linted[i])) == 0)
			return true;
	return false;
}

/*
 * Whether action is one of known (wildcards in action match as IAM
 * matches them); when not, *near gets the nearest known action within
 * three edits, or NULL. *near points into known.
 */
static bool action_known(const json_t *known, const char *action, const char **near)
{
	size_t i;
	json_t *k;
	size_t near_d = SIZE_MAX;
	*near = NULL;
	json_array_foreach(known, i, k)
	{
		const char *name = json_string_value(k);
		if (policy_wildcard_match(action, name, true))
			return true;
		size_t d = k_edit_distance(action, name);
		if (d < near_d) {
			near_d = d;
			*near = name;
		}
	}
	if (near_d > 3)
		*near = NULL;
	return false;
}

static void check_action(struct lint *l, const char *where, const char *action)
{
	const char *near;
	if (!is_linted(action) || action_known(l->known, action, &near))
		return;
	l->warnings++;
	if (near != NULL)
		LOG_WARN("config: %s names the action \"%s\", which does not exist (did you mean "
			 "\"%s\"?); it matches nothing",
			 where, action, near);
	else
		LOG_WARN("config: %s names the action \"%s\", which does not exist; it matches "
			 "nothing",
			 where, action);
}

static void check_policy(struct lint *l, const char *where, json_t *doc)
{
	json_t *owned = NULL;
	if (json_is_string(doc)) {
		owned = json_loads(json_string_value(doc), 0, NULL);
		doc = owned;
	}
	json_t *stmts = json_object_get(doc, "Statement");
	json_t *one = json_is_object(stmts) ? json_pack("[O]", stmts) : json_incref(stmts);
	size_t i;
	json_t *st;
	json_array_foreach(one, i, st)
	{
		static const char *const members[] = {"Action", "NotAction"};
		for (size_t m = 0; m < 2; m++) {
			json_t *a = json_object_get(st, members[m]);
			char at[384];
			snprintf(at, sizeof at, "%.300s Statement[%zu].%s", where, i, members[m]);
			if (json_is_string(a)) {
				check_action(l, at, json_string_value(a));
			} else {
				size_t j;
				json_t *e;
				json_array_foreach(a, j, e)
				{
					if (json_is_string(e))
						check_action(l, at, json_string_value(e));
				}
			}
		}
	}
	json_decref(one);
	json_decref(owned);
}

static void check_policies(struct lint *l, const char *where, json_t *list)
{
	size_t i;
	json_t *p;
	json_array_foreach(list, i, p)
	{
		char at[320];
		snprintf(at, sizeof at, "%.280s.policies[%zu]", where, i);
		check_policy(l, at, p);
	}
}

static void collect_known(struct lint *l)
{
	json_t *tables = api_tables_json();
	size_t i;
	json_t *svc;
	json_array_foreach(tables, i, svc)
	{
		size_t j;
		json_t *op;
		json_array_foreach(json_object_get(svc, "operations"), j, op)
		{
			json_t *a = json_object_get(op, "action");
			if (json_is_string(a))
				json_array_append(l->known, a);
		}
	}
	json_decref(tables);
	for (size_t e = 0; e < sizeof extra_actions / sizeof extra_actions[0]; e++)
		json_array_append_new(l->known, json_string(extra_actions[e]));
}

unsigned cli_lint_policy_actions(const char *config_path)
{
	if (config_path == NULL)
		return 0;
	json_t *root = json_load_file(config_path, 0, NULL);
	if (root == NULL)
		return 0;
	struct lint l = {.known = json_array(), .warnings = 0};
	collect_known(&l);
	size_t a;
	json_t *acct;
	json_array_foreach(json_object_get(root, "accounts"), a, acct)
	{
		char where[160];
		size_t u;
		json_t *x;
		json_array_foreach(json_object_get(acct, "users"), u, x)
		{
			snprintf(where, sizeof where, "accounts[%zu].users[%zu]", a, u);
			check_policies(&l, where, json_object_get(x, "policies"));
		}
		json_array_foreach(json_object_get(acct, "roles"), u, x)
		{
			snprintf(where, sizeof where, "accounts[%zu].roles[%zu]", a, u);
			check_policies(&l, where, json_object_get(x, "policies"));
			char at[200];
			snprintf(at, sizeof at, "%s.trust_policy", where);
			if (json_object_get(x, "trust_policy") != NULL)
				check_policy(&l, at, json_object_get(x, "trust_policy"));
		}
	}
	json_decref(l.known);
	json_decref(root);
	return l.warnings;
}

bool cli_action_exists(const char *action, char *near, size_t n)
{
	if (n > 0)
		near[0] = 0;
	if (!is_linted(action))
		return true;
	struct lint l = {.known = json_array(), .warnings = 0};
	collect_known(&l);
	const char *nearest = NULL;
	bool known = action_known(l.known, action, &nearest);
	if (!known && nearest != NULL && n > 0)
		snprintf(near, n, "%s", nearest);
	json_decref(l.known);
	return known;
}
