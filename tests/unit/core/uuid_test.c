/*
 * uuid_test.c — UUID text form and the version-4 bits (the generators: crypto/uuid_test.c).
 */
#include <string.h>

#include "core/uuid.h"
#include "testlib.h"
#include "core/banned.h"

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

/* The version and variant bits are set, the other bits kept; the input is not changed. */
static void test_v4(void)
{
	uint8_t b[16];
	memset(b, 0xff, sizeof b);
	char out[37];
	kuuid_v4(b, out);
	CHECK_STR(out, "ffffffff-ffff-4fff-bfff-ffffffffffff");
	CHECK(b[6] == 0xff && b[8] == 0xff);
	memset(b, 0, sizeof b);
	kuuid_v4(b, out);
	CHECK_STR(out, "00000000-0000-4000-8000-000000000000");
}

int main(void)
{
	RUN(test_format);
	RUN(test_v4);
	return tl_summary();
}
