#include "store_schema.h"

/*
 * PostgreSQL's migrations (the same versions as store_schema_sqlite). Being
 * written: an empty list, so a PostgreSQL store is refused at open.
 */

const char *const *store_schema_pg(size_t *n)
{
	*n = 0;
	return NULL;
}
