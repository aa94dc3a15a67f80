/*
 * prune.c — audit retention (audit.h, audit_prune): sealed log files older
 * than a cut-off leave the log folder, into an archive folder or for good,
 * and the folder keeps a checkpoint so that what remains still verifies.
 *
 * Only a run of the oldest files goes, never the file being written and
 * never the newest sealed one (the writer resumes the chain from its
 * digest). The checkpoint is the last pruned file's own digest, byte for
 * byte (AUDIT_PRUNE_CHECKPOINT): it is signed with the audit key, it names
 * the last pruned record's seq and hash, and the next file's digest names
 * its SHA-256 as its predecessor's, so verify checks the remaining trail
 * from there. It is written before any file moves: an interrupted prune
 * leaves files that the checkpoint covers, which verify accepts, and a
 * second run finishes the work.
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/internal.h"
#include "core/banned.h"

#define PRUNE_PATH_MAX 1200

static void join(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Writes data to dir/name through a temporary file, fsync'd, then renamed. */
static K_MUST_CHECK k_status write_durable(const char *dir, const char *name, struct kslice data)
{
	char tmp[PRUNE_PATH_MAX + 8], path[PRUNE_PATH_MAX];
	join(path, sizeof path, dir, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ENSURE(fd >= 0, K_E_INTERNAL);
	size_t off = 0;
	while (off < data.len) {
		ssize_t w = write(fd, data.ptr + off, data.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	bool ok = off == data.len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return K_E_INTERNAL;
	}
	fsync_dir(dir);
	return K_OK;
}

/* Copies src/name to dst/name (durably); the archive must not hold another file of that name. */
static K_MUST_CHECK k_status copy_into(const char *src, const char *dst, const char *name,
				       size_t max)
{
	char from[PRUNE_PATH_MAX], to[PRUNE_PATH_MAX];
	join(from, sizeof from, src, name);
	join(to, sizeof to, dst, name);
	struct kbuf b, have;
	kbuf_init(&b, max);
	kbuf_init(&have, max);
	k_status rc = audit_read_file(from, &b);
	if (k_ok(rc) && k_ok(audit_read_file(to, &have)))
		/* Already archived by an interrupted run: the same bytes, or a clash. */
		rc = have.len == b.len && memcmp(have.ptr, b.ptr, b.len) == 0 ? K_OK
									      : K_E_ALREADY_EXISTS;
	else if (k_ok(rc))
		rc = write_durable(dst, name, kslice_make(b.ptr, b.len));
	kbuf_release(&b);
	kbuf_release(&have);
	return rc;
}

/* A rename when both folders are on one file system and the name is free; else a copy. */
static K_MUST_CHECK k_status move_into(const char *src, const char *dst, const char *name,
				       size_t max)
{
	char from[PRUNE_PATH_MAX], to[PRUNE_PATH_MAX];
	join(from, sizeof from, src, name);
	join(to, sizeof to, dst, name);
	if (access(to, F_OK) != 0 && rename(from, to) == 0) {
		fsync_dir(dst);
		fsync_dir(src);
		return K_OK;
	}
	return copy_into(src, dst, name, max);
}

/* The sealed files that may go: the oldest run sealed before the cut-off, but the newest sealed. */
static size_t prunable(const char *dir, char **names, size_t n, int64_t cutoff)
{
	size_t newest_sealed = n, k = 0;
	for (size_t i = 0; i < n; i++) {
		char dname[AUDIT_NAME_MAX + 8], path[PRUNE_PATH_MAX];
		audit_digest_name_of(names[i], dname, sizeof dname);
		join(path, sizeof path, dir, dname);
		if (access(path, F_OK) == 0)
			newest_sealed = i;
	}
	for (; k < newest_sealed; k++) {
		char dname[AUDIT_NAME_MAX + 8], path[PRUNE_PATH_MAX];
		audit_digest_name_of(names[k], dname, sizeof dname);
		join(path, sizeof path, dir, dname);
		struct kbuf b;
		kbuf_init(&b, AUDIT_DIGEST_FILE_MAX);
		json_t *d = NULL;
		if (k_ok(audit_read_file(path, &b)))
			d = json_loadb((const char *)b.ptr, b.len, 0, NULL);
		kbuf_release(&b);
		int64_t sealed = 0;
		bool old = audit_parse_iso8601(json_string_value(json_object_get(d, "sealedAt")),
					       &sealed) &&
			   sealed < cutoff;
		json_decref(d);
		if (!old)
			break;
	}
	return k;
}

/* Moves (or removes) one log file and its digest. */
static K_MUST_CHECK k_status take_out(const struct audit_prune_options *o, const char *name,
				      FILE *out)
{
	char dname[AUDIT_NAME_MAX + 8], path[PRUNE_PATH_MAX], dpath[PRUNE_PATH_MAX];
	audit_digest_name_of(name, dname, sizeof dname);
	join(path, sizeof path, o->dir, name);
	join(dpath, sizeof dpath, o->dir, dname);
	if (o->archive != NULL) {
		GUARD(move_into(o->dir, o->archive, name, AUDIT_MAX_FILE));
		GUARD(move_into(o->dir, o->archive, dname, AUDIT_DIGEST_FILE_MAX));
	}
	ENSURE(unlink(path) == 0 || errno == ENOENT, K_E_INTERNAL);
	ENSURE(unlink(dpath) == 0 || errno == ENOENT, K_E_INTERNAL);
	fprintf(out, "%s %s\n", o->archive != NULL ? "archived" : "removed", name);
	return K_OK;
}

/* The archive folder, with the public key beside the files so that it verifies on its own. */
static K_MUST_CHECK k_status prepare_archive(const char *dir, const char *archive, FILE *out)
{
	if (mkdir(archive, 0700) != 0 && errno != EEXIST) {
		fprintf(out, "cannot create the archive folder %s: %s\n", archive, strerror(errno));
		return K_E_INTERNAL;
	}
	k_status rc = copy_into(dir, archive, AUDIT_PUBLIC_KEY_FILE, AUDIT_PEM_FILE_MAX);
	if (k_is(rc, K_E_ALREADY_EXISTS)) {
		fprintf(out, "the archive %s holds another audit key's %s\n", archive,
			AUDIT_PUBLIC_KEY_FILE);
		return rc;
	}
	if (k_failed(rc))
		fprintf(out, "cannot copy %s into %s\n", AUDIT_PUBLIC_KEY_FILE, archive);
	return rc;
}

/* The checkpoint: the last pruned file's digest, byte for byte. */
static K_MUST_CHECK k_status write_checkpoint(const char *dir, const char *last, FILE *out)
{
	char dname[AUDIT_NAME_MAX + 8], path[PRUNE_PATH_MAX];
	audit_digest_name_of(last, dname, sizeof dname);
	join(path, sizeof path, dir, dname);
	struct kbuf b;
	kbuf_init(&b, AUDIT_DIGEST_FILE_MAX);
	k_status rc = audit_read_file(path, &b);
	if (k_ok(rc))
		rc = write_durable(dir, AUDIT_PRUNE_CHECKPOINT, kslice_make(b.ptr, b.len));
	kbuf_release(&b);
	if (k_failed(rc))
		fprintf(out, "cannot write the checkpoint %s/%s\n", dir, AUDIT_PRUNE_CHECKPOINT);
	return rc;
}

long audit_prune(const struct audit_prune_options *o, FILE *out)
{
	char **names = NULL;
	size_t n = 0;
	if (k_failed(audit_list_logs(o->dir, &names, &n))) {
		fprintf(out, "cannot read the folder %s\n", o->dir);
		return -1;
	}
	size_t k = prunable(o->dir, names, n, o->now - o->older_than_s);
	k_status rc = K_OK;
	if (k > 0 && o->archive != NULL)
		rc = prepare_archive(o->dir, o->archive, out);
	if (k > 0 && k_ok(rc))
		rc = write_checkpoint(o->dir, names[k - 1], out);
	for (size_t i = 0; i < k && k_ok(rc); i++) {
		rc = take_out(o, names[i], out);
		if (k_failed(rc))
			fprintf(out, "cannot %s %s: %s\n", o->archive ? "archive" : "remove",
				names[i],
				k_is(rc, K_E_ALREADY_EXISTS)
					? "the archive holds another file of that name"
					: strerror(errno));
	}
	if (k_ok(rc) && k == 0)
		fprintf(out,
			"nothing to prune: no sealed file but the newest is older than %lld "
			"days\n",
			(long long)(o->older_than_s / 86400));
	else if (k_ok(rc))
		fprintf(out, "pruned %zu files; the trail in %s now starts after %s\n", k, o->dir,
			names[k - 1]);
	audit_free_names(names, n);
	return k_ok(rc) ? (long)k : -1;
}
