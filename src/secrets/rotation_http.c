/*
 * rotation_http.c — calling a rotation function that is an http://
 * endpoint: the Lambda event as the POST body, the credentials a Lambda
 * would get from its role in X-Kinko-* headers (docs/SECRETS.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "crypto/crypto.h"
#include "secrets/internal.h"
#include "secrets/rotation.h"
#include "core/banned.h"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The parts of an http:// URL: host (an IPv6 literal without its
 * brackets), port (80 by default), the host[:port] text for the Host
 * header, and the path ("/" by default).
 */
static bool parse_url(const char *url, char *host, size_t hn, char *port, size_t pn, char *hostport,
		      size_t hpn, const char **path)
{
	if (url == NULL || strncmp(url, "http://", 7) != 0)
		return false;
	const char *hp = url + 7;
	const char *slash = strchr(hp, '/');
	size_t hl = slash ? (size_t)(slash - hp) : strlen(hp);
	*path = slash ? slash : "/";
	if (hl == 0 || hl >= hpn)
		return false;
	snprintf(hostport, hpn, "%.*s", (int)hl, hp);
	const char *h = hp, *colon;
	size_t n;
	if (hp[0] == '[') {
		const char *close = memchr(hp, ']', hl);
		if (close == NULL)
			return false;
		h = hp + 1;
		n = (size_t)(close - h);
		colon = close + 1 < hp + hl && close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = memchr(hp, ':', hl);
		n = colon ? (size_t)(colon - hp) : hl;
	}
	size_t portlen = colon ? hl - (size_t)(colon + 1 - hp) : 0;
	if (n == 0 || n >= hn || portlen >= pn)
		return false;
	snprintf(host, hn, "%.*s", (int)n, h);
	if (colon != NULL)
		snprintf(port, pn, "%.*s", (int)portlen, colon + 1);
	else
		snprintf(port, pn, "80");
	return true;
}

/* True if the socket is connected to this machine (127.0.0.0/8 or ::1). */
static bool peer_is_loopback(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return false;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in a;
		memcpy(&a, &ss, sizeof a);
		return (ntohl(a.sin_addr.s_addr) >> 24) == 127;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 a;
		memcpy(&a, &ss, sizeof a);
		return IN6_IS_ADDR_LOOPBACK(&a.sin6_addr) ||
		       (IN6_IS_ADDR_V4MAPPED(&a.sin6_addr) && a.sin6_addr.s6_addr[12] == 127);
	}
	return false;
}

static bool send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		c += w;
		n -= (size_t)w;
	}
	return true;
}

/*
 * Waits for the endpoint's answer to start, at most timeout_s, and gives
 * up at once when kinko stops (the step is then abandoned).
 */
static bool answer_within(int fd, int64_t timeout_s)
{
	int64_t deadline = mono_ms() + timeout_s * 1000;
	for (;;) {
		if (sm_rotation_stopping())
			return false;
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return false;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, left < 100 ? (int)left : 100);
		if (r > 0)
			return true;
		if (r < 0 && errno != EINTR)
			return false;
	}
}

/*
 * POSTs the event to an http:// endpoint; a 2xx answer is success. The
 * body is exactly the Lambda event; the credentials a Lambda would get
 * from its role travel in headers — X-Kinko-Access-Key-Id,
 * X-Kinko-Secret-Access-Key — with X-Kinko-Region and X-Kinko-Endpoint.
 * A secret key never crosses the network in clear text: the credential
 * headers are sent only over a connection whose peer is this machine
 * (127.0.0.0/8, ::1), whatever the URL's host name resolved to. An entry
 * that names an access_key_id for another host is refused when the
 * configuration is loaded (config/functions.c), and here again if a name
 * resolves elsewhere; without access_key_id such an endpoint gets the
 * event alone and holds its own credentials.
 */
k_status sm_rotation_post(const struct rot_job *j, const json_t *entry, const char *event,
			  struct kbuf *msg)
{
	const char *url = json_string_value(json_object_get(entry, "url"));
	char host[256], port[8], hostport[300];
	const char *path;
	if (!parse_url(url, host, sizeof host, port, sizeof port, hostport, sizeof hostport, &path)) {
		kbuf_note(msg, "bad url %s", url ? url : "");
		return K_E_SM_INVALID_REQUEST;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
		kbuf_note(msg, "cannot resolve %s", host);
		return K_E_SM_INTERNAL;
	}
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	struct timeval tv = {.tv_sec = sm_function_timeout(entry)};
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	}
	bool ok = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
	freeaddrinfo(ai);
	if (!ok) {
		kbuf_note(msg, "cannot reach %s", url);
		if (fd >= 0)
			close(fd);
		return K_E_SM_INTERNAL;
	}
	const char *ak = NULL;
	const struct ksecret *sk = NULL;
	bool named = false;
	struct kbuf why;
	kbuf_init(&why, 512);
	k_status rc = K_OK;
	if (peer_is_loopback(fd)) {
		rc = sm_function_identity(j, entry, &ak, &sk, &named, &why);
		/* Without a named identity the endpoint may hold its own. */
		if (rc != K_OK && !named) {
			ak = NULL;
			sk = NULL;
			rc = K_OK;
		}
	} else if (json_object_get(entry, "access_key_id") != NULL) {
		kbuf_note(&why, "%s is not a loopback endpoint: kinko sends credentials over http only to this machine",
			  url);
		rc = K_E_SM_INVALID_REQUEST;
	}
	if (rc != K_OK) {
		kbuf_note(msg, "%s", kbuf_cstr(&why));
		kbuf_release(&why);
		close(fd);
		return rc;
	}
	kbuf_release(&why);
	struct kbuf head;
	kbuf_init(&head, 8192);
	rc = K_E_SM_INTERNAL;
	if (kbuf_appendf(&head,
			 "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\nX-Kinko-Region: %s\r\n"
			 "X-Kinko-Endpoint: %s\r\n",
			 path, hostport, strlen(event), j->region, sm_rotation_endpoint()) != K_OK) {
		kbuf_release(&head);
		close(fd);
		return K_E_INTERNAL;
	}
	ok = send_all(fd, head.ptr, head.len);
	kbuf_release(&head);
	if (ok && sk != NULL) {
		/* The secret key is copied only into this stack buffer, wiped at once. */
		char cred[1024];
		for (size_t i = 0; i < ksecret_len(sk); i++)
			ok = ok && ksecret_cbytes(sk)[i] > 0x20 && ksecret_cbytes(sk)[i] < 0x7f;
		int n = !ok ? -1 : snprintf(cred, sizeof cred,
				 "X-Kinko-Access-Key-Id: %s\r\nX-Kinko-Secret-Access-Key: %.*s\r\n", ak,
				 (int)ksecret_len(sk), (const char *)ksecret_cbytes(sk));
		ok = n > 0 && (size_t)n < sizeof cred && send_all(fd, cred, (size_t)n);
		crypto_wipe(cred, sizeof cred);
	}
	ok = ok && send_all(fd, "\r\n", 2) && send_all(fd, event, strlen(event));
	if (ok && !answer_within(fd, sm_function_timeout(entry))) {
		kbuf_note(msg, "%s", sm_rotation_stopping()
					     ? "ended at shutdown: kinko stopped while the step ran"
					     : "the endpoint did not answer in time");
		close(fd);
		return K_E_SM_INTERNAL;
	}
	if (ok) {
		char line[64] = {0};
		ssize_t n = recv(fd, line, sizeof line - 1, 0);
		int code = 0;
		if (n > 12 && strncmp(line, "HTTP/1.", 7) == 0)
			code = (int)strtol(line + 9, NULL, 10);
		if (code >= 200 && code < 300)
			rc = K_OK;
		else
			kbuf_note(msg, "the endpoint answered HTTP %d", code);
	} else {
		kbuf_note(msg, "cannot reach %s", url);
	}
	close(fd);
	return rc;
}
