#ifndef POS_VERSION_H
#define POS_VERSION_H
/*
 * The product's version and the source revision it was built from, for
 * every binary's --version. The Makefile passes both to version.c alone
 * (-DPOS_VERSION, -DPOS_GIT_REV), so a new revision rebuilds one object.
 */
#include <stdio.h>

/* "1.0"; static storage. */
const char *version_number(void);
/* `git describe --always --dirty` at build time, or "unknown" outside a
 * git checkout; static storage. */
const char *version_revision(void);
/* Writes "PROG VERSION (REVISION)\n" to f. */
void version_print(FILE *f, const char *prog);

#endif
