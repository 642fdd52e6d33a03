#include "store_vendor.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"
#include "store_public.h"
#include "store_sqlite.h"
#include "timeutil.h"

/*
 * SQLite implementation of store_vendor.h. Rare statements, prepared per
 * call, parameters bound. Each public call is one unit (a savepoint inside
 * the writer's group, or its own transaction on the CLI and the outbox).
 */

#define SV_LINKED_HH                                                                  \
	"SELECT hhid FROM device_households WHERE device_id = ?1 "                  \
	"UNION SELECT r.hhid FROM offer_redemptions r JOIN offer_codes c ON c.code = r.code " \
	"WHERE c.device_id = ?1 AND r.hhid IS NOT NULL"

static int sv_done(struct store *s, sqlite3_stmt *st, const char *what, pos_err *e)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlite_err(s, rc, what, e);
	return 0;
}

static int sv_changes(struct store *s)
{
	return sqlite3_changes(store_sqlite_db(s));
}

/* ------------------------------------------------------------ vendors */

static int sv_vendor_add(struct store *s, const struct store_vendor *v,
			 const unsigned char token_hash[32], int64_t now_ms, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO vendors(id, name, backend, token_hash, secret, created) "
		     "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO NOTHING",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, v->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, v->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, v->backend, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, token_hash, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, v->secret, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now_ms);
	if ((rc = sv_done(s, st, "vendor add", e)) < 0)
		return rc;
	if (sv_changes(s) == 0)
		return err_set(e, POS_ECONFLICT, "vendor '%s' exists already", v->id);
	return 0;
}

int store_vendor_add(struct store *s, const struct store_vendor *v,
		     const unsigned char token_hash[32], int64_t now_ms, pos_err *e)
{
	int rc = store_sqlite_unit_begin(s, e);

	if (rc < 0)
		return rc;
	rc = sv_vendor_add(s, v, token_hash, now_ms, e);
	return store_sqlite_unit_finish(s, rc, e);
}

#define SV_VENDOR_COLS "id, name, backend, secret"

static void sv_vendor_row(sqlite3_stmt *st, int at, struct store_vendor *out)
{
	store_sqlite_text(st, at, out->id, sizeof out->id);
	store_sqlite_text(st, at + 1, out->name, sizeof out->name);
	store_sqlite_text(st, at + 2, out->backend, sizeof out->backend);
	store_sqlite_text(st, at + 3, out->secret, sizeof out->secret);
}

int store_vendor_by_token(struct store *s, const unsigned char token_hash[32],
			  struct store_vendor *out, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s, "SELECT " SV_VENDOR_COLS " FROM vendors WHERE token_hash = ?1", &st, e)) <
	    0)
		return rc;
	sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		sv_vendor_row(st, 0, out);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = err_set(e, POS_ENOTFOUND, "no vendor has this token");
	} else {
		rc = store_sqlite_err(s, rc, "vendor token", e);
	}
	sqlite3_finalize(st);
	return rc;
}

static int sv_nonce(struct store *s, const char *vendor, int64_t ts_s,
		    const unsigned char body_hash[32], int64_t keep_s, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(s, "DELETE FROM vendor_nonces WHERE ts < ?1", &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, time_now_ms() / 1000 - keep_s);
	if ((rc = sv_done(s, st, "nonce purge", e)) < 0)
		return rc;
	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO vendor_nonces(vendor, ts, hash) VALUES (?1, ?2, ?3) "
		     "ON CONFLICT DO NOTHING",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, vendor, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, ts_s);
	sqlite3_bind_blob(st, 3, body_hash, 32, SQLITE_STATIC);
	if ((rc = sv_done(s, st, "nonce", e)) < 0)
		return rc;
	if (sv_changes(s) == 0)
		return err_set(e, POS_ECONFLICT, "this timestamp and body were used before (a replay)");
	return 0;
}

int store_vendor_nonce(struct store *s, const char *vendor, int64_t ts_s,
		       const unsigned char body_hash[32], int64_t keep_s, pos_err *e)
{
	int rc = store_sqlite_unit_begin(s, e);

	if (rc < 0)
		return rc;
	rc = sv_nonce(s, vendor, ts_s, body_hash, keep_s, e);
	return store_sqlite_unit_finish(s, rc, e);
}

int store_relation_put(struct store *s, const char *gtin_a, const char *gtin_b,
		       const char *kind, pos_err *e)
{
	sqlite3_stmt *st;
	int rc = store_sqlite_unit_begin(s, e);

	if (rc < 0)
		return rc;
	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO item_relations(gtin_a, gtin_b, kind) VALUES (?1, ?2, ?3) "
		     "ON CONFLICT(gtin_a, gtin_b) DO UPDATE SET kind = excluded.kind",
		     &st, e)) == 0) {
		sqlite3_bind_text(st, 1, gtin_a, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, gtin_b, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
		rc = sv_done(s, st, "relation", e);
	}
	return store_sqlite_unit_finish(s, rc, e);
}

/* ------------------------------------------------------------ activities */

static int sv_activity_put(struct store *s, const struct store_activity_in *a, int64_t now_ms,
			   bool *created, pos_err *e)
{
	sqlite3_stmt *st;
	char hhid[DEIDENT_ID_LEN + 1] = "";
	bool has_hh = false;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s, "SELECT txn, gtin, kind, at FROM activities WHERE vendor = ?1 AND ref = ?2",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, a->vendor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->ref, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		char txn[37], gtin[GTIN_LEN + 1], kind[STORE_VENDOR_KIND_MAX + 1];

		store_sqlite_text(st, 0, txn, sizeof txn);
		store_sqlite_text(st, 1, gtin, sizeof gtin);
		store_sqlite_text(st, 2, kind, sizeof kind);
		rc = strcmp(txn, a->txn) || strcmp(gtin, a->gtin) || strcmp(kind, a->kind) ||
			     sqlite3_column_int64(st, 3) != a->at_ms ?
			     err_set(e, POS_ECONFLICT,
				     "activity '%s' was registered before with other content", a->ref) :
			     0;
		sqlite3_finalize(st);
		*created = false;
		return rc;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlite_err(s, rc, "activity", e);

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT b.hhid, EXISTS (SELECT 1 FROM items i WHERE i.basket_id = b.id "
		     "AND i.gtin = ?2) FROM baskets b WHERE b.txn = ?1",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, a->txn, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->gtin, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		has_hh = sqlite3_column_type(st, 0) != SQLITE_NULL;
		store_sqlite_text(st, 0, hhid, sizeof hhid);
		rc = sqlite3_column_int(st, 1) ? 0 :
						 err_set(e, POS_EINVAL, "the sale has no item %s", a->gtin);
	} else if (rc == SQLITE_DONE) {
		rc = err_set(e, POS_ENOTFOUND, "no sale has this txn");
	} else {
		rc = store_sqlite_err(s, rc, "activity sale", e);
	}
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO activities(vendor, ref, txn, hhid, gtin, kind, at, state, created) "
		     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?8)",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, a->vendor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->ref, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->txn, -1, SQLITE_STATIC);
	if (has_hh)
		sqlite3_bind_text(st, 4, hhid, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_text(st, 5, a->gtin, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, a->kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, a->at_ms);
	sqlite3_bind_int64(st, 8, now_ms);
	if ((rc = sv_done(s, st, "activity add", e)) < 0)
		return rc;
	*created = true;
	return 0;
}

int store_activity_put(struct store *s, const struct store_activity_in *a, int64_t now_ms,
		       bool *created, pos_err *e)
{
	int rc = store_sqlite_unit_begin(s, e);

	if (rc < 0)
		return rc;
	rc = sv_activity_put(s, a, now_ms, created, e);
	return store_sqlite_unit_finish(s, rc, e);
}

/* ------------------------------------------------------------ events */

static int sv_message_add(struct store *s, const char *hhid, const char *vendor,
			  const char *event_id, const char *kind, const char *text,
			  int64_t activity_id, const char *state, int64_t now_ms, int64_t *id,
			  pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO hh_messages(hhid, vendor, event_id, kind, text, activity_id, "
		     "state, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, vendor, -1, SQLITE_STATIC);
	if (event_id)
		sqlite3_bind_text(st, 3, event_id, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
	if (activity_id > 0)
		sqlite3_bind_int64(st, 6, activity_id);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_text(st, 7, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, now_ms);
	if ((rc = sv_done(s, st, "message add", e)) < 0)
		return rc;
	if (id)
		*id = sqlite3_last_insert_rowid(store_sqlite_db(s));
	return 0;
}

static int sv_outbox_add(struct store *s, const char *kind, int64_t msg, int64_t activity,
			 const char *body, int64_t now_ms, pos_err *e)
{
	sqlite3_stmt *st;
	char idem[64];
	int rc;

	/* The key names the message: one call per message and kind, so a
	 * retry after any crash is the same call to the backend. */
	snprintf(idem, sizeof idem, "%s-%lld", kind, (long long)msg);
	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO outbox(kind, message_id, activity_id, body, idem, next) "
		     "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(idem) DO NOTHING",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, msg);
	sqlite3_bind_int64(st, 3, activity);
	sqlite3_bind_text(st, 4, body, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, idem, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now_ms);
	return sv_done(s, st, "outbox add", e);
}

/* The related activities of other vendors on the household that a
 * delivery of gtin moved to new_at invalidates: booked before it, on the
 * same item or on one declared to require it (either way round). */
static int sv_delay_related(struct store *s, const struct store_vendor_event *ev,
			    const char *hhid, const char *gtin, int64_t now_ms, pos_err *e)
{
	sqlite3_stmt *st;
	int64_t ids[64], at[64];
	char kinds[64][STORE_VENDOR_KIND_MAX + 1];
	int n = 0, rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT a.id, a.kind, a.at FROM activities a WHERE a.hhid = ?1 "
		     "AND a.vendor <> ?2 AND a.state = 'active' AND a.at < ?3 AND (a.gtin = ?4 "
		     "OR EXISTS (SELECT 1 FROM item_relations r WHERE r.kind IN ('requires', 'learned') AND "
		     "((r.gtin_a = a.gtin AND r.gtin_b = ?4) OR (r.gtin_a = ?4 AND r.gtin_b = a.gtin)))) "
		     "ORDER BY a.id LIMIT 64",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ev->vendor, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, ev->new_at_ms);
	sqlite3_bind_text(st, 4, gtin, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < 64) {
		ids[n] = sqlite3_column_int64(st, 0);
		store_sqlite_text(st, 1, kinds[n], sizeof kinds[n]);
		at[n] = sqlite3_column_int64(st, 2);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_sqlite_err(s, rc, "related activities", e);
	for (int i = 0; i < n; i++) {
		char text[STORE_VENDOR_TEXT_MAX + 200], when[TIME_RFC3339_LEN], nw[TIME_RFC3339_LEN];
		int64_t msg;

		time_format_rfc3339(at[i], when);
		time_format_rfc3339(ev->new_at_ms, nw);
		snprintf(text, sizeof text,
			 "Your %s booked for %s comes before the new delivery time %s. "
			 "Pick a new time below, or ask us for help.",
			 kinds[i], when, nw);
		if ((rc = sv_message_add(s, hhid, ev->vendor, ev->id, "reschedule", text, ids[i],
					 "options_pending", now_ms, &msg, e)) < 0 ||
		    (rc = sv_outbox_add(s, "options", msg, ids[i], "", now_ms, e)) < 0)
			return rc;
	}
	return 0;
}

static int sv_event_apply(struct store *s, const struct store_vendor_event *ev, int64_t now_ms,
			  long *households, bool *created, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s, "SELECT households FROM vendor_events WHERE vendor = ?1 AND id = ?2", &st,
		     e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, ev->vendor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ev->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*households = (long)sqlite3_column_int64(st, 0);
		*created = false;
		sqlite3_finalize(st);
		return 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlite_err(s, rc, "event", e);
	*created = true;
	*households = 0;

	if (strcmp(ev->kind, "recall") == 0) {
		if ((rc = store_sqlite_prepare(s, "SELECT vendor FROM item_master WHERE gtin = ?1",
					       &st, e)) < 0)
			return rc;
		sqlite3_bind_text(st, 1, ev->gtin, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			char owner[STORE_ITEM_TEXT_MAX + 1];

			store_sqlite_text(st, 0, owner, sizeof owner);
			rc = strcmp(owner, ev->vendor) == 0 || strcmp(owner, ev->vendor_name) == 0 ?
				     0 :
				     err_set(e, POS_EPERM, "item %s is not this vendor's", ev->gtin);
		} else if (rc == SQLITE_DONE) {
			rc = err_set(e, POS_EPERM, "item %s is not in the item master", ev->gtin);
		} else {
			rc = store_sqlite_err(s, rc, "recall item", e);
		}
		sqlite3_finalize(st);
		if (rc < 0)
			return rc;
		if ((rc = store_sqlite_prepare(
			     s,
			     "INSERT INTO hh_messages(hhid, vendor, event_id, kind, text, state, "
			     "created) SELECT DISTINCT b.hhid, ?1, ?2, 'recall', ?3, 'open', ?4 "
			     "FROM baskets b JOIN items i ON i.basket_id = b.id "
			     "WHERE i.gtin = ?5 AND b.hhid IS NOT NULL",
			     &st, e)) < 0)
			return rc;
		sqlite3_bind_text(st, 1, ev->vendor, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, ev->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, ev->text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now_ms);
		sqlite3_bind_text(st, 5, ev->gtin, -1, SQLITE_STATIC);
		if ((rc = sv_done(s, st, "recall messages", e)) < 0)
			return rc;
		*households = sv_changes(s);
	} else {
		char hhid[DEIDENT_ID_LEN + 1] = "", gtin[GTIN_LEN + 1] = "";
		int64_t act = 0;
		bool has_hh = false;

		if ((rc = store_sqlite_prepare(
			     s,
			     "SELECT id, hhid, gtin FROM activities WHERE vendor = ?1 AND ref = ?2",
			     &st, e)) < 0)
			return rc;
		sqlite3_bind_text(st, 1, ev->vendor, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, ev->activity, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			act = sqlite3_column_int64(st, 0);
			has_hh = sqlite3_column_type(st, 1) != SQLITE_NULL;
			store_sqlite_text(st, 1, hhid, sizeof hhid);
			store_sqlite_text(st, 2, gtin, sizeof gtin);
			rc = 0;
		} else if (rc == SQLITE_DONE) {
			rc = err_set(e, POS_ENOTFOUND, "this vendor has no activity '%s'", ev->activity);
		} else {
			rc = store_sqlite_err(s, rc, "event activity", e);
		}
		sqlite3_finalize(st);
		if (rc < 0)
			return rc;
		if (strcmp(ev->kind, "delay") == 0)
			rc = store_sqlite_prepare(s, "UPDATE activities SET at = ?2 WHERE id = ?1",
						  &st, e);
		else
			rc = store_sqlite_prepare(
				s, "UPDATE activities SET state = 'cancelled' WHERE id = ?1", &st,
				e);
		if (rc < 0)
			return rc;
		sqlite3_bind_int64(st, 1, act);
		if (strcmp(ev->kind, "delay") == 0)
			sqlite3_bind_int64(st, 2, ev->new_at_ms);
		if ((rc = sv_done(s, st, "event update", e)) < 0)
			return rc;
		if (has_hh) {
			if ((rc = sv_message_add(s, hhid, ev->vendor, ev->id, ev->kind, ev->text, act,
						 "open", now_ms, NULL, e)) < 0)
				return rc;
			*households = 1;
			if (strcmp(ev->kind, "delay") == 0 &&
			    (rc = sv_delay_related(s, ev, hhid, gtin, now_ms, e)) < 0)
				return rc;
		}
	}

	if ((rc = store_sqlite_prepare(
		     s,
		     "INSERT INTO vendor_events(vendor, id, kind, gtin, activity, new_at, text, "
		     "households, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, ev->vendor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ev->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, ev->kind, -1, SQLITE_STATIC);
	if (ev->gtin[0])
		sqlite3_bind_text(st, 4, ev->gtin, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	if (ev->activity[0])
		sqlite3_bind_text(st, 5, ev->activity, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	if (ev->new_at_ms)
		sqlite3_bind_int64(st, 6, ev->new_at_ms);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_text(st, 7, ev->text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, *households);
	sqlite3_bind_int64(st, 9, now_ms);
	return sv_done(s, st, "event add", e);
}

int store_vendor_event_apply(struct store *s, const struct store_vendor_event *ev,
			     int64_t now_ms, long *households, bool *created, pos_err *e)
{
	int rc = store_sqlite_unit_begin(s, e);

	if (rc < 0)
		return rc;
	rc = sv_event_apply(s, ev, now_ms, households, created, e);
	return store_sqlite_unit_finish(s, rc, e);
}

/* ------------------------------------------------------------ messages */

static int sv_messages(struct store *s, int64_t device, int limit, int64_t now_ms, json_t **out,
		       pos_err *e)
{
	sqlite3_stmt *st;
	json_t *arr = json_array(), *root = NULL;
	int rc;

	if (!arr)
		return err_set(e, POS_ENOMEM, "out of memory");
	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT m.id, m.kind, m.text, m.state, m.options, m.chosen, m.created, "
		     "a.kind, a.at, v.name FROM hh_messages m "
		     "LEFT JOIN activities a ON a.id = m.activity_id "
		     "LEFT JOIN vendors v ON v.id = m.vendor "
		     "WHERE m.hhid IN (" SV_LINKED_HH ") ORDER BY m.id DESC LIMIT ?2",
		     &st, e)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, device);
	sqlite3_bind_int(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char when[TIME_RFC3339_LEN];
		json_t *m;

		time_format_rfc3339(sqlite3_column_int64(st, 6), when);
		m = json_pack("{s:I, s:s, s:s, s:s, s:s}", "id",
			      (json_int_t)sqlite3_column_int64(st, 0), "kind",
			      (const char *)sqlite3_column_text(st, 1), "text",
			      (const char *)sqlite3_column_text(st, 2), "state",
			      (const char *)sqlite3_column_text(st, 3), "created", when);
		if (!m) {
			sqlite3_finalize(st);
			rc = err_set(e, POS_ENOMEM, "out of memory");
			goto out;
		}
		if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
			json_t *o = json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL);

			if (o)
				json_object_set_new(m, "options", o);
		}
		if (sqlite3_column_type(st, 5) != SQLITE_NULL)
			json_object_set_new(m, "chosen",
					    json_string((const char *)sqlite3_column_text(st, 5)));
		if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
			char at[TIME_RFC3339_LEN];

			time_format_rfc3339(sqlite3_column_int64(st, 8), at);
			json_object_set_new(m, "activity",
					    json_pack("{s:s, s:s}", "kind",
						      (const char *)sqlite3_column_text(st, 7), "at", at));
		}
		if (sqlite3_column_type(st, 9) != SQLITE_NULL)
			json_object_set_new(m, "vendor",
					    json_string((const char *)sqlite3_column_text(st, 9)));
		json_array_append_new(arr, m);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		rc = store_sqlite_err(s, rc, "messages", e);
		goto out;
	}
	if ((rc = store_sqlite_prepare(
		     s,
		     "UPDATE hh_messages SET read = ?2 WHERE read IS NULL AND hhid IN (" SV_LINKED_HH
		     ")",
		     &st, e)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, device);
	sqlite3_bind_int64(st, 2, now_ms);
	if ((rc = sv_done(s, st, "messages read", e)) < 0)
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
	int rc = store_sqlite_unit_begin(s, e);

	*out = NULL;
	if (rc < 0)
		return rc;
	rc = sv_messages(s, device, limit, now_ms, out, e);
	if (rc < 0) {
		json_decref(*out);
		*out = NULL;
	}
	return store_sqlite_unit_finish(s, rc, e);
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

/* Message id when one of the device's households owns it. */
static int sv_msg_get(struct store *s, int64_t device, int64_t id, struct sv_msg *m, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT hhid, state, chosen, text, activity_id, options FROM hh_messages "
		     "WHERE id = ?2 AND hhid IN (" SV_LINKED_HH ")",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, device);
	sqlite3_bind_int64(st, 2, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(m, 0, sizeof *m);
		m->id = id;
		store_sqlite_text(st, 0, m->hhid, sizeof m->hhid);
		store_sqlite_text(st, 1, m->state, sizeof m->state);
		store_sqlite_text(st, 2, m->chosen, sizeof m->chosen);
		store_sqlite_text(st, 3, m->text, sizeof m->text);
		m->activity = sqlite3_column_int64(st, 4);
		m->has_options = sqlite3_column_type(st, 5) != SQLITE_NULL;
		store_sqlite_text(st, 5, m->options, sizeof m->options);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = err_set(e, POS_ENOTFOUND, "no such message");
	} else {
		rc = store_sqlite_err(s, rc, "message", e);
	}
	sqlite3_finalize(st);
	return rc;
}

static int sv_choose(struct store *s, int64_t device, int64_t id, const char *option,
		     int64_t now_ms, bool *created, pos_err *e)
{
	struct sv_msg m;
	sqlite3_stmt *st;
	json_t *opts = NULL, *o, *body = NULL;
	const char *at = NULL;
	char *text = NULL;
	size_t i;
	int rc;

	if ((rc = sv_msg_get(s, device, id, &m, e)) < 0)
		return rc;
	if (m.chosen[0]) {
		*created = false;
		return strcmp(m.chosen, option) == 0 ?
			       0 :
			       err_set(e, POS_ECONFLICT, "option '%s' was picked already", m.chosen);
	}
	if (!m.has_options || m.activity <= 0)
		return err_set(e, POS_ECONFLICT, "this message has no options (yet)");
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
	if ((rc = store_sqlite_prepare(
		     s,
		     "UPDATE hh_messages SET state = 'chosen', chosen = ?2, acted = ?3 WHERE id = ?1",
		     &st, e)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, option, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms);
	if ((rc = sv_done(s, st, "choose", e)) < 0)
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
	int rc = store_sqlite_unit_begin(s, e);

	if (rc < 0)
		return rc;
	rc = sv_choose(s, device, id, option, now_ms, created, e);
	return store_sqlite_unit_finish(s, rc, e);
}

static int sv_support(struct store *s, int64_t device, int64_t id, int64_t now_ms,
		      int64_t *conv, pos_err *e)
{
	struct sv_msg m;
	sqlite3_stmt *st;
	char txn[37] = "", store[STORE_ID_MAX + 1] = "", body[STORE_VENDOR_TEXT_MAX + 300];
	int64_t msg;
	int rc;

	if ((rc = sv_msg_get(s, device, id, &m, e)) < 0)
		return rc;
	if (m.activity <= 0)
		return err_set(e, POS_ECONFLICT, "this message is about no booking");
	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT b.txn, b.store FROM activities a JOIN baskets b ON b.txn = a.txn "
		     "WHERE a.id = ?1",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, m.activity);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_sqlite_text(st, 0, txn, sizeof txn);
		store_sqlite_text(st, 1, store, sizeof store);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? err_set(e, POS_ENOTFOUND, "the sale is gone") :
					 store_sqlite_err(s, rc, "support sale", e);
	}
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	snprintf(body, sizeof body, "I would like help with this: %s", m.text);
	if ((rc = store_message_add_keyed(s, "support", txn, store, "customer", body, now_ms, conv,
					  &msg, e)) < 0)
		return rc;
	if ((rc = store_sqlite_prepare(
		     s, "UPDATE hh_messages SET acted = coalesce(acted, ?2) WHERE id = ?1", &st,
		     e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms);
	return sv_done(s, st, "support", e);
}

int store_message_support(struct store *s, int64_t device, int64_t id, int64_t now_ms,
			  int64_t *conv, pos_err *e)
{
	int rc = store_sqlite_unit_begin(s, e);

	if (rc < 0)
		return rc;
	rc = sv_support(s, device, id, now_ms, conv, e);
	return store_sqlite_unit_finish(s, rc, e);
}

/* ------------------------------------------------------------ outbox */

int store_outbox_due(struct store *s, int64_t now_ms, struct store_outbox_job *out, size_t max,
		     size_t *n, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	*n = 0;
	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT o.id, o.kind, o.message_id, o.activity_id, o.body, o.idem, o.attempts, "
		     "a.ref, a.hhid, v.id, v.name, v.backend, v.secret FROM outbox o "
		     "JOIN activities a ON a.id = o.activity_id JOIN vendors v ON v.id = a.vendor "
		     "WHERE o.done IS NULL AND o.next <= ?1 ORDER BY o.next LIMIT ?2",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
		struct store_outbox_job *j = &out[(*n)++];

		memset(j, 0, sizeof *j);
		j->id = sqlite3_column_int64(st, 0);
		store_sqlite_text(st, 1, j->kind, sizeof j->kind);
		j->message_id = sqlite3_column_int64(st, 2);
		j->activity_id = sqlite3_column_int64(st, 3);
		store_sqlite_text(st, 4, j->body, sizeof j->body);
		store_sqlite_text(st, 5, j->idem, sizeof j->idem);
		j->attempts = sqlite3_column_int(st, 6);
		store_sqlite_text(st, 7, j->ref, sizeof j->ref);
		store_sqlite_text(st, 8, j->hhid, sizeof j->hhid);
		sv_vendor_row(st, 9, &j->v);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_sqlite_err(s, rc, "outbox", e);
	return 0;
}

int store_outbox_retry(struct store *s, int64_t id, int64_t next_ms, pos_err *e)
{
	sqlite3_stmt *st;
	int rc = store_sqlite_unit_begin(s, e);

	if (rc < 0)
		return rc;
	if ((rc = store_sqlite_prepare(
		     s, "UPDATE outbox SET attempts = attempts + 1, next = ?2 WHERE id = ?1", &st,
		     e)) == 0) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, next_ms);
		rc = sv_done(s, st, "outbox retry", e);
	}
	return store_sqlite_unit_finish(s, rc, e);
}

static int sv_outbox_done(struct store *s, int64_t id, int64_t now_ms, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(s, "UPDATE outbox SET done = ?2 WHERE id = ?1", &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms);
	return sv_done(s, st, "outbox done", e);
}

int store_outbox_options_done(struct store *s, const struct store_outbox_job *j,
			      const char *options, int64_t now_ms, pos_err *e)
{
	sqlite3_stmt *st;
	int rc = store_sqlite_unit_begin(s, e);

	if (rc < 0)
		return rc;
	if ((rc = sv_outbox_done(s, j->id, now_ms, e)) == 0 &&
	    (rc = store_sqlite_prepare(s,
				       "UPDATE hh_messages SET options = ?2, state = 'open' "
				       "WHERE id = ?1 AND state = 'options_pending'",
				       &st, e)) == 0) {
		sqlite3_bind_int64(st, 1, j->message_id);
		sqlite3_bind_text(st, 2, options, -1, SQLITE_STATIC);
		rc = sv_done(s, st, "options", e);
	}
	return store_sqlite_unit_finish(s, rc, e);
}

int store_outbox_reschedule_done(struct store *s, const struct store_outbox_job *j,
				 int64_t at_ms, int64_t now_ms, pos_err *e)
{
	sqlite3_stmt *st;
	char when[TIME_RFC3339_LEN], text[STORE_VENDOR_TEXT_MAX + 1];
	int rc = store_sqlite_unit_begin(s, e);

	if (rc < 0)
		return rc;
	if ((rc = sv_outbox_done(s, j->id, now_ms, e)) < 0)
		goto out;
	if ((rc = store_sqlite_prepare(s, "UPDATE activities SET at = ?2 WHERE id = ?1", &st, e)) <
	    0)
		goto out;
	sqlite3_bind_int64(st, 1, j->activity_id);
	sqlite3_bind_int64(st, 2, at_ms);
	if ((rc = sv_done(s, st, "activity moved", e)) < 0)
		goto out;
	if ((rc = store_sqlite_prepare(s, "UPDATE hh_messages SET state = 'done' WHERE id = ?1",
				       &st, e)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, j->message_id);
	if ((rc = sv_done(s, st, "message done", e)) < 0)
		goto out;
	time_format_rfc3339(at_ms, when);
	snprintf(text, sizeof text, "Done: %s moved your booking to %s.", j->v.name, when);
	rc = sv_message_add(s, j->hhid, j->v.id, NULL, "confirmation", text, j->activity_id,
			    "open", now_ms, NULL, e);
out:
	return store_sqlite_unit_finish(s, rc, e);
}

int store_outbox_refused(struct store *s, const struct store_outbox_job *j, int64_t now_ms,
			 pos_err *e)
{
	sqlite3_stmt *st;
	bool resched = strcmp(j->kind, "reschedule") == 0;
	char text[STORE_VENDOR_TEXT_MAX + 1];
	int rc = store_sqlite_unit_begin(s, e);

	if (rc < 0)
		return rc;
	if ((rc = sv_outbox_done(s, j->id, now_ms, e)) < 0)
		goto out;
	if ((rc = store_sqlite_prepare(s, "UPDATE hh_messages SET state = ?2 WHERE id = ?1", &st,
				       e)) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, j->message_id);
	sqlite3_bind_text(st, 2, resched ? "failed" : "no_options", -1, SQLITE_STATIC);
	if ((rc = sv_done(s, st, "message refused", e)) < 0 || !resched)
		goto out;
	snprintf(text, sizeof text,
		 "%s could not move your booking to that time. Ask us for help and we will "
		 "find another.",
		 j->v.name);
	rc = sv_message_add(s, j->hhid, j->v.id, NULL, "reschedule_failed", text, j->activity_id,
			    "open", now_ms, NULL, e);
out:
	return store_sqlite_unit_finish(s, rc, e);
}

int store_outbox_pending(struct store *s, long *n, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(s, "SELECT count(*) FROM outbox WHERE done IS NULL", &st,
				       e)) < 0)
		return rc;
	rc = sqlite3_step(st);
	*n = rc == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store_sqlite_err(s, rc, "outbox count", e);
}

int store_items_related(struct store *s, const char *gtin, long min_baskets, double min_lift,
			int limit, int (*fn)(const struct store_related *r, void *arg), void *arg,
			pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "WITH x AS (SELECT DISTINCT basket_id FROM items WHERE gtin = ?1), "
		     "co AS (SELECT i.gtin, count(DISTINCT i.basket_id) AS c FROM items i "
		     "  JOIN x ON x.basket_id = i.basket_id WHERE i.gtin <> ?1 GROUP BY i.gtin "
		     "  HAVING count(DISTINCT i.basket_id) >= ?2), "
		     "ny AS (SELECT gtin, count(DISTINCT basket_id) AS c FROM items "
		     "  WHERE gtin IN (SELECT gtin FROM co) GROUP BY gtin), "
		     "r AS (SELECT co.gtin, co.c, (co.c * 1.0 * (SELECT count(*) FROM baskets)) / "
		     "  ((SELECT count(*) FROM x) * ny.c) AS lift FROM co JOIN ny ON ny.gtin = co.gtin) "
		     "SELECT r.gtin, r.c, r.lift, coalesce(m.name, '') FROM r "
		     "LEFT JOIN item_master m ON m.gtin = r.gtin WHERE r.lift >= ?3 "
		     "ORDER BY r.lift DESC, r.gtin LIMIT ?4",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, gtin, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, min_baskets);
	sqlite3_bind_double(st, 3, min_lift);
	sqlite3_bind_int(st, 4, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_related r;
		int frc;

		store_sqlite_text(st, 0, r.gtin, sizeof r.gtin);
		r.baskets = (long)sqlite3_column_int64(st, 1);
		r.lift = sqlite3_column_double(st, 2);
		r.name = (const char *)sqlite3_column_text(st, 3);
		if ((frc = fn(&r, arg)) != 0) {
			sqlite3_finalize(st);
			return frc;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_sqlite_err(s, rc, "related items", e);
}

int store_vendor_report(struct store *s, const char *event_id, long *reached, long *read,
			long *acted, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = store_sqlite_prepare(
		     s,
		     "SELECT (SELECT count(*) FROM vendor_events WHERE id = ?1), "
		     "count(DISTINCT hhid), count(DISTINCT CASE WHEN read IS NOT NULL THEN hhid END), "
		     "count(DISTINCT CASE WHEN acted IS NOT NULL THEN hhid END) "
		     "FROM hh_messages WHERE event_id = ?1",
		     &st, e)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_int64(st, 0) == 0) {
		rc = err_set(e, POS_ENOTFOUND, "no event has id '%s'", event_id);
	} else if (rc == SQLITE_ROW) {
		*reached = (long)sqlite3_column_int64(st, 1);
		*read = (long)sqlite3_column_int64(st, 2);
		*acted = (long)sqlite3_column_int64(st, 3);
		rc = 0;
	} else {
		rc = store_sqlite_err(s, rc, "report", e);
	}
	sqlite3_finalize(st);
	return rc;
}

/* ------------------------------------------------------------ products */

/* What the device's households bought, newest first, each item of a sale
 * once, with the activities vendors registered against it. limit + 1
 * products are asked for, to tell whether there are more. */
static const char SQL_PRODUCTS[] =
	"WITH hh AS (SELECT hhid FROM device_households WHERE device_id = ?1 "
	"  UNION SELECT r.hhid FROM offer_redemptions r JOIN offer_codes c ON c.code = r.code "
	"  WHERE c.device_id = ?1 AND r.hhid IS NOT NULL), "
	"p AS (SELECT DISTINCT b.id AS basket, b.ts AS ts, b.store AS store, b.txn AS txn, "
	"  i.gtin AS gtin FROM baskets b JOIN items i ON i.basket_id = b.id "
	"  WHERE b.hhid IN (SELECT hhid FROM hh) ORDER BY ts DESC, basket DESC, gtin LIMIT ?2) "
	"SELECT p.basket, p.ts, p.store, p.gtin, coalesce(m.name, ''), a.id, a.kind, a.at, "
	"  a.state, coalesce(v.name, a.vendor) FROM p "
	"LEFT JOIN item_master m ON m.gtin = p.gtin "
	"LEFT JOIN activities a ON a.txn = p.txn AND a.gtin = p.gtin "
	"LEFT JOIN vendors v ON v.id = a.vendor "
	"ORDER BY p.ts DESC, p.basket DESC, p.gtin, a.at, a.id";

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
	if (!(st = store_q(s, SQL_PRODUCTS, e))) {
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
