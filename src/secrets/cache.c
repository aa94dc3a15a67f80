/*
 * cache.c — the secrets' read cache: the stored text of secret documents
 * and of their value records, with each record's version, so that a call
 * that only reads (GetSecretValue, DescribeSecret, the pipeline's lookup
 * of a secret) reads no store. A value record holds only ciphertext (its
 * data key wrapped under a KMS key): it is opened on each call, with that
 * call's kms:Decrypt authorization, so the cache holds nothing secret.
 *
 * Kept exact as the key cache is (kms/keys.c): the store's change feed
 * drops an entry whenever its record is written, by this process or (with
 * a shared backend) by another node, and bumps the shard's generation; a
 * text read from the store is installed only if the generation did not
 * move since before the read. Write sections (internal.h, sm_lock) do not
 * read through the cache: they read the store, whose version is the
 * precondition of their write.
 *
 * Only a store no other process writes is cached (storage.h, `shared`):
 * there every write reaches the feed before the call that made it
 * returns, so a read after a write sees it. On a shared store (PostgreSQL,
 * a SQLite file several nodes share) another node's write reaches the
 * feed late or never, and a client that writes through one node and reads
 * through the next must still read its write (a rotation's steps do):
 * there every read goes to the store.
 *
 * Bounded: at most SMC_MAX_BYTES of text in all; a record that would go
 * over is read from the store each time instead of being cached.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "secrets/internal.h"
#include "core/banned.h"

#define SMC_SHARDS 64
#define SMC_BUCKETS 256 /* per shard: 16,384 in all */
#define SMC_MAX_BYTES (64u << 20)

struct smc_entry {
	struct smc_entry *next;
	char kind; /* 's' a secret document, 'v' a value record */
	int64_t version;
	size_t len, bytes; /* the text's length; what the entry counts against the bound */
	char *ns, *id;
	uint8_t text[];
};

struct smc_shard {
	pthread_rwlock_t lock;
	uint64_t gen; /* +1 on every invalidation, under the write lock */
	struct smc_entry *b[SMC_BUCKETS];
};

static struct smc_shard shards[SMC_SHARDS];
static atomic_size_t cached_bytes;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void shards_init(void)
{
	for (size_t i = 0; i < SMC_SHARDS; i++)
		pthread_rwlock_init(&shards[i].lock, NULL);
}

static char kind_letter(const char *kind)
{
	if (strcmp(kind, "secret") == 0)
		return 's';
	return strcmp(kind, "secretvalue") == 0 ? 'v' : 0;
}

static struct smc_shard *shard_of(char kind, const char *ns, const char *id, size_t *bucket)
{
	pthread_once(&once, shards_init);
	uint64_t h = khash_pair(ns, id) ^ (uint64_t)(unsigned char)kind;
	*bucket = (size_t)((h >> 8) % SMC_BUCKETS);
	return &shards[h % SMC_SHARDS];
}

static struct smc_entry **find_locked(struct smc_shard *sh, size_t b, char kind, const char *ns,
				      const char *id)
{
	struct smc_entry **p = &sh->b[b];
	while (*p != NULL &&
	       ((*p)->kind != kind || strcmp((*p)->ns, ns) != 0 || strcmp((*p)->id, id) != 0))
		p = &(*p)->next;
	return p;
}

static void entry_free(struct smc_entry *e)
{
	atomic_fetch_sub(&cached_bytes, e->bytes);
	free(e);
}

static void install(char kind, const char *ns, const char *id, const struct kbuf *text,
		    int64_t version, uint64_t gen)
{
	size_t nl = strlen(ns) + 1, il = strlen(id) + 1;
	size_t bytes = sizeof(struct smc_entry) + text->len + nl + il;
	if (atomic_fetch_add(&cached_bytes, bytes) + bytes > SMC_MAX_BYTES) {
		atomic_fetch_sub(&cached_bytes, bytes);
		return;
	}
	struct smc_entry *e = malloc(bytes);
	if (e == NULL) {
		atomic_fetch_sub(&cached_bytes, bytes);
		return;
	}
	*e = (struct smc_entry){.kind = kind, .version = version, .len = text->len, .bytes = bytes};
	memcpy(e->text, text->ptr, text->len);
	e->ns = (char *)e->text + text->len;
	memcpy(e->ns, ns, nl);
	e->id = e->ns + nl;
	memcpy(e->id, id, il);
	size_t b;
	struct smc_shard *sh = shard_of(kind, ns, id, &b);
	pthread_rwlock_wrlock(&sh->lock);
	if (sh->gen != gen) { /* written since the read: the text may be older than the write */
		pthread_rwlock_unlock(&sh->lock);
		entry_free(e);
		return;
	}
	struct smc_entry **p = find_locked(sh, b, kind, ns, id);
	struct smc_entry *old = *p;
	if (old != NULL) {
		e->next = old->next;
		entry_free(old);
	}
	*p = e;
	pthread_rwlock_unlock(&sh->lock);
}

k_status sm_cache_get(const char *kind, const char *ns, const char *id, struct kbuf *out,
		      int64_t *version)
{
	char k = kind_letter(kind);
	ENSURE(k != 0, K_E_VALIDATION);
	if (sm_store()->shared)
		return storage_get(sm_store(), kind, ns, id, out, version);
	size_t b;
	struct smc_shard *sh = shard_of(k, ns, id, &b);
	pthread_rwlock_rdlock(&sh->lock);
	const struct smc_entry *e = *find_locked(sh, b, k, ns, id);
	uint64_t gen = sh->gen;
	k_status rc = K_OK;
	if (e != NULL) {
		kbuf_reset(out);
		rc = kbuf_append(out, e->text, e->len);
		if (version != NULL)
			*version = e->version;
	}
	pthread_rwlock_unlock(&sh->lock);
	if (e != NULL)
		return rc;
	int64_t v = 0;
	GUARD(storage_get(sm_store(), kind, ns, id, out, &v));
	if (version != NULL)
		*version = v;
	install(k, ns, id, out, v, gen);
	return K_OK;
}

static void drop_one(char kind, const char *ns, const char *id)
{
	size_t b;
	struct smc_shard *sh = shard_of(kind, ns, id, &b);
	pthread_rwlock_wrlock(&sh->lock);
	struct smc_entry **p = find_locked(sh, b, kind, ns, id);
	struct smc_entry *e = *p;
	if (e != NULL) {
		*p = e->next;
		entry_free(e);
	}
	sh->gen++;
	pthread_rwlock_unlock(&sh->lock);
}

static void drop_prefix(const char *prefix)
{
	pthread_once(&once, shards_init);
	size_t pl = strlen(prefix);
	for (size_t s = 0; s < SMC_SHARDS; s++) {
		struct smc_shard *sh = &shards[s];
		pthread_rwlock_wrlock(&sh->lock);
		for (size_t b = 0; b < SMC_BUCKETS; b++) {
			struct smc_entry **p = &sh->b[b];
			while (*p != NULL) {
				struct smc_entry *e = *p;
				if (strncmp(e->ns, prefix, pl) == 0) {
					*p = e->next;
					entry_free(e);
				} else {
					p = &e->next;
				}
			}
		}
		sh->gen++;
		pthread_rwlock_unlock(&sh->lock);
	}
}

void sm_cache_on_change(void *arg, const struct storage_event *ev)
{
	(void)arg;
	if (ev->what == STORAGE_EV_PURGE) {
		drop_prefix(ev->ns);
		return;
	}
	if (ev->what != STORAGE_EV_PUT && ev->what != STORAGE_EV_DEL)
		return;
	char k = kind_letter(ev->kind);
	if (k != 0)
		drop_one(k, ev->ns, ev->id);
}

void sm_cache_clear(void)
{
	drop_prefix("");
}

size_t sm_cache_bytes(void)
{
	return atomic_load(&cached_bytes);
}
