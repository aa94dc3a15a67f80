/*
 * peer_test.c — key material between two deployments (keystore/peer.c):
 * B's wrapping key pair made once and kept in its store; A's material
 * sealed for B's public key, with no plaintext in what travels; B opening
 * it into references under its own root key that hold the same material;
 * the refusals of another aad, an altered message and material sealed
 * for another key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "crypto/peerwrap.h"
#include "keystore/keyops.h"
#include "keystore/keystore.h"
#include "keystore/peer.h"
#include "keystore/soft_refs.h"
#include "storage/storage.h"
#include "testlib.h"

#include "core/banned.h"

#define ARN "arn:aws:kms::111122223333:key/mrk-0123456789abcdef0123456789abcdef"
#define AAD "kinko/mrk-peer/v1|replicate|" ARN "|eu-west-1"

static char dir_a[] = "/tmp/kinko-peer-a-XXXXXX", dir_b[] = "/tmp/kinko-peer-b-XXXXXX";

/* Opens a deployment's root key and store. */
static struct storage *open_side(const char *dir)
{
	char path[256], url[256];
	snprintf(path, sizeof path, "%s/root.key", dir);
	snprintf(url, sizeof url, "sqlite:%s", dir);
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	struct storage *st = NULL;
	CHECK(k_ok(keystore_open_file(path, true, &msg)));
	CHECK(k_ok(storage_open(url, &st, &msg)));
	kbuf_release(&msg);
	return st;
}

static void close_side(struct storage *st)
{
	keystore_peer_key_release();
	storage_close(st);
	keystore_close();
}

/* What B's open hands back: each version's new reference. */
struct got {
	size_t n;
	struct kbuf refs[4];
};

static k_status keep(void *arg, uint32_t version, struct kslice ref)
{
	struct got *g = arg;
	ENSURE(version == g->n + 1 && g->n < 4, K_E_INTERNAL);
	kbuf_init(&g->refs[g->n], KEYSTORE_MAX_REF);
	GUARD(kbuf_append(&g->refs[g->n], ref.ptr, ref.len));
	g->n++;
	return K_OK;
}

static void test_transfer(void)
{
	/* B makes its wrapping key pair once; a second load reads the same one. */
	struct storage *st = open_side(dir_b);
	struct kbuf pem_b, again;
	kbuf_init(&pem_b, CRYPTO_PEER_MAX_PEM);
	kbuf_init(&again, CRYPTO_PEER_MAX_PEM);
	CHECK_STATUS(keystore_peer_key_load(st, false), K_E_NOT_FOUND);
	CHECK_STATUS(keystore_peer_key_load(st, true), K_OK);
	CHECK_STATUS(keystore_peer_public_pem(&pem_b), K_OK);
	keystore_peer_key_release();
	CHECK_STATUS(keystore_peer_key_load(st, false), K_OK);
	CHECK_STATUS(keystore_peer_public_pem(&again), K_OK);
	CHECK(kslice_eq(kbuf_slice(&pem_b), kbuf_slice(&again)));
	close_side(st);

	/* A: two versions of material, sealed for B. */
	st = open_side(dir_a);
	struct kbuf r1, r2, sealed;
	kbuf_init(&r1, KEYSTORE_MAX_REF);
	kbuf_init(&r2, KEYSTORE_MAX_REF);
	kbuf_init(&sealed, KEYSTORE_PEER_MAX_SEALED);
	CHECK_STATUS(keystore_generate(&keystore_soft, "SYMMETRIC_DEFAULT", ARN, &r1), K_OK);
	struct ksecret *m1 = NULL, *m2 = crypto_random_secret(32);
	CHECK_STATUS(keystore_soft_wrap_ref(ARN, 2, m2, &r2), K_OK);
	CHECK_STATUS(keystore_soft_unwrap_ref(ARN, 1, kbuf_slice(&r1), &m1), K_OK);
	struct kslice refs[2] = {kbuf_slice(&r1), kbuf_slice(&r2)};
	CHECK_STATUS(keystore_peer_seal(ARN, refs, 2, kbuf_slice(&pem_b), KSLICE_LIT(AAD), &sealed),
		     K_OK);
	/* What travels holds neither material in the clear, nor A's references. */
	CHECK(memmem(sealed.ptr, sealed.len, ksecret_cbytes(m1), 16) == NULL);
	CHECK(memmem(sealed.ptr, sealed.len, ksecret_cbytes(m2), 16) == NULL);
	CHECK(memmem(sealed.ptr, sealed.len, r1.ptr, 16) == NULL);
	/* A cannot open what it sealed for B (it has no wrapping key loaded). */
	struct got g = {0};
	CHECK_STATUS(keystore_peer_open(ARN, KSLICE_LIT(AAD), kbuf_slice(&sealed), keep, &g),
		     K_E_INTERNAL);
	close_side(st);

	/* B: opens it into its own references, which hold the same material. */
	st = open_side(dir_b);
	CHECK_STATUS(keystore_peer_key_load(st, false), K_OK);
	CHECK_STATUS(
		keystore_peer_open(ARN, KSLICE_LIT("other aad"), kbuf_slice(&sealed), keep, &g),
		K_E_INVALID_CIPHERTEXT);
	sealed.ptr[sealed.len / 2] ^= 0x20;
	CHECK_STATUS(keystore_peer_open(ARN, KSLICE_LIT(AAD), kbuf_slice(&sealed), keep, &g),
		     K_E_INVALID_CIPHERTEXT);
	sealed.ptr[sealed.len / 2] ^= 0x20;
	CHECK_EQ_INT((long)g.n, 0);
	CHECK_STATUS(keystore_peer_open(ARN, KSLICE_LIT(AAD), kbuf_slice(&sealed), keep, &g), K_OK);
	CHECK_EQ_INT((long)g.n, 2);
	struct ksecret *b1 = NULL, *b2 = NULL, *a1 = NULL;
	CHECK_STATUS(keystore_soft_unwrap_ref(ARN, 1, kbuf_slice(&g.refs[0]), &b1), K_OK);
	CHECK_STATUS(keystore_soft_unwrap_ref(ARN, 2, kbuf_slice(&g.refs[1]), &b2), K_OK);
	CHECK(b1 != NULL && ksecret_len(b1) == 32 &&
	      memcmp(ksecret_cbytes(b1), ksecret_cbytes(m1), 32) == 0);
	CHECK(b2 != NULL && memcmp(ksecret_cbytes(b2), ksecret_cbytes(m2), 32) == 0);
	/* A's own reference does not open under B's root key. */
	CHECK(k_failed(keystore_soft_unwrap_ref(ARN, 1, kbuf_slice(&r1), &a1)) && a1 == NULL);
	close_side(st);
	for (size_t i = 0; i < g.n; i++)
		kbuf_release(&g.refs[i]);
	ksecret_free(m1);
	ksecret_free(m2);
	ksecret_free(b1);
	ksecret_free(b2);
	kbuf_release(&r1);
	kbuf_release(&r2);
	kbuf_release(&sealed);
	kbuf_release(&pem_b);
	kbuf_release(&again);
}

int main(void)
{
	if (mkdtemp(dir_a) == NULL || mkdtemp(dir_b) == NULL)
		return 1;
	RUN(test_transfer);
	tl_remove_tree(dir_a);
	tl_remove_tree(dir_b);
	return tl_summary();
}
