/*
 * sigv4_keys.c — the per-thread state of the verifier: the signing-key
 * cache and the scratch buffers.
 *
 * Deriving kSigning costs four HMACs and a locked allocation, and the same
 * few (access key, date, region, service) scopes sign almost every
 * request, so each thread keeps the last SIGV4_CACHE_SLOTS signing keys.
 * The slots' public half (who, which scope, when last used) is plain
 * memory; their secret half (the signing key and the fingerprint of the
 * secret it came from) is one ksecret per thread, which auth/ reaches only
 * through crypto/'s range functions: the key is derived into its slot,
 * MACs are keyed from it, and fingerprints are compared there in constant
 * time. The cache is thread-local, so there is no lock to take.
 *
 * Hot path: a request whose key is cached costs one SHA-256 of the secret
 * (its fingerprint, the cache key) and one HMAC, both on crypto/'s
 * per-thread contexts; nothing is allocated.
 */
#include "auth/internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "crypto/hmac.h"
#include "core/thread.h"
#include "core/banned.h"

/* The secret half of a cache slot; the whole array is one ksecret. */
struct sigv4_slot_secret {
	uint8_t signing_key[CRYPTO_SIGV4_KEY_LEN];
	uint8_t secret_fp[CRYPTO_FINGERPRINT_LEN]; /* SHA-256 of the secret access key */
};

#define SLOT_OFF(i) ((i) * sizeof(struct sigv4_slot_secret))
#define KEY_OFF(i) (SLOT_OFF(i) + offsetof(struct sigv4_slot_secret, signing_key))
#define FP_OFF(i) (SLOT_OFF(i) + offsetof(struct sigv4_slot_secret, secret_fp))

static void tls_free(struct sigv4_tls *t)
{
	if (t == NULL)
		return;
	ksecret_free(t->keys); /* wipes every cached signing key */
	kbuf_release(&t->creq);
	kbuf_release(&t->sts);
	crypto_wipe(t, sizeof *t);
	free(t);
}

static void tls_drop(void *p)
{
	tls_free(p);
}

/* A thread's state; NULL when out of memory. */
static void *tls_make(void)
{
	struct sigv4_tls *t = calloc(1, sizeof *t);
	if (t == NULL)
		return NULL;
	kbuf_init(&t->creq, SIGV4_MAX_CANONICAL_REQUEST);
	kbuf_init(&t->sts, SIGV4_MAX_STRING_TO_SIGN);
	t->keys = ksecret_new(sizeof(struct sigv4_slot_secret) * SIGV4_CACHE_SLOTS);
	if (t->keys == NULL) {
		tls_free(t);
		return NULL;
	}
	return t;
}

/* Runs tls_drop at thread exit for every thread that signed something. */
static struct kthread_slot tls_slot = KTHREAD_SLOT_INIT(tls_make, tls_drop);

struct sigv4_tls *sigv4_tls_get(void)
{
	return kthread_get(&tls_slot);
}

void sigv4_thread_cleanup(void)
{
	kthread_forget(&tls_slot);
	crypto_hmac_thread_release(); /* the thread's hash and HMAC contexts */
}

void sigv4_cache_stats_get(struct sigv4_cache_stats *out)
{
	if (out == NULL)
		return;
	struct sigv4_tls *t = sigv4_tls_get();
	if (t == NULL) {
		out->hits = 0;
		out->misses = 0;
		return;
	}
	*out = t->stats;
}

/* The slot holding the key for this scope and secret, or SIGV4_CACHE_SLOTS. */
static size_t cache_find(const struct sigv4_tls *t, const char *access_key, const char *date,
			 const char *region, const char *service,
			 const uint8_t fp[CRYPTO_FINGERPRINT_LEN])
{
	for (size_t i = 0; i < SIGV4_CACHE_SLOTS; i++) {
		const struct sigv4_slot *s = &t->slots[i];
		if (s->used && strcmp(s->access_key, access_key) == 0 &&
		    strcmp(s->scope_date, date) == 0 && strcmp(s->region, region) == 0 &&
		    strcmp(s->service, service) == 0 &&
		    crypto_secret_eq_at(t->keys, FP_OFF(i), fp, CRYPTO_FINGERPRINT_LEN))
			return i;
	}
	return SIGV4_CACHE_SLOTS;
}

/* A free slot if there is one, else the least recently used. */
static size_t cache_victim(const struct sigv4_tls *t)
{
	size_t pick = 0;
	for (size_t i = 0; i < SIGV4_CACHE_SLOTS; i++) {
		if (!t->slots[i].used)
			return i;
		if (t->slots[i].last_used < t->slots[pick].last_used)
			pick = i;
	}
	return pick;
}

/*
 * Wipes slot `pick` and derives into it the signing key for this scope
 * and secret. On failure the slot stays empty.
 */
static K_MUST_CHECK k_status cache_fill(struct sigv4_tls *t, size_t pick, const char *access_key,
					const struct ksecret *secret, const char *date,
					const char *region, const char *service,
					const uint8_t fp[CRYPTO_FINGERPRINT_LEN])
{
	struct sigv4_slot *s = &t->slots[pick];
	s->used = false;
	crypto_secret_wipe_at(t->keys, SLOT_OFF(pick), sizeof(struct sigv4_slot_secret));
	GUARD(crypto_sigv4_signing_key(secret, date, region, service, t->keys, KEY_OFF(pick)));
	GUARD(crypto_secret_write_at(t->keys, FP_OFF(pick), fp, CRYPTO_FINGERPRINT_LEN));
	slice_to_cstr(kslice_cstr(access_key), s->access_key, sizeof s->access_key);
	slice_to_cstr(kslice_cstr(date), s->scope_date, sizeof s->scope_date);
	slice_to_cstr(kslice_cstr(region), s->region, sizeof s->region);
	slice_to_cstr(kslice_cstr(service), s->service, sizeof s->service);
	s->used = true;
	return K_OK;
}

/*
 * Signs `sts` with the signing key for (access key, date, region, service,
 * secret), deriving and caching the key on a miss. The cache key includes
 * the SHA-256 of the secret so that a rotated secret misses instead of
 * verifying with the old key. Eviction is least recently used; the evicted
 * slot is wiped before it is reused.
 */
k_status sigv4_sign_cached(const char *access_key, const struct ksecret *secret, const char *date,
			   const char *region, const char *service, struct kslice sts,
			   uint8_t sig[32])
{
	k_status rc = K_OK;
	uint8_t fp[CRYPTO_FINGERPRINT_LEN];
	struct sigv4_tls *t = sigv4_tls_get();

	memset(fp, 0, sizeof fp);
	ENSURE_GOTO(t != NULL, K_E_INTERNAL);
	ENSURE_GOTO(secret != NULL && ksecret_len(secret) > 0, K_E_INTERNAL);
	ENSURE_GOTO(strlen(access_key) <= SIGV4_MAX_ACCESS_KEY &&
			    strlen(date) == SIGV4_SCOPE_DATE_LEN &&
			    strlen(region) <= SIGV4_MAX_REGION &&
			    strlen(service) <= SIGV4_MAX_SERVICE,
		    K_E_VALIDATION);
	GUARD_GOTO(crypto_secret_fingerprint(secret, fp));

	size_t pick = cache_find(t, access_key, date, region, service, fp);
	if (pick < SIGV4_CACHE_SLOTS) {
		t->stats.hits++;
	} else {
		pick = cache_victim(t);
		GUARD_GOTO(cache_fill(t, pick, access_key, secret, date, region, service, fp));
		t->stats.misses++;
	}
	t->slots[pick].last_used = ++t->tick;
	GUARD_GOTO(crypto_hmac_sha256_at(t->keys, KEY_OFF(pick), CRYPTO_SIGV4_KEY_LEN, sts, sig));
out:
	crypto_wipe(fp, sizeof fp);
	return rc;
}

k_status sigv4_sign(const struct ksecret *secret_key, const char *scope_date, const char *region,
		    const char *service, struct kslice string_to_sign, uint8_t sig[32])
{
	ENSURE(secret_key != NULL && scope_date != NULL && region != NULL && service != NULL &&
		       sig != NULL,
	       K_E_INTERNAL);
	ENSURE(sigv4_scope_valid(scope_date, region, service), K_E_VALIDATION);
	return sigv4_sign_cached("", secret_key, scope_date, region, service, string_to_sign, sig);
}
