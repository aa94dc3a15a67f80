/*
 * fileio.c — the audit folder's files: listing, reading, hashing to hex,
 * and the durable writes the writer builds on (whole writes at an offset,
 * small files replaced atomically).
 */
#include "audit/audit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/internal.h"
#include "crypto/crypto.h"
#include "core/banned.h"

void audit_hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = 0;
}

void audit_sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t md[CRYPTO_SHA256_LEN];
	if (k_failed(crypto_sha256(p, n, md)))
		memset(md, 0, sizeof md);
	audit_hex(md, 32, out);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && strcmp(s + n - m, suf) == 0;
}

k_status audit_list_files(const char *dir, const char *prefix, const char *suffix, char ***names,
			  size_t *n)
{
	*names = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	ENSURE(d != NULL, K_E_NOT_FOUND);
	size_t cap = 0;
	k_status rc = K_OK;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 ||
		    !has_suffix(de->d_name, suffix))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(*names, cap * sizeof *nn);
			ENSURE_GOTO(nn != NULL, K_E_INTERNAL);
			*names = nn;
		}
		(*names)[*n] = strdup(de->d_name);
		ENSURE_GOTO((*names)[*n] != NULL, K_E_INTERNAL);
		(*n)++;
	}
out:
	closedir(d);
	if (k_failed(rc)) {
		audit_free_names(*names, *n);
		*names = NULL;
		*n = 0;
	}
	return rc;
}

k_status audit_list_logs(const char *dir, char ***names, size_t *n)
{
	GUARD(audit_list_files(dir, AUDIT_LOG_PREFIX, AUDIT_LOG_SUFFIX, names, n));
	if (*n > 0)
		qsort(*names, *n, sizeof **names, cmp_names);
	return K_OK;
}

void audit_free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

k_status audit_read_file(const char *path, struct kbuf *buf)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ENSURE(fd >= 0, K_E_NOT_FOUND);
	k_status rc = K_OK;
	char chunk[65536];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = K_E_INTERNAL;
			break;
		}
		if (r == 0)
			break;
		rc = kbuf_append(buf, chunk, (size_t)r);
		if (k_failed(rc))
			break;
	}
	close(fd);
	return rc;
}

void audit_path_of(const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", audit_w.dir, name);
}

void audit_fsync_dir(void)
{
	int fd = open(audit_w.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* Writes all of p at off; on failure, errno says why (a short write: ENOSPC). Logs nothing. */
k_status audit_pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = ENOSPC;
			return K_E_INTERNAL;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return K_OK;
}

/* Writes a small file durably under a temporary name, then renames it. */
k_status audit_write_file_atomic(const char *name, struct kslice data)
{
	char path[700], tmp[720];
	audit_path_of(name, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ENSURE(fd >= 0, K_E_INTERNAL);
	k_status rc = audit_pwrite_all(fd, data.ptr, data.len, 0);
	if (k_ok(rc) && fsync(fd) != 0)
		rc = K_E_INTERNAL;
	close(fd);
	if (k_ok(rc) && rename(tmp, path) != 0)
		rc = K_E_INTERNAL;
	if (k_failed(rc))
		unlink(tmp);
	else
		audit_fsync_dir();
	return rc;
}
