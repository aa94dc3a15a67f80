/*
 * envelope.c — envelope encryption under a KMS key of any store (see
 * envelope.h): the store's own envelope, or, for a key of an external key
 * store, a data key double-encrypted through the proxy.
 */
#include "kms/envelope.h"

#include "core/secret.h"
#include "keystore/keyops.h"
#include "kms/xks_keys.h"
#include "core/banned.h"

/* The data key of an envelope: 256 bits, as keystore_envelope_seal makes it. */
#define ENVELOPE_DATA_KEY_LEN 32
/* The buffer a data key is decrypted into (ENVELOPE_DATA_KEY_LEN, checked after). */
#define ENVELOPE_DATA_KEY_MAX 64

k_status kms_envelope_seal(struct api_ctx *c, const struct kms_key *k, struct kslice ectx,
			   struct kslice value, struct kbuf *wrapped_dk, struct kbuf *blob)
{
	if (!kms_key_is_xks(k))
		return keystore_envelope_seal(k->handle, ectx, value, wrapped_dk, blob);
	struct ksecret *dk = ksecret_new(ENVELOPE_DATA_KEY_LEN);
	ENSURE(dk != NULL, K_E_INTERNAL);
	k_status rc = kms_xks_generate_data_key(c, k, ectx, dk, wrapped_dk);
	if (k_ok(rc))
		rc = keystore_value_seal(dk, ectx, value, blob);
	ksecret_free(dk);
	return rc;
}

k_status kms_envelope_open(struct api_ctx *c, const struct kms_key *k, struct kslice ectx,
			   struct kslice wrapped_dk, struct kslice blob, struct kbuf *out)
{
	if (!kms_key_is_xks(k))
		return keystore_envelope_open(k->handle, ectx, wrapped_dk, blob, out);
	/* A key of an external key store opens only its double-encrypted blobs. */
	if (!kms_xks_blob_claims(wrapped_dk))
		return K_E_INVALID_CIPHERTEXT;
	struct kbuf dk;
	kbuf_init(&dk, ENVELOPE_DATA_KEY_MAX);
	k_status rc = kms_xks_decrypt(c, k, ectx, wrapped_dk, &dk);
	if (k_ok(rc))
		rc = keystore_value_open(kbuf_slice(&dk), ectx, blob, out);
	kbuf_release(&dk); /* zeroes the data key */
	return rc;
}
