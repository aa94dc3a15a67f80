/*
 * usage.c — the kinko command's command list, each command's usage and
 * the checks of its flags (see usage.h). The table below is the one place
 * that lists the commands and their flags: the help output, the "did you
 * mean" suggestions and the option checks are all read from it.
 */
#include "cli/usage.h"

#include <stdint.h>
#include <string.h>

#include "config/config.h"
#include "core/distance.h"
#include "core/banned.h"

/* clang-format off */
static const struct cli_flag serve_flags[] = {
	{"--dev", false}, {"--listen", true}, {"--data", true}, {"--store", true},
	{"--config", true}, {"--seed", true}, {"--root-key", true}, {"--threads", true},
	{"--test-mode", false}, {"--log-level", true}, {"--log-file", true},
	{"--tls-cert", true}, {"--tls-key", true}, {"--tls-self-signed", false},
	{"--rotation-function", true}, {"--allow-root-key-in-data", false},
	{"--audit-dir", true}, {"--no-audit", false}, {"--audit-sync", true},
	{"--audit-max-file-bytes", true}, {"--audit-rotate-seconds", true},
	{"--audit-digest-seconds", true}, {"--audit-witness", true},
	{"--audit-index-seconds", true},
	{"--audit-witness-syslog", false}, {"--metrics-listen", true},
	{"--quotas", true}, {"--quota", true}, {"--node-id", true},
	{"--shared-store", false}, {"--log-format", true}, {"--xks-listen", true},
	{"--xks-client-ca", true}, {"--xks-proxy-ca", true}, {"--warm-keys", true},
	{NULL, false},
};
static const struct cli_flag check_flags[] = {
	{"--data", true}, {"--store", true}, {"--root-key", true}, {NULL, false},
};
static const struct cli_flag store_copy_flags[] = {
	{"--from", true}, {"--to", true}, {"--force", false}, {NULL, false},
};
static const struct cli_flag backup_flags[] = {
	{"--to", true}, {"--data", true}, {"--store", true}, {"--config", true},
	{"--audit-dir", true}, {NULL, false},
};
static const struct cli_flag restore_flags[] = {
	{"--from", true}, {"--data", true}, {"--root-key", true}, {NULL, false},
};
static const struct cli_flag audit_verify_flags[] = {
	{"--public-key", true}, {"--witness", true}, {"--now", true}, {"--archive", true},
	{NULL, false},
};
static const struct cli_flag audit_prune_flags[] = {
	{"--older-than", true}, {"--archive", true}, {NULL, false},
};
static const struct cli_flag status_flags[] = {
	{"--endpoint", true}, {"--metrics", true}, {NULL, false},
};
static const struct cli_flag usage_flags[] = {
	{"--audit-dir", true}, {"--data", true}, {"--from", true}, {"--to", true},
	{"--prices", true}, {"--json", false}, {"--print-prices", false}, {NULL, false},
};
static const struct cli_flag ops_flags[] = {
	{"--json", false}, {NULL, false},
};
static const struct cli_flag simulate_flags[] = {
	{"--config", true}, {"--data", true}, {"--store", true}, {"--principal", true},
	{"--action", true}, {"--key", true}, {"--key-policy", true}, {"--region", true},
	{"--secret", true},
	{"--context", true}, {"--value", true}, {NULL, false},
};
static const struct cli_flag peer_key_flags[] = {
	{"--data", true}, {"--store", true}, {"--root-key", true}, {NULL, false},
};
static const struct cli_flag xks_check_flags[] = {
	{"--endpoint", true}, {"--uri-path", true}, {"--access-key-id", true},
	{"--secret-file", true}, {"--ca-file", true}, {"--key-id", true}, {"--region", true},
	{"--timeout-ms", true}, {NULL, false},
};
static const struct cli_flag no_flags[] = {
	{NULL, false},
};
/* clang-format on */

static const struct cli_command commands[] = {
	{"serve", "run the server (KMS and Secrets Manager on one endpoint)",
	 "usage: kinko serve [--dev] [--listen HOST:PORT] [--data DIR] [--store URL] [--config "
	 "FILE]\n"
	 "                   [--seed FILE] [--root-key FILE] [--threads N] [--warm-keys N]\n"
	 "                   [--test-mode]\n"
	 "                   [--log-level debug|info|warn|error] [--log-file FILE]\n"
	 "                   [--tls-cert FILE --tls-key FILE | --tls-self-signed]\n"
	 "                   [--rotation-function ARN=PATH]... [--allow-root-key-in-data]\n"
	 "                   [--audit-dir DIR | --no-audit] [--audit-sync fsync|write]\n"
	 "                   [--audit-max-file-bytes N] [--audit-rotate-seconds N]\n"
	 "                   [--audit-digest-seconds N] [--audit-witness FILE] "
	 "[--audit-witness-syslog]\n"
	 "                   [--audit-index-seconds N]\n"
	 "                   [--metrics-listen HOST:PORT] [--quotas aws|off] [--quota "
	 "NAME=RATE]...\n"
	 "                   [--node-id ID] [--shared-store] [--log-format text|json]\n"
	 "                   [--xks-listen HOST:PORT [--xks-client-ca FILE]] [--xks-proxy-ca "
	 "FILE]\n"
	 "\n"
	 "  --dev         no configuration needed: account 000000000000, access key\n"
	 "                \"test\", secret \"test\", data in ./kinko-data\n"
	 "  --test-mode   enables the test clock and reset endpoints (never in production);\n"
	 "                only with --dev, or the configuration's\n"
	 "                \"" CONFIG_TEST_MODE_SWITCH "\": true\n"
	 "  --store URL   where keys and secrets are stored: sqlite:PATH (a folder holding\n"
	 "                kinko.db, or a file ending in .db; a bare path means the same)\n"
	 "                or postgresql://USER:PASSWORD@HOST:PORT/DATABASE (docs/CLUSTER.md);\n"
	 "                default: the SQLite store in the data folder\n"
	 "  --seed FILE   create the keys and secrets FILE lists at start (docs/OPERATIONS.md)\n"
	 "  --warm-keys N after listening, load the first N keys of the store into the key\n"
	 "                cache in the background (default 1000000; 0: each key on first use)\n"
	 "  --log-level   debug, info (default), warn or error\n"
	 "  --log-format  text (default) or json: every log line, the request lines too\n"
	 "  --audit-dir   the audit log folder (default DATA/audit); --no-audit turns it off\n"
	 "  --audit-sync  write: a call waits until its event is in the audit ring, which\n"
	 "                a kill does not lose (default; drained into the log every 10 ms,\n"
	 "                fdatasync every 200 ms); fsync: until it is on disk\n"
	 "  --audit-digest-seconds  a signed period digest naming the newest record\n"
	 "                this often, even with no call (default 60)\n"
	 "  --audit-index-seconds N the audit event index (LookupEvents, start-up) catches\n"
	 "                up with the log this often (default 1)\n"
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
	 "  --node-id ID  this node's id in a cluster (default: generated once, kept in\n"
	 "                DATA/node-id; docs/CLUSTER.md)\n"
	 "  --shared-store  let other kinko processes open the same SQLite store (a cluster\n"
	 "                on one machine, for tests; docs/CLUSTER.md)\n"
	 "  --xks-listen HOST:PORT  also serve the XKS proxy API (AWS KMS external key\n"
	 "                stores) on this address, over HTTPS with the TLS certificate;\n"
	 "                keys and credentials in the configuration's \"xks\" section\n"
	 "                (docs/KEYSTORES.md)\n"
	 "  --xks-client-ca FILE    mutual TLS on the XKS listener: clients must present a\n"
	 "                certificate issued by a CA of this PEM file\n"
	 "  --xks-proxy-ca FILE     the CAs (PEM) that kinko's XKS client verifies the\n"
	 "                proxies of EXTERNAL_KEY_STORE custom key stores with (default:\n"
	 "                the system's)\n",
	 serve_flags},
	{"check", "check a store's integrity and that every key's material unwraps",
	 "usage: kinko check --data DIR [--store URL] [--root-key FILE]\n"
	 "\n"
	 "Opens the store (default: the SQLite store in DIR) and runs its integrity check,\n"
	 "then unwraps every key's material when the root key (default DIR/root.key) is\n"
	 "readable. Exit 0 if sound, 1 if not.\n",
	 check_flags},
	{"store copy", "copy every record from one store to another",
	 "usage: kinko store copy --from URL --to URL [--force]\n"
	 "\n"
	 "  URL           sqlite:PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE\n"
	 "  --force       copy into a store that already holds records\n",
	 store_copy_flags},
	{"backup", "a consistent copy of the store and the audit trail, while serving",
	 "usage: kinko backup --to DIR [--data DIR] [--store URL] [--config FILE] [--audit-dir "
	 "DIR]\n"
	 "\n"
	 "Copies the store and the audit trail into DIR (never the root key).\n"
	 "Give the data folder with --data DIR or --config FILE.\n",
	 backup_flags},
	{"restore", "make a new data folder from a backup",
	 "usage: kinko restore --from DIR --data NEWDIR [--root-key FILE]\n", restore_flags},
	{"audit verify", "verify an audit trail's chain and signatures",
	 "usage: kinko audit verify DIR... [--public-key FILE] [--witness FILE] [--now TIME]\n"
	 "                          [--archive DIR]\n"
	 "\n"
	 "  --archive DIR  the files `kinko audit prune --archive` moved: verified with\n"
	 "                 DIR as one trail from its first record\n"
	 "Exit 0 intact, 1 problems named, 2 unreadable, 3 intact but the trail ends\n"
	 "before --now (default: the current time).\n",
	 audit_verify_flags},
	{"audit prune", "remove or archive sealed audit files older than N days",
	 "usage: kinko audit prune DIR --older-than DAYS [--archive DIR2]\n"
	 "\n"
	 "Moves (--archive) or deletes the oldest sealed files, never the newest sealed\n"
	 "one or the live one, after a signed checkpoint that keeps the rest verifiable\n"
	 "(docs/AUDIT.md, Retention).\n",
	 audit_prune_flags},
	{"status", "a running server's readiness, and a few of its metrics",
	 "usage: kinko status [--endpoint URL] [--metrics URL]\n"
	 "\n"
	 "  --endpoint URL  the server (default http://127.0.0.1:4599): its /ready answer\n"
	 "  --metrics URL   its /metrics: requests, errors, throttled calls, live nodes\n"
	 "Exit 0 ready, 1 not ready, 2 cannot connect.\n",
	 status_flags},
	{"usage", "the usage and cost report of an audit trail",
	 "usage: kinko usage [--audit-dir DIR | --data DIR] [--from TIME] [--to TIME]\n"
	 "                   [--prices FILE] [--json]\n"
	 "       kinko usage --print-prices\n"
	 "\n"
	 "  --audit-dir   the audit trail to read (default DATA/audit, DATA being --data\n"
	 "                or ./kinko-data); the folder read is named on stderr\n"
	 "  TIME          like 2025-01-31T00:00:00Z\n",
	 usage_flags},
	{"ops", "every operation of every table, with its row", "usage: kinko ops [--json]\n",
	 ops_flags},
	{"policy simulate", "explain whether a principal may call an action on a key or secret",
	 "usage: kinko policy simulate --config FILE --principal ARN --action kms:ACTION\n"
	 "                             (--key KEY [--data DIR | --store URL] [--region REGION]\n"
	 "                              | --key-policy FILE)\n"
	 "                             [--context KEY=VALUE]... [--value CONDITION_KEY=VALUE]...\n"
	 "       kinko policy simulate --config FILE --principal ARN\n"
	 "                             --action secretsmanager:ACTION [--secret SECRET]\n"
	 "                             [--data DIR | --store URL] [--region REGION]\n"
	 "\n"
	 "  --key         a key id, key ARN, alias name (alias/NAME) or alias ARN, as the\n"
	 "                API takes them; an id or alias name is looked up in the\n"
	 "                principal's account and --region (default us-east-1)\n"
	 "  --secret      a secret's name or ARN: its resource policy and tags count with\n"
	 "                the identity policies; without it, Resource \"*\"\n"
	 "Prints a JSON explanation, with warnings for a principal the configuration does\n"
	 "not declare and an action that does not exist; exit status 0 allowed, 1 denied,\n"
	 "2 usage or lookup error.\n",
	 simulate_flags},
	{"xks check", "check an XKS proxy (kinko's or another) as AWS KMS would use it",
	 "usage: kinko xks check --endpoint URL --uri-path PATH --access-key-id ID\n"
	 "                       --secret-file FILE --key-id EXTERNAL_KEY_ID\n"
	 "                       [--ca-file FILE] [--region REGION] [--timeout-ms N]\n"
	 "\n"
	 "  --endpoint     the proxy, https://HOST[:PORT]\n"
	 "  --uri-path     [/PREFIX]/kms/xks/v1\n"
	 "  --secret-file  a file holding the SigV4 secret access key\n"
	 "  --ca-file      PEM CAs to verify the proxy's certificate (default: the system's)\n"
	 "  --region       the credential scope's region (default us-east-1)\n"
	 "  --timeout-ms   each call's whole time (default 2000)\n"
	 "Runs GetHealthStatus, GetKeyMetadata, Encrypt/Decrypt round trips with and\n"
	 "without AAD (the CDIV checked), tampered input, a wrong signature and an\n"
	 "unknown key, one line per check. Exit 0 all passed, 1 a check failed, 2 usage.\n",
	 xks_check_flags},
	{"peer wrapping-key", "print this deployment's wrapping public key for its peers",
	 "usage: kinko peer wrapping-key --data DIR [--store URL] [--root-key FILE]\n"
	 "\n"
	 "Prints the public key (PEM) that peer deployments pin as this one's\n"
	 "\"public_key_file\" (docs/REGIONS.md, \"Across deployments\"), making the key pair\n"
	 "in the store first if it has none. Run it with the server stopped (a SQLite\n"
	 "store) or against the shared store. Exit 0, 1 on failure.\n",
	 peer_key_flags},
	{"version", "print the version", "usage: kinko version\n", no_flags},
	{"help", "the command list, or one command's usage", "usage: kinko help [COMMAND]\n",
	 no_flags},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

void cli_usage(FILE *f)
{
	fprintf(f, "usage: kinko COMMAND [OPTIONS]   (kinko help COMMAND for its options)\n\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
}

const struct cli_command *cli_command_find(const char *word, const char *next, int *words)
{
	size_t wl = strlen(word);
	/* A two-word command named in full ("audit prune" beside "audit verify"). */
	for (size_t i = 0; next != NULL && i < N_COMMANDS; i++) {
		const char *n = commands[i].name;
		if (strncmp(n, word, wl) == 0 && n[wl] == ' ' && strcmp(n + wl + 1, next) == 0) {
			if (words != NULL)
				*words = 2;
			return &commands[i];
		}
	}
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const char *n = commands[i].name;
		if (strcmp(n, word) == 0) {
			if (words != NULL)
				*words = 1;
			return &commands[i];
		}
		/* A two-word command: "store copy" is found from "store" alone too. */
		if (strncmp(n, word, wl) == 0 && n[wl] == ' ') {
			if (words != NULL)
				*words = next != NULL && strcmp(n + wl + 1, next) == 0 ? 2 : 1;
			return &commands[i];
		}
	}
	return NULL;
}

void cli_command_usage(const struct cli_command *c, FILE *f)
{
	fputs(c->text, f);
}

/*
 * The name nearest to word among n rows of `stride` bytes from base, each
 * row starting with its name (a const char *), if near enough: at most a
 * third of the word changed, and at least one edit allowed.
 */
static const char *nearest(const char *word, const void *base, size_t stride, size_t n)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		const char *name;
		memcpy(&name, (const unsigned char *)base + i * stride, sizeof name);
		size_t d = k_edit_distance(word, name);
		if (d < best_d) {
			best_d = d;
			best = name;
		}
	}
	return best_d <= strlen(word) / 3 + 1 ? best : NULL;
}

void cli_unknown_command(const char *word)
{
	const char *near = nearest(word, commands, sizeof commands[0], N_COMMANDS);
	if (near != NULL)
		fprintf(stderr, "kinko: unknown command \"%s\" (did you mean \"%s\"?)\n\n", word,
			near);
	else
		fprintf(stderr, "kinko: unknown command \"%s\"\n\n", word);
	cli_usage(stderr);
}

int cli_help(int argc, char **argv)
{
	if (argc < 1) {
		cli_usage(stdout);
		return 0;
	}
	const struct cli_command *c = cli_command_find(argv[0], argc > 1 ? argv[1] : NULL, NULL);
	if (c == NULL) {
		cli_unknown_command(argv[0]);
		return 2;
	}
	cli_command_usage(c, stdout);
	return 0;
}

static const struct cli_flag *flag_find(const struct cli_command *c, const char *arg)
{
	for (const struct cli_flag *f = c->flags; f->name != NULL; f++)
		if (strcmp(f->name, arg) == 0)
			return f;
	return NULL;
}

void cli_bad_option(const struct cli_command *c, const char *arg, bool at_end)
{
	const struct cli_flag *f = flag_find(c, arg);
	if (f != NULL && f->takes_value && at_end) {
		fprintf(stderr, "kinko %s: %s needs a value\n\n", c->name, arg);
	} else {
		size_t n = 0;
		while (c->flags[n].name != NULL)
			n++;
		const char *near = nearest(arg, c->flags, sizeof c->flags[0], n);
		if (near != NULL)
			fprintf(stderr, "kinko %s: unknown option %s (did you mean %s?)\n\n",
				c->name, arg, near);
		else
			fprintf(stderr, "kinko %s: unknown option %s\n\n", c->name, arg);
	}
	cli_command_usage(c, stderr);
}

bool cli_wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

int cli_args_check(const struct cli_command *c, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		cli_command_usage(c, stdout);
		return 0;
	}
	for (int i = 0; i < argc; i++) {
		if (argv[i][0] != '-')
			continue; /* a positional argument */
		const struct cli_flag *f = flag_find(c, argv[i]);
		if (f == NULL || (f->takes_value && i + 1 >= argc)) {
			cli_bad_option(c, argv[i], i + 1 >= argc);
			return 2;
		}
		if (f->takes_value)
			i++;
	}
	return -1;
}
