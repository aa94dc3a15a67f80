/*
 * p11_uri_fuzz.c — the root key's PKCS#11 URI parser (keystore/p11_uri.c).
 *
 * Input: any bytes, as a C string (up to the first NUL). An accepted URI
 * has a token, an object and an absolute module path, and no value holds
 * a control byte; a refusal always says why.
 */
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "keystore/p11_internal.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_value(const char *v)
{
	size_t n = strnlen(v, P11_URI_VALUE_MAX);
	if (n == P11_URI_VALUE_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct p11_uri u;
	char *uri = malloc(size + 1);
	if (uri == NULL)
		return 0;
	memcpy(uri, data, size);
	uri[size] = 0;
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	k_status rc = p11_uri_parse(uri, &u, &msg);
	if (k_ok(rc)) {
		if (u.token[0] == 0 || u.object[0] == 0 || u.module[0] != '/')
			abort();
		check_value(u.token);
		check_value(u.object);
		check_value(u.module);
		check_value(u.pin_file);
	} else if (!k_is(rc, K_E_VALIDATION) || msg.len == 0) {
		abort();
	}
	kbuf_release(&msg);
	free(uri);
	return 0;
}
