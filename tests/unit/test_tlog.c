/* tlog: the store controller's transaction log. A basket is logged once per
 * txn, forwarded one lane at a time, marked sent only when told, kept for
 * the report, pruned only once sent, and sent again on replay. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "timeutil.h"
#include "tlog.h"

#define TXN1 "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c1"
#define TXN2 "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c2"
#define TXN3 "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c3"
#define HHID "hh_0123456789ABCDEFGHJKMNPQRR"
/* 2026-11-23T10:15:00Z and 11:05 */
#define TS1 "2026-11-23T10:15:00Z"
#define TS2 "2026-11-23T11:05:00Z"

struct fx {
	char dir[64];
	char path[128];
	struct tlog *t;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	pos_err e;

	setenv("TZ", "UTC", 1);
	tzset();
	snprintf(f->dir, sizeof f->dir, "/tmp/test_tlog.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof f->path, "%s/tlog.db", f->dir);
	if (tlog_open(f->path, &f->t, &e) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[200];

	tlog_close(f->t);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void basket(struct tlog_basket *b, const char *txn, const char *ts, const char *extra)
{
	char body[512];
	pos_err e;

	snprintf(body, sizeof body,
		 "{\"txn\":\"%s\",\"ts\":\"%s\",\"items\":[{\"gtin\":\"09520000000011\",\"qty\":2,"
		 "\"price_cents\":150},{\"gtin\":\"09520000000028\",\"qty\":1}]%s}",
		 txn, ts, extra);
	assert_int_equal(tlog_basket_parse(body, strlen(body), b, &e), 0);
}

static void put(struct fx *f, const char *lane, const char *txn, const char *ts,
		const char *extra, enum tlog_put_result want)
{
	struct tlog_basket b;
	enum tlog_put_result res = 0;
	pos_err e;

	basket(&b, txn, ts, extra);
	assert_int_equal(tlog_put(f->t, lane, &b, 1000, &res, &e), 0);
	assert_int_equal(res, want);
	tlog_basket_clear(&b);
}

static void a_basket_is_read_for_the_report(void **state)
{
	struct tlog_basket b;

	(void)state;
	basket(&b, TXN1, TS1, ",\"hhid\":\"" HHID "\",\"offers\":[\"9800000000011\"]");
	assert_string_equal(b.txn, TXN1);
	assert_int_equal(b.lines, 2);
	assert_int_equal(b.units, 3);
	assert_int_equal(b.sales_cents, 300);
	assert_string_equal(b.hhid, HHID);
	assert_int_equal(b.offers, 1);
	/* Canonical: keys sorted, so a re-encoded basket is the same text. */
	assert_non_null(strstr(b.body, "{\"hhid\""));
	tlog_basket_clear(&b);
}

static void bad_baskets_are_refused_naming_the_field(void **state)
{
	static const char *const bad[] = {
		"[]",
		"{\"txn\":\"x\",\"ts\":\"" TS1 "\",\"items\":[{\"gtin\":\"09520000000011\",\"qty\":1}]}",
		"{\"txn\":\"" TXN1 "\",\"ts\":\"yesterday\",\"items\":[{\"gtin\":\"09520000000011\","
		"\"qty\":1}]}",
		"{\"txn\":\"" TXN1 "\",\"ts\":\"" TS1 "\",\"items\":[]}",
		"{\"txn\":\"" TXN1 "\",\"ts\":\"" TS1 "\",\"items\":[{\"gtin\":\"09520000000012\","
		"\"qty\":1}]}",
		"{\"txn\":\"" TXN1 "\",\"ts\":\"" TS1 "\",\"items\":[{\"gtin\":\"09520000000011\","
		"\"qty\":0}]}",
		"{\"txn\":\"" TXN1 "\",\"ts\":\"" TS1 "\",\"items\":[{\"gtin\":\"09520000000011\","
		"\"qty\":1}],\"hhid\":\"hh_x\"}",
	};
	const char *const field[] = { "object", "txn", "ts", "items", "gtin", "qty", "hhid" };
	struct tlog_basket b;
	pos_err e;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_true(tlog_basket_parse(bad[i], strlen(bad[i]), &b, &e) < 0);
		assert_non_null(strstr(e.msg, field[i]));
		assert_null(b.body);
	}
}

static void the_same_basket_twice_is_a_duplicate_other_content_a_conflict(void **state)
{
	struct fx *f = *state;
	struct tlog_basket b;
	enum tlog_put_result res;
	struct tlog_stats st;
	pos_err e;

	put(f, "T1", TXN1, TS1, "", TLOG_CREATED);
	put(f, "T1", TXN1, TS1, "", TLOG_DUPLICATE);
	basket(&b, TXN1, TS2, "");
	assert_int_equal(tlog_put(f->t, "T1", &b, 1000, &res, &e), POS_ECONFLICT);
	/* The same basket from another lane is not the same either. */
	tlog_basket_clear(&b);
	basket(&b, TXN1, TS1, "");
	assert_int_equal(tlog_put(f->t, "T2", &b, 1000, &res, &e), POS_ECONFLICT);
	tlog_basket_clear(&b);
	assert_int_equal(tlog_stats(f->t, &st, &e), 0);
	assert_int_equal(st.total, 1);
	assert_int_equal(st.unsent, 1);
	assert_int_equal(st.oldest_unsent_ms, 1000);
}

static void peek_takes_one_lane_and_sent_rows_leave_the_queue(void **state)
{
	struct fx *f = *state;
	struct spool_row *rows;
	char lane[TLOG_ID_MAX + 1];
	struct tlog_stats st;
	size_t n;
	pos_err e;

	put(f, "T1", TXN1, TS1, "", TLOG_CREATED);
	put(f, "T2", TXN2, TS1, "", TLOG_CREATED);
	put(f, "T1", TXN3, TS2, "", TLOG_CREATED);
	assert_int_equal(tlog_peek(f->t, 10, &rows, &n, lane, &e), 0);
	assert_string_equal(lane, "T1");
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].txn, TXN1);
	assert_string_equal(rows[1].txn, TXN3);
	spool_rows_free(rows, n);
	assert_int_equal(tlog_note_attempt(f->t, TXN1, &e), 0);
	assert_int_equal(tlog_mark_sent(f->t, TXN1, "created", 2000, &e), 0);
	assert_int_equal(tlog_mark_sent(f->t, TXN3, "duplicate", 2000, &e), 0);
	assert_int_equal(tlog_peek(f->t, 10, &rows, &n, lane, &e), 0);
	assert_string_equal(lane, "T2");
	assert_int_equal(n, 1);
	spool_rows_free(rows, n);
	assert_int_equal(tlog_set_rejected(f->t, TXN2, "bad_request", &e), 0);
	assert_int_equal(tlog_peek(f->t, 10, &rows, &n, lane, &e), 0);
	assert_int_equal(n, 0);
	assert_null(rows);
	assert_int_equal(tlog_stats(f->t, &st, &e), 0);
	assert_int_equal(st.unsent, 0);
	assert_int_equal(st.rejected, 1);
	assert_int_equal(st.lanes, 2);
}

static void prune_keeps_unsent_and_replay_sends_again(void **state)
{
	struct fx *f = *state;
	struct tlog_stats st;
	long n = -1;
	int64_t since;
	pos_err e;

	put(f, "T1", TXN1, TS1, "", TLOG_CREATED); /* received at 1000 */
	put(f, "T1", TXN2, TS2, "", TLOG_CREATED);
	assert_int_equal(tlog_mark_sent(f->t, TXN1, "created", 2000, &e), 0);
	assert_int_equal(tlog_prune(f->t, 5000, &n, &e), 0);
	assert_int_equal(n, 1); /* TXN2 was never sent: it stays */
	assert_int_equal(tlog_stats(f->t, &st, &e), 0);
	assert_int_equal(st.total, 1);
	assert_int_equal(tlog_mark_sent(f->t, TXN2, "created", 2000, &e), 0);
	assert_int_equal(tlog_stats(f->t, &st, &e), 0);
	assert_int_equal(st.unsent, 0);
	assert_int_equal(time_parse_rfc3339("2026-11-23", 1, &since, &e), 0);
	assert_int_equal(tlog_replay(f->t, since, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(tlog_stats(f->t, &st, &e), 0);
	assert_int_equal(st.unsent, 1);
}

static void the_report_groups_by_lane_and_hour(void **state)
{
	struct fx *f = *state;
	struct tlog_report_row *r;
	int64_t from, to;
	size_t n;
	pos_err e;

	put(f, "T1", TXN1, TS1, ",\"hhid\":\"" HHID "\",\"offers\":[\"a\",\"b\"]", TLOG_CREATED);
	put(f, "T1", TXN2, TS1, ",\"hhid\":\"" HHID "\"", TLOG_CREATED);
	put(f, "T2", TXN3, TS2, "", TLOG_CREATED);
	assert_int_equal(time_parse_rfc3339("2026-11-23", 1, &from, &e), 0);
	to = from + 86400000LL;
	assert_int_equal(tlog_report(f->t, from, to, &r, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(r[0].terminal, "T1");
	assert_int_equal(r[0].hour, 10);
	assert_int_equal(r[0].baskets, 2);
	assert_int_equal(r[0].units, 6);
	assert_int_equal(r[0].sales_cents, 600);
	assert_int_equal(r[0].households, 1); /* one household, twice */
	assert_int_equal(r[0].offers, 2);
	assert_string_equal(r[1].terminal, "T2");
	assert_int_equal(r[1].hour, 11);
	assert_int_equal(r[1].households, 0);
	free(r);
	/* Another day holds nothing. */
	assert_int_equal(tlog_report(f->t, to, to + 86400000LL, &r, &n, &e), 0);
	assert_int_equal(n, 0);
	free(r);
}

static void the_log_is_private_and_readonly_open_needs_it(void **state)
{
	struct fx *f = *state;
	struct tlog *ro = NULL;
	struct tlog_stats st;
	struct stat sb;
	char other[160];
	pos_err e;

	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	put(f, "T1", TXN1, TS1, "", TLOG_CREATED);
	assert_int_equal(tlog_open_readonly(f->path, &ro, &e), 0);
	assert_int_equal(tlog_stats(ro, &st, &e), 0);
	assert_int_equal(st.total, 1);
	tlog_close(ro);
	snprintf(other, sizeof other, "%s/none.db", f->dir);
	assert_int_equal(tlog_open_readonly(other, &ro, &e), POS_ENOTFOUND);
	assert_int_equal(stat(other, &sb), -1); /* looking did not create it */
}

static void a_batch_is_committed_whole_with_a_verdict_per_basket(void **state)
{
	struct fx *f = *state;
	struct tlog_basket b[4];
	enum tlog_put_result res[4] = { 0 };
	struct tlog_stats st;
	struct tlog *ro = NULL;
	pos_err e;

	put(f, "T1", TXN1, TS1, "", TLOG_CREATED);
	basket(&b[0], TXN1, TS1, "");                   /* already there: duplicate */
	basket(&b[1], TXN2, TS1, "");                   /* new */
	basket(&b[2], TXN2, TS2, "");                   /* same txn, other body */
	basket(&b[3], TXN3, TS2, "");                   /* new */
	assert_int_equal(tlog_put_batch(f->t, "T1", b, 4, 2000, res, &e), 0);
	assert_int_equal(res[0], TLOG_DUPLICATE);
	assert_int_equal(res[1], TLOG_CREATED);
	assert_int_equal(res[2], TLOG_CONFLICT);
	assert_int_equal(res[3], TLOG_CREATED);
	/* Committed: another connection sees them. */
	assert_int_equal(tlog_open_readonly(f->path, &ro, &e), 0);
	assert_int_equal(tlog_stats(ro, &st, &e), 0);
	assert_int_equal(st.total, 3);
	/* Another lane's batch with a logged txn: a conflict, nothing else moves. */
	assert_int_equal(tlog_put_batch(f->t, "T2", &b[1], 1, 3000, res, &e), 0);
	assert_int_equal(res[0], TLOG_CONFLICT);
	assert_int_equal(tlog_put_batch(f->t, "bad lane", b, 1, 3000, res, &e), POS_EINVAL);
	assert_int_equal(tlog_stats(ro, &st, &e), 0);
	assert_int_equal(st.total, 3);
	tlog_close(ro);
	for (int i = 0; i < 4; i++)
		tlog_basket_clear(&b[i]);
}

static void marks_after_begin_reach_the_disk_with_the_next_commit(void **state)
{
	struct fx *f = *state;
	struct tlog_basket b;
	enum tlog_put_result res;
	struct tlog_stats st;
	struct tlog *ro = NULL;
	pos_err e;

	put(f, "T1", TXN1, TS1, "", TLOG_CREATED);
	put(f, "T1", TXN2, TS1, "", TLOG_CREATED);
	assert_int_equal(tlog_open_readonly(f->path, &ro, &e), 0);
	assert_int_equal(tlog_begin(f->t, &e), 0);
	assert_true(tlog_pending(f->t));
	assert_int_equal(tlog_begin(f->t, &e), 0); /* already open: the same one */
	assert_int_equal(tlog_mark_sent(f->t, TXN1, "created", 2000, &e), 0);
	assert_int_equal(tlog_stats(f->t, &st, &e), 0);
	assert_int_equal(st.unsent, 1); /* this connection sees its own mark */
	assert_int_equal(tlog_stats(ro, &st, &e), 0);
	assert_int_equal(st.unsent, 2); /* others do not until the commit */
	/* A basket's commit takes the pending marks with it. */
	basket(&b, TXN3, TS2, "");
	assert_int_equal(tlog_put_batch(f->t, "T2", &b, 1, 3000, &res, &e), 0);
	assert_false(tlog_pending(f->t));
	assert_int_equal(tlog_stats(ro, &st, &e), 0);
	assert_int_equal(st.unsent, 2);
	assert_int_equal(st.total, 3);
	assert_int_equal(tlog_begin(f->t, &e), 0);
	assert_int_equal(tlog_mark_sent(f->t, TXN2, "created", 4000, &e), 0);
	assert_int_equal(tlog_commit(f->t, &e), 0);
	assert_int_equal(tlog_commit(f->t, &e), 0); /* nothing open: nothing to do */
	assert_int_equal(tlog_stats(ro, &st, &e), 0);
	assert_int_equal(st.unsent, 1);
	tlog_close(ro);
	tlog_basket_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_basket_is_read_for_the_report),
		cmocka_unit_test(bad_baskets_are_refused_naming_the_field),
		cmocka_unit_test_setup_teardown(
			the_same_basket_twice_is_a_duplicate_other_content_a_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(peek_takes_one_lane_and_sent_rows_leave_the_queue,
						setup, teardown),
		cmocka_unit_test_setup_teardown(prune_keeps_unsent_and_replay_sends_again, setup,
						teardown),
		cmocka_unit_test_setup_teardown(the_report_groups_by_lane_and_hour, setup, teardown),
		cmocka_unit_test_setup_teardown(the_log_is_private_and_readonly_open_needs_it, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_batch_is_committed_whole_with_a_verdict_per_basket,
						setup, teardown),
		cmocka_unit_test_setup_teardown(marks_after_begin_reach_the_disk_with_the_next_commit,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
