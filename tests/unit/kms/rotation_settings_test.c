/*
 * rotation_settings_test.c — automatic rotation's settings as a peer
 * deployment sends them for a replica (kms_rotation_settings_parse,
 * kms/mrk_peer.h): what is kept, and what is refused as a whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kms/mrk_peer.h"
#include "testlib.h"
#include "core/banned.h"

static json_t *parse_text(const char *text)
{
	json_t *in = json_loads(text, 0, NULL);
	json_t *out = kms_rotation_settings_parse(in);
	json_decref(in);
	return out;
}

static void test_kept(void)
{
	json_t *on = parse_text("{\"KeyRotationEnabled\": true, \"RotationPeriodInDays\": 180,"
				" \"NextRotationDate\": 1790000000, \"Extra\": \"dropped\"}");
	CHECK(on != NULL);
	CHECK(json_is_true(json_object_get(on, "KeyRotationEnabled")));
	CHECK_EQ_INT((int)json_integer_value(json_object_get(on, "RotationPeriodInDays")), 180);
	CHECK(json_integer_value(json_object_get(on, "NextRotationDate")) == 1790000000);
	CHECK(json_object_get(on, "Extra") == NULL);
	CHECK_EQ_INT((int)json_object_size(on), 3);
	json_decref(on);
	/* Off: only the flag, whatever else came with it. */
	json_t *off = parse_text("{\"KeyRotationEnabled\": false, \"RotationPeriodInDays\": 7}");
	CHECK(off != NULL && json_is_false(json_object_get(off, "KeyRotationEnabled")));
	CHECK_EQ_INT((int)json_object_size(off), 1);
	json_decref(off);
	/* The ends of the range. */
	static const char *const ends[] = {
		"{\"KeyRotationEnabled\": true, \"RotationPeriodInDays\": 90, "
		"\"NextRotationDate\": 1}",
		"{\"KeyRotationEnabled\": true, \"RotationPeriodInDays\": 2560, "
		"\"NextRotationDate\": "
		"1}",
	};
	for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
		json_t *e = parse_text(ends[i]);
		CHECK(e != NULL);
		json_decref(e);
	}
}

static void test_refused(void)
{
	static const char *const bad[] = {
		"null",
		"[]",
		"{}",
		"{\"KeyRotationEnabled\": \"true\"}",
		"{\"KeyRotationEnabled\": 1}",
		"{\"KeyRotationEnabled\": true}",
		"{\"KeyRotationEnabled\": true, \"RotationPeriodInDays\": 89, "
		"\"NextRotationDate\": 1}",
		"{\"KeyRotationEnabled\": true, \"RotationPeriodInDays\": 2561, "
		"\"NextRotationDate\": "
		"1}",
		"{\"KeyRotationEnabled\": true, \"RotationPeriodInDays\": \"365\", "
		"\"NextRotationDate\": 1}",
		"{\"KeyRotationEnabled\": true, \"RotationPeriodInDays\": 365.5, "
		"\"NextRotationDate\": 1}",
		"{\"KeyRotationEnabled\": true, \"RotationPeriodInDays\": 365}",
		"{\"KeyRotationEnabled\": true, \"RotationPeriodInDays\": 365, "
		"\"NextRotationDate\": 0}",
		"{\"KeyRotationEnabled\": true, \"RotationPeriodInDays\": 365, "
		"\"NextRotationDate\": "
		"-5}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *got = parse_text(bad[i]);
		if (got != NULL)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK(got == NULL);
		json_decref(got);
	}
	CHECK(kms_rotation_settings_parse(NULL) == NULL);
}

int main(void)
{
	RUN(test_kept);
	RUN(test_refused);
	return tl_summary();
}
