#include "profile.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "ctab.h"

#define PROFILE_SEC "profile"

static const struct ctab_word profile_kinds[] = {
	{ "text", PROFILE_TEXT }, { "msr", PROFILE_MSR }, { NULL, 0 }
};
static const struct ctab_word profile_parities[] = {
	{ "none", PROFILE_PARITY_NONE }, { "odd", PROFILE_PARITY_ODD },
	{ "even", PROFILE_PARITY_EVEN }, { NULL, 0 }
};
static const struct ctab_word profile_flows[] = {
	{ "none", PROFILE_FLOW_NONE }, { "xonxoff", PROFILE_FLOW_XONXOFF },
	{ "rtscts", PROFILE_FLOW_RTSCTS }, { NULL, 0 }
};
static const struct ctab_word profile_terms[] = {
	{ "cr", FRAMER_TERM_CR },   { "lf", FRAMER_TERM_LF },   { "crlf", FRAMER_TERM_CRLF },
	{ "etx", FRAMER_TERM_ETX }, { "eol", FRAMER_TERM_EOL }, { "none", FRAMER_TERM_NONE },
	{ NULL, 0 }
};
static const struct ctab_word profile_prefixes[] = {
	{ "none", FRAMER_PREFIX_NONE }, { "stx", FRAMER_PREFIX_STX }, { NULL, 0 }
};
static const struct ctab_word profile_aims[] = {
	{ "optional", PROFILE_AIM_OPTIONAL }, { "none", PROFILE_AIM_NONE }, { NULL, 0 }
};

/* The speeds termios can set (B50..B230400 are in every Linux libc). */
static const long profile_bauds[] = { 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200,
				      230400 };

static int profile_baud(struct cfg *c, const char *sec, const char *key, void *out, pos_err *e)
{
	const struct profile *p = out;

	for (size_t i = 0; i < sizeof profile_bauds / sizeof profile_bauds[0]; i++)
		if (profile_bauds[i] == p->baud)
			return 0;
	return err_set(e, POS_EINVAL,
		       "%s:%d: '%s' must be one of 1200 2400 4800 9600 19200 38400 57600 115200 "
		       "230400",
		       c->name, cfg_line(c, sec, key), key);
}

/* terminator = none needs an idle timeout: the only end of a frame then. */
static int profile_idle(struct cfg *c, const char *sec, const char *key, void *out, pos_err *e)
{
	const struct profile *p = out;
	int line;

	if (p->term != FRAMER_TERM_NONE || p->idle_timeout_ms > 0)
		return 0;
	line = cfg_line(c, sec, key);
	return err_set(e, POS_EINVAL,
		       "%s:%d: 'terminator = none' needs idle_timeout_ms > 0 (the only end "
		       "of a frame)",
		       c->name, line ? line : cfg_line(c, sec, "terminator"));
}

#define PF(f) CTAB_FIELD(struct profile, f)
#define PROFILE_STR(x) #x
#define PROFILE_NUM(x) PROFILE_STR(x)

/* The [profile] section, every key. */
static const struct ctab_key profile_keys[] = {
	{ PROFILE_SEC, "name", CT_STR, NULL, 0, 0, PF(name), NULL, NULL },
	{ PROFILE_SEC, "kind", CT_WORD, NULL, 0, 0, PF(kind), profile_kinds, NULL },
	{ PROFILE_SEC, "baud", CT_INT, "9600", 1, 4000000, PF(baud), NULL, profile_baud },
	{ PROFILE_SEC, "data_bits", CT_INT, "8", 5, 8, PF(data_bits), NULL, NULL },
	{ PROFILE_SEC, "parity", CT_WORD, "none", 0, 0, PF(parity), profile_parities, NULL },
	{ PROFILE_SEC, "stop_bits", CT_INT, "1", 1, 2, PF(stop_bits), NULL, NULL },
	{ PROFILE_SEC, "flow", CT_WORD, "none", 0, 0, PF(flow), profile_flows, NULL },
	{ PROFILE_SEC, "terminator", CT_WORD, NULL, 0, 0, PF(term), profile_terms, NULL },
	{ PROFILE_SEC, "prefix", CT_WORD, "none", 0, 0, PF(prefix), profile_prefixes, NULL },
	{ PROFILE_SEC, "idle_timeout_ms", CT_INT, "0", 0, 60000, PF(idle_timeout_ms), NULL,
	  profile_idle },
	{ PROFILE_SEC, "aim", CT_WORD, "none", 0, 0, PF(aim), profile_aims, NULL },
	{ PROFILE_SEC, "max_len", CT_INT, "256", 1, FRAMER_MAX_LEN_LIMIT, PF(max_len), NULL, NULL },
};

static int profile_parse(struct cfg *c, struct profile *p, pos_err *e)
{
	int rc;

	if (!cfg_has_section(c, PROFILE_SEC))
		return err_set(e, POS_EINVAL, "%s: no [profile] section", c->name);
	if ((rc = ctab_take(c, NULL, profile_keys, sizeof profile_keys / sizeof profile_keys[0], p,
			    e)) < 0)
		return rc;
	return cfg_check_unused(c, e);
}

int profile_load_file(const char *path, struct profile *out, pos_err *e)
{
	struct cfg *c = NULL;
	struct profile p;
	int rc;

	if (!path || !out)
		return err_set(e, POS_EINVAL, "profile: no path");
	memset(&p, 0, sizeof p);
	if (strlen(path) >= sizeof p.path)
		return err_set(e, POS_ETOOBIG, "profile: path longer than %zu bytes",
			       sizeof p.path - 1);
	memcpy(p.path, path, strlen(path) + 1);
	rc = cfg_load(path, &c, e);
	if (rc < 0)
		goto out;
	rc = profile_parse(c, &p, e);
	if (rc < 0)
		goto out;
	*out = p;
out:
	cfg_free(c);
	return rc;
}

/* A bare name may not climb out of the profile folder. */
static bool profile_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= PROFILE_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '-' || ch == '.'))
			return false;
	}
	return true;
}

/* Joins dir/rel/name into buf; false when it does not fit. */
static bool profile_join(char *buf, size_t cap, const char *dir, const char *rel, const char *name)
{
	int n = snprintf(buf, cap, "%s%s%s/%s", dir, rel[0] ? "/" : "", rel, name);
	return n > 0 && (size_t)n < cap;
}

static bool profile_is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int profile_find(const char *name, char *path, size_t cap, pos_err *e)
{
	/* The installed layout first: an installed binary never looks at a
	 * source tree's place (/usr/bin/../../hw would be /hw). */
	static const char *const exe_rel[] = { "../share/pos/profiles", "../../hw/profiles",
					       "../../../hw/profiles" };
	char exe[PATH_MAX], cand[PATH_MAX], looked[512];
	size_t off = 0;
	const char *env;
	ssize_t n;

	if (!name || !path || cap == 0)
		return err_set(e, POS_EINVAL, "profile: no name");
	if (!profile_name_ok(name))
		return err_set(e, POS_EINVAL, "profile name '%.64s' is not a plain name", name);
	looked[0] = '\0';
	env = getenv("POS_PROFILE_DIR");
	if (env && env[0]) {
		if (profile_join(cand, sizeof cand, env, "", name) && profile_is_file(cand))
			goto found;
		off += (size_t)snprintf(looked, sizeof looked, "%.120s", env);
	}
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		for (size_t i = 0; i < sizeof exe_rel / sizeof exe_rel[0]; i++) {
			if (profile_join(cand, sizeof cand, exe, exe_rel[i], name) &&
			    profile_is_file(cand))
				goto found;
			if (off < sizeof looked) {
				int w = snprintf(looked + off, sizeof looked - off, "%s%.120s/%s",
						 off ? ", " : "", exe, exe_rel[i]);
				if (w > 0)
					off += (size_t)w;
			}
		}
	}
	return err_set(e, POS_ENOTFOUND, "profile '%s' not found (looked in %s)", name, looked);
found:
	if (strlen(cand) >= cap)
		return err_set(e, POS_ETOOBIG, "profile '%s': path too long", name);
	memcpy(path, cand, strlen(cand) + 1);
	return 0;
}

int profile_load(const char *spec, struct profile *out, pos_err *e)
{
	char path[PROFILE_PATH_MAX];
	int rc;

	if (!spec || !spec[0])
		return err_set(e, POS_EINVAL, "profile: empty name");
	if (strchr(spec, '/'))
		return profile_load_file(spec, out, e);
	rc = profile_find(spec, path, sizeof path, e);
	if (rc < 0)
		return rc;
	return profile_load_file(path, out, e);
}

void profile_framer_opts(const struct profile *p, struct framer_opts *o)
{
	o->term = p->term;
	o->prefix = p->prefix;
	o->max_len = p->max_len;
}

const char *profile_kind_name(enum profile_kind k)
{
	return k == PROFILE_MSR ? "msr" : "text";
}
