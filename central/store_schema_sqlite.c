#include "store_schema.h"

/*
 * SQLite's migrations: entry i brings the schema from version i to i + 1.
 * Never edit a released one; append (and the same version to
 * store_schema_pg.c).
 *
 * Shaped by ../shared/reference/performance.md:
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
 */

static const char *const sqlite_migrations[] = {
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
	 * shopped; every item a household bought there with its days,
	 * packed (store_analyst.c says how); the merges whose survivor was
	 * folded again; and how far the fold has read (store_analyst_fold). */
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
	"CREATE TABLE analyst_households ("
	"  hhid TEXT NOT NULL,"
	"  blk INTEGER NOT NULL,"
	"  store TEXT NOT NULL,"
	"  items BLOB NOT NULL,"
	"  PRIMARY KEY (hhid, blk, store)"
	") WITHOUT ROWID;"
	"CREATE TABLE analyst_merges ("
	"  from_hhid TEXT PRIMARY KEY NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE analyst_fold ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  basket_id INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL"
	");"
	"INSERT INTO analyst_fold VALUES (1, 0, 0);",
	/* v9: each terminal's newest basket time at its lane, written once
	 * per terminal per stored batch, for terminal list's "last seen". */
	"CREATE TABLE terminals_seen ("
	"  store TEXT NOT NULL,"
	"  terminal TEXT NOT NULL,"
	"  last_ts INTEGER NOT NULL,"
	"  PRIMARY KEY (store, terminal)"
	") WITHOUT ROWID;",
	/* v10: nothing here. PostgreSQL's v10 queues baskets for the fold;
	 * SQLite's one writer commits basket ids in order, so the fold's
	 * mark is exact on its own (store_analyst.c). */
	"SELECT 1;",
	/* v11: nothing here. PostgreSQL's v11 packs each basket's items into
	 * its row for the history read; SQLite reads them from items, a
	 * cheap in-process index probe per basket. */
	"SELECT 1;",
};

const char *const *store_schema_sqlite(size_t *n)
{
	*n = sizeof(sqlite_migrations) / sizeof(sqlite_migrations[0]);
	return sqlite_migrations;
}
