/* The analysts' folded tables: store_analyst_fold in batches and again
 * after new baskets (bits OR'ed in, the mark moved) and after a merge,
 * cohorts, populations and also_bought by day and store read back from
 * them, the household lines page by page, and an offer's moves (and an
 * unknown offer). */
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
#include "pg_fixture.h"
#include "store_fixture.h"

#define DAY 86400000LL
#define D0 20100 /* a day number: 2025-01-14 */
#define MILK "09520000000011"
#define BREAD "09520000000028"
#define TEA "09520000000042"

static char hh[4][DEIDENT_ID_LEN + 1];
static int ntxn;

static void households(struct store *s)
{
	for (int i = 0; i < 4; i++) {
		unsigned char idx[DEIDENT_INDEX_LEN] = { 0 };
		char fresh[DEIDENT_ID_LEN + 1];
		bool created = false;
		pos_err e = { 0 };

		idx[0] = (unsigned char)(i + 1);
		assert_int_equal(deident_hhid_new(fresh, &e), 0);
		assert_int_equal(store_resolve(s, idx, true, fresh, hh[i], &created, &e), 0);
	}
}

/* One basket of household h on day d at store st with items g1 (and g2);
 * g1 NULL: none. */
static void put(struct store *s, int h, int64_t d, const char *st, const char *g1, const char *g2)
{
	struct store_item it[2] = { { "", 1, 150 }, { "", 2, 200 } };
	struct store_basket b;
	enum store_put_result r = 0;
	pos_err e = { 0 };

	memset(&b, 0, sizeof b);
	snprintf(b.txn, sizeof b.txn, "0190a000-0000-7000-8000-%012d", ++ntxn);
	b.ts_ms = d * DAY + 12 * 3600000LL;
	snprintf(b.store, sizeof b.store, "%s", st);
	snprintf(b.terminal, sizeof b.terminal, "T1");
	snprintf(b.hhid, sizeof b.hhid, "%s", hh[h]);
	memset(b.digest, ntxn, sizeof b.digest);
	if (g1)
		snprintf(it[0].gtin, sizeof it[0].gtin, "%s", g1);
	if (g2)
		snprintf(it[1].gtin, sizeof it[1].gtin, "%s", g2);
	b.items = it;
	b.n_items = g2 ? 2 : g1 ? 1 : 0;
	assert_int_equal(store_put_baskets(s, &b, 1, &r, &e), 0);
	assert_int_equal(r, STORE_PUT_CREATED);
}

static void fold_all(struct store *s, long batch, long want_folded)
{
	long folded = 0, total = 0;
	bool more = true;
	pos_err e = { 0 };

	while (more) {
		assert_int_equal(store_analyst_fold(s, batch, 1, &folded, &more, &e), 0);
		assert_true(folded <= batch);
		total += folded;
	}
	assert_int_equal(total, want_folded);
}

static size_t cohort(struct store *s, const char *g, int64_t from, int64_t to, const char *st,
		     int *first, int *last)
{
	struct store_analyst_days f = { .gtin = g, .from_day = from, .to_day = to, .store = st };
	int *a = NULL, *b = NULL;
	size_t n = 0;
	pos_err e = { 0 };

	assert_int_equal(store_analyst_days_cohort(s, &f, &a, &b, &n, &e), 0);
	for (size_t i = 0; i < n; i++) {
		first[i] = a[i];
		last[i] = b[i];
	}
	free(a);
	free(b);
	return n;
}

struct rows {
	char gtin[8][15];
	long cohort[8], pop[8];
	int n;
};

static int row_cb(const struct store_analyst_other *o, void *arg)
{
	struct rows *r = arg;

	snprintf(r->gtin[r->n], 15, "%s", o->gtin);
	r->cohort[r->n] = o->cohort;
	r->pop[r->n] = o->population;
	r->n++;
	return 0;
}

static void fold_cohort_population_also(void **st)
{
	struct fx *f = *st;
	struct store *s = f->s;
	int first[8], last[8];
	long pop = 0;
	struct rows r = { 0 };
	pos_err e = { 0 };
	struct store_analyst_days all = { .gtin = MILK };

	households(s);
	/* hh0: milk+bread on D0 and D0+10 at S1; hh1: milk on D0+3 at S2,
	 * tea on D0+20; hh2: bread only, D0+1; hh3: milk on D0+600 (the
	 * next 512-day block) at S1. */
	put(s, 0, D0, "S1", MILK, BREAD);
	put(s, 0, D0 + 10, "S1", MILK, BREAD);
	put(s, 1, D0 + 3, "S2", MILK, NULL);
	put(s, 1, D0 + 20, "S2", TEA, NULL);
	put(s, 2, D0 + 1, "S1", BREAD, NULL);
	put(s, 3, D0 + 600, "S1", MILK, NULL);
	fold_all(s, 4, 6);
	fold_all(s, 4, 0);

	assert_int_equal(cohort(s, MILK, 0, 0, NULL, first, last), 3);
	assert_int_equal(cohort(s, MILK, D0, D0 + 11, NULL, first, last), 2);
	/* hh0 bought on D0 and D0+10: its first and last day in the filter. */
	assert_true((first[0] == D0 && last[0] == D0 + 10) || (first[1] == D0 && last[1] == D0 + 10));
	assert_int_equal(cohort(s, MILK, D0 + 1, D0 + 10, NULL, first, last), 1);
	assert_int_equal(first[0], D0 + 3);
	assert_int_equal(cohort(s, MILK, D0, D0 + 30, "S2", first, last), 1);
	assert_int_equal(cohort(s, MILK, D0 + 500, 0, NULL, first, last), 1);
	assert_int_equal(first[0], D0 + 600);

	all.from_day = D0;
	all.to_day = D0 + 2;
	assert_int_equal(store_analyst_days_population(s, &all, &pop, &e), 0);
	assert_int_equal(pop, 2); /* hh0 on D0, hh2 on D0+1 */
	all.store = "S2";
	all.to_day = D0 + 30;
	assert_int_equal(store_analyst_days_population(s, &all, &pop, &e), 0);
	assert_int_equal(pop, 1);

	/* Milk's cohort in the first 30 days: hh0, hh1. Bread: hh0 of it,
	 * hh0 and hh2 of all; tea: hh1 of it and of all. */
	all.store = NULL;
	assert_int_equal(store_analyst_days_also(s, &all, row_cb, &r, &e), 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.gtin[0], BREAD);
	assert_int_equal(r.cohort[0], 1);
	assert_int_equal(r.pop[0], 2);
	assert_string_equal(r.gtin[1], TEA);
	assert_int_equal(r.cohort[1], 1);
	assert_int_equal(r.pop[1], 1);

	/* New baskets fold in on top: hh2 buys milk later; bits are OR'ed. */
	put(s, 2, D0 + 5, "S1", MILK, NULL);
	put(s, 0, D0 + 2, "S1", MILK, NULL);
	fold_all(s, 100, 2);
	assert_int_equal(cohort(s, MILK, D0, D0 + 11, NULL, first, last), 3);
	for (int i = 0; i < 3; i++)
		if (first[i] == D0)
			assert_int_equal(last[i], D0 + 10);
}

struct lines {
	int n;
	char txn[16][37];
};

static int line_cb(const struct store_analyst_line *l, void *arg)
{
	struct lines *x = arg;

	if (x->n == 0 || strcmp(x->txn[x->n - 1], l->txn) != 0)
		snprintf(x->txn[x->n++], 37, "%s", l->txn);
	return 0;
}

static void lines_by_page(void **st)
{
	struct fx *f = *st;
	struct store_analyst_pos pos = { INT64_MIN, 0 };
	struct lines x = { 0 };
	struct store_analyst_move m;
	pos_err e = { 0 };
	int rc, pages = 0;
	char want[37];

	households(f->s);
	for (int i = 0; i < 5; i++)
		put(f->s, 0, D0 + 5 - i, "S1", MILK, BREAD);
	do {
		rc = store_analyst_lines_page(f->s, hh[0], &pos, 2, line_cb, &x, &e);
		assert_true(rc >= 0);
		pages++;
	} while (rc > 0);
	assert_int_equal(x.n, 5);
	assert_int_equal(pages, 3);
	/* Oldest first: the last basket put is the first line. */
	snprintf(want, sizeof want, "0190a000-0000-7000-8000-%012d", ntxn);
	assert_string_equal(x.txn[0], want);
	assert_int_equal(store_analyst_offer_moves(f->s, "nope", 7 * DAY, &m, &e), POS_ENOTFOUND);
}

/* An offer's moves with baskets around its redemptions: each redemption
 * sums the items of its household's baskets within the window before and
 * after it (a household that redeemed twice counts once, its baskets for
 * each redemption; a basket without items and a household without
 * baskets add nothing, a redemption without a household is left out). */
static void an_offer_s_moves_sum_the_baskets_around_each_redemption(void **st)
{
	struct fx *f = *st;
	bool pg = f->db[0] != '/';
	struct store_analyst_move m;
	struct db *t = NULL;
	pos_err e = { 0 };
	char sql[1024];
	int64_t r0 = D0 * DAY + 12 * 3600000LL;

	households(f->s);
	put(f->s, 0, D0 - 10, "S1", MILK, BREAD); /* before the window */
	put(f->s, 0, D0 - 2, "S1", MILK, BREAD);  /* 350 before */
	put(f->s, 0, D0 + 1, "S1", TEA, NULL);    /* 150 after */
	put(f->s, 0, D0 + 20, "S1", MILK, NULL);  /* after the window, next month */
	put(f->s, 1, D0 + 3, "S2", MILK, BREAD);  /* 350 after */
	put(f->s, 2, D0 + 1, "S1", NULL, NULL);   /* no items */
	assert_int_equal(pg ? db_open_pg(f->db, false, &t, &e) : db_open_sqlite(f->db, false, &t, &e),
			 0);
	assert_int_equal(db_exec(t,
				 "INSERT INTO offers(id, title, reward, target, created) VALUES "
				 "('of1', 'Tea week', 'r', 't', 0), ('of2', 'Other', 'r', 't', 0)",
				 &e),
			 0);
	for (int d = 1; d <= 5; d++) {
		snprintf(sql, sizeof sql,
			 pg ? "INSERT INTO offer_devices(id, token_hash, created) VALUES "
			      "(%d, decode(repeat('0%d', 32), 'hex'), 0)"
			    : "INSERT INTO offer_devices(id, token_hash, created) VALUES "
			      "(%d, randomblob(32), 0)",
			 d, d);
		assert_int_equal(db_exec(t, sql, &e), 0);
	}
	/* Codes 1-2: household 0 twice; 3: household 1; 4: household 2 (its
	 * one basket has no items); 5: no household; 6: another offer's. */
	for (int c = 1; c <= 6; c++) {
		const char *h = c <= 2 ? hh[0] : c == 3 ? hh[1] : c == 4 ? hh[2] : NULL;
		int dev = c <= 5 ? c : 1;

		snprintf(sql, sizeof sql,
			 "INSERT INTO offer_codes(code, offer_id, device_id, accepted) VALUES "
			 "('980000000000%d', '%s', %d, 0)",
			 c, c <= 5 ? "of1" : "of2", dev);
		assert_int_equal(db_exec(t, sql, &e), 0);
		snprintf(sql, sizeof sql,
			 "INSERT INTO offer_redemptions(code, basket_id, ts, store, hhid) VALUES "
			 "('980000000000%d', (SELECT min(id) FROM baskets), %lld, 'S1', %s%s%s)",
			 c, (long long)(r0 + c), h ? "'" : "", h ? h : "NULL", h ? "'" : "");
		assert_int_equal(db_exec(t, sql, &e), 0);
	}
	db_close(t);
	assert_int_equal(store_analyst_offer_moves(f->s, "of1", 7 * DAY, &m, &e), 0);
	assert_string_equal(m.title, "Tea week");
	assert_int_equal(m.households, 3);
	assert_int_equal(m.redemptions, 4);
	assert_int_equal(m.before_cents, 2 * 350);
	assert_int_equal(m.after_cents, 2 * 150 + 350);
}

/* A merge: the household merged away counts for nobody, the survivor
 * gains its days, so the cohort never counts one household twice. */
static void a_merge_counts_the_survivor_once(void **st)
{
	struct fx *f = *st;
	struct store *s = f->s;
	struct store_analyst_days pf = { .from_day = D0, .to_day = D0 + 30 };
	struct rows r = { 0 };
	int first[8], last[8];
	long pop = 0;
	pos_err e = { 0 };

	households(s);
	put(s, 0, D0, "S1", MILK, NULL);
	put(s, 1, D0 + 7, "S1", MILK, BREAD);
	fold_all(s, 100, 2);
	assert_int_equal(cohort(s, MILK, D0, D0 + 30, NULL, first, last), 2);
	assert_int_equal(store_merge(s, hh[1], hh[0], &e), 0);
	fold_all(s, 100, 0);
	assert_int_equal(cohort(s, MILK, D0, D0 + 30, NULL, first, last), 1);
	assert_int_equal(first[0], D0);
	assert_int_equal(last[0], D0 + 7);
	assert_int_equal(store_analyst_days_population(s, &pf, &pop, &e), 0);
	assert_int_equal(pop, 1);
	pf.gtin = MILK;
	assert_int_equal(store_analyst_days_also(s, &pf, row_cb, &r, &e), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.cohort[0], 1);
	assert_int_equal(r.pop[0], 1);
}

static void fold_refuses_a_zero_batch(void **st)
{
	struct fx *f = *st;
	long folded = 7;
	bool more = true;
	pos_err e = { 0 };

	assert_int_equal(store_analyst_fold(f->s, 0, 1, &folded, &more, &e), POS_EINVAL);
	assert_int_equal(folded, 0);
	assert_false(more);
}

/* ---------------------------------------------------------------- PostgreSQL
 * The same tests on a fresh database of the test cluster (pg_fixture.h:
 * POS_TEST_PG_DSN), when there is one; and baskets committed out of id
 * order by two connections, which only PostgreSQL allows. */

static int pg_fresh(char *out, size_t cap)
{
	char why[512];

	out[0] = '\0';
	return pgfx_try_fresh("test_analyst_fold", out, cap, why, sizeof(why)) == 0 ? 0 : -1;
}

static int pg_open(const char *dsn, struct store **s)
{
	struct store_where w = { .backend = STORE_POSTGRESQL, .dsn = dsn };
	pos_err e = { 0 };

	return store_open_at(&w, s, &e);
}

static int setup_pg(void **st)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(pg_fresh(f->db, sizeof(f->db)), 0);
	assert_int_equal(pg_open(f->db, &f->s), 0);
	*st = f;
	return 0;
}

static int teardown_pg(void **st)
{
	struct fx *f = *st;

	store_close(f->s);
	free(f);
	return 0;
}

#define PG_SCANS(kind)                                                                      \
	"SELECT coalesce(sum(" kind "), 0) FROM pg_stat_user_tables "                          \
	"WHERE relname ~ '^(items|baskets)_[0-9]{6}$'"

/* n baskets of 20 items for household h on day d, in one group. */
static void put_many(struct store *s, int h, int64_t d, int n)
{
	struct store_item it[20];
	struct store_basket *b = calloc((size_t)n, sizeof *b);
	enum store_put_result *r = calloc((size_t)n, sizeof *r);
	pos_err e = { 0 };

	assert_non_null(b);
	assert_non_null(r);
	for (int k = 0; k < 20; k++) {
		char d13[14];

		snprintf(d13, sizeof d13, "095200000%04d", k);
		snprintf(it[k].gtin, sizeof it[k].gtin, "%s0", d13);
		it[k].qty = 1;
		it[k].price_cents = 100 + k;
	}
	for (int i = 0; i < n; i++) {
		snprintf(b[i].txn, sizeof b[i].txn, "0190a000-0000-7000-8000-%012d", ++ntxn);
		b[i].ts_ms = d * DAY + i;
		snprintf(b[i].store, sizeof b[i].store, "S1");
		snprintf(b[i].terminal, sizeof b[i].terminal, "T1");
		snprintf(b[i].hhid, sizeof b[i].hhid, "%s", hh[(h + i) % 4]);
		memset(b[i].digest, ntxn, sizeof b[i].digest);
		b[i].items = it;
		b[i].n_items = 20;
	}
	assert_int_equal(store_put_baskets(s, b, (size_t)n, r, &e), 0);
	free(b);
	free(r);
}

/* A fold reads its baskets and their items by index, however many are
 * stored: written as a plain join, the planner (no statistics on the
 * partitioned parents) scanned and sorted every item row for each fold. */
static void a_fold_reads_only_its_baskets(void **st)
{
	struct fx *f = *st;
	struct store *s2 = NULL;
	struct db *t = NULL;
	struct pgfx_watch w;
	long folded = 0;
	bool more = false;
	pos_err e = { 0 };

	assert_int_equal(db_open_pg(f->db, false, &t, &e), 0);
	households(f->s);
	for (int i = 0; i < 6; i++)
		put_many(f->s, i, D0 + i, 500);
	fold_all(f->s, 5000, 3000);
	put_many(f->s, 0, D0 + 7, 200);
	pgfx_analyze_leaves(t);
	store_close(f->s);
	f->s = NULL;
	pgfx_others_gone(t);
	/* The fold's probes are seen, and no row is read by a scan (the
	 * empty months' partitions may be scanned). */
	pgfx_watch_begin(t, &w, PG_SCANS("idx_scan"), PG_SCANS("seq_tup_read"));
	assert_int_equal(pg_open(f->db, &s2), 0);
	assert_int_equal(store_analyst_fold(s2, 500, 1, &folded, &more, &e), 0);
	assert_int_equal(folded, 200);
	store_close(s2);
	pgfx_watch_end(t, &w);
	db_close(t);
}

#define PG_ITEM_SCANS(kind)                                                                 \
	"SELECT coalesce(sum(" kind "), 0) FROM pg_stat_user_tables "                          \
	"WHERE relname ~ '^items_[0-9]{6}$'"

static int count_line(const struct store_analyst_line *l, void *arg)
{
	(void)l;
	++*(long *)arg;
	return 0;
}

/* A page of a household's lines reads its baskets by the (hhid, ts)
 * index and their items by basket, however many are stored; all of its
 * lines read no item row by a scan. Written as joins on the partitioned
 * parents (no statistics there), the planner sorted a scan of every
 * basket for each page and probed every month's items per basket. */
static void a_household_s_lines_read_only_its_baskets(void **st)
{
	struct fx *f = *st;
	struct store_analyst_pos pos = { INT64_MIN, 0 };
	struct store *s2 = NULL;
	struct db *t = NULL;
	struct pgfx_watch w;
	long lines = 0, all = 0;
	pos_err e = { 0 };

	assert_int_equal(db_open_pg(f->db, false, &t, &e), 0);
	households(f->s);
	for (int i = 0; i < 6; i++)
		put_many(f->s, i, D0 + 31 * i, 500);
	pgfx_analyze_leaves(t);
	store_close(f->s);
	f->s = NULL;
	pgfx_others_gone(t);

	pgfx_watch_begin(t, &w, PG_SCANS("idx_scan"), PG_SCANS("seq_tup_read"));
	assert_int_equal(pg_open(f->db, &s2), 0);
	assert_int_equal(store_analyst_lines_page(s2, hh[0], &pos, 50, count_line, &lines, &e), 1);
	assert_int_equal(lines, 50 * 20);
	store_close(s2);
	pgfx_watch_end(t, &w);

	pgfx_watch_begin(t, &w, PG_SCANS("idx_scan"), PG_ITEM_SCANS("seq_tup_read"));
	assert_int_equal(pg_open(f->db, &s2), 0);
	assert_int_equal(store_analyst_lines(s2, hh[0], count_line, &all, &e), 0);
	assert_int_equal(all, 750 * 20);
	store_close(s2);
	pgfx_watch_end(t, &w);
	db_close(t);
}

/* A basket whose packed items (its own row's copy) cannot be read is
 * folded from its item rows: one damaged copy stops no fold. */
static void a_damaged_packed_basket_folds_from_its_rows(void **st)
{
	struct fx *f = *st;
	struct db *t = NULL;
	int first[8], last[8];
	pos_err e = { 0 };

	assert_int_equal(db_open_pg(f->db, false, &t, &e), 0);
	households(f->s);
	put(f->s, 0, D0, "S1", MILK, BREAD);
	put(f->s, 1, D0 + 1, "S1", TEA, NULL);
	assert_int_equal(db_exec(t, "UPDATE baskets SET items = '1,1,150,99:x' WHERE id = "
				    "(SELECT min(id) FROM baskets)", &e), 0);
	fold_all(f->s, 100, 2);
	assert_int_equal(cohort(f->s, MILK, 0, 0, NULL, first, last), 1);
	assert_int_equal(first[0], D0);
	assert_int_equal(cohort(f->s, BREAD, 0, 0, NULL, first, last), 1);
	assert_int_equal(cohort(f->s, TEA, 0, 0, NULL, first, last), 1);
	assert_int_equal(first[0], D0 + 1);
	db_close(t);
}

/* Basket ids come from one sequence: the first connection takes its id,
 * the second a higher one and commits first. A fold between the commits
 * sees the second; the next fold still takes in the first. */
static void baskets_committed_out_of_order_are_all_folded(void **st)
{
	struct fx *f = *st;
	struct store *s2 = NULL;
	struct store_analyst_days pf = { NULL, D0 - 5, D0 + 5, NULL };
	long folded = 0, pop = 0;
	bool more = true;
	pos_err e = { 0 };

	assert_int_equal(pg_open(f->db, &s2), 0);
	households(f->s);
	/* The month's partitions first: made inside the open transaction
	 * they would hold the second connection until it commits. */
	put(f->s, 2, D0, "S1", TEA, NULL);
	assert_int_equal(store_analyst_fold(s2, 100, 1, &folded, &more, &e), 0);
	assert_int_equal(folded, 1);
	assert_int_equal(store_begin(f->s, &e), 0);
	/* The lower id, not committed; without items, which would hold the
	 * item counter's row until the commit, and from another store, whose
	 * terminal's last-seen row the second connection does not touch. */
	put(f->s, 0, D0, "S2", NULL, NULL);
	put(s2, 1, D0, "S1", BREAD, NULL);  /* the higher id, committed */
	assert_int_equal(store_analyst_fold(s2, 100, 1, &folded, &more, &e), 0);
	assert_int_equal(folded, 1);
	assert_false(more);
	assert_int_equal(store_commit(f->s, &e), 0);
	assert_int_equal(store_analyst_fold(s2, 100, 1, &folded, &more, &e), 0);
	assert_int_equal(folded, 1);
	assert_int_equal(store_analyst_days_population(s2, &pf, &pop, &e), 0);
	assert_int_equal(pop, 3);
	assert_int_equal(store_analyst_fold(s2, 100, 1, &folded, &more, &e), 0);
	assert_int_equal(folded, 0);
	store_close(s2);
}

static int run_pg(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(fold_cohort_population_also, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(lines_by_page, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(an_offer_s_moves_sum_the_baskets_around_each_redemption,
						setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(a_merge_counts_the_survivor_once, setup_pg,
						teardown_pg),
		cmocka_unit_test_setup_teardown(fold_refuses_a_zero_batch, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(a_fold_reads_only_its_baskets, setup_pg, teardown_pg),
		cmocka_unit_test_setup_teardown(a_household_s_lines_read_only_its_baskets, setup_pg,
						teardown_pg),
		cmocka_unit_test_setup_teardown(a_damaged_packed_basket_folds_from_its_rows, setup_pg,
						teardown_pg),
		cmocka_unit_test_setup_teardown(baskets_committed_out_of_order_are_all_folded,
						setup_pg, teardown_pg),
	};
	char dsn[256];
	struct store *s = NULL;

	if (pg_fresh(dsn, sizeof(dsn)) < 0 || pg_open(dsn, &s) < 0) {
		printf("# PostgreSQL group skipped: no PostgreSQL test cluster "
		       "(POS_TEST_PG_DSN; tests/pg/pgctl)\n");
		return 0;
	}
	store_close(s);
	return cmocka_run_group_tests_name("analyst fold on PostgreSQL", tests, NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(fold_cohort_population_also, setup, teardown),
		cmocka_unit_test_setup_teardown(lines_by_page, setup, teardown),
		cmocka_unit_test_setup_teardown(an_offer_s_moves_sum_the_baskets_around_each_redemption,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_merge_counts_the_survivor_once, setup, teardown),
		cmocka_unit_test_setup_teardown(fold_refuses_a_zero_batch, setup, teardown),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	return failed + run_pg();
}
