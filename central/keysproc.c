#include "keysproc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "envelope.h"
#include "keys.h"
#include "log.h"
#include "tid.h"
#include "timeutil.h"
#include "visitor.h"
#include "wipe.h"

/* store, terminal and txn: anything longer cannot form the EncTID info. */
#define KEYS_FIELD ENVELOPE_INFO_MAX
#define KEYS_MSG_MAX sizeof(((pos_err *)0)->msg)

/* One open inside a request. Strings are NUL-terminated inside their
 * fields; the keys process refuses a message where one is not. */
struct keys_req {
	char store[KEYS_FIELD];
	char terminal[KEYS_FIELD];
	char txn[KEYS_FIELD];
	char kid[KEYS_KID_LEN + 1];
	char enc[ENVELOPE_B64_MAX];
};

/* One answer: rc, then the hashes (rc 0) or the message. */
struct keys_rep {
	int32_t rc;
	unsigned char idx[DEIDENT_INDEX_LEN];
	char dtid[DEIDENT_ID_LEN + 1];
	char msg[KEYS_MSG_MAX];
};

/* A message either way: this header and n requests or n answers, n in
 * 1..KEYS_BATCH_MAX. The first message on channel 0 says the process is
 * ready: n = 0, rc in the header, seq = its HPKE keys, msg on failure. */
struct keys_hdr {
	uint32_t seq;
	uint32_t n;
	uint32_t op; /* enum keys_op, the same for each of the n */
	int32_t rc;
	char msg[KEYS_MSG_MAX];
};

/* What a request asks. KEYS_OP_BLIND carries a TID as typed in its txn
 * field and answers its tid index in idx. KEYS_OP_PHONE carries a sealed
 * SMS sender (kid, enc) and its visitor uid in txn, and answers the phone
 * TID in msg. */
enum keys_op { KEYS_OP_OPEN = 0, KEYS_OP_BLIND = 1, KEYS_OP_PHONE = 2 };

#define KEYS_REQ_MSG (sizeof(struct keys_hdr) + KEYS_BATCH_MAX * sizeof(struct keys_req))
#define KEYS_REP_MSG (sizeof(struct keys_hdr) + KEYS_BATCH_MAX * sizeof(struct keys_rep))
#define KEYS_BUF (KEYS_REQ_MSG > KEYS_REP_MSG ? KEYS_REQ_MSG : KEYS_REP_MSG)

/* Seconds a worker waits for the keys process's answer when
 * [central] keys_timeout_ms is not given. */
#define KEYS_REPLY_TIMEOUT_S 5
/* The ring of batches sent and not answered yet, per channel. */
#define KEYS_INFLIGHT_MAX 8

struct keys_chan {
	int fd;                   /* -1 for a local channel */
	const struct keyring *kr; /* local only */
	uint32_t seq;
	unsigned char *buf;       /* KEYS_BUF: one message either way */
	struct keys_async *async; /* the loop's opens on this channel, if any */
};

struct keysproc {
	pid_t pid;
	bool dead;
	int status;
	size_t n, nkeys;
	struct keys_chan *chans;
};

/* ------------------------------------------------------------ client */

int keys_chan_local(const struct keyring *kr, struct keys_chan **out, pos_err *e)
{
	struct keys_chan *kc;

	*out = NULL;
	if (!kr)
		return err_set(e, POS_EINVAL, "keys: missing keyring");
	kc = calloc(1, sizeof *kc);
	if (!kc)
		return err_set(e, POS_ENOMEM, "keys: out of memory");
	kc->fd = -1;
	kc->kr = kr;
	*out = kc;
	return 0;
}

void keys_chan_free(struct keys_chan *kc)
{
	if (kc && kc->kr)
		free(kc);
}

/* Copies s into a field; one that does not fit goes empty, which the keys
 * process refuses exactly as keyring_open refuses the long one. */
static void keys_put(char *dst, size_t cap, const char *s)
{
	size_t n = s ? strnlen(s, cap) : cap;

	if (n >= cap)
		n = 0;
	memcpy(dst, s ? s : "", n);
	dst[n] = '\0';
}

static bool keys_is_code(int32_t rc)
{
	return rc <= POS_EINVAL && rc >= POS_EAGAIN;
}

static int keys_gone(size_t n, struct keys_open_res *res, pos_err *e)
{
	for (size_t i = 0; i < n; i++) {
		res[i].rc = err_set(&res[i].err, POS_EAGAIN, "the keys process does not answer");
		wipe(res[i].idx, sizeof res[i].idx);
	}
	return err_set(e, POS_EAGAIN, "the keys process does not answer");
}

static void keys_async_stash(struct keys_async *ka, const unsigned char *msg, size_t len);

/* Sends the request in kc->buf (len bytes, header seq) and waits for its
 * answer there: its length, or -1 when the keys process does not answer.
 * Answers to the loop's opens read meanwhile go to it; late answers to
 * requests that timed out are dropped. */
static ssize_t keys_call(struct keys_chan *kc, size_t len, uint32_t seq)
{
	struct keys_hdr *h = (struct keys_hdr *)kc->buf;
	ssize_t got;

	do
		got = send(kc->fd, kc->buf, len, MSG_NOSIGNAL);
	while (got < 0 && errno == EINTR);
	wipe(kc->buf, len);
	if (got != (ssize_t)len)
		return -1;
	for (;;) {
		got = recv(kc->fd, kc->buf, KEYS_BUF, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < (ssize_t)sizeof *h)
			return -1;
		if (h->seq == seq)
			return got;
		if (kc->async)
			keys_async_stash(kc->async, kc->buf, (size_t)got);
		wipe(kc->buf, (size_t)got);
	}
}

/* Copies requests into the wire form (a field that does not fit goes
 * empty, which the keys process refuses as keyring_open would). */
static void keys_put_req(struct keys_req *rq, const struct keys_open_req *req)
{
	keys_put(rq->store, sizeof rq->store, req->store);
	keys_put(rq->terminal, sizeof rq->terminal, req->terminal);
	keys_put(rq->txn, sizeof rq->txn, req->txn);
	keys_put(rq->kid, sizeof rq->kid, req->kid);
	keys_put(rq->enc, sizeof rq->enc, req->enc);
}

/* One answer of an open as keys_open would return it. */
static void keys_take_rep(struct keys_rep *rp, struct keys_open_res *res)
{
	if (rp->rc == 0 && memchr(rp->dtid, '\0', sizeof rp->dtid)) {
		memcpy(res->idx, rp->idx, sizeof res->idx);
		memcpy(res->dtid, rp->dtid, sizeof res->dtid);
		res->rc = 0;
	} else if (keys_is_code(rp->rc)) {
		rp->msg[sizeof rp->msg - 1] = '\0';
		res->rc = err_set(&res->err, rp->rc, "%s", rp->msg);
	} else {
		res->rc = err_set(&res->err, POS_EIO, "the keys process sent a malformed reply");
	}
}

int keys_open_batch(struct keys_chan *kc, size_t n, const struct keys_open_req *req,
		    struct keys_open_res *res, pos_err *e)
{
	struct keys_hdr *h;
	struct keys_req *rq;
	struct keys_rep *rp;
	ssize_t got;
	uint32_t seq;

	if (!kc || n > KEYS_BATCH_MAX || (n && (!req || !res)))
		return err_set(e, POS_EINVAL, "keys: bad batch");
	if (n == 0)
		return 0;
	if (kc->kr) {
		for (size_t i = 0; i < n; i++)
			res[i].rc = keyring_open(kc->kr, req[i].store, req[i].terminal, req[i].txn,
						 req[i].kid, req[i].enc, res[i].idx, res[i].dtid,
						 &res[i].err);
		return 0;
	}
	h = (struct keys_hdr *)kc->buf;
	rq = (struct keys_req *)(h + 1);
	memset(kc->buf, 0, sizeof *h + n * sizeof *rq);
	h->seq = seq = ++kc->seq;
	h->n = (uint32_t)n;
	for (size_t i = 0; i < n; i++)
		keys_put_req(&rq[i], &req[i]);
	got = keys_call(kc, sizeof *h + n * sizeof *rq, seq);
	rp = (struct keys_rep *)(h + 1);
	if (got != (ssize_t)(sizeof *h + n * sizeof *rp) || h->n != n) {
		if (got > 0)
			wipe(kc->buf, (size_t)got);
		return keys_gone(n, res, e);
	}
	for (size_t i = 0; i < n; i++)
		keys_take_rep(&rp[i], &res[i]);
	wipe(kc->buf, (size_t)got);
	return 0;
}

int keys_open(struct keys_chan *kc, const char *store, const char *terminal, const char *txn,
	      const char *kid, const char *enc, unsigned char idx[DEIDENT_INDEX_LEN],
	      char dtid[DEIDENT_ID_LEN + 1], pos_err *e)
{
	struct keys_open_req req = { store, terminal, txn, kid, enc };
	struct keys_open_res res;
	int rc;

	if (!kc)
		return err_set(e, POS_EINVAL, "keys: missing channel");
	if (kc->kr)
		return keyring_open(kc->kr, store, terminal, txn, kid, enc, idx, dtid, e);
	if ((rc = keys_open_batch(kc, 1, &req, &res, e)) < 0)
		return rc;
	if ((rc = res.rc) == 0) {
		memcpy(idx, res.idx, DEIDENT_INDEX_LEN);
		memcpy(dtid, res.dtid, DEIDENT_ID_LEN + 1);
	} else if (e) {
		*e = res.err;
	}
	wipe(&res, sizeof res);
	return rc;
}

/* The tid index of a TID as typed: normalised, hashed, wiped. */
static int keys_blind(const struct keyring *kr, const char *in,
		      unsigned char idx[DEIDENT_INDEX_LEN], pos_err *e)
{
	char tid[TID_MAX];
	enum tid_kind kind;
	int rc;

	if ((rc = tid_normalize(in, tid, &kind, e)) == 0)
		rc = deident_index_key(keyring_index_key(kr), tid, idx, e);
	wipe(tid, sizeof tid);
	return rc;
}

/* The phone TID sealed for an SMS conversation (info visitor_seal_info):
 * anything else, even a TID sealed under another info, does not open. */
static int keys_phone(const struct keyring *kr, const char *kid, const char *enc,
		      const char *uid, char phone[TID_MAX], pos_err *e)
{
	const struct envelope_key *k = keyring_find_key(kr, kid);
	char info[ENVELOPE_INFO_MAX], tid[ENVELOPE_MAX_PT + 1];
	enum tid_kind kind;
	int rc;

	if (!k)
		return err_set(e, POS_ECRYPTO, "the sealed number does not open");
	if ((rc = visitor_seal_info(info, uid, e)) < 0)
		return rc;
	rc = envelope_open_tid_key(k, info, enc, tid, e);
	if (rc < 0)
		rc = err_set(e, POS_ECRYPTO, "the sealed number does not open");
	else if (tid_normalize(tid, phone, &kind, e) < 0 || kind != TID_PHONE)
		rc = err_set(e, POS_EINVAL, "the sealed value is not a phone number");
	wipe(tid, sizeof tid);
	if (rc < 0)
		wipe(phone, TID_MAX);
	return rc;
}

int keys_open_phone(struct keys_chan *kc, const char *kid, const char *enc, const char *uid,
		    char phone[TID_MAX], pos_err *e)
{
	struct keys_hdr *h;
	struct keys_req *rq;
	struct keys_rep *rp;
	ssize_t got;
	uint32_t seq;
	int rc;

	if (!kc || !kid || !enc || !uid)
		return err_set(e, POS_EINVAL, "keys: missing channel or field");
	if (kc->kr)
		return keys_phone(kc->kr, kid, enc, uid, phone, e);
	h = (struct keys_hdr *)kc->buf;
	rq = (struct keys_req *)(h + 1);
	memset(kc->buf, 0, sizeof *h + sizeof *rq);
	h->seq = seq = ++kc->seq;
	h->n = 1;
	h->op = KEYS_OP_PHONE;
	keys_put(rq->kid, sizeof rq->kid, kid);
	keys_put(rq->enc, sizeof rq->enc, enc);
	keys_put(rq->txn, sizeof rq->txn, uid);
	got = keys_call(kc, sizeof *h + sizeof *rq, seq);
	rp = (struct keys_rep *)(h + 1);
	if (got != (ssize_t)(sizeof *h + sizeof *rp) || h->n != 1) {
		rc = err_set(e, POS_EAGAIN, "the keys process does not answer");
	} else if (rp->rc == 0 && memchr(rp->msg, '\0', TID_MAX)) {
		memcpy(phone, rp->msg, TID_MAX);
		rc = 0;
	} else if (rp->rc < 0 && keys_is_code(rp->rc)) {
		rp->msg[sizeof rp->msg - 1] = '\0';
		rc = err_set(e, rp->rc, "%s", rp->msg);
	} else {
		rc = err_set(e, POS_EIO, "the keys process sent a malformed reply");
	}
	if (got > 0)
		wipe(kc->buf, (size_t)got);
	return rc;
}

/* ------------------------------------------------------------ the loop's opens */

/* One request waiting for its answer. */
struct keys_wait {
	keys_done_fn *fn;
	void *arg;
	uint32_t op; /* enum keys_op: a message carries one op */
};

/* One batch sent, its answer not read yet. */
struct keys_flight {
	uint32_t seq, n;
	int64_t due_us; /* answered POS_EAGAIN from then on */
	struct keys_wait w[KEYS_BATCH_MAX];
};

/* An answer a synchronous call on the channel read first. */
struct keys_stashed {
	struct keys_stashed *next;
	size_t len;
	unsigned char msg[];
};

struct keys_async {
	struct keys_chan *kc;
	struct event *send_ev;  /* sends what the loop turn queued; also a retry timer */
	struct event *read_ev;  /* answers on the channel; stashed ones too */
	struct event *timer_ev; /* the oldest batch's deadline */
	int64_t timeout_us;
	size_t inflight_max;
	struct keys_req *q;     /* queued, not sent yet (wire form) */
	struct keys_wait *qw;
	size_t nq, capq;
	struct keys_flight fl[KEYS_INFLIGHT_MAX]; /* a ring, oldest at fl_head */
	size_t fl_head, nfl;
	struct keys_stashed *stash, **stash_tail;
};

static struct keys_flight *keys_flight_find(struct keys_async *ka, uint32_t seq)
{
	for (size_t i = 0; i < ka->nfl; i++) {
		struct keys_flight *f = &ka->fl[(ka->fl_head + i) % KEYS_INFLIGHT_MAX];

		if (f->seq == seq)
			return f;
	}
	return NULL;
}

static void keys_async_stash(struct keys_async *ka, const unsigned char *msg, size_t len)
{
	const struct keys_hdr *h = (const struct keys_hdr *)msg;
	struct keys_stashed *s;

	if (!keys_flight_find(ka, h->seq) || !(s = malloc(sizeof *s + len)))
		return; /* late, or no memory: the batch times out */
	memcpy(s->msg, msg, len);
	s->len = len;
	s->next = NULL;
	*ka->stash_tail = s;
	ka->stash_tail = &s->next;
	event_active(ka->read_ev, EV_READ, 1);
}

/* Drops the ring's entry f once answered: entries may be answered out of
 * order only after a timeout, so f is normally the oldest. */
static void keys_flight_drop(struct keys_async *ka, struct keys_flight *f)
{
	size_t i = (size_t)(f - ka->fl);
	size_t k = (i + KEYS_INFLIGHT_MAX - ka->fl_head) % KEYS_INFLIGHT_MAX;

	for (; k > 0; k--) {
		size_t to = (ka->fl_head + k) % KEYS_INFLIGHT_MAX;
		size_t from = (ka->fl_head + k - 1) % KEYS_INFLIGHT_MAX;

		ka->fl[to] = ka->fl[from];
	}
	ka->fl_head = (ka->fl_head + 1) % KEYS_INFLIGHT_MAX;
	ka->nfl--;
}

static void keys_async_arm(struct keys_async *ka)
{
	struct timeval tv;
	int64_t left;

	if (ka->nfl == 0) {
		event_del(ka->timer_ev);
		return;
	}
	left = ka->fl[ka->fl_head].due_us - time_mono_us();
	if (left < 0)
		left = 0;
	tv.tv_sec = (time_t)(left / 1000000);
	tv.tv_usec = (suseconds_t)(left % 1000000);
	event_add(ka->timer_ev, &tv);
}

static void keys_async_send(struct keys_async *ka);

/* Answers a batch's opens from msg (NULL: the keys process did not
 * answer). The callbacks may queue new opens. */
static void keys_async_answer(struct keys_async *ka, struct keys_flight *f, unsigned char *msg,
			      size_t len)
{
	struct keys_wait w[KEYS_BATCH_MAX];
	struct keys_hdr *h = (struct keys_hdr *)msg;
	struct keys_rep *rp = msg ? (struct keys_rep *)(h + 1) : NULL;
	struct keys_open_res res;
	size_t n = f->n;

	if (msg && (len != sizeof *h + n * sizeof *rp || h->n != n))
		rp = NULL;
	memcpy(w, f->w, n * sizeof *w);
	keys_flight_drop(ka, f);
	for (size_t i = 0; i < n; i++) {
		memset(&res, 0, sizeof res);
		if (rp)
			keys_take_rep(&rp[i], &res);
		else
			res.rc = err_set(&res.err, POS_EAGAIN, "the keys process does not answer");
		w[i].fn(w[i].arg, &res);
		wipe(&res, sizeof res);
	}
}

static void keys_async_take(struct keys_async *ka, unsigned char *msg, size_t len)
{
	struct keys_flight *f = len >= sizeof(struct keys_hdr)
					? keys_flight_find(ka, ((struct keys_hdr *)msg)->seq)
					: NULL;

	if (f)
		keys_async_answer(ka, f, msg, len);
	wipe(msg, len);
}

static void keys_async_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct keys_async *ka = arg;
	struct keys_stashed *s;
	ssize_t got;

	(void)fd;
	(void)what;
	while ((s = ka->stash)) {
		if (!(ka->stash = s->next))
			ka->stash_tail = &ka->stash;
		keys_async_take(ka, s->msg, s->len);
		free(s);
	}
	for (;;) {
		got = recv(ka->kc->fd, ka->kc->buf, KEYS_BUF, MSG_DONTWAIT);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break; /* drained; a closed channel: serve stops on SIGCHLD */
		keys_async_take(ka, ka->kc->buf, (size_t)got);
	}
	keys_async_arm(ka);
	keys_async_send(ka);
}

static void keys_async_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct keys_async *ka = arg;
	int64_t now = time_mono_us();

	(void)fd;
	(void)what;
	while (ka->nfl && ka->fl[ka->fl_head].due_us <= now) {
		log_warn("keys_timeout", "opens=%u detail=\"the keys process did not answer in "
					 "time: refused\"",
			 ka->fl[ka->fl_head].n);
		keys_async_answer(ka, &ka->fl[ka->fl_head], NULL, 0);
	}
	keys_async_arm(ka);
	keys_async_send(ka);
}

/* In this process (a local channel): every queued request at once. */
static void keys_async_local(struct keys_async *ka)
{
	struct keys_open_res res;

	while (ka->nq) {
		struct keys_req one = ka->q[0];
		struct keys_wait w = ka->qw[0];

		memmove(ka->q, ka->q + 1, (ka->nq - 1) * sizeof *ka->q);
		memmove(ka->qw, ka->qw + 1, (ka->nq - 1) * sizeof *ka->qw);
		ka->nq--;
		memset(&res, 0, sizeof res);
		if (w.op == KEYS_OP_BLIND)
			res.rc = keys_blind(ka->kc->kr, one.txn, res.idx, &res.err);
		else
			res.rc = keyring_open(ka->kc->kr, one.store, one.terminal, one.txn,
					      one.kid, one.enc, res.idx, res.dtid, &res.err);
		wipe(&one, sizeof one);
		w.fn(w.arg, &res);
		wipe(&res, sizeof res);
	}
}

/* Sends queued opens, KEYS_BATCH_MAX a message, while fewer than
 * inflight_max batches wait for their answer. */
static void keys_async_send(struct keys_async *ka)
{
	struct keys_chan *kc = ka->kc;
	struct keys_hdr *h = (struct keys_hdr *)kc->buf;
	struct keys_flight *f;
	size_t n, len;
	ssize_t got;

	if (kc->kr) {
		keys_async_local(ka);
		return;
	}
	while (ka->nq && ka->nfl < ka->inflight_max) {
		/* The queue's first requests of one op, KEYS_BATCH_MAX at most. */
		for (n = 1; n < ka->nq && n < KEYS_BATCH_MAX && ka->qw[n].op == ka->qw[0].op; n++)
			;
		len = sizeof *h + n * sizeof *ka->q;
		memset(h, 0, sizeof *h);
		h->seq = kc->seq + 1;
		h->n = (uint32_t)n;
		h->op = ka->qw[0].op;
		memcpy(h + 1, ka->q, n * sizeof *ka->q);
		do
			got = send(kc->fd, kc->buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (got < 0 && errno == EINTR);
		wipe(kc->buf, len);
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* The channel is full: try again shortly (answers read
			 * meanwhile also try). */
			struct timeval tv = { 0, 1000 };

			event_add(ka->send_ev, &tv);
			return;
		}
		f = &ka->fl[(ka->fl_head + ka->nfl) % KEYS_INFLIGHT_MAX];
		f->seq = ++kc->seq;
		f->n = (uint32_t)n;
		f->due_us = time_mono_us() + ka->timeout_us;
		memcpy(f->w, ka->qw, n * sizeof *ka->qw);
		ka->nfl++;
		wipe(ka->q, n * sizeof *ka->q);
		memmove(ka->q, ka->q + n, (ka->nq - n) * sizeof *ka->q);
		memmove(ka->qw, ka->qw + n, (ka->nq - n) * sizeof *ka->qw);
		ka->nq -= n;
		if (got != (ssize_t)len) {
			/* The keys process is gone: refused now rather than at the
			 * deadline. */
			keys_async_answer(ka, f, NULL, 0);
			continue;
		}
		if (ka->nfl == 1)
			keys_async_arm(ka);
	}
}

static void keys_async_send_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	keys_async_send(arg);
}

int keys_async_new(struct event_base *base, struct keys_chan *kc, const struct keys_async_opts *o,
		   struct keys_async **out, pos_err *e)
{
	struct keys_async *ka;

	*out = NULL;
	if (!base || !kc || kc->async)
		return err_set(e, POS_EINVAL, "keys: no channel, or it has its loop already");
	ka = calloc(1, sizeof *ka);
	if (!ka)
		return err_set(e, POS_ENOMEM, "keys: out of memory");
	ka->kc = kc;
	ka->stash_tail = &ka->stash;
	ka->timeout_us = (o && o->timeout_ms > 0 ? o->timeout_ms : KEYS_REPLY_TIMEOUT_S * 1000) *
			 (int64_t)1000;
	ka->inflight_max = o && o->inflight > 0 && o->inflight <= KEYS_INFLIGHT_MAX
				   ? o->inflight
				   : KEYS_INFLIGHT_DEFAULT;
	ka->send_ev = event_new(base, -1, 0, keys_async_send_cb, ka);
	ka->read_ev = event_new(base, kc->kr ? -1 : kc->fd, kc->kr ? 0 : EV_READ | EV_PERSIST,
				keys_async_read_cb, ka);
	ka->timer_ev = evtimer_new(base, keys_async_timer_cb, ka);
	if (!ka->send_ev || !ka->read_ev || !ka->timer_ev ||
	    (!kc->kr && event_add(ka->read_ev, NULL) < 0)) {
		keys_async_free(ka);
		return err_set(e, POS_ENOMEM, "keys: cannot make the loop's events");
	}
	kc->async = ka;
	*out = ka;
	return 0;
}

/* Room for one more queued request. */
static int keys_async_room(struct keys_async *ka, pos_err *e)
{
	if (ka->nq == ka->capq) {
		size_t cap = ka->capq ? ka->capq * 2 : KEYS_BATCH_MAX;
		struct keys_req *q = malloc(cap * sizeof *q);
		struct keys_wait *qw = realloc(ka->qw, cap * sizeof *qw);

		if (qw)
			ka->qw = qw;
		if (!q || !qw) {
			free(q);
			return err_set(e, POS_ENOMEM, "keys: out of memory");
		}
		/* Copied, not realloc'ed: the old copy is wiped. */
		if (ka->nq)
			memcpy(q, ka->q, ka->nq * sizeof *q);
		if (ka->q)
			wipe(ka->q, ka->capq * sizeof *ka->q);
		free(ka->q);
		ka->q = q;
		ka->capq = cap;
	}
	memset(&ka->q[ka->nq], 0, sizeof *ka->q);
	return 0;
}

/* Queues ka->q[ka->nq], filled by the caller: it goes out this loop turn. */
static void keys_async_queue(struct keys_async *ka, keys_done_fn *fn, void *arg, uint32_t op)
{
	ka->qw[ka->nq] = (struct keys_wait){ fn, arg, op };
	if (ka->nq++ == 0)
		event_active(ka->send_ev, EV_TIMEOUT, 1);
}

int keys_async_open(struct keys_async *ka, const struct keys_open_req *req, keys_done_fn *fn,
		    void *arg, pos_err *e)
{
	int rc;

	if (!ka || !req || !fn)
		return err_set(e, POS_EINVAL, "keys: missing request or callback");
	if ((rc = keys_async_room(ka, e)) < 0)
		return rc;
	keys_put_req(&ka->q[ka->nq], req);
	keys_async_queue(ka, fn, arg, KEYS_OP_OPEN);
	return 0;
}

int keys_async_blind(struct keys_async *ka, const char *tid_in, keys_done_fn *fn, void *arg,
		     pos_err *e)
{
	int rc;

	if (!ka || !tid_in || !fn)
		return err_set(e, POS_EINVAL, "keys: missing TID or callback");
	if (strnlen(tid_in, KEYS_FIELD) >= KEYS_FIELD)
		return err_set(e, POS_EINVAL, "the identifier is too long");
	if ((rc = keys_async_room(ka, e)) < 0)
		return rc;
	keys_put(ka->q[ka->nq].txn, sizeof ka->q[ka->nq].txn, tid_in);
	keys_async_queue(ka, fn, arg, KEYS_OP_BLIND);
	return 0;
}

struct keys_async *keys_chan_async(struct keys_chan *kc)
{
	return kc ? kc->async : NULL;
}

size_t keys_async_waiting(const struct keys_async *ka)
{
	size_t n = 0;

	if (!ka)
		return 0;
	for (size_t i = 0; i < ka->nfl; i++)
		n += ka->fl[(ka->fl_head + i) % KEYS_INFLIGHT_MAX].n;
	return n + ka->nq;
}

void keys_async_free(struct keys_async *ka)
{
	struct keys_stashed *s;

	if (!ka)
		return;
	if (ka->kc && ka->kc->async == ka)
		ka->kc->async = NULL;
	if (ka->send_ev)
		event_free(ka->send_ev);
	if (ka->read_ev)
		event_free(ka->read_ev);
	if (ka->timer_ev)
		event_free(ka->timer_ev);
	while ((s = ka->stash)) {
		ka->stash = s->next;
		wipe(s->msg, s->len);
		free(s);
	}
	if (ka->q)
		wipe(ka->q, ka->capq * sizeof *ka->q);
	free(ka->q);
	free(ka->qw);
	free(ka);
}

/* ------------------------------------------------------------ keys process */

struct keys_srv {
	int fd;
	const struct keyring *kr;
	pthread_t thread;
	unsigned char *buf; /* KEYS_BUF */
	size_t idx;
	bool pin; /* on the core of worker idx (keys_pin_thread) */
};

int keys_pin_thread(size_t i)
{
	cpu_set_t allowed, one;
	size_t seen = 0, n;

	if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 ||
	    (n = (size_t)CPU_COUNT(&allowed)) < 2)
		return POS_EINVAL;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &allowed) || seen++ != i % n)
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		return sched_setaffinity(0, sizeof one, &one) == 0 ? 0 : POS_EINVAL;
	}
	return POS_EINVAL;
}

static bool keys_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static bool keys_req_ok(const struct keys_req *q)
{
	return keys_terminated(q->store, sizeof q->store) &&
	       keys_terminated(q->terminal, sizeof q->terminal) &&
	       keys_terminated(q->txn, sizeof q->txn) && keys_terminated(q->kid, sizeof q->kid) &&
	       keys_terminated(q->enc, sizeof q->enc);
}

/* Answers one channel until its worker closes it. A malformed message
 * gets a header alone with rc set, which the worker takes as no answer. */
static void *keysproc_serve(void *arg)
{
	struct keys_srv *s = arg;
	struct keys_hdr *h = (struct keys_hdr *)s->buf;
	struct keys_req *rq = (struct keys_req *)(h + 1);
	struct keys_req one;
	struct keys_rep rep;
	pos_err e;
	ssize_t n;
	size_t len, cnt;

	if (s->pin)
		(void)keys_pin_thread(s->idx);
	for (;;) {
		n = recv(s->fd, s->buf, KEYS_REQ_MSG, MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		cnt = n >= (ssize_t)sizeof *h ? h->n : 0;
		if (cnt == 0 || cnt > KEYS_BATCH_MAX ||
		    (size_t)n != sizeof *h + cnt * sizeof *rq) {
			h->n = 0;
			h->rc = POS_EINVAL;
			snprintf(h->msg, sizeof h->msg, "keys: a malformed request");
			len = sizeof *h;
		} else {
			/* Answers replace requests in place: each request is
			 * copied out first, and an answer is smaller. */
			struct keys_rep *rp = (struct keys_rep *)(h + 1);

			for (size_t i = 0; i < cnt; i++) {
				memcpy(&one, &rq[i], sizeof one);
				memset(&rep, 0, sizeof rep);
				if (!keys_req_ok(&one))
					rep.rc = err_set(&e, POS_EINVAL, "keys: a malformed request");
				else if (h->op == KEYS_OP_BLIND)
					rep.rc = keys_blind(s->kr, one.txn, rep.idx, &e);
				else if (h->op == KEYS_OP_PHONE)
					rep.rc = keys_phone(s->kr, one.kid, one.enc, one.txn, rep.msg,
							    &e);
				else if (h->op != KEYS_OP_OPEN)
					rep.rc = err_set(&e, POS_EINVAL, "keys: an unknown request");
				else
					rep.rc = keyring_open(s->kr, one.store, one.terminal, one.txn,
							      one.kid, one.enc, rep.idx, rep.dtid, &e);
				if (rep.rc < 0)
					snprintf(rep.msg, sizeof rep.msg, "%s", e.msg);
				memcpy(&rp[i], &rep, sizeof rep);
				wipe(&one, sizeof one);
			}
			h->rc = 0;
			len = sizeof *h + cnt * sizeof *rp;
		}
		do
			n = send(s->fd, s->buf, len, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		wipe(s->buf, len);
		wipe(&rep, sizeof rep);
		if (n != (ssize_t)len)
			break;
	}
	close(s->fd);
	s->fd = -1;
	return NULL;
}

static int keysproc_cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static void keysproc_close_range(int lo, int hi)
{
	long max;

	if (lo > hi)
		return;
	if (close_range((unsigned)lo, (unsigned)hi, 0) == 0)
		return;
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (long fd = lo; fd <= hi && fd < max; fd++)
		close((int)fd);
}

/* Every descriptor but stdout, stderr (the log) and the n channels in fds
 * goes; stdin becomes /dev/null. */
static int keysproc_close_others(const int *fds, size_t n)
{
	int *keep = malloc(n * sizeof *keep);
	int lo = 3, fd;

	if (!keep)
		return POS_ENOMEM;
	memcpy(keep, fds, n * sizeof *keep);
	qsort(keep, n, sizeof *keep, keysproc_cmp_int);
	for (size_t i = 0; i < n; i++) {
		keysproc_close_range(lo, keep[i] - 1);
		lo = keep[i] + 1;
	}
	keysproc_close_range(lo, (int)(~0U >> 1));
	free(keep);
	fd = open("/dev/null", O_RDONLY);
	if (fd > 0) {
		dup2(fd, 0);
		close(fd);
	}
	return 0;
}

/* Started as root: becomes [central] user. A missing user is a warning
 * (a developer's machine, a test); an empty setting keeps the start user. */
static int keysproc_drop(const struct cconf *c, pos_err *e)
{
	struct passwd *pw;
	char q[96];

	if (geteuid() != 0 || !c->user[0])
		return 0;
	pw = getpwnam(c->user);
	if (!pw) {
		log_warn("keys_user_missing", "user=%s detail=\"no such user: the keys process "
					      "keeps running as root\"",
			 log_q(q, sizeof q, c->user));
		return 0;
	}
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
		return err_set(e, POS_EPERM, "keys process: cannot become user %s: %s", c->user,
			       strerror(errno));
	if (pw->pw_uid != 0 && setuid(0) == 0)
		return err_set(e, POS_EPERM, "keys process: could regain root after dropping it");
	return 0;
}

static void keysproc_ready(int fd, int rc, size_t nkeys, const pos_err *e)
{
	struct keys_hdr h;
	ssize_t n;

	memset(&h, 0, sizeof h);
	h.rc = rc;
	h.seq = (uint32_t)nkeys;
	if (rc < 0)
		snprintf(h.msg, sizeof h.msg, "%s", e->msg);
	do
		n = send(fd, &h, sizeof h, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
}

/* The keys process: loads the keys, gives up what it does not need,
 * answers its channels until all are closed. Never returns. */
static void __attribute__((noreturn))
keysproc_child(const struct cconf *c, int *fds, size_t n, pid_t parent)
{
	struct keyring *kr = NULL;
	struct keys_srv *srv = NULL;
	sigset_t none;
	size_t started = 0;
	pos_err e = { 0 };
	int rc;

	/* The parent's end is what keeps this process alive; if the parent
	 * dies without closing it (SIGKILL), so does this one. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(1);
	/* SIGTERM or ^C for the whole group: the parent drains its requests
	 * first, then closes the channels, which ends this process. SIGHUP
	 * is the parent's reload (or a hangup the parent survives). */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_NAME, "pos-central-key", 0, 0, 0);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (keysproc_close_others(fds, n) < 0)
		_exit(1);

	if ((rc = keyring_load_keys(c, &kr, &e)) < 0 || (rc = keysproc_drop(c, &e)) < 0)
		goto out;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		rc = err_set(&e, POS_EPERM, "keys process: no_new_privs: %s", strerror(errno));
		goto out;
	}
	srv = calloc(n, sizeof *srv);
	if (!srv) {
		rc = err_set(&e, POS_ENOMEM, "keys process: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		srv[i].fd = fds[i];
		srv[i].kr = kr;
		srv[i].idx = i;
		srv[i].pin = c->pin_threads;
		if (!(srv[i].buf = malloc(KEYS_BUF))) {
			rc = err_set(&e, POS_ENOMEM, "keys process: out of memory");
			goto out;
		}
	}
	for (started = 1; started < n; started++)
		if (pthread_create(&srv[started].thread, NULL, keysproc_serve, &srv[started]) != 0) {
			rc = err_set(&e, POS_ENOMEM, "keys process: cannot start thread %zu",
				     started);
			break;
		}
out:
	keysproc_ready(fds[0], rc, keyring_count(kr), &e);
	if (rc == 0) {
		keysproc_serve(&srv[0]);
	} else {
		/* The threads already started end when their channels close. */
		close(fds[0]);
	}
	for (size_t i = 1; i < started; i++)
		pthread_join(srv[i].thread, NULL);
	for (size_t i = 0; srv && i < n; i++)
		free(srv[i].buf);
	free(srv);
	keyring_free(kr);
	_exit(rc == 0 ? 0 : 1);
}

/* ------------------------------------------------------------ parent */

static void keysproc_why(int status, char *why, size_t cap)
{
	if (!why || !cap)
		return;
	if (WIFSIGNALED(status))
		snprintf(why, cap, "signal %d", WTERMSIG(status));
	else if (WIFEXITED(status))
		snprintf(why, cap, "exit %d", WEXITSTATUS(status));
	else
		snprintf(why, cap, "status %d", status);
}

static void keysproc_reap(struct keysproc *kp)
{
	pid_t r;

	if (kp->dead || kp->pid <= 0)
		return;
	do
		r = waitpid(kp->pid, &kp->status, 0);
	while (r < 0 && errno == EINTR);
	kp->dead = true;
}

int keysproc_start(const struct cconf *c, size_t nchan, struct keysproc **out, pos_err *e)
{
	struct keysproc *kp;
	struct keys_hdr rep;
	int *child = NULL;
	char why[32];
	pid_t parent = getpid();
	ssize_t n;
	int rc = 0;

	*out = NULL;
	if (nchan == 0)
		return err_set(e, POS_EINVAL, "keys process: no channels");
	kp = calloc(1, sizeof *kp);
	child = calloc(nchan, sizeof *child);
	if (!kp || !child || !(kp->chans = calloc(nchan, sizeof *kp->chans))) {
		free(kp);
		free(child);
		return err_set(e, POS_ENOMEM, "keys process: out of memory");
	}
	for (size_t i = 0; i < nchan; i++) {
		kp->chans[i].fd = -1;
		child[i] = -1;
	}
	kp->n = nchan;
	for (size_t i = 0; i < nchan; i++)
		if (!(kp->chans[i].buf = malloc(KEYS_BUF))) {
			rc = err_set(e, POS_ENOMEM, "keys process: out of memory");
			goto out;
		}
	for (size_t i = 0; i < nchan; i++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
			rc = err_set(e, POS_EIO, "keys process: socketpair: %s", strerror(errno));
			goto out;
		}
		kp->chans[i].fd = sv[0];
		child[i] = sv[1];
	}
	fflush(NULL); /* nothing buffered is written twice */
	kp->pid = fork();
	if (kp->pid < 0) {
		rc = err_set(e, POS_EIO, "keys process: fork: %s", strerror(errno));
		goto out;
	}
	if (kp->pid == 0)
		keysproc_child(c, child, nchan, parent);
	for (size_t i = 0; i < nchan; i++) {
		close(child[i]);
		child[i] = -1;
	}
	do
		n = recv(kp->chans[0].fd, &rep, sizeof rep, 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof rep) {
		keysproc_reap(kp);
		keysproc_why(kp->status, why, sizeof why);
		rc = err_set(e, POS_EIO, "the keys process ended before it was ready (%s)", why);
		goto out;
	}
	if (rep.rc < 0) {
		rep.msg[sizeof rep.msg - 1] = '\0';
		rc = err_set(e, keys_is_code(rep.rc) ? rep.rc : POS_EIO, "%s", rep.msg);
		goto out;
	}
	kp->nkeys = rep.seq;
	/* A keys process that hangs must not hang its workers with it: a
	 * request unanswered in time is refused (503), and its late answer is
	 * dropped by the next request's wait (older seq). */
	for (size_t i = 0; i < nchan; i++) {
		long ms = c->keys_timeout_ms > 0 ? c->keys_timeout_ms : KEYS_REPLY_TIMEOUT_S * 1000;
		struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

		setsockopt(kp->chans[i].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	}
out:
	for (size_t i = 0; i < nchan; i++)
		if (child[i] >= 0)
			close(child[i]);
	free(child);
	if (rc < 0) {
		keysproc_stop(kp);
		return rc;
	}
	*out = kp;
	return 0;
}

struct keys_chan *keysproc_chan(struct keysproc *kp, size_t i)
{
	return kp && i < kp->n ? &kp->chans[i] : NULL;
}

size_t keysproc_nchan(const struct keysproc *kp)
{
	return kp ? kp->n : 0;
}

size_t keysproc_hpke_keys(const struct keysproc *kp)
{
	return kp ? kp->nkeys : 0;
}

pid_t keysproc_pid(const struct keysproc *kp)
{
	return kp ? kp->pid : -1;
}

bool keysproc_alive(struct keysproc *kp, char *why, size_t cap)
{
	pid_t r;

	if (!kp)
		return false;
	if (!kp->dead) {
		r = waitpid(kp->pid, &kp->status, WNOHANG);
		if (r == 0)
			return true;
		if (r < 0 && errno != ECHILD)
			return true;
		kp->dead = true;
	}
	keysproc_why(kp->status, why, cap);
	return false;
}

void keysproc_stop(struct keysproc *kp)
{
	if (!kp)
		return;
	for (size_t i = 0; kp->chans && i < kp->n; i++) {
		if (kp->chans[i].fd >= 0)
			close(kp->chans[i].fd);
		free(kp->chans[i].buf);
	}
	keysproc_reap(kp);
	free(kp->chans);
	free(kp);
}
