/*
 * rotation_http.c — calling a rotation function that is an http://
 * endpoint, with libcurl.
 *
 * The request is a POST whose body is exactly the Lambda event; the
 * credentials a Lambda would get from its role travel in headers —
 * X-Kinko-Access-Key-Id, X-Kinko-Secret-Access-Key — with X-Kinko-Region
 * and X-Kinko-Endpoint (docs/SECRETS.md). A 2xx answer is success; the
 * body of the answer is not read.
 *
 * A secret key never crosses the network in clear text: the credential
 * headers are sent only to a peer on this machine (127.0.0.0/8, ::1),
 * whatever the URL's host name resolves to. The name is resolved here,
 * once; libcurl is pinned to that address, and the socket callback
 * refuses any other address for a request that carries credentials. An
 * entry that names an access_key_id for another host is refused when the
 * configuration is loaded (config/functions.c), and here again if a name
 * resolves elsewhere; without access_key_id such an endpoint gets the
 * event alone and holds its own credentials.
 *
 * libcurl copies the header lines it sends into memory of its own. Its
 * allocations go through rotation_http's allocator, which wipes every
 * block when it is freed, so that no copy of a secret key outlives the
 * call in the heap.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/curl_init.h"
#include "core/log.h"
#include "crypto/crypto.h"
#include "secrets/internal.h"
#include "secrets/rotation.h"
#include "secrets/secrets.h"
#include "core/banned.h"

#define POLL_MS 100 /* how soon a call notices that kinko stops */

/* ---- where the request goes -------------------------------------------- */

static bool sockaddr_loopback(const struct sockaddr *sa, size_t len)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in a;
		memcpy(&a, sa, sizeof a);
		return (ntohl(a.sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 a;
		memcpy(&a, sa, sizeof a);
		return IN6_IS_ADDR_LOOPBACK(&a.sin6_addr) ||
		       (IN6_IS_ADDR_V4MAPPED(&a.sin6_addr) && a.sin6_addr.s6_addr[12] == 127);
	}
	return false;
}

/*
 * The endpoint: its host as the URL writes it, the port, the address the
 * host resolved to (as text, for CURLOPT_RESOLVE) and whether that
 * address is on this machine.
 */
struct target {
	char host[256];
	char port[8];
	char addr[INET6_ADDRSTRLEN + 2];
	bool literal; /* the host is an IP address: nothing to pin */
	bool loopback;
};

/* Splits an http:// URL (libcurl's parser); false if it is not one. */
static bool target_parse(const char *url, struct target *t)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
	/* No user:password@ part: kinko sends no credentials but its own headers. */
	bool ok = u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		  curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER &&
		  curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		  curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		  curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
		  strcmp(scheme, "http") == 0;
	if (ok) {
		/* An IPv6 literal comes in brackets, which getaddrinfo does not take. */
		size_t n = strlen(host);
		const char *h = host;
		if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
			h++;
			n -= 2;
		}
		ok = n > 0 && n < sizeof t->host && strlen(port) < sizeof t->port;
		if (ok) {
			snprintf(t->host, sizeof t->host, "%.*s", (int)n, h);
			snprintf(t->port, sizeof t->port, "%s", port);
		}
	}
	curl_free(scheme);
	curl_free(user);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return ok;
}

/* Resolves the host once: the first address is the one called, as before a connect. */
static bool target_resolve(struct target *t)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST},
			*ai = NULL;
	t->literal = getaddrinfo(t->host, t->port, &hints, &ai) == 0;
	if (!t->literal) {
		hints.ai_flags = 0;
		if (getaddrinfo(t->host, t->port, &hints, &ai) != 0)
			ai = NULL;
	}
	if (ai == NULL)
		return false;
	char text[INET6_ADDRSTRLEN];
	bool ok = getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof text, NULL, 0,
			      NI_NUMERICHOST) == 0;
	if (ok)
		snprintf(t->addr, sizeof t->addr, ai->ai_family == AF_INET6 ? "[%s]" : "%s", text);
	t->loopback = sockaddr_loopback(ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return ok;
}

/*
 * Opens the socket libcurl connects: close-on-exec (rotation functions
 * are spawned from other threads meanwhile), and only to this machine
 * when the request carries credentials.
 */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	const bool *loopback_only = clientp;
	const struct sockaddr *sa =
		(const struct sockaddr *)(const void *)((const char *)a +
							offsetof(struct curl_sockaddr, addr));
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (*loopback_only && !sockaddr_loopback(sa, a->addrlen)) {
		LOG_WARN("%s",
			 "rotation: refused to send credentials to an endpoint off this machine");
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* ---- the request -------------------------------------------------------- */

/*
 * The credentials the endpoint gets: on this machine, those of the
 * entry's access_key_id (or of "test" when it names none and that
 * identity fits; none otherwise); elsewhere none, and an access_key_id
 * there is refused.
 */
static K_MUST_CHECK k_status choose_credentials(const struct rot_job *j, const json_t *entry,
						const char *url, const struct target *t,
						const char **ak, const struct ksecret **sk,
						struct kbuf *msg)
{
	*ak = NULL;
	*sk = NULL;
	if (!t->loopback) {
		if (json_object_get(entry, "access_key_id") == NULL)
			return K_OK;
		kbuf_note(msg,
			  "%s is not a loopback endpoint: kinko sends credentials over http only "
			  "to this machine",
			  url);
		return K_E_SM_INVALID_REQUEST;
	}
	struct kbuf why;
	kbuf_init(&why, KBUF_NOTE_MAX);
	bool named = false;
	k_status rc = sm_function_identity(j, entry, ak, sk, &named, &why);
	if (k_failed(rc) && named)
		kbuf_note(msg, "%s", kbuf_cstr(&why));
	kbuf_release(&why);
	if (k_failed(rc) && !named) {
		/* Without a named identity the endpoint may hold its own. */
		*ak = NULL;
		*sk = NULL;
		rc = K_OK;
	}
	return rc;
}

/* Wipes every header line (one holds the secret key), then frees the list. */
static void headers_free(struct curl_slist *h)
{
	for (struct curl_slist *p = h; p != NULL; p = p->next)
		crypto_wipe(p->data, strlen(p->data));
	curl_slist_free_all(h);
}

/* Appends one "Name: value" line; false (and the list freed) if it cannot. */
static bool header_add(struct curl_slist **h, const char *name, const char *value, size_t len)
{
	char line[1024];
	int n = snprintf(line, sizeof line, "%s: %.*s", name, (int)len, value);
	struct curl_slist *next = NULL;
	if (n > 0 && (size_t)n < sizeof line)
		next = curl_slist_append(*h, line);
	crypto_wipe(line, sizeof line);
	if (next == NULL) {
		headers_free(*h);
		*h = NULL;
		return false;
	}
	*h = next;
	return true;
}

/* Whether every byte is one a header value can carry as it is (no space, no control). */
static bool header_value_ok(const struct kbuf *v)
{
	for (size_t i = 0; i < v->len; i++) {
		if (v->ptr[i] <= 0x20 || v->ptr[i] >= 0x7f)
			return false;
	}
	return true;
}

/*
 * The request's header lines. The secret key is read from the identity
 * table only here, into a buffer and a stack line, both wiped at once, and
 * libcurl's copy of it, wiped when freed. A key with bytes a header cannot carry is not
 * sent. NULL if the list cannot be built.
 */
static struct curl_slist *request_headers(const struct rot_job *j, const char *ak,
					  const struct ksecret *sk)
{
	static const char *const fixed[] = {"Content-Type: application/json", "Connection: close",
					    "Accept:", "Expect:"};
	struct curl_slist *h = NULL;
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		struct curl_slist *next = curl_slist_append(h, fixed[i]);
		if (next == NULL) {
			headers_free(h);
			return NULL;
		}
		h = next;
	}
	char ep[SM_ENDPOINT_MAX];
	sm_rotation_endpoint(ep);
	if (!header_add(&h, "X-Kinko-Region", j->region, strlen(j->region)) ||
	    !header_add(&h, "X-Kinko-Endpoint", ep, strlen(ep)))
		return NULL;
	if (sk == NULL)
		return h;
	struct kbuf key;
	kbuf_init(&key, ksecret_len(sk));
	if (k_failed(ksecret_append_to(&key, sk)) || !header_value_ok(&key)) {
		kbuf_release(&key);
		headers_free(h);
		return NULL;
	}
	bool ok = header_add(&h, "X-Kinko-Access-Key-Id", ak, strlen(ak)) &&
		  header_add(&h, "X-Kinko-Secret-Access-Key", (const char *)key.ptr, key.len);
	kbuf_release(&key);
	return ok ? h : NULL;
}

/* The answer's status: known once the headers of a final (non-1xx) answer ended. */
struct answer {
	CURL *easy;
	long code;
};

/*
 * Reads the answer's header lines and stops the transfer at the blank
 * line that ends a final answer's headers: its status is all kinko needs,
 * and an endpoint that never sends its body cannot hold the step.
 */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n;
	long code = 0;
	bool end =
		(len == 2 && data[0] == '\r' && data[1] == '\n') || (len == 1 && data[0] == '\n');
	if (end && curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
	    code >= 200) {
		a->code = code;
		return 0;
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	return size * n; /* not reached: the transfer stops after the headers */
}

/*
 * Runs the transfer, checking every POLL_MS whether kinko stops: then
 * the call is abandoned (*stopped), whatever the endpoint does.
 */
static CURLcode transfer(CURL *e, bool *stopped)
{
	CURLM *m = curl_multi_init();
	if (m == NULL)
		return CURLE_OUT_OF_MEMORY;
	CURLcode res = CURLE_FAILED_INIT;
	if (curl_multi_add_handle(m, e) != CURLM_OK) {
		curl_multi_cleanup(m);
		return res;
	}
	int active = 1;
	while (active > 0) {
		if (sm_rotation_stopping()) {
			*stopped = true;
			res = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		if (curl_multi_perform(m, &active) != CURLM_OK)
			break;
		if (active > 0 && curl_multi_poll(m, NULL, 0, POLL_MS, NULL) != CURLM_OK)
			break;
	}
	int left = 0;
	for (CURLMsg *msg = curl_multi_info_read(m, &left); msg != NULL;
	     msg = curl_multi_info_read(m, &left)) {
		if (msg->msg == CURLMSG_DONE && !*stopped)
			res = msg->data.result;
	}
	curl_multi_remove_handle(m, e);
	curl_multi_cleanup(m);
	return res;
}

/* Sets the options of one call; false if libcurl refuses one. */
static bool easy_setup(CURL *e, const char *url, const char *event, struct curl_slist *headers,
		       struct curl_slist *pin, bool *loopback_only, struct answer *a,
		       int64_t timeout_s)
{
	return curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http") == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http") == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_RESOLVE, pin) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, loopback_only) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_POSTFIELDS, event) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(event)) ==
		       CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_HEADERDATA, a) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_s * 1000)) ==
		       CURLE_OK &&
	       curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000)) == CURLE_OK;
}

/* The step's outcome from the transfer's. */
static K_MUST_CHECK k_status outcome(CURLcode res, bool stopped, const struct answer *a,
				     const char *url, struct kbuf *msg)
{
	if (stopped) {
		kbuf_note(msg, "%s", "ended at shutdown: kinko stopped while the step ran");
		return K_E_SM_INTERNAL;
	}
	if (a->code == 0 && res == CURLE_OPERATION_TIMEDOUT) {
		kbuf_note(msg, "%s", "the endpoint did not answer in time");
		return K_E_SM_INTERNAL;
	}
	if (a->code == 0) {
		kbuf_note(msg, "cannot reach %s", url);
		LOG_INFO("rotation: %s: %s", url, curl_easy_strerror(res));
		return K_E_SM_INTERNAL;
	}
	if (a->code >= 200 && a->code < 300)
		return K_OK;
	kbuf_note(msg, "the endpoint answered HTTP %ld", a->code);
	return K_E_SM_INTERNAL;
}

/* Builds the call, runs it and frees it; the secret key's copies are wiped. */
static K_MUST_CHECK k_status post(const struct rot_job *j, const json_t *entry, const char *url,
				  const struct target *t, const char *event, struct kbuf *msg)
{
	const char *ak = NULL;
	const struct ksecret *sk = NULL;
	GUARD(choose_credentials(j, entry, url, t, &ak, &sk, msg));
	struct curl_slist *headers = request_headers(j, ak, sk);
	if (headers == NULL) {
		kbuf_note(msg, "cannot build the request to %s", url);
		return K_E_SM_INTERNAL;
	}
	struct curl_slist *pin = NULL;
	char line[sizeof t->host + sizeof t->port + sizeof t->addr];
	if (!t->literal) {
		snprintf(line, sizeof line, "%s:%s:%s", t->host, t->port, t->addr);
		pin = curl_slist_append(NULL, line);
	}
	bool loopback_only = sk != NULL, stopped = false;
	CURL *e = curl_easy_init();
	struct answer a = {.easy = e};
	CURLcode res = CURLE_FAILED_INIT;
	if (e != NULL && (t->literal || pin != NULL) &&
	    easy_setup(e, url, event, headers, pin, &loopback_only, &a, sm_function_timeout(entry)))
		res = transfer(e, &stopped);
	curl_easy_cleanup(e);
	curl_slist_free_all(pin);
	headers_free(headers);
	return outcome(res, stopped, &a, url, msg);
}

k_status sm_rotation_post(const struct rot_job *j, const json_t *entry, const char *event,
			  struct kbuf *msg)
{
	const char *url = json_string_value(json_object_get(entry, "url"));
	if (k_failed(kcurl_global_init())) {
		kbuf_note(msg, "%s", "the HTTP client could not start");
		return K_E_SM_INTERNAL;
	}
	struct target t;
	memset(&t, 0, sizeof t);
	if (url == NULL || !target_parse(url, &t)) {
		kbuf_note(msg, "bad url %s", url ? url : "");
		return K_E_SM_INVALID_REQUEST;
	}
	if (!target_resolve(&t)) {
		kbuf_note(msg, "cannot resolve %s", t.host);
		return K_E_SM_INTERNAL;
	}
	return post(j, entry, url, &t, event, msg);
}
