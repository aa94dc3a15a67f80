/*
 * seal.c — the log files' life: a new file where the drained chain ends,
 * rotation by size or age, and sealing (a signed digest per file, each
 * naming the one before it).
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit/internal.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "cluster/cluster.h"
#include "core/banned.h"

void audit_digest_name_of(const char *log_name, char *out, size_t n)
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
	char name[AUDIT_NAME_MAX];
	uint64_t bytes, records, first_seq, last_seq;
	char start_prev[65], last_hash[65];
	bool recovered;
};

#define MAX_PENDING_SEALS 8

static struct {
	pthread_mutex_t mu;	 /* guards the queue */
	pthread_mutex_t seal_mu; /* one sealer at a time; guards audit_w.prev_digest_* */
	struct seal_job q[MAX_PENDING_SEALS]; /* a ring: n jobs from q[head] */
	size_t head, n;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .seal_mu = PTHREAD_MUTEX_INITIALIZER};

/* Seals one file: a digest naming its bytes, hash, records, seq range and chain ends, linked to the previous digest, signed. */
static K_MUST_CHECK k_status seal_file(const struct seal_job *j)
{
	char path[700];
	audit_path_of(j->name, path, sizeof path);
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
			    audit_w.prev_digest_name[0] ? json_string(audit_w.prev_digest_name)
							: json_null());
	json_object_set_new(d, "previousDigestSha256",
			    audit_w.prev_digest_sha[0] ? json_string(audit_w.prev_digest_sha)
						       : json_null());
	json_object_set_new(d, "sealedAt", json_string(when));
	json_object_set_new(d, "recovered", json_boolean(j->recovered));
	json_object_set_new(d, "keyFingerprint",
			    json_string(audit_signer_fingerprint(audit_w.signer)));

	k_status rc = K_OK;
	struct kbuf sig;
	kbuf_init(&sig, AUDIT_SIGNATURE_MAX);
	char *canon = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	char *final = NULL;
	ENSURE_GOTO(canon != NULL, K_E_INTERNAL);
	GUARD_GOTO(audit_sign(audit_w.signer, kslice_cstr(canon), &sig));
	json_object_set_new(d, "signature", json_string(kbuf_cstr(&sig)));
	final = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	ENSURE_GOTO(final != NULL, K_E_INTERNAL);
	char dname[AUDIT_NAME_MAX + 8];
	audit_digest_name_of(j->name, dname, sizeof dname);
	GUARD_GOTO(audit_write_file_atomic(dname, kslice_cstr(final)));
	snprintf(audit_w.prev_digest_name, sizeof audit_w.prev_digest_name, "%s", dname);
	audit_sha256_hex(final, strlen(final), audit_w.prev_digest_sha);
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
k_status audit_seal_pending(void)
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
		if (k_failed(rc)) {
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
	j->fd = audit_w.fd;
	snprintf(j->name, sizeof j->name, "%s", audit_w.cur_name);
	j->bytes = audit_w.file_bytes;
	j->records = audit_w.cur_records;
	j->first_seq = audit_w.cur_first_seq;
	j->last_seq = audit_w.next_seq - 1;
	snprintf(j->start_prev, sizeof j->start_prev, "%s", audit_w.cur_start_prev);
	snprintf(j->last_hash, sizeof j->last_hash, "%s", audit_w.last_hash);
	j->recovered = recovered;
	audit_w.fd = -1;
	audit_w.dirty = false;
}

/*
 * Rotation: queues the current file for sealing by the flusher. With the
 * queue full (the disk cannot keep up, or sealing fails), seals what is
 * queued first, on this thread. In write mode the ring is drained first.
 */
k_status audit_rotate_out(void)
{
	pthread_mutex_lock(&S.mu);
	bool full = S.n == MAX_PENDING_SEALS;
	pthread_mutex_unlock(&S.mu);
	if (full)
		GUARD(audit_seal_pending());
	pthread_mutex_lock(&S.mu);
	job_from_current(&S.q[(S.head + S.n) % MAX_PENDING_SEALS], false);
	S.n++;
	pthread_mutex_unlock(&S.mu);
	return K_OK;
}

/* Seals every queued file and then the current one, now (start-up recovery, shutdown). */
k_status audit_seal_current(bool recovered)
{
	GUARD(audit_seal_pending());
	if (audit_w.fd < 0)
		return K_OK;
	struct seal_job j;
	int fd = audit_w.fd;
	job_from_current(&j, recovered);
	pthread_mutex_lock(&S.seal_mu);
	k_status rc = seal_file(&j);
	pthread_mutex_unlock(&S.seal_mu);
	if (k_failed(rc))
		audit_w.fd = fd; /* still the writer's file; sealed later */
	return rc;
}

/*
 * Starts a new log file where the drained part of the chain ends: after a
 * file left behind with records still in the ring (write mode), those
 * records belong to the new file.
 */
k_status audit_open_new_file(void)
{
	const char *node = cluster_node_id();
	snprintf(audit_w.cur_name, sizeof audit_w.cur_name,
		 AUDIT_LOG_PREFIX "%020" PRIu64 "%s%s" AUDIT_LOG_SUFFIX, audit_w.drained_seq,
		 node[0] != 0 ? "-" : "", node);
	char path[700];
	audit_path_of(audit_w.cur_name, path, sizeof path);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		LOG_ERROR("audit: cannot create %s: %s", path, strerror(errno));
		return K_E_INTERNAL;
	}
	audit_fsync_dir();
	audit_w.fd = fd;
	audit_w.file_bytes = 0;
	audit_w.cur_records = audit_w.next_seq - audit_w.drained_seq;
	audit_w.cur_first_seq = audit_w.drained_seq;
	audit_w.cur_opened = kclock_now();
	snprintf(audit_w.cur_start_prev, sizeof audit_w.cur_start_prev, "%s", audit_w.drained_hash);
	return K_OK;
}

/* The chain now stands in the current file's bytes at seq (the next one) and hash. */
void audit_note_drained(uint64_t seq, const char *hash)
{
	audit_w.drained_seq = seq;
	memcpy(audit_w.drained_hash, hash, sizeof audit_w.drained_hash);
	memcpy(audit_w.drained_file, audit_w.cur_name, sizeof audit_w.drained_file);
}

/* The chain's last record (all of it written), for a period digest. */
void audit_drained_head(struct audit_head *h)
{
	memset(h, 0, sizeof *h);
	h->seq = audit_w.drained_seq - 1;
	memcpy(h->hash, audit_w.drained_hash, sizeof h->hash);
	if (h->seq > 0)
		memcpy(h->file, audit_w.drained_file, sizeof h->file);
}

/* The current file's size once the ring's records (write mode) are drained into it. */
static uint64_t cur_bytes(void)
{
	return audit_w.file_bytes + (audit_w.rhead - audit_w.rtail);
}

bool audit_rotation_due(void)
{
	return audit_w.fd >= 0 && audit_w.cur_records > 0 &&
	       (cur_bytes() >= audit_w.max_bytes ||
		kclock_now() - audit_w.cur_opened >= audit_w.rotate_s);
}

void audit_seal_for_close(void)
{
	audit_w.closed_clean = false;
	if (!audit_ring_drained()) {
		LOG_ERROR("audit: could not drain %s at shutdown; its records are taken up at the "
			  "next "
			  "start",
			  RING_FILE);
		if (audit_w.fd >= 0)
			close(audit_w.fd);
		audit_w.fd = -1;
	} else if (k_failed(audit_seal_current(false))) {
		LOG_ERROR(
			"audit: could not seal every log file at shutdown; they are sealed at the "
			"next start");
	} else {
		audit_w.closed_clean = true;
	}
	if (audit_w.fd >= 0) {
		close(audit_w.fd);
		audit_w.fd = -1;
	}
	pthread_mutex_lock(&S.mu);
	for (size_t i = 0; i < S.n; i++)
		close(S.q[(S.head + i) % MAX_PENDING_SEALS].fd);
	S.head = S.n = 0;
	pthread_mutex_unlock(&S.mu);
}
