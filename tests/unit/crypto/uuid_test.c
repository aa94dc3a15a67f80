/*
 * uuid_test.c — the version-4 UUID generators.
 */
#include <pthread.h>
#include <string.h>

#include "crypto/uuid.h"
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

static void test_random(void)
{
	char a[37], b[37];
	crypto_uuid_random(a);
	crypto_uuid_random(b);
	check_v4(a);
	check_v4(b);
	CHECK(strcmp(a, b) != 0);
}

static void test_fast(void)
{
	static char seen[1000][37];
	for (int i = 0; i < 1000; i++) {
		crypto_uuid_fast(seen[i]);
		check_v4(seen[i]);
	}
	/* Every one distinct, not only from the one before (the variant bits must not eat the counter's). */
	for (int i = 0; i < 1000; i++) {
		for (int j = i + 1; j < 1000; j++)
			CHECK(strcmp(seen[i], seen[j]) != 0);
	}
}

static void *other_thread(void *arg)
{
	crypto_uuid_fast(arg);
	return NULL;
}

/* Each thread has its own seed: another thread's first id is not this one's. */
static void test_fast_per_thread(void)
{
	char mine[37], theirs[37] = "";
	crypto_uuid_fast(mine);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, other_thread, theirs) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	check_v4(theirs);
	CHECK(strcmp(mine, theirs) != 0);
}

int main(void)
{
	RUN(test_random);
	RUN(test_fast);
	RUN(test_fast_per_thread);
	return tl_summary();
}
