#include "store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbfile.h"
#include "store_impl.h"
#include "store_schema.h"

/*
 * The store's connection: open, versioned migrations, transactions and
 * write units, and the statement cache every store file goes through
 * (store_q). The table families live in store_household.c,
 * store_basket.c and store_offer.c; what only SQLite has in
 * store_sqlite.c.
 *
 * Every statement is prepared once per connection with bound parameters.
 * Writes run in a unit (a transaction, or a savepoint inside a caller's
 * transaction), so a failed call changes nothing.
 */

static const char SQL_VERSION_TABLE[] =
	"CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";
static const char SQL_VERSION_GET[] = "SELECT coalesce(max(version), 0) FROM schema_version";
static const char SQL_VERSION_ADD[] = "INSERT INTO schema_version(version) VALUES (?1)";
/* PostgreSQL: nodes starting together migrate one after the other; the
 * lock ends with the transaction. */
static const char SQL_MIGRATE_LOCK_PG[] =
	"SELECT pg_advisory_xact_lock(hashtext('pos-central migrations'))";

struct db *store_db(struct store *s)
{
	return s->conn;
}

enum db_backend store_backend(struct store *s)
{
	return db_backend(s->conn);
}

void store_set_offer_judge(struct store *s, store_offer_judge judge)
{
	if (s)
		s->judge = judge;
}

void store_months_forget(struct store *s)
{
	s->n_months = 0;
}

/* ---------------------------------------------------------------- statement cache */

static size_t store_q_slot(const struct store_cached *q, size_t cap, const char *sql)
{
	size_t h = ((uintptr_t)sql >> 4) * 0x9E3779B97F4A7C15ull;
	size_t i = h & (cap - 1);

	while (q[i].sql && q[i].sql != sql)
		i = (i + 1) & (cap - 1);
	return i;
}

/* Doubles the cache (a power of two, never more than half full). */
static int store_q_grow(struct store *s, pos_err *e)
{
	size_t cap = s->q_cap ? s->q_cap * 2 : 64;
	struct store_cached *q = calloc(cap, sizeof(*q));

	if (!q)
		return err_set(e, POS_ENOMEM, "store: out of memory");
	for (size_t i = 0; i < s->q_cap; i++)
		if (s->q[i].sql)
			q[store_q_slot(q, cap, s->q[i].sql)] = s->q[i];
	free(s->q);
	s->q = q;
	s->q_cap = cap;
	return 0;
}

struct db_stmt *store_q(struct store *s, const char *sql, pos_err *e)
{
	size_t i;

	if (s->q_cap) {
		i = store_q_slot(s->q, s->q_cap, sql);
		if (s->q[i].sql) {
			db_clear(s->q[i].st);
			return s->q[i].st;
		}
	}
	if ((s->q_n + 1) * 2 > s->q_cap && store_q_grow(s, e) < 0)
		return NULL;
	i = store_q_slot(s->q, s->q_cap, sql);
	if (db_prepare(s->conn, sql, DB_KEEP, &s->q[i].st, e) < 0)
		return NULL;
	s->q[i].sql = sql;
	s->q_n++;
	return s->q[i].st;
}

int store_row(struct db_stmt *st, pos_err *e)
{
	int rc = db_step(st, e);

	if (rc == DB_ROW)
		return 0;
	if (rc == DB_DONE) {
		db_reset(st);
		return POS_ENOTFOUND;
	}
	return rc;
}

void store_bind_ms(struct db_stmt *st, int i, int64_t ms)
{
	if (ms)
		db_bind_int64(st, i, ms);
	else
		db_bind_null(st, i);
}

const char *store_sql(struct store *s, const char *sqlite, const char *pg)
{
	return store_backend(s) == DB_POSTGRESQL ? pg : sqlite;
}

int store_items_room(struct store *s, size_t n, pos_err *e)
{
	size_t cap = s->items_cap ? s->items_cap : 32;
	struct store_item *p;

	if (n <= s->items_cap)
		return 0;
	if (n > STORE_ITEMS_MAX)
		return err_set(e, POS_ETOOBIG, "basket with over %d items", STORE_ITEMS_MAX);
	while (cap < n)
		cap *= 2;
	if (!(p = realloc(s->items, cap * sizeof(*p))))
		return err_set(e, POS_ENOMEM, "store: out of memory");
	s->items = p;
	s->items_cap = cap;
	return 0;
}

/* ---------------------------------------------------------------- write units */

int store_unit_begin(struct store *s, pos_err *e)
{
	char sql[32];

	if (!s->in_txn && !db_in_txn(s->conn))
		return db_begin(s->conn, e);
	snprintf(sql, sizeof(sql), "SAVEPOINT u%d", ++s->sp_depth);
	return db_exec(s->conn, sql, e);
}

static int unit_end(struct store *s, bool ok, pos_err *e)
{
	char sql[64];

	if (s->sp_depth == 0) {
		if (ok)
			return db_commit(s->conn, e);
		db_rollback(s->conn);
		return 0;
	}
	if (ok)
		snprintf(sql, sizeof(sql), "RELEASE u%d", s->sp_depth);
	else
		snprintf(sql, sizeof(sql), "ROLLBACK TO u%d; RELEASE u%d", s->sp_depth, s->sp_depth);
	s->sp_depth--;
	return db_exec(s->conn, sql, e);
}

int store_unit_finish(struct store *s, int rc, pos_err *e)
{
	if (rc < 0) {
		unit_end(s, false, NULL);
		return rc;
	}
	return unit_end(s, true, e);
}

/* ---------------------------------------------------------------- migrations */

static const char *const *store_schema(struct store *s, size_t *n)
{
	return store_backend(s) == DB_POSTGRESQL ? store_schema_pg(n) : store_schema_sqlite(n);
}

static int version_get(struct store *s, long *version, pos_err *e)
{
	struct db_stmt *st = store_q(s, SQL_VERSION_GET, e);
	int rc;

	if (!st)
		return POS_EDB;
	if ((rc = store_row(st, e)) < 0)
		return rc == POS_ENOTFOUND ? err_set(e, POS_EDB, "schema version: no row") : rc;
	*version = (long)db_col_int64(st, 0);
	db_reset(st);
	return 0;
}

/* A connection that never writes only checks: a schema it cannot read as
 * this program expects is refused, the writer migrates it. */
static int store_check_version(struct store *s, size_t want, pos_err *e)
{
	pos_err why = { 0 };
	long v = 0;
	int rc;

	if ((rc = version_get(s, &v, &why)) < 0)
		return err_set(e, rc, "no store schema to read (a read-write open creates it): %s",
			       why.msg);
	if (v < (long)want)
		return err_set(e, POS_EDB,
			       "database schema v%ld is older than this program's (v%zu): "
			       "a read-write open migrates it",
			       v, want);
	if (v > (long)want)
		return err_set(e, POS_EDB,
			       "database schema v%ld is newer than this program understands (v%zu)",
			       v, want);
	return 0;
}

static int store_migrate(struct store *s, pos_err *e)
{
	const char *const *mig;
	size_t n;
	long version = 0;
	struct db_stmt *st;
	int rc;

	mig = store_schema(s, &n);
	if (n == 0)
		return err_set(e, POS_EINVAL, "store: this build has no schema for the %s backend",
			       store_backend(s) == DB_POSTGRESQL ? "PostgreSQL" : "SQLite");
	if (db_readonly(s->conn))
		return store_check_version(s, n, e);
	if ((rc = db_begin(s->conn, e)) < 0)
		return rc;
	if (store_backend(s) == DB_POSTGRESQL) {
		if (!(st = store_q(s, SQL_MIGRATE_LOCK_PG, e))) {
			rc = POS_EDB;
			goto out;
		}
		if ((rc = db_run(st, e)) < 0)
			goto out;
	}
	if ((rc = db_exec(s->conn, SQL_VERSION_TABLE, e)) < 0 ||
	    (rc = version_get(s, &version, e)) < 0)
		goto out;
	if (version > (long)n) {
		rc = err_set(e, POS_EDB,
			     "database schema v%ld is newer than this program understands (v%zu)",
			     version, n);
		goto out;
	}
	for (size_t v = (size_t)version; v < n; v++) {
		if ((rc = db_exec(s->conn, mig[v], e)) < 0) {
			err_prefix(e, "migration to v%zu", v + 1);
			goto out;
		}
		if (!(st = store_q(s, SQL_VERSION_ADD, e))) {
			rc = POS_EDB;
			goto out;
		}
		db_bind_int64(st, 1, (int64_t)v + 1);
		if ((rc = db_run(st, e)) < 0)
			goto out;
	}
	rc = db_commit(s->conn, e);
out:
	if (rc < 0)
		db_rollback(s->conn);
	return rc;
}

/* ---------------------------------------------------------------- open, close */

static int store_connect(const struct store_where *w, struct store *s, pos_err *e)
{
	int rc;

	if (w->backend == STORE_POSTGRESQL) {
		if (!w->dsn || !w->dsn[0])
			return err_set(e, POS_EINVAL, "store: no PostgreSQL dsn");
		return db_open_pg(w->dsn, w->readonly, &s->conn, e);
	}
	if (!w->path || !w->path[0])
		return err_set(e, POS_EINVAL, "store: no database path");
	if (!w->readonly && (rc = dbfile_prepare(w->path, e)) < 0)
		return rc;
	return db_open_sqlite(w->path, w->readonly, &s->conn, e);
}

int store_open_at(const struct store_where *w, struct store **out, pos_err *e)
{
	struct store *s = NULL;
	int rc;

	if (!w || !out)
		return err_set(e, POS_EINVAL, "store: nowhere to open");
	*out = NULL;
	if (w->backend != STORE_SQLITE && w->backend != STORE_POSTGRESQL)
		return err_set(e, POS_EINVAL, "store: unknown backend %d", (int)w->backend);
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, POS_ENOMEM, "store: out of memory");
	rc = store_connect(w, s, e);
	if (rc == 0)
		rc = store_migrate(s, e);
	if (rc < 0) {
		err_prefix(e, "%s", w->backend == STORE_POSTGRESQL ? "postgresql" : w->path);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

int store_open(const char *path, struct store **out, pos_err *e)
{
	struct store_where w = { .backend = STORE_SQLITE, .path = path };

	return store_open_at(&w, out, e);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->q_cap; i++)
		db_finalize(s->q[i].st);
	free(s->q);
	db_close(s->conn);
	free(s->items);
	free(s->text);
	if (s->hc_free)
		s->hc_free(s);
	free(s);
}

/* ---------------------------------------------------------------- transactions */

int store_begin(struct store *s, pos_err *e)
{
	int rc;

	if (!s)
		return err_set(e, POS_EINVAL, "store: no connection");
	if (s->in_txn)
		return err_set(e, POS_EINVAL, "store: transaction already open");
	rc = db_begin(s->conn, e);
	if (rc == 0)
		s->in_txn = 1;
	return rc;
}

int store_commit(struct store *s, pos_err *e)
{
	int rc;

	if (!s || !s->in_txn)
		return err_set(e, POS_EINVAL, "store: no transaction open");
	rc = db_commit(s->conn, e);
	s->in_txn = 0;
	s->sp_depth = 0;
	if (rc < 0)
		store_months_forget(s);
	return rc;
}

void store_reads_begin(struct store *s)
{
	pos_err e = { 0 };

	if (!s || s->in_txn || store_backend(s) != DB_SQLITE || !db_readonly(s->conn))
		return;
	if (db_begin(s->conn, &e) == 0) {
		s->in_txn = 1;
		s->reads = true;
	}
}

void store_reads_end(struct store *s)
{
	pos_err e = { 0 };

	if (!s || !s->reads)
		return;
	s->reads = false;
	if (db_in_txn(s->conn) && db_commit(s->conn, &e) < 0)
		db_rollback(s->conn);
	s->in_txn = 0;
	s->sp_depth = 0;
}

bool store_in_txn(struct store *s)
{
	return s && s->in_txn && db_in_txn(s->conn);
}

void store_rollback(struct store *s)
{
	if (!s || !s->in_txn)
		return;
	db_rollback(s->conn);
	s->in_txn = 0;
	s->sp_depth = 0;
	store_months_forget(s);
}
