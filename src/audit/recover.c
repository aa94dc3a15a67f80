/*
 * recover.c — start-up recovery after a kill: files a crash left unsealed
 * are cut back to their last whole record and sealed as recovered, the
 * ring's records that continue the chain go into a file of their own, and
 * a cut that a period digest exposes is carried into the sequence.
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/internal.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/banned.h"

/* Reads a digest file; K_OK and the parsed document, or an error. */
static K_MUST_CHECK k_status load_digest(const char *name, json_t **out, char sha[65])
{
	char path[700];
	audit_path_of(name, path, sizeof path);
	struct kbuf b;
	kbuf_init(&b, AUDIT_DIGEST_FILE_MAX);
	k_status rc = audit_read_file(path, &b);
	if (k_ok(rc)) {
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
static K_MUST_CHECK k_status recover_unsealed(const char *name)
{
	char path[700];
	audit_path_of(name, path, sizeof path);
	struct kbuf b;
	kbuf_init(&b, AUDIT_MAX_FILE);
	k_status rc = audit_read_file(path, &b);
	if (k_failed(rc)) {
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
	audit_w.fd = fd;
	snprintf(audit_w.cur_name, sizeof audit_w.cur_name, "%s", name);
	audit_w.file_bytes = good;
	audit_w.cur_records = 0;
	audit_w.cur_opened = kclock_now();
	size_t pos = 0;
	while (pos < good) {
		const uint8_t *nl = memchr(b.ptr + pos, '\n', good - pos);
		size_t len = (size_t)(nl - (b.ptr + pos));
		json_t *rec = json_loadb((const char *)b.ptr + pos, len, 0, NULL);
		json_int_t seq = json_integer_value(json_object_get(rec, "kinkoSeq"));
		const char *prev = json_string_value(json_object_get(rec, "kinkoPrev"));
		if (audit_w.cur_records == 0) {
			audit_w.cur_first_seq = (uint64_t)seq;
			snprintf(audit_w.cur_start_prev, sizeof audit_w.cur_start_prev, "%s",
				 prev ? prev : "");
		}
		if (rec != NULL && seq > 0)
			audit_w.next_seq = (uint64_t)seq + 1;
		audit_sha256_hex(b.ptr + pos, len, audit_w.last_hash);
		json_decref(rec);
		audit_w.cur_records++;
		pos += len + 1;
	}
	kbuf_release(&b);
	return audit_seal_current(true);
}

/* Finds where the chain stands: the last sealed digest, sealing a crashed file first. */
static K_MUST_CHECK k_status find_chain(void)
{
	memset(audit_w.last_hash, '0', 64);
	audit_w.last_hash[64] = 0;
	audit_w.next_seq = 1;
	audit_w.prev_digest_name[0] = 0;
	audit_w.prev_digest_sha[0] = 0;
	char **names;
	size_t n;
	GUARD(audit_list_logs(audit_w.dir, &names, &n));
	k_status rc = K_OK;
	/* The newest digest before the last file gives the chain state. */
	for (size_t i = n; i-- > 0;) {
		char dname[AUDIT_NAME_MAX + 8];
		audit_digest_name_of(names[i], dname, sizeof dname);
		json_t *d = NULL;
		char sha[65];
		if (k_failed(load_digest(dname, &d, sha)))
			continue;
		audit_w.next_seq = (uint64_t)json_integer_value(json_object_get(d, "lastSeq")) + 1;
		const char *h = json_string_value(json_object_get(d, "lastRecordHash"));
		snprintf(audit_w.last_hash, sizeof audit_w.last_hash, "%s", h ? h : "");
		snprintf(audit_w.prev_digest_name, sizeof audit_w.prev_digest_name, "%s", dname);
		snprintf(audit_w.prev_digest_sha, sizeof audit_w.prev_digest_sha, "%s", sha);
		snprintf(audit_w.cur_name, sizeof audit_w.cur_name, "%s",
			 names[i]); /* holds the chain's head */
		json_decref(d);
		/* Files after it were left unsealed by a crash: seal them in order. */
		for (size_t j = i + 1; j < n && k_ok(rc); j++)
			rc = recover_unsealed(names[j]);
		audit_free_names(names, n);
		return rc;
	}
	for (size_t j = 0; j < n && k_ok(rc); j++)
		rc = recover_unsealed(names[j]);
	audit_free_names(names, n);
	return rc;
}

/*
 * Moves the ring's records (n bytes in buf) that continue the chain to the
 * front of buf, chaining them on: *keep gets their bytes, *kept their
 * number; records drained before the kill are skipped, and *dropped counts
 * the ones that do not continue the chain (with everything after them).
 */
static void keep_chained(uint8_t *buf, uint64_t n, size_t *keep, size_t *kept, size_t *dropped)
{
	size_t pos = 0;
	*keep = *kept = *dropped = 0;
	while (pos < n) {
		const uint8_t *nl = memchr(buf + pos, '\n', (size_t)n - pos);
		size_t len = nl != NULL ? (size_t)(nl - (buf + pos)) : (size_t)n - pos;
		json_t *rec = nl != NULL ? json_loadb((const char *)buf + pos, len, 0, NULL) : NULL;
		json_int_t seq = json_integer_value(json_object_get(rec, "kinkoSeq"));
		const char *prev = json_string_value(json_object_get(rec, "kinkoPrev"));
		if (rec != NULL && seq > 0 && (uint64_t)seq < audit_w.next_seq) {
			/* Drained before the kill: already in the log. */
		} else if (rec != NULL && (uint64_t)seq == audit_w.next_seq && prev != NULL &&
			   strcmp(prev, audit_w.last_hash) == 0 && *dropped == 0) {
			if (*keep != pos)
				memmove(buf + *keep, buf + pos, len + 1);
			audit_sha256_hex(buf + *keep, len, audit_w.last_hash);
			*keep += len + 1;
			(*kept)++;
			audit_w.next_seq++;
		} else {
			(*dropped)++;
		}
		json_decref(rec);
		pos += len + 1;
	}
}

/* Writes the kept ring records (keep bytes, kept records) to a new file, sealed as recovered. */
static K_MUST_CHECK k_status write_recovered(const uint8_t *buf, size_t keep, size_t kept)
{
	audit_w.drained_seq = audit_w.next_seq - kept;
	GUARD(audit_open_new_file());
	if (k_failed(audit_pwrite_all(audit_w.fd, buf, keep, 0))) {
		LOG_ERROR("audit: writing %s failed: %s", audit_w.cur_name, strerror(errno));
		return K_E_INTERNAL;
	}
	audit_w.file_bytes = keep;
	audit_w.cur_records = kept;
	LOG_WARN("audit: %zu records were still in %s; they go into %s", kept, RING_FILE,
		 audit_w.cur_name);
	return audit_seal_current(true);
}

/*
 * A kill can leave records in the ring that never reached the log: after
 * the crashed files are sealed, the ring's records that continue the
 * chain go into a file of their own, sealed as recovered. The ring is
 * then reset (write mode maps it again; fsync mode removes it).
 */
static K_MUST_CHECK k_status recover_ring(void)
{
	char path[700];
	audit_path_of(RING_FILE, path, sizeof path);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? K_OK : K_E_INTERNAL;
	struct ring_header h;
	uint8_t *buf = NULL;
	k_status rc = K_OK;
	bool ok = pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h &&
		  memcmp(h.magic, RING_MAGIC, sizeof h.magic) == 0 && h.version == 1 &&
		  h.size > 0 && h.size <= RING_BYTES && h.tail <= h.head &&
		  h.head - h.tail <= h.size;
	if (!ok) {
		LOG_WARN("audit: %s is not a ring kinko wrote; leaving it out", RING_FILE);
		goto reset;
	}
	if (h.head == h.tail)
		goto reset;
	uint64_t at = h.tail % h.size, n = h.head - h.tail;
	uint64_t first = n < h.size - at ? n : h.size - at;
	buf = malloc((size_t)n);
	if (buf == NULL ||
	    pread(fd, buf, (size_t)first, (off_t)(RING_HEADER + at)) != (ssize_t)first ||
	    pread(fd, buf + first, (size_t)(n - first), RING_HEADER) != (ssize_t)(n - first)) {
		rc = K_E_INTERNAL;
		goto out;
	}
	size_t keep, kept, dropped;
	keep_chained(buf, n, &keep, &kept, &dropped);
	if (dropped > 0)
		LOG_WARN("audit: %zu records in %s do not continue the chain; leaving them out",
			 dropped, RING_FILE);
	if (kept > 0) {
		rc = write_recovered(buf, keep, kept);
		if (k_failed(rc))
			goto out;
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
k_status audit_resume_chain(void)
{
	audit_w.cur_name[0] = 0;
	GUARD(find_chain());
	audit_note_drained(audit_w.next_seq, audit_w.last_hash);
	GUARD(recover_ring());
	audit_note_drained(audit_w.next_seq, audit_w.last_hash);
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
uint64_t audit_continue_after(const struct audit_head *committed)
{
	if (committed->seq < audit_w.next_seq)
		return 0;
	uint64_t missing = audit_w.next_seq;
	LOG_ERROR("audit: the log ends at seq %" PRIu64
		  " but a period digest committed to seq %" PRIu64 " (in %s): records %" PRIu64
		  "..%" PRIu64 " were removed while kinko was not "
		  "running; the chain goes on after them, and verification names the gap",
		  audit_w.next_seq - 1, committed->seq, committed->file[0] ? committed->file : "?",
		  missing, committed->seq);
	audit_w.next_seq = committed->seq + 1;
	memcpy(audit_w.last_hash, committed->hash, sizeof audit_w.last_hash);
	audit_w.drained_seq = audit_w.next_seq;
	memcpy(audit_w.drained_hash, committed->hash, sizeof audit_w.drained_hash);
	memcpy(audit_w.drained_file, committed->file, sizeof audit_w.drained_file);
	return missing;
}
