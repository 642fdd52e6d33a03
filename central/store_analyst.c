#include "store_analyst.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_impl.h"

/*
 * store_analyst.h over db.h, one text for both backends but the month of
 * a timestamp (store_sql). Each statement is prepared once per connection
 * (store_q) and binds every parameter. Cohorts read the folded tables
 * (store_analyst_fold), the household page and the funnel the live ones.
 */

#define SA_MONTHS(month, items)                                                              \
	"SELECT " month " AS m, count(DISTINCT b.id), coalesce(sum(i.price_cents), 0) "     \
	"FROM baskets b " items " WHERE b.hhid = ?1 GROUP BY m ORDER BY m"

static const char SQL_MONTHS_SQLITE[] = SA_MONTHS("strftime('%Y-%m', b.ts / 1000, 'unixepoch')",
						  "LEFT JOIN items i ON i.basket_id = b.id");
#define SA_CATEGORIES(items)                                                                 \
	"SELECT coalesce(m.category, ''), sum(i.qty), "                                      \
	"coalesce(sum(i.price_cents), 0) AS spend FROM baskets b " items                     \
	"LEFT JOIN item_master m ON m.gtin = i.gtin WHERE b.hhid = ?1 "                      \
	"GROUP BY 1 ORDER BY spend DESC, 1"
static const char SQL_CATEGORIES[] = SA_CATEGORIES("JOIN items i ON i.basket_id = b.id ");
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
/* PostgreSQL: a household's baskets by the (hhid, ts) index, then each
 * basket's items from its own month (STORE_SQL_ITEMS_OF_PG); every
 * statement below that reads baskets with their items is written so. */
#define SA_ITEMS_OF_B_PG "CROSS JOIN " STORE_SQL_ITEMS_OF_PG("seq, gtin, qty, price_cents", "b")
/* The household page's months and categories, each basket's items from
 * its own month (SA_ITEMS_OF_B_PG): as plain joins every month's items
 * were probed per basket (1,300 buffers for 200 baskets against 9,200). */
static const char SQL_MONTHS_PG[] =
	SA_MONTHS("to_char(to_timestamp(b.ts / 1000) AT TIME ZONE 'UTC', 'YYYY-MM')",
		  "LEFT JOIN " STORE_SQL_ITEMS_OF_PG("price_cents", "b") "ON true");
static const char SQL_CATEGORIES_PG[] = SA_CATEGORIES(SA_ITEMS_OF_B_PG);
static const char SQL_LINES_PG[] =
	"SELECT b.ts, b.txn, b.store, i.gtin, coalesce(m.name, ''), "
	"coalesce(m.category, ''), i.qty, i.price_cents FROM (SELECT id, ts, txn, store "
	"FROM baskets WHERE hhid = ?1 OFFSET 0) b " SA_ITEMS_OF_B_PG
	"LEFT JOIN item_master m ON m.gtin = i.gtin ORDER BY b.ts, b.id, i.seq";
/* ?1 is bound as for every cohort statement; the cast gives it a type. */
#define SA_IN_COHORT "CASE WHEN p.hhid IN (SELECT hhid FROM c) THEN 1 ELSE 0 END"
static const char SQL_FUNNEL[] =
	"SELECT o.id, o.title, "
	" (SELECT count(*) FROM offer_codes c WHERE c.offer_id = o.id), "
	" (SELECT count(*) FROM offer_redemptions r JOIN offer_codes c "
	"   ON c.code = r.code WHERE c.offer_id = o.id), "
	" (SELECT count(*) FROM offer_redemptions r JOIN offer_codes c "
	"   ON c.code = r.code WHERE c.offer_id = o.id AND r.hhid IS NOT NULL) "
	"FROM offers o ORDER BY o.created, o.id";

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
	if ((rc = sa_hh_rows(s, store_sql(s, SQL_MONTHS_SQLITE, SQL_MONTHS_PG), hhid, sa_month_row,
			     &w, e)) < 0 ||
	    (rc = sa_hh_rows(s, store_sql(s, SQL_CATEGORIES, SQL_CATEGORIES_PG), hhid,
			     sa_category_row, cats, e)) < 0 ||
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

	if ((rc = sa_q(s, store_sql(s, SQL_LINES, SQL_LINES_PG), &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, hhid);
	rc = db_each(st, sa_line_row, &w, e);
	return sa_walked(rc, w.crc, "household lines: writing failed", e);
}

/* ------------------------------------------------------------ cohorts */

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

/* ------------------------------------------------------------ folded tables */

/*
 * analyst_items and analyst_visits (schema v8) hold a bit per day: a
 * day is ts / 86400000 (UTC), kept in block day / SA_BLK_DAYS at bit
 * day % SA_BLK_DAYS of a SA_MASK-byte blob. One row per item, household,
 * block and store, however many times it was bought: a cohort reads one
 * row per household, its also_bought one per household and item.
 */
#define SA_BLK_DAYS 512
#define SA_MASK (SA_BLK_DAYS / 8)
#define SA_DAY_MS 86400000LL
#define SA_HHID_MAX 40
#define SA_STORE_MAX 65
#define SA_GTIN_MAX 15
#define SA_OPEN_DAY (1LL << 40)

static const char SQL_FOLD_MARK[] = "SELECT basket_id FROM analyst_fold WHERE id = 1";
static const char SQL_FOLD_TOP[] = "SELECT coalesce(max(id), 0) FROM baskets";
/* Unsorted: SQLite's sorter took 95% of a fold (67 ms for the 40,000
 * rows of 2,000 baskets); sa_fold_read sorts them in memory. */
static const char SQL_FOLD_ITEMS[] =
	"SELECT i.gtin, b.hhid, b.store, b.ts FROM baskets b JOIN items i ON i.basket_id = b.id "
	"WHERE b.id > ?1 AND b.id <= ?2 AND b.hhid IS NOT NULL";
static const char SQL_FOLD_VISITS[] =
	"SELECT '', b.hhid, b.store, b.ts FROM baskets b "
	"WHERE b.id > ?1 AND b.id <= ?2 AND b.hhid IS NOT NULL";
/* A cell's days OR'ed into its row in one statement (db_sqlite.c's
 * pos_blob_or). */
static const char SQL_ITEMS_PUT[] =
	"INSERT INTO analyst_items(gtin, hhid, blk, store, days) VALUES (?1, ?2, ?3, ?4, ?5) "
	"ON CONFLICT (gtin, hhid, blk, store) DO UPDATE SET days = pos_blob_or(days, excluded.days)";
static const char SQL_VISITS_PUT[] =
	"INSERT INTO analyst_visits(hhid, blk, store, days) VALUES (?1, ?2, ?3, ?4) "
	"ON CONFLICT (hhid, blk, store) DO UPDATE SET days = pos_blob_or(days, excluded.days)";
static const char SQL_FOLD_SET[] =
	"UPDATE analyst_fold SET basket_id = ?1, updated = ?2 WHERE id = 1";

/*
 * On SQLite one writer at a time assigns basket ids and commits them, so
 * ids become visible in order and the mark (the highest id folded) never
 * passes a basket still to come. On PostgreSQL several connections (and
 * nodes) take ids from one sequence and may commit them out of order: a
 * mark could pass a basket whose transaction commits later, and that
 * basket would never be folded. There each new basket with a household
 * writes a row in analyst_pending in its own transaction
 * (store_basket.c), so the row is visible exactly when the basket is; the
 * fold takes rows from that queue and folds those baskets. Folds are one
 * at a time across nodes: each holds the analyst_fold row's lock (its
 * read-modify-write of the folded tables must not interleave).
 */
static const char SQL_FOLD_LOCK_PG[] =
	"SELECT basket_id FROM analyst_fold WHERE id = 1 FOR UPDATE";
static const char SQL_FOLD_TAKE_PG[] =
	"DELETE FROM analyst_pending WHERE basket_id IN "
	"(SELECT basket_id FROM analyst_pending ORDER BY basket_id LIMIT ?1) RETURNING basket_id";
/*
 * Each id is looked up on its own (a LATERAL subquery with OFFSET 0 is
 * not flattened, so it can only run as an index probe per outer row):
 * with the join written plainly the planner, which has no statistics for
 * a partitioned parent and so guesses 200 distinct ids, chose to scan and
 * sort every item row for each fold (0.4-3 s for 500 baskets of 1M item
 * rows, growing with the table). The items come packed in the basket's
 * own row (STORE_SQL_ITEMS_PACKED_PG), unsorted: sa_fold_packed sorts.
 */
#define SA_FOLD_BASKETS_PG                                                                         \
	"FROM unnest(CAST(?1 AS BIGINT[])) AS k(id) CROSS JOIN LATERAL (SELECT id, txn, hhid, "    \
	"store, ts, items FROM baskets WHERE id = k.id AND hhid IS NOT NULL OFFSET 0) b "
static const char SQL_FOLD_ITEMS_PG[] =
	"SELECT b.txn, b.hhid, b.store, b.ts, b.id" STORE_SQL_ITEMS_PACKED_PG SA_FOLD_BASKETS_PG;
/* A basket whose packed items cannot be read: its item rows, which the
 * packed string only copies. */
static const char SQL_FOLD_ROWS_PG[] =
	"SELECT gtin FROM items WHERE basket_id = ?1 AND ts = ?2 ORDER BY seq";
static const char SQL_FOLD_VISITS_PG[] =
	"SELECT '', b.hhid, b.store, b.ts " SA_FOLD_BASKETS_PG "ORDER BY b.hhid, b.store, b.ts";

/* One row of a folded table being built: its key and its days. */
struct sa_cell {
	char gtin[SA_GTIN_MAX], hhid[SA_HHID_MAX], store[SA_STORE_MAX];
	int64_t blk;
	unsigned char days[SA_MASK];
};

struct sa_cells {
	struct sa_cell *v;
	size_t n, cap;
};

static int64_t sa_day(int64_t ts_ms)
{
	return ts_ms >= 0 ? ts_ms / SA_DAY_MS : 0;
}

static int sa_one_int(struct db_stmt *st, void *arg)
{
	*(int64_t *)arg = db_col_int64(st, 0);
	return 0;
}

/* Adds one row (gtin, hhid, store, ts), rows coming in key order: one
 * cell per key and block. */
static int sa_cell_add(struct sa_cells *c, const char *g, const char *h, const char *so,
		       int64_t ts)
{
	int64_t day = sa_day(ts), blk = day / SA_BLK_DAYS;
	struct sa_cell *x = c->n ? &c->v[c->n - 1] : NULL;

	if (!x || x->blk != blk || strcmp(x->gtin, g) != 0 || strcmp(x->hhid, h) != 0 ||
	    strcmp(x->store, so) != 0) {
		if (c->n == c->cap) {
			size_t nc = c->cap ? c->cap * 2 : 256;
			struct sa_cell *nv = realloc(c->v, nc * sizeof *nv);

			if (!nv)
				return POS_ENOMEM;
			c->v = nv;
			c->cap = nc;
		}
		x = &c->v[c->n++];
		memset(x, 0, sizeof *x);
		snprintf(x->gtin, sizeof x->gtin, "%s", g);
		snprintf(x->hhid, sizeof x->hhid, "%s", h);
		snprintf(x->store, sizeof x->store, "%s", so);
		x->blk = blk;
	}
	x->days[(day % SA_BLK_DAYS) / 8] |= (unsigned char)(1u << (day % 8));
	return 0;
}

static int sa_cell_row(struct db_stmt *st, void *arg)
{
	const char *g = db_col_text(st, 0), *h = db_col_text(st, 1), *so = db_col_text(st, 2);

	return sa_cell_add(arg, g ? g : "", h ? h : "", so ? so : "", db_col_int64(st, 3));
}

/* Rows read unsorted, then sorted here (sa_fold_read). */
struct sa_row {
	char gtin[SA_GTIN_MAX], hhid[SA_HHID_MAX], store[SA_STORE_MAX];
	int64_t ts;
};

/* What a row sorts on, apart from it (the rows are large, and sorting
 * pointers to them missed the cache at every comparison): the ranks of
 * its gtin, hhid and store among the batch's (sa_names), its ts. */
struct sa_key {
	uint32_t rank[3], row;
	int64_t ts;
};

struct sa_rows {
	struct sa_row *v;
	size_t n, cap;
};

/* The next row of r, uninitialised; NULL when out of memory or past
 * UINT32_MAX - 1 rows (sa_key and sa_names index the rows in 32 bits). */
static struct sa_row *sa_rows_next(struct sa_rows *r)
{
	if (r->n >= UINT32_MAX - 1)
		return NULL;
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 1024;
		struct sa_row *nv = realloc(r->v, nc * sizeof *nv);

		if (!nv)
			return NULL;
		r->v = nv;
		r->cap = nc;
	}
	return &r->v[r->n++];
}

static int sa_row_take(struct db_stmt *st, void *arg)
{
	struct sa_row *x = sa_rows_next(arg);

	if (!x)
		return POS_ENOMEM;
	db_col_copy(st, 0, x->gtin, sizeof x->gtin);
	db_col_copy(st, 1, x->hhid, sizeof x->hhid);
	db_col_copy(st, 2, x->store, sizeof x->store);
	x->ts = db_col_int64(st, 3);
	return 0;
}

/* PostgreSQL: a basket of SQL_FOLD_ITEMS_PG, one row per item. */
struct sa_packed {
	struct store *s;
	struct sa_rows *r;
	pos_err *e;
};

/* One row (gtin, the basket's hhid, store and ts) into r. */
static int sa_rows_push(struct sa_rows *r, const char *gtin, const struct store_basket *b)
{
	struct sa_row *x = sa_rows_next(r);

	if (!x)
		return POS_ENOMEM;
	snprintf(x->gtin, sizeof x->gtin, "%s", gtin ? gtin : "");
	snprintf(x->hhid, sizeof x->hhid, "%s", b->hhid);
	snprintf(x->store, sizeof x->store, "%s", b->store);
	x->ts = b->ts_ms;
	return 0;
}

struct sa_item_rows {
	struct sa_rows *r;
	const struct store_basket *b;
};

static int sa_item_row(struct db_stmt *st, void *arg)
{
	struct sa_item_rows *w = arg;

	return sa_rows_push(w->r, db_col_text(st, 0), w->b);
}

static int sa_packed_take(struct db_stmt *st, void *arg)
{
	struct sa_packed *p = arg;
	struct store_basket b;
	struct sa_item_rows w = { p->r, &b };
	struct db_stmt *q;
	int rc;

	memset(&b, 0, sizeof b);
	db_col_copy(st, 0, b.txn, sizeof b.txn);
	db_col_copy(st, 1, b.hhid, sizeof b.hhid);
	db_col_copy(st, 2, b.store, sizeof b.store);
	b.ts_ms = db_col_int64(st, 3);
	rc = store_items_unpack(p->s, db_col_text(st, 5), &b, p->e);
	if (rc == POS_EDB) {
		/* Unreadable: one damaged copy must not stop every fold. */
		memset(p->e, 0, sizeof *p->e);
		if (!(q = store_q(p->s, SQL_FOLD_ROWS_PG, p->e)))
			return p->e->code ? p->e->code : POS_EDB;
		db_bind_int64(q, 1, db_col_int64(st, 4));
		db_bind_int64(q, 2, b.ts_ms);
		return db_each(q, sa_item_row, &w, p->e);
	}
	for (size_t i = 0; rc == 0 && i < b.n_items; i++)
		rc = sa_rows_push(p->r, b.items[i].gtin, &b);
	return rc;
}

static int sa_key_cmp(const void *a, const void *b)
{
	const struct sa_key *x = a, *y = b;

	for (int k = 0; k < 3; k++)
		if (x->rank[k] != y->rank[k])
			return x->rank[k] < y->rank[k] ? -1 : 1;
	return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/*
 * The distinct values of one column of a batch's rows, each ranked in
 * strcmp order, so that the rows sort on integers in the same order as
 * on their strings: comparing strings was half of a fold's time.
 */
struct sa_names {
	const char **v; /* distinct values, first seen first */
	uint32_t *slot; /* open addressing: 1 + index into v; 0 free */
	uint32_t *rank; /* by index into v */
	size_t n, cap;	/* cap: slots, a power of two */
};

static int sa_names_init(struct sa_names *nm, size_t rows)
{
	nm->cap = 16;
	while (nm->cap < 2 * rows)
		nm->cap *= 2;
	nm->n = 0;
	nm->v = malloc(rows * sizeof *nm->v);
	nm->slot = calloc(nm->cap, sizeof *nm->slot);
	nm->rank = NULL;
	return nm->v && nm->slot ? 0 : POS_ENOMEM;
}

static void sa_names_free(struct sa_names *nm)
{
	free(nm->v);
	free(nm->slot);
	free(nm->rank);
}

/* The index of value x (borrowed: it must outlive nm) among nm's. */
static uint32_t sa_name_id(struct sa_names *nm, const char *x)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	size_t i;

	for (const char *p = x; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	for (i = h & (nm->cap - 1); nm->slot[i]; i = (i + 1) & (nm->cap - 1))
		if (strcmp(nm->v[nm->slot[i] - 1], x) == 0)
			return nm->slot[i] - 1;
	nm->v[nm->n] = x;
	nm->slot[i] = (uint32_t)++nm->n;
	return (uint32_t)(nm->n - 1);
}

static int sa_str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Ranks nm's values in strcmp order (nm->rank). */
static int sa_names_rank(struct sa_names *nm)
{
	const char **by = malloc(nm->n * sizeof *by + 1);
	struct sa_names tmp = *nm;
	int rc = 0;

	if (!by || !(nm->rank = malloc(nm->n * sizeof *nm->rank + 1))) {
		rc = POS_ENOMEM;
		goto out;
	}
	memcpy(by, nm->v, nm->n * sizeof *by);
	qsort(by, nm->n, sizeof *by, sa_str_cmp);
	/* The sorted values find their index again by the table. */
	for (size_t k = 0; k < nm->n; k++)
		nm->rank[sa_name_id(&tmp, by[k])] = (uint32_t)k;
out:
	free(by);
	return rc;
}

/* The rows' keys (key[i] is row i's). */
static int sa_rows_keys(const struct sa_rows *r, struct sa_key *key)
{
	struct sa_names nm[3];
	int rc = 0, k;

	for (k = 0; k < 3; k++)
		if (sa_names_init(&nm[k], r->n) < 0)
			rc = POS_ENOMEM;
	for (size_t i = 0; rc == 0 && i < r->n; i++) {
		key[i].rank[0] = sa_name_id(&nm[0], r->v[i].gtin);
		key[i].rank[1] = sa_name_id(&nm[1], r->v[i].hhid);
		key[i].rank[2] = sa_name_id(&nm[2], r->v[i].store);
		key[i].row = (uint32_t)i;
		key[i].ts = r->v[i].ts;
	}
	for (k = 0; rc == 0 && k < 3; k++)
		rc = sa_names_rank(&nm[k]);
	for (size_t i = 0; rc == 0 && i < r->n; i++)
		for (k = 0; k < 3; k++)
			key[i].rank[k] = nm[k].rank[key[i].rank[k]];
	for (k = 0; k < 3; k++)
		sa_names_free(&nm[k]);
	return rc;
}

/*
 * PostgreSQL: the cells go SA_PG_CELLS at a time, as arrays (one read of
 * their stored days, one upsert), not two statements a cell: each
 * statement is a round trip, and a fold of 2,000 baskets has ~40,000 item
 * cells, which would hold the writer (and every basket behind it) for
 * seconds.
 */
#define SA_PG_CELLS 1000

static const char SQL_ITEMS_GET_PG[] =
	"SELECT k.n, a.days FROM unnest(?1::text[], ?2::text[], ?3::bigint[], ?4::text[]) "
	"WITH ORDINALITY AS k(gtin, hhid, blk, store, n) JOIN analyst_items a ON a.gtin = k.gtin "
	"AND a.hhid = k.hhid AND a.blk = k.blk AND a.store = k.store";
static const char SQL_ITEMS_PUT_PG[] =
	"INSERT INTO analyst_items(gtin, hhid, blk, store, days) "
	"SELECT * FROM unnest(?1::text[], ?2::text[], ?3::bigint[], ?4::text[], ?5::bytea[]) "
	"ON CONFLICT (gtin, hhid, blk, store) DO UPDATE SET days = excluded.days";
static const char SQL_VISITS_GET_PG[] =
	"SELECT k.n, a.days FROM unnest(?1::text[], ?2::bigint[], ?3::text[]) "
	"WITH ORDINALITY AS k(hhid, blk, store, n) JOIN analyst_visits a ON a.hhid = k.hhid "
	"AND a.blk = k.blk AND a.store = k.store";
static const char SQL_VISITS_PUT_PG[] =
	"INSERT INTO analyst_visits(hhid, blk, store, days) "
	"SELECT * FROM unnest(?1::text[], ?2::bigint[], ?3::text[], ?4::bytea[]) "
	"ON CONFLICT (hhid, blk, store) DO UPDATE SET days = excluded.days";

/* An array literal being built ("{...}"). */
struct sa_arr {
	char *p;
	size_t n, cap;
	bool oom;
};

static void sa_arr_room(struct sa_arr *a, size_t more)
{
	size_t cap = a->cap ? a->cap : 4096;
	char *p;

	if (a->oom || a->n + more <= a->cap)
		return;
	while (cap < a->n + more)
		cap *= 2;
	if (!(p = realloc(a->p, cap))) {
		a->oom = true;
		return;
	}
	a->p = p;
	a->cap = cap;
}

/* The next element's separator ('{' first). */
static void sa_arr_sep(struct sa_arr *a)
{
	sa_arr_room(a, 1);
	if (!a->oom) {
		char c = a->n ? ',' : '{';
		a->p[a->n++] = c;
	}
}

static void sa_arr_text(struct sa_arr *a, const char *v)
{
	sa_arr_sep(a);
	sa_arr_room(a, 2 * strlen(v) + 2);
	if (a->oom)
		return;
	a->p[a->n++] = '"';
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			a->p[a->n++] = '\\';
		a->p[a->n++] = *v;
	}
	a->p[a->n++] = '"';
}

static void sa_arr_int(struct sa_arr *a, int64_t v)
{
	sa_arr_sep(a);
	sa_arr_room(a, 24);
	if (!a->oom)
		a->n += (size_t)snprintf(a->p + a->n, 24, "%lld", (long long)v);
}

/* A bytea element: "\\x" and hex (the array's quoting doubles the
 * backslash). */
static void sa_arr_bytes(struct sa_arr *a, const unsigned char *v, size_t n)
{
	static const char hx[] = "0123456789abcdef";

	sa_arr_sep(a);
	sa_arr_room(a, 2 * n + 6);
	if (a->oom)
		return;
	memcpy(a->p + a->n, "\"\\\\x", 4);
	a->n += 4;
	for (size_t i = 0; i < n; i++) {
		a->p[a->n++] = hx[v[i] >> 4];
		a->p[a->n++] = hx[v[i] & 15];
	}
	a->p[a->n++] = '"';
}

/* Ends the array ("{}" when empty); false when out of memory. */
static bool sa_arr_end(struct sa_arr *a)
{
	sa_arr_room(a, 2);
	if (a->oom)
		return false;
	if (!a->n)
		a->p[a->n++] = '{';
	a->p[a->n++] = '}';
	return true;
}

struct sa_or {
	struct sa_cell *v; /* the chunk's first cell */
	size_t n;
};

/* A stored row's days, ORed into its cell (k.n counts from 1). */
static int sa_or_row(struct db_stmt *st, void *arg)
{
	struct sa_or *o = arg;
	int64_t k = db_col_int64(st, 0);
	size_t n = 0;
	const unsigned char *p = db_col_blob(st, 1, &n);

	if (k < 1 || (size_t)k > o->n)
		return 0;
	for (size_t i = 0; p && i < n && i < SA_MASK; i++)
		o->v[k - 1].days[i] |= p[i];
	return 0;
}

/* sa_cells_put on PostgreSQL: cells [0, n) ORed into their rows, a chunk
 * at a time. The cells' days are changed (the caller's build). */
static int sa_cells_put_pg(struct store *s, struct sa_cells *c, bool items, pos_err *e)
{
	struct sa_arr a[5] = { 0 };
	int rc = 0;

	for (size_t i = 0; i < c->n && rc >= 0; i += SA_PG_CELLS) {
		size_t m = c->n - i < SA_PG_CELLS ? c->n - i : SA_PG_CELLS;
		struct sa_or o = { c->v + i, m };
		struct db_stmt *st;
		int na = items ? 4 : 3, k;

		for (k = 0; k < 5; k++)
			a[k].n = 0;
		for (size_t j = i; j < i + m; j++) {
			k = 0;
			if (items)
				sa_arr_text(&a[k++], c->v[j].gtin);
			sa_arr_text(&a[k++], c->v[j].hhid);
			sa_arr_int(&a[k++], c->v[j].blk);
			sa_arr_text(&a[k++], c->v[j].store);
		}
		for (k = 0; k < na; k++)
			if (!sa_arr_end(&a[k]))
				rc = err_set(e, POS_ENOMEM, "analyst fold: out of memory");
		if (rc < 0)
			break;
		if (!(st = store_q(s, items ? SQL_ITEMS_GET_PG : SQL_VISITS_GET_PG, e))) {
			rc = e->code ? e->code : POS_EDB;
			break;
		}
		for (k = 0; k < na; k++)
			db_bind_textn(st, k + 1, a[k].p, a[k].n);
		if ((rc = db_each(st, sa_or_row, &o, e)) < 0)
			break;
		a[na].n = 0;
		for (size_t j = i; j < i + m; j++)
			sa_arr_bytes(&a[na], c->v[j].days, SA_MASK);
		if (!sa_arr_end(&a[na])) {
			rc = err_set(e, POS_ENOMEM, "analyst fold: out of memory");
			break;
		}
		if (!(st = store_q(s, items ? SQL_ITEMS_PUT_PG : SQL_VISITS_PUT_PG, e))) {
			rc = e->code ? e->code : POS_EDB;
			break;
		}
		for (k = 0; k <= na; k++)
			db_bind_textn(st, k + 1, a[k].p, a[k].n);
		rc = db_run(st, e);
	}
	for (int k = 0; k < 5; k++)
		free(a[k].p);
	return rc;
}

/* ORs each cell into its stored row (items: with a GTIN, else visits). */
static int sa_cells_put(struct store *s, const struct sa_cells *c, bool items, pos_err *e)
{
	if (store_backend(s) == DB_POSTGRESQL)
		return sa_cells_put_pg(s, (struct sa_cells *)c, items, e);
	for (size_t i = 0; i < c->n; i++) {
		const struct sa_cell *x = &c->v[i];
		struct db_stmt *put = store_q(s, items ? SQL_ITEMS_PUT : SQL_VISITS_PUT, e);
		int rc, k = 1;

		if (!put)
			return e->code ? e->code : POS_EDB;
		if (items)
			db_bind_text(put, k++, x->gtin);
		db_bind_text(put, k++, x->hhid);
		db_bind_int64(put, k++, x->blk);
		db_bind_text(put, k++, x->store);
		db_bind_blob(put, k, x->days, sizeof x->days);
		if ((rc = db_run(put, e)) < 0)
			return rc;
	}
	return 0;
}

/*
 * analyst_households.items: entries of SA_ENTRY bytes sorted by GTIN, each
 * the GTIN's 14 digits as a big-endian 8-byte integer, then its SA_MASK
 * bytes of days in the row's block. One row per household, block and
 * store holds all it bought there, so what else a cohort bought reads a
 * row per household instead of one per household and item.
 */
#define SA_ENTRY (8 + SA_MASK)

static const char SQL_HH_GET[] =
	"SELECT items FROM analyst_households WHERE hhid = ?1 AND blk = ?2 AND store = ?3";
static const char SQL_HH_PUT[] =
	"INSERT INTO analyst_households(hhid, blk, store, items) VALUES (?1, ?2, ?3, ?4) "
	"ON CONFLICT (hhid, blk, store) DO UPDATE SET items = excluded.items";

static int64_t sa_gtin_num(const char *g)
{
	int64_t v = 0;

	for (; *g >= '0' && *g <= '9'; g++)
		v = v * 10 + (*g - '0');
	return v;
}

static void sa_put_be(unsigned char *p, int64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
}

static int64_t sa_get_be(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

static int sa_cell_hh_cmp(const void *x, const void *y)
{
	const struct sa_cell *a = *(const struct sa_cell *const *)x,
			     *b = *(const struct sa_cell *const *)y;
	int c = strcmp(a->hhid, b->hhid);

	if (c)
		return c;
	if (a->blk != b->blk)
		return a->blk < b->blk ? -1 : 1;
	if ((c = strcmp(a->store, b->store)))
		return c;
	return strcmp(a->gtin, b->gtin);
}

struct sa_blob {
	unsigned char *p;
	size_t n, cap;
};

static int sa_blob_row(struct db_stmt *st, void *arg)
{
	struct sa_blob *b = arg;
	size_t n = 0;
	const unsigned char *p = db_col_blob(st, 0, &n);

	n -= n % SA_ENTRY;
	if (!p || !n)
		return 0;
	if (!(b->p = malloc(n)))
		return POS_ENOMEM;
	memcpy(b->p, p, n);
	b->n = b->cap = n;
	return 0;
}

/* The row of cells c[0..n) (one household, block and store, sorted by
 * GTIN) merged into old's entries: *out (malloc'd) of *out_n bytes. */
static int sa_hh_merge(const struct sa_blob *old, struct sa_cell *const *c, size_t n,
		       unsigned char **out_p, size_t *out_n, pos_err *e)
{
	unsigned char *out;
	size_t i = 0, j = 0, k = 0;

	if (!(out = malloc(old->n + n * SA_ENTRY + 1)))
		return err_set(e, POS_ENOMEM, "analyst fold: out of memory");
	while (i < old->n / SA_ENTRY || j < n) {
		int64_t a = i < old->n / SA_ENTRY ? sa_get_be(old->p + i * SA_ENTRY) : INT64_MAX;
		int64_t b = j < n ? sa_gtin_num(c[j]->gtin) : INT64_MAX;
		unsigned char *o = out + k * SA_ENTRY;

		if (a <= b) {
			memcpy(o, old->p + i * SA_ENTRY, SA_ENTRY);
			i++;
		} else {
			sa_put_be(o, b);
			memset(o + 8, 0, SA_MASK);
		}
		if (a >= b) {
			for (int x = 0; x < SA_MASK; x++)
				o[8 + x] |= c[j]->days[x];
			j++;
		}
		k++;
	}
	*out_p = out;
	*out_n = k * SA_ENTRY;
	return 0;
}

/* Merges cells c[0..n) (one household, block and store, sorted by GTIN)
 * into its stored row. */
static int sa_hh_put(struct store *s, struct sa_cell *const *c, size_t n, pos_err *e)
{
	struct sa_blob old = { 0 };
	unsigned char *out = NULL;
	struct db_stmt *st;
	size_t out_n = 0;
	int rc;

	if (!(st = store_q(s, SQL_HH_GET, e)))
		return e->code ? e->code : POS_EDB;
	db_bind_text(st, 1, c[0]->hhid);
	db_bind_int64(st, 2, c[0]->blk);
	db_bind_text(st, 3, c[0]->store);
	if ((rc = db_each(st, sa_blob_row, &old, e)) < 0)
		goto out;
	if ((rc = sa_hh_merge(&old, c, n, &out, &out_n, e)) < 0)
		goto out;
	if (!(st = store_q(s, SQL_HH_PUT, e))) {
		rc = e->code ? e->code : POS_EDB;
		goto out;
	}
	db_bind_text(st, 1, c[0]->hhid);
	db_bind_int64(st, 2, c[0]->blk);
	db_bind_text(st, 3, c[0]->store);
	db_bind_blob(st, 4, out, out_n);
	rc = db_run(st, e);
out:
	free(old.p);
	free(out);
	return rc;
}

/* PostgreSQL: the households' rows SA_PG_CELLS at a time, as arrays (one
 * read, one upsert), like sa_cells_put_pg. */
static const char SQL_HH_GET_PG[] =
	"SELECT k.n, a.items FROM unnest(?1::text[], ?2::bigint[], ?3::text[]) "
	"WITH ORDINALITY AS k(hhid, blk, store, n) JOIN analyst_households a ON a.hhid = k.hhid "
	"AND a.blk = k.blk AND a.store = k.store";
static const char SQL_HH_PUT_PG[] =
	"INSERT INTO analyst_households(hhid, blk, store, items) "
	"SELECT * FROM unnest(?1::text[], ?2::bigint[], ?3::text[], ?4::bytea[]) "
	"ON CONFLICT (hhid, blk, store) DO UPDATE SET items = excluded.items";

/* One group of cells (a household, block and store) and its stored row. */
struct sa_group {
	struct sa_cell *const *c;
	size_t n;
	struct sa_blob old;
};

struct sa_groups {
	struct sa_group *g;
	size_t n;
};

static int sa_group_row(struct db_stmt *st, void *arg)
{
	struct sa_groups *gs = arg;
	int64_t k = db_col_int64(st, 0);
	struct sa_group *g;
	size_t n = 0;
	const unsigned char *p = db_col_blob(st, 1, &n);

	if (k < 1 || (size_t)k > gs->n)
		return 0;
	g = &gs->g[k - 1];
	n -= n % SA_ENTRY;
	if (!p || !n || g->old.p)
		return 0;
	if (!(g->old.p = malloc(n)))
		return POS_ENOMEM;
	memcpy(g->old.p, p, n);
	g->old.n = g->old.cap = n;
	return 0;
}

/* Groups gs (at most SA_PG_CELLS) merged into their rows. */
static int sa_hh_put_pg(struct store *s, struct sa_groups *gs, pos_err *e)
{
	struct sa_arr a[4] = { 0 };
	struct db_stmt *st;
	int rc = 0;

	for (size_t i = 0; i < gs->n; i++) {
		sa_arr_text(&a[0], gs->g[i].c[0]->hhid);
		sa_arr_int(&a[1], gs->g[i].c[0]->blk);
		sa_arr_text(&a[2], gs->g[i].c[0]->store);
	}
	for (int k = 0; k < 3; k++)
		if (!sa_arr_end(&a[k]))
			rc = err_set(e, POS_ENOMEM, "analyst fold: out of memory");
	if (rc < 0)
		goto out;
	if (!(st = store_q(s, SQL_HH_GET_PG, e))) {
		rc = e->code ? e->code : POS_EDB;
		goto out;
	}
	for (int k = 0; k < 3; k++)
		db_bind_textn(st, k + 1, a[k].p, a[k].n);
	if ((rc = db_each(st, sa_group_row, gs, e)) < 0) {
		if (rc == POS_ENOMEM)
			rc = err_set(e, POS_ENOMEM, "analyst fold: out of memory");
		goto out;
	}
	for (size_t i = 0; i < gs->n; i++) {
		unsigned char *m = NULL;
		size_t mn = 0;

		if ((rc = sa_hh_merge(&gs->g[i].old, gs->g[i].c, gs->g[i].n, &m, &mn, e)) < 0)
			goto out;
		sa_arr_bytes(&a[3], m, mn);
		free(m);
	}
	if (!sa_arr_end(&a[3])) {
		rc = err_set(e, POS_ENOMEM, "analyst fold: out of memory");
		goto out;
	}
	if (!(st = store_q(s, SQL_HH_PUT_PG, e))) {
		rc = e->code ? e->code : POS_EDB;
		goto out;
	}
	for (int k = 0; k < 4; k++)
		db_bind_textn(st, k + 1, a[k].p, a[k].n);
	rc = db_run(st, e);
out:
	for (int k = 0; k < 4; k++)
		free(a[k].p);
	for (size_t i = 0; i < gs->n; i++) {
		free(gs->g[i].old.p);
		gs->g[i].old = (struct sa_blob){ 0 };
	}
	return rc;
}

/* The item cells again, by household, block and store. */
static int sa_hh_put_all(struct store *s, const struct sa_cells *c, pos_err *e)
{
	struct sa_cell **v = c->n ? malloc(c->n * sizeof *v) : NULL;
	size_t i = 0;
	int rc = 0;

	if (c->n && !v)
		return err_set(e, POS_ENOMEM, "analyst fold: out of memory");
	for (size_t k = 0; k < c->n; k++)
		v[k] = &c->v[k];
	if (c->n)
		qsort(v, c->n, sizeof *v, sa_cell_hh_cmp);
	struct sa_groups gs = { 0 };
	bool pg = store_backend(s) == DB_POSTGRESQL;

	if (pg && c->n && !(gs.g = calloc(SA_PG_CELLS, sizeof *gs.g))) {
		free(v);
		return err_set(e, POS_ENOMEM, "analyst fold: out of memory");
	}
	while (i < c->n && rc >= 0) {
		size_t j = i + 1;

		while (j < c->n && v[j]->blk == v[i]->blk && strcmp(v[j]->hhid, v[i]->hhid) == 0 &&
		       strcmp(v[j]->store, v[i]->store) == 0)
			j++;
		if (!pg) {
			rc = sa_hh_put(s, v + i, j - i, e);
		} else {
			gs.g[gs.n++] = (struct sa_group){ .c = v + i, .n = j - i };
			if (gs.n == SA_PG_CELLS || j == c->n) {
				rc = sa_hh_put_pg(s, &gs, e);
				gs.n = 0;
			}
		}
		i = j;
	}
	free(gs.g);
	free(v);
	return rc;
}

/* Rows r sorted by key and added to c as cells. */
static int sa_rows_add(const struct sa_rows *r, struct sa_cells *c)
{
	struct sa_key *key = r->n ? malloc(r->n * sizeof *key) : NULL;
	int rc = 0;

	if (r->n && (!key || sa_rows_keys(r, key) < 0)) {
		free(key);
		return POS_ENOMEM;
	}
	if (r->n)
		qsort(key, r->n, sizeof *key, sa_key_cmp);
	for (size_t i = 0; i < r->n && rc == 0; i++) {
		const struct sa_row *x = &r->v[key[i].row];

		rc = sa_cell_add(c, x->gtin, x->hhid, x->store, x->ts);
	}
	free(key);
	return rc;
}

/* The cells of baskets (lo, hi]: their rows read, sorted by key, added. */
static int sa_fold_read(struct store *s, const char *sql, int64_t lo, int64_t hi,
			struct sa_cells *c, pos_err *e)
{
	struct db_stmt *st = store_q(s, sql, e);
	struct sa_rows r = { 0 };
	int rc;

	if (!st)
		return e->code ? e->code : POS_EDB;
	db_bind_int64(st, 1, lo);
	db_bind_int64(st, 2, hi);
	if ((rc = db_each(st, sa_row_take, &r, e)) == 0)
		rc = sa_rows_add(&r, c);
	if (rc == POS_ENOMEM)
		rc = err_set(e, POS_ENOMEM, "analyst fold: out of memory");
	free(r.v);
	return rc;
}

/*
 * A merge moves the baskets of one household to another (store_merge),
 * and the household merged away is removed. Its folded rows stay, but
 * every read joins households, so they count for nobody; the survivor's
 * baskets (its own and those moved) are folded again, which only sets
 * bits already set or moved. analyst_merges says which merges were.
 */
#define SA_MERGES_MAX 64 /* merges taken in per fold */

static const char SQL_MERGES_NEW[] =
	"SELECT m.from_hhid, m.into_hhid FROM merged m WHERE NOT EXISTS "
	"(SELECT 1 FROM analyst_merges a WHERE a.from_hhid = m.from_hhid) "
	"ORDER BY m.from_hhid LIMIT 64";
static const char SQL_MERGES_DONE[] =
	"INSERT INTO analyst_merges(from_hhid) VALUES (?1) ON CONFLICT (from_hhid) DO NOTHING";
static const char SQL_FOLD_HH_ITEMS[] =
	"SELECT i.gtin, b.hhid, b.store, b.ts FROM baskets b JOIN items i ON i.basket_id = b.id "
	"WHERE b.hhid = ?1 ORDER BY i.gtin, b.hhid, b.store, b.ts";
static const char SQL_FOLD_HH_ITEMS_PG[] =
	"SELECT i.gtin, b.hhid, b.store, b.ts FROM (SELECT id, hhid, store, ts FROM baskets "
	"WHERE hhid = ?1 OFFSET 0) b " SA_ITEMS_OF_B_PG "ORDER BY i.gtin, b.hhid, b.store, b.ts";
static const char SQL_FOLD_HH_VISITS[] =
	"SELECT '', b.hhid, b.store, b.ts FROM baskets b WHERE b.hhid = ?1 "
	"ORDER BY b.hhid, b.store, b.ts";

struct sa_merges {
	char from[SA_MERGES_MAX][SA_HHID_MAX], into[SA_MERGES_MAX][SA_HHID_MAX];
	int n;
};

static int sa_merge_row(struct db_stmt *st, void *arg)
{
	struct sa_merges *m = arg;

	if (m->n >= SA_MERGES_MAX)
		return 0;
	db_col_copy(st, 0, m->from[m->n], SA_HHID_MAX);
	db_col_copy(st, 1, m->into[m->n], SA_HHID_MAX);
	m->n++;
	return 0;
}

static int sa_fold_hh(struct store *s, const char *hhid, pos_err *e)
{
	struct sa_cells items = { 0 }, visits = { 0 };
	struct db_stmt *st;
	int rc;

	if (!(st = store_q(s, store_sql(s, SQL_FOLD_HH_ITEMS, SQL_FOLD_HH_ITEMS_PG), e)))
		return e->code ? e->code : POS_EDB;
	db_bind_text(st, 1, hhid);
	if ((rc = db_each(st, sa_cell_row, &items, e)) < 0)
		goto out;
	if (!(st = store_q(s, SQL_FOLD_HH_VISITS, e))) {
		rc = e->code ? e->code : POS_EDB;
		goto out;
	}
	db_bind_text(st, 1, hhid);
	if ((rc = db_each(st, sa_cell_row, &visits, e)) < 0 ||
	    (rc = sa_cells_put(s, &items, true, e)) < 0 || (rc = sa_hh_put_all(s, &items, e)) < 0 ||
	    (rc = sa_cells_put(s, &visits, false, e)) < 0)
		goto out;
out:
	if (rc == POS_ENOMEM)
		rc = err_set(e, POS_ENOMEM, "analyst fold: out of memory");
	free(items.v);
	free(visits.v);
	return rc;
}

/* Folds the survivors of merges not taken in yet. *n: how many. */
static int sa_fold_merges(struct store *s, int *n, pos_err *e)
{
	struct sa_merges *m = calloc(1, sizeof *m);
	struct db_stmt *st;
	int rc;

	*n = 0;
	if (!m)
		return err_set(e, POS_ENOMEM, "analyst fold: out of memory");
	if (!(st = store_q(s, SQL_MERGES_NEW, e))) {
		rc = e->code ? e->code : POS_EDB;
		goto out;
	}
	if ((rc = db_each(st, sa_merge_row, m, e)) < 0)
		goto out;
	for (int i = 0; i < m->n; i++) {
		if ((rc = sa_fold_hh(s, m->into[i], e)) < 0)
			goto out;
		if (!(st = store_q(s, SQL_MERGES_DONE, e))) {
			rc = e->code ? e->code : POS_EDB;
			goto out;
		}
		db_bind_text(st, 1, m->from[i]);
		if ((rc = db_run(st, e)) < 0)
			goto out;
	}
	*n = m->n;
out:
	free(m);
	return rc;
}

/* The ids taken from analyst_pending, as a PostgreSQL array literal. */
struct sa_ids {
	char *txt;
	size_t len, cap;
	long n;
	int64_t top;
};

static int sa_id_row(struct db_stmt *st, void *arg)
{
	struct sa_ids *x = arg;
	int64_t id = db_col_int64(st, 0);
	int w;

	if (x->cap - x->len < 24) {
		size_t nc = x->cap ? x->cap * 2 : 4096;
		char *t = realloc(x->txt, nc);

		if (!t)
			return POS_ENOMEM;
		x->txt = t;
		x->cap = nc;
	}
	w = snprintf(x->txt + x->len, x->cap - x->len, "%s%lld", x->n ? "," : "{",
		     (long long)id);
	x->len += (size_t)w;
	x->n++;
	if (id > x->top)
		x->top = id;
	return 0;
}

static int sa_fold_read_ids(struct store *s, const char *sql, const char *ids,
			    struct sa_cells *c, pos_err *e)
{
	struct db_stmt *st = store_q(s, sql, e);
	int rc;

	if (!st)
		return e->code ? e->code : POS_EDB;
	db_bind_text(st, 1, ids);
	rc = db_each(st, sa_cell_row, c, e);
	if (rc == POS_ENOMEM)
		rc = err_set(e, POS_ENOMEM, "analyst fold: out of memory");
	return rc;
}

/* PostgreSQL: the item cells of the baskets ids names. */
static int sa_fold_packed(struct store *s, const char *ids, struct sa_cells *c, pos_err *e)
{
	struct db_stmt *st = store_q(s, SQL_FOLD_ITEMS_PG, e);
	struct sa_rows r = { 0 };
	struct sa_packed p = { s, &r, e };
	int rc;

	if (!st)
		return e->code ? e->code : POS_EDB;
	db_bind_text(st, 1, ids);
	if ((rc = db_each(st, sa_packed_take, &p, e)) == 0)
		rc = sa_rows_add(&r, c);
	if (rc == POS_ENOMEM)
		rc = err_set(e, POS_ENOMEM, "analyst fold: out of memory");
	free(r.v);
	return rc;
}

/* PostgreSQL: folds at most max baskets taken from analyst_pending, inside
 * the caller's unit, which holds the fold's lock. */
static int sa_fold_pending(struct store *s, long max, int64_t now_ms, long *folded, bool *more,
			   pos_err *e)
{
	struct sa_cells items = { 0 }, visits = { 0 };
	struct sa_ids ids = { 0 };
	struct db_stmt *st;
	int rc;

	if (!(st = store_q(s, SQL_FOLD_TAKE_PG, e)))
		return e->code ? e->code : POS_EDB;
	db_bind_int64(st, 1, max);
	if ((rc = db_each(st, sa_id_row, &ids, e)) < 0) {
		if (rc == POS_ENOMEM)
			rc = err_set(e, POS_ENOMEM, "analyst fold: out of memory");
		goto out;
	}
	if (ids.n == 0)
		goto out;
	ids.txt[ids.len] = '}';
	ids.txt[ids.len + 1] = '\0';
	if ((rc = sa_fold_packed(s, ids.txt, &items, e)) < 0 ||
	    (rc = sa_fold_read_ids(s, SQL_FOLD_VISITS_PG, ids.txt, &visits, e)) < 0 ||
	    (rc = sa_cells_put(s, &items, true, e)) < 0 ||
	    (rc = sa_hh_put_all(s, &items, e)) < 0 ||
	    (rc = sa_cells_put(s, &visits, false, e)) < 0)
		goto out;
	if (!(st = store_q(s, SQL_FOLD_SET, e))) {
		rc = e->code ? e->code : POS_EDB;
		goto out;
	}
	db_bind_int64(st, 1, ids.top);
	db_bind_int64(st, 2, now_ms);
	if ((rc = db_run(st, e)) < 0)
		goto out;
	*folded = ids.n;
	*more = *more || ids.n >= max;
out:
	free(ids.txt);
	free(items.v);
	free(visits.v);
	return rc;
}

int store_analyst_fold(struct store *s, long max, int64_t now_ms, long *folded, bool *more,
		       pos_err *e)
{
	struct sa_cells items = { 0 }, visits = { 0 };
	struct db_stmt *st;
	int64_t mark = 0, top = 0, hi;
	int rc, merges = 0;

	*folded = 0;
	*more = false;
	if (max < 1)
		return err_set(e, POS_EINVAL, "analyst fold: the batch must be at least 1 basket");
	if ((rc = store_unit_begin(s, e)) < 0)
		return rc;
	st = NULL;
	if (store_backend(s) == DB_POSTGRESQL &&
	    (!(st = store_q(s, SQL_FOLD_LOCK_PG, e)) ||
	     (rc = db_each(st, sa_one_int, &mark, e)) < 0))
		goto out;
	if ((rc = sa_fold_merges(s, &merges, e)) < 0)
		goto out;
	*more = merges >= SA_MERGES_MAX;
	if (store_backend(s) == DB_POSTGRESQL) {
		rc = sa_fold_pending(s, max, now_ms, folded, more, e);
		goto out;
	}
	if (!(st = store_q(s, SQL_FOLD_MARK, e)) || (rc = db_each(st, sa_one_int, &mark, e)) < 0 ||
	    !(st = store_q(s, SQL_FOLD_TOP, e)) || (rc = db_each(st, sa_one_int, &top, e)) < 0)
		goto out;
	hi = mark + max < top ? mark + max : top;
	if (hi <= mark)
		goto out;
	if ((rc = sa_fold_read(s, SQL_FOLD_ITEMS, mark, hi, &items, e)) < 0 ||
	    (rc = sa_fold_read(s, SQL_FOLD_VISITS, mark, hi, &visits, e)) < 0 ||
	    (rc = sa_cells_put(s, &items, true, e)) < 0 ||
	    (rc = sa_hh_put_all(s, &items, e)) < 0 ||
	    (rc = sa_cells_put(s, &visits, false, e)) < 0)
		goto out;
	if (!(st = store_q(s, SQL_FOLD_SET, e)))
		goto out;
	db_bind_int64(st, 1, hi);
	db_bind_int64(st, 2, now_ms);
	if ((rc = db_run(st, e)) < 0)
		goto out;
	*folded = (long)(hi - mark);
	*more = *more || hi < top;
out:
	if (!st && rc >= 0)
		rc = e->code ? e->code : POS_EDB;
	free(items.v);
	free(visits.v);
	return store_unit_finish(s, rc, e);
}

/* The first (or last) day bit set in [lo, hi) of m, else -1. */
static int sa_bit_first(const unsigned char *m, int lo, int hi)
{
	for (int i = lo; i < hi;) {
		if ((i & 7) == 0 && i + 8 <= hi && !m[i >> 3]) {
			i += 8;
			continue;
		}
		if ((m[i >> 3] >> (i & 7)) & 1)
			return i;
		i++;
	}
	return -1;
}

static int sa_bit_last(const unsigned char *m, int lo, int hi)
{
	for (int i = hi - 1; i >= lo;) {
		if ((i & 7) == 7 && i - 7 >= lo && !m[i >> 3]) {
			i -= 8;
			continue;
		}
		if ((m[i >> 3] >> (i & 7)) & 1)
			return i;
		i--;
	}
	return -1;
}

/* The days of a row's block within the filter: [*lo, *hi) bit indices. */
static bool sa_span(const struct store_analyst_days *f, int64_t blk, int *lo, int *hi)
{
	int64_t base = blk * SA_BLK_DAYS, from = f->from_day, to = f->to_day ? f->to_day : SA_OPEN_DAY;

	*lo = from > base ? (int)(from - base < SA_BLK_DAYS ? from - base : SA_BLK_DAYS) : 0;
	*hi = to - base < SA_BLK_DAYS ? (to > base ? (int)(to - base) : 0) : SA_BLK_DAYS;
	return *lo < *hi;
}

static void sa_bind_days(struct db_stmt *st, int i, const struct store_analyst_days *f)
{
	int64_t to = f->to_day ? f->to_day : SA_OPEN_DAY;

	db_bind_int64(st, i, f->from_day / SA_BLK_DAYS);
	db_bind_int64(st, i + 1, (to - 1) / SA_BLK_DAYS);
	db_bind_opt_text(st, i + 2, f->store);
}

/* Each joins households: the rows of a household merged away count for
 * nobody (its survivor was folded again). */
static const char SQL_DAYS_COHORT[] =
	"SELECT a.hhid, a.blk, a.days FROM analyst_items a JOIN households h ON h.hhid = a.hhid "
	"WHERE a.gtin = ?1 AND a.blk >= ?2 AND a.blk <= ?3 "
	"AND (CAST(?4 AS TEXT) IS NULL OR a.store = ?4) ORDER BY a.hhid";
static const char SQL_DAYS_POP[] =
	"SELECT a.hhid, a.blk, a.days FROM analyst_visits a JOIN households h ON h.hhid = a.hhid "
	"WHERE a.blk >= ?1 AND a.blk <= ?2 AND (CAST(?3 AS TEXT) IS NULL OR a.store = ?3) "
	"ORDER BY a.hhid";
static const char SQL_DAYS_ALSO[] =
	"SELECT a.hhid, a.blk, a.items FROM analyst_households a "
	"JOIN households h ON h.hhid = a.hhid "
	"WHERE a.blk >= ?1 AND a.blk <= ?2 AND (CAST(?3 AS TEXT) IS NULL OR a.store = ?3) "
	"ORDER BY a.hhid";
static const char SQL_ITEM_NAME[] = "SELECT name FROM item_master WHERE gtin = ?1";

/* Households in key order, each with its first and last day within the
 * filter (-1 while none). */
struct sa_hh {
	const struct store_analyst_days *f;
	char cur[SA_HHID_MAX];
	int64_t first, last;
	int *a, *b;
	size_t n, cap;
};

static int sa_hh_flush(struct sa_hh *x)
{
	if (x->first < 0)
		return 0;
	if (x->n == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 256;
		int *na = realloc(x->a, nc * sizeof *na), *nb;

		if (na)
			x->a = na;
		nb = na ? realloc(x->b, nc * sizeof *nb) : NULL;
		if (nb)
			x->b = nb;
		if (!na || !nb)
			return POS_ENOMEM;
		x->cap = nc;
	}
	x->a[x->n] = (int)x->first;
	x->b[x->n] = (int)x->last;
	x->n++;
	x->first = x->last = -1;
	return 0;
}

/* Rows (hhid, blk, days) ordered by hhid. */
static int sa_hh_row(struct db_stmt *st, void *arg)
{
	struct sa_hh *x = arg;
	const char *h = db_col_text(st, 0);
	int64_t blk = db_col_int64(st, 1);
	size_t len = 0;
	const unsigned char *m = db_col_blob(st, 2, &len);
	int lo, hi, a, b;

	h = h ? h : "";
	if (strcmp(h, x->cur) != 0) {
		if (sa_hh_flush(x) < 0)
			return POS_ENOMEM;
		snprintf(x->cur, sizeof x->cur, "%s", h);
	}
	if (!m || len != SA_MASK || !sa_span(x->f, blk, &lo, &hi))
		return 0;
	if ((a = sa_bit_first(m, lo, hi)) < 0)
		return 0;
	b = sa_bit_last(m, lo, hi);
	if (x->first < 0 || blk * SA_BLK_DAYS + a < x->first)
		x->first = blk * SA_BLK_DAYS + a;
	if (blk * SA_BLK_DAYS + b > x->last)
		x->last = blk * SA_BLK_DAYS + b;
	return 0;
}

static int sa_hh_walk(struct store *s, const char *sql, const struct store_analyst_days *f,
		      struct sa_hh *x, pos_err *e)
{
	struct db_stmt *st = store_q(s, sql, e);
	int rc, i = 1;

	x->f = f;
	x->first = x->last = -1;
	if (!st)
		return e->code ? e->code : POS_EDB;
	if (sql == SQL_DAYS_COHORT)
		db_bind_text(st, i++, f->gtin ? f->gtin : "");
	sa_bind_days(st, i, f);
	if ((rc = db_each(st, sa_hh_row, x, e)) >= 0)
		rc = sa_hh_flush(x);
	if (rc == POS_ENOMEM)
		rc = err_set(e, POS_ENOMEM, "cohort: out of memory");
	return rc;
}

int store_analyst_days_cohort(struct store *s, const struct store_analyst_days *f, int **first,
			      int **last, size_t *n, pos_err *e)
{
	struct sa_hh x = { 0 };
	int rc = sa_hh_walk(s, SQL_DAYS_COHORT, f, &x, e);

	*first = *last = NULL;
	*n = 0;
	if (rc < 0) {
		free(x.a);
		free(x.b);
		return rc;
	}
	*first = x.a;
	*last = x.b;
	*n = x.n;
	return 0;
}

int store_analyst_days_population(struct store *s, const struct store_analyst_days *f, long *n,
				  pos_err *e)
{
	struct sa_hh x = { 0 };
	int rc = sa_hh_walk(s, SQL_DAYS_POP, f, &x, e);

	*n = rc < 0 ? 0 : (long)x.n;
	free(x.a);
	free(x.b);
	return rc < 0 ? rc : 0;
}

/* Per other item: its households in the filter, and those of the cohort. */
struct sa_also_gtin {
	char gtin[SA_GTIN_MAX];
	int64_t num;
	long cohort, population;
};

/* The walk over analyst_households, a household at a time: the GTINs it
 * bought within the filter (scratch), whether the cohort's is one, and
 * per GTIN its counts (an open-addressing map from GTIN to v). */
struct sa_also {
	const struct store_analyst_days *f;
	int64_t want; /* the cohort's GTIN */
	char hhid[SA_HHID_MAX];
	int64_t *got;
	size_t ngot, capgot, rows; /* rows: of this household */
	bool member;
	struct sa_also_gtin *v;
	size_t n, cap;
	int32_t *map; /* index + 1 into v; 0 free */
	size_t mapcap;
};

static int sa_also_slot(struct sa_also *x, int64_t num)
{
	size_t i;

	if ((x->n + 1) * 2 > x->mapcap) {
		size_t nc = x->mapcap ? x->mapcap * 2 : 1024;
		int32_t *nm = calloc(nc, sizeof *nm);

		if (!nm)
			return -1;
		for (size_t k = 0; k < x->n; k++) {
			i = ((uint64_t)x->v[k].num * 0x9E3779B97F4A7C15ull) & (nc - 1);
			while (nm[i])
				i = (i + 1) & (nc - 1);
			nm[i] = (int32_t)k + 1;
		}
		free(x->map);
		x->map = nm;
		x->mapcap = nc;
	}
	i = ((uint64_t)num * 0x9E3779B97F4A7C15ull) & (x->mapcap - 1);
	while (x->map[i] && x->v[x->map[i] - 1].num != num)
		i = (i + 1) & (x->mapcap - 1);
	if (x->map[i])
		return x->map[i] - 1;
	if (x->n == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 256;
		struct sa_also_gtin *nv = realloc(x->v, nc * sizeof *nv);

		if (!nv)
			return -1;
		x->v = nv;
		x->cap = nc;
	}
	memset(&x->v[x->n], 0, sizeof x->v[x->n]);
	x->v[x->n].num = num;
	snprintf(x->v[x->n].gtin, sizeof x->v[x->n].gtin, "%014lld", (long long)num);
	x->map[i] = (int32_t)x->n + 1;
	return (int)x->n++;
}

static int sa_num_cmp(const void *p, const void *q)
{
	int64_t a = *(const int64_t *)p, b = *(const int64_t *)q;

	return (a > b) - (a < b);
}

/* Counts the household just walked. */
static int sa_also_flush(struct sa_also *x)
{
	/* One row's GTINs come sorted and distinct; several rows' need sorting. */
	if (x->rows > 1)
		qsort(x->got, x->ngot, sizeof *x->got, sa_num_cmp);
	for (size_t i = 0; i < x->ngot; i++) {
		int k;

		if ((i && x->got[i] == x->got[i - 1]) || x->got[i] == x->want)
			continue;
		if ((k = sa_also_slot(x, x->got[i])) < 0)
			return POS_ENOMEM;
		x->v[k].population++;
		if (x->member)
			x->v[k].cohort++;
	}
	x->ngot = 0;
	x->rows = 0;
	x->member = false;
	return 0;
}

/* Rows (hhid, blk, items) ordered by hhid. */
static int sa_also_row(struct db_stmt *st, void *arg)
{
	struct sa_also *x = arg;
	const char *h = db_col_text(st, 0);
	int64_t blk = db_col_int64(st, 1);
	size_t len = 0;
	const unsigned char *p = db_col_blob(st, 2, &len);
	int lo, hi;

	h = h ? h : "";
	if (strcmp(h, x->hhid) != 0) {
		if (sa_also_flush(x) < 0)
			return POS_ENOMEM;
		snprintf(x->hhid, sizeof x->hhid, "%s", h);
	}
	if (!p || !sa_span(x->f, blk, &lo, &hi))
		return 0;
	x->rows++;
	for (size_t off = 0; off + SA_ENTRY <= len; off += SA_ENTRY) {
		if (sa_bit_first(p + off + 8, lo, hi) < 0)
			continue;
		if (x->ngot == x->capgot) {
			size_t nc = x->capgot ? x->capgot * 2 : 256;
			int64_t *ng = realloc(x->got, nc * sizeof *ng);

			if (!ng)
				return POS_ENOMEM;
			x->got = ng;
			x->capgot = nc;
		}
		x->got[x->ngot] = sa_get_be(p + off);
		if (x->got[x->ngot] == x->want)
			x->member = true;
		x->ngot++;
	}
	return 0;
}

static int sa_also_cmp(const void *p, const void *q)
{
	const struct sa_also_gtin *a = p, *b = q;

	if (a->cohort != b->cohort)
		return a->cohort > b->cohort ? -1 : 1;
	return strcmp(a->gtin, b->gtin);
}

static int sa_name_row(struct db_stmt *st, void *arg)
{
	db_col_copy(st, 0, arg, 256);
	return 0;
}

int store_analyst_days_also(struct store *s, const struct store_analyst_days *f,
			    int (*cb)(const struct store_analyst_other *o, void *arg), void *arg,
			    pos_err *e)
{
	struct sa_also x = { .f = f, .want = f->gtin ? sa_gtin_num(f->gtin) : -1 };
	struct db_stmt *st;
	char name[256];
	int rc;

	if (!(st = store_q(s, SQL_DAYS_ALSO, e))) {
		rc = e->code ? e->code : POS_EDB;
		goto out;
	}
	sa_bind_days(st, 1, f);
	if ((rc = db_each(st, sa_also_row, &x, e)) >= 0)
		rc = sa_also_flush(&x);
	if (rc < 0) {
		if (rc == POS_ENOMEM)
			rc = err_set(e, POS_ENOMEM, "cohort: out of memory");
		goto out;
	}
	if (x.n)
		qsort(x.v, x.n, sizeof *x.v, sa_also_cmp);
	for (size_t i = 0; i < x.n && x.v[i].cohort > 0; i++) {
		struct store_analyst_other o = {
			.gtin = x.v[i].gtin,
			.name = name,
			.cohort = x.v[i].cohort,
			.population = x.v[i].population,
		};
		int crc;

		name[0] = '\0';
		if (!(st = store_q(s, SQL_ITEM_NAME, e))) {
			rc = e->code ? e->code : POS_EDB;
			goto out;
		}
		db_bind_text(st, 1, x.v[i].gtin);
		if ((rc = db_each(st, sa_name_row, name, e)) < 0)
			goto out;
		if ((crc = cb(&o, arg)) < 0) {
			rc = err_set(e, crc, "cohort: out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	free(x.got);
	free(x.v);
	free(x.map);
	return rc;
}

static const char SQL_OFFER_MOVES[] =
	"SELECT o.title, r.hhid, r.code, "
	"  coalesce(sum(CASE WHEN b.ts < r.ts THEN i.price_cents ELSE 0 END), 0), "
	"  coalesce(sum(CASE WHEN b.ts >= r.ts THEN i.price_cents ELSE 0 END), 0) "
	"FROM offer_redemptions r JOIN offer_codes c ON c.code = r.code "
	"JOIN offers o ON o.id = c.offer_id "
	"LEFT JOIN baskets b ON b.hhid = r.hhid AND b.ts >= r.ts - ?2 AND b.ts < r.ts + ?2 "
	"LEFT JOIN items i ON i.basket_id = b.id "
	"WHERE c.offer_id = ?1 AND r.hhid IS NOT NULL "
	"GROUP BY o.title, r.hhid, r.code, r.ts ORDER BY r.hhid";
/* PostgreSQL: each redemption's baskets in the window by the (hhid, ts)
 * index, their items from their own month, each a LATERAL probe
 * (SA_ITEMS_OF_B_PG says why): as a plain join the planner hashed a scan
 * of every basket and probed every month's items per basket (4.3 s for
 * 5,000 redemptions at 2M item rows). */
static const char SQL_OFFER_MOVES_PG[] =
	"SELECT o.title, r.hhid, r.code, "
	"  coalesce(sum(CASE WHEN b.ts < r.ts THEN i.price_cents ELSE 0 END), 0), "
	"  coalesce(sum(CASE WHEN b.ts >= r.ts THEN i.price_cents ELSE 0 END), 0) "
	"FROM offer_redemptions r JOIN offer_codes c ON c.code = r.code "
	"JOIN offers o ON o.id = c.offer_id "
	"LEFT JOIN LATERAL (SELECT id, ts FROM baskets WHERE hhid = r.hhid "
	"AND ts >= r.ts - ?2 AND ts < r.ts + ?2 OFFSET 0) b ON true "
	"LEFT JOIN " STORE_SQL_ITEMS_OF_PG("price_cents", "b") "ON true "
	"WHERE c.offer_id = ?1 AND r.hhid IS NOT NULL "
	"GROUP BY o.title, r.hhid, r.code, r.ts ORDER BY r.hhid";
static const char SQL_OFFER_TITLE[] = "SELECT title FROM offers WHERE id = ?1";

static int sa_move_row(struct db_stmt *st, void *arg)
{
	struct store_analyst_move *m = arg;
	const char *h = db_col_text(st, 1);

	db_col_copy(st, 0, m->title, sizeof m->title);
	/* Rows come by household: a household that redeemed twice counts once. */
	if (h && strcmp(h, m->last_hhid) != 0) {
		m->households++;
		snprintf(m->last_hhid, sizeof m->last_hhid, "%s", h);
	}
	m->redemptions++;
	m->before_cents += db_col_int64(st, 3);
	m->after_cents += db_col_int64(st, 4);
	return 0;
}

int store_analyst_offer_moves(struct store *s, const char *offer_id, int64_t window_ms,
			      struct store_analyst_move *out, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	memset(out, 0, sizeof *out);
	if (!(st = store_q(s, SQL_OFFER_TITLE, e)))
		return e->code ? e->code : POS_EDB;
	db_bind_text(st, 1, offer_id);
	out->title[0] = '\1';
	if ((rc = db_each(st, sa_name_row, out->title, e)) < 0)
		return rc;
	if (out->title[0] == '\1')
		return err_set(e, POS_ENOTFOUND, "no offer has this id");
	if (!(st = store_q(s, store_sql(s, SQL_OFFER_MOVES, SQL_OFFER_MOVES_PG), e)))
		return e->code ? e->code : POS_EDB;
	db_bind_text(st, 1, offer_id);
	db_bind_int64(st, 2, window_ms);
	return db_each(st, sa_move_row, out, e);
}

static const char SQL_LINES_PAGE[] =
	"SELECT b.ts, b.id, b.txn, b.store, i.gtin, coalesce(m.name, ''), "
	"coalesce(m.category, ''), i.qty, i.price_cents FROM baskets b "
	"JOIN items i ON i.basket_id = b.id LEFT JOIN item_master m ON m.gtin = i.gtin "
	"WHERE b.id IN (SELECT p.id FROM baskets p WHERE p.hhid = ?1 AND "
	"  (p.ts > ?2 OR (p.ts = ?2 AND p.id > ?3)) ORDER BY p.ts, p.id LIMIT ?4) "
	"ORDER BY b.ts, b.id, i.seq";
/* PostgreSQL: the page's baskets by the (hhid, ts) index, then their
 * items (SA_ITEMS_OF_B_PG): as an IN over the parent the planner sorted a
 * scan of every basket for each page (1.4 s at 2M item rows). */
static const char SQL_LINES_PAGE_PG[] =
	"SELECT b.ts, b.id, b.txn, b.store, i.gtin, coalesce(m.name, ''), "
	"coalesce(m.category, ''), i.qty, i.price_cents FROM (SELECT id, ts, txn, store "
	"FROM baskets WHERE hhid = ?1 AND (ts > ?2 OR (ts = ?2 AND id > ?3)) "
	"ORDER BY ts, id LIMIT ?4) b " SA_ITEMS_OF_B_PG
	"LEFT JOIN item_master m ON m.gtin = i.gtin ORDER BY b.ts, b.id, i.seq";

struct sa_page {
	int (*cb)(const struct store_analyst_line *l, void *arg);
	void *arg;
	struct store_analyst_pos *pos;
	long baskets;
	int crc;
};

static int sa_page_row(struct db_stmt *st, void *arg)
{
	struct sa_page *p = arg;
	struct store_analyst_line l = {
		.ts_ms = db_col_int64(st, 0),
		.txn = db_col_text(st, 2),
		.store = db_col_text(st, 3),
		.gtin = db_col_text(st, 4),
		.name = db_col_text(st, 5),
		.category = db_col_text(st, 6),
		.qty = (long)db_col_int64(st, 7),
		.price_cents = db_col_null(st, 8) ? -1 : (long)db_col_int64(st, 8),
	};
	int64_t id = db_col_int64(st, 1);

	l.txn = l.txn ? l.txn : "";
	l.store = l.store ? l.store : "";
	l.gtin = l.gtin ? l.gtin : "";
	l.name = l.name ? l.name : "";
	l.category = l.category ? l.category : "";
	if (id != p->pos->id || l.ts_ms != p->pos->ts_ms) {
		p->pos->ts_ms = l.ts_ms;
		p->pos->id = id;
		p->baskets++;
	}
	if ((p->crc = p->cb(&l, p->arg)) < 0)
		return p->crc;
	return 0;
}

int store_analyst_lines_page(struct store *s, const char *hhid, struct store_analyst_pos *pos,
			     long baskets, int (*cb)(const struct store_analyst_line *l, void *arg),
			     void *arg, pos_err *e)
{
	struct sa_page p = { .cb = cb, .arg = arg, .pos = pos };
	struct db_stmt *st = store_q(s, store_sql(s, SQL_LINES_PAGE, SQL_LINES_PAGE_PG), e);
	int rc;

	if (!st)
		return e->code ? e->code : POS_EDB;
	db_bind_text(st, 1, hhid);
	db_bind_int64(st, 2, pos->ts_ms);
	db_bind_int64(st, 3, pos->id);
	db_bind_int64(st, 4, baskets);
	rc = db_each(st, sa_page_row, &p, e);
	if (rc < 0 && p.crc < 0)
		return err_set(e, p.crc, "household lines: writing failed");
	if (rc < 0)
		return rc;
	return p.baskets >= baskets ? 1 : 0;
}
