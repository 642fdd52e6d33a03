#ifndef POS_OFFERS_H
#define POS_OFFERS_H
/*
 * Offers: what marketing creates, what a phone app sees and
 * accepts, what a lane checks, and the analysts' report. The HTTP routes
 * (routes.c) and the command line (offer_cli.c) call these; storage is
 * store.h. Every JSON answer is built here, so the wire shapes live in one
 * place (docs/offers.md):
 *
 *   offer   {"id","title","reward","target","from"?,"to"?}   to: exclusive
 *   code    {"code","offer_id","title","reward","accepted_at",
 *            "state":"accepted|redeemed|expired","redeemed_at"?,"store"?}
 *
 * A device is known by the SHA-256 of its token only; a token never
 * reaches a log line or the database. Offer codes are not TIDs, but a code
 * a lane sent that central never issued could be anything, so refusals are
 * logged by reason only.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

#define OFFERS_TOKEN_LEN 43 /* base64url of 32 random bytes, no padding */
#define OFFERS_NEXT_MAX 5   /* next offers suggested after a redemption */
#define OFFERS_CODE_TRIES 16 /* fresh codes drawn when one is taken */

enum offers_format { OFFERS_CSV = 0, OFFERS_JSON };

/* The rules. The store keeps facts and decides nothing: these say what
 * the facts mean, here and when the store redeems a basket's codes (the
 * writer's connection is given offer_verdict: store_set_offer_judge). */
/* Whether an offer is open at at_ms (not ended, within its dates). */
bool offer_open(const struct store_offer *o, int64_t at_ms);
/* Why code c cannot be redeemed at at_ms (STORE_OFFER_OK: it can). A
 * store_offer_judge. */
enum store_offer_reason offer_verdict(const struct store_offer_code *c, int64_t at_ms);
/* "unknown", "expired", ...; "" for STORE_OFFER_OK. */
const char *offer_reason_name(enum store_offer_reason r);

/* 13 digits, "98" first, the last the GS1 check digit of the others. */
bool offers_code_valid(const char *code);
/* A random code that passes offers_code_valid. */
int offers_code_new(char out[STORE_OFFER_CODE_LEN + 1], pos_err *e);
/* "of_" + 16 lowercase hex. */
bool offers_id_valid(const char *id);
int offers_id_new(char out[STORE_OFFER_ID_LEN + 1], pos_err *e);
/* "all", or "gtin:" + a valid GTIN-14, copied into out. */
int offers_target_parse(const char *s, char out[STORE_OFFER_TARGET_MAX + 1], pos_err *e);
/* A title or reward: 1..max bytes of UTF-8 without control characters. */
int offers_text_check(const char *what, const char *s, size_t max, pos_err *e);
/* "csv" or "json"; -1 otherwise. */
int offers_format_parse(const char *s);

/* A fresh device token and the SHA-256 central keeps of it. */
int offers_token_new(char token[OFFERS_TOKEN_LEN + 1], unsigned char hash[32], pos_err *e);
/* The SHA-256 of a presented token (len bytes); POS_EINVAL when it cannot
 * be a token. */
int offers_token_hash(const char *token, size_t len, unsigned char hash[32], pos_err *e);

/* The limits on device registrations ([devices] in central.conf). */
struct offers_limits {
	long max_unused;   /* registrations never used, at most */
	long unused_ttl_s; /* a registration never used is removed after this */
};
#define OFFERS_PURGE_BATCH 1000 /* registrations removed per transaction */

/* POST /v1/devices: registers a device; token receives its bearer token.
 * POS_ETOOBIG when max_unused registrations are unused already (nothing
 * is written). Runs on the writer (store_begin'd connection). */
int offers_device_register(struct store *s, int64_t now_ms, long max_unused,
			   char token[OFFERS_TOKEN_LEN + 1], pos_err *e);
/* The device holding a presented token: POS_ENOTFOUND (or POS_EINVAL for
 * a malformed token) means 401. *used (may be NULL): whether it was used
 * before. */
int offers_device_auth(struct store *s, const char *token, size_t len, int64_t *device,
		       bool *used, pos_err *e);
/* For ingest_every, arg a struct offers_limits: removes up to
 * OFFERS_PURGE_BATCH registrations unused for unused_ttl_s; > 0 when more
 * may be left. Counts them in /metrics. */
int offers_expire_tick(struct store *s, void *arg);
/* How often offers_expire_tick should run for these limits. */
long offers_expire_interval_ms(const struct offers_limits *l);

/* GET /v1/offers: {"offers":[offer + "accepted":bool]} open at now_ms.
 * *out: json_decref. */
int offers_open_json(struct store *s, int64_t device, int64_t now_ms, json_t **out, pos_err *e);
/* POST /v1/offers/{id}/accept: *out = {"code","offer_id","title","reward"},
 * *created false when the device had accepted it before (same code).
 * POS_ENOTFOUND: no such offer; POS_ECONFLICT: the offer is not open. */
int offers_accept(struct store *s, int64_t device, const char *offer_id, int64_t now_ms,
		  json_t **out, bool *created, pos_err *e);
/* GET /v1/devices/me/offers: {"codes":[code...]} and, once one of them was
 * redeemed, "next_offers":[offer + "why":"bought_item|all"]. */
int offers_sync_json(struct store *s, int64_t device, int64_t now_ms, json_t **out, pos_err *e);
/* POST /v1/offers/check: {"code","redeemable":bool,"reason"?,"title"?}.
 * Advisory: two lanes may both hear "redeemable"; the first basket stored
 * wins. */
int offers_check_json(struct store *s, const char *code, int64_t now_ms, json_t **out,
		      pos_err *e);
/* The "offers" list of a basket answer: [{"code","status","reason"?}];
 * NULL when the basket carried none or they were not judged. */
json_t *offers_basket_json(const struct store_basket *b);
/* Logs the basket's refused codes (txn and reason, never the code). */
void offers_log_refusals(const struct store_basket *b);

/* One offer as JSON (a new reference, NULL on out of memory). */
json_t *offers_offer_json(const struct store_offer *o);
/* Redemptions per offer, store and day, as CSV (header
 * offer_id,title,store,day,redemptions) or a JSON array, through sink. */
int offers_report_write(struct store *s, enum offers_format fmt,
			int (*sink)(const void *buf, size_t len, void *arg), void *arg, pos_err *e);

#endif
