#include "profile.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define PROFILE_SEC "profile"

/* One value of an enumerated key: its word in the file and its number. */
struct profile_word {
	const char *word;
	int value;
};

static const struct profile_word profile_kinds[] = {
	{ "text", PROFILE_TEXT }, { "msr", PROFILE_MSR }, { NULL, 0 }
};
static const struct profile_word profile_parities[] = {
	{ "none", PROFILE_PARITY_NONE }, { "odd", PROFILE_PARITY_ODD },
	{ "even", PROFILE_PARITY_EVEN }, { NULL, 0 }
};
static const struct profile_word profile_flows[] = {
	{ "none", PROFILE_FLOW_NONE }, { "xonxoff", PROFILE_FLOW_XONXOFF },
	{ "rtscts", PROFILE_FLOW_RTSCTS }, { NULL, 0 }
};
static const struct profile_word profile_terms[] = {
	{ "cr", FRAMER_TERM_CR },   { "lf", FRAMER_TERM_LF },   { "crlf", FRAMER_TERM_CRLF },
	{ "etx", FRAMER_TERM_ETX }, { "eol", FRAMER_TERM_EOL }, { "none", FRAMER_TERM_NONE },
	{ NULL, 0 }
};
static const struct profile_word profile_prefixes[] = {
	{ "none", FRAMER_PREFIX_NONE }, { "stx", FRAMER_PREFIX_STX }, { NULL, 0 }
};
static const struct profile_word profile_aims[] = {
	{ "optional", PROFILE_AIM_OPTIONAL }, { "none", PROFILE_AIM_NONE }, { NULL, 0 }
};

/* The speeds termios can set (B50..B230400 are in every Linux libc). */
static const long profile_bauds[] = { 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200,
				      230400 };

/* Reads an enumerated key; a word not in the table fails with FILE:LINE
 * and the accepted words. */
static int profile_enum(struct cfg *c, const char *key, const char *dflt,
			const struct profile_word *tab, int *out, pos_err *e)
{
	const char *v;
	char allowed[128];
	size_t off = 0;
	int rc = cfg_str(c, PROFILE_SEC, key, dflt, &v, e);

	if (rc < 0)
		return rc;
	for (size_t i = 0; tab[i].word; i++) {
		if (strcmp(v, tab[i].word) == 0) {
			*out = tab[i].value;
			return 0;
		}
		int n = snprintf(allowed + off, sizeof allowed - off, "%s%s", i ? "|" : "",
				 tab[i].word);
		if (n > 0 && (size_t)n < sizeof allowed - off)
			off += (size_t)n;
	}
	return err_set(e, POS_EINVAL, "%s:%d: '%s' must be %s", c->name,
		       cfg_line(c, PROFILE_SEC, key), key, allowed);
}

static int profile_parse(struct cfg *c, struct profile *p, pos_err *e)
{
	const char *name;
	long v;
	int w, rc;
	bool baud_ok = false;

	if (!cfg_has_section(c, PROFILE_SEC))
		return err_set(e, POS_EINVAL, "%s: no [profile] section", c->name);
	if ((rc = cfg_str(c, PROFILE_SEC, "name", NULL, &name, e)) < 0)
		return rc;
	if (strlen(name) >= sizeof p->name)
		return err_set(e, POS_EINVAL, "%s:%d: 'name' longer than %zu bytes", c->name,
			       cfg_line(c, PROFILE_SEC, "name"), sizeof p->name - 1);
	memcpy(p->name, name, strlen(name) + 1);

	if ((rc = profile_enum(c, "kind", NULL, profile_kinds, &w, e)) < 0)
		return rc;
	p->kind = (enum profile_kind)w;

	if ((rc = cfg_int(c, PROFILE_SEC, "baud", 9600, 1, 4000000, &v, e)) < 0)
		return rc;
	for (size_t i = 0; i < sizeof profile_bauds / sizeof profile_bauds[0]; i++)
		baud_ok = baud_ok || profile_bauds[i] == v;
	if (!baud_ok)
		return err_set(e, POS_EINVAL,
			       "%s:%d: 'baud' must be one of 1200 2400 4800 9600 19200 38400 57600 "
			       "115200 230400",
			       c->name, cfg_line(c, PROFILE_SEC, "baud"));
	p->baud = v;

	if ((rc = cfg_int(c, PROFILE_SEC, "data_bits", 8, 5, 8, &v, e)) < 0)
		return rc;
	p->data_bits = (int)v;
	if ((rc = profile_enum(c, "parity", "none", profile_parities, &w, e)) < 0)
		return rc;
	p->parity = (enum profile_parity)w;
	if ((rc = cfg_int(c, PROFILE_SEC, "stop_bits", 1, 1, 2, &v, e)) < 0)
		return rc;
	p->stop_bits = (int)v;
	if ((rc = profile_enum(c, "flow", "none", profile_flows, &w, e)) < 0)
		return rc;
	p->flow = (enum profile_flow)w;

	if ((rc = profile_enum(c, "terminator", NULL, profile_terms, &w, e)) < 0)
		return rc;
	p->term = (enum framer_term)w;
	if ((rc = profile_enum(c, "prefix", "none", profile_prefixes, &w, e)) < 0)
		return rc;
	p->prefix = (enum framer_prefix)w;
	if ((rc = cfg_int(c, PROFILE_SEC, "idle_timeout_ms", 0, 0, 60000, &v, e)) < 0)
		return rc;
	p->idle_timeout_ms = (unsigned)v;
	if (p->term == FRAMER_TERM_NONE && p->idle_timeout_ms == 0) {
		int line = cfg_line(c, PROFILE_SEC, "idle_timeout_ms");
		return err_set(e, POS_EINVAL,
			       "%s:%d: 'terminator = none' needs idle_timeout_ms > 0 (the only end "
			       "of a frame)",
			       c->name, line ? line : cfg_line(c, PROFILE_SEC, "terminator"));
	}
	if ((rc = profile_enum(c, "aim", "none", profile_aims, &w, e)) < 0)
		return rc;
	p->aim = (enum profile_aim)w;
	if ((rc = cfg_int(c, PROFILE_SEC, "max_len", 256, 1, FRAMER_MAX_LEN_LIMIT, &v, e)) < 0)
		return rc;
	p->max_len = (size_t)v;
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
