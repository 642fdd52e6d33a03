/* receipt tokens: fresh ones are well-formed and differ; a basket carries
 * one as its SHA-256 only, the same whichever parser reads it; a malformed
 * one is refused; the lane's basket body carries the token it was given. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "basket.h"
#include "lane.h"
#include "receipt.h"

#define TXN "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c3"
#define NOW 1795438800000LL

static void fresh_tokens_are_base32_and_differ(void **st)
{
	char a[RECEIPT_TOKEN_LEN + 1], b[RECEIPT_TOKEN_LEN + 1];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(receipt_token_new(a, &e), 0);
	assert_int_equal(receipt_token_new(b, &e), 0);
	assert_int_equal(strlen(a), RECEIPT_TOKEN_LEN);
	assert_true(receipt_token_valid(a, strlen(a)));
	assert_true(receipt_token_valid(b, strlen(b)));
	assert_string_not_equal(a, b);
}

static void malformed_tokens_are_refused(void **st)
{
	(void)st;
	assert_true(receipt_token_valid("abcdefghijklmnopqrstuvwxya", 26));
	assert_false(receipt_token_valid("abcdefghijklmnopqrstuvwxy", 25));
	assert_false(receipt_token_valid("ABCDEFGHIJKLMNOPQRSTUVWXYA", 26)); /* upper case */
	assert_false(receipt_token_valid("abcdefghijklmnopqrstuvwx1a", 26)); /* 1 is not base32 */
	assert_false(receipt_token_valid("abcdefghijklmnopqrstuvwxyb", 26)); /* bits past 128 */
	assert_false(receipt_token_valid("abcdefghijklmnopqrstuvwxy\0", 26));
}

static void basket_keeps_the_hash_the_same_on_both_parsers(void **st)
{
	const char *fast = "{\"txn\":\"" TXN "\",\"ts\":\"2026-11-23T12:00:00Z\","
			   "\"items\":[{\"gtin\":\"09520000000011\",\"qty\":1}],"
			   "\"receipt\":\"abcdefghijklmnopqrstuvwxya\"}";
	/* An escaped character sends it down the jansson path. */
	const char *slow = "{\"txn\":\"" TXN "\",\"ts\":\"2026-11-23T12:00:00Z\","
			   "\"items\":[{\"gtin\":\"09520000000011\",\"qty\":1}],"
			   "\"receipt\":\"abcdefghijklmnopqrstuvwxy\\u0061\"}";
	struct basket_in a, b, c;
	unsigned char h[32];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(basket_parse(fast, strlen(fast), 4096, "S1", "T1", NOW, &a, &e), 0);
	assert_int_equal(basket_parse(slow, strlen(slow), 4096, "S1", "T1", NOW, &b, &e), 0);
	assert_true(a.b.has_receipt && b.b.has_receipt);
	assert_int_equal(receipt_token_hash("abcdefghijklmnopqrstuvwxya", 26, h), 0);
	assert_memory_equal(a.b.receipt, h, 32);
	assert_memory_equal(b.b.receipt, h, 32);
	assert_memory_equal(a.b.digest, b.b.digest, 32);
	/* Without the receipt, another digest: a changed token is a conflict. */
	{
		const char *none = "{\"txn\":\"" TXN "\",\"ts\":\"2026-11-23T12:00:00Z\","
				   "\"items\":[{\"gtin\":\"09520000000011\",\"qty\":1}]}";
		assert_int_equal(basket_parse(none, strlen(none), 4096, "S1", "T1", NOW, &c, &e), 0);
		assert_false(c.b.has_receipt);
		assert_memory_not_equal(a.b.digest, c.b.digest, 32);
		basket_free(&c);
	}
	basket_free(&a);
	basket_free(&b);
}

static void basket_refuses_a_malformed_receipt(void **st)
{
	const char *bad = "{\"txn\":\"" TXN "\",\"ts\":\"2026-11-23T12:00:00Z\","
			  "\"items\":[{\"gtin\":\"09520000000011\",\"qty\":1}],"
			  "\"receipt\":\"<script>\"}";
	struct basket_in a;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(basket_parse(bad, strlen(bad), 4096, "S1", "T1", NOW, &a, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "receipt"));
	assert_null(strstr(e.msg, "<script>"));
}

static void lane_body_carries_the_receipt(void **st)
{
	struct lane *l = NULL;
	pos_err e = { 0 };
	char *body = NULL;
	size_t len = 0;

	(void)st;
	assert_int_equal(lane_new(&l, &e), 0);
	assert_int_equal(lane_begin(l, TXN, &e), 0);
	assert_int_equal(lane_add_item(l, "09520000000011", -1, NULL, &e), 0);
	assert_int_equal(lane_set_receipt(l, "not a token", &e), POS_EINVAL);
	assert_int_equal(lane_set_receipt(l, "abcdefghijklmnopqrstuvwxya", &e), 0);
	assert_int_equal(lane_body(l, NOW, &body, &len, &e), 0);
	assert_non_null(strstr(body, "\"receipt\":\"abcdefghijklmnopqrstuvwxya\""));
	free(body);
	lane_close(l);
	assert_int_equal(lane_begin(l, "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c4", &e), 0);
	assert_int_equal(lane_add_item(l, "09520000000011", -1, NULL, &e), 0);
	assert_int_equal(lane_body(l, NOW, &body, &len, &e), 0);
	assert_null(strstr(body, "receipt"));
	free(body);
	lane_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fresh_tokens_are_base32_and_differ),
		cmocka_unit_test(malformed_tokens_are_refused),
		cmocka_unit_test(basket_keeps_the_hash_the_same_on_both_parsers),
		cmocka_unit_test(basket_refuses_a_malformed_receipt),
		cmocka_unit_test(lane_body_carries_the_receipt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
