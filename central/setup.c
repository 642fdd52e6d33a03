#include "setup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/file.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "cconf.h"
#include "ids.h"
#include "keys.h"
#include "pki.h"
#include "tls.h"
#include "timeutil.h"

#define SETUP_USAGE "usage: pos-central setup DIR [--name HOST]..."
/* Names and addresses a server certificate may carry besides localhost
 * and 127.0.0.1. */
#define SETUP_NAMES_MAX 8
#define TCERT_USAGE \
	"usage: pos-central terminal-cert DIR --store S --terminal T --out OUT [--renew]"
#define SCERT_USAGE \
	"usage: pos-central store-cert DIR --store S --out OUT [--host NAME|ADDRESS]..."
#define SCERT_HOSTS_MAX 8
#define SCERT_PORT "8444"
#define ROTATE_USAGE "usage: pos-central rotate-key -c CONF"
#define REVOKE_USAGE \
	"usage: pos-central terminal-revoke DIR --store S --terminal T [--cert FILE]"
/* Certificates of one terminal that one revocation takes (re-issues). */
#define REVOKE_MAX 64
#define SETUP_LISTEN "127.0.0.1:8443"
#define TLIST_USAGE "usage: pos-central terminal list -c CONF [--format table|csv]"
/* Rows terminal list reads from the issued folder at most. */
#define TLIST_MAX 1000000
/* With a name terminals reach from elsewhere: every address. */
#define SETUP_LISTEN_ALL "0.0.0.0:8443"

/* The server certificate's names: the --name values in their order, then
 * localhost and 127.0.0.1 unless given. Its CN is the first (terminal-cert
 * writes that name into terminal.conf's url). */
struct setup_names {
	const char *dns[SETUP_NAMES_MAX + 3]; /* NULL-terminated */
	const char *ips[SETUP_NAMES_MAX + 3];
	size_t ndns, nips;
	const char *first; /* NULL: none given, CN localhost */
	int remote;        /* a name that is not loopback: listen everywhere */
};

/* Everything `setup` writes into a home, in the order it writes them; on
 * failure they are removed again so the command can simply be re-run. */
static const char *const setup_files[] = {
	"ca.key", "ca.crt", "server.key", "server.crt", "hpke.key", "central.pub",
	"k_index.key", "k_deident.key", "analyst.token", "admin.token", "ticket.key", PKI_CRL_FILE,
	"central.conf", "public.key", "public.crt", "visitor.key",
};
#define SETUP_NFILES (sizeof setup_files / sizeof setup_files[0])

/* What `terminal-cert` writes into OUT. */
static const char *const tcert_files[] = {
	"terminal.key", "terminal.crt", "ca.crt", "central.pub", "terminal.conf",
};
#define TCERT_NFILES (sizeof tcert_files / sizeof tcert_files[0])

/* What `store-cert` writes into OUT. */
static const char *const scert_files[] = {
	"store.key", "store.crt", "ca.crt", "store.conf",
};
#define SCERT_NFILES (sizeof scert_files / sizeof scert_files[0])

static int setup_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int setup_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pos-central %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s\n", usage);
	return 2;
}

/* One line: "pos-central CMD: problem (see pos-central CMD --help)". */
static int setup_usage_line(const char *cmd, const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int setup_usage_line(const char *cmd, const char *usage, const char *fmt, ...)
{
	va_list ap;

	(void)usage;
	fprintf(stderr, "pos-central %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see pos-central %s --help)\n", cmd);
	return 2;
}

static int setup_fail(const char *cmd, const pos_err *e)
{
	fprintf(stderr, "pos-central %s: %s\n", cmd, e->msg[0] ? e->msg : "failed");
	return 1;
}

static int setup_join(char out[PATH_MAX], const char *dir, const char *name, pos_err *e)
{
	size_t dl = strlen(dir);
	int n;

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	n = snprintf(out, PATH_MAX, "%.*s/%s", (int)dl, dir, name);
	if (n < 0 || n >= PATH_MAX)
		return err_set(e, POS_ETOOBIG, "%s: path too long", dir);
	return 0;
}

static int setup_is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* Takes "--name VALUE" or "--name=VALUE" at argv[*i]; 1 when matched,
 * -1 when the value is missing. */
static int setup_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}

/* Creates dir 0700, or accepts an existing empty folder. *created tells
 * whether it was made here (and may be removed on failure). */
static int setup_fresh_dir(const char *dir, int *created, pos_err *e)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int empty = 1;

	*created = 0;
	if (mkdir(dir, 0700) == 0) {
		*created = 1;
		return 0;
	}
	if (errno != EEXIST)
		return err_set(e, POS_EIO, "%s: cannot create: %s", dir, strerror(errno));
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return err_set(e, POS_ECONFLICT, "%s exists and is not a folder", dir);
	d = opendir(dir);
	if (!d)
		return err_set(e, POS_EIO, "%s: cannot read: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	closedir(d);
	if (!empty)
		return err_set(e, POS_ECONFLICT,
			       "%s exists and is not empty; refusing to overwrite a central home", dir);
	if (chmod(dir, 0700) < 0)
		return err_set(e, POS_EIO, "%s: chmod: %s", dir, strerror(errno));
	return 0;
}

static void setup_remove_home(const char *dir, int created)
{
	char p[PATH_MAX];

	for (size_t i = 0; i < SETUP_NFILES; i++)
		if (setup_join(p, dir, setup_files[i], NULL) == 0)
			unlink(p);
	if (setup_join(p, dir, "keys", NULL) == 0)
		rmdir(p);
	if (setup_join(p, dir, PKI_ISSUED_DIR, NULL) == 0)
		rmdir(p);
	if (created)
		rmdir(dir);
}

static int setup_write_pair(const char *dir, const char *crt, const char *key, X509 *x,
			    EVP_PKEY *k, pos_err *e)
{
	char p[PATH_MAX];
	int rc;

	rc = setup_join(p, dir, key, e);
	if (rc == 0)
		rc = pki_write_key(p, k, e);
	if (rc == 0)
		rc = setup_join(p, dir, crt, e);
	if (rc == 0)
		rc = pki_write_cert(p, x, e);
	return rc;
}

/* Adds host to the right list of nm unless already there. 0, or a usage
 * message in why. */
static int setup_name_add(struct setup_names *nm, const char *host, char *why, size_t cap)
{
	int kind = pki_host_kind(host);
	const char **list = kind == PKI_HOST_IP ? nm->ips : nm->dns;
	size_t *n = kind == PKI_HOST_IP ? &nm->nips : &nm->ndns;

	if (kind == PKI_HOST_BAD) {
		snprintf(why, cap, "--name '%.80s' is neither a DNS name nor an IP address", host);
		return -1;
	}
	for (size_t i = 0; i < *n; i++)
		if (strcasecmp(list[i], host) == 0)
			return 0;
	if (nm->ndns + nm->nips >= SETUP_NAMES_MAX + 2) {
		snprintf(why, cap, "at most %d --name", SETUP_NAMES_MAX);
		return -1;
	}
	list[(*n)++] = host;
	if (!nm->first)
		nm->first = host;
	if (!pki_host_loopback(host))
		nm->remote = 1;
	return 0;
}

/* "a, b and c": the certificate's names for a message. */
static void setup_names_text(const struct setup_names *nm, char *out, size_t cap)
{
	size_t off = 0, total = nm->ndns + nm->nips, k = 0;

	out[0] = '\0';
	for (int list = 0; list < 2; list++) {
		const char *const *v = list == 0 ? nm->dns : nm->ips;
		size_t n = list == 0 ? nm->ndns : nm->nips;

		for (size_t i = 0; i < n && off < cap; i++, k++) {
			int w = snprintf(out + off, cap - off, "%s%s",
					 k == 0 ? "" : k + 1 == total ? " and " : ", ", v[i]);
			if (w < 0)
				return;
			off += (size_t)w;
		}
	}
}

static int setup_home(const char *dir, const struct setup_names *nm, const char *listen,
		      char kid[KEYS_KID_LEN + 1], pos_err *e)
{
	const char *const *dns = nm->dns, *const *ips = nm->ips;
	const char *cn = nm->first ? nm->first : "localhost";
	struct hpke_keypair kp;
	EVP_PKEY *ca_key = NULL, *srv_key = NULL, *pub_key = NULL;
	X509 *ca = NULL, *srv = NULL, *pub = NULL;
	X509_CRL *crl = NULL;
	char p[PATH_MAX];
	int rc, created = 0;

	memset(&kp, 0, sizeof kp);
	rc = setup_fresh_dir(dir, &created, e);
	if (rc < 0)
		return rc;

	rc = pki_make_ca("POS Central CA", PKI_CA_DAYS, &ca_key, &ca, e);
	if (rc < 0)
		goto out;
	rc = setup_write_pair(dir, "ca.crt", "ca.key", ca, ca_key, e);
	if (rc < 0)
		goto out;
	rc = pki_issue_server(ca_key, ca, cn, dns, ips, PKI_SERVER_DAYS, &srv_key, &srv, e);
	if (rc < 0)
		goto out;
	rc = setup_write_pair(dir, "server.crt", "server.key", srv, srv_key, e);
	if (rc < 0)
		goto out;
	/* The public listener's own pair, for the same names until the
	 * retailer puts one from a public CA in its place. */
	rc = pki_issue_server(ca_key, ca, cn, dns, ips, PKI_SERVER_DAYS, &pub_key, &pub, e);
	if (rc < 0)
		goto out;
	rc = setup_write_pair(dir, "public.crt", "public.key", pub, pub_key, e);
	if (rc < 0)
		goto out;

	rc = keys_generate(&kp, e);
	if (rc < 0)
		goto out;
	if ((rc = setup_join(p, dir, "hpke.key", e)) < 0 || (rc = keys_save_private(p, &kp, e)) < 0)
		goto out;
	if ((rc = setup_join(p, dir, "central.pub", e)) < 0 ||
	    (rc = keys_save_public(p, kp.pk, e)) < 0)
		goto out;
	memcpy(kid, kp.kid, KEYS_KID_LEN + 1);
	if ((rc = setup_join(p, dir, "keys", e)) < 0)
		goto out;
	if (mkdir(p, 0700) < 0) {
		rc = err_set(e, POS_EIO, "%s: cannot create: %s", p, strerror(errno));
		goto out;
	}

	if ((rc = setup_join(p, dir, "k_index.key", e)) < 0 || (rc = keys_generate_hmac(p, e)) < 0)
		goto out;
	if ((rc = setup_join(p, dir, "k_deident.key", e)) < 0 ||
	    (rc = keys_generate_hmac(p, e)) < 0)
		goto out;
	if ((rc = setup_join(p, dir, "analyst.token", e)) < 0 ||
	    (rc = keys_generate_token(p, e)) < 0)
		goto out;
	if ((rc = setup_join(p, dir, "admin.token", e)) < 0 || (rc = keys_generate_token(p, e)) < 0)
		goto out;
	if ((rc = setup_join(p, dir, "visitor.key", e)) < 0 || (rc = keys_generate_hmac(p, e)) < 0)
		goto out;
	if ((rc = setup_join(p, dir, "ticket.key", e)) < 0 ||
	    (rc = tls_ticket_key_create(p, e)) < 0)
		goto out;
	if ((rc = setup_join(p, dir, PKI_ISSUED_DIR, e)) < 0)
		goto out;
	if (mkdir(p, 0700) < 0) {
		rc = err_set(e, POS_EIO, "%s: cannot create: %s", p, strerror(errno));
		goto out;
	}
	/* An empty CRL from the start: serve checks every terminal against
	 * it, and terminal-revoke only ever adds to it. */
	if ((rc = pki_crl_make(ca_key, ca, NULL, NULL, 0, &crl, NULL, e)) < 0 ||
	    (rc = setup_join(p, dir, PKI_CRL_FILE, e)) < 0 || (rc = pki_write_crl(p, crl, e)) < 0)
		goto out;
	if ((rc = setup_join(p, dir, "central.conf", e)) < 0 ||
	    (rc = cconf_write_default(p, listen, e)) < 0)
		goto out;
out:
	if (rc < 0)
		setup_remove_home(dir, created);
	keys_wipe(&kp);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(pub_key);
	X509_free(ca);
	X509_free(srv);
	X509_free(pub);
	X509_CRL_free(crl);
	return rc;
}

int setup_main(int argc, char **argv)
{
	const char *dir = NULL, *name = NULL, *given, *listen;
	char kid[KEYS_KID_LEN + 1] = "", why[160], names[600];
	struct setup_names nm;
	pos_err e = { 0 };
	int nnames = 0;

	memset(&nm, 0, sizeof nm);
	for (int i = 1; i < argc; i++) {
		int m;

		if (setup_is_help(argv[i])) {
			printf("%s\n", SETUP_USAGE);
			return 0;
		}
		if ((m = setup_opt(argc, argv, &i, "--name", &name)) < 0)
			return setup_usage_error("setup", SETUP_USAGE, "--name needs a host name or address");
		if (m == 1) {
			if (++nnames > SETUP_NAMES_MAX)
				return setup_usage_error("setup", SETUP_USAGE, "at most %d --name",
							 SETUP_NAMES_MAX);
			if (setup_name_add(&nm, name, why, sizeof why) < 0)
				return setup_usage_error("setup", SETUP_USAGE, "%s", why);
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			return setup_usage_error("setup", SETUP_USAGE, "unknown option %s", argv[i]);
		if (dir)
			return setup_usage_error("setup", SETUP_USAGE, "one DIR only");
		dir = argv[i];
	}
	if (!dir || !dir[0])
		return setup_usage_error("setup", SETUP_USAGE, "DIR is required");
	given = nm.first;
	if (setup_name_add(&nm, "localhost", why, sizeof why) < 0 ||
	    setup_name_add(&nm, "127.0.0.1", why, sizeof why) < 0)
		return setup_usage_error("setup", SETUP_USAGE, "%s", why);
	nm.first = given;
	listen = nm.remote ? SETUP_LISTEN_ALL : SETUP_LISTEN;
	setup_names_text(&nm, names, sizeof names);
	if (setup_home(dir, &nm, listen, kid, &e) < 0)
		return setup_fail("setup", &e);
	printf("pos-central setup: made a central home in %s\n"
	       "  ca.crt, ca.key                certificate authority, EC P-256, 10 years\n"
	       "  public.crt, public.key        the public listener's certificate (replace it)\n"
	       "  server.crt, server.key        server certificate for %s, 2 years\n"
	       "  hpke.key, central.pub         HPKE X25519 key pair, kid %s\n"
	       "  keys/                         retired HPKE keys (filled by rotate-key)\n"
	       "  k_index.key, k_deident.key    HMAC keys\n"
	       "  visitor.key                   signs visitor ids (links nothing to a customer)\n"
	       "  analyst.token, admin.token    bearer tokens\n"
	       "  ticket.key                    TLS session ticket keys (resumption across restarts)\n"
	       "  crl.pem, issued/              revoked and issued terminal certificates\n"
	       "  central.conf                  listen = %s\n"
	       "Private files are mode 0600. Next: pos-central serve -c %s/central.conf\n",
	       dir, names, kid, listen, dir);
	if (nm.first)
		printf("Terminals reach central as %s: pos-central terminal-cert writes "
		       "https://%s%s%s:%s into their terminal.conf.\n",
		       nm.first, strchr(nm.first, ':') ? "[" : "", nm.first,
		       strchr(nm.first, ':') ? "]" : "", strrchr(listen, ':') + 1);
	return 0;
}

/* The url a terminal uses for central's listen address. A wildcard address
 * is not reachable as such: the loopback address the server certificate
 * names is written instead, and the caller is told. */
static int tcert_url(const char *listen, char *out, size_t cap, int *wildcard, pos_err *e)
{
	const char *colon = strrchr(listen, ':');
	char host[128];
	size_t hl;
	int n;

	*wildcard = 0;
	if (!colon)
		return err_set(e, POS_EINVAL, "listen address '%s' is not HOST:PORT", listen);
	hl = (size_t)(colon - listen);
	if (hl >= sizeof host)
		return err_set(e, POS_EINVAL, "listen address too long");
	memcpy(host, listen, hl);
	host[hl] = '\0';
	if (hl == 0 || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0 ||
	    strcmp(host, "[::]") == 0 || strcmp(host, "::") == 0) {
		*wildcard = 1;
		n = snprintf(out, cap, "https://127.0.0.1:%s", colon + 1);
	} else if (strchr(host, ':') && host[0] != '[') {
		n = snprintf(out, cap, "https://[%s]:%s", host, colon + 1);
	} else {
		n = snprintf(out, cap, "https://%s:%s", host, colon + 1);
	}
	if (n < 0 || (size_t)n >= cap)
		return err_set(e, POS_ETOOBIG, "url too long");
	return 0;
}

/* The url terminals and controllers reach central by: the server
 * certificate's own name (its CN, set by setup --name, when its
 * subjectAltName covers it) on the listen port; without one, the listen
 * address (tcert_url). */
static int setup_central_url(const struct cconf *cf, char *out, size_t cap, int *wildcard,
			     pos_err *e)
{
	const char *colon = strrchr(cf->listen, ':');
	char host[256];
	X509 *srv = NULL;
	int n, named;

	named = colon && pki_load_cert(cf->tls_cert, &srv, NULL) == 0 &&
		pki_server_name(srv, host, sizeof host, NULL) == 0 && !pki_host_loopback(host);
	X509_free(srv);
	if (!named)
		return tcert_url(cf->listen, out, cap, wildcard, e);
	*wildcard = 0;
	n = snprintf(out, cap, "https://%s%s%s:%s", strchr(host, ':') ? "[" : "", host,
		     strchr(host, ':') ? "]" : "", colon + 1);
	if (n < 0 || (size_t)n >= cap)
		return err_set(e, POS_ETOOBIG, "url too long");
	return 0;
}

static int tcert_conf(const char *store, const char *terminal, const char *url, char *out,
		      size_t cap, size_t *len, pos_err *e)
{
	int n = snprintf(
		out, cap,
		"; terminal.conf for terminal %s of store %s, written by pos-central terminal-cert.\n"
		"; Relative paths are relative to this file's folder; unknown keys are errors.\n"
		"[terminal]\n"
		"store = %s\n"
		"id = %s\n"
		"[central]\n"
		"url = %s\n"
		"ca = ca.crt\n"
		"cert = terminal.crt\n"
		"key = terminal.key\n"
		"public_key = central.pub\n"
		"resolve_timeout_ms = 400\n"
		"[spool]\n"
		"path = spool.db\n"
		"[control]\n"
		"socket = agent.sock\n"
		"; One section per device, any name after the dot. Uncomment and edit:\n"
		";[device.flatbed]\n"
		";role = scanner            ; scanner | cardreader\n"
		";port = /dev/ttyACM0       ; or usb:VID:PID[:serial]\n"
		";profile = scanner-crlf    ; a profile name from hw/profiles, or a path\n"
		";\n"
		";[device.msr]\n"
		";role = cardreader\n"
		";port = /dev/ttyUSB0\n"
		";profile = msr-ascii\n"
		"[codes]                   ; POSIX extended regexes on the code after its AIM id\n"
		"loyalty = ^99[0-9]{11}$\n"
		"offer = ^98[0-9]{11}$\n"
		"total = ^TOTAL$\n"
		"void = ^VOID$\n"
		"cancel = ^CANCEL$\n",
		terminal, store, store, terminal, url);
	if (n < 0 || (size_t)n >= cap)
		return err_set(e, POS_ETOOBIG, "terminal.conf too long");
	*len = (size_t)n;
	return 0;
}

/* Creates OUT (0700) when missing and refuses if any of its n files is
 * already there: nothing is written unless everything can be. */
static int setup_prepare_out(const char *out, const char *const *files, size_t n, pos_err *e)
{
	char p[PATH_MAX];
	struct stat st;

	if (mkdir(out, 0700) < 0) {
		if (errno != EEXIST)
			return err_set(e, POS_EIO, "%s: cannot create: %s", out, strerror(errno));
		if (stat(out, &st) < 0 || !S_ISDIR(st.st_mode))
			return err_set(e, POS_ECONFLICT, "%s exists and is not a folder", out);
	}
	for (size_t i = 0; i < n; i++) {
		int rc = setup_join(p, out, files[i], e);
		if (rc < 0)
			return rc;
		if (lstat(p, &st) == 0)
			return err_set(e, POS_ECONFLICT, "%s already exists; refusing to overwrite", p);
	}
	return 0;
}

/* Removes what an issuing wrote into OUT before it failed. */
static void setup_remove_out(const char *out, const char *const *files, size_t n)
{
	char p[PATH_MAX];

	for (size_t i = 0; i < n; i++)
		if (setup_join(p, out, files[i], NULL) == 0)
			unlink(p);
}

/* The home's CA certificate and key, which must belong together. */
static int setup_load_ca(const char *dir, X509 **ca, EVP_PKEY **ca_key, pos_err *e)
{
	char p[PATH_MAX];
	int rc;

	if ((rc = setup_join(p, dir, "ca.crt", e)) < 0 || (rc = pki_load_cert(p, ca, e)) < 0)
		return rc;
	if ((rc = setup_join(p, dir, "ca.key", e)) < 0 || (rc = pki_load_key(p, ca_key, e)) < 0)
		return rc;
	if (X509_check_private_key(*ca, *ca_key) != 1) {
		ERR_clear_error();
		return err_set(e, POS_ECRYPTO, "%s/ca.key does not belong to %s/ca.crt", dir, dir);
	}
	return 0;
}

/* Keeps a copy of an issued terminal certificate in DIR/issued/SERIAL.pem
 * (the folder made for a home set up before it existed). */
static int tcert_index(const char *dir, X509 *cert, pos_err *e)
{
	char idx[PATH_MAX], p[PATH_MAX], serial[PKI_SERIAL_HEX], name[PKI_SERIAL_HEX + 8];
	int rc;

	if ((rc = setup_join(idx, dir, PKI_ISSUED_DIR, e)) < 0)
		return rc;
	if (mkdir(idx, 0700) < 0 && errno != EEXIST)
		return err_set(e, POS_EIO, "%s: cannot create: %s", idx, strerror(errno));
	if ((rc = pki_serial_hex(cert, serial, e)) < 0)
		return rc;
	snprintf(name, sizeof name, "%s.pem", serial);
	if ((rc = setup_join(p, idx, name, e)) < 0)
		return rc;
	return pki_write_cert(p, cert, e);
}

/* The certificates of one terminal (terminal-revoke, terminal-cert
 * --renew). */
struct revoke_set {
	X509 *certs[REVOKE_MAX];
	size_t n;
};
static void revoke_set_free(struct revoke_set *rs);
static int revoke_find(const char *dir, X509 *ca, const char *store, const char *terminal,
		       struct revoke_set *rs, pos_err *e);
static void revoke_serials(const struct revoke_set *rs, char *out, size_t cap);
static int rotate_suffix(char out[PATH_MAX], const char *path, const char *suffix, pos_err *e);

static int tcert_issue(const char *dir, const char *store, const char *terminal,
		       const char *out, pos_err *e)
{
	char p[PATH_MAX], url[300], conf[4096], kid[KEYS_KID_LEN + 1], until[TIME_RFC3339_LEN];
	unsigned char pk[32];
	struct cconf cf;
	EVP_PKEY *ca_key = NULL, *key = NULL;
	X509 *ca = NULL, *cert = NULL;
	size_t conf_len = 0;
	int rc, wildcard = 0, written = 0;
	time_t not_after = 0;

	if ((rc = setup_join(p, dir, "central.conf", e)) < 0 || (rc = cconf_load(p, &cf, e)) < 0)
		return rc;
	if ((rc = setup_central_url(&cf, url, sizeof url, &wildcard, e)) < 0)
		return rc;
	if ((rc = tcert_conf(store, terminal, url, conf, sizeof conf, &conf_len, e)) < 0)
		return rc;
	if ((rc = setup_load_ca(dir, &ca, &ca_key, e)) < 0)
		goto out;
	if ((rc = setup_join(p, dir, "central.pub", e)) < 0 ||
	    (rc = keys_load_public(p, pk, kid, e)) < 0)
		goto out;
	if ((rc = setup_prepare_out(out, tcert_files, TCERT_NFILES, e)) < 0)
		goto out;
	rc = pki_issue_client(ca_key, ca, store, terminal, PKI_CLIENT_DAYS, &key, &cert, e);
	if (rc < 0)
		goto out;
	/* Indexed before it leaves: terminal-revoke finds every certificate
	 * it may have to refuse. */
	if ((rc = tcert_index(dir, cert, e)) < 0)
		goto out;

	written = 1; /* from here a failure removes what was written */
	if ((rc = setup_join(p, out, "terminal.key", e)) < 0 || (rc = pki_write_key(p, key, e)) < 0)
		goto out;
	if ((rc = setup_join(p, out, "terminal.crt", e)) < 0 ||
	    (rc = pki_write_cert(p, cert, e)) < 0)
		goto out;
	if ((rc = setup_join(p, out, "ca.crt", e)) < 0 || (rc = pki_write_cert(p, ca, e)) < 0)
		goto out;
	if ((rc = setup_join(p, out, "central.pub", e)) < 0 ||
	    (rc = keys_save_public(p, pk, e)) < 0)
		goto out;
	if ((rc = setup_join(p, out, "terminal.conf", e)) < 0 ||
	    (rc = pki_write_file(p, conf, conf_len, 0644, e)) < 0)
		goto out;
	if ((rc = setup_join(p, out, "terminal.crt", e)) < 0 ||
	    (rc = pki_cert_not_after(p, &not_after, e)) < 0)
		goto out;
	time_format_rfc3339((int64_t)not_after * 1000, until);
	until[10] = '\0';
	printf("pos-central terminal-cert: terminal %s of store %s in %s\n"
	       "  terminal.crt, terminal.key  client certificate OU=%s, CN=%s, valid until %s\n"
	       "  ca.crt, central.pub         central's CA and HPKE public key (kid %s)\n"
	       "  terminal.conf               url = %s; name the devices in [device.*] sections\n",
	       terminal, store, out, store, terminal, until, kid, url);
	if (wildcard)
		fprintf(stderr,
			"pos-central terminal-cert: central listens on %s; set url in "
			"%s/terminal.conf to an address the terminal can reach\n",
			cf.listen, out);
out:
	if (rc < 0 && written)
		setup_remove_out(out, tcert_files, TCERT_NFILES);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	X509_free(ca);
	X509_free(cert);
	return rc;
}

/* Writes what an issuing put in memory to OUT/name through name.new and a
 * rename, replacing the file there (a renewal's new key and certificate). */
static int renew_replace(const char *out, const char *name, X509 *cert, EVP_PKEY *key,
			 pos_err *e)
{
	char p[PATH_MAX], tmp[PATH_MAX];
	int rc;

	if ((rc = setup_join(p, out, name, e)) < 0 || (rc = rotate_suffix(tmp, p, ".new", e)) < 0)
		return rc;
	unlink(tmp); /* left by an interrupted renewal: ours to replace */
	rc = key ? pki_write_key(tmp, key, e) : pki_write_cert(tmp, cert, e);
	if (rc < 0)
		return rc;
	if (rename(tmp, p) < 0) {
		rc = err_set(e, POS_EIO, "%s: rename failed: %s", p, strerror(errno));
		unlink(tmp);
	}
	return rc;
}

/* A file a renewal writes only when OUT lacks it: ca.crt, central.pub and
 * terminal.conf are the terminal's own from then on (its devices are
 * named in terminal.conf, the agent refreshes central.pub). 1 when
 * missing. */
static int renew_missing(const char *out, const char *name, char p[PATH_MAX], pos_err *e)
{
	struct stat st;
	int rc = setup_join(p, out, name, e);

	return rc < 0 ? rc : lstat(p, &st) != 0;
}

/*
 * terminal-cert --renew: a new key and certificate for a terminal this CA
 * issued to before, into OUT (its folder, or a new one), replacing
 * terminal.key and terminal.crt there. The earlier certificates are not
 * revoked: the terminal keeps working with the one it holds until the new
 * pair is installed, and an old one ends when it expires or with
 * terminal-revoke (which refuses every certificate of the terminal).
 */
static int tcert_renew(const char *dir, const char *store, const char *terminal,
		       const char *out, pos_err *e)
{
	char p[PATH_MAX], url[300], conf[4096], kid[KEYS_KID_LEN + 1], until[TIME_RFC3339_LEN];
	char serial[PKI_SERIAL_HEX], old[512];
	struct revoke_set rs = { .n = 0 };
	unsigned char pk[32];
	struct cconf cf;
	EVP_PKEY *ca_key = NULL, *key = NULL;
	X509 *ca = NULL, *cert = NULL;
	size_t conf_len = 0;
	int rc, wildcard = 0, miss;
	struct stat st;
	time_t not_after = 0;

	if ((rc = setup_join(p, dir, "central.conf", e)) < 0 || (rc = cconf_load(p, &cf, e)) < 0)
		return rc;
	if ((rc = setup_central_url(&cf, url, sizeof url, &wildcard, e)) < 0 ||
	    (rc = tcert_conf(store, terminal, url, conf, sizeof conf, &conf_len, e)) < 0)
		return rc;
	if ((rc = setup_load_ca(dir, &ca, &ca_key, e)) < 0)
		goto out;
	if ((rc = revoke_find(dir, ca, store, terminal, &rs, e)) < 0)
		goto out;
	if (rs.n == 0) {
		rc = err_set(e, POS_ENOTFOUND,
			     "--renew: no certificate of terminal %s of store %s in %s/%s; issue its "
			     "first one without --renew",
			     terminal, store, dir, PKI_ISSUED_DIR);
		goto out;
	}
	revoke_serials(&rs, old, sizeof old);
	if ((rc = setup_join(p, dir, "central.pub", e)) < 0 ||
	    (rc = keys_load_public(p, pk, kid, e)) < 0)
		goto out;
	if (mkdir(out, 0700) < 0 && errno != EEXIST) {
		rc = err_set(e, POS_EIO, "%s: cannot create: %s", out, strerror(errno));
		goto out;
	}
	if (stat(out, &st) < 0 || !S_ISDIR(st.st_mode)) {
		rc = err_set(e, POS_ECONFLICT, "%s exists and is not a folder", out);
		goto out;
	}
	rc = pki_issue_client(ca_key, ca, store, terminal, PKI_CLIENT_DAYS, &key, &cert, e);
	if (rc < 0 || (rc = tcert_index(dir, cert, e)) < 0 || (rc = pki_serial_hex(cert, serial, e)) < 0)
		goto out;
	/* The key first: a crash between the two renames leaves a pair that
	 * does not match, which the agent refuses by name; renewing again
	 * mends it. */
	if ((rc = renew_replace(out, "terminal.key", NULL, key, e)) < 0 ||
	    (rc = renew_replace(out, "terminal.crt", cert, NULL, e)) < 0)
		goto out;
	if ((miss = rc = renew_missing(out, "ca.crt", p, e)) < 0 ||
	    (miss && (rc = pki_write_cert(p, ca, e)) < 0))
		goto out;
	if ((miss = rc = renew_missing(out, "central.pub", p, e)) < 0 ||
	    (miss && (rc = keys_save_public(p, pk, e)) < 0))
		goto out;
	if ((miss = rc = renew_missing(out, "terminal.conf", p, e)) < 0 ||
	    (miss && (rc = pki_write_file(p, conf, conf_len, 0644, e)) < 0))
		goto out;
	rc = 0;
	if ((rc = setup_join(p, out, "terminal.crt", e)) < 0 ||
	    (rc = pki_cert_not_after(p, &not_after, e)) < 0)
		goto out;
	time_format_rfc3339((int64_t)not_after * 1000, until);
	until[10] = '\0';
	printf("pos-central terminal-cert: renewed terminal %s of store %s in %s\n"
	       "  terminal.crt, terminal.key  new key and certificate %s, valid until %s\n"
	       "  still valid until they expire or terminal-revoke: %s\n"
	       "Install the new pair on the terminal and restart its agent.\n",
	       terminal, store, out, serial, until, old);
out:
	revoke_set_free(&rs);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	X509_free(ca);
	X509_free(cert);
	return rc;
}

int terminal_cert_main(int argc, char **argv)
{
	const char *dir = NULL, *store = NULL, *terminal = NULL, *out = NULL;
	pos_err e = { 0 };
	int renew = 0;

	for (int i = 1; i < argc; i++) {
		int m;

		if (setup_is_help(argv[i])) {
			printf("%s\n", TCERT_USAGE);
			return 0;
		}
		if (strcmp(argv[i], "--renew") == 0) {
			renew = 1;
			continue;
		}
		if ((m = setup_opt(argc, argv, &i, "--store", &store)) == 0 &&
		    (m = setup_opt(argc, argv, &i, "--terminal", &terminal)) == 0 &&
		    (m = setup_opt(argc, argv, &i, "--out", &out)) == 0) {
			if (argv[i][0] == '-' && argv[i][1] != '\0')
				return setup_usage_error("terminal-cert", TCERT_USAGE,
							 "unknown option %s", argv[i]);
			if (dir)
				return setup_usage_error("terminal-cert", TCERT_USAGE, "one DIR only");
			dir = argv[i];
			continue;
		}
		if (m < 0)
			return setup_usage_error("terminal-cert", TCERT_USAGE, "%s needs a value",
						 argv[i]);
	}
	if (!dir || !store || !terminal || !out || !dir[0] || !out[0])
		return setup_usage_error("terminal-cert", TCERT_USAGE,
					 "DIR, --store, --terminal and --out are required");
	if (!ids_valid(store))
		return setup_usage_error("terminal-cert", TCERT_USAGE,
					 "--store must match [A-Za-z0-9._-]{1,64}");
	if (!ids_valid(terminal))
		return setup_usage_error("terminal-cert", TCERT_USAGE,
					 "--terminal must match [A-Za-z0-9._-]{1,64}");
	if (strcmp(terminal, PKI_CONTROLLER_CN) == 0)
		return setup_usage_error("terminal-cert", TCERT_USAGE,
					 "'%s' names a store's controller (pos-central store-cert)",
					 PKI_CONTROLLER_CN);
	if ((renew ? tcert_renew(dir, store, terminal, out, &e)
		   : tcert_issue(dir, store, terminal, out, &e)) < 0)
		return setup_fail("terminal-cert", &e);
	return 0;
}

static int scert_conf(const char *store, const char *listen, const char *url, char *out,
		      size_t cap, size_t *len, pos_err *e)
{
	int n = snprintf(
		out, cap,
		"; store.conf for the controller of store %s, written by pos-central store-cert.\n"
		"; Relative paths are relative to this file's folder; unknown keys are errors.\n"
		"[store]\n"
		"id = %s\n"
		"[listen]\n"
		"address = %s\n"
		"[tls]                     ; the lanes: certificates of this CA and store only\n"
		"ca = ca.crt\n"
		"cert = store.crt\n"
		"key = store.key\n"
		"[central]\n"
		"url = %s\n"
		"ca = ca.crt\n"
		"cert = store.crt\n"
		"key = store.key\n"
		"[tlog]\n"
		"path = tlog.db\n"
		"keep_days = 90\n",
		store, store, listen, url);
	if (n < 0 || (size_t)n >= cap)
		return err_set(e, POS_ETOOBIG, "store.conf too long");
	*len = (size_t)n;
	return 0;
}

/* A controller's certificate (its lanes' server and central's client) and
 * its store.conf. hosts: the names or addresses lanes reach it by. */
static int scert_issue(const char *dir, const char *store, const char *const *hosts,
		       size_t nhosts, const char *out, pos_err *e)
{
	char p[PATH_MAX], url[300], conf[4096], until[TIME_RFC3339_LEN], listen[32];
	const char *dns[SCERT_HOSTS_MAX + 1] = { 0 }, *ips[SCERT_HOSTS_MAX + 1] = { 0 };
	size_t nd = 0, ni = 0, conf_len = 0;
	unsigned char addr[16];
	struct cconf cf;
	EVP_PKEY *ca_key = NULL, *key = NULL;
	X509 *ca = NULL, *cert = NULL;
	int rc, wildcard = 0, written = 0;
	time_t not_after = 0;

	for (size_t i = 0; i < nhosts; i++) {
		if (inet_pton(AF_INET, hosts[i], addr) == 1 || inet_pton(AF_INET6, hosts[i], addr) == 1)
			ips[ni++] = hosts[i];
		else
			dns[nd++] = hosts[i];
	}
	/* Only loopback named: listen there; otherwise on every address. */
	snprintf(listen, sizeof listen, "%s:%s",
		 nd == 1 && ni == 1 && strcmp(dns[0], "localhost") == 0 &&
				 strcmp(ips[0], "127.0.0.1") == 0
			 ? "127.0.0.1"
			 : "0.0.0.0",
		 SCERT_PORT);
	if ((rc = setup_join(p, dir, "central.conf", e)) < 0 || (rc = cconf_load(p, &cf, e)) < 0)
		return rc;
	if ((rc = setup_central_url(&cf, url, sizeof url, &wildcard, e)) < 0)
		return rc;
	if ((rc = scert_conf(store, listen, url, conf, sizeof conf, &conf_len, e)) < 0)
		return rc;
	if ((rc = setup_load_ca(dir, &ca, &ca_key, e)) < 0)
		goto out;
	if ((rc = setup_prepare_out(out, scert_files, SCERT_NFILES, e)) < 0)
		goto out;
	rc = pki_issue_controller(ca_key, ca, store, dns, ips, PKI_SERVER_DAYS, &key, &cert, e);
	if (rc < 0)
		goto out;
	/* Indexed like a terminal's: terminal-revoke --terminal store-controller
	 * refuses it. */
	if ((rc = tcert_index(dir, cert, e)) < 0)
		goto out;
	written = 1;
	if ((rc = setup_join(p, out, "store.key", e)) < 0 || (rc = pki_write_key(p, key, e)) < 0)
		goto out;
	if ((rc = setup_join(p, out, "store.crt", e)) < 0 || (rc = pki_write_cert(p, cert, e)) < 0)
		goto out;
	if ((rc = setup_join(p, out, "ca.crt", e)) < 0 || (rc = pki_write_cert(p, ca, e)) < 0)
		goto out;
	if ((rc = setup_join(p, out, "store.conf", e)) < 0 ||
	    (rc = pki_write_file(p, conf, conf_len, 0644, e)) < 0)
		goto out;
	if ((rc = setup_join(p, out, "store.crt", e)) < 0 ||
	    (rc = pki_cert_not_after(p, &not_after, e)) < 0)
		goto out;
	time_format_rfc3339((int64_t)not_after * 1000, until);
	until[10] = '\0';
	printf("pos-central store-cert: controller of store %s in %s\n"
	       "  store.crt, store.key  OU=%s, CN=%s (server and client), valid until %s\n"
	       "  ca.crt                central's CA\n"
	       "  store.conf            listens on %s, forwards to %s\n"
	       "Lanes of store %s: [central] url = https://%s:%s %s\n",
	       store, out, store, PKI_CONTROLLER_CN, until, listen, url, store,
	       ni ? ips[0] : dns[0], SCERT_PORT, url);
	if (wildcard)
		fprintf(stderr,
			"pos-central store-cert: central listens on %s; set [central] url in "
			"%s/store.conf to an address the controller can reach\n",
			cf.listen, out);
out:
	if (rc < 0 && written)
		setup_remove_out(out, scert_files, SCERT_NFILES);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	X509_free(ca);
	X509_free(cert);
	return rc;
}

int store_cert_main(int argc, char **argv)
{
	const char *dir = NULL, *store = NULL, *out = NULL, *host = NULL;
	const char *hosts[SCERT_HOSTS_MAX] = { "localhost", "127.0.0.1" };
	size_t nhosts = 0;
	pos_err e = { 0 };

	for (int i = 1; i < argc; i++) {
		int m;

		if (setup_is_help(argv[i])) {
			printf("%s\n", SCERT_USAGE);
			return 0;
		}
		if ((m = setup_opt(argc, argv, &i, "--host", &host)) == 1) {
			if (nhosts >= SCERT_HOSTS_MAX)
				return setup_usage_error("store-cert", SCERT_USAGE,
							 "at most %d --host", SCERT_HOSTS_MAX);
			hosts[nhosts++] = host;
			continue;
		}
		if (m == 0 && (m = setup_opt(argc, argv, &i, "--store", &store)) == 0 &&
		    (m = setup_opt(argc, argv, &i, "--out", &out)) == 0) {
			if (argv[i][0] == '-' && argv[i][1] != '\0')
				return setup_usage_error("store-cert", SCERT_USAGE, "unknown option %s",
							 argv[i]);
			if (dir)
				return setup_usage_error("store-cert", SCERT_USAGE, "one DIR only");
			dir = argv[i];
			continue;
		}
		if (m < 0)
			return setup_usage_error("store-cert", SCERT_USAGE, "%s needs a value", argv[i]);
	}
	if (!dir || !store || !out || !dir[0] || !out[0])
		return setup_usage_error("store-cert", SCERT_USAGE,
					 "DIR, --store and --out are required");
	if (!ids_valid(store))
		return setup_usage_error("store-cert", SCERT_USAGE,
					 "--store must match [A-Za-z0-9._-]{1,64}");
	if (nhosts == 0)
		nhosts = 2; /* localhost and 127.0.0.1 */
	if (scert_issue(dir, store, hosts, nhosts, out, &e) < 0)
		return setup_fail("store-cert", &e);
	return 0;
}

static void rotate_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int rotate_suffix(char out[PATH_MAX], const char *path, const char *suffix, pos_err *e)
{
	int n = snprintf(out, PATH_MAX, "%s%s", path, suffix);

	if (n < 0 || n >= PATH_MAX)
		return err_set(e, POS_ETOOBIG, "%s: path too long", path);
	return 0;
}

/*
 * Order matters for a crash at any point: the old key is first saved under
 * the retired folder (so anything sealed to it still opens), then the new
 * pair is written beside the current files and renamed over them, private
 * key first. A central.pub left one step behind names a retired key, which
 * still opens.
 */
static int rotate_key(const char *conf, char old_kid[KEYS_KID_LEN + 1],
		      char new_kid[KEYS_KID_LEN + 1], char retired[PATH_MAX],
		      char pub[PATH_MAX], pos_err *e)
{
	struct hpke_keypair old, nw;
	struct cconf cf;
	char name[KEYS_KID_LEN + 8], tmp_key[PATH_MAX], tmp_pub[PATH_MAX];
	struct stat st;
	int rc;

	memset(&old, 0, sizeof old);
	memset(&nw, 0, sizeof nw);
	if ((rc = cconf_load(conf, &cf, e)) < 0)
		return rc;
	if ((rc = keys_load_private(cf.hpke_key, &old, e)) < 0)
		goto out;
	memcpy(old_kid, old.kid, KEYS_KID_LEN + 1);
	if (mkdir(cf.hpke_retired, 0700) < 0 && errno != EEXIST) {
		rc = err_set(e, POS_EIO, "%s: cannot create: %s", cf.hpke_retired, strerror(errno));
		goto out;
	}
	if (stat(cf.hpke_retired, &st) < 0 || !S_ISDIR(st.st_mode)) {
		rc = err_set(e, POS_EIO, "%s is not a folder", cf.hpke_retired);
		goto out;
	}
	snprintf(name, sizeof name, "%s.key", old.kid);
	if ((rc = setup_join(retired, cf.hpke_retired, name, e)) < 0)
		goto out;
	if (access(retired, F_OK) == 0) {
		rc = err_set(e, POS_ECONFLICT, "%s already exists; the current key was retired before",
			     retired);
		goto out;
	}
	if ((rc = keys_save_private(retired, &old, e)) < 0)
		goto out;
	rotate_sync_dir(cf.hpke_retired);

	if ((rc = keys_generate(&nw, e)) < 0)
		goto out;
	memcpy(new_kid, nw.kid, KEYS_KID_LEN + 1);
	if ((rc = setup_join(pub, cf.dir, "central.pub", e)) < 0 ||
	    (rc = rotate_suffix(tmp_key, cf.hpke_key, ".new", e)) < 0 ||
	    (rc = rotate_suffix(tmp_pub, pub, ".new", e)) < 0)
		goto out;
	/* A stale .new from an interrupted rotation is ours to replace. */
	unlink(tmp_key);
	unlink(tmp_pub);
	if ((rc = keys_save_private(tmp_key, &nw, e)) < 0)
		goto out;
	if ((rc = keys_save_public(tmp_pub, nw.pk, e)) < 0) {
		unlink(tmp_key);
		goto out;
	}
	if (rename(tmp_key, cf.hpke_key) < 0) {
		rc = err_set(e, POS_EIO, "%s: rename failed: %s", cf.hpke_key, strerror(errno));
		unlink(tmp_key);
		unlink(tmp_pub);
		goto out;
	}
	if (rename(tmp_pub, pub) < 0) {
		rc = err_set(e, POS_EIO, "%s: rename failed: %s (the new public key is in %s)", pub,
			     strerror(errno), tmp_pub);
		goto out;
	}
	rotate_sync_dir(cf.dir);
out:
	keys_wipe(&old);
	keys_wipe(&nw);
	return rc;
}

int rotate_key_main(int argc, char **argv)
{
	const char *conf = NULL;
	char old_kid[KEYS_KID_LEN + 1] = "", new_kid[KEYS_KID_LEN + 1] = "";
	char retired[PATH_MAX] = "", pub[PATH_MAX] = "";
	pos_err e = { 0 };

	for (int i = 1; i < argc; i++) {
		int m;

		if (setup_is_help(argv[i])) {
			printf("%s\n", ROTATE_USAGE);
			return 0;
		}
		m = setup_opt(argc, argv, &i, "-c", &conf);
		if (m == 0)
			m = setup_opt(argc, argv, &i, "--config", &conf);
		if (m < 0)
			return setup_usage_error("rotate-key", ROTATE_USAGE, "%s needs a value",
						 argv[i]);
		if (m == 0)
			return setup_usage_error("rotate-key", ROTATE_USAGE, "unexpected argument %s",
						 argv[i]);
	}
	if (!conf || !conf[0])
		return setup_usage_error("rotate-key", ROTATE_USAGE, "-c CONF is required");
	if (rotate_key(conf, old_kid, new_kid, retired, pub, &e) < 0)
		return setup_fail("rotate-key", &e);
	printf("pos-central rotate-key: new HPKE key pair, kid %s\n"
	       "  the previous key (kid %s) is kept as %s and still opens EncTIDs sealed to it\n"
	       "  restart pos-central: it then serves %s on GET /v1/keys, and every\n"
	       "  agent and controller fetches it by itself (nothing to copy)\n",
	       new_kid, old_kid, retired, pub);
	return 0;
}

/* One line: the problem and the usage (design section 5). */
static int revoke_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int revoke_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pos-central terminal-revoke: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (%s)\n", REVOKE_USAGE);
	return 2;
}

static void revoke_set_free(struct revoke_set *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		X509_free(rs->certs[i]);
	rs->n = 0;
}

/* Takes cert into rs unless a certificate with its serial is there. */
static int revoke_take(struct revoke_set *rs, X509 *cert, pos_err *e)
{
	for (size_t i = 0; i < rs->n; i++)
		if (ASN1_INTEGER_cmp(X509_get0_serialNumber(rs->certs[i]),
				     X509_get0_serialNumber(cert)) == 0) {
			X509_free(cert);
			return 0;
		}
	if (rs->n >= REVOKE_MAX) {
		X509_free(cert);
		return err_set(e, POS_ETOOBIG, "more than %d certificates for one terminal",
			       REVOKE_MAX);
	}
	rs->certs[rs->n++] = cert;
	return 0;
}

/* Every certificate in DIR/issued that the CA issued to OU=store,
 * CN=terminal. A home without the folder has none. */
static int revoke_find(const char *dir, X509 *ca, const char *store, const char *terminal,
		       struct revoke_set *rs, pos_err *e)
{
	char idx[PATH_MAX], p[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if ((rc = setup_join(idx, dir, PKI_ISSUED_DIR, e)) < 0)
		return rc;
	if (!(d = opendir(idx)))
		return errno == ENOENT ? 0
				       : err_set(e, POS_EIO, "%s: cannot read: %s", idx,
						 strerror(errno));
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		X509 *x = NULL;

		if (len < 5 || strcmp(de->d_name + len - 4, ".pem") != 0)
			continue;
		if ((rc = setup_join(p, idx, de->d_name, e)) < 0)
			break;
		/* A file that is not a certificate of ours is not the terminal's. */
		if (pki_load_cert(p, &x, NULL) < 0)
			continue;
		if (!pki_is_terminal(x, store, terminal) || !pki_issued_by(x, ca)) {
			X509_free(x);
			continue;
		}
		if ((rc = revoke_take(rs, x, e)) < 0)
			break;
	}
	closedir(d);
	return rc;
}

/* A certificate named on the command line: ours, and the terminal's. */
static int revoke_cert_file(const char *path, X509 *ca, const char *store,
			    const char *terminal, struct revoke_set *rs, pos_err *e)
{
	X509 *x = NULL;
	int rc;

	if ((rc = pki_load_cert(path, &x, e)) < 0)
		return rc;
	if (!pki_issued_by(x, ca)) {
		X509_free(x);
		return err_set(e, POS_EINVAL, "%s was not issued by this central's CA", path);
	}
	if (!pki_is_terminal(x, store, terminal)) {
		X509_free(x);
		return err_set(e, POS_EINVAL, "%s is not the certificate of terminal %s of store %s",
			       path, terminal, store);
	}
	return revoke_take(rs, x, e);
}

/* "A, B, C": the serials of rs, cut at cap. */
static void revoke_serials(const struct revoke_set *rs, char *out, size_t cap)
{
	char hex[PKI_SERIAL_HEX];
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < rs->n && off < cap; i++) {
		int n;

		if (pki_serial_hex(rs->certs[i], hex, NULL) < 0)
			snprintf(hex, sizeof hex, "?");
		n = snprintf(out + off, cap - off, "%s%s", i ? ", " : "", hex);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/*
 * Adds every certificate of the terminal to DIR/crl.pem, signed by the CA
 * and replaced atomically; serve notices the new file within a second.
 * The home's folder is locked meanwhile so that two revocations at once
 * cannot drop each other's entries. Nothing to add leaves the file as it
 * is.
 */
static int revoke_terminal(const char *dir, const char *store, const char *terminal,
			   const char *cert_file, pos_err *e)
{
	struct revoke_set rs = { .n = 0 };
	EVP_PKEY *ca_key = NULL;
	X509 *ca = NULL;
	X509_CRL *prev = NULL, *crl = NULL;
	char p[PATH_MAX], serials[512];
	size_t added = 0;
	int rc, lock = -1;

	if ((rc = setup_load_ca(dir, &ca, &ca_key, e)) < 0)
		goto out;
	lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lock < 0 || flock(lock, LOCK_EX) != 0) {
		rc = err_set(e, POS_EIO, "%s: cannot lock: %s", dir, strerror(errno));
		goto out;
	}
	if ((rc = revoke_find(dir, ca, store, terminal, &rs, e)) < 0)
		goto out;
	if (cert_file && (rc = revoke_cert_file(cert_file, ca, store, terminal, &rs, e)) < 0)
		goto out;
	if (rs.n == 0) {
		rc = err_set(e, POS_ENOTFOUND,
			     "no certificate of terminal %s of store %s in %s/%s (for one issued "
			     "before central kept that folder, add --cert FILE)",
			     terminal, store, dir, PKI_ISSUED_DIR);
		goto out;
	}
	if ((rc = setup_join(p, dir, PKI_CRL_FILE, e)) < 0)
		goto out;
	rc = pki_crl_load(p, ca, &prev, e);
	if (rc == POS_ENOTFOUND)
		rc = 0;
	if (rc < 0)
		goto out;
	if ((rc = pki_crl_make(ca_key, ca, prev, rs.certs, rs.n, &crl, &added, e)) < 0)
		goto out;
	revoke_serials(&rs, serials, sizeof serials);
	if (added == 0) {
		printf("pos-central terminal-revoke: terminal %s of store %s was already revoked "
		       "(certificate %s)\n",
		       terminal, store, serials);
		goto out;
	}
	if ((rc = pki_write_crl(p, crl, e)) < 0)
		goto out;
	rotate_sync_dir(dir);
	printf("pos-central terminal-revoke: revoked terminal %s of store %s (certificate %s) in "
	       "%s; serve refuses it from its next handshake\n",
	       terminal, store, serials, p);
out:
	if (lock >= 0)
		close(lock);
	revoke_set_free(&rs);
	X509_CRL_free(prev);
	X509_CRL_free(crl);
	EVP_PKEY_free(ca_key);
	X509_free(ca);
	return rc;
}

int terminal_revoke_main(int argc, char **argv)
{
	const char *dir = NULL, *store = NULL, *terminal = NULL, *cert = NULL;
	pos_err e = { 0 };

	for (int i = 1; i < argc; i++) {
		int m;

		if (setup_is_help(argv[i])) {
			printf("%s\n", REVOKE_USAGE);
			return 0;
		}
		if ((m = setup_opt(argc, argv, &i, "--store", &store)) == 0 &&
		    (m = setup_opt(argc, argv, &i, "--terminal", &terminal)) == 0 &&
		    (m = setup_opt(argc, argv, &i, "--cert", &cert)) == 0) {
			if (argv[i][0] == '-' && argv[i][1] != '\0')
				return revoke_usage("unknown option %s", argv[i]);
			if (dir)
				return revoke_usage("one DIR only");
			dir = argv[i];
			continue;
		}
		if (m < 0)
			return revoke_usage("%s needs a value", argv[i]);
	}
	if (!dir || !store || !terminal || !dir[0])
		return revoke_usage("DIR, --store and --terminal are required");
	if (!ids_valid(store))
		return revoke_usage("--store must match [A-Za-z0-9._-]{1,64}");
	if (!ids_valid(terminal))
		return revoke_usage("--terminal must match [A-Za-z0-9._-]{1,64}");
	if (cert && !cert[0])
		return revoke_usage("--cert needs a file");
	if (revoke_terminal(dir, store, terminal, cert, &e) < 0)
		return setup_fail("terminal-revoke", &e);
	return 0;
}

/* ------------------------------------------------------------ terminal list */

struct tlist_row {
	char store[IDS_MAX + 1];
	char terminal[IDS_MAX + 1];
	char serial[PKI_SERIAL_HEX];
	time_t not_after;
	const char *state; /* valid, expired, revoked */
	int64_t last_ms;   /* the terminal's newest basket at its lane; 0: none */
};

struct tlist {
	struct tlist_row *rows;
	size_t n, cap;
	size_t skipped; /* files in issued/ that are not certificates of this CA */
	bool seen_unknown; /* the store could not be read: no last seen */
};

static int tlist_cmp(const void *a, const void *b)
{
	const struct tlist_row *x = a, *y = b;
	int c = strcmp(x->store, y->store);

	if (c == 0)
		c = strcmp(x->terminal, y->terminal);
	if (c == 0)
		c = x->not_after < y->not_after ? -1 : x->not_after > y->not_after;
	return c;
}

/* One subject entry as text, "?" when absent or not an id. */
static void tlist_name(X509 *cert, int nid, char out[IDS_MAX + 1])
{
	char buf[IDS_MAX + 2];
	int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, buf, sizeof buf);

	if (n <= 0 || !ids_valid(buf))
		snprintf(out, IDS_MAX + 1, "?");
	else
		memcpy(out, buf, (size_t)n + 1);
	ERR_clear_error();
}

static int tlist_add(struct tlist *tl, X509 *cert, X509_CRL *crl, time_t now, pos_err *e)
{
	struct tlist_row *r;
	struct tm tm;

	if (tl->n == tl->cap) {
		size_t cap = tl->cap ? tl->cap * 2 : 64;
		struct tlist_row *nr;

		if (tl->n >= TLIST_MAX)
			return err_set(e, POS_ETOOBIG, "more than %d certificates issued", TLIST_MAX);
		if (cap > TLIST_MAX)
			cap = TLIST_MAX;
		if (!(nr = realloc(tl->rows, cap * sizeof *nr)))
			return err_set(e, POS_ENOMEM, "out of memory");
		tl->rows = nr;
		tl->cap = cap;
	}
	r = &tl->rows[tl->n];
	memset(r, 0, sizeof *r);
	tlist_name(cert, NID_organizationalUnitName, r->store);
	tlist_name(cert, NID_commonName, r->terminal);
	if (pki_serial_hex(cert, r->serial, NULL) < 0)
		snprintf(r->serial, sizeof r->serial, "?");
	memset(&tm, 0, sizeof tm);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm))
		r->not_after = timegm(&tm);
	r->state = pki_crl_revoked(crl, cert) ? "revoked"
		   : r->not_after <= now       ? "expired"
					       : "valid";
	tl->n++;
	return 0;
}

/* Every certificate in the home's issued folder that its CA signed. */
static int tlist_read(const struct cconf *cf, struct tlist *tl, pos_err *e)
{
	char idx[PATH_MAX], p[PATH_MAX];
	X509 *ca = NULL;
	X509_CRL *crl = NULL;
	struct dirent *de;
	DIR *d = NULL;
	time_t now = time(NULL);
	int rc;

	if ((rc = pki_load_cert(cf->tls_ca, &ca, e)) < 0)
		return rc;
	if ((rc = setup_join(p, cf->dir[0] ? cf->dir : ".", PKI_CRL_FILE, e)) < 0)
		goto out;
	rc = pki_crl_load(p, ca, &crl, e);
	if (rc == POS_ENOTFOUND)
		rc = 0;
	if (rc < 0 || (rc = setup_join(idx, cf->dir[0] ? cf->dir : ".", PKI_ISSUED_DIR, e)) < 0)
		goto out;
	if (!(d = opendir(idx))) {
		if (errno != ENOENT)
			rc = err_set(e, POS_EIO, "%s: cannot read: %s", idx, strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		X509 *x = NULL;

		if (len < 5 || strcmp(de->d_name + len - 4, ".pem") != 0)
			continue;
		if ((rc = setup_join(p, idx, de->d_name, e)) < 0)
			goto out;
		if (pki_load_cert(p, &x, NULL) < 0 || !pki_issued_by(x, ca)) {
			X509_free(x);
			tl->skipped++;
			continue;
		}
		rc = tlist_add(tl, x, crl, now, e);
		X509_free(x);
		if (rc < 0)
			goto out;
	}
	qsort(tl->rows, tl->n, sizeof *tl->rows, tlist_cmp);
out:
	if (d)
		closedir(d);
	X509_CRL_free(crl);
	X509_free(ca);
	return rc;
}

/* Sets last_ms on every row (each certificate) of t's terminal. */
static int tlist_seen_row(const struct store_terminal_seen *t, void *arg)
{
	struct tlist *tl = arg;
	size_t lo = 0, hi = tl->n;

	while (lo < hi) { /* the first row not before (t->store, t->terminal) */
		size_t mid = lo + (hi - lo) / 2;
		const struct tlist_row *r = &tl->rows[mid];
		int c = strcmp(r->store, t->store);

		if (c == 0)
			c = strcmp(r->terminal, t->terminal);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < tl->n && strcmp(tl->rows[lo].store, t->store) == 0 &&
	       strcmp(tl->rows[lo].terminal, t->terminal) == 0;
	     lo++)
		tl->rows[lo].last_ms = t->last_ms;
	return 0;
}

/* Each terminal's last basket from the store, read-only (never creating
 * or migrating it: serve owns that). A home whose SQLite database does not
 * exist yet has seen no terminal. */
static int tlist_seen(const struct cconf *cf, struct tlist *tl, pos_err *e)
{
	struct store_where w;
	struct store *s = NULL;
	int rc;

	cconf_store_where(cf, CCONF_STORE_READ, &w);
	w.readonly = true;
	if (w.backend == STORE_SQLITE && access(w.path, F_OK) != 0 && errno == ENOENT)
		return 0;
	if ((rc = store_open_at(&w, &s, e)) == 0)
		rc = store_terminals_seen(s, tlist_seen_row, tl, e);
	store_close(s);
	return rc;
}

/* A time in whole seconds, UTC. */
static void tlist_time(int64_t ms, char out[TIME_RFC3339_LEN])
{
	time_format_rfc3339(ms - ms % 1000, out);
	if (strlen(out) == 24) /* whole seconds: no milliseconds */
		memcpy(out + 19, "Z", 2);
}

static void tlist_print(const struct tlist *tl, int csv)
{
	int ws = 5, wt = 8, wn = 6;
	char until[TIME_RFC3339_LEN], seen[TIME_RFC3339_LEN];

	if (csv)
		printf("store,terminal,serial,expires,state,last_seen\n");
	for (size_t i = 0; !csv && i < tl->n; i++) {
		const struct tlist_row *r = &tl->rows[i];

		if ((int)strlen(r->store) > ws)
			ws = (int)strlen(r->store);
		if ((int)strlen(r->terminal) > wt)
			wt = (int)strlen(r->terminal);
		if ((int)strlen(r->serial) > wn)
			wn = (int)strlen(r->serial);
	}
	if (!csv)
		printf("%-*s  %-*s  %-*s  %-20s  %-7s  %s\n", ws, "STORE", wt, "TERMINAL", wn,
		       "SERIAL", "EXPIRES", "STATE", "LAST SEEN");
	for (size_t i = 0; i < tl->n; i++) {
		const struct tlist_row *r = &tl->rows[i];

		tlist_time((int64_t)r->not_after * 1000, until);
		if (tl->seen_unknown)
			snprintf(seen, sizeof seen, csv ? "" : "?");
		else if (r->last_ms == 0)
			snprintf(seen, sizeof seen, csv ? "" : "never");
		else
			tlist_time(r->last_ms, seen);
		if (csv)
			printf("%s,%s,%s,%s,%s,%s\n", r->store, r->terminal, r->serial, until,
			       r->state, seen);
		else
			printf("%-*s  %-*s  %-*s  %-20s  %-7s  %s\n", ws, r->store, wt, r->terminal,
			       wn, r->serial, until, r->state, seen);
	}
}

int terminal_main(int argc, char **argv)
{
	const char *conf = NULL, *format = NULL;
	struct tlist tl = { 0 };
	struct cconf cf;
	pos_err e = { 0 };
	int csv = 0, rc;

	if (argc < 2)
		return setup_usage_line("terminal", TLIST_USAGE, "missing action (list)");
	if (setup_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
		printf("%s\n", TLIST_USAGE);
		return 0;
	}
	if (strcmp(argv[1], "list") != 0)
		return setup_usage_line("terminal", TLIST_USAGE, "unknown action (list)");
	for (int i = 2; i < argc; i++) {
		int m;

		if (setup_is_help(argv[i])) {
			printf("%s\n", TLIST_USAGE);
			return 0;
		}
		if ((m = setup_opt(argc, argv, &i, "-c", &conf)) == 0 &&
		    (m = setup_opt(argc, argv, &i, "--config", &conf)) == 0 &&
		    (m = setup_opt(argc, argv, &i, "--format", &format)) == 0)
			return setup_usage_line("terminal list", TLIST_USAGE, "%s '%s'",
						argv[i][0] == '-' ? "unknown option" : "unexpected argument",
						strpbrk(argv[i], "0123456789") ? "..." : argv[i]);
		if (m < 0)
			return setup_usage_line("terminal list", TLIST_USAGE, "%s needs a value", argv[i]);
	}
	if (!conf || !conf[0])
		return setup_usage_line("terminal list", TLIST_USAGE, "-c CONF is required");
	if (format && strcmp(format, "csv") == 0)
		csv = 1;
	else if (format && strcmp(format, "table") != 0)
		return setup_usage_line("terminal list", TLIST_USAGE, "--format must be table or csv");
	if ((rc = cconf_load(conf, &cf, &e)) == 0)
		rc = tlist_read(&cf, &tl, &e);
	if (rc < 0) {
		free(tl.rows);
		return setup_fail("terminal list", &e);
	}
	if (tlist_seen(&cf, &tl, &e) < 0) {
		tl.seen_unknown = true;
		fprintf(stderr, "pos-central terminal list: no last seen: %s\n", e.msg);
	}
	tlist_print(&tl, csv);
	if (tl.skipped)
		fprintf(stderr, "pos-central terminal list: %zu file(s) in %s/%s are not certificates of "
				"this CA (left out)\n",
			tl.skipped, cf.dir, PKI_ISSUED_DIR);
	free(tl.rows);
	return 0;
}
