#include "core/clock.h"

#include <stdatomic.h>
#include <time.h>

static atomic_bool test_mode;
static atomic_llong offset_s;

int64_t kclock_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + atomic_load(&offset_s) * 1000;
}

int64_t kclock_now(void)
{
	return (int64_t)time(NULL) + atomic_load(&offset_s);
}

void kclock_enable_test_mode(void)
{
	atomic_store(&test_mode, true);
}

bool kclock_test_mode(void)
{
	return atomic_load(&test_mode);
}

k_status kclock_advance(int64_t seconds)
{
	ENSURE(atomic_load(&test_mode), K_E_ACCESS_DENIED);
	ENSURE(seconds >= 0 && seconds < (int64_t)100 * 365 * 86400, K_E_VALIDATION);
	atomic_fetch_add(&offset_s, seconds);
	return K_OK;
}

int64_t kclock_offset(void)
{
	return atomic_load(&offset_s);
}

int64_t kclock_ms_within(int64_t now_s)
{
	int64_t ms = kclock_now_ms();
	if (ms < now_s * 1000)
		return now_s * 1000;
	if (ms > now_s * 1000 + 999)
		return now_s * 1000 + 999;
	return ms;
}
