#ifndef POS_UUID_H
#define POS_UUID_H
/* UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, random rest. */
#include <stdbool.h>
#include "err.h"

#define UUID_STR_LEN 36

/* Writes lowercase text "xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx" and a NUL.
 * Successive calls in one process are strictly increasing. */
int uuid_v7(char out[UUID_STR_LEN + 1], pos_err *e);
/* True for any well-formed UUID text of 36 chars (any version, either case). */
bool uuid_valid(const char *s);

#endif
