/*
 * xks_keys_test.c — the double encryption of keys in external key stores
 * (kms/xks_keys.h) against a stand-in proxy: an XKS link whose Encrypt and
 * Decrypt run AES-GCM under a key of its own. A format-2 blob opens with
 * both layers only: the proxy's layer alone leaves kinko's sealed layer,
 * kinko's material alone does not get past the proxy's, a changed context
 * or header is refused, and the format-2 parser refuses malformed blobs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/secret.h"
#include "crypto/aead.h"
#include "crypto/crypto.h"
#include "keystore/keyops.h"
#include "keystore/keystore.h"
#include "keystore/xks.h"
#include "kms/keystores.h"
#include "kms/kms.h"
#include "kms/xks_keys.h"
#include "kms/xks_link.h"
#include "req/req.h"
#include "storage/storage.h"
#include "testlib.h"
#include "core/banned.h"

#define NS "111122223333:eu-west-1"
#define STORE_ID "cks-0123456789abcdef0"
#define KEY_UUID "6f1c2a9e-4b3d-4e5f-8a7b-6c5d4e3f2a1b"
#define KEY_ARN "arn:aws:kms:eu-west-1:111122223333:key/" KEY_UUID

static struct ksecret *proxy_key; /* the stand-in proxy's external key */
static int proxy_calls;
static char last_key_arn[160], last_op[64];

static const struct kslice proxy_label = {(const uint8_t *)"test-proxy", 10};

static k_status fake_encrypt(const struct kms_xks_proxy *p, const char *key_id, struct kslice pt,
			     struct kslice aad, struct kms_xks_sealed *out, struct kbuf *ct,
			     struct kms_xks_failure *f)
{
	proxy_calls++;
	snprintf(last_key_arn, sizeof last_key_arn, "%s", p->key_arn ? p->key_arn : "");
	snprintf(last_op, sizeof last_op, "%s", p->operation ? p->operation : "");
	memset(out, 0, sizeof *out);
	out->iv_len = CRYPTO_AEAD_IV_LEN;
	out->metadata_len = 3;
	memcpy(out->metadata, "abc", 3);
	uint8_t full_aad[256];
	memcpy(full_aad, aad.ptr, aad.len);
	memcpy(full_aad + aad.len, out->metadata, 3); /* the metadata is authenticated too */
	return crypto_aead_seal(proxy_key, proxy_label, kslice_make(full_aad, aad.len + 3), pt,
				out->iv, ct, out->tag);
}

static k_status fake_decrypt(const struct kms_xks_proxy *p, const char *key_id,
			     const struct kms_xks_sealed *in, struct kslice ct, struct kslice aad,
			     struct kbuf *pt, struct kms_xks_failure *f)
{
	proxy_calls++;
	uint8_t full_aad[256];
	memcpy(full_aad, aad.ptr, aad.len);
	memcpy(full_aad + aad.len, in->metadata, in->metadata_len);
	k_status rc = crypto_aead_open(proxy_key, proxy_label, kslice_make(in->iv, in->iv_len),
				       kslice_make(full_aad, aad.len + in->metadata_len), ct,
				       kslice_make(in->tag, sizeof in->tag), pt);
	if (k_failed(rc)) {
		memset(f, 0, sizeof *f);
		snprintf(f->proxy_error, sizeof f->proxy_error, "InvalidCiphertextException");
		return K_E_INVALID_STATE; /* what the client answers for it */
	}
	return K_OK;
}

static const struct kms_xks_link fake_link = {.encrypt = fake_encrypt, .decrypt = fake_decrypt};
static const struct api_operation op_encrypt = {.name = "Encrypt", .action = "kms:Encrypt"};

static void ctx_init(struct api_ctx *c)
{
	memset(c, 0, sizeof *c);
	c->op = &op_encrypt;
	snprintf(c->principal.account, sizeof c->principal.account, "111122223333");
	snprintf(c->principal.arn, sizeof c->principal.arn, "arn:aws:iam::111122223333:root");
	snprintf(c->region, sizeof c->region, "eu-west-1");
	snprintf(c->ns, sizeof c->ns, NS);
	kbuf_init(&c->err_msg, API_ERROR_MESSAGE_MAX);
}

/* The external key store's record, CONNECTED or not. */
static void put_store(struct api_ctx *c, const char *state)
{
	json_t *old = NULL;
	int64_t version = STORAGE_ABSENT;
	if (k_ok(kms_cks_load(c, STORE_ID, &old, &version)))
		json_decref(old);
	else
		version = STORAGE_ABSENT;
	struct kbuf wrapped;
	kbuf_init(&wrapped, KMS_CKS_WRAPPED);
	CHECK_STATUS(kms_cks_wrap(NS, STORE_ID, "RawSecretAccessKey",
				  "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE=", &wrapped),
		     K_OK);
	json_t *doc = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:s}", "CustomKeyStoreId",
				STORE_ID, "CustomKeyStoreType", "EXTERNAL_KEY_STORE",
				"ConnectionState", state, "XksProxyConfiguration", "Connectivity",
				"PUBLIC_ENDPOINT", "AccessKeyId", "BA6ALBUAHQZQ3SXO3IVDI6ONPE",
				"UriEndpoint", "https://xks.example.com", "UriPath", "/kms/xks/v1",
				"WrappedXksSecret", kbuf_cstr(&wrapped));
	CHECK_STATUS(kms_cks_put(c, STORE_ID, doc, version), K_OK);
	json_decref(doc);
	kbuf_release(&wrapped);
}

/* A key of the store, with kinko's layer generated as CreateKey does. */
static struct kms_key *make_key(struct api_ctx *c, const char *uuid)
{
	char arn[160];
	snprintf(arn, sizeof arn, "arn:aws:kms:eu-west-1:111122223333:key/%s", uuid);
	json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "KeyId", uuid, "Arn", arn,
				"KeyState", "Enabled", "KeySpec", "SYMMETRIC_DEFAULT", "KeyUsage",
				"ENCRYPT_DECRYPT", "Origin", "EXTERNAL_KEY_STORE");
	CHECK_STATUS(kms_xks_generate(c, doc, STORE_ID, "ext-1"), K_OK);
	struct kms_key *k = NULL;
	CHECK_STATUS(kms_key_from_doc(NS, doc, 1, &k), K_OK);
	json_decref(doc);
	return k;
}

static bool contains(struct kslice hay, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= hay.len; i++)
		if (memcmp(hay.ptr + i, needle, n) == 0)
			return true;
	return false;
}

static void test_round_trip_and_layers(void)
{
	struct api_ctx c;
	ctx_init(&c);
	struct kms_key *k = make_key(&c, KEY_UUID);
	struct kms_key *other = make_key(&c, "00000000-1111-4222-8333-444444444444");
	CHECK(kms_key_is_xks(k));
	CHECK(keystore_xks_layer(k->handle) != NULL);
	const char *secret = "only both layers open this";
	struct kslice ectx = KSLICE_LIT("\0\0\0\1\0\0\0\1a\0\0\0\1b");
	struct kbuf blob, pt, inner;
	kbuf_init(&blob, KMS_CIPHERTEXT_BUF);
	kbuf_init(&pt, KMS_CIPHERTEXT_BUF);
	kbuf_init(&inner, KMS_CIPHERTEXT_BUF);
	CHECK_STATUS(kms_xks_encrypt(&c, k, ectx, kslice_cstr(secret), &blob), K_OK);
	CHECK_STR(last_key_arn, KEY_ARN);
	CHECK_STR(last_op, "Encrypt");
	CHECK(kms_xks_blob_claims(kbuf_slice(&blob)));
	CHECK(!contains(kbuf_slice(&blob), secret));
	CHECK_STATUS(kms_xks_decrypt(&c, k, ectx, kbuf_slice(&blob), &pt), K_OK);
	CHECK(pt.len == strlen(secret) && memcmp(pt.ptr, secret, pt.len) == 0);

	/* kinko's material alone: the proxy's ciphertext is no blob kinko's layer opens */
	struct kms_xks_blob xb;
	struct crypto_blob cb;
	CHECK_STATUS(kms_xks_blob_parse(kbuf_slice(&blob), &xb), K_OK);
	kbuf_reset(&pt);
	CHECK(k_failed(crypto_blob_parse(xb.sealed, &cb)) ||
	      k_failed(keystore_decrypt(keystore_xks_layer(k->handle), &cb, ectx, &pt)));
	CHECK(pt.len == 0);
	/* ... nor does the software path take a format-2 blob in place of its own */
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob), &cb), K_E_INVALID_CIPHERTEXT);

	/* the proxy's key alone: what comes off is kinko's format-1 blob, still sealed */
	struct kms_xks_sealed s = {.iv_len = xb.iv.len, .metadata_len = xb.meta.len};
	memcpy(s.iv, xb.iv.ptr, xb.iv.len);
	memcpy(s.metadata, xb.meta.ptr, xb.meta.len);
	memcpy(s.tag, xb.tag.ptr, sizeof s.tag);
	uint8_t aad[KMS_XKS_BLOB_HEADER_LEN + CRYPTO_SHA256_LEN];
	memcpy(aad, xb.header.ptr, KMS_XKS_BLOB_HEADER_LEN);
	CHECK_STATUS(crypto_sha256(ectx.ptr, ectx.len, aad + KMS_XKS_BLOB_HEADER_LEN), K_OK);
	struct kms_xks_failure f;
	CHECK_STATUS(fake_decrypt(NULL, "ext-1", &s, xb.sealed, kslice_make(aad, sizeof aad),
				  &inner, &f),
		     K_OK);
	CHECK(!contains(kbuf_slice(&inner), secret));
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&inner), &cb), K_OK);
	/* ... which another key's material (same blob, other key's layer) does not open */
	kbuf_reset(&pt);
	CHECK_STATUS(keystore_decrypt(keystore_xks_layer(other->handle), &cb, ectx, &pt),
		     K_E_INVALID_CIPHERTEXT);
	/* the key's own layer does: the two together are the whole secret */
	CHECK_STATUS(keystore_decrypt(keystore_xks_layer(k->handle), &cb, ectx, &pt), K_OK);
	CHECK(pt.len == strlen(secret));

	/* the handle itself refuses every path that would skip the proxy */
	kbuf_reset(&pt);
	CHECK_STATUS(keystore_encrypt(k->handle, ectx, kslice_cstr("x"), &pt), K_E_UNSUPPORTED);

	kms_key_unref(k);
	kms_key_unref(other);
	kbuf_release(&blob);
	kbuf_release(&pt);
	kbuf_release(&inner);
	kbuf_release(&c.err_msg);
}

static void test_refusals(void)
{
	struct api_ctx c;
	ctx_init(&c);
	struct kms_key *k = make_key(&c, KEY_UUID);
	struct kslice ectx = KSLICE_LIT("\0\0\0\0");
	struct kbuf blob, pt, bad;
	kbuf_init(&blob, KMS_CIPHERTEXT_BUF);
	kbuf_init(&pt, KMS_CIPHERTEXT_BUF);
	kbuf_init(&bad, KMS_CIPHERTEXT_BUF);
	CHECK_STATUS(kms_xks_encrypt(&c, k, ectx, kslice_cstr("data"), &blob), K_OK);

	/* another encryption context: the proxy's AAD differs */
	CHECK_STATUS(kms_xks_decrypt(&c, k, KSLICE_LIT("\0\0\0\1\0\0\0\1a\0\0\0\0"),
				     kbuf_slice(&blob), &pt),
		     K_E_INVALID_CIPHERTEXT);
	/* every byte changed in turn: header, IV, metadata, tag, sealed part */
	for (size_t i = 0; i < blob.len; i++) {
		kbuf_reset(&bad);
		CHECK_STATUS(kbuf_append(&bad, blob.ptr, blob.len), K_OK);
		bad.ptr[i] ^= 0x01;
		k_status rc = kms_xks_decrypt(&c, k, ectx, kbuf_slice(&bad), &pt);
		CHECK(k_is(rc, K_E_INVALID_CIPHERTEXT));
	}
	CHECK(pt.len == 0);
	/* cut short, or with an IV of another length */
	CHECK_STATUS(kms_xks_blob_parse(kslice_make(blob.ptr, 30), &(struct kms_xks_blob){0}),
		     K_E_INVALID_CIPHERTEXT);
	kbuf_reset(&bad);
	CHECK_STATUS(kbuf_append(&bad, blob.ptr, blob.len), K_OK);
	bad.ptr[KMS_XKS_BLOB_HEADER_LEN] = 13;
	CHECK_STATUS(kms_xks_blob_parse(kbuf_slice(&bad), &(struct kms_xks_blob){0}),
		     K_E_INVALID_CIPHERTEXT);
	CHECK(!kms_xks_blob_claims(KSLICE_LIT("K\x01")));

	kms_key_unref(k);
	kbuf_release(&blob);
	kbuf_release(&pt);
	kbuf_release(&bad);
	kbuf_release(&c.err_msg);
}

/* A store that is not CONNECTED: the key is Unavailable, its cryptography KMSInvalidStateException. */
static void test_disconnected(void)
{
	struct api_ctx c;
	ctx_init(&c);
	struct kms_key *k = make_key(&c, KEY_UUID);
	CHECK(kms_xks_key_available(k));
	CHECK(kms_key_state_now(k) == KS_ENABLED);
	put_store(&c, "DISCONNECTED");
	CHECK(!kms_xks_key_available(k));
	CHECK(kms_key_state_now(k) == KS_UNAVAILABLE);
	int calls = proxy_calls;
	struct kbuf blob;
	kbuf_init(&blob, KMS_CIPHERTEXT_BUF);
	CHECK_STATUS(kms_xks_encrypt(&c, k, KSLICE_LIT("\0\0\0\0"), kslice_cstr("x"), &blob),
		     K_E_INVALID_STATE);
	CHECK(proxy_calls == calls); /* the proxy is not called */
	CHECK(blob.len == 0);
	put_store(&c, "CONNECTED");
	kms_key_unref(k);
	kbuf_release(&blob);
	kbuf_release(&c.err_msg);
}

int main(void)
{
	char dir[] = "/tmp/kinko-xkskeys-test-XXXXXX";
	if (mkdtemp(dir) == NULL)
		return 1;
	char path[256];
	snprintf(path, sizeof path, "%s/root.key", dir);
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	struct storage *st = NULL;
	if (k_failed(keystore_open_file(path, true, &msg)) ||
	    k_failed(storage_sqlite_open(dir, &st)) || k_failed(kms_init(st)))
		return 1;
	kbuf_release(&msg);
	proxy_key = crypto_random_secret(32);
	kms_xks_link_set(&fake_link);
	struct api_ctx c;
	ctx_init(&c);
	put_store(&c, "CONNECTED");
	kbuf_release(&c.err_msg);
	RUN(test_round_trip_and_layers);
	RUN(test_refusals);
	RUN(test_disconnected);
	ksecret_free(proxy_key);
	storage_close(st);
	tl_remove_tree(dir);
	return tl_summary();
}
