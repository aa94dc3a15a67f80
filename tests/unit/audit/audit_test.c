/*
 * audit_test.c — the audit writer, its chain and digests, the offline
 * verifier against each kind of tampering, redaction, quotas and metrics.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/json.h"
#include "metrics/metrics.h"
#include "quota/quota.h"
#include "testlib.h"
#include "core/banned.h"

static char root[256];

static void rm_rf(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "command failed: %s\n", cmd);
}

/* Opens a trail in dir, writes n service events, closes (seals) it. */
static void write_events(const char *dir, int n, uint64_t max_bytes)
{
	char key[512];
	snprintf(key, sizeof key, "%s/signing.key", root);
	struct audit_options o = {.dir = dir, .key_file = key, .sync = AUDIT_SYNC_FSYNC,
				  .max_file_bytes = max_bytes};
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	CHECK(audit_open(&o, &msg) == K_OK);
	for (int i = 0; i < n; i++) {
		char arn[128];
		snprintf(arn, sizeof arn, "arn:aws:kms:us-east-1:111122223333:key/%08d-0000-4000-8000-000000000000", i);
		json_t *d = json_pack("{s:s}", "keyId", arn);
		CHECK(audit_emit_service_event("kms.amazonaws.com", i % 2 ? "RotateKey" : "DeleteKey",
					       "111122223333", "us-east-1", arn, "AWS::KMS::Key", d,
					       K_OK) == K_OK);
		json_decref(d);
	}
	audit_close();
	kbuf_release(&msg);
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
	if (strstr(out, want1) == NULL || (want2 && strstr(out, want2) == NULL)) {
		tl_failed++;
		fprintf(stderr, "FAIL [%s]: report lacks '%s' / '%s':\n%s\n", name, want1,
			want2 ? want2 : "", out);
	} else {
		tl_passed++;
	}
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
	tamper("digest", "sed -i 's/\"records\":12/\"records\":11/' \"$F.digest\"", "SIGNATURE digest",
	       NULL);
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

static void test_redact(void)
{
	json_t *in = json_pack("{s:s,s:s,s:{s:s},s:i,s:[s]}", "KeyId", "alias/x", "Plaintext", "c2VjcmV0",
			       "EncryptionContext", "Department", "it", "NumberOfBytes", 32,
			       "GrantTokens", "tok");
	json_t *r = audit_redact(in, true);
	CHECK(json_object_get(r, "plaintext") == NULL && json_object_get(r, "Plaintext") == NULL);
	CHECK(json_object_get(r, "grantTokens") == NULL);
	CHECK_STR(json_string_value(json_object_get(r, "keyId")), "alias/x");
	CHECK_STR(json_string_value(json_object_get(json_object_get(r, "encryptionContext"), "Department")),
		  "it");
	CHECK_EQ_INT(json_integer_value(json_object_get(r, "numberOfBytes")), 32);
	json_decref(r);
	json_decref(in);
	CHECK(!audit_op_mutates("kms.amazonaws.com", "Encrypt"));
	CHECK(!audit_op_mutates("kms.amazonaws.com", "DescribeKey"));
	CHECK(audit_op_mutates("kms.amazonaws.com", "ScheduleKeyDeletion"));
	int64_t t = 0;
	CHECK(audit_parse_iso8601("2025-01-31T12:00:00Z", &t) && t == 1738324800);
	CHECK(!audit_parse_iso8601("2025-01-31 12:00", &t));
}

static void test_quota(void)
{
	struct kbuf msg;
	kbuf_init(&msg, 512);
	CHECK(quota_set("symmetric=5", &msg) == K_OK);
	CHECK(quota_set("nonsense=5", &msg) == K_E_VALIDATION);
	CHECK(quota_set("Encrypt=abc", &msg) == K_E_VALIDATION);
	CHECK(quota_set("Encrypt", &msg) == K_E_VALIDATION);
	int ok = 0, throttled = 0;
	for (int i = 0; i < 8; i++) {
		k_status rc = quota_take("111122223333", "us-east-1", i % 2 ? "Encrypt" : "Decrypt");
		ok += rc == K_OK;
		throttled += rc == K_E_THROTTLING;
	}
	CHECK_EQ_INT(ok, 5);
	CHECK_EQ_INT(throttled, 3);
	/* Another account, another region: their own buckets. */
	CHECK(quota_take("444455556666", "us-east-1", "Encrypt") == K_OK);
	CHECK(quota_take("111122223333", "eu-west-1", "Encrypt") == K_OK);
	/* Operations without a quota are never throttled. */
	CHECK(quota_take("111122223333", "us-east-1", "NoSuchOperation") == K_OK);
	CHECK(quota_rate("us-east-1", "CreateKey") == 50);
	CHECK(quota_rate("sa-east-1", "Encrypt") == 5);
	quota_enable(false);
	CHECK(quota_take("111122223333", "us-east-1", "Encrypt") == K_OK);
	kbuf_release(&msg);
}

static void test_metrics(void)
{
	metrics_request(0, "kms", 3, "Encrypt", K_OK, 0.002);
	metrics_request(0, "kms", 3, "Encrypt", K_E_NOT_FOUND, 0.02);
	metrics_throttled();
	struct kbuf b;
	kbuf_init(&b, 1u << 22);
	CHECK(metrics_render(&b) == K_OK);
	const char *t = kbuf_cstr(&b);
	CHECK(strstr(t, "kinko_requests_total{service=\"kms\",operation=\"Encrypt\"} 2") != NULL);
	CHECK(strstr(t, "kinko_errors_total{service=\"kms\",operation=\"Encrypt\",error_code=\"NotFoundException\"} 1") != NULL);
	CHECK(strstr(t, "kinko_request_duration_seconds_bucket{service=\"kms\",operation=\"Encrypt\",le=\"0.0025\"} 1") != NULL);
	CHECK(strstr(t, "kinko_throttled_requests_total 4") != NULL); /* 3 from test_quota */
	kbuf_release(&b);
}

int main(void)
{
	kjson_init();
	snprintf(root, sizeof root, "/tmp/kinko-audit-test-%d", (int)getpid());
	mkdir(root, 0700);
	RUN(test_intact);
	RUN(test_tampering);
	RUN(test_rotation_by_size);
	RUN(test_redact);
	RUN(test_quota);
	RUN(test_metrics);
	rm_rf(root);
	return tl_summary();
}
