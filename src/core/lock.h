/*
 * lock.h — taking a mutex that is only ever held for a few microseconds.
 *
 * When such a mutex is busy, sleeping on it and being woken again (two
 * futex calls and two context switches) costs more than waiting for the
 * holder, which runs on another core. klock() therefore retries for a
 * bounded time before it blocks. Use it only where every holder keeps the
 * lock briefly and never blocks for long while holding it.
 */
#ifndef KINKO_CORE_LOCK_H
#define KINKO_CORE_LOCK_H

#include <pthread.h>

/* About 10 µs of retrying before blocking. */
#define KLOCK_SPINS 2000

static inline void klock_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static inline void klock(pthread_mutex_t *m)
{
	for (int i = 0; i < KLOCK_SPINS; i++) {
		if (pthread_mutex_trylock(m) == 0)
			return;
		klock_relax();
	}
	pthread_mutex_lock(m);
}

#endif
