/*
 * jsonread.h — a strict JSON reader for request bodies.
 *
 * It reads one JSON value (RFC 8259) from a slice, whitespace around it
 * allowed, and builds the jansson value the handlers take, as
 * json_loadb(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY) does, and refuses
 * what that refuses: a member name twice in one object, a string holding
 * U+0000, text that is not UTF-8 (overlong forms, surrogates, past
 * U+10FFFF), a raw control character inside a string, an unpaired
 * surrogate escape, an integer past 64 bits or a real past a double,
 * nesting deeper than KJSON_MAX_DEPTH, anything after the value. (One
 * difference: jansson ends a number or a literal at a NUL byte and reads
 * on after it, anywhere in the text, taking "0\0" as 0 and "[[8\0]]" as
 * [[8]]; this reader refuses the NUL where it stands, as RFC 8259 does.)
 *
 * Strings decoded from escapes pass through a scratch buffer that is
 * wiped before it is freed (a Plaintext member may be escaped); the
 * values themselves are jansson's, whose allocator wipes them (SECURITY.md).
 *
 * It is faster than jansson's loader because it works on the slice in
 * place: a string without escapes is copied once, straight into its
 * jansson value (no token buffer, no second UTF-8 pass), and names are
 * set without jansson checking them again.
 */
#ifndef KINKO_CORE_JSONREAD_H
#define KINKO_CORE_JSONREAD_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/result.h"

/* Nesting of objects and arrays, as jansson's JSON_PARSER_MAX_DEPTH. */
#define KJSON_MAX_DEPTH 2048

enum kjson_error {
	KJSON_OK = 0,
	KJSON_SYNTAX,	     /* not JSON */
	KJSON_NUL,	     /* a string (value or name) holds U+0000 */
	KJSON_DUPLICATE,     /* a member name twice in one object */
	KJSON_OVERFLOW,	     /* an integer past 64 bits, a real past a double */
	KJSON_UTF8,	     /* not UTF-8 */
	KJSON_DEPTH,	     /* nesting deeper than KJSON_MAX_DEPTH */
	KJSON_END,	     /* the text ends inside the value */
	KJSON_TRAILING,	     /* more follows the value */
	KJSON_OUT_OF_MEMORY, /* a jansson value could not be made */
};

struct kjson_status {
	enum kjson_error error;
	size_t position; /* the byte offset where the error was seen */
};

/*
 * Reads the JSON value of text into *out (a new reference the caller
 * owns). K_OK, or K_E_SERIALIZATION with the reason and its offset in
 * *why (K_E_INTERNAL when out of memory); *out is NULL then.
 */
K_MUST_CHECK k_status kjson_read(struct kslice text, json_t **out, struct kjson_status *why);

#endif
