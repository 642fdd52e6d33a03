#ifndef POS_SVC_H
#define POS_SVC_H
/*
 * A daemon under systemd (Type=notify, WatchdogSec=, ExecReload=kill -HUP),
 * on a libevent loop: READY=1 when started, WATCHDOG=1 from a timer at half
 * the interval systemd asks for (so a stuck loop gets the unit restarted),
 * SIGHUP runs the daemon's reload, STOPPING=1 when freed. Without systemd
 * the notifications are no-ops and SIGHUP still reloads.
 */
#include <event2/event.h>

#include "err.h"

struct svc;

/* Call once the daemon serves (listening, devices opened). reload(arg)
 * runs on the loop for each SIGHUP. *out: svc_free. */
int svc_start(struct event_base *base, void (*reload)(void *arg), void *arg, struct svc **out,
	      pos_err *e);
/* Sends STOPPING=1 and releases the events; NULL is fine. */
void svc_free(struct svc *s);

#endif
