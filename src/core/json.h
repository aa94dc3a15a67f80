/*
 * json.h — helpers around jansson.
 *
 * kinko installs allocation functions into jansson that wipe every block
 * on release (JSON values carry base64 plaintext in transit). Strings that
 * jansson allocates (json_dumps) must therefore go back through
 * kjson_free(), never free().
 */
#ifndef KINKO_CORE_JSON_H
#define KINKO_CORE_JSON_H

#include <jansson.h>
#include <stdint.h>

/* Installs the wiping allocator; call once at start, before any JSON use. */
void kjson_init(void);
/* Releases a block allocated by jansson (the result of json_dumps). */
void kjson_free(void *p);

/*
 * The dates of both services' documents and answers: epoch seconds with
 * milliseconds, as AWS returns them (so that resources made in one second
 * still sort by creation). kjson_date: the JSON number for a time in
 * milliseconds. kjson_date_seconds: a stored date in whole seconds, from a
 * fractional number or from the whole seconds older documents hold (0 when
 * absent).
 */
json_t *kjson_date(int64_t ms);
int64_t kjson_date_seconds(const json_t *v);

#endif
