/*
 * replica.c — multi-Region secrets: ReplicateSecretToRegions,
 * RemoveRegionsFromReplication, StopReplicationToReplica.
 * https://docs.aws.amazon.com/secretsmanager/latest/userguide/create-manage-multi-region-secrets.html
 *
 * "Secrets Manager replicates the encrypted secret data and metadata such
 * as tags and resource policies across the specified Regions." A replica
 * is a read-only copy in another region's namespace with the same name
 * and suffix, whose values are re-encrypted under a KMS key of that region
 * (its KmsKeyId or aws/secretsmanager there). Every change of the primary
 * re-syncs its replicas (sm_sync_replicas), so reads in any region see
 * the primary's versions and labels.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "secrets/internal.h"
#include "core/arn.h"
#include "core/banned.h"

static bool valid_region(const char *r)
{
	/* ^([a-z]+-)+\d+$ */
	size_t n = strlen(r), i = 0;
	if (n == 0 || n > 128)
		return false;
	bool saw_dash = false;
	while (i < n && ((r[i] >= 'a' && r[i] <= 'z') || r[i] == '-')) {
		if (r[i] == '-') {
			if (i == 0 || r[i - 1] == '-')
				return false;
			saw_dash = true;
		}
		i++;
	}
	if (!saw_dash || i == n || r[i - 1] != '-')
		return false;
	for (; i < n; i++) {
		if (r[i] < '0' || r[i] > '9')
			return false;
	}
	return true;
}

/* The context of the same principal in another region. */
static void region_ctx(const struct api_ctx *c, const char *region, struct api_ctx *rc)
{
	*rc = *c;
	snprintf(rc->region, sizeof rc->region, "%s", region);
	snprintf(rc->ns, sizeof rc->ns, "%s:%s", c->principal.account, region);
	kbuf_init(&rc->err_msg, API_ERROR_MESSAGE_MAX);
}

static void replica_arn(const char *arn, const char *from, const char *to, char *out, size_t n)
{
	/* The same ARN in region `to` (it names region `from`). */
	struct k_arn a;
	if (!k_arn_parse_cstr(arn, &a) || !kslice_eq_cstr(a.region, from)) {
		snprintf(out, n, "%s", arn);
		return;
	}
	a.region = kslice_cstr(to);
	k_arn_format(&a, out, n);
}

static json_t *status_of(json_t *list, const char *region)
{
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "Region")), region) == 0)
			return e;
	}
	return NULL;
}

/* Marks a replica's entry as failed, with the reason AWS words. */
static void entry_failed(json_t *entry, const char *why)
{
	json_object_set_new(entry, "Status", json_string("Failed"));
	json_object_set_new(entry, "StatusMessage", json_string(why));
}

/*
 * The replica's current document in r, or a new one when the region has
 * none. A secret of the same name that is not this primary's replica is
 * replaced only with ForceOverwriteReplicaSecret; otherwise the entry
 * fails and *failed is set.
 */
static K_MUST_CHECK k_status replica_open(const struct api_ctx *rc, const struct sm_secret *p,
					  json_t *entry, const char *arn, struct sm_secret *r,
					  bool *failed)
{
	*failed = false;
	k_status st = sm_load(rc->ns, sm_name(p), r);
	if (k_ok(st) && strcmp(sm_arn(r), arn) != 0) {
		if (!json_is_true(json_object_get(entry, "Force"))) {
			entry_failed(entry, "Replication failed: Secret with this name already "
					    "exists in this region.");
			*failed = true;
			return K_OK;
		}
		st = sm_purge(rc->ns, r);
		sm_secret_release(r);
		GUARD(st);
		st = K_E_NOT_FOUND;
	}
	if (!k_is(st, K_E_NOT_FOUND))
		return st;
	char u[37], uid[33];
	size_t k = 0;
	sm_uuid(u);
	for (size_t i = 0; u[i] != 0 && k < 32; i++) {
		if (u[i] != '-')
			uid[k++] = u[i];
	}
	uid[k] = 0;
	snprintf(r->ns, sizeof r->ns, "%s", rc->ns);
	r->version = STORAGE_ABSENT;
	r->doc = json_pack("{s:s, s:o}", "Uid", uid, "Versions", json_object());
	return r->doc ? K_OK : K_E_INTERNAL;
}

/* Metadata: everything but the replica's own identity and key. */
static void replica_copy_meta(const struct api_ctx *c, const struct sm_secret *p, json_t *entry,
			      const char *arn, struct sm_secret *r)
{
	static const char *const copied[] = {"Name",
					     "Description",
					     "Tags",
					     "Type",
					     "CreatedDate",
					     "LastChangedDate",
					     "RotationEnabled",
					     "RotationLambdaARN",
					     "RotationRules",
					     "LastRotatedDate",
					     "NextRotationDate",
					     "ResourcePolicy",
					     "TagsRemoved",
					     NULL};
	for (size_t i = 0; copied[i] != NULL; i++) {
		json_t *v = json_object_get(p->doc, copied[i]);
		if (v != NULL)
			json_object_set_new(r->doc, copied[i], json_deep_copy(v));
		else
			json_object_del(r->doc, copied[i]);
	}
	json_object_set_new(r->doc, "ARN", json_string(arn));
	json_object_set_new(r->doc, "IsReplica", json_true());
	json_object_set_new(r->doc, "PrimaryRegion", json_string(c->region));
	const char *kid = json_string_value(json_object_get(entry, "KmsKeyId"));
	if (kid != NULL)
		json_object_set_new(r->doc, "KmsKeyId", json_string(kid));
}

/* The value records one sync writes and deletes, applied with the replica's document. */
struct value_ops {
	struct storage_op *ops;
	char **texts;
	char (*ids)[200];
	size_t n;
};

static K_MUST_CHECK k_status value_ops_init(struct value_ops *vo, size_t cap)
{
	vo->ops = calloc(cap, sizeof *vo->ops);
	vo->texts = calloc(cap, sizeof *vo->texts);
	vo->ids = calloc(cap, sizeof *vo->ids);
	vo->n = 0;
	return vo->ops && vo->texts && vo->ids ? K_OK : K_E_INTERNAL;
}

static void value_ops_release(struct value_ops *vo)
{
	for (size_t i = 0; vo->texts != NULL && i < vo->n; i++)
		kjson_free(vo->texts[i]);
	free(vo->texts);
	free(vo->ops);
	free(vo->ids);
}

/* Versions gone from the primary leave the replica, with their value records. */
static void replica_drop_gone(json_t *pv, struct sm_secret *r, struct value_ops *vo)
{
	json_t *rv = sm_versions(r);
	json_t *gone = json_array();
	const char *vid;
	json_t *v;
	json_object_foreach(rv, vid, v)
	{
		if (json_object_get(pv, vid) == NULL)
			json_array_append_new(gone, json_string(vid));
	}
	for (size_t i = 0; i < json_array_size(gone); i++) {
		const char *g = json_string_value(json_array_get(gone, i));
		sm_value_id(r, g, vo->ids[vo->n], sizeof vo->ids[vo->n]);
		vo->ops[vo->n] = (struct storage_op){.op = STORAGE_DEL,
						     .kind = "secretvalue",
						     .ns = r->ns,
						     .id = vo->ids[vo->n],
						     .expect = STORAGE_ANY};
		vo->n++;
		json_object_del(rv, g);
	}
	json_decref(gone);
}

/*
 * One version's value, opened in the primary's region and sealed in the
 * replica's, as a put op; key_arn is the replica's key.
 */
static K_MUST_CHECK k_status replica_seal(struct api_ctx *c, struct api_ctx *rc,
					  const struct sm_secret *p, struct sm_secret *r,
					  const char *vid, struct value_ops *vo, char *key_arn,
					  size_t key_arn_len)
{
	struct kbuf val;
	kbuf_init(&val, SM_MAX_VALUE);
	bool binary = false;
	k_status st = sm_get_value(c, p, vid, &val, &binary);
	if (k_ok(st))
		st = sm_seal_value(rc, r, vid, kbuf_slice(&val), binary, &vo->texts[vo->n], key_arn,
				   key_arn_len);
	kbuf_release(&val);
	GUARD(st);
	sm_value_id(r, vid, vo->ids[vo->n], sizeof vo->ids[vo->n]);
	vo->ops[vo->n] = (struct storage_op){.op = STORAGE_PUT,
					     .kind = "secretvalue",
					     .ns = r->ns,
					     .id = vo->ids[vo->n],
					     .doc = kslice_cstr(vo->texts[vo->n]),
					     .expect = STORAGE_ANY};
	vo->n++;
	return K_OK;
}

/*
 * The primary's versions into the replica: labels and dates copied, and
 * the values the replica lacks re-encrypted in its region. A value that
 * cannot be sealed there fails the entry (*failed).
 */
static void replica_copy_versions(struct api_ctx *c, struct api_ctx *rc, const struct sm_secret *p,
				  struct sm_secret *r, json_t *entry, struct value_ops *vo,
				  bool *failed)
{
	json_t *pv = json_object_get(p->doc, "Versions");
	json_t *rv = sm_versions(r);
	const char *vid;
	json_t *v;
	*failed = false;
	json_object_foreach(pv, vid, v)
	{
		json_t *mine = json_object_get(rv, vid);
		bool need_value = !json_is_true(json_object_get(v, "NoValue")) &&
				  (mine == NULL || json_is_true(json_object_get(mine, "NoValue")));
		json_t *copy = json_deep_copy(v);
		if (mine != NULL && json_object_get(mine, "KmsKeyArn") != NULL)
			json_object_set(copy, "KmsKeyArn", json_object_get(mine, "KmsKeyArn"));
		char key_arn[160];
		if (need_value &&
		    k_failed(replica_seal(c, rc, p, r, vid, vo, key_arn, sizeof key_arn))) {
			json_decref(copy);
			entry_failed(entry, "Replication failed: the secret value could not be "
					    "encrypted in this region.");
			*failed = true;
			return;
		}
		if (need_value)
			json_object_set_new(copy, "KmsKeyArn", json_string(key_arn));
		json_object_set_new(rv, vid, copy);
	}
}

/*
 * Brings one replica up to date with the primary p: metadata copied,
 * missing versions' values re-encrypted in the replica's region, versions
 * gone from the primary removed. Sets the entry's Status.
 */
static K_MUST_CHECK k_status sync_one(struct api_ctx *c, const struct sm_secret *p, json_t *entry)
{
	const char *region = json_string_value(json_object_get(entry, "Region"));
	struct api_ctx rc;
	region_ctx(c, region, &rc);
	struct sm_secret r = {0};
	struct value_ops vo = {0};
	char arn[760];
	bool failed = false;
	replica_arn(sm_arn(p), c->region, region, arn, sizeof arn);
	k_status st = replica_open(&rc, p, entry, arn, &r, &failed);
	if (k_failed(st) || failed)
		goto out;
	replica_copy_meta(c, p, entry, arn, &r);
	json_t *pv = json_object_get(p->doc, "Versions");
	st = value_ops_init(&vo, json_object_size(pv) + json_object_size(sm_versions(&r)) + 1);
	if (k_failed(st))
		goto out;
	replica_drop_gone(pv, &r, &vo);
	replica_copy_versions(c, &rc, p, &r, entry, &vo, &failed);
	if (failed)
		goto out;
	st = sm_save(&r, vo.ops, vo.n);
	if (k_ok(st)) {
		json_object_set_new(entry, "Status", json_string("InSync"));
		json_object_set_new(entry, "StatusMessage", json_string("Replication succeeded"));
	}
out:
	value_ops_release(&vo);
	sm_secret_release(&r);
	kbuf_release(&rc.err_msg);
	return st;
}

/*
 * Re-syncs every replica of the primary `name` in c's namespace and
 * records their status in the primary. Nothing to do for a secret without
 * replicas. Serialized by the write lock.
 */
k_status sm_sync_replicas(struct api_ctx *c, const char *name)
{
	struct sm_secret p = {0};
	sm_lock_all();
	k_status rc = sm_load(c->ns, name, &p);
	json_t *list = k_ok(rc) ? json_object_get(p.doc, "ReplicationStatus") : NULL;
	if (k_failed(rc) || json_array_size(list) == 0 || sm_is_replica(&p)) {
		sm_unlock();
		sm_secret_release(&p);
		return k_is(rc, K_E_NOT_FOUND) ? K_OK : rc;
	}
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		k_status one = sync_one(c, &p, e);
		if (k_failed(one)) {
			LOG_WARN("replication of secret %s to %s failed: %s", sm_arn(&p),
				 json_string_value(json_object_get(e, "Region")),
				 k_status_name(one));
			json_object_set_new(e, "Status", json_string("Failed"));
			json_object_set_new(e, "StatusMessage", json_string("Replication failed."));
		}
	}
	rc = sm_save(&p, NULL, 0);
	sm_unlock();
	sm_secret_release(&p);
	return rc;
}

/* The public view of ReplicationStatus (no internal members). */
static json_t *status_view(json_t *list)
{
	json_t *out = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		json_t *o = json_deep_copy(e);
		json_object_del(o, "Force");
		json_array_append_new(out, o);
	}
	return out;
}

/* AddReplicaRegions: at least one, each a valid Region other than this one. */
static K_MUST_CHECK k_status read_add_regions(struct api_ctx *c, json_t *in, json_t **add)
{
	*add = json_object_get(in, "AddReplicaRegions");
	if (!json_is_array(*add) || json_array_size(*add) == 0)
		return api_fail(
			c, K_E_VALIDATION,
			"1 validation error detected: Value at 'addReplicaRegions' failed to "
			"satisfy constraint: Member must have length greater than or equal to 1");
	size_t i;
	json_t *e;
	json_array_foreach(*add, i, e)
	{
		const char *region, *kid;
		if (!json_is_object(e))
			return api_fail(c, K_E_SERIALIZATION,
					"Unexpected value type in member 'AddReplicaRegions'");
		GUARD(api_string(c, e, "Region", false, 1, 128, &region));
		GUARD(api_string(c, e, "KmsKeyId", false, 0, 2048, &kid));
		if (region == NULL || !valid_region(region))
			return api_fail(c, K_E_SM_INVALID_PARAMETER, "Invalid replica Region %s.",
					region ? region : "(none)");
		if (strcmp(region, c->region) == 0)
			return api_fail(c, K_E_SM_INVALID_PARAMETER,
					"Invalid replica Region %s: it is the primary Region.",
					region);
	}
	return K_OK;
}

/* Records the new Regions in the primary's ReplicationStatus (InProgress until synced) and saves it. */
static K_MUST_CHECK k_status add_regions(struct api_ctx *c, struct sm_secret *s, json_t *add,
					 bool force)
{
	GUARD(sm_require_primary(c, s));
	json_t *list = json_object_get(s->doc, "ReplicationStatus");
	if (!json_is_array(list)) {
		list = json_array();
		json_object_set_new(s->doc, "ReplicationStatus", list);
	}
	size_t i;
	json_t *e;
	json_array_foreach(add, i, e)
	{
		const char *region = json_string_value(json_object_get(e, "Region"));
		const char *kid = json_string_value(json_object_get(e, "KmsKeyId"));
		json_t *cur = status_of(list, region);
		if (cur == NULL) {
			cur = json_pack("{s:s, s:s}", "Region", region, "Status", "InProgress");
			json_array_append_new(list, cur);
		}
		if (kid != NULL && kid[0] != 0)
			json_object_set_new(cur, "KmsKeyId", json_string(kid));
		json_object_set_new(cur, "Force", json_boolean(force));
	}
	return sm_save(s, NULL, 0);
}

/*
 * ReplicateSecretToRegions on the row's secret (secret_id NULL) or on the
 * secret CreateSecret has just made (its ARN, through the checked
 * resolver): the Regions are recorded, the replicas synced, and the
 * answer is the primary's ReplicationStatus after the sync.
 */
static K_MUST_CHECK k_status replicate(struct api_ctx *c, const char *secret_id, json_t *in,
				       json_t *out)
{
	bool has_force, force;
	json_t *add;
	GUARD(api_bool(c, in, "ForceOverwriteReplicaSecret", &has_force, &force));
	GUARD(read_add_regions(c, in, &add));
	struct sm_secret s = {0};
	char name[520];
	sm_lock_all();
	k_status rc = secret_id == NULL
			      ? sm_op_secret(c, &s) /* live: the row's state rule */
			      : sm_resolve_secret(c, secret_id, NULL, API_STATE_MANAGE, &s);
	if (k_ok(rc))
		rc = add_regions(c, &s, add, force);
	snprintf(name, sizeof name, "%s", s.doc != NULL ? sm_name(&s) : "");
	sm_unlock();
	sm_secret_release(&s);
	GUARD(rc);
	GUARD(sm_sync_replicas(c, name));
	GUARD(sm_load(c->ns, name, &s));
	json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
	json_object_set_new(out, "ReplicationStatus",
			    status_view(json_object_get(s.doc, "ReplicationStatus")));
	sm_secret_release(&s);
	return K_OK;
}

/* ReplicateSecretToRegions (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ReplicateSecretToRegions.html). */
k_status sm_op_replicate_secret_to_regions(struct api_ctx *c, json_t *in, json_t *out)
{
	return replicate(c, NULL, in, out);
}

k_status sm_replicate_new(struct api_ctx *c, const char *arn, json_t *in, json_t *out)
{
	return replicate(c, arn, in, out);
}

/* RemoveRegionsFromReplication (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RemoveRegionsFromReplication.html). */
k_status sm_op_remove_regions_from_replication(struct api_ctx *c, json_t *in, json_t *out)
{
	json_t *regions;
	GUARD(api_string_list(c, in, "RemoveReplicaRegions", 50, 1, 128, &regions));
	if (regions == NULL || json_array_size(regions) == 0)
		return api_fail(
			c, K_E_VALIDATION,
			"1 validation error detected: Value at 'removeReplicaRegions' failed to "
			"satisfy constraint: Member must have length greater than or equal to 1");
	struct sm_secret s = {0};
	k_status rc = K_OK;
	sm_lock_all();
	GUARD_GOTO(sm_op_secret(c, &s));
	GUARD_GOTO(sm_require_primary(c, &s));
	json_t *list = json_object_get(s.doc, "ReplicationStatus");
	size_t i;
	json_t *r;
	json_array_foreach(regions, i, r)
	{
		const char *region = json_string_value(r);
		for (size_t j = json_array_size(list); j > 0; j--) {
			json_t *e = json_array_get(list, j - 1);
			if (strcmp(json_string_value(json_object_get(e, "Region")), region) != 0)
				continue;
			struct api_ctx rc_ctx;
			region_ctx(c, region, &rc_ctx);
			struct sm_secret rep;
			if (k_ok(sm_load(rc_ctx.ns, sm_name(&s), &rep)) && sm_is_replica(&rep)) {
				k_status prc = sm_purge(rc_ctx.ns, &rep);
				if (k_failed(prc))
					LOG_WARN("cannot remove the replica of %s in %s",
						 sm_arn(&s), region);
			}
			sm_secret_release(&rep);
			kbuf_release(&rc_ctx.err_msg);
			json_array_remove(list, j - 1);
		}
	}
	GUARD_GOTO(sm_save(&s, NULL, 0));
	json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
	json_object_set_new(out, "ReplicationStatus", status_view(list));
out:
	sm_unlock();
	sm_secret_release(&s);
	return rc;
}

/*
 * StopReplicationToReplica (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_StopReplicationToReplica.html):
 * "Removes the link between the replica secret and the primary secret and
 * promotes the replica to a primary secret in the replica Region. You must
 * call this operation from the Region in which you want to promote the
 * replica to a primary secret."
 */
k_status sm_op_stop_replication_to_replica(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)in;
	struct sm_secret s = {0}, p = {0};
	k_status rc = K_OK;
	sm_lock_all();
	GUARD_GOTO(sm_op_secret(c, &s));
	if (!sm_is_replica(&s)) {
		rc = api_fail(c, K_E_SM_INVALID_REQUEST, "Secret %s is not a replica secret.",
			      sm_name(&s));
		goto out;
	}
	const char *primary = json_string_value(json_object_get(s.doc, "PrimaryRegion"));
	char pns[64];
	snprintf(pns, sizeof pns, "%s:%s", c->principal.account, primary ? primary : "");
	if (k_ok(sm_load(pns, sm_name(&s), &p))) {
		json_t *list = json_object_get(p.doc, "ReplicationStatus");
		for (size_t j = json_array_size(list); j > 0; j--) {
			json_t *e = json_array_get(list, j - 1);
			if (strcmp(json_string_value(json_object_get(e, "Region")), c->region) == 0)
				json_array_remove(list, j - 1);
		}
		GUARD_GOTO(sm_save(&p, NULL, 0));
	}
	json_object_del(s.doc, "IsReplica");
	json_object_del(s.doc, "PrimaryRegion");
	GUARD_GOTO(sm_save(&s, NULL, 0));
	json_object_set_new(out, "ARN", json_string(sm_arn(&s)));
out:
	sm_unlock();
	sm_secret_release(&s);
	sm_secret_release(&p);
	return rc;
}
