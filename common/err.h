#ifndef POS_ERR_H
#define POS_ERR_H
/*
 * Errors: every function that can fail returns 0 or one of the negative codes
 * below and, on failure, fills the caller-owned pos_err with one line saying
 * what was wrong. Messages never contain a TID, PAN, track or phone digits.
 */
#include <stddef.h>

enum {
	POS_OK = 0,
	POS_EINVAL = -1,    /* bad input: syntax, range, check digit */
	POS_EIO = -2,       /* file, socket or device I/O */
	POS_ENOMEM = -3,
	POS_ECRYPTO = -4,   /* crypto failure, including a failed open */
	POS_ENOTFOUND = -5,
	POS_ECONFLICT = -6, /* same key, other content */
	POS_EPERM = -7,     /* permissions: key file readable by others, wrong role */
	POS_ETOOBIG = -8,   /* over a fixed limit */
	POS_EDB = -9,       /* database error */
	POS_EAGAIN = -10,   /* try again later (busy, timeout) */
};

typedef struct pos_err {
	int code;
	char msg[256];
} pos_err;

/* Sets e (if not NULL) and returns code, so callers can `return err_set(...)`. */
int err_set(pos_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefixes the existing message with "prefix: " (for adding file names). */
int err_prefix(pos_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(pos_err *e);
/* Name of a code, e.g. "invalid" for POS_EINVAL. */
const char *err_name(int code);

#endif
