/*
 * thread_test.c — per-thread objects (core/thread.h): one per thread,
 * made once, dropped at thread exit or when forgotten.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/thread.h"
#include "testlib.h"
#include "core/banned.h"

static atomic_int made, dropped;

static void *make_int(void)
{
	atomic_fetch_add(&made, 1);
	return calloc(1, sizeof(int));
}

static void drop_int(void *p)
{
	atomic_fetch_add(&dropped, 1);
	free(p);
}

static struct kthread_slot slot = KTHREAD_SLOT_INIT(make_int, drop_int);

static void *worker(void *arg)
{
	int *a = kthread_get(&slot), *b = kthread_get(&slot);
	*(int **)arg = (a != NULL && a == b) ? a : NULL;
	return NULL;
}

static void test_one_per_thread(void)
{
	int *mine = kthread_get(&slot);
	CHECK(mine != NULL);
	CHECK(kthread_get(&slot) == mine);
	CHECK_EQ_INT(atomic_load(&made), 1);

	enum {
		N = 4
	};
	pthread_t t[N];
	int *theirs[N];
	for (int i = 0; i < N; i++)
		CHECK(pthread_create(&t[i], NULL, worker, &theirs[i]) == 0);
	for (int i = 0; i < N; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	for (int i = 0; i < N; i++)
		CHECK(theirs[i] != NULL && theirs[i] != mine);
	/* Each worker made its own object, which its exit dropped. */
	CHECK_EQ_INT(atomic_load(&made), 1 + N);
	CHECK_EQ_INT(atomic_load(&dropped), N);

	/* Forgetting drops this thread's object now; the next get makes a new one. */
	kthread_forget(&slot);
	CHECK_EQ_INT(atomic_load(&dropped), N + 1);
	kthread_forget(&slot); /* nothing left: no second drop */
	CHECK_EQ_INT(atomic_load(&dropped), N + 1);
	CHECK(kthread_get(&slot) != NULL);
	CHECK_EQ_INT(atomic_load(&made), N + 2);
	kthread_forget(&slot);
}

static void *fail_make(void)
{
	return NULL;
}

static struct kthread_slot failing = KTHREAD_SLOT_INIT(fail_make, drop_int);

static void test_make_failure(void)
{
	CHECK(kthread_get(&failing) == NULL);
	CHECK(kthread_get(&failing) == NULL);
	kthread_forget(&failing);
}

int main(void)
{
	RUN(test_one_per_thread);
	RUN(test_make_failure);
	return tl_summary();
}
