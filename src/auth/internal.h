/*
 * internal.h — what the files of auth/ share, and nothing outside auth/
 * includes. sigv4.h is the public contract; this is the inside of it.
 *
 * The SigV4 verifier is split by idea:
 *   sigv4_parse.c      the Authorization header, the date, the scope
 *   sigv4_date.c       ISO 8601 basic and IMF-fixdate dates
 *   sigv4_canonical.c  the canonical request and the string to sign
 *   sigv4_keys.c       the per-thread state: signing-key cache, scratch buffers
 *   sigv4_verify.c     verification and the must-sign rule
 *   sigv4_msg.c        the messages written back to the client
 * Cryptography (SHA-256, HMAC, the signing key, constant-time comparison)
 * lives in crypto/; auth/ never reads key bytes itself.
 *
 * The small byte-class, slice and cursor helpers below are static inline
 * so that every file gets them inlined, as when they lived in one file.
 */
#ifndef KINKO_AUTH_INTERNAL_H
#define KINKO_AUTH_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "auth/sigv4.h"
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_MAX_STRING_TO_SIGN 256
#define SIGV4_AMZ_DATE_LEN 16
#define SIGV4_SCOPE_DATE_LEN 8
/* Longest piece of client input echoed back in an error message. */
#define MSG_ECHO_MAX 256

/* ------------------------------------------------------------------ */
/* Byte classes and slice helpers                                      */
/* ------------------------------------------------------------------ */

/* RFC 3986 unreserved: the only bytes SigV4 leaves unencoded. */
static inline bool is_unreserved(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static inline bool is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* Separators between the Authorization header's parameters. */
static inline bool is_param_sep(uint8_t c)
{
	return c == ' ' || c == '\t' || c == ',';
}

/* What "Trimall" removes: any run of white space becomes one space. */
static inline bool is_trim_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static inline bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_lower_alnum_dash(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || is_digit(c) || c == '-';
}

static inline bool is_access_key_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' ||
	       c == '-' || c == '.';
}

/* RFC 9110 token characters, lowercase letters only (SignedHeaders names). */
static inline bool is_lower_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || is_digit(c))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static inline uint8_t ascii_lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

static inline bool slice_eq_nocase(struct kslice a, struct kslice b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++) {
		if (ascii_lower(a.ptr[i]) != ascii_lower(b.ptr[i]))
			return false;
	}
	return true;
}

static inline bool slice_all(struct kslice s, bool (*pred)(uint8_t))
{
	for (size_t i = 0; i < s.len; i++) {
		if (!pred(s.ptr[i]))
			return false;
	}
	return true;
}

static inline struct kslice slice_trim_ows(struct kslice s)
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
static inline int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t m = an < bn ? an : bn;
	int r = m > 0 ? memcmp(a, b, m) : 0;
	if (r != 0)
		return r;
	return (an > bn) - (an < bn);
}

/* Copies a validated slice into a fixed char array (cap includes the NUL). */
static inline void slice_to_cstr(struct kslice s, char *dst, size_t cap)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;
	if (n > 0)
		memcpy(dst, s.ptr, n);
	dst[n] = '\0';
}

/* Length of a NUL-terminated string held in a `cap`-byte array, or cap. */
static inline size_t bounded_len(const char *s, size_t cap)
{
	const char *nul = memchr(s, '\0', cap);
	return nul == NULL ? cap : (size_t)(nul - s);
}

/* ------------------------------------------------------------------ */
/* Cursor helpers: every read stays inside the slice                   */
/* ------------------------------------------------------------------ */

static inline bool cursor_peek(const struct kcursor *c, uint8_t *out)
{
	if (kcursor_left(c) == 0)
		return false;
	*out = c->ptr[c->pos];
	return true;
}

static inline void cursor_skip(struct kcursor *c, bool (*pred)(uint8_t))
{
	uint8_t ch;
	while (cursor_peek(c, &ch) && pred(ch))
		c->pos++;
}

/* Skips one `delim` byte if it is next. */
static inline void cursor_skip_byte(struct kcursor *c, uint8_t delim)
{
	uint8_t ch;
	if (cursor_peek(c, &ch) && ch == delim)
		c->pos++;
}

/* The bytes up to the first one matching `stop` (or to the end). */
static inline struct kslice cursor_take_until(struct kcursor *c, bool (*stop)(uint8_t))
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
static inline struct kslice cursor_take_until_byte(struct kcursor *c, uint8_t delim)
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

static inline K_MUST_CHECK k_status append_slice(struct kbuf *out, struct kslice s)
{
	if (s.len == 0)
		return K_OK;
	return kbuf_append(out, s.ptr, s.len);
}

/* ------------------------------------------------------------------ */
/* Request headers (sigv4_parse.c)                                     */
/* ------------------------------------------------------------------ */

struct signed_list {
	struct kslice names[SIGV4_MAX_SIGNED_HEADERS];
	size_t n;
};

/* Number of headers named `name` (any case); *first gets the first value. */
size_t sigv4_header_find(const struct sigv4_request *req, const char *name, struct kslice *first);

/*
 * Splits SignedHeaders into `out`: lowercase names, sorted, no
 * duplicates, at most SIGV4_MAX_SIGNED_HEADERS, else
 * K_E_INCOMPLETE_SIGNATURE. The names point into `list`.
 */
K_MUST_CHECK k_status sigv4_signed_headers_split(struct kslice list, struct signed_list *out);

/* ------------------------------------------------------------------ */
/* Dates (sigv4_date.c)                                                */
/* ------------------------------------------------------------------ */

/* Writes t as YYYYMMDDTHHMMSSZ; times outside 1970..9999 are clamped. */
void sigv4_format_amz_date(int64_t t, char out[SIGV4_AMZ_DATE_LEN + 1]);
/* X-Amz-Date, YYYYMMDD'T'HHMMSS'Z', into epoch seconds; false if malformed. */
bool sigv4_parse_amz_date(struct kslice s, int64_t *t);
/* Date, "Sun, 06 Nov 1994 08:49:37 GMT", into epoch seconds; false if malformed. */
bool sigv4_parse_http_date(struct kslice s, int64_t *t);

/* ------------------------------------------------------------------ */
/* Canonical request (sigv4_canonical.c)                               */
/* ------------------------------------------------------------------ */

/* Scope date of 8 bytes, region and service of 1 to 32, each NUL-terminated. */
bool sigv4_scope_valid(const char *scope_date, const char *region, const char *service);

/* ------------------------------------------------------------------ */
/* Per-thread state and the signing-key cache (sigv4_keys.c)           */
/* ------------------------------------------------------------------ */

/* The public half of a cache slot; the keys themselves are in a ksecret. */
struct sigv4_slot {
	bool used;
	uint64_t last_used;
	char access_key[SIGV4_MAX_ACCESS_KEY + 1];
	char scope_date[SIGV4_SCOPE_DATE_LEN + 1];
	char region[SIGV4_MAX_REGION + 1];
	char service[SIGV4_MAX_SERVICE + 1];
};

/*
 * Everything a thread needs to verify a signature without allocating per
 * request: scratch buffers for the canonical request and the string to
 * sign, and the signing-key cache. (The hash and HMAC contexts are
 * crypto/'s, per thread too.)
 */
struct sigv4_tls {
	struct kbuf creq;     /* canonical request, sigv4_verify() */
	struct kbuf sts;      /* string to sign, sigv4_verify() */
	struct ksecret *keys; /* SIGV4_CACHE_SLOTS x (signing key, secret fingerprint) */
	struct sigv4_slot slots[SIGV4_CACHE_SLOTS];
	uint64_t tick;
	struct sigv4_cache_stats stats;
};

/* The calling thread's state, created on first use; NULL when out of memory. */
struct sigv4_tls *sigv4_tls_get(void);

/*
 * HMAC(kSigning, sts) into sig, kSigning for (access key, date, region,
 * service, secret) taken from the thread's cache or derived into it.
 */
K_MUST_CHECK k_status sigv4_sign_cached(const char *access_key, const struct ksecret *secret,
					const char *date, const char *region, const char *service,
					struct kslice sts, uint8_t sig[32]);

/* ------------------------------------------------------------------ */
/* Client messages (sigv4_msg.c)                                       */
/* ------------------------------------------------------------------ */

/*
 * Messages are best effort: a full message buffer keeps what fit and the
 * error code is unaffected. `msg` may be NULL (no message wanted).
 * Anything taken from the request goes through sigv4_msg_echo(), which
 * caps its length at `max` (at most MSG_ECHO_MAX) and replaces bytes
 * outside printable ASCII.
 */
void sigv4_msg_clear(struct kbuf *msg);
void sigv4_msg_add(struct kbuf *msg, const void *p, size_t n);
void sigv4_msg_str(struct kbuf *msg, const char *s);
void sigv4_msg_base64(struct kbuf *msg, const uint8_t *p, size_t n);
void sigv4_msg_echo(struct kbuf *msg, struct kslice s, size_t max);
/* "Authorization=<header>", with the Signature value (`sig`) redacted. */
void sigv4_msg_authz_echo(struct kbuf *msg, struct kslice authz, struct kslice sig);

#endif
