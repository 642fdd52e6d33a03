#ifndef POS_PG_FIXTURE_H
#define POS_PG_FIXTURE_H
/*
 * PostgreSQL for unit tests: POS_TEST_PG_DSN names the pos_test database of
 * the throwaway cluster `make test` starts (tests/pg/pgctl start prints it
 * when run by hand). Each test makes a fresh database beside it, named
 * after its suite (two suites running at once must not share a name).
 * Include after cmocka.h. A suite without the variable runs its SQLite half
 * and prints one "# SKIP" line for the rest, never silently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "db.h"

/* The base DSN, or NULL when no test cluster was given. */
static inline const char *pgfx_base(void)
{
	const char *base = getenv("POS_TEST_PG_DSN");

	return base && base[0] ? base : NULL;
}

/* Drops and makes database name ([a-z_][a-z0-9_]*) on the test cluster and
 * writes its DSN into out: 0, 1 when there is no cluster, or -1 with why
 * set when it cannot be reached (usable outside a test, to decide whether
 * a suite's PostgreSQL group runs). */
static inline int pgfx_try_fresh(const char *name, char *out, size_t cap, char *why,
				 size_t why_cap)
{
	const char *base = pgfx_base();
	struct db *db = NULL;
	pos_err e = { 0 };
	char sql[160];
	int rc = 0;

	if (!base)
		return 1;
	if (db_open_pg(base, false, &db, &e) < 0) {
		snprintf(why, why_cap, "cannot reach the test server (%s): %s", base, e.msg);
		return -1;
	}
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	if ((rc = db_exec(db, sql, &e)) == 0) {
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
		rc = db_exec(db, sql, &e);
	}
	if (rc < 0)
		snprintf(why, why_cap, "%s: %s", sql, e.msg);
	db_close(db);
	if (rc < 0)
		return -1;
	/* A later keyword wins in a libpq connection string. */
	snprintf(out, cap, "%s dbname=%s", base, name);
	return 0;
}

/* pgfx_try_fresh inside a test: a cluster that cannot be reached fails it. */
static inline int pgfx_fresh(const char *name, char *out, size_t cap)
{
	char why[512];
	int rc = pgfx_try_fresh(name, out, cap, why, sizeof(why));

	if (rc < 0)
		fail_msg("%s", why);
	return rc;
}

/* One integer value of a query on connection t; -1 when it has no row. */
static inline int64_t pgfx_value(struct db *t, const char *sql)
{
	struct db_stmt *q = NULL;
	int64_t v = -1;
	pos_err e = { 0 };

	assert_int_equal(db_prepare(t, sql, 0, &q, &e), 0);
	if (db_step(q, &e) == DB_ROW)
		v = db_col_int64(q, 0);
	db_finalize(q);
	return v;
}

/* ANALYZE of the month partitions of baskets and items, not of the
 * partitioned parents (autovacuum never analyzes a parent): the
 * statistics a live database has. */
static inline void pgfx_analyze_leaves(struct db *t)
{
	static const char sql[] =
		"DO $$DECLARE r record; BEGIN FOR r IN SELECT c.relname FROM pg_inherits i "
		"JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
		"WHERE p.relname IN ('baskets', 'items') LOOP EXECUTE format('ANALYZE %I', "
		"r.relname); END LOOP; END$$";
	pos_err e = { 0 };

	assert_int_equal(db_exec(t, sql, &e), 0);
}

/* Waits until t is its database's only client, at most 30 s. A backend's
 * counters reach the shared statistics in its first exit hook, before it
 * leaves pg_stat_activity, so once the others are gone the statistics
 * hold everything they did (a closed connection's backend exits after the
 * client has moved on). */
static inline void pgfx_others_gone(struct db *t)
{
	static const char sql[] =
		"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
		"AND pid <> pg_backend_pid() AND backend_type = 'client backend'";

	for (int i = 0; i < 600 && pgfx_value(t, sql) != 0; i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	assert_int_equal(pgfx_value(t, sql), 0);
}

/* What a statement must and must not touch, by two counts of the shared
 * statistics (pg_stat_user_tables): pgfx_watch_begin reads both (the
 * connections that ran before are closed and gone: pgfx_others_gone);
 * pgfx_watch_end, once the measured connection is closed, waits for its
 * counters and checks that grows rose and still did not move. */
struct pgfx_watch {
	const char *grows, *still;
	int64_t g0, s0;
};

static inline void pgfx_watch_begin(struct db *t, struct pgfx_watch *w, const char *grows,
				    const char *still)
{
	w->grows = grows;
	w->still = still;
	w->g0 = pgfx_value(t, grows);
	w->s0 = pgfx_value(t, still);
}

static inline void pgfx_watch_end(struct db *t, const struct pgfx_watch *w)
{
	pgfx_others_gone(t);
	assert_true(pgfx_value(t, w->grows) > w->g0);
	assert_int_equal(pgfx_value(t, w->still), w->s0);
}

#endif
