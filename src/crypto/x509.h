/*
 * x509.h — X.509 certificates kinko makes itself.
 */
#ifndef KINKO_CRYPTO_X509_H
#define KINKO_CRYPTO_X509_H

#include "core/buf.h"
#include "core/result.h"

/*
 * Makes a self-signed certificate for development (an EC P-256 key,
 * subject CN=localhost, subjectAltName DNS:localhost, IP:127.0.0.1,
 * IP:::1, valid for a year) and writes it to cert_path and key_path (mode
 * 0600), unless both files already exist, in which case they are kept.
 * Clients trust it by naming cert_path as their CA bundle.
 * K_OK, or an error with a one-line reason for the operator in `msg`
 * (K_E_INTERNAL, or K_E_VALIDATION when a file cannot be created).
 */
K_MUST_CHECK k_status crypto_x509_self_signed(const char *cert_path, const char *key_path,
					      struct kbuf *msg);

#endif
