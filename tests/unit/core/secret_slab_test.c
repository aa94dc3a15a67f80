#include "core/secret_slab.h"

#include <string.h>

#include "core/secret.h"
#include "testlib.h"

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != 0)
			return false;
	}
	return true;
}

/* Each size goes to the smallest class that holds it; too large has no chunk. */
static void test_classes(void)
{
	unsigned cls = 99;
	void *p = kslab_alloc(1, &cls);
	CHECK(p != NULL && cls == 0);
	kslab_free(p, cls);
	p = kslab_alloc(KSLAB_MIN_CHUNK + 1, &cls);
	CHECK(p != NULL && cls == 1);
	CHECK_EQ_INT(kslab_chunk_size(cls), 2 * KSLAB_MIN_CHUNK);
	kslab_free(p, cls);
	p = kslab_alloc(KSLAB_MAX_CHUNK, &cls);
	CHECK(p != NULL && cls == KSLAB_CLASSES - 1);
	kslab_free(p, cls);
	CHECK(kslab_alloc(KSLAB_MAX_CHUNK + 1, &cls) == NULL);
	CHECK(kslab_alloc(0, &cls) == NULL);
}

/* Chunks come zeroed, do not overlap, and a whole slab's worth maps one more slab only. */
static void test_alloc_distinct(void)
{
	enum {
		N = KSLAB_BYTES / 128
	};
	static uint8_t *ps[N];
	struct kslab_stats before, after;
	kslab_stats(&before);
	unsigned cls = 0;
	for (size_t i = 0; i < N; i++) {
		ps[i] = kslab_alloc(128, &cls);
		CHECK(ps[i] != NULL && cls == 1);
		CHECK(all_zero(ps[i], 128));
		memset(ps[i], (int)(i & 0x7f) + 1, 128);
	}
	for (size_t i = 0; i < N; i++)
		CHECK(ps[i][0] == (uint8_t)((i & 0x7f) + 1) && ps[i][127] == ps[i][0]);
	kslab_stats(&after);
	CHECK(after.slabs - before.slabs <= 1);
	CHECK_EQ_INT(after.chunks_in_use - before.chunks_in_use, N);
	for (size_t i = 0; i < N; i++)
		kslab_free(ps[i], cls);
	kslab_stats(&after);
	CHECK_EQ_INT(after.chunks_in_use, before.chunks_in_use);
}

/* A released chunk is wiped whole, and is the next one handed out of its class. */
static void test_wipe_and_reuse(void)
{
	unsigned cls = 0;
	uint8_t *p = kslab_alloc(200, &cls);
	CHECK(p != NULL);
	memset(p, 0xA5, kslab_chunk_size(cls));
	kslab_free(p, cls);
	/* Slabs stay mapped, so the released chunk can be read back here. */
	CHECK(all_zero(p, kslab_chunk_size(cls)));
	struct kslab_stats before, after;
	kslab_stats(&before);
	unsigned cls2 = 0;
	uint8_t *q = kslab_alloc(200, &cls2);
	kslab_stats(&after);
	CHECK(q == p && cls2 == cls);
	CHECK_EQ_INT(after.slabs, before.slabs);
	kslab_free(q, cls2);
}

/* A key's secret takes one 64-byte chunk; a large secret still maps its own pages. */
static void test_ksecret_uses_slab(void)
{
	unsigned long live = ksecret_live();
	struct kslab_stats before, after;
	kslab_stats(&before);
	struct ksecret *k = ksecret_new(32);
	CHECK(k != NULL);
	kslab_stats(&after);
	CHECK_EQ_INT(after.chunks_in_use - before.chunks_in_use, 1);
	CHECK(all_zero(ksecret_cbytes(k), 32));
	memset(ksecret_bytes(k), 0x5A, 32);
	uint8_t *bytes = ksecret_bytes(k);
	ksecret_free(k);
	CHECK(all_zero(bytes, 32));
	struct ksecret *big = ksecret_new(KSLAB_MAX_CHUNK);
	kslab_stats(&before);
	CHECK(big != NULL);
	CHECK_EQ_INT(before.chunks_in_use, after.chunks_in_use - 1);
	ksecret_free(big);
	CHECK_EQ_INT(ksecret_live(), live);
	CHECK(ksecret_locked_bytes() >= KSLAB_BYTES || ksecret_mlock_failures() > 0);
}

int main(void)
{
	RUN(test_classes);
	RUN(test_alloc_distinct);
	RUN(test_wipe_and_reuse);
	RUN(test_ksecret_uses_slab);
	return tl_summary();
}
