#include "keysproc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envelope.h"
#include "keys.h"
#include "log.h"
#include "tid.h"
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

/* Seconds a worker waits for the keys process's answer. */
#define KEYS_REPLY_TIMEOUT_S 5

struct keys_chan {
	int fd;                   /* -1 for a local channel */
	const struct keyring *kr; /* local only */
	uint32_t seq;
	unsigned char *buf;       /* KEYS_BUF: one message either way */
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

int keys_open_batch(struct keys_chan *kc, size_t n, const struct keys_open_req *req,
		    struct keys_open_res *res, pos_err *e)
{
	struct keys_hdr *h;
	struct keys_req *rq;
	struct keys_rep *rp;
	size_t len;
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
	len = sizeof *h + n * sizeof *rq;
	memset(kc->buf, 0, len);
	h->seq = seq = ++kc->seq;
	h->n = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		keys_put(rq[i].store, sizeof rq[i].store, req[i].store);
		keys_put(rq[i].terminal, sizeof rq[i].terminal, req[i].terminal);
		keys_put(rq[i].txn, sizeof rq[i].txn, req[i].txn);
		keys_put(rq[i].kid, sizeof rq[i].kid, req[i].kid);
		keys_put(rq[i].enc, sizeof rq[i].enc, req[i].enc);
	}
	do
		got = send(kc->fd, kc->buf, len, MSG_NOSIGNAL);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)len)
		return keys_gone(n, res, e);
	/* Replies to earlier requests that timed out come first: skip them. */
	do
		got = recv(kc->fd, kc->buf, KEYS_BUF, 0);
	while ((got < 0 && errno == EINTR) ||
	       (got >= (ssize_t)sizeof *h && (int32_t)(h->seq - seq) < 0));
	rp = (struct keys_rep *)(h + 1);
	if (got != (ssize_t)(sizeof *h + n * sizeof *rp) || h->seq != seq || h->n != n) {
		if (got > 0)
			wipe(kc->buf, (size_t)got);
		return keys_gone(n, res, e);
	}
	for (size_t i = 0; i < n; i++) {
		if (rp[i].rc == 0 && memchr(rp[i].dtid, '\0', sizeof rp[i].dtid)) {
			memcpy(res[i].idx, rp[i].idx, sizeof res[i].idx);
			memcpy(res[i].dtid, rp[i].dtid, sizeof res[i].dtid);
			res[i].rc = 0;
		} else if (keys_is_code(rp[i].rc)) {
			rp[i].msg[sizeof rp[i].msg - 1] = '\0';
			res[i].rc = err_set(&res[i].err, rp[i].rc, "%s", rp[i].msg);
		} else {
			res[i].rc = err_set(&res[i].err, POS_EIO,
					    "the keys process sent a malformed reply");
		}
	}
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
	size_t len;
	ssize_t got;
	uint32_t seq;
	int rc;

	if (!kc || !kid || !enc || !uid)
		return err_set(e, POS_EINVAL, "keys: missing channel or field");
	if (kc->kr)
		return keys_phone(kc->kr, kid, enc, uid, phone, e);
	h = (struct keys_hdr *)kc->buf;
	rq = (struct keys_req *)(h + 1);
	len = sizeof *h + sizeof *rq;
	memset(kc->buf, 0, len);
	h->seq = seq = ++kc->seq;
	h->n = 1;
	h->op = KEYS_OP_PHONE;
	keys_put(rq->kid, sizeof rq->kid, kid);
	keys_put(rq->enc, sizeof rq->enc, enc);
	keys_put(rq->txn, sizeof rq->txn, uid);
	do
		got = send(kc->fd, kc->buf, len, MSG_NOSIGNAL);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)len)
		return err_set(e, POS_EAGAIN, "the keys process does not answer");
	do
		got = recv(kc->fd, kc->buf, KEYS_BUF, 0);
	while (got < 0 && errno == EINTR);
	rp = (struct keys_rep *)(h + 1);
	if (got != (ssize_t)(sizeof *h + sizeof *rp) || h->seq != seq || h->n != 1) {
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

int keys_blind_index(struct keys_chan *kc, const char *tid_in,
		     unsigned char idx[DEIDENT_INDEX_LEN], pos_err *e)
{
	struct keys_hdr *h;
	struct keys_req *rq;
	struct keys_rep *rp;
	size_t len;
	ssize_t got;
	uint32_t seq;
	int rc;

	if (!kc || !tid_in)
		return err_set(e, POS_EINVAL, "keys: missing channel or TID");
	if (kc->kr)
		return keys_blind(kc->kr, tid_in, idx, e);
	if (strnlen(tid_in, KEYS_FIELD) >= KEYS_FIELD)
		return err_set(e, POS_EINVAL, "the identifier is too long");
	h = (struct keys_hdr *)kc->buf;
	rq = (struct keys_req *)(h + 1);
	len = sizeof *h + sizeof *rq;
	memset(kc->buf, 0, len);
	h->seq = seq = ++kc->seq;
	h->n = 1;
	h->op = KEYS_OP_BLIND;
	keys_put(rq->txn, sizeof rq->txn, tid_in);
	do
		got = send(kc->fd, kc->buf, len, MSG_NOSIGNAL);
	while (got < 0 && errno == EINTR);
	wipe(kc->buf, len);
	if (got != (ssize_t)len)
		return err_set(e, POS_EAGAIN, "the keys process does not answer");
	do
		got = recv(kc->fd, kc->buf, KEYS_BUF, 0);
	while (got < 0 && errno == EINTR);
	rp = (struct keys_rep *)(h + 1);
	if (got != (ssize_t)(sizeof *h + sizeof *rp) || h->seq != seq || h->n != 1) {
		rc = err_set(e, POS_EAGAIN, "the keys process does not answer");
	} else if (rp->rc == 0) {
		memcpy(idx, rp->idx, DEIDENT_INDEX_LEN);
		rc = 0;
	} else if (keys_is_code(rp->rc)) {
		rp->msg[sizeof rp->msg - 1] = '\0';
		rc = err_set(e, rp->rc, "%s", rp->msg);
	} else {
		rc = err_set(e, POS_EIO, "the keys process sent a malformed reply");
	}
	if (got > 0)
		wipe(kc->buf, (size_t)got);
	return rc;
}

/* ------------------------------------------------------------ keys process */

struct keys_srv {
	int fd;
	const struct keyring *kr;
	pthread_t thread;
	unsigned char *buf; /* KEYS_BUF */
};

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
		struct timeval tv = { KEYS_REPLY_TIMEOUT_S, 0 };

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
