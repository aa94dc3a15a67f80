/*
 * alias_index.h — the alias index of each key (KMS_ALIAS_INDEX_KIND, id
 * the key id: the names of its aliases), read in constant time whatever
 * the number of aliases (alias_index.c).
 */
#ifndef KINKO_KMS_ALIAS_INDEX_H
#define KINKO_KMS_ALIAS_INDEX_H

#include <jansson.h>
#include <stdint.h>
#include "core/result.h"

/*
 * The record saying that every key of a namespace has its alias index
 * (kind, ns as the keys', id KMS_ALIAS_INDEX_DONE_ID): a key without an
 * index record then has no alias. Written once per namespace, together
 * with the index records of the keys that had aliases before indexes
 * existed.
 */
#define KMS_ALIAS_INDEX_DONE_KIND "aliasindex-done"
#define KMS_ALIAS_INDEX_DONE_ID "all"

/*
 * Loads the alias index of a key: *names (a new array of alias names) and
 * *version, the precondition for writing it back (STORAGE_ABSENT when no
 * index record is stored). Reads at most two records, except the first
 * time in a namespace whose indexes are not known complete, which builds
 * the missing ones from the alias records in one pass.
 */
K_MUST_CHECK k_status kms_alias_index_load(const char *ns, const char *key_id, json_t **names,
					   int64_t *version);

#endif
