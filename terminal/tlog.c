#include "tlog.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "dbfile.h"
#include "deident.h"
#include "gtin.h"
#include "jsonx.h"
#include "timeutil.h"
#include "uuid.h"

#define TLOG_TXN_MAX 36
#define TLOG_REASON_MAX 64
#define TLOG_PEEK_MAX 1000
#define TLOG_BUSY_MS 5000
#define TLOG_ITEMS_MAX 1000
#define TLOG_QTY_MAX 9999
#define TLOG_PRICE_MAX 10000000000LL
#define TLOG_OFFERS_MAX 100
#define TLOG_DEPTH 5

enum {
	TQ_PUT,
	TQ_GET,
	TQ_HEAD,
	TQ_PEEK,
	TQ_SENT,
	TQ_ATTEMPT,
	TQ_REJECT,
	TQ_STATS,
	TQ_LANES,
	TQ_PRUNE,
	TQ_REPLAY,
	TQ_REPORT,
	TQ_N
};

static const char *const tlog_sql[TQ_N] = {
	[TQ_PUT] = ("INSERT INTO tlog(txn, terminal, received_ms, ts_ms, lines, units, sales_cents,"
		    " hhid, offers, body) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
		    "ON CONFLICT(txn) DO NOTHING"),
	[TQ_GET] = "SELECT terminal, body FROM tlog WHERE txn = ?1",
	[TQ_HEAD] = ("SELECT terminal FROM tlog WHERE sent_ms IS NULL AND rejected IS NULL "
		     "ORDER BY id LIMIT 1"),
	[TQ_PEEK] = ("SELECT id, txn, body, attempts FROM tlog WHERE sent_ms IS NULL AND "
		     "rejected IS NULL AND terminal = ?1 ORDER BY id LIMIT ?2"),
	[TQ_SENT] = "UPDATE tlog SET sent_ms = ?2, verdict = ?3 WHERE txn = ?1",
	[TQ_ATTEMPT] = "UPDATE tlog SET attempts = attempts + 1 WHERE txn = ?1",
	[TQ_REJECT] = "UPDATE tlog SET rejected = ?2, attempts = attempts + 1 WHERE txn = ?1",
	[TQ_STATS] = ("SELECT count(*), "
		      "coalesce(sum(sent_ms IS NULL AND rejected IS NULL), 0), "
		      "coalesce(sum(rejected IS NOT NULL), 0), "
		      "min(CASE WHEN sent_ms IS NULL AND rejected IS NULL THEN received_ms END) "
		      "FROM tlog"),
	[TQ_LANES] = "SELECT count(DISTINCT terminal) FROM tlog",
	[TQ_PRUNE] = "DELETE FROM tlog WHERE sent_ms IS NOT NULL AND received_ms < ?1",
	[TQ_REPLAY] = ("UPDATE tlog SET sent_ms = NULL, verdict = NULL, rejected = NULL "
		       "WHERE ts_ms >= ?1"),
	[TQ_REPORT] = ("SELECT terminal,"
		       " CAST(strftime('%H', ts_ms / 1000, 'unixepoch', 'localtime') AS INTEGER) AS h,"
		       " count(*), sum(units), sum(sales_cents), count(DISTINCT hhid), sum(offers) "
		       "FROM tlog WHERE ts_ms >= ?1 AND ts_ms < ?2 GROUP BY terminal, h "
		       "ORDER BY terminal, h"),
};

/* sent_ms: NULL until central's 2xx. rejected: central refused for good.
 * hhid: NULL when the lane did not resolve the customer (count DISTINCT
 * skips it). */
static const char tlog_schema[] =
	"CREATE TABLE IF NOT EXISTS tlog("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" txn TEXT NOT NULL UNIQUE,"
	" terminal TEXT NOT NULL,"
	" received_ms INTEGER NOT NULL,"
	" ts_ms INTEGER NOT NULL,"
	" lines INTEGER NOT NULL,"
	" units INTEGER NOT NULL,"
	" sales_cents INTEGER NOT NULL,"
	" hhid TEXT,"
	" offers INTEGER NOT NULL,"
	" body TEXT NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" sent_ms INTEGER,"
	" verdict TEXT,"
	" rejected TEXT);"
	"CREATE INDEX IF NOT EXISTS tlog_unsent ON tlog(id) "
	" WHERE sent_ms IS NULL AND rejected IS NULL;"
	"CREATE INDEX IF NOT EXISTS tlog_ts ON tlog(ts_ms);"
	"PRAGMA user_version = 1;";

struct tlog {
	sqlite3 *db;
	sqlite3_stmt *st[TQ_N];
};

static int tlog_db_err(struct tlog *t, pos_err *e, const char *what)
{
	return err_set(e, POS_EDB, "tlog: %s: %s", what,
		       t && t->db ? sqlite3_errmsg(t->db) : "no database");
}

static void tlog_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* ------------------------------------------------------------ baskets */

void tlog_basket_clear(struct tlog_basket *b)
{
	if (!b)
		return;
	free(b->body);
	memset(b, 0, sizeof *b);
}

static int tlog_items(json_t *items, struct tlog_basket *b, pos_err *e)
{
	size_t i;
	json_t *it;

	if (!json_is_array(items) || json_array_size(items) < 1 ||
	    json_array_size(items) > TLOG_ITEMS_MAX)
		return err_set(e, POS_EINVAL, "items must be an array of 1 to %d items",
			       TLOG_ITEMS_MAX);
	json_array_foreach(items, i, it) {
		const char *gtin = NULL;
		int64_t qty = 0, price = -1;
		int rc;

		if (!json_is_object(it))
			return err_set(e, POS_EINVAL, "items[%zu] must be an object", i);
		if ((rc = jsonx_str(it, "gtin", 1, GTIN_LEN, &gtin, e)) < 0 ||
		    (rc = jsonx_int(it, "qty", 1, 1, TLOG_QTY_MAX, &qty, e)) < 0 ||
		    (rc = jsonx_int(it, "price_cents", 0, 0, TLOG_PRICE_MAX, &price, e)) < 0) {
			err_prefix(e, "items[%zu]", i);
			return rc;
		}
		if (strlen(gtin) != GTIN_LEN || !gtin14_valid(gtin))
			return err_set(e, POS_EINVAL,
				       "items[%zu]: gtin must be 14 digits with a valid check digit", i);
		b->lines++;
		b->units += (long)qty;
		if (price >= 0)
			b->sales_cents += (long long)qty * price;
	}
	return 0;
}

int tlog_basket_from_json(json_t *obj, struct tlog_basket *out, pos_err *e)
{
	const char *txn = NULL, *ts = NULL, *hhid = NULL;
	json_t *offers;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "tlog: no output");
	memset(out, 0, sizeof *out);
	if (!json_is_object(obj))
		return err_set(e, POS_EINVAL, "a basket must be a JSON object");
	if ((rc = jsonx_str(obj, "txn", 1, TLOG_TXN_MAX, &txn, e)) < 0)
		return rc;
	if (!uuid_valid(txn))
		return err_set(e, POS_EINVAL, "txn must be a UUID");
	if ((rc = jsonx_str(obj, "ts", 1, 64, &ts, e)) < 0)
		return rc;
	if (time_parse_rfc3339(ts, 0, &out->ts_ms, e) < 0)
		return err_set(e, POS_EINVAL, "ts must be an RFC 3339 time");
	if ((rc = tlog_items(json_object_get(obj, "items"), out, e)) < 0)
		goto fail;
	if ((rc = jsonx_str(obj, "hhid", 0, DEIDENT_ID_LEN, &hhid, e)) < 0)
		goto fail;
	if (hhid && !deident_hhid_valid(hhid)) {
		rc = err_set(e, POS_EINVAL, "hhid must be hh_ and 26 Crockford base32 characters");
		goto fail;
	}
	offers = json_object_get(obj, "offers");
	if (offers && (!json_is_array(offers) || json_array_size(offers) > TLOG_OFFERS_MAX)) {
		rc = err_set(e, POS_EINVAL, "offers must be an array of at most %d codes",
			     TLOG_OFFERS_MAX);
		goto fail;
	}
	out->offers = offers ? (long)json_array_size(offers) : 0;
	/* Lower case: central takes a txn in either case as the same. */
	for (size_t i = 0; txn[i]; i++)
		out->txn[i] = (char)(txn[i] >= 'A' && txn[i] <= 'F' ? txn[i] + 32 : txn[i]);
	if (hhid)
		snprintf(out->hhid, sizeof out->hhid, "%s", hhid);
	out->body = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	if (!out->body) {
		rc = err_set(e, POS_ENOMEM, "tlog: out of memory");
		goto fail;
	}
	out->len = strlen(out->body);
	if (out->len > TLOG_BODY_MAX) {
		rc = err_set(e, POS_ETOOBIG, "a basket is over %d bytes", TLOG_BODY_MAX);
		goto fail;
	}
	return 0;
fail:
	tlog_basket_clear(out);
	return rc;
}

int tlog_basket_parse(const char *body, size_t len, struct tlog_basket *out, pos_err *e)
{
	json_t *root = NULL;
	int rc;

	if (out)
		memset(out, 0, sizeof *out);
	if ((rc = jsonx_parse(body, len, TLOG_BODY_MAX, TLOG_DEPTH, &root, e)) < 0)
		return rc;
	rc = tlog_basket_from_json(root, out, e);
	json_decref(root);
	return rc;
}

/* ------------------------------------------------------------ open */

static int tlog_exec(struct tlog *t, const char *sql, pos_err *e)
{
	char *msg = NULL;

	if (sqlite3_exec(t->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int rc = err_set(e, POS_EDB, "tlog: %s", msg ? msg : sqlite3_errmsg(t->db));
		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

static int tlog_open_flags(const char *path, int readonly, struct tlog **out, pos_err *e)
{
	struct tlog *t = NULL;
	struct stat st;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "tlog: no output");
	*out = NULL;
	if (!path || !*path)
		return err_set(e, POS_EINVAL, "tlog: no path");
	if (readonly && stat(path, &st) != 0)
		return err_set(e, POS_ENOTFOUND, "tlog: %s does not exist yet (pos-store run makes it)",
			       path);
	/* The log holds EncTIDs and household ids: the controller's only
	 * (dbfile.h says why an existing file is never opened for this). */
	if (!readonly && (rc = dbfile_prepare(path, e)) < 0) {
		err_prefix(e, "tlog");
		return rc;
	}
	t = calloc(1, sizeof *t);
	if (!t)
		return err_set(e, POS_ENOMEM, "tlog: out of memory");
	if (sqlite3_open_v2(path, &t->db,
			    readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    NULL) != SQLITE_OK) {
		rc = err_set(e, POS_EDB, "tlog: cannot open %s: %s", path,
			     t->db ? sqlite3_errmsg(t->db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(t->db, 1);
	sqlite3_busy_timeout(t->db, TLOG_BUSY_MS);
	if (!readonly) {
		/* WAL and FULL: "201" survives a power cut; readers (status,
		 * report, replay) never block the controller. */
		if ((rc = tlog_exec(t, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", e)) <
			    0 ||
		    (rc = tlog_exec(t, tlog_schema, e)) < 0) {
			err_prefix(e, "%s", path);
			goto fail;
		}
	}
	for (int i = 0; i < TQ_N; i++) {
		if (readonly && (i == TQ_PUT || i == TQ_SENT || i == TQ_ATTEMPT || i == TQ_REJECT ||
				 i == TQ_PRUNE || i == TQ_REPLAY))
			continue;
		if (sqlite3_prepare_v3(t->db, tlog_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &t->st[i],
				       NULL) != SQLITE_OK) {
			rc = tlog_db_err(t, e, "prepare");
			err_prefix(e, "%s", path);
			goto fail;
		}
	}
	*out = t;
	return 0;
fail:
	tlog_close(t);
	return rc;
}

int tlog_open(const char *path, struct tlog **out, pos_err *e)
{
	return tlog_open_flags(path, 0, out, e);
}

int tlog_open_readonly(const char *path, struct tlog **out, pos_err *e)
{
	return tlog_open_flags(path, 1, out, e);
}

void tlog_close(struct tlog *t)
{
	if (!t)
		return;
	for (int i = 0; i < TQ_N; i++)
		sqlite3_finalize(t->st[i]);
	sqlite3_close(t->db);
	free(t);
}

/* ------------------------------------------------------------ writes */

static int tlog_id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n >= 1 && n <= TLOG_ID_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* The stored row of txn: 1 same lane and body, 0 other, negative error. */
static int tlog_same(struct tlog *t, const char *terminal, const struct tlog_basket *b,
		     pos_err *e)
{
	sqlite3_stmt *st = t->st[TQ_GET];
	int rc;

	if (sqlite3_bind_text(st, 1, b->txn, -1, SQLITE_STATIC) != SQLITE_OK) {
		rc = tlog_db_err(t, e, "bind");
		goto out;
	}
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = tlog_db_err(t, e, "read back");
		goto out;
	}
	const char *term = (const char *)sqlite3_column_text(st, 0);
	const char *body = (const char *)sqlite3_column_text(st, 1);
	size_t blen = (size_t)sqlite3_column_bytes(st, 1);
	rc = term && body && strcmp(term, terminal) == 0 && blen == b->len &&
	     memcmp(body, b->body, blen) == 0;
out:
	tlog_done(st);
	return rc;
}

/* Inserts b; *res as tlog_put_batch says. Inside the caller's transaction. */
static int tlog_insert(struct tlog *t, const char *terminal, const struct tlog_basket *b,
		       int64_t now_ms, enum tlog_put_result *res, pos_err *e)
{
	sqlite3_stmt *st = t->st[TQ_PUT];
	int rc;

	if (!b || !b->body)
		return err_set(e, POS_EINVAL, "tlog: bad arguments");
	if (sqlite3_bind_text(st, 1, b->txn, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, terminal, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, now_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, b->ts_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 5, b->lines) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 6, b->units) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 7, b->sales_cents) != SQLITE_OK ||
	    (b->hhid[0] ? sqlite3_bind_text(st, 8, b->hhid, -1, SQLITE_STATIC)
			: sqlite3_bind_null(st, 8)) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 9, b->offers) != SQLITE_OK ||
	    sqlite3_bind_text(st, 10, b->body, (int)b->len, SQLITE_STATIC) != SQLITE_OK) {
		rc = tlog_db_err(t, e, "bind");
		tlog_done(st);
		return rc;
	}
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = tlog_db_err(t, e, "put");
		tlog_done(st);
		return rc;
	}
	tlog_done(st);
	if (sqlite3_changes(t->db) == 1) {
		*res = TLOG_CREATED;
		return 0;
	}
	if ((rc = tlog_same(t, terminal, b, e)) < 0)
		return rc;
	*res = rc ? TLOG_DUPLICATE : TLOG_CONFLICT;
	return 0;
}

int tlog_begin(struct tlog *t, pos_err *e)
{
	if (!t)
		return err_set(e, POS_EINVAL, "tlog: not open");
	if (!sqlite3_get_autocommit(t->db))
		return 0;
	return tlog_exec(t, "BEGIN IMMEDIATE", e);
}

int tlog_commit(struct tlog *t, pos_err *e)
{
	int rc;

	if (!t || sqlite3_get_autocommit(t->db))
		return 0;
	/* COMMIT returns after the WAL frames are fsynced (synchronous=FULL). */
	if ((rc = tlog_exec(t, "COMMIT", e)) < 0) {
		char *msg = NULL;
		sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, &msg);
		sqlite3_free(msg);
	}
	return rc;
}

int tlog_pending(const struct tlog *t)
{
	return t && !sqlite3_get_autocommit(t->db);
}

int tlog_put_batch(struct tlog *t, const char *terminal, const struct tlog_basket *b, size_t n,
		   int64_t now_ms, enum tlog_put_result *res, pos_err *e)
{
	int rc = 0;

	if (!t || (n && (!b || !res)))
		return err_set(e, POS_EINVAL, "tlog: bad arguments");
	if (!tlog_id_ok(terminal))
		return err_set(e, POS_EINVAL, "tlog: terminal must match [A-Za-z0-9._-]{1,64}");
	if (n == 0)
		return 0;
	if ((rc = tlog_begin(t, e)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if ((rc = tlog_insert(t, terminal, &b[i], now_ms, &res[i], e)) < 0)
			goto fail;
	if ((rc = tlog_commit(t, e)) < 0)
		return rc;
	return 0;
fail:
	/* The whole batch or nothing: the lane retries it and hears 200 for
	 * what it sent before. */
	{
		char *msg = NULL;
		sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, &msg);
		sqlite3_free(msg);
	}
	return rc;
}

int tlog_put(struct tlog *t, const char *terminal, const struct tlog_basket *b, int64_t now_ms,
	     enum tlog_put_result *res, pos_err *e)
{
	int rc;

	if (!t || !b || !b->body || !res)
		return err_set(e, POS_EINVAL, "tlog: bad arguments");
	if ((rc = tlog_put_batch(t, terminal, b, 1, now_ms, res, e)) < 0)
		return rc;
	if (*res == TLOG_CONFLICT)
		return err_set(e, POS_ECONFLICT, "this txn is already logged with other content");
	return 0;
}

static int tlog_txn_ok(const char *txn, pos_err *e)
{
	if (!txn || !*txn || strnlen(txn, TLOG_TXN_MAX + 1) > TLOG_TXN_MAX)
		return err_set(e, POS_EINVAL, "tlog: bad txn");
	return 0;
}

static int tlog_step_done(struct tlog *t, sqlite3_stmt *st, const char *what, pos_err *e)
{
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : tlog_db_err(t, e, what);

	tlog_done(st);
	return rc;
}

int tlog_mark_sent(struct tlog *t, const char *txn, const char *how, int64_t now_ms, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!t)
		return err_set(e, POS_EINVAL, "tlog: not open");
	if ((rc = tlog_txn_ok(txn, e)) < 0)
		return rc;
	st = t->st[TQ_SENT];
	if (sqlite3_bind_text(st, 1, txn, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, now_ms) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, how ? how : "created", -1, SQLITE_STATIC) != SQLITE_OK) {
		rc = tlog_db_err(t, e, "bind");
		tlog_done(st);
		return rc;
	}
	return tlog_step_done(t, st, "mark sent", e);
}

int tlog_set_rejected(struct tlog *t, const char *txn, const char *reason, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!t)
		return err_set(e, POS_EINVAL, "tlog: not open");
	if ((rc = tlog_txn_ok(txn, e)) < 0)
		return rc;
	if (!reason || !*reason)
		reason = "rejected";
	st = t->st[TQ_REJECT];
	if (sqlite3_bind_text(st, 1, txn, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, reason, (int)strnlen(reason, TLOG_REASON_MAX),
			      SQLITE_STATIC) != SQLITE_OK) {
		rc = tlog_db_err(t, e, "bind");
		tlog_done(st);
		return rc;
	}
	return tlog_step_done(t, st, "set rejected", e);
}

int tlog_note_attempt(struct tlog *t, const char *txn, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!t)
		return err_set(e, POS_EINVAL, "tlog: not open");
	if ((rc = tlog_txn_ok(txn, e)) < 0)
		return rc;
	st = t->st[TQ_ATTEMPT];
	if (sqlite3_bind_text(st, 1, txn, -1, SQLITE_STATIC) != SQLITE_OK) {
		rc = tlog_db_err(t, e, "bind");
		tlog_done(st);
		return rc;
	}
	return tlog_step_done(t, st, "note attempt", e);
}

static int tlog_by_time(struct tlog *t, int which, int64_t ms, long *n, const char *what,
			pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!t || !t->st[which])
		return err_set(e, POS_EINVAL, "tlog: not open for writing");
	st = t->st[which];
	if (sqlite3_bind_int64(st, 1, ms) != SQLITE_OK) {
		rc = tlog_db_err(t, e, "bind");
		tlog_done(st);
		return rc;
	}
	if ((rc = tlog_step_done(t, st, what, e)) < 0)
		return rc;
	if (n)
		*n = (long)sqlite3_changes(t->db);
	return 0;
}

int tlog_prune(struct tlog *t, int64_t before_ms, long *n, pos_err *e)
{
	return tlog_by_time(t, TQ_PRUNE, before_ms, n, "prune", e);
}

int tlog_replay(struct tlog *t, int64_t since_ms, long *n, pos_err *e)
{
	return tlog_by_time(t, TQ_REPLAY, since_ms, n, "replay", e);
}

/* ------------------------------------------------------------ reads */

int tlog_peek(struct tlog *t, size_t max, struct spool_row **rows, size_t *n,
	      char terminal[TLOG_ID_MAX + 1], pos_err *e)
{
	sqlite3_stmt *st;
	struct spool_row *r = NULL;
	size_t k = 0;
	int rc = 0, step;

	if (!rows || !n || !terminal)
		return err_set(e, POS_EINVAL, "tlog: no output");
	*rows = NULL;
	*n = 0;
	terminal[0] = '\0';
	if (!t)
		return err_set(e, POS_EINVAL, "tlog: not open");
	if (max == 0)
		return 0;
	if (max > TLOG_PEEK_MAX)
		max = TLOG_PEEK_MAX;
	st = t->st[TQ_HEAD];
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		snprintf(terminal, TLOG_ID_MAX + 1, "%s", (const char *)sqlite3_column_text(st, 0));
	tlog_done(st);
	if (step == SQLITE_DONE)
		return 0;
	if (step != SQLITE_ROW)
		return tlog_db_err(t, e, "peek");
	r = calloc(max, sizeof *r);
	if (!r)
		return err_set(e, POS_ENOMEM, "tlog: out of memory");
	st = t->st[TQ_PEEK];
	if (sqlite3_bind_text(st, 1, terminal, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, (sqlite3_int64)max) != SQLITE_OK) {
		rc = tlog_db_err(t, e, "bind");
		goto out;
	}
	while (k < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *txn = sqlite3_column_text(st, 1);
		const unsigned char *body = sqlite3_column_text(st, 2);
		int blen = sqlite3_column_bytes(st, 2);

		if (!txn || !body || blen <= 0) {
			rc = err_set(e, POS_EDB, "tlog: damaged row");
			goto out;
		}
		r[k].id = sqlite3_column_int64(st, 0);
		snprintf(r[k].txn, sizeof r[k].txn, "%s", (const char *)txn);
		r[k].body = malloc((size_t)blen + 1);
		if (!r[k].body) {
			rc = err_set(e, POS_ENOMEM, "tlog: out of memory");
			goto out;
		}
		memcpy(r[k].body, body, (size_t)blen);
		r[k].body[blen] = '\0';
		r[k].len = (size_t)blen;
		r[k].attempts = sqlite3_column_int(st, 3);
		k++;
	}
	if (k < max && step != SQLITE_DONE)
		rc = tlog_db_err(t, e, "peek");
out:
	tlog_done(st);
	if (rc < 0) {
		spool_rows_free(r, max);
		return rc;
	}
	if (k == 0) {
		free(r);
		r = NULL;
	}
	*rows = r;
	*n = k;
	return 0;
}

int tlog_stats(struct tlog *t, struct tlog_stats *out, pos_err *e)
{
	sqlite3_stmt *st;
	int rc = 0;

	if (!t || !out)
		return err_set(e, POS_EINVAL, "tlog: not open");
	memset(out, 0, sizeof *out);
	st = t->st[TQ_STATS];
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = tlog_db_err(t, e, "stats");
	} else {
		out->total = (long)sqlite3_column_int64(st, 0);
		out->unsent = (long)sqlite3_column_int64(st, 1);
		out->rejected = (long)sqlite3_column_int64(st, 2);
		out->oldest_unsent_ms = sqlite3_column_int64(st, 3);
	}
	tlog_done(st);
	if (rc < 0)
		return rc;
	st = t->st[TQ_LANES];
	if (sqlite3_step(st) != SQLITE_ROW)
		rc = tlog_db_err(t, e, "stats");
	else
		out->lanes = (long)sqlite3_column_int64(st, 0);
	tlog_done(st);
	return rc;
}

int tlog_report(struct tlog *t, int64_t from_ms, int64_t to_ms, struct tlog_report_row **rows,
		size_t *n, pos_err *e)
{
	struct tlog_report_row *r = NULL, *nr;
	size_t k = 0, cap = 0;
	sqlite3_stmt *st;
	int rc = 0, step;

	if (!t || !rows || !n)
		return err_set(e, POS_EINVAL, "tlog: bad arguments");
	*rows = NULL;
	*n = 0;
	st = t->st[TQ_REPORT];
	if (sqlite3_bind_int64(st, 1, from_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, to_ms) != SQLITE_OK) {
		rc = tlog_db_err(t, e, "bind");
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == cap) {
			cap = cap ? cap * 2 : 32;
			nr = realloc(r, cap * sizeof *r);
			if (!nr) {
				rc = err_set(e, POS_ENOMEM, "tlog: out of memory");
				goto out;
			}
			r = nr;
		}
		memset(&r[k], 0, sizeof r[k]);
		snprintf(r[k].terminal, sizeof r[k].terminal, "%s",
			 (const char *)sqlite3_column_text(st, 0));
		r[k].hour = sqlite3_column_int(st, 1);
		r[k].baskets = (long)sqlite3_column_int64(st, 2);
		r[k].units = (long)sqlite3_column_int64(st, 3);
		r[k].sales_cents = (long long)sqlite3_column_int64(st, 4);
		r[k].households = (long)sqlite3_column_int64(st, 5);
		r[k].offers = (long)sqlite3_column_int64(st, 6);
		k++;
	}
	if (step != SQLITE_DONE)
		rc = tlog_db_err(t, e, "report");
out:
	tlog_done(st);
	if (rc < 0) {
		free(r);
		return rc;
	}
	*rows = r;
	*n = k;
	return 0;
}
