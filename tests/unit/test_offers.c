/* offers: codes are 98 + 10 random digits + the GS1 check digit and unique;
 * device tokens are kept as SHA-256 only; accepting twice gives the same
 * code; the check answer, the basket answer and the report say the right
 * thing. Real store files in a mkdtemp() folder. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gtin.h"
#include "offers.h"
#include "store.h"
#include "store_fixture.h"
#include "timeutil.h"

static int cmp_code(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void new_codes_are_98_digits_with_gs1_check_digit_and_distinct(void **st)
{
	static char codes[500][STORE_OFFER_CODE_LEN + 1];
	int digit_seen[10] = { 0 };
	pos_err e = { 0 };

	(void)st;
	for (int i = 0; i < 500; i++) {
		char *c = codes[i];
		assert_int_equal(offers_code_new(c, &e), 0);
		assert_int_equal(strlen(c), 13);
		assert_memory_equal(c, "98", 2);
		assert_int_equal(strspn(c, "0123456789"), 13);
		assert_int_equal(c[12] - '0', gtin_check_digit(c, 12));
		assert_true(offers_code_valid(c));
		for (int k = 2; k < 12; k++)
			digit_seen[c[k] - '0']++;
	}
	/* 500 draws from 10^10: a repeat is a one in 80000 event, and the
	 * store's primary key makes codes unique whatever the generator does */
	qsort(codes, 500, sizeof(codes[0]), cmp_code);
	for (int i = 1; i < 500; i++)
		assert_string_not_equal(codes[i - 1], codes[i]);
	for (int d = 0; d < 10; d++)
		assert_true(digit_seen[d] > 250); /* 5000 digits: ~500 each */
}

static void code_validity_needs_prefix_length_and_check_digit(void **st)
{
	(void)st;
	assert_true(offers_code_valid("9800000000014"));
	assert_false(offers_code_valid("9800000000012")); /* wrong check digit */
	assert_false(offers_code_valid("9700000000015")); /* not 98 */
	assert_false(offers_code_valid("980000000001"));  /* 12 digits */
	assert_false(offers_code_valid("98000000000140"));
	assert_false(offers_code_valid("98000000000A4"));
	assert_false(offers_code_valid(""));
	assert_false(offers_code_valid(NULL));
}

static void ids_targets_and_texts_are_checked(void **st)
{
	char id[STORE_OFFER_ID_LEN + 1], t[STORE_OFFER_TARGET_MAX + 1];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(offers_id_new(id, &e), 0);
	assert_true(offers_id_valid(id));
	assert_false(offers_id_valid("of_00000000000000"));
	assert_false(offers_id_valid("of_000000000000000G"));
	assert_false(offers_id_valid("xx_0000000000000000"));
	assert_false(offers_id_valid("of_0000000000000000/../"));

	assert_int_equal(offers_target_parse("all", t, &e), 0);
	assert_string_equal(t, "all");
	assert_int_equal(offers_target_parse("gtin:09520000000011", t, &e), 0);
	assert_string_equal(t, "gtin:09520000000011");
	assert_int_equal(offers_target_parse("gtin:09520000000012", t, &e), POS_EINVAL);
	assert_int_equal(offers_target_parse("gtin:9520000000011", t, &e), POS_EINVAL);
	assert_int_equal(offers_target_parse("household", t, &e), POS_EINVAL);

	assert_int_equal(offers_text_check("title", "Milk 2 for 1 \xe2\x82\xac", 120, &e), 0);
	assert_int_equal(offers_text_check("title", "", 120, &e), POS_EINVAL);
	assert_int_equal(offers_text_check("title", "a\nb", 120, &e), POS_EINVAL);
	assert_int_equal(offers_text_check("title", "bad \xff utf-8", 120, &e), POS_EINVAL);
	assert_int_equal(offers_text_check("title", "12345", 4, &e), POS_EINVAL);
	assert_int_equal(offers_format_parse("csv"), OFFERS_CSV);
	assert_int_equal(offers_format_parse("json"), OFFERS_JSON);
	assert_int_equal(offers_format_parse("xml"), -1);
}

static void registrations_stop_at_the_unused_cap_until_one_is_used(void **st)
{
	struct fx *f = *st;
	char token[OFFERS_TOKEN_LEN + 1];
	int64_t dev = 0;
	bool used = true;
	pos_err e = { 0 };

	assert_int_equal(offers_device_register(f->s, 1000, 2, token, &e), 0);
	assert_int_equal(offers_device_auth(f->s, token, strlen(token), &dev, &used, &e), 0);
	assert_false(used);
	assert_int_equal(offers_device_register(f->s, 1000, 2, token, &e), 0);
	assert_int_equal(offers_device_register(f->s, 1000, 2, token, &e), POS_ETOOBIG);
	assert_non_null(strstr(e.msg, "never used"));
	assert_int_equal(token[0], '\0'); /* no token handed out */
	assert_int_equal(store_device_mark_used(f->s, dev, 2000, &e), 0);
	assert_int_equal(offers_device_register(f->s, 1000, 2, token, &e), 0);
	assert_int_equal(offers_device_register(f->s, 1000, 2, token, &e), POS_ETOOBIG);
}

static void expiry_removes_only_old_unused_registrations(void **st)
{
	struct fx *f = *st;
	struct offers_limits l = { .max_unused = 100, .unused_ttl_s = 60 };
	char old[OFFERS_TOKEN_LEN + 1], fresh[OFFERS_TOKEN_LEN + 1];
	int64_t dev = 0, now = time_now_ms();
	pos_err e = { 0 };

	assert_int_equal(offers_device_register(f->s, now - 61000, 100, old, &e), 0);
	assert_int_equal(offers_device_register(f->s, now, 100, fresh, &e), 0);
	assert_int_equal(offers_expire_tick(f->s, &l), 0); /* nothing more left */
	assert_int_equal(offers_device_auth(f->s, old, OFFERS_TOKEN_LEN, &dev, NULL, &e),
			 POS_ENOTFOUND);
	assert_int_equal(offers_device_auth(f->s, fresh, OFFERS_TOKEN_LEN, &dev, NULL, &e), 0);
	/* Half the TTL, between a second and a minute. */
	assert_int_equal(offers_expire_interval_ms(&l), 30000);
	l.unused_ttl_s = 1;
	assert_int_equal(offers_expire_interval_ms(&l), 1000);
	l.unused_ttl_s = 86400;
	assert_int_equal(offers_expire_interval_ms(&l), 60000);
}

static void device_token_is_kept_only_as_its_sha256(void **st)
{
	struct fx *f = *st;
	char token[OFFERS_TOKEN_LEN + 1], other[OFFERS_TOKEN_LEN + 1];
	unsigned char hash[32], want[32];
	int64_t dev = 0, dev2 = 0;
	FILE *fp;
	char *db;
	long n;
	pos_err e = { 0 };

	assert_int_equal(offers_device_register(f->s, 1000, 1000, token, &e), 0);
	assert_int_equal(strlen(token), OFFERS_TOKEN_LEN);
	assert_int_equal(offers_token_hash(token, strlen(token), hash, &e), 0);
	SHA256((const unsigned char *)token, strlen(token), want);
	assert_memory_equal(hash, want, 32);
	assert_int_equal(offers_device_auth(f->s, token, strlen(token), &dev, NULL, &e), 0);
	assert_int_equal(offers_device_register(f->s, 1000, 1000, other, &e), 0);
	assert_string_not_equal(token, other);
	assert_int_equal(offers_device_auth(f->s, other, strlen(other), &dev2, NULL, &e), 0);
	assert_true(dev != dev2);

	/* wrong, short or malformed tokens are no device */
	memset(other, 'A', OFFERS_TOKEN_LEN);
	assert_int_equal(offers_device_auth(f->s, other, OFFERS_TOKEN_LEN, &dev, NULL, &e),
			 POS_ENOTFOUND);
	assert_int_equal(offers_device_auth(f->s, token, 10, &dev, NULL, &e), POS_EINVAL);
	other[5] = '+';
	assert_int_equal(offers_device_auth(f->s, other, OFFERS_TOKEN_LEN, &dev, NULL, &e), POS_EINVAL);

	/* the database never holds the token itself */
	store_close(f->s);
	f->s = NULL;
	fp = fopen(f->db, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	db = malloc((size_t)n + 1);
	assert_non_null(db);
	assert_int_equal(fread(db, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	assert_null(memmem(db, (size_t)n, token, OFFERS_TOKEN_LEN));
	free(db);
	assert_int_equal(store_open(f->db, &f->s, &e), 0);
}

static void make_offer(struct store *s, const char *id, const char *target, int64_t to_ms)
{
	struct store_offer o;
	pos_err e = { 0 };

	memset(&o, 0, sizeof(o));
	snprintf(o.id, sizeof(o.id), "%s", id);
	snprintf(o.title, sizeof(o.title), "Save, \"big\"");
	snprintf(o.reward, sizeof(o.reward), "1 EUR off");
	snprintf(o.target, sizeof(o.target), "%s", target);
	o.to_ms = to_ms;
	o.created_ms = 1000;
	assert_int_equal(store_offer_create(s, &o, &e), 0);
}

static void accepting_twice_returns_the_same_code(void **st)
{
	struct fx *f = *st;
	char token[OFFERS_TOKEN_LEN + 1];
	json_t *a = NULL, *b = NULL;
	bool created = false;
	int64_t dev = 0;
	pos_err e = { 0 };

	make_offer(f->s, "of_0000000000000001", "all", 0);
	make_offer(f->s, "of_0000000000000002", "all", 1500);
	assert_int_equal(offers_device_register(f->s, 1000, 1000, token, &e), 0);
	assert_int_equal(offers_device_auth(f->s, token, strlen(token), &dev, NULL, &e), 0);
	assert_int_equal(offers_accept(f->s, dev, "of_0000000000000001", 2000, &a, &created, &e),
			 0);
	assert_true(created);
	assert_true(offers_code_valid(json_string_value(json_object_get(a, "code"))));
	assert_int_equal(offers_accept(f->s, dev, "of_0000000000000001", 2001, &b, &created, &e),
			 0);
	assert_false(created);
	assert_string_equal(json_string_value(json_object_get(a, "code")),
			    json_string_value(json_object_get(b, "code")));
	json_decref(a);
	json_decref(b);
	assert_int_equal(offers_accept(f->s, dev, "of_0000000000000002", 2000, &a, &created, &e),
			 POS_ECONFLICT); /* expired at 1500 */
	assert_null(a);
	assert_int_equal(offers_accept(f->s, dev, "of_00000000000000ff", 2000, &a, &created, &e),
			 POS_ENOTFOUND);
	assert_int_equal(offers_accept(f->s, dev, "../etc", 2000, &a, &created, &e), POS_ENOTFOUND);
}

static const char *reason_of(json_t *v)
{
	const char *r = json_string_value(json_object_get(v, "reason"));
	return r ? r : "";
}

static void check_says_redeemable_until_the_basket_redeems_it(void **st)
{
	struct fx *f = *st;
	char token[OFFERS_TOKEN_LEN + 1], code[STORE_OFFER_CODE_LEN + 1];
	struct store_offer_use u;
	struct store_basket b;
	enum store_put_result r;
	json_t *a = NULL, *v = NULL, *ans;
	bool created;
	int64_t dev = 0;
	pos_err e = { 0 };

	make_offer(f->s, "of_0000000000000001", "all", 0);
	assert_int_equal(offers_device_register(f->s, 1000, 1000, token, &e), 0);
	assert_int_equal(offers_device_auth(f->s, token, strlen(token), &dev, NULL, &e), 0);
	assert_int_equal(offers_accept(f->s, dev, "of_0000000000000001", 2000, &a, &created, &e),
			 0);
	snprintf(code, sizeof(code), "%s", json_string_value(json_object_get(a, "code")));
	json_decref(a);

	assert_int_equal(offers_check_json(f->s, code, 3000, &v, &e), 0);
	assert_true(json_is_true(json_object_get(v, "redeemable")));
	assert_string_equal(json_string_value(json_object_get(v, "title")), "Save, \"big\"");
	json_decref(v);
	assert_int_equal(offers_check_json(f->s, "9800000000014", 3000, &v, &e), 0);
	assert_true(json_is_false(json_object_get(v, "redeemable")));
	assert_string_equal(reason_of(v), "unknown");
	json_decref(v);
	assert_int_equal(offers_check_json(f->s, "not a code", 3000, &v, &e), 0);
	assert_string_equal(reason_of(v), "unknown");
	json_decref(v);

	memset(&b, 0, sizeof(b));
	snprintf(b.txn, sizeof(b.txn), "0190a000-0000-7000-8000-000000000001");
	b.ts_ms = 4000;
	snprintf(b.store, sizeof(b.store), "S9");
	snprintf(b.terminal, sizeof(b.terminal), "T9");
	memset(&u, 0, sizeof(u));
	snprintf(u.code, sizeof(u.code), "%s", code);
	b.offers = &u;
	b.n_offers = 1;
	assert_null(offers_basket_json(&b)); /* not judged yet */
	store_set_offer_judge(f->s, offer_verdict);
	assert_int_equal(store_put_baskets(f->s, &b, 1, &r, &e), 0);
	assert_int_equal(r, STORE_PUT_CREATED);
	ans = offers_basket_json(&b);
	assert_non_null(ans);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ans, 0), "status")),
			    "redeemed");
	json_decref(ans);

	assert_int_equal(offers_check_json(f->s, code, 5000, &v, &e), 0);
	assert_true(json_is_false(json_object_get(v, "redeemable")));
	assert_string_equal(reason_of(v), "redeemed");
	json_decref(v);

	/* the app's sync: redeemed at S9, and now next offers (an empty list
	 * here: nothing else is open) */
	assert_int_equal(offers_sync_json(f->s, dev, 5000, &v, &e), 0);
	ans = json_array_get(json_object_get(v, "codes"), 0);
	assert_string_equal(json_string_value(json_object_get(ans, "state")), "redeemed");
	assert_string_equal(json_string_value(json_object_get(ans, "store")), "S9");
	assert_true(json_is_array(json_object_get(v, "next_offers")));
	json_decref(v);
}

struct buf {
	char s[4096];
	size_t n;
};

static int buf_sink(const void *p, size_t len, void *arg)
{
	struct buf *b = arg;

	if (b->n + len >= sizeof(b->s))
		return POS_ETOOBIG;
	memcpy(b->s + b->n, p, len);
	b->n += len;
	b->s[b->n] = '\0';
	return 0;
}

static void report_quotes_titles_in_csv_and_parses_as_json(void **st)
{
	struct fx *f = *st;
	char token[OFFERS_TOKEN_LEN + 1];
	struct store_offer_use u;
	struct store_basket b;
	enum store_put_result r;
	struct buf out;
	json_t *a = NULL, *rep;
	json_error_t je;
	bool created;
	int64_t dev = 0;
	pos_err e = { 0 };

	make_offer(f->s, "of_0000000000000001", "all", 0);
	assert_int_equal(offers_device_register(f->s, 1000, 1000, token, &e), 0);
	assert_int_equal(offers_device_auth(f->s, token, strlen(token), &dev, NULL, &e), 0);
	assert_int_equal(offers_accept(f->s, dev, "of_0000000000000001", 2000, &a, &created, &e),
			 0);
	memset(&b, 0, sizeof(b));
	snprintf(b.txn, sizeof(b.txn), "0190a000-0000-7000-8000-000000000002");
	b.ts_ms = 1700000000000LL; /* 2023-11-14 */
	snprintf(b.store, sizeof(b.store), "S1");
	snprintf(b.terminal, sizeof(b.terminal), "T1");
	memset(&u, 0, sizeof(u));
	snprintf(u.code, sizeof(u.code), "%s", json_string_value(json_object_get(a, "code")));
	json_decref(a);
	b.offers = &u;
	b.n_offers = 1;
	store_set_offer_judge(f->s, offer_verdict);
	assert_int_equal(store_put_baskets(f->s, &b, 1, &r, &e), 0);

	memset(&out, 0, sizeof(out));
	assert_int_equal(offers_report_write(f->s, OFFERS_CSV, buf_sink, &out, &e), 0);
	assert_string_equal(out.s, "offer_id,title,store,day,redemptions\n"
				   "of_0000000000000001,\"Save, \"\"big\"\"\",S1,2023-11-14,1\n");
	memset(&out, 0, sizeof(out));
	assert_int_equal(offers_report_write(f->s, OFFERS_JSON, buf_sink, &out, &e), 0);
	rep = json_loads(out.s, 0, &je);
	assert_non_null(rep);
	assert_int_equal(json_array_size(rep), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rep, 0), "redemptions")),
			 1);
	json_decref(rep);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(new_codes_are_98_digits_with_gs1_check_digit_and_distinct),
		cmocka_unit_test(code_validity_needs_prefix_length_and_check_digit),
		cmocka_unit_test(ids_targets_and_texts_are_checked),
		T(registrations_stop_at_the_unused_cap_until_one_is_used),
		T(expiry_removes_only_old_unused_registrations),
		T(device_token_is_kept_only_as_its_sha256),
		T(accepting_twice_returns_the_same_code),
		T(check_says_redeemable_until_the_basket_redeems_it),
		T(report_quotes_titles_in_csv_and_parses_as_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
