#ifndef POS_SERVER_H
#define POS_SERVER_H
/*
 * pos-central's HTTPS server: httpd (our HTTP/1.1 over OpenSSL) on libevent,
 * TLS 1.3 only, client certificates verified against the retailer's CA
 * (requested, not required at the handshake: analysts come with a bearer
 * token; the terminal routes refuse a request without a verified one).
 * One worker thread per core, each with its own event_base, httpd,
 * SO_REUSEPORT listening socket and store connection; one ingest writer.
 * SIGTERM or SIGINT: stop accepting, finish the requests in flight and the
 * writer's queue, return 0.
 */
#include <stdbool.h>

#include "cconf.h"
#include "err.h"
#include "keyring.h"
#include "keysproc.h"
#include "store.h"

#define SERVER_LISTEN_MAX 128
#define SERVER_MAX_WORKERS CCONF_MAX_WORKERS

/* Runs until SIGTERM/SIGINT. listen overrides cconf's when not NULL. Blocks
 * those signals in every thread and waits for them itself; call it from
 * main with no other thread running. tokens: the bearer tokens (no key),
 * read again on SIGHUP;
 * kp: the keys process, with a channel for each of server_nworkers(c)
 * workers. When the keys process ends, serve stops and fails: the service
 * manager restarts the whole family. */
int server_run(const struct cconf *c, const char *listen, struct keyring *tokens,
	       struct keysproc *kp, pos_err *e);
/* How many workers serve runs: [central] workers, or one per core. */
long server_nworkers(const struct cconf *c);

/* What serve would refuse at start, without starting, listening or
 * writing anything: the listen address, the TLS certificate and key (and
 * that they match), the CA and CRL, ticket.key when present, the
 * database's place. */
int server_check(const struct cconf *c, pos_err *e);

/* Splits "HOST:PORT", "[v6]:PORT" or ":PORT" (all addresses). */
int server_parse_listen(const char *s, char host[SERVER_LISTEN_MAX], char port[8], pos_err *e);

#endif
