/*
 * result_mix.c — code that must not compile: k_status is not an integer.
 * The Makefile compiles this file once per MIX_CASE and fails the build if
 * any case 1..N compiles; case 0 is the same code written correctly and must
 * compile, so that a case cannot pass by failing for another reason.
 */
#include "core/result.h"

int mix_int_function(void);
k_status mix_status_function(void);
int mix(void);

#if MIX_CASE == 0
int mix(void)
{
	k_status rc = mix_status_function();
	if (k_failed(rc))
		return 1;
	GUARD_GOTO(mix_status_function());
	return mix_int_function();
out:
	return (int)k_code(rc);
}
#elif MIX_CASE == 1
/* a status read as an int */
int mix(void)
{
	k_status s = K_OK;
	int x = s;
	return x;
}
#elif MIX_CASE == 2
/* an int returned as a status */
k_status mix_status_function(void)
{
	return -1;
}
#elif MIX_CASE == 3
/* a status used as a truth value */
int mix(void)
{
	if (mix_status_function())
		return 1;
	return 0;
}
#elif MIX_CASE == 4
/* an int function guarded as if it returned a status */
int mix(void)
{
	GUARD(mix_int_function());
	return 0;
}
#elif MIX_CASE == 5
/* a status compared with == */
int mix(void)
{
	return mix_status_function() == K_OK;
}
#elif MIX_CASE == 6
/* a status dropped without k_ignore() */
K_MUST_CHECK k_status mix_must(void);
int mix(void)
{
	mix_must();
	return 0;
}
#endif
