/*
 * sigv4_client.c — a SigV4-signed POST over libcurl (sigv4_client.h).
 */
#include "auth/sigv4_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/sigv4.h"
#include "core/clock.h"
#include "core/curl_init.h"
#include "core/banned.h"

#define CONTENT_TYPE "application/x-amz-json-1.1"
#define SIGNED "content-type;host;x-amz-date;x-amz-target"
/* The Authorization header: the credential scope, SignedHeaders, 64 hex digits. */
#define AUTH_HEADER_MAX 640
#define TARGET_HEADER_MAX 160

struct call {
	const struct sigv4_client_call *o;
	char url[SIGV4_CLIENT_MAX_URL];
	const char *host; /* the URL's authority, into url */
	size_t host_len;
	struct kslice body;
};

static K_MUST_CHECK k_status make_url(struct call *x)
{
	const char *e = x->o->endpoint;
	ENSURE(e != NULL && strncmp(e, "https://", 8) == 0, K_E_VALIDATION);
	int el = (int)strlen(e);
	while (el > 8 && e[el - 1] == '/')
		el--;
	int n = snprintf(x->url, sizeof x->url, "%.*s/", el, e);
	ENSURE(n > 0 && (size_t)n < sizeof x->url, K_E_VALIDATION);
	x->host = x->url + 8;
	x->host_len = strcspn(x->host, "/");
	return K_OK;
}

/* The Authorization header for the call at `date` (YYYYMMDD'T'HHMMSS'Z'). */
static K_MUST_CHECK k_status sign(const struct call *x, const char date[17],
				  char authz[AUTH_HEADER_MAX])
{
	const struct sigv4_client_call *o = x->o;
	struct http_header h[4] = {
		{KSLICE_LIT("content-type"), KSLICE_LIT(CONTENT_TYPE)},
		{KSLICE_LIT("host"), kslice_make(x->host, x->host_len)},
		{KSLICE_LIT("x-amz-date"), kslice_make(date, 16)},
		{KSLICE_LIT("x-amz-target"), kslice_cstr(o->target)},
	};
	struct sigv4_request req = {
		KSLICE_LIT("POST"), KSLICE_LIT("/"), kslice_make("", 0), h, 4, x->body};
	char scope_date[9];
	snprintf(scope_date, sizeof scope_date, "%.8s", date);
	struct kbuf creq, sts;
	kbuf_init(&creq, SIGV4_MAX_CANONICAL_REQUEST);
	kbuf_init(&sts, SIGV4_MAX_CANONICAL_REQUEST);
	uint8_t sig[32];
	k_status rc = sigv4_canonical_request(&req, KSLICE_LIT(SIGNED), &creq);
	if (k_ok(rc))
		rc = sigv4_string_to_sign(date, scope_date, o->region, o->service,
					  kbuf_slice(&creq), &sts);
	if (k_ok(rc))
		rc = sigv4_sign(o->secret, scope_date, o->region, o->service, kbuf_slice(&sts),
				sig);
	kbuf_release(&creq);
	kbuf_release(&sts);
	GUARD(rc);
	char hex[65];
	for (size_t i = 0; i < sizeof sig; i++)
		snprintf(hex + 2 * i, 3, "%02x", sig[i]);
	int n = snprintf(authz, AUTH_HEADER_MAX,
			 "Authorization: AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
			 "SignedHeaders=" SIGNED ", Signature=%s",
			 o->access_key_id, scope_date, o->region, o->service, hex);
	return n > 0 && n < AUTH_HEADER_MAX ? K_OK : K_E_VALIDATION;
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	struct kbuf *b = arg;
	return k_ok(kbuf_append(b, p, size * n)) ? size * n : 0;
}

static bool set_options(CURL *e, const struct call *x, struct curl_slist *hdrs, char *errbuf,
			struct kbuf *answer)
{
	const struct sigv4_client_call *o = x->o;
	long timeout = o->timeout_ms > 0 ? o->timeout_ms : SIGV4_CLIENT_TIMEOUT_MS;
	bool ok = curl_easy_setopt(e, CURLOPT_URL, x->url) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)x->body.ptr) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)x->body.len) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)answer) == CURLE_OK;
	if (ok && o->ca_file != NULL && o->ca_file[0] != 0)
		ok = curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file) == CURLE_OK;
	return ok;
}

/* The request's headers, each line appended to *h. */
static K_MUST_CHECK k_status headers(const struct call *x, const char *date, struct curl_slist **h)
{
	char authz[AUTH_HEADER_MAX], host[SIGV4_CLIENT_MAX_URL], datehdr[40],
		target[TARGET_HEADER_MAX];
	GUARD(sign(x, date, authz));
	snprintf(host, sizeof host, "Host: %.*s", (int)x->host_len, x->host);
	snprintf(datehdr, sizeof datehdr, "X-Amz-Date: %s", date);
	int n = snprintf(target, sizeof target, "X-Amz-Target: %s", x->o->target);
	ENSURE(n > 0 && (size_t)n < sizeof target, K_E_VALIDATION);
	const char *lines[] = {host,	 datehdr, authz, target, "Content-Type: " CONTENT_TYPE,
			       "Expect:"};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		struct curl_slist *t = curl_slist_append(*h, lines[i]);
		ENSURE(t != NULL, K_E_INTERNAL);
		*h = t;
	}
	return K_OK;
}

k_status sigv4_client_post(const struct sigv4_client_call *o, struct kslice body,
			   struct kbuf *answer, long *status, struct kbuf *why)
{
	struct call x = {.o = o, .body = body};
	*status = 0;
	GUARD(make_url(&x));
	GUARD(kcurl_global_init());
	char date[17];
	time_t t = (time_t)kclock_now();
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
	struct curl_slist *h = NULL;
	k_status rc = headers(&x, date, &h);
	if (k_failed(rc)) {
		curl_slist_free_all(h);
		return rc;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *e = curl_easy_init();
	CURLcode cc = e != NULL && set_options(e, &x, h, errbuf, answer) ? curl_easy_perform(e)
									 : CURLE_FAILED_INIT;
	if (cc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	if (cc == CURLE_OK)
		return K_OK;
	if (why != NULL)
		kbuf_note(why, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
	return K_E_DEPENDENCY_TIMEOUT;
}
