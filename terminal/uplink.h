#ifndef POS_UPLINK_H
#define POS_UPLINK_H
/*
 * Drains the spool to central: POST /v1/baskets for one basket,
 * /v1/baskets:batch when several wait. A basket leaves the spool only on
 * central's acknowledgement (201/200 per basket); a 4xx that central will
 * never accept is reported and kept aside (spool row stays, counted), a
 * transport error or 5xx backs off exponentially with jitter, capped. Timer
 * driven on the loop: idle when the spool is empty.
 */
#include <stddef.h>
#include "err.h"

struct event_base;
struct http;
struct spool;
struct spool_row;
struct uplink;

#define UPLINK_AS_MAX 64

/*
 * Where the baskets come from: the agent's spool, or a store controller's
 * transaction log. Each call returns 0 or a negative code.
 *   peek:      up to max oldest baskets that go in one request, rows freed
 *              with spool_rows_free; as: the lane they are sent for (a
 *              controller's request holds one lane's baskets, named in
 *              Pos-Terminal), "" for the sender's own identity
 *   acked:     central took txn (how: "created" or "duplicate")
 *   refused:   central refused txn for good (reason: its error code)
 *   attempted: one more failed attempt at txn (a counter)
 */
struct uplink_queue {
	void *q;
	int (*peek)(void *q, size_t max, struct spool_row **rows, size_t *n,
		    char as[UPLINK_AS_MAX + 1], pos_err *e);
	int (*acked)(void *q, const char *txn, const char *how, pos_err *e);
	int (*refused)(void *q, const char *txn, const char *reason, pos_err *e);
	int (*attempted)(void *q, const char *txn, pos_err *e);
};

enum uplink_event {
	UPLINK_UPLOADED = 1, /* txn acknowledged by central; detail "created"/"duplicate" */
	UPLINK_REJECTED,     /* central refused txn for good; detail: its error code */
	UPLINK_OFFLINE,      /* central unreachable; detail: why; txn NULL */
	UPLINK_ONLINE,       /* central answered again; txn NULL */
};

typedef void (*uplink_event_fn)(enum uplink_event ev, const char *txn, const char *detail,
				void *arg);

int uplink_new(struct event_base *base, struct http *h, struct spool *s, uplink_event_fn fn,
	       void *arg, struct uplink **out, pos_err *e);
/* The same over any queue (copied). */
int uplink_new_queue(struct event_base *base, struct http *h, const struct uplink_queue *q,
		     uplink_event_fn fn, void *arg, struct uplink **out, pos_err *e);
void uplink_free(struct uplink *u);
/*
 * A refusal a fresher central key may cure (ckey_refusal: bad_tid,
 * bad_kid): the first one does not set the basket aside; the uplink stops
 * sending, calls fn (which refreshes the key) and waits for
 * uplink_rekeyed. Only the same refusal after that sets baskets aside,
 * until a basket is accepted again. Without a hook (the store controller)
 * refusals set baskets aside at once.
 */
void uplink_set_rekey(struct uplink *u, void (*fn)(void *arg), void *arg);
/* The refresh fn started has ended (whatever its outcome): send again. */
void uplink_rekeyed(struct uplink *u);
/* A basket was spooled: send now unless backing off. */
void uplink_kick(struct uplink *u);
/* True while backing off after a failure. */
int uplink_offline(const struct uplink *u);

#endif
