#ifndef POS_STORE_H
#define POS_STORE_H
/*
 * The one storage interface of pos-central: it persists and decides
 * nothing. Written once over central/db.h (store.c and a file per table
 * family: store_household.c, store_basket.c, store_offer.c, ...) for
 * SQLite and PostgreSQL, with prepared statements, bound parameters only
 * and versioned schema migrations (store_schema.h); store_sqlite.c holds
 * what only SQLite has. A struct store is one connection: use it from one
 * thread at a time (open one per worker thread).
 * No TID ever reaches the store: households are found by tid index
 * (HMAC-SHA256(k_index, TID)) only.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "deident.h"
#include "err.h"
#include "gtin.h"
#include "ids.h"

#define STORE_ID_MAX IDS_MAX /* store and terminal ids */

struct store;

struct store_item {
	char gtin[GTIN_LEN + 1];
	int qty;
	long price_cents; /* -1: the lane did not know the price */
};

/* ---- offers (schema v2) ---- */
#define STORE_OFFER_ID_LEN 19     /* "of_" + 16 lowercase hex */
#define STORE_OFFER_CODE_LEN 13   /* "98" + 10 digits + GS1 check digit */
#define STORE_OFFER_USE_MAX 64    /* a code as a basket carries it */
#define STORE_OFFER_TITLE_MAX 120
#define STORE_OFFER_REWARD_MAX 200
#define STORE_OFFER_TARGET_MAX 20 /* "all" or "gtin:" + 14 digits */

enum store_offer_state { STORE_OFFER_PENDING = 0, STORE_OFFER_REDEEMED, STORE_OFFER_REFUSED };
enum store_offer_reason {
	STORE_OFFER_OK = 0,
	STORE_OFFER_UNKNOWN,     /* no such code */
	STORE_OFFER_EXPIRED,     /* past the offer's end date */
	STORE_OFFER_NOT_STARTED, /* before the offer's start date */
	STORE_OFFER_ENDED,       /* ended by marketing */
	STORE_OFFER_USED,        /* already redeemed */
};

struct store_offer_use {
	char code[STORE_OFFER_USE_MAX + 1];
	enum store_offer_state state;
	enum store_offer_reason reason;
};

struct store_basket {
	char txn[37];
	int64_t ts_ms;
	char store[STORE_ID_MAX + 1];
	char terminal[STORE_ID_MAX + 1];
	char hhid[DEIDENT_ID_LEN + 1];   /* "" when unresolved */
	char deident[DEIDENT_ID_LEN + 1]; /* "" when none */
	unsigned char digest[32];        /* SHA-256 of the canonical body: 409 detection */
	struct store_item *items;        /* owned by the caller */
	size_t n_items;
	/* Offer codes the basket carries: owned by
	 * the caller; store_put_baskets writes each one's state and reason. */
	struct store_offer_use *offers;
	size_t n_offers;
	/* SHA-256 of the receipt token the lane printed, when it made one:
	 * stored with the basket (a receipt row), never the token. */
	bool has_receipt;
	unsigned char receipt[32];
};

enum store_put_result { STORE_PUT_CREATED = 1, STORE_PUT_DUPLICATE, STORE_PUT_CONFLICT };

struct store_household {
	char hhid[DEIDENT_ID_LEN + 1];
	int64_t created_ms;
	long n_tids;
	long n_baskets;
	int64_t last_basket_ms; /* 0 when none */
};

/* Where a store lives: [store] backend, database (SQLite) or dsn
 * (PostgreSQL). */
enum store_backend { STORE_SQLITE = 1, STORE_POSTGRESQL };
struct store_where {
	enum store_backend backend;
	const char *path; /* SQLite: the database file */
	const char *dsn;  /* PostgreSQL: a libpq connection string */
	/* A connection that never writes (the workers' reads, analysts): it
	 * neither creates nor migrates, and refuses a schema older than this
	 * program's. */
	bool readonly;
};

/* Opens (creating and migrating when needed, unless readonly) the store.
 * *out: store_close. */
int store_open_at(const struct store_where *w, struct store **out, pos_err *e);
/* store_open_at for the SQLite file at path, read-write. */
int store_open(const char *path, struct store **out, pos_err *e);
void store_close(struct store *s);

/* Transactions around many calls (enrolment batches). Calls outside one
 * are each their own transaction. */
int store_begin(struct store *s, pos_err *e);
int store_commit(struct store *s, pos_err *e);
void store_rollback(struct store *s);
/* Whether the transaction store_begin opened is still open: SQLite ends
 * one by itself on some errors (a full disk, an I/O error, no memory), and
 * what runs after would then commit on its own. */
bool store_in_txn(struct store *s);

/* Several reads as one, on a read-only connection with no transaction
 * open (a worker's answers of one loop turn): on SQLite they share one
 * read transaction, so the WAL's read lock is taken once (two fcntl per
 * read otherwise); on PostgreSQL nothing happens (each statement reads a
 * snapshot of its own; BEGIN and COMMIT would be two more round trips).
 * Reads stay correct either way: store_reads_end closes what begin
 * opened, if anything, and a failed begin leaves each read on its own. */
void store_reads_begin(struct store *s);
void store_reads_end(struct store *s);

/* Finds the household of a tid index. When absent and auto_enrol is set,
 * creates household new_hhid (a fresh deident_hhid_new()) linked to it and
 * sets *created. Absent and not auto_enrol: POS_ENOTFOUND. */
int store_resolve(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN], bool auto_enrol,
		  const char *new_hhid, char hhid[DEIDENT_ID_LEN + 1], bool *created, pos_err *e);
/* The households of n tid indexes at once (a worker's resolves of one
 * keys answer): hhid[i] gets idx[i]'s, "" when none holds it. On
 * PostgreSQL one statement for all (one round trip), on SQLite a lookup
 * each in one read transaction (store_reads_begin). Never enrols. */
int store_resolve_many(struct store *s, size_t n, const unsigned char *const *idx,
		       char (*hhid)[DEIDENT_ID_LEN + 1], pos_err *e);
/* Links a tid index to hhid, creating the household when it does not exist.
 * A tid index already linked to another household: POS_ECONFLICT; already
 * linked to this one: 0. */
int store_link(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN], const char *hhid,
	       pos_err *e);
/* Removes the link of a tid index; POS_ENOTFOUND when none. */
int store_unlink(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN], pos_err *e);
/* Moves every tid link and basket of from into into, and removes from. */
int store_merge(struct store *s, const char *from, const char *into, pos_err *e);
int store_household(struct store *s, const char *hhid, struct store_household *out, pos_err *e);
bool store_household_exists(struct store *s, const char *hhid);
/* The household a merged-away hhid's TIDs and baskets are in now (the
 * last survivor of a chain of merges): 0 with out set, POS_ENOTFOUND when
 * hhid was never merged away (nothing set in e), or an error. */
int store_merged_into(struct store *s, const char *hhid, char out[DEIDENT_ID_LEN + 1],
		      pos_err *e);

/* Stores n baskets in one transaction (group commit); results[i] says what
 * happened to each: created, duplicate (same txn, same digest: nothing new)
 * or conflict (same txn, other digest: nothing stored). Returns 0 only when
 * the transaction committed. A created basket's offer codes are redeemed
 * in the same transaction (state REDEEMED) or refused with a reason; a
 * duplicate's report what its first storing did; a conflict's stay
 * PENDING. */
int store_put_baskets(struct store *s, const struct store_basket *b, size_t n,
		      enum store_put_result *results, pos_err *e);
/* Each terminal's newest basket time at its lane, as store_put_baskets
 * records it (one row per store and terminal that ever sent a basket). */
struct store_terminal_seen {
	char store[STORE_ID_MAX + 1];
	char terminal[STORE_ID_MAX + 1];
	int64_t last_ms;
};
/* Calls fn for every terminal seen, by store then terminal; fn returning
 * non-zero stops the walk and is returned. */
int store_terminals_seen(struct store *s, int (*fn)(const struct store_terminal_seen *t, void *arg),
			 void *arg, pos_err *e);
/* For a connection that only runs store_put_baskets (the ingest writer):
 * no foreign-key checks (store_put_baskets makes every reference itself)
 * and no automatic checkpoint inside its commits: the caller runs
 * store_checkpoint. */
int store_ingest_tune(struct store *s, pos_err *e);
/* The WAL as a checkpoint left it: frames in it, and how many of them
 * are copied into the database file. */
struct store_wal {
	int frames;
	int copied;
};
/* A passive WAL checkpoint (copies what no reader still needs into the
 * database file, waits for no one; busy is not an error, and leaves
 * *out -1s). out may be NULL. Nothing to do on PostgreSQL. */
int store_checkpoint(struct store *s, struct store_wal *out, pos_err *e);
/* On a store_ingest_tune connection: frames in the WAL after its last
 * commit (0 on PostgreSQL). */
int store_wal_frames(struct store *s);

/* SQLite's quick_check over the whole file (every page read once): a
 * damaged database is refused before it is served. POS_EDB names the
 * first problem found. */
int store_quick_check(struct store *s, pos_err *e);
/* A consistent copy of the database, taken while other connections write
 * (one read snapshot), into a single self-contained file at dest (no WAL,
 * mode 0600, replaced atomically; restorable by copying it back). */
int store_backup(struct store *s, const char *dest, pos_err *e);

/* Calls fn for each basket of hhid with from_ms <= ts < to_ms (0 = open
 * bound), newest first; the basket and its items live until fn returns.
 * fn returning non-zero stops the walk and is returned. */
int store_history(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		  int (*fn)(const struct store_basket *b, void *arg), void *arg, pos_err *e);

/* A place in a household's history (newest first): the basket with time
 * ts_ms and the store's own basket id. id 0 is the start, before the
 * newest basket. Stable across connections and restarts, so it can travel
 * in a paging cursor; it says nothing about any other basket. */
struct store_history_pos {
	int64_t ts_ms;
	int64_t id;
};

/* One slice of a history walk, each slice its own short read (no read
 * snapshot held between slices, so a slow reader never pins the WAL and
 * the connection stays free for other work in between). Calls fn for up to
 * max baskets of hhid with from_ms <= ts < to_ms (0 = open bound) that come
 * after *pos and not after *end (NULL: no end), newest first, and moves
 * *pos to each basket before fn sees it. fn returns 0 to go on, > 0 to stop
 * after its basket, < 0 to fail (returned). Returns 1 when the slice ended
 * before the walk did (max reached or fn stopped), 0 when no basket is
 * left, or a negative code. */
int store_history_page(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		       struct store_history_pos *pos, const struct store_history_pos *end,
		       size_t max, int (*fn)(const struct store_basket *b, void *arg), void *arg,
		       pos_err *e);
/* *out: the place of the n-th basket (n >= 1) after *after in the same
 * walk, read from the index alone; *more: whether another basket follows
 * it. POS_ENOTFOUND when fewer than n baskets are left. */
int store_history_seek(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		       const struct store_history_pos *after, long n,
		       struct store_history_pos *out, bool *more, pos_err *e);

/* Audit log of admin actions: who (a role or user), what, and a detail that
 * never holds a TID. */
int store_audit(struct store *s, const char *actor, const char *action, const char *detail,
		pos_err *e);

struct store_stats {
	long households;
	long baskets;
	long items;
};
int store_stats(struct store *s, struct store_stats *out, pos_err *e);

/* ---------------------------------------------------------------- offers
 * Offers made by marketing, phones (devices, known only by the SHA-256 of
 * their token), the codes devices accepted and their redemptions. No TID
 * anywhere. A redemption is written by store_put_baskets in the basket's
 * own transaction: a redemption exists iff its basket does, once per code.
 */
struct store_offer {
	char id[STORE_OFFER_ID_LEN + 1];
	char title[STORE_OFFER_TITLE_MAX + 1];
	char reward[STORE_OFFER_REWARD_MAX + 1];
	char target[STORE_OFFER_TARGET_MAX + 1];
	int64_t from_ms;    /* 0: open */
	int64_t to_ms;      /* exclusive; 0: open */
	int64_t created_ms;
	int64_t ended_ms;   /* 0: not ended */
};

/* One accepted code with its offer and, once redeemed, where and when. */
struct store_offer_code {
	char code[STORE_OFFER_CODE_LEN + 1];
	struct store_offer offer;
	int64_t accepted_ms;
	bool redeemed;
	int64_t redeemed_ms; /* the basket's time at the lane */
	char store[STORE_ID_MAX + 1];
	char hhid[DEIDENT_ID_LEN + 1]; /* "" when the basket had none */
};

struct store_offer_report_row {
	char offer_id[STORE_OFFER_ID_LEN + 1];
	char title[STORE_OFFER_TITLE_MAX + 1];
	char store[STORE_ID_MAX + 1];
	char day[11]; /* YYYY-MM-DD, UTC, of the basket */
	long redemptions;
};

/* Whether code c can be redeemed at at_ms: STORE_OFFER_OK or why not. The
 * rule is the offers module's (offers.h: offer_verdict); the store only
 * reads the facts it needs (the code's offer and redemption) and asks. */
typedef enum store_offer_reason (*store_offer_judge)(const struct store_offer_code *c,
						     int64_t at_ms);
/* The judge store_put_baskets asks, inside the basket's own transaction
 * (so two baskets carrying one code cannot both redeem it), for each code
 * a new basket carries, at the basket's time at the lane. A connection
 * without one (the default) judges nothing: its baskets' codes stay
 * PENDING and none is redeemed. The ingest writer sets offer_verdict. */
void store_set_offer_judge(struct store *s, store_offer_judge judge);

/* POS_ECONFLICT when the id exists. */
int store_offer_create(struct store *s, const struct store_offer *o, pos_err *e);
/* POS_ENOTFOUND when unknown. */
int store_offer_get(struct store *s, const char *id, struct store_offer *out, pos_err *e);
/* Ends an offer at now_ms: POS_ENOTFOUND, POS_ECONFLICT when already ended. */
int store_offer_end(struct store *s, const char *id, int64_t now_ms, pos_err *e);
/* Every offer (open_only: those open at now_ms), oldest first; fn returning
 * non-zero stops the walk and is returned. */
int store_offer_list(struct store *s, bool open_only, int64_t now_ms,
		     int (*fn)(const struct store_offer *o, void *arg), void *arg, pos_err *e);

/* Registers a device by the SHA-256 of its token; *id its number. It is
 * unused until store_device_mark_used or an acceptance. */
int store_device_add(struct store *s, const unsigned char hash[32], int64_t now_ms, int64_t *id,
		     pos_err *e);
/* POS_ENOTFOUND when no device has this token hash. *used (may be NULL):
 * whether the registration was used. */
int store_device_find(struct store *s, const unsigned char hash[32], int64_t *id, bool *used,
		      pos_err *e);
/* Registrations never used, counted as they change (one row read). */
int store_device_unused(struct store *s, long *n, pos_err *e);
/* Marks a registration used (its token was presented) from now_ms; 0 when
 * it was already; POS_ENOTFOUND when the device does not exist. */
int store_device_mark_used(struct store *s, int64_t id, int64_t now_ms, pos_err *e);
/* Removes at most limit registrations never used and made before
 * before_ms, oldest first, in one unit; *removed how many. */
int store_device_purge(struct store *s, int64_t before_ms, long limit, long *removed, pos_err *e);

/* Records that device accepted offer_id under code (and marks the device
 * used). When the device had
 * accepted it before, out gets that earlier code and *created is false;
 * else, when may_create (the offer is open), out = code, *created true.
 * POS_EPERM: no earlier acceptance and !may_create; POS_ECONFLICT: code
 * is taken (draw another); POS_ENOTFOUND: unknown offer or device. */
int store_offer_accept(struct store *s, int64_t device, const char *offer_id, const char *code,
		       bool may_create, int64_t now_ms, char out[STORE_OFFER_CODE_LEN + 1],
		       bool *created, pos_err *e);
/* POS_ENOTFOUND when no device accepted code. */
int store_offer_code_get(struct store *s, const char *code, struct store_offer_code *out,
			 pos_err *e);
/* Each code device holds, oldest first. */
int store_device_codes(struct store *s, int64_t device,
		       int (*fn)(const struct store_offer_code *c, void *arg), void *arg, pos_err *e);
/* Offers open at now_ms that device has not accepted, at most limit: first
 * those targeted at an item a household of the device's redemptions
 * bought (targeted = true), then offers for all. */
int store_offer_next(struct store *s, int64_t device, int64_t now_ms, int limit,
		     int (*fn)(const struct store_offer *o, bool targeted, void *arg), void *arg,
		     pos_err *e);
/* Redemptions per offer, store and day, ordered by those. */
int store_offer_report(struct store *s,
		       int (*fn)(const struct store_offer_report_row *r, void *arg), void *arg,
		       pos_err *e);

/* ---------------------------------------------------------------- months (store_retention.c)
 * Baskets by month: on PostgreSQL baskets and items are partitioned by
 * UTC month (store_schema_pg.c); on SQLite these calls are cheap no-ops
 * or plain deletes, so callers need not know the backend. */

/* PostgreSQL: makes the partitions of this month and the next months. */
int store_partitions_ahead(struct store *s, long months, pos_err *e);
/* PostgreSQL: makes the partitions of the month holding ts_ms (a late
 * basket of an old month) unless made already. Inside the caller's
 * transaction when one is open. */
int store_partition_for(struct store *s, int64_t ts_ms, pos_err *e);

/* The first ms of the UTC month months_back months before the one holding
 * now_ms: retention keeps what is at or after it. */
int64_t store_month_start(int64_t now_ms, long months_back);

struct store_retention {
	long baskets; /* removed, with their items, receipts and redemptions */
	long items;
	long months; /* PostgreSQL: partitions dropped */
};
/* Removes every basket with ts < before_ms (a month start) with its items,
 * receipt and redemptions, and lowers the counters. PostgreSQL: drops each
 * whole month older than before_ms, one transaction a month. SQLite:
 * deletes batch baskets a transaction, so serve's writer waits at most
 * one batch. out: what went. */
int store_retention(struct store *s, int64_t before_ms, long batch, struct store_retention *out,
		    pos_err *e);

#endif
