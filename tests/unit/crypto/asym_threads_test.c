/*
 * asym_threads_test.c — one parsed key used by several threads at once:
 * the first calls race to publish the key's prepared sign and verify
 * contexts (asym.c, op_ctx), and every call works on its own duplicate.
 * Every signature made must verify, a wrong one must not, on every
 * thread, for ECDSA and both RSA paddings.
 */
#include <pthread.h>
#include <string.h>

#include "crypto/asym.h"
#include "testlib.h"
#include "core/banned.h"

#define THREADS 4
#define ROUNDS 40

struct job {
	const struct asym_key *k;
	const char *alg;
	int failures;
};

static void *sign_verify(void *arg)
{
	struct job *j = arg;
	uint8_t dig[32];
	for (int i = 0; i < ROUNDS; i++) {
		memset(dig, i, sizeof dig);
		struct kbuf sig;
		kbuf_init(&sig, ASYM_MAX_SIG);
		bool ok = false, bad = true;
		if (k_failed(asym_sign(j->k, j->alg, true, kslice_make(dig, sizeof dig), &sig)) ||
		    k_failed(asym_verify(j->k, j->alg, true, kslice_make(dig, sizeof dig),
					 kbuf_slice(&sig), &ok)))
			j->failures++;
		dig[0] ^= 1;
		if (k_failed(asym_verify(j->k, j->alg, true, kslice_make(dig, sizeof dig),
					 kbuf_slice(&sig), &bad)))
			j->failures++;
		if (!ok || bad)
			j->failures++;
		kbuf_release(&sig);
	}
	return NULL;
}

static void run_threads(const char *spec, const char *alg)
{
	struct ksecret *der = NULL;
	struct asym_key *k = NULL;
	CHECK_STATUS(asym_generate(spec, &der), K_OK);
	CHECK_STATUS(asym_key_load(der, &k), K_OK);
	ksecret_free(der);
	if (k == NULL)
		return;
	pthread_t t[THREADS];
	struct job jobs[THREADS];
	for (int i = 0; i < THREADS; i++) {
		jobs[i] = (struct job){k, alg, 0};
		CHECK(pthread_create(&t[i], NULL, sign_verify, &jobs[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ_INT(jobs[i].failures, 0);
	}
	asym_key_free(k);
}

static void test_ecdsa_threads(void)
{
	run_threads("ECC_NIST_P256", "ECDSA_SHA_256");
}

static void test_rsa_pss_threads(void)
{
	run_threads("RSA_2048", "RSASSA_PSS_SHA_256");
}

static void test_rsa_pkcs1_threads(void)
{
	run_threads("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256");
}

int main(void)
{
	RUN(test_ecdsa_threads);
	RUN(test_rsa_pss_threads);
	RUN(test_rsa_pkcs1_threads);
	asym_pool_stop();
	return tl_summary();
}
