#include "core/secret_slab.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Runs f in a child; true if the child was killed by SIGABRT. */
static bool aborts(void (*f)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 2);
		f();
		_exit(0);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return false;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void free_twice(void)
{
	unsigned cls = 0;
	void *p = kslab_alloc(100, &cls);
	if (p == NULL)
		return;
	kslab_free(p, cls);
	kslab_free(p, cls);
}

/* Freed again after another chunk of the class was handed out and freed in between. */
static void free_twice_apart(void)
{
	unsigned cls = 0, cls2 = 0;
	void *p = kslab_alloc(100, &cls);
	void *q = kslab_alloc(100, &cls2);
	if (p == NULL || q == NULL)
		return;
	kslab_free(p, cls);
	kslab_free(q, cls2);
	kslab_free(p, cls);
}

static void free_inside_chunk(void)
{
	unsigned cls = 0;
	uint8_t *p = kslab_alloc(100, &cls);
	if (p == NULL)
		return;
	kslab_free(p + 8, cls);
}

static void free_foreign(void)
{
	static uint8_t not_a_chunk[KSLAB_MIN_CHUNK];
	kslab_free(not_a_chunk, 0);
}

static void free_under_other_class(void)
{
	unsigned cls = 0;
	void *p = kslab_alloc(KSLAB_MIN_CHUNK, &cls);
	if (p == NULL)
		return;
	kslab_free(p, cls + 1);
}

static void free_once_each(void)
{
	unsigned cls = 0, cls2 = 0;
	void *p = kslab_alloc(100, &cls);
	void *q = kslab_alloc(100, &cls2);
	kslab_free(p, cls);
	kslab_free(q, cls2);
	p = kslab_alloc(100, &cls);
	kslab_free(p, cls);
}

/*
 * A chunk freed twice, or a pointer that is no chunk of the class, stops
 * the process: pushed on the free stack it would go to two secrets.
 */
static void test_misuse_stops(void)
{
	CHECK(aborts(free_twice));
	CHECK(aborts(free_twice_apart));
	CHECK(aborts(free_inside_chunk));
	CHECK(aborts(free_foreign));
	CHECK(aborts(free_under_other_class));
	CHECK(!aborts(free_once_each));
	/* The children's misuse did not touch this process's slabs. */
	unsigned cls = 0;
	void *p = kslab_alloc(100, &cls);
	CHECK(p != NULL);
	kslab_free(p, cls);
}

int main(void)
{
	RUN(test_classes);
	RUN(test_alloc_distinct);
	RUN(test_wipe_and_reuse);
	RUN(test_ksecret_uses_slab);
	RUN(test_misuse_stops);
	return tl_summary();
}
