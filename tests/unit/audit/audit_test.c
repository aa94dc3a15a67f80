/*
 * audit_test.c — the audit writer, its chain and digests, the offline
 * verifier against each kind of tampering, redaction, quotas and metrics;
 * the period digests and the witness that commit to the end of the trail;
 * the signing key wrapped under the root key.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/internal.h"
#include "core/clock.h"
#include "core/json.h"
#include "keystore/keystore.h"
#include "metrics/metrics.h"
#include "quota/quota.h"
#include "testlib.h"
#include "core/banned.h"

static char root[256];
/* Write mode: how often the ring is drained by the flusher (0: kinko's default). */
static int64_t trail_drain_ms;
/* Period digests this often (0: kinko's default), and the witness file (NULL: none). */
static int64_t trail_period_ms;
static const char *trail_witness;

static void rm_rf(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "command failed: %s\n", cmd);
}

static void open_trail(const char *dir, enum audit_sync sync, uint64_t max_bytes)
{
	char key[512];
	snprintf(key, sizeof key, "%s/signing.key", root);
	struct audit_options o = {.dir = dir,
				  .key_file = key,
				  .sync = sync,
				  .max_file_bytes = max_bytes,
				  .drain_ms = trail_drain_ms,
				  .period_ms = trail_period_ms,
				  .witness_file = trail_witness};
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	CHECK(k_ok(audit_open(&o, &msg)));
	kbuf_release(&msg);
}

static void emit_events(int n)
{
	for (int i = 0; i < n; i++) {
		char arn[128];
		snprintf(arn, sizeof arn,
			 "arn:aws:kms:us-east-1:111122223333:key/%08d-0000-4000-8000-000000000000",
			 i);
		json_t *d = json_pack("{s:s}", "keyId", arn);
		CHECK(k_ok(audit_emit_service_event(
			"kms.amazonaws.com", i % 2 ? "RotateKey" : "DeleteKey", "111122223333",
			"us-east-1", arn, "AWS::KMS::Key", d, K_OK)));
		json_decref(d);
	}
}

/* Opens a trail in dir, writes n service events, closes (seals) it. */
static void write_events(const char *dir, int n, uint64_t max_bytes)
{
	open_trail(dir, AUDIT_SYNC_FSYNC, max_bytes);
	emit_events(n);
	audit_close();
}

/* Runs the verifier; returns its problem count and leaves its report in out. */
static long verify(const char *dir, char **out)
{
	size_t len = 0;
	FILE *f = open_memstream(out, &len);
	long n = audit_verify_dir(dir, NULL, f);
	fclose(f);
	return n;
}

static void copy_dir(const char *from, const char *to)
{
	char cmd[1600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
	if (system(cmd) != 0)
		fprintf(stderr, "copy failed\n");
}

static char first_log[512];

static void find_first_log(const char *dir)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "ls '%s' | grep 'jsonl$' | head -n1", dir);
	FILE *p = popen(cmd, "r");
	first_log[0] = 0;
	if (p != NULL && fgets(first_log, sizeof first_log, p) != NULL)
		first_log[strcspn(first_log, "\n")] = 0;
	if (p != NULL)
		pclose(p);
}

static char good[512];

static void test_intact(void)
{
	snprintf(good, sizeof good, "%s/good", root);
	write_events(good, 12, 0);
	write_events(good, 8, 0); /* a second start continues the chain in a new file */
	char *out = NULL;
	CHECK_EQ_INT(verify(good, &out), 0);
	CHECK(strstr(out, "OK: 2 files (2 sealed), 20 records") != NULL);
	free(out);
	struct stat st;
	char key[512];
	snprintf(key, sizeof key, "%s/signing.key", root);
	CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
}

/* One tampering, one expected word (and detail) in the report. */
/* Passes if the verifier's report holds want1 (and want2, if given); else prints it. */
static void report_has(const char *label, const char *out, const char *want1, const char *want2)
{
	if (strstr(out, want1) == NULL || (want2 && strstr(out, want2) == NULL)) {
		tl_failed++;
		fprintf(stderr, "FAIL [%s]: report lacks '%s' / '%s':\n%s\n", label, want1,
			want2 ? want2 : "", out);
	} else {
		tl_passed++;
	}
}

/*
 * Tampers with a copy of src: shell runs in it with F the first log file,
 * L the last and P the newest periods file; the verifier must name it.
 */
static void tamper_in(const char *src, const char *name, const char *shell, const char *want1,
		      const char *want2)
{
	char dir[512], cmd[4096];
	snprintf(dir, sizeof dir, "%s/t-%s", root, name);
	copy_dir(src, dir);
	find_first_log(dir);
	snprintf(cmd, sizeof cmd,
		 "cd '%s' && F='%s' && L=$(ls kinko-audit-*.jsonl | tail -n1) && "
		 "P=$(ls kinko-periods-*.jsonl | tail -n1) && %s",
		 dir, first_log, shell);
	CHECK(system(cmd) == 0);
	char *out = NULL;
	long n = verify(dir, &out);
	CHECK(n > 0);
	report_has(name, out, want1, want2);
	free(out);
}

static void tamper(const char *name, const char *shell, const char *want1, const char *want2)
{
	char dir[512], cmd[4096];
	snprintf(dir, sizeof dir, "%s/t-%s", root, name);
	copy_dir(good, dir);
	find_first_log(dir);
	snprintf(cmd, sizeof cmd, "cd '%s' && F='%s' && %s", dir, first_log, shell);
	CHECK(system(cmd) == 0);
	char *out = NULL;
	long n = verify(dir, &out);
	CHECK(n > 0);
	report_has(name, out, want1, want2);
	free(out);
}

static void test_tampering(void)
{
	/* A flipped byte in record 3's event: that record is named as changed. */
	tamper("flip", "sed -i '3s/DeleteKey/DeleteKez/' \"$F\"", "CHANGED record seq 3", NULL);
	tamper("truncate", "truncate -s -30 \"$F\"", "TRUNCATED file", NULL);
	tamper("remove-file", "rm \"$F\"", "REMOVED file", "seq 1..12");
	tamper("reorder", "sed -i -n '4{h;n;G};p' \"$F\"", "REORDERED record seq 4", NULL);
	tamper("remove-record", "sed -i '6d' \"$F\"", "REMOVED record seq 6", NULL);
	tamper("insert", "sed -i '2p' \"$F\"", "INSERTED record", NULL);
	tamper("digest", "sed -i 's/\"records\":12/\"records\":11/' \"$F.digest\"",
	       "SIGNATURE digest", NULL);
	tamper("remove-digest", "rm \"$F.digest\"", "UNSIGNED file", NULL);
}

static void test_rotation_by_size(void)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/rot", root);
	write_events(dir, 30, 2000);
	char *out = NULL;
	CHECK_EQ_INT(verify(dir, &out), 0);
	if (strstr(out, "OK: ") == NULL)
		fprintf(stderr, "%s", out);
	int files = 0;
	sscanf(strstr(out, "OK: ") ? strstr(out, "OK: ") : "OK: 0", "OK: %d", &files);
	CHECK(files >= 3);
	free(out);
}

static long file_size(const char *dir, const char *name)
{
	char path[1100];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* The ring's header (writer.c): magic, version, size, head, tail. */
struct ring_hdr {
	char magic[8];
	uint32_t version, unused;
	uint64_t size, head, tail;
};

static struct ring_hdr read_ring(const char *dir)
{
	char path[600];
	snprintf(path, sizeof path, "%s/kinko-audit.ring", dir);
	struct ring_hdr h;
	memset(&h, 0, sizeof h);
	FILE *f = fopen(path, "rb");
	if (f != NULL) {
		CHECK(fread(&h, sizeof h, 1, f) == 1);
		fclose(f);
	}
	return h;
}

/* Changes the byte just after the first `what` at or after offset from in a file. */
static void poke_after(const char *path, long from, const char *what)
{
	struct kbuf b;
	kbuf_init(&b, 1u << 24);
	CHECK(k_ok(audit_read_file(path, &b)));
	const uint8_t *at = (size_t)from < b.len
				    ? memmem(b.ptr + from, b.len - (size_t)from, what, strlen(what))
				    : NULL;
	CHECK(at != NULL);
	FILE *f = fopen(path, "r+b");
	CHECK(f != NULL);
	if (f != NULL && at != NULL) {
		long off = (long)(at - b.ptr) + (long)strlen(what);
		CHECK(fseek(f, off, SEEK_SET) == 0);
		CHECK(fputc(b.ptr[off] == 'X' ? 'Y' : 'X', f) != EOF);
	}
	if (f != NULL)
		fclose(f);
	kbuf_release(&b);
}

/*
 * "write" mode: records go into a mapped ring file, drained into the log
 * file a chunk at a time and by the flusher. A copy of the folder taken
 * while the trail is open (what a kill -9 leaves) holds records only in
 * the ring; the next start puts them into a file sealed as recovered.
 */
/* Records in the ring between tail and head (its lines). */
static int ring_records(const char *dir, struct ring_hdr h)
{
	char path[600];
	snprintf(path, sizeof path, "%s/kinko-audit.ring", dir);
	struct kbuf b;
	kbuf_init(&b, 1u << 24);
	CHECK(k_ok(audit_read_file(path, &b)));
	int n = 0;
	for (uint64_t i = h.tail; i < h.head && b.len == 4096 + h.size; i++)
		n += b.ptr[4096 + i % h.size] == '\n';
	kbuf_release(&b);
	return n;
}

static void test_write_mode(void)
{
	char dir[512], crash[600], path[1200];
	snprintf(dir, sizeof dir, "%s/wmode", root);
	snprintf(crash, sizeof crash, "%s/wmode-crash", root);
	trail_drain_ms =
		3600 * 1000; /* no drain by the flusher here: the ring's state is the test's */
	open_trail(dir, AUDIT_SYNC_WRITE, 0);
	emit_events(40);
	struct ring_hdr h = read_ring(dir);
	CHECK(memcmp(h.magic, "KINKORNG", 8) == 0 && h.version == 1 && h.size == 4u << 20);
	CHECK(h.head > h.tail && h.tail == 0);
	CHECK_EQ_INT(ring_records(dir, h), 40);
	copy_dir(dir, crash); /* the folder as a crash would leave it */
	char crash_fsync[700];
	snprintf(crash_fsync, sizeof crash_fsync, "%s-fsync", crash);
	copy_dir(dir, crash_fsync);
	audit_drain();
	h = read_ring(dir);
	CHECK(h.head == h.tail && h.head > 0);
	find_first_log(dir);
	char *out = NULL;
	CHECK_EQ_INT(verify(dir, &out), 0);
	CHECK(strstr(out, "not sealed yet") != NULL);
	free(out);
	audit_close();
	CHECK_EQ_INT(verify(dir, &out), 0);
	CHECK(strstr(out, "OK: 1 files (1 sealed), 40 records") != NULL);
	free(out);

	/* The crashed copy: the ring's records are recovered, sealed, and the chain goes on. */
	open_trail(crash, AUDIT_SYNC_WRITE, 0);
	h = read_ring(crash);
	CHECK(h.head == 0 && h.tail == 0); /* taken up, and the ring starts again */
	emit_events(3);
	audit_close();
	CHECK(file_size(crash, first_log) == file_size(dir, first_log));
	CHECK_EQ_INT(verify(crash, &out), 0);
	report_has("write mode, recovery", out, "OK: 2 files (2 sealed), 43 records", NULL);
	free(out);
	snprintf(path, sizeof path, "%s/%s.digest", crash, first_log);
	struct kbuf b;
	kbuf_init(&b, 1u << 16);
	CHECK(k_ok(audit_read_file(path, &b)));
	CHECK(strstr(kbuf_cstr(&b), "\"recovered\":true") != NULL);
	kbuf_release(&b);

	/* The same crash taken up in fsync mode: the ring's records recovered, the ring removed. */
	open_trail(crash_fsync, AUDIT_SYNC_FSYNC, 0);
	emit_events(3);
	audit_close();
	CHECK_EQ_INT(verify(crash_fsync, &out), 0);
	report_has("fsync mode after a write-mode crash", out, "OK: 2 files (2 sealed), 43 records",
		   NULL);
	free(out);
	CHECK(file_size(crash_fsync, "kinko-audit.ring") == -1);

	/*
	 * A crash with part of the records drained and the rest in the ring,
	 * and one ring record changed: recovery keeps what continues the chain.
	 * Files of 64 KiB make a ring of 64 KiB, which fills and is drained
	 * by the calls themselves.
	 */
	snprintf(dir, sizeof dir, "%s/wmode-partial", root);
	snprintf(crash, sizeof crash, "%s/wmode-partial-crash", root);
	open_trail(dir, AUDIT_SYNC_WRITE, 64u << 10);
	emit_events(300);
	h = read_ring(dir);
	CHECK(h.tail > 0 &&
	      h.head > h.tail); /* drained when full, the last records still in the ring */
	int in_ring = ring_records(dir, h);
	CHECK(in_ring > 0);
	copy_dir(dir, crash);
	char crash2[700];
	snprintf(crash2, sizeof crash2, "%s-2", crash);
	copy_dir(dir, crash2);
	audit_close();
	open_trail(crash, AUDIT_SYNC_WRITE, 64u << 10);
	audit_close();
	CHECK_EQ_INT(verify(crash, &out), 0);
	report_has("write mode, partly drained", out, " 300 records", NULL);
	free(out);
	snprintf(path, sizeof path, "%s/kinko-audit.ring", crash2);
	/*
	 * A changed byte in the kinkoPrev of the ring's first record: it no
	 * longer continues the chain, so it and every record after it are
	 * left out.
	 */
	poke_after(path, 4096 + (long)(h.tail % h.size), "\"kinkoPrev\":\"");
	open_trail(crash2, AUDIT_SYNC_WRITE, 64u << 10);
	audit_close();
	CHECK_EQ_INT(verify(crash2, &out), 0);
	char want[64];
	snprintf(want, sizeof want, " %d records", 300 - in_ring);
	report_has("write mode, changed ring record", out, want, NULL);
	free(out);

	/* Many drains and files: rotation at 1 MiB with a 1 MiB ring. */
	snprintf(dir, sizeof dir, "%s/wmode-many", root);
	open_trail(dir, AUDIT_SYNC_WRITE, 1u << 20);
	emit_events(3000);
	audit_close();
	CHECK_EQ_INT(verify(dir, &out), 0);
	report_has("write mode, drains", out, "3000 records", NULL);
	CHECK(strstr(out, "OK: 1 files") == NULL); /* more than one file: it rotated */
	free(out);

	/* Rotation by size in write mode: a ring of one page, smaller than a record now and then. */
	snprintf(dir, sizeof dir, "%s/wmode-rot", root);
	open_trail(dir, AUDIT_SYNC_WRITE, 2000);
	emit_events(30);
	audit_close();
	CHECK_EQ_INT(verify(dir, &out), 0);
	int files = 0;
	sscanf(strstr(out, "OK: ") ? strstr(out, "OK: ") : "OK: 0", "OK: %d", &files);
	CHECK(files >= 3);
	free(out);
	trail_drain_ms = 0;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

/*
 * Rewrites every digest of dir as version 1 digests were written (with
 * the file's SHA-256 in fileSha256), re-signed with the audit key and
 * re-linked, as a folder written by an earlier kinko build.
 */
static void downgrade_digests(const char *dir)
{
	char key[512];
	snprintf(key, sizeof key, "%s/signing.key", root);
	struct audit_signer *sg = NULL;
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	CHECK(k_ok(audit_signer_open(key, &sg, &msg)));
	kbuf_release(&msg);
	char **names = NULL;
	size_t n = 0;
	CHECK(k_ok(audit_list_logs(dir, &names, &n)));
	char prev_sha[65] = "";
	for (size_t i = 0; i < n && sg != NULL; i++) {
		char path[1200], dpath[1300], sha[65];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		snprintf(dpath, sizeof dpath, "%s.digest", path);
		struct kbuf b;
		kbuf_init(&b, 1u << 26);
		CHECK(k_ok(audit_read_file(path, &b)));
		audit_sha256_hex(b.ptr, b.len, sha);
		kbuf_reset(&b);
		CHECK(k_ok(audit_read_file(dpath, &b)));
		json_t *d = json_loadb((const char *)b.ptr, b.len, 0, NULL);
		kbuf_release(&b);
		CHECK(d != NULL);
		if (d == NULL)
			continue;
		json_object_set_new(d, "kinkoDigestVersion", json_integer(1));
		json_object_set_new(d, "fileSha256", json_string(sha));
		if (prev_sha[0])
			json_object_set_new(d, "previousDigestSha256", json_string(prev_sha));
		json_object_del(d, "signature");
		char *canon = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
		struct kbuf sig;
		kbuf_init(&sig, 256);
		CHECK(canon != NULL && k_ok(audit_sign(sg, kslice_cstr(canon), &sig)));
		json_object_set_new(d, "signature", json_string(kbuf_cstr(&sig)));
		char *final = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
		CHECK(final != NULL);
		if (final != NULL) {
			write_text(dpath, final);
			audit_sha256_hex(final, strlen(final), prev_sha);
		}
		kjson_free(canon);
		kjson_free(final);
		kbuf_release(&sig);
		json_decref(d);
	}
	audit_free_names(names, n);
	audit_signer_free(sg);
}

/* Folders sealed with version 1 digests still verify, and their fileSha256 is still checked. */
static void test_version1_digests(void)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/v1", root);
	write_events(dir, 6, 0);
	write_events(dir, 4, 0);
	downgrade_digests(dir);
	char *out = NULL;
	CHECK_EQ_INT(verify(dir, &out), 0);
	CHECK(strstr(out, "OK: 2 files (2 sealed), 10 records") != NULL);
	free(out);
	char saved[sizeof good];
	memcpy(saved, good, sizeof good);
	snprintf(good, sizeof good, "%s", dir); /* tamper() works on a copy of `good` */
	tamper("v1-flip", "sed -i '3s/DeleteKey/DeleteKez/' \"$F\"", "CHANGED record seq 3",
	       "its SHA-256 differs from its signed digest");
	memcpy(good, saved, sizeof good);
}

/* The lastSeq of the newest period digest in dir (-1: none). */
static long long newest_committed(const char *dir)
{
	char **names = NULL;
	size_t n = 0;
	long long seq = -1;
	if (k_failed(audit_list_files(dir, "kinko-periods-", ".jsonl", &names, &n)) || n == 0)
		return -1;
	size_t pick = 0;
	for (size_t i = 1; i < n; i++)
		pick = strcmp(names[i], names[pick]) > 0 ? i : pick;
	char path[1100];
	snprintf(path, sizeof path, "%s/%s", dir, names[pick]);
	struct kbuf b;
	kbuf_init(&b, 1u << 24);
	if (k_ok(audit_read_file(path, &b)) && b.len > 1) {
		size_t start = b.len - 1;
		while (start > 0 && b.ptr[start - 1] != '\n')
			start--;
		json_t *d = json_loadb((const char *)b.ptr + start, b.len - start, 0, NULL);
		seq = json_integer_value(json_object_get(d, "lastSeq"));
		json_decref(d);
	}
	kbuf_release(&b);
	audit_free_names(names, n);
	return seq;
}

/* Waits (up to 5 s) until a period digest commits to seq. */
static bool wait_committed(const char *dir, long long seq)
{
	for (int i = 0; i < 100; i++) {
		if (newest_committed(dir) >= seq)
			return true;
		usleep(50000);
	}
	return false;
}

static int count_lines(const char *path)
{
	struct kbuf b;
	kbuf_init(&b, 1u << 24);
	int n = 0;
	if (k_ok(audit_read_file(path, &b))) {
		for (size_t i = 0; i < b.len; i++)
			n += b.ptr[i] == '\n';
	}
	kbuf_release(&b);
	return n;
}

/* Runs audit_verify with a witness and a "now"; returns problems, warnings in *w. */
static long verify_with(const char *dir, const char *witness, int64_t now_ms, long *w, char **out)
{
	size_t len = 0;
	FILE *f = open_memstream(out, &len);
	struct audit_verify_options o = {.dir = dir, .witness = witness, .now_ms = now_ms};
	long n = audit_verify(&o, f, w);
	fclose(f);
	return n;
}

/*
 * A digest every period, quiet or not: a missing one is named, a quiet
 * one is not; a trail whose digests stop before "now" ends early (a
 * warning: a stop and a removal look alike without a witness).
 */
static void test_period_digests(void)
{
	char dir[512], periods[700];
	snprintf(dir, sizeof dir, "%s/periods", root);
	trail_period_ms = 100;
	open_trail(dir, AUDIT_SYNC_FSYNC, 0);
	emit_events(3);
	CHECK(wait_committed(dir, 3));
	usleep(500000); /* quiet periods: digests all the same */
	/*
	 * "Now" for the intact check is taken before the stop: the stop
	 * digest reaches past it, however slowly the verification below runs
	 * (a 100 ms period leaves only 200 ms of slack against the clock).
	 */
	int64_t before_stop = kclock_now_ms();
	audit_close();
	trail_period_ms = 0;
	char *out = NULL;
	long w = 0;
	CHECK_EQ_INT(verify_with(dir, NULL, before_stop, &w, &out), 0);
	CHECK_EQ_INT(w, 0);
	report_has("periods intact", out, "OK: 1 files (1 sealed), 3 records", NULL);
	free(out);
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "ls '%s'/kinko-periods-*.jsonl | tail -n1", dir);
	FILE *p = popen(cmd, "r");
	periods[0] = 0;
	if (p != NULL && fgets(periods, sizeof periods, p) != NULL)
		periods[strcspn(periods, "\n")] = 0;
	if (p != NULL)
		pclose(p);
	CHECK(count_lines(periods) >= 5); /* start, periods (some quiet), stop */

	/* Far later: the trail ends early (kinko was stopped cleanly, or the rest removed). */
	CHECK_EQ_INT(verify_with(dir, NULL, kclock_now_ms() + 3600 * 1000, &w, &out), 0);
	CHECK_EQ_INT(w, 1);
	report_has("ends early", out, "WARNING: ENDS EARLY", "kinko was stopped cleanly then");
	free(out);

	tamper_in(dir, "period-missing", "sed -i 3d \"$P\"", "MISSING period digests for", NULL);
	tamper_in(dir, "period-changed", "sed -i '$s/\"lastSeq\":3/\"lastSeq\":2/' \"$P\"",
		  "SIGNATURE period digest", NULL);
	tamper_in(dir, "period-first-removed", "sed -i 1d \"$P\"", "REMOVED period digests before",
		  NULL);
}

/*
 * The erasures the period digests exist for: the last log file deleted
 * with its digest, after a clean stop; the live file's last records cut
 * after a kill, then a restart (which seals the shortened file).
 */
static void test_erasures_are_named(void)
{
	/* `good`: two runs, 20 records, the second run's file holds seq 13..20. */
	tamper_in(good, "erase-last-file", "rm \"$L\" \"$L.digest\"",
		  "TRUNCATED trail: the log ends at seq 12",
		  "REMOVED file kinko-audit-00000000000000000013.jsonl");

	char dir[512], crash[600], crash2[700], wit[700], wit_crash[800], wit_crash2[800];
	char cmd[4096];
	snprintf(dir, sizeof dir, "%s/cut", root);
	snprintf(crash, sizeof crash, "%s-crash", dir);
	snprintf(crash2, sizeof crash2, "%s-crash2", dir);
	snprintf(wit, sizeof wit, "%s/cut.witness", root);
	snprintf(wit_crash, sizeof wit_crash, "%s.witness", crash);
	snprintf(wit_crash2, sizeof wit_crash2, "%s.witness", crash2);
	trail_period_ms = 100;
	trail_witness = wit;
	open_trail(dir, AUDIT_SYNC_FSYNC, 0);
	emit_events(10);
	CHECK(wait_committed(dir, 10));
	/* The folder and the witness as a kill -9 leaves them. */
	copy_dir(dir, crash);
	copy_dir(dir, crash2);
	snprintf(cmd, sizeof cmd, "cp '%s' '%s' && cp '%s' '%s'", wit, wit_crash, wit, wit_crash2);
	CHECK(system(cmd) == 0);
	audit_close();
	find_first_log(crash);

	/* Records 8..10 cut off the live file while kinko is down; then a restart. */
	snprintf(cmd, sizeof cmd, "cd '%s' && sed -i '8,$d' '%s' && cd '%s' && sed -i '8,$d' '%s'",
		 crash, first_log, crash2, first_log);
	CHECK(system(cmd) == 0);
	trail_witness = NULL;
	open_trail(crash, AUDIT_SYNC_FSYNC, 0);
	emit_events(2);
	audit_close();
	char *out = NULL;
	long w = 0;
	CHECK(verify_with(crash, NULL, 0, &w, &out) > 0);
	report_has("cut after kill", out, "REMOVED records seq 8..10", NULL);
	free(out);

	/*
	 * The same cut, and the period digests that committed to the cut
	 * records removed too: the folder alone then looks like a crash (a
	 * note); the witness names the truncation. Restarted with the
	 * witness, kinko itself sees the cut and keeps the gap.
	 */
	snprintf(cmd, sizeof cmd,
		 "cd '%s' && sed -i -E '/\"lastSeq\":(8|9|10),/d' kinko-periods-*.jsonl", crash2);
	CHECK(system(cmd) == 0);
	char crash3[800], wit_crash3[900];
	snprintf(crash3, sizeof crash3, "%s-b", crash2);
	snprintf(wit_crash3, sizeof wit_crash3, "%s.witness", crash3);
	copy_dir(crash2, crash3);
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", wit_crash2, wit_crash3);
	CHECK(system(cmd) == 0);
	open_trail(crash2, AUDIT_SYNC_FSYNC, 0);
	emit_events(2);
	audit_close();
	CHECK_EQ_INT(verify_with(crash2, NULL, 0, &w, &out), 0);
	report_has("cut and digests removed, no witness", out, "after a crash, kill or power cut",
		   NULL);
	free(out);
	CHECK(verify_with(crash2, wit_crash2, 0, &w, &out) > 0);
	report_has("cut and digests removed, witness", out,
		   "REMOVED period digests: the witness holds",
		   "TRUNCATED trail: the log ends at seq 9");
	free(out);

	trail_witness = wit_crash3;
	open_trail(crash3, AUDIT_SYNC_FSYNC, 0);
	emit_events(2);
	audit_close();
	CHECK(verify_with(crash3, NULL, 0, &w, &out) > 0);
	report_has("restart with the witness", out, "REMOVED records seq 8..10", NULL);
	free(out);
	CHECK(verify_with(crash3, wit_crash3, 0, &w, &out) > 0);
	report_has("restart with the witness, verified with it", out, "REMOVED period digests",
		   "REMOVED records seq 8..10");
	free(out);
	trail_witness = NULL;
	trail_period_ms = 0;
}

/* The Ed25519 public key's fingerprint for a seed, as kinko computes it. */
static void fingerprint_of(const uint8_t seed[32], char out[65])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	uint8_t pub[32];
	size_t n = sizeof pub;
	out[0] = 0;
	if (k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1)
		audit_sha256_hex(pub, n, out);
	EVP_PKEY_free(k);
}

/*
 * The signing key is kept wrapped under the root key: a raw seed from an
 * earlier build is wrapped in place (same key, no raw bytes left in the
 * file); another root key cannot unwrap it; a new key is wrapped at once.
 */
static void test_signing_key_wrapped(void)
{
	uint8_t seed[32];
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(0xa0 + i);
	char path[600], want[65];
	snprintf(path, sizeof path, "%s/raw-signing.key", root);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL && fwrite(seed, 1, 32, f) == 32);
	if (f != NULL)
		fclose(f);
	CHECK(chmod(path, 0600) == 0);
	fingerprint_of(seed, want);
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	struct audit_signer *sg = NULL;
	CHECK(k_ok(audit_signer_open(path, &sg, &msg)));
	if (sg != NULL)
		CHECK_STR(audit_signer_fingerprint(sg), want);
	audit_signer_free(sg);
	sg = NULL;
	struct kbuf b;
	kbuf_init(&b, 4096);
	CHECK(k_ok(audit_read_file(path, &b)));
	CHECK(b.len == 68 && memcmp(b.ptr, "KINKOAK1", 8) == 0);
	CHECK(memmem(b.ptr, b.len, seed, 8) == NULL && memmem(b.ptr, b.len, seed + 24, 8) == NULL);
	kbuf_release(&b);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(k_ok(audit_signer_open(path, &sg, &msg))); /* the wrapped file, unwrapped */
	if (sg != NULL)
		CHECK_STR(audit_signer_fingerprint(sg), want);
	audit_signer_free(sg);
	sg = NULL;

	char rk[600], other[600];
	snprintf(rk, sizeof rk, "%s/root.key", root);
	snprintf(other, sizeof other, "%s/other-root.key", root);
	keystore_close();
	CHECK(k_ok(keystore_open_file(other, true, &msg)));
	kbuf_reset(&msg);
	CHECK(k_failed(audit_signer_open(path, &sg, &msg)));
	CHECK(strstr(kbuf_cstr(&msg), "does not unwrap under this root key") != NULL);
	keystore_close();
	CHECK(k_ok(keystore_open_file(rk, false, &msg)));

	char fresh[600];
	snprintf(fresh, sizeof fresh, "%s/fresh-signing.key", root);
	CHECK(k_ok(audit_signer_open(fresh, &sg, &msg)));
	audit_signer_free(sg);
	CHECK(stat(fresh, &st) == 0 && st.st_size == 68 && (st.st_mode & 0777) == 0600);
	kbuf_release(&msg);
}

/* Formats one call's event and parses it back (NULL if it is not valid JSON). */
static json_t *format_event(const struct audit_call_info *c, json_t *in, json_t *out, k_status rc,
			    const char *err, struct audit_resources *res, char event_id[37])
{
	struct kbuf b;
	kbuf_init(&b, 1u << 20);
	CHECK(k_ok(audit_format_call(c, in, out, rc, err, event_id, res, &b)));
	json_error_t e;
	json_t *ev = json_loadb((const char *)b.ptr, b.len, 0, &e);
	if (ev == NULL)
		fprintf(stderr, "not JSON (%s): %.*s\n", e.text, (int)b.len, (const char *)b.ptr);
	CHECK(memchr(b.ptr, '\n', b.len) == NULL);
	kbuf_release(&b);
	return ev;
}

static void test_format_call(void)
{
	/* A User-Agent with a quote, a control character and bytes that are not UTF-8. */
	static const char ua[] = "aws-cli/2 \"q\" \x01 \xff\xfe caf\xc3\xa9 \xe2\x82";
	const char *request_id = "11111111-2222-4333-8444-555555555555";
	struct audit_call_info c = {
		.who = {.account = "111122223333",
			.type = "AssumedRole",
			.arn = "arn:aws:sts::111122223333:assumed-role/Admin/sess1",
			.principal_id = "AROAEXAMPLE:sess1",
			.access_key = "ASIAEXAMPLE"},
		.event_source = "kms.amazonaws.com",
		.event_name = "Encrypt",
		.key_use = true,
		.region = "eu-west-1",
		.request_id = request_id,
		.source_ip = "127.0.0.1",
		.user_agent = kslice_make(ua, sizeof ua - 1),
		.now = 1738324800,
	};

	const char *key = "1234abcd-12ab-34cd-56ef-1234567890ab";
	json_t *in = json_pack("{s:s,s:s,s:{s:s,s:s},s:i,s:[s],s:{s:s,s:f,s:[{s:s,s:b}]}}", "KeyId",
			       key, "Plaintext", "c2VjcmV0", "EncryptionContext", "Department",
			       "it", "Plaintext", "kept: the caller's own name", "NumberOfBytes",
			       32, "GrantTokens", "tok", "Nested", "Message", "dropped", "Ratio",
			       1.5, "List", "SecretString", "dropped too", "Flag", 1);
	json_t *out = json_pack(
		"{s:s,s:s}", "KeyId",
		"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"CiphertextBlob", "Y2lwaGVy");
	struct audit_resources res;
	char id[37];
	json_t *e = format_event(&c, in, out, K_OK, NULL, &res, id);
	CHECK(e != NULL);
	CHECK_STR(json_string_value(json_object_get(e, "eventVersion")), "1.08");
	CHECK_STR(json_string_value(json_object_get(e, "eventTime")), "2025-01-31T12:00:00Z");
	CHECK_STR(json_string_value(json_object_get(e, "eventSource")), "kms.amazonaws.com");
	CHECK_STR(json_string_value(json_object_get(e, "eventName")), "Encrypt");
	CHECK_STR(json_string_value(json_object_get(e, "awsRegion")), "eu-west-1");
	CHECK_STR(json_string_value(json_object_get(e, "eventID")), id);
	CHECK_STR(json_string_value(json_object_get(e, "requestID")), request_id);
	CHECK(json_object_get(e, "readOnly") == json_true());
	CHECK(json_is_null(json_object_get(e, "responseElements")));
	CHECK(json_object_get(e, "errorCode") == NULL);
	CHECK_STR(json_string_value(json_object_get(e, "userAgent")),
		  "aws-cli/2 \"q\" \x01 \xef\xbf\xbd\xef\xbf\xbd caf\xc3\xa9 "
		  "\xef\xbf\xbd\xef\xbf\xbd");
	json_t *u = json_object_get(e, "userIdentity");
	CHECK_STR(json_string_value(json_object_get(u, "type")), "AssumedRole");
	CHECK_STR(json_string_value(json_object_get(u, "accessKeyId")), "ASIAEXAMPLE");
	json_t *issuer = json_object_get(json_object_get(u, "sessionContext"), "sessionIssuer");
	CHECK_STR(json_string_value(json_object_get(issuer, "arn")),
		  "arn:aws:iam::111122223333:role/Admin");
	CHECK_STR(json_string_value(json_object_get(issuer, "principalId")), "AROAEXAMPLE");
	CHECK_STR(json_string_value(json_object_get(issuer, "userName")), "Admin");
	json_t *rp = json_object_get(e, "requestParameters");
	CHECK(json_object_get(rp, "plaintext") == NULL && json_object_get(rp, "Plaintext") == NULL);
	CHECK(json_object_get(rp, "grantTokens") == NULL);
	CHECK_STR(json_string_value(json_object_get(rp, "keyId")), key);
	json_t *ec = json_object_get(rp, "encryptionContext");
	CHECK_STR(json_string_value(json_object_get(ec, "Department")), "it");
	CHECK(json_object_get(ec, "Plaintext") != NULL);
	CHECK_EQ_INT(json_integer_value(json_object_get(rp, "numberOfBytes")), 32);
	json_t *nested = json_object_get(rp, "nested");
	CHECK(json_object_get(nested, "message") == NULL &&
	      json_object_get(nested, "Message") == NULL);
	CHECK(json_real_value(json_object_get(nested, "ratio")) == 1.5);
	json_t *item = json_array_get(json_object_get(nested, "list"), 0);
	CHECK(json_object_size(item) == 1 && json_object_get(item, "flag") == json_true());
	json_t *r0 = json_array_get(json_object_get(e, "resources"), 0);
	CHECK_STR(json_string_value(json_object_get(r0, "ARN")),
		  json_string_value(json_object_get(out, "KeyId")));
	CHECK_STR(json_string_value(json_object_get(r0, "type")), "AWS::KMS::Key");
	CHECK_STR(json_string_value(json_object_get(r0, "accountId")), "111122223333");
	CHECK(res.n == 1);
	json_decref(e);

	/* A failed state-changing call by an IAM user: error members, no response elements. */
	c.event_name = "CreateAlias";
	c.mutates = true;
	c.key_use = false;
	c.who.type = "IAMUser";
	c.who.arn = "arn:aws:iam::111122223333:user/alice";
	c.secure = true;
	e = format_event(&c, in, out, K_E_NOT_FOUND, "Alias \"x\"\nnot found", &res, id);
	CHECK(e != NULL);
	CHECK_STR(json_string_value(json_object_get(e, "errorCode")), k_status_name(K_E_NOT_FOUND));
	CHECK_STR(json_string_value(json_object_get(e, "errorMessage")), "Alias \"x\"\nnot found");
	CHECK(json_object_get(e, "readOnly") == json_false());
	CHECK(json_is_null(json_object_get(e, "responseElements")));
	CHECK_STR(
		json_string_value(json_object_get(json_object_get(e, "userIdentity"), "userName")),
		"alice");
	CHECK_STR(
		json_string_value(json_object_get(json_object_get(e, "tlsDetails"), "tlsVersion")),
		"TLSv1.2+");
	json_decref(e);

	/* No principal (the signature was refused), no body. */
	c.who = (struct audit_who){"", "", "", "", ""};
	e = format_event(&c, NULL, NULL, K_E_NOT_FOUND, NULL, &res, id);
	CHECK(e != NULL);
	CHECK_STR(json_string_value(json_object_get(json_object_get(e, "userIdentity"), "type")),
		  "Unknown");
	CHECK(json_is_null(json_object_get(e, "requestParameters")) &&
	      json_is_null(json_object_get(e, "resources")));
	json_decref(e);

	/* No known service or operation, no User-Agent: "kinko", "Unknown", not read-only. */
	c.event_source = NULL;
	c.event_name = NULL;
	c.mutates = false;
	c.user_agent = kslice_make("", 0);
	c.region = "";
	e = format_event(&c, NULL, NULL, K_E_UNKNOWN_OPERATION, NULL, &res, id);
	CHECK(e != NULL);
	CHECK_STR(json_string_value(json_object_get(e, "eventSource")), "kinko");
	CHECK_STR(json_string_value(json_object_get(e, "eventName")), "Unknown");
	CHECK_STR(json_string_value(json_object_get(e, "userAgent")), "");
	CHECK_STR(json_string_value(json_object_get(e, "awsRegion")), "us-east-1");
	CHECK(json_object_get(e, "readOnly") == json_false());
	json_decref(e);
	json_decref(in);
	json_decref(out);
	CHECK(audit_is_sensitive("plaintext") && audit_is_sensitive("SecretString"));
	CHECK(!audit_is_sensitive("KeyId"));
	int64_t t = 0;
	CHECK(audit_parse_iso8601("2025-01-31T12:00:00Z", &t) && t == 1738324800);
	CHECK(!audit_parse_iso8601("2025-01-31 12:00", &t));
}

/*
 * A use read back at start (the index, the trail's backlog, read after the
 * server listens) does not replace a call's use of the same second: it
 * came before it. Among uses of one kind the later noted wins a tie.
 */
static void test_lastuse_past_and_live(void)
{
	const char *arn =
		"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
	struct audit_lastuse u;
	audit_lastuse_reset();
	audit_lastuse_note(arn, "Encrypt", 1000, "live", "r1");
	audit_lastuse_note_past(arn, "Decrypt", 1000, "past", "r0");
	CHECK(audit_lastuse_get(arn, &u));
	CHECK_STR(u.event_id, "live");
	audit_lastuse_note_past(arn, "Decrypt", 999, "older", "r0");
	CHECK(audit_lastuse_get(arn, &u));
	CHECK_STR(u.event_id, "live");
	audit_lastuse_note_past(arn, "Decrypt", 1001, "later", "r2");
	CHECK(audit_lastuse_get(arn, &u));
	CHECK_STR(u.event_id, "later");
	audit_lastuse_note_past(arn, "Sign", 1001, "later2", "r3");
	CHECK(audit_lastuse_get(arn, &u));
	CHECK_STR(u.event_id, "later2");
	audit_lastuse_note(arn, "Encrypt", 1001, "live2", "r4");
	CHECK(audit_lastuse_get(arn, &u));
	CHECK_STR(u.event_id, "live2");
	audit_lastuse_reset();
}

/* The last-use index, rebuilt from logged events: only the operations it is given count. */
static void test_lastuse_from_events(void)
{
	static const struct audit_op_name key_use[] = {{"kms.amazonaws.com", "Encrypt"},
						       {"kms.amazonaws.com", "Sign"}};
	const char *arn =
		"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
	audit_lastuse_reset();
	json_t *describe =
		json_pack("{s:s,s:s,s:s,s:s,s:s,s:[{s:s}]}", "eventSource", "kms.amazonaws.com",
			  "eventName", "DescribeKey", "eventTime", "2025-01-31T12:00:00Z",
			  "eventID", "e1", "requestID", "r1", "resources", "ARN", arn);
	audit_lastuse_from_event(describe, key_use, 2);
	struct audit_lastuse u;
	CHECK(!audit_lastuse_get(arn, &u));
	json_t *failed = json_deep_copy(describe);
	json_object_set_new(failed, "eventName", json_string("Encrypt"));
	json_object_set_new(failed, "errorCode", json_string("DisabledException"));
	audit_lastuse_from_event(failed, key_use, 2);
	CHECK(!audit_lastuse_get(arn, &u));
	json_t *other = json_deep_copy(describe);
	json_object_set_new(other, "eventSource", json_string("secretsmanager.amazonaws.com"));
	json_object_set_new(other, "eventName", json_string("Sign"));
	audit_lastuse_from_event(other, key_use, 2);
	CHECK(!audit_lastuse_get(arn, &u));
	json_t *sign = json_deep_copy(describe);
	json_object_set_new(sign, "eventName", json_string("Sign"));
	json_object_set_new(sign, "eventID", json_string("e2"));
	audit_lastuse_from_event(sign, NULL, 0); /* no operations given: nothing noted */
	CHECK(!audit_lastuse_get(arn, &u));
	audit_lastuse_from_event(sign, key_use, 2);
	CHECK(audit_lastuse_get(arn, &u));
	CHECK_STR(u.op, "Sign");
	CHECK_STR(u.event_id, "e2");
	CHECK(u.t == 1738324800);
	json_decref(describe);
	json_decref(failed);
	json_decref(other);
	json_decref(sign);
	audit_lastuse_reset();
}

/* The names --quota knows, as the registered rows would give them. */
static bool known_quota_name(const char *name)
{
	return strcmp(name, "symmetric") == 0 || strcmp(name, "Encrypt") == 0 ||
	       strcmp(name, "CreateKey") == 0;
}

static void test_quota(void)
{
	struct kbuf msg;
	kbuf_init(&msg, 512);
	CHECK(k_ok(quota_set("symmetric=5", known_quota_name, &msg)));
	CHECK(k_is(quota_set("nonsense=5", known_quota_name, &msg), K_E_VALIDATION));
	CHECK(k_is(quota_set("Encrypt=abc", known_quota_name, &msg), K_E_VALIDATION));
	CHECK(k_is(quota_set("Encrypt", known_quota_name, &msg), K_E_VALIDATION));
	int ok = 0, throttled = 0;
	for (int i = 0; i < 8; i++) {
		k_status rc = quota_take("TrentService.", "111122223333", "us-east-1",
					 i % 2 ? "Encrypt" : "Decrypt", "symmetric", 5500);
		ok += k_ok(rc);
		throttled += k_is(rc, K_E_THROTTLING);
	}
	CHECK_EQ_INT(ok, 5);
	CHECK_EQ_INT(throttled, 3);
	/* Another account, another region, another service: their own buckets. */
	CHECK(k_ok(quota_take("TrentService.", "444455556666", "us-east-1", "Encrypt", "symmetric",
			      5500)));
	CHECK(k_ok(quota_take("TrentService.", "111122223333", "eu-west-1", "Encrypt", "symmetric",
			      5500)));
	CHECK(k_ok(quota_take("secretsmanager.", "111122223333", "us-east-1", "Encrypt",
			      "symmetric", 5500)));
	/* Operations without a quota are never throttled. */
	CHECK(k_ok(quota_take("KinkoTest.", "111122223333", "us-east-1", "Reset", NULL, -1)));
	CHECK(quota_rate("us-east-1", "CreateKey", NULL, 50) == 50);
	CHECK(quota_rate("sa-east-1", "Encrypt", "symmetric", 5500) == 5);
	quota_enable(false);
	CHECK(k_ok(quota_take("TrentService.", "111122223333", "us-east-1", "Encrypt", "symmetric",
			      5500)));
	kbuf_release(&msg);
}

static void test_metrics(void)
{
	metrics_request(0, "kms", 3, "Encrypt", K_OK, 0.002);
	metrics_request(0, "kms", 3, "Encrypt", K_E_NOT_FOUND, 0.02);
	metrics_throttled();
	struct kbuf b;
	kbuf_init(&b, 1u << 22);
	CHECK(k_ok(metrics_render(&b)));
	const char *t = kbuf_cstr(&b);
	CHECK(strstr(t, "kinko_requests_total{service=\"kms\",operation=\"Encrypt\"} 2") != NULL);
	CHECK(strstr(t, "kinko_errors_total{service=\"kms\",operation=\"Encrypt\",error_code="
			"\"NotFoundException\"} 1") != NULL);
	CHECK(strstr(t, "kinko_request_duration_seconds_bucket{service=\"kms\",operation="
			"\"Encrypt\",le=\"0.0025\"} 1") != NULL);
	CHECK(strstr(t, "kinko_throttled_requests_total 4") != NULL); /* 3 from test_quota */
	kbuf_release(&b);
}

int main(void)
{
	kjson_init();
	snprintf(root, sizeof root, "/tmp/kinko-audit-test-%d", (int)getpid());
	mkdir(root, 0700);
	/* The audit signing key is wrapped under the root key. */
	char rk[600];
	snprintf(rk, sizeof rk, "%s/root.key", root);
	struct kbuf msg;
	kbuf_init(&msg, 512);
	CHECK(k_ok(keystore_open_file(rk, true, &msg)));
	kbuf_release(&msg);
	RUN(test_intact);
	RUN(test_tampering);
	RUN(test_rotation_by_size);
	RUN(test_write_mode);
	RUN(test_version1_digests);
	RUN(test_period_digests);
	RUN(test_erasures_are_named);
	RUN(test_signing_key_wrapped);
	RUN(test_format_call);
	RUN(test_lastuse_from_events);
	RUN(test_lastuse_past_and_live);
	RUN(test_quota);
	RUN(test_metrics);
	rm_rf(root);
	keystore_close();
	return tl_summary();
}
