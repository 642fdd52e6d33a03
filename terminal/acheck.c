#include "acheck.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <string.h>

#include "config.h"
#include "profile.h"

/* Where key lives in terminal.conf: "FILE:LINE" (the section's line when
 * the key is absent, the file alone when neither is known). */
struct acheck_out {
	FILE *f;
	const char *pfx; /* before each problem line */
};

static void acheck_say(struct acheck_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void acheck_say(struct acheck_out *o, const char *fmt, ...)
{
	va_list ap;

	fputs(o->pfx, o->f);
	va_start(ap, fmt);
	vfprintf(o->f, fmt, ap);
	va_end(ap);
}

static const char *acheck_at(const struct cfg *cf, const struct aconf *c, const char *sec,
			     const char *key, char *buf, size_t cap)
{
	int line = cf ? cfg_line(cf, sec, key) : 0;

	if (line <= 0 && cf)
		line = cfg_line(cf, sec, NULL);
	if (line > 0)
		snprintf(buf, cap, "%s:%d", c->file, line);
	else
		snprintf(buf, cap, "%s", c->file);
	return buf;
}

static X509 *acheck_read_cert(const char *path)
{
	FILE *f = fopen(path, "re");
	X509 *x;

	if (!f)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

/* The first value of nid in the certificate's subject, or "" when absent. */
static void acheck_subject(X509 *x, int nid, char *buf, size_t cap)
{
	buf[0] = '\0';
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), nid, buf, (int)cap) < 0)
		buf[0] = '\0';
}

/* The certificate against the CA (chain and dates) and its subject against
 * [terminal] store and id. */
static int acheck_cert(const struct aconf *c, const struct cfg *cf, struct acheck_out *o)
{
	X509 *cert = NULL, *ca = NULL;
	X509_STORE *st = NULL;
	X509_STORE_CTX *ctx = NULL;
	char at[1200], ou[128], cn[128];
	int bad = 0;

	cert = acheck_read_cert(c->cert);
	ca = acheck_read_cert(c->ca);
	if (!cert || !ca) {
		acheck_say(o, "%s: %s is not a readable PEM certificate; fix: copy it again from "
			     "the folder `pos-central terminal-cert` wrote\n",
			acheck_at(cf, c, "central", cert ? "ca" : "cert", at, sizeof at),
			cert ? c->ca : c->cert);
		bad = 1;
		goto out;
	}
	st = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	if (!st || !ctx || X509_STORE_add_cert(st, ca) != 1 ||
	    X509_STORE_CTX_init(ctx, st, cert, NULL) != 1) {
		acheck_say(o, "%s: cannot check the certificate (out of memory)\n", c->file);
		bad = 1;
		goto out;
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	if (X509_verify_cert(ctx) != 1) {
		acheck_say(o, "%s: %s does not verify against %s (%s); fix: use the terminal.crt "
			     "and ca.crt that one `pos-central terminal-cert` run wrote together, "
			     "or issue a new one\n",
			acheck_at(cf, c, "central", "cert", at, sizeof at), c->cert, c->ca,
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		bad++;
	}
	acheck_subject(cert, NID_organizationalUnitName, ou, sizeof ou);
	acheck_subject(cert, NID_commonName, cn, sizeof cn);
	if (strcmp(ou, c->store) != 0) {
		acheck_say(o, "%s: store = %s, but %s is store %s's; fix: set store = %s, or issue "
			     "a certificate with `pos-central terminal-cert DIR --store %s "
			     "--terminal %s`\n",
			acheck_at(cf, c, "terminal", "store", at, sizeof at), c->store, c->cert,
			ou[0] ? ou : "(none)", ou[0] ? ou : "...", c->store, c->terminal);
		bad++;
	}
	if (strcmp(cn, c->terminal) != 0) {
		acheck_say(o, "%s: id = %s, but %s is terminal %s's; fix: set id = %s, or issue "
			     "a certificate with `pos-central terminal-cert DIR --store %s "
			     "--terminal %s`\n",
			acheck_at(cf, c, "terminal", "id", at, sizeof at), c->terminal, c->cert,
			cn[0] ? cn : "(none)", cn[0] ? cn : "...", c->store, c->terminal);
		bad++;
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(cert);
	X509_free(ca);
	return bad;
}

/* Every device's profile is found and parses, as run would load it. */
static int acheck_profiles(const struct aconf *c, const struct cfg *cf, struct acheck_out *o)
{
	char sec[128], at[1200];
	int bad = 0;

	for (size_t i = 0; i < c->ndevices; i++) {
		const struct device_cfg *d = &c->devices[i];
		struct profile p;
		pos_err e = { 0 };

		if (profile_load(d->profile, &p, &e) == 0)
			continue;
		snprintf(sec, sizeof sec, "device.%s", d->name);
		acheck_say(o, "%s: [%s] profile: %s; fix: name one of the profiles there (or "
			     "give a file's path)\n",
			acheck_at(cf, c, sec, "profile", at, sizeof at), sec, e.msg);
		bad++;
	}
	return bad;
}

int acheck_run(const struct aconf *c, const char *prefix, FILE *out)
{
	struct acheck_out ob = { out, prefix ? prefix : "" }, *o = &ob;
	struct cfg *cf = NULL;
	pos_err e = { 0 };
	int bad = 0;

	/* Only for line numbers: c was loaded from this file already. */
	if (cfg_load(c->file, &cf, &e) < 0)
		cf = NULL;
	if (aconf_check_files(c, &e) < 0) {
		acheck_say(o, "%s: %s; fix: copy the file again from the folder "
			     "`pos-central terminal-cert` wrote (key: mode 0600)\n", c->file, e.msg);
		bad++;
	} else {
		bad += acheck_cert(c, cf, o);
	}
	bad += acheck_profiles(c, cf, o);
	cfg_free(cf);
	return bad;
}
