#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbfile.h"
#include "store_impl.h"
#include "store_sqlite.h"
#include "timeutil.h"

/*
 * SQLite implementation of store.h.
 *
 * Schema (v1), shaped by ../shared/reference/performance.md:
 * - tid_index: the 32-byte HMAC as a WITHOUT ROWID primary key, so a resolve
 *   is one b-tree probe on the key itself.
 * - baskets: an INTEGER rowid key that item rows reference; the random txn
 *   UUID is unique on the basket row only (a UUID key on 20 item rows each
 *   divides ingest by 4-5). History walks the (hhid, ts) index backwards.
 * - items: WITHOUT ROWID, primary key (basket_id, seq), so one basket's items
 *   sit together on disk.
 * - counters: running totals kept by triggers (households, baskets) and by
 *   store_put_baskets (items, once per batch), so store_stats stays O(1) at
 *   100M item rows where count(*) would scan.
 * - merged: from -> into after a merge, so baskets a lane spooled with the
 *   old hhid still land in the surviving household.
 *
 * Every statement is prepared once per connection (persistent) with bound
 * parameters. Writes run under BEGIN IMMEDIATE (or a savepoint inside a
 * caller's transaction), so a failed call changes nothing.
 */

#define STORE_ACTOR_MAX 128
#define STORE_ACTION_MAX 64
#define STORE_DETAIL_MAX 1024
#define STORE_ITEMS_MAX 10000 /* per basket; the HTTP body limit is far lower */

#define OFFER_COLS                                                                           \
	"o.id, o.title, o.reward, o.target, o.valid_from, o.valid_to, o.created, o.ended"
/* ?2 is the time the offer must be open at. */
#define OFFER_OPEN                                                                           \
	"o.ended IS NULL AND (o.valid_from IS NULL OR o.valid_from <= ?2) AND "             \
	"(o.valid_to IS NULL OR o.valid_to > ?2)"
#define CODE_COLS                                                                            \
	"c.code, c.accepted, " OFFER_COLS ", r.ts, r.store, r.hhid, r.basket_id"

enum stmt_id {
	Q_TID_GET,
	Q_HH_INS,
	Q_HH_INS_IGN,
	Q_TID_INS,
	Q_TID_DEL,
	Q_HH_GET,
	Q_MERGE_TIDS,
	Q_MERGE_BASKETS,
	Q_MERGE_CHAIN,
	Q_MERGE_REDIR,
	Q_HH_DEL,
	Q_REDIR_GET,
	Q_HH_NTIDS,
	Q_HH_BASKETS,
	Q_B_GET,
	Q_B_INS,
	Q_I_INS,
	Q_I_INS_N,
	Q_ITEMS_ADD,
	Q_HIST,
	Q_HIST_ITEMS,
	Q_HIST_PAGE,
	Q_HIST_SEEK,
	Q_AUDIT,
	Q_STATS,
	Q_MERGE_REDEEM,
	Q_OFFER_INS,
	Q_OFFER_GET,
	Q_OFFER_END,
	Q_OFFER_LIST,
	Q_DEV_INS,
	Q_DEV_GET,
	Q_CODE_BY_DEV,
	Q_CODE_INS,
	Q_CODE_GET,
	Q_DEV_CODES,
	Q_REDEEM_INS,
	Q_NEXT,
	Q_REPORT,
	Q_DEV_UNUSED,
	Q_DEV_USE,
	Q_DEV_PURGE,
	Q_DEV_HAS,
	Q_RECEIPT_INS,
	Q_COUNT
};

static const char *const stmt_sql[Q_COUNT] = {
	[Q_TID_GET] = "SELECT hhid FROM tid_index WHERE idx = ?1",
	[Q_HH_INS] = "INSERT INTO households(hhid, created) VALUES (?1, ?2)",
	[Q_HH_INS_IGN] = "INSERT OR IGNORE INTO households(hhid, created) VALUES (?1, ?2)",
	[Q_TID_INS] = "INSERT INTO tid_index(idx, hhid) VALUES (?1, ?2)",
	[Q_TID_DEL] = "DELETE FROM tid_index WHERE idx = ?1",
	[Q_HH_GET] = "SELECT created FROM households WHERE hhid = ?1",
	[Q_MERGE_TIDS] = "UPDATE tid_index SET hhid = ?2 WHERE hhid = ?1",
	[Q_MERGE_BASKETS] = "UPDATE baskets SET hhid = ?2 WHERE hhid = ?1",
	[Q_MERGE_CHAIN] = "UPDATE merged SET into_hhid = ?2 WHERE into_hhid = ?1",
	[Q_MERGE_REDIR] = "INSERT OR REPLACE INTO merged(from_hhid, into_hhid) VALUES (?1, ?2)",
	[Q_HH_DEL] = "DELETE FROM households WHERE hhid = ?1",
	[Q_REDIR_GET] = "SELECT into_hhid FROM merged WHERE from_hhid = ?1",
	[Q_HH_NTIDS] = "SELECT count(*) FROM tid_index WHERE hhid = ?1",
	[Q_HH_BASKETS] = "SELECT count(*), max(ts) FROM baskets WHERE hhid = ?1",
	[Q_B_GET] = "SELECT id, digest FROM baskets WHERE txn = ?1",
	/* A txn already stored inserts nothing (sqlite3_changes() is 0) and is
	 * then looked up: one index descent for a new basket, not two. */
	[Q_B_INS] = "INSERT INTO baskets(txn, ts, store, terminal, hhid, deident, digest) "
		    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(txn) DO NOTHING",
	[Q_I_INS] = "INSERT INTO items(basket_id, seq, gtin, qty, price_cents) "
		    "VALUES (?1, ?2, ?3, ?4, ?5)",
	/* STORE_I_ROWS item rows a statement: one VDBE run, not ten. */
	[Q_I_INS_N] = "INSERT INTO items(basket_id, seq, gtin, qty, price_cents) VALUES "
		      "(?1, ?2, ?3, ?4, ?5), "
		      "(?6, ?7, ?8, ?9, ?10), "
		      "(?11, ?12, ?13, ?14, ?15), "
		      "(?16, ?17, ?18, ?19, ?20), "
		      "(?21, ?22, ?23, ?24, ?25), "
		      "(?26, ?27, ?28, ?29, ?30), "
		      "(?31, ?32, ?33, ?34, ?35), "
		      "(?36, ?37, ?38, ?39, ?40), "
		      "(?41, ?42, ?43, ?44, ?45), "
		      "(?46, ?47, ?48, ?49, ?50)",
	[Q_ITEMS_ADD] = "UPDATE counters SET items = items + ?1",
	[Q_HIST] = "SELECT id, txn, ts, store, terminal, hhid, deident, digest FROM baskets "
		   "WHERE hhid = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts DESC, id DESC",
	[Q_HIST_ITEMS] = "SELECT gtin, qty, price_cents FROM items WHERE basket_id = ?1 "
			 "ORDER BY seq",
	/* ?2 and ?3 are the walk's inclusive ts bounds, so the index range is
	 * exact; the id terms only sort out baskets sharing a bound's ts. */
	[Q_HIST_PAGE] = "SELECT id, txn, ts, store, terminal, hhid, deident, digest FROM baskets "
			"WHERE hhid = ?1 AND ts <= ?2 AND ts >= ?3 AND (ts < ?2 OR id < ?4) "
			"AND (ts > ?3 OR id >= ?5) ORDER BY ts DESC, id DESC LIMIT ?6",
	[Q_HIST_SEEK] = "SELECT ts, id FROM baskets WHERE hhid = ?1 AND ts <= ?2 AND ts >= ?3 "
			"AND (ts < ?2 OR id < ?4) ORDER BY ts DESC, id DESC LIMIT 2 OFFSET ?5",
	[Q_AUDIT] = "INSERT INTO audit(ts, actor, action, detail) VALUES (?1, ?2, ?3, ?4)",
	[Q_STATS] = "SELECT households, baskets, items FROM counters",
	[Q_MERGE_REDEEM] = "UPDATE offer_redemptions SET hhid = ?2 WHERE hhid = ?1",
	[Q_OFFER_INS] = "INSERT INTO offers(id, title, reward, target, valid_from, valid_to, created) "
			"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[Q_OFFER_GET] = "SELECT " OFFER_COLS " FROM offers o WHERE o.id = ?1",
	[Q_OFFER_END] = "UPDATE offers SET ended = ?2 WHERE id = ?1 AND ended IS NULL",
	[Q_OFFER_LIST] = "SELECT " OFFER_COLS " FROM offers o WHERE ?1 = 0 OR (" OFFER_OPEN
			 ") ORDER BY o.created, o.id",
	[Q_DEV_INS] = "INSERT INTO offer_devices(token_hash, created) VALUES (?1, ?2)",
	[Q_DEV_GET] = "SELECT id, used IS NOT NULL FROM offer_devices WHERE token_hash = ?1",
	[Q_CODE_BY_DEV] = "SELECT code FROM offer_codes WHERE device_id = ?1 AND offer_id = ?2",
	[Q_CODE_INS] = "INSERT INTO offer_codes(code, offer_id, device_id, accepted) "
		       "VALUES (?1, ?2, ?3, ?4)",
	[Q_CODE_GET] = "SELECT " CODE_COLS " FROM offer_codes c JOIN offers o ON o.id = c.offer_id "
		       "LEFT JOIN offer_redemptions r ON r.code = c.code WHERE c.code = ?1",
	[Q_DEV_CODES] = "SELECT " CODE_COLS " FROM offer_codes c JOIN offers o ON o.id = c.offer_id "
			"LEFT JOIN offer_redemptions r ON r.code = c.code WHERE c.device_id = ?1 "
			"ORDER BY c.accepted, c.code",
	[Q_REDEEM_INS] = "INSERT INTO offer_redemptions(code, basket_id, ts, store, hhid) "
			 "VALUES (?1, ?2, ?3, ?4, ?5)",
	/* Targeted offers first: an item bought by a household of one of the
	 * device's redemptions (baskets by the (hhid, ts) index, items by
	 * basket), then offers for all. */
	[Q_NEXT] = "SELECT " OFFER_COLS ", o.target <> 'all' AS targeted FROM offers o "
		   "WHERE (" OFFER_OPEN ") AND NOT EXISTS (SELECT 1 FROM offer_codes c "
		   "WHERE c.device_id = ?1 AND c.offer_id = o.id) AND (o.target = 'all' OR "
		   "(o.target LIKE 'gtin:%' AND EXISTS (SELECT 1 FROM offer_redemptions r "
		   "JOIN offer_codes c ON c.code = r.code JOIN baskets b ON b.hhid = r.hhid "
		   "JOIN items i ON i.basket_id = b.id WHERE c.device_id = ?1 "
		   "AND i.gtin = substr(o.target, 6)))) "
		   "ORDER BY targeted DESC, o.created DESC, o.id LIMIT ?3",
	[Q_REPORT] = "SELECT o.id, o.title, r.store, strftime('%Y-%m-%d', r.ts / 1000, 'unixepoch'), "
		     "count(*) FROM offer_redemptions r JOIN offer_codes c ON c.code = r.code "
		     "JOIN offers o ON o.id = c.offer_id GROUP BY 1, 3, 4 ORDER BY 1, 3, 4",
	[Q_DEV_UNUSED] = "SELECT unused_devices FROM counters",
	[Q_DEV_HAS] = "SELECT 1 FROM offer_devices WHERE id = ?1",
	[Q_DEV_USE] = "UPDATE offer_devices SET used = ?2 WHERE id = ?1 AND used IS NULL",
	/* The partial index offer_devices_unused holds exactly these rows. */
	[Q_DEV_PURGE] = "DELETE FROM offer_devices WHERE id IN (SELECT id FROM offer_devices "
			"WHERE used IS NULL AND created < ?1 ORDER BY created LIMIT ?2)",
	[Q_RECEIPT_INS] = "INSERT INTO receipts(hash, basket_id) VALUES (?1, ?2)",
};

/* Versioned migrations: index i brings the schema from version i to i+1.
 * Never edit a released one; append. */
static const char *const store_migrations[] = {
	/* v1 */
	"CREATE TABLE households ("
	"  hhid TEXT PRIMARY KEY NOT NULL,"
	"  created INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE tid_index ("
	"  idx BLOB PRIMARY KEY NOT NULL CHECK (length(idx) = 32),"
	"  hhid TEXT NOT NULL REFERENCES households(hhid)"
	") WITHOUT ROWID;"
	"CREATE INDEX tid_index_hhid ON tid_index(hhid);"
	"CREATE TABLE baskets ("
	"  id INTEGER PRIMARY KEY,"
	"  txn TEXT NOT NULL UNIQUE,"
	"  ts INTEGER NOT NULL,"
	"  store TEXT NOT NULL,"
	"  terminal TEXT NOT NULL,"
	"  hhid TEXT REFERENCES households(hhid),"
	"  deident TEXT,"
	"  digest BLOB NOT NULL"
	");"
	"CREATE INDEX baskets_hhid_ts ON baskets(hhid, ts);"
	"CREATE TABLE items ("
	"  basket_id INTEGER NOT NULL REFERENCES baskets(id),"
	"  seq INTEGER NOT NULL,"
	"  gtin TEXT NOT NULL,"
	"  qty INTEGER NOT NULL,"
	"  price_cents INTEGER,"
	"  PRIMARY KEY (basket_id, seq)"
	") WITHOUT ROWID;"
	"CREATE TABLE merged ("
	"  from_hhid TEXT PRIMARY KEY NOT NULL,"
	"  into_hhid TEXT NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE audit ("
	"  id INTEGER PRIMARY KEY,"
	"  ts INTEGER NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  action TEXT NOT NULL,"
	"  detail TEXT NOT NULL"
	");"
	"CREATE TABLE counters ("
	"  households INTEGER NOT NULL,"
	"  baskets INTEGER NOT NULL,"
	"  items INTEGER NOT NULL"
	");"
	"INSERT INTO counters VALUES (0, 0, 0);"
	"CREATE TRIGGER households_count_ins AFTER INSERT ON households BEGIN"
	"  UPDATE counters SET households = households + 1; END;"
	"CREATE TRIGGER households_count_del AFTER DELETE ON households BEGIN"
	"  UPDATE counters SET households = households - 1; END;"
	"CREATE TRIGGER baskets_count_ins AFTER INSERT ON baskets BEGIN"
	"  UPDATE counters SET baskets = baskets + 1; END;",
	/* v2: offers. Devices are known by the SHA-256 of their
	 * token only; a code is unique across all codes and redeemed at most
	 * once (the primary key of offer_redemptions). */
	"CREATE TABLE offers ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  title TEXT NOT NULL,"
	"  reward TEXT NOT NULL,"
	"  target TEXT NOT NULL,"
	"  valid_from INTEGER,"
	"  valid_to INTEGER,"
	"  created INTEGER NOT NULL,"
	"  ended INTEGER"
	") WITHOUT ROWID;"
	"CREATE TABLE offer_devices ("
	"  id INTEGER PRIMARY KEY,"
	"  token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),"
	"  created INTEGER NOT NULL"
	");"
	"CREATE TABLE offer_codes ("
	"  code TEXT PRIMARY KEY NOT NULL CHECK (length(code) = 13),"
	"  offer_id TEXT NOT NULL REFERENCES offers(id),"
	"  device_id INTEGER NOT NULL REFERENCES offer_devices(id),"
	"  accepted INTEGER NOT NULL,"
	"  UNIQUE (device_id, offer_id)"
	") WITHOUT ROWID;"
	"CREATE TABLE offer_redemptions ("
	"  code TEXT PRIMARY KEY NOT NULL REFERENCES offer_codes(code),"
	"  basket_id INTEGER NOT NULL REFERENCES baskets(id),"
	"  ts INTEGER NOT NULL,"
	"  store TEXT NOT NULL,"
	"  hhid TEXT"
	") WITHOUT ROWID;"
	"CREATE INDEX offer_redemptions_basket ON offer_redemptions(basket_id);"
	"CREATE INDEX offer_redemptions_hhid ON offer_redemptions(hhid);",
	/* v3: a device registration is used from its token's first use
	 * (devices that accepted an offer already were). Registrations never
	 * used are counted by triggers, so the cap on them is one row read,
	 * and found by a partial index, so expiring them reads only them. */
	"ALTER TABLE offer_devices ADD COLUMN used INTEGER;"
	"UPDATE offer_devices SET used = created WHERE id IN (SELECT device_id FROM offer_codes);"
	"CREATE INDEX offer_devices_unused ON offer_devices(created) WHERE used IS NULL;"
	"ALTER TABLE counters ADD COLUMN unused_devices INTEGER NOT NULL DEFAULT 0;"
	"UPDATE counters SET unused_devices = "
	"  (SELECT count(*) FROM offer_devices WHERE used IS NULL);"
	"CREATE TRIGGER offer_devices_unused_ins AFTER INSERT ON offer_devices"
	"  WHEN new.used IS NULL BEGIN"
	"  UPDATE counters SET unused_devices = unused_devices + 1; END;"
	"CREATE TRIGGER offer_devices_unused_use AFTER UPDATE OF used ON offer_devices"
	"  WHEN old.used IS NULL AND new.used IS NOT NULL BEGIN"
	"  UPDATE counters SET unused_devices = unused_devices - 1; END;"
	"CREATE TRIGGER offer_devices_unused_del AFTER DELETE ON offer_devices"
	"  WHEN old.used IS NULL BEGIN"
	"  UPDATE counters SET unused_devices = unused_devices - 1; END;",
	/* v4: the item master, receipt links (the SHA-256 of the token the
	 * lane printed), conversations with their messages, store staff and
	 * their console sessions (known by hashes only), and devices linked
	 * to households by a receipt they opened (store_public.h). */
	"CREATE TABLE item_master ("
	"  gtin TEXT PRIMARY KEY NOT NULL CHECK (length(gtin) = 14),"
	"  name TEXT NOT NULL,"
	"  vendor TEXT NOT NULL,"
	"  category TEXT NOT NULL,"
	"  updated INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE receipts ("
	"  hash BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),"
	"  basket_id INTEGER NOT NULL UNIQUE REFERENCES baskets(id)"
	") WITHOUT ROWID;"
	"CREATE TABLE conversations ("
	"  id INTEGER PRIMARY KEY,"
	"  kind TEXT NOT NULL,"
	"  txn TEXT,"
	"  store TEXT,"
	"  state TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL,"
	"  UNIQUE (kind, txn)"
	");"
	"CREATE INDEX conversations_state ON conversations(state, store, updated);"
	"CREATE TABLE messages ("
	"  id INTEGER PRIMARY KEY,"
	"  conversation_id INTEGER NOT NULL REFERENCES conversations(id),"
	"  ts INTEGER NOT NULL,"
	"  author TEXT NOT NULL,"
	"  staff_id INTEGER,"
	"  body TEXT NOT NULL"
	");"
	"CREATE INDEX messages_conversation ON messages(conversation_id, id);"
	"CREATE TABLE staff ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL,"
	"  store TEXT,"
	"  token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),"
	"  created INTEGER NOT NULL"
	");"
	"CREATE TABLE staff_sessions ("
	"  id_hash BLOB PRIMARY KEY NOT NULL CHECK (length(id_hash) = 32),"
	"  staff_id INTEGER NOT NULL REFERENCES staff(id),"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE device_households ("
	"  device_id INTEGER NOT NULL REFERENCES offer_devices(id),"
	"  hhid TEXT NOT NULL,"
	"  linked INTEGER NOT NULL,"
	"  PRIMARY KEY (device_id, hhid)"
	") WITHOUT ROWID;",
	/* v5: the households that bought an item (the analysts' cohorts)
	 * are found from the item, not by reading every line. */
	"CREATE INDEX IF NOT EXISTS items_gtin ON items(gtin);",
	/* v6: vendors (their token by SHA-256; their signing secret kept to
	 * verify and sign HMACs), the signatures seen (replays), activities
	 * registered against sales, declared item relations, vendor events,
	 * messages to households and the outbox of calls to vendor backends
	 * (store_vendor.h). */
	"CREATE TABLE vendors ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  name TEXT NOT NULL,"
	"  backend TEXT NOT NULL,"
	"  token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),"
	"  secret TEXT NOT NULL,"
	"  created INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE vendor_nonces ("
	"  vendor TEXT NOT NULL,"
	"  ts INTEGER NOT NULL,"
	"  hash BLOB NOT NULL,"
	"  PRIMARY KEY (vendor, ts, hash)"
	") WITHOUT ROWID;"
	"CREATE TABLE activities ("
	"  id INTEGER PRIMARY KEY,"
	"  vendor TEXT NOT NULL,"
	"  ref TEXT NOT NULL,"
	"  txn TEXT NOT NULL,"
	"  hhid TEXT,"
	"  gtin TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  at INTEGER NOT NULL,"
	"  state TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  UNIQUE (vendor, ref)"
	");"
	"CREATE INDEX activities_hhid ON activities(hhid);"
	"CREATE TABLE item_relations ("
	"  gtin_a TEXT NOT NULL,"
	"  gtin_b TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  PRIMARY KEY (gtin_a, gtin_b)"
	") WITHOUT ROWID;"
	"CREATE TABLE vendor_events ("
	"  vendor TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  gtin TEXT,"
	"  activity TEXT,"
	"  new_at INTEGER,"
	"  text TEXT NOT NULL,"
	"  households INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL,"
	"  PRIMARY KEY (vendor, id)"
	") WITHOUT ROWID;"
	"CREATE TABLE hh_messages ("
	"  id INTEGER PRIMARY KEY,"
	"  hhid TEXT NOT NULL,"
	"  vendor TEXT,"
	"  event_id TEXT,"
	"  kind TEXT NOT NULL,"
	"  text TEXT NOT NULL,"
	"  activity_id INTEGER,"
	"  options TEXT,"
	"  state TEXT NOT NULL,"
	"  chosen TEXT,"
	"  created INTEGER NOT NULL,"
	"  read INTEGER,"
	"  acted INTEGER"
	");"
	"CREATE INDEX hh_messages_hhid ON hh_messages(hhid, id);"
	"CREATE INDEX hh_messages_event ON hh_messages(event_id);"
	"CREATE TABLE outbox ("
	"  id INTEGER PRIMARY KEY,"
	"  kind TEXT NOT NULL,"
	"  message_id INTEGER NOT NULL,"
	"  activity_id INTEGER NOT NULL,"
	"  body TEXT NOT NULL,"
	"  idem TEXT NOT NULL UNIQUE,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next INTEGER NOT NULL,"
	"  done INTEGER"
	");"
	"CREATE INDEX outbox_due ON outbox(next) WHERE done IS NULL;",
	/* v7: inbound text messages by the gateway's id (each stored once),
	 * the sender of a conversation that came by SMS (the blind index of
	 * the number and a copy sealed to central's HPKE key for replies,
	 * never the number in clear), and the outboxes' cursors
	 * (store_public.h). */
	"CREATE TABLE sms_inbound ("
	"  sid TEXT PRIMARY KEY NOT NULL,"
	"  message_id INTEGER NOT NULL REFERENCES messages(id)"
	") WITHOUT ROWID;"
	"CREATE TABLE conversation_phones ("
	"  conversation_id INTEGER PRIMARY KEY REFERENCES conversations(id),"
	"  phone_index BLOB NOT NULL CHECK (length(phone_index) = 32),"
	"  kid TEXT NOT NULL,"
	"  sealed TEXT NOT NULL,"
	"  updated INTEGER NOT NULL"
	");"
	"CREATE INDEX conversation_phones_index ON conversation_phones(phone_index, updated);"
	/* Where each outbox (the CRM, SMS replies) is in the message stream,
	 * and how its last tries went. */
	"CREATE TABLE outbox_cursors ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  position INTEGER NOT NULL,"
	"  attempts INTEGER NOT NULL,"
	"  last_error TEXT,"
	"  updated INTEGER NOT NULL"
	") WITHOUT ROWID;",
	/* v8: the analysts' cohorts read folded tables, not the item lines:
	 * per item, household, 512-day block and store, a bit per day it
	 * was bought; per household, block and store, a bit per day it
	 * shopped; and how far the fold has read (store_analyst_fold). */
	"CREATE TABLE analyst_items ("
	"  gtin TEXT NOT NULL,"
	"  hhid TEXT NOT NULL,"
	"  blk INTEGER NOT NULL,"
	"  store TEXT NOT NULL,"
	"  days BLOB NOT NULL,"
	"  PRIMARY KEY (gtin, hhid, blk, store)"
	") WITHOUT ROWID;"
	"CREATE TABLE analyst_visits ("
	"  hhid TEXT NOT NULL,"
	"  blk INTEGER NOT NULL,"
	"  store TEXT NOT NULL,"
	"  days BLOB NOT NULL,"
	"  PRIMARY KEY (hhid, blk, store)"
	") WITHOUT ROWID;"
	/* what else a cohort bought reads one row per household, block
	 * and store: every item it bought there with its days, packed
	 * (store_analyst.c says how). */
	"CREATE TABLE analyst_households ("
	"  hhid TEXT NOT NULL,"
	"  blk INTEGER NOT NULL,"
	"  store TEXT NOT NULL,"
	"  items BLOB NOT NULL,"
	"  PRIMARY KEY (hhid, blk, store)"
	") WITHOUT ROWID;"
	/* the merges whose survivor was folded again (store_analyst_fold) */
	"CREATE TABLE analyst_merges ("
	"  from_hhid TEXT PRIMARY KEY NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE analyst_fold ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  basket_id INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL"
	");"
	"INSERT INTO analyst_fold VALUES (1, 0, 0);",
};

#define STORE_VERSION ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

struct store_cached {
	const char *sql; /* the key: a static string's address */
	struct db_stmt *st;
};

struct store {
	struct db *conn;
	sqlite3 *db; /* conn's SQLite handle */
	sqlite3_stmt *st[Q_COUNT];
	struct store_cached *q; /* store_q's cache, open addressing */
	size_t q_cap, q_n;
	int in_txn;   /* inside store_begin .. store_commit */
	int sp_depth; /* nested savepoints, for unique names */
	struct store_item *items; /* history scratch, grown as needed */
	size_t items_cap;
	int wal_frames;        /* frames in the WAL after the last commit (ingest writer) */
};

static int store_dberr(struct store *s, int rc, const char *what, pos_err *e)
{
	/* SQLite messages name tables and columns, never bound values. */
	int code = ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) ? POS_EAGAIN
										: POS_EDB;
	return err_set(e, code, "database: %s: %s", what, s && s->db ? sqlite3_errmsg(s->db)
								   : sqlite3_errstr(rc));
}

/* Returns the cached statement, reset and with bindings cleared. */
static sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id, pos_err *e)
{
	if (!s->st[id]) {
		int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					    &s->st[id], NULL);
		if (rc != SQLITE_OK) {
			store_dberr(s, rc, "prepare", e);
			s->st[id] = NULL;
			return NULL;
		}
	} else {
		sqlite3_reset(s->st[id]);
		sqlite3_clear_bindings(s->st[id]);
	}
	return s->st[id];
}

static int store_exec(struct store *s, const char *sql, pos_err *e)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return store_dberr(s, rc, sql, e);
	return 0;
}

/* Steps a statement expected to finish without rows. */
static int store_done(struct store *s, sqlite3_stmt *st, const char *what, pos_err *e)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		int code = store_dberr(s, rc, what, e);
		sqlite3_reset(st);
		return code;
	}
	sqlite3_reset(st);
	return 0;
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (!v || !v[0])
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

int store_sqlite_prepare(struct store *s, const char *sql, sqlite3_stmt **st, pos_err *e)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);

	if (rc != SQLITE_OK) {
		*st = NULL;
		return store_dberr(s, rc, "prepare", e);
	}
	return 0;
}

void store_sqlite_text(sqlite3_stmt *st, int i, char *out, size_t cap)
{
	const unsigned char *v = sqlite3_column_text(st, i);
	size_t n = v ? (size_t)sqlite3_column_bytes(st, i) : 0;

	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(out, v, n);
	out[n] = '\0';
}

/*
 * A write unit: BEGIN IMMEDIATE when no transaction is open (taking the write
 * lock up front, so the busy handler applies instead of a deadlock on upgrade),
 * else a savepoint, so a failed call inside an enrolment batch undoes only
 * itself.
 */
static int unit_begin(struct store *s, pos_err *e)
{
	char sql[32];

	if (!s->in_txn && sqlite3_get_autocommit(s->db))
		return store_exec(s, "BEGIN IMMEDIATE", e);
	snprintf(sql, sizeof(sql), "SAVEPOINT u%d", ++s->sp_depth);
	return store_exec(s, sql, e);
}

static int unit_end(struct store *s, int ok, pos_err *e)
{
	char sql[64];
	int rc;

	if (s->sp_depth == 0) {
		if (ok) {
			rc = store_exec(s, "COMMIT", e);
			if (rc < 0)
				sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return 0;
	}
	if (ok)
		snprintf(sql, sizeof(sql), "RELEASE u%d", s->sp_depth);
	else
		snprintf(sql, sizeof(sql), "ROLLBACK TO u%d; RELEASE u%d", s->sp_depth, s->sp_depth);
	s->sp_depth--;
	return store_exec(s, sql, e);
}

/* Finishes a unit with rc (0 = commit) and returns the first error. */
static int unit_finish(struct store *s, int rc, pos_err *e)
{
	if (rc < 0) {
		unit_end(s, 0, NULL);
		return rc;
	}
	return unit_end(s, 1, e);
}

static int store_migrate(struct store *s, pos_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc, version = 0;

	rc = store_exec(s, "BEGIN IMMEDIATE", e);
	if (rc < 0)
		return rc;
	rc = store_exec(s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
			e);
	if (rc < 0)
		goto out;
	if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM schema_version", -1,
			       &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = store_dberr(s, SQLITE_ERROR, "schema version", e);
		goto out;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (version > STORE_VERSION) {
		rc = err_set(e, POS_EDB,
			     "database schema v%d is newer than this program understands (v%d)",
			     version, STORE_VERSION);
		goto out;
	}
	for (int v = version; v < STORE_VERSION; v++) {
		rc = store_exec(s, store_migrations[v], e);
		if (rc < 0) {
			err_prefix(e, "migration to v%d", v + 1);
			goto out;
		}
		if (sqlite3_prepare_v2(s->db, "INSERT INTO schema_version(version) VALUES (?1)", -1,
				       &st, NULL) != SQLITE_OK) {
			rc = store_dberr(s, SQLITE_ERROR, "schema version", e);
			goto out;
		}
		sqlite3_bind_int(st, 1, v + 1);
		rc = store_done(s, st, "schema version", e);
		sqlite3_finalize(st);
		st = NULL;
		if (rc < 0)
			goto out;
	}
	rc = store_exec(s, "COMMIT", e);
out:
	sqlite3_finalize(st);
	if (rc < 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int store_connect(const struct store_where *w, struct store *s, pos_err *e)
{
	int rc;

	if (w->backend == STORE_POSTGRESQL) {
		if (!w->dsn || !w->dsn[0])
			return err_set(e, POS_EINVAL, "store: no PostgreSQL dsn");
		return db_open_pg(w->dsn, w->readonly, &s->conn, e);
	}
	if (!w->path || !w->path[0])
		return err_set(e, POS_EINVAL, "store: no database path");
	if (!w->readonly && (rc = dbfile_prepare(w->path, e)) < 0)
		return rc;
	rc = db_open_sqlite(w->path, w->readonly, &s->conn, e);
	if (rc == 0)
		s->db = db_sqlite_handle(s->conn);
	return rc;
}

int store_open_at(const struct store_where *w, struct store **out, pos_err *e)
{
	struct store *s = NULL;
	int rc;

	if (!w || !out)
		return err_set(e, POS_EINVAL, "store: nowhere to open");
	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, POS_ENOMEM, "store: out of memory");
	rc = store_connect(w, s, e);
	if (rc == 0)
		rc = store_migrate(s, e);
	if (rc < 0) {
		err_prefix(e, "%s", w->backend == STORE_POSTGRESQL ? "postgresql" : w->path);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

int store_open(const char *path, struct store **out, pos_err *e)
{
	struct store_where w = { .backend = STORE_SQLITE, .path = path };

	return store_open_at(&w, out, e);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	for (size_t i = 0; i < s->q_cap; i++)
		db_finalize(s->q[i].st);
	free(s->q);
	db_close(s->conn);
	free(s->items);
	free(s);
}

int store_quick_check(struct store *s, pos_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!s)
		return err_set(e, POS_EINVAL, "store: no connection");
	/* quick_check(1): the first problem is enough to refuse the file. */
	rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_dberr(s, rc, "quick_check", e);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = store_dberr(s, rc, "quick_check", e);
	} else {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		rc = v && strcmp(v, "ok") == 0
			     ? 0
			     : err_set(e, POS_EDB, "integrity check failed: %.160s", v ? v : "?");
	}
	sqlite3_finalize(st);
	return rc;
}

/* Copies every page of src into dst within one read transaction of src,
 * so the copy is one snapshot however much is written meanwhile. */
static int store_backup_copy(struct store *src, sqlite3 *dst, pos_err *e)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src->db, "main");
	int rc, tries = 0;

	if (!b)
		return err_set(e, POS_EDB, "backup: %s", sqlite3_errmsg(dst));
	while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
		if (++tries > 200)
			break;
		usleep(10000);
	}
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE)
		return err_set(e, rc == SQLITE_BUSY ? POS_EAGAIN : POS_EDB, "backup: %s",
			       sqlite3_errstr(rc));
	if (sqlite3_errcode(dst) != SQLITE_OK)
		return err_set(e, POS_EDB, "backup: %s", sqlite3_errmsg(dst));
	return 0;
}

/* The copy carries the source's WAL flag in its header: a backup must be
 * one file that works when copied alone, so it goes back to a rollback
 * journal, and is checked before it replaces the previous backup. */
static int store_backup_seal(sqlite3 *dst, const char *tmp, pos_err *e)
{
	struct store d = { .db = dst };
	int rc, fd;

	if ((rc = store_exec(&d, "PRAGMA journal_mode=DELETE", e)) < 0 ||
	    (rc = store_quick_check(&d, e)) < 0)
		return rc;
	fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return err_set(e, POS_EIO, "%s: %s", tmp, strerror(errno));
	rc = fsync(fd) == 0 ? 0 : err_set(e, POS_EIO, "%s: fsync: %s", tmp, strerror(errno));
	close(fd);
	return rc;
}

static int store_sync_dir(const char *path, pos_err *e)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, rc;

	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path) >= (int)sizeof dir)
		return err_set(e, POS_ETOOBIG, "backup: path too long");
	if (!dir[0])
		snprintf(dir, sizeof dir, "/");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, POS_EIO, "%s: %s", dir, strerror(errno));
	rc = fsync(fd) == 0 ? 0 : err_set(e, POS_EIO, "%s: fsync: %s", dir, strerror(errno));
	close(fd);
	return rc;
}

int store_backup(struct store *s, const char *dest, pos_err *e)
{
	char tmp[PATH_MAX];
	sqlite3 *dst = NULL;
	struct stat st;
	int rc;

	if (!s || !dest || !*dest)
		return err_set(e, POS_EINVAL, "backup: no destination");
	if (stat(dest, &st) == 0 && !S_ISREG(st.st_mode))
		return err_set(e, POS_EINVAL, "%s is not a regular file", dest);
	if (snprintf(tmp, sizeof tmp, "%s.tmp", dest) >= (int)sizeof tmp)
		return err_set(e, POS_ETOOBIG, "backup: path too long");
	/* A .tmp left by an interrupted backup is ours to replace. */
	if (unlink(tmp) != 0 && errno != ENOENT)
		return err_set(e, POS_EIO, "%s: %s", tmp, strerror(errno));
	if ((rc = dbfile_prepare(tmp, e)) < 0)
		return rc;
	if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = err_set(e, POS_EDB, "%s: %s", tmp, dst ? sqlite3_errmsg(dst) : "out of memory");
		goto out;
	}
	if ((rc = store_backup_copy(s, dst, e)) < 0 || (rc = store_backup_seal(dst, tmp, e)) < 0)
		goto out;
	sqlite3_close(dst);
	dst = NULL;
	if (rename(tmp, dest) != 0) {
		rc = err_set(e, POS_EIO, "%s: %s", dest, strerror(errno));
		goto out;
	}
	return store_sync_dir(dest, e);
out:
	sqlite3_close(dst);
	unlink(tmp);
	return rc;
}

int store_begin(struct store *s, pos_err *e)
{
	int rc;

	if (!s)
		return err_set(e, POS_EINVAL, "store: no connection");
	if (s->in_txn)
		return err_set(e, POS_EINVAL, "store: transaction already open");
	rc = store_exec(s, "BEGIN IMMEDIATE", e);
	if (rc == 0)
		s->in_txn = 1;
	return rc;
}

int store_commit(struct store *s, pos_err *e)
{
	int rc;

	if (!s || !s->in_txn)
		return err_set(e, POS_EINVAL, "store: no transaction open");
	rc = store_exec(s, "COMMIT", e);
	if (rc < 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
	s->in_txn = 0;
	s->sp_depth = 0;
	return rc;
}

bool store_in_txn(struct store *s)
{
	return s && s->in_txn && !sqlite3_get_autocommit(s->db);
}

void store_rollback(struct store *s)
{
	if (!s || !s->in_txn)
		return;
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->in_txn = 0;
	s->sp_depth = 0;
}

/* The household linked to idx: 0, POS_ENOTFOUND or an error. */
static int tid_get(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN],
		   char hhid[DEIDENT_ID_LEN + 1], pos_err *e)
{
	sqlite3_stmt *st = store_stmt(s, Q_TID_GET, e);
	int rc;

	if (!st)
		return POS_EDB;
	sqlite3_bind_blob(st, 1, idx, DEIDENT_INDEX_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		store_sqlite_text(st, 0, hhid, DEIDENT_ID_LEN + 1);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return err_set(e, POS_ENOTFOUND, "unknown tid");
	return store_dberr(s, rc, "tid lookup", e);
}

static int hh_insert(struct store *s, enum stmt_id q, const char *hhid, pos_err *e)
{
	sqlite3_stmt *st = store_stmt(s, q, e);

	if (!st)
		return POS_EDB;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, time_now_ms());
	return store_done(s, st, "household insert", e);
}

static int tid_insert(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN],
		      const char *hhid, pos_err *e)
{
	sqlite3_stmt *st = store_stmt(s, Q_TID_INS, e);

	if (!st)
		return POS_EDB;
	sqlite3_bind_blob(st, 1, idx, DEIDENT_INDEX_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hhid, -1, SQLITE_STATIC);
	return store_done(s, st, "tid link", e);
}

int store_resolve(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN], bool auto_enrol,
		  const char *new_hhid, char hhid[DEIDENT_ID_LEN + 1], bool *created, pos_err *e)
{
	char fresh[DEIDENT_ID_LEN + 1];
	int rc;

	if (!s || !idx || !hhid)
		return err_set(e, POS_EINVAL, "store_resolve: missing argument");
	if (created)
		*created = false;
	rc = tid_get(s, idx, hhid, e);
	if (rc != POS_ENOTFOUND || !auto_enrol)
		return rc;
	if (!new_hhid) {
		rc = deident_hhid_new(fresh, e);
		if (rc < 0)
			return rc;
		new_hhid = fresh;
	}
	if (!deident_hhid_valid(new_hhid))
		return err_set(e, POS_EINVAL, "store_resolve: malformed new hhid");
	rc = unit_begin(s, e);
	if (rc < 0)
		return rc;
	/* Another connection may have enrolled the same TID between our read
	 * and taking the write lock: look again under the lock. */
	rc = tid_get(s, idx, hhid, e);
	if (rc == 0 || rc != POS_ENOTFOUND)
		return unit_finish(s, rc, e);
	rc = hh_insert(s, Q_HH_INS, new_hhid, e);
	if (rc == 0)
		rc = tid_insert(s, idx, new_hhid, e);
	rc = unit_finish(s, rc, e);
	if (rc == 0) {
		memcpy(hhid, new_hhid, DEIDENT_ID_LEN + 1);
		if (created)
			*created = true;
	}
	return rc;
}

int store_link(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN], const char *hhid,
	       pos_err *e)
{
	char cur[DEIDENT_ID_LEN + 1];
	int rc;

	if (!s || !idx || !hhid)
		return err_set(e, POS_EINVAL, "store_link: missing argument");
	if (!deident_hhid_valid(hhid))
		return err_set(e, POS_EINVAL, "store_link: malformed hhid");
	rc = unit_begin(s, e);
	if (rc < 0)
		return rc;
	rc = tid_get(s, idx, cur, e);
	if (rc == 0) {
		if (strcmp(cur, hhid) != 0)
			rc = err_set(e, POS_ECONFLICT, "already enrolled in household %s", cur);
		return unit_finish(s, rc, e);
	}
	if (rc != POS_ENOTFOUND)
		return unit_finish(s, rc, e);
	err_clear(e);
	rc = hh_insert(s, Q_HH_INS_IGN, hhid, e);
	if (rc == 0)
		rc = tid_insert(s, idx, hhid, e);
	return unit_finish(s, rc, e);
}

int store_unlink(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN], pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!s || !idx)
		return err_set(e, POS_EINVAL, "store_unlink: missing argument");
	rc = unit_begin(s, e);
	if (rc < 0)
		return rc;
	st = store_stmt(s, Q_TID_DEL, e);
	if (!st)
		return unit_finish(s, POS_EDB, e);
	sqlite3_bind_blob(st, 1, idx, DEIDENT_INDEX_LEN, SQLITE_STATIC);
	rc = store_done(s, st, "tid unlink", e);
	if (rc == 0 && sqlite3_changes(s->db) == 0)
		rc = err_set(e, POS_ENOTFOUND, "unknown tid");
	return unit_finish(s, rc, e);
}

/* 0 when hhid exists (created_ms filled when not NULL), POS_ENOTFOUND. */
static int hh_get(struct store *s, const char *hhid, int64_t *created_ms, pos_err *e)
{
	sqlite3_stmt *st = store_stmt(s, Q_HH_GET, e);
	int rc;

	if (!st)
		return POS_EDB;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (created_ms)
			*created_ms = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return err_set(e, POS_ENOTFOUND, "unknown household %s", hhid);
	return store_dberr(s, rc, "household lookup", e);
}

static int exec2(struct store *s, enum stmt_id q, const char *a, const char *b, pos_err *e)
{
	sqlite3_stmt *st = store_stmt(s, q, e);

	if (!st)
		return POS_EDB;
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (b)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	return store_done(s, st, "merge", e);
}

int store_merge(struct store *s, const char *from, const char *into, pos_err *e)
{
	int rc;

	if (!s || !from || !into)
		return err_set(e, POS_EINVAL, "store_merge: missing argument");
	if (!deident_hhid_valid(from) || !deident_hhid_valid(into))
		return err_set(e, POS_EINVAL, "store_merge: malformed hhid");
	if (strcmp(from, into) == 0)
		return err_set(e, POS_EINVAL, "cannot merge household %s into itself", from);
	rc = unit_begin(s, e);
	if (rc < 0)
		return rc;
	rc = hh_get(s, from, NULL, e);
	if (rc == 0)
		rc = hh_get(s, into, NULL, e);
	if (rc == 0)
		rc = exec2(s, Q_MERGE_TIDS, from, into, e);
	if (rc == 0)
		rc = exec2(s, Q_MERGE_BASKETS, from, into, e);
	/* Earlier merges into `from` now point at `into` directly. */
	if (rc == 0)
		rc = exec2(s, Q_MERGE_CHAIN, from, into, e);
	if (rc == 0)
		rc = exec2(s, Q_MERGE_REDIR, from, into, e);
	if (rc == 0)
		rc = exec2(s, Q_MERGE_REDEEM, from, into, e);
	if (rc == 0)
		rc = exec2(s, Q_HH_DEL, from, NULL, e);
	return unit_finish(s, rc, e);
}

int store_household(struct store *s, const char *hhid, struct store_household *out, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!s || !hhid || !out)
		return err_set(e, POS_EINVAL, "store_household: missing argument");
	memset(out, 0, sizeof(*out));
	if (!deident_hhid_valid(hhid))
		return err_set(e, POS_EINVAL, "malformed hhid");
	rc = hh_get(s, hhid, &out->created_ms, e);
	if (rc < 0)
		return rc;
	memcpy(out->hhid, hhid, DEIDENT_ID_LEN + 1);
	st = store_stmt(s, Q_HH_NTIDS, e);
	if (!st)
		return POS_EDB;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_dberr(s, rc, "household tids", e);
	}
	out->n_tids = (long)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	st = store_stmt(s, Q_HH_BASKETS, e);
	if (!st)
		return POS_EDB;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_dberr(s, rc, "household baskets", e);
	}
	out->n_baskets = (long)sqlite3_column_int64(st, 0);
	out->last_basket_ms = sqlite3_column_type(st, 1) == SQLITE_NULL ? 0
									 : sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	return 0;
}

/* A household merged away still exists for a lane that spooled its hhid
 * before the merge: store_put_baskets files such baskets under the
 * survivor, so refusing them here would strand them in the spool forever. */
bool store_household_exists(struct store *s, const char *hhid)
{
	sqlite3_stmt *st;
	int rc;

	if (!s || !hhid || !deident_hhid_valid(hhid))
		return false;
	if (hh_get(s, hhid, NULL, NULL) == 0)
		return true;
	st = store_stmt(s, Q_REDIR_GET, NULL);
	if (!st)
		return false;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_ROW;
}

/* The hhid a basket is filed under: a merged-away household's survivor;
 * a household never seen (a lane that enrolled against another node, or a
 * restore) is created so the basket keeps its household. */
static int basket_household(struct store *s, const char *hhid, char out[DEIDENT_ID_LEN + 1],
			    pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	memcpy(out, hhid, DEIDENT_ID_LEN + 1);
	st = store_stmt(s, Q_REDIR_GET, e);
	if (!st)
		return POS_EDB;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		store_sqlite_text(st, 0, out, DEIDENT_ID_LEN + 1);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_dberr(s, rc, "merge lookup", e);
	return hh_insert(s, Q_HH_INS_IGN, out, e);
}

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

/* ---------------------------------------------------------------- offers */

bool store_offer_open(const struct store_offer *o, int64_t at_ms)
{
	return o && o->ended_ms == 0 && (o->from_ms == 0 || o->from_ms <= at_ms) &&
	       (o->to_ms == 0 || o->to_ms > at_ms);
}

enum store_offer_reason store_offer_verdict(const struct store_offer_code *c, int64_t at_ms)
{
	if (!c)
		return STORE_OFFER_UNKNOWN;
	if (c->redeemed)
		return STORE_OFFER_USED;
	if (c->offer.ended_ms && c->offer.ended_ms <= at_ms)
		return STORE_OFFER_ENDED;
	if (c->offer.to_ms && c->offer.to_ms <= at_ms)
		return STORE_OFFER_EXPIRED;
	if (c->offer.from_ms && c->offer.from_ms > at_ms)
		return STORE_OFFER_NOT_STARTED;
	return STORE_OFFER_OK;
}

const char *store_offer_reason_name(enum store_offer_reason r)
{
	switch (r) {
	case STORE_OFFER_OK: return "";
	case STORE_OFFER_UNKNOWN: return "unknown";
	case STORE_OFFER_EXPIRED: return "expired";
	case STORE_OFFER_NOT_STARTED: return "not_started";
	case STORE_OFFER_ENDED: return "ended";
	case STORE_OFFER_USED: return "redeemed";
	}
	return "unknown";
}

static int64_t col_ms(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, i);
}

static void bind_ms(sqlite3_stmt *st, int i, int64_t ms)
{
	if (ms)
		sqlite3_bind_int64(st, i, ms);
	else
		sqlite3_bind_null(st, i);
}

/* Reads OFFER_COLS starting at column i. */
static void col_offer(sqlite3_stmt *st, int i, struct store_offer *o)
{
	store_sqlite_text(st, i, o->id, sizeof o->id);
	store_sqlite_text(st, i + 1, o->title, sizeof o->title);
	store_sqlite_text(st, i + 2, o->reward, sizeof o->reward);
	store_sqlite_text(st, i + 3, o->target, sizeof o->target);
	o->from_ms = col_ms(st, i + 4);
	o->to_ms = col_ms(st, i + 5);
	o->created_ms = col_ms(st, i + 6);
	o->ended_ms = col_ms(st, i + 7);
}

/* Reads CODE_COLS; *basket_id (optional) the redeeming basket, 0 if none. */
static void col_code(sqlite3_stmt *st, struct store_offer_code *c, sqlite3_int64 *basket_id)
{
	memset(c, 0, sizeof *c);
	store_sqlite_text(st, 0, c->code, sizeof c->code);
	c->accepted_ms = col_ms(st, 1);
	col_offer(st, 2, &c->offer);
	c->redeemed = sqlite3_column_type(st, 13) != SQLITE_NULL;
	if (c->redeemed) {
		c->redeemed_ms = sqlite3_column_int64(st, 10);
		store_sqlite_text(st, 11, c->store, sizeof c->store);
		store_sqlite_text(st, 12, c->hhid, sizeof c->hhid);
	}
	if (basket_id)
		*basket_id = c->redeemed ? sqlite3_column_int64(st, 13) : 0;
}

/* 0 with *out filled, POS_ENOTFOUND or an error. */
static int code_get(struct store *s, const char *code, struct store_offer_code *out,
		    sqlite3_int64 *basket_id, pos_err *e)
{
	sqlite3_stmt *st = store_stmt(s, Q_CODE_GET, e);
	int rc;

	if (!st)
		return POS_EDB;
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		col_code(st, out, basket_id);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return err_set(e, POS_ENOTFOUND, "unknown offer code");
	return store_dberr(s, rc, "offer code lookup", e);
}

/* Redeems a new basket's offer codes (row id, filed under hh) in the open
 * unit. A refusal is the code's answer, not an error: the basket is stored
 * all the same. */
static int offers_redeem(struct store *s, const struct store_basket *b, sqlite3_int64 id,
			 const char *hh, pos_err *e)
{
	for (size_t i = 0; i < b->n_offers; i++) {
		struct store_offer_use *u = &b->offers[i];
		struct store_offer_code c;
		sqlite3_stmt *st;
		bool seen = false;
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
		u->reason = store_offer_verdict(&c, b->ts_ms);
		if (u->reason != STORE_OFFER_OK) {
			u->state = STORE_OFFER_REFUSED;
			continue;
		}
		st = store_stmt(s, Q_REDEEM_INS, e);
		if (!st)
			return POS_EDB;
		sqlite3_bind_text(st, 1, c.code, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, id);
		sqlite3_bind_int64(st, 3, b->ts_ms);
		sqlite3_bind_text(st, 4, b->store, -1, SQLITE_STATIC);
		bind_text(st, 5, hh);
		if ((rc = store_done(s, st, "offer redemption", e)) < 0)
			return rc;
		u->state = STORE_OFFER_REDEEMED;
	}
	return 0;
}

/* A duplicate basket (row id): each code is "redeemed" when this basket
 * redeemed it, else refused with the reason it has now. */
static int offers_replay(struct store *s, const struct store_basket *b, sqlite3_int64 id,
			 pos_err *e)
{
	for (size_t i = 0; i < b->n_offers; i++) {
		struct store_offer_use *u = &b->offers[i];
		struct store_offer_code c;
		sqlite3_int64 by = 0;
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
			u->reason = store_offer_verdict(&c, b->ts_ms);
			if (u->reason == STORE_OFFER_OK)
				u->reason = STORE_OFFER_UNKNOWN;
		}
	}
	return 0;
}

/* Item rows bound to one Q_I_INS_N statement. */
#define STORE_I_ROWS 10

/* The basket already stored under b's txn: the same (a duplicate, which
 * redeems nothing again but reports what its first storing did) or not. */
static int put_existing(struct store *s, const struct store_basket *b, enum store_put_result *res,
			pos_err *e)
{
	sqlite3_stmt *st = store_stmt(s, Q_B_GET, e);
	sqlite3_int64 bid;
	const void *d;
	int rc, dl;

	if (!st)
		return POS_EDB;
	sqlite3_bind_text(st, 1, b->txn, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_dberr(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "basket lookup", e);
	}
	d = sqlite3_column_blob(st, 1);
	dl = sqlite3_column_bytes(st, 1);
	bid = sqlite3_column_int64(st, 0);
	*res = (dl == 32 && d && memcmp(d, b->digest, 32) == 0) ? STORE_PUT_DUPLICATE
								: STORE_PUT_CONFLICT;
	sqlite3_reset(st);
	return *res == STORE_PUT_DUPLICATE ? offers_replay(s, b, bid, e) : 0;
}

/* One basket inside the open unit; *res says what happened. */
static int put_one(struct store *s, const struct store_basket *b, enum store_put_result *res,
		   long *n_items, pos_err *e)
{
	char hh[DEIDENT_ID_LEN + 1];
	sqlite3_stmt *st;
	sqlite3_int64 id;
	int rc;

	hh[0] = '\0';
	if (b->hhid[0]) {
		rc = basket_household(s, b->hhid, hh, e);
		if (rc < 0)
			return rc;
	}
	st = store_stmt(s, Q_B_INS, e);
	if (!st)
		return POS_EDB;
	sqlite3_bind_text(st, 1, b->txn, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, b->ts_ms);
	sqlite3_bind_text(st, 3, b->store, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, b->terminal, -1, SQLITE_STATIC);
	bind_text(st, 5, hh);
	bind_text(st, 6, b->deident);
	sqlite3_bind_blob(st, 7, b->digest, 32, SQLITE_STATIC);
	rc = store_done(s, st, "basket insert", e);
	if (rc < 0)
		return rc;
	if (sqlite3_changes(s->db) == 0)
		return put_existing(s, b, res, e);
	id = sqlite3_last_insert_rowid(s->db);
	for (size_t i = 0; i < b->n_items;) {
		size_t rows = b->n_items - i >= STORE_I_ROWS ? STORE_I_ROWS : 1;

		st = store_stmt(s, rows == 1 ? Q_I_INS : Q_I_INS_N, e);
		if (!st)
			return POS_EDB;
		for (size_t r = 0; r < rows; r++, i++) {
			const struct store_item *it = &b->items[i];
			int p = (int)r * 5;

			sqlite3_bind_int64(st, p + 1, id);
			sqlite3_bind_int64(st, p + 2, (sqlite3_int64)i);
			sqlite3_bind_text(st, p + 3, it->gtin, -1, SQLITE_STATIC);
			sqlite3_bind_int(st, p + 4, it->qty);
			if (it->price_cents < 0)
				sqlite3_bind_null(st, p + 5);
			else
				sqlite3_bind_int64(st, p + 5, it->price_cents);
		}
		rc = store_done(s, st, "item insert", e);
		if (rc < 0)
			return rc;
	}
	*n_items += (long)b->n_items;
	*res = STORE_PUT_CREATED;
	if (b->has_receipt) {
		if (!(st = store_stmt(s, Q_RECEIPT_INS, e)))
			return POS_EDB;
		sqlite3_bind_blob(st, 1, b->receipt, 32, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, id);
		if ((rc = store_done(s, st, "receipt insert", e)) < 0)
			return rc;
	}
	return offers_redeem(s, b, id, hh, e);
}

int store_put_baskets(struct store *s, const struct store_basket *b, size_t n,
		      enum store_put_result *results, pos_err *e)
{
	sqlite3_stmt *st;
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
	rc = unit_begin(s, e);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = put_one(s, &b[i], &results[i], &n_items, e);
	if (rc == 0 && n_items) {
		st = store_stmt(s, Q_ITEMS_ADD, e);
		if (!st)
			rc = POS_EDB;
		else {
			sqlite3_bind_int64(st, 1, n_items);
			rc = store_done(s, st, "item count", e);
		}
	}
	return unit_finish(s, rc, e);
}

static int store_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct store *s = arg;

	(void)db;
	(void)name;
	s->wal_frames = frames;
	return SQLITE_OK;
}

int store_ingest_tune(struct store *s, pos_err *e)
{
	int rc;

	if (!s)
		return err_set(e, POS_EINVAL, "store_ingest_tune: missing argument");
	/* Every reference the writer makes it checked or created itself in
	 * the same transaction (the basket row before its items, the household
	 * by basket_household, a code by code_get): SQLite's checks repeated a
	 * parent lookup per item row. */
	rc = store_exec(s, "PRAGMA foreign_keys=OFF", e);
	if (rc < 0)
		return rc;
	/* Commits no longer pay for checkpoints (this replaces the automatic
	 * one): the caller runs store_checkpoint. */
	sqlite3_wal_hook(s->db, store_wal_hook, s);
	return 0;
}

int store_checkpoint(struct store *s, int min_frames, pos_err *e)
{
	int rc;

	if (!s)
		return err_set(e, POS_EINVAL, "store_checkpoint: missing argument");
	if (min_frames > 0 && s->wal_frames < min_frames)
		return 0;
	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
		return store_dberr(s, rc, "checkpoint", e);
	return 0;
}

static int hist_items(struct store *s, sqlite3_int64 id, struct store_basket *b, pos_err *e)
{
	sqlite3_stmt *st = store_stmt(s, Q_HIST_ITEMS, e);
	int rc;

	if (!st)
		return POS_EDB;
	b->n_items = 0;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_item *it;
		if (b->n_items == s->items_cap) {
			size_t cap = s->items_cap ? s->items_cap * 2 : 32;
			struct store_item *p;
			if (cap > STORE_ITEMS_MAX) {
				sqlite3_reset(st);
				return err_set(e, POS_ETOOBIG, "basket with over %d items",
					       STORE_ITEMS_MAX);
			}
			p = realloc(s->items, cap * sizeof(*p));
			if (!p) {
				sqlite3_reset(st);
				return err_set(e, POS_ENOMEM, "store: out of memory");
			}
			s->items = p;
			s->items_cap = cap;
		}
		it = &s->items[b->n_items++];
		store_sqlite_text(st, 0, it->gtin, sizeof(it->gtin));
		it->qty = sqlite3_column_int(st, 1);
		it->price_cents = sqlite3_column_type(st, 2) == SQLITE_NULL
					  ? -1
					  : (long)sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_dberr(s, rc, "history items", e);
	b->items = s->items;
	return 0;
}

int store_history(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		  int (*fn)(const struct store_basket *b, void *arg), void *arg, pos_err *e)
{
	struct store_basket b;
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (!s || !hhid || !fn)
		return err_set(e, POS_EINVAL, "store_history: missing argument");
	if (!deident_hhid_valid(hhid))
		return err_set(e, POS_EINVAL, "malformed hhid");
	/* The walk holds this statement open while fn runs; it is the only
	 * user of Q_HIST, so fn must not start another history walk on the same
	 * connection. */
	st = store_stmt(s, Q_HIST, e);
	if (!st)
		return POS_EDB;
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, from_ms ? from_ms : INT64_MIN);
	sqlite3_bind_int64(st, 3, to_ms ? to_ms : INT64_MAX);
	/* Autocommit keeps one read snapshot for the life of this statement, so
	 * the items read in between belong to the same state. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *d;
		memset(&b, 0, sizeof(b));
		store_sqlite_text(st, 1, b.txn, sizeof(b.txn));
		b.ts_ms = sqlite3_column_int64(st, 2);
		store_sqlite_text(st, 3, b.store, sizeof(b.store));
		store_sqlite_text(st, 4, b.terminal, sizeof(b.terminal));
		store_sqlite_text(st, 5, b.hhid, sizeof(b.hhid));
		store_sqlite_text(st, 6, b.deident, sizeof(b.deident));
		d = sqlite3_column_blob(st, 7);
		if (d && sqlite3_column_bytes(st, 7) == 32)
			memcpy(b.digest, d, 32);
		ret = hist_items(s, sqlite3_column_int64(st, 0), &b, e);
		if (ret < 0)
			break;
		ret = fn(&b, arg);
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_dberr(s, rc, "history", e);
	sqlite3_reset(st);
	return ret;
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

static void hist_bind(sqlite3_stmt *st, const char *hhid, const struct hist_range *r, bool lo_id)
{
	sqlite3_bind_text(st, 1, hhid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->hi);
	sqlite3_bind_int64(st, 3, r->lo);
	sqlite3_bind_int64(st, 4, r->hi_id);
	if (lo_id)
		sqlite3_bind_int64(st, 5, r->lo_id);
}

int store_history_page(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		       struct store_history_pos *pos, const struct store_history_pos *end,
		       size_t max, int (*fn)(const struct store_basket *b, void *arg), void *arg,
		       pos_err *e)
{
	struct store_basket b;
	struct hist_range r;
	sqlite3_stmt *st;
	size_t n = 0;
	int rc, ret = 0;

	if (!s || !hhid || !pos || !fn || max == 0)
		return err_set(e, POS_EINVAL, "store_history_page: missing argument");
	if (!deident_hhid_valid(hhid))
		return err_set(e, POS_EINVAL, "malformed hhid");
	if (!hist_range(from_ms, to_ms, pos, end, &r))
		return 0;
	st = store_stmt(s, Q_HIST_PAGE, e);
	if (!st)
		return POS_EDB;
	hist_bind(st, hhid, &r, true);
	sqlite3_bind_int64(st, 6, max > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *d;
		sqlite3_int64 id = sqlite3_column_int64(st, 0);

		memset(&b, 0, sizeof(b));
		store_sqlite_text(st, 1, b.txn, sizeof(b.txn));
		b.ts_ms = sqlite3_column_int64(st, 2);
		store_sqlite_text(st, 3, b.store, sizeof(b.store));
		store_sqlite_text(st, 4, b.terminal, sizeof(b.terminal));
		store_sqlite_text(st, 5, b.hhid, sizeof(b.hhid));
		store_sqlite_text(st, 6, b.deident, sizeof(b.deident));
		d = sqlite3_column_blob(st, 7);
		if (d && sqlite3_column_bytes(st, 7) == 32)
			memcpy(b.digest, d, 32);
		ret = hist_items(s, id, &b, e);
		if (ret < 0)
			break;
		pos->ts_ms = b.ts_ms;
		pos->id = id;
		n++;
		ret = fn(&b, arg);
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_dberr(s, rc, "history", e);
	sqlite3_reset(st);
	if (ret < 0)
		return ret;
	return ret > 0 || n == max ? 1 : 0;
}

int store_history_seek(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		       const struct store_history_pos *after, long n,
		       struct store_history_pos *out, bool *more, pos_err *e)
{
	struct hist_range r;
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (!s || !hhid || !out || !more || n < 1)
		return err_set(e, POS_EINVAL, "store_history_seek: bad argument");
	if (!deident_hhid_valid(hhid))
		return err_set(e, POS_EINVAL, "malformed hhid");
	*more = false;
	if (!hist_range(from_ms, to_ms, after, NULL, &r))
		return err_set(e, POS_ENOTFOUND, "fewer baskets are left than asked");
	st = store_stmt(s, Q_HIST_SEEK, e);
	if (!st)
		return POS_EDB;
	hist_bind(st, hhid, &r, false);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)n - 1);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->ts_ms = sqlite3_column_int64(st, 0);
		out->id = sqlite3_column_int64(st, 1);
		rc = sqlite3_step(st);
		*more = rc == SQLITE_ROW;
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			ret = store_dberr(s, rc, "history", e);
	} else if (rc == SQLITE_DONE) {
		ret = err_set(e, POS_ENOTFOUND, "fewer baskets are left than asked");
	} else {
		ret = store_dberr(s, rc, "history", e);
	}
	sqlite3_reset(st);
	return ret;
}

int store_audit(struct store *s, const char *actor, const char *action, const char *detail,
		pos_err *e)
{
	sqlite3_stmt *st;

	if (!s || !actor || !action)
		return err_set(e, POS_EINVAL, "store_audit: missing argument");
	if (!detail)
		detail = "";
	if (strlen(actor) > STORE_ACTOR_MAX || strlen(action) > STORE_ACTION_MAX ||
	    strlen(detail) > STORE_DETAIL_MAX)
		return err_set(e, POS_ETOOBIG, "audit entry too long");
	st = store_stmt(s, Q_AUDIT, e);
	if (!st)
		return POS_EDB;
	sqlite3_bind_int64(st, 1, time_now_ms());
	sqlite3_bind_text(st, 2, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, detail, -1, SQLITE_STATIC);
	return store_done(s, st, "audit", e);
}

int store_stats(struct store *s, struct store_stats *out, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!s || !out)
		return err_set(e, POS_EINVAL, "store_stats: missing argument");
	memset(out, 0, sizeof(*out));
	st = store_stmt(s, Q_STATS, e);
	if (!st)
		return POS_EDB;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_dberr(s, rc, "stats", e);
	}
	out->households = (long)sqlite3_column_int64(st, 0);
	out->baskets = (long)sqlite3_column_int64(st, 1);
	out->items = (long)sqlite3_column_int64(st, 2);
	sqlite3_reset(st);
	return 0;
}

/* ---------------------------------------------------------------- offers API */

static bool offer_fits(const struct store_offer *o)
{
	return strnlen(o->id, sizeof o->id) == STORE_OFFER_ID_LEN && o->title[0] &&
	       strnlen(o->title, sizeof o->title) < sizeof o->title && o->reward[0] &&
	       strnlen(o->reward, sizeof o->reward) < sizeof o->reward && o->target[0] &&
	       strnlen(o->target, sizeof o->target) < sizeof o->target;
}

int store_offer_create(struct store *s, const struct store_offer *o, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!s || !o)
		return err_set(e, POS_EINVAL, "store_offer_create: missing argument");
	if (!offer_fits(o))
		return err_set(e, POS_EINVAL, "store_offer_create: malformed offer");
	rc = unit_begin(s, e);
	if (rc < 0)
		return rc;
	st = store_stmt(s, Q_OFFER_INS, e);
	if (!st)
		return unit_finish(s, POS_EDB, e);
	sqlite3_bind_text(st, 1, o->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, o->title, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, o->reward, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, o->target, -1, SQLITE_STATIC);
	bind_ms(st, 5, o->from_ms);
	bind_ms(st, 6, o->to_ms);
	sqlite3_bind_int64(st, 7, o->created_ms ? o->created_ms : time_now_ms());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		rc = err_set(e, POS_ECONFLICT, "offer %s exists", o->id);
	else if (rc != SQLITE_DONE)
		rc = store_dberr(s, rc, "offer insert", e);
	else
		rc = 0;
	return unit_finish(s, rc, e);
}

int store_offer_get(struct store *s, const char *id, struct store_offer *out, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!s || !id || !out)
		return err_set(e, POS_EINVAL, "store_offer_get: missing argument");
	memset(out, 0, sizeof *out);
	st = store_stmt(s, Q_OFFER_GET, e);
	if (!st)
		return POS_EDB;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		col_offer(st, 0, out);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return err_set(e, POS_ENOTFOUND, "unknown offer");
	return store_dberr(s, rc, "offer lookup", e);
}

int store_offer_end(struct store *s, const char *id, int64_t now_ms, pos_err *e)
{
	struct store_offer o;
	sqlite3_stmt *st;
	int rc;

	if (!s || !id)
		return err_set(e, POS_EINVAL, "store_offer_end: missing argument");
	rc = unit_begin(s, e);
	if (rc < 0)
		return rc;
	rc = store_offer_get(s, id, &o, e);
	if (rc == 0 && o.ended_ms)
		rc = err_set(e, POS_ECONFLICT, "offer %s has already ended", o.id);
	if (rc == 0) {
		st = store_stmt(s, Q_OFFER_END, e);
		if (!st)
			return unit_finish(s, POS_EDB, e);
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now_ms);
		rc = store_done(s, st, "offer end", e);
	}
	return unit_finish(s, rc, e);
}

int store_offer_list(struct store *s, bool open_only, int64_t now_ms,
		     int (*fn)(const struct store_offer *o, void *arg), void *arg, pos_err *e)
{
	struct store_offer o;
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (!s || !fn)
		return err_set(e, POS_EINVAL, "store_offer_list: missing argument");
	st = store_stmt(s, Q_OFFER_LIST, e);
	if (!st)
		return POS_EDB;
	sqlite3_bind_int(st, 1, open_only ? 1 : 0);
	sqlite3_bind_int64(st, 2, now_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&o, 0, sizeof o);
		col_offer(st, 0, &o);
		if ((ret = fn(&o, arg)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_dberr(s, rc, "offer list", e);
	sqlite3_reset(st);
	return ret;
}

int store_device_add(struct store *s, const unsigned char hash[32], int64_t now_ms, int64_t *id,
		     pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!s || !hash || !id)
		return err_set(e, POS_EINVAL, "store_device_add: missing argument");
	rc = unit_begin(s, e);
	if (rc < 0)
		return rc;
	st = store_stmt(s, Q_DEV_INS, e);
	if (!st)
		return unit_finish(s, POS_EDB, e);
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms);
	rc = store_done(s, st, "device insert", e);
	if (rc == 0)
		*id = sqlite3_last_insert_rowid(s->db);
	return unit_finish(s, rc, e);
}

/* Marks device used (from now_ms) unless it was; POS_ENOTFOUND when it
 * does not exist. Inside the caller's unit. */
static int store_device_use(struct store *s, int64_t device, int64_t now_ms, pos_err *e)
{
	sqlite3_stmt *st = store_stmt(s, Q_DEV_USE, e);
	int rc;

	if (!st)
		return POS_EDB;
	sqlite3_bind_int64(st, 1, device);
	sqlite3_bind_int64(st, 2, now_ms);
	if ((rc = store_done(s, st, "device use", e)) < 0)
		return rc;
	if (sqlite3_changes(s->db) > 0)
		return 0;
	/* Nothing changed: used before, or gone. */
	if (!(st = store_stmt(s, Q_DEV_HAS, e)))
		return POS_EDB;
	sqlite3_bind_int64(st, 1, device);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return err_set(e, POS_ENOTFOUND, "unknown device");
	return store_dberr(s, rc, "device lookup", e);
}

int store_device_find(struct store *s, const unsigned char hash[32], int64_t *id, bool *used,
		      pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!s || !hash || !id)
		return err_set(e, POS_EINVAL, "store_device_find: missing argument");
	st = store_stmt(s, Q_DEV_GET, e);
	if (!st)
		return POS_EDB;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		if (used)
			*used = sqlite3_column_int(st, 1) != 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return err_set(e, POS_ENOTFOUND, "unknown device");
	return store_dberr(s, rc, "device lookup", e);
}

int store_device_unused(struct store *s, long *n, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!s || !n)
		return err_set(e, POS_EINVAL, "store_device_unused: missing argument");
	if (!(st = store_stmt(s, Q_DEV_UNUSED, e)))
		return POS_EDB;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = (long)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : store_dberr(s, rc, "unused devices", e);
}

int store_device_mark_used(struct store *s, int64_t id, int64_t now_ms, pos_err *e)
{
	int rc;

	if (!s)
		return err_set(e, POS_EINVAL, "store_device_mark_used: missing argument");
	if ((rc = unit_begin(s, e)) < 0)
		return rc;
	return unit_finish(s, store_device_use(s, id, now_ms, e), e);
}

int store_device_purge(struct store *s, int64_t before_ms, long limit, long *removed, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!s || !removed || limit < 1)
		return err_set(e, POS_EINVAL, "store_device_purge: missing argument");
	*removed = 0;
	if ((rc = unit_begin(s, e)) < 0)
		return rc;
	if (!(st = store_stmt(s, Q_DEV_PURGE, e)))
		return unit_finish(s, POS_EDB, e);
	sqlite3_bind_int64(st, 1, before_ms);
	sqlite3_bind_int64(st, 2, limit);
	rc = store_done(s, st, "device purge", e);
	if (rc == 0)
		*removed = sqlite3_changes(s->db);
	rc = unit_finish(s, rc, e);
	if (rc < 0)
		*removed = 0;
	return rc;
}

int store_offer_accept(struct store *s, int64_t device, const char *offer_id, const char *code,
		       bool may_create, int64_t now_ms, char out[STORE_OFFER_CODE_LEN + 1],
		       bool *created, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!s || !offer_id || !code || !out || !created)
		return err_set(e, POS_EINVAL, "store_offer_accept: missing argument");
	if (strlen(code) != STORE_OFFER_CODE_LEN)
		return err_set(e, POS_EINVAL, "store_offer_accept: malformed code");
	*created = false;
	rc = unit_begin(s, e);
	if (rc < 0)
		return rc;
	/* The writer's connection checks no foreign keys: a device removed
	 * since its request was authenticated is looked for here. */
	if ((rc = store_device_use(s, device, now_ms, e)) < 0)
		return unit_finish(s, rc, e);
	/* Under the write lock: two accepts of one offer by one device race
	 * to the same answer. */
	st = store_stmt(s, Q_CODE_BY_DEV, e);
	if (!st)
		return unit_finish(s, POS_EDB, e);
	sqlite3_bind_int64(st, 1, device);
	sqlite3_bind_text(st, 2, offer_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		store_sqlite_text(st, 0, out, STORE_OFFER_CODE_LEN + 1);
		sqlite3_reset(st);
		return unit_finish(s, 0, e);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return unit_finish(s, store_dberr(s, rc, "offer code lookup", e), e);
	if (!may_create)
		return unit_finish(s, err_set(e, POS_EPERM, "this offer is not open"), e);
	st = store_stmt(s, Q_CODE_INS, e);
	if (!st)
		return unit_finish(s, POS_EDB, e);
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, offer_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, device);
	sqlite3_bind_int64(st, 4, now_ms);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		rc = err_set(e, POS_ECONFLICT, "offer code already issued");
	else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		rc = err_set(e, POS_ENOTFOUND, "unknown offer or device");
	else if (rc != SQLITE_DONE)
		rc = store_dberr(s, rc, "offer code insert", e);
	else {
		rc = 0;
		memcpy(out, code, STORE_OFFER_CODE_LEN + 1);
		*created = true;
	}
	return unit_finish(s, rc, e);
}

int store_offer_code_get(struct store *s, const char *code, struct store_offer_code *out,
			 pos_err *e)
{
	if (!s || !code || !out)
		return err_set(e, POS_EINVAL, "store_offer_code_get: missing argument");
	memset(out, 0, sizeof *out);
	return code_get(s, code, out, NULL, e);
}

int store_device_codes(struct store *s, int64_t device,
		       int (*fn)(const struct store_offer_code *c, void *arg), void *arg, pos_err *e)
{
	struct store_offer_code c;
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (!s || !fn)
		return err_set(e, POS_EINVAL, "store_device_codes: missing argument");
	st = store_stmt(s, Q_DEV_CODES, e);
	if (!st)
		return POS_EDB;
	sqlite3_bind_int64(st, 1, device);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		col_code(st, &c, NULL);
		if ((ret = fn(&c, arg)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_dberr(s, rc, "device codes", e);
	sqlite3_reset(st);
	return ret;
}

int store_offer_next(struct store *s, int64_t device, int64_t now_ms, int limit,
		     int (*fn)(const struct store_offer *o, bool targeted, void *arg), void *arg,
		     pos_err *e)
{
	struct store_offer o;
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (!s || !fn || limit < 0)
		return err_set(e, POS_EINVAL, "store_offer_next: missing argument");
	st = store_stmt(s, Q_NEXT, e);
	if (!st)
		return POS_EDB;
	sqlite3_bind_int64(st, 1, device);
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_int(st, 3, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&o, 0, sizeof o);
		col_offer(st, 0, &o);
		if ((ret = fn(&o, sqlite3_column_int(st, 8) != 0, arg)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_dberr(s, rc, "next offers", e);
	sqlite3_reset(st);
	return ret;
}

int store_offer_report(struct store *s,
		       int (*fn)(const struct store_offer_report_row *r, void *arg), void *arg,
		       pos_err *e)
{
	struct store_offer_report_row row;
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (!s || !fn)
		return err_set(e, POS_EINVAL, "store_offer_report: missing argument");
	st = store_stmt(s, Q_REPORT, e);
	if (!st)
		return POS_EDB;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&row, 0, sizeof row);
		store_sqlite_text(st, 0, row.offer_id, sizeof row.offer_id);
		store_sqlite_text(st, 1, row.title, sizeof row.title);
		store_sqlite_text(st, 2, row.store, sizeof row.store);
		store_sqlite_text(st, 3, row.day, sizeof row.day);
		row.redemptions = (long)sqlite3_column_int64(st, 4);
		if ((ret = fn(&row, arg)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_dberr(s, rc, "offer report", e);
	sqlite3_reset(st);
	return ret;
}

/* ---------------------------------------------------------------- for store_public.c */

sqlite3 *store_sqlite_db(struct store *s)
{
	return s ? s->db : NULL;
}

int store_sqlite_unit_begin(struct store *s, pos_err *e)
{
	return unit_begin(s, e);
}

int store_sqlite_unit_finish(struct store *s, int rc, pos_err *e)
{
	return unit_finish(s, rc, e);
}

int store_sqlite_err(struct store *s, int rc, const char *what, pos_err *e)
{
	return store_dberr(s, rc, what, e);
}

struct db *store_db(struct store *s)
{
	return s->conn;
}

enum db_backend store_backend(struct store *s)
{
	return db_backend(s->conn);
}

static size_t store_q_slot(const struct store_cached *q, size_t cap, const char *sql)
{
	size_t h = ((uintptr_t)sql >> 4) * 0x9E3779B97F4A7C15ull;
	size_t i = h & (cap - 1);

	while (q[i].sql && q[i].sql != sql)
		i = (i + 1) & (cap - 1);
	return i;
}

/* Doubles the cache (a power of two, never more than half full). */
static int store_q_grow(struct store *s, pos_err *e)
{
	size_t cap = s->q_cap ? s->q_cap * 2 : 64;
	struct store_cached *q = calloc(cap, sizeof(*q));

	if (!q)
		return err_set(e, POS_ENOMEM, "store: out of memory");
	for (size_t i = 0; i < s->q_cap; i++)
		if (s->q[i].sql)
			q[store_q_slot(q, cap, s->q[i].sql)] = s->q[i];
	free(s->q);
	s->q = q;
	s->q_cap = cap;
	return 0;
}

struct db_stmt *store_q(struct store *s, const char *sql, pos_err *e)
{
	size_t i;

	if (s->q_cap) {
		i = store_q_slot(s->q, s->q_cap, sql);
		if (s->q[i].sql) {
			db_clear(s->q[i].st);
			return s->q[i].st;
		}
	}
	if ((s->q_n + 1) * 2 > s->q_cap && store_q_grow(s, e) < 0)
		return NULL;
	i = store_q_slot(s->q, s->q_cap, sql);
	if (db_prepare(s->conn, sql, DB_KEEP, &s->q[i].st, e) < 0)
		return NULL;
	s->q[i].sql = sql;
	s->q_n++;
	return s->q[i].st;
}

int store_unit_begin(struct store *s, pos_err *e)
{
	return unit_begin(s, e);
}

int store_unit_finish(struct store *s, int rc, pos_err *e)
{
	return unit_finish(s, rc, e);
}
