/*
 * serve.c — `kinko serve` (see serve.h), in the order it runs: parse the
 * flags, resolve the configuration, lock and check (cli/startup.h), open
 * the store and the services, start serving, wait for a signal, shut down.
 */
#include "cli/serve.h"
#include "cli/serve_internal.h"
#include "cli/lint.h"
#include "cli/peer.h"
#include "cli/seed.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/pipeline.h"
#include "audit/audit.h"
#include "auth/sigv4.h"
#include "cli/startup.h"
#include "cli/usage.h"
#include "cloudtrail/cloudtrail.h"
#include "config/config.h"
#include "config/functions.h"
#include "cluster/cluster.h"
#include "core/clock.h"
#include "core/curl_init.h"
#include "core/log.h"
#include "core/secret.h"
#include "crypto/asym.h"
#include "crypto/x509.h"
#include "http/server.h"
#include "keystore/keystore.h"
#include "kms/key_warm.h"
#include "kms/kms.h"
#include "kms/xks_link.h"
#include "metrics/metrics.h"
#include "quota/quota.h"
#include "scheduler/scheduler.h"
#include "secrets/secrets.h"
#include "storage/storage.h"
#include "sts/sts.h"
#include "testmode/testmode.h"
#include "xks/kms_link.h"
#include "core/banned.h"

/* The cached keys whose material RLIMIT_MEMLOCK should hold (reported at start). */
#define SERVE_MEMLOCK_KEYS 100000ul

/*
 * The signals serve acts on. They are blocked before the first thread
 * starts, so every thread inherits the mask, and the main thread alone
 * takes them with sigwait(): no handler ever interrupts another thread's
 * work, and SIGHUP no longer kills the server (its default action).
 */
static void block_server_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

/*
 * The whole shutdown (requests drained, rotations ended, audit sealed) is
 * bounded: past SHUTDOWN_MAX_S the process exits without the rest of its
 * clean-up, with a log line saying so, rather than hang a service manager.
 */
#define SHUTDOWN_MAX_S 30

static void *shutdown_watchdog(void *arg)
{
	(void)arg;
	struct timespec ts = {SHUTDOWN_MAX_S, 0};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	LOG_ERROR("shutdown took longer than %d s; exiting without finishing it", SHUTDOWN_MAX_S);
	_exit(1);
}

static void start_shutdown_watchdog(void)
{
	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, shutdown_watchdog, NULL) != 0)
		LOG_WARN("cannot start the shutdown watchdog; shutdown is not bounded");
	pthread_attr_destroy(&attr);
}

/*
 * Serves until SIGTERM or SIGINT. SIGHUP reopens the log file (what
 * logrotate expects after it renamed it) and serving goes on.
 */
static void wait_for_stop(const sigset_t *set)
{
	for (;;) {
		int sig = 0;
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			return;
		if (k_ok(klog_reopen()))
			LOG_INFO("SIGHUP: log file reopened");
	}
}

static int parse_listen(struct config *cfg, const char *v)
{
	const char *colon = strrchr(v, ':');
	if (colon == NULL)
		return -1;
	char *end = NULL;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (end == NULL || *end != 0 || port > 65535 ||
	    (size_t)(colon - v) >= sizeof cfg->listen_host)
		return -1;
	const char *h = v;
	size_t hl = (size_t)(colon - v);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	snprintf(cfg->listen_host, sizeof cfg->listen_host, "%.*s", (int)hl, h);
	cfg->listen_port = (unsigned)port;
	return 0;
}

/* GET /ready's store probe: the root key's check value record reads back. */
static K_MUST_CHECK k_status probe_store(void *arg)
{
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	k_status rc = storage_get(arg, KEYSTORE_CHECK_KIND, KEYSTORE_CHECK_NS, KEYSTORE_CHECK_ID,
				  &doc, NULL);
	kbuf_release(&doc);
	return k_is(rc, K_E_NOT_FOUND) ? K_OK : rc;
}

k_status cli_register_tables(struct storage *st, bool test_mode, struct kbuf *msg)
{
	GUARD(api_register_service(kms_service_table(), msg));
	GUARD(api_register_service(sts_service_table(), msg)); /* STS on the same endpoint */
	if (test_mode) {
		GUARD(testmode_init(st));
		GUARD(api_register_service(testmode_service_table(), msg));
	}
	GUARD(api_register_service(secrets_service_table(),
				   msg)); /* Secrets Manager on the same endpoint */
	GUARD(api_register_service(cloudtrail_service_table(), msg));
	return K_OK;
}

/* The paths the flags name win over the configuration file's; the rest default from the data folder. */
static int apply_path_flags(struct serve_state *s)
{
	struct config *cfg = &s->cfg;
	const struct serve_flags *f = &s->f;
	if (f->listen != NULL && parse_listen(cfg, f->listen) != 0) {
		fprintf(stderr, "kinko: bad --listen %s (want HOST:PORT)\n", f->listen);
		return 2;
	}
	if (f->data != NULL)
		snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", f->data);
	if (f->store_url != NULL)
		snprintf(cfg->store_url, sizeof cfg->store_url, "%s", f->store_url);
	if (f->node_id != NULL)
		snprintf(cfg->node_id, sizeof cfg->node_id, "%s", f->node_id);
	if (cfg->store_url[0] == 0)
		snprintf(cfg->store_url, sizeof cfg->store_url, "sqlite:%s", cfg->data_dir);
	if (f->root_key != NULL)
		snprintf(cfg->root_key_file, sizeof cfg->root_key_file, "%s", f->root_key);
	if (cfg->root_key_file[0] == 0)
		snprintf(cfg->root_key_file, sizeof cfg->root_key_file, "%s/root.key",
			 cfg->data_dir);
	if (f->tls_cert != NULL)
		snprintf(cfg->tls_cert_file, sizeof cfg->tls_cert_file, "%s", f->tls_cert);
	if (f->tls_key != NULL)
		snprintf(cfg->tls_key_file, sizeof cfg->tls_key_file, "%s", f->tls_key);
	if (f->tls_self_signed) {
		snprintf(cfg->tls_cert_file, sizeof cfg->tls_cert_file, "%s/tls-cert.pem",
			 cfg->data_dir);
		snprintf(cfg->tls_key_file, sizeof cfg->tls_key_file, "%s/tls-key.pem",
			 cfg->data_dir);
	}
	if ((cfg->tls_cert_file[0] == 0) != (cfg->tls_key_file[0] == 0)) {
		fprintf(stderr, "kinko: --tls-cert and --tls-key go together\n");
		return 2;
	}
	return 0;
}

/* Step 2: the log file, the configuration file, then the flags over it. 0, or an exit status. */
static int serve_resolve_config(struct serve_state *s)
{
	struct config *cfg = &s->cfg;
	if (!cfg->dev && s->f.config_path == NULL) {
		fprintf(stderr, "kinko: give --config FILE, or --dev for a development server\n");
		return 2;
	}
	if (s->f.log_file != NULL && k_failed(klog_open_file(s->f.log_file, &s->msg))) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	if (s->f.config_path != NULL &&
	    k_failed(config_load_file(cfg, s->f.config_path, &s->msg))) {
		fprintf(stderr, "kinko: config: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	enum klog_format lf;
	if (s->f.log_format == NULL && cfg->log_format[0] != 0) {
		if (k_failed(klog_parse_format(cfg->log_format, &lf))) {
			fprintf(stderr,
				"kinko: config: \"log_format\" must be \"text\" or \"json\", not "
				"\"%s\"\n",
				cfg->log_format);
			return 1;
		}
		klog_set_format(lf);
	}
	if (cfg->dev && k_failed(config_add_dev_identity(&s->msg))) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	int rc = apply_path_flags(s);
	if (rc != 0)
		return rc;
	/*
	 * Test mode lets callers empty their account and move the clock
	 * (expiring sessions, carrying out pending key deletions): only with
	 * --dev, or with a configuration that says it in so many words.
	 */
	if (cfg->test_mode && !cfg->dev && !cfg->test_mode_outside_dev) {
		fprintf(stderr,
			"kinko: --test-mode is for development servers: give --dev, or set \"%s\": "
			"true "
			"in the configuration if this server's data may be lost\n",
			CONFIG_TEST_MODE_SWITCH);
		return 2;
	}
	if (cfg->test_mode && !cfg->dev)
		LOG_WARN("test mode outside dev mode: principals allowed kinko-test:* can empty "
			 "their "
			 "account and move the server clock");
	if (cfg->test_mode)
		kclock_enable_test_mode();
	return 0;
}

/* The data folder, and an audit folder outside it, are created and locked. */
static int lock_folders(struct serve_state *s)
{
	const char *data_dir = s->cfg.data_dir, *audit_dir = s->f.audit_dir;
	if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "kinko: cannot create data folder %s: %s\n", data_dir,
			strerror(errno));
		return 1;
	}
	if (k_failed(startup_lock_dir(data_dir, &s->data_lock, &s->msg))) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	if (!s->f.no_audit && audit_dir != NULL) {
		if (mkdir(audit_dir, 0700) != 0 && errno != EEXIST) {
			fprintf(stderr, "kinko: audit: cannot create %s: %s\n", audit_dir,
				strerror(errno));
			return 1;
		}
		if (k_failed(startup_lock_dir(audit_dir, &s->audit_lock, &s->msg))) {
			fprintf(stderr, "kinko: audit: %s\n", kbuf_cstr(&s->msg));
			return 1;
		}
	}
	return 0;
}

/*
 * Step 3: nothing in the data folder or the audit trail changes before
 * these pass (cli/startup.h). 0, or an exit status.
 */
static int serve_lock_and_check(struct serve_state *s)
{
	struct config *cfg = &s->cfg;
	if (lock_folders(s) != 0)
		return 1;
	if (k_failed(startup_check_listen(cfg->listen_host, cfg->listen_port, &s->msg))) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	if (!cfg->dev && !cfg->root_key_in_data_ok && !s->f.allow_root_key_in_data &&
	    k_failed(startup_root_key_outside(cfg->root_key_file, cfg->data_dir, &s->msg))) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	if (k_failed(keystore_open_file(cfg->root_key_file, cfg->dev, &s->msg))) {
		fprintf(stderr, "kinko: root key: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	if (s->f.tls_self_signed &&
	    k_failed(crypto_x509_self_signed(cfg->tls_cert_file, cfg->tls_key_file, &s->msg))) {
		fprintf(stderr, "kinko: TLS: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	/* This node's id: configured, or kept in the data folder (cluster/cluster.h). */
	if (k_failed(cluster_node_id_init(cfg->node_id, cfg->data_dir, &s->msg))) {
		fprintf(stderr, "kinko: node id: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	/*
	 * A SQLite store outside the data folder is locked too: two servers on
	 * one SQLite store would never see each other's writes in their caches.
	 * --shared-store lifts that lock, for several nodes on one machine
	 * sharing one SQLite file (tests of the cluster's coordination; see
	 * docs/CLUSTER.md for what it does not give).
	 */
	char store_dir[4608];
	if (s->f.shared_store)
		LOG_WARN(
			"--shared-store: other processes may use the store %s; their changes reach "
			"this node's caches only when a cached entry is reloaded",
			cfg->store_url);
	if (!s->f.shared_store &&
	    k_ok(storage_local_dir(cfg->store_url, store_dir, sizeof store_dir)) &&
	    (mkdir(store_dir, 0700) == 0 || errno == EEXIST) &&
	    !startup_same_dir(store_dir, cfg->data_dir) &&
	    k_failed(startup_lock_dir(store_dir, &s->store_lock, &s->msg))) {
		fprintf(stderr, "kinko: store: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	return 0;
}

/* The operation tables and the quota overrides, which name their operations. */
static int register_operations(struct serve_state *s)
{
	/* Every service's operation table; an incomplete row stops kinko here. */
	if (k_failed(cli_register_tables(s->st, s->cfg.test_mode, &s->msg))) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	(void)cli_lint_policy_actions(s->f.config_path);
	kms_xks_link_set(xks_kms_link(s->f.xks_proxy_ca));
	api_health_add("store", probe_store, s->st);
	struct kbuf qmsg;
	kbuf_init(&qmsg, KBUF_NOTE_MAX);
	for (size_t q = 0; q < s->f.n_quota_specs; q++) {
		if (k_failed(quota_set(s->f.quota_specs[q], api_quota_name_known, &qmsg))) {
			fprintf(stderr, "kinko: %s\n", kbuf_cstr(&qmsg));
			return 2;
		}
	}
	kbuf_release(&qmsg);
	return 0;
}

/*
 * Step 4: the store, handed to each service that needs it (kms/store.h),
 * checked against the root key; the operation tables; every service's
 * scheduled work. 0, or an exit status.
 */
static int serve_open_services(struct serve_state *s)
{
	if (k_failed(storage_open(s->cfg.store_url, &s->st, &s->msg))) {
		fprintf(stderr, "kinko: store: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	if (s->f.shared_store)
		s->st->shared = true; /* a SQLite file other nodes write too */
	if (k_failed(kms_init(s->st))) {
		fprintf(stderr, "kinko: cannot attach the KMS caches to the store\n");
		return 1;
	}
	if (k_failed(startup_root_key_matches(s->st, s->cfg.root_key_file, s->cfg.data_dir, true,
					      &s->msg))) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	/* Grants that older versions kept in key documents become grant records. */
	if (k_failed(kms_grants_migrate_all(s->st))) {
		fprintf(stderr,
			"kinko: cannot move the grants of older key documents to records\n");
		return 1;
	}
	int rc = register_operations(s);
	if (rc != 0)
		return rc;
	/* Peer deployments of multi-Region keys: the wrapping key, the KinkoPeer operations. */
	if (k_failed(cli_peers_open(s->st, &s->msg))) {
		fprintf(stderr, "kinko: peers: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	/* Lifecycle: scheduled deletions and rotations; test mode only with the flag. */
	if (k_failed(kms_lifecycle_init())) {
		fprintf(stderr, "kinko: cannot register the scheduled key work\n");
		return 1;
	}
	/* Secrets Manager on the same endpoint, with its scheduled work. */
	if (k_failed(secrets_init(s->st))) {
		fprintf(stderr, "kinko: cannot register the Secrets Manager service\n");
		return 1;
	}
	/* STS sessions in the store, valid on every node that shares it (sts/sts.h). */
	if (k_failed(sts_init(s->st))) {
		fprintf(stderr, "kinko: cannot attach the STS sessions to the store\n");
		return 1;
	}
	/* The key sets of OIDC providers given by URL, fetched off the request path. */
	if (k_failed(kcurl_global_init()) || k_failed(sts_jwks_start())) {
		fprintf(stderr, "kinko: cannot start fetching the OIDC providers' key sets\n");
		return 1;
	}
	/* imported key material expiry (ops_import.c), run by the scheduler */
	if (k_failed(kms_import_init())) {
		fprintf(stderr, "kinko: cannot register the import expiry task\n");
		return 1;
	}
	return 0;
}

/*
 * Step 5: metrics, quotas and the audit trail. The audit log is on by
 * default (DATA/audit); quotas follow AWS's defaults except in dev mode,
 * where they are off unless --quotas aws or a --quota is given.
 * 0, or an exit status.
 */
static int serve_open_audit(struct serve_state *s)
{
	struct serve_flags *f = &s->f;
	const struct config *cfg = &s->cfg;
	metrics_register_store_gauges(s->st);
	signal(SIGXFSZ,
	       SIG_IGN); /* a file-size limit is a failed write (fail closed), not a kill */
	if (f->quotas_mode != NULL)
		quota_enable(strcmp(f->quotas_mode, "aws") == 0);
	else
		quota_enable(!cfg->dev || f->quota_overridden);
	if (f->no_audit)
		return 0;
	snprintf(s->audit_dir, sizeof s->audit_dir, "%s", f->audit_dir ? f->audit_dir : "");
	if (f->audit_dir == NULL)
		snprintf(s->audit_dir, sizeof s->audit_dir, "%s/audit", cfg->data_dir);
	snprintf(s->audit_key, sizeof s->audit_key, "%s/audit-signing.key", cfg->data_dir);
	f->audit.dir = s->audit_dir;
	f->audit.key_file = s->audit_key;
	/* The config file's period and witness, unless a flag said otherwise. */
	if (f->audit.period_ms == 0)
		f->audit.period_ms = (int64_t)cfg->audit_digest_seconds * 1000;
	if (f->audit.witness_file == NULL && cfg->audit_witness_file[0] != 0)
		f->audit.witness_file = cfg->audit_witness_file;
	f->audit.witness_syslog = f->audit.witness_syslog || cfg->audit_witness_syslog;
	/* The last-use index is rebuilt from the log; the tables say which successes are key uses. */
	size_t n_key_use = api_key_use_ops(NULL, 0);
	struct audit_op_name *key_use = calloc(n_key_use ? n_key_use : 1, sizeof *key_use);
	if (key_use == NULL) {
		fprintf(stderr, "kinko: audit: out of memory\n");
		return 1;
	}
	f->audit.key_use_ops = key_use;
	f->audit.n_key_use_ops = api_key_use_ops(key_use, n_key_use);
	k_status rc = audit_open(&f->audit, &s->msg);
	free(key_use);
	f->audit.key_use_ops = NULL;
	f->audit.n_key_use_ops = 0;
	if (k_failed(rc)) {
		fprintf(stderr, "kinko: audit: %s\n", kbuf_cstr(&s->msg));
		return 1;
	}
	/*
	 * On a store other nodes share (--shared-store, or one with no local
	 * files), the keys' last uses are shared through it and each event is
	 * also indexed there for LookupEvents on the other nodes. A store of
	 * this node alone needs neither: the last-use index is this node's,
	 * rebuilt from its trail at start, and writing every used key's last
	 * use to the store each second cost most of a core with 100,000 keys
	 * in use (docs/PERFORMANCE.md, "Encrypt over 100,000 keys").
	 */
	bool shared = s->st->shared;
	if (shared && k_failed(audit_lastuse_share_start(s->st))) {
		fprintf(stderr, "kinko: cannot start sharing the keys' last uses\n");
		return 1;
	}
	if (shared && k_failed(audit_ctindex_start(s->st))) {
		fprintf(stderr, "kinko: cannot start indexing the audit events in the store\n");
		return 1;
	}
	return 0;
}

/* Where rotation functions call back (any-address listeners: loopback). */
static void set_callback_endpoint(const struct config *cfg, unsigned port)
{
	char ep[300];
	const char *h = cfg->listen_host;
	if (strcmp(h, "0.0.0.0") == 0 || h[0] == 0)
		h = "127.0.0.1";
	else if (strcmp(h, "::") == 0)
		h = "::1";
	bool h6 = strchr(h, ':') != NULL;
	snprintf(ep, sizeof ep, "%s://%s%s%s:%u", cfg->tls_cert_file[0] ? "https" : "http",
		 h6 ? "[" : "", h, h6 ? "]" : "", port);
	secrets_set_endpoint(ep);
}

/* The Prometheus listener of --metrics-listen HOST:PORT. 0, or an exit status. */
static int start_metrics(const char *listen)
{
	char mhost[128];
	unsigned mport = 0;
	const char *colon = strrchr(listen, ':');
	size_t hl = colon ? (size_t)(colon - listen) : 0;
	if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']')
		snprintf(mhost, sizeof mhost, "%.*s", (int)(hl - 2), listen + 1);
	else
		snprintf(mhost, sizeof mhost, "%.*s", (int)hl, listen);
	if (colon == NULL ||
	    k_failed(metrics_http_start(mhost, (unsigned)strtoul(colon + 1, NULL, 10), &mport))) {
		fprintf(stderr, "kinko: cannot serve metrics on %s\n", listen);
		return 1;
	}
	printf("kinko metrics on http://%s%s%s:%u/metrics\n", strchr(mhost, ':') ? "[" : "", mhost,
	       strchr(mhost, ':') ? "]" : "", mport);
	return 0;
}

static bool loopback_host(const char *h)
{
	return strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0 || strcmp(h, "localhost") == 0;
}

/*
 * After the "listening on" line (the first line of standard output, which
 * scripts and tests read) and the metrics line: in dev mode, where the data is and the lines to
 * paste into another shell; in dev or test mode on an address beyond
 * loopback, a warning that anyone who reaches it has the well-known keys
 * or the test operations.
 */
static void print_banner(const struct config *cfg, unsigned port)
{
	bool v6 = strchr(cfg->listen_host, ':') != NULL;
	char url[160];
	snprintf(url, sizeof url, "%s://%s%s%s:%u", cfg->tls_cert_file[0] ? "https" : "http",
		 v6 ? "[" : "", cfg->listen_host, v6 ? "]" : "", port);
	if (cfg->dev) {
		char abs[PATH_MAX];
		const char *data = realpath(cfg->data_dir, abs) ? abs : cfg->data_dir;
		printf("  data folder: %s (store, root key, audit trail)\n", data);
		printf("  test mode: %s\n",
		       cfg->test_mode ? "on (test clock and reset operations enabled)" : "off");
		printf("  in another shell:\n");
		printf("    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "
		       "AWS_DEFAULT_REGION=us-east-1\n");
		printf("    export AWS_ENDPOINT_URL=%s   # AWS CLI 2.13+ and newer SDKs\n", url);
		printf("    aws --endpoint-url %s kms list-keys\n", url);
	}
	if ((cfg->dev || cfg->test_mode) && !loopback_host(cfg->listen_host))
		LOG_WARN("*** %s on %s, beyond this machine: anyone who can reach it %s ***",
			 cfg->dev && cfg->test_mode ? "dev and test mode listen"
			 : cfg->dev		    ? "dev mode listens"
						    : "test mode listens",
			 url,
			 cfg->dev ? "can use the access key \"test\" with the secret \"test\""
				  : "can call the test operations that empty accounts");
}

/* Step 6: the scheduler, the HTTP listener, then the metrics listener. 0, or an exit status. */
static int serve_start(struct serve_state *s)
{
	struct config *cfg = &s->cfg;
	signal(SIGPIPE, SIG_IGN);
	/* The node's heartbeat, before the scheduler claims work under its id. */
	if (k_failed(cluster_start(s->st))) {
		fprintf(stderr, "kinko: cannot register node %s in the store\n", cluster_node_id());
		return 1;
	}
	metrics_add_source(cluster_metrics);
	/* The one scheduler thread, once every module registered its due work. */
	if (k_failed(scheduler_start(s->st))) {
		fprintf(stderr, "kinko: cannot start the scheduler\n");
		return 1;
	}
	if (k_failed(cli_peers_start())) {
		fprintf(stderr, "kinko: cannot start the peers' outbox worker\n");
		return 1;
	}
	/*
	 * With --audit-sync fsync every call waits for a disk flush on its worker
	 * thread; group commit then batches only as many calls as there are
	 * waiting threads, so give the pool more threads than cores.
	 */
	if (cfg->threads == 0 && !s->f.no_audit && s->f.audit.sync == AUDIT_SYNC_FSYNC)
		cfg->threads = 64;
	struct http_options ho = {
		.host = cfg->listen_host,
		.port = cfg->listen_port,
		.threads = cfg->threads,
		.max_connections = cfg->max_connections,
		.idle_timeout_s = cfg->idle_timeout_s,
		.header_timeout_s = cfg->header_timeout_s,
		.body_timeout_s = cfg->body_timeout_s,
		.per_ip_connections = cfg->per_ip_connections,
		.tls_cert_file = cfg->tls_cert_file,
		.tls_key_file = cfg->tls_key_file,
	};
	unsigned port = 0;
	asym_pool_enable(); /* RSA keys made ahead once a spec is asked for */
	if (k_failed(http_start(&ho, &s->srv, &port))) {
		fprintf(stderr, "kinko: cannot listen on %s:%u\n", cfg->listen_host,
			cfg->listen_port);
		return 1;
	}
	set_callback_endpoint(cfg, port);
	bool v6 = strchr(cfg->listen_host, ':') != NULL;
	printf("kinko %s listening on %s://%s%s%s:%u%s\n", KINKO_VERSION,
	       cfg->tls_cert_file[0] ? "https" : "http", v6 ? "[" : "", cfg->listen_host,
	       v6 ? "]" : "", port, cfg->dev ? " (dev mode: access key test, secret test)" : "");
	if (s->f.metrics_listen != NULL && start_metrics(s->f.metrics_listen) != 0) {
		http_stop(s->srv);
		return 1;
	}
	if (serve_start_xks(s) != 0) {
		metrics_http_stop();
		http_stop(s->srv);
		return 1;
	}
	print_banner(cfg, port);
	fflush(stdout);
	/* Every key into the cache, in the background, so first uses after a restart are warm. */
	struct kms_warm_options wo = {.max_keys = (size_t)s->f.warm_keys,
				      .rate = KMS_WARM_RATE_DEFAULT};
	if (k_failed(kms_warm_start(&wo)))
		LOG_WARN("kms: cannot start loading the key cache; keys load on first use");
	ksecret_report_memlock(SERVE_MEMLOCK_KEYS);
	return 0;
}

/*
 * Step 8: no new request, then no new scheduled work, then no rotation
 * step (a running function is ended), and only then is the audit file
 * sealed, so that nothing is logged after the seal.
 */
static void serve_shut_down(struct serve_state *s)
{
	LOG_INFO("shutting down");
	start_shutdown_watchdog();
	http_stop(s->xks_srv);
	http_stop(s->srv);
	klog_flush();	  /* the request lines the request threads kept */
	asym_pool_stop(); /* the RSA keys made ahead, wiped */
	kms_warm_stop();  /* before the store and the key cache go */
	scheduler_stop();
	cli_peers_stop();
	cluster_stop();
	metrics_http_stop();
	if (!secrets_shutdown()) {
		/* A rotation still uses the store and the audit trail: the next start seals the file. */
		LOG_ERROR("exiting without sealing the audit file; the next start seals it");
		klog_flush();
		_exit(1);
	}
	audit_lastuse_share_stop(); /* writes the last uses still unshared */
	audit_ctindex_stop();	    /* and the events still unindexed */
	audit_close();		    /* seals the current log file */
	sigv4_thread_cleanup();	    /* the main thread's signing keys (no thread-exit destructor) */
	sts_jwks_stop();
	kms_shutdown();
	storage_close(s->st);
	keystore_close();
	config_release();
	kbuf_release(&s->msg);
	startup_unlock_dir(s->store_lock);
	startup_unlock_dir(s->audit_lock);
	startup_unlock_dir(s->data_lock);
	LOG_INFO("stopped");
}

int cli_serve(int argc, char **argv)
{
	struct serve_state s;
	memset(&s, 0, sizeof s);
	config_defaults(&s.cfg);
	s.data_lock = s.audit_lock = s.store_lock = -1;
	block_server_signals(&s.signals);
	int rc = serve_parse_flags(&s, argc, argv);
	if (rc != 0)
		return rc;
	kbuf_init(&s.msg, KBUF_NOTE_MAX);
	rc = serve_resolve_config(&s);
	if (rc == 0)
		rc = serve_lock_and_check(&s);
	if (rc == 0)
		rc = serve_open_services(&s);
	if (rc == 0)
		rc = serve_open_audit(&s);
	if (rc == 0)
		rc = seed_at_start(s.f.seed_file, s.f.config_path);
	if (rc == 0)
		rc = serve_start(&s);
	if (rc != 0)
		return rc;
	wait_for_stop(&s.signals); /* step 7 */
	serve_shut_down(&s);
	return 0;
}
