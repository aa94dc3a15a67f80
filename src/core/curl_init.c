/*
 * curl_init.c — libcurl's global initialization with a wiping allocator
 * (curl_init.h).
 */
#include "core/curl_init.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/wipe.h"
#include "core/banned.h"

/* Each block starts with its size, so that free can wipe all of it. */
union wipe_head {
	size_t len;
	max_align_t align;
};

static void *wipe_malloc(size_t n)
{
	if (n > SIZE_MAX - sizeof(union wipe_head))
		return NULL;
	union wipe_head *h = malloc(sizeof *h + n);
	if (h == NULL)
		return NULL;
	h->len = n;
	return h + 1;
}

static void wipe_free(void *p)
{
	if (p == NULL)
		return;
	union wipe_head *h = (union wipe_head *)p - 1;
	kwipe(h, sizeof *h + h->len);
	free(h);
}

/* A new block, the old one copied and wiped: never realloc in place. */
static void *wipe_realloc(void *p, size_t n)
{
	if (p == NULL)
		return wipe_malloc(n);
	void *q = wipe_malloc(n);
	if (q == NULL)
		return NULL;
	size_t old = ((union wipe_head *)p - 1)->len;
	memcpy(q, p, old < n ? old : n);
	wipe_free(p);
	return q;
}

static char *wipe_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = wipe_malloc(n);
	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

static void *wipe_calloc(size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		return NULL;
	void *p = wipe_malloc(nmemb * size);
	if (p != NULL)
		memset(p, 0, nmemb * size);
	return p;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
	curl_init_rc = curl_global_init_mem(CURL_GLOBAL_DEFAULT, wipe_malloc, wipe_free,
					    wipe_realloc, wipe_strdup, wipe_calloc);
}

k_status kcurl_global_init(void)
{
	pthread_once(&curl_once, curl_init);
	return curl_init_rc == CURLE_OK ? K_OK : K_E_INTERNAL;
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	struct kbuf *b = arg;
	/* Past the cap: a short count makes libcurl stop with CURLE_WRITE_ERROR. */
	return k_ok(kbuf_append(b, p, size * n)) ? size * n : 0;
}

bool kcurl_set_post(CURL *e, const struct kcurl_post *p)
{
	bool ok = curl_easy_setopt(e, CURLOPT_URL, p->url) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, p->protocols) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, p->timeout_ms) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->errbuf) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)p->body.ptr) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)p->body.len) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect) == CURLE_OK &&
		  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)p->answer) == CURLE_OK;
	if (ok && p->ca_file != NULL && p->ca_file[0] != 0)
		ok = curl_easy_setopt(e, CURLOPT_CAINFO, p->ca_file) == CURLE_OK;
	return ok;
}
