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

#include "deident.h"
#include "store.h"

struct fx {
	char dir[64];
	char db[128];
	struct store *s;
};

static int setup(void **st)
{
	struct fx *f = calloc(1, sizeof(*f));
	pos_err e = { 0 };

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/central.db", f->dir);
	assert_int_equal(store_open(f->db, &f->s, &e), 0);
	*st = f;
	return 0;
}

static int teardown(void **st)
{
	struct fx *f = *st;
	char p[192];

	store_close(f->s);
	unlink(f->db);
	snprintf(p, sizeof(p), "%s-wal", f->db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->db);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

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
	assert_false(store_household_exists(f->s, a));
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
	assert_false(store_household_exists(f->s, a));
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
	assert_int_equal(sqlite3_column_int(q, 1), 1);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

static void reopen_keeps_data_and_schema_v1_file_is_0600(void **st)
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
	assert_int_equal(schema_version(f->db), 1);
	assert_int_equal(store_open(f->db, &f->s, &e), 0);
	assert_int_equal(schema_version(f->db), 1);
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
		T(merge_moves_links_and_baskets_and_removes_source),
		T(audit_rows_are_kept),
		T(reopen_keeps_data_and_schema_v1_file_is_0600),
		T(newer_schema_is_refused),
		T(history_uses_index_not_a_sort),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
