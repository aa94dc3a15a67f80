/*
 * conns.c — admission, per-phase deadlines and lingering close for the
 * HTTP front end (see conns.h).
 */
#include "http/conns.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/banned.h"

#define TICK_MS 250
#define REFUSED_MS 1000 /* a refused socket's time to read its 503 */
#define LINGER_READS 64 /* reads per wake-up on one lingering socket */

enum conn_phase {
	PHASE_NEW,
	PHASE_HEAD,
	PHASE_BODY,
	PHASE_BUSY,
	PHASE_IDLE,
	PHASE_REFUSED
};

struct http_conn {
	/* Guarded by the table's mutex. */
	struct http_conn *prev, *next;	 /* every open connection */
	struct http_conn *uprev, *unext; /* unproven connections, oldest first */
	bool counted;			 /* holds one of max_connections */
	bool unproven;			 /* in the unproven list */
	bool cut;			 /* shut down by the table */
	/* Set on open, then read only. */
	int fd;
	bool refused;
	/* The owning worker's alone. */
	bool proven;
	bool linger;
	/* Written by the worker, read by the housekeeping thread. */
	atomic_int phase;
	_Atomic int64_t deadline_ms; /* monotonic; 0: none */
};

struct linger_slot {
	int fd;
	int64_t until_ms;
};

struct http_conns {
	pthread_mutex_t mu;
	struct http_conn *all;
	struct http_conn *oldest, *newest; /* the unproven list */
	unsigned n_open, n_unproven, n_refused;
	unsigned max_open, max_unproven;
	int64_t head_ms, body_ms, idle_ms;
	bool tls;
	struct linger_slot lingering[HTTP_LINGER_MAX];
	size_t n_lingering;
	int epfd;
	atomic_bool stop;
	pthread_t thread;
};

static const char answer_408[] =
	"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
static const char answer_503[] = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
				 "Retry-After: 1\r\nContent-Length: 0\r\n\r\n";

/* A coarse monotonic clock (a few ms of resolution, no system call). */
static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Writes a canned answer if the socket takes it now; a socket whose
 * buffer is full gets none (it is being closed anyway).
 */
static void send_canned(int fd, const char *s, size_t n)
{
	ssize_t sent = send(fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (sent < 0)
		LOG_DEBUG("http: canned answer not sent: %s", strerror(errno));
}

static void list_link(struct http_conns *t, struct http_conn *c)
{
	c->prev = NULL;
	c->next = t->all;
	if (t->all != NULL)
		t->all->prev = c;
	t->all = c;
}

static void list_unlink(struct http_conns *t, struct http_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		t->all = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void unproven_push(struct http_conns *t, struct http_conn *c)
{
	c->unext = NULL;
	c->uprev = t->newest;
	if (t->newest != NULL)
		t->newest->unext = c;
	else
		t->oldest = c;
	t->newest = c;
	c->unproven = true;
	t->n_unproven++;
}

static void unproven_remove(struct http_conns *t, struct http_conn *c)
{
	if (!c->unproven)
		return;
	if (c->uprev != NULL)
		c->uprev->unext = c->unext;
	else
		t->oldest = c->unext;
	if (c->unext != NULL)
		c->unext->uprev = c->uprev;
	else
		t->newest = c->uprev;
	c->uprev = c->unext = NULL;
	c->unproven = false;
	t->n_unproven--;
}

/* Mutex held: c stops counting against the limits. */
static void release_slot(struct http_conns *t, struct http_conn *c)
{
	unproven_remove(t, c);
	if (c->counted) {
		c->counted = false;
		t->n_open--;
	}
}

/*
 * Mutex held. Shuts the socket down in both directions: libmicrohttpd's
 * next read sees the end of the stream and closes the connection (the
 * descriptor stays valid until then: it is closed only after
 * http_conn_close(), which needs this mutex). answer: send a 408 first.
 */
static void cut(struct http_conns *t, struct http_conn *c, bool answer)
{
	if (answer && !t->tls)
		send_canned(c->fd, answer_408, sizeof answer_408 - 1);
	shutdown(c->fd, SHUT_RDWR);
	c->cut = true;
	release_slot(t, c);
}

/* Mutex held: the oldest unproven connection whose request is not being served. */
static struct http_conn *oldest_waiting(const struct http_conns *t)
{
	for (struct http_conn *c = t->oldest; c != NULL; c = c->unext) {
		if (atomic_load_explicit(&c->phase, memory_order_relaxed) != PHASE_BUSY)
			return c;
	}
	return NULL;
}

/*
 * Mutex held: no room for c. Over plain HTTP it is answered 503 with
 * Connection: close and given REFUSED_MS to read it (a bounded number of
 * such sockets at once); otherwise it is shut down now.
 */
static void refuse(struct http_conns *t, struct http_conn *c, int64_t now)
{
	c->refused = true;
	atomic_store_explicit(&c->phase, PHASE_REFUSED, memory_order_relaxed);
	if (t->tls || t->n_refused >= HTTP_REFUSED_MAX) {
		shutdown(c->fd, SHUT_RDWR);
		c->cut = true;
		return;
	}
	send_canned(c->fd, answer_503, sizeof answer_503 - 1);
	shutdown(c->fd, SHUT_WR);
	t->n_refused++;
	c->linger = true;
	atomic_store_explicit(&c->deadline_ms, now + REFUSED_MS, memory_order_relaxed);
}

struct http_conn *http_conn_open(struct http_conns *t, int fd)
{
	struct http_conn *c = calloc(1, sizeof *c);
	if (c == NULL) {
		shutdown(fd, SHUT_RDWR);
		return NULL;
	}
	c->fd = fd;
	int64_t now = now_ms();
	pthread_mutex_lock(&t->mu);
	if (t->n_open >= t->max_open || t->n_unproven >= t->max_unproven) {
		struct http_conn *victim = oldest_waiting(t);
		if (victim != NULL) {
			LOG_DEBUG("http: connection limit: closing the oldest connection without a "
				  "completed request");
			cut(t, victim, false);
		}
	}
	list_link(t, c);
	if (t->n_open < t->max_open) {
		c->counted = true;
		t->n_open++;
		unproven_push(t, c);
		atomic_store_explicit(&c->phase, PHASE_NEW, memory_order_relaxed);
		atomic_store_explicit(&c->deadline_ms, now + t->head_ms, memory_order_relaxed);
	} else {
		LOG_DEBUG("http: connection limit: every connection is in use; refusing a new one");
		refuse(t, c, now);
	}
	pthread_mutex_unlock(&t->mu);
	return c;
}

static bool input_pending(int fd)
{
	int n = 0;
	return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/*
 * Keeps the socket open past libmicrohttpd's close through a duplicate
 * descriptor: shut for sending (the client gets the end of the stream
 * after the answer), drained by the housekeeping thread.
 */
static void linger_add(struct http_conns *t, int fd)
{
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0)
		return;
	shutdown(dup_fd, SHUT_WR);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = dup_fd};
	pthread_mutex_lock(&t->mu);
	bool kept = t->n_lingering < HTTP_LINGER_MAX &&
		    epoll_ctl(t->epfd, EPOLL_CTL_ADD, dup_fd, &ev) == 0;
	if (kept)
		t->lingering[t->n_lingering++] =
			(struct linger_slot){.fd = dup_fd, .until_ms = now_ms() + HTTP_LINGER_MS};
	pthread_mutex_unlock(&t->mu);
	if (!kept)
		close(dup_fd);
}

void http_conn_close(struct http_conns *t, struct http_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&t->mu);
	release_slot(t, c);
	if (c->refused && !c->cut)
		t->n_refused--;
	list_unlink(t, c);
	bool cut_here = c->cut;
	pthread_mutex_unlock(&t->mu);
	if (!cut_here && (c->linger || input_pending(c->fd)))
		linger_add(t, c->fd);
	free(c);
}

bool http_conn_refused(const struct http_conn *c)
{
	return c != NULL && c->refused;
}

void http_conn_request_line(struct http_conns *t, struct http_conn *c)
{
	if (c == NULL)
		return;
	int phase = atomic_load_explicit(&c->phase, memory_order_relaxed);
	if (phase == PHASE_IDLE)
		atomic_store_explicit(&c->deadline_ms, now_ms() + t->head_ms, memory_order_relaxed);
	if (phase == PHASE_IDLE || phase == PHASE_NEW)
		atomic_store_explicit(&c->phase, PHASE_HEAD, memory_order_relaxed);
}

void http_conn_head_done(struct http_conns *t, struct http_conn *c)
{
	if (c == NULL || c->refused)
		return;
	atomic_store_explicit(&c->deadline_ms, now_ms() + t->body_ms, memory_order_relaxed);
	atomic_store_explicit(&c->phase, PHASE_BODY, memory_order_relaxed);
}

void http_conn_busy(struct http_conn *c)
{
	if (c == NULL || c->refused)
		return;
	atomic_store_explicit(&c->phase, PHASE_BUSY, memory_order_relaxed);
	atomic_store_explicit(&c->deadline_ms, 0, memory_order_relaxed);
}

void http_conn_request_done(struct http_conns *t, struct http_conn *c, bool completed)
{
	if (c == NULL || c->refused)
		return;
	atomic_store_explicit(&c->deadline_ms, now_ms() + t->idle_ms, memory_order_relaxed);
	atomic_store_explicit(&c->phase, PHASE_IDLE, memory_order_relaxed);
	if (!completed || c->proven)
		return;
	c->proven = true;
	pthread_mutex_lock(&t->mu);
	unproven_remove(t, c);
	pthread_mutex_unlock(&t->mu);
}

void http_conn_linger(struct http_conn *c)
{
	if (c != NULL)
		c->linger = true;
}

unsigned http_conns_extra_fds(void)
{
	return HTTP_LINGER_MAX + HTTP_REFUSED_MAX;
}

/* Mutex held: stops lingering on slot i (closing the socket). */
static void linger_drop(struct http_conns *t, size_t i)
{
	epoll_ctl(t->epfd, EPOLL_CTL_DEL, t->lingering[i].fd, NULL);
	close(t->lingering[i].fd);
	t->lingering[i] = t->lingering[--t->n_lingering];
}

/* Reads and drops what the client sent; true once it has closed (or failed). */
static bool drain(int fd)
{
	uint8_t sink[16384];
	for (int i = 0; i < LINGER_READS; i++) {
		ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
	}
	return false;
}

/* Mutex held: shuts down connections past their deadline, closes expired lingerers. */
static void expire(struct http_conns *t, int64_t now)
{
	for (struct http_conn *c = t->all; c != NULL; c = c->next) {
		int64_t d = atomic_load_explicit(&c->deadline_ms, memory_order_relaxed);
		if (c->cut || d == 0 || now < d)
			continue;
		int phase = atomic_load_explicit(&c->phase, memory_order_relaxed);
		LOG_DEBUG("http: closing a connection past its %s deadline",
			  phase == PHASE_BODY	? "body"
			  : phase == PHASE_IDLE ? "keep-alive"
						: "request head");
		if (c->refused)
			t->n_refused--;
		cut(t, c, phase == PHASE_HEAD || phase == PHASE_BODY);
	}
	for (size_t i = 0; i < t->n_lingering;) {
		if (now >= t->lingering[i].until_ms)
			linger_drop(t, i);
		else
			i++;
	}
}

static void *housekeeping(void *arg)
{
	struct http_conns *t = arg;
	struct epoll_event evs[64];
	while (!atomic_load(&t->stop)) {
		int n = epoll_wait(t->epfd, evs, 64, TICK_MS);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (!drain(fd))
				continue;
			pthread_mutex_lock(&t->mu);
			for (size_t j = 0; j < t->n_lingering; j++) {
				if (t->lingering[j].fd == fd) {
					linger_drop(t, j);
					break;
				}
			}
			pthread_mutex_unlock(&t->mu);
		}
		pthread_mutex_lock(&t->mu);
		expire(t, now_ms());
		pthread_mutex_unlock(&t->mu);
	}
	return NULL;
}

k_status http_conns_start(const struct http_conns_options *o, struct http_conns **out)
{
	struct http_conns *t = calloc(1, sizeof *t);
	if (t == NULL)
		return K_E_INTERNAL;
	pthread_mutex_init(&t->mu, NULL);
	t->max_open = o->max_connections;
	t->max_unproven = o->max_connections - o->max_connections / 4;
	t->head_ms = (int64_t)o->head_timeout_s * 1000;
	t->body_ms = (int64_t)o->body_timeout_s * 1000;
	t->idle_ms = (int64_t)o->idle_timeout_s * 1000;
	t->tls = o->tls;
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->epfd < 0 || pthread_create(&t->thread, NULL, housekeeping, t) != 0) {
		if (t->epfd >= 0)
			close(t->epfd);
		pthread_mutex_destroy(&t->mu);
		free(t);
		return K_E_INTERNAL;
	}
	*out = t;
	return K_OK;
}

void http_conns_stop(struct http_conns *t)
{
	if (t == NULL)
		return;
	atomic_store(&t->stop, true);
	pthread_join(t->thread, NULL);
	while (t->n_lingering > 0)
		linger_drop(t, 0);
	close(t->epfd);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
