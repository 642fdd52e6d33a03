#ifndef POS_STORE_H
#define POS_STORE_H
/*
 * pos-store run: the store's controller, everything on one libevent loop.
 *
 *   lanes --HTTPS, client certificate OU = [store] id--> evhttp
 *     POST /v1/resolve, /v1/offers/check: relayed to central at once with
 *          the controller's own certificate and "Pos-Terminal: <lane>";
 *          central's answer goes back as it came
 *     POST /v1/baskets, /v1/baskets:batch: committed to tlog.db (fsync),
 *          then 201 (200 the same basket again, 409 the same txn with
 *          other content); the uplink forwards the log to central one lane
 *          per request and marks a basket sent only after central's 2xx
 *   GET /v1/health, GET /metrics: no certificate needed
 *
 * The controller opens nothing (it has no key) and keeps no TID. A tick
 * prunes sent baskets older than keep_days and picks up baskets that
 * `pos-store replay` marked for sending again. SIGTERM or SIGINT ends the
 * loop between two callbacks and store_run returns 0.
 */
#include "err.h"
#include "sconf.h"

/* Runs until SIGTERM/SIGINT (0) or a start failure (negative, e says why).
 * Logging must be initialised by the caller. */
int store_run(const struct sconf *cfg, pos_err *e);

#endif
