/*
 * writer.c — the audit log writer: group commit, hash chain, rotation and
 * signed digests (see audit.h for the file formats).
 *
 * In "fsync" mode every caller queues an entry (its formatted event) and
 * waits on the condition variable. A waiter that finds no writer active
 * becomes the writer ("leader") for the whole queue: it assigns sequence
 * numbers, chains the records, writes them with one write(2) and one
 * fdatasync, then marks every entry done. Only the leader touches the file
 * state below `leader`; the mutex guards the queue and the leader flag and
 * is not held during that I/O.
 *
 * In "write" mode a caller instead writes its own record while holding the
 * mutex (and only when no leader is active), which makes it the writer for
 * that moment. It writes by copying the record into the ring, a file that
 * stays mapped (MAP_SHARED: the page cache a write(2) would fill, so the
 * record survives the process being killed); the flusher drains the ring
 * into the log file and fdatasyncs it (see "the ring" below). The copy
 * takes well under a microsecond and makes no system call.
 *
 * Either way the caller hashes its record's line up to the chain members
 * before it takes the mutex; the writer adds the chain members and
 * finishes the hash.
 *
 * Log files written by earlier builds, which mapped the log file itself,
 * may end in reserved space that reads as zero bytes when a crash left
 * them unsealed. Readers stop at the last complete line; recovery cuts
 * the zeros and a torn last line off.
 */
#include "audit/audit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/internal.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/lock.h"
#include "core/log.h"
#include "core/thread.h"
#include "crypto/crypto.h"
#include "metrics/metrics.h"
#include "core/banned.h"

#define DEFAULT_MAX_FILE_BYTES (64ull << 20)
#define DEFAULT_ROTATE_SECONDS 3600
#define MAX_BATCH_BYTES (256u << 20)
/* Appends a string literal ("" s does not compile for anything else). */
#define APPEND_LIT(b, s) kbuf_append((b), "" s, sizeof(s) - 1)

struct entry {
	const char *type;
	const char *json;
	size_t len;
	struct crypto_sha256_ctx *md; /* SHA-256 of the record's bytes before its chain members, by the caller */
	k_status rc;
	bool done;
	struct entry *next;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool leader;
	struct entry *head, *tail;

	/* Settings, fixed after audit_open. */
	char dir[512];
	enum audit_sync sync;
	uint64_t max_bytes;
	int64_t rotate_s;
	struct audit_signer *signer;

	/* Leader-only state (in write mode: under mu). */
	int fd;
	char cur_name[96];
	/* The current file's records (those in the ring too, in write mode) and its bytes on disk. */
	uint64_t cur_records, cur_first_seq, file_bytes;
	int64_t cur_opened;
	char cur_start_prev[65];
	uint64_t next_seq;
	char last_hash[65];
	char prev_digest_name[128];
	char prev_digest_sha[65];
	bool dirty;
	struct kbuf batch;
	/* Where the chain stands at the end of the file's bytes on disk: the next seq, the last hash. */
	uint64_t drained_seq;
	char drained_hash[65];
	char drained_file[96]; /* the file that holds the record before drained_seq */
	bool closed_clean;     /* audit_close sealed everything: a "stop" period digest follows */

	/* "write" mode's ring (see below), under mu. */
	int ring_fd;
	struct ring_header *rh; /* the mapped ring file, or NULL */
	uint8_t *ring;          /* its data, after the header page */
	uint64_t ring_size, ring_gen;
	int64_t drain_ms;       /* the flusher drains the ring this often */
	uint64_t rhead, rtail;  /* the stream's bytes written and drained */
	bool draining;          /* the flusher drains [rtail, claim_head) to claim_off, outside mu */
	bool drain_failing;     /* the last drain failed (logged once) */
	uint64_t claim_head, claim_off, claim_seq;
	char claim_hash[65];

	pthread_t flusher;
	bool flusher_started;
} W = {.mu = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP, .cv = PTHREAD_COND_INITIALIZER, .fd = -1,
       .ring_fd = -1};

static atomic_bool enabled;
static atomic_bool stopping;
static _Atomic uint64_t failures;

/* A write (or sync) of the log failed: counted for audit_write_failures() and /metrics. */
static void count_failure(void)
{
	atomic_fetch_add(&failures, 1);
	metrics_audit_failure();
}

bool audit_enabled(void)
{
	return atomic_load_explicit(&enabled, memory_order_relaxed);
}

const char *audit_dir(void)
{
	return W.dir;
}

uint64_t audit_write_failures(void)
{
	return atomic_load(&failures);
}

void audit_hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = 0;
}

void audit_sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t md[CRYPTO_SHA256_LEN];
	if (crypto_sha256(p, n, md) != K_OK)
		memset(md, 0, sizeof md);
	audit_hex(md, 32, out);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && strcmp(s + n - m, suf) == 0;
}

k_status audit_list_files(const char *dir, const char *prefix, const char *suffix, char ***names,
			  size_t *n)
{
	*names = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	ENSURE(d != NULL, K_E_NOT_FOUND);
	size_t cap = 0;
	k_status rc = K_OK;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || !has_suffix(de->d_name, suffix))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(*names, cap * sizeof *nn);
			ENSURE_GOTO(nn != NULL, K_E_INTERNAL);
			*names = nn;
		}
		(*names)[*n] = strdup(de->d_name);
		ENSURE_GOTO((*names)[*n] != NULL, K_E_INTERNAL);
		(*n)++;
	}
out:
	closedir(d);
	if (rc != K_OK) {
		audit_free_names(*names, *n);
		*names = NULL;
		*n = 0;
	}
	return rc;
}

k_status audit_list_logs(const char *dir, char ***names, size_t *n)
{
	GUARD(audit_list_files(dir, AUDIT_LOG_PREFIX, AUDIT_LOG_SUFFIX, names, n));
	if (*n > 0)
		qsort(*names, *n, sizeof **names, cmp_names);
	return K_OK;
}

void audit_free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

k_status audit_read_file(const char *path, struct kbuf *buf)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ENSURE(fd >= 0, K_E_NOT_FOUND);
	k_status rc = K_OK;
	char chunk[65536];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = K_E_INTERNAL;
			break;
		}
		if (r == 0)
			break;
		rc = kbuf_append(buf, chunk, (size_t)r);
		if (rc != K_OK)
			break;
	}
	close(fd);
	return rc;
}

static void path_of(const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", W.dir, name);
}

static void fsync_dir(void)
{
	int fd = open(W.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* Writes all of p at off; on failure, errno says why (a short write: ENOSPC). Logs nothing. */
static k_status pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = ENOSPC;
			return K_E_INTERNAL;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return K_OK;
}

/* Writes a small file durably under a temporary name, then renames it. */
static k_status write_file_atomic(const char *name, struct kslice data)
{
	char path[700], tmp[720];
	path_of(name, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ENSURE(fd >= 0, K_E_INTERNAL);
	k_status rc = pwrite_all(fd, data.ptr, data.len, 0);
	if (rc == K_OK && fsync(fd) != 0)
		rc = K_E_INTERNAL;
	close(fd);
	if (rc == K_OK && rename(tmp, path) != 0)
		rc = K_E_INTERNAL;
	if (rc != K_OK)
		unlink(tmp);
	else
		fsync_dir();
	return rc;
}

/*
 * A record line is {"event":…,"kinkoType":"…","kinkoSeq":N,"kinkoPrev":"…"}:
 * the chain members come last, so that the calling thread hashes the rest
 * of the line (by far the most of it) before it takes the writer's mutex,
 * and the writer only hashes the end. The caller's digest of the line up
 * to the chain members is in md; this adds them (tail), and returns the
 * line's hash in hex.
 */
static k_status finish_hash(struct crypto_sha256_ctx *md, const char *tail, size_t n, char out[65])
{
	uint8_t h[CRYPTO_SHA256_LEN];
	GUARD(crypto_sha256_update(md, tail, n));
	GUARD(crypto_sha256_end(md, h));
	audit_hex(h, 32, out);
	return K_OK;
}

/* The record's bytes before its chain members, each piece as it is hashed and written. */
#define RECORD_HEAD "{\"event\":"
#define RECORD_TYPE ",\"kinkoType\":\""
#define RECORD_SEQ "\",\"kinkoSeq\":"
#define RECORD_PREV ",\"kinkoPrev\":\""

/* Per thread: the digest context a caller hashes its record with, outside the mutex. */
static void *md_make(void)
{
	return crypto_sha256_ctx_new();
}

static void md_drop(void *p)
{
	crypto_sha256_ctx_free(p);
}

static struct kthread_slot md_slot = KTHREAD_SLOT_INIT(md_make, md_drop);

/* Hashes the record of e up to its chain members, into the calling thread's context. */
static k_status hash_record_head(struct entry *e)
{
	e->md = kthread_get(&md_slot);
	ENSURE(e->md != NULL, K_E_INTERNAL);
	GUARD(crypto_sha256_begin(e->md));
	GUARD(crypto_sha256_update(e->md, RECORD_HEAD, sizeof RECORD_HEAD - 1));
	GUARD(crypto_sha256_update(e->md, e->json, e->len));
	GUARD(crypto_sha256_update(e->md, RECORD_TYPE, sizeof RECORD_TYPE - 1));
	GUARD(crypto_sha256_update(e->md, e->type, strlen(e->type)));
	return K_OK;
}

static void digest_name_of(const char *log_name, char *out, size_t n)
{
	snprintf(out, n, "%s.digest", log_name);
}

/*
 * A log file that was rotated out and waits for its digest. Sealing reads
 * the whole file back and fdatasyncs it, which takes long enough (tens of
 * milliseconds for a full file) that it must not hold up the calls being
 * logged: the writer only switches to a new file and queues the old one;
 * the flusher thread seals the queue, in order (each digest names the one
 * before it).
 */
struct seal_job {
	int fd;
	char name[96];
	uint64_t bytes, records, first_seq, last_seq;
	char start_prev[65], last_hash[65];
	bool recovered;
};

#define MAX_PENDING_SEALS 8

static struct {
	pthread_mutex_t mu;      /* guards the queue */
	pthread_mutex_t seal_mu; /* one sealer at a time; guards W.prev_digest_* */
	struct seal_job q[MAX_PENDING_SEALS]; /* a ring: n jobs from q[head] */
	size_t head, n;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .seal_mu = PTHREAD_MUTEX_INITIALIZER};

/* Seals one file: a digest naming its bytes, hash, records, seq range and chain ends, linked to the previous digest, signed. */
static k_status seal_file(const struct seal_job *j)
{
	char path[700];
	path_of(j->name, path, sizeof path);
	if (j->records == 0) {
		close(j->fd);
		unlink(path);
		return K_OK;
	}
	/* Cuts off whatever lies past the records: a failed drain's torn write. */
	ENSURE(ftruncate(j->fd, (off_t)j->bytes) == 0 && fdatasync(j->fd) == 0, K_E_INTERNAL);
	/*
	 * Version 2: the file's bytes are committed by the chain (the last
	 * record's hash covers every record before it, and the byte and
	 * record counts fix where the lines fall), so the file is not read
	 * back to hash it again, as version 1 did (fileSha256).
	 */
	char when[32];
	audit_iso8601(kclock_now(), when);

	json_t *d = json_object();
	ENSURE(d != NULL, K_E_INTERNAL);
	json_object_set_new(d, "kinkoDigestVersion", json_integer(2));
	json_object_set_new(d, "logFile", json_string(j->name));
	json_object_set_new(d, "fileBytes", json_integer((json_int_t)j->bytes));
	json_object_set_new(d, "records", json_integer((json_int_t)j->records));
	json_object_set_new(d, "firstSeq", json_integer((json_int_t)j->first_seq));
	json_object_set_new(d, "lastSeq", json_integer((json_int_t)j->last_seq));
	json_object_set_new(d, "startPrevHash", json_string(j->start_prev));
	json_object_set_new(d, "lastRecordHash", json_string(j->last_hash));
	json_object_set_new(d, "previousDigestFile",
			    W.prev_digest_name[0] ? json_string(W.prev_digest_name) : json_null());
	json_object_set_new(d, "previousDigestSha256",
			    W.prev_digest_sha[0] ? json_string(W.prev_digest_sha) : json_null());
	json_object_set_new(d, "sealedAt", json_string(when));
	json_object_set_new(d, "recovered", json_boolean(j->recovered));
	json_object_set_new(d, "keyFingerprint", json_string(audit_signer_fingerprint(W.signer)));

	k_status rc = K_OK;
	struct kbuf sig;
	kbuf_init(&sig, 256);
	char *canon = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	char *final = NULL;
	ENSURE_GOTO(canon != NULL, K_E_INTERNAL);
	GUARD_GOTO(audit_sign(W.signer, kslice_cstr(canon), &sig));
	json_object_set_new(d, "signature", json_string(kbuf_cstr(&sig)));
	final = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	ENSURE_GOTO(final != NULL, K_E_INTERNAL);
	char dname[128];
	digest_name_of(j->name, dname, sizeof dname);
	GUARD_GOTO(write_file_atomic(dname, kslice_cstr(final)));
	snprintf(W.prev_digest_name, sizeof W.prev_digest_name, "%s", dname);
	audit_sha256_hex(final, strlen(final), W.prev_digest_sha);
	close(j->fd);
	LOG_INFO("audit: sealed %s (%" PRIu64 " records)", j->name, j->records);
out:
	if (canon != NULL)
		kjson_free(canon);
	if (final != NULL)
		kjson_free(final);
	kbuf_release(&sig);
	json_decref(d);
	return rc;
}

/* Seals the queued files in order; stops at the first failure (retried on the next call). */
static k_status seal_pending(void)
{
	k_status rc = K_OK;
	pthread_mutex_lock(&S.seal_mu);
	for (;;) {
		pthread_mutex_lock(&S.mu);
		if (S.n == 0) {
			pthread_mutex_unlock(&S.mu);
			break;
		}
		struct seal_job j = S.q[S.head];
		pthread_mutex_unlock(&S.mu);
		rc = seal_file(&j);
		if (rc != K_OK) {
			LOG_WARN("audit: could not seal %s yet; will retry", j.name);
			break;
		}
		pthread_mutex_lock(&S.mu);
		S.head = (S.head + 1) % MAX_PENDING_SEALS;
		S.n--;
		pthread_mutex_unlock(&S.mu);
	}
	pthread_mutex_unlock(&S.seal_mu);
	return rc;
}

static void job_from_current(struct seal_job *j, bool recovered)
{
	j->fd = W.fd;
	snprintf(j->name, sizeof j->name, "%s", W.cur_name);
	j->bytes = W.file_bytes;
	j->records = W.cur_records;
	j->first_seq = W.cur_first_seq;
	j->last_seq = W.next_seq - 1;
	snprintf(j->start_prev, sizeof j->start_prev, "%s", W.cur_start_prev);
	snprintf(j->last_hash, sizeof j->last_hash, "%s", W.last_hash);
	j->recovered = recovered;
	W.fd = -1;
	W.dirty = false;
}

/*
 * Rotation: queues the current file for sealing by the flusher. With the
 * queue full (the disk cannot keep up, or sealing fails), seals what is
 * queued first, on this thread. In write mode the ring is drained first.
 */
static k_status rotate_out(void)
{
	pthread_mutex_lock(&S.mu);
	bool full = S.n == MAX_PENDING_SEALS;
	pthread_mutex_unlock(&S.mu);
	if (full)
		GUARD(seal_pending());
	pthread_mutex_lock(&S.mu);
	job_from_current(&S.q[(S.head + S.n) % MAX_PENDING_SEALS], false);
	S.n++;
	pthread_mutex_unlock(&S.mu);
	return K_OK;
}

/* Seals every queued file and then the current one, now (start-up recovery, shutdown). */
static k_status seal_current(bool recovered)
{
	GUARD(seal_pending());
	if (W.fd < 0)
		return K_OK;
	struct seal_job j;
	int fd = W.fd;
	job_from_current(&j, recovered);
	pthread_mutex_lock(&S.seal_mu);
	k_status rc = seal_file(&j);
	pthread_mutex_unlock(&S.seal_mu);
	if (rc != K_OK)
		W.fd = fd; /* still the writer's file; sealed later */
	return rc;
}

/*
 * Starts a new log file where the drained part of the chain ends: after a
 * file left behind with records still in the ring (write mode), those
 * records belong to the new file.
 */
static k_status open_new_file(void)
{
	snprintf(W.cur_name, sizeof W.cur_name, AUDIT_LOG_PREFIX "%020" PRIu64 AUDIT_LOG_SUFFIX,
		 W.drained_seq);
	char path[700];
	path_of(W.cur_name, path, sizeof path);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		LOG_ERROR("audit: cannot create %s: %s", path, strerror(errno));
		return K_E_INTERNAL;
	}
	fsync_dir();
	W.fd = fd;
	W.file_bytes = 0;
	W.cur_records = W.next_seq - W.drained_seq;
	W.cur_first_seq = W.drained_seq;
	W.cur_opened = kclock_now();
	snprintf(W.cur_start_prev, sizeof W.cur_start_prev, "%s", W.drained_hash);
	return K_OK;
}

/* The chain now stands in the current file's bytes at seq (the next one) and hash. */
static void note_drained(uint64_t seq, const char *hash)
{
	W.drained_seq = seq;
	memcpy(W.drained_hash, hash, sizeof W.drained_hash);
	memcpy(W.drained_file, W.cur_name, sizeof W.drained_file);
}

/* The chain's last record (all of it written), for a period digest. */
static void drained_head(struct audit_head *h)
{
	memset(h, 0, sizeof *h);
	h->seq = W.drained_seq - 1;
	memcpy(h->hash, W.drained_hash, sizeof h->hash);
	if (h->seq > 0)
		memcpy(h->file, W.drained_file, sizeof h->file);
}

/* The current file's size once the ring's records (write mode) are drained into it. */
static uint64_t cur_bytes(void)
{
	return W.file_bytes + (W.rhead - W.rtail);
}

static bool rotation_due(void)
{
	return W.fd >= 0 && W.cur_records > 0 &&
	       (cur_bytes() >= W.max_bytes || kclock_now() - W.cur_opened >= W.rotate_s);
}

/*
 * "write" mode: the ring. Each call copies its chained record into a ring
 * file (RING_FILE, in the log folder) that stays mapped, MAP_SHARED, for
 * the life of the process: the record is in the page cache, and survives
 * the process being killed, before the call is answered. The flusher
 * thread drains the ring into the current log file with plain writes
 * every W.drain_ms (RING_DRAIN_MS), and every AUDIT_FLUSH_MS runs
 * fdatasync on the log file. A call makes no system call and maps or
 * unmaps nothing: on a virtual machine, mapping the log files themselves a
 * window at a time spent most of the audit's time in page-table work, and
 * a drain of 64 KiB by the call that filled it cost more than its own CPU
 * time in the throughput of the other calls (docs/PERFORMANCE.md).
 *
 * The ring file is a header page (struct ring_header), then `size` bytes
 * used as a circular byte stream. The records of the stream's bytes
 * [tail, head) are written but not yet drained: head moves once a record
 * is whole, tail once its bytes are in the log file. A start after a kill
 * appends those records (the ones the log does not hold yet) to the log.
 *
 * A drain claims [tail, head) under the writer's mutex and writes it
 * outside the mutex; `draining` keeps that range, the file and its offset
 * fixed meanwhile, and calls go on into the free part of the ring. A call
 * that finds the ring full drains it itself, under the mutex. A failed
 * drain leaves the records in the ring and is tried again; a call fails
 * only when the ring has no room left (fail-closed): on a full disk, calls
 * fail once the ring is full, and go on by themselves when space returns.
 * Rotation, sealing and the flusher's sync drain everything first, so the
 * ring only holds records of the current file.
 */
#define RING_FILE "kinko-audit.ring"
#define RING_MAGIC "KINKORNG"
#define RING_HEADER 4096u
#define RING_BYTES (4u << 20)
#define RING_DRAIN_MS 10
/* A record's bytes around its event JSON: {"event":…,"kinkoType":"…","kinkoSeq":N,"kinkoPrev":"…"}\n */
#define RECORD_OVERHEAD 160u

struct ring_header {
	char magic[8];
	uint32_t version;
	uint32_t unused;
	uint64_t size; /* data bytes after the header page */
	uint64_t head; /* stream bytes written (always a record's end) */
	uint64_t tail; /* stream bytes drained into the log */
};

static void ring_unmap(void)
{
	if (W.rh != NULL)
		munmap(W.rh, RING_HEADER + W.ring_size);
	if (W.ring_fd >= 0)
		close(W.ring_fd);
	W.rh = NULL;
	W.ring = NULL;
	W.ring_fd = -1;
	W.rhead = W.rtail = 0;
}

/* Creates (or resets) the ring file, reserves its space and maps it. */
static k_status ring_open(void)
{
	char path[700];
	path_of(RING_FILE, path, sizeof path);
	size_t total = RING_HEADER + W.ring_size;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int e = fd < 0 ? errno : ftruncate(fd, 0) != 0 ? errno : posix_fallocate(fd, 0, (off_t)total);
	void *m = MAP_FAILED;
	if (e == 0) {
		m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		e = m == MAP_FAILED ? errno : 0;
	}
	if (e != 0) {
		LOG_ERROR("audit: cannot set up %s: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return K_E_INTERNAL;
	}
	(void)madvise(m, total, MADV_POPULATE_WRITE); /* a fault per page otherwise */
	W.rh = m;
	W.ring = (uint8_t *)m + RING_HEADER;
	W.ring_fd = fd;
	W.ring_gen++;
	memcpy(W.rh->magic, RING_MAGIC, sizeof W.rh->magic);
	W.rh->version = 1;
	W.rh->size = W.ring_size;
	W.rh->head = W.rh->tail = 0;
	W.rhead = W.rtail = 0;
	fsync_dir();
	return K_OK;
}

/*
 * The copy into the ring. A SIGBUS while copying (the ring file cut short
 * underneath kinko, a page the file system refuses to make writable)
 * jumps back here instead of killing the process; SIGBUS anywhere else
 * goes to the handler that was there before.
 */
static _Thread_local sigjmp_buf *copy_jump;
static struct sigaction old_sigbus;
static atomic_bool sigbus_installed;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	(void)si;
	(void)uctx;
	if (copy_jump != NULL)
		siglongjmp(*copy_jump, 1);
	/* Not ours: the previous disposition handles the fault when it repeats. */
	sigaction(sig, &old_sigbus, NULL);
}

static void install_sigbus(void)
{
	if (atomic_exchange(&sigbus_installed, true))
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigbus;
	sigemptyset(&sa.sa_mask);
	/* SA_NODEFER: siglongjmp(…, 0 saved mask) must not leave SIGBUS blocked. */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGBUS, &sa, &old_sigbus);
}

/* Copies a batch to the ring at head and then moves the header's head; false if the copy faulted. */
static bool copy_to_ring(const uint8_t *p, size_t n)
{
	sigjmp_buf jb;
	if (sigsetjmp(jb, 0) != 0) {
		copy_jump = NULL;
		return false;
	}
	copy_jump = &jb;
	atomic_signal_fence(memory_order_seq_cst);
	uint64_t at = W.rhead % W.ring_size;
	size_t first = n < W.ring_size - at ? n : (size_t)(W.ring_size - at);
	memcpy(W.ring + at, p, first);
	memcpy(W.ring, p + first, n - first);
	/* Only now: a restart trusts every byte before head. */
	__atomic_store_n(&W.rh->head, W.rhead + n, __ATOMIC_RELEASE);
	atomic_signal_fence(memory_order_seq_cst);
	copy_jump = NULL;
	return true;
}

/*
 * Writes the stream's bytes [from, to) to the current file at off. If the
 * file is shorter than off, someone cut it underneath kinko: *cut, and
 * nothing is written.
 */
static k_status write_out(uint64_t from, uint64_t to, uint64_t off, bool *cut, int *err)
{
	struct stat st;
	*cut = fstat(W.fd, &st) == 0 && (uint64_t)st.st_size < off;
	*err = 0;
	if (*cut)
		return K_E_INTERNAL;
	uint64_t at = from % W.ring_size, n = to - from;
	uint64_t first = n < W.ring_size - at ? n : W.ring_size - at;
	if (pwrite_all(W.fd, W.ring + at, (size_t)first, off) == K_OK &&
	    pwrite_all(W.fd, W.ring, (size_t)(n - first), off + first) == K_OK)
		return K_OK;
	*err = errno;
	return K_E_INTERNAL;
}

/*
 * Under the mutex: the outcome of writing the stream up to `to` (where the
 * chain stands at seq and hash) at file offset off. On failure the
 * records stay in the ring; a cut file is left unsealed and the next
 * drain starts a new one.
 */
static k_status drain_finish(k_status rc, bool cut, int err, uint64_t to, uint64_t seq,
			     const char *hash, uint64_t off)
{
	if (rc == K_OK) {
		if (W.drain_failing)
			LOG_INFO("audit: %s can be written again; the ring is drained", W.cur_name);
		W.drain_failing = false;
		W.file_bytes = off + (to - W.rtail);
		W.rtail = to;
		__atomic_store_n(&W.rh->tail, to, __ATOMIC_RELEASE);
		note_drained(seq, hash);
		W.dirty = true;
		return K_OK;
	}
	if (cut) {
		LOG_ERROR("audit: %s was cut short underneath kinko; leaving it unsealed and going on "
			  "in a new file", W.cur_name);
		close(W.fd);
		W.fd = -1;
		W.dirty = false;
	} else {
		/* Logged once until a drain succeeds again: the flusher retries every few ms. */
		if (!W.drain_failing)
			LOG_ERROR("audit: cannot write %s (%s); its records stay in the ring, and calls "
				  "fail once it is full", W.cur_name, strerror(err));
		W.drain_failing = true;
		/* Best effort: a torn write left here is written over by the next drain. */
		(void)!ftruncate(W.fd, (off_t)off);
	}
	return rc;
}

/* Under the mutex, with no drain in flight: drains the whole ring now. */
static k_status drain_locked(void)
{
	ENSURE(!W.draining, K_E_INTERNAL);
	while (W.rhead != W.rtail) {
		if (W.fd < 0)
			GUARD(open_new_file());
		bool cut;
		int err;
		uint64_t off = W.file_bytes;
		k_status rc = write_out(W.rtail, W.rhead, off, &cut, &err);
		rc = drain_finish(rc, cut, err, W.rhead, W.next_seq, W.last_hash, off);
		if (rc != K_OK && !cut)
			return rc;
	}
	return K_OK;
}

/*
 * The flusher's drain, every W.drain_ms: claims what the ring holds under
 * the mutex and writes it outside, so that the calls meanwhile neither
 * wait nor make a system call for it.
 */
static void drain_step(void)
{
	klock(&W.mu);
	bool claim = W.rh != NULL && !W.draining && W.rhead != W.rtail;
	if (claim && W.fd < 0 && open_new_file() != K_OK)
		claim = false; /* logged; the next round tries again */
	if (claim) {
		W.draining = true;
		W.claim_head = W.rhead;
		W.claim_off = W.file_bytes;
		W.claim_seq = W.next_seq;
		memcpy(W.claim_hash, W.last_hash, sizeof W.claim_hash);
	}
	pthread_mutex_unlock(&W.mu);
	if (!claim)
		return;
	bool cut;
	int err;
	k_status rc = write_out(W.rtail, W.claim_head, W.claim_off, &cut, &err);
	klock(&W.mu);
	(void)drain_finish(rc, cut, err, W.claim_head, W.claim_seq, W.claim_hash, W.claim_off);
	W.draining = false;
	pthread_cond_broadcast(&W.cv);
	pthread_mutex_unlock(&W.mu);
}

/* Whether a call about to write a record of at most n bytes must first wait for the drain in flight. */
static bool must_wait_for_drain(size_t n)
{
	return W.draining &&
	       (rotation_due() || n > W.ring_size / 2 || W.rhead + n - W.rtail > W.ring_size);
}

/* The ring's copy faulted: what it held and the log did not is lost. A new ring and file follow. */
static void ring_fault(void)
{
	LOG_ERROR("audit: writing the ring %s faulted (the file was cut short or its file system "
		  "refused the write); %" PRIu64 " bytes of records not yet in %s are lost; leaving "
		  "it unsealed and going on with a new ring and file",
		  RING_FILE, W.rhead - W.rtail, W.cur_name);
	ring_unmap();
	if (W.fd >= 0)
		close(W.fd);
	W.fd = -1;
	W.dirty = false;
	W.drained_seq = W.next_seq;
	memcpy(W.drained_hash, W.last_hash, sizeof W.drained_hash);
}

/*
 * Write mode: puts one chained batch (ending at seq, hash) into the ring,
 * or one too big for it straight into the file. The caller has made sure
 * (must_wait_for_drain) that no drain in flight is in the way.
 */
static k_status write_ringed(const uint8_t *p, size_t n, uint64_t seq, const char *hash)
{
	if (n > W.ring_size / 2) {
		GUARD(drain_locked());
		if (W.fd < 0)
			GUARD(open_new_file());
		if (pwrite_all(W.fd, p, n, W.file_bytes) != K_OK) {
			LOG_ERROR("audit: writing %s failed: %s", W.cur_name, strerror(errno));
			(void)!ftruncate(W.fd, (off_t)W.file_bytes);
			return K_E_INTERNAL;
		}
		W.file_bytes += n;
		note_drained(seq, hash);
		W.dirty = true;
		return K_OK;
	}
	if (W.rhead + n - W.rtail > W.ring_size)
		GUARD(drain_locked()); /* the ring is full: the disk fell behind or fails */
	if (!copy_to_ring(p, n)) {
		uint64_t gen = W.ring_gen;
		while (W.draining) /* a drain reading the ring must end before it is unmapped */
			pthread_cond_wait(&W.cv, &W.mu);
		if (W.ring_gen == gen)
			ring_fault();
		return K_E_INTERNAL;
	}
	W.rhead += n;
	return K_OK;
}

/* The leader's work: chain, write and (fsync mode) sync one batch. */
static k_status write_batch(struct entry *list)
{
	bool ringed = W.sync == AUDIT_SYNC_WRITE;
	if (ringed && W.rh == NULL)
		GUARD(ring_open());
	/* (A drain in flight holds rotation off: the call after it rotates.) */
	if (rotation_due() && !W.draining) {
		if (ringed)
			GUARD(drain_locked());
		if (rotation_due())
			GUARD(rotate_out());
	}
	if (W.fd < 0)
		GUARD(open_new_file());
	kbuf_clear(&W.batch); /* redacted records: nothing to wipe */
	uint64_t seq = W.next_seq;
	char hash[65];
	memcpy(hash, W.last_hash, sizeof hash);
	uint64_t n = 0;
	for (struct entry *e = list; e != NULL; e = e->next) {
		/* The chain members: ","kinkoSeq":N,"kinkoPrev":"<hash>"} (the type's closing quote first). */
		char tail[128], num[24];
		size_t tl = 0, nl = sizeof num;
		for (uint64_t v = seq; nl == sizeof num || v > 0; v /= 10)
			num[--nl] = (char)('0' + v % 10);
#define PUT(p, n) (memcpy(tail + tl, (p), (n)), tl += (n))
		PUT(RECORD_SEQ, sizeof RECORD_SEQ - 1);
		PUT(num + nl, sizeof num - nl);
		PUT(RECORD_PREV, sizeof RECORD_PREV - 1);
		PUT(hash, 64);
		PUT("\"}", 2);
#undef PUT
		GUARD(finish_hash(e->md, tail, tl, hash));
		GUARD(APPEND_LIT(&W.batch, RECORD_HEAD));
		GUARD(kbuf_append(&W.batch, e->json, e->len));
		GUARD(APPEND_LIT(&W.batch, RECORD_TYPE));
		GUARD(kbuf_append_str(&W.batch, e->type));
		GUARD(kbuf_append(&W.batch, tail, tl));
		GUARD(kbuf_append_byte(&W.batch, '\n'));
		seq++;
		n++;
	}
	if (ringed) {
		GUARD(write_ringed(W.batch.ptr, W.batch.len, seq, hash));
		goto written;
	}
	k_status rc = pwrite_all(W.fd, W.batch.ptr, W.batch.len, W.file_bytes);
	if (rc != K_OK)
		LOG_ERROR("audit: writing %s failed: %s", W.cur_name, strerror(errno));
	if (rc == K_OK && W.sync == AUDIT_SYNC_FSYNC && fdatasync(W.fd) != 0) {
		LOG_ERROR("audit: fdatasync failed: %s", strerror(errno));
		rc = K_E_INTERNAL;
	}
	if (rc != K_OK) {
		/* Cut back to the last good record so no torn or unacknowledged line stays. */
		if (ftruncate(W.fd, (off_t)W.file_bytes) != 0) {
			LOG_ERROR("audit: cannot cut %s back after a failed write; starting a new file",
				  W.cur_name);
			close(W.fd);
			W.fd = -1;
		}
		return rc;
	}
	W.file_bytes += W.batch.len;
	note_drained(seq, hash);
written:
	W.cur_records += n;
	W.next_seq = seq;
	memcpy(W.last_hash, hash, sizeof W.last_hash);
	return K_OK;
}

k_status audit_writer_append(const char *type, const char *json, size_t len)
{
	struct entry me = {.type = type, .json = json, .len = len, .rc = K_E_INTERNAL};
	if (hash_record_head(&me) != K_OK) {
		count_failure();
		return K_E_INTERNAL;
	}
	klock(&W.mu);
	if (W.sync == AUDIT_SYNC_WRITE) {
		/*
		 * "write" mode: copying a record into the ring takes well under
		 * a microsecond, so the caller writes its own record under the
		 * (briefly spinning) mutex. Handing it to a leader through the
		 * condition variable would cost a sleep and a wake-up whenever
		 * two calls meet, which is more than the write itself. (No
		 * leader in this mode: as_leader holds the mutex instead.)
		 */
		while (must_wait_for_drain(len + RECORD_OVERHEAD))
			pthread_cond_wait(&W.cv, &W.mu);
		k_status rc = write_batch(&me);
		pthread_mutex_unlock(&W.mu);
		if (rc != K_OK) {
			count_failure();
		}
		return rc;
	}
	if (W.tail != NULL)
		W.tail->next = &me;
	else
		W.head = &me;
	W.tail = &me;
	while (!me.done) {
		if (W.leader) {
			pthread_cond_wait(&W.cv, &W.mu);
			continue;
		}
		W.leader = true;
		struct entry *list = W.head;
		W.head = W.tail = NULL;
		pthread_mutex_unlock(&W.mu);

		k_status rc = write_batch(list);
		if (rc != K_OK) {
			count_failure();
		}
		pthread_mutex_lock(&W.mu);
		for (struct entry *e = list, *next; e != NULL; e = next) {
			next = e->next;
			e->rc = rc;
			e->done = true;
		}
		W.leader = false;
		pthread_cond_broadcast(&W.cv);
	}
	pthread_mutex_unlock(&W.mu);
	return me.rc;
}

/*
 * Runs fn with the writer's state to itself: as the leader in fsync mode
 * (waiting for any batch in flight); in write mode under the mutex, which
 * calls write under, with no drain in flight.
 */
static void as_leader(void (*fn)(void))
{
	pthread_mutex_lock(&W.mu);
	while (W.leader || W.draining)
		pthread_cond_wait(&W.cv, &W.mu);
	if (W.sync == AUDIT_SYNC_WRITE) {
		fn();
		pthread_mutex_unlock(&W.mu);
		return;
	}
	W.leader = true;
	pthread_mutex_unlock(&W.mu);
	fn();
	pthread_mutex_lock(&W.mu);
	W.leader = false;
	pthread_cond_broadcast(&W.cv);
	pthread_mutex_unlock(&W.mu);
}

/* Under the leader role: drains the ring (write mode); false if records stay in it. */
static bool drained(void)
{
	return W.rh == NULL || drain_locked() == K_OK;
}

/*
 * Under the leader role: a duplicate of the file to sync, so the sync
 * itself blocks no writer, and the chain's head in the bytes it covers
 * (what the next period digest may commit to).
 */
static int sync_fd = -1;
static struct audit_head sync_head;

static void grab_for_sync(void)
{
	/* Write mode: the flusher drained the ring (drain_step) just before, outside the mutex. */
	sync_fd = -1;
	drained_head(&sync_head);
	if (W.fd >= 0 && W.dirty) {
		sync_fd = dup(W.fd);
		W.dirty = false;
	}
}

static void rotate_if_due(void)
{
	if (rotation_due() && (!drained() || rotate_out() != K_OK))
		LOG_WARN("audit: could not rotate %s yet; will retry", W.cur_name);
}

static void drain_for_readers(void)
{
	(void)drained();
}

void audit_drain(void)
{
	if (audit_enabled() && W.sync == AUDIT_SYNC_WRITE)
		as_leader(drain_for_readers);
}

/* Stops the flusher's nap at shutdown. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
} Z = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Sleeps ms milliseconds; false if kinko is stopping. */
static bool nap(int64_t ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&Z.mu);
	while (!atomic_load(&stopping) && pthread_cond_timedwait(&Z.cv, &Z.mu, &until) == 0)
		;
	pthread_mutex_unlock(&Z.mu);
	return !atomic_load(&stopping);
}

/*
 * The flusher: in "write" mode, drains the ring every W.drain_ms, and
 * every AUDIT_FLUSH_MS fdatasyncs what was drained (on a duplicate
 * descriptor, outside the mutex, so requests keep flowing meanwhile); in
 * both modes, rotation by age when no call comes to do it.
 */
static void *flusher_main(void *arg)
{
	(void)arg;
	bool ringed = W.sync == AUDIT_SYNC_WRITE;
	int64_t step_ms = ringed ? W.drain_ms : AUDIT_FLUSH_MS;
	int64_t since_sync = 0;
	while (!atomic_load(&stopping)) {
		if (!nap(step_ms))
			break;
		if (ringed) {
			drain_step();
			since_sync += step_ms;
			if (since_sync < AUDIT_FLUSH_MS)
				continue;
			since_sync = 0;
		}
		as_leader(grab_for_sync);
		bool synced = true;
		if (sync_fd >= 0) {
			if (fdatasync(sync_fd) != 0) {
				LOG_ERROR("audit: background fdatasync failed: %s", strerror(errno));
				count_failure();
				synced = false;
			}
			close(sync_fd);
			sync_fd = -1;
		}
		as_leader(rotate_if_due);
		/*
		 * Outside the leader role: calls keep being logged meanwhile.
		 * A period digest only once the files before the head are
		 * sealed (so on disk) and the head's own file synced.
		 */
		bool sealed = seal_pending() == K_OK;
		int64_t now = kclock_now_ms();
		if (sealed && synced && audit_period_due(now)) {
			k_status prc = audit_period_write(AUDIT_PERIOD_TICK, &sync_head, 0, now);
			(void)prc; /* logged; the next round tries again, its span the longer */
		}
	}
	return NULL;
}

/* Reads a digest file; K_OK and the parsed document, or an error. */
static k_status load_digest(const char *name, json_t **out, char sha[65])
{
	char path[700];
	path_of(name, path, sizeof path);
	struct kbuf b;
	kbuf_init(&b, 1u << 20);
	k_status rc = audit_read_file(path, &b);
	if (rc == K_OK) {
		audit_sha256_hex(b.ptr, b.len, sha);
		*out = json_loadb((const char *)b.ptr, b.len, 0, NULL);
		if (*out == NULL)
			rc = K_E_INTERNAL;
	}
	kbuf_release(&b);
	return rc;
}

/*
 * Takes up a file that a crash left unsealed: cuts a torn last line,
 * rebuilds the file state from its records, and seals it as "recovered".
 */
static k_status recover_unsealed(const char *name)
{
	char path[700];
	path_of(name, path, sizeof path);
	struct kbuf b;
	kbuf_init(&b, 1ull << 34);
	k_status rc = audit_read_file(path, &b);
	if (rc != K_OK) {
		kbuf_release(&b);
		return rc;
	}
	size_t used = b.len, good;
	while (used > 0 && b.ptr[used - 1] == 0)
		used--; /* space reserved ahead by earlier builds' write mode, never written */
	good = used;
	while (good > 0 && b.ptr[good - 1] != '\n')
		good--;
	if (good != used)
		LOG_WARN("audit: %s ends in an incomplete record (%zu bytes); cutting it", name,
			 used - good);
	if (good != b.len) {
		if (truncate(path, (off_t)good) != 0) {
			kbuf_release(&b);
			return K_E_INTERNAL;
		}
	}
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		kbuf_release(&b);
		return K_E_INTERNAL;
	}
	W.fd = fd;
	snprintf(W.cur_name, sizeof W.cur_name, "%s", name);
	W.file_bytes = good;
	W.cur_records = 0;
	W.cur_opened = kclock_now();
	size_t pos = 0;
	while (pos < good) {
		const uint8_t *nl = memchr(b.ptr + pos, '\n', good - pos);
		size_t len = (size_t)(nl - (b.ptr + pos));
		json_t *rec = json_loadb((const char *)b.ptr + pos, len, 0, NULL);
		json_int_t seq = json_integer_value(json_object_get(rec, "kinkoSeq"));
		const char *prev = json_string_value(json_object_get(rec, "kinkoPrev"));
		if (W.cur_records == 0) {
			W.cur_first_seq = (uint64_t)seq;
			snprintf(W.cur_start_prev, sizeof W.cur_start_prev, "%s", prev ? prev : "");
		}
		if (rec != NULL && seq > 0)
			W.next_seq = (uint64_t)seq + 1;
		audit_sha256_hex(b.ptr + pos, len, W.last_hash);
		json_decref(rec);
		W.cur_records++;
		pos += len + 1;
	}
	kbuf_release(&b);
	return seal_current(true);
}

/* Finds where the chain stands: the last sealed digest, sealing a crashed file first. */
static k_status find_chain(void)
{
	memset(W.last_hash, '0', 64);
	W.last_hash[64] = 0;
	W.next_seq = 1;
	W.prev_digest_name[0] = 0;
	W.prev_digest_sha[0] = 0;
	char **names;
	size_t n;
	GUARD(audit_list_logs(W.dir, &names, &n));
	k_status rc = K_OK;
	/* The newest digest before the last file gives the chain state. */
	for (size_t i = n; i-- > 0;) {
		char dname[128];
		digest_name_of(names[i], dname, sizeof dname);
		json_t *d = NULL;
		char sha[65];
		if (load_digest(dname, &d, sha) != K_OK)
			continue;
		W.next_seq = (uint64_t)json_integer_value(json_object_get(d, "lastSeq")) + 1;
		const char *h = json_string_value(json_object_get(d, "lastRecordHash"));
		snprintf(W.last_hash, sizeof W.last_hash, "%s", h ? h : "");
		snprintf(W.prev_digest_name, sizeof W.prev_digest_name, "%s", dname);
		snprintf(W.prev_digest_sha, sizeof W.prev_digest_sha, "%s", sha);
		snprintf(W.cur_name, sizeof W.cur_name, "%s", names[i]); /* holds the chain's head */
		json_decref(d);
		/* Files after it were left unsealed by a crash: seal them in order. */
		for (size_t j = i + 1; j < n && rc == K_OK; j++)
			rc = recover_unsealed(names[j]);
		audit_free_names(names, n);
		return rc;
	}
	for (size_t j = 0; j < n && rc == K_OK; j++)
		rc = recover_unsealed(names[j]);
	audit_free_names(names, n);
	return rc;
}

/*
 * A kill can leave records in the ring that never reached the log: after
 * the crashed files are sealed, the ring's records that continue the
 * chain go into a file of their own, sealed as recovered. The ring is
 * then reset (write mode maps it again; fsync mode removes it).
 */
static k_status recover_ring(void)
{
	char path[700];
	path_of(RING_FILE, path, sizeof path);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? K_OK : K_E_INTERNAL;
	struct ring_header h;
	uint8_t *buf = NULL;
	k_status rc = K_OK;
	bool ok = pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h &&
		  memcmp(h.magic, RING_MAGIC, sizeof h.magic) == 0 && h.version == 1 &&
		  h.size > 0 && h.size <= RING_BYTES && h.tail <= h.head && h.head - h.tail <= h.size;
	if (!ok) {
		LOG_WARN("audit: %s is not a ring kinko wrote; leaving it out", RING_FILE);
		goto reset;
	}
	if (h.head == h.tail)
		goto reset;
	uint64_t at = h.tail % h.size, n = h.head - h.tail;
	uint64_t first = n < h.size - at ? n : h.size - at;
	buf = malloc((size_t)n);
	if (buf == NULL || pread(fd, buf, (size_t)first, (off_t)(RING_HEADER + at)) != (ssize_t)first ||
	    pread(fd, buf + first, (size_t)(n - first), RING_HEADER) != (ssize_t)(n - first)) {
		rc = K_E_INTERNAL;
		goto out;
	}
	size_t pos = 0, keep = 0, kept = 0, dropped = 0;
	while (pos < n) {
		const uint8_t *nl = memchr(buf + pos, '\n', (size_t)n - pos);
		size_t len = nl != NULL ? (size_t)(nl - (buf + pos)) : (size_t)n - pos;
		json_t *rec = nl != NULL ? json_loadb((const char *)buf + pos, len, 0, NULL) : NULL;
		json_int_t seq = json_integer_value(json_object_get(rec, "kinkoSeq"));
		const char *prev = json_string_value(json_object_get(rec, "kinkoPrev"));
		if (rec != NULL && seq > 0 && (uint64_t)seq < W.next_seq) {
			/* Drained before the kill: already in the log. */
		} else if (rec != NULL && (uint64_t)seq == W.next_seq && prev != NULL &&
			   strcmp(prev, W.last_hash) == 0 && dropped == 0) {
			if (keep != pos)
				memmove(buf + keep, buf + pos, len + 1);
			audit_sha256_hex(buf + keep, len, W.last_hash);
			keep += len + 1;
			kept++;
			W.next_seq++;
		} else {
			dropped++;
		}
		json_decref(rec);
		pos += len + 1;
	}
	if (dropped > 0)
		LOG_WARN("audit: %zu records in %s do not continue the chain; leaving them out",
			 dropped, RING_FILE);
	if (kept > 0) {
		W.drained_seq = W.next_seq - kept;
		GUARD_GOTO(open_new_file());
		rc = pwrite_all(W.fd, buf, keep, 0);
		if (rc != K_OK) {
			LOG_ERROR("audit: writing %s failed: %s", W.cur_name, strerror(errno));
			goto out;
		}
		W.file_bytes = keep;
		W.cur_records = kept;
		LOG_WARN("audit: %zu records were still in %s; they go into %s", kept, RING_FILE,
			 W.cur_name);
		GUARD_GOTO(seal_current(true));
	}
reset:
	memset(&h, 0, sizeof h);
	if (pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || fdatasync(fd) != 0)
		rc = K_E_INTERNAL;
out:
	close(fd);
	free(buf);
	return rc;
}

/* Where the chain stands, once every file and record a crash left behind is sealed. */
static k_status resume_chain(void)
{
	W.cur_name[0] = 0;
	GUARD(find_chain());
	note_drained(W.next_seq, W.last_hash);
	GUARD(recover_ring());
	note_drained(W.next_seq, W.last_hash);
	return K_OK;
}

/*
 * At start, once the crash's leftovers are taken up: if a period digest
 * (of the folder, or of the witness) committed to a record beyond the
 * log's end, records were removed while kinko was not running. Sealing
 * the shortened file and going on from its end would reuse their seqs
 * and hide the cut; instead the chain goes on after the committed
 * record, so the gap stays in the sequence for `verify` to name, and
 * the start digest records where it begins. Returns that first missing
 * seq, or 0.
 */
static uint64_t continue_after(const struct audit_head *committed)
{
	if (committed->seq < W.next_seq)
		return 0;
	uint64_t missing = W.next_seq;
	LOG_ERROR("audit: the log ends at seq %" PRIu64 " but a period digest committed to seq %" PRIu64
		  " (in %s): records %" PRIu64 "..%" PRIu64 " were removed while kinko was not "
		  "running; the chain goes on after them, and verification names the gap",
		  W.next_seq - 1, committed->seq, committed->file[0] ? committed->file : "?", missing,
		  committed->seq);
	W.next_seq = committed->seq + 1;
	memcpy(W.last_hash, committed->hash, sizeof W.last_hash);
	W.drained_seq = W.next_seq;
	memcpy(W.drained_hash, committed->hash, sizeof W.drained_hash);
	memcpy(W.drained_file, committed->file, sizeof W.drained_file);
	return missing;
}

/* The period digests: takes up the newest, then writes the "start" digest. */
static k_status start_periods(const struct audit_options *o, struct kbuf *msg)
{
	struct audit_period_options po = {.dir = W.dir, .period_ms = o->period_ms,
					  .witness_file = o->witness_file,
					  .witness_syslog = o->witness_syslog};
	struct audit_head committed, head;
	GUARD(audit_period_open(&po, W.signer, &committed, msg));
	uint64_t missing = continue_after(&committed);
	drained_head(&head);
	if (audit_period_write(AUDIT_PERIOD_START, &head, missing, kclock_now_ms()) != K_OK) {
		kbuf_note(msg, "cannot write a period digest in %s", W.dir);
		return K_E_INTERNAL;
	}
	return K_OK;
}

static bool rebuild_cb(void *arg, uint64_t seq, const char *type, json_t *event, const char *file)
{
	(void)seq;
	(void)file;
	int64_t *oldest = arg, t;
	const char *when = json_string_value(json_object_get(event, "eventTime"));
	if (*oldest == 0 && when != NULL && audit_parse_iso8601(when, &t))
		*oldest = t;
	if (strcmp(type, "event") == 0)
		audit_lastuse_from_event(event);
	return true;
}

k_status audit_open(const struct audit_options *o, struct kbuf *msg)
{
	snprintf(W.dir, sizeof W.dir, "%s", o->dir);
	W.sync = o->sync;
	W.max_bytes = o->max_file_bytes ? o->max_file_bytes : DEFAULT_MAX_FILE_BYTES;
	W.rotate_s = o->rotate_seconds > 0 ? o->rotate_seconds : DEFAULT_ROTATE_SECONDS;
	kbuf_init(&W.batch, MAX_BATCH_BYTES);
	/* The ring: at most a file's worth (page-rounded), drained a quarter at a time or more often. */
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	W.ring_size = W.max_bytes < RING_BYTES ? (W.max_bytes + page - 1) / page * page : RING_BYTES;
	W.drain_ms = o->drain_ms > 0 ? o->drain_ms : RING_DRAIN_MS;
	/* A context made here fetches SHA-256 for the process and proves it is there. */
	struct crypto_sha256_ctx *probe = crypto_sha256_ctx_new();
	if (probe == NULL) {
		kbuf_note(msg, "cannot set up SHA-256 for the audit chain");
		return K_E_INTERNAL;
	}
	crypto_sha256_ctx_free(probe);
	if (mkdir(W.dir, 0700) != 0 && errno != EEXIST) {
		kbuf_note(msg, "cannot create the audit folder %s: %s", W.dir, strerror(errno));
		return K_E_INTERNAL;
	}
	GUARD(audit_signer_open(o->key_file, &W.signer, msg));
	struct kbuf pem;
	kbuf_init(&pem, 4096);
	k_status rc = audit_signer_public_pem(W.signer, &pem);
	if (rc == K_OK)
		rc = write_file_atomic(AUDIT_PUBLIC_KEY_FILE, kbuf_slice(&pem));
	kbuf_release(&pem);
	if (rc != K_OK) {
		kbuf_note(msg, "cannot write %s/%s", W.dir, AUDIT_PUBLIC_KEY_FILE);
		return rc;
	}
	rc = resume_chain();
	if (rc != K_OK) {
		kbuf_note(msg, "cannot take up the audit log in %s", W.dir);
		return rc;
	}
	GUARD(start_periods(o, msg));
	if (W.sync == AUDIT_SYNC_WRITE) {
		install_sigbus();
		if (ring_open() != K_OK) {
			kbuf_note(msg, "cannot set up the audit ring %s/%s", W.dir, RING_FILE);
			return K_E_INTERNAL;
		}
	} else {
		char path[700];
		path_of(RING_FILE, path, sizeof path);
		(void)unlink(path); /* recovered above; fsync mode has no ring */
	}
	audit_lastuse_reset();
	int64_t oldest = 0;
	if (audit_scan(W.dir, rebuild_cb, &oldest) != K_OK)
		LOG_WARN("audit: could not rebuild the key last-use index");
	audit_lastuse_set_tracking_start(oldest ? oldest : kclock_now());
	atomic_store(&stopping, false);
	if (pthread_create(&W.flusher, NULL, flusher_main, NULL) != 0) {
		kbuf_note(msg, "cannot start the audit flusher");
		return K_E_INTERNAL;
	}
	W.flusher_started = true;
	atomic_store(&enabled, true);
	LOG_INFO("audit: logging to %s (%s mode, key %s)", W.dir,
		 W.sync == AUDIT_SYNC_FSYNC ? "fsync" : "write", audit_signer_fingerprint(W.signer));
	return K_OK;
}

static void seal_for_close(void)
{
	W.closed_clean = false;
	if (!drained()) {
		LOG_ERROR("audit: could not drain %s at shutdown; its records are taken up at the next "
			  "start", RING_FILE);
		if (W.fd >= 0)
			close(W.fd);
		W.fd = -1;
	} else if (seal_current(false) != K_OK) {
		LOG_ERROR("audit: could not seal every log file at shutdown; they are sealed at the "
			  "next start");
	} else {
		W.closed_clean = true;
	}
	if (W.fd >= 0) {
		close(W.fd);
		W.fd = -1;
	}
	pthread_mutex_lock(&S.mu);
	for (size_t i = 0; i < S.n; i++)
		close(S.q[(S.head + i) % MAX_PENDING_SEALS].fd);
	S.head = S.n = 0;
	pthread_mutex_unlock(&S.mu);
}

void audit_close(void)
{
	if (!audit_enabled())
		return;
	pthread_mutex_lock(&Z.mu);
	atomic_store(&stopping, true);
	pthread_cond_broadcast(&Z.cv);
	pthread_mutex_unlock(&Z.mu);
	if (W.flusher_started)
		pthread_join(W.flusher, NULL);
	W.flusher_started = false;
	as_leader(seal_for_close);
	if (W.closed_clean) {
		/* The last digest: a clean stop, naming the last record (sealed, so on disk). */
		struct audit_head head;
		drained_head(&head);
		if (audit_period_write(AUDIT_PERIOD_STOP, &head, 0, kclock_now_ms()) != K_OK)
			LOG_ERROR("audit: could not write the stop period digest");
	}
	audit_period_close();
	ring_unmap();
	atomic_store(&enabled, false);
	audit_signer_free(W.signer);
	W.signer = NULL;
	kbuf_release(&W.batch);
	audit_lastuse_reset();
}
