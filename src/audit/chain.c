/*
 * chain.c — the records and their hash chain: a caller hashes its record
 * up to the chain members outside the mutex; the writer (the leader in
 * fsync mode, the caller itself under the mutex in write mode) assigns
 * sequence numbers, adds the chain members, finishes each hash and writes
 * the batch (see writer.c for the two modes).
 */
#include "audit/audit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit/internal.h"
#include "core/lock.h"
#include "core/log.h"
#include "core/thread.h"
#include "cluster/cluster.h"
#include "crypto/crypto.h"
#include "core/banned.h"

/* Appends a string literal ("" s does not compile for anything else). */
#define APPEND_LIT(b, s) kbuf_append((b), "" s, sizeof(s) - 1)
/* A record's bytes around its event JSON: {"event":…,"kinkoType":"…","kinkoNode":"…","kinkoSeq":N,"kinkoPrev":"…"}\n */
#define RECORD_OVERHEAD 240u

struct entry {
	const char *type;
	const char *json;
	size_t len;
	struct crypto_sha256_ctx
		*md; /* SHA-256 of the record's bytes before its chain members, by the caller */
	const struct audit_ixq_entry
		*ix; /* the event's members for the index's side queue, or NULL */
	k_status rc;
	bool done;
	struct entry *next;
};

/*
 * A record line is {"event":…,"kinkoType":"…","kinkoNode":"…","kinkoSeq":N,"kinkoPrev":"…"}
 * (kinkoNode: the node id of cluster/cluster.h, left out when none is set):
 * the chain members come last, so that the calling thread hashes the rest
 * of the line (by far the most of it) before it takes the writer's mutex,
 * and the writer only hashes the end. The caller's digest of the line up
 * to the chain members is in md; this adds them (tail), and returns the
 * line's hash in hex.
 */
static K_MUST_CHECK k_status finish_hash(struct crypto_sha256_ctx *md, const char *tail, size_t n,
					 char out[65])
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
#define RECORD_NODE "\",\"kinkoNode\":\""
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
static K_MUST_CHECK k_status hash_record_head(struct entry *e)
{
	e->md = kthread_get(&md_slot);
	ENSURE(e->md != NULL, K_E_INTERNAL);
	GUARD(crypto_sha256_begin(e->md));
	GUARD(crypto_sha256_update(e->md, RECORD_HEAD, sizeof RECORD_HEAD - 1));
	GUARD(crypto_sha256_update(e->md, e->json, e->len));
	GUARD(crypto_sha256_update(e->md, RECORD_TYPE, sizeof RECORD_TYPE - 1));
	GUARD(crypto_sha256_update(e->md, e->type, strlen(e->type)));
	/* Node ids are [A-Za-z0-9._-]: nothing to escape. */
	const char *node = cluster_node_id();
	if (node[0] != 0) {
		GUARD(crypto_sha256_update(e->md, RECORD_NODE, sizeof RECORD_NODE - 1));
		GUARD(crypto_sha256_update(e->md, node, strlen(node)));
	}
	return K_OK;
}

/*
 * The chain members of record seq, whose predecessor's hash is hash:
 * ","kinkoSeq":N,"kinkoPrev":"<hash>"} (the type's closing quote first).
 * Returns their length in tail.
 */
static size_t chain_members(uint64_t seq, const char *hash, char tail[128])
{
	char num[24];
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
	return tl;
}

/* The leader's work: chain, write and (fsync mode) sync one batch. */
static K_MUST_CHECK k_status write_batch(struct entry *list)
{
	bool ringed = audit_w.sync == AUDIT_SYNC_WRITE;
	if (ringed && audit_w.rh == NULL)
		GUARD(audit_ring_open());
	/* (A drain in flight holds rotation off: the call after it rotates.) */
	if (audit_rotation_due() && !audit_w.draining) {
		if (ringed)
			GUARD(audit_drain_locked());
		if (audit_rotation_due())
			GUARD(audit_rotate_out());
	}
	if (audit_w.fd < 0)
		GUARD(audit_open_new_file());
	kbuf_clear(&audit_w.batch); /* redacted records: nothing to wipe */
	uint64_t first = audit_w.next_seq, seq = first;
	const char *node = cluster_node_id();
	char hash[65];
	memcpy(hash, audit_w.last_hash, sizeof hash);
	uint64_t n = 0;
	for (struct entry *e = list; e != NULL; e = e->next) {
		char tail[128];
		size_t tl = chain_members(seq, hash, tail);
		GUARD(finish_hash(e->md, tail, tl, hash));
		GUARD(APPEND_LIT(&audit_w.batch, RECORD_HEAD));
		GUARD(kbuf_append(&audit_w.batch, e->json, e->len));
		GUARD(APPEND_LIT(&audit_w.batch, RECORD_TYPE));
		GUARD(kbuf_append_str(&audit_w.batch, e->type));
		if (node[0] != 0) {
			GUARD(APPEND_LIT(&audit_w.batch, RECORD_NODE));
			GUARD(kbuf_append_str(&audit_w.batch, node));
		}
		GUARD(kbuf_append(&audit_w.batch, tail, tl));
		GUARD(kbuf_append_byte(&audit_w.batch, '\n'));
		seq++;
		n++;
	}
	if (ringed) {
		GUARD(audit_write_ringed(audit_w.batch.ptr, audit_w.batch.len, seq, hash));
		goto written;
	}
	k_status rc = audit_pwrite_all(audit_w.fd, audit_w.batch.ptr, audit_w.batch.len,
				       audit_w.file_bytes);
	if (k_failed(rc))
		LOG_ERROR("audit: writing %s failed: %s", audit_w.cur_name, strerror(errno));
	if (k_ok(rc) && audit_w.sync == AUDIT_SYNC_FSYNC && fdatasync(audit_w.fd) != 0) {
		LOG_ERROR("audit: fdatasync failed: %s", strerror(errno));
		rc = K_E_INTERNAL;
	}
	if (k_failed(rc)) {
		/* Cut back to the last good record so no torn or unacknowledged line stays. */
		if (ftruncate(audit_w.fd, (off_t)audit_w.file_bytes) != 0) {
			LOG_ERROR("audit: cannot cut %s back after a failed write; starting a new "
				  "file",
				  audit_w.cur_name);
			close(audit_w.fd);
			audit_w.fd = -1;
		}
		return rc;
	}
	audit_w.file_bytes += audit_w.batch.len;
	audit_note_drained(seq, hash);
written:
	audit_w.cur_records += n;
	audit_w.next_seq = seq;
	memcpy(audit_w.last_hash, hash, sizeof audit_w.last_hash);
	/* Written: the index may take these events' members from the side queue. */
	for (struct entry *e = list; e != NULL; e = e->next, first++) {
		if (e->ix != NULL && e->ix->len > 0)
			audit_ixq_push(e->ix->bytes, e->ix->len, first);
	}
	return K_OK;
}

k_status audit_writer_append(const char *type, const char *json, size_t len)
{
	return audit_writer_append_ix(type, json, len, NULL);
}

k_status audit_writer_append_ix(const char *type, const char *json, size_t len,
				const struct audit_ixq_entry *ix)
{
	struct entry me = {.type = type, .json = json, .len = len, .ix = ix, .rc = K_E_INTERNAL};
	if (k_failed(hash_record_head(&me))) {
		audit_count_failure();
		return K_E_INTERNAL;
	}
	klock(&audit_w.mu);
	if (audit_w.sync == AUDIT_SYNC_WRITE) {
		/*
		 * "write" mode: copying a record into the ring takes well under
		 * a microsecond, so the caller writes its own record under the
		 * (briefly spinning) mutex. Handing it to a leader through the
		 * condition variable would cost a sleep and a wake-up whenever
		 * two calls meet, which is more than the write itself. (No
		 * leader in this mode: as_leader holds the mutex instead.)
		 */
		while (audit_must_wait_for_drain(len + RECORD_OVERHEAD))
			pthread_cond_wait(&audit_w.cv, &audit_w.mu);
		k_status rc = write_batch(&me);
		pthread_mutex_unlock(&audit_w.mu);
		if (k_failed(rc)) {
			audit_count_failure();
		}
		return rc;
	}
	if (audit_w.tail != NULL)
		audit_w.tail->next = &me;
	else
		audit_w.head = &me;
	audit_w.tail = &me;
	while (!me.done) {
		if (audit_w.leader) {
			pthread_cond_wait(&audit_w.cv, &audit_w.mu);
			continue;
		}
		audit_w.leader = true;
		struct entry *list = audit_w.head;
		audit_w.head = audit_w.tail = NULL;
		pthread_mutex_unlock(&audit_w.mu);

		k_status rc = write_batch(list);
		if (k_failed(rc)) {
			audit_count_failure();
		}
		pthread_mutex_lock(&audit_w.mu);
		for (struct entry *e = list, *next; e != NULL; e = next) {
			next = e->next;
			e->rc = rc;
			e->done = true;
		}
		audit_w.leader = false;
		pthread_cond_broadcast(&audit_w.cv);
	}
	pthread_mutex_unlock(&audit_w.mu);
	return me.rc;
}
