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
#include "err.h"

struct event_base;
struct http;
struct spool;
struct uplink;

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
void uplink_free(struct uplink *u);
/* A basket was spooled: send now unless backing off. */
void uplink_kick(struct uplink *u);
/* True while backing off after a failure. */
int uplink_offline(const struct uplink *u);

#endif
