/*
 * policy_cond.c — the IAM condition operators: their names, the request's
 * value set for a condition key, the typed comparisons (string, number,
 * date, bool, IP address, ARN) and the rules for absent keys and set
 * qualifiers.
 */
#include "policy/internal.h"

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

bool policy_cond_find_op(const char *name, size_t len, enum cond_op *op, bool *negated)
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
					const char *tk =
						json_string_value(json_object_get(t, "TagKey"));
					if (tk != NULL && strcasecmp(tk, name) == 0)
						out->single = json_string_value(
							json_object_get(t, "TagValue"));
				}
			}
			if (out->single == NULL)
				continue; /* another source of the same prefix may have it */
			out->pv = pv;
			out->n = 1;
			return true;
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
		uint8_t mask = (uint8_t)(bits >= 8 ? 0xff : 0xff << (8 - bits));
		if ((a[i] & mask) != (b[i] & mask))
			return false;
	}
	return true;
}

/*
 * ArnLike/ArnEquals: the six colon-separated parts match one by one, with
 * wildcards (none where plit, the pattern's literal bytes, says so).
 */
static bool arn_match(const char *pat, const bool *plit, const char *arn)
{
	if (strncmp(arn, "arn:", 4) != 0)
		return false;
	char pp[6][512], ap[6][512];
	bool pl[6][512];
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
			if (w == 0)
				for (size_t j = 0; j < n; j++)
					pl[i][j] = plit != NULL && plit[(size_t)(p - pat) + j];
			p = colon ? colon + 1 : p + n;
		}
	}
	for (int i = 0; i < 6; i++) {
		if (!policy_wildcard_match_lit(pp[i], pl[i], ap[i], false))
			return false;
	}
	return true;
}

/* The positive form of an operator, for one request value and one policy value. */
static bool base_match(enum cond_op op, const char *v, const char *p, const bool *plit)
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
		return policy_wildcard_match_lit(p, plit, v, false);
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
		return arn_match(p, plit, v);
	default:
		return false;
	}
}

/*
 * The positive form for one request value and one policy value, the
 * policy value's variables replaced first (policy_vars.c): a value whose
 * variable has no value matches nothing.
 */
static bool value_matches(const struct cond *c, const char *v, const char *p,
			  const struct policy_req *r)
{
	if (!c->vars || !policy_has_variable(p))
		return base_match(c->op, v, p, NULL);
	struct policy_expansion e;
	return policy_expand(p, r, &e) && base_match(c->op, v, e.text, e.literal);
}

const char *policy_req_single(const struct policy_req *r, const char *key)
{
	struct vset vs;
	if (!lookup(r, key, &vs) || vs.n != 1)
		return NULL;
	if (vs.pv->kind != PV_STRING && vs.pv->kind != PV_MAP && vs.pv->kind != PV_TAGS)
		return NULL;
	return value_at(&vs, 0);
}

/*
 * One condition (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
 * "If the key that you specify in a policy condition is not present in the
 * request context, the values do not match" — except that the negated
 * operators then evaluate to true, ...IfExists makes an absent key true,
 * and ForAllValues is true for an absent or empty key while ForAnyValue
 * is false. Multiple values for one key are ORed.
 */
bool policy_cond_holds(const struct cond *c, const struct policy_req *r)
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
			m = value_matches(c, v, c->values.v[j], r);
		if (c->negated)
			m = !m;
		any = any || m;
		all = all && m;
	}
	return c->set == SET_ALL ? all : any;
}
