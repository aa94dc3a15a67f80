#include "core/secret.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/secret_slab.h"
#include "core/thread.h"
#include "core/wipe.h"

struct ksecret {
	size_t len; /* bytes of key material */
	size_t map; /* size of the whole mapping; 0: a slab chunk of class cls */
	unsigned cls;
	uint8_t *data;
};

/* A 32-byte key with its header fits the chunk size the documentation states. */
_Static_assert(sizeof(struct ksecret) + 32 <= KSECRET_KEY_LOCKED_BYTES &&
		       KSECRET_KEY_LOCKED_BYTES == KSLAB_MIN_CHUNK,
	       "a cached key's locked bytes");

static atomic_ulong mlock_failures;
static atomic_ulong live;
static atomic_ulong own_locked; /* bytes of secrets mapped on their own and locked */

unsigned long ksecret_live(void)
{
	return atomic_load(&live);
}

unsigned long ksecret_mlock_failures(void)
{
	struct kslab_stats st;
	kslab_stats(&st);
	return atomic_load(&mlock_failures) + (unsigned long)st.mlock_failures;
}

unsigned long ksecret_locked_bytes(void)
{
	struct kslab_stats st;
	kslab_stats(&st);
	return atomic_load(&own_locked) + (unsigned long)st.locked_bytes;
}

/*
 * The header and the bytes share one chunk of locked memory: a slab chunk
 * for a small secret (secret_slab.h), a mapping of their own for a large
 * one, with the struct at its start and the key bytes after it.
 */
struct ksecret *ksecret_new(size_t len)
{
	if (len == 0 || len > (1u << 20))
		return NULL;
	unsigned cls = 0;
	struct ksecret *small = kslab_alloc(sizeof(struct ksecret) + len, &cls);
	if (small != NULL) {
		small->len = len;
		small->map = 0;
		small->cls = cls;
		small->data = (uint8_t *)small + sizeof(struct ksecret);
		atomic_fetch_add(&live, 1);
		return small;
	}
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	size_t need = sizeof(struct ksecret) + len;
	size_t map = (need + page - 1) / page * page;
	void *m = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	(void)madvise(m, map, MADV_DONTDUMP);
	if (mlock(m, map) != 0)
		atomic_fetch_add(&mlock_failures, 1);
	else
		atomic_fetch_add(&own_locked, map);
	struct ksecret *s = m;
	s->len = len;
	s->map = map;
	s->data = (uint8_t *)m + sizeof(struct ksecret);
	atomic_fetch_add(&live, 1);
	return s;
}

struct ksecret *ksecret_from(const uint8_t *p, size_t len)
{
	struct ksecret *s = ksecret_new(len);
	if (s != NULL)
		memcpy(s->data, p, len);
	return s;
}

void ksecret_free(struct ksecret *s)
{
	if (s == NULL)
		return;
	atomic_fetch_sub(&live, 1);
	if (s->map == 0) {
		kslab_free(s, s->cls);
		return;
	}
	size_t map = s->map;
	kwipe(s, map);
	if (munlock(s, map) == 0)
		atomic_fetch_sub(&own_locked, map);
	(void)munmap(s, map);
}

size_t ksecret_len(const struct ksecret *s)
{
	return s->len;
}

k_status ksecret_pread(struct ksecret *s, int fd, long long off)
{
	size_t got = 0;
	while (got < s->len) {
		ssize_t n = pread(fd, s->data + got, s->len - got, (off_t)(off + (long long)got));
		if (n <= 0) {
			kwipe(s->data, s->len);
			return K_E_INTERNAL;
		}
		got += (size_t)n;
	}
	return K_OK;
}

struct ksecret *ksecret_read_file(const char *path, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0 || (size_t)st.st_size > max) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct ksecret *all = ksecret_new((size_t)st.st_size);
	struct ksecret *out = NULL;
	if (all != NULL && k_ok(ksecret_pread(all, fd, 0))) {
		size_t n = all->len;
		while (n > 0 && (all->data[n - 1] == '\n' || all->data[n - 1] == '\r'))
			n--;
		out = n > 0 ? ksecret_from(all->data, n) : NULL;
	}
	ksecret_free(all);
	close(fd);
	return out;
}

k_status ksecret_append_base64(const struct ksecret *s, struct kbuf *out)
{
	return kbuf_append_base64(out, s->data, s->len);
}

k_status ksecret_append_to(struct kbuf *out, const struct ksecret *s)
{
	return kbuf_append(out, s->data, s->len);
}

uint8_t *ksecret_bytes(struct ksecret *s)
{
	return s->data;
}

const uint8_t *ksecret_cbytes(const struct ksecret *s)
{
	return s->data;
}

static void scratch_destroy(void *p)
{
	struct ksecret *s = p;
	if (s != NULL)
		s->len = KSECRET_SCRATCH_MAX;
	ksecret_free(s);
}

static void *scratch_make(void)
{
	return ksecret_new(KSECRET_SCRATCH_MAX);
}

static struct kthread_slot scratch_slot = KTHREAD_SLOT_INIT(scratch_make, scratch_destroy);

struct ksecret *ksecret_scratch(size_t len)
{
	if (len == 0 || len > KSECRET_SCRATCH_MAX)
		return NULL;
	struct ksecret *s = kthread_get(&scratch_slot);
	if (s == NULL)
		return NULL;
	s->len = len;
	return s;
}

void ksecret_scratch_done(struct ksecret *s)
{
	if (s == NULL)
		return;
	kwipe(s->data, KSECRET_SCRATCH_MAX);
	s->len = KSECRET_SCRATCH_MAX;
}

void ksecret_report_memlock(unsigned long want_keys)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0)
		return;
	unsigned long locked = ksecret_locked_bytes(), failed = ksecret_mlock_failures();
	if (rl.rlim_cur == RLIM_INFINITY) {
		LOG_INFO("memory: RLIMIT_MEMLOCK unlimited; %lu bytes of key material locked",
			 locked);
		return;
	}
	unsigned long room = rl.rlim_cur > locked ? (unsigned long)(rl.rlim_cur - locked) : 0;
	unsigned long keys = room / KSECRET_KEY_LOCKED_BYTES;
	if (failed > 0 || keys < want_keys)
		LOG_WARN("memory: RLIMIT_MEMLOCK is %llu bytes, %lu locked, room for about %lu "
			 "more cached keys (%u bytes each, %lu wanted), %lu lock failures: key "
			 "material past it may be swapped to disk; raise it (systemd "
			 "LimitMEMLOCK=, ulimit -l; root with CAP_IPC_LOCK is not limited)",
			 (unsigned long long)rl.rlim_cur, locked, keys, KSECRET_KEY_LOCKED_BYTES,
			 want_keys, failed);
	else
		LOG_INFO("memory: RLIMIT_MEMLOCK is %llu bytes, %lu locked, room for about %lu "
			 "more cached keys (%u bytes each)",
			 (unsigned long long)rl.rlim_cur, locked, keys, KSECRET_KEY_LOCKED_BYTES);
}
