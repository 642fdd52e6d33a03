#include "store_vendor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"
#include "store_public.h"
#include "timeutil.h"

/*
 * store_vendor.h over db.h, one text for both backends. Each statement
 * is prepared once per connection (store_q) and binds every parameter.
 * Each public call is one unit (a savepoint inside the writer's group, or
 * its own transaction on the CLI and the outbox).
 */

#define SV_LINKED_HH                                                                  \
	"SELECT hhid FROM device_households WHERE device_id = ?1 "                  \
	"UNION SELECT r.hhid FROM offer_redemptions r JOIN offer_codes c ON c.code = r.code " \
	"WHERE c.device_id = ?1 AND r.hhid IS NOT NULL"
#define SV_VENDOR_COLS "id, name, backend, secret"

static const char SQL_VENDOR_ADD[] =
	"INSERT INTO vendors(id, name, backend, token_hash, secret, created) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO NOTHING";
static const char SQL_VENDOR_BY_TOKEN[] =
	"SELECT " SV_VENDOR_COLS " FROM vendors WHERE token_hash = ?1";
static const char SQL_NONCE_PURGE[] = "DELETE FROM vendor_nonces WHERE ts < ?1";
static const char SQL_NONCE_ADD[] =
	"INSERT INTO vendor_nonces(vendor, ts, hash) VALUES (?1, ?2, ?3) "
	"ON CONFLICT DO NOTHING";
static const char SQL_RELATION_PUT[] =
	"INSERT INTO item_relations(gtin_a, gtin_b, kind) VALUES (?1, ?2, ?3) "
	"ON CONFLICT(gtin_a, gtin_b) DO UPDATE SET kind = excluded.kind";
static const char SQL_ACTIVITY_GET[] =
	"SELECT txn, gtin, kind, at FROM activities WHERE vendor = ?1 AND ref = ?2";
static const char SQL_ACTIVITY_SALE[] =
	"SELECT b.hhid, CASE WHEN EXISTS (SELECT 1 FROM items i WHERE i.basket_id = b.id "
	"AND i.gtin = ?2) THEN 1 ELSE 0 END FROM baskets b WHERE b.txn = ?1";
/* PostgreSQL: the sale's id and month from basket_txns (one primary-key
 * probe; it is not partitioned), its row from that month alone, and its
 * item from the same month, each in a LATERAL subquery that is never
 * flattened (OFFSET 0, LIMIT 1). By baskets.txn, every month's txn index
 * was probed; as EXISTS, the planner may hash every month's rows of the
 * GTIN instead. A txn's UUIDv7 time does not bound the basket's ts (the
 * lane sends both and nothing checks one against the other), so no ts
 * range can be derived from the txn itself. */
static const char SQL_ACTIVITY_SALE_PG[] =
	"SELECT b.hhid, CASE WHEN i.basket_id IS NULL THEN 0 ELSE 1 END FROM basket_txns t "
	"CROSS JOIN LATERAL (SELECT id, ts, hhid FROM baskets WHERE id = t.id AND ts = t.ts "
	"OFFSET 0) b LEFT JOIN LATERAL (SELECT basket_id FROM items WHERE basket_id = b.id "
	"AND ts = b.ts AND gtin = ?2 LIMIT 1) i ON true WHERE t.txn = ?1";
static const char SQL_ACTIVITY_ADD[] =
	"INSERT INTO activities(vendor, ref, txn, hhid, gtin, kind, at, state, created) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?8)";
static const char SQL_MESSAGE_ADD[] =
	"INSERT INTO hh_messages(hhid, vendor, event_id, kind, text, activity_id, "
	"state, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id";
static const char SQL_OUTBOX_ADD[] =
	"INSERT INTO outbox(kind, message_id, activity_id, body, idem, next) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(idem) DO NOTHING";
static const char SQL_DELAY_RELATED[] =
	"SELECT a.id, a.kind, a.at FROM activities a WHERE a.hhid = ?1 "
	"AND a.vendor <> ?2 AND a.state = 'active' AND a.at < ?3 AND (a.gtin = ?4 "
	"OR EXISTS (SELECT 1 FROM item_relations r WHERE r.kind IN ('requires', 'learned') AND "
	"((r.gtin_a = a.gtin AND r.gtin_b = ?4) OR (r.gtin_a = ?4 AND r.gtin_b = a.gtin)))) "
	"ORDER BY a.id LIMIT 64";
static const char SQL_EVENT_GET[] =
	"SELECT households FROM vendor_events WHERE vendor = ?1 AND id = ?2";
static const char SQL_ITEM_OWNER[] = "SELECT vendor FROM item_master WHERE gtin = ?1";
/* The parameters in the select list are cast: PostgreSQL types them from
 * there, not from the columns they are inserted into. */
#define SV_RECALL_MESSAGES(bought)                                                           \
	"INSERT INTO hh_messages(hhid, vendor, event_id, kind, text, state, created) "      \
	"SELECT DISTINCT b.hhid, CAST(?1 AS TEXT), CAST(?2 AS TEXT), 'recall', "            \
	"CAST(?3 AS TEXT), 'open', CAST(?4 AS BIGINT) "                                     \
	"FROM " bought " WHERE i.gtin = ?5 AND b.hhid IS NOT NULL"
static const char SQL_RECALL_MESSAGES[] =
	SV_RECALL_MESSAGES("baskets b JOIN items i ON i.basket_id = b.id");
/* PostgreSQL: the item's rows by the gtin index, each row's basket from
 * its own month (ts = i.ts) in a LATERAL subquery with OFFSET 0, never
 * flattened into a join, so one partition's primary key is probed per
 * row: as a plain join every month's baskets were probed per row (or, on
 * small tables, scanned). */
static const char SQL_RECALL_MESSAGES_PG[] =
	SV_RECALL_MESSAGES("items i CROSS JOIN LATERAL (SELECT hhid FROM baskets "
			   "WHERE id = i.basket_id AND ts = i.ts OFFSET 0) b");
static const char SQL_EVENT_ACTIVITY[] =
	"SELECT id, hhid, gtin FROM activities WHERE vendor = ?1 AND ref = ?2";
static const char SQL_ACTIVITY_AT[] = "UPDATE activities SET at = ?2 WHERE id = ?1";
static const char SQL_ACTIVITY_CANCEL[] =
	"UPDATE activities SET state = 'cancelled' WHERE id = ?1";
static const char SQL_EVENT_ADD[] =
	"INSERT INTO vendor_events(vendor, id, kind, gtin, activity, new_at, text, "
	"households, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_MESSAGES[] =
	"SELECT m.id, m.kind, m.text, m.state, m.options, m.chosen, m.created, "
	"a.kind, a.at, v.name FROM hh_messages m "
	"LEFT JOIN activities a ON a.id = m.activity_id "
	"LEFT JOIN vendors v ON v.id = m.vendor "
	"WHERE m.hhid IN (" SV_LINKED_HH ") ORDER BY m.id DESC LIMIT ?2";
static const char SQL_MESSAGES_READ[] =
	"UPDATE hh_messages SET read = ?2 WHERE read IS NULL AND hhid IN (" SV_LINKED_HH ")";
static const char SQL_MESSAGE_GET[] =
	"SELECT hhid, state, chosen, text, activity_id, options FROM hh_messages "
	"WHERE id = ?2 AND hhid IN (" SV_LINKED_HH ")";
static const char SQL_MESSAGE_CHOSEN[] =
	"UPDATE hh_messages SET state = 'chosen', chosen = ?2, acted = ?3 WHERE id = ?1";
static const char SQL_SUPPORT_SALE[] =
	"SELECT b.txn, b.store FROM activities a JOIN baskets b ON b.txn = a.txn "
	"WHERE a.id = ?1";
/* PostgreSQL: the sale's id and month from basket_txns, its row from that
 * month alone (as SQL_ACTIVITY_SALE_PG), not by every month's txn index. */
static const char SQL_SUPPORT_SALE_PG[] =
	"SELECT t.txn, b.store FROM activities a JOIN basket_txns t ON t.txn = a.txn "
	"CROSS JOIN LATERAL (SELECT store FROM baskets WHERE id = t.id AND ts = t.ts "
	"OFFSET 0) b WHERE a.id = ?1";
static const char SQL_MESSAGE_ACTED[] =
	"UPDATE hh_messages SET acted = coalesce(acted, ?2) WHERE id = ?1";
static const char SQL_OUTBOX_DUE[] =
	"SELECT o.id, o.kind, o.message_id, o.activity_id, o.body, o.idem, o.attempts, "
	"a.ref, a.hhid, v.id, v.name, v.backend, v.secret FROM outbox o "
	"JOIN activities a ON a.id = o.activity_id JOIN vendors v ON v.id = a.vendor "
	"WHERE o.done IS NULL AND o.next <= ?1 ORDER BY o.next LIMIT ?2";
static const char SQL_OUTBOX_RETRY[] =
	"UPDATE outbox SET attempts = attempts + 1, next = ?2 WHERE id = ?1";
static const char SQL_OUTBOX_DONE[] = "UPDATE outbox SET done = ?2 WHERE id = ?1";
static const char SQL_MESSAGE_OPTIONS[] =
	"UPDATE hh_messages SET options = ?2, state = 'open' "
	"WHERE id = ?1 AND state = 'options_pending'";
static const char SQL_MESSAGE_STATE[] = "UPDATE hh_messages SET state = ?2 WHERE id = ?1";
static const char SQL_OUTBOX_PENDING[] = "SELECT count(*) FROM outbox WHERE done IS NULL";
#define SV_ITEMS_RELATED(x, x_items)                                                        \
	"WITH x AS (" x "), "                                                                \
	"co AS (SELECT i.gtin, count(DISTINCT i.basket_id) AS c FROM " x_items " "         \
	"WHERE i.gtin <> ?1 GROUP BY i.gtin "                                                \
	"  HAVING count(DISTINCT i.basket_id) >= ?2), "                                     \
	"ny AS (SELECT gtin, count(DISTINCT basket_id) AS c FROM items "                    \
	"  WHERE gtin IN (SELECT gtin FROM co) GROUP BY gtin), "                            \
	"r AS (SELECT co.gtin, co.c, (co.c * 1.0 * (SELECT count(*) FROM baskets)) / "      \
	"  ((SELECT count(*) FROM x) * ny.c) AS lift FROM co JOIN ny ON ny.gtin = co.gtin) " \
	"SELECT r.gtin, r.c, r.lift, coalesce(m.name, '') FROM r "                          \
	"LEFT JOIN item_master m ON m.gtin = r.gtin WHERE r.lift >= ?3 "                    \
	"ORDER BY r.lift DESC, r.gtin LIMIT ?4"
static const char SQL_ITEMS_RELATED[] =
	SV_ITEMS_RELATED("SELECT DISTINCT basket_id FROM items WHERE gtin = ?1",
			 "items i JOIN x ON x.basket_id = i.basket_id");
/* PostgreSQL: the baskets of the GTIN (x) carry their month, and each
 * one's items are read from that month alone (STORE_SQL_ITEMS_OF_PG); as
 * a join on basket_id, every month's items were probed per basket. ny
 * still reads every row of the co-purchased GTINs in every month: the
 * lift needs each one's basket count. */
static const char SQL_ITEMS_RELATED_PG[] =
	SV_ITEMS_RELATED("SELECT DISTINCT basket_id AS id, ts FROM items WHERE gtin = ?1",
			 "x CROSS JOIN " STORE_SQL_ITEMS_OF_PG("gtin, basket_id", "x"));
static const char SQL_VENDOR_REPORT[] =
	"SELECT (SELECT count(*) FROM vendor_events WHERE id = ?1), "
	"count(DISTINCT hhid), count(DISTINCT CASE WHEN read IS NOT NULL THEN hhid END), "
	"count(DISTINCT CASE WHEN acted IS NOT NULL THEN hhid END) "
	"FROM hh_messages WHERE event_id = ?1";

/* The statement for sql, or the error of preparing it. */
static int sv_q(struct store *s, const char *sql, struct db_stmt **st, pos_err *e)
{
	if (!(*st = store_q(s, sql, e)))
		return e && e->code < 0 ? e->code : POS_EDB;
	return 0;
}

/* ------------------------------------------------------------ vendors */

static int sv_vendor_add(struct store *s, const struct store_vendor *v,
			 const unsigned char token_hash[32], int64_t now_ms, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sv_q(s, SQL_VENDOR_ADD, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, v->id);
	db_bind_text(st, 2, v->name);
	db_bind_text(st, 3, v->backend);
	db_bind_blob(st, 4, token_hash, 32);
	db_bind_text(st, 5, v->secret);
	db_bind_int64(st, 6, now_ms);
	if ((rc = db_run(st, e)) < 0)
		return rc;
	/* DO NOTHING: the id was taken. */
	return db_changes(st) == 0 ? err_set(e, POS_ECONFLICT, "vendor '%s' exists already", v->id)
				   : 0;
}

int store_vendor_add(struct store *s, const struct store_vendor *v,
		     const unsigned char token_hash[32], int64_t now_ms, pos_err *e)
{
	int rc = store_unit_begin(s, e);

	if (rc < 0)
		return rc;
	rc = sv_vendor_add(s, v, token_hash, now_ms, e);
	return store_unit_finish(s, rc, e);
}

/* The SV_VENDOR_COLS from column at on. */
static void sv_vendor_cols(struct db_stmt *st, int at, struct store_vendor *out)
{
	db_col_copy(st, at, out->id, sizeof out->id);
	db_col_copy(st, at + 1, out->name, sizeof out->name);
	db_col_copy(st, at + 2, out->backend, sizeof out->backend);
	db_col_copy(st, at + 3, out->secret, sizeof out->secret);
}

static int sv_vendor_row(struct db_stmt *st, void *arg)
{
	sv_vendor_cols(st, 0, arg);
	return 1;
}

int store_vendor_by_token(struct store *s, const unsigned char token_hash[32],
			  struct store_vendor *out, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sv_q(s, SQL_VENDOR_BY_TOKEN, &st, e)) < 0)
		return rc;
	db_bind_blob(st, 1, token_hash, 32);
	if ((rc = db_each(st, sv_vendor_row, out, e)) == 0)
		return err_set(e, POS_ENOTFOUND, "no vendor has this token");
	return rc < 0 ? rc : 0;
}

static int sv_nonce(struct store *s, const char *vendor, int64_t ts_s,
		    const unsigned char body_hash[32], int64_t keep_s, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sv_q(s, SQL_NONCE_PURGE, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, time_now_ms() / 1000 - keep_s);
	if ((rc = db_run(st, e)) < 0)
		return rc;
	if ((rc = sv_q(s, SQL_NONCE_ADD, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, vendor);
	db_bind_int64(st, 2, ts_s);
	db_bind_blob(st, 3, body_hash, 32);
	if ((rc = db_run(st, e)) < 0)
		return rc;
	return db_changes(st) == 0 ? err_set(e, POS_ECONFLICT,
					     "this timestamp and body were used before (a replay)")
				   : 0;
}

int store_vendor_nonce(struct store *s, const char *vendor, int64_t ts_s,
		       const unsigned char body_hash[32], int64_t keep_s, pos_err *e)
{
	int rc = store_unit_begin(s, e);

	if (rc < 0)
		return rc;
	rc = sv_nonce(s, vendor, ts_s, body_hash, keep_s, e);
	return store_unit_finish(s, rc, e);
}

int store_relation_put(struct store *s, const char *gtin_a, const char *gtin_b,
		       const char *kind, pos_err *e)
{
	struct db_stmt *st;
	int rc = store_unit_begin(s, e);

	if (rc < 0)
		return rc;
	if ((rc = sv_q(s, SQL_RELATION_PUT, &st, e)) == 0) {
		db_bind_text(st, 1, gtin_a);
		db_bind_text(st, 2, gtin_b);
		db_bind_text(st, 3, kind);
		rc = db_run(st, e);
	}
	return store_unit_finish(s, rc, e);
}

/* ------------------------------------------------------------ activities */

/* An activity registered before: whether it is the same as the new one. */
struct sv_same {
	const struct store_activity_in *a;
	bool same;
};

static int sv_same_row(struct db_stmt *st, void *arg)
{
	struct sv_same *w = arg;
	const char *txn = db_col_text(st, 0), *gtin = db_col_text(st, 1),
		   *kind = db_col_text(st, 2);

	w->same = txn && gtin && kind && strcmp(txn, w->a->txn) == 0 &&
		  strcmp(gtin, w->a->gtin) == 0 && strcmp(kind, w->a->kind) == 0 &&
		  db_col_int64(st, 3) == w->a->at_ms;
	return 1;
}

/* The sale of an activity: its household (NULL: unresolved), and whether
 * it has the item. */
struct sv_sale {
	char hhid[DEIDENT_ID_LEN + 1];
	bool has_hh, has_item;
};

static int sv_sale_row(struct db_stmt *st, void *arg)
{
	struct sv_sale *o = arg;

	o->has_hh = !db_col_null(st, 0);
	db_col_copy(st, 0, o->hhid, sizeof o->hhid);
	o->has_item = db_col_int64(st, 1) != 0;
	return 1;
}

static int sv_activity_put(struct store *s, const struct store_activity_in *a, int64_t now_ms,
			   bool *created, pos_err *e)
{
	struct sv_same same = { a, false };
	struct sv_sale sale = { "", false, false };
	struct db_stmt *st;
	int rc;

	if ((rc = sv_q(s, SQL_ACTIVITY_GET, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, a->vendor);
	db_bind_text(st, 2, a->ref);
	if ((rc = db_each(st, sv_same_row, &same, e)) < 0)
		return rc;
	if (rc == 1) {
		*created = false;
		return same.same ? 0 :
				   err_set(e, POS_ECONFLICT,
					   "activity '%s' was registered before with other content",
					   a->ref);
	}

	if ((rc = sv_q(s, store_sql(s, SQL_ACTIVITY_SALE, SQL_ACTIVITY_SALE_PG), &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, a->txn);
	db_bind_text(st, 2, a->gtin);
	if ((rc = db_each(st, sv_sale_row, &sale, e)) < 0)
		return rc;
	if (rc == 0)
		return err_set(e, POS_ENOTFOUND, "no sale has this txn");
	if (!sale.has_item)
		return err_set(e, POS_EINVAL, "the sale has no item %s", a->gtin);

	if ((rc = sv_q(s, SQL_ACTIVITY_ADD, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, a->vendor);
	db_bind_text(st, 2, a->ref);
	db_bind_text(st, 3, a->txn);
	db_bind_text(st, 4, sale.has_hh ? sale.hhid : NULL);
	db_bind_text(st, 5, a->gtin);
	db_bind_text(st, 6, a->kind);
	db_bind_int64(st, 7, a->at_ms);
	db_bind_int64(st, 8, now_ms);
	if ((rc = db_run(st, e)) < 0)
		return rc;
	*created = true;
	return 0;
}

int store_activity_put(struct store *s, const struct store_activity_in *a, int64_t now_ms,
		       bool *created, pos_err *e)
{
	int rc = store_unit_begin(s, e);

	if (rc < 0)
		return rc;
	rc = sv_activity_put(s, a, now_ms, created, e);
	return store_unit_finish(s, rc, e);
}

/* ------------------------------------------------------------ events */

/* Row function: the first column as an integer into *(int64_t *)arg. */
static int sv_int_row(struct db_stmt *st, void *arg)
{
	*(int64_t *)arg = db_col_int64(st, 0);
	return 1;
}

static int sv_message_add(struct store *s, const char *hhid, const char *vendor,
			  const char *event_id, const char *kind, const char *text,
			  int64_t activity_id, const char *state, int64_t now_ms, int64_t *id,
			  pos_err *e)
{
	struct db_stmt *st;
	int64_t got = 0;
	int rc;

	if ((rc = sv_q(s, SQL_MESSAGE_ADD, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, hhid);
	db_bind_text(st, 2, vendor);
	db_bind_text(st, 3, event_id);
	db_bind_text(st, 4, kind);
	db_bind_text(st, 5, text);
	if (activity_id > 0)
		db_bind_int64(st, 6, activity_id);
	else
		db_bind_null(st, 6);
	db_bind_text(st, 7, state);
	db_bind_int64(st, 8, now_ms);
	if ((rc = db_each(st, sv_int_row, &got, e)) < 0)
		return rc;
	if (rc == 0)
		return err_set(e, POS_EDB, "database: message add: no id returned");
	if (id)
		*id = got;
	return 0;
}

static int sv_outbox_add(struct store *s, const char *kind, int64_t msg, int64_t activity,
			 const char *body, int64_t now_ms, pos_err *e)
{
	struct db_stmt *st;
	char idem[64];
	int rc;

	/* The key names the message: one call per message and kind, so a
	 * retry after any crash is the same call to the backend. */
	snprintf(idem, sizeof idem, "%s-%lld", kind, (long long)msg);
	if ((rc = sv_q(s, SQL_OUTBOX_ADD, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, kind);
	db_bind_int64(st, 2, msg);
	db_bind_int64(st, 3, activity);
	db_bind_text(st, 4, body);
	db_bind_text(st, 5, idem);
	db_bind_int64(st, 6, now_ms);
	return db_run(st, e);
}

#define SV_RELATED_MAX 64

/* The related activities a delay invalidates, read before any is written. */
struct sv_related {
	int n;
	int64_t ids[SV_RELATED_MAX], at[SV_RELATED_MAX];
	char kinds[SV_RELATED_MAX][STORE_VENDOR_KIND_MAX + 1];
};

static int sv_related_row(struct db_stmt *st, void *arg)
{
	struct sv_related *r = arg;

	if (r->n >= SV_RELATED_MAX)
		return 1;
	r->ids[r->n] = db_col_int64(st, 0);
	db_col_copy(st, 1, r->kinds[r->n], sizeof r->kinds[0]);
	r->at[r->n] = db_col_int64(st, 2);
	r->n++;
	return 0;
}

/* The related activities of other vendors on the household that a
 * delivery of gtin moved to new_at invalidates: booked before it, on the
 * same item or on one declared to require it (either way round). */
static int sv_delay_related(struct store *s, const struct store_vendor_event *ev,
			    const char *hhid, const char *gtin, int64_t now_ms, pos_err *e)
{
	struct sv_related r;
	struct db_stmt *st;
	int rc;

	r.n = 0;
	if ((rc = sv_q(s, SQL_DELAY_RELATED, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, hhid);
	db_bind_text(st, 2, ev->vendor);
	db_bind_int64(st, 3, ev->new_at_ms);
	db_bind_text(st, 4, gtin);
	if ((rc = db_each(st, sv_related_row, &r, e)) < 0)
		return rc;
	rc = 0;
	for (int i = 0; i < r.n && rc == 0; i++) {
		char text[STORE_VENDOR_TEXT_MAX + 200], when[TIME_RFC3339_LEN], nw[TIME_RFC3339_LEN];
		int64_t msg;

		time_format_rfc3339(r.at[i], when);
		time_format_rfc3339(ev->new_at_ms, nw);
		snprintf(text, sizeof text,
			 "Your %s booked for %s comes before the new delivery time %s. "
			 "Pick a new time below, or ask us for help.",
			 r.kinds[i], when, nw);
		if ((rc = sv_message_add(s, hhid, ev->vendor, ev->id, "reschedule", text, r.ids[i],
					 "options_pending", now_ms, &msg, e)) == 0)
			rc = sv_outbox_add(s, "options", msg, r.ids[i], "", now_ms, e);
	}
	return rc;
}

static int sv_owner_row(struct db_stmt *st, void *arg)
{
	db_col_copy(st, 0, arg, STORE_ITEM_TEXT_MAX + 1);
	return 1;
}

/* A recall: only the item's vendor may send one; a message for every
 * household that bought it. */
static int sv_recall(struct store *s, const struct store_vendor_event *ev, int64_t now_ms,
		     long *households, pos_err *e)
{
	char owner[STORE_ITEM_TEXT_MAX + 1];
	struct db_stmt *st;
	int rc;

	if ((rc = sv_q(s, SQL_ITEM_OWNER, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, ev->gtin);
	if ((rc = db_each(st, sv_owner_row, owner, e)) < 0)
		return rc;
	if (rc == 0)
		return err_set(e, POS_EPERM, "item %s is not in the item master", ev->gtin);
	if (strcmp(owner, ev->vendor) != 0 && strcmp(owner, ev->vendor_name) != 0)
		return err_set(e, POS_EPERM, "item %s is not this vendor's", ev->gtin);
	if ((rc = sv_q(s, store_sql(s, SQL_RECALL_MESSAGES, SQL_RECALL_MESSAGES_PG), &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, ev->vendor);
	db_bind_text(st, 2, ev->id);
	db_bind_text(st, 3, ev->text);
	db_bind_int64(st, 4, now_ms);
	db_bind_text(st, 5, ev->gtin);
	if ((rc = db_run(st, e)) < 0)
		return rc;
	*households = db_changes(st);
	return 0;
}

/* The activity a delay or cancel names. */
struct sv_act {
	int64_t id;
	char hhid[DEIDENT_ID_LEN + 1];
	char gtin[GTIN_LEN + 1];
	bool has_hh;
};

static int sv_act_row(struct db_stmt *st, void *arg)
{
	struct sv_act *o = arg;

	o->id = db_col_int64(st, 0);
	o->has_hh = !db_col_null(st, 1);
	db_col_copy(st, 1, o->hhid, sizeof o->hhid);
	db_col_copy(st, 2, o->gtin, sizeof o->gtin);
	return 1;
}

/* A delay or cancel of one activity: the activity changes, its household
 * (when known) gets a message, and a delay invalidates related bookings. */
static int sv_activity_event(struct store *s, const struct store_vendor_event *ev,
			     int64_t now_ms, long *households, pos_err *e)
{
	bool delay = strcmp(ev->kind, "delay") == 0;
	struct sv_act act;
	struct db_stmt *st;
	int rc;

	memset(&act, 0, sizeof act);
	if ((rc = sv_q(s, SQL_EVENT_ACTIVITY, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, ev->vendor);
	db_bind_text(st, 2, ev->activity);
	if ((rc = db_each(st, sv_act_row, &act, e)) < 0)
		return rc;
	if (rc == 0)
		return err_set(e, POS_ENOTFOUND, "this vendor has no activity '%s'", ev->activity);
	if ((rc = sv_q(s, delay ? SQL_ACTIVITY_AT : SQL_ACTIVITY_CANCEL, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, act.id);
	if (delay)
		db_bind_int64(st, 2, ev->new_at_ms);
	if ((rc = db_run(st, e)) < 0 || !act.has_hh)
		return rc;
	if ((rc = sv_message_add(s, act.hhid, ev->vendor, ev->id, ev->kind, ev->text, act.id,
				 "open", now_ms, NULL, e)) < 0)
		return rc;
	*households = 1;
	return delay ? sv_delay_related(s, ev, act.hhid, act.gtin, now_ms, e) : 0;
}

static int sv_event_apply(struct store *s, const struct store_vendor_event *ev, int64_t now_ms,
			  long *households, bool *created, pos_err *e)
{
	struct db_stmt *st;
	int64_t before = 0;
	int rc;

	if ((rc = sv_q(s, SQL_EVENT_GET, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, ev->vendor);
	db_bind_text(st, 2, ev->id);
	if ((rc = db_each(st, sv_int_row, &before, e)) < 0)
		return rc;
	if (rc == 1) {
		*households = (long)before;
		*created = false;
		return 0;
	}
	*created = true;
	*households = 0;
	if (strcmp(ev->kind, "recall") == 0)
		rc = sv_recall(s, ev, now_ms, households, e);
	else
		rc = sv_activity_event(s, ev, now_ms, households, e);
	if (rc < 0)
		return rc;

	if ((rc = sv_q(s, SQL_EVENT_ADD, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, ev->vendor);
	db_bind_text(st, 2, ev->id);
	db_bind_text(st, 3, ev->kind);
	db_bind_opt_text(st, 4, ev->gtin);
	db_bind_opt_text(st, 5, ev->activity);
	if (ev->new_at_ms)
		db_bind_int64(st, 6, ev->new_at_ms);
	else
		db_bind_null(st, 6);
	db_bind_text(st, 7, ev->text);
	db_bind_int64(st, 8, *households);
	db_bind_int64(st, 9, now_ms);
	return db_run(st, e);
}

int store_vendor_event_apply(struct store *s, const struct store_vendor_event *ev,
			     int64_t now_ms, long *households, bool *created, pos_err *e)
{
	int rc = store_unit_begin(s, e);

	if (rc < 0)
		return rc;
	rc = sv_event_apply(s, ev, now_ms, households, created, e);
	return store_unit_finish(s, rc, e);
}

/* ------------------------------------------------------------ messages */

static int sv_messages_row(struct db_stmt *st, void *arg)
{
	json_t *arr = arg, *m;
	char when[TIME_RFC3339_LEN];

	time_format_rfc3339(db_col_int64(st, 6), when);
	m = json_pack("{s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)db_col_int64(st, 0), "kind",
		      db_col_text(st, 1), "text", db_col_text(st, 2), "state", db_col_text(st, 3),
		      "created", when);
	if (!m)
		return POS_ENOMEM;
	if (!db_col_null(st, 4)) {
		json_t *o = json_loads(db_col_text(st, 4), 0, NULL);

		if (o)
			json_object_set_new(m, "options", o);
	}
	if (!db_col_null(st, 5))
		json_object_set_new(m, "chosen", json_string(db_col_text(st, 5)));
	if (!db_col_null(st, 7)) {
		char at[TIME_RFC3339_LEN];

		time_format_rfc3339(db_col_int64(st, 8), at);
		json_object_set_new(m, "activity",
				    json_pack("{s:s, s:s}", "kind", db_col_text(st, 7), "at", at));
	}
	if (!db_col_null(st, 9))
		json_object_set_new(m, "vendor", json_string(db_col_text(st, 9)));
	return json_array_append_new(arr, m) == 0 ? 0 : POS_ENOMEM;
}

static int sv_messages(struct store *s, int64_t device, int limit, int64_t now_ms, json_t **out,
		       pos_err *e)
{
	struct db_stmt *st;
	json_t *arr = json_array(), *root = NULL;
	int rc;

	if (!arr)
		return err_set(e, POS_ENOMEM, "out of memory");
	if ((rc = sv_q(s, SQL_MESSAGES, &st, e)) < 0)
		goto out;
	db_bind_int64(st, 1, device);
	db_bind_int64(st, 2, limit);
	if ((rc = db_each(st, sv_messages_row, arr, e)) < 0) {
		if (rc == POS_ENOMEM)
			err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = sv_q(s, SQL_MESSAGES_READ, &st, e)) < 0)
		goto out;
	db_bind_int64(st, 1, device);
	db_bind_int64(st, 2, now_ms);
	if ((rc = db_run(st, e)) < 0)
		goto out;
	if (!(root = json_pack("{s:O}", "messages", arr))) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	*out = root;
	rc = 0;
out:
	json_decref(arr);
	return rc;
}

int store_device_messages(struct store *s, int64_t device, int limit, int64_t now_ms,
			  json_t **out, pos_err *e)
{
	int rc = store_unit_begin(s, e);

	*out = NULL;
	if (rc < 0)
		return rc;
	rc = sv_messages(s, device, limit, now_ms, out, e);
	if (rc < 0) {
		json_decref(*out);
		*out = NULL;
	}
	return store_unit_finish(s, rc, e);
}

struct sv_msg {
	int64_t id;
	char hhid[DEIDENT_ID_LEN + 1];
	char state[24];
	char chosen[STORE_VENDOR_REF_MAX + 1];
	char text[STORE_VENDOR_TEXT_MAX + 200];
	int64_t activity;
	bool has_options;
	char options[STORE_OUTBOX_BODY_MAX + 1];
};

static int sv_msg_row(struct db_stmt *st, void *arg)
{
	struct sv_msg *m = arg;

	db_col_copy(st, 0, m->hhid, sizeof m->hhid);
	db_col_copy(st, 1, m->state, sizeof m->state);
	db_col_copy(st, 2, m->chosen, sizeof m->chosen);
	db_col_copy(st, 3, m->text, sizeof m->text);
	m->activity = db_col_int64(st, 4);
	m->has_options = !db_col_null(st, 5);
	db_col_copy(st, 5, m->options, sizeof m->options);
	return 1;
}

/* Message id when one of the device's households owns it. */
static int sv_msg_get(struct store *s, int64_t device, int64_t id, struct sv_msg *m, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	memset(m, 0, sizeof *m);
	m->id = id;
	if ((rc = sv_q(s, SQL_MESSAGE_GET, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, device);
	db_bind_int64(st, 2, id);
	if ((rc = db_each(st, sv_msg_row, m, e)) == 0)
		return err_set(e, POS_ENOTFOUND, "no such message");
	return rc < 0 ? rc : 0;
}

static int sv_choose(struct store *s, int64_t device, int64_t id, const char *option,
		     int64_t now_ms, bool *created, pos_err *e)
{
	struct sv_msg m;
	struct db_stmt *st;
	json_t *opts = NULL, *o, *body = NULL;
	const char *at = NULL;
	char *text = NULL;
	size_t i;
	int rc;

	if ((rc = sv_msg_get(s, device, id, &m, e)) < 0)
		goto out;
	if (m.chosen[0]) {
		*created = false;
		rc = strcmp(m.chosen, option) == 0 ?
			     0 :
			     err_set(e, POS_ECONFLICT, "option '%s' was picked already", m.chosen);
		goto out;
	}
	if (!m.has_options || m.activity <= 0) {
		rc = err_set(e, POS_ECONFLICT, "this message has no options (yet)");
		goto out;
	}
	opts = json_loads(m.options, 0, NULL);
	json_array_foreach (opts, i, o) {
		const char *oid = json_string_value(json_object_get(o, "id"));

		if (oid && strcmp(oid, option) == 0)
			at = json_string_value(json_object_get(o, "at"));
	}
	if (!at) {
		rc = err_set(e, POS_EINVAL, "option: not one of this message's options");
		goto out;
	}
	if (!(body = json_pack("{s:s, s:s}", "option", option, "at", at)) ||
	    !(text = json_dumps(body, JSON_COMPACT))) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = sv_q(s, SQL_MESSAGE_CHOSEN, &st, e)) < 0)
		goto out;
	db_bind_int64(st, 1, id);
	db_bind_text(st, 2, option);
	db_bind_int64(st, 3, now_ms);
	if ((rc = db_run(st, e)) < 0)
		goto out;
	rc = sv_outbox_add(s, "reschedule", id, m.activity, text, now_ms, e);
	*created = true;
out:
	free(text);
	json_decref(body);
	json_decref(opts);
	return rc;
}

int store_message_choose(struct store *s, int64_t device, int64_t id, const char *option,
			 int64_t now_ms, bool *created, pos_err *e)
{
	int rc = store_unit_begin(s, e);

	if (rc < 0)
		return rc;
	rc = sv_choose(s, device, id, option, now_ms, created, e);
	return store_unit_finish(s, rc, e);
}

/* The sale a booking was made on: its txn and store. */
struct sv_sale_where {
	char txn[37];
	char store[STORE_ID_MAX + 1];
};

static int sv_sale_where_row(struct db_stmt *st, void *arg)
{
	struct sv_sale_where *o = arg;

	db_col_copy(st, 0, o->txn, sizeof o->txn);
	db_col_copy(st, 1, o->store, sizeof o->store);
	return 1;
}

static int sv_support(struct store *s, int64_t device, int64_t id, int64_t now_ms,
		      int64_t *conv, pos_err *e)
{
	struct sv_msg m;
	struct sv_sale_where sale = { "", "" };
	struct db_stmt *st;
	char body[STORE_VENDOR_TEXT_MAX + 300];
	int64_t msg;
	int rc;

	if ((rc = sv_msg_get(s, device, id, &m, e)) < 0)
		goto out;
	if (m.activity <= 0) {
		rc = err_set(e, POS_ECONFLICT, "this message is about no booking");
		goto out;
	}
	if ((rc = sv_q(s, store_sql(s, SQL_SUPPORT_SALE, SQL_SUPPORT_SALE_PG), &st, e)) < 0)
		goto out;
	db_bind_int64(st, 1, m.activity);
	if ((rc = db_each(st, sv_sale_where_row, &sale, e)) <= 0) {
		if (rc == 0)
			rc = err_set(e, POS_ENOTFOUND, "the sale is gone");
		goto out;
	}
	snprintf(body, sizeof body, "I would like help with this: %s", m.text);
	if ((rc = store_message_add_keyed(s, "support", sale.txn, sale.store, "customer", body,
					  now_ms, conv, &msg, e)) < 0)
		goto out;
	if ((rc = sv_q(s, SQL_MESSAGE_ACTED, &st, e)) < 0)
		goto out;
	db_bind_int64(st, 1, id);
	db_bind_int64(st, 2, now_ms);
	rc = db_run(st, e);
out:
	return rc;
}

int store_message_support(struct store *s, int64_t device, int64_t id, int64_t now_ms,
			  int64_t *conv, pos_err *e)
{
	int rc = store_unit_begin(s, e);

	if (rc < 0)
		return rc;
	rc = sv_support(s, device, id, now_ms, conv, e);
	return store_unit_finish(s, rc, e);
}

/* ------------------------------------------------------------ outbox */

struct sv_due {
	struct store_outbox_job *out;
	size_t max, n;
};

static int sv_due_row(struct db_stmt *st, void *arg)
{
	struct sv_due *w = arg;
	struct store_outbox_job *j;

	if (w->n >= w->max)
		return 1;
	j = &w->out[w->n++];
	memset(j, 0, sizeof *j);
	j->id = db_col_int64(st, 0);
	db_col_copy(st, 1, j->kind, sizeof j->kind);
	j->message_id = db_col_int64(st, 2);
	j->activity_id = db_col_int64(st, 3);
	db_col_copy(st, 4, j->body, sizeof j->body);
	db_col_copy(st, 5, j->idem, sizeof j->idem);
	j->attempts = (int)db_col_int64(st, 6);
	db_col_copy(st, 7, j->ref, sizeof j->ref);
	db_col_copy(st, 8, j->hhid, sizeof j->hhid);
	sv_vendor_cols(st, 9, &j->v);
	return 0;
}

int store_outbox_due(struct store *s, int64_t now_ms, struct store_outbox_job *out, size_t max,
		     size_t *n, pos_err *e)
{
	struct sv_due w = { out, max, 0 };
	struct db_stmt *st;
	int rc;

	*n = 0;
	if ((rc = sv_q(s, SQL_OUTBOX_DUE, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, now_ms);
	db_bind_int64(st, 2, (int64_t)max);
	if ((rc = db_each(st, sv_due_row, &w, e)) < 0)
		return rc;
	*n = w.n;
	return 0;
}

int store_outbox_retry(struct store *s, int64_t id, int64_t next_ms, pos_err *e)
{
	struct db_stmt *st;
	int rc = store_unit_begin(s, e);

	if (rc < 0)
		return rc;
	if ((rc = sv_q(s, SQL_OUTBOX_RETRY, &st, e)) == 0) {
		db_bind_int64(st, 1, id);
		db_bind_int64(st, 2, next_ms);
		rc = db_run(st, e);
	}
	return store_unit_finish(s, rc, e);
}

/* Sets the message's state (SQL_MESSAGE_STATE) or options
 * (SQL_MESSAGE_OPTIONS): both bind the id and one text. */
static int sv_message_set(struct store *s, const char *sql, int64_t msg, const char *v,
			  pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sv_q(s, sql, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, msg);
	db_bind_text(st, 2, v);
	return db_run(st, e);
}

static int sv_outbox_done(struct store *s, int64_t id, int64_t now_ms, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if ((rc = sv_q(s, SQL_OUTBOX_DONE, &st, e)) < 0)
		return rc;
	db_bind_int64(st, 1, id);
	db_bind_int64(st, 2, now_ms);
	return db_run(st, e);
}

int store_outbox_options_done(struct store *s, const struct store_outbox_job *j,
			      const char *options, int64_t now_ms, pos_err *e)
{
	int rc = store_unit_begin(s, e);

	if (rc < 0)
		return rc;
	if ((rc = sv_outbox_done(s, j->id, now_ms, e)) == 0)
		rc = sv_message_set(s, SQL_MESSAGE_OPTIONS, j->message_id, options, e);
	return store_unit_finish(s, rc, e);
}

int store_outbox_reschedule_done(struct store *s, const struct store_outbox_job *j,
				 int64_t at_ms, int64_t now_ms, pos_err *e)
{
	struct db_stmt *st;
	char when[TIME_RFC3339_LEN], text[STORE_VENDOR_TEXT_MAX + 1];
	int rc = store_unit_begin(s, e);

	if (rc < 0)
		return rc;
	if ((rc = sv_outbox_done(s, j->id, now_ms, e)) < 0)
		goto out;
	if ((rc = sv_q(s, SQL_ACTIVITY_AT, &st, e)) < 0)
		goto out;
	db_bind_int64(st, 1, j->activity_id);
	db_bind_int64(st, 2, at_ms);
	if ((rc = db_run(st, e)) < 0 ||
	    (rc = sv_message_set(s, SQL_MESSAGE_STATE, j->message_id, "done", e)) < 0)
		goto out;
	time_format_rfc3339(at_ms, when);
	snprintf(text, sizeof text, "Done: %s moved your booking to %s.", j->v.name, when);
	rc = sv_message_add(s, j->hhid, j->v.id, NULL, "confirmation", text, j->activity_id,
			    "open", now_ms, NULL, e);
out:
	return store_unit_finish(s, rc, e);
}

int store_outbox_refused(struct store *s, const struct store_outbox_job *j, int64_t now_ms,
			 pos_err *e)
{
	bool resched = strcmp(j->kind, "reschedule") == 0;
	char text[STORE_VENDOR_TEXT_MAX + 1];
	int rc = store_unit_begin(s, e);

	if (rc < 0)
		return rc;
	if ((rc = sv_outbox_done(s, j->id, now_ms, e)) < 0)
		goto out;
	if ((rc = sv_message_set(s, SQL_MESSAGE_STATE, j->message_id,
				 resched ? "failed" : "no_options", e)) < 0 ||
	    !resched)
		goto out;
	snprintf(text, sizeof text,
		 "%s could not move your booking to that time. Ask us for help and we will "
		 "find another.",
		 j->v.name);
	rc = sv_message_add(s, j->hhid, j->v.id, NULL, "reschedule_failed", text, j->activity_id,
			    "open", now_ms, NULL, e);
out:
	return store_unit_finish(s, rc, e);
}

int store_outbox_pending(struct store *s, long *n, pos_err *e)
{
	struct db_stmt *st;
	int64_t count = 0;
	int rc;

	*n = 0;
	if ((rc = sv_q(s, SQL_OUTBOX_PENDING, &st, e)) < 0)
		return rc;
	if ((rc = db_each(st, sv_int_row, &count, e)) < 0)
		return rc;
	*n = (long)count;
	return 0;
}

struct sv_rel {
	int (*fn)(const struct store_related *r, void *arg);
	void *arg;
};

static int sv_rel_row(struct db_stmt *st, void *arg)
{
	struct sv_rel *w = arg;
	struct store_related r;

	db_col_copy(st, 0, r.gtin, sizeof r.gtin);
	r.baskets = (long)db_col_int64(st, 1);
	r.lift = db_col_double(st, 2);
	r.name = db_col_text(st, 3);
	return w->fn(&r, w->arg);
}

int store_items_related(struct store *s, const char *gtin, long min_baskets, double min_lift,
			int limit, int (*fn)(const struct store_related *r, void *arg), void *arg,
			pos_err *e)
{
	struct sv_rel w = { fn, arg };
	struct db_stmt *st;
	int rc;

	if ((rc = sv_q(s, store_sql(s, SQL_ITEMS_RELATED, SQL_ITEMS_RELATED_PG), &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, gtin);
	db_bind_int64(st, 2, min_baskets);
	db_bind_double(st, 3, min_lift);
	db_bind_int64(st, 4, limit);
	return db_each(st, sv_rel_row, &w, e);
}

struct sv_report {
	long *reached, *read, *acted;
	bool known;
};

static int sv_report_row(struct db_stmt *st, void *arg)
{
	struct sv_report *o = arg;

	o->known = db_col_int64(st, 0) != 0;
	*o->reached = (long)db_col_int64(st, 1);
	*o->read = (long)db_col_int64(st, 2);
	*o->acted = (long)db_col_int64(st, 3);
	return 1;
}

int store_vendor_report(struct store *s, const char *event_id, long *reached, long *read,
			long *acted, pos_err *e)
{
	struct sv_report o = { reached, read, acted, false };
	struct db_stmt *st;
	int rc;

	if ((rc = sv_q(s, SQL_VENDOR_REPORT, &st, e)) < 0)
		return rc;
	db_bind_text(st, 1, event_id);
	if ((rc = db_each(st, sv_report_row, &o, e)) < 0)
		return rc;
	if (!o.known)
		return err_set(e, POS_ENOTFOUND, "no event has id '%s'", event_id);
	return 0;
}

/* ------------------------------------------------------------ products */

/* What the device's households bought, newest first, each item of a sale
 * once, with the activities vendors registered against it. limit + 1
 * products are asked for, to tell whether there are more. */
#define SV_PRODUCTS(items)                                                                   \
	"WITH hh AS (SELECT hhid FROM device_households WHERE device_id = ?1 "              \
	"  UNION SELECT r.hhid FROM offer_redemptions r JOIN offer_codes c ON c.code = r.code " \
	"  WHERE c.device_id = ?1 AND r.hhid IS NOT NULL), "                                \
	"p AS (SELECT DISTINCT b.id AS basket, b.ts AS ts, b.store AS store, b.txn AS txn, " \
	"  i.gtin AS gtin FROM baskets b JOIN items i ON " items " "                        \
	"  WHERE b.hhid IN (SELECT hhid FROM hh) ORDER BY ts DESC, basket DESC, gtin LIMIT ?2) " \
	"SELECT p.basket, p.ts, p.store, p.gtin, coalesce(m.name, ''), a.id, a.kind, a.at, " \
	"  a.state, coalesce(v.name, a.vendor) FROM p "                                     \
	"LEFT JOIN item_master m ON m.gtin = p.gtin "                                       \
	"LEFT JOIN activities a ON a.txn = p.txn AND a.gtin = p.gtin "                      \
	"LEFT JOIN vendors v ON v.id = a.vendor "                                           \
	"ORDER BY p.ts DESC, p.basket DESC, p.gtin, a.at, a.id"
static const char SQL_PRODUCTS[] = SV_PRODUCTS("i.basket_id = b.id");
/* PostgreSQL: each basket's items from its own month (i.ts = b.ts). */
static const char SQL_PRODUCTS_PG[] = SV_PRODUCTS("i.basket_id = b.id AND i.ts = b.ts");

struct sv_products {
	json_t *arr;
	json_t *acts; /* the current product's activities (borrowed from arr) */
	int64_t basket;
	char gtin[GTIN_LEN + 1];
	int limit;
	int n;
	bool truncated;
	pos_err *e;
};

static int sv_product_row(struct db_stmt *st, void *arg)
{
	struct sv_products *p = arg;
	const char *gtin = db_col_text(st, 3);
	int64_t basket = db_col_int64(st, 0);
	char when[TIME_RFC3339_LEN];
	json_t *o;

	if (!gtin)
		return 0;
	if (!p->acts || basket != p->basket || strcmp(gtin, p->gtin) != 0) {
		if (p->n == p->limit) {
			p->truncated = true;
			return 1;
		}
		time_format_rfc3339(db_col_int64(st, 1), when);
		o = json_pack("{s:s, s:s, s:s, s:s, s:[]}", "gtin", gtin, "name",
			      db_col_text(st, 4) ? db_col_text(st, 4) : "", "bought", when, "store",
			      db_col_text(st, 2) ? db_col_text(st, 2) : "", "activities");
		if (!o || json_array_append_new(p->arr, o) < 0)
			return err_set(p->e, POS_ENOMEM, "out of memory");
		p->acts = json_object_get(o, "activities");
		p->basket = basket;
		snprintf(p->gtin, sizeof p->gtin, "%s", gtin);
		p->n++;
	}
	if (db_col_null(st, 5))
		return 0;
	time_format_rfc3339(db_col_int64(st, 7), when);
	o = json_pack("{s:s, s:s, s:s, s:s}", "vendor", db_col_text(st, 9) ? db_col_text(st, 9) : "",
		      "kind", db_col_text(st, 6) ? db_col_text(st, 6) : "", "at", when, "state",
		      db_col_text(st, 8) ? db_col_text(st, 8) : "");
	if (!o || json_array_append_new(p->acts, o) < 0)
		return err_set(p->e, POS_ENOMEM, "out of memory");
	return 0;
}

int store_device_products(struct store *s, int64_t device, int limit, json_t **out, pos_err *e)
{
	struct sv_products p = { .limit = limit, .e = e };
	struct db_stmt *st;
	int rc;

	*out = NULL;
	if (limit < 1)
		return err_set(e, POS_EINVAL, "products: the limit must be at least 1");
	if (!(p.arr = json_array()))
		return err_set(e, POS_ENOMEM, "out of memory");
	if (!(st = store_q(s, store_sql(s, SQL_PRODUCTS, SQL_PRODUCTS_PG), e))) {
		rc = e->code ? e->code : POS_EDB;
		goto out;
	}
	db_bind_int64(st, 1, device);
	db_bind_int64(st, 2, (int64_t)limit + 1);
	if ((rc = db_each(st, sv_product_row, &p, e)) < 0)
		goto out;
	if (!(*out = json_pack("{s:O, s:b}", "products", p.arr, "truncated", p.truncated))) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	json_decref(p.arr);
	return rc;
}

/* ------------------------------------------------------------ learned relations */

static const char SQL_LEARN_ITEMS[] = "SELECT DISTINCT gtin FROM activities ORDER BY gtin";
static const char SQL_LEARN_CLEAR[] = "DELETE FROM item_relations WHERE kind = 'learned'";
/* A declared relation of the same pair stays as it was. */
static const char SQL_LEARN_PUT[] =
	"INSERT INTO item_relations(gtin_a, gtin_b, kind) VALUES (?1, ?2, 'learned') "
	"ON CONFLICT(gtin_a, gtin_b) DO NOTHING";

struct sv_pairs {
	char (*g)[2][GTIN_LEN + 1];
	size_t n, cap;
	const char *from; /* the item whose relations are being collected */
	pos_err *e;
};

static int sv_pair_add(struct sv_pairs *p, const char *a, const char *b)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		void *q = realloc(p->g, cap * sizeof *p->g);

		if (!q)
			return err_set(p->e, POS_ENOMEM, "out of memory");
		p->g = q;
		p->cap = cap;
	}
	snprintf(p->g[p->n][0], sizeof p->g[p->n][0], "%s", a);
	snprintf(p->g[p->n][1], sizeof p->g[p->n][1], "%s", b);
	p->n++;
	return 0;
}

static int sv_learn_item(struct db_stmt *st, void *arg)
{
	const char *g = db_col_text(st, 0);

	return g && strlen(g) == GTIN_LEN ? sv_pair_add(arg, g, "") : 0;
}

static int sv_learn_related(const struct store_related *r, void *arg)
{
	struct sv_pairs *p = arg;

	return sv_pair_add(p, p->from, r->gtin);
}

int store_relations_learn(struct store *s, long min_baskets, double min_lift, int per_item,
			  long *stored, pos_err *e)
{
	struct sv_pairs items = { .e = e }, pairs = { .e = e };
	struct db_stmt *st;
	int rc;

	*stored = 0;
	/* The lift is computed outside the write unit: the writer is held
	 * only for the short replacement below. */
	if (!(st = store_q(s, SQL_LEARN_ITEMS, e))) {
		rc = e->code ? e->code : POS_EDB;
		goto out;
	}
	if ((rc = db_each(st, sv_learn_item, &items, e)) < 0)
		goto out;
	for (size_t i = 0; i < items.n; i++) {
		pairs.from = items.g[i][0];
		if ((rc = store_items_related(s, items.g[i][0], min_baskets, min_lift, per_item,
					      sv_learn_related, &pairs, e)) < 0)
			goto out;
	}
	if ((rc = store_unit_begin(s, e)) < 0)
		goto out;
	if (!(st = store_q(s, SQL_LEARN_CLEAR, e)) || db_run(st, e) < 0) {
		rc = store_unit_finish(s, e->code ? e->code : POS_EDB, e);
		goto out;
	}
	for (size_t i = 0; i < pairs.n && rc >= 0; i++) {
		if (!(st = store_q(s, SQL_LEARN_PUT, e))) {
			rc = e->code ? e->code : POS_EDB;
			break;
		}
		db_bind_text(st, 1, pairs.g[i][0]);
		db_bind_text(st, 2, pairs.g[i][1]);
		if ((rc = db_run(st, e)) >= 0)
			*stored += db_changes(st);
	}
	rc = store_unit_finish(s, rc < 0 ? rc : 0, e);
out:
	free(items.g);
	free(pairs.g);
	return rc < 0 ? rc : 0;
}
