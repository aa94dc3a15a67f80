/*
 * kms_link.h — kinko's XKS client (xks/client.h) as the one kms calls for
 * its EXTERNAL_KEY_STORE custom key stores (kms/xks_link.h). cli installs
 * it with kms_xks_link_set(xks_kms_link(ca_file)).
 */
#ifndef KINKO_XKS_KMS_LINK_H
#define KINKO_XKS_KMS_LINK_H

#include "core/result.h"
#include "kms/xks_link.h"
#include "xks/client.h"

/*
 * The link. ca_file: PEM CAs the proxies' certificates are verified with
 * (NULL or "": the system's); the string must outlive the link.
 */
const struct kms_xks_link *xks_kms_link(const char *ca_file);

/* The ConnectionErrorCode of a failed client call (kms_link.c; unit tests). */
const char *xks_connection_error_code(k_status st, const struct xks_client_error *err);

#endif
