#ifndef POS_STORE_IMPL_H
#define POS_STORE_IMPL_H
/*
 * What the store's files share (store.c, store_*.c): the connection under
 * a struct store, its statement cache and its write units. Not for code
 * above the store.
 */
#include "db.h"
#include "err.h"
#include "store.h"

struct db *store_db(struct store *s);
enum db_backend store_backend(struct store *s);

/* The statement for sql, prepared once per connection (DB_KEEP) and kept
 * until store_close; returned with its bindings cleared. sql must be a
 * string with static storage: its address is the cache key. NULL and e on
 * failure. Owned by the store: never finalize it. */
struct db_stmt *store_q(struct store *s, const char *sql, pos_err *e);

/* A write unit: a transaction when none is open (taking the write lock up
 * front), else a savepoint, so a failed call inside a caller's
 * transaction undoes only itself. store_unit_finish commits (rc >= 0) or
 * rolls back, and returns the first error (or rc). */
int store_unit_begin(struct store *s, pos_err *e);
int store_unit_finish(struct store *s, int rc, pos_err *e);

#endif
