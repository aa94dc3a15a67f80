/*
 * soft_refs.h — the software store's material references (soft.c), for
 * the other files of keystore/ that turn them into something else (a
 * peer's sealed transfer, keystore/peer.c) without going through a handle.
 *
 * A reference is the material of one version wrapped under the root key
 * with "kinko/material/v1|ARN|VERSION" as AAD, in base64.
 */
#ifndef KINKO_KEYSTORE_SOFT_REFS_H
#define KINKO_KEYSTORE_SOFT_REFS_H

#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

/* Appends version `version` of arn's material m, wrapped, to ref. */
K_MUST_CHECK k_status keystore_soft_wrap_ref(const char *arn, uint32_t version,
					     const struct ksecret *m, struct kbuf *ref);
/* The material of a reference in a new secret; K_E_INTERNAL if it does not open. */
K_MUST_CHECK k_status keystore_soft_unwrap_ref(const char *arn, uint32_t version, struct kslice ref,
					       struct ksecret **out);

#endif
