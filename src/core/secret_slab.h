/*
 * secret_slab.h — locked memory for small secrets, carved from slabs
 * (core/secret.c uses it; it is not for other callers).
 *
 * A slab is KSLAB_BYTES of anonymous memory, mlock()ed with one call and
 * marked MADV_DONTDUMP, cut into chunks of one size class. A secret
 * takes the smallest chunk that holds it, so a 32-byte key with its
 * header costs KSLAB_MIN_CHUNK bytes of locked memory instead of a page.
 * A released chunk is wiped whole at once and kept for reuse; slabs are
 * never returned to the system (a server's working set of keys comes
 * back after each eviction).
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef KINKO_CORE_SECRET_SLAB_H
#define KINKO_CORE_SECRET_SLAB_H

#include <stddef.h>
#include <stdint.h>

/* One slab: 16 pages of 4 KiB, locked by one mlock. */
#define KSLAB_BYTES (64u * 1024u)
/* The size classes: 64, 128, 256, 512, 1024 and 2048 bytes. */
#define KSLAB_MIN_CHUNK 64u
#define KSLAB_CLASSES 6u
#define KSLAB_MAX_CHUNK (KSLAB_MIN_CHUNK << (KSLAB_CLASSES - 1))

/*
 * A zeroed chunk of at least n bytes, and its class in *cls (for
 * kslab_free). NULL when n is over KSLAB_MAX_CHUNK (the caller maps a
 * secret that large on its own) or memory is exhausted.
 */
void *kslab_alloc(size_t n, unsigned *cls);
/*
 * Wipes the whole chunk and keeps it for the next kslab_alloc of its class.
 * A chunk that is not in use (freed twice) or a pointer that is no chunk
 * of class cls stops the process (abort, with a message on stderr).
 */
void kslab_free(void *p, unsigned cls);
/* The size of a chunk of class cls. */
size_t kslab_chunk_size(unsigned cls);

struct kslab_stats {
	uint64_t slabs;		 /* slabs mapped */
	uint64_t chunks_in_use;	 /* chunks handed out and not released */
	uint64_t locked_bytes;	 /* bytes of slabs whose mlock succeeded */
	uint64_t mlock_failures; /* slabs whose mlock failed (their memory may be swapped) */
};
void kslab_stats(struct kslab_stats *out);

#endif
