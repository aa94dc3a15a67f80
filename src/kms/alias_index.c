/*
 * alias_index.c — reading a key's alias index (alias_index.h).
 *
 * CreateAlias, UpdateAlias and DeleteAlias keep each key's index record
 * (ops_aliases.c). A key that never had an alias has no record; telling
 * "no alias" from "aliases written before the index existed" once took a
 * listing of every alias of the namespace on each such call, so that
 * CreateAlias slowed down with the number of aliases. Now the first such
 * call in a namespace builds the missing records from one listing and
 * writes them, with the namespace's "done" record, in one apply; from
 * then on a missing record means no alias, and a call reads two records.
 */
#include "kms/alias_index.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "kms/kms.h"
#include "kms/store.h"
#include "storage/storage.h"
#include "core/banned.h"

/* Rounds of "build, apply" before giving up to a writer racing the build. */
#define BUILD_ATTEMPTS 8

static K_MUST_CHECK k_status get_index(const char *ns, const char *key_id, json_t **names,
				       int64_t *version)
{
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	k_status rc = storage_get(kms_store(), KMS_ALIAS_INDEX_KIND, ns, key_id, &doc, version);
	json_t *j = k_ok(rc) ? json_loadb((const char *)doc.ptr, doc.len, 0, NULL) : NULL;
	kbuf_release(&doc);
	GUARD(rc);
	json_t *a = json_object_get(j, "Aliases");
	ENSURE(json_is_array(a), (json_decref(j), K_E_INTERNAL));
	*names = json_incref(a);
	json_decref(j);
	return K_OK;
}

/* Every alias of the namespace, grouped by target: {key id: [names]}. */
static K_MUST_CHECK k_status group_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				      int64_t version)
{
	(void)ns;
	(void)version;
	json_t *by_key = arg;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	const char *t = json_string_value(json_object_get(j, "TargetKeyId"));
	k_status rc = K_OK;
	if (t != NULL) {
		json_t *names = json_object_get(by_key, t);
		if (names == NULL && json_object_set_new(by_key, t, json_array()) != 0)
			rc = K_E_INTERNAL;
		names = json_object_get(by_key, t);
		if (k_ok(rc) && json_array_append_new(names, json_string(id)) != 0)
			rc = K_E_INTERNAL;
	}
	json_decref(j);
	return rc;
}

/* The PUTs of the missing index records and of the "done" record; texts back the docs. */
static K_MUST_CHECK k_status build_ops(const char *ns, json_t *by_key, struct storage_op *ops,
				       char **texts, size_t *n)
{
	const char *key_id;
	json_t *names;
	*n = 0;
	json_object_foreach(by_key, key_id, names)
	{
		json_t *have = NULL;
		int64_t v = 0;
		k_status rc = get_index(ns, key_id, &have, &v);
		json_decref(have);
		if (k_ok(rc))
			continue; /* kept by the alias writes since it exists */
		GUARD(k_is(rc, K_E_NOT_FOUND) ? K_OK : rc);
		json_t *doc = json_pack("{s:s, s:O}", "KeyId", key_id, "Aliases", names);
		texts[*n] = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(doc);
		ENSURE(texts[*n] != NULL, K_E_INTERNAL);
		ops[*n] = (struct storage_op){.op = STORAGE_PUT,
					      .kind = KMS_ALIAS_INDEX_KIND,
					      .ns = ns,
					      .id = key_id,
					      .doc = kslice_cstr(texts[*n]),
					      .expect = STORAGE_ABSENT};
		(*n)++;
	}
	ops[(*n)++] = (struct storage_op){.op = STORAGE_PUT,
					  .kind = KMS_ALIAS_INDEX_DONE_KIND,
					  .ns = ns,
					  .id = KMS_ALIAS_INDEX_DONE_ID,
					  .doc = kslice_cstr("{}"),
					  .expect = STORAGE_ABSENT};
	return K_OK;
}

/* One round: lists the aliases, writes the missing indexes and the "done" record. */
static K_MUST_CHECK k_status build_once(const char *ns)
{
	json_t *by_key = json_object();
	ENSURE(by_key != NULL, K_E_INTERNAL);
	k_status rc = storage_list(kms_store(), "alias", ns, "alias/", NULL, 0, group_cb, by_key);
	size_t cap = json_object_size(by_key) + 1, n = 0;
	struct storage_op *ops = k_ok(rc) ? calloc(cap, sizeof *ops) : NULL;
	char **texts = k_ok(rc) ? calloc(cap, sizeof *texts) : NULL;
	if (k_ok(rc) && (ops == NULL || texts == NULL))
		rc = K_E_INTERNAL;
	if (k_ok(rc))
		rc = build_ops(ns, by_key, ops, texts, &n);
	if (k_ok(rc))
		rc = storage_apply(kms_store(), ops, n);
	for (size_t i = 0; texts != NULL && i < cap; i++)
		kjson_free(texts[i]);
	free(texts);
	free(ops);
	json_decref(by_key);
	return rc;
}

static K_MUST_CHECK k_status done_in(const char *ns)
{
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	k_status rc = storage_get(kms_store(), KMS_ALIAS_INDEX_DONE_KIND, ns,
				  KMS_ALIAS_INDEX_DONE_ID, &doc, NULL);
	kbuf_release(&doc);
	return rc;
}

k_status kms_alias_index_load(const char *ns, const char *key_id, json_t **names, int64_t *version)
{
	for (int attempt = 0; attempt < BUILD_ATTEMPTS; attempt++) {
		k_status rc = get_index(ns, key_id, names, version);
		if (!k_is(rc, K_E_NOT_FOUND))
			return rc;
		rc = done_in(ns);
		if (k_ok(rc)) {
			*names = json_array();
			ENSURE(*names != NULL, K_E_INTERNAL);
			*version = STORAGE_ABSENT;
			return K_OK;
		}
		GUARD(k_is(rc, K_E_NOT_FOUND) ? K_OK : rc);
		rc = build_once(ns);
		if (!k_ok(rc) && !k_is(rc, K_E_CONFLICT))
			return rc; /* a conflict: another writer built or wrote meanwhile; read again */
	}
	return K_E_CONFLICT;
}
