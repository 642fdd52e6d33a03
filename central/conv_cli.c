#include "conv_cli.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cconf.h"
#include "cli.h"
#include "codec.h"
#include "err.h"
#include "gtin.h"
#include "ids.h"
#include "store.h"
#include "store_public.h"
#include "timeutil.h"
#include "vendor_cli.h"
#include "wipe.h"


#define ITEMS_LINE_MAX 2048
#define ITEMS_MAX_LINES 1000000
#define ITEMS_BAD_SHOWN 50 /* bad lines named before "and N more" */

static const char items_usage[] = "usage: pos-central items import -c CONF < items.csv\n"
				  "  items.csv: gtin,name,vendor,category (a header line is "
				  "optional)\n";
static const char staff_usage[] =
	"usage: pos-central staff add -c CONF --name N (--store S | --all)\n";

static void cli_actor(char *out, size_t cap)
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

static bool cli_help(const char *a)
{
	return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "help") == 0;
}

static int cli_open(const char *conf, struct store **s, pos_err *e)
{
	struct cconf cf;
	int rc = cconf_load(conf, &cf, e);

	return rc < 0 ? rc : cconf_store_open(&cf, CCONF_STORE_WRITE, s, e);
}

/* ------------------------------------------------------------ items */

/* Splits a CSV line into at most max fields (quotes as RFC 4180, within
 * the line). The fields point into line, which is rewritten in place. */
static int items_split(char *line, char **f, int max, int *n, const char **why)
{
	char *r = line, *w = line;

	*n = 0;
	for (;;) {
		if (*n == max) {
			*why = "more than 4 fields";
			return -1;
		}
		f[(*n)++] = w;
		if (*r == '"') {
			r++;
			for (;;) {
				if (*r == '\0') {
					*why = "a quote is not closed";
					return -1;
				}
				if (*r == '"' && r[1] == '"') {
					*w++ = '"';
					r += 2;
				} else if (*r == '"') {
					r++;
					break;
				} else {
					*w++ = *r++;
				}
			}
			if (*r != ',' && *r != '\0') {
				*why = "text after a closing quote";
				return -1;
			}
		} else {
			while (*r && *r != ',') {
				if (*r == '"') {
					*why = "a quote inside an unquoted field";
					return -1;
				}
				*w++ = *r++;
			}
		}
		if (*r == '\0') {
			*w = '\0';
			return 0;
		}
		*w++ = '\0';
		r++;
	}
}

/* Text of 0 or 1..STORE_ITEM_TEXT_MAX bytes without control characters. */
static const char *items_text(const char *s, bool required, const char *field, char *why,
			      size_t cap)
{
	size_t n = strlen(s);

	if (required && n == 0)
		snprintf(why, cap, "%s is empty", field);
	else if (n > STORE_ITEM_TEXT_MAX)
		snprintf(why, cap, "%s is longer than %d bytes", field, STORE_ITEM_TEXT_MAX);
	else {
		for (const unsigned char *p = (const unsigned char *)s; *p; p++)
			if (*p < 0x20 || *p == 0x7F) {
				snprintf(why, cap, "%s holds a control character", field);
				return why;
			}
		return NULL;
	}
	return why;
}

/* One data line into it; NULL, or why it is bad. */
static const char *items_line(char *line, struct store_item_master *it, char *why, size_t cap)
{
	struct gtin_scan g;
	pos_err e = { 0 };
	const char *bad = NULL;
	char *f[4];
	int n;

	if (items_split(line, f, 4, &n, &bad) < 0) {
		snprintf(why, cap, "%s", bad);
		return why;
	}
	if (n != 4) {
		snprintf(why, cap, "expected 4 fields gtin,name,vendor,category, found %d", n);
		return why;
	}
	if (f[0][0] == ']' || strspn(f[0], "0123456789") != strlen(f[0]) ||
	    gtin_parse(f[0], strlen(f[0]), GTIN_VM_NONE, &g, &e) < 0) {
		snprintf(why, cap, "gtin must be a UPC-A, UPC-E, EAN-8, EAN-13 or GTIN-14 with a "
				   "correct check digit");
		return why;
	}
	if ((bad = items_text(f[1], true, "name", why, cap)) ||
	    (bad = items_text(f[2], false, "vendor", why, cap)) ||
	    (bad = items_text(f[3], false, "category", why, cap)))
		return bad;
	memset(it, 0, sizeof *it);
	memcpy(it->gtin, g.gtin, sizeof it->gtin);
	snprintf(it->name, sizeof it->name, "%s", f[1]);
	snprintf(it->vendor, sizeof it->vendor, "%s", f[2]);
	snprintf(it->category, sizeof it->category, "%s", f[3]);
	return NULL;
}

static int items_import(const char *conf)
{
	struct store_item_master *items = NULL;
	size_t n = 0, cap = 0;
	long line_no = 0, bad = 0;
	char line[ITEMS_LINE_MAX + 2], why[160], actor[96], detail[64];
	struct store *s = NULL;
	pos_err e = { 0 };
	int rc = 0;

	while (fgets(line, sizeof line, stdin)) {
		size_t len = strlen(line);
		struct store_item_master it;
		const char *w;

		line_no++;
		if (len == sizeof line - 1 && line[len - 1] != '\n') {
			int ch;

			while ((ch = getchar()) != EOF && ch != '\n')
				;
			if (++bad <= ITEMS_BAD_SHOWN)
				fprintf(stderr, "line %ld: longer than %d bytes\n", line_no,
					ITEMS_LINE_MAX);
			continue;
		}
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (line_no == 1 && strncasecmp(line, "gtin,", 5) == 0)
			continue;
		if (line_no > ITEMS_MAX_LINES) {
			fprintf(stderr, "pos-central items import: more than %d lines\n",
				ITEMS_MAX_LINES);
			rc = POS_ETOOBIG;
			goto out;
		}
		if ((w = items_line(line, &it, why, sizeof why))) {
			if (++bad <= ITEMS_BAD_SHOWN)
				fprintf(stderr, "line %ld: %s\n", line_no, w);
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct store_item_master *p = realloc(items, nc * sizeof *items);

			if (!p) {
				rc = err_set(&e, POS_ENOMEM, "out of memory");
				goto out;
			}
			items = p;
			cap = nc;
		}
		items[n++] = it;
	}
	if (ferror(stdin)) {
		rc = err_set(&e, POS_EIO, "reading stdin failed");
		goto out;
	}
	if (bad) {
		if (bad > ITEMS_BAD_SHOWN)
			fprintf(stderr, "... and %ld more bad lines\n", bad - ITEMS_BAD_SHOWN);
		fprintf(stderr, "pos-central items import: %ld bad line%s; nothing was imported\n",
			bad, bad == 1 ? "" : "s");
		free(items);
		return CLI_FAIL;
	}
	if ((rc = cli_open(conf, &s, &e)) < 0 || (rc = store_begin(s, &e)) < 0)
		goto out;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = store_item_put(s, &items[i], time_now_ms(), &e);
	cli_actor(actor, sizeof actor);
	snprintf(detail, sizeof detail, "items=%zu", n);
	if (rc == 0)
		rc = store_audit(s, actor, "items.import", detail, &e);
	if (rc == 0)
		rc = store_commit(s, &e);
	else
		store_rollback(s);
	if (rc == 0)
		printf("imported %zu item%s\n", n, n == 1 ? "" : "s");
out:
	store_close(s);
	free(items);
	return rc < 0 ? (e.msg[0] ? cli_fail("items import", &e) : CLI_FAIL) : CLI_OK;
}

int items_main(int argc, char **argv)
{
	const char *conf = NULL;

	if (argc < 2)
		return cli_usage_error("items", "missing action (import)");
	if (cli_help(argv[1])) {
		fputs(items_usage, stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "relate") == 0)
		return vendor_items_relate(argc, argv);
	if (strcmp(argv[1], "related") == 0)
		return vendor_items_related(argc, argv);
	if (strcmp(argv[1], "import") != 0)
		return cli_usage_error("items", "unknown action '%s' (import, relate, related)", argv[1]);
	for (int i = 2; i < argc; i++) {
		if (cli_help(argv[i])) {
			fputs(items_usage, stdout);
			return CLI_OK;
		}
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
			conf = argv[++i];
		else
			return cli_usage_error("items", "unexpected argument '%s'", argv[i]);
	}
	if (!conf)
		return cli_usage_error("items", "-c CONF is required");
	return items_import(conf);
}

/* ------------------------------------------------------------ staff */

static int staff_add(const char *conf, const char *name, const char *store)
{
	unsigned char raw[32], h[32];
	char tok[64], actor[96], detail[160];
	unsigned int hl = 0;
	struct store *s = NULL;
	pos_err e = { 0 };
	int64_t id = 0;
	int rc;

	if (RAND_bytes(raw, sizeof raw) != 1) {
		rc = err_set(&e, POS_ECRYPTO, "no random bytes");
		goto out;
	}
	memcpy(tok, "st_", 3);
	if ((rc = b64url_encode(raw, sizeof raw, tok + 3, sizeof tok - 3, &e)) < 0)
		goto out;
	if (EVP_Digest(tok, strlen(tok), h, &hl, EVP_sha256(), NULL) != 1) {
		rc = err_set(&e, POS_ECRYPTO, "digest failed");
		goto out;
	}
	if ((rc = cli_open(conf, &s, &e)) < 0 || (rc = store_begin(s, &e)) < 0)
		goto out;
	rc = store_staff_add(s, name, store, h, time_now_ms(), &id, &e);
	cli_actor(actor, sizeof actor);
	snprintf(detail, sizeof detail, "staff=%lld store=%s", (long long)id, store ? store : "*");
	if (rc == 0)
		rc = store_audit(s, actor, "staff.add", detail, &e);
	if (rc == 0)
		rc = store_commit(s, &e);
	else
		store_rollback(s);
	if (rc == 0)
		printf("%s\n", tok);
out:
	wipe(raw, sizeof raw);
	wipe(tok, sizeof tok);
	store_close(s);
	return rc < 0 ? cli_fail("staff add", &e) : CLI_OK;
}

int staff_main(int argc, char **argv)
{
	const char *conf = NULL, *name = NULL, *store = NULL;
	bool all = false;

	if (argc < 2)
		return cli_usage_error("staff", "missing action (add)");
	if (cli_help(argv[1])) {
		fputs(staff_usage, stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "add") != 0)
		return cli_usage_error("staff", "unknown action '%s' (add)", argv[1]);
	for (int i = 2; i < argc; i++) {
		if (cli_help(argv[i])) {
			fputs(staff_usage, stdout);
			return CLI_OK;
		}
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
			store = argv[++i];
		else if (strcmp(argv[i], "--all") == 0)
			all = true;
		else
			return cli_usage_error("staff", "unexpected argument '%s'", argv[i]);
	}
	if (!conf)
		return cli_usage_error("staff", "-c CONF is required");
	if (!name || !name[0] || strlen(name) > STORE_STAFF_NAME_MAX)
		return cli_usage_error("staff", "--name must be 1 to %d bytes", STORE_STAFF_NAME_MAX);
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7F)
			return cli_usage_error("staff", "--name must not hold control characters");
	if (all == (store != NULL))
		return cli_usage_error("staff", "give exactly one of --store S and --all");
	if (store && !ids_valid(store))
		return cli_usage_error("staff", "--store must be [A-Za-z0-9._-]{1,64}");
	return staff_add(conf, name, store);
}
