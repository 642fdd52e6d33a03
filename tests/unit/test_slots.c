/* slots: central's one connection budget, its per-address caps and the
 * share kept for terminals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "slots.h"

static struct slots *make(long max, long reserved, long per_address)
{
	struct slots_opts o = { max, reserved, per_address };
	struct slots *s = NULL;
	pos_err e = { 0 };

	assert_int_equal(slots_new(&o, &s, &e), 0);
	return s;
}

static struct slots_addr v4(const char *ip)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct slots_addr k;

	assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	slots_addr_of(&k, (struct sockaddr *)&sin, sizeof sin);
	return k;
}

static struct slots_addr v6(const char *ip)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct slots_addr k;

	assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
	slots_addr_of(&k, (struct sockaddr *)&sin6, sizeof sin6);
	return k;
}

static void bounds_out_of_range_are_refused(void **st)
{
	struct slots_opts bad[] = { { 0, 0, 1 }, { 10, 10, 1 }, { 10, -1, 1 }, { 10, 2, 0 } };
	struct slots *s = NULL;
	pos_err e = { 0 };

	(void)st;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(slots_new(&bad[i], &s, &e), POS_EINVAL);
		assert_null(s);
		assert_non_null(strstr(e.msg, "out of range"));
	}
	slots_free(NULL);
}

static void one_address_is_capped_others_are_not(void **st)
{
	struct slots *s = make(100, 0, 3);
	struct slots_addr a = v4("192.0.2.1"), b = v4("192.0.2.2");

	(void)st;
	for (int i = 0; i < 3; i++)
		assert_int_equal(slots_take(s, &a), SLOTS_OK);
	assert_int_equal(slots_take(s, &a), SLOTS_PER_ADDRESS);
	assert_int_equal(slots_take(s, &b), SLOTS_OK);
	assert_int_equal(slots_open(s), 4);
	assert_int_equal(slots_of_address(s, &a), 3);
	slots_release(s, &a, SLOTS_HANDSHAKE);
	assert_int_equal(slots_take(s, &a), SLOTS_OK);
	slots_free(s);
}

static void the_budget_is_one_for_all(void **st)
{
	struct slots *s = make(2, 0, 10);
	struct slots_addr a = v4("192.0.2.1"), b = v4("198.51.100.7");

	(void)st;
	assert_int_equal(slots_take(s, &a), SLOTS_OK);
	assert_int_equal(slots_take(s, &b), SLOTS_OK);
	assert_int_equal(slots_take(s, &b), SLOTS_FULL);
	assert_int_equal(slots_of_address(s, &b), 1);
	slots_release(s, &a, SLOTS_HANDSHAKE);
	assert_int_equal(slots_take(s, &b), SLOTS_OK);
	slots_free(s);
}

static void anonymous_connections_leave_the_reserve_to_terminals(void **st)
{
	struct slots *s = make(4, 2, 10);
	struct slots_addr a = v4("192.0.2.1"), t = v4("203.0.113.9");

	(void)st;
	assert_int_equal(slots_take(s, &a), SLOTS_OK);
	assert_true(slots_established(s, &a, false));
	assert_int_equal(slots_take(s, &a), SLOTS_OK);
	assert_true(slots_established(s, &a, false));
	/* A third anonymous one is past max - reserved. */
	assert_int_equal(slots_take(s, &a), SLOTS_OK);
	assert_false(slots_established(s, &a, false));
	assert_int_equal(slots_anonymous(s), 2);
	slots_release(s, &a, SLOTS_HANDSHAKE);
	/* Terminals take the rest. */
	assert_int_equal(slots_take(s, &t), SLOTS_OK);
	assert_true(slots_established(s, &t, true));
	assert_int_equal(slots_take(s, &t), SLOTS_OK);
	assert_true(slots_established(s, &t, true));
	assert_int_equal(slots_open(s), 4);
	slots_release(s, &a, SLOTS_ANONYMOUS);
	slots_release(s, &a, SLOTS_ANONYMOUS);
	slots_release(s, &t, SLOTS_TERMINAL);
	slots_release(s, &t, SLOTS_TERMINAL);
	assert_int_equal(slots_open(s), 0);
	assert_int_equal(slots_anonymous(s), 0);
	assert_int_equal(slots_of_address(s, &a), 0);
	slots_free(s);
}

static void a_verified_terminal_leaves_its_address_count(void **st)
{
	struct slots *s = make(100, 10, 2);
	struct slots_addr nat = v4("192.0.2.50");

	(void)st;
	/* The lanes of one store behind one NAT: each counts only while
	 * its handshake runs. */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(slots_take(s, &nat), SLOTS_OK);
		assert_true(slots_established(s, &nat, true));
	}
	assert_int_equal(slots_of_address(s, &nat), 0);
	assert_int_equal(slots_open(s), 10);
	slots_free(s);
}

static void ipv6_counts_by_64_and_mapped_ipv4_by_address(void **st)
{
	struct slots *s = make(100, 0, 2);
	struct slots_addr a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2:ffff::9");
	struct slots_addr c = v6("2001:db8:1:3::1");
	struct slots_addr m = v6("::ffff:192.0.2.1"), p = v4("192.0.2.1");

	(void)st;
	assert_memory_equal(a.b, b.b, sizeof a.b);
	assert_memory_not_equal(a.b, c.b, sizeof a.b);
	assert_memory_equal(m.b, p.b, sizeof m.b);
	assert_int_equal(slots_take(s, &a), SLOTS_OK);
	assert_int_equal(slots_take(s, &b), SLOTS_OK);
	assert_int_equal(slots_take(s, &a), SLOTS_PER_ADDRESS);
	assert_int_equal(slots_take(s, &c), SLOTS_OK);
	assert_int_equal(slots_take(s, &m), SLOTS_OK);
	assert_int_equal(slots_take(s, &p), SLOTS_OK);
	assert_int_equal(slots_take(s, &p), SLOTS_PER_ADDRESS);
	slots_free(s);
}

static void a_unix_peer_has_one_key(void **st)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct slots_addr k, z;

	(void)st;
	memset(&z, 0, sizeof z);
	slots_addr_of(&k, (struct sockaddr *)&un, sizeof un);
	assert_memory_equal(k.b, z.b, sizeof k.b);
	slots_addr_of(&k, NULL, 0);
	assert_memory_equal(k.b, z.b, sizeof k.b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bounds_out_of_range_are_refused),
		cmocka_unit_test(one_address_is_capped_others_are_not),
		cmocka_unit_test(the_budget_is_one_for_all),
		cmocka_unit_test(anonymous_connections_leave_the_reserve_to_terminals),
		cmocka_unit_test(a_verified_terminal_leaves_its_address_count),
		cmocka_unit_test(ipv6_counts_by_64_and_mapped_ipv4_by_address),
		cmocka_unit_test(a_unix_peer_has_one_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
