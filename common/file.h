#ifndef POS_FILE_H
#define POS_FILE_H
/*
 * Reading a whole small file (a key, a certificate, a token, a CRL) into a
 * caller's buffer of fixed size: one implementation of the checks every
 * such read needs. The file must be a regular file; with FILE_PRIVATE its
 * mode is checked on the opened descriptor (the file checked is the file
 * read) and group or other access is refused with the chmod that fixes it.
 * Never used on a database file (see dbfile.h).
 */
#include <stddef.h>
#include <sys/stat.h>

#include "err.h"

enum {
	FILE_PRIVATE = 1,  /* refuse any group or other access */
	FILE_NOFOLLOW = 2, /* refuse a symbolic link */
};

/* Reads all of path into buf: at most cap bytes, more is POS_ETOOBIG.
 * *len gets the size; st (may be NULL) the file's status. A missing file
 * is POS_ENOTFOUND. On failure buf is wiped (it may hold a key). */
int file_read(const char *path, int flags, void *buf, size_t cap, size_t *len,
	      struct stat *st, pos_err *e);

#endif
