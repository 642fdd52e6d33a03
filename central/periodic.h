#ifndef POS_PERIODIC_H
#define POS_PERIODIC_H
/*
 * A background loop on a thread of its own: runs fn(arg) first_ms after
 * the start, then every_ms after the end of each run. A run that returns
 * > 0 says more is left: fn runs again at once (unless stopping). A wake
 * runs it early; one that comes while fn is running is kept, so fn runs
 * once more after it (nothing queued just after fn looked is left for the
 * next period). Waits are on the monotonic clock: a wall clock stepped
 * back or forward neither stalls nor hurries it.
 *
 * fn runs only on that thread, never two at once; whatever it touches
 * beside arg is the caller's to guard.
 */
#include "err.h"

struct periodic;

/* One unit of the loop's work: > 0 when more is left, else 0 (an error is
 * fn's to log; the loop waits its period either way). */
typedef int (*periodic_fn)(void *arg);

/* Starts the thread. first_ms >= 0 (0: the first run at once),
 * every_ms >= 1; arg is borrowed and outlives it.
 * *out: periodic_stop. POS_EINVAL for bounds out of range. */
int periodic_start(long first_ms, long every_ms, periodic_fn fn, void *arg,
		   struct periodic **out, pos_err *e);
/* Runs fn at once (after the run under way, if any). Thread-safe; NULL ok. */
void periodic_wake(struct periodic *p);
/* Waits for the run under way to end, joins the thread, frees. fn does not
 * run after it returns. NULL ok. */
void periodic_stop(struct periodic *p);

#endif
