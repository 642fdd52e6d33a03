/* gtin: every scanned shape to GTIN-14, check digits, UPC-E expansion,
 * AIM identifiers and variable-measure codes (shared/reference/gs1.md,
 * scanners.md). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "gtin.h"

static struct gtin_scan parse_ok(const char *code, enum gtin_vm_layout vm)
{
	struct gtin_scan s;
	pos_err e = { 0 };

	if (gtin_parse(code, strlen(code), vm, &s, &e) != 0)
		fail_msg("'%s' refused: %s", code, e.msg);
	return s;
}

/* Parses a code that must be refused; returns the message for checks. */
static pos_err parse_bad(const char *code, enum gtin_vm_layout vm, int want)
{
	struct gtin_scan s;
	pos_err e = { 0 };
	int rc = gtin_parse(code, strlen(code), vm, &s, &e);

	if (rc != want)
		fail_msg("'%s' gave %d, want %d (%s)", code, rc, want, e.msg);
	assert_int_equal(e.code, want);
	assert_true(strlen(e.msg) > 0);
	assert_string_equal(s.gtin, "");
	assert_false(s.variable_measure);
	return e;
}

static void check_digit_matches_the_reference_examples(void **st)
{
	(void)st;
	assert_int_equal(gtin_check_digit("950110153100", 12), 0);
	assert_int_equal(gtin_check_digit("9501234", 7), 6);
	assert_int_equal(gtin_check_digit("211223378965", 12), 7);
	assert_int_equal(gtin_check_digit("211234567890", 12), 0);
	assert_int_equal(gtin_check_digit("41600033610", 11), 8);
	/* Weights run from the right: zero padding leaves the digit alone. */
	assert_int_equal(gtin_check_digit("00000009501234", 14), 6);
	assert_int_equal(gtin_check_digit("9501x34", 7), -1);
	assert_int_equal(gtin_check_digit("", 0), 0);
}

static void gtin14_valid_needs_fourteen_digits_and_the_right_check(void **st)
{
	(void)st;
	assert_true(gtin14_valid("09501101531000"));
	assert_true(gtin14_valid("19501101531007"));
	assert_false(gtin14_valid("09501101531001"));
	assert_false(gtin14_valid("9501101531000"));
	assert_false(gtin14_valid("095011015310000"));
	assert_false(gtin14_valid("0950110153100a"));
	assert_false(gtin14_valid(NULL));
}

static void upce_expands_all_ten_cases_of_the_table(void **st)
{
	static const char *const table[][2] = {
		{ "01234505", "012000003455" }, { "01234514", "012100003454" },
		{ "01234523", "012200003453" }, { "01234531", "012300000451" },
		{ "01234543", "012340000053" }, { "01234558", "012345000058" },
		{ "01234565", "012345000065" }, { "01234572", "012345000072" },
		{ "01234589", "012345000089" }, { "01234596", "012345000096" },
	};
	char upca[13];
	pos_err e = { 0 };

	(void)st;
	for (size_t i = 0; i < 10; i++) {
		if (gtin_upce_to_upca(table[i][0], upca, &e) != 0)
			fail_msg("%s refused: %s", table[i][0], e.msg);
		assert_string_equal(upca, table[i][1]);
	}
	/* Number system 1 is carried through: 1 12345 0 -> 1 12 0 0000 345. */
	assert_int_equal(gtin_upce_to_upca("11234502", upca, &e), 0);
	assert_string_equal(upca, "112000003452");
}

static void upce_with_bad_check_digit_or_number_system_is_refused(void **st)
{
	char upca[13] = "x";
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(gtin_upce_to_upca("01234566", upca, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "check digit"));
	assert_string_equal(upca, "");
	assert_int_equal(gtin_upce_to_upca("21234565", upca, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "number system"));
	assert_int_equal(gtin_upce_to_upca("0123456a", upca, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "non-digit"));
}

static void ean13_example_normalises_with_one_leading_zero(void **st)
{
	struct gtin_scan s = parse_ok("9501101531000", GTIN_VM_NONE);

	(void)st;
	assert_string_equal(s.gtin, "09501101531000");
	assert_string_equal(s.item_gtin, "09501101531000");
	assert_int_equal(s.source, GTIN_SRC_EAN13);
	assert_string_equal(s.aim, "");
	assert_false(s.variable_measure);
	assert_int_equal(s.price_cents, -1);
}

static void ean8_example_normalises_with_six_leading_zeros(void **st)
{
	struct gtin_scan s = parse_ok("95012346", GTIN_VM_NONE);

	(void)st;
	assert_string_equal(s.gtin, "00000095012346");
	assert_int_equal(s.source, GTIN_SRC_EAN8);
}

static void check_digit_decides_valid_and_invalid_ean13(void **st)
{
	struct gtin_scan s = parse_ok("2112233789657", GTIN_VM_NONE);
	pos_err e;

	(void)st;
	assert_string_equal(s.gtin, "02112233789657");
	s = parse_ok("2112345678900", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "02112345678900");
	e = parse_bad("2112233789658", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "EAN-13 check digit does not match"));
}

static void upca_example_normalises_with_two_leading_zeros(void **st)
{
	struct gtin_scan s = parse_ok("416000336108", GTIN_VM_NONE);
	pos_err e;

	(void)st;
	assert_string_equal(s.gtin, "00416000336108");
	assert_int_equal(s.source, GTIN_SRC_UPCA);
	e = parse_bad("416000336109", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "UPC-A check digit"));
	/* The same UPC-A in its 13-digit form is the same GTIN. */
	s = parse_ok("0416000336108", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "00416000336108");
	assert_int_equal(s.source, GTIN_SRC_UPCA);
}

static void upce_of_eight_digits_is_expanded_before_padding(void **st)
{
	struct gtin_scan s = parse_ok("01234565", GTIN_VM_NONE);

	(void)st;
	assert_string_equal(s.gtin, "00012345000065");
	assert_int_equal(s.source, GTIN_SRC_UPCE);
	s = parse_ok("01234531", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "00012300000451");
	assert_int_equal(s.source, GTIN_SRC_UPCE);
}

static void eight_digits_failing_the_upce_check_fall_back_to_ean8(void **st)
{
	struct gtin_scan s;
	pos_err e;

	(void)st;
	/* 01234568 fails UPC-E (wants 5) and EAN-8 (wants 5). */
	e = parse_bad("01234568", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "UPC-E and the EAN-8"));
	/* 95012347: no UPC-E number system, EAN-8 check wrong. */
	e = parse_bad("95012347", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "EAN-8 check digit"));
	/* 00000017: EAN-8 check right, UPC-E would want 9. */
	s = parse_ok("00000017", GTIN_VM_NONE);
	assert_int_equal(s.source, GTIN_SRC_EAN8);
	assert_string_equal(s.gtin, "00000000000017");
}

static void six_and_seven_digit_upce_are_refused_as_ambiguous(void **st)
{
	pos_err e;

	(void)st;
	e = parse_bad("123456", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "UPC-E without number system/check digit; configure the "
				      "scanner to transmit them"));
	e = parse_bad("0123456", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "UPC-E without number system/check digit"));
	e = parse_bad("1234565", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "configure the scanner"));
}

static void upca_without_check_or_system_digit_is_refused(void **st)
{
	pos_err e = parse_bad("41600033610", GTIN_VM_NONE, POS_EINVAL);

	(void)st;
	assert_non_null(strstr(e.msg, "UPC-A without number system or check digit"));
}

static void wrong_lengths_are_refused_naming_the_count(void **st)
{
	pos_err e;

	(void)st;
	e = parse_bad("123456789", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "has 9 digits"));
	e = parse_bad("1234567890", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "has 10 digits"));
	e = parse_bad("123456789012345", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "has 15 digits"));
	e = parse_bad("1", GTIN_VM_NONE, POS_EINVAL);
	parse_bad("", GTIN_VM_NONE, POS_EINVAL);
}

static void non_digits_and_line_terminators_are_refused(void **st)
{
	pos_err e;

	(void)st;
	e = parse_bad("95011015310O0", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "non-digit character at position 12"));
	e = parse_bad("9501101531000\r\n", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "CR or LF"));
	e = parse_bad("9501101531000\n", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "CR or LF"));
	e = parse_bad(" 9501101531000", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "position 1"));
	e = parse_bad("-950110153100", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "non-digit"));
}

static void embedded_nul_is_a_non_digit(void **st)
{
	struct gtin_scan s;
	pos_err e = { 0 };

	(void)st;
	/* len counts the NUL: the code is not cut short at it. */
	assert_int_equal(gtin_parse("950110153\0000", 13, GTIN_VM_NONE, &s, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "non-digit"));
}

static void input_over_the_limit_is_too_big(void **st)
{
	char big[GTIN_MAX_INPUT + 2];
	struct gtin_scan s;
	pos_err e = { 0 };

	(void)st;
	memset(big, '1', sizeof big);
	assert_int_equal(gtin_parse(big, GTIN_MAX_INPUT + 1, GTIN_VM_NONE, &s, &e), POS_ETOOBIG);
	assert_int_equal(gtin_parse(NULL, 0, GTIN_VM_NONE, &s, &e), POS_EINVAL);
	assert_int_equal(gtin_parse("1", 1, GTIN_VM_NONE, NULL, &e), POS_EINVAL);
	/* A NULL error buffer is allowed. */
	assert_int_equal(gtin_parse("12", 2, GTIN_VM_NONE, &s, NULL), POS_EINVAL);
}

static void aim_split_takes_three_characters_after_a_bracket(void **st)
{
	char aim[4];
	const char *d;
	size_t n;

	(void)st;
	gtin_aim_split("]E09501101531000", 16, aim, &d, &n);
	assert_string_equal(aim, "]E0");
	assert_int_equal(n, 13);
	assert_memory_equal(d, "9501101531000", 13);
	gtin_aim_split("9501101531000", 13, aim, &d, &n);
	assert_string_equal(aim, "");
	assert_int_equal(n, 13);
	gtin_aim_split("]E", 2, aim, &d, &n);
	assert_string_equal(aim, "");
	assert_int_equal(n, 2);
	gtin_aim_split("]e0", 3, aim, &d, &n);
	assert_string_equal(aim, "]e0");
	assert_int_equal(n, 0);
}

static void aim_e0_carries_thirteen_digits_for_ean_upca_and_upce(void **st)
{
	struct gtin_scan s;
	pos_err e;

	(void)st;
	s = parse_ok("]E09501101531000", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "09501101531000");
	assert_string_equal(s.aim, "]E0");
	assert_int_equal(s.source, GTIN_SRC_EAN13);
	s = parse_ok("]E00416000336108", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "00416000336108");
	assert_int_equal(s.source, GTIN_SRC_UPCA);
	/* The GS1 Syntax Engine example: UPC-E arrives already expanded. */
	s = parse_ok("]E00001234000057", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "00001234000057");
	/* Some scanners keep 12 digits for UPC-A under ]E0. */
	s = parse_ok("]E0416000336108", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "00416000336108");
	e = parse_bad("]E001234565", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "]E0"));
	e = parse_bad("]E02112233789658", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "check digit"));
}

static void aim_e4_is_always_ean8(void **st)
{
	struct gtin_scan s = parse_ok("]E495012346", GTIN_VM_NONE);
	pos_err e;

	(void)st;
	assert_string_equal(s.gtin, "00000095012346");
	assert_int_equal(s.source, GTIN_SRC_EAN8);
	/* Valid as UPC-E too, but ]E4 says EAN-8. */
	s = parse_ok("]E401234565", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "00000001234565");
	assert_int_equal(s.source, GTIN_SRC_EAN8);
	e = parse_bad("]E49501101531000", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "8 digits"));
	parse_bad("]E495012345", GTIN_VM_NONE, POS_EINVAL);
}

static void aim_e3_takes_the_main_code_and_drops_the_addon(void **st)
{
	struct gtin_scan s;

	(void)st;
	s = parse_ok("]E3950110153100012", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "09501101531000");
	s = parse_ok("]E3950110153100012345", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "09501101531000");
	parse_bad("]E39501101531000123", GTIN_VM_NONE, POS_EINVAL);
	parse_bad("]E112", GTIN_VM_NONE, POS_EINVAL);
	parse_bad("]E212345", GTIN_VM_NONE, POS_EINVAL);
}

static void gs1_element_strings_give_the_gtin_of_ai_01(void **st)
{
	struct gtin_scan s;
	pos_err e;

	(void)st;
	s = parse_ok("]e00109501101531000", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "09501101531000");
	assert_string_equal(s.aim, "]e0");
	assert_int_equal(s.source, GTIN_SRC_GTIN14);
	s = parse_ok("]C10119501101531007", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "19501101531007");
	s = parse_ok("]d20109501101531000", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "09501101531000");
	s = parse_ok("]Q30109501101531000", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "09501101531000");
	/* AIs after (01) are ignored; (01) after a fixed-length (17) and a
	 * GS-terminated (10) is still found. */
	s = parse_ok("]e001095011015310001726123110ABC", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "09501101531000");
	s = parse_ok("]d21726123110ABC\x1d" "0109501101531000", GTIN_VM_NONE);
	assert_string_equal(s.gtin, "09501101531000");
	e = parse_bad("]e08110012345612345611110123", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "no GTIN (AI 01)"));
	e = parse_bad("]C10109501101531001", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "check digit"));
	e = parse_bad("]C1010950110153", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "14 digits"));
	parse_bad("]C101095011015310A0", GTIN_VM_NONE, POS_EINVAL);
	parse_bad("]e0", GTIN_VM_NONE, POS_EINVAL);
	parse_bad("]e0X1", GTIN_VM_NONE, POS_EINVAL);
}

static void itf14_carries_a_gtin14(void **st)
{
	struct gtin_scan s = parse_ok("]I119501101531007", GTIN_VM_NONE);

	(void)st;
	assert_string_equal(s.gtin, "19501101531007");
	parse_bad("]I1950110153100", GTIN_VM_NONE, POS_EINVAL);
}

static void other_symbologies_are_refused(void **st)
{
	pos_err e = parse_bad("]A0HELLO", GTIN_VM_NONE, POS_EINVAL);

	(void)st;
	assert_non_null(strstr(e.msg, "]A0 does not carry"));
	parse_bad("]Q1https://example.com", GTIN_VM_NONE, POS_EINVAL);
	e = parse_bad("]\x01\x02" "9501101531000", GTIN_VM_NONE, POS_EINVAL);
	assert_non_null(strstr(e.msg, "symbology identifier"));
	parse_bad("]9501101531000", GTIN_VM_NONE, POS_EINVAL);
}

static void price_verifier_matches_the_reference_examples(void **st)
{
	(void)st;
	assert_int_equal(gtin_price_verifier("2875", 4), 9);
	assert_int_equal(gtin_price_verifier("14685", 5), 6);
	assert_int_equal(gtin_price_verifier("0349", 4), 7);
	assert_int_equal(gtin_price_verifier("0299", 4), 6);
	assert_int_equal(gtin_price_verifier("0000", 4), 0);
	assert_int_equal(gtin_price_verifier("287", 3), -1);
	assert_int_equal(gtin_price_verifier("287x", 4), -1);
	assert_int_equal(gtin_price_verifier(NULL, 4), -1);
}

static void us_number_system_2_separates_item_and_price(void **st)
{
	struct gtin_scan s;
	pos_err e;

	(void)st;
	s = parse_ok("201234703495", GTIN_VM_US);
	assert_true(s.variable_measure);
	assert_string_equal(s.gtin, "00201234703495");
	assert_string_equal(s.item_gtin, "00201234000006");
	assert_true(gtin14_valid(s.item_gtin));
	assert_int_equal(s.price_cents, 349);
	/* The same label with AIM ids arrives as 13 digits. */
	s = parse_ok("]E00201234703495", GTIN_VM_US);
	assert_true(s.variable_measure);
	assert_string_equal(s.item_gtin, "00201234000006");
	assert_int_equal(s.price_cents, 349);
	/* $28.75 with the reference's verifier 9. */
	s = parse_ok("212345928752", GTIN_VM_US);
	assert_int_equal(s.price_cents, 2875);
	assert_string_equal(s.item_gtin, "00212345000007");
	/* A wrong verifier (8) with a correct check digit is refused. */
	e = parse_bad("212345828755", GTIN_VM_US, POS_EINVAL);
	assert_non_null(strstr(e.msg, "price verifier"));
}

static void us_layout_leaves_other_codes_alone(void **st)
{
	struct gtin_scan s;

	(void)st;
	s = parse_ok("416000336108", GTIN_VM_US);
	assert_false(s.variable_measure);
	assert_string_equal(s.item_gtin, s.gtin);
	assert_int_equal(s.price_cents, -1);
	/* EAN-13 prefix 20 is not the US range. */
	s = parse_ok("2012345602991", GTIN_VM_US);
	assert_false(s.variable_measure);
	/* An indicator digit makes it a case, not a price label. */
	s = parse_ok("]C10110201234703492", GTIN_VM_US);
	assert_false(s.variable_measure);
	assert_string_equal(s.item_gtin, "10201234703492");
}

static void no_layout_means_nothing_is_variable_measure(void **st)
{
	struct gtin_scan s;

	(void)st;
	s = parse_ok("201234703495", GTIN_VM_NONE);
	assert_false(s.variable_measure);
	assert_string_equal(s.item_gtin, "00201234703495");
	assert_int_equal(s.price_cents, -1);
	/* Even a bad verifier is no error without a layout. */
	s = parse_ok("212345828755", GTIN_VM_NONE);
	assert_false(s.variable_measure);
	s = parse_ok("2012345602991", GTIN_VM_NONE);
	assert_false(s.variable_measure);
}

static void uk_branded_label_gives_pence_and_item(void **st)
{
	struct gtin_scan s;
	pos_err e;

	(void)st;
	s = parse_ok("2012345602991", GTIN_VM_UK);
	assert_true(s.variable_measure);
	assert_int_equal(s.price_cents, 299);
	assert_string_equal(s.item_gtin, "02012345000001");
	assert_true(gtin14_valid(s.item_gtin));
	s = parse_ok("2812345602997", GTIN_VM_UK);
	assert_true(s.variable_measure);
	assert_string_equal(s.item_gtin, "02812345000007");
	/* Verifier 5 instead of 6, check digit made right. */
	e = parse_bad("2012345502994", GTIN_VM_UK, POS_EINVAL);
	assert_non_null(strstr(e.msg, "price verifier"));
	/* Prefix 21 and US number-system-2 codes are not UK variable measure. */
	s = parse_ok("2112233789657", GTIN_VM_UK);
	assert_false(s.variable_measure);
	s = parse_ok("201234703495", GTIN_VM_UK);
	assert_false(s.variable_measure);
}

static void swedish_codes_give_price_by_decimals_and_weight_without_price(void **st)
{
	struct gtin_scan s;

	(void)st;
	/* 23: weight in kg with 3 decimals (1.250 kg); no price in the code. */
	s = parse_ok("2312345612502", GTIN_VM_SE);
	assert_true(s.variable_measure);
	assert_string_equal(s.item_gtin, "02312345600004");
	assert_int_equal(s.price_cents, -1);
	/* 20/21/22: 0123 with 2, 1, 0 decimals. */
	s = parse_ok("2012345601239", GTIN_VM_SE);
	assert_true(s.variable_measure);
	assert_int_equal(s.price_cents, 123);
	s = parse_ok("2112345601236", GTIN_VM_SE);
	assert_int_equal(s.price_cents, 1230);
	s = parse_ok("2212345601233", GTIN_VM_SE);
	assert_int_equal(s.price_cents, 12300);
	assert_true(gtin14_valid(s.item_gtin));
	/* 26 is outside the Swedish table. */
	s = parse_ok("2612345601231", GTIN_VM_SE);
	assert_false(s.variable_measure);
}

static void layout_names_parse(void **st)
{
	enum gtin_vm_layout vm = GTIN_VM_UK;

	(void)st;
	assert_int_equal(gtin_vm_layout_parse("none", &vm), 0);
	assert_int_equal(vm, GTIN_VM_NONE);
	assert_int_equal(gtin_vm_layout_parse("us", &vm), 0);
	assert_int_equal(vm, GTIN_VM_US);
	assert_int_equal(gtin_vm_layout_parse("uk", &vm), 0);
	assert_int_equal(vm, GTIN_VM_UK);
	assert_int_equal(gtin_vm_layout_parse("se", &vm), 0);
	assert_int_equal(vm, GTIN_VM_SE);
	assert_int_equal(gtin_vm_layout_parse("de", &vm), POS_EINVAL);
	assert_int_equal(gtin_vm_layout_parse("", &vm), POS_EINVAL);
	assert_int_equal(gtin_vm_layout_parse(NULL, &vm), POS_EINVAL);
	assert_int_equal(vm, GTIN_VM_SE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(check_digit_matches_the_reference_examples),
		cmocka_unit_test(gtin14_valid_needs_fourteen_digits_and_the_right_check),
		cmocka_unit_test(upce_expands_all_ten_cases_of_the_table),
		cmocka_unit_test(upce_with_bad_check_digit_or_number_system_is_refused),
		cmocka_unit_test(ean13_example_normalises_with_one_leading_zero),
		cmocka_unit_test(ean8_example_normalises_with_six_leading_zeros),
		cmocka_unit_test(check_digit_decides_valid_and_invalid_ean13),
		cmocka_unit_test(upca_example_normalises_with_two_leading_zeros),
		cmocka_unit_test(upce_of_eight_digits_is_expanded_before_padding),
		cmocka_unit_test(eight_digits_failing_the_upce_check_fall_back_to_ean8),
		cmocka_unit_test(six_and_seven_digit_upce_are_refused_as_ambiguous),
		cmocka_unit_test(upca_without_check_or_system_digit_is_refused),
		cmocka_unit_test(wrong_lengths_are_refused_naming_the_count),
		cmocka_unit_test(non_digits_and_line_terminators_are_refused),
		cmocka_unit_test(embedded_nul_is_a_non_digit),
		cmocka_unit_test(input_over_the_limit_is_too_big),
		cmocka_unit_test(aim_split_takes_three_characters_after_a_bracket),
		cmocka_unit_test(aim_e0_carries_thirteen_digits_for_ean_upca_and_upce),
		cmocka_unit_test(aim_e4_is_always_ean8),
		cmocka_unit_test(aim_e3_takes_the_main_code_and_drops_the_addon),
		cmocka_unit_test(gs1_element_strings_give_the_gtin_of_ai_01),
		cmocka_unit_test(itf14_carries_a_gtin14),
		cmocka_unit_test(other_symbologies_are_refused),
		cmocka_unit_test(price_verifier_matches_the_reference_examples),
		cmocka_unit_test(us_number_system_2_separates_item_and_price),
		cmocka_unit_test(us_layout_leaves_other_codes_alone),
		cmocka_unit_test(no_layout_means_nothing_is_variable_measure),
		cmocka_unit_test(uk_branded_label_gives_pence_and_item),
		cmocka_unit_test(swedish_codes_give_price_by_decimals_and_weight_without_price),
		cmocka_unit_test(layout_names_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
