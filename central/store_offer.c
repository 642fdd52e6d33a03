#include "store.h"

#include <string.h>

#include "store_impl.h"
#include "timeutil.h"

/*
 * Offers, devices, accepted codes, redemptions and the redemption report.
 * The store keeps the facts; whether a code can be redeemed is the
 * offers module's rule (offers.h), asked through the connection's judge.
 */

#define OFFER_COLS                                                                           \
	"o.id, o.title, o.reward, o.target, o.valid_from, o.valid_to, o.created, o.ended"
/* ?2 is the time the offer must be open at. */
#define OFFER_OPEN                                                                           \
	"o.ended IS NULL AND (o.valid_from IS NULL OR o.valid_from <= ?2) AND "             \
	"(o.valid_to IS NULL OR o.valid_to > ?2)"
#define CODE_COLS "c.code, c.accepted, " OFFER_COLS ", r.ts, r.store, r.hhid, r.basket_id"
#define CODE_FROM                                                                            \
	" FROM offer_codes c JOIN offers o ON o.id = c.offer_id "                          \
	"LEFT JOIN offer_redemptions r ON r.code = c.code "

static const char SQL_OFFER_INS[] =
	"INSERT INTO offers(id, title, reward, target, valid_from, valid_to, created) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING";
static const char SQL_OFFER_GET[] = "SELECT " OFFER_COLS " FROM offers o WHERE o.id = ?1";
static const char SQL_OFFER_END[] = "UPDATE offers SET ended = ?2 WHERE id = ?1 AND ended IS NULL";
static const char SQL_OFFER_LIST[] = "SELECT " OFFER_COLS " FROM offers o WHERE ?1 = 0 OR (" OFFER_OPEN
				     ") ORDER BY o.created, o.id";
static const char SQL_DEV_INS[] =
	"INSERT INTO offer_devices(token_hash, created) VALUES (?1, ?2) RETURNING id";
static const char SQL_DEV_GET[] = "SELECT id, CASE WHEN used IS NULL THEN 0 ELSE 1 END "
				  "FROM offer_devices WHERE token_hash = ?1";
static const char SQL_CODE_BY_DEV[] =
	"SELECT code FROM offer_codes WHERE device_id = ?1 AND offer_id = ?2";
/* A code taken (or the device's acceptance made by another connection)
 * inserts nothing: the caller draws another code or reads the other. */
static const char SQL_CODE_INS[] = "INSERT INTO offer_codes(code, offer_id, device_id, accepted) "
				   "VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";
static const char SQL_CODE_GET[] = "SELECT " CODE_COLS CODE_FROM "WHERE c.code = ?1";
static const char SQL_DEV_CODES[] =
	"SELECT " CODE_COLS CODE_FROM "WHERE c.device_id = ?1 ORDER BY c.accepted, c.code";
/* Once per code across every connection and node: the primary key. */
static const char SQL_REDEEM_INS[] =
	"INSERT INTO offer_redemptions(code, basket_id, ts, store, hhid) "
	"VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (code) DO NOTHING";
/* Targeted offers first: an item bought by a household of one of the
 * device's redemptions (baskets by the (hhid, ts) index, items by basket),
 * then offers for all. */
#define NEXT_SQL(bought)                                                                     \
	"SELECT " OFFER_COLS ", CASE WHEN o.target <> 'all' THEN 1 ELSE 0 END AS targeted " \
	"FROM offers o WHERE (" OFFER_OPEN ") AND NOT EXISTS (SELECT 1 FROM offer_codes c "  \
	"WHERE c.device_id = ?1 AND c.offer_id = o.id) AND (o.target = 'all' OR "          \
	"(o.target LIKE 'gtin:%' AND EXISTS (SELECT 1 FROM offer_redemptions r "            \
	"JOIN offer_codes c ON c.code = r.code " bought " WHERE c.device_id = ?1 "          \
	"AND i.gtin = substr(o.target, 6)))) "                                             \
	"ORDER BY targeted DESC, o.created DESC, o.id LIMIT ?3"
static const char SQL_NEXT_SQLITE[] =
	NEXT_SQL("JOIN baskets b ON b.hhid = r.hhid JOIN items i ON i.basket_id = b.id");
/* PostgreSQL: the household's baskets by the (hhid, ts) index, a LATERAL
 * probe never flattened into a join (OFFSET 0), and each one's items from
 * its own month (STORE_SQL_ITEMS_OF_PG): as a plain join on the
 * partitioned parents (no statistics there) the planner scanned every
 * basket for a targeted offer none of them bought, and probed every
 * month's items per basket. */
static const char SQL_NEXT_PG[] =
	NEXT_SQL("CROSS JOIN LATERAL (SELECT id, ts FROM baskets WHERE hhid = r.hhid OFFSET 0) b "
		 "CROSS JOIN " STORE_SQL_ITEMS_OF_PG("gtin", "b"));
/* The day of a redemption (UTC) is the one text the backends spell
 * differently. */
#define REPORT_SQL(day)                                                                      \
	"SELECT o.id, o.title, r.store, " day ", count(*) FROM offer_redemptions r "        \
	"JOIN offer_codes c ON c.code = r.code JOIN offers o ON o.id = c.offer_id "        \
	"GROUP BY 1, 2, 3, 4 ORDER BY 1, 3, 4"
static const char SQL_REPORT_SQLITE[] =
	REPORT_SQL("strftime('%Y-%m-%d', r.ts / 1000, 'unixepoch')");
static const char SQL_REPORT_PG[] =
	REPORT_SQL("to_char(to_timestamp(r.ts / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')");
static const char SQL_DEV_UNUSED[] = "SELECT unused_devices FROM counters";
static const char SQL_DEV_HAS[] = "SELECT 1 FROM offer_devices WHERE id = ?1";
static const char SQL_DEV_USE[] =
	"UPDATE offer_devices SET used = ?2 WHERE id = ?1 AND used IS NULL";
/* The partial index offer_devices_unused holds exactly these rows. */
static const char SQL_DEV_PURGE[] =
	"DELETE FROM offer_devices WHERE id IN (SELECT id FROM offer_devices "
	"WHERE used IS NULL AND created < ?1 ORDER BY created LIMIT ?2)";

/* Reads OFFER_COLS starting at column i. */
static void col_offer(struct db_stmt *st, int i, struct store_offer *o)
{
	db_col_copy(st, i, o->id, sizeof o->id);
	db_col_copy(st, i + 1, o->title, sizeof o->title);
	db_col_copy(st, i + 2, o->reward, sizeof o->reward);
	db_col_copy(st, i + 3, o->target, sizeof o->target);
	o->from_ms = db_col_int64(st, i + 4);
	o->to_ms = db_col_int64(st, i + 5);
	o->created_ms = db_col_int64(st, i + 6);
	o->ended_ms = db_col_int64(st, i + 7);
}

/* Reads CODE_COLS; *basket_id (optional) the redeeming basket, 0 if none. */
static void col_code(struct db_stmt *st, struct store_offer_code *c, int64_t *basket_id)
{
	memset(c, 0, sizeof *c);
	db_col_copy(st, 0, c->code, sizeof c->code);
	c->accepted_ms = db_col_int64(st, 1);
	col_offer(st, 2, &c->offer);
	c->redeemed = !db_col_null(st, 13);
	if (c->redeemed) {
		c->redeemed_ms = db_col_int64(st, 10);
		db_col_copy(st, 11, c->store, sizeof c->store);
		db_col_copy(st, 12, c->hhid, sizeof c->hhid);
	}
	if (basket_id)
		*basket_id = c->redeemed ? db_col_int64(st, 13) : 0;
}

/* 0 with *out filled, POS_ENOTFOUND or an error. */
static int code_get(struct store *s, const char *code, struct store_offer_code *out,
		    int64_t *basket_id, pos_err *e)
{
	struct db_stmt *st = store_q(s, SQL_CODE_GET, e);
	int rc;

	if (!st)
		return POS_EDB;
	db_bind_text(st, 1, code);
	rc = store_row(st, e);
	if (rc == POS_ENOTFOUND)
		return err_set(e, POS_ENOTFOUND, "unknown offer code");
	if (rc < 0)
		return rc;
	col_code(st, out, basket_id);
	db_reset(st);
	return 0;
}

/* Writes the redemption of c by basket id; *taken when another basket
 * redeemed it first. */
static int redeem_insert(struct store *s, const struct store_basket *b, int64_t id,
			 const char *hh, const char *code, bool *taken, pos_err *e)
{
	struct db_stmt *st = store_q(s, SQL_REDEEM_INS, e);
	int rc;

	if (!st)
		return POS_EDB;
	db_bind_text(st, 1, code);
	db_bind_int64(st, 2, id);
	db_bind_int64(st, 3, b->ts_ms);
	db_bind_text(st, 4, b->store);
	db_bind_opt_text(st, 5, hh);
	if ((rc = db_run(st, e)) < 0)
		return rc;
	*taken = db_changes(st) == 0;
	return 0;
}

int store_offer_redeem(struct store *s, const struct store_basket *b, int64_t id, const char *hh,
		       pos_err *e)
{
	if (!s->judge)
		return 0;
	for (size_t i = 0; i < b->n_offers; i++) {
		struct store_offer_use *u = &b->offers[i];
		struct store_offer_code c;
		bool seen = false, taken = false;
		int rc;

		/* A code carried twice by one basket counts once. */
		for (size_t k = 0; k < i && !seen; k++) {
			if (strcmp(b->offers[k].code, u->code) != 0)
				continue;
			u->state = b->offers[k].state;
			u->reason = b->offers[k].reason;
			seen = true;
		}
		if (seen)
			continue;
		rc = code_get(s, u->code, &c, NULL, e);
		if (rc == POS_ENOTFOUND) {
			err_clear(e);
			u->state = STORE_OFFER_REFUSED;
			u->reason = STORE_OFFER_UNKNOWN;
			continue;
		}
		if (rc < 0)
			return rc;
		/* Judged at the basket's time at the lane: a code scanned
		 * before its offer expired counts even when uploaded after. */
		u->reason = s->judge(&c, b->ts_ms);
		if (u->reason != STORE_OFFER_OK) {
			u->state = STORE_OFFER_REFUSED;
			continue;
		}
		if ((rc = redeem_insert(s, b, id, hh, c.code, &taken, e)) < 0)
			return rc;
		if (taken) {
			/* Redeemed by a basket another node stored meanwhile. */
			c.redeemed = true;
			u->state = STORE_OFFER_REFUSED;
			u->reason = s->judge(&c, b->ts_ms);
			if (u->reason == STORE_OFFER_OK)
				u->reason = STORE_OFFER_USED;
			continue;
		}
		u->state = STORE_OFFER_REDEEMED;
	}
	return 0;
}

int store_offer_replay(struct store *s, const struct store_basket *b, int64_t id, pos_err *e)
{
	if (!s->judge)
		return 0;
	for (size_t i = 0; i < b->n_offers; i++) {
		struct store_offer_use *u = &b->offers[i];
		struct store_offer_code c;
		int64_t by = 0;
		int rc = code_get(s, u->code, &c, &by, e);

		if (rc == POS_ENOTFOUND) {
			err_clear(e);
			u->state = STORE_OFFER_REFUSED;
			u->reason = STORE_OFFER_UNKNOWN;
			continue;
		}
		if (rc < 0)
			return rc;
		if (c.redeemed && by == id) {
			u->state = STORE_OFFER_REDEEMED;
			u->reason = STORE_OFFER_OK;
		} else {
			u->state = STORE_OFFER_REFUSED;
			u->reason = s->judge(&c, b->ts_ms);
			if (u->reason == STORE_OFFER_OK)
				u->reason = STORE_OFFER_UNKNOWN;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- offers */

static bool offer_fits(const struct store_offer *o)
{
	return strnlen(o->id, sizeof o->id) == STORE_OFFER_ID_LEN && o->title[0] &&
	       strnlen(o->title, sizeof o->title) < sizeof o->title && o->reward[0] &&
	       strnlen(o->reward, sizeof o->reward) < sizeof o->reward && o->target[0] &&
	       strnlen(o->target, sizeof o->target) < sizeof o->target;
}

int store_offer_create(struct store *s, const struct store_offer *o, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if (!s || !o)
		return err_set(e, POS_EINVAL, "store_offer_create: missing argument");
	if (!offer_fits(o))
		return err_set(e, POS_EINVAL, "store_offer_create: malformed offer");
	rc = store_unit_begin(s, e);
	if (rc < 0)
		return rc;
	st = store_q(s, SQL_OFFER_INS, e);
	if (!st)
		return store_unit_finish(s, POS_EDB, e);
	db_bind_text(st, 1, o->id);
	db_bind_text(st, 2, o->title);
	db_bind_text(st, 3, o->reward);
	db_bind_text(st, 4, o->target);
	store_bind_ms(st, 5, o->from_ms);
	store_bind_ms(st, 6, o->to_ms);
	db_bind_int64(st, 7, o->created_ms ? o->created_ms : time_now_ms());
	rc = db_run(st, e);
	if (rc == 0 && db_changes(st) == 0)
		rc = err_set(e, POS_ECONFLICT, "offer %s exists", o->id);
	return store_unit_finish(s, rc, e);
}

int store_offer_get(struct store *s, const char *id, struct store_offer *out, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if (!s || !id || !out)
		return err_set(e, POS_EINVAL, "store_offer_get: missing argument");
	memset(out, 0, sizeof *out);
	st = store_q(s, SQL_OFFER_GET, e);
	if (!st)
		return POS_EDB;
	db_bind_text(st, 1, id);
	rc = store_row(st, e);
	if (rc == POS_ENOTFOUND)
		return err_set(e, POS_ENOTFOUND, "unknown offer");
	if (rc < 0)
		return rc;
	col_offer(st, 0, out);
	db_reset(st);
	return 0;
}

int store_offer_end(struct store *s, const char *id, int64_t now_ms, pos_err *e)
{
	struct store_offer o;
	struct db_stmt *st;
	int rc;

	if (!s || !id)
		return err_set(e, POS_EINVAL, "store_offer_end: missing argument");
	rc = store_unit_begin(s, e);
	if (rc < 0)
		return rc;
	rc = store_offer_get(s, id, &o, e);
	if (rc == 0 && o.ended_ms)
		rc = err_set(e, POS_ECONFLICT, "offer %s has already ended", o.id);
	if (rc == 0) {
		st = store_q(s, SQL_OFFER_END, e);
		if (!st)
			return store_unit_finish(s, POS_EDB, e);
		db_bind_text(st, 1, id);
		db_bind_int64(st, 2, now_ms);
		rc = db_run(st, e);
		/* Ended by another connection since the read. */
		if (rc == 0 && db_changes(st) == 0)
			rc = err_set(e, POS_ECONFLICT, "offer %s has already ended", o.id);
	}
	return store_unit_finish(s, rc, e);
}

struct offer_walk {
	int (*fn)(const struct store_offer *o, void *arg);
	int (*next)(const struct store_offer *o, bool targeted, void *arg);
	void *arg;
};

static int offer_row(struct db_stmt *st, void *arg)
{
	struct offer_walk *w = arg;
	struct store_offer o;

	memset(&o, 0, sizeof o);
	col_offer(st, 0, &o);
	if (w->next)
		return w->next(&o, db_col_int64(st, 8) != 0, w->arg);
	return w->fn(&o, w->arg);
}

int store_offer_list(struct store *s, bool open_only, int64_t now_ms,
		     int (*fn)(const struct store_offer *o, void *arg), void *arg, pos_err *e)
{
	struct offer_walk w = { .fn = fn, .arg = arg };
	struct db_stmt *st;

	if (!s || !fn)
		return err_set(e, POS_EINVAL, "store_offer_list: missing argument");
	st = store_q(s, SQL_OFFER_LIST, e);
	if (!st)
		return POS_EDB;
	db_bind_int64(st, 1, open_only ? 1 : 0);
	db_bind_int64(st, 2, now_ms);
	return db_each(st, offer_row, &w, e);
}

/* ---------------------------------------------------------------- devices */

int store_device_add(struct store *s, const unsigned char hash[32], int64_t now_ms, int64_t *id,
		     pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if (!s || !hash || !id)
		return err_set(e, POS_EINVAL, "store_device_add: missing argument");
	rc = store_unit_begin(s, e);
	if (rc < 0)
		return rc;
	st = store_q(s, SQL_DEV_INS, e);
	if (!st)
		return store_unit_finish(s, POS_EDB, e);
	db_bind_blob(st, 1, hash, 32);
	db_bind_int64(st, 2, now_ms);
	rc = store_row(st, e);
	if (rc == POS_ENOTFOUND)
		rc = err_set(e, POS_EDB, "device insert: no id came back");
	if (rc == 0) {
		*id = db_col_int64(st, 0);
		db_reset(st);
	}
	return store_unit_finish(s, rc, e);
}

/* Marks device used (from now_ms) unless it was; POS_ENOTFOUND when it
 * does not exist. Inside the caller's unit. */
static int store_device_use(struct store *s, int64_t device, int64_t now_ms, pos_err *e)
{
	struct db_stmt *st = store_q(s, SQL_DEV_USE, e);
	int rc;

	if (!st)
		return POS_EDB;
	db_bind_int64(st, 1, device);
	db_bind_int64(st, 2, now_ms);
	if ((rc = db_run(st, e)) < 0)
		return rc;
	if (db_changes(st) > 0)
		return 0;
	/* Nothing changed: used before, or gone. */
	if (!(st = store_q(s, SQL_DEV_HAS, e)))
		return POS_EDB;
	db_bind_int64(st, 1, device);
	rc = store_row(st, e);
	if (rc == POS_ENOTFOUND)
		return err_set(e, POS_ENOTFOUND, "unknown device");
	if (rc == 0)
		db_reset(st);
	return rc;
}

int store_device_find(struct store *s, const unsigned char hash[32], int64_t *id, bool *used,
		      pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if (!s || !hash || !id)
		return err_set(e, POS_EINVAL, "store_device_find: missing argument");
	st = store_q(s, SQL_DEV_GET, e);
	if (!st)
		return POS_EDB;
	db_bind_blob(st, 1, hash, 32);
	rc = store_row(st, e);
	if (rc == POS_ENOTFOUND)
		return err_set(e, POS_ENOTFOUND, "unknown device");
	if (rc < 0)
		return rc;
	*id = db_col_int64(st, 0);
	if (used)
		*used = db_col_int64(st, 1) != 0;
	db_reset(st);
	return 0;
}

int store_device_unused(struct store *s, long *n, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if (!s || !n)
		return err_set(e, POS_EINVAL, "store_device_unused: missing argument");
	if (!(st = store_q(s, SQL_DEV_UNUSED, e)))
		return POS_EDB;
	rc = store_row(st, e);
	if (rc == POS_ENOTFOUND)
		return err_set(e, POS_EDB, "unused devices: the counters row is missing");
	if (rc < 0)
		return rc;
	*n = (long)db_col_int64(st, 0);
	db_reset(st);
	return 0;
}

int store_device_mark_used(struct store *s, int64_t id, int64_t now_ms, pos_err *e)
{
	int rc;

	if (!s)
		return err_set(e, POS_EINVAL, "store_device_mark_used: missing argument");
	if ((rc = store_unit_begin(s, e)) < 0)
		return rc;
	return store_unit_finish(s, store_device_use(s, id, now_ms, e), e);
}

int store_device_purge(struct store *s, int64_t before_ms, long limit, long *removed, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if (!s || !removed || limit < 1)
		return err_set(e, POS_EINVAL, "store_device_purge: missing argument");
	*removed = 0;
	if ((rc = store_unit_begin(s, e)) < 0)
		return rc;
	if (!(st = store_q(s, SQL_DEV_PURGE, e)))
		return store_unit_finish(s, POS_EDB, e);
	db_bind_int64(st, 1, before_ms);
	db_bind_int64(st, 2, limit);
	rc = db_run(st, e);
	if (rc == 0)
		*removed = db_changes(st);
	rc = store_unit_finish(s, rc, e);
	if (rc < 0)
		*removed = 0;
	return rc;
}

/* ---------------------------------------------------------------- codes */

/* The code device holds for offer_id: 0 with out set, POS_ENOTFOUND (e
 * untouched) or an error. */
static int code_by_device(struct store *s, int64_t device, const char *offer_id,
			  char out[STORE_OFFER_CODE_LEN + 1], pos_err *e)
{
	struct db_stmt *st = store_q(s, SQL_CODE_BY_DEV, e);
	int rc;

	if (!st)
		return POS_EDB;
	db_bind_int64(st, 1, device);
	db_bind_text(st, 2, offer_id);
	if ((rc = store_row(st, e)) < 0)
		return rc;
	db_col_copy(st, 0, out, STORE_OFFER_CODE_LEN + 1);
	db_reset(st);
	return 0;
}

int store_offer_accept(struct store *s, int64_t device, const char *offer_id, const char *code,
		       bool may_create, int64_t now_ms, char out[STORE_OFFER_CODE_LEN + 1],
		       bool *created, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if (!s || !offer_id || !code || !out || !created)
		return err_set(e, POS_EINVAL, "store_offer_accept: missing argument");
	if (strlen(code) != STORE_OFFER_CODE_LEN)
		return err_set(e, POS_EINVAL, "store_offer_accept: malformed code");
	*created = false;
	rc = store_unit_begin(s, e);
	if (rc < 0)
		return rc;
	/* The writer's connection checks no foreign keys: a device removed
	 * since its request was authenticated is looked for here. */
	if ((rc = store_device_use(s, device, now_ms, e)) < 0)
		return store_unit_finish(s, rc, e);
	/* Under the write lock: two accepts of one offer by one device race
	 * to the same answer. */
	rc = code_by_device(s, device, offer_id, out, e);
	if (rc != POS_ENOTFOUND)
		return store_unit_finish(s, rc, e);
	if (!may_create)
		return store_unit_finish(s, err_set(e, POS_EPERM, "this offer is not open"), e);
	st = store_q(s, SQL_CODE_INS, e);
	if (!st)
		return store_unit_finish(s, POS_EDB, e);
	db_bind_text(st, 1, code);
	db_bind_text(st, 2, offer_id);
	db_bind_int64(st, 3, device);
	db_bind_int64(st, 4, now_ms);
	rc = db_run(st, e);
	if (rc == POS_ENOTFOUND)
		rc = err_set(e, POS_ENOTFOUND, "unknown offer or device");
	else if (rc == 0 && db_changes(st) == 0)
		rc = err_set(e, POS_ECONFLICT, "offer code already issued");
	else if (rc == 0) {
		memcpy(out, code, STORE_OFFER_CODE_LEN + 1);
		*created = true;
	}
	return store_unit_finish(s, rc, e);
}

int store_offer_code_get(struct store *s, const char *code, struct store_offer_code *out,
			 pos_err *e)
{
	if (!s || !code || !out)
		return err_set(e, POS_EINVAL, "store_offer_code_get: missing argument");
	memset(out, 0, sizeof *out);
	return code_get(s, code, out, NULL, e);
}

struct code_walk {
	int (*fn)(const struct store_offer_code *c, void *arg);
	void *arg;
};

static int code_row(struct db_stmt *st, void *arg)
{
	struct code_walk *w = arg;
	struct store_offer_code c;

	col_code(st, &c, NULL);
	return w->fn(&c, w->arg);
}

int store_device_codes(struct store *s, int64_t device,
		       int (*fn)(const struct store_offer_code *c, void *arg), void *arg, pos_err *e)
{
	struct code_walk w = { fn, arg };
	struct db_stmt *st;

	if (!s || !fn)
		return err_set(e, POS_EINVAL, "store_device_codes: missing argument");
	st = store_q(s, SQL_DEV_CODES, e);
	if (!st)
		return POS_EDB;
	db_bind_int64(st, 1, device);
	return db_each(st, code_row, &w, e);
}

int store_offer_next(struct store *s, int64_t device, int64_t now_ms, int limit,
		     int (*fn)(const struct store_offer *o, bool targeted, void *arg), void *arg,
		     pos_err *e)
{
	struct offer_walk w = { .next = fn, .arg = arg };
	struct db_stmt *st;

	if (!s || !fn || limit < 0)
		return err_set(e, POS_EINVAL, "store_offer_next: missing argument");
	st = store_q(s, store_backend(s) == DB_POSTGRESQL ? SQL_NEXT_PG : SQL_NEXT_SQLITE, e);
	if (!st)
		return POS_EDB;
	db_bind_int64(st, 1, device);
	db_bind_int64(st, 2, now_ms);
	db_bind_int64(st, 3, limit);
	return db_each(st, offer_row, &w, e);
}

struct report_walk {
	int (*fn)(const struct store_offer_report_row *r, void *arg);
	void *arg;
};

static int report_row(struct db_stmt *st, void *arg)
{
	struct report_walk *w = arg;
	struct store_offer_report_row row;

	memset(&row, 0, sizeof row);
	db_col_copy(st, 0, row.offer_id, sizeof row.offer_id);
	db_col_copy(st, 1, row.title, sizeof row.title);
	db_col_copy(st, 2, row.store, sizeof row.store);
	db_col_copy(st, 3, row.day, sizeof row.day);
	row.redemptions = (long)db_col_int64(st, 4);
	return w->fn(&row, w->arg);
}

int store_offer_report(struct store *s,
		       int (*fn)(const struct store_offer_report_row *r, void *arg), void *arg,
		       pos_err *e)
{
	struct report_walk w = { fn, arg };
	struct db_stmt *st;

	if (!s || !fn)
		return err_set(e, POS_EINVAL, "store_offer_report: missing argument");
	st = store_q(s, store_backend(s) == DB_POSTGRESQL ? SQL_REPORT_PG : SQL_REPORT_SQLITE, e);
	if (!st)
		return POS_EDB;
	return db_each(st, report_row, &w, e);
}
