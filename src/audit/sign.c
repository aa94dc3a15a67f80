/*
 * sign.c — the audit digest key: Ed25519 (crypto/ed25519.h).
 *
 * The private key (a 32-byte Ed25519 seed) is kept wrapped under the root
 * key (keystore_wrap: AES-256-GCM, bound by its AAD to this one purpose),
 * in a file of mode 0600 in the data folder:
 *   "KINKOAK1" (8 bytes) || iv (12) || wrapped seed (32) || tag (16)
 * so that whoever can read or write the data folder, or holds a backup of
 * it, cannot sign a rewritten trail without the root key as well; when
 * root keys move into a token, the seed moves with the keystore's wrap.
 * A file of 32 raw bytes (earlier builds) is wrapped and replaced on
 * first start, and the old file's bytes are overwritten. The seed is read
 * into ksecret memory and handed to crypto/; a new file is linked into
 * place only if none exists, so two servers never race to different keys.
 * Verifying needs only the public key.
 */
#include "audit/audit.h"
#include "audit/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/secret.h"
#include "crypto/crypto.h"
#include "crypto/ed25519.h"
#include "keystore/keystore.h"
#include "core/banned.h"

#define ED25519_LEN CRYPTO_ED25519_SEED_LEN
#define WRAPPED_MAGIC "KINKOAK1"
#define WRAPPED_MAGIC_LEN 8
#define WRAPPED_LEN (WRAPPED_MAGIC_LEN + CRYPTO_WRAP_OVERHEAD + ED25519_LEN)
/* The buffer the wrapped key is built in (WRAPPED_LEN, checked after). */
#define WRAPPED_BUF_MAX 256
/* The AAD: the wrapped seed unwraps only as the audit signing key. */
#define WRAP_AAD "kinko:audit-signing-key:v1"

struct audit_signer {
	struct crypto_ed25519 *key;
	char fpr[65];
};

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = 0;
}

/* SHA-256 of the raw public key, as hex. */
static K_MUST_CHECK k_status fingerprint(const struct crypto_ed25519 *key, char out[65])
{
	uint8_t pub[CRYPTO_ED25519_PUBLIC_LEN], md[CRYPTO_SHA256_LEN];
	GUARD(crypto_ed25519_public_raw(key, pub));
	GUARD(crypto_sha256(pub, sizeof pub, md));
	hex(md, 32, out);
	return K_OK;
}

/* fsyncs the folder that holds path, so a rename or link into it is durable. */
static void fsync_parent(const char *path)
{
	char dir[1024];
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/*
 * Writes the seed, wrapped, to path: under a temporary name first, then
 * linked into place (exclusive: fails if path exists) or renamed over it.
 */
static K_MUST_CHECK k_status write_wrapped(const char *path, const struct ksecret *sk,
					   bool exclusive, struct kbuf *msg)
{
	struct kbuf w;
	kbuf_init(&w, WRAPPED_BUF_MAX);
	char tmp[1100];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	k_status rc = kbuf_append(&w, WRAPPED_MAGIC, WRAPPED_MAGIC_LEN);
	if (k_ok(rc))
		rc = keystore_wrap(KSLICE_LIT(WRAP_AAD), sk, &w);
	if (k_failed(rc) || w.len != WRAPPED_LEN) {
		kbuf_note(msg, "cannot wrap the audit signing key under the root key");
		kbuf_release(&w);
		return K_E_INTERNAL;
	}
	(void)unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	bool ok = fd >= 0 && write(fd, w.ptr, w.len) == (ssize_t)w.len && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	kbuf_release(&w);
	if (ok && exclusive) {
		ok = link(tmp, path) == 0;
		(void)unlink(tmp);
	} else if (ok) {
		ok = rename(tmp, path) == 0;
	}
	if (!ok) {
		kbuf_note(msg, "cannot write %s: %s", path, strerror(errno));
		(void)unlink(tmp);
		return K_E_INTERNAL;
	}
	fsync_parent(path);
	return K_OK;
}

/*
 * An earlier build's raw seed: wraps it and replaces the file, then
 * overwrites the old file's bytes (still open here) so the raw seed does
 * not stay in its blocks. On a copy-on-write file system or an SSD the
 * old blocks may survive in places kinko cannot reach.
 */
static K_MUST_CHECK k_status migrate_raw(const char *path, int fd, struct ksecret *sk,
					 struct kbuf *msg)
{
	if (k_failed(ksecret_pread(sk, fd, 0))) {
		kbuf_note(msg, "cannot read %s", path);
		return K_E_INTERNAL;
	}
	int old = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	k_status rc = write_wrapped(path, sk, false, msg);
	if (k_ok(rc) && old >= 0) {
		static const uint8_t zero[ED25519_LEN];
		if (pwrite(old, zero, sizeof zero, 0) != (ssize_t)sizeof zero || fsync(old) != 0)
			LOG_WARN("audit: could not overwrite the raw signing key's old bytes");
	}
	if (old >= 0)
		close(old);
	if (k_ok(rc))
		LOG_INFO("audit: the signing key in %s was stored raw; it is now wrapped under the "
			 "root key",
			 path);
	return rc;
}

static K_MUST_CHECK k_status read_wrapped(const char *path, int fd, struct ksecret **out,
					  struct kbuf *msg)
{
	uint8_t buf[WRAPPED_LEN];
	if (pread(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf ||
	    memcmp(buf, WRAPPED_MAGIC, WRAPPED_MAGIC_LEN) != 0) {
		kbuf_note(msg, "%s is not a wrapped audit signing key", path);
		return K_E_INTERNAL;
	}
	struct ksecret *sk = NULL;
	if (k_failed(keystore_unwrap(
		    KSLICE_LIT(WRAP_AAD),
		    kslice_make(buf + WRAPPED_MAGIC_LEN, sizeof buf - WRAPPED_MAGIC_LEN), &sk)) ||
	    ksecret_len(sk) != ED25519_LEN) {
		ksecret_free(sk);
		kbuf_note(msg, "the audit signing key in %s does not unwrap under this root key",
			  path);
		return K_E_INTERNAL;
	}
	*out = sk;
	return K_OK;
}

/* Loads the seed from path (migrating a raw one), or makes a new one there. */
static K_MUST_CHECK k_status load_seed(const char *path, struct ksecret **out, struct kbuf *msg)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		struct ksecret *sk = crypto_random_secret(ED25519_LEN);
		ENSURE(sk != NULL, K_E_INTERNAL);
		if (k_failed(write_wrapped(path, sk, true, msg))) {
			ksecret_free(sk);
			return K_E_INTERNAL;
		}
		*out = sk;
		return K_OK;
	}
	if (fd < 0) {
		kbuf_note(msg, "cannot open %s: %s", path, strerror(errno));
		return K_E_INTERNAL;
	}
	struct stat st;
	k_status rc = K_E_INTERNAL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
		kbuf_note(msg, "%s must be a regular file of mode 0600", path);
	} else if (st.st_size == ED25519_LEN) {
		struct ksecret *sk = ksecret_new(ED25519_LEN);
		rc = sk != NULL ? migrate_raw(path, fd, sk, msg) : K_E_INTERNAL;
		if (k_ok(rc))
			*out = sk;
		else
			ksecret_free(sk);
	} else if (st.st_size == WRAPPED_LEN) {
		rc = read_wrapped(path, fd, out, msg);
	} else {
		kbuf_note(msg, "%s is not an audit signing key (%lld bytes)", path,
			  (long long)st.st_size);
	}
	close(fd);
	return rc;
}

k_status audit_signer_open(const char *path, struct audit_signer **out, struct kbuf *msg)
{
	struct ksecret *sk = NULL;
	GUARD(load_seed(path, &sk, msg));
	k_status rc = K_OK;
	struct audit_signer *s = calloc(1, sizeof *s);
	ENSURE_GOTO(s != NULL, K_E_INTERNAL);
	GUARD_GOTO(crypto_ed25519_from_seed(sk, &s->key));
	GUARD_GOTO(fingerprint(s->key, s->fpr));
	*out = s;
	s = NULL;
out:
	audit_signer_free(s);
	ksecret_free(sk);
	return rc;
}

void audit_signer_free(struct audit_signer *s)
{
	if (s == NULL)
		return;
	crypto_ed25519_free(s->key);
	free(s);
}

const char *audit_signer_fingerprint(const struct audit_signer *s)
{
	return s->fpr;
}

k_status audit_signer_public_pem(const struct audit_signer *s, struct kbuf *out)
{
	return crypto_ed25519_public_pem(s->key, out);
}

k_status audit_sign(const struct audit_signer *s, struct kslice msg, struct kbuf *sig_b64)
{
	uint8_t sig[CRYPTO_ED25519_SIG_LEN];
	GUARD(crypto_ed25519_sign(s->key, msg, sig));
	return kbuf_append_base64(sig_b64, sig, sizeof sig);
}

/* A signature that is not base64 is as invalid as one that does not verify. */
k_status audit_verify_signature(const char *public_pem, struct kslice msg, const char *sig_b64,
				char *fpr_out)
{
	struct crypto_ed25519 *key = NULL;
	GUARD(crypto_ed25519_from_pem(public_pem, &key));
	struct kbuf sig;
	kbuf_init(&sig, AUDIT_SIGNATURE_MAX);
	k_status rc = K_E_KMS_INVALID_SIGNATURE;
	bool valid = false;
	if (k_ok(kbuf_decode_base64(&sig, kslice_cstr(sig_b64))) &&
	    k_ok(crypto_ed25519_verify(key, msg, kbuf_slice(&sig), &valid)) && valid)
		rc = K_OK;
	if (fpr_out != NULL && k_failed(fingerprint(key, fpr_out)))
		fpr_out[0] = 0;
	crypto_ed25519_free(key);
	kbuf_release(&sig);
	return rc;
}
