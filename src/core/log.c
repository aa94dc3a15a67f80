#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/thread.h"
#include "core/banned.h"

static enum klog_level min_level = KLOG_INFO;
static enum klog_format line_format = KLOG_TEXT;
static char log_path[1024];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void klog_set_level(enum klog_level lvl)
{
	min_level = lvl;
}

bool klog_enabled(enum klog_level lvl)
{
	return lvl >= min_level;
}

void klog_set_format(enum klog_format f)
{
	line_format = f;
}

enum klog_format klog_get_format(void)
{
	return line_format;
}

k_status klog_parse_format(const char *name, enum klog_format *out)
{
	if (name != NULL && strcmp(name, "text") == 0)
		*out = KLOG_TEXT;
	else if (name != NULL && strcmp(name, "json") == 0)
		*out = KLOG_JSON;
	else
		return K_E_VALIDATION;
	return K_OK;
}

/*
 * A line is built in a buffer on the caller's stack and written with one
 * write(2) on descriptor 2: no lock, no stdio buffer, and lines of
 * concurrent threads never interleave (O_APPEND, or a pipe under
 * PIPE_BUF). What does not fit is cut, and the line still ends in a
 * newline (and, in JSON, in a closed object).
 */
struct line {
	char b[KLOG_MAX_LINE];
	size_t n;
};

/* Room kept at the end of a line for what closes it ("\"}\n"). */
#define LINE_TAIL 4

static void put_raw(struct line *l, const char *s, size_t len)
{
	size_t room = sizeof l->b - LINE_TAIL - l->n;
	if (len > room)
		len = room;
	memcpy(l->b + l->n, s, len);
	l->n += len;
}

/* Writes all of s or nothing: an escape sequence is never cut. */
static void put_whole(struct line *l, const char *s, size_t len)
{
	if (len <= sizeof l->b - LINE_TAIL - l->n)
		put_raw(l, s, len);
	else
		l->n = sizeof l->b - LINE_TAIL; /* full: nothing more goes in */
}

/*
 * A line cut inside a UTF-8 character would not be valid JSON: drops the
 * incomplete character at the end, if any.
 */
static void trim_utf8(struct line *l)
{
	size_t i = l->n, back = 0;
	while (i > 0 && back < 4 && ((unsigned char)l->b[i - 1] & 0xC0) == 0x80) {
		i--;
		back++;
	}
	if (i == 0 || ((unsigned char)l->b[i - 1] & 0x80) == 0)
		return; /* ASCII last, or only continuation bytes: nothing to judge */
	unsigned char lead = (unsigned char)l->b[i - 1];
	size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
	if (back < need)
		l->n = i - 1;
}

static void put(struct line *l, const char *s)
{
	put_raw(l, s, strlen(s));
}

/*
 * Text is copied as it is but for control characters, which become '?':
 * a value can never start a line of its own. In JSON, quotes, backslashes
 * and control characters are escaped.
 */
static void put_text(struct line *l, const char *s, bool json)
{
	static const char hex[] = "0123456789abcdef";
	for (; *s != 0; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[7] = {'\\', (char)ch, 0, 0, 0, 0, 0};
		if (!json) {
			char c1 = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
			put_raw(l, &c1, 1);
		} else if (ch == '"' || ch == '\\') {
			put_whole(l, esc, 2);
		} else if (ch < 0x20) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			put_whole(l, esc, 6);
		} else {
			put_raw(l, (const char *)&ch, 1);
		}
	}
}

/*
 * "2026-12-07T07:50:01.123Z". The seconds' text is kept per thread and
 * made again only when the second changes: gmtime_r takes glibc's time
 * zone lock, which a line per request would otherwise take every time.
 */
static void put_time(struct line *l)
{
	static _Thread_local time_t last = -1;
	static _Thread_local char text[32];
	static _Thread_local size_t text_len;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != last) {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		text_len = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
		last = ts.tv_sec;
	}
	char ms[8] = {'.', 0, 0, 0, 'Z'};
	long milli = ts.tv_nsec / 1000000;
	ms[1] = (char)('0' + milli / 100);
	ms[2] = (char)('0' + milli / 10 % 10);
	ms[3] = (char)('0' + milli % 10);
	put_raw(l, text, text_len);
	put_raw(l, ms, 5);
}

/* The start of every line: time, level and (in text) the program's name. */
static void line_start(struct line *l, enum klog_level lvl)
{
	l->n = 0;
	if (line_format == KLOG_JSON) {
		put(l, "{\"time\":\"");
		put_time(l);
		put(l, "\",\"level\":\"");
		put(l, level_names[lvl]);
		put(l, "\",\"message\":\"");
	} else {
		put_time(l);
		put(l, " kinko ");
		put(l, level_names[lvl]);
		put(l, ": ");
	}
}

static void write_all(const char *p, size_t left)
{
	while (left > 0) {
		ssize_t w = write(STDERR_FILENO, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		left -= (size_t)w;
	}
}

/* Closes the line (JSON's string and object, the newline). */
static void line_finish(struct line *l, bool close_string)
{
	if (line_format == KLOG_JSON) {
		trim_utf8(l);
		if (close_string)
			l->b[l->n++] = '"';
		l->b[l->n++] = '}';
	}
	l->b[l->n++] = '\n';
}

/*
 * Request lines a busy thread keeps (klog_request): one per thread that
 * writes them, in a list the flusher walks. Lock order: pend_mu, then a
 * thread's mu.
 */
struct pend {
	pthread_mutex_t mu;
	size_t n;	 /* bytes kept in b */
	int64_t last_ns; /* when the thread's last request line came */
	struct pend *prev, *next;
	char b[KLOG_PEND_BYTES];
};

static _Atomic int64_t busy_ns = KLOG_BUSY_NS;
static pthread_mutex_t pend_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pend *pend_head;
static pthread_once_t flusher_once = PTHREAD_ONCE_INIT;
static _Thread_local struct pend *mine;

/* Writes out what p keeps; p->mu held. */
static void pend_write(struct pend *p)
{
	write_all(p->b, p->n);
	p->n = 0;
}

void klog_set_busy_ns(int64_t ns)
{
	atomic_store_explicit(&busy_ns, ns, memory_order_relaxed);
}

void klog_flush(void)
{
	pthread_mutex_lock(&pend_mu);
	for (struct pend *p = pend_head; p != NULL; p = p->next) {
		pthread_mutex_lock(&p->mu);
		if (p->n > 0)
			pend_write(p);
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_unlock(&pend_mu);
}

/* Writes what busy threads keep every KLOG_FLUSH_MS; signals are left to the others. */
static void *flusher(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct timespec ts = {0, KLOG_FLUSH_MS * 1000000L};
		nanosleep(&ts, NULL);
		klog_flush();
	}
	return NULL;
}

static void start_flusher(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, flusher, NULL) == 0) {
		pthread_setname_np(t, "kinko-log");
		pthread_detach(t);
	}
	atexit(klog_flush);
}

static void *pend_make(void)
{
	struct pend *p = calloc(1, sizeof *p);
	if (p == NULL)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	pthread_once(&flusher_once, start_flusher);
	pthread_mutex_lock(&pend_mu);
	p->next = pend_head;
	if (pend_head != NULL)
		pend_head->prev = p;
	pend_head = p;
	pthread_mutex_unlock(&pend_mu);
	mine = p;
	return p;
}

/* The thread ends: what it keeps is written, and it leaves the list. */
static void pend_drop(void *arg)
{
	struct pend *p = arg;
	pthread_mutex_lock(&pend_mu);
	pthread_mutex_lock(&p->mu);
	if (p->n > 0)
		pend_write(p);
	pthread_mutex_unlock(&p->mu);
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		pend_head = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	pthread_mutex_unlock(&pend_mu);
	pthread_mutex_destroy(&p->mu);
	mine = NULL;
	free(p);
}

static struct kthread_slot pend_slot = KTHREAD_SLOT_INIT(pend_make, pend_drop);

static void line_write(struct line *l, bool close_string)
{
	line_finish(l, close_string);
	struct pend *p = mine;
	if (p != NULL) { /* this thread's kept request lines go first */
		pthread_mutex_lock(&p->mu);
		if (p->n > 0)
			pend_write(p);
		write_all(l->b, l->n);
		pthread_mutex_unlock(&p->mu);
		return;
	}
	write_all(l->b, l->n);
}

/*
 * A request line: written at once when the thread's last one came more
 * than KLOG_BUSY_NS (klog_set_busy_ns) ago, kept otherwise (a thread
 * answering back-to-back requests writes a whole buffer at a time, and
 * the flusher writes what is left within KLOG_FLUSH_MS).
 */
static void request_write(struct line *l)
{
	line_finish(l, false);
	struct pend *p = kthread_get(&pend_slot);
	if (p == NULL) {
		write_all(l->b, l->n);
		return;
	}
	int64_t now = kclock_mono_ns();
	pthread_mutex_lock(&p->mu);
	bool busy = now - p->last_ns < atomic_load_explicit(&busy_ns, memory_order_relaxed);
	p->last_ns = now;
	if (p->n + l->n > sizeof p->b)
		pend_write(p);
	memcpy(p->b + p->n, l->b, l->n);
	p->n += l->n;
	if (!busy)
		pend_write(p);
	pthread_mutex_unlock(&p->mu);
}

void klog(enum klog_level lvl, const char *fmt, ...)
{
	if (lvl < min_level)
		return;
	char msg[KLOG_MAX_LINE];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	struct line l;
	line_start(&l, lvl);
	put_text(&l, msg, line_format == KLOG_JSON);
	line_write(&l, true);
}

/* One member of a request line: ` name=value` in text, `,"name":"value"` in JSON. */
static void put_field(struct line *l, const char *name, const char *value)
{
	if (line_format == KLOG_JSON) {
		put(l, ",\"");
		put(l, name);
		put(l, "\":");
		if (value == NULL) {
			put(l, "null");
			return;
		}
		put(l, "\"");
		put_text(l, value, true);
		put(l, "\"");
		return;
	}
	put(l, " ");
	put(l, name);
	put(l, "=");
	put_text(l, value != NULL && value[0] != 0 ? value : "-", false);
}

/*
 * v with `decimals` (0 to 6) digits after the point, as "%.*f" prints it
 * (but for a value within a rounding error of a half, which may round the
 * other way), without the formatting machinery: for the values a request
 * line carries (a status, a latency), which are never negative; anything
 * else goes through snprintf.
 */
static int format_fixed(char *num, size_t size, int decimals, double v)
{
	static const uint64_t scale[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
	if (!(v >= 0 && v < 1e12) || decimals < 0 || decimals > 6)
		return snprintf(num, size, "%.*f", decimals, v);
	uint64_t s = scale[decimals];
	uint64_t x = (uint64_t)(v * (double)s + 0.5);
	char tmp[32];
	size_t n = 0;
	for (int i = 0; i < decimals; i++, x /= 10)
		tmp[n++] = (char)('0' + x % 10);
	if (decimals > 0)
		tmp[n++] = '.';
	do {
		tmp[n++] = (char)('0' + x % 10);
		x /= 10;
	} while (x > 0 && n < sizeof tmp);
	if (n >= size)
		return -1;
	for (size_t i = 0; i < n; i++)
		num[i] = tmp[n - 1 - i];
	num[n] = 0;
	return (int)n;
}

static void put_number(struct line *l, const char *name, int decimals, double v)
{
	char num[32];
	int n = format_fixed(num, sizeof num, decimals, v);
	if (n < 0)
		return;
	if (line_format == KLOG_JSON) {
		put(l, ",\"");
		put(l, name);
		put(l, "\":");
	} else {
		put(l, " ");
		put(l, name);
		put(l, "=");
	}
	put(l, num);
}

void klog_request(enum klog_level lvl, const struct klog_request *r)
{
	if (lvl < min_level)
		return;
	struct line l;
	line_start(&l, lvl);
	put(&l, "request");
	if (line_format == KLOG_JSON)
		put(&l, "\"");
	put_field(&l, "requestId", r->request_id);
	put_field(&l, "principal", r->principal);
	if (r->access_key != NULL || line_format == KLOG_JSON)
		put_field(&l, "accessKeyId", r->access_key);
	put_field(&l, "service", r->service);
	put_field(&l, "operation", r->operation);
	put_field(&l, "resource", r->resource);
	put_number(&l, "status", 0, (double)r->status);
	put_field(&l, "errorCode", r->error_code);
	put_number(&l, "latencyMs", 3, r->latency_ms);
	request_write(&l);
}

/*
 * Opens the log file and moves it onto descriptor 2. dup2 replaces the
 * descriptor atomically, so a thread writing a line at that moment writes
 * it whole to the old file or to the new one.
 */
static int switch_stderr(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return errno;
	fflush(stderr);
	int e = dup2(fd, STDERR_FILENO) < 0 ? errno : 0;
	close(fd);
	return e;
}

k_status klog_open_file(const char *path, struct kbuf *msg)
{
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof log_path) {
		kbuf_note(msg, "%s", "the log file path is empty or too long");
		return K_E_VALIDATION;
	}
	int e = switch_stderr(path);
	if (e != 0) {
		kbuf_note(msg, "cannot open the log file %s: %s", path, strerror(e));
		return K_E_VALIDATION;
	}
	memcpy(log_path, path, n + 1);
	return K_OK;
}

k_status klog_reopen(void)
{
	if (log_path[0] == 0)
		return K_OK;
	int e = switch_stderr(log_path);
	if (e != 0) {
		LOG_ERROR("cannot reopen the log file %s: %s (still writing to the old one)",
			  log_path, strerror(e));
		return K_E_INTERNAL;
	}
	return K_OK;
}
