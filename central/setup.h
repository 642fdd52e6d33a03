#ifndef POS_SETUP_H
#define POS_SETUP_H
/*
 * The pos-central subcommands that make and maintain central's home and
 * its terminals' folders. argv[0] is the subcommand name. Each returns 0 on
 * success, 1 on failure (one line "pos-central NAME: ..." on stderr), 2 on
 * a usage error (the error and the usage line on stderr); `--help` prints
 * the usage on stdout and returns 0.
 */

/* pos-central setup DIR: a new home with CA, server certificate, HPKE key
 * pair, HMAC keys, tokens and central.conf. Refuses a non-empty DIR. */
int setup_main(int argc, char **argv);
/* pos-central terminal-cert DIR --store S --terminal T --out OUT: a client
 * certificate and everything an agent needs, terminal.conf included. */
int terminal_cert_main(int argc, char **argv);
/* pos-central store-cert DIR --store S --out OUT [--host H]...: a store
 * controller's certificate (OU=S, CN=store-controller; server for its
 * lanes, client to central; subjectAltName the hosts, localhost and
 * 127.0.0.1 by default), its key, ca.crt and a filled-in store.conf. */
int store_cert_main(int argc, char **argv);
/* pos-central terminal-revoke DIR --store S --terminal T [--cert FILE]:
 * adds every certificate the CA issued to that terminal (found in
 * DIR/issued; FILE for one issued before that folder existed) to
 * DIR/crl.pem. Revoking again changes nothing. 1 when the terminal has no
 * certificate there. */
int terminal_revoke_main(int argc, char **argv);
/* pos-central terminal list -c CONF [--format table|csv]: every
 * certificate the CA issued (the home's issued folder) with its store,
 * terminal, serial, expiry and state (valid, expired, revoked by crl.pem),
 * by store, terminal and expiry. */
int terminal_main(int argc, char **argv);
/* pos-central rotate-key -c CONF: a new HPKE key pair; the old private key
 * moves to the hpke_retired folder as <kid>.key; central.pub is rewritten. */
int rotate_key_main(int argc, char **argv);

#endif
