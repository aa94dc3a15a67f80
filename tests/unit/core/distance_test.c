/*
 * distance_test.c — edit distance of short names (core/distance.h).
 */
#include <stdint.h>

#include "core/distance.h"
#include "testlib.h"

static void test_distances(void)
{
	CHECK_EQ_INT(k_edit_distance("", ""), 0);
	CHECK_EQ_INT(k_edit_distance("abc", ""), 3);
	CHECK_EQ_INT(k_edit_distance("", "abc"), 3);
	CHECK_EQ_INT(k_edit_distance("max_conections", "max_connections"), 1);
	CHECK_EQ_INT(k_edit_distance("kms:Decrpyt", "kms:Decrypt"), 2);
	CHECK_EQ_INT(k_edit_distance("kitten", "sitting"), 3);
	CHECK_EQ_INT(k_edit_distance("same", "same"), 0);
}

static void test_bound(void)
{
	char longer[K_DISTANCE_MAX_NAME + 2];
	for (size_t i = 0; i < sizeof longer - 1; i++)
		longer[i] = 'a';
	longer[sizeof longer - 1] = 0;
	CHECK(k_edit_distance(longer, "a") == SIZE_MAX);
	CHECK(k_edit_distance("a", longer) == SIZE_MAX);
	longer[K_DISTANCE_MAX_NAME] = 0; /* exactly the limit */
	CHECK_EQ_INT(k_edit_distance(longer, ""), K_DISTANCE_MAX_NAME);
}

int main(void)
{
	RUN(test_distances);
	RUN(test_bound);
	return tl_summary();
}
