/*
 * password.c — GetRandomPassword.
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetRandomPassword.html
 *
 * "PasswordLength: The length of the password. If you don't include this
 * parameter, the default length is 32 characters." The character classes
 * are lowercase, uppercase, numbers and the punctuation
 * ! " # $ % & ' ( ) * + , - . / : ; < = > ? @ [ \ ] ^ _ ` { | } ~, plus the
 * space with IncludeSpace. "RequireEachIncludedType: Specifies whether to
 * include at least one upper and lowercase letter, one number, and one
 * punctuation. If you don't include this switch, the password contains at
 * least one of every character type."
 * Every character is drawn from OpenSSL's CSPRNG without modulo bias.
 */
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "secrets/internal.h"
#include "core/banned.h"

#define PW_MAX 4096

/* A uniform index in [0, n) (n <= 256). */
static K_MUST_CHECK k_status uniform(size_t n, size_t *out)
{
	uint8_t b;
	size_t limit = 256 - (256 % n);
	for (;;) {
		GUARD(crypto_random(&b, 1));
		if ((size_t)b < limit) {
			*out = (size_t)b % n;
			return K_OK;
		}
	}
}

/* Index in [0, n) for n up to PW_MAX, from two random bytes. */
static K_MUST_CHECK k_status uniform16(size_t n, size_t *out)
{
	uint8_t b[2];
	size_t limit = 65536 - (65536 % n);
	for (;;) {
		GUARD(crypto_random(b, 2));
		size_t v = ((size_t)b[0] << 8) | b[1];
		if (v < limit) {
			*out = v % n;
			return K_OK;
		}
	}
}

/* Appends the characters of `set` that are not excluded to `cls`. */
static size_t filter_class(const char *set, const char *exclude, char *cls)
{
	size_t n = 0;
	for (const char *p = set; *p; p++) {
		if (exclude == NULL || strchr(exclude, *p) == NULL)
			cls[n++] = *p;
	}
	cls[n] = 0;
	return n;
}

k_status sm_op_get_random_password(struct api_ctx *c, json_t *in, json_t *out)
{
	int64_t len = 32;
	bool has, ex_num, ex_punct, ex_upper, ex_lower, space, require = true;
	const char *exclude;
	GUARD(api_int(c, in, "PasswordLength", false, 1, PW_MAX, &has, &len));
	GUARD(api_string(c, in, "ExcludeCharacters", false, 0, 4096, &exclude));
	GUARD(api_bool(c, in, "ExcludeNumbers", &has, &ex_num));
	GUARD(api_bool(c, in, "ExcludePunctuation", &has, &ex_punct));
	GUARD(api_bool(c, in, "ExcludeUppercase", &has, &ex_upper));
	GUARD(api_bool(c, in, "ExcludeLowercase", &has, &ex_lower));
	GUARD(api_bool(c, in, "IncludeSpace", &has, &space));
	bool req_value;
	GUARD(api_bool(c, in, "RequireEachIncludedType", &has, &req_value));
	if (has)
		require = req_value;

	static const char *const sets[] = {"abcdefghijklmnopqrstuvwxyz",
					   "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789",
					   "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", " "};
	bool use[5] = {!ex_lower, !ex_upper, !ex_num, !ex_punct, space};
	char cls[5][40];
	char all[128];
	size_t n_all = 0, n_cls = 0;
	for (int i = 0; i < 5; i++) {
		cls[i][0] = 0;
		if (!use[i])
			continue;
		size_t n = filter_class(sets[i], exclude, cls[i]);
		if (n == 0)
			continue;
		memcpy(all + n_all, cls[i], n);
		n_all += n;
		n_cls++;
	}
	all[n_all] = 0;
	if (n_all == 0)
		return api_fail(
			c, K_E_SM_INVALID_PARAMETER,
			"The password cannot be generated: every character type is excluded.");
	if (require && (size_t)len < n_cls)
		return api_fail(c, K_E_SM_INVALID_PARAMETER,
				"The password length is too short to include every required "
				"character type.");

	char pw[PW_MAX + 1];
	size_t pos = 0, idx;
	k_status rc = K_OK;
	if (require) {
		for (int i = 0; i < 5; i++) {
			size_t n = strlen(cls[i]);
			if (n == 0)
				continue;
			GUARD_GOTO(uniform(n, &idx));
			pw[pos++] = cls[i][idx];
		}
	}
	while (pos < (size_t)len) {
		GUARD_GOTO(uniform(n_all, &idx));
		pw[pos++] = all[idx];
	}
	/* Fisher-Yates, so the required characters are not at the front. */
	for (size_t i = pos; i > 1; i--) {
		GUARD_GOTO(uniform16(i, &idx));
		char t = pw[i - 1];
		pw[i - 1] = pw[idx];
		pw[idx] = t;
	}
	pw[pos] = 0;
	json_object_set_new(out, "RandomPassword", json_stringn(pw, pos));
out:
	crypto_wipe(pw, sizeof pw);
	return rc;
}
