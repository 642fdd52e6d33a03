/* periodic: a background loop runs on its period, again at once while
 * more is left, early when woken (also when woken mid-run), and stops
 * promptly whether waiting or working. Periods that matter are an hour,
 * so a run seen within the test can only come from what the test did. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "periodic.h"

#define HOUR_MS 3600000L
#define GUARD_S 30 /* a run awaited longer than this failed to come */

struct probe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int runs;
	int more_until; /* fn says more is left while runs < this */
	bool hold;      /* fn waits in its first run until released */
	bool holding;
};

/* Each test's probe, and an alarm that fails a test that hangs. */
static int probe_setup(void **state)
{
	struct probe *p = calloc(1, sizeof *p);
	pthread_condattr_t ca;

	if (!p)
		return -1;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&p->mu, NULL);
	alarm(GUARD_S * 2);
	*state = p;
	return 0;
}

static int probe_teardown(void **state)
{
	struct probe *p = *state;

	alarm(0);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
	return 0;
}

static int probe_fn(void *arg)
{
	struct probe *p = arg;
	int more;

	pthread_mutex_lock(&p->mu);
	p->runs++;
	more = p->runs < p->more_until;
	pthread_cond_broadcast(&p->cv);
	if (p->hold && p->runs == 1) {
		p->holding = true;
		pthread_cond_broadcast(&p->cv);
		while (p->hold)
			pthread_cond_wait(&p->cv, &p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return more;
}

/* Waits until *flag (or runs >= n when flag is NULL); false past the guard. */
static bool probe_await(struct probe *p, int n, bool *flag)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += GUARD_S;
	pthread_mutex_lock(&p->mu);
	while (!(flag ? *flag : p->runs >= n) &&
	       pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
		;
	ok = flag ? *flag : p->runs >= n;
	pthread_mutex_unlock(&p->mu);
	return ok;
}

static int probe_runs(struct probe *p)
{
	int n;

	pthread_mutex_lock(&p->mu);
	n = p->runs;
	pthread_mutex_unlock(&p->mu);
	return n;
}

static struct periodic *start(long first_ms, long every_ms, struct probe *p)
{
	struct periodic *pd = NULL;
	pos_err e = { 0 };

	assert_int_equal(periodic_start(first_ms, every_ms, probe_fn, p, &pd, &e), 0);
	assert_non_null(pd);
	return pd;
}

static void test_runs_on_its_period(void **state)
{
	struct probe *p = *state;
	struct periodic *pd;

	pd = start(0, 5, p);
	/* fn never says more: every run after the first is the period's. */
	assert_true(probe_await(p, 3, NULL));
	periodic_stop(pd);
}

static void test_first_run_waits_first_ms(void **state)
{
	struct probe *p = *state;
	struct periodic *pd;

	pd = start(5, HOUR_MS, p);
	assert_true(probe_await(p, 1, NULL));
	periodic_stop(pd);
	assert_int_equal(probe_runs(p), 1);
}

static void test_runs_again_at_once_while_more_is_left(void **state)
{
	struct probe *p = *state;
	struct periodic *pd;

	p->more_until = 5;
	pd = start(0, HOUR_MS, p);
	/* With an hour's period, runs 2..5 can only be "more is left". */
	assert_true(probe_await(p, 5, NULL));
	periodic_stop(pd);
	assert_int_equal(probe_runs(p), 5);
}

static void test_wake_runs_it_early(void **state)
{
	struct probe *p = *state;
	struct periodic *pd;

	pd = start(HOUR_MS, HOUR_MS, p);
	periodic_wake(pd);
	assert_true(probe_await(p, 1, NULL));
	periodic_wake(pd);
	assert_true(probe_await(p, 2, NULL));
	periodic_stop(pd);
}

static void test_wake_during_a_run_is_kept(void **state)
{
	struct probe *p = *state;
	struct periodic *pd;

	p->hold = true;
	pd = start(0, HOUR_MS, p);
	assert_true(probe_await(p, 0, &p->holding));
	/* Woken while fn runs: the wake must lead to one more run, not be
	 * swallowed by the wait that follows this run. */
	periodic_wake(pd);
	pthread_mutex_lock(&p->mu);
	p->hold = false;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	assert_true(probe_await(p, 2, NULL));
	periodic_stop(pd);
	assert_int_equal(probe_runs(p), 2);
}

static void test_stop_mid_wait_joins(void **state)
{
	struct probe *p = *state;
	struct periodic *pd;

	pd = start(0, HOUR_MS, p);
	assert_true(probe_await(p, 1, NULL));
	/* Waiting out an hour: stop must end the wait, not sit through it
	 * (the test's alarm fails it otherwise). */
	periodic_stop(pd);
	assert_int_equal(probe_runs(p), 1);
}

static void test_stop_ends_a_run_of_more(void **state)
{
	struct probe *p = *state;
	struct periodic *pd;
	int n;

	p->more_until = 1 << 30;
	pd = start(0, HOUR_MS, p);
	assert_true(probe_await(p, 3, NULL));
	periodic_stop(pd);
	n = probe_runs(p);
	assert_true(n >= 3 && n < p->more_until);
	/* Joined: nothing runs after stop returned. */
	assert_int_equal(probe_runs(p), n);
}

static void test_stop_before_the_first_run(void **state)
{
	struct probe *p = *state;
	struct periodic *pd;

	pd = start(HOUR_MS, HOUR_MS, p);
	periodic_stop(pd);
	assert_int_equal(probe_runs(p), 0);
}

static void test_bad_bounds_refused(void **state)
{
	struct periodic *pd = (struct periodic *)1;
	struct probe *p = *state;
	pos_err e = { 0 };

	assert_int_equal(periodic_start(0, 0, probe_fn, p, &pd, &e), POS_EINVAL);
	assert_null(pd);
	assert_non_null(strstr(e.msg, "every_ms"));
	assert_int_equal(periodic_start(-1, 10, probe_fn, p, &pd, &e), POS_EINVAL);
	assert_null(pd);
	assert_int_equal(periodic_start(0, 10, NULL, p, &pd, &e), POS_EINVAL);
	assert_null(pd);
	periodic_wake(NULL);
	periodic_stop(NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, probe_setup, probe_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_runs_on_its_period),
		T(test_first_run_waits_first_ms),
		T(test_runs_again_at_once_while_more_is_left),
		T(test_wake_runs_it_early),
		T(test_wake_during_a_run_is_kept),
		T(test_stop_mid_wait_joins),
		T(test_stop_ends_a_run_of_more),
		T(test_stop_before_the_first_run),
		T(test_bad_bounds_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
