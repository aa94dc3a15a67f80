/*
 * server.c — libmicrohttpd glue (see server.h).
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/pipeline.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/secret.h"
#include "crypto/crypto.h"
#include "crypto/tls.h"
#include "http/conns.h"
#include "http/framing.h"
#include "http/offload.h"
#include "http/reqstate.h"
#include "core/banned.h"

struct http_server {
	struct MHD_Daemon *d;
	struct http_conns *conns;
	void (*handle)(struct api_request *r);
	struct http_offload *offload; /* the long requests' threads (the API's listener only) */
	bool tls;
	char *cert_pem;		 /* NUL-terminated; public */
	char *client_ca_pem;	 /* mTLS: the CAs of client certificates; NULL: none */
	char client_cn[256];	 /* mTLS: the subject CN required; "": any */
	struct ksecret *key_pem; /* NUL-terminated PEM private key */
};

/*
 * Only modern TLS: 1.3, and 1.2 with forward secrecy (ECDHE) and AEAD
 * ciphers only (AES-GCM, ChaCha20-Poly1305): no CBC suites (with their
 * SHA-1 MACs and padding oracles), no static RSA key exchange. TLS 1.3's
 * suites are all AEAD. The 1.2 suites left are the ECDHE suites of
 * Mozilla's "intermediate" profile.
 */
#define HTTP_TLS_PRIORITIES                                                                        \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"        \
	"+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA"
#define HTTP_MAX_PEM (1u << 20)
/* libmicrohttpd's TLS options: key, certificate, priorities, client CAs, the end. */
#define HTTP_TLS_OPTS 5

struct header_walk {
	struct http_req_state *st;
	bool overflow;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      size_t key_size, const char *value, size_t value_size)
{
	struct header_walk *w = cls;
	struct api_request *r = &w->st->req;
	w->st->header_bytes += key_size + value_size;
	if (r->n_headers >= API_MAX_HEADERS || w->st->header_bytes > HTTP_MAX_HEADER_BYTES) {
		w->overflow = true;
		return MHD_NO;
	}
	r->headers[r->n_headers].name = kslice_make(key, key_size);
	r->headers[r->n_headers].value = kslice_make(value ? value : "", value ? value_size : 0);
	r->n_headers++;
	return MHD_YES;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   size_t key_size, const char *value, size_t value_size)
{
	struct kbuf *q = cls;
	if (q->len > 0 && k_failed(kbuf_append_byte(q, '&')))
		return MHD_NO;
	if (k_failed(kbuf_append(q, key, key_size)))
		return MHD_NO;
	if (value != NULL) {
		if (k_failed(kbuf_append_byte(q, '=')) ||
		    k_failed(kbuf_append(q, value, value_size)))
			return MHD_NO;
	}
	return MHD_YES;
}

/* Keep the URL and query arguments exactly as sent: SigV4 signs the raw form. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
}

static enum MHD_Result reply(struct MHD_Connection *conn, struct api_request *r, bool close)
{
	/*
	 * The body stays in r->response until on_completed() runs, after the
	 * response is sent, so libmicrohttpd can send it from there: no copy
	 * (which it would free without wiping; a Decrypt answer carries
	 * plaintext), and the kbuf is wiped when the request ends.
	 */
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		r->response.len, r->response.ptr, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type",
				r->content_type ? r->content_type : "application/x-amz-json-1.1");
	MHD_add_response_header(resp, "x-amzn-RequestId", r->request_id);
	if (close)
		MHD_add_response_header(resp, "Connection", "close");
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void client_ip(struct MHD_Connection *conn, char *out, size_t n)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	kstr_copy(out, n, "unknown");
	if (ci == NULL || ci->client_addr == NULL)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  (socklen_t)n);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
			  out, (socklen_t)n);
}

/* The connection table's state for a connection (its socket context). */
static struct http_conn *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct http_server *srv = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = ci != NULL ? http_conn_open(srv->conns, ci->connect_fd) : NULL;
		return;
	}
	http_conn_close(srv->conns, *socket_context);
	*socket_context = NULL;
}

/* Called when a request line has arrived, before its headers are parsed. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http_server *srv = cls;
	http_conn_request_line(srv->conns, conn_of(conn));
	return NULL;
}

/* Fills the request from what was gathered, for the server's handler. */
static void prepare_api(struct MHD_Connection *conn, struct http_req_state *st, const char *url)
{
	struct api_request *r = &st->req;
	r->method = kslice_cstr(st->method);
	r->path = kslice_cstr(url);
	r->query = kbuf_slice(&st->query);
	r->body = kbuf_slice(&st->body);
	client_ip(conn, r->source_ip, sizeof r->source_ip);
}

/* Hands the gathered request to the server's handler and queues its answer. */
static enum MHD_Result run_api(const struct http_server *srv, struct MHD_Connection *conn,
			       struct http_req_state *st, const char *url, bool close)
{
	prepare_api(conn, st, url);
	srv->handle(&st->req);
	return reply(conn, &st->req, close);
}

/*
 * On an offload thread: the whole pipeline, then the connection back to
 * its request thread, which answers (on_request, st->offloaded). Nothing
 * here touches the connection but MHD_resume_connection, which
 * libmicrohttpd allows from any thread.
 */
static void run_offloaded(struct http_offload_job *job)
{
	struct http_req_state *st =
		(struct http_req_state *)(void *)((char *)job -
						  offsetof(struct http_req_state, job));
	struct MHD_Connection *conn = st->conn;
	api_handle(&st->req);
	/* After this store the request thread may answer and reuse st: not read again here. */
	atomic_store_explicit(&st->handled, true, memory_order_release);
	MHD_resume_connection(conn);
}

/*
 * A request whose operation may take long (api_runs_long: RSA key
 * generation) runs on an offload thread, so that this request thread
 * goes on serving its other connections. The connection is suspended
 * before the job is queued, since the job may finish and resume it at
 * once. While the server stops, the pool takes no more jobs and the
 * request runs here, resuming its own connection.
 */
static enum MHD_Result offload_api(const struct http_server *srv, struct MHD_Connection *conn,
				   struct http_req_state *st, const char *url)
{
	prepare_api(conn, st, url);
	st->offloaded = true;
	st->conn = conn;
	st->job.run = run_offloaded;
	MHD_suspend_connection(conn);
	if (!http_offload_submit(srv->offload, &st->job))
		run_offloaded(&st->job);
	return MHD_YES;
}

/*
 * A refusal of the framing itself (framing.h): a short plain-text answer,
 * as for any malformed HTTP, since the request never reaches the API.
 */
static enum MHD_Result refuse_framing(struct MHD_Connection *conn, int status, const char *why)
{
	char text[160];
	int n = snprintf(text, sizeof text, "%s\n", why);
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		n > 0 && (size_t)n < sizeof text ? (size_t)n : 0, text, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/plain");
	MHD_add_response_header(resp, "Connection", "close");
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* The common name of a DER certificate's subject is exactly `cn`. */
static bool subject_cn_is(const gnutls_datum_t *der, const char *cn)
{
	gnutls_x509_crt_t crt;
	char got[256];
	size_t len = sizeof got - 1;
	bool same = false;
	if (gnutls_x509_crt_init(&crt) != 0)
		return false;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, got, &len) == 0) {
		got[len < sizeof got ? len : sizeof got - 1] = 0;
		same = strcmp(got, cn) == 0;
	}
	gnutls_x509_crt_deinit(crt);
	return same;
}

/*
 * Mutual TLS: the client's certificate chain verifies against the
 * configured CAs (GnuTLS checks the chain, its dates and its signatures;
 * libmicrohttpd asked for the certificate in the handshake), and its
 * subject's CN is the one configured, if any. True when no client CA is
 * configured.
 */
static bool client_verified(const struct http_server *srv, struct MHD_Connection *conn)
{
	if (srv->client_ca_pem == NULL)
		return true;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return false;
	gnutls_session_t session = (gnutls_session_t)ci->tls_session;
	unsigned int n = 0;
	unsigned int status = 0;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(session, &n);
	if (chain == NULL || n == 0)
		return false;
	if (gnutls_certificate_verify_peers2(session, &status) != 0 || status != 0)
		return false;
	return srv->client_cn[0] == 0 || subject_cn_is(&chain[0], srv->client_cn);
}

/*
 * The first call for a request: its head is complete and no byte of its
 * body has been read. The head is collected and its framing checked
 * here, so that a request that will be refused is answered now and the
 * connection closed (413 from Content-Length, 400 or 501 for framing
 * that could smuggle a second request), instead of after reading a body
 * that is not wanted or cannot be delimited.
 */
static enum MHD_Result begin_request(const struct http_server *srv, struct MHD_Connection *conn,
				     const char *url, const char *method, void **con_cls)
{
	struct http_conn *hc = conn_of(conn);
	if (http_conn_refused(hc))
		return MHD_NO;
	if (!client_verified(srv, conn)) {
		LOG_DEBUG("http: closing a connection whose client certificate does not verify");
		return MHD_NO;
	}
	http_conn_head_done(srv->conns, hc);
	struct http_req_state *st = http_req_state_take();
	if (st == NULL)
		return MHD_NO;
	st->req.secure = srv->tls;
	kstr_copy(st->method, sizeof st->method, method);
	*con_cls = st;
	struct header_walk w = {st, false};
	MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect_header, &w);
	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &st->query);
	/* The operation's own limit, known from X-Amz-Target: no body past it is read. */
	if (srv->handle == api_handle && !w.overflow)
		st->body_limit = api_body_limit(&st->req);
	const char *why = "";
	int status = w.overflow ? 413
				: http_framing_check(st->req.headers, st->req.n_headers,
						     st->body_limit, &why);
	if (status == 0)
		return MHD_YES;
	LOG_DEBUG("http: refusing a request from its head (%d%s%s)", status, why[0] ? ": " : "",
		  why);
	st->answered = true;
	http_conn_busy(hc); /* answering: no body deadline (and no 408 over the answer) */
	http_conn_linger(hc);
	if (status == 413) { /* the API's RequestEntityTooLargeException */
		st->req.body_too_large = true;
		return run_api(srv, conn, st, url, true);
	}
	return refuse_framing(conn, status, why);
}

/*
 * The access handler is called first with the headers, then once per
 * chunk of body, then once more with no data: that last call runs the API.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	const struct http_server *srv = cls;
	struct http_req_state *st = *con_cls;
	if (st == NULL)
		return begin_request(srv, conn, url, method, con_cls);
	if (st->offloaded) { /* resumed: the offload thread has handled it */
		if (!atomic_load_explicit(&st->handled, memory_order_acquire))
			return MHD_NO; /* resumed before handled: cannot happen; close */
		return reply(conn, &st->req, false);
	}
	if (st->answered) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		bool fits = *upload_data_size <= st->body_limit - st->body.len &&
			    k_ok(kbuf_append(&st->body, upload_data, *upload_data_size));
		*upload_data_size = 0;
		if (fits)
			return MHD_YES;
		/*
		 * A chunked body past the limit (a Content-Length past it was
		 * refused from the head). libmicrohttpd takes no answer in the
		 * middle of a body, and reading the rest to answer after it
		 * would read without end: the connection is closed now.
		 */
		LOG_DEBUG("http: closing a connection whose chunked body passed %zu bytes",
			  st->body_limit);
		http_conn_linger(conn_of(conn));
		return MHD_NO;
	}
	http_conn_busy(conn_of(conn));
	if (srv->offload != NULL && api_runs_long(&st->req))
		return offload_api(srv, conn, st, url);
	return run_api(srv, conn, st, url, false);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	const struct http_server *srv = cls;
	http_conn_request_done(srv->conns, conn_of(conn),
			       toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	struct http_req_state *st = *con_cls;
	if (st == NULL)
		return;
	/*
	 * An offloaded request's answer was written on its offload thread. A
	 * connection closed without being answered here (the server stopping)
	 * never passed on_request's acquire of handled; this one orders those
	 * writes before the state is wiped. The offload threads were joined
	 * before any such close (http_stop), so handled is set by now.
	 */
	if (st->offloaded)
		(void)atomic_load_explicit(&st->handled, memory_order_acquire);
	http_req_state_done(st);
	*con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	vsnprintf(line, sizeof line, fmt, ap);
	size_t n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = 0;
	LOG_DEBUG("http: %s", line);
}

/* Reads a whole PEM file (at most HTTP_MAX_PEM bytes) into out, NUL-terminated. */
static K_MUST_CHECK k_status read_pem(const char *path, struct kbuf *out)
{
	k_status rc = K_E_VALIDATION;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		LOG_ERROR("cannot open %s: %s", path, strerror(errno));
		return K_E_VALIDATION;
	}
	uint8_t chunk[4096];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			LOG_ERROR("cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (k_failed(kbuf_append(out, chunk, (size_t)n))) {
			LOG_ERROR("%s is larger than %u bytes", path, HTTP_MAX_PEM);
			goto out;
		}
	}
	if (out->len == 0 || k_failed(kbuf_append_byte(out, 0))) {
		LOG_ERROR("%s is empty", path);
		goto out;
	}
	rc = K_OK;
out:
	crypto_wipe(chunk, sizeof chunk);
	close(fd);
	return rc;
}

/*
 * Loads the certificate (public, into ordinary memory) and the key (into
 * secret memory, by crypto/tls.c, which also hands it to libmicrohttpd).
 */
static K_MUST_CHECK k_status load_tls(struct http_server *s, const char *cert_file,
				      const char *key_file)
{
	struct kbuf cert;
	kbuf_init(&cert, HTTP_MAX_PEM);
	k_status rc = read_pem(cert_file, &cert);
	if (k_ok(rc))
		rc = crypto_tls_key_load(key_file, &s->key_pem);
	if (k_ok(rc)) {
		s->cert_pem = strdup(kbuf_cstr(&cert));
		if (s->cert_pem == NULL)
			rc = K_E_INTERNAL;
	}
	kbuf_release(&cert);
	return rc;
}

/*
 * The soft descriptor limit must fit every connection we keep, the
 * connection table's lingering and refused sockets, the store and the
 * log; Debian's default soft limit (1024) would otherwise cap a
 * 4096-connection server at a quarter of its stated limit. Where the hard
 * limit does not allow that, max_connections is lowered to what fits: a
 * server out of descriptors stops accepting altogether. Returns the
 * number of connections to allow.
 */
static unsigned fit_descriptor_limit(unsigned max_connections)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return max_connections;
	rlim_t other = (rlim_t)http_conns_extra_fds() + 256;
	rlim_t want = (rlim_t)max_connections + other;
	if (rl.rlim_cur < want) {
		rlim_t was = rl.rlim_cur;
		rl.rlim_cur =
			rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = was;
	}
	if (rl.rlim_cur >= want)
		return max_connections;
	unsigned fit = rl.rlim_cur > other + 16 ? (unsigned)(rl.rlim_cur - other) : 16u;
	LOG_WARN("the descriptor limit (%lu) fits %u connections: max_connections lowered from %u",
		 (unsigned long)rl.rlim_cur, fit, max_connections);
	return fit;
}

/*
 * As many offload threads as request threads, at most
 * HTTP_OFFLOAD_MAX_THREADS: enough that the long requests of a busy
 * server use every core, while each request thread stays free.
 */
static unsigned offload_threads(unsigned request_threads)
{
	return request_threads < HTTP_OFFLOAD_MAX_THREADS ? request_threads
							  : HTTP_OFFLOAD_MAX_THREADS;
}

static void free_server(struct http_server *s)
{
	http_offload_free(s->offload);
	http_conns_stop(s->conns);
	free(s->cert_pem);
	free(s->client_ca_pem);
	ksecret_free(s->key_pem);
	free(s);
}

/* The listen address (an IPv4 or IPv6 literal and the port) into ss; MHD_USE_IPv6 into *flags for IPv6. */
static K_MUST_CHECK k_status listen_address(const struct http_options *o,
					    struct sockaddr_storage *ss, unsigned *flags)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, o->host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)o->port);
		return K_OK;
	}
	if (inet_pton(AF_INET6, o->host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)o->port);
		*flags |= MHD_USE_IPv6;
		return K_OK;
	}
	LOG_ERROR("cannot parse listen address %s (give an IP address)", o->host);
	return K_E_VALIDATION;
}

/* mTLS: the client CA file into s->client_ca_pem (public, ordinary memory). */
static K_MUST_CHECK k_status load_client_ca(struct http_server *s, const char *file)
{
	struct kbuf ca;
	kbuf_init(&ca, HTTP_MAX_PEM);
	k_status rc = read_pem(file, &ca);
	if (k_ok(rc)) {
		s->client_ca_pem = strdup(kbuf_cstr(&ca));
		if (s->client_ca_pem == NULL)
			rc = K_E_INTERNAL;
	}
	kbuf_release(&ca);
	return rc;
}

/*
 * HTTPS when a certificate is configured: loads it and its key into s and
 * fills libmicrohttpd's options for them (tls_opts has HTTP_TLS_OPTS items,
 * ending with MHD_OPTION_END), with the client CAs for mutual TLS when
 * given; MHD_USE_TLS into *flags.
 */
static K_MUST_CHECK k_status setup_tls(const struct http_options *o, struct http_server *s,
				       struct MHD_OptionItem tls_opts[HTTP_TLS_OPTS],
				       unsigned *flags)
{
	tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	if (o->tls_cert_file == NULL || o->tls_cert_file[0] == 0)
		return K_OK;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		LOG_ERROR("this libmicrohttpd has no TLS support");
		return K_E_VALIDATION;
	}
	if (k_failed(load_tls(s, o->tls_cert_file, o->tls_key_file ? o->tls_key_file : "")))
		return K_E_VALIDATION;
	s->tls = true;
	*flags |= MHD_USE_TLS;
	tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
					      (void *)crypto_tls_key_pem(s->key_pem)};
	tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert_pem};
	tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
					      (void *)HTTP_TLS_PRIORITIES};
	tls_opts[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	if (o->tls_client_ca_file == NULL || o->tls_client_ca_file[0] == 0)
		return K_OK;
	if (k_failed(load_client_ca(s, o->tls_client_ca_file)))
		return K_E_VALIDATION;
	kstr_copy(s->client_cn, sizeof s->client_cn,
		  o->tls_client_subject != NULL ? o->tls_client_subject : "");
	tls_opts[3] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, s->client_ca_pem};
	tls_opts[4] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	return K_OK;
}

k_status http_start(const struct http_options *o, struct http_server **out, unsigned *bound_port)
{
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_TURBO |
			 MHD_ALLOW_SUSPEND_RESUME;
	GUARD(listen_address(o, &ss, &flags));
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = o->threads ? o->threads : (unsigned)(cores > 0 ? cores : 1);
	unsigned max_conn = fit_descriptor_limit(o->max_connections ? o->max_connections : 4096u);
	struct http_server *s = calloc(1, sizeof *s);
	if (s == NULL)
		return K_E_INTERNAL;
	s->handle = o->handle != NULL ? o->handle : api_handle;
	struct MHD_OptionItem tls_opts[HTTP_TLS_OPTS];
	k_status rc = setup_tls(o, s, tls_opts, &flags);
	if (k_failed(rc)) {
		free_server(s);
		return rc;
	}
	struct http_conns_options co = {
		.max_connections = max_conn,
		.head_timeout_s = o->header_timeout_s ? o->header_timeout_s : 20u,
		.body_timeout_s = o->body_timeout_s ? o->body_timeout_s : 60u,
		.idle_timeout_s = o->idle_timeout_s ? o->idle_timeout_s : 60u,
		.tls = s->tls,
	};
	/* Only the API's operations run long (api_runs_long); another handler gets no pool. */
	if (k_failed(http_conns_start(&co, &s->conns)) ||
	    (s->handle == api_handle &&
	     k_failed(http_offload_start(offload_threads(threads), &s->offload)))) {
		free_server(s);
		return K_E_INTERNAL;
	}
	/*
	 * The connection table (conns.h) enforces max_connections, answering
	 * or closing at the limit. libmicrohttpd's own limit, which it splits
	 * evenly between the workers and at which a worker stops accepting,
	 * is set past anything the table lets through, so that no worker
	 * ever stops taking connections from the backlog.
	 */
	unsigned table_fds = max_conn + http_conns_extra_fds();
	s->d = MHD_start_daemon(
		flags, (uint16_t)o->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &ss,
		MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
		table_fds * threads, MHD_OPTION_CONNECTION_TIMEOUT, co.idle_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->per_ip_connections,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_URI_LOG_CALLBACK,
		on_request_line, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_EXTERNAL_LOGGER,
		mhd_log, NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_ARRAY, tls_opts,
		MHD_OPTION_END);
	if (s->d == NULL) {
		LOG_ERROR("cannot listen on %s:%u%s", o->host, o->port,
			  s->tls ? " (or the TLS certificate and key are unusable)" : "");
		free_server(s);
		return K_E_INTERNAL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	*bound_port = di ? di->port : o->port;
	*out = s;
	return K_OK;
}

void http_stop(struct http_server *s)
{
	if (s == NULL)
		return;
	/*
	 * The offload threads first: they finish what they hold and resume
	 * its connections, and from then on a long request runs on its
	 * request thread; libmicrohttpd refuses to stop while a connection is
	 * suspended.
	 */
	http_offload_stop(s->offload); /* stays allocated: request threads still read it */
	MHD_stop_daemon(s->d);	       /* closes every connection first */
	http_req_state_forget();       /* states whose requests ended on this thread */
	free_server(s);
}
