/*
 * rotation_schedule.c — when a secret rotates next: RotationRules and
 * their schedule expressions, rate() and cron().
 *
 * "ScheduleExpression: A cron() or rate() expression that defines the
 * schedule for rotating your secret. Secrets Manager rotation schedules
 * use UTC time zone."
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotationRulesType.html
 * https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_schedule.html
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "secrets/internal.h"
#include "secrets/rotation.h"
#include "core/banned.h"

/* A cron field as a bit set over [lo, hi]. */
struct cron_field {
	uint64_t bits[4]; /* up to 256 values (years are offset by 1970) */
};

static void cron_set(struct cron_field *f, int v)
{
	f->bits[v / 64] |= 1ull << (v % 64);
}

static bool cron_has(const struct cron_field *f, int v)
{
	return (f->bits[v / 64] >> (v % 64)) & 1;
}

static int cron_name(const char *s, size_t n, bool months)
{
	static const char *const mon[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
					  "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
	static const char *const dow[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};
	if (n != 3)
		return -1;
	for (int i = 0; i < (months ? 12 : 7); i++) {
		if (strncasecmp(s, months ? mon[i] : dow[i], 3) == 0)
			return i + 1;
	}
	return -1;
}

static int cron_value(const char *s, size_t n, int which)
{
	if (n == 0)
		return -1;
	if (which == 3 || which == 4) {
		int v = cron_name(s, n, which == 3);
		if (v > 0)
			return v;
	}
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > 100000)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/*
 * Parses one field of cron(minutes hours day-of-month month day-of-week
 * year): the wildcards * and ?, N, N-M, steps (N/K, N-M/K, or K after a
 * wildcard) and lists of these, with month and weekday names. Years are stored minus 1970.
 */
static bool cron_parse_field(const char *s, size_t len, int which, int lo, int hi,
			     struct cron_field *f)
{
	memset(f, 0, sizeof *f);
	size_t start = 0;
	while (start <= len) {
		size_t end = start;
		while (end < len && s[end] != ',')
			end++;
		const char *p = s + start;
		size_t n = end - start;
		int step = 1, a = lo, b = hi;
		const char *slash = memchr(p, '/', n);
		size_t rn = slash ? (size_t)(slash - p) : n;
		if (slash != NULL) {
			step = cron_value(slash + 1, n - rn - 1, -1);
			if (step <= 0)
				return false;
		}
		if (!(rn == 1 && (p[0] == '*' || p[0] == '?'))) {
			const char *dash = memchr(p, '-', rn);
			if (dash != NULL) {
				a = cron_value(p, (size_t)(dash - p), which);
				b = cron_value(dash + 1, rn - (size_t)(dash - p) - 1, which);
			} else {
				a = cron_value(p, rn, which);
				b = slash ? hi : a;
			}
		}
		if (which == 5) {
			a -= a >= 1970 ? 1970 : 0;
			b -= b >= 1970 ? 1970 : 0;
		}
		if (a < lo || b > hi || a > b)
			return false;
		for (int v = a; v <= b; v += step)
			cron_set(f, v);
		start = end + 1;
	}
	return true;
}

struct cron {
	struct cron_field f[6];
	bool dom_any, dow_any;
};

static bool cron_parse(const char *expr, struct cron *cr)
{
	static const int lo[6] = {0, 0, 1, 1, 1, 0}, hi[6] = {59, 23, 31, 12, 7, 229};
	const char *p = expr;
	for (int i = 0; i < 6; i++) {
		while (*p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ' ')
			e++;
		if (e == p)
			return false;
		if (!cron_parse_field(p, (size_t)(e - p), i, lo[i], hi[i], &cr->f[i]))
			return false;
		if (i == 2)
			cr->dom_any = (e - p == 1 && (*p == '*' || *p == '?'));
		if (i == 4)
			cr->dow_any = (e - p == 1 && (*p == '*' || *p == '?'));
		p = e;
	}
	while (*p == ' ')
		p++;
	return *p == 0;
}

/* The first minute after `from` that the cron expression names (UTC); 0 if none in 5 years. */
static int64_t cron_next(const struct cron *cr, int64_t from)
{
	int64_t t = from - (from % 60) + 60;
	int64_t limit = from + 5 * 366 * (int64_t)SM_DAY;
	while (t < limit) {
		time_t tt = (time_t)t;
		struct tm tm;
		gmtime_r(&tt, &tm);
		int year = tm.tm_year + 1900 - 1970;
		bool dom = cron_has(&cr->f[2], tm.tm_mday),
		     dow = cron_has(&cr->f[4], tm.tm_wday + 1);
		bool day_ok = cr->dom_any ? dow : cr->dow_any ? dom : (dom || dow);
		if (year < 0 || year > 229 || !cron_has(&cr->f[5], year) ||
		    !cron_has(&cr->f[3], tm.tm_mon + 1) || !day_ok) {
			t += (int64_t)(SM_DAY - (tm.tm_hour * 3600 + tm.tm_min * 60));
			continue;
		}
		if (!cron_has(&cr->f[1], tm.tm_hour)) {
			t += 3600 - tm.tm_min * 60;
			continue;
		}
		if (!cron_has(&cr->f[0], tm.tm_min)) {
			t += 60;
			continue;
		}
		return t;
	}
	return 0;
}

/* "rate(N days)" / "rate(N hours)" in seconds; 0 if it is not one. */
int64_t sm_rate_seconds(const char *se)
{
	if (strncmp(se, "rate(", 5) != 0)
		return 0;
	char *end = NULL;
	long n = strtol(se + 5, &end, 10);
	if (end == NULL || *end != ' ' || n <= 0)
		return 0;
	end++;
	if (strcmp(end, "days)") == 0 || (n == 1 && strcmp(end, "day)") == 0))
		return n <= 1000 ? n * SM_DAY : 0;
	if (strcmp(end, "hours)") == 0 || (n == 1 && strcmp(end, "hour)") == 0))
		return n <= 24000 ? n * 3600 : 0;
	return 0;
}

/*
 * The six fields of "cron(...)": the text between the parentheses, which
 * must close the expression.
 */
static bool cron_parse_expr(const char *se, struct cron *cr)
{
	if (strncmp(se, "cron(", 5) != 0)
		return false;
	char body[260];
	size_t n = strlen(se + 5);
	if (n == 0 || n >= sizeof body || se[5 + n - 1] != ')')
		return false;
	memcpy(body, se + 5, n - 1);
	body[n - 1] = 0;
	return cron_parse(body, cr);
}

bool sm_cron_valid(const char *se)
{
	struct cron cr;
	return cron_parse_expr(se, &cr);
}

int64_t sm_cron_next(const char *se, int64_t from)
{
	struct cron cr;
	return cron_parse_expr(se, &cr) ? cron_next(&cr, from) : 0;
}

int64_t sm_next_rotation(json_t *rules, int64_t from)
{
	const char *se = json_string_value(json_object_get(rules, "ScheduleExpression"));
	if (se != NULL) {
		int64_t r = sm_rate_seconds(se);
		return r > 0 ? from + r : sm_cron_next(se, from);
	}
	json_int_t days = json_integer_value(json_object_get(rules, "AutomaticallyAfterDays"));
	return days > 0 ? from + days * SM_DAY : 0;
}

/*
 * RotationRules (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotationRulesType.html):
 * AutomaticallyAfterDays 1..1000; Duration "[0-9]+h", 1 to 24 hours;
 * ScheduleExpression "rate()" in hours (at least 4) or days, or "cron()".
 * "In RotateSecret, you can set the rotation schedule in RotationRules
 * with AutomaticallyAfterDays or ScheduleExpression, but not both" — kinko
 * accepts both when they agree (rate(N days) with N days), since that is
 * the same schedule written twice.
 */
k_status sm_validate_rules(struct api_ctx *c, json_t *rules)
{
	if (!json_is_object(rules))
		return api_fail(c, K_E_SERIALIZATION,
				"Unexpected value type for member 'RotationRules'");
	int64_t days = 0;
	bool has_days;
	const char *dur, *se;
	GUARD(api_int(c, rules, "AutomaticallyAfterDays", false, 1, 1000, &has_days, &days));
	GUARD(api_string(c, rules, "Duration", false, 2, 3, &dur));
	GUARD(api_string(c, rules, "ScheduleExpression", false, 1, 256, &se));
	if (dur != NULL) {
		char *end = NULL;
		long h = strtol(dur, &end, 10);
		if (end == dur || end == NULL || strcmp(end, "h") != 0 || h < 1 || h > 24)
			return api_fail(c, K_E_SM_INVALID_PARAMETER,
					"Duration must be between 1h and 24h.");
	}
	if (se != NULL) {
		int64_t r = sm_rate_seconds(se);
		if (r > 0 && r < 4 * 3600)
			return api_fail(c, K_E_SM_INVALID_PARAMETER,
					"The rotation schedule rate must be at least 4 hours.");
		bool ok = r > 0 || sm_cron_valid(se);
		if (!ok)
			return api_fail(
				c, K_E_SM_INVALID_PARAMETER,
				"Invalid ScheduleExpression %s: use rate(N days), rate(N hours) or "
				"cron(minutes hours day-of-month month day-of-week year).",
				se);
		if (has_days && (r != days * SM_DAY))
			return api_fail(c, K_E_SM_INVALID_PARAMETER,
					"You cannot specify both rotation frequency and schedule "
					"expression together.");
	}
	if (!has_days && se == NULL)
		return api_fail(
			c, K_E_SM_INVALID_PARAMETER,
			"RotationRules needs AutomaticallyAfterDays or ScheduleExpression.");
	return K_OK;
}
