/*
 * store.c — `kinko store copy`: every record from one store to another,
 * between any two backends (sqlite: and postgresql:// both ways).
 *
 * The copy walks the source kind by kind (storage_kinds), every namespace
 * in order, and writes batches of records to the target, each batch one
 * atomic apply. Documents are copied byte for byte; record versions
 * restart at 1 on the target (they serve optimistic concurrency only:
 * nothing kinko keeps refers to them). The store's key check value is a
 * record like any other, so the target keeps the same root of trust.
 * Afterwards every kind is counted again on both sides.
 *
 * Servers must not write to either store meanwhile: a SQLite store is
 * locked the way `kinko serve` locks it, so a running server on it stops
 * the copy; for PostgreSQL, stop the nodes first (docs/CLUSTER.md).
 */
#include "cli/store.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/startup.h"
#include "storage/storage.h"
#include "core/banned.h"

/* Records per atomic batch on the target, and their bytes. */
#define BATCH_RECORDS 200u
#define BATCH_BYTES (8u * 1024u * 1024u)

struct batch {
	struct storage *to;
	int64_t expect; /* STORAGE_ABSENT, or STORAGE_ANY with --force */
	const char *kind;
	struct storage_op ops[BATCH_RECORDS];
	char *owned[BATCH_RECORDS][3]; /* ns, id, doc bytes of each op */
	size_t n;
	size_t bytes;
	unsigned long long copied;
};

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		for (int j = 0; j < 3; j++)
			free(b->owned[i][j]);
	b->n = 0;
	b->bytes = 0;
}

static K_MUST_CHECK k_status batch_flush(struct batch *b)
{
	k_status rc = b->n > 0 ? storage_apply(b->to, b->ops, b->n) : K_OK;
	if (k_ok(rc))
		b->copied += b->n;
	batch_clear(b);
	return rc;
}

static K_MUST_CHECK k_status copy_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				     int64_t version)
{
	(void)version;
	struct batch *b = arg;
	if (b->n == BATCH_RECORDS || b->bytes + doc.len > BATCH_BYTES)
		GUARD(batch_flush(b));
	char *n = strdup(ns), *i = strdup(id), *d = malloc(doc.len > 0 ? doc.len : 1);
	if (n == NULL || i == NULL || d == NULL) {
		free(n);
		free(i);
		free(d);
		return K_E_INTERNAL;
	}
	if (doc.len > 0)
		memcpy(d, doc.ptr, doc.len);
	b->owned[b->n][0] = n;
	b->owned[b->n][1] = i;
	b->owned[b->n][2] = d;
	b->ops[b->n] = (struct storage_op){.op = STORAGE_PUT,
					   .kind = b->kind,
					   .ns = n,
					   .id = i,
					   .doc = kslice_make(d, doc.len),
					   .expect = b->expect};
	b->n++;
	b->bytes += doc.len;
	return K_OK;
}

/* Up to 64 kinds, copied out of the callback. */
struct kinds {
	char name[64][STORAGE_MAX_NAME + 1];
	size_t n;
};

static K_MUST_CHECK k_status kinds_cb(void *arg, const char *kind)
{
	struct kinds *k = arg;
	ENSURE(k->n < 64, K_E_LIMIT_EXCEEDED);
	snprintf(k->name[k->n++], STORAGE_MAX_NAME + 1, "%s", kind);
	return K_OK;
}

static K_MUST_CHECK k_status count_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				      int64_t version)
{
	(void)ns;
	(void)id;
	(void)doc;
	(void)version;
	(*(unsigned long long *)arg)++;
	return K_OK;
}

/* Opens a store for the copy, locking a SQLite store's folder as serve does. */
static int open_store(const char *role, const char *url, bool must_exist, int *lock_fd,
		      struct storage **out)
{
	char dir[4608];
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	int ret = 0;
	if (k_ok(storage_local_dir(url, dir, sizeof dir))) {
		struct stat sb;
		if (must_exist && stat(dir, &sb) != 0) {
			fprintf(stderr, "kinko store copy: the %s store %s does not exist\n", role,
				url);
			ret = 1;
		} else if ((mkdir(dir, 0700) != 0 && errno != EEXIST) ||
			   k_failed(startup_lock_dir(dir, lock_fd, &msg))) {
			fprintf(stderr, "kinko store copy: %s store: %s\n", role,
				kbuf_cstr(&msg)[0] ? kbuf_cstr(&msg) : "cannot lock its folder");
			ret = 1;
		}
	}
	if (ret == 0 && k_failed(storage_open(url, out, &msg))) {
		fprintf(stderr, "kinko store copy: %s store: %s\n", role, kbuf_cstr(&msg));
		ret = 1;
	}
	kbuf_release(&msg);
	return ret;
}

/* Copies one kind, then counts it on both sides. */
static int copy_kind(struct storage *from, struct storage *to, const char *kind, bool force,
		     unsigned long long *total)
{
	struct batch *b = calloc(1, sizeof *b);
	if (b == NULL)
		return 1;
	b->to = to;
	b->kind = kind;
	b->expect = force ? STORAGE_ANY : STORAGE_ABSENT;
	k_status rc = storage_list(from, kind, NULL, NULL, NULL, 0, copy_cb, b);
	if (k_ok(rc))
		rc = batch_flush(b);
	batch_clear(b);
	unsigned long long copied = b->copied, n_from = 0, n_to = 0;
	free(b);
	if (k_failed(rc)) {
		fprintf(stderr, "kinko store copy: copying the %s records failed: %s%s\n", kind,
			k_status_name(rc),
			k_is(rc, K_E_CONFLICT) ? " (the target already holds one of them)" : "");
		return 1;
	}
	if (k_failed(storage_list(from, kind, NULL, NULL, NULL, 0, count_cb, &n_from)) ||
	    k_failed(storage_list(to, kind, NULL, NULL, NULL, 0, count_cb, &n_to)) ||
	    n_from != copied || (!force && n_to != copied)) {
		fprintf(stderr,
			"kinko store copy: %s: copied %llu records, the source now holds %llu and "
			"the target %llu (was a server writing?)\n",
			kind, copied, n_from, n_to);
		return 1;
	}
	printf("  %-16s %llu\n", kind, copied);
	*total += copied;
	return 0;
}

static int store_copy(const char *from_url, const char *to_url, bool force)
{
	struct storage *from = NULL, *to = NULL;
	int from_lock = -1, to_lock = -1;
	struct kinds *src = calloc(1, sizeof *src), *dst = calloc(1, sizeof *dst);
	unsigned long long total = 0;
	int ret = src == NULL || dst == NULL;
	if (ret == 0)
		ret = open_store("source", from_url, true, &from_lock, &from);
	if (ret == 0)
		ret = open_store("target", to_url, false, &to_lock, &to);
	if (ret == 0 && (k_failed(storage_kinds(from, kinds_cb, src)) ||
			 k_failed(storage_kinds(to, kinds_cb, dst)))) {
		fprintf(stderr, "kinko store copy: cannot list the kinds of records\n");
		ret = 1;
	}
	if (ret == 0 && dst->n > 0 && !force) {
		fprintf(stderr,
			"kinko store copy: the target %s already holds records; copy into an empty "
			"store, or give --force to overwrite the records both hold\n",
			to_url);
		ret = 1;
	}
	for (size_t i = 0; ret == 0 && i < src->n; i++)
		ret = copy_kind(from, to, src->name[i], force, &total);
	if (ret == 0)
		printf("kinko store copy: %llu records copied\n", total);
	storage_close(from);
	storage_close(to);
	if (from_lock >= 0)
		startup_unlock_dir(from_lock);
	if (to_lock >= 0)
		startup_unlock_dir(to_lock);
	free(src);
	free(dst);
	return ret;
}

static void store_usage(void)
{
	fprintf(stderr, "usage: kinko store copy --from URL --to URL [--force]\n");
}

int cli_store(int argc, char **argv)
{
	const char *from = NULL, *to = NULL;
	bool force = false;
	if (argc < 1 || strcmp(argv[0], "copy") != 0) {
		store_usage();
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
			from = argv[++i];
		else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			to = argv[++i];
		else if (strcmp(argv[i], "--force") == 0)
			force = true;
		else {
			store_usage();
			return 2;
		}
	}
	if (from == NULL || to == NULL) {
		store_usage();
		return 2;
	}
	return store_copy(from, to, force);
}
