/*
 * sigv4.c — AWS Signature Version 4 verification (Authorization header form).
 *
 * The request arrives exactly as the client sent it. sigv4_parse() reads
 * the Authorization header and the request date, sigv4_verify() rebuilds the
 * canonical request and the string to sign the way AWS defines them,
 * signs it with the caller's secret and compares in constant time.
 *
 * Reference: "Create a signed AWS API request", IAM User Guide,
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 *
 * Key material: the secret is read from its ksecret only to derive
 * kSigning. "AWS4" + secret is assembled in a temporary ksecret, kDate,
 * kRegion and kService live on the stack and are wiped before returning,
 * and kSigning is written straight into the calling thread's cache, which
 * is itself one ksecret. Every HMAC runs on a throw-away copy of a keyless
 * OpenSSL context, so no keyed HMAC state outlives the call (freeing an
 * OpenSSL digest context wipes it).
 *
 * Hot path: a request whose key is cached costs one SHA-256 of the secret
 * (the cache key), the SHA-256 of the payload and of the canonical request,
 * and one HMAC. The cache is thread-local, so there is no lock to take.
 */
#include "auth/sigv4.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/thread.h"
#include "core/banned.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_MAX_STRING_TO_SIGN 256
#define SIGV4_AMZ_DATE_LEN 16
#define SIGV4_SCOPE_DATE_LEN 8
/* Longest piece of client input echoed back in an error message. */
#define MSG_ECHO_MAX 256
/* Dates a four-digit year can express: 1970-01-01 .. 9999-12-31T23:59:59Z. */
#define EPOCH_MAX INT64_C(253402300799)

/* ------------------------------------------------------------------ */
/* Byte classes and slice helpers                                      */
/* ------------------------------------------------------------------ */

/* RFC 3986 unreserved: the only bytes SigV4 leaves unencoded. */
static bool is_unreserved(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static bool is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* Separators between the Authorization header's parameters. */
static bool is_param_sep(uint8_t c)
{
	return c == ' ' || c == '\t' || c == ',';
}

/* What "Trimall" removes: any run of white space becomes one space. */
static bool is_trim_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static bool is_lower_alnum_dash(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || is_digit(c) || c == '-';
}

static bool is_access_key_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' ||
	       c == '-' || c == '.';
}

/* RFC 9110 token characters, lowercase letters only (SignedHeaders names). */
static bool is_lower_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || is_digit(c))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static uint8_t ascii_lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

static bool slice_eq_nocase(struct kslice a, struct kslice b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++) {
		if (ascii_lower(a.ptr[i]) != ascii_lower(b.ptr[i]))
			return false;
	}
	return true;
}

static bool slice_all(struct kslice s, bool (*pred)(uint8_t))
{
	for (size_t i = 0; i < s.len; i++) {
		if (!pred(s.ptr[i]))
			return false;
	}
	return true;
}

static struct kslice slice_trim_ows(struct kslice s)
{
	while (s.len > 0 && is_ows(s.ptr[0])) {
		s.ptr++;
		s.len--;
	}
	while (s.len > 0 && is_ows(s.ptr[s.len - 1]))
		s.len--;
	return s;
}

/* memcmp order; a proper prefix sorts first. */
static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t m = an < bn ? an : bn;
	int r = m > 0 ? memcmp(a, b, m) : 0;
	if (r != 0)
		return r;
	return (an > bn) - (an < bn);
}

/* Copies a validated slice into a fixed char array (cap includes the NUL). */
static void slice_to_cstr(struct kslice s, char *dst, size_t cap)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;
	if (n > 0)
		memcpy(dst, s.ptr, n);
	dst[n] = '\0';
}

/* Length of a NUL-terminated string held in a `cap`-byte array, or cap. */
static size_t bounded_len(const char *s, size_t cap)
{
	const char *nul = memchr(s, '\0', cap);
	return nul == NULL ? cap : (size_t)(nul - s);
}

/* ------------------------------------------------------------------ */
/* Cursor helpers: every read stays inside the slice                   */
/* ------------------------------------------------------------------ */

static bool cursor_peek(const struct kcursor *c, uint8_t *out)
{
	if (kcursor_left(c) == 0)
		return false;
	*out = c->ptr[c->pos];
	return true;
}

static void cursor_skip(struct kcursor *c, bool (*pred)(uint8_t))
{
	uint8_t ch;
	while (cursor_peek(c, &ch) && pred(ch))
		c->pos++;
}

/* Skips one `delim` byte if it is next. */
static void cursor_skip_byte(struct kcursor *c, uint8_t delim)
{
	uint8_t ch;
	if (cursor_peek(c, &ch) && ch == delim)
		c->pos++;
}

/* The bytes up to the first one matching `stop` (or to the end). */
static struct kslice cursor_take_until(struct kcursor *c, bool (*stop)(uint8_t))
{
	size_t n = 0;
	size_t left = kcursor_left(c);
	while (n < left && !stop(c->ptr[c->pos + n]))
		n++;
	struct kslice s = kslice_make(c->ptr + c->pos, n);
	c->pos += n;
	return s;
}

/* The bytes up to the first `delim` (or to the end); the delimiter stays. */
static struct kslice cursor_take_until_byte(struct kcursor *c, uint8_t delim)
{
	size_t left = kcursor_left(c);
	if (left == 0)
		return kslice_make(c->ptr, 0);
	const uint8_t *p = c->ptr + c->pos;
	const uint8_t *hit = memchr(p, delim, left);
	size_t n = hit == NULL ? left : (size_t)(hit - p);
	c->pos += n;
	return kslice_make(p, n);
}

/* ------------------------------------------------------------------ */
/* Buffer helpers                                                      */
/* ------------------------------------------------------------------ */

static k_status append_slice(struct kbuf *out, struct kslice s)
{
	if (s.len == 0)
		return K_OK;
	return kbuf_append(out, s.ptr, s.len);
}

/* Cuts `b` back to `len` bytes, wiping the tail (failed appends roll back). */
static void kbuf_rollback(struct kbuf *b, size_t len)
{
	if (b->ptr == NULL || len >= b->len)
		return;
	OPENSSL_cleanse(b->ptr + len, b->len - len);
	b->len = len;
	b->ptr[len] = 0;
}

static void hex_lower(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/*
 * "URI encode every byte except the unreserved characters: 'A'-'Z', 'a'-'z',
 * '0'-'9', '-', '.', '_', and '~'. The space character is a reserved
 * character and must be encoded as "%20" (and not as "+"). Each URI encoded
 * byte is formed by a '%' and the two-digit hexadecimal value of the byte.
 * Letters in the hexadecimal value must be uppercase, for example "%1A"."
 * Runs of unreserved bytes are appended in one call.
 */
static k_status append_uri_encoded(struct kbuf *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i = 0;
	while (i < n) {
		size_t start = i;
		while (i < n && is_unreserved(p[i]))
			i++;
		if (i > start)
			GUARD(kbuf_append(out, p + start, i - start));
		if (i < n) {
			uint8_t esc[3] = {'%', (uint8_t)digits[p[i] >> 4], (uint8_t)digits[p[i] & 15]};
			GUARD(kbuf_append(out, esc, sizeof esc));
			i++;
		}
	}
	return K_OK;
}

/* ------------------------------------------------------------------ */
/* Client messages                                                     */
/* ------------------------------------------------------------------ */

/*
 * Messages are best effort: a full message buffer keeps what fit and the
 * error code is unaffected. Anything taken from the request is echoed
 * through msg_echo(), which caps its length and replaces bytes outside
 * printable ASCII.
 */
static void msg_clear(struct kbuf *msg)
{
	if (msg != NULL)
		kbuf_reset(msg);
}

static void msg_add(struct kbuf *msg, const void *p, size_t n)
{
	if (msg == NULL || n == 0)
		return;
	if (kbuf_append(msg, p, n) != K_OK)
		return; /* too long for the caller's buffer: keep what fit */
}

static void msg_str(struct kbuf *msg, const char *s)
{
	msg_add(msg, s, strlen(s));
}

static void msg_base64(struct kbuf *msg, const uint8_t *p, size_t n)
{
	if (msg == NULL)
		return;
	if (kbuf_append_base64(msg, p, n) != K_OK)
		return; /* too long for the caller's buffer: keep what fit */
}

static void msg_echo(struct kbuf *msg, struct kslice s, size_t max)
{
	uint8_t tmp[MSG_ECHO_MAX + 3];
	size_t n = 0;
	if (max > MSG_ECHO_MAX)
		max = MSG_ECHO_MAX;
	for (size_t i = 0; i < s.len && n < max; i++) {
		uint8_t c = s.ptr[i];
		tmp[n++] = (c >= 0x20 && c < 0x7f) ? c : (uint8_t)'?';
	}
	if (s.len > max) {
		memcpy(tmp + n, "...", 3);
		n += 3;
	}
	msg_add(msg, tmp, n);
}

/*
 * AWS ends its IncompleteSignature messages with "Authorization=<header>".
 * We echo the header too, but with the Signature value replaced: a
 * signature is a credential for the one request it signs, and error bodies
 * end up in logs.
 */
static void msg_authz_echo(struct kbuf *msg, struct kslice authz, struct kslice sig)
{
	msg_str(msg, "Authorization=");
	bool inside = sig.len > 0 && sig.ptr >= authz.ptr && sig.ptr + sig.len <= authz.ptr + authz.len;
	if (!inside) {
		msg_echo(msg, authz, MSG_ECHO_MAX);
		return;
	}
	size_t before = (size_t)(sig.ptr - authz.ptr);
	msg_echo(msg, kslice_make(authz.ptr, before), MSG_ECHO_MAX);
	msg_str(msg, "<redacted>");
	size_t after = before + sig.len;
	msg_echo(msg, kslice_make(authz.ptr + after, authz.len - after), MSG_ECHO_MAX);
}

/* ------------------------------------------------------------------ */
/* Per-thread OpenSSL handles and signing-key cache                    */
/* ------------------------------------------------------------------ */

/* The secret half of a cache slot; the whole array is one ksecret. */
struct sigv4_slot_secret {
	uint8_t signing_key[32];
	uint8_t secret_fp[32]; /* SHA-256 of the secret access key */
};

struct sigv4_slot {
	bool used;
	uint64_t last_used;
	char access_key[SIGV4_MAX_ACCESS_KEY + 1];
	char scope_date[SIGV4_SCOPE_DATE_LEN + 1];
	char region[SIGV4_MAX_REGION + 1];
	char service[SIGV4_MAX_SERVICE + 1];
};

/*
 * Everything a thread needs to verify a signature without allocating or
 * fetching anything per request: the fetched algorithms, one digest and
 * one HMAC context that every hash and MAC reuses (reinitialised, never
 * copied), and scratch buffers for the canonical request and the string
 * to sign.
 */
struct sigv4_tls {
	EVP_MAC *mac;
	EVP_MAC_CTX *hmac;          /* HMAC with SHA-256 selected; rekeyed for each MAC */
	EVP_MD *sha256;
	EVP_MD_CTX *md;             /* reinitialised for each SHA-256 */
	struct kbuf creq;           /* canonical request, sigv4_verify() */
	struct kbuf sts;            /* string to sign, sigv4_verify() */
	struct ksecret *keys;       /* SIGV4_CACHE_SLOTS x struct sigv4_slot_secret */
	struct sigv4_slot slots[SIGV4_CACHE_SLOTS];
	uint64_t tick;
	struct sigv4_cache_stats stats;
};


/* A context for HMAC with SHA-256 selected, no key yet; NULL on failure. */
static EVP_MAC_CTX *hmac_ctx_new(EVP_MAC *mac)
{
	/* OSSL_PARAM wants a mutable string; OpenSSL only reads it. */
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *c = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
	if (c != NULL && EVP_MAC_CTX_set_params(c, params) != 1) {
		EVP_MAC_CTX_free(c);
		c = NULL;
	}
	return c;
}

static void tls_free(struct sigv4_tls *t)
{
	if (t == NULL)
		return;
	ksecret_free(t->keys); /* wipes every cached signing key */
	EVP_MAC_CTX_free(t->hmac); /* wipes the keyed states */
	EVP_MAC_free(t->mac);
	EVP_MD_CTX_free(t->md);
	EVP_MD_free(t->sha256);
	kbuf_release(&t->creq);
	kbuf_release(&t->sts);
	OPENSSL_cleanse(t, sizeof *t);
	free(t);
}

static void tls_drop(void *p)
{
	tls_free(p);
}

/*
 * A thread's state. Fetching the HMAC and SHA-256 implementations once per
 * thread keeps OpenSSL's algorithm lookup (and its locks) off the
 * per-request path. NULL when out of memory.
 */
static void *tls_make(void)
{
	struct sigv4_tls *t = calloc(1, sizeof *t);
	if (t == NULL)
		return NULL;
	kbuf_init(&t->creq, SIGV4_MAX_CANONICAL_REQUEST);
	kbuf_init(&t->sts, SIGV4_MAX_STRING_TO_SIGN);
	t->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	t->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	t->hmac = hmac_ctx_new(t->mac);
	t->md = EVP_MD_CTX_new();
	t->keys = ksecret_new(sizeof(struct sigv4_slot_secret) * SIGV4_CACHE_SLOTS);
	if (t->sha256 == NULL || t->hmac == NULL || t->md == NULL || t->keys == NULL) {
		tls_free(t);
		return NULL;
	}
	return t;
}

/* Runs tls_drop at thread exit for every thread that signed something. */
static struct kthread_slot tls_slot = KTHREAD_SLOT_INIT(tls_make, tls_drop);

/* The calling thread's state, created on first use; NULL when out of memory. */
static struct sigv4_tls *tls_get(void)
{
	return kthread_get(&tls_slot);
}

void sigv4_thread_cleanup(void)
{
	kthread_forget(&tls_slot);
}

void sigv4_cache_stats_get(struct sigv4_cache_stats *out)
{
	if (out == NULL)
		return;
	struct sigv4_tls *t = tls_get();
	if (t == NULL) {
		out->hits = 0;
		out->misses = 0;
		return;
	}
	*out = t->stats;
}

/*
 * SHA-256 on the thread's digest context. EVP_DigestInit_ex2 with the
 * prefetched SHA-256 resets it, so no context is created or freed and no
 * algorithm is looked up per hash (the one-shot EVP_Digest does both).
 * The digest's final step wipes its input block.
 */
static k_status sha256(struct sigv4_tls *t, const void *p, size_t n, uint8_t out[32])
{
	unsigned int outl = 0;
	if (p == NULL)
		p = "";
	if (EVP_DigestInit_ex2(t->md, t->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(t->md, p, n) != 1 || EVP_DigestFinal_ex(t->md, out, &outl) != 1 ||
	    outl != 32)
		return K_E_INTERNAL;
	return K_OK;
}

/*
 * HMAC-SHA256 on the thread's HMAC context: EVP_MAC_init with a key
 * replaces the previous key and state, so one context serves every MAC.
 * The key must not be empty (a NULL key would mean "keep the last one");
 * SigV4's keys never are. The caller calls hmac_scrub() when done.
 */
static k_status hmac_sha256(struct sigv4_tls *t, const uint8_t *key, size_t keylen,
			    const void *data, size_t n, uint8_t out[32])
{
	size_t outl = 0;
	ENSURE(key != NULL && keylen > 0, K_E_INTERNAL);
	if (t->hmac == NULL)
		t->hmac = hmac_ctx_new(t->mac);
	ENSURE(t->hmac != NULL, K_E_INTERNAL);
	ENSURE(EVP_MAC_init(t->hmac, key, keylen, NULL) == 1 &&
		       EVP_MAC_update(t->hmac, data, n) == 1 &&
		       EVP_MAC_final(t->hmac, out, &outl, 32) == 1 && outl == 32,
	       K_E_INTERNAL);
	return K_OK;
}

/*
 * Rekeys the thread's HMAC context with a fixed all-zero key, so that no
 * state keyed with a signing key (nor OpenSSL's copy of the key) stays in
 * OpenSSL's heap between requests: the keys live only in the ksecret
 * cache. If that fails the context is freed instead (which wipes it) and
 * a new one is made on next use.
 */
static void hmac_scrub(struct sigv4_tls *t)
{
	static const uint8_t zero_key[32];
	if (t->hmac == NULL || EVP_MAC_init(t->hmac, zero_key, sizeof zero_key, NULL) == 1)
		return;
	EVP_MAC_CTX_free(t->hmac);
	t->hmac = NULL;
}

/*
 * The signing key, as AWS defines it:
 *   kSecret  = your secret access key
 *   kDate    = HMAC("AWS4" + kSecret, Date)
 *   kRegion  = HMAC(kDate, Region)
 *   kService = HMAC(kRegion, Service)
 *   kSigning = HMAC(kService, "aws4_request")
 * "AWS4" + kSecret is built in a temporary ksecret, the intermediate keys
 * on the stack; all are wiped before returning. `out` is the cache slot.
 */
static k_status derive_signing_key(struct sigv4_tls *t, const struct ksecret *secret,
				   const char *date, const char *region, const char *service,
				   uint8_t out[32])
{
	k_status rc = K_OK;
	uint8_t k_date[32];
	uint8_t k_region[32];
	uint8_t k_service[32];
	size_t slen = ksecret_len(secret);
	struct ksecret *k_secret = ksecret_new(4 + slen);

	ENSURE_GOTO(k_secret != NULL, K_E_INTERNAL);
	uint8_t *ks = ksecret_bytes(k_secret);
	memcpy(ks, "AWS4", 4);
	memcpy(ks + 4, ksecret_cbytes(secret), slen);
	GUARD_GOTO(hmac_sha256(t, ks, 4 + slen, date, strlen(date), k_date));
	GUARD_GOTO(hmac_sha256(t, k_date, sizeof k_date, region, strlen(region), k_region));
	GUARD_GOTO(hmac_sha256(t, k_region, sizeof k_region, service, strlen(service), k_service));
	GUARD_GOTO(hmac_sha256(t, k_service, sizeof k_service, SIGV4_TERMINATOR,
			       strlen(SIGV4_TERMINATOR), out));
out:
	OPENSSL_cleanse(k_date, sizeof k_date);
	OPENSSL_cleanse(k_region, sizeof k_region);
	OPENSSL_cleanse(k_service, sizeof k_service);
	ksecret_free(k_secret);
	return rc;
}

static bool slot_matches(const struct sigv4_slot *s, const struct sigv4_slot_secret *ss,
			 const char *access_key, const char *date, const char *region,
			 const char *service, const uint8_t fp[32])
{
	return s->used && strcmp(s->access_key, access_key) == 0 &&
	       strcmp(s->scope_date, date) == 0 && strcmp(s->region, region) == 0 &&
	       strcmp(s->service, service) == 0 && CRYPTO_memcmp(ss->secret_fp, fp, 32) == 0;
}

/*
 * Signs `sts` with the signing key for (access key, date, region, service,
 * secret), deriving and caching the key on a miss. The cache key includes
 * the SHA-256 of the secret so that a rotated secret misses instead of
 * verifying with the old key. Eviction is least recently used; the evicted
 * slot is wiped before it is reused.
 */
static k_status sign_cached(const char *access_key, const struct ksecret *secret,
			    const char *date, const char *region, const char *service,
			    struct kslice sts, uint8_t sig[32])
{
	k_status rc = K_OK;
	uint8_t fp[32];
	struct sigv4_tls *t = tls_get();

	ENSURE_GOTO(t != NULL, K_E_INTERNAL);
	ENSURE_GOTO(secret != NULL && ksecret_len(secret) > 0, K_E_INTERNAL);
	ENSURE_GOTO(strlen(access_key) <= SIGV4_MAX_ACCESS_KEY &&
			    strlen(date) == SIGV4_SCOPE_DATE_LEN &&
			    strlen(region) <= SIGV4_MAX_REGION && strlen(service) <= SIGV4_MAX_SERVICE,
		    K_E_VALIDATION);
	GUARD_GOTO(sha256(t, ksecret_cbytes(secret), ksecret_len(secret), fp));

	struct sigv4_slot_secret *keys = (struct sigv4_slot_secret *)ksecret_bytes(t->keys);
	size_t pick = SIGV4_CACHE_SLOTS;
	for (size_t i = 0; i < SIGV4_CACHE_SLOTS; i++) {
		if (slot_matches(&t->slots[i], &keys[i], access_key, date, region, service, fp)) {
			pick = i;
			break;
		}
	}
	if (pick < SIGV4_CACHE_SLOTS) {
		t->stats.hits++;
	} else {
		pick = 0;
		for (size_t i = 0; i < SIGV4_CACHE_SLOTS; i++) {
			if (!t->slots[i].used) {
				pick = i;
				break;
			}
			if (t->slots[i].last_used < t->slots[pick].last_used)
				pick = i;
		}
		struct sigv4_slot *s = &t->slots[pick];
		s->used = false;
		OPENSSL_cleanse(&keys[pick], sizeof keys[pick]);
		GUARD_GOTO(derive_signing_key(t, secret, date, region, service,
					      keys[pick].signing_key));
		memcpy(keys[pick].secret_fp, fp, sizeof fp);
		slice_to_cstr(kslice_cstr(access_key), s->access_key, sizeof s->access_key);
		slice_to_cstr(kslice_cstr(date), s->scope_date, sizeof s->scope_date);
		slice_to_cstr(kslice_cstr(region), s->region, sizeof s->region);
		slice_to_cstr(kslice_cstr(service), s->service, sizeof s->service);
		s->used = true;
		t->stats.misses++;
	}
	t->slots[pick].last_used = ++t->tick;
	GUARD_GOTO(hmac_sha256(t, keys[pick].signing_key, 32, sts.len > 0 ? sts.ptr : (const uint8_t *)"",
			       sts.len, sig));
out:
	OPENSSL_cleanse(fp, sizeof fp);
	if (t != NULL)
		hmac_scrub(t);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Dates                                                               */
/* ------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yoe + era * 400 + (*m <= 2);
}

static int64_t days_in_month(int64_t y, int64_t m)
{
	static const int8_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

static bool read_digits(const uint8_t *p, size_t n, int64_t *out)
{
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return true;
}

/* Epoch seconds of a validated civil time; false if any field is out of range. */
static bool civil_to_epoch(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi, int64_t s,
			   int64_t *out)
{
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	    h > 23 || mi > 59 || s > 59)
		return false;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
	return true;
}

/* Writes t as YYYYMMDDTHHMMSSZ; times outside 1970..9999 are clamped. */
static void format_amz_date(int64_t t, char out[SIGV4_AMZ_DATE_LEN + 1])
{
	if (t < 0)
		t = 0;
	if (t > EPOCH_MAX)
		t = EPOCH_MAX;
	int64_t y, m, d;
	int64_t secs = t % 86400;
	civil_from_days(t / 86400, &y, &m, &d);
	int64_t fields[6] = {y, m, d, secs / 3600, secs / 60 % 60, secs % 60};
	const int widths[6] = {4, 2, 2, 2, 2, 2};
	size_t pos = 0;
	for (size_t f = 0; f < 6; f++) {
		int64_t v = fields[f];
		for (int i = widths[f] - 1; i >= 0; i--) {
			out[pos + (size_t)i] = (char)('0' + v % 10);
			v /= 10;
		}
		pos += (size_t)widths[f];
		if (f == 2)
			out[pos++] = 'T';
	}
	out[pos++] = 'Z';
	out[pos] = '\0';
}

/* X-Amz-Date: the ISO 8601 basic format, YYYYMMDD'T'HHMMSS'Z', nothing else. */
static bool parse_amz_date(struct kslice s, int64_t *t)
{
	int64_t y, mo, d, h, mi, sec;
	if (s.len != SIGV4_AMZ_DATE_LEN || s.ptr[8] != 'T' || s.ptr[15] != 'Z')
		return false;
	if (!read_digits(s.ptr, 4, &y) || !read_digits(s.ptr + 4, 2, &mo) ||
	    !read_digits(s.ptr + 6, 2, &d) || !read_digits(s.ptr + 9, 2, &h) ||
	    !read_digits(s.ptr + 11, 2, &mi) || !read_digits(s.ptr + 13, 2, &sec))
		return false;
	return civil_to_epoch(y, mo, d, h, mi, sec, t);
}

/* Date: the RFC 1123 form of RFC 9110's IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT". */
static bool parse_http_date(struct kslice s, int64_t *t)
{
	static const char *const wdays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int64_t y, mo = 0, d, h, mi, sec;
	bool wday_ok = false;

	if (s.len != 29 || s.ptr[3] != ',' || s.ptr[4] != ' ' || s.ptr[7] != ' ' ||
	    s.ptr[11] != ' ' || s.ptr[16] != ' ' || s.ptr[19] != ':' || s.ptr[22] != ':' ||
	    memcmp(s.ptr + 25, " GMT", 4) != 0)
		return false;
	for (size_t i = 0; i < 7; i++)
		wday_ok = wday_ok || memcmp(s.ptr, wdays[i], 3) == 0;
	for (size_t i = 0; i < 12; i++) {
		if (memcmp(s.ptr + 8, months[i], 3) == 0)
			mo = (int64_t)i + 1;
	}
	if (!wday_ok || mo == 0)
		return false;
	if (!read_digits(s.ptr + 5, 2, &d) || !read_digits(s.ptr + 12, 4, &y) ||
	    !read_digits(s.ptr + 17, 2, &h) || !read_digits(s.ptr + 20, 2, &mi) ||
	    !read_digits(s.ptr + 23, 2, &sec))
		return false;
	return civil_to_epoch(y, mo, d, h, mi, sec, t);
}

/* ------------------------------------------------------------------ */
/* Request headers                                                     */
/* ------------------------------------------------------------------ */

/* Number of headers named `name` (any case); *first gets the first value. */
static size_t header_find(const struct sigv4_request *req, const char *name, struct kslice *first)
{
	struct kslice want = kslice_cstr(name);
	size_t n = 0;
	*first = kslice_make("", 0);
	for (size_t i = 0; i < req->n_headers; i++) {
		if (!slice_eq_nocase(req->headers[i].name, want))
			continue;
		if (n == 0)
			*first = req->headers[i].value;
		n++;
	}
	return n;
}

struct signed_list {
	struct kslice names[SIGV4_MAX_SIGNED_HEADERS];
	size_t n;
};

/*
 * Splits SignedHeaders ("content-type;host;x-amz-date"). AWS: "the list of
 * headers that you included in CanonicalHeaders ... sorted and in lowercase,
 * separated by semicolons". We insist on exactly that form, so there is one
 * way to write each canonical request.
 */
static k_status signed_headers_split(struct kslice list, struct signed_list *out)
{
	struct kcursor c = kcursor_make(list);
	out->n = 0;
	ENSURE(list.len > 0, K_E_INCOMPLETE_SIGNATURE);
	while (true) {
		struct kslice name = cursor_take_until_byte(&c, ';');
		ENSURE(name.len > 0 && slice_all(name, is_lower_tchar), K_E_INCOMPLETE_SIGNATURE);
		ENSURE(out->n < SIGV4_MAX_SIGNED_HEADERS, K_E_INCOMPLETE_SIGNATURE);
		if (out->n > 0) {
			struct kslice prev = out->names[out->n - 1];
			ENSURE(bytes_cmp(prev.ptr, prev.len, name.ptr, name.len) < 0,
			       K_E_INCOMPLETE_SIGNATURE);
		}
		out->names[out->n++] = name;
		if (kcursor_left(&c) == 0)
			break;
		cursor_skip_byte(&c, ';');
		ENSURE(kcursor_left(&c) > 0, K_E_INCOMPLETE_SIGNATURE); /* trailing ';' */
	}
	return K_OK;
}

/*
 * "Trimall": "Trim any leading or trailing spaces ... Convert sequential
 * spaces to a single space." (AWS's get-header-value-trim example turns
 * "a   b   c" into "a b c", quotes or not.)
 */
static k_status append_trimall(struct kbuf *out, struct kslice v)
{
	size_t i = 0;
	bool first = true;
	while (i < v.len) {
		while (i < v.len && is_trim_space(v.ptr[i]))
			i++;
		size_t start = i;
		while (i < v.len && !is_trim_space(v.ptr[i]))
			i++;
		if (i == start)
			continue;
		if (!first)
			GUARD(kbuf_append_byte(out, ' '));
		GUARD(kbuf_append(out, v.ptr + start, i - start));
		first = false;
	}
	return K_OK;
}

/*
 * One canonical header line's value: every header of that name, in the
 * order received, trimmed and joined with ','. A signed header the request
 * does not carry cannot have been signed by this request's sender.
 */
static k_status append_header_values(struct kbuf *out, const struct sigv4_request *req,
				     struct kslice name)
{
	bool found = false;
	for (size_t i = 0; i < req->n_headers; i++) {
		if (!slice_eq_nocase(req->headers[i].name, name))
			continue;
		if (found)
			GUARD(kbuf_append_byte(out, ','));
		GUARD(append_trimall(out, req->headers[i].value));
		found = true;
	}
	ENSURE(found, K_E_INVALID_SIGNATURE);
	return K_OK;
}

/* ------------------------------------------------------------------ */
/* Canonical request                                                   */
/* ------------------------------------------------------------------ */

/*
 * CanonicalURI for every service but S3: "Normalize URI paths according to
 * RFC 3986. Remove redundant and relative path components. Each path
 * segment must be URI-encoded twice". The path we get is the one on the
 * wire, which the client has already encoded once, so encoding each raw
 * segment once more is the second encoding ("/a%20b" -> "/a%2520b", as in
 * AWS's get-space example).
 *
 * Normalization follows the AWS SDKs: empty and "." segments are dropped,
 * ".." drops the previous segment, and a trailing '/' is kept when at
 * least one segment remains. An empty path is "/".
 */
static k_status canonical_uri(struct kslice path, struct kbuf *out)
{
	struct kslice segs[SIGV4_MAX_PATH_SEGMENTS];
	size_t n = 0;
	struct kcursor c = kcursor_make(path);

	while (kcursor_left(&c) > 0) {
		struct kslice seg = cursor_take_until_byte(&c, '/');
		cursor_skip_byte(&c, '/');
		if (seg.len == 0 || kslice_eq_cstr(seg, "."))
			continue;
		if (kslice_eq_cstr(seg, "..")) {
			if (n > 0)
				n--;
			continue;
		}
		ENSURE(n < SIGV4_MAX_PATH_SEGMENTS, K_E_VALIDATION);
		segs[n++] = seg;
	}
	GUARD(kbuf_append_byte(out, '/'));
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			GUARD(kbuf_append_byte(out, '/'));
		GUARD(append_uri_encoded(out, segs[i].ptr, segs[i].len));
	}
	if (n > 0 && path.ptr[path.len - 1] == '/')
		GUARD(kbuf_append_byte(out, '/'));
	return K_OK;
}

/*
 * One query name or value, canonical: percent-escapes from the wire are
 * decoded and the bytes re-encoded with the SigV4 rules, so "%2f", "%2F"
 * and "/" all come out as "%2F". A '%' not followed by two hex digits is
 * a literal '%', and '+' is a literal '+' (SigV4 never reads it as a
 * space); both match AWS's post-vanilla-query-nonunreserved example.
 */
static k_status append_query_component(struct kbuf *out, struct kslice s)
{
	for (size_t i = 0; i < s.len; i++) {
		uint8_t c = s.ptr[i];
		if (c == '%' && s.len - i >= 3) {
			int hi = hex_value(s.ptr[i + 1]);
			int lo = hex_value(s.ptr[i + 2]);
			if (hi >= 0 && lo >= 0) {
				c = (uint8_t)(hi << 4 | lo);
				i += 2;
			}
		}
		GUARD(append_uri_encoded(out, &c, 1));
	}
	return K_OK;
}

struct query_param {
	size_t name_off, name_len;
	size_t value_off, value_len;
};

static int query_param_cmp(const uint8_t *base, const struct query_param *a,
			   const struct query_param *b)
{
	int r = bytes_cmp(base + a->name_off, a->name_len, base + b->name_off, b->name_len);
	if (r != 0)
		return r;
	return bytes_cmp(base + a->value_off, a->value_len, base + b->value_off, b->value_len);
}

/*
 * CanonicalQueryString: "URI-encode each parameter name and value ...
 * Sort the parameters by parameter name ... sorting occurs after
 * encoding. If two parameters have the same name, sort by value. ... If
 * a parameter has no value, use an empty string" ("Param1" -> "Param1=").
 * Empty components ("a=1&&b=2") carry no parameter and are skipped.
 * The encoded names and values are collected in one scratch buffer and
 * sorted by insertion (at most SIGV4_MAX_QUERY_PARAMS of them).
 */
static k_status canonical_query(struct kslice query, struct kbuf *out)
{
	k_status rc = K_OK;
	struct query_param params[SIGV4_MAX_QUERY_PARAMS];
	size_t n = 0;
	struct kbuf enc;
	struct kcursor c = kcursor_make(query);

	kbuf_init(&enc, SIGV4_MAX_CANONICAL_REQUEST);
	while (kcursor_left(&c) > 0) {
		struct kslice pair = cursor_take_until_byte(&c, '&');
		cursor_skip_byte(&c, '&');
		if (pair.len == 0)
			continue;
		ENSURE_GOTO(n < SIGV4_MAX_QUERY_PARAMS, K_E_VALIDATION);
		struct kcursor pc = kcursor_make(pair);
		struct kslice name = cursor_take_until_byte(&pc, '=');
		cursor_skip_byte(&pc, '=');
		struct kslice value = kslice_make(pc.ptr + pc.pos, kcursor_left(&pc));
		struct query_param *p = &params[n];
		p->name_off = enc.len;
		GUARD_GOTO(append_query_component(&enc, name));
		p->name_len = enc.len - p->name_off;
		p->value_off = enc.len;
		GUARD_GOTO(append_query_component(&enc, value));
		p->value_len = enc.len - p->value_off;
		n++;
	}
	if (n == 0)
		goto out;
	for (size_t i = 1; i < n; i++) {
		struct query_param key = params[i];
		size_t j = i;
		while (j > 0 && query_param_cmp(enc.ptr, &params[j - 1], &key) > 0) {
			params[j] = params[j - 1];
			j--;
		}
		params[j] = key;
	}
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			GUARD_GOTO(kbuf_append_byte(out, '&'));
		GUARD_GOTO(append_slice(out, kslice_make(enc.ptr + params[i].name_off, params[i].name_len)));
		GUARD_GOTO(kbuf_append_byte(out, '='));
		GUARD_GOTO(append_slice(out, kslice_make(enc.ptr + params[i].value_off, params[i].value_len)));
	}
out:
	kbuf_release(&enc);
	return rc;
}

/*
 * The last line: "HexEncode(Hash(RequestPayload))". When the request
 * carries X-Amz-Content-Sha256 the client signed that value instead; we
 * accept it only if it is the payload's real hash, so a client cannot sign
 * one body and send another.
 *
 * UNSIGNED-PAYLOAD is refused too. It is an Amazon S3 option ("set the
 * value to the literal string UNSIGNED-PAYLOAD (unsigned payload option)",
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html);
 * the other services hash the body they received, so such a signature does
 * not match and the answer is InvalidSignatureException with the usual
 * mismatch message. For a KMS every body must be covered by the signature:
 * an unsigned body would let whoever sits on the path swap the plaintext or
 * the key id of a signed request.
 */
static k_status append_payload_hash(struct sigv4_tls *t, const struct sigv4_request *req,
				    struct kbuf *out)
{
	struct kslice claimed;
	uint8_t digest[32];
	char hex[65];
	size_t n = header_find(req, "x-amz-content-sha256", &claimed);

	ENSURE(n <= 1, K_E_INCOMPLETE_SIGNATURE);
	claimed = slice_trim_ows(claimed);
	GUARD(sha256(t, req->payload.ptr, req->payload.len, digest));
	hex_lower(digest, sizeof digest, hex);
	if (n == 0)
		return kbuf_append(out, hex, 64);
	ENSURE(slice_eq_nocase(claimed, kslice_make(hex, 64)), K_E_INVALID_SIGNATURE);
	return append_slice(out, claimed); /* what the client hashed into its signature */
}

/*
 * CanonicalRequest =
 *   HTTPRequestMethod + '\n' + CanonicalURI + '\n' + CanonicalQueryString + '\n' +
 *   CanonicalHeaders + '\n' + SignedHeaders + '\n' + HexEncode(Hash(RequestPayload))
 * where CanonicalHeaders is one "name:value\n" line per signed header, so
 * the headers block ends with an empty line.
 */
k_status sigv4_canonical_request(const struct sigv4_request *req, struct kslice signed_headers,
				 struct kbuf *out)
{
	k_status rc = K_OK;
	struct signed_list list;
	struct sigv4_tls *t = tls_get();
	size_t start = out != NULL ? out->len : 0;

	ENSURE_GOTO(req != NULL && out != NULL && t != NULL, K_E_INTERNAL);
	ENSURE_GOTO(req->headers != NULL || req->n_headers == 0, K_E_INTERNAL);
	ENSURE_GOTO(req->method.len > 0, K_E_VALIDATION);
	GUARD_GOTO(signed_headers_split(signed_headers, &list));

	GUARD_GOTO(append_slice(out, req->method));
	GUARD_GOTO(kbuf_append_byte(out, '\n'));
	GUARD_GOTO(canonical_uri(req->path, out));
	GUARD_GOTO(kbuf_append_byte(out, '\n'));
	GUARD_GOTO(canonical_query(req->query, out));
	GUARD_GOTO(kbuf_append_byte(out, '\n'));
	for (size_t i = 0; i < list.n; i++) {
		GUARD_GOTO(append_slice(out, list.names[i]));
		GUARD_GOTO(kbuf_append_byte(out, ':'));
		GUARD_GOTO(append_header_values(out, req, list.names[i]));
		GUARD_GOTO(kbuf_append_byte(out, '\n'));
	}
	GUARD_GOTO(kbuf_append_byte(out, '\n'));
	GUARD_GOTO(append_slice(out, signed_headers));
	GUARD_GOTO(kbuf_append_byte(out, '\n'));
	GUARD_GOTO(append_payload_hash(t, req, out));
out:
	if (rc != K_OK && out != NULL)
		kbuf_rollback(out, start);
	return rc;
}

/* ------------------------------------------------------------------ */
/* String to sign and signature                                        */
/* ------------------------------------------------------------------ */

static bool scope_strings_valid(const char *scope_date, const char *region, const char *service)
{
	size_t dl = bounded_len(scope_date, SIGV4_SCOPE_DATE_LEN + 1);
	size_t rl = bounded_len(region, SIGV4_MAX_REGION + 1);
	size_t sl = bounded_len(service, SIGV4_MAX_SERVICE + 1);
	return dl == SIGV4_SCOPE_DATE_LEN && rl > 0 && rl <= SIGV4_MAX_REGION && sl > 0 &&
	       sl <= SIGV4_MAX_SERVICE;
}

/*
 * StringToSign = "AWS4-HMAC-SHA256" + '\n' + RequestDateTime + '\n' +
 *                CredentialScope + '\n' + HexEncode(Hash(CanonicalRequest))
 * with CredentialScope = date/region/service/aws4_request.
 */
k_status sigv4_string_to_sign(const char *amz_date, const char *scope_date, const char *region,
			      const char *service, struct kslice canonical_request,
			      struct kbuf *out)
{
	k_status rc = K_OK;
	uint8_t digest[32];
	char hex[65];
	struct sigv4_tls *t = tls_get();
	size_t start = out != NULL ? out->len : 0;

	ENSURE_GOTO(amz_date != NULL && scope_date != NULL && region != NULL && service != NULL &&
			    out != NULL && t != NULL,
		    K_E_INTERNAL);
	ENSURE_GOTO(bounded_len(amz_date, SIGV4_AMZ_DATE_LEN + 1) == SIGV4_AMZ_DATE_LEN,
		    K_E_VALIDATION);
	ENSURE_GOTO(scope_strings_valid(scope_date, region, service), K_E_VALIDATION);
	GUARD_GOTO(sha256(t, canonical_request.ptr, canonical_request.len, digest));
	hex_lower(digest, sizeof digest, hex);

	GUARD_GOTO(kbuf_append_str(out, SIGV4_ALGORITHM "\n"));
	GUARD_GOTO(kbuf_append_str(out, amz_date));
	GUARD_GOTO(kbuf_append_byte(out, '\n'));
	GUARD_GOTO(kbuf_append_str(out, scope_date));
	GUARD_GOTO(kbuf_append_byte(out, '/'));
	GUARD_GOTO(kbuf_append_str(out, region));
	GUARD_GOTO(kbuf_append_byte(out, '/'));
	GUARD_GOTO(kbuf_append_str(out, service));
	GUARD_GOTO(kbuf_append_str(out, "/" SIGV4_TERMINATOR "\n"));
	GUARD_GOTO(kbuf_append(out, hex, 64));
out:
	if (rc != K_OK && out != NULL)
		kbuf_rollback(out, start);
	return rc;
}

k_status sigv4_sign(const struct ksecret *secret_key, const char *scope_date, const char *region,
		    const char *service, struct kslice string_to_sign, uint8_t sig[32])
{
	ENSURE(secret_key != NULL && scope_date != NULL && region != NULL && service != NULL &&
		       sig != NULL,
	       K_E_INTERNAL);
	ENSURE(scope_strings_valid(scope_date, region, service), K_E_VALIDATION);
	return sign_cached("", secret_key, scope_date, region, service, string_to_sign, sig);
}

/* ------------------------------------------------------------------ */
/* Parsing the Authorization header                                    */
/* ------------------------------------------------------------------ */

struct authz_fields {
	struct kslice algorithm;
	struct kslice credential;
	struct kslice signed_headers;
	struct kslice signature;
	bool has_credential, has_signed_headers, has_signature;
};

/*
 * "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
 * The algorithm is the first word; the parameters follow, separated by any
 * run of commas and white space (AWS accepts ", ", "," and " "). Parameter
 * names are case-sensitive; unknown ones are ignored, repeated ones are an
 * error. A parameter without '=' gets AWS's message, which identifies the
 * header by its hash instead of repeating it.
 */
static k_status authz_tokenize(struct sigv4_tls *t, struct kslice authz, struct authz_fields *f,
			       struct kbuf *msg)
{
	struct kcursor c = kcursor_make(authz);
	memset(f, 0, sizeof *f);
	f->algorithm = cursor_take_until(&c, is_param_sep);

	while (true) {
		cursor_skip(&c, is_param_sep);
		if (kcursor_left(&c) == 0)
			break;
		struct kslice tok = cursor_take_until(&c, is_param_sep);
		struct kcursor tc = kcursor_make(tok);
		struct kslice key = cursor_take_until_byte(&tc, '=');
		if (kcursor_left(&tc) == 0) {
			uint8_t digest[32];
			GUARD(sha256(t, authz.ptr, authz.len, digest));
			msg_str(msg, "Invalid key=value pair (missing equal-sign) in Authorization "
				     "header (hashed with SHA-256 and encoded with Base64): '");
			msg_base64(msg, digest, sizeof digest);
			msg_str(msg, "'.");
			return K_E_INCOMPLETE_SIGNATURE;
		}
		cursor_skip_byte(&tc, '=');
		struct kslice value = kslice_make(tc.ptr + tc.pos, kcursor_left(&tc));
		bool *seen = NULL;
		struct kslice *slot = NULL;
		if (kslice_eq_cstr(key, "Credential")) {
			seen = &f->has_credential;
			slot = &f->credential;
		} else if (kslice_eq_cstr(key, "SignedHeaders")) {
			seen = &f->has_signed_headers;
			slot = &f->signed_headers;
		} else if (kslice_eq_cstr(key, "Signature")) {
			seen = &f->has_signature;
			slot = &f->signature;
		} else {
			continue;
		}
		if (*seen) {
			msg_str(msg, "Authorization header has a duplicate '");
			msg_echo(msg, key, 16);
			msg_str(msg, "' parameter.");
			return K_E_INCOMPLETE_SIGNATURE;
		}
		*seen = true;
		*slot = value;
	}
	return K_OK;
}

/*
 * The request time: X-Amz-Date if present, else the Date header. Either
 * may appear once. Writes the time in both forms into `a`.
 */
static k_status parse_request_date(const struct sigv4_request *req, struct sigv4_auth *a,
				   struct kbuf *msg)
{
	struct kslice amz, http;
	size_t n_amz = header_find(req, "x-amz-date", &amz);
	size_t n_http = header_find(req, "date", &http);
	bool ok;
	struct kslice got;

	if (n_amz > 1 || (n_amz == 0 && n_http > 1)) {
		msg_str(msg, n_amz > 1 ? "Found multiple 'X-Amz-Date' headers."
				       : "Found multiple 'Date' headers.");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	if (n_amz == 1) {
		got = slice_trim_ows(amz);
		ok = parse_amz_date(got, &a->request_time);
	} else {
		got = slice_trim_ows(http);
		ok = parse_http_date(got, &a->request_time);
	}
	if (!ok) {
		msg_str(msg, "Date must be in ISO-8601 'basic format'. Got '");
		msg_echo(msg, got, 64);
		msg_str(msg, "'. See http://en.wikipedia.org/wiki/ISO_8601");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	format_amz_date(a->request_time, a->amz_date);
	return K_OK;
}

/*
 * Credential = <access key>/<YYYYMMDD>/<region>/<service>/aws4_request.
 * The shape is IncompleteSignature; a scope that does not fit this request
 * (terminator, date) is InvalidSignature with AWS's messages, several at
 * once when several parts are wrong. The service is checked by
 * sigv4_verify(), which knows which one is expected. Like AWS we ignore
 * trailing slashes (".../aws4_request/").
 */
static k_status parse_credential(struct kslice cred, struct sigv4_auth *a, struct kbuf *msg)
{
	struct kslice parts[5];
	size_t n = 0;
	struct kslice trimmed = cred;
	while (trimmed.len > 0 && trimmed.ptr[trimmed.len - 1] == '/')
		trimmed.len--;
	struct kcursor c = kcursor_make(trimmed);

	while (n < 5) {
		parts[n++] = cursor_take_until_byte(&c, '/');
		if (kcursor_left(&c) == 0)
			break;
		cursor_skip_byte(&c, '/');
	}
	if (n != 5 || kcursor_left(&c) > 0) {
		msg_str(msg, "Credential must have exactly 5 slash-delimited elements, e.g. "
			     "keyid/date/region/service/term, got '");
		msg_echo(msg, cred, MSG_ECHO_MAX);
		msg_str(msg, "'");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	struct kslice key = parts[0], date = parts[1], region = parts[2], service = parts[3];
	struct kslice term = parts[4];
	if (key.len == 0 || key.len > SIGV4_MAX_ACCESS_KEY || !slice_all(key, is_access_key_char)) {
		msg_str(msg, "Credential should contain a valid access key ID, not '");
		msg_echo(msg, key, 32);
		msg_str(msg, "'. ");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	if (region.len == 0 || region.len > SIGV4_MAX_REGION ||
	    !slice_all(region, is_lower_alnum_dash)) {
		msg_str(msg, "Credential should be scoped to a valid region, not '");
		msg_echo(msg, region, SIGV4_MAX_REGION);
		msg_str(msg, "'. ");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	if (service.len == 0 || service.len > SIGV4_MAX_SERVICE ||
	    !slice_all(service, is_lower_alnum_dash)) {
		msg_str(msg, "Credential should be scoped to a valid service, not '");
		msg_echo(msg, service, SIGV4_MAX_SERVICE);
		msg_str(msg, "'. ");
		return K_E_INCOMPLETE_SIGNATURE;
	}

	struct kslice want_date = kslice_make(a->amz_date, SIGV4_SCOPE_DATE_LEN);
	bool term_ok = kslice_eq_cstr(term, SIGV4_TERMINATOR);
	bool date_ok = kslice_eq(date, want_date);
	if (!term_ok) {
		msg_str(msg, "Credential should be scoped with a valid terminator: 'aws4_request', not '");
		msg_echo(msg, term, 32);
		msg_str(msg, "'. ");
	}
	if (!date_ok) {
		msg_str(msg, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
			     "of date from HTTP: '");
		msg_echo(msg, date, 16);
		msg_str(msg, "' != '");
		msg_add(msg, want_date.ptr, want_date.len);
		msg_str(msg, "', from '");
		msg_str(msg, a->amz_date);
		msg_str(msg, "'.");
	}
	ENSURE(term_ok && date_ok, K_E_INVALID_SIGNATURE);

	slice_to_cstr(key, a->access_key, sizeof a->access_key);
	slice_to_cstr(date, a->scope_date, sizeof a->scope_date);
	slice_to_cstr(region, a->region, sizeof a->region);
	slice_to_cstr(service, a->service, sizeof a->service);
	return K_OK;
}

/* SignedHeaders: well formed, within bounds, and "host" among them. */
static k_status check_signed_headers(struct kslice list, struct kbuf *msg)
{
	struct signed_list names;
	bool host = false;

	if (list.len > 0) {
		if (signed_headers_split(list, &names) != K_OK) {
			msg_str(msg, "SignedHeaders must list at most 64 distinct lowercase header "
				     "names, sorted and separated by ';'.");
			return K_E_INCOMPLETE_SIGNATURE;
		}
		for (size_t i = 0; i < names.n && !host; i++)
			host = kslice_eq_cstr(names.names[i], "host");
	}
	if (!host) {
		/* AWS requires the host to be signed. */
		msg_str(msg, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
		return K_E_INVALID_SIGNATURE;
	}
	return K_OK;
}

/*
 * Headers that must be signed when the request carries them. AWS's
 * signing guide: "The CanonicalHeaders list must include the following:
 * HTTP host header. If the Content-Type header is present in the request,
 * it must be added to the CanonicalHeaders list. Any x-amz-* headers that
 * you plan to include in your request must also be added."
 * (https://docs.aws.amazon.com/general/latest/gr/sigv4-create-canonical-request.html,
 * since moved into the IAM User Guide). Amazon S3 refuses an unsigned
 * one with "There were headers present in the request which were not
 * signed", and we answer with the same words. A request whose SignedHeaders passes this check has
 * every listed header covered by the signature, so no one on the way can
 * change it (the operation named by X-Amz-Target, for instance).
 */
k_status sigv4_require_signed(const struct sigv4_request *req, const struct sigv4_auth *auth,
			      const char *const *names, struct kbuf *msg)
{
	struct signed_list list;
	struct kslice ignored;
	bool first = true;

	msg_clear(msg);
	ENSURE(req != NULL && auth != NULL, K_E_INTERNAL);
	if (names == NULL)
		return K_OK;
	ENSURE(signed_headers_split(auth->signed_headers, &list) == K_OK, K_E_INCOMPLETE_SIGNATURE);
	for (size_t i = 0; names[i] != NULL; i++) {
		if (header_find(req, names[i], &ignored) == 0)
			continue;
		bool found = false;
		for (size_t j = 0; j < list.n && !found; j++)
			found = kslice_eq_cstr(list.names[j], names[i]);
		if (found)
			continue;
		msg_str(msg, first ? "There were headers present in the request which were not signed: "
				   : ", ");
		msg_str(msg, names[i]);
		first = false;
	}
	if (first)
		return K_OK;
	msg_str(msg, ".");
	return K_E_INVALID_SIGNATURE;
}

/* The signature is 64 hex digits; anything else cannot match. */
static k_status parse_signature(struct kslice hex, uint8_t out[32])
{
	ENSURE(hex.len == 64, K_E_INVALID_SIGNATURE);
	for (size_t i = 0; i < 32; i++) {
		int hi = hex_value(hex.ptr[2 * i]);
		int lo = hex_value(hex.ptr[2 * i + 1]);
		ENSURE(hi >= 0 && lo >= 0, K_E_INVALID_SIGNATURE);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return K_OK;
}

/*
 * Reads the Authorization header and the date, checking them in the order
 * AWS does: the parameters are present, the date is readable, "host" is
 * signed, the algorithm is ours, the credential has its five parts and its
 * scope fits the request. `out` is written only on success.
 */
k_status sigv4_parse(const struct sigv4_request *req, struct sigv4_auth *out, struct kbuf *msg)
{
	struct sigv4_auth a;
	struct authz_fields f;
	struct kslice authz, token;
	struct sigv4_tls *t = tls_get();

	msg_clear(msg);
	ENSURE(req != NULL && out != NULL && t != NULL, K_E_INTERNAL);
	ENSURE(req->headers != NULL || req->n_headers == 0, K_E_INTERNAL);
	memset(&a, 0, sizeof a);

	size_t n_authz = header_find(req, "authorization", &authz);
	authz = slice_trim_ows(authz);
	ENSURE(n_authz > 0 && (n_authz > 1 || authz.len > 0), K_E_MISSING_AUTH);
	if (n_authz > 1) {
		msg_str(msg, "Found multiple 'Authorization' headers.");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	GUARD(authz_tokenize(t, authz, &f, msg));

	struct kslice ignored;
	bool has_date = header_find(req, "x-amz-date", &ignored) > 0 ||
			header_find(req, "date", &ignored) > 0;
	bool has_cred = f.has_credential && f.credential.len > 0;
	bool has_sig = f.has_signature && f.signature.len > 0;
	if (!has_cred || !has_sig || !f.has_signed_headers || !has_date) {
		if (!has_cred)
			msg_str(msg, "Authorization header requires 'Credential' parameter. ");
		if (!has_sig)
			msg_str(msg, "Authorization header requires 'Signature' parameter. ");
		if (!f.has_signed_headers)
			msg_str(msg, "Authorization header requires 'SignedHeaders' parameter. ");
		if (!has_date)
			msg_str(msg, "Authorization header requires existence of either a "
				     "'X-Amz-Date' or a 'Date' header. ");
		msg_authz_echo(msg, authz, f.signature);
		return K_E_INCOMPLETE_SIGNATURE;
	}

	GUARD(parse_request_date(req, &a, msg));
	GUARD(check_signed_headers(f.signed_headers, msg));
	if (!kslice_eq_cstr(f.algorithm, SIGV4_ALGORITHM)) {
		msg_str(msg, "Unsupported AWS 'algorithm': '");
		msg_echo(msg, f.algorithm, 32);
		msg_str(msg, "' (only " SIGV4_ALGORITHM " for now). ");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	GUARD(parse_credential(f.credential, &a, msg));
	GUARD(parse_signature(f.signature, a.signature));

	size_t n_token = header_find(req, "x-amz-security-token", &token);
	if (n_token > 1) {
		msg_str(msg, "Found multiple 'X-Amz-Security-Token' headers.");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	a.security_token = slice_trim_ows(token);
	a.signed_headers = f.signed_headers;
	*out = a;
	return K_OK;
}

/* ------------------------------------------------------------------ */
/* Verification                                                        */
/* ------------------------------------------------------------------ */

/*
 * "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z
 * (20150830T124600Z - 5 min.)" and, for a clock ahead of ours, "Signature
 * not yet current: <date> is still later than <now + 5 min> (<now> + 5
 * min.)", both InvalidSignature, as AWS words them.
 */
static k_status check_freshness(const struct sigv4_auth *auth, int64_t now, struct kbuf *msg)
{
	char now_s[SIGV4_AMZ_DATE_LEN + 1];
	char edge_s[SIGV4_AMZ_DATE_LEN + 1];
	bool expired = now > INT64_MIN + SIGV4_MAX_SKEW_SECONDS &&
		       auth->request_time < now - SIGV4_MAX_SKEW_SECONDS;
	bool early = now < INT64_MAX - SIGV4_MAX_SKEW_SECONDS &&
		     auth->request_time > now + SIGV4_MAX_SKEW_SECONDS;

	if (!expired && !early)
		return K_OK;
	format_amz_date(now, now_s);
	format_amz_date(expired ? now - SIGV4_MAX_SKEW_SECONDS : now + SIGV4_MAX_SKEW_SECONDS,
			edge_s);
	msg_str(msg, expired ? "Signature expired: " : "Signature not yet current: ");
	msg_str(msg, auth->amz_date);
	msg_str(msg, expired ? " is now earlier than " : " is still later than ");
	msg_str(msg, edge_s);
	msg_str(msg, " (");
	msg_str(msg, now_s);
	msg_str(msg, expired ? " - 5 min.)" : " + 5 min.)");
	return K_E_INVALID_SIGNATURE;
}

/*
 * Empties a per-thread scratch buffer for the next request (wiping what it
 * held). A buffer that grew past SIGV4_SCRATCH_KEEP for an unusually large
 * request is freed instead, so a thread does not keep it for good.
 */
#define SIGV4_SCRATCH_KEEP 8192
static void scratch_done(struct kbuf *b)
{
	if (b->cap > SIGV4_SCRATCH_KEEP)
		kbuf_release(b);
	else
		kbuf_reset(b);
}

/* A sigv4_auth that did not come from sigv4_parse() is a caller bug. */
static bool auth_valid(const struct sigv4_auth *a)
{
	return bounded_len(a->access_key, sizeof a->access_key) <= SIGV4_MAX_ACCESS_KEY &&
	       bounded_len(a->amz_date, sizeof a->amz_date) == SIGV4_AMZ_DATE_LEN &&
	       scope_strings_valid(a->scope_date, a->region, a->service) &&
	       a->signed_headers.ptr != NULL && a->signed_headers.len > 0;
}

/*
 * Date window, service, then the signature itself: canonical request,
 * string to sign, HMAC with the (cached) signing key, constant-time
 * comparison. A mismatch leaves `msg` empty, so the client gets AWS's
 * standard text.
 */
k_status sigv4_verify(const struct sigv4_request *req, const struct sigv4_auth *auth,
		      const struct ksecret *secret_key, const char *expected_service, int64_t now,
		      struct kbuf *msg)
{
	k_status rc = K_OK;
	uint8_t sig[32];
	struct sigv4_tls *t = tls_get();

	memset(sig, 0, sizeof sig);
	msg_clear(msg);
	ENSURE_GOTO(t != NULL, K_E_INTERNAL);
	ENSURE_GOTO(req != NULL && auth != NULL && secret_key != NULL, K_E_INTERNAL);
	ENSURE_GOTO(auth_valid(auth), K_E_INTERNAL);

	GUARD_GOTO(check_freshness(auth, now, msg));
	if (expected_service != NULL && strcmp(auth->service, expected_service) != 0) {
		msg_str(msg, "Credential should be scoped to correct service: '");
		msg_echo(msg, kslice_cstr(expected_service), SIGV4_MAX_SERVICE);
		msg_str(msg, "'. ");
		rc = K_E_INVALID_SIGNATURE;
		goto out;
	}
	GUARD_GOTO(sigv4_canonical_request(req, auth->signed_headers, &t->creq));
	GUARD_GOTO(sigv4_string_to_sign(auth->amz_date, auth->scope_date, auth->region,
					auth->service, kbuf_slice(&t->creq), &t->sts));
	GUARD_GOTO(sign_cached(auth->access_key, secret_key, auth->scope_date, auth->region,
			       auth->service, kbuf_slice(&t->sts), sig));
	ENSURE_GOTO(CRYPTO_memcmp(sig, auth->signature, sizeof sig) == 0, K_E_INVALID_SIGNATURE);
out:
	OPENSSL_cleanse(sig, sizeof sig);
	if (t != NULL) {
		scratch_done(&t->creq);
		scratch_done(&t->sts);
	}
	return rc;
}
