/*
 * keypool_test.c — unit tests of the RSA key pool (crypto/keypool.c,
 * asym_pool_* in asym.h): off until enabled; it starts on the first ask
 * for a spec, fills
 * that spec's pool to its depth in the background, hands each key out
 * once, pools no other spec, and after asym_pool_stop holds nothing and
 * starts nothing.
 */
#include <string.h>
#include <time.h>

#include "crypto/asym.h"
#include "crypto/internal.h"
#include "testlib.h"
#include "core/banned.h"

/* Waits (at most about a minute) for spec's pool to hold want keys. */
static bool wait_ready(const char *spec, unsigned want)
{
	struct timespec tick = {0, 20 * 1000 * 1000};
	for (int i = 0; i < 3000; i++) {
		if (asym_pool_ready(spec) >= want)
			return true;
		nanosleep(&tick, NULL);
	}
	return false;
}

static bool is_spec(struct ksecret *der, const char *spec)
{
	struct asym_key *k = NULL;
	if (der == NULL || k_failed(asym_key_load(der, &k)))
		return false;
	const char *got = asym_key_spec(k);
	bool same = got != NULL && strcmp(got, spec) == 0;
	asym_key_free(k);
	return same;
}

static void test_off_until_enabled(void)
{
	struct ksecret *k = NULL;
	CHECK(!asym_pool_take("RSA_2048", &k));
	CHECK_STATUS(asym_generate("RSA_2048", &k), K_OK);
	ksecret_free(k);
	struct timespec pause = {0, 200 * 1000 * 1000};
	nanosleep(&pause, NULL);
	CHECK_EQ_INT(asym_pool_ready("RSA_2048"), 0); /* nothing was made ahead */
	asym_pool_enable();
}

static void test_fills_on_first_use_and_hands_out_once(void)
{
	CHECK_EQ_INT(asym_pool_ready("RSA_2048"), 0);
	struct ksecret *first = NULL;
	/* The first ask finds the pool empty and makes its key now. */
	CHECK(!asym_pool_take("RSA_2048", &first));
	CHECK_STATUS(asym_generate("RSA_2048", &first), K_OK);
	CHECK(is_spec(first, "RSA_2048"));
	CHECK(wait_ready("RSA_2048", ASYM_POOL_DEPTH));
	CHECK_EQ_INT(asym_pool_ready("RSA_2048"), ASYM_POOL_DEPTH);
	CHECK_EQ_INT(asym_pool_ready("RSA_3072"), 0); /* not asked for: not made */

	struct ksecret *a = NULL, *b = NULL;
	CHECK(asym_pool_take("RSA_2048", &a));
	CHECK(asym_pool_take("RSA_2048", &b));
	CHECK(is_spec(a, "RSA_2048") && is_spec(b, "RSA_2048"));
	CHECK(a != NULL && b != NULL && ksecret_len(a) > 0 &&
	      (ksecret_len(a) != ksecret_len(b) ||
	       memcmp(ksecret_cbytes(a), ksecret_cbytes(b), ksecret_len(a)) != 0));
	CHECK(a == NULL || first == NULL || ksecret_len(a) != ksecret_len(first) ||
	      memcmp(ksecret_cbytes(a), ksecret_cbytes(first), ksecret_len(a)) != 0);
	/* Taken keys are the caller's; the pool fills again behind them. */
	CHECK(wait_ready("RSA_2048", 1));
	ksecret_free(first);
	ksecret_free(a);
	ksecret_free(b);
}

static void test_only_rsa_is_pooled(void)
{
	struct ksecret *k = NULL;
	CHECK(!asym_pool_take("ECC_NIST_P256", &k));
	CHECK(!asym_pool_take("HMAC_256", &k));
	CHECK(!asym_pool_take("RSA_1024", &k));
	CHECK(k == NULL);
	CHECK_EQ_INT(asym_pool_ready("ECC_NIST_P256"), 0);
	CHECK_STATUS(asym_generate("RSA_1024", &k), K_E_UNSUPPORTED);
}

static void test_stop_drops_everything(void)
{
	asym_pool_stop();
	CHECK_EQ_INT(asym_pool_ready("RSA_2048"), 0);
	struct ksecret *k = NULL;
	CHECK(!asym_pool_take("RSA_2048", &k));
	CHECK_EQ_INT(asym_pool_ready("RSA_2048"), 0);
	/* Generation itself still works, without the pool. */
	CHECK_STATUS(asym_generate("RSA_2048", &k), K_OK);
	CHECK(is_spec(k, "RSA_2048"));
	ksecret_free(k);
	asym_pool_stop(); /* twice is harmless */
}

/* A generation asked to stop fails at once and leaves nothing behind. */
static void test_stopped_generation_fails(void)
{
	atomic_bool stop = true;
	struct ksecret *k = NULL;
	CHECK_STATUS(asym_generate_new("RSA_4096", &stop, &k), K_E_INTERNAL);
	CHECK(k == NULL);
	atomic_store(&stop, false);
	CHECK_STATUS(asym_generate_new("RSA_2048", &stop, &k), K_OK);
	CHECK(is_spec(k, "RSA_2048"));
	ksecret_free(k);
}

int main(void)
{
	RUN(test_stopped_generation_fails);
	RUN(test_off_until_enabled);
	RUN(test_fills_on_first_use_and_hands_out_once);
	RUN(test_only_rsa_is_pooled);
	RUN(test_stop_drops_everything);
	return tl_summary();
}
