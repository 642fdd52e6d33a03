#ifndef POS_AGENT_H
#define POS_AGENT_H
/*
 * pos-agent run: everything on one libevent loop.
 *
 *   serial devices -> frames -> classify (scanner) | msr_parse (card reader)
 *   control socket -> requests                       \
 *                                                      -> lane
 *   a TID: sealed at once (EncTID bound to store, terminal, txn), the clear
 *          text wiped, POST /v1/resolve sent with resolve_timeout_ms; its
 *          answer, if the TID is still the lane's, adds the household
 *   total: basket body -> spool commit -> reply and "spooled" event ->
 *          uplink (which deletes the row only after central's 2xx)
 *
 * Nothing here waits on the network: a total answers right after the spool
 * commit whatever central does. SIGTERM or SIGINT ends the loop between two
 * callbacks (so never inside a spool write) and agent_run returns 0.
 */
#include "aconf.h"
#include "err.h"

/* Runs until SIGTERM/SIGINT (returns 0) or a start failure (negative, e
 * says why). Logging must be initialised by the caller. */
int agent_run(const struct aconf *cfg, pos_err *e);

#endif
