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
/* True for a well-formed UUIDv7: version 7 and the RFC 9562 variant (10),
 * either case. The nil UUID (version 0) is not one. */
bool uuid_v7_valid(const char *s);
/* 0 for a UUIDv7, else POS_EINVAL and e says which rule field's value
 * broke (not a UUID, the nil UUID, another version), never quoting it. */
int uuid_v7_check(const char *s, const char *field, pos_err *e);

#endif
