/* Drives central's httpd as a connection state machine, without TLS
 * (httpd_opts.ssl = NULL), over unix stream sockets: the input is a script
 * of client writes in pieces of any size (pipelining, splits anywhere),
 * loop turns, client reads of any size (so replies are written partly and
 * wait for the socket), half and full closes, and a second connection; the
 * handler answers at once or after some loop turns, with bodies from
 * nothing to larger than the socket buffer. Checks beyond "no crash" under
 * ASan:
 *   - the handler sees a path starting with '/' and a body within max_body;
 *   - what a client reads is a sequence of well-formed replies: a status
 *     line, Content-Length (the body's length, none for HEAD or 100), the
 *     handler's replies in request order, and nothing after one that said
 *     Connection: close;
 *   - a reply header with CR or LF is refused, and the extra headers stop
 *     at their bound;
 *   - every connection slot is given back once the httpd is freed;
 *   - in runs whose client sends only well-formed requests (split
 *     anywhere), the first connection gets exactly one reply for each
 *     request it sent whole, unless something closed it. */
#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"
#include "slots.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FZ_CLIENTS 2
#define FZ_PENDING 8
#define FZ_SEQ_MAX 4096
#define FZ_BIG 300000 /* over a unix socket's buffer: the reply waits */
#define FZ_RBUF (FZ_BIG + 65536)
#define FZ_END_TURNS 64
#define FZ_QUEUE 4096

/* Well-formed requests under the smallest max_head (64). */
static const char *const fz_templates[] = {
	"GET /v1/health HTTP/1.1\r\nHost: c\r\n\r\n",
	"POST /v1/resolve HTTP/1.1\r\nHost: c\r\nContent-Length: 11\r\n\r\n{\"txn\":\"x\"}",
	"HEAD /metrics HTTP/1.1\r\nHost: c\r\n\r\n",
	"\r\nGET /v1/health?a=1 HTTP/1.1\r\nHost: c\r\n\r\n",
};
#define FZ_NTEMPLATES (sizeof fz_templates / sizeof fz_templates[0])

struct fz_client {
	int fd; /* -1: none or closed */
	bool wrote_closed; /* shut down for writing */
	bool saw_close;    /* a reply said Connection: close */
	bool broken;       /* closed by us, or reset, or a send failed */
	long last_seq;
	long replies;      /* whole replies read, 100 Continue aside */
	long sent;         /* whole template requests sent */
	char queue[FZ_QUEUE]; /* template bytes not sent yet */
	size_t qlen;
	size_t ends[64];      /* queue offsets where a request ends */
	size_t nends;
	char *buf; /* bytes read and not yet parsed as a whole reply */
	size_t len;
};

struct fz_pending {
	struct httpd_req *q;
	int turns;
	uint8_t how;
};

struct fz {
	const uint8_t *d;
	size_t size, pos;
	struct event_base *base;
	struct httpd *h;
	struct slots *slots;
	size_t max_body;
	bool finishing; /* the script is over: the handler answers at once */
	bool templates; /* clients send only fz_templates, split anywhere */
	struct fz_client cl[FZ_CLIENTS];
	struct fz_pending pend[FZ_PENDING];
	size_t npend;
	long seq;
	bool head[FZ_SEQ_MAX];   /* reply seq answered a HEAD */
	size_t length[FZ_SEQ_MAX]; /* its body's length */
	struct sockaddr_un addr;
	socklen_t addrlen;
};

static char fz_body[FZ_BIG];

static uint8_t fz_take(struct fz *f)
{
	return f->pos < f->size ? f->d[f->pos++] : 0;
}

/* ------------------------------------------------------------ handler */

static void fz_reply(struct fz *f, struct httpd_req *q, uint8_t how)
{
	static const int statuses[] = { 200, 201, 400, 404, 409, 503, 299 };
	static const size_t sizes[] = { 0, 1, 17, 4000, FZ_BIG };
	size_t len = sizes[(how >> 3) % 5];
	char v[24];
	long seq = f->seq++;

	if (seq >= FZ_SEQ_MAX)
		abort();
	if (httpd_add_header(q, "X-Bad\r\nInjected", "1") != POS_EINVAL ||
	    httpd_add_header(q, "X-Bad", "a\r\nInjected: 1") != POS_EINVAL ||
	    httpd_add_header(q, "X-Bad:", "1") != POS_EINVAL)
		abort();
	snprintf(v, sizeof v, "%ld", seq);
	if (httpd_add_header(q, "X-Fuzz", v) != 0)
		abort();
	if (how & 0x80) {
		/* Extra headers stop at their bound, never overflow it. */
		int n = 0, rc;

		while ((rc = httpd_add_header(q, "X-Pad", "0123456789012345678901234567890123456789")) ==
		       0)
			if (++n > 64)
				abort();
		if (rc != POS_ETOOBIG)
			abort();
	}
	f->head[seq] = httpd_method(q) == HTTP1_HEAD;
	f->length[seq] = len;
	httpd_reply(q, statuses[how % 7], (how & 0x40) ? NULL : "application/json", fz_body, len);
}

/* The application's refusal: JSON, as central's. */
static void fz_refusal(void *arg, int status, const char *detail, struct httpd_refusal_reply *out)
{
	int n = snprintf(out->body, sizeof out->body, "{\"error\":\"x\",\"detail\":\"%s\"}",
			 detail);

	(void)arg;
	(void)status;
	out->ctype = "application/json";
	out->len = n > 0 && (size_t)n < sizeof out->body ? (size_t)n : 0;
}

static void fz_handler(struct httpd_req *q, void *arg)
{
	struct fz *f = arg;
	const char *path = httpd_path(q), *body;
	size_t len;
	unsigned sum = 0;
	uint8_t how;

	body = httpd_body(q, &len);
	if (path[0] != '/' || len > f->max_body || !httpd_method_name(q) || httpd_ssl(q))
		abort();
	for (size_t i = 0; i < len; i++)
		sum += (unsigned char)body[i];
	(void)sum;
	(void)httpd_header(q, "Host");
	(void)httpd_query(q);
	how = fz_take(f);
	if (f->finishing || f->npend == FZ_PENDING || (how & 3) == 0) {
		fz_reply(f, q, fz_take(f));
		return;
	}
	f->pend[f->npend].q = q;
	f->pend[f->npend].turns = (how >> 2) & 7;
	f->pend[f->npend].how = fz_take(f);
	f->npend++;
}

/* The answers that waited their turns go out, as the writer's would. */
static void fz_tick(struct fz *f, bool all)
{
	for (size_t i = 0; i < f->npend;) {
		if (all || f->pend[i].turns-- <= 0) {
			struct fz_pending p = f->pend[i];

			f->pend[i] = f->pend[--f->npend];
			fz_reply(f, p.q, p.how);
		} else {
			i++;
		}
	}
}

static void fz_turn(struct fz *f)
{
	fz_tick(f, f->finishing);
	/* One turn: what is ready now runs, and what it makes ready (a
	 * pipelined request's wake-up) waits for the next. */
	event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

/* ------------------------------------------------------------ client */

static const char *fz_find(const char *hay, size_t n, const char *needle)
{
	return memmem(hay, n, needle, strlen(needle));
}

/* The value of header name (with its ": ") in head[0..n), or NULL. */
static const char *fz_header(const char *head, size_t n, const char *name)
{
	const char *p = fz_find(head, n, name);

	return p ? p + strlen(name) : NULL;
}

/* Takes every whole reply off the front of c->buf, checking each. */
static void fz_parse(struct fz *f, struct fz_client *c)
{
	for (;;) {
		const char *end = fz_find(c->buf, c->len, "\r\n\r\n"), *cl, *sq;
		size_t head, body = 0;
		long seq = -1;
		int status;

		if (!end)
			return;
		head = (size_t)(end - c->buf) + 4;
		if (c->saw_close || c->len < 13 || memcmp(c->buf, "HTTP/1.1 ", 9) != 0 ||
		    sscanf(c->buf + 9, "%3d", &status) != 1 || status < 100 || status > 599)
			abort();
		cl = fz_header(c->buf, head, "\r\nContent-Length: ");
		sq = fz_header(c->buf, head, "\r\nX-Fuzz: ");
		if (status != 100) {
			if (!cl)
				abort();
			body = strtoul(cl, NULL, 10);
		}
		if (sq) {
			seq = strtol(sq, NULL, 10);
			if (seq <= c->last_seq || seq >= f->seq || body != f->length[seq])
				abort();
			if (f->head[seq])
				body = 0;
		}
		if (c->len < head + body)
			return;
		if (sq)
			c->last_seq = seq;
		if (fz_header(c->buf, head, "\r\nConnection: close"))
			c->saw_close = true;
		if (status != 100)
			c->replies++;
		/* A refusal before the handler is JSON. */
		if (!sq && status != 100 && status >= 400 && body > 0 &&
		    (body < 10 || memcmp(c->buf + head, "{\"error\":", 9) != 0))
			abort();
		memmove(c->buf, c->buf + head + body, c->len - head - body);
		c->len -= head + body;
	}
}

static void fz_read(struct fz *f, struct fz_client *c, size_t max)
{
	while (c->fd >= 0 && max > 0) {
		size_t room = FZ_RBUF - c->len;
		ssize_t n;

		if (room == 0)
			abort(); /* a reply bigger than any the handler makes */
		n = recv(c->fd, c->buf + c->len, room < max ? room : max, MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			c->broken = true;
		if (n <= 0)
			return;
		c->len += (size_t)n;
		max -= (size_t)n;
		fz_parse(f, c);
	}
}

static void fz_connect(struct fz *f, struct fz_client *c)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&f->addr, f->addrlen) != 0 && errno != EINPROGRESS &&
	    errno != EAGAIN) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->wrote_closed = c->saw_close = false;
	c->last_seq = -1;
	c->len = c->qlen = c->nends = 0;
	c->replies = c->sent = 0;
}

static void fz_close(struct fz_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->broken = true;
}

/* Sends up to n queued template bytes, counting the requests that left
 * whole. */
static void fz_send_queue(struct fz_client *c, size_t n)
{
	ssize_t w;
	size_t k = 0;

	if (c->fd < 0 || c->wrote_closed || c->qlen == 0)
		return;
	w = send(c->fd, c->queue, n < c->qlen ? n : c->qlen, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			c->broken = true;
		return;
	}
	while (k < c->nends && c->ends[k] <= (size_t)w)
		k++;
	c->sent += (long)k;
	memmove(c->ends, c->ends + k, (c->nends - k) * sizeof c->ends[0]);
	c->nends -= k;
	for (size_t i = 0; i < c->nends; i++)
		c->ends[i] -= (size_t)w;
	memmove(c->queue, c->queue + w, c->qlen - (size_t)w);
	c->qlen -= (size_t)w;
}

/* Queues a template request (when it fits) and sends a piece of the queue. */
static void fz_send_template(struct fz *f, struct fz_client *c)
{
	const char *t = fz_templates[fz_take(f) % FZ_NTEMPLATES];
	size_t tl = strlen(t), n = (size_t)fz_take(f) + 1;

	if (c->qlen + tl <= FZ_QUEUE && c->nends < sizeof c->ends / sizeof c->ends[0]) {
		memcpy(c->queue + c->qlen, t, tl);
		c->qlen += tl;
		c->ends[c->nends++] = c->qlen;
	}
	fz_send_queue(c, n);
}

/* ------------------------------------------------------------ one run */

static int fz_listen(struct fz *f)
{
	static unsigned long n;
	struct sockaddr_un *un = &f->addr;
	int fd, len;

	memset(un, 0, sizeof *un);
	un->sun_family = AF_UNIX;
	/* Abstract namespace: nothing on disk, gone with the socket. */
	len = snprintf(un->sun_path + 1, sizeof un->sun_path - 1, "pos-fuzz-httpd-%d-%lu",
		       (int)getpid(), n++);
	f->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		abort();
	if (bind(fd, (struct sockaddr *)un, f->addrlen) != 0 || listen(fd, 8) != 0)
		abort();
	return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz_httpd", LOG_LVL_ERROR, 0);
	memset(fz_body, 'x', sizeof fz_body);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t heads[] = { 64, 200, 1024, 4096 };
	static const size_t bodies[] = { 0, 16, 1000, 8192 };
	struct fz *f = calloc(1, sizeof *f);
	struct slots_opts so = { 4, 0, 4 };
	struct httpd_opts o = { 0 };
	pos_err e = { 0 };
	uint8_t cfg;

	if (!f)
		abort();
	f->d = data;
	f->size = size;
	cfg = fz_take(f);
	f->templates = cfg & 0x20;
	for (int i = 0; i < FZ_CLIENTS; i++) {
		f->cl[i].fd = -1;
		if (!(f->cl[i].buf = malloc(FZ_RBUF)))
			abort();
	}
	/* Some runs keep a slot from anonymous clients: the second
	 * connection is then answered 503 and closed. */
	so.reserved = (cfg & 0x40) ? 3 : 0;
	if (slots_new(&so, &f->slots, &e) != 0 || !(f->base = event_base_new()) ||
	    event_base_priority_init(f->base, 3) != 0)
		abort();
	o.fd = fz_listen(f);
	o.ssl = NULL;
	o.slots = f->slots;
	o.handshake.tv_sec = 60;
	o.idle.tv_sec = 60;
	o.max_head = heads[cfg & 3];
	o.max_body = f->max_body = bodies[(cfg >> 2) & 3];
	o.handler = fz_handler;
	o.hooks.refusal = fz_refusal;
	o.arg = f;
	o.flush_priority = (cfg & 0x10) ? -1 : 1;
	if (httpd_new(f->base, &o, &f->h, &e) != 0)
		abort();
	fz_connect(f, &f->cl[0]);

	while (f->pos < f->size) {
		uint8_t op = fz_take(f);
		struct fz_client *c = &f->cl[(op >> 7) & 1];

		switch (op % 6) {
		case 0:
		case 1: { /* the client writes a piece of the script */
			size_t n;

			if (f->templates) {
				fz_send_template(f, c);
				break;
			}
			n = (size_t)fz_take(f) + 1;
			if (n > f->size - f->pos)
				n = f->size - f->pos;
			if (c->fd >= 0 && !c->wrote_closed)
				(void)send(c->fd, f->d + f->pos, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			f->pos += n;
			break;
		}
		case 2:
			for (int i = 0; i <= ((op >> 3) & 3); i++)
				fz_turn(f);
			break;
		case 3:
			fz_read(f, c, ((size_t)fz_take(f) + 1) * 256);
			break;
		case 4:
			if (op & 0x40) {
				fz_close(c);
			} else if (c->fd >= 0) {
				shutdown(c->fd, SHUT_WR);
				c->wrote_closed = true;
			}
			break;
		case 5:
			if (c->fd < 0)
				fz_connect(f, c);
			break;
		}
	}

	/* The end: every answer goes out and the clients read it all. */
	f->finishing = true;
	for (int t = 0; t < FZ_END_TURNS; t++) {
		for (int i = 0; i < FZ_CLIENTS; i++)
			fz_send_queue(&f->cl[i], FZ_QUEUE);
		fz_turn(f);
		for (int i = 0; i < FZ_CLIENTS; i++)
			fz_read(f, &f->cl[i], FZ_RBUF);
	}
	/* Every request sent whole was answered, in order: none lost or
	 * stuck behind a pipelined neighbour. */
	if (f->templates && !f->cl[0].broken && !f->cl[0].saw_close && f->cl[0].qlen == 0 &&
	    f->cl[0].replies != f->cl[0].sent)
		abort();
	for (int i = 0; i < FZ_CLIENTS; i++)
		fz_close(&f->cl[i]);
	for (int t = 0; t < 4; t++)
		fz_turn(f);
	if (f->npend)
		abort();
	httpd_free(f->h);
	if (slots_open(f->slots) != 0 || slots_anonymous(f->slots) != 0)
		abort();
	slots_free(f->slots);
	event_base_free(f->base);
	for (int i = 0; i < FZ_CLIENTS; i++)
		free(f->cl[i].buf);
	free(f);
	return 0;
}
