/* msr: ISO 7813 track 1 (format B) and track 2 from a reader's ASCII line;
 * failed and absent tracks; the line wiped whatever happens; messages that
 * name track states and nothing of the card. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "msr.h"

#define T1_4242 "%B4242424242424242^DOE/JOHN^28121010000000000000?"
#define T2_4242 ";4242424242424242=28121010000000000?"
/* MagTek's demo card (decrypted MagneSafe V5 example): fails Luhn. */
#define T1_MAGTEK "%B5452300551227189^HOGAN/PAUL      ^08043210000000725000000?"
#define T2_MAGTEK ";5452300551227189=080432100000007250?"
#define T3_MAGTEK "+5163499080020445=000000000000?"

static char buf[MSR_MAX_LINE + 64];

static void assert_all_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			fail_msg("byte %zu of the swipe line survived the wipe", i);
}

/* Messages may say "track 1" but hold no run of two digits, so no PAN,
 * expiry or service code fragment. */
static void assert_no_data_in(const char *msg)
{
	for (size_t i = 0; msg[i] && msg[i + 1]; i++)
		if (msg[i] >= '0' && msg[i] <= '9' && msg[i + 1] >= '0' && msg[i + 1] <= '9')
			fail_msg("message carries digits: %s", msg);
}

/* Copies s into the writable buffer, parses, and proves the wipe. */
static int parse(const char *s, struct msr_result *r, pos_err *e)
{
	size_t n = strlen(s);
	int rc;

	assert_true(n <= sizeof buf);
	memcpy(buf, s, n);
	memset(e, 0, sizeof *e);
	rc = msr_parse(buf, n, r, e);
	assert_all_zero(buf, n);
	if (rc != 0) {
		assert_int_equal(e->code, rc);
		assert_true(strlen(e->msg) > 0);
		assert_no_data_in(e->msg);
		assert_string_equal(r->pan, "");
		assert_string_equal(r->expiry, "");
		assert_string_equal(r->service, "");
		assert_false(r->pan_luhn_ok);
	}
	return rc;
}

static struct msr_result parse_ok(const char *s)
{
	struct msr_result r;
	pos_err e;

	if (parse(s, &r, &e) != 0)
		fail_msg("swipe refused: %s", e.msg);
	assert_true(r.pan_luhn_ok);
	return r;
}

static pos_err parse_bad(const char *s, int want, struct msr_result *r)
{
	pos_err e;
	int rc = parse(s, r, &e);

	if (rc != want)
		fail_msg("swipe gave %d (%s), want %d", rc, e.msg, want);
	return e;
}

static void both_tracks_give_pan_expiry_and_service(void **st)
{
	struct msr_result r = parse_ok(T1_4242 T2_4242);

	(void)st;
	assert_int_equal(r.t1, MSR_TRACK_OK);
	assert_int_equal(r.t2, MSR_TRACK_OK);
	assert_string_equal(r.pan, "4242424242424242");
	assert_string_equal(r.expiry, "2812");
	assert_string_equal(r.service, "101");
}

static void reader_framing_around_the_tracks_is_ignored(void **st)
{
	struct msr_result r;

	(void)st;
	r = parse_ok(T1_4242 T2_4242 "\r\n");
	assert_string_equal(r.pan, "4242424242424242");
	/* MagTek insertion reader: STX ESC ... card-sensor digit CR ETX. */
	r = parse_ok("\x02\x1b" T1_4242 T2_4242 "1\r\x03");
	assert_string_equal(r.pan, "4242424242424242");
	r = parse_ok(T2_4242 "\r");
	assert_int_equal(r.t1, MSR_TRACK_ABSENT);
	assert_string_equal(r.pan, "4242424242424242");
}

static void track_3_is_skipped(void **st)
{
	struct msr_result r = parse_ok(T1_4242 T2_4242 "+1234567890123456=0000000000?");

	(void)st;
	assert_string_equal(r.pan, "4242424242424242");
	r = parse_ok(";5555555555554444=30012010000000000?+E?");
	assert_string_equal(r.pan, "5555555555554444");
	assert_string_equal(r.expiry, "3001");
	assert_string_equal(r.service, "201");
}

static void magtek_demo_card_is_refused_for_luhn(void **st)
{
	struct msr_result r;
	pos_err e = parse_bad(T1_MAGTEK T2_MAGTEK T3_MAGTEK, POS_EINVAL, &r);

	(void)st;
	assert_string_equal(e.msg, "card number fails the Luhn check");
	assert_null(strstr(e.msg, "5452"));
	/* The tracks read fine; only the number is wrong. */
	assert_int_equal(r.t1, MSR_TRACK_OK);
	assert_int_equal(r.t2, MSR_TRACK_OK);
}

static void stripe_incorrect_number_case_fails_luhn(void **st)
{
	struct msr_result r;

	(void)st;
	parse_bad(";4242424242424241=28121010000000000?", POS_EINVAL, &r);
	parse_bad("%B4242424242424241^DOE/JOHN^2812101?", POS_EINVAL, &r);
}

static void failed_track_1_leaves_track_2(void **st)
{
	struct msr_result r = parse_ok("%E?" T2_4242);

	(void)st;
	assert_int_equal(r.t1, MSR_TRACK_FAILED);
	assert_int_equal(r.t2, MSR_TRACK_OK);
	assert_string_equal(r.pan, "4242424242424242");
}

static void failed_track_2_falls_back_to_track_1(void **st)
{
	struct msr_result r = parse_ok("%B378282246310005^AMEX/TEST^2701201?;E?");

	(void)st;
	assert_int_equal(r.t1, MSR_TRACK_OK);
	assert_int_equal(r.t2, MSR_TRACK_FAILED);
	assert_string_equal(r.pan, "378282246310005");
	assert_string_equal(r.expiry, "2701");
	assert_string_equal(r.service, "201");
}

static void no_pan_names_the_track_states(void **st)
{
	struct msr_result r;
	pos_err e;

	(void)st;
	e = parse_bad("%E?", POS_EINVAL, &r);
	assert_string_equal(e.msg, "no card number: track 1 failed to read, track 2 absent");
	assert_int_equal(r.t1, MSR_TRACK_FAILED);
	assert_int_equal(r.t2, MSR_TRACK_ABSENT);
	e = parse_bad("%E?;E?+E?\r", POS_EINVAL, &r);
	assert_string_equal(e.msg,
			    "no card number: track 1 failed to read, track 2 failed to read");
	e = parse_bad(";E?", POS_EINVAL, &r);
	assert_string_equal(e.msg, "no card number: track 1 absent, track 2 failed to read");
	e = parse_bad("", POS_EINVAL, &r);
	assert_string_equal(e.msg, "no card number: track 1 absent, track 2 absent");
	e = parse_bad("+1234567890?\r", POS_EINVAL, &r);
	assert_string_equal(e.msg, "no card number: track 1 absent, track 2 absent");
	/* Sentinels without data: nothing was on the track. */
	e = parse_bad("%?;?", POS_EINVAL, &r);
	assert_string_equal(e.msg, "no card number: track 1 absent, track 2 absent");
}

static void tracks_with_different_pans_are_refused(void **st)
{
	struct msr_result r;
	pos_err e = parse_bad(T1_4242 ";5555555555554444=28121010000000000?", POS_EINVAL, &r);

	(void)st;
	assert_non_null(strstr(e.msg, "differ"));
}

static void pan_length_is_twelve_to_nineteen(void **st)
{
	struct msr_result r;

	(void)st;
	r = parse_ok(";123456789015=2812101?");
	assert_string_equal(r.pan, "123456789015");
	r = parse_ok(";6205500000000000004=2812101?");
	assert_string_equal(r.pan, "6205500000000000004");
	r = parse_ok("%B6205500000000000004^UNION/PAY^2812101?");
	assert_string_equal(r.pan, "6205500000000000004");
	parse_bad(";12345678903=2812101?", POS_EINVAL, &r);
	assert_int_equal(r.t2, MSR_TRACK_FAILED);
	parse_bad(";12345678901234567894=2812101?", POS_EINVAL, &r);
	assert_int_equal(r.t2, MSR_TRACK_FAILED);
	parse_bad("%B12345678901234567894^DOE/JOHN^2812101?", POS_EINVAL, &r);
	assert_int_equal(r.t1, MSR_TRACK_FAILED);
}

static void malformed_track_2_is_failed(void **st)
{
	static const char *const bad[] = {
		";4242424242424242?",                    /* no separator */
		";4242424242424242=281?",                /* short expiry/service */
		";4242424242424242=28A2101?",            /* letter */
		";4242424242424242^2812101?",            /* track 1 separator */
		";=2812101?",                            /* no PAN */
		";42424242 42424242=2812101?",           /* space */
		";4242424242424242=281210100000000000000000000000000?", /* over 40 */
	};
	struct msr_result r;

	(void)st;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		parse_bad(bad[i], POS_EINVAL, &r);
		if (r.t2 != MSR_TRACK_FAILED)
			fail_msg("case %zu: track 2 state %d", i, r.t2);
	}
}

static void malformed_track_1_is_failed(void **st)
{
	static const char *const bad[] = {
		"%A4242424242424242^DOE/JOHN^2812101?",  /* format A */
		"%4242424242424242^DOE/JOHN^2812101?",   /* no format code */
		"%B4242424242424242^D^2812101?",         /* name too short */
		"%B4242424242424242^ABCDEFGHIJKLMNOPQRSTUVWXYZA^2812101?", /* 27 */
		"%B4242424242424242^DOE/JOHN^28121?",    /* short */
		"%B4242424242424242^DOE/JOHN2812101?",   /* one separator */
		"%B4242424242424242^doe/john^2812101?",  /* lower case is not in the set */
		"%B4242424242424242=DOE/JOHN^2812101?",
		/* body over 79 */
		("%B4242424242424242^DOE/JOHN^2812101"
		 "000000000000000000000000000000000000000000000000000000000000?"),
	};
	struct msr_result r;

	(void)st;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		parse_bad(bad[i], POS_EINVAL, &r);
		if (r.t1 != MSR_TRACK_FAILED)
			fail_msg("case %zu: track 1 state %d", i, r.t1);
	}
	/* 26 characters is the longest name. */
	parse_ok("%B4242424242424242^ABCDEFGHIJKLMNOPQRSTUVWXYZ^2812101?");
}

static void missing_end_sentinel_fails_only_that_track(void **st)
{
	struct msr_result r = parse_ok("%B4242424242424242^DOE/JOHN^2812101" T2_4242);

	(void)st;
	assert_int_equal(r.t1, MSR_TRACK_FAILED);
	assert_int_equal(r.t2, MSR_TRACK_OK);
	parse_bad(";4242424242424242=2812101", POS_EINVAL, &r);
	assert_int_equal(r.t2, MSR_TRACK_FAILED);
}

static void embedded_nul_fails_the_track(void **st)
{
	struct msr_result r;
	pos_err e;
	char line[] = ";4242424242424242=28\00012101?";

	(void)st;
	assert_int_equal(msr_parse(line, sizeof line - 1, &r, &e), POS_EINVAL);
	assert_int_equal(r.t2, MSR_TRACK_FAILED);
	assert_all_zero(line, sizeof line - 1);
}

static void a_track_sent_twice_is_refused(void **st)
{
	struct msr_result r;
	pos_err e = parse_bad(T2_4242 T2_4242, POS_EINVAL, &r);

	(void)st;
	assert_non_null(strstr(e.msg, "track 2 more than once"));
	parse_bad(T1_4242 T1_4242 T2_4242, POS_EINVAL, &r);
}

static void over_long_line_is_refused_and_still_wiped(void **st)
{
	struct msr_result r;
	pos_err e;
	size_t n = MSR_MAX_LINE + 1;

	(void)st;
	memset(buf, ';', n);
	assert_int_equal(msr_parse(buf, n, &r, &e), POS_ETOOBIG);
	assert_all_zero(buf, n);
	assert_no_data_in(e.msg);
	/* Exactly the limit is fine (and mostly padding). */
	memset(buf, ' ', MSR_MAX_LINE);
	memcpy(buf, T2_4242, strlen(T2_4242));
	assert_int_equal(msr_parse(buf, MSR_MAX_LINE, &r, &e), 0);
	assert_all_zero(buf, MSR_MAX_LINE);
	msr_result_wipe(&r);
}

static void the_line_is_wiped_on_success_and_failure(void **st)
{
	struct msr_result r;
	pos_err e;
	char ok[] = T1_4242 T2_4242 "\r";
	char bad[] = T1_MAGTEK T2_MAGTEK;

	(void)st;
	assert_int_equal(msr_parse(ok, strlen(ok), &r, &e), 0);
	assert_all_zero(ok, sizeof ok);
	assert_int_equal(msr_parse(bad, strlen(bad), &r, &e), POS_EINVAL);
	assert_all_zero(bad, sizeof bad);
	/* Even without a result buffer. */
	memcpy(ok, T2_4242, strlen(T2_4242));
	assert_int_equal(msr_parse(ok, strlen(T2_4242), NULL, &e), POS_EINVAL);
	assert_all_zero(ok, strlen(T2_4242));
	assert_int_equal(msr_parse(NULL, 0, &r, NULL), POS_EINVAL);
	assert_int_equal(msr_parse(NULL, 5, &r, &e), POS_EINVAL);
}

static void result_wipe_zeroes_the_struct(void **st)
{
	struct msr_result r = parse_ok(T1_4242 T2_4242);

	(void)st;
	msr_result_wipe(&r);
	assert_all_zero((const char *)&r, sizeof r);
	msr_result_wipe(NULL);
}

static void messages_never_carry_card_data(void **st)
{
	static const char *const lines[] = {
		T1_MAGTEK T2_MAGTEK,
		T1_4242 ";5555555555554444=28121010000000000?",
		";4242424242424241=2812101?",
		"%B4242424242424241^DOE/JOHN^2812101?;E?",
		T2_4242 T2_4242,
		"%E?;4242424242424242=28?",
	};
	struct msr_result r;
	pos_err e;

	(void)st;
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		assert_int_not_equal(parse(lines[i], &r, &e), 0);
		assert_null(strstr(e.msg, "4242"));
		assert_null(strstr(e.msg, "5555"));
		assert_null(strstr(e.msg, "5452"));
		assert_null(strstr(e.msg, "2812"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(both_tracks_give_pan_expiry_and_service),
		cmocka_unit_test(reader_framing_around_the_tracks_is_ignored),
		cmocka_unit_test(track_3_is_skipped),
		cmocka_unit_test(magtek_demo_card_is_refused_for_luhn),
		cmocka_unit_test(stripe_incorrect_number_case_fails_luhn),
		cmocka_unit_test(failed_track_1_leaves_track_2),
		cmocka_unit_test(failed_track_2_falls_back_to_track_1),
		cmocka_unit_test(no_pan_names_the_track_states),
		cmocka_unit_test(tracks_with_different_pans_are_refused),
		cmocka_unit_test(pan_length_is_twelve_to_nineteen),
		cmocka_unit_test(malformed_track_2_is_failed),
		cmocka_unit_test(malformed_track_1_is_failed),
		cmocka_unit_test(missing_end_sentinel_fails_only_that_track),
		cmocka_unit_test(embedded_nul_fails_the_track),
		cmocka_unit_test(a_track_sent_twice_is_refused),
		cmocka_unit_test(over_long_line_is_refused_and_still_wiped),
		cmocka_unit_test(the_line_is_wiped_on_success_and_failure),
		cmocka_unit_test(result_wipe_zeroes_the_struct),
		cmocka_unit_test(messages_never_carry_card_data),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
