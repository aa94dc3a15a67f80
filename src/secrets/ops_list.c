/*
 * ops_list.c — ListSecrets, and the filters it shares with
 * BatchGetSecretValue (sm_list_matching): which secrets of the account
 * match, in what order.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "secrets/internal.h"
#include "core/banned.h"

/* A case-sensitive prefix match (false for an absent attribute). */
static bool prefix_match(const char *s, const char *p)
{
	return s != NULL && strncmp(s, p, strlen(p)) == 0;
}

/* True if any tag's key (or value) starts with p. */
static bool tag_match(json_t *doc, const char *member, const char *p)
{
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(doc, "Tags"), i, t)
	{
		if (prefix_match(json_string_value(json_object_get(t, member)), p))
			return true;
	}
	return false;
}

/*
 * Where one word ends inside a run of letters and digits: "The words are
 * separated by any change from uppercase to lowercase, from letter to
 * number, or from number/letter to punctuation. For example, entering the
 * search term credsDatabase#892 searches for creds, Database, and 892"
 * (https://docs.aws.amazon.com/secretsmanager/latest/userguide/manage_search-secret.html).
 * So "credsDatabase" breaks before the capital, "HTTPServer" before the
 * capital that starts "Server", "db2" before the digit.
 */
static bool word_break(const char *p)
{
	unsigned char a = (unsigned char)p[-1], b = (unsigned char)p[0];
	if ((isdigit(a) != 0) != (isdigit(b) != 0))
		return true;
	if (islower(a) && isupper(b))
		return true;
	return isupper(a) && isupper(b) && islower((unsigned char)p[1]);
}

/*
 * The next word of *cur (a run of letters and digits, punctuation and
 * spaces between words ignored) into *w / *n; false at the end.
 */
static bool next_word(const char **cur, const char **w, size_t *n)
{
	const char *p = *cur;
	while (*p != 0 && !isalnum((unsigned char)*p))
		p++;
	if (*p == 0) {
		*cur = p;
		return false;
	}
	const char *start = p++;
	while (*p != 0 && isalnum((unsigned char)*p) && !word_break(p))
		p++;
	*w = start;
	*n = (size_t)(p - start);
	*cur = p;
	return true;
}

/* True if a word of `text` begins with the word w (n bytes), without case. */
static bool has_word_prefix(const char *text, const char *w, size_t n)
{
	const char *cur = text, *tw;
	size_t tn;
	while (text != NULL && next_word(&cur, &tw, &tn)) {
		if (tn >= n && strncasecmp(tw, w, n) == 0)
			return true;
	}
	return false;
}

/* True if a word of a tag's key or value begins with w. */
static bool tag_word(json_t *doc, const char *w, size_t n)
{
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(doc, "Tags"), i, t)
	{
		if (has_word_prefix(json_string_value(json_object_get(t, "Key")), w, n) ||
		    has_word_prefix(json_string_value(json_object_get(t, "Value")), w, n))
			return true;
	}
	return false;
}

/*
 * Word search, for the "description" and "all" filters: every word of
 * the filter value must begin a word of the secret's description (or, for
 * "all", of its name, description, tag keys or tag values), without case.
 * "Description: My Description matches ... My basic description,
 * Description of my secret" (Find secrets). A value without words
 * matches nothing.
 */
static bool words_match(json_t *doc, const char *value, bool all)
{
	const char *cur = value, *w;
	size_t n, count = 0;
	const char *desc = json_string_value(json_object_get(doc, "Description"));
	const char *name = json_string_value(json_object_get(doc, "Name"));
	while (next_word(&cur, &w, &n)) {
		count++;
		if (has_word_prefix(desc, w, n))
			continue;
		if (all && (has_word_prefix(name, w, n) || tag_word(doc, w, n)))
			continue;
		return false;
	}
	return count > 0;
}

/*
 * One filter value against one secret, per the Filter shape
 * (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_Filter.html)
 * and "Find secrets": name, tag-key, tag-value, primary-region and
 * owning-service are case-sensitive prefix matches; description and all
 * match words (words_match).
 */
static bool value_match(json_t *doc, const char *key, const char *value)
{
	if (strcmp(key, "description") == 0)
		return words_match(doc, value, false);
	if (strcmp(key, "name") == 0)
		return prefix_match(json_string_value(json_object_get(doc, "Name")), value);
	if (strcmp(key, "tag-key") == 0)
		return tag_match(doc, "Key", value);
	if (strcmp(key, "tag-value") == 0)
		return tag_match(doc, "Value", value);
	if (strcmp(key, "primary-region") == 0) {
		char region[64];
		return sm_primary_region(doc, region, sizeof region) && prefix_match(region, value);
	}
	if (strcmp(key, "owning-service") == 0)
		return prefix_match(json_string_value(json_object_get(doc, "OwningService")),
				    value);
	return words_match(doc, value, true);
}

/*
 * Filters are ANDed, the values of one filter ORed; a value starting with
 * "!" negates its match.
 */
static bool filters_match(json_t *doc, json_t *filters)
{
	size_t i, j;
	json_t *f, *v;
	json_array_foreach(filters, i, f)
	{
		const char *key = json_string_value(json_object_get(f, "Key"));
		bool any = false, has_pos = false, neg_fail = false;
		json_array_foreach(json_object_get(f, "Values"), j, v)
		{
			const char *val = json_string_value(v);
			if (val[0] == '!') {
				if (value_match(doc, key, val + 1))
					neg_fail = true;
			} else {
				has_pos = true;
				if (value_match(doc, key, val))
					any = true;
			}
		}
		if (neg_fail || (has_pos && !any))
			return false;
	}
	return true;
}

static K_MUST_CHECK k_status check_filters(struct api_ctx *c, json_t *filters)
{
	static const char *const keys[] = {
		"description",	  "name",	    "tag-key", "tag-value",
		"primary-region", "owning-service", "all",     NULL};
	if (filters == NULL || json_is_null(filters))
		return K_OK;
	if (!json_is_array(filters))
		return api_fail(c, K_E_SERIALIZATION, "Unexpected value type for member 'Filters'");
	if (json_array_size(filters) > 10)
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value at 'filters' failed to satisfy "
				"constraint: Member must have length less than or equal to 10");
	size_t i, j;
	json_t *f, *v;
	json_array_foreach(filters, i, f)
	{
		const char *key;
		json_t *values;
		if (!json_is_object(f))
			return api_fail(c, K_E_SERIALIZATION,
					"Unexpected value type in member 'Filters'");
		GUARD(api_enum(c, f, "Key", false, keys, &key));
		GUARD(api_string_list(c, f, "Values", 10, 0, 512, &values));
		if (key == NULL || values == NULL || json_array_size(values) == 0)
			return api_fail(c, K_E_SM_INVALID_PARAMETER,
					"Each filter needs a Key and at least one value.");
		json_array_foreach(values, j, v)
		{
			for (const char *p = json_string_value(v); *p; p++) {
				if (!isalnum((unsigned char)*p) && strchr(" :_@/+=.-!", *p) == NULL)
					return api_fail(c, K_E_VALIDATION,
							"1 validation error detected: Value '%s' "
							"at 'filters.%zu.member.values' failed to "
							"satisfy constraint: Member must satisfy "
							"regular expression pattern: "
							"^\\!?[a-zA-Z0-9 :_@\\/\\+\\=\\.\\-\\!]*$",
							json_string_value(v), i + 1);
			}
		}
	}
	return K_OK;
}

struct collect {
	json_t *docs;
	json_t *filters;
	bool include_deleted;
};

static K_MUST_CHECK k_status collect_cb(void *arg, const char *ns, const char *id,
					struct kslice doc, int64_t version)
{
	struct collect *st = arg;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	if (j == NULL)
		return K_OK;
	bool deleted = kjson_date_seconds(json_object_get(j, "DeletedDate")) > 0;
	if ((!deleted || st->include_deleted) &&
	    (st->filters == NULL || filters_match(j, st->filters)))
		json_array_append_new(st->docs, j);
	else
		json_decref(j);
	return K_OK;
}

static K_MUST_CHECK k_status collect_docs(struct api_ctx *c, json_t *filters, bool include_deleted,
					  json_t **docs)
{
	GUARD(check_filters(c, filters));
	struct collect st = {.docs = json_array(),
			     .filters = json_is_array(filters) ? filters : NULL,
			     .include_deleted = include_deleted};
	ENSURE(st.docs != NULL, K_E_INTERNAL);
	k_status rc = storage_list(sm_store(), "secret", c->ns, NULL, NULL, 0, collect_cb, &st);
	if (k_failed(rc)) {
		json_decref(st.docs);
		return rc;
	}
	*docs = st.docs;
	return K_OK;
}

/* The names of the secrets that pass the filters, by name (BatchGetSecretValue). */
k_status sm_list_matching(struct api_ctx *c, json_t *filters, bool include_deleted, json_t **names)
{
	json_t *docs;
	GUARD(collect_docs(c, filters, include_deleted, &docs));
	*names = json_array();
	size_t i;
	json_t *d;
	json_array_foreach(docs, i, d) json_array_append(*names, json_object_get(d, "ARN"));
	json_decref(docs);
	return K_OK;
}

/* qsort's comparator has no context argument: the sort's order is the thread's own. */
static _Thread_local const char *sort_member;
static _Thread_local bool sort_desc;

static int cmp_docs(const void *a, const void *b)
{
	json_t *x = json_object_get(*(json_t *const *)a, sort_member);
	json_t *y = json_object_get(*(json_t *const *)b, sort_member);
	int r;
	if (json_is_string(x) || json_is_string(y)) {
		r = strcmp(json_string_value(x) ? json_string_value(x) : "",
			   json_string_value(y) ? json_string_value(y) : "");
	} else {
		r = sm_date_cmp(x, y);
	}
	if (r == 0) {
		r = strcmp(json_string_value(json_object_get(*(json_t *const *)a, "Name")),
			   json_string_value(json_object_get(*(json_t *const *)b, "Name")));
	}
	return sort_desc ? -r : r;
}

/*
 * ListSecrets (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ListSecrets.html):
 * "Lists the secrets that are stored by Secrets Manager in the AWS
 * account, not including secrets that are marked for deletion" unless
 * IncludePlannedDeletion; "If not specified, secrets are listed by
 * CreatedDate."
 */
k_status sm_op_list_secrets(struct api_ctx *c, json_t *in, json_t *out)
{
	static const char *const orders[] = {"asc", "desc", NULL};
	static const char *const bys[] = {"created-date", "last-accessed-date", "last-changed-date",
					  "name", NULL};
	bool has, include_deleted;
	int64_t max = 100;
	const char *next, *order, *by;
	GUARD(api_bool(c, in, "IncludePlannedDeletion", &has, &include_deleted));
	GUARD(api_int(c, in, "MaxResults", false, 1, 100, &has, &max));
	GUARD(api_string(c, in, "NextToken", false, 1, 4096, &next));
	GUARD(api_enum(c, in, "SortOrder", false, orders, &order));
	GUARD(api_enum(c, in, "SortBy", false, bys, &by));
	json_t *docs;
	GUARD(collect_docs(c, json_object_get(in, "Filters"), include_deleted, &docs));
	size_t n = json_array_size(docs);
	size_t start = 0;
	if (next != NULL) {
		char *end = NULL;
		unsigned long v =
			strncmp(next, "kinko1:", 7) == 0 ? strtoul(next + 7, &end, 10) : 0;
		if (end == NULL || *end != 0 || v > n) {
			json_decref(docs);
			return api_fail(c, K_E_SM_INVALID_NEXT_TOKEN,
					"The NextToken value is invalid.");
		}
		start = v;
	}
	json_t **list = calloc(n ? n : 1, sizeof *list);
	if (list == NULL) {
		json_decref(docs);
		return K_E_INTERNAL;
	}
	for (size_t i = 0; i < n; i++)
		list[i] = json_array_get(docs, i);
	by = by ? by : "created-date";
	sort_member = strcmp(by, "name") == 0		      ? "Name"
		      : strcmp(by, "last-accessed-date") == 0 ? "LastAccessedDate"
		      : strcmp(by, "last-changed-date") == 0  ? "LastChangedDate"
							      : "CreatedDate";
	sort_desc = order == NULL ? false : strcmp(order, "desc") == 0;
	qsort(list, n, sizeof *list, cmp_docs);
	json_t *arr = json_array();
	size_t end = start + (size_t)max;
	for (size_t i = start; i < n && i < end; i++) {
		struct sm_secret s = {.doc = list[i]};
		json_array_append_new(arr, sm_describe(&s, true));
	}
	json_object_set_new(out, "SecretList", arr);
	if (end < n) {
		char tok[40];
		snprintf(tok, sizeof tok, "kinko1:%zu", end);
		json_object_set_new(out, "NextToken", json_string(tok));
	}
	free(list);
	json_decref(docs);
	return K_OK;
}
