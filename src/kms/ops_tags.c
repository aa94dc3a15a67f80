/*
 * ops_tags.c — TagResource, UntagResource, ListResourceTags,
 * UpdateKeyDescription. Tags live in the key document ("Tags", a list of
 * {TagKey, TagValue} in the order they were first set).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "kms/kms.h"
#include "core/banned.h"

/* "You can add up to 50 tags to each KMS key."
 * (https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html) */
#define MAX_TAGS 50

/* KeyId (key id or key ARN) -> key, key-state table, AWS managed rule. */
static K_MUST_CHECK k_status change_key(struct api_ctx *c, json_t *in, struct kms_key **out)
{
	const char *key_id;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	k_status rc = kms_deny_aws_managed(c, k);
	if (k_failed(rc)) {
		kms_key_unref(k);
		return rc;
	}
	*out = k;
	return K_OK;
}

static json_t *find_tag(json_t *tags, const char *key, size_t *index)
{
	size_t i;
	json_t *t;
	json_array_foreach(tags, i, t)
	{
		const char *k = json_string_value(json_object_get(t, "TagKey"));
		if (k != NULL && strcmp(k, key) == 0) {
			if (index != NULL)
				*index = i;
			return t;
		}
	}
	return NULL;
}

/*
 * TagResource (https://docs.aws.amazon.com/kms/latest/APIReference/API_TagResource.html):
 * "If you specify an existing tag key with a different tag value, KMS
 * replaces the current tag value with the specified one." Keys 1..128,
 * values 0..256, at most 50 tags per key, "aws:" reserved (TagException).
 */
k_status kms_op_tag_resource(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)out;
	json_t *tags = json_object_get(in, "Tags");
	if (tags == NULL || json_is_null(tags))
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value null at 'tags' failed to "
				"satisfy constraint: Member must not be null");
	GUARD(kms_validate_tags(c, tags));
	struct kms_key *k = NULL;
	GUARD(change_key(c, in, &k));
	k_status rc = K_OK;
	json_t *doc = json_deep_copy(k->doc);
	ENSURE_GOTO(doc != NULL, K_E_INTERNAL);
	json_t *cur = json_object_get(doc, "Tags");
	if (!json_is_array(cur)) {
		cur = json_array();
		json_object_set_new(doc, "Tags", cur);
	}
	size_t i;
	json_t *t;
	json_array_foreach(tags, i, t)
	{
		const char *key = json_string_value(json_object_get(t, "TagKey"));
		json_t *have = find_tag(cur, key, NULL);
		if (have != NULL)
			json_object_set(have, "TagValue", json_object_get(t, "TagValue"));
		else
			json_array_append_new(cur,
					      json_pack("{s:s, s:O}", "TagKey", key, "TagValue",
							json_object_get(t, "TagValue")));
	}
	if (json_array_size(cur) > MAX_TAGS) {
		json_decref(doc);
		rc = api_fail(c, K_E_LIMIT_EXCEEDED,
			      "The request was rejected because %s would have more than %d tags.",
			      k->arn, MAX_TAGS);
		goto out;
	}
	rc = kms_key_update(k, doc, NULL, NULL);
out:
	kms_key_unref(k);
	return rc;
}

/*
 * UntagResource (https://docs.aws.amazon.com/kms/latest/APIReference/API_UntagResource.html):
 * "To remove a tag, specify the tag key." A key that is not there is no
 * error.
 */
k_status kms_op_untag_resource(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)out;
	json_t *keys = json_object_get(in, "TagKeys");
	if (keys == NULL || json_is_null(keys))
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value null at 'tagKeys' failed to "
				"satisfy constraint: Member must not be null");
	GUARD(api_string_list(c, in, "TagKeys", 1000, 1, 128, &keys));
	size_t i;
	json_t *v;
	json_array_foreach(keys, i, v)
	{
		if (strncmp(json_string_value(v), "aws:", 4) == 0)
			return api_fail(c, K_E_TAG, "Tag keys beginning with 'aws:' are reserved.");
	}
	struct kms_key *k = NULL;
	GUARD(change_key(c, in, &k));
	json_t *doc = json_deep_copy(k->doc);
	if (doc == NULL) {
		kms_key_unref(k);
		return K_E_INTERNAL;
	}
	json_t *cur = json_object_get(doc, "Tags");
	json_array_foreach(keys, i, v)
	{
		size_t at;
		if (find_tag(cur, json_string_value(v), &at) != NULL)
			json_array_remove(cur, at);
	}
	k_status rc = kms_key_update(k, doc, NULL, NULL);
	kms_key_unref(k);
	return rc;
}

/*
 * ListResourceTags (https://docs.aws.amazon.com/kms/latest/APIReference/API_ListResourceTags.html):
 * Limit 1..50 (default 50); the marker is the position of the next tag.
 */
k_status kms_op_list_resource_tags(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *marker;
	int64_t limit = 50;
	bool has_limit;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD(api_int(c, in, "Limit", false, 1, 50, &has_limit, &limit));
	GUARD(api_string(c, in, "Marker", false, 1, 1024, &marker));
	size_t start = 0;
	if (marker != NULL) {
		char *end = NULL;
		unsigned long v = strtoul(marker, &end, 10);
		if (end == NULL || *end != 0 || marker[0] < '0' || marker[0] > '9' || v > MAX_TAGS)
			return api_fail(c, K_E_INVALID_MARKER, "Invalid marker");
		start = (size_t)v;
	}
	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	json_t *tags = json_object_get(k->doc, "Tags");
	size_t total = json_array_size(tags);
	json_t *list = json_array();
	size_t pos;
	for (pos = start; pos < total && json_array_size(list) < (size_t)limit; pos++)
		json_array_append(list, json_array_get(tags, pos));
	json_object_set_new(out, "Tags", list);
	json_object_set_new(out, "Truncated", json_boolean(pos < total));
	if (pos < total) {
		char next[32];
		snprintf(next, sizeof next, "%zu", pos);
		json_object_set_new(out, "NextMarker", json_string(next));
	}
	kms_key_unref(k);
	return K_OK;
}

/* UpdateKeyDescription (https://docs.aws.amazon.com/kms/latest/APIReference/API_UpdateKeyDescription.html). */
k_status kms_op_update_key_description(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)out;
	const char *desc;
	GUARD(api_string(c, in, "Description", true, 0, 8192, &desc));
	struct kms_key *k = NULL;
	GUARD(change_key(c, in, &k));
	json_t *doc = json_deep_copy(k->doc);
	k_status rc = K_E_INTERNAL;
	if (doc != NULL) {
		json_object_set_new(doc, "Description", json_string(desc));
		rc = kms_key_update(k, doc, NULL, NULL);
	}
	kms_key_unref(k);
	return rc;
}
