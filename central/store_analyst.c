#include "store_analyst.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_sqlite.h"

/*
 * SQLite implementation of store_analyst.h. Analysts call these far less
 * often than lanes post baskets, so each statement is prepared per call
 * (bound parameters only). A cohort is found through items_gtin, then its
 * baskets by their primary key.
 */

/* The filter on baskets b shared by the cohort statements: ?2 from, ?3
 * to (NULL: open), ?4 store (NULL: any). */
#define SA_FILTER                                                                              \
	"b.hhid IS NOT NULL AND (?2 IS NULL OR b.ts >= ?2) AND (?3 IS NULL OR b.ts < ?3) AND " \
	"(?4 IS NULL OR b.store = ?4)"

static const char *sa_text(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	return v ? (const char *)v : "";
}

static void sa_bind_filter(sqlite3_stmt *st, const struct store_cohort_filter *f)
{
	sqlite3_bind_text(st, 1, f->gtin ? f->gtin : "", -1, SQLITE_STATIC);
	if (f->from_ms)
		sqlite3_bind_int64(st, 2, f->from_ms);
	if (f->to_ms)
		sqlite3_bind_int64(st, 3, f->to_ms);
	if (f->store && f->store[0])
		sqlite3_bind_text(st, 4, f->store, -1, SQLITE_STATIC);
}

/* Steps to the end; rc of the last step mapped. */
static int sa_end(struct store *s, int rc, const char *what, pos_err *e)
{
	return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, rc, what, e);
}

static int sa_months(struct store *s, const char *hhid, json_t *months, long *baskets,
		     long long *spend, pos_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT strftime('%Y-%m', b.ts / 1000, 'unixepoch') AS m, "
		     "count(DISTINCT b.id), coalesce(sum(i.price_cents), 0) FROM baskets b "
		     "LEFT JOIN items i ON i.basket_id = b.id WHERE b.hhid = ?1 "
		     "GROUP BY m ORDER BY m",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *o = json_pack("{s:s, s:I, s:I}", "month", sa_text(st, 0), "baskets",
				      (json_int_t)sqlite3_column_int64(st, 1), "spend_cents",
				      (json_int_t)sqlite3_column_int64(st, 2));

		if (!o || json_array_append_new(months, o) != 0) {
			sqlite3_finalize(st);
			return err_set(e, POS_ENOMEM, "out of memory");
		}
		*baskets += (long)sqlite3_column_int64(st, 1);
		*spend += sqlite3_column_int64(st, 2);
	}
	rc = sa_end(s, rc, "household months", e);
	sqlite3_finalize(st);
	return rc;
}

static int sa_categories(struct store *s, const char *hhid, json_t *cats, pos_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT coalesce(m.category, ''), sum(i.qty), "
		     "coalesce(sum(i.price_cents), 0) AS spend FROM baskets b "
		     "JOIN items i ON i.basket_id = b.id "
		     "LEFT JOIN item_master m ON m.gtin = i.gtin WHERE b.hhid = ?1 "
		     "GROUP BY 1 ORDER BY spend DESC, 1",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *o = json_pack("{s:s, s:I, s:I}", "category", sa_text(st, 0), "items",
				      (json_int_t)sqlite3_column_int64(st, 1), "spend_cents",
				      (json_int_t)sqlite3_column_int64(st, 2));

		if (!o || json_array_append_new(cats, o) != 0) {
			sqlite3_finalize(st);
			return err_set(e, POS_ENOMEM, "out of memory");
		}
	}
	rc = sa_end(s, rc, "household categories", e);
	sqlite3_finalize(st);
	return rc;
}

static int sa_offers(struct store *s, const char *hhid, json_t *offers, pos_err *e)
{
	sqlite3_stmt *st = NULL;
	char ts[32];
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT c.offer_id, o.title, r.ts, r.store FROM offer_redemptions r "
		     "JOIN offer_codes c ON c.code = r.code JOIN offers o ON o.id = c.offer_id "
		     "WHERE r.hhid = ?1 ORDER BY r.ts",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		time_t t = (time_t)(sqlite3_column_int64(st, 2) / 1000);
		struct tm tm;
		json_t *o;

		gmtime_r(&t, &tm);
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
		o = json_pack("{s:s, s:s, s:s, s:s}", "offer_id", sa_text(st, 0), "title",
			      sa_text(st, 1), "redeemed_at", ts, "store", sa_text(st, 3));
		if (!o || json_array_append_new(offers, o) != 0) {
			sqlite3_finalize(st);
			return err_set(e, POS_ENOMEM, "out of memory");
		}
	}
	rc = sa_end(s, rc, "household offers", e);
	sqlite3_finalize(st);
	return rc;
}

int store_analyst_household(struct store *s, const char *hhid, json_t **out, pos_err *e)
{
	json_t *months = json_array(), *cats = json_array(), *offers = json_array();
	sqlite3_stmt *st = NULL;
	long baskets = 0;
	long long spend = 0;
	int rc;

	*out = NULL;
	if (!months || !cats || !offers) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = store_sqlite_prepare(s, "SELECT 1 FROM households WHERE hhid = ?1", &st, e)) < 0)
		goto out;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE) {
		rc = err_set(e, POS_ENOTFOUND, "no household has this hhid");
		goto out;
	}
	if (rc != SQLITE_ROW) {
		rc = store_sqlite_err(s, rc, "household", e);
		goto out;
	}
	if ((rc = sa_months(s, hhid, months, &baskets, &spend, e)) < 0 ||
	    (rc = sa_categories(s, hhid, cats, e)) < 0 || (rc = sa_offers(s, hhid, offers, e)) < 0)
		goto out;
	*out = json_pack("{s:s, s:I, s:I, s:O, s:O, s:O}", "hhid", hhid, "baskets",
			 (json_int_t)baskets, "spend_cents", (json_int_t)spend, "months", months,
			 "categories", cats, "offers", offers);
	rc = *out ? 0 : err_set(e, POS_ENOMEM, "out of memory");
out:
	json_decref(months);
	json_decref(cats);
	json_decref(offers);
	return rc;
}

int store_analyst_lines(struct store *s, const char *hhid,
			int (*cb)(const struct store_analyst_line *l, void *arg), void *arg,
			pos_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT b.ts, b.txn, b.store, i.gtin, coalesce(m.name, ''), "
		     "coalesce(m.category, ''), i.qty, i.price_cents FROM baskets b "
		     "JOIN items i ON i.basket_id = b.id "
		     "LEFT JOIN item_master m ON m.gtin = i.gtin WHERE b.hhid = ?1 "
		     "ORDER BY b.ts, b.id, i.seq",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_analyst_line l = {
			.ts_ms = sqlite3_column_int64(st, 0),
			.txn = sa_text(st, 1),
			.store = sa_text(st, 2),
			.gtin = sa_text(st, 3),
			.name = sa_text(st, 4),
			.category = sa_text(st, 5),
			.qty = (long)sqlite3_column_int64(st, 6),
			.price_cents = sqlite3_column_type(st, 7) == SQLITE_NULL
					       ? -1
					       : (long)sqlite3_column_int64(st, 7),
		};
		int crc = cb(&l, arg);

		if (crc < 0) {
			sqlite3_finalize(st);
			return err_set(e, crc, "household lines: writing failed");
		}
	}
	rc = sa_end(s, rc, "household lines", e);
	sqlite3_finalize(st);
	return rc;
}

static int sa_month(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	return (tm.tm_year + 1900) * 12 + tm.tm_mon;
}

int store_analyst_cohort(struct store *s, const struct store_cohort_filter *f, int **first,
			 int **last, size_t *n, pos_err *e)
{
	sqlite3_stmt *st = NULL;
	int *a = NULL, *b = NULL;
	size_t cap = 0, k = 0;
	int rc;

	*first = *last = NULL;
	*n = 0;
	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT b.hhid, min(b.ts), max(b.ts) FROM items i "
		     "JOIN baskets b ON b.id = i.basket_id WHERE i.gtin = ?1 AND " SA_FILTER
		     " GROUP BY b.hhid",
		     &st, e)) < 0)
		return rc;
	sa_bind_filter(st, f);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == cap) {
			size_t nc = cap ? cap * 2 : 64;
			int *na = realloc(a, nc * sizeof *a), *nb;

			if (na)
				a = na;
			nb = na ? realloc(b, nc * sizeof *b) : NULL;
			if (!na || !nb) {
				rc = err_set(e, POS_ENOMEM, "out of memory");
				goto out;
			}
			b = nb;
			cap = nc;
		}
		a[k] = sa_month(sqlite3_column_int64(st, 1));
		b[k] = sa_month(sqlite3_column_int64(st, 2));
		k++;
	}
	if ((rc = sa_end(s, rc, "cohort", e)) < 0)
		goto out;
	*first = a;
	*last = b;
	*n = k;
	a = b = NULL;
out:
	sqlite3_finalize(st);
	free(a);
	free(b);
	return rc;
}

int store_analyst_population(struct store *s, const struct store_cohort_filter *f, long *n,
			     pos_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*n = 0;
	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT count(DISTINCT b.hhid) FROM baskets b WHERE ?1 IS NOT NULL "
		     "AND " SA_FILTER,
		     &st, e)) < 0)
		return rc;
	sa_bind_filter(st, f);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*n = (long)sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = store_sqlite_err(s, rc, "population", e);
	}
	sqlite3_finalize(st);
	return rc;
}

int store_analyst_also(struct store *s, const struct store_cohort_filter *f,
		       int (*cb)(const struct store_analyst_other *o, void *arg), void *arg,
		       pos_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "WITH c AS (SELECT DISTINCT b.hhid FROM items i "
		     "  JOIN baskets b ON b.id = i.basket_id WHERE i.gtin = ?1 AND " SA_FILTER "),"
		     " p AS (SELECT i.gtin, b.hhid FROM baskets b "
		     "  JOIN items i ON i.basket_id = b.id WHERE i.gtin <> ?1 AND " SA_FILTER
		     "  GROUP BY i.gtin, b.hhid) "
		     "SELECT p.gtin, coalesce(m.name, ''), "
		     "  sum(p.hhid IN (SELECT hhid FROM c)) AS hc, count(*) FROM p "
		     "LEFT JOIN item_master m ON m.gtin = p.gtin "
		     "GROUP BY p.gtin HAVING hc > 0 ORDER BY hc DESC, p.gtin",
		     &st, e)) < 0)
		return rc;
	sa_bind_filter(st, f);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_analyst_other o = {
			.gtin = sa_text(st, 0),
			.name = sa_text(st, 1),
			.cohort = (long)sqlite3_column_int64(st, 2),
			.population = (long)sqlite3_column_int64(st, 3),
		};
		int crc = cb(&o, arg);

		if (crc < 0) {
			sqlite3_finalize(st);
			return err_set(e, crc, "cohort: out of memory");
		}
	}
	rc = sa_end(s, rc, "cohort items", e);
	sqlite3_finalize(st);
	return rc;
}

int store_analyst_funnel(struct store *s,
			 int (*cb)(const struct store_analyst_funnel *f, void *arg), void *arg,
			 pos_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT o.id, o.title, "
		     " (SELECT count(*) FROM offer_codes c WHERE c.offer_id = o.id), "
		     " (SELECT count(*) FROM offer_redemptions r JOIN offer_codes c "
		     "   ON c.code = r.code WHERE c.offer_id = o.id), "
		     " (SELECT count(*) FROM offer_redemptions r JOIN offer_codes c "
		     "   ON c.code = r.code WHERE c.offer_id = o.id AND r.hhid IS NOT NULL) "
		     "FROM offers o ORDER BY o.created, o.id",
		     &st, e)) < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_analyst_funnel f = {
			.offer_id = sa_text(st, 0),
			.title = sa_text(st, 1),
			.accepted = (long)sqlite3_column_int64(st, 2),
			.scanned = (long)sqlite3_column_int64(st, 3),
			.redeemed = (long)sqlite3_column_int64(st, 4),
		};
		int crc = cb(&f, arg);

		if (crc < 0) {
			sqlite3_finalize(st);
			return err_set(e, crc, "funnel: out of memory");
		}
	}
	rc = sa_end(s, rc, "funnel", e);
	sqlite3_finalize(st);
	return rc;
}
