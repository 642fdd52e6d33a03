#include "store_analyst.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_impl.h"

/*
 * store_analyst.h over db.h, one text for both backends but the month of
 * a timestamp (sa_sql). Each statement is prepared once per connection
 * (store_q) and binds every parameter. A cohort is found through
 * items_gtin, then its baskets by their primary key.
 */

/* The filter on baskets b shared by the cohort statements: ?2 from, ?3
 * to (NULL: open), ?4 store (NULL: any). The casts type the parameters
 * where PostgreSQL meets them first. */
#define SA_FILTER                                                                      \
	"b.hhid IS NOT NULL AND (CAST(?2 AS BIGINT) IS NULL OR b.ts >= ?2) AND "       \
	"(CAST(?3 AS BIGINT) IS NULL OR b.ts < ?3) AND "                               \
	"(CAST(?4 AS TEXT) IS NULL OR b.store = ?4)"
#define SA_MONTHS(month)                                                                     \
	"SELECT " month " AS m, count(DISTINCT b.id), coalesce(sum(i.price_cents), 0) "     \
	"FROM baskets b LEFT JOIN items i ON i.basket_id = b.id WHERE b.hhid = ?1 "          \
	"GROUP BY m ORDER BY m"

static const char SQL_MONTHS_SQLITE[] = SA_MONTHS("strftime('%Y-%m', b.ts / 1000, 'unixepoch')");
static const char SQL_MONTHS_PG[] =
	SA_MONTHS("to_char(to_timestamp(b.ts / 1000) AT TIME ZONE 'UTC', 'YYYY-MM')");
static const char SQL_CATEGORIES[] =
	"SELECT coalesce(m.category, ''), sum(i.qty), "
	"coalesce(sum(i.price_cents), 0) AS spend FROM baskets b "
	"JOIN items i ON i.basket_id = b.id "
	"LEFT JOIN item_master m ON m.gtin = i.gtin WHERE b.hhid = ?1 "
	"GROUP BY 1 ORDER BY spend DESC, 1";
static const char SQL_OFFERS[] =
	"SELECT c.offer_id, o.title, r.ts, r.store FROM offer_redemptions r "
	"JOIN offer_codes c ON c.code = r.code JOIN offers o ON o.id = c.offer_id "
	"WHERE r.hhid = ?1 ORDER BY r.ts";
static const char SQL_HOUSEHOLD[] = "SELECT 1 FROM households WHERE hhid = ?1";
static const char SQL_LINES[] =
	"SELECT b.ts, b.txn, b.store, i.gtin, coalesce(m.name, ''), "
	"coalesce(m.category, ''), i.qty, i.price_cents FROM baskets b "
	"JOIN items i ON i.basket_id = b.id "
	"LEFT JOIN item_master m ON m.gtin = i.gtin WHERE b.hhid = ?1 "
	"ORDER BY b.ts, b.id, i.seq";
static const char SQL_COHORT[] =
	"SELECT b.hhid, min(b.ts), max(b.ts) FROM items i "
	"JOIN baskets b ON b.id = i.basket_id WHERE i.gtin = ?1 AND " SA_FILTER
	" GROUP BY b.hhid";
/* ?1 is bound as for every cohort statement; the cast gives it a type. */
static const char SQL_POPULATION[] =
	"SELECT count(DISTINCT b.hhid) FROM baskets b WHERE CAST(?1 AS TEXT) IS NOT NULL "
	"AND " SA_FILTER;
#define SA_IN_COHORT "CASE WHEN p.hhid IN (SELECT hhid FROM c) THEN 1 ELSE 0 END"
static const char SQL_ALSO[] =
	"WITH c AS (SELECT DISTINCT b.hhid FROM items i "
	"  JOIN baskets b ON b.id = i.basket_id WHERE i.gtin = ?1 AND " SA_FILTER "),"
	" p AS (SELECT i.gtin, b.hhid FROM baskets b "
	"  JOIN items i ON i.basket_id = b.id WHERE i.gtin <> ?1 AND " SA_FILTER
	"  GROUP BY i.gtin, b.hhid) "
	"SELECT p.gtin, coalesce(m.name, ''), sum(" SA_IN_COHORT ") AS hc, count(*) FROM p "
	"LEFT JOIN item_master m ON m.gtin = p.gtin "
	"GROUP BY p.gtin, m.name HAVING sum(" SA_IN_COHORT ") > 0 ORDER BY hc DESC, p.gtin";
static const char SQL_FUNNEL[] =
	"SELECT o.id, o.title, "
	" (SELECT count(*) FROM offer_codes c WHERE c.offer_id = o.id), "
	" (SELECT count(*) FROM offer_redemptions r JOIN offer_codes c "
	"   ON c.code = r.code WHERE c.offer_id = o.id), "
	" (SELECT count(*) FROM offer_redemptions r JOIN offer_codes c "
	"   ON c.code = r.code WHERE c.offer_id = o.id AND r.hhid IS NOT NULL) "
	"FROM offers o ORDER BY o.created, o.id";

/* The one place a statement's text depends on the backend. */
static const char *sa_sql(struct store *s, const char *sqlite, const char *pg)
{
	return store_backend(s) == DB_POSTGRESQL ? pg : sqlite;
}

/* The statement for sql, or the error of preparing it. */
static int sa_q(struct store *s, const char *sql, struct db_stmt **st, pos_err *e)
{
	if (!(*st = store_q(s, sql, e)))
		return e && e->code < 0 ? e->code : POS_EDB;
	return 0;
}

static const char *sa_text(struct db_stmt *st, int i)
{
	const char *v = db_col_text(st, i);

	return v ? v : "";
}

static void sa_bind_filter(struct db_stmt *st, const struct store_cohort_filter *f)
{
	db_bind_text(st, 1, f->gtin ? f->gtin : "");
	if (f->from_ms)
		db_bind_int64(st, 2, f->from_ms);
	else
		db_bind_null(st, 2);
	if (f->to_ms)
		db_bind_int64(st, 3, f->to_ms);
	else
		db_bind_null(st, 3);
	db_bind_opt_text(st, 4, f->store);
}

/* A walk's answer: the caller's callback failing (crc < 0) is named by
 * what; else db_each's rc. */
static int sa_walked(int rc, int crc, const char *what, pos_err *e)
{
	if (crc < 0)
		return err_set(e, crc, "%s", what);
	return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------ household */

struct sa_months {
	json_t *months;
	long baskets;
	long long spend;
};

static int sa_month_row(struct db_stmt *st, void *arg)
{
	struct sa_months *w = arg;
	json_t *o = json_pack("{s:s, s:I, s:I}", "month", sa_text(st, 0), "baskets",
			      (json_int_t)db_col_int64(st, 1), "spend_cents",
			      (json_int_t)db_col_int64(st, 2));

	if (!o || json_array_append_new(w->months, o) != 0)
		return POS_ENOMEM;
	w->baskets += (long)db_col_int64(st, 1);
	w->spend += db_col_int64(st, 2);
	return 0;
}

static int sa_category_row(struct db_stmt *st, void *arg)
{
	json_t *o = json_pack("{s:s, s:I, s:I}", "category", sa_text(st, 0), "items",
			      (json_int_t)db_col_int64(st, 1), "spend_cents",
			      (json_int_t)db_col_int64(st, 2));

	return o && json_array_append_new(arg, o) == 0 ? 0 : POS_ENOMEM;
}

static int sa_offer_row(struct db_stmt *st, void *arg)
{
	time_t t = (time_t)(db_col_int64(st, 2) / 1000);
	struct tm tm;
	char ts[32];
	json_t *o;

	gmtime_r(&t, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	o = json_pack("{s:s, s:s, s:s, s:s}", "offer_id", sa_text(st, 0), "title", sa_text(st, 1),
		      "redeemed_at", ts, "store", sa_text(st, 3));
	return o && json_array_append_new(arg, o) == 0 ? 0 : POS_ENOMEM;
}

/* The household's rows of sql (bound to hhid) through fn into arg. */
static int sa_hh_rows(struct store *s, const char *sql, const char *hhid,
		      int (*fn)(struct db_stmt *st, void *arg), void *arg, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sa_q(s, sql, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, hhid);
	rc = db_each(st, fn, arg, e);
	if (rc == POS_ENOMEM)
		return err_set(e, POS_ENOMEM, "out of memory");
	return rc;
}

static int sa_one_row(struct db_stmt *st, void *arg)
{
	(void)st;
	*(bool *)arg = true;
	return 1;
}

int store_analyst_household(struct store *s, const char *hhid, json_t **out, pos_err *e)
{
	struct sa_months w = { json_array(), 0, 0 };
	json_t *cats = json_array(), *offers = json_array();
	bool known = false;
	int rc;

	*out = NULL;
	if (!w.months || !cats || !offers) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = sa_hh_rows(s, SQL_HOUSEHOLD, hhid, sa_one_row, &known, e)) < 0)
		goto out;
	if (!known) {
		rc = err_set(e, POS_ENOTFOUND, "no household has this hhid");
		goto out;
	}
	if ((rc = sa_hh_rows(s, sa_sql(s, SQL_MONTHS_SQLITE, SQL_MONTHS_PG), hhid, sa_month_row,
			     &w, e)) < 0 ||
	    (rc = sa_hh_rows(s, SQL_CATEGORIES, hhid, sa_category_row, cats, e)) < 0 ||
	    (rc = sa_hh_rows(s, SQL_OFFERS, hhid, sa_offer_row, offers, e)) < 0)
		goto out;
	*out = json_pack("{s:s, s:I, s:I, s:O, s:O, s:O}", "hhid", hhid, "baskets",
			 (json_int_t)w.baskets, "spend_cents", (json_int_t)w.spend, "months",
			 w.months, "categories", cats, "offers", offers);
	rc = *out ? 0 : err_set(e, POS_ENOMEM, "out of memory");
out:
	json_decref(w.months);
	json_decref(cats);
	json_decref(offers);
	return rc;
}

struct sa_lines {
	int (*cb)(const struct store_analyst_line *l, void *arg);
	void *arg;
	int crc;
};

static int sa_line_row(struct db_stmt *st, void *arg)
{
	struct sa_lines *w = arg;
	struct store_analyst_line l = {
		.ts_ms = db_col_int64(st, 0),
		.txn = sa_text(st, 1),
		.store = sa_text(st, 2),
		.gtin = sa_text(st, 3),
		.name = sa_text(st, 4),
		.category = sa_text(st, 5),
		.qty = (long)db_col_int64(st, 6),
		.price_cents = db_col_null(st, 7) ? -1 : (long)db_col_int64(st, 7),
	};
	int crc = w->cb(&l, w->arg);

	return crc < 0 ? (w->crc = crc) : 0;
}

int store_analyst_lines(struct store *s, const char *hhid,
			int (*cb)(const struct store_analyst_line *l, void *arg), void *arg,
			pos_err *e)
{
	struct sa_lines w = { cb, arg, 0 };
	struct db_stmt *st;
	int rc;

	if ((rc = sa_q(s, SQL_LINES, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, hhid);
	rc = db_each(st, sa_line_row, &w, e);
	return sa_walked(rc, w.crc, "household lines: writing failed", e);
}

/* ------------------------------------------------------------ cohorts */

static int sa_month(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	return (tm.tm_year + 1900) * 12 + tm.tm_mon;
}

struct sa_cohort {
	int *a, *b;
	size_t cap, n;
};

static int sa_cohort_row(struct db_stmt *st, void *arg)
{
	struct sa_cohort *w = arg;

	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 64;
		int *na = realloc(w->a, nc * sizeof *na), *nb;

		if (!na)
			return POS_ENOMEM;
		w->a = na;
		if (!(nb = realloc(w->b, nc * sizeof *nb)))
			return POS_ENOMEM;
		w->b = nb;
		w->cap = nc;
	}
	w->a[w->n] = sa_month(db_col_int64(st, 1));
	w->b[w->n] = sa_month(db_col_int64(st, 2));
	w->n++;
	return 0;
}

int store_analyst_cohort(struct store *s, const struct store_cohort_filter *f, int **first,
			 int **last, size_t *n, pos_err *e)
{
	struct sa_cohort w = { NULL, NULL, 0, 0 };
	struct db_stmt *st;
	int rc;

	*first = *last = NULL;
	*n = 0;
	if ((rc = sa_q(s, SQL_COHORT, &st, e)) < 0)
		return rc;
	sa_bind_filter(st, f);
	if ((rc = db_each(st, sa_cohort_row, &w, e)) < 0) {
		if (rc == POS_ENOMEM)
			err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	*first = w.a;
	*last = w.b;
	*n = w.n;
	w.a = w.b = NULL;
out:
	free(w.a);
	free(w.b);
	return rc;
}

static int sa_count_row(struct db_stmt *st, void *arg)
{
	*(long *)arg = (long)db_col_int64(st, 0);
	return 1;
}

int store_analyst_population(struct store *s, const struct store_cohort_filter *f, long *n,
			     pos_err *e)
{
	struct db_stmt *st;
	int rc;

	*n = 0;
	if ((rc = sa_q(s, SQL_POPULATION, &st, e)) < 0)
		return rc;
	sa_bind_filter(st, f);
	rc = db_each(st, sa_count_row, n, e);
	return rc < 0 ? rc : 0;
}

struct sa_also {
	int (*cb)(const struct store_analyst_other *o, void *arg);
	void *arg;
	int crc;
};

static int sa_also_row(struct db_stmt *st, void *arg)
{
	struct sa_also *w = arg;
	struct store_analyst_other o = {
		.gtin = sa_text(st, 0),
		.name = sa_text(st, 1),
		.cohort = (long)db_col_int64(st, 2),
		.population = (long)db_col_int64(st, 3),
	};
	int crc = w->cb(&o, w->arg);

	return crc < 0 ? (w->crc = crc) : 0;
}

int store_analyst_also(struct store *s, const struct store_cohort_filter *f,
		       int (*cb)(const struct store_analyst_other *o, void *arg), void *arg,
		       pos_err *e)
{
	struct sa_also w = { cb, arg, 0 };
	struct db_stmt *st;
	int rc;

	if ((rc = sa_q(s, SQL_ALSO, &st, e)) < 0)
		return rc;
	sa_bind_filter(st, f);
	rc = db_each(st, sa_also_row, &w, e);
	return sa_walked(rc, w.crc, "cohort: out of memory", e);
}

/* ------------------------------------------------------------ offers */

struct sa_funnel {
	int (*cb)(const struct store_analyst_funnel *f, void *arg);
	void *arg;
	int crc;
};

static int sa_funnel_row(struct db_stmt *st, void *arg)
{
	struct sa_funnel *w = arg;
	struct store_analyst_funnel f = {
		.offer_id = sa_text(st, 0),
		.title = sa_text(st, 1),
		.accepted = (long)db_col_int64(st, 2),
		.scanned = (long)db_col_int64(st, 3),
		.redeemed = (long)db_col_int64(st, 4),
	};
	int crc = w->cb(&f, w->arg);

	return crc < 0 ? (w->crc = crc) : 0;
}

int store_analyst_funnel(struct store *s,
			 int (*cb)(const struct store_analyst_funnel *f, void *arg), void *arg,
			 pos_err *e)
{
	struct sa_funnel w = { cb, arg, 0 };
	struct db_stmt *st;
	int rc;

	if ((rc = sa_q(s, SQL_FUNNEL, &st, e)) < 0)
		return rc;
	rc = db_each(st, sa_funnel_row, &w, e);
	return sa_walked(rc, w.crc, "funnel: out of memory", e);
}
