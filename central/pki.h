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

#define PKI_CA_DAYS 3650
#define PKI_SERVER_DAYS 730
#define PKI_CLIENT_DAYS 365

/* A self-signed CA: CA:TRUE (critical), keyUsage keyCertSign, cRLSign. */
int pki_make_ca(const char *cn, int days, EVP_PKEY **key_out, X509 **cert_out, pos_err *e);
/* A server certificate signed by the CA, subject CN=cn, serverAuth, with a
 * subjectAltName of the NULL-terminated dns names and IP addresses (either
 * list may be NULL). */
int pki_issue_server(EVP_PKEY *ca_key, X509 *ca_cert, const char *cn,
		     const char *const *dns, const char *const *ips, int days,
		     EVP_PKEY **key_out, X509 **cert_out, pos_err *e);
/* A terminal's client certificate: subject OU=store, CN=terminal (both
 * checked with ids_valid), clientAuth. */
int pki_issue_client(EVP_PKEY *ca_key, X509 *ca_cert, const char *store, const char *terminal,
		     int days, EVP_PKEY **key_out, X509 **cert_out, pos_err *e);

/* A store controller's certificate: subject OU=store, CN=store-controller,
 * serverAuth (its lanes connect to it) and clientAuth (it connects to
 * central), a subjectAltName of the dns names and addresses (at least one). */
#define PKI_CONTROLLER_CN "store-controller"
int pki_issue_controller(EVP_PKEY *ca_key, X509 *ca_cert, const char *store,
			 const char *const *dns, const char *const *ips, int days,
			 EVP_PKEY **key_out, X509 **cert_out, pos_err *e);

/* What a server name given on the command line is: an IP address
 * (IPv4 or IPv6), a DNS name (labels of letters, digits and '-', not
 * starting or ending with '-', at most 63 characters each and 253 in all,
 * the last not all digits), or neither (0). */
enum { PKI_HOST_BAD = 0, PKI_HOST_DNS, PKI_HOST_IP };
int pki_host_kind(const char *s);
/* 1 when s is a loopback name or address (localhost, 127.0.0.0/8, ::1). */
int pki_host_loopback(const char *s);
/* The server certificate's subject CN when its subjectAltName covers it
 * (a DNS name or an IP address): the name clients are meant to use. 0, or
 * POS_ENOTFOUND when the CN is missing or not one of its names. */
int pki_server_name(X509 *cert, char *out, size_t cap, pos_err *e);

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

/*
 * Revocation: a CRL (v2) signed by the CA, listing serial numbers. Its
 * nextUpdate is the CA's own notAfter: central is the only party that
 * reads it, and it replaces the file whenever something is revoked.
 */
/* In central's home: the CRL serve reads, and the index of every terminal
 * certificate issued (one PEM per certificate, named by its serial). */
#define PKI_CRL_FILE "crl.pem"
#define PKI_ISSUED_DIR "issued"
#define PKI_SERIAL_HEX 48 /* hex of a serial (at most 20 octets) and its NUL */

/* The certificate's serial number in upper-case hex. */
int pki_serial_hex(X509 *cert, char out[PKI_SERIAL_HEX], pos_err *e);
/* 1 when cert was issued by ca_cert (issuer name and signature). */
int pki_issued_by(X509 *cert, X509 *ca_cert);
/* 1 when the certificate's subject is exactly OU=store, CN=terminal. */
int pki_is_terminal(X509 *cert, const char *store, const char *terminal);
/* Loads a PEM CRL and checks that ca_cert issued and signed it.
 * POS_ENOTFOUND when path does not exist. *out: X509_CRL_free(). */
int pki_crl_load(const char *path, X509 *ca_cert, X509_CRL **out, pos_err *e);
/* A new CRL signed by the CA: every entry of prev (NULL: none) and each of
 * the n certificates not listed yet, revoked now. Its crlNumber is prev's
 * plus one. *added (may be NULL) counts the new entries. *out:
 * X509_CRL_free(). */
int pki_crl_make(EVP_PKEY *ca_key, X509 *ca_cert, X509_CRL *prev, X509 *const *certs, size_t n,
		 X509_CRL **out, size_t *added, pos_err *e);
/* 1 when crl lists cert's serial, else 0 (crl NULL: 0). */
int pki_crl_revoked(X509_CRL *crl, X509 *cert);
/* Writes crl as PEM (0644), replacing path atomically. */
int pki_write_crl(const char *path, X509_CRL *crl, pos_err *e);

#endif
