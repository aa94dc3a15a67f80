/*
 * policy.c — IAM policy documents: parsing and validation into the form
 * internal.h describes (see policy.h for the contract). The condition
 * operators are in policy_cond.c, evaluation in policy_eval.c.
 */
#include "policy/internal.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arn.h"
#include "core/banned.h"

/* ---------- parsing ---------- */

static void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static K_MUST_CHECK k_status strlist_add(struct strlist *l, const char *s)
{
	char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	ENSURE(nv != NULL, K_E_INTERNAL);
	l->v = nv;
	l->v[l->n] = strdup(s);
	ENSURE(l->v[l->n] != NULL, K_E_INTERNAL);
	l->n++;
	return K_OK;
}

struct policy *policy_ref(struct policy *p)
{
	if (p != NULL)
		atomic_fetch_add(&p->refs, 1);
	return p;
}

void policy_free(struct policy *p)
{
	if (p == NULL || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	for (size_t i = 0; i < p->n; i++) {
		struct statement *s = &p->st[i];
		free(s->sid);
		strlist_free(&s->aws);
		strlist_free(&s->service);
		strlist_free(&s->federated);
		strlist_free(&s->actions);
		strlist_free(&s->resources);
		for (size_t j = 0; j < s->n_conds; j++) {
			free(s->conds[j].key);
			strlist_free(&s->conds[j].values);
		}
		free(s->conds);
	}
	free(p->st);
	free(p);
}

size_t policy_statement_count(const struct policy *p)
{
	return p ? p->n : 0;
}

static K_MUST_CHECK k_status malformed(struct kbuf *msg, const char *text)
{
	if (msg != NULL) {
		kbuf_reset(msg);
		kbuf_note(msg, "%s", text);
	}
	return K_E_MALFORMED_POLICY;
}

static bool all_digits(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/*
 * Principal ARNs: arn:PARTITION:iam::ACCOUNT:root|user/PATH/NAME|role/PATH/NAME
 * or arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION.
 */
bool policy_valid_principal(const char *s)
{
	if (s == NULL)
		return false;
	if (all_digits(s, 12))
		return true;
	struct k_arn a;
	if (!k_arn_parse_cstr(s, &a) || !kslice_eq_cstr(a.partition, "aws") || a.region.len != 0 ||
	    a.account.len != K_ARN_ACCOUNT_LEN)
		return false;
	if (kslice_eq_cstr(a.service, "sts"))
		return a.kind == K_ARN_ASSUMED_ROLE;
	if (!kslice_eq_cstr(a.service, "iam"))
		return false;
	if (a.kind == K_ARN_ROOT)
		return true;
	if (a.kind == K_ARN_USER || a.kind == K_ARN_ROLE)
		return a.id.ptr[a.id.len - 1] != '/';
	return false;
}

/* A string or a list of strings, into a strlist (the list must not be empty). */
static K_MUST_CHECK k_status read_strings(const json_t *v, struct strlist *out)
{
	if (json_is_string(v))
		return strlist_add(out, json_string_value(v));
	ENSURE(json_is_array(v) && json_array_size(v) > 0, K_E_MALFORMED_POLICY);
	size_t i;
	const json_t *e;
	json_array_foreach(v, i, e)
	{
		ENSURE(json_is_string(e), K_E_MALFORMED_POLICY);
		GUARD(strlist_add(out, json_string_value(e)));
	}
	return K_OK;
}

static K_MUST_CHECK k_status parse_principal(struct statement *s, const json_t *v, struct kbuf *msg)
{
	static const char bad[] =
		"Policy contains a statement with one or more invalid principals.";
	if (json_is_string(v)) {
		if (strcmp(json_string_value(v), "*") != 0)
			return malformed(msg, bad);
		s->any_principal = true;
		return K_OK;
	}
	if (!json_is_object(v) || json_object_size(v) == 0)
		return malformed(msg, bad);
	const char *k;
	const json_t *val;
	json_object_foreach((json_t *)v, k, val)
	{
		struct strlist l = {0};
		if (k_failed(read_strings(val, &l))) {
			strlist_free(&l);
			return malformed(msg, bad);
		}
		k_status rc = K_OK;
		for (size_t i = 0; i < l.n && k_ok(rc); i++) {
			const char *p = l.v[i];
			if (strcmp(k, "AWS") == 0) {
				if (strcmp(p, "*") == 0) {
					s->any_principal = true;
				} else if (all_digits(p, 12)) {
					char arn[K_ARN_BUF];
					struct k_arn root =
						k_arn_of("iam", "", p, K_ARN_ROOT, NULL);
					k_arn_format(&root, arn, sizeof arn);
					rc = strlist_add(&s->aws, arn);
				} else if (policy_valid_principal(p)) {
					rc = strlist_add(&s->aws, p);
				} else {
					rc = malformed(msg, bad);
				}
			} else if (strcmp(k, "Service") == 0) {
				rc = p[0] != 0 ? strlist_add(&s->service, p) : malformed(msg, bad);
			} else if (strcmp(k, "Federated") == 0) {
				rc = p[0] != 0 ? strlist_add(&s->federated, p)
					       : malformed(msg, bad);
			} else if (strcmp(k, "CanonicalUser") == 0) {
				/* Accepted, never matched: kinko has no canonical users. */
			} else {
				rc = malformed(msg, bad);
			}
		}
		strlist_free(&l);
		GUARD(rc);
	}
	return K_OK;
}

static K_MUST_CHECK k_status add_cond(struct statement *s, enum cond_op op, bool negated,
				      bool if_exists, enum set_qual set, const char *key,
				      const json_t *vals, bool vars, struct kbuf *msg)
{
	struct cond *nc = realloc(s->conds, (s->n_conds + 1) * sizeof *nc);
	ENSURE(nc != NULL, K_E_INTERNAL);
	s->conds = nc;
	struct cond *c = &s->conds[s->n_conds];
	memset(c, 0, sizeof *c);
	c->op = op;
	c->negated = negated;
	c->if_exists = if_exists;
	c->set = set;
	c->key = strdup(key);
	ENSURE(c->key != NULL, K_E_INTERNAL);
	s->n_conds++;
	const json_t *one = vals;
	size_t n = json_is_array(vals) ? json_array_size(vals) : 1;
	if (json_is_array(vals) && n == 0)
		return malformed(msg, "Policy contains a condition with an empty list of values.");
	for (size_t i = 0; i < n; i++) {
		if (json_is_array(vals))
			one = json_array_get(vals, i);
		char tmp[64];
		const char *text = NULL;
		if (json_is_string(one)) {
			text = json_string_value(one);
		} else if (json_is_boolean(one)) {
			text = json_is_true(one) ? "true" : "false";
		} else if (json_is_integer(one)) {
			snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(one));
			text = tmp;
		} else if (json_is_real(one)) {
			snprintf(tmp, sizeof tmp, "%.17g", json_real_value(one));
			text = tmp;
		} else {
			return malformed(msg, "Policy contains a condition value that is not a "
					      "string, number or boolean.");
		}
		GUARD(strlist_add(&c->values, text));
		c->vars = c->vars || (vars && policy_has_variable(text));
	}
	return K_OK;
}

/* The Condition element; vars: its values may hold policy variables. */
static K_MUST_CHECK k_status parse_condition(struct statement *s, const json_t *v, bool vars,
					     struct kbuf *msg)
{
	if (!json_is_object(v))
		return malformed(msg, "Policy contains a Condition that is not an object.");
	const char *opname;
	const json_t *block;
	json_object_foreach((json_t *)v, opname, block)
	{
		enum set_qual set = SET_NONE;
		const char *name = opname;
		if (strncmp(name, "ForAnyValue:", 12) == 0) {
			set = SET_ANY;
			name += 12;
		} else if (strncmp(name, "ForAllValues:", 13) == 0) {
			set = SET_ALL;
			name += 13;
		}
		size_t len = strlen(name);
		bool if_exists = len > 8 && strcmp(name + len - 8, "IfExists") == 0;
		if (if_exists)
			len -= 8;
		enum cond_op op;
		bool negated;
		if (!policy_cond_find_op(name, len, &op, &negated) ||
		    (op == OP_NULL && (if_exists || set != SET_NONE))) {
			kbuf_reset(msg);
			kbuf_note(msg, "Policy contains an unknown condition operator: %s", opname);
			return K_E_MALFORMED_POLICY;
		}
		if (!json_is_object(block) || json_object_size(block) == 0)
			return malformed(
				msg,
				"Policy contains a condition operator without condition keys.");
		const char *key;
		const json_t *vals;
		json_object_foreach((json_t *)block, key, vals)
		{
			if (key[0] == 0 || strlen(key) > 256)
				return malformed(msg, "Policy contains an invalid condition key.");
			GUARD(add_cond(s, op, negated, if_exists, set, key, vals, vars, msg));
		}
	}
	return K_OK;
}

static bool valid_action(const char *a)
{
	if (strcmp(a, "*") == 0)
		return true;
	const char *colon = strchr(a, ':');
	if (colon == NULL || colon == a || colon[1] == 0 || strchr(colon + 1, ':') != NULL)
		return false;
	for (const char *p = a; *p; p++) {
		if (!(isalnum((unsigned char)*p) || *p == ':' || *p == '*' || *p == '?' ||
		      *p == '-' || *p == '_'))
			return false;
	}
	return true;
}

static bool valid_resource(const char *r)
{
	if (strcmp(r, "*") == 0)
		return true;
	if (strncmp(r, "arn:", 4) != 0)
		return false;
	/* arn:partition:service:region:account:resource — six parts. */
	int colons = 0;
	for (const char *p = r; *p; p++)
		colons += *p == ':';
	return colons >= 5;
}

/* Refuses any statement element this grammar does not know. */
static K_MUST_CHECK k_status check_statement_elements(const json_t *v, struct kbuf *msg)
{
	const char *k;
	const json_t *val;
	json_object_foreach((json_t *)v, k, val)
	{
		static const char *const known[] = {
			"Sid",	     "Effect",	 "Principal",	"NotPrincipal", "Action",
			"NotAction", "Resource", "NotResource", "Condition",	NULL};
		bool ok = false;
		for (size_t i = 0; known[i] != NULL && !ok; i++)
			ok = strcmp(known[i], k) == 0;
		if (!ok) {
			kbuf_reset(msg);
			kbuf_note(msg, "Policy contains a statement with an unknown element: %s",
				  k);
			return K_E_MALFORMED_POLICY;
		}
	}
	return K_OK;
}

/* Sid (optional, a string) and Effect (Allow or Deny). */
static K_MUST_CHECK k_status parse_effect(struct statement *s, const json_t *v, struct kbuf *msg)
{
	const json_t *sid = json_object_get(v, "Sid");
	if (sid != NULL && !json_is_string(sid))
		return malformed(msg, "Policy contains a statement whose Sid is not a string.");
	s->sid = strdup(sid ? json_string_value(sid) : "");
	ENSURE(s->sid != NULL, K_E_INTERNAL);
	const char *effect = json_string_value(json_object_get(v, "Effect"));
	if (effect == NULL || (strcmp(effect, "Allow") != 0 && strcmp(effect, "Deny") != 0))
		return malformed(
			msg, "Policy contains a statement without a valid Effect (Allow or Deny).");
	s->deny = strcmp(effect, "Deny") == 0;
	return K_OK;
}

/* Principal or NotPrincipal: required by key and trust policies, refused by identity ones. */
static K_MUST_CHECK k_status parse_principal_element(struct statement *s, const json_t *v,
						     enum policy_kind kind, struct kbuf *msg)
{
	const json_t *pr = json_object_get(v, "Principal");
	const json_t *npr = json_object_get(v, "NotPrincipal");
	if (pr != NULL && npr != NULL)
		return malformed(
			msg, "Policy contains a statement with both Principal and NotPrincipal.");
	if (kind == POLICY_IDENTITY && (pr != NULL || npr != NULL))
		return malformed(msg, "Identity policies may not contain a Principal element.");
	if (kind != POLICY_IDENTITY && pr == NULL && npr == NULL)
		return malformed(msg, "Policy contains a statement with no principal.");
	if (pr != NULL || npr != NULL) {
		s->has_principal = true;
		s->not_principal = npr != NULL;
		GUARD(parse_principal(s, pr ? pr : npr, msg));
	}
	return K_OK;
}

/* Exactly one of Action or NotAction, each action valid. */
static K_MUST_CHECK k_status parse_action_element(struct statement *s, const json_t *v,
						  struct kbuf *msg)
{
	const json_t *ac = json_object_get(v, "Action");
	const json_t *nac = json_object_get(v, "NotAction");
	if ((ac == NULL) == (nac == NULL))
		return malformed(msg, "Policy contains a statement that needs exactly one of "
				      "Action or NotAction.");
	s->not_action = nac != NULL;
	if (k_failed(read_strings(ac ? ac : nac, &s->actions)))
		return malformed(msg, "Policy contains a statement with an invalid Action.");
	for (size_t i = 0; i < s->actions.n; i++) {
		if (!valid_action(s->actions.v[i])) {
			kbuf_reset(msg);
			kbuf_note(msg, "Policy contains a statement with an invalid action: %s",
				  s->actions.v[i]);
			return K_E_MALFORMED_POLICY;
		}
	}
	return K_OK;
}

/* Resource or NotResource: required by identity policies; each an ARN or "*". */
static K_MUST_CHECK k_status parse_resource_element(struct statement *s, const json_t *v,
						    enum policy_kind kind, bool vars,
						    struct kbuf *msg)
{
	const json_t *rs = json_object_get(v, "Resource");
	const json_t *nrs = json_object_get(v, "NotResource");
	if (rs != NULL && nrs != NULL)
		return malformed(msg,
				 "Policy contains a statement with both Resource and NotResource.");
	if (kind == POLICY_IDENTITY && rs == NULL && nrs == NULL)
		return malformed(msg, "Policy contains a statement with no Resource.");
	if (rs != NULL || nrs != NULL) {
		s->has_resource = true;
		s->not_resource = nrs != NULL;
		if (k_failed(read_strings(rs ? rs : nrs, &s->resources)))
			return malformed(msg,
					 "Policy contains a statement with an invalid Resource.");
		for (size_t i = 0; i < s->resources.n; i++) {
			if (!valid_resource(s->resources.v[i])) {
				kbuf_reset(msg);
				kbuf_note(msg,
					  "Policy contains a statement with an invalid resource "
					  "ARN: %s",
					  s->resources.v[i]);
				return K_E_MALFORMED_POLICY;
			}
			s->resource_vars = s->resource_vars ||
					   (vars && policy_has_variable(s->resources.v[i]));
		}
	}
	return K_OK;
}

/*
 * One statement. vars: the document's Version is "2012-10-17", the one in
 * which Resource and condition values may hold policy variables ("If you
 * use policy variables, you must include the Version element and set it
 * to ... 2012-10-17"; in older policies they are text).
 */
static K_MUST_CHECK k_status parse_statement(struct statement *s, const json_t *v,
					     enum policy_kind kind, bool vars, struct kbuf *msg)
{
	if (!json_is_object(v))
		return malformed(msg, "Policy contains a statement that is not an object.");
	GUARD(check_statement_elements(v, msg));
	GUARD(parse_effect(s, v, msg));
	GUARD(parse_principal_element(s, v, kind, msg));
	GUARD(parse_action_element(s, v, msg));
	GUARD(parse_resource_element(s, v, kind, vars, msg));
	/*
	 * "If either of the required Resource or Action elements are missing
	 * from a key policy statement, the policy statement has no effect ...
	 * the PutKeyPolicy API request succeeds" (API_PutKeyPolicy.html).
	 */
	s->inert = kind == POLICY_RESOURCE && !s->has_resource;
	const json_t *cond = json_object_get(v, "Condition");
	if (cond != NULL)
		GUARD(parse_condition(s, cond, vars, msg));
	return K_OK;
}

k_status policy_parse_json(const json_t *doc, enum policy_kind kind, struct policy **out,
			   struct kbuf *msg)
{
	*out = NULL;
	if (!json_is_object(doc))
		return malformed(msg, "The policy document is not a JSON object.");
	const char *k;
	const json_t *val;
	json_object_foreach((json_t *)doc, k, val)
	{
		if (strcmp(k, "Version") != 0 && strcmp(k, "Id") != 0 &&
		    strcmp(k, "Statement") != 0) {
			kbuf_reset(msg);
			kbuf_note(msg, "Policy contains an unknown top-level element: %s", k);
			return K_E_MALFORMED_POLICY;
		}
	}
	const json_t *ver = json_object_get(doc, "Version");
	if (ver != NULL &&
	    (!json_is_string(ver) || (strcmp(json_string_value(ver), "2012-10-17") != 0 &&
				      strcmp(json_string_value(ver), "2008-10-17") != 0)))
		return malformed(msg, "Policy has an invalid Version; use \"2012-10-17\".");
	bool vars = ver != NULL && strcmp(json_string_value(ver), "2012-10-17") == 0;
	const json_t *sts = json_object_get(doc, "Statement");
	size_t n = json_is_array(sts) ? json_array_size(sts) : json_is_object(sts) ? 1 : 0;
	if (n == 0)
		return malformed(msg, "Policy contains no statements.");
	struct policy *p = calloc(1, sizeof *p);
	ENSURE(p != NULL, K_E_INTERNAL);
	atomic_init(&p->refs, 1);
	p->st = calloc(n, sizeof *p->st);
	if (p->st == NULL) {
		free(p);
		return K_E_INTERNAL;
	}
	k_status rc = K_OK;
	for (size_t i = 0; i < n && k_ok(rc); i++) {
		p->n = i + 1;
		rc = parse_statement(&p->st[i], json_is_array(sts) ? json_array_get(sts, i) : sts,
				     kind, vars, msg);
	}
	if (k_failed(rc)) {
		policy_free(p);
		return rc;
	}
	*out = p;
	return K_OK;
}

k_status policy_parse(struct kslice text, enum policy_kind kind, struct policy **out,
		      struct kbuf *msg)
{
	*out = NULL;
	if (text.len > POLICY_MAX_BYTES) {
		kbuf_reset(msg);
		kbuf_note(msg, "The policy document is %zu bytes; the limit is %d bytes.", text.len,
			  POLICY_MAX_BYTES);
		return K_E_LIMIT_EXCEEDED;
	}
	json_error_t err;
	json_t *doc = json_loadb((const char *)text.ptr, text.len, JSON_REJECT_DUPLICATES, &err);
	if (doc == NULL)
		return malformed(msg, "The policy document is not valid JSON.");
	k_status rc = policy_parse_json(doc, kind, out, msg);
	json_decref(doc);
	return rc;
}
