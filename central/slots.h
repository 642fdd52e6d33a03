#ifndef POS_SLOTS_H
#define POS_SLOTS_H
/*
 * central's connection budget, one for the whole server and shared by
 * every worker's httpd (thread-safe: atomics for the totals, a mutex for
 * the per-address table), so a full worker never strands a lane while
 * another has room.
 *
 * A connection is in one of three kinds:
 *   SLOTS_HANDSHAKE  accepted, TLS handshake not finished;
 *   SLOTS_ANONYMOUS  handshake done without a client certificate;
 *   SLOTS_TERMINAL   handshake done with a verified client certificate.
 *
 * Rules:
 *   - all kinds together: at most max;
 *   - anonymous ones: at most max - reserved, so `reserved` slots are only
 *     ever used by terminals (or by handshakes, which httpd may evict);
 *   - handshakes and anonymous ones from one address: at most per_address
 *     (IPv4 by address, IPv6 by /64). A terminal's own connection leaves
 *     its address's count once its certificate verified, so the lanes of
 *     a store behind one NAT are not capped by it.
 * Pure bookkeeping: no I/O, no logging; httpd acts on the verdicts.
 */
#include <stdbool.h>
#include <sys/socket.h>

#include "err.h"

struct slots;

enum slots_kind { SLOTS_HANDSHAKE, SLOTS_ANONYMOUS, SLOTS_TERMINAL };

enum slots_verdict {
	SLOTS_OK,
	SLOTS_FULL,        /* every slot is taken */
	SLOTS_PER_ADDRESS, /* that address holds per_address already */
};

/* The key of a peer address: IPv4 (mapped or not) whole, IPv6 its /64,
 * anything else (a unix socket) one shared key. */
struct slots_addr {
	unsigned char b[16];
};

struct slots_opts {
	long max;         /* >= 1 */
	long reserved;    /* 0..max-1: only for terminals */
	long per_address; /* >= 1 */
};

/* *out: slots_free. POS_EINVAL for bounds out of range. */
int slots_new(const struct slots_opts *o, struct slots **out, pos_err *e);
void slots_free(struct slots *s);

void slots_addr_of(struct slots_addr *k, const struct sockaddr *sa, socklen_t len);

/* A new connection from k takes a slot as SLOTS_HANDSHAKE, or is refused
 * and takes nothing. */
enum slots_verdict slots_take(struct slots *s, const struct slots_addr *k);

/* Its handshake ended. A terminal leaves its address's count. An
 * anonymous connection past max - reserved gets false and stays a
 * SLOTS_HANDSHAKE for slots_release: the caller refuses it. */
bool slots_established(struct slots *s, const struct slots_addr *k, bool terminal);

/* Gives back the slot of a connection of that kind. */
void slots_release(struct slots *s, const struct slots_addr *k, enum slots_kind kind);

/* Slots held now, all kinds together, and anonymous ones. */
long slots_open(const struct slots *s);
long slots_anonymous(const struct slots *s);
/* Handshakes and anonymous connections from k's address. */
long slots_of_address(struct slots *s, const struct slots_addr *k);

#endif
