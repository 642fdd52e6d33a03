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
#include "ids.h"
#include "keys.h"

#define SCONF_CONTROLLER_CN "store-controller"

void sconf_free(struct sconf *c)
{
	free(c);
}

static int sconf_copy(struct cfg *cf, const char *sec, const char *key, const char *v, char *out,
		      size_t cap, pos_err *e)
{
	size_t n = strlen(v);

	if (n >= cap)
		return err_set(e, POS_ETOOBIG, "%s:%d: '%s' in [%s] is longer than %zu characters",
			       cf->name, cfg_line(cf, sec, key), key, sec, cap - 1);
	memcpy(out, v, n + 1);
	return 0;
}

/* HOST:PORT, [v6]:PORT or :PORT; the port 1..65535. */
static int sconf_listen(struct cfg *cf, struct sconf *c, pos_err *e)
{
	const char *v, *colon;
	char *end;
	long port;
	size_t hl;
	int rc, line;

	if ((rc = cfg_str(cf, "listen", "address", "0.0.0.0:8444", &v, e)) < 0)
		return rc;
	line = cfg_line(cf, "listen", "address");
	if ((rc = sconf_copy(cf, "listen", "address", v, c->listen, sizeof c->listen, e)) < 0)
		return rc;
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
	return err_set(e, POS_EINVAL, "%s:%d: 'address' in [listen] must be HOST:PORT", cf->name,
		       line);
}

static int sconf_from_cfg(struct cfg *cf, const char *file, struct sconf **out, pos_err *e)
{
	struct sconf *c = calloc(1, sizeof *c);
	const char *v;
	int rc;

	if (!c)
		return err_set(e, POS_ENOMEM, "%s: out of memory", file);
	snprintf(c->file, sizeof c->file, "%s", file);
	if ((rc = cfg_str(cf, "store", "id", NULL, &v, e)) < 0)
		goto fail;
	if (!ids_valid(v)) {
		rc = err_set(e, POS_EINVAL, "%s:%d: 'id' in [store] must be 1 to %d of A-Z a-z 0-9 . _ -",
			     cf->name, cfg_line(cf, "store", "id"), IDS_MAX);
		goto fail;
	}
	snprintf(c->store, sizeof c->store, "%s", v);
	if ((rc = sconf_listen(cf, c, e)) < 0)
		goto fail;
	if ((rc = cfg_path(cf, "tls", "ca", NULL, c->tls_ca, sizeof c->tls_ca, e)) < 0 ||
	    (rc = cfg_path(cf, "tls", "cert", NULL, c->tls_cert, sizeof c->tls_cert, e)) < 0 ||
	    (rc = cfg_path(cf, "tls", "key", NULL, c->tls_key, sizeof c->tls_key, e)) < 0)
		goto fail;
	if ((rc = cfg_str(cf, "central", "url", NULL, &v, e)) < 0 ||
	    (rc = aconf_url_list(cf, "central", v, e)) < 0 ||
	    (rc = sconf_copy(cf, "central", "url", v, c->url, sizeof c->url, e)) < 0)
		goto fail;
	if ((rc = cfg_path(cf, "central", "ca", NULL, c->ca, sizeof c->ca, e)) < 0 ||
	    (rc = cfg_path(cf, "central", "cert", NULL, c->cert, sizeof c->cert, e)) < 0 ||
	    (rc = cfg_path(cf, "central", "key", NULL, c->key, sizeof c->key, e)) < 0)
		goto fail;
	if ((rc = cfg_path(cf, "tlog", "path", "tlog.db", c->tlog, sizeof c->tlog, e)) < 0 ||
	    (rc = cfg_int(cf, "tlog", "keep_days", SCONF_KEEP_DEFAULT, 1, SCONF_KEEP_MAX,
			  &c->keep_days, e)) < 0)
		goto fail;
	if ((rc = cfg_check_unused(cf, e)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	sconf_free(c);
	return rc;
}

int sconf_load(const char *path, struct sconf **out, pos_err *e)
{
	struct cfg *cf = NULL;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "config: no output");
	*out = NULL;
	if (!path || !*path)
		return err_set(e, POS_EINVAL, "config: no file given");
	if ((rc = cfg_load(path, &cf, e)) < 0)
		return rc;
	rc = sconf_from_cfg(cf, path, out, e);
	cfg_free(cf);
	return rc;
}

int sconf_load_string(const char *text, size_t len, const char *name, const char *dir,
		      struct sconf **out, pos_err *e)
{
	struct cfg *cf = NULL;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "config: no output");
	*out = NULL;
	if ((rc = cfg_load_string(text, len, name, dir, &cf, e)) < 0)
		return rc;
	rc = sconf_from_cfg(cf, name ? name : "<config>", out, e);
	cfg_free(cf);
	return rc;
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
