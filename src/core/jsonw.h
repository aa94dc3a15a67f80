/*
 * jsonw.h — a fast writer of compact JSON into a kbuf.
 *
 * Used on the hot path of every request (the response body and the audit
 * event), where building and dumping a jansson tree cost more than the
 * work itself. Output is staged in the writer (on the caller's stack) and
 * moved to the kbuf a few KiB at a time. Errors are sticky: write
 * everything, then check kjw_finish(). Strings are escaped as JSON
 * requires, and bytes that are not valid UTF-8 become U+FFFD, so the
 * output is always valid JSON.
 */
#ifndef KINKO_CORE_JSONW_H
#define KINKO_CORE_JSONW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "core/buf.h"
#include "core/result.h"

/* The deepest tree kjw_value writes; deeper parts become null. */
#define KJW_MAX_DEPTH 64

struct kjw {
	struct kbuf *b;
	k_status rc;
	size_t n;
	char stage[4096];
};

void kjw_start(struct kjw *w, struct kbuf *b);
/* Moves what is staged to the kbuf; K_OK, or the first error met. */
K_MUST_CHECK k_status kjw_finish(struct kjw *w);

void kjw_raw(struct kjw *w, const void *p, size_t n);
/* s must be a string literal ("" s does not compile otherwise). */
#define KJW_LIT(w, s) kjw_raw((w), "" s, sizeof(s) - 1)
/* A quoted, escaped string; kjw_cstr writes "" for NULL. */
void kjw_str(struct kjw *w, const char *s, size_t n);
void kjw_cstr(struct kjw *w, const char *s);
/* The inside of a string, escaped, without the quotes. */
void kjw_str_body(struct kjw *w, const char *s, size_t n);
/* A number, true, false or null (a container is written as null). */
void kjw_scalar(struct kjw *w, json_t *v);
/* Any value, as json_dumps(JSON_COMPACT) would write it. */
void kjw_value(struct kjw *w, json_t *v);

/*
 * How kjw_value_redacted rewrites the members of objects, at any depth
 * (the audit log's requestParameters): members for which drop() is true
 * are left out; names get a lower-case first letter if lower_first; the
 * value of a member for which verbatim() is true is written as given,
 * names and all.
 */
struct kjw_redact {
	bool (*drop)(const char *name);
	bool (*verbatim)(const char *name);
	bool lower_first;
};
void kjw_value_redacted(struct kjw *w, json_t *v, const struct kjw_redact *r);

#endif
