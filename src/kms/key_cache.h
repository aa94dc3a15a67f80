/*
 * key_cache.h — the key cache's hooks for loading it in bulk, for the
 * files of kms/ only (keys.c holds the cache; key_warm.c fills it at
 * start).
 *
 * The cache is 64 shards, each with a generation that every invalidation
 * from the change feed bumps (keys.c). A snapshot read from the store may
 * be installed only if its shard's generation did not move since before
 * the read: a loader takes every shard's generation first
 * (kms_cache_gens), reads its batch, then installs each key against the
 * generation taken for its shard (kms_cache_install). A key written or
 * dropped meanwhile is refused, and its next use reads the store.
 */
#ifndef KINKO_KMS_KEY_CACHE_H
#define KINKO_KMS_KEY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/kms.h"

#define KMS_CACHE_SHARDS 64

/* Every shard's generation now, read before a batch is read from the store. */
void kms_cache_gens(uint64_t gens[KMS_CACHE_SHARDS]);

/*
 * Installs k (its reference is taken, on refusal too) if its shard's
 * generation still equals the one in gens; a newer snapshot already cached
 * stays. true: the key is cached; false: refused (an invalidation came
 * between the generations and now).
 */
bool kms_cache_install(struct kms_key *k, const uint64_t gens[KMS_CACHE_SHARDS]);

/* How many keys the cache holds. */
size_t kms_cache_size(void);

#endif
