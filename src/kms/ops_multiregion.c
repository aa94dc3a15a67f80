/*
 * ops_multiregion.c — ReplicateKey and UpdatePrimaryRegion, within one
 * deployment: the Regions are namespaces of one store, so a replica is
 * created, and a primary moved, in one storage transaction with every
 * related document (kms/multiregion.h).
 *
 * AWS shows a new replica as Creating and both keys of UpdatePrimaryRegion
 * as Updating while it copies the key between Regions; here the copy is
 * the transaction itself, so those states never last past the call and
 * no caller sees them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/regions.h"
#include "core/arn.h"
#include "core/json.h"
#include "core/log.h"
#include "kms/authz.h"
#include "kms/mrk_peer.h"
#include "kms/multiregion.h"
#include "kms/store.h"
#include "core/banned.h"

#define ROTATE_TASK KMS_ROTATE_TASK

static const char *key_region(const struct kms_key *k)
{
	return k->ns + strcspn(k->ns, ":") + 1;
}

/*
 * A Region member: "Length Constraints: Minimum length of 1. Maximum
 * length of 32. Pattern: ^([a-z]+-){2,3}\d+$" (ReplicaRegion,
 * PrimaryRegion), then a Region kinko serves, other than the key's own.
 */
static K_MUST_CHECK k_status region_member(struct api_ctx *c, json_t *in, const char *member,
					   const struct kms_key *k, const char **out)
{
	GUARD(api_string(c, in, member, true, 1, 32, out));
	const char *s = *out;
	size_t dashes = 0, i = 0;
	bool ok = true;
	while (ok && dashes < 3 && s[i] >= 'a' && s[i] <= 'z') {
		while (s[i] >= 'a' && s[i] <= 'z')
			i++;
		ok = s[i] == '-';
		if (ok) {
			i++;
			dashes++;
		}
	}
	size_t digits = i;
	while (s[i] >= '0' && s[i] <= '9')
		i++;
	if (!ok || dashes < 2 || i == digits || s[i] != 0)
		return api_fail(c, K_E_VALIDATION,
				"1 validation error detected: Value '%s' at '%s' failed to satisfy "
				"constraint: Member must satisfy regular expression pattern: "
				"^([a-z]+-){2,3}\\d+$",
				s, member[0] == 'R' ? "replicaRegion" : "primaryRegion");
	if (!config_region_known(s))
		return api_fail(c, K_E_UNSUPPORTED,
				"The Region %s is not supported by this server.", s);
	if (strcmp(key_region(k), s) == 0)
		return api_fail(c, K_E_UNSUPPORTED, "%s is already in the Region %s.", k->arn, s);
	return K_OK;
}

/* The key must be a multi-Region primary key (ReplicateKey, UpdatePrimaryRegion). */
static K_MUST_CHECK k_status require_primary(struct api_ctx *c, const struct kms_key *k)
{
	if (!kms_key_is_mrk(k))
		return api_fail(c, K_E_UNSUPPORTED, "%s is not a multi-Region key.", k->arn);
	if (kms_key_is_mrk_replica(k))
		return api_fail(c, K_E_UNSUPPORTED,
				"%s is a multi-Region replica key. Use its primary key.", k->arn);
	return K_OK;
}

/* Sets a document's MultiRegionConfiguration; takes replicas' reference. */
static K_MUST_CHECK k_status set_config(json_t *doc, bool primary, const char *primary_arn,
					const char *primary_region, json_t *replicas)
{
	json_t *cfg = json_pack("{s:s, s:{s:s, s:s}, s:o}", "MultiRegionKeyType",
				primary ? "PRIMARY" : "REPLICA", "PrimaryKey", "Arn", primary_arn,
				"Region", primary_region, "ReplicaKeys", replicas);
	ENSURE(cfg != NULL, K_E_INTERNAL);
	json_object_set_new(doc, "MultiRegionConfiguration", cfg);
	return K_OK;
}

/* The members a replica does not share with its primary. */
static const char *const not_shared[] = {"Grants",
					 "DeletionDate",
					 "PendingWindowInDays",
					 "StateBeforeDeletion",
					 "KeyRotationEnabled",
					 "RotationPeriodInDays",
					 "NextRotationDate",
					 "ValidTo",
					 "ExpirationModel",
					 "LastUpdatedDate",
					 NULL};

/*
 * The replica's document: the primary's shared properties (key spec and
 * usage, origin, material and its rotations), its own ARN, dates,
 * description, policy and tags; grants, aliases, rotation settings and
 * the enabled state are not shared
 * (https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-overview.html).
 * A replica of a key with imported material is created without material,
 * PendingImport, and takes the primary's material by its own import
 * (https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-import.html).
 */
static json_t *replica_doc(const struct api_ctx *c, const struct kms_key *k, const char *arn,
			   const char *region, const char *desc, const char *policy, json_t *tags)
{
	json_t *doc = json_deep_copy(k->doc);
	if (doc == NULL)
		return NULL;
	for (size_t i = 0; not_shared[i] != NULL; i++)
		json_object_del(doc, not_shared[i]);
	json_object_set_new(doc, "Arn", json_string(arn));
	json_object_set_new(doc, "Region", json_string(region));
	json_object_set_new(doc, "CreationDate", kjson_date(api_now_ms(c)));
	json_object_set_new(doc, "Description", json_string(desc != NULL ? desc : ""));
	json_object_set_new(doc, "Policy", json_string(policy));
	json_object_set_new(doc, "Tags", json_is_array(tags) ? json_incref(tags) : json_array());
	const char *origin = json_string_value(json_object_get(doc, "Origin"));
	bool external = origin != NULL && strcmp(origin, "EXTERNAL") == 0;
	if (external)
		json_object_del(doc, "Materials");
	json_object_set_new(doc, "KeyState", json_string(external ? "PendingImport" : "Enabled"));
	return doc;
}

/* ReplicaKeys of the set after the replica (arn, region) joins it. */
static json_t *replicas_with(const struct kms_key *k, const char *arn, const char *region)
{
	json_t *cfg = json_object_get(k->doc, "MultiRegionConfiguration");
	json_t *list = json_deep_copy(json_object_get(cfg, "ReplicaKeys"));
	if (list == NULL)
		list = json_array();
	if (list != NULL)
		json_array_append_new(list, json_pack("{s:s, s:s}", "Arn", arn, "Region", region));
	return list;
}

/* Adds every existing related key (the primary k and rel[]) with the new ReplicaKeys. */
static K_MUST_CHECK k_status relink_all(struct kms_key *k, struct kms_key **rel, size_t n,
					json_t *list, struct kms_mrk_write *w)
{
	for (size_t i = 0; i <= n; i++) {
		struct kms_key *x = i == 0 ? k : rel[i - 1];
		json_t *doc = json_deep_copy(x->doc);
		ENSURE(doc != NULL, K_E_INTERNAL);
		k_status rc = set_config(doc, i == 0, k->arn, key_region(k), json_deep_copy(list));
		if (k_failed(rc)) {
			json_decref(doc);
			return rc;
		}
		GUARD(kms_mrk_write_put(w, x, doc));
	}
	return K_OK;
}

struct replica_req {
	const char *region, *desc, *policy;
	json_t *tags;
	char ns[64], arn[K_ARN_BUF];
};

/*
 * The replica's document for r and the related keys' new list of replicas
 * (both owned by the caller, set even on failure), its configuration set.
 */
static K_MUST_CHECK k_status replica_parts(struct api_ctx *c, struct kms_key *k,
					   struct replica_req *r, json_t **list, json_t **doc)
{
	*list = replicas_with(k, r->arn, r->region);
	*doc = replica_doc(c, k, r->arn, r->region, r->desc, r->policy, r->tags);
	ENSURE(*list != NULL && *doc != NULL, K_E_INTERNAL);
	return set_config(*doc, false, k->arn, key_region(k), json_deep_copy(*list));
}

/*
 * Writes the replica and the new configuration of every related key in
 * one transaction (the replica's record must not exist yet).
 */
static K_MUST_CHECK k_status write_replica(struct api_ctx *c, struct kms_key *k,
					   struct replica_req *r, struct kms_key **rel, size_t n)
{
	struct kms_mrk_write *w = kms_mrk_write_new();
	ENSURE(w != NULL, K_E_INTERNAL);
	char *text = NULL;
	json_t *list = NULL, *doc = NULL;
	k_status rc = K_OK;
	GUARD_GOTO(replica_parts(c, k, r, &list, &doc));
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	ENSURE_GOTO(text != NULL, K_E_INTERNAL);
	GUARD_GOTO(relink_all(k, rel, n, list, w));
	GUARD_GOTO(
		kms_mrk_peer_enqueue(k, json_object_get(doc, "MultiRegionConfiguration"), NULL, w));
	ENSURE_GOTO(w->n < KMS_MRK_MAX_OPS, K_E_INTERNAL);
	w->ops[w->n++] = (struct storage_op){.op = STORAGE_PUT,
					     .kind = "key",
					     .ns = r->ns,
					     .id = k->id,
					     .doc = kslice_cstr(text),
					     .expect = STORAGE_ABSENT};
	rc = storage_apply(kms_store(), w->ops, w->n);
	struct kms_key *there = NULL;
	if (k_is(rc, K_E_CONFLICT) && k_ok(kms_key_get(r->ns, k->id, &there)))
		rc = api_fail(c, K_E_ALREADY_EXISTS, "%s was replicated to %s meanwhile.", k->arn,
			      r->region);
	kms_key_unref(there);
out:
	kjson_free(text);
	json_decref(doc);
	json_decref(list);
	kms_mrk_write_free(w);
	return rc;
}

/*
 * A replica in a Region another deployment serves (kms/mrk_peer.h): the
 * peer creates it, then every related key here records it in one
 * transaction, with an outbox record for each other peer Region (their
 * copies of the configuration change too).
 */
static K_MUST_CHECK k_status replicate_to_peer(struct api_ctx *c, struct kms_key *k,
					       struct replica_req *r, struct kms_key **rel,
					       size_t n, json_t *out)
{
	struct kms_mrk_write *w = kms_mrk_write_new();
	ENSURE(w != NULL, K_E_INTERNAL);
	json_t *meta = NULL, *list = NULL, *doc = NULL;
	k_status rc = K_OK;
	GUARD_GOTO(replica_parts(c, k, r, &list, &doc));
	if (kms_mrk_is_external(k->doc))
		GUARD_GOTO(kms_mrk_peer_commit(c, k, doc));
	GUARD_GOTO(kms_mrk_peer_replicate(c, k, doc, r->region, &meta));
	GUARD_GOTO(relink_all(k, rel, n, list, w));
	GUARD_GOTO(kms_mrk_peer_enqueue(k, json_object_get(doc, "MultiRegionConfiguration"),
					r->region, w));
	GUARD_GOTO(storage_apply(kms_store(), w->ops, w->n));
	json_object_set_new(out, "ReplicaKeyMetadata", meta);
	meta = NULL;
	json_object_set_new(out, "ReplicaPolicy", json_string(r->policy));
	json_object_set_new(out, "ReplicaTags",
			    json_is_array(r->tags) ? json_incref(r->tags) : json_array());
out:
	json_decref(meta);
	json_decref(doc);
	json_decref(list);
	kms_mrk_write_free(w);
	return rc;
}

/* True if k's set of related keys has a key in region. */
static bool set_has_region(const struct kms_key *k, const char *region)
{
	json_t *cfg = json_object_get(k->doc, "MultiRegionConfiguration");
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(cfg, "ReplicaKeys"), i, e)
	{
		const char *rr = json_string_value(json_object_get(e, "Region"));
		if (rr != NULL && strcmp(rr, region) == 0)
			return true;
	}
	return false;
}

/* The replica's answer and its creation event in the replica's Region. */
static K_MUST_CHECK k_status replica_answer(struct replica_req *r, const char *id, json_t *out)
{
	struct kms_key *nk = NULL;
	GUARD(kms_key_get(r->ns, id, &nk));
	json_object_set_new(out, "ReplicaKeyMetadata", kms_key_metadata(nk));
	json_object_set_new(out, "ReplicaPolicy", json_string(r->policy));
	json_object_set_new(out, "ReplicaTags",
			    json_is_array(r->tags) ? json_incref(r->tags) : json_array());
	/*
	 * "A ReplicateKey request results in a ReplicateKey operation and a
	 * CreateKey operation."
	 * (https://docs.aws.amazon.com/kms/latest/developerguide/ct-replicate-key.html)
	 * The pipeline records the call in the primary's Region; the
	 * replica's Region gets the CreateKey as work KMS did there.
	 */
	json_t *details = json_pack("{s:s}", "replicaKeyArn", nk->arn);
	k_status rc = kms_key_service_event(nk, "CreateKey", details, K_OK);
	json_decref(details);
	kms_key_unref(nk);
	return rc;
}

/* Members of ReplicateKey (besides KeyId), the policy checked and defaulted. */
static K_MUST_CHECK k_status replicate_members(struct api_ctx *c, json_t *in,
					       const struct kms_key *k, struct replica_req *r,
					       char **default_pol)
{
	bool has_bypass = false, bypass = false;
	GUARD(region_member(c, in, "ReplicaRegion", k, &r->region));
	GUARD(api_string(c, in, "Policy", false, 1, 131072, &r->policy));
	GUARD(api_bool(c, in, "BypassPolicyLockoutSafetyCheck", &has_bypass, &bypass));
	GUARD(api_string(c, in, "Description", false, 0, 8192, &r->desc));
	r->tags = json_object_get(in, "Tags");
	GUARD(kms_validate_tags(c, r->tags));
	GUARD(require_primary(c, k));
	/*
	 * Besides kms:ReplicateKey on the primary key (the row), AWS wants
	 * kms:CreateKey, and with tags kms:TagResource, in the caller's IAM
	 * policy (https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-auth.html).
	 */
	GUARD(authz_identity(c, "kms:CreateKey", "*"));
	if (json_array_size(r->tags) > 0)
		GUARD(authz_identity(c, "kms:TagResource", "*"));
	if (r->policy != NULL)
		GUARD(authz_check_new_key_policy(c, r->policy, NULL, has_bypass && bypass));
	char account[16];
	snprintf(account, sizeof account, "%.*s", (int)strcspn(k->ns, ":"), k->ns);
	snprintf(r->ns, sizeof r->ns, "%s:%s", account, r->region);
	struct k_arn a = k_arn_of("kms", r->region, account, K_ARN_KEY, k->id);
	k_arn_format(&a, r->arn, sizeof r->arn);
	if (r->policy == NULL) {
		*default_pol = kms_default_key_policy(account);
		ENSURE(*default_pol != NULL, K_E_INTERNAL);
		r->policy = *default_pol;
	}
	return K_OK;
}

/*
 * ReplicateKey (https://docs.aws.amazon.com/kms/latest/APIReference/API_ReplicateKey.html):
 * "Replicate a multi-Region key into the specified Region. This operation
 * creates a multi-Region replica key based on a multi-Region primary key
 * in a different Region of the same AWS partition." A Region that already
 * has a related key is AlreadyExistsException.
 */
k_status kms_op_replicate_key(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	struct kms_key *k = NULL, *rel[KMS_MRK_MAX_RELATED], *there = NULL;
	size_t n = 0;
	char *pol = NULL;
	struct replica_req r = {0};
	k_status rc = K_OK;
	GUARD(kms_op_key(c, &k));
	GUARD_GOTO(replicate_members(c, in, k, &r, &pol));
	rc = kms_key_get(r.ns, k->id, &there);
	kms_key_unref(there);
	if (k_is(rc, K_E_NOT_FOUND) && set_has_region(k, r.region))
		rc = K_OK; /* a replica another deployment holds */
	if (k_ok(rc)) {
		rc = api_fail(c, K_E_ALREADY_EXISTS,
			      "Multi-Region key %s already has a related key in the Region %s.",
			      k->arn, r.region);
		goto out;
	}
	if (!k_is(rc, K_E_NOT_FOUND))
		goto out;
	rc = K_OK;
	GUARD_GOTO(kms_mrk_related(k, rel, &n));
	if (n + 1 >= KMS_MRK_MAX_RELATED) {
		kms_mrk_unref_all(rel, n);
		rc = api_fail(c, K_E_LIMIT_EXCEEDED, "%s has the most replica keys it can have.",
			      k->arn);
		goto out;
	}
	if (kms_mrk_region_is_peer(r.region)) {
		rc = replicate_to_peer(c, k, &r, rel, n, out);
		kms_mrk_unref_all(rel, n);
		goto out;
	}
	rc = write_replica(c, k, &r, rel, n);
	kms_mrk_unref_all(rel, n);
	GUARD_GOTO(rc);
	rc = replica_answer(&r, k->id, out);
out:
	kjson_free(pol);
	kms_key_unref(k);
	return rc;
}

/* Moves automatic rotation's settings and due record from the old primary to the new one. */
static K_MUST_CHECK k_status move_rotation(const struct kms_key *from, json_t *from_doc,
					   const struct kms_key *to, json_t *to_doc,
					   struct kms_mrk_write *w)
{
	static const char *const members[] = {"KeyRotationEnabled", "RotationPeriodInDays",
					      "NextRotationDate", NULL};
	for (size_t i = 0; members[i] != NULL; i++) {
		json_t *v = json_object_get(from_doc, members[i]);
		if (v != NULL)
			json_object_set(to_doc, members[i], v);
		else
			json_object_del(to_doc, members[i]);
	}
	int64_t next = json_integer_value(json_object_get(from_doc, "NextRotationDate"));
	bool on = json_is_true(json_object_get(from_doc, "KeyRotationEnabled"));
	for (size_t i = 0; members[i] != NULL; i++)
		json_object_del(from_doc, members[i]);
	if (!on || next <= 0)
		return K_OK;
	GUARD(kms_mrk_write_due(w, false, next, ROTATE_TASK, from->ns, from->id));
	return kms_mrk_write_due(w, true, next, ROTATE_TASK, to->ns, to->id);
}

/* Every related document with the primary moved to np; one transaction. */
static K_MUST_CHECK k_status swap_primary(struct kms_key *k, struct kms_key *np,
					  struct kms_key **rel, size_t n)
{
	struct kms_mrk_write *w = kms_mrk_write_new();
	ENSURE(w != NULL, K_E_INTERNAL);
	json_t *list = json_array(), *kdoc = json_deep_copy(k->doc), *npdoc = NULL;
	k_status rc = K_OK;
	ENSURE_GOTO(list != NULL && kdoc != NULL, K_E_INTERNAL);
	for (size_t i = 0; i <= n; i++) {
		struct kms_key *x = i == 0 ? k : rel[i - 1];
		if (x != np)
			json_array_append_new(list, json_pack("{s:s, s:s}", "Arn", x->arn, "Region",
							      key_region(x)));
	}
	npdoc = json_deep_copy(np->doc);
	ENSURE_GOTO(npdoc != NULL, K_E_INTERNAL);
	GUARD_GOTO(move_rotation(k, kdoc, np, npdoc, w));
	for (size_t i = 0; i <= n; i++) {
		struct kms_key *x = i == 0 ? k : rel[i - 1];
		json_t *doc = x == k ? kdoc : x == np ? npdoc : json_deep_copy(x->doc);
		if (x == k)
			kdoc = NULL;
		else if (x == np)
			npdoc = NULL;
		ENSURE_GOTO(doc != NULL, K_E_INTERNAL);
		rc = set_config(doc, x == np, np->arn, key_region(np), json_deep_copy(list));
		if (k_failed(rc)) {
			json_decref(doc);
			goto out;
		}
		GUARD_GOTO(kms_mrk_write_put(w, x, doc));
	}
	/* The peers' copies of the configuration follow, sent from the new primary. */
	GUARD_GOTO(kms_mrk_peer_enqueue(np, NULL, NULL, w));
	rc = storage_apply(kms_store(), w->ops, w->n);
out:
	json_decref(list);
	json_decref(kdoc);
	json_decref(npdoc);
	kms_mrk_write_free(w);
	return rc;
}

/*
 * "The UpdatePrimaryRegion operation writes two CloudTrail log entries:
 * one in the Region with the multi-Region primary key that is converted
 * to a replica key, and one in the Region with a multi-Region replica key
 * that is converted to a primary key."
 * (https://docs.aws.amazon.com/kms/latest/developerguide/ct-update-primary-region.html)
 * The pipeline records the call in the caller's Region; this is the
 * entry of the new primary's Region, with the new primary as resource.
 */
static K_MUST_CHECK k_status new_primary_event(const struct kms_key *np, const char *region)
{
	json_t *d = json_pack("{s:s, s:s}", "keyId", np->arn, "primaryRegion", region);
	k_status rc = kms_key_service_event(np, "UpdatePrimaryRegion", d, K_OK);
	json_decref(d);
	return rc;
}

/*
 * UpdatePrimaryRegion (https://docs.aws.amazon.com/kms/latest/APIReference/API_UpdatePrimaryRegion.html):
 * "Changes the primary key of a multi-Region key. This operation changes
 * the replica key in the specified Region to a primary key and changes
 * the former primary key to a replica key." "PrimaryRegion ... There must
 * be an existing replica key in this Region."
 */
k_status kms_op_update_primary_region(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)out;
	const char *key_id, *region;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	struct kms_key *k = NULL, *rel[KMS_MRK_MAX_RELATED], *np = NULL;
	size_t n = 0;
	k_status rc = K_OK;
	GUARD(kms_op_key(c, &k));
	GUARD_GOTO(region_member(c, in, "PrimaryRegion", k, &region));
	GUARD_GOTO(require_primary(c, k));
	if (kms_mrk_region_is_peer(region)) {
		/* The replica's key policy is the peer's to hold: only the primary's is checked. */
		rc = kms_mrk_peer_update_primary(c, k, region);
		goto out;
	}
	GUARD_GOTO(kms_mrk_related(k, rel, &n));
	for (size_t i = 0; i < n; i++) {
		if (strcmp(key_region(rel[i]), region) == 0)
			np = rel[i];
	}
	/* kms:UpdatePrimaryRegion on the primary (the row) and on the replica
	 * that becomes the primary (multi-region-keys-auth.html). */
	if (np != NULL)
		rc = authz_key(c, np);
	if (k_failed(rc)) {
		kms_mrk_unref_all(rel, n);
		goto out;
	}
	if (np == NULL) {
		char arn[K_ARN_BUF];
		char account[16];
		snprintf(account, sizeof account, "%.*s", (int)strcspn(k->ns, ":"), k->ns);
		struct k_arn a = k_arn_of("kms", region, account, K_ARN_KEY, k->id);
		k_arn_format(&a, arn, sizeof arn);
		rc = api_fail(c, K_E_NOT_FOUND, "Key '%s' does not exist", arn);
	} else {
		rc = swap_primary(k, np, rel, n);
		if (k_ok(rc))
			rc = new_primary_event(np, region);
	}
	kms_mrk_unref_all(rel, n);
out:
	kms_key_unref(k);
	return rc;
}
