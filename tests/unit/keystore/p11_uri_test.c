/*
 * p11_uri_test.c — the root key's PKCS#11 URI (RFC 7512, p11_uri.c):
 * attributes and percent-decoding, and the refusals: a NUL or any other
 * control byte in a value, encoded or raw, a '%' without two hexadecimal
 * digits, a value too long, a URI without token, object or an absolute
 * module path.
 */
#include <stdio.h>
#include <string.h>

#include "keystore/p11_internal.h"
#include "testlib.h"
#include "core/banned.h"

static struct p11_uri u;

static k_status parse(const char *uri, struct kbuf *msg)
{
	kbuf_reset(msg);
	return p11_uri_parse(uri, &u, msg);
}

static void test_good(void)
{
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	CHECK_STATUS(
		parse("pkcs11:token=root%20keys;object=kinko-root;type=secret-key"
		      "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/p%2Fin",
		      &msg),
		K_OK);
	CHECK(strcmp(u.token, "root keys") == 0);
	CHECK(strcmp(u.object, "kinko-root") == 0);
	CHECK(strcmp(u.module, "/usr/lib/softhsm/libsofthsm2.so") == 0);
	CHECK(strcmp(u.pin_file, "/etc/p/in") == 0);
	CHECK_STATUS(parse("pkcs11:object=o;token=t?module-path=/m.so", &msg), K_OK);
	CHECK(strcmp(u.token, "t") == 0 && u.pin_file[0] == 0);
	/* upper and lower case hexadecimal digits alike; bytes >= 0x80 are kept (UTF-8) */
	CHECK_STATUS(parse("pkcs11:token=%e9%C3%A9;object=o?module-path=/m.so", &msg), K_OK);
	CHECK(strcmp(u.token, "\xe9\xc3\xa9") == 0);
	kbuf_release(&msg);
}

/* Each of these is refused with a message naming the reason, not cut short. */
static void refused(const char *uri, const char *why)
{
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	CHECK_STATUS(parse(uri, &msg), K_E_VALIDATION);
	if (strstr(kbuf_cstr(&msg), why) == NULL) {
		fprintf(stderr, "%s: message \"%s\" lacks \"%s\"\n", uri, kbuf_cstr(&msg), why);
		CHECK(false);
	}
	kbuf_release(&msg);
}

static void test_control_bytes_refused(void)
{
	refused("pkcs11:token=root%00evil;object=o?module-path=/m.so",
		"token holds a control byte");
	refused("pkcs11:token=t;object=key%00?module-path=/m.so", "object holds a control byte");
	refused("pkcs11:token=t;object=o?module-path=/m.so%00.evil", "module-path holds a control");
	refused("pkcs11:token=t;object=o?module-path=/m.so&pin-source=file:/p%00x", "pin-source");
	refused("pkcs11:token=a%0ab;object=o?module-path=/m.so", "(0x0a)");
	refused("pkcs11:token=a%1fb;object=o?module-path=/m.so", "(0x1f)");
	refused("pkcs11:token=a%7Fb;object=o?module-path=/m.so", "(0x7f)");
	refused("pkcs11:token=a\tb;object=o?module-path=/m.so", "(0x09)");
	refused("pkcs11:token=a\rb;object=o?module-path=/m.so", "(0x0d)");
}

static void test_bad_encoding_refused(void)
{
	refused("pkcs11:token=a%;object=o?module-path=/m.so", "without two hexadecimal");
	refused("pkcs11:token=a%4;object=o?module-path=/m.so", "without two hexadecimal");
	refused("pkcs11:token=a%4g;object=o?module-path=/m.so", "without two hexadecimal");
	refused("pkcs11:token=a% 1;object=o?module-path=/m.so", "without two hexadecimal");
	refused("pkcs11:token=a%+1;object=o?module-path=/m.so", "without two hexadecimal");
	refused("pkcs11:token;object=o?module-path=/m.so", "without '='");
	static char long_uri[P11_URI_VALUE_MAX + 64];
	int n = snprintf(long_uri, sizeof long_uri, "pkcs11:token=");
	memset(long_uri + n, 'a', P11_URI_VALUE_MAX);
	snprintf(long_uri + n + P11_URI_VALUE_MAX, sizeof long_uri - (size_t)n - P11_URI_VALUE_MAX,
		 ";object=o?module-path=/m.so");
	refused(long_uri, "longer than");
}

static void test_incomplete_refused(void)
{
	refused("pkcs12:token=t;object=o?module-path=/m.so", "starts with pkcs11:");
	refused("pkcs11:object=o?module-path=/m.so", "must be pkcs11:token=");
	refused("pkcs11:token=t?module-path=/m.so", "must be pkcs11:token=");
	refused("pkcs11:token=t;object=o?module-path=m.so", "must be pkcs11:token=");
	refused("pkcs11:token=t;object=o;module-path=/m.so", "must be pkcs11:token=");
}

int main(void)
{
	RUN(test_good);
	RUN(test_control_bytes_refused);
	RUN(test_bad_encoding_refused);
	RUN(test_incomplete_refused);
	return tl_summary();
}
