/*
 * feed.h — the change feed's subscriber list, for storage backends (not
 * for the store's users: they call storage_subscribe, see storage.h).
 *
 * A backend embeds one struct storage_feed, implements its vtable's
 * subscribe with storage_feed_add, and calls storage_feed_emit for every
 * committed write, after the commit, holding none of its own locks.
 *
 * Emitting takes no lock: subscribers are only ever appended, each slot
 * is written before the count that publishes it (release), and an emitter
 * reads the count once (acquire) and calls the slots below it. A
 * subscriber added while an event is being emitted may or may not see it.
 */
#ifndef KINKO_STORAGE_FEED_H
#define KINKO_STORAGE_FEED_H

#include <pthread.h>
#include <stdatomic.h>
#include "storage/storage.h"

struct storage_feed {
	pthread_mutex_t mu; /* serializes storage_feed_add */
	atomic_size_t n;
	struct {
		storage_change_cb cb;
		void *arg;
	} subs[STORAGE_MAX_SUBSCRIBERS];
};

/* K_E_INTERNAL if the mutex cannot be made. */
K_MUST_CHECK k_status storage_feed_init(struct storage_feed *f);
/* No emit or add may be running. */
void storage_feed_release(struct storage_feed *f);
/* See storage_vtbl.subscribe. */
K_MUST_CHECK k_status storage_feed_add(struct storage_feed *f, storage_change_cb cb, void *arg);
/* Calls every subscriber with ev, in the order they subscribed. */
void storage_feed_emit(struct storage_feed *f, const struct storage_event *ev);
/* One STORAGE_EV_PUT or STORAGE_EV_DEL event per op, in order. */
void storage_feed_emit_ops(struct storage_feed *f, const struct storage_op *ops, size_t n);
/* One STORAGE_EV_MARK event (STORAGE_MARK_KIND, ns "", id token). */
void storage_feed_emit_mark(struct storage_feed *f, const char *token);

#endif
