#include "core/secret.h"

#include <string.h>

#include "testlib.h"

/* The bytes land after what the buffer holds, exactly as they are, NULs included. */
static void test_append_to(void)
{
	static const uint8_t key[] = {'w', 'J', 0x00, 'r', 0xff, 'K'};
	struct ksecret *s = ksecret_from(key, sizeof key);
	CHECK(s != NULL);
	struct kbuf b;
	kbuf_init(&b, 64);
	CHECK(k_ok(kbuf_append_str(&b, "K=")));
	CHECK(k_ok(ksecret_append_to(&b, s)));
	CHECK_EQ_INT(b.len, 2 + sizeof key);
	CHECK(memcmp(b.ptr, "K=", 2) == 0);
	CHECK(memcmp(b.ptr + 2, key, sizeof key) == 0);
	CHECK(kbuf_valid(&b));
	kbuf_release(&b);
	CHECK(b.ptr == NULL && b.len == 0);
	ksecret_free(s);
}

/* A buffer exactly the secret's size holds it; one byte short fails and is left unchanged. */
static void test_append_to_cap(void)
{
	struct ksecret *s = ksecret_from((const uint8_t *)"abcdef", 6);
	CHECK(s != NULL);
	struct kbuf fit;
	kbuf_init(&fit, 6);
	CHECK(k_ok(ksecret_append_to(&fit, s)));
	CHECK_STR(kbuf_cstr(&fit), "abcdef");
	kbuf_release(&fit);

	struct kbuf shy;
	kbuf_init(&shy, 6);
	CHECK(k_ok(kbuf_append_str(&shy, "x")));
	CHECK(k_is(ksecret_append_to(&shy, s), K_E_VALIDATION));
	CHECK_EQ_INT(shy.len, 1);
	CHECK_STR(kbuf_cstr(&shy), "x");
	kbuf_release(&shy);
	ksecret_free(s);
}

/* The secret itself is untouched and still counted until freed. */
static void test_append_to_leaves_secret(void)
{
	unsigned long before = ksecret_live();
	struct ksecret *s = ksecret_from((const uint8_t *)"k3y", 3);
	CHECK(s != NULL);
	CHECK_EQ_INT(ksecret_live(), before + 1);
	struct kbuf b;
	kbuf_init(&b, 16);
	CHECK(k_ok(ksecret_append_to(&b, s)));
	CHECK(k_ok(ksecret_append_to(&b, s)));
	CHECK_STR(kbuf_cstr(&b), "k3yk3y");
	CHECK_EQ_INT(ksecret_len(s), 3);
	kbuf_release(&b);
	ksecret_free(s);
	CHECK_EQ_INT(ksecret_live(), before);
}

int main(void)
{
	RUN(test_append_to);
	RUN(test_append_to_cap);
	RUN(test_append_to_leaves_secret);
	return tl_summary();
}
