#include "core/log.h"

#include <jansson.h>
#include <pthread.h>
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
	klog_flush();
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

/* What standard error's file holds now, NUL-terminated (at most cap - 1 bytes). */
static size_t file_text(int fd, char *out, size_t cap)
{
	ssize_t n = pread(fd, out, cap - 1, 0);
	out[n > 0 ? n : 0] = 0;
	return n > 0 ? (size_t)n : 0;
}

static size_t count_of(const char *text, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void *two_lines_then_exit(void *arg)
{
	(void)arg;
	write_request();
	write_request();
	return NULL;
}

/*
 * A busy thread's request lines are kept and written: at once when the
 * thread was idle, else when another line of the thread comes (first),
 * when klog_flush() runs, when the flusher passes, when the thread ends;
 * every line whole and in order.
 */
static void test_busy_lines(void)
{
	char path[] = "/tmp/kinko-log-busy-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	int saved = dup(2);
	dup2(fd, 2);
	static char text[256 * 1024];
	klog_set_busy_ns(0); /* an idle thread: at once */
	write_request();
	klog_set_busy_ns(60LL * 1000000000); /* from now on every line counts as busy */
	CHECK_EQ_INT(count_of((file_text(fd, text, sizeof text), text), "requestId=1111"), 1);
	write_request(); /* kept */
	CHECK_EQ_INT(count_of((file_text(fd, text, sizeof text), text), "requestId=1111"), 1);
	klog(KLOG_WARN, "after the kept one");
	file_text(fd, text, sizeof text);
	CHECK_EQ_INT(count_of(text, "requestId=1111"), 2);
	const char *warn = strstr(text, "after the kept one");
	CHECK(warn != NULL &&
	      strstr(warn, "requestId=1111") == NULL); /* the kept line came first */
	write_request();			       /* kept, until the flusher passes */
	for (int i = 0;
	     i < 200 && count_of((file_text(fd, text, sizeof text), text), "requestId=1111") < 3;
	     i++)
		usleep(10000);
	CHECK_EQ_INT(count_of(text, "requestId=1111"), 3);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, two_lines_then_exit, NULL) == 0);
	pthread_join(t, NULL); /* its second line, kept, is written as it ends */
	CHECK_EQ_INT(count_of((file_text(fd, text, sizeof text), text), "requestId=1111"), 5);
	for (int i = 0; i < 300; i++) /* more than a buffer: written as it fills */
		write_request();
	klog_flush();
	size_t n = file_text(fd, text, sizeof text);
	CHECK_EQ_INT(count_of(text, "requestId=1111"), 305);
	CHECK_EQ_INT(count_of(text, "\n"), 306);
	CHECK(n > 0 && text[n - 1] == '\n');
	bool whole = true; /* every line starts with its time and " kinko " */
	for (const char *line = text; *line != 0; line = strchr(line, '\n') + 1)
		whole = whole && strncmp(line + 24, " kinko ", 7) == 0;
	CHECK(whole);
	klog_set_busy_ns(KLOG_BUSY_NS);
	dup2(saved, 2);
	close(saved);

	close(fd);
	unlink(path);
}

int main(void)
{
	RUN(test_text);
	RUN(test_json);
	RUN(test_numbers);
	RUN(test_parse_format);
	RUN(test_busy_lines);
	return tl_summary();
}
