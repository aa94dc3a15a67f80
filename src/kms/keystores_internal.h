/*
 * keystores_internal.h — shared by ops_keystores.c and keystores_check.c.
 */
#ifndef KINKO_KMS_KEYSTORES_INTERNAL_H
#define KINKO_KMS_KEYSTORES_INTERNAL_H

#include "kms/keystores.h"

/* An external key store's proxy settings, as a request gives them. */
struct cks_xks {
	const char *endpoint, *path, *vpc_service, *connectivity;
	const char *access_key_id, *secret; /* XksProxyAuthenticationCredential */
	bool secret_kept;		    /* no new secret: the record's stays */
};

/* The model's shapes and the combinations AWS refuses; answers through api_fail. */
K_MUST_CHECK k_status cks_check_xks(struct api_ctx *c, const struct cks_xks *x);
/*
 * No other store (self: the one being updated) of the namespace has the
 * name or the proxy address, and no store of any namespace the token
 * (cluster, may be NULL); a new store (self NULL) fits under KMS_CKS_MAX.
 */
K_MUST_CHECK k_status cks_check_unique(struct api_ctx *c, const char *self, const char *name,
				       const char *cluster, const struct cks_xks *xks);
/* How many keys of the caller's namespace name the store. */
K_MUST_CHECK k_status cks_count_keys(struct api_ctx *c, const char *store, size_t *n);

#endif
