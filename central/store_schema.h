#ifndef POS_STORE_SCHEMA_H
#define POS_STORE_SCHEMA_H
/*
 * The store's schema as versioned migrations, one list per backend: entry
 * i brings a database from version i to i + 1. Released entries are never
 * edited; new ones are appended to both lists with the same number. Not
 * for code above the store.
 */
#include <stddef.h>

const char *const *store_schema_sqlite(size_t *n);
const char *const *store_schema_pg(size_t *n);

#endif
