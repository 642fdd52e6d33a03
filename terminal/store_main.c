/*
 * pos-store: the store's controller (design section 12).
 *
 *   pos-store run    -c store.conf                 run the controller (foreground)
 *   pos-store status -c store.conf                 the log: waiting, set aside, lanes
 *   pos-store report -c store.conf --day D [--format table|csv|json]
 *   pos-store replay -c store.conf --since D       send the log again from day D
 *   pos-store check  -c store.conf                 "configuration OK" or FILE:LINE: what
 *   pos-store doctor -c store.conf                 files, certificates, central, the queue
 *
 * Exit status: 0 done, 1 failed (the reason on stderr), 2 wrong invocation.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "sconf.h"
#include "sdoctor.h"
#include "store.h"
#include "timeutil.h"
#include "tlog.h"
#include "version.h"

#define PROG "pos-store"

static const char usage_main[] =
	"usage: pos-store COMMAND -c store.conf [ARGS]\n"
	"  run    -c store.conf                        run the store's controller\n"
	"  status -c store.conf                        baskets waiting for central, set aside, lanes\n"
	"  report -c store.conf --day YYYY-MM-DD [--format table|csv|json]\n"
	"                                              per lane and hour: baskets, items, sales,\n"
	"                                              households recognised, offers redeemed\n"
	"  replay -c store.conf --since YYYY-MM-DD     send the log from that day to central again\n"
	"  check  -c store.conf                        check the configuration and its files\n"
	"  doctor -c store.conf                        certificates and expiry, central reachable\n"
	"                                              with the controller's certificate, the queue\n"
	"  --help, --version\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr and status 2. */
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (try 'pos-store --help')\n", stderr);
	return 2;
}

struct cmdline {
	const char *config;
	const char *day;
	const char *since;
	const char *format;
	bool help;
};

/* -c FILE, --day D, --since D, --format F (each only where allowed). */
static int parse_cmdline(int argc, char **argv, const char *allowed, struct cmdline *cl)
{
	memset(cl, 0, sizeof *cl);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], **slot = NULL;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			cl->help = true;
			continue;
		}
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
			slot = &cl->config;
		else if (strcmp(a, "--day") == 0 && strstr(allowed, "day"))
			slot = &cl->day;
		else if (strcmp(a, "--since") == 0 && strstr(allowed, "since"))
			slot = &cl->since;
		else if (strcmp(a, "--format") == 0 && strstr(allowed, "format"))
			slot = &cl->format;
		else if (a[0] == '-')
			return usage_error("unknown option '%s'", a);
		else
			return usage_error("unexpected argument '%s'", a);
		if (i + 1 >= argc)
			return usage_error("%s needs a value", a);
		if (*slot)
			return usage_error("%s given twice", a);
		*slot = argv[++i];
	}
	if (!cl->help && (!cl->config || !*cl->config))
		return usage_error("missing -c store.conf");
	return 0;
}

static int load_config(const char *path, struct sconf **cfg)
{
	pos_err e;

	if (sconf_load(path, cfg, &e) < 0) {
		fprintf(stderr, PROG ": %s\n", e.msg);
		return 1;
	}
	return 0;
}

/* YYYY-MM-DD (or "today") as local midnight, and the next one (a day of
 * 23 or 25 hours on a clock change). -1 when not a date. */
static int parse_day(const char *s, int64_t *from_ms, int64_t *to_ms)
{
	struct tm tm = { 0 };
	int y, m, d, n = 0;
	time_t t0, t1;
	char today[16];

	if (s && strcmp(s, "today") == 0) {
		time_t now = time(NULL);
		if (!localtime_r(&now, &tm) || strftime(today, sizeof today, "%Y-%m-%d", &tm) != 10)
			return -1;
		s = today;
		memset(&tm, 0, sizeof tm);
	}
	if (!s || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 ||
	    y < 2000 || y > 2199 || m < 1 || m > 12 || d < 1 || d > 31)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_isdst = -1;
	t0 = mktime(&tm);
	if (t0 == (time_t)-1 || tm.tm_mday != d)
		return -1; /* 2026-02-30 */
	tm = (struct tm){ .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d + 1, .tm_isdst = -1 };
	t1 = mktime(&tm);
	*from_ms = (int64_t)t0 * 1000;
	*to_ms = (int64_t)t1 * 1000;
	return 0;
}

/* ------------------------------------------------------------ run, check */

static int cmd_run(int argc, char **argv)
{
	struct cmdline cl;
	struct sconf *cfg = NULL;
	pos_err e;
	int rc;

	if ((rc = parse_cmdline(argc, argv, "", &cl)) != 0)
		return rc;
	if (cl.help) {
		fputs("usage: pos-store run -c store.conf\n", stdout);
		return 0;
	}
	if (load_config(cl.config, &cfg))
		return 1;
	log_init(PROG, LOG_LVL_INFO, 0);
	rc = store_run(cfg, &e);
	if (rc < 0) {
		char q[300];
		log_error("start_failed", "error=%s", log_q(q, sizeof q, e.msg));
		fprintf(stderr, PROG ": %s\n", e.msg);
	}
	sconf_free(cfg);
	return rc < 0 ? 1 : 0;
}

static int cmd_check(int argc, char **argv)
{
	struct cmdline cl;
	struct sconf *cfg = NULL;
	pos_err e;
	int rc;

	if ((rc = parse_cmdline(argc, argv, "", &cl)) != 0)
		return rc;
	if (cl.help) {
		fputs("usage: pos-store check -c store.conf\n", stdout);
		return 0;
	}
	if (load_config(cl.config, &cfg))
		return 1;
	rc = sconf_check_files(cfg, &e);
	if (rc < 0)
		fprintf(stderr, PROG ": %s: %s\n", cl.config, e.msg);
	else
		printf("configuration OK\n");
	sconf_free(cfg);
	return rc < 0 ? 1 : 0;
}

/* Exit 1 when something the controller needs is broken. */
static int cmd_doctor(int argc, char **argv)
{
	struct cmdline cl;
	struct sconf *cfg = NULL;
	int rc;

	if ((rc = parse_cmdline(argc, argv, "", &cl)) != 0)
		return rc;
	if (cl.help) {
		fputs("usage: pos-store doctor -c store.conf\n", stdout);
		return 0;
	}
	if (load_config(cl.config, &cfg))
		return 1;
	rc = sdoctor_run(cfg, stdout);
	sconf_free(cfg);
	return rc ? 1 : 0;
}

/* ------------------------------------------------------------ status */

static int cmd_status(int argc, char **argv)
{
	struct cmdline cl;
	struct sconf *cfg = NULL;
	struct tlog *t = NULL;
	struct tlog_stats st;
	char when[TIME_RFC3339_LEN];
	pos_err e;
	int rc;

	if ((rc = parse_cmdline(argc, argv, "", &cl)) != 0)
		return rc;
	if (cl.help) {
		fputs("usage: pos-store status -c store.conf\n", stdout);
		return 0;
	}
	if (load_config(cl.config, &cfg))
		return 1;
	if ((rc = tlog_open_readonly(cfg->tlog, &t, &e)) < 0 || (rc = tlog_stats(t, &st, &e)) < 0) {
		fprintf(stderr, PROG ": %s\n", e.msg);
		goto out;
	}
	printf("store %s, log %s\n", cfg->store, cfg->tlog);
	printf("  baskets logged     %ld (kept %ld days once sent)\n", st.total, cfg->keep_days);
	printf("  waiting for central %ld\n", st.unsent);
	if (st.oldest_unsent_ms) {
		time_format_rfc3339(st.oldest_unsent_ms, when);
		printf("  oldest waiting     since %s (%lld s)\n", when,
		       (long long)((time_now_ms() - st.oldest_unsent_ms) / 1000));
	}
	printf("  set aside          %ld%s\n", st.rejected,
	       st.rejected ? " (central refused them; see the log, then replay)" : "");
	printf("  lanes in the log   %ld\n", st.lanes);
out:
	tlog_close(t);
	sconf_free(cfg);
	return rc < 0 ? 1 : 0;
}

/* ------------------------------------------------------------ report */

enum report_format { REPORT_TABLE, REPORT_CSV, REPORT_JSON };

static void report_money(long long cents, char *out, size_t n)
{
	snprintf(out, n, "%s%lld.%02lld", cents < 0 ? "-" : "", llabs(cents) / 100,
		 llabs(cents) % 100);
}

static void report_print(const char *store, const char *day, const struct tlog_report_row *r,
			 size_t n, enum report_format f)
{
	struct tlog_report_row tot = { .hour = -1 };
	char money[32];

	for (size_t i = 0; i < n; i++) {
		tot.baskets += r[i].baskets;
		tot.units += r[i].units;
		tot.sales_cents += r[i].sales_cents;
		tot.households += r[i].households;
		tot.offers += r[i].offers;
	}
	if (f == REPORT_CSV) {
		printf("day,lane,hour,baskets,items,sales_cents,households,offers\n");
		for (size_t i = 0; i < n; i++)
			printf("%s,%s,%02d,%ld,%ld,%lld,%ld,%ld\n", day, r[i].terminal, r[i].hour,
			       r[i].baskets, r[i].units, r[i].sales_cents, r[i].households,
			       r[i].offers);
		return;
	}
	if (f == REPORT_JSON) {
		printf("{\"store\":\"%s\",\"day\":\"%s\",\"rows\":[", store, day);
		for (size_t i = 0; i < n; i++)
			printf("%s{\"lane\":\"%s\",\"hour\":%d,\"baskets\":%ld,\"items\":%ld,"
			       "\"sales_cents\":%lld,\"households\":%ld,\"offers\":%ld}",
			       i ? "," : "", r[i].terminal, r[i].hour, r[i].baskets, r[i].units,
			       r[i].sales_cents, r[i].households, r[i].offers);
		printf("],\"total\":{\"baskets\":%ld,\"items\":%ld,\"sales_cents\":%lld,"
		       "\"households\":%ld,\"offers\":%ld}}\n",
		       tot.baskets, tot.units, tot.sales_cents, tot.households, tot.offers);
		return;
	}
	printf("Store %s, %s (local time)\n", store, day);
	printf("%-16s %5s %8s %8s %12s %10s %7s\n", "lane", "hour", "baskets", "items", "sales",
	       "households", "offers");
	for (size_t i = 0; i < n; i++) {
		report_money(r[i].sales_cents, money, sizeof money);
		printf("%-16s %02d:00 %8ld %8ld %12s %10ld %7ld\n", r[i].terminal, r[i].hour,
		       r[i].baskets, r[i].units, money, r[i].households, r[i].offers);
	}
	report_money(tot.sales_cents, money, sizeof money);
	printf("%-16s %5s %8ld %8ld %12s %10ld %7ld\n", "total", "", tot.baskets, tot.units, money,
	       tot.households, tot.offers);
}

static int cmd_report(int argc, char **argv)
{
	struct cmdline cl;
	struct sconf *cfg = NULL;
	struct tlog *t = NULL;
	struct tlog_report_row *rows = NULL;
	enum report_format f = REPORT_TABLE;
	int64_t from, to;
	size_t n = 0;
	pos_err e;
	int rc;

	if ((rc = parse_cmdline(argc, argv, "day format", &cl)) != 0)
		return rc;
	if (cl.help) {
		fputs("usage: pos-store report -c store.conf --day YYYY-MM-DD "
		      "[--format table|csv|json]\n",
		      stdout);
		return 0;
	}
	if (!cl.day)
		return usage_error("report needs --day YYYY-MM-DD");
	if (parse_day(cl.day, &from, &to) < 0)
		return usage_error("--day must be a date YYYY-MM-DD or today");
	if (cl.format && strcmp(cl.format, "csv") == 0)
		f = REPORT_CSV;
	else if (cl.format && strcmp(cl.format, "json") == 0)
		f = REPORT_JSON;
	else if (cl.format && strcmp(cl.format, "table") != 0)
		return usage_error("--format must be table, csv or json");
	if (load_config(cl.config, &cfg))
		return 1;
	if ((rc = tlog_open_readonly(cfg->tlog, &t, &e)) < 0 ||
	    (rc = tlog_report(t, from, to, &rows, &n, &e)) < 0) {
		fprintf(stderr, PROG ": %s\n", e.msg);
		goto out;
	}
	{
		/* The date itself, also for "today". */
		time_t t0 = (time_t)(from / 1000);
		struct tm tm;
		char day[16];

		if (!localtime_r(&t0, &tm) || strftime(day, sizeof day, "%Y-%m-%d", &tm) != 10)
			snprintf(day, sizeof day, "%s", cl.day);
		report_print(cfg->store, day, rows, n, f);
	}
out:
	free(rows);
	tlog_close(t);
	sconf_free(cfg);
	return rc < 0 ? 1 : 0;
}

/* ------------------------------------------------------------ replay */

static int cmd_replay(int argc, char **argv)
{
	struct cmdline cl;
	struct sconf *cfg = NULL;
	struct tlog *t = NULL;
	int64_t from, to;
	long n = 0;
	pos_err e;
	int rc;

	if ((rc = parse_cmdline(argc, argv, "since", &cl)) != 0)
		return rc;
	if (cl.help) {
		fputs("usage: pos-store replay -c store.conf --since YYYY-MM-DD\n", stdout);
		return 0;
	}
	if (!cl.since)
		return usage_error("replay needs --since YYYY-MM-DD");
	if (parse_day(cl.since, &from, &to) < 0)
		return usage_error("--since must be a date YYYY-MM-DD or today");
	if (load_config(cl.config, &cfg))
		return 1;
	/* Marks the rows; the running controller (or the next start) sends
	 * them. Central stores only the baskets it lacks. */
	if ((rc = tlog_open(cfg->tlog, &t, &e)) < 0 || (rc = tlog_replay(t, from, &n, &e)) < 0) {
		fprintf(stderr, PROG ": %s\n", e.msg);
		goto out;
	}
	printf("%ld baskets since %s will be sent to central again; central keeps only those it "
	       "lacks\n",
	       n, cl.since);
out:
	tlog_close(t);
	sconf_free(cfg);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "run", cmd_run },       { "status", cmd_status }, { "report", cmd_report },
		{ "replay", cmd_replay }, { "check", cmd_check },   { "doctor", cmd_doctor },
	};

	if (argc < 2)
		return usage_error("missing command (run, status, report, replay, check or doctor)");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		version_print(stdout, "pos-store");
		return 0;
	}
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 2, argv + 2);
	if (strpbrk(argv[1], "0123456789"))
		return usage_error("unknown command (run, status, report, replay, check or doctor)");
	return usage_error("unknown command '%s' (run, status, report, replay, check or doctor)", argv[1]);
}
