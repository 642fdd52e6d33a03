/* ratelimit: a burst is served then refused with the wait until the next
 * token; tokens come back at the rate; classes and addresses are apart;
 * idle buckets are reused and live ones evicted (and said so) when the
 * table is full; the table never grows. Time is passed in, never read. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "ratelimit.h"

#define SEC 1000000LL

static void key4(unsigned char key[RATELIMIT_KEY_LEN], uint32_t a)
{
	struct sockaddr_in in = { .sin_family = AF_INET };

	in.sin_addr.s_addr = htonl(a);
	assert_int_equal(ratelimit_key((struct sockaddr *)&in, sizeof in, key), 0);
}

static struct ratelimit *make(size_t entries, long per_minute, long burst)
{
	struct ratelimit_rule rules[2] = { { per_minute, burst }, { 600, 2 } };
	struct ratelimit *rl = NULL;
	pos_err e = { 0 };

	assert_int_equal(ratelimit_new(entries, rules, 2, &rl, &e), 0);
	return rl;
}

static void a_burst_is_served_then_refused_with_the_wait_for_one_token(void **st)
{
	struct ratelimit *rl = make(1024, 60, 5); /* one a second */
	unsigned char k[RATELIMIT_KEY_LEN];

	(void)st;
	key4(k, 0x0a000001);
	for (int i = 0; i < 5; i++)
		assert_int_equal(ratelimit_take(rl, 0, k, 100 * SEC, NULL), 0);
	assert_int_equal(ratelimit_take(rl, 0, k, 100 * SEC, NULL), 1);
	/* Refused requests spend nothing: still one second to wait. */
	assert_int_equal(ratelimit_take(rl, 0, k, 100 * SEC, NULL), 1);
	ratelimit_free(rl);

	rl = make(1024, 6, 2); /* one every ten seconds */
	assert_int_equal(ratelimit_take(rl, 0, k, 0, NULL), 0);
	assert_int_equal(ratelimit_take(rl, 0, k, 0, NULL), 0);
	assert_int_equal(ratelimit_take(rl, 0, k, 0, NULL), 10);
	assert_int_equal(ratelimit_take(rl, 0, k, 4 * SEC, NULL), 6);
	assert_int_equal(ratelimit_take(rl, 0, k, 9 * SEC + 1, NULL), 1); /* rounded up */
	ratelimit_free(rl);
}

static void tokens_come_back_at_the_rate_and_never_past_the_burst(void **st)
{
	struct ratelimit *rl = make(1024, 120, 3); /* two a second */
	unsigned char k[RATELIMIT_KEY_LEN];
	int served = 0;

	(void)st;
	key4(k, 0x0a000002);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, 0, k, 0, NULL), 0);
	assert_true(ratelimit_take(rl, 0, k, 0, NULL) > 0);
	assert_int_equal(ratelimit_take(rl, 0, k, SEC / 2, NULL), 0);
	assert_true(ratelimit_take(rl, 0, k, SEC / 2, NULL) > 0);
	/* An hour idle fills the bucket to its burst, not to 7200. */
	for (int i = 0; i < 10; i++)
		served += ratelimit_take(rl, 0, k, 3600 * SEC, NULL) == 0;
	assert_int_equal(served, 3);
	ratelimit_free(rl);
}

static void addresses_and_classes_have_their_own_buckets(void **st)
{
	struct ratelimit *rl = make(1024, 60, 1);
	unsigned char a[RATELIMIT_KEY_LEN], b[RATELIMIT_KEY_LEN], c[RATELIMIT_KEY_LEN];
	struct sockaddr_in6 x = { .sin6_family = AF_INET6 }, y = { .sin6_family = AF_INET6 };

	(void)st;
	key4(a, 0x0a000001);
	key4(b, 0x0a000002);
	assert_int_equal(ratelimit_take(rl, 0, a, 0, NULL), 0);
	assert_true(ratelimit_take(rl, 0, a, 0, NULL) > 0);
	assert_int_equal(ratelimit_take(rl, 0, b, 0, NULL), 0);
	assert_int_equal(ratelimit_take(rl, 1, a, 0, NULL), 0); /* the other class */
	/* One IPv6 /64 is one subscriber: its addresses share a bucket. */
	inet_pton(AF_INET6, "2001:db8:1:2::1", &x.sin6_addr);
	inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &y.sin6_addr);
	assert_int_equal(ratelimit_key((struct sockaddr *)&x, sizeof x, a), 0);
	assert_int_equal(ratelimit_key((struct sockaddr *)&y, sizeof y, c), 0);
	assert_memory_equal(a, c, RATELIMIT_KEY_LEN);
	assert_int_equal(ratelimit_take(rl, 0, a, 0, NULL), 0);
	assert_true(ratelimit_take(rl, 0, c, 0, NULL) > 0);
	/* A class with no rate is not limited. */
	{
		struct ratelimit_rule off = { 0, 0 };
		struct ratelimit *free_rl = NULL;
		pos_err e = { 0 };

		assert_int_equal(ratelimit_new(64, &off, 1, &free_rl, &e), 0);
		for (int i = 0; i < 1000; i++)
			assert_int_equal(ratelimit_take(free_rl, 0, a, 0, NULL), 0);
		ratelimit_free(free_rl);
	}
	ratelimit_free(rl);
}

static void idle_buckets_are_reused_and_live_ones_evicted_and_counted(void **st)
{
	/* One set of RATELIMIT_WAYS entries: every key meets in it. */
	struct ratelimit *rl = make(1, 60, 2);
	unsigned char k[RATELIMIT_KEY_LEN], first[RATELIMIT_KEY_LEN];
	bool ev = false;
	int evictions = 0;

	(void)st;
	assert_int_equal(ratelimit_capacity(rl), RATELIMIT_WAYS);
	/* Live buckets (each spent a token) fill the set; the next one
	 * evicts the oldest, and says so. */
	key4(first, 1);
	assert_int_equal(ratelimit_take(rl, 0, first, 0, &ev), 0);
	for (uint32_t i = 2; i <= RATELIMIT_WAYS; i++) {
		key4(k, i);
		assert_int_equal(ratelimit_take(rl, 0, k, (int64_t)i, &ev), 0);
		assert_false(ev);
	}
	key4(k, 1000);
	assert_int_equal(ratelimit_take(rl, 0, k, 100, &ev), 0);
	assert_true(ev);
	/* The evicted address starts over with a full bucket. */
	assert_int_equal(ratelimit_take(rl, 0, first, 101, NULL), 0);
	assert_int_equal(ratelimit_take(rl, 0, first, 101, NULL), 0);
	/* Two seconds later every bucket is full again (idle): new keys take
	 * them without evicting anyone. */
	for (uint32_t i = 0; i < 100; i++) {
		key4(k, 5000 + i);
		assert_int_equal(ratelimit_take(rl, 0, k, 10 * SEC + (int64_t)i * 2 * SEC, &ev), 0);
		evictions += ev;
	}
	assert_int_equal(evictions, 0);
	ratelimit_free(rl);
}

static void the_table_never_grows_whatever_the_addresses(void **st)
{
	struct ratelimit *rl = make(1000, 60, 5);
	unsigned char k[RATELIMIT_KEY_LEN];
	size_t bytes = ratelimit_bytes(rl), cap = ratelimit_capacity(rl);

	(void)st;
	assert_int_equal(cap, 1024); /* rounded up to a power of two */
	for (uint32_t i = 0; i < 200000; i++) {
		key4(k, 0x0b000000 + i);
		(void)ratelimit_take(rl, 0, k, (int64_t)i, NULL);
	}
	assert_int_equal(ratelimit_bytes(rl), bytes);
	assert_true(ratelimit_live(rl) <= cap);
	assert_true(ratelimit_live(rl) > cap / 2); /* and it is used, not one set */
	ratelimit_free(rl);
}

static void bad_rules_and_addresses_are_refused(void **st)
{
	struct ratelimit_rule bad = { 10, 0 };
	struct ratelimit *rl = NULL;
	unsigned char k[RATELIMIT_KEY_LEN];
	struct sockaddr un = { .sa_family = AF_UNIX };
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(ratelimit_new(64, &bad, 1, &rl, &e), POS_EINVAL);
	assert_null(rl);
	assert_int_equal(ratelimit_key(&un, sizeof un, k), POS_EINVAL);
	assert_int_equal(ratelimit_key(NULL, 0, k), POS_EINVAL);
	ratelimit_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_burst_is_served_then_refused_with_the_wait_for_one_token),
		cmocka_unit_test(tokens_come_back_at_the_rate_and_never_past_the_burst),
		cmocka_unit_test(addresses_and_classes_have_their_own_buckets),
		cmocka_unit_test(idle_buckets_are_reused_and_live_ones_evicted_and_counted),
		cmocka_unit_test(the_table_never_grows_whatever_the_addresses),
		cmocka_unit_test(bad_rules_and_addresses_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
