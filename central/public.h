#ifndef POS_PUBLIC_H
#define POS_PUBLIC_H
/*
 * The public listener's routes (design sections 8 and 13): phones and
 * browsers, no client certificate. One struct public per worker thread,
 * beside that worker's struct routes, on a second httpd with the public
 * certificate. Its route table is its own: no terminal, analyst or admin
 * route is reachable here, and none of these is reachable on the main
 * listener.
 *
 *   GET  /r/{token}, /console, /assets/{file}   pages from the www folder
 *   GET  /v1/receipts/{token}                   the receipt (JSON)
 *   GET  /v1/receipts/{token}/messages?after=ID[&wait=0]   long poll
 *   POST /v1/receipts/{token}/messages          {"body"} from the customer
 *   POST /v1/console/login {"token"}, /v1/console/logout; GET /v1/console/me
 *   GET  /v1/conversations?state=open           staff session
 *   POST /v1/conversations/{id}/messages, /v1/conversations/{id}/close
 *   GET  /visit, /chat?uid=&sig=                visitor pages
 *   POST /v1/visitors; GET /v1/links?uid=&sig=  visitor ids and their links
 *   GET, POST /v1/chat/messages?uid=&sig=       the visitor's conversation
 *   POST /v1/sms/inbound                        the SMS gateway, signed
 *
 * Every reply carries the security headers (CSP without inline script,
 * HSTS, nosniff, no referrer, no framing). Requests are limited per
 * client address (a token bucket). A long poll is parked, never blocking
 * the worker: a new message anywhere in the process wakes the workers
 * holding polls for that transaction (public_bus), a timer ends the rest.
 * A visitor's message and an inbound SMS are written by the writer
 * (ingest.h) in its group commit and answered once it has committed.
 */
#include <stdbool.h>
#include <stddef.h>

#include "cconf.h"
#include "err.h"
#include "keys.h"
#include "store.h"

struct event_base;
struct httpd_req;
struct ingest;
struct keys_chan;
struct public_bus;
struct ratelimit;

/* Read-only after public_shared_init, shared by every worker. */
struct public_shared {
	const struct cconf *c;
	int www_fd;                 /* the www folder, O_PATH */
	char www[CCONF_PATH_MAX];   /* its path, for the log */
	struct public_bus *bus;
	struct ratelimit *limiter; /* one class: [limits] public_rate_per_min, public_burst */
	struct ingest *ingest;      /* the writer: vendor routes, visitor messages, inbound SMS */
	/* Signs visitor ids (visitor.h): links nothing to a customer. */
	unsigned char visitor_key[KEYS_HMAC_LEN];
	/* central.pub: seals an SMS sender's number for replies. */
	unsigned char hpke_pk[32];
	char hpke_kid[KEYS_KID_LEN + 1];
};

/* Finds and opens the www folder ([central] www; empty: share/pos/www
 * beside the binary's folder, else the source tree's www when run from
 * build/bin). Free with public_shared_free. */
int public_shared_init(struct public_shared *sh, const struct cconf *c, pos_err *e);
void public_shared_free(struct public_shared *sh);

struct public;
/* store and keys are borrowed (the worker's); *out: public_free after
 * public_stop and once public_waiting() is 0. */
int public_new(struct event_base *base, struct store *store, struct keys_chan *keys,
	       struct public_shared *sh, struct public **out, pos_err *e);
void public_free(struct public *p);
/* The httpd handler; arg is the struct public. */
void public_handle(struct httpd_req *req, void *arg);
/* Answers every parked long poll now (serve is stopping). */
void public_stop(struct public *p);
/* Parked polls and writes with the writer: free only at 0. */
size_t public_waiting(const struct public *p);

#endif
