/*
 * sigv4_client.c — a SigV4-signed POST over libcurl (sigv4_client.h).
 */
#include "auth/sigv4_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/sigv4.h"
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
	struct sigv4_signer who = {o->access_key_id, o->secret, o->region, o->service};
	return sigv4_authorization(&req, KSLICE_LIT(SIGNED), date, &who, authz, AUTH_HEADER_MAX);
}

static bool set_options(CURL *e, const struct call *x, struct curl_slist *hdrs, char *errbuf,
			struct kbuf *answer)
{
	const struct sigv4_client_call *o = x->o;
	struct kcurl_post p = {
		x->url,	    "https", o->timeout_ms > 0 ? o->timeout_ms : SIGV4_CLIENT_TIMEOUT_MS,
		o->ca_file, hdrs,    x->body,
		answer,	    errbuf};
	return kcurl_set_post(e, &p);
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
	/* Another deployment checks the date against its real clock (api/authn.c),
	 * whatever this one's test clock says. */
	char date[17];
	sigv4_amz_date_at((int64_t)time(NULL), date);
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
