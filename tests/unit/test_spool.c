/* spool: a basket committed here survives anything short of losing the
 * disk, leaves only after central's acknowledgement, and is never doubled. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spool.h"

#define TXN1 "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c1"
#define TXN2 "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c2"
#define TXN3 "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c3"
#define BODY1 "{\"txn\":\"" TXN1 "\",\"items\":[{\"gtin\":\"09520000000011\",\"qty\":1}]}"
#define BODY2 "{\"txn\":\"" TXN2 "\",\"items\":[{\"gtin\":\"09520000000028\",\"qty\":2}]}"
#define BODY3 "{\"txn\":\"" TXN3 "\",\"items\":[{\"gtin\":\"09520000000035\",\"qty\":3}]}"

struct fx {
	char dir[64];
	char path[128];
	struct spool *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	pos_err e;

	snprintf(f->dir, sizeof f->dir, "/tmp/test_spool.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof f->path, "%s/spool.db", f->dir);
	if (spool_open(f->path, &f->s, &e) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[200];

	spool_close(f->s);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void put(struct spool *s, const char *txn, const char *body)
{
	pos_err e;
	assert_int_equal(spool_put(s, txn, body, strlen(body), &e), 0);
}

static void baskets_come_back_oldest_first_exactly_as_put(void **state)
{
	struct fx *f = *state;
	struct spool_row *rows = NULL;
	size_t n = 0;
	pos_err e;

	put(f->s, TXN2, BODY2);
	put(f->s, TXN1, BODY1);
	put(f->s, TXN3, BODY3);
	assert_int_equal(spool_count(f->s), 3);
	assert_int_equal(spool_peek(f->s, 2, &rows, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].txn, TXN2);
	assert_string_equal(rows[0].body, BODY2);
	assert_int_equal(rows[0].len, strlen(BODY2));
	assert_int_equal(rows[0].attempts, 0);
	assert_string_equal(rows[1].txn, TXN1);
	assert_true(rows[0].id < rows[1].id);
	spool_rows_free(rows, n);
}

static void a_repeated_txn_changes_nothing(void **state)
{
	struct fx *f = *state;
	struct spool_row *rows = NULL;
	size_t n = 0;
	pos_err e;

	put(f->s, TXN1, BODY1);
	put(f->s, TXN1, BODY2);
	assert_int_equal(spool_count(f->s), 1);
	assert_int_equal(spool_peek(f->s, 10, &rows, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].body, BODY1);
	spool_rows_free(rows, n);
}

static void delete_removes_only_its_txn_and_a_missing_one_is_fine(void **state)
{
	struct fx *f = *state;
	struct spool_row *rows = NULL;
	size_t n = 0;
	pos_err e;

	put(f->s, TXN1, BODY1);
	put(f->s, TXN2, BODY2);
	assert_int_equal(spool_delete(f->s, TXN1, &e), 0);
	assert_int_equal(spool_delete(f->s, TXN3, &e), 0);
	assert_int_equal(spool_count(f->s), 1);
	assert_int_equal(spool_peek(f->s, 10, &rows, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].txn, TXN2);
	spool_rows_free(rows, n);
}

static void an_empty_spool_peeks_nothing(void **state)
{
	struct fx *f = *state;
	struct spool_row *rows = (struct spool_row *)1;
	size_t n = 99;
	pos_err e;

	assert_int_equal(spool_peek(f->s, 10, &rows, &n, &e), 0);
	assert_null(rows);
	assert_int_equal(n, 0);
	assert_int_equal(spool_count(f->s), 0);
}

static void attempts_are_counted(void **state)
{
	struct fx *f = *state;
	struct spool_row *rows = NULL;
	size_t n = 0;
	pos_err e;

	put(f->s, TXN1, BODY1);
	assert_int_equal(spool_note_attempt(f->s, TXN1, &e), 0);
	assert_int_equal(spool_note_attempt(f->s, TXN1, &e), 0);
	assert_int_equal(spool_peek(f->s, 1, &rows, &n, &e), 0);
	assert_int_equal(rows[0].attempts, 2);
	spool_rows_free(rows, n);
}

static void a_refused_basket_is_set_aside_not_lost(void **state)
{
	struct fx *f = *state;
	struct spool_row *rows = NULL;
	size_t n = 0;
	pos_err e;

	put(f->s, TXN1, BODY1);
	put(f->s, TXN2, BODY2);
	assert_int_equal(spool_set_rejected(f->s, TXN1, "invalid", &e), 0);
	assert_int_equal(spool_count(f->s), 1);
	assert_int_equal(spool_count_rejected(f->s), 1);
	assert_int_equal(spool_peek(f->s, 10, &rows, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].txn, TXN2);
	spool_rows_free(rows, n);
	/* A later put of the same txn does not bring it back. */
	put(f->s, TXN1, BODY1);
	assert_int_equal(spool_count(f->s), 1);
}

static void baskets_survive_a_reopen(void **state)
{
	struct fx *f = *state;
	pos_err e;

	put(f->s, TXN1, BODY1);
	spool_close(f->s);
	f->s = NULL;
	assert_int_equal(spool_open(f->path, &f->s, &e), 0);
	assert_int_equal(spool_count(f->s), 1);
}

/* A child commits and is killed with SIGKILL right after: the parent
 * finds the basket. The commit is the promise, not a clean exit. */
static void a_committed_basket_survives_kill_9(void **state)
{
	struct fx *f = *state;
	int status = 0;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct spool *s = NULL;
		pos_err e;
		if (spool_open(f->path, &s, &e) < 0 ||
		    spool_put(s, TXN3, BODY3, strlen(BODY3), &e) < 0)
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_int_equal(spool_count(f->s), 1);
}

static void the_spool_is_wal_full_sync_and_private(void **state)
{
	struct fx *f = *state;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct stat sb;
	char wal[160];

	put(f->s, TXN1, BODY1);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(wal, sizeof wal, "%s-wal", f->path);
	assert_int_equal(stat(wal, &sb), 0);
	assert_int_equal(sb.st_mode & 077, 0);
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void a_wider_existing_file_is_narrowed_to_0600(void **state)
{
	struct fx *f = *state;
	struct stat sb;
	pos_err e;

	spool_close(f->s);
	f->s = NULL;
	assert_int_equal(chmod(f->path, 0644), 0);
	assert_int_equal(spool_open(f->path, &f->s, &e), 0);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

static void bad_input_is_refused_and_changes_nothing(void **state)
{
	struct fx *f = *state;
	static char big[1024 * 1024 + 2];
	pos_err e;

	assert_int_equal(spool_put(f->s, "", BODY1, strlen(BODY1), &e), POS_EINVAL);
	assert_int_equal(spool_put(f->s, TXN1 "-and-more-than-36", BODY1, strlen(BODY1), &e),
			 POS_EINVAL);
	assert_int_equal(spool_put(f->s, TXN1, "", 0, &e), POS_EINVAL);
	assert_int_equal(spool_put(f->s, TXN1, "{\"a\0\"}", 6, &e), POS_EINVAL);
	memset(big, 'x', sizeof big - 1);
	assert_int_equal(spool_put(f->s, TXN1, big, sizeof big - 1, &e), POS_ETOOBIG);
	assert_int_equal(spool_count(f->s), 0);
}

static void an_unwritable_place_fails_with_a_message(void **state)
{
	struct spool *s = NULL;
	pos_err e;

	(void)state;
	assert_int_equal(spool_open("/nonexistent-dir/x/spool.db", &s, &e), POS_EIO);
	assert_null(s);
	assert_non_null(strstr(e.msg, "/nonexistent-dir/x/spool.db"));
}

struct each_seen {
	int n, aside, bodies;
	char reasons[200];
};

static int each_count(const struct spool_entry *en, void *arg)
{
	struct each_seen *w = arg;

	w->n++;
	w->aside += en->set_aside;
	w->bodies += en->body != NULL;
	strncat(w->reasons, en->reason[0] ? en->reason : "-", sizeof w->reasons - strlen(w->reasons) - 2);
	strcat(w->reasons, ",");
	return 0;
}

/* pos-agent spool retry: set-aside baskets come back to waiting, all of
 * them or those of the reasons asked; nothing else moves. */
static void set_aside_baskets_are_retried_by_reason_or_all(void **state)
{
	struct fx *f = *state;
	static const char *const keyish[] = { "bad_tid", "bad_kid", NULL };
	struct each_seen w;
	long moved = -1;
	pos_err e;

	assert_int_equal(spool_put(f->s, TXN1, BODY1, strlen(BODY1), &e), 0);
	assert_int_equal(spool_put(f->s, TXN2, BODY2, strlen(BODY2), &e), 0);
	assert_int_equal(spool_put(f->s, TXN3, BODY3, strlen(BODY3), &e), 0);
	assert_int_equal(spool_set_rejected(f->s, TXN1, "bad_tid", &e), 0);
	assert_int_equal(spool_set_rejected(f->s, TXN2, "invalid", &e), 0);
	assert_int_equal(spool_count_rejected(f->s), 2);

	memset(&w, 0, sizeof w);
	assert_int_equal(spool_each(f->s, 0, each_count, &w, &e), 0);
	assert_int_equal(w.n, 3);
	assert_int_equal(w.aside, 2);
	assert_int_equal(w.bodies, 0);
	assert_string_equal(w.reasons, "bad_tid,invalid,-,");

	assert_int_equal(spool_retry(f->s, keyish, &moved, &e), 0);
	assert_int_equal(moved, 1);
	assert_int_equal(spool_count_rejected(f->s), 1);
	assert_int_equal(spool_count(f->s), 2);
	assert_int_equal(spool_retry(f->s, NULL, &moved, &e), 0);
	assert_int_equal(moved, 1);
	assert_int_equal(spool_count_rejected(f->s), 0);
	assert_int_equal(spool_retry(f->s, NULL, &moved, &e), 0);
	assert_int_equal(moved, 0);

	memset(&w, 0, sizeof w);
	assert_int_equal(spool_each(f->s, 1, each_count, &w, &e), 0);
	assert_int_equal(w.bodies, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(baskets_come_back_oldest_first_exactly_as_put, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_repeated_txn_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(delete_removes_only_its_txn_and_a_missing_one_is_fine,
						setup, teardown),
		cmocka_unit_test_setup_teardown(an_empty_spool_peeks_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(attempts_are_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(a_refused_basket_is_set_aside_not_lost, setup,
						teardown),
		cmocka_unit_test_setup_teardown(baskets_survive_a_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(a_committed_basket_survives_kill_9, setup, teardown),
		cmocka_unit_test_setup_teardown(the_spool_is_wal_full_sync_and_private, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_wider_existing_file_is_narrowed_to_0600, setup,
						teardown),
		cmocka_unit_test_setup_teardown(bad_input_is_refused_and_changes_nothing, setup,
						teardown),
		cmocka_unit_test(an_unwritable_place_fails_with_a_message),
		cmocka_unit_test_setup_teardown(set_aside_baskets_are_retried_by_reason_or_all, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
