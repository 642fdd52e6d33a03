#ifndef POS_DB_IMPL_H
#define POS_DB_IMPL_H
/*
 * What db.c shares with its two backends (db_sqlite.c, db_pg.c): the head
 * of every connection and statement, and the operations a backend
 * provides. db.c writes the rest (db_run, db_each, copies, optional text)
 * once, on top of these. Not for code above db.h.
 */
#include "db.h"

struct db_ops {
	int (*exec)(struct db *db, const char *sql, pos_err *e);
	int (*prepare)(struct db *db, const char *sql, unsigned flags, struct db_stmt **out,
		       pos_err *e);
	void (*reset)(struct db_stmt *st, bool clear);
	void (*finalize)(struct db_stmt *st);
	void (*bind_int64)(struct db_stmt *st, int i, int64_t v);
	void (*bind_text)(struct db_stmt *st, int i, const char *v, size_t n);
	void (*bind_blob)(struct db_stmt *st, int i, const void *v, size_t n);
	void (*bind_double)(struct db_stmt *st, int i, double v);
	void (*bind_null)(struct db_stmt *st, int i);
	int (*step)(struct db_stmt *st, pos_err *e);
	long (*changes)(struct db_stmt *st);
	int (*col_count)(struct db_stmt *st);
	bool (*col_null)(struct db_stmt *st, int i);
	int64_t (*col_int64)(struct db_stmt *st, int i);
	double (*col_double)(struct db_stmt *st, int i);
	const char *(*col_text)(struct db_stmt *st, int i, size_t *n);
	const void *(*col_blob)(struct db_stmt *st, int i, size_t *n);
	int (*begin)(struct db *db, pos_err *e);
	bool (*in_txn)(struct db *db);
	void (*close)(struct db *db);
};

/* The first member of each backend's connection. */
struct db {
	const struct db_ops *ops;
	enum db_backend backend;
	bool readonly;
};

/* The first member of each backend's statement. */
struct db_stmt {
	struct db *db;
	int bind_err; /* a failed bind, reported by the next step */
};

/* The error message's name for a statement: its first words. */
void db_sql_head(const char *sql, char *out, size_t cap);

#endif
