#include "store.h"

#include <string.h>

#include "store_impl.h"
#include "timeutil.h"

/*
 * Baskets and their items: the group-committed put (the ingest hot path:
 * every statement prepared once, items bound ten rows a statement, no
 * allocation per row), histories, the audit log and the running counters.
 */

#define STORE_ACTOR_MAX 128
#define STORE_ACTION_MAX 64
#define STORE_DETAIL_MAX 1024

/*
 * Where the backends' schemas differ (store_schema_pg.c): PostgreSQL
 * partitions baskets and items by month, so the one-basket-per-txn key
 * lives in basket_txns (its insert hands out the basket id), items carry
 * their basket's ts (its partition), and a month's partitions are made
 * before its first basket on a connection.
 */
static const char SQL_B_GET_SQLITE[] = "SELECT id, digest FROM baskets WHERE txn = ?1";
static const char SQL_B_GET_PG[] = "SELECT id, digest FROM basket_txns WHERE txn = ?1";
/* A txn already stored inserts nothing and is then looked up: one index
 * descent for a new basket, not two. SQLite buffers RETURNING rows in a
 * temporary table opened per run (measured: 9% more instructions per
 * basket of 20 items, 3% with a lookup of the id instead): there the new
 * row's id is the connection's last rowid (store_sqlite_last_id). */
static const char SQL_B_INS_SQLITE[] =
	"INSERT INTO baskets(txn, ts, store, terminal, hhid, deident, digest) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (txn) DO NOTHING";
/* Another node storing the same txn at once waits on this key, then
 * inserts nothing. */
static const char SQL_B_TXN_PG[] =
	"INSERT INTO basket_txns(txn, id, ts, digest) "
	"VALUES (?1, nextval('baskets_id_seq'), ?2, ?3) ON CONFLICT (txn) DO NOTHING RETURNING id";
static const char SQL_B_INS_PG[] =
	"INSERT INTO baskets(id, txn, ts, store, terminal, hhid, deident, digest) "
	"VALUES (?8, ?1, ?2, ?3, ?4, ?5, ?6, ?7)";
/* STORE_I_ROWS item rows a statement: one run, not ten. */
#define STORE_I_ROWS 10
static const char SQL_I_INS_SQLITE[] = "INSERT INTO items(basket_id, seq, gtin, qty, price_cents) "
				       "VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_I_INS_N_SQLITE[] =
	"INSERT INTO items(basket_id, seq, gtin, qty, price_cents) VALUES "
	"(?1, ?2, ?3, ?4, ?5), "
	"(?6, ?7, ?8, ?9, ?10), "
	"(?11, ?12, ?13, ?14, ?15), "
	"(?16, ?17, ?18, ?19, ?20), "
	"(?21, ?22, ?23, ?24, ?25), "
	"(?26, ?27, ?28, ?29, ?30), "
	"(?31, ?32, ?33, ?34, ?35), "
	"(?36, ?37, ?38, ?39, ?40), "
	"(?41, ?42, ?43, ?44, ?45), "
	"(?46, ?47, ?48, ?49, ?50)";
/* PostgreSQL: the fold's queue (store_analyst.c says why), written in the
 * basket's own transaction. */
static const char SQL_B_PENDING_PG[] = "INSERT INTO analyst_pending(basket_id) VALUES (?1)";
static const char SQL_I_INS_PG[] = "INSERT INTO items(basket_id, seq, gtin, qty, price_cents, ts) "
				   "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_I_INS_N_PG[] =
	"INSERT INTO items(basket_id, seq, gtin, qty, price_cents, ts) VALUES "
	"(?1, ?2, ?3, ?4, ?5, ?6), "
	"(?7, ?8, ?9, ?10, ?11, ?12), "
	"(?13, ?14, ?15, ?16, ?17, ?18), "
	"(?19, ?20, ?21, ?22, ?23, ?24), "
	"(?25, ?26, ?27, ?28, ?29, ?30), "
	"(?31, ?32, ?33, ?34, ?35, ?36), "
	"(?37, ?38, ?39, ?40, ?41, ?42), "
	"(?43, ?44, ?45, ?46, ?47, ?48), "
	"(?49, ?50, ?51, ?52, ?53, ?54), "
	"(?55, ?56, ?57, ?58, ?59, ?60)";
static const char SQL_ITEMS_ADD[] = "UPDATE counters SET items = items + ?1";
static const char SQL_RECEIPT_INS[] = "INSERT INTO receipts(hash, basket_id) VALUES (?1, ?2)";
static const char SQL_HIST[] =
	"SELECT id, txn, ts, store, terminal, hhid, deident, digest FROM baskets "
	"WHERE hhid = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts DESC, id DESC";
static const char SQL_HIST_ITEMS_SQLITE[] =
	"SELECT gtin, qty, price_cents FROM items WHERE basket_id = ?1 ORDER BY seq";
/* The basket's ts names the one partition to read. */
static const char SQL_HIST_ITEMS_PG[] =
	"SELECT gtin, qty, price_cents FROM items WHERE basket_id = ?1 AND ts = ?2 ORDER BY seq";
/* ?2 and ?3 are the walk's inclusive ts bounds, so the index range is
 * exact; the id terms only sort out baskets sharing a bound's ts. */
static const char SQL_HIST_PAGE[] =
	"SELECT id, txn, ts, store, terminal, hhid, deident, digest FROM baskets "
	"WHERE hhid = ?1 AND ts <= ?2 AND ts >= ?3 AND (ts < ?2 OR id < ?4) "
	"AND (ts > ?3 OR id >= ?5) ORDER BY ts DESC, id DESC LIMIT ?6";
static const char SQL_HIST_SEEK[] =
	"SELECT ts, id FROM baskets WHERE hhid = ?1 AND ts <= ?2 AND ts >= ?3 "
	"AND (ts < ?2 OR id < ?4) ORDER BY ts DESC, id DESC LIMIT 2 OFFSET ?5";
static const char SQL_AUDIT[] =
	"INSERT INTO audit(ts, actor, action, detail) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_STATS[] = "SELECT households, baskets, items FROM counters";

static int basket_check(const struct store_basket *b, pos_err *e)
{
	size_t tl = strnlen(b->txn, sizeof(b->txn));

	if (tl == 0 || tl >= sizeof(b->txn))
		return err_set(e, POS_EINVAL, "basket without a txn");
	if (!b->store[0] || strnlen(b->store, sizeof(b->store)) >= sizeof(b->store) ||
	    !b->terminal[0] || strnlen(b->terminal, sizeof(b->terminal)) >= sizeof(b->terminal))
		return err_set(e, POS_EINVAL, "basket %s: bad store or terminal", b->txn);
	if (b->hhid[0] && !deident_hhid_valid(b->hhid))
		return err_set(e, POS_EINVAL, "basket %s: malformed hhid", b->txn);
	if (b->deident[0] && !deident_dtid_valid(b->deident))
		return err_set(e, POS_EINVAL, "basket %s: malformed deident_tid", b->txn);
	if (b->n_items > STORE_ITEMS_MAX || (b->n_items && !b->items))
		return err_set(e, POS_EINVAL, "basket %s: bad item list", b->txn);
	return 0;
}

/* The basket already stored under b's txn: the same (a duplicate, which
 * redeems nothing again but reports what its first storing did) or not. */
static int put_existing(struct store *s, const struct store_basket *b, enum store_put_result *res,
			pos_err *e)
{
	struct db_stmt *st =
		store_q(s, store_backend(s) == DB_SQLITE ? SQL_B_GET_SQLITE : SQL_B_GET_PG, e);
	const void *d;
	size_t dl = 0;
	int64_t bid;
	int rc;

	if (!st)
		return POS_EDB;
	db_bind_text(st, 1, b->txn);
	rc = store_row(st, e);
	if (rc == POS_ENOTFOUND)
		return err_set(e, POS_EDB, "database: basket %s vanished while stored", b->txn);
	if (rc < 0)
		return rc;
	d = db_col_blob(st, 1, &dl);
	bid = db_col_int64(st, 0);
	*res = (dl == 32 && d && memcmp(d, b->digest, 32) == 0) ? STORE_PUT_DUPLICATE
								: STORE_PUT_CONFLICT;
	db_reset(st);
	return *res == STORE_PUT_DUPLICATE ? store_offer_replay(s, b, bid, e) : 0;
}

/* Binds one item row at parameter p + 1; ts (its basket's) when the
 * backend's items carry it. */
static void bind_item(struct db_stmt *st, int p, int64_t id, size_t seq,
		      const struct store_item *it, const int64_t *ts)
{
	db_bind_int64(st, p + 1, id);
	db_bind_int64(st, p + 2, (int64_t)seq);
	db_bind_text(st, p + 3, it->gtin);
	db_bind_int64(st, p + 4, it->qty);
	if (it->price_cents < 0)
		db_bind_null(st, p + 5);
	else
		db_bind_int64(st, p + 5, it->price_cents);
	if (ts)
		db_bind_int64(st, p + 6, *ts);
}

/* PostgreSQL: makes the partitions of b's month unless this connection
 * saw them made. The months seen are forgotten whenever a transaction may
 * have rolled their creation back (store_months_forget). */
static int basket_month(struct store *s, int64_t ts_ms, pos_err *e)
{
	int64_t m = store_month_start(ts_ms, 0);
	size_t n = sizeof(s->months) / sizeof(s->months[0]);
	int rc;

	for (size_t i = 0; i < s->n_months && i < n; i++)
		if (s->months[i] == m)
			return 0;
	if ((rc = store_partition_for(s, ts_ms, e)) < 0)
		return rc;
	s->months[s->n_months++ % n] = m;
	return 0;
}

/* Inserts b's row filed under hh: 0 with *id, POS_ENOTFOUND (e untouched)
 * when its txn is stored already, or an error. */
static int basket_insert(struct store *s, const struct store_basket *b, const char *hh,
			 int64_t *id, pos_err *e)
{
	bool sq = store_backend(s) == DB_SQLITE;
	struct db_stmt *st;
	int rc;

	if (!sq) {
		if ((rc = basket_month(s, b->ts_ms, e)) < 0)
			return rc;
		if (!(st = store_q(s, SQL_B_TXN_PG, e)))
			return POS_EDB;
		db_bind_text(st, 1, b->txn);
		db_bind_int64(st, 2, b->ts_ms);
		db_bind_blob(st, 3, b->digest, 32);
		if ((rc = store_row(st, e)) < 0)
			return rc;
		*id = db_col_int64(st, 0);
		db_reset(st);
	}
	if (!(st = store_q(s, sq ? SQL_B_INS_SQLITE : SQL_B_INS_PG, e)))
		return POS_EDB;
	db_bind_text(st, 1, b->txn);
	db_bind_int64(st, 2, b->ts_ms);
	db_bind_text(st, 3, b->store);
	db_bind_text(st, 4, b->terminal);
	db_bind_opt_text(st, 5, hh);
	db_bind_opt_text(st, 6, b->deident);
	db_bind_blob(st, 7, b->digest, 32);
	if (!sq)
		db_bind_int64(st, 8, *id);
	if ((rc = db_run(st, e)) < 0)
		return rc;
	if (sq) {
		if (db_changes(st) == 0)
			return POS_ENOTFOUND;
		*id = store_sqlite_last_id(s);
	}
	return 0;
}

/* One basket inside the open unit; *res says what happened. */
static int put_one(struct store *s, const struct store_basket *b, enum store_put_result *res,
		   long *n_items, pos_err *e)
{
	bool sq = store_backend(s) == DB_SQLITE;
	char hh[DEIDENT_ID_LEN + 1];
	struct db_stmt *st;
	int64_t id = 0;
	int rc;

	hh[0] = '\0';
	if (b->hhid[0]) {
		rc = store_household_file(s, b->hhid, hh, e);
		if (rc < 0)
			return rc;
	}
	if ((rc = basket_insert(s, b, hh, &id, e)) == POS_ENOTFOUND)
		return put_existing(s, b, res, e);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < b->n_items;) {
		size_t rows = b->n_items - i >= STORE_I_ROWS ? STORE_I_ROWS : 1;

		if (sq)
			st = store_q(s, rows == 1 ? SQL_I_INS_SQLITE : SQL_I_INS_N_SQLITE, e);
		else
			st = store_q(s, rows == 1 ? SQL_I_INS_PG : SQL_I_INS_N_PG, e);
		if (!st)
			return POS_EDB;
		for (size_t r = 0; r < rows; r++, i++)
			bind_item(st, (int)r * (sq ? 5 : 6), id, i, &b->items[i],
				  sq ? NULL : &b->ts_ms);
		if ((rc = db_run(st, e)) < 0)
			return rc;
	}
	*n_items += (long)b->n_items;
	*res = STORE_PUT_CREATED;
	if (!sq && hh[0]) {
		if (!(st = store_q(s, SQL_B_PENDING_PG, e)))
			return POS_EDB;
		db_bind_int64(st, 1, id);
		if ((rc = db_run(st, e)) < 0)
			return rc;
	}
	if (b->has_receipt) {
		if (!(st = store_q(s, SQL_RECEIPT_INS, e)))
			return POS_EDB;
		db_bind_blob(st, 1, b->receipt, 32);
		db_bind_int64(st, 2, id);
		if ((rc = db_run(st, e)) < 0)
			return rc;
	}
	return store_offer_redeem(s, b, id, hh, e);
}

int store_put_baskets(struct store *s, const struct store_basket *b, size_t n,
		      enum store_put_result *results, pos_err *e)
{
	struct db_stmt *st;
	long n_items = 0;
	int rc;

	if (!s || (n && (!b || !results)))
		return err_set(e, POS_EINVAL, "store_put_baskets: missing argument");
	for (size_t i = 0; i < n; i++) {
		rc = basket_check(&b[i], e);
		if (rc < 0)
			return rc;
	}
	if (n == 0)
		return 0;
	rc = store_unit_begin(s, e);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = put_one(s, &b[i], &results[i], &n_items, e);
	if (rc == 0 && n_items) {
		st = store_q(s, SQL_ITEMS_ADD, e);
		if (!st)
			rc = POS_EDB;
		else {
			db_bind_int64(st, 1, n_items);
			rc = db_run(st, e);
		}
	}
	if ((rc = store_unit_finish(s, rc, e)) < 0)
		store_months_forget(s);
	return rc;
}

/* ---------------------------------------------------------------- histories */

struct hist_items_walk {
	struct store *s;
	struct store_basket *b;
	pos_err *e;
};

static int hist_item(struct db_stmt *st, void *arg)
{
	struct hist_items_walk *w = arg;
	struct store_item *it;
	int rc = store_items_room(w->s, w->b->n_items + 1, w->e);

	if (rc < 0)
		return rc;
	w->b->items = w->s->items;
	it = &w->s->items[w->b->n_items++];
	db_col_copy(st, 0, it->gtin, sizeof(it->gtin));
	it->qty = (int)db_col_int64(st, 1);
	it->price_cents = db_col_null(st, 2) ? -1 : (long)db_col_int64(st, 2);
	return 0;
}

/* Reads basket id's items into b (the connection's scratch); b->ts_ms is
 * set. */
static int hist_items(struct store *s, int64_t id, struct store_basket *b, pos_err *e)
{
	struct hist_items_walk w = { s, b, e };
	bool sq = store_backend(s) == DB_SQLITE;
	struct db_stmt *st = store_q(s, sq ? SQL_HIST_ITEMS_SQLITE : SQL_HIST_ITEMS_PG, e);
	int rc;

	if (!st)
		return POS_EDB;
	b->n_items = 0;
	db_bind_int64(st, 1, id);
	if (!sq)
		db_bind_int64(st, 2, b->ts_ms);
	rc = db_each(st, hist_item, &w, e);
	if (rc < 0)
		return rc;
	b->items = s->items;
	return 0;
}

/* One history walk over SQL_HIST or SQL_HIST_PAGE rows. */
struct hist_walk {
	struct store *s;
	int (*fn)(const struct store_basket *b, void *arg);
	void *arg;
	struct store_history_pos *pos; /* moved to each basket; NULL: not paged */
	size_t n;                      /* baskets handed to fn */
	pos_err *e;
};

static int hist_row(struct db_stmt *st, void *arg)
{
	struct hist_walk *w = arg;
	struct store_basket b;
	const void *d;
	size_t dl = 0;
	int64_t id = db_col_int64(st, 0);
	int rc;

	memset(&b, 0, sizeof(b));
	db_col_copy(st, 1, b.txn, sizeof(b.txn));
	b.ts_ms = db_col_int64(st, 2);
	db_col_copy(st, 3, b.store, sizeof(b.store));
	db_col_copy(st, 4, b.terminal, sizeof(b.terminal));
	db_col_copy(st, 5, b.hhid, sizeof(b.hhid));
	db_col_copy(st, 6, b.deident, sizeof(b.deident));
	d = db_col_blob(st, 7, &dl);
	if (d && dl == 32)
		memcpy(b.digest, d, 32);
	if ((rc = hist_items(w->s, id, &b, w->e)) < 0)
		return rc;
	if (w->pos) {
		w->pos->ts_ms = b.ts_ms;
		w->pos->id = id;
	}
	w->n++;
	return w->fn(&b, w->arg);
}

int store_history(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		  int (*fn)(const struct store_basket *b, void *arg), void *arg, pos_err *e)
{
	struct hist_walk w = { .s = s, .fn = fn, .arg = arg, .e = e };
	struct db_stmt *st;

	if (!s || !hhid || !fn)
		return err_set(e, POS_EINVAL, "store_history: missing argument");
	if (!deident_hhid_valid(hhid))
		return err_set(e, POS_EINVAL, "malformed hhid");
	/* The walk holds this statement open while fn runs; it is the only
	 * user of SQL_HIST, so fn must not start another history walk on the
	 * same connection. */
	st = store_q(s, SQL_HIST, e);
	if (!st)
		return POS_EDB;
	db_bind_text(st, 1, hhid);
	db_bind_int64(st, 2, from_ms ? from_ms : INT64_MIN);
	db_bind_int64(st, 3, to_ms ? to_ms : INT64_MAX);
	/* The items read in between belong to the same state: a basket's
	 * items never change once its row exists (on SQLite autocommit also
	 * keeps one read snapshot for the life of this statement). */
	return db_each(st, hist_row, &w, e);
}

/* The inclusive ts bounds of a walk from from_ms to to_ms (0 = open) after
 * *after and down to *end, with the ids that split the baskets sharing a
 * bound's ts. False when nothing can be left. */
struct hist_range {
	int64_t hi, hi_id; /* ts <= hi, and id < hi_id at ts == hi */
	int64_t lo, lo_id; /* ts >= lo, and id >= lo_id at ts == lo */
};

static bool hist_range(int64_t from_ms, int64_t to_ms, const struct store_history_pos *after,
		       const struct store_history_pos *end, struct hist_range *r)
{
	r->hi = to_ms && to_ms > INT64_MIN ? to_ms - 1 : INT64_MAX;
	r->hi_id = INT64_MAX;
	if (after && after->id) {
		if (after->ts_ms < r->hi) {
			r->hi = after->ts_ms;
			r->hi_id = after->id;
		} else if (after->ts_ms == r->hi) {
			r->hi_id = after->id;
		}
	}
	r->lo = from_ms ? from_ms : INT64_MIN;
	r->lo_id = INT64_MIN;
	if (end && end->id) {
		if (end->ts_ms > r->lo) {
			r->lo = end->ts_ms;
			r->lo_id = end->id;
		} else if (end->ts_ms == r->lo) {
			r->lo_id = end->id;
		}
	}
	return r->hi >= r->lo;
}

static void hist_bind(struct db_stmt *st, const char *hhid, const struct hist_range *r,
		      bool lo_id)
{
	db_bind_text(st, 1, hhid);
	db_bind_int64(st, 2, r->hi);
	db_bind_int64(st, 3, r->lo);
	db_bind_int64(st, 4, r->hi_id);
	if (lo_id)
		db_bind_int64(st, 5, r->lo_id);
}

int store_history_page(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		       struct store_history_pos *pos, const struct store_history_pos *end,
		       size_t max, int (*fn)(const struct store_basket *b, void *arg), void *arg,
		       pos_err *e)
{
	struct hist_walk w = { .s = s, .fn = fn, .arg = arg, .pos = pos, .e = e };
	struct hist_range r;
	struct db_stmt *st;
	int ret;

	if (!s || !hhid || !pos || !fn || max == 0)
		return err_set(e, POS_EINVAL, "store_history_page: missing argument");
	if (!deident_hhid_valid(hhid))
		return err_set(e, POS_EINVAL, "malformed hhid");
	if (!hist_range(from_ms, to_ms, pos, end, &r))
		return 0;
	st = store_q(s, SQL_HIST_PAGE, e);
	if (!st)
		return POS_EDB;
	hist_bind(st, hhid, &r, true);
	db_bind_int64(st, 6, max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max);
	ret = db_each(st, hist_row, &w, e);
	if (ret < 0)
		return ret;
	return ret > 0 || w.n == max ? 1 : 0;
}

int store_history_seek(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		       const struct store_history_pos *after, long n,
		       struct store_history_pos *out, bool *more, pos_err *e)
{
	struct hist_range r;
	struct db_stmt *st;
	int rc;

	if (!s || !hhid || !out || !more || n < 1)
		return err_set(e, POS_EINVAL, "store_history_seek: bad argument");
	if (!deident_hhid_valid(hhid))
		return err_set(e, POS_EINVAL, "malformed hhid");
	*more = false;
	if (!hist_range(from_ms, to_ms, after, NULL, &r))
		return err_set(e, POS_ENOTFOUND, "fewer baskets are left than asked");
	st = store_q(s, SQL_HIST_SEEK, e);
	if (!st)
		return POS_EDB;
	hist_bind(st, hhid, &r, false);
	db_bind_int64(st, 5, (int64_t)n - 1);
	rc = store_row(st, e);
	if (rc == POS_ENOTFOUND)
		return err_set(e, POS_ENOTFOUND, "fewer baskets are left than asked");
	if (rc < 0)
		return rc;
	out->ts_ms = db_col_int64(st, 0);
	out->id = db_col_int64(st, 1);
	rc = db_step(st, e);
	*more = rc == DB_ROW;
	db_reset(st);
	return rc < 0 ? rc : 0;
}

/* ---------------------------------------------------------------- audit, stats */

int store_audit(struct store *s, const char *actor, const char *action, const char *detail,
		pos_err *e)
{
	struct db_stmt *st;

	if (!s || !actor || !action)
		return err_set(e, POS_EINVAL, "store_audit: missing argument");
	if (!detail)
		detail = "";
	if (strlen(actor) > STORE_ACTOR_MAX || strlen(action) > STORE_ACTION_MAX ||
	    strlen(detail) > STORE_DETAIL_MAX)
		return err_set(e, POS_ETOOBIG, "audit entry too long");
	st = store_q(s, SQL_AUDIT, e);
	if (!st)
		return POS_EDB;
	db_bind_int64(st, 1, time_now_ms());
	db_bind_text(st, 2, actor);
	db_bind_text(st, 3, action);
	db_bind_text(st, 4, detail);
	return db_run(st, e);
}

int store_stats(struct store *s, struct store_stats *out, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if (!s || !out)
		return err_set(e, POS_EINVAL, "store_stats: missing argument");
	memset(out, 0, sizeof(*out));
	st = store_q(s, SQL_STATS, e);
	if (!st)
		return POS_EDB;
	rc = store_row(st, e);
	if (rc == POS_ENOTFOUND)
		return err_set(e, POS_EDB, "stats: the counters row is missing");
	if (rc < 0)
		return rc;
	out->households = (long)db_col_int64(st, 0);
	out->baskets = (long)db_col_int64(st, 1);
	out->items = (long)db_col_int64(st, 2);
	db_reset(st);
	return 0;
}
