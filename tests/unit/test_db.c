/* db.h, the SQL connection under the store, proven the same on SQLite and on
 * PostgreSQL: values round trip, errors map to the same codes and never
 * carry a bound value, transactions and savepoints, statements nest and
 * are reused, a read-only connection refuses writes, and two connections
 * racing one key store one row.
 *
 * PostgreSQL: POS_TEST_PG_DSN names a database of a running server (make
 * test starts one with tests/pg/pgctl); each test gets a fresh database
 * beside it. Without it the PostgreSQL half is skipped, saying so. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "dbfile.h"
#include "pg_fixture.h"

#define SECRET "4242424242424242"

struct fx {
	enum db_backend b;
	struct db *db;
	char dir[64];
	char path[128];
	char dsn[600];
};

static const enum db_backend be_sqlite = DB_SQLITE;
static const enum db_backend be_pg = DB_POSTGRESQL;

static const char *const ddl_sqlite =
	"CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, s TEXT UNIQUE, b BLOB);"
	"CREATE TABLE p (id INTEGER PRIMARY KEY);"
	"CREATE TABLE c (id INTEGER PRIMARY KEY, pid INTEGER NOT NULL REFERENCES p(id));";
static const char *const ddl_pg =
	"CREATE TABLE t (id BIGINT PRIMARY KEY, i BIGINT, s TEXT UNIQUE, b BYTEA);"
	"CREATE TABLE p (id BIGINT PRIMARY KEY);"
	"CREATE TABLE c (id BIGINT PRIMARY KEY, pid BIGINT NOT NULL REFERENCES p(id));";

static int open_fx(struct fx *f, bool readonly, struct db **out, pos_err *e)
{
	if (f->b == DB_SQLITE)
		return db_open_sqlite(f->path, readonly, out, e);
	return db_open_pg(f->dsn, readonly, out, e);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	pos_err e = { 0 };

	assert_non_null(f);
	f->b = *(const enum db_backend *)*state;
	if (f->b == DB_SQLITE) {
		snprintf(f->dir, sizeof(f->dir), "/tmp/test_db.XXXXXX");
		assert_non_null(mkdtemp(f->dir));
		snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
		assert_int_equal(dbfile_prepare(f->path, &e), 0);
	} else if (pgfx_fresh("pos_test_db", f->dsn, sizeof(f->dsn))) {
		fail_msg("POS_TEST_PG_DSN is not set");
	}
	if (open_fx(f, false, &f->db, &e) < 0)
		fail_msg("open: %s", e.msg);
	if (db_exec(f->db, f->b == DB_SQLITE ? ddl_sqlite : ddl_pg, &e) < 0)
		fail_msg("schema: %s", e.msg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[192];

	db_close(f->db);
	if (f->b == DB_SQLITE) {
		unlink(f->path);
		snprintf(p, sizeof(p), "%s-wal", f->path);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", f->path);
		unlink(p);
		rmdir(f->dir);
	}
	free(f);
	return 0;
}

static struct fx *fx_of(void **state)
{
	return *state;
}

static void run_sql(struct db *db, const char *sql)
{
	pos_err e = { 0 };

	if (db_exec(db, sql, &e) < 0)
		fail_msg("%s: %s", sql, e.msg);
}

static int64_t count(struct db *db, const char *sql)
{
	struct db_stmt *st;
	pos_err e = { 0 };
	int64_t n;

	assert_int_equal(db_prepare(db, sql, 0, &st, &e), 0);
	assert_int_equal(db_step(st, &e), DB_ROW);
	n = db_col_int64(st, 0);
	assert_int_equal(db_step(st, &e), DB_DONE);
	db_finalize(st);
	return n;
}

static int put(struct db *db, int64_t id, const char *s, pos_err *e)
{
	struct db_stmt *st;
	int rc;

	assert_int_equal(db_prepare(db, "INSERT INTO t (id, s) VALUES (?1, ?2)", 0, &st, e), 0);
	db_bind_int64(st, 1, id);
	db_bind_text(st, 2, s);
	rc = db_run(st, e);
	db_finalize(st);
	return rc;
}

static void values_round_trip_unchanged(void **state)
{
	struct fx *f = fx_of(state);
	static const int64_t ints[] = { INT64_MIN, INT64_MAX, 0, -1, 1 };
	const char *utf8 = "Zo\xc3\xab \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac";
	unsigned char blob[32];
	struct db_stmt *ins, *sel;
	pos_err e = { 0 };
	const void *b;
	size_t n;

	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (unsigned char)(i % 3 ? i * 7 : 0);
	assert_int_equal(db_prepare(f->db, "INSERT INTO t (id, i, s, b) VALUES (?1, ?2, ?3, ?4)",
				    DB_KEEP, &ins, &e),
			 0);
	for (size_t k = 0; k < sizeof(ints) / sizeof(ints[0]); k++) {
		db_clear(ins);
		db_bind_int64(ins, 1, (int64_t)k);
		db_bind_int64(ins, 2, ints[k]);
		assert_int_equal(db_run(ins, &e), 0);
	}
	/* NULLs, empty text, UTF-8 and a blob with zero bytes */
	db_clear(ins);
	db_bind_int64(ins, 1, 10);
	db_bind_null(ins, 2);
	db_bind_text(ins, 3, NULL);
	db_bind_blob(ins, 4, NULL, 0);
	assert_int_equal(db_run(ins, &e), 0);
	db_clear(ins);
	db_bind_int64(ins, 1, 11);
	db_bind_text(ins, 3, "");
	db_bind_blob(ins, 4, blob, sizeof(blob));
	assert_int_equal(db_run(ins, &e), 0);
	db_clear(ins);
	db_bind_int64(ins, 1, 12);
	db_bind_textn(ins, 3, utf8, strlen(utf8));
	db_bind_opt_text(ins, 2, "");
	assert_int_equal(db_run(ins, &e), 0);
	db_finalize(ins);

	assert_int_equal(db_prepare(f->db, "SELECT i, s, b FROM t WHERE id = ?1", DB_KEEP, &sel, &e),
			 0);
	for (size_t k = 0; k < sizeof(ints) / sizeof(ints[0]); k++) {
		db_clear(sel);
		db_bind_int64(sel, 1, (int64_t)k);
		assert_int_equal(db_step(sel, &e), DB_ROW);
		assert_int_equal(db_col_int64(sel, 0), ints[k]);
		assert_false(db_col_null(sel, 0));
		assert_true(db_col_null(sel, 1));
		assert_null(db_col_text(sel, 1));
		assert_int_equal(db_step(sel, &e), DB_DONE);
	}
	db_clear(sel);
	db_bind_int64(sel, 1, 10);
	assert_int_equal(db_step(sel, &e), DB_ROW);
	assert_true(db_col_null(sel, 0));
	assert_int_equal(db_col_int64(sel, 0), 0);
	assert_true(db_col_null(sel, 1));
	assert_true(db_col_null(sel, 2));
	assert_null(db_col_blob(sel, 2, &n));
	assert_int_equal(n, 0);
	db_reset(sel);

	db_clear(sel);
	db_bind_int64(sel, 1, 11);
	assert_int_equal(db_step(sel, &e), DB_ROW);
	assert_false(db_col_null(sel, 1));
	assert_string_equal(db_col_text(sel, 1), "");
	b = db_col_blob(sel, 2, &n);
	assert_int_equal(n, sizeof(blob));
	assert_memory_equal(b, blob, sizeof(blob));
	/* the same column read twice stays the same */
	assert_memory_equal(db_col_blob(sel, 2, &n), blob, sizeof(blob));
	db_reset(sel);

	db_clear(sel);
	db_bind_int64(sel, 1, 12);
	assert_int_equal(db_step(sel, &e), DB_ROW);
	assert_true(db_col_null(sel, 0)); /* optional text "" is NULL */
	assert_string_equal(db_col_text(sel, 1), utf8);
	{
		char cut[6];
		db_col_copy(sel, 1, cut, sizeof(cut));
		assert_string_equal(cut, "Zo\xc3\xab ");
	}
	db_reset(sel);
	db_finalize(sel);

	/* a boolean expression reads as 1 or 0 on both */
	assert_int_equal(count(f->db, "SELECT 2 > 1"), 1);
	assert_int_equal(count(f->db, "SELECT 1 > 2"), 0);
}

static void errors_map_to_codes_without_bound_values(void **state)
{
	struct fx *f = fx_of(state);
	struct db_stmt *st;
	pos_err e = { 0 };

	assert_int_equal(put(f->db, 1, SECRET, &e), 0);
	assert_int_equal(put(f->db, 2, SECRET, &e), POS_ECONFLICT);
	assert_null(strstr(e.msg, SECRET));
	assert_non_null(strstr(e.msg, "database: "));
	assert_int_equal(put(f->db, 1, "other", &e), POS_ECONFLICT);

	assert_int_equal(db_prepare(f->db, "INSERT INTO c (id, pid) VALUES (?1, ?2)", 0, &st, &e),
			 0);
	db_bind_int64(st, 1, 1);
	db_bind_int64(st, 2, 4242424242424242LL);
	assert_int_equal(db_run(st, &e), POS_ENOTFOUND);
	assert_null(strstr(e.msg, SECRET));
	db_finalize(st);

	/* A value the column cannot take: PostgreSQL's message would quote it. */
	assert_int_equal(db_prepare(f->db, "UPDATE t SET i = ?1 WHERE id = 1", 0, &st, &e), 0);
	db_bind_text(st, 1, "x" SECRET);
	if (db_run(st, &e) < 0)
		assert_null(strstr(e.msg, SECRET));
	else
		assert_int_equal(f->b, DB_SQLITE); /* SQLite keeps it as text */
	db_finalize(st);

	/* a syntax error: SQLite finds it at prepare, PostgreSQL at the run */
	if (db_prepare(f->db, "SELEC 1", 0, &st, &e) == 0) {
		assert_int_equal(db_step(st, &e), POS_EDB);
		db_finalize(st);
	}
	assert_int_equal(e.code, POS_EDB);

	/* a parameter out of range is reported by the next step */
	assert_int_equal(db_prepare(f->db, "SELECT ?1", 0, &st, &e), 0);
	db_bind_int64(st, 2, 5);
	assert_true(db_step(st, &e) < 0);
	db_clear(st);
	db_bind_int64(st, 1, 5);
	assert_int_equal(db_step(st, &e), DB_ROW);
	assert_int_equal(db_col_int64(st, 0), 5);
	db_finalize(st);
}

static void parameters_are_found_outside_quotes_and_comments(void **state)
{
	struct fx *f = fx_of(state);
	struct db_stmt *st;
	pos_err e = { 0 };

	assert_int_equal(db_prepare(f->db, "SELECT ?1 /* ?9 */, 'a''?8', ?2 -- ?7\n", DB_KEEP, &st,
				    &e),
			 0);
	db_bind_int64(st, 1, 11);
	db_bind_text(st, 2, "two");
	assert_int_equal(db_step(st, &e), DB_ROW);
	assert_int_equal(db_col_count(st), 3);
	assert_int_equal(db_col_int64(st, 0), 11);
	assert_string_equal(db_col_text(st, 1), "a'?8");
	assert_string_equal(db_col_text(st, 2), "two");
	db_reset(st);
	db_finalize(st);
	if (f->b != DB_POSTGRESQL)
		return;
	assert_int_equal(db_prepare(f->db, "SELECT $q$?4$q$, E'\\'?5', ?1", 0, &st, &e), 0);
	db_bind_int64(st, 1, 3);
	assert_int_equal(db_step(st, &e), DB_ROW);
	assert_string_equal(db_col_text(st, 0), "?4");
	assert_string_equal(db_col_text(st, 1), "'?5");
	assert_int_equal(db_col_int64(st, 2), 3);
	db_finalize(st);
}

static void transactions_commit_roll_back_and_nest(void **state)
{
	struct fx *f = fx_of(state);
	pos_err e = { 0 };

	assert_false(db_in_txn(f->db));
	assert_int_equal(db_begin(f->db, &e), 0);
	assert_true(db_in_txn(f->db));
	assert_int_equal(put(f->db, 1, "a", &e), 0);
	assert_int_equal(db_commit(f->db, &e), 0);
	assert_false(db_in_txn(f->db));

	assert_int_equal(db_begin(f->db, &e), 0);
	assert_int_equal(put(f->db, 2, "b", &e), 0);
	db_rollback(f->db);
	assert_false(db_in_txn(f->db));
	assert_int_equal(count(f->db, "SELECT count(*) FROM t"), 1);

	/* a savepoint undoes only itself, even after an error inside it */
	assert_int_equal(db_begin(f->db, &e), 0);
	assert_int_equal(put(f->db, 3, "c", &e), 0);
	run_sql(f->db, "SAVEPOINT u1");
	assert_int_equal(put(f->db, 4, "d", &e), 0);
	assert_int_equal(put(f->db, 5, "a", &e), POS_ECONFLICT);
	run_sql(f->db, "ROLLBACK TO SAVEPOINT u1");
	run_sql(f->db, "RELEASE SAVEPOINT u1");
	assert_true(db_in_txn(f->db));
	assert_int_equal(db_commit(f->db, &e), 0);
	assert_int_equal(count(f->db, "SELECT count(*) FROM t"), 2);
	assert_int_equal(count(f->db, "SELECT count(*) FROM t WHERE id = 4"), 0);

	/* an error outside a savepoint: PostgreSQL spoils the transaction and
	 * the commit fails; SQLite undoes the statement and goes on */
	assert_int_equal(db_begin(f->db, &e), 0);
	assert_int_equal(put(f->db, 6, "e", &e), 0);
	assert_int_equal(put(f->db, 7, "a", &e), POS_ECONFLICT);
	if (f->b == DB_POSTGRESQL) {
		assert_false(db_in_txn(f->db));
		assert_true(db_commit(f->db, &e) < 0);
		assert_int_equal(count(f->db, "SELECT count(*) FROM t WHERE id = 6"), 0);
	} else {
		assert_true(db_in_txn(f->db));
		assert_int_equal(db_commit(f->db, &e), 0);
		assert_int_equal(count(f->db, "SELECT count(*) FROM t WHERE id = 6"), 1);
	}
	assert_false(db_in_txn(f->db));
	/* the connection works on */
	assert_int_equal(put(f->db, 8, "f", &e), 0);
}

struct walk {
	int seen;
	int stop_at;
	int64_t sum;
};

static int walk_row(struct db_stmt *st, void *arg)
{
	struct walk *w = arg;

	w->sum += db_col_int64(st, 0);
	return ++w->seen == w->stop_at ? 7 : 0;
}

static void each_stops_on_a_non_zero_and_returns_it(void **state)
{
	struct fx *f = fx_of(state);
	struct db_stmt *st;
	struct walk w = { 0, 3, 0 };
	pos_err e = { 0 };
	char s[16];

	for (int i = 1; i <= 5; i++) {
		snprintf(s, sizeof(s), "r%d", i);
		assert_int_equal(put(f->db, i, s, &e), 0);
	}
	assert_int_equal(db_prepare(f->db, "SELECT id FROM t WHERE id >= ?1 ORDER BY id", DB_KEEP,
				    &st, &e),
			 0);
	db_bind_int64(st, 1, 1);
	assert_int_equal(db_each(st, walk_row, &w, &e), 7);
	assert_int_equal(w.seen, 3);
	assert_int_equal(w.sum, 6);
	/* reset by db_each: the next walk starts over, bindings kept */
	w = (struct walk){ 0, 0, 0 };
	assert_int_equal(db_each(st, walk_row, &w, &e), DB_DONE);
	assert_int_equal(w.seen, 5);
	assert_int_equal(w.sum, 15);
	db_finalize(st);
}

struct nest {
	struct db_stmt *upd;
	int rows;
};

static int nest_row(struct db_stmt *st, void *arg)
{
	struct nest *n = arg;
	pos_err e = { 0 };
	int rc;

	db_clear(n->upd);
	db_bind_int64(n->upd, 1, db_col_int64(st, 0) * 10);
	db_bind_int64(n->upd, 2, db_col_int64(st, 0));
	if ((rc = db_run(n->upd, &e)) < 0)
		return rc;
	assert_int_equal(db_changes(n->upd), 1);
	n->rows++;
	return 0;
}

static void statements_nest_on_one_connection(void **state)
{
	struct fx *f = fx_of(state);
	struct db_stmt *sel;
	struct nest n = { 0 };
	pos_err e = { 0 };
	char s[16];

	for (int i = 1; i <= 4; i++) {
		snprintf(s, sizeof(s), "n%d", i);
		assert_int_equal(put(f->db, i, s, &e), 0);
	}
	assert_int_equal(db_prepare(f->db, "SELECT id FROM t ORDER BY id", 0, &sel, &e), 0);
	assert_int_equal(db_prepare(f->db, "UPDATE t SET i = ?1 WHERE id = ?2", DB_KEEP, &n.upd, &e),
			 0);
	assert_int_equal(db_begin(f->db, &e), 0);
	assert_int_equal(db_each(sel, nest_row, &n, &e), DB_DONE);
	assert_int_equal(db_commit(f->db, &e), 0);
	assert_int_equal(n.rows, 4);
	assert_int_equal(count(f->db, "SELECT sum(i) FROM t"), 100);
	db_finalize(n.upd);
	db_finalize(sel);
}

static void keep_statements_are_reused_and_count_changes(void **state)
{
	struct fx *f = fx_of(state);
	struct db_stmt *ins, *upd, *ret;
	pos_err e = { 0 };

	assert_int_equal(db_prepare(f->db,
				    "INSERT INTO t (id, i) VALUES (?1, ?2) "
				    "ON CONFLICT (id) DO NOTHING",
				    DB_KEEP, &ins, &e),
			 0);
	for (int i = 0; i < 50; i++) {
		db_clear(ins);
		db_bind_int64(ins, 1, i % 25);
		db_bind_int64(ins, 2, i);
		assert_int_equal(db_run(ins, &e), 0);
		assert_int_equal(db_changes(ins), i < 25 ? 1 : 0);
	}
	db_finalize(ins);
	assert_int_equal(count(f->db, "SELECT count(*) FROM t"), 25);

	assert_int_equal(db_prepare(f->db, "UPDATE t SET i = ?1 WHERE id < ?2", DB_KEEP, &upd, &e),
			 0);
	db_bind_int64(upd, 1, -1);
	db_bind_int64(upd, 2, 3);
	assert_int_equal(db_run(upd, &e), 0);
	assert_int_equal(db_changes(upd), 3);
	/* run again with the bindings kept */
	assert_int_equal(db_run(upd, &e), 0);
	assert_int_equal(db_changes(upd), 3);
	db_finalize(upd);

	/* RETURNING gives the row, and the run's change count after it */
	assert_int_equal(db_prepare(f->db,
				    "INSERT INTO t (id) VALUES (?1) RETURNING id, '?1 stays'",
				    DB_KEEP, &ret, &e),
			 0);
	db_bind_int64(ret, 1, 100);
	assert_int_equal(db_step(ret, &e), DB_ROW);
	assert_int_equal(db_col_count(ret), 2);
	assert_int_equal(db_col_int64(ret, 0), 100);
	assert_string_equal(db_col_text(ret, 1), "?1 stays");
	assert_int_equal(db_step(ret, &e), DB_DONE);
	assert_int_equal(db_changes(ret), 1);
	db_reset(ret);
	/* the same key again: an error, and the statement still serves */
	assert_int_equal(db_step(ret, &e), POS_ECONFLICT);
	db_clear(ret);
	db_bind_int64(ret, 1, 101);
	assert_int_equal(db_step(ret, &e), DB_ROW);
	db_reset(ret);
	db_finalize(ret);
}

static void readonly_connection_refuses_writes(void **state)
{
	struct fx *f = fx_of(state);
	struct db *ro = NULL;
	pos_err e = { 0 };

	assert_int_equal(put(f->db, 1, "w", &e), 0);
	if (open_fx(f, true, &ro, &e) < 0)
		fail_msg("open read-only: %s", e.msg);
	assert_true(db_readonly(ro));
	assert_int_equal(count(ro, "SELECT count(*) FROM t"), 1);
	assert_true(put(ro, 2, "x", &e) < 0);
	assert_int_equal(db_begin(ro, &e), 0);
	assert_true(put(ro, 3, "y", &e) < 0);
	db_rollback(ro);
	db_close(ro);
	assert_int_equal(count(f->db, "SELECT count(*) FROM t"), 1);
}

/* A write unit inside a group's transaction is a savepoint: its journal,
 * on disk, made the writer write every changed page a second time. */
static void sqlite_keeps_temporary_data_in_memory(void **state)
{
	struct fx *f = fx_of(state);

	assert_int_equal(count(f->db, "PRAGMA temp_store"), 2);
	assert_int_equal(count(f->db, "PRAGMA synchronous"), 2); /* FULL */
}

/* pos_blob_or merges a bitmap into its row in one upsert: bytes OR'ed,
 * as long as the longer, NULL counting as empty. */
static void sqlite_ors_blobs(void **state)
{
	struct fx *f = fx_of(state);

	assert_int_equal(count(f->db, "SELECT hex(pos_blob_or(x'0102', x'1000F0')) = '1102F0'"), 1);
	assert_int_equal(count(f->db, "SELECT hex(pos_blob_or(NULL, x'0A')) = '0A'"), 1);
	assert_int_equal(count(f->db, "SELECT length(pos_blob_or(NULL, NULL))"), 0);
	assert_int_equal(count(f->db, "SELECT hex(pos_blob_or(zeroblob(3), x'01')) = '010000'"), 1);
	assert_int_equal(count(f->db, "SELECT hex(pos_blob_or('ab', x'01')) = '01'"), 1);
	run_sql(f->db, "CREATE TABLE m (k INTEGER PRIMARY KEY, days BLOB NOT NULL)");
	run_sql(f->db, "INSERT INTO m VALUES (1, x'01') ON CONFLICT (k) DO UPDATE "
		       "SET days = pos_blob_or(days, excluded.days)");
	run_sql(f->db, "INSERT INTO m VALUES (1, x'04') ON CONFLICT (k) DO UPDATE "
		       "SET days = pos_blob_or(days, excluded.days)");
	assert_int_equal(count(f->db, "SELECT hex(days) = '05' FROM m"), 1);
}

struct racer {
	struct fx *f;
	pthread_barrier_t *go;
	long changed;
	int failed;
};

#define RACE_KEYS 100

static void *race(void *arg)
{
	struct racer *r = arg;
	struct db *db = NULL;
	struct db_stmt *st = NULL;
	pos_err e = { 0 };

	if (open_fx(r->f, false, &db, &e) < 0 ||
	    db_prepare(db, "INSERT INTO t (id, s) VALUES (?1, 'race') ON CONFLICT DO NOTHING",
		       DB_KEEP, &st, &e) < 0) {
		r->failed = 1;
		pthread_barrier_wait(r->go);
		db_close(db);
		return NULL;
	}
	pthread_barrier_wait(r->go);
	for (int i = 0; i < RACE_KEYS; i++) {
		db_clear(st);
		db_bind_int64(st, 1, i);
		if (db_run(st, &e) < 0) {
			r->failed++;
			continue;
		}
		r->changed += db_changes(st);
	}
	db_finalize(st);
	db_close(db);
	return NULL;
}

static void two_connections_racing_one_key_store_one_row(void **state)
{
	struct fx *f = fx_of(state);
	pthread_barrier_t go;
	struct racer r[2] = { { f, &go, 0, 0 }, { f, &go, 0, 0 } };
	pthread_t th[2];

	/* both insert the same ids: each id is won by one of them */
	run_sql(f->db, "DROP TABLE c");
	run_sql(f->db, "DROP TABLE t");
	run_sql(f->db, f->b == DB_SQLITE ? "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)"
					 : "CREATE TABLE t (id BIGINT PRIMARY KEY, s TEXT)");
	assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	assert_int_equal(r[0].failed + r[1].failed, 0);
	assert_int_equal(r[0].changed + r[1].changed, RACE_KEYS);
	assert_int_equal(count(f->db, "SELECT count(*) FROM t"), RACE_KEYS);
}

/* PostgreSQL only: a connection its server dropped is reset on the next
 * statement outside a transaction; inside one the statement fails. */
static void broken_connection_is_reset_once(void **state)
{
	struct fx *f = fx_of(state);
	struct db *other = NULL;
	struct db_stmt *st;
	pos_err e = { 0 };
	int64_t pid;

	assert_int_equal(db_open_pg(f->dsn, false, &other, &e), 0);
	assert_int_equal(db_prepare(f->db, "SELECT count(*) FROM t WHERE id >= ?1", DB_KEEP, &st, &e),
			 0);
	db_bind_int64(st, 1, 0);
	assert_int_equal(db_step(st, &e), DB_ROW);
	db_reset(st);

	pid = count(f->db, "SELECT pg_backend_pid()");
	{
		struct db_stmt *k;
		assert_int_equal(db_prepare(other, "SELECT pg_terminate_backend(?1::int)", 0, &k, &e),
				 0);
		db_bind_int64(k, 1, pid);
		assert_int_equal(db_step(k, &e), DB_ROW);
		assert_int_equal(db_col_int64(k, 0), 1);
		db_finalize(k);
	}
	/* the first statement finds the connection gone */
	assert_true(db_step(st, &e) < 0);
	/* the next resets it, and the kept statement is prepared again */
	assert_int_equal(db_step(st, &e), DB_ROW);
	assert_int_equal(db_col_int64(st, 0), 0);
	db_reset(st);

	/* inside a transaction: lost with the connection */
	assert_int_equal(db_begin(f->db, &e), 0);
	assert_int_equal(put(f->db, 1, "z", &e), 0);
	pid = count(f->db, "SELECT pg_backend_pid()");
	{
		struct db_stmt *k;
		assert_int_equal(db_prepare(other, "SELECT pg_terminate_backend(?1::int)", 0, &k, &e),
				 0);
		db_bind_int64(k, 1, pid);
		assert_int_equal(db_step(k, &e), DB_ROW);
		db_finalize(k);
	}
	assert_true(put(f->db, 2, "y", &e) < 0);
	assert_true(put(f->db, 3, "x", &e) < 0); /* still inside, as far as we know */
	assert_false(db_in_txn(f->db));
	assert_true(db_commit(f->db, &e) < 0);
	assert_int_equal(put(f->db, 4, "w", &e), 0);
	assert_int_equal(count(f->db, "SELECT count(*) FROM t"), 1);
	db_finalize(st);
	db_close(other);
}

/* PostgreSQL only: the time limits are the DSN's; a DSN libpq cannot
 * take, or none, is refused with a message. */
static void dsn_sets_limits_and_bad_ones_are_refused(void **state)
{
	struct fx *f = fx_of(state);
	struct db *db = NULL;
	struct db_stmt *st;
	pos_err e = { 0 };
	char dsn[700];

	snprintf(dsn, sizeof(dsn), "%s options='-c statement_timeout=100' connect_timeout=5",
		 f->dsn);
	assert_int_equal(db_open_pg(dsn, false, &db, &e), 0);
	assert_int_equal(db_prepare(db, "SELECT pg_sleep(?1)", 0, &st, &e), 0);
	db_bind_int64(st, 1, 30);
	assert_int_equal(db_step(st, &e), POS_EDB);
	assert_non_null(strstr(e.msg, "statement timeout"));
	db_finalize(st);
	/* the connection serves on after the timeout */
	assert_int_equal(count(db, "SELECT 3"), 3);
	db_close(db);

	assert_int_equal(db_open_pg("", false, &db, &e), POS_EINVAL);
	assert_null(db);
	assert_int_equal(db_open_pg("no_such_keyword=1", false, &db, &e), POS_EDB);
	assert_null(db);
	assert_non_null(strstr(e.msg, "no_such_keyword"));
}

#define ON(fn, be) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)&be)

int main(void)
{
	const struct CMUnitTest on_sqlite[] = {
		ON(values_round_trip_unchanged, be_sqlite),
		ON(errors_map_to_codes_without_bound_values, be_sqlite),
		ON(parameters_are_found_outside_quotes_and_comments, be_sqlite),
		ON(transactions_commit_roll_back_and_nest, be_sqlite),
		ON(each_stops_on_a_non_zero_and_returns_it, be_sqlite),
		ON(statements_nest_on_one_connection, be_sqlite),
		ON(keep_statements_are_reused_and_count_changes, be_sqlite),
		ON(readonly_connection_refuses_writes, be_sqlite),
		ON(two_connections_racing_one_key_store_one_row, be_sqlite),
		ON(sqlite_keeps_temporary_data_in_memory, be_sqlite),
		ON(sqlite_ors_blobs, be_sqlite),
	};
	const struct CMUnitTest on_pg[] = {
		ON(values_round_trip_unchanged, be_pg),
		ON(errors_map_to_codes_without_bound_values, be_pg),
		ON(parameters_are_found_outside_quotes_and_comments, be_pg),
		ON(transactions_commit_roll_back_and_nest, be_pg),
		ON(each_stops_on_a_non_zero_and_returns_it, be_pg),
		ON(statements_nest_on_one_connection, be_pg),
		ON(keep_statements_are_reused_and_count_changes, be_pg),
		ON(readonly_connection_refuses_writes, be_pg),
		ON(two_connections_racing_one_key_store_one_row, be_pg),
		ON(broken_connection_is_reset_once, be_pg),
		ON(dsn_sets_limits_and_bad_ones_are_refused, be_pg),
	};
	int rc = cmocka_run_group_tests_name("db on SQLite", on_sqlite, NULL, NULL);

	if (!pgfx_base()) {
		/* Said aloud: make test sets it whenever PostgreSQL is installed. */
		printf("# SKIP db on PostgreSQL: POS_TEST_PG_DSN is not set "
		       "(tests/pg/pgctl start prints one)\n");
		return rc;
	}
	return rc + cmocka_run_group_tests_name("db on PostgreSQL", on_pg, NULL, NULL);
}
