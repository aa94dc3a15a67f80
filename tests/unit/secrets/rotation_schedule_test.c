/*
 * rotation_schedule_test.c — RotationRules without a server: rate() and
 * cron() expressions (accepted, refused, next date) and the validation
 * of RotationRules as RotateSecret sees it.
 */
#include <stdio.h>
#include <string.h>

#include "req/req.h"
#include "secrets/internal.h"
#include "secrets/rotation.h"
#include "testlib.h"
#include "core/banned.h"

/* 2026-01-01T00:00:00Z, a Thursday. */
#define JAN1 1767225600LL

static void test_rate(void)
{
	CHECK_EQ_INT(sm_rate_seconds("rate(1 day)"), 86400);
	CHECK_EQ_INT(sm_rate_seconds("rate(2 days)"), 2 * 86400);
	CHECK_EQ_INT(sm_rate_seconds("rate(1000 days)"), 1000LL * 86400);
	CHECK_EQ_INT(sm_rate_seconds("rate(1 hour)"), 3600);
	CHECK_EQ_INT(sm_rate_seconds("rate(4 hours)"), 4 * 3600);
	CHECK_EQ_INT(sm_rate_seconds("rate(24000 hours)"), 24000LL * 3600);
	/* Refused: out of range, wrong unit or number, malformed. */
	CHECK_EQ_INT(sm_rate_seconds("rate(1001 days)"), 0);
	CHECK_EQ_INT(sm_rate_seconds("rate(24001 hours)"), 0);
	CHECK_EQ_INT(sm_rate_seconds("rate(0 days)"), 0);
	CHECK_EQ_INT(sm_rate_seconds("rate(-1 days)"), 0);
	CHECK_EQ_INT(sm_rate_seconds("rate(2 day)"), 0);
	CHECK_EQ_INT(sm_rate_seconds("rate(2 hour)"), 0);
	CHECK_EQ_INT(sm_rate_seconds("rate(5 minutes)"), 0);
	CHECK_EQ_INT(sm_rate_seconds("rate(5days)"), 0);
	CHECK_EQ_INT(sm_rate_seconds("rate(5 days"), 0);
	CHECK_EQ_INT(sm_rate_seconds("rate(5 days) "), 0);
	CHECK_EQ_INT(sm_rate_seconds("rate(days)"), 0);
	CHECK_EQ_INT(sm_rate_seconds("Rate(5 days)"), 0);
	CHECK_EQ_INT(sm_rate_seconds("cron(0 0 * * ? *)"), 0);
	CHECK_EQ_INT(sm_rate_seconds(""), 0);
}

static void test_cron_valid(void)
{
	CHECK(sm_cron_valid("cron(0 16 1,15 * ? *)"));
	CHECK(sm_cron_valid("cron(0 8 ? * MON-FRI *)"));
	CHECK(sm_cron_valid("cron(0/15 * * * ? *)"));
	CHECK(sm_cron_valid("cron(0 0 1 JAN-DEC/3 ? 2026-2030)"));
	CHECK(sm_cron_valid("cron(59 23 31 12 7 2199)"));
	CHECK(sm_cron_valid("cron(0 10 ? * sun *)"));
	/* Out of range. */
	CHECK(!sm_cron_valid("cron(60 0 * * ? *)"));
	CHECK(!sm_cron_valid("cron(0 24 * * ? *)"));
	CHECK(!sm_cron_valid("cron(0 0 0 * ? *)"));
	CHECK(!sm_cron_valid("cron(0 0 32 * ? *)"));
	CHECK(!sm_cron_valid("cron(0 0 * 13 ? *)"));
	CHECK(!sm_cron_valid("cron(0 0 * * 8 *)"));
	CHECK(!sm_cron_valid("cron(0 0 * * ? 2200)"));
	/* Malformed fields. */
	CHECK(!sm_cron_valid("cron(0 0 5-1 * ? *)"));
	CHECK(!sm_cron_valid("cron(0/0 * * * ? *)"));
	CHECK(!sm_cron_valid("cron(0 0 * FOO ? *)"));
	CHECK(!sm_cron_valid("cron(0 0 * * MON-XYZ *)"));
	CHECK(!sm_cron_valid("cron(0 0 L * ? *)"));
	CHECK(!sm_cron_valid("cron(0,,5 0 * * ? *)"));
	CHECK(!sm_cron_valid("cron(0 0 - * ? *)"));
	CHECK(!sm_cron_valid("cron(a 0 * * ? *)"));
	/* Wrong shape. */
	CHECK(!sm_cron_valid("cron(0 0 * * ?)"));
	CHECK(!sm_cron_valid("cron(0 0 * * ? * *)"));
	CHECK(!sm_cron_valid("cron(0 0 * * ? *"));
	CHECK(!sm_cron_valid("cron(0 0 * * ? *)x"));
	CHECK(!sm_cron_valid("cron()"));
	CHECK(!sm_cron_valid("cron("));
	CHECK(!sm_cron_valid("0 0 * * ? *"));
	CHECK(!sm_cron_valid("rate(1 day)"));
	CHECK(!sm_cron_valid(""));
}

static void test_cron_next(void)
{
	/* The 1st and the 15th at 16:00. */
	CHECK_EQ_INT(sm_cron_next("cron(0 16 1,15 * ? *)", JAN1), 1767283200);
	/* Strictly after `from`. */
	CHECK_EQ_INT(sm_cron_next("cron(0 16 1,15 * ? *)", 1767283200), 1768492800);
	/* Mondays at 08:00: 2026-01-05. */
	CHECK_EQ_INT(sm_cron_next("cron(0 8 ? * MON *)", JAN1), 1767600000);
	/* Weekday numbers count from SUN=1: 6 is Friday, 2026-01-02. */
	CHECK_EQ_INT(sm_cron_next("cron(0 9 ? * 6 *)", JAN1), 1767344400);
	/* Every quarter hour. */
	CHECK_EQ_INT(sm_cron_next("cron(0/15 * * * ? *)", JAN1), JAN1 + 900);
	CHECK_EQ_INT(sm_cron_next("cron(0/15 * * * ? *)", JAN1 + 1), JAN1 + 900);
	/* A year named. */
	CHECK_EQ_INT(sm_cron_next("cron(30 2 * * ? 2027)", JAN1), 1798770600);
	/* The next 29 February. */
	CHECK_EQ_INT(sm_cron_next("cron(0 0 29 2 ? *)", JAN1), 1835395200);
	/* None: a year gone, a day that never comes, an invalid expression. */
	CHECK_EQ_INT(sm_cron_next("cron(0 0 1 1 ? 2025)", JAN1), 0);
	CHECK_EQ_INT(sm_cron_next("cron(0 0 31 2 ? *)", JAN1), 0);
	CHECK_EQ_INT(sm_cron_next("cron(0 0 * * ?)", JAN1), 0);
}

static void test_next_rotation(void)
{
	json_t *r = json_pack("{s:i}", "AutomaticallyAfterDays", 30);
	CHECK_EQ_INT(sm_next_rotation(r, JAN1), JAN1 + 30 * 86400LL);
	json_decref(r);
	r = json_pack("{s:s}", "ScheduleExpression", "rate(10 hours)");
	CHECK_EQ_INT(sm_next_rotation(r, JAN1), JAN1 + 36000);
	json_decref(r);
	r = json_pack("{s:s}", "ScheduleExpression", "cron(0 16 1,15 * ? *)");
	CHECK_EQ_INT(sm_next_rotation(r, JAN1), 1767283200);
	json_decref(r);
	r = json_pack("{s:s}", "ScheduleExpression", "every day");
	CHECK_EQ_INT(sm_next_rotation(r, JAN1), 0);
	json_decref(r);
	r = json_object();
	CHECK_EQ_INT(sm_next_rotation(r, JAN1), 0);
	json_decref(r);
}

/* sm_validate_rules on the JSON text `rules`; the message goes to msg. */
static K_MUST_CHECK k_status validate(const char *rules, char *msg, size_t n)
{
	static struct api_operation op = {.name = "RotateSecret",
					  .action = "secretsmanager:RotateSecret"};
	struct api_ctx c;
	memset(&c, 0, sizeof c);
	c.op = &op;
	kbuf_init(&c.err_msg, 2048);
	json_t *j = json_loads(rules, 0, NULL);
	k_status rc = sm_validate_rules(&c, j);
	snprintf(msg, n, "%s", c.err_msg.len ? kbuf_cstr(&c.err_msg) : "");
	json_decref(j);
	kbuf_release(&c.err_msg);
	return rc;
}

static void test_validate_rules(void)
{
	char m[512];
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":30}", m, sizeof m), K_OK);
	CHECK_STATUS(validate("{\"ScheduleExpression\":\"rate(4 hours)\",\"Duration\":\"3h\"}", m,
			      sizeof m),
		     K_OK);
	CHECK_STATUS(validate("{\"ScheduleExpression\":\"cron(0 8 ? * MON *)\"}", m, sizeof m),
		     K_OK);
	/* The same schedule written twice is accepted. */
	CHECK_STATUS(
		validate("{\"AutomaticallyAfterDays\":7,\"ScheduleExpression\":\"rate(7 days)\"}",
			 m, sizeof m),
		K_OK);

	CHECK_STATUS(
		validate("{\"AutomaticallyAfterDays\":7,\"ScheduleExpression\":\"rate(8 days)\"}",
			 m, sizeof m),
		K_E_SM_INVALID_PARAMETER);
	CHECK(strstr(m, "both rotation frequency and schedule expression") != NULL);
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":1,\"ScheduleExpression\":\"cron(0 8 * * "
			      "? *)\"}",
			      m, sizeof m),
		     K_E_SM_INVALID_PARAMETER);
	CHECK_STATUS(validate("{\"ScheduleExpression\":\"rate(3 hours)\"}", m, sizeof m),
		     K_E_SM_INVALID_PARAMETER);
	CHECK(strstr(m, "at least 4 hours") != NULL);
	CHECK_STATUS(validate("{\"ScheduleExpression\":\"cron(0 8 * *)\"}", m, sizeof m),
		     K_E_SM_INVALID_PARAMETER);
	CHECK(strstr(m, "Invalid ScheduleExpression") != NULL);
	CHECK_STATUS(validate("{\"ScheduleExpression\":\"rate(2 weeks)\"}", m, sizeof m),
		     K_E_SM_INVALID_PARAMETER);
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":30,\"Duration\":\"25h\"}", m, sizeof m),
		     K_E_SM_INVALID_PARAMETER);
	CHECK(strstr(m, "Duration") != NULL);
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":30,\"Duration\":\"0h\"}", m, sizeof m),
		     K_E_SM_INVALID_PARAMETER);
	CHECK_STATUS(validate("{\"AutomaticallyAfterDays\":30,\"Duration\":\"3m\"}", m, sizeof m),
		     K_E_SM_INVALID_PARAMETER);
	CHECK_STATUS(validate("{\"Duration\":\"3h\"}", m, sizeof m), K_E_SM_INVALID_PARAMETER);
	CHECK_STATUS(validate("{}", m, sizeof m), K_E_SM_INVALID_PARAMETER);
	CHECK(k_failed(validate("{\"AutomaticallyAfterDays\":1001}", m, sizeof m)));
	CHECK(k_failed(validate("{\"AutomaticallyAfterDays\":0}", m, sizeof m)));
	CHECK(k_failed(validate("[]", m, sizeof m)));
}

int main(void)
{
	RUN(test_rate);
	RUN(test_cron_valid);
	RUN(test_cron_next);
	RUN(test_next_rotation);
	RUN(test_validate_rules);
	return tl_summary();
}
