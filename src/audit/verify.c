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

struct rec {
	uint64_t seq;       /* 0: the line is not a record */
	char prev[65];
	char hash[65];
	size_t file;
	size_t line;
	bool genuine;       /* the record that holds its seq in the chain */
	bool flagged;
};

struct lfile {
	char name[300];
	bool exists;
	json_t *digest;     /* NULL: none */
	bool digest_ok;
};

/* One period digest line (of the folder, or of the witness). */
struct pline {
	json_t *doc;        /* NULL: not a digest */
	char file[64];
	size_t line;
	char sha[65];
	bool sig_ok;
};

struct plist {
	struct pline *v;
	size_t n, cap;
};

struct vstate {
	FILE *out;
	long problems;
	long warnings;
	struct rec *recs;
	size_t n_recs, cap_recs;
	struct lfile *files;
	size_t n_files;
};

__attribute__((format(printf, 2, 3))) static void problem(struct vstate *v, const char *fmt, ...)
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
	return strcmp(((const struct lfile *)a)->name, ((const struct lfile *)b)->name);
}

static struct lfile *file_named(struct vstate *v, const char *name)
{
	for (size_t i = 0; i < v->n_files; i++) {
		if (strcmp(v->files[i].name, name) == 0)
			return &v->files[i];
	}
	return NULL;
}

/* Every log name, from the log files and from the digests. */
static k_status collect_files(struct vstate *v, const char *dir)
{
	DIR *d = opendir(dir);
	ENSURE(d != NULL, K_E_NOT_FOUND);
	size_t cap = 0;
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
		if (file_named(v, name) != NULL)
			continue;
		if (v->n_files == cap) {
			cap = cap ? cap * 2 : 16;
			struct lfile *nf = realloc(v->files, cap * sizeof *nf);
			if (nf == NULL) {
				closedir(d);
				return K_E_INTERNAL;
			}
			v->files = nf;
		}
		memset(&v->files[v->n_files], 0, sizeof v->files[0]);
		snprintf(v->files[v->n_files].name, sizeof v->files[0].name, "%s", name);
		v->n_files++;
	}
	closedir(d);
	if (v->n_files > 0)
		qsort(v->files, v->n_files, sizeof *v->files, cmp_str);
	return K_OK;
}

/* Layer 1: each digest's signature and the digest chain. */
static void check_digests(struct vstate *v, const char *dir, const char *pem)
{
	const char *prev_name = NULL;
	char prev_sha[65] = "";
	for (size_t i = 0; i < v->n_files; i++) {
		struct lfile *f = &v->files[i];
		char path[1200];
		snprintf(path, sizeof path, "%s/%s.digest", dir, f->name);
		struct kbuf b;
		kbuf_init(&b, 1u << 20);
		if (audit_read_file(path, &b) != K_OK) {
			kbuf_release(&b);
			continue;
		}
		char sha[65];
		audit_sha256_hex(b.ptr, b.len, sha);
		f->digest = json_loadb((const char *)b.ptr, b.len, 0, NULL);
		kbuf_release(&b);
		if (!json_is_object(f->digest)) {
			problem(v, "CHANGED digest %s.digest: not a digest document", f->name);
			json_decref(f->digest);
			f->digest = NULL;
			continue;
		}
		json_t *copy = json_copy(f->digest);
		const char *sig = json_string_value(json_object_get(f->digest, "signature"));
		json_object_del(copy, "signature");
		char *canon = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(copy);
		f->digest_ok = canon != NULL && sig != NULL &&
			       audit_verify_signature(pem, kslice_cstr(canon), sig, NULL) == K_OK;
		if (canon != NULL)
			kjson_free(canon);
		if (!f->digest_ok)
			problem(v, "SIGNATURE digest %s.digest: the signature does not verify (digest changed, or signed by another key)",
				f->name);
		const char *want = json_string_value(json_object_get(f->digest, "previousDigestFile"));
		const char *want_sha =
			json_string_value(json_object_get(f->digest, "previousDigestSha256"));
		if (want != NULL && (prev_name == NULL || strncmp(want, prev_name, strlen(prev_name)) != 0 ||
				     strlen(want) != strlen(prev_name) + strlen(".digest")))
			problem(v, "REMOVED digest %s: %s.digest names it as its predecessor, but it is missing",
				want, f->name);
		else if (want == NULL && prev_name != NULL)
			problem(v, "INSERTED digest %s.digest: it starts a new chain after %s.digest",
				f->name, prev_name);
		else if (want != NULL && want_sha != NULL && strcmp(want_sha, prev_sha) != 0)
			problem(v, "CHANGED digest %s: its SHA-256 differs from what %s.digest recorded",
				want, f->name);
		prev_name = f->name;
		snprintf(prev_sha, sizeof prev_sha, "%s", sha);
	}
}

static k_status add_rec(struct vstate *v, const struct rec *r)
{
	if (v->n_recs == v->cap_recs) {
		size_t cap = v->cap_recs ? v->cap_recs * 2 : 1024;
		struct rec *nr = realloc(v->recs, cap * sizeof *nr);
		ENSURE(nr != NULL, K_E_INTERNAL);
		v->recs = nr;
		v->cap_recs = cap;
	}
	v->recs[v->n_recs++] = *r;
	return K_OK;
}

static json_int_t dint(json_t *d, const char *k)
{
	return json_integer_value(json_object_get(d, k));
}

/* Layer 2: each file against its digest; collects the records. */
static k_status check_files(struct vstate *v, const char *dir)
{
	for (size_t i = 0; i < v->n_files; i++) {
		struct lfile *f = &v->files[i];
		char path[1200];
		snprintf(path, sizeof path, "%s/%s", dir, f->name);
		struct kbuf b;
		kbuf_init(&b, 1ull << 34);
		f->exists = audit_read_file(path, &b) == K_OK;
		json_t *d = f->digest;
		if (!f->exists) {
			kbuf_release(&b);
			if (d != NULL)
				problem(v, "REMOVED file %s: its signed digest lists %lld records (seq %lld..%lld)",
					f->name, (long long)dint(d, "records"),
					(long long)dint(d, "firstSeq"), (long long)dint(d, "lastSeq"));
			continue;
		}
		if (d == NULL) {
			if (i + 1 == v->n_files) {
				fprintf(v->out, "note: %s is not sealed yet (the file being written); its records are checked by the chain only\n",
					f->name);
				/* Files of earlier builds may end in space reserved ahead (zero bytes). */
				while (b.len > 0 && b.ptr[b.len - 1] == 0)
					b.len--;
			}
			else
				problem(v, "UNSIGNED file %s has no digest (its digest was removed, or the file was inserted)",
					f->name);
		} else {
			char sha[65] = "";
			if (dint(d, "kinkoDigestVersion") < 2)
				audit_sha256_hex(b.ptr, b.len, sha);
			json_int_t want = dint(d, "fileBytes");
			const char *want_sha = json_string_value(json_object_get(d, "fileSha256"));
			if ((json_int_t)b.len < want)
				problem(v, "TRUNCATED file %s: %zu of the %lld bytes its digest signed",
					f->name, b.len, (long long)want);
			else if ((json_int_t)b.len > want)
				problem(v, "CHANGED file %s: %zu bytes more than its digest signed",
					f->name, b.len - (size_t)want);
			else if (dint(d, "kinkoDigestVersion") < 2 &&
				 (want_sha == NULL || strcmp(sha, want_sha) != 0))
				/* Version 1 digests also sign the file's SHA-256; from version 2 the chain does. */
				problem(v, "CHANGED file %s: its SHA-256 differs from its signed digest",
					f->name);
		}
		size_t pos = 0, line = 0;
		while (pos < b.len) {
			const uint8_t *nl = memchr(b.ptr + pos, '\n', b.len - pos);
			size_t len = nl ? (size_t)(nl - (b.ptr + pos)) : b.len - pos;
			line++;
			if (nl == NULL) {
				problem(v, "TRUNCATED file %s line %zu: the last record is incomplete",
					f->name, line);
				break;
			}
			struct rec r;
			memset(&r, 0, sizeof r);
			r.file = i;
			r.line = line;
			audit_sha256_hex(b.ptr + pos, len, r.hash);
			json_t *j = json_loadb((const char *)b.ptr + pos, len, 0, NULL);
			json_t *seq = json_object_get(j, "kinkoSeq");
			const char *prev = json_string_value(json_object_get(j, "kinkoPrev"));
			if (json_is_integer(seq) && json_integer_value(seq) > 0 && prev != NULL &&
			    json_is_object(json_object_get(j, "event"))) {
				r.seq = (uint64_t)json_integer_value(seq);
				snprintf(r.prev, sizeof r.prev, "%s", prev);
			} else {
				problem(v, "CHANGED file %s line %zu: not a well-formed record", f->name,
					line);
			}
			json_decref(j);
			if (d != NULL && r.seq != 0 &&
			    (r.seq < (uint64_t)dint(d, "firstSeq") || r.seq > (uint64_t)dint(d, "lastSeq")))
				problem(v, "INSERTED record seq %" PRIu64 " at %s line %zu: outside the file's signed range %lld..%lld",
					r.seq, f->name, line, (long long)dint(d, "firstSeq"),
					(long long)dint(d, "lastSeq"));
			GUARD(add_rec(v, &r));
			pos += len + 1;
		}
		if (d != NULL && pos >= b.len && (json_int_t)line != dint(d, "records"))
			problem(v, "CHANGED file %s: %zu records where its digest signed %lld", f->name,
				line, (long long)dint(d, "records"));
		kbuf_release(&b);
	}
	return K_OK;
}

static int cmp_seq(const void *a, const void *b)
{
	const struct rec *x = *(struct rec *const *)a, *y = *(struct rec *const *)b;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->file != y->file ? (x->file < y->file ? -1 : 1) : (x->line < y->line ? -1 : x->line > y->line);
}

static const char *fname(struct vstate *v, const struct rec *r)
{
	return v->files[r->file].name;
}

static void flag_changed(struct vstate *v, struct rec *r)
{
	if (r->flagged)
		return;
	r->flagged = true;
	problem(v, "CHANGED record seq %" PRIu64 " at %s line %zu: its hash no longer matches the chain",
		r->seq, fname(v, r), r->line);
}

__attribute__((format(printf, 2, 3))) static void warning(struct vstate *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(v->out, fmt, ap);
	va_end(ap);
	fputc('\n', v->out);
	v->warnings++;
}

/* Layer 3: sequence and chain across all files. */
static void check_records(struct vstate *v)
{
	size_t n = 0;
	struct rec **by = calloc(v->n_recs ? v->n_recs : 1, sizeof *by);
	if (by == NULL)
		return;
	for (size_t i = 0; i < v->n_recs; i++) {
		if (v->recs[i].seq != 0)
			by[n++] = &v->recs[i];
	}
	qsort(by, n, sizeof *by, cmp_seq);

	/* The expected range: from the digests where there are any. */
	uint64_t lo = n ? by[0]->seq : 0, hi = n ? by[n - 1]->seq : 0;
	for (size_t i = 0; i < v->n_files; i++) {
		json_t *d = v->files[i].digest;
		if (d == NULL)
			continue;
		if (lo == 0 || (uint64_t)dint(d, "firstSeq") < lo)
			lo = (uint64_t)dint(d, "firstSeq");
		if ((uint64_t)dint(d, "lastSeq") > hi)
			hi = (uint64_t)dint(d, "lastSeq");
	}

	/* Pick the genuine record for each seq: the one that chains to its predecessor. */
	const char *prev_hash = NULL;
	uint64_t prev_seq = 0;
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && by[j]->seq == by[i]->seq)
			j++;
		size_t pick = i;
		if (j - i > 1 && prev_hash != NULL && prev_seq + 1 == by[i]->seq) {
			for (size_t k = i; k < j; k++) {
				if (strcmp(by[k]->prev, prev_hash) == 0) {
					pick = k;
					break;
				}
			}
		}
		by[pick]->genuine = true;
		for (size_t k = i; k < j; k++) {
			if (k != pick)
				problem(v, "INSERTED record at %s line %zu: a second record with seq %" PRIu64,
					fname(v, by[k]), by[k]->line, by[k]->seq);
		}
		prev_hash = by[pick]->hash;
		prev_seq = by[pick]->seq;
		i = j;
	}

	/* Removed: seqs missing from the expected range. */
	uint64_t expect = lo;
	for (size_t k = 0; k < n; k++) {
		if (!by[k]->genuine)
			continue;
		if (by[k]->seq > expect) {
			if (by[k]->seq - 1 == expect)
				problem(v, "REMOVED record seq %" PRIu64 " (before %s line %zu)", expect,
					fname(v, by[k]), by[k]->line);
			else
				problem(v, "REMOVED records seq %" PRIu64 "..%" PRIu64 " (before %s line %zu)",
					expect, by[k]->seq - 1, fname(v, by[k]), by[k]->line);
		}
		expect = by[k]->seq + 1;
	}
	if (n > 0 && hi >= expect)
		problem(v, "REMOVED records seq %" PRIu64 "..%" PRIu64 " (at the end of the log)", expect,
			hi);

	/* Reordered: a genuine record that appears after one with a higher seq. */
	uint64_t max_seen = 0;
	for (size_t k = 0; k < v->n_recs; k++) {
		struct rec *r = &v->recs[k];
		if (!r->genuine)
			continue;
		if (r->seq < max_seen)
			problem(v, "REORDERED record seq %" PRIu64 " at %s line %zu: it comes after seq %" PRIu64,
				r->seq, fname(v, r), r->line, max_seen);
		else
			max_seen = r->seq;
	}

	/* The chain: each genuine record commits to its predecessor's hash. */
	struct rec **g = calloc(n ? n : 1, sizeof *g);
	size_t ng = 0;
	for (size_t k = 0; k < n; k++) {
		if (by[k]->genuine)
			g[ng++] = by[k];
	}
	for (size_t k = 0; k < ng; k++) {
		struct rec *r = g[k];
		const char *want = NULL;
		struct rec *pred = k > 0 && g[k - 1]->seq + 1 == r->seq ? g[k - 1] : NULL;
		if (pred != NULL)
			want = pred->hash;
		else if (r->seq == 1)
			want = "0000000000000000000000000000000000000000000000000000000000000000";
		else if (v->files[r->file].digest != NULL &&
			 (uint64_t)dint(v->files[r->file].digest, "firstSeq") == r->seq)
			want = json_string_value(json_object_get(v->files[r->file].digest, "startPrevHash"));
		if (want == NULL || strcmp(r->prev, want) == 0)
			continue;
		/* Which one changed: r, if r's own successor no longer matches r either. */
		const char *succ = NULL;
		if (k + 1 < ng && g[k + 1]->seq == r->seq + 1)
			succ = g[k + 1]->prev;
		else if (v->files[r->file].digest != NULL &&
			 (uint64_t)dint(v->files[r->file].digest, "lastSeq") == r->seq)
			succ = json_string_value(json_object_get(v->files[r->file].digest, "lastRecordHash"));
		if (pred != NULL && succ != NULL && strcmp(succ, r->hash) == 0)
			flag_changed(v, pred);
		else
			flag_changed(v, r);
	}
	/* The last record of a sealed file must be the one its digest signed. */
	for (size_t k = 0; k < ng; k++) {
		struct rec *r = g[k];
		json_t *d = v->files[r->file].digest;
		const char *lh = json_string_value(json_object_get(d, "lastRecordHash"));
		if (d != NULL && lh != NULL && (uint64_t)dint(d, "lastSeq") == r->seq &&
		    strcmp(lh, r->hash) != 0)
			flag_changed(v, r);
	}
	free(g);
	free(by);
}

/* ---- layer 4: the end of the trail ---- */

static k_status plist_add(struct plist *l, const struct pline *p)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct pline *nv = realloc(l->v, cap * sizeof *nv);
		ENSURE(nv != NULL, K_E_INTERNAL);
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = *p;
	return K_OK;
}

static void plist_free(struct plist *l)
{
	for (size_t i = 0; i < l->n; i++)
		json_decref(l->v[i].doc);
	free(l->v);
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void when(int64_t ms, char out[32])
{
	audit_iso8601(ms / 1000, out);
}

static int64_t pint(const struct pline *p, const char *k)
{
	return json_integer_value(json_object_get(p->doc, k));
}

static const char *pstr(const struct pline *p, const char *k)
{
	const char *s = json_string_value(json_object_get(p->doc, k));
	return s != NULL ? s : "";
}

/*
 * Reads the folder's period digests, oldest first (files by name, then
 * line order). An incomplete last line is what a crash while appending
 * leaves in the newest file (kinko cuts it at its next start); anywhere
 * else the file was cut.
 */
static k_status load_periods(struct vstate *v, const char *dir, const char *pem, struct plist *l)
{
	char **names = NULL;
	size_t n = 0;
	GUARD(audit_list_files(dir, AUDIT_PERIODS_PREFIX, AUDIT_PERIODS_SUFFIX, &names, &n));
	if (n > 0)
		qsort(names, n, sizeof *names, cmp_cstr);
	k_status rc = K_OK;
	for (size_t i = 0; i < n && rc == K_OK; i++) {
		char path[1200];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		struct kbuf b;
		kbuf_init(&b, 1ull << 32);
		rc = audit_read_file(path, &b);
		size_t pos = 0, line = 0;
		while (rc == K_OK && pos < b.len) {
			const uint8_t *nl = memchr(b.ptr + pos, '\n', b.len - pos);
			line++;
			if (nl == NULL) {
				if (i + 1 == n)
					fprintf(v->out, "note: %s line %zu is an incomplete period digest (kinko stopped while appending it; its next start cuts it)\n",
						names[i], line);
				else
					problem(v, "TRUNCATED period digests %s: line %zu is incomplete",
						names[i], line);
				break;
			}
			struct pline p;
			memset(&p, 0, sizeof p);
			snprintf(p.file, sizeof p.file, "%s", names[i]);
			p.line = line;
			size_t len = (size_t)(nl - (b.ptr + pos));
			audit_sha256_hex(b.ptr + pos, len, p.sha);
			k_status prc = audit_period_parse(kslice_make(b.ptr + pos, len), pem, &p.doc);
			p.sig_ok = prc == K_OK;
			if (prc == K_E_VALIDATION)
				problem(v, "CHANGED period digest %s line %zu: not a period digest", names[i],
					line);
			else if (!p.sig_ok)
				problem(v, "SIGNATURE period digest %s line %zu: the signature does not verify (changed, or signed by another key)",
					names[i], line);
			if (p.doc != NULL)
				rc = plist_add(l, &p);
			pos += len + 1;
		}
		kbuf_release(&b);
	}
	audit_free_names(names, n);
	return rc;
}

/*
 * The digests tile time: each names the previous one's SHA-256 and starts
 * where it ended. A hole is a missing period (a quiet period still has its
 * digest); a "start" digest covers the time kinko was not running.
 */
static void check_tiling(struct vstate *v, const struct plist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct pline *p = &l->v[i], *q = i > 0 ? &l->v[i - 1] : NULL;
		json_t *prev = json_object_get(p->doc, "previousSha256");
		json_t *from = json_object_get(p->doc, "fromMs");
		char a[32], b[32];
		when(json_integer_value(from), a);
		when(pint(p, "toMs"), b);
		if (q == NULL) {
			if (json_is_string(prev))
				problem(v, "REMOVED period digests before %s line %zu (up to %s): its predecessor is not in the folder",
					p->file, p->line, a);
			continue;
		}
		if (!json_is_string(prev)) {
			problem(v, "INSERTED period digest %s line %zu: it starts a new chain after %s line %zu",
				p->file, p->line, q->file, q->line);
			continue;
		}
		char qa[32];
		when(pint(q, "toMs"), qa);
		if (json_integer_value(from) != pint(q, "toMs"))
			problem(v, "MISSING period digests for %s..%s (between %s line %zu and %s line %zu): removed",
				qa, a, q->file, q->line, p->file, p->line);
		else if (strcmp(json_string_value(prev), q->sha) != 0)
			problem(v, "CHANGED period digest %s line %zu: %s line %zu names another SHA-256 for its predecessor",
				q->file, q->line, p->file, p->line);
		if (strcmp(pstr(p, "kind"), "start") == 0 && strcmp(pstr(q, "kind"), "stop") != 0)
			fprintf(v->out, "note: kinko started at %s after a crash, kill or power cut (its last digest was at %s); records of that last period are vouched for by the log alone\n",
				b, qa);
	}
}

/* Where the log's records are, by seq, for the commitments. */
struct index {
	struct rec **g;
	size_t n;
	uint64_t max_seq;
};

static struct rec *find_seq(const struct index *ix, uint64_t seq)
{
	size_t lo = 0, hi = ix->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ix->g[mid]->seq == seq)
			return ix->g[mid];
		if (ix->g[mid]->seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The furthest record committed to that the log lacks past its end. */
struct tail {
	uint64_t seq;
	char src[200];
	char file[96];
};

/*
 * A digest (src says which) committed to record lastSeq with its hash: the
 * record must be there, unchanged. One missing inside the log is already
 * named by the sequence check; one past the end is kept in *t.
 */
static void check_commit(struct vstate *v, const struct index *ix, const struct pline *p,
			 const char *src, struct tail *t)
{
	uint64_t seq = (uint64_t)pint(p, "lastSeq");
	if (seq == 0)
		return;
	struct rec *r = find_seq(ix, seq);
	if (r != NULL) {
		if (strcmp(r->hash, pstr(p, "lastRecordHash")) != 0 && !r->flagged) {
			r->flagged = true;
			problem(v, "CHANGED record seq %" PRIu64 " at %s line %zu: %s committed to another hash",
				seq, fname(v, r), r->line, src);
		}
		return;
	}
	if (seq > t->seq && seq > ix->max_seq) {
		t->seq = seq;
		snprintf(t->src, sizeof t->src, "%s", src);
		snprintf(t->file, sizeof t->file, "%s", pstr(p, "logFile"));
	}
}

static void report_tail(struct vstate *v, const struct index *ix, const struct tail *t)
{
	if (t->seq == 0)
		return;
	char range[64];
	if (t->seq == ix->max_seq + 1)
		snprintf(range, sizeof range, "record seq %" PRIu64 " was", t->seq);
	else
		snprintf(range, sizeof range, "records seq %" PRIu64 "..%" PRIu64 " were",
			 ix->max_seq + 1, t->seq);
	problem(v, "TRUNCATED trail: the log ends at seq %" PRIu64 ", but %s committed to record seq %" PRIu64 " (in %s): %s removed",
		ix->max_seq, t->src, t->seq, t->file[0] ? t->file : "?", range);
	if (t->file[0] != 0 && file_named(v, t->file) == NULL)
		problem(v, "REMOVED file %s: %s names it as holding seq %" PRIu64 "; neither it nor its digest is in the folder",
			t->file, t->src, t->seq);
}

/*
 * The witness: each of its digests must verify and be in the folder, and
 * the records they name must be there. Its lines may carry a prefix (a
 * syslog extract): the digest starts at the first '{'; lines without one
 * are skipped.
 */
static k_status check_witness(struct vstate *v, const char *path, const char *pem,
			      const struct plist *l, const struct index *ix, struct tail *t)
{
	struct kbuf b;
	kbuf_init(&b, 1ull << 34);
	if (audit_read_file(path, &b) != K_OK) {
		kbuf_release(&b);
		return K_E_NOT_FOUND;
	}
	const char **sigs = calloc(l->n ? l->n : 1, sizeof *sigs);
	if (sigs == NULL) {
		kbuf_release(&b);
		return K_E_INTERNAL;
	}
	size_t ns = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].sig_ok)
			sigs[ns++] = pstr(&l->v[i], "signature");
	}
	qsort(sigs, ns, sizeof *sigs, cmp_cstr);
	size_t pos = 0, line = 0, seen = 0, lacking = 0, newest_line = 0;
	int64_t newest_ms = -1, newest_lacking_ms = -1;
	uint64_t newest_lacking_seq = 0;
	while (pos < b.len) {
		const uint8_t *nl = memchr(b.ptr + pos, '\n', b.len - pos);
		size_t len = nl != NULL ? (size_t)(nl - (b.ptr + pos)) : b.len - pos;
		line++;
		const uint8_t *brace = memchr(b.ptr + pos, '{', len);
		struct pline p;
		memset(&p, 0, sizeof p);
		k_status prc = brace == NULL ? K_E_VALIDATION
					     : audit_period_parse(kslice_make(brace, len - (size_t)(brace - (b.ptr + pos))),
								  pem, &p.doc);
		pos += len + 1;
		if (prc == K_E_VALIDATION)
			continue;
		seen++;
		if (prc != K_OK) {
			problem(v, "SIGNATURE witness line %zu: the signature does not verify", line);
			json_decref(p.doc);
			continue;
		}
		char src[96], to[32];
		when(pint(&p, "toMs"), to);
		snprintf(src, sizeof src, "the witness's digest of %s (line %zu)", to, line);
		check_commit(v, ix, &p, src, t);
		const char *sig = pstr(&p, "signature");
		if (bsearch(&sig, sigs, ns, sizeof *sigs, cmp_cstr) == NULL) {
			lacking++;
			if (pint(&p, "toMs") > newest_lacking_ms) {
				newest_lacking_ms = pint(&p, "toMs");
				newest_lacking_seq = (uint64_t)pint(&p, "lastSeq");
				newest_line = line;
			}
		}
		newest_ms = pint(&p, "toMs") > newest_ms ? pint(&p, "toMs") : newest_ms;
		json_decref(p.doc);
	}
	free(sigs);
	kbuf_release(&b);
	char a[32];
	if (lacking > 0) {
		when(newest_lacking_ms, a);
		problem(v, "REMOVED period digests: the witness holds %zu that the folder lacks, the newest of %s (witness line %zu, naming seq %" PRIu64 ")",
			lacking, a, newest_line, newest_lacking_seq);
	}
	when(newest_ms, a);
	fprintf(v->out, "witness %s: %zu period digests%s%s\n", path, seen, seen ? ", the newest of " : "",
		seen ? a : "");
	return K_OK;
}

/*
 * The newest digest must reach "now" (within a period and a grace for the
 * flusher): if it does not, kinko stopped (cleanly or not) or what came
 * after was removed. Without a witness the two look the same, so this is
 * a warning, not a problem.
 */
static void check_end(struct vstate *v, const struct plist *l, int64_t now_ms, bool witnessed)
{
	if (l->n == 0) {
		warning(v, "WARNING: no period digests in the folder (written by a kinko build before them, or removed): nothing commits to the end of the trail");
		return;
	}
	const struct pline *p = &l->v[l->n - 1];
	int64_t period = pint(p, "periodMs") > 0 ? pint(p, "periodMs") : 60000;
	int64_t grace = period < 5000 ? period : 5000;
	int64_t lag = now_ms - pint(p, "toMs");
	if (lag <= period + grace)
		return;
	char a[32], b[32];
	when(pint(p, "toMs"), a);
	when(now_ms, b);
	const char *kind = pstr(p, "kind");
	warning(v, "WARNING: ENDS EARLY: the newest period digest (%s line %zu, seq %lld) is of %s, %lld s before %s: %s, or the records and digests after it were removed; %s",
		p->file, p->line, (long long)pint(p, "lastSeq"), a, (long long)(lag / 1000), b,
		strcmp(kind, "stop") == 0 ? "kinko was stopped cleanly then"
					  : "kinko stopped then without a clean shutdown (a crash, kill or power cut)",
		witnessed ? "the witness holds nothing newer either"
			  : "these cannot be told apart without a witness (--witness FILE)");
}

static k_status check_periods(struct vstate *v, const char *dir, const char *pem,
			      const struct audit_verify_options *o)
{
	struct plist l;
	memset(&l, 0, sizeof l);
	struct index ix;
	memset(&ix, 0, sizeof ix);
	k_status rc = load_periods(v, dir, pem, &l);
	ix.g = calloc(v->n_recs ? v->n_recs : 1, sizeof *ix.g);
	if (rc != K_OK || ix.g == NULL) {
		plist_free(&l);
		free(ix.g);
		return K_E_INTERNAL;
	}
	check_tiling(v, &l);
	for (size_t i = 0; i < v->n_recs; i++) {
		if (v->recs[i].genuine) {
			ix.g[ix.n++] = &v->recs[i];
			if (v->recs[i].seq > ix.max_seq)
				ix.max_seq = v->recs[i].seq;
		}
	}
	qsort(ix.g, ix.n, sizeof *ix.g, cmp_seq);
	struct tail t;
	memset(&t, 0, sizeof t);
	for (size_t i = 0; i < l.n; i++) {
		if (!l.v[i].sig_ok)
			continue;
		char src[160], to[32];
		when(pint(&l.v[i], "toMs"), to);
		snprintf(src, sizeof src, "the period digest of %s (%s line %zu)", to, l.v[i].file,
			 l.v[i].line);
		check_commit(v, &ix, &l.v[i], src, &t);
	}
	if (o->witness != NULL)
		rc = check_witness(v, o->witness, pem, &l, &ix, &t);
	if (rc == K_E_NOT_FOUND)
		fprintf(v->out, "cannot read the witness %s\n", o->witness);
	report_tail(v, &ix, &t);
	if (rc == K_OK)
		check_end(v, &l, o->now_ms != 0 ? o->now_ms : kclock_now_ms(), o->witness != NULL);
	free(ix.g);
	plist_free(&l);
	return rc;
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
	kbuf_init(&pem, 16384);
	if (audit_read_file(public_key_pem, &pem) != K_OK) {
		fprintf(out, "cannot read the public key %s\n", public_key_pem);
		kbuf_release(&pem);
		return -1;
	}
	if (collect_files(&v, dir) != K_OK) {
		fprintf(out, "cannot read the folder %s\n", dir);
		kbuf_release(&pem);
		return -1;
	}
	char fpr[65] = "";
	/* Only for the key's fingerprint: the empty signature never verifies. */
	k_status probe = audit_verify_signature(kbuf_cstr(&pem), KSLICE_LIT("x"), "", fpr);
	(void)probe;
	fprintf(out, "verifying %s with key %s\n", dir, fpr[0] ? fpr : "(unreadable)");
	check_digests(&v, dir, kbuf_cstr(&pem));
	long rc = check_files(&v, dir) == K_OK ? 0 : -1;
	check_records(&v);
	if (rc == 0 && check_periods(&v, dir, kbuf_cstr(&pem), o) != K_OK)
		rc = -1;
	size_t sealed = 0;
	for (size_t i = 0; i < v.n_files; i++)
		sealed += v.files[i].digest != NULL;
	if (v.problems == 0 && v.warnings == 0)
		fprintf(out, "OK: %zu files (%zu sealed), %zu records, chain and signatures intact\n",
			v.n_files, sealed, v.n_recs);
	else if (v.problems == 0)
		fprintf(out, "WARNING: %zu files (%zu sealed), %zu records, chain and signatures intact, but the trail ends early (see above)\n",
			v.n_files, sealed, v.n_recs);
	else
		fprintf(out, "FAILED: %ld problems in %zu files, %zu records\n", v.problems, v.n_files,
			v.n_recs);
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
