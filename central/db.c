#include "db_impl.h"

#include <string.h>

/*
 * The backend-independent half of db.h: dispatch to the connection's
 * backend, and the helpers written once over its operations.
 */

void db_sql_head(const char *sql, char *out, size_t cap)
{
	size_t n = 0;

	while (sql && *sql == ' ')
		sql++;
	while (sql && sql[n] && n + 1 < cap && n < 48)
		n++;
	if (cap) {
		memcpy(out, sql ? sql : "", n);
		out[n] = '\0';
	}
}

void db_close(struct db *db)
{
	if (db)
		db->ops->close(db);
}

enum db_backend db_backend(const struct db *db)
{
	return db->backend;
}

bool db_readonly(const struct db *db)
{
	return db->readonly;
}

int db_exec(struct db *db, const char *sql, pos_err *e)
{
	return db->ops->exec(db, sql, e);
}

int db_prepare(struct db *db, const char *sql, unsigned flags, struct db_stmt **out, pos_err *e)
{
	*out = NULL;
	return db->ops->prepare(db, sql, flags, out, e);
}

void db_reset(struct db_stmt *st)
{
	if (st)
		st->db->ops->reset(st, false);
}

void db_clear(struct db_stmt *st)
{
	if (st) {
		st->db->ops->reset(st, true);
		st->bind_err = 0;
	}
}

void db_finalize(struct db_stmt *st)
{
	if (st)
		st->db->ops->finalize(st);
}

void db_bind_int64(struct db_stmt *st, int i, int64_t v)
{
	st->db->ops->bind_int64(st, i, v);
}

void db_bind_text(struct db_stmt *st, int i, const char *v)
{
	if (v)
		st->db->ops->bind_text(st, i, v, strlen(v));
	else
		st->db->ops->bind_null(st, i);
}

void db_bind_opt_text(struct db_stmt *st, int i, const char *v)
{
	db_bind_text(st, i, v && v[0] ? v : NULL);
}

void db_bind_textn(struct db_stmt *st, int i, const char *v, size_t n)
{
	st->db->ops->bind_text(st, i, v, n);
}

void db_bind_blob(struct db_stmt *st, int i, const void *v, size_t n)
{
	st->db->ops->bind_blob(st, i, v, n);
}

void db_bind_double(struct db_stmt *st, int i, double v)
{
	st->db->ops->bind_double(st, i, v);
}

void db_bind_null(struct db_stmt *st, int i)
{
	st->db->ops->bind_null(st, i);
}

int db_step(struct db_stmt *st, pos_err *e)
{
	if (st->bind_err) {
		int rc = st->bind_err;
		st->bind_err = 0;
		st->db->ops->reset(st, false);
		return err_set(e, rc, "database: a parameter could not be bound");
	}
	return st->db->ops->step(st, e);
}

int db_run(struct db_stmt *st, pos_err *e)
{
	int rc;

	while ((rc = db_step(st, e)) == DB_ROW)
		;
	if (rc == DB_DONE)
		db_reset(st);
	return rc;
}

int db_each(struct db_stmt *st, int (*fn)(struct db_stmt *st, void *arg), void *arg, pos_err *e)
{
	int rc;

	while ((rc = db_step(st, e)) == DB_ROW) {
		rc = fn(st, arg);
		if (rc != 0)
			break;
	}
	db_reset(st);
	return rc;
}

long db_changes(struct db_stmt *st)
{
	return st->db->ops->changes(st);
}

int db_col_count(struct db_stmt *st)
{
	return st->db->ops->col_count(st);
}

bool db_col_null(struct db_stmt *st, int i)
{
	return st->db->ops->col_null(st, i);
}

int64_t db_col_int64(struct db_stmt *st, int i)
{
	return st->db->ops->col_int64(st, i);
}

double db_col_double(struct db_stmt *st, int i)
{
	return st->db->ops->col_double(st, i);
}

const char *db_col_text(struct db_stmt *st, int i)
{
	size_t n;
	return st->db->ops->col_text(st, i, &n);
}

void db_col_copy(struct db_stmt *st, int i, char *out, size_t cap)
{
	size_t n = 0;
	const char *v = st->db->ops->col_text(st, i, &n);

	if (!v)
		n = 0;
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(out, v, n);
	out[n] = '\0';
}

const void *db_col_blob(struct db_stmt *st, int i, size_t *n)
{
	return st->db->ops->col_blob(st, i, n);
}

int db_begin(struct db *db, pos_err *e)
{
	return db->ops->begin(db, e);
}

int db_commit(struct db *db, pos_err *e)
{
	int rc;

	/* A transaction an error ended (or spoiled, on PostgreSQL) must not
	 * look committed: its earlier writes are gone. */
	if (!db->ops->in_txn(db)) {
		db_rollback(db);
		return err_set(e, POS_EDB, "database: the transaction was ended by an error");
	}
	rc = db_exec(db, "COMMIT", e);

	if (rc < 0)
		db_rollback(db);
	return rc;
}

void db_rollback(struct db *db)
{
	/* Unconditional: a spoiled PostgreSQL transaction still needs it, and
	 * a ROLLBACK with none open is a harmless error. */
	db_exec(db, "ROLLBACK", NULL);
}

bool db_in_txn(struct db *db)
{
	return db->ops->in_txn(db);
}
