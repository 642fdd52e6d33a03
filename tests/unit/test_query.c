/* query: the query-string parser the routes read their parameters with. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "query.h"

static int refused(const char *raw)
{
	struct query q;
	pos_err e = { 0 };
	int rc = query_parse(raw, &q, &e);

	if (rc < 0)
		assert_true(e.msg[0] != '\0');
	return rc;
}

static void pairs_parse_in_order(void **st)
{
	struct query q;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(query_parse("from=2024-01-01&to=2025-01-01&format=csv", &q, &e), 0);
	assert_int_equal(q.n, 3);
	assert_string_equal(q.p[0].key, "from");
	assert_string_equal(q.p[0].value, "2024-01-01");
	assert_string_equal(q.p[2].key, "format");
	assert_string_equal(query_get(&q, "to"), "2025-01-01");
	assert_null(query_get(&q, "limit"));
	assert_int_equal(query_parse("a=", &q, &e), 0);
	assert_string_equal(query_get(&q, "a"), "");
}

static void no_query_is_no_pairs(void **st)
{
	struct query q;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(query_parse(NULL, &q, &e), 0);
	assert_int_equal(q.n, 0);
	assert_int_equal(query_parse("", &q, &e), 0);
	assert_int_equal(q.n, 0);
}

static void percent_and_plus_decode(void **st)
{
	struct query q;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(query_parse("t=2024-01-01T10%3A00%3a00%2B01%3A00&n%61me=a+b%20c", &q, &e),
			 0);
	assert_string_equal(query_get(&q, "t"), "2024-01-01T10:00:00+01:00");
	assert_string_equal(query_get(&q, "name"), "a b c");
	/* An encoded '&' or '=' is data, not a separator. */
	assert_int_equal(query_parse("a=%26b%3Dc", &q, &e), 0);
	assert_int_equal(q.n, 1);
	assert_string_equal(query_get(&q, "a"), "&b=c");
}

static void malformed_queries_are_refused(void **st)
{
	(void)st;
	assert_int_equal(refused("a"), POS_EINVAL);
	assert_int_equal(refused("=1"), POS_EINVAL);
	assert_int_equal(refused("a=1&&b=2"), POS_EINVAL);
	assert_int_equal(refused("a=1&"), POS_EINVAL);
	assert_int_equal(refused("&a=1"), POS_EINVAL);
	assert_int_equal(refused("a=%4"), POS_EINVAL);
	assert_int_equal(refused("a=%"), POS_EINVAL);
	assert_int_equal(refused("a=%zz"), POS_EINVAL);
	assert_int_equal(refused("a=%00"), POS_EINVAL);
	assert_int_equal(refused("a=1=2"), 0);
}

static void a_key_twice_is_refused(void **st)
{
	(void)st;
	assert_int_equal(refused("a=1&a=2"), POS_EINVAL);
	/* The same key once encoded is the same key. */
	assert_int_equal(refused("a=1&%61=2"), POS_EINVAL);
	assert_int_equal(refused("a=1&b=1"), 0);
}

static void the_bounds_hold(void **st)
{
	char raw[QUERY_MAX_LEN + 2];
	size_t n = 0;

	(void)st;
	memset(raw, 'x', sizeof raw);
	raw[0] = 'a';
	raw[1] = '=';
	raw[QUERY_MAX_LEN] = '\0';
	assert_int_equal(refused(raw), 0);
	raw[QUERY_MAX_LEN] = 'x';
	raw[QUERY_MAX_LEN + 1] = '\0';
	assert_int_equal(refused(raw), POS_ETOOBIG);
	for (int i = 0; i < QUERY_MAX_PARAMS; i++)
		n += (size_t)snprintf(raw + n, sizeof raw - n, "%sk%d=%d", i ? "&" : "", i, i);
	assert_int_equal(refused(raw), 0);
	snprintf(raw + n, sizeof raw - n, "&k=1");
	assert_int_equal(refused(raw), POS_ETOOBIG);
}

static void unknown_keys_are_named(void **st)
{
	static const char *const known[] = { "from", "to", NULL };
	struct query q;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(query_parse("from=1&to=2", &q, &e), 0);
	assert_null(query_unknown(&q, known));
	assert_int_equal(query_parse("from=1&pan=2", &q, &e), 0);
	assert_string_equal(query_unknown(&q, known), "pan");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pairs_parse_in_order),
		cmocka_unit_test(no_query_is_no_pairs),
		cmocka_unit_test(percent_and_plus_decode),
		cmocka_unit_test(malformed_queries_are_refused),
		cmocka_unit_test(a_key_twice_is_refused),
		cmocka_unit_test(the_bounds_hold),
		cmocka_unit_test(unknown_keys_are_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
