#include "core/secret.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/thread.h"
#include "core/wipe.h"

struct ksecret {
	size_t len; /* bytes of key material */
	size_t map; /* size of the whole mapping */
	uint8_t *data;
};

static atomic_ulong mlock_failures;
static atomic_ulong live;

unsigned long ksecret_live(void)
{
	return atomic_load(&live);
}

unsigned long ksecret_mlock_failures(void)
{
	return atomic_load(&mlock_failures);
}

/*
 * The header and the bytes share one mapping: the struct sits at the start
 * of the first page and the key bytes follow it, so one mlock covers both.
 */
struct ksecret *ksecret_new(size_t len)
{
	if (len == 0 || len > (1u << 20))
		return NULL;
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
	size_t map = s->map;
	kwipe(s, map);
	(void)munlock(s, map);
	(void)munmap(s, map);
	atomic_fetch_sub(&live, 1);
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
