#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <string.h>

#include "store_fixture.h"
#include "store_vendor.h"
#include "timeutil.h"
#include "vendor.h"

/* Vectors from Python's hmac and base64 modules. */
static void test_sign_vectors(void **st)
{
	char out[VENDOR_SIG_B64_LEN + 1];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(vendor_sign("vs_secret", 1700000000LL, "{\"a\":1}", 7, out, &e), 0);
	assert_string_equal(out, "HLQ6MM3BA/O1fSU/WQEb7c7cGCN4fkZWRcF1qyML32Y=");
	assert_int_equal(vendor_sign("vs_secret", 1700000000LL, "", 0, out, &e), 0);
	assert_string_equal(out, "d6bH7emIzBDf1fGzSYQsoOIlD17Hl/QvRS0i5W9qWwE=");
}

static void test_pseudonym(void **st)
{
	unsigned char k[32], k2[32];
	char a[VENDOR_VP_LEN + 1], b[VENDOR_VP_LEN + 1], c[VENDOR_VP_LEN + 1],
		d[VENDOR_VP_LEN + 1];

	(void)st;
	memset(k, 7, sizeof k);
	memset(k2, 8, sizeof k2);
	vendor_pseudonym(k, "acme", "hh_0123456789abcdef", a);
	vendor_pseudonym(k, "acme", "hh_0123456789abcdef", b);
	vendor_pseudonym(k, "mountco", "hh_0123456789abcdef", c);
	vendor_pseudonym(k2, "acme", "hh_0123456789abcdef", d);
	assert_int_equal(strlen(a), VENDOR_VP_LEN);
	assert_memory_equal(a, "vp_", 3);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c); /* each vendor its own pseudonym */
	assert_string_not_equal(a, d); /* and only with the key */
	assert_null(strstr(a, "0123456789"));
}

static void test_nonce_replay(void **st)
{
	struct fx *f = *st;
	unsigned char h[32], h2[32];
	int64_t now = time_now_ms() / 1000;
	pos_err e = { 0 };

	memset(h, 1, sizeof h);
	memset(h2, 2, sizeof h2);
	assert_int_equal(store_vendor_nonce(f->s, "acme", now, h, 660, &e), 0);
	assert_int_equal(store_vendor_nonce(f->s, "acme", now, h, 660, &e), POS_ECONFLICT);
	assert_int_equal(store_vendor_nonce(f->s, "acme", now, h2, 660, &e), 0);
	assert_int_equal(store_vendor_nonce(f->s, "acme", now + 1, h, 660, &e), 0);
	assert_int_equal(store_vendor_nonce(f->s, "mountco", now, h, 660, &e), 0);
}

static void test_vendor_token(void **st)
{
	struct fx *f = *st;
	struct store_vendor v = { "acme", "Acme", "http://127.0.0.1:1", "vs_x" }, got;
	unsigned char th[32], other[32];
	pos_err e = { 0 };

	memset(th, 3, sizeof th);
	memset(other, 4, sizeof other);
	assert_int_equal(store_vendor_add(f->s, &v, th, 1, &e), 0);
	assert_int_equal(store_vendor_add(f->s, &v, other, 1, &e), POS_ECONFLICT);
	assert_int_equal(store_vendor_by_token(f->s, th, &got, &e), 0);
	assert_string_equal(got.id, "acme");
	assert_string_equal(got.secret, "vs_x");
	assert_int_equal(store_vendor_by_token(f->s, other, &got, &e), POS_ENOTFOUND);
}

static void test_event_unknown_activity(void **st)
{
	struct fx *f = *st;
	struct store_vendor_event ev;
	long n = -1;
	bool created = true;
	pos_err e = { 0 };

	memset(&ev, 0, sizeof ev);
	strcpy(ev.vendor, "acme");
	strcpy(ev.id, "ev1");
	strcpy(ev.kind, "delay");
	strcpy(ev.activity, "nope");
	ev.new_at_ms = 1;
	strcpy(ev.text, "late");
	assert_int_equal(store_vendor_event_apply(f->s, &ev, 1, &n, &created, &e), POS_ENOTFOUND);
	/* Refused: not recorded, so the same id can come again. */
	assert_int_equal(store_vendor_event_apply(f->s, &ev, 1, &n, &created, &e), POS_ENOTFOUND);
	strcpy(ev.kind, "recall");
	strcpy(ev.gtin, "04006381333931");
	assert_int_equal(store_vendor_event_apply(f->s, &ev, 1, &n, &created, &e), POS_EPERM);
}

/* A device linked to nothing owns nothing; a limit under 1 is refused. */
static void test_products_empty(void **st)
{
	struct fx *f = *st;
	json_t *v = NULL;
	pos_err e = { 0 };

	assert_int_equal(store_device_products(f->s, 42, 0, &v, &e), POS_EINVAL);
	assert_null(v);
	assert_int_equal(store_device_products(f->s, 42, 10, &v, &e), 0);
	assert_int_equal(json_array_size(json_object_get(v, "products")), 0);
	assert_true(json_is_false(json_object_get(v, "truncated")));
	json_decref(v);
}

static long count_sql(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	long n;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	n = (long)sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

/* Relearning replaces the learned relations of the run before (here: none
 * is learned again, no item has an activity) and keeps declared ones. */
static void test_relations_learn_keeps_declared(void **st)
{
	struct fx *f = *st;
	pos_err e = { 0 };
	sqlite3 *db;
	long n = -1;

	assert_int_equal(store_relation_put(f->s, "04012345000016", "04006381333931", "requires", &e),
			 0);
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "INSERT INTO item_relations(gtin_a, gtin_b, kind) VALUES "
				      "('09520000000011', '09520000000028', 'learned')",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_relations_learn(f->s, 1, 1.0, 10, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(count_sql(f->db, "SELECT count(*) FROM item_relations WHERE kind = 'learned'"),
			 0);
	assert_int_equal(count_sql(f->db, "SELECT count(*) FROM item_relations WHERE kind = 'requires'"),
			 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_vectors),
		cmocka_unit_test(test_pseudonym),
		cmocka_unit_test_setup_teardown(test_nonce_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vendor_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_unknown_activity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_products_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relations_learn_keeps_declared, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
