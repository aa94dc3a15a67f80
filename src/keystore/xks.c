/*
 * xks.c — kinko's layer of keys in external key stores (xks.h): the
 * software store's material and handle, behind a table that answers no
 * cryptography by itself.
 */
#include "keystore/xks.h"

#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

struct xks_key {
	struct keystore_key pub;
	struct keystore_key *layer; /* a software-store handle: kinko's material */
};

/* Only SYMMETRIC_DEFAULT: "They must be symmetric encryption KMS keys". */
static K_MUST_CHECK k_status xks_generate(const char *spec, const char *arn, struct kbuf *ref)
{
	ENSURE(strcmp(spec, "SYMMETRIC_DEFAULT") == 0, K_E_UNSUPPORTED);
	return keystore_generate(&keystore_soft, spec, arn, ref);
}

static K_MUST_CHECK k_status xks_open(const char *arn, const uint8_t key_id[16],
				      const struct kslice *refs, uint32_t n,
				      struct keystore_key **out)
{
	struct keystore_key *layer = NULL;
	GUARD(keystore_open(&keystore_soft, arn, key_id, refs, n, &layer));
	struct xks_key *x = calloc(1, sizeof *x);
	if (x == NULL) {
		keystore_key_unref(layer);
		return K_E_INTERNAL;
	}
	x->pub.ops = &keystore_xks;
	atomic_init(&x->pub.refs, 1);
	x->pub.versions = layer->versions;
	memcpy(x->pub.key_id, key_id, 16);
	x->layer = layer;
	*out = &x->pub;
	return K_OK;
}

static void xks_destroy(struct keystore_key *h)
{
	struct xks_key *x = (struct xks_key *)h;
	keystore_key_unref(x->layer); /* wipes kinko's material */
	free(x);
}

const struct keystore_key *keystore_xks_layer(const struct keystore_key *h)
{
	if (h == NULL || h->ops != &keystore_xks)
		return NULL;
	return ((const struct xks_key *)h)->layer;
}

const struct keystore_ops keystore_xks = {
	.name = XKS_KEYSTORE_NAME,
	.generate = xks_generate,
	.open = xks_open,
	.destroy = xks_destroy,
};
