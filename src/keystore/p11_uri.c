/*
 * p11_uri.c — the PKCS#11 URI (RFC 7512) that names the root key's token
 * and object: pkcs11:token=LABEL;object=LABEL?module-path=PATH&pin-source=
 * file:PATH (p11_internal.h).
 *
 * Values are percent-encoded ("pk11-pchar ... / pct-encoded", RFC 7512
 * section 2.3). A value is a C string from here on (a label compared with
 * the token's, a path opened), so a decoded NUL would cut it short and a
 * control byte would reach a log line: both are refused, encoded or not,
 * as is a '%' that is not followed by two hexadecimal digits.
 */
#include "keystore/p11_internal.h"

#include <stddef.h>
#include <string.h>

#include "core/hex.h"
#include "core/banned.h"

/* Decodes the value v[0..n) of attribute `name` into out (NUL-terminated). */
static K_MUST_CHECK k_status decode(const char *name, const char *v, size_t n,
				    char out[P11_URI_VALUE_MAX], struct kbuf *msg)
{
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '%') {
			int hi = i + 1 < n ? khex_value((unsigned char)v[i + 1]) : -1;
			int lo = hi >= 0 && i + 2 < n ? khex_value((unsigned char)v[i + 2]) : -1;
			if (lo < 0) {
				kbuf_note(msg,
					  "the PKCS#11 URI's %s has a '%%' without two "
					  "hexadecimal digits after it",
					  name);
				return K_E_VALIDATION;
			}
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f) {
			kbuf_note(msg,
				  "the PKCS#11 URI's %s holds a control byte (0x%02x): "
				  "refused",
				  name, c);
			return K_E_VALIDATION;
		}
		if (j + 1 >= P11_URI_VALUE_MAX) {
			kbuf_note(msg, "the PKCS#11 URI's %s is longer than %d bytes", name,
				  P11_URI_VALUE_MAX - 1);
			return K_E_VALIDATION;
		}
		out[j++] = (char)c;
	}
	out[j] = 0;
	return K_OK;
}

/* One attribute NAME=VALUE; attributes kinko does not use (type, id ...) are skipped. */
static K_MUST_CHECK k_status attribute(struct p11_uri *u, const char *a, size_t n, bool query,
				       struct kbuf *msg)
{
	const char *eq = memchr(a, '=', n);
	if (eq == NULL) {
		kbuf_note(msg, "the PKCS#11 URI has an attribute without '=': %.*s",
			  (int)(n < 64 ? n : 64), a);
		return K_E_VALIDATION;
	}
	size_t kl = (size_t)(eq - a);
	static const struct {
		const char *name;
		bool query;
		size_t off;
	} known[] = {
		{"token", false, offsetof(struct p11_uri, token)},
		{"object", false, offsetof(struct p11_uri, object)},
		{"module-path", true, offsetof(struct p11_uri, module)},
		{"pin-source", true, offsetof(struct p11_uri, pin_file)},
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		if (known[i].query != query || strlen(known[i].name) != kl ||
		    memcmp(a, known[i].name, kl) != 0)
			continue;
		char *dst = (char *)u + known[i].off;
		GUARD(decode(known[i].name, eq + 1, n - kl - 1, dst, msg));
		if (dst == u->pin_file && strncmp(dst, "file:", 5) == 0)
			memmove(dst, dst + 5, strlen(dst + 5) + 1);
		return K_OK;
	}
	return K_OK;
}

k_status p11_uri_parse(const char *uri, struct p11_uri *u, struct kbuf *msg)
{
	memset(u, 0, sizeof *u);
	if (strncmp(uri, "pkcs11:", 7) != 0) {
		kbuf_note(msg, "a PKCS#11 URI starts with pkcs11:");
		return K_E_VALIDATION;
	}
	const char *p = uri + 7;
	bool query = false;
	while (*p != 0) {
		size_t n = strcspn(p, query ? "&" : ";?");
		if (n > 0)
			GUARD(attribute(u, p, n, query, msg));
		p += n;
		if (*p == '?')
			query = true;
		if (*p != 0)
			p++;
	}
	if (u->token[0] == 0 || u->object[0] == 0 || u->module[0] != '/') {
		kbuf_note(msg,
			  "the root key URI must be pkcs11:token=LABEL;object=LABEL?module-path="
			  "/ABSOLUTE/module.so[&pin-source=file:PATH]");
		return K_E_VALIDATION;
	}
	return K_OK;
}
