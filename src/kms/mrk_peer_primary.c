/*
 * mrk_peer_primary.c — UpdatePrimaryRegion to a Region another deployment
 * serves (mrk_peer.h; docs/REGIONS.md "Across deployments").
 *
 * The primary's deployment asks the peer that holds the replica to make
 * it the primary (KinkoPeer.UpdatePrimaryRegionIn: the new configuration,
 * the rotations and automatic rotation's settings, and for AWS_KMS keys
 * every material version sealed for the peer, so a rotation the outbox
 * had not delivered yet is not lost). Once the peer has answered, this
 * side makes its key a replica of the new primary in one transaction with
 * an outbox record for every other peer Region. From then on the new
 * primary's deployment is the one that rotates and sends rotations.
 *
 * A peer that cannot be reached or refuses leaves nothing changed here:
 * the call answers an error. If the peer made the change but its answer
 * was lost, the same call again completes it (the peer answers a repeat
 * with the primary it already has).
 */
#include "kms/mrk_peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/peers.h"
#include "core/arn.h"
#include "core/json.h"
#include "core/log.h"
#include "kms/store.h"
#include "core/banned.h"

/* Automatic rotation's settings: the primary's, moved with it. */
static const char *const rotation_members[] = {"KeyRotationEnabled", "RotationPeriodInDays",
					       "NextRotationDate", NULL};

static const char *region_of(const struct kms_key *k)
{
	return k->ns + strcspn(k->ns, ":") + 1;
}

static const char *cfg_str(json_t *cfg, const char *obj, const char *member)
{
	json_t *o = obj != NULL ? json_object_get(cfg, obj) : cfg;
	return json_string_value(json_object_get(o, member));
}

/*
 * The configuration after the replica in `region` becomes the primary:
 * PrimaryKey that replica, ReplicaKeys every other related key (the former
 * primary first). NULL if the set has no key in region.
 */
static json_t *config_with_primary(const struct kms_key *k, const char *region)
{
	json_t *old = json_object_get(k->doc, "MultiRegionConfiguration");
	json_t *list = json_array(), *np = NULL;
	if (list == NULL)
		return NULL;
	json_array_append_new(list, json_pack("{s:s, s:s}", "Arn", k->arn, "Region", region_of(k)));
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(old, "ReplicaKeys"), i, e)
	{
		const char *r = json_string_value(json_object_get(e, "Region"));
		if (r != NULL && strcmp(r, region) == 0)
			np = e;
		else
			json_array_append(list, e);
	}
	if (np == NULL || !json_is_string(json_object_get(np, "Arn"))) {
		json_decref(list);
		return NULL;
	}
	return json_pack("{s:s, s:{s:O, s:s}, s:o}", "MultiRegionKeyType", "REPLICA", "PrimaryKey",
			 "Arn", json_object_get(np, "Arn"), "Region", region, "ReplicaKeys", list);
}

/* cfg with MultiRegionKeyType set for key arn; a new reference. */
static json_t *config_for(json_t *cfg, const char *arn)
{
	json_t *own = json_deep_copy(cfg);
	if (own != NULL) {
		const char *p = cfg_str(cfg, "PrimaryKey", "Arn");
		bool primary = p != NULL && strcmp(p, arn) == 0;
		json_object_set_new(own, "MultiRegionKeyType",
				    json_string(primary ? "PRIMARY" : "REPLICA"));
	}
	return own;
}

/*
 * Adds to w every related key of k that this deployment holds (k's own
 * document is the caller's) with configuration cfg.
 */
static K_MUST_CHECK k_status relink_local(const struct kms_key *k, json_t *cfg,
					  struct kms_mrk_write *w)
{
	struct kms_key *rel[KMS_MRK_MAX_RELATED];
	size_t n = 0;
	GUARD(kms_mrk_related(k, rel, &n));
	k_status rc = K_OK;
	for (size_t i = 0; i < n && k_ok(rc); i++) {
		json_t *doc = json_deep_copy(rel[i]->doc);
		json_t *own = config_for(cfg, rel[i]->arn);
		if (doc == NULL || own == NULL) {
			json_decref(doc);
			json_decref(own);
			rc = K_E_INTERNAL;
			break;
		}
		json_object_set_new(doc, "MultiRegionConfiguration", own);
		rc = kms_mrk_write_put(w, rel[i], doc);
	}
	kms_mrk_unref_all(rel, n);
	return rc;
}

/* The request to the peer: the new configuration, the rotations, the material. */
static K_MUST_CHECK k_status update_body(const struct kms_key *k, json_t *cfg, const char *region,
					 json_t **out)
{
	json_t *rots = json_object_get(k->doc, "Rotations");
	json_t *key = json_pack("{s:O, s:o, s:o}", "MultiRegionConfiguration", cfg, "Rotations",
				json_is_array(rots) ? json_incref(rots) : json_array(), "Materials",
				kms_mrk_peer_versions(k->doc));
	*out = key != NULL ? json_pack("{s:s, s:s, s:o}", "KeyId", k->id, "FormerPrimaryRegion",
				       region_of(k), "Key", key)
			   : NULL;
	ENSURE(*out != NULL, K_E_INTERNAL);
	for (size_t i = 0; rotation_members[i] != NULL; i++) {
		json_t *v = json_object_get(k->doc, rotation_members[i]);
		if (v != NULL)
			json_object_set(key, rotation_members[i], v);
	}
	/* Imported material never travels: each Region imports its own. */
	const char *origin = json_string_value(json_object_get(k->doc, "Origin"));
	if (origin == NULL || strcmp(origin, "AWS_KMS") != 0 ||
	    json_array_size(json_object_get(k->doc, "Materials")) == 0)
		return K_OK;
	json_t *sealed = NULL;
	GUARD(kms_mrk_peer_sealed(k, "update-primary", region, &sealed));
	json_object_set_new(*out, "EncryptedKeyMaterial", sealed);
	return K_OK;
}

/*
 * The end of a move on either side: k's new document (taken), every
 * related key here with configuration cfg, the outbox records for the
 * peer Regions but `skip`, all in w's one transaction.
 */
static K_MUST_CHECK k_status write_move(struct kms_mrk_write *w, struct kms_key *k, json_t *doc,
					json_t *cfg, const char *skip)
{
	GUARD(kms_mrk_write_put(w, k, doc));
	GUARD(relink_local(k, cfg, w));
	GUARD(kms_mrk_peer_enqueue(k, cfg, skip, w));
	k_status rc = storage_apply(kms_store(), w->ops, w->n);
	if (k_ok(rc))
		kms_cache_forget(k->ns, k->id);
	return rc;
}

/* This side after the peer's answer: k a replica of the new primary; one transaction. */
static K_MUST_CHECK k_status become_replica(struct kms_key *k, json_t *cfg, const char *region)
{
	struct kms_mrk_write *w = kms_mrk_write_new();
	ENSURE(w != NULL, K_E_INTERNAL);
	json_t *doc = json_deep_copy(k->doc), *own = config_for(cfg, k->arn);
	k_status rc = K_OK;
	ENSURE_GOTO(doc != NULL && own != NULL, K_E_INTERNAL);
	json_object_set_new(doc, "MultiRegionConfiguration", own);
	own = NULL;
	int64_t next = json_integer_value(json_object_get(doc, "NextRotationDate"));
	bool on = json_is_true(json_object_get(doc, "KeyRotationEnabled"));
	/* The settings handed over are the new primary's: shown here as its copy. */
	json_t *handed = kms_rotation_settings(k);
	ENSURE_GOTO(handed != NULL, K_E_INTERNAL);
	json_object_set_new(doc, KMS_MRK_PRIMARY_ROTATION, handed);
	for (size_t i = 0; rotation_members[i] != NULL; i++)
		json_object_del(doc, rotation_members[i]);
	if (on && next > 0)
		GUARD_GOTO(kms_mrk_write_due(w, false, next, KMS_ROTATE_TASK, k->ns, k->id));
	rc = write_move(w, k, doc, cfg, region);
	doc = NULL;
out:
	json_decref(doc);
	json_decref(own);
	kms_mrk_write_free(w);
	return rc;
}

static k_status peer_refusal(struct api_ctx *c, const struct kms_key *k, const char *region,
			     k_status rc)
{
	if (k_is(rc, K_E_NOT_FOUND))
		return api_fail(c, K_E_NOT_FOUND,
				"The replica of %s in the Region %s does not exist.", k->arn,
				region);
	if (k_is(rc, K_E_UNSUPPORTED))
		return api_fail(
			c, K_E_UNSUPPORTED,
			"The deployment that serves the Region %s cannot reach every related "
			"key of %s; its replica cannot become the primary key.",
			region, k->arn);
	if (k_is(rc, K_E_INVALID_STATE))
		return api_fail(
			c, K_E_INVALID_STATE,
			"The replica of %s in the Region %s cannot become the primary key in "
			"its current state.",
			k->arn, region);
	return api_fail(c, K_E_INTERNAL,
			"The deployment that serves the Region %s did not make its replica the "
			"primary key.",
			region);
}

k_status kms_mrk_peer_update_primary(struct api_ctx *c, struct kms_key *k, const char *region)
{
	json_t *cfg = config_with_primary(k, region);
	if (cfg == NULL) {
		char account[16], arn[K_ARN_BUF];
		snprintf(account, sizeof account, "%.*s", (int)strcspn(k->ns, ":"), k->ns);
		struct k_arn a = k_arn_of("kms", region, account, K_ARN_KEY, k->id);
		k_arn_format(&a, arn, sizeof arn);
		return api_fail(c, K_E_NOT_FOUND, "Key '%s' does not exist", arn);
	}
	json_t *body = NULL, *ans = NULL;
	struct kbuf why;
	kbuf_init(&why, KBUF_NOTE_MAX);
	k_status rc = update_body(k, cfg, region, &body);
	if (k_ok(rc))
		rc = kms_mrk_peer_call(region, "UpdatePrimaryRegionIn", body, &ans, &why);
	if (k_failed(rc)) {
		LOG_WARN("mrk: UpdatePrimaryRegion of %s to %s: %s (%s)", k->arn, region,
			 k_status_name(rc), kbuf_cstr(&why));
		rc = peer_refusal(c, k, region, rc);
		goto out;
	}
	rc = become_replica(k, cfg, region);
	if (k_failed(rc)) {
		LOG_ERROR(
			"mrk: %s is the primary key in %s, but %s did not become its replica: %s; "
			"the same UpdatePrimaryRegion again completes it",
			cfg_str(cfg, "PrimaryKey", "Arn"), region, k->arn, k_status_name(rc));
		rc = api_fail(c, K_E_INTERNAL,
			      "%s changed meanwhile; repeat the call to complete the update.",
			      k->arn);
	}
out:
	json_decref(cfg);
	json_decref(body);
	json_decref(ans);
	kbuf_release(&why);
	return rc;
}

/* ---- the receiving side: KinkoPeer.UpdatePrimaryRegionIn ---- */

struct update_in {
	const char *id, *former;
	json_t *key, *cfg; /* borrowed from the request */
	char arn[K_ARN_BUF], march[K_ARN_BUF];
};

/*
 * The request must name a multi-Region key of the caller's account here,
 * with this Region's key as the new primary, and come from the Region of
 * its current primary, which a peer deployment serves.
 */
static K_MUST_CHECK k_status check_update_in(struct api_ctx *c, json_t *in, struct update_in *u)
{
	u->id = json_string_value(json_object_get(in, "KeyId"));
	u->former = json_string_value(json_object_get(in, "FormerPrimaryRegion"));
	u->key = json_object_get(in, "Key");
	u->cfg = json_object_get(u->key, "MultiRegionConfiguration");
	if (!kms_mrk_id_valid(u->id) || u->former == NULL || !json_is_object(u->cfg))
		return api_fail(c, K_E_VALIDATION,
				"KeyId, FormerPrimaryRegion and Key are required.");
	struct k_arn a = k_arn_of("kms", c->region, c->principal.account, K_ARN_KEY, u->id);
	k_arn_format(&a, u->arn, sizeof u->arn);
	struct k_arn m = k_arn_of("kms", "", c->principal.account, K_ARN_KEY, u->id);
	k_arn_format(&m, u->march, sizeof u->march);
	const char *np = cfg_str(u->cfg, "PrimaryKey", "Arn");
	const char *npr = cfg_str(u->cfg, "PrimaryKey", "Region");
	if (np == NULL || npr == NULL || strcmp(np, u->arn) != 0 || strcmp(npr, c->region) != 0 ||
	    !json_is_array(json_object_get(u->cfg, "ReplicaKeys")))
		return api_fail(c, K_E_VALIDATION, "The new primary key must be %s.", u->arn);
	if (!kms_mrk_region_is_peer(u->former))
		return api_fail(c, K_E_UNSUPPORTED,
				"The Region %s is not served by a peer deployment of this one.",
				u->former);
	return K_OK;
}

/* The replica may become the primary: a replica of the caller's Region, not being deleted. */
static K_MUST_CHECK k_status check_replica(struct api_ctx *c, const struct kms_key *k,
					   const struct update_in *u)
{
	const char *march = json_string_value(json_object_get(k->doc, "MaterialArn"));
	if (!kms_key_is_mrk(k) || march == NULL || strcmp(march, u->march) != 0)
		return api_fail(c, K_E_UNSUPPORTED, "%s is not a multi-Region key.", k->arn);
	json_t *cfg = json_object_get(k->doc, "MultiRegionConfiguration");
	const char *pr = cfg_str(cfg, "PrimaryKey", "Region");
	if (pr == NULL || strcmp(pr, u->former) != 0)
		return api_fail(c, K_E_INVALID_STATE,
				"The primary key of %s is not in the Region %s.", k->arn,
				u->former);
	switch (k->state) {
	case KS_PENDING_DELETION:
	case KS_PENDING_REPLICA_DELETION:
	case KS_CREATING:
	case KS_UPDATING:
		return api_fail(c, K_E_INVALID_STATE, "%s is %s.", k->arn,
				kms_state_name(k->state));
	default:
		return K_OK;
	}
}

/*
 * The new primary sends rotations and changes to every related key: each
 * one's Region must be this deployment's own (a key of this store) or a
 * peer's. A replica the former primary's deployment holds in a Region
 * this one does not name as a peer could not be reached from here.
 */
static K_MUST_CHECK k_status check_reachable(struct api_ctx *c, const struct update_in *u)
{
	json_t *list = json_object_get(u->cfg, "ReplicaKeys");
	for (size_t i = 0; i < json_array_size(list); i++) {
		const char *r =
			json_string_value(json_object_get(json_array_get(list, i), "Region"));
		if (r == NULL || strlen(r) > 32)
			return api_fail(c, K_E_VALIDATION, "ReplicaKeys must name Regions.");
		if (strcmp(r, c->region) == 0 || kms_mrk_region_is_peer(r))
			continue;
		char ns[64];
		snprintf(ns, sizeof ns, "%s:%s", c->principal.account, r);
		struct kms_key *there = NULL;
		k_status rc = kms_key_get(ns, u->id, &there);
		kms_key_unref(there);
		if (k_failed(rc))
			return api_fail(c, K_E_UNSUPPORTED,
					"The related key in the Region %s is out of this "
					"deployment's reach: it cannot become the primary's.",
					r);
	}
	return K_OK;
}

/* The versions this side lacks, opened from the sealed material (AWS_KMS keys only). */
static K_MUST_CHECK k_status merge_material(struct api_ctx *c, json_t *in,
					    const struct update_in *u, json_t *doc)
{
	if (json_object_get(in, "EncryptedKeyMaterial") == NULL)
		return K_OK;
	json_t *mats = NULL;
	GUARD(kms_mrk_peer_open(c, in, "update-primary", u->march,
				json_object_get(u->key, "Materials"), &mats));
	json_t *have = json_object_get(doc, "Materials");
	if (!json_is_array(have)) {
		json_decref(mats);
		return K_E_INTERNAL;
	}
	size_t n_have = json_array_size(have), n_new = json_array_size(mats);
	for (size_t i = n_have; i < n_new; i++)
		json_array_append(have, json_array_get(mats, i));
	json_t *rots = json_object_get(u->key, "Rotations");
	if (n_new >= n_have && json_is_array(rots))
		json_object_set(doc, "Rotations", rots);
	json_decref(mats);
	return K_OK;
}

/* The new primary's document, its rotation settings and due record, related keys, outbox. */
static K_MUST_CHECK k_status become_primary(struct api_ctx *c, json_t *in, struct kms_key *k,
					    const struct update_in *u)
{
	struct kms_mrk_write *w = kms_mrk_write_new();
	ENSURE(w != NULL, K_E_INTERNAL);
	json_t *doc = json_deep_copy(k->doc), *own = config_for(u->cfg, k->arn);
	k_status rc = K_OK;
	ENSURE_GOTO(doc != NULL && own != NULL, K_E_INTERNAL);
	json_object_set_new(doc, "MultiRegionConfiguration", own);
	own = NULL;
	GUARD_GOTO(merge_material(c, in, u, doc));
	json_object_del(doc, KMS_MRK_PRIMARY_ROTATION); /* a primary's settings are its own */
	for (size_t i = 0; rotation_members[i] != NULL; i++) {
		json_t *v = json_object_get(u->key, rotation_members[i]);
		if (v != NULL)
			json_object_set(doc, rotation_members[i], v);
		else
			json_object_del(doc, rotation_members[i]);
	}
	int64_t next = json_integer_value(json_object_get(doc, "NextRotationDate"));
	if (json_is_true(json_object_get(doc, "KeyRotationEnabled")) && next > 0)
		GUARD_GOTO(kms_mrk_write_due(w, true, next, KMS_ROTATE_TASK, k->ns, k->id));
	rc = write_move(w, k, doc, u->cfg, u->former);
	doc = NULL;
out:
	json_decref(doc);
	json_decref(own);
	kms_mrk_write_free(w);
	return rc;
}

/*
 * "The UpdatePrimaryRegion operation writes two CloudTrail log entries"
 * (developer guide, ct-update-primary-region.html): the caller's Region
 * has the call; this is the new primary's Region's.
 */
static K_MUST_CHECK k_status new_primary_event(const struct kms_key *k)
{
	json_t *d = json_pack("{s:s, s:s}", "keyId", k->arn, "primaryRegion", region_of(k));
	k_status rc = kms_key_service_event(k, "UpdatePrimaryRegion", d, K_OK);
	json_decref(d);
	return rc;
}

/*
 * KinkoPeer.UpdatePrimaryRegionIn: {"KeyId"; "FormerPrimaryRegion"; "Key":
 * the new MultiRegionConfiguration, Rotations, material versions and
 * automatic rotation's settings; "EncryptedKeyMaterial" for AWS_KMS keys}.
 * Makes this Region's replica the primary key. A repeat (the key is the
 * primary already) answers it as it is. Answers {"KeyMetadata"}.
 */
k_status kms_peer_op_update_primary_in(struct api_ctx *c, json_t *in, json_t *out)
{
	struct update_in u;
	GUARD(check_update_in(c, in, &u));
	struct kms_key *k = NULL, *nk = NULL;
	if (k_failed(kms_key_get(c->ns, u.id, &k)))
		return api_fail(c, K_E_NOT_FOUND, "Key '%s' does not exist", u.arn);
	k_status rc = K_OK;
	if (kms_key_is_mrk(k) && !kms_key_is_mrk_replica(k)) {
		json_object_set_new(out, "KeyMetadata", kms_key_metadata(k));
		goto out;
	}
	GUARD_GOTO(check_replica(c, k, &u));
	GUARD_GOTO(check_reachable(c, &u));
	GUARD_GOTO(become_primary(c, in, k, &u));
	GUARD_GOTO(kms_key_get(c->ns, u.id, &nk));
	json_object_set_new(out, "KeyMetadata", kms_key_metadata(nk));
	rc = new_primary_event(nk);
	LOG_INFO("mrk: %s is the primary key now (it was %s's replica)", nk->arn, u.former);
out:
	kms_key_unref(nk);
	kms_key_unref(k);
	return rc;
}
