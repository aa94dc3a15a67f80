/*
 * sigv4_date.c — the request date: X-Amz-Date (ISO 8601 basic format) or
 * Date (IMF-fixdate), to and from epoch seconds, without the C library's
 * time zone and locale machinery. Only 1970-01-01 to 9999-12-31 exist.
 */
#include "auth/internal.h"

#include <string.h>

#include "core/banned.h"

/* Dates a four-digit year can express: 1970-01-01 .. 9999-12-31T23:59:59Z. */
#define EPOCH_MAX INT64_C(253402300799)

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yoe + era * 400 + (*m <= 2);
}

static int64_t days_in_month(int64_t y, int64_t m)
{
	static const int8_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

static bool read_digits(const uint8_t *p, size_t n, int64_t *out)
{
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return true;
}

/* Epoch seconds of a validated civil time; false if any field is out of range. */
static bool civil_to_epoch(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi, int64_t s,
			   int64_t *out)
{
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	    h > 23 || mi > 59 || s > 59)
		return false;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
	return true;
}

/* Writes t as YYYYMMDDTHHMMSSZ; times outside 1970..9999 are clamped. */
void sigv4_format_amz_date(int64_t t, char out[SIGV4_AMZ_DATE_LEN + 1])
{
	if (t < 0)
		t = 0;
	if (t > EPOCH_MAX)
		t = EPOCH_MAX;
	int64_t y, m, d;
	int64_t secs = t % 86400;
	civil_from_days(t / 86400, &y, &m, &d);
	int64_t fields[6] = {y, m, d, secs / 3600, secs / 60 % 60, secs % 60};
	const int widths[6] = {4, 2, 2, 2, 2, 2};
	size_t pos = 0;
	for (size_t f = 0; f < 6; f++) {
		int64_t v = fields[f];
		for (int i = widths[f] - 1; i >= 0; i--) {
			out[pos + (size_t)i] = (char)('0' + v % 10);
			v /= 10;
		}
		pos += (size_t)widths[f];
		if (f == 2)
			out[pos++] = 'T';
	}
	out[pos++] = 'Z';
	out[pos] = '\0';
}

/* X-Amz-Date: the ISO 8601 basic format, YYYYMMDD'T'HHMMSS'Z', nothing else. */
bool sigv4_parse_amz_date(struct kslice s, int64_t *t)
{
	int64_t y, mo, d, h, mi, sec;
	if (s.len != SIGV4_AMZ_DATE_LEN || s.ptr[8] != 'T' || s.ptr[15] != 'Z')
		return false;
	if (!read_digits(s.ptr, 4, &y) || !read_digits(s.ptr + 4, 2, &mo) ||
	    !read_digits(s.ptr + 6, 2, &d) || !read_digits(s.ptr + 9, 2, &h) ||
	    !read_digits(s.ptr + 11, 2, &mi) || !read_digits(s.ptr + 13, 2, &sec))
		return false;
	return civil_to_epoch(y, mo, d, h, mi, sec, t);
}

/* Date: the RFC 1123 form of RFC 9110's IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT". */
bool sigv4_parse_http_date(struct kslice s, int64_t *t)
{
	static const char *const wdays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int64_t y, mo = 0, d, h, mi, sec;
	bool wday_ok = false;

	if (s.len != 29 || s.ptr[3] != ',' || s.ptr[4] != ' ' || s.ptr[7] != ' ' ||
	    s.ptr[11] != ' ' || s.ptr[16] != ' ' || s.ptr[19] != ':' || s.ptr[22] != ':' ||
	    memcmp(s.ptr + 25, " GMT", 4) != 0)
		return false;
	for (size_t i = 0; i < 7; i++)
		wday_ok = wday_ok || memcmp(s.ptr, wdays[i], 3) == 0;
	for (size_t i = 0; i < 12; i++) {
		if (memcmp(s.ptr + 8, months[i], 3) == 0)
			mo = (int64_t)i + 1;
	}
	if (!wday_ok || mo == 0)
		return false;
	if (!read_digits(s.ptr + 5, 2, &d) || !read_digits(s.ptr + 12, 4, &y) ||
	    !read_digits(s.ptr + 17, 2, &h) || !read_digits(s.ptr + 20, 2, &mi) ||
	    !read_digits(s.ptr + 23, 2, &sec))
		return false;
	return civil_to_epoch(y, mo, d, h, mi, sec, t);
}
