/*
 * validate_test.c — the request-member helpers of req/: each member type
 * read when present, absent and optional, absent and required, of the
 * wrong JSON type, and out of its bounds, with AWS's messages; and
 * api_fail's message.
 */
#include <jansson.h>
#include <string.h>

#include "req/req.h"
#include "testlib.h"
#include "core/banned.h"

static struct api_ctx ctx;

static const char *msg(void)
{
	return kbuf_cstr(&ctx.err_msg);
}

static void test_string(void)
{
	json_t *in = json_pack("{s:s,s:i,s:s}", "KeyId", "alias/a", "Limit", 3, "Empty", "");
	const char *v = "untouched";
	CHECK_STATUS(api_string(&ctx, in, "KeyId", true, 1, 2048, &v), K_OK);
	CHECK_STR(v, "alias/a");
	CHECK_STATUS(api_string(&ctx, in, "Description", false, 0, 8192, &v), K_OK);
	CHECK(v == NULL);
	CHECK_STATUS(api_string(&ctx, in, "Description", true, 0, 8192, &v), K_E_VALIDATION);
	CHECK_STR(msg(),
		  "1 validation error detected: Value null at 'description' failed to satisfy "
		  "constraint: Member must not be null");
	CHECK_STATUS(api_string(&ctx, in, "Limit", false, 0, 10, &v), K_E_SERIALIZATION);
	CHECK_STR(msg(), "Unexpected value type for member 'Limit': expected string");
	CHECK_STATUS(api_string(&ctx, in, "KeyId", true, 1, 3, &v), K_E_VALIDATION);
	CHECK_STR(msg(),
		  "1 validation error detected: Value 'alias/a' at 'keyId' failed to satisfy "
		  "constraint: Member must have length less than or equal to 3");
	CHECK(v == NULL);
	CHECK_STATUS(api_string(&ctx, in, "Empty", true, 1, 3, &v), K_E_VALIDATION);
	CHECK_STR(msg(), "1 validation error detected: Value at 'empty' failed to satisfy "
			 "constraint: Member must have length greater than or equal to 1");
	json_object_set_new(in, "Nul", json_stringn("a\0b", 3));
	CHECK_STATUS(api_string(&ctx, in, "Nul", true, 0, 10, &v), K_E_VALIDATION);
	CHECK_STR(msg(), "Member 'Nul' contains a NUL character");
	json_decref(in);
}

static void test_enum_int_bool(void)
{
	static const char *const usages[] = {"ENCRYPT_DECRYPT", "SIGN_VERIFY", NULL};
	json_t *in = json_pack("{s:s,s:s,s:i,s:b,s:s}", "KeyUsage", "SIGN_VERIFY", "Bad", "NOPE",
			       "Days", 7, "Flag", 1, "NotBool", "true");
	const char *v;
	CHECK_STATUS(api_enum(&ctx, in, "KeyUsage", true, usages, &v), K_OK);
	CHECK_STR(v, "SIGN_VERIFY");
	CHECK_STATUS(api_enum(&ctx, in, "Bad", true, usages, &v), K_E_VALIDATION);
	CHECK(v == NULL);
	CHECK_STR(msg(),
		  "1 validation error detected: Value 'NOPE' at 'bad' failed to satisfy "
		  "constraint: Member must satisfy enum value set: [ENCRYPT_DECRYPT, SIGN_VERIFY]");

	bool present = true;
	int64_t n = 0;
	CHECK_STATUS(api_int(&ctx, in, "Days", true, 7, 30, &present, &n), K_OK);
	CHECK(present && n == 7);
	CHECK_STATUS(api_int(&ctx, in, "Days", true, 8, 30, &present, &n), K_E_VALIDATION);
	CHECK(!present);
	CHECK_STR(msg(), "1 validation error detected: Value '7' at 'days' failed to satisfy "
			 "constraint: Member must have value greater than or equal to 8");
	CHECK_STATUS(api_int(&ctx, in, "Missing", false, 0, 1, &present, &n), K_OK);
	CHECK(!present);
	CHECK_STATUS(api_int(&ctx, in, "KeyUsage", false, 0, 1, &present, &n), K_E_SERIALIZATION);

	bool b = false;
	CHECK_STATUS(api_bool(&ctx, in, "Flag", &present, &b), K_OK);
	CHECK(present && b);
	CHECK_STATUS(api_bool(&ctx, in, "NotBool", &present, &b), K_E_SERIALIZATION);
	CHECK_STATUS(api_bool(&ctx, in, "Missing", &present, &b), K_OK);
	CHECK(!present && !b);
	json_decref(in);
}

static void test_blob_map_list(void)
{
	json_t *in = json_pack("{s:s,s:s,s:{s:s},s:{s:i},s:[s,s],s:[i]}", "Plaintext",
			       "aGVsbG8=", "Broken", "a$==", "Context", "k", "v", "BadMap", "k", 1,
			       "Tokens", "t1", "t2", "BadList", 1);
	struct kbuf b;
	kbuf_init(&b, 4096);
	bool present = false;
	CHECK_STATUS(api_blob(&ctx, in, "Plaintext", true, 1, 4096, &b, &present), K_OK);
	CHECK(present && b.len == 5 && memcmp(b.ptr, "hello", 5) == 0);
	CHECK_STATUS(api_blob(&ctx, in, "Plaintext", true, 1, 4, &b, &present), K_E_VALIDATION);
	CHECK_STR(msg(), "1 validation error detected: Value at 'plaintext' failed to satisfy "
			 "constraint: Member must have length less than or equal to 4");
	CHECK_STATUS(api_blob(&ctx, in, "Broken", true, 0, 4096, &b, &present), K_E_SERIALIZATION);
	CHECK_STR(msg(), "Base64 encoded value of member 'Broken' is not valid");
	CHECK_STATUS(api_blob(&ctx, in, "Missing", true, 0, 4096, &b, NULL), K_E_VALIDATION);

	json_t *m = NULL;
	CHECK_STATUS(api_string_map(&ctx, in, "Context", &m), K_OK);
	CHECK(m != NULL && json_object_size(m) == 1);
	CHECK_STATUS(api_string_map(&ctx, in, "BadMap", &m), K_E_SERIALIZATION);
	CHECK_STATUS(api_string_map(&ctx, in, "Missing", &m), K_OK);
	CHECK(m == NULL);

	json_t *l = NULL;
	CHECK_STATUS(api_string_list(&ctx, in, "Tokens", 2, 1, 8, &l), K_OK);
	CHECK(l != NULL && json_array_size(l) == 2);
	CHECK_STATUS(api_string_list(&ctx, in, "Tokens", 1, 1, 8, &l), K_E_VALIDATION);
	CHECK_STR(msg(), "1 validation error detected: Value at 'tokens' failed to satisfy "
			 "constraint: Member must have length less than or equal to 1");
	CHECK_STATUS(api_string_list(&ctx, in, "BadList", 2, 1, 8, &l), K_E_SERIALIZATION);

	json_t *out = json_object();
	CHECK_STATUS(api_set_blob(out, "CiphertextBlob", (const uint8_t *)"hello", 5), K_OK);
	CHECK_STR(json_string_value(json_object_get(out, "CiphertextBlob")), "aGVsbG8=");
	json_decref(out);
	kbuf_release(&b);
	json_decref(in);
}

static void test_fail(void)
{
	CHECK_STATUS(api_fail(&ctx, K_E_NOT_FOUND, "Key '%s' does not exist", "k1"), K_E_NOT_FOUND);
	CHECK_STR(msg(), "Key 'k1' does not exist");
	/* A later failure replaces the message; a long one is cut, never overflows. */
	char big[3000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	CHECK_STATUS(api_fail(&ctx, K_E_VALIDATION, "%s", big), K_E_VALIDATION);
	CHECK(ctx.err_msg.len == 1023 && msg()[0] == 'x');
}

int main(void)
{
	memset(&ctx, 0, sizeof ctx);
	kbuf_init(&ctx.err_msg, 2048);
	RUN(test_string);
	RUN(test_enum_int_bool);
	RUN(test_blob_map_list);
	RUN(test_fail);
	kbuf_release(&ctx.err_msg);
	return tl_summary();
}
