/*
 * jsonw.c — a fast writer of compact JSON (see jsonw.h).
 */
#include "core/jsonw.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/banned.h"

void kjw_start(struct kjw *w, struct kbuf *b)
{
	w->b = b;
	w->rc = K_OK;
	w->n = 0;
}

static void flush(struct kjw *w)
{
	if (k_ok(w->rc) && w->n > 0)
		w->rc = kbuf_append(w->b, w->stage, w->n);
	w->n = 0;
}

k_status kjw_finish(struct kjw *w)
{
	flush(w);
	return w->rc;
}

void kjw_raw(struct kjw *w, const void *p, size_t n)
{
	if (n <= sizeof w->stage - w->n) {
		memcpy(w->stage + w->n, p, n);
		w->n += n;
		return;
	}
	flush(w);
	if (n <= sizeof w->stage) {
		memcpy(w->stage, p, n);
		w->n = n;
	} else if (k_ok(w->rc)) {
		w->rc = kbuf_append(w->b, p, n);
	}
}

/*
 * The length of the valid UTF-8 sequence at p (at most n bytes available),
 * or 0 if it is not one: no overlong forms, no surrogates, nothing above
 * U+10FFFF (RFC 3629 section 4).
 */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	size_t len;
	uint8_t lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++) {
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	}
	return len;
}

/* ASCII bytes that go out as they are: printable, but not '"' or '\\'. */
#define PLAIN(b) ((b) >= 0x20 && (b) != '"' && (b) != '\\')
#define PLAIN4(b) PLAIN(b), PLAIN((b) + 1), PLAIN((b) + 2), PLAIN((b) + 3)
#define PLAIN16(b) PLAIN4(b), PLAIN4((b) + 4), PLAIN4((b) + 8), PLAIN4((b) + 12)
static const bool plain_ascii[256] = {
	PLAIN16(0x00), PLAIN16(0x10), PLAIN16(0x20), PLAIN16(0x30),
	PLAIN16(0x40), PLAIN16(0x50), PLAIN16(0x60), PLAIN16(0x70),
	/* 0x80-0xFF: zero, checked as UTF-8 below */
};
#undef PLAIN16
#undef PLAIN4
#undef PLAIN

void kjw_str_body(struct kjw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *p = (const uint8_t *)s;
	size_t run = 0; /* bytes that go out as they are, not yet written */
	size_t i = 0;
	while (i < n) {
		size_t start = i;
		while (i < n && plain_ascii[p[i]])
			i++;
		run += i - start;
		if (i == n)
			break;
		uint8_t c = p[i];
		if (c >= 0x80) {
			size_t len = utf8_seq(p + i, n - i);
			if (len > 0) {
				run += len;
				i += len;
				continue;
			}
		}
		kjw_raw(w, p + i - run, run);
		run = 0;
		char esc[8];
		size_t el = 2;
		esc[0] = '\\';
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			if (c >= 0x80) { /* not valid UTF-8: U+FFFD */
				memcpy(esc, "\\ufffd", 6);
			} else {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
			}
			el = 6;
			break;
		}
		kjw_raw(w, esc, el);
		i++;
	}
	kjw_raw(w, p + n - run, run);
}

void kjw_str(struct kjw *w, const char *s, size_t n)
{
	KJW_LIT(w, "\"");
	kjw_str_body(w, s, n);
	KJW_LIT(w, "\"");
}

void kjw_cstr(struct kjw *w, const char *s)
{
	kjw_str(w, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

void kjw_scalar(struct kjw *w, json_t *v)
{
	char num[48];
	switch (json_typeof(v)) {
	case JSON_STRING:
		kjw_str(w, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER: {
		int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		kjw_raw(w, num, n > 0 ? (size_t)n : 0);
		break;
	}
	case JSON_REAL: {
		/* As jansson writes reals: 17 significant digits, always with a '.' or exponent. */
		int n = snprintf(num, sizeof num, "%.17g", json_real_value(v));
		kjw_raw(w, num, n > 0 ? (size_t)n : 0);
		if (n > 0 && strpbrk(num, ".eEn") == NULL)
			KJW_LIT(w, ".0");
		break;
	}
	case JSON_TRUE:
		KJW_LIT(w, "true");
		break;
	case JSON_FALSE:
		KJW_LIT(w, "false");
		break;
	default:
		KJW_LIT(w, "null");
		break;
	}
}

/* Writes an object member's name, with the first letter lowered if asked. */
static void member_name(struct kjw *w, const char *k, bool lower_first)
{
	size_t kl = strlen(k);
	KJW_LIT(w, "\"");
	if (lower_first && kl > 0) {
		char c0 = (char)tolower((unsigned char)k[0]);
		kjw_str_body(w, &c0, 1);
		kjw_str_body(w, k + 1, kl - 1);
	} else {
		kjw_str_body(w, k, kl);
	}
	KJW_LIT(w, "\":");
}

/* The one walker of kjw_value and kjw_value_redacted; r NULL: as given. */
static void value(struct kjw *w, json_t *v, const struct kjw_redact *r, int depth)
{
	if (depth > KJW_MAX_DEPTH) {
		KJW_LIT(w, "null");
	} else if (json_is_object(v)) {
		const char *k;
		json_t *e;
		bool first = true;
		KJW_LIT(w, "{");
		json_object_foreach(v, k, e)
		{
			if (r != NULL && r->drop(k))
				continue;
			if (!first)
				KJW_LIT(w, ",");
			first = false;
			member_name(w, k, r != NULL && r->lower_first);
			value(w, e, r != NULL && r->verbatim(k) ? NULL : r, depth + 1);
		}
		KJW_LIT(w, "}");
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		KJW_LIT(w, "[");
		json_array_foreach(v, i, e)
		{
			if (i > 0)
				KJW_LIT(w, ",");
			value(w, e, r, depth + 1);
		}
		KJW_LIT(w, "]");
	} else {
		kjw_scalar(w, v);
	}
}

void kjw_value(struct kjw *w, json_t *v)
{
	value(w, v, NULL, 0);
}

void kjw_value_redacted(struct kjw *w, json_t *v, const struct kjw_redact *r)
{
	value(w, v, r, 0);
}
