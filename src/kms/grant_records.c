/*
 * grant_records.c — grant records in the store: their ids, reading a key's
 * grants, moving grants out of older key documents, and the deletions
 * that go with a key's (see grants.h).
 */
#include "kms/grants.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "kms/store.h"
#include "core/banned.h"

const char *const kms_grant_ops[] = {"Decrypt",
				     "Encrypt",
				     "GenerateDataKey",
				     "GenerateDataKeyWithoutPlaintext",
				     "ReEncryptFrom",
				     "ReEncryptTo",
				     "Sign",
				     "Verify",
				     "GetPublicKey",
				     "CreateGrant",
				     "RetireGrant",
				     "DescribeKey",
				     "GenerateDataKeyPair",
				     "GenerateDataKeyPairWithoutPlaintext",
				     "GenerateMac",
				     "VerifyMac",
				     "DeriveSharedSecret",
				     NULL};

uint32_t kms_grant_op_bit(const char *op)
{
	for (size_t i = 0; op != NULL && kms_grant_ops[i] != NULL; i++) {
		if (strcmp(kms_grant_ops[i], op) == 0)
			return 1u << i;
	}
	return 0;
}

uint32_t kms_grant_ops_mask(const json_t *ops)
{
	uint32_t m = 0;
	size_t i;
	const json_t *o;
	json_array_foreach((json_t *)ops, i, o)
	{
		m |= kms_grant_op_bit(json_string_value(o));
	}
	return m;
}

void kms_grant_record_id(const char *key_id, const char *grant_id, char *out)
{
	snprintf(out, KMS_GRANT_RECORD_ID_BUF, "%.36s/%.64s", key_id, grant_id);
}

void kms_grant_retiree_prefix(const char *principal, char *out, size_t n)
{
	size_t len = strnlen(principal, KMS_GRANT_PRINCIPAL_MAX);
	snprintf(out, n, "%03zu%.*s", len, (int)len, principal);
}

/* The retiree index's id of one grant into out (KMS_GRANT_RETIREE_ID_BUF bytes). */
static void retiree_id(const char *principal, const char *key_id, const char *grant_id, char *out)
{
	char rec[KMS_GRANT_RECORD_ID_BUF];
	kms_grant_record_id(key_id, grant_id, rec);
	size_t len = strnlen(principal, KMS_GRANT_PRINCIPAL_MAX);
	snprintf(out, KMS_GRANT_RETIREE_ID_BUF, "%03zu%.*s%s", len, (int)len, principal, rec);
}

struct each {
	kms_grant_doc_cb cb;
	void *arg;
};

static K_MUST_CHECK k_status each_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				     int64_t version)
{
	(void)ns;
	(void)version;
	struct each *e = arg;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	if (j == NULL) {
		LOG_ERROR("grant record %s is not JSON", id);
		return K_E_INTERNAL;
	}
	k_status rc = e->cb(e->arg, id, j);
	json_decref(j);
	return rc;
}

k_status kms_grants_each(const char *ns, const char *key_id, const char *after, size_t limit,
			 kms_grant_doc_cb cb, void *arg)
{
	char prefix[40];
	snprintf(prefix, sizeof prefix, "%.36s/", key_id);
	struct each e = {.cb = cb, .arg = arg};
	return storage_list(kms_store(), KMS_GRANT_KIND, ns, prefix, after, limit, each_cb, &e);
}

/* A grant of an older key document as its own record's document. */
static json_t *legacy_record(const struct kms_key *k, const json_t *g)
{
	json_t *d = json_deep_copy(g);
	if (d == NULL)
		return NULL;
	json_object_del(d, "Token");
	json_object_set_new(d, "KeyArn", json_string(k->arn));
	return d;
}

/* Texts and ids the migration's ops point into, freed together. */
struct migration {
	struct storage_op *ops;
	char **texts;
	char (*ids)[KMS_GRANT_RETIREE_ID_BUF];
	size_t n_texts;
};

static void migration_free(struct migration *m)
{
	for (size_t i = 0; i < m->n_texts; i++)
		kjson_free(m->texts[i]);
	free(m->texts);
	free(m->ids);
	free(m->ops);
}

/* Appends the PUTs of one legacy grant (its record, its index record). */
static K_MUST_CHECK k_status migrate_one(const struct kms_key *k, const json_t *g,
					 struct migration *m, size_t *n)
{
	const char *gid = json_string_value(json_object_get(g, "GrantId"));
	ENSURE(gid != NULL && strlen(gid) <= KMS_GRANT_ID_LEN, K_E_INTERNAL);
	json_t *d = legacy_record(k, g);
	ENSURE(d != NULL, K_E_INTERNAL);
	char *text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	ENSURE(text != NULL, K_E_INTERNAL);
	m->texts[m->n_texts++] = text;
	kms_grant_record_id(k->id, gid, m->ids[*n]);
	m->ops[*n] = (struct storage_op){.op = STORAGE_PUT,
					 .kind = KMS_GRANT_KIND,
					 .ns = k->ns,
					 .id = m->ids[*n],
					 .doc = kslice_cstr(text),
					 .expect = STORAGE_ANY};
	(*n)++;
	const char *rp = json_string_value(json_object_get(g, "RetiringPrincipal"));
	if (rp == NULL)
		return K_OK;
	retiree_id(rp, k->id, gid, m->ids[*n]);
	m->ops[*n] = (struct storage_op){.op = STORAGE_PUT,
					 .kind = KMS_GRANT_RETIREE_KIND,
					 .ns = k->ns,
					 .id = m->ids[*n],
					 .doc = kslice_cstr("{}"),
					 .expect = STORAGE_ANY};
	(*n)++;
	return K_OK;
}

k_status kms_grants_migrate(const struct kms_key *k)
{
	const json_t *grants = json_object_get(k->doc, "Grants");
	if (grants == NULL)
		return K_OK;
	size_t count = json_is_array(grants) ? json_array_size(grants) : 0;
	struct migration m = {0};
	m.ops = calloc(1 + 2 * count, sizeof *m.ops);
	m.texts = calloc(1 + count, sizeof *m.texts);
	m.ids = calloc(1 + 2 * count, sizeof *m.ids);
	k_status rc = K_OK;
	json_t *keydoc = json_deep_copy(k->doc);
	ENSURE_GOTO(m.ops != NULL && m.texts != NULL && m.ids != NULL && keydoc != NULL,
		    K_E_INTERNAL);
	json_object_del(keydoc, "Grants");
	char *text = json_dumps(keydoc, JSON_COMPACT | JSON_SORT_KEYS);
	ENSURE_GOTO(text != NULL, K_E_INTERNAL);
	m.texts[m.n_texts++] = text;
	m.ops[0] = (struct storage_op){.op = STORAGE_PUT,
				       .kind = "key",
				       .ns = k->ns,
				       .id = k->id,
				       .doc = kslice_cstr(text),
				       .expect = k->version};
	size_t n = 1;
	for (size_t i = 0; i < count; i++)
		GUARD_GOTO(migrate_one(k, json_array_get(grants, i), &m, &n));
	rc = storage_apply(kms_store(), m.ops, n);
	if (k_ok(rc))
		LOG_INFO("key %s: %zu grants moved from the key's document to grant records",
			 k->arn, count);
	if (k_is(rc, K_E_CONFLICT))
		rc = K_OK; /* another writer moved them, or changed the key: read the records */
out:
	json_decref(keydoc);
	migration_free(&m);
	return rc;
}

struct legacy_keys {
	json_t *found; /* [[ns, id], ...] of keys whose document holds grants */
};

static K_MUST_CHECK k_status legacy_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				       int64_t version)
{
	(void)version;
	struct legacy_keys *l = arg;
	/* Most documents have no grants: look for the member before parsing. */
	if (memmem(doc.ptr, doc.len, "\"Grants\"", 8) == NULL)
		return K_OK;
	json_array_append_new(l->found, json_pack("[s,s]", ns, id));
	return K_OK;
}

k_status kms_grants_migrate_all(struct storage *st)
{
	struct legacy_keys l = {.found = json_array()};
	ENSURE(l.found != NULL, K_E_INTERNAL);
	k_status rc = storage_list(st, "key", NULL, NULL, NULL, 0, legacy_cb, &l);
	size_t i;
	json_t *e;
	json_array_foreach(l.found, i, e)
	{
		if (k_failed(rc))
			break;
		const char *ns = json_string_value(json_array_get(e, 0));
		const char *id = json_string_value(json_array_get(e, 1));
		struct kms_key *k = NULL;
		k_status one = kms_key_get(ns, id, &k);
		if (k_ok(one))
			one = kms_grants_migrate(k);
		kms_key_unref(k);
		/* A key that cannot be opened now (its key store away) moves its grants when first used. */
		if (k_failed(one))
			LOG_WARN("key %s in %s: its grants stay in its document until it is next "
				 "used",
				 id, ns);
	}
	json_decref(l.found);
	return rc;
}

struct deletions {
	json_t *ids; /* [kind, id, kind, id, ...] */
	const char *key_id;
};

static K_MUST_CHECK k_status deletion_cb(void *arg, const char *record_id, const json_t *doc)
{
	struct deletions *d = arg;
	json_array_append_new(d->ids, json_string(KMS_GRANT_KIND));
	json_array_append_new(d->ids, json_string(record_id));
	const char *rp = json_string_value(json_object_get(doc, "RetiringPrincipal"));
	const char *gid = json_string_value(json_object_get(doc, "GrantId"));
	if (rp != NULL && gid != NULL) {
		char rid[KMS_GRANT_RETIREE_ID_BUF];
		retiree_id(rp, d->key_id, gid, rid);
		json_array_append_new(d->ids, json_string(KMS_GRANT_RETIREE_KIND));
		json_array_append_new(d->ids, json_string(rid));
	}
	return K_OK;
}

k_status kms_grants_delete_ops(const char *ns, const char *key_id, struct kms_grant_ops *out)
{
	memset(out, 0, sizeof *out);
	struct deletions d = {.ids = json_array(), .key_id = key_id};
	ENSURE(d.ids != NULL, K_E_INTERNAL);
	k_status rc = kms_grants_each(ns, key_id, NULL, 0, deletion_cb, &d);
	size_t n = json_array_size(d.ids) / 2;
	if (k_ok(rc) && n > 0) {
		out->ops = calloc(n, sizeof *out->ops);
		rc = out->ops != NULL ? K_OK : K_E_INTERNAL;
	}
	for (size_t i = 0; k_ok(rc) && i < n; i++)
		out->ops[i] = (struct storage_op){
			.op = STORAGE_DEL,
			.kind = json_string_value(json_array_get(d.ids, 2 * i)),
			.ns = ns,
			.id = json_string_value(json_array_get(d.ids, 2 * i + 1)),
			.expect = STORAGE_ANY};
	out->hold = d.ids;
	out->n = k_ok(rc) ? n : 0;
	if (k_failed(rc))
		kms_grant_ops_free(out);
	return rc;
}

void kms_grant_ops_free(struct kms_grant_ops *g)
{
	free(g->ops);
	json_decref(g->hold);
	memset(g, 0, sizeof *g);
}

/* The put of one grant: its record and, with a retiring principal, its index record. */
size_t kms_grant_write_ops(const struct kms_key *k, const char *grant_id, const char *retiring,
			   enum storage_op_kind what, struct kslice doc, char *rec_id, char *idx_id,
			   struct storage_op ops[2])
{
	kms_grant_record_id(k->id, grant_id, rec_id);
	ops[0] = (struct storage_op){.op = what,
				     .kind = KMS_GRANT_KIND,
				     .ns = k->ns,
				     .id = rec_id,
				     .doc = doc,
				     .expect = what == STORAGE_PUT ? STORAGE_ABSENT : STORAGE_ANY};
	if (retiring == NULL || retiring[0] == 0)
		return 1;
	retiree_id(retiring, k->id, grant_id, idx_id);
	ops[1] = (struct storage_op){.op = what,
				     .kind = KMS_GRANT_RETIREE_KIND,
				     .ns = k->ns,
				     .id = idx_id,
				     .doc = kslice_cstr("{}"),
				     .expect = STORAGE_ANY};
	return 2;
}

static K_MUST_CHECK k_status attach_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				       int64_t version)
{
	(void)ns;
	(void)version;
	json_t *g = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	if (g == NULL) {
		LOG_ERROR("grant record %s is not JSON", id);
		return K_E_INTERNAL;
	}
	json_array_append_new(arg, g);
	return K_OK;
}

k_status kms_grants_into_doc(struct storage *st, const char *ns, json_t *key_doc)
{
	const char *key_id = json_string_value(json_object_get(key_doc, "KeyId"));
	ENSURE(key_id != NULL, K_E_VALIDATION);
	json_t *list = json_object_get(key_doc, "Grants");
	if (!json_is_array(list)) {
		list = json_array();
		ENSURE(list != NULL, K_E_INTERNAL);
		json_object_set_new(key_doc, "Grants", list);
	}
	char prefix[40];
	snprintf(prefix, sizeof prefix, "%.36s/", key_id);
	return storage_list(st, KMS_GRANT_KIND, ns, prefix, NULL, 0, attach_cb, list);
}
