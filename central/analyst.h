#ifndef POS_ANALYST_H
#define POS_ANALYST_H
/*
 * The analysts' workbench (design section 15) on the main listener:
 *
 *   GET  /analyst/                         sign-in page (one field: token)
 *   POST /analyst/login                    token=… → session cookie
 *   POST /analyst/logout                   X-CSRF-Token
 *   GET  /analyst/households/{hhid}, /analyst/cohorts, /analyst/offers, /analyst/assets/{f}
 *   GET  /v1/analyst/me                    {"csrf"}
 *   GET  /v1/analyst/households/{hhid}[?format=csv]
 *   GET  /v1/analyst/cohorts?item=GTIN[&from=D&to=D&store=S][&format=csv]   D: YYYY-MM[-DD]
 *   GET  /v1/analyst/cohorts/offer?offer=ID[&weeks=N]
 *   GET  /v1/analyst/offers/funnel[?format=csv]
 *
 * A caller is an analyst by the analyst token (Authorization: Bearer) or
 * a session cookie the sign-in set (HttpOnly, Secure, SameSite=Strict;
 * kept in memory as the SHA-256 of its id, with its expiry). Every call
 * an analyst makes is written to the audit table by the writer (an
 * INGEST_OP job), never on the worker's loop. Aggregates honour
 * [privacy] k_min: docs/analysts.md states the rule.
 */
#include <stdbool.h>

#include "cconf.h"
#include "err.h"
#include "ingest.h"
#include "keyring.h"
#include "store.h"

struct httpd_req;
struct analyst_shared;

/* kr and ig are borrowed and outlive it. The www folder is optional:
 * without it the pages answer 404 and the JSON routes still work.
 * *out: analyst_shared_free after every worker stopped. */
int analyst_shared_new(const struct cconf *c, const struct keyring *kr, struct ingest *ig,
		       struct analyst_shared **out, pos_err *e);
void analyst_shared_free(struct analyst_shared *a);

/* For ingest_every on the writer ([analyst] fold_ms), arg the shared
 * state: folds up to [analyst] fold_batch new baskets into the cohorts'
 * tables; > 0 when more are waiting. */
int analyst_fold_tick(struct store *s, void *arg);

/* On PostgreSQL the fold runs on a thread and connection of its own
 * (several connections write there at once; on the writer each unit held
 * every basket queued behind it). Every [analyst] fold_ms, and again at
 * once while more are waiting. *out: analyst_folder_stop. a outlives it. */
struct analyst_folder;
int analyst_folder_start(const struct cconf *c, struct analyst_shared *a,
			 struct analyst_folder **out, pos_err *e);
/* Ends the unit under way, then the thread. Accepts NULL. */
void analyst_folder_stop(struct analyst_folder *f);

/* Whether path is one of the workbench's (/analyst, /analyst/…, /v1/analyst/…). */
bool analyst_path(const char *path);

/* Answers the request; s is the worker's store connection. Thread-safe. */
void analyst_handle(struct analyst_shared *a, struct store *s, struct httpd_req *req);

/* The k-anonymity rule of a cohort of n households (first[i], last[i]: the
 * days (or months: any unit the filters cannot cut finer) of each one's
 * first and last purchase in the filter, sorted ascending here), out of pop households active in the filter, and
 * n_all households when the store filter is dropped (-1: no store
 * filter). NULL when it may be shown, else why not. */
const char *analyst_cohort_rule(long k, int *first, int *last, size_t n, long pop,
				long n_all);

#endif
