/* jsonx: strict JSON input with caps checked before jansson parses. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "jsonx.h"

static int parse(const char *s, json_t **out, pos_err *e)
{
	return jsonx_parse(s, strlen(s), 4096, JSONX_MAX_DEPTH, out, e);
}

static void a_valid_object_parses(void **st)
{
	json_t *v = NULL;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(parse("{\"txn\":\"abc\",\"n\":3}", &v, &e), 0);
	assert_true(json_is_object(v));
	json_decref(v);
	assert_int_equal(parse("[1,2]", &v, &e), 0);
	json_decref(v);
}

static void oversize_body_is_too_big_before_parsing(void **st)
{
	json_t *v = NULL;
	pos_err e = { 0 };
	const char *s = "{\"a\":1}";

	(void)st;
	assert_int_equal(jsonx_parse(s, strlen(s), 4, 8, &v, &e), POS_ETOOBIG);
	assert_null(v);
}

static void nesting_over_the_cap_is_refused_but_brackets_in_strings_are_not_counted(void **st)
{
	char deep[64], ok[128];
	json_t *v = NULL;
	pos_err e = { 0 };

	(void)st;
	memset(deep, '[', 17);
	memset(deep + 17, ']', 17);
	deep[34] = '\0';
	assert_int_equal(parse(deep, &v, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "nested deeper"));
	deep[0] = ' ';
	deep[33] = ' '; /* 16 levels is allowed */
	assert_int_equal(parse(deep, &v, &e), 0);
	json_decref(v);
	/* 40 '[' inside a string plus an escaped quote: depth 1. */
	snprintf(ok, sizeof ok, "{\"k\":\"\\\"%s\"}", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
	assert_int_equal(parse(ok, &v, &e), 0);
	json_decref(v);
	/* A pathological million-deep input is refused without recursion. */
	size_t n = 1000000;
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, '[', n);
	assert_int_equal(jsonx_parse(big, n, n, JSONX_MAX_DEPTH, &v, &e), POS_EINVAL);
	free(big);
}

static void duplicate_keys_and_trailing_data_are_refused(void **st)
{
	json_t *v = NULL;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(parse("{\"a\":1,\"a\":2}", &v, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "duplicate"));
	assert_int_equal(parse("{\"a\":1} {}", &v, &e), POS_EINVAL);
	assert_int_equal(parse("{\"a\":1,}", &v, &e), POS_EINVAL);
	assert_int_equal(parse("", &v, &e), POS_EINVAL);
	assert_null(v);
}

static void parse_errors_never_echo_the_input(void **st)
{
	json_t *v = NULL;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(parse("{\"tid\": 4111111111111111x}", &v, &e), POS_EINVAL);
	assert_null(strstr(e.msg, "4111"));
	assert_int_equal(parse("{\"4111111111111111\": 1, \"4111111111111111\": 2}", &v, &e),
			 POS_EINVAL);
	assert_null(strstr(e.msg, "4111"));
}

static void string_getter_checks_presence_type_and_length(void **st)
{
	json_t *v = NULL;
	pos_err e = { 0 };
	const char *s = "unchanged";

	(void)st;
	assert_int_equal(parse("{\"a\":\"hello\",\"n\":5,\"z\":null}", &v, &e), 0);
	assert_int_equal(jsonx_str(v, "a", 1, 5, &s, &e), 0);
	assert_string_equal(s, "hello");
	assert_int_equal(jsonx_str(v, "a", 1, 4, &s, &e), POS_EINVAL);
	assert_int_equal(jsonx_str(v, "n", 1, 10, &s, &e), POS_EINVAL);
	assert_string_equal(e.msg, "field 'n' must be a string");
	assert_int_equal(jsonx_str(v, "missing", 1, 10, &s, &e), POS_EINVAL);
	assert_string_equal(e.msg, "field 'missing' is required");
	s = "unchanged";
	assert_int_equal(jsonx_str(v, "missing", 0, 10, &s, &e), 0);
	assert_int_equal(jsonx_str(v, "z", 0, 10, &s, &e), 0);
	assert_string_equal(s, "unchanged");
	json_decref(v);
}

static void int_getter_checks_type_and_range(void **st)
{
	json_t *v = NULL;
	pos_err e = { 0 };
	int64_t n = 99;

	(void)st;
	assert_int_equal(parse("{\"q\":3,\"f\":1.5,\"s\":\"3\",\"big\":9223372036854775807}", &v,
			       &e),
			 0);
	assert_int_equal(jsonx_int(v, "q", 1, 1, 10, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_int_equal(jsonx_int(v, "q", 1, 4, 10, &n, &e), POS_EINVAL);
	assert_int_equal(jsonx_int(v, "f", 1, 0, 10, &n, &e), POS_EINVAL);
	assert_int_equal(jsonx_int(v, "s", 1, 0, 10, &n, &e), POS_EINVAL);
	assert_int_equal(jsonx_int(v, "big", 1, INT64_MIN, INT64_MAX, &n, &e), 0);
	assert_true(n == INT64_MAX);
	n = 7;
	assert_int_equal(jsonx_int(v, "none", 0, 0, 10, &n, &e), 0);
	assert_int_equal(n, 7);
	json_decref(v);
	assert_int_equal(parse("{\"x\":99999999999999999999}", &v, &e), POS_EINVAL);
}

static void only_keys_refuses_unknown_fields_without_echoing_odd_names(void **st)
{
	static const char *const allowed[] = { "txn", "tid", NULL };
	json_t *v = NULL;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(parse("{\"txn\":1,\"tid\":2}", &v, &e), 0);
	assert_int_equal(jsonx_only_keys(v, allowed, &e), 0);
	json_decref(v);
	assert_int_equal(parse("{\"txn\":1,\"extra\":2}", &v, &e), 0);
	assert_int_equal(jsonx_only_keys(v, allowed, &e), POS_EINVAL);
	assert_string_equal(e.msg, "unknown field 'extra'");
	json_decref(v);
	assert_int_equal(parse("{\"4111111111111111\":1}", &v, &e), 0);
	assert_int_equal(jsonx_only_keys(v, allowed, &e), POS_EINVAL);
	assert_null(strstr(e.msg, "4111"));
	json_decref(v);
}

static void dump_is_compact(void **st)
{
	json_t *v = NULL;
	pos_err e = { 0 };
	char *s;

	(void)st;
	assert_int_equal(parse("{ \"a\" : [ 1 , 2 ] }", &v, &e), 0);
	s = jsonx_dump(v);
	assert_string_equal(s, "{\"a\":[1,2]}");
	free(s);
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_valid_object_parses),
		cmocka_unit_test(oversize_body_is_too_big_before_parsing),
		cmocka_unit_test(nesting_over_the_cap_is_refused_but_brackets_in_strings_are_not_counted),
		cmocka_unit_test(duplicate_keys_and_trailing_data_are_refused),
		cmocka_unit_test(parse_errors_never_echo_the_input),
		cmocka_unit_test(string_getter_checks_presence_type_and_length),
		cmocka_unit_test(int_getter_checks_type_and_range),
		cmocka_unit_test(only_keys_refuses_unknown_fields_without_echoing_odd_names),
		cmocka_unit_test(dump_is_compact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
