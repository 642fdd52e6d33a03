/* PostgreSQL reads of a basket's items touch its own month only: the
 * household page, the conversation facts, a receipt's lines, the next
 * offers, a device's products, a vendor's activity on a sale (its items
 * and its basket), a booking's support conversation, a receipt found by
 * txn or by its token's hash, a receipt conversation's household, a
 * recall and an item's related items are run over one household whose
 * baskets are all in March while other households fill the months around
 * it, and the other months' partitions must see no scan while they run.
 * Each statement written without the basket's ts (i.ts = b.ts) probes
 * every month's items (or, for the recall and a basket found by txn or
 * id, every month's baskets) and fails here. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deident.h"
#include "store.h"
#include "store_analyst.h"
#include "store_public.h"
#include "store_vendor.h"
#include "pg_fixture.h"

#define DAY 86400000LL
#define MARCH 20157 /* 2025-03-10, a day number */
#define BOUGHT "09520000000011"  /* bought by the March household */
#define NEVER "09520000000028"   /* bought by no one */

struct fx {
	char db[256];
	struct store *s;
	struct db *t; /* the test's own connection, for the statistics */
	char hh[2][DEIDENT_ID_LEN + 1];
	char txn[37]; /* a March basket's */
	int64_t ts;   /* and its time */
};

static int ntxn;

static int pg_open(const char *dsn, struct store **s)
{
	struct store_where w = { .backend = STORE_POSTGRESQL, .dsn = dsn };
	pos_err e = { 0 };

	return store_open_at(&w, s, &e);
}

/* sql run on the test's connection with hhid as ?1. */
static void pg_run(struct db *t, const char *sql, const char *hhid)
{
	struct db_stmt *q = NULL;
	pos_err e = { 0 };

	assert_int_equal(db_prepare(t, sql, 0, &q, &e), 0);
	if (hhid)
		db_bind_text(q, 1, hhid);
	assert_int_equal(db_step(q, &e), DB_DONE);
	db_finalize(q);
}

/* n baskets of household hh from day d on, each of BOUGHT and two more. */
static void put_days(struct fx *f, const char *hh, int64_t d, int n)
{
	struct store_item it[3] = { { BOUGHT, 1, 150 }, { "09520000000042", 2, 200 },
				    { "09520000000059", 1, -1 } };
	pos_err e = { 0 };

	for (int i = 0; i < n; i++) {
		struct store_basket b;
		enum store_put_result r = 0;

		memset(&b, 0, sizeof b);
		snprintf(b.txn, sizeof b.txn, "0190a000-0000-7000-8000-%012d", ++ntxn);
		b.ts_ms = (d + i % 10) * DAY + i;
		snprintf(b.store, sizeof b.store, "S1");
		snprintf(b.terminal, sizeof b.terminal, "T1");
		snprintf(b.hhid, sizeof b.hhid, "%s", hh);
		memset(b.digest, ntxn, sizeof b.digest);
		b.items = it;
		b.n_items = 3;
		assert_int_equal(store_put_baskets(f->s, &b, 1, &r, &e), 0);
		assert_int_equal(r, STORE_PUT_CREATED);
		if (hh == f->hh[0]) {
			snprintf(f->txn, sizeof f->txn, "%s", b.txn);
			f->ts = b.ts_ms;
		}
	}
}

/* hh[0] buys in March only; hh[1] in the two months before and after. */
static int setup(void **st)
{
	struct store_item_master im = { BOUGHT, "Milk", "acme", "dairy" };
	struct fx *f = calloc(1, sizeof(*f));
	pos_err e = { 0 };

	assert_non_null(f);
	assert_int_equal(pgfx_fresh("test_store_prune", f->db, sizeof(f->db)), 0);
	assert_int_equal(pg_open(f->db, &f->s), 0);
	assert_int_equal(db_open_pg(f->db, false, &f->t, &e), 0);
	for (int i = 0; i < 2; i++) {
		unsigned char idx[DEIDENT_INDEX_LEN] = { 0 };
		char fresh[DEIDENT_ID_LEN + 1];
		bool created = false;

		idx[0] = (unsigned char)(i + 1);
		assert_int_equal(deident_hhid_new(fresh, &e), 0);
		assert_int_equal(store_resolve(f->s, idx, true, fresh, f->hh[i], &created, &e), 0);
	}
	put_days(f, f->hh[1], MARCH - 56, 40);
	put_days(f, f->hh[1], MARCH - 28, 40);
	put_days(f, f->hh[0], MARCH, 60);
	put_days(f, f->hh[1], MARCH + 31, 40);
	put_days(f, f->hh[1], MARCH + 61, 40);
	assert_int_equal(store_item_put(f->s, &im, 1, &e), 0);
	/* A device linked to hh[0] by a redemption, an offer it took, one
	 * targeted at an item hh[0] bought and one at an item no one bought. */
	pg_run(f->t,
	       "INSERT INTO offer_devices(id, token_hash, created, used) "
	       "VALUES (1, sha256('d1'::bytea), 0, 0)",
	       NULL);
	pg_run(f->t,
	       "INSERT INTO offers(id, title, reward, target, created) VALUES "
	       "('o-all', 'All', 'r', 'all', 1), ('o-bought', 'Bought', 'r', 'gtin:" BOUGHT
	       "', 2), ('o-never', 'Never', 'r', 'gtin:" NEVER "', 3)",
	       NULL);
	pg_run(f->t,
	       "INSERT INTO offer_codes(code, offer_id, device_id, accepted) "
	       "VALUES ('0000000000001', 'o-all', 1, 0)",
	       NULL);
	pg_run(f->t,
	       "INSERT INTO offer_redemptions(code, basket_id, ts, store, hhid) SELECT "
	       "'0000000000001', id, ts, store, hhid FROM baskets WHERE hhid = ?1 LIMIT 1",
	       f->hh[0]);
	pg_run(f->t, "INSERT INTO device_households(device_id, hhid, linked) VALUES (1, ?1, 0)",
	       f->hh[0]);
	pgfx_analyze_leaves(f->t);
	*st = f;
	return 0;
}

static int teardown(void **st)
{
	struct fx *f = *st;

	store_close(f->s);
	db_close(f->t);
	free(f);
	return 0;
}

/* Scans (by index or sequentially) of table's March partition, or of its
 * other months'. */
#define SCANS(table, op)                                                                       \
	"SELECT coalesce(sum(coalesce(idx_scan, 0) + seq_scan), 0) FROM pg_stat_user_tables "   \
	"WHERE relname ~ '^" table "_[0-9]{6}$' AND relname " op " '" table "_202503'"

/* The store's connection is closed, its counters have arrived, and a
 * second one is opened for the statement to watch. */
static struct store *reopen(struct fx *f)
{
	struct store *s2 = NULL;

	store_close(f->s);
	f->s = NULL;
	pgfx_others_gone(f->t);
	assert_int_equal(pg_open(f->db, &s2), 0);
	return s2;
}

static void the_household_page_reads_only_its_months_items(void **st)
{
	struct fx *f = *st;
	struct store *s2 = reopen(f);
	json_t *v = NULL;
	struct pgfx_watch w;
	pos_err e = { 0 };

	pgfx_watch_begin(f->t, &w, SCANS("items", "="), SCANS("items", "<>"));
	assert_int_equal(store_analyst_household(s2, f->hh[0], &v, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(v, "baskets")), 60);
	assert_int_equal(json_integer_value(json_object_get(v, "spend_cents")), 60 * 350);
	assert_int_equal(json_array_size(json_object_get(v, "months")), 1);
	assert_int_equal(json_array_size(json_object_get(v, "categories")), 2);
	json_decref(v);
	store_close(s2);
	pgfx_watch_end(f->t, &w);
}

static void the_facts_read_only_their_months_items(void **st)
{
	struct fx *f = *st;
	struct store *s2 = reopen(f);
	struct store_conversation c = { .kind = STORE_CONV_RECEIPT };
	struct store_facts facts;
	struct pgfx_watch w;
	pos_err e = { 0 };

	snprintf(c.txn, sizeof c.txn, "%s", f->txn);
	pgfx_watch_begin(f->t, &w, SCANS("items", "="), SCANS("items", "<>"));
	assert_int_equal(store_conversation_facts(s2, &c, (MARCH + 20) * DAY, &facts, &e), 0);
	assert_true(facts.known);
	assert_string_equal(facts.hhid, f->hh[0]);
	assert_int_equal(facts.visits_90d, 60);
	assert_int_equal(facts.spend_90d_cents, 60 * 550);
	assert_int_equal(facts.ntop, 1);
	assert_string_equal(facts.top[0], "dairy");
	store_close(s2);
	pgfx_watch_end(f->t, &w);
}

static int line_cb(const struct store_receipt_line *l, void *arg)
{
	long *n = arg;

	if (++*n == 1 && strcmp(l->name, "Milk") != 0)
		return -1;
	return 0;
}

static void a_receipt_s_lines_read_only_its_month(void **st)
{
	struct fx *f = *st;
	struct store *s2 = reopen(f);
	struct store_receipt r;
	struct pgfx_watch w;
	long n = 0;
	pos_err e = { 0 };

	assert_int_equal(store_receipt_by_txn(s2, f->txn, &r, &e), 0);
	assert_int_equal(r.ts_ms, f->ts);
	pgfx_watch_begin(f->t, &w, SCANS("items", "="), SCANS("items", "<>"));
	assert_int_equal(store_receipt_lines(s2, r.basket_id, r.ts_ms, line_cb, &n, &e), 0);
	assert_int_equal(n, 3);
	store_close(s2);
	pgfx_watch_end(f->t, &w);
}

static int next_cb(const struct store_offer *o, bool targeted, void *arg)
{
	char *ids = arg;

	(void)targeted;
	strncat(ids, o->id, 64);
	strncat(ids, " ", 2);
	return 0;
}

static void the_next_offers_read_only_the_households_months(void **st)
{
	struct fx *f = *st;
	struct store *s2 = reopen(f);
	char ids[256] = "";
	struct pgfx_watch w;
	pos_err e = { 0 };

	pgfx_watch_begin(f->t, &w, SCANS("items", "="), SCANS("items", "<>"));
	assert_int_equal(store_offer_next(s2, 1, MARCH * DAY, 5, next_cb, ids, &e), 0);
	assert_string_equal(ids, "o-bought ");
	store_close(s2);
	pgfx_watch_end(f->t, &w);
}

static void a_device_s_products_read_only_their_months_items(void **st)
{
	struct fx *f = *st;
	struct store *s2 = reopen(f);
	json_t *v = NULL;
	struct pgfx_watch w;
	pos_err e = { 0 };

	pgfx_watch_begin(f->t, &w, SCANS("items", "="), SCANS("items", "<>"));
	assert_int_equal(store_device_products(s2, 1, 10, &v, &e), 0);
	assert_int_equal(json_array_size(json_object_get(v, "products")), 10);
	assert_true(json_is_true(json_object_get(v, "truncated")));
	json_decref(v);
	store_close(s2);
	pgfx_watch_end(f->t, &w);
}

static void an_activity_reads_only_its_sale_s_month(void **st)
{
	struct fx *f = *st;
	struct store *s2 = reopen(f);
	struct store_activity_in a = { .vendor = "acme", .ref = "r1", .gtin = BOUGHT,
				       .kind = "delivery", .at_ms = 1 };
	bool created = false;
	struct pgfx_watch w;
	pos_err e = { 0 };

	snprintf(a.txn, sizeof a.txn, "%s", f->txn);
	pgfx_watch_begin(f->t, &w, SCANS("items", "="), SCANS("items", "<>"));
	assert_int_equal(store_activity_put(s2, &a, 1, &created, &e), 0);
	assert_true(created);
	snprintf(a.ref, sizeof a.ref, "r2");
	snprintf(a.gtin, sizeof a.gtin, NEVER);
	assert_int_equal(store_activity_put(s2, &a, 1, &created, &e), POS_EINVAL);
	store_close(s2);
	pgfx_watch_end(f->t, &w);
}

/* The sale is found by its txn in basket_txns and read from its own
 * month: no other month's baskets are touched (by baskets.txn, every
 * month's txn index was probed). */
static void an_activity_finds_its_sale_in_its_month_only(void **st)
{
	struct fx *f = *st;
	struct store *s2 = reopen(f);
	struct store_activity_in a = { .vendor = "acme", .ref = "r1", .gtin = BOUGHT,
				       .kind = "delivery", .at_ms = 1 };
	bool created = false;
	struct pgfx_watch w;
	pos_err e = { 0 };

	snprintf(a.txn, sizeof a.txn, "%s", f->txn);
	pgfx_watch_begin(f->t, &w, SCANS("baskets", "="), SCANS("baskets", "<>"));
	assert_int_equal(store_activity_put(s2, &a, 1, &created, &e), 0);
	assert_true(created);
	snprintf(a.ref, sizeof a.ref, "r2");
	snprintf(a.txn, sizeof a.txn, "0190a000-0000-7000-8000-999999999999");
	assert_int_equal(store_activity_put(s2, &a, 1, &created, &e), POS_ENOTFOUND);
	store_close(s2);
	pgfx_watch_end(f->t, &w);
}

/* A booking's support conversation finds the booking's sale in its own
 * month too. */
static void a_booking_s_support_reads_only_its_sale_s_month(void **st)
{
	struct fx *f = *st;
	struct store *s2;
	struct store_activity_in a = { .vendor = "acme", .ref = "r1", .gtin = BOUGHT,
				       .kind = "delivery", .at_ms = 1 };
	bool created = false;
	int64_t conv = 0;
	struct pgfx_watch w;
	pos_err e = { 0 };

	snprintf(a.txn, sizeof a.txn, "%s", f->txn);
	assert_int_equal(store_activity_put(f->s, &a, 1, &created, &e), 0);
	pg_run(f->t,
	       "INSERT INTO hh_messages(id, hhid, vendor, kind, text, activity_id, state, created) "
	       "SELECT 77, ?1, 'acme', 'activity', 'Delivery', id, 'open', 1 FROM activities "
	       "WHERE ref = 'r1'",
	       f->hh[0]);
	s2 = reopen(f);
	pgfx_watch_begin(f->t, &w, SCANS("baskets", "="), SCANS("baskets", "<>"));
	assert_int_equal(store_message_support(s2, 1, 77, 2, &conv, &e), 0);
	assert_true(conv > 0);
	store_close(s2);
	pgfx_watch_end(f->t, &w);
}

/* A receipt's basket is found by its txn in basket_txns and read from its
 * own month; a txn no basket has is not found (by baskets.txn, every
 * month's txn index was probed). */
static void a_receipt_by_txn_reads_only_its_basket_s_month(void **st)
{
	struct fx *f = *st;
	struct store *s2 = reopen(f);
	struct store_receipt r;
	struct pgfx_watch w;
	pos_err e = { 0 };

	pgfx_watch_begin(f->t, &w, SCANS("baskets", "="), SCANS("baskets", "<>"));
	assert_int_equal(store_receipt_by_txn(s2, f->txn, &r, &e), 0);
	assert_string_equal(r.txn, f->txn);
	assert_int_equal(r.ts_ms, f->ts);
	assert_string_equal(r.store, "S1");
	assert_string_equal(r.terminal, "T1");
	assert_string_equal(r.hhid, f->hh[0]);
	assert_true(r.basket_id > 0);
	assert_int_equal(store_receipt_by_txn(s2, "0190a000-0000-7000-8000-999999999999", &r, &e),
			 POS_ENOTFOUND);
	store_close(s2);
	pgfx_watch_end(f->t, &w);
}

/* A receipt found by its token's hash reads its basket from the basket's
 * month (by receipts.basket_id alone, every month's primary key was
 * probed). */
static void a_receipt_by_hash_reads_only_its_basket_s_month(void **st)
{
	struct fx *f = *st;
	struct store *s2;
	unsigned char hash[32], none[32];
	struct store_receipt r;
	struct pgfx_watch w;
	pos_err e = { 0 };

	memset(hash, 0xab, sizeof hash);
	memset(none, 0xcd, sizeof none);
	pg_run(f->t,
	       "INSERT INTO receipts(hash, basket_id) SELECT decode(repeat('ab', 32), 'hex'), id "
	       "FROM basket_txns WHERE txn = ?1",
	       f->txn);
	s2 = reopen(f);
	pgfx_watch_begin(f->t, &w, SCANS("baskets", "="), SCANS("baskets", "<>"));
	assert_int_equal(store_receipt_find(s2, hash, &r, &e), 0);
	assert_string_equal(r.txn, f->txn);
	assert_int_equal(r.ts_ms, f->ts);
	assert_string_equal(r.hhid, f->hh[0]);
	assert_int_equal(store_receipt_find(s2, none, &r, &e), POS_ENOTFOUND);
	store_close(s2);
	pgfx_watch_end(f->t, &w);
}

/* A receipt conversation finds its household through the receipt's basket
 * in that basket's month. The basket has no household, so the facts stop
 * there (a household's facts read its baskets in every month by hhid). */
static void a_receipt_conversation_s_household_reads_only_its_month(void **st)
{
	struct fx *f = *st;
	struct store *s2;
	struct store_conversation c = { .kind = STORE_CONV_RECEIPT };
	struct store_facts facts;
	struct pgfx_watch w;
	pos_err e = { 0 };

	put_days(f, "", MARCH, 1);
	snprintf(c.txn, sizeof c.txn, "0190a000-0000-7000-8000-%012d", ntxn);
	s2 = reopen(f);
	pgfx_watch_begin(f->t, &w, SCANS("baskets", "="), SCANS("baskets", "<>"));
	assert_int_equal(store_conversation_facts(s2, &c, (MARCH + 20) * DAY, &facts, &e), 0);
	assert_false(facts.known);
	store_close(s2);
	pgfx_watch_end(f->t, &w);
}

/* Probes of the primary keys of items' March partition, or of its other
 * months': a basket's items are read by that key, a GTIN's rows never. */
#define ITEM_PROBES(op)                                                                        \
	"SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes "                          \
	"WHERE indexrelname ~ '^items_[0-9]{6}_pkey$' AND indexrelname " op " 'items_202503_pkey'"

static int related_cb(const struct store_related *r, void *arg)
{
	int *n = arg;

	if (r->baskets != 60 || r->lift < 0.999 || r->lift > 1.001)
		return -1;
	(*n)++;
	return 0;
}

/* The lift of an item bought in March only: the items of its baskets are
 * read from March alone. The co-purchased items' own counts read every
 * month by GTIN (their index), which is by design, so what is watched is
 * the probes by basket. On tables this small the planner scans every
 * month whatever the text; with sequential scans off (PGOPTIONS, for the
 * store's connection only) it probes, as it does at scale: the join on
 * basket_id alone probes every month's primary key. */
static void the_related_items_read_only_the_item_s_baskets_months(void **st)
{
	struct fx *f = *st;
	struct store *s2;
	struct pgfx_watch w;
	int n = 0;
	pos_err e = { 0 };

	pg_run(f->t, "DELETE FROM items WHERE gtin = '" BOUGHT "' AND ts NOT BETWEEN "
		     "1740787200000 AND 1743465599999", NULL);
	assert_int_equal(setenv("PGOPTIONS", "-c enable_seqscan=off", 1), 0);
	s2 = reopen(f);
	unsetenv("PGOPTIONS");
	pgfx_watch_begin(f->t, &w, ITEM_PROBES("="), ITEM_PROBES("<>"));
	/* 60 March baskets of 220 hold it, and 60 of the 220 holding each of
	 * the two others: a lift of 1.0 for both. */
	assert_int_equal(store_items_related(s2, BOUGHT, 2, 0.5, 10, related_cb, &n, &e), 0);
	assert_int_equal(n, 2);
	store_close(s2);
	pgfx_watch_end(f->t, &w);
}

/* A recall finds the item's rows by GTIN in every month (its index), and
 * then each row's basket in the row's own month only. */
static void a_recall_reads_only_its_buyers_months_baskets(void **st)
{
	struct fx *f = *st;
	struct store *s2 = reopen(f);
	struct store_vendor_event ev = { .vendor = "acme", .id = "ev1", .kind = "recall",
					 .gtin = BOUGHT, .text = "return it" };
	bool created = false;
	long reached = 0;
	struct pgfx_watch w;
	pos_err e = { 0 };

	/* hh[1]'s baskets have the item too: only March's may be read. */
	pg_run(f->t, "DELETE FROM items WHERE gtin = '" BOUGHT "' AND ts NOT BETWEEN "
		     "1740787200000 AND 1743465599999", NULL);
	pgfx_watch_begin(f->t, &w, SCANS("baskets", "="), SCANS("baskets", "<>"));
	assert_int_equal(store_vendor_event_apply(s2, &ev, 1, &reached, &created, &e), 0);
	assert_int_equal(reached, 1);
	store_close(s2);
	pgfx_watch_end(f->t, &w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(the_household_page_reads_only_its_months_items,
						setup, teardown),
		cmocka_unit_test_setup_teardown(the_facts_read_only_their_months_items, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_receipt_s_lines_read_only_its_month, setup,
						teardown),
		cmocka_unit_test_setup_teardown(the_next_offers_read_only_the_households_months,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_device_s_products_read_only_their_months_items,
						setup, teardown),
		cmocka_unit_test_setup_teardown(an_activity_reads_only_its_sale_s_month, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_recall_reads_only_its_buyers_months_baskets,
						setup, teardown),
		cmocka_unit_test_setup_teardown(an_activity_finds_its_sale_in_its_month_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(the_related_items_read_only_the_item_s_baskets_months,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_booking_s_support_reads_only_its_sale_s_month, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_receipt_by_txn_reads_only_its_basket_s_month, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_receipt_by_hash_reads_only_its_basket_s_month, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_receipt_conversation_s_household_reads_only_its_month,
						setup, teardown),
	};
	char dsn[256], why[512];

	if (pgfx_try_fresh("test_store_prune", dsn, sizeof(dsn), why, sizeof(why)) != 0) {
		printf("# SKIP PostgreSQL group: no PostgreSQL test cluster "
		       "(POS_TEST_PG_DSN; tests/pg/pgctl)\n");
		return 0;
	}
	return cmocka_run_group_tests_name("store reads pruned to their month on PostgreSQL",
					   tests, NULL, NULL);
}
