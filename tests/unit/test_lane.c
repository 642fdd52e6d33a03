/* lane: the transaction as the cashier sees it, and the basket body as
 * central receives it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lane.h"

#define TXN "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c3"
#define TXN2 "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c4"
#define MILK "09520000000011"
#define BREAD "09520000000028"
#define APPLES "09520000000035"
#define KID "1f0c2a3b4c5d6e7f"
#define ENC1 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-P0BBQkNERQ"
#define ENC2 "ZZECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-P0BBQkNERQ"
/* 2026-11-23T12:00:00.000Z */
#define TS_MS 1795435200000LL

static struct lane *open_lane(void)
{
	struct lane *l = NULL;
	pos_err e;

	assert_int_equal(lane_new(&l, &e), 0);
	assert_int_equal(lane_begin(l, TXN, &e), 0);
	return l;
}

static void scan(struct lane *l, const char *gtin, long price, long want_qty)
{
	struct lane_item it;
	pos_err e;

	if (lane_add_item(l, gtin, price, &it, &e) < 0)
		fail_msg("scan %s: %s", gtin, e.msg);
	assert_string_equal(it.gtin, gtin);
	assert_int_equal(it.qty, want_qty);
}

static json_t *body_of(struct lane *l)
{
	char *body = NULL;
	size_t len = 0;
	json_t *v;
	json_error_t je;
	pos_err e;

	if (lane_body(l, TS_MS, &body, &len, &e) < 0)
		fail_msg("body: %s", e.msg);
	assert_int_equal(len, strlen(body));
	v = json_loads(body, 0, &je);
	assert_non_null(v);
	free(body);
	return v;
}

static void a_new_lane_is_closed_and_takes_nothing(void **st)
{
	struct lane *l = NULL;
	char *body = NULL;
	size_t len;
	pos_err e;

	(void)st;
	assert_int_equal(lane_new(&l, &e), 0);
	assert_false(lane_is_open(l));
	assert_string_equal(lane_txn(l), "");
	assert_int_equal(lane_add_item(l, MILK, -1, NULL, &e), POS_EINVAL);
	assert_int_equal(lane_void(l, NULL, &e), POS_EINVAL);
	assert_int_equal(lane_body(l, TS_MS, &body, &len, &e), POS_EINVAL);
	assert_int_equal(lane_begin(l, "not-a-uuid", &e), POS_EINVAL);
	assert_int_equal(lane_begin(l, TXN, &e), 0);
	assert_int_equal(lane_begin(l, TXN2, &e), POS_EINVAL);
	assert_string_equal(lane_txn(l), TXN);
	lane_free(l);
}

static void the_same_gtin_twice_is_quantity_two(void **st)
{
	struct lane *l = open_lane();

	(void)st;
	scan(l, MILK, -1, 1);
	scan(l, BREAD, -1, 1);
	scan(l, BREAD, -1, 2);
	assert_int_equal(lane_lines(l), 2);
	assert_int_equal(lane_units(l), 3);
	assert_string_equal(lane_line(l, 0)->gtin, MILK);
	assert_string_equal(lane_line(l, 1)->gtin, BREAD);
	assert_int_equal(lane_line(l, 1)->qty, 2);
	assert_null(lane_line(l, 2));
	lane_free(l);
}

static void void_takes_back_the_last_scan_each_time(void **st)
{
	struct lane *l = open_lane();
	struct lane_item it;
	pos_err e;

	(void)st;
	scan(l, MILK, -1, 1);
	scan(l, BREAD, -1, 1);
	scan(l, MILK, -1, 2);
	assert_int_equal(lane_void(l, &it, &e), 0);
	assert_string_equal(it.gtin, MILK);
	assert_int_equal(it.qty, 1);
	assert_int_equal(lane_void(l, &it, &e), 0);
	assert_string_equal(it.gtin, BREAD);
	assert_int_equal(it.qty, 0);
	assert_int_equal(lane_lines(l), 1);
	assert_int_equal(lane_void(l, &it, &e), 0);
	assert_string_equal(it.gtin, MILK);
	assert_int_equal(it.qty, 0);
	assert_int_equal(lane_lines(l), 0);
	assert_int_equal(lane_void(l, &it, &e), POS_ENOTFOUND);
	assert_true(lane_is_open(l));
	lane_free(l);
}

static void a_voided_line_leaves_the_basket_and_can_come_back(void **st)
{
	struct lane *l = open_lane();
	json_t *b, *items;
	pos_err e;

	(void)st;
	scan(l, MILK, -1, 1);
	scan(l, BREAD, -1, 1);
	assert_int_equal(lane_void(l, NULL, &e), 0);
	b = body_of(l);
	items = json_object_get(b, "items");
	assert_int_equal(json_array_size(items), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "gtin")),
			    MILK);
	json_decref(b);
	scan(l, BREAD, -1, 1);
	assert_int_equal(lane_lines(l), 2);
	lane_free(l);
}

static void the_body_is_exactly_the_design_shape(void **st)
{
	struct lane *l = open_lane();
	char *body = NULL;
	size_t len;
	pos_err e;

	(void)st;
	scan(l, MILK, -1, 1);
	scan(l, BREAD, -1, 1);
	scan(l, BREAD, -1, 2);
	assert_int_equal(lane_body(l, TS_MS, &body, &len, &e), 0);
	assert_string_equal(body, "{\"txn\":\"" TXN "\",\"ts\":\"2026-11-23T12:00:00.000Z\","
				  "\"items\":[{\"gtin\":\"" MILK "\",\"qty\":1},"
				  "{\"gtin\":\"" BREAD "\",\"qty\":2}]}");
	free(body);
	/* Building the body does not close the lane: the spool commit does. */
	assert_true(lane_is_open(l));
	lane_free(l);
}

static void an_unresolved_tid_travels_as_its_enctid(void **st)
{
	struct lane *l = open_lane();
	unsigned gen = 0;
	bool replaced = true;
	json_t *b, *t;
	pos_err e;

	(void)st;
	scan(l, MILK, -1, 1);
	assert_int_equal(lane_set_tid(l, TID_CARD, KID, ENC1, &gen, &replaced, &e), 0);
	assert_false(replaced);
	assert_true(gen > 0);
	assert_int_equal(lane_tid_kind(l), TID_CARD);
	b = body_of(l);
	t = json_object_get(b, "tid");
	assert_string_equal(json_string_value(json_object_get(t, "kid")), KID);
	assert_string_equal(json_string_value(json_object_get(t, "enc")), ENC1);
	assert_null(json_object_get(b, "hhid"));
	assert_null(json_object_get(b, "deident_tid"));
	json_decref(b);
	lane_free(l);
}

static void a_resolved_tid_travels_as_household_and_deident_tid_only(void **st)
{
	struct lane *l = open_lane();
	char hhid[DEIDENT_ID_LEN + 1], dtid[DEIDENT_ID_LEN + 1];
	unsigned char key[32] = { 1, 2, 3 };
	unsigned gen = 0;
	json_t *b;
	pos_err e;

	(void)st;
	assert_int_equal(deident_hhid_new(hhid, &e), 0);
	assert_int_equal(deident_tid(key, "card:4242424242424242", dtid, &e), 0);
	scan(l, MILK, -1, 1);
	assert_int_equal(lane_set_tid(l, TID_CARD, KID, ENC1, &gen, NULL, &e), 0);
	assert_int_equal(lane_set_household(l, gen, hhid, dtid, &e), 0);
	assert_true(lane_has_household(l));
	assert_string_equal(lane_hhid(l), hhid);
	b = body_of(l);
	assert_string_equal(json_string_value(json_object_get(b, "hhid")), hhid);
	assert_string_equal(json_string_value(json_object_get(b, "deident_tid")), dtid);
	assert_null(json_object_get(b, "tid"));
	json_decref(b);
	lane_free(l);
}

static void a_second_tid_replaces_the_first_and_its_late_answer_is_ignored(void **st)
{
	struct lane *l = open_lane();
	char hhid[DEIDENT_ID_LEN + 1], dtid[DEIDENT_ID_LEN + 1];
	unsigned char key[32] = { 9 };
	unsigned g1 = 0, g2 = 0;
	bool replaced = false;
	json_t *b;
	pos_err e;

	(void)st;
	assert_int_equal(deident_hhid_new(hhid, &e), 0);
	assert_int_equal(deident_tid(key, "phone:+15550100234", dtid, &e), 0);
	scan(l, MILK, -1, 1);
	assert_int_equal(lane_set_tid(l, TID_CARD, KID, ENC1, &g1, &replaced, &e), 0);
	assert_false(replaced);
	assert_int_equal(lane_set_household(l, g1, hhid, dtid, &e), 0);
	assert_int_equal(lane_set_tid(l, TID_PHONE, KID, ENC2, &g2, &replaced, &e), 0);
	assert_true(replaced);
	assert_int_not_equal(g1, g2);
	/* The first customer's household went with their TID. */
	assert_false(lane_has_household(l));
	assert_int_equal(lane_set_household(l, g1, hhid, dtid, &e), POS_ENOTFOUND);
	assert_false(lane_has_household(l));
	b = body_of(l);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "tid"), "enc")),
			    ENC2);
	json_decref(b);
	assert_int_equal(lane_set_household(l, g2, hhid, dtid, &e), 0);
	lane_free(l);
}

static void an_answer_after_the_transaction_closed_changes_nothing(void **st)
{
	struct lane *l = open_lane();
	char hhid[DEIDENT_ID_LEN + 1], dtid[DEIDENT_ID_LEN + 1];
	unsigned char key[32] = { 7 };
	unsigned g1 = 0, g2 = 0;
	pos_err e;

	(void)st;
	assert_int_equal(deident_hhid_new(hhid, &e), 0);
	assert_int_equal(deident_tid(key, "loyalty:9900000000011", dtid, &e), 0);
	assert_int_equal(lane_set_tid(l, TID_LOYALTY, KID, ENC1, &g1, NULL, &e), 0);
	lane_close(l);
	assert_int_equal(lane_set_household(l, g1, hhid, dtid, &e), POS_ENOTFOUND);
	/* The next customer's TID never shares a generation with the last. */
	assert_int_equal(lane_begin(l, TXN2, &e), 0);
	assert_int_equal(lane_set_tid(l, TID_LOYALTY, KID, ENC1, &g2, NULL, &e), 0);
	assert_int_not_equal(g1, g2);
	assert_int_equal(lane_set_household(l, g1, hhid, dtid, &e), POS_ENOTFOUND);
	lane_free(l);
}

static void a_malformed_answer_or_enctid_is_refused(void **st)
{
	struct lane *l = open_lane();
	unsigned gen = 0;
	pos_err e;

	(void)st;
	assert_int_equal(lane_set_tid(l, TID_CARD, "xyz", ENC1, &gen, NULL, &e), POS_EINVAL);
	assert_int_equal(lane_set_tid(l, TID_CARD, KID, "a+b/c=", &gen, NULL, &e), POS_EINVAL);
	assert_int_equal(lane_set_tid(l, 0, KID, ENC1, &gen, NULL, &e), POS_EINVAL);
	assert_false(lane_has_tid(l));
	assert_int_equal(lane_set_tid(l, TID_CARD, KID, ENC1, &gen, NULL, &e), 0);
	assert_int_equal(lane_set_household(l, gen, "hh_short", "dt_short", &e), POS_EINVAL);
	assert_false(lane_has_household(l));
	lane_free(l);
}

static void cancel_drops_everything(void **st)
{
	struct lane *l = open_lane();
	unsigned gen;
	pos_err e;

	(void)st;
	scan(l, MILK, -1, 1);
	assert_int_equal(lane_set_tid(l, TID_CARD, KID, ENC1, &gen, NULL, &e), 0);
	assert_int_equal(lane_add_offer(l, "9800000000012", NULL, &e), 0);
	lane_close(l);
	assert_false(lane_is_open(l));
	assert_int_equal(lane_lines(l), 0);
	assert_false(lane_has_tid(l));
	assert_int_equal(lane_offers(l), 0);
	assert_int_equal(lane_begin(l, TXN2, &e), 0);
	assert_int_equal(lane_lines(l), 0);
	assert_false(lane_has_tid(l));
	assert_int_equal(lane_void(l, NULL, &e), POS_ENOTFOUND);
	lane_free(l);
}

static void total_without_items_is_refused(void **st)
{
	struct lane *l = open_lane();
	unsigned gen;
	char *body = NULL;
	size_t len;
	pos_err e;

	(void)st;
	assert_int_equal(lane_set_tid(l, TID_CARD, KID, ENC1, &gen, NULL, &e), 0);
	assert_int_equal(lane_body(l, TS_MS, &body, &len, &e), POS_EINVAL);
	assert_null(body);
	assert_non_null(strstr(e.msg, "no items"));
	lane_free(l);
}

static void embedded_prices_add_up_and_void_takes_its_own_back(void **st)
{
	struct lane *l = open_lane();
	struct lane_item it;
	json_t *b, *item;
	pos_err e;

	(void)st;
	scan(l, APPLES, 250, 1);
	scan(l, APPLES, 199, 2);
	scan(l, MILK, -1, 1);
	b = body_of(l);
	item = json_array_get(json_object_get(b, "items"), 0);
	assert_int_equal(json_integer_value(json_object_get(item, "price_cents")), 449);
	item = json_array_get(json_object_get(b, "items"), 1);
	assert_null(json_object_get(item, "price_cents"));
	json_decref(b);
	assert_int_equal(lane_void(l, NULL, &e), 0); /* milk */
	assert_int_equal(lane_void(l, &it, &e), 0);  /* the 199 apples */
	assert_int_equal(it.qty, 1);
	assert_int_equal(it.price_cents, 250);
	/* A scan without a price makes the line's amount unknown. */
	scan(l, APPLES, -1, 2);
	assert_int_equal(lane_line(l, 0)->price_cents, -1);
	lane_free(l);
}

static void offers_are_listed_once(void **st)
{
	struct lane *l = open_lane();
	bool added = false;
	json_t *b, *offers;
	pos_err e;

	(void)st;
	scan(l, MILK, -1, 1);
	assert_int_equal(lane_add_offer(l, "9800000000012", &added, &e), 0);
	assert_true(added);
	assert_int_equal(lane_add_offer(l, "9800000000012", &added, &e), 0);
	assert_false(added);
	assert_int_equal(lane_add_offer(l, "bad code", &added, &e), POS_EINVAL);
	b = body_of(l);
	offers = json_object_get(b, "offers");
	assert_int_equal(json_array_size(offers), 1);
	assert_string_equal(json_string_value(json_array_get(offers, 0)), "9800000000012");
	json_decref(b);
	lane_free(l);
}

static void limits_hold(void **st)
{
	struct lane *l = open_lane();
	char gtin[32];
	pos_err e;

	(void)st;
	for (long i = 0; i < LANE_MAX_QTY; i++)
		assert_int_equal(lane_add_item(l, MILK, -1, NULL, &e), 0);
	assert_int_equal(lane_add_item(l, MILK, -1, NULL, &e), POS_ETOOBIG);
	assert_int_equal(lane_add_item(l, "09520000000012", -1, NULL, &e), POS_EINVAL);
	assert_int_equal(lane_add_item(l, MILK, -5, NULL, &e), POS_EINVAL);
	lane_close(l);
	assert_int_equal(lane_begin(l, TXN2, &e), 0);
	for (int i = 0; i < LANE_MAX_LINES; i++) {
		snprintf(gtin, sizeof gtin, "0952%09d", i);
		gtin[13] = (char)('0' + gtin_check_digit(gtin, 13));
		gtin[14] = '\0';
		assert_int_equal(lane_add_item(l, gtin, -1, NULL, &e), 0);
	}
	/* A line already there still counts up; a new one does not fit. */
	assert_int_equal(lane_add_item(l, MILK, -1, NULL, &e), 0);
	assert_int_equal(lane_add_item(l, "09520000099992", -1, NULL, &e), POS_ETOOBIG);
	assert_int_equal(lane_lines(l), LANE_MAX_LINES);
	lane_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_new_lane_is_closed_and_takes_nothing),
		cmocka_unit_test(the_same_gtin_twice_is_quantity_two),
		cmocka_unit_test(void_takes_back_the_last_scan_each_time),
		cmocka_unit_test(a_voided_line_leaves_the_basket_and_can_come_back),
		cmocka_unit_test(the_body_is_exactly_the_design_shape),
		cmocka_unit_test(an_unresolved_tid_travels_as_its_enctid),
		cmocka_unit_test(a_resolved_tid_travels_as_household_and_deident_tid_only),
		cmocka_unit_test(a_second_tid_replaces_the_first_and_its_late_answer_is_ignored),
		cmocka_unit_test(an_answer_after_the_transaction_closed_changes_nothing),
		cmocka_unit_test(a_malformed_answer_or_enctid_is_refused),
		cmocka_unit_test(cancel_drops_everything),
		cmocka_unit_test(total_without_items_is_refused),
		cmocka_unit_test(embedded_prices_add_up_and_void_takes_its_own_back),
		cmocka_unit_test(offers_are_listed_once),
		cmocka_unit_test(limits_hold),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
