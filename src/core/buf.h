/*
 * buf.h — byte slices, bounded owned buffers and a cursor.
 *
 * struct kslice   a view: ptr/len, owns nothing. Valid as long as whatever
 *                 it points into.
 * struct kbuf     owns its bytes, grows up to `max` bytes and never beyond:
 *                 an append that would pass `max` fails with
 *                 K_E_VALIDATION and leaves the buffer unchanged. The bytes
 *                 are always followed by a NUL (not counted in len) so that a
 *                 text buffer can be handed to C APIs. kbuf_release() frees
 *                 and zeroes (buffers may carry plaintext in transit).
 * struct kcursor  reads from a slice; every read either succeeds and
 *                 advances, or fails and leaves the position unchanged.
 */
#ifndef KINKO_CORE_BUF_H
#define KINKO_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include "core/result.h"

/*
 * Copies the string src into dst (n bytes, n > 0), cut to fit and always
 * NUL-terminated: what snprintf(dst, n, "%s", src) does, without the
 * format machinery. Returns the length copied.
 */
static inline size_t kstr_copy(char *dst, size_t n, const char *src)
{
	size_t len = strnlen(src, n - 1);
	memcpy(dst, src, len);
	dst[len] = 0;
	return len;
}

struct kslice {
	const uint8_t *ptr;
	size_t len;
};

#define KSLICE_LIT(s) ((struct kslice){(const uint8_t *)(s), sizeof(s) - 1})

static inline struct kslice kslice_make(const void *p, size_t n)
{
	return (struct kslice){(const uint8_t *)p, n};
}
struct kslice kslice_cstr(const char *s);	  /* NULL -> empty slice */
bool kslice_eq(struct kslice a, struct kslice b); /* not constant time */
bool kslice_eq_cstr(struct kslice a, const char *s);
bool kslice_eq_nocase_cstr(struct kslice a, const char *s);
bool kslice_has_prefix(struct kslice a, const char *prefix);

struct kbuf {
	uint8_t *ptr;
	size_t len;
	size_t cap;
	size_t max;
};

/* Prepares an empty buffer that may grow to `max` bytes. Allocates nothing. */
void kbuf_init(struct kbuf *b, size_t max);
/* Frees the bytes (zeroing them first) and leaves an empty buffer. */
void kbuf_release(struct kbuf *b);
/* Empties the buffer, keeping its allocation (zeroes the old bytes). */
void kbuf_reset(struct kbuf *b);
/*
 * Empties the buffer, keeping its allocation, without zeroing: only for
 * buffers that never hold a secret (audit records, which are redacted).
 */
void kbuf_clear(struct kbuf *b);
K_MUST_CHECK k_status kbuf_append(struct kbuf *b, const void *p, size_t n);
K_MUST_CHECK k_status kbuf_append_str(struct kbuf *b, const char *s);
K_MUST_CHECK k_status kbuf_append_byte(struct kbuf *b, uint8_t c);
K_MUST_CHECK k_status kbuf_appendf(struct kbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Best-effort formatted append for diagnostic messages: a message that does
 * not fit is cut, never an error. Not for data.
 */
void kbuf_note(struct kbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The cap of a buffer that receives a diagnostic message (kbuf_note): why something was refused. */
#define KBUF_NOTE_MAX 4096
K_MUST_CHECK k_status kbuf_append_u32be(struct kbuf *b, uint32_t v);
K_MUST_CHECK k_status kbuf_append_hex(struct kbuf *b, const uint8_t *p, size_t n);
/* The contents as a NUL-terminated string ("" for an empty buffer). */
const char *kbuf_cstr(const struct kbuf *b);
static inline struct kslice kbuf_slice(const struct kbuf *b)
{
	return kslice_make(b->ptr, b->len);
}
/*
 * The invariant: len <= max; no allocation and len == 0, or len < cap <=
 * max + 1 with a NUL at ptr[len]. Every function here keeps it; debug
 * builds check it on entry and exit (buf.c).
 */
bool kbuf_valid(const struct kbuf *b);

struct kcursor {
	const uint8_t *ptr;
	size_t len;
	size_t pos;
};

static inline struct kcursor kcursor_make(struct kslice s)
{
	return (struct kcursor){s.ptr, s.len, 0};
}
static inline size_t kcursor_left(const struct kcursor *c)
{
	return c->len - c->pos;
}
K_MUST_CHECK k_status kcursor_read_u8(struct kcursor *c, uint8_t *out);
K_MUST_CHECK k_status kcursor_read_u16be(struct kcursor *c, uint16_t *out);
K_MUST_CHECK k_status kcursor_read_u32be(struct kcursor *c, uint32_t *out);
/* A view of the next n bytes, advancing past them. */
K_MUST_CHECK k_status kcursor_read_slice(struct kcursor *c, size_t n, struct kslice *out);
/* The invariant: pos <= len, and ptr is non-NULL unless len is 0. */
bool kcursor_valid(const struct kcursor *c);

/* Hex and base64 (standard alphabet, padded) helpers. */
K_MUST_CHECK k_status kbuf_append_base64(struct kbuf *b, const uint8_t *p, size_t n);
/* Decodes strict, padded base64 (whitespace not allowed). K_E_VALIDATION on bad input. */
K_MUST_CHECK k_status kbuf_decode_base64(struct kbuf *b, struct kslice in);

#endif
