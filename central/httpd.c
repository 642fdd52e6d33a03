#include "httpd.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define HTTPD_IN_START 4096
#define HTTPD_OUT_START 4096
/* Buffers grown past this for one big request or reply are given back
 * once it is done, so idle connections stay small. */
#define HTTPD_KEEP_MAX 65536
#define HTTPD_EXTRA_MAX 1024
#define HTTPD_ACCEPT_BATCH 64
#define HTTPD_RESUME_MS 100
/* A closing connection reads and drops what the client still sends (the
 * rest of a refused body) up to this much, within idle. */
#define HTTPD_LINGER_MAX (64u << 20)
/* A worker logs refused connections at most this often (a flood would
 * write a line per connection); the conn_refused hook sees every one. */
#define HTTPD_REFUSED_LOG_S 10
/* Fill calls of a streamed reply per loop turn, whatever they produced. */
#define HTTPD_STREAM_FILLS 16
/* A chunk's size line: 8 hex digits (leading zeros are allowed) and CRLF. */
#define HTTPD_CHUNK_HEAD 10

enum conn_state {
	C_HANDSHAKE,
	C_READ,    /* reading a request */
	C_HANDLER, /* the request is with the handler */
	C_WRITE,   /* handing the reply (or a 100 Continue) to TLS */
	C_LINGER,  /* closing: dropping what the client still sends */
	C_DEAD,
};

enum step { STEP, WAIT };

struct conn;

struct httpd_req {
	struct conn *c;
	struct http1_req h;
	char extra[HTTPD_EXTRA_MAX]; /* added reply headers, each ending CRLF */
	size_t extra_len;
};

struct conn {
	struct httpd *h;
	int fd;
	SSL *ssl;
	struct event *rev, *wev, *deadline;
	struct event *again; /* pipelined input waits one loop turn behind others */
	enum conn_state st;
	short want;  /* EV_READ or EV_WRITE: what the socket must become to go on */
	short armed; /* what rev and wev are registered for */
	bool in_io;  /* conn_io is on the stack: it frees, not its callees */
	bool head_parsed;
	bool interim;  /* the bytes being written are a 100 Continue */
	bool continue_sent;
	bool close_after;
	bool idle; /* a reply just went and nothing is buffered: wait for epoll */
	bool queued; /* a reply waits in the flush list */
	bool reset;  /* closed with a reset: refused or evicted, nothing to say */
	enum slots_kind kind;
	struct slots_addr addr;
	char *in;
	size_t in_len, in_cap;
	size_t scan; /* where http1_head_end resumes */
	char *out;
	size_t out_len, out_off, out_cap;
	size_t linger_left;
	/* A streamed reply's source: out holds one slice of it at a time. */
	httpd_fill fill;
	void (*fill_done)(void *arg);
	void *fill_arg;
	bool chunked;
	struct httpd_req req;
	struct conn *prev, *next;
	struct conn *fprev, *fnext; /* the flush list */
	struct conn *hprev, *hnext; /* handshakes, oldest first */
	/* The client's address, asked of the kernel the first time a handler
	 * wants it. */
	struct sockaddr_storage peer;
	socklen_t peer_len; /* 0: not asked yet */
	struct httpd_peer who; /* from the peer hook at the handshake's end */
};

struct httpd {
	struct event_base *base;
	struct httpd_opts o;
	struct event *lev;    /* the listening socket; NULL once stopped */
	struct event *resume; /* accepting again after an accept error */
	const struct timeval *idle_tv; /* o.idle as a common timeout */
	const struct timeval *hs_tv;   /* o.handshake (at most o.idle), the same */
	struct event *flush_ev; /* NULL: replies are written at once */
	struct conn *flush;     /* replies to write when flush_ev runs */
	bool paused;
	bool stopping; /* every reply closes its connection */
	long open;
	struct conn *conns;
	struct conn *hs_first, *hs_last; /* connections in C_HANDSHAKE */
	time_t refused_logged;
	unsigned long refused[HTTPD_REFUSED_COUNT]; /* since the last log line */
};

static const struct timeval httpd_resume_tv = { 0, HTTPD_RESUME_MS * 1000 };
static const struct timeval httpd_now_tv = { 0, 0 };

static void conn_io(struct conn *c);

/* ------------------------------------------------------------ connections */

static void httpd_accept_again(struct httpd *h)
{
	if (h->paused && h->lev) {
		event_add(h->lev, NULL);
		h->paused = false;
	}
}

/* Counts a connection a limit closed; one warning now and then says how
 * many and why, never one per connection. */
static void httpd_refused(struct httpd *h, enum httpd_conn_refusal why)
{
	time_t now = time(NULL);

	if (h->o.hooks.conn_refused)
		h->o.hooks.conn_refused(h->o.hooks.arg, why);
	h->refused[why]++;
	if (now - h->refused_logged < HTTPD_REFUSED_LOG_S)
		return;
	log_warn("connections_refused",
		 "worker=%d per_address=%lu full=%lu anonymous=%lu evicted=%lu "
		 "handshake_timeout=%lu open=%ld",
		 h->o.worker, h->refused[HTTPD_REFUSED_PER_ADDRESS],
		 h->refused[HTTPD_REFUSED_FULL], h->refused[HTTPD_REFUSED_ANONYMOUS],
		 h->refused[HTTPD_REFUSED_EVICTED], h->refused[HTTPD_REFUSED_HANDSHAKE_TIMEOUT],
		 slots_open(h->o.slots));
	memset(h->refused, 0, sizeof h->refused);
	h->refused_logged = now;
}

/* A reset instead of FIN: no TIME_WAIT kept here for a connection we
 * refuse, and the client learns at once. */
static void httpd_reset_close(int fd)
{
	struct linger l = { 1, 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	close(fd);
}

static void conn_hs_unlink(struct conn *c)
{
	struct httpd *h = c->h;

	if (c->hprev)
		c->hprev->hnext = c->hnext;
	else if (h->hs_first == c)
		h->hs_first = c->hnext;
	else
		return; /* not in the list */
	if (c->hnext)
		c->hnext->hprev = c->hprev;
	else
		h->hs_last = c->hprev;
	c->hprev = c->hnext = NULL;
}

static void conn_unqueue(struct conn *c)
{
	if (!c->queued)
		return;
	if (c->fprev)
		c->fprev->fnext = c->fnext;
	else
		c->h->flush = c->fnext;
	if (c->fnext)
		c->fnext->fprev = c->fprev;
	c->fprev = c->fnext = NULL;
	c->queued = false;
}

/* Replies wait for the end of the loop turn and then go out together:
 * the client side (many lanes behind one NAT, or the load generator)
 * is woken once for the batch instead of once per reply, which costs
 * both sides less CPU than writing each at once. */
static void conn_queue(struct conn *c)
{
	struct httpd *h = c->h;

	if (c->queued)
		return;
	c->fprev = NULL;
	c->fnext = h->flush;
	if (h->flush)
		h->flush->fprev = c;
	h->flush = c;
	c->queued = true;
	event_active(h->flush_ev, EV_TIMEOUT, 1);
}

static void httpd_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpd *h = arg;

	(void)fd;
	(void)what;
	while (h->flush) {
		struct conn *c = h->flush;

		conn_unqueue(c);
		conn_io(c);
	}
}

/* Ends a streamed reply's source (its body is complete or abandoned). */
static void conn_fill_end(struct conn *c)
{
	void (*done)(void *) = c->fill_done;
	void *arg = c->fill_arg;

	c->fill = NULL;
	c->fill_done = NULL;
	c->fill_arg = NULL;
	if (done)
		done(arg);
}

static void conn_free(struct conn *c)
{
	struct httpd *h = c->h;

	conn_fill_end(c);
	conn_unqueue(c);
	conn_hs_unlink(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	event_free(c->rev);
	event_free(c->wev);
	event_free(c->deadline);
	event_free(c->again);
	SSL_free(c->ssl);
	if (c->reset)
		httpd_reset_close(c->fd);
	else
		close(c->fd);
	slots_release(h->o.slots, &c->addr, c->kind);
	free(c->in);
	free(c->out);
	free(c);
	h->open--;
	if (h->o.hooks.conn_count)
		h->o.hooks.conn_count(h->o.hooks.arg, -1);
	httpd_accept_again(h);
}

static void conn_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->st == C_HANDLER) {
		/* The client sent more, or closed, before its answer: nothing
		 * is read until the answer is out (conn_arm), and the level-
		 * triggered interest would wake the loop again and again. */
		event_del(c->rev);
		event_del(c->wev);
		c->armed = 0;
		return;
	}
	c->idle = false;
	conn_io(c);
}

static void conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->st == C_HANDLER)
		return;
	log_debug("connection_deadline", "worker=%d", c->h->o.worker);
	if (c->st == C_HANDSHAKE) {
		httpd_refused(c->h, HTTPD_REFUSED_HANDSHAKE_TIMEOUT);
		c->reset = true;
	}
	conn_free(c);
}

/* A connection for fd, which holds a SLOTS_HANDSHAKE slot for addr; on
 * failure the caller still owns both. */
static int conn_new(struct httpd *h, int fd, const struct slots_addr *addr)
{
	struct conn *c = calloc(1, sizeof *c);

	if (!c)
		return POS_ENOMEM;
	c->h = h;
	c->fd = fd;
	c->kind = SLOTS_HANDSHAKE;
	c->addr = *addr;
	c->req.c = c;
	c->ssl = h->o.ssl ? SSL_new(h->o.ssl) : NULL;
	c->rev = event_new(h->base, fd, EV_READ | EV_PERSIST, conn_ev_cb, c);
	c->wev = event_new(h->base, fd, EV_WRITE | EV_PERSIST, conn_ev_cb, c);
	c->deadline = evtimer_new(h->base, conn_deadline_cb, c);
	c->again = evtimer_new(h->base, conn_ev_cb, c);
	if ((h->o.ssl && (!c->ssl || SSL_set_fd(c->ssl, fd) != 1)) || !c->rev || !c->wev ||
	    !c->deadline || !c->again) {
		SSL_free(c->ssl);
		if (c->rev)
			event_free(c->rev);
		if (c->wev)
			event_free(c->wev);
		if (c->deadline)
			event_free(c->deadline);
		if (c->again)
			event_free(c->again);
		free(c);
		return POS_ENOMEM;
	}
	if (c->ssl)
		SSL_set_accept_state(c->ssl);
	c->st = C_HANDSHAKE;
	c->want = c->armed = EV_READ;
	event_add(c->rev, NULL);
	event_add(c->deadline, h->hs_tv);
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	c->hprev = h->hs_last;
	if (h->hs_last)
		h->hs_last->hnext = c;
	else
		h->hs_first = c;
	h->hs_last = c;
	h->open++;
	if (h->o.hooks.conn_count)
		h->o.hooks.conn_count(h->o.hooks.arg, 1);
	return 0;
}

static void httpd_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	httpd_accept_again(arg);
}

/* A slot for a connection from k: when every one is taken, this worker's
 * oldest handshake gives its own up (reset). 0, or the refusal. */
static int httpd_slot(struct httpd *h, const struct slots_addr *k)
{
	enum slots_verdict v = slots_take(h->o.slots, k);

	if (v == SLOTS_FULL && h->hs_first) {
		struct conn *old = h->hs_first;

		old->reset = true;
		conn_free(old);
		httpd_refused(h, HTTPD_REFUSED_EVICTED);
		v = slots_take(h->o.slots, k);
	}
	if (v == SLOTS_OK)
		return 0;
	httpd_refused(h, v == SLOTS_PER_ADDRESS ? HTTPD_REFUSED_PER_ADDRESS : HTTPD_REFUSED_FULL);
	return -1;
}

static void httpd_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct httpd *h = arg;

	(void)what;
	for (int i = 0; i < HTTPD_ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		struct slots_addr k;
		int fd;

		fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* Out of descriptors or memory: the socket stays readable,
			 * so a level-triggered listener would spin. Pause a while. */
			log_warn("accept_failed", "worker=%d error=%s", h->o.worker, strerror(errno));
			event_del(h->lev);
			h->paused = true;
			evtimer_add(h->resume, &httpd_resume_tv);
			return;
		}
		slots_addr_of(&k, (struct sockaddr *)&ss, sl);
		if (httpd_slot(h, &k) < 0) {
			httpd_reset_close(fd);
			continue;
		}
		if (conn_new(h, fd, &k) < 0) {
			log_warn("connection_dropped", "worker=%d reason=out of memory", h->o.worker);
			slots_release(h->o.slots, &k, SLOTS_HANDSHAKE);
			close(fd);
		}
	}
}

/* ------------------------------------------------------------ I/O */

/* SSL said no progress (r <= 0): wait for the socket, or the connection is
 * over. A client that drops TCP without close_notify (a lane powered off)
 * is normal, not an error to report. */
static enum step conn_ssl_wait(struct conn *c, int r)
{
	int err = SSL_get_error(c->ssl, r);

	if (err == SSL_ERROR_WANT_READ) {
		c->want = EV_READ;
		return WAIT;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		c->want = EV_WRITE;
		return WAIT;
	}
	if (err == SSL_ERROR_SSL && c->st == C_HANDSHAKE &&
	    ERR_GET_REASON(ERR_peek_last_error()) != SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		const char *why = ERR_reason_error_string(ERR_peek_last_error());

		/* The reason is OpenSSL's own text (no request bytes): what
		 * store IT needs to see a terminal's certificate refused. */
		log_info("tls_handshake_failed", "worker=%d reason=%s", c->h->o.worker,
			 why ? why : "unknown");
	}
	ERR_clear_error();
	c->st = C_DEAD;
	return STEP;
}

static enum step conn_refuse(struct conn *c, int status, const char *detail);

/* Without TLS (the fuzz harness): recv or send gave r <= 0. */
static enum step conn_plain_wait(struct conn *c, ssize_t r, short want)
{
	if (r < 0 && errno == EINTR)
		return STEP;
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		c->want = want;
		return WAIT;
	}
	c->st = C_DEAD;
	return STEP;
}

/* The handshake is done: the connection becomes a terminal's (its
 * certificate verified: OpenSSL fails a handshake whose certificate does
 * not) or an anonymous one, which the budget may have no room for. */
static enum step conn_established(struct conn *c)
{
	struct httpd *h = c->h;
	bool terminal = c->ssl && SSL_get0_peer_certificate(c->ssl) != NULL &&
			SSL_get_verify_result(c->ssl) == X509_V_OK;

	conn_hs_unlink(c);
	c->st = C_READ;
	event_add(c->deadline, h->idle_tv);
	if (h->o.hooks.peer)
		h->o.hooks.peer(h->o.hooks.arg, c->ssl, &c->who);
	if (!slots_established(h->o.slots, &c->addr, terminal)) {
		httpd_refused(h, HTTPD_REFUSED_ANONYMOUS);
		return conn_refuse(c, 503, "every connection slot for clients without a terminal "
					   "certificate is taken; retry later");
	}
	c->kind = terminal ? SLOTS_TERMINAL : SLOTS_ANONYMOUS;
	return STEP;
}

static enum step conn_handshake(struct conn *c)
{
	int r;

	if (!c->ssl)
		return conn_established(c);
	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1)
		return conn_established(c);
	return conn_ssl_wait(c, r);
}

/* Room for need bytes in the reply buffer (nothing points into it). */
static int conn_reserve(char **buf, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : HTTPD_OUT_START;
	char *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n = n > SIZE_MAX / 2 ? need : n * 2;
	p = realloc(*buf, n);
	if (!p)
		return POS_ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

/* Gives back a buffer one big message grew, keeping len bytes. */
static void conn_shrink(char **buf, size_t *cap, size_t len, size_t start)
{
	char *p;

	if (*cap <= HTTPD_KEEP_MAX || len > start)
		return;
	p = realloc(*buf, start);
	if (p) {
		*buf = p;
		*cap = start;
	}
}

static void httpd_put(char *out, size_t *n, const char *s, size_t len)
{
	memcpy(out + *n, s, len);
	*n += len;
}

static void httpd_puts(char *out, size_t *n, const char *s)
{
	httpd_put(out, n, s, strlen(s));
}

static void httpd_put_uint(char *out, size_t *n, size_t v)
{
	char d[24];
	size_t i = sizeof d;

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	httpd_put(out, n, d + i, sizeof d - i);
}

/* RFC 9110 IMF-fixdate, formatted once a second per thread. */
static const char *httpd_date(void)
{
	static __thread time_t last;
	static __thread char s[40];
	time_t now = time(NULL);
	struct tm tm;

	if (now != last && gmtime_r(&now, &tm)) {
		strftime(s, sizeof s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	return s;
}

/* What a closing connection may still read and drop, in bytes off the
 * socket: the rest of the body the client announced (it will send it
 * before it reads the answer; max_body when it announced none, as for a
 * refused chunked body), bounded, plus TLS records' overhead and a head's
 * worth. The client's close ends it sooner. */
static size_t conn_unread(const struct conn *c)
{
	const struct httpd *h = c->h;
	size_t declared = c->req.h.content_length ? c->req.h.content_length : h->o.max_body;

	if (declared > HTTPD_LINGER_MAX)
		declared = HTTPD_LINGER_MAX;
	return declared + declared / 64 + h->o.max_head + HTTPD_IN_START * 16;
}

static enum step conn_written(struct conn *c)
{
	struct httpd *h = c->h;
	size_t used;

	c->out_len = c->out_off = 0;
	conn_shrink(&c->out, &c->out_cap, 0, HTTPD_OUT_START);
	if (c->interim) {
		c->interim = false;
		c->st = C_READ;
		return STEP;
	}
	if (c->close_after) {
		/* close_notify, then FIN; the client reads the reply to its end,
		 * and the socket is closed once it closes too, so no unread byte
		 * of its makes our close a reset that would eat the reply. */
		if (c->ssl) {
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl);
			ERR_clear_error();
		}
		shutdown(c->fd, SHUT_WR);
		c->st = C_LINGER;
		c->linger_left = conn_unread(c);
		event_add(c->deadline, h->idle_tv);
		return STEP;
	}
	used = c->req.h.head_len + c->req.h.content_length;
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	conn_shrink(&c->in, &c->in_cap, c->in_len, HTTPD_IN_START);
	c->req.h.content_length = 0;
	c->scan = 0;
	c->head_parsed = c->continue_sent = false;
	c->st = C_READ;
	/* The next request is never read on from here: a client that keeps
	 * its socket full must not hold the worker. Bytes already here (a
	 * pipelined request, or records OpenSSL read ahead) are taken up on
	 * the next loop turn, after the other connections' events. */
	c->idle = true;
	if (c->in_len > 0 || (c->ssl && SSL_has_pending(c->ssl)))
		evtimer_add(c->again, &httpd_now_tv);
	event_add(c->deadline, h->idle_tv);
	return STEP;
}

static int conn_put(const void *buf, size_t len, void *arg)
{
	struct conn *c = arg;

	if (len > SIZE_MAX - c->out_len - 8 ||
	    conn_reserve(&c->out, &c->out_cap, c->out_len + len + 8) < 0)
		return POS_ENOMEM;
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
	return 0;
}

/* The next slice of a streamed body into out (empty, all written), framed
 * as a chunk; the last chunk when the source says the body is done. */
static int conn_fill(struct conn *c)
{
	size_t head = c->chunked ? HTTPD_CHUNK_HEAD : 0, body;
	int rc;

	c->out_off = 0;
	c->out_len = 0;
	if (conn_reserve(&c->out, &c->out_cap, HTTPD_STREAM_SLICE + head + 16) < 0)
		return POS_ENOMEM;
	c->out_len = head;
	rc = c->fill(c->fill_arg, HTTPD_STREAM_SLICE, conn_put, c);
	if (rc < 0)
		return rc;
	body = c->out_len - head;
	if (c->chunked) {
		static const char hex[] = "0123456789abcdef";

		if (body == 0) {
			c->out_len = 0; /* an empty chunk would end the body */
		} else {
			if (body > 0xffffffffu)
				return POS_ETOOBIG;
			for (int i = 0; i < 8; i++)
				c->out[i] = hex[(body >> (28 - 4 * i)) & 0xf];
			c->out[8] = '\r';
			c->out[9] = '\n';
			if (conn_put("\r\n", 2, c) < 0)
				return POS_ENOMEM;
		}
		if (rc == 0 && conn_put("0\r\n\r\n", 5, c) < 0)
			return POS_ENOMEM;
	}
	if (rc == 0)
		conn_fill_end(c);
	return 0;
}

/* Hands out to TLS, and a streamed body's slices after it. The deadline
 * counts from the client's last progress: whenever the socket fills after
 * bytes went, it starts again. A stream yields the worker after
 * HTTPD_STREAM_TURN bytes, resuming on the socket's next writability (the
 * next loop turn), so its other connections are served in between. */
/* Hands the kernel what it takes of the reply buffer, over TLS or (the
 * state-machine fuzzer's) plain socket: the bytes taken, or 0 and *step
 * saying what to wait for. */
static size_t conn_write_some(struct conn *c, enum step *step)
{
	size_t left = c->out_len - c->out_off;
	int n;

	if (!c->ssl) {
		ssize_t w = send(c->fd, c->out + c->out_off, left, MSG_NOSIGNAL);

		if (w > 0)
			return (size_t)w;
		*step = conn_plain_wait(c, w, EV_WRITE);
		return 0;
	}
	ERR_clear_error();
	n = SSL_write(c->ssl, c->out + c->out_off, left > INT_MAX ? INT_MAX : (int)left);
	if (n > 0)
		return (size_t)n;
	*step = conn_ssl_wait(c, n);
	return 0;
}

static enum step conn_flush(struct conn *c)
{
	size_t sent = 0;
	int fills = 0;

	for (;;) {
		while (c->out_off < c->out_len) {
			enum step st = STEP;
			size_t n = conn_write_some(c, &st);

			if (n == 0) {
				if (sent)
					event_add(c->deadline, c->h->idle_tv);
				return st;
			}
			c->out_off += n;
			sent += n;
		}
		if (!c->fill)
			break;
		if (sent >= HTTPD_STREAM_TURN || fills >= HTTPD_STREAM_FILLS) {
			/* Only progress moves the deadline: a source that yields
			 * nothing turn after turn still runs out of time. */
			if (sent)
				event_add(c->deadline, c->h->idle_tv);
			c->want = EV_WRITE;
			return WAIT;
		}
		fills++;
		if (conn_fill(c) < 0) {
			log_warn("reply_cut", "worker=%d reason=its source failed", c->h->o.worker);
			/* A reset, not a close: an HTTP/1.0 body ends with the
			 * connection, and a clean end would look complete. */
			c->reset = true;
			c->st = C_DEAD;
			return STEP;
		}
	}
	return conn_written(c);
}

static enum step conn_linger(struct conn *c)
{
	char drop[4096];

	for (;;) {
		ssize_t n = recv(c->fd, drop, sizeof drop, 0);

		if (n > 0 && (size_t)n < c->linger_left) {
			c->linger_left -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->want = EV_READ;
			return WAIT;
		}
		c->st = C_DEAD;
		return STEP;
	}
}

/* Answers a request the handler never sees, and closes after it. */
static enum step conn_refuse(struct conn *c, int status, const char *detail)
{
	struct httpd_refusal_reply r = { NULL, "", 0 };

	log_info("request_refused", "worker=%d status=%d detail=%s", c->h->o.worker, status,
		 detail);
	if (c->h->o.hooks.refusal)
		c->h->o.hooks.refusal(c->h->o.hooks.arg, status, detail, &r);
	c->req.h.method = HTTP1_OTHER;
	c->req.h.keep_alive = false;
	c->req.extra_len = 0;
	(void)httpd_add_header(&c->req, "Cache-Control", "no-store");
	if (status == 503)
		(void)httpd_add_header(&c->req, "Retry-After", "1");
	c->st = C_HANDLER;
	httpd_reply(&c->req, status, r.ctype, r.body, r.len <= sizeof r.body ? r.len : 0);
	return STEP;
}

static enum step conn_dispatch(struct conn *c)
{
	struct httpd *h = c->h;

	c->st = C_HANDLER;
	c->req.extra_len = 0;
	event_del(c->deadline);
	h->o.handler(&c->req, h->o.arg);
	return STEP;
}

/* Room in c->in for want bytes. Once the head is parsed the request
 * points into c->in, so a bigger buffer is a copy the request is moved to
 * before the old one goes. */
static int conn_grow_in(struct conn *c, size_t want)
{
	size_t cap = c->in_cap ? c->in_cap : HTTPD_IN_START;
	char *p;

	if (want <= c->in_cap)
		return 0;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	if (!(p = malloc(cap)))
		return POS_ENOMEM;
	if (c->in_len)
		memcpy(p, c->in, c->in_len);
	if (c->head_parsed)
		http1_relocate(&c->req.h, c->in, p);
	free(c->in);
	c->in = p;
	c->in_cap = cap;
	return 0;
}

/* The head, once it is all here: parsed in place. The body's room grows
 * as its bytes come, not at once from what Content-Length claims. */
static enum step conn_head(struct conn *c, size_t head_len)
{
	struct httpd *h = c->h;
	pos_err e = { 0 };
	int status;

	if (head_len > h->o.max_head)
		return conn_refuse(c, 431, "the request head is too large");
	if (http1_parse(c->in, head_len, h->o.max_body, &c->req.h, &status, &e) < 0)
		return conn_refuse(c, status, e.msg);
	c->head_parsed = true;
	return STEP;
}

static void conn_continue(struct conn *c)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	c->continue_sent = true;
	if (conn_reserve(&c->out, &c->out_cap, sizeof cont) < 0) {
		c->st = C_DEAD;
		return;
	}
	memcpy(c->out, cont, sizeof cont - 1);
	c->out_len = sizeof cont - 1;
	c->out_off = 0;
	c->interim = true;
	c->st = C_WRITE;
}

/* RFC 9112 2.2: empty lines before a request line are ignored (some
 * clients send CRLF after a body). */
static void conn_skip_blank_lines(struct conn *c)
{
	size_t n = 0;

	if (c->scan != 0)
		return;
	while (n < c->in_len && (c->in[n] == '\n' ||
				 (c->in[n] == '\r' && n + 1 < c->in_len && c->in[n + 1] == '\n')))
		n += c->in[n] == '\r' ? 2 : 1;
	if (n) {
		memmove(c->in, c->in + n, c->in_len - n);
		c->in_len -= n;
	}
}

static enum step conn_read(struct conn *c)
{
	struct httpd *h = c->h;
	size_t room;
	int n;

	if (!c->head_parsed) {
		size_t hl;

		conn_skip_blank_lines(c);
		hl = http1_head_end(c->in, c->in_len, &c->scan);
		if (hl)
			return conn_head(c, hl);
		if (c->in_len > h->o.max_head)
			return conn_refuse(c, 431, "the request head is too large");
	} else if (c->in_len >= c->req.h.head_len + c->req.h.content_length) {
		return conn_dispatch(c);
	} else if (c->req.h.expect_continue && !c->continue_sent) {
		conn_continue(c);
		return STEP;
	}
	if (c->idle) {
		c->idle = false;
		c->want = EV_READ;
		return WAIT;
	}
	if (c->in_len == c->in_cap) {
		size_t step = HTTPD_IN_START;

		if (c->head_parsed &&
		    c->req.h.head_len + c->req.h.content_length - c->in_len < step)
			step = c->req.h.head_len + c->req.h.content_length - c->in_len;
		if (conn_grow_in(c, c->in_len + step) < 0)
			return conn_refuse(c, 500, "out of memory");
	}
	room = c->in_cap - c->in_len;
	if (!c->ssl) {
		ssize_t r = recv(c->fd, c->in + c->in_len, room, 0);

		if (r <= 0)
			return conn_plain_wait(c, r, EV_READ);
		c->in_len += (size_t)r;
		return STEP;
	}
	ERR_clear_error();
	n = SSL_read(c->ssl, c->in + c->in_len, room > INT_MAX ? INT_MAX : (int)room);
	if (n <= 0)
		return conn_ssl_wait(c, n);
	c->in_len += (size_t)n;
	return STEP;
}

/* Registers the socket for what the state waits on, touching libevent
 * only on a change. While the handler has the request, read interest
 * stays as it was (dropping it and restoring it after the answer cost
 * two epoll_ctl a request); conn_ev_cb drops it if the socket wakes
 * meanwhile. */
static void conn_arm(struct conn *c)
{
	short want = c->st == C_HANDLER ? (short)(c->armed & EV_READ) : c->want;

	if ((want & EV_READ) != (c->armed & EV_READ)) {
		if (want & EV_READ)
			event_add(c->rev, NULL);
		else
			event_del(c->rev);
	}
	if ((want & EV_WRITE) != (c->armed & EV_WRITE)) {
		if (want & EV_WRITE)
			event_add(c->wev, NULL);
		else
			event_del(c->wev);
	}
	c->armed = want;
}

/* Runs the connection as far as it goes without waiting. */
static void conn_io(struct conn *c)
{
	enum step s = STEP;

	c->in_io = true;
	while (s == STEP) {
		switch (c->st) {
		case C_HANDSHAKE: s = conn_handshake(c); break;
		case C_READ: s = conn_read(c); break;
		case C_WRITE:
			if (c->queued) {
				/* Written later in this loop turn: interest stays as it
				 * is, since a del and an add of it would still cost an
				 * epoll_ctl. A wake-up meanwhile finds it queued. */
				c->want = c->armed;
				s = WAIT;
			} else {
				s = conn_flush(c);
			}
			break;
		case C_LINGER: s = conn_linger(c); break;
		case C_HANDLER:
		case C_DEAD: s = WAIT; break;
		}
	}
	c->in_io = false;
	if (c->st == C_DEAD)
		conn_free(c);
	else
		conn_arm(c);
}

/* ------------------------------------------------------------ requests */

enum http1_method httpd_method(const struct httpd_req *q)
{
	return q->h.method;
}

const char *httpd_method_name(const struct httpd_req *q)
{
	return http1_method_name(q->h.method);
}

const char *httpd_path(const struct httpd_req *q)
{
	return q->h.path ? q->h.path : "";
}

const struct httpd_peer *httpd_peer(struct httpd_req *q)
{
	struct httpd *h = q->c->h;

	if (h->o.hooks.peer_recheck)
		h->o.hooks.peer_recheck(h->o.hooks.arg, q->c->ssl, &q->c->who);
	return &q->c->who;
}

const char *httpd_bearer(const struct httpd_req *q, size_t *len)
{
	return http1_bearer(http1_header(&q->h, "Authorization"), len);
}

const char *httpd_query(const struct httpd_req *q)
{
	return q->h.query;
}

const char *httpd_header(const struct httpd_req *q, const char *name)
{
	return http1_header(&q->h, name);
}

const char *httpd_body(const struct httpd_req *q, size_t *len)
{
	*len = q->h.content_length;
	return q->c->in + q->h.head_len;
}

SSL *httpd_ssl(const struct httpd_req *q)
{
	return q->c->ssl;
}

int httpd_add_header(struct httpd_req *q, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);

	/* A CR or LF would end the header and start another. */
	if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
		return POS_EINVAL;
	if (q->extra_len + nl + vl + 4 > sizeof q->extra)
		return POS_ETOOBIG;
	httpd_put(q->extra, &q->extra_len, name, nl);
	httpd_put(q->extra, &q->extra_len, ": ", 2);
	httpd_put(q->extra, &q->extra_len, value, vl);
	httpd_put(q->extra, &q->extra_len, "\r\n", 2);
	return 0;
}

void httpd_reply(struct httpd_req *q, int status, const char *ctype, const void *body,
		 size_t len)
{
	struct conn *c = q->c;
	const char *reason = http1_reason(status);
	size_t n = 0, head_max;

	if (c->st != C_HANDLER)
		return;
	if (q->h.method == HTTP1_HEAD)
		body = NULL;
	/* Status line, Date, Content-Type, Content-Length, Connection: the
	 * fixed text below plus the variable parts. */
	head_max = 160 + strlen(reason) + (ctype ? strlen(ctype) : 0) + q->extra_len;
	if (conn_reserve(&c->out, &c->out_cap, head_max + (body ? len : 0)) < 0) {
		log_error("reply_failed", "worker=%d reason=out of memory", c->h->o.worker);
		c->st = C_DEAD;
		if (!c->in_io)
			conn_free(c);
		return;
	}
	c->close_after = !q->h.keep_alive || c->h->stopping;
	httpd_puts(c->out, &n, "HTTP/1.1 ");
	httpd_put_uint(c->out, &n, (size_t)status);
	httpd_puts(c->out, &n, " ");
	httpd_puts(c->out, &n, reason);
	httpd_puts(c->out, &n, "\r\nDate: ");
	httpd_puts(c->out, &n, httpd_date());
	if (ctype) {
		httpd_puts(c->out, &n, "\r\nContent-Type: ");
		httpd_puts(c->out, &n, ctype);
	}
	httpd_puts(c->out, &n, "\r\nContent-Length: ");
	httpd_put_uint(c->out, &n, len);
	httpd_puts(c->out, &n, "\r\n");
	httpd_put(c->out, &n, q->extra, q->extra_len);
	if (c->close_after)
		httpd_puts(c->out, &n, "Connection: close\r\n");
	else if (q->h.minor == 0)
		httpd_puts(c->out, &n, "Connection: keep-alive\r\n");
	httpd_puts(c->out, &n, "\r\n");
	if (body && len)
		httpd_put(c->out, &n, body, len);
	c->out_len = n;
	c->out_off = 0;
	c->st = C_WRITE;
	/* The client must take the reply within idle too. */
	event_add(c->deadline, c->h->idle_tv);
	if (c->h->flush_ev)
		conn_queue(c);
	if (!c->in_io)
		conn_io(c);
}

void httpd_reply_stream(struct httpd_req *q, int status, const char *ctype, httpd_fill fill,
			void (*done)(void *arg), void *arg)
{
	struct conn *c = q->c;
	const char *reason = http1_reason(status);
	size_t n = 0, head_max;

	if (c->st != C_HANDLER || !fill) {
		if (done)
			done(arg);
		return;
	}
	head_max = 200 + strlen(reason) + (ctype ? strlen(ctype) : 0) + q->extra_len;
	if (conn_reserve(&c->out, &c->out_cap, head_max) < 0) {
		log_error("reply_failed", "worker=%d reason=out of memory", c->h->o.worker);
		if (done)
			done(arg);
		c->st = C_DEAD;
		if (!c->in_io)
			conn_free(c);
		return;
	}
	/* HTTP/1.0 has no chunks: the body ends with the connection. */
	c->chunked = q->h.minor != 0;
	c->close_after = !q->h.keep_alive || c->h->stopping || !c->chunked;
	httpd_puts(c->out, &n, "HTTP/1.1 ");
	httpd_put_uint(c->out, &n, (size_t)status);
	httpd_puts(c->out, &n, " ");
	httpd_puts(c->out, &n, reason);
	httpd_puts(c->out, &n, "\r\nDate: ");
	httpd_puts(c->out, &n, httpd_date());
	if (ctype) {
		httpd_puts(c->out, &n, "\r\nContent-Type: ");
		httpd_puts(c->out, &n, ctype);
	}
	httpd_puts(c->out, &n, "\r\n");
	if (c->chunked)
		httpd_puts(c->out, &n, "Transfer-Encoding: chunked\r\n");
	httpd_put(c->out, &n, q->extra, q->extra_len);
	if (c->close_after)
		httpd_puts(c->out, &n, "Connection: close\r\n");
	httpd_puts(c->out, &n, "\r\n");
	c->out_len = n;
	c->out_off = 0;
	if (q->h.method == HTTP1_HEAD) {
		if (done)
			done(arg);
	} else {
		c->fill = fill;
		c->fill_done = done;
		c->fill_arg = arg;
	}
	c->st = C_WRITE;
	event_add(c->deadline, c->h->idle_tv);
	if (c->h->flush_ev)
		conn_queue(c);
	if (!c->in_io)
		conn_io(c);
}

/* ------------------------------------------------------------ lifetime */

int httpd_new(struct event_base *base, const struct httpd_opts *o, struct httpd **out,
	      pos_err *e)
{
	struct httpd *h = calloc(1, sizeof *h);

	*out = NULL;
	if (!h || !o->slots) {
		free(h);
		close(o->fd);
		return h ? err_set(e, POS_EINVAL, "worker %d: no connection budget", o->worker)
			 : err_set(e, POS_ENOMEM, "worker %d: out of memory", o->worker);
	}
	h->base = base;
	h->o = *o;
	h->idle_tv = event_base_init_common_timeout(base, &o->idle);
	h->hs_tv = event_base_init_common_timeout(
		base, timercmp(&o->handshake, &o->idle, <) ? &o->handshake : &o->idle);
	h->lev = event_new(base, o->fd, EV_READ | EV_PERSIST, httpd_accept_cb, h);
	h->resume = evtimer_new(base, httpd_resume_cb, h);
	if (o->flush_priority >= 0 &&
	    (!(h->flush_ev = event_new(base, -1, 0, httpd_flush_cb, h)) ||
	     event_priority_set(h->flush_ev, o->flush_priority) != 0)) {
		httpd_free(h);
		return err_set(e, POS_ENOMEM, "worker %d: cannot make the reply event", o->worker);
	}
	if (!h->idle_tv || !h->hs_tv || !h->lev || !h->resume || event_add(h->lev, NULL) != 0) {
		httpd_free(h);
		return err_set(e, POS_ENOMEM, "worker %d: cannot accept on its socket", o->worker);
	}
	*out = h;
	return 0;
}

void httpd_stop_accepting(struct httpd *h)
{
	if (!h)
		return;
	/* Answers from now on close their connections, so keep-alive clients
	 * cannot hold a stopping server. */
	h->stopping = true;
	if (!h->lev)
		return;
	event_free(h->lev);
	h->lev = NULL;
	close(h->o.fd);
	h->o.fd = -1;
}

size_t httpd_writing(const struct httpd *h)
{
	size_t n = 0;

	for (const struct conn *c = h ? h->conns : NULL; c; c = c->next)
		if (c->st == C_WRITE)
			n++;
	return n;
}

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	while (h->conns)
		conn_free(h->conns);
	httpd_stop_accepting(h);
	if (h->o.fd >= 0)
		close(h->o.fd);
	if (h->resume)
		event_free(h->resume);
	if (h->flush_ev)
		event_free(h->flush_ev);
	free(h);
}

const struct sockaddr *httpd_peer_addr(struct httpd_req *q, socklen_t *len)
{
	struct conn *c = q->c;

	if (c->peer_len == 0) {
		socklen_t n = sizeof c->peer;

		if (getpeername(c->fd, (struct sockaddr *)&c->peer, &n) != 0 || n == 0 ||
		    n > sizeof c->peer)
			return NULL;
		c->peer_len = n;
	}
	*len = c->peer_len;
	return (const struct sockaddr *)&c->peer;
}
