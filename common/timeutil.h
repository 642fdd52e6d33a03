#ifndef POS_TIMEUTIL_H
#define POS_TIMEUTIL_H
/* RFC 3339 times and clocks. */
#include <stdint.h>
#include "err.h"

#define TIME_RFC3339_LEN 32

/* Parses "2026-11-23T12:00:00Z", "...T12:00:00.123+01:00", also a plain date
 * "2026-11-23" (midnight UTC) when allow_date is set. Rejects out-of-range
 * fields and years outside 2000..2199. Result in Unix milliseconds. */
int time_parse_rfc3339(const char *s, int allow_date, int64_t *unix_ms, pos_err *e);
/* Formats UTC with milliseconds: "2026-11-23T12:00:00.123Z". */
void time_format_rfc3339(int64_t unix_ms, char out[TIME_RFC3339_LEN]);
int64_t time_now_ms(void);
/* Monotonic clock in microseconds. */
int64_t time_mono_us(void);

#endif
