#include "query.h"

#include <string.h>

#include "codec.h"

/* Decodes s[0..len) to *dst (advanced past its NUL). A decoded pair and
 * its two NULs never take more than the pair and its '=' and '&', so
 * struct query's buf has room for any query within QUERY_MAX_LEN. */
static int query_decode(const char *s, size_t len, char **dst, pos_err *e)
{
	char *d = *dst;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			*d++ = ' ';
		} else if (s[i] == '%') {
			int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1;
			int lo = i + 2 < len ? hex_digit(s[i + 2]) : -1;

			if (hi < 0 || lo < 0)
				return err_set(e, POS_EINVAL, "a %% in the query is not followed "
							      "by two hex digits");
			if (hi == 0 && lo == 0)
				return err_set(e, POS_EINVAL, "the query holds an encoded NUL (%%00)");
			*d++ = (char)(hi << 4 | lo);
			i += 2;
		} else {
			*d++ = s[i];
		}
	}
	*d++ = '\0';
	*dst = d;
	return 0;
}

int query_parse(const char *raw, struct query *out, pos_err *e)
{
	char *d = out->buf;
	size_t len;
	int rc;

	out->n = 0;
	if (!raw || !raw[0])
		return 0;
	len = strlen(raw);
	if (len > QUERY_MAX_LEN)
		return err_set(e, POS_ETOOBIG, "the query string is over %d bytes", QUERY_MAX_LEN);
	for (const char *s = raw; s <= raw + len;) {
		size_t n = strcspn(s, "&");
		const char *eq = memchr(s, '=', n);
		struct query_param *p;

		if (n == 0)
			return err_set(e, POS_EINVAL, "the query string has an empty pair "
						      "(two '&' in a row, or one at an end)");
		if (!eq || eq == s)
			return err_set(e, POS_EINVAL, "every query parameter needs a name and a '='");
		if (out->n == QUERY_MAX_PARAMS)
			return err_set(e, POS_ETOOBIG, "the query string has over %d parameters",
				       QUERY_MAX_PARAMS);
		p = &out->p[out->n];
		p->key = d;
		if ((rc = query_decode(s, (size_t)(eq - s), &d, e)) < 0)
			return rc;
		p->value = d;
		if ((rc = query_decode(eq + 1, n - (size_t)(eq - s) - 1, &d, e)) < 0)
			return rc;
		if (query_get(out, p->key))
			return err_set(e, POS_EINVAL, "a query parameter is given twice");
		out->n++;
		s += n + 1;
	}
	return 0;
}

const char *query_get(const struct query *q, const char *key)
{
	for (size_t i = 0; i < q->n; i++)
		if (strcmp(q->p[i].key, key) == 0)
			return q->p[i].value;
	return NULL;
}

const char *query_unknown(const struct query *q, const char *const *known)
{
	for (size_t i = 0; i < q->n; i++) {
		size_t k = 0;

		while (known[k] && strcmp(known[k], q->p[i].key) != 0)
			k++;
		if (!known[k])
			return q->p[i].key;
	}
	return NULL;
}
