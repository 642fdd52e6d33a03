/* tid: card, loyalty and phone identifiers to one normal form; Luhn; and
 * no error message ever carries a digit of the input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "tid.h"

/* Every public test card of shared/reference/magstripe.md that passes Luhn. */
static const char *const luhn_good[] = {
	"4242424242424242", "4000056655665556", "4012888888881881", "5555555555554444",
	"2223003122003222", "5200828282828210", "5105105105105100", "378282246310005",
	"371449635398431",  "6011111111111117", "6011000990139424", "6011981111111113",
	"3056930009020004", "36227206271667",   "3566002020360505", "6200000000000005",
	"6205500000000000004", "4000000000000002", "4000000000000127", "4000000000000069",
	"4000000000000119", "4111111111111111", "5500000000000004", "4400000000000008",
	"4012345678909",
};

static const char *norm_ok(const char *in, enum tid_kind want_kind)
{
	static char out[TID_MAX];
	enum tid_kind k = 0;
	pos_err e = { 0 };

	if (tid_normalize(in, out, &k, &e) != 0)
		fail_msg("'%s' refused: %s", in, e.msg);
	assert_int_equal(k, want_kind);
	return out;
}

/* The message must not hold a single digit: no fragment of a TID can leak. */
static void assert_no_digits(const char *msg)
{
	if (strpbrk(msg, "0123456789"))
		fail_msg("error message carries a digit: %s", msg);
}

static pos_err norm_bad(const char *in, int want)
{
	char out[TID_MAX];
	enum tid_kind k = TID_LOYALTY;
	pos_err e = { 0 };
	int rc;

	memset(out, 'x', sizeof out);
	rc = tid_normalize(in, out, &k, &e);
	if (rc != want)
		fail_msg("'%s' gave %d (%s), want %d", in, rc, e.msg, want);
	assert_int_equal(e.code, want);
	assert_true(strlen(e.msg) > 0);
	assert_no_digits(e.msg);
	assert_string_equal(out, "");
	assert_int_equal(k, TID_LOYALTY); /* untouched on failure */
	return e;
}

static void luhn_accepts_every_public_test_card(void **st)
{
	(void)st;
	for (size_t i = 0; i < sizeof luhn_good / sizeof luhn_good[0]; i++)
		if (!tid_luhn_valid(luhn_good[i], strlen(luhn_good[i])))
			fail_msg("%s should pass Luhn", luhn_good[i]);
}

static void luhn_refuses_the_cards_the_reference_marks_as_failing(void **st)
{
	(void)st;
	assert_false(tid_luhn_valid("4242424242424241", 16));
	assert_false(tid_luhn_valid("5452300551227189", 16));
	assert_false(tid_luhn_valid("4242424242424243", 16));
	assert_false(tid_luhn_valid("424242424242424a", 16));
	assert_false(tid_luhn_valid("", 0));
	assert_false(tid_luhn_valid(NULL, 16));
	/* n bounds the read: the prefix of a valid PAN is judged alone. */
	assert_true(tid_luhn_valid("4242424242424242xyz", 16));
	assert_true(tid_luhn_valid("0", 1));
}

static void card_separators_are_dropped(void **st)
{
	(void)st;
	assert_string_equal(norm_ok("card:4242424242424242", TID_CARD), "card:4242424242424242");
	assert_string_equal(norm_ok("card:4242 4242 4242 4242", TID_CARD),
			    "card:4242424242424242");
	assert_string_equal(norm_ok("card:4242-4242-4242-4242", TID_CARD),
			    "card:4242424242424242");
	assert_string_equal(norm_ok("  CARD: 4242.4242.4242.4242  ", TID_CARD),
			    "card:4242424242424242");
	assert_string_equal(norm_ok("card:3782 822463 10005", TID_CARD), "card:378282246310005");
	assert_string_equal(norm_ok("card:4242 - 4242 - 4242 - 4242", TID_CARD),
			    "card:4242424242424242");
}

static void card_length_is_twelve_to_nineteen(void **st)
{
	pos_err e;

	(void)st;
	assert_string_equal(norm_ok("card:123456789015", TID_CARD), "card:123456789015");
	assert_string_equal(norm_ok("card:6205500000000000004", TID_CARD),
			    "card:6205500000000000004");
	assert_string_equal(norm_ok("card:1234567890123456785", TID_CARD),
			    "card:1234567890123456785");
	e = norm_bad("card:12345678903", POS_EINVAL);
	assert_non_null(strstr(e.msg, "card number is too short"));
	e = norm_bad("card:12345678901234567894", POS_EINVAL);
	assert_non_null(strstr(e.msg, "card number is too long"));
	/* Far too many digits stop at the buffer, not past it. */
	norm_bad("card:1234567890123456789012345678901234567890123456789012345678901234",
		 POS_EINVAL);
}

static void card_failing_luhn_is_refused(void **st)
{
	pos_err e = norm_bad("card:4242424242424241", POS_EINVAL);

	(void)st;
	assert_string_equal(e.msg, "card number fails the Luhn check");
	norm_bad("card:5452 3005 5122 7189", POS_EINVAL);
}

static void loyalty_numbers_are_four_to_thirty_two_digits(void **st)
{
	pos_err e;

	(void)st;
	assert_string_equal(norm_ok("loyalty:1234", TID_LOYALTY), "loyalty:1234");
	assert_string_equal(norm_ok("loyalty:12 34-56.78", TID_LOYALTY), "loyalty:12345678");
	assert_string_equal(norm_ok("loyalty:12345678901234567890123456789012", TID_LOYALTY),
			    "loyalty:12345678901234567890123456789012");
	/* No Luhn for loyalty numbers. */
	assert_string_equal(norm_ok("loyalty:4242424242424241", TID_LOYALTY),
			    "loyalty:4242424242424241");
	e = norm_bad("loyalty:123", POS_EINVAL);
	assert_non_null(strstr(e.msg, "loyalty number is too short"));
	e = norm_bad("loyalty:123456789012345678901234567890123", POS_EINVAL);
	assert_non_null(strstr(e.msg, "loyalty number is too long"));
	norm_bad("loyalty:", POS_EINVAL);
	norm_bad("loyalty:(1234)", POS_EINVAL);
}

static void phone_numbers_become_e164(void **st)
{
	(void)st;
	assert_string_equal(norm_ok("phone:+1 555 010 0000", TID_PHONE), "phone:+15550100000");
	assert_string_equal(norm_ok("phone:+44 (20) 7946-0000", TID_PHONE), "phone:+442079460000");
	/* Without the prefix a leading '+' is enough to know it is a phone. */
	assert_string_equal(norm_ok("+1 555 010 0000", TID_PHONE), "phone:+15550100000");
	assert_string_equal(norm_ok("+44 (20) 7946-0000", TID_PHONE), "phone:+442079460000");
	assert_string_equal(norm_ok("phone:+1 (555) 010.0000", TID_PHONE), "phone:+15550100000");
	assert_string_equal(norm_ok("phone:+4915123456", TID_PHONE), "phone:+4915123456");
	assert_string_equal(norm_ok("phone:+123456789012345", TID_PHONE),
			    "phone:+123456789012345");
}

static void phone_numbers_need_plus_and_a_sane_length(void **st)
{
	pos_err e;

	(void)st;
	e = norm_bad("phone:1 555 010 0000", POS_EINVAL);
	assert_non_null(strstr(e.msg, "must start with '+'"));
	e = norm_bad("phone:(555) 010-0000", POS_EINVAL);
	assert_non_null(strstr(e.msg, "must start with '+'"));
	e = norm_bad("phone:+0 555 010 0000", POS_EINVAL);
	assert_non_null(strstr(e.msg, "cannot start with zero"));
	e = norm_bad("phone:+1234567", POS_EINVAL);
	assert_non_null(strstr(e.msg, "phone number is too short"));
	e = norm_bad("phone:+1234567890123456", POS_EINVAL);
	assert_non_null(strstr(e.msg, "phone number is too long"));
	e = norm_bad("phone:+44 ((20)) 7946-0000", POS_EINVAL);
	assert_non_null(strstr(e.msg, "nested"));
	e = norm_bad("phone:+44 (20 7946-0000", POS_EINVAL);
	assert_non_null(strstr(e.msg, "unbalanced"));
	e = norm_bad("phone:+44 20) 7946-0000", POS_EINVAL);
	assert_non_null(strstr(e.msg, "unbalanced"));
	norm_bad("phone:+", POS_EINVAL);
	norm_bad("phone:++15550100000", POS_EINVAL);
	norm_bad("phone:+1 555 010 0000 ext 12", POS_EINVAL);
}

static void identifiers_need_a_kind(void **st)
{
	pos_err e;

	(void)st;
	e = norm_bad("4242424242424242", POS_EINVAL);
	assert_non_null(strstr(e.msg, "card:, loyalty: or phone:"));
	norm_bad("", POS_EINVAL);
	norm_bad("   ", POS_EINVAL);
	norm_bad("email:someone@example.com", POS_EINVAL);
	norm_bad("card", POS_EINVAL);
}

static void separators_must_sit_between_digits(void **st)
{
	pos_err e;

	(void)st;
	e = norm_bad("card:-4242424242424242", POS_EINVAL);
	assert_non_null(strstr(e.msg, "start and end with a digit"));
	norm_bad("card:4242424242424242-", POS_EINVAL);
	norm_bad("card:4242424242424242.", POS_EINVAL);
	e = norm_bad("card:4242x4242x4242x4242", POS_EINVAL);
	assert_non_null(strstr(e.msg, "may only hold digits"));
	norm_bad("card:4242/4242/4242/4242", POS_EINVAL);
	norm_bad("card:4242\t4242 4242 4242", POS_EINVAL);
	norm_bad("card:(4242) 4242 4242 4242", POS_EINVAL);
}

static void over_long_input_is_refused(void **st)
{
	char big[300];

	(void)st;
	memcpy(big, "loyalty:", 8);
	memset(big + 8, ' ', sizeof big - 8);
	big[9] = '1';
	memcpy(big + 250, "1234", 4);
	big[sizeof big - 1] = '\0';
	norm_bad(big, POS_ETOOBIG);
	assert_int_equal(tid_normalize(NULL, big, NULL, NULL), POS_EINVAL);
}

static void kind_pointer_may_be_null(void **st)
{
	char out[TID_MAX];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(tid_normalize("loyalty:1234", out, NULL, &e), 0);
	assert_string_equal(out, "loyalty:1234");
}

static void pan_from_a_magstripe_becomes_a_card_tid(void **st)
{
	char out[TID_MAX];
	pos_err e = { 0 };

	(void)st;
	for (size_t i = 0; i < sizeof luhn_good / sizeof luhn_good[0]; i++) {
		assert_int_equal(tid_from_pan(luhn_good[i], out, &e), 0);
		assert_memory_equal(out, "card:", 5);
		assert_string_equal(out + 5, luhn_good[i]);
	}
	memset(out, 'x', sizeof out);
	assert_int_equal(tid_from_pan("4242424242424241", out, &e), POS_EINVAL);
	assert_string_equal(e.msg, "card number fails the Luhn check");
	assert_string_equal(out, "");
	assert_int_equal(tid_from_pan("4242 4242 4242 4242", out, &e), POS_EINVAL);
	assert_no_digits(e.msg);
	assert_int_equal(tid_from_pan("12345678903", out, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "too short"));
	assert_int_equal(tid_from_pan("12345678901234567894", out, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "too long"));
	assert_int_equal(tid_from_pan("", out, &e), POS_EINVAL);
	assert_int_equal(tid_from_pan(NULL, out, &e), POS_EINVAL);
}

static void scanned_loyalty_code_becomes_a_loyalty_tid(void **st)
{
	char out[TID_MAX];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(tid_from_loyalty("0412345678901", out, &e), 0);
	assert_string_equal(out, "loyalty:0412345678901");
	assert_int_equal(tid_from_loyalty("12345678901234567890123456789012", out, &e), 0);
	assert_int_equal(tid_from_loyalty("123456789012345678901234567890123", out, &e),
			 POS_EINVAL);
	assert_string_equal(out, "");
	assert_int_equal(tid_from_loyalty("123", out, &e), POS_EINVAL);
	assert_int_equal(tid_from_loyalty("1234 5678", out, &e), POS_EINVAL);
	assert_no_digits(e.msg);
	assert_int_equal(tid_from_loyalty("]E01234", out, &e), POS_EINVAL);
}

/* Every failure path, each with digits that would be recognisable. */
static void no_error_message_carries_a_digit_of_the_input(void **st)
{
	static const char *const bad[] = {
		"card:4242424242424241", "card:42424242424", "card:42424242424242424242",
		"card:4242x42424242", "card:-4242424242424242", "4242424242424242",
		"loyalty:987", "loyalty:987654321098765432109876543210987", "loyalty:9876a",
		"phone:98765432", "phone:+09876543210", "phone:+9876", "phone:+9876543210987654",
		"phone:+98 (76 54321", "phone:+98 ((76)) 54321", "phone:+98 76) 54321",
		"phone:+9876543210#", "email:9876543210", "card:", "+",
	};
	char out[TID_MAX];
	pos_err e;

	(void)st;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&e, 0, sizeof e);
		if (tid_normalize(bad[i], out, NULL, &e) == 0)
			fail_msg("'%s' accepted", bad[i]);
		assert_no_digits(e.msg);
		assert_string_equal(out, "");
	}
	assert_int_equal(tid_from_pan("9876543210x", out, &e), POS_EINVAL);
	assert_no_digits(e.msg);
	assert_int_equal(tid_from_loyalty("98x", out, &e), POS_EINVAL);
	assert_no_digits(e.msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(luhn_accepts_every_public_test_card),
		cmocka_unit_test(luhn_refuses_the_cards_the_reference_marks_as_failing),
		cmocka_unit_test(card_separators_are_dropped),
		cmocka_unit_test(card_length_is_twelve_to_nineteen),
		cmocka_unit_test(card_failing_luhn_is_refused),
		cmocka_unit_test(loyalty_numbers_are_four_to_thirty_two_digits),
		cmocka_unit_test(phone_numbers_become_e164),
		cmocka_unit_test(phone_numbers_need_plus_and_a_sane_length),
		cmocka_unit_test(identifiers_need_a_kind),
		cmocka_unit_test(separators_must_sit_between_digits),
		cmocka_unit_test(over_long_input_is_refused),
		cmocka_unit_test(kind_pointer_may_be_null),
		cmocka_unit_test(pan_from_a_magstripe_becomes_a_card_tid),
		cmocka_unit_test(scanned_loyalty_code_becomes_a_loyalty_tid),
		cmocka_unit_test(no_error_message_carries_a_digit_of_the_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
