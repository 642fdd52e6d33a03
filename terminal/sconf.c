#include "sconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "ctab.h"
#include "ids.h"
#include "keys.h"

#define SCONF_CONTROLLER_CN "store-controller"

void sconf_free(struct sconf *c)
{
	free(c);
}

/* HOST:PORT, [v6]:PORT or :PORT; the port 1..65535. Splits the address
 * into host and port. */
static int sconf_listen(struct cfg *cf, const char *sec, const char *key, void *out, pos_err *e)
{
	struct sconf *c = out;
	const char *v = c->listen, *colon;
	char *end;
	long port;
	size_t hl;

	colon = strrchr(v, ':');
	if (!colon)
		goto bad;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 1 || port > 65535)
		goto bad;
	hl = (size_t)(colon - v);
	if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') {
		v++;
		hl -= 2;
	}
	if (hl >= sizeof c->host || memchr(v, ' ', hl))
		goto bad;
	memcpy(c->host, v, hl);
	c->host[hl] = '\0';
	snprintf(c->port, sizeof c->port, "%ld", port);
	return 0;
bad:
	return err_set(e, POS_EINVAL, "%s:%d: '%s' in [%s] must be HOST:PORT", cf->name,
		       cfg_line(cf, sec, key), key, sec);
}

#define SC(f) CTAB_FIELD(struct sconf, f)
#define SCONF_STR(x) #x
#define SCONF_NUM(x) SCONF_STR(x)

/* Every key of store.conf. */
static const struct ctab_key sconf_keys[] = {
	{ "store", "id", CT_ID, NULL, 0, 0, SC(store), NULL, NULL },
	{ "listen", "address", CT_STR, "0.0.0.0:8444", 0, 0, SC(listen), NULL, sconf_listen },
	{ "tls", "ca", CT_PATH, NULL, 0, 0, SC(tls_ca), NULL, NULL },
	{ "tls", "cert", CT_PATH, NULL, 0, 0, SC(tls_cert), NULL, NULL },
	{ "tls", "key", CT_PATH, NULL, 0, 0, SC(tls_key), NULL, NULL },
	{ "central", "url", CT_URLS, NULL, 0, 0, SC(url), NULL, NULL },
	{ "central", "ca", CT_PATH, NULL, 0, 0, SC(ca), NULL, NULL },
	{ "central", "cert", CT_PATH, NULL, 0, 0, SC(cert), NULL, NULL },
	{ "central", "key", CT_PATH, NULL, 0, 0, SC(key), NULL, NULL },
	{ "tlog", "path", CT_PATH, "tlog.db", 0, 0, SC(tlog), NULL, NULL },
	{ "tlog", "keep_days", CT_INT, SCONF_NUM(SCONF_KEEP_DEFAULT), 1, SCONF_KEEP_MAX,
	  SC(keep_days), NULL, NULL },
};

struct sconf_load_arg {
	struct sconf **out;
};

static int sconf_from_cfg(struct cfg *cf, const char *file, void *arg, pos_err *e)
{
	struct sconf **out = ((struct sconf_load_arg *)arg)->out;
	struct sconf *c = calloc(1, sizeof *c);
	int rc;

	if (!c)
		return err_set(e, POS_ENOMEM, "%s: out of memory", file);
	snprintf(c->file, sizeof c->file, "%s", file);
	if ((rc = ctab_take(cf, NULL, sconf_keys, sizeof sconf_keys / sizeof sconf_keys[0], c, e)) <
		    0 ||
	    (rc = cfg_check_unused(cf, e)) < 0) {
		sconf_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int sconf_load(const char *path, struct sconf **out, pos_err *e)
{
	struct sconf_load_arg a = { out };

	if (!out)
		return err_set(e, POS_EINVAL, "config: no output");
	*out = NULL;
	if (!path)
		return err_set(e, POS_EINVAL, "config: no file given");
	return ctab_load(path, NULL, 0, NULL, NULL, sconf_from_cfg, &a, e);
}

int sconf_load_string(const char *text, size_t len, const char *name, const char *dir,
		      struct sconf **out, pos_err *e)
{
	struct sconf_load_arg a = { out };

	if (!out)
		return err_set(e, POS_EINVAL, "config: no output");
	*out = NULL;
	return ctab_load(NULL, text, len, name, dir, sconf_from_cfg, &a, e);
}

static int sconf_load_x509(const char *what, const char *path, X509 **out, pos_err *e)
{
	FILE *f = fopen(path, "r");

	*out = NULL;
	if (!f)
		return err_set(e, POS_EIO, "%s: %s: %s", what, path, strerror(errno));
	*out = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!*out)
		return err_set(e, POS_EINVAL, "%s: %s: not a PEM certificate", what, path);
	return 0;
}

/* cert signed by ca (the lanes and central check the same). */
static int sconf_issued(const char *what, X509 *cert, X509 *ca, pos_err *e)
{
	EVP_PKEY *pk = X509_get0_pubkey(ca);

	if (!pk || X509_check_issued(ca, cert) != X509_V_OK || X509_verify(cert, pk) != 1)
		return err_set(e, POS_EINVAL, "%s: the certificate was not issued by the CA", what);
	return 0;
}

static void sconf_entry(X509 *cert, int nid, char *out, size_t cap)
{
	out[0] = '\0';
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, out, (int)cap) < 0)
		out[0] = '\0';
}

int sconf_check_files(const struct sconf *c, pos_err *e)
{
	X509 *ca = NULL, *cert = NULL, *tca = NULL, *tcert = NULL;
	char ou[80], cn[80];
	int rc;

	if (!c)
		return err_set(e, POS_EINVAL, "config: none");
	if ((rc = keys_check_private_mode(c->key, e)) < 0) {
		err_prefix(e, "[central] key");
		goto out;
	}
	if ((rc = keys_check_private_mode(c->tls_key, e)) < 0) {
		err_prefix(e, "[tls] key");
		goto out;
	}
	if ((rc = sconf_load_x509("[central] ca", c->ca, &ca, e)) < 0 ||
	    (rc = sconf_load_x509("[central] cert", c->cert, &cert, e)) < 0 ||
	    (rc = sconf_load_x509("[tls] ca", c->tls_ca, &tca, e)) < 0 ||
	    (rc = sconf_load_x509("[tls] cert", c->tls_cert, &tcert, e)) < 0)
		goto out;
	if ((rc = sconf_issued("[central] cert", cert, ca, e)) < 0 ||
	    (rc = sconf_issued("[tls] cert", tcert, tca, e)) < 0)
		goto out;
	sconf_entry(cert, NID_organizationalUnitName, ou, sizeof ou);
	sconf_entry(cert, NID_commonName, cn, sizeof cn);
	if (strcmp(ou, c->store) != 0 || strcmp(cn, SCONF_CONTROLLER_CN) != 0) {
		rc = err_set(e, POS_EINVAL,
			     "[central] cert: %s is OU=%s, CN=%s; the controller of store %s needs "
			     "OU=%s, CN=%s (pos-central store-cert)",
			     c->cert, ou, cn, c->store, c->store, SCONF_CONTROLLER_CN);
		goto out;
	}
out:
	X509_free(ca);
	X509_free(cert);
	X509_free(tca);
	X509_free(tcert);
	return rc;
}
