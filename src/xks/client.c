/*
 * client.c — calls to an XKS proxy over libcurl, signed with SigV4
 * (client.h).
 */
#include "xks/client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "auth/sigv4.h"
#include "core/curl_init.h"
#include "core/banned.h"

/* A signed request's headers: Host, X-Amz-Date, Authorization. */
#define XKS_AUTH_HEADER_MAX 512

struct exchange {
	const struct xks_client_options *o;
	char url[XKS_CLIENT_MAX_URL];
	const char *host; /* the URL's authority, into url */
	size_t host_len;
	struct kbuf body;   /* the request */
	struct kbuf answer; /* the response */
	long status;
	struct xks_client_error *err;
};

static void note(struct xks_client_error *err, const char *what)
{
	if (err != NULL)
		snprintf(err->message, sizeof err->message, "%s", what);
}

/* url = endpoint + uri_path + path; host = the endpoint's authority. */
static K_MUST_CHECK k_status make_url(struct exchange *x, const char *path)
{
	const struct xks_client_options *o = x->o;
	bool https = strncmp(o->endpoint, "https://", 8) == 0;
	bool http = o->allow_http && strncmp(o->endpoint, "http://", 7) == 0;
	if (!https && !http) {
		note(x->err, "the endpoint must be an https:// URL");
		return K_E_XKS_PROXY_URI_UNREACHABLE;
	}
	/* "https://host/" and "https://host" are the same endpoint. */
	int el = (int)strlen(o->endpoint);
	while (el > 8 && o->endpoint[el - 1] == '/')
		el--;
	int n = snprintf(x->url, sizeof x->url, "%.*s%s%s", el, o->endpoint, o->uri_path, path);
	if (n < 0 || (size_t)n >= sizeof x->url) {
		note(x->err, "the URL is too long");
		return K_E_VALIDATION;
	}
	x->host = x->url + (https ? 8 : 7);
	x->host_len = strcspn(x->host, "/");
	return K_OK;
}

/*
 * The Authorization header for POST url with the body, signed over host
 * and x-amz-date under (date, region, kms-xks-proxy).
 */
static K_MUST_CHECK k_status sign(const struct exchange *x, const char date[17],
				  char authz[XKS_AUTH_HEADER_MAX])
{
	const struct xks_client_options *o = x->o;
	const char *path = x->host + x->host_len;
	struct http_header h[2] = {
		{KSLICE_LIT("host"), kslice_make(x->host, x->host_len)},
		{KSLICE_LIT("x-amz-date"), kslice_make(date, 16)},
	};
	struct sigv4_request req = {
		KSLICE_LIT("POST"),  kslice_cstr(path), kslice_make("", 0), h, 2,
		kbuf_slice(&x->body)};
	struct sigv4_signer who = {o->access_key_id, o->secret, o->region, XKS_SIGNING_NAME};
	return sigv4_authorization(&req, KSLICE_LIT("host;x-amz-date"), date, &who, authz,
				   XKS_AUTH_HEADER_MAX);
}

/* What kind of transport failure a libcurl code is. */
static enum xks_transport_error transport_kind(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return XKS_TRANSPORT_TIMED_OUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return XKS_TRANSPORT_TLS;
	default:
		return XKS_TRANSPORT_UNREACHABLE;
	}
}

static K_MUST_CHECK k_status transport_status(CURLcode rc, const char *why, struct exchange *x)
{
	if (x->err != NULL && rc != CURLE_WRITE_ERROR)
		x->err->transport = transport_kind(rc);
	if (x->err != NULL)
		snprintf(x->err->message, sizeof x->err->message, "%s",
			 why[0] ? why : curl_easy_strerror(rc));
	/* An answer larger than any the API has is a malformed answer, not an unreachable proxy. */
	return rc == CURLE_WRITE_ERROR ? K_E_XKS_PROXY_INVALID_RESPONSE
				       : K_E_XKS_PROXY_URI_UNREACHABLE;
}

static bool set_options(CURL *e, const struct exchange *x, struct curl_slist *hdrs, char *errbuf)
{
	const struct xks_client_options *o = x->o;
	struct kcurl_post p = {x->url,
			       o->allow_http ? "http,https" : "https",
			       o->timeout_ms > 0 ? o->timeout_ms : XKS_CLIENT_TIMEOUT_MS,
			       o->ca_file,
			       hdrs,
			       kbuf_slice(&x->body),
			       (struct kbuf *)&x->answer,
			       errbuf};
	return kcurl_set_post(e, &p);
}

/*
 * One easy handle per thread, kept between calls: libcurl keeps its
 * connection cache (and TLS sessions) in the handle, so the calls of a
 * thread to the same proxy reuse a connection instead of making a TCP
 * connection and a TLS handshake each, as AWS KMS keeps its connections to
 * a proxy open. Each call resets the handle's options first; a kept
 * connection the proxy has closed is found dead by libcurl and replaced.
 * The handle is cleaned up when its thread ends.
 */
static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;
static bool handle_key_ok;

static void handle_free(void *e)
{
	curl_easy_cleanup(e);
}

static void handle_key_make(void)
{
	handle_key_ok = pthread_key_create(&handle_key, handle_free) == 0;
}

/* This thread's handle, reset (NULL: out of memory); *kept: it stays for the next call. */
static CURL *thread_handle(bool *kept)
{
	pthread_once(&handle_once, handle_key_make);
	CURL *e = handle_key_ok ? pthread_getspecific(handle_key) : NULL;
	*kept = e != NULL;
	if (e != NULL) {
		curl_easy_reset(e);
		return e;
	}
	e = curl_easy_init();
	*kept = e != NULL && handle_key_ok && pthread_setspecific(handle_key, e) == 0;
	return e;
}

/* POSTs x->body to x->url, signed; the answer in x->answer and x->status. */
static K_MUST_CHECK k_status post(struct exchange *x)
{
	char date[17], authz[XKS_AUTH_HEADER_MAX], host[XKS_CLIENT_MAX_URL], datehdr[40];
	GUARD(kcurl_global_init());
	sigv4_amz_date_now(date);
	GUARD(sign(x, date, authz));
	snprintf(host, sizeof host, "Host: %.*s", (int)x->host_len, x->host);
	snprintf(datehdr, sizeof datehdr, "X-Amz-Date: %s", date);
	struct curl_slist *h = NULL, *t = NULL;
	const char *lines[] = {host, datehdr, authz, "Content-Type: " XKS_CONTENT_TYPE, "Expect:"};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		t = curl_slist_append(h, lines[i]);
		if (t == NULL) {
			curl_slist_free_all(h);
			return K_E_INTERNAL;
		}
		h = t;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	bool kept = false;
	CURL *e = thread_handle(&kept);
	CURLcode rc = e != NULL && set_options(e, x, h, errbuf) ? curl_easy_perform(e)
								: CURLE_FAILED_INIT;
	if (rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &x->status);
	if (e != NULL)
		curl_easy_reset(e); /* drops the pointers into this call's buffers */
	if (!kept)
		curl_easy_cleanup(e);
	curl_slist_free_all(h);
	if (x->err != NULL)
		x->err->http_status = x->status;
	if (rc != CURLE_OK)
		return transport_status(rc, errbuf, x);
	if (x->status != 200)
		return xks_answer_error(x->status, kbuf_slice(&x->answer), x->err);
	return K_OK;
}

static void exchange_init(struct exchange *x, const struct xks_client_options *o,
			  struct xks_client_error *err)
{
	memset(x, 0, sizeof *x);
	x->o = o;
	x->err = err;
	if (err != NULL)
		memset(err, 0, sizeof *err);
	kbuf_init(&x->body, XKS_MAX_BODY);
	kbuf_init(&x->answer, XKS_MAX_BODY);
}

static void exchange_release(struct exchange *x)
{
	kbuf_release(&x->body);
	kbuf_release(&x->answer);
}

/* A 200 answer that does not parse: the spec's "malformed response". */
static k_status malformed(struct exchange *x, k_status rc)
{
	if (k_failed(rc) && x->status == 200)
		note(x->err, "the proxy's answer is not the operation's JSON");
	return rc;
}

/* "/keys/ID/OP" for a key id of the spec's alphabet. */
static K_MUST_CHECK k_status key_path(const char *key_id, const char *op, char out[200])
{
	size_t n = strlen(key_id);
	ENSURE(n >= 1 && n <= 128 &&
		       strspn(key_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789-._") == n,
	       K_E_VALIDATION);
	snprintf(out, 200, "/keys/%s/%s", key_id, op);
	return K_OK;
}

k_status xks_client_health(const struct xks_client_options *o,
			   const struct xks_request_metadata *md, struct xks_health *out,
			   struct xks_client_error *err)
{
	struct exchange x;
	exchange_init(&x, o, err);
	k_status rc = make_url(&x, "/health");
	if (k_ok(rc))
		rc = xks_body_metadata(md, &x.body);
	if (k_ok(rc))
		rc = post(&x);
	if (k_ok(rc))
		rc = malformed(&x, xks_answer_health(kbuf_slice(&x.answer), out));
	exchange_release(&x);
	return rc;
}

k_status xks_client_key_metadata(const struct xks_client_options *o, const char *key_id,
				 const struct xks_request_metadata *md,
				 struct xks_key_metadata *out, struct xks_client_error *err)
{
	struct exchange x;
	char path[200];
	exchange_init(&x, o, err);
	k_status rc = key_path(key_id, "metadata", path);
	if (k_ok(rc))
		rc = make_url(&x, path);
	if (k_ok(rc))
		rc = xks_body_metadata(md, &x.body);
	if (k_ok(rc))
		rc = post(&x);
	if (k_ok(rc))
		rc = malformed(&x, xks_answer_metadata(kbuf_slice(&x.answer), out));
	exchange_release(&x);
	return rc;
}

k_status xks_client_encrypt(const struct xks_client_options *o, const char *key_id,
			    const struct xks_request_metadata *md, struct kslice pt,
			    struct kslice aad, bool has_aad, struct xks_ciphertext *out,
			    struct xks_client_error *err)
{
	struct exchange x;
	char path[200];
	exchange_init(&x, o, err);
	k_status rc = key_path(key_id, "encrypt", path);
	if (k_ok(rc))
		rc = make_url(&x, path);
	if (k_ok(rc))
		rc = xks_body_encrypt(md, pt, aad, has_aad, &x.body);
	if (k_ok(rc))
		rc = post(&x);
	if (k_ok(rc))
		rc = malformed(&x, xks_answer_encrypt(kbuf_slice(&x.answer), pt.len, &aad, out));
	exchange_release(&x);
	return rc;
}

k_status xks_client_decrypt(const struct xks_client_options *o, const char *key_id,
			    const struct xks_request_metadata *md, const struct xks_ciphertext *in,
			    struct kslice aad, bool has_aad, struct kbuf *pt,
			    struct xks_client_error *err)
{
	struct exchange x;
	char path[200];
	exchange_init(&x, o, err);
	k_status rc = key_path(key_id, "decrypt", path);
	if (k_ok(rc))
		rc = make_url(&x, path);
	if (k_ok(rc))
		rc = xks_body_decrypt(md, in, aad, has_aad, &x.body);
	if (k_ok(rc))
		rc = post(&x);
	if (k_ok(rc))
		rc = malformed(&x,
			       xks_answer_decrypt(kbuf_slice(&x.answer), in->ciphertext.len, pt));
	exchange_release(&x);
	return rc;
}
