/*
 * verify_periods.c — layer 4 of `kinko audit verify` (verify.c): the end
 * of the trail. The period digests (period.c) tile the time since the
 * first start, each names a record that must be there, a witness's copies
 * of them must all be in the folder, and the newest must reach "now".
 */
#include "audit/audit.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/banned.h"

/* One period digest line (of the folder, or of the witness). */
struct pline {
	json_t *doc; /* NULL: not a digest */
	char file[64];
	size_t line;
	char sha[65];
	bool sig_ok;
};

struct plist {
	struct pline *v;
	size_t n, cap;
};

__attribute__((format(printf, 2, 3))) static void warning(struct vstate *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(v->out, fmt, ap);
	va_end(ap);
	fputc('\n', v->out);
	v->warnings++;
}

/* ---- layer 4: the end of the trail ---- */

static K_MUST_CHECK k_status plist_add(struct plist *l, const struct pline *p)
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
static K_MUST_CHECK k_status load_periods(struct vstate *v, const char *dir, const char *pem,
					  struct plist *l)
{
	char **names = NULL;
	size_t n = 0;
	GUARD(audit_list_files(dir, AUDIT_PERIODS_PREFIX, AUDIT_PERIODS_SUFFIX, &names, &n));
	if (n > 0)
		qsort(names, n, sizeof *names, cmp_cstr);
	k_status rc = K_OK;
	for (size_t i = 0; i < n && k_ok(rc); i++) {
		char path[1200];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		struct kbuf b;
		kbuf_init(&b, AUDIT_MAX_FILE);
		rc = audit_read_file(path, &b);
		size_t pos = 0, line = 0;
		while (k_ok(rc) && pos < b.len) {
			const uint8_t *nl = memchr(b.ptr + pos, '\n', b.len - pos);
			line++;
			if (nl == NULL) {
				if (i + 1 == n)
					fprintf(v->out,
						"note: %s line %zu is an incomplete period digest "
						"(kinko stopped while appending it; its next start "
						"cuts it)\n",
						names[i], line);
				else
					audit_verify_problem(v,
							     "TRUNCATED period digests %s: line "
							     "%zu is incomplete",
							     names[i], line);
				break;
			}
			struct pline p;
			memset(&p, 0, sizeof p);
			snprintf(p.file, sizeof p.file, "%s", names[i]);
			p.line = line;
			size_t len = (size_t)(nl - (b.ptr + pos));
			audit_sha256_hex(b.ptr + pos, len, p.sha);
			k_status prc =
				audit_period_parse(kslice_make(b.ptr + pos, len), pem, &p.doc);
			p.sig_ok = k_ok(prc);
			if (k_is(prc, K_E_VALIDATION))
				audit_verify_problem(
					v, "CHANGED period digest %s line %zu: not a period digest",
					names[i], line);
			else if (!p.sig_ok)
				audit_verify_problem(
					v,
					"SIGNATURE period digest %s line %zu: the signature does "
					"not verify (changed, or signed by another key)",
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
				audit_verify_problem(
					v,
					"REMOVED period digests before %s line %zu (up to %s): its "
					"predecessor is not in the folder",
					p->file, p->line, a);
			continue;
		}
		if (!json_is_string(prev)) {
			audit_verify_problem(v,
					     "INSERTED period digest %s line %zu: it starts a new "
					     "chain after %s line %zu",
					     p->file, p->line, q->file, q->line);
			continue;
		}
		char qa[32];
		when(pint(q, "toMs"), qa);
		if (json_integer_value(from) != pint(q, "toMs"))
			audit_verify_problem(v,
					     "MISSING period digests for %s..%s (between %s line "
					     "%zu and %s line %zu): removed",
					     qa, a, q->file, q->line, p->file, p->line);
		else if (strcmp(json_string_value(prev), q->sha) != 0)
			audit_verify_problem(v,
					     "CHANGED period digest %s line %zu: %s line %zu names "
					     "another SHA-256 for its predecessor",
					     q->file, q->line, p->file, p->line);
		if (strcmp(pstr(p, "kind"), "start") == 0 && strcmp(pstr(q, "kind"), "stop") != 0)
			fprintf(v->out,
				"note: kinko started at %s after a crash, kill or power cut (its "
				"last digest was at %s); records of that last period are vouched "
				"for by the log alone\n",
				b, qa);
	}
}

/* Where the log's records are, by seq, for the commitments. */
struct index {
	struct vrec **g;
	size_t n;
	uint64_t max_seq;
};

static struct vrec *find_seq(const struct index *ix, uint64_t seq)
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
	char file[AUDIT_NAME_MAX];
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
	struct vrec *r = find_seq(ix, seq);
	if (r != NULL) {
		if (strcmp(r->hash, pstr(p, "lastRecordHash")) != 0 && !r->flagged) {
			r->flagged = true;
			audit_verify_problem(v,
					     "CHANGED record seq %" PRIu64
					     " at %s line %zu: %s committed to another hash",
					     seq, audit_verify_fname(v, r), r->line, src);
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
	audit_verify_problem(v,
			     "TRUNCATED trail: the log ends at seq %" PRIu64
			     ", but %s committed to record seq %" PRIu64 " (in %s): %s removed",
			     ix->max_seq, t->src, t->seq, t->file[0] ? t->file : "?", range);
	if (t->file[0] != 0 && audit_verify_file_named(v, t->file) == NULL)
		audit_verify_problem(v,
				     "REMOVED file %s: %s names it as holding seq %" PRIu64
				     "; neither it nor its digest is in the folder",
				     t->file, t->src, t->seq);
}

/*
 * The witness: each of its digests must verify and be in the folder, and
 * the records they name must be there. Its lines may carry a prefix (a
 * syslog extract): the digest starts at the first '{'; lines without one
 * are skipped.
 */
static K_MUST_CHECK k_status check_witness(struct vstate *v, const char *path, const char *pem,
					   const struct plist *l, const struct index *ix,
					   struct tail *t)
{
	struct kbuf b;
	kbuf_init(&b, AUDIT_MAX_FILE);
	if (k_failed(audit_read_file(path, &b))) {
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
		k_status prc =
			brace == NULL
				? K_E_VALIDATION
				: audit_period_parse(
					  kslice_make(brace, len - (size_t)(brace - (b.ptr + pos))),
					  pem, &p.doc);
		pos += len + 1;
		if (k_is(prc, K_E_VALIDATION))
			continue;
		seen++;
		if (k_failed(prc)) {
			audit_verify_problem(
				v, "SIGNATURE witness line %zu: the signature does not verify",
				line);
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
		audit_verify_problem(
			v,
			"REMOVED period digests: the witness holds %zu that the folder lacks, the "
			"newest of %s (witness line %zu, naming seq %" PRIu64 ")",
			lacking, a, newest_line, newest_lacking_seq);
	}
	when(newest_ms, a);
	fprintf(v->out, "witness %s: %zu period digests%s%s\n", path, seen,
		seen ? ", the newest of " : "", seen ? a : "");
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
		warning(v, "WARNING: no period digests in the folder (written by a kinko build "
			   "before them, or removed): nothing commits to the end of the trail");
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
	warning(v,
		"WARNING: ENDS EARLY: the newest period digest (%s line %zu, seq %lld) is of %s, "
		"%lld s before %s: %s, or the records and digests after it were removed; %s",
		p->file, p->line, (long long)pint(p, "lastSeq"), a, (long long)(lag / 1000), b,
		strcmp(kind, "stop") == 0 ? "kinko was stopped cleanly then"
					  : "kinko stopped then without a clean shutdown (a crash, "
					    "kill or power cut)",
		witnessed ? "the witness holds nothing newer either"
			  : "these cannot be told apart without a witness (--witness FILE)");
}

k_status audit_verify_periods(struct vstate *v, const char *dir, const char *pem,
			      const struct audit_verify_options *o)
{
	struct plist l;
	memset(&l, 0, sizeof l);
	struct index ix;
	memset(&ix, 0, sizeof ix);
	k_status rc = load_periods(v, dir, pem, &l);
	ix.g = calloc(v->n_recs ? v->n_recs : 1, sizeof *ix.g);
	if (k_failed(rc) || ix.g == NULL) {
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
	qsort(ix.g, ix.n, sizeof *ix.g, audit_verify_cmp_seq);
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
	if (k_is(rc, K_E_NOT_FOUND))
		fprintf(v->out, "cannot read the witness %s\n", o->witness);
	report_tail(v, &ix, &t);
	if (k_ok(rc))
		check_end(v, &l, o->now_ms != 0 ? o->now_ms : kclock_now_ms(), o->witness != NULL);
	free(ix.g);
	plist_free(&l);
	return rc;
}
