#ifndef POS_PKI_H
#define POS_PKI_H
/*
 * Central's small certificate authority, on OpenSSL's API only (no shelling
 * out to openssl(1)). Every key is EC P-256, every signature ECDSA-SHA256,
 * every serial 128 random bits. Keys and certificates made here are owned
 * by the caller: free with EVP_PKEY_free() and X509_free().
 *
 * Files: certificates are PEM, 0644; private keys PKCS#8 PEM, 0600, written
 * through a temp file, fsync and link(), so an existing file is never
 * replaced and a crash never leaves half a key under the final name.
 */
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

#define PKI_NAME_MAX 64
#define PKI_CA_DAYS 3650
#define PKI_SERVER_DAYS 730
#define PKI_CLIENT_DAYS 365

/* 1 when s matches [A-Za-z0-9._-]{1,64}: a store or terminal id. */
int pki_name_ok(const char *s);

/* A self-signed CA: CA:TRUE (critical), keyUsage keyCertSign, cRLSign. */
int pki_make_ca(const char *cn, int days, EVP_PKEY **key_out, X509 **cert_out, pos_err *e);
/* A server certificate signed by the CA, subject CN=cn, serverAuth, with a
 * subjectAltName of the NULL-terminated dns names and IP addresses (either
 * list may be NULL). */
int pki_issue_server(EVP_PKEY *ca_key, X509 *ca_cert, const char *cn,
		     const char *const *dns, const char *const *ips, int days,
		     EVP_PKEY **key_out, X509 **cert_out, pos_err *e);
/* A terminal's client certificate: subject OU=store, CN=terminal (both
 * checked with pki_name_ok), clientAuth. */
int pki_issue_client(EVP_PKEY *ca_key, X509 *ca_cert, const char *store, const char *terminal,
		     int days, EVP_PKEY **key_out, X509 **cert_out, pos_err *e);

/* Write PEM files; both refuse to replace an existing file. */
int pki_write_cert(const char *path, X509 *cert, pos_err *e);
int pki_write_key(const char *path, EVP_PKEY *key, pos_err *e);
/* Writes len bytes to a new file with exactly mode; refuses an existing path. */
int pki_write_file(const char *path, const void *data, size_t len, unsigned mode, pos_err *e);

/* Load PEM files. pki_load_key refuses a file group or others can access. */
int pki_load_cert(const char *path, X509 **out, pos_err *e);
int pki_load_key(const char *path, EVP_PKEY **out, pos_err *e);

/* The notAfter time of the certificate in path (for `doctor`). */
int pki_cert_not_after(const char *path, time_t *out, pos_err *e);

#endif
