/*
 * writer.c — the audit log writer: group commit, hash chain, rotation and
 * signed digests (see audit.h for the file formats). This file opens and
 * closes the writer and runs its flusher thread; the rest of the writer is
 * one idea per file, sharing struct audit_writer through internal.h:
 *
 *   chain.c    records, their hash chain and the append path
 *   ring.c     write mode's mapped ring file and its drain
 *   seal.c     the current file, rotation and sealing (signed file digests)
 *   recover.c  start-up recovery after a kill
 *   fileio.c   listing, reading and durable writing of the folder's files
 *
 * In "fsync" mode every caller queues an entry (its formatted event) and
 * waits on the condition variable. A waiter that finds no writer active
 * becomes the writer ("leader") for the whole queue: it assigns sequence
 * numbers, chains the records, writes them with one write(2) and one
 * fdatasync, then marks every entry done. Only the leader touches the file
 * state of struct audit_writer; the mutex guards the queue and the leader flag and
 * is not held during that I/O.
 *
 * In "write" mode a caller instead writes its own record while holding the
 * mutex (and only when no leader is active), which makes it the writer for
 * that moment. It writes by copying the record into the ring, a file that
 * stays mapped (MAP_SHARED: the page cache a write(2) would fill, so the
 * record survives the process being killed); the flusher drains the ring
 * into the log file and fdatasyncs it (see ring.c). The copy
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

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/internal.h"
#include "core/clock.h"
#include "core/lock.h"
#include "core/log.h"
#include "crypto/crypto.h"
#include "metrics/metrics.h"
#include "core/banned.h"

#define DEFAULT_MAX_FILE_BYTES (64ull << 20)
#define DEFAULT_ROTATE_SECONDS 3600
#define MAX_BATCH_BYTES (256u << 20)
/* Appends a string literal ("" s does not compile for anything else). */

/* The writer's state, shared by the files of the writer (internal.h). */
struct audit_writer audit_w = {.mu = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP,
			       .cv = PTHREAD_COND_INITIALIZER,
			       .fd = -1,
			       .ring_fd = -1};

static atomic_bool enabled;
static atomic_bool stopping;
static _Atomic uint64_t failures;

/* A write (or sync) of the log failed: counted for audit_write_failures() and /metrics. */
void audit_count_failure(void)
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
	return audit_w.dir;
}

uint64_t audit_write_failures(void)
{
	return atomic_load(&failures);
}

/*
 * Runs fn with the writer's state to itself: as the leader in fsync mode
 * (waiting for any batch in flight); in write mode under the mutex, which
 * calls write under, with no drain in flight.
 */
static void as_leader(void (*fn)(void))
{
	pthread_mutex_lock(&audit_w.mu);
	while (audit_w.leader || audit_w.draining)
		pthread_cond_wait(&audit_w.cv, &audit_w.mu);
	if (audit_w.sync == AUDIT_SYNC_WRITE) {
		fn();
		pthread_mutex_unlock(&audit_w.mu);
		return;
	}
	audit_w.leader = true;
	pthread_mutex_unlock(&audit_w.mu);
	fn();
	pthread_mutex_lock(&audit_w.mu);
	audit_w.leader = false;
	pthread_cond_broadcast(&audit_w.cv);
	pthread_mutex_unlock(&audit_w.mu);
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
	/* Write mode: the flusher drained the ring (audit_drain_step) just before, outside the mutex. */
	sync_fd = -1;
	audit_drained_head(&sync_head);
	if (audit_w.fd >= 0 && audit_w.dirty) {
		sync_fd = dup(audit_w.fd);
		audit_w.dirty = false;
	}
}

static void rotate_if_due(void)
{
	if (audit_rotation_due() && (!audit_ring_drained() || k_failed(audit_rotate_out())))
		LOG_WARN("audit: could not rotate %s yet; will retry", audit_w.cur_name);
}

static void drain_for_readers(void)
{
	(void)audit_ring_drained();
}

void audit_drain(void)
{
	if (audit_enabled() && audit_w.sync == AUDIT_SYNC_WRITE)
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
 * The flusher: in "write" mode, drains the ring every audit_w.drain_ms, and
 * every AUDIT_FLUSH_MS fdatasyncs what was drained (on a duplicate
 * descriptor, outside the mutex, so requests keep flowing meanwhile); in
 * both modes, rotation by age when no call comes to do it.
 */
static void *flusher_main(void *arg)
{
	(void)arg;
	bool ringed = audit_w.sync == AUDIT_SYNC_WRITE;
	int64_t step_ms = ringed ? audit_w.drain_ms : AUDIT_FLUSH_MS;
	int64_t since_sync = 0;
	while (!atomic_load(&stopping)) {
		if (!nap(step_ms))
			break;
		if (ringed) {
			audit_drain_step();
			since_sync += step_ms;
			if (since_sync < AUDIT_FLUSH_MS)
				continue;
			since_sync = 0;
		}
		as_leader(grab_for_sync);
		bool synced = true;
		if (sync_fd >= 0) {
			if (fdatasync(sync_fd) != 0) {
				LOG_ERROR("audit: background fdatasync failed: %s",
					  strerror(errno));
				audit_count_failure();
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
		bool sealed = k_ok(audit_seal_pending());
		int64_t now = kclock_now_ms();
		if (sealed && synced && audit_period_due(now)) {
			k_status prc = audit_period_write(AUDIT_PERIOD_TICK, &sync_head, 0, now);
			(void)prc; /* logged; the next round tries again, its span the longer */
		}
	}
	return NULL;
}

/* The period digests: takes up the newest, then writes the "start" digest. */
static K_MUST_CHECK k_status start_periods(const struct audit_options *o, struct kbuf *msg)
{
	struct audit_period_options po = {.dir = audit_w.dir,
					  .period_ms = o->period_ms,
					  .witness_file = o->witness_file,
					  .witness_syslog = o->witness_syslog};
	struct audit_head committed, head;
	GUARD(audit_period_open(&po, audit_w.signer, &committed, msg));
	uint64_t missing = audit_continue_after(&committed);
	audit_drained_head(&head);
	if (k_failed(audit_period_write(AUDIT_PERIOD_START, &head, missing, kclock_now_ms()))) {
		kbuf_note(msg, "cannot write a period digest in %s", audit_w.dir);
		return K_E_INTERNAL;
	}
	return K_OK;
}

k_status audit_open(const struct audit_options *o, struct kbuf *msg)
{
	snprintf(audit_w.dir, sizeof audit_w.dir, "%s", o->dir);
	audit_w.sync = o->sync;
	audit_w.max_bytes = o->max_file_bytes ? o->max_file_bytes : DEFAULT_MAX_FILE_BYTES;
	audit_w.rotate_s = o->rotate_seconds > 0 ? o->rotate_seconds : DEFAULT_ROTATE_SECONDS;
	kbuf_init(&audit_w.batch, MAX_BATCH_BYTES);
	/* The ring: at most a file's worth (page-rounded), drained a quarter at a time or more often. */
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	audit_w.ring_size = audit_w.max_bytes < RING_BYTES
				    ? (audit_w.max_bytes + page - 1) / page * page
				    : RING_BYTES;
	audit_w.drain_ms = o->drain_ms > 0 ? o->drain_ms : RING_DRAIN_MS;
	/* A context made here fetches SHA-256 for the process and proves it is there. */
	struct crypto_sha256_ctx *probe = crypto_sha256_ctx_new();
	if (probe == NULL) {
		kbuf_note(msg, "cannot set up SHA-256 for the audit chain");
		return K_E_INTERNAL;
	}
	crypto_sha256_ctx_free(probe);
	if (mkdir(audit_w.dir, 0700) != 0 && errno != EEXIST) {
		kbuf_note(msg, "cannot create the audit folder %s: %s", audit_w.dir,
			  strerror(errno));
		return K_E_INTERNAL;
	}
	GUARD(audit_signer_open(o->key_file, &audit_w.signer, msg));
	struct kbuf pem;
	kbuf_init(&pem, AUDIT_PUBLIC_PEM_MAX);
	k_status rc = audit_signer_public_pem(audit_w.signer, &pem);
	if (k_ok(rc))
		rc = audit_write_file_atomic(AUDIT_PUBLIC_KEY_FILE, kbuf_slice(&pem));
	kbuf_release(&pem);
	if (k_failed(rc)) {
		kbuf_note(msg, "cannot write %s/%s", audit_w.dir, AUDIT_PUBLIC_KEY_FILE);
		return rc;
	}
	rc = audit_resume_chain();
	if (k_failed(rc)) {
		kbuf_note(msg, "cannot take up the audit log in %s", audit_w.dir);
		return rc;
	}
	GUARD(start_periods(o, msg));
	if (audit_w.sync == AUDIT_SYNC_WRITE) {
		audit_install_sigbus();
		if (k_failed(audit_ring_open())) {
			kbuf_note(msg, "cannot set up the audit ring %s/%s", audit_w.dir,
				  RING_FILE);
			return K_E_INTERNAL;
		}
	} else {
		char path[700];
		audit_path_of(RING_FILE, path, sizeof path);
		(void)unlink(path); /* recovered above; fsync mode has no ring */
	}
	audit_lastuse_reset();
	GUARD(audit_index_open(o, msg));
	atomic_store(&stopping, false);
	if (pthread_create(&audit_w.flusher, NULL, flusher_main, NULL) != 0) {
		kbuf_note(msg, "cannot start the audit flusher");
		return K_E_INTERNAL;
	}
	audit_w.flusher_started = true;
	atomic_store(&enabled, true);
	LOG_INFO("audit: logging to %s (%s mode, key %s)", audit_w.dir,
		 audit_w.sync == AUDIT_SYNC_FSYNC ? "fsync" : "write",
		 audit_signer_fingerprint(audit_w.signer));
	return K_OK;
}

void audit_close(void)
{
	if (!audit_enabled())
		return;
	pthread_mutex_lock(&Z.mu);
	atomic_store(&stopping, true);
	pthread_cond_broadcast(&Z.cv);
	pthread_mutex_unlock(&Z.mu);
	if (audit_w.flusher_started)
		pthread_join(audit_w.flusher, NULL);
	audit_w.flusher_started = false;
	as_leader(audit_seal_for_close);
	if (audit_w.closed_clean) {
		/* The last digest: a clean stop, naming the last record (sealed, so on disk). */
		struct audit_head head;
		audit_drained_head(&head);
		if (k_failed(audit_period_write(AUDIT_PERIOD_STOP, &head, 0, kclock_now_ms())))
			LOG_ERROR("audit: could not write the stop period digest");
	}
	as_leader(audit_ixq_disable); /* no push in flight once it returns */
	audit_index_close();
	audit_period_close();
	audit_ring_unmap();
	atomic_store(&enabled, false);
	audit_signer_free(audit_w.signer);
	audit_w.signer = NULL;
	kbuf_release(&audit_w.batch);
	audit_lastuse_reset();
}
