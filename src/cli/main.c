/*
 * main.c — the kinko command: finds the command in the usage table
 * (usage.c), checks its flags there, and hands the rest to it (serve.c,
 * simulate.c, backup.c, store.c, and the small commands kept here: ops,
 * check, audit verify, usage, version).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/pipeline.h"
#include "audit/audit.h"
#include "cli/peer.h"
#include "cli/audit_prune.h"
#include "cli/backup.h"
#include "cli/status.h"
#include "cli/serve.h"
#include "cli/simulate.h"
#include "cli/startup.h"
#include "cli/store.h"
#include "cli/usage.h"
#include "cli/xks_check.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "keystore/keystore.h"
#include "kms/kms.h"
#include "storage/storage.h"
#include "core/banned.h"

/* No core dumps: a dump of this process would hold key material. */
static void harden_process(void)
{
	struct rlimit rl = {0, 0};
	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* A command's own usage on stderr, after a message saying what is missing. */
static void command_usage_err(const char *name, const char *why)
{
	const struct cli_command *c = cli_command_find(name, NULL, NULL);
	if (why != NULL)
		fprintf(stderr, "kinko %s: %s\n\n", name, why);
	if (c != NULL)
		cli_command_usage(c, stderr);
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
	kbuf_init(&msg, KBUF_NOTE_MAX);
	if (k_failed(cli_register_tables(NULL, true, &msg))) {
		fprintf(stderr, "kinko: %s\n", kbuf_cstr(&msg));
		kbuf_release(&msg);
		return 1;
	}
	kbuf_release(&msg);
	json_t *tables = api_tables_json();
	if (as_json) {
		char *text =
			tables ? json_dumps(tables, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
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

/* Hardening: `kinko check`, the offline integrity check of a data folder. */
struct check_walk {
	unsigned keys;
	unsigned bad;
};

static K_MUST_CHECK k_status check_key(void *arg, const char *ns, const char *id, struct kslice doc,
				       int64_t version)
{
	struct check_walk *w = arg;
	json_error_t err;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, &err);
	struct kms_key *k = NULL;
	k_status rc = j ? kms_key_from_doc(ns ? ns : "", j, version, &k) : K_E_INTERNAL;
	w->keys++;
	if (k_failed(rc)) {
		w->bad++;
		fprintf(stderr, "kinko check: key %s in %s: %s\n", id, ns ? ns : "?",
			j ? "its material does not unwrap" : "its record is not JSON");
	}
	if (k != NULL)
		kms_key_unref(k);
	json_decref(j);
	return K_OK;
}

/* `kinko check`'s options; false (after the usage) if they are wrong. */
static bool check_options(int argc, char **argv, const char **data, const char **root_key,
			  const char **store_url)
{
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
			*data = argv[++i];
		else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
			*store_url = argv[++i];
		else if (strcmp(argv[i], "--root-key") == 0 && i + 1 < argc)
			*root_key = argv[++i];
		else {
			command_usage_err("check", NULL);
			return false;
		}
	}
	if (*data == NULL) {
		command_usage_err("check", "give the data folder: --data DIR");
		return false;
	}
	return true;
}

/*
 * With the root key open: attaches the KMS caches, checks the root key
 * against the store's key check value (*kcv_note says how), and unwraps
 * every key's material (counted in w). Returns 0 if all pass, else 1.
 */
static int check_material(struct storage *st, const char *rk, const char *data, struct kbuf *msg,
			  struct check_walk *w, const char **kcv_note)
{
	/* A root key that is not the store's is named as such, not as broken keys. */
	if (k_failed(kms_init(st))) {
		fprintf(stderr, "kinko check: cannot attach the KMS caches to the store\n");
		return 1;
	}
	k_status kcv = startup_root_key_matches(st, rk, data, false, msg);
	*kcv_note = "; the root key matches the store's key check value";
	if (k_is(kcv, K_E_NOT_FOUND)) {
		*kcv_note = " (no key check value recorded yet: serve records one)";
	} else if (k_failed(kcv)) {
		fprintf(stderr, "kinko check: %s\n", kbuf_cstr(msg));
		return 1;
	}
	if (k_failed(storage_list(st, "key", NULL, NULL, NULL, 0, check_key, w))) {
		fprintf(stderr, "kinko check: cannot list the keys\n");
		return 1;
	}
	return w->bad > 0 ? 1 : 0;
}

/*
 * Opens the store read-write (SQLite replays its WAL), runs the backend's
 * integrity check, and, when the root key can be read, unwraps every key's
 * material, so a torn or corrupted record shows. Exit 0 only if all pass.
 */
static int check_store(int argc, char **argv)
{
	const char *data = NULL, *root_key = NULL, *store_url = NULL;
	if (!check_options(argc, argv, &data, &root_key, &store_url))
		return 2;
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
	kbuf_init(&msg, KBUF_NOTE_MAX);
	struct storage *st = NULL;
	if (k_failed(storage_open(url, &st, &msg))) {
		fprintf(stderr, "kinko check: %s\n", kbuf_cstr(&msg));
		kbuf_release(&msg);
		return 1;
	}
	int ret = 0;
	k_status rc = storage_check(st);
	if (k_failed(rc)) {
		fprintf(stderr, "kinko check: integrity check failed: %s\n", k_status_name(rc));
		ret = 1;
	}
	struct check_walk w = {0, 0};
	bool unwrap =
		ret == 0 && access(rk, R_OK) == 0 && k_ok(keystore_open_file(rk, false, &msg));
	const char *kcv_note = "";
	if (unwrap) {
		ret = check_material(st, rk, data, &msg, &w, &kcv_note);
		kms_shutdown();
		keystore_close();
	}
	storage_close(st);
	kbuf_release(&msg);
	if (ret == 0)
		printf("kinko check: store sound; %u keys%s%s\n", w.keys,
		       unwrap ? ", all key material unwraps" : " (root key not read)", kcv_note);
	return ret;
}

/*
 * `kinko audit verify DIR... [--public-key FILE] [--witness FILE] [--now TIME]`.
 * Several folders are the trails of the nodes of a cluster (each node its
 * own chain, docs/CLUSTER.md): each is verified on its own, then the set
 * (no node id twice); --public-key and --witness go with one folder only.
 * Exit status: 0 intact, 1 problems named, 2 unreadable, 3 intact but a
 * trail ends before --now (default: the current time), which a stop and
 * a removal of the newest records both look like without a witness.
 */
#define MAX_AUDIT_DIRS 64

/* The set of node trails: a node id in two folders is a problem. */
static long check_node_set(char nodes[][72], const char *const *dirs, size_t n)
{
	long problems = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (nodes[i][0] != 0 && strcmp(nodes[i], nodes[j]) == 0) {
				printf("DUPLICATE node %s: the trails in %s and %s name the same "
				       "node\n",
				       nodes[i], dirs[i], dirs[j]);
				problems++;
			}
	return problems;
}

static int audit_command(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[0], "verify") != 0 || argv[1][0] == '-') {
		command_usage_err("audit verify", "give the audit folder: kinko audit verify DIR");
		return 2;
	}
	struct audit_verify_options o = {.dir = NULL};
	const char *dirs[MAX_AUDIT_DIRS];
	size_t n_dirs = 0;
	for (int i = 1; i < argc; i++) {
		int64_t t = 0;
		if (strcmp(argv[i], "--public-key") == 0 && i + 1 < argc) {
			o.public_key = argv[++i];
		} else if (strcmp(argv[i], "--witness") == 0 && i + 1 < argc) {
			o.witness = argv[++i];
		} else if (strcmp(argv[i], "--archive") == 0 && i + 1 < argc) {
			o.archive = argv[++i]; /* pruned files, verified with the folder as one */
		} else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc &&
			   audit_parse_iso8601(argv[i + 1], &t)) {
			o.now_ms = t * 1000;
			i++;
		} else if (strncmp(argv[i], "--", 2) != 0 && n_dirs < MAX_AUDIT_DIRS) {
			dirs[n_dirs++] = argv[i];
		} else {
			command_usage_err("audit verify", NULL);
			return 2;
		}
	}
	if (n_dirs == 0 ||
	    (n_dirs > 1 && (o.public_key != NULL || o.witness != NULL || o.archive != NULL))) {
		if (n_dirs > 1)
			fprintf(stderr, "kinko audit verify: --public-key, --witness and --archive "
					"go with one folder\n");
		cli_usage(stderr);
		return 2;
	}
	char nodes[MAX_AUDIT_DIRS][72];
	long problems = 0, warnings = 0;
	bool unreadable = false;
	for (size_t d = 0; d < n_dirs; d++) {
		o.dir = dirs[d];
		o.node_out = nodes[d];
		nodes[d][0] = 0;
		long w = 0;
		long n = audit_verify(&o, stdout, &w);
		unreadable = unreadable || n < 0;
		problems += n > 0 ? n : 0;
		warnings += w;
	}
	if (n_dirs > 1) {
		long dup = check_node_set(nodes, dirs, n_dirs);
		problems += dup;
		if (!unreadable && problems == 0)
			printf("OK: %zu node trails, each intact\n", n_dirs);
		else if (dup > 0 || problems > 0)
			printf("FAILED: %ld problems across %zu node trails\n", problems, n_dirs);
	}
	return unreadable ? 2 : problems > 0 ? 1 : warnings > 0 ? 3 : 0;
}

/*
 * `kinko usage`, the usage and cost report of an audit trail: --audit-dir,
 * else the data folder's trail (DATA/audit, DATA being --data or the
 * server's default ./kinko-data), named on stderr so that the report on
 * stdout stays clean for --json.
 */
static int usage_command(int argc, char **argv)
{
	const char *data = "kinko-data";
	char dir[4096];
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
		} else if (strcmp(a, "--data") == 0 && next) {
			data = next;
			i++;
		} else if (strcmp(a, "--prices") == 0 && next) {
			o.prices = next;
			i++;
		} else if ((strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0) && next) {
			int64_t t;
			if (!audit_parse_iso8601(next, &t)) {
				fprintf(stderr,
					"kinko usage: %s wants a time like 2025-01-31T00:00:00Z\n",
					a);
				return 2;
			}
			if (strcmp(a, "--from") == 0)
				o.from = t;
			else
				o.to = t;
			i++;
		} else {
			command_usage_err("usage", NULL);
			return 2;
		}
	}
	if (o.dir == NULL) {
		snprintf(dir, sizeof dir, "%s/audit", data);
		o.dir = dir;
	}
	fprintf(stderr, "kinko usage: reading the audit trail in %s\n", o.dir);
	return audit_usage_report(&o, stdout);
}

/* Runs a command, given the words after "kinko" (the subcommand word included). */
struct command_run {
	const char *name;
	int (*run)(int argc, char **argv);
};

static int version_command(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("kinko %s\n", KINKO_VERSION);
	return 0;
}

/* `kinko audit prune ...`: retention (cli/audit_prune.h). */
static int audit_prune_command(int argc, char **argv)
{
	return cli_audit_prune(argc - 1, argv + 1);
}

/* `kinko xks check ...`: an XKS proxy's full check (cli/xks_check.h). */
static int xks_check_command(int argc, char **argv)
{
	return cli_xks_check(argc - 1, argv + 1);
}

static const struct command_run runs[] = {
	{"serve", cli_serve},
	{"check", check_store},
	{"store copy", cli_store},
	{"backup", cli_backup},
	{"restore", cli_restore},
	{"audit verify", audit_command},
	{"audit prune", audit_prune_command},
	{"status", cli_status},
	{"usage", usage_command},
	{"ops", ops_command},
	{"policy simulate", cli_policy_simulate},
	{"xks check", xks_check_command},
	{"peer wrapping-key", cli_peer_wrapping_key},
	{"version", version_command},
};

/*
 * Finds the command, answers --help from its usage, checks its flags
 * against the usage table (unknown options and missing values are said
 * there, with the nearest flag), then runs it. serve parses its own flags
 * (serve.c), so only its --help is answered here.
 */
static int dispatch(int argc, char **argv)
{
	int words = 1;
	const struct cli_command *c = cli_command_find(argv[1], argc > 2 ? argv[2] : NULL, &words);
	if (c == NULL) {
		cli_unknown_command(argv[1]);
		return 2;
	}
	if (strchr(c->name, ' ') != NULL && words == 1) { /* "kinko store" without "copy" */
		if (cli_wants_help(argc - 2, argv + 2)) {
			cli_command_usage(c, stdout);
			return 0;
		}
		fprintf(stderr, "kinko %s: give the subcommand (kinko %s)\n\n", argv[1], c->name);
		cli_command_usage(c, stderr);
		return 2;
	}
	int first = 1 + words;
	bool serve = strcmp(c->name, "serve") == 0;
	if (serve && cli_wants_help(argc - first, argv + first)) {
		cli_command_usage(c, stdout);
		return 0;
	}
	int status = serve ? -1 : cli_args_check(c, argc - first, argv + first);
	if (status >= 0)
		return status;
	for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++)
		if (strcmp(runs[i].name, c->name) == 0)
			return runs[i].run(argc - 2, argv + 2);
	cli_usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	harden_process();
	kjson_init();
	if (argc < 2) {
		cli_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)
		return cli_help(argc - 2, argv + 2);
	if (strcmp(argv[1], "--version") == 0)
		return version_command(argc - 2, argv + 2);
	return dispatch(argc, argv);
}
