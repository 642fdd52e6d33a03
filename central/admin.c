#include "admin.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cconf.h"
#include "deident.h"
#include "err.h"
#include "history.h"
#include "keys.h"
#include "store.h"
#include "tid.h"
#include "timeutil.h"
#include "wipe.h"

/*
 * Household maintenance and history from the command line. Every action
 * leaves one audit row (actor "cli:<login>", counts and hhids only). TIDs
 * come on stdin through a reader whose buffer is wiped, are normalised and
 * turned into their tid index at once, and never reach stdout, stderr or the
 * database.
 */

#define ADMIN_BATCH 10000      /* enrolment lines per transaction */
#define ADMIN_LINE_MAX 512     /* one stdin line */
#define ADMIN_REF_MAX 128      /* household_ref */
#define ADMIN_REFS_MAX 16000000 /* distinct household_refs in one run */
#define ADMIN_IOBUF 65536

enum { ADMIN_OK = 0, ADMIN_FAIL = 1, ADMIN_USAGE = 2 };

static const char household_usage[] =
	"usage: pos-central household enroll -c CONF            < household_ref,tid lines\n"
	"       pos-central household show   -c CONF --hhid HHID\n"
	"       pos-central household merge  -c CONF --from HHID --into HHID\n"
	"       pos-central household unlink -c CONF            < one TID per line\n";

static const char backup_usage[] =
	"usage: pos-central backup -c CONF --out FILE\n"
	"  a consistent copy of the database while serve runs; restore by copying\n"
	"  FILE over the database with serve stopped (docs/operations.md).\n";

static const char history_usage[] =
	"usage: pos-central history -c CONF --hhid HHID [--from D] [--to D]\n"
	"                           [--format csv|json|table]\n"
	"  D is an RFC 3339 time or a date YYYY-MM-DD (UTC); a --to date includes\n"
	"  that day, as offer's does; a --to time is exclusive.\n";

#define ADMIN_DAY_MS 86400000LL

static int admin_usage(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One line: "pos-central: <problem> (see pos-central CMD --help)", CMD
 * the command the usage text is for. */
static int admin_usage(const char *usage, const char *fmt, ...)
{
	const char *cmd = strstr(usage, "pos-central ");
	va_list ap;
	int n;

	cmd = cmd ? cmd + 12 : "";
	n = (int)strcspn(cmd, " \n");
	fputs("pos-central: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see pos-central %.*s --help)\n", n, cmd);
	return ADMIN_USAGE;
}

static int admin_fail(const pos_err *e)
{
	fprintf(stderr, "pos-central: %s\n", e->msg[0] ? e->msg : "failed");
	return ADMIN_FAIL;
}

/* "cli:" + the login name, for the audit log. */
static void admin_actor(char *out, size_t cap)
{
	char name[64];
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (getlogin_r(name, sizeof(name)) == 0 && name[0]) {
		snprintf(out, cap, "cli:%s", name);
		return;
	}
	if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_name) {
		snprintf(out, cap, "cli:%.64s", res->pw_name);
		return;
	}
	snprintf(out, cap, "cli:uid%ld", (long)geteuid());
}

/* --------------------------------------------------------------- options */

struct admin_opts {
	const char *conf;
	const char *hhid;
	const char *from;
	const char *into;
	const char *to;
	const char *format;
	const char *out;
	bool help;
};

enum { OPT_HHID = 256, OPT_FROM, OPT_INTO, OPT_TO, OPT_FORMAT, OPT_OUT };

/* An option as typed, for messages: cut at '=' and withheld if it holds
 * digits (someone may have pasted a TID where an option belongs). */
static void admin_optname(const char *arg, char *out, size_t cap)
{
	size_t n = strcspn(arg, "=");

	if (n >= cap)
		n = cap - 1;
	if (strpbrk(arg, "0123456789") && n > 0 && strcspn(arg, "0123456789") < n) {
		snprintf(out, cap, "(withheld)");
		return;
	}
	memcpy(out, arg, n);
	out[n] = '\0';
}

/* True when name is one of the space-separated words of allowed. */
static bool admin_allowed(const char *allowed, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = allowed; (p = strstr(p, name)) != NULL; p += n)
		if ((p == allowed || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

/*
 * Parses argv (argv[0] = the action or command name). allowed lists which of
 * the long options this action takes. Returns 0 or a usage exit code.
 */
static int admin_parse(int argc, char **argv, const char *allowed, const char *usage,
		       const char *what, struct admin_opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "hhid", required_argument, NULL, OPT_HHID },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "into", required_argument, NULL, OPT_INTO },
		{ "to", required_argument, NULL, OPT_TO },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, idx;

	memset(o, 0, sizeof(*o));
	optind = 0; /* GNU: reinitialise, several mains may run in one process */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:c:h", longopts, &idx)) != -1) {
		const char *name = NULL;
		switch (ch) {
		case 'c':
			o->conf = optarg;
			continue;
		case 'h':
			o->help = true;
			continue;
		case OPT_HHID:
			name = "hhid";
			o->hhid = optarg;
			break;
		case OPT_FROM:
			name = "from";
			o->from = optarg;
			break;
		case OPT_INTO:
			name = "into";
			o->into = optarg;
			break;
		case OPT_TO:
			name = "to";
			o->to = optarg;
			break;
		case OPT_FORMAT:
			name = "format";
			o->format = optarg;
			break;
		case OPT_OUT:
			name = "out";
			o->out = optarg;
			break;
		case ':': {
			char nm[40];
			admin_optname(argv[optind - 1] ? argv[optind - 1] : "?", nm, sizeof(nm));
			return admin_usage(usage, "%s: option %s needs a value", what, nm);
		}
		default: {
			char nm[40];
			if (optopt > 0 && optopt < 128)
				return admin_usage(usage, "%s: unknown option -%c", what, optopt);
			admin_optname(argv[optind - 1] ? argv[optind - 1] : "?", nm, sizeof(nm));
			return admin_usage(usage, "%s: unknown option %s", what, nm);
		}
		}
		if (!admin_allowed(allowed, name))
			return admin_usage(usage, "%s does not take --%s", what, name);
	}
	if (o->help)
		return 0;
	if (optind < argc)
		return admin_usage(usage, "%s: unexpected argument (TIDs go on stdin, never on the "
					  "command line)",
				   what);
	if (!o->conf)
		return admin_usage(usage, "%s: missing -c CONF", what);
	return 0;
}

/* What is wrong with a household id, for the message: its prefix, its
 * length, the first character outside its alphabet (named when it is a
 * letter or a sign: a digit always belongs), or its last character. */
static void admin_hhid_problem(const char *v, char *out, size_t cap)
{
	static const char alpha[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	size_t n = strlen(v);

	if (strncmp(v, "hh_", 3) != 0) {
		snprintf(out, cap, "does not start with hh_");
		return;
	}
	for (size_t i = 3; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (strchr(alpha, ch))
			continue;
		if (ch >= 'a' && ch <= 'z' && strchr(alpha, ch - 'a' + 'A'))
			snprintf(out, cap, "has '%c' at character %zu: household ids are upper case",
				 ch, i + 1);
		else if (ch > ' ' && ch < 127)
			snprintf(out, cap,
				 "has '%c' at character %zu: household ids use 0-9 and A-Z without "
				 "I, L, O and U",
				 ch, i + 1);
		else
			snprintf(out, cap, "has a character that is not 0-9 or A-Z at character %zu",
				 i + 1);
		return;
	}
	if (n != DEIDENT_ID_LEN)
		snprintf(out, cap, "has %zu characters after hh_, not %d", n - 3, DEIDENT_ID_LEN - 3);
	else
		snprintf(out, cap, "ends in a character no household id ends in (mistyped?)");
}

static int admin_check_hhid(const char *usage, const char *what, const char *opt,
			    const char *v)
{
	char why[128];

	if (!v)
		return admin_usage(usage, "%s: missing --%s HHID", what, opt);
	if (!deident_hhid_valid(v)) {
		admin_hhid_problem(v, why, sizeof why);
		return admin_usage(usage, "%s: --%s %s", what, opt, why);
	}
	return 0;
}

/* Loads the conf and opens its store. */
static int admin_open(const char *conf, struct cconf *cf, struct store **s, pos_err *e)
{
	int rc = cconf_load(conf, cf, e);

	if (rc < 0)
		return rc;
	return cconf_store_open(cf, CCONF_STORE_WRITE, s, e);
}

/* ----------------------------------------------------------- stdin lines */

/* A line reader over read(2) rather than stdio, so the one buffer that ever
 * held the TIDs is ours to wipe. */
struct lines {
	int fd;
	size_t start, end;
	bool eof;
	char buf[ADMIN_IOBUF];
};

/* Next line without its "\n"/"\r\n" into out (cap bytes). Returns 1 with a
 * line, 0 at end of input, POS_ETOOBIG for an over-long line (consumed),
 * POS_EIO on a read error. */
static int lines_next(struct lines *l, char *out, size_t cap, pos_err *e)
{
	size_t len = 0;
	bool too_long = false;

	for (;;) {
		char *nl;
		size_t avail = l->end - l->start;
		if (avail == 0) {
			ssize_t r;
			if (l->eof)
				break;
			l->start = l->end = 0;
			do
				r = read(l->fd, l->buf, sizeof(l->buf));
			while (r < 0 && errno == EINTR);
			if (r < 0)
				return err_set(e, POS_EIO, "reading stdin: %s", strerror(errno));
			if (r == 0) {
				l->eof = true;
				break;
			}
			l->end = (size_t)r;
			continue;
		}
		nl = memchr(l->buf + l->start, '\n', avail);
		{
			size_t take = nl ? (size_t)(nl - (l->buf + l->start)) : avail;
			if (!too_long && len + take < cap) {
				memcpy(out + len, l->buf + l->start, take);
				len += take;
			} else {
				too_long = true;
			}
			l->start += take + (nl ? 1 : 0);
		}
		if (nl) {
			out[too_long ? 0 : len] = '\0';
			goto got;
		}
	}
	if (len == 0 && !too_long)
		return 0;
	out[too_long ? 0 : len] = '\0';
got:
	if (too_long) {
		wipe(out, cap);
		return err_set(e, POS_ETOOBIG, "line longer than %d bytes", ADMIN_LINE_MAX - 1);
	}
	if (len && out[len - 1] == '\r')
		out[--len] = '\0';
	return 1;
}

/* Trims blanks at both ends in place; returns the start. */
static char *admin_trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* Removes one pair of surrounding CSV double quotes. */
static char *admin_unquote(char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s[n - 1] = '\0';
		return s + 1;
	}
	return s;
}

/* The tid index of a raw TID text; the normalised TID is wiped here. */
static int admin_index(const unsigned char key[KEYS_HMAC_LEN], const char *raw,
		       unsigned char idx[DEIDENT_INDEX_LEN], pos_err *e)
{
	char norm[TID_MAX];
	enum tid_kind kind;
	int rc = tid_normalize(raw, norm, &kind, e);

	if (rc == 0)
		rc = deident_index(key, norm, idx, e);
	wipe(norm, sizeof(norm));
	return rc;
}

/* ------------------------------------------------- household_ref -> hhid */

struct refmap_ent {
	char *ref; /* NULL: free slot */
	char hhid[DEIDENT_ID_LEN + 1];
};

struct refmap {
	struct refmap_ent *v;
	size_t cap, n;
};

static uint64_t refmap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct refmap_ent *refmap_slot(const struct refmap *m, const char *ref)
{
	size_t i = (size_t)refmap_hash(ref) & (m->cap - 1);

	while (m->v[i].ref && strcmp(m->v[i].ref, ref) != 0)
		i = (i + 1) & (m->cap - 1);
	return &m->v[i];
}

static const char *refmap_get(const struct refmap *m, const char *ref)
{
	struct refmap_ent *en;

	if (!m->cap)
		return NULL;
	en = refmap_slot(m, ref);
	return en->ref ? en->hhid : NULL;
}

static int refmap_put(struct refmap *m, const char *ref, const char *hhid, pos_err *e)
{
	struct refmap_ent *en;

	if ((m->n + 1) * 10 > m->cap * 7) {
		struct refmap nm = { 0 };
		if (m->n >= ADMIN_REFS_MAX)
			return err_set(e, POS_ETOOBIG, "more than %d household_refs in one run",
				       ADMIN_REFS_MAX);
		nm.cap = m->cap ? m->cap * 2 : 1024;
		nm.v = calloc(nm.cap, sizeof(*nm.v));
		if (!nm.v)
			return err_set(e, POS_ENOMEM, "out of memory");
		for (size_t i = 0; i < m->cap; i++)
			if (m->v[i].ref)
				*refmap_slot(&nm, m->v[i].ref) = m->v[i];
		nm.n = m->n;
		free(m->v);
		*m = nm;
	}
	en = refmap_slot(m, ref);
	if (!en->ref) {
		en->ref = strdup(ref);
		if (!en->ref)
			return err_set(e, POS_ENOMEM, "out of memory");
		m->n++;
	}
	memcpy(en->hhid, hhid, DEIDENT_ID_LEN + 1);
	return 0;
}

static void refmap_free(struct refmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		wipe_str_free(m->v[i].ref);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------- enrolment */

struct pending {
	long line;
	char hhid[DEIDENT_ID_LEN + 1];
};

struct enrol {
	struct store *s;
	unsigned char key[KEYS_HMAC_LEN];
	struct refmap refs;
	struct pending *out; /* printed only once their batch committed */
	size_t n_out;
	long lines, linked, already, new_households, bad;
	long committed; /* lines whose batch committed */
};

/* Commits the open batch and prints its results. */
static int enrol_flush(struct enrol *en, pos_err *e)
{
	int rc = store_commit(en->s, e);

	if (rc < 0)
		return rc;
	en->committed = en->lines;
	for (size_t i = 0; i < en->n_out; i++)
		printf("%ld,%s\n", en->out[i].line, en->out[i].hhid);
	en->n_out = 0;
	if (fflush(stdout) != 0)
		return err_set(e, POS_EIO, "writing stdout: %s", strerror(errno));
	return 0;
}

static void enrol_bad(struct enrol *en, long line, const char *why)
{
	fprintf(stderr, "line %ld: %s\n", line, why);
	en->bad++;
}

/*
 * One `household_ref,tid` line. Returns 0 when the line was handled (good or
 * bad: bad lines are reported and counted here), < 0 on a store failure that
 * ends the run.
 */
static int enrol_line(struct enrol *en, long line_no, char *line, pos_err *e)
{
	unsigned char idx[DEIDENT_INDEX_LEN];
	char cur[DEIDENT_ID_LEN + 1], hh[DEIDENT_ID_LEN + 1];
	const char *mapped = NULL;
	char *comma, *ref, *tid;
	pos_err le = { 0 };
	int rc;

	comma = strchr(line, ',');
	if (!comma) {
		enrol_bad(en, line_no, "expected household_ref,tid");
		return 0;
	}
	*comma = '\0';
	ref = admin_unquote(admin_trim(line));
	tid = admin_unquote(admin_trim(comma + 1));
	if (strlen(ref) > ADMIN_REF_MAX) {
		enrol_bad(en, line_no, "household_ref longer than 128 characters");
		return 0;
	}
	for (const char *p = ref; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			enrol_bad(en, line_no, "household_ref holds a control character");
			return 0;
		}
	if (!*tid) {
		enrol_bad(en, line_no, "empty tid");
		return 0;
	}
	if (admin_index(en->key, tid, idx, &le) < 0) {
		enrol_bad(en, line_no, le.msg);
		return 0;
	}
	if (*ref)
		mapped = refmap_get(&en->refs, ref);

	rc = store_resolve(en->s, idx, false, NULL, cur, NULL, &le);
	if (rc == 0) {
		/* Already enrolled: fine when it is where this line wants it (a
		 * re-run); a household_ref seen for the first time adopts it. */
		if (mapped && strcmp(mapped, cur) != 0) {
			char why[160];
			snprintf(why, sizeof(why), "already enrolled in household %s; use household merge",
				 cur);
			enrol_bad(en, line_no, why);
			goto done;
		}
		memcpy(hh, cur, sizeof(hh));
		en->already++;
	} else if (rc == POS_ENOTFOUND) {
		if (mapped) {
			memcpy(hh, mapped, sizeof(hh));
		} else {
			rc = deident_hhid_new(hh, e);
			if (rc < 0)
				goto done;
		}
		rc = store_link(en->s, idx, hh, &le);
		if (rc == POS_ECONFLICT) {
			enrol_bad(en, line_no, le.msg);
			rc = 0;
			goto done;
		}
		if (rc < 0) {
			*e = le;
			goto done;
		}
		if (!mapped)
			en->new_households++;
		en->linked++;
	} else {
		*e = le;
		goto done;
	}
	if (*ref && !mapped) {
		rc = refmap_put(&en->refs, ref, hh, e);
		if (rc < 0)
			goto done;
	}
	en->out[en->n_out].line = line_no;
	memcpy(en->out[en->n_out].hhid, hh, sizeof(hh));
	en->n_out++;
	rc = 0;
done:
	wipe(idx, sizeof(idx));
	return rc < 0 ? rc : 0;
}

static int household_enroll(const struct admin_opts *o)
{
	struct cconf cf;
	struct enrol en = { 0 };
	struct lines *in = NULL;
	char line[ADMIN_LINE_MAX];
	char actor[96], detail[256];
	bool tty = isatty(STDERR_FILENO) == 1;
	bool open_txn = false;
	long line_no = 0;
	pos_err e = { 0 };
	int rc, ret = ADMIN_FAIL;

	rc = admin_open(o->conf, &cf, &en.s, &e);
	if (rc == 0)
		rc = keys_load_hmac(cf.k_index, en.key, &e);
	if (rc < 0)
		goto out;
	in = calloc(1, sizeof(*in));
	en.out = calloc(ADMIN_BATCH, sizeof(*en.out));
	if (!in || !en.out) {
		err_set(&e, POS_ENOMEM, "out of memory");
		goto out;
	}
	in->fd = STDIN_FILENO;
	rc = store_begin(en.s, &e);
	if (rc < 0)
		goto out;
	open_txn = true;
	for (;;) {
		pos_err le = { 0 };
		rc = lines_next(in, line, sizeof(line), &le);
		if (rc == 0)
			break;
		line_no++;
		if (rc == POS_ETOOBIG) {
			enrol_bad(&en, line_no, le.msg);
			continue;
		}
		if (rc < 0) {
			e = le;
			goto out;
		}
		if (line_no == 1 && strcmp(admin_trim(line), "household_ref,tid") == 0)
			continue;
		if (admin_trim(line)[0] == '\0')
			continue; /* blank lines carry nothing */
		en.lines++;
		rc = enrol_line(&en, line_no, line, &e);
		wipe(line, sizeof(line));
		if (rc < 0)
			goto out;
		if (en.lines % ADMIN_BATCH == 0) {
			open_txn = false;
			rc = enrol_flush(&en, &e);
			if (rc == 0) {
				rc = store_begin(en.s, &e);
				open_txn = rc == 0;
			}
			if (rc < 0)
				goto out;
			if (tty)
				fprintf(stderr, "\r%ld lines, %ld linked, %ld bad", en.lines, en.linked,
					en.bad);
		}
	}
	admin_actor(actor, sizeof(actor));
	snprintf(detail, sizeof(detail),
		 "lines=%ld linked=%ld already=%ld new_households=%ld bad=%ld", en.lines, en.linked,
		 en.already, en.new_households, en.bad);
	/* The audit row commits with the last batch. */
	rc = store_audit(en.s, actor, "household.enroll", detail, &e);
	if (rc < 0)
		goto out;
	open_txn = false;
	rc = enrol_flush(&en, &e);
	if (rc < 0)
		goto out;
	if (tty)
		fprintf(stderr, "\r%60s\r", "");
	fprintf(stderr, "enrolled: %ld lines, %ld linked (%ld new households), %ld already "
			"enrolled, %ld bad\n",
		en.lines, en.linked, en.new_households, en.already, en.bad);
	ret = en.bad ? ADMIN_FAIL : ADMIN_OK;
out:
	if (ret == ADMIN_FAIL && e.code)
		admin_fail(&e);
	if (open_txn)
		store_rollback(en.s);
	/* Batches committed before a failure stay: the run still leaves its row. */
	if (ret == ADMIN_FAIL && e.code && en.s && line_no > 0) {
		admin_actor(actor, sizeof(actor));
		snprintf(detail, sizeof(detail), "aborted_at_line=%ld committed_lines=%ld", line_no,
			 en.committed);
		store_audit(en.s, actor, "household.enroll", detail, NULL);
	}
	store_close(en.s);
	wipe(en.key, sizeof(en.key));
	wipe(line, sizeof(line));
	if (in)
		wipe_free(in, sizeof(*in));
	free(en.out);
	refmap_free(&en.refs);
	return ret;
}

/* ------------------------------------------------------ show/merge/unlink */

static void admin_time(int64_t ms, char out[TIME_RFC3339_LEN])
{
	if (ms == 0)
		snprintf(out, TIME_RFC3339_LEN, "none");
	else
		time_format_rfc3339(ms, out);
}

/* store_household, and for a household merged away (gone, yet still
 * known: its lanes' spooled baskets follow the merge) a message naming the
 * household it went into instead of "unknown". */
static int admin_household(struct store *s, const char *hhid, struct store_household *h,
			   pos_err *e)
{
	char into[DEIDENT_ID_LEN + 1];
	int rc = store_household(s, hhid, h, e), mr;

	if (rc != POS_ENOTFOUND)
		return rc;
	mr = store_merged_into(s, hhid, into, NULL);
	if (mr == 0)
		err_set(e, POS_ENOTFOUND,
			"household %s was merged into %s: its TIDs and baskets are there now", hhid,
			into);
	return rc;
}

static int household_show(const struct admin_opts *o)
{
	struct cconf cf;
	struct store *s = NULL;
	struct store_household h;
	char actor[96], detail[96], created[TIME_RFC3339_LEN], last[TIME_RFC3339_LEN];
	pos_err e = { 0 };
	int rc;

	rc = admin_open(o->conf, &cf, &s, &e);
	if (rc == 0)
		rc = admin_household(s, o->hhid, &h, &e);
	if (rc == 0) {
		admin_actor(actor, sizeof(actor));
		snprintf(detail, sizeof(detail), "hhid=%s", o->hhid);
		rc = store_audit(s, actor, "household.show", detail, &e);
	}
	if (rc < 0) {
		store_close(s);
		return admin_fail(&e);
	}
	admin_time(h.created_ms, created);
	admin_time(h.last_basket_ms, last);
	printf("hhid: %s\ncreated: %s\ntids: %ld\nbaskets: %ld\nlast basket: %s\n", h.hhid,
	       created, h.n_tids, h.n_baskets, last);
	store_close(s);
	return ADMIN_OK;
}

static int household_merge(const struct admin_opts *o)
{
	struct cconf cf;
	struct store *s = NULL;
	char actor[96], detail[128];
	pos_err e = { 0 };
	int rc;

	rc = admin_open(o->conf, &cf, &s, &e);
	if (rc == 0)
		rc = store_begin(s, &e);
	if (rc == 0) {
		rc = store_merge(s, o->from, o->into, &e);
		if (rc == 0) {
			admin_actor(actor, sizeof(actor));
			snprintf(detail, sizeof(detail), "from=%s into=%s", o->from, o->into);
			rc = store_audit(s, actor, "household.merge", detail, &e);
		}
		if (rc == 0)
			rc = store_commit(s, &e);
		else
			store_rollback(s);
	}
	store_close(s);
	if (rc < 0)
		return admin_fail(&e);
	printf("merged %s into %s\n", o->from, o->into);
	return ADMIN_OK;
}

static int household_unlink(const struct admin_opts *o)
{
	struct cconf cf;
	struct store *s = NULL;
	struct lines *in = NULL;
	unsigned char key[KEYS_HMAC_LEN], idx[DEIDENT_INDEX_LEN];
	char line[ADMIN_LINE_MAX], hh[DEIDENT_ID_LEN + 1];
	char actor[96], detail[128];
	long line_no = 0, unlinked = 0, bad = 0;
	bool open_txn = false;
	pos_err e = { 0 };
	int rc, ret = ADMIN_FAIL;

	rc = admin_open(o->conf, &cf, &s, &e);
	if (rc == 0)
		rc = keys_load_hmac(cf.k_index, key, &e);
	if (rc < 0)
		goto out;
	in = calloc(1, sizeof(*in));
	if (!in) {
		err_set(&e, POS_ENOMEM, "out of memory");
		goto out;
	}
	in->fd = STDIN_FILENO;
	/* One transaction: unlinking is all or nothing, and the lines printed
	 * are only true once it committed. Unlinks are few. */
	rc = store_begin(s, &e);
	if (rc < 0)
		goto out;
	open_txn = true;
	for (;;) {
		pos_err le = { 0 };
		char *t;
		rc = lines_next(in, line, sizeof(line), &le);
		if (rc == 0)
			break;
		line_no++;
		if (rc < 0 && rc != POS_ETOOBIG) {
			e = le;
			goto out;
		}
		if (rc == POS_ETOOBIG) {
			fprintf(stderr, "line %ld: %s\n", line_no, le.msg);
			bad++;
			continue;
		}
		t = admin_unquote(admin_trim(line));
		if (!*t)
			continue;
		rc = admin_index(key, t, idx, &le);
		wipe(line, sizeof(line));
		if (rc == 0)
			rc = store_resolve(s, idx, false, NULL, hh, NULL, &le);
		if (rc == 0)
			rc = store_unlink(s, idx, &le);
		wipe(idx, sizeof(idx));
		if (rc == POS_ENOTFOUND || rc == POS_EINVAL) {
			fprintf(stderr, "line %ld: %s\n", line_no,
				rc == POS_ENOTFOUND ? "not enrolled" : le.msg);
			bad++;
			continue;
		}
		if (rc < 0) {
			e = le;
			goto out;
		}
		printf("%ld,%s\n", line_no, hh);
		unlinked++;
	}
	admin_actor(actor, sizeof(actor));
	snprintf(detail, sizeof(detail), "unlinked=%ld bad=%ld", unlinked, bad);
	rc = store_audit(s, actor, "household.unlink", detail, &e);
	if (rc == 0) {
		open_txn = false;
		rc = store_commit(s, &e);
	}
	if (rc < 0)
		goto out;
	if (fflush(stdout) != 0) {
		err_set(&e, POS_EIO, "writing stdout: %s", strerror(errno));
		goto out;
	}
	fprintf(stderr, "unlinked: %ld, bad lines: %ld\n", unlinked, bad);
	ret = bad ? ADMIN_FAIL : ADMIN_OK;
out:
	if (ret == ADMIN_FAIL && e.code)
		admin_fail(&e);
	if (open_txn)
		store_rollback(s);
	store_close(s);
	wipe(key, sizeof(key));
	wipe(line, sizeof(line));
	if (in)
		wipe_free(in, sizeof(*in));
	return ret;
}

int household_main(int argc, char **argv)
{
	struct admin_opts o;
	const char *action;
	char what[48];
	int rc;

	if (argc < 2)
		return admin_usage(household_usage, "household: missing action");
	action = argv[1];
	if (strcmp(action, "--help") == 0 || strcmp(action, "-h") == 0 ||
	    strcmp(action, "help") == 0) {
		fputs(household_usage, stdout);
		return ADMIN_OK;
	}
	if (strcmp(action, "enroll") != 0 && strcmp(action, "show") != 0 &&
	    strcmp(action, "merge") != 0 && strcmp(action, "unlink") != 0)
		return admin_usage(household_usage,
				   "household: unknown action (enroll, show, merge or unlink)");
	snprintf(what, sizeof(what), "household %s", action);
	rc = admin_parse(argc - 1, argv + 1,
			 strcmp(action, "show") == 0	? "hhid"
			 : strcmp(action, "merge") == 0 ? "from into"
							: "",
			 household_usage, what, &o);
	if (rc != 0)
		return rc;
	if (o.help) {
		fputs(household_usage, stdout);
		return ADMIN_OK;
	}
	if (strcmp(action, "enroll") == 0)
		return household_enroll(&o);
	if (strcmp(action, "unlink") == 0)
		return household_unlink(&o);
	if (strcmp(action, "show") == 0) {
		rc = admin_check_hhid(household_usage, what, "hhid", o.hhid);
		return rc ? rc : household_show(&o);
	}
	rc = admin_check_hhid(household_usage, what, "from", o.from);
	if (rc == 0)
		rc = admin_check_hhid(household_usage, what, "into", o.into);
	if (rc == 0 && strcmp(o.from, o.into) == 0)
		rc = admin_usage(household_usage, "%s: --from and --into are the same household",
				 what);
	return rc ? rc : household_merge(&o);
}

/* ---------------------------------------------------------------- backup */

int backup_main(int argc, char **argv)
{
	struct admin_opts o;
	struct cconf cf;
	struct store *s = NULL;
	char actor[96], detail[128];
	pos_err e = { 0 };
	int rc;

	rc = admin_parse(argc, argv, "out", backup_usage, "backup", &o);
	if (rc != 0)
		return rc;
	if (o.help) {
		fputs(backup_usage, stdout);
		return ADMIN_OK;
	}
	if (!o.out || !*o.out)
		return admin_usage(backup_usage, "backup: missing --out FILE");
	rc = admin_open(o.conf, &cf, &s, &e);
	if (rc == 0 && cf.backend == STORE_POSTGRESQL)
		rc = err_set(&e, POS_EINVAL, "backup: the store is PostgreSQL: back it up with "
					     "pg_basebackup or pg_dump (docs/scaling.md)");
	if (rc == 0 && strcmp(o.out, cf.database) == 0)
		rc = err_set(&e, POS_EINVAL, "backup: --out is the database itself");
	if (rc == 0)
		rc = store_backup(s, o.out, &e);
	if (rc == 0) {
		admin_actor(actor, sizeof(actor));
		snprintf(detail, sizeof(detail), "out=%.100s", o.out);
		rc = store_audit(s, actor, "backup", detail, &e);
	}
	store_close(s);
	if (rc < 0)
		return admin_fail(&e);
	printf("backup of %s written to %s\n", cf.database, o.out);
	return ADMIN_OK;
}

/* --------------------------------------------------------------- history */

static int admin_stdout_sink(const void *buf, size_t len, void *arg)
{
	(void)arg;
	if (fwrite(buf, 1, len, stdout) != len)
		return POS_EIO;
	return 0;
}

int history_main(int argc, char **argv)
{
	struct store_household hh;
	struct admin_opts o;
	struct cconf cf;
	struct store *s = NULL;
	int64_t from_ms = 0, to_ms = 0;
	char actor[96], detail[96];
	int fmt = HISTORY_CSV, table = 0, rc;
	pos_err e = { 0 };

	rc = admin_parse(argc, argv, "hhid from to format", history_usage, "history", &o);
	if (rc != 0)
		return rc;
	if (o.help) {
		fputs(history_usage, stdout);
		return ADMIN_OK;
	}
	rc = admin_check_hhid(history_usage, "history", "hhid", o.hhid);
	if (rc != 0)
		return rc;
	if (o.format) {
		if (strcmp(o.format, "table") == 0)
			table = 1;
		else if ((fmt = history_format_parse(o.format)) < 0)
			return admin_usage(history_usage,
					   "history: --format must be csv, json or table");
	}
	if (o.from && time_parse_rfc3339(o.from, 1, &from_ms, &e) < 0)
		return admin_usage(history_usage, "history: --from: %s", e.msg);
	if (o.to && time_parse_rfc3339(o.to, 1, &to_ms, &e) < 0)
		return admin_usage(history_usage, "history: --to: %s", e.msg);
	/* A bare --to date means "until the end of that day", as offer's. */
	if (o.to && strlen(o.to) == 10)
		to_ms += ADMIN_DAY_MS;
	if (o.from && o.to && from_ms >= to_ms)
		return admin_usage(history_usage, "history: --to %.40s is before --from %.40s",
				   o.to, o.from);

	rc = admin_open(o.conf, &cf, &s, &e);
	/* Not store_household_exists: that one also says yes for a household
	 * merged away, which has no history of its own any more. */
	if (rc == 0)
		rc = admin_household(s, o.hhid, &hh, &e);
	if (rc == 0) {
		admin_actor(actor, sizeof(actor));
		snprintf(detail, sizeof(detail), "hhid=%s", o.hhid);
		rc = store_audit(s, actor, "history.read", detail, &e);
	}
	if (rc == 0) {
		if (table)
			rc = history_write_table(s, o.hhid, from_ms, to_ms, admin_stdout_sink, NULL,
						 &e);
		else
			rc = history_write(s, o.hhid, from_ms, to_ms, (enum history_format)fmt,
					   admin_stdout_sink, NULL, &e);
	}
	if (rc == 0 && fflush(stdout) != 0)
		rc = err_set(&e, POS_EIO, "writing stdout: %s", strerror(errno));
	store_close(s);
	return rc < 0 ? admin_fail(&e) : ADMIN_OK;
}
