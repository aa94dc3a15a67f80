/*
 * keystore.c — the file-backed root key (see keystore.h).
 */
#include "keystore/keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "crypto/crypto.h"
#include "keystore/pkcs11.h"
#include "core/banned.h"

#define ROOT_KEY_LEN 32

static struct ksecret *root;

static K_MUST_CHECK k_status read_root(int fd, const char *path, off_t size, struct kbuf *msg)
{
	struct ksecret *s = ksecret_new(ROOT_KEY_LEN);
	if (s == NULL)
		return K_E_INTERNAL;
	size_t got = 0;
	while (got < ROOT_KEY_LEN) {
		ssize_t n = read(fd, ksecret_bytes(s) + got, ROOT_KEY_LEN - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	uint8_t extra;
	if (got != ROOT_KEY_LEN || read(fd, &extra, 1) != 0) {
		ksecret_free(s);
		kbuf_note(msg,
			  "root key file %s holds %lld bytes; it must hold exactly 32 raw bytes, "
			  "not hex "
			  "or base64 (64 hex digits decode with: xxd -r -p HEXFILE > %s)",
			  path, (long long)size, path);
		return K_E_VALIDATION;
	}
	root = s;
	return K_OK;
}

static K_MUST_CHECK k_status create_root(const char *path, struct kbuf *msg)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		kbuf_note(msg, "cannot create root key file %s: %s", path, strerror(errno));
		return K_E_INTERNAL;
	}
	struct ksecret *s = crypto_random_secret(ROOT_KEY_LEN);
	if (s == NULL) {
		close(fd);
		unlink(path);
		return K_E_INTERNAL;
	}
	ssize_t n = write(fd, ksecret_cbytes(s), ROOT_KEY_LEN);
	if (n != ROOT_KEY_LEN || fsync(fd) != 0) {
		kbuf_note(msg, "cannot write root key file %s", path);
		close(fd);
		unlink(path);
		ksecret_free(s);
		return K_E_INTERNAL;
	}
	close(fd);
	root = s;
	LOG_INFO("created a new root key file %s", path);
	return K_OK;
}

k_status keystore_open_file(const char *path, bool create, struct kbuf *msg)
{
	if (strncmp(path, "pkcs11:", 7) == 0) /* the root key in a token (p11_root.c) */
		return keystore_p11_root_open(path, msg);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT && create)
		return create_root(path, msg);
	if (fd < 0 && errno == ENOENT) {
		kbuf_note(msg,
			  "there is no root key file %s; make one with: head -c 32 /dev/urandom > "
			  "%s && "
			  "chmod 600 %s (and keep a copy apart: without it nothing kinko stored "
			  "can be "
			  "decrypted)",
			  path, path, path);
		return K_E_INTERNAL;
	}
	if (fd < 0) {
		kbuf_note(msg, "cannot open root key file %s: %s", path, strerror(errno));
		return K_E_INTERNAL;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
		close(fd);
		kbuf_note(msg,
			  "root key file %s must be a regular file of mode 0600 (chmod 600 %s)",
			  path, path);
		return K_E_VALIDATION;
	}
	k_status rc = read_root(fd, path, st.st_size, msg);
	close(fd);
	return rc;
}

k_status keystore_wrap(struct kslice aad, const struct ksecret *material, struct kbuf *out)
{
	if (keystore_p11_root_active())
		return keystore_p11_root_wrap(aad, material, out);
	ENSURE(root != NULL, K_E_INTERNAL);
	return crypto_wrap(root, aad, material, out);
}

k_status keystore_unwrap(struct kslice aad, struct kslice wrapped, struct ksecret **out)
{
	if (keystore_p11_root_active())
		return keystore_p11_root_unwrap(aad, wrapped, out);
	ENSURE(root != NULL, K_E_INTERNAL);
	return crypto_unwrap(root, aad, wrapped, out);
}

k_status keystore_check_value(struct kbuf *out)
{
	uint8_t kcv[CRYPTO_CHECK_VALUE_LEN];
	k_status rc = K_E_INTERNAL;
	if (keystore_p11_root_active())
		rc = keystore_p11_root_check_value(kcv);
	else if (root != NULL)
		rc = crypto_check_value(root, kcv);
	if (k_ok(rc))
		rc = kbuf_append_hex(out, kcv, sizeof kcv);
	crypto_wipe(kcv, sizeof kcv);
	return rc;
}

k_status keystore_check_value_matches(struct kslice hex)
{
	struct kbuf mine;
	kbuf_init(&mine, KEYSTORE_CHECK_VALUE_HEX);
	k_status rc = keystore_check_value(&mine);
	if (k_ok(rc) && (hex.len != mine.len || !crypto_memeq(hex.ptr, mine.ptr, mine.len)))
		rc = K_E_VALIDATION;
	kbuf_release(&mine);
	return rc;
}

void keystore_close(void)
{
	keystore_p11_root_close();
	ksecret_free(root);
	root = NULL;
}
