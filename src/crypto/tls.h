/*
 * tls.h — the TLS private key the HTTP server presents.
 *
 * The key is read from its file straight into secret memory (core/secret.h)
 * and stays there for the life of the server. The HTTP layer never reads
 * its bytes itself: it holds the ksecret and asks this module for the one
 * form libmicrohttpd accepts, a NUL-terminated PEM string.
 */
#ifndef KINKO_CRYPTO_TLS_H
#define KINKO_CRYPTO_TLS_H

#include "core/result.h"
#include "core/secret.h"

/* The largest key file accepted, including room for the terminating NUL. */
#define CRYPTO_TLS_MAX_PEM (1u << 20)

/*
 * Reads the PEM private key at `path` into a new secret, NUL-terminated.
 * The bytes go from the file into the secret's locked, no-dump pages and
 * through no other memory. On K_OK *out owns the secret (free it with
 * ksecret_free). K_E_VALIDATION, with the reason in the log, when the file
 * cannot be opened or read, is empty, or is CRYPTO_TLS_MAX_PEM bytes or
 * more; K_E_INTERNAL when out of memory. *out is NULL on any error.
 */
K_MUST_CHECK k_status crypto_tls_key_load(const char *path, struct ksecret **out);

/*
 * The key as a NUL-terminated PEM string, for MHD_OPTION_HTTPS_MEM_KEY.
 * It is handed out, rather than kept inside crypto/, because
 * libmicrohttpd takes the key only as a string: at MHD_start_daemon it
 * copies it into GnuTLS's own credentials and does not look at it again.
 * Valid until ksecret_free(key); the caller passes it on and keeps no copy.
 */
const char *crypto_tls_key_pem(const struct ksecret *key);

#endif
