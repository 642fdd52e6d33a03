/* A history walked in slices: store_history_page and store_history_seek
 * give every basket once across slices (baskets sharing a ms included),
 * read by the index alone; paging cursors round-trip and refuse anything
 * else; history_stream's slices add up to history_write's whole text. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deident.h"
#include "history.h"
#include "store.h"
#include "store_fixture.h"

#define N_HIST 50

static struct store_item one_item[1] = { { "00012345678905", 2, 199 } };

static const char *txn_n(int n)
{
	static char buf[4][37];
	static int k;
	char *p = buf[k++ % 4];

	snprintf(p, 37, "0190a000-0000-7000-8000-%012d", n);
	return p;
}

/* N_HIST baskets of one household, three to a ms (ts = 1000 * (i / 3)),
 * plus one of another household in the middle. */
static void grow(struct store *s, char hh[DEIDENT_ID_LEN + 1])
{
	char other[DEIDENT_ID_LEN + 1];
	struct store_basket b[N_HIST + 1];
	enum store_put_result r[N_HIST + 1];
	pos_err e = { 0 };

	assert_int_equal(deident_hhid_new(hh, &e), 0);
	assert_int_equal(deident_hhid_new(other, &e), 0);
	memset(b, 0, sizeof b);
	for (int i = 0; i <= N_HIST; i++) {
		snprintf(b[i].txn, sizeof b[i].txn, "%s", txn_n(i));
		b[i].ts_ms = 1000 * (i / 3);
		snprintf(b[i].store, sizeof b[i].store, "S1");
		snprintf(b[i].terminal, sizeof b[i].terminal, "T1");
		snprintf(b[i].hhid, sizeof b[i].hhid, "%s", i == N_HIST ? other : hh);
		if (i == N_HIST)
			b[i].ts_ms = 7000;
		memset(b[i].digest, i, sizeof b[i].digest);
		b[i].items = one_item;
		b[i].n_items = 1;
	}
	assert_int_equal(store_put_baskets(s, b, N_HIST + 1, r, &e), 0);
}

struct walk {
	int n;
	char txn[N_HIST * 2][37];
	int64_t ts[N_HIST * 2];
	int stop_at; /* fn answers 1 at this many baskets; 0: never */
};

static int walk_fn(const struct store_basket *b, void *arg)
{
	struct walk *w = arg;

	assert_true(w->n < N_HIST * 2);
	memcpy(w->txn[w->n], b->txn, sizeof w->txn[0]);
	w->ts[w->n] = b->ts_ms;
	w->n++;
	return w->stop_at && w->n == w->stop_at ? 1 : 0;
}

static void every_basket_comes_once_across_slices_of_any_size(void **st)
{
	struct fx *f = *st;
	char hh[DEIDENT_ID_LEN + 1];
	struct walk whole, sliced;
	pos_err e = { 0 };

	grow(f->s, hh);
	memset(&whole, 0, sizeof whole);
	assert_int_equal(store_history(f->s, hh, 0, 0, walk_fn, &whole, &e), 0);
	assert_int_equal(whole.n, N_HIST);
	for (size_t max = 1; max <= 7; max++) {
		struct store_history_pos pos = { 0, 0 };
		int rc, slices = 0;

		memset(&sliced, 0, sizeof sliced);
		while ((rc = store_history_page(f->s, hh, 0, 0, &pos, NULL, max, walk_fn, &sliced,
						&e)) == 1)
			slices++;
		assert_int_equal(rc, 0);
		assert_int_equal(sliced.n, N_HIST);
		assert_true(slices >= (N_HIST - 1) / (int)max);
		for (int i = 0; i < N_HIST; i++)
			assert_string_equal(sliced.txn[i], whole.txn[i]);
	}
}

static void a_stopping_fn_keeps_its_basket_and_the_walk_resumes_after_it(void **st)
{
	struct fx *f = *st;
	char hh[DEIDENT_ID_LEN + 1];
	struct store_history_pos pos = { 0, 0 };
	struct walk w;
	pos_err e = { 0 };

	grow(f->s, hh);
	memset(&w, 0, sizeof w);
	w.stop_at = 4;
	assert_int_equal(store_history_page(f->s, hh, 0, 0, &pos, NULL, 100, walk_fn, &w, &e), 1);
	assert_int_equal(w.n, 4);
	w.stop_at = 0;
	assert_int_equal(store_history_page(f->s, hh, 0, 0, &pos, NULL, 100, walk_fn, &w, &e), 0);
	assert_int_equal(w.n, N_HIST);
	for (int i = 1; i < N_HIST; i++)
		assert_true(w.ts[i - 1] >= w.ts[i] && strcmp(w.txn[i - 1], w.txn[i]) != 0);
}

static void seek_finds_a_page_end_and_says_whether_more_follow(void **st)
{
	struct fx *f = *st;
	char hh[DEIDENT_ID_LEN + 1];
	struct store_history_pos pos = { 0, 0 }, end;
	struct walk w;
	bool more = false;
	pos_err e = { 0 };
	int pages = 0, rc;

	grow(f->s, hh);
	memset(&w, 0, sizeof w);
	/* Pages of 4 (ends inside a ms of three baskets), to the last. */
	for (;;) {
		rc = store_history_seek(f->s, hh, 0, 0, &pos, 4, &end, &more, &e);
		if (rc == POS_ENOTFOUND) {
			assert_int_equal(store_history_page(f->s, hh, 0, 0, &pos, NULL, 100, walk_fn,
							    &w, &e),
					 0);
			pages++;
			break;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(store_history_page(f->s, hh, 0, 0, &pos, &end, 100, walk_fn, &w,
						    &e),
				 0);
		pages++;
		assert_int_equal(w.n, 4 * pages);
		assert_true(pos.ts_ms == end.ts_ms && pos.id == end.id);
		if (!more)
			break;
	}
	assert_int_equal(w.n, N_HIST);
	assert_int_equal(pages, (N_HIST + 3) / 4);
	/* from/to bound the walk: ts 3000..5999 holds baskets 9..17. */
	memset(&pos, 0, sizeof pos);
	assert_int_equal(store_history_seek(f->s, hh, 3000, 6000, &pos, 9, &end, &more, &e), 0);
	assert_false(more);
	assert_int_equal(store_history_seek(f->s, hh, 3000, 6000, &pos, 10, &end, &more, &e),
			 POS_ENOTFOUND);
}

static void slices_are_read_by_index_without_a_sort(void **st)
{
	struct fx *f = *st;
	static const char *const q[] = {
		"EXPLAIN QUERY PLAN SELECT id, txn, ts, store, terminal, hhid, deident, digest "
		"FROM baskets WHERE hhid = ?1 AND ts <= ?2 AND ts >= ?3 AND (ts < ?2 OR id < ?4) "
		"AND (ts > ?3 OR id >= ?5) ORDER BY ts DESC, id DESC LIMIT ?6",
		"EXPLAIN QUERY PLAN SELECT ts, id FROM baskets WHERE hhid = ?1 AND ts <= ?2 AND "
		"ts >= ?3 AND (ts < ?2 OR id < ?4) ORDER BY ts DESC, id DESC LIMIT 2 OFFSET ?5",
	};
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	for (size_t i = 0; i < 2; i++) {
		sqlite3_stmt *st2;
		char plan[1024] = "";

		assert_int_equal(sqlite3_prepare_v2(db, q[i], -1, &st2, NULL), SQLITE_OK);
		while (sqlite3_step(st2) == SQLITE_ROW) {
			strncat(plan, (const char *)sqlite3_column_text(st2, 3),
				sizeof(plan) - strlen(plan) - 2);
			strncat(plan, ";", sizeof(plan) - strlen(plan) - 1);
		}
		sqlite3_finalize(st2);
		assert_non_null(strstr(plan, "baskets_hhid_ts (hhid=? AND ts>? AND ts<?)"));
		assert_null(strstr(plan, "TEMP B-TREE"));
		if (i == 1)
			assert_non_null(strstr(plan, "COVERING INDEX"));
	}
	sqlite3_close(db);
}

static void cursors_round_trip_and_anything_else_is_refused(void **st)
{
	struct store_history_pos p = { 1767225600123, 42 }, got;
	char s[HISTORY_CURSOR_LEN + 1];
	pos_err e = { 0 };

	(void)st;
	history_cursor_encode(&p, s);
	assert_int_equal(strlen(s), HISTORY_CURSOR_LEN);
	assert_int_equal(history_cursor_decode(s, &got, &e), 0);
	assert_true(got.ts_ms == p.ts_ms && got.id == p.id);
	p.ts_ms = -5; /* before 1970 */
	history_cursor_encode(&p, s);
	assert_int_equal(history_cursor_decode(s, &got, &e), 0);
	assert_true(got.ts_ms == -5);
	assert_int_equal(history_cursor_decode("", &got, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "cursor"));
	assert_int_equal(history_cursor_decode("AAAAAAAAAAAAAAAAAAAAAA", &got, &e), POS_EINVAL);
	assert_int_equal(history_cursor_decode("AAAAAAAAAAAAAAAAAAAAAAA", &got, &e), POS_EINVAL);
	assert_int_equal(history_cursor_decode("AAAAAAAAAAAAAAAAAAAA+A", &got, &e), POS_EINVAL);
	assert_int_equal(history_cursor_decode("AAAAAAAAAAA_________8", &got, &e), POS_EINVAL);
	assert_int_equal(history_cursor_decode(NULL, &got, &e), POS_EINVAL);
}

struct text {
	char *p;
	size_t len;
	int calls;
	int fail_at; /* the sink fails at this call; 0: never */
};

static int text_sink(const void *buf, size_t len, void *arg)
{
	struct text *t = arg;

	if (t->fail_at && ++t->calls == t->fail_at)
		return POS_ENOMEM;
	assert_true(len <= HISTORY_CHUNK);
	t->p = realloc(t->p, t->len + len + 1);
	assert_non_null(t->p);
	memcpy(t->p + t->len, buf, len);
	t->len += len;
	t->p[t->len] = '\0';
	return 0;
}

static void stream_slices_add_up_to_the_whole_history(void **st)
{
	struct fx *f = *st;
	char hh[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	grow(f->s, hh);
	for (int fmt = HISTORY_CSV; fmt <= HISTORY_TABLE; fmt++) {
		struct text whole = { 0 }, sliced = { 0 };
		struct history_stream *hs = NULL;
		int rc, slices = 0;

		assert_int_equal(history_write(f->s, hh, 0, 0, (enum history_format)fmt, text_sink,
					       &whole, &e),
				 0);
		assert_int_equal(history_stream_new(f->s, hh, 0, 0, NULL, NULL,
						    (enum history_format)fmt, &hs, &e),
				 0);
		while ((rc = history_stream_next(hs, 100, text_sink, &sliced, &e)) == 1)
			slices++;
		assert_int_equal(rc, 0);
		assert_int_equal(history_stream_next(hs, 100, text_sink, &sliced, &e), 0);
		history_stream_free(hs);
		assert_true(slices > 5);
		assert_string_equal(sliced.p, whole.p);
		free(whole.p);
		free(sliced.p);
	}
}

static void a_failing_sink_stops_the_stream_with_its_error(void **st)
{
	struct fx *f = *st;
	char hh[DEIDENT_ID_LEN + 1];
	struct text t = { .fail_at = 3 };
	struct history_stream *hs = NULL;
	pos_err e = { 0 };
	int rc;

	grow(f->s, hh);
	assert_int_equal(history_stream_new(f->s, hh, 0, 0, NULL, NULL, HISTORY_JSON, &hs, &e), 0);
	while ((rc = history_stream_next(hs, 64, text_sink, &t, &e)) == 1)
		;
	assert_int_equal(rc, POS_ENOMEM);
	history_stream_free(hs);
	free(t.p);
	assert_int_equal(history_stream_new(f->s, "hh_nope", 0, 0, NULL, NULL, HISTORY_JSON, &hs,
					    &e),
			 POS_EINVAL);
	assert_null(hs);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(every_basket_comes_once_across_slices_of_any_size),
		T(a_stopping_fn_keeps_its_basket_and_the_walk_resumes_after_it),
		T(seek_finds_a_page_end_and_says_whether_more_follow),
		T(slices_are_read_by_index_without_a_sort),
		T(cursors_round_trip_and_anything_else_is_refused),
		T(stream_slices_add_up_to_the_whole_history),
		T(a_failing_sink_stops_the_stream_with_its_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
