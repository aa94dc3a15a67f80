/*
 * envelope.h — envelope encryption under a KMS key, for Secrets Manager's
 * values: a fresh 256-bit data key encrypts the value, the KMS key
 * encrypts the data key (as GenerateDataKey does), both under the same
 * canonical encryption context.
 *
 * An ordinary key's store does both (keystore_envelope_seal/open, the
 * format secrets have always been stored in). A key of an external key
 * store has its data key double-encrypted through the store's XKS proxy
 * (kms/xks_keys.h: the wrapped data key is a format-2 blob); the value's
 * blob is the same as for any other key.
 *
 * Failures of the proxy (or a disconnected store) answer through api_fail
 * as KMS does (KMSInvalidStateException, with the cause in the message);
 * a data key or value that does not open is K_E_INVALID_CIPHERTEXT.
 */
#ifndef KINKO_KMS_ENVELOPE_H
#define KINKO_KMS_ENVELOPE_H

#include "core/buf.h"
#include "core/result.h"
#include "kms/kms.h"
#include "req/req.h"

/* Appends the wrapped data key to wrapped_dk and the value's blob to blob. */
K_MUST_CHECK k_status kms_envelope_seal(struct api_ctx *c, const struct kms_key *k,
					struct kslice ectx, struct kslice value,
					struct kbuf *wrapped_dk, struct kbuf *blob);
/* Opens what kms_envelope_seal made under k, appending the value to out. */
K_MUST_CHECK k_status kms_envelope_open(struct api_ctx *c, const struct kms_key *k,
					struct kslice ectx, struct kslice wrapped_dk,
					struct kslice blob, struct kbuf *out);

#endif
