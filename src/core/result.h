/*
 * result.h — the one way kinko code fails.
 *
 * Every fallible function returns a k_status (K_OK on success) and is
 * declared K_MUST_CHECK (warn_unused_result), so the compiler refuses a
 * silently dropped error. k_status is a struct holding one enum k_code: the
 * compiler will not mix it with int or bool (`int x = st;`, `return -1;`
 * from a k_status function and `if (st)` do not compile), and, being one
 * enum wide, it is still returned in a register.
 *
 * Codes are the rows of errors.def. K_OK, K_E_... are values of type
 * k_status; KC_OK, KC_E_... the matching enum k_code constants. Statuses are
 * compared only through k_ok(), k_failed() and k_is(); a switch over a
 * status is `switch (k_code(st))` with KC_ case labels. errors.def also maps
 * each code to its AWS exception name and HTTP status (k_status_name,
 * k_status_http; the error JSON is written by api_render_error in
 * api/render.c).
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

enum k_code {
#define X(code, name, status, msg) KC_##code,
#include "core/errors.def"
#undef X
	K_STATUS_COUNT
};

typedef struct k_status {
	enum k_code code;
} k_status;

/* One k_status value per row of errors.def, in its order. A row without its
 * value here does not build (result.c checks). */
/* BEGIN k_status values */
#define K_OK ((k_status){KC_OK})
#define K_E_INTERNAL ((k_status){KC_E_INTERNAL})
#define K_E_VALIDATION ((k_status){KC_E_VALIDATION})
#define K_E_SERIALIZATION ((k_status){KC_E_SERIALIZATION})
#define K_E_UNKNOWN_OPERATION ((k_status){KC_E_UNKNOWN_OPERATION})
#define K_E_MISSING_AUTH ((k_status){KC_E_MISSING_AUTH})
#define K_E_INCOMPLETE_SIGNATURE ((k_status){KC_E_INCOMPLETE_SIGNATURE})
#define K_E_INVALID_SIGNATURE ((k_status){KC_E_INVALID_SIGNATURE})
#define K_E_UNRECOGNIZED_CLIENT ((k_status){KC_E_UNRECOGNIZED_CLIENT})
#define K_E_EXPIRED_TOKEN ((k_status){KC_E_EXPIRED_TOKEN})
#define K_E_ACCESS_DENIED ((k_status){KC_E_ACCESS_DENIED})
#define K_E_THROTTLING ((k_status){KC_E_THROTTLING})
#define K_E_PAYLOAD_TOO_LARGE ((k_status){KC_E_PAYLOAD_TOO_LARGE})
#define K_E_NOT_FOUND_HTTP ((k_status){KC_E_NOT_FOUND_HTTP})
#define K_E_NOT_FOUND ((k_status){KC_E_NOT_FOUND})
#define K_E_DISABLED ((k_status){KC_E_DISABLED})
#define K_E_INVALID_STATE ((k_status){KC_E_INVALID_STATE})
#define K_E_INVALID_CIPHERTEXT ((k_status){KC_E_INVALID_CIPHERTEXT})
#define K_E_INCORRECT_KEY ((k_status){KC_E_INCORRECT_KEY})
#define K_E_INVALID_KEY_USAGE ((k_status){KC_E_INVALID_KEY_USAGE})
#define K_E_INVALID_ARN ((k_status){KC_E_INVALID_ARN})
#define K_E_INVALID_MARKER ((k_status){KC_E_INVALID_MARKER})
#define K_E_INVALID_ALIAS_NAME ((k_status){KC_E_INVALID_ALIAS_NAME})
#define K_E_INVALID_GRANT_TOKEN ((k_status){KC_E_INVALID_GRANT_TOKEN})
#define K_E_INVALID_GRANT_ID ((k_status){KC_E_INVALID_GRANT_ID})
#define K_E_ALREADY_EXISTS ((k_status){KC_E_ALREADY_EXISTS})
#define K_E_LIMIT_EXCEEDED ((k_status){KC_E_LIMIT_EXCEEDED})
#define K_E_MALFORMED_POLICY ((k_status){KC_E_MALFORMED_POLICY})
#define K_E_TAG ((k_status){KC_E_TAG})
#define K_E_UNSUPPORTED ((k_status){KC_E_UNSUPPORTED})
#define K_E_DRY_RUN ((k_status){KC_E_DRY_RUN})
#define K_E_KMS_INVALID_SIGNATURE ((k_status){KC_E_KMS_INVALID_SIGNATURE})
#define K_E_KMS_INVALID_MAC ((k_status){KC_E_KMS_INVALID_MAC})
#define K_E_EXPIRED_IMPORT_TOKEN ((k_status){KC_E_EXPIRED_IMPORT_TOKEN})
#define K_E_INVALID_IMPORT_TOKEN ((k_status){KC_E_INVALID_IMPORT_TOKEN})
#define K_E_INCORRECT_KEY_MATERIAL ((k_status){KC_E_INCORRECT_KEY_MATERIAL})
#define K_E_CUSTOM_KEY_STORE_NOT_FOUND ((k_status){KC_E_CUSTOM_KEY_STORE_NOT_FOUND})
#define K_E_DEPENDENCY_TIMEOUT ((k_status){KC_E_DEPENDENCY_TIMEOUT})
#define K_E_STORE_UNAVAILABLE ((k_status){KC_E_STORE_UNAVAILABLE})
#define K_E_CONFLICT ((k_status){KC_E_CONFLICT})
#define K_E_SM_NOT_FOUND ((k_status){KC_E_SM_NOT_FOUND})
#define K_E_SM_INVALID_PARAMETER ((k_status){KC_E_SM_INVALID_PARAMETER})
#define K_E_SM_INVALID_REQUEST ((k_status){KC_E_SM_INVALID_REQUEST})
#define K_E_SM_EXISTS ((k_status){KC_E_SM_EXISTS})
#define K_E_SM_LIMIT_EXCEEDED ((k_status){KC_E_SM_LIMIT_EXCEEDED})
#define K_E_SM_ENCRYPTION_FAILURE ((k_status){KC_E_SM_ENCRYPTION_FAILURE})
#define K_E_SM_DECRYPTION_FAILURE ((k_status){KC_E_SM_DECRYPTION_FAILURE})
#define K_E_SM_PRECONDITION ((k_status){KC_E_SM_PRECONDITION})
#define K_E_SM_MALFORMED_POLICY ((k_status){KC_E_SM_MALFORMED_POLICY})
#define K_E_SM_INTERNAL ((k_status){KC_E_SM_INTERNAL})
#define K_E_SM_INVALID_NEXT_TOKEN ((k_status){KC_E_SM_INVALID_NEXT_TOKEN})
#define K_E_NOT_AUTHORIZED ((k_status){KC_E_NOT_AUTHORIZED})
#define K_E_SM_PUBLIC_POLICY ((k_status){KC_E_SM_PUBLIC_POLICY})
#define K_E_CT_INVALID_LOOKUP_ATTRIBUTES ((k_status){KC_E_CT_INVALID_LOOKUP_ATTRIBUTES})
#define K_E_CT_INVALID_TIME_RANGE ((k_status){KC_E_CT_INVALID_TIME_RANGE})
#define K_E_CT_INVALID_MAX_RESULTS ((k_status){KC_E_CT_INVALID_MAX_RESULTS})
#define K_E_CT_INVALID_NEXT_TOKEN ((k_status){KC_E_CT_INVALID_NEXT_TOKEN})
#define K_E_STS_INVALID_IDENTITY_TOKEN ((k_status){KC_E_STS_INVALID_IDENTITY_TOKEN})
#define K_E_STS_EXPIRED_WEB_TOKEN ((k_status){KC_E_STS_EXPIRED_WEB_TOKEN})
#define K_E_STS_INVALID_AUTH_MESSAGE ((k_status){KC_E_STS_INVALID_AUTH_MESSAGE})
#define K_E_XKS_PROXY_URI_UNREACHABLE ((k_status){KC_E_XKS_PROXY_URI_UNREACHABLE})
#define K_E_XKS_PROXY_INVALID_RESPONSE ((k_status){KC_E_XKS_PROXY_INVALID_RESPONSE})
#define K_E_XKS_PROXY_INCORRECT_AUTH ((k_status){KC_E_XKS_PROXY_INCORRECT_AUTH})
#define K_E_XKS_PROXY_INVALID_CONFIGURATION ((k_status){KC_E_XKS_PROXY_INVALID_CONFIGURATION})
#define K_E_XKS_KEY_NOT_FOUND ((k_status){KC_E_XKS_KEY_NOT_FOUND})
#define K_E_XKS_KEY_INVALID_CONFIGURATION ((k_status){KC_E_XKS_KEY_INVALID_CONFIGURATION})
#define K_E_XKS_KEY_ALREADY_IN_USE ((k_status){KC_E_XKS_KEY_ALREADY_IN_USE})
#define K_E_CKS_INVALID_STATE ((k_status){KC_E_CKS_INVALID_STATE})
#define K_E_CKS_HAS_CMKS ((k_status){KC_E_CKS_HAS_CMKS})
#define K_E_CKS_NAME_IN_USE ((k_status){KC_E_CKS_NAME_IN_USE})
#define K_E_CLUSTER_NOT_FOUND ((k_status){KC_E_CLUSTER_NOT_FOUND})
#define K_E_CLUSTER_IN_USE ((k_status){KC_E_CLUSTER_IN_USE})
#define K_E_CLUSTER_NOT_RELATED ((k_status){KC_E_CLUSTER_NOT_RELATED})
#define K_E_INCORRECT_TRUST_ANCHOR ((k_status){KC_E_INCORRECT_TRUST_ANCHOR})
#define K_E_XKS_URI_IN_USE ((k_status){KC_E_XKS_URI_IN_USE})
#define K_E_XKS_URI_ENDPOINT_IN_USE ((k_status){KC_E_XKS_URI_ENDPOINT_IN_USE})
#define K_E_XKS_VPC_IN_USE ((k_status){KC_E_XKS_VPC_IN_USE})
/* END k_status values */

#define K_MUST_CHECK __attribute__((warn_unused_result))

/* The code of a status, for a switch (case labels are the KC_ names). */
static inline enum k_code k_code(k_status s)
{
	return s.code;
}

/* Tests on a status: code compares statuses only through these. */
static inline int k_ok(k_status s)
{
	return s.code == KC_OK;
}
static inline int k_failed(k_status s)
{
	return s.code != KC_OK;
}
static inline int k_is(k_status s, k_status code)
{
	return s.code == code.code;
}

/* Drops a status on purpose, where the caller has nothing to do with a
 * failure (a cast to void does not silence warn_unused_result in gcc). */
static inline void k_ignore(k_status s)
{
	(void)s;
}

#define GUARD(x)                                                                                   \
	do {                                                                                       \
		k_status guard_rc_ = (x);                                                          \
		if (k_failed(guard_rc_))                                                           \
			return guard_rc_;                                                          \
	} while (0)

#define ENSURE(cond, err)                                                                          \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return (err);                                                              \
	} while (0)

#define BAIL(err) return (err)

#define GUARD_GOTO(x)                                                                              \
	do {                                                                                       \
		rc = (x);                                                                          \
		if (k_failed(rc))                                                                  \
			goto out;                                                                  \
	} while (0)

#define ENSURE_GOTO(cond, err)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			rc = (err);                                                                \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

/* The AWS exception name, HTTP status and default message of a code. */
const char *k_status_name(k_status s);
int k_status_http(k_status s);
const char *k_status_message(k_status s);

#endif
