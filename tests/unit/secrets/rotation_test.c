/*
 * rotation_test.c — rotation schedules without a server: the next rotation
 * time that sm_next_rotation computes from RotationRules (rate(), cron(),
 * AutomaticallyAfterDays) on dates worked out by hand, and the checks of
 * sm_validate_rules, with the expressions AWS refuses.
 * https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_schedule.html
 */
#include <stdio.h>
#include <string.h>

#include "req/req.h"
#include "secrets/internal.h"
#include "testlib.h"
#include "core/banned.h"

#define DAY 86400
#define HOUR 3600
/* 2026-01-01T00:00:00Z, a Thursday. */
#define JAN1 1767225600

static int64_t next_se(const char *expr, int64_t from)
{
	json_t *rules = json_pack("{s:s}", "ScheduleExpression", expr);
	int64_t t = sm_next_rotation(rules, from);
	json_decref(rules);
	return t;
}

static void test_rate(void)
{
	CHECK_EQ_INT(next_se("rate(10 days)", JAN1), JAN1 + 10 * DAY);
	CHECK_EQ_INT(next_se("rate(1 day)", JAN1), JAN1 + DAY);
	CHECK_EQ_INT(next_se("rate(1 days)", JAN1), JAN1 + DAY);
	CHECK_EQ_INT(next_se("rate(1000 days)", JAN1), JAN1 + 1000 * DAY);
	CHECK_EQ_INT(next_se("rate(6 hours)", JAN1), JAN1 + 6 * HOUR);
	CHECK_EQ_INT(next_se("rate(1 hour)", JAN1), JAN1 + HOUR);
	/* Not a schedule: no next rotation. */
	CHECK_EQ_INT(next_se("rate(2 day)", JAN1), 0);
	CHECK_EQ_INT(next_se("rate(2 hour)", JAN1), 0);
	CHECK_EQ_INT(next_se("rate(0 days)", JAN1), 0);
	CHECK_EQ_INT(next_se("rate(-3 days)", JAN1), 0);
	CHECK_EQ_INT(next_se("rate(1001 days)", JAN1), 0);
	CHECK_EQ_INT(next_se("rate(5 weeks)", JAN1), 0);
	CHECK_EQ_INT(next_se("rate(5days)", JAN1), 0);
	CHECK_EQ_INT(next_se("rate(5 days", JAN1), 0);
	CHECK_EQ_INT(next_se("rate( days)", JAN1), 0);
	CHECK_EQ_INT(next_se("rate()", JAN1), 0);
	CHECK_EQ_INT(next_se("every 5 days", JAN1), 0);
	CHECK_EQ_INT(next_se("", JAN1), 0);
}

static void test_days(void)
{
	json_t *r = json_pack("{s:i}", "AutomaticallyAfterDays", 30);
	CHECK_EQ_INT(sm_next_rotation(r, JAN1), JAN1 + 30 * DAY);
	json_decref(r);
	r = json_pack("{s:i}", "AutomaticallyAfterDays", 0);
	CHECK_EQ_INT(sm_next_rotation(r, JAN1), 0);
	json_decref(r);
	r = json_object();
	CHECK_EQ_INT(sm_next_rotation(r, JAN1), 0);
	json_decref(r);
	/* The expression wins when both are stored. */
	r = json_pack("{s:i,s:s}", "AutomaticallyAfterDays", 30, "ScheduleExpression",
		      "rate(2 days)");
	CHECK_EQ_INT(sm_next_rotation(r, JAN1), JAN1 + 2 * DAY);
	json_decref(r);
}

static void test_cron(void)
{
	/* The 1st and 15th at 16:00 UTC. */
	CHECK_EQ_INT(next_se("cron(0 16 1,15 * ? *)", JAN1), 1767283200);	/* Jan 1 16:00 */
	CHECK_EQ_INT(next_se("cron(0 16 1,15 * ? *)", 1767283200), 1768492800); /* Jan 15 */
	/* Mondays at noon, by name and by number (SUN=1). */
	CHECK_EQ_INT(next_se("cron(0 12 ? * MON *)", JAN1), 1767614400); /* Jan 5 */
	CHECK_EQ_INT(next_se("cron(0 12 ? * mon *)", JAN1), 1767614400);
	CHECK_EQ_INT(next_se("cron(0 12 ? * 2 *)", JAN1), 1767614400);
	/* Strictly after `from`: midnight of Jan 1 itself is not next. */
	CHECK_EQ_INT(next_se("cron(0 */4 * * ? *)", JAN1), JAN1 + 4 * HOUR);
	CHECK_EQ_INT(next_se("cron(0 0 ? * * *)", JAN1), JAN1 + DAY);
	CHECK_EQ_INT(next_se("cron(15 0 * * ? *)", JAN1), JAN1 + 15 * 60);
	CHECK_EQ_INT(next_se("cron(0-30/10 * * * ? *)", JAN1), JAN1 + 10 * 60);
	CHECK_EQ_INT(next_se("cron(30 10 1 MAR ? *)", JAN1), 1772361000);
	CHECK_EQ_INT(next_se("cron(0 0 1 JAN ? 2027)", JAN1), 1798761600);
	CHECK_EQ_INT(next_se("cron(0 0 1 1 ? 2027-2030)", JAN1), 1798761600);
	/* A leap day is found two years on. */
	CHECK_EQ_INT(next_se("cron(0 8 29 FEB ? *)", JAN1), 1835424000);
	/* Dates that never come: none within five years. */
	CHECK_EQ_INT(next_se("cron(0 0 31 2 ? *)", JAN1), 0);
	CHECK_EQ_INT(next_se("cron(0 0 1 1 ? 2026)", JAN1), 0);
	/* Malformed: wrong field counts, out of range, empty or reversed parts. */
	static const char *const bad[] = {"cron(0 0 * * ?)",	 "cron(0 0 * * ? * *)",
					  "cron(60 0 * * ? *)",	 "cron(0 24 * * ? *)",
					  "cron(0 0 0 * ? *)",	 "cron(0 0 32 * ? *)",
					  "cron(0 0 * 13 ? *)",	 "cron(0 0 ? * 8 *)",
					  "cron(0 0 ? * FOO *)", "cron(0 0 ? JANUARY * *)",
					  "cron(5-1 0 * * ? *)", "cron(0/0 0 * * ? *)",
					  "cron(0, 0 * * ? *)",	 "cron(0 0 * * ? 2200)",
					  "cron(a b c d e f)",	 "cron()",
					  "cron(-1 0 * * ? *)"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tl_current = bad[i];
		CHECK_EQ_INT(next_se(bad[i], JAN1), 0);
	}
}

static struct api_operation op_rotate = {.name = "RotateSecret",
					 .action = "secretsmanager:RotateSecret"};

/* Validates rules given as JSON text; the message goes to msg. */
static K_MUST_CHECK k_status validate(const char *text, char *msg, size_t n)
{
	struct api_ctx c;
	memset(&c, 0, sizeof c);
	c.op = &op_rotate;
	kbuf_init(&c.err_msg, 2048);
	json_t *rules = json_loads(text, JSON_DECODE_ANY, NULL);
	k_status rc = sm_validate_rules(&c, rules);
	snprintf(msg, n, "%s", c.err_msg.len ? kbuf_cstr(&c.err_msg) : "");
	json_decref(rules);
	kbuf_release(&c.err_msg);
	return rc;
}

static void test_validate(void)
{
	char m[512];
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":30}", m, sizeof m), K_OK);
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":1}", m, sizeof m), K_OK);
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":1000}", m, sizeof m), K_OK);
	CHECK_STATUS(validate("{\"ScheduleExpression\":\"rate(4 hours)\"}", m, sizeof m), K_OK);
	CHECK_STATUS(validate("{\"ScheduleExpression\":\"rate(10 days)\",\"Duration\":\"3h\"}", m,
			      sizeof m),
		     K_OK);
	CHECK_STATUS(
		validate("{\"ScheduleExpression\":\"cron(0 16 1,15 * ? *)\",\"Duration\":\"24h\"}",
			 m, sizeof m),
		K_OK);
	/* The same schedule written twice is accepted. */
	CHECK_STATUS(
		validate("{\"AutomaticallyAfterDays\":7,\"ScheduleExpression\":\"rate(7 days)\"}",
			 m, sizeof m),
		K_OK);

	CHECK_STATUS(validate("[]", m, sizeof m), K_E_SERIALIZATION);
	CHECK_STATUS(validate("\"rate(1 day)\"", m, sizeof m), K_E_SERIALIZATION);
	CHECK_STATUS(validate("{}", m, sizeof m), K_E_SM_INVALID_PARAMETER);
	CHECK_STR(m, "RotationRules needs AutomaticallyAfterDays or ScheduleExpression.");
	CHECK_STATUS(validate("{\"Duration\":\"2h\"}", m, sizeof m), K_E_SM_INVALID_PARAMETER);
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":0}", m, sizeof m), K_E_VALIDATION);
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":1001}", m, sizeof m), K_E_VALIDATION);
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":\"30\"}", m, sizeof m),
		     K_E_SERIALIZATION);
	CHECK_STATUS(
		validate("{\"AutomaticallyAfterDays\":7,\"ScheduleExpression\":\"rate(8 days)\"}",
			 m, sizeof m),
		K_E_SM_INVALID_PARAMETER);
	CHECK_STR(m,
		  "You cannot specify both rotation frequency and schedule expression together.");
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":1,\"ScheduleExpression\":\"cron(0 0 * * "
			      "? *)\"}",
			      m, sizeof m),
		     K_E_SM_INVALID_PARAMETER);

	/* Duration: "[0-9]+h", 1 to 24 hours. */
	static const char *const bad_dur[] = {"0h", "25h", "3m", "hh", "-1h", "3hh"};
	for (size_t i = 0; i < sizeof bad_dur / sizeof bad_dur[0]; i++) {
		char text[128];
		snprintf(text, sizeof text, "{\"AutomaticallyAfterDays\":5,\"Duration\":\"%s\"}",
			 bad_dur[i]);
		tl_current = bad_dur[i];
		CHECK_STATUS(validate(text, m, sizeof m), K_E_SM_INVALID_PARAMETER);
		CHECK_STR(m, "Duration must be between 1h and 24h.");
	}
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":5,\"Duration\":\"3\"}", m, sizeof m),
		     K_E_VALIDATION);
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":5,\"Duration\":\"100h\"}", m, sizeof m),
		     K_E_VALIDATION);

	/* Rates under four hours, and expressions that are not schedules. */
	CHECK_STATUS(validate("{\"ScheduleExpression\":\"rate(3 hours)\"}", m, sizeof m),
		     K_E_SM_INVALID_PARAMETER);
	CHECK_STR(m, "The rotation schedule rate must be at least 4 hours.");
	CHECK_STATUS(validate("{\"ScheduleExpression\":\"rate(1 hour)\"}", m, sizeof m),
		     K_E_SM_INVALID_PARAMETER);
	static const char *const bad_se[] = {
		"rate(2 weeks)",   "weekly",	   "cron(0 0 * * ? *", "cron(61 0 * * ? *)",
		"cron(0 0 * * ?)", "rate(0 days)", "cron()",	       "Cron(0 0 * * ? *)"};
	for (size_t i = 0; i < sizeof bad_se / sizeof bad_se[0]; i++) {
		char text[128];
		snprintf(text, sizeof text, "{\"ScheduleExpression\":\"%s\"}", bad_se[i]);
		tl_current = bad_se[i];
		CHECK_STATUS(validate(text, m, sizeof m), K_E_SM_INVALID_PARAMETER);
		CHECK(strncmp(m, "Invalid ScheduleExpression ", 27) == 0);
	}
	CHECK_STATUS(validate("{\"ScheduleExpression\":\"\"}", m, sizeof m), K_E_VALIDATION);
}

int main(void)
{
	RUN(test_rate);
	RUN(test_days);
	RUN(test_cron);
	RUN(test_validate);
	return tl_summary();
}
