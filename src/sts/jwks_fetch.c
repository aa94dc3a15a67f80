/*
 * jwks_fetch.c — the key sets of OpenID Connect providers configured by
 * jwks_url, fetched over HTTPS with libcurl, off the request path (see
 * sts.h).
 *
 * Each provider's set is fetched once at start, then by one thread every
 * jwks_refresh_seconds, and once more when a token names a key id the
 * cached set lacks (a provider rotated its keys): the request asks the
 * thread and waits for that one fetch, at most JWKS_DEMAND_WAIT_MS, and
 * such fetches are at most one per JWKS_DEMAND_MIN_S per provider, so
 * that tokens with made-up key ids cannot make kinko hammer the provider.
 * TLS is verified (the system's CAs, or the provider's jwks_ca_file);
 * only https is allowed, redirects are not followed, the answer is capped
 * at JWKS_MAX_BYTES. A fetch that fails keeps the last good set and is
 * logged.
 */
#include "sts/internal.h"
#include "sts/sts.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config/oidc.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/banned.h"

#define JWKS_MAX_BYTES (256u * 1024u) /* a key set's document */
#define JWKS_TIMEOUT_S 5L	      /* one fetch, connection included */
#define JWKS_DEMAND_MIN_S 10	      /* between fetches asked for by an unknown kid */
#define JWKS_DEMAND_WAIT_MS 6000      /* how long such a request waits */

/* Per provider with a jwks_url: when it is due, and the fetches asked for and done. */
struct fetch_state {
	struct oidc_provider *p;
	int64_t due;	     /* next periodic fetch, seconds */
	int64_t last_demand; /* last fetch asked for by a request, seconds */
	bool demanded;	     /* a request waits for a fetch */
	uint64_t fetches;    /* fetches completed (good or not) */
};

static struct fetch_state states[OIDC_MAX_PROVIDERS];
static size_t n_states;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER; /* the fetcher: work or stop */
static pthread_cond_t done = PTHREAD_COND_INITIALIZER; /* requests: a fetch finished */
static bool stopping, running;
static pthread_t fetcher;

/* The system clock in seconds (the test clock does not move fetches), as the waits use it. */
static int64_t real_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct kbuf *b = arg;
	size_t n = size * nmemb;
	return k_ok(kbuf_append(b, (const uint8_t *)ptr, n)) ? n : 0;
}

/* One fetch of the provider's set into *out (a {"keys": [...]} object). */
static K_MUST_CHECK k_status fetch(const struct oidc_provider *p, json_t **out)
{
	const char *url = oidc_provider_jwks_url(p), *ca = oidc_provider_jwks_ca_file(p);
	struct kbuf body;
	kbuf_init(&body, JWKS_MAX_BYTES);
	CURL *e = curl_easy_init();
	long status = 0;
	CURLcode cc = CURLE_FAILED_INIT;
	if (e != NULL && curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
	    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
	    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
	    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	    curl_easy_setopt(e, CURLOPT_TIMEOUT, JWKS_TIMEOUT_S) == CURLE_OK &&
	    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK &&
	    curl_easy_setopt(e, CURLOPT_WRITEDATA, &body) == CURLE_OK &&
	    (ca == NULL || curl_easy_setopt(e, CURLOPT_CAINFO, ca) == CURLE_OK))
		cc = curl_easy_perform(e);
	if (cc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(e);
	k_status rc = K_E_STORE_UNAVAILABLE;
	json_t *j = NULL;
	if (cc != CURLE_OK)
		LOG_WARN("JWKS of %s from %s: %s; the last good keys stay", oidc_provider_arn(p),
			 url, curl_easy_strerror(cc));
	else if (status != 200)
		LOG_WARN("JWKS of %s from %s: HTTP %ld; the last good keys stay",
			 oidc_provider_arn(p), url, status);
	else
		j = json_loadb((const char *)body.ptr, body.len, JSON_REJECT_DUPLICATES, NULL);
	if (cc == CURLE_OK && status == 200 && !json_is_array(json_object_get(j, "keys")))
		LOG_WARN("JWKS of %s from %s is not a key set ({\"keys\": [...]}); the last good "
			 "keys stay",
			 oidc_provider_arn(p), url);
	else if (j != NULL)
		rc = K_OK;
	kbuf_release(&body);
	if (k_ok(rc))
		*out = j;
	else
		json_decref(j);
	return rc;
}

/* Fetches one provider's set (no lock held) and installs it if good. */
static void refresh(struct oidc_provider *p)
{
	json_t *j = NULL;
	if (k_failed(fetch(p, &j)))
		return;
	LOG_INFO("JWKS of %s: %zu keys from %s", oidc_provider_arn(p),
		 json_array_size(json_object_get(j, "keys")), oidc_provider_jwks_url(p));
	oidc_provider_set_jwks(p, j);
}

/* The next provider to fetch now (asked for, or due), or NULL; under the lock. */
static struct fetch_state *next_due(int64_t now, int64_t *wait_until)
{
	*wait_until = INT64_MAX;
	for (size_t i = 0; i < n_states; i++) {
		struct fetch_state *s = &states[i];
		if (s->demanded || s->due <= now)
			return s;
		*wait_until = s->due < *wait_until ? s->due : *wait_until;
	}
	return NULL;
}

static void *fetch_loop(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	while (!stopping) {
		int64_t now = real_now(), until;
		struct fetch_state *s = next_due(now, &until);
		if (s == NULL) {
			struct timespec ts = {.tv_sec = (time_t)until};
			pthread_cond_timedwait(&wake, &lock, &ts);
			continue;
		}
		s->demanded = false;
		s->due = now + oidc_provider_jwks_refresh_s(s->p);
		pthread_mutex_unlock(&lock);
		refresh(s->p);
		pthread_mutex_lock(&lock);
		s->fetches++;
		pthread_cond_broadcast(&done);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

k_status sts_jwks_start(void)
{
	n_states = 0;
	int64_t now = real_now();
	for (size_t i = 0; i < config_oidc_count(); i++) {
		struct oidc_provider *p = config_oidc_at(i);
		if (oidc_provider_jwks_url(p) == NULL)
			continue;
		refresh(p); /* at start: a failure is logged, and the thread tries again */
		json_t *got = oidc_provider_jwks(p);
		struct fetch_state *s = &states[n_states++];
		*s = (struct fetch_state){.p = p};
		s->due = now + (got != NULL ? oidc_provider_jwks_refresh_s(p) : JWKS_DEMAND_MIN_S);
		json_decref(got);
	}
	if (n_states == 0)
		return K_OK;
	stopping = false;
	ENSURE(pthread_create(&fetcher, NULL, fetch_loop, NULL) == 0, K_E_INTERNAL);
	running = true;
	return K_OK;
}

void sts_jwks_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_broadcast(&wake);
	pthread_cond_broadcast(&done);
	pthread_mutex_unlock(&lock);
	pthread_join(fetcher, NULL);
	running = false;
}

/* Waits for the fetch after `seen`, at most until deadline; under the lock. */
static bool wait_fetch(struct fetch_state *s, uint64_t seen)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += JWKS_DEMAND_WAIT_MS / 1000;
	ts.tv_nsec += (JWKS_DEMAND_WAIT_MS % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (!stopping && s->fetches == seen) {
		if (pthread_cond_timedwait(&done, &lock, &ts) != 0)
			break;
	}
	return s->fetches != seen;
}

bool sts_jwks_refetch(const struct oidc_provider *p)
{
	bool fetched = false;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; running && i < n_states; i++) {
		struct fetch_state *s = &states[i];
		if (s->p != p)
			continue;
		int64_t now = real_now();
		if (!s->demanded && now - s->last_demand < JWKS_DEMAND_MIN_S)
			break; /* rate-limited: the cached set answers */
		s->demanded = true;
		s->last_demand = now;
		pthread_cond_signal(&wake);
		fetched = wait_fetch(s, s->fetches);
		break;
	}
	pthread_mutex_unlock(&lock);
	return fetched;
}
