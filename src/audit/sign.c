/*
 * sign.c — the audit digest key: Ed25519 through OpenSSL's EVP API.
 *
 * The private key is 32 raw bytes in a file of mode 0600 in the data
 * folder. It is read into ksecret memory and handed to OpenSSL; the file
 * is created with O_EXCL so two servers never race to different keys.
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "core/secret.h"
#include "core/banned.h"

#define ED25519_LEN 32

struct audit_signer {
	EVP_PKEY *pkey;
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
static k_status fingerprint(EVP_PKEY *pkey, char out[65])
{
	uint8_t pub[ED25519_LEN], md[32];
	size_t n = sizeof pub;
	unsigned int mdlen = 0;
	ENSURE(EVP_PKEY_get_raw_public_key(pkey, pub, &n) == 1 && n == ED25519_LEN, K_E_INTERNAL);
	ENSURE(EVP_Digest(pub, n, md, &mdlen, EVP_sha256(), NULL) == 1, K_E_INTERNAL);
	hex(md, 32, out);
	return K_OK;
}

static k_status read_key(const char *path, struct ksecret *sk, struct kbuf *msg)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		kbuf_note(msg, "cannot open %s: %s", path, strerror(errno));
		return K_E_INTERNAL;
	}
	struct stat st;
	k_status rc = K_OK;
	if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0 || st.st_size != ED25519_LEN) {
		kbuf_note(msg, "%s must be a %d-byte file of mode 0600", path, ED25519_LEN);
		rc = K_E_INTERNAL;
	} else if (read(fd, ksecret_bytes(sk), ED25519_LEN) != ED25519_LEN) {
		kbuf_note(msg, "cannot read %s", path);
		rc = K_E_INTERNAL;
	}
	close(fd);
	return rc;
}

static k_status create_key(const char *path, struct ksecret *sk, struct kbuf *msg)
{
	if (RAND_priv_bytes(ksecret_bytes(sk), ED25519_LEN) != 1)
		return K_E_INTERNAL;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		kbuf_note(msg, "cannot create %s: %s", path, strerror(errno));
		return K_E_INTERNAL;
	}
	bool ok = write(fd, ksecret_cbytes(sk), ED25519_LEN) == ED25519_LEN && fsync(fd) == 0;
	close(fd);
	if (!ok) {
		unlink(path);
		kbuf_note(msg, "cannot write %s", path);
		return K_E_INTERNAL;
	}
	return K_OK;
}

k_status audit_signer_open(const char *path, struct audit_signer **out, struct kbuf *msg)
{
	struct ksecret *sk = ksecret_new(ED25519_LEN);
	ENSURE(sk != NULL, K_E_INTERNAL);
	struct audit_signer *s = NULL;
	k_status rc = K_OK;
	if (access(path, F_OK) == 0)
		GUARD_GOTO(read_key(path, sk, msg));
	else
		GUARD_GOTO(create_key(path, sk, msg));
	s = calloc(1, sizeof *s);
	ENSURE_GOTO(s != NULL, K_E_INTERNAL);
	s->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, ksecret_cbytes(sk),
					       ED25519_LEN);
	ENSURE_GOTO(s->pkey != NULL, K_E_INTERNAL);
	GUARD_GOTO(fingerprint(s->pkey, s->fpr));
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
	EVP_PKEY_free(s->pkey);
	free(s);
}

const char *audit_signer_fingerprint(const struct audit_signer *s)
{
	return s->fpr;
}

k_status audit_signer_public_pem(const struct audit_signer *s, struct kbuf *out)
{
	BIO *b = BIO_new(BIO_s_mem());
	ENSURE(b != NULL, K_E_INTERNAL);
	k_status rc = K_E_INTERNAL;
	char *p = NULL;
	if (PEM_write_bio_PUBKEY(b, s->pkey) == 1) {
		long n = BIO_get_mem_data(b, &p);
		if (n > 0)
			rc = kbuf_append(out, p, (size_t)n);
	}
	BIO_free(b);
	return rc;
}

k_status audit_sign(const struct audit_signer *s, struct kslice msg, struct kbuf *sig_b64)
{
	uint8_t sig[64];
	size_t n = sizeof sig;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	ENSURE(ctx != NULL, K_E_INTERNAL);
	k_status rc = K_E_INTERNAL;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->pkey) == 1 &&
	    EVP_DigestSign(ctx, sig, &n, msg.ptr, msg.len) == 1)
		rc = kbuf_append_base64(sig_b64, sig, n);
	EVP_MD_CTX_free(ctx);
	return rc;
}

k_status audit_verify_signature(const char *public_pem, struct kslice msg, const char *sig_b64,
				char *fpr_out)
{
	BIO *b = BIO_new_mem_buf(public_pem, -1);
	ENSURE(b != NULL, K_E_INTERNAL);
	EVP_PKEY *pkey = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	BIO_free(b);
	ENSURE(pkey != NULL, K_E_VALIDATION);
	struct kbuf sig;
	kbuf_init(&sig, 128);
	k_status rc = K_E_KMS_INVALID_SIGNATURE;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx != NULL && kbuf_decode_base64(&sig, kslice_cstr(sig_b64)) == K_OK &&
	    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
	    EVP_DigestVerify(ctx, sig.ptr, sig.len, msg.ptr, msg.len) == 1)
		rc = K_OK;
	if (fpr_out != NULL && fingerprint(pkey, fpr_out) != K_OK)
		fpr_out[0] = 0;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	kbuf_release(&sig);
	return rc;
}
