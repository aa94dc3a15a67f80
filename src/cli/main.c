/*
 * main.c — the kinko command: `kinko serve`, `kinko version`.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
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
#include "cli/simulate.h"
#include "cli/startup.h"
#include "cloudtrail/cloudtrail.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "crypto/x509.h"
#include "http/server.h"
#include "keystore/keystore.h"
#include "kms/kms.h"
#include "metrics/metrics.h"
#include "quota/quota.h"
#include "scheduler/scheduler.h"
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
		if (klog_reopen() == K_OK)
			LOG_INFO("SIGHUP: log file reopened");
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kinko serve [--dev] [--listen HOST:PORT] [--data DIR] [--store URL] [--config FILE]\n"
		"                   [--root-key FILE] [--threads N] [--test-mode] [--log-level LEVEL]\n"
		"                   [--tls-cert FILE --tls-key FILE | --tls-self-signed]\n"
		"                   [--rotation-function ARN=PATH]... [--log-file FILE]\n"
		"                   [--allow-root-key-in-data]\n"
		"       kinko check --data DIR [--store URL] [--root-key FILE]\n"
		"                   [--audit-dir DIR | --no-audit] [--audit-sync fsync|write]\n"
		"                   [--audit-max-file-bytes N] [--audit-rotate-seconds N]\n"
		"                   [--audit-digest-seconds N] [--audit-witness FILE] [--audit-witness-syslog]\n"
		"                   [--metrics-listen HOST:PORT] [--quotas aws|off] [--quota NAME=RATE]...\n"
		"       kinko audit verify DIR [--public-key FILE] [--witness FILE] [--now TIME]\n"
		"       kinko usage --audit-dir DIR [--from TIME] [--to TIME] [--prices FILE] [--json]\n"
		"       kinko usage --print-prices\n"
		"       kinko ops [--json]   (every operation of every table: its row)\n"
		"       kinko policy simulate --config FILE --principal ARN --action kms:ACTION --key KEY_ARN\n"
		"       kinko version\n"
		"\n"
		"  --dev         no configuration needed: account 000000000000, access key\n"
		"                \"test\", secret \"test\", data in ./kinko-data\n"
		"  --test-mode   enables the test clock and reset endpoints (never in production);\n"
		"                only with --dev, or the configuration's\n"
		"                \"" CONFIG_TEST_MODE_SWITCH "\": true\n"
		"  --store URL   where keys and secrets are stored: sqlite:PATH (a folder holding\n"
		"                kinko.db, or a file ending in .db; a bare path means the same);\n"
		"                default: the SQLite store in the data folder\n"
		"  --audit-dir   the audit log folder (default DATA/audit); --no-audit turns it off\n"
		"  --audit-sync  write: a call waits until its event is in the audit ring, which\n"
		"                a kill does not lose (default; drained into the log every 10 ms,\n"
		"                fdatasync every 200 ms); fsync: until it is on disk\n"
		"  --audit-digest-seconds  a signed period digest naming the newest record\n"
		"                this often, even with no call (default 60)\n"
		"  --audit-witness FILE    also append each period digest to FILE, kept outside\n"
		"                the data folder (--audit-witness-syslog: to syslog too)\n"
		"  --metrics-listen  serve Prometheus /metrics on this address (off by default)\n"
		"  --quotas      AWS's request quotas (default, except in --dev) or off;\n"
		"                --quota symmetric=100 or --quota CreateKey=5 overrides one rate\n"
		"  --tls-cert, --tls-key   serve HTTPS with this PEM certificate and key\n"
		"  --tls-self-signed       serve HTTPS with a self-signed certificate made (once)\n"
		"                in the data folder as tls-cert.pem / tls-key.pem (development)\n"
		"  --log-file    write the server log to FILE instead of standard error;\n"
		"                SIGHUP reopens it (for logrotate)\n"
		"  --allow-root-key-in-data  accept a root key file inside the data folder\n"
		"                outside dev mode (a backup of the folder then holds it)\n"
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

#define MAX_QUOTA_SPECS 64

/*
 * Registers every service's operation table (the API surface as data);
 * a table with an incomplete row is refused and msg names the row.
 */
static k_status register_tables(struct storage *st, bool test_mode, struct kbuf *msg)
{
	GUARD(kms_register(msg));
	GUARD(sts_register(msg)); /* authorization: STS on the same endpoint */
	if (test_mode)
		GUARD(testmode_register(st, msg));
	GUARD(secrets_register(msg)); /* Secrets Manager on the same endpoint */
	GUARD(cloudtrail_register(msg));
	return K_OK;
}

/*
 * `kinko ops [--json]`: every operation of every table, as the server
 * registers them (with the test operations), so tests and people can walk
 * the API surface without reading the source.
 */
static int ops_command(int argc, char **argv)
{
	bool as_json = argc >= 1 && strcmp(argv[0], "--json") == 0;
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	if (register_tables(NULL, true, &msg) != K_OK) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&msg));
		kbuf_release(&msg);
		return 1;
	}
	kbuf_release(&msg);
	json_t *tables = api_tables_json();
	if (as_json) {
		char *text = tables ? json_dumps(tables, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
		if (text != NULL)
			printf("%s\n", text);
		kjson_free(text);
	} else {
		size_t i;
		json_t *svc;
		json_array_foreach(tables, i, svc)
		{
			size_t j;
			json_t *op;
			json_array_foreach(json_object_get(svc, "operations"), j, op)
			{
				printf("%-16s %-40s %-14s %-16s %s\n",
				       json_string_value(json_object_get(svc, "signingName")),
				       json_string_value(json_object_get(op, "name")),
				       json_string_value(json_object_get(op, "resource")),
				       json_string_value(json_object_get(op, "state")),
				       json_string_value(json_object_get(op, "quotaClass")));
			}
		}
	}
	json_decref(tables);
	return 0;
}

static int serve(int argc, char **argv)
{
	struct config cfg;
	config_defaults(&cfg);
	const char *config_path = NULL, *listen = NULL, *data = NULL, *root_key = NULL;
	const char *tls_cert = NULL, *tls_key = NULL, *log_file = NULL, *store_url = NULL;
	bool tls_self_signed = false, allow_root_key_in_data = false;
	sigset_t server_signals;
	block_server_signals(&server_signals);
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
	const char *quota_specs[MAX_QUOTA_SPECS];
	size_t n_quota_specs = 0;
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
		} else if (strcmp(a, "--store") == 0 && next) {
			store_url = next;
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
		} else if (strcmp(a, "--log-file") == 0 && next) {
			log_file = next;
			i++;
		} else if (strcmp(a, "--allow-root-key-in-data") == 0) {
			allow_root_key_in_data = true;
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
		} else if (strcmp(a, "--audit-digest-seconds") == 0 && next) {
			long long sec = strtoll(next, NULL, 10);
			if (sec < 1 || sec > 86400) {
				fprintf(stderr, "kinko: --audit-digest-seconds takes 1 to 86400\n");
				return 2;
			}
			audit_opts.period_ms = sec * 1000;
			i++;
		} else if (strcmp(a, "--audit-witness") == 0 && next) {
			audit_opts.witness_file = next;
			i++;
		} else if (strcmp(a, "--audit-witness-syslog") == 0) {
			audit_opts.witness_syslog = true;
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
			/* Checked against the operation tables once they are registered. */
			if (n_quota_specs == MAX_QUOTA_SPECS) {
				fprintf(stderr, "kinko: too many --quota\n");
				return 2;
			}
			quota_specs[n_quota_specs++] = next;
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
	if (log_file != NULL && klog_open_file(log_file, &msg) != K_OK) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&msg));
		return 1;
	}
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
	if (store_url != NULL)
		snprintf(cfg.store_url, sizeof cfg.store_url, "%s", store_url);
	if (cfg.store_url[0] == 0)
		snprintf(cfg.store_url, sizeof cfg.store_url, "sqlite:%s", cfg.data_dir);
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
	/*
	 * Test mode lets callers empty their account and move the clock
	 * (expiring sessions, carrying out pending key deletions): only with
	 * --dev, or with a configuration that says it in so many words.
	 */
	if (cfg.test_mode && !cfg.dev && !cfg.test_mode_outside_dev) {
		fprintf(stderr,
			"kinko: --test-mode is for development servers: give --dev, or set \"%s\": true "
			"in the configuration if this server's data may be lost\n",
			CONFIG_TEST_MODE_SWITCH);
		return 2;
	}
	if (cfg.test_mode && !cfg.dev)
		LOG_WARN("test mode outside dev mode: principals allowed kinko-test:* can empty their "
			 "account and move the server clock");
	if (cfg.test_mode)
		kclock_enable_test_mode();

	if (mkdir(cfg.data_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "kinko: cannot create data folder %s: %s\n", cfg.data_dir, strerror(errno));
		return 1;
	}
	/* Nothing in the data folder or the audit trail changes before these pass (cli/startup.h). */
	int data_lock = -1, audit_lock = -1;
	if (startup_lock_dir(cfg.data_dir, &data_lock, &msg) != K_OK) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	if (!no_audit && audit_dir_arg != NULL) {
		if (mkdir(audit_dir_arg, 0700) != 0 && errno != EEXIST) {
			fprintf(stderr, "kinko: audit: cannot create %s: %s\n", audit_dir_arg,
				strerror(errno));
			return 1;
		}
		if (startup_lock_dir(audit_dir_arg, &audit_lock, &msg) != K_OK) {
			fprintf(stderr, "kinko: audit: %s\n", kbuf_cstr(&msg));
			return 1;
		}
	}
	if (startup_check_listen(cfg.listen_host, cfg.listen_port, &msg) != K_OK) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	if (!cfg.dev && !cfg.root_key_in_data_ok && !allow_root_key_in_data &&
	    startup_root_key_outside(cfg.root_key_file, cfg.data_dir, &msg) != K_OK) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	if (keystore_open_file(cfg.root_key_file, cfg.dev, &msg) != K_OK) {
		fprintf(stderr, "kinko: root key: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	if (tls_self_signed &&
	    crypto_x509_self_signed(cfg.tls_cert_file, cfg.tls_key_file, &msg) != K_OK) {
		fprintf(stderr, "kinko: TLS: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	/*
	 * A SQLite store outside the data folder is locked too: two servers on
	 * one SQLite store would never see each other's writes in their caches.
	 */
	int store_lock = -1;
	char store_dir[4608];
	if (storage_local_dir(cfg.store_url, store_dir, sizeof store_dir) == K_OK &&
	    (mkdir(store_dir, 0700) == 0 || errno == EEXIST) &&
	    !startup_same_dir(store_dir, cfg.data_dir) &&
	    startup_lock_dir(store_dir, &store_lock, &msg) != K_OK) {
		fprintf(stderr, "kinko: store: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	/* The store is handed to each service that needs it (kms/store.h). */
	struct storage *st = NULL;
	if (storage_open(cfg.store_url, &st, &msg) != K_OK) {
		fprintf(stderr, "kinko: store: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	if (kms_init(st) != K_OK) {
		fprintf(stderr, "kinko: cannot attach the KMS caches to the store\n");
		return 1;
	}
	if (startup_root_key_matches(st, cfg.root_key_file, cfg.data_dir, true, &msg) != K_OK) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	/* Every service's operation table; an incomplete row stops kinko here. */
	if (register_tables(st, cfg.test_mode, &msg) != K_OK) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	for (size_t q = 0; q < n_quota_specs; q++) {
		if (quota_set(quota_specs[q], api_quota_name_known, &qmsg) != K_OK) {
			fprintf(stderr, "kinko: %s\n", kbuf_cstr(&qmsg));
			return 2;
		}
	}
	/* Lifecycle: scheduled deletions and rotations; test mode only with the flag. */
	if (kms_lifecycle_init() != K_OK) {
		fprintf(stderr, "kinko: cannot register the scheduled key work\n");
		return 1;
	}
	/* Secrets Manager on the same endpoint, with its scheduled work. */
	if (secrets_init(st) != K_OK) {
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
	metrics_register_store_gauges(st);
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
		/* The config file's period and witness, unless a flag said otherwise. */
		if (audit_opts.period_ms == 0)
			audit_opts.period_ms = (int64_t)cfg.audit_digest_seconds * 1000;
		if (audit_opts.witness_file == NULL && cfg.audit_witness_file[0] != 0)
			audit_opts.witness_file = cfg.audit_witness_file;
		audit_opts.witness_syslog = audit_opts.witness_syslog || cfg.audit_witness_syslog;
		if (audit_open(&audit_opts, &msg) != K_OK) {
			fprintf(stderr, "kinko: audit: %s\n", kbuf_cstr(&msg));
			return 1;
		}
	}

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
	wait_for_stop(&server_signals);
	/*
	 * No new request, then no new scheduled work, then no rotation step
	 * (a running function is ended), and only then is the audit file
	 * sealed, so that nothing is logged after the seal.
	 */
	LOG_INFO("shutting down");
	start_shutdown_watchdog();
	http_stop(srv);
	scheduler_stop();
	metrics_http_stop();
	if (!secrets_shutdown()) {
		/* A rotation still uses the store and the audit trail: the next start seals the file. */
		LOG_ERROR("exiting without sealing the audit file; the next start seals it");
		_exit(1);
	}
	audit_close(); /* seals the current log file */
	sigv4_thread_cleanup(); /* the main thread's signing keys (no thread-exit destructor) */
	kms_shutdown();
	storage_close(st);
	keystore_close();
	config_release();
	kbuf_release(&msg);
	startup_unlock_dir(store_lock);
	startup_unlock_dir(audit_lock);
	startup_unlock_dir(data_lock);
	LOG_INFO("stopped");
	return 0;
}

/* Hardening: `kinko check`, the offline integrity check of a data folder. */
struct check_walk {
	unsigned keys;
	unsigned bad;
};

static k_status check_key(void *arg, const char *ns, const char *id, struct kslice doc,
			 int64_t version)
{
	struct check_walk *w = arg;
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
	const char *data = NULL, *root_key = NULL, *store_url = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
			data = argv[++i];
		else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
			store_url = argv[++i];
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
	char db[1024], rk[1024], url[1100];
	snprintf(db, sizeof db, "%s/kinko.db", data);
	snprintf(rk, sizeof rk, "%s", root_key ? root_key : "");
	if (root_key == NULL)
		snprintf(rk, sizeof rk, "%s/root.key", data);
	/* The data folder's own store must exist: checking must not create one. */
	if (store_url == NULL && access(db, F_OK) != 0) {
		fprintf(stderr, "kinko check: no store in %s\n", data);
		return 1;
	}
	snprintf(url, sizeof url, "%s", store_url ? store_url : "");
	if (store_url == NULL)
		snprintf(url, sizeof url, "sqlite:%s", data);
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	struct storage *st = NULL;
	if (storage_open(url, &st, &msg) != K_OK) {
		fprintf(stderr, "kinko check: %s\n", kbuf_cstr(&msg));
		kbuf_release(&msg);
		return 1;
	}
	int ret = 0;
	k_status rc = storage_check(st);
	if (rc != K_OK) {
		fprintf(stderr, "kinko check: integrity check failed: %s\n", k_status_name(rc));
		ret = 1;
	}
	struct check_walk w = {0, 0};
	bool unwrap = ret == 0 && access(rk, R_OK) == 0 && keystore_open_file(rk, false, &msg) == K_OK;
	const char *kcv_note = "";
	/* A root key that is not the store's is named as such, not as broken keys. */
	if (unwrap && kms_init(st) != K_OK) {
		fprintf(stderr, "kinko check: cannot attach the KMS caches to the store\n");
		ret = 1;
	}
	if (unwrap && ret == 0) {
		k_status kcv = startup_root_key_matches(st, rk, data, false, &msg);
		kcv_note = "; the root key matches the store's key check value";
		if (kcv == K_E_NOT_FOUND) {
			kcv_note = " (no key check value recorded yet: serve records one)";
		} else if (kcv != K_OK) {
			fprintf(stderr, "kinko check: %s\n", kbuf_cstr(&msg));
			ret = 1;
		}
	}
	if (unwrap && ret == 0) {
		if (storage_list(st, "key", NULL, NULL, NULL, 0, check_key, &w) != K_OK) {
			fprintf(stderr, "kinko check: cannot list the keys\n");
			ret = 1;
		}
		if (w.bad > 0)
			ret = 1;
	}
	if (unwrap) {
		kms_shutdown();
		keystore_close();
	}
	storage_close(st);
	kbuf_release(&msg);
	if (ret == 0)
		printf("kinko check: store sound; %u keys%s%s\n", w.keys,
		       unwrap ? ", all key material unwraps" : " (root key not read)",
		       kcv_note);
	return ret;
}

/*
 * `kinko audit verify DIR [--public-key FILE] [--witness FILE] [--now TIME]`.
 * Exit status: 0 intact, 1 problems named, 2 unreadable, 3 intact but the
 * trail ends before --now (default: the current time), which a stop and
 * a removal of the newest records both look like without a witness.
 */
static int audit_command(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[0], "verify") != 0) {
		usage(stderr);
		return 2;
	}
	struct audit_verify_options o = {.dir = argv[1]};
	for (int i = 2; i < argc; i++) {
		int64_t t = 0;
		if (strcmp(argv[i], "--public-key") == 0 && i + 1 < argc) {
			o.public_key = argv[++i];
		} else if (strcmp(argv[i], "--witness") == 0 && i + 1 < argc) {
			o.witness = argv[++i];
		} else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc &&
			   audit_parse_iso8601(argv[i + 1], &t)) {
			o.now_ms = t * 1000;
			i++;
		} else {
			usage(stderr);
			return 2;
		}
	}
	long warnings = 0;
	long n = audit_verify(&o, stdout, &warnings);
	return n < 0 ? 2 : n > 0 ? 1 : warnings > 0 ? 3 : 0;
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
	if (strcmp(argv[1], "ops") == 0)
		return ops_command(argc - 2, argv + 2);
	if (strcmp(argv[1], "serve") == 0)
		return serve(argc - 2, argv + 2);
	if (strcmp(argv[1], "check") == 0)
		return check_store(argc - 2, argv + 2);
	if (strcmp(argv[1], "audit") == 0)
		return audit_command(argc - 2, argv + 2);
	if (strcmp(argv[1], "usage") == 0)
		return usage_command(argc - 2, argv + 2);
	if (strcmp(argv[1], "policy") == 0) /* authorization: the policy simulator */
		return cli_policy_simulate(argc - 2, argv + 2);
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
