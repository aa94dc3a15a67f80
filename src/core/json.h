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

/* Installs the wiping allocator; call once at start, before any JSON use. */
void kjson_init(void);
/* Releases a block allocated by jansson (the result of json_dumps). */
void kjson_free(void *p);

#endif
