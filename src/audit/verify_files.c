/*
 * verify_files.c — layers 2 and 3 of `kinko audit verify` (verify.c):
 * each log file against its digest, then the sequence numbers and the
 * hash chain across all files.
 */
#include "audit/audit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/banned.h"

static K_MUST_CHECK k_status add_rec(struct vstate *v, const struct vrec *r)
{
	if (v->n_recs == v->cap_recs) {
		size_t cap = v->cap_recs ? v->cap_recs * 2 : 1024;
		struct vrec *nr = realloc(v->recs, cap * sizeof *nr);
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

/*
 * The file's bytes against its digest d (NULL: none). A file without one
 * is a problem unless it is the last (the one being written), whose
 * reserved zero bytes (earlier builds) are cut from b.
 */
static void check_against_digest(struct vstate *v, size_t i, json_t *d, struct kbuf *b)
{
	struct vfile *f = &v->files[i];
	if (d == NULL) {
		if (i + 1 == v->n_files) {
			fprintf(v->out,
				"note: %s is not sealed yet (the file being written); its records "
				"are checked by the chain only\n",
				f->name);
			/* Files of earlier builds may end in space reserved ahead (zero bytes). */
			while (b->len > 0 && b->ptr[b->len - 1] == 0)
				b->len--;
		} else
			audit_verify_problem(v,
					     "UNSIGNED file %s has no digest (its digest was "
					     "removed, or the file was inserted)",
					     f->name);
		return;
	}
	char sha[65] = "";
	if (dint(d, "kinkoDigestVersion") < 2)
		audit_sha256_hex(b->ptr, b->len, sha);
	json_int_t want = dint(d, "fileBytes");
	const char *want_sha = json_string_value(json_object_get(d, "fileSha256"));
	if ((json_int_t)b->len < want)
		audit_verify_problem(v,
				     "TRUNCATED file %s: %zu of the %lld bytes its digest signed",
				     f->name, b->len, (long long)want);
	else if ((json_int_t)b->len > want)
		audit_verify_problem(v, "CHANGED file %s: %zu bytes more than its digest signed",
				     f->name, b->len - (size_t)want);
	else if (dint(d, "kinkoDigestVersion") < 2 &&
		 (want_sha == NULL || strcmp(sha, want_sha) != 0))
		/* Version 1 digests also sign the file's SHA-256; from version 2 the chain does. */
		audit_verify_problem(
			v, "CHANGED file %s: its SHA-256 differs from its signed digest", f->name);
}

/*
 * Each node keeps its own trail (docs/CLUSTER.md, "Audit across nodes"):
 * every record that names a node must name the same one. Records written
 * before node ids existed name none and pass. The first stranger is
 * reported; the chain check reports the rest of the damage.
 */
static void check_node(struct vstate *v, const char *fname, size_t line, const char *node)
{
	if (node == NULL)
		return;
	if (v->node[0] == 0) {
		snprintf(v->node, sizeof v->node, "%.64s", node);
		return;
	}
	if (strcmp(v->node, node) == 0 || v->mixed_nodes)
		return;
	v->mixed_nodes = true;
	audit_verify_problem(
		v, "MIXED nodes: %s line %zu is a record of node %.64s in the trail of node %s",
		fname, line, node, v->node);
}

/* One line (len bytes at p, line number `line`) of file i as a record; names what is wrong with it. */
static void parse_record(struct vstate *v, size_t i, json_t *d, const uint8_t *p, size_t len,
			 size_t line, struct vrec *r)
{
	struct vfile *f = &v->files[i];
	memset(r, 0, sizeof *r);
	r->file = i;
	r->line = line;
	audit_sha256_hex(p, len, r->hash);
	json_t *j = json_loadb((const char *)p, len, 0, NULL);
	json_t *seq = json_object_get(j, "kinkoSeq");
	const char *prev = json_string_value(json_object_get(j, "kinkoPrev"));
	if (json_is_integer(seq) && json_integer_value(seq) > 0 && prev != NULL &&
	    json_is_object(json_object_get(j, "event"))) {
		r->seq = (uint64_t)json_integer_value(seq);
		snprintf(r->prev, sizeof r->prev, "%s", prev);
		check_node(v, f->name, line, json_string_value(json_object_get(j, "kinkoNode")));
	} else {
		audit_verify_problem(v, "CHANGED file %s line %zu: not a well-formed record",
				     f->name, line);
	}
	json_decref(j);
	if (d != NULL && r->seq != 0 &&
	    (r->seq < (uint64_t)dint(d, "firstSeq") || r->seq > (uint64_t)dint(d, "lastSeq")))
		audit_verify_problem(v,
				     "INSERTED record seq %" PRIu64
				     " at %s line %zu: outside the file's signed range %lld..%lld",
				     r->seq, f->name, line, (long long)dint(d, "firstSeq"),
				     (long long)dint(d, "lastSeq"));
}

/* Collects the records of file i (its bytes in b); its record count against its digest d. */
static K_MUST_CHECK k_status collect_records(struct vstate *v, size_t i, json_t *d,
					     const struct kbuf *b)
{
	struct vfile *f = &v->files[i];
	size_t pos = 0, line = 0;
	while (pos < b->len) {
		const uint8_t *nl = memchr(b->ptr + pos, '\n', b->len - pos);
		size_t len = nl ? (size_t)(nl - (b->ptr + pos)) : b->len - pos;
		line++;
		if (nl == NULL) {
			audit_verify_problem(
				v, "TRUNCATED file %s line %zu: the last record is incomplete",
				f->name, line);
			break;
		}
		struct vrec r;
		parse_record(v, i, d, b->ptr + pos, len, line, &r);
		GUARD(add_rec(v, &r));
		pos += len + 1;
	}
	if (d != NULL && pos >= b->len && (json_int_t)line != dint(d, "records"))
		audit_verify_problem(v, "CHANGED file %s: %zu records where its digest signed %lld",
				     f->name, line, (long long)dint(d, "records"));
	return K_OK;
}

/* Layer 2: each file against its digest; collects the records. */
k_status audit_verify_files(struct vstate *v, const char *dir)
{
	for (size_t i = 0; i < v->n_files; i++) {
		struct vfile *f = &v->files[i];
		char path[1200];
		snprintf(path, sizeof path, "%s/%s", f->dir != NULL ? f->dir : dir, f->name);
		struct kbuf b;
		kbuf_init(&b, AUDIT_MAX_FILE);
		f->exists = k_ok(audit_read_file(path, &b));
		json_t *d = f->digest;
		if (!f->exists) {
			kbuf_release(&b);
			if (d != NULL)
				audit_verify_problem(v,
						     "REMOVED file %s: its signed digest lists "
						     "%lld records (seq %lld..%lld)",
						     f->name, (long long)dint(d, "records"),
						     (long long)dint(d, "firstSeq"),
						     (long long)dint(d, "lastSeq"));
			continue;
		}
		check_against_digest(v, i, d, &b);
		GUARD(collect_records(v, i, d, &b));
		kbuf_release(&b);
	}
	return K_OK;
}

int audit_verify_cmp_seq(const void *a, const void *b)
{
	const struct vrec *x = *(struct vrec *const *)a, *y = *(struct vrec *const *)b;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->file != y->file ? (x->file < y->file ? -1 : 1)
				  : (x->line < y->line ? -1 : x->line > y->line);
}

const char *audit_verify_fname(struct vstate *v, const struct vrec *r)
{
	return v->files[r->file].name;
}

static void flag_changed(struct vstate *v, struct vrec *r)
{
	if (r->flagged)
		return;
	r->flagged = true;
	audit_verify_problem(v,
			     "CHANGED record seq %" PRIu64
			     " at %s line %zu: its hash no longer matches the chain",
			     r->seq, audit_verify_fname(v, r), r->line);
}

/* The range of seqs the log should hold: the records' own, widened by the digests'. */
static void expected_range(const struct vstate *v, struct vrec **by, size_t n, uint64_t *lo,
			   uint64_t *hi)
{
	*lo = n ? by[0]->seq : 0;
	*hi = n ? by[n - 1]->seq : 0;
	for (size_t i = 0; i < v->n_files; i++) {
		json_t *d = v->files[i].digest;
		if (d == NULL)
			continue;
		if (*lo == 0 || (uint64_t)dint(d, "firstSeq") < *lo)
			*lo = (uint64_t)dint(d, "firstSeq");
		if ((uint64_t)dint(d, "lastSeq") > *hi)
			*hi = (uint64_t)dint(d, "lastSeq");
	}
}

/* Picks the genuine record for each seq: the one that chains to its predecessor. */
static void pick_genuine(struct vstate *v, struct vrec **by, size_t n)
{
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
				audit_verify_problem(v,
						     "INSERTED record at %s line %zu: a second "
						     "record with seq %" PRIu64,
						     audit_verify_fname(v, by[k]), by[k]->line,
						     by[k]->seq);
		}
		prev_hash = by[pick]->hash;
		prev_seq = by[pick]->seq;
		i = j;
	}
}

/* Removed: seqs missing from the expected range [lo, hi]. */
static void report_removed(struct vstate *v, struct vrec **by, size_t n, uint64_t lo, uint64_t hi)
{
	uint64_t expect = lo;
	for (size_t k = 0; k < n; k++) {
		if (!by[k]->genuine)
			continue;
		if (by[k]->seq > expect) {
			if (by[k]->seq - 1 == expect)
				audit_verify_problem(
					v, "REMOVED record seq %" PRIu64 " (before %s line %zu)",
					expect, audit_verify_fname(v, by[k]), by[k]->line);
			else
				audit_verify_problem(v,
						     "REMOVED records seq %" PRIu64 "..%" PRIu64
						     " (before %s line %zu)",
						     expect, by[k]->seq - 1,
						     audit_verify_fname(v, by[k]), by[k]->line);
		}
		expect = by[k]->seq + 1;
	}
	if (n > 0 && hi >= expect)
		audit_verify_problem(
			v, "REMOVED records seq %" PRIu64 "..%" PRIu64 " (at the end of the log)",
			expect, hi);
}

/* Reordered: a genuine record that appears after one with a higher seq. */
static void report_reordered(struct vstate *v)
{
	uint64_t max_seen = 0;
	for (size_t k = 0; k < v->n_recs; k++) {
		struct vrec *r = &v->recs[k];
		if (!r->genuine)
			continue;
		if (r->seq < max_seen)
			audit_verify_problem(v,
					     "REORDERED record seq %" PRIu64
					     " at %s line %zu: it comes after seq %" PRIu64,
					     r->seq, audit_verify_fname(v, r), r->line, max_seen);
		else
			max_seen = r->seq;
	}
}

/* The chain: each genuine record (g, by seq) commits to its predecessor's hash. */
static void check_chain(struct vstate *v, struct vrec **g, size_t ng)
{
	for (size_t k = 0; k < ng; k++) {
		struct vrec *r = g[k];
		const char *want = NULL;
		struct vrec *pred = k > 0 && g[k - 1]->seq + 1 == r->seq ? g[k - 1] : NULL;
		if (pred != NULL)
			want = pred->hash;
		else if (r->seq == 1)
			want = "0000000000000000000000000000000000000000000000000000000000000000";
		else if (v->files[r->file].digest != NULL &&
			 (uint64_t)dint(v->files[r->file].digest, "firstSeq") == r->seq)
			want = json_string_value(
				json_object_get(v->files[r->file].digest, "startPrevHash"));
		if (want == NULL || strcmp(r->prev, want) == 0)
			continue;
		/* Which one changed: r, if r's own successor no longer matches r either. */
		const char *succ = NULL;
		if (k + 1 < ng && g[k + 1]->seq == r->seq + 1)
			succ = g[k + 1]->prev;
		else if (v->files[r->file].digest != NULL &&
			 (uint64_t)dint(v->files[r->file].digest, "lastSeq") == r->seq)
			succ = json_string_value(
				json_object_get(v->files[r->file].digest, "lastRecordHash"));
		if (pred != NULL && succ != NULL && strcmp(succ, r->hash) == 0)
			flag_changed(v, pred);
		else
			flag_changed(v, r);
	}
}

/* The last record of a sealed file must be the one its digest signed. */
static void check_file_ends(struct vstate *v, struct vrec **g, size_t ng)
{
	for (size_t k = 0; k < ng; k++) {
		struct vrec *r = g[k];
		json_t *d = v->files[r->file].digest;
		const char *lh = json_string_value(json_object_get(d, "lastRecordHash"));
		if (d != NULL && lh != NULL && (uint64_t)dint(d, "lastSeq") == r->seq &&
		    strcmp(lh, r->hash) != 0)
			flag_changed(v, r);
	}
}

/* Layer 3: sequence and chain across all files. */
void audit_verify_records(struct vstate *v)
{
	size_t n = 0;
	struct vrec **by = calloc(v->n_recs ? v->n_recs : 1, sizeof *by);
	if (by == NULL)
		return;
	for (size_t i = 0; i < v->n_recs; i++) {
		if (v->recs[i].seq != 0)
			by[n++] = &v->recs[i];
	}
	qsort(by, n, sizeof *by, audit_verify_cmp_seq);

	uint64_t lo, hi;
	expected_range(v, by, n, &lo, &hi);
	pick_genuine(v, by, n);
	report_removed(v, by, n, lo, hi);
	report_reordered(v);

	struct vrec **g = calloc(n ? n : 1, sizeof *g);
	size_t ng = 0;
	for (size_t k = 0; k < n; k++) {
		if (by[k]->genuine)
			g[ng++] = by[k];
	}
	check_chain(v, g, ng);
	check_file_ends(v, g, ng);
	free(g);
	free(by);
}
