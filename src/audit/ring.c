/*
 * ring.c — write mode's ring: the mapped ring file, the copy into it and
 * its drain into the current log file.
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/internal.h"
#include "core/lock.h"
#include "core/log.h"
#include "core/banned.h"

/*
 * "write" mode: the ring. Each call copies its chained record into a ring
 * file (RING_FILE, in the log folder) that stays mapped, MAP_SHARED, for
 * the life of the process: the record is in the page cache, and survives
 * the process being killed, before the call is answered. The flusher
 * thread drains the ring into the current log file with plain writes
 * every audit_w.drain_ms (RING_DRAIN_MS), and every AUDIT_FLUSH_MS runs
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

void audit_ring_unmap(void)
{
	if (audit_w.rh != NULL)
		munmap(audit_w.rh, RING_HEADER + audit_w.ring_size);
	if (audit_w.ring_fd >= 0)
		close(audit_w.ring_fd);
	audit_w.rh = NULL;
	audit_w.ring = NULL;
	audit_w.ring_fd = -1;
	audit_w.rhead = audit_w.rtail = 0;
}

/* Creates (or resets) the ring file, reserves its space and maps it. */
k_status audit_ring_open(void)
{
	char path[700];
	audit_path_of(RING_FILE, path, sizeof path);
	size_t total = RING_HEADER + audit_w.ring_size;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int e = fd < 0			? errno
		: ftruncate(fd, 0) != 0 ? errno
					: posix_fallocate(fd, 0, (off_t)total);
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
	audit_w.rh = m;
	audit_w.ring = (uint8_t *)m + RING_HEADER;
	audit_w.ring_fd = fd;
	audit_w.ring_gen++;
	memcpy(audit_w.rh->magic, RING_MAGIC, sizeof audit_w.rh->magic);
	audit_w.rh->version = 1;
	audit_w.rh->size = audit_w.ring_size;
	audit_w.rh->head = audit_w.rh->tail = 0;
	audit_w.rhead = audit_w.rtail = 0;
	audit_fsync_dir();
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

void audit_install_sigbus(void)
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
	uint64_t at = audit_w.rhead % audit_w.ring_size;
	size_t first = n < audit_w.ring_size - at ? n : (size_t)(audit_w.ring_size - at);
	memcpy(audit_w.ring + at, p, first);
	memcpy(audit_w.ring, p + first, n - first);
	/* Only now: a restart trusts every byte before head. */
	__atomic_store_n(&audit_w.rh->head, audit_w.rhead + n, __ATOMIC_RELEASE);
	atomic_signal_fence(memory_order_seq_cst);
	copy_jump = NULL;
	return true;
}

/*
 * Writes the stream's bytes [from, to) to the current file at off. If the
 * file is shorter than off, someone cut it underneath kinko: *cut, and
 * nothing is written.
 */
static K_MUST_CHECK k_status write_out(uint64_t from, uint64_t to, uint64_t off, bool *cut,
				       int *err)
{
	struct stat st;
	*cut = fstat(audit_w.fd, &st) == 0 && (uint64_t)st.st_size < off;
	*err = 0;
	if (*cut)
		return K_E_INTERNAL;
	uint64_t at = from % audit_w.ring_size, n = to - from;
	uint64_t first = n < audit_w.ring_size - at ? n : audit_w.ring_size - at;
	if (k_ok(audit_pwrite_all(audit_w.fd, audit_w.ring + at, (size_t)first, off)) &&
	    k_ok(audit_pwrite_all(audit_w.fd, audit_w.ring, (size_t)(n - first), off + first)))
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
static K_MUST_CHECK k_status drain_finish(k_status rc, bool cut, int err, uint64_t to, uint64_t seq,
					  const char *hash, uint64_t off)
{
	if (k_ok(rc)) {
		if (audit_w.drain_failing)
			LOG_INFO("audit: %s can be written again; the ring is drained",
				 audit_w.cur_name);
		audit_w.drain_failing = false;
		audit_w.file_bytes = off + (to - audit_w.rtail);
		audit_w.rtail = to;
		__atomic_store_n(&audit_w.rh->tail, to, __ATOMIC_RELEASE);
		audit_note_drained(seq, hash);
		audit_w.dirty = true;
		return K_OK;
	}
	if (cut) {
		LOG_ERROR("audit: %s was cut short underneath kinko; leaving it unsealed and going "
			  "on "
			  "in a new file",
			  audit_w.cur_name);
		close(audit_w.fd);
		audit_w.fd = -1;
		audit_w.dirty = false;
	} else {
		/* Logged once until a drain succeeds again: the flusher retries every few ms. */
		if (!audit_w.drain_failing)
			LOG_ERROR("audit: cannot write %s (%s); its records stay in the ring, and "
				  "calls "
				  "fail once it is full",
				  audit_w.cur_name, strerror(err));
		audit_w.drain_failing = true;
		/* Best effort: a torn write left here is written over by the next drain. */
		(void)!ftruncate(audit_w.fd, (off_t)off);
	}
	return rc;
}

/* Under the mutex, with no drain in flight: drains the whole ring now. */
k_status audit_drain_locked(void)
{
	ENSURE(!audit_w.draining, K_E_INTERNAL);
	while (audit_w.rhead != audit_w.rtail) {
		if (audit_w.fd < 0)
			GUARD(audit_open_new_file());
		bool cut;
		int err;
		uint64_t off = audit_w.file_bytes;
		k_status rc = write_out(audit_w.rtail, audit_w.rhead, off, &cut, &err);
		rc = drain_finish(rc, cut, err, audit_w.rhead, audit_w.next_seq, audit_w.last_hash,
				  off);
		if (k_failed(rc) && !cut)
			return rc;
	}
	return K_OK;
}

/*
 * The flusher's drain, every audit_w.drain_ms: claims what the ring holds under
 * the mutex and writes it outside, so that the calls meanwhile neither
 * wait nor make a system call for it.
 */
void audit_drain_step(void)
{
	klock(&audit_w.mu);
	bool claim = audit_w.rh != NULL && !audit_w.draining && audit_w.rhead != audit_w.rtail;
	if (claim && audit_w.fd < 0 && k_failed(audit_open_new_file()))
		claim = false; /* logged; the next round tries again */
	if (claim) {
		audit_w.draining = true;
		audit_w.claim_head = audit_w.rhead;
		audit_w.claim_off = audit_w.file_bytes;
		audit_w.claim_seq = audit_w.next_seq;
		memcpy(audit_w.claim_hash, audit_w.last_hash, sizeof audit_w.claim_hash);
	}
	pthread_mutex_unlock(&audit_w.mu);
	if (!claim)
		return;
	bool cut;
	int err;
	k_status rc = write_out(audit_w.rtail, audit_w.claim_head, audit_w.claim_off, &cut, &err);
	klock(&audit_w.mu);
	k_ignore(drain_finish(rc, cut, err, audit_w.claim_head, audit_w.claim_seq,
			      audit_w.claim_hash, audit_w.claim_off));
	audit_w.draining = false;
	pthread_cond_broadcast(&audit_w.cv);
	pthread_mutex_unlock(&audit_w.mu);
}

/* Whether a call about to write a record of at most n bytes must first wait for the drain in flight. */
bool audit_must_wait_for_drain(size_t n)
{
	return audit_w.draining && (audit_rotation_due() || n > audit_w.ring_size / 2 ||
				    audit_w.rhead + n - audit_w.rtail > audit_w.ring_size);
}

/* The ring's copy faulted: what it held and the log did not is lost. A new ring and file follow. */
static void ring_fault(void)
{
	LOG_ERROR("audit: writing the ring %s faulted (the file was cut short or its file system "
		  "refused the write); %" PRIu64
		  " bytes of records not yet in %s are lost; leaving "
		  "it unsealed and going on with a new ring and file",
		  RING_FILE, audit_w.rhead - audit_w.rtail, audit_w.cur_name);
	audit_ring_unmap();
	if (audit_w.fd >= 0)
		close(audit_w.fd);
	audit_w.fd = -1;
	audit_w.dirty = false;
	audit_w.drained_seq = audit_w.next_seq;
	memcpy(audit_w.drained_hash, audit_w.last_hash, sizeof audit_w.drained_hash);
}

/*
 * Write mode: puts one chained batch (ending at seq, hash) into the ring,
 * or one too big for it straight into the file. The caller has made sure
 * (audit_must_wait_for_drain) that no drain in flight is in the way.
 */
k_status audit_write_ringed(const uint8_t *p, size_t n, uint64_t seq, const char *hash)
{
	if (n > audit_w.ring_size / 2) {
		GUARD(audit_drain_locked());
		if (audit_w.fd < 0)
			GUARD(audit_open_new_file());
		if (k_failed(audit_pwrite_all(audit_w.fd, p, n, audit_w.file_bytes))) {
			LOG_ERROR("audit: writing %s failed: %s", audit_w.cur_name,
				  strerror(errno));
			(void)!ftruncate(audit_w.fd, (off_t)audit_w.file_bytes);
			return K_E_INTERNAL;
		}
		audit_w.file_bytes += n;
		audit_note_drained(seq, hash);
		audit_w.dirty = true;
		return K_OK;
	}
	if (audit_w.rhead + n - audit_w.rtail > audit_w.ring_size)
		GUARD(audit_drain_locked()); /* the ring is full: the disk fell behind or fails */
	if (!copy_to_ring(p, n)) {
		uint64_t gen = audit_w.ring_gen;
		while (audit_w.draining) /* a drain reading the ring must end before it is unmapped */
			pthread_cond_wait(&audit_w.cv, &audit_w.mu);
		if (audit_w.ring_gen == gen)
			ring_fault();
		return K_E_INTERNAL;
	}
	audit_w.rhead += n;
	return K_OK;
}

/* Under the leader role: drains the ring (write mode); false if records stay in it. */
bool audit_ring_drained(void)
{
	return audit_w.rh == NULL || k_ok(audit_drain_locked());
}
