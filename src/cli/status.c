/*
 * status.c — `kinko status` (status.h): GET /ready on the API endpoint
 * and, when asked, GET /metrics on the metrics listener, both with
 * libcurl and a short timeout, read into bounded buffers.
 */
#include "cli/status.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/banned.h"

#define STATUS_DEFAULT_ENDPOINT "http://127.0.0.1:4599"
/* /ready's answer is a few dozen bytes; /metrics a few hundred lines per operation used. */
#define STATUS_MAX_READY 4096u
#define STATUS_MAX_METRICS (4u << 20)
#define STATUS_MAX_URL 1024u
#define STATUS_TIMEOUT_S 5L

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	struct kbuf *b = arg;
	return k_ok(kbuf_append(b, p, size * n)) ? size * n : 0;
}

/*
 * GETs base + path into body. Returns the HTTP status, or 0 when no
 * answer came (the reason in why).
 */
static long http_get(const char *base, const char *path, struct kbuf *body, char *why,
		     size_t why_len)
{
	char url[STATUS_MAX_URL];
	size_t bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	if (bl + strlen(path) >= sizeof url) {
		kstr_copy(why, why_len, "the URL is too long");
		return 0;
	}
	memcpy(url, base, bl);
	kstr_copy(url + bl, sizeof url - bl, path);
	CURL *e = curl_easy_init();
	if (e == NULL) {
		kstr_copy(why, why_len, "out of memory");
		return 0;
	}
	long code = 0;
	char err[CURL_ERROR_SIZE] = "";
	bool set = curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
		   curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
		   curl_easy_setopt(e, CURLOPT_TIMEOUT, STATUS_TIMEOUT_S) == CURLE_OK &&
		   curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
		   curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err) == CURLE_OK &&
		   curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect) == CURLE_OK &&
		   curl_easy_setopt(e, CURLOPT_WRITEDATA, body) == CURLE_OK;
	CURLcode rc = set ? curl_easy_perform(e) : CURLE_URL_MALFORMAT;
	if (rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	else
		kstr_copy(why, why_len, err[0] ? err : curl_easy_strerror(rc));
	curl_easy_cleanup(e);
	return code;
}

/* The checks of /ready's answer, one a line: "  store  ok". */
static void print_checks(const struct kbuf *body)
{
	json_t *doc = json_loadb((const char *)body->ptr, body->len, 0, NULL);
	json_t *checks = json_object_get(doc, "checks");
	const char *name;
	json_t *v;
	json_object_foreach(checks, name, v)
	{
		const char *s = json_string_value(v);
		printf("  %-8s %s\n", name, s != NULL ? s : "?");
	}
	json_decref(doc);
}

/*
 * The sum of a metric's samples over all its labels in Prometheus's text
 * format ("NAME{...} VALUE" or "NAME VALUE"); false if it has none.
 */
static bool metric_sum(const char *text, const char *name, double *out)
{
	size_t nl = strlen(name);
	bool found = false;
	*out = 0;
	for (const char *line = text; line != NULL && *line != 0;) {
		const char *end = strchr(line, '\n');
		if (strncmp(line, name, nl) == 0 && (line[nl] == ' ' || line[nl] == '{')) {
			const char *sp =
				memchr(line, ' ', end ? (size_t)(end - line) : strlen(line));
			if (line[nl] == '{') {
				const char *close = strchr(line, '}');
				sp = close != NULL && (end == NULL || close < end) ? close + 1
										   : NULL;
			}
			char *stop = NULL;
			double v = sp != NULL ? strtod(sp, &stop) : 0;
			if (stop != NULL && stop != sp) {
				*out += v;
				found = true;
			}
		}
		line = end != NULL ? end + 1 : NULL;
	}
	return found;
}

static void print_metric(const char *text, const char *label, const char *name)
{
	double v;
	if (metric_sum(text, name, &v))
		printf("  %-12s %.0f\n", label, v);
	else
		printf("  %-12s 0\n", label);
}

/* The numbers of /metrics; a metrics listener that does not answer is said, not fatal. */
static void print_metrics(const char *url)
{
	struct kbuf body;
	kbuf_init(&body, STATUS_MAX_METRICS);
	char why[CURL_ERROR_SIZE] = "";
	long code = http_get(url, "/metrics", &body, why, sizeof why);
	if (code != 200) {
		if (code == 0)
			printf("metrics: cannot read %s/metrics: %s\n", url, why);
		else
			printf("metrics: %s/metrics answered HTTP %ld\n", url, code);
		kbuf_release(&body);
		return;
	}
	const char *text = kbuf_cstr(&body);
	printf("metrics (%s):\n", url);
	print_metric(text, "requests", "kinko_requests_total");
	print_metric(text, "errors", "kinko_errors_total");
	print_metric(text, "throttled", "kinko_throttled_requests_total");
	double live;
	if (metric_sum(text, "kinko_cluster_live_nodes", &live))
		printf("  %-12s %.0f\n", "live nodes", live);
	kbuf_release(&body);
}

static int status_usage(FILE *f, int rc)
{
	fprintf(f, "usage: kinko status [--endpoint URL] [--metrics URL]\n"
		   "  --endpoint URL  the server's API endpoint (default " STATUS_DEFAULT_ENDPOINT
		   ")\n"
		   "  --metrics URL   its metrics listener (--metrics-listen), for request counts\n"
		   "exit status: 0 ready, 1 not ready, 2 cannot connect\n");
	return rc;
}

int cli_status(int argc, char **argv)
{
	const char *endpoint = STATUS_DEFAULT_ENDPOINT, *metrics = NULL;
	for (int i = 0; i < argc; i++) {
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return status_usage(stdout, 0);
		if (strcmp(argv[i], "--endpoint") == 0 && next != NULL)
			endpoint = argv[++i];
		else if (strcmp(argv[i], "--metrics") == 0 && next != NULL)
			metrics = argv[++i];
		else
			return status_usage(stderr, 2);
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "kinko status: cannot start the HTTP client\n");
		return 2;
	}
	struct kbuf body;
	kbuf_init(&body, STATUS_MAX_READY);
	char why[CURL_ERROR_SIZE] = "";
	long code = http_get(endpoint, "/ready", &body, why, sizeof why);
	int rc = code == 200 ? 0 : code == 0 ? 2 : 1;
	if (code == 0)
		printf("%s: cannot connect: %s\n", endpoint, why);
	else if (code == 200 || code == 503)
		printf("%s: %s (HTTP %ld)\n", endpoint, code == 200 ? "ready" : "NOT READY", code);
	else
		printf("%s: not ready: /ready answered HTTP %ld (is this a kinko endpoint?)\n",
		       endpoint, code);
	if (code == 200 || code == 503)
		print_checks(&body);
	kbuf_release(&body);
	if (metrics != NULL)
		print_metrics(metrics);
	curl_global_cleanup();
	return rc;
}
