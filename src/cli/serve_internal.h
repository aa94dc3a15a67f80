/*
 * serve_internal.h — inside cli/: what `kinko serve` holds from start to
 * stop (serve.c), and its flag parser (serve_flags.c).
 */
#ifndef KINKO_CLI_SERVE_INTERNAL_H
#define KINKO_CLI_SERVE_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "audit/audit.h"
#include "config/config.h"
#include "core/buf.h"
#include "http/server.h"
#include "storage/storage.h"

#define MAX_QUOTA_SPECS 64

/* What the command line asked for, before the configuration file is read. */
struct serve_flags {
	const char *config_path, *listen, *data, *root_key;
	const char *tls_cert, *tls_key, *log_file, *store_url, *node_id;
	const char *seed_file;	   /* --seed FILE (cli/seed.h) */
	const char *log_format;	   /* --log-format text|json (core/log.h) */
	const char *xks_listen;	   /* --xks-listen HOST:PORT (config/xks.h) */
	const char *xks_client_ca; /* --xks-client-ca FILE: mTLS for the XKS listener */
	const char *xks_proxy_ca;  /* --xks-proxy-ca FILE: CAs of external key store proxies */
	bool tls_self_signed, allow_root_key_in_data, shared_store;
	const char *audit_dir, *metrics_listen, *quotas_mode;
	bool no_audit, quota_overridden;
	long long
		warm_keys; /* --warm-keys N: keys loaded into the cache at start (kms/key_warm.h) */
	struct audit_options audit;
	const char *quota_specs[MAX_QUOTA_SPECS];
	size_t n_quota_specs;
};

/* Everything serve holds from start to stop. */
struct serve_state {
	struct serve_flags f;
	struct config cfg;
	struct kbuf msg;
	sigset_t signals;
	int data_lock, audit_lock, store_lock;
	struct storage *st;
	struct http_server *srv;
	struct http_server *xks_srv; /* the XKS proxy's listener (serve_xks.c); NULL: none */
	char audit_dir[1024], audit_key[1024];
};

/* How one flag was taken: a switch, a flag and its value, unknown, or an error (exit 2). */
enum flag_taken {
	FLAG_SWITCH,
	FLAG_VALUE,
	FLAG_UNKNOWN,
	FLAG_ERROR
};

/* Step 1: the flags, in order (--log-level and --rotation-function act at once). 0, or an exit status. */
int serve_parse_flags(struct serve_state *s, int argc, char **argv);

/*
 * The XKS proxy's listener (serve_xks.c), when --xks-listen or the
 * configuration's xks.listen asks for one; after the main listener. 0, or
 * an exit status.
 */
int serve_start_xks(struct serve_state *s);

#endif
