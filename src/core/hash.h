/*
 * hash.h — one non-cryptographic string hash (64-bit FNV-1a) for kinko's
 * in-memory tables: cache shards, lock stripes, quota buckets. Never use
 * it where an attacker's choice of input must not collide: it is not
 * keyed. The functions are inline: they sit on the hot path of every
 * request's key lookup.
 */
#ifndef KINKO_CORE_HASH_H
#define KINKO_CORE_HASH_H

#include <stdint.h>

#define KHASH_INIT 1469598103934665603ull

/* Folds the NUL-terminated s into h. */
static inline uint64_t khash_add(uint64_t h, const char *s)
{
	for (; *s != 0; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

/* The hash of one string. */
static inline uint64_t khash(const char *s)
{
	return khash_add(KHASH_INIT, s);
}

/* The hash of a (namespace, name) pair: "a" + "bc" and "ab" + "c" differ. */
static inline uint64_t khash_pair(const char *ns, const char *name)
{
	uint64_t h = khash_add(KHASH_INIT, ns);
	h = (h ^ '/') * 1099511628211ull;
	return khash_add(h, name);
}

#endif
