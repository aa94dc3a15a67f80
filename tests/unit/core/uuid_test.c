/*
 * uuid_test.c — UUID text form and the version-4 generators.
 */
#include <string.h>

#include "core/uuid.h"
#include "testlib.h"
#include "core/banned.h"

static void check_v4(const char *u)
{
	CHECK_EQ_INT(strlen(u), 36);
	CHECK(u[8] == '-' && u[13] == '-' && u[18] == '-' && u[23] == '-');
	CHECK(u[14] == '4');
	CHECK(strchr("89ab", u[19]) != NULL);
	CHECK(strspn(u, "0123456789abcdef-") == 36);
}

static void test_format(void)
{
	const uint8_t b[16] = {0x12, 0x34, 0xab, 0xcd, 0x12, 0xab, 0x34, 0xcd,
			       0x56, 0xef, 0x12, 0x34, 0x56, 0x78, 0x90, 0xab};
	char out[37];
	kuuid_format(b, out);
	CHECK_STR(out, "1234abcd-12ab-34cd-56ef-1234567890ab");
	const uint8_t z[16] = {0};
	kuuid_format(z, out);
	CHECK_STR(out, "00000000-0000-0000-0000-000000000000");
}

static void test_generators(void)
{
	char a[37], b[37];
	kuuid_random(a);
	kuuid_random(b);
	check_v4(a);
	check_v4(b);
	CHECK(strcmp(a, b) != 0);
	char prev[37] = "";
	for (int i = 0; i < 1000; i++) {
		kuuid_fast(a);
		check_v4(a);
		CHECK(strcmp(a, prev) != 0);
		memcpy(prev, a, sizeof prev);
	}
}

int main(void)
{
	RUN(test_format);
	RUN(test_generators);
	return tl_summary();
}
