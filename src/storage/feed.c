/*
 * feed.c — the change feed's subscriber list (see feed.h).
 */
#include "storage/feed.h"

#include <string.h>

#include "core/banned.h"

k_status storage_feed_init(struct storage_feed *f)
{
	atomic_init(&f->n, 0);
	ENSURE(pthread_mutex_init(&f->mu, NULL) == 0, K_E_INTERNAL);
	return K_OK;
}

void storage_feed_release(struct storage_feed *f)
{
	pthread_mutex_destroy(&f->mu);
}

k_status storage_feed_add(struct storage_feed *f, storage_change_cb cb, void *arg)
{
	ENSURE(cb != NULL, K_E_VALIDATION);
	k_status rc = K_OK;
	pthread_mutex_lock(&f->mu);
	size_t n = atomic_load_explicit(&f->n, memory_order_relaxed);
	if (n >= STORAGE_MAX_SUBSCRIBERS) {
		rc = K_E_LIMIT_EXCEEDED;
	} else {
		f->subs[n].cb = cb;
		f->subs[n].arg = arg;
		atomic_store_explicit(&f->n, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

void storage_feed_emit(struct storage_feed *f, const struct storage_event *ev)
{
	size_t n = atomic_load_explicit(&f->n, memory_order_acquire);
	for (size_t i = 0; i < n; i++)
		f->subs[i].cb(f->subs[i].arg, ev);
}

void storage_feed_emit_ops(struct storage_feed *f, const struct storage_op *ops, size_t n)
{
	if (atomic_load_explicit(&f->n, memory_order_acquire) == 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct storage_event ev = {
			.what = ops[i].op == STORAGE_DEL ? STORAGE_EV_DEL : STORAGE_EV_PUT,
			.kind = ops[i].kind,
			.ns = ops[i].ns,
			.id = ops[i].id,
		};
		storage_feed_emit(f, &ev);
	}
}

k_status storage_mark_check(const char *token)
{
	ENSURE(token != NULL, K_E_VALIDATION);
	size_t n = strlen(token);
	ENSURE(n > 0 && n <= STORAGE_MAX_MARK, K_E_VALIDATION);
	for (size_t i = 0; i < n; i++) {
		char ch = token[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
		ENSURE(ok, K_E_VALIDATION);
	}
	return K_OK;
}

void storage_feed_emit_mark(struct storage_feed *f, const char *token)
{
	struct storage_event ev = {
		.what = STORAGE_EV_MARK,
		.kind = STORAGE_MARK_KIND,
		.ns = "",
		.id = token,
	};
	storage_feed_emit(f, &ev);
}
