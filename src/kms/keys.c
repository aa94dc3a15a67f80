/*
 * keys.c — key snapshots, the key cache and KeyId resolution (see kms.h).
 */
#include "kms/kms.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arn.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "crypto/crypto.h"
#include "kms/authz.h"
#include "kms/key_cache.h"
#include "kms/multiregion.h"
#include "kms/grants.h"
#include "kms/keystores.h"
#include "kms/store.h"
#include "policy/policy.h"
#include "core/json.h"
#include "core/banned.h"

static struct storage *store;

/*
 * The cache: a hash table split into shards, each with its own rwlock, so
 * that lookups on different keys never contend and lookups on the same key
 * only share a read lock. No global lock on the crypto path.
 *
 * The store's change feed (storage.h) drops a key's entry whenever its
 * record is written, by this process or (with a shared backend) by another
 * node, and bumps the shard's generation. A snapshot built from a read is
 * installed only if the generation did not move since before the read, so
 * a copy read just before a write cannot outlive the write's invalidation.
 * A writer of this process may install the snapshot it wrote (keeping the
 * unwrapped material, which saves an unwrap): only if every bump since
 * before its write came from its own write (counted on its thread, where
 * SQLite emits), so a foreign write in between wins.
 */
#define CACHE_SHARDS KMS_CACHE_SHARDS
#define CACHE_BUCKETS 2048 /* per shard: 131,072 in all, about one key a bucket at 100,000 keys */

struct cache_entry {
	struct cache_entry *next;
	struct kms_key *key;
};

struct cache_shard {
	pthread_rwlock_t lock;
	uint64_t gen; /* +1 on every invalidation, under the write lock */
	struct cache_entry *b[CACHE_BUCKETS];
};

static struct cache_shard cache[CACHE_SHARDS];
static atomic_size_t cached_keys; /* entries in the table, for /metrics */

/* This thread's write in progress (kms_key_update_ops): the bumps it caused. */
static _Thread_local struct {
	struct cache_shard *shard; /* NULL: no write in progress */
	uint64_t bumps;
} own_write;

static struct cache_shard *shard_of(const char *ns, const char *id, size_t *bucket)
{
	uint64_t h = khash_pair(ns, id);
	*bucket = (size_t)((h / CACHE_SHARDS) % CACHE_BUCKETS);
	return &cache[h % CACHE_SHARDS];
}

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_init(void)
{
	for (size_t i = 0; i < CACHE_SHARDS; i++)
		pthread_rwlock_init(&cache[i].lock, NULL);
}

k_status kms_init(struct storage *st)
{
	ENSURE(st != NULL, K_E_VALIDATION);
	pthread_once(&cache_once, cache_init);
	store = st;
	GUARD(storage_subscribe(st, kms_cache_on_change, NULL));
	GUARD(storage_subscribe(st, kms_grant_cache_on_change, NULL));
	return storage_subscribe(st, kms_alias_cache_on_change, NULL);
}

struct storage *kms_store(void)
{
	return store;
}

void kms_key_unref(struct kms_key *k)
{
	if (k == NULL || atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	keystore_key_unref(k->handle);
	policy_free(k->policy);
	json_decref(k->doc);
	free(k);
}

static const char *const state_names[] = {
	[KS_ENABLED] = "Enabled",
	[KS_DISABLED] = "Disabled",
	[KS_PENDING_DELETION] = "PendingDeletion",
	[KS_PENDING_IMPORT] = "PendingImport",
	[KS_UNAVAILABLE] = "Unavailable",
	[KS_CREATING] = "Creating",
	[KS_PENDING_REPLICA_DELETION] = "PendingReplicaDeletion",
	[KS_UPDATING] = "Updating",
	[KS_UNKNOWN] = "Unavailable",
};

const char *kms_state_name(enum kms_key_state s)
{
	return (unsigned)s <= KS_UNKNOWN ? state_names[s] : "Unavailable";
}

enum kms_key_state kms_state_parse(const char *s)
{
	for (int i = 0; s != NULL && i < KS_UNKNOWN; i++) {
		if (strcmp(state_names[i], s) == 0)
			return (enum kms_key_state)i;
	}
	return KS_UNKNOWN;
}

/* A key id, as the 16 bytes ciphertext blobs name: a UUID or a multi-Region id. */
static bool parse_uuid(const char *s, uint8_t out[16])
{
	if (kms_mrk_id_bytes(s, out))
		return true;
	if (strlen(s) != 36)
		return false;
	size_t j = 0;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
			continue;
		}
		int v;
		char ch = s[i];
		if (ch >= '0' && ch <= '9')
			v = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			v = ch - 'a' + 10;
		else
			return false;
		if (j % 2 == 0)
			out[j / 2] = (uint8_t)(v << 4);
		else
			out[j / 2] = (uint8_t)(out[j / 2] | v);
		j++;
	}
	return j == 32;
}

const struct keystore_ops *kms_doc_store(json_t *doc)
{
	const char *name = json_string_value(json_object_get(doc, "KeyStore"));
	const struct keystore_ops *ops = keystore_find(name);
	if (ops == NULL)
		LOG_ERROR("key %s names the key store %s, which this server does not have",
			  json_string_value(json_object_get(doc, "KeyId")), name);
	return ops;
}

/*
 * Opens every material version listed in the document in the key's
 * store. Versions are numbered from 1 in order; anything else is damage.
 */
#define MATERIALS_MAX 4096

static K_MUST_CHECK k_status open_material(const char *arn, const uint8_t uuid[16], json_t *doc,
					   struct keystore_key **out)
{
	const struct keystore_ops *ops = kms_doc_store(doc);
	ENSURE(ops != NULL, K_E_INTERNAL);
	json_t *mats = json_object_get(doc, "Materials");
	size_t n = json_is_array(mats) ? json_array_size(mats) : 0;
	ENSURE(n <= MATERIALS_MAX, K_E_INTERNAL);
	struct kslice *refs = NULL;
	if (n > 0) {
		refs = calloc(n, sizeof *refs);
		ENSURE(refs != NULL, K_E_INTERNAL);
	}
	k_status rc = K_OK;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(mats, i);
		const char *w = json_string_value(json_object_get(e, "Wrapped"));
		json_int_t v = json_integer_value(json_object_get(e, "Version"));
		ENSURE_GOTO(w != NULL && v == (json_int_t)(i + 1), K_E_INTERNAL);
		refs[i] = kslice_cstr(w);
	}
	rc = keystore_open(ops, kms_doc_material_arn(doc), uuid, refs, (uint32_t)n, out);
out:
	free(refs);
	if (k_failed(rc))
		LOG_ERROR("cannot open the material of %s", arn);
	return k_ok(rc) ? K_OK : K_E_INTERNAL;
}

/* Takes the handle's reference, on failure too. */
static K_MUST_CHECK k_status snapshot(const char *ns, json_t *doc, int64_t version,
				      struct keystore_key *handle, struct kms_key **out)
{
	const char *id = json_string_value(json_object_get(doc, "KeyId"));
	const char *arn = json_string_value(json_object_get(doc, "Arn"));
	struct kms_key *k = id != NULL && arn != NULL ? calloc(1, sizeof *k) : NULL;
	if (k == NULL) {
		keystore_key_unref(handle);
		return K_E_INTERNAL;
	}
	atomic_init(&k->refs, 1);
	snprintf(k->id, sizeof k->id, "%s", id);
	snprintf(k->arn, sizeof k->arn, "%s", arn);
	snprintf(k->ns, sizeof k->ns, "%s", ns);
	if (!parse_uuid(k->id, k->uuid)) {
		keystore_key_unref(handle);
		free(k);
		return K_E_INTERNAL;
	}
	k->doc = json_incref(doc);
	k->version = version;
	k->state = kms_state_parse(json_string_value(json_object_get(doc, "KeyState")));
	k->spec = json_string_value(json_object_get(doc, "KeySpec"));
	k->usage = json_string_value(json_object_get(doc, "KeyUsage"));
	k->handle = handle;
	/* Authorization: the policy is parsed once per snapshot (kms/authz.h). */
	k->policy = authz_parse_key_policy(doc);
	*out = k;
	return K_OK;
}

k_status kms_key_from_doc(const char *ns, json_t *doc, int64_t version, struct kms_key **out)
{
	const char *arn = json_string_value(json_object_get(doc, "Arn"));
	const char *id = json_string_value(json_object_get(doc, "KeyId"));
	uint8_t uuid[16];
	ENSURE(arn != NULL && id != NULL && parse_uuid(id, uuid), K_E_INTERNAL);
	struct keystore_key *handle = NULL;
	GUARD(open_material(arn, uuid, doc, &handle));
	return snapshot(ns, doc, version, handle, out);
}

static uint64_t shard_gen(struct cache_shard *sh);

static struct kms_key *cache_find_locked(struct cache_shard *sh, size_t b, const char *ns,
					 const char *id)
{
	for (struct cache_entry *e = sh->b[b]; e != NULL; e = e->next) {
		if (strcmp(e->key->id, id) == 0 && strcmp(e->key->ns, ns) == 0)
			return e->key;
	}
	return NULL;
}

/*
 * Puts a snapshot into the cache, replacing an older one unless the cached
 * one is newer (another thread may have raced us), provided the shard's
 * generation is still `gen` (else the snapshot may predate an
 * invalidation: it is handed back uncached). Returns the snapshot that is
 * in the cache afterwards (or k), referenced for the caller.
 */
static struct kms_key *cache_put_ex(struct kms_key *k, uint64_t gen, bool *installed)
{
	size_t b;
	struct cache_shard *sh = shard_of(k->ns, k->id, &b);
	struct kms_key *result = k;
	*installed = false;
	pthread_rwlock_wrlock(&sh->lock);
	if (sh->gen != gen) {
		pthread_rwlock_unlock(&sh->lock);
		return k;
	}
	*installed = true;
	struct cache_entry *e = sh->b[b];
	while (e != NULL && !(strcmp(e->key->id, k->id) == 0 && strcmp(e->key->ns, k->ns) == 0))
		e = e->next;
	if (e == NULL) {
		e = calloc(1, sizeof *e);
		if (e != NULL) {
			e->key = k;
			atomic_fetch_add(&k->refs, 1);
			e->next = sh->b[b];
			sh->b[b] = e;
			atomic_fetch_add(&cached_keys, 1);
		}
	} else if (e->key->version <= k->version) {
		struct kms_key *old = e->key;
		e->key = k;
		atomic_fetch_add(&k->refs, 1);
		kms_key_unref(old);
	} else {
		result = e->key;
	}
	atomic_fetch_add(&result->refs, 1);
	pthread_rwlock_unlock(&sh->lock);
	kms_key_unref(k);
	return result;
}

static struct kms_key *cache_put(struct kms_key *k, uint64_t gen)
{
	bool installed;
	return cache_put_ex(k, gen, &installed);
}

void kms_cache_gens(uint64_t gens[KMS_CACHE_SHARDS])
{
	pthread_once(&cache_once, cache_init);
	for (size_t i = 0; i < CACHE_SHARDS; i++)
		gens[i] = shard_gen(&cache[i]);
}

bool kms_cache_install(struct kms_key *k, const uint64_t gens[KMS_CACHE_SHARDS])
{
	size_t b;
	struct cache_shard *sh = shard_of(k->ns, k->id, &b);
	bool installed;
	kms_key_unref(cache_put_ex(k, gens[sh - cache], &installed));
	return installed;
}

size_t kms_cache_size(void)
{
	return atomic_load(&cached_keys);
}

static uint64_t shard_gen(struct cache_shard *sh)
{
	pthread_rwlock_rdlock(&sh->lock);
	uint64_t gen = sh->gen;
	pthread_rwlock_unlock(&sh->lock);
	return gen;
}

void kms_cache_forget(const char *ns, const char *id)
{
	size_t b;
	struct cache_shard *sh = shard_of(ns, id, &b);
	pthread_rwlock_wrlock(&sh->lock);
	sh->gen++;
	if (own_write.shard == sh)
		own_write.bumps++;
	struct cache_entry **pp = &sh->b[b];
	while (*pp != NULL) {
		struct cache_entry *e = *pp;
		if (strcmp(e->key->id, id) == 0 && strcmp(e->key->ns, ns) == 0) {
			*pp = e->next;
			kms_key_unref(e->key);
			free(e);
			atomic_fetch_sub(&cached_keys, 1);
			break;
		}
		pp = &e->next;
	}
	pthread_rwlock_unlock(&sh->lock);
}

/* Drops every entry whose ns starts with prefix ("" drops all). */
static void cache_drop_prefix(const char *prefix)
{
	size_t pl = strlen(prefix);
	pthread_once(&cache_once, cache_init);
	for (size_t s = 0; s < CACHE_SHARDS; s++) {
		pthread_rwlock_wrlock(&cache[s].lock);
		cache[s].gen++;
		for (size_t b = 0; b < CACHE_BUCKETS; b++) {
			struct cache_entry **pp = &cache[s].b[b];
			while (*pp != NULL) {
				struct cache_entry *e = *pp;
				if (strncmp(e->key->ns, prefix, pl) != 0) {
					pp = &e->next;
					continue;
				}
				*pp = e->next;
				kms_key_unref(e->key);
				free(e);
				atomic_fetch_sub(&cached_keys, 1);
			}
		}
		pthread_rwlock_unlock(&cache[s].lock);
	}
}

void kms_cache_clear(void)
{
	cache_drop_prefix("");
}

void kms_cache_on_change(void *arg, const struct storage_event *ev)
{
	(void)arg;
	if (ev->what == STORAGE_EV_PURGE)
		cache_drop_prefix(ev->ns);
	else if (strcmp(ev->kind, "key") == 0)
		kms_cache_forget(ev->ns, ev->id);
}

void kms_shutdown(void)
{
	kms_cache_clear();
	kms_grant_cache_clear();
}

/* The cached key (a reference taken) or NULL; *gen gets the shard's generation read with it. */
static struct kms_key *cache_peek(const char *ns, const char *id, uint64_t *gen)
{
	size_t b;
	struct cache_shard *sh = shard_of(ns, id, &b);
	pthread_rwlock_rdlock(&sh->lock);
	struct kms_key *k = cache_find_locked(sh, b, ns, id);
	if (k != NULL)
		atomic_fetch_add(&k->refs, 1);
	*gen = sh->gen;
	pthread_rwlock_unlock(&sh->lock);
	return k;
}

bool kms_key_cached(const char *ns, const char *id, struct kms_key **out)
{
	uint64_t gen;
	*out = cache_peek(ns, id, &gen);
	return *out != NULL;
}

k_status kms_key_get(const char *ns, const char *id, struct kms_key **out)
{
	uint64_t gen;
	struct kms_key *k = cache_peek(ns, id, &gen);
	if (k != NULL) {
		*out = k;
		return K_OK;
	}

	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	int64_t version = 0;
	k_status rc = storage_get(store, "key", ns, id, &doc, &version);
	if (k_failed(rc)) {
		kbuf_release(&doc);
		return rc;
	}
	json_error_t err;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, &err);
	kbuf_release(&doc);
	ENSURE(j != NULL, K_E_INTERNAL);
	rc = kms_key_from_doc(ns, j, version, &k);
	json_decref(j);
	GUARD(rc);
	*out = cache_put(k, gen);
	return K_OK;
}

k_status kms_key_update(struct kms_key *k, json_t *newdoc, struct keystore_key *handle,
			struct kms_key **out)
{
	return kms_key_update_ops(k, newdoc, handle, NULL, 0, out);
}

/* The key's write goes first; the extra ops ride in the same transaction. */
#define UPDATE_MAX_EXTRA 64

k_status kms_key_update_ops(struct kms_key *k, json_t *newdoc, struct keystore_key *handle,
			    const struct storage_op *extra, size_t n_extra, struct kms_key **out)
{
	char *text = json_dumps(newdoc, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL || n_extra > UPDATE_MAX_EXTRA) {
		kjson_free(text);
		json_decref(newdoc);
		keystore_key_unref(handle);
		return K_E_INTERNAL;
	}
	struct storage_op ops[1 + UPDATE_MAX_EXTRA] = {{
		.op = STORAGE_PUT,
		.kind = "key",
		.ns = k->ns,
		.id = k->id,
		.doc = kslice_cstr(text),
		.expect = k->version,
	}};
	for (size_t i = 0; i < n_extra; i++)
		ops[1 + i] = extra[i];
	size_t b;
	own_write.shard = shard_of(k->ns, k->id, &b);
	own_write.bumps = 0;
	uint64_t gen = shard_gen(own_write.shard);
	k_status rc = storage_apply(store, ops, 1 + n_extra);
	gen += own_write.bumps;
	own_write.shard = NULL;
	kjson_free(text);
	if (k_failed(rc)) {
		if (k_is(rc, K_E_CONFLICT))
			kms_cache_forget(k->ns, k->id);
		json_decref(newdoc);
		keystore_key_unref(handle);
		return rc;
	}
	if (handle == NULL)
		handle = keystore_key_ref(k->handle);
	struct kms_key *nk = NULL;
	rc = snapshot(k->ns, newdoc, k->version + 1, handle, &nk);
	json_decref(newdoc);
	if (k_failed(rc)) {
		kms_cache_forget(k->ns, k->id);
		return rc;
	}
	struct kms_key *cached = cache_put(nk, gen);
	if (out != NULL)
		*out = cached;
	else
		kms_key_unref(cached);
	return K_OK;
}

void kms_key_arn(const struct api_ctx *c, const char *id, char *out, size_t n)
{
	struct k_arn a = k_arn_of("kms", c->region, c->principal.account, K_ARN_KEY, id);
	k_arn_format(&a, out, n);
}

/* An ARN of this KMS, in the caller's region (any account). */
static bool kms_arn_in_region(const struct api_ctx *c, const struct k_arn *a)
{
	return kslice_eq_cstr(a->partition, "aws") && kslice_eq_cstr(a->service, "kms") &&
	       kslice_eq_cstr(a->region, c->region);
}

/* An alias name ("alias/...") resolved in the caller's namespace. */
static K_MUST_CHECK k_status resolve_alias(struct api_ctx *c, const char *alias,
					   struct kms_key **out)
{
	char arn[K_ARN_BUF];
	struct k_arn a = k_arn_of("kms", c->region, c->principal.account, K_ARN_ALIAS, alias + 6);
	k_arn_format(&a, arn, sizeof arn);
	/* The alias cache (ops_aliases.c): no storage read once warm. */
	char target[37];
	k_status rc = kms_alias_lookup(c->ns, alias, target);
	if (k_is(rc, K_E_NOT_FOUND))
		return api_fail(c, K_E_NOT_FOUND, "Alias '%s' is not found.", arn);
	GUARD(rc);
	rc = kms_key_get(c->ns, target, out);
	if (k_is(rc, K_E_NOT_FOUND))
		return api_fail(c, K_E_NOT_FOUND, "Alias '%s' is not found.", arn);
	return rc;
}

/*
 * KeyId forms (https://docs.aws.amazon.com/kms/latest/APIReference/API_Encrypt.html#KMS-Encrypt-request-KeyId):
 * key id, key ARN, alias name ("alias/..."), alias ARN. An ARN names its
 * own region and account; one outside the caller's namespace does not
 * resolve here (cross-account use comes with key policies).
 */
k_status kms_resolve_key_noauth(struct api_ctx *c, const char *key_id, bool allow_alias,
				struct kms_key **out)
{
	/* rest: the resource ("alias/..." or the key id), NUL-terminated as key_id is. */
	const char *rest = key_id;
	bool is_arn = strncmp(key_id, "arn:", 4) == 0;
	struct k_arn a;
	if (is_arn) {
		if (!k_arn_parse_cstr(key_id, &a) || !kslice_eq_cstr(a.partition, "aws") ||
		    !kslice_eq_cstr(a.service, "kms"))
			return api_fail(c, K_E_NOT_FOUND, "Invalid arn %s", key_id);
		if (!kms_arn_in_region(c, &a) || !kslice_eq_cstr(a.account, c->principal.account))
			return api_fail(c, K_E_NOT_FOUND, "Key '%s' does not exist", key_id);
		rest = (const char *)a.resource.ptr;
	}
	if (strncmp(rest, "alias/", 6) == 0) {
		if (!allow_alias)
			return api_fail(c, K_E_NOT_FOUND, "Invalid keyId %s", key_id);
		return resolve_alias(c, rest, out);
	}
	if (is_arn && a.kind == K_ARN_KEY)
		rest = (const char *)a.id.ptr;
	else if (is_arn)
		return api_fail(c, K_E_NOT_FOUND, "Invalid arn %s", key_id);
	uint8_t uuid[16];
	if (!parse_uuid(rest, uuid))
		return api_fail(c, K_E_NOT_FOUND, "Invalid keyId '%s'", key_id);
	k_status rc = kms_key_get(c->ns, rest, out);
	if (k_is(rc, K_E_NOT_FOUND)) {
		char arn[K_ARN_BUF];
		kms_key_arn(c, rest, arn, sizeof arn);
		return api_fail(c, K_E_NOT_FOUND, "Key '%s' does not exist", arn);
	}
	return rc;
}

/*
 * AWS's key-state table (https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html):
 * a cryptographic operation on a Disabled key is DisabledException; on a
 * key pending deletion, pending import or unavailable it is
 * KMSInvalidStateException.
 */
k_status kms_require_enabled(struct api_ctx *c, const struct kms_key *k)
{
	/*
	 * The row's key (kms_op_key) passed the row's rule in the pipeline
	 * already; a second key (Decrypt's, ReEncrypt's destination) is
	 * checked here. The row's rule decides (ops_lifecycle.c); outside an
	 * operation, the cryptographic one.
	 */
	if (k == c->resource)
		return K_OK;
	return kms_check_key_state(c, k);
}

/*
 * KeyMetadata (https://docs.aws.amazon.com/kms/latest/APIReference/API_KeyMetadata.html):
 * the stored document carries the member values; only the members AWS
 * returns are copied out.
 */
json_t *kms_key_metadata(const struct kms_key *k)
{
	static const char *const members[] = {"AWSAccountId",
					      "KeyId",
					      "Arn",
					      "CreationDate",
					      "Enabled",
					      "Description",
					      "KeyUsage",
					      "KeyState",
					      "DeletionDate",
					      "ValidTo",
					      "Origin",
					      "CustomKeyStoreId",
					      "CloudHsmClusterId",
					      "ExpirationModel",
					      "KeyManager",
					      "CustomerMasterKeySpec",
					      "KeySpec",
					      "EncryptionAlgorithms",
					      "SigningAlgorithms",
					      "KeyAgreementAlgorithms",
					      "MultiRegion",
					      "MultiRegionConfiguration",
					      "PendingDeletionWindowInDays",
					      "MacAlgorithms",
					      "XksKeyConfiguration",
					      "CurrentKeyMaterialId",
					      NULL};
	json_t *m = json_object();
	if (m == NULL)
		return NULL;
	for (size_t i = 0; members[i] != NULL; i++) {
		json_t *v = json_object_get(k->doc, members[i]);
		if (v != NULL && !json_is_null(v))
			json_object_set(m, members[i], v);
	}
	enum kms_key_state state = kms_key_state_now(k); /* Unavailable: a store not connected */
	json_object_set_new(m, "KeyState", json_string(kms_state_name(state)));
	json_object_set_new(m, "Enabled", json_boolean(state == KS_ENABLED));
	return m;
}

/*
 * Authorization: a key ARN of another account in the caller's region
 * resolves in that account's namespace ("To perform cryptographic
 * operations on a KMS key in a different account, specify the key ARN or
 * alias ARN", https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html);
 * every resolved key is then authorized for the operation (kms/authz.h).
 */
/*
 * An alias ARN of another account: "To specify a KMS key in a different
 * AWS account, you must use its key ARN or alias ARN" (Encrypt, Decrypt,
 * ReEncrypt, GenerateDataKey*, GenerateMac, VerifyMac, Sign, Verify,
 * GetPublicKey, DescribeKey, DeriveSharedSecret). CreateGrant and
 * ListGrants take "the key ARN" from another account, so an alias ARN
 * there names no key. The alias resolves in its account's namespace;
 * the key is then authorized as any other (the key policy must allow the
 * caller, not the alias).
 */
static K_MUST_CHECK k_status resolve_foreign_alias(struct api_ctx *c, const char *key_id,
						   const struct k_arn *a, struct kms_key **out)
{
	const char *op = c->op != NULL ? c->op->name : "";
	if (strcmp(op, "CreateGrant") == 0 || strcmp(op, "ListGrants") == 0)
		return api_fail(c, K_E_NOT_FOUND, "Invalid keyId %s", key_id);
	char ns[64];
	snprintf(ns, sizeof ns, "%.*s:%s", (int)a->account.len, (const char *)a->account.ptr,
		 c->region);
	/* a->resource runs to the end of key_id: "alias/NAME". */
	const char *alias = (const char *)a->resource.ptr;
	char target[37];
	k_status rc = kms_alias_lookup(ns, alias, target);
	if (k_ok(rc))
		rc = kms_key_get(ns, target, out);
	if (k_is(rc, K_E_NOT_FOUND))
		return api_fail(c, K_E_NOT_FOUND, "Alias '%s' is not found.", key_id);
	return rc;
}

k_status kms_resolve_key(struct api_ctx *c, const char *key_id, bool allow_alias,
			 struct kms_key **out)
{
	k_status rc;
	struct k_arn a;
	bool foreign = k_arn_parse_cstr(key_id, &a) && kms_arn_in_region(c, &a) &&
		       a.account.len == K_ARN_ACCOUNT_LEN &&
		       !kslice_eq_cstr(a.account, c->principal.account);
	if (foreign && allow_alias && a.kind == K_ARN_ALIAS) {
		GUARD(resolve_foreign_alias(c, key_id, &a, out));
	} else if (foreign && a.kind == K_ARN_KEY) {
		/* a.id runs to the end of key_id. */
		const char *id = (const char *)a.id.ptr;
		char ns[64];
		snprintf(ns, sizeof ns, "%.*s:%s", (int)a.account.len, (const char *)a.account.ptr,
			 c->region);
		uint8_t uuid[16];
		if (!parse_uuid(id, uuid))
			return api_fail(c, K_E_NOT_FOUND, "Invalid keyId '%s'", key_id);
		rc = kms_key_get(ns, id, out);
		if (k_is(rc, K_E_NOT_FOUND))
			return api_fail(c, K_E_NOT_FOUND, "Key '%s' does not exist", key_id);
		GUARD(rc);
	} else {
		GUARD(kms_resolve_key_noauth(c, key_id, allow_alias, out));
	}
	rc = authz_key(c, *out);
	if (k_failed(rc)) {
		kms_key_unref(*out);
		*out = NULL;
	}
	return rc;
}

struct any_account {
	const char *region;
	char ns[64];
};

static K_MUST_CHECK k_status any_account_cb(void *arg, const char *ns, const char *id,
					    struct kslice doc, int64_t version)
{
	struct any_account *a = arg;
	size_t nl = ns ? strlen(ns) : 0, rl = strlen(a->region);
	if (nl == 12 + 1 + rl && ns[12] == ':' && strcmp(ns + 13, a->region) == 0) {
		snprintf(a->ns, sizeof a->ns, "%s", ns);
		return K_E_LIMIT_EXCEEDED; /* found: stop */
	}
	return K_OK;
}

/*
 * Authorization: the key a symmetric ciphertext names, in whichever
 * account of the caller's region holds it, so that a Decrypt without KeyId
 * works across accounts as in AWS (whose ciphertexts name the key). The
 * caller must authorize the result (kms/authz.h): nothing is granted by
 * finding it. Key ids are random UUIDs, unique across accounts.
 */
k_status kms_key_get_any_account(const char *region, const char *id, struct kms_key **out)
{
	struct any_account a = {.region = region};
	k_status rc = storage_list(store, "key", NULL, id, NULL, 16, any_account_cb, &a);
	if (k_failed(rc) && !k_is(rc, K_E_LIMIT_EXCEEDED))
		return rc;
	if (a.ns[0] == 0)
		return K_E_NOT_FOUND;
	return kms_key_get(a.ns, id, out);
}
