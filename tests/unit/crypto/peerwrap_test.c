/*
 * peerwrap_test.c — material sealed for a peer deployment
 * (crypto/peerwrap.c): the round trip, and the refusal of every altered
 * byte, another key, another aad and a bad pinned key.
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "crypto/peerwrap.h"
#include "testlib.h"

#include "core/banned.h"

#define SEALED_MAX (4096 + CRYPTO_PEER_OVERHEAD)

static struct asym_key *new_key(void)
{
	struct ksecret *pkcs8 = NULL;
	struct asym_key *k = NULL;
	CHECK(k_ok(asym_generate("RSA_2048", &pkcs8)));
	CHECK(k_ok(asym_key_load(pkcs8, &k)));
	ksecret_free(pkcs8);
	return k;
}

static struct asym_key *a, *b;
static struct kbuf pem_a, pem_b;

static void test_round_trip(void)
{
	static const uint8_t material[] = "thirty-two bytes of key material";
	struct ksecret *pt = ksecret_from(material, sizeof material - 1);
	struct kbuf sealed;
	kbuf_init(&sealed, SEALED_MAX);
	CHECK_STATUS(crypto_peer_seal(kbuf_slice(&pem_a), KSLICE_LIT("arn|us-east-1"), pt, &sealed),
		     K_OK);
	CHECK(sealed.len > sizeof material);
	/* The payload is nowhere in the clear. */
	CHECK(memmem(sealed.ptr, sealed.len, material, 8) == NULL);
	struct ksecret *got = NULL;
	CHECK_STATUS(crypto_peer_open(a, KSLICE_LIT("arn|us-east-1"), kbuf_slice(&sealed), &got),
		     K_OK);
	CHECK(got != NULL && ksecret_len(got) == sizeof material - 1 &&
	      memcmp(ksecret_cbytes(got), material, sizeof material - 1) == 0);
	ksecret_free(got);

	/* Another key, another aad. */
	got = NULL;
	CHECK_STATUS(crypto_peer_open(b, KSLICE_LIT("arn|us-east-1"), kbuf_slice(&sealed), &got),
		     K_E_INVALID_CIPHERTEXT);
	CHECK(got == NULL);
	CHECK_STATUS(crypto_peer_open(a, KSLICE_LIT("arn|eu-west-1"), kbuf_slice(&sealed), &got),
		     K_E_INVALID_CIPHERTEXT);
	CHECK(got == NULL);

	/* Every byte altered in turn is refused. */
	size_t refused = 0;
	for (size_t i = 0; i < sealed.len; i++) {
		sealed.ptr[i] ^= 0x01;
		got = NULL;
		if (k_is(crypto_peer_open(a, KSLICE_LIT("arn|us-east-1"), kbuf_slice(&sealed),
					  &got),
			 K_E_INVALID_CIPHERTEXT) &&
		    got == NULL)
			refused++;
		ksecret_free(got);
		sealed.ptr[i] ^= 0x01;
	}
	CHECK_EQ_INT((long)refused, (long)sealed.len);
	/* Cut short, at every length. */
	for (size_t n = 0; n < sealed.len; n += 7) {
		got = NULL;
		CHECK_STATUS(crypto_peer_open(a, KSLICE_LIT("arn|us-east-1"),
					      kslice_make(sealed.ptr, n), &got),
			     K_E_INVALID_CIPHERTEXT);
	}
	kbuf_release(&sealed);
	ksecret_free(pt);
}

static void test_pinned_key_checks(void)
{
	CHECK_STATUS(crypto_peer_pem_check(kbuf_slice(&pem_a)), K_OK);
	CHECK_STATUS(crypto_peer_pem_check(KSLICE_LIT("-----BEGIN PUBLIC KEY-----\nAAAA\n")),
		     K_E_VALIDATION);
	CHECK_STATUS(crypto_peer_pem_check(KSLICE_LIT("")), K_E_VALIDATION);
	/* An EC key is not a wrapping key. */
	struct ksecret *pkcs8 = NULL;
	struct asym_key *ec = NULL;
	struct kbuf pem;
	kbuf_init(&pem, CRYPTO_PEER_MAX_PEM);
	CHECK(k_ok(asym_generate("ECC_NIST_P256", &pkcs8)) && k_ok(asym_key_load(pkcs8, &ec)));
	CHECK_STATUS(crypto_peer_public_pem(ec, &pem), K_OK);
	CHECK_STATUS(crypto_peer_pem_check(kbuf_slice(&pem)), K_E_VALIDATION);
	struct ksecret *pt = ksecret_from((const uint8_t *)"x", 1);
	struct kbuf sealed;
	kbuf_init(&sealed, SEALED_MAX);
	CHECK_STATUS(crypto_peer_seal(kbuf_slice(&pem), KSLICE_LIT(""), pt, &sealed),
		     K_E_VALIDATION);
	CHECK_EQ_INT((long)sealed.len, 0);
	char fa[65], fb[65];
	CHECK_STATUS(crypto_peer_fingerprint(kbuf_slice(&pem_a), fa), K_OK);
	CHECK_STATUS(crypto_peer_fingerprint(kbuf_slice(&pem_b), fb), K_OK);
	CHECK(strlen(fa) == 64 && strcmp(fa, fb) != 0);
	ksecret_free(pt);
	kbuf_release(&sealed);
	kbuf_release(&pem);
	asym_key_free(ec);
	ksecret_free(pkcs8);
}

int main(void)
{
	a = new_key();
	b = new_key();
	kbuf_init(&pem_a, CRYPTO_PEER_MAX_PEM);
	kbuf_init(&pem_b, CRYPTO_PEER_MAX_PEM);
	CHECK(k_ok(crypto_peer_public_pem(a, &pem_a)) && k_ok(crypto_peer_public_pem(b, &pem_b)));
	RUN(test_round_trip);
	RUN(test_pinned_key_checks);
	kbuf_release(&pem_a);
	kbuf_release(&pem_b);
	asym_key_free(a);
	asym_key_free(b);
	return tl_summary();
}
