/*
 * indexer.c — keeps the event index (storage/event_index.h) up with the
 * trail, so that neither start-up nor LookupEvents reads the whole trail.
 *
 * The index lives in the log folder (AUDIT_INDEX_FILE). Its checkpoint
 * names the last record it covers and where that record ends; catching
 * up reads the log files from there, in batches of one transaction each
 * (the rows and the new checkpoint together), so a kill at any point
 * leaves an index that is exact up to its checkpoint and the next catch-
 * up re-reads the rest. A background thread catches up about once a
 * second; LookupEvents catches up (a bounded amount) before it queries.
 *
 * At start, the last use of each key is loaded from the index and at most
 * one batch of the records after the checkpoint is read before the
 * server listens; the rest of that backlog (a crash, or a stop after a
 * burst, can leave millions of records) is read by the thread after the
 * server listens, so start-up takes the same time whatever the backlog.
 * Until the backlog is read, the records up to the trail's end at start
 * are fed to the in-memory last-use index too (later ones were noted by
 * the calls themselves), LookupEvents answers from what is indexed so far
 * without catching up itself, and audit_index_backlog_read() says false.
 * Each batch commits its rows with its checkpoint, so a stop during the
 * backlog loses and repeats nothing: the next start goes on from the
 * last checkpoint. A trail that no longer continues the checkpoint (its
 * file is gone or shorter) is indexed again from its first record.
 */
#include "audit/audit.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/internal.h"
#include "core/clock.h"
#include "core/log.h"
#include "storage/event_index.h"
#include "core/banned.h"

#define INDEX_EVERY_MS 1000
/* How often the thread looks whether the side queue is filling, between catch-ups. */
#define INDEX_LOOK_MS 50L
/* Records per transaction. */
#define INDEX_BATCH 16384
/*
 * Records a clean stop indexes at most (a second or two): a backlog left
 * by a burst is read by the next start instead of holding up the stop.
 */
#define INDEX_CLOSE_MAX 50000
/* Bytes read from a log file at a time: at least two of its longest lines. */
#define INDEX_CHUNK (2 * (size_t)AUDIT_MAX_LINE + 65536)

static struct {
	pthread_mutex_t mu; /* one catch-up at a time; guards pos */
	struct event_index *ix;
	struct event_index_pos pos;
	uint64_t start_seq;	  /* the trail's last record when the index opened */
	int64_t start_t;	  /* when it opened (seconds) */
	atomic_bool backlog_read; /* every record up to start_seq is indexed */
	int64_t t_open_ms;	  /* for the log line when the backlog is read */
	uint64_t from_seq;	  /* the checkpoint at open */
	size_t uses_loaded;	  /* key uses loaded from the index at open */
	size_t backlog_n;	  /* records of the backlog indexed so far */
	struct audit_op_name
		*ops; /* a copy of audit_options' key_use_ops (its strings are static) */
	size_t n_ops;
	int64_t every_ms; /* the thread catches up this often */
	size_t close_max; /* records a clean stop indexes at most */
	pthread_t thread;
	bool running, stopping;
	pthread_mutex_t tmu;
	pthread_cond_t tcv;
	uint8_t *chunk;
} X = {.mu = PTHREAD_MUTEX_INITIALIZER, .tmu = PTHREAD_MUTEX_INITIALIZER};

static _Atomic uint64_t indexed_total, queued_total;

bool audit_index_backlog_read(void)
{
	return atomic_load(&X.backlog_read);
}

int64_t audit_index_opened_at(void)
{
	return X.start_t;
}

uint64_t audit_index_from_queue(void)
{
	return atomic_load(&queued_total);
}

uint64_t audit_index_records(void)
{
	return atomic_load(&indexed_total);
}

/* Whether a success of (source, name) is a use of the keys its event names. */
static bool key_use(const char *src, const char *name, bool failed)
{
	if (src == NULL || name == NULL || failed)
		return false;
	for (size_t i = 0; i < X.n_ops; i++) {
		if (strcmp(X.ops[i].event_source, src) == 0 &&
		    strcmp(X.ops[i].event_name, name) == 0)
			return true;
	}
	return false;
}

static const char *str_of(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s != NULL ? s : "";
}

/* One resource of an event, and the use of its key. */
static K_MUST_CHECK k_status index_resource(const struct event_index_row *r, const char *type,
					    const char *arn, bool use, const char *request_id)
{
	GUARD(event_index_add_resource(X.ix, r->seq, r->t, r->ns, type, arn));
	if (use && arn[0] != 0)
		GUARD(event_index_note_use(X.ix, arn, r->name, r->t, r->event_id, request_id));
	return K_OK;
}

/* The rows of one event, and its key uses, from its parsed line. */
static K_MUST_CHECK k_status index_event(json_t *e, uint64_t seq, const char *file, uint64_t off,
					 uint32_t len)
{
	int64_t t = 0;
	if (!audit_parse_iso8601(str_of(e, "eventTime"), &t))
		return K_OK; /* not an event LookupEvents can place in time */
	if (X.pos.oldest == 0)
		X.pos.oldest = t;
	char ns[96];
	snprintf(ns, sizeof ns, "%s:%s", str_of(e, "recipientAccountId"), str_of(e, "awsRegion"));
	const char *user = audit_event_username(e);
	json_t *who = json_object_get(e, "userIdentity");
	struct event_index_row r = {.seq = seq,
				    .file = file,
				    .off = off,
				    .len = len,
				    .t = t,
				    .ns = ns,
				    .name = str_of(e, "eventName"),
				    .source = str_of(e, "eventSource"),
				    .user = user != NULL ? user : "",
				    .event_id = str_of(e, "eventID"),
				    .access_key = str_of(who, "accessKeyId"),
				    .read_only = json_is_true(json_object_get(e, "readOnly"))};
	GUARD(event_index_add(X.ix, &r));
	bool use = key_use(json_string_value(json_object_get(e, "eventSource")),
			   json_string_value(json_object_get(e, "eventName")),
			   json_object_get(e, "errorCode") != NULL);
	size_t i;
	json_t *res;
	json_array_foreach(json_object_get(e, "resources"), i, res)
	{
		GUARD(index_resource(&r, str_of(res, "type"), str_of(res, "ARN"), use,
				     str_of(e, "requestID")));
	}
	return K_OK;
}

/* The same rows from the side queue's members of the event (no parse). */
static K_MUST_CHECK k_status index_queued(const struct audit_ixq_view *v, const char *file,
					  uint64_t off, uint32_t len)
{
	if (X.pos.oldest == 0)
		X.pos.oldest = v->t;
	char ns[96];
	snprintf(ns, sizeof ns, "%s:%s", v->account, v->region);
	struct event_index_row r = {.seq = v->seq,
				    .file = file,
				    .off = off,
				    .len = len,
				    .t = v->t,
				    .ns = ns,
				    .name = v->name,
				    .source = v->source,
				    .user = v->user,
				    .event_id = v->event_id,
				    .access_key = v->access_key,
				    .read_only = v->read_only};
	GUARD(event_index_add(X.ix, &r));
	bool use = key_use(v->source, v->name, v->failed);
	const char *cur = v->res;
	for (size_t i = 0; i < v->n_res; i++) {
		const char *arn;
		const char *type = audit_ixq_resource(&cur, &arn);
		GUARD(index_resource(&r, type, arn, use, v->request_id));
	}
	return K_OK;
}

/* Whether p[0..n) ends with the literal s. */
#define ENDS_WITH(p, n, s)                                                                         \
	((n) >= sizeof(s) - 1 && memcmp((p) + (n) - (sizeof(s) - 1), s, sizeof(s) - 1) == 0)

/* Where the run of [A-Za-z0-9._-] that ends at p[n] starts. */
static size_t word_start(const uint8_t *p, size_t n)
{
	while (n > 0 &&
	       (isalnum(p[n - 1]) || p[n - 1] == '.' || p[n - 1] == '_' || p[n - 1] == '-'))
		n--;
	return n;
}

/*
 * A record line as the writer makes it, with its chain members last:
 * ...,"kinkoType":"TYPE"[,"kinkoNode":"NODE"],"kinkoSeq":N,"kinkoPrev":"HASH"}
 * read from its end without parsing the event. *seq gets N and *event
 * whether TYPE is "event"; false if the line does not end so (a file of
 * an older layout: the caller parses it).
 */
static bool line_tail(const uint8_t *p, size_t n, uint64_t *seq, bool *event)
{
	size_t end = n > 66 ? n - 66 : 0; /* the 64 hex digits of the hash, then "} */
	if (end == 0 || memcmp(p + n - 2, "\"}", 2) != 0 || !ENDS_WITH(p, end, ",\"kinkoPrev\":\""))
		return false;
	end -= sizeof ",\"kinkoPrev\":\"" - 1;
	size_t d = end;
	while (d > 0 && end - d < 20 && isdigit(p[d - 1]))
		d--;
	if (d == end || !ENDS_WITH(p, d, "\",\"kinkoSeq\":"))
		return false;
	*seq = 0;
	for (size_t i = d; i < end; i++)
		*seq = *seq * 10 + (uint64_t)(p[i] - '0');
	size_t v_end = d - (sizeof "\",\"kinkoSeq\":" - 1) + 1, v = word_start(p, v_end - 1);
	if (ENDS_WITH(p, v, "\",\"kinkoNode\":\"")) {
		v_end = v - (sizeof "\",\"kinkoNode\":\"" - 1) + 1;
		v = word_start(p, v_end - 1);
	}
	if (!ENDS_WITH(p, v, ",\"kinkoType\":\""))
		return false;
	*event = v_end - 1 - v == 5 && memcmp(p + v, "event", 5) == 0;
	return true;
}

/* Whether the line holds "eventID":"eid" (the queue's entry is this line's event). */
static bool names_event(const uint8_t *p, size_t n, const char *eid)
{
	char needle[64];
	int k = snprintf(needle, sizeof needle, "\"eventID\":\"%s\"", eid);
	return k > 0 && (size_t)k < sizeof needle && memmem(p, n, needle, (size_t)k) != NULL;
}

/* A catch-up's progress: records read in this transaction, and whether to feed memory. */
struct run {
	size_t in_batch, total, max;
	bool feed_memory;
	bool open; /* a transaction is open */
};

static K_MUST_CHECK k_status batch_end(struct run *r)
{
	if (!r->open)
		return K_OK;
	r->open = false;
	r->in_batch = 0;
	return event_index_commit(X.ix, &X.pos);
}

static K_MUST_CHECK k_status batch_open(struct run *r)
{
	if (r->open)
		return K_OK;
	GUARD(event_index_begin(X.ix));
	r->open = true;
	return K_OK;
}

/* A line parsed whole (the side queue did not have it); *seq its seq, 0 if none. */
static K_MUST_CHECK k_status take_parsed(struct run *r, const char *file, const uint8_t *p,
					 size_t len, uint64_t start, uint64_t *seq, bool feed)
{
	json_t *rec = json_loadb((const char *)p, len, 0, NULL);
	*seq = (uint64_t)json_integer_value(json_object_get(rec, "kinkoSeq"));
	const char *type = json_string_value(json_object_get(rec, "kinkoType"));
	json_t *ev = json_object_get(rec, "event");
	k_status rc = K_OK;
	if (*seq > X.pos.seq && type != NULL && strcmp(type, "event") == 0 && json_is_object(ev)) {
		rc = batch_open(r);
		if (k_ok(rc))
			rc = index_event(ev, *seq, file, start, (uint32_t)len);
		if (k_ok(rc) && feed)
			audit_lastuse_from_event(ev, X.ops, X.n_ops);
		r->in_batch++;
		r->total++;
	}
	json_decref(rec);
	return rc;
}

/*
 * A line whose event the side queue holds: indexed from the queue's
 * members. *taken false if the queue does not hold it (or holds another
 * event under its seq): the caller parses the line.
 */
static K_MUST_CHECK k_status take_queued(struct run *r, const char *file, const uint8_t *p,
					 size_t len, uint64_t start, uint64_t seq, bool *taken)
{
	struct audit_ixq_view v;
	*taken = audit_ixq_take(seq, &v) && names_event(p, len, v.event_id);
	if (!*taken)
		return K_OK;
	k_status rc = batch_open(r);
	if (k_ok(rc))
		rc = index_queued(&v, file, start, (uint32_t)len);
	audit_ixq_pop();
	atomic_fetch_add_explicit(&queued_total, 1, memory_order_relaxed);
	r->in_batch++;
	r->total++;
	return rc;
}

/*
 * One complete line of file, starting at start. The line's end says its
 * seq and type; an event's members come from the side queue when it has
 * them, else from parsing the line. The backlog's records up to the
 * trail's end at start (feed_memory) are parsed whole, as the in-memory
 * last-use index reads the event; the calls after it noted their uses.
 */
static K_MUST_CHECK k_status take_line(struct run *r, const char *file, const uint8_t *p,
				       size_t len, uint64_t start)
{
	uint64_t seq = 0;
	bool event = false, taken = false;
	k_status rc = K_OK;
	bool tail = line_tail(p, len, &seq, &event);
	bool feed = r->feed_memory && (!tail || seq <= X.start_seq);
	if (tail && !feed)
		taken = !event || seq <= X.pos.seq; /* nothing to index in it */
	if (!taken && !feed && seq > X.pos.seq && event)
		rc = take_queued(r, file, p, len, start, seq, &taken);
	if (k_ok(rc) && !taken)
		rc = take_parsed(r, file, p, len, start, &seq, feed);
	if (k_ok(rc) && seq > X.pos.seq)
		X.pos.seq = seq;
	if (strcmp(X.pos.file, file) != 0)
		snprintf(X.pos.file, sizeof X.pos.file, "%s", file);
	X.pos.off = start + len + 1;
	if (k_ok(rc) && r->in_batch >= INDEX_BATCH)
		rc = batch_end(r);
	return rc;
}

/* Reads file from off to its last complete line, or until the run's max. */
static K_MUST_CHECK k_status read_from(struct run *r, const char *file, uint64_t off)
{
	char path[700];
	audit_path_of(file, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return K_OK; /* removed meanwhile (an operator's prune) */
	k_status rc = K_OK;
	size_t have = 0;
	uint64_t base = off; /* the file offset of chunk[0] */
	while (k_ok(rc) && r->total < r->max) {
		ssize_t got = pread(fd, X.chunk + have, INDEX_CHUNK - have, (off_t)(base + have));
		if (got <= 0)
			break;
		have += (size_t)got;
		size_t pos = 0;
		const uint8_t *nl;
		while (k_ok(rc) && r->total < r->max &&
		       (nl = memchr(X.chunk + pos, '\n', have - pos)) != NULL) {
			size_t len = (size_t)(nl - (X.chunk + pos));
			rc = take_line(r, file, X.chunk + pos, len, base + pos);
			pos += len + 1;
		}
		if (pos == 0 && have == INDEX_CHUNK)
			break; /* a line longer than any record: not a log the writer made */
		memmove(X.chunk, X.chunk + pos, have - pos);
		have -= pos;
		base += pos;
	}
	close(fd);
	return rc;
}

/* Where catching up starts: the checkpoint's file, or the first file if the trail moved. */
static K_MUST_CHECK k_status start_file(char **names, size_t n, size_t *first)
{
	*first = 0;
	if (X.pos.file[0] == 0)
		return K_OK;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], X.pos.file) != 0)
			continue;
		char path[700];
		struct stat sb;
		audit_path_of(names[i], path, sizeof path);
		if (stat(path, &sb) == 0 && (uint64_t)sb.st_size >= X.pos.off) {
			*first = i;
			return K_OK;
		}
		break;
	}
	LOG_WARN("audit: the trail no longer continues the index's checkpoint (%s); "
		 "indexing it again",
		 X.pos.file);
	GUARD(event_index_clear(X.ix));
	memset(&X.pos, 0, sizeof X.pos);
	return K_OK;
}

/* Under X.mu, once the catch-up reached the trail's end: the start's backlog is read. */
static void backlog_end_locked(void)
{
	if (atomic_load(&X.backlog_read))
		return;
	audit_lastuse_set_tracking_start(X.pos.oldest ? X.pos.oldest : kclock_now());
	atomic_store(&X.backlog_read, true);
	LOG_INFO("audit: index at record %llu: %zu key uses loaded, %zu records after record %llu "
		 "read, in %lld ms",
		 (unsigned long long)X.pos.seq, X.uses_loaded, X.backlog_n,
		 (unsigned long long)X.from_seq, (long long)(kclock_now_ms() - X.t_open_ms));
}

/*
 * Under X.mu: indexes up to max records written after the checkpoint;
 * *done the number. While the start's backlog is not read, its records
 * feed the in-memory last-use index too.
 */
static K_MUST_CHECK k_status catch_up_locked(size_t max, size_t *done)
{
	char **names;
	size_t n, first;
	GUARD(audit_list_logs(audit_w.dir, &names, &n));
	struct run r = {.max = max, .feed_memory = !atomic_load(&X.backlog_read)};
	k_status rc = start_file(names, n, &first);
	for (size_t i = first; i < n && k_ok(rc) && r.total < max; i++) {
		uint64_t off = strcmp(names[i], X.pos.file) == 0 ? X.pos.off : 0;
		rc = read_from(&r, names[i], off);
	}
	if (k_ok(rc))
		rc = batch_end(&r);
	else if (r.open)
		event_index_rollback(X.ix);
	audit_free_names(names, n);
	if (k_failed(rc)) /* the checkpoint on disk is the truth again */
		k_ignore(event_index_pos(X.ix, &X.pos));
	atomic_fetch_add(&indexed_total, r.total);
	*done = r.total;
	if (r.feed_memory)
		X.backlog_n += r.total;
	if (k_ok(rc) && r.total < max)
		backlog_end_locked();
	return rc;
}

k_status audit_index_sync(size_t max)
{
	if (X.ix == NULL)
		return K_E_UNSUPPORTED;
	if (!atomic_load(&X.backlog_read))
		return K_OK; /* the thread is reading the start's backlog: what is indexed stands */
	size_t done;
	pthread_mutex_lock(&X.mu);
	k_status rc = catch_up_locked(max, &done);
	pthread_mutex_unlock(&X.mu);
	return rc;
}

/* The index thread's nap between catch-ups: every_ms, or less once the side queue fills. */
static void nap_locked(void)
{
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_nsec += (long)(X.every_ms % 1000) * 1000000L;
	deadline.tv_sec += (time_t)(X.every_ms / 1000) + deadline.tv_nsec / 1000000000L;
	deadline.tv_nsec %= 1000000000L;
	while (!X.stopping && !audit_ixq_filling()) {
		struct timespec step;
		clock_gettime(CLOCK_MONOTONIC, &step);
		step.tv_nsec += INDEX_LOOK_MS * 1000000L;
		step.tv_sec += step.tv_nsec / 1000000000L;
		step.tv_nsec %= 1000000000L;
		bool last = step.tv_sec > deadline.tv_sec ||
			    (step.tv_sec == deadline.tv_sec && step.tv_nsec >= deadline.tv_nsec);
		if (pthread_cond_timedwait(&X.tcv, &X.tmu, last ? &deadline : &step) == ETIMEDOUT &&
		    last)
			return;
	}
}

static bool stop_asked(void)
{
	pthread_mutex_lock(&X.tmu);
	bool s = X.stopping;
	pthread_mutex_unlock(&X.tmu);
	return s;
}

/* After a failed catch-up during the backlog (no nap then): waits a round before retrying. */
static void pause_after_failure(void)
{
	if (atomic_load(&X.backlog_read))
		return;
	pthread_mutex_lock(&X.tmu);
	nap_locked();
	pthread_mutex_unlock(&X.tmu);
}

static void *index_main(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "kinko-index");
	pthread_mutex_lock(&X.tmu);
	while (!X.stopping) {
		if (atomic_load(&X.backlog_read))
			nap_locked(); /* the start's backlog goes on at once */
		pthread_mutex_unlock(&X.tmu);
		/* Batch by batch, so that a lookup waits for one batch at most, and a stop too. */
		for (size_t done = INDEX_BATCH; done == INDEX_BATCH && !stop_asked();) {
			pthread_mutex_lock(&X.mu);
			k_status rc = catch_up_locked(INDEX_BATCH, &done);
			pthread_mutex_unlock(&X.mu);
			if (k_failed(rc)) {
				LOG_DEBUG("audit: indexing failed: %s (retried)",
					  k_status_name(rc));
				pause_after_failure();
				break;
			}
		}
		pthread_mutex_lock(&X.tmu);
	}
	pthread_mutex_unlock(&X.tmu);
	return NULL;
}

static bool load_use(void *arg, const char *arn, const char *op, int64_t t, const char *event_id,
		     const char *request_id)
{
	size_t *n = arg;
	audit_lastuse_note_past(arn, op, t, event_id, request_id);
	(*n)++;
	return true;
}

/*
 * Loads the kept key uses, then reads at most one batch of the trail
 * after the checkpoint (a short backlog, as a crash leaves, is read
 * before the server listens); the thread reads the rest.
 */
static K_MUST_CHECK k_status take_up(void)
{
	size_t done = 0;
	X.t_open_ms = kclock_now_ms();
	X.start_t = kclock_now();
	X.start_seq = audit_w.next_seq > 0 ? audit_w.next_seq - 1 : 0;
	atomic_store(&X.backlog_read, false);
	X.uses_loaded = 0;
	X.backlog_n = 0;
	GUARD(event_index_pos(X.ix, &X.pos));
	X.from_seq = X.pos.seq;
	GUARD(event_index_each_use(X.ix, load_use, &X.uses_loaded));
	audit_lastuse_set_tracking_start(X.pos.oldest ? X.pos.oldest : kclock_now());
	pthread_mutex_lock(&X.mu);
	k_status rc = catch_up_locked(INDEX_BATCH, &done);
	pthread_mutex_unlock(&X.mu);
	if (k_ok(rc) && !atomic_load(&X.backlog_read))
		LOG_INFO("audit: index at record %llu of %llu: the rest is indexed after the "
			 "server listens",
			 (unsigned long long)X.pos.seq, (unsigned long long)X.start_seq);
	return rc;
}

static void index_free(void)
{
	audit_ixq_free();
	event_index_close(X.ix);
	X.ix = NULL;
	free(X.chunk);
	X.chunk = NULL;
	free(X.ops);
	X.ops = NULL;
	X.n_ops = 0;
}

k_status audit_index_open(const struct audit_options *o, struct kbuf *msg)
{
	const struct audit_op_name *ops = o->key_use_ops;
	size_t n_ops = o->n_key_use_ops;
	X.every_ms = o->index_ms > 0 ? o->index_ms : INDEX_EVERY_MS;
	X.close_max = o->index_close_max > 0 ? o->index_close_max : INDEX_CLOSE_MAX;
	char path[700];
	audit_path_of(AUDIT_INDEX_FILE, path, sizeof path);
	X.ops = calloc(n_ops > 0 ? n_ops : 1, sizeof *X.ops);
	X.chunk = malloc(INDEX_CHUNK);
	if (X.ops == NULL || X.chunk == NULL) {
		index_free();
		return K_E_INTERNAL;
	}
	if (n_ops > 0)
		memcpy(X.ops, ops, n_ops * sizeof *ops);
	X.n_ops = n_ops;
	k_status rc = event_index_open(path, &X.ix);
	if (k_ok(rc))
		rc = take_up();
	if (k_ok(rc))
		rc = audit_ixq_open(o->index_queue_bytes);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (k_ok(rc) && pthread_cond_init(&X.tcv, &attr) != 0)
		rc = K_E_INTERNAL;
	pthread_condattr_destroy(&attr);
	X.stopping = false;
	if (k_ok(rc) && pthread_create(&X.thread, NULL, index_main, NULL) != 0) {
		pthread_cond_destroy(&X.tcv);
		rc = K_E_INTERNAL;
	}
	if (k_failed(rc)) {
		kbuf_note(msg, "cannot open the audit index %s", path);
		index_free();
		return rc;
	}
	X.running = true;
	return K_OK;
}

/* A clean stop's last catch-up: at most INDEX_CLOSE_MAX records, the next start the rest. */
static K_MUST_CHECK k_status close_sync(void)
{
	size_t done;
	pthread_mutex_lock(&X.mu);
	k_status rc = catch_up_locked(X.close_max, &done);
	pthread_mutex_unlock(&X.mu);
	return rc;
}

void audit_index_close(void)
{
	if (X.running) {
		pthread_mutex_lock(&X.tmu);
		X.stopping = true;
		pthread_cond_signal(&X.tcv);
		pthread_mutex_unlock(&X.tmu);
		pthread_join(X.thread, NULL);
		pthread_cond_destroy(&X.tcv);
		X.running = false;
		if (k_failed(close_sync()))
			LOG_WARN(
				"audit: the index's last catch-up failed (done at the next start)");
	}
	index_free();
}

k_status audit_index_query(const struct event_index_query *q, event_index_hit_cb cb, void *arg)
{
	ENSURE(X.ix != NULL, K_E_UNSUPPORTED);
	return event_index_query(X.ix, q, cb, arg);
}

k_status audit_read_event(const char *file, uint64_t off, uint32_t len, uint64_t seq, json_t **rec)
{
	ENSURE(strchr(file, '/') == NULL && len < AUDIT_MAX_LINE, K_E_VALIDATION);
	char path[700];
	audit_path_of(file, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ENSURE(fd >= 0, K_E_NOT_FOUND);
	char *b = malloc(len > 0 ? len : 1);
	ssize_t got = b != NULL ? pread(fd, b, len, (off_t)off) : -1;
	close(fd);
	json_t *r = got == (ssize_t)len ? json_loadb(b, len, 0, NULL) : NULL;
	free(b);
	if (r == NULL || (uint64_t)json_integer_value(json_object_get(r, "kinkoSeq")) != seq ||
	    !json_is_object(json_object_get(r, "event"))) {
		json_decref(r);
		return K_E_NOT_FOUND;
	}
	*rec = r;
	return K_OK;
}
