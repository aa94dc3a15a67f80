/*
 * kms_link_test.c — the ConnectionErrorCode that ConnectCustomKeyStore
 * reports for each failure of kinko's XKS client (xks/kms_link.h).
 */
#include <string.h>

#include "xks/kms_link.h"
#include "testlib.h"
#include "core/banned.h"

static const char *code(k_status st, enum xks_transport_error t, bool proxy, enum xks_error e)
{
	struct xks_client_error err;
	memset(&err, 0, sizeof err);
	err.transport = t;
	err.has_proxy_error = proxy;
	err.proxy_error = e;
	return xks_connection_error_code(st, &err);
}

static void test_codes(void)
{
	CHECK(code(K_OK, XKS_TRANSPORT_OK, false, XKS_E_VALIDATION) == NULL);
	CHECK_STR(code(K_E_XKS_PROXY_URI_UNREACHABLE, XKS_TRANSPORT_UNREACHABLE, false, 0),
		  "XKS_PROXY_NOT_REACHABLE");
	CHECK_STR(code(K_E_XKS_PROXY_URI_UNREACHABLE, XKS_TRANSPORT_TIMED_OUT, false, 0),
		  "XKS_PROXY_TIMED_OUT");
	CHECK_STR(code(K_E_XKS_PROXY_URI_UNREACHABLE, XKS_TRANSPORT_TLS, false, 0),
		  "XKS_PROXY_INVALID_TLS_CONFIGURATION");
	CHECK_STR(code(K_E_XKS_PROXY_URI_UNREACHABLE, XKS_TRANSPORT_OK, true,
		       XKS_E_DEPENDENCY_TIMEOUT),
		  "XKS_PROXY_TIMED_OUT");
	CHECK_STR(code(K_E_XKS_PROXY_INCORRECT_AUTH, XKS_TRANSPORT_OK, true,
		       XKS_E_AUTHENTICATION_FAILED),
		  "INVALID_CREDENTIALS");
	CHECK_STR(code(K_E_XKS_PROXY_INVALID_CONFIGURATION, XKS_TRANSPORT_OK, true,
		       XKS_E_INVALID_URI_PATH),
		  "XKS_PROXY_INVALID_CONFIGURATION");
	CHECK_STR(code(K_E_INVALID_STATE, XKS_TRANSPORT_OK, true, XKS_E_ACCESS_DENIED),
		  "XKS_PROXY_ACCESS_DENIED");
	CHECK_STR(code(K_E_XKS_PROXY_INVALID_RESPONSE, XKS_TRANSPORT_OK, false, 0),
		  "XKS_PROXY_INVALID_RESPONSE");
}

int main(void)
{
	RUN(test_codes);
	return tl_summary();
}
