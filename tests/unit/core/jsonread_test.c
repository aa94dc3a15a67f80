#include "core/jsonread.h"

#include <string.h>

#include "testlib.h"

struct jcase {
	const char *text;
	enum kjson_error error; /* KJSON_OK: accepted */
	size_t position;	/* of the error */
};

/* Each text, read by kjson_read, with what jansson's loader says of it beside. */
static const struct jcase cases[] = {
	{"{\"KeyId\": \"alias/x\", \"Plaintext\": \"QUFB\"}", KJSON_OK, 0},
	{" \t\r\n{}\n ", KJSON_OK, 0},
	{"[]", KJSON_OK, 0},
	{"[1, -0, 0.5, 2.5e3, 1E-2, -9223372036854775808, 9223372036854775807]", KJSON_OK, 0},
	{"[true, false, null, \"\", {\"a\": {\"b\": []}}]", KJSON_OK, 0},
	{"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00\"", KJSON_OK, 0},
	{"{\"k\\\"ey\": \"v\", \"k\\u0065y\": 1}", KJSON_OK, 0},
	{"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", KJSON_OK, 0},
	{"1e-400", KJSON_OK, 0},
	{"", KJSON_END, 0},
	{"   ", KJSON_END, 3},
	{"{\"a\": 1, \"a\": 2}", KJSON_DUPLICATE, 9},
	{"{\"a\": 1, \"\\u0061\": 2}", KJSON_DUPLICATE, 9},
	{"\"\\u0000\"", KJSON_NUL, 7},
	{"{\"\\u0000\": 1}", KJSON_NUL, 8},
	{"9223372036854775808", KJSON_OVERFLOW, 0},
	{"[-9223372036854775809]", KJSON_OVERFLOW, 1},
	{"1e400", KJSON_OVERFLOW, 0},
	{"\"\xc3\"", KJSON_UTF8, 1},
	{"\"\xc0\xaf\"", KJSON_UTF8, 1},
	{"\"\xed\xa0\x80\"", KJSON_UTF8, 1},
	{"\"\xf4\x90\x80\x80\"", KJSON_UTF8, 1},
	{"\xff", KJSON_UTF8, 0},
	{"\"\\ud800\"", KJSON_SYNTAX, 7},
	{"\"\\udc00\"", KJSON_SYNTAX, 7},
	{"\"\\ud800\\u0041\"", KJSON_SYNTAX, 7},
	{"\"\\x\"", KJSON_SYNTAX, 2},
	{"\"a\tb\"", KJSON_SYNTAX, 2},
	{"{\"a\" 1}", KJSON_SYNTAX, 5},
	{"{\"a\": 1,}", KJSON_SYNTAX, 8},
	{"[1,]", KJSON_SYNTAX, 3},
	{"{a: 1}", KJSON_SYNTAX, 1},
	{"01", KJSON_TRAILING, 1},
	{"1.", KJSON_END, 2},
	{"1.e3", KJSON_SYNTAX, 2},
	{"-", KJSON_END, 1},
	{"+1", KJSON_SYNTAX, 0},
	{"tru", KJSON_END, 3},
	{"trux", KJSON_SYNTAX, 0},
	{"{\"a\": 1", KJSON_END, 7},
	{"[\"abc", KJSON_END, 5},
	{"{} {}", KJSON_TRAILING, 3},
	{"{}x", KJSON_TRAILING, 2},
};

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct jcase *c = &cases[i];
		size_t n = strlen(c->text);
		json_t *v = NULL;
		struct kjson_status why;
		k_status rc = kjson_read(kslice_make(c->text, n), &v, &why);
		json_error_t e;
		json_t *theirs =
			n > 0 ? json_loadb(c->text, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e)
			      : NULL;
		if (c->error == KJSON_OK) {
			CHECK(k_ok(rc));
			CHECK(v != NULL && theirs != NULL && json_equal(v, theirs));
		} else {
			if (!k_is(rc, K_E_SERIALIZATION) || why.error != c->error ||
			    why.position != c->position)
				fprintf(stderr, "case %zu (%s): error %d at %zu\n", i, c->text,
					(int)why.error, why.position);
			CHECK(k_is(rc, K_E_SERIALIZATION));
			CHECK(v == NULL && theirs == NULL);
			CHECK_EQ_INT(why.error, c->error);
			CHECK_EQ_INT(why.position, c->position);
		}
		json_decref(v);
		json_decref(theirs);
	}
}

/* Strings and names come through exactly, escapes decoded. */
static void test_values(void)
{
	const char *text = "{\"Key\\nId\": \"a\\u00e9\\ud83d\\ude00\", \"n\": -42, \"r\": 0.25}";
	json_t *v = NULL;
	struct kjson_status why;
	CHECK(k_ok(kjson_read(kslice_make(text, strlen(text)), &v, &why)));
	CHECK_STR(json_string_value(json_object_get(v, "Key\nId")), "a\xc3\xa9\xf0\x9f\x98\x80");
	CHECK_EQ_INT(json_integer_value(json_object_get(v, "n")), -42);
	CHECK(json_is_real(json_object_get(v, "r")) &&
	      json_real_value(json_object_get(v, "r")) == 0.25);
	CHECK_EQ_INT(json_object_size(v), 3);
	json_decref(v);
}

/* KJSON_MAX_DEPTH levels are read; one more is refused. */
static void test_depth(void)
{
	static char text[2 * (KJSON_MAX_DEPTH + 1) + 1];
	for (size_t levels = KJSON_MAX_DEPTH; levels <= KJSON_MAX_DEPTH + 1; levels++) {
		memset(text, '[', levels);
		memset(text + levels, ']', levels);
		json_t *v = NULL;
		struct kjson_status why;
		k_status rc = kjson_read(kslice_make(text, 2 * levels), &v, &why);
		if (levels == KJSON_MAX_DEPTH) {
			CHECK(k_ok(rc));
		} else {
			CHECK(k_is(rc, K_E_SERIALIZATION));
			CHECK_EQ_INT(why.error, KJSON_DEPTH);
			CHECK_EQ_INT(why.position, KJSON_MAX_DEPTH);
		}
		json_decref(v);
	}
}

/* A long escaped string and a long number grow their buffers. */
static void test_long(void)
{
	static char text[20000];
	size_t n = 0;
	text[n++] = '[';
	text[n++] = '"';
	for (int i = 0; i < 2000; i++) {
		memcpy(text + n, "\\u00e9", 6);
		n += 6;
	}
	memcpy(text + n, "\",0.", 4);
	n += 4;
	memset(text + n, '1', 300);
	n += 300;
	text[n++] = ']';
	json_t *v = NULL;
	struct kjson_status why;
	CHECK(k_ok(kjson_read(kslice_make(text, n), &v, &why)));
	CHECK_EQ_INT(json_string_length(json_array_get(v, 0)), 4000);
	CHECK(json_real_value(json_array_get(v, 1)) > 0.11);
	json_decref(v);
}

/* A NUL byte after the value is a byte after the value (jansson takes "0\0"). */
static void test_nul_after_value(void)
{
	json_t *v = NULL;
	struct kjson_status why;
	CHECK(k_is(kjson_read(kslice_make("0\0", 2), &v, &why), K_E_SERIALIZATION));
	CHECK_EQ_INT(why.error, KJSON_TRAILING);
	CHECK_EQ_INT(why.position, 1);
	CHECK(k_is(kjson_read(kslice_make("\"a\0\"", 4), &v, &why), K_E_SERIALIZATION));
	CHECK_EQ_INT(why.error, KJSON_SYNTAX);
	CHECK(v == NULL);
	/* inside the value too (jansson takes "[[8\0]]" as [[8]]): refused at the NUL */
	CHECK(k_is(kjson_read(kslice_make("\n[[8\0]]", 7), &v, &why), K_E_SERIALIZATION));
	CHECK_EQ_INT(why.position, 4);
	CHECK(k_is(kjson_read(kslice_make("[true\0]", 7), &v, &why), K_E_SERIALIZATION));
	CHECK_EQ_INT(why.position, 5);
	CHECK(v == NULL);
}

int main(void)
{
	RUN(test_cases);
	RUN(test_values);
	RUN(test_depth);
	RUN(test_long);
	RUN(test_nul_after_value);
	return tl_summary();
}
