#ifndef POS_STORE_ANALYST_H
#define POS_STORE_ANALYST_H
/*
 * The store's part for the analysts' workbench (design section 15): what
 * a household bought, the households that bought an item and what else
 * they bought, the offers' funnel. Raw counts only: the k-anonymity rules
 * live in analyst.c. Same connection rules as store.h; read-only.
 */
#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

/* A cohort's filter: baskets in [from_ms, to_ms) (0: open), at store
 * (NULL: any). */
struct store_cohort_filter {
	const char *gtin; /* GTIN-14 */
	int64_t from_ms, to_ms;
	const char *store;
};

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

/* The cohort's households, each with the months (year * 12 + month - 1)
 * of its first and last purchase of the item within the filter. *first
 * and *last: the caller frees; *n households. */
int store_analyst_cohort(struct store *s, const struct store_cohort_filter *f, int **first,
			 int **last, size_t *n, pos_err *e);

/* Households with any basket within the filter (its gtin ignored). */
int store_analyst_population(struct store *s, const struct store_cohort_filter *f, long *n,
			     pos_err *e);

/* Per other item bought within the filter: the cohort's households that
 * bought it, and all households that did. */
struct store_analyst_other {
	const char *gtin, *name;
	long cohort, population;
};
int store_analyst_also(struct store *s, const struct store_cohort_filter *f,
		       int (*cb)(const struct store_analyst_other *o, void *arg), void *arg,
		       pos_err *e);

/* Per offer, oldest first: codes accepted, codes a lane carried in a
 * stored basket, and those of them matched to a household. */
struct store_analyst_funnel {
	const char *offer_id, *title;
	long accepted, scanned, redeemed;
};
int store_analyst_funnel(struct store *s,
			 int (*cb)(const struct store_analyst_funnel *f, void *arg), void *arg,
			 pos_err *e);

#endif
