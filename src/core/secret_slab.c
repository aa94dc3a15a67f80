/*
 * secret_slab.c — slabs of locked memory for small secrets (secret_slab.h).
 *
 * Each class keeps a stack of free chunks (pointers kept outside the
 * chunks, so a free chunk is all zeros) under its own mutex. When the
 * stack is empty a new slab is mapped, locked and split into chunks.
 */
#include "core/secret_slab.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "core/log.h"
#include "core/wipe.h"
#include "core/banned.h"

static struct slab_class {
	pthread_mutex_t mu;
	void **free;
	size_t n_free, cap;
	size_t total; /* chunks of every slab of the class: the stack's room */
} classes[KSLAB_CLASSES] = {
	[0 ... KSLAB_CLASSES - 1] = {.mu = PTHREAD_MUTEX_INITIALIZER},
};

static atomic_uint_fast64_t slabs, in_use, locked, failures;

size_t kslab_chunk_size(unsigned cls)
{
	return (size_t)KSLAB_MIN_CHUNK << cls;
}

void kslab_stats(struct kslab_stats *out)
{
	out->slabs = atomic_load(&slabs);
	out->chunks_in_use = atomic_load(&in_use);
	out->locked_bytes = atomic_load(&locked);
	out->mlock_failures = atomic_load(&failures);
}

/* Under c->mu: maps a slab and pushes its chunks; false when out of memory. */
static bool grow(struct slab_class *c, size_t chunk)
{
	size_t n = KSLAB_BYTES / chunk;
	if (c->total + n > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : n;
		while (cap < c->total + n)
			cap *= 2;
		void **f = realloc(c->free, cap * sizeof *f);
		if (f == NULL)
			return false;
		c->free = f;
		c->cap = cap;
	}
	uint8_t *m =
		mmap(NULL, KSLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return false;
	(void)madvise(m, KSLAB_BYTES, MADV_DONTDUMP);
	if (mlock(m, KSLAB_BYTES) == 0) {
		atomic_fetch_add(&locked, KSLAB_BYTES);
	} else if (atomic_fetch_add(&failures, 1) == 0) {
		LOG_WARN("memory: cannot lock %u more bytes for key material (%llu locked so far): "
			 "keys may be swapped to disk; raise RLIMIT_MEMLOCK (systemd "
			 "LimitMEMLOCK=, ulimit -l)",
			 KSLAB_BYTES, (unsigned long long)atomic_load(&locked));
	}
	atomic_fetch_add(&slabs, 1);
	c->total += n;
	/* Pushed from the end, so chunks are handed out in address order. */
	for (size_t i = n; i-- > 0;)
		c->free[c->n_free++] = m + i * chunk;
	return true;
}

void *kslab_alloc(size_t n, unsigned *cls)
{
	if (n == 0 || n > KSLAB_MAX_CHUNK)
		return NULL;
	unsigned k = 0;
	while (kslab_chunk_size(k) < n)
		k++;
	struct slab_class *c = &classes[k];
	void *p = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->n_free > 0 || grow(c, kslab_chunk_size(k)))
		p = c->free[--c->n_free];
	pthread_mutex_unlock(&c->mu);
	if (p == NULL)
		return NULL;
	atomic_fetch_add(&in_use, 1);
	*cls = k;
	return p;
}

void kslab_free(void *p, unsigned cls)
{
	if (p == NULL || cls >= KSLAB_CLASSES)
		return;
	struct slab_class *c = &classes[cls];
	kwipe(p, kslab_chunk_size(cls));
	pthread_mutex_lock(&c->mu);
	/* The stack has room for every chunk of the class (grow). */
	c->free[c->n_free++] = p;
	pthread_mutex_unlock(&c->mu);
	atomic_fetch_sub(&in_use, 1);
}
