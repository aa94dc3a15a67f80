/*
 * result_test.c — the status type: every row of errors.def has its K_ value
 * with its own code, the tests on a status, the guard macros, and the table
 * lookups (k_status_name, k_status_http, k_status_message).
 * result_mix.c holds what must not compile (the Makefile checks it).
 */
#include <string.h>

#include "core/result.h"
#include "testlib.h"
#include "core/banned.h"

/* K_FOO carries KC_FOO: a value written with the wrong code shows here. */
static void test_values_match_rows(void)
{
	int rows = 0;
#define X(code, name, status, msg)                                                                 \
	CHECK(k_code(K_##code) == KC_##code);                                                      \
	CHECK_STR(k_status_name(K_##code), name);                                                  \
	CHECK_EQ_INT(k_status_http(K_##code), status);                                             \
	rows++;
#include "core/errors.def"
#undef X
	CHECK_EQ_INT(rows, K_STATUS_COUNT);
}

static void test_predicates(void)
{
	CHECK(k_ok(K_OK));
	CHECK(!k_failed(K_OK));
	CHECK(!k_ok(K_E_INTERNAL));
	CHECK(k_failed(K_E_NOT_FOUND));
	CHECK(k_is(K_E_NOT_FOUND, K_E_NOT_FOUND));
	CHECK(!k_is(K_E_NOT_FOUND, K_E_VALIDATION));
	CHECK(k_is(K_OK, K_OK));
}

static int calls;

static K_MUST_CHECK k_status step(k_status rc)
{
	calls++;
	return rc;
}

static K_MUST_CHECK k_status guarded(k_status first, k_status second)
{
	GUARD(step(first));
	GUARD(step(second));
	return K_OK;
}

static K_MUST_CHECK k_status ensured(int cond)
{
	ENSURE(cond, K_E_VALIDATION);
	BAIL(K_E_CONFLICT);
}

static K_MUST_CHECK k_status with_out(k_status first, int cond, int *cleaned)
{
	k_status rc = K_OK;
	GUARD_GOTO(step(first));
	ENSURE_GOTO(cond, K_E_LIMIT_EXCEEDED);
out:
	(*cleaned)++;
	return rc;
}

/* GUARD stops at the first failure; the GOTO forms run the cleanup on every path. */
static void test_guards(void)
{
	calls = 0;
	CHECK_STATUS(guarded(K_OK, K_OK), K_OK);
	CHECK_EQ_INT(calls, 2);
	calls = 0;
	CHECK_STATUS(guarded(K_E_ACCESS_DENIED, K_OK), K_E_ACCESS_DENIED);
	CHECK_EQ_INT(calls, 1);
	CHECK_STATUS(guarded(K_OK, K_E_THROTTLING), K_E_THROTTLING);
	CHECK_STATUS(ensured(0), K_E_VALIDATION);
	CHECK_STATUS(ensured(1), K_E_CONFLICT);
	int cleaned = 0;
	CHECK_STATUS(with_out(K_OK, 1, &cleaned), K_OK);
	CHECK_STATUS(with_out(K_E_TAG, 1, &cleaned), K_E_TAG);
	CHECK_STATUS(with_out(K_OK, 0, &cleaned), K_E_LIMIT_EXCEEDED);
	CHECK_EQ_INT(cleaned, 3);
}

/* A switch over a status, the way callers write it. */
static int kind(k_status rc)
{
	switch (k_code(rc)) {
	case KC_OK:
		return 0;
	case KC_E_NOT_FOUND:
		return 1;
	default:
		return 2;
	}
}

static void test_switch(void)
{
	CHECK_EQ_INT(kind(K_OK), 0);
	CHECK_EQ_INT(kind(K_E_NOT_FOUND), 1);
	CHECK_EQ_INT(kind(K_E_INTERNAL), 2);
}

/* A code outside the table reads as an internal error, never out of bounds. */
static void test_out_of_range(void)
{
	k_status bad = {(enum k_code)K_STATUS_COUNT};
	CHECK_STR(k_status_name(bad), "KMSInternalException");
	CHECK_EQ_INT(k_status_http(bad), 500);
	CHECK_STR(k_status_message(bad), "An internal error occurred.");
	CHECK_STR(k_status_name(K_OK), "");
	CHECK_EQ_INT(k_status_http(K_E_PAYLOAD_TOO_LARGE), 413);
	CHECK(strlen(k_status_message(K_E_ACCESS_DENIED)) > 0);
}

int main(void)
{
	RUN(test_values_match_rows);
	RUN(test_predicates);
	RUN(test_guards);
	RUN(test_switch);
	RUN(test_out_of_range);
	return tl_summary();
}
