/*
 * policy_eval.c — evaluating a parsed policy against a request: wildcard
 * matching, the request context, principal, action and resource matching,
 * and how Allow and Deny statements combine.
 */
#include "policy/internal.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/arn.h"
#include "core/banned.h"

bool policy_wildcard_match_lit(const char *pat0, const bool *lit, const char *s, bool nocase)
{
	const char *pat = pat0, *star = NULL, *mark = NULL;
	while (*s) {
		char pc = *pat, sc = *s;
		if (nocase) {
			pc = (char)tolower((unsigned char)pc);
			sc = (char)tolower((unsigned char)sc);
		}
		bool wild = *pat != 0 && (lit == NULL || !lit[pat - pat0]);
		if (*pat == '*' && wild) {
			star = pat++;
			mark = s;
		} else if (*pat != 0 && ((*pat == '?' && wild) || pc == sc)) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++mark;
		} else {
			return false;
		}
	}
	while (*pat == '*' && (lit == NULL || !lit[pat - pat0]))
		pat++;
	return *pat == 0;
}

bool policy_wildcard_match(const char *pat, const char *s, bool nocase)
{
	return policy_wildcard_match_lit(pat, NULL, s, nocase);
}

bool policy_req_add(struct policy_req *r, struct policy_value v)
{
	if (r->n_values >= POLICY_MAX_VALUES)
		return false;
	r->values[r->n_values++] = v;
	return true;
}

bool policy_req_add_str(struct policy_req *r, const char *key, const char *value)
{
	if (value == NULL)
		return true;
	return policy_req_add(r,
			      (struct policy_value){.key = key, .kind = PV_STRING, .str = value});
}

enum pmatch {
	PM_NONE,
	PM_ACCOUNT,
	PM_DIRECT
};

static enum pmatch principal_match(const struct statement *s, const struct policy_req *r)
{
	if (s->any_principal)
		return PM_DIRECT;
	enum pmatch best = PM_NONE;
	for (size_t i = 0; i < s->service.n; i++) {
		if (r->service != NULL && strcmp(s->service.v[i], r->service) == 0)
			return PM_DIRECT;
	}
	for (size_t i = 0; i < s->federated.n; i++) {
		if (r->federated != NULL && strcmp(s->federated.v[i], r->federated) == 0)
			return PM_DIRECT;
	}
	for (size_t i = 0; i < s->aws.n; i++) {
		const char *a = s->aws.v[i];
		if (r->principal_arn != NULL && strcmp(a, r->principal_arn) == 0)
			return PM_DIRECT;
		if (r->role_arn != NULL && strcmp(a, r->role_arn) == 0)
			return PM_DIRECT;
		/* "arn:aws:iam::ACCOUNT:root" names the account. */
		struct k_arn pa;
		if (r->principal_account != NULL && k_arn_parse_cstr(a, &pa) &&
		    k_arn_is(&pa, "iam", K_ARN_ROOT) &&
		    kslice_eq_cstr(pa.account, r->principal_account))
			best = PM_ACCOUNT;
	}
	return best;
}

/*
 * Whether one of a statement's Resource (or NotResource) patterns matches
 * the request's resource. A pattern whose variables have no value matches
 * nothing (policy_vars.c).
 */
static bool resource_matches(const struct statement *s, const struct policy_req *r)
{
	const char *res = r->resource ? r->resource : "*";
	for (size_t i = 0; i < s->resources.n; i++) {
		const char *pat = s->resources.v[i];
		if (!s->resource_vars || !policy_has_variable(pat)) {
			if (policy_wildcard_match(pat, res, false))
				return true;
			continue;
		}
		struct policy_expansion e;
		if (policy_expand(pat, r, &e) &&
		    policy_wildcard_match_lit(e.text, e.literal, res, false))
			return true;
	}
	return false;
}

/* Whether a statement applies; *pm receives how its principal matched. */
static bool statement_applies(const struct statement *s, const struct policy_req *r,
			      enum pmatch *pm)
{
	*pm = PM_DIRECT;
	if (s->inert)
		return false;
	if (s->has_principal) {
		enum pmatch m = principal_match(s, r);
		if (s->not_principal)
			*pm = m == PM_DIRECT ? PM_NONE : PM_DIRECT;
		else
			*pm = m;
		if (*pm == PM_NONE)
			return false;
	}
	bool am = false;
	for (size_t i = 0; i < s->actions.n && !am; i++)
		am = policy_wildcard_match(s->actions.v[i], r->action, true);
	if (am == s->not_action)
		return false;
	if (s->has_resource && resource_matches(s, r) == s->not_resource)
		return false;
	for (size_t i = 0; i < s->n_conds; i++) {
		if (!policy_cond_holds(&s->conds[i], r))
			return false;
	}
	return true;
}

void policy_evaluate(const struct policy *p, const struct policy_req *r, struct policy_result *out)
{
	memset(out, 0, sizeof *out);
	out->deny_index = -1;
	out->allow_index = -1;
	out->deny_sid = "";
	out->allow_sid = "";
	for (size_t i = 0; p != NULL && i < p->n; i++) {
		const struct statement *s = &p->st[i];
		enum pmatch pm;
		if (!statement_applies(s, r, &pm))
			continue;
		if (s->deny) {
			if (!out->explicit_deny) {
				out->explicit_deny = true;
				out->deny_index = (int)i;
				out->deny_sid = s->sid;
			}
			continue;
		}
		bool first = !out->allow_direct && !out->allow_account;
		if (pm == PM_DIRECT && !out->allow_direct) {
			out->allow_direct = true;
			out->allow_index = (int)i;
			out->allow_sid = s->sid;
		} else if (pm == PM_ACCOUNT) {
			out->allow_account = true;
			if (first) {
				out->allow_index = (int)i;
				out->allow_sid = s->sid;
			}
		}
	}
}

bool policy_allows(const struct policy *p, const struct policy_req *r)
{
	struct policy_result res;
	policy_evaluate(p, r, &res);
	return !res.explicit_deny && (res.allow_direct || res.allow_account);
}

bool policy_uses_key(const struct policy *p, const char *key)
{
	for (size_t i = 0; p != NULL && i < p->n; i++) {
		for (size_t j = 0; j < p->st[i].n_conds; j++) {
			if (strcasecmp(p->st[i].conds[j].key, key) == 0)
				return true;
		}
	}
	return false;
}
