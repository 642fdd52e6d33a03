#ifndef POS_VENDOR_H
#define POS_VENDOR_H
/*
 * Vendors and proactive support (design section 14, docs/vendors.md), on
 * the public listener: vendor backends call it server to server (no
 * client certificate; a bearer token and an HMAC signature instead), and
 * phones read their messages on it beside their receipts.
 *
 *   POST /v1/vendor/activities {"ref","txn","gtin","kind","at"}   signed
 *   POST /v1/vendor/events {"id","kind","gtin"?,"activity"?,"new_at"?,"text"}
 *   GET  /v1/devices/me/messages                   device token
 *   GET  /v1/devices/me/products                   device token
 *   POST /v1/devices/me/session                    bearer device token
 *   POST /v1/messages/{id}/choose {"option"}       device token
 *   POST /v1/messages/{id}/support                 device token
 *
 * A signed call carries Authorization: Bearer <token>, X-Pos-Timestamp
 * (unix seconds) and X-Pos-Signature: base64(HMAC-SHA256(secret,
 * timestamp "." body)). A timestamp more than [vendors] max_skew_s away is
 * refused (401), a (timestamp, body) seen before too (409). Every write
 * runs on the writer (INGEST_OP); the answer leaves after its commit.
 *
 * A device call carries Authorization: Bearer <device token> or, from the
 * message page (www/messages.html), the pos_device cookie that
 * /v1/devices/me/session set (HttpOnly, Secure, SameSite=Strict); a POST
 * with the cookie must be application/json, which no other site's form
 * can send.
 *
 * Calls to vendor backends (options, reschedule) leave from the outbox
 * thread (vendor_outbox_*), never from a worker's loop, signed the same
 * way; vendors see only their pseudonym of a household, "vp_" +
 * base64url(HMAC-SHA256(k_vendor, vendor id "|" hhid)) cut to 16 bytes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cconf.h"
#include "err.h"
#include "store.h"

#define VENDOR_SIG_B64_LEN 44 /* base64 of 32 bytes, padded */
#define VENDOR_VP_LEN 25      /* "vp_" + 22 characters */

struct event_base;
struct httpd_req;
struct ingest;

/* base64(HMAC-SHA256(secret, ts "." body)) into out. */
int vendor_sign(const char *secret, long long ts, const void *body, size_t len,
		char out[VENDOR_SIG_B64_LEN + 1], pos_err *e);
/* The pseudonym vendor sees for hhid. */
void vendor_pseudonym(const unsigned char key[32], const char *vendor, const char *hhid,
		      char out[VENDOR_VP_LEN + 1]);

struct vendor_worker;
/* One per worker, beside its struct public. store is borrowed (the
 * worker's), ig the writer. *out: vendor_worker_free once
 * vendor_waiting() is 0. */
int vendor_worker_new(struct event_base *base, struct store *store, struct ingest *ig,
		      const struct cconf *c, struct vendor_worker **out, pos_err *e);
void vendor_worker_free(struct vendor_worker *w);
size_t vendor_waiting(const struct vendor_worker *w);
/* Answers req (now or after the writer) when its path is one of the
 * routes above, and says so; false leaves req to the caller. */
bool vendor_handle(struct vendor_worker *w, struct httpd_req *req);

/* The outbox thread: its own store connection, k_vendor loaded from
 * [vendors] k_vendor (made when missing); and, unless [vendors]
 * relations_every_s is 0, the thread relearning the co-purchase relations
 * (store_relations_learn) with one more connection. *out:
 * vendor_outbox_stop. */
struct vendor_outbox;
enum vendor_call_result { VENDOR_CALL_RETRIED = 0, VENDOR_CALL_DONE, VENDOR_CALL_REFUSED };
/* Counts an outbox call's result in /metrics. */
void vendor_count_outbox(enum vendor_call_result r);
int vendor_outbox_start(const struct cconf *c, struct vendor_outbox **out, pos_err *e);
void vendor_outbox_stop(struct vendor_outbox *o);

#endif
