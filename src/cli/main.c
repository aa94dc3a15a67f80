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
#include "config/config.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "http/server.h"
#include "keystore/keystore.h"
#include "kms/kms.h"
#include "storage/storage.h"
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
		"       kinko version\n"
		"\n"
		"  --dev         no configuration needed: account 000000000000, access key\n"
		"                \"test\", secret \"test\", data in ./kinko-data\n"
		"  --test-mode   enables the test clock and reset endpoints (never in production)\n");
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
	struct storage *st = NULL;
	if (storage_sqlite_open(cfg.data_dir, &st) != K_OK) {
		fprintf(stderr, "kinko: cannot open the store in %s\n", cfg.data_dir);
		return 1;
	}
	kms_init(st);
	kms_register();

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct http_options ho = {
		.host = cfg.listen_host,
		.port = cfg.listen_port,
		.threads = cfg.threads,
		.max_connections = cfg.max_connections,
		.idle_timeout_s = cfg.idle_timeout_s,
	};
	struct http_server *srv = NULL;
	unsigned port = 0;
	if (http_start(&ho, &srv, &port) != K_OK) {
		fprintf(stderr, "kinko: cannot listen on %s:%u\n", cfg.listen_host, cfg.listen_port);
		return 1;
	}
	bool v6 = strchr(cfg.listen_host, ':') != NULL;
	printf("kinko %s listening on http://%s%s%s:%u%s\n", KINKO_VERSION, v6 ? "[" : "",
	       cfg.listen_host, v6 ? "]" : "", port,
	       cfg.dev ? " (dev mode: access key test, secret test)" : "");
	fflush(stdout);
	while (!stop_requested)
		pause();
	LOG_INFO("shutting down");
	http_stop(srv);
	kms_shutdown();
	storage_close(st);
	keystore_close();
	config_release();
	kbuf_release(&msg);
	return 0;
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
