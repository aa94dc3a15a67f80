/*
 * peerwrap_fuzz.c — material sealed for a peer deployment
 * (crypto/peerwrap.h).
 *
 * Input: a candidate sealed message. crypto_peer_open() with a fixed
 * wrapping key must refuse it (InvalidCiphertext) unless the fuzzer
 * forged RSA-OAEP and GCM, and never hand back a payload on refusal; the
 * input as a payload must seal and open back to itself, and the sealed
 * message must not open under another aad.
 */
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "core/secret.h"
#include "crypto/peerwrap.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct asym_key *own;
static struct kbuf pem;

static void set_up(void)
{
	struct ksecret *pkcs8 = NULL;
	if (k_failed(asym_generate("RSA_2048", &pkcs8)) || k_failed(asym_key_load(pkcs8, &own)))
		abort();
	ksecret_free(pkcs8);
	kbuf_init(&pem, CRYPTO_PEER_MAX_PEM);
	if (k_failed(crypto_peer_public_pem(own, &pem)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	if (own == NULL)
		set_up();
	struct ksecret *got = NULL;
	k_status rc = crypto_peer_open(own, KSLICE_LIT("aad"), kslice_make(data, size), &got);
	if (k_failed(rc) && (got != NULL || !k_is(rc, K_E_INVALID_CIPHERTEXT)))
		abort();
	ksecret_free(got);
	if (size == 0)
		return 0;

	/* Round trip: the input as the payload. */
	struct ksecret *payload = ksecret_from(data, size);
	struct kbuf sealed;
	kbuf_init(&sealed, size + CRYPTO_PEER_OVERHEAD);
	if (payload == NULL ||
	    k_failed(crypto_peer_seal(kbuf_slice(&pem), KSLICE_LIT("aad"), payload, &sealed)))
		abort();
	got = NULL;
	if (k_failed(crypto_peer_open(own, KSLICE_LIT("aad"), kbuf_slice(&sealed), &got)) ||
	    ksecret_len(got) != size || memcmp(ksecret_cbytes(got), data, size) != 0)
		abort();
	ksecret_free(got);
	got = NULL;
	if (!k_is(crypto_peer_open(own, KSLICE_LIT("other"), kbuf_slice(&sealed), &got),
		  K_E_INVALID_CIPHERTEXT) ||
	    got != NULL)
		abort();
	ksecret_free(payload);
	kbuf_release(&sealed);
	return 0;
}
