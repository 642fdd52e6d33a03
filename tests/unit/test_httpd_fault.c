/* httpd under allocation failure, as curl's torture mode runs it: the n-th
 * allocation of httpd (malloc, calloc, realloc, libevent's event_new) fails,
 * once or from then on, for n = 1, 2, ... until a whole exchange runs
 * through without reaching n. The exchange: httpd_new, a client that
 * pipelines three requests (one with a body larger than a first read), a
 * handler that answers each with a body larger than a first write, then
 * the close. Each time: no crash, no leak (make asan), every reply the
 * client got is whole and in order, a connection that failed is closed
 * rather than left hanging, and afterwards, with allocations working
 * again, the same httpd serves a new connection and gives back every slot.
 * Plain sockets (httpd_opts.ssl = NULL), as the state-machine fuzzer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"
#include "slots.h"

/* ------------------------------------------------------------ the faults */

static struct {
	long at; /* 0: disarmed */
	bool sticky;
	long calls;
	bool fired;
} fault;

static bool fault_hit(void)
{
	if (fault.at == 0)
		return false;
	fault.calls++;
	if (fault.calls == fault.at || (fault.sticky && fault.calls > fault.at)) {
		fault.fired = true;
		return true;
	}
	return false;
}

void *__real_malloc(size_t);
void *__real_calloc(size_t, size_t);
void *__real_realloc(void *, size_t);
struct event *__real_event_new(struct event_base *, evutil_socket_t, short, event_callback_fn,
			       void *);
void *__wrap_malloc(size_t);
void *__wrap_calloc(size_t, size_t);
void *__wrap_realloc(void *, size_t);
struct event *__wrap_event_new(struct event_base *, evutil_socket_t, short, event_callback_fn,
			       void *);

void *__wrap_malloc(size_t n)
{
	return fault_hit() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
	return fault_hit() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
	return fault_hit() ? NULL : __real_realloc(p, n);
}

struct event *__wrap_event_new(struct event_base *b, evutil_socket_t fd, short what,
			       event_callback_fn cb, void *arg)
{
	return fault_hit() ? NULL : __real_event_new(b, fd, what, cb, arg);
}

/* ----------------------------------------------------------- the exchange */

#define BODY_IN 9000   /* a request body: more than one read takes */
#define BODY_OUT 70000 /* a reply: more than a unix socket takes at once */
#define NREQ 3

static char body_out[BODY_OUT];

struct world {
	struct event_base *base;
	struct slots *slots;
	struct httpd *h;
	struct sockaddr_un addr;
	socklen_t addrlen;
	long handled;
};

static void handler(struct httpd_req *q, void *arg)
{
	struct world *w = arg;
	size_t len;

	(void)httpd_body(q, &len);
	w->handled++;
	(void)httpd_add_header(q, "X-Seq", httpd_path(q) + 1);
	httpd_reply(q, 200, "text/plain", body_out, sizeof body_out);
}

static int listen_fd(struct world *w)
{
	static unsigned long n;
	int fd, len;

	memset(&w->addr, 0, sizeof w->addr);
	w->addr.sun_family = AF_UNIX;
	len = snprintf(w->addr.sun_path + 1, sizeof w->addr.sun_path - 1,
		       "pos-httpd-fault-%d-%lu", (int)getpid(), n++);
	w->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&w->addr, w->addrlen), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

static int world_start(struct world *w, pos_err *e)
{
	struct httpd_opts o = { 0 };

	o.fd = listen_fd(w);
	o.slots = w->slots;
	o.handshake.tv_sec = 30;
	o.idle.tv_sec = 30;
	o.max_head = 4096;
	o.max_body = 16384;
	o.handler = handler;
	o.arg = w;
	o.flush_priority = -1;
	return httpd_new(w->base, &o, &w->h, e);
}

/* The client's side of one connection: sends the pipelined requests, reads
 * what comes until NREQ replies or the end of the connection. */
struct client {
	int fd;
	char *in;
	size_t len;
	int replies;
	bool closed;
};

static void client_send_all(int fd)
{
	static char req[NREQ * 256 + BODY_IN];
	size_t n = 0, off = 0;

	n += (size_t)snprintf(req + n, sizeof req - n, "GET /1 HTTP/1.1\r\nHost: c\r\n\r\n");
	n += (size_t)snprintf(req + n, sizeof req - n,
			      "POST /2 HTTP/1.1\r\nHost: c\r\nContent-Length: %d\r\n\r\n", BODY_IN);
	memset(req + n, 'b', BODY_IN);
	n += BODY_IN;
	n += (size_t)snprintf(req + n, sizeof req - n, "GET /3 HTTP/1.1\r\nHost: c\r\n\r\n");
	while (off < n) {
		ssize_t r = send(fd, req + off, n - off, MSG_NOSIGNAL);
		if (r <= 0)
			return; /* the server closed: the checks below see it */
		off += (size_t)r;
	}
}

/* Counts the whole replies at the start of in[0..len): each must be a 200
 * with the right Content-Length and X-Seq in order. */
static int whole_replies(const char *in, size_t len)
{
	int k = 0;
	size_t off = 0;

	while (off < len) {
		const char *head = in + off, *end = memmem(head, len - off, "\r\n\r\n", 4);
		char want[32];
		size_t hlen;

		if (!end)
			break;
		hlen = (size_t)(end - head) + 4;
		if (off + hlen + BODY_OUT > len)
			break;
		assert_memory_equal(head, "HTTP/1.1 200 ", 13);
		snprintf(want, sizeof want, "X-Seq: %d\r\n", k + 1);
		assert_non_null(memmem(head, hlen, want, strlen(want)));
		snprintf(want, sizeof want, "Content-Length: %d\r\n", BODY_OUT);
		assert_non_null(memmem(head, hlen, want, strlen(want)));
		off += hlen + BODY_OUT;
		k++;
	}
	return k;
}

static void client_exchange(struct world *w, struct client *c)
{
	struct timeval tv = { 0, 2000 };

	memset(c, 0, sizeof *c);
	c->in = __real_malloc(NREQ * (BODY_OUT + 512)); /* not counted as httpd's */
	assert_non_null(c->in);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&w->addr, w->addrlen), 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	/* Sends in between loop turns so that a large body waits on both sides. */
	for (int turn = 0; turn < 2000 && !c->closed && c->replies < NREQ; turn++) {
		ssize_t r;

		if (turn == 1)
			client_send_all(c->fd);
		event_base_loop(w->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		r = recv(c->fd, c->in + c->len, NREQ * (BODY_OUT + 512) - c->len, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			c->closed = true;
		else if (r > 0)
			c->len += (size_t)r;
		c->replies = whole_replies(c->in, c->len);
	}
}

static void client_close(struct client *c)
{
	close(c->fd);
	free(c->in);
}

/* One exchange with the fault armed at (at, sticky); *fired: reached. */
static void run_once(long at, bool sticky, bool *fired)
{
	struct world w = { 0 };
	struct slots_opts so = { 8, 0, 8 };
	struct client c;
	pos_err e = { 0 };
	int rc;

	assert_int_equal(slots_new(&so, &w.slots, &e), 0);
	w.base = event_base_new();
	assert_non_null(w.base);
	fault.at = at;
	fault.sticky = sticky;
	fault.calls = 0;
	fault.fired = false;
	rc = world_start(&w, &e);
	if (rc == 0) {
		client_exchange(&w, &c);
		/* Failure or not, the client either has all its replies or its
		 * connection ended: never a connection left waiting forever. */
		assert_true(c.replies == NREQ || c.closed);
		client_close(&c);
	} else {
		assert_null(w.h);
		assert_true(e.msg[0] != '\0');
	}
	*fired = fault.fired;
	fault.at = 0;
	if (rc == 0) {
		/* Allocations work again: the same httpd serves a new client. */
		client_exchange(&w, &c);
		assert_int_equal(c.replies, NREQ);
		client_close(&c);
		for (int t = 0; t < 8; t++)
			event_base_loop(w.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		httpd_free(w.h);
	}
	assert_int_equal(slots_open(w.slots), 0);
	slots_free(w.slots);
	event_base_free(w.base);
}

static void sweep(bool sticky)
{
	long at;

	for (at = 1; at < 2000; at++) {
		bool fired = false;

		run_once(at, sticky, &fired);
		if (!fired)
			break;
	}
	print_message("# %s: %ld failure points\n", sticky ? "every allocation from the n-th" :
							     "the n-th allocation",
		      at - 1);
	assert_true(at > 2 && at < 2000);
}

static void an_exchange_survives_the_nth_allocation_failing(void **st)
{
	(void)st;
	sweep(false);
}

static void an_exchange_survives_allocations_failing_from_the_nth_on(void **st)
{
	(void)st;
	sweep(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_exchange_survives_the_nth_allocation_failing),
		cmocka_unit_test(an_exchange_survives_allocations_failing_from_the_nth_on),
	};

	log_init("test_httpd_fault", LOG_LVL_ERROR, 0);
	memset(body_out, 'r', sizeof body_out);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
