#ifndef POS_SERVICE_H
#define POS_SERVICE_H
/*
 * serve under systemd (Type=notify, WatchdogSec=, ExecReload=kill -HUP):
 * the notifications serve's main thread sends and what SIGHUP re-reads from
 * central.conf. Without NOTIFY_SOCKET the notifications do nothing.
 */
#include <stdbool.h>

#include "cconf.h"

struct keyring;
struct tls;

/* Sends state (READY=1, WATCHDOG=1, STOPPING=1, ...); a failure is logged
 * as a warning and serve goes on. */
void service_notify(const char *state);
/* Whether systemd asked this process for WATCHDOG=1 keep-alives. */
bool service_watchdog_on(void);
/* Re-reads conf_path and applies its log_level; a file that no longer
 * loads is logged and the running level stays. */
void service_reload_log_level(const char *conf_path);
/* SIGHUP: the log level (above), the analyst and admin token files
 * (tokens) and the server's certificate and key (tls), each from the
 * paths serve started with. Each part that fails is logged with why and
 * the one in use stays; the others still reload. crl.pem is tls_reread's.
 * Staff and vendor tokens live in the database and need no reload. */
void service_reload(const struct cconf *c, struct tls *tls, struct keyring *tokens);

#endif
