#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/wipe.h"

/*
 * The invariants of kbuf and kcursor (kbuf_valid, kcursor_valid) are
 * checked on entry to every function here that takes one, and on its
 * successful exit, in debug builds only: KINKO_DEBUG is set by `make
 * SAN=1`, `make TSAN=1` and the fuzz build. A failed read or append leaves
 * its object as it found it, so an error return is not checked again.
 * In a release build the checks compile to nothing.
 */
#ifdef KINKO_DEBUG
static void invariant_failed(const char *what, const char *func)
{
	fprintf(stderr, "kinko: invariant %s broken in %s\n", what, func);
	abort();
}
#define KBUF_CHECK(b)                                                                              \
	do {                                                                                       \
		if (!kbuf_valid(b))                                                                \
			invariant_failed("kbuf_valid(" #b ")", __func__);                          \
	} while (0)
#define KCURSOR_CHECK(c)                                                                           \
	do {                                                                                       \
		if (!kcursor_valid(c))                                                             \
			invariant_failed("kcursor_valid(" #c ")", __func__);                       \
	} while (0)
#else
#define KBUF_CHECK(b) ((void)0)
#define KCURSOR_CHECK(c) ((void)0)
#endif

struct kslice kslice_cstr(const char *s)
{
	if (s == NULL)
		return kslice_make("", 0);
	return kslice_make(s, strlen(s));
}

bool kslice_eq(struct kslice a, struct kslice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool kslice_eq_cstr(struct kslice a, const char *s)
{
	return kslice_eq(a, kslice_cstr(s));
}

bool kslice_eq_nocase_cstr(struct kslice a, const char *s)
{
	size_t n = strlen(s);
	return a.len == n && (n == 0 || strncasecmp((const char *)a.ptr, s, n) == 0);
}

bool kslice_has_prefix(struct kslice a, const char *prefix)
{
	size_t n = strlen(prefix);
	return a.len >= n && memcmp(a.ptr, prefix, n) == 0;
}

void kbuf_init(struct kbuf *b, size_t max)
{
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	KBUF_CHECK(b);
}

void kbuf_release(struct kbuf *b)
{
	KBUF_CHECK(b);
	if (b->ptr != NULL) {
		kwipe(b->ptr, b->cap);
		free(b->ptr);
	}
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	KBUF_CHECK(b);
}

void kbuf_reset(struct kbuf *b)
{
	KBUF_CHECK(b);
	if (b->ptr != NULL) {
		kwipe(b->ptr, b->len);
		b->ptr[0] = 0;
	}
	b->len = 0;
	KBUF_CHECK(b);
}

void kbuf_clear(struct kbuf *b)
{
	KBUF_CHECK(b);
	if (b->ptr != NULL)
		b->ptr[0] = 0;
	b->len = 0;
	KBUF_CHECK(b);
}

/*
 * A kbuf is valid when it holds no more than its maximum, and either has
 * no allocation (then it is empty) or an allocation of at most max + 1
 * bytes in which its bytes and their trailing NUL fit.
 */
bool kbuf_valid(const struct kbuf *b)
{
	if (b == NULL || b->len > b->max)
		return false;
	if (b->ptr == NULL)
		return b->len == 0 && b->cap == 0;
	return b->len < b->cap && b->cap - 1 <= b->max && b->ptr[b->len] == 0;
}

/* Makes room for `extra` more bytes plus the trailing NUL. */
static K_MUST_CHECK k_status kbuf_reserve(struct kbuf *b, size_t extra)
{
	if (extra > b->max || b->len > b->max - extra)
		return K_E_VALIDATION;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return K_OK;
	/* Most buffers hold a few hundred bytes: start there rather than grow by doubling. */
	size_t ncap = b->cap ? b->cap : 512;
	while (ncap < need)
		ncap *= 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	uint8_t *n = malloc(ncap);
	if (n == NULL)
		return K_E_INTERNAL;
	if (b->ptr != NULL) {
		memcpy(n, b->ptr, b->len);
		kwipe(b->ptr, b->cap);
		free(b->ptr);
	}
	b->ptr = n;
	b->cap = ncap;
	b->ptr[b->len] = 0;
	return K_OK;
}

k_status kbuf_append(struct kbuf *b, const void *p, size_t n)
{
	KBUF_CHECK(b);
	GUARD(kbuf_reserve(b, n));
	if (n > 0)
		memcpy(b->ptr + b->len, p, n);
	b->len += n;
	b->ptr[b->len] = 0;
	KBUF_CHECK(b);
	return K_OK;
}

k_status kbuf_append_str(struct kbuf *b, const char *s)
{
	return kbuf_append(b, s, strlen(s));
}

k_status kbuf_append_byte(struct kbuf *b, uint8_t c)
{
	return kbuf_append(b, &c, 1);
}

k_status kbuf_appendf(struct kbuf *b, const char *fmt, ...)
{
	KBUF_CHECK(b);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return K_E_INTERNAL;
	GUARD(kbuf_reserve(b, (size_t)n));
	va_start(ap, fmt);
	vsnprintf((char *)b->ptr + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	KBUF_CHECK(b);
	return K_OK;
}

void kbuf_note(struct kbuf *b, const char *fmt, ...)
{
	KBUF_CHECK(b);
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = strlen(tmp);
	if (len > b->max - b->len)
		len = b->max - b->len;
	if (k_failed(kbuf_append(b, tmp, len)))
		return;
}

k_status kbuf_append_u32be(struct kbuf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	return kbuf_append(b, x, 4);
}

k_status kbuf_append_hex(struct kbuf *b, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	KBUF_CHECK(b);
	if (n > (SIZE_MAX / 2))
		return K_E_VALIDATION;
	GUARD(kbuf_reserve(b, n * 2));
	for (size_t i = 0; i < n; i++) {
		b->ptr[b->len++] = (uint8_t)hex[p[i] >> 4];
		b->ptr[b->len++] = (uint8_t)hex[p[i] & 15];
	}
	b->ptr[b->len] = 0;
	KBUF_CHECK(b);
	return K_OK;
}

const char *kbuf_cstr(const struct kbuf *b)
{
	KBUF_CHECK(b);
	return b->ptr ? (const char *)b->ptr : "";
}

k_status kcursor_read_u8(struct kcursor *c, uint8_t *out)
{
	KCURSOR_CHECK(c);
	ENSURE(kcursor_left(c) >= 1, K_E_VALIDATION);
	*out = c->ptr[c->pos++];
	KCURSOR_CHECK(c);
	return K_OK;
}

k_status kcursor_read_u16be(struct kcursor *c, uint16_t *out)
{
	KCURSOR_CHECK(c);
	ENSURE(kcursor_left(c) >= 2, K_E_VALIDATION);
	const uint8_t *p = c->ptr + c->pos;
	*out = (uint16_t)((p[0] << 8) | p[1]);
	c->pos += 2;
	KCURSOR_CHECK(c);
	return K_OK;
}

k_status kcursor_read_u32be(struct kcursor *c, uint32_t *out)
{
	KCURSOR_CHECK(c);
	ENSURE(kcursor_left(c) >= 4, K_E_VALIDATION);
	const uint8_t *p = c->ptr + c->pos;
	*out = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
	c->pos += 4;
	KCURSOR_CHECK(c);
	return K_OK;
}

k_status kcursor_read_slice(struct kcursor *c, size_t n, struct kslice *out)
{
	KCURSOR_CHECK(c);
	ENSURE(kcursor_left(c) >= n, K_E_VALIDATION);
	*out = kslice_make(c->ptr + c->pos, n);
	c->pos += n;
	KCURSOR_CHECK(c);
	return K_OK;
}

/* A kcursor is valid when its position is inside its slice and the slice is one. */
bool kcursor_valid(const struct kcursor *c)
{
	return c != NULL && c->pos <= c->len && (c->ptr != NULL || c->len == 0);
}

k_status kbuf_append_base64(struct kbuf *b, const uint8_t *p, size_t n)
{
	KBUF_CHECK(b);
	if (n > (SIZE_MAX / 4 - 4) || n > INT32_MAX)
		return K_E_VALIDATION;
	size_t out = 4 * ((n + 2) / 3);
	GUARD(kbuf_reserve(b, out));
	/* RFC 4648 section 4: each 3 bytes become 4 characters; a short last group is padded with '='. */
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t *o = b->ptr + b->len;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = (uint8_t)al[v >> 18];
		*o++ = (uint8_t)al[(v >> 12) & 63];
		*o++ = (uint8_t)al[(v >> 6) & 63];
		*o++ = (uint8_t)al[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
		*o++ = (uint8_t)al[v >> 18];
		*o++ = (uint8_t)al[(v >> 12) & 63];
		*o++ = i + 1 < n ? (uint8_t)al[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	b->len += out;
	b->ptr[b->len] = 0;
	KBUF_CHECK(b);
	return K_OK;
}

static int b64val(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict base64: length a multiple of 4, at most two '=' at the end only,
 * no whitespace. The service models' blob members arrive like this from
 * every SDK.
 */
k_status kbuf_decode_base64(struct kbuf *b, struct kslice in)
{
	KBUF_CHECK(b);
	ENSURE(in.len % 4 == 0, K_E_VALIDATION);
	size_t pad = 0;
	if (in.len >= 1 && in.ptr[in.len - 1] == '=')
		pad++;
	if (in.len >= 2 && in.ptr[in.len - 2] == '=')
		pad++;
	size_t outlen = in.len / 4 * 3 - pad;
	GUARD(kbuf_reserve(b, outlen));
	size_t start = b->len;
	for (size_t i = 0; i < in.len; i += 4) {
		int v[4];
		for (size_t j = 0; j < 4; j++) {
			uint8_t ch = in.ptr[i + j];
			if (ch == '=' && i + 4 == in.len && j >= 4 - pad) {
				v[j] = 0;
				continue;
			}
			v[j] = b64val(ch);
			if (v[j] < 0) {
				b->len = start;
				b->ptr[b->len] = 0;
				return K_E_VALIDATION;
			}
		}
		uint32_t tri = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) |
			       ((uint32_t)v[2] << 6) | (uint32_t)v[3];
		uint8_t o[3] = {(uint8_t)(tri >> 16), (uint8_t)(tri >> 8), (uint8_t)tri};
		size_t take = (i + 4 == in.len) ? 3 - pad : 3;
		memcpy(b->ptr + b->len, o, take);
		b->len += take;
	}
	b->ptr[b->len] = 0;
	KBUF_CHECK(b);
	return K_OK;
}
