/*
 * quota.c — token buckets (GCRA) per account, region and operation class.
 *
 * GCRA keeps one number per bucket, the "theoretical arrival time" (tat):
 * a call at time t is allowed when tat - burst <= t, and then moves tat
 * to max(tat, t) + interval. With interval = 1/rate and burst = one
 * second, that is a token bucket of `rate` tokens refilled at `rate` per
 * second. The update is a compare-and-swap loop on one atomic word.
 * Buckets live in a fixed open-addressed table of atomic pointers; they
 * are created on first use and never freed while serving.
 */
#include "quota/quota.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "metrics/metrics.h"
#include "core/banned.h"

#define TABLE 4096
#define MAX_OVERRIDES 64

struct op_class {
	const char *op;
	const char *cls;   /* shared class name, or NULL: the operation is its own class */
	double rate;
};

/* AWS's defaults (requests-per-second.html, and Secrets Manager's quotas page). */
static const struct op_class table[] = {
	{"Decrypt", "symmetric", 5500},
	{"Encrypt", "symmetric", 5500},
	{"GenerateDataKey", "symmetric", 5500},
	{"GenerateDataKeyWithoutPlaintext", "symmetric", 5500},
	{"GenerateMac", "symmetric", 5500},
	{"GenerateRandom", "symmetric", 5500},
	{"ReEncrypt", "symmetric", 5500},
	{"VerifyMac", "symmetric", 5500},
	{"Sign", "rsa", 500},
	{"Verify", "rsa", 500},
	{"GenerateDataKeyPair", "rsa", 500},
	{"GenerateDataKeyPairWithoutPlaintext", "rsa", 500},
	{"DeriveSharedSecret", "ecc", 300},
	{"GetPublicKey", NULL, 2000},
	{"CancelKeyDeletion", NULL, 5},
	{"ConnectCustomKeyStore", NULL, 5},
	{"CreateAlias", NULL, 5},
	{"CreateCustomKeyStore", NULL, 5},
	{"CreateGrant", NULL, 50},
	{"CreateKey", NULL, 50},
	{"DeleteAlias", NULL, 5},
	{"DeleteCustomKeyStore", NULL, 5},
	{"DeleteImportedKeyMaterial", NULL, 5},
	{"DescribeCustomKeyStores", NULL, 5},
	{"DescribeKey", NULL, 2000},
	{"DisableKey", NULL, 5},
	{"DisableKeyRotation", NULL, 5},
	{"DisconnectCustomKeyStore", NULL, 5},
	{"EnableKey", NULL, 5},
	{"EnableKeyRotation", NULL, 5},
	{"GetKeyLastUsage", NULL, 100},
	{"GetKeyPolicy", NULL, 1000},
	{"GetKeyRotationStatus", NULL, 1000},
	{"GetParametersForImport", NULL, 5},
	{"ImportKeyMaterial", NULL, 5},
	{"ListAliases", NULL, 100},
	{"ListGrants", NULL, 100},
	{"ListKeyPolicies", NULL, 100},
	{"ListKeyRotations", NULL, 100},
	{"ListKeys", NULL, 100},
	{"ListResourceTags", NULL, 100},
	{"ListRetirableGrants", NULL, 100},
	{"PutKeyPolicy", NULL, 5},
	{"ReplicateKey", NULL, 5},
	{"RetireGrant", NULL, 50},
	{"RevokeGrant", NULL, 50},
	{"RotateKeyOnDemand", NULL, 5},
	{"ScheduleKeyDeletion", NULL, 5},
	{"TagResource", NULL, 10},
	{"UntagResource", NULL, 5},
	{"UpdateAlias", NULL, 5},
	{"UpdateCustomKeyStore", NULL, 5},
	{"UpdateKeyDescription", NULL, 5},
	{"UpdatePrimaryRegion", NULL, 5},
	/* Secrets Manager: DescribeSecret and GetSecretValue share 10,000/s. */
	{"GetSecretValue", "secrets-read", 10000},
	{"DescribeSecret", "secrets-read", 10000},
	{"BatchGetSecretValue", NULL, 100},
	{"ListSecrets", NULL, 100},
	{"CreateSecret", NULL, 50},
	{"PutSecretValue", NULL, 50},
	{"UpdateSecret", NULL, 50},
	{"DeleteSecret", NULL, 50},
	{"RotateSecret", NULL, 50},
	/* CloudTrail: LookupEvents is 2 per second per account and region. */
	{"LookupEvents", NULL, 2},
};

struct override {
	char name[64];
	double rate;
};

struct bucket {
	char key[128];
	int64_t interval_ns;
	int64_t burst_ns;
	_Atomic int64_t tat;
};

static atomic_bool on;
static struct override overrides[MAX_OVERRIDES];
static size_t n_overrides;
static _Atomic(struct bucket *) buckets[TABLE];

void quota_enable(bool v)
{
	atomic_store(&on, v);
}

bool quota_enabled(void)
{
	return atomic_load_explicit(&on, memory_order_relaxed);
}

static const struct op_class *find_op(const char *op)
{
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		if (strcmp(table[i].op, op) == 0)
			return &table[i];
	}
	return NULL;
}

static bool known_name(const char *name)
{
	if (find_op(name) != NULL)
		return true;
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		if (table[i].cls != NULL && strcmp(table[i].cls, name) == 0)
			return true;
	}
	return false;
}

k_status quota_set(const char *spec, struct kbuf *msg)
{
	const char *eq = strchr(spec, '=');
	if (eq == NULL || eq == spec || (size_t)(eq - spec) >= sizeof overrides[0].name) {
		kbuf_note(msg, "bad quota %s (want CLASS=RATE or Operation=RATE)", spec);
		return K_E_VALIDATION;
	}
	char name[64];
	snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
	char *end = NULL;
	double rate = strtod(eq + 1, &end);
	if (end == NULL || *end != 0 || !(rate > 0) || rate > 1e9) {
		kbuf_note(msg, "bad quota rate in %s (want a number of requests per second > 0)", spec);
		return K_E_VALIDATION;
	}
	if (!known_name(name)) {
		kbuf_note(msg, "unknown quota class or operation %s", name);
		return K_E_VALIDATION;
	}
	if (n_overrides >= MAX_OVERRIDES) {
		kbuf_note(msg, "too many quota overrides");
		return K_E_VALIDATION;
	}
	snprintf(overrides[n_overrides].name, sizeof overrides[0].name, "%s", name);
	overrides[n_overrides].rate = rate;
	n_overrides++;
	quota_enable(true);
	return K_OK;
}

/* The larger regions' symmetric quota (requests-per-second.html). */
static double symmetric_rate(const char *region)
{
	static const char *const r50k[] = {"us-east-1", "us-west-2", "eu-west-1", NULL};
	static const char *const r10k[] = {"us-east-2", "ap-southeast-1", "ap-southeast-2",
					   "ap-northeast-1", "eu-central-1", "eu-west-2", NULL};
	for (size_t i = 0; r50k[i] != NULL; i++) {
		if (strcmp(region, r50k[i]) == 0)
			return 50000;
	}
	for (size_t i = 0; r10k[i] != NULL; i++) {
		if (strcmp(region, r10k[i]) == 0)
			return 10000;
	}
	return 5500;
}

static const char *class_of(const struct op_class *oc)
{
	return oc->cls != NULL ? oc->cls : oc->op;
}

double quota_rate(const char *region, const char *op)
{
	const struct op_class *oc = find_op(op);
	if (oc == NULL)
		return 0;
	const char *cls = class_of(oc);
	/* The latest override wins; an operation's own override beats its class's. */
	double rate = 0;
	for (size_t i = 0; i < n_overrides; i++) {
		if (strcmp(overrides[i].name, cls) == 0)
			rate = overrides[i].rate;
	}
	for (size_t i = 0; i < n_overrides; i++) {
		if (strcmp(overrides[i].name, op) == 0)
			rate = overrides[i].rate;
	}
	if (rate > 0)
		return rate;
	if (oc->cls != NULL && strcmp(oc->cls, "symmetric") == 0)
		return symmetric_rate(region);
	return oc->rate;
}

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static struct bucket *bucket_for(const char *key, double rate)
{
	uint64_t h = hash(key);
	for (size_t probe = 0; probe < TABLE; probe++) {
		size_t i = (size_t)((h + probe) & (TABLE - 1));
		struct bucket *b = atomic_load_explicit(&buckets[i], memory_order_acquire);
		if (b != NULL) {
			if (strcmp(b->key, key) == 0)
				return b;
			continue;
		}
		struct bucket *nb = calloc(1, sizeof *nb);
		if (nb == NULL)
			return NULL;
		snprintf(nb->key, sizeof nb->key, "%s", key);
		nb->interval_ns = (int64_t)(1e9 / rate);
		if (nb->interval_ns < 1)
			nb->interval_ns = 1;
		nb->burst_ns = rate >= 1 ? 1000000000ll : nb->interval_ns;
		atomic_init(&nb->tat, 0);
		struct bucket *expected = NULL;
		if (atomic_compare_exchange_strong(&buckets[i], &expected, nb))
			return nb;
		free(nb);
		if (strcmp(expected->key, key) == 0)
			return expected;
	}
	return NULL;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

k_status quota_take(const char *account, const char *region, const char *op)
{
	if (!quota_enabled() || op == NULL)
		return K_OK;
	const struct op_class *oc = find_op(op);
	if (oc == NULL)
		return K_OK;
	double rate = quota_rate(region, op);
	char key[128];
	snprintf(key, sizeof key, "%s|%s|%s", account, region, class_of(oc));
	struct bucket *b = bucket_for(key, rate);
	if (b == NULL)
		return K_OK; /* table full: fail open rather than refuse everyone */
	int64_t now = mono_ns();
	int64_t tat = atomic_load_explicit(&b->tat, memory_order_relaxed);
	for (;;) {
		int64_t base = tat > now ? tat : now;
		if (base - now + b->interval_ns > b->burst_ns) {
			metrics_throttled();
			return K_E_THROTTLING;
		}
		if (atomic_compare_exchange_weak_explicit(&b->tat, &tat, base + b->interval_ns,
							  memory_order_relaxed, memory_order_relaxed))
			return K_OK;
	}
}

void quota_reset(void)
{
	for (size_t i = 0; i < TABLE; i++) {
		struct bucket *b = atomic_exchange(&buckets[i], NULL);
		free(b);
	}
}
