#ifndef POS_TID_H
#define POS_TID_H
/*
 * Customer identifiers (design section 2), normalised:
 *   card:<PAN>        12..19 digits, Luhn-valid
 *   loyalty:<digits>  4..32 digits
 *   phone:+<E.164>    '+' then 8..15 digits, first digit not 0
 * Input may carry spaces, dashes, dots and (for phones) parentheses between
 * digits; they are dropped. Errors say what is wrong ("card number fails
 * the Luhn check") and never echo the digits. Callers wipe TID buffers.
 */
#include <stdbool.h>
#include <stddef.h>
#include "err.h"

#define TID_MAX 48

enum tid_kind { TID_CARD = 1, TID_LOYALTY, TID_PHONE };

int tid_normalize(const char *in, char out[TID_MAX], enum tid_kind *kind, pos_err *e);
/* Builds card:<pan> from bare PAN digits (as read from a magstripe). */
int tid_from_pan(const char *pan, char out[TID_MAX], pos_err *e);
/* Builds loyalty:<digits> from a scanned code. */
int tid_from_loyalty(const char *digits, char out[TID_MAX], pos_err *e);
/* Luhn over n ASCII digits; false on any non-digit. */
bool tid_luhn_valid(const char *digits, size_t n);

#endif
