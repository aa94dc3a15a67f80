/*
 * main.c — the kinko command: `kinko serve`, `kinko version`.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "audit/audit.h"
#include "cloudtrail/cloudtrail.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "http/server.h"
#include "keystore/keystore.h"
#include "kms/authz.h"
#include "kms/kms.h"
#include "metrics/metrics.h"
#include "quota/quota.h"
#include "kms/scheduler.h"
#include "config/functions.h"
#include "secrets/secrets.h"
#include "storage/storage.h"
#include "sts/sts.h"
#include "testmode/testmode.h"
#include "core/banned.h"

#define KINKO_VERSION "0.1.0"

/* No core dumps: a dump of this process would hold key material. */
static void harden_process(void)
{
	struct rlimit rl = {0, 0};
	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kinko serve [--dev] [--listen HOST:PORT] [--data DIR] [--config FILE]\n"
		"                   [--root-key FILE] [--threads N] [--test-mode] [--log-level LEVEL]\n"
		"                   [--tls-cert FILE --tls-key FILE | --tls-self-signed]\n"
		"                   [--rotation-function ARN=PATH]...\n"
		"       kinko check --data DIR [--root-key FILE]\n"
		"                   [--audit-dir DIR | --no-audit] [--audit-sync fsync|write]\n"
		"                   [--audit-max-file-bytes N] [--audit-rotate-seconds N]\n"
		"                   [--metrics-listen HOST:PORT] [--quotas aws|off] [--quota NAME=RATE]...\n"
		"       kinko audit verify DIR [--public-key FILE]\n"
		"       kinko usage --audit-dir DIR [--from TIME] [--to TIME] [--prices FILE] [--json]\n"
		"       kinko usage --print-prices\n"
		"       kinko policy simulate --config FILE --principal ARN --action kms:ACTION --key KEY_ARN\n"
		"       kinko version\n"
		"\n"
		"  --dev         no configuration needed: account 000000000000, access key\n"
		"                \"test\", secret \"test\", data in ./kinko-data\n"
		"  --test-mode   enables the test clock and reset endpoints (never in production)\n"
		"  --audit-dir   the audit log folder (default DATA/audit); --no-audit turns it off\n"
		"  --audit-sync  write: a call waits until its event is in the audit ring, which\n"
		"                a kill does not lose (default; drained into the log every 10 ms,\n"
		"                fdatasync every 200 ms); fsync: until it is on disk\n"
		"  --metrics-listen  serve Prometheus /metrics on this address (off by default)\n"
		"  --quotas      AWS's request quotas (default, except in --dev) or off;\n"
		"                --quota symmetric=100 or --quota CreateKey=5 overrides one rate\n"
		"  --tls-cert, --tls-key   serve HTTPS with this PEM certificate and key\n"
		"  --tls-self-signed       serve HTTPS with a self-signed certificate made (once)\n"
		"                in the data folder as tls-cert.pem / tls-key.pem (development)\n"
		"  check         opens a store and runs its integrity check (and unwraps every\n"
		"                key's material when the root key is readable); exit 0 if sound\n");
}

static int parse_listen(struct config *cfg, const char *v)
{
	const char *colon = strrchr(v, ':');
	if (colon == NULL)
		return -1;
	char *end = NULL;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (end == NULL || *end != 0 || port > 65535 || (size_t)(colon - v) >= sizeof cfg->listen_host)
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

static int serve(int argc, char **argv)
{
	struct config cfg;
	config_defaults(&cfg);
	const char *config_path = NULL, *listen = NULL, *data = NULL, *root_key = NULL;
	const char *tls_cert = NULL, *tls_key = NULL;
	bool tls_self_signed = false;
	/* audit, metrics, quotas (issue 8) */
	const char *audit_dir_arg = NULL, *metrics_listen = NULL, *quotas_mode = NULL;
	bool no_audit = false, quota_overridden = false;
	struct audit_options audit_opts;
	memset(&audit_opts, 0, sizeof audit_opts);
	/*
	 * Default: a call returns once its event is in the audit ring (it
	 * survives a crash of kinko); a flusher drains the ring into the log
	 * every 10 ms and fdatasyncs it every 200 ms.
	 * --audit-sync fsync makes each call wait for the disk as well.
	 */
	audit_opts.sync = AUDIT_SYNC_WRITE;
	struct kbuf qmsg;
	kbuf_init(&qmsg, 512);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--dev") == 0) {
			cfg.dev = true;
		} else if (strcmp(a, "--test-mode") == 0) {
			cfg.test_mode = true;
		} else if (strcmp(a, "--listen") == 0 && next) {
			listen = next;
			i++;
		} else if (strcmp(a, "--data") == 0 && next) {
			data = next;
			i++;
		} else if (strcmp(a, "--config") == 0 && next) {
			config_path = next;
			i++;
		} else if (strcmp(a, "--root-key") == 0 && next) {
			root_key = next;
			i++;
		} else if (strcmp(a, "--tls-cert") == 0 && next) {
			tls_cert = next;
			i++;
		} else if (strcmp(a, "--tls-key") == 0 && next) {
			tls_key = next;
			i++;
		} else if (strcmp(a, "--tls-self-signed") == 0) {
			tls_self_signed = true;
		} else if (strcmp(a, "--rotation-function") == 0 && next) {
			/* Secrets Manager: a local rotation function, ARN=PATH. */
			struct kbuf fmsg;
			kbuf_init(&fmsg, 512);
			if (config_functions_add_cli(next, &fmsg) != K_OK) {
				fprintf(stderr, "kinko: %s\n", kbuf_cstr(&fmsg));
				kbuf_release(&fmsg);
				return 2;
			}
			kbuf_release(&fmsg);
			i++;
		} else if (strcmp(a, "--audit-dir") == 0 && next) {
			audit_dir_arg = next; /* audit (issue 8) */
			i++;
		} else if (strcmp(a, "--no-audit") == 0) {
			no_audit = true;
		} else if (strcmp(a, "--audit-sync") == 0 && next) {
			if (strcmp(next, "fsync") != 0 && strcmp(next, "write") != 0) {
				fprintf(stderr, "kinko: --audit-sync takes fsync or write\n");
				return 2;
			}
			audit_opts.sync = strcmp(next, "write") == 0 ? AUDIT_SYNC_WRITE : AUDIT_SYNC_FSYNC;
			i++;
		} else if (strcmp(a, "--audit-max-file-bytes") == 0 && next) {
			audit_opts.max_file_bytes = strtoull(next, NULL, 10);
			i++;
		} else if (strcmp(a, "--audit-rotate-seconds") == 0 && next) {
			audit_opts.rotate_seconds = strtoll(next, NULL, 10);
			i++;
		} else if (strcmp(a, "--metrics-listen") == 0 && next) {
			metrics_listen = next;
			i++;
		} else if (strcmp(a, "--quotas") == 0 && next) {
			if (strcmp(next, "aws") != 0 && strcmp(next, "off") != 0) {
				fprintf(stderr, "kinko: --quotas takes aws or off\n");
				return 2;
			}
			quotas_mode = next;
			i++;
		} else if (strcmp(a, "--quota") == 0 && next) {
			if (quota_set(next, &qmsg) != K_OK) {
				fprintf(stderr, "kinko: %s\n", kbuf_cstr(&qmsg));
				return 2;
			}
			quota_overridden = true;
			i++;
		} else if (strcmp(a, "--threads") == 0 && next) {
			cfg.threads = (unsigned)strtoul(next, NULL, 10);
			i++;
		} else if (strcmp(a, "--log-level") == 0 && next) {
			klog_set_level(strcmp(next, "debug") == 0 ? KLOG_DEBUG
				       : strcmp(next, "warn") == 0 ? KLOG_WARN
				       : strcmp(next, "error") == 0 ? KLOG_ERROR
								     : KLOG_INFO);
			i++;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!cfg.dev && config_path == NULL) {
		fprintf(stderr, "kinko: give --config FILE, or --dev for a development server\n");
		return 2;
	}
	struct kbuf msg;
	kbuf_init(&msg, 4096);
	if (config_path != NULL && config_load_file(&cfg, config_path, &msg) != K_OK) {
		fprintf(stderr, "kinko: config: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	if (cfg.dev && config_install_dev_identity() != K_OK) {
		fprintf(stderr, "kinko: cannot install the dev identity\n");
		return 1;
	}
	if (listen != NULL && parse_listen(&cfg, listen) != 0) {
		fprintf(stderr, "kinko: bad --listen %s (want HOST:PORT)\n", listen);
		return 2;
	}
	if (data != NULL)
		snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", data);
	if (root_key != NULL)
		snprintf(cfg.root_key_file, sizeof cfg.root_key_file, "%s", root_key);
	if (cfg.root_key_file[0] == 0)
		snprintf(cfg.root_key_file, sizeof cfg.root_key_file, "%s/root.key", cfg.data_dir);
	if (tls_cert != NULL)
		snprintf(cfg.tls_cert_file, sizeof cfg.tls_cert_file, "%s", tls_cert);
	if (tls_key != NULL)
		snprintf(cfg.tls_key_file, sizeof cfg.tls_key_file, "%s", tls_key);
	if (tls_self_signed) {
		snprintf(cfg.tls_cert_file, sizeof cfg.tls_cert_file, "%s/tls-cert.pem", cfg.data_dir);
		snprintf(cfg.tls_key_file, sizeof cfg.tls_key_file, "%s/tls-key.pem", cfg.data_dir);
	}
	if ((cfg.tls_cert_file[0] == 0) != (cfg.tls_key_file[0] == 0)) {
		fprintf(stderr, "kinko: --tls-cert and --tls-key go together\n");
		return 2;
	}
	if (cfg.test_mode)
		kclock_enable_test_mode();

	if (mkdir(cfg.data_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "kinko: cannot create data folder %s: %s\n", cfg.data_dir, strerror(errno));
		return 1;
	}
	if (keystore_open_file(cfg.root_key_file, cfg.dev, &msg) != K_OK) {
		fprintf(stderr, "kinko: root key: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	if (tls_self_signed &&
	    http_tls_self_signed(cfg.tls_cert_file, cfg.tls_key_file, &msg) != K_OK) {
		fprintf(stderr, "kinko: TLS: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	struct storage *st = NULL;
	if (storage_sqlite_open(cfg.data_dir, &st) != K_OK) {
		fprintf(stderr, "kinko: cannot open the store in %s\n", cfg.data_dir);
		return 1;
	}
	kms_init(st);
	kms_register();
	sts_register(); /* authorization: STS on the same endpoint */
	/* Lifecycle: scheduled deletions and rotations; test mode only with the flag. */
	if (kms_lifecycle_init() != K_OK) {
		fprintf(stderr, "kinko: cannot register the scheduled key work\n");
		return 1;
	}
	if (cfg.test_mode)
		testmode_register(st);
	/* Secrets Manager on the same endpoint, with its scheduled work. */
	if (secrets_init() != K_OK) {
		fprintf(stderr, "kinko: cannot register the Secrets Manager service\n");
		return 1;
	}
	/* imported key material expiry (ops_import.c), run by the scheduler */
	if (kms_import_init() != K_OK) {
		fprintf(stderr, "kinko: cannot register the import expiry task\n");
		return 1;
	}
	/*
	 * Audit, CloudTrail, metrics, quotas (issue 8). The audit log is on by
	 * default (DATA/audit); quotas follow AWS's defaults except in dev mode,
	 * where they are off unless --quotas aws or a --quota is given.
	 */
	cloudtrail_register();
	metrics_register_store_gauges();
	signal(SIGXFSZ, SIG_IGN); /* a file-size limit is a failed write (fail closed), not a kill */
	if (quotas_mode != NULL)
		quota_enable(strcmp(quotas_mode, "aws") == 0);
	else
		quota_enable(!cfg.dev || quota_overridden);
	kbuf_release(&qmsg);
	if (!no_audit) {
		char adir[1024], akey[1024];
		snprintf(adir, sizeof adir, "%s", audit_dir_arg ? audit_dir_arg : "");
		if (audit_dir_arg == NULL)
			snprintf(adir, sizeof adir, "%s/audit", cfg.data_dir);
		snprintf(akey, sizeof akey, "%s/audit-signing.key", cfg.data_dir);
		audit_opts.dir = adir;
		audit_opts.key_file = akey;
		if (audit_open(&audit_opts, &msg) != K_OK) {
			fprintf(stderr, "kinko: audit: %s\n", kbuf_cstr(&msg));
			return 1;
		}
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The one scheduler thread, once every module registered its due work. */
	if (scheduler_start(st) != K_OK) {
		fprintf(stderr, "kinko: cannot start the scheduler\n");
		return 1;
	}

	/*
	 * With --audit-sync fsync every call waits for a disk flush on its worker
	 * thread; group commit then batches only as many calls as there are
	 * waiting threads, so give the pool more threads than cores.
	 */
	if (cfg.threads == 0 && !no_audit && audit_opts.sync == AUDIT_SYNC_FSYNC)
		cfg.threads = 64;

	struct http_options ho = {
		.host = cfg.listen_host,
		.port = cfg.listen_port,
		.threads = cfg.threads,
		.max_connections = cfg.max_connections,
		.idle_timeout_s = cfg.idle_timeout_s,
		.header_timeout_s = cfg.header_timeout_s,
		.body_timeout_s = cfg.body_timeout_s,
		.per_ip_connections = cfg.per_ip_connections,
		.tls_cert_file = cfg.tls_cert_file,
		.tls_key_file = cfg.tls_key_file,
	};
	struct http_server *srv = NULL;
	unsigned port = 0;
	if (http_start(&ho, &srv, &port) != K_OK) {
		fprintf(stderr, "kinko: cannot listen on %s:%u\n", cfg.listen_host, cfg.listen_port);
		return 1;
	}
	bool v6 = strchr(cfg.listen_host, ':') != NULL;
	{
		/* Where rotation functions call back (any-address listeners: loopback). */
		char ep[300];
		const char *h = cfg.listen_host;
		if (strcmp(h, "0.0.0.0") == 0 || h[0] == 0)
			h = "127.0.0.1";
		else if (strcmp(h, "::") == 0)
			h = "::1";
		bool h6 = strchr(h, ':') != NULL;
		snprintf(ep, sizeof ep, "%s://%s%s%s:%u", cfg.tls_cert_file[0] ? "https" : "http",
			 h6 ? "[" : "", h, h6 ? "]" : "", port);
		secrets_set_endpoint(ep);
	}
	printf("kinko %s listening on %s://%s%s%s:%u%s\n", KINKO_VERSION,
	       cfg.tls_cert_file[0] ? "https" : "http", v6 ? "[" : "",
	       cfg.listen_host, v6 ? "]" : "", port,
	       cfg.dev ? " (dev mode: access key test, secret test)" : "");
	if (metrics_listen != NULL) {
		char mhost[128];
		unsigned mport = 0;
		const char *colon = strrchr(metrics_listen, ':');
		size_t hl = colon ? (size_t)(colon - metrics_listen) : 0;
		if (hl >= 2 && metrics_listen[0] == '[' && metrics_listen[hl - 1] == ']')
			snprintf(mhost, sizeof mhost, "%.*s", (int)(hl - 2), metrics_listen + 1);
		else
			snprintf(mhost, sizeof mhost, "%.*s", (int)hl, metrics_listen);
		if (colon == NULL ||
		    metrics_http_start(mhost, (unsigned)strtoul(colon + 1, NULL, 10), &mport) != K_OK) {
			fprintf(stderr, "kinko: cannot serve metrics on %s\n", metrics_listen);
			http_stop(srv);
			return 1;
		}
		printf("kinko metrics on http://%s%s%s:%u/metrics\n", strchr(mhost, ':') ? "[" : "",
		       mhost, strchr(mhost, ':') ? "]" : "", mport);
	}
	fflush(stdout);
	while (!stop_requested)
		pause();
	LOG_INFO("shutting down");
	http_stop(srv);
	scheduler_stop();
	metrics_http_stop();
	audit_close(); /* seals the current log file */
	secrets_shutdown();
	sigv4_thread_cleanup(); /* the main thread's signing keys (no thread-exit destructor) */
	kms_shutdown();
	storage_close(st);
	keystore_close();
	config_release();
	kbuf_release(&msg);
	return 0;
}

/* Hardening: `kinko check`, the offline integrity check of a data folder. */
struct check_walk {
	unsigned keys;
	unsigned bad;
};

static k_status check_key(void *arg, const char *id, struct kslice doc, int64_t version)
{
	struct check_walk *w = arg;
	const char *ns = storage_list_ns();
	json_error_t err;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, &err);
	struct kms_key *k = NULL;
	k_status rc = j ? kms_key_from_doc(ns ? ns : "", j, version, &k) : K_E_INTERNAL;
	w->keys++;
	if (rc != K_OK) {
		w->bad++;
		fprintf(stderr, "kinko check: key %s in %s: %s\n", id, ns ? ns : "?",
			j ? "its material does not unwrap" : "its record is not JSON");
	}
	if (k != NULL)
		kms_key_unref(k);
	json_decref(j);
	return K_OK;
}

/*
 * Opens the store read-write (SQLite replays its WAL), runs the backend's
 * integrity check, and, when the root key can be read, unwraps every key's
 * material, so a torn or corrupted record shows. Exit 0 only if all pass.
 */
static int check_store(int argc, char **argv)
{
	const char *data = NULL, *root_key = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
			data = argv[++i];
		else if (strcmp(argv[i], "--root-key") == 0 && i + 1 < argc)
			root_key = argv[++i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if (data == NULL) {
		usage(stderr);
		return 2;
	}
	char db[1024], rk[1024];
	snprintf(db, sizeof db, "%s/kinko.db", data);
	snprintf(rk, sizeof rk, "%s", root_key ? root_key : "");
	if (root_key == NULL)
		snprintf(rk, sizeof rk, "%s/root.key", data);
	if (access(db, F_OK) != 0) {
		fprintf(stderr, "kinko check: no store in %s\n", data);
		return 1;
	}
	struct storage *st = NULL;
	if (storage_sqlite_open(data, &st) != K_OK) {
		fprintf(stderr, "kinko check: cannot open the store in %s\n", data);
		return 1;
	}
	int ret = 0;
	k_status rc = storage_check(st);
	if (rc != K_OK) {
		fprintf(stderr, "kinko check: integrity check failed: %s\n", k_status_name(rc));
		ret = 1;
	}
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	struct check_walk w = {0, 0};
	bool unwrap = ret == 0 && access(rk, R_OK) == 0 && keystore_open_file(rk, false, &msg) == K_OK;
	if (unwrap) {
		kms_init(st);
		if (storage_list(st, "key", NULL, NULL, NULL, 0, check_key, &w) != K_OK) {
			fprintf(stderr, "kinko check: cannot list the keys\n");
			ret = 1;
		}
		if (w.bad > 0)
			ret = 1;
		kms_shutdown();
		keystore_close();
	}
	storage_close(st);
	kbuf_release(&msg);
	if (ret == 0)
		printf("kinko check: store sound; %u keys%s\n", w.keys,
		       unwrap ? ", all key material unwraps" : " (root key not read)");
	return ret;
}

/* Audit (issue 8): `kinko audit verify DIR [--public-key FILE]`. */
static int audit_command(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[0], "verify") != 0) {
		usage(stderr);
		return 2;
	}
	const char *pub = NULL;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--public-key") == 0 && i + 1 < argc) {
			pub = argv[++i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	long n = audit_verify_dir(argv[1], pub, stdout);
	return n == 0 ? 0 : n < 0 ? 2 : 1;
}

/* Audit (issue 8): `kinko usage`, the usage and cost report. */
static int usage_command(int argc, char **argv)
{
	struct audit_usage_options o;
	memset(&o, 0, sizeof o);
	o.to = kclock_now() + 1;
	o.from = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--print-prices") == 0) {
			audit_usage_print_prices(stdout);
			return 0;
		} else if (strcmp(a, "--json") == 0) {
			o.json = true;
		} else if (strcmp(a, "--audit-dir") == 0 && next) {
			o.dir = next;
			i++;
		} else if (strcmp(a, "--prices") == 0 && next) {
			o.prices = next;
			i++;
		} else if ((strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0) && next) {
			int64_t t;
			if (!audit_parse_iso8601(next, &t)) {
				fprintf(stderr, "kinko usage: %s wants a time like 2025-01-31T00:00:00Z\n", a);
				return 2;
			}
			if (strcmp(a, "--from") == 0)
				o.from = t;
			else
				o.to = t;
			i++;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (o.dir == NULL) {
		usage(stderr);
		return 2;
	}
	return audit_usage_report(&o, stdout);
}

int main(int argc, char **argv)
{
	harden_process();
	kjson_init();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "serve") == 0)
		return serve(argc - 2, argv + 2);
	if (strcmp(argv[1], "check") == 0)
		return check_store(argc - 2, argv + 2);
	if (strcmp(argv[1], "audit") == 0)
		return audit_command(argc - 2, argv + 2);
	if (strcmp(argv[1], "usage") == 0)
		return usage_command(argc - 2, argv + 2);
	if (strcmp(argv[1], "policy") == 0) /* authorization: the policy simulator */
		return authz_simulate_command(argc - 2, argv + 2);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("kinko %s\n", KINKO_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
