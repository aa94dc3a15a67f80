/*
 * multiregion.c — multi-Region keys: ids, the configuration every related
 * document carries, the related keys and the transactions that change
 * several of them (see multiregion.h).
 */
#include "kms/multiregion.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arn.h"
#include "core/json.h"
#include "core/log.h"
#include "core/uuid.h"
#include "crypto/crypto.h"
#include "crypto/uuid.h"
#include "kms/mrk_peer.h"
#include "kms/store.h"
#include "core/banned.h"

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

bool kms_mrk_id_bytes(const char *id, uint8_t out[16])
{
	if (id == NULL || strlen(id) != 36 || strncmp(id, "mrk-", 4) != 0)
		return false;
	for (size_t i = 0; i < 16; i++) {
		int hi = hex_value(id[4 + 2 * i]), lo = hex_value(id[5 + 2 * i]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

bool kms_mrk_id_valid(const char *id)
{
	uint8_t b[16];
	return kms_mrk_id_bytes(id, b);
}

static void mrk_id_format(const uint8_t b[16], char out[37])
{
	memcpy(out, "mrk-", 4);
	for (size_t i = 0; i < 16; i++)
		snprintf(out + 4 + 2 * i, 3, "%02x", b[i]);
}

void kms_mrk_new_key_id(bool multi_region, char out[37])
{
	if (!multi_region) {
		crypto_uuid_random(out);
		return;
	}
	/* A multi-Region key's id is "mrk-" and 32 hex digits (AWS's form). */
	uint8_t b[16];
	if (k_failed(crypto_random(b, sizeof b))) {
		crypto_uuid_random(out); /* never an all-zero id */
		return;
	}
	mrk_id_format(b, out);
}

const char *kms_doc_material_arn(json_t *doc)
{
	const char *m = json_string_value(json_object_get(doc, "MaterialArn"));
	return m != NULL ? m : json_string_value(json_object_get(doc, "Arn"));
}

static const char *mrk_type(const struct kms_key *k)
{
	json_t *cfg = json_object_get(k->doc, "MultiRegionConfiguration");
	return json_string_value(json_object_get(cfg, "MultiRegionKeyType"));
}

bool kms_key_is_mrk(const struct kms_key *k)
{
	return json_is_true(json_object_get(k->doc, "MultiRegion"));
}

bool kms_key_is_mrk_replica(const struct kms_key *k)
{
	const char *t = mrk_type(k);
	return kms_key_is_mrk(k) && t != NULL && strcmp(t, "REPLICA") == 0;
}

bool kms_key_has_replicas(const struct kms_key *k)
{
	json_t *cfg = json_object_get(k->doc, "MultiRegionConfiguration");
	return kms_key_is_mrk(k) && !kms_key_is_mrk_replica(k) &&
	       json_array_size(json_object_get(cfg, "ReplicaKeys")) > 0;
}

/*
 * CreateKey's MultiRegion member: a multi-Region key cannot be created in
 * a custom key store (CloudHSM or external)
 * (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html#KMS-CreateKey-request-MultiRegion).
 */
k_status kms_mrk_check_create(struct api_ctx *c, bool multi_region, const char *origin,
			      const char *store_id)
{
	if (!multi_region)
		return K_OK;
	bool custom =
		store_id != NULL || (origin != NULL && (strcmp(origin, "AWS_CLOUDHSM") == 0 ||
							strcmp(origin, "EXTERNAL_KEY_STORE") == 0));
	if (custom)
		return api_fail(c, K_E_UNSUPPORTED,
				"Multi-Region keys cannot be created in a custom key store.");
	return K_OK;
}

/* The key's account (the namespace's part before ':'). */
static void ns_account(const char *ns, char out[16])
{
	size_t n = strcspn(ns, ":");
	if (n > 15)
		n = 15;
	memcpy(out, ns, n);
	out[n] = 0;
}

/* The multi-Region key's material ARN: its key ARN with no Region. */
static void material_arn(const char *account, const char *id, char *out, size_t n)
{
	struct k_arn a = k_arn_of("kms", "", account, K_ARN_KEY, id);
	k_arn_format(&a, out, n);
}

k_status kms_mrk_make_primary(const struct api_ctx *c, json_t *doc)
{
	const char *id = json_string_value(json_object_get(doc, "KeyId"));
	const char *arn = json_string_value(json_object_get(doc, "Arn"));
	ENSURE(id != NULL && arn != NULL, K_E_INTERNAL);
	char march[K_ARN_BUF];
	material_arn(c->principal.account, id, march, sizeof march);
	json_t *cfg = json_pack("{s:s, s:{s:s, s:s}, s:[]}", "MultiRegionKeyType", "PRIMARY",
				"PrimaryKey", "Arn", arn, "Region", c->region, "ReplicaKeys");
	ENSURE(cfg != NULL, K_E_INTERNAL);
	json_object_set_new(doc, "MultiRegion", json_true());
	json_object_set_new(doc, "MultiRegionConfiguration", cfg);
	json_object_set_new(doc, "MaterialArn", json_string(march));
	return K_OK;
}

/*
 * The cache first (both forms: the hot path reads no storage), then this
 * namespace's records, then the other accounts of the Region.
 */
k_status kms_key_get_by_blob_id(const char *ns, const char *region, const uint8_t key_id[16],
				char id[37], struct kms_key **out)
{
	char forms[2][37];
	kuuid_format(key_id, forms[0]);
	mrk_id_format(key_id, forms[1]);
	forms[1][36] = 0;
	memcpy(id, forms[0], sizeof forms[0]);
	for (size_t i = 0; i < 2; i++) {
		if (kms_key_cached(ns, forms[i], out))
			return K_OK;
	}
	k_status rc = K_E_NOT_FOUND;
	for (size_t i = 0; i < 2 && k_is(rc, K_E_NOT_FOUND); i++)
		rc = kms_key_get(ns, forms[i], out);
	for (size_t i = 0; i < 2 && k_is(rc, K_E_NOT_FOUND); i++)
		rc = kms_key_get_any_account(region, forms[i], out);
	return rc;
}

struct kms_mrk_write *kms_mrk_write_new(void)
{
	return calloc(1, sizeof(struct kms_mrk_write));
}

void kms_mrk_write_free(struct kms_mrk_write *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->n; i++) {
		kjson_free(w->texts[i]);
		kms_key_unref(w->keys[i]);
	}
	free(w);
}

k_status kms_mrk_write_put(struct kms_mrk_write *w, struct kms_key *k, json_t *doc)
{
	char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(doc);
	if (text == NULL || w->n == KMS_MRK_MAX_OPS) {
		kjson_free(text);
		return K_E_INTERNAL;
	}
	atomic_fetch_add(&k->refs, 1);
	w->keys[w->n] = k;
	w->texts[w->n] = text;
	w->ops[w->n++] = (struct storage_op){
		.op = STORAGE_PUT,
		.kind = "key",
		.ns = k->ns,
		.id = k->id,
		.doc = kslice_cstr(text),
		.expect = k->version,
	};
	return K_OK;
}

k_status kms_mrk_write_due(struct kms_mrk_write *w, bool put, int64_t when, const char *task,
			   const char *ns, const char *id)
{
	ENSURE(w->n < KMS_MRK_MAX_OPS && w->n_due < 4, K_E_INTERNAL);
	char *due = w->due[w->n_due];
	GUARD(scheduler_due_id(when, task, ns, id, due, sizeof w->due[0]));
	w->n_due++;
	if (put)
		scheduler_due_put_op(&w->ops[w->n], due);
	else
		scheduler_due_del_op(&w->ops[w->n], due);
	w->texts[w->n] = NULL;
	w->keys[w->n] = NULL;
	w->n++;
	return K_OK;
}

void kms_mrk_unref_all(struct kms_key **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kms_key_unref(keys[i]);
}

/* Adds the key of (account, region, id) to out, unless it is k's own Region or gone. */
static K_MUST_CHECK k_status add_related(const struct kms_key *k, const char *account,
					 const char *region, struct kms_key **out, size_t *n)
{
	char ns[64];
	snprintf(ns, sizeof ns, "%s:%s", account, region != NULL ? region : "");
	if (region == NULL || strcmp(ns, k->ns) == 0)
		return K_OK;
	ENSURE(*n < KMS_MRK_MAX_RELATED, K_E_LIMIT_EXCEEDED);
	k_status rc = kms_key_get(ns, k->id, &out[*n]);
	if (k_is(rc, K_E_NOT_FOUND))
		return K_OK;
	GUARD(rc);
	(*n)++;
	return K_OK;
}

k_status kms_mrk_related(const struct kms_key *k, struct kms_key **out, size_t *n)
{
	*n = 0;
	json_t *cfg = json_object_get(k->doc, "MultiRegionConfiguration");
	char account[16];
	ns_account(k->ns, account);
	const char *primary =
		json_string_value(json_object_get(json_object_get(cfg, "PrimaryKey"), "Region"));
	k_status rc = add_related(k, account, primary, out, n);
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(cfg, "ReplicaKeys"), i, r)
	{
		if (k_ok(rc))
			rc = add_related(k, account,
					 json_string_value(json_object_get(r, "Region")), out, n);
	}
	if (k_failed(rc)) {
		kms_mrk_unref_all(out, *n);
		*n = 0;
	}
	return rc;
}

k_status kms_mrk_primary_of(const struct kms_key *k, struct kms_key **out)
{
	json_t *cfg = json_object_get(k->doc, "MultiRegionConfiguration");
	const char *region =
		json_string_value(json_object_get(json_object_get(cfg, "PrimaryKey"), "Region"));
	ENSURE(kms_key_is_mrk_replica(k) && region != NULL, K_E_NOT_FOUND);
	char account[16], ns[64];
	ns_account(k->ns, account);
	snprintf(ns, sizeof ns, "%s:%s", account, region);
	return kms_key_get(ns, k->id, out);
}

json_t *kms_mrk_fingerprint(const struct kms_key *k)
{
	json_t *own = json_object_get(k->doc, "MaterialFingerprint");
	if (json_is_string(own) || !kms_key_is_mrk(k))
		return json_is_string(own) ? json_incref(own) : NULL;
	struct kms_key *rel[KMS_MRK_MAX_RELATED];
	size_t n = 0;
	json_t *found = NULL;
	if (k_failed(kms_mrk_related(k, rel, &n)))
		return NULL;
	for (size_t i = 0; i < n && found == NULL; i++) {
		json_t *fp = json_object_get(rel[i]->doc, "MaterialFingerprint");
		if (json_is_string(fp))
			found = json_incref(fp);
	}
	kms_mrk_unref_all(rel, n);
	return found;
}

k_status kms_mrk_share_rotation(const struct kms_key *k, json_t *newdoc, struct kms_mrk_write *w)
{
	if (!kms_key_has_replicas(k))
		return K_OK;
	struct kms_key *rel[KMS_MRK_MAX_RELATED];
	size_t n = 0;
	GUARD(kms_mrk_related(k, rel, &n));
	k_status rc = K_OK;
	for (size_t i = 0; i < n && k_ok(rc); i++) {
		json_t *doc = json_deep_copy(rel[i]->doc);
		json_t *mats = json_deep_copy(json_object_get(newdoc, "Materials"));
		json_t *rots = json_deep_copy(json_object_get(newdoc, "Rotations"));
		if (doc == NULL || mats == NULL || rots == NULL) {
			json_decref(doc);
			json_decref(mats);
			json_decref(rots);
			rc = K_E_INTERNAL;
			break;
		}
		json_object_set_new(doc, "Materials", mats);
		json_object_set_new(doc, "Rotations", rots);
		rc = kms_mrk_write_put(w, rel[i], doc);
		if (k_ok(rc))
			w->n_shared++;
	}
	kms_mrk_unref_all(rel, n);
	GUARD(rc);
	return kms_mrk_peer_enqueue(k, NULL, NULL, w);
}

k_status kms_mrk_schedule_primary_deletion(struct api_ctx *c, struct kms_key *k, int64_t days,
					   json_t *out)
{
	json_t *doc = json_deep_copy(k->doc);
	ENSURE(doc != NULL, K_E_INTERNAL);
	json_object_set_new(doc, "KeyState", json_string("PendingReplicaDeletion"));
	json_object_del(doc, "DeletionDate");
	json_object_set_new(doc, "PendingWindowInDays", json_integer(days));
	json_object_set_new(doc, "PendingDeletionWindowInDays", json_integer(days));
	json_object_set_new(doc, "StateBeforeDeletion", json_string(kms_state_name(k->state)));
	GUARD(kms_key_update(k, doc, NULL, NULL));
	(void)c;
	/* "If the KMS key is a multi-Region primary key with replica keys, this
	 * field [DeletionDate] does not appear." */
	json_object_set_new(out, "KeyId", json_string(k->arn));
	json_object_set_new(out, "KeyState", json_string("PendingReplicaDeletion"));
	json_object_set_new(out, "PendingWindowInDays", json_integer(days));
	return K_OK;
}

/* ReplicaKeys without the entry of `region`. */
static json_t *replicas_without(json_t *cfg, const char *region)
{
	json_t *list = json_array();
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(cfg, "ReplicaKeys"), i, r)
	{
		const char *rr = json_string_value(json_object_get(r, "Region"));
		if (list != NULL && (rr == NULL || strcmp(rr, region) != 0))
			json_array_append(list, r);
	}
	return list;
}

/* The primary whose last replica goes: its waiting period begins now. */
static K_MUST_CHECK k_status start_primary_window(struct kms_key *p, json_t *doc, int64_t now,
						  const char *task, struct kms_mrk_write *w)
{
	int64_t days = json_integer_value(json_object_get(doc, "PendingWindowInDays"));
	if (days <= 0)
		days = 30;
	int64_t when = now + days * 86400;
	/* "When the last replica key in the multi-Region key is deleted, the
	 * KeyState of the scheduled primary key changes from
	 * PendingReplicaDeletion to PendingDeletion and the deletion date
	 * appears in the DeletionDate field." (KeyMetadata) */
	json_object_set_new(doc, "KeyState", json_string("PendingDeletion"));
	json_object_set_new(doc, "DeletionDate", kjson_date(kclock_ms_within(when)));
	json_object_del(doc, "PendingDeletionWindowInDays");
	return kms_mrk_write_due(w, true, when, task, p->ns, p->id);
}

/* True if cfg's ReplicaKeys has an entry of region. */
static bool lists_region(json_t *cfg, const char *region)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(cfg, "ReplicaKeys"), i, r)
	{
		const char *rr = json_string_value(json_object_get(r, "Region"));
		if (rr != NULL && strcmp(rr, region) == 0)
			return true;
	}
	return false;
}

/*
 * Adds to w the document of x without region in its ReplicaKeys (nothing
 * when it does not list it), and for a primary in PendingReplicaDeletion
 * whose last replica this was, the start of its own waiting period.
 */
static K_MUST_CHECK k_status unlink_from(struct kms_key *x, const char *region, int64_t now,
					 const char *task, struct kms_mrk_write *w)
{
	if (!lists_region(json_object_get(x->doc, "MultiRegionConfiguration"), region))
		return K_OK;
	json_t *doc = json_deep_copy(x->doc);
	json_t *cfg = json_object_get(doc, "MultiRegionConfiguration");
	json_t *list = replicas_without(cfg, region);
	if (doc == NULL || list == NULL) {
		json_decref(doc);
		json_decref(list);
		return K_E_INTERNAL;
	}
	json_object_set_new(cfg, "ReplicaKeys", list);
	k_status rc = K_OK;
	if (x->state == KS_PENDING_REPLICA_DELETION && json_array_size(list) == 0)
		rc = start_primary_window(x, doc, now, task, w);
	if (k_failed(rc)) {
		json_decref(doc);
		return rc;
	}
	return kms_mrk_write_put(w, x, doc);
}

k_status kms_mrk_unlink_region(struct kms_key *k, const char *region, bool self, int64_t now,
			       const char *task, struct kms_mrk_write *w)
{
	struct kms_key *rel[KMS_MRK_MAX_RELATED];
	size_t n = 0;
	GUARD(kms_mrk_related(k, rel, &n));
	k_status rc = self ? unlink_from(k, region, now, task, w) : K_OK;
	for (size_t i = 0; i < n && k_ok(rc); i++)
		rc = unlink_from(rel[i], region, now, task, w);
	kms_mrk_unref_all(rel, n);
	return rc;
}

k_status kms_mrk_unlink_replica(struct kms_key *k, int64_t now, const char *task,
				struct kms_mrk_write *w)
{
	if (!kms_key_is_mrk_replica(k))
		return K_OK;
	const char *region = strchr(k->ns, ':');
	ENSURE(region != NULL, K_E_INTERNAL);
	GUARD(kms_mrk_unlink_region(k, region + 1, false, now, task, w));
	/* The related keys other deployments hold learn of it through the outbox. */
	return kms_mrk_peer_enqueue_deleted(k, w);
}
