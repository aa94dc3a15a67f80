/*
 * jsonread.c — the strict JSON reader (see jsonread.h).
 */
#include "core/jsonread.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/wipe.h"
#include "core/banned.h"

/* A real's text longer than this is copied to the heap to be NUL-terminated for strtod. */
#define KJSON_NUMBER_STACK 64

struct reader {
	const uint8_t *p, *end, *start;
	unsigned depth;
	struct kjson_status *why;
	/* An escaped string's decoded bytes (the thread's reader only, freed at the end). */
	uint8_t *tmp;
	size_t tmp_cap;
};

static json_t *fail(struct reader *r, enum kjson_error e, const uint8_t *at)
{
	if (r->why->error == KJSON_OK) {
		r->why->error = e;
		r->why->position = (size_t)(at - r->start);
	}
	return NULL;
}

static void skip_ws(struct reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

/*
 * The length of the well-formed UTF-8 character at p (at most end - p
 * bytes), 0 if there is none: no overlong form, no surrogate, nothing
 * past U+10FFFF (RFC 3629 §4).
 */
static size_t utf8_char(const uint8_t *p, const uint8_t *end)
{
	uint8_t c = p[0];
	size_t n = (size_t)(end - p);
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

static int hex4(const uint8_t *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		uint8_t c = p[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static size_t put_utf8(uint8_t *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xc0 | (cp >> 6));
		o[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xe0 | (cp >> 12));
		o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (uint8_t)(0xf0 | (cp >> 18));
	o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* One \u escape (p at the 'u'), a surrogate pair taken whole; the code point, or -1. */
static long unicode_escape(struct reader *r, const uint8_t **pp)
{
	const uint8_t *p = *pp;
	if (r->end - p < 5) {
		fail(r, KJSON_END, r->end);
		return -1;
	}
	int v = hex4(p + 1);
	if (v < 0) {
		fail(r, KJSON_SYNTAX, p);
		return -1;
	}
	p += 5;
	if (v >= 0xdc00 && v <= 0xdfff) { /* a low surrogate alone */
		fail(r, KJSON_SYNTAX, p);
		return -1;
	}
	if (v >= 0xd800 && v <= 0xdbff) {
		int lo = r->end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2) : -1;
		if (lo < 0xdc00 || lo > 0xdfff) {
			fail(r, KJSON_SYNTAX, p);
			return -1;
		}
		p += 6;
		v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (v == 0) {
		fail(r, KJSON_NUL, p);
		return -1;
	}
	*pp = p;
	return v;
}

/* Room for n more decoded bytes in r->tmp. */
static bool tmp_room(struct reader *r, size_t used, size_t n)
{
	if (used + n <= r->tmp_cap)
		return true;
	size_t cap = r->tmp_cap ? r->tmp_cap * 2 : 256;
	while (cap < used + n)
		cap *= 2;
	uint8_t *t = malloc(cap);
	if (t == NULL)
		return false;
	if (r->tmp != NULL) { /* it may hold a decoded secret: wiped, never left to realloc */
		memcpy(t, r->tmp, used);
		kwipe(r->tmp, r->tmp_cap);
		free(r->tmp);
	}
	r->tmp = t;
	r->tmp_cap = cap;
	return true;
}

/*
 * The escaped rest of a string (p after its last plain byte, at a
 * backslash); the decoded string in r->tmp, its length in *len.
 */
static bool string_escaped(struct reader *r, const uint8_t *plain, const uint8_t *p, size_t *len)
{
	size_t n = 0;
	if (!tmp_room(r, 0, (size_t)(p - plain) + 4))
		return fail(r, KJSON_OUT_OF_MEMORY, p), false;
	memcpy(r->tmp, plain, (size_t)(p - plain));
	n = (size_t)(p - plain);
	while (p < r->end && *p != '"') {
		if (!tmp_room(r, n, 4))
			return fail(r, KJSON_OUT_OF_MEMORY, p), false;
		if (*p < 0x20)
			return fail(r, KJSON_SYNTAX, p), false;
		if (*p != '\\') {
			size_t cl = utf8_char(p, r->end);
			if (cl == 0)
				return fail(r, KJSON_UTF8, p), false;
			memcpy(r->tmp + n, p, cl);
			n += cl;
			p += cl;
			continue;
		}
		if (++p == r->end)
			break;
		static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
		const char *e = *p != 0 ? strchr(from, *p) : NULL;
		if (e != NULL) {
			r->tmp[n++] = (uint8_t)to[e - from];
			p++;
		} else if (*p == 'u') {
			long cp = unicode_escape(r, &p);
			if (cp < 0)
				return false;
			n += put_utf8(r->tmp + n, (uint32_t)cp);
		} else {
			return fail(r, KJSON_SYNTAX, p), false;
		}
	}
	if (p == r->end)
		return fail(r, KJSON_END, p), false;
	r->p = p + 1;
	*len = n;
	return true;
}

/*
 * A string (r->p after its opening quote): its bytes in *s and *len, a
 * view into the text when it has no escape, else into r->tmp.
 */
static bool read_string(struct reader *r, const uint8_t **s, size_t *len)
{
	const uint8_t *p = r->p, *plain = p;
	while (p < r->end) {
		uint8_t c = *p;
		if (c == '"') {
			*s = plain;
			*len = (size_t)(p - plain);
			r->p = p + 1;
			return true;
		}
		if (c == '\\') {
			if (!string_escaped(r, plain, p, len))
				return false;
			*s = r->tmp;
			return true;
		}
		if (c < 0x20)
			return fail(r, KJSON_SYNTAX, p), false;
		if (c < 0x80) {
			p++;
			continue;
		}
		size_t cl = utf8_char(p, r->end);
		if (cl == 0)
			return fail(r, KJSON_UTF8, p), false;
		p += cl;
	}
	return fail(r, KJSON_END, p), false;
}

static json_t *read_string_value(struct reader *r)
{
	const uint8_t *s;
	size_t len;
	if (!read_string(r, &s, &len))
		return NULL;
	json_t *v = json_stringn_nocheck((const char *)s, len);
	return v != NULL ? v : fail(r, KJSON_OUT_OF_MEMORY, r->p);
}

static const uint8_t *digits(const uint8_t *p, const uint8_t *end)
{
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p;
}

/* An integer's text (-?digits, checked) into a json_integer, refusing one past 64 bits. */
static json_t *integer_value(struct reader *r, const uint8_t *s, const uint8_t *e)
{
	bool neg = *s == '-';
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
	for (const uint8_t *p = s + neg; p < e; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (limit - d) / 10)
			return fail(r, KJSON_OVERFLOW, s);
		v = v * 10 + d;
	}
	json_int_t i =
		neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(json_int_t)v) : (json_int_t)v;
	json_t *j = json_integer(i);
	return j != NULL ? j : fail(r, KJSON_OUT_OF_MEMORY, s);
}

static json_t *real_value(struct reader *r, const uint8_t *s, const uint8_t *e)
{
	size_t n = (size_t)(e - s);
	char stack[KJSON_NUMBER_STACK];
	char *text = n < sizeof stack ? stack : malloc(n + 1);
	if (text == NULL)
		return fail(r, KJSON_OUT_OF_MEMORY, s);
	memcpy(text, s, n);
	text[n] = 0;
	errno = 0;
	double d = strtod(text, NULL);
	bool over = errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL);
	if (text != stack)
		free(text);
	if (over)
		return fail(r, KJSON_OVERFLOW, s);
	json_t *j = json_real(d);
	return j != NULL ? j : fail(r, KJSON_OUT_OF_MEMORY, s);
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? (RFC 8259 §6). */
static json_t *read_number(struct reader *r)
{
	const uint8_t *s = r->p, *p = s, *end = r->end;
	if (p < end && *p == '-')
		p++;
	if (p == end)
		return fail(r, KJSON_END, p);
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		p = digits(p, end);
	else
		return fail(r, KJSON_SYNTAX, p);
	bool real = false;
	if (p < end && *p == '.') {
		const uint8_t *f = digits(p + 1, end);
		if (f == p + 1)
			return fail(r, f == end ? KJSON_END : KJSON_SYNTAX, f);
		p = f;
		real = true;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		const uint8_t *x = digits(p, end);
		if (x == p)
			return fail(r, x == end ? KJSON_END : KJSON_SYNTAX, x);
		p = x;
		real = true;
	}
	r->p = p;
	return real ? real_value(r, s, p) : integer_value(r, s, p);
}

static json_t *read_literal(struct reader *r, const char *word, json_t *v)
{
	size_t n = strlen(word);
	size_t left = (size_t)(r->end - r->p);
	if (memcmp(r->p, word, left < n ? left : n) != 0)
		return fail(r, KJSON_SYNTAX, r->p);
	if (left < n)
		return fail(r, KJSON_END, r->end);
	r->p += n;
	return v;
}

static json_t *read_value(struct reader *r);

/* One "name": value member into o (r->p at the name's opening quote). */
static bool read_member(struct reader *r, json_t *o)
{
	const uint8_t *at = r->p, *name;
	size_t len;
	r->p++;
	if (!read_string(r, &name, &len))
		return false;
	/* An escaped name is in r->tmp, which the value's strings reuse: keep a copy. */
	uint8_t *own = NULL;
	if (name == r->tmp) {
		own = malloc(len + 1);
		if (own == NULL)
			return fail(r, KJSON_OUT_OF_MEMORY, at), false;
		memcpy(own, name, len);
		name = own;
	}
	bool ok = false;
	json_t *v = NULL;
	skip_ws(r);
	if (json_object_getn(o, (const char *)name, len) != NULL)
		fail(r, KJSON_DUPLICATE, at);
	else if (r->p == r->end)
		fail(r, KJSON_END, r->p);
	else if (*r->p != ':')
		fail(r, KJSON_SYNTAX, r->p);
	else if (r->p++, (v = read_value(r)) != NULL)
		ok = json_object_setn_new_nocheck(o, (const char *)name, len, v) == 0 ||
		     fail(r, KJSON_OUT_OF_MEMORY, at) != NULL;
	if (own != NULL) {
		kwipe(own, len);
		free(own);
	}
	return ok;
}

/* Where a list goes on after a member or an element: true for ',', false at close. */
static bool next_item(struct reader *r, uint8_t close, bool *more)
{
	skip_ws(r);
	if (r->p == r->end)
		return fail(r, KJSON_END, r->p), false;
	if (*r->p == ',') {
		r->p++;
		*more = true;
		return true;
	}
	if (*r->p != close)
		return fail(r, KJSON_SYNTAX, r->p), false;
	r->p++;
	*more = false;
	return true;
}

static json_t *read_object(struct reader *r)
{
	json_t *o = json_object();
	if (o == NULL)
		return fail(r, KJSON_OUT_OF_MEMORY, r->p);
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		return o;
	}
	for (bool more = true; more;) {
		skip_ws(r);
		if (r->p == r->end || *r->p != '"') {
			fail(r, r->p == r->end ? KJSON_END : KJSON_SYNTAX, r->p);
			break;
		}
		if (!read_member(r, o) || !next_item(r, '}', &more))
			break;
		if (!more)
			return o;
	}
	json_decref(o);
	return NULL;
}

static json_t *read_array(struct reader *r)
{
	json_t *a = json_array();
	if (a == NULL)
		return fail(r, KJSON_OUT_OF_MEMORY, r->p);
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == ']') {
		r->p++;
		return a;
	}
	for (bool more = true; more;) {
		json_t *v = read_value(r);
		if (v == NULL)
			break;
		if (json_array_append_new(a, v) != 0) {
			fail(r, KJSON_OUT_OF_MEMORY, r->p);
			break;
		}
		if (!next_item(r, ']', &more))
			break;
		if (!more)
			return a;
	}
	json_decref(a);
	return NULL;
}

static json_t *read_value(struct reader *r)
{
	skip_ws(r);
	if (r->p == r->end)
		return fail(r, KJSON_END, r->p);
	switch (*r->p) {
	case '{':
	case '[': {
		if (++r->depth > KJSON_MAX_DEPTH)
			return fail(r, KJSON_DEPTH, r->p);
		json_t *v = *r->p == '{' ? read_object(r) : read_array(r);
		r->depth--;
		return v;
	}
	case '"':
		r->p++;
		return read_string_value(r);
	case 't':
		return read_literal(r, "true", json_true());
	case 'f':
		return read_literal(r, "false", json_false());
	case 'n':
		return read_literal(r, "null", json_null());
	default:
		if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
			return read_number(r);
		if (*r->p >= 0x80 && utf8_char(r->p, r->end) == 0)
			return fail(r, KJSON_UTF8, r->p);
		return fail(r, KJSON_SYNTAX, r->p);
	}
}

k_status kjson_read(struct kslice text, json_t **out, struct kjson_status *why)
{
	*why = (struct kjson_status){KJSON_OK, 0};
	*out = NULL;
	if (text.len == 0) {
		why->error = KJSON_END;
		return K_E_SERIALIZATION;
	}
	struct reader r = {
		.p = text.ptr, .end = text.ptr + text.len, .start = text.ptr, .why = why};
	json_t *v = read_value(&r);
	if (v != NULL) {
		skip_ws(&r);
		if (r.p != r.end) {
			json_decref(v);
			v = fail(&r, KJSON_TRAILING, r.p);
		}
	}
	if (r.tmp != NULL) {
		kwipe(r.tmp, r.tmp_cap);
		free(r.tmp);
	}
	if (v == NULL)
		return why->error == KJSON_OUT_OF_MEMORY ? K_E_INTERNAL : K_E_SERIALIZATION;
	*out = v;
	return K_OK;
}
