#include "testlib.h"

int tl_passed, tl_failed;
const char *tl_current = "";

int tl_summary(void)
{
	printf("%d passed, %d failed\n", tl_passed, tl_failed);
	return tl_failed ? 1 : 0;
}
