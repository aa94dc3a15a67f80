#include "core/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

/*
 * Runs fn with standard error pointed at a temporary file and returns what
 * it wrote (at most cap - 1 bytes) in out.
 */
static void capture(void (*fn)(void), char *out, size_t cap)
{
	char path[] = "/tmp/kinko-log-test-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	int saved = dup(2);
	dup2(fd, 2);
	fn();
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, out, cap - 1, 0);
	out[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
}

static void write_request(void)
{
	struct klog_request r = {
		.request_id = "11111111-2222-3333-4444-555555555555",
		.principal = "arn:aws:iam::000000000000:user/a\"b",
		.service = "kms",
		.operation = "Encrypt",
		.resource = "arn:aws:kms:us-east-1:000000000000:key/k",
		.status = 200,
		.latency_ms = 1.5,
	};
	klog_request(KLOG_INFO, &r);
}

/* Latencies as "%.3f" prints them, written without printf (core/log.c). */
static const double latencies[] = {0.0, 0.0004, 0.0006, 12.3456, 999.9996, 1234.5, 86400000.25};
static const char *const latency_text[] = {"0.000",    "0.000",	   "0.001",	  "12.346",
					   "1000.000", "1234.500", "86400000.250"};
static size_t latency_at;

static void write_latency(void)
{
	struct klog_request r = {
		.request_id = "r", .status = 404, .latency_ms = latencies[latency_at]};
	klog_request(KLOG_INFO, &r);
}

static void test_numbers(void)
{
	char out[KLOG_MAX_LINE];
	char want[64];
	klog_set_format(KLOG_TEXT);
	for (latency_at = 0; latency_at < sizeof latencies / sizeof latencies[0]; latency_at++) {
		capture(write_latency, out, sizeof out);
		snprintf(want, sizeof want, " status=404 errorCode=- latencyMs=%s\n",
			 latency_text[latency_at]);
		CHECK(strstr(out, want) != NULL);
	}
}

static void write_message(void)
{
	LOG_WARN("line with a \"quote\", a \\ and a\nnewline");
}

static void write_long(void)
{
	char big[3 * KLOG_MAX_LINE];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	LOG_INFO("%s", big);
}

/* Cut where an escape or a UTF-8 character would be split. */
static void write_long_escapes(void)
{
	char big[2 * KLOG_MAX_LINE];
	for (size_t i = 0; i + 3 < sizeof big; i += 3)
		memcpy(big + i, i % 2 ? "\"\xc3\xa9" : "\xe2\x82\xac", 3);
	big[sizeof big - 1 - (sizeof big - 1) % 3] = 0;
	for (int shift = 0; shift < 3; shift++)
		LOG_INFO("%.*s%s", shift, "ab", big);
}

static void test_text(void)
{
	char out[4 * KLOG_MAX_LINE];
	klog_set_format(KLOG_TEXT);
	capture(write_request, out, sizeof out);
	CHECK(strstr(out, " kinko info: request requestId=11111111-2222-3333-4444-555555555555 "
			  "principal=arn:aws:iam::000000000000:user/a\"b service=kms "
			  "operation=Encrypt resource=arn:aws:kms:us-east-1:000000000000:key/k "
			  "status=200 errorCode=- latencyMs=1.500\n") != NULL);
	CHECK(strstr(out, "accessKeyId") == NULL);
	/* A newline inside a message never starts a line of its own. */
	capture(write_message, out, sizeof out);
	CHECK(strstr(out, " kinko warn: line with a \"quote\", a \\ and a?newline\n") != NULL);
	CHECK_EQ_INT(strchr(out, '\n') - out + 1, strlen(out));
}

static void test_json(void)
{
	char out[4 * KLOG_MAX_LINE];
	klog_set_format(KLOG_JSON);
	capture(write_request, out, sizeof out);
	json_error_t e;
	json_t *d = json_loads(out, 0, &e);
	CHECK(d != NULL);
	CHECK_STR(json_string_value(json_object_get(d, "level")), "info");
	CHECK_STR(json_string_value(json_object_get(d, "message")), "request");
	CHECK_STR(json_string_value(json_object_get(d, "principal")),
		  "arn:aws:iam::000000000000:user/a\"b");
	CHECK(json_is_null(json_object_get(d, "errorCode")));
	CHECK(json_is_null(json_object_get(d, "accessKeyId")));
	CHECK_EQ_INT(json_integer_value(json_object_get(d, "status")), 200);
	CHECK(json_real_value(json_object_get(d, "latencyMs")) == 1.5);
	CHECK(strlen(json_string_value(json_object_get(d, "time"))) == 24);
	json_decref(d);
	capture(write_message, out, sizeof out);
	d = json_loads(out, 0, &e);
	CHECK(d != NULL);
	CHECK_STR(json_string_value(json_object_get(d, "message")),
		  "line with a \"quote\", a \\ and a\nnewline");
	json_decref(d);
	/* A line too long is cut, and still one JSON object ending in a newline. */
	capture(write_long, out, sizeof out);
	CHECK(strlen(out) <= KLOG_MAX_LINE);
	CHECK(out[strlen(out) - 1] == '\n');
	d = json_loads(out, 0, &e);
	CHECK(d != NULL);
	json_decref(d);
	capture(write_long_escapes, out, sizeof out);
	size_t lines = 0;
	for (char *line = out; *line != 0; lines++) {
		char *nl = strchr(line, '\n');
		CHECK(nl != NULL);
		d = json_loadb(line, (size_t)(nl - line), 0, &e);
		CHECK(d != NULL);
		json_decref(d);
		line = nl + 1;
	}
	CHECK_EQ_INT(lines, 3);
	klog_set_format(KLOG_TEXT);
}

static void test_parse_format(void)
{
	enum klog_format f = KLOG_TEXT;
	CHECK(k_ok(klog_parse_format("json", &f)) && f == KLOG_JSON);
	CHECK(k_ok(klog_parse_format("text", &f)) && f == KLOG_TEXT);
	CHECK(k_is(klog_parse_format("JSON", &f), K_E_VALIDATION) && f == KLOG_TEXT);
	CHECK(k_is(klog_parse_format(NULL, &f), K_E_VALIDATION));
}

int main(void)
{
	RUN(test_text);
	RUN(test_json);
	RUN(test_numbers);
	RUN(test_parse_format);
	return tl_summary();
}
