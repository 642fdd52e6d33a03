#include "store_public.h"

#include <sqlite3.h>
#include <string.h>

#include "store_sqlite.h"

/*
 * SQLite implementation of store_public.h. These statements run on the
 * public listener's requests and the CLI, far less often than the lanes'
 * resolves and baskets, so each is prepared per call (bound parameters
 * only, like every statement of the store).
 */

#define SP_RECEIPT_COLS "b.id, b.txn, b.ts, b.store, b.terminal, b.hhid"
#define SP_CONV_COLS "id, kind, txn, store, state, created, updated"

static int sp_bind_opt(sqlite3_stmt *st, int i, const char *v)
{
	if (!v || !v[0])
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* Steps a statement that writes; finalizes it. */
static int sp_write(struct store *s, sqlite3_stmt *st, const char *what, pos_err *e)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlite_err(s, rc, what, e);
	return 0;
}

/* Steps a statement expected to give at most one row: 1 with a row (the
 * caller reads and finalizes), POS_ENOTFOUND without (finalized). */
static int sp_row(struct store *s, sqlite3_stmt *st, const char *what, pos_err *e)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 1;
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return err_set(e, POS_ENOTFOUND, "%s: not found", what);
	return store_sqlite_err(s, rc, what, e);
}

/* ------------------------------------------------------------ items */

int store_item_put(struct store *s, const struct store_item_master *it, int64_t now_ms,
		   pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO item_master(gtin, name, vendor, category, updated) "
		     "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(gtin) DO UPDATE SET "
		     "name = ?2, vendor = ?3, category = ?4, updated = ?5",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, it->gtin, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, it->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, it->vendor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, it->category, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now_ms);
	return sp_write(s, st, "item insert", e);
}

int store_item_get(struct store *s, const char *gtin, struct store_item_master *out, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = store_sqlite_prepare(
		     s, "SELECT gtin, name, vendor, category FROM item_master WHERE gtin = ?1", &st,
		     e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, gtin, -1, SQLITE_STATIC);
	if ((rc = sp_row(s, st, "item", e)) < 0)
		return rc;
	store_sqlite_text(st, 0, out->gtin, sizeof out->gtin);
	store_sqlite_text(st, 1, out->name, sizeof out->name);
	store_sqlite_text(st, 2, out->vendor, sizeof out->vendor);
	store_sqlite_text(st, 3, out->category, sizeof out->category);
	sqlite3_finalize(st);
	return 0;
}

/* ------------------------------------------------------------ receipts */

static void sp_receipt(sqlite3_stmt *st, struct store_receipt *out)
{
	out->basket_id = sqlite3_column_int64(st, 0);
	store_sqlite_text(st, 1, out->txn, sizeof out->txn);
	out->ts_ms = sqlite3_column_int64(st, 2);
	store_sqlite_text(st, 3, out->store, sizeof out->store);
	store_sqlite_text(st, 4, out->terminal, sizeof out->terminal);
	store_sqlite_text(st, 5, out->hhid, sizeof out->hhid);
}

int store_receipt_find(struct store *s, const unsigned char hash[32], struct store_receipt *out,
		       pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = store_sqlite_prepare(s,
				       "SELECT " SP_RECEIPT_COLS " FROM receipts r JOIN baskets b "
				       "ON b.id = r.basket_id WHERE r.hash = ?1",
				       &st, e)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	if ((rc = sp_row(s, st, "receipt", e)) < 0)
		return rc;
	sp_receipt(st, out);
	sqlite3_finalize(st);
	return 0;
}

int store_receipt_by_txn(struct store *s, const char *txn, struct store_receipt *out,
			 pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = store_sqlite_prepare(
		     s, "SELECT " SP_RECEIPT_COLS " FROM baskets b WHERE b.txn = ?1", &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, txn, -1, SQLITE_STATIC);
	if ((rc = sp_row(s, st, "basket", e)) < 0)
		return rc;
	sp_receipt(st, out);
	sqlite3_finalize(st);
	return 0;
}

int store_receipt_lines(struct store *s, int64_t basket_id,
			int (*fn)(const struct store_receipt_line *l, void *arg), void *arg,
			pos_err *e)
{
	struct store_receipt_line l;
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT i.gtin, i.qty, i.price_cents, m.name FROM items i "
		     "LEFT JOIN item_master m ON m.gtin = i.gtin WHERE i.basket_id = ?1 "
		     "ORDER BY i.seq",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, basket_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&l, 0, sizeof l);
		store_sqlite_text(st, 0, l.gtin, sizeof l.gtin);
		l.qty = sqlite3_column_int(st, 1);
		l.price_cents = sqlite3_column_type(st, 2) == SQLITE_NULL
					? -1
					: (long)sqlite3_column_int64(st, 2);
		store_sqlite_text(st, 3, l.name, sizeof l.name);
		if ((rc = fn(&l, arg)) != 0) {
			sqlite3_finalize(st);
			return rc;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, rc, "receipt lines", e);
}

int store_receipt_offers(struct store *s, int64_t basket_id,
			 int (*fn)(const char *offer_id, const char *title, void *arg), void *arg,
			 pos_err *e)
{
	char id[STORE_OFFER_ID_LEN + 1], title[STORE_OFFER_TITLE_MAX + 1];
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT o.id, o.title FROM offer_redemptions r JOIN offer_codes c "
		     "ON c.code = r.code JOIN offers o ON o.id = c.offer_id "
		     "WHERE r.basket_id = ?1 ORDER BY o.id",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, basket_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_sqlite_text(st, 0, id, sizeof id);
		store_sqlite_text(st, 1, title, sizeof title);
		if ((rc = fn(id, title, arg)) != 0) {
			sqlite3_finalize(st);
			return rc;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, rc, "receipt offers", e);
}

/* ------------------------------------------------------------ conversations */

static void sp_conv(sqlite3_stmt *st, struct store_conversation *c)
{
	char state[16];

	memset(c, 0, sizeof *c);
	c->id = sqlite3_column_int64(st, 0);
	store_sqlite_text(st, 1, c->kind, sizeof c->kind);
	store_sqlite_text(st, 2, c->txn, sizeof c->txn);
	store_sqlite_text(st, 3, c->store, sizeof c->store);
	store_sqlite_text(st, 4, state, sizeof state);
	c->open = strcmp(state, "open") == 0;
	c->created_ms = sqlite3_column_int64(st, 5);
	c->updated_ms = sqlite3_column_int64(st, 6);
}

int store_conversation_find(struct store *s, const char *kind, const char *txn,
			    struct store_conversation *out, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s, "SELECT " SP_CONV_COLS " FROM conversations WHERE kind = ?1 AND txn = ?2",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, txn, -1, SQLITE_STATIC);
	if ((rc = sp_row(s, st, "conversation", e)) < 0)
		return rc;
	sp_conv(st, out);
	sqlite3_finalize(st);
	return 0;
}

int store_conversation_get(struct store *s, int64_t id, struct store_conversation *out,
			   pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s, "SELECT " SP_CONV_COLS " FROM conversations WHERE id = ?1", &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	if ((rc = sp_row(s, st, "conversation", e)) < 0)
		return rc;
	sp_conv(st, out);
	sqlite3_finalize(st);
	return 0;
}

/* The message row and the conversation's activity, inside the caller's unit. */
static int sp_message_insert(struct store *s, int64_t conv, const char *author, int64_t staff_id,
			     const char *body, int64_t now_ms, int64_t *msg_id, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO messages(conversation_id, ts, author, staff_id, body) "
		     "VALUES (?1, ?2, ?3, ?4, ?5)",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, conv);
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_text(st, 3, author, -1, SQLITE_STATIC);
	if (staff_id > 0)
		sqlite3_bind_int64(st, 4, staff_id);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_text(st, 5, body, -1, SQLITE_STATIC);
	if ((rc = sp_write(s, st, "message insert", e)) < 0)
		return rc;
	*msg_id = sqlite3_last_insert_rowid(store_sqlite_db(s));
	/* A customer writing again reopens a closed conversation; a staff
	 * reply leaves its state as it is. */
	if ((rc = store_sqlite_prepare(
		     s,
		     "UPDATE conversations SET updated = ?2, state = CASE WHEN ?3 = 'customer' "
		     "THEN 'open' ELSE state END WHERE id = ?1",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, conv);
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_text(st, 3, author, -1, SQLITE_STATIC);
	return sp_write(s, st, "conversation update", e);
}

int store_message_add_keyed(struct store *s, const char *kind, const char *txn,
			    const char *store, const char *author, const char *body,
			    int64_t now_ms, int64_t *conv_id, int64_t *msg_id, pos_err *e)
{
	struct store_conversation c;
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_unit_begin(s, e)) < 0)
		return rc;
	rc = store_conversation_find(s, kind, txn, &c, e);
	if (rc == POS_ENOTFOUND) {
		if ((rc = store_sqlite_prepare(
			     s,
			     "INSERT INTO conversations(kind, txn, store, state, created, updated) "
			     "VALUES (?1, ?2, ?3, 'open', ?4, ?4)",
			     &st, e)) < 0)
			goto out;
		sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, txn, -1, SQLITE_STATIC);
		sp_bind_opt(st, 3, store);
		sqlite3_bind_int64(st, 4, now_ms);
		if ((rc = sp_write(s, st, "conversation insert", e)) < 0)
			goto out;
		c.id = sqlite3_last_insert_rowid(store_sqlite_db(s));
	} else if (rc < 0) {
		goto out;
	}
	*conv_id = c.id;
	rc = sp_message_insert(s, c.id, author, 0, body, now_ms, msg_id, e);
out:
	return store_sqlite_unit_finish(s, rc, e);
}

int store_message_add(struct store *s, int64_t conv, const char *author, int64_t staff_id,
		      const char *body, int64_t now_ms, int64_t *msg_id, pos_err *e)
{
	struct store_conversation c;
	int rc;

	if ((rc = store_sqlite_unit_begin(s, e)) < 0)
		return rc;
	if ((rc = store_conversation_get(s, conv, &c, e)) == 0)
		rc = sp_message_insert(s, conv, author, staff_id, body, now_ms, msg_id, e);
	return store_sqlite_unit_finish(s, rc, e);
}

int store_messages(struct store *s, int64_t conv, int64_t after, int limit,
		   int (*fn)(const struct store_message *m, void *arg), void *arg, pos_err *e)
{
	struct store_message m;
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT id, ts, author, body FROM messages WHERE conversation_id = ?1 "
		     "AND id > ?2 ORDER BY id LIMIT ?3",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, conv);
	sqlite3_bind_int64(st, 2, after);
	sqlite3_bind_int(st, 3, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&m, 0, sizeof m);
		m.id = sqlite3_column_int64(st, 0);
		m.ts_ms = sqlite3_column_int64(st, 1);
		store_sqlite_text(st, 2, m.author, sizeof m.author);
		m.body = (const char *)sqlite3_column_text(st, 3);
		if (!m.body)
			m.body = "";
		if ((rc = fn(&m, arg)) != 0) {
			sqlite3_finalize(st);
			return rc;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, rc, "messages", e);
}

int store_conversations_open(struct store *s, const char *store, int limit,
			     int (*fn)(const struct store_conversation *c, void *arg), void *arg,
			     pos_err *e)
{
	struct store_conversation c;
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT " SP_CONV_COLS " FROM conversations WHERE state = 'open' AND "
		     "(?1 IS NULL OR store = ?1) ORDER BY updated DESC, id DESC LIMIT ?2",
		     &st, e)) < 0)
		return rc;
	sp_bind_opt(st, 1, store);
	sqlite3_bind_int(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sp_conv(st, &c);
		if ((rc = fn(&c, arg)) != 0) {
			sqlite3_finalize(st);
			return rc;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, rc, "conversations", e);
}

int store_conversation_close(struct store *s, int64_t id, int64_t now_ms, pos_err *e)
{
	struct store_conversation c;
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_unit_begin(s, e)) < 0)
		return rc;
	if ((rc = store_conversation_get(s, id, &c, e)) < 0)
		goto out;
	if (!c.open) {
		rc = err_set(e, POS_ECONFLICT, "the conversation is closed already");
		goto out;
	}
	if ((rc = store_sqlite_prepare(
		     s, "UPDATE conversations SET state = 'closed', updated = ?2 WHERE id = ?1",
		     &st, e)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms);
	rc = sp_write(s, st, "conversation close", e);
out:
	return store_sqlite_unit_finish(s, rc, e);
}

/* ------------------------------------------------------------ staff */

int store_staff_add(struct store *s, const char *name, const char *store,
		    const unsigned char token_hash[32], int64_t now_ms, int64_t *id, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO staff(name, store, token_hash, created) VALUES (?1, ?2, ?3, ?4)",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sp_bind_opt(st, 2, store);
	sqlite3_bind_blob(st, 3, token_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now_ms);
	if ((rc = sp_write(s, st, "staff insert", e)) < 0)
		return rc;
	*id = sqlite3_last_insert_rowid(store_sqlite_db(s));
	return 0;
}

static void sp_staff(sqlite3_stmt *st, struct store_staff *out)
{
	memset(out, 0, sizeof *out);
	out->id = sqlite3_column_int64(st, 0);
	store_sqlite_text(st, 1, out->name, sizeof out->name);
	store_sqlite_text(st, 2, out->store, sizeof out->store);
}

int store_staff_by_token(struct store *s, const unsigned char token_hash[32],
			 struct store_staff *out, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(s, "SELECT id, name, store FROM staff WHERE token_hash = ?1",
				       &st, e)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_STATIC);
	if ((rc = sp_row(s, st, "staff", e)) < 0)
		return rc;
	sp_staff(st, out);
	sqlite3_finalize(st);
	return 0;
}

int store_session_add(struct store *s, const unsigned char id_hash[32], int64_t staff_id,
		      int64_t now_ms, int64_t expires_ms, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_unit_begin(s, e)) < 0)
		return rc;
	/* Expired sessions go as new ones come: the table stays small. */
	if ((rc = store_sqlite_prepare(s, "DELETE FROM staff_sessions WHERE expires <= ?1", &st,
				       e)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, now_ms);
	if ((rc = sp_write(s, st, "session expiry", e)) < 0)
		goto out;
	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO staff_sessions(id_hash, staff_id, created, expires) "
		     "VALUES (?1, ?2, ?3, ?4)",
		     &st, e)) < 0)
		goto out;
	sqlite3_bind_blob(st, 1, id_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, staff_id);
	sqlite3_bind_int64(st, 3, now_ms);
	sqlite3_bind_int64(st, 4, expires_ms);
	rc = sp_write(s, st, "session insert", e);
out:
	return store_sqlite_unit_finish(s, rc, e);
}

int store_session_staff(struct store *s, const unsigned char id_hash[32], int64_t now_ms,
			struct store_staff *out, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT t.id, t.name, t.store FROM staff_sessions x JOIN staff t "
		     "ON t.id = x.staff_id WHERE x.id_hash = ?1 AND x.expires > ?2",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, id_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms);
	if ((rc = sp_row(s, st, "session", e)) < 0)
		return rc;
	sp_staff(st, out);
	sqlite3_finalize(st);
	return 0;
}

int store_session_del(struct store *s, const unsigned char id_hash[32], pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(s, "DELETE FROM staff_sessions WHERE id_hash = ?1", &st,
				       e)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, id_hash, 32, SQLITE_STATIC);
	return sp_write(s, st, "session delete", e);
}

/* ------------------------------------------------------------ devices */

int store_device_link(struct store *s, int64_t device, const char *hhid, int64_t now_ms,
		      bool *created, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO device_households(device_id, hhid, linked) VALUES (?1, ?2, ?3) "
		     "ON CONFLICT(device_id, hhid) DO NOTHING",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, device);
	sqlite3_bind_text(st, 2, hhid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlite_err(s, rc, "device link", e);
	*created = sqlite3_changes(store_sqlite_db(s)) > 0;
	return 0;
}

/* ------------------------------------------------------------ SMS */

int store_sms_inbound(struct store *s, const struct store_sms_in *in, int64_t *conv,
		      int64_t *msg, bool *dup, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	*dup = false;
	if ((rc = store_sqlite_unit_begin(s, e)) < 0)
		return rc;
	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT m.id, m.conversation_id FROM sms_inbound i JOIN messages m ON "
		     "m.id = i.message_id WHERE i.sid = ?1",
		     &st, e)) < 0)
		goto out;
	sqlite3_bind_text(st, 1, in->sid, -1, SQLITE_STATIC);
	rc = sp_row(s, st, "sms message", e);
	if (rc == 1) {
		*msg = sqlite3_column_int64(st, 0);
		*conv = sqlite3_column_int64(st, 1);
		sqlite3_finalize(st);
		*dup = true;
		rc = 0;
		goto out;
	}
	if (rc != POS_ENOTFOUND)
		goto out;
	if ((rc = store_message_add_keyed(s, STORE_CONV_VISITOR, in->uid, NULL, "customer",
					  in->body, in->now_ms, conv, msg, e)) < 0)
		goto out;
	if ((rc = store_sqlite_prepare(
		     s, "INSERT INTO sms_inbound(sid, message_id) VALUES (?1, ?2)", &st, e)) < 0)
		goto out;
	sqlite3_bind_text(st, 1, in->sid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, *msg);
	if ((rc = sp_write(s, st, "sms insert", e)) < 0)
		goto out;
	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO conversation_phones(conversation_id, phone_index, kid, "
		     "sealed, updated) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(conversation_id) "
		     "DO UPDATE SET phone_index = ?2, kid = ?3, sealed = ?4, updated = ?5",
		     &st, e)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, *conv);
	sqlite3_bind_blob(st, 2, in->phone_index, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, in->kid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, in->sealed, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, in->now_ms);
	rc = sp_write(s, st, "conversation phone", e);
out:
	return store_sqlite_unit_finish(s, rc, e);
}

int store_sms_last_uid(struct store *s, const unsigned char phone_index[32], char uid[37],
		       pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT c.txn FROM conversation_phones p JOIN conversations c ON c.id = "
		     "p.conversation_id WHERE p.phone_index = ?1 AND c.kind = ?2 ORDER BY "
		     "p.updated DESC LIMIT 1",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_blob(st, 1, phone_index, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, STORE_CONV_VISITOR, -1, SQLITE_STATIC);
	if ((rc = sp_row(s, st, "sms sender", e)) != 1)
		return rc;
	store_sqlite_text(st, 0, uid, 37);
	sqlite3_finalize(st);
	return 0;
}

/* ------------------------------------------------------------ outboxes */

int store_cursor_get(struct store *s, const char *name, struct store_cursor *out, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT position, attempts, coalesce(last_error, ''), updated FROM "
		     "outbox_cursors WHERE name = ?1",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sp_row(s, st, "outbox cursor", e);
	if (rc == POS_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	out->position = sqlite3_column_int64(st, 0);
	out->attempts = (long)sqlite3_column_int64(st, 1);
	store_sqlite_text(st, 2, out->last_error, sizeof out->last_error);
	out->updated_ms = sqlite3_column_int64(st, 3);
	sqlite3_finalize(st);
	return 0;
}

int store_cursor_set(struct store *s, const char *name, int64_t position, int64_t now_ms,
		     pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO outbox_cursors(name, position, attempts, last_error, updated) "
		     "VALUES (?1, ?2, 0, NULL, ?3) ON CONFLICT(name) DO UPDATE SET position = ?2, "
		     "attempts = 0, last_error = NULL, updated = ?3",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, position);
	sqlite3_bind_int64(st, 3, now_ms);
	return sp_write(s, st, "outbox cursor", e);
}

int store_cursor_failed(struct store *s, const char *name, long attempts, const char *error,
			int64_t now_ms, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO outbox_cursors(name, position, attempts, last_error, updated) "
		     "VALUES (?1, 0, ?2, ?3, ?4) ON CONFLICT(name) DO UPDATE SET attempts = ?2, "
		     "last_error = ?3, updated = ?4",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, attempts);
	sqlite3_bind_text(st, 3, error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now_ms);
	return sp_write(s, st, "outbox cursor", e);
}

#define SP_CONV_COLS_C "c.id, c.kind, c.txn, c.store, c.state, c.created, c.updated"

int store_event_next(struct store *s, int64_t after,
		     int (*fn)(const struct store_event *ev, void *arg), void *arg, pos_err *e)
{
	struct store_event ev;
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT " SP_CONV_COLS_C ", m.id, m.ts, m.author, m.body, "
		     "(SELECT min(id) FROM messages WHERE conversation_id = c.id) = m.id "
		     "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
		     "WHERE m.id > ?1 ORDER BY m.id LIMIT 1",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, after);
	if ((rc = sp_row(s, st, "event", e)) < 0)
		return rc;
	memset(&ev, 0, sizeof ev);
	sp_conv(st, &ev.c);
	ev.msg_id = sqlite3_column_int64(st, 7);
	ev.ts_ms = sqlite3_column_int64(st, 8);
	store_sqlite_text(st, 9, ev.author, sizeof ev.author);
	ev.body = (const char *)sqlite3_column_text(st, 10);
	if (!ev.body)
		ev.body = "";
	ev.first = sqlite3_column_int(st, 11) != 0;
	rc = fn(&ev, arg);
	sqlite3_finalize(st);
	return rc;
}

static int sp_count(struct store *s, const char *sql, int64_t after, int64_t *count, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(s, sql, &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, after);
	if ((rc = sp_row(s, st, "count", e)) < 0)
		return rc;
	*count = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

int store_events_after(struct store *s, int64_t after, int64_t *count, pos_err *e)
{
	return sp_count(s, "SELECT count(*) FROM messages WHERE id > ?1", after, count, e);
}

#define SP_SMS_REPLIES                                                                          \
	"FROM messages m JOIN conversation_phones p ON p.conversation_id = m.conversation_id "  \
	"JOIN conversations c ON c.id = m.conversation_id WHERE m.id > ?1 AND m.author = "     \
	"'staff' "

int store_sms_reply_next(struct store *s, int64_t after,
			 int (*fn)(const struct store_sms_reply *r, void *arg), void *arg,
			 pos_err *e)
{
	struct store_sms_reply r;
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT m.id, c.id, c.txn, p.kid, p.sealed, m.body " SP_SMS_REPLIES
		     "ORDER BY m.id LIMIT 1",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, after);
	if ((rc = sp_row(s, st, "sms reply", e)) < 0)
		return rc;
	memset(&r, 0, sizeof r);
	r.msg_id = sqlite3_column_int64(st, 0);
	r.conv_id = sqlite3_column_int64(st, 1);
	store_sqlite_text(st, 2, r.uid, sizeof r.uid);
	store_sqlite_text(st, 3, r.kid, sizeof r.kid);
	store_sqlite_text(st, 4, r.sealed, sizeof r.sealed);
	r.body = (const char *)sqlite3_column_text(st, 5);
	if (!r.body)
		r.body = "";
	rc = fn(&r, arg);
	sqlite3_finalize(st);
	return rc;
}

int store_sms_replies_after(struct store *s, int64_t after, int64_t *count, pos_err *e)
{
	return sp_count(s, "SELECT count(*) " SP_SMS_REPLIES, after, count, e);
}

/* The household of a conversation: the receipt's basket, else the SMS
 * sender's blind index in tid_index; a merged household's survivor. */
static int sp_conv_hhid(struct store *s, const struct store_conversation *c, char *hhid,
			pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT coalesce(mg.into_hhid, h.hhid) FROM (SELECT b.hhid AS hhid FROM "
		     "baskets b WHERE ?2 = 'receipt' AND b.txn = ?3 AND b.hhid IS NOT NULL "
		     "UNION ALL SELECT t.hhid FROM conversation_phones p JOIN tid_index t ON "
		     "t.idx = p.phone_index WHERE p.conversation_id = ?1) h LEFT JOIN merged mg "
		     "ON mg.from_hhid = h.hhid LIMIT 1",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, c->id);
	sqlite3_bind_text(st, 2, c->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->txn, -1, SQLITE_STATIC);
	if ((rc = sp_row(s, st, "household", e)) < 0)
		return rc;
	store_sqlite_text(st, 0, hhid, DEIDENT_ID_LEN + 1);
	sqlite3_finalize(st);
	return 0;
}

int store_conversation_facts(struct store *s, const struct store_conversation *c,
			     int64_t now_ms, struct store_facts *out, pos_err *e)
{
	int64_t since = now_ms - 90LL * 86400000;
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof *out);
	rc = sp_conv_hhid(s, c, out->hhid, e);
	if (rc == POS_ENOTFOUND || (rc == 0 && !out->hhid[0]))
		return 0;
	if (rc < 0)
		return rc;
	out->known = true;
	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT coalesce(max(ts), 0), "
		     "coalesce(sum(ts >= ?2), 0), "
		     "coalesce((SELECT sum(i.price_cents * i.qty) FROM items i JOIN baskets b2 ON "
		     "b2.id = i.basket_id WHERE b2.hhid = ?1 AND b2.ts >= ?2 AND i.price_cents "
		     "IS NOT NULL), 0), "
		     "(SELECT count(*) FROM offer_redemptions WHERE hhid = ?1) "
		     "FROM baskets WHERE hhid = ?1",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, out->hhid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since);
	if ((rc = sp_row(s, st, "facts", e)) < 0)
		return rc;
	out->last_visit_ms = sqlite3_column_int64(st, 0);
	out->visits_90d = (long)sqlite3_column_int64(st, 1);
	out->spend_90d_cents = (long)sqlite3_column_int64(st, 2);
	out->offers_redeemed = (long)sqlite3_column_int64(st, 3);
	sqlite3_finalize(st);
	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT im.category FROM items i JOIN baskets b ON b.id = i.basket_id "
		     "JOIN item_master im ON im.gtin = i.gtin WHERE b.hhid = ?1 AND "
		     "im.category <> '' GROUP BY im.category ORDER BY sum(i.qty) DESC, "
		     "im.category LIMIT ?2",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, out->hhid, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, STORE_FACTS_TOP);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->ntop < STORE_FACTS_TOP)
		store_sqlite_text(st, 0, out->top[out->ntop++], sizeof out->top[0]);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_sqlite_err(s, rc, "facts", e);
	return 0;
}
