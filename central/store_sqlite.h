#ifndef POS_STORE_SQLITE_H
#define POS_STORE_SQLITE_H
/*
 * What the SQLite store's other files (store_public.c) share with
 * store_sqlite.c: the connection of a struct store and its write units
 * (BEGIN IMMEDIATE, or a savepoint inside a caller's transaction). Not for
 * code above the store.
 */
#include <sqlite3.h>

#include "err.h"
#include "store.h"

sqlite3 *store_sqlite_db(struct store *s);
int store_sqlite_unit_begin(struct store *s, pos_err *e);
/* Commits (rc == 0) or rolls back, returning the first error. */
int store_sqlite_unit_finish(struct store *s, int rc, pos_err *e);
/* POS_EAGAIN for busy or locked, else POS_EDB, with SQLite's message. */
int store_sqlite_err(struct store *s, int rc, const char *what, pos_err *e);
/* A one-off statement (*st: sqlite3_finalize), NULL and an error on failure. */
int store_sqlite_prepare(struct store *s, const char *sql, sqlite3_stmt **st, pos_err *e);
/* Column i as text into out (cut to cap - 1 bytes; "" for NULL). */
void store_sqlite_text(sqlite3_stmt *st, int i, char *out, size_t cap);

#endif
