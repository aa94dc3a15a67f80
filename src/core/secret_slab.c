/*
 * secret_slab.c — slabs of locked memory for small secrets (secret_slab.h).
 *
 * Each class keeps a stack of free chunks (pointers kept outside the
 * chunks, so a free chunk is all zeros) under its own mutex. When the
 * stack is empty a new slab is mapped, locked and split into chunks.
 *
 * Each slab has one in-use bit per chunk, kept outside the slab in the
 * class's table of slabs (sorted by address). kslab_free of a chunk
 * that is not in use (a double free) or of a pointer that is no chunk of
 * the class stops the process with a message: pushing it would hand one
 * chunk to two secrets, or write past the free stack.
 */
#include "core/secret_slab.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/log.h"
#include "core/wipe.h"
#include "core/banned.h"

#define CHUNKS_MAX (KSLAB_BYTES / KSLAB_MIN_CHUNK)
#define WORD_BITS 64u

/* One mapped slab and which of its chunks are handed out. */
struct slab {
	uint8_t *base;
	uint64_t in_use[CHUNKS_MAX / WORD_BITS];
};

static struct slab_class {
	pthread_mutex_t mu;
	void **free;
	size_t n_free, cap;
	size_t total;	    /* chunks of every slab of the class: the stack's room */
	struct slab *slabs; /* sorted by base */
	size_t n_slabs, slabs_cap;
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

static _Noreturn void misuse(const char *what, const void *p, unsigned cls)
{
	fprintf(stderr, "kinko: kslab_free: %s (chunk %p, class %u); stopping\n", what, p, cls);
	abort();
}

/* Under c->mu: the slab holding p, or NULL when p is in none of the class's slabs. */
static struct slab *slab_of(struct slab_class *c, const uint8_t *p)
{
	size_t lo = 0, hi = c->n_slabs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if ((uintptr_t)c->slabs[mid].base <= (uintptr_t)p)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	struct slab *s = &c->slabs[lo - 1];
	return (uintptr_t)p - (uintptr_t)s->base < KSLAB_BYTES ? s : NULL;
}

/* Under c->mu: records slab m in the class's sorted table; false when out of memory. */
static bool add_slab(struct slab_class *c, uint8_t *m)
{
	if (c->n_slabs == c->slabs_cap) {
		size_t cap = c->slabs_cap ? c->slabs_cap * 2 : 4;
		struct slab *t = realloc(c->slabs, cap * sizeof *t);
		if (t == NULL)
			return false;
		c->slabs = t;
		c->slabs_cap = cap;
	}
	size_t i = c->n_slabs;
	while (i > 0 && (uintptr_t)c->slabs[i - 1].base > (uintptr_t)m)
		i--;
	memmove(&c->slabs[i + 1], &c->slabs[i], (c->n_slabs - i) * sizeof c->slabs[0]);
	memset(&c->slabs[i], 0, sizeof c->slabs[i]);
	c->slabs[i].base = m;
	c->n_slabs++;
	return true;
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
	if (!add_slab(c, m)) {
		(void)munmap(m, KSLAB_BYTES);
		return false;
	}
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
	if (c->n_free > 0 || grow(c, kslab_chunk_size(k))) {
		p = c->free[--c->n_free];
		struct slab *s = slab_of(c, p);
		size_t i = (size_t)((uint8_t *)p - s->base) / kslab_chunk_size(k);
		s->in_use[i / WORD_BITS] |= (uint64_t)1 << (i % WORD_BITS);
	}
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
	size_t chunk = kslab_chunk_size(cls);
	pthread_mutex_lock(&c->mu);
	struct slab *s = slab_of(c, p);
	size_t off = s != NULL ? (size_t)((uint8_t *)p - s->base) : 0;
	if (s == NULL || off % chunk != 0)
		misuse("not a chunk of its class", p, cls);
	size_t i = off / chunk;
	uint64_t bit = (uint64_t)1 << (i % WORD_BITS);
	if ((s->in_use[i / WORD_BITS] & bit) == 0)
		misuse("chunk already free (double free)", p, cls);
	s->in_use[i / WORD_BITS] &= ~bit;
	kwipe(p, chunk);
	/* The stack has room for every chunk of the class (grow); each is pushed once. */
	c->free[c->n_free++] = p;
	pthread_mutex_unlock(&c->mu);
	atomic_fetch_sub(&in_use, 1);
}
