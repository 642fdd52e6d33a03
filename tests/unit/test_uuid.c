/* uuid: UUIDv7 text of RFC 9562, strictly increasing within the process. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uuid.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t hexval(const char *s, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		v = (v << 4) | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	return v;
}

static void text_has_version_7_variant_10_and_lowercase_hex(void **st)
{
	char u[UUID_STR_LEN + 1];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(uuid_v7(u, &e), 0);
	assert_int_equal(strlen(u), 36);
	assert_true(uuid_valid(u));
	assert_int_equal(u[8], '-');
	assert_int_equal(u[13], '-');
	assert_int_equal(u[18], '-');
	assert_int_equal(u[23], '-');
	assert_int_equal(u[14], '7');
	assert_non_null(strchr("89ab", u[19]));
	for (int i = 0; i < 36; i++)
		assert_non_null(strchr("0123456789abcdef-", u[i]));
}

static void timestamp_is_unix_milliseconds(void **st)
{
	char u[UUID_STR_LEN + 1], hex[13];
	pos_err e = { 0 };
	uint64_t before, after, ts;

	(void)st;
	before = now_ms();
	assert_int_equal(uuid_v7(u, &e), 0);
	after = now_ms();
	memcpy(hex, u, 8);
	memcpy(hex + 8, u + 9, 4);
	ts = hexval(hex, 12);
	/* Earlier calls in this process may have pushed the counter a little
	 * into the future; never more than one millisecond per 2^74 ids. */
	assert_true(ts + 1 >= before);
	assert_true(ts <= after + 1);
}

static void successive_ids_strictly_increase(void **st)
{
	enum { N = 100000 };
	char prev[UUID_STR_LEN + 1], cur[UUID_STR_LEN + 1];
	pos_err e = { 0 };

	(void)st;
	/* 100000 ids take far less than 100000 ms, so many share a millisecond
	 * and the counter path is exercised. */
	assert_int_equal(uuid_v7(prev, &e), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(uuid_v7(cur, &e), 0);
		if (strcmp(prev, cur) >= 0)
			fail_msg("uuid %d not greater than its predecessor", i);
		assert_int_equal(cur[14], '7');
		assert_non_null(strchr("89ab", cur[19]));
		memcpy(prev, cur, sizeof prev);
	}
}

enum { THREADS = 4, PER_THREAD = 5000 };
static char ids[THREADS * PER_THREAD][UUID_STR_LEN + 1];

static void *make_ids(void *arg)
{
	size_t base = (size_t)(uintptr_t)arg * PER_THREAD;
	pos_err e = { 0 };

	for (size_t i = 0; i < PER_THREAD; i++)
		if (uuid_v7(ids[base + i], &e) != 0)
			return NULL;
	return arg;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void ids_from_many_threads_are_unique_and_ordered_per_thread(void **st)
{
	pthread_t t[THREADS];

	(void)st;
	for (uintptr_t i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, make_ids, (void *)i), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	for (int k = 0; k < THREADS; k++)
		for (int i = 1; i < PER_THREAD; i++)
			assert_true(strcmp(ids[k * PER_THREAD + i - 1], ids[k * PER_THREAD + i]) < 0);
	qsort(ids, THREADS * PER_THREAD, sizeof ids[0], cmp_id);
	for (int i = 1; i < THREADS * PER_THREAD; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
}

static void validity_check_accepts_any_version_and_case_only(void **st)
{
	(void)st;
	assert_true(uuid_valid("01890a5d-ac96-774b-bcce-b302099a8057"));
	assert_true(uuid_valid("550E8400-E29B-41D4-A716-446655440000"));
	assert_true(uuid_valid("00000000-0000-0000-0000-000000000000"));
	assert_false(uuid_valid("01890a5d-ac96-774b-bcce-b302099a805"));
	assert_false(uuid_valid("01890a5d-ac96-774b-bcce-b302099a80570"));
	assert_false(uuid_valid("01890a5dac96-774b-bcce-b302099a80570"));
	assert_false(uuid_valid("01890a5d-ac96-774b-bcce_b302099a8057"));
	assert_false(uuid_valid("01890a5g-ac96-774b-bcce-b302099a8057"));
	assert_false(uuid_valid("{1890a5d-ac96-774b-bcce-b302099a805}"));
	assert_false(uuid_valid(""));
	assert_false(uuid_valid(NULL));
}

static void v7_check_refuses_nil_and_other_versions_by_name(void **st)
{
	pos_err e = { 0 };

	(void)st;
	assert_true(uuid_v7_valid("01890a5d-ac96-774b-bcce-b302099a8057"));
	assert_true(uuid_v7_valid("01890A5D-AC96-774B-BCCE-B302099A8057"));
	assert_false(uuid_v7_valid("00000000-0000-0000-0000-000000000000"));
	assert_false(uuid_v7_valid("550e8400-e29b-41d4-a716-446655440000"));
	assert_false(uuid_v7_valid("01890a5d-ac96-774b-7cce-b302099a8057"));
	assert_false(uuid_v7_valid("01890a5d-ac96-774b-ccce-b302099a8057"));
	assert_false(uuid_v7_valid(NULL));
	assert_int_equal(uuid_v7_check("01890a5d-ac96-774b-bcce-b302099a8057", "txn", &e), 0);
	assert_int_equal(uuid_v7_check("00000000-0000-0000-0000-000000000000", "txn", &e),
			 POS_EINVAL);
	assert_string_equal(e.msg, "txn must not be the nil UUID");
	assert_int_equal(uuid_v7_check("550e8400-e29b-41d4-a716-446655440000", "txn", &e),
			 POS_EINVAL);
	assert_string_equal(e.msg, "txn must be a UUIDv7 (RFC 9562 version 7)");
	assert_int_equal(uuid_v7_check("x", "txn", &e), POS_EINVAL);
	assert_string_equal(e.msg, "txn must be a UUID");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(text_has_version_7_variant_10_and_lowercase_hex),
		cmocka_unit_test(timestamp_is_unix_milliseconds),
		cmocka_unit_test(successive_ids_strictly_increase),
		cmocka_unit_test(ids_from_many_threads_are_unique_and_ordered_per_thread),
		cmocka_unit_test(validity_check_accepts_any_version_and_case_only),
		cmocka_unit_test(v7_check_refuses_nil_and_other_versions_by_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
