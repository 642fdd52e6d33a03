#include "timeutil.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define TIME_INPUT_MAX 64

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so no timegm()/TZ state is involved. */
static int64_t time_days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int time_is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int time_days_in_month(int y, int m)
{
	static const int dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && time_is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly n digits at s; -1 if any is not a digit. */
static int time_digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int time_parse_rfc3339(const char *s, int allow_date, int64_t *unix_ms, pos_err *e)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off_min = 0;
	size_t len;
	const char *p;

	if (!s || !unix_ms)
		return err_set(e, POS_EINVAL, "time: missing value");
	len = strnlen(s, TIME_INPUT_MAX + 1);
	if (len > TIME_INPUT_MAX)
		return err_set(e, POS_EINVAL, "time: longer than %d characters", TIME_INPUT_MAX);
	if (len < 10 || s[4] != '-' || s[7] != '-')
		return err_set(e, POS_EINVAL, "time: expected YYYY-MM-DD at the start");
	y = time_digits(s, 4);
	mo = time_digits(s + 5, 2);
	d = time_digits(s + 8, 2);
	if (y < 0 || mo < 0 || d < 0)
		return err_set(e, POS_EINVAL, "time: expected YYYY-MM-DD at the start");
	if (y < 2000 || y > 2199)
		return err_set(e, POS_EINVAL, "time: year %d outside 2000..2199", y);
	if (mo < 1 || mo > 12)
		return err_set(e, POS_EINVAL, "time: month %d out of range", mo);
	if (d < 1 || d > time_days_in_month(y, mo))
		return err_set(e, POS_EINVAL, "time: day %d does not exist in %04d-%02d", d, y, mo);
	p = s + 10;
	if (*p == '\0') {
		if (!allow_date)
			return err_set(e, POS_EINVAL, "time: a date-time with a timezone is required");
		goto done;
	}
	if (*p != 'T' && *p != 't')
		return err_set(e, POS_EINVAL, "time: expected 'T' after the date");
	p++;
	if (strnlen(p, 8) < 8 || p[2] != ':' || p[5] != ':')
		return err_set(e, POS_EINVAL, "time: expected HH:MM:SS after 'T'");
	h = time_digits(p, 2);
	mi = time_digits(p + 3, 2);
	sec = time_digits(p + 6, 2);
	if (h < 0 || mi < 0 || sec < 0)
		return err_set(e, POS_EINVAL, "time: expected HH:MM:SS after 'T'");
	/* 60 is a leap second: Unix time cannot name it, so it is refused. */
	if (h > 23 || mi > 59 || sec > 59)
		return err_set(e, POS_EINVAL, "time: time of day out of range");
	p += 8;
	if (*p == '.') {
		int nd = 0, scale = 100;

		p++;
		while (p[nd] >= '0' && p[nd] <= '9') {
			if (nd < 3) {
				ms += (p[nd] - '0') * scale;
				scale /= 10;
			}
			nd++;
			if (nd > 9)
				return err_set(e, POS_EINVAL, "time: more than 9 fraction digits");
		}
		if (nd == 0)
			return err_set(e, POS_EINVAL, "time: no digits after '.'");
		p += nd;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;

		if (strnlen(p, 6) < 6 || p[3] != ':')
			return err_set(e, POS_EINVAL, "time: timezone offset must be +HH:MM or -HH:MM");
		oh = time_digits(p + 1, 2);
		om = time_digits(p + 4, 2);
		if (oh < 0 || om < 0 || oh > 23 || om > 59)
			return err_set(e, POS_EINVAL, "time: timezone offset out of range");
		off_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
		p += 6;
	} else if (*p == '\0') {
		return err_set(e, POS_EINVAL, "time: timezone missing (add Z or +HH:MM)");
	} else {
		return err_set(e, POS_EINVAL, "time: unexpected character after the time");
	}
	if (*p != '\0')
		return err_set(e, POS_EINVAL, "time: trailing characters");
done:;
	int64_t secs = time_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	*unix_ms = (secs - (int64_t)off_min * 60) * 1000 + ms;
	return 0;
}

void time_format_rfc3339(int64_t unix_ms, char out[TIME_RFC3339_LEN])
{
	int64_t secs = unix_ms / 1000, ms = unix_ms % 1000;
	struct tm tm;
	time_t t;

	if (ms < 0) {
		ms += 1000;
		secs -= 1;
	}
	t = (time_t)secs;
	if (!gmtime_r(&t, &tm)) {
		snprintf(out, TIME_RFC3339_LEN, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(out, TIME_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100,
		 tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, (int)ms);
}

int64_t time_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
