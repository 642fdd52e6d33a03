#ifndef POS_WWW_H
#define POS_WWW_H
/*
 * Static pages from the www folder, for the public listener and the
 * analysts' workbench: where the folder is, and reading one file of it
 * safely (a plain name with a known extension, a regular file directly in
 * the folder, never a symbolic link, at most WWW_FILE_MAX bytes).
 */
#include <stddef.h>

#include "cconf.h"
#include "err.h"

#define WWW_FILE_MAX (1024 * 1024) /* bytes of one page or asset */
#define WWW_NAME_MAX 64            /* characters of a file's name */

/* Opens the www folder ([central] www; empty: share/pos/www beside the
 * binary's folder, else the source tree's www when run from build/bin).
 * *fd: an O_PATH descriptor the caller closes; path names it for logs. */
int www_open(const struct cconf *c, char *path, size_t cap, int *fd, pos_err *e);

/* The content type of a file name: [A-Za-z0-9_-] then one known
 * extension. Anything else (a slash, "..", a hidden file) is NULL. */
const char *www_ctype(const char *name);

/* Reads dir_fd/name. *buf: the caller frees; *ctype: static. POS_ENOTFOUND
 * for a name www_ctype refuses, a missing, special or too big file. */
int www_read(int dir_fd, const char *name, char **buf, size_t *len, const char **ctype);

#endif
