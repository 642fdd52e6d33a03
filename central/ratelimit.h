#ifndef POS_RATELIMIT_H
#define POS_RATELIMIT_H
/*
 * Per-address token buckets for the routes anyone may call (device
 * registration, the device-token routes). One table is shared by every
 * worker thread; its size is fixed when it is made, so no client, however
 * many addresses it has, can grow central's memory through it.
 *
 * The table is set-associative: an address hashes (with a per-process
 * random key) to one set of RATELIMIT_WAYS entries, and each set has its
 * own lock, held for a few arithmetic operations. Two workers contend only
 * when two requests hash to the same set at the same instant.
 *
 * An entry whose bucket has refilled to its burst is idle: it says nothing
 * a fresh bucket would not, so it is reused at once. When a set has no
 * free or idle entry, the one touched longest ago is evicted (its address
 * starts over with a full bucket); evictions are counted, so an operator
 * sees when the table is too small for the traffic.
 *
 * Addresses: IPv4 by the whole address, IPv6 by its /64 (what one
 * subscriber usually holds). A v4-mapped IPv6 address counts as IPv4.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "err.h"

#define RATELIMIT_WAYS 8
#define RATELIMIT_CLASSES_MAX 8
#define RATELIMIT_KEY_LEN 16

/* One class of routes: per_minute tokens come back each minute, up to
 * burst. per_minute 0: the class is not limited. */
struct ratelimit_rule {
	long per_minute;
	long burst;
};

struct ratelimit;

/* A table of about entries buckets (rounded up to a power of two, at least
 * RATELIMIT_WAYS), for nrules classes (rules is copied).
 * *out: ratelimit_free. */
int ratelimit_new(size_t entries, const struct ratelimit_rule *rules, size_t nrules,
		  struct ratelimit **out, pos_err *e);
void ratelimit_free(struct ratelimit *rl);

/* The key of an address (IPv4, IPv6 /64); POS_EINVAL for another family. */
int ratelimit_key(const struct sockaddr *sa, socklen_t len,
		  unsigned char key[RATELIMIT_KEY_LEN]);

/* Takes one token of class cls for key at now_us (a monotonic clock).
 * 0: allowed. Else the request is refused and the value is the whole
 * seconds until a token is back (at least 1), for Retry-After. *evicted
 * (may be NULL) tells whether a live bucket of another key was dropped to
 * make room. */
long ratelimit_take(struct ratelimit *rl, unsigned cls, const unsigned char key[RATELIMIT_KEY_LEN],
		    int64_t now_us, bool *evicted);

/* Bytes the table holds: fixed at ratelimit_new. */
size_t ratelimit_bytes(const struct ratelimit *rl);
/* Entries holding a bucket now (idle ones included). */
size_t ratelimit_live(struct ratelimit *rl);
/* Entries the table has room for. */
size_t ratelimit_capacity(const struct ratelimit *rl);

#endif
