#ifndef POS_CCONF_H
#define POS_CCONF_H
/*
 * central.conf, written by `pos-central setup` (relative paths are relative
 * to the file's folder):
 *
 *   [central]
 *   listen = 127.0.0.1:8443
 *   database = central.db
 *   auto_enrol = yes
 *   workers = 0              ; 0 = one per core
 *   log_level = info
 *   user = pos-central       ; serve's keys process runs as this user when
 *                            ; started as root (empty: stays root)
 *   [tls]
 *   ca = ca.crt              ; verifies terminal certificates
 *   cert = server.crt
 *   key = server.key
 *   [keys]
 *   hpke = hpke.key          ; current X25519 private key (PEM)
 *   hpke_retired = keys      ; folder of earlier *.key files, opened by kid
 *   k_index = k_index.key
 *   k_deident = k_deident.key
 *   [tokens]
 *   analyst = analyst.token
 *   admin = admin.token
 *   [limits]
 *   max_body = 1048576       ; bytes
 *   max_headers = 16384      ; bytes
 *   idle_timeout = 30        ; seconds a connection may sit idle or trickle
 *   max_connections = 4096
 *
 * Unknown sections or keys and bad values fail with file:line.
 */
#include <stdbool.h>
#include <stddef.h>
#include "err.h"

#define CCONF_PATH_MAX 1024

struct cconf {
	char path[CCONF_PATH_MAX]; /* the file itself */
	char dir[CCONF_PATH_MAX];  /* its folder: central's home */
	char listen[128];
	char database[CCONF_PATH_MAX];
	bool auto_enrol;
	long workers;
	char log_level[16];
	char user[64];
	char tls_ca[CCONF_PATH_MAX];
	char tls_cert[CCONF_PATH_MAX];
	char tls_key[CCONF_PATH_MAX];
	char hpke_key[CCONF_PATH_MAX];
	char hpke_retired[CCONF_PATH_MAX];
	char k_index[CCONF_PATH_MAX];
	char k_deident[CCONF_PATH_MAX];
	char analyst_token[CCONF_PATH_MAX];
	char admin_token[CCONF_PATH_MAX];
	long max_body;
	long max_headers;
	long idle_timeout;
	long max_connections;
};

int cconf_load(const char *path, struct cconf *out, pos_err *e);
/* Writes a central.conf with the defaults above for a new home (0600).
 * Refuses to overwrite. */
int cconf_write_default(const char *path, const char *listen, pos_err *e);

#endif
