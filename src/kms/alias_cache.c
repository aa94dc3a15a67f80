/*
 * alias_cache.c — the alias cache that kms_resolve_key uses (see kms.h),
 * and the alias record read it is filled from. The operations on aliases
 * are in ops_aliases.c.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "kms/kms.h"
#include "kms/store.h"
#include "core/hash.h"
#include "core/banned.h"

/*
 * The alias cache. Encrypt with an alias is a hot path, so resolution must
 * not read storage or take a global lock: the table is split into shards,
 * each with its own rwlock, like the key cache. A miss reads storage and
 * fills the entry. Every write to an alias record (Create/Update/
 * DeleteAlias, deletion of a key, reset; here or on another node) reaches
 * the cache through the store's change feed, which drops the entry and
 * bumps the shard's generation; a filler that read storage before the
 * write sees the generation moved and does not install its (possibly
 * stale) answer. Writers do not refill the entry themselves: alias
 * changes are rare, and the next resolution reads the record once.
 */
#define ALIAS_SHARDS 32
#define ALIAS_BUCKETS 64

struct alias_entry {
	struct alias_entry *next;
	char ns[64];
	char name[ALIAS_NAME_MAX + 1];
	char target[37];
};

struct alias_shard {
	pthread_rwlock_t lock;
	uint64_t gen;
	struct alias_entry *b[ALIAS_BUCKETS];
};

static struct alias_shard acache[ALIAS_SHARDS];
static pthread_once_t acache_once = PTHREAD_ONCE_INIT;

static void acache_init(void)
{
	for (size_t i = 0; i < ALIAS_SHARDS; i++)
		pthread_rwlock_init(&acache[i].lock, NULL);
}

static struct alias_shard *shard_of(const char *ns, const char *name, size_t *bucket)
{
	pthread_once(&acache_once, acache_init);
	uint64_t h = khash_pair(ns, name);
	*bucket = (size_t)((h / ALIAS_SHARDS) % ALIAS_BUCKETS);
	return &acache[h % ALIAS_SHARDS];
}

static struct alias_entry **find_slot(struct alias_shard *sh, size_t b, const char *ns,
				      const char *name)
{
	struct alias_entry **pp = &sh->b[b];
	while (*pp != NULL && !(strcmp((*pp)->name, name) == 0 && strcmp((*pp)->ns, ns) == 0))
		pp = &(*pp)->next;
	return pp;
}

/* Installs or removes an entry; the caller holds the shard's write lock. */
static void put_locked(struct alias_shard *sh, size_t b, const char *ns, const char *name,
		       const char *target)
{
	struct alias_entry **pp = find_slot(sh, b, ns, name);
	if (target == NULL) {
		if (*pp != NULL) {
			struct alias_entry *e = *pp;
			*pp = e->next;
			free(e);
		}
		return;
	}
	if (*pp == NULL) {
		if (strlen(ns) >= sizeof((*pp)->ns) || strlen(name) > ALIAS_NAME_MAX)
			return;
		struct alias_entry *e = calloc(1, sizeof *e);
		if (e == NULL)
			return;
		snprintf(e->ns, sizeof e->ns, "%s", ns);
		snprintf(e->name, sizeof e->name, "%s", name);
		e->next = sh->b[b];
		sh->b[b] = e;
		pp = &sh->b[b];
	}
	snprintf((*pp)->target, sizeof(*pp)->target, "%s", target);
}

static void alias_forget(const char *ns, const char *name)
{
	size_t b;
	struct alias_shard *sh = shard_of(ns, name, &b);
	pthread_rwlock_wrlock(&sh->lock);
	sh->gen++;
	put_locked(sh, b, ns, name, NULL);
	pthread_rwlock_unlock(&sh->lock);
}

/* Drops every entry whose ns starts with prefix. */
static void alias_drop_prefix(const char *prefix)
{
	size_t pl = strlen(prefix);
	pthread_once(&acache_once, acache_init);
	for (size_t s = 0; s < ALIAS_SHARDS; s++) {
		pthread_rwlock_wrlock(&acache[s].lock);
		acache[s].gen++;
		for (size_t b = 0; b < ALIAS_BUCKETS; b++) {
			struct alias_entry **pp = &acache[s].b[b];
			while (*pp != NULL) {
				struct alias_entry *e = *pp;
				if (strncmp(e->ns, prefix, pl) != 0) {
					pp = &e->next;
					continue;
				}
				*pp = e->next;
				free(e);
			}
		}
		pthread_rwlock_unlock(&acache[s].lock);
	}
}

void kms_alias_cache_on_change(void *arg, const struct storage_event *ev)
{
	(void)arg;
	if (ev->what == STORAGE_EV_PURGE)
		alias_drop_prefix(ev->ns);
	else if (strcmp(ev->kind, "alias") == 0)
		alias_forget(ev->ns, ev->id);
}

k_status kms_alias_read(const char *ns, const char *name, json_t **doc_out, int64_t *version)
{
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	k_status rc = storage_get(kms_store(), "alias", ns, name, &doc, version);
	if (k_failed(rc)) {
		kbuf_release(&doc);
		return rc;
	}
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	kbuf_release(&doc);
	ENSURE(j != NULL && json_string_value(json_object_get(j, "TargetKeyId")) != NULL,
	       (json_decref(j), K_E_INTERNAL));
	*doc_out = j;
	return K_OK;
}

k_status kms_alias_lookup(const char *ns, const char *name, char target[37])
{
	size_t b;
	struct alias_shard *sh = shard_of(ns, name, &b);
	pthread_rwlock_rdlock(&sh->lock);
	struct alias_entry *e = *find_slot(sh, b, ns, name);
	bool hit = e != NULL;
	if (hit)
		snprintf(target, 37, "%s", e->target);
	uint64_t gen = sh->gen;
	pthread_rwlock_unlock(&sh->lock);
	if (hit)
		return K_OK;

	json_t *j = NULL;
	GUARD(kms_alias_read(ns, name, &j, NULL));
	snprintf(target, 37, "%s", json_string_value(json_object_get(j, "TargetKeyId")));
	json_decref(j);
	pthread_rwlock_wrlock(&sh->lock);
	if (sh->gen == gen && *find_slot(sh, b, ns, name) == NULL)
		put_locked(sh, b, ns, name, target);
	pthread_rwlock_unlock(&sh->lock);
	return K_OK;
}
