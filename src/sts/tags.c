/*
 * tags.c — session tags (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html):
 * read from AssumeRole's Tags / TransitiveTagKeys members or from an
 * OpenID Connect token's "https://aws.amazon.com/tags" claim, checked
 * against IAM's limits, and inherited along a role chain when transitive.
 * A session keeps them as [{"TagKey", "TagValue", "Transitive"}], the
 * form of its aws:PrincipalTag/KEY condition keys (config.h).
 */
#include "sts/internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/policy.h"
#include "core/banned.h"

/* "You can pass up to 50 session tags." Keys 1..128, values 0..256 characters. */
#define STS_MAX_TAGS 50
#define STS_TAG_KEY_MAX 128
#define STS_TAG_VALUE_MAX 256
#define STS_MEMBER_NAME_MAX 64

static const json_t *find_tag(const json_t *tags, const char *key)
{
	size_t i;
	const json_t *t;
	json_array_foreach(tags, i, t)
	{
		const char *k = json_string_value(json_object_get(t, "TagKey"));
		if (k != NULL && strcasecmp(k, key) == 0) /* "Tag keys are case insensitive" */
			return t;
	}
	return NULL;
}

/* The tag key pattern [\p{L}\p{Z}\p{N}_.:/=+\-@]+ (bytes of UTF-8 letters pass as letters). */
static bool valid_tag_text(const char *s, bool empty_ok)
{
	if (s[0] == 0)
		return empty_ok;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool ok = *p >= 0x80 || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || strchr(" _.:/=+-@", *p) != NULL;
		if (!ok)
			return false;
	}
	return true;
}

/* Adds one tag; ValidationError for a bad or repeated key or a bad value. */
static K_MUST_CHECK k_status add_tag(struct api_ctx *c, json_t *tags, const char *key,
				     const char *value)
{
	if (key == NULL || value == NULL || strlen(key) > STS_TAG_KEY_MAX ||
	    strlen(value) > STS_TAG_VALUE_MAX || !valid_tag_text(key, false) ||
	    !valid_tag_text(value, true))
		return api_fail(c, K_E_VALIDATION,
				"A session tag key must be 1 to 128 characters and its value at "
				"most 256, of letters, digits, spaces and _.:/=+-@.");
	if (find_tag(tags, key) != NULL)
		return api_fail(c, K_E_VALIDATION,
				"Duplicate tag keys found. Please note that Tag keys are case "
				"insensitive.");
	if (json_array_size(tags) >= STS_MAX_TAGS)
		return api_fail(c, K_E_VALIDATION, "A session has at most 50 session tags.");
	json_array_append_new(tags, json_pack("{s:s, s:s, s:b}", "TagKey", key, "TagValue", value,
					      "Transitive", 0));
	return K_OK;
}

/* Marks a tag transitive; the key must be one of the session's tags. */
static K_MUST_CHECK k_status mark_transitive(struct api_ctx *c, json_t *tags, const char *key)
{
	json_t *t = key ? (json_t *)find_tag(tags, key) : NULL;
	if (t == NULL)
		return api_fail(c, K_E_VALIDATION,
				"The specified transitive tag key must be included in the "
				"requested tags.");
	json_object_set_new(t, "Transitive", json_true());
	return K_OK;
}

/*
 * "The session tags that are passed from the calling session are
 * transitive" and "you can't override them": the caller's transitive tags
 * join the new session's, still transitive; a request tag of the same key
 * is refused.
 */
static K_MUST_CHECK k_status inherit(struct api_ctx *c, json_t *tags)
{
	const json_t *from = identity_session_tags(c->principal.identity);
	size_t i;
	const json_t *t;
	json_array_foreach(from, i, t)
	{
		if (!json_is_true(json_object_get(t, "Transitive")))
			continue;
		const char *k = json_string_value(json_object_get(t, "TagKey"));
		if (find_tag(tags, k) != NULL)
			return api_fail(c, K_E_VALIDATION,
					"The transitive session tag %s of the calling session "
					"cannot be set again.",
					k);
		json_array_append_new(tags, json_deep_copy(t));
	}
	return K_OK;
}

static K_MUST_CHECK k_status read_members(struct api_ctx *c, json_t *in, json_t *tags)
{
	char kname[STS_MEMBER_NAME_MAX], vname[STS_MEMBER_NAME_MAX];
	for (int n = 1;; n++) {
		snprintf(kname, sizeof kname, "Tags.member.%d.Key", n);
		snprintf(vname, sizeof vname, "Tags.member.%d.Value", n);
		const char *k = json_string_value(json_object_get(in, kname));
		const char *v = json_string_value(json_object_get(in, vname));
		if (k == NULL && v == NULL)
			break;
		GUARD(add_tag(c, tags, k, v));
	}
	for (int n = 1;; n++) {
		snprintf(kname, sizeof kname, "TransitiveTagKeys.member.%d", n);
		const char *k = json_string_value(json_object_get(in, kname));
		if (k == NULL)
			break;
		GUARD(mark_transitive(c, tags, k));
	}
	return K_OK;
}

k_status sts_read_tags(struct api_ctx *c, json_t *in, json_t **out)
{
	*out = json_array();
	ENSURE(*out != NULL, K_E_INTERNAL);
	k_status rc = read_members(c, in, *out);
	if (k_ok(rc))
		rc = inherit(c, *out);
	if (k_failed(rc) || json_array_size(*out) == 0) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/*
 * An OIDC token's tags: "https://aws.amazon.com/tags": {"principal_tags":
 * {"KEY": ["VALUE"]}, "transitive_tag_keys": ["KEY"]} (each value a list
 * of one string).
 */
k_status sts_token_tags(struct api_ctx *c, const json_t *claims, json_t **out)
{
	*out = NULL;
	const json_t *claim = json_object_get(claims, "https://aws.amazon.com/tags");
	if (claim == NULL)
		return K_OK;
	const json_t *pt = json_object_get(claim, "principal_tags");
	const json_t *tt = json_object_get(claim, "transitive_tag_keys");
	if (!json_is_object(pt) || (tt != NULL && !json_is_array(tt)))
		return api_fail(c, K_E_STS_INVALID_IDENTITY_TOKEN,
				"The token's session tags claim is not valid.");
	json_t *tags = json_array();
	ENSURE(tags != NULL, K_E_INTERNAL);
	k_status rc = K_OK;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)pt, k, v)
	{
		if (k_ok(rc))
			rc = json_array_size(v) == 1
				     ? add_tag(c, tags, k, json_string_value(json_array_get(v, 0)))
				     : api_fail(c, K_E_STS_INVALID_IDENTITY_TOKEN,
						"Each session tag of the token needs one value.");
	}
	size_t i;
	json_t *e;
	json_array_foreach(tt, i, e)
	{
		if (k_ok(rc))
			rc = mark_transitive(c, tags, json_string_value(e));
	}
	if (k_ok(rc) && json_array_size(tags) > 0)
		*out = json_incref(tags);
	json_decref(tags);
	return rc;
}

void sts_req_add_request_tags(struct policy_req *req, const json_t *tags)
{
	if (tags == NULL)
		return;
	(void)policy_req_add(req, (struct policy_value){
					  .key = "aws:RequestTag/", .kind = PV_TAGS, .json = tags});
	(void)policy_req_add(req, (struct policy_value){
					  .key = "aws:TagKeys", .kind = PV_TAG_KEYS, .json = tags});
}

size_t sts_tags_size(const json_t *tags)
{
	size_t n = 0, i;
	const json_t *t;
	json_array_foreach(tags, i, t)
	{
		n += json_string_length(json_object_get(t, "TagKey")) +
		     json_string_length(json_object_get(t, "TagValue"));
	}
	return n;
}
