/*
 * thread.c — per-thread objects on a pthread key (see thread.h).
 */
#include "core/thread.h"

#include <stddef.h>

#include "core/banned.h"

static bool slot_ready(struct kthread_slot *s)
{
	if (atomic_load_explicit(&s->ready, memory_order_acquire))
		return true;
	pthread_mutex_lock(&s->mu);
	if (!atomic_load_explicit(&s->ready, memory_order_relaxed) && !s->failed) {
		if (pthread_key_create(&s->key, s->drop) == 0)
			atomic_store_explicit(&s->ready, true, memory_order_release);
		else
			s->failed = true;
	}
	pthread_mutex_unlock(&s->mu);
	return atomic_load_explicit(&s->ready, memory_order_acquire);
}

void *kthread_get(struct kthread_slot *s)
{
	if (!slot_ready(s))
		return NULL;
	void *p = pthread_getspecific(s->key);
	if (p != NULL)
		return p;
	p = s->make();
	if (p == NULL)
		return NULL;
	if (pthread_setspecific(s->key, p) != 0) {
		s->drop(p);
		return NULL;
	}
	return p;
}

void kthread_forget(struct kthread_slot *s)
{
	if (!atomic_load_explicit(&s->ready, memory_order_acquire))
		return;
	void *p = pthread_getspecific(s->key);
	if (p == NULL)
		return;
	(void)pthread_setspecific(s->key, NULL);
	s->drop(p);
}
