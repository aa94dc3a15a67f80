/*
 * password_test.c — GetRandomPassword's rules, called as the handler is:
 * the default length and character types, each exclusion, the space,
 * RequireEachIncludedType, ExcludeCharacters, and the requests AWS refuses.
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetRandomPassword.html
 */
#include <stdio.h>
#include <string.h>

#include "req/req.h"
#include "secrets/internal.h"
#include "testlib.h"
#include "core/banned.h"

static const char PUNCT[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

static struct api_operation op_pw = {.name = "GetRandomPassword",
				     .action = "secretsmanager:GetRandomPassword"};

/* Calls the handler with `in` (JSON text); the password (or the error message) goes to out. */
static K_MUST_CHECK k_status gen(const char *in_text, char *out, size_t n)
{
	struct api_ctx c;
	memset(&c, 0, sizeof c);
	c.op = &op_pw;
	kbuf_init(&c.err_msg, 2048);
	json_t *in = json_loads(in_text, 0, NULL);
	json_t *res = json_object();
	k_status rc = sm_op_get_random_password(&c, in, res);
	const char *pw = json_string_value(json_object_get(res, "RandomPassword"));
	if (k_ok(rc))
		snprintf(out, n, "%s", pw ? pw : "(none)");
	else
		snprintf(out, n, "%s", c.err_msg.len ? kbuf_cstr(&c.err_msg) : "");
	CHECK(k_ok(rc) || pw == NULL);
	json_decref(in);
	json_decref(res);
	kbuf_release(&c.err_msg);
	return rc;
}

struct kinds {
	size_t lower, upper, digit, punct, space, other;
};

static struct kinds count(const char *pw)
{
	struct kinds k = {0};
	for (const char *p = pw; *p; p++) {
		if (*p >= 'a' && *p <= 'z')
			k.lower++;
		else if (*p >= 'A' && *p <= 'Z')
			k.upper++;
		else if (*p >= '0' && *p <= '9')
			k.digit++;
		else if (*p == ' ')
			k.space++;
		else if (strchr(PUNCT, *p) != NULL)
			k.punct++;
		else
			k.other++;
	}
	return k;
}

static char pw[8192];

static void test_default(void)
{
	CHECK_STATUS(gen("{}", pw, sizeof pw), K_OK);
	CHECK_EQ_INT(strlen(pw), 32);
	struct kinds k = count(pw);
	CHECK(k.lower > 0 && k.upper > 0 && k.digit > 0 && k.punct > 0);
	CHECK_EQ_INT(k.space, 0);
	CHECK_EQ_INT(k.other, 0);
	char again[64];
	CHECK_STATUS(gen("{}", again, sizeof again), K_OK);
	CHECK(strcmp(pw, again) != 0);
}

/* Four characters, four types: one of each, every time, wherever they land. */
static void test_each_type_required(void)
{
	int bad = 0;
	for (int i = 0; i < 300; i++) {
		CHECK_STATUS(gen("{\"PasswordLength\":4}", pw, sizeof pw), K_OK);
		struct kinds k = count(pw);
		if (k.lower != 1 || k.upper != 1 || k.digit != 1 || k.punct != 1)
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
	/* With the space too: five types need five characters. */
	CHECK_STATUS(gen("{\"PasswordLength\":5,\"IncludeSpace\":true}", pw, sizeof pw), K_OK);
	CHECK_EQ_INT(count(pw).space, 1);
	CHECK_STATUS(gen("{\"PasswordLength\":4,\"IncludeSpace\":true}", pw, sizeof pw),
		     K_E_SM_INVALID_PARAMETER);
	CHECK_STR(pw, "The password length is too short to include every required character type.");
	CHECK_STATUS(gen("{\"PasswordLength\":3}", pw, sizeof pw), K_E_SM_INVALID_PARAMETER);
	/* Without the requirement, one character is enough. */
	CHECK_STATUS(gen("{\"PasswordLength\":1,\"RequireEachIncludedType\":false}", pw, sizeof pw),
		     K_OK);
	CHECK_EQ_INT(strlen(pw), 1);
}

static void test_exclusions(void)
{
	CHECK_STATUS(
		gen("{\"PasswordLength\":200,\"ExcludeNumbers\":true,\"ExcludePunctuation\":true,"
		    "\"ExcludeUppercase\":true}",
		    pw, sizeof pw),
		K_OK);
	struct kinds k = count(pw);
	CHECK_EQ_INT(k.lower, 200);

	CHECK_STATUS(
		gen("{\"PasswordLength\":200,\"ExcludeLowercase\":true,\"ExcludeUppercase\":true,"
		    "\"ExcludePunctuation\":true}",
		    pw, sizeof pw),
		K_OK);
	CHECK_EQ_INT(count(pw).digit, 200);

	CHECK_STATUS(gen("{\"PasswordLength\":100,\"ExcludePunctuation\":true}", pw, sizeof pw),
		     K_OK);
	k = count(pw);
	CHECK_EQ_INT(k.punct, 0);
	CHECK_EQ_INT(k.lower + k.upper + k.digit, 100);

	/* ExcludeCharacters empties a whole type: that type is no longer required. */
	CHECK_STATUS(
		gen("{\"PasswordLength\":64,\"ExcludeCharacters\":\"0123456789\"}", pw, sizeof pw),
		K_OK);
	CHECK_EQ_INT(count(pw).digit, 0);
	CHECK_EQ_INT(strlen(pw), 64);

	/* Punctuation AWS's own docs suggest excluding for shells. */
	CHECK_STATUS(gen("{\"PasswordLength\":500,\"ExcludeCharacters\":\"\\\"'`\\\\$/@ \"}", pw,
			 sizeof pw),
		     K_OK);
	CHECK(strpbrk(pw, "\"'`\\$/@") == NULL);

	/* Everything but one character. */
	CHECK_STATUS(
		gen("{\"PasswordLength\":16,\"ExcludeNumbers\":true,\"ExcludePunctuation\":true,"
		    "\"ExcludeUppercase\":true,\"ExcludeCharacters\":"
		    "\"abcdefghijklmnopqrstuvwyz\"}",
		    pw, sizeof pw),
		K_OK);
	CHECK_STR(pw, "xxxxxxxxxxxxxxxx");

	/* Nothing left to draw from. */
	CHECK_STATUS(gen("{\"ExcludeNumbers\":true,\"ExcludePunctuation\":true,"
			 "\"ExcludeUppercase\":true,\"ExcludeLowercase\":true}",
			 pw, sizeof pw),
		     K_E_SM_INVALID_PARAMETER);
	CHECK_STR(pw, "The password cannot be generated: every character type is excluded.");
	CHECK_STATUS(gen("{\"ExcludeNumbers\":true,\"ExcludePunctuation\":true,"
			 "\"ExcludeUppercase\":true,"
			 "\"ExcludeCharacters\":\"abcdefghijklmnopqrstuvwxyz\"}",
			 pw, sizeof pw),
		     K_E_SM_INVALID_PARAMETER);
	/* Only the space is left: a password of spaces. */
	CHECK_STATUS(
		gen("{\"PasswordLength\":3,\"ExcludeNumbers\":true,\"ExcludePunctuation\":true,"
		    "\"ExcludeUppercase\":true,\"ExcludeLowercase\":true,\"IncludeSpace\":true}",
		    pw, sizeof pw),
		K_OK);
	CHECK_STR(pw, "   ");
}

static void test_limits(void)
{
	CHECK_STATUS(gen("{\"PasswordLength\":4096}", pw, sizeof pw), K_OK);
	CHECK_EQ_INT(strlen(pw), 4096);
	CHECK_EQ_INT(count(pw).other, 0);
	CHECK_STATUS(gen("{\"PasswordLength\":4097}", pw, sizeof pw), K_E_VALIDATION);
	CHECK_STATUS(gen("{\"PasswordLength\":0}", pw, sizeof pw), K_E_VALIDATION);
	CHECK_STATUS(gen("{\"PasswordLength\":-5}", pw, sizeof pw), K_E_VALIDATION);
	CHECK_STATUS(gen("{\"PasswordLength\":\"12\"}", pw, sizeof pw), K_E_SERIALIZATION);
	CHECK_STATUS(gen("{\"ExcludeNumbers\":\"yes\"}", pw, sizeof pw), K_E_SERIALIZATION);
	CHECK_STATUS(gen("{\"ExcludeCharacters\":5}", pw, sizeof pw), K_E_SERIALIZATION);
	CHECK_STATUS(gen("{\"IncludeSpace\":1}", pw, sizeof pw), K_E_SERIALIZATION);
}

int main(void)
{
	RUN(test_default);
	RUN(test_each_type_required);
	RUN(test_exclusions);
	RUN(test_limits);
	return tl_summary();
}
