/*
 * thread.h — one object per thread, made on first use, dropped when the
 * thread ends.
 *
 * Several hot paths keep a per-thread object so that a request needs no
 * lock and no allocation: a scratch secret, a nonce pool, HMAC and digest
 * contexts, a formatting buffer. A struct kthread_slot holds the pthread
 * key for one such kind of object, and the two functions that make and
 * drop one:
 *
 *   static struct kthread_slot slot = KTHREAD_SLOT_INIT(make_fn, drop_fn);
 *   struct thing *t = kthread_get(&slot);   NULL if it could not be made
 *
 * The key is created on the first kthread_get() of any thread. drop() runs
 * on the thread's object when the thread exits (not for the main thread,
 * whose exit runs no key destructors: call kthread_forget() there).
 * kthread_forget() drops the calling thread's object now, after an error
 * that left it unusable or to release it early; the next kthread_get()
 * makes a new one. drop() must wipe whatever secret the object holds.
 */
#ifndef KINKO_CORE_THREAD_H
#define KINKO_CORE_THREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct kthread_slot {
	void *(*make)(void);
	void (*drop)(void *);
	pthread_mutex_t mu; /* guards the key's creation */
	atomic_bool ready;  /* key is created */
	bool failed;	    /* pthread_key_create failed: every get returns NULL */
	pthread_key_t key;
};

#define KTHREAD_SLOT_INIT(make_fn, drop_fn)                                                        \
	{                                                                                          \
		.make = (make_fn), .drop = (drop_fn), .mu = PTHREAD_MUTEX_INITIALIZER              \
	}

/* The calling thread's object, made with make() on first use; NULL on failure. */
void *kthread_get(struct kthread_slot *s);

/* Drops the calling thread's object now, if it has one. */
void kthread_forget(struct kthread_slot *s);

#endif
