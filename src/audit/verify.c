/*
 * verify.c — `kinko audit verify DIR`: the offline check of a log folder,
 * in the spirit of `aws cloudtrail validate-logs`.
 *
 * Four layers are checked, and every problem is named:
 *   1. digests: each signature (Ed25519, kinko's audit key) and the chain
 *      of digests (each names its predecessor and that file's SHA-256);
 *   2. files: each log file against its digest (present, length, SHA-256);
 *   3. records: the sequence numbers and the hash chain across all files,
 *      which tell a changed record from a removed, inserted or reordered one;
 *   4. the end of the trail: the period digests (period.c) tile the time
 *      since the first start, and each names a record that must be there;
 *      a witness's copies of them must all be in the folder; and the
 *      newest must reach "now".
 * Output lines start with the kind of problem: CHANGED, REMOVED, INSERTED,
 * REORDERED, TRUNCATED, UNSIGNED, SIGNATURE, MISSING; a trail that is
 * intact but ends early gets WARNING lines (exit status 3 in the CLI).
 *
 * This file runs the check and holds layer 1; verify_files.c holds layers
 * 2 and 3, verify_periods.c layer 4 (internal.h declares what they share).
 */
#include "audit/audit.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/banned.h"

void audit_verify_problem(struct vstate *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(v->out, fmt, ap);
	va_end(ap);
	fputc('\n', v->out);
	v->problems++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(((const struct vfile *)a)->name, ((const struct vfile *)b)->name);
}

struct vfile *audit_verify_file_named(struct vstate *v, const char *name)
{
	for (size_t i = 0; i < v->n_files; i++) {
		if (strcmp(v->files[i].name, name) == 0)
			return &v->files[i];
	}
	return NULL;
}

/* Every log name, from the log files and from the digests. */
static K_MUST_CHECK k_status collect_files(struct vstate *v, const char *dir)
{
	DIR *d = opendir(dir);
	ENSURE(d != NULL, K_E_NOT_FOUND);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char name[300];
		size_t n = strlen(de->d_name);
		size_t ds = strlen(".digest");
		if (strncmp(de->d_name, AUDIT_LOG_PREFIX, strlen(AUDIT_LOG_PREFIX)) != 0)
			continue;
		if (n > strlen(AUDIT_DIGEST_SUFFIX) &&
		    strcmp(de->d_name + n - strlen(AUDIT_DIGEST_SUFFIX), AUDIT_DIGEST_SUFFIX) == 0)
			snprintf(name, sizeof name, "%.*s", (int)(n - ds), de->d_name);
		else if (n > strlen(AUDIT_LOG_SUFFIX) &&
			 strcmp(de->d_name + n - strlen(AUDIT_LOG_SUFFIX), AUDIT_LOG_SUFFIX) == 0)
			snprintf(name, sizeof name, "%s", de->d_name);
		else
			continue;
		if (audit_verify_file_named(v, name) != NULL)
			continue;
		if (v->n_files == v->cap_files) {
			size_t cap = v->cap_files ? v->cap_files * 2 : 16;
			struct vfile *nf = realloc(v->files, cap * sizeof *nf);
			if (nf == NULL) {
				closedir(d);
				return K_E_INTERNAL;
			}
			v->files = nf;
			v->cap_files = cap;
		}
		memset(&v->files[v->n_files], 0, sizeof v->files[0]);
		snprintf(v->files[v->n_files].name, sizeof v->files[0].name, "%s", name);
		v->files[v->n_files].dir = dir;
		v->n_files++;
	}
	closedir(d);
	if (v->n_files > 0)
		qsort(v->files, v->n_files, sizeof *v->files, cmp_str);
	return K_OK;
}

/* Whether a digest's signature verifies: over its canonical JSON without "signature". */
static bool digest_signed(const char *pem, json_t *d)
{
	json_t *copy = json_copy(d);
	const char *sig = json_string_value(json_object_get(d, "signature"));
	json_object_del(copy, "signature");
	char *canon = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
	bool ok = canon != NULL && sig != NULL &&
		  k_ok(audit_verify_signature(pem, kslice_cstr(canon), sig, NULL));
	if (canon != NULL)
		kjson_free(canon);
	return ok;
}

/*
 * A prune's checkpoint (prune.c): the signed digest of the last file
 * pruned, byte for byte. *file gets the log file it is the digest of, and
 * sha its SHA-256, as the next file's digest names them ("" without a
 * checkpoint, or with one that does not verify: a problem).
 */
static void load_checkpoint(struct vstate *v, const char *dir, const char *pem, char *file,
			    size_t file_len, char sha[65])
{
	char path[1200];
	snprintf(path, sizeof path, "%s/%s", dir, AUDIT_PRUNE_CHECKPOINT);
	struct kbuf b;
	kbuf_init(&b, AUDIT_DIGEST_FILE_MAX);
	if (k_failed(audit_read_file(path, &b))) {
		kbuf_release(&b);
		return;
	}
	audit_sha256_hex(b.ptr, b.len, sha);
	json_t *d = json_loadb((const char *)b.ptr, b.len, 0, NULL);
	kbuf_release(&b);
	const char *name = json_string_value(json_object_get(d, "logFile"));
	long long last = (long long)json_integer_value(json_object_get(d, "lastSeq"));
	if (name == NULL || !digest_signed(pem, d)) {
		audit_verify_problem(v,
				     "SIGNATURE checkpoint %s: not a digest signed by this key "
				     "(changed, or written by someone else)",
				     AUDIT_PRUNE_CHECKPOINT);
	} else {
		snprintf(file, file_len, "%s", name);
		if (audit_verify_file_named(v, name) == NULL)
			fprintf(v->out,
				"note: records up to seq %lld were pruned; the trail starts at seq "
				"%lld, after %s, whose signed digest is kept as %s\n",
				last, last + 1, name, AUDIT_PRUNE_CHECKPOINT);
	}
	json_decref(d);
}

/* Layer 1: each digest's signature and the digest chain. */
static void check_digests(struct vstate *v, const char *dir, const char *pem)
{
	const char *prev_name = NULL;
	char prev_sha[65] = "", cp_file[AUDIT_NAME_MAX] = "", cp_sha[65] = "";
	/* After a prune, the chain of the remaining digests starts from the checkpoint. */
	load_checkpoint(v, dir, pem, cp_file, sizeof cp_file, cp_sha);
	if (cp_file[0] != 0 && audit_verify_file_named(v, cp_file) == NULL) {
		prev_name = cp_file;
		memcpy(prev_sha, cp_sha, sizeof prev_sha);
	}
	for (size_t i = 0; i < v->n_files; i++) {
		struct vfile *f = &v->files[i];
		char path[1200];
		snprintf(path, sizeof path, "%s/%s.digest", f->dir, f->name);
		struct kbuf b;
		kbuf_init(&b, AUDIT_DIGEST_FILE_MAX);
		if (k_failed(audit_read_file(path, &b))) {
			kbuf_release(&b);
			continue;
		}
		char sha[65];
		audit_sha256_hex(b.ptr, b.len, sha);
		f->digest = json_loadb((const char *)b.ptr, b.len, 0, NULL);
		kbuf_release(&b);
		if (!json_is_object(f->digest)) {
			audit_verify_problem(v, "CHANGED digest %s.digest: not a digest document",
					     f->name);
			json_decref(f->digest);
			f->digest = NULL;
			continue;
		}
		f->digest_ok = digest_signed(pem, f->digest);
		if (cp_file[0] != 0 && strcmp(cp_file, f->name) == 0 && strcmp(cp_sha, sha) != 0)
			audit_verify_problem(v, "CHANGED checkpoint %s: it is not the digest of %s",
					     AUDIT_PRUNE_CHECKPOINT, f->name);
		if (!f->digest_ok)
			audit_verify_problem(v,
					     "SIGNATURE digest %s.digest: the signature does not "
					     "verify (digest changed, or signed by another key)",
					     f->name);
		const char *want =
			json_string_value(json_object_get(f->digest, "previousDigestFile"));
		const char *want_sha =
			json_string_value(json_object_get(f->digest, "previousDigestSha256"));
		if (want != NULL &&
		    (prev_name == NULL || strncmp(want, prev_name, strlen(prev_name)) != 0 ||
		     strlen(want) != strlen(prev_name) + strlen(".digest")))
			audit_verify_problem(v,
					     "REMOVED digest %s: %s.digest names it as its "
					     "predecessor, but it is missing",
					     want, f->name);
		else if (want == NULL && prev_name != NULL)
			audit_verify_problem(
				v,
				"INSERTED digest %s.digest: it starts a new chain after %s.digest",
				f->name, prev_name);
		else if (want != NULL && want_sha != NULL && strcmp(want_sha, prev_sha) != 0)
			audit_verify_problem(v,
					     "CHANGED digest %s: its SHA-256 differs from what "
					     "%s.digest recorded",
					     want, f->name);
		prev_name = f->name;
		snprintf(prev_sha, sizeof prev_sha, "%s", sha);
	}
}

long audit_verify(const struct audit_verify_options *o, FILE *out, long *warnings)
{
	const char *dir = o->dir, *public_key_pem = o->public_key;
	struct vstate v;
	memset(&v, 0, sizeof v);
	v.out = out;
	*warnings = 0;
	char path[1200];
	if (public_key_pem == NULL) {
		snprintf(path, sizeof path, "%s/%s", dir, AUDIT_PUBLIC_KEY_FILE);
		public_key_pem = path;
	}
	struct kbuf pem;
	kbuf_init(&pem, AUDIT_PEM_FILE_MAX);
	if (k_failed(audit_read_file(public_key_pem, &pem))) {
		fprintf(out, "cannot read the public key %s\n", public_key_pem);
		kbuf_release(&pem);
		return -1;
	}
	const char *unreadable = k_failed(collect_files(&v, dir)) ? dir : NULL;
	if (unreadable == NULL && o->archive != NULL && k_failed(collect_files(&v, o->archive)))
		unreadable = o->archive;
	if (unreadable != NULL) {
		fprintf(out, "cannot read the folder %s\n", unreadable);
		kbuf_release(&pem);
		return -1;
	}
	char fpr[65] = "";
	/* Only for the key's fingerprint: the empty signature never verifies. */
	k_status probe = audit_verify_signature(kbuf_cstr(&pem), KSLICE_LIT("x"), "", fpr);
	(void)probe;
	fprintf(out, "verifying %s%s%s with key %s\n", dir, o->archive ? " and its archive " : "",
		o->archive ? o->archive : "", fpr[0] ? fpr : "(unreadable)");
	check_digests(&v, dir, kbuf_cstr(&pem));
	long rc = k_ok(audit_verify_files(&v, dir)) ? 0 : -1;
	audit_verify_records(&v);
	if (rc == 0 && k_failed(audit_verify_periods(&v, dir, kbuf_cstr(&pem), o)))
		rc = -1;
	size_t sealed = 0;
	for (size_t i = 0; i < v.n_files; i++)
		sealed += v.files[i].digest != NULL;
	if (v.node[0] != 0)
		fprintf(out, "node %s\n", v.node);
	if (o->node_out != NULL)
		snprintf(o->node_out, 72, "%s", v.node);
	if (v.problems == 0 && v.warnings == 0)
		fprintf(out,
			"OK: %zu files (%zu sealed), %zu records, chain and signatures intact\n",
			v.n_files, sealed, v.n_recs);
	else if (v.problems == 0)
		fprintf(out,
			"WARNING: %zu files (%zu sealed), %zu records, chain and signatures "
			"intact, but the trail ends early (see above)\n",
			v.n_files, sealed, v.n_recs);
	else
		fprintf(out, "FAILED: %ld problems in %zu files, %zu records\n", v.problems,
			v.n_files, v.n_recs);
	*warnings = v.warnings;
	for (size_t i = 0; i < v.n_files; i++)
		json_decref(v.files[i].digest);
	free(v.files);
	free(v.recs);
	kbuf_release(&pem);
	return rc < 0 ? -1 : v.problems;
}

long audit_verify_dir(const char *dir, const char *public_key_pem, FILE *out)
{
	struct audit_verify_options o = {.dir = dir, .public_key = public_key_pem};
	long warnings;
	return audit_verify(&o, out, &warnings);
}
