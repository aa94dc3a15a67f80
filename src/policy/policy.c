/*
 * policy.c — IAM policy parsing and evaluation (see policy.h).
 */
#include "policy/policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/banned.h"

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

static const struct {
	const char *name;
	enum cond_op op;
	bool negated; /* evaluated as the negation of the positive form */
} op_table[] = {
	{"StringEquals", OP_STRING_EQ, false},
	{"StringNotEquals", OP_STRING_NE, true},
	{"StringEqualsIgnoreCase", OP_STRING_EQ_IC, false},
	{"StringNotEqualsIgnoreCase", OP_STRING_NE_IC, true},
	{"StringLike", OP_STRING_LIKE, false},
	{"StringNotLike", OP_STRING_NOT_LIKE, true},
	{"NumericEquals", OP_NUM_EQ, false},
	{"NumericNotEquals", OP_NUM_NE, true},
	{"NumericLessThan", OP_NUM_LT, false},
	{"NumericLessThanEquals", OP_NUM_LE, false},
	{"NumericGreaterThan", OP_NUM_GT, false},
	{"NumericGreaterThanEquals", OP_NUM_GE, false},
	{"DateEquals", OP_DATE_EQ, false},
	{"DateNotEquals", OP_DATE_NE, true},
	{"DateLessThan", OP_DATE_LT, false},
	{"DateLessThanEquals", OP_DATE_LE, false},
	{"DateGreaterThan", OP_DATE_GT, false},
	{"DateGreaterThanEquals", OP_DATE_GE, false},
	{"Bool", OP_BOOL, false},
	{"BinaryEquals", OP_BINARY_EQ, false},
	{"IpAddress", OP_IP, false},
	{"NotIpAddress", OP_NOT_IP, true},
	{"ArnEquals", OP_ARN_EQ, false},
	{"ArnLike", OP_ARN_LIKE, false},
	{"ArnNotEquals", OP_ARN_NE, true},
	{"ArnNotLike", OP_ARN_NOT_LIKE, true},
	{"Null", OP_NULL, false},
};

enum set_qual { SET_NONE, SET_ANY, SET_ALL };

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
	bool any_principal; /* "*" */
	struct strlist aws;     /* normalized principal ARNs */
	struct strlist service; /* service principals */
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

/* ---------- parsing ---------- */

static void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static k_status strlist_add(struct strlist *l, const char *s)
{
	char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	ENSURE(nv != NULL, K_E_INTERNAL);
	l->v = nv;
	l->v[l->n] = strdup(s);
	ENSURE(l->v[l->n] != NULL, K_E_INTERNAL);
	l->n++;
	return K_OK;
}

void policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++) {
		struct statement *s = &p->st[i];
		free(s->sid);
		strlist_free(&s->aws);
		strlist_free(&s->service);
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

static k_status malformed(struct kbuf *msg, const char *text)
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
	const char *p;
	if (strncmp(s, "arn:aws:iam::", 13) == 0)
		p = s + 13;
	else if (strncmp(s, "arn:aws:sts::", 13) == 0)
		p = s + 13;
	else
		return false;
	char acct[13];
	if (strlen(p) < 13 || p[12] != ':')
		return false;
	memcpy(acct, p, 12);
	acct[12] = 0;
	if (!all_digits(acct, 12))
		return false;
	const char *res = p + 13;
	bool sts = s[8] == 's';
	if (sts)
		return strncmp(res, "assumed-role/", 13) == 0 && strchr(res + 13, '/') != NULL &&
		       res[13] != '/' && res[strlen(res) - 1] != '/';
	if (strcmp(res, "root") == 0)
		return true;
	if (strncmp(res, "user/", 5) == 0 || strncmp(res, "role/", 5) == 0)
		return res[5] != 0 && res[strlen(res) - 1] != '/';
	return false;
}

/* A string or a list of strings, into a strlist (the list must not be empty). */
static k_status read_strings(const json_t *v, struct strlist *out)
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

static k_status parse_principal(struct statement *s, const json_t *v, struct kbuf *msg)
{
	static const char bad[] = "Policy contains a statement with one or more invalid principals.";
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
		if (read_strings(val, &l) != K_OK) {
			strlist_free(&l);
			return malformed(msg, bad);
		}
		k_status rc = K_OK;
		for (size_t i = 0; i < l.n && rc == K_OK; i++) {
			const char *p = l.v[i];
			if (strcmp(k, "AWS") == 0) {
				if (strcmp(p, "*") == 0) {
					s->any_principal = true;
				} else if (all_digits(p, 12)) {
					char arn[64];
					snprintf(arn, sizeof arn, "arn:aws:iam::%s:root", p);
					rc = strlist_add(&s->aws, arn);
				} else if (policy_valid_principal(p)) {
					rc = strlist_add(&s->aws, p);
				} else {
					rc = malformed(msg, bad);
				}
			} else if (strcmp(k, "Service") == 0) {
				rc = p[0] != 0 ? strlist_add(&s->service, p) : malformed(msg, bad);
			} else if (strcmp(k, "Federated") == 0 || strcmp(k, "CanonicalUser") == 0) {
				/* Accepted, never matched: kinko has no federated users. */
			} else {
				rc = malformed(msg, bad);
			}
		}
		strlist_free(&l);
		GUARD(rc);
	}
	return K_OK;
}

static bool find_op(const char *name, size_t len, enum cond_op *op, bool *negated)
{
	for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++) {
		if (strlen(op_table[i].name) == len && strncmp(op_table[i].name, name, len) == 0) {
			*op = op_table[i].op;
			*negated = op_table[i].negated;
			return true;
		}
	}
	return false;
}

static k_status add_cond(struct statement *s, enum cond_op op, bool negated, bool if_exists,
			 enum set_qual set, const char *key, const json_t *vals, struct kbuf *msg)
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
			return malformed(msg, "Policy contains a condition value that is not a string, number or boolean.");
		}
		GUARD(strlist_add(&c->values, text));
	}
	return K_OK;
}

static k_status parse_condition(struct statement *s, const json_t *v, struct kbuf *msg)
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
		if (!find_op(name, len, &op, &negated) || (op == OP_NULL && (if_exists || set != SET_NONE))) {
			kbuf_reset(msg);
			kbuf_note(msg, "Policy contains an unknown condition operator: %s", opname);
			return K_E_MALFORMED_POLICY;
		}
		if (!json_is_object(block) || json_object_size(block) == 0)
			return malformed(msg, "Policy contains a condition operator without condition keys.");
		const char *key;
		const json_t *vals;
		json_object_foreach((json_t *)block, key, vals)
		{
			if (key[0] == 0 || strlen(key) > 256)
				return malformed(msg, "Policy contains an invalid condition key.");
			GUARD(add_cond(s, op, negated, if_exists, set, key, vals, msg));
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
		if (!(isalnum((unsigned char)*p) || *p == ':' || *p == '*' || *p == '?' || *p == '-' ||
		      *p == '_'))
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

static k_status parse_statement(struct statement *s, const json_t *v, enum policy_kind kind,
				struct kbuf *msg)
{
	if (!json_is_object(v))
		return malformed(msg, "Policy contains a statement that is not an object.");
	const char *k;
	const json_t *val;
	json_object_foreach((json_t *)v, k, val)
	{
		static const char *const known[] = {"Sid", "Effect", "Principal", "NotPrincipal", "Action",
						    "NotAction", "Resource", "NotResource", "Condition",
						    NULL};
		bool ok = false;
		for (size_t i = 0; known[i] != NULL && !ok; i++)
			ok = strcmp(known[i], k) == 0;
		if (!ok) {
			kbuf_reset(msg);
			kbuf_note(msg, "Policy contains a statement with an unknown element: %s", k);
			return K_E_MALFORMED_POLICY;
		}
	}
	const json_t *sid = json_object_get(v, "Sid");
	if (sid != NULL && !json_is_string(sid))
		return malformed(msg, "Policy contains a statement whose Sid is not a string.");
	s->sid = strdup(sid ? json_string_value(sid) : "");
	ENSURE(s->sid != NULL, K_E_INTERNAL);
	const char *effect = json_string_value(json_object_get(v, "Effect"));
	if (effect == NULL || (strcmp(effect, "Allow") != 0 && strcmp(effect, "Deny") != 0))
		return malformed(msg, "Policy contains a statement without a valid Effect (Allow or Deny).");
	s->deny = strcmp(effect, "Deny") == 0;

	const json_t *pr = json_object_get(v, "Principal");
	const json_t *npr = json_object_get(v, "NotPrincipal");
	if (pr != NULL && npr != NULL)
		return malformed(msg, "Policy contains a statement with both Principal and NotPrincipal.");
	if (kind == POLICY_IDENTITY && (pr != NULL || npr != NULL))
		return malformed(msg, "Identity policies may not contain a Principal element.");
	if (kind != POLICY_IDENTITY && pr == NULL && npr == NULL)
		return malformed(msg, "Policy contains a statement with no principal.");
	if (pr != NULL || npr != NULL) {
		s->has_principal = true;
		s->not_principal = npr != NULL;
		GUARD(parse_principal(s, pr ? pr : npr, msg));
	}

	const json_t *ac = json_object_get(v, "Action");
	const json_t *nac = json_object_get(v, "NotAction");
	if ((ac == NULL) == (nac == NULL))
		return malformed(msg, "Policy contains a statement that needs exactly one of Action or NotAction.");
	s->not_action = nac != NULL;
	if (read_strings(ac ? ac : nac, &s->actions) != K_OK)
		return malformed(msg, "Policy contains a statement with an invalid Action.");
	for (size_t i = 0; i < s->actions.n; i++) {
		if (!valid_action(s->actions.v[i])) {
			kbuf_reset(msg);
			kbuf_note(msg, "Policy contains a statement with an invalid action: %s",
				  s->actions.v[i]);
			return K_E_MALFORMED_POLICY;
		}
	}

	const json_t *rs = json_object_get(v, "Resource");
	const json_t *nrs = json_object_get(v, "NotResource");
	if (rs != NULL && nrs != NULL)
		return malformed(msg, "Policy contains a statement with both Resource and NotResource.");
	if (kind == POLICY_IDENTITY && rs == NULL && nrs == NULL)
		return malformed(msg, "Policy contains a statement with no Resource.");
	if (rs != NULL || nrs != NULL) {
		s->has_resource = true;
		s->not_resource = nrs != NULL;
		if (read_strings(rs ? rs : nrs, &s->resources) != K_OK)
			return malformed(msg, "Policy contains a statement with an invalid Resource.");
		for (size_t i = 0; i < s->resources.n; i++) {
			if (!valid_resource(s->resources.v[i])) {
				kbuf_reset(msg);
				kbuf_note(msg, "Policy contains a statement with an invalid resource ARN: %s",
					  s->resources.v[i]);
				return K_E_MALFORMED_POLICY;
			}
		}
	}
	/*
	 * "If either of the required Resource or Action elements are missing
	 * from a key policy statement, the policy statement has no effect ...
	 * the PutKeyPolicy API request succeeds" (API_PutKeyPolicy.html).
	 */
	s->inert = kind == POLICY_RESOURCE && !s->has_resource;
	const json_t *cond = json_object_get(v, "Condition");
	if (cond != NULL)
		GUARD(parse_condition(s, cond, msg));
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
		if (strcmp(k, "Version") != 0 && strcmp(k, "Id") != 0 && strcmp(k, "Statement") != 0) {
			kbuf_reset(msg);
			kbuf_note(msg, "Policy contains an unknown top-level element: %s", k);
			return K_E_MALFORMED_POLICY;
		}
	}
	const json_t *ver = json_object_get(doc, "Version");
	if (ver != NULL && (!json_is_string(ver) || (strcmp(json_string_value(ver), "2012-10-17") != 0 &&
						    strcmp(json_string_value(ver), "2008-10-17") != 0)))
		return malformed(msg, "Policy has an invalid Version; use \"2012-10-17\".");
	const json_t *sts = json_object_get(doc, "Statement");
	size_t n = json_is_array(sts) ? json_array_size(sts) : json_is_object(sts) ? 1 : 0;
	if (n == 0)
		return malformed(msg, "Policy contains no statements.");
	struct policy *p = calloc(1, sizeof *p);
	ENSURE(p != NULL, K_E_INTERNAL);
	p->st = calloc(n, sizeof *p->st);
	if (p->st == NULL) {
		free(p);
		return K_E_INTERNAL;
	}
	k_status rc = K_OK;
	for (size_t i = 0; i < n && rc == K_OK; i++) {
		p->n = i + 1;
		rc = parse_statement(&p->st[i], json_is_array(sts) ? json_array_get(sts, i) : sts, kind, msg);
	}
	if (rc != K_OK) {
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

/* ---------- evaluation ---------- */

bool policy_wildcard_match(const char *pat, const char *s, bool nocase)
{
	const char *star = NULL, *mark = NULL;
	while (*s) {
		char pc = *pat, sc = *s;
		if (nocase) {
			pc = (char)tolower((unsigned char)pc);
			sc = (char)tolower((unsigned char)sc);
		}
		if (*pat == '*') {
			star = pat++;
			mark = s;
		} else if (*pat != 0 && (*pat == '?' || pc == sc)) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++mark;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == 0;
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
	return policy_req_add(r, (struct policy_value){.key = key, .kind = PV_STRING, .str = value});
}

/* The request's value set for a condition key. */
struct vset {
	const struct policy_value *pv;
	const char *single; /* PV_MAP / PV_TAGS lookups resolve to one string */
	size_t n;
};

static const json_t *map_member(const json_t *obj, const char *name)
{
	const json_t *v = json_object_get(obj, name);
	if (v != NULL)
		return v;
	const char *k;
	json_t *val;
	json_object_foreach((json_t *)obj, k, val)
	{
		if (strcasecmp(k, name) == 0)
			return val;
	}
	return NULL;
}

static bool lookup(const struct policy_req *r, const char *key, struct vset *out)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < r->n_values; i++) {
		const struct policy_value *pv = &r->values[i];
		size_t kl = strlen(pv->key);
		switch (pv->kind) {
		case PV_STRING:
		case PV_STRINGS:
		case PV_MAP_KEYS:
		case PV_TAG_KEYS:
		case PV_JSON_LIST:
			if (strcasecmp(pv->key, key) != 0)
				continue;
			out->pv = pv;
			if (pv->kind == PV_STRING)
				out->n = 1;
			else if (pv->kind == PV_STRINGS)
				out->n = pv->n;
			else if (pv->kind == PV_MAP_KEYS)
				out->n = json_object_size(pv->json);
			else
				out->n = json_array_size(pv->json);
			return true;
		case PV_MAP:
		case PV_TAGS: {
			if (strncasecmp(pv->key, key, kl) != 0 || key[kl] == 0)
				continue;
			const char *name = key + kl;
			if (pv->kind == PV_MAP) {
				const json_t *m = map_member(pv->json, name);
				out->single = json_string_value(m);
			} else {
				size_t j;
				const json_t *t;
				json_array_foreach(pv->json, j, t)
				{
					const char *tk = json_string_value(json_object_get(t, "TagKey"));
					if (tk != NULL && strcasecmp(tk, name) == 0)
						out->single = json_string_value(json_object_get(t, "TagValue"));
				}
			}
			out->pv = pv;
			out->n = out->single != NULL;
			return out->n > 0;
		}
		default:
			continue;
		}
	}
	return false;
}

static const char *value_at(const struct vset *vs, size_t i)
{
	if (vs->single != NULL)
		return vs->single;
	const struct policy_value *pv = vs->pv;
	switch (pv->kind) {
	case PV_STRING:
		return pv->str;
	case PV_STRINGS:
		return pv->values[i];
	case PV_MAP_KEYS: {
		void *it = json_object_iter((json_t *)pv->json);
		for (size_t j = 0; j < i && it != NULL; j++)
			it = json_object_iter_next((json_t *)pv->json, it);
		return it ? json_object_iter_key(it) : NULL;
	}
	case PV_TAG_KEYS:
		return json_string_value(json_object_get(json_array_get(pv->json, i), "TagKey"));
	case PV_JSON_LIST:
		return json_string_value(json_array_get(pv->json, i));
	default:
		return NULL;
	}
}

static bool parse_number(const char *s, double *out)
{
	if (s == NULL || *s == 0)
		return false;
	char *end = NULL;
	double d = strtod(s, &end);
	if (end == NULL || *end != 0 || isnan(d))
		return false;
	*out = d;
	return true;
}

/*
 * Dates in conditions: ISO 8601 ("2024-01-31", "2024-01-31T10:00:00Z",
 * with fractional seconds or a +hh:mm offset) or epoch seconds.
 */
static bool parse_date(const char *s, int64_t *out)
{
	if (s == NULL || *s == 0)
		return false;
	bool digits = true;
	for (const char *p = s; *p; p++)
		digits = digits && isdigit((unsigned char)*p);
	if (digits) {
		*out = strtoll(s, NULL, 10);
		return true;
	}
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10)
		return false;
	const char *p = s + 10;
	int64_t off = 0;
	if (*p == 'T') {
		int u2 = 0;
		if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &u2) != 3 || u2 != 8)
			return false;
		p += 1 + 8;
		if (*p == '.') {
			p++;
			while (isdigit((unsigned char)*p))
				p++;
		}
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int oh, om, u3 = 0;
			if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &u3) != 2 || u3 != 5)
				return false;
			off = (int64_t)(oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
			p += 6;
		}
	}
	if (*p != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = (int64_t)timegm(&tm) - off;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	if (s != NULL && strcasecmp(s, "true") == 0)
		*out = true;
	else if (s != NULL && strcasecmp(s, "false") == 0)
		*out = false;
	else
		return false;
	return true;
}

/* IpAddress: the request's address inside the policy's CIDR (or equal to the address). */
static bool ip_in(const char *ip, const char *cidr)
{
	char net[64];
	const char *slash = strchr(cidr, '/');
	size_t nl = slash ? (size_t)(slash - cidr) : strlen(cidr);
	if (nl >= sizeof net)
		return false;
	memcpy(net, cidr, nl);
	net[nl] = 0;
	uint8_t a[16], b[16];
	size_t bytes;
	if (inet_pton(AF_INET, net, b) == 1) {
		bytes = 4;
		if (inet_pton(AF_INET, ip, a) != 1)
			return false;
	} else if (inet_pton(AF_INET6, net, b) == 1) {
		bytes = 16;
		if (inet_pton(AF_INET6, ip, a) != 1)
			return false;
	} else {
		return false;
	}
	long bits = (long)bytes * 8;
	if (slash != NULL) {
		char *end = NULL;
		bits = strtol(slash + 1, &end, 10);
		if (end == NULL || *end != 0 || slash[1] == 0 || bits < 0 || bits > (long)bytes * 8)
			return false;
	}
	for (size_t i = 0; i < bytes && bits > 0; i++, bits -= 8) {
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
		if ((a[i] & mask) != (b[i] & mask))
			return false;
	}
	return true;
}

/* ArnLike/ArnEquals: the six colon-separated parts match one by one, with wildcards. */
static bool arn_match(const char *pat, const char *arn)
{
	if (strncmp(arn, "arn:", 4) != 0)
		return false;
	char pp[6][512], ap[6][512];
	const char *srcs[2] = {pat, arn};
	char(*dst[2])[512] = {pp, ap};
	for (int w = 0; w < 2; w++) {
		const char *p = srcs[w];
		for (int i = 0; i < 6; i++) {
			const char *colon = i < 5 ? strchr(p, ':') : NULL;
			size_t n = colon ? (size_t)(colon - p) : strlen(p);
			if ((i < 5 && colon == NULL) || n >= 512)
				return false;
			memcpy(dst[w][i], p, n);
			dst[w][i][n] = 0;
			p = colon ? colon + 1 : p + n;
		}
	}
	for (int i = 0; i < 6; i++) {
		if (!policy_wildcard_match(pp[i], ap[i], false))
			return false;
	}
	return true;
}

/* The positive form of an operator, for one request value and one policy value. */
static bool base_match(enum cond_op op, const char *v, const char *p)
{
	double dv, dp;
	int64_t tv, tp;
	bool bv, bp;
	switch (op) {
	case OP_STRING_EQ:
	case OP_STRING_NE:
	case OP_BINARY_EQ:
		return strcmp(v, p) == 0;
	case OP_STRING_EQ_IC:
	case OP_STRING_NE_IC:
		return strcasecmp(v, p) == 0;
	case OP_STRING_LIKE:
	case OP_STRING_NOT_LIKE:
		return policy_wildcard_match(p, v, false);
	case OP_NUM_EQ:
	case OP_NUM_NE:
	case OP_NUM_LT:
	case OP_NUM_LE:
	case OP_NUM_GT:
	case OP_NUM_GE:
		if (!parse_number(v, &dv) || !parse_number(p, &dp))
			return false;
		return op == OP_NUM_EQ || op == OP_NUM_NE ? dv == dp
		       : op == OP_NUM_LT		  ? dv < dp
		       : op == OP_NUM_LE		  ? dv <= dp
		       : op == OP_NUM_GT		  ? dv > dp
							  : dv >= dp;
	case OP_DATE_EQ:
	case OP_DATE_NE:
	case OP_DATE_LT:
	case OP_DATE_LE:
	case OP_DATE_GT:
	case OP_DATE_GE:
		if (!parse_date(v, &tv) || !parse_date(p, &tp))
			return false;
		return op == OP_DATE_EQ || op == OP_DATE_NE ? tv == tp
		       : op == OP_DATE_LT		    ? tv < tp
		       : op == OP_DATE_LE		    ? tv <= tp
		       : op == OP_DATE_GT		    ? tv > tp
							    : tv >= tp;
	case OP_BOOL:
		return parse_bool(v, &bv) && parse_bool(p, &bp) && bv == bp;
	case OP_IP:
	case OP_NOT_IP:
		return ip_in(v, p);
	case OP_ARN_EQ:
	case OP_ARN_LIKE:
	case OP_ARN_NE:
	case OP_ARN_NOT_LIKE:
		return arn_match(p, v);
	default:
		return false;
	}
}

/*
 * One condition (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
 * "If the key that you specify in a policy condition is not present in the
 * request context, the values do not match" — except that the negated
 * operators then evaluate to true, ...IfExists makes an absent key true,
 * and ForAllValues is true for an absent or empty key while ForAnyValue
 * is false. Multiple values for one key are ORed.
 */
static bool cond_holds(const struct cond *c, const struct policy_req *r)
{
	struct vset vs;
	bool present = lookup(r, c->key, &vs) && vs.n > 0;
	if (c->op == OP_NULL) {
		for (size_t i = 0; i < c->values.n; i++) {
			bool want_absent;
			if (parse_bool(c->values.v[i], &want_absent) && want_absent == !present)
				return true;
		}
		return false;
	}
	if (!present) {
		if (c->set == SET_ALL)
			return true;
		if (c->set == SET_ANY)
			return false;
		return c->if_exists || c->negated;
	}
	bool any = false, all = true;
	for (size_t i = 0; i < vs.n; i++) {
		const char *v = value_at(&vs, i);
		bool m = false;
		for (size_t j = 0; v != NULL && j < c->values.n && !m; j++)
			m = base_match(c->op, v, c->values.v[j]);
		if (c->negated)
			m = !m;
		any = any || m;
		all = all && m;
	}
	return c->set == SET_ALL ? all : any;
}

enum pmatch { PM_NONE, PM_ACCOUNT, PM_DIRECT };

static enum pmatch principal_match(const struct statement *s, const struct policy_req *r)
{
	if (s->any_principal)
		return PM_DIRECT;
	enum pmatch best = PM_NONE;
	for (size_t i = 0; i < s->service.n; i++) {
		if (r->service != NULL && strcmp(s->service.v[i], r->service) == 0)
			return PM_DIRECT;
	}
	for (size_t i = 0; i < s->aws.n; i++) {
		const char *a = s->aws.v[i];
		if (r->principal_arn != NULL && strcmp(a, r->principal_arn) == 0)
			return PM_DIRECT;
		if (r->role_arn != NULL && strcmp(a, r->role_arn) == 0)
			return PM_DIRECT;
		/* "arn:aws:iam::ACCOUNT:root" names the account. */
		if (r->principal_account != NULL && strncmp(a, "arn:aws:iam::", 13) == 0 &&
		    strncmp(a + 13, r->principal_account, 12) == 0 && strcmp(a + 25, ":root") == 0)
			best = PM_ACCOUNT;
	}
	return best;
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
	if (s->has_resource) {
		bool rm = false;
		for (size_t i = 0; i < s->resources.n && !rm; i++)
			rm = policy_wildcard_match(s->resources.v[i], r->resource ? r->resource : "*", false);
		if (rm == s->not_resource)
			return false;
	}
	for (size_t i = 0; i < s->n_conds; i++) {
		if (!cond_holds(&s->conds[i], r))
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
