#ifndef POS_SDNOTIFY_H
#define POS_SDNOTIFY_H
/*
 * The service manager's notification protocol (sd_notify(3)), without
 * libsystemd: one datagram of "KEY=VALUE\n" lines to the AF_UNIX socket
 * named by NOTIFY_SOCKET (a path, or "@name" for the abstract namespace).
 * Without NOTIFY_SOCKET (a terminal, a test) every call is a no-op that
 * succeeds, so daemons call them unconditionally.
 */
#include <stdint.h>

#include "err.h"

/* Sends state ("READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=..."). Returns
 * 0 (also when there is no manager to tell), or POS_EINVAL for a malformed
 * NOTIFY_SOCKET, POS_EIO when the datagram could not be sent. */
int sdnotify_send(const char *state, pos_err *e);

/* The watchdog interval systemd asks for (WatchdogSec=, passed as
 * WATCHDOG_USEC and meant for WATCHDOG_PID when that is set), in
 * microseconds; 0 when none is asked of this process. Daemons send
 * WATCHDOG=1 at half of it. */
uint64_t sdnotify_watchdog_usec(void);

#endif
