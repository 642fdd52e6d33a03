/* classify: commands first, then loyalty, then offer, else an item GTIN;
 * rules see the code after its AIM id; a bad code is refused without being
 * repeated. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "classify.h"

static struct classify_rules rules;

static int setup(void **st)
{
	pos_err e;

	(void)st;
	classify_rules_init(&rules);
	if (classify_rules_set(&rules, CLASSIFY_RULE_LOYALTY, "^99[0-9]{11}$", &e) < 0 ||
	    classify_rules_set(&rules, CLASSIFY_RULE_OFFER, "^98[0-9]{11}$", &e) < 0 ||
	    classify_rules_set(&rules, CLASSIFY_RULE_TOTAL, "^TOTAL$", &e) < 0 ||
	    classify_rules_set(&rules, CLASSIFY_RULE_VOID, "^VOID$", &e) < 0 ||
	    classify_rules_set(&rules, CLASSIFY_RULE_CANCEL, "^CANCEL$", &e) < 0)
		return -1;
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	classify_rules_free(&rules);
	return 0;
}

static enum classify_kind kind_of(const char *code, struct classify_result *r)
{
	pos_err e;

	if (classify_code(&rules, code, strlen(code), r, &e) < 0)
		fail_msg("'%s' refused: %s", code, e.msg);
	return r->kind;
}

static void lane_commands_are_recognised(void **st)
{
	struct classify_result r;

	(void)st;
	assert_int_equal(kind_of("TOTAL", &r), CLASSIFY_TOTAL);
	assert_int_equal(kind_of("VOID", &r), CLASSIFY_VOID);
	assert_int_equal(kind_of("CANCEL", &r), CLASSIFY_CANCEL);
}

static void items_become_gtin_14(void **st)
{
	struct classify_result r;

	(void)st;
	assert_int_equal(kind_of("9520000000011", &r), CLASSIFY_ITEM);
	assert_string_equal(r.item.gtin, "09520000000011");
	assert_string_equal(r.item.item_gtin, "09520000000011");
	assert_false(r.item.variable_measure);
	assert_int_equal(kind_of("012345678905", &r), CLASSIFY_ITEM); /* UPC-A */
	assert_string_equal(r.item.gtin, "00012345678905");
	assert_int_equal(kind_of("]E00725272730706", &r), CLASSIFY_ITEM);
	assert_string_equal(r.item.gtin, "00725272730706");
}

static void loyalty_and_offer_codes_are_kept(void **st)
{
	struct classify_result r;

	(void)st;
	assert_int_equal(kind_of("9900000000011", &r), CLASSIFY_LOYALTY);
	assert_string_equal(r.code, "9900000000011");
	classify_result_wipe(&r);
	assert_int_equal(r.code[0], '\0');
	assert_int_equal(kind_of("9800000000012", &r), CLASSIFY_OFFER);
	assert_string_equal(r.code, "9800000000012");
}

static void rules_match_the_code_after_its_aim_id(void **st)
{
	struct classify_result r;

	(void)st;
	assert_int_equal(kind_of("]C0TOTAL", &r), CLASSIFY_TOTAL);
	assert_int_equal(kind_of("]E09900000000011", &r), CLASSIFY_LOYALTY);
	assert_string_equal(r.code, "9900000000011");
}

static void commands_win_over_loyalty_and_loyalty_over_offer(void **st)
{
	struct classify_rules greedy;
	struct classify_result r;
	pos_err e;

	(void)st;
	classify_rules_init(&greedy);
	assert_int_equal(classify_rules_set(&greedy, CLASSIFY_RULE_LOYALTY, ".", &e), 0);
	assert_int_equal(classify_rules_set(&greedy, CLASSIFY_RULE_OFFER, ".", &e), 0);
	assert_int_equal(classify_rules_set(&greedy, CLASSIFY_RULE_VOID, "^VOID$", &e), 0);
	assert_int_equal(classify_code(&greedy, "VOID", 4, &r, &e), 0);
	assert_int_equal(r.kind, CLASSIFY_VOID);
	assert_int_equal(classify_code(&greedy, "9520000000011", 13, &r, &e), 0);
	assert_int_equal(r.kind, CLASSIFY_LOYALTY);
	classify_rules_free(&greedy);
}

static void an_empty_rule_matches_nothing(void **st)
{
	struct classify_rules none;
	struct classify_result r;
	pos_err e;

	(void)st;
	classify_rules_init(&none);
	assert_int_equal(classify_rules_set(&none, CLASSIFY_RULE_TOTAL, "^TOTAL$", &e), 0);
	assert_int_equal(classify_rules_set(&none, CLASSIFY_RULE_TOTAL, "", &e), 0);
	assert_int_equal(classify_code(&none, "TOTAL", 5, &r, &e), POS_EINVAL);
	classify_rules_free(&none);
}

static void a_bad_code_is_refused_without_repeating_it(void **st)
{
	struct classify_result r;
	pos_err e;

	(void)st;
	assert_int_equal(classify_code(&rules, "12345", 5, &r, &e), POS_EINVAL);
	assert_null(strstr(e.msg, "12345"));
	/* A card number scanned as a barcode: refused, never echoed. */
	assert_int_equal(classify_code(&rules, "4242424242424242", 16, &r, &e), POS_EINVAL);
	assert_null(strstr(e.msg, "4242"));
	assert_int_equal(classify_code(&rules, "9520000000012", 13, &r, &e), POS_EINVAL);
	assert_int_equal(classify_code(&rules, "", 0, &r, &e), POS_EINVAL);
	assert_int_equal(classify_code(&rules, "]E0", 3, &r, &e), POS_EINVAL);
	assert_int_equal(classify_code(&rules, "TOT\nAL", 6, &r, &e), POS_EINVAL);
	assert_int_equal(classify_code(&rules, "TOTAL\0", 6, &r, &e), POS_EINVAL);
	assert_int_equal(classify_code(&rules, "\xff\xfe", 2, &r, &e), POS_EINVAL);
}

static void an_over_long_code_is_refused(void **st)
{
	char big[CLASSIFY_MAX_CODE + 2];
	struct classify_result r;
	pos_err e;

	(void)st;
	memset(big, '9', sizeof big);
	assert_int_equal(classify_code(&rules, big, sizeof big, &r, &e), POS_EINVAL);
	/* Exactly the maximum still gets classified (here: no valid GTIN). */
	assert_int_equal(classify_code(&rules, big, CLASSIFY_MAX_CODE, &r, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "not an item"));
}

static void the_code_need_not_be_nul_terminated(void **st)
{
	struct classify_result r;
	pos_err e;

	(void)st;
	assert_int_equal(classify_code(&rules, "TOTALXYZ", 5, &r, &e), 0);
	assert_int_equal(r.kind, CLASSIFY_TOTAL);
}

static void a_bad_pattern_is_refused_with_the_rule_name(void **st)
{
	struct classify_rules x;
	pos_err e;

	(void)st;
	classify_rules_init(&x);
	assert_int_equal(classify_rules_set(&x, CLASSIFY_RULE_OFFER, "^98[0-9", &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "offer"));
	assert_false(x.set[CLASSIFY_RULE_OFFER]);
	classify_rules_free(&x);
}

static void offer_codes_must_carry_their_gs1_check_digit(void **st)
{
	pos_err e;

	(void)st;
	assert_int_equal(classify_offer_check("9800000000014", &e), 0);
	assert_int_equal(classify_offer_check("9800000000012", &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "check digit"));
	assert_null(strstr(e.msg, "98000"));
	assert_int_equal(classify_offer_check("98000000000A4", &e), POS_EINVAL);
	assert_int_equal(classify_offer_check("9", &e), POS_EINVAL);
	assert_int_equal(classify_offer_check(NULL, &e), POS_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lane_commands_are_recognised),
		cmocka_unit_test(items_become_gtin_14),
		cmocka_unit_test(loyalty_and_offer_codes_are_kept),
		cmocka_unit_test(rules_match_the_code_after_its_aim_id),
		cmocka_unit_test(commands_win_over_loyalty_and_loyalty_over_offer),
		cmocka_unit_test(an_empty_rule_matches_nothing),
		cmocka_unit_test(a_bad_code_is_refused_without_repeating_it),
		cmocka_unit_test(an_over_long_code_is_refused),
		cmocka_unit_test(the_code_need_not_be_nul_terminated),
		cmocka_unit_test(a_bad_pattern_is_refused_with_the_rule_name),
		cmocka_unit_test(offer_codes_must_carry_their_gs1_check_digit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
