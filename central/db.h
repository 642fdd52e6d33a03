#ifndef POS_DB_H
#define POS_DB_H
/*
 * The SQL connection under the store: one small interface over SQLite
 * (db_sqlite.c) and PostgreSQL (db_pg.c), so each store file is written
 * once and the two backends stay thin and equal.
 *
 * SQL text: numbered parameters ?1 .. ?N (rewritten to $1 .. $N for
 * PostgreSQL) and the dialect both accept: ON CONFLICT .. DO NOTHING /
 * DO UPDATE, RETURNING, standard types. Where the two differ (schema,
 * date functions), the store picks the text by db_backend().
 *
 * Values: integers, text, blobs and NULL. Columns are read by index; a
 * column's text or blob lives until the next db_step or db_reset of its
 * statement. A struct db is one connection: use it from one thread at a
 * time. Bound values never appear in an error message.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum db_backend { DB_SQLITE = 1, DB_POSTGRESQL };

#define DB_DONE 0 /* db_step: no (more) rows */
#define DB_ROW 1  /* db_step: a row is ready */

/* db_prepare flags */
#define DB_KEEP 1u /* run many times: prepared once on the server side */

struct db;
struct db_stmt;

/* Opens the SQLite database at path (which must exist: dbfile_prepare) in
 * WAL mode with synchronous=FULL. readonly: a connection that can never
 * write (query_only). *out: db_close. */
int db_open_sqlite(const char *path, bool readonly, struct db **out, pos_err *e);
/* Opens a PostgreSQL connection from a libpq connection string. readonly:
 * every transaction read-only. *out: db_close. */
int db_open_pg(const char *dsn, bool readonly, struct db **out, pos_err *e);
/* Rolls back an open transaction, frees every statement left. NULL ok. */
void db_close(struct db *db);
enum db_backend db_backend(const struct db *db);
bool db_readonly(const struct db *db);

/* Runs SQL without parameters (one or more statements, no rows). */
int db_exec(struct db *db, const char *sql, pos_err *e);

/* *out: db_finalize. flags: DB_KEEP or 0. */
int db_prepare(struct db *db, const char *sql, unsigned flags, struct db_stmt **out,
	       pos_err *e);
/* Ends the statement's run; bindings stay. NULL ok. */
void db_reset(struct db_stmt *st);
/* Ends the run and clears the bindings. NULL ok. */
void db_clear(struct db_stmt *st);
void db_finalize(struct db_stmt *st);

/* Parameters are numbered from 1. Text and blobs are not copied: the
 * caller's buffer must stay unchanged until the run ends (db_step returned
 * DB_DONE or an error, or db_reset). A failed bind (no memory, an index out
 * of range) is reported by the next db_step. */
void db_bind_int64(struct db_stmt *st, int i, int64_t v);
/* NULL binds SQL NULL. */
void db_bind_text(struct db_stmt *st, int i, const char *v);
/* NULL or "" binds SQL NULL (optional text columns). */
void db_bind_opt_text(struct db_stmt *st, int i, const char *v);
void db_bind_textn(struct db_stmt *st, int i, const char *v, size_t n);
void db_bind_blob(struct db_stmt *st, int i, const void *v, size_t n);
void db_bind_double(struct db_stmt *st, int i, double v);
void db_bind_null(struct db_stmt *st, int i);

/* DB_ROW, DB_DONE, or: POS_EAGAIN (busy, locked, a serialization failure or
 * deadlock: retry the whole unit), POS_ECONFLICT (a unique or primary key
 * taken), POS_ENOTFOUND (a foreign key names no row), POS_EDB. After an
 * error the run is reset. */
int db_step(struct db_stmt *st, pos_err *e);
/* Steps a statement that returns no rows to its end, then resets it. */
int db_run(struct db_stmt *st, pos_err *e);
/* Steps every row, calling fn on each; resets the statement at the end.
 * fn returning non-zero stops the walk and is returned. */
int db_each(struct db_stmt *st, int (*fn)(struct db_stmt *st, void *arg), void *arg,
	    pos_err *e);
/* Rows the last finished run of st inserted, changed or deleted. */
long db_changes(struct db_stmt *st);

int db_col_count(struct db_stmt *st);
bool db_col_null(struct db_stmt *st, int i);
int64_t db_col_int64(struct db_stmt *st, int i); /* 0 for NULL; true is 1 */
double db_col_double(struct db_stmt *st, int i);
/* NULL for SQL NULL. */
const char *db_col_text(struct db_stmt *st, int i);
/* Copies column i into out (cut to cap - 1 bytes; "" for NULL). */
void db_col_copy(struct db_stmt *st, int i, char *out, size_t cap);
/* *n its length; NULL for SQL NULL or an empty blob. */
const void *db_col_blob(struct db_stmt *st, int i, size_t *n);

/* Transactions. db_begin takes the write lock up front on SQLite (BEGIN
 * IMMEDIATE), so a unit never deadlocks upgrading a read. */
int db_begin(struct db *db, pos_err *e);
int db_commit(struct db *db, pos_err *e);
void db_rollback(struct db *db);
/* Whether a transaction is open and can still commit (SQLite ends one by
 * itself on some errors: a full disk, an I/O error, no memory; on
 * PostgreSQL any error spoils it until ROLLBACK). */
bool db_in_txn(struct db *db);

/* The backend's own handle, for what only one backend has (SQLite's
 * backup, checkpoints, quick_check; PostgreSQL's COPY). NULL when db is
 * of the other backend. Not for code above the store. */
void *db_sqlite_handle(struct db *db);
void *db_pg_handle(struct db *db);

#endif
