#include "offer_cli.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cconf.h"
#include "err.h"
#include "gtin.h"
#include "offers.h"
#include "store.h"
#include "timeutil.h"

enum { OFFER_OK = 0, OFFER_FAIL = 1, OFFER_USAGE = 2 };

#define OFFER_DAY_MS 86400000LL

static const char offer_usage[] =
	"usage: pos-central offer create -c CONF --title T --reward TEXT [--from D] [--to D]\n"
	"                                [--target all|GTIN|gtin:GTIN]\n"
	"       pos-central offer list   -c CONF\n"
	"       pos-central offer end    -c CONF ID\n"
	"       pos-central offer report -c CONF [--format csv|json]\n"
	"  D is a date YYYY-MM-DD (UTC) or an RFC 3339 time; a --to date includes that day.\n"
	"  GTIN: 8, 12, 13 or 14 digits (EAN-8, UPC-A, EAN-13, GTIN-14), kept as GTIN-14.\n";

struct offer_opts {
	const char *conf;
	const char *title;
	const char *reward;
	const char *from;
	const char *to;
	const char *target;
	const char *format;
	const char *id;
	bool help;
};

enum { OPT_TITLE = 256, OPT_REWARD, OPT_FROM, OPT_TO, OPT_TARGET, OPT_FORMAT };

/* One line on stderr, exit status 2. */
static int offer_usage_error(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int offer_usage_error(const char *what, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pos-central %s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see pos-central offer --help)\n", stderr);
	return OFFER_USAGE;
}

static int offer_fail(const char *what, const pos_err *e)
{
	fprintf(stderr, "pos-central %s: %s\n", what, e->msg[0] ? e->msg : "failed");
	return OFFER_FAIL;
}

/* "cli:" + the login name, for the audit log. */
static void offer_actor(char *out, size_t cap)
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

/* allowed: the long options this action takes, space separated. */
static bool offer_allowed(const char *allowed, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = allowed; (p = strstr(p, name)) != NULL; p += n)
		if ((p == allowed || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

static int offer_parse(int argc, char **argv, const char *allowed, bool takes_id,
		       const char *what, struct offer_opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "title", required_argument, NULL, OPT_TITLE },
		{ "reward", required_argument, NULL, OPT_REWARD },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, idx;

	memset(o, 0, sizeof *o);
	optind = 0; /* GNU: reinitialise, several mains may run in one process */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, &idx)) != -1) {
		const char *name;
		const char **dst;

		switch (ch) {
		case 'c': o->conf = optarg; continue;
		case 'h': o->help = true; continue;
		case OPT_TITLE: name = "title", dst = &o->title; break;
		case OPT_REWARD: name = "reward", dst = &o->reward; break;
		case OPT_FROM: name = "from", dst = &o->from; break;
		case OPT_TO: name = "to", dst = &o->to; break;
		case OPT_TARGET: name = "target", dst = &o->target; break;
		case OPT_FORMAT: name = "format", dst = &o->format; break;
		case ':': return offer_usage_error(what, "an option needs a value");
		default: return offer_usage_error(what, "unknown option");
		}
		if (!offer_allowed(allowed, name))
			return offer_usage_error(what, "does not take --%s", name);
		*dst = optarg;
	}
	if (o->help)
		return 0;
	if (takes_id && optind < argc)
		o->id = argv[optind++];
	if (optind < argc)
		return offer_usage_error(what, "unexpected argument");
	if (!o->conf)
		return offer_usage_error(what, "missing -c CONF");
	if (takes_id && !o->id)
		return offer_usage_error(what, "missing the offer ID");
	return 0;
}

static int offer_cli_store(const char *conf, struct store **s, pos_err *e)
{
	struct cconf cf;
	int rc = cconf_load(conf, &cf, e);

	return rc < 0 ? rc : cconf_store_open(&cf, CCONF_STORE_WRITE, s, e);
}

/* The audit row of an action, by the login running it. */
static int offer_audited(struct store *s, const char *action, const char *detail, pos_err *e)
{
	char actor[96];

	offer_actor(actor, sizeof actor);
	return store_audit(s, actor, action, detail, e);
}

/* ------------------------------------------------------------ create */

static int offer_date(const char *what, const char *opt, const char *v, bool end, int64_t *ms)
{
	pos_err e = { 0 };

	if (time_parse_rfc3339(v, 1, ms, &e) < 0)
		return offer_usage_error(what, "--%s must be a date YYYY-MM-DD or an RFC 3339 time",
					 opt);
	/* A bare end date means "until the end of that day". */
	if (end && strlen(v) == 10)
		*ms += OFFER_DAY_MS;
	return 0;
}

/*
 * --target as typed to what offers_target_parse takes: "all", or an item
 * code of 8, 12, 13 or 14 digits (with or without "gtin:") padded to its
 * GTIN-14, as GS1 does. A wrong check digit is named with the right one.
 */
static int offer_target(const char *what, const char *v, char out[STORE_OFFER_TARGET_MAX + 1])
{
	const char *d = strncmp(v, "gtin:", 5) == 0 ? v + 5 : v;
	size_t n = strlen(d);
	char g[GTIN_LEN + 1];
	pos_err e = { 0 };
	int cd;

	if (strcmp(v, "all") == 0)
		return offers_target_parse(v, out, &e) < 0 ? offer_usage_error(what, "%s", e.msg) : 0;
	if (n == 0 || strspn(d, "0123456789") != n)
		return offer_usage_error(what, "--target must be all or an item code of 8, 12, 13 "
					       "or 14 digits (gtin: before it is optional)");
	if (n != 8 && n != 12 && n != 13 && n != 14)
		return offer_usage_error(what, "--target has %zu digits: an item code has 8 (EAN-8), "
					       "12 (UPC-A), 13 (EAN-13) or 14 (GTIN-14)",
					 n);
	memset(g, '0', GTIN_LEN - n);
	memcpy(g + GTIN_LEN - n, d, n + 1);
	if (!gtin14_valid(g)) {
		cd = gtin_check_digit(g, GTIN_LEN - 1);
		return offer_usage_error(what, "--target: the item code's last (check) digit should "
					       "be %d, not %c",
					 cd, d[n - 1]);
	}
	snprintf(out, STORE_OFFER_TARGET_MAX + 1, "gtin:%s", g);
	return 0;
}

static int offer_create(const struct offer_opts *o)
{
	const char *what = "offer create";
	struct store_offer of;
	struct store *s = NULL;
	char detail[128];
	pos_err e = { 0 };
	int rc;

	memset(&of, 0, sizeof of);
	if (!o->title)
		return offer_usage_error(what, "--title is required");
	if (!o->reward)
		return offer_usage_error(what, "--reward is required");
	if (offers_text_check("--title", o->title, STORE_OFFER_TITLE_MAX, &e) < 0 ||
	    offers_text_check("--reward", o->reward, STORE_OFFER_REWARD_MAX, &e) < 0)
		return offer_usage_error(what, "%s", e.msg);
	if ((rc = offer_target(what, o->target ? o->target : "all", of.target)) != 0)
		return rc;
	if ((o->from && (rc = offer_date(what, "from", o->from, false, &of.from_ms)) != 0) ||
	    (o->to && (rc = offer_date(what, "to", o->to, true, &of.to_ms)) != 0))
		return rc;
	if (of.from_ms && of.to_ms && of.from_ms >= of.to_ms)
		return offer_usage_error(what, "--to %.40s is before --from %.40s", o->to, o->from);
	memcpy(of.title, o->title, strlen(o->title) + 1);
	memcpy(of.reward, o->reward, strlen(o->reward) + 1);
	of.created_ms = time_now_ms();
	if ((rc = offers_id_new(of.id, &e)) < 0 || (rc = offer_cli_store(o->conf, &s, &e)) < 0 ||
	    (rc = store_begin(s, &e)) < 0)
		goto out;
	snprintf(detail, sizeof detail, "id=%s target=%s", of.id, of.target);
	if ((rc = store_offer_create(s, &of, &e)) < 0 ||
	    (rc = offer_audited(s, "offer.create", detail, &e)) < 0) {
		store_rollback(s);
		goto out;
	}
	rc = store_commit(s, &e);
out:
	store_close(s);
	if (rc < 0)
		return offer_fail(what, &e);
	printf("%s\n", of.id);
	/* Allowed (an offer recorded after the fact), but rarely meant. */
	if (of.to_ms && of.to_ms <= of.created_ms)
		fprintf(stderr,
			"pos-central %s: warning: offer %s ended already (--to %.40s is in the past); "
			"no phone will be offered it\n",
			what, of.id, o->to);
	return OFFER_OK;
}

/* ------------------------------------------------------------ list */

struct offer_list {
	int64_t now_ms;
};

static void offer_time(int64_t ms, char out[TIME_RFC3339_LEN])
{
	if (ms)
		time_format_rfc3339(ms, out);
	else
		memcpy(out, "-", 2);
}

static int offer_list_one(const struct store_offer *o, void *arg)
{
	struct offer_list *l = arg;
	char from[TIME_RFC3339_LEN], to[TIME_RFC3339_LEN];
	const char *state;

	if (o->ended_ms)
		state = "ended";
	else if (o->to_ms && o->to_ms <= l->now_ms)
		state = "expired";
	else if (o->from_ms && o->from_ms > l->now_ms)
		state = "scheduled";
	else
		state = "open";
	offer_time(o->from_ms, from);
	offer_time(o->to_ms, to);
	printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o->id, state, from, to, o->target, o->title,
	       o->reward);
	return 0;
}

static int offer_list(const struct offer_opts *o)
{
	struct offer_list l = { .now_ms = time_now_ms() };
	struct store *s = NULL;
	pos_err e = { 0 };
	int rc;

	if ((rc = offer_cli_store(o->conf, &s, &e)) == 0 &&
	    (rc = offer_audited(s, "offer.list", "", &e)) == 0) {
		printf("id\tstate\tfrom\tto\ttarget\ttitle\treward\n");
		rc = store_offer_list(s, false, l.now_ms, offer_list_one, &l, &e);
	}
	if (rc == 0 && fflush(stdout) != 0)
		rc = err_set(&e, POS_EIO, "writing stdout: %s", strerror(errno));
	store_close(s);
	return rc < 0 ? offer_fail("offer list", &e) : OFFER_OK;
}

/* ------------------------------------------------------------ end */

static int offer_end(const struct offer_opts *o)
{
	struct store *s = NULL;
	char detail[64];
	pos_err e = { 0 };
	int rc;

	if (!offers_id_valid(o->id))
		return offer_usage_error("offer end", "the ID must be of_ and 16 hex digits");
	if ((rc = offer_cli_store(o->conf, &s, &e)) < 0 || (rc = store_begin(s, &e)) < 0)
		goto out;
	snprintf(detail, sizeof detail, "id=%s", o->id);
	if ((rc = store_offer_end(s, o->id, time_now_ms(), &e)) < 0 ||
	    (rc = offer_audited(s, "offer.end", detail, &e)) < 0) {
		store_rollback(s);
		goto out;
	}
	rc = store_commit(s, &e);
out:
	store_close(s);
	if (rc < 0)
		return offer_fail("offer end", &e);
	printf("ended %s\n", o->id);
	return OFFER_OK;
}

/* ------------------------------------------------------------ report */

static int offer_stdout_sink(const void *buf, size_t len, void *arg)
{
	(void)arg;
	return fwrite(buf, 1, len, stdout) == len ? 0 : POS_EIO;
}

static int offer_report(const struct offer_opts *o)
{
	struct store *s = NULL;
	int fmt = OFFERS_CSV, rc;
	pos_err e = { 0 };

	if (o->format && (fmt = offers_format_parse(o->format)) < 0)
		return offer_usage_error("offer report", "--format must be csv or json");
	if ((rc = offer_cli_store(o->conf, &s, &e)) == 0 &&
	    (rc = offer_audited(s, "offer.report", "", &e)) == 0)
		rc = offers_report_write(s, (enum offers_format)fmt, offer_stdout_sink, NULL, &e);
	if (rc == 0 && fflush(stdout) != 0)
		rc = err_set(&e, POS_EIO, "writing stdout: %s", strerror(errno));
	store_close(s);
	return rc < 0 ? offer_fail("offer report", &e) : OFFER_OK;
}

/* ------------------------------------------------------------ main */

int offer_main(int argc, char **argv)
{
	static const struct {
		const char *name;
		const char *allowed;
		bool takes_id;
		int (*fn)(const struct offer_opts *o);
	} actions[] = {
		{ "create", "title reward from to target", false, offer_create },
		{ "list", "", false, offer_list },
		{ "end", "", true, offer_end },
		{ "report", "format", false, offer_report },
	};
	struct offer_opts o;
	char what[32];
	int rc;

	if (argc < 2)
		return offer_usage_error("offer", "missing action (create, list, end or report)");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(offer_usage, stdout);
		return OFFER_OK;
	}
	for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
		if (strcmp(argv[1], actions[i].name) != 0)
			continue;
		snprintf(what, sizeof what, "offer %s", actions[i].name);
		rc = offer_parse(argc - 1, argv + 1, actions[i].allowed, actions[i].takes_id, what,
				 &o);
		if (rc != 0)
			return rc;
		if (o.help) {
			fputs(offer_usage, stdout);
			return OFFER_OK;
		}
		return actions[i].fn(&o);
	}
	return offer_usage_error("offer", "unknown action (create, list, end or report)");
}
