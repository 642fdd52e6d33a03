#ifndef POS_STORE_H
#define POS_STORE_H
/*
 * The one storage interface of pos-central. store_sqlite.c implements it
 * (WAL, prepared statements with bound parameters only, versioned schema
 * migrations); a PostgreSQL implementation will follow, so nothing
 * SQLite-specific appears here. A struct store is one connection: use it
 * from one thread at a time (open one per worker thread).
 * No TID ever reaches the store: households are found by tid index
 * (HMAC-SHA256(k_index, TID)) only.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "deident.h"
#include "err.h"
#include "gtin.h"

#define STORE_ID_MAX 64 /* store and terminal ids */

struct store;

struct store_item {
	char gtin[GTIN_LEN + 1];
	int qty;
	long price_cents; /* -1: the lane did not know the price */
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
};

enum store_put_result { STORE_PUT_CREATED = 1, STORE_PUT_DUPLICATE, STORE_PUT_CONFLICT };

struct store_household {
	char hhid[DEIDENT_ID_LEN + 1];
	int64_t created_ms;
	long n_tids;
	long n_baskets;
	int64_t last_basket_ms; /* 0 when none */
};

/* Opens (creating and migrating when needed) the database at path.
 * *out: store_close. */
int store_open(const char *path, struct store **out, pos_err *e);
void store_close(struct store *s);

/* Transactions around many calls (enrolment batches). Calls outside one
 * are each their own transaction. */
int store_begin(struct store *s, pos_err *e);
int store_commit(struct store *s, pos_err *e);
void store_rollback(struct store *s);

/* Finds the household of a tid index. When absent and auto_enrol is set,
 * creates household new_hhid (a fresh deident_hhid_new()) linked to it and
 * sets *created. Absent and not auto_enrol: POS_ENOTFOUND. */
int store_resolve(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN], bool auto_enrol,
		  const char *new_hhid, char hhid[DEIDENT_ID_LEN + 1], bool *created, pos_err *e);
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

/* Stores n baskets in one transaction (group commit); results[i] says what
 * happened to each: created, duplicate (same txn, same digest: nothing new)
 * or conflict (same txn, other digest: nothing stored). Returns 0 only when
 * the transaction committed. */
int store_put_baskets(struct store *s, const struct store_basket *b, size_t n,
		      enum store_put_result *results, pos_err *e);

/* Calls fn for each basket of hhid with from_ms <= ts < to_ms (0 = open
 * bound), newest first; the basket and its items live until fn returns.
 * fn returning non-zero stops the walk and is returned. */
int store_history(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		  int (*fn)(const struct store_basket *b, void *arg), void *arg, pos_err *e);

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

#endif
