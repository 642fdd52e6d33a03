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

#endif
