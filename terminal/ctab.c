#include "ctab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"

#define CTAB_URLS_MAX 4

static int ctab_copy(struct cfg *cf, const char *sec, const char *key, const char *v, char *out,
		     size_t cap, pos_err *e)
{
	size_t n = strlen(v);

	if (n >= cap)
		return err_set(e, POS_ETOOBIG, "%s:%d: '%s' in [%s] is longer than %zu characters",
			       cf->name, cfg_line(cf, sec, key), key, sec, cap - 1);
	memcpy(out, v, n + 1);
	return 0;
}

int ctab_url_list(struct cfg *cf, const char *sec, const char *v, pos_err *e)
{
	const char *p = v;
	int count = 0;

	while (*p) {
		size_t n;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		n = strcspn(p, " ");
		/* No plain http: the TID envelope is sealed, but baskets and the
		 * terminal's identity still need TLS. */
		if (n <= 8 || strncmp(p, "https://", 8) != 0 || p[n - 1] == '/' ||
		    memchr(p, '\t', n) || memchr(p, '"', n) || memchr(p, '\'', n) ||
		    memchr(p, '\\', n))
			return err_set(e, POS_EINVAL,
				       "%s:%d: 'url' in [%s] must be https://HOST[:PORT] without a "
				       "trailing /, several separated by spaces",
				       cf->name, cfg_line(cf, sec, "url"), sec);
		if (++count > CTAB_URLS_MAX)
			return err_set(e, POS_EINVAL, "%s:%d: 'url' in [%s] lists more than %d URLs",
				       cf->name, cfg_line(cf, sec, "url"), sec, CTAB_URLS_MAX);
		p += n;
	}
	if (count == 0)
		return err_set(e, POS_EINVAL, "%s:%d: 'url' in [%s] is empty", cf->name,
			       cfg_line(cf, sec, "url"), sec);
	return 0;
}

static int ctab_word(struct cfg *cf, const char *sec, const struct ctab_key *k, const char *v,
		     void *field, pos_err *e)
{
	char allowed[160];
	size_t off = 0;

	for (size_t i = 0; k->words[i].word; i++) {
		if (strcmp(v, k->words[i].word) == 0) {
			int x = k->words[i].value;
			memcpy(field, &x, sizeof x);
			return 0;
		}
		int n = snprintf(allowed + off, sizeof allowed - off, "%s%s", i ? "|" : "",
				 k->words[i].word);
		if (n > 0 && (size_t)n < sizeof allowed - off)
			off += (size_t)n;
	}
	return err_set(e, POS_EINVAL, "%s:%d: '%s' in [%s] must be %s", cf->name,
		       cfg_line(cf, sec, k->key), k->key, sec, allowed);
}

static int ctab_one(struct cfg *cf, const char *sec, const struct ctab_key *k, void *out,
		    pos_err *e)
{
	char *field = (char *)out + k->off;
	const char *v;
	long l;
	int rc;

	switch (k->type) {
	case CT_PATH:
		return cfg_path(cf, sec, k->key, k->dflt, field, k->cap, e);
	case CT_INT: {
		long d = k->dflt ? strtol(k->dflt, NULL, 10) : 0;

		if (!k->dflt && (rc = cfg_str(cf, sec, k->key, NULL, &v, e)) < 0)
			return rc;
		if ((rc = cfg_int(cf, sec, k->key, d, k->min, k->max, &l, e)) < 0)
			return rc;
		if (k->cap == sizeof(int)) {
			int x = (int)l;
			memcpy(field, &x, sizeof x);
		} else if (k->cap == sizeof(long)) {
			memcpy(field, &l, sizeof l);
		} else {
			return err_set(e, POS_EINVAL, "config table: '%s' has no int size", k->key);
		}
		return 0;
	}
	case CT_STR:
	case CT_ID:
	case CT_URLS:
	case CT_WORD:
		break;
	}
	if ((rc = cfg_str(cf, sec, k->key, k->dflt, &v, e)) < 0)
		return rc;
	switch (k->type) {
	case CT_ID:
		if (!ids_valid(v))
			return err_set(e, POS_EINVAL,
				       "%s:%d: '%s' in [%s] must be 1 to %d of A-Z a-z 0-9 . _ -",
				       cf->name, cfg_line(cf, sec, k->key), k->key, sec, IDS_MAX);
		break;
	case CT_URLS:
		if ((rc = ctab_url_list(cf, sec, v, e)) < 0)
			return rc;
		break;
	case CT_WORD:
		if (k->cap != sizeof(int) || !k->words)
			return err_set(e, POS_EINVAL, "config table: '%s' is no int-sized word", k->key);
		return ctab_word(cf, sec, k, v, field, e);
	default:
		break;
	}
	return ctab_copy(cf, sec, k->key, v, field, k->cap, e);
}

int ctab_take(struct cfg *cf, const char *sec, const struct ctab_key *keys, size_t n, void *out,
	      pos_err *e)
{
	for (size_t i = 0; i < n; i++) {
		const struct ctab_key *k = &keys[i];
		const char *s = k->sec ? k->sec : sec;
		int rc;

		if (!s)
			return err_set(e, POS_EINVAL, "config table: '%s' has no section", k->key);
		if ((rc = ctab_one(cf, s, k, out, e)) < 0)
			return rc;
		if (k->check && (rc = k->check(cf, s, k->key, out, e)) < 0)
			return rc;
	}
	return 0;
}

int ctab_load(const char *path, const char *text, size_t len, const char *name, const char *dir,
	      int (*fn)(struct cfg *cf, const char *file, void *arg, pos_err *e), void *arg,
	      pos_err *e)
{
	struct cfg *cf = NULL;
	int rc;

	if (path) {
		if (!*path)
			return err_set(e, POS_EINVAL, "config: no file given");
		rc = cfg_load(path, &cf, e);
	} else {
		rc = cfg_load_string(text, len, name, dir, &cf, e);
	}
	if (rc < 0)
		return rc;
	rc = fn(cf, path ? path : name ? name : "<config>", arg, e);
	cfg_free(cf);
	return rc;
}
