/*
 * wipe.h — wiping memory that held secrets, for core/ (which sits below
 * crypto/ and so cannot call crypto_wipe).
 *
 * kwipe is glibc's explicit_bzero: it zeroes n bytes at p and, unlike
 * memset, is never removed by the compiler as a dead store, even when the
 * memory is freed or goes out of scope right after. That is the whole of
 * what OPENSSL_cleanse guarantees (OpenSSL implements it as a memset
 * called through a volatile function pointer, for the same reason); the
 * bytes written differ (zeros here) but nothing reads wiped memory, so
 * for wiping before free or reuse the two are equivalent. Neither is a
 * cryptographic primitive. Code above core/ uses crypto_wipe.
 *
 * p may be NULL when n is 0 (explicit_bzero is declared nonnull, so the
 * call is skipped then).
 */
#ifndef KINKO_CORE_WIPE_H
#define KINKO_CORE_WIPE_H

#include <stddef.h>
#include <string.h>

static inline void kwipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

#endif
