#include "pki.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "file.h"
#include "ids.h"
#include "keys.h"
#include "wipe.h"

/* A PEM key or certificate is a few kilobytes; anything larger is not one. */
#define PKI_FILE_MAX (64 * 1024)
/* A CRL grows by about 60 bytes of PEM per revoked certificate: room for
 * some 60,000 of them. */
#define PKI_CRL_MAX (4 * 1024 * 1024)
/* Certificates start a little in the past so a terminal whose clock runs a
 * few minutes slow still accepts a fresh one. */
#define PKI_BACKDATE_SECS 300

struct pki_ext {
	int nid;
	const char *value;
};

/* Appends OpenSSL's most recent reason to a message; it names the failing
 * operation, never key material. */
static int pki_ossl_err(pos_err *e, int code, const char *what)
{
	char buf[160];
	unsigned long l = ERR_peek_last_error();

	if (l) {
		ERR_error_string_n(l, buf, sizeof buf);
		ERR_clear_error();
		return err_set(e, code, "%s: %s", what, buf);
	}
	return err_set(e, code, "%s", what);
}

static int pki_gen_key(EVP_PKEY **out, pos_err *e)
{
	*out = EVP_EC_gen("P-256");
	if (!*out)
		return pki_ossl_err(e, POS_ECRYPTO, "generating an EC P-256 key");
	return 0;
}

/* 128 random bits, top bit clear so the DER INTEGER stays positive and
 * 16 bytes long (RFC 5280 allows up to 20 octets). */
static int pki_set_serial(X509 *x, pos_err *e)
{
	unsigned char raw[16];
	BIGNUM *bn = NULL;
	int rc = 0;

	if (RAND_bytes(raw, sizeof raw) != 1) {
		rc = pki_ossl_err(e, POS_ECRYPTO, "random serial");
		goto out;
	}
	raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x40);
	bn = BN_bin2bn(raw, sizeof raw, NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		rc = pki_ossl_err(e, POS_ECRYPTO, "setting the serial number");
out:
	BN_free(bn);
	return rc;
}

static int pki_add_ext(X509 *x, X509 *issuer, int nid, const char *value, pos_err *e)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return pki_ossl_err(e, POS_ECRYPTO, "building a certificate extension");
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (!ok)
		return pki_ossl_err(e, POS_ECRYPTO, "adding a certificate extension");
	return 0;
}

/*
 * Builds and signs one certificate for key. issuer == NULL makes it
 * self-signed (then issuer_key is key). Subject key identifier goes first:
 * the authority key identifier of a self-signed certificate is read from it.
 */
static int pki_build(EVP_PKEY *key, const X509_NAME *subject, EVP_PKEY *issuer_key,
		     X509 *issuer, int days, const struct pki_ext *exts, size_t next,
		     X509 **out, pos_err *e)
{
	X509 *x = X509_new();
	int rc = 0;

	*out = NULL;
	if (!x)
		return err_set(e, POS_ENOMEM, "out of memory");
	if (days < 1 || days > 36500) {
		rc = err_set(e, POS_EINVAL, "validity of %d days is out of range", days);
		goto out;
	}
	if (!X509_set_version(x, 2) || !X509_set_subject_name(x, subject) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject) ||
	    !X509_set_pubkey(x, key) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -PKI_BACKDATE_SECS) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL)) {
		rc = pki_ossl_err(e, POS_ECRYPTO, "filling in the certificate");
		goto out;
	}
	rc = pki_set_serial(x, e);
	if (rc < 0)
		goto out;
	rc = pki_add_ext(x, issuer, NID_subject_key_identifier, "hash", e);
	if (rc < 0)
		goto out;
	rc = pki_add_ext(x, issuer, NID_authority_key_identifier, "keyid:always", e);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < next; i++) {
		rc = pki_add_ext(x, issuer, exts[i].nid, exts[i].value, e);
		if (rc < 0)
			goto out;
	}
	if (X509_sign(x, issuer_key, EVP_sha256()) <= 0) {
		rc = pki_ossl_err(e, POS_ECRYPTO, "signing the certificate");
		goto out;
	}
	*out = x;
	x = NULL;
out:
	X509_free(x);
	return rc;
}

static int pki_name_add(X509_NAME *n, const char *field, const char *value, pos_err *e)
{
	if (!X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8, (const unsigned char *)value, -1,
					-1, 0))
		return pki_ossl_err(e, POS_ECRYPTO, "building the subject name");
	return 0;
}

/* Issues one certificate for a fresh key; on success hands both out. */
static int pki_issue(EVP_PKEY *ca_key, X509 *ca_cert, const X509_NAME *subject, int days,
		     const struct pki_ext *exts, size_t next, EVP_PKEY **key_out,
		     X509 **cert_out, pos_err *e)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc;

	*key_out = NULL;
	*cert_out = NULL;
	rc = pki_gen_key(&key, e);
	if (rc < 0)
		goto out;
	rc = pki_build(key, subject, ca_key ? ca_key : key, ca_cert, days, exts, next, &cert, e);
	if (rc < 0)
		goto out;
	*key_out = key;
	*cert_out = cert;
	key = NULL;
out:
	EVP_PKEY_free(key);
	return rc;
}

int pki_make_ca(const char *cn, int days, EVP_PKEY **key_out, X509 **cert_out, pos_err *e)
{
	static const struct pki_ext exts[] = {
		{ NID_basic_constraints, "critical,CA:TRUE,pathlen:0" },
		{ NID_key_usage, "critical,keyCertSign,cRLSign" },
	};
	X509_NAME *n = X509_NAME_new();
	int rc;

	if (!key_out || !cert_out)
		return err_set(e, POS_EINVAL, "pki_make_ca: no output");
	*key_out = NULL;
	*cert_out = NULL;
	if (!n)
		return err_set(e, POS_ENOMEM, "out of memory");
	rc = pki_name_add(n, "CN", cn && cn[0] ? cn : "POS Central CA", e);
	if (rc == 0)
		rc = pki_issue(NULL, NULL, n, days, exts, sizeof exts / sizeof exts[0], key_out,
			       cert_out, e);
	X509_NAME_free(n);
	return rc;
}

/* A SAN value is parsed as a comma list by OpenSSL: allow only characters
 * that cannot split or extend it. */
static int pki_san_token_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 253)
		return 0;
	for (; *s; s++) {
		char ch = *s;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '-' || ch == ':' || ch == '*'))
			return 0;
	}
	return 1;
}

/* "DNS:a,IP:b,..." for a subjectAltName; *off: its length. */
static int pki_san_list(const char *const *dns, const char *const *ips, char *san, size_t cap,
			size_t *off, pos_err *e)
{
	*off = 0;
	san[0] = '\0';
	for (int list = 0; list < 2; list++) {
		const char *const *v = list == 0 ? dns : ips;
		for (size_t i = 0; v && v[i]; i++) {
			int w;
			if (!pki_san_token_ok(v[i]))
				return err_set(e, POS_EINVAL, "bad server name or address '%.64s'", v[i]);
			w = snprintf(san + *off, cap - *off, "%s%s:%s", *off ? "," : "",
				     list == 0 ? "DNS" : "IP", v[i]);
			if (w < 0 || (size_t)w >= cap - *off)
				return err_set(e, POS_ETOOBIG, "too many server names");
			*off += (size_t)w;
		}
	}
	return 0;
}

int pki_host_kind(const char *s)
{
	unsigned char addr[16];
	size_t n, label = 0;
	int digits_only = 1;

	if (!s || !*s)
		return PKI_HOST_BAD;
	if (inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1)
		return PKI_HOST_IP;
	n = strlen(s);
	if (n > 253)
		return PKI_HOST_BAD;
	for (size_t i = 0; i <= n; i++) {
		char ch = s[i];

		if (ch == '.' || ch == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return PKI_HOST_BAD;
			if (ch == '\0')
				break;
			label = 0;
			digits_only = 1;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-'))
			return PKI_HOST_BAD;
		if (ch == '-' && label == 0)
			return PKI_HOST_BAD;
		if (ch < '0' || ch > '9')
			digits_only = 0;
		label++;
	}
	/* "10.0.0.256" is a mistyped address, not a name. */
	return digits_only ? PKI_HOST_BAD : PKI_HOST_DNS;
}

int pki_host_loopback(const char *s)
{
	return s && (strcasecmp(s, "localhost") == 0 || strncmp(s, "127.", 4) == 0 ||
		     strcmp(s, "::1") == 0);
}

int pki_server_name(X509 *cert, char *out, size_t cap, pos_err *e)
{
	X509_NAME *name = cert ? X509_get_subject_name(cert) : NULL;
	int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
	const ASN1_STRING *s;
	int n, kind, ok;

	if (i < 0)
		return err_set(e, POS_ENOTFOUND, "the certificate has no common name");
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	n = s ? ASN1_STRING_length(s) : -1;
	if (n <= 0 || (size_t)n >= cap || memchr(ASN1_STRING_get0_data(s), '\0', (size_t)n))
		return err_set(e, POS_ENOTFOUND, "the certificate's common name is not a host");
	memcpy(out, ASN1_STRING_get0_data(s), (size_t)n);
	out[n] = '\0';
	kind = pki_host_kind(out);
	ok = kind == PKI_HOST_IP ? X509_check_ip_asc(cert, out, 0) == 1
	     : kind == PKI_HOST_DNS
		     ? X509_check_host(cert, out, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1
		     : 0;
	ERR_clear_error();
	if (!ok) {
		out[0] = '\0';
		return err_set(e, POS_ENOTFOUND, "the certificate's common name is not one of its names");
	}
	return 0;
}

int pki_issue_controller(EVP_PKEY *ca_key, X509 *ca_cert, const char *store,
			 const char *const *dns, const char *const *ips, int days,
			 EVP_PKEY **key_out, X509 **cert_out, pos_err *e)
{
	char san[1024];
	size_t off = 0;
	struct pki_ext exts[4] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature,keyAgreement" },
		{ NID_ext_key_usage, "serverAuth,clientAuth" },
		{ NID_subject_alt_name, san },
	};
	X509_NAME *n = NULL;
	int rc;

	if (!key_out || !cert_out)
		return err_set(e, POS_EINVAL, "pki_issue_controller: no output");
	*key_out = NULL;
	*cert_out = NULL;
	if (!ca_key || !ca_cert)
		return err_set(e, POS_EINVAL, "pki_issue_controller: CA required");
	if (!ids_valid(store))
		return err_set(e, POS_EINVAL, "store id must match [A-Za-z0-9._-]{1,64}");
	if ((rc = pki_san_list(dns, ips, san, sizeof san, &off, e)) < 0)
		return rc;
	if (off == 0)
		return err_set(e, POS_EINVAL, "a store controller needs a host name or address");
	n = X509_NAME_new();
	if (!n)
		return err_set(e, POS_ENOMEM, "out of memory");
	rc = pki_name_add(n, "OU", store, e);
	if (rc == 0)
		rc = pki_name_add(n, "CN", PKI_CONTROLLER_CN, e);
	if (rc == 0)
		rc = pki_issue(ca_key, ca_cert, n, days, exts, 4, key_out, cert_out, e);
	X509_NAME_free(n);
	return rc;
}

int pki_issue_server(EVP_PKEY *ca_key, X509 *ca_cert, const char *cn,
		     const char *const *dns, const char *const *ips, int days,
		     EVP_PKEY **key_out, X509 **cert_out, pos_err *e)
{
	char san[1024];
	size_t off = 0;
	struct pki_ext exts[4] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature,keyAgreement" },
		{ NID_ext_key_usage, "serverAuth" },
		{ NID_subject_alt_name, san },
	};
	size_t next = 3;
	X509_NAME *n = NULL;
	int rc;

	if (!key_out || !cert_out)
		return err_set(e, POS_EINVAL, "pki_issue_server: no output");
	*key_out = NULL;
	*cert_out = NULL;
	if (!ca_key || !ca_cert || !cn || !*cn)
		return err_set(e, POS_EINVAL, "pki_issue_server: CA and name required");
	if ((rc = pki_san_list(dns, ips, san, sizeof san, &off, e)) < 0)
		return rc;
	if (off)
		next = 4;
	n = X509_NAME_new();
	if (!n)
		return err_set(e, POS_ENOMEM, "out of memory");
	rc = pki_name_add(n, "CN", cn, e);
	if (rc == 0)
		rc = pki_issue(ca_key, ca_cert, n, days, exts, next, key_out, cert_out, e);
	X509_NAME_free(n);
	return rc;
}

int pki_issue_client(EVP_PKEY *ca_key, X509 *ca_cert, const char *store, const char *terminal,
		     int days, EVP_PKEY **key_out, X509 **cert_out, pos_err *e)
{
	static const struct pki_ext exts[] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature" },
		{ NID_ext_key_usage, "clientAuth" },
	};
	X509_NAME *n = NULL;
	int rc;

	if (!key_out || !cert_out)
		return err_set(e, POS_EINVAL, "pki_issue_client: no output");
	*key_out = NULL;
	*cert_out = NULL;
	if (!ca_key || !ca_cert)
		return err_set(e, POS_EINVAL, "pki_issue_client: CA required");
	if (!ids_valid(store))
		return err_set(e, POS_EINVAL, "store id must match [A-Za-z0-9._-]{1,64}");
	if (!ids_valid(terminal))
		return err_set(e, POS_EINVAL, "terminal id must match [A-Za-z0-9._-]{1,64}");
	n = X509_NAME_new();
	if (!n)
		return err_set(e, POS_ENOMEM, "out of memory");
	rc = pki_name_add(n, "OU", store, e);
	if (rc == 0)
		rc = pki_name_add(n, "CN", terminal, e);
	if (rc == 0)
		rc = pki_issue(ca_key, ca_cert, n, days, exts, sizeof exts / sizeof exts[0], key_out,
			       cert_out, e);
	X509_NAME_free(n);
	return rc;
}

int pki_write_file(const char *path, const void *data, size_t len, unsigned mode, pos_err *e)
{
	/* The same atomic, never-replacing write as every key file. */
	return keys_write_file(path, data, len, mode, 0, e);
}

int pki_write_cert(const char *path, X509 *cert, pos_err *e)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;
	int rc;

	if (!b)
		return err_set(e, POS_ENOMEM, "out of memory");
	if (!cert || !PEM_write_bio_X509(b, cert)) {
		rc = pki_ossl_err(e, POS_ECRYPTO, "encoding the certificate");
		goto out;
	}
	len = BIO_get_mem_data(b, &data);
	rc = pki_write_file(path, data, (size_t)len, 0644, e);
out:
	BIO_free(b);
	return rc;
}

int pki_write_key(const char *path, EVP_PKEY *key, pos_err *e)
{
	/* Secure-heap memory BIO: wiped when freed. */
	BIO *b = BIO_new(BIO_s_secmem());
	char *data = NULL;
	long len;
	int rc;

	if (!b)
		return err_set(e, POS_ENOMEM, "out of memory");
	if (!key || !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)) {
		rc = pki_ossl_err(e, POS_ECRYPTO, "encoding the private key");
		goto out;
	}
	len = BIO_get_mem_data(b, &data);
	rc = pki_write_file(path, data, (size_t)len, 0600, e);
	wipe(data, (size_t)len);
out:
	BIO_free(b);
	return rc;
}

/* Reads a whole small file into a BIO; private files are refused when
 * group or others have any access. */
static int pki_read(const char *path, int private, size_t max, BIO **out, pos_err *e)
{
	unsigned char *buf = malloc(max);
	size_t len = 0;
	int rc;

	*out = NULL;
	if (!buf)
		return err_set(e, POS_ENOMEM, "out of memory");
	rc = file_read(path, private ? FILE_PRIVATE : 0, buf, max, &len, NULL, e);
	if (rc == 0) {
		*out = private ? BIO_new(BIO_s_secmem()) : BIO_new(BIO_s_mem());
		if (!*out || BIO_write(*out, buf, (int)len) != (int)len) {
			BIO_free(*out);
			*out = NULL;
			rc = err_set(e, POS_ENOMEM, "out of memory");
		}
	}
	wipe_free(buf, max);
	return rc;
}

int pki_load_cert(const char *path, X509 **out, pos_err *e)
{
	BIO *b = NULL;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "pki_load_cert: no output");
	*out = NULL;
	rc = pki_read(path, 0, PKI_FILE_MAX, &b, e);
	if (rc < 0)
		return rc;
	*out = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!*out) {
		ERR_clear_error();
		return err_set(e, POS_EINVAL, "%s: not a PEM certificate", path);
	}
	return 0;
}

int pki_load_key(const char *path, EVP_PKEY **out, pos_err *e)
{
	BIO *b = NULL;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "pki_load_key: no output");
	*out = NULL;
	rc = pki_read(path, 1, PKI_FILE_MAX, &b, e);
	if (rc < 0)
		return rc;
	*out = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!*out) {
		ERR_clear_error();
		return err_set(e, POS_EINVAL, "%s: not a PEM private key", path);
	}
	return 0;
}

int pki_cert_not_after(const char *path, time_t *out, pos_err *e)
{
	X509 *x = NULL;
	struct tm tm;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "pki_cert_not_after: no output");
	rc = pki_load_cert(path, &x, e);
	if (rc < 0)
		return rc;
	memset(&tm, 0, sizeof tm);
	if (!ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm)) {
		rc = err_set(e, POS_EINVAL, "%s: unreadable notAfter time", path);
		goto out;
	}
	*out = timegm(&tm);
out:
	X509_free(x);
	return rc;
}

int pki_serial_hex(X509 *cert, char out[PKI_SERIAL_HEX], pos_err *e)
{
	BIGNUM *bn = cert ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL) : NULL;
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	int rc = 0;

	out[0] = '\0';
	if (!hex)
		rc = pki_ossl_err(e, POS_ECRYPTO, "reading the serial number");
	else if (strlen(hex) >= PKI_SERIAL_HEX)
		rc = err_set(e, POS_EINVAL, "serial number longer than 20 octets");
	else
		memcpy(out, hex, strlen(hex) + 1);
	OPENSSL_free(hex);
	BN_free(bn);
	return rc;
}

int pki_issued_by(X509 *cert, X509 *ca_cert)
{
	EVP_PKEY *pk = ca_cert ? X509_get0_pubkey(ca_cert) : NULL;
	int ok;

	if (!cert || !pk ||
	    X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca_cert)) != 0)
		return 0;
	ok = X509_verify(cert, pk) == 1;
	ERR_clear_error();
	return ok;
}

/* 1 when name holds exactly one entry of nid and it equals want. */
static int pki_name_is(X509_NAME *name, int nid, const char *want)
{
	int i = X509_NAME_get_index_by_NID(name, nid, -1);
	const ASN1_STRING *s;
	size_t n = strlen(want);

	if (i < 0 || X509_NAME_get_index_by_NID(name, nid, i) >= 0)
		return 0;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	return s && (size_t)ASN1_STRING_length(s) == n &&
	       memcmp(ASN1_STRING_get0_data(s), want, n) == 0;
}

int pki_is_terminal(X509 *cert, const char *store, const char *terminal)
{
	X509_NAME *name = cert ? X509_get_subject_name(cert) : NULL;

	return name && store && terminal && X509_NAME_entry_count(name) == 2 &&
	       pki_name_is(name, NID_organizationalUnitName, store) &&
	       pki_name_is(name, NID_commonName, terminal);
}

int pki_crl_load(const char *path, X509 *ca_cert, X509_CRL **out, pos_err *e)
{
	EVP_PKEY *pk = ca_cert ? X509_get0_pubkey(ca_cert) : NULL;
	X509_CRL *crl = NULL;
	BIO *b = NULL;
	int rc;

	if (!out || !pk)
		return err_set(e, POS_EINVAL, "pki_crl_load: no CA or output");
	*out = NULL;
	if ((rc = pki_read(path, 0, PKI_CRL_MAX, &b, e)) < 0)
		return rc;
	crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!crl) {
		ERR_clear_error();
		return err_set(e, POS_EINVAL, "%s: not a PEM certificate revocation list", path);
	}
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca_cert)) != 0 ||
	    X509_CRL_verify(crl, pk) != 1) {
		ERR_clear_error();
		X509_CRL_free(crl);
		return err_set(e, POS_ECRYPTO, "%s: not signed by central's CA", path);
	}
	*out = crl;
	return 0;
}

int pki_crl_revoked(X509_CRL *crl, X509 *cert)
{
	X509_REVOKED *r = NULL;

	if (!crl || !cert)
		return 0;
	return X509_CRL_get0_by_serial(crl, &r, X509_get0_serialNumber(cert)) == 1;
}

/* The next crlNumber: prev's plus one, or 1. */
static int pki_crl_number(X509_CRL *prev, X509_CRL *crl, pos_err *e)
{
	ASN1_INTEGER *was = prev ? X509_CRL_get_ext_d2i(prev, NID_crl_number, NULL, NULL) : NULL;
	BIGNUM *bn = was ? ASN1_INTEGER_to_BN(was, NULL) : BN_new();
	ASN1_INTEGER *num = NULL;
	int rc = 0;

	if (!bn || !BN_add_word(bn, 1) || !(num = BN_to_ASN1_INTEGER(bn, NULL)) ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1)
		rc = pki_ossl_err(e, POS_ECRYPTO, "setting the CRL number");
	ASN1_INTEGER_free(was);
	ASN1_INTEGER_free(num);
	BN_free(bn);
	return rc;
}

int pki_crl_make(EVP_PKEY *ca_key, X509 *ca_cert, X509_CRL *prev, X509 *const *certs, size_t n,
		 X509_CRL **out, size_t *added, pos_err *e)
{
	const STACK_OF(X509_REVOKED) *old = prev ? X509_CRL_get_REVOKED(prev) : NULL;
	X509_CRL *crl = NULL;
	ASN1_TIME *now = NULL;
	X509_EXTENSION *akid = NULL;
	X509V3_CTX v3;
	size_t fresh = 0;
	int rc = 0;

	if (!out || !ca_key || !ca_cert || (n && !certs))
		return err_set(e, POS_EINVAL, "pki_crl_make: CA and output required");
	*out = NULL;
	if (!(crl = X509_CRL_new()) || !(now = ASN1_TIME_set(NULL, time(NULL)))) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) ||
	    !X509_CRL_set1_lastUpdate(crl, now) ||
	    !X509_CRL_set1_nextUpdate(crl, X509_get0_notAfter(ca_cert))) {
		rc = pki_ossl_err(e, POS_ECRYPTO, "filling in the CRL");
		goto out;
	}
	for (int i = 0; i < sk_X509_REVOKED_num(old); i++) {
		X509_REVOKED *r = X509_REVOKED_dup(sk_X509_REVOKED_value(old, i));

		if (!r || !X509_CRL_add0_revoked(crl, r)) {
			X509_REVOKED_free(r);
			rc = err_set(e, POS_ENOMEM, "out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		X509_REVOKED *r;

		if (pki_crl_revoked(crl, certs[i]))
			continue;
		r = X509_REVOKED_new();
		if (!r || !X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(certs[i])) ||
		    !X509_REVOKED_set_revocationDate(r, now) || !X509_CRL_add0_revoked(crl, r)) {
			X509_REVOKED_free(r);
			rc = err_set(e, POS_ENOMEM, "out of memory");
			goto out;
		}
		fresh++;
	}
	if ((rc = pki_crl_number(prev, crl, e)) < 0)
		goto out;
	X509V3_set_ctx(&v3, ca_cert, NULL, NULL, crl, 0);
	akid = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
	if (!akid || !X509_CRL_add_ext(crl, akid, -1)) {
		rc = pki_ossl_err(e, POS_ECRYPTO, "adding the CRL's authority key identifier");
		goto out;
	}
	if (!X509_CRL_sort(crl) || X509_CRL_sign(crl, ca_key, EVP_sha256()) <= 0) {
		rc = pki_ossl_err(e, POS_ECRYPTO, "signing the CRL");
		goto out;
	}
	*out = crl;
	crl = NULL;
	if (added)
		*added = fresh;
out:
	X509_EXTENSION_free(akid);
	ASN1_TIME_free(now);
	X509_CRL_free(crl);
	return rc;
}

int pki_write_crl(const char *path, X509_CRL *crl, pos_err *e)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;
	int rc;

	if (!b)
		return err_set(e, POS_ENOMEM, "out of memory");
	if (!crl || !PEM_write_bio_X509_CRL(b, crl)) {
		rc = pki_ossl_err(e, POS_ECRYPTO, "encoding the CRL");
		goto out;
	}
	len = BIO_get_mem_data(b, &data);
	rc = keys_write_file(path, data, (size_t)len, 0644, 1, e);
out:
	BIO_free(b);
	return rc;
}
