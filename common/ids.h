#ifndef POS_IDS_H
#define POS_IDS_H
/*
 * Store and terminal ids (design section 2): [A-Za-z0-9._-]{1,64}. They
 * come from certificates, configuration and command lines and go into
 * EncTID info strings, file names and log lines, so one rule holds them all:
 * no separator ('|', '/', '=', space) can ever appear in one.
 */
#include <stdbool.h>
#include <stddef.h>

#define IDS_MAX 64
#define IDS_RULE "[A-Za-z0-9._-]{1,64}"

/* s (NUL-terminated) is an id. NULL is not. */
bool ids_valid(const char *s);
/* The n bytes at p are an id (an ASN.1 string, not NUL-terminated). */
bool ids_valid_n(const unsigned char *p, size_t n);

#endif
