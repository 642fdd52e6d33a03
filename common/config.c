#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * A small line-based INI reader rather than inih: Debian's libinih is built
 * without INI_HANDLER_LINENO, and every message here must name FILE:LINE.
 * Grammar: "[section]", "key = value", full-line comments starting with ';'
 * or '#', and inline comments starting with ';' after whitespace (a '#'
 * inline is kept: regex values may contain one).
 *
 * Section headers are stored as entries with key == NULL: that gives each
 * section a line and a "used" mark (set when any getter asks for the
 * section), which cfg_check_unused needs to report unknown sections.
 */

#define CFG_MAX_ENTRIES 4096
#define CFG_MAX_NAME 128

static const char *cfg_name(const struct cfg *c)
{
	return c && c->name ? c->name : "<config>";
}

static char *cfg_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].section);
		free(c->v[i].key);
		free(c->v[i].value);
	}
	free(c->v);
	free(c->name);
	free(c->dir);
	free(c);
}

static int cfg_is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

static int cfg_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > CFG_MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '-' || ch == '.'))
			return 0;
	}
	return 1;
}

/* Finds a key entry (key != NULL) or a section header (key == NULL). */
static struct cfg_entry *cfg_find(const struct cfg *c, const char *sec, const char *key)
{
	for (size_t i = 0; i < c->n; i++) {
		struct cfg_entry *en = &c->v[i];
		if (strcmp(en->section, sec) != 0)
			continue;
		if (!key && !en->key)
			return en;
		if (key && en->key && strcmp(en->key, key) == 0)
			return en;
	}
	return NULL;
}

static int cfg_add(struct cfg *c, const char *sec, size_t seclen, const char *key,
		   size_t keylen, const char *val, size_t vallen, int line, pos_err *e)
{
	struct cfg_entry *en;

	if (c->n >= CFG_MAX_ENTRIES)
		return err_set(e, POS_ETOOBIG, "%s:%d: more than %d entries", cfg_name(c), line,
			       CFG_MAX_ENTRIES);
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 32;
		struct cfg_entry *nv = realloc(c->v, ncap * sizeof *nv);
		if (!nv)
			return err_set(e, POS_ENOMEM, "%s:%d: out of memory", cfg_name(c), line);
		c->v = nv;
		c->cap = ncap;
	}
	en = &c->v[c->n];
	memset(en, 0, sizeof *en);
	en->line = line;
	en->section = cfg_strndup(sec, seclen);
	if (key) {
		en->key = cfg_strndup(key, keylen);
		en->value = cfg_strndup(val, vallen);
	}
	if (!en->section || (key && (!en->key || !en->value))) {
		free(en->section);
		free(en->key);
		free(en->value);
		return err_set(e, POS_ENOMEM, "%s:%d: out of memory", cfg_name(c), line);
	}
	c->n++;
	return 0;
}

/* Parses one line (without its newline); *cur is the current section
 * entry index, or -1 before the first header. */
static int cfg_parse_line(struct cfg *c, const char *s, size_t n, int line, long *cur,
			  pos_err *e)
{
	const char *eq, *k, *v;
	size_t kl, vl;

	if (n > 0 && s[n - 1] == '\r')
		n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return err_set(e, POS_EINVAL, "%s:%d: control character in line", cfg_name(c),
				       line);
	}
	while (n > 0 && cfg_is_space(*s)) {
		s++;
		n--;
	}
	while (n > 0 && cfg_is_space(s[n - 1]))
		n--;
	if (n == 0 || s[0] == ';' || s[0] == '#')
		return 0;

	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);
		const char *name = s + 1;
		size_t nl;
		struct cfg_entry *prev;
		char tmp[CFG_MAX_NAME + 1];

		if (!close)
			return err_set(e, POS_EINVAL, "%s:%d: section header without ']'", cfg_name(c),
				       line);
		for (const char *p = close + 1; p < s + n; p++) {
			if (*p == ';' || *p == '#')
				break;
			if (!cfg_is_space(*p))
				return err_set(e, POS_EINVAL, "%s:%d: text after section header",
					       cfg_name(c), line);
		}
		nl = (size_t)(close - name);
		while (nl > 0 && cfg_is_space(*name)) {
			name++;
			nl--;
		}
		while (nl > 0 && cfg_is_space(name[nl - 1]))
			nl--;
		if (!cfg_name_ok(name, nl))
			return err_set(e, POS_EINVAL,
				       "%s:%d: bad section name (letters, digits, '.', '_', '-'; "
				       "at most %d)",
				       cfg_name(c), line, CFG_MAX_NAME);
		memcpy(tmp, name, nl);
		tmp[nl] = '\0';
		prev = cfg_find(c, tmp, NULL);
		if (prev)
			return err_set(e, POS_EINVAL, "%s:%d: section [%s] repeated (first at line %d)",
				       cfg_name(c), line, tmp, prev->line);
		int rc = cfg_add(c, name, nl, NULL, 0, NULL, 0, line, e);
		if (rc < 0)
			return rc;
		*cur = (long)c->n - 1;
		return 0;
	}

	eq = memchr(s, '=', n);
	if (!eq)
		return err_set(e, POS_EINVAL, "%s:%d: expected 'key = value' or '[section]'",
			       cfg_name(c), line);
	if (*cur < 0)
		return err_set(e, POS_EINVAL, "%s:%d: key before any [section]", cfg_name(c), line);
	k = s;
	kl = (size_t)(eq - s);
	while (kl > 0 && cfg_is_space(k[kl - 1]))
		kl--;
	if (!cfg_name_ok(k, kl))
		return err_set(e, POS_EINVAL,
			       "%s:%d: bad key name (letters, digits, '.', '_', '-'; at most %d)",
			       cfg_name(c), line, CFG_MAX_NAME);
	v = eq + 1;
	vl = (size_t)(s + n - v);
	for (size_t i = 0; i < vl; i++)
		if (v[i] == ';' && (i == 0 || cfg_is_space(v[i - 1]))) {
			vl = i;
			break;
		}
	while (vl > 0 && cfg_is_space(*v)) {
		v++;
		vl--;
	}
	while (vl > 0 && cfg_is_space(v[vl - 1]))
		vl--;
	if (vl > CFG_MAX_VALUE)
		return err_set(e, POS_ETOOBIG, "%s:%d: value longer than %d bytes", cfg_name(c), line,
			       CFG_MAX_VALUE);
	{
		const char *sec = c->v[*cur].section;
		char key[CFG_MAX_NAME + 1];
		struct cfg_entry *prev;

		memcpy(key, k, kl);
		key[kl] = '\0';
		prev = cfg_find(c, sec, key);
		if (prev)
			return err_set(e, POS_EINVAL,
				       "%s:%d: duplicate key '%s' in [%s] (first at line %d)",
				       cfg_name(c), line, key, sec, prev->line);
		/* sec points into c->v, which cfg_add may move: copy it first. */
		char secbuf[CFG_MAX_NAME + 1];
		size_t sl = strlen(sec);
		memcpy(secbuf, sec, sl + 1);
		return cfg_add(c, secbuf, sl, k, kl, v, vl, line, e);
	}
}

int cfg_load_string(const char *text, size_t len, const char *name, const char *dir,
		    struct cfg **out, pos_err *e)
{
	struct cfg *c;
	size_t pos = 0;
	long cur = -1;
	int line = 0, rc;

	if (!out)
		return err_set(e, POS_EINVAL, "config: no output");
	*out = NULL;
	if (!name)
		name = "<config>";
	if (!text && len)
		return err_set(e, POS_EINVAL, "%s: no text", name);
	if (len > CFG_MAX_FILE)
		return err_set(e, POS_ETOOBIG, "%s: larger than %d bytes", name, CFG_MAX_FILE);
	c = calloc(1, sizeof *c);
	if (!c)
		return err_set(e, POS_ENOMEM, "%s: out of memory", name);
	c->name = strdup(name);
	c->dir = strdup(dir && dir[0] ? dir : ".");
	if (!c->name || !c->dir) {
		rc = err_set(e, POS_ENOMEM, "%s: out of memory", name);
		goto fail;
	}
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		const char *s = text + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;

		line++;
		if (memchr(s, '\0', n)) {
			rc = err_set(e, POS_EINVAL, "%s:%d: NUL byte in line", name, line);
			goto fail;
		}
		rc = cfg_parse_line(c, s, n, line, &cur, e);
		if (rc < 0)
			goto fail;
		pos += n + (nl ? 1 : 0);
	}
	*out = c;
	return 0;
fail:
	cfg_free(c);
	return rc;
}

int cfg_load(const char *path, struct cfg **out, pos_err *e)
{
	char *buf = NULL, *dir = NULL, *slash;
	size_t len = 0;
	struct stat st;
	int fd = -1, rc;

	if (!out)
		return err_set(e, POS_EINVAL, "config: no output");
	*out = NULL;
	if (!path)
		return err_set(e, POS_EINVAL, "config: no path");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_set(e, errno == ENOENT ? POS_ENOTFOUND : POS_EIO, "%s: cannot open: %s",
			       path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = err_set(e, POS_EIO, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > CFG_MAX_FILE) {
		rc = err_set(e, POS_ETOOBIG, "%s: larger than %d bytes", path, CFG_MAX_FILE);
		goto out;
	}
	buf = malloc(CFG_MAX_FILE + 1);
	if (!buf) {
		rc = err_set(e, POS_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	/* Read up to one byte past the cap, so a file that grew after fstat
	 * is still caught. */
	for (;;) {
		ssize_t r = read(fd, buf + len, CFG_MAX_FILE + 1 - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = err_set(e, POS_EIO, "%s: read failed: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > CFG_MAX_FILE) {
			rc = err_set(e, POS_ETOOBIG, "%s: larger than %d bytes", path, CFG_MAX_FILE);
			goto out;
		}
	}
	dir = strdup(path);
	if (!dir) {
		rc = err_set(e, POS_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	slash = strrchr(dir, '/');
	if (!slash) {
		dir[0] = '.';
		dir[1] = '\0';
	} else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	rc = cfg_load_string(buf, len, path, dir, out, e);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(dir);
	return rc;
}

/* Looks up a key for a getter and marks both it and its section used. */
static struct cfg_entry *cfg_take(struct cfg *c, const char *sec, const char *key)
{
	struct cfg_entry *hdr, *en;

	if (!c || !sec || !key)
		return NULL;
	hdr = cfg_find(c, sec, NULL);
	if (hdr)
		hdr->used = true;
	en = cfg_find(c, sec, key);
	if (en)
		en->used = true;
	return en;
}

static int cfg_missing(const struct cfg *c, const char *sec, const char *key, pos_err *e)
{
	const struct cfg_entry *hdr = c ? cfg_find(c, sec, NULL) : NULL;

	if (hdr)
		return err_set(e, POS_EINVAL, "%s:%d: [%s] needs key '%s'", cfg_name(c), hdr->line,
			       sec, key);
	return err_set(e, POS_EINVAL, "%s: missing section [%s] with key '%s'", cfg_name(c), sec,
		       key);
}

int cfg_str(struct cfg *c, const char *sec, const char *key, const char *dflt,
	    const char **out, pos_err *e)
{
	struct cfg_entry *en = cfg_take(c, sec, key);

	if (!out)
		return err_set(e, POS_EINVAL, "config: no output");
	if (!en) {
		if (!dflt)
			return cfg_missing(c, sec, key, e);
		*out = dflt;
		return 0;
	}
	if (!dflt && en->value[0] == '\0')
		return err_set(e, POS_EINVAL, "%s:%d: '%s' in [%s] must not be empty", cfg_name(c),
			       en->line, key, sec);
	*out = en->value;
	return 0;
}

int cfg_int(struct cfg *c, const char *sec, const char *key, long dflt, long min,
	    long max, long *out, pos_err *e)
{
	struct cfg_entry *en = cfg_take(c, sec, key);
	char *end = NULL;
	long v;

	if (!out)
		return err_set(e, POS_EINVAL, "config: no output");
	if (!en) {
		*out = dflt;
		return 0;
	}
	errno = 0;
	v = strtol(en->value, &end, 10);
	if (en->value[0] == '\0' || cfg_is_space(en->value[0]) || *end != '\0' || errno == ERANGE ||
	    v < min || v > max)
		return err_set(e, POS_EINVAL, "%s:%d: '%s' in [%s] must be an integer from %ld to %ld",
			       cfg_name(c), en->line, key, sec, min, max);
	*out = v;
	return 0;
}

int cfg_bool(struct cfg *c, const char *sec, const char *key, int dflt, bool *out,
	     pos_err *e)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	struct cfg_entry *en = cfg_take(c, sec, key);

	if (!out)
		return err_set(e, POS_EINVAL, "config: no output");
	if (!en) {
		/* A negative default makes the key required. */
		if (dflt < 0)
			return cfg_missing(c, sec, key, e);
		*out = dflt != 0;
		return 0;
	}
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(en->value, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(en->value, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return err_set(e, POS_EINVAL, "%s:%d: '%s' in [%s] must be yes or no", cfg_name(c),
		       en->line, key, sec);
}

int cfg_path(struct cfg *c, const char *sec, const char *key, const char *dflt,
	     char *out, size_t outcap, pos_err *e)
{
	const char *v;
	int line = 0, n;
	int rc = cfg_str(c, sec, key, dflt, &v, e);

	if (rc < 0)
		return rc;
	if (!out || outcap == 0)
		return err_set(e, POS_EINVAL, "config: no output");
	{
		const struct cfg_entry *en = cfg_find(c, sec, key);
		if (en)
			line = en->line;
	}
	if (v[0] == '\0')
		return err_set(e, POS_EINVAL, "%s:%d: '%s' in [%s] is an empty path", cfg_name(c), line,
			       key, sec);
	if (v[0] == '/' || !c->dir || strcmp(c->dir, ".") == 0)
		n = snprintf(out, outcap, "%s", v);
	else if (c->dir[strlen(c->dir) - 1] == '/')
		n = snprintf(out, outcap, "%s%s", c->dir, v);
	else
		n = snprintf(out, outcap, "%s/%s", c->dir, v);
	if (n < 0 || (size_t)n >= outcap) {
		out[0] = '\0';
		return err_set(e, POS_ETOOBIG, "%s:%d: path for '%s' in [%s] longer than %zu bytes",
			       cfg_name(c), line, key, sec, outcap - 1);
	}
	return 0;
}

bool cfg_has_section(const struct cfg *c, const char *sec)
{
	return c && sec && cfg_find(c, sec, NULL) != NULL;
}

int cfg_each_section(const struct cfg *c, const char *prefix,
		     int (*fn)(const char *section, void *arg), void *arg)
{
	size_t pl;

	if (!c || !fn)
		return 0;
	pl = prefix ? strlen(prefix) : 0;
	/* Headers are unique (a repeat fails at load), so each is one section. */
	for (size_t i = 0; i < c->n; i++) {
		const struct cfg_entry *en = &c->v[i];
		if (en->key || strncmp(en->section, prefix ? prefix : "", pl) != 0)
			continue;
		int r = fn(en->section, arg);
		if (r)
			return r;
	}
	return 0;
}

int cfg_line(const struct cfg *c, const char *sec, const char *key)
{
	const struct cfg_entry *en;

	if (!c || !sec)
		return 0;
	en = cfg_find(c, sec, key);
	return en ? en->line : 0;
}

int cfg_check_unused(const struct cfg *c, pos_err *e)
{
	if (!c)
		return 0;
	for (size_t i = 0; i < c->n; i++) {
		const struct cfg_entry *en = &c->v[i];
		if (en->used)
			continue;
		if (!en->key)
			return err_set(e, POS_EINVAL, "%s:%d: unknown section [%s]", cfg_name(c),
				       en->line, en->section);
		/* Keys of an unknown section were reported with their header. */
		return err_set(e, POS_EINVAL, "%s:%d: unknown key '%s' in [%s]", cfg_name(c),
			       en->line, en->key, en->section);
	}
	return 0;
}
