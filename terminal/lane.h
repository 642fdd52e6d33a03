#ifndef POS_LANE_H
#define POS_LANE_H
/*
 * The open transaction of one lane: pure state, no I/O, no clock (times
 * and txn ids are passed in), so every rule is unit-tested.
 *
 * - The agent opens a transaction (lane_begin) with its first item or TID.
 * - The same GTIN scanned again adds to its line: qty 2. Lines keep their
 *   first-scan order. A variable-measure scan carries its price; a line's
 *   price_cents is the sum over its scans (the line amount), unknown (-1)
 *   as soon as one scan came without a price.
 * - Void takes back the last scan still standing: its line's qty drops by
 *   one (and its price by that scan's); a line at 0 leaves the basket.
 * - The customer's TID is held only as its EncTID (kid + enc): a second TID
 *   replaces the first and drops any household already resolved for it.
 *   Each TID gets a new generation; a resolve answer is applied only for
 *   the current one, so a late answer never lands on the wrong customer.
 * - Total builds the basket body (lane_body); the caller commits it to the
 *   spool and only then closes the lane (lane_close), so a failed commit
 *   leaves the transaction open for another try.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "deident.h"
#include "envelope.h"
#include "err.h"
#include "gtin.h"
#include "keys.h"
#include "tid.h"

#define LANE_MAX_LINES 1000   /* central accepts 1..1000 items */
#define LANE_MAX_QTY 9999     /* per line, as central accepts */
#define LANE_MAX_SCANS 10000  /* scans remembered for void */
#define LANE_MAX_OFFERS 32
#define LANE_OFFER_MAX 64
#define LANE_TXN_LEN 36

struct lane;

struct lane_item {
	char gtin[GTIN_LEN + 1];
	long qty;
	long price_cents; /* line amount; -1 when unknown */
};

/* *out: lane_free. Starts closed. */
int lane_new(struct lane **out, pos_err *e);
void lane_free(struct lane *l);

bool lane_is_open(const struct lane *l);
/* The open transaction's id, "" when closed. */
const char *lane_txn(const struct lane *l);
/* Opens a transaction with id txn (a UUID). Fails when one is open. */
int lane_begin(struct lane *l, const char *txn, pos_err *e);
/* Forgets the transaction (after its spool commit, or on cancel). */
void lane_close(struct lane *l);

/* Adds one scan of gtin (14 digits, check digit valid); price_cents is the
 * scan's embedded price or -1. *line (optional) receives the line after. */
int lane_add_item(struct lane *l, const char *gtin, long price_cents, struct lane_item *line,
		  pos_err *e);
/* Takes back the last scan; *line (optional) gets its line after (qty 0
 * when the line left the basket). POS_ENOTFOUND when nothing to void. */
int lane_void(struct lane *l, struct lane_item *line, pos_err *e);
/* Adds an offer code once; *added is false for a repeat. */
int lane_add_offer(struct lane *l, const char *code, bool *added, pos_err *e);

/* Sets the customer's EncTID (kid: 16 hex, enc: base64url), replacing any
 * earlier one; *gen receives the new TID generation, *replaced whether a
 * TID was there before. */
int lane_set_tid(struct lane *l, enum tid_kind kind, const char *kid, const char *enc,
		 unsigned *gen, bool *replaced, pos_err *e);
/* Applies a resolve answer for TID generation gen. POS_ENOTFOUND when the
 * lane is closed or the TID was replaced since (nothing changes);
 * POS_EINVAL when hhid or deident_tid is malformed. */
int lane_set_household(struct lane *l, unsigned gen, const char *hhid, const char *deident_tid,
		       pos_err *e);

/* The receipt token printed for this transaction (receipt.h), sent in the
 * basket as "receipt". */
int lane_set_receipt(struct lane *l, const char *token, pos_err *e);

/* Lines still in the basket (qty > 0) and units over them. */
size_t lane_lines(const struct lane *l);
long lane_units(const struct lane *l);
/* The i-th line still in the basket (0-based), NULL past the end. */
const struct lane_item *lane_line(const struct lane *l, size_t i);
bool lane_has_tid(const struct lane *l);
enum tid_kind lane_tid_kind(const struct lane *l); /* 0 without a TID */
unsigned lane_tid_gen(const struct lane *l);
bool lane_has_household(const struct lane *l);
/* "" until resolved. */
const char *lane_hhid(const struct lane *l);
size_t lane_offers(const struct lane *l);

/* The basket body of design section 4, compact JSON:
 * {"txn","ts","items":[{"gtin","qty","price_cents"?}],"hhid"?,"deident_tid"?,
 *  "tid"?,"offers"?,"receipt"?} with hhid and deident_tid when resolved, else the
 * EncTID as "tid" when there is one. ts is ts_ms in RFC 3339. Fails
 * (POS_EINVAL) when closed or without items. *body: free(). */
int lane_body(const struct lane *l, int64_t ts_ms, char **body, size_t *len, pos_err *e);

#endif
