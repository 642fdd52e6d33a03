#ifndef POS_STORE_FIXTURE_H
#define POS_STORE_FIXTURE_H
/*
 * A fresh central store in its own mkdtemp() folder for each cmocka test:
 * setup opens it, teardown closes it and removes the database, its WAL and
 * shared-memory files and the folder. Included by one test file each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store.h"

struct fx {
	char dir[64];
	char db[128];
	struct store *s;
};

static int setup(void **st)
{
	struct fx *f = calloc(1, sizeof(*f));
	pos_err e = { 0 };

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/central.db", f->dir);
	assert_int_equal(store_open(f->db, &f->s, &e), 0);
	*st = f;
	return 0;
}

static int teardown(void **st)
{
	struct fx *f = *st;
	char p[192];

	store_close(f->s);
	unlink(f->db);
	snprintf(p, sizeof(p), "%s-wal", f->db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->db);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

#endif
