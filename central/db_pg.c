#include "db_impl.h"

/*
 * PostgreSQL behind db.h (libpq). Being written: until then a connection
 * string is refused with a clear error.
 */

int db_open_pg(const char *dsn, bool readonly, struct db **out, pos_err *e)
{
	(void)dsn;
	(void)readonly;
	*out = NULL;
	return err_set(e, POS_EINVAL, "database: this build has no PostgreSQL backend");
}

void *db_pg_handle(struct db *db)
{
	(void)db;
	return NULL;
}
