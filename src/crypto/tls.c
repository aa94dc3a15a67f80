/*
 * tls.c — loading the HTTP server's TLS private key (see tls.h).
 */
#include "crypto/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/banned.h"

/*
 * Reads up to `cap` bytes from fd into p; the number read is left in *got.
 * A file that changes size while it is read is taken as it was when the
 * read ended: the PEM parser sees whatever precedes the first NUL.
 */
static K_MUST_CHECK k_status read_all(int fd, const char *path, uint8_t *p, size_t cap, size_t *got)
{
	size_t n = 0;
	while (n < cap) {
		ssize_t r = read(fd, p + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			LOG_ERROR("cannot read %s: %s", path, strerror(errno));
			return K_E_VALIDATION;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*got = n;
	return K_OK;
}

/*
 * The file's size decides the secret's: one more byte than the file, left
 * zero, so that the PEM string is terminated without a second copy.
 */
k_status crypto_tls_key_load(const char *path, struct ksecret **out)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		LOG_ERROR("cannot open %s: %s", path, strerror(errno));
		return K_E_VALIDATION;
	}
	k_status rc = K_E_VALIDATION;
	struct ksecret *s = NULL;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		LOG_ERROR("cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (st.st_size >= (off_t)CRYPTO_TLS_MAX_PEM) {
		LOG_ERROR("%s is larger than %u bytes", path, CRYPTO_TLS_MAX_PEM);
		goto out;
	}
	if (st.st_size <= 0) {
		LOG_ERROR("%s is empty", path);
		goto out;
	}
	size_t size = (size_t)st.st_size, got = 0;
	s = ksecret_new(size + 1);
	if (s == NULL) {
		rc = K_E_INTERNAL;
		goto out;
	}
	if (k_failed(read_all(fd, path, ksecret_bytes(s), size, &got)))
		goto out;
	if (got == 0) {
		LOG_ERROR("%s is empty", path);
		goto out;
	}
	*out = s;
	s = NULL;
	rc = K_OK;
out:
	ksecret_free(s);
	close(fd);
	return rc;
}

const char *crypto_tls_key_pem(const struct ksecret *key)
{
	return (const char *)ksecret_cbytes(key);
}
