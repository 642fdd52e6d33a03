#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"
#include "timeutil.h"

/*
 * Baskets by month: PostgreSQL's partitions made ahead and on demand
 * (the plpgsql functions of store_schema_pg.c), and retention on both
 * backends: whole partitions dropped on PostgreSQL, bounded batches of
 * deletes on SQLite.
 */

#define MS_PER_DAY 86400000LL

static const char SQL_AHEAD[] = "SELECT pos_partitions_ahead(?1, ?2)";
static const char SQL_MONTH[] = "SELECT pos_month_partition(?1)";
/* The months of baskets' own partitions older than ?1 (YYYYMM). */
static const char SQL_OLD_MONTHS[] =
	"SELECT substr(c.relname, 9) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
	"WHERE i.inhparent = 'baskets'::regclass AND c.relname ~ '^baskets_[0-9]{6}$' "
	"AND substr(c.relname, 9) < ?1 ORDER BY 1";
static const char SQL_DROP_MONTH[] = "SELECT n_baskets, n_items FROM pos_drop_month(?1)";
/* Oldest ids first: they sit at the front of the rowid order, so each
 * batch's scan starts where the last one ended. */
static const char SQL_OLD_IDS[] = "SELECT id FROM baskets WHERE ts < ?1 ORDER BY id LIMIT ?2";
static const char SQL_DEL_ITEMS[] = "DELETE FROM items WHERE basket_id = ?1";
static const char SQL_DEL_RECEIPT[] = "DELETE FROM receipts WHERE basket_id = ?1";
static const char SQL_DEL_REDEEM[] = "DELETE FROM offer_redemptions WHERE basket_id = ?1";
static const char SQL_DEL_BASKET[] = "DELETE FROM baskets WHERE id = ?1";
static const char SQL_COUNT_DOWN[] =
	"UPDATE counters SET baskets = baskets - ?1, items = items - ?2";

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so month bounds need no time zone. */
static int64_t days_from_civil(int64_t y, int64_t m)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5; /* the 1st of the month */
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The UTC year and month (1..12) holding ms. */
static void month_of(int64_t ms, int64_t *y, int64_t *m)
{
	int64_t z = (ms >= 0 ? ms : ms - (MS_PER_DAY - 1)) / MS_PER_DAY + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yoe + era * 400 + (*m <= 2);
}

int64_t store_month_start(int64_t now_ms, long months_back)
{
	int64_t y, m, k;

	month_of(now_ms, &y, &m);
	k = y * 12 + (m - 1) - months_back;
	y = (k >= 0 ? k : k - 11) / 12;
	m = k - y * 12 + 1;
	return days_from_civil(y, m) * MS_PER_DAY;
}

int store_partitions_ahead(struct store *s, long months, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if (!s || months < 0)
		return err_set(e, POS_EINVAL, "store_partitions_ahead: bad argument");
	if (store_backend(s) != DB_POSTGRESQL)
		return 0;
	if (!(st = store_q(s, SQL_AHEAD, e)))
		return POS_EDB;
	db_bind_int64(st, 1, time_now_ms());
	db_bind_int64(st, 2, months);
	if ((rc = store_unit_begin(s, e)) < 0)
		return rc;
	rc = db_run(st, e);
	return store_unit_finish(s, rc, e);
}

int store_partition_for(struct store *s, int64_t ts_ms, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if (!s)
		return err_set(e, POS_EINVAL, "store_partition_for: no store");
	if (store_backend(s) != DB_POSTGRESQL)
		return 0;
	if (!(st = store_q(s, SQL_MONTH, e)))
		return POS_EDB;
	db_bind_int64(st, 1, ts_ms);
	if ((rc = store_unit_begin(s, e)) < 0)
		return rc;
	rc = db_run(st, e);
	return store_unit_finish(s, rc, e);
}

/* ---------------------------------------------------------------- PostgreSQL */

struct month_list {
	char (*m)[8];
	size_t n, cap;
	pos_err *e;
};

static int month_row(struct db_stmt *st, void *arg)
{
	struct month_list *l = arg;
	const char *t = db_col_text(st, 0);

	if (!t || strlen(t) != 6)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char(*m)[8] = realloc(l->m, cap * sizeof(*m));

		if (!m)
			return err_set(l->e, POS_ENOMEM, "retention: out of memory");
		l->m = m;
		l->cap = cap;
	}
	memcpy(l->m[l->n++], t, 7);
	return 0;
}

static int retention_pg(struct store *s, int64_t before_ms, struct store_retention *out,
			pos_err *e)
{
	struct month_list l = { .e = e };
	struct db_stmt *st;
	char cut[16];
	int64_t y, m;
	int rc;

	month_of(before_ms, &y, &m);
	snprintf(cut, sizeof(cut), "%04lld%02lld", (long long)y, (long long)m);
	if (!(st = store_q(s, SQL_OLD_MONTHS, e)))
		return POS_EDB;
	db_bind_text(st, 1, cut);
	if ((rc = db_each(st, month_row, &l, e)) < 0)
		goto out;
	for (size_t i = 0; i < l.n; i++) {
		if ((rc = store_unit_begin(s, e)) < 0)
			goto out;
		if (!(st = store_q(s, SQL_DROP_MONTH, e))) {
			rc = store_unit_finish(s, POS_EDB, e);
			goto out;
		}
		db_bind_text(st, 1, l.m[i]);
		rc = db_step(st, e);
		if (rc == DB_ROW) {
			out->baskets += (long)db_col_int64(st, 0);
			out->items += (long)db_col_int64(st, 1);
			rc = 0;
		} else if (rc == DB_DONE) {
			rc = err_set(e, POS_EDB, "pos_drop_month returned no row");
		}
		db_reset(st);
		if ((rc = store_unit_finish(s, rc, e)) < 0) {
			err_prefix(e, "month %s", l.m[i]);
			goto out;
		}
		out->months++;
	}
out:
	free(l.m);
	return rc;
}

/* ---------------------------------------------------------------- SQLite */

static int id_row(struct db_stmt *st, void *arg)
{
	int64_t **p = arg;

	*(*p)++ = db_col_int64(st, 0);
	return 0;
}

static int del_one(struct store *s, const char *sql, int64_t id, long *changed, pos_err *e)
{
	struct db_stmt *st = store_q(s, sql, e);
	int rc;

	if (!st)
		return POS_EDB;
	db_bind_int64(st, 1, id);
	if ((rc = db_run(st, e)) < 0)
		return rc;
	if (changed)
		*changed += db_changes(st);
	return 0;
}

/* One batch in one unit: the ids first, then each basket's rows. */
static int retention_batch(struct store *s, int64_t before_ms, long batch, int64_t *ids,
			   long *n, struct store_retention *out, pos_err *e)
{
	struct db_stmt *st;
	int64_t *end = ids;
	long items = 0;
	int rc;

	if ((rc = store_unit_begin(s, e)) < 0)
		return rc;
	if (!(st = store_q(s, SQL_OLD_IDS, e))) {
		rc = POS_EDB;
		goto out;
	}
	db_bind_int64(st, 1, before_ms);
	db_bind_int64(st, 2, batch);
	if ((rc = db_each(st, id_row, &end, e)) < 0)
		goto out;
	*n = (long)(end - ids);
	for (long i = 0; i < *n && rc == 0; i++) {
		if ((rc = del_one(s, SQL_DEL_ITEMS, ids[i], &items, e)) < 0 ||
		    (rc = del_one(s, SQL_DEL_RECEIPT, ids[i], NULL, e)) < 0 ||
		    (rc = del_one(s, SQL_DEL_REDEEM, ids[i], NULL, e)) < 0)
			break;
		rc = del_one(s, SQL_DEL_BASKET, ids[i], NULL, e);
	}
	if (rc == 0 && *n) {
		if (!(st = store_q(s, SQL_COUNT_DOWN, e))) {
			rc = POS_EDB;
			goto out;
		}
		db_bind_int64(st, 1, *n);
		db_bind_int64(st, 2, items);
		rc = db_run(st, e);
	}
out:
	rc = store_unit_finish(s, rc, e);
	if (rc == 0) {
		out->baskets += *n;
		out->items += items;
	}
	return rc;
}

static int retention_rows(struct store *s, int64_t before_ms, long batch,
			  struct store_retention *out, pos_err *e)
{
	int64_t *ids = calloc((size_t)batch, sizeof(*ids));
	long n = 0;
	int rc;

	if (!ids)
		return err_set(e, POS_ENOMEM, "retention: out of memory");
	do
		rc = retention_batch(s, before_ms, batch, ids, &n, out, e);
	while (rc == 0 && n == batch);
	free(ids);
	return rc;
}

int store_retention(struct store *s, int64_t before_ms, long batch, struct store_retention *out,
		    pos_err *e)
{
	if (!s || !out || batch < 1 || batch > 1000000)
		return err_set(e, POS_EINVAL, "store_retention: bad argument");
	memset(out, 0, sizeof(*out));
	if (store_in_txn(s))
		return err_set(e, POS_EINVAL, "store_retention: runs its own transactions");
	if (store_backend(s) == DB_POSTGRESQL)
		return retention_pg(s, before_ms, out, e);
	return retention_rows(s, before_ms, batch, out, e);
}
