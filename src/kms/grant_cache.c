/*
 * grant_cache.c — each key's grants in memory, hashed by grantee, for
 * authorization without storage reads (see grants.h).
 *
 * A set is loaded whole from the key's grant records the first time it is
 * needed and kept in a sharded table, each shard with its own rwlock and a
 * generation bumped by the change feed: a set read from the store is
 * installed only if the generation did not move since before the read
 * (as the key cache does, kms/keys.c). A grant written on this node by
 * kms_grants_put/kms_grants_delete updates the cached set in place (the
 * feed's event for it, emitted on the writing thread, is recognised as
 * the writer's own and does not drop the set); any other write to one of
 * the key's grants drops it. Readers take the set's read lock while they
 * look, writers its write lock while they change it.
 */
#include "kms/grants.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/hash.h"
#include "core/log.h"
#include "kms/store.h"
#include "core/banned.h"

#define SET_BUCKETS 1024 /* grantee chains per set */
#define CACHE_SHARDS 64
#define WRITE_LOCKS 64

/* One grant, compact; its strings follow it in the same allocation. */
struct cgrant {
	struct cgrant *next; /* in its grantee chain */
	uint32_t ops;
	char id[KMS_GRANT_ID_LEN + 1];
	const char *grantee;
	const char *retiring; /* NULL: none */
	const char *name;     /* "" when none */
	json_t *cons;	      /* NULL: none */
};

struct grant_set {
	struct grant_set *next; /* in its shard */
	atomic_int refs;
	pthread_rwlock_t lock;
	char ns[64];
	char key_id[37];
	size_t n;
	struct cgrant *b[SET_BUCKETS];
};

struct shard {
	pthread_rwlock_t lock;
	uint64_t gen;
	struct grant_set *sets;
};

static struct shard shards[CACHE_SHARDS];
static pthread_mutex_t write_locks[WRITE_LOCKS];
static atomic_size_t cached_grants;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* This thread's grant write in progress: its key. */
static _Thread_local struct {
	const char *ns; /* NULL: none */
	const char *key_id;
} own;

static void init_once(void)
{
	for (size_t i = 0; i < CACHE_SHARDS; i++)
		pthread_rwlock_init(&shards[i].lock, NULL);
	for (size_t i = 0; i < WRITE_LOCKS; i++)
		pthread_mutex_init(&write_locks[i], NULL);
}

static struct shard *shard_of(const char *ns, const char *key_id)
{
	pthread_once(&once, init_once);
	return &shards[khash_pair(ns, key_id) % CACHE_SHARDS];
}

void kms_grants_lock(const struct kms_key *k)
{
	pthread_once(&once, init_once);
	pthread_mutex_lock(&write_locks[khash_pair(k->ns, k->id) % WRITE_LOCKS]);
}

void kms_grants_unlock(const struct kms_key *k)
{
	pthread_mutex_unlock(&write_locks[khash_pair(k->ns, k->id) % WRITE_LOCKS]);
}

static struct cgrant *cgrant_from_doc(const json_t *doc)
{
	const char *id = json_string_value(json_object_get(doc, "GrantId"));
	const char *grantee = json_string_value(json_object_get(doc, "GranteePrincipal"));
	const char *retiring = json_string_value(json_object_get(doc, "RetiringPrincipal"));
	const char *name = json_string_value(json_object_get(doc, "Name"));
	if (id == NULL || grantee == NULL || strlen(id) > KMS_GRANT_ID_LEN)
		return NULL;
	name = name != NULL ? name : "";
	size_t lg = strlen(grantee) + 1, lr = retiring ? strlen(retiring) + 1 : 0,
	       ln = strlen(name) + 1;
	struct cgrant *g = calloc(1, sizeof *g + lg + lr + ln);
	if (g == NULL)
		return NULL;
	char *p = (char *)(g + 1);
	memcpy(p, grantee, lg);
	g->grantee = p;
	p += lg;
	if (retiring != NULL) {
		memcpy(p, retiring, lr);
		g->retiring = p;
		p += lr;
	}
	memcpy(p, name, ln);
	g->name = p;
	snprintf(g->id, sizeof g->id, "%s", id);
	g->ops = kms_grant_ops_mask(json_object_get(doc, "Operations"));
	const json_t *cons = json_object_get(doc, "Constraints");
	if (json_is_object(cons) && json_object_size(cons) > 0)
		g->cons = json_deep_copy(cons);
	return g;
}

static void cgrant_free(struct cgrant *g)
{
	json_decref(g->cons);
	free(g);
}

static struct grant_set *set_new(const char *ns, const char *key_id)
{
	struct grant_set *s = calloc(1, sizeof *s);
	if (s == NULL)
		return NULL;
	atomic_init(&s->refs, 1);
	pthread_rwlock_init(&s->lock, NULL);
	snprintf(s->ns, sizeof s->ns, "%s", ns);
	snprintf(s->key_id, sizeof s->key_id, "%s", key_id);
	return s;
}

static void set_unref(struct grant_set *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	for (size_t i = 0; i < SET_BUCKETS; i++) {
		struct cgrant *g = s->b[i];
		while (g != NULL) {
			struct cgrant *next = g->next;
			cgrant_free(g);
			g = next;
		}
	}
	atomic_fetch_sub(&cached_grants, s->n);
	pthread_rwlock_destroy(&s->lock);
	free(s);
}

static size_t bucket_of(const char *grantee)
{
	return (size_t)(khash(grantee) % SET_BUCKETS);
}

/* Adds g (taken) unless a grant of that id is there already (a set loaded after the write). */
static void set_add(struct grant_set *s, struct cgrant *g)
{
	size_t b = bucket_of(g->grantee);
	for (struct cgrant *e = s->b[b]; e != NULL; e = e->next) {
		if (strcmp(e->id, g->id) == 0) {
			cgrant_free(g);
			return;
		}
	}
	g->next = s->b[b];
	s->b[b] = g;
	s->n++;
	atomic_fetch_add(&cached_grants, 1);
}

static void set_remove(struct grant_set *s, const char *grantee, const char *id)
{
	struct cgrant **pp = &s->b[bucket_of(grantee)];
	while (*pp != NULL) {
		struct cgrant *g = *pp;
		if (strcmp(g->id, id) == 0) {
			*pp = g->next;
			cgrant_free(g);
			s->n--;
			atomic_fetch_sub(&cached_grants, 1);
			return;
		}
		pp = &g->next;
	}
}

static struct grant_set **find_locked(struct shard *sh, const char *ns, const char *key_id)
{
	struct grant_set **pp = &sh->sets;
	while (*pp != NULL && !(strcmp((*pp)->key_id, key_id) == 0 && strcmp((*pp)->ns, ns) == 0))
		pp = &(*pp)->next;
	return pp;
}

/* Drops the key's set from the cache (readers holding it finish with it). */
static void detach_locked(struct shard *sh, const char *ns, const char *key_id)
{
	struct grant_set **pp = find_locked(sh, ns, key_id);
	struct grant_set *s = *pp;
	if (s == NULL)
		return;
	*pp = s->next;
	set_unref(s);
}

/*
 * Drops every set whose ns starts with prefix. bump: the drop follows a
 * change (the feed), so sets read before it must not be installed; a drop
 * to keep within the budget changes nothing and leaves the generations.
 */
static void drop_prefix(const char *prefix, bool bump)
{
	size_t pl = strlen(prefix);
	for (size_t i = 0; i < CACHE_SHARDS; i++) {
		struct shard *sh = &shards[i];
		pthread_rwlock_wrlock(&sh->lock);
		sh->gen += bump ? 1 : 0;
		struct grant_set **pp = &sh->sets;
		while (*pp != NULL) {
			struct grant_set *s = *pp;
			if (strncmp(s->ns, prefix, pl) != 0) {
				pp = &s->next;
				continue;
			}
			*pp = s->next;
			set_unref(s);
		}
		pthread_rwlock_unlock(&sh->lock);
	}
}

void kms_grant_cache_clear(void)
{
	pthread_once(&once, init_once);
	drop_prefix("", true);
}

/* A change to the key's grants: drop its set, unless the change is this thread's own write. */
static void forget(const char *ns, const char *key_id)
{
	struct shard *sh = shard_of(ns, key_id);
	bool mine = own.ns != NULL && strcmp(own.ns, ns) == 0 && strcmp(own.key_id, key_id) == 0;
	pthread_rwlock_wrlock(&sh->lock);
	sh->gen++;
	if (!mine)
		detach_locked(sh, ns, key_id);
	pthread_rwlock_unlock(&sh->lock);
}

void kms_grant_cache_on_change(void *arg, const struct storage_event *ev)
{
	(void)arg;
	pthread_once(&once, init_once);
	if (ev->what == STORAGE_EV_PURGE) {
		drop_prefix(ev->ns, true);
	} else if (strcmp(ev->kind, KMS_GRANT_KIND) == 0) {
		char key_id[37];
		snprintf(key_id, sizeof key_id, "%.36s", ev->id);
		forget(ev->ns, key_id);
	} else if (strcmp(ev->kind, "key") == 0 && ev->what == STORAGE_EV_DEL) {
		forget(ev->ns, ev->id);
	}
}

static K_MUST_CHECK k_status load_cb(void *arg, const char *record_id, const json_t *doc)
{
	struct grant_set *s = arg;
	struct cgrant *g = cgrant_from_doc(doc);
	if (g == NULL) {
		LOG_ERROR("grant record %s of %s is damaged", record_id, s->ns);
		return K_E_INTERNAL;
	}
	set_add(s, g);
	return K_OK;
}

/* Installs s unless the shard moved since gen or another thread installed one first. */
static struct grant_set *install(struct shard *sh, struct grant_set *s, uint64_t gen)
{
	if (atomic_load(&cached_grants) > KMS_GRANT_CACHE_MAX)
		drop_prefix("", false); /* over the budget: start again with what is used now */
	pthread_rwlock_wrlock(&sh->lock);
	struct grant_set *there = *find_locked(sh, s->ns, s->key_id);
	if (there != NULL) {
		atomic_fetch_add(&there->refs, 1);
		pthread_rwlock_unlock(&sh->lock);
		set_unref(s);
		return there;
	}
	if (sh->gen == gen) {
		atomic_fetch_add(&s->refs, 1);
		s->next = sh->sets;
		sh->sets = s;
	}
	pthread_rwlock_unlock(&sh->lock);
	return s;
}

/* The key's set, referenced for the caller: from the cache, else read from the store. */
static K_MUST_CHECK k_status set_get(const struct kms_key *k, struct grant_set **out)
{
	struct shard *sh = shard_of(k->ns, k->id);
	pthread_rwlock_rdlock(&sh->lock);
	struct grant_set *s = *find_locked(sh, k->ns, k->id);
	if (s != NULL)
		atomic_fetch_add(&s->refs, 1);
	pthread_rwlock_unlock(&sh->lock);
	if (s != NULL) {
		*out = s;
		return K_OK;
	}
	GUARD(kms_grants_migrate(k));
	pthread_rwlock_rdlock(&sh->lock);
	uint64_t gen = sh->gen;
	pthread_rwlock_unlock(&sh->lock);
	s = set_new(k->ns, k->id);
	ENSURE(s != NULL, K_E_INTERNAL);
	k_status rc = kms_grants_each(k->ns, k->id, NULL, 0, load_cb, s);
	if (k_failed(rc)) {
		set_unref(s);
		return rc;
	}
	*out = install(sh, s, gen);
	return K_OK;
}

/*
 * A constraint's key is matched without case, its value with case: a pair
 * of the request matches when its key equals the constraint's key but for
 * case and its value is the same. Every such key of the request is tried,
 * so a context whose keys differ only by case (AWS advises against it)
 * matches when one of them carries the value, whatever their order.
 */
static bool ec_has_pair(const json_t *ec, const char *key, const char *value)
{
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)ec, k, v)
	{
		if (strcasecmp(k, key) == 0 && json_is_string(v) &&
		    strcmp(json_string_value(v), value) == 0)
			return true;
	}
	return false;
}

static bool ec_contains(const json_t *ec, const json_t *want)
{
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)want, k, v)
	{
		if (!json_is_object(ec) || !json_is_string(v) ||
		    !ec_has_pair(ec, k, json_string_value(v)))
			return false;
	}
	return true;
}

/*
 * "EncryptionContextEquals ... the encryption context in the request is
 * the same", "EncryptionContextSubset ... includes the key-value pairs
 * specified in this constraint" (https://docs.aws.amazon.com/kms/latest/APIReference/API_GrantConstraints.html).
 */
bool kms_grant_constraints_hold(const json_t *cons, const json_t *ec)
{
	if (cons == NULL)
		return true;
	const json_t *eq = json_object_get(cons, "EncryptionContextEquals");
	const json_t *sub = json_object_get(cons, "EncryptionContextSubset");
	if (json_is_object(eq)) {
		size_t n = json_is_object(ec) ? json_object_size(ec) : 0;
		if (n != json_object_size(eq) || !ec_contains(ec, eq))
			return false;
	}
	return !(json_is_object(sub) && !ec_contains(ec, sub));
}

static const struct cgrant *allowing(const struct grant_set *s, const char *principal, uint32_t bit,
				     const json_t *ec)
{
	for (const struct cgrant *g = s->b[bucket_of(principal)]; g != NULL; g = g->next) {
		if ((g->ops & bit) != 0 && strcmp(g->grantee, principal) == 0 &&
		    kms_grant_constraints_hold(g->cons, ec))
			return g;
	}
	return NULL;
}

bool kms_grants_allow(const struct kms_key *k, const char *arn, const char *role_arn,
		      const char *op, const json_t *ec, char gid[KMS_GRANT_ID_LEN + 1])
{
	uint32_t bit = kms_grant_op_bit(op);
	if (bit == 0 || kms_store() == NULL)
		return false;
	struct grant_set *s = NULL;
	if (k_failed(set_get(k, &s))) {
		LOG_ERROR("the grants of %s cannot be read: none applies", k->arn);
		return false;
	}
	pthread_rwlock_rdlock(&s->lock);
	const struct cgrant *g = allowing(s, arn, bit, ec);
	if (g == NULL && role_arn != NULL)
		g = allowing(s, role_arn, bit, ec);
	if (g != NULL)
		snprintf(gid, KMS_GRANT_ID_LEN + 1, "%s", g->id);
	pthread_rwlock_unlock(&s->lock);
	set_unref(s);
	return g != NULL;
}

static bool same_grant(const struct cgrant *g, const char *name, const char *grantee,
		       const char *retiring, uint32_t ops, const json_t *cons)
{
	bool same_retiring =
		(retiring == NULL && g->retiring == NULL) ||
		(retiring != NULL && g->retiring != NULL && strcmp(retiring, g->retiring) == 0);
	bool same_cons = (cons == NULL && g->cons == NULL) ||
			 (cons != NULL && g->cons != NULL && json_equal(cons, g->cons));
	return g->ops == ops && same_retiring && same_cons && strcmp(g->name, name) == 0 &&
	       strcmp(g->grantee, grantee) == 0;
}

k_status kms_grants_census(const struct kms_key *k, const char *name, const char *grantee,
			   const char *retiring, uint32_t ops, const json_t *cons, size_t *count,
			   bool *same, char same_id[KMS_GRANT_ID_LEN + 1])
{
	struct grant_set *s = NULL;
	GUARD(set_get(k, &s));
	if (json_is_object(cons) && json_object_size(cons) == 0)
		cons = NULL;
	*same = false;
	pthread_rwlock_rdlock(&s->lock);
	*count = s->n;
	for (const struct cgrant *g = s->b[bucket_of(grantee)]; name != NULL && g != NULL;
	     g = g->next) {
		if (same_grant(g, name, grantee, retiring, ops, cons)) {
			*same = true;
			snprintf(same_id, KMS_GRANT_ID_LEN + 1, "%s", g->id);
			break;
		}
	}
	pthread_rwlock_unlock(&s->lock);
	set_unref(s);
	return K_OK;
}

k_status kms_grants_find(const struct kms_key *k, const char *grant_id, struct kms_grant_info *out)
{
	struct grant_set *s = NULL;
	GUARD(set_get(k, &s));
	k_status rc = K_E_NOT_FOUND;
	pthread_rwlock_rdlock(&s->lock);
	for (size_t b = 0; b < SET_BUCKETS && k_failed(rc); b++) {
		for (const struct cgrant *g = s->b[b]; g != NULL; g = g->next) {
			if (strcmp(g->id, grant_id) != 0)
				continue;
			memset(out, 0, sizeof *out);
			snprintf(out->id, sizeof out->id, "%s", g->id);
			snprintf(out->grantee, sizeof out->grantee, "%s", g->grantee);
			snprintf(out->retiring, sizeof out->retiring, "%s",
				 g->retiring ? g->retiring : "");
			out->ops = g->ops;
			rc = K_OK;
			break;
		}
	}
	pthread_rwlock_unlock(&s->lock);
	set_unref(s);
	return rc;
}

/*
 * Applies a grant write and brings the cached set along: the added grant
 * (taken; may be NULL) goes in, the removed one (may be NULL) goes out,
 * if the set is still cached (an event for the key from elsewhere drops
 * it, and the next use reads the store).
 */
static K_MUST_CHECK k_status write_grant(const struct kms_key *k, const struct storage_op *ops,
					 size_t n, struct cgrant *added,
					 const struct kms_grant_info *removed)
{
	struct shard *sh = shard_of(k->ns, k->id);
	own.ns = k->ns;
	own.key_id = k->id;
	k_status rc = storage_apply(kms_store(), ops, n);
	own.ns = NULL;
	pthread_rwlock_wrlock(&sh->lock);
	struct grant_set *s = *find_locked(sh, k->ns, k->id);
	if (s != NULL && k_ok(rc)) {
		pthread_rwlock_wrlock(&s->lock);
		if (added != NULL)
			set_add(s, added);
		if (removed != NULL)
			set_remove(s, removed->grantee, removed->id);
		pthread_rwlock_unlock(&s->lock);
		added = NULL;
	} else if (s != NULL && k_is(rc, K_E_CONFLICT)) {
		detach_locked(sh, k->ns, k->id);
	}
	pthread_rwlock_unlock(&sh->lock);
	if (added != NULL)
		cgrant_free(added);
	return rc;
}

k_status kms_grants_put(const struct kms_key *k, const json_t *doc)
{
	const char *gid = json_string_value(json_object_get(doc, "GrantId"));
	const char *retiring = json_string_value(json_object_get(doc, "RetiringPrincipal"));
	struct cgrant *g = cgrant_from_doc(doc);
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (g == NULL || text == NULL || gid == NULL) {
		if (g != NULL)
			cgrant_free(g);
		kjson_free(text);
		return K_E_INTERNAL;
	}
	char rec[KMS_GRANT_RECORD_ID_BUF], idx[KMS_GRANT_RETIREE_ID_BUF];
	struct storage_op ops[2];
	size_t n = kms_grant_write_ops(k, gid, retiring, STORAGE_PUT, kslice_cstr(text), rec, idx,
				       ops);
	k_status rc = write_grant(k, ops, n, g, NULL);
	kjson_free(text);
	return rc;
}

k_status kms_grants_delete(const struct kms_key *k, const struct kms_grant_info *grant)
{
	char rec[KMS_GRANT_RECORD_ID_BUF], idx[KMS_GRANT_RETIREE_ID_BUF];
	struct storage_op ops[2];
	size_t n = kms_grant_write_ops(k, grant->id, grant->retiring, STORAGE_DEL,
				       (struct kslice){0}, rec, idx, ops);
	return write_grant(k, ops, n, NULL, grant);
}
