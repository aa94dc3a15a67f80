/*
 * erase.c — destroying a deleted key's material kept outside its document
 * (erase.h).
 */
#include "kms/erase.h"

#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "keystore/keyops.h"
#include "kms/keystores.h"
#include "kms/store.h"
#include "core/banned.h"

void kms_erase_release(struct kms_erase *e)
{
	kjson_free(e->doc);
	e->doc = NULL;
	e->n = 0;
}

k_status kms_erase_ops(const struct kms_key *k, int64_t now, struct kms_erase *e)
{
	memset(e, 0, sizeof *e);
	const char *store = json_string_value(json_object_get(k->doc, "KeyStore"));
	const struct keystore_ops *ops = keystore_find(store);
	json_t *mats = json_object_get(k->doc, "Materials");
	if (ops == NULL || ops->erase == NULL || json_array_size(mats) == 0)
		return K_OK;
	json_t *refs = json_array();
	size_t i;
	json_t *m;
	json_array_foreach(mats, i, m)
	{
		json_t *w = json_object_get(m, "Wrapped");
		if (json_is_string(w))
			json_array_append(refs, w);
	}
	json_t *doc = json_pack("{s:s,s:s,s:o}", "KeyStore", ops->name, "KeyArn", k->arn,
				"Materials", refs);
	json_t *sid = json_object_get(k->doc, "CustomKeyStoreId");
	if (doc != NULL && json_is_string(sid))
		json_object_set(doc, "CustomKeyStoreId", sid);
	e->doc = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	ENSURE(e->doc != NULL, K_E_INTERNAL);
	GUARD(scheduler_due_id(now, KMS_ERASE_TASK, k->ns, k->id, e->due_id, sizeof e->due_id));
	e->ops[0] = (struct storage_op){.op = STORAGE_PUT,
					.kind = KMS_ERASE_KIND,
					.ns = k->ns,
					.id = k->id,
					.doc = kslice_cstr(e->doc),
					.expect = STORAGE_ANY};
	scheduler_due_put_op(&e->ops[1], e->due_id);
	e->n = KMS_ERASE_MAX_OPS;
	return K_OK;
}

/*
 * A store recorded CONNECTED whose token this node has not logged in to
 * yet (after a restart, or on another node of a cluster) logs in now, as
 * on the first use of one of its keys (kms_cks_state).
 */
static void wake_store(const char *ns, json_t *erase)
{
	const char *sid = json_string_value(json_object_get(erase, "CustomKeyStoreId"));
	if (sid == NULL)
		return;
	struct kbuf raw;
	kbuf_init(&raw, STORAGE_MAX_DOC);
	int64_t version = 0;
	json_t *store = NULL;
	if (k_ok(storage_get(kms_store(), KMS_CKS_KIND, ns, sid, &raw, &version)))
		store = json_loadb((const char *)raw.ptr, raw.len, 0, NULL);
	kbuf_release(&raw);
	const char *code = NULL;
	if (store != NULL)
		(void)kms_cks_state(ns, sid, store, &code);
	json_decref(store);
}

/* Destroys the material an erase record lists; K_E_INVALID_STATE: not now. */
static K_MUST_CHECK k_status erase_listed(json_t *doc)
{
	const struct keystore_ops *ops =
		keystore_find(json_string_value(json_object_get(doc, "KeyStore")));
	json_t *mats = json_object_get(doc, "Materials");
	size_t n = json_array_size(mats);
	ENSURE(ops != NULL && n > 0 && n <= UINT32_MAX, K_E_INTERNAL);
	struct kslice *refs = calloc(n, sizeof *refs);
	ENSURE(refs != NULL, K_E_INTERNAL);
	k_status rc = K_OK;
	for (size_t i = 0; i < n && k_ok(rc); i++) {
		const char *r = json_string_value(json_array_get(mats, i));
		if (r == NULL)
			rc = K_E_INTERNAL;
		else
			refs[i] = kslice_cstr(r);
	}
	if (k_ok(rc))
		rc = keystore_erase(ops, refs, (uint32_t)n);
	free(refs);
	return rc;
}

/*
 * One queued erasure. Done (or a record that names nothing this server can
 * erase, logged): both records go. Not reachable now: both stay, the
 * lease is given back, and the next run tries again.
 */
static K_MUST_CHECK k_status erase_due(void *arg, int64_t when, const char *ns, const char *id,
				       const char *due_id)
{
	(void)arg;
	(void)when;
	struct kbuf raw;
	kbuf_init(&raw, STORAGE_MAX_DOC);
	int64_t version = 0;
	struct storage_op del[2];
	scheduler_due_del_op(&del[1], due_id);
	k_status rc = storage_get(kms_store(), KMS_ERASE_KIND, ns, id, &raw, &version);
	if (k_is(rc, K_E_NOT_FOUND)) {
		kbuf_release(&raw);
		return storage_apply(kms_store(), &del[1], 1);
	}
	json_t *doc = k_ok(rc) ? json_loadb((const char *)raw.ptr, raw.len, 0, NULL) : NULL;
	kbuf_release(&raw);
	GUARD(rc);
	wake_store(ns, doc);
	rc = erase_listed(doc);
	if (k_is(rc, K_E_INVALID_STATE)) {
		LOG_DEBUG("the material of deleted key %s waits for its key store",
			  json_string_value(json_object_get(doc, "KeyArn")));
		json_decref(doc);
		return K_OK;
	}
	if (k_failed(rc))
		LOG_ERROR("the material of deleted key %s cannot be destroyed: %s",
			  json_string_value(json_object_get(doc, "KeyArn")), k_status_name(rc));
	json_decref(doc);
	del[0] = (struct storage_op){
		.op = STORAGE_DEL, .kind = KMS_ERASE_KIND, .ns = ns, .id = id, .expect = version};
	rc = storage_apply(kms_store(), del, 2);
	return k_is(rc, K_E_CONFLICT) || k_is(rc, K_E_NOT_FOUND) ? K_OK : rc;
}

k_status kms_run_due_erasures(int64_t now)
{
	return scheduler_due_list(KMS_ERASE_TASK, now, erase_due, NULL);
}
