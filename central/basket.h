#ifndef POS_BASKET_H
#define POS_BASKET_H
/*
 * A basket as a terminal posts it (design section 4), parsed and validated
 * into a struct store_basket. Pure: no store, no clock, no keys, so it can
 * be fuzzed; the caller checks what needs the store (the hhid exists) and
 * resolves a carried EncTID.
 *
 *   {"txn":UUID, "ts":RFC 3339, "items":[{"gtin","qty","price_cents"?}],
 *    "hhid"?, "deident_tid"?, "tid"?:{"kid","enc"}, "offers"?:[string]}
 *
 * Every field is checked and any other key is refused. Messages name the
 * field and what is wrong with it, never its value (a client could put a
 * card number anywhere).
 *
 * The digest is SHA-256 over a canonical serialisation of the validated
 * fields as sent (txn lower-cased, ts as Unix milliseconds, items in order,
 * hhid, deident_tid, the EncTID, offers) plus store and terminal from the
 * client certificate: the same basket sent twice, even re-encoded, is a
 * duplicate; the same txn with other content is a conflict.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "err.h"
#include "keys.h"
#include "store.h"
#include "uuid.h"

#define BASKET_MAX_ITEMS 1000
#define BASKET_MAX_BATCH 500
#define BASKET_QTY_MAX 9999
#define BASKET_PRICE_MAX 10000000000L /* cents: far above any one line */
#define BASKET_MAX_OFFERS 100
#define BASKET_OFFER_MAX 64
#define BASKET_TS_MIN_MS 946684800000LL /* 2000-01-01T00:00:00Z */
#define BASKET_TS_AHEAD_MS 86400000LL   /* a lane clock may run a day ahead */
/* A batch nests object, array, basket, items, item: anything deeper is not
 * a basket and is refused before parsing. */
#define BASKET_MAX_DEPTH 6

struct basket_in {
	struct store_basket b;           /* b.items is owned: basket_free */
	char txn_sent[UUID_STR_LEN + 1];    /* as sent: the EncTID info uses it */
	bool has_tid;
	char tid_kid[KEYS_KID_LEN + 1];
	char tid_enc[ENVELOPE_B64_MAX];
	/* The EncTID opened to a TID no household holds yet: the writer
	 * enrols it by this index (wiped by basket_free). */
	bool enrol;
	unsigned char enrol_idx[DEIDENT_INDEX_LEN];
};

/* Validates one basket object and fills out (zeroed first). store and
 * terminal come from the client certificate; now_ms bounds ts. On failure
 * out holds nothing to free (basket_free is still safe). */
int basket_from_json(json_t *obj, const char *store, const char *terminal, int64_t now_ms,
		     struct basket_in *out, pos_err *e);
/* Parses a request body of at most max_len bytes, then basket_from_json. */
int basket_parse(const char *body, size_t len, size_t max_len, const char *store,
		 const char *terminal, int64_t now_ms, struct basket_in *out, pos_err *e);
/* Checks a batch body {"baskets":[...]} (1..BASKET_MAX_BATCH entries) and
 * returns the array, borrowed from root. */
int basket_batch_array(json_t *root, json_t **arr, pos_err *e);
/* The txn of a basket object when it is a well-formed UUID (lower-cased
 * into out), so a batch result can name it; "" otherwise. */
void basket_txn_hint(json_t *obj, char out[UUID_STR_LEN + 1]);
/* Frees the items; accepts NULL and a zeroed or failed struct. */
void basket_free(struct basket_in *b);

#endif
