/*
 * clock.h — the server's notion of "now".
 *
 * In normal and dev mode this is the system clock. When the server runs
 * with the explicit test flag (--test-mode), an offset can be added
 * (the test clock) so that deletion windows and rotation periods can be
 * crossed in milliseconds; kclock_advance() refuses otherwise.
 */
#ifndef KINKO_CORE_CLOCK_H
#define KINKO_CORE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/result.h"

/* Seconds since the epoch, test offset included. */
int64_t kclock_now(void);
/* Milliseconds since the epoch, test offset included. */
int64_t kclock_now_ms(void);
/*
 * The current time in milliseconds, kept inside the second now_s (a time
 * of kinko's clock in seconds, such as a request's arrival): dates written
 * for one request or one piece of scheduled work agree with its second,
 * also when test mode has moved the clock.
 */
int64_t kclock_ms_within(int64_t now_s);
void kclock_enable_test_mode(void);
bool kclock_test_mode(void);
/* Moves the clock forward by `seconds` (>= 0). Test mode only. */
K_MUST_CHECK k_status kclock_advance(int64_t seconds);
int64_t kclock_offset(void);

/*
 * Nanoseconds of the monotonic clock, for intervals and deadlines inside
 * the process (never moved by the test clock, never a date).
 */
static inline int64_t kclock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
