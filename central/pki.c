#include "pki.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "keys.h"
#include "wipe.h"

/* A PEM key or certificate is a few kilobytes; anything larger is not one. */
#define PKI_FILE_MAX (64 * 1024)
/* Certificates start a little in the past so a terminal whose clock runs a
 * few minutes slow still accepts a fresh one. */
#define PKI_BACKDATE_SECS 300

struct pki_ext {
	int nid;
	const char *value;
};

int pki_name_ok(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++) {
		char ch = s[n];
		if (n >= PKI_NAME_MAX)
			return 0;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return n > 0;
}

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
	san[0] = '\0';
	for (int list = 0; list < 2; list++) {
		const char *const *v = list == 0 ? dns : ips;
		for (size_t i = 0; v && v[i]; i++) {
			int w;
			if (!pki_san_token_ok(v[i]))
				return err_set(e, POS_EINVAL, "bad server name or address '%.64s'", v[i]);
			w = snprintf(san + off, sizeof san - off, "%s%s:%s", off ? "," : "",
				     list == 0 ? "DNS" : "IP", v[i]);
			if (w < 0 || (size_t)w >= sizeof san - off)
				return err_set(e, POS_ETOOBIG, "too many server names");
			off += (size_t)w;
		}
	}
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
	if (!pki_name_ok(store))
		return err_set(e, POS_EINVAL, "store id must match [A-Za-z0-9._-]{1,64}");
	if (!pki_name_ok(terminal))
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
static int pki_read(const char *path, int private, BIO **out, pos_err *e)
{
	unsigned char *buf = NULL;
	struct stat st;
	size_t len = 0;
	int fd, rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_set(e, errno == ENOENT ? POS_ENOTFOUND : POS_EIO, "%s: cannot open: %s",
			       path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = err_set(e, POS_EIO, "%s: not a regular file", path);
		goto out;
	}
	if (private && (st.st_mode & 077)) {
		rc = err_set(e, POS_EPERM, "%s: readable by group or others; run: chmod 600 %s", path,
			     path);
		goto out;
	}
	if (st.st_size > PKI_FILE_MAX) {
		rc = err_set(e, POS_ETOOBIG, "%s: larger than %d bytes", path, PKI_FILE_MAX);
		goto out;
	}
	buf = malloc(PKI_FILE_MAX + 1);
	if (!buf) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, PKI_FILE_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = err_set(e, POS_EIO, "%s: read failed: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > PKI_FILE_MAX) {
			rc = err_set(e, POS_ETOOBIG, "%s: larger than %d bytes", path, PKI_FILE_MAX);
			goto out;
		}
	}
	*out = private ? BIO_new(BIO_s_secmem()) : BIO_new(BIO_s_mem());
	if (!*out || BIO_write(*out, buf, (int)len) != (int)len) {
		BIO_free(*out);
		*out = NULL;
		rc = err_set(e, POS_ENOMEM, "out of memory");
	}
out:
	if (buf)
		wipe_free(buf, PKI_FILE_MAX + 1);
	close(fd);
	return rc;
}

int pki_load_cert(const char *path, X509 **out, pos_err *e)
{
	BIO *b = NULL;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "pki_load_cert: no output");
	*out = NULL;
	rc = pki_read(path, 0, &b, e);
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
	rc = pki_read(path, 1, &b, e);
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
