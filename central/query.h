#ifndef POS_QUERY_H
#define POS_QUERY_H
/*
 * A URL query string parser (the part of a request target after '?'), for
 * the routes that read one. application/x-www-form-urlencoded as browsers
 * and curl send it: pairs "key=value" split on '&', "%XX" decoded, '+' a
 * space in keys and values alike.
 *
 * Strict, so that a query never reads two ways: every pair needs its '='
 * and a non-empty key, a '%' must start two hex digits, "%00" is refused
 * (a NUL would cut a value short), and a key may come once only. Bounded:
 * at most QUERY_MAX_LEN bytes and QUERY_MAX_PARAMS pairs. No allocation:
 * the decoded text lives in the struct query, which the caller owns (on
 * its stack is fine). Pure: unit tests and fuzz_query drive it directly.
 */
#include <stddef.h>

#include "err.h"

#define QUERY_MAX_LEN 512
#define QUERY_MAX_PARAMS 16

struct query_param {
	const char *key;   /* decoded, NUL-terminated, inside the struct query */
	const char *value; /* decoded, may be "" */
};

struct query {
	size_t n; /* pairs, in the order sent */
	struct query_param p[QUERY_MAX_PARAMS];
	char buf[QUERY_MAX_LEN + QUERY_MAX_PARAMS * 2];
};

/* Parses raw (NULL or "" is a query with no pairs) into *out. 0, or
 * POS_EINVAL (malformed, a key twice) or POS_ETOOBIG (over a bound) with e
 * saying what was wrong; e never quotes the query. */
int query_parse(const char *raw, struct query *out, pos_err *e);

/* The decoded value of key, or NULL when the query has no such key. */
const char *query_get(const struct query *q, const char *key);

/* The first key of q that is not in known (a NULL-terminated list), or
 * NULL when every key is known. */
const char *query_unknown(const struct query *q, const char *const *known);

#endif
