/*
 * x509.c — the self-signed development certificate (see x509.h).
 */
#include "crypto/x509.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/banned.h"

/* Adds one X.509v3 extension, in OpenSSL's configuration syntax. */
static bool add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return false;
	bool ok = X509_add_ext(cert, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* Writes a PEM object through a BIO on a new file of the given mode, fsync'd. */
static K_MUST_CHECK k_status write_pem_file(const char *path, mode_t mode, EVP_PKEY *key,
					    X509 *cert)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return K_E_VALIDATION;
	(void)fchmod(fd, mode);
	BIO *b = BIO_new_fd(fd, BIO_NOCLOSE);
	bool ok = b != NULL &&
		  (key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
		       : PEM_write_bio_X509(b, cert)) == 1 &&
		  BIO_flush(b) == 1;
	BIO_free(b);
	ok = ok && fsync(fd) == 0;
	close(fd);
	return ok ? K_OK : K_E_INTERNAL;
}

/*
 * A development certificate, as `openssl req -x509` would make one: the
 * certificate is its own CA, so a client given it as --ca-bundle trusts
 * it, and its names cover the loopback addresses kinko dev mode listens on.
 */
k_status crypto_x509_self_signed(const char *cert_path, const char *key_path, struct kbuf *msg)
{
	if (access(cert_path, R_OK) == 0 && access(key_path, R_OK) == 0)
		return K_OK;
	k_status rc = K_E_INTERNAL;
	X509 *cert = NULL;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	ENSURE_GOTO(key != NULL && RAND_bytes(serial, sizeof serial) == 1, K_E_INTERNAL);
	serial[0] &= 0x7f;
	cert = X509_new();
	bn = BN_bin2bn(serial, sizeof serial, NULL);
	ENSURE_GOTO(cert != NULL && bn != NULL, K_E_INTERNAL);
	X509_NAME *name = X509_get_subject_name(cert);
	ENSURE_GOTO(X509_set_version(cert, 2) == 1 &&
			    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL &&
			    X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != NULL &&
			    X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 24 * 3600) != NULL &&
			    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
						       (const unsigned char *)"kinko development",
						       -1, -1, 0) == 1 &&
			    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
						       (const unsigned char *)"localhost", -1, -1,
						       0) == 1 &&
			    X509_set_issuer_name(cert, name) == 1 &&
			    X509_set_pubkey(cert, key) == 1,
		    K_E_INTERNAL);
	ENSURE_GOTO(add_ext(cert, NID_basic_constraints, "critical,CA:TRUE") &&
			    add_ext(cert, NID_key_usage, "critical,digitalSignature,keyCertSign") &&
			    add_ext(cert, NID_ext_key_usage, "serverAuth") &&
			    add_ext(cert, NID_subject_key_identifier, "hash") &&
			    add_ext(cert, NID_authority_key_identifier, "keyid:always") &&
			    add_ext(cert, NID_subject_alt_name,
				    "DNS:localhost,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1"),
		    K_E_INTERNAL);
	ENSURE_GOTO(X509_sign(cert, key, EVP_sha256()) > 0, K_E_INTERNAL);
	rc = write_pem_file(key_path, 0600, key, NULL);
	if (k_ok(rc))
		rc = write_pem_file(cert_path, 0644, NULL, cert);
	if (k_failed(rc))
		kbuf_note(msg, "cannot write %s and %s", cert_path, key_path);
	else
		LOG_INFO("made a self-signed TLS certificate %s", cert_path);
out:
	if (k_failed(rc) && msg->len == 0)
		kbuf_note(msg, "%s", "cannot make a self-signed certificate");
	BN_free(bn);
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}
