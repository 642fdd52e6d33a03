#ifndef POS_STORE_ANALYST_H
#define POS_STORE_ANALYST_H
/*
 * The store's part for the analysts' workbench (design section 15): what
 * a household bought, the households that bought an item and what else
 * they bought, the offers' funnel. Raw counts only: the k-anonymity rules
 * live in analyst.c. Same connection rules as store.h; read-only.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

/* The household's summary: {"hhid","baskets","spend_cents","months":[…],
 * "categories":[…],"offers":[…]}. POS_ENOTFOUND for an unknown hhid.
 * *out: the caller's. */
int store_analyst_household(struct store *s, const char *hhid, json_t **out, pos_err *e);

/* One row per item line of the household's baskets, oldest first. */
struct store_analyst_line {
	int64_t ts_ms;
	const char *txn, *store, *gtin, *name, *category;
	long qty;
	long price_cents; /* -1: unknown */
};
int store_analyst_lines(struct store *s, const char *hhid,
			int (*cb)(const struct store_analyst_line *l, void *arg), void *arg,
			pos_err *e);

/* Per other item bought within a cohort's filter: the cohort's
 * households that bought it, and all households that did. */
struct store_analyst_other {
	const char *gtin, *name;
	long cohort, population;
};

/* Per offer, oldest first: codes accepted, codes a lane carried in a
 * stored basket, and those of them matched to a household. */
struct store_analyst_funnel {
	const char *offer_id, *title;
	long accepted, scanned, redeemed;
};
int store_analyst_funnel(struct store *s,
			 int (*cb)(const struct store_analyst_funnel *f, void *arg), void *arg,
			 pos_err *e);

/* The folded tables (schema v8): a cohort's days, its population and
 * what else it bought read them, not the item lines. A filter of days
 * since 1970-01-01 UTC: [from_day, to_day) (to_day 0: open), at store
 * (NULL: any). */
struct store_analyst_days {
	const char *gtin; /* GTIN-14; ignored by the population */
	int64_t from_day, to_day;
	const char *store;
};

/* Folds baskets past the fold's mark (SQLite) or queued in
 * analyst_pending (PostgreSQL, where ids commit out of order) into the
 * folded tables, at most max of them, in one write unit; *folded: how
 * many, *more: whether baskets are left. Runs on a writing connection (serve's writer, the CLI). */
int store_analyst_fold(struct store *s, long max, int64_t now_ms, long *folded, bool *more,
		       pos_err *e);

/* The cohort's households, each with the days of its first and last
 * purchase of the item within the filter. *first and *last: the caller
 * frees; *n households. */
int store_analyst_days_cohort(struct store *s, const struct store_analyst_days *f, int **first,
			      int **last, size_t *n, pos_err *e);
/* Households with any basket within the filter (its gtin ignored). */
int store_analyst_days_population(struct store *s, const struct store_analyst_days *f, long *n,
				  pos_err *e);
/* What else the cohort bought, the most bought first, then by GTIN;
 * o->name "" for an item not in the item master. */
int store_analyst_days_also(struct store *s, const struct store_analyst_days *f,
			    int (*cb)(const struct store_analyst_other *o, void *arg), void *arg,
			    pos_err *e);

/* The households that redeemed an offer, and their spend (the sum of
 * their item prices) in the window_ms before and after each redemption
 * (the redeeming basket counts as after). POS_ENOTFOUND: no such offer. */
struct store_analyst_move {
	char title[256];
	long households, redemptions;
	long long before_cents, after_cents;
	char last_hhid[40]; /* the walk's scratch */
};
int store_analyst_offer_moves(struct store *s, const char *offer_id, int64_t window_ms,
			      struct store_analyst_move *out, pos_err *e);

/* One page of store_analyst_lines: the item lines of up to baskets
 * baskets after *pos (the basket's time, then its id; {INT64_MIN, 0} for
 * the first page), oldest first; *pos moves to the last basket given.
 * 1: more may follow, 0: the last page. So an export streams page by
 * page, each page one short read. */
struct store_analyst_pos {
	int64_t ts_ms, id;
};
int store_analyst_lines_page(struct store *s, const char *hhid, struct store_analyst_pos *pos,
			     long baskets, int (*cb)(const struct store_analyst_line *l, void *arg),
			     void *arg, pos_err *e);

#endif
