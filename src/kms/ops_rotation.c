/*
 * ops_rotation.c — EnableKeyRotation, DisableKeyRotation,
 * GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations, and the
 * scheduled automatic rotation.
 *
 * "When KMS rotates a key, it creates new key material ... KMS uses the
 * new key material for encryption ... KMS keeps all previous key material
 * ... so it can decrypt any data encrypted by the KMS key."
 * (https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html)
 * A rotation appends a wrapped material version to the key document
 * ("Materials") and a record to "Rotations"; the ciphertext blob names its
 * version, so every generation keeps decrypting and new encryptions use
 * the newest (ops_crypto.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "crypto/crypto.h"
#include "kms/kms.h"
#include "kms/mrk_peer.h"
#include "kms/multiregion.h"
#include "kms/store.h"
#include "scheduler/scheduler.h"
#include "kms/specs.h"
#include "core/banned.h"

#define ROTATE_TASK KMS_ROTATE_TASK
#define DAY 86400
/* "You can perform on-demand key rotation a maximum of 10 times per KMS key." */
#define MAX_ON_DEMAND 10
/* AWS managed keys: "AWS KMS automatically rotates AWS managed keys every year (approximately 365 days)." */
#define MANAGED_PERIOD_DAYS 365

/*
 * Rotation applies to symmetric encryption keys with key material KMS
 * generated, outside custom key stores: "You cannot enable automatic
 * rotation of asymmetric KMS keys, HMAC KMS keys, KMS keys with imported
 * key material, or KMS keys in a custom key store."
 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_EnableKeyRotation.html)
 */
static K_MUST_CHECK k_status require_rotatable(struct api_ctx *c, const struct kms_key *k)
{
	const char *origin = json_string_value(json_object_get(k->doc, "Origin"));
	if (k->spec == NULL || strcmp(k->spec, "SYMMETRIC_DEFAULT") != 0)
		return api_fail(c, K_E_UNSUPPORTED,
				"%s key spec %s is not valid for this operation.", k->arn,
				k->spec ? k->spec : "unknown");
	if (origin != NULL && strcmp(origin, "AWS_KMS") != 0)
		return api_fail(c, K_E_UNSUPPORTED,
				"%s origin is %s which is not valid for this operation.", k->arn,
				origin);
	return K_OK;
}

/*
 * Automatic rotation is a shared property of a multi-Region key, managed
 * on its primary key; a rotation of the primary reaches its replicas
 * (https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-manage.html).
 * Enabling, disabling or rotating on demand a replica is refused.
 */
static K_MUST_CHECK k_status require_not_replica(struct api_ctx *c, const struct kms_key *k)
{
	if (kms_key_is_mrk_replica(k))
		return api_fail(c, K_E_UNSUPPORTED,
				"%s is a multi-Region replica key. Rotation is managed on its "
				"primary key.",
				k->arn);
	return K_OK;
}

static K_MUST_CHECK k_status resolve(struct api_ctx *c, json_t *in, struct kms_key **out)
{
	const char *key_id;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	return kms_op_key(c, out);
}

/* The period and next date of a key's automatic rotation (0 when off). */
static void rotation_schedule(const struct kms_key *k, bool *enabled, int64_t *period_days,
			      int64_t *next)
{
	*enabled = json_is_true(json_object_get(k->doc, "KeyRotationEnabled"));
	*period_days = json_integer_value(json_object_get(k->doc, "RotationPeriodInDays"));
	*next = json_integer_value(json_object_get(k->doc, "NextRotationDate"));
	if (kms_key_is_aws_managed(k)) {
		*enabled = true;
		if (*period_days <= 0)
			*period_days = MANAGED_PERIOD_DAYS;
	}
	if (*enabled && *period_days <= 0)
		*period_days = 365;
	if (*enabled && *next <= 0) {
		/* A key written without a date (AWS managed keys): a period after
		 * its newest material. */
		json_t *mats = json_object_get(k->doc, "Materials");
		json_t *last = json_array_get(mats, json_array_size(mats) - 1);
		int64_t base = json_integer_value(json_object_get(last, "Created"));
		if (base <= 0)
			base = kjson_date_seconds(json_object_get(k->doc, "CreationDate"));
		*next = base + *period_days * DAY;
	}
	if (!*enabled)
		*next = 0;
}

json_t *kms_rotation_settings(const struct kms_key *k)
{
	bool enabled;
	int64_t period, next;
	rotation_schedule(k, &enabled, &period, &next);
	json_t *out = json_pack("{s:b}", "KeyRotationEnabled", enabled);
	if (out != NULL && enabled) {
		json_object_set_new(out, "RotationPeriodInDays", json_integer(period));
		json_object_set_new(out, "NextRotationDate", json_integer(next));
	}
	return out;
}

json_t *kms_rotation_settings_parse(json_t *in)
{
	json_t *on = json_object_get(in, "KeyRotationEnabled");
	if (!json_is_object(in) || !json_is_boolean(on))
		return NULL;
	if (!json_is_true(on))
		return json_pack("{s:b}", "KeyRotationEnabled", false);
	json_t *period = json_object_get(in, "RotationPeriodInDays");
	json_t *next = json_object_get(in, "NextRotationDate");
	json_int_t days = json_integer_value(period), when = json_integer_value(next);
	/* AWS managed keys' 365 is in range; "RotationPeriodInDays" is 90..2560. */
	if (!json_is_integer(period) || days < 90 || days > 2560 || !json_is_integer(next) ||
	    when <= 0)
		return NULL;
	return json_pack("{s:b, s:I, s:I}", "KeyRotationEnabled", true, "RotationPeriodInDays",
			 days, "NextRotationDate", when);
}

/*
 * The schedule GetKeyRotationStatus shows: a replica shows its primary's
 * (a shared property), read from the primary when this store holds it,
 * else from the settings the primary's deployment sent
 * (KMS_MRK_PRIMARY_ROTATION); any other key its own.
 */
static void shown_schedule(const struct kms_key *k, bool *enabled, int64_t *period_days,
			   int64_t *next)
{
	struct kms_key *p = NULL;
	if (k_ok(kms_mrk_primary_of(k, &p))) {
		rotation_schedule(p, enabled, period_days, next);
		kms_key_unref(p);
		return;
	}
	json_t *sent = json_object_get(k->doc, KMS_MRK_PRIMARY_ROTATION);
	if (!kms_key_is_mrk_replica(k) || !json_is_object(sent)) {
		rotation_schedule(k, enabled, period_days, next);
		return;
	}
	*enabled = json_is_true(json_object_get(sent, "KeyRotationEnabled"));
	*period_days =
		*enabled ? json_integer_value(json_object_get(sent, "RotationPeriodInDays")) : 0;
	*next = *enabled ? json_integer_value(json_object_get(sent, "NextRotationDate")) : 0;
}

/* The random identifier of a material version ("KeyMaterialId"): 64 hex. */
static void material_id(char out[65])
{
	uint8_t b[32];
	if (k_failed(crypto_random(b, sizeof b)))
		memset(b, 0, sizeof b);
	for (size_t i = 0; i < sizeof b; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/*
 * The audit event of a rotation. "For an example of the CloudTrail log
 * entry that is written when the key is rotated, see RotateKey"
 * (https://docs.aws.amazon.com/kms/latest/developerguide/ct-rotatekeyondemand.html):
 * automatic and on-demand rotations both write a "RotateKey" AwsServiceEvent
 * whose serviceEventDetails give "rotationType" (AUTOMATIC or ON_DEMAND),
 * "keyOrigin" and the previous and current "KeyMaterialId"s
 * (https://docs.aws.amazon.com/kms/latest/developerguide/ct-rotatekey.html).
 * The material of a key's creation has no id here, so previousKeyMaterialId
 * appears from the second rotation on. `k` is the key before the rotation;
 * `mid` the new material's id (NULL for a failure).
 */
static K_MUST_CHECK k_status rotation_event(const struct kms_key *k, bool on_demand,
					    const char *mid, k_status outcome)
{
	json_t *rots = json_object_get(k->doc, "Rotations");
	json_t *prev =
		json_object_get(json_array_get(rots, json_array_size(rots) - 1), "KeyMaterialId");
	const char *origin = json_string_value(json_object_get(k->doc, "Origin"));
	json_t *d =
		json_pack("{s:s, s:s, s:s}", "rotationType", on_demand ? "ON_DEMAND" : "AUTOMATIC",
			  "keyId", k->id, "keyOrigin", origin ? origin : "AWS_KMS");
	if (d != NULL && json_is_string(prev))
		json_object_set(d, "previousKeyMaterialId", prev);
	if (d != NULL && mid != NULL && mid[0] != 0)
		json_object_set_new(d, "currentKeyMaterialId", json_string(mid));
	k_status rc = kms_key_service_event(k, "RotateKey", d, outcome);
	json_decref(d);
	return rc;
}

/*
 * Adds a material version: the key's store makes new material of the key
 * spec and gives its reference for the document; the new snapshot's
 * handle holds every version plus the new one (keystore_new_version).
 * For automatic rotation, the next date moves a period past `now`, and
 * its due-index record moves with it in the same write.
 */
k_status kms_rotate_key(struct kms_key *k, int64_t now, bool on_demand, struct kms_key **out)
{
	ENSURE(k->spec != NULL && keystore_key_versions(k->handle) > 0, K_E_INTERNAL);
	uint32_t n = keystore_key_versions(k->handle);
	struct keystore_key *handle = NULL;
	struct kbuf wrapped;
	kbuf_init(&wrapped, KEYSTORE_MAX_REF);
	json_t *doc = NULL;
	struct kms_mrk_write *w = NULL;
	bool event_written = false;
	char mid[65] = "";
	k_status rc = K_OK;
	GUARD_GOTO(keystore_new_version(k->handle, k->spec, kms_doc_material_arn(k->doc), &wrapped,
					&handle));
	doc = json_deep_copy(k->doc);
	ENSURE_GOTO(doc != NULL, K_E_INTERNAL);
	material_id(mid);
	json_t *mats = json_object_get(doc, "Materials");
	ENSURE_GOTO(json_is_array(mats), K_E_INTERNAL);
	json_array_append_new(mats, json_pack("{s:I, s:s, s:I}", "Version", (json_int_t)(n + 1),
					      "Wrapped", kbuf_cstr(&wrapped), "Created",
					      (json_int_t)now));
	json_t *rots = json_object_get(doc, "Rotations");
	if (!json_is_array(rots)) {
		rots = json_array();
		json_object_set_new(doc, "Rotations", rots);
	}
	json_array_append_new(rots,
			      json_pack("{s:I, s:s, s:o, s:s}", "Version", (json_int_t)(n + 1),
					"KeyMaterialId", mid, "RotationDate",
					kjson_date(kclock_ms_within(now)), "RotationType",
					on_demand ? "ON_DEMAND" : "AUTOMATIC"));

	bool enabled;
	int64_t period, next;
	rotation_schedule(k, &enabled, &period, &next);
	w = kms_mrk_write_new();
	ENSURE_GOTO(w != NULL, K_E_INTERNAL);
	if (!on_demand && enabled) {
		int64_t new_next = now + period * DAY;
		json_object_set_new(doc, "NextRotationDate", json_integer(new_next));
		GUARD_GOTO(kms_mrk_write_due(w, false, next, ROTATE_TASK, k->ns, k->id));
		GUARD_GOTO(kms_mrk_write_due(w, true, new_next, ROTATE_TASK, k->ns, k->id));
	}
	/* A multi-Region primary's new material reaches every replica in this write. */
	GUARD_GOTO(kms_mrk_share_rotation(k, doc, w));
	rc = kms_key_update_ops(k, doc, handle, w->ops, w->n, out);
	doc = NULL;
	handle = NULL;
	if (k_ok(rc)) {
		/* The rotation is durable; its event follows. If the event cannot
		 * be written the caller gets that error (an on-demand call answers
		 * with an internal error, as for any call whose event is lost). */
		event_written = true;
		rc = rotation_event(k, on_demand, mid, K_OK);
	}
	/* The copy to the replicas here is AWS's SynchronizeMultiRegionKey. */
	if (k_ok(rc) && w->n_shared > 0)
		rc = kms_mrk_sync_event(k, NULL);
out:
	/* A scheduled rotation that failed is logged as a failed RotateKey
	 * (a conflict is not a failure: another run changed the key and the
	 * next run looks again). An on-demand failure is the API call's error,
	 * logged with the RotateKeyOnDemand call itself. */
	if (k_failed(rc) && !k_is(rc, K_E_CONFLICT) && !on_demand && !event_written)
		k_ignore(rotation_event(k, false, NULL, rc));
	json_decref(doc);
	keystore_key_unref(handle);
	kbuf_release(&wrapped);
	kms_mrk_write_free(w);
	return rc;
}

/*
 * Writes k's new rotation settings (doc, whose reference it takes): the
 * due record of `old_next` goes and one of `new_next` comes (0: none).
 * Automatic rotation is a shared property of a multi-Region key: a
 * primary with replicas in other deployments writes their outbox records
 * in the same transaction, and the worker sends the new settings
 * (kms/mrk_peer.h); replicas here read their primary's.
 */
static K_MUST_CHECK k_status write_schedule(struct kms_key *k, json_t *doc, int64_t old_next,
					    int64_t new_next)
{
	struct kms_mrk_write *w = kms_mrk_write_new();
	if (w == NULL) {
		json_decref(doc);
		return K_E_INTERNAL;
	}
	k_status rc = K_OK;
	if (old_next > 0)
		rc = kms_mrk_write_due(w, false, old_next, ROTATE_TASK, k->ns, k->id);
	if (k_ok(rc) && new_next > 0)
		rc = kms_mrk_write_due(w, true, new_next, ROTATE_TASK, k->ns, k->id);
	if (k_ok(rc) && kms_key_is_mrk(k) && !kms_key_is_mrk_replica(k))
		rc = kms_mrk_peer_enqueue(k, NULL, NULL, w);
	if (k_ok(rc))
		rc = kms_key_update_ops(k, doc, NULL, w->ops, w->n, NULL);
	else
		json_decref(doc);
	kms_mrk_write_free(w);
	return rc;
}

/*
 * EnableKeyRotation (https://docs.aws.amazon.com/kms/latest/APIReference/API_EnableKeyRotation.html):
 * "RotationPeriodInDays ... If no value is specified, the default value is
 * 365 days." (90..2560). "The rotation period defines the number of days
 * after you enable automatic key rotation that KMS will rotate your key
 * material".
 */
k_status kms_op_enable_key_rotation(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)out;
	int64_t period = 365;
	bool has_period;
	GUARD(api_int(c, in, "RotationPeriodInDays", false, 90, 2560, &has_period, &period));
	struct kms_key *k = NULL;
	GUARD(resolve(c, in, &k));
	k_status rc = K_OK;
	GUARD_GOTO(kms_deny_aws_managed(c, k));
	GUARD_GOTO(require_not_replica(c, k));
	GUARD_GOTO(require_rotatable(c, k));
	bool enabled;
	int64_t cur_period, next;
	rotation_schedule(k, &enabled, &cur_period, &next);
	if (enabled && cur_period == period)
		goto out; /* nothing changes */
	int64_t new_next = c->now + period * DAY;
	json_t *doc = json_deep_copy(k->doc);
	ENSURE_GOTO(doc != NULL, K_E_INTERNAL);
	json_object_set_new(doc, "KeyRotationEnabled", json_true());
	json_object_set_new(doc, "RotationPeriodInDays", json_integer(period));
	json_object_set_new(doc, "NextRotationDate", json_integer(new_next));
	rc = write_schedule(k, doc, enabled ? next : 0, new_next);
out:
	kms_key_unref(k);
	return rc;
}

/* DisableKeyRotation (https://docs.aws.amazon.com/kms/latest/APIReference/API_DisableKeyRotation.html). */
k_status kms_op_disable_key_rotation(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)out;
	struct kms_key *k = NULL;
	GUARD(resolve(c, in, &k));
	k_status rc = K_OK;
	GUARD_GOTO(kms_deny_aws_managed(c, k));
	GUARD_GOTO(require_not_replica(c, k));
	GUARD_GOTO(require_rotatable(c, k));
	bool enabled;
	int64_t period, next;
	rotation_schedule(k, &enabled, &period, &next);
	if (!enabled)
		goto out;
	json_t *doc = json_deep_copy(k->doc);
	ENSURE_GOTO(doc != NULL, K_E_INTERNAL);
	json_object_set_new(doc, "KeyRotationEnabled", json_false());
	json_object_del(doc, "NextRotationDate");
	rc = write_schedule(k, doc, next, 0);
out:
	kms_key_unref(k);
	return rc;
}

/*
 * GetKeyRotationStatus (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyRotationStatus.html):
 * KeyRotationEnabled, KeyId, and while rotation is on RotationPeriodInDays
 * and NextRotationDate. On-demand rotations complete within the request
 * here, so OnDemandRotationStartDate ("Once the on-demand rotation is
 * complete, KMS removes this field from the response") never shows.
 */
k_status kms_op_get_key_rotation_status(struct api_ctx *c, json_t *in, json_t *out)
{
	struct kms_key *k = NULL;
	GUARD(resolve(c, in, &k));
	k_status rc = K_OK;
	GUARD_GOTO(require_rotatable(c, k));
	bool enabled;
	int64_t period, next;
	shown_schedule(k, &enabled, &period, &next);
	json_object_set_new(out, "KeyRotationEnabled", json_boolean(enabled));
	json_object_set_new(out, "KeyId", json_string(k->arn));
	if (enabled) {
		json_object_set_new(out, "RotationPeriodInDays", json_integer(period));
		json_object_set_new(out, "NextRotationDate", json_integer(next));
	}
out:
	kms_key_unref(k);
	return rc;
}

/*
 * RotateKeyOnDemand (https://docs.aws.amazon.com/kms/latest/APIReference/API_RotateKeyOnDemand.html):
 * "On-demand key rotation doesn't change existing automatic rotation
 * schedules." At most 10 on-demand rotations per key (LimitExceededException).
 */
k_status kms_op_rotate_key_on_demand(struct api_ctx *c, json_t *in, json_t *out)
{
	struct kms_key *k = NULL;
	GUARD(resolve(c, in, &k));
	k_status rc = K_OK;
	GUARD_GOTO(kms_deny_aws_managed(c, k));
	GUARD_GOTO(require_not_replica(c, k));
	GUARD_GOTO(require_rotatable(c, k));
	size_t i, n_on_demand = 0;
	json_t *r;
	json_array_foreach(json_object_get(k->doc, "Rotations"), i, r)
	{
		const char *t = json_string_value(json_object_get(r, "RotationType"));
		if (t != NULL && strcmp(t, "ON_DEMAND") == 0)
			n_on_demand++;
	}
	if (n_on_demand >= MAX_ON_DEMAND) {
		rc = api_fail(c, K_E_LIMIT_EXCEEDED,
			      "%s has reached the maximum of %d on-demand rotations.", k->arn,
			      MAX_ON_DEMAND);
		goto out;
	}
	GUARD_GOTO(kms_rotate_key(k, c->now, true, NULL));
	json_object_set_new(out, "KeyId", json_string(k->id));
out:
	kms_key_unref(k);
	return rc;
}

/*
 * ListKeyRotations (https://docs.aws.amazon.com/kms/latest/APIReference/API_ListKeyRotations.html):
 * the completed rotations, oldest first, Limit 1..1000 (default 100); the
 * marker is the position of the next entry. With IncludeKeyMaterial
 * ALL_KEY_MATERIAL the first material is listed too (without a
 * RotationDate or RotationType).
 */
k_status kms_op_list_key_rotations(struct api_ctx *c, json_t *in, json_t *out)
{
	int64_t limit = 100;
	bool has_limit;
	const char *marker, *include;
	static const char *const includes[] = {"ALL_KEY_MATERIAL", "ROTATIONS_ONLY", NULL};
	GUARD(api_int(c, in, "Limit", false, 1, 1000, &has_limit, &limit));
	GUARD(api_string(c, in, "Marker", false, 1, 1024, &marker));
	GUARD(api_enum(c, in, "IncludeKeyMaterial", false, includes, &include));
	size_t start = 0;
	if (marker != NULL) {
		char *end = NULL;
		unsigned long v = strtoul(marker, &end, 10);
		if (end == NULL || *end != 0 || marker[0] < '0' || marker[0] > '9' || v > 100000)
			return api_fail(c, K_E_INVALID_MARKER, "Invalid marker");
		start = (size_t)v;
	}
	struct kms_key *k = NULL;
	GUARD(resolve(c, in, &k));
	k_status rc = K_OK;
	json_t *list = json_array();
	ENSURE_GOTO(list != NULL, K_E_INTERNAL);
	GUARD_GOTO(require_rotatable(c, k));
	json_t *rots = json_object_get(k->doc, "Rotations");
	size_t n_rot = json_array_size(rots);
	bool all = include != NULL && strcmp(include, "ALL_KEY_MATERIAL") == 0;
	size_t total = n_rot + (all ? 1 : 0);
	size_t newest = n_rot; /* index in the listing of the current material */
	size_t pos;
	for (pos = start; pos < total && json_array_size(list) < (size_t)limit; pos++) {
		size_t ri = all ? pos : pos + 1; /* 0: the first material */
		json_t *e = json_pack("{s:s}", "KeyId", k->id);
		if (e == NULL)
			continue;
		if (ri > 0) {
			json_t *r = json_array_get(rots, ri - 1);
			json_object_set(e, "KeyMaterialId", json_object_get(r, "KeyMaterialId"));
			json_object_set(e, "RotationDate", json_object_get(r, "RotationDate"));
			json_object_set(e, "RotationType", json_object_get(r, "RotationType"));
		}
		json_object_set_new(e, "KeyMaterialState",
				    json_string(ri == newest ? "CURRENT" : "NON_CURRENT"));
		json_array_append_new(list, e);
	}
	json_object_set_new(out, "Rotations", list);
	list = NULL;
	json_object_set_new(out, "Truncated", json_boolean(pos < total));
	if (pos < total) {
		char next[32];
		snprintf(next, sizeof next, "%zu", pos);
		json_object_set_new(out, "NextMarker", json_string(next));
	}
out:
	json_decref(list);
	kms_key_unref(k);
	return rc;
}

/*
 * Scheduled rotation of one key. The due record names the date it was
 * written for; if the key's schedule moved (rotation disabled, period
 * changed, key deleted), the record is stale and only removed. The key's
 * version is the precondition of the write (kms_rotate_key), so a rotation
 * happens once even if two runs race.
 */
static K_MUST_CHECK k_status rotate_due(void *arg, int64_t when, const char *ns, const char *id,
					const char *due_id)
{
	int64_t now = *(const int64_t *)arg;
	struct storage_op del_due;
	scheduler_due_del_op(&del_due, due_id);
	struct kms_key *k = NULL;
	k_status rc = kms_key_get(ns, id, &k);
	if (k_is(rc, K_E_NOT_FOUND))
		return storage_apply(kms_store(), &del_due, 1);
	GUARD(rc);
	bool enabled;
	int64_t period, next;
	rotation_schedule(k, &enabled, &period, &next);
	if (!enabled || next != when) {
		kms_key_unref(k);
		return storage_apply(kms_store(), &del_due, 1);
	}
	/* AWS does not rotate a key while it is disabled or pending deletion:
	 * "If the KMS key is disabled or pending deletion, KMS does not rotate
	 * the key material" — the record stays until the key is usable again. */
	if (next > now || k->state != KS_ENABLED || keystore_key_versions(k->handle) == 0) {
		kms_key_unref(k);
		return K_OK;
	}
	rc = kms_rotate_key(k, now, false, NULL);
	if (k_is(rc, K_E_CONFLICT))
		rc = K_OK; /* changed meanwhile: the next run looks again */
	else if (k_ok(rc))
		LOG_INFO("rotated key %s", k->arn);
	kms_key_unref(k);
	return rc;
}

/*
 * Keys with rotation on but no due record (AWS managed keys are created
 * by managed.c with a period but no date) are found by a sweep over the
 * keys, at the first run (unless the store's mark says a sweep completed
 * less than a day ago) and whenever the clock moved a day past the last
 * sweep (the test clock moves it in jumps). The sweep rotates what is due
 * and writes the due record of the rest.
 */
#define SWEEP_MAX 1024

struct sweep {
	size_t n;
	bool more;
	char ns[SWEEP_MAX][64];
	char ids[SWEEP_MAX][37];
};

static K_MUST_CHECK k_status sweep_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				      int64_t version)
{
	(void)version;
	struct sweep *s = arg;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	const char *manager = json_string_value(json_object_get(j, "KeyManager"));
	bool want = j != NULL &&
		    (json_is_true(json_object_get(j, "KeyRotationEnabled")) ||
		     (manager != NULL && strcmp(manager, "AWS") == 0)) &&
		    json_object_get(j, "NextRotationDate") == NULL;
	json_decref(j);
	if (!want || ns == NULL || strlen(ns) >= 64 || strlen(id) != 36)
		return K_OK;
	if (s->n == SWEEP_MAX) {
		s->more = true;
		return K_E_LIMIT_EXCEEDED;
	}
	snprintf(s->ns[s->n], 64, "%s", ns);
	snprintf(s->ids[s->n], 37, "%s", id);
	s->n++;
	return K_OK;
}

/* Gives a key found by the sweep its NextRotationDate and due record. */
static K_MUST_CHECK k_status sweep_key(const char *ns, const char *id)
{
	struct kms_key *k = NULL;
	k_status rc = kms_key_get(ns, id, &k);
	if (k_is(rc, K_E_NOT_FOUND))
		return K_OK;
	GUARD(rc);
	bool enabled;
	int64_t period, next;
	rotation_schedule(k, &enabled, &period, &next);
	if (enabled && json_object_get(k->doc, "NextRotationDate") == NULL) {
		char due[SCHEDULER_DUE_ID_MAX];
		struct storage_op op;
		rc = scheduler_due_id(next, ROTATE_TASK, ns, id, due, sizeof due);
		json_t *doc = k_ok(rc) ? json_deep_copy(k->doc) : NULL;
		if (doc != NULL) {
			json_object_set_new(doc, "NextRotationDate", json_integer(next));
			scheduler_due_put_op(&op, due);
			rc = kms_key_update_ops(k, doc, NULL, &op, 1, NULL);
			if (k_is(rc, K_E_CONFLICT))
				rc = K_OK;
		}
	}
	kms_key_unref(k);
	return rc;
}

static int64_t last_sweep = -1;

/*
 * The mark of the last complete sweep, kept in the store, so that a
 * restart within a day of it does not list and parse every key again
 * (over 100,000 keys that competes with the first requests after a
 * start). A mark from the future (a test clock moved back) or older than
 * a day does not count.
 */
#define SWEEP_MARK_KIND "rotation-sweep"
#define SWEEP_MARK_NS ""
#define SWEEP_MARK_ID "last"

static int64_t sweep_mark_read(int64_t now)
{
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	int64_t at = -1;
	if (k_ok(storage_get(kms_store(), SWEEP_MARK_KIND, SWEEP_MARK_NS, SWEEP_MARK_ID, &doc,
			     NULL))) {
		json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
		json_t *v = json_object_get(j, "SweptAt");
		if (json_is_integer(v))
			at = json_integer_value(v);
		json_decref(j);
	}
	kbuf_release(&doc);
	return at >= 0 && at <= now && now - at < DAY ? at : -1;
}

static void sweep_mark_write(int64_t now)
{
	char text[64];
	snprintf(text, sizeof text, "{\"SweptAt\":%lld}", (long long)now);
	struct storage_op op = {.op = STORAGE_PUT,
				.kind = SWEEP_MARK_KIND,
				.ns = SWEEP_MARK_NS,
				.id = SWEEP_MARK_ID,
				.doc = kslice_cstr(text),
				.expect = STORAGE_ANY};
	if (k_failed(storage_apply(kms_store(), &op, 1)))
		LOG_WARN("rotation: the sweep's mark was not written: the next start sweeps again");
}

/* Returns K_OK and *complete false when more keys wait for the next sweep. */
static K_MUST_CHECK k_status sweep(bool *complete)
{
	struct sweep *s = calloc(1, sizeof *s);
	ENSURE(s != NULL, K_E_INTERNAL);
	k_status rc = storage_list(kms_store(), "key", NULL, NULL, NULL, 0, sweep_cb, s);
	if (k_is(rc, K_E_LIMIT_EXCEEDED))
		rc = K_OK;
	for (size_t i = 0; i < s->n && k_ok(rc); i++)
		rc = sweep_key(s->ns[i], s->ids[i]);
	*complete = !s->more;
	free(s);
	return rc;
}

k_status kms_run_due_rotations(int64_t now)
{
	if (last_sweep < 0)
		last_sweep = sweep_mark_read(now);
	if (last_sweep < 0 || now - last_sweep >= DAY) {
		bool complete = false;
		GUARD(sweep(&complete));
		if (complete) {
			last_sweep = now;
			sweep_mark_write(now);
		}
	}
	return scheduler_due_list(ROTATE_TASK, now, rotate_due, &now);
}
