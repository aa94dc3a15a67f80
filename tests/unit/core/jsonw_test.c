/*
 * jsonw_test.c — the fast JSON writer: the same text as json_dumps for
 * every kind of value, valid JSON for any bytes, bounded output.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/jsonw.h"
#include "testlib.h"
#include "core/banned.h"

/* Writes v with kjw and checks the text against json_dumps(JSON_COMPACT). */
static void same_as_jansson(json_t *v)
{
	struct kbuf b;
	kbuf_init(&b, 1u << 20);
	struct kjw w;
	kjw_start(&w, &b);
	kjw_value(&w, v);
	CHECK(k_ok(kjw_finish(&w)));
	char *ref = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	CHECK(ref != NULL);
	if (ref != NULL && strcmp(ref, kbuf_cstr(&b)) != 0) {
		/* Escapes may be spelled differently; the values must be equal. */
		json_t *back = json_loadb((const char *)b.ptr, b.len, JSON_DECODE_ANY, NULL);
		CHECK(back != NULL && json_equal(back, v));
		json_decref(back);
	}
	kjson_free(ref);
	kbuf_release(&b);
}

static void test_values(void)
{
	json_t *v = json_pack("{s:s,s:i,s:I,s:f,s:f,s:b,s:b,s:n,s:[i,s,{}],s:{s:{s:[]}}}", "KeyId",
			      "arn:aws:kms:us-east-1:111122223333:key/x", "Small", 7, "Big",
			      (json_int_t)-9007199254740993LL, "Real", 0.1, "Whole", 3.0, "T", 1,
			      "F", 0, "N", "List", 1, "two", "Deep", "a", "b");
	same_as_jansson(v);
	json_decref(v);
	/* Every escape, a control character, multi-byte UTF-8 and a key that needs escaping. */
	v = json_pack("{s:s,s:s}", "q\"uote\\", "tab\t nl\n cr\r bs\b ff\f \x01 \x1f slash/",
		      "utf8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91");
	same_as_jansson(v);
	json_decref(v);
	json_t *s = json_stringn("nul\0inside", 10);
	same_as_jansson(s);
	json_decref(s);
	json_t *empty = json_object();
	same_as_jansson(empty);
	json_decref(empty);
}

static void test_invalid_utf8_and_large(void)
{
	struct kbuf b;
	kbuf_init(&b, 1u << 20);
	struct kjw w;
	kjw_start(&w, &b);
	static const char bad[] = "a\xff"
				  "b\xc3"
				  "c\xed\xa0\x80"
				  "d\xf4\x90\x80\x80"
				  "e\xe2\x82";
	kjw_str(&w, bad, sizeof bad - 1);
	CHECK(k_ok(kjw_finish(&w)));
	json_t *back = json_loadb((const char *)b.ptr, b.len, JSON_DECODE_ANY, NULL);
	CHECK(back != NULL);
	CHECK(json_is_string(back) && strstr(json_string_value(back), "\xef\xbf\xbd") != NULL);
	CHECK(json_is_string(back) && json_string_value(back)[0] == 'a');
	json_decref(back);

	/* More than the stage holds, in one string and in many pieces. */
	kbuf_reset(&b);
	kjw_start(&w, &b);
	char *big = malloc(20000);
	CHECK(big != NULL);
	memset(big, 'x', 20000);
	KJW_LIT(&w, "[");
	kjw_str(&w, big, 20000);
	for (int i = 0; i < 3000; i++)
		KJW_LIT(&w, ",1");
	KJW_LIT(&w, "]");
	CHECK(k_ok(kjw_finish(&w)));
	CHECK_EQ_INT(b.len, 20000 + 2 + 2 + 6000);
	back = json_loadb((const char *)b.ptr, b.len, 0, NULL);
	CHECK(json_array_size(back) == 3001);
	json_decref(back);
	free(big);

	/* A bounded buffer: the error sticks and is reported. */
	struct kbuf small;
	kbuf_init(&small, 16);
	kjw_start(&w, &small);
	KJW_LIT(&w, "\"0123456789abcdef0123\"");
	CHECK(k_failed(kjw_finish(&w)));
	kbuf_release(&small);
	kbuf_release(&b);

	/* Deeper than the limit: written as null, still valid JSON. */
	json_t *deep = json_array();
	json_t *cur = deep;
	for (int i = 0; i < KJW_MAX_DEPTH + 10; i++) {
		json_t *next = json_array();
		json_array_append_new(cur, next);
		cur = next;
	}
	kbuf_init(&b, 1u << 20);
	kjw_start(&w, &b);
	kjw_value(&w, deep);
	CHECK(k_ok(kjw_finish(&w)));
	back = json_loadb((const char *)b.ptr, b.len, 0, NULL);
	CHECK(back != NULL);
	json_decref(back);
	json_decref(deep);
	kbuf_release(&b);
}

int main(void)
{
	kjson_init();
	RUN(test_values);
	RUN(test_invalid_utf8_and_large);
	return tl_summary();
}
