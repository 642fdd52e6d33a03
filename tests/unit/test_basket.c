/* basket: every field of a posted basket is validated, every rejection has
 * its reason without the value, the digest is canonical, and the ingest
 * writer commits concurrent baskets together, answering each. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basket.h"
#include "deident.h"
#include "ingest.h"
#include "jsonx.h"
#include "timeutil.h"

#define TXN "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c3"
#define GTIN_A "09520000000011"
#define GTIN_B "09520000000028"
#define TS "2026-11-23T12:00:00Z"
#define TS_MS 1795435200000LL
#define NOW (TS_MS + 3600000LL)

static char hhid[DEIDENT_ID_LEN + 1];
static char dtid[DEIDENT_ID_LEN + 1];

static int setup_ids(void **st)
{
	unsigned char k[32] = { 7 };
	pos_err e = { 0 };

	(void)st;
	if (deident_hhid_new(hhid, &e) < 0 || deident_tid(k, "loyalty:9900000000011", dtid, &e) < 0)
		return -1;
	return 0;
}

/* A valid basket with every optional field but tid. */
static json_t *good(void)
{
	json_t *b = json_pack("{s:s, s:s, s:[{s:s, s:i, s:i}, {s:s, s:i}], s:s, s:s, s:[s]}",
			      "txn", TXN, "ts", TS, "items", "gtin", GTIN_A, "qty", 2,
			      "price_cents", 199, "gtin", GTIN_B, "qty", 1, "hhid", hhid,
			      "deident_tid", dtid, "offers", "9800000000017");
	assert_non_null(b);
	return b;
}

static json_t *item(json_t *b, size_t i)
{
	return json_array_get(json_object_get(b, "items"), i);
}

/* Expects b (consumed) to be refused as invalid with msg_part in the
 * message. */
static void refused(json_t *b, const char *msg_part)
{
	struct basket_in in;
	pos_err e = { 0 };

	assert_int_equal(basket_from_json(b, "S1", "T1", NOW, &in, &e), POS_EINVAL);
	if (!strstr(e.msg, msg_part))
		fail_msg("message '%s' lacks '%s'", e.msg, msg_part);
	assert_null(in.b.items);
	basket_free(&in);
	json_decref(b);
}

static void a_valid_basket_fills_every_field(void **st)
{
	struct basket_in in;
	pos_err e = { 0 };
	json_t *b = good();
	unsigned char zero[32] = { 0 };

	(void)st;
	assert_int_equal(basket_from_json(b, "S1", "T1", NOW, &in, &e), 0);
	assert_string_equal(in.b.txn, TXN);
	assert_string_equal(in.txn_sent, TXN);
	assert_true(in.b.ts_ms == TS_MS);
	assert_string_equal(in.b.store, "S1");
	assert_string_equal(in.b.terminal, "T1");
	assert_string_equal(in.b.hhid, hhid);
	assert_string_equal(in.b.deident, dtid);
	assert_int_equal(in.b.n_items, 2);
	assert_string_equal(in.b.items[0].gtin, GTIN_A);
	assert_int_equal(in.b.items[0].qty, 2);
	assert_int_equal(in.b.items[0].price_cents, 199);
	assert_string_equal(in.b.items[1].gtin, GTIN_B);
	assert_int_equal(in.b.items[1].price_cents, -1);
	assert_false(in.has_tid);
	assert_memory_not_equal(in.b.digest, zero, 32);
	assert_int_equal(in.b.n_offers, 1);
	assert_string_equal(in.b.offers[0].code, "9800000000017");
	assert_int_equal(in.b.offers[0].state, STORE_OFFER_PENDING);
	basket_free(&in);
	assert_null(in.b.offers);
	json_decref(b);
}

static void offer_codes_are_kept_once_each_for_the_store(void **st)
{
	struct basket_in in;
	pos_err e = { 0 };
	json_t *b = good();

	(void)st;
	json_object_set_new(b, "offers",
			    json_pack("[s,s,s]", "9800000000014", "9811111111116", "9800000000014"));
	assert_int_equal(basket_from_json(b, "S1", "T1", NOW, &in, &e), 0);
	assert_int_equal(in.b.n_offers, 2);
	assert_string_equal(in.b.offers[0].code, "9800000000014");
	assert_string_equal(in.b.offers[1].code, "9811111111116");
	basket_free(&in);
	json_object_set_new(b, "offers", json_array());
	assert_int_equal(basket_from_json(b, "S1", "T1", NOW, &in, &e), 0);
	assert_int_equal(in.b.n_offers, 0);
	basket_free(&in);
	json_decref(b);
}

static void a_minimal_basket_leaves_household_fields_empty(void **st)
{
	struct basket_in in;
	pos_err e = { 0 };
	const char *s = "{\"txn\":\"" TXN "\",\"ts\":\"" TS "\",\"items\":[{\"gtin\":\"" GTIN_A
			"\",\"qty\":1,\"price_cents\":null}],\"hhid\":null}";

	(void)st;
	assert_int_equal(basket_parse(s, strlen(s), 4096, "S1", "T1", NOW, &in, &e), 0);
	assert_string_equal(in.b.hhid, "");
	assert_string_equal(in.b.deident, "");
	assert_int_equal(in.b.items[0].price_cents, -1);
	basket_free(&in);
}

/* basket_parse reads the usual shape without jansson: the result, digest
 * included, must equal what basket_from_json makes of the same object, and
 * the same basket re-encoded (escapes, spacing, key order) must give the
 * same digest through the jansson path. */
static void the_fast_parser_fills_what_the_jansson_path_fills(void **st)
{
	struct basket_in a, b, c;
	pos_err e = { 0 };
	json_t *o = good();
	char *body;
	char alt[1024];

	(void)st;
	json_array_append_new(json_object_get(o, "offers"), json_string("9800000000017"));
	body = json_dumps(o, JSON_COMPACT);
	assert_non_null(body);
	assert_int_equal(basket_parse(body, strlen(body), 4096, "S1", "T1", NOW, &a, &e), 0);
	assert_int_equal(basket_from_json(o, "S1", "T1", NOW, &b, &e), 0);
	assert_memory_equal(a.b.digest, b.b.digest, sizeof a.b.digest);
	assert_string_equal(a.b.txn, b.b.txn);
	assert_string_equal(a.txn_sent, b.txn_sent);
	assert_int_equal(a.b.ts_ms, b.b.ts_ms);
	assert_string_equal(a.b.hhid, b.b.hhid);
	assert_string_equal(a.b.deident, b.b.deident);
	assert_string_equal(a.b.store, "S1");
	assert_string_equal(a.b.terminal, "T1");
	assert_int_equal(a.b.n_items, 2);
	assert_int_equal(a.b.n_items, b.b.n_items);
	for (size_t i = 0; i < a.b.n_items; i++) {
		assert_string_equal(a.b.items[i].gtin, b.b.items[i].gtin);
		assert_int_equal(a.b.items[i].qty, b.b.items[i].qty);
		assert_int_equal(a.b.items[i].price_cents, b.b.items[i].price_cents);
	}
	assert_int_equal(a.b.n_offers, 1);
	assert_string_equal(a.b.offers[0].code, "9800000000017");
	/* An escape sends the body through jansson: the same digest. */
	snprintf(alt, sizeof alt,
		 "{ \"items\" : [ {\"qty\":2,\"gtin\":\"\\u0030%s\",\"price_cents\":199},"
		 "{\"gtin\":\"%s\",\"qty\":1} ], \"ts\":\"%s\", \"txn\":\"%s\","
		 "\"hhid\":\"%s\",\"deident_tid\":\"%s\","
		 "\"offers\":[\"9800000000017\",\"9800000000017\"] }\n",
		 &GTIN_A[1], GTIN_B, TS, TXN, hhid, dtid);
	assert_int_equal(basket_parse(alt, strlen(alt), 4096, "S1", "T1", NOW, &c, &e), 0);
	assert_memory_equal(a.b.digest, c.b.digest, sizeof a.b.digest);
	basket_free(&c);
	/* Other content is another digest, and a bad field is still refused. */
	alt[strlen(alt) - 5] = ' '; /* drops the second offer's closing quote */
	assert_int_equal(basket_parse(alt, strlen(alt), 4096, "S1", "T1", NOW, &c, &e),
			 POS_EINVAL);
	snprintf(alt, sizeof alt,
		 "{\"txn\":\"%s\",\"ts\":\"%s\",\"items\":[{\"gtin\":\"%s\",\"qty\":3}]}", TXN, TS,
		 GTIN_A);
	assert_int_equal(basket_parse(alt, strlen(alt), 4096, "S1", "T1", NOW, &c, &e), 0);
	assert_memory_not_equal(a.b.digest, c.b.digest, sizeof a.b.digest);
	basket_free(&c);
	snprintf(alt, sizeof alt,
		 "{\"txn\":\"%s\",\"ts\":\"%s\",\"items\":[{\"gtin\":\"%s\",\"qty\":0}]}", TXN, TS,
		 GTIN_A);
	assert_int_equal(basket_parse(alt, strlen(alt), 4096, "S1", "T1", NOW, &c, &e),
			 POS_EINVAL);
	assert_non_null(strstr(e.msg, "qty"));
	snprintf(alt, sizeof alt,
		 "{\"txn\":\"%s\",\"txn\":\"%s\",\"ts\":\"%s\",\"items\":[{\"gtin\":\"%s\",\"qty\":1}]}",
		 TXN, TXN, TS, GTIN_A);
	assert_int_equal(basket_parse(alt, strlen(alt), 4096, "S1", "T1", NOW, &c, &e),
			 POS_EINVAL);
	basket_free(&a);
	basket_free(&b);
	free(body);
	json_decref(o);
}

static void a_carried_enctid_is_kept_for_resolution(void **st)
{
	struct basket_in in;
	pos_err e = { 0 };
	json_t *b = good();

	(void)st;
	json_object_set_new(b, "tid", json_pack("{s:s,s:s}", "kid", "0123456789abcdef", "enc",
						"AAAA-_zz"));
	assert_int_equal(basket_from_json(b, "S1", "T1", NOW, &in, &e), 0);
	assert_true(in.has_tid);
	assert_string_equal(in.tid_kid, "0123456789abcdef");
	assert_string_equal(in.tid_enc, "AAAA-_zz");
	basket_free(&in);
	json_decref(b);
}

static void digest(json_t *b, const char *store, const char *term, unsigned char out[32])
{
	struct basket_in in;
	pos_err e = { 0 };

	assert_int_equal(basket_from_json(b, store, term, NOW, &in, &e), 0);
	memcpy(out, in.b.digest, 32);
	basket_free(&in);
	json_decref(b);
}

static void the_digest_is_over_content_not_bytes(void **st)
{
	unsigned char d0[32], d1[32];
	json_t *b;

	(void)st;
	digest(good(), "S1", "T1", d0);
	/* Re-encoded: upper-case txn, the same instant in another offset, keys
	 * in another order. */
	b = json_pack("{s:[s], s:s, s:s, s:[{s:i, s:s, s:i}, {s:i, s:s}], s:s, s:s}", "offers",
		      "9800000000017", "deident_tid", dtid, "hhid", hhid, "items", "qty", 2,
		      "gtin", GTIN_A, "price_cents", 199, "qty", 1, "gtin", GTIN_B, "ts",
		      "2026-11-23T13:00:00+01:00", "txn", "0193A5F2-6C1E-7B3A-9D2E-41F0C6A1B2C3");
	digest(b, "S1", "T1", d1);
	assert_memory_equal(d0, d1, 32);
}

static void the_digest_changes_with_any_field(void **st)
{
	unsigned char d0[32], d1[32];
	json_t *b;

	(void)st;
	digest(good(), "S1", "T1", d0);

	digest(good(), "S1", "T2", d1);
	assert_memory_not_equal(d0, d1, 32);
	digest(good(), "S2", "T1", d1);
	assert_memory_not_equal(d0, d1, 32);

	b = good();
	json_object_set_new(item(b, 0), "qty", json_integer(3));
	digest(b, "S1", "T1", d1);
	assert_memory_not_equal(d0, d1, 32);

	b = good();
	json_object_del(item(b, 0), "price_cents");
	digest(b, "S1", "T1", d1);
	assert_memory_not_equal(d0, d1, 32);

	b = good();
	json_object_set_new(b, "offers", json_pack("[s]", "9800000000024"));
	digest(b, "S1", "T1", d1);
	assert_memory_not_equal(d0, d1, 32);

	b = good();
	json_object_del(b, "deident_tid");
	digest(b, "S1", "T1", d1);
	assert_memory_not_equal(d0, d1, 32);

	b = good();
	json_object_set_new(b, "ts", json_string("2026-11-23T12:00:00.001Z"));
	digest(b, "S1", "T1", d1);
	assert_memory_not_equal(d0, d1, 32);

	/* Item order is content: two swapped lines are another basket. */
	b = json_pack("{s:s, s:s, s:[{s:s, s:i}, {s:s, s:i, s:i}], s:s, s:s, s:[s]}", "txn", TXN,
		      "ts", TS, "items", "gtin", GTIN_B, "qty", 1, "gtin", GTIN_A, "qty", 2,
		      "price_cents", 199, "hhid", hhid, "deident_tid", dtid, "offers",
		      "9800000000017");
	digest(b, "S1", "T1", d1);
	assert_memory_not_equal(d0, d1, 32);
}

static void top_level_rejections(void **st)
{
	json_t *b;

	(void)st;
	refused(json_array(), "must be a JSON object");
	b = good();
	json_object_set_new(b, "extra", json_true());
	refused(b, "unknown field 'extra'");
	b = good();
	json_object_set_new(b, "4242424242424242", json_true());
	refused(b, "unknown field (name not shown)");
}

static void txn_rejections(void **st)
{
	json_t *b;

	(void)st;
	b = good();
	json_object_del(b, "txn");
	refused(b, "'txn' is required");
	b = good();
	json_object_set_new(b, "txn", json_integer(5));
	refused(b, "'txn' must be a string");
	b = good();
	json_object_set_new(b, "txn", json_string("nope"));
	refused(b, "txn must be a UUID");
	b = good();
	json_object_set_new(b, "txn", json_string("0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2cz"));
	refused(b, "txn must be a UUID");
	b = good();
	json_object_set_new(b, "txn", json_string(TXN "0"));
	refused(b, "txn");
	b = good();
	json_object_set_new(b, "txn", json_string("00000000-0000-0000-0000-000000000000"));
	refused(b, "txn must not be the nil UUID");
	b = good();
	json_object_set_new(b, "txn", json_string("550e8400-e29b-41d4-a716-446655440000"));
	refused(b, "txn must be a UUIDv7");
	b = good();
	/* Version 7 with the wrong variant. */
	json_object_set_new(b, "txn", json_string("0193a5f2-6c1e-7b3a-cd2e-41f0c6a1b2c3"));
	refused(b, "txn must be a UUIDv7");
}

static void ts_rejections(void **st)
{
	json_t *b;

	(void)st;
	b = good();
	json_object_del(b, "ts");
	refused(b, "'ts' is required");
	b = good();
	json_object_set_new(b, "ts", json_string("yesterday"));
	refused(b, "ts must be an RFC 3339 time");
	b = good();
	json_object_set_new(b, "ts", json_string("2026-11-23"));
	refused(b, "ts must be an RFC 3339 time");
	b = good();
	json_object_set_new(b, "ts", json_integer(TS_MS));
	refused(b, "'ts' must be a string");
	b = good();
	json_object_set_new(b, "ts", json_string("1999-12-31T23:59:59Z"));
	refused(b, "ts");
	b = good();
	json_object_set_new(b, "ts", json_string("2026-11-24T13:00:01Z"));
	refused(b, "ts must lie between 2000-01-01 and a day from now");
}

static void a_lane_clock_up_to_a_day_ahead_is_accepted(void **st)
{
	struct basket_in in;
	pos_err e = { 0 };
	json_t *b = good();

	(void)st;
	json_object_set_new(b, "ts", json_string("2026-11-24T13:00:00Z"));
	assert_int_equal(basket_from_json(b, "S1", "T1", NOW, &in, &e), 0);
	basket_free(&in);
	json_decref(b);
}

static void items_rejections(void **st)
{
	json_t *b, *many;

	(void)st;
	b = good();
	json_object_del(b, "items");
	refused(b, "'items' is required");
	b = good();
	json_object_set_new(b, "items", json_object());
	refused(b, "'items' must be an array");
	b = good();
	json_object_set_new(b, "items", json_array());
	refused(b, "1 to 1000 items");
	b = good();
	many = json_array();
	for (int i = 0; i < BASKET_MAX_ITEMS + 1; i++)
		json_array_append_new(many, json_pack("{s:s,s:i}", "gtin", GTIN_A, "qty", 1));
	json_object_set_new(b, "items", many);
	refused(b, "1 to 1000 items");
	b = good();
	json_array_append_new(json_object_get(b, "items"), json_string(GTIN_A));
	refused(b, "items[2] must be an object");
}

static void a_basket_of_exactly_the_item_cap_is_accepted(void **st)
{
	struct basket_in in;
	pos_err e = { 0 };
	json_t *b = good(), *many = json_array();

	(void)st;
	for (int i = 0; i < BASKET_MAX_ITEMS; i++)
		json_array_append_new(many, json_pack("{s:s,s:i}", "gtin", GTIN_A, "qty", 1));
	json_object_set_new(b, "items", many);
	assert_int_equal(basket_from_json(b, "S1", "T1", NOW, &in, &e), 0);
	assert_int_equal(in.b.n_items, BASKET_MAX_ITEMS);
	basket_free(&in);
	json_decref(b);
}

static void item_field_rejections(void **st)
{
	json_t *b;

	(void)st;
	b = good();
	json_object_set_new(item(b, 1), "name", json_string("milk"));
	refused(b, "items[1]: unknown field 'name'");
	b = good();
	json_object_del(item(b, 0), "gtin");
	refused(b, "items[0]: field 'gtin' is required");
	b = good();
	json_object_set_new(item(b, 0), "gtin", json_integer(9520000000011LL));
	refused(b, "items[0]: field 'gtin' must be a string");
	b = good();
	json_object_set_new(item(b, 0), "gtin", json_string("9520000000011"));
	refused(b, "items[0]: gtin must be 14 digits");
	b = good();
	json_object_set_new(item(b, 0), "gtin", json_string("095200000000111"));
	refused(b, "items[0]");
	b = good();
	json_object_set_new(item(b, 0), "gtin", json_string("0952000000001X"));
	refused(b, "items[0]: gtin must be 14 digits");
	b = good();
	json_object_set_new(item(b, 0), "gtin", json_string("09520000000012"));
	refused(b, "items[0]: gtin must be 14 digits with a valid check digit");
	b = good();
	json_object_del(item(b, 1), "qty");
	refused(b, "items[1]: field 'qty' is required");
	b = good();
	json_object_set_new(item(b, 0), "qty", json_string("2"));
	refused(b, "items[0]: field 'qty' must be an integer");
	b = good();
	json_object_set_new(item(b, 0), "qty", json_real(1.5));
	refused(b, "items[0]: field 'qty' must be an integer");
	b = good();
	json_object_set_new(item(b, 0), "qty", json_integer(0));
	refused(b, "items[0]: field 'qty' must be between 1 and 9999");
	b = good();
	json_object_set_new(item(b, 0), "qty", json_integer(10000));
	refused(b, "items[0]: field 'qty' must be between 1 and 9999");
	b = good();
	json_object_set_new(item(b, 0), "price_cents", json_integer(-1));
	refused(b, "items[0]: field 'price_cents' must be between 0");
	b = good();
	json_object_set_new(item(b, 0), "price_cents", json_integer(BASKET_PRICE_MAX + 1));
	refused(b, "items[0]: field 'price_cents' must be between 0");
	b = good();
	json_object_set_new(item(b, 0), "price_cents", json_real(1.99));
	refused(b, "items[0]: field 'price_cents' must be an integer");
}

static void household_field_rejections(void **st)
{
	json_t *b;

	(void)st;
	b = good();
	json_object_set_new(b, "hhid", json_string("hh_0"));
	refused(b, "hhid must be hh_");
	b = good();
	json_object_set_new(b, "hhid", json_string(dtid));
	refused(b, "hhid must be hh_");
	b = good();
	json_object_set_new(b, "hhid", json_integer(1));
	refused(b, "'hhid' must be a string");
	b = good();
	json_object_set_new(b, "deident_tid", json_string(hhid));
	refused(b, "deident_tid must be dt_");
	b = good();
	json_object_set_new(b, "deident_tid", json_string("dt_" "0000000000000000000000000u"));
	refused(b, "deident_tid must be dt_");
}

static void enctid_field_rejections(void **st)
{
	json_t *b;
	char longenc[ENVELOPE_B64_MAX + 1];

	(void)st;
	b = good();
	json_object_set_new(b, "tid", json_string("card:4242424242424242"));
	refused(b, "tid must be an object");
	b = good();
	json_object_set_new(b, "tid", json_pack("{s:s}", "enc", "AAAA"));
	refused(b, "tid: field 'kid' is required");
	b = good();
	json_object_set_new(b, "tid", json_pack("{s:s}", "kid", "0123456789abcdef"));
	refused(b, "tid: field 'enc' is required");
	b = good();
	json_object_set_new(b, "tid", json_pack("{s:s,s:s}", "kid", "0123456789ABCDEF", "enc", "AA"));
	refused(b, "tid: kid must be 16 lower-case hex");
	b = good();
	json_object_set_new(b, "tid", json_pack("{s:s,s:s}", "kid", "0123456789abcde", "enc", "AA"));
	refused(b, "tid: kid must be 16 lower-case hex");
	b = good();
	json_object_set_new(b, "tid", json_pack("{s:s,s:s}", "kid", "0123456789abcdef", "enc",
						"AA+/AA=="));
	refused(b, "tid: enc must be base64url");
	b = good();
	json_object_set_new(b, "tid", json_pack("{s:s,s:s}", "kid", "0123456789abcdef", "enc", ""));
	refused(b, "tid: enc must be base64url");
	memset(longenc, 'A', sizeof longenc - 1);
	longenc[sizeof longenc - 1] = '\0';
	b = good();
	json_object_set_new(b, "tid", json_pack("{s:s,s:s}", "kid", "0123456789abcdef", "enc",
						longenc));
	refused(b, "tid: enc must be base64url");
	b = good();
	json_object_set_new(b, "tid", json_pack("{s:s,s:s,s:s}", "kid", "0123456789abcdef", "enc",
						"AA", "pan", "x"));
	refused(b, "tid: unknown field 'pan'");
}

static void offers_rejections(void **st)
{
	json_t *b, *many;
	char longoffer[BASKET_OFFER_MAX + 2];

	(void)st;
	b = good();
	json_object_set_new(b, "offers", json_string("9800000000017"));
	refused(b, "'offers' must be an array of strings");
	b = good();
	json_object_set_new(b, "offers", json_pack("[i]", 98));
	refused(b, "offers[0] must be a string");
	b = good();
	json_object_set_new(b, "offers", json_pack("[s]", ""));
	refused(b, "offers[0] must be 1 to 64 characters");
	memset(longoffer, '9', sizeof longoffer - 1);
	longoffer[sizeof longoffer - 1] = '\0';
	b = good();
	json_object_set_new(b, "offers", json_pack("[s,s]", "1", longoffer));
	refused(b, "offers[1] must be 1 to 64 characters");
	many = json_array();
	for (int i = 0; i < BASKET_MAX_OFFERS + 1; i++)
		json_array_append_new(many, json_string("98"));
	b = good();
	json_object_set_new(b, "offers", many);
	refused(b, "more than 100 codes");
}

static void identity_rejections(void **st)
{
	struct basket_in in;
	pos_err e = { 0 };
	json_t *b = good();
	char longid[STORE_ID_MAX + 2];

	(void)st;
	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	assert_int_equal(basket_from_json(b, "", "T1", NOW, &in, &e), POS_EINVAL);
	assert_int_equal(basket_from_json(b, "S1", "T 1", NOW, &in, &e), POS_EINVAL);
	assert_int_equal(basket_from_json(b, longid, "T1", NOW, &in, &e), POS_EINVAL);
	assert_int_equal(basket_from_json(b, "S1", NULL, NOW, &in, &e), POS_EINVAL);
	basket_free(&in);
	json_decref(b);
}

static void bodies_that_are_not_baskets_are_refused_before_validation(void **st)
{
	struct basket_in in;
	pos_err e = { 0 };
	char deep[64];

	(void)st;
	assert_int_equal(basket_parse("{\"txn\":", 7, 4096, "S1", "T1", NOW, &in, &e), POS_EINVAL);
	assert_int_equal(basket_parse("{\"txn\":\"a\",\"txn\":\"b\"}", 21, 4096, "S1", "T1", NOW,
				      &in, &e),
			 POS_EINVAL);
	assert_int_equal(basket_parse("{}", 2, 1, "S1", "T1", NOW, &in, &e), POS_ETOOBIG);
	memset(deep, '[', 20);
	memset(deep + 20, ']', 20);
	assert_int_equal(basket_parse(deep, 40, 4096, "S1", "T1", NOW, &in, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "nested"));
}

static void messages_never_echo_values(void **st)
{
	struct basket_in in;
	pos_err e = { 0 };
	json_t *b;

	(void)st;
	b = good();
	json_object_set_new(item(b, 0), "gtin", json_string("42424242424242"));
	assert_int_equal(basket_from_json(b, "S1", "T1", NOW, &in, &e), POS_EINVAL);
	assert_null(strstr(e.msg, "4242"));
	json_decref(b);
	b = good();
	json_object_set_new(b, "txn", json_string("4242424242424242"));
	assert_int_equal(basket_from_json(b, "S1", "T1", NOW, &in, &e), POS_EINVAL);
	assert_null(strstr(e.msg, "4242"));
	json_decref(b);
	b = good();
	json_object_set_new(b, "offers", json_pack("[s]", "phone:+15550100234-and-more-text-to-exceed-"
							   "the-sixty-four-character-limit-x"));
	assert_int_equal(basket_from_json(b, "S1", "T1", NOW, &in, &e), POS_EINVAL);
	assert_null(strstr(e.msg, "5550100234"));
	json_decref(b);
}

static void batch_shape_rejections(void **st)
{
	pos_err e = { 0 };
	json_t *arr, *root, *many;

	(void)st;
	root = json_array();
	assert_int_equal(basket_batch_array(root, &arr, &e), POS_EINVAL);
	json_decref(root);
	root = json_pack("{s:[o],s:i}", "baskets", good(), "n", 1);
	assert_int_equal(basket_batch_array(root, &arr, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "unknown field 'n'"));
	json_decref(root);
	root = json_pack("{s:o}", "baskets", good());
	assert_int_equal(basket_batch_array(root, &arr, &e), POS_EINVAL);
	json_decref(root);
	root = json_pack("{s:[]}", "baskets");
	assert_int_equal(basket_batch_array(root, &arr, &e), POS_EINVAL);
	json_decref(root);
	many = json_array();
	for (int i = 0; i < BASKET_MAX_BATCH + 1; i++)
		json_array_append_new(many, json_object());
	root = json_pack("{s:o}", "baskets", many);
	assert_int_equal(basket_batch_array(root, &arr, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "1 to 500"));
	json_decref(root);
	root = json_pack("{s:[o,o]}", "baskets", good(), json_object());
	assert_int_equal(basket_batch_array(root, &arr, &e), 0);
	assert_int_equal(json_array_size(arr), 2);
	json_decref(root);
}

static void a_batch_result_names_only_a_well_formed_txn(void **st)
{
	char out[UUID_STR_LEN + 1];
	json_t *b = good();

	(void)st;
	basket_txn_hint(b, out);
	assert_string_equal(out, TXN);
	json_object_set_new(b, "txn", json_string("0193A5F2-6C1E-7B3A-9D2E-41F0C6A1B2C3"));
	basket_txn_hint(b, out);
	assert_string_equal(out, TXN);
	json_object_set_new(b, "txn", json_string("4242424242424242"));
	basket_txn_hint(b, out);
	assert_string_equal(out, "");
	json_decref(b);
	b = json_array();
	basket_txn_hint(b, out);
	assert_string_equal(out, "");
	json_decref(b);
}

/* ------------------------------------------------------------ ingest */

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
};

static void job_done(struct ingest_job *job)
{
	struct waiter *w = job->arg;

	pthread_mutex_lock(&w->mu);
	w->done++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void make_basket(struct basket_in *in, const char *txn, int qty)
{
	json_t *b = good();
	pos_err e = { 0 };

	json_object_set_new(b, "txn", json_string(txn));
	json_object_del(b, "hhid");
	json_object_set_new(item(b, 0), "qty", json_integer(qty));
	assert_int_equal(basket_from_json(b, "S1", "T1", NOW, in, &e), 0);
	json_decref(b);
}

static void the_writer_answers_each_job_after_committing_them(void **st)
{
	char dir[] = "/tmp/test_basket_XXXXXX", db[128];
	struct basket_in in[4];
	struct ingest_job jobs[4];
	enum store_put_result res[4][2];
	struct store_basket pair[2];
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct ingest *ig = NULL;
	struct store *s = NULL;
	struct store_stats stats;
	pos_err e = { 0 };

	(void)st;
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof db, "%s/central.db", dir);
	make_basket(&in[0], "0193a5f2-6c1e-7b3a-9d2e-000000000001", 1);
	make_basket(&in[1], "0193a5f2-6c1e-7b3a-9d2e-000000000002", 1);
	make_basket(&in[2], "0193a5f2-6c1e-7b3a-9d2e-000000000001", 1); /* same: duplicate */
	make_basket(&in[3], "0193a5f2-6c1e-7b3a-9d2e-000000000002", 5); /* other: conflict */
	assert_int_equal(ingest_start(db, &ig, &e), 0);
	for (int i = 0; i < 3; i++) {
		memset(&jobs[i], 0, sizeof jobs[i]);
		jobs[i].baskets = &in[i].b;
		jobs[i].n = 1;
		jobs[i].results = res[i];
		jobs[i].done = job_done;
		jobs[i].arg = &w;
		jobs[i].rc = -99;
	}
	/* Job 0 first alone, so job 2 surely meets a committed txn. */
	assert_int_equal(ingest_submit(ig, &jobs[0], &e), 0);
	pthread_mutex_lock(&w.mu);
	while (w.done < 1)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	assert_int_equal(ingest_submit(ig, &jobs[1], &e), 0);
	assert_int_equal(ingest_submit(ig, &jobs[2], &e), 0);
	memset(&jobs[3], 0, sizeof jobs[3]);
	pair[0] = in[3].b;
	pair[1] = in[0].b;
	jobs[3].baskets = pair;
	jobs[3].n = 2;
	jobs[3].results = res[3];
	jobs[3].done = job_done;
	jobs[3].arg = &w;
	assert_int_equal(ingest_submit(ig, &jobs[3], &e), 0);
	pthread_mutex_lock(&w.mu);
	while (w.done < 4)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	for (int i = 0; i < 4; i++)
		assert_int_equal(jobs[i].rc, 0);
	assert_int_equal(res[0][0], STORE_PUT_CREATED);
	assert_int_equal(res[1][0], STORE_PUT_CREATED);
	assert_int_equal(res[2][0], STORE_PUT_DUPLICATE);
	assert_int_equal(res[3][0], STORE_PUT_CONFLICT);
	assert_int_equal(res[3][1], STORE_PUT_DUPLICATE);
	ingest_stop(ig);
	/* Stopped: new work is refused and its callback never runs. */
	assert_int_equal(ingest_submit(ig, &jobs[0], &e), POS_EAGAIN);
	ingest_free(ig);
	assert_int_equal(w.done, 4);

	assert_int_equal(store_open(db, &s, &e), 0);
	assert_int_equal(store_stats(s, &stats, &e), 0);
	assert_int_equal(stats.baskets, 2);
	assert_int_equal(stats.items, 4);
	store_close(s);
	for (int i = 0; i < 4; i++)
		basket_free(&in[i]);
	snprintf(db, sizeof db, "rm -rf %s", dir);
	assert_int_equal(system(db), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_valid_basket_fills_every_field),
		cmocka_unit_test(offer_codes_are_kept_once_each_for_the_store),
		cmocka_unit_test(a_minimal_basket_leaves_household_fields_empty),
		cmocka_unit_test(the_fast_parser_fills_what_the_jansson_path_fills),
		cmocka_unit_test(a_carried_enctid_is_kept_for_resolution),
		cmocka_unit_test(the_digest_is_over_content_not_bytes),
		cmocka_unit_test(the_digest_changes_with_any_field),
		cmocka_unit_test(top_level_rejections),
		cmocka_unit_test(txn_rejections),
		cmocka_unit_test(ts_rejections),
		cmocka_unit_test(a_lane_clock_up_to_a_day_ahead_is_accepted),
		cmocka_unit_test(items_rejections),
		cmocka_unit_test(a_basket_of_exactly_the_item_cap_is_accepted),
		cmocka_unit_test(item_field_rejections),
		cmocka_unit_test(household_field_rejections),
		cmocka_unit_test(enctid_field_rejections),
		cmocka_unit_test(offers_rejections),
		cmocka_unit_test(identity_rejections),
		cmocka_unit_test(bodies_that_are_not_baskets_are_refused_before_validation),
		cmocka_unit_test(messages_never_echo_values),
		cmocka_unit_test(batch_shape_rejections),
		cmocka_unit_test(a_batch_result_names_only_a_well_formed_txn),
		cmocka_unit_test(the_writer_answers_each_job_after_committing_them),
	};

	return cmocka_run_group_tests(tests, setup_ids, NULL);
}
