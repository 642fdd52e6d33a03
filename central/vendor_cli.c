#include "vendor_cli.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cconf.h"
#include "cli.h"
#include "codec.h"
#include "err.h"
#include "gtin.h"
#include "ids.h"
#include "keys.h"
#include "store.h"
#include "store_vendor.h"
#include "timeutil.h"


static const char vendor_usage[] =
	"usage: pos-central vendor add -c CONF --id V --name N --backend URL\n"
	"       pos-central vendor report -c CONF --event ID\n";
static const char relate_usage[] =
	"usage: pos-central items relate -c CONF GTIN_A GTIN_B --kind requires|accessory\n";
static const char related_usage[] =
	"usage: pos-central items related -c CONF GTIN [--min-baskets N] [--min-lift-pct P]\n"
	"  prints GTIN, baskets with both, lift, name: one item a line, best lift first\n";

static bool vc_help(const char *a)
{
	return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "help") == 0;
}

static void vc_actor(char *out, size_t cap)
{
	char name[64], buf[1024];
	struct passwd pw, *res = NULL;

	if (getlogin_r(name, sizeof name) == 0 && name[0])
		snprintf(out, cap, "cli:%s", name);
	else if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &res) == 0 && res && res->pw_name)
		snprintf(out, cap, "cli:%.64s", res->pw_name);
	else
		snprintf(out, cap, "cli:uid%ld", (long)geteuid());
}

/* prefix + base64url of 32 random bytes. */
static int vc_random(const char *prefix, char *out, size_t cap, pos_err *e)
{
	unsigned char raw[32];
	size_t pl = strlen(prefix);
	int rc;

	if (RAND_bytes(raw, sizeof raw) != 1)
		return err_set(e, POS_ECRYPTO, "no random bytes");
	memcpy(out, prefix, pl);
	rc = b64url_encode(raw, sizeof raw, out + pl, cap - pl, e);
	OPENSSL_cleanse(raw, sizeof raw);
	return rc;
}

static bool vc_text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static bool vc_url_ok(const char *s)
{
	size_t n = strlen(s);

	if (n > STORE_VENDOR_URL_MAX ||
	    (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || s[i] == '?' || s[i] == '#')
			return false;
	return strlen(strstr(s, "://") + 3) > 0;
}

static int vendor_add(const char *conf, const char *id, const char *name, const char *backend)
{
	struct store_vendor v;
	struct cconf cf;
	struct store *s = NULL;
	struct stat st;
	char tok[64], actor[96], detail[160];
	unsigned char h[32];
	unsigned int hl = 0;
	pos_err e = { 0 };
	int rc;

	memset(&v, 0, sizeof v);
	snprintf(v.id, sizeof v.id, "%s", id);
	snprintf(v.name, sizeof v.name, "%s", name);
	snprintf(v.backend, sizeof v.backend, "%s", backend);
	if ((rc = vc_random("vt_", tok, sizeof tok, &e)) < 0 ||
	    (rc = vc_random("vs_", v.secret, sizeof v.secret, &e)) < 0)
		goto out;
	if (EVP_Digest(tok, strlen(tok), h, &hl, EVP_sha256(), NULL) != 1) {
		rc = err_set(&e, POS_ECRYPTO, "digest failed");
		goto out;
	}
	if ((rc = cconf_load(conf, &cf, &e)) < 0)
		goto out;
	if (stat(cf.k_vendor, &st) < 0 && (rc = keys_generate_hmac(cf.k_vendor, &e)) < 0)
		goto out;
	if ((rc = cconf_store_open(&cf, CCONF_STORE_WRITE, &s, &e)) < 0 || (rc = store_begin(s, &e)) < 0)
		goto out;
	rc = store_vendor_add(s, &v, h, time_now_ms(), &e);
	vc_actor(actor, sizeof actor);
	snprintf(detail, sizeof detail, "vendor=%s", v.id);
	if (rc == 0)
		rc = store_audit(s, actor, "vendor.add", detail, &e);
	if (rc == 0)
		rc = store_commit(s, &e);
	else
		store_rollback(s);
	if (rc == 0)
		printf("token %s\nsecret %s\n", tok, v.secret);
out:
	OPENSSL_cleanse(tok, sizeof tok);
	OPENSSL_cleanse(v.secret, sizeof v.secret);
	store_close(s);
	return rc < 0 ? cli_fail("vendor", &e) : CLI_OK;
}

static int vendor_report(const char *conf, const char *event)
{
	struct cconf cf;
	struct store *s = NULL;
	long reached = 0, rd = 0, acted = 0;
	pos_err e = { 0 };
	int rc;

	if ((rc = cconf_load(conf, &cf, &e)) == 0 && (rc = cconf_store_open(&cf, CCONF_STORE_WRITE, &s, &e)) == 0)
		rc = store_vendor_report(s, event, &reached, &rd, &acted, &e);
	store_close(s);
	if (rc < 0)
		return cli_fail("vendor", &e);
	printf("reached %ld\nread %ld\nacted %ld\n", reached, rd, acted);
	return CLI_OK;
}

int vendor_main(int argc, char **argv)
{
	const char *conf = NULL, *id = NULL, *name = NULL, *backend = NULL, *event = NULL;
	bool add;

	if (argc < 2)
		return cli_usage_error("vendor", "missing action (add, report)");
	if (vc_help(argv[1])) {
		fputs(vendor_usage, stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "report") != 0)
		return cli_usage_error("vendor", "unknown action '%s' (add, report)", argv[1]);
	add = strcmp(argv[1], "add") == 0;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (vc_help(a)) {
			fputs(vendor_usage, stdout);
			return CLI_OK;
		}
		if (i + 1 >= argc)
			return cli_usage_error("vendor", "unexpected argument '%s'", a);
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
			conf = argv[++i];
		else if (add && strcmp(a, "--id") == 0)
			id = argv[++i];
		else if (add && strcmp(a, "--name") == 0)
			name = argv[++i];
		else if (add && strcmp(a, "--backend") == 0)
			backend = argv[++i];
		else if (!add && strcmp(a, "--event") == 0)
			event = argv[++i];
		else
			return cli_usage_error("vendor", "unexpected argument '%s'", a);
	}
	if (!conf)
		return cli_usage_error("vendor", "-c CONF is required");
	if (!add) {
		if (!event || !event[0] || strlen(event) > STORE_VENDOR_REF_MAX)
			return cli_usage_error("vendor", "--event ID is required (1 to %d characters)",
					STORE_VENDOR_REF_MAX);
		return vendor_report(conf, event);
	}
	if (!id || !name || !backend)
		return cli_usage_error("vendor", "--id, --name and --backend are required");
	if (!ids_valid(id) || strlen(id) > STORE_VENDOR_ID_MAX)
		return cli_usage_error("vendor", "--id: 1 to %d of A-Z a-z 0-9 . _ -", STORE_VENDOR_ID_MAX);
	if (!vc_text_ok(name, STORE_VENDOR_NAME_MAX))
		return cli_usage_error("vendor", "--name: 1 to %d bytes without control characters",
				STORE_VENDOR_NAME_MAX);
	if (!vc_url_ok(backend))
		return cli_usage_error("vendor",
				"--backend: an http:// or https:// URL of at most %d bytes, "
				"without spaces, query or fragment",
				STORE_VENDOR_URL_MAX);
	return vendor_add(conf, id, name, backend);
}

/* A GTIN of 8, 12, 13 or 14 digits as GTIN-14 with a good check digit. */
static bool vc_gtin(const char *s, char out[GTIN_LEN + 1])
{
	size_t n = strlen(s);

	if ((n != 8 && n != 12 && n != 13 && n != 14) || strspn(s, "0123456789") != n)
		return false;
	memset(out, '0', GTIN_LEN - n);
	memcpy(out + GTIN_LEN - n, s, n + 1);
	return gtin14_valid(out);
}

static int vc_related_row(const struct store_related *r, void *arg)
{
	long *n = arg;

	printf("%s\t%ld\t%.2f\t%s\n", r->gtin, r->baskets, r->lift, r->name);
	(*n)++;
	return 0;
}

/* items related -c CONF GTIN [--min-baskets N] [--min-lift-pct P] */
int vendor_items_related(int argc, char **argv)
{
	const char *conf = NULL, *g = NULL, *mb = NULL, *ml = NULL;
	char gt[GTIN_LEN + 1];
	struct cconf cf;
	struct store *s = NULL;
	pos_err e = { 0 };
	long min_b, min_l, n = 0;
	char *end;
	int rc;

	for (int i = 2; i < argc; i++) {
		if (vc_help(argv[i])) {
			fputs(related_usage, stdout);
			return CLI_OK;
		}
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "--min-baskets") == 0 && i + 1 < argc)
			mb = argv[++i];
		else if (strcmp(argv[i], "--min-lift-pct") == 0 && i + 1 < argc)
			ml = argv[++i];
		else if (argv[i][0] != '-' && !g)
			g = argv[i];
		else
			return cli_usage_error("items", "unexpected argument '%s'", argv[i]);
	}
	if (!conf)
		return cli_usage_error("items", "-c CONF is required");
	if (!g || !vc_gtin(g, gt))
		return cli_usage_error("items", "related takes one GTIN with a good check digit");
	if ((rc = cconf_load(conf, &cf, &e)) < 0)
		return cli_fail("items", &e);
	min_b = cf.related_min_baskets;
	min_l = cf.related_min_lift_pct;
	if (mb && ((min_b = strtol(mb, &end, 10)) < 1 || *end))
		return cli_usage_error("items", "--min-baskets: a whole number from 1");
	if (ml && ((min_l = strtol(ml, &end, 10)) < 1 || *end))
		return cli_usage_error("items", "--min-lift-pct: a whole number from 1");
	if ((rc = cconf_store_open(&cf, CCONF_STORE_WRITE, &s, &e)) == 0)
		rc = store_items_related(s, gt, min_b, (double)min_l / 100.0, 100, vc_related_row, &n,
					 &e);
	store_close(s);
	if (rc < 0)
		return cli_fail("items", &e);
	if (n == 0)
		fprintf(stderr, "pos-central items: nothing bought with %s in %ld baskets or more "
				"at a lift of %ld%% or more\n", gt, min_b, min_l);
	return CLI_OK;
}

int vendor_items_relate(int argc, char **argv)
{
	const char *conf = NULL, *kind = NULL, *g[2] = { NULL, NULL };
	char a[GTIN_LEN + 1], b[GTIN_LEN + 1], actor[96], detail[96];
	struct cconf cf;
	struct store *s = NULL;
	pos_err e = { 0 };
	int ng = 0, rc;

	for (int i = 2; i < argc; i++) {
		if (vc_help(argv[i])) {
			fputs(relate_usage, stdout);
			return CLI_OK;
		}
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "--kind") == 0 && i + 1 < argc)
			kind = argv[++i];
		else if (argv[i][0] != '-' && ng < 2)
			g[ng++] = argv[i];
		else
			return cli_usage_error("items", "unexpected argument '%s'", argv[i]);
	}
	if (!conf)
		return cli_usage_error("items", "-c CONF is required");
	if (ng != 2)
		return cli_usage_error("items", "relate takes two GTINs");
	if (!kind || (strcmp(kind, "requires") != 0 && strcmp(kind, "accessory") != 0))
		return cli_usage_error("items", "--kind requires or --kind accessory is required");
	if (!vc_gtin(g[0], a))
		return cli_usage_error("items", "GTIN_A '%s' is not a GTIN with a good check digit", g[0]);
	if (!vc_gtin(g[1], b))
		return cli_usage_error("items", "GTIN_B '%s' is not a GTIN with a good check digit", g[1]);
	if (strcmp(a, b) == 0)
		return cli_usage_error("items", "an item cannot relate to itself");
	if ((rc = cconf_load(conf, &cf, &e)) < 0 || (rc = cconf_store_open(&cf, CCONF_STORE_WRITE, &s, &e)) < 0 ||
	    (rc = store_begin(s, &e)) < 0)
		goto out;
	rc = store_relation_put(s, a, b, kind, &e);
	vc_actor(actor, sizeof actor);
	snprintf(detail, sizeof detail, "%s %s %s", a, kind, b);
	if (rc == 0)
		rc = store_audit(s, actor, "items.relate", detail, &e);
	if (rc == 0)
		rc = store_commit(s, &e);
	else
		store_rollback(s);
	if (rc == 0)
		printf("%s %s %s\n", a, kind, b);
out:
	store_close(s);
	return rc < 0 ? cli_fail("items", &e) : CLI_OK;
}
