#ifndef POS_TLS_H
#define POS_TLS_H
/*
 * central's TLS: the terminals' listener's context (TLS 1.3 only, client
 * certificates verified against the retailer's CA and its CRL, requested
 * but not demanded: analysts come with a bearer token), its session ticket
 * keys and session cache, the trust store the CRL reloads into, and who a
 * connection's peer is; also the public listener's context (its own
 * certificate, no client certificate).
 *
 * The peer is read once per connection, at the handshake's end, through
 * tls_peer_read (the httpd's peer hook); a request gets it with
 * httpd_peer. A CRL reload marks every peer read before it for one more
 * look (tls_peer_recheck): a connection opened before its certificate was
 * revoked stays open, but its requests are refused from the reload on.
 *
 * One struct tls per serve (or check), made and ticked on the main
 * thread; workers' handshakes use it under its locks.
 */
#include <openssl/ssl.h>

#include "cconf.h"
#include "err.h"

struct httpd_peer;
struct tls;

/* A store controller's certificate: OU = its store, this CN. It relays its
 * lanes' requests naming each lane in the TLS_RELAY_HEADER header. */
#define TLS_CONTROLLER_CN "store-controller"
#define TLS_RELAY_HEADER "Pos-Terminal"

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
#define TLS_TICKET_KEY_LEN 80
int tls_ticket_key_create(const char *path, pos_err *e);

/* TLS_CHECK: what serve would refuse (certificate, key, CA, CRL, an
 * existing ticket.key), writing nothing. TLS_SERVE: also makes a missing
 * ticket.key, rotates a key left from long ago and loads the sessions a
 * previous serve saved. */
enum tls_use { TLS_CHECK, TLS_SERVE };

/* *out: tls_free. */
int tls_open(const struct cconf *c, enum tls_use use, struct tls **out, pos_err *e);
/* The terminals' listener's context; t's, valid until tls_free. */
SSL_CTX *tls_ctx(struct tls *t);
/* The main thread, about once a second: reloads a changed crl.pem, rotates
 * the ticket key when its period is over, drops the sessions it sealed. */
void tls_tick(struct tls *t);
/* The next tls_tick reads crl.pem again even if it looks unchanged (SIGHUP). */
void tls_reread(struct tls *t);
/* SIGHUP: reads [tls] cert (with its chain) and key again; handshakes from
 * now on present them. A file that does not load, a key that does not
 * match or a certificate out of its dates fails and the one in use stays.
 * serial: the new certificate's serial, for the log. */
int tls_reload_cert(struct tls *t, const struct cconf *c, char *serial, size_t cap, pos_err *e);
/* Saves the resumable sessions for the next serve (after the workers). */
void tls_save(struct tls *t);
void tls_free(struct tls *t);

/* The public listener's context; *out: SSL_CTX_free. */
int tls_public_ctx(const struct cconf *c, SSL_CTX **out, pos_err *e);

/* The httpd's peer hook (struct httpd_hooks; arg unused): out->verified
 * when the client sent a certificate that verified, is not revoked, and
 * names store = OU and terminal = CN, each an id (ids.h) present once. */
void tls_peer_read(void *arg, SSL *ssl, struct httpd_peer *out);
/* The httpd's peer_recheck hook: after a CRL reload since p was read,
 * clears p when its certificate is revoked now. */
void tls_peer_recheck(void *arg, SSL *ssl, struct httpd_peer *p);

#endif
