#ifndef POS_STORE_IMPL_H
#define POS_STORE_IMPL_H
/*
 * What the store's files share (store.c, store_*.c): the connection under
 * a struct store, its statement cache and its write units. Not for code
 * above the store.
 */
#include "db.h"
#include "err.h"
#include "store.h"

/* A basket's items at most; the HTTP body limit is far lower. */
#define STORE_ITEMS_MAX 10000

struct store_cached {
	const char *sql; /* the key: a static string's address */
	struct db_stmt *st;
};

struct store {
	struct db *conn;
	struct store_cached *q; /* store_q's cache, open addressing */
	size_t q_cap, q_n;
	int in_txn;   /* inside store_begin .. store_commit */
	bool reads;   /* the transaction is store_reads_begin's */
	int sp_depth; /* nested savepoints, for unique names */
	struct store_item *items; /* history scratch, grown as needed */
	size_t items_cap;
	int wal_frames; /* SQLite: frames in the WAL after the last commit (ingest writer) */
	store_offer_judge judge; /* store_set_offer_judge; NULL: codes are not judged */
	/* PostgreSQL: month starts whose partitions this connection made or
	 * found (store_basket.c), a small ring. */
	int64_t months[8];
	size_t n_months;
	char *text; /* PostgreSQL: a basket's item arrays (store_basket.c), grown as needed */
	size_t text_cap;
	/* PostgreSQL: the rest of the last history slice (store_basket.c),
	 * and how store_close frees it: set with it, so the connection's own
	 * code needs nothing of the module that keeps it. */
	struct store_hist_cache *hc;
	void (*hc_free)(struct store *s);
};

/* Forgets the months seen: a rollback may have undone their partitions. */
void store_months_forget(struct store *s);

struct db *store_db(struct store *s);
enum db_backend store_backend(struct store *s);

/* The statement for sql, prepared once per connection (DB_KEEP) and kept
 * until store_close; returned with its bindings cleared. sql must be a
 * string with static storage: its address is the cache key. NULL and e on
 * failure. Owned by the store: never finalize it. */
struct db_stmt *store_q(struct store *s, const char *sql, pos_err *e);

/* A write unit: a transaction when none is open (taking the write lock up
 * front), else a savepoint, so a failed call inside a caller's
 * transaction undoes only itself. store_unit_finish commits (rc >= 0) or
 * rolls back, and returns the first error (or rc). */
int store_unit_begin(struct store *s, pos_err *e);
int store_unit_finish(struct store *s, int rc, pos_err *e);

/* Steps st for at most one row: 0 with the row ready to read (the caller
 * then calls db_reset), POS_ENOTFOUND (nothing set in e: the caller names
 * what is missing) or an error. */
int store_row(struct db_stmt *st, pos_err *e);
/* Binds ms, or NULL for 0 (an open bound). */
void store_bind_ms(struct db_stmt *st, int i, int64_t ms);
/* SQLite only (store_sqlite.c): the rowid of the connection's last insert,
 * for the ingest hot path where RETURNING costs more. */
int64_t store_sqlite_last_id(struct store *s);

/* Grows s->items (the history scratch) to hold n items: POS_ETOOBIG over
 * STORE_ITEMS_MAX, POS_ENOMEM. */
int store_items_room(struct store *s, size_t n, pos_err *e);

/*
 * PostgreSQL: a basket's items as one string, a column to append to a
 * select list over baskets b (b.id, b.ts, b.items): "seq,qty,price,len:gtin"
 * per item in seq order (price empty when unknown, len the gtin's bytes).
 * The insert writes that string into the basket's own row (baskets.items,
 * schema v11: pk in store_basket.c's SQL_B_PUT_PG), so a reader reads no
 * items row: reading them through the partitioned items table costs a
 * run-time pruned index probe per basket, about four fifths of a
 * 200-basket history. A basket whose items are NULL there (written by an
 * insert that leaves the column out) has its item rows packed here as
 * pos_basket_items (schema v11) packs them, inline: a call of that SQL
 * function per basket costs twice as much. In seq order by a sorted
 * subquery, which the primary key's index scan already returns in that
 * order (an aggregate's own ORDER BY would sort every basket's items
 * again).
 */
#define STORE_SQL_ITEMS_PACKED_PG                                                            \
	", coalesce(b.items, (SELECT coalesce(string_agg(o.t, ''), '') FROM (SELECT i.seq || "  \
	"',' || i.qty || ',' || coalesce(i.price_cents::text, '') || ',' || "                    \
	"octet_length(i.gtin) || ':' || i.gtin AS t FROM items i "                               \
	"WHERE i.basket_id = b.id AND i.ts = b.ts ORDER BY i.seq) o)) "

/*
 * PostgreSQL: the items (columns cols) of the basket aliased b, from its
 * own month (ts = b.ts) in a LATERAL subquery with OFFSET 0, which is
 * never flattened into a join, so it runs as one probe of one partition's
 * index per basket. The planner has no statistics for the partitioned
 * parents (autovacuum never analyzes them): written as a plain join, it
 * probed every month's items per basket, or (small tables) scanned every
 * month's, and its inflated estimates made a read connection JIT the
 * query. Preceded by CROSS JOIN, or by LEFT JOIN and followed by ON true.
 */
#define STORE_SQL_ITEMS_OF_PG(cols, b)                                                       \
	"LATERAL (SELECT " cols " FROM items WHERE basket_id = " b ".id AND ts = " b ".ts "  \
	"OFFSET 0) i "

/* A statement's text for the store's backend. */
const char *store_sql(struct store *s, const char *sqlite, const char *pg);

/* Reads the items of string t (STORE_SQL_ITEMS_PACKED_PG) into b->items,
 * which point into s->items (the scratch; valid until its next use). Items
 * out of seq order are an error naming b->txn, never a basket told in
 * another order. */
int store_items_unpack(struct store *s, const char *t, struct store_basket *b, pos_err *e);

/* The hhid a basket carrying hhid is filed under (store_household.c): a
 * merged-away household's survivor; a household never seen (a lane that
 * enrolled against another node, or a restore) is created so the basket
 * keeps its household. Inside the caller's unit. */
int store_household_file(struct store *s, const char *hhid, char out[DEIDENT_ID_LEN + 1],
			 pos_err *e);

/* A new basket's offer codes (store_offer.c), inside its unit: each judged
 * by the connection's judge at the basket's time and redeemed (row id,
 * filed under hh, "" for none) or refused with its reason; PENDING without
 * a judge. A refusal is the code's answer, not an error. */
int store_offer_redeem(struct store *s, const struct store_basket *b, int64_t id, const char *hh,
		       pos_err *e);
/* A duplicate basket (row id): each code REDEEMED when this basket
 * redeemed it, else refused with the reason it has now. */
int store_offer_replay(struct store *s, const struct store_basket *b, int64_t id, pos_err *e);

#endif
