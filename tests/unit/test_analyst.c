/* analyst_cohort_rule: a cohort under k, one whose complement in the
 * filter is under k, one that differs from the same cohort at any store
 * by fewer than k, and one that differs by fewer than k from the cohort
 * of a narrower month range (either end) are withheld; the rest shown. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "analyst.h"

#define M(y, m) ((y) * 12 + (m) - 1)

static const char *rule(long k, const int *f, const int *l, size_t n, long pop, long n_all)
{
	int first[64], last[64];

	memcpy(first, f, n * sizeof *f);
	memcpy(last, l, n * sizeof *l);
	return analyst_cohort_rule(k, first, last, n, pop, n_all);
}

static void test_under_k(void **state)
{
	int f[3] = { M(2026, 1), M(2026, 1), M(2026, 1) };

	(void)state;
	assert_string_equal(rule(4, f, f, 3, 100, -1), "under_k");
	assert_null(rule(3, f, f, 3, 100, -1));
	assert_string_equal(rule(3, f, f, 0, 100, -1), "under_k");
}

static void test_complement(void **state)
{
	int f[5] = { M(2026, 1), M(2026, 1), M(2026, 1), M(2026, 1), M(2026, 1) };

	(void)state;
	/* 5 of 7: "everyone but two" would single them out. */
	assert_string_equal(rule(3, f, f, 5, 7, -1), "complement");
	assert_null(rule(3, f, f, 5, 8, -1));
	assert_null(rule(3, f, f, 5, 5, -1)); /* all of them: no one is singled out */
}

static void test_store_difference(void **state)
{
	int f[5] = { M(2026, 1), M(2026, 1), M(2026, 1), M(2026, 1), M(2026, 1) };

	(void)state;
	assert_string_equal(rule(3, f, f, 5, 100, 6), "difference");
	assert_string_equal(rule(3, f, f, 5, 100, 7), "difference");
	assert_null(rule(3, f, f, 5, 100, 8));
	assert_null(rule(3, f, f, 5, 100, 5));
}

static void test_month_difference(void **state)
{
	/* One household first bought in March: the range to February has
	 * one fewer. */
	int f1[5] = { M(2026, 1), M(2026, 1), M(2026, 1), M(2026, 1), M(2026, 3) };
	int l1[5] = { M(2026, 3), M(2026, 3), M(2026, 3), M(2026, 3), M(2026, 3) };
	/* One household last bought in January: the range from February has
	 * one fewer. */
	int f2[5] = { M(2026, 1), M(2026, 1), M(2026, 1), M(2026, 1), M(2026, 1) };
	int l2[5] = { M(2026, 1), M(2026, 4), M(2026, 4), M(2026, 4), M(2026, 4) };
	/* Three and three at each end: every narrowing drops at least k. */
	int f3[6] = { M(2026, 1), M(2026, 1), M(2026, 1), M(2026, 2), M(2026, 2), M(2026, 2) };
	int l3[6] = { M(2026, 5), M(2026, 5), M(2026, 5), M(2026, 6), M(2026, 6), M(2026, 6) };

	(void)state;
	assert_string_equal(rule(3, f1, l1, 5, 100, -1), "difference");
	assert_string_equal(rule(3, f2, l2, 5, 100, -1), "difference");
	assert_null(rule(3, f3, l3, 6, 100, -1));
	/* Unsorted input is sorted by the rule itself. */
	int f4[5] = { M(2026, 3), M(2026, 1), M(2026, 1), M(2026, 1), M(2026, 1) };

	assert_string_equal(rule(3, f4, l1, 5, 100, -1), "difference");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_under_k),
		cmocka_unit_test(test_complement),
		cmocka_unit_test(test_store_difference),
		cmocka_unit_test(test_month_difference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
