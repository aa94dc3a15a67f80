/*
 * ops_keys.c — CreateKey, DescribeKey, ListKeys.
 */
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "kms/authz.h"
#include "kms/kms.h"
#include "kms/keystores.h"
#include "kms/multiregion.h"
#include "kms/store.h"
#include "kms/specs.h"
#include "kms/xks_keys.h"
#include "core/json.h"
#include "core/arn.h"
#include "core/banned.h"

/*
 * AWS's default key policy gives the account's root principal full access,
 * which delegates access control to IAM policies.
 * https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
 */
char *kms_default_key_policy(const char *account)
{
	json_t *p = json_pack("{s:s, s:s, s:[{s:s, s:s, s:{s:s}, s:s, s:s}]}", "Version",
			      "2012-10-17", "Id", "key-default-1", "Statement", "Sid",
			      "Enable IAM User Permissions", "Effect", "Allow", "Principal", "AWS",
			      "", "Action", "kms:*", "Resource", "*");
	if (p == NULL)
		return NULL;
	char arn[K_ARN_BUF];
	struct k_arn root = k_arn_of("iam", "", account, K_ARN_ROOT, NULL);
	k_arn_format(&root, arn, sizeof arn);
	json_t *st = json_array_get(json_object_get(p, "Statement"), 0);
	json_object_set_new(json_object_get(st, "Principal"), "AWS", json_string(arn));
	char *s = json_dumps(p, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(p);
	return s;
}

/* Tags: at most 50, TagKey 1..128, TagValue 0..256, "aws:" reserved. */
k_status kms_validate_tags(struct api_ctx *c, json_t *tags)
{
	if (tags == NULL || json_is_null(tags))
		return K_OK;
	if (!json_is_array(tags))
		return api_fail(c, K_E_SERIALIZATION, "Unexpected value type for member 'Tags'");
	if (json_array_size(tags) > 50)
		return api_fail(c, K_E_TAG, "Too many tags: a KMS key can have at most 50 tags.");
	size_t i;
	json_t *t;
	json_array_foreach(tags, i, t)
	{
		if (!json_is_object(t))
			return api_fail(c, K_E_SERIALIZATION,
					"Unexpected value type in member 'Tags'");
		const char *k = NULL, *v = NULL;
		GUARD(api_string(c, t, "TagKey", true, 1, 128, &k));
		GUARD(api_string(c, t, "TagValue", true, 0, 256, &v));
		if (strncmp(k, "aws:", 4) == 0)
			return api_fail(c, K_E_TAG, "Tag keys beginning with 'aws:' are reserved.");
	}
	return K_OK;
}

k_status kms_validate_policy_text(struct api_ctx *c, const char *policy)
{
	json_error_t err;
	json_t *p = json_loads(policy, JSON_REJECT_DUPLICATES, &err);
	json_t *st = json_object_get(p, "Statement");
	bool ok = json_is_object(p) && (json_is_array(st) || json_is_object(st));
	json_decref(p);
	if (!ok)
		return api_fail(c, K_E_MALFORMED_POLICY,
				"Policy contains a statement with no Statement list, or is not "
				"valid JSON.");
	return K_OK;
}

/*
 * CreateKey's KeySpec (or the older CustomerMasterKeySpec), KeyUsage and
 * Origin, with their defaults, checked against each other and against
 * what this server offers; *ks receives the spec's row.
 */
static K_MUST_CHECK k_status choose_key_shape(struct api_ctx *c, const char **spec,
					      const char *cmk_spec, const char **usage,
					      const char **origin, const char *store_id,
					      const char *xks_key_id, bool multi_region,
					      const struct kms_spec **ks)
{
	if (*spec != NULL && cmk_spec != NULL)
		return api_fail(c, K_E_VALIDATION,
				"You cannot specify both KeySpec and CustomerMasterKeySpec. Use "
				"KeySpec only.");
	if (*spec == NULL)
		*spec = cmk_spec ? cmk_spec : "SYMMETRIC_DEFAULT";
	*ks = kms_spec_find(*spec);
	if ((*ks)->name[0] == 0)
		return api_fail(c, K_E_UNSUPPORTED, "KeySpec %s is not supported by this server.",
				*spec);
	if (*usage == NULL)
		*usage = (*ks)->default_usage;
	if (!kms_spec_allows_usage(*ks, *usage))
		return api_fail(c, K_E_VALIDATION, "KeyUsage %s is not compatible with KeySpec %s",
				*usage, *spec);
	if (*origin == NULL)
		*origin = store_id != NULL ? "AWS_CLOUDHSM" : "AWS_KMS";
	/* "You cannot create a multi-Region key in a custom key store": said before the store is looked at. */
	GUARD(kms_mrk_check_create(c, multi_region, *origin, store_id));
	if (strcmp(*origin, "AWS_CLOUDHSM") == 0 || strcmp(*origin, "EXTERNAL_KEY_STORE") == 0 ||
	    store_id != NULL ||
	    xks_key_id != NULL) /* a key in a custom key store (kms/keystores.c) */
		GUARD(kms_cks_check_new_key(c, store_id, *origin, *spec, *usage, xks_key_id));
	if (strcmp(*origin, "EXTERNAL") == 0 && !(*ks)->importable)
		return api_fail(c, K_E_UNSUPPORTED,
				"KeySpec %s does not support imported key material.", *spec);
	return K_OK;
}

/* The new key's stored document (no material yet); NULL if out of memory. */
static json_t *new_key_doc(struct api_ctx *c, const char *id, const char *arn, json_t *in,
			   const char *usage, const char *spec, const char *origin,
			   const struct kms_spec *ks)
{
	const char *policy = json_string_value(json_object_get(in, "Policy"));
	const char *desc = json_string_value(json_object_get(in, "Description"));
	json_t *tags = json_object_get(in, "Tags");
	char *pol = policy ? NULL : kms_default_key_policy(c->principal.account);
	json_t *doc = json_pack(
		"{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "KeyId",
		id, "Arn", arn, "AWSAccountId", c->principal.account, "Region", c->region,
		"CreationDate", kjson_date(api_now_ms(c)), "Description", desc ? desc : "",
		"KeyUsage", usage, "KeySpec", spec, "CustomerMasterKeySpec", spec, "KeyState",
		strcmp(origin, "EXTERNAL") == 0 ? "PendingImport" : "Enabled", "Origin", origin,
		"KeyManager", "CUSTOMER", "MultiRegion", 0, "Policy",
		policy ? policy : (pol ? pol : ""));
	kjson_free(pol);
	if (doc == NULL)
		return NULL;
	json_object_set_new(doc, "Tags", json_is_array(tags) ? json_incref(tags) : json_array());
	kms_spec_describe(ks, usage, doc);
	return doc;
}

/*
 * Generates the key's material in its key store (AWS_KMS origin; an
 * EXTERNAL key waits for ImportKeyMaterial) and stores the document in
 * one durable write.
 */
static K_MUST_CHECK k_status store_new_key(struct api_ctx *c, json_t *doc, const char *id,
					   const char *arn, const char *spec, const char *origin,
					   const char *store_id, const char *xks_key_id)
{
	k_status rc = K_OK;
	struct kbuf wrapped;
	kbuf_init(&wrapped, KEYSTORE_MAX_REF);
	char *text = NULL;
	if (strcmp(origin, "AWS_KMS") == 0) {
		/* AWS_KMS keys are in the software store. */
		GUARD_GOTO(keystore_generate(keystore_find(NULL), spec, kms_doc_material_arn(doc),
					     &wrapped));
		json_t *mats = json_pack("[{s:i, s:s, s:I}]", "Version", 1, "Wrapped",
					 kbuf_cstr(&wrapped), "Created", (json_int_t)c->now);
		ENSURE_GOTO(mats != NULL, K_E_INTERNAL);
		json_object_set_new(doc, "Materials", mats);
	} else if (strcmp(origin, "AWS_CLOUDHSM") == 0) { /* generated in the store's token */
		GUARD_GOTO(kms_cks_generate(c, doc, store_id, arn));
	} else if (strcmp(origin, "EXTERNAL_KEY_STORE") == 0) { /* kinko's layer; the proxy's key */
		GUARD_GOTO(kms_xks_generate(c, doc, store_id, xks_key_id));
	}
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	ENSURE_GOTO(text != NULL, K_E_INTERNAL);
	struct storage_op op = {
		.op = STORAGE_PUT,
		.kind = "key",
		.ns = c->ns,
		.id = id,
		.doc = kslice_cstr(text),
		.expect = STORAGE_ABSENT,
	};
	GUARD_GOTO(storage_apply(kms_store(), &op, 1));
out:
	kjson_free(text);
	kbuf_release(&wrapped);
	return rc;
}

/* XksKeyId: 1 to 128 characters, ^[a-zA-Z0-9-_.]+$ (the service model). */
static K_MUST_CHECK k_status xks_key_id_member(struct api_ctx *c, json_t *in, const char **out)
{
	GUARD(api_string(c, in, "XksKeyId", false, 1, 128, out));
	const char *s = *out;
	if (s != NULL && s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "0123456789-_.")] != 0)
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value '%s' at 'xksKeyId' failed to "
				"satisfy constraint: Member must satisfy regular expression "
				"pattern: ^[a-zA-Z0-9-_.]+$",
				s);
	return K_OK;
}

/*
 * CreateKey (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html).
 * The key's material is generated here by its key store (the reference
 * it gives goes into the document) and stored with the metadata in one
 * durable write before we answer.
 */
k_status kms_op_create_key(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *policy, *desc, *usage, *spec, *cmk_spec, *origin, *store_id, *xks_key_id;
	bool has_bypass, bypass, has_mr, multi_region;
	GUARD(api_string(c, in, "Policy", false, 1, 131072, &policy));
	GUARD(api_string(c, in, "Description", false, 0, 8192, &desc));
	GUARD(api_enum(c, in, "KeyUsage", false, kms_usage_names, &usage));
	GUARD(api_enum(c, in, "CustomerMasterKeySpec", false, kms_spec_names, &cmk_spec));
	GUARD(api_enum(c, in, "KeySpec", false, kms_spec_names, &spec));
	static const char *const origins[] = {"AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM",
					      "EXTERNAL_KEY_STORE", NULL};
	GUARD(api_enum(c, in, "Origin", false, origins, &origin));
	GUARD(api_string(c, in, "CustomKeyStoreId", false, 1, 64, &store_id));
	GUARD(xks_key_id_member(c, in, &xks_key_id));
	GUARD(api_bool(c, in, "BypassPolicyLockoutSafetyCheck", &has_bypass, &bypass));
	GUARD(api_bool(c, in, "MultiRegion", &has_mr, &multi_region));
	GUARD(kms_validate_tags(c, json_object_get(in, "Tags")));
	const struct kms_spec *ks = NULL;
	GUARD(choose_key_shape(c, &spec, cmk_spec, &usage, &origin, store_id, xks_key_id,
			       multi_region, &ks));
	if (policy != NULL) /* authorization: a real policy, and the lockout safety check */
		GUARD(authz_check_new_key_policy(c, policy, NULL, has_bypass && bypass));

	char id[37], arn[K_ARN_BUF];
	kms_mrk_new_key_id(has_mr && multi_region, id);
	kms_key_arn(c, id, arn, sizeof arn);
	json_t *doc = new_key_doc(c, id, arn, in, usage, spec, origin, ks);
	if (doc == NULL)
		return K_E_INTERNAL;
	k_status rc = has_mr && multi_region ? kms_mrk_make_primary(c, doc) : K_OK;
	if (k_ok(rc))
		rc = store_new_key(c, doc, id, arn, spec, origin, store_id, xks_key_id);
	json_decref(doc);
	GUARD(rc);
	struct kms_key *k = NULL;
	GUARD(kms_key_get(c->ns, id, &k));
	json_object_set_new(out, "KeyMetadata", kms_key_metadata(k));
	kms_key_unref(k);
	return K_OK;
}

/* DescribeKey (https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html). */
k_status kms_op_describe_key(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id;
	json_t *tokens;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD(api_string_list(c, in, "GrantTokens", 10, 1, 8192, &tokens));
	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	json_object_set_new(out, "KeyMetadata", kms_key_metadata(k));
	kms_key_unref(k);
	return K_OK;
}

struct list_state {
	json_t *keys;
	size_t limit;
	char last[64];
	bool more;
};

static K_MUST_CHECK k_status list_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				     int64_t version)
{
	struct list_state *st = arg;
	if (json_array_size(st->keys) == st->limit) {
		st->more = true;
		return K_E_LIMIT_EXCEEDED; /* stop; not an error for the caller */
	}
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	const char *arn = json_string_value(json_object_get(j, "Arn"));
	if (arn != NULL)
		json_array_append_new(st->keys,
				      json_pack("{s:s, s:s}", "KeyId", id, "KeyArn", arn));
	json_decref(j);
	snprintf(st->last, sizeof st->last, "%s", id);
	return K_OK;
}

/*
 * ListKeys (https://docs.aws.amazon.com/kms/latest/APIReference/API_ListKeys.html):
 * Limit 1..1000 (default 100); the marker is the last key id returned.
 */
k_status kms_op_list_keys(struct api_ctx *c, json_t *in, json_t *out)
{
	int64_t limit = 100;
	bool has_limit;
	const char *marker;
	GUARD(api_int(c, in, "Limit", false, 1, 1000, &has_limit, &limit));
	GUARD(api_string(c, in, "Marker", false, 1, 1024, &marker));
	if (marker != NULL && strlen(marker) != 36)
		return api_fail(c, K_E_INVALID_MARKER, "Invalid marker");
	struct list_state st = {.keys = json_array(), .limit = (size_t)limit};
	if (st.keys == NULL)
		return K_E_INTERNAL;
	k_status rc = storage_list(kms_store(), "key", c->ns, NULL, marker, (size_t)limit + 1,
				   list_cb, &st);
	if (k_failed(rc) && !k_is(rc, K_E_LIMIT_EXCEEDED)) {
		json_decref(st.keys);
		return rc;
	}
	json_object_set_new(out, "Keys", st.keys);
	json_object_set_new(out, "Truncated", json_boolean(st.more));
	if (st.more)
		json_object_set_new(out, "NextMarker", json_string(st.last));
	return K_OK;
}
