/*
 * policy_vars.c — IAM policy variables: "${aws:username}" and the others
 * in Resource / NotResource and in condition values, replaced by the
 * request context's values when a statement is evaluated.
 *
 * The rules (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html):
 *   - "Variables are marked using a $ prefix followed by a pair of curly
 *     braces ({ }) that include the variable name of the value from the
 *     request"; they are replaced only in policies whose Version is
 *     "2012-10-17" (in "2008-10-17" they are text: parse_statement decides).
 *   - The name is any single-valued key of the request context, matched
 *     without regard to case ("aws:PrincipalTag/team", "kms:EncryptionContext:app").
 *   - "${*}", "${?}" and "${$}" stand for a literal '*', '?' and '$': the
 *     first two then match only themselves, not as wildcards.
 *   - "${aws:username, 'default'}": the default replaces a key that has no
 *     value; spaces around the name and the quoted default are ignored,
 *     and '' inside the default is one quote.
 *   - "If there is no value for a policy variable ... the resource or
 *     condition that contains it matches nothing": policy_expand answers
 *     false, and the caller skips that one Resource or condition value.
 *   - One round only: a default that itself looks like a variable is text.
 * A "${" without its closing brace is text.
 */
#include "policy/internal.h"

#include <string.h>
#include <strings.h>

#include "core/banned.h"

/* Appends n bytes of s, each literal or not, to the expansion; false when it is full. */
static bool put(struct policy_expansion *e, const char *s, size_t n, bool literal)
{
	if (e->len + n >= sizeof e->text)
		return false;
	memcpy(e->text + e->len, s, n);
	memset(e->literal + e->len, literal, n);
	e->len += n;
	e->text[e->len] = 0;
	e->literal[e->len] = false; /* the terminator's slot is read as the pattern's end */
	return true;
}

static void trim(const char **s, const char **end)
{
	while (*s < *end && **s == ' ')
		(*s)++;
	while (*end > *s && (*end)[-1] == ' ')
		(*end)--;
}

/*
 * The default of "${key, 'text'}": the quoted text between q and end
 * (q at the opening quote), '' standing for one quote. False when it is
 * not one quoted string.
 */
static bool put_default(struct policy_expansion *e, const char *q, const char *end)
{
	if (end - q < 2 || *q != '\'' || end[-1] != '\'')
		return false;
	for (const char *p = q + 1; p < end - 1; p++) {
		if (*p == '\'') {
			if (p + 1 >= end - 1 || p[1] != '\'')
				return false;
			p++;
		}
		if (!put(e, p, 1, true))
			return false;
	}
	return true;
}

/* One "${...}" body (between the braces); false when it has no value. */
static bool put_variable(struct policy_expansion *e, const struct policy_req *r, const char *s,
			 const char *end)
{
	if (end - s == 1 && (*s == '*' || *s == '?' || *s == '$'))
		return put(e, s, 1, true);
	const char *comma = memchr(s, ',', (size_t)(end - s));
	const char *name_end = comma ? comma : end;
	trim(&s, &name_end);
	char key[POLICY_VAR_MAX_KEY];
	size_t kl = (size_t)(name_end - s);
	if (kl == 0 || kl >= sizeof key)
		return false;
	memcpy(key, s, kl);
	key[kl] = 0;
	const char *v = policy_req_single(r, key);
	if (v != NULL)
		return put(e, v, strlen(v), true);
	if (comma == NULL)
		return false;
	const char *q = comma + 1;
	trim(&q, &end);
	return put_default(e, q, end);
}

bool policy_expand(const char *text, const struct policy_req *r, struct policy_expansion *e)
{
	e->len = 0;
	e->text[0] = 0;
	e->literal[0] = false;
	const char *p = text;
	while (*p != 0) {
		const char *close = p[0] == '$' && p[1] == '{' ? strchr(p + 2, '}') : NULL;
		if (close == NULL) {
			if (!put(e, p, 1, false))
				return false;
			p++;
			continue;
		}
		if (!put_variable(e, r, p + 2, close))
			return false;
		p = close + 1;
	}
	return true;
}

bool policy_has_variable(const char *text)
{
	const char *open = strstr(text, "${");
	return open != NULL && strchr(open, '}') != NULL;
}
