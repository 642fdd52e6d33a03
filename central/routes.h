#ifndef POS_ROUTES_H
#define POS_ROUTES_H
/*
 * The HTTP routes of design section 4, one struct routes per worker thread
 * (its event_base and its own store connection). Handlers answer at once,
 * except writes: baskets, device registrations and offer acceptances go
 * to the ingest writer and are answered when it has committed them, from
 * the worker's thread, woken by an event the writer activates. The routes
 * anyone may call (no client certificate) are limited per client address
 * first (429 with Retry-After).
 *
 * Every answer is JSON (or Prometheus / CSV text); errors are
 * {"error":"<code>","detail":"..."}. One log line per request: route,
 * method, status, latency_us, store, terminal; never a body, never a TID.
 */
#include <stdbool.h>
#include <stddef.h>

#include "cconf.h"
#include "err.h"
#include "ingest.h"
#include "keyring.h"
#include "keysproc.h"
#include "offers.h"
#include "ratelimit.h"
#include "store.h"

struct event_base;
struct httpd_refusal_reply;
struct httpd_req;
struct analyst_shared;

/* Read-only after start, shared by every worker. */
struct routes_shared {
	const struct keyring *kr; /* the tokens; in serve it holds no key */
	struct ingest *ingest;
	bool auto_enrol;
	size_t max_body; /* the parsers' cap; httpd refuses a longer body with 413 */
	const char *database; /* its file system is what /v1/health/ready checks */
	long min_free_mb;     /* ready only with this much free beside the database */
	/* Per-address buckets of the public routes, classes ROUTES_RL_*;
	 * NULL: no limit. */
	struct ratelimit *rl;
	struct offers_limits devices;
	struct analyst_shared *analyst; /* the workbench's routes (analyst.h); NULL: off */
	/* GET /v1/keys's answer, made once at start by routes_keys_answer;
	 * NULL: the route answers 503. */
	const char *keys_answer;
	struct keys_async_opts keys_async; /* the resolves' opens (keysproc.h) */
};

/*
 * GET /v1/keys: {"kid","public_key","opens":[kids]}, public_key being the
 * 32 raw X25519 bytes in base64url. The current key is read from pub (the
 * home's central.pub, which rotate-key renames into place right after
 * hpke.key), the kids central still opens from the names of retired (the
 * hpke_retired folder, KID.key files as rotate-key writes them): no
 * private key is read, so the network-facing process never holds one.
 * Made at start, like the keys process's ring, so a rotation is served
 * only once serve runs with it. *out: free().
 */
int routes_keys_answer(const char *pub, const char *retired, char **out, pos_err *e);

/* The ratelimit classes of the routes anyone may call. */
enum routes_rl_class { ROUTES_RL_REGISTER = 0, ROUTES_RL_DEVICE, ROUTES_RL_COUNT };

struct routes;

/* store and keys (this worker's channel to the keys) are borrowed; *out:
 * routes_free, after every request is finished (routes_waiting() == 0). */
int routes_new(struct event_base *base, struct store *store, struct keys_chan *keys,
	       const struct routes_shared *sh, struct routes **out, pos_err *e);
void routes_free(struct routes *r);
/* The analysts' reads (the analyst routes, histories, the offers report)
 * go to reads (borrowed, outliving r: a connection opened with
 * CCONF_STORE_READ) instead of the worker's store; NULL: the worker's. */
void routes_set_reads(struct routes *r, struct store *reads);
/* The httpd handler; arg is the struct routes. */
void routes_handle(struct httpd_req *req, void *arg);
/* The httpd's refusal hook (struct httpd_hooks; arg unused): the routes'
 * JSON error for a request refused before any route, counted in metrics
 * as a request to no route. */
void routes_refused(void *arg, int status, const char *detail, struct httpd_refusal_reply *out);
/* Requests whose writes are with the writer: the worker must not free its
 * httpd before this is 0. */
size_t routes_waiting(const struct routes *r);

#endif
