/*
 * testlib.h — a minimal unit-test harness. Each test binary prints one line
 * per failed check and ends with "N passed, N failed"; exit status 1 if
 * anything failed.
 */
#ifndef KINKO_TESTLIB_H
#define KINKO_TESTLIB_H

#include <stdio.h>
#include <string.h>

#include "core/result.h"

extern int tl_passed, tl_failed;
extern const char *tl_current;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (cond) {                                                                        \
			tl_passed++;                                                               \
		} else {                                                                           \
			tl_failed++;                                                               \
			fprintf(stderr, "FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__, tl_current,   \
				#cond);                                                            \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
	do {                                                                                       \
		long long tl_a_ = (long long)(a), tl_b_ = (long long)(b);                          \
		if (tl_a_ == tl_b_) {                                                              \
			tl_passed++;                                                               \
		} else {                                                                           \
			tl_failed++;                                                               \
			fprintf(stderr, "FAIL %s:%d [%s]: %s == %s (%lld != %lld)\n", __FILE__,    \
				__LINE__, tl_current, #a, #b, tl_a_, tl_b_);                       \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *tl_a_ = (a), *tl_b_ = (b);                                             \
		if (tl_a_ && tl_b_ && strcmp(tl_a_, tl_b_) == 0) {                                 \
			tl_passed++;                                                               \
		} else {                                                                           \
			tl_failed++;                                                               \
			fprintf(stderr, "FAIL %s:%d [%s]: %s == %s (\"%s\" != \"%s\")\n",          \
				__FILE__, __LINE__, tl_current, #a, #b, tl_a_ ? tl_a_ : "(null)",  \
				tl_b_ ? tl_b_ : "(null)");                                         \
		}                                                                                  \
	} while (0)

/* Two statuses are the same code (k_status is not an integer). */
#define CHECK_STATUS(a, b)                                                                         \
	do {                                                                                       \
		k_status tl_sa_ = (a), tl_sb_ = (b);                                               \
		if (k_is(tl_sa_, tl_sb_)) {                                                        \
			tl_passed++;                                                               \
		} else {                                                                           \
			tl_failed++;                                                               \
			fprintf(stderr, "FAIL %s:%d [%s]: %s == %s (%d != %d)\n", __FILE__,        \
				__LINE__, tl_current, #a, #b, (int)k_code(tl_sa_),                 \
				(int)k_code(tl_sb_));                                              \
		}                                                                                  \
	} while (0)

#define RUN(fn)                                                                                    \
	do {                                                                                       \
		tl_current = #fn;                                                                  \
		fn();                                                                              \
	} while (0)

/* Prints the summary line; returns the exit status. */
int tl_summary(void);
/* Removes a test's temporary folder and everything in it. */
void tl_remove_tree(const char *dir);

#endif
