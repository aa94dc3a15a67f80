/*
 * pg_listen.c — the change feed across nodes (storage.h, "The change
 * feed").
 *
 * Every committed apply() or purge() on any node sends one NOTIFY per
 * event on the channel kinko_feed, from inside its writing transaction:
 * PostgreSQL delivers a notification only when its transaction commits,
 * and delivers it to every session LISTENing at that moment, at once.
 * Each store handle runs one listener thread on a connection of its own
 * that LISTENs, wakes when the socket turns readable, and emits the other
 * nodes' events to its subscribers. Its own events (its node id is in
 * the payload) were already emitted by the writing thread, and are skipped,
 * except a mark (storage_mark), which every node, its sender included,
 * emits from its listener: in commit order, after every write committed
 * before the mark was sent.
 *
 * A lost listening connection means notifications may have been missed.
 * The listener reconnects (every RECONNECT_MS while the server is away),
 * LISTENs again, and only then emits the flush (a STORAGE_EV_PURGE with
 * the empty prefix): every write that committed while it was deaf is
 * covered by the flush, every later one by a notification. While it is
 * deaf the caches keep what they hold, so crypto on cached keys goes on
 * while the database is down; nothing can be written meanwhile on any
 * node that shares the listener's view of the server.
 *
 * An idle connection is pinged every PING_MS, so that a connection that
 * died silently (a dropped network path) is noticed within about a
 * second; TCP keepalives and tcp_user_timeout bound the ping itself.
 *
 * Payload: "NODE WHAT KLEN NSLEN IDLEN:" then kind, ns and id back to
 * back (lengths in bytes, so the names may hold any character but NUL).
 */
#include "storage/pg_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/banned.h"

#define POLL_MS 200
#define PING_MS 1000
#define RECONNECT_MS 200

k_status pg_payload(const struct pg_store *st, enum storage_event_kind what, const char *kind,
		    const char *ns, const char *id, struct kbuf *out)
{
	const char *k = kind != NULL ? kind : "";
	const char *i = id != NULL ? id : "";
	return kbuf_appendf(out, "%s %d %zu %zu %zu:%s%s%s", st->node, (int)what, strlen(k),
			    strlen(ns), strlen(i), k, ns, i);
}

/* Reads one decimal length up to the separator sep. */
static bool read_len(const char **p, char sep, size_t *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(*p, &end, 10);
	if (errno != 0 || end == *p || *end != sep || v > STORAGE_MAX_NAME)
		return false;
	*out = (size_t)v;
	*p = end + 1;
	return true;
}

/* Copies n bytes of *p into dst (STORAGE_MAX_NAME + 1 bytes), advancing *p. */
static void take(const char **p, size_t n, char *dst)
{
	memcpy(dst, *p, n);
	dst[n] = 0;
	*p += n;
}

/* Emits the event a notification carries, unless it is this node's own. */
static void deliver(struct pg_store *st, const char *payload)
{
	size_t plen = strlen(payload);
	if (plen < 17 || payload[16] != ' ')
		return;
	const char *p = payload + 17;
	char *end = NULL;
	long what = strtol(p, &end, 10);
	if (end == p || *end != ' ')
		goto bad;
	/* A mark comes back to its own node too: it orders it after the others' writes. */
	if (what != STORAGE_EV_MARK && memcmp(payload, st->node, 16) == 0)
		return;
	p = end + 1;
	size_t kl = 0, nl = 0, il = 0;
	if (!read_len(&p, ' ', &kl) || !read_len(&p, ' ', &nl) || !read_len(&p, ':', &il))
		goto bad;
	if ((size_t)(payload + plen - p) != kl + nl + il)
		goto bad;
	static _Thread_local char kind[STORAGE_MAX_NAME + 1], ns[STORAGE_MAX_NAME + 1],
		id[STORAGE_MAX_NAME + 1];
	take(&p, kl, kind);
	take(&p, nl, ns);
	take(&p, il, id);
	struct storage_event ev = {.ns = ns};
	if (what == STORAGE_EV_PURGE) {
		ev.what = STORAGE_EV_PURGE;
	} else if ((what == STORAGE_EV_PUT || what == STORAGE_EV_DEL) && kl > 0 && il > 0) {
		ev.what = what == STORAGE_EV_PUT ? STORAGE_EV_PUT : STORAGE_EV_DEL;
		ev.kind = kind;
		ev.id = id;
	} else if (what == STORAGE_EV_MARK && strcmp(kind, STORAGE_MARK_KIND) == 0 &&
		   k_ok(storage_mark_check(id))) {
		ev.what = STORAGE_EV_MARK;
		ev.kind = kind;
		ev.id = id;
	} else {
		goto bad;
	}
	storage_feed_emit(&st->feed, &ev);
	return;
bad:
	/* Not ours to read: flush rather than guess what it named. */
	LOG_WARN("storage: an unreadable change notification; dropping every cached copy");
	struct storage_event flush = {.what = STORAGE_EV_PURGE, .ns = ""};
	storage_feed_emit(&st->feed, &flush);
}

/* A connection that LISTENs, or NULL. */
static PGconn *listen_connect(struct pg_store *st, bool quiet)
{
	PGconn *pc = pg_connect(st, "change feed", quiet);
	if (pc == NULL)
		return NULL;
	PGresult *r = PQexec(pc, "LISTEN " PG_CHANNEL);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		LOG_WARN("storage: LISTEN failed: %s", PQerrorMessage(pc));
		PQfinish(pc);
		return NULL;
	}
	return pc;
}

/* Emits every notification libpq has read. */
static void drain(struct pg_store *st, PGconn *pc)
{
	PGnotify *n;
	while ((n = PQnotifies(pc)) != NULL) {
		deliver(st, n->extra);
		PQfreemem(n);
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for notifications on a live connection; false once it is lost. */
static bool listen_step(struct pg_store *st, PGconn *pc, int64_t *last_seen)
{
	struct pollfd pfd = {.fd = PQsocket(pc), .events = POLLIN};
	if (pfd.fd < 0)
		return false;
	int n = poll(&pfd, 1, POLL_MS);
	if (n < 0)
		return errno == EINTR;
	if (n > 0) {
		if (PQconsumeInput(pc) == 0)
			return false;
		drain(st, pc);
		*last_seen = mono_ms();
		return PQstatus(pc) == CONNECTION_OK;
	}
	if (mono_ms() - *last_seen < PING_MS)
		return true;
	PGresult *r = PQexec(pc, "SELECT 1");
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	drain(st, pc);
	*last_seen = mono_ms();
	return ok;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void *listener_main(void *arg)
{
	struct pg_store *st = arg;
	PGconn *pc = st->listen_pc;
	int64_t last_seen = mono_ms();
	bool failed = false; /* a reconnect failed: the next ones are not logged */
	while (!atomic_load(&st->stop)) {
		if (pc == NULL) {
			pc = listen_connect(st, failed);
			if (pc == NULL) {
				failed = true;
				sleep_ms(RECONNECT_MS);
				continue;
			}
			failed = false;
			/* Listening again: whatever was missed meanwhile is dropped now. */
			LOG_INFO(
				"storage: change feed listening again; dropping every cached copy");
			struct storage_event flush = {.what = STORAGE_EV_PURGE, .ns = ""};
			storage_feed_emit(&st->feed, &flush);
			last_seen = mono_ms();
		}
		if (!listen_step(st, pc, &last_seen)) {
			LOG_WARN("storage: the change feed's PostgreSQL connection was lost: %s",
				 PQerrorMessage(pc));
			PQfinish(pc);
			pc = NULL;
		}
	}
	PQfinish(pc);
	st->listen_pc = NULL;
	return NULL;
}

k_status pg_listen_start(struct pg_store *st)
{
	st->listen_pc = listen_connect(st, false);
	ENSURE(st->listen_pc != NULL, K_E_STORE_UNAVAILABLE);
	if (pthread_create(&st->listener, NULL, listener_main, st) != 0) {
		PQfinish(st->listen_pc);
		st->listen_pc = NULL;
		BAIL(K_E_INTERNAL);
	}
	st->listener_started = true;
	return K_OK;
}

void pg_listen_stop(struct pg_store *st)
{
	if (!st->listener_started)
		return;
	atomic_store(&st->stop, true);
	pthread_join(st->listener, NULL);
	st->listener_started = false;
}
