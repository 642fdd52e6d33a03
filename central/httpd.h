#ifndef POS_HTTPD_H
#define POS_HTTPD_H
/*
 * central's HTTP/1.1 server over TLS, one struct httpd per worker thread on
 * that worker's event_base and listening socket. It accepts, runs the TLS
 * handshake, reads whole requests (head through http1, body by
 * Content-Length) and hands each to the handler; the handler answers at
 * once or later (baskets wait for the writer) with httpd_reply. One
 * request per connection at a time, keep-alive and pipelining included.
 *
 * Why not evhttp over bufferevent_openssl: a request cost twice the
 * CPU there (docs/performance.md). Here a usual request is one SSL_read,
 * one parse in place, one SSL_write of one record, and no allocation.
 *
 * Deadlines: the TLS handshake must end within handshake (or idle, if
 * shorter) from accept, a whole request must arrive within idle from the
 * handshake or from the previous reply, and a reply must keep moving: the
 * client has to take some of it within every idle (a slowloris client
 * cannot hold a connection, a slow but steady reader of a long reply is
 * not cut off).
 *
 * Connection slots come from one budget (slots.h) shared by every worker.
 * A new connection over its address's cap is reset at once. When every
 * slot is taken, the worker's oldest connection still in its handshake is
 * reset to make room (a flood of raw TCP connections cannot keep a lane
 * out), or, with none, the new one is. A connection without a client
 * certificate past the budget's anonymous share is answered 503 and
 * closed, so terminals always find their reserve. Each refusal goes to
 * the application's conn_refused hook.
 *
 * Requests the server refuses before the handler (bad head,
 * a body over max_body, ...) get the body the application's refusal hook
 * makes, and the connection closes after the rest of their body is read
 * and dropped, so the client sees the answer rather than a reset.
 *
 * The httpd knows nothing of the application: what it counts and how its
 * errors read come through struct httpd_hooks.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <openssl/ssl.h>

#include "err.h"
#include "http1.h"
#include "slots.h"

struct event_base;
struct httpd;
struct httpd_req;

/* Owned by the httpd: valid from the handler's call until httpd_reply. */
typedef void (*httpd_handler)(struct httpd_req *q, void *arg);

/* Why the httpd closed a connection on its own. */
enum httpd_conn_refusal {
	HTTPD_REFUSED_PER_ADDRESS = 0, /* the address's connection cap */
	HTTPD_REFUSED_FULL,            /* every slot taken, no handshake to evict */
	HTTPD_REFUSED_ANONYMOUS,       /* no client certificate, past the reserve */
	HTTPD_REFUSED_EVICTED,         /* a handshake closed to make room */
	HTTPD_REFUSED_HANDSHAKE_TIMEOUT,
	HTTPD_REFUSED_COUNT
};

/* The answer to a request refused before the handler, which the
 * application's refusal hook fills. */
#define HTTPD_REFUSAL_MAX 384
struct httpd_refusal_reply {
	const char *ctype; /* static; NULL: no Content-Type */
	char body[HTTPD_REFUSAL_MAX];
	size_t len;
};

/* Who is at the other end of a connection, as the application's peer
 * hook read it once at the handshake's end. */
#define HTTPD_PEER_ID_MAX 64
struct httpd_peer {
	bool verified; /* a client certificate the application accepts */
	char store[HTTPD_PEER_ID_MAX + 1];
	char terminal[HTTPD_PEER_ID_MAX + 1];
	unsigned long gen; /* the hooks' own: when it was last looked at */
};

/* The application's side of what the httpd does before or around the
 * handler; every member may be NULL. Called on the worker's thread. */
struct httpd_hooks {
	/* A request refused before the handler with status (400, 413, 431,
	 * 501, 503, ...); detail is the httpd's own text, never quoting the
	 * request. out starts empty; left so, the reply has no body. */
	void (*refusal)(void *arg, int status, const char *detail,
			struct httpd_refusal_reply *out);
	void (*conn_refused)(void *arg, enum httpd_conn_refusal why);
	/* A connection opened (+1) or closed (-1). */
	void (*conn_count)(void *arg, int delta);
	/* At the handshake's end: who the peer is (ssl NULL without TLS). */
	void (*peer)(void *arg, SSL *ssl, struct httpd_peer *out);
	/* Each time a request asks for the peer: may take back what peer
	 * said (a certificate revoked since). */
	void (*peer_recheck)(void *arg, SSL *ssl, struct httpd_peer *p);
	void *arg;
};

struct httpd_opts {
	int fd;            /* listening socket, non-blocking; the httpd closes it */
	/* Borrowed; outlives the httpd. NULL: plain HTTP without TLS, for the
	 * state-machine fuzz harness (tests/fuzz/fuzz_httpd.c) only; server.c
	 * always passes its context. */
	SSL_CTX *ssl;
	struct slots *slots; /* borrowed; shared by every worker's httpd */
	struct timeval handshake;
	struct timeval idle;
	size_t max_head;   /* bytes of a request head; above: 431 */
	size_t max_body;   /* bytes of a body; above: 413 */
	httpd_handler handler;
	void *arg;
	int worker;        /* for log lines */
	/* Replies are written together once the loop turn's other events ran,
	 * by an event of this priority (that of the connections' events, so
	 * that busy sockets never starve it); -1: each at once. */
	int flush_priority;
	struct httpd_hooks hooks;
};

/* *out: httpd_free. On failure the listening socket is closed too. */
int httpd_new(struct event_base *base, const struct httpd_opts *o, struct httpd **out,
	      pos_err *e);
/* Closes the listening socket; connections go on, but each closes after
 * its next answer. */
void httpd_stop_accepting(struct httpd *h);
/* Connections whose reply is not wholly handed to the kernel yet. */
size_t httpd_writing(const struct httpd *h);
/* Closes every connection and frees h. A request still with the handler
 * must have been answered before. */
void httpd_free(struct httpd *h);

enum http1_method httpd_method(const struct httpd_req *q);
const char *httpd_method_name(const struct httpd_req *q);
const char *httpd_path(const struct httpd_req *q);
const char *httpd_query(const struct httpd_req *q); /* NULL when none */
const char *httpd_header(const struct httpd_req *q, const char *name);
/* The request's bearer token (http1_bearer of its Authorization), *len
 * bytes, not NUL-terminated; NULL when it has none. */
const char *httpd_bearer(const struct httpd_req *q, size_t *len);
/* The body, not NUL-terminated: *len bytes, never over max_body. */
const char *httpd_body(const struct httpd_req *q, size_t *len);
SSL *httpd_ssl(const struct httpd_req *q); /* NULL without TLS */
/* The connection's peer (never NULL; not verified without a peer hook).
 * Valid until httpd_reply. */
const struct httpd_peer *httpd_peer(struct httpd_req *q);

/* A header for the reply; name and value are copied. POS_EINVAL for a CR
 * or LF in either (or a colon in name), POS_ETOOBIG when the reply's extra
 * headers would pass 1 KB. */
int httpd_add_header(struct httpd_req *q, const char *name, const char *value);
/* Ends q: status, Content-Type (NULL: none) and body (copied). The reply
 * carries Date, Content-Length and any added headers. */
void httpd_reply(struct httpd_req *q, int status, const char *ctype, const void *body,
		 size_t len);

/* The client's TCP address (*len bytes), for per-address limits; NULL when
 * the kernel cannot say (the connection is already gone). Valid until
 * httpd_reply. */
const struct sockaddr *httpd_peer_addr(struct httpd_req *q, socklen_t *len);

/* The put of an httpd_fill: appends len bytes to the body; 0 or POS_ENOMEM. */
typedef int (*httpd_sink)(const void *buf, size_t len, void *put_arg);
/* The next part of a streamed body, written through put(…, put_arg);
 * want is about how much the connection takes now (a little more or less
 * is fine). Returns 1 when more is to come, 0 when the body is complete,
 * or a negative code: the connection is then cut without the body's end,
 * so the client can tell the reply is incomplete. */
typedef int (*httpd_fill)(void *arg, size_t want, httpd_sink put, void *put_arg);
/* Ends q with a body made as the client takes it: chunked for HTTP/1.1,
 * up to the connection's close for HTTP/1.0. fill runs only once all
 * before it went to the kernel, and for at most HTTPD_STREAM_TURN bytes
 * per loop turn, so a connection holds about one slice of the body and
 * the worker's other connections are served in between. done(arg) runs
 * exactly once: after the body's end, when the connection ends first, or
 * at once for HEAD or when the reply cannot start. Added headers go out
 * as with httpd_reply. */
#define HTTPD_STREAM_SLICE 16384
#define HTTPD_STREAM_TURN 65536
void httpd_reply_stream(struct httpd_req *q, int status, const char *ctype, httpd_fill fill,
			void (*done)(void *arg), void *arg);

#endif
