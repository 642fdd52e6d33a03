#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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
/* PostgreSQL: a chunk of baskets in one statement, one round trip (each
 * costs a wake-up of the server and of the writer, dear on a busy
 * machine). The baskets' columns travel as arrays (?1-?7, basket k the
 * k-th element), their items flattened (?9-?13, each with its basket's k;
 * put_arrays_pg). The first basket of each txn in the chunk goes on (f);
 * a later one, or one whose txn is stored already, or stored by another
 * node at once (the insert waits on the txn key, then inserts nothing),
 * gets no row back and is settled by put_existing after the statement.
 * Households are filed (a merged-away one's survivor, one never seen
 * made); txn keys and households are taken in key order, so two nodes'
 * chunks never wait on each other in a circle; ids follow the chunk's
 * order. A basket with a household is queued for the analysts' fold
 * (analyst_pending: store_analyst.c says why); the terminals' newest
 * times and the item counter go in the same statement. The baskets'
 * foreign key to their households is checked at the statement's end,
 * after the households' insert. Each basket's items are also packed into
 * its own row (baskets.items, pk), as STORE_SQL_ITEMS_PACKED_PG reads them: ""
 * for none, so a history never falls back to the item rows for a new
 * basket. Returns (k, id, hhid filed under) for each basket inserted. */
static const char SQL_B_PUT_PG[] =
	"WITH u AS (SELECT * FROM unnest(?1::text[], ?2::bigint[], ?3::text[], ?4::text[], "
	"?5::text[], ?6::text[], ?7::text[]) "
	"WITH ORDINALITY AS u(txn, ts, store, terminal, hhid, deident, digest, k)), "
	"f AS (SELECT DISTINCT ON (txn) * FROM u ORDER BY txn, k), "
	"m AS (SELECT from_hhid, into_hhid FROM merged "
	"WHERE from_hhid IN (SELECT hhid FROM u WHERE hhid IS NOT NULL)), "
	"h AS (INSERT INTO households(hhid, created) "
	"SELECT DISTINCT hhid, ?8::bigint FROM u "
	"WHERE hhid IS NOT NULL AND hhid NOT IN (SELECT from_hhid FROM m) ORDER BY hhid "
	"ON CONFLICT (hhid) DO NOTHING), "
	"t AS (INSERT INTO basket_txns(txn, id, ts, digest) "
	"SELECT x.txn, x.id, x.ts, decode(x.digest, 'hex') FROM "
	"(SELECT f.txn, f.ts, f.digest, nextval('baskets_id_seq') AS id FROM f ORDER BY f.k) x "
	"ORDER BY x.txn ON CONFLICT (txn) DO NOTHING RETURNING txn, id), "
	"pk AS (SELECT it.k, string_agg(it.seq || ',' || it.q || ',' || coalesce(it.p::text, '') "
	"|| ',' || octet_length(it.g) || ':' || it.g, '' ORDER BY it.seq) AS items "
	"FROM unnest(?9::bigint[], ?10::bigint[], ?11::text[], ?12::bigint[], ?13::bigint[]) "
	"AS it(k, seq, g, q, p) GROUP BY it.k), "
	"b AS (INSERT INTO baskets(id, txn, ts, store, terminal, hhid, deident, digest, items) "
	"SELECT t.id, f.txn, f.ts, f.store, f.terminal, coalesce(m.into_hhid, f.hhid), f.deident, "
	"decode(f.digest, 'hex'), coalesce(pk.items, '') FROM t JOIN f ON f.txn = t.txn "
	"LEFT JOIN m ON m.from_hhid = f.hhid LEFT JOIN pk ON pk.k = f.k "
	"RETURNING id, txn, ts, hhid), "
	"bk AS (SELECT f.k, b.id, b.ts, b.hhid FROM b JOIN f ON f.txn = b.txn), "
	"i AS (INSERT INTO items(basket_id, seq, gtin, qty, price_cents, ts) "
	"SELECT bk.id, it.seq, it.g, it.q, it.p, bk.ts FROM "
	"unnest(?9::bigint[], ?10::bigint[], ?11::text[], ?12::bigint[], ?13::bigint[]) "
	"AS it(k, seq, g, q, p) JOIN bk ON bk.k = it.k RETURNING 1), "
	"p AS (INSERT INTO analyst_pending(basket_id) SELECT id FROM b WHERE hhid IS NOT NULL), "
	"s AS (INSERT INTO terminals_seen(store, terminal, last_ts) "
	"SELECT DISTINCT ON (store, terminal) store, terminal, ts FROM u "
	"ORDER BY store, terminal, ts DESC "
	"ON CONFLICT (store, terminal) DO UPDATE SET last_ts = excluded.last_ts "
	"WHERE excluded.last_ts > terminals_seen.last_ts), "
	"c AS (UPDATE counters SET items = items + n.n FROM (SELECT count(*) AS n FROM i) n "
	"WHERE n.n > 0) "
	"SELECT k, id, hhid FROM bk";
/* Baskets a statement at most, and items: a larger group is split, so one
 * statement's arrays stay a few MB. */
#define STORE_PG_PUT_BASKETS 1000
#define STORE_PG_PUT_ITEMS 50000
static const char SQL_ITEMS_ADD[] = "UPDATE counters SET items = items + ?1";
static const char SQL_RECEIPT_INS[] = "INSERT INTO receipts(hash, basket_id) VALUES (?1, ?2)";
static const char SQL_HIST[] =
	"SELECT id, txn, ts, store, terminal, hhid, deident, digest FROM baskets "
	"WHERE hhid = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts DESC, id DESC";
static const char SQL_HIST_ITEMS_SQLITE[] =
	"SELECT gtin, qty, price_cents FROM items WHERE basket_id = ?1 ORDER BY seq";
/* ?2 and ?3 are the walk's inclusive ts bounds, so the index range is
 * exact; the id terms only sort out baskets sharing a bound's ts. */
static const char SQL_HIST_PAGE[] =
	"SELECT id, txn, ts, store, terminal, hhid, deident, digest FROM baskets "
	"WHERE hhid = ?1 AND ts <= ?2 AND ts >= ?3 AND (ts < ?2 OR id < ?4) "
	"AND (ts > ?3 OR id >= ?5) ORDER BY ts DESC, id DESC LIMIT ?6";
/* PostgreSQL: a basket's items in its own row (STORE_SQL_ITEMS_PACKED_PG),
 * so a history is one round trip that reads no items row. */
static const char SQL_HIST_PG[] =
	"SELECT b.id, b.txn, b.ts, b.store, b.terminal, b.hhid, b.deident, b.digest"
	STORE_SQL_ITEMS_PACKED_PG "FROM baskets b WHERE b.hhid = ?1 AND b.ts >= ?2 AND b.ts < ?3 ORDER BY b.ts DESC, b.id DESC";
static const char SQL_HIST_PAGE_PG[] =
	"SELECT b.id, b.txn, b.ts, b.store, b.terminal, b.hhid, b.deident, b.digest"
	STORE_SQL_ITEMS_PACKED_PG "FROM baskets b WHERE b.hhid = ?1 AND b.ts <= ?2 AND b.ts >= ?3 AND (b.ts < ?2 OR b.id < ?4) "
	"AND (b.ts > ?3 OR b.id >= ?5) ORDER BY b.ts DESC, b.id DESC LIMIT ?6";
static const char SQL_HIST_SEEK[] =
	"SELECT ts, id FROM baskets WHERE hhid = ?1 AND ts <= ?2 AND ts >= ?3 "
	"AND (ts < ?2 OR id < ?4) ORDER BY ts DESC, id DESC LIMIT 2 OFFSET ?5";
static const char SQL_AUDIT[] =
	"INSERT INTO audit(ts, actor, action, detail) VALUES (?1, ?2, ?3, ?4)";
/* The newest time wins, whatever order batches commit in. */
static const char SQL_SEEN_PUT[] =
	"INSERT INTO terminals_seen(store, terminal, last_ts) VALUES (?1, ?2, ?3) "
	"ON CONFLICT (store, terminal) DO UPDATE SET last_ts = excluded.last_ts "
	"WHERE excluded.last_ts > terminals_seen.last_ts";
static const char SQL_SEEN_ALL[] =
	"SELECT store, terminal, last_ts FROM terminals_seen ORDER BY store, terminal";
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

/* SQLite: binds one item row at parameter p + 1. */
static void bind_item(struct db_stmt *st, int p, int64_t id, size_t seq,
		      const struct store_item *it)
{
	db_bind_int64(st, p + 1, id);
	db_bind_int64(st, p + 2, (int64_t)seq);
	db_bind_text(st, p + 3, it->gtin);
	db_bind_int64(st, p + 4, it->qty);
	if (it->price_cents < 0)
		db_bind_null(st, p + 5);
	else
		db_bind_int64(st, p + 5, it->price_cents);
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

/* SQLite: inserts b's row filed under hh: 0 with *id, POS_ENOTFOUND (e
 * untouched) when its txn is stored already, or an error. */
static int basket_insert(struct store *s, const struct store_basket *b, const char *hh,
			 int64_t *id, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if (!(st = store_q(s, SQL_B_INS_SQLITE, e)))
		return POS_EDB;
	db_bind_text(st, 1, b->txn);
	db_bind_int64(st, 2, b->ts_ms);
	db_bind_text(st, 3, b->store);
	db_bind_text(st, 4, b->terminal);
	db_bind_opt_text(st, 5, hh);
	db_bind_opt_text(st, 6, b->deident);
	db_bind_blob(st, 7, b->digest, 32);
	if ((rc = db_run(st, e)) < 0)
		return rc;
	if (db_changes(st) == 0)
		return POS_ENOTFOUND;
	*id = store_sqlite_last_id(s);
	return 0;
}

/* PostgreSQL: array literals, written into the connection's scratch
 * (s->text) at *n, which put_arrays_pg sized for the worst case: at most
 * max bytes of v; v NULL is a NULL element. */
static void arr_text(char *t, size_t *n, const char *v, size_t max, bool sep)
{
	if (sep)
		t[(*n)++] = ',';
	if (!v) {
		memcpy(t + *n, "NULL", 4);
		*n += 4;
		return;
	}
	t[(*n)++] = '"';
	for (size_t k = 0; k < max && v[k]; k++) {
		if (v[k] == '"' || v[k] == '\\')
			t[(*n)++] = '\\';
		t[(*n)++] = v[k];
	}
	t[(*n)++] = '"';
}

static void arr_int(char *t, size_t *n, int64_t v, bool sep)
{
	if (sep)
		t[(*n)++] = ',';
	*n += (size_t)snprintf(t + *n, 24, "%" PRId64, v);
}

/* The arrays of SQL_B_PUT_PG (parameters 1-7 and 9-13) for baskets b[0 ..
 * n) in the connection's scratch: the k-th array starts at off[k] and is
 * len[k] bytes. The hhid, deident and price of a basket or item without
 * one are NULL elements. */
#define PUT_ARRAYS 12
static int put_arrays_pg(struct store *s, const struct store_basket *b, size_t n,
			 size_t off[PUT_ARRAYS], size_t len[PUT_ARRAYS], pos_err *e)
{
	size_t need = PUT_ARRAYS * 2, items = 0, at = 0, k = 0;
	char *t;

	for (size_t i = 0; i < n; i++) {
		need += 2 * (sizeof(b[i].txn) + sizeof(b[i].store) + sizeof(b[i].terminal)) + 16 +
			2 * (DEIDENT_ID_LEN + 3) + 2 * 32 + 4 * 25;
		items += b[i].n_items;
	}
	need += items * (3 * 25 + 2 * GTIN_LEN + 3 + 25);
	if (need > s->text_cap) {
		if (!(t = realloc(s->text, need)))
			return err_set(e, POS_ENOMEM, "store: out of memory");
		s->text = t;
		s->text_cap = need;
	}
	t = s->text;
#define ARR_BEGIN() (off[k] = at, t[at++] = '{')
#define ARR_END() (t[at++] = '}', len[k] = at - off[k], k++)
	ARR_BEGIN();
	for (size_t i = 0; i < n; i++)
		arr_text(t, &at, b[i].txn, sizeof(b[i].txn) - 1, i);
	ARR_END();
	ARR_BEGIN();
	for (size_t i = 0; i < n; i++)
		arr_int(t, &at, b[i].ts_ms, i);
	ARR_END();
	ARR_BEGIN();
	for (size_t i = 0; i < n; i++)
		arr_text(t, &at, b[i].store, sizeof(b[i].store) - 1, i);
	ARR_END();
	ARR_BEGIN();
	for (size_t i = 0; i < n; i++)
		arr_text(t, &at, b[i].terminal, sizeof(b[i].terminal) - 1, i);
	ARR_END();
	ARR_BEGIN();
	for (size_t i = 0; i < n; i++)
		arr_text(t, &at, b[i].hhid[0] ? b[i].hhid : NULL, DEIDENT_ID_LEN, i);
	ARR_END();
	ARR_BEGIN();
	for (size_t i = 0; i < n; i++)
		arr_text(t, &at, b[i].deident[0] ? b[i].deident : NULL, DEIDENT_ID_LEN, i);
	ARR_END();
	ARR_BEGIN();
	for (size_t i = 0; i < n; i++) {
		static const char hex[] = "0123456789abcdef";

		if (i)
			t[at++] = ',';
		for (size_t d = 0; d < 32; d++) {
			t[at++] = hex[b[i].digest[d] >> 4];
			t[at++] = hex[b[i].digest[d] & 15];
		}
	}
	ARR_END();
	ARR_BEGIN();
	for (size_t i = 0, x = 0; i < n; i++)
		for (size_t j = 0; j < b[i].n_items; j++, x++)
			arr_int(t, &at, (int64_t)i + 1, x);
	ARR_END();
	ARR_BEGIN();
	for (size_t i = 0, x = 0; i < n; i++)
		for (size_t j = 0; j < b[i].n_items; j++, x++)
			arr_int(t, &at, (int64_t)j, x);
	ARR_END();
	ARR_BEGIN();
	for (size_t i = 0, x = 0; i < n; i++)
		for (size_t j = 0; j < b[i].n_items; j++, x++)
			arr_text(t, &at, b[i].items[j].gtin, GTIN_LEN, x);
	ARR_END();
	ARR_BEGIN();
	for (size_t i = 0, x = 0; i < n; i++)
		for (size_t j = 0; j < b[i].n_items; j++, x++)
			arr_int(t, &at, b[i].items[j].qty, x);
	ARR_END();
	ARR_BEGIN();
	for (size_t i = 0, x = 0; i < n; i++)
		for (size_t j = 0; j < b[i].n_items; j++, x++) {
			if (b[i].items[j].price_cents < 0)
				arr_text(t, &at, NULL, 0, x);
			else
				arr_int(t, &at, b[i].items[j].price_cents, x);
		}
	ARR_END();
#undef ARR_BEGIN
#undef ARR_END
	return 0;
}

/* What a new basket (row id, filed under hh) brings besides its rows: its
 * receipt and its offer codes. */
static int put_extras(struct store *s, const struct store_basket *b, int64_t id, const char *hh,
		      pos_err *e)
{
	struct db_stmt *st;
	int rc;

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

/* One row of SQL_B_PUT_PG: basket k's id and household. */
struct put_row {
	int64_t id;
	char hh[DEIDENT_ID_LEN + 1];
	bool created;
};

struct put_walk {
	struct put_row *rows;
	size_t n;
	pos_err *e;
};

static int put_row_read(struct db_stmt *st, void *arg)
{
	struct put_walk *w = arg;
	int64_t k = db_col_int64(st, 0);

	if (k < 1 || (size_t)k > w->n || w->rows[k - 1].created)
		return err_set(w->e, POS_EDB, "database: the baskets' insert answered a bad row");
	w->rows[k - 1].created = true;
	w->rows[k - 1].id = db_col_int64(st, 1);
	db_col_copy(st, 2, w->rows[k - 1].hh, sizeof(w->rows[k - 1].hh));
	return 0;
}

/* PostgreSQL: baskets b[0 .. n) inside the open unit, in one statement;
 * then, in the baskets' order, each new one's receipt and codes, and each
 * one not inserted settled as a duplicate or a conflict. rows: n, the
 * caller's scratch. */
static int put_chunk_pg(struct store *s, const struct store_basket *b, size_t n,
			enum store_put_result *res, struct put_row *rows, pos_err *e)
{
	struct put_walk w = { rows, n, e };
	size_t off[PUT_ARRAYS], len[PUT_ARRAYS];
	struct db_stmt *st;
	int rc;

	for (size_t i = 0; i < n; i++)
		if ((rc = basket_month(s, b[i].ts_ms, e)) < 0)
			return rc;
	if ((rc = put_arrays_pg(s, b, n, off, len, e)) < 0)
		return rc;
	if (!(st = store_q(s, SQL_B_PUT_PG, e)))
		return POS_EDB;
	for (int k = 0; k < PUT_ARRAYS; k++)
		db_bind_textn(st, k < 7 ? k + 1 : k + 2, s->text + off[k], len[k]);
	db_bind_int64(st, 8, time_now_ms());
	memset(rows, 0, n * sizeof(*rows));
	if ((rc = db_each(st, put_row_read, &w, e)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (!rows[i].created)
			rc = put_existing(s, &b[i], &res[i], e);
		else if ((rc = put_extras(s, &b[i], rows[i].id, rows[i].hh, e)) == 0)
			res[i] = STORE_PUT_CREATED;
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* PostgreSQL: the whole batch, split into statements of at most
 * STORE_PG_PUT_BASKETS baskets and (unless one basket has more)
 * STORE_PG_PUT_ITEMS items. */
static int put_pg(struct store *s, const struct store_basket *b, size_t n,
		  enum store_put_result *res, pos_err *e)
{
	size_t cap = n < STORE_PG_PUT_BASKETS ? n : STORE_PG_PUT_BASKETS;
	struct put_row *rows = malloc(cap * sizeof(*rows));
	int rc = 0;

	if (!rows)
		return err_set(e, POS_ENOMEM, "store: out of memory");
	for (size_t i = 0; i < n && rc == 0;) {
		size_t m = 0, items = 0;

		while (i + m < n && m < cap &&
		       (m == 0 || items + b[i + m].n_items <= STORE_PG_PUT_ITEMS))
			items += b[i + m++].n_items;
		rc = put_chunk_pg(s, b + i, m, res + i, rows, e);
		i += m;
	}
	free(rows);
	return rc;
}

/* SQLite: one basket inside the open unit; *res says what happened. */
static int put_one(struct store *s, const struct store_basket *b, enum store_put_result *res,
		   long *n_items, pos_err *e)
{
	char hh[DEIDENT_ID_LEN + 1];
	struct db_stmt *st;
	int64_t id = 0;
	int rc;

	hh[0] = '\0';
	if (b->hhid[0] && (rc = store_household_file(s, b->hhid, hh, e)) < 0)
		return rc;
	rc = basket_insert(s, b, hh, &id, e);
	if (rc == POS_ENOTFOUND)
		return put_existing(s, b, res, e);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < b->n_items;) {
		size_t rows = b->n_items - i >= STORE_I_ROWS ? STORE_I_ROWS : 1;

		st = store_q(s, rows == 1 ? SQL_I_INS_SQLITE : SQL_I_INS_N_SQLITE, e);
		if (!st)
			return POS_EDB;
		for (size_t r = 0; r < rows; r++, i++)
			bind_item(st, (int)r * 5, id, i, &b->items[i]);
		if ((rc = db_run(st, e)) < 0)
			return rc;
	}
	*n_items += (long)b->n_items;
	*res = STORE_PUT_CREATED;
	return put_extras(s, b, id, hh, e);
}

/* ------------------------------------------------------------ terminals seen */

/* Slots of the per-batch table of distinct terminals (a power of two);
 * it is written out and emptied when half full, so a batch from many
 * terminals costs one upsert per terminal and no allocation. */
#define SEEN_SLOTS 512

static uint32_t seen_hash(const struct store_basket *b)
{
	uint32_t h = 2166136261u;

	for (const char *p = b->store; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (const char *p = b->terminal; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

/* Upserts each terminal's newest basket in slot[] (basket index + 1, 0
 * free) and empties the table. */
static int seen_flush(struct store *s, const struct store_basket *b, uint32_t *slot,
		      size_t *used, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if (*used == 0)
		return 0;
	if (!(st = store_q(s, SQL_SEEN_PUT, e)))
		return POS_EDB;
	for (size_t i = 0; i < SEEN_SLOTS; i++) {
		const struct store_basket *x;

		if (!slot[i])
			continue;
		x = &b[slot[i] - 1];
		db_bind_text(st, 1, x->store);
		db_bind_text(st, 2, x->terminal);
		db_bind_int64(st, 3, x->ts_ms);
		if ((rc = db_run(st, e)) < 0)
			return rc;
		slot[i] = 0;
	}
	*used = 0;
	return 0;
}

/* Records, once per distinct (store, terminal) of the batch, its newest
 * basket time. */
static int seen_put(struct store *s, const struct store_basket *b, size_t n, pos_err *e)
{
	uint32_t slot[SEEN_SLOTS];
	size_t used = 0;
	int rc;

	memset(slot, 0, sizeof slot);
	for (size_t i = 0; i < n; i++) {
		size_t k = seen_hash(&b[i]) & (SEEN_SLOTS - 1);

		while (slot[k]) {
			const struct store_basket *x = &b[slot[k] - 1];

			if (strcmp(x->store, b[i].store) == 0 &&
			    strcmp(x->terminal, b[i].terminal) == 0)
				break;
			k = (k + 1) & (SEEN_SLOTS - 1);
		}
		if (!slot[k])
			used++;
		if (!slot[k] || b[slot[k] - 1].ts_ms < b[i].ts_ms)
			slot[k] = (uint32_t)i + 1;
		if (used >= SEEN_SLOTS / 2 && (rc = seen_flush(s, b, slot, &used, e)) < 0)
			return rc;
	}
	return seen_flush(s, b, slot, &used, e);
}

struct seen_walk {
	int (*fn)(const struct store_terminal_seen *t, void *arg);
	void *arg;
};

static int seen_row(struct db_stmt *st, void *arg)
{
	struct seen_walk *w = arg;
	struct store_terminal_seen t;

	db_col_copy(st, 0, t.store, sizeof t.store);
	db_col_copy(st, 1, t.terminal, sizeof t.terminal);
	t.last_ms = db_col_int64(st, 2);
	return w->fn(&t, w->arg);
}

int store_terminals_seen(struct store *s, int (*fn)(const struct store_terminal_seen *t, void *arg),
			 void *arg, pos_err *e)
{
	struct seen_walk w = { fn, arg };
	struct db_stmt *st;

	if (!s || !fn)
		return err_set(e, POS_EINVAL, "store_terminals_seen: missing argument");
	if (!(st = store_q(s, SQL_SEEN_ALL, e)))
		return POS_EDB;
	return db_each(st, seen_row, &w, e);
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
	if (store_backend(s) != DB_SQLITE) {
		rc = put_pg(s, b, n, results, e);
		goto done;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = put_one(s, &b[i], &results[i], &n_items, e);
	if (rc == 0)
		rc = seen_put(s, b, n, e);
	if (rc == 0 && n_items) {
		st = store_q(s, SQL_ITEMS_ADD, e);
		if (!st)
			rc = POS_EDB;
		else {
			db_bind_int64(st, 1, n_items);
			rc = db_run(st, e);
		}
	}
done:
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
	struct db_stmt *st = store_q(s, SQL_HIST_ITEMS_SQLITE, e);
	int rc;

	if (!st)
		return POS_EDB;
	b->n_items = 0;
	db_bind_int64(st, 1, id);
	rc = db_each(st, hist_item, &w, e);
	if (rc < 0)
		return rc;
	b->items = s->items;
	return 0;
}

/* The decimal number at *t (an optional '-', 1 to 18 digits) into *v and
 * *t past it and the separator sep that must follow; false when either is
 * missing. Not strtol: a history reads four numbers per item. */
static bool hist_num(const char **t, char sep, long *v)
{
	const char *p = *t;
	bool neg = *p == '-';
	long n = 0;
	int k = 0;

	if (neg)
		p++;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (++k > 18)
			return false;
		n = n * 10 + (*p - '0');
	}
	if (k == 0 || *p != sep)
		return false;
	*v = neg ? -n : n;
	*t = p + 1;
	return true;
}

int store_items_unpack(struct store *s, const char *t, struct store_basket *b, pos_err *e)
{
	long last = 0;

	b->n_items = 0;
	b->items = s->items;
	while (t && *t) {
		struct store_item *it;
		long seq, qty, price = -1, gl;
		int rc;

		if (!hist_num(&t, ',', &seq) || (b->n_items > 0 && seq <= last) ||
		    !hist_num(&t, ',', &qty))
			goto bad;
		last = seq;
		if (*t == ',')
			t++;
		else if (!hist_num(&t, ',', &price))
			goto bad;
		if (!hist_num(&t, ':', &gl) || gl < 1 || gl > GTIN_LEN ||
		    strnlen(t, (size_t)gl) != (size_t)gl)
			goto bad;
		if ((rc = store_items_room(s, b->n_items + 1, e)) < 0)
			return rc;
		b->items = s->items;
		it = &s->items[b->n_items++];
		memcpy(it->gtin, t, (size_t)gl);
		it->gtin[gl] = '\0';
		it->qty = (int)qty;
		it->price_cents = price;
		t += gl;
	}
	return 0;
bad:
	return err_set(e, POS_EDB, "database: basket %s: unreadable items", b->txn);
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

/* Reads one SQL_HIST* row into b (items in the connection's scratch). */
static int hist_read(struct store *s, struct db_stmt *st, struct store_basket *bp, pos_err *e)
{
	struct store_basket b;
	const void *d;
	size_t dl = 0;
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
	if (store_backend(s) == DB_SQLITE)
		rc = hist_items(s, db_col_int64(st, 0), &b, e);
	else
		rc = store_items_unpack(s, db_col_text(st, 8), &b, e);
	*bp = b;
	return rc;
}

static int hist_row(struct db_stmt *st, void *arg)
{
	struct hist_walk *w = arg;
	struct store_basket b;
	int64_t id = db_col_int64(st, 0);
	int rc;

	if ((rc = hist_read(w->s, st, &b, w->e)) < 0)
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
	st = store_q(s, store_backend(s) == DB_SQLITE ? SQL_HIST : SQL_HIST_PG, e);
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

/*
 * PostgreSQL: a slice's rows all come in one result, items included, so a
 * walk stopped early (a stream's chunk full after a few baskets) would ask
 * for the same baskets again on the next slice. The rest of the last slice
 * is kept per connection and the next slice of the same walk, starting
 * where the last one stopped within HC_KEEP_US, is served from it (a
 * stream's slices follow each other at once; a client paging with a
 * cursor later reads afresh).
 */
#define HC_KEEP_US 1000000
struct hist_cached {
	struct store_basket b; /* items: none; off, n_items below */
	int64_t id;
	size_t off;
};

struct store_hist_cache {
	bool valid;
	char hhid[DEIDENT_ID_LEN + 1];
	int64_t from_ms, to_ms;
	bool has_end;
	struct store_history_pos end;
	struct store_history_pos at; /* where the walk stands: the next slice starts after it */
	int64_t read_us;             /* time_mono_us() of the read */
	bool full;                   /* the slice filled its limit: baskets may be left */
	struct hist_cached *rows;
	size_t n, next, cap;
	struct store_item *items;
	size_t n_items, items_cap;
};

static void store_history_forget(struct store *s)
{
	if (!s || !s->hc)
		return;
	free(s->hc->rows);
	free(s->hc->items);
	free(s->hc);
	s->hc = NULL;
}

struct hc_fill {
	struct store *s;
	struct store_hist_cache *hc;
	pos_err *e;
};

static int hc_row(struct db_stmt *st, void *arg)
{
	struct hc_fill *f = arg;
	struct store_hist_cache *hc = f->hc;
	struct hist_cached *r;
	struct store_basket b;
	int rc;

	if ((rc = hist_read(f->s, st, &b, f->e)) < 0)
		return rc;
	if (hc->n == hc->cap) {
		size_t cap = hc->cap ? hc->cap * 2 : 64;
		void *p = realloc(hc->rows, cap * sizeof(*hc->rows));
		if (!p)
			return err_set(f->e, POS_ENOMEM, "store: out of memory");
		hc->rows = p;
		hc->cap = cap;
	}
	if (hc->n_items + b.n_items > hc->items_cap) {
		size_t cap = hc->items_cap ? hc->items_cap : 1024;
		void *p;
		while (cap < hc->n_items + b.n_items)
			cap *= 2;
		if (!(p = realloc(hc->items, cap * sizeof(*hc->items))))
			return err_set(f->e, POS_ENOMEM, "store: out of memory");
		hc->items = p;
		hc->items_cap = cap;
	}
	if (b.n_items)
		memcpy(hc->items + hc->n_items, b.items, b.n_items * sizeof(*b.items));
	r = &hc->rows[hc->n++];
	r->b = b;
	r->b.items = NULL;
	r->id = db_col_int64(st, 0);
	r->off = hc->n_items;
	hc->n_items += b.n_items;
	return 0;
}

static bool hc_matches(const struct store_hist_cache *hc, const char *hhid, int64_t from_ms,
		       int64_t to_ms, const struct store_history_pos *pos,
		       const struct store_history_pos *end)
{
	return hc && hc->valid && strcmp(hc->hhid, hhid) == 0 && hc->from_ms == from_ms &&
	       hc->to_ms == to_ms && hc->has_end == (end != NULL) &&
	       (!end || (hc->end.ts_ms == end->ts_ms && hc->end.id == end->id)) &&
	       hc->at.ts_ms == pos->ts_ms && hc->at.id == pos->id &&
	       time_mono_us() - hc->read_us < HC_KEEP_US;
}

/* Hands the kept rows to fn, at most max - *served more; fn's stop (> 0)
 * or failure (< 0) is returned. */
static int hc_serve(struct store_hist_cache *hc, struct store_history_pos *pos, size_t max,
		    size_t *served, int (*fn)(const struct store_basket *b, void *arg), void *arg)
{
	while (hc->next < hc->n && *served < max) {
		struct hist_cached *r = &hc->rows[hc->next++];
		int rc;

		r->b.items = hc->items + r->off;
		pos->ts_ms = r->b.ts_ms;
		pos->id = r->id;
		hc->at = *pos;
		(*served)++;
		if ((rc = fn(&r->b, arg)) != 0)
			return rc;
	}
	return 0;
}

/* store_history_page on PostgreSQL, through the kept slice. */
static int hist_page_pg(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
			struct store_history_pos *pos, const struct store_history_pos *end,
			size_t max, int (*fn)(const struct store_basket *b, void *arg), void *arg,
			pos_err *e)
{
	struct store_hist_cache *hc = s->hc;
	struct hc_fill f = { s, NULL, e };
	struct hist_range r;
	struct db_stmt *st;
	size_t served = 0;
	int rc;

	if (hc_matches(hc, hhid, from_ms, to_ms, pos, end) && hc->next < hc->n) {
		rc = hc_serve(hc, pos, max, &served, fn, arg);
		if (rc != 0)
			return rc < 0 ? rc : 1;
		if (served == max || hc->full)
			return 1;
		hc->valid = false;
		return 0;
	}
	if (!hc && !(hc = s->hc = calloc(1, sizeof(*hc))))
		return err_set(e, POS_ENOMEM, "store: out of memory");
	s->hc_free = store_history_forget;
	hc->valid = false;
	if (!hist_range(from_ms, to_ms, pos, end, &r))
		return 0;
	if (!(st = store_q(s, SQL_HIST_PAGE_PG, e)))
		return POS_EDB;
	hist_bind(st, hhid, &r, true);
	db_bind_int64(st, 6, max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max);
	hc->n = hc->next = hc->n_items = 0;
	f.hc = hc;
	if ((rc = db_each(st, hc_row, &f, e)) < 0)
		return rc;
	memcpy(hc->hhid, hhid, DEIDENT_ID_LEN + 1);
	hc->from_ms = from_ms;
	hc->to_ms = to_ms;
	hc->has_end = end != NULL;
	if (end)
		hc->end = *end;
	hc->at = *pos;
	hc->full = hc->n == max;
	hc->read_us = time_mono_us();
	hc->valid = true;
	rc = hc_serve(hc, pos, max, &served, fn, arg);
	if (rc != 0)
		return rc < 0 ? rc : 1;
	return served == max ? 1 : 0;
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
	if (store_backend(s) != DB_SQLITE)
		return hist_page_pg(s, hhid, from_ms, to_ms, pos, end, max, fn, arg, e);
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
