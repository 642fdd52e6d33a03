/* timeutil: strict RFC 3339 in, UTC milliseconds out, and back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "timeutil.h"

static int64_t parse_ok(const char *s, int allow_date)
{
	pos_err e = { 0 };
	int64_t ms = -1;

	if (time_parse_rfc3339(s, allow_date, &ms, &e) != 0)
		fail_msg("'%s' refused: %s", s, e.msg);
	return ms;
}

static void utc_and_offsets_give_the_same_instant(void **st)
{
	(void)st;
	/* 2026-11-23T12:00:00Z = 1795435200 s */
	assert_int_equal(parse_ok("2026-11-23T12:00:00Z", 0), INT64_C(1795435200000));
	assert_int_equal(parse_ok("2026-11-23T13:00:00+01:00", 0), INT64_C(1795435200000));
	assert_int_equal(parse_ok("2026-11-23T06:30:00-05:30", 0), INT64_C(1795435200000));
	assert_int_equal(parse_ok("2026-11-23t12:00:00z", 0), INT64_C(1795435200000));
	assert_int_equal(parse_ok("2000-01-01T00:00:00Z", 0), INT64_C(946684800000));
}

static void fractions_up_to_nine_digits_keep_milliseconds(void **st)
{
	(void)st;
	assert_int_equal(parse_ok("2026-11-23T12:00:00.1Z", 0), INT64_C(1795435200100));
	assert_int_equal(parse_ok("2026-11-23T12:00:00.123Z", 0), INT64_C(1795435200123));
	assert_int_equal(parse_ok("2026-11-23T12:00:00.123456789+00:00", 0),
			 INT64_C(1795435200123));
}

static void plain_date_only_when_allowed(void **st)
{
	pos_err e = { 0 };
	int64_t ms;

	(void)st;
	assert_int_equal(parse_ok("2026-11-23", 1), INT64_C(1795392000000));
	assert_int_equal(time_parse_rfc3339("2026-11-23", 0, &ms, &e), POS_EINVAL);
}

static void leap_years_follow_the_gregorian_rule(void **st)
{
	pos_err e = { 0 };
	int64_t ms;

	(void)st;
	parse_ok("2024-02-29T00:00:00Z", 0);
	parse_ok("2000-02-29T00:00:00Z", 0);
	assert_int_equal(time_parse_rfc3339("2100-02-29T00:00:00Z", 0, &ms, &e), POS_EINVAL);
	assert_int_equal(time_parse_rfc3339("2025-02-29T00:00:00Z", 0, &ms, &e), POS_EINVAL);
}

static void malformed_or_out_of_range_times_are_refused(void **st)
{
	static const char *const bad[] = {
		"2026-02-30T00:00:00Z",     /* no Feb 30 */
		"2026-04-31T00:00:00Z",     /* April has 30 */
		"2026-13-01T00:00:00Z",
		"2026-00-01T00:00:00Z",
		"2026-11-00T00:00:00Z",
		"2026-11-23T24:00:00Z",
		"2026-11-23T12:60:00Z",
		"2026-11-23T12:00:60Z",     /* leap second: not representable */
		"2026-11-23T12:00:00",      /* timezone required */
		"2026-11-23 12:00:00Z",
		"2026-11-23T12:00Z",
		"2026-11-23T12:00:00.Z",
		"2026-11-23T12:00:00.1234567890Z",
		"2026-11-23T12:00:00+0100",
		"2026-11-23T12:00:00+24:00",
		"2026-11-23T12:00:00+01:60",
		"2026-11-23T12:00:00Zjunk",
		"1999-12-31T23:59:59Z",
		"2200-01-01T00:00:00Z",
		"26-11-23T12:00:00Z",
		"2026-1-23T12:00:00Z",
		"+2026-11-23T12:00:00Z",
		"",
		"2026-11-23T1a:00:00Z",
	};
	(void)st;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pos_err e = { 0 };
		int64_t ms = 42;
		if (time_parse_rfc3339(bad[i], 1, &ms, &e) != POS_EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_int_equal(ms, 42);
		assert_true(e.msg[0] != '\0');
	}
}

static void format_writes_utc_milliseconds_and_round_trips(void **st)
{
	char out[TIME_RFC3339_LEN];

	(void)st;
	time_format_rfc3339(INT64_C(1795435200123), out);
	assert_string_equal(out, "2026-11-23T12:00:00.123Z");
	time_format_rfc3339(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
	time_format_rfc3339(-1, out);
	assert_string_equal(out, "1969-12-31T23:59:59.999Z");
	time_format_rfc3339(INT64_C(1709164800000), out);
	assert_int_equal(parse_ok(out, 0), INT64_C(1709164800000));
}

static void clocks_are_plausible(void **st)
{
	(void)st;
	/* After 2020 and the monotonic clock never goes backwards. */
	assert_true(time_now_ms() > INT64_C(1577836800000));
	int64_t a = time_mono_us(), b = time_mono_us();
	assert_true(b >= a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(utc_and_offsets_give_the_same_instant),
		cmocka_unit_test(fractions_up_to_nine_digits_keep_milliseconds),
		cmocka_unit_test(plain_date_only_when_allowed),
		cmocka_unit_test(leap_years_follow_the_gregorian_rule),
		cmocka_unit_test(malformed_or_out_of_range_times_are_refused),
		cmocka_unit_test(format_writes_utc_milliseconds_and_round_trips),
		cmocka_unit_test(clocks_are_plausible),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
