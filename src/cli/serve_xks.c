/*
 * serve_xks.c — `kinko serve --xks-listen HOST:PORT`: the XKS proxy's
 * listener (xks/proxy.h) beside the main one (serve_internal.h).
 */
#include "cli/serve_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/xks.h"
#include "xks/proxy.h"
#include "core/banned.h"

/* HOST:PORT (HOST may be [v6]) into host and *port; false if malformed. */
static bool split_listen(const char *v, char *host, size_t n, unsigned *port)
{
	const char *colon = strrchr(v, ':');
	if (colon == NULL)
		return false;
	char *end = NULL;
	unsigned long p = strtoul(colon + 1, &end, 10);
	size_t hl = (size_t)(colon - v);
	if (end == NULL || *end != 0 || colon[1] == 0 || p > 65535 || hl == 0 || hl >= n)
		return false;
	if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') {
		v++;
		hl -= 2;
	}
	snprintf(host, n, "%.*s", (int)hl, v);
	*port = (unsigned)p;
	return true;
}

/*
 * The proxy needs its credentials and keys from the configuration, and
 * HTTPS ("Communication between the XKS Proxy Management Fleet and XKS
 * Proxy MUST be protected by HTTPS"): plain HTTP only in dev mode.
 */
static int check_settings(const struct serve_state *s, const struct config_xks *x)
{
	if (!x->present || x->n_credentials == 0) {
		fprintf(stderr, "kinko: the XKS listener needs the configuration's \"xks\" section "
				"with at least one credential (docs/KEYSTORES.md)\n");
		return 2;
	}
	if (s->cfg.tls_cert_file[0] == 0 && !s->cfg.dev) {
		fprintf(stderr, "kinko: the XKS listener serves HTTPS only: give --tls-cert and "
				"--tls-key (or --tls-self-signed)\n");
		return 2;
	}
	return 0;
}

int serve_start_xks(struct serve_state *s)
{
	if (s->f.xks_listen != NULL)
		config_xks_set_listen(s->f.xks_listen);
	const struct config_xks *x = config_xks();
	if (x->listen[0] == 0)
		return 0;
	int rc = check_settings(s, x);
	if (rc != 0)
		return rc;
	char host[128];
	unsigned port = 0;
	if (!split_listen(x->listen, host, sizeof host, &port)) {
		fprintf(stderr, "kinko: bad XKS listen address %s (want HOST:PORT)\n", x->listen);
		return 2;
	}
	const char *ca = s->f.xks_client_ca != NULL ? s->f.xks_client_ca : x->client_ca_file;
	struct http_options ho = {
		.host = host,
		.port = port,
		.threads = s->cfg.threads,
		.max_connections = s->cfg.max_connections,
		.idle_timeout_s = s->cfg.idle_timeout_s,
		.header_timeout_s = s->cfg.header_timeout_s,
		.body_timeout_s = s->cfg.body_timeout_s,
		.per_ip_connections = s->cfg.per_ip_connections,
		.tls_cert_file = s->cfg.tls_cert_file,
		.tls_key_file = s->cfg.tls_key_file,
		.tls_client_ca_file = ca,
		.tls_client_subject = x->client_subject,
		.handle = xks_proxy_handle,
	};
	unsigned bound = 0;
	if (k_failed(http_start(&ho, &s->xks_srv, &bound))) {
		fprintf(stderr, "kinko: cannot listen on %s for the XKS proxy\n", x->listen);
		return 1;
	}
	bool v6 = strchr(host, ':') != NULL;
	printf("kinko XKS proxy listening on %s://%s%s%s:%u%s (%zu keys%s)\n",
	       s->cfg.tls_cert_file[0] ? "https" : "http", v6 ? "[" : "", host, v6 ? "]" : "",
	       bound, x->uri_path, x->n_keys, ca != NULL && ca[0] != 0 ? ", mutual TLS" : "");
	return 0;
}
