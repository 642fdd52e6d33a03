#ifndef POS_KEYSPROC_H
#define POS_KEYSPROC_H
/*
 * The keys process (design section 10, OpenBSD relayd's ca process):
 * serve forks it before it starts a thread or binds a socket. Only the
 * child reads the HPKE private keys, k_index and k_deident; it has no
 * network socket and no database, closes every descriptor it does not
 * need, drops to the service user ([central] user) when started as root,
 * and answers one request: open(store, terminal, txn, kid, enc) -> (tid
 * index, DeIdentTID) or a refusal, wiping every TID it opened.
 *
 * Each worker thread has a channel of its own (a SOCK_SEQPACKET
 * socketpair, one message each way: a header and up to KEYS_BATCH_MAX
 * fixed-size opens or answers; a thread of the keys process on the other
 * end), so workers never wait on each other or lock. A worker's resolves
 * go through keys_async: the open is sent and the worker returns to its
 * loop; the answer is a read event there (no worker sleeps in recv while
 * its other connections wait). The synchronous calls below remain for the
 * rarer opens (a basket's EncTID, an SMS sender) and for threads without
 * a loop.
 *
 * keys_open is the one way to open an EncTID above this module: over a
 * channel to the keys process (serve), or with a keyring in the same
 * process (keys_chan_local: tests and fuzzers).
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cconf.h"
#include "deident.h"
#include "err.h"
#include "keyring.h"

/* One thread's way to the keys. Not shared between threads. */
struct keys_chan;

/* A channel that opens with kr in this process; kr is borrowed and must
 * outlive it. *out: keys_chan_free. */
int keys_chan_local(const struct keyring *kr, struct keys_chan **out, pos_err *e);
/* Frees a local channel; the keys process's channels belong to it (a
 * no-op for those). Accepts NULL. */
void keys_chan_free(struct keys_chan *kc);

/* keyring_open, wherever the keys are: same results and messages. When
 * the keys process does not answer (it ended), POS_EAGAIN. */
int keys_open(struct keys_chan *kc, const char *store, const char *terminal, const char *txn,
	      const char *kid, const char *enc, unsigned char idx[DEIDENT_INDEX_LEN],
	      char dtid[DEIDENT_ID_LEN + 1], pos_err *e);

/* Several opens in one round trip: a worker with several resolves ready in
 * one loop turn pays the wake-ups once. */
#define KEYS_BATCH_MAX 32

struct keys_open_req {
	const char *store, *terminal, *txn, *kid, *enc;
};

struct keys_open_res {
	int rc; /* what keys_open returns; on failure err holds its message */
	unsigned char idx[DEIDENT_INDEX_LEN];
	char dtid[DEIDENT_ID_LEN + 1];
	pos_err err;
};

/* Opens req[0..n-1], n <= KEYS_BATCH_MAX, into res[0..n-1] (each exactly
 * as keys_open would). 0 when all were answered; POS_EAGAIN (also in
 * every res) when the keys process does not answer. */
int keys_open_batch(struct keys_chan *kc, size_t n, const struct keys_open_req *req,
		    struct keys_open_res *res, pos_err *e);

/* The phone TID ("phone:+...") of an SMS sender sealed to central's HPKE
 * key for the visitor uid (visitor_seal_info), for the one send that
 * needs it: the caller wipes phone (TID_MAX bytes) after. Opens nothing
 * sealed under another info, and only a phone. */
int keys_open_phone(struct keys_chan *kc, const char *kid, const char *enc, const char *uid,
		    char phone[48], pos_err *e);

/* ---- opens driven by an event loop (a worker's) */

struct event_base;
struct keys_async;

/* Called once per open, from the loop, never from inside keys_async_open.
 * res (and the TID material in it) is wiped when it returns. */
typedef void keys_done_fn(void *arg, struct keys_open_res *res);

#define KEYS_INFLIGHT_DEFAULT 1

struct keys_async_opts {
	/* An open unanswered this long is refused with POS_EAGAIN ("the
	 * keys process does not answer"). 0: 5000. */
	int timeout_ms;
	/* Batches sent and not answered yet, 1..8. 0: KEYS_INFLIGHT_DEFAULT.
	 * With one, what arrives while a batch is open goes out together
	 * when its answer comes. */
	int inflight;
};

/* Opens on kc, answered through base's loop (the thread that runs base
 * only). kc is borrowed (one keys_async per channel) and must outlive it;
 * synchronous calls on kc stay allowed and hand over answers of these
 * they read. A local channel opens in this process, from the loop too.
 * *out: keys_async_free. */
int keys_async_new(struct event_base *base, struct keys_chan *kc, const struct keys_async_opts *o,
		   struct keys_async **out, pos_err *e);
/* Queues an open (its strings copied); what one loop turn queues goes to
 * the keys process in one message (KEYS_BATCH_MAX each). fn(arg, res)
 * follows exactly once: the answer, or a refusal when the keys process
 * does not answer in time or is gone. */
int keys_async_open(struct keys_async *ka, const struct keys_open_req *req, keys_done_fn *fn,
		    void *arg, pos_err *e);
/* The tid index (k_index) of a TID as typed (common/tid.h normalises it,
 * e.g. "phone:+15551234567"): the blind index that finds an enrolled
 * household without the worker ever holding k_index. The TID is copied,
 * wiped once sent, and its normalised form wiped in the keys process. The
 * index comes in res->idx of fn(arg, res), which follows exactly once; a
 * TID that is not valid: POS_EINVAL (the message never echoes it), else a
 * refusal as keys_async_open's. */
int keys_async_blind(struct keys_async *ka, const char *tid_in, keys_done_fn *fn, void *arg,
		     pos_err *e);
/* The keys_async made on kc (keys_async_new), NULL before. */
struct keys_async *keys_chan_async(struct keys_chan *kc);
/* Requests queued or sent, not answered yet. */
size_t keys_async_waiting(const struct keys_async *ka);
/* Frees ka; callbacks still due are not called. Accepts NULL. */
void keys_async_free(struct keys_async *ka);

/* Pins the calling thread to the (i mod n)-th of the n CPUs this process
 * may run on: worker i and the keys process's thread for channel i share
 * a core ([central] pin_threads), so a worker's request wakes a thread on
 * its own core, with the request still in that core's cache. POS_EINVAL
 * (nothing changed) with fewer than two CPUs or when refused. */
int keys_pin_thread(size_t i);

struct keysproc;

/* Forks the keys process with nchan channels and waits until it has loaded
 * the keys (a key it refuses fails here with its message). A synchronous
 * call waits c->keys_timeout_ms for its answer; with c->pin_threads the
 * thread of channel i runs on keys_pin_thread(i)'s core. Call with no
 * other thread running. *out: keysproc_stop. */
int keysproc_start(const struct cconf *c, size_t nchan, struct keysproc **out, pos_err *e);
/* Channel i < nchan, owned by kp. */
struct keys_chan *keysproc_chan(struct keysproc *kp, size_t i);
size_t keysproc_nchan(const struct keysproc *kp);
/* How many HPKE keys the keys process holds (current and retired). */
size_t keysproc_hpke_keys(const struct keysproc *kp);
pid_t keysproc_pid(const struct keysproc *kp);
/* false once the keys process has ended (it is reaped here); why then
 * says how ("exit 1", "signal 9"). */
bool keysproc_alive(struct keysproc *kp, char *why, size_t cap);
/* Closes every channel (the keys process ends when all are closed), waits
 * for it and frees kp. Accepts NULL. */
void keysproc_stop(struct keysproc *kp);

#endif
