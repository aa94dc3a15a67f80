/*
 * result.h — the one way kinko code fails.
 *
 * Every fallible function returns a k_status (K_OK on success). The type is
 * declared warn_unused_result through K_MUST_CHECK so the compiler refuses
 * silently dropped errors. Codes are rows of errors.def, which also maps
 * each code to its AWS exception name and HTTP status (k_status_name,
 * k_status_http; the error JSON is written by api_render_error in api/render.c).
 *
 * Guard macros:
 *   GUARD(x)          evaluate x; if it is not K_OK, return it.
 *   ENSURE(cond, err) if cond is false, return err.
 *   BAIL(err)         return err.
 * Functions that own resources use a single `out:` label and the
 * GUARD_GOTO / ENSURE_GOTO forms, which set `rc` and jump there.
 */
#ifndef KINKO_CORE_RESULT_H
#define KINKO_CORE_RESULT_H

typedef enum k_status {
#define X(code, name, status, msg) code,
#include "core/errors.def"
#undef X
	K_STATUS_COUNT
} k_status;

#define K_MUST_CHECK __attribute__((warn_unused_result))

/* Tests on a status. Code compares statuses only through these, so that
 * k_status can become a type the compiler will not mix with int. */
static inline int k_ok(k_status s) { return s == K_OK; }
static inline int k_failed(k_status s) { return s != K_OK; }
static inline int k_is(k_status s, k_status code) { return s == code; }

#define GUARD(x)                                                               \
	do {                                                                   \
		k_status guard_rc_ = (x);                                      \
		if (guard_rc_ != K_OK)                                         \
			return guard_rc_;                                      \
	} while (0)

#define ENSURE(cond, err)                                                      \
	do {                                                                   \
		if (!(cond))                                                   \
			return (err);                                          \
	} while (0)

#define BAIL(err) return (err)

#define GUARD_GOTO(x)                                                          \
	do {                                                                   \
		rc = (x);                                                      \
		if (rc != K_OK)                                                \
			goto out;                                              \
	} while (0)

#define ENSURE_GOTO(cond, err)                                                 \
	do {                                                                   \
		if (!(cond)) {                                                 \
			rc = (err);                                            \
			goto out;                                              \
		}                                                              \
	} while (0)

/* The AWS exception name, HTTP status and default message of a code. */
const char *k_status_name(k_status s);
int k_status_http(k_status s);
const char *k_status_message(k_status s);

#endif
