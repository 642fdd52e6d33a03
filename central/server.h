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
#include <openssl/ssl.h>
#include <stdbool.h>

#include "cconf.h"
#include "err.h"
#include "keyring.h"
#include "keysproc.h"
#include "store.h"

#define SERVER_LISTEN_MAX 128
#define SERVER_MAX_WORKERS 256

/* Runs until SIGTERM/SIGINT. listen overrides cconf's when not NULL. Blocks
 * those signals in every thread and waits for them itself; call it from
 * main with no other thread running. tokens: the bearer tokens (no key);
 * kp: the keys process, with a channel for each of server_nworkers(c)
 * workers. When the keys process ends, serve stops and fails: the service
 * manager restarts the whole family. */
int server_run(const struct cconf *c, const char *listen, const struct keyring *tokens,
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

/* A store controller's certificate: OU = its store, this CN. It relays its
 * lanes' requests naming each lane in the SERVER_RELAY_HEADER header. */
#define SERVER_CONTROLLER_CN "store-controller"
#define SERVER_RELAY_HEADER "Pos-Terminal"

/* store = OU, terminal = CN of the connection's verified client
 * certificate, each [A-Za-z0-9._-]{1,64} and present once. POS_EPERM when
 * there is no verified certificate or a name does not qualify. */
int server_peer_identity(SSL *ssl, char store[STORE_ID_MAX + 1], char terminal[STORE_ID_MAX + 1]);

/* central's home holds ticket.key beside central.conf: the TLS session
 * ticket keys, each name 16 + AES-256 key 32 + HMAC-SHA256 key 32 random
 * bytes (mode 0600), so sessions resume across a restart. The file holds
 * the current key, then the previous one once serve has rotated it ([tls]
 * ticket_rotate_s); its mtime is when the current key began. setup makes
 * it with one key; serve makes it for a home that has none and refuses one
 * group/other can read. Creates path (never replaces one).
 *
 * central's home also holds crl.pem (pki.h): serve verifies client
 * certificates against it from the next handshake after it changes. */
#define SERVER_TICKET_KEY_LEN 80
int server_ticket_key_create(const char *path, pos_err *e);

#endif
