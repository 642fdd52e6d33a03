#include "store_public.h"

#include <string.h>

#include "store_impl.h"

/*
 * store_public.h over db.h, one text for both backends. These statements
 * run on the public listener's requests and the CLI; each is prepared once
 * per connection (store_q) and binds every parameter.
 */

#define SP_RECEIPT_COLS "b.id, b.txn, b.ts, b.store, b.terminal, b.hhid"
#define SP_CONV_COLS "id, kind, txn, store, state, created, updated"
#define SP_CONV_COLS_C "c.id, c.kind, c.txn, c.store, c.state, c.created, c.updated"
#define SP_SMS_REPLIES                                                                          \
	"FROM messages m JOIN conversation_phones p ON p.conversation_id = m.conversation_id "  \
	"JOIN conversations c ON c.id = m.conversation_id WHERE m.id > ?1 AND m.author = "     \
	"'staff' "

static const char SQL_ITEM_PUT[] =
	"INSERT INTO item_master(gtin, name, vendor, category, updated) "
	"VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(gtin) DO UPDATE SET "
	"name = ?2, vendor = ?3, category = ?4, updated = ?5";
static const char SQL_ITEM_GET[] =
	"SELECT gtin, name, vendor, category FROM item_master WHERE gtin = ?1";
static const char SQL_RECEIPT_FIND[] =
	"SELECT " SP_RECEIPT_COLS " FROM receipts r JOIN baskets b "
	"ON b.id = r.basket_id WHERE r.hash = ?1";
/* PostgreSQL: a basket found by txn or by id (a receipt's) takes its id
 * and month from basket_txns (its primary key is txn, id is unique; it
 * is not partitioned), then its row from that month alone, in a LATERAL
 * subquery never flattened (OFFSET 0). By baskets.txn, or by id without
 * ts, every month's index was probed. A txn's UUIDv7 time does not bound
 * the basket's ts (the lane sends both and nothing checks one against the
 * other), so no month can be derived from the txn itself. */
#define SP_BASKET_IN_MONTH(cols)                                                            \
	"CROSS JOIN LATERAL (SELECT " cols " FROM baskets WHERE id = t.id AND ts = t.ts "   \
	"OFFSET 0) b "
#define SP_RECEIPT_B SP_BASKET_IN_MONTH("id, txn, ts, store, terminal, hhid")
static const char SQL_RECEIPT_FIND_PG[] =
	"SELECT " SP_RECEIPT_COLS " FROM receipts r JOIN basket_txns t ON t.id = r.basket_id "
	SP_RECEIPT_B "WHERE r.hash = ?1";
static const char SQL_RECEIPT_BY_TXN[] =
	"SELECT " SP_RECEIPT_COLS " FROM baskets b WHERE b.txn = ?1";
static const char SQL_RECEIPT_BY_TXN_PG[] =
	"SELECT " SP_RECEIPT_COLS " FROM basket_txns t " SP_RECEIPT_B "WHERE t.txn = ?1";
static const char SQL_RECEIPT_LINES[] =
	"SELECT i.gtin, i.qty, i.price_cents, m.name FROM items i "
	"LEFT JOIN item_master m ON m.gtin = i.gtin WHERE i.basket_id = ?1 "
	"ORDER BY i.seq";
/* PostgreSQL: the basket's ts (?2) finds its month, so one partition's
 * index is probed, not every month's. */
static const char SQL_RECEIPT_LINES_PG[] =
	"SELECT i.gtin, i.qty, i.price_cents, m.name FROM items i "
	"LEFT JOIN item_master m ON m.gtin = i.gtin WHERE i.basket_id = ?1 AND i.ts = ?2 "
	"ORDER BY i.seq";
static const char SQL_RECEIPT_OFFERS[] =
	"SELECT o.id, o.title FROM offer_redemptions r JOIN offer_codes c "
	"ON c.code = r.code JOIN offers o ON o.id = c.offer_id "
	"WHERE r.basket_id = ?1 ORDER BY o.id";
static const char SQL_CONV_FIND[] =
	"SELECT " SP_CONV_COLS " FROM conversations WHERE kind = ?1 AND txn = ?2";
static const char SQL_CONV_GET[] = "SELECT " SP_CONV_COLS " FROM conversations WHERE id = ?1";
static const char SQL_CONV_ADD[] =
	"INSERT INTO conversations(kind, txn, store, state, created, updated) "
	"VALUES (?1, ?2, ?3, 'open', ?4, ?4) RETURNING id";
/* A customer writing again reopens a closed conversation; a staff reply
 * leaves its state as it is. */
static const char SQL_CONV_TOUCH[] =
	"UPDATE conversations SET updated = ?2, state = CASE WHEN ?3 = 'customer' "
	"THEN 'open' ELSE state END WHERE id = ?1";
static const char SQL_CONV_CLOSE[] =
	"UPDATE conversations SET state = 'closed', updated = ?2 WHERE id = ?1";
static const char SQL_CONVS_OPEN[] =
	"SELECT " SP_CONV_COLS " FROM conversations WHERE state = 'open' AND "
	"(CAST(?1 AS TEXT) IS NULL OR store = ?1) ORDER BY updated DESC, id DESC LIMIT ?2";
static const char SQL_MSG_ADD[] =
	"INSERT INTO messages(conversation_id, ts, author, staff_id, body) "
	"VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id";
static const char SQL_MSGS[] =
	"SELECT id, ts, author, body FROM messages WHERE conversation_id = ?1 "
	"AND id > ?2 ORDER BY id LIMIT ?3";
static const char SQL_STAFF_ADD[] =
	"INSERT INTO staff(name, store, token_hash, created) VALUES (?1, ?2, ?3, ?4) "
	"RETURNING id";
static const char SQL_STAFF_BY_TOKEN[] =
	"SELECT id, name, store FROM staff WHERE token_hash = ?1";
/* Expired sessions go as new ones come: the table stays small. */
static const char SQL_SESSION_PURGE[] = "DELETE FROM staff_sessions WHERE expires <= ?1";
static const char SQL_SESSION_ADD[] =
	"INSERT INTO staff_sessions(id_hash, staff_id, created, expires) "
	"VALUES (?1, ?2, ?3, ?4)";
static const char SQL_SESSION_STAFF[] =
	"SELECT t.id, t.name, t.store FROM staff_sessions x JOIN staff t "
	"ON t.id = x.staff_id WHERE x.id_hash = ?1 AND x.expires > ?2";
static const char SQL_SESSION_DEL[] = "DELETE FROM staff_sessions WHERE id_hash = ?1";
static const char SQL_DEVICE_LINK[] =
	"INSERT INTO device_households(device_id, hhid, linked) VALUES (?1, ?2, ?3) "
	"ON CONFLICT(device_id, hhid) DO NOTHING";
static const char SQL_SMS_SEEN[] =
	"SELECT m.id, m.conversation_id FROM sms_inbound i JOIN messages m ON "
	"m.id = i.message_id WHERE i.sid = ?1";
static const char SQL_SMS_ADD[] = "INSERT INTO sms_inbound(sid, message_id) VALUES (?1, ?2)";
static const char SQL_SMS_PHONE[] =
	"INSERT INTO conversation_phones(conversation_id, phone_index, kid, "
	"sealed, updated) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(conversation_id) "
	"DO UPDATE SET phone_index = ?2, kid = ?3, sealed = ?4, updated = ?5";
static const char SQL_SMS_LAST_UID[] =
	"SELECT c.txn FROM conversation_phones p JOIN conversations c ON c.id = "
	"p.conversation_id WHERE p.phone_index = ?1 AND c.kind = ?2 ORDER BY "
	"p.updated DESC LIMIT 1";
static const char SQL_CURSOR_GET[] =
	"SELECT position, attempts, coalesce(last_error, ''), updated FROM "
	"outbox_cursors WHERE name = ?1";
static const char SQL_CURSOR_SET[] =
	"INSERT INTO outbox_cursors(name, position, attempts, last_error, updated) "
	"VALUES (?1, ?2, 0, NULL, ?3) ON CONFLICT(name) DO UPDATE SET position = ?2, "
	"attempts = 0, last_error = NULL, updated = ?3";
static const char SQL_CURSOR_FAILED[] =
	"INSERT INTO outbox_cursors(name, position, attempts, last_error, updated) "
	"VALUES (?1, 0, ?2, ?3, ?4) ON CONFLICT(name) DO UPDATE SET attempts = ?2, "
	"last_error = ?3, updated = ?4";
static const char SQL_EVENT_NEXT[] =
	"SELECT " SP_CONV_COLS_C ", m.id, m.ts, m.author, m.body, "
	"CASE WHEN (SELECT min(id) FROM messages WHERE conversation_id = c.id) = m.id "
	"THEN 1 ELSE 0 END "
	"FROM messages m JOIN conversations c ON c.id = m.conversation_id "
	"WHERE m.id > ?1 ORDER BY m.id LIMIT 1";
static const char SQL_EVENTS_AFTER[] = "SELECT count(*) FROM messages WHERE id > ?1";
static const char SQL_SMS_REPLY_NEXT[] =
	"SELECT m.id, c.id, c.txn, p.kid, p.sealed, m.body " SP_SMS_REPLIES
	"ORDER BY m.id LIMIT 1";
static const char SQL_SMS_REPLIES_AFTER[] = "SELECT count(*) " SP_SMS_REPLIES;
/* The household of a conversation: the receipt's basket, else the SMS
 * sender's blind index in tid_index; a merged household's survivor. */
#define SP_CONV_HHID(sale)                                                                  \
	"SELECT coalesce(mg.into_hhid, h.hhid) FROM (SELECT b.hhid AS hhid FROM " sale " "   \
	"AND b.hhid IS NOT NULL "                                                             \
	"UNION ALL SELECT t.hhid FROM conversation_phones p JOIN tid_index t ON "             \
	"t.idx = p.phone_index WHERE p.conversation_id = ?1) h LEFT JOIN merged mg "          \
	"ON mg.from_hhid = h.hhid LIMIT 1"
static const char SQL_CONV_HHID[] =
	SP_CONV_HHID("baskets b WHERE ?2 = 'receipt' AND b.txn = ?3");
/* PostgreSQL: the receipt's basket in its own month (SP_BASKET_IN_MONTH). */
static const char SQL_CONV_HHID_PG[] =
	SP_CONV_HHID("basket_txns t " SP_BASKET_IN_MONTH("hhid") "WHERE ?2 = 'receipt' AND "
		     "t.txn = ?3");
#define SP_FACTS(items)                                                                      \
	"SELECT coalesce(max(ts), 0), "                                                      \
	"coalesce(sum(CASE WHEN ts >= ?2 THEN 1 ELSE 0 END), 0), "                           \
	"coalesce((SELECT sum(i.price_cents * i.qty) FROM " items " "                        \
	"WHERE b2.hhid = ?1 AND b2.ts >= ?2 AND i.price_cents "                              \
	"IS NOT NULL), 0), "                                                                 \
	"(SELECT count(*) FROM offer_redemptions WHERE hhid = ?1) "                          \
	"FROM baskets WHERE hhid = ?1"
static const char SQL_FACTS[] = SP_FACTS("items i JOIN baskets b2 ON b2.id = i.basket_id");
/* PostgreSQL: each basket's items from its own month. */
#define SP_ITEMS_OF(b) "CROSS JOIN " STORE_SQL_ITEMS_OF_PG("gtin, qty, price_cents", b)
static const char SQL_FACTS_PG[] = SP_FACTS("baskets b2 " SP_ITEMS_OF("b2"));
#define SP_FACTS_TOP(items)                                                                  \
	"SELECT im.category FROM " items " "                                                 \
	"JOIN item_master im ON im.gtin = i.gtin WHERE b.hhid = ?1 AND "                     \
	"im.category <> '' GROUP BY im.category ORDER BY sum(i.qty) DESC, "                  \
	"im.category LIMIT ?2"
static const char SQL_FACTS_TOP[] = SP_FACTS_TOP("items i JOIN baskets b ON b.id = i.basket_id");
static const char SQL_FACTS_TOP_PG[] = SP_FACTS_TOP("baskets b " SP_ITEMS_OF("b"));

/* The statement for sql, or the error of preparing it. */
static int sp_q(struct store *s, const char *sql, struct db_stmt **st, pos_err *e)
{
	if (!(*st = store_q(s, sql, e)))
		return e && e->code < 0 ? e->code : POS_EDB;
	return 0;
}

/* db_each's answer for a statement of at most one row read by a row
 * function returning 1: 0 with the row, POS_ENOTFOUND without. */
static int sp_found(int rc, const char *what, pos_err *e)
{
	if (rc == 0)
		return err_set(e, POS_ENOTFOUND, "%s: not found", what);
	return rc < 0 ? rc : 0;
}

/* Row function: the first column as an id into *(int64_t *)arg. */
static int sp_id_row(struct db_stmt *st, void *arg)
{
	*(int64_t *)arg = db_col_int64(st, 0);
	return 1;
}

/* Runs an INSERT .. RETURNING id. */
static int sp_insert_id(struct db_stmt *st, int64_t *id, const char *what, pos_err *e)
{
	return sp_found(db_each(st, sp_id_row, id, e), what, e);
}

/* ------------------------------------------------------------ items */

int store_item_put(struct store *s, const struct store_item_master *it, int64_t now_ms,
		   pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_ITEM_PUT, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, it->gtin);
	db_bind_text(st, 2, it->name);
	db_bind_text(st, 3, it->vendor);
	db_bind_text(st, 4, it->category);
	db_bind_int64(st, 5, now_ms);
	return db_run(st, e);
}

static int sp_item_row(struct db_stmt *st, void *arg)
{
	struct store_item_master *out = arg;

	db_col_copy(st, 0, out->gtin, sizeof out->gtin);
	db_col_copy(st, 1, out->name, sizeof out->name);
	db_col_copy(st, 2, out->vendor, sizeof out->vendor);
	db_col_copy(st, 3, out->category, sizeof out->category);
	return 1;
}

int store_item_get(struct store *s, const char *gtin, struct store_item_master *out, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = sp_q(s, SQL_ITEM_GET, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, gtin);
	return sp_found(db_each(st, sp_item_row, out, e), "item", e);
}

/* ------------------------------------------------------------ receipts */

static int sp_receipt_row(struct db_stmt *st, void *arg)
{
	struct store_receipt *out = arg;

	out->basket_id = db_col_int64(st, 0);
	db_col_copy(st, 1, out->txn, sizeof out->txn);
	out->ts_ms = db_col_int64(st, 2);
	db_col_copy(st, 3, out->store, sizeof out->store);
	db_col_copy(st, 4, out->terminal, sizeof out->terminal);
	db_col_copy(st, 5, out->hhid, sizeof out->hhid);
	return 1;
}

int store_receipt_find(struct store *s, const unsigned char hash[32], struct store_receipt *out,
		       pos_err *e)
{
	struct db_stmt *st;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = sp_q(s, store_sql(s, SQL_RECEIPT_FIND, SQL_RECEIPT_FIND_PG), &st, e)) < 0)
		return rc;
	db_bind_blob(st, 1, hash, 32);
	return sp_found(db_each(st, sp_receipt_row, out, e), "receipt", e);
}

int store_receipt_by_txn(struct store *s, const char *txn, struct store_receipt *out,
			 pos_err *e)
{
	struct db_stmt *st;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = sp_q(s, store_sql(s, SQL_RECEIPT_BY_TXN, SQL_RECEIPT_BY_TXN_PG), &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, txn);
	return sp_found(db_each(st, sp_receipt_row, out, e), "basket", e);
}

struct sp_lines {
	int (*fn)(const struct store_receipt_line *l, void *arg);
	void *arg;
};

static int sp_line_row(struct db_stmt *st, void *arg)
{
	struct sp_lines *w = arg;
	struct store_receipt_line l;

	memset(&l, 0, sizeof l);
	db_col_copy(st, 0, l.gtin, sizeof l.gtin);
	l.qty = (int)db_col_int64(st, 1);
	l.price_cents = db_col_null(st, 2) ? -1 : (long)db_col_int64(st, 2);
	db_col_copy(st, 3, l.name, sizeof l.name);
	return w->fn(&l, w->arg);
}

int store_receipt_lines(struct store *s, int64_t basket_id, int64_t ts_ms,
			int (*fn)(const struct store_receipt_line *l, void *arg), void *arg,
			pos_err *e)
{
	struct sp_lines w = { fn, arg };
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, store_sql(s, SQL_RECEIPT_LINES, SQL_RECEIPT_LINES_PG), &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, basket_id);
	if (store_backend(s) == DB_POSTGRESQL)
		db_bind_int64(st, 2, ts_ms);
	return db_each(st, sp_line_row, &w, e);
}

struct sp_offers {
	int (*fn)(const char *offer_id, const char *title, void *arg);
	void *arg;
};

static int sp_offer_row(struct db_stmt *st, void *arg)
{
	struct sp_offers *w = arg;
	char id[STORE_OFFER_ID_LEN + 1], title[STORE_OFFER_TITLE_MAX + 1];

	db_col_copy(st, 0, id, sizeof id);
	db_col_copy(st, 1, title, sizeof title);
	return w->fn(id, title, w->arg);
}

int store_receipt_offers(struct store *s, int64_t basket_id,
			 int (*fn)(const char *offer_id, const char *title, void *arg), void *arg,
			 pos_err *e)
{
	struct sp_offers w = { fn, arg };
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_RECEIPT_OFFERS, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, basket_id);
	return db_each(st, sp_offer_row, &w, e);
}

/* ------------------------------------------------------------ conversations */

/* The SP_CONV_COLS, first in every row that has them. */
static void sp_conv(struct db_stmt *st, struct store_conversation *c)
{
	const char *state = db_col_text(st, 4);

	memset(c, 0, sizeof *c);
	c->id = db_col_int64(st, 0);
	db_col_copy(st, 1, c->kind, sizeof c->kind);
	db_col_copy(st, 2, c->txn, sizeof c->txn);
	db_col_copy(st, 3, c->store, sizeof c->store);
	c->open = state && strcmp(state, "open") == 0;
	c->created_ms = db_col_int64(st, 5);
	c->updated_ms = db_col_int64(st, 6);
}

static int sp_conv_row(struct db_stmt *st, void *arg)
{
	sp_conv(st, arg);
	return 1;
}

int store_conversation_find(struct store *s, const char *kind, const char *txn,
			    struct store_conversation *out, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_CONV_FIND, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, kind);
	db_bind_text(st, 2, txn);
	return sp_found(db_each(st, sp_conv_row, out, e), "conversation", e);
}

int store_conversation_get(struct store *s, int64_t id, struct store_conversation *out,
			   pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_CONV_GET, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, id);
	return sp_found(db_each(st, sp_conv_row, out, e), "conversation", e);
}

/* The message row and the conversation's activity, inside the caller's unit. */
static int sp_message_insert(struct store *s, int64_t conv, const char *author, int64_t staff_id,
			     const char *body, int64_t now_ms, int64_t *msg_id, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_MSG_ADD, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, conv);
	db_bind_int64(st, 2, now_ms);
	db_bind_text(st, 3, author);
	if (staff_id > 0)
		db_bind_int64(st, 4, staff_id);
	else
		db_bind_null(st, 4);
	db_bind_text(st, 5, body);
	if ((rc = sp_insert_id(st, msg_id, "message insert", e)) < 0)
		return rc;
	if ((rc = sp_q(s, SQL_CONV_TOUCH, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, conv);
	db_bind_int64(st, 2, now_ms);
	db_bind_text(st, 3, author);
	return db_run(st, e);
}

int store_message_add_keyed(struct store *s, const char *kind, const char *txn,
			    const char *store, const char *author, const char *body,
			    int64_t now_ms, int64_t *conv_id, int64_t *msg_id, pos_err *e)
{
	struct store_conversation c;
	struct db_stmt *st;
	int rc;

	if ((rc = store_unit_begin(s, e)) < 0)
		return rc;
	rc = store_conversation_find(s, kind, txn, &c, e);
	if (rc == POS_ENOTFOUND) {
		if ((rc = sp_q(s, SQL_CONV_ADD, &st, e)) < 0)
			goto out;
		db_bind_text(st, 1, kind);
		db_bind_text(st, 2, txn);
		db_bind_opt_text(st, 3, store);
		db_bind_int64(st, 4, now_ms);
		if ((rc = sp_insert_id(st, &c.id, "conversation insert", e)) < 0)
			goto out;
	} else if (rc < 0) {
		goto out;
	}
	*conv_id = c.id;
	rc = sp_message_insert(s, c.id, author, 0, body, now_ms, msg_id, e);
out:
	return store_unit_finish(s, rc, e);
}

int store_message_add(struct store *s, int64_t conv, const char *author, int64_t staff_id,
		      const char *body, int64_t now_ms, int64_t *msg_id, pos_err *e)
{
	struct store_conversation c;
	int rc;

	if ((rc = store_unit_begin(s, e)) < 0)
		return rc;
	if ((rc = store_conversation_get(s, conv, &c, e)) == 0)
		rc = sp_message_insert(s, conv, author, staff_id, body, now_ms, msg_id, e);
	return store_unit_finish(s, rc, e);
}

struct sp_msgs {
	int (*fn)(const struct store_message *m, void *arg);
	void *arg;
};

static int sp_msg_row(struct db_stmt *st, void *arg)
{
	struct sp_msgs *w = arg;
	struct store_message m;

	memset(&m, 0, sizeof m);
	m.id = db_col_int64(st, 0);
	m.ts_ms = db_col_int64(st, 1);
	db_col_copy(st, 2, m.author, sizeof m.author);
	m.body = db_col_text(st, 3);
	if (!m.body)
		m.body = "";
	return w->fn(&m, w->arg);
}

int store_messages(struct store *s, int64_t conv, int64_t after, int limit,
		   int (*fn)(const struct store_message *m, void *arg), void *arg, pos_err *e)
{
	struct sp_msgs w = { fn, arg };
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_MSGS, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, conv);
	db_bind_int64(st, 2, after);
	db_bind_int64(st, 3, limit);
	return db_each(st, sp_msg_row, &w, e);
}

struct sp_convs {
	int (*fn)(const struct store_conversation *c, void *arg);
	void *arg;
};

static int sp_convs_row(struct db_stmt *st, void *arg)
{
	struct sp_convs *w = arg;
	struct store_conversation c;

	sp_conv(st, &c);
	return w->fn(&c, w->arg);
}

int store_conversations_open(struct store *s, const char *store, int limit,
			     int (*fn)(const struct store_conversation *c, void *arg), void *arg,
			     pos_err *e)
{
	struct sp_convs w = { fn, arg };
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_CONVS_OPEN, &st, e)) < 0)
		return rc;
	db_bind_opt_text(st, 1, store);
	db_bind_int64(st, 2, limit);
	return db_each(st, sp_convs_row, &w, e);
}

int store_conversation_close(struct store *s, int64_t id, int64_t now_ms, pos_err *e)
{
	struct store_conversation c;
	struct db_stmt *st;
	int rc;

	if ((rc = store_unit_begin(s, e)) < 0)
		return rc;
	if ((rc = store_conversation_get(s, id, &c, e)) < 0)
		goto out;
	if (!c.open) {
		rc = err_set(e, POS_ECONFLICT, "the conversation is closed already");
		goto out;
	}
	if ((rc = sp_q(s, SQL_CONV_CLOSE, &st, e)) < 0)
		goto out;
	db_bind_int64(st, 1, id);
	db_bind_int64(st, 2, now_ms);
	rc = db_run(st, e);
out:
	return store_unit_finish(s, rc, e);
}

/* ------------------------------------------------------------ staff */

int store_staff_add(struct store *s, const char *name, const char *store,
		    const unsigned char token_hash[32], int64_t now_ms, int64_t *id, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_STAFF_ADD, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, name);
	db_bind_opt_text(st, 2, store);
	db_bind_blob(st, 3, token_hash, 32);
	db_bind_int64(st, 4, now_ms);
	return sp_insert_id(st, id, "staff insert", e);
}

static int sp_staff_row(struct db_stmt *st, void *arg)
{
	struct store_staff *out = arg;

	memset(out, 0, sizeof *out);
	out->id = db_col_int64(st, 0);
	db_col_copy(st, 1, out->name, sizeof out->name);
	db_col_copy(st, 2, out->store, sizeof out->store);
	return 1;
}

int store_staff_by_token(struct store *s, const unsigned char token_hash[32],
			 struct store_staff *out, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_STAFF_BY_TOKEN, &st, e)) < 0)
		return rc;
	db_bind_blob(st, 1, token_hash, 32);
	return sp_found(db_each(st, sp_staff_row, out, e), "staff", e);
}

int store_session_add(struct store *s, const unsigned char id_hash[32], int64_t staff_id,
		      int64_t now_ms, int64_t expires_ms, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = store_unit_begin(s, e)) < 0)
		return rc;
	if ((rc = sp_q(s, SQL_SESSION_PURGE, &st, e)) < 0)
		goto out;
	db_bind_int64(st, 1, now_ms);
	if ((rc = db_run(st, e)) < 0)
		goto out;
	if ((rc = sp_q(s, SQL_SESSION_ADD, &st, e)) < 0)
		goto out;
	db_bind_blob(st, 1, id_hash, 32);
	db_bind_int64(st, 2, staff_id);
	db_bind_int64(st, 3, now_ms);
	db_bind_int64(st, 4, expires_ms);
	rc = db_run(st, e);
out:
	return store_unit_finish(s, rc, e);
}

int store_session_staff(struct store *s, const unsigned char id_hash[32], int64_t now_ms,
			struct store_staff *out, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_SESSION_STAFF, &st, e)) < 0)
		return rc;
	db_bind_blob(st, 1, id_hash, 32);
	db_bind_int64(st, 2, now_ms);
	return sp_found(db_each(st, sp_staff_row, out, e), "session", e);
}

int store_session_del(struct store *s, const unsigned char id_hash[32], pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_SESSION_DEL, &st, e)) < 0)
		return rc;
	db_bind_blob(st, 1, id_hash, 32);
	return db_run(st, e);
}

/* ------------------------------------------------------------ devices */

int store_device_link(struct store *s, int64_t device, const char *hhid, int64_t now_ms,
		      bool *created, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_DEVICE_LINK, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, device);
	db_bind_text(st, 2, hhid);
	db_bind_int64(st, 3, now_ms);
	if ((rc = db_run(st, e)) < 0)
		return rc;
	*created = db_changes(st) > 0;
	return 0;
}

/* ------------------------------------------------------------ SMS */

struct sp_seen {
	int64_t msg, conv;
};

static int sp_seen_row(struct db_stmt *st, void *arg)
{
	struct sp_seen *o = arg;

	o->msg = db_col_int64(st, 0);
	o->conv = db_col_int64(st, 1);
	return 1;
}

int store_sms_inbound(struct store *s, const struct store_sms_in *in, int64_t *conv,
		      int64_t *msg, bool *dup, pos_err *e)
{
	struct sp_seen seen;
	struct db_stmt *st;
	int rc;

	*dup = false;
	if ((rc = store_unit_begin(s, e)) < 0)
		return rc;
	if ((rc = sp_q(s, SQL_SMS_SEEN, &st, e)) < 0)
		goto out;
	db_bind_text(st, 1, in->sid);
	rc = sp_found(db_each(st, sp_seen_row, &seen, e), "sms message", e);
	if (rc == 0) {
		*msg = seen.msg;
		*conv = seen.conv;
		*dup = true;
		goto out;
	}
	if (rc != POS_ENOTFOUND)
		goto out;
	if ((rc = store_message_add_keyed(s, STORE_CONV_VISITOR, in->uid, NULL, "customer",
					  in->body, in->now_ms, conv, msg, e)) < 0)
		goto out;
	if ((rc = sp_q(s, SQL_SMS_ADD, &st, e)) < 0)
		goto out;
	db_bind_text(st, 1, in->sid);
	db_bind_int64(st, 2, *msg);
	if ((rc = db_run(st, e)) < 0)
		goto out;
	if ((rc = sp_q(s, SQL_SMS_PHONE, &st, e)) < 0)
		goto out;
	db_bind_int64(st, 1, *conv);
	db_bind_blob(st, 2, in->phone_index, 32);
	db_bind_text(st, 3, in->kid);
	db_bind_text(st, 4, in->sealed);
	db_bind_int64(st, 5, in->now_ms);
	rc = db_run(st, e);
out:
	return store_unit_finish(s, rc, e);
}

static int sp_uid_row(struct db_stmt *st, void *arg)
{
	db_col_copy(st, 0, arg, 37);
	return 1;
}

int store_sms_last_uid(struct store *s, const unsigned char phone_index[32], char uid[37],
		       pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_SMS_LAST_UID, &st, e)) < 0)
		return rc;
	db_bind_blob(st, 1, phone_index, 32);
	db_bind_text(st, 2, STORE_CONV_VISITOR);
	return sp_found(db_each(st, sp_uid_row, uid, e), "sms sender", e);
}

/* ------------------------------------------------------------ outboxes */

static int sp_cursor_row(struct db_stmt *st, void *arg)
{
	struct store_cursor *out = arg;

	out->position = db_col_int64(st, 0);
	out->attempts = (long)db_col_int64(st, 1);
	db_col_copy(st, 2, out->last_error, sizeof out->last_error);
	out->updated_ms = db_col_int64(st, 3);
	return 1;
}

int store_cursor_get(struct store *s, const char *name, struct store_cursor *out, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = sp_q(s, SQL_CURSOR_GET, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, name);
	rc = db_each(st, sp_cursor_row, out, e);
	return rc < 0 ? rc : 0;
}

int store_cursor_set(struct store *s, const char *name, int64_t position, int64_t now_ms,
		     pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_CURSOR_SET, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, name);
	db_bind_int64(st, 2, position);
	db_bind_int64(st, 3, now_ms);
	return db_run(st, e);
}

int store_cursor_failed(struct store *s, const char *name, long attempts, const char *error,
			int64_t now_ms, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_CURSOR_FAILED, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, name);
	db_bind_int64(st, 2, attempts);
	db_bind_text(st, 3, error);
	db_bind_int64(st, 4, now_ms);
	return db_run(st, e);
}

/* The caller's callback of a one-row walk and its answer: the row
 * function returns 1 so that db_each tells a row from none. */
struct sp_event_walk {
	int (*fn)(const struct store_event *ev, void *arg);
	void *arg;
	int rc;
};

static int sp_event_row(struct db_stmt *st, void *arg)
{
	struct sp_event_walk *w = arg;
	struct store_event ev;

	memset(&ev, 0, sizeof ev);
	sp_conv(st, &ev.c);
	ev.msg_id = db_col_int64(st, 7);
	ev.ts_ms = db_col_int64(st, 8);
	db_col_copy(st, 9, ev.author, sizeof ev.author);
	ev.body = db_col_text(st, 10);
	if (!ev.body)
		ev.body = "";
	ev.first = db_col_int64(st, 11) != 0;
	w->rc = w->fn(&ev, w->arg);
	return 1;
}

int store_event_next(struct store *s, int64_t after,
		     int (*fn)(const struct store_event *ev, void *arg), void *arg, pos_err *e)
{
	struct sp_event_walk w = { fn, arg, 0 };
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_EVENT_NEXT, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, after);
	if ((rc = sp_found(db_each(st, sp_event_row, &w, e), "event", e)) < 0)
		return rc;
	return w.rc;
}

static int sp_count(struct store *s, const char *sql, int64_t after, int64_t *count, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, sql, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, after);
	return sp_found(db_each(st, sp_id_row, count, e), "count", e);
}

int store_events_after(struct store *s, int64_t after, int64_t *count, pos_err *e)
{
	return sp_count(s, SQL_EVENTS_AFTER, after, count, e);
}

struct sp_reply_walk {
	int (*fn)(const struct store_sms_reply *r, void *arg);
	void *arg;
	int rc;
};

static int sp_reply_row(struct db_stmt *st, void *arg)
{
	struct sp_reply_walk *w = arg;
	struct store_sms_reply r;

	memset(&r, 0, sizeof r);
	r.msg_id = db_col_int64(st, 0);
	r.conv_id = db_col_int64(st, 1);
	db_col_copy(st, 2, r.uid, sizeof r.uid);
	db_col_copy(st, 3, r.kid, sizeof r.kid);
	db_col_copy(st, 4, r.sealed, sizeof r.sealed);
	r.body = db_col_text(st, 5);
	if (!r.body)
		r.body = "";
	w->rc = w->fn(&r, w->arg);
	return 1;
}

int store_sms_reply_next(struct store *s, int64_t after,
			 int (*fn)(const struct store_sms_reply *r, void *arg), void *arg,
			 pos_err *e)
{
	struct sp_reply_walk w = { fn, arg, 0 };
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, SQL_SMS_REPLY_NEXT, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, after);
	if ((rc = sp_found(db_each(st, sp_reply_row, &w, e), "sms reply", e)) < 0)
		return rc;
	return w.rc;
}

int store_sms_replies_after(struct store *s, int64_t after, int64_t *count, pos_err *e)
{
	return sp_count(s, SQL_SMS_REPLIES_AFTER, after, count, e);
}

static int sp_hhid_row(struct db_stmt *st, void *arg)
{
	db_col_copy(st, 0, arg, DEIDENT_ID_LEN + 1);
	return 1;
}

static int sp_conv_hhid(struct store *s, const struct store_conversation *c, char *hhid,
			pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sp_q(s, store_sql(s, SQL_CONV_HHID, SQL_CONV_HHID_PG), &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, c->id);
	db_bind_text(st, 2, c->kind);
	db_bind_text(st, 3, c->txn);
	return sp_found(db_each(st, sp_hhid_row, hhid, e), "household", e);
}

static int sp_facts_row(struct db_stmt *st, void *arg)
{
	struct store_facts *out = arg;

	out->last_visit_ms = db_col_int64(st, 0);
	out->visits_90d = (long)db_col_int64(st, 1);
	out->spend_90d_cents = (long)db_col_int64(st, 2);
	out->offers_redeemed = (long)db_col_int64(st, 3);
	return 1;
}

static int sp_top_row(struct db_stmt *st, void *arg)
{
	struct store_facts *out = arg;

	if (out->ntop < STORE_FACTS_TOP)
		db_col_copy(st, 0, out->top[out->ntop++], sizeof out->top[0]);
	return 0;
}

int store_conversation_facts(struct store *s, const struct store_conversation *c,
			     int64_t now_ms, struct store_facts *out, pos_err *e)
{
	int64_t since = now_ms - 90LL * 86400000;
	struct db_stmt *st;
	int rc;

	memset(out, 0, sizeof *out);
	rc = sp_conv_hhid(s, c, out->hhid, e);
	if (rc == POS_ENOTFOUND || (rc == 0 && !out->hhid[0]))
		return 0;
	if (rc < 0)
		return rc;
	out->known = true;
	if ((rc = sp_q(s, store_sql(s, SQL_FACTS, SQL_FACTS_PG), &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, out->hhid);
	db_bind_int64(st, 2, since);
	if ((rc = sp_found(db_each(st, sp_facts_row, out, e), "facts", e)) < 0)
		return rc;
	if ((rc = sp_q(s, store_sql(s, SQL_FACTS_TOP, SQL_FACTS_TOP_PG), &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, out->hhid);
	db_bind_int64(st, 2, STORE_FACTS_TOP);
	return db_each(st, sp_top_row, out, e);
}
