/*
 * proxy.h — kinko as an XKS proxy: the external key store proxy API v1
 * (xks/wire.h) served over kinko's own keys, so that AWS KMS, or any XKS
 * client, can keep its external keys in kinko (docs/KEYSTORES.md).
 *
 * `kinko serve --xks-listen HOST:PORT` starts a second HTTPS listener
 * (http/server.h, with this handler in place of the API pipeline) that
 * answers only the four operations under the configured uri_path
 * (config/xks.h). Each request is, in order:
 *   1. a POST (else 405),
 *   2. authenticated with SigV4 under one of the configured credentials,
 *      service kms-xks-proxy, the configured region if one is set, a date
 *      within 5 minutes (else 401 AuthenticationFailedException),
 *   3. routed (else 404 InvalidUriPathException),
 *   4. parsed (else ValidationException or UnsupportedOperationException;
 *      GetHealthStatus, which the spec's table exempts from
 *      ValidationException, is answered whatever its body),
 *   4b. authorized over its requestMetadata when the external key has a
 *      rule (config/xks_access.h; else 403 AccessDeniedException; never
 *      GetHealthStatus),
 *   5. run against the kinko key the external key id names (the `keys`
 *      map of the configuration): KeyNotFoundException when there is no
 *      such key, InvalidStateException when it is not Enabled,
 *      InvalidKeyUsageException when it is not a SYMMETRIC_DEFAULT key,
 *   6. written to the audit trail (eventSource "kms-xks-proxy", the
 *      operation's name, the requestMetadata and the external key id as
 *      requestParameters; never plaintext, ciphertext or AAD) before the
 *      answer; an event that cannot be written turns the answer into
 *      500 InternalException.
 *
 * Encrypt and Decrypt run through the key-operations interface
 * (keystore_gcm_encrypt / keystore_gcm_decrypt), so any key store that
 * implements them can be served: the software store and PKCS#11 tokens
 * (keystore/pkcs11.h) today. ciphertextMetadata is 5 bytes: a format
 * byte (1) and the material version (32-bit big-endian), so that a
 * rotated key still decrypts what it encrypted before; the AAD given to
 * GCM is the spec's length-prefixed AAD || ciphertextMetadata.
 */
#ifndef KINKO_XKS_PROXY_H
#define KINKO_XKS_PROXY_H

#include "req/req.h"

/* The handler for the XKS listener: fills r->status, r->response, r->content_type. */
void xks_proxy_handle(struct api_request *r);

#endif
