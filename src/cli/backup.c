/*
 * backup.c — `kinko backup` and `kinko restore` (backup.h).
 *
 * A backup folder holds:
 *   kinko.db             the store as of one moment (storage_backup), checked
 *   audit/               the audit trail's files as they were (sealed files,
 *                        their digests, the period digests, the public key,
 *                        the live file and its ring)
 *   audit-signing.key    the trail's signing key, wrapped under the root key
 *   manifest.json        when, which kinko, the root key's check value, the
 *                        record counts, and the reminder that the root key
 *                        is not here
 * The root key never goes into it: a backup beside its root key is every
 * secret in clear for whoever holds the copy. So the destination may not
 * lie in the data folder (where a default root key file lives), and
 * restore takes the key from the operator to check it against the manifest.
 */
#include "cli/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "cli/startup.h"
#include "cli/usage.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/json.h"
#include "keystore/keystore.h"
#include "storage/storage.h"
#include "core/banned.h"

#define MANIFEST "manifest.json"
#define MANIFEST_VERSION 1
#define STORE_FILE "kinko.db"
#define AUDIT_SUB "audit"
#define SIGNING_KEY "audit-signing.key"
#define ROOT_KEY_NOTE                                                                              \
	"The root key is not in this backup and must be kept apart from it; restoring needs it "   \
	"(kinko restore --root-key FILE) and refuses any other."

/* ---- files ------------------------------------------------------------------ */

/* True if path does not exist or is an empty folder. */
static bool absent_or_empty(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return errno == ENOENT;
	bool empty = true;
	const struct dirent *e;
	while (empty && (e = readdir(d)) != NULL)
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	return empty;
}

/* True if the existing folder `child` is `parent` or lies under it (links resolved). */
static bool inside(const char *child, const char *parent)
{
	char c[PATH_MAX], p[PATH_MAX];
	if (realpath(child, c) == NULL || realpath(parent, p) == NULL)
		return false;
	size_t n = strlen(p);
	return strcmp(p, "/") == 0 || (strncmp(c, p, n) == 0 && (c[n] == 0 || c[n] == '/'));
}

static bool sync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/*
 * Copies src to the new file dst (mode 0600, fsync'd), as many bytes as
 * src holds while it is read: a file that grows meanwhile (the live audit
 * file) is copied as it was. With whole_lines, the copy ends after its
 * last newline: a record being appended while it was read is not in the
 * file yet (the ring, copied after it, still holds it).
 */
static K_MUST_CHECK k_status copy_file_as(const char *src, const char *dst, bool whole_lines,
					  struct kbuf *msg)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		kbuf_note(msg, "cannot read %s: %s", src, strerror(errno));
		return K_E_STORE_UNAVAILABLE;
	}
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		kbuf_note(msg, "cannot create %s: %s", dst, strerror(errno));
		close(in);
		return K_E_STORE_UNAVAILABLE;
	}
	char buf[65536];
	off_t total = 0, lines_end = 0;
	ssize_t r;
	bool ok = true;
	while (ok && ((r = read(in, buf, sizeof buf)) > 0 || (r < 0 && errno == EINTR))) {
		if (r <= 0)
			continue;
		ok = write_all(out, buf, (size_t)r);
		const char *nl = memrchr(buf, '\n', (size_t)r);
		if (nl != NULL)
			lines_end = total + (nl - buf) + 1;
		total += r;
	}
	ok = ok && r == 0;
	if (ok && whole_lines && lines_end != total)
		ok = ftruncate(out, lines_end) == 0;
	ok = ok && fsync(out) == 0;
	if (!ok)
		kbuf_note(msg, "cannot copy %s to %s: %s", src, dst, strerror(errno));
	close(in);
	close(out);
	return ok ? K_OK : K_E_STORE_UNAVAILABLE;
}

static K_MUST_CHECK k_status copy_file(const char *src, const char *dst, struct kbuf *msg)
{
	return copy_file_as(src, dst, false, msg);
}

static bool is_jsonl(const char *name)
{
	size_t n = strlen(name);
	return n > 6 && strcmp(name + n - 6, ".jsonl") == 0;
}

/*
 * The order the audit files are copied in: period digests first, the log
 * files and their digests (in name order, so sequence order) next, the
 * ring last. A period digest commits only to records already in the log
 * file, so every record the copied digests name is in the copied files,
 * however much the server writes while the copy runs.
 */
static int audit_rank(const char *name)
{
	if (strncmp(name, "kinko-periods-", 14) == 0)
		return 0;
	if (strcmp(name, "kinko-audit.ring") == 0)
		return 2;
	return 1;
}

static int audit_order(const struct dirent **a, const struct dirent **b)
{
	int ra = audit_rank((*a)->d_name), rb = audit_rank((*b)->d_name);
	return ra != rb ? ra - rb : strcmp((*a)->d_name, (*b)->d_name);
}

/* The audit folder's own files, not its lock nor anything that is not a regular file. */
static int audit_file(const struct dirent *e)
{
	return e->d_name[0] != '.' && strcmp(e->d_name, STARTUP_LOCK_FILE) != 0 &&
	       (e->d_type == DT_REG || e->d_type == DT_UNKNOWN);
}

/* Copies the audit folder src into the new folder dst; *n gets the number of files. */
static K_MUST_CHECK k_status copy_audit(const char *src, const char *dst, unsigned *n,
					struct kbuf *msg)
{
	struct dirent **list = NULL;
	int count = scandir(src, &list, audit_file, audit_order);
	if (count < 0) {
		kbuf_note(msg, "cannot list the audit folder %s: %s", src, strerror(errno));
		return K_E_STORE_UNAVAILABLE;
	}
	k_status rc = K_OK;
	if (mkdir(dst, 0700) != 0) {
		kbuf_note(msg, "cannot create %s: %s", dst, strerror(errno));
		rc = K_E_STORE_UNAVAILABLE;
	}
	for (int i = 0; i < count; i++) {
		char from[PATH_MAX], to[PATH_MAX];
		snprintf(from, sizeof from, "%s/%s", src, list[i]->d_name);
		snprintf(to, sizeof to, "%s/%s", dst, list[i]->d_name);
		struct stat sb;
		if (k_ok(rc) && stat(from, &sb) == 0 && S_ISREG(sb.st_mode)) {
			rc = copy_file_as(from, to, is_jsonl(list[i]->d_name), msg);
			*n += k_ok(rc) ? 1u : 0u;
		}
		free(list[i]);
	}
	free(list);
	if (k_ok(rc) && !sync_path(dst)) {
		kbuf_note(msg, "cannot flush %s: %s", dst, strerror(errno));
		rc = K_E_STORE_UNAVAILABLE;
	}
	return rc;
}

/* ---- backup ----------------------------------------------------------------- */

struct backup_args {
	const char *to, *data, *store_url, *config_path, *audit_dir;
};

/* Where the store and the audit trail are, as serve and check find them. */
struct backup_source {
	struct config cfg;
	char audit_dir[PATH_MAX];
	char signing_key[PATH_MAX];
};

static void backup_usage(FILE *f)
{
	fprintf(f, "usage: kinko backup --to DIR [--data DIR] [--store URL] [--config FILE] "
		   "[--audit-dir DIR]\n"
		   "       kinko restore --from DIR --data NEWDIR [--root-key FILE]\n");
}

static int parse_backup_args(int argc, char **argv, struct backup_args *a)
{
	for (int i = 0; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **slot = strcmp(argv[i], "--to") == 0	  ? &a->to
				    : strcmp(argv[i], "--data") == 0	  ? &a->data
				    : strcmp(argv[i], "--store") == 0	  ? &a->store_url
				    : strcmp(argv[i], "--config") == 0	  ? &a->config_path
				    : strcmp(argv[i], "--audit-dir") == 0 ? &a->audit_dir
									  : NULL;
		if (strcmp(argv[i], "--help") == 0) {
			backup_usage(stdout);
			return 0;
		}
		if (slot == NULL || v == NULL) {
			fprintf(stderr, "kinko backup: %s %s\n",
				slot == NULL ? "unknown option" : "no value for", argv[i]);
			backup_usage(stderr);
			return 2;
		}
		*slot = v;
	}
	if (a->to == NULL || (a->data == NULL && a->config_path == NULL)) {
		fprintf(stderr, "kinko backup: give --to DIR and the data folder (--data DIR or "
				"--config FILE)\n");
		backup_usage(stderr);
		return 2;
	}
	return -1;
}

/* The configuration file (if any) and the flags over it, as serve resolves them. */
static int resolve_source(const struct backup_args *a, struct backup_source *s, struct kbuf *msg)
{
	struct config *cfg = &s->cfg;
	config_defaults(cfg);
	if (a->config_path != NULL && k_failed(config_load_file(cfg, a->config_path, msg))) {
		fprintf(stderr, "kinko backup: config: %s\n", kbuf_cstr(msg));
		return 1;
	}
	if (a->data != NULL)
		snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", a->data);
	if (a->store_url != NULL)
		snprintf(cfg->store_url, sizeof cfg->store_url, "%s", a->store_url);
	if (cfg->store_url[0] == 0)
		snprintf(cfg->store_url, sizeof cfg->store_url, "sqlite:%s", cfg->data_dir);
	snprintf(s->audit_dir, sizeof s->audit_dir, "%s", a->audit_dir ? a->audit_dir : "");
	if (a->audit_dir == NULL)
		snprintf(s->audit_dir, sizeof s->audit_dir, "%s/%s", cfg->data_dir, AUDIT_SUB);
	snprintf(s->signing_key, sizeof s->signing_key, "%s/%s", cfg->data_dir, SIGNING_KEY);
	return 0;
}

/*
 * The store must be one this command can copy, the data folder must
 * exist, and the destination must be new or empty and outside the data
 * folder, the store's folder and the audit folder. Creates the destination.
 */
static int check_destination(const char *to, const struct backup_source *s, const char *store_dir)
{
	struct stat sb;
	if (stat(s->cfg.data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "kinko backup: no data folder %s\n", s->cfg.data_dir);
		return 1;
	}
	if (!absent_or_empty(to)) {
		fprintf(stderr,
			"kinko backup: %s exists and is not empty; give a new or empty folder\n",
			to);
		return 1;
	}
	bool created = mkdir(to, 0700) == 0;
	if (!created && errno != EEXIST) {
		fprintf(stderr, "kinko backup: cannot create %s: %s\n", to, strerror(errno));
		return 1;
	}
	const char *within = inside(to, s->cfg.data_dir) ? s->cfg.data_dir
			     : inside(to, store_dir)	 ? store_dir
			     : inside(to, s->audit_dir)	 ? s->audit_dir
							 : NULL;
	if (within != NULL) {
		if (created)
			(void)rmdir(to);
		fprintf(stderr,
			"kinko backup: %s is inside %s; a backup must live outside the data folder "
			"(which may hold the root key) and outside the store's and audit trail's "
			"folders\n",
			to, within);
		return 1;
	}
	return 0;
}

static K_MUST_CHECK k_status count_kind(void *arg, const char *kind, uint64_t n)
{
	json_t *records = arg;
	return json_object_set_new(records, kind, json_integer((json_int_t)n)) == 0 ? K_OK
										    : K_E_INTERNAL;
}

/* The root key's check value the store keeps; JSON null if it has none yet. */
static json_t *store_check_value(struct storage *st)
{
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	json_t *v = NULL;
	if (k_ok(storage_get(st, KEYSTORE_CHECK_KIND, KEYSTORE_CHECK_NS, KEYSTORE_CHECK_ID, &doc,
			     NULL))) {
		json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
		v = json_incref(json_object_get(j, "KeyCheckValue"));
		json_decref(j);
	}
	kbuf_release(&doc);
	return v != NULL && json_is_string(v) ? v : json_null();
}

/* Writes the manifest through a temporary file and a rename, so a manifest is whole or absent. */
static K_MUST_CHECK k_status write_manifest(const char *dir, json_t *m, struct kbuf *msg)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, MANIFEST);
	snprintf(path, sizeof path, "%s/%s", dir, MANIFEST);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	char *text = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	bool ok = fd >= 0 && text != NULL && write_all(fd, text, strlen(text)) &&
		  write_all(fd, "\n", 1) && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	kjson_free(text);
	ok = ok && rename(tmp, path) == 0 && sync_path(dir);
	if (!ok) {
		kbuf_note(msg, "cannot write %s: %s", path, strerror(errno));
		return K_E_STORE_UNAVAILABLE;
	}
	return K_OK;
}

/*
 * Verifies the copied trail as `kinko audit verify` would, without its
 * end-of-trail warning (a copy of a live trail always ends before now).
 * K_OK when no problem is found.
 */
static K_MUST_CHECK k_status verify_audit_copy(const char *dir, struct kbuf *msg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	if (out == NULL) {
		kbuf_note(msg, "cannot verify the audit trail's copy: out of memory");
		return K_E_INTERNAL;
	}
	long warnings = 0;
	struct audit_verify_options o = {.dir = dir};
	long n = audit_verify(&o, out, &warnings);
	fclose(out);
	if (n != 0)
		kbuf_note(msg, "the audit trail's copy does not verify (%ld problems):\n%s", n,
			  text != NULL ? text : "");
	free(text);
	return n == 0 ? K_OK : K_E_INTERNAL;
}

/* Copies the audit trail and its wrapped signing key; adds what it copied to the manifest. */
static K_MUST_CHECK k_status backup_audit(const char *to, const struct backup_source *s, json_t *m,
					  struct kbuf *msg)
{
	struct stat sb;
	if (stat(s->audit_dir, &sb) != 0) {
		json_object_set_new(m, "audit", json_null());
		return K_OK;
	}
	char dst[PATH_MAX];
	snprintf(dst, sizeof dst, "%s/%s", to, AUDIT_SUB);
	unsigned files = 0;
	GUARD(copy_audit(s->audit_dir, dst, &files, msg));
	bool key = access(s->signing_key, F_OK) == 0;
	if (key) {
		char kdst[PATH_MAX];
		snprintf(kdst, sizeof kdst, "%s/%s", to, SIGNING_KEY);
		GUARD(copy_file(s->signing_key, kdst, msg));
	}
	GUARD(verify_audit_copy(dst, msg));
	json_object_set_new(m, "audit",
			    json_pack("{s:s, s:I, s:s?}", "folder", AUDIT_SUB, "files",
				      (json_int_t)files, "signingKey", key ? SIGNING_KEY : NULL));
	return K_OK;
}

/*
 * The database file of a sqlite: URL or bare path (storage.h's
 * storage_open forms): PATH itself when it ends in ".db", else
 * PATH/kinko.db. False if it does not fit.
 */
static bool sqlite_file_of(const char *url, char *out, size_t n)
{
	const char *p = url;
	if (strncasecmp(p, "sqlite:", 7) == 0)
		p += 7;
	if (strncmp(p, "///", 3) == 0)
		p += 2;
	size_t len = strlen(p);
	int w = len > 3 && strcmp(p + len - 3, ".db") == 0
			? snprintf(out, n, "%s", p)
			: snprintf(out, n, "%s/%s", p, STORE_FILE);
	return w > 0 && (size_t)w < n;
}

/*
 * The node's id file (cluster/cluster.h), so that a restored folder goes on
 * as the same node: its audit trail is that node's chain, and a new id
 * would make the restored trail a mix of two nodes.
 */
static K_MUST_CHECK k_status backup_node_id(const char *to, const struct backup_source *s,
					    json_t *m, struct kbuf *msg)
{
	char from[PATH_MAX], dst[PATH_MAX];
	snprintf(from, sizeof from, "%s/%s", s->cfg.data_dir, CLUSTER_NODE_ID_FILE);
	if (access(from, F_OK) != 0)
		return K_OK;
	snprintf(dst, sizeof dst, "%s/%s", to, CLUSTER_NODE_ID_FILE);
	GUARD(copy_file(from, dst, msg));
	json_object_set_new(m, "nodeIdFile", json_string(CLUSTER_NODE_ID_FILE));
	return K_OK;
}

/* The store's copy and the manifest's store part. */
static K_MUST_CHECK k_status backup_store(const char *to, const struct backup_source *s, json_t *m,
					  struct kbuf *msg)
{
	char path[PATH_MAX];
	struct storage *st = NULL;
	GUARD(storage_open(s->cfg.store_url, &st, msg));
	snprintf(path, sizeof path, "%s/%s", to, STORE_FILE);
	json_t *records = json_object();
	k_status rc = storage_backup(st, path, count_kind, records, msg);
	json_t *kcv = store_check_value(st);
	storage_close(st);
	json_object_set_new(m, "keyCheckValue", kcv);
	json_object_set_new(m, "store",
			    json_pack("{s:s, s:o}", "file", STORE_FILE, "records", records));
	return rc;
}

static int run_backup(const struct backup_args *a, struct backup_source *s, struct kbuf *msg)
{
	char store_dir[PATH_MAX];
	k_status where = storage_local_dir(s->cfg.store_url, store_dir, sizeof store_dir);
	if (k_is(where, K_E_UNSUPPORTED)) {
		fprintf(stderr,
			"kinko backup: the store %s is a PostgreSQL database: back it up with "
			"pg_dump (and this command's --audit-dir copy is not taken either)\n",
			s->cfg.store_url);
		return 1;
	}
	if (k_failed(where)) {
		fprintf(stderr, "kinko backup: cannot use the store %s\n", s->cfg.store_url);
		return 1;
	}
	/* The store must exist: opening a missing SQLite store would create an empty one. */
	char db[PATH_MAX];
	if (!sqlite_file_of(s->cfg.store_url, db, sizeof db) || access(db, F_OK) != 0) {
		fprintf(stderr, "kinko backup: no store in %s\n", s->cfg.store_url);
		return 1;
	}
	int rc = check_destination(a->to, s, store_dir);
	if (rc != 0)
		return rc;
	char when[32];
	audit_iso8601(kclock_now(), when);
	json_t *m = json_pack("{s:i, s:s, s:s, s:s}", "kinkoBackupVersion", MANIFEST_VERSION,
			      "createdAt", when, "kinkoVersion", KINKO_VERSION, "rootKey",
			      ROOT_KEY_NOTE);
	k_status st = backup_store(a->to, s, m, msg);
	if (k_ok(st))
		st = backup_audit(a->to, s, m, msg);
	if (k_ok(st))
		st = backup_node_id(a->to, s, m, msg);
	if (k_ok(st))
		st = write_manifest(a->to, m, msg);
	if (k_failed(st)) {
		fprintf(stderr,
			"kinko backup: %s\nkinko backup: the backup in %s is incomplete; remove "
			"it\n",
			kbuf_cstr(msg), a->to);
		json_decref(m);
		return 1;
	}
	json_t *records = json_object_get(json_object_get(m, "store"), "records");
	const char *kind;
	json_t *n;
	printf("kinko backup: %s written at %s (", a->to, when);
	bool first = true;
	json_object_foreach(records, kind, n)
	{
		printf("%s%" JSON_INTEGER_FORMAT " %s", first ? "" : ", ", json_integer_value(n),
		       kind);
		first = false;
	}
	printf("%s); store integrity check passed\n", first ? "no records" : "");
	printf("kinko backup: the root key is NOT in the backup: keep it apart, restore needs "
	       "it\n");
	json_decref(m);
	return 0;
}

int cli_backup(int argc, char **argv)
{
	struct backup_args a = {0};
	int rc = parse_backup_args(argc, argv, &a);
	if (rc >= 0)
		return rc;
	struct backup_source s;
	memset(&s, 0, sizeof s);
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	rc = resolve_source(&a, &s, &msg);
	if (rc == 0)
		rc = run_backup(&a, &s, &msg);
	if (a.config_path != NULL)
		config_release();
	kbuf_release(&msg);
	return rc;
}

/* ---- restore ---------------------------------------------------------------- */

struct restore_args {
	const char *from, *data, *root_key;
};

static int parse_restore_args(int argc, char **argv, struct restore_args *a)
{
	for (int i = 0; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **slot = strcmp(argv[i], "--from") == 0	 ? &a->from
				    : strcmp(argv[i], "--data") == 0	 ? &a->data
				    : strcmp(argv[i], "--root-key") == 0 ? &a->root_key
									 : NULL;
		if (strcmp(argv[i], "--help") == 0) {
			backup_usage(stdout);
			return 0;
		}
		if (slot == NULL || v == NULL) {
			fprintf(stderr, "kinko restore: %s %s\n",
				slot == NULL ? "unknown option" : "no value for", argv[i]);
			backup_usage(stderr);
			return 2;
		}
		*slot = v;
	}
	if (a->from == NULL || a->data == NULL) {
		fprintf(stderr, "kinko restore: give --from DIR and --data NEWDIR\n");
		backup_usage(stderr);
		return 2;
	}
	return -1;
}

/* The backup's manifest, or NULL with the reason on standard error. */
static json_t *read_manifest(const char *from)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", from, MANIFEST);
	json_error_t err;
	json_t *m = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	if (m == NULL) {
		fprintf(stderr, "kinko restore: %s is not a kinko backup: cannot read %s (%s)\n",
			from, path, err.text);
		return NULL;
	}
	if (json_integer_value(json_object_get(m, "kinkoBackupVersion")) != MANIFEST_VERSION) {
		fprintf(stderr, "kinko restore: %s was written by another kinko backup format\n",
			path);
		json_decref(m);
		return NULL;
	}
	return m;
}

/* With --root-key: the key must be the one the backup's store was written under. */
static int check_root_key(const char *root_key, const json_t *m, struct kbuf *msg)
{
	const char *want = json_string_value(json_object_get(m, "keyCheckValue"));
	if (root_key == NULL)
		return 0;
	if (k_failed(keystore_open_file(root_key, false, msg))) {
		fprintf(stderr, "kinko restore: root key: %s\n", kbuf_cstr(msg));
		return 1;
	}
	if (want == NULL) {
		printf("kinko restore: the backup records no root key check value; "
		       "kinko check will try the key on the key material\n");
		return 0;
	}
	if (k_ok(keystore_check_value_matches(kslice_cstr(want))))
		return 0;
	kbuf_reset(msg);
	k_status rc = keystore_check_value(msg);
	fprintf(stderr,
		"kinko restore: the root key %s is not the one this backup's store was written "
		"under "
		"(its check value is %s, the backup's is %s); nothing was restored\n",
		root_key, k_ok(rc) ? kbuf_cstr(msg) : "unknown", want);
	return 1;
}

/* The target: absent or empty, then created 0700. */
static int prepare_target(const char *data)
{
	if (!absent_or_empty(data)) {
		fprintf(stderr,
			"kinko restore: %s exists and is not empty; restore into a new or empty "
			"folder\n",
			data);
		return 1;
	}
	if (mkdir(data, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "kinko restore: cannot create %s: %s\n", data, strerror(errno));
		return 1;
	}
	return 0;
}

/* Copies the store and opens it (SQLite takes it back into WAL mode), then its integrity check. */
static K_MUST_CHECK k_status restore_store(const struct restore_args *a, const json_t *m,
					   struct kbuf *msg)
{
	const char *file = json_string_value(json_object_get(json_object_get(m, "store"), "file"));
	ENSURE(file != NULL && strchr(file, '/') == NULL, K_E_VALIDATION);
	char from[PATH_MAX], to[PATH_MAX];
	snprintf(from, sizeof from, "%s/%s", a->from, file);
	snprintf(to, sizeof to, "%s/%s", a->data, STORE_FILE);
	GUARD(copy_file(from, to, msg));
	struct storage *st = NULL;
	GUARD(storage_sqlite_open(a->data, &st));
	k_status rc = storage_check(st);
	storage_close(st);
	if (k_failed(rc))
		kbuf_note(msg, "the restored store fails its integrity check (%s)",
			  k_status_name(rc));
	return rc;
}

/* The audit trail and its wrapped signing key, when the backup has them. */
static K_MUST_CHECK k_status restore_audit(const struct restore_args *a, const json_t *m,
					   struct kbuf *msg)
{
	const json_t *au = json_object_get(m, "audit");
	if (!json_is_object(au))
		return K_OK;
	char from[PATH_MAX], to[PATH_MAX];
	snprintf(from, sizeof from, "%s/%s", a->from, AUDIT_SUB);
	snprintf(to, sizeof to, "%s/%s", a->data, AUDIT_SUB);
	unsigned files = 0;
	GUARD(copy_audit(from, to, &files, msg));
	if (json_is_string(json_object_get(au, "signingKey"))) {
		snprintf(from, sizeof from, "%s/%s", a->from, SIGNING_KEY);
		snprintf(to, sizeof to, "%s/%s", a->data, SIGNING_KEY);
		GUARD(copy_file(from, to, msg));
	}
	if (json_is_string(json_object_get(m, "nodeIdFile"))) {
		snprintf(from, sizeof from, "%s/%s", a->from, CLUSTER_NODE_ID_FILE);
		snprintf(to, sizeof to, "%s/%s", a->data, CLUSTER_NODE_ID_FILE);
		GUARD(copy_file(from, to, msg));
	}
	return sync_path(a->data) ? K_OK : K_E_STORE_UNAVAILABLE;
}

int cli_restore(int argc, char **argv)
{
	struct restore_args a = {0};
	int rc = parse_restore_args(argc, argv, &a);
	if (rc >= 0)
		return rc;
	json_t *m = read_manifest(a.from);
	if (m == NULL)
		return 1;
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	rc = check_root_key(a.root_key, m, &msg);
	if (rc == 0)
		rc = prepare_target(a.data);
	if (rc == 0) {
		k_status st = restore_store(&a, m, &msg);
		if (k_ok(st))
			st = restore_audit(&a, m, &msg);
		if (k_failed(st)) {
			fprintf(stderr,
				"kinko restore: %s (%s)\nkinko restore: %s is incomplete; remove "
				"it\n",
				kbuf_cstr(&msg), k_status_name(st), a.data);
			rc = 1;
		}
	}
	if (rc == 0) {
		printf("kinko restore: %s restored from %s (taken %s)\n", a.data, a.from,
		       json_string_value(json_object_get(m, "createdAt")));
		printf("kinko restore: the root key is not part of the backup; check and serve "
		       "with it:\n"
		       "  kinko check --data %s --root-key FILE\n",
		       a.data);
	}
	keystore_close();
	kbuf_release(&msg);
	json_decref(m);
	return rc;
}
