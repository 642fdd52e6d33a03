/* store (SQLite): households found by tid index, idempotent basket ingest,
 * merges, newest-first history and a schema that survives reopening. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "deident.h"
#include "offers.h"
#include "store.h"
#include "pg_fixture.h"
#include "store_fixture.h"
#include "store_public.h"

static void idx_of(unsigned char idx[DEIDENT_INDEX_LEN], int k)
{
	memset(idx, 0, DEIDENT_INDEX_LEN);
	idx[0] = (unsigned char)k;
	idx[31] = 0xA5;
}

static void new_hhid(char out[DEIDENT_ID_LEN + 1])
{
	pos_err e = { 0 };
	assert_int_equal(deident_hhid_new(out, &e), 0);
}

static struct store_item items3[3] = {
	{ "00012345678905", 2, 199 },
	{ "04006381333931", 1, -1 },
	{ "09780201379624", 3, 5000 },
};

static void basket(struct store_basket *b, const char *txn, int64_t ts, const char *hhid,
		   unsigned char dig)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->txn, sizeof(b->txn), "%s", txn);
	b->ts_ms = ts;
	snprintf(b->store, sizeof(b->store), "S1");
	snprintf(b->terminal, sizeof(b->terminal), "T1");
	if (hhid)
		snprintf(b->hhid, sizeof(b->hhid), "%s", hhid);
	memset(b->digest, dig, sizeof(b->digest));
	b->items = items3;
	b->n_items = 3;
}

static const char *txn_n(int n)
{
	static char buf[8][37];
	static int k;
	char *p = buf[k++ % 8];
	snprintf(p, 37, "0190a000-0000-7000-8000-%012d", n);
	return p;
}

static void put1(struct store *s, const struct store_basket *b, enum store_put_result want)
{
	enum store_put_result r = 0;
	pos_err e = { 0 };
	assert_int_equal(store_put_baskets(s, b, 1, &r, &e), 0);
	assert_int_equal(r, want);
}

static void resolve_unknown_without_auto_enrol_is_not_found(void **st)
{
	struct fx *f = *st;
	unsigned char idx[32];
	char hh[DEIDENT_ID_LEN + 1];
	bool created = true;
	pos_err e = { 0 };

	idx_of(idx, 1);
	assert_int_equal(store_resolve(f->s, idx, false, NULL, hh, &created, &e), POS_ENOTFOUND);
	assert_false(created);
}

static void resolve_auto_enrols_once_then_finds_same_household(void **st)
{
	struct fx *f = *st;
	unsigned char idx[32];
	char hh1[DEIDENT_ID_LEN + 1], hh2[DEIDENT_ID_LEN + 1], fresh[DEIDENT_ID_LEN + 1];
	bool created = false;
	pos_err e = { 0 };
	struct store_household h;

	idx_of(idx, 2);
	new_hhid(fresh);
	assert_int_equal(store_resolve(f->s, idx, true, fresh, hh1, &created, &e), 0);
	assert_true(created);
	assert_string_equal(hh1, fresh);
	new_hhid(fresh);
	assert_int_equal(store_resolve(f->s, idx, true, fresh, hh2, &created, &e), 0);
	assert_false(created);
	assert_string_equal(hh1, hh2);
	assert_int_equal(store_resolve(f->s, idx, false, NULL, hh2, &created, &e), 0);
	assert_string_equal(hh1, hh2);
	assert_true(store_household_exists(f->s, hh1));
	assert_false(store_household_exists(f->s, fresh));
	assert_int_equal(store_household(f->s, hh1, &h, &e), 0);
	assert_int_equal(h.n_tids, 1);
	assert_int_equal(h.n_baskets, 0);
	assert_int_equal(h.last_basket_ms, 0);
	assert_true(h.created_ms > 0);
}

static void link_to_another_household_conflicts_and_changes_nothing(void **st)
{
	struct fx *f = *st;
	unsigned char idx[32];
	char a[DEIDENT_ID_LEN + 1], b[DEIDENT_ID_LEN + 1], got[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	idx_of(idx, 3);
	new_hhid(a);
	new_hhid(b);
	assert_int_equal(store_link(f->s, idx, a, &e), 0);
	assert_int_equal(store_link(f->s, idx, a, &e), 0);
	assert_int_equal(store_link(f->s, idx, b, &e), POS_ECONFLICT);
	assert_non_null(strstr(e.msg, a));
	assert_false(store_household_exists(f->s, b));
	assert_int_equal(store_resolve(f->s, idx, false, NULL, got, NULL, &e), 0);
	assert_string_equal(got, a);
	assert_int_equal(store_link(f->s, idx, "hh_bad", &e), POS_EINVAL);
}

static void unlink_removes_link_and_second_unlink_is_not_found(void **st)
{
	struct fx *f = *st;
	unsigned char idx[32];
	char a[DEIDENT_ID_LEN + 1], got[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	idx_of(idx, 4);
	new_hhid(a);
	assert_int_equal(store_link(f->s, idx, a, &e), 0);
	assert_int_equal(store_unlink(f->s, idx, &e), 0);
	assert_int_equal(store_unlink(f->s, idx, &e), POS_ENOTFOUND);
	assert_int_equal(store_resolve(f->s, idx, false, NULL, got, NULL, &e), POS_ENOTFOUND);
	assert_true(store_household_exists(f->s, a)); /* its baskets stay */
}

static void batch_transaction_keeps_good_links_when_one_conflicts(void **st)
{
	struct fx *f = *st;
	unsigned char i1[32], i2[32], i3[32];
	char a[DEIDENT_ID_LEN + 1], b[DEIDENT_ID_LEN + 1], got[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	idx_of(i1, 10);
	idx_of(i2, 11);
	idx_of(i3, 12);
	new_hhid(a);
	new_hhid(b);
	assert_int_equal(store_link(f->s, i1, a, &e), 0);
	assert_int_equal(store_begin(f->s, &e), 0);
	assert_int_equal(store_link(f->s, i2, b, &e), 0);
	assert_int_equal(store_link(f->s, i1, b, &e), POS_ECONFLICT);
	assert_int_equal(store_link(f->s, i3, b, &e), 0);
	assert_int_equal(store_commit(f->s, &e), 0);
	assert_int_equal(store_resolve(f->s, i2, false, NULL, got, NULL, &e), 0);
	assert_string_equal(got, b);
	assert_int_equal(store_resolve(f->s, i3, false, NULL, got, NULL, &e), 0);
	assert_string_equal(got, b);
	assert_int_equal(store_resolve(f->s, i1, false, NULL, got, NULL, &e), 0);
	assert_string_equal(got, a);

	/* and a rolled back batch leaves nothing */
	idx_of(i1, 13);
	assert_int_equal(store_begin(f->s, &e), 0);
	assert_int_equal(store_link(f->s, i1, b, &e), 0);
	store_rollback(f->s);
	assert_int_equal(store_resolve(f->s, i1, false, NULL, got, NULL, &e), POS_ENOTFOUND);
}

static void put_same_txn_is_duplicate_other_digest_is_conflict(void **st)
{
	struct fx *f = *st;
	struct store_basket b[4];
	enum store_put_result r[4];
	struct store_stats stats;
	char hh[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	new_hhid(hh);
	basket(&b[0], txn_n(1), 1000, hh, 1);
	put1(f->s, &b[0], STORE_PUT_CREATED);
	put1(f->s, &b[0], STORE_PUT_DUPLICATE);
	basket(&b[1], txn_n(1), 2000, hh, 2);
	put1(f->s, &b[1], STORE_PUT_CONFLICT);

	/* one batch: new, repeat of stored, repeat inside the batch, conflict */
	basket(&b[0], txn_n(2), 3000, hh, 3);
	basket(&b[1], txn_n(1), 1000, hh, 1);
	basket(&b[2], txn_n(2), 3000, hh, 3);
	basket(&b[3], txn_n(1), 1000, NULL, 9);
	assert_int_equal(store_put_baskets(f->s, b, 4, r, &e), 0);
	assert_int_equal(r[0], STORE_PUT_CREATED);
	assert_int_equal(r[1], STORE_PUT_DUPLICATE);
	assert_int_equal(r[2], STORE_PUT_DUPLICATE);
	assert_int_equal(r[3], STORE_PUT_CONFLICT);

	assert_int_equal(store_stats(f->s, &stats, &e), 0);
	assert_int_equal(stats.baskets, 2);
	assert_int_equal(stats.items, 6);
	assert_int_equal(stats.households, 1);
}

static void unresolved_basket_is_stored_without_household(void **st)
{
	struct fx *f = *st;
	struct store_basket b;
	struct store_stats stats;
	pos_err e = { 0 };

	basket(&b, txn_n(5), 1000, NULL, 1);
	put1(f->s, &b, STORE_PUT_CREATED);
	assert_int_equal(store_stats(f->s, &stats, &e), 0);
	assert_int_equal(stats.baskets, 1);
	assert_int_equal(stats.households, 0);
}

static void bad_basket_fails_whole_batch_before_storing(void **st)
{
	struct fx *f = *st;
	struct store_basket b[2];
	enum store_put_result r[2];
	struct store_stats stats;
	pos_err e = { 0 };

	basket(&b[0], txn_n(6), 1000, NULL, 1);
	basket(&b[1], txn_n(7), 1000, "hh_notvalid", 1);
	assert_int_equal(store_put_baskets(f->s, b, 2, r, &e), POS_EINVAL);
	assert_int_equal(store_stats(f->s, &stats, &e), 0);
	assert_int_equal(stats.baskets, 0);
}

struct seen {
	int n;
	char txn[8][37];
	int64_t ts[8];
	size_t n_items[8];
	long price1[8];
	int stop_after;
};

static int collect(const struct store_basket *b, void *arg)
{
	struct seen *s = arg;
	if (s->n < 8) {
		memcpy(s->txn[s->n], b->txn, 37);
		s->ts[s->n] = b->ts_ms;
		s->n_items[s->n] = b->n_items;
		s->price1[s->n] = b->n_items > 1 ? b->items[1].price_cents : -2;
	}
	s->n++;
	if (s->stop_after && s->n == s->stop_after)
		return 42;
	return 0;
}

struct items_seen {
	size_t n;
	struct store_item it[23];
};

static int collect_items(const struct store_basket *b, void *arg)
{
	struct items_seen *s = arg;

	s->n = b->n_items;
	for (size_t i = 0; i < b->n_items && i < 23; i++)
		s->it[i] = b->items[i];
	return 0;
}

/* Items go in ten rows a statement and the rest one by one: 23 items (two
 * full statements and three single rows) come back complete and in order,
 * unknown prices included. */
static void every_item_of_a_long_basket_comes_back_in_order(void **st)
{
	struct fx *f = *st;
	struct store_basket b;
	struct store_item many[23];
	struct items_seen s;
	char hh[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	new_hhid(hh);
	for (size_t i = 0; i < 23; i++) {
		many[i] = items3[i % 3];
		many[i].qty = (int)i + 1;
		many[i].price_cents = i % 4 == 3 ? -1 : (long)(100 + i);
	}
	basket(&b, txn_n(90), 1000, hh, 9);
	b.items = many;
	b.n_items = 23;
	put1(f->s, &b, STORE_PUT_CREATED);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_history(f->s, hh, 0, 0, collect_items, &s, &e), 0);
	assert_int_equal(s.n, 23);
	for (size_t i = 0; i < 23; i++) {
		assert_string_equal(s.it[i].gtin, many[i].gtin);
		assert_int_equal(s.it[i].qty, many[i].qty);
		assert_int_equal(s.it[i].price_cents, many[i].price_cents);
	}
}

struct two_seen {
	size_t n;
	struct items_seen b[2];
};

static int collect_two(const struct store_basket *b, void *arg)
{
	struct two_seen *s = arg;

	if (s->n < 2)
		collect_items(b, &s->b[s->n]);
	s->n++;
	return 0;
}

/* f's database, on a connection of its own, runs sql. */
static void pg_run(struct fx *f, const char *sql)
{
	struct db *db = NULL;
	pos_err e = { 0 };

	assert_int_equal(db_open_pg(f->db, false, &db, &e), 0);
	assert_int_equal(db_exec(db, sql, &e), 0);
	db_close(db);
}

/* PostgreSQL keeps a basket's items twice: packed into its row for the
 * history, and as item rows for everything else. A basket whose packed
 * items are missing reads its item rows, and pos_basket_items (what the
 * migration and store-copy fill in) packs them the same: all three give
 * the same items in the same order, and a packed string that is damaged
 * or out of order is an error, never a different basket. */
static void history_reads_packed_items_and_item_rows_alike(void **st)
{
	struct fx *f = *st;
	struct store_basket b;
	struct store_item many[23];
	struct two_seen packed, rows;
	char hh[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	new_hhid(hh);
	for (size_t i = 0; i < 23; i++) {
		many[i] = items3[i % 3];
		many[i].qty = (int)i + 1;
		many[i].price_cents = i % 4 == 3 ? -1 : (long)(100 + i);
	}
	basket(&b, txn_n(95), 2000, hh, 9);
	b.items = many;
	b.n_items = 23;
	put1(f->s, &b, STORE_PUT_CREATED);
	basket(&b, txn_n(96), 1000, hh, 8);
	put1(f->s, &b, STORE_PUT_CREATED);

	/* the insert packed both, exactly as the migration packs item rows */
	pg_run(f, "DO $$ BEGIN IF EXISTS (SELECT 1 FROM baskets WHERE items IS NULL "
		  "OR items IS DISTINCT FROM pos_basket_items(id, ts)) THEN "
		  "RAISE EXCEPTION 'a basket not packed as stored'; END IF; END $$");
	memset(&packed, 0, sizeof(packed));
	assert_int_equal(store_history(f->s, hh, 0, 0, collect_two, &packed, &e), 0);
	pg_run(f, "UPDATE baskets SET items = NULL");
	memset(&rows, 0, sizeof(rows));
	assert_int_equal(store_history(f->s, hh, 0, 0, collect_two, &rows, &e), 0);
	assert_int_equal(packed.n, 2);
	assert_int_equal(rows.n, 2);
	assert_int_equal(packed.b[0].n, 23);
	assert_int_equal(packed.b[1].n, 3);
	assert_int_equal(rows.b[0].n, 23);
	assert_int_equal(rows.b[1].n, 3);
	for (size_t k = 0; k < 2; k++) {
		const struct store_item *want = k == 0 ? many : items3;
		for (size_t i = 0; i < packed.b[k].n; i++) {
			assert_string_equal(packed.b[k].it[i].gtin, want[i].gtin);
			assert_int_equal(packed.b[k].it[i].qty, want[i].qty);
			assert_int_equal(packed.b[k].it[i].price_cents, want[i].price_cents);
			assert_string_equal(rows.b[k].it[i].gtin, want[i].gtin);
			assert_int_equal(rows.b[k].it[i].qty, want[i].qty);
			assert_int_equal(rows.b[k].it[i].price_cents, want[i].price_cents);
		}
	}

	/* what the migration and store-copy fill in reads the same */
	pg_run(f, "UPDATE baskets SET items = pos_basket_items(id, ts)");
	memset(&rows, 0, sizeof(rows));
	assert_int_equal(store_history(f->s, hh, 0, 0, collect_two, &rows, &e), 0);
	assert_int_equal(rows.n, 2);
	for (size_t k = 0; k < 2; k++) {
		assert_int_equal(rows.b[k].n, packed.b[k].n);
		for (size_t i = 0; i < packed.b[k].n; i++) {
			assert_string_equal(rows.b[k].it[i].gtin, packed.b[k].it[i].gtin);
			assert_int_equal(rows.b[k].it[i].qty, packed.b[k].it[i].qty);
			assert_int_equal(rows.b[k].it[i].price_cents, packed.b[k].it[i].price_cents);
		}
	}

	pg_run(f, "UPDATE baskets SET items = '1,1,,14:00012345678905' || "
		  "'0,1,,14:00012345678905' WHERE ts = 1000");
	assert_int_equal(store_history(f->s, hh, 0, 0, collect_two, &rows, &e), POS_EDB);
	assert_non_null(strstr(e.msg, "unreadable items"));
	pg_run(f, "UPDATE baskets SET items = '0,1,,15:00012345678905' WHERE ts = 1000");
	assert_int_equal(store_history(f->s, hh, 0, 0, collect_two, &rows, &e), POS_EDB);
}

static void history_is_newest_first_and_to_is_exclusive(void **st)
{
	struct fx *f = *st;
	struct store_basket b;
	char hh[DEIDENT_ID_LEN + 1], other[DEIDENT_ID_LEN + 1];
	struct seen s;
	struct store_household h;
	pos_err e = { 0 };

	new_hhid(hh);
	new_hhid(other);
	basket(&b, txn_n(20), 2000, hh, 1);
	put1(f->s, &b, STORE_PUT_CREATED);
	basket(&b, txn_n(21), 4000, hh, 1);
	b.n_items = 1;
	put1(f->s, &b, STORE_PUT_CREATED);
	basket(&b, txn_n(22), 3000, hh, 1);
	put1(f->s, &b, STORE_PUT_CREATED);
	basket(&b, txn_n(23), 3500, other, 1);
	put1(f->s, &b, STORE_PUT_CREATED);

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_history(f->s, hh, 0, 0, collect, &s, &e), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.txn[0], txn_n(21));
	assert_string_equal(s.txn[1], txn_n(22));
	assert_string_equal(s.txn[2], txn_n(20));
	assert_int_equal(s.n_items[0], 1);
	assert_int_equal(s.n_items[1], 3);
	assert_int_equal(s.price1[1], -1); /* unknown price comes back unknown */

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_history(f->s, hh, 3000, 4000, collect, &s, &e), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.ts[0], 3000);

	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(store_history(f->s, hh, 0, 0, collect, &s, &e), 42);
	assert_int_equal(s.n, 2);

	assert_int_equal(store_household(f->s, hh, &h, &e), 0);
	assert_int_equal(h.n_baskets, 3);
	assert_int_equal(h.n_tids, 0);
	assert_int_equal(h.last_basket_ms, 4000);
}

static void merge_moves_links_and_baskets_and_removes_source(void **st)
{
	struct fx *f = *st;
	unsigned char i1[32], i2[32];
	char a[DEIDENT_ID_LEN + 1], b[DEIDENT_ID_LEN + 1], got[DEIDENT_ID_LEN + 1];
	char c[DEIDENT_ID_LEN + 1];
	struct store_basket bk;
	struct store_household h;
	struct store_stats stats;
	struct seen s;
	pos_err e = { 0 };

	idx_of(i1, 30);
	idx_of(i2, 31);
	new_hhid(a);
	new_hhid(b);
	new_hhid(c);
	assert_int_equal(store_link(f->s, i1, a, &e), 0);
	assert_int_equal(store_link(f->s, i2, b, &e), 0);
	basket(&bk, txn_n(30), 1000, a, 1);
	put1(f->s, &bk, STORE_PUT_CREATED);
	basket(&bk, txn_n(31), 2000, b, 1);
	put1(f->s, &bk, STORE_PUT_CREATED);

	assert_int_equal(store_merge(f->s, a, a, &e), POS_EINVAL);
	assert_int_equal(store_merge(f->s, a, c, &e), POS_ENOTFOUND);
	assert_int_equal(store_merge(f->s, a, b, &e), 0);
	/* merged away, it still "exists" for baskets spooled before the merge */
	assert_true(store_household_exists(f->s, a));
	assert_int_equal(store_resolve(f->s, i1, false, NULL, got, NULL, &e), 0);
	assert_string_equal(got, b);
	assert_int_equal(store_household(f->s, b, &h, &e), 0);
	assert_int_equal(h.n_tids, 2);
	assert_int_equal(h.n_baskets, 2);
	assert_int_equal(store_household(f->s, a, &h, &e), POS_ENOTFOUND);
	assert_int_equal(store_stats(f->s, &stats, &e), 0);
	assert_int_equal(stats.households, 1);

	/* a lane that spooled a basket under the old hhid: it joins the survivor */
	basket(&bk, txn_n(32), 3000, a, 1);
	put1(f->s, &bk, STORE_PUT_CREATED);
	assert_true(store_household_exists(f->s, a));
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_history(f->s, b, 0, 0, collect, &s, &e), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.txn[0], txn_n(32));
}

static void audit_rows_are_kept(void **st)
{
	struct fx *f = *st;
	pos_err e = { 0 };
	sqlite3 *db;
	sqlite3_stmt *q;

	assert_int_equal(store_audit(f->s, "cli:alice", "household.merge", "from=x into=y", &e), 0);
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT actor, action FROM audit", -1, &q, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "cli:alice");
	assert_string_equal((const char *)sqlite3_column_text(q, 1), "household.merge");
	sqlite3_finalize(q);
	sqlite3_close(db);
}

static int schema_version(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT max(version), count(*) FROM schema_version",
					    -1, &q, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	v = sqlite3_column_int(q, 0);
	/* one row per migration applied */
	assert_int_equal(sqlite3_column_int(q, 1), v);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

#define SCHEMA_NOW 11
/* Undoes v9 (terminals seen), v8 (the analysts' folded tables) and v6
 * (vendors), for the tests that take a database back further. */
#define V6_DROP                                                                   \
	"DROP TABLE terminals_seen; "                                               \
	"DROP TABLE analyst_items; DROP TABLE analyst_visits; DROP TABLE analyst_fold; " \
	"DROP TABLE analyst_households; DROP TABLE analyst_merges; " \
	"DROP TABLE outbox; DROP TABLE hh_messages; DROP TABLE vendor_events; "   \
	"DROP TABLE item_relations; DROP TABLE activities; DROP TABLE vendor_nonces; " \
	"DROP TABLE vendors; "

static void reopen_keeps_data_and_schema_file_is_0600(void **st)
{
	struct fx *f = *st;
	unsigned char idx[32];
	char a[DEIDENT_ID_LEN + 1], got[DEIDENT_ID_LEN + 1];
	struct stat sb;
	pos_err e = { 0 };

	idx_of(idx, 40);
	new_hhid(a);
	assert_int_equal(store_link(f->s, idx, a, &e), 0);
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(schema_version(f->db), SCHEMA_NOW);
	assert_int_equal(store_open(f->db, &f->s, &e), 0);
	assert_int_equal(schema_version(f->db), SCHEMA_NOW);
	assert_int_equal(store_resolve(f->s, idx, false, NULL, got, NULL, &e), 0);
	assert_string_equal(got, a);
	assert_int_equal(stat(f->db, &sb), 0);
	assert_int_equal(sb.st_mode & 077, 0);
}

static void newer_schema_is_refused(void **st)
{
	struct fx *f = *st;
	sqlite3 *db;
	struct store *s2 = NULL;
	pos_err e = { 0 };

	store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version VALUES (99)", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(f->db, &s2, &e), POS_EDB);
	assert_null(s2);
	assert_non_null(strstr(e.msg, "v99"));
}

static void history_uses_index_not_a_sort(void **st)
{
	struct fx *f = *st;
	sqlite3 *db;
	sqlite3_stmt *q;
	char plan[1024] = "";

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_prepare_v2(db,
				   "EXPLAIN QUERY PLAN SELECT id, txn, ts, store, terminal, hhid, "
				   "deident, digest FROM baskets WHERE hhid = ?1 AND ts >= ?2 AND "
				   "ts < ?3 ORDER BY ts DESC, id DESC",
				   -1, &q, NULL),
		SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW) {
		strncat(plan, (const char *)sqlite3_column_text(q, 3), sizeof(plan) - strlen(plan) - 2);
		strncat(plan, ";", sizeof(plan) - strlen(plan) - 1);
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	assert_non_null(strstr(plan, "baskets_hhid_ts"));
	assert_null(strstr(plan, "TEMP B-TREE"));
}


/* ---------------------------------------------------------------- offers */

static void merged_away_household_still_exists_for_spooled_baskets(void **st)
{
	struct fx *f = *st;
	unsigned char i1[32], i2[32];
	char a[DEIDENT_ID_LEN + 1], b[DEIDENT_ID_LEN + 1], never[DEIDENT_ID_LEN + 1];
	struct store_household h;
	pos_err e = { 0 };

	idx_of(i1, 60);
	idx_of(i2, 61);
	new_hhid(a);
	new_hhid(b);
	new_hhid(never);
	assert_int_equal(store_link(f->s, i1, a, &e), 0);
	assert_int_equal(store_link(f->s, i2, b, &e), 0);
	assert_int_equal(store_merge(f->s, a, b, &e), 0);
	assert_true(store_household_exists(f->s, a));
	assert_true(store_household_exists(f->s, b));
	assert_false(store_household_exists(f->s, never));
	assert_false(store_household_exists(f->s, "hh_not-a-household"));
	/* a merged-away household has no record of its own any more */
	assert_int_equal(store_household(f->s, a, &h, &e), POS_ENOTFOUND);
}

struct seen_acc {
	int n;
	int64_t s1t1, s1t2, last_many;
};

static int seen_collect(const struct store_terminal_seen *t, void *arg)
{
	struct seen_acc *a = arg;

	a->n++;
	if (strcmp(t->store, "S1") == 0 && strcmp(t->terminal, "T1") == 0)
		a->s1t1 = t->last_ms;
	if (strcmp(t->store, "S1") == 0 && strcmp(t->terminal, "T2") == 0)
		a->s1t2 = t->last_ms;
	if (strcmp(t->store, "S9") == 0 && strcmp(t->terminal, "T299") == 0)
		a->last_many = t->last_ms;
	return 0;
}

static void terminals_seen_keep_each_terminals_newest_basket(void **st)
{
	struct fx *f = *st;
	enum store_put_result r[300];
	struct store_basket *b = calloc(300, sizeof *b);
	struct seen_acc a = { 0 };
	pos_err e = { 0 };

	assert_non_null(b);
	/* one batch: T1 twice (the newer one not first), T2 once */
	basket(&b[0], txn_n(9001), 1700000005000, NULL, 1);
	basket(&b[1], txn_n(9002), 1700000009000, NULL, 2);
	basket(&b[2], txn_n(9003), 1700000001000, NULL, 3);
	snprintf(b[2].terminal, sizeof b[2].terminal, "T2");
	assert_int_equal(store_put_baskets(f->s, b, 3, r, &e), 0);
	/* an older basket later (a spool drained late) does not move it back */
	basket(&b[0], txn_n(9004), 1700000002000, NULL, 4);
	assert_int_equal(store_put_baskets(f->s, b, 1, r, &e), 0);
	/* more distinct terminals than one batch's table holds */
	for (int i = 0; i < 300; i++) {
		basket(&b[i], txn_n(9100 + i), 1700000100000 + i, NULL, 5);
		snprintf(b[i].store, sizeof b[i].store, "S9");
		snprintf(b[i].terminal, sizeof b[i].terminal, "T%d", i);
	}
	assert_int_equal(store_put_baskets(f->s, b, 300, r, &e), 0);
	assert_int_equal(store_terminals_seen(f->s, seen_collect, &a, &e), 0);
	assert_int_equal(a.n, 302);
	assert_int_equal(a.s1t1, 1700000009000);
	assert_int_equal(a.s1t2, 1700000001000);
	assert_int_equal(a.last_many, 1700000100299);
	free(b);
}

static void merged_into_names_the_last_survivor(void **st)
{
	struct fx *f = *st;
	unsigned char i1[32], i2[32], i3[32];
	char a[DEIDENT_ID_LEN + 1], b[DEIDENT_ID_LEN + 1], c[DEIDENT_ID_LEN + 1];
	char out[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	idx_of(i1, 70);
	idx_of(i2, 71);
	idx_of(i3, 72);
	new_hhid(a);
	new_hhid(b);
	new_hhid(c);
	assert_int_equal(store_link(f->s, i1, a, &e), 0);
	assert_int_equal(store_link(f->s, i2, b, &e), 0);
	assert_int_equal(store_link(f->s, i3, c, &e), 0);
	assert_int_equal(store_merged_into(f->s, a, out, &e), POS_ENOTFOUND);
	assert_int_equal(store_merge(f->s, a, b, &e), 0);
	assert_int_equal(store_merged_into(f->s, a, out, &e), 0);
	assert_string_equal(out, b);
	assert_int_equal(store_merge(f->s, b, c, &e), 0);
	assert_int_equal(store_merged_into(f->s, a, out, &e), 0);
	assert_string_equal(out, c);
	assert_int_equal(store_merged_into(f->s, c, out, &e), POS_ENOTFOUND);
	assert_int_equal(store_merged_into(f->s, "hh_not-a-household", out, &e), POS_ENOTFOUND);
}

static void offer_of(struct store_offer *o, const char *id, const char *target, int64_t from,
		     int64_t to)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->id, sizeof(o->id), "%s", id);
	snprintf(o->title, sizeof(o->title), "Title %s", id + 15);
	snprintf(o->reward, sizeof(o->reward), "1 EUR off");
	snprintf(o->target, sizeof(o->target), "%s", target);
	o->from_ms = from;
	o->to_ms = to;
	o->created_ms = 1000;
}

static int64_t device_of(struct store *s, unsigned char k)
{
	unsigned char h[32];
	int64_t id = 0, again = 0;
	pos_err e = { 0 };

	memset(h, k, sizeof(h));
	assert_int_equal(store_device_add(s, h, 1000, &id, &e), 0);
	assert_int_equal(store_device_find(s, h, &again, NULL, &e), 0);
	assert_int_equal(again, id);
	return id;
}

static void accept_code(struct store *s, int64_t dev, const char *offer, const char *code,
			bool want_created, const char *want)
{
	char got[STORE_OFFER_CODE_LEN + 1];
	bool created = !want_created;
	pos_err e = { 0 };

	assert_int_equal(store_offer_accept(s, dev, offer, code, true, 2000, got, &created, &e), 0);
	assert_int_equal(created, want_created);
	assert_string_equal(got, want);
}

static void offers_are_created_listed_and_ended_once(void **st)
{
	struct fx *f = *st;
	struct store_offer o, got;
	pos_err e = { 0 };

	offer_of(&o, "of_0000000000000001", "all", 0, 5000);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), POS_ECONFLICT);
	offer_of(&o, "of_0000000000000002", "gtin:00012345678905", 3000, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	assert_int_equal(store_offer_get(f->s, "of_0000000000000002", &got, &e), 0);
	assert_string_equal(got.target, "gtin:00012345678905");
	assert_int_equal(got.from_ms, 3000);
	assert_int_equal(got.to_ms, 0);
	assert_true(offer_open(&got, 3000));
	assert_false(offer_open(&got, 2999));
	assert_int_equal(store_offer_get(f->s, "of_ffffffffffffffff", &got, &e), POS_ENOTFOUND);

	assert_int_equal(store_offer_end(f->s, "of_0000000000000001", 4000, &e), 0);
	assert_int_equal(store_offer_end(f->s, "of_0000000000000001", 4500, &e), POS_ECONFLICT);
	assert_int_equal(store_offer_end(f->s, "of_ffffffffffffffff", 4500, &e), POS_ENOTFOUND);
	assert_int_equal(store_offer_get(f->s, "of_0000000000000001", &got, &e), 0);
	assert_int_equal(got.ended_ms, 4000);
	assert_false(offer_open(&got, 4500));
}

static int count_offer(const struct store_offer *o, void *arg)
{
	(void)o;
	(*(int *)arg)++;
	return 0;
}

static void open_offer_list_honours_dates_and_end(void **st)
{
	struct fx *f = *st;
	struct store_offer o;
	pos_err e = { 0 };
	int n = 0;

	offer_of(&o, "of_0000000000000001", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	offer_of(&o, "of_0000000000000002", "all", 0, 1500); /* expired at 2000 */
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	offer_of(&o, "of_0000000000000003", "all", 2500, 0); /* not started at 2000 */
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	offer_of(&o, "of_0000000000000004", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	assert_int_equal(store_offer_end(f->s, o.id, 1800, &e), 0);
	assert_int_equal(store_offer_list(f->s, true, 2000, count_offer, &n, &e), 0);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(store_offer_list(f->s, false, 2000, count_offer, &n, &e), 0);
	assert_int_equal(n, 4);
}

static void accepting_twice_returns_the_first_code_and_codes_are_unique(void **st)
{
	struct fx *f = *st;
	struct store_offer o;
	char got[STORE_OFFER_CODE_LEN + 1];
	bool created = true;
	int64_t d1 = device_of(f->s, 1), d2 = device_of(f->s, 2);
	pos_err e = { 0 };

	offer_of(&o, "of_0000000000000001", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	accept_code(f->s, d1, o.id, "9800000000014", true, "9800000000014");
	accept_code(f->s, d1, o.id, "9811111111116", false, "9800000000014");
	/* another device cannot get a code already issued */
	assert_int_equal(store_offer_accept(f->s, d2, o.id, "9800000000014", true, 2000, got,
					    &created, &e),
			 POS_ECONFLICT);
	/* a closed offer: no new acceptance, the old code still answered */
	assert_int_equal(store_offer_accept(f->s, d2, o.id, "9822222222228", false, 2000, got,
					    &created, &e),
			 POS_EPERM);
	accept_code(f->s, d2, o.id, "9822222222228", true, "9822222222228");
	assert_int_equal(store_offer_accept(f->s, d1, "of_ffffffffffffffff", "9833333333330",
					    true, 2000, got, &created, &e),
			 POS_ENOTFOUND);
}

static void use_of(struct store_offer_use *u, const char *code)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->code, sizeof(u->code), "%s", code);
}

static void basket_redeems_a_code_once_in_its_own_transaction(void **st)
{
	struct fx *f = *st;
	struct store_offer o;
	struct store_offer_code c;
	struct store_offer_use u[3];
	struct store_basket b[2];
	char hh[DEIDENT_ID_LEN + 1];
	int64_t dev = device_of(f->s, 3);
	pos_err e = { 0 };

	new_hhid(hh);
	offer_of(&o, "of_0000000000000001", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	accept_code(f->s, dev, o.id, "9800000000014", true, "9800000000014");

	/* a connection without the offers' rule judges nothing */
	basket(&b[0], txn_n(69), 5000, hh, 1);
	use_of(&u[0], "9800000000014");
	b[0].offers = u;
	b[0].n_offers = 1;
	put1(f->s, &b[0], STORE_PUT_CREATED);
	assert_int_equal(u[0].state, STORE_OFFER_PENDING);
	assert_int_equal(store_offer_code_get(f->s, "9800000000014", &c, &e), 0);
	assert_false(c.redeemed);
	store_set_offer_judge(f->s, offer_verdict);

	/* the first basket redeems it; "carried twice" counts once; a code
	 * never issued is refused as unknown; the basket is stored anyway */
	basket(&b[0], txn_n(70), 5000, hh, 1);
	use_of(&u[0], "9800000000014");
	use_of(&u[1], "9899999999994");
	use_of(&u[2], "9800000000014");
	b[0].offers = u;
	b[0].n_offers = 3;
	put1(f->s, &b[0], STORE_PUT_CREATED);
	assert_int_equal(u[0].state, STORE_OFFER_REDEEMED);
	assert_int_equal(u[1].state, STORE_OFFER_REFUSED);
	assert_int_equal(u[1].reason, STORE_OFFER_UNKNOWN);
	assert_int_equal(u[2].state, STORE_OFFER_REDEEMED);
	assert_int_equal(store_offer_code_get(f->s, "9800000000014", &c, &e), 0);
	assert_true(c.redeemed);
	assert_int_equal(c.redeemed_ms, 5000);
	assert_string_equal(c.store, "S1");
	assert_string_equal(c.hhid, hh);
	assert_int_equal(offer_verdict(&c, 6000), STORE_OFFER_USED);

	/* the same basket again: a duplicate that redeems nothing twice, and
	 * says what it redeemed the first time */
	use_of(&u[0], "9800000000014");
	b[0].n_offers = 1;
	put1(f->s, &b[0], STORE_PUT_DUPLICATE);
	assert_int_equal(u[0].state, STORE_OFFER_REDEEMED);

	/* another basket with the same code: refused, but stored */
	basket(&b[1], txn_n(71), 6000, NULL, 2);
	use_of(&u[1], "9800000000014");
	b[1].offers = &u[1];
	b[1].n_offers = 1;
	put1(f->s, &b[1], STORE_PUT_CREATED);
	assert_int_equal(u[1].state, STORE_OFFER_REFUSED);
	assert_int_equal(u[1].reason, STORE_OFFER_USED);
	assert_int_equal(store_offer_code_get(f->s, "9800000000014", &c, &e), 0);
	assert_int_equal(c.redeemed_ms, 5000);
	assert_int_equal(store_offer_code_get(f->s, "9899999999994", &c, &e), POS_ENOTFOUND);
}

static void redemption_is_judged_at_the_basket_time(void **st)
{
	struct fx *f = *st;
	struct store_offer o;
	struct store_offer_use u;
	struct store_basket b;
	int64_t dev = device_of(f->s, 4);
	pos_err e = { 0 };

	store_set_offer_judge(f->s, offer_verdict);

	offer_of(&o, "of_0000000000000001", "all", 0, 10000);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	accept_code(f->s, dev, o.id, "9800000000014", true, "9800000000014");
	offer_of(&o, "of_0000000000000002", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	accept_code(f->s, dev, o.id, "9811111111116", true, "9811111111116");
	assert_int_equal(store_offer_end(f->s, o.id, 7000, &e), 0);

	/* scanned after the offer's end date: expired */
	basket(&b, txn_n(80), 10000, NULL, 1);
	use_of(&u, "9800000000014");
	b.offers = &u;
	b.n_offers = 1;
	put1(f->s, &b, STORE_PUT_CREATED);
	assert_int_equal(u.state, STORE_OFFER_REFUSED);
	assert_int_equal(u.reason, STORE_OFFER_EXPIRED);
	/* scanned before, uploaded late: redeemed */
	basket(&b, txn_n(81), 9999, NULL, 2);
	use_of(&u, "9800000000014");
	b.offers = &u;
	b.n_offers = 1;
	put1(f->s, &b, STORE_PUT_CREATED);
	assert_int_equal(u.state, STORE_OFFER_REDEEMED);
	/* an offer ended by marketing */
	basket(&b, txn_n(82), 8000, NULL, 3);
	use_of(&u, "9811111111116");
	b.offers = &u;
	b.n_offers = 1;
	put1(f->s, &b, STORE_PUT_CREATED);
	assert_int_equal(u.reason, STORE_OFFER_ENDED);
}

static void conflicting_basket_redeems_nothing(void **st)
{
	struct fx *f = *st;
	struct store_offer o;
	struct store_offer_code c;
	struct store_offer_use u;
	struct store_basket b;
	int64_t dev = device_of(f->s, 5);
	pos_err e = { 0 };

	offer_of(&o, "of_0000000000000001", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	accept_code(f->s, dev, o.id, "9800000000014", true, "9800000000014");
	basket(&b, txn_n(90), 5000, NULL, 1);
	put1(f->s, &b, STORE_PUT_CREATED);
	basket(&b, txn_n(90), 5000, NULL, 2); /* same txn, other content */
	use_of(&u, "9800000000014");
	b.offers = &u;
	b.n_offers = 1;
	put1(f->s, &b, STORE_PUT_CONFLICT);
	assert_int_equal(u.state, STORE_OFFER_PENDING);
	assert_int_equal(store_offer_code_get(f->s, "9800000000014", &c, &e), 0);
	assert_false(c.redeemed);
}

struct next_seen {
	int n;
	char id[8][STORE_OFFER_ID_LEN + 1];
	bool targeted[8];
};

static int collect_next(const struct store_offer *o, bool targeted, void *arg)
{
	struct next_seen *s = arg;

	if (s->n < 8) {
		memcpy(s->id[s->n], o->id, sizeof(s->id[0]));
		s->targeted[s->n] = targeted;
		s->n++;
	}
	return 0;
}

struct report_seen {
	int n;
	struct store_offer_report_row rows[4];
};

static int collect_report(const struct store_offer_report_row *r, void *arg)
{
	struct report_seen *s = arg;

	if (s->n < 4)
		s->rows[s->n++] = *r;
	return 0;
}

struct batch_acc {
	int n;
	size_t items;
	bool saw[16];
};

/* Notes each basket of a history by its txn_n number (below 16). */
static int batch_collect(const struct store_basket *b, void *arg)
{
	struct batch_acc *a = arg;
	int k = atoi(b->txn + 24);

	a->n++;
	a->items += b->n_items;
	if (k >= 0 && k < 16)
		a->saw[k] = true;
	return 0;
}

static int batch_history(struct store *s, const char *hhid, struct batch_acc *a)
{
	pos_err e = { 0 };

	memset(a, 0, sizeof(*a));
	assert_int_equal(store_history(s, hhid, 0, 0, batch_collect, a, &e), 0);
	return a->n;
}

/* The newest time of the terminal whose id needs quoting in an array. */
static int odd_terminal(const struct store_terminal_seen *t, void *arg)
{
	if (strcmp(t->terminal, "T\"7\\,{ }NULL") == 0)
		*(int64_t *)arg = t->last_ms;
	return 0;
}

/* One batch settles each basket as if it came alone, in order: a txn
 * twice in the batch, txns stored before (same digest, other digest), a
 * merged-away hhid, a new hhid twice, none, no items, a terminal id with
 * quotes, a receipt and a code redeemed by one basket and refused to the
 * next. */
static void one_batch_settles_each_basket_as_alone(void **st)
{
	struct fx *f = *st;
	struct store_basket b[11];
	enum store_put_result r[11];
	struct store_offer_use u[3];
	struct store_stats before, after;
	struct store_receipt rc;
	struct store_offer o;
	struct batch_acc acc;
	unsigned char i1[32], i2[32], receipt[32];
	char fresh[DEIDENT_ID_LEN + 1], gone[DEIDENT_ID_LEN + 1], kept[DEIDENT_ID_LEN + 1];
	int64_t dev = device_of(f->s, 4), seen = 0;
	pos_err e = { 0 };

	new_hhid(fresh);
	new_hhid(gone);
	new_hhid(kept);
	idx_of(i1, 80);
	idx_of(i2, 81);
	assert_int_equal(store_link(f->s, i1, gone, &e), 0);
	assert_int_equal(store_link(f->s, i2, kept, &e), 0);
	assert_int_equal(store_merge(f->s, gone, kept, &e), 0);
	offer_of(&o, "of_0000000000000001", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	accept_code(f->s, dev, o.id, "9800000000014", true, "9800000000014");
	store_set_offer_judge(f->s, offer_verdict);
	basket(&b[0], txn_n(1), 4000, NULL, 1);
	put1(f->s, &b[0], STORE_PUT_CREATED);
	basket(&b[0], txn_n(2), 4000, NULL, 1);
	put1(f->s, &b[0], STORE_PUT_CREATED);
	assert_int_equal(store_stats(f->s, &before, &e), 0);

	basket(&b[0], txn_n(10), 5000, fresh, 3);
	basket(&b[1], txn_n(11), 5001, fresh, 4);
	b[1].has_receipt = true;
	memset(receipt, 0x5e, sizeof(receipt));
	memcpy(b[1].receipt, receipt, sizeof(receipt));
	basket(&b[2], txn_n(10), 5000, fresh, 3); /* the same basket again */
	basket(&b[3], txn_n(10), 5000, fresh, 9); /* its txn, another body */
	basket(&b[4], txn_n(1), 4000, NULL, 1);   /* stored before, same digest */
	basket(&b[5], txn_n(2), 4000, NULL, 7);   /* stored before, other digest */
	basket(&b[6], txn_n(12), 5002, gone, 5);
	basket(&b[7], txn_n(13), 5003, NULL, 6);
	b[7].n_items = 0;
	b[7].items = NULL;
	snprintf(b[7].terminal, sizeof(b[7].terminal), "T\"7\\,{ }NULL");
	basket(&b[8], txn_n(14), 5004, fresh, 8);
	use_of(&u[0], "9800000000014");
	b[8].offers = &u[0];
	b[8].n_offers = 1;
	basket(&b[9], txn_n(15), 5005, kept, 10);
	use_of(&u[1], "9800000000014");
	b[9].offers = &u[1];
	b[9].n_offers = 1;
	b[10] = b[8]; /* a duplicate says what its first storing redeemed */
	use_of(&u[2], "9800000000014");
	b[10].offers = &u[2];
	assert_int_equal(store_put_baskets(f->s, b, 11, r, &e), 0);

	assert_int_equal(r[0], STORE_PUT_CREATED);
	assert_int_equal(r[1], STORE_PUT_CREATED);
	assert_int_equal(r[2], STORE_PUT_DUPLICATE);
	assert_int_equal(r[3], STORE_PUT_CONFLICT);
	assert_int_equal(r[4], STORE_PUT_DUPLICATE);
	assert_int_equal(r[5], STORE_PUT_CONFLICT);
	assert_int_equal(r[6], STORE_PUT_CREATED);
	assert_int_equal(r[7], STORE_PUT_CREATED);
	assert_int_equal(r[8], STORE_PUT_CREATED);
	assert_int_equal(r[9], STORE_PUT_CREATED);
	assert_int_equal(r[10], STORE_PUT_DUPLICATE);
	assert_int_equal(u[0].state, STORE_OFFER_REDEEMED);
	assert_int_equal(u[1].state, STORE_OFFER_REFUSED);
	assert_int_equal(u[1].reason, STORE_OFFER_USED);
	assert_int_equal(u[2].state, STORE_OFFER_REDEEMED);

	/* the new household made once, its three baskets filed under it */
	assert_true(store_household_exists(f->s, fresh));
	assert_int_equal(batch_history(f->s, fresh, &acc), 3);
	assert_true(acc.saw[10] && acc.saw[11] && acc.saw[14]);
	assert_int_equal(acc.items, 9);
	/* the merged-away hhid's basket under its survivor */
	assert_int_equal(batch_history(f->s, kept, &acc), 2);
	assert_true(acc.saw[12] && acc.saw[15]);
	assert_int_equal(batch_history(f->s, gone, &acc), 0);
	assert_int_equal(store_terminals_seen(f->s, odd_terminal, &seen, &e), 0);
	assert_int_equal(seen, 5003);
	assert_int_equal(store_receipt_find(f->s, receipt, &rc, &e), 0);
	assert_string_equal(rc.txn, txn_n(11));
	assert_string_equal(rc.hhid, fresh);
	assert_int_equal(store_stats(f->s, &after, &e), 0);
	assert_int_equal(after.households, before.households + 1);
	assert_int_equal(after.baskets, before.baskets + 6);
	assert_int_equal(after.items, before.items + 5 * 3);
}

/* A batch larger than one statement holds (STORE_PG_PUT_BASKETS on
 * PostgreSQL): every basket stored, a txn repeated across the split
 * found a duplicate. */
static void large_batch_is_stored_whole(void **st)
{
	struct fx *f = *st;
	enum { N = 1203 };
	struct store_basket *b = calloc(N, sizeof(*b));
	enum store_put_result *r = calloc(N, sizeof(*r));
	struct store_stats s0, s1;
	char hh[DEIDENT_ID_LEN + 1];
	char txn[37];
	pos_err e = { 0 };

	assert_non_null(b);
	assert_non_null(r);
	new_hhid(hh);
	assert_int_equal(store_stats(f->s, &s0, &e), 0);
	for (int i = 0; i < N - 1; i++) {
		snprintf(txn, sizeof(txn), "0190a000-0000-7000-8000-%012d", 1000 + i);
		basket(&b[i], txn, 7000 + i, i % 2 ? hh : NULL, (unsigned char)i);
	}
	b[N - 1] = b[7];
	assert_int_equal(store_put_baskets(f->s, b, N, r, &e), 0);
	for (int i = 0; i < N - 1; i++)
		assert_int_equal(r[i], STORE_PUT_CREATED);
	assert_int_equal(r[N - 1], STORE_PUT_DUPLICATE);
	assert_int_equal(store_stats(f->s, &s1, &e), 0);
	assert_int_equal(s1.baskets, s0.baskets + N - 1);
	assert_int_equal(s1.items, s0.items + 3 * (N - 1));
	free(b);
	free(r);
}

static void next_offers_follow_what_the_household_bought(void **st)
{
	struct fx *f = *st;
	struct store_offer o;
	struct store_offer_use u;
	struct store_basket b;
	struct next_seen seen;
	struct report_seen rep;
	char hh[DEIDENT_ID_LEN + 1];
	int64_t dev = device_of(f->s, 6);
	int64_t now = 1700000000000LL;
	pos_err e = { 0 };

	store_set_offer_judge(f->s, offer_verdict);

	new_hhid(hh);
	offer_of(&o, "of_0000000000000001", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	accept_code(f->s, dev, o.id, "9800000000014", true, "9800000000014");
	/* bought: 00012345678905 (items3); not bought: 00000000000017 */
	offer_of(&o, "of_0000000000000002", "gtin:00012345678905", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	offer_of(&o, "of_0000000000000003", "gtin:00000000000017", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	offer_of(&o, "of_0000000000000004", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	offer_of(&o, "of_0000000000000005", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	assert_int_equal(store_offer_end(f->s, o.id, 2000, &e), 0);

	basket(&b, txn_n(100), now, hh, 1);
	use_of(&u, "9800000000014");
	b.offers = &u;
	b.n_offers = 1;
	put1(f->s, &b, STORE_PUT_CREATED);

	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_offer_next(f->s, dev, now, 5, collect_next, &seen, &e), 0);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.id[0], "of_0000000000000002");
	assert_true(seen.targeted[0]);
	assert_string_equal(seen.id[1], "of_0000000000000004");
	assert_false(seen.targeted[1]);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_offer_next(f->s, dev, now, 1, collect_next, &seen, &e), 0);
	assert_int_equal(seen.n, 1);

	memset(&rep, 0, sizeof(rep));
	assert_int_equal(store_offer_report(f->s, collect_report, &rep, &e), 0);
	assert_int_equal(rep.n, 1);
	assert_string_equal(rep.rows[0].offer_id, "of_0000000000000001");
	assert_string_equal(rep.rows[0].store, "S1");
	assert_string_equal(rep.rows[0].day, "2023-11-14");
	assert_int_equal(rep.rows[0].redemptions, 1);
}

static void v1_database_gains_offer_tables(void **st)
{
	struct fx *f = *st;
	struct store_offer o;
	sqlite3 *db;
	pos_err e = { 0 };

	store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      V6_DROP
				      "DROP TABLE outbox_cursors; DROP TABLE conversation_phones; "
				      "DROP TABLE sms_inbound; DROP TABLE device_households; DROP TABLE staff_sessions; "
				      "DROP TABLE staff; DROP TABLE messages; DROP TABLE conversations; "
				      "DROP TABLE receipts; DROP TABLE item_master; "
				      "DROP TABLE offer_redemptions; DROP TABLE offer_codes; "
				      "DROP TABLE offer_devices; DROP TABLE offers; "
				      "ALTER TABLE counters DROP COLUMN unused_devices; "
				      "DELETE FROM schema_version WHERE version >= 2",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(schema_version(f->db), 1);
	assert_int_equal(store_open(f->db, &f->s, &e), 0);
	assert_int_equal(schema_version(f->db), SCHEMA_NOW);
	offer_of(&o, "of_0000000000000001", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
}

static long unused_now(struct store *s)
{
	pos_err e = { 0 };
	long n = -1;

	assert_int_equal(store_device_unused(s, &n, &e), 0);
	return n;
}

static void unused_registrations_are_counted_until_used_and_expire(void **st)
{
	struct fx *f = *st;
	struct store_offer o;
	unsigned char h[32];
	char got[STORE_OFFER_CODE_LEN + 1];
	int64_t d1, d2, d3, id;
	bool used = true, created;
	long removed = -1;
	pos_err e = { 0 };

	assert_int_equal(unused_now(f->s), 0);
	d1 = device_of(f->s, 1);
	d2 = device_of(f->s, 2);
	memset(h, 3, sizeof h);
	assert_int_equal(store_device_add(f->s, h, 5000, &d3, &e), 0);
	assert_int_equal(unused_now(f->s), 3);
	assert_int_equal(store_device_find(f->s, h, &id, &used, &e), 0);
	assert_false(used);

	/* A presented token marks its registration used, once. */
	assert_int_equal(store_device_mark_used(f->s, d1, 6000, &e), 0);
	assert_int_equal(store_device_mark_used(f->s, d1, 7000, &e), 0);
	assert_int_equal(unused_now(f->s), 2);
	memset(h, 1, sizeof h);
	assert_int_equal(store_device_find(f->s, h, &id, &used, &e), 0);
	assert_true(used);
	assert_int_equal(store_device_mark_used(f->s, 999999, 6000, &e), POS_ENOTFOUND);
	/* So does an acceptance. */
	offer_of(&o, "of_0000000000000001", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	assert_int_equal(store_offer_accept(f->s, d2, o.id, "9800000000014", true, 6000, got,
					    &created, &e),
			 0);
	assert_int_equal(unused_now(f->s), 1);

	/* Expiry takes only registrations never used and older than the
	 * bound: d3 (made at 5000) survives a bound of 5000, not of 5001. */
	assert_int_equal(store_device_purge(f->s, 5000, 100, &removed, &e), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(store_device_purge(f->s, 5001, 100, &removed, &e), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(unused_now(f->s), 0);
	memset(h, 3, sizeof h);
	assert_int_equal(store_device_find(f->s, h, &id, NULL, &e), POS_ENOTFOUND);
	/* A device removed meanwhile cannot accept (the writer checks no
	 * foreign keys, so this is looked for). */
	assert_int_equal(store_offer_accept(f->s, d3, o.id, "9822222222228", true, 6000, got,
					    &created, &e),
			 POS_ENOTFOUND);
	memset(h, 1, sizeof h);
	assert_int_equal(store_device_find(f->s, h, &id, NULL, &e), 0);
	memset(h, 2, sizeof h);
	assert_int_equal(store_device_find(f->s, h, &id, NULL, &e), 0);

	/* Oldest first, at most limit per call. */
	for (unsigned char k = 10; k < 15; k++) {
		memset(h, k, sizeof h);
		assert_int_equal(store_device_add(f->s, h, 1000 + k, &id, &e), 0);
	}
	assert_int_equal(unused_now(f->s), 5);
	assert_int_equal(store_device_purge(f->s, 100000, 2, &removed, &e), 0);
	assert_int_equal(removed, 2);
	memset(h, 10, sizeof h);
	assert_int_equal(store_device_find(f->s, h, &id, NULL, &e), POS_ENOTFOUND);
	memset(h, 12, sizeof h);
	assert_int_equal(store_device_find(f->s, h, &id, NULL, &e), 0);
	assert_int_equal(store_device_purge(f->s, 100000, 2, &removed, &e), 0);
	assert_int_equal(store_device_purge(f->s, 100000, 2, &removed, &e), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(unused_now(f->s), 0);
}

static void v2_database_counts_its_unused_registrations(void **st)
{
	struct fx *f = *st;
	struct store_offer o;
	char got[STORE_OFFER_CODE_LEN + 1];
	int64_t d1;
	long removed = -1;
	bool created;
	sqlite3 *db;
	pos_err e = { 0 };

	d1 = device_of(f->s, 1);
	(void)device_of(f->s, 2);
	offer_of(&o, "of_0000000000000001", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);
	assert_int_equal(store_offer_accept(f->s, d1, o.id, "9800000000014", true, 2000, got,
					    &created, &e),
			 0);
	store_close(f->s);
	f->s = NULL;
	/* Back to v2: no used column, no count, nothing of v4. */
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      V6_DROP
				      "DROP TABLE outbox_cursors; DROP TABLE conversation_phones; "
				      "DROP TABLE sms_inbound; DROP TABLE device_households; DROP TABLE staff_sessions; "
				      "DROP TABLE staff; DROP TABLE messages; DROP TABLE conversations; "
				      "DROP TABLE receipts; DROP TABLE item_master; "
				      "DROP TRIGGER offer_devices_unused_ins; "
				      "DROP TRIGGER offer_devices_unused_use; "
				      "DROP TRIGGER offer_devices_unused_del; "
				      "DROP INDEX offer_devices_unused; "
				      "ALTER TABLE offer_devices DROP COLUMN used; "
				      "ALTER TABLE counters DROP COLUMN unused_devices; "
				      "DELETE FROM schema_version WHERE version >= 3",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(schema_version(f->db), 2);
	assert_int_equal(store_open(f->db, &f->s, &e), 0);
	assert_int_equal(schema_version(f->db), SCHEMA_NOW);
	/* The device that accepted an offer was used; the other was not. */
	assert_int_equal(unused_now(f->s), 1);
	assert_int_equal(store_device_purge(f->s, 1000000, 100, &removed, &e), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(unused_now(f->s), 0);
}

static int count_baskets(const struct store_basket *b, void *arg)
{
	(void)b;
	(*(int *)arg)++;
	return 0;
}

static int count_offers(const struct store_offer *o, void *arg)
{
	(void)o;
	(*(int *)arg)++;
	return 0;
}

static int count_offers_code(const struct store_offer_code *c, void *arg)
{
	(void)c;
	(*(int *)arg)++;
	return 0;
}

static int count_next(const struct store_offer *o, bool targeted, void *arg)
{
	(void)o;
	(void)targeted;
	(*(int *)arg)++;
	return 0;
}

static int count_report(const struct store_offer_report_row *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

/* Set while the PostgreSQL group runs: f->db is then a DSN. */
static bool on_pg;

static int open_ro(const char *where, struct store **s, pos_err *e)
{
	struct store_where w = { .backend = on_pg ? STORE_POSTGRESQL : STORE_SQLITE,
				 .path = where, .dsn = where, .readonly = true };

	return store_open_at(&w, s, e);
}

static void readonly_connection_reads_everything_and_writes_nothing(void **st)
{
	struct fx *f = *st;
	struct store *ro = NULL;
	struct store_basket b;
	struct store_household h;
	struct store_stats stats;
	struct store_offer o;
	struct store_history_pos pos = { 0 }, at;
	unsigned char idx[32], other[32];
	char hh[DEIDENT_ID_LEN + 1], got[DEIDENT_ID_LEN + 1];
	int64_t dev = device_of(f->s, 9), id = 0;
	unsigned char hash[32];
	struct store_offer_code code;
	bool created = true, more = false, used = true;
	long unused = -1;
	int n = 0;
	pos_err e = { 0 };

	idx_of(idx, 50);
	idx_of(other, 51);
	new_hhid(hh);
	assert_int_equal(store_link(f->s, idx, hh, &e), 0);
	basket(&b, txn_n(90), 1000, hh, 3);
	put1(f->s, &b, STORE_PUT_CREATED);
	offer_of(&o, "of_0000000000000009", "all", 0, 0);
	assert_int_equal(store_offer_create(f->s, &o, &e), 0);

	assert_int_equal(open_ro(f->db, &ro, &e), 0);
	assert_int_equal(store_resolve(ro, idx, false, NULL, got, &created, &e), 0);
	assert_string_equal(got, hh);
	assert_false(created);
	assert_true(store_household_exists(ro, hh));
	assert_int_equal(store_household(ro, hh, &h, &e), 0);
	assert_int_equal(h.n_baskets, 1);
	assert_int_equal(store_history(ro, hh, 0, 0, count_baskets, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_history_page(ro, hh, 0, 0, &pos, NULL, 10, count_baskets, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_history_seek(ro, hh, 0, 0, NULL, 1, &at, &more, &e), 0);
	assert_false(more);
	assert_int_equal(store_stats(ro, &stats, &e), 0);
	assert_int_equal(stats.baskets, 1);
	assert_int_equal(store_offer_list(ro, false, 0, count_offers, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_offer_get(ro, "of_0000000000000009", &o, &e), 0);
	assert_string_equal(o.id, "of_0000000000000009");
	assert_int_equal(store_device_unused(ro, &unused, &e), 0);
	assert_int_equal(store_device_codes(ro, dev, count_offers_code, &n, &e), 0);
	memset(hash, 9, sizeof(hash));
	assert_int_equal(store_device_find(ro, hash, &id, &used, &e), 0);
	assert_int_equal(id, dev);
	assert_int_equal(store_offer_code_get(ro, "9800000000014", &code, &e), POS_ENOTFOUND);
	assert_int_equal(store_offer_next(ro, dev, 0, 5, count_next, &n, &e), 0);
	assert_int_equal(store_offer_report(ro, count_report, &n, &e), 0);
	assert_int_equal(store_quick_check(ro, &e), 0);
	/* reads inside a transaction, too */
	assert_int_equal(store_begin(ro, &e), 0);
	assert_int_equal(store_resolve(ro, idx, false, NULL, got, NULL, &e), 0);
	assert_int_equal(store_commit(ro, &e), 0);

	/* every write is refused and changes nothing */
	assert_true(store_resolve(ro, other, true, NULL, got, &created, &e) < 0);
	assert_true(store_audit(ro, "cli:alice", "x", "y", &e) < 0);
	assert_true(store_device_add(ro, idx, 5, &id, &e) < 0);
	basket(&b, txn_n(91), 2000, hh, 1);
	assert_true(store_put_baskets(ro, &b, 1, &(enum store_put_result){ 0 }, &e) < 0);
	store_close(ro);
	assert_int_equal(store_resolve(f->s, other, false, NULL, got, NULL, &e), POS_ENOTFOUND);
	assert_int_equal(store_stats(f->s, &stats, &e), 0);
	assert_int_equal(stats.baskets, 1);
}

/* A worker's reads of one loop turn: on SQLite one snapshot until the end
 * (one WAL read lock), on PostgreSQL each read its own; either way nothing
 * is left open after store_reads_end, and a writer's connection ignores it. */
static void reads_share_one_snapshot_until_ended(void **st)
{
	struct fx *f = *st;
	struct store *ro = NULL;
	unsigned char a[32], b[32];
	char hh[DEIDENT_ID_LEN + 1], got[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	idx_of(a, 60);
	idx_of(b, 61);
	new_hhid(hh);
	assert_int_equal(store_link(f->s, a, hh, &e), 0);
	assert_int_equal(open_ro(f->db, &ro, &e), 0);
	store_reads_begin(ro);
	assert_int_equal(store_resolve(ro, a, false, NULL, got, NULL, &e), 0);
	assert_int_equal(store_link(f->s, b, hh, &e), 0);
	assert_int_equal(store_resolve(ro, b, false, NULL, got, NULL, &e),
			 on_pg ? 0 : POS_ENOTFOUND);
	store_reads_end(ro);
	store_reads_end(ro);
	assert_int_equal(store_resolve(ro, b, false, NULL, got, NULL, &e), 0);
	assert_int_equal(store_begin(ro, &e), 0);
	assert_int_equal(store_commit(ro, &e), 0);
	store_close(ro);

	store_reads_begin(f->s);
	assert_false(store_in_txn(f->s));
	assert_int_equal(store_begin(f->s, &e), 0);
	assert_int_equal(store_commit(f->s, &e), 0);
	store_reads_end(f->s);
}

/* A keys answer's resolves looked up together: each index its own
 * household, "" for one none holds, the same index twice answered twice. */
static void many_indexes_are_looked_up_at_once(void **st)
{
	struct fx *f = *st;
	struct store *ro = NULL;
	unsigned char a[32], b[32], x[32];
	const unsigned char *idx[4] = { a, x, b, a };
	char ha[DEIDENT_ID_LEN + 1], hb[DEIDENT_ID_LEN + 1], got[4][DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	idx_of(a, 70);
	idx_of(b, 71);
	idx_of(x, 72);
	new_hhid(ha);
	new_hhid(hb);
	assert_int_equal(store_link(f->s, a, ha, &e), 0);
	assert_int_equal(store_link(f->s, b, hb, &e), 0);
	assert_int_equal(open_ro(f->db, &ro, &e), 0);
	memset(got, 'z', sizeof got);
	assert_int_equal(store_resolve_many(ro, 4, idx, got, &e), 0);
	assert_string_equal(got[0], ha);
	assert_string_equal(got[1], "");
	assert_string_equal(got[2], hb);
	assert_string_equal(got[3], ha);
	assert_false(store_in_txn(ro));
	assert_int_equal(store_resolve_many(ro, 1, &idx[1], got, &e), 0);
	assert_string_equal(got[0], "");
	assert_int_equal(store_resolve_many(ro, 0, NULL, NULL, &e), 0);
	assert_int_equal(store_resolve_many(ro, 2, NULL, got, &e), POS_EINVAL);
	store_close(ro);
}

static void readonly_connection_refuses_other_schemas(void **st)
{
	struct fx *f = *st;
	struct store *ro = NULL;
	char path[192];
	sqlite3 *db;
	pos_err e = { 0 };

	store_close(f->s);
	f->s = NULL;
	/* older: the writer has not migrated it yet */
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM schema_version WHERE version > 5", NULL, NULL,
				      NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(open_ro(f->db, &ro, &e), POS_EDB);
	assert_null(ro);
	assert_non_null(strstr(e.msg, "v5 is older"));
	assert_int_equal(schema_version(f->db), 5); /* nothing migrated */
	/* newer: written by a later program */
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version VALUES (99)", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(open_ro(f->db, &ro, &e), POS_EDB);
	assert_null(ro);
	assert_non_null(strstr(e.msg, "v99 is newer"));
	/* none: a reader creates nothing */
	snprintf(path, sizeof(path), "%s/none.db", f->dir);
	assert_true(open_ro(path, &ro, &e) < 0);
	assert_null(ro);
	assert_int_equal(access(path, F_OK), -1);
}

/* ---------------------------------------------------------------- PostgreSQL
 * The tests that do not open the SQLite file themselves run again on a
 * fresh database of the test cluster (pg_fixture.h: POS_TEST_PG_DSN, which
 * make test sets whenever this machine has PostgreSQL). */

/* The DSN of a fresh, empty database; -1 when there is no cluster. */
static int pg_fresh(char *out, size_t cap)
{
	char why[512];

	out[0] = '\0';
	return pgfx_try_fresh("test_store", out, cap, why, sizeof(why)) == 0 ? 0 : -1;
}

static int setup_pg(void **st)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct store_where w = { .backend = STORE_POSTGRESQL };
	pos_err e = { 0 };

	assert_non_null(f);
	assert_int_equal(pg_fresh(f->db, sizeof(f->db)), 0);
	w.dsn = f->db;
	assert_int_equal(store_open_at(&w, &f->s, &e), 0);
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

/* Whether the PostgreSQL group can run; why not in why. */
static bool pg_usable(char *why, size_t cap)
{
	struct store_where w = { .backend = STORE_POSTGRESQL };
	struct store *s = NULL;
	char dsn[128];
	pos_err e = { 0 };

	if (pg_fresh(dsn, sizeof(dsn)) < 0) {
		snprintf(why, cap, "no PostgreSQL test cluster (POS_TEST_PG_DSN; tests/pg/pgctl)");
		return false;
	}
	w.dsn = dsn;
	if (store_open_at(&w, &s, &e) < 0) {
		snprintf(why, cap, "%s", e.msg);
		return false;
	}
	store_close(s);
	return true;
}

static int run_pg(void)
{
#define P(fn) cmocka_unit_test_setup_teardown(fn, setup_pg, teardown_pg)
	const struct CMUnitTest tests[] = {
		P(resolve_unknown_without_auto_enrol_is_not_found),
		P(resolve_auto_enrols_once_then_finds_same_household),
		P(link_to_another_household_conflicts_and_changes_nothing),
		P(unlink_removes_link_and_second_unlink_is_not_found),
		P(batch_transaction_keeps_good_links_when_one_conflicts),
		P(put_same_txn_is_duplicate_other_digest_is_conflict),
		P(unresolved_basket_is_stored_without_household),
		P(bad_basket_fails_whole_batch_before_storing),
		P(history_is_newest_first_and_to_is_exclusive),
		P(every_item_of_a_long_basket_comes_back_in_order),
		P(history_reads_packed_items_and_item_rows_alike),
		P(merge_moves_links_and_baskets_and_removes_source),
		P(merged_away_household_still_exists_for_spooled_baskets),
		P(terminals_seen_keep_each_terminals_newest_basket),
		P(merged_into_names_the_last_survivor),
		P(readonly_connection_reads_everything_and_writes_nothing),
		P(reads_share_one_snapshot_until_ended),
		P(many_indexes_are_looked_up_at_once),
		P(offers_are_created_listed_and_ended_once),
		P(open_offer_list_honours_dates_and_end),
		P(accepting_twice_returns_the_first_code_and_codes_are_unique),
		P(basket_redeems_a_code_once_in_its_own_transaction),
		P(redemption_is_judged_at_the_basket_time),
		P(conflicting_basket_redeems_nothing),
		P(one_batch_settles_each_basket_as_alone),
		P(large_batch_is_stored_whole),
		P(next_offers_follow_what_the_household_bought),
		P(unused_registrations_are_counted_until_used_and_expire),
	};
	char why[256];

	if (!pg_usable(why, sizeof(why))) {
		printf("# PostgreSQL group skipped: %s\n", why);
		return 0;
	}
	on_pg = true;
	return cmocka_run_group_tests_name("store on PostgreSQL", tests, NULL, NULL);
#undef P
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(resolve_unknown_without_auto_enrol_is_not_found),
		T(resolve_auto_enrols_once_then_finds_same_household),
		T(link_to_another_household_conflicts_and_changes_nothing),
		T(unlink_removes_link_and_second_unlink_is_not_found),
		T(batch_transaction_keeps_good_links_when_one_conflicts),
		T(put_same_txn_is_duplicate_other_digest_is_conflict),
		T(unresolved_basket_is_stored_without_household),
		T(bad_basket_fails_whole_batch_before_storing),
		T(history_is_newest_first_and_to_is_exclusive),
		T(every_item_of_a_long_basket_comes_back_in_order),
		T(merge_moves_links_and_baskets_and_removes_source),
		T(audit_rows_are_kept),
		T(reopen_keeps_data_and_schema_file_is_0600),
		T(newer_schema_is_refused),
		T(readonly_connection_reads_everything_and_writes_nothing),
		T(readonly_connection_refuses_other_schemas),
		T(reads_share_one_snapshot_until_ended),
		T(many_indexes_are_looked_up_at_once),
		T(history_uses_index_not_a_sort),
		T(merged_away_household_still_exists_for_spooled_baskets),
		T(terminals_seen_keep_each_terminals_newest_basket),
		T(merged_into_names_the_last_survivor),
		T(offers_are_created_listed_and_ended_once),
		T(open_offer_list_honours_dates_and_end),
		T(accepting_twice_returns_the_first_code_and_codes_are_unique),
		T(basket_redeems_a_code_once_in_its_own_transaction),
		T(redemption_is_judged_at_the_basket_time),
		T(conflicting_basket_redeems_nothing),
		T(one_batch_settles_each_basket_as_alone),
		T(large_batch_is_stored_whole),
		T(next_offers_follow_what_the_household_bought),
		T(v1_database_gains_offer_tables),
		T(unused_registrations_are_counted_until_used_and_expire),
		T(v2_database_counts_its_unused_registrations),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	return rc + run_pg();
}
