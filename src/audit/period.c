/*
 * period.c — period digests: the commitment to the end of the trail.
 *
 * A file's digest is written when the file is sealed, and each record
 * names only its predecessor, so nothing signed would name the newest
 * records: erasing them (with the last file's digest, or by cutting the
 * live file after a kill) would leave a shorter trail that verifies. So,
 * as CloudTrail writes a digest every hour even when nothing happened,
 * kinko appends a signed period digest every period (default 60 s), at
 * each start and at each clean stop. Each names the chain's durable head
 * (the last record's seq and hash, and its file), the time span it
 * covers (`fromMs` is the previous digest's `toMs`, so the spans tile the
 * time since the first start) and the previous digest's SHA-256. A
 * missing period is then a hole in the tiling; a quiet one is a digest
 * with the same head; and a trail whose digests stop before "now" ended
 * early (see verify_periods.c).
 *
 * The lines go to kinko-periods-<UTC day of toMs>.jsonl in the log
 * folder, each fdatasynced, and the same line to the witness: a file
 * outside the data folder (ideally append-only, or on another machine's
 * mount) and/or syslog. Someone who can rewrite the data folder can drop
 * the newest digests too, and then a truncation looks like a crash; the
 * witness is what tells the two apart.
 *
 * A period digest commits only to records known to be on disk (the
 * flusher's last fdatasync), so a power cut cannot make kinko's own
 * digest name a record the log lost.
 *
 * Called by the writer: at open and close, and from the flusher thread;
 * never concurrently.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/internal.h"
#include "core/json.h"
#include "core/log.h"
#include "core/banned.h"

#define DEFAULT_PERIOD_MS 60000
#define TAIL_BYTES 65536 /* the newest line is looked for in a file's last 64 KiB */

static struct {
	char dir[512];
	const struct audit_signer *signer;
	int64_t period_ms;
	int fd; /* the open periods file, for day */
	char day[16];
	bool have_last;	   /* a digest came before (in the folder) */
	char last_sha[65]; /* SHA-256 of its line (without the newline) */
	int64_t last_to_ms;
	int64_t next_due_ms;
	int witness_fd;
	char witness[512];
	bool witness_syslog;
	bool witness_failing; /* logged once until a write succeeds again */
	bool failing;
} P = {.fd = -1, .witness_fd = -1};

static void iso_ms(int64_t ms, char out[32])
{
	audit_iso8601(ms / 1000, out);
}

void audit_period_file_name(int64_t to_ms, char *out, size_t n)
{
	time_t t = (time_t)(to_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, n, AUDIT_PERIODS_PREFIX "%04d%02d%02d" AUDIT_PERIODS_SUFFIX,
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* The document's canonical form: sorted keys, compact, without "signature". */
static char *canonical(json_t *doc)
{
	json_t *copy = json_copy(doc);
	if (copy == NULL)
		return NULL;
	json_object_del(copy, "signature");
	char *c = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
	return c;
}

k_status audit_period_parse(struct kslice line, const char *public_pem, json_t **out)
{
	*out = NULL;
	json_t *d = json_loadb((const char *)line.ptr, line.len, 0, NULL);
	if (!json_is_object(d) ||
	    json_integer_value(json_object_get(d, "kinkoPeriodDigestVersion")) != 1 ||
	    !json_is_integer(json_object_get(d, "toMs")) ||
	    !json_is_integer(json_object_get(d, "lastSeq")) ||
	    !json_is_string(json_object_get(d, "lastRecordHash"))) {
		json_decref(d);
		return K_E_VALIDATION;
	}
	*out = d;
	const char *sig = json_string_value(json_object_get(d, "signature"));
	char *canon = canonical(d);
	k_status rc = canon != NULL && sig != NULL &&
				      k_ok(audit_verify_signature(public_pem, kslice_cstr(canon),
								  sig, NULL))
			      ? K_OK
			      : K_E_KMS_INVALID_SIGNATURE;
	if (canon != NULL)
		kjson_free(canon);
	return rc;
}

/*
 * Up to the last TAIL_BYTES of path into b; *size gets the file's size.
 * K_E_NOT_FOUND if the file cannot be opened.
 */
static K_MUST_CHECK k_status read_tail(const char *path, struct kbuf *b, uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ENSURE(fd >= 0, K_E_NOT_FOUND);
	struct stat st;
	k_status rc = K_E_INTERNAL;
	if (fstat(fd, &st) == 0) {
		uint64_t from =
			(uint64_t)st.st_size > TAIL_BYTES ? (uint64_t)st.st_size - TAIL_BYTES : 0;
		uint8_t *buf = malloc(TAIL_BYTES);
		ssize_t r = buf != NULL ? pread(fd, buf, (size_t)((uint64_t)st.st_size - from),
						(off_t)from)
					: -1;
		if (r == (ssize_t)((uint64_t)st.st_size - from))
			rc = kbuf_append(b, buf, (size_t)r);
		free(buf);
		*size = (uint64_t)st.st_size;
	}
	close(fd);
	return rc;
}

/*
 * The newest complete line in b (what read_tail read): its slice, and in
 * *torn the bytes after the last newline (an append a crash interrupted).
 * False if b holds no complete line.
 */
static bool newest_line(const struct kbuf *b, struct kslice *line, size_t *torn)
{
	size_t end = b->len;
	while (end > 0 && b->ptr[end - 1] != '\n')
		end--;
	*torn = b->len - end;
	if (end == 0)
		return false;
	size_t start = end - 1;
	while (start > 0 && b->ptr[start - 1] != '\n')
		start--;
	*line = kslice_make(b->ptr + start, end - 1 - start);
	return true;
}

/* The head a verified digest line commits to. */
static void head_of(json_t *d, struct audit_head *h)
{
	memset(h, 0, sizeof *h);
	h->seq = (uint64_t)json_integer_value(json_object_get(d, "lastSeq"));
	snprintf(h->hash, sizeof h->hash, "%s",
		 json_string_value(json_object_get(d, "lastRecordHash")));
	const char *f = json_string_value(json_object_get(d, "logFile"));
	snprintf(h->file, sizeof h->file, "%s", f ? f : "");
	h->time_ms = json_integer_value(json_object_get(d, "toMs"));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The newest period digest of the folder: the last complete line of the
 * newest periods file that has one (a line a crash tore is cut off).
 * Becomes the predecessor of the next digest; if its signature verifies,
 * *committed gets its head.
 */
static K_MUST_CHECK k_status take_up_folder(const char *pem, struct audit_head *committed)
{
	char **names = NULL;
	size_t n = 0;
	GUARD(audit_list_files(P.dir, AUDIT_PERIODS_PREFIX, AUDIT_PERIODS_SUFFIX, &names, &n));
	if (n > 0)
		qsort(names, n, sizeof *names, cmp_names);
	k_status rc = K_OK;
	for (size_t i = n; i-- > 0 && !P.have_last;) {
		char path[1100];
		snprintf(path, sizeof path, "%s/%s", P.dir, names[i]);
		struct kbuf b;
		kbuf_init(&b, TAIL_BYTES);
		uint64_t size = 0;
		struct kslice line;
		size_t torn = 0;
		if (k_failed(read_tail(path, &b, &size))) {
			kbuf_release(&b);
			rc = K_E_INTERNAL;
			break;
		}
		bool found = newest_line(&b, &line, &torn);
		if (torn > 0) {
			LOG_WARN("audit: %s ends in an incomplete period digest (%zu bytes); "
				 "cutting it",
				 names[i], torn);
			if (truncate(path, (off_t)(size - torn)) != 0)
				rc = K_E_INTERNAL;
		}
		if (found) {
			json_t *d = NULL;
			k_status prc = audit_period_parse(line, pem, &d);
			audit_sha256_hex(line.ptr, line.len, P.last_sha);
			P.have_last = true;
			P.last_to_ms =
				d != NULL ? json_integer_value(json_object_get(d, "toMs")) : 0;
			if (k_ok(prc))
				head_of(d, committed);
			else
				LOG_ERROR("audit: the newest period digest (%s) does not verify; "
					  "kinko vouches for nothing it names",
					  names[i]);
			json_decref(d);
		}
		kbuf_release(&b);
	}
	audit_free_names(names, n);
	return rc;
}

/* The witness file's newest line, if it is readable and verifies: a head it vouches for. */
static void take_up_witness(const char *pem, struct audit_head *h)
{
	memset(h, 0, sizeof *h);
	struct kbuf b;
	kbuf_init(&b, TAIL_BYTES);
	uint64_t size = 0;
	struct kslice line;
	size_t torn = 0;
	if (k_ok(read_tail(P.witness, &b, &size)) && newest_line(&b, &line, &torn)) {
		const uint8_t *brace = memchr(line.ptr, '{', line.len);
		json_t *d = NULL;
		if (brace != NULL &&
		    k_ok(audit_period_parse(
			    kslice_make(brace, line.len - (size_t)(brace - line.ptr)), pem, &d)))
			head_of(d, h);
		else
			LOG_WARN("audit: the newest line of the witness %s is not a period digest "
				 "of "
				 "this key",
				 P.witness);
		json_decref(d);
	}
	kbuf_release(&b);
}

k_status audit_period_open(const struct audit_period_options *o, const struct audit_signer *s,
			   struct audit_head *committed, struct kbuf *msg)
{
	memset(committed, 0, sizeof *committed);
	snprintf(P.dir, sizeof P.dir, "%s", o->dir);
	P.signer = s;
	P.period_ms = o->period_ms > 0 ? o->period_ms : DEFAULT_PERIOD_MS;
	P.have_last = false;
	P.fd = -1;
	P.day[0] = 0;
	P.failing = P.witness_failing = false;
	snprintf(P.witness, sizeof P.witness, "%s", o->witness_file ? o->witness_file : "");
	P.witness_syslog = o->witness_syslog;
	struct kbuf pem;
	kbuf_init(&pem, AUDIT_PUBLIC_PEM_MAX);
	k_status rc = audit_signer_public_pem(s, &pem);
	if (k_ok(rc))
		rc = take_up_folder(kbuf_cstr(&pem), committed);
	if (k_failed(rc)) {
		kbuf_note(msg, "cannot take up the period digests in %s", P.dir);
		kbuf_release(&pem);
		return rc;
	}
	if (P.witness[0] != 0) {
		struct audit_head w;
		take_up_witness(kbuf_cstr(&pem), &w);
		if (w.seq > committed->seq)
			*committed = w;
		P.witness_fd = open(P.witness, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (P.witness_fd < 0) {
			kbuf_note(msg, "cannot open the audit witness %s: %s", P.witness,
				  strerror(errno));
			kbuf_release(&pem);
			return K_E_INTERNAL;
		}
	}
	kbuf_release(&pem);
	if (P.witness_syslog)
		audit_syslog_open();
	return K_OK;
}

bool audit_period_due(int64_t now_ms)
{
	return now_ms >= P.next_due_ms;
}

/* Appends line (with its newline) to fd and fdatasyncs it; a failed append is cut back. */
static K_MUST_CHECK k_status append_synced(int fd, const char *line, size_t n)
{
	struct stat st;
	bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, line + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (regular)
				(void)!ftruncate(fd, st.st_size);
			return K_E_INTERNAL;
		}
		done += (size_t)w;
	}
	if (regular && fdatasync(fd) != 0)
		return K_E_INTERNAL;
	return K_OK;
}

/* Opens the periods file of to_ms's day (a new day: a new file). */
static K_MUST_CHECK k_status open_day(int64_t to_ms)
{
	char name[64];
	audit_period_file_name(to_ms, name, sizeof name);
	if (P.fd >= 0 && strcmp(name, P.day) == 0)
		return K_OK;
	if (P.fd >= 0)
		close(P.fd);
	char path[700];
	snprintf(path, sizeof path, "%s/%s", P.dir, name);
	P.fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	ENSURE(P.fd >= 0, K_E_INTERNAL);
	snprintf(P.day, sizeof P.day, "%.15s", name + strlen(AUDIT_PERIODS_PREFIX));
	int d = open(P.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d >= 0) {
		(void)fsync(d);
		close(d);
	}
	return K_OK;
}

static const char *kind_name(enum audit_period_kind k)
{
	switch (k) {
	case AUDIT_PERIOD_START:
		return "start";
	case AUDIT_PERIOD_STOP:
		return "stop";
	case AUDIT_PERIOD_TICK:
		return "period";
	default:
		return "period";
	}
}

/* Builds and signs the digest (one line, without its newline); *line is freed with kjson_free. */
static K_MUST_CHECK k_status make_line(enum audit_period_kind kind, const struct audit_head *head,
				       uint64_t missing_from, int64_t now_ms, char **line)
{
	char from[32], to[32];
	iso_ms(P.last_to_ms, from);
	iso_ms(now_ms, to);
	json_t *d = json_object();
	ENSURE(d != NULL, K_E_INTERNAL);
	json_object_set_new(d, "kinkoPeriodDigestVersion", json_integer(1));
	json_object_set_new(d, "kind", json_string(kind_name(kind)));
	json_object_set_new(d, "fromMs", P.have_last ? json_integer(P.last_to_ms) : json_null());
	json_object_set_new(d, "from", P.have_last ? json_string(from) : json_null());
	json_object_set_new(d, "toMs", json_integer(now_ms));
	json_object_set_new(d, "to", json_string(to));
	json_object_set_new(d, "periodMs", json_integer(P.period_ms));
	json_object_set_new(d, "lastSeq", json_integer((json_int_t)head->seq));
	json_object_set_new(d, "lastRecordHash", json_string(head->hash));
	json_object_set_new(d, "logFile", head->file[0] ? json_string(head->file) : json_null());
	json_object_set_new(d, "previousSha256",
			    P.have_last ? json_string(P.last_sha) : json_null());
	json_object_set_new(d, "keyFingerprint", json_string(audit_signer_fingerprint(P.signer)));
	if (missing_from > 0)
		json_object_set_new(d, "missingFromSeq", json_integer((json_int_t)missing_from));
	struct kbuf sig;
	kbuf_init(&sig, AUDIT_SIGNATURE_MAX);
	k_status rc = K_E_INTERNAL;
	char *canon = canonical(d);
	if (canon != NULL && k_ok(audit_sign(P.signer, kslice_cstr(canon), &sig))) {
		json_object_set_new(d, "signature", json_string(kbuf_cstr(&sig)));
		*line = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
		rc = *line != NULL ? K_OK : K_E_INTERNAL;
	}
	if (canon != NULL)
		kjson_free(canon);
	kbuf_release(&sig);
	json_decref(d);
	return rc;
}

/* The witness gets the same line; a failure there is logged, never fatal. */
static void witness(const char *line, size_t n)
{
	if (P.witness_syslog)
		audit_syslog_send(line, n - 1);
	if (P.witness_fd < 0)
		return;
	if (k_ok(append_synced(P.witness_fd, line, n))) {
		if (P.witness_failing)
			LOG_INFO("audit: the witness %s is written again", P.witness);
		P.witness_failing = false;
		return;
	}
	if (!P.witness_failing)
		LOG_ERROR("audit: cannot write the witness %s: %s; retried every period", P.witness,
			  strerror(errno));
	P.witness_failing = true;
}

k_status audit_period_write(enum audit_period_kind kind, const struct audit_head *head,
			    uint64_t missing_from, int64_t now_ms)
{
	if (P.have_last && now_ms < P.last_to_ms)
		now_ms = P.last_to_ms; /* the clock went back: the spans still tile */
	char *doc = NULL;
	GUARD(make_line(kind, head, missing_from, now_ms, &doc));
	struct kbuf line;
	kbuf_init(&line, AUDIT_MAX_LINE);
	k_status rc = kbuf_append_str(&line, doc);
	kjson_free(doc);
	if (k_ok(rc))
		rc = kbuf_append_byte(&line, '\n');
	if (k_ok(rc))
		rc = open_day(now_ms);
	if (k_ok(rc))
		rc = append_synced(P.fd, (const char *)line.ptr, line.len);
	if (k_ok(rc)) {
		audit_sha256_hex(line.ptr, line.len - 1, P.last_sha);
		P.have_last = true;
		P.last_to_ms = now_ms;
		P.next_due_ms = (now_ms / P.period_ms + 1) * P.period_ms;
		witness((const char *)line.ptr, line.len);
		if (P.failing)
			LOG_INFO("audit: period digests are written again");
		P.failing = false;
	} else if (!P.failing) {
		LOG_ERROR("audit: cannot write a period digest in %s: %s; retried every %d ms",
			  P.dir, strerror(errno), AUDIT_FLUSH_MS);
		P.failing = true;
	}
	kbuf_release(&line);
	return rc;
}

void audit_period_close(void)
{
	if (P.fd >= 0)
		close(P.fd);
	if (P.witness_fd >= 0)
		close(P.witness_fd);
	if (P.witness_syslog)
		audit_syslog_close();
	P.fd = P.witness_fd = -1;
	P.signer = NULL;
}
