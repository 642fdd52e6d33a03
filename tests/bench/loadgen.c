/*
 * Load generator for pos-central: real mutual TLS 1.3 (the terminal
 * certificate from `pos-central terminal-cert`), HTTP/1.1 keep-alive, N
 * connections driven by one epoll loop over non-blocking OpenSSL.
 *
 * Routes:
 *   health   GET /v1/health: the HTTP+TLS cost alone (a no-op route)
 *   resolve  POST /v1/resolve of known TIDs: every request a distinct EncTID
 *            with its own txn, sealed with envelope_seal_tid before the run
 *   enrol    POST /v1/resolve of TIDs central has never seen (each request
 *            enrols a household: the resolve write path)
 *   baskets  POST /v1/baskets, 20 items, hhid and deident_tid of households
 *            resolved in the warm-up, a fresh txn each
 *
 * Closed loop (default): each connection sends its next request as soon as
 * the answer came. Open loop (--rate R): requests are due at fixed times,
 * R per second over all connections, whether or not answers came back; a
 * request waiting for a free connection counts its latency from when it was
 * due, so an overloaded server cannot hide its queue (no coordinated
 * omission).
 *
 * Before the timed run: every request body is sealed, every connection is
 * up, and a warm-up resolves a population of TIDs (enrolling them on the
 * first run) so that resolve and baskets work on known households.
 *
 * Prints throughput, latency p50/p99/p99.9/max, errors, this process's CPU
 * and, with --pid, the server's CPU per request read from /proc.
 *
 * usage: loadgen --port P --dir TERMINAL_DIR --route ROUTE [--host H]
 *        [--conns N] [--seconds S] [--rate R] [--pool N] [--population N]
 *        [--pid SERVER_PID] [--label NAME]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchutil.h"
#include "envelope.h"
#include "gtin.h"
#include "keys.h"
#include "timeutil.h"
#include "uuid.h"
#include "wipe.h"

#define LG_MAX_CONNS 1024
#define LG_IN_MAX 16384         /* one response; ours are a few hundred bytes */
#define LG_REQ_MAX 4096         /* one request; a 20-item basket is ~1.6 KB */
#define LG_MAX_POOL 2000000
#define LG_BACKLOG_MAX (1u << 22) /* open loop: requests waiting for a connection */
#define LG_DRAIN_S 10.0
#define LG_ITEMS 20
#define LG_PATH_MAX 1024

enum lg_route { R_HEALTH, R_RESOLVE, R_ENROL, R_BASKETS };
enum lg_state { C_IDLE, C_WRITING, C_READING, C_DEAD };

struct lg_conn {
	int fd;
	SSL *ssl;
	enum lg_state state;
	const char *out;
	size_t out_len, out_off;
	char own[LG_REQ_MAX]; /* a body built on the fly (baskets, health) */
	char in[LG_IN_MAX];
	size_t in_len;
	uint64_t start_ns;
	long tag; /* warm-up: the population index being resolved */
};

struct lg_household {
	char hhid[40];
	char dtid[40];
};

struct lg {
	/* options */
	const char *host, *dir, *label;
	int port, nconns;
	enum lg_route route;
	double seconds, rate;
	long pool_n, population, pid;
	int next_conn; /* where lg_idle_conn's scan starts */
	/* identity and keys */
	char store[65], terminal[65];
	unsigned char pk[32];
	char kid[KEYS_KID_LEN + 1];
	SSL_CTX *ctx;
	struct sockaddr_in addr;
	/* connections */
	struct lg_conn *conns;
	int ep;
	/* request sources */
	char **warm;  /* population resolve requests */
	char **pool;  /* timed resolve requests */
	long pool_next, reused;
	struct lg_household *hh;
	long hh_n;
	char gtins[LG_ITEMS][GTIN_LEN + 1];
	/* the phase being run */
	bool warmup;
	long warm_next, warm_done;
	bool issuing;
	uint64_t *backlog;
	size_t bl_head, bl_tail;
	long bl_dropped;
	/* results */
	uint32_t *lat;
	size_t lat_n, lat_cap;
	long done_in_window, errors, reconnects, status_counts[6];
	uint64_t window_end_ns;
	char first_error[200];
};

/* ------------------------------------------------------------ setup */

static int lg_usage(void)
{
	fprintf(stderr,
		"usage: loadgen --port P --dir TERMINAL_DIR --route health|resolve|enrol|baskets\n"
		"       [--host 127.0.0.1] [--conns 64] [--seconds 10] [--rate R] [--pool N]\n"
		"       [--population 1000] [--pid SERVER_PID] [--label NAME]\n");
	return 2;
}

static int lg_path(char out[LG_PATH_MAX], const char *dir, const char *name)
{
	int n = snprintf(out, LG_PATH_MAX, "%s/%s", dir, name);

	return (n < 0 || n >= LG_PATH_MAX) ? -1 : 0;
}

/* store = OU, terminal = CN of our certificate: central binds the EncTID
 * info to these, so the sealing side must use the same. */
static int lg_identity(struct lg *g, const char *crt)
{
	X509 *x = NULL;
	FILE *f = fopen(crt, "r");
	int rc = -1;

	if (!f)
		return -1;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x && X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationalUnitName,
					   g->store, sizeof g->store) > 0 &&
	    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, g->terminal,
				      sizeof g->terminal) > 0)
		rc = 0;
	X509_free(x);
	return rc;
}

static int lg_tls_setup(struct lg *g)
{
	char ca[LG_PATH_MAX], crt[LG_PATH_MAX], key[LG_PATH_MAX], pub[LG_PATH_MAX];
	pos_err e;

	if (lg_path(ca, g->dir, "ca.crt") < 0 || lg_path(crt, g->dir, "terminal.crt") < 0 ||
	    lg_path(key, g->dir, "terminal.key") < 0 || lg_path(pub, g->dir, "central.pub") < 0)
		return -1;
	if (keys_load_public(pub, g->pk, g->kid, &e) < 0) {
		fprintf(stderr, "loadgen: %s\n", e.msg);
		return -1;
	}
	if (lg_identity(g, crt) < 0) {
		fprintf(stderr, "loadgen: %s: no OU/CN\n", crt);
		return -1;
	}
	g->ctx = SSL_CTX_new(TLS_client_method());
	if (!g->ctx || !SSL_CTX_set_min_proto_version(g->ctx, TLS1_3_VERSION) ||
	    SSL_CTX_load_verify_locations(g->ctx, ca, NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(g->ctx, crt) != 1 ||
	    SSL_CTX_use_PrivateKey_file(g->ctx, key, SSL_FILETYPE_PEM) != 1) {
		fprintf(stderr, "loadgen: TLS setup failed\n");
		ERR_print_errors_fp(stderr);
		return -1;
	}
	SSL_CTX_set_verify(g->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(g->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	return 0;
}

/* A blocking connect and handshake, then non-blocking for the loop. */
static int lg_connect(struct lg *g, struct lg_conn *c)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct epoll_event ev = { .events = EPOLLIN };

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&g->addr, sizeof g->addr) != 0)
		goto fail;
	c->ssl = SSL_new(g->ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1 ||
	    SSL_set_tlsext_host_name(c->ssl, "localhost") != 1 ||
	    SSL_set1_host(c->ssl, g->host) != 1 || SSL_connect(c->ssl) != 1)
		goto fail;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
		goto fail;
	ev.data.ptr = c;
	if (epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		goto fail;
	c->fd = fd;
	c->state = C_IDLE;
	c->in_len = 0;
	return 0;
fail:
	ERR_print_errors_fp(stderr);
	SSL_free(c->ssl);
	c->ssl = NULL;
	close(fd);
	c->fd = -1;
	c->state = C_DEAD;
	return -1;
}

static void lg_close(struct lg *g, struct lg_conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(g->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	SSL_free(c->ssl);
	c->ssl = NULL;
	c->fd = -1;
	c->state = C_DEAD;
}

/* ------------------------------------------------------------ request bodies */

static void lg_pop_tid(char out[48], long i)
{
	/* Bench TIDs: loyalty numbers no test or person uses. */
	snprintf(out, 48, "loyalty:77%013ld", i);
}

static int lg_fresh_tid(char out[48])
{
	unsigned char r[8];
	unsigned long long v = 0;

	if (RAND_bytes(r, sizeof r) != 1)
		return -1;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | r[i];
	snprintf(out, 48, "loyalty:78%016llu", v % 10000000000000000ULL);
	return 0;
}

/* A whole request in a buffer of its own size (a pool holds hundreds of
 * thousands). */
static char *lg_http(const char *method, const char *path, const char *body, size_t blen)
{
	char buf[LG_REQ_MAX];
	int n = snprintf(buf, sizeof buf,
			 "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n%.*s",
			 method, path, blen, (int)blen, body);

	if (n < 0 || n >= LG_REQ_MAX)
		return NULL;
	return strdup(buf);
}

/* One POST /v1/resolve request for tid, sealed to central for a new txn. */
static char *lg_resolve_req(const struct lg *g, const char *tid)
{
	char txn[UUID_STR_LEN + 1], info[ENVELOPE_INFO_MAX], enc[ENVELOPE_B64_MAX], body[512];
	pos_err e;
	int n;

	if (uuid_v7(txn, &e) < 0 || envelope_info(info, g->store, g->terminal, txn, &e) < 0 ||
	    envelope_seal_tid(g->pk, g->kid, info, tid, enc, &e) < 0) {
		fprintf(stderr, "loadgen: seal: %s\n", e.msg);
		return NULL;
	}
	n = snprintf(body, sizeof body, "{\"txn\":\"%s\",\"tid\":{\"kid\":\"%s\",\"enc\":\"%s\"}}",
		     txn, g->kid, enc);
	if (n < 0 || (size_t)n >= sizeof body)
		return NULL;
	return lg_http("POST", "/v1/resolve", body, (size_t)n);
}

struct lg_seal_job {
	const struct lg *g;
	char **out;
	long from, to;
	bool fresh; /* never-seen TIDs instead of the population */
	int rc;
};

static void *lg_seal_thread(void *arg)
{
	struct lg_seal_job *j = arg;
	char tid[48];

	for (long i = j->from; i < j->to; i++) {
		if (!j->fresh)
			lg_pop_tid(tid, i % j->g->population);
		else if (lg_fresh_tid(tid) < 0) {
			j->rc = -1;
			break;
		}
		j->out[i] = lg_resolve_req(j->g, tid);
		wipe(tid, sizeof tid);
		if (!j->out[i]) {
			j->rc = -1;
			break;
		}
	}
	return NULL;
}

/* Seals n resolve requests on every core. */
static char **lg_seal_all(const struct lg *g, long n, bool fresh)
{
	long nth = sysconf(_SC_NPROCESSORS_ONLN);
	struct lg_seal_job jobs[16];
	pthread_t th[16];
	char **out = calloc((size_t)n, sizeof *out);
	int bad = 0;

	if (!out)
		return NULL;
	if (nth < 1)
		nth = 1;
	if (nth > 16)
		nth = 16;
	for (long t = 0; t < nth; t++) {
		jobs[t] = (struct lg_seal_job){ g, out, n * t / nth, n * (t + 1) / nth, fresh, 0 };
		if (pthread_create(&th[t], NULL, lg_seal_thread, &jobs[t]) != 0)
			return NULL;
	}
	for (long t = 0; t < nth; t++) {
		pthread_join(th[t], NULL);
		bad |= jobs[t].rc;
	}
	if (bad)
		return NULL;
	return out;
}

/* Twenty distinct valid GTIN-14s. */
static void lg_make_gtins(struct lg *g)
{
	for (int i = 0; i < LG_ITEMS; i++) {
		char d[14];
		snprintf(d, sizeof d, "0952000%06d", 1000 + i * 37);
		snprintf(g->gtins[i], sizeof g->gtins[i], "%s%d", d, gtin_check_digit(d, 13));
	}
}

/* A 20-item basket for a random warm-up household, built into c->own. */
static int lg_basket_req(struct lg *g, struct lg_conn *c)
{
	char txn[UUID_STR_LEN + 1], ts[TIME_RFC3339_LEN], body[LG_REQ_MAX - 200];
	const struct lg_household *h = &g->hh[random() % g->hh_n];
	size_t n = 0;
	pos_err e;
	int w;

	if (uuid_v7(txn, &e) < 0)
		return -1;
	time_format_rfc3339(time_now_ms(), ts);
	w = snprintf(body, sizeof body,
		     "{\"txn\":\"%s\",\"ts\":\"%s\",\"hhid\":\"%s\",\"deident_tid\":\"%s\","
		     "\"items\":[",
		     txn, ts, h->hhid, h->dtid);
	if (w < 0 || (size_t)w >= sizeof body)
		return -1;
	n = (size_t)w;
	for (int i = 0; i < LG_ITEMS; i++) {
		w = snprintf(body + n, sizeof body - n,
			     "%s{\"gtin\":\"%s\",\"qty\":%d,\"price_cents\":%d}", i ? "," : "",
			     g->gtins[i], 1 + i % 3, 99 + 50 * i);
		if (w < 0 || (size_t)w >= sizeof body - n)
			return -1;
		n += (size_t)w;
	}
	if (n + 3 > sizeof body)
		return -1;
	memcpy(body + n, "]}", 3);
	n += 2;
	w = snprintf(c->own, sizeof c->own,
		     "POST /v1/baskets HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
		     "application/json\r\nContent-Length: %zu\r\n\r\n%s",
		     n, body);
	if (w < 0 || (size_t)w >= sizeof c->own)
		return -1;
	c->out = c->own;
	c->out_len = (size_t)w;
	return 0;
}

/* ------------------------------------------------------------ the loop */

static void lg_record(struct lg *g, uint64_t start, uint64_t end)
{
	uint64_t us = (end - start) / 1000;

	if (g->lat_n == g->lat_cap) {
		size_t cap = g->lat_cap ? g->lat_cap * 2 : 65536;
		uint32_t *p = realloc(g->lat, cap * sizeof *p);
		if (!p)
			return;
		g->lat = p;
		g->lat_cap = cap;
	}
	g->lat[g->lat_n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void lg_fail(struct lg *g, struct lg_conn *c, const char *what)
{
	g->errors++;
	if (!g->first_error[0])
		snprintf(g->first_error, sizeof g->first_error, "%s", what);
	lg_close(g, c);
}

/* Chooses the next request for an idle connection: true when one was set. */
static bool lg_next(struct lg *g, struct lg_conn *c)
{
	if (g->warmup) {
		if (g->warm_next >= g->population)
			return false;
		c->tag = g->warm_next;
		c->out = g->warm[g->warm_next++];
		c->out_len = strlen(c->out);
		return true;
	}
	switch (g->route) {
	case R_HEALTH:
		c->out = "GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n";
		c->out_len = strlen(c->out);
		return true;
	case R_RESOLVE:
	case R_ENROL:
		if (g->pool_next >= g->pool_n) {
			g->pool_next = 0;
			g->reused++;
		}
		c->out = g->pool[g->pool_next++];
		c->out_len = strlen(c->out);
		return true;
	case R_BASKETS:
		return lg_basket_req(g, c) == 0;
	}
	return false;
}

static void lg_write(struct lg *g, struct lg_conn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	while (c->out_off < c->out_len) {
		int n = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_WRITE:
			ev.events = EPOLLIN | EPOLLOUT;
			epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
			return;
		case SSL_ERROR_WANT_READ:
			return;
		default:
			lg_fail(g, c, "write failed");
			return;
		}
	}
	c->state = C_READING;
}

static void lg_send(struct lg *g, struct lg_conn *c, uint64_t start)
{
	c->start_ns = start;
	c->out_off = 0;
	c->in_len = 0;
	c->state = C_WRITING;
	lg_write(g, c);
}

/* Copies the JSON string value of key ("hhid") from body into out. */
static void lg_json_str(const char *body, const char *key, char *out, size_t cap)
{
	char pat[32];
	const char *p, *q;

	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	out[0] = '\0';
	if (!(p = strstr(body, pat)))
		return;
	p += strlen(pat);
	if (!(q = strchr(p, '"')) || (size_t)(q - p) >= cap)
		return;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
}

/* A whole response is in c->in: account for it. */
static void lg_complete(struct lg *g, struct lg_conn *c, int status, const char *body,
			bool closing)
{
	uint64_t now = bench_now_ns();
	int cls = status / 100;

	g->status_counts[cls >= 0 && cls < 6 ? cls : 0]++;
	if (cls != 2) {
		g->errors++;
		if (!g->first_error[0])
			snprintf(g->first_error, sizeof g->first_error, "HTTP %d %.150s", status, body);
	}
	if (g->warmup) {
		if (cls == 2 && c->tag >= 0 && c->tag < g->population) {
			lg_json_str(body, "hhid", g->hh[c->tag].hhid, sizeof g->hh[c->tag].hhid);
			lg_json_str(body, "deident_tid", g->hh[c->tag].dtid,
				    sizeof g->hh[c->tag].dtid);
		}
		g->warm_done++;
	} else {
		lg_record(g, c->start_ns, now);
		if (now <= g->window_end_ns)
			g->done_in_window++;
	}
	c->state = C_IDLE;
	if (closing) {
		g->reconnects++;
		lg_close(g, c);
		lg_connect(g, c);
	}
}

/* Parses what arrived; true when a whole response was taken. */
static bool lg_parse(struct lg *g, struct lg_conn *c)
{
	char *hdr_end, *p;
	long clen = -1;
	int status;
	bool closing = false;

	c->in[c->in_len] = '\0';
	if (!(hdr_end = strstr(c->in, "\r\n\r\n")))
		return false;
	if (sscanf(c->in, "HTTP/1.%*d %d", &status) != 1) {
		lg_fail(g, c, "bad status line");
		return false;
	}
	for (p = strstr(c->in, "\r\n"); p && p < hdr_end; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
			clen = strtol(p + 17, NULL, 10);
		else if (strncasecmp(p + 2, "Connection: close", 17) == 0)
			closing = true;
	}
	if (clen < 0) {
		lg_fail(g, c, "response without Content-Length");
		return false;
	}
	if ((size_t)(hdr_end + 4 - c->in) + (size_t)clen > c->in_len)
		return false;
	lg_complete(g, c, status, hdr_end + 4, closing);
	return true;
}

static void lg_read(struct lg *g, struct lg_conn *c)
{
	for (;;) {
		int n;
		if (c->in_len >= sizeof c->in - 1) {
			lg_fail(g, c, "response too large");
			return;
		}
		n = SSL_read(c->ssl, c->in + c->in_len, (int)(sizeof c->in - 1 - c->in_len));
		if (n > 0) {
			c->in_len += (size_t)n;
			if (c->state == C_READING && lg_parse(g, c))
				return;
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			return;
		case SSL_ERROR_WANT_WRITE:
			return;
		default:
			if (c->state == C_IDLE) {
				/* The server closed an idle connection. */
				g->reconnects++;
				lg_close(g, c);
				lg_connect(g, c);
			} else {
				lg_fail(g, c, "connection closed mid-request");
			}
			return;
		}
	}
}

static void lg_event(struct lg *g, struct lg_conn *c, uint32_t events)
{
	if (c->state == C_WRITING && (events & EPOLLOUT)) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
		lg_write(g, c);
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		if (c->state == C_WRITING)
			lg_write(g, c);
		if (c->state == C_READING || c->state == C_IDLE)
			lg_read(g, c);
	}
}

static struct lg_conn *lg_idle_conn(struct lg *g)
{
	/* Few connections, and a scan is cheaper than the TLS work it feeds.
	 * The scan starts after the connection used last: in open loop most
	 * connections are idle, and always taking the first idle one would
	 * send nearly every request over the same few connections (so to the
	 * one or two workers SO_REUSEPORT gave them), unlike lanes that each
	 * send their own. */
	for (int k = 0; k < g->nconns; k++) {
		int i = (g->next_conn + k) % g->nconns;
		struct lg_conn *c = &g->conns[(size_t)i];
		if (c->state == C_DEAD && c->fd < 0)
			lg_connect(g, c);
		if (c->state == C_IDLE) {
			g->next_conn = (i + 1) % g->nconns;
			return c;
		}
	}
	return NULL;
}

static long lg_busy(const struct lg *g)
{
	long n = 0;

	for (int i = 0; i < g->nconns; i++)
		n += g->conns[i].state == C_WRITING || g->conns[i].state == C_READING;
	return n;
}

/* Runs the warm-up (until every population TID was resolved) or the timed
 * phase (closed or open loop, then a drain of what was issued). */
static void lg_run(struct lg *g, uint64_t t0, uint64_t end)
{
	struct epoll_event evs[256];
	double interval = g->rate > 0 ? 1e9 / g->rate : 0;
	uint64_t due = t0, drain_end = end + (uint64_t)(LG_DRAIN_S * 1e9);
	long k = 0;

	g->window_end_ns = end;
	g->issuing = true;
	for (;;) {
		uint64_t now = bench_now_ns(), timeout = 100000000; /* ns */
		struct timespec ts;
		int n;

		if (!g->warmup && now >= end)
			g->issuing = false;
		if (g->warmup) {
			struct lg_conn *c;
			while ((c = lg_idle_conn(g)) && lg_next(g, c))
				lg_send(g, c, now);
			if (g->warm_next >= g->population && lg_busy(g) == 0)
				break;
		} else if (interval > 0) {
			/* Open loop: everything due goes out or waits, due time kept. */
			while (g->issuing && due <= now) {
				if (((g->bl_tail + 1) & (LG_BACKLOG_MAX - 1)) == g->bl_head)
					g->bl_dropped++;
				else {
					g->backlog[g->bl_tail] = due;
					g->bl_tail = (g->bl_tail + 1) & (LG_BACKLOG_MAX - 1);
				}
				due = t0 + (uint64_t)((double)++k * interval);
			}
			while (g->bl_head != g->bl_tail) {
				struct lg_conn *c = lg_idle_conn(g);
				if (!c || !lg_next(g, c))
					break;
				lg_send(g, c, g->backlog[g->bl_head]);
				g->bl_head = (g->bl_head + 1) & (LG_BACKLOG_MAX - 1);
			}
			if (g->issuing)
				timeout = due > now ? due - now : 0;
			else if (g->bl_head == g->bl_tail && lg_busy(g) == 0) {
				break;
			}
		} else {
			struct lg_conn *c;
			while (g->issuing && (c = lg_idle_conn(g)) && lg_next(g, c))
				lg_send(g, c, now);
			if (!g->issuing && lg_busy(g) == 0)
				break;
			if (g->issuing && end - now < timeout)
				timeout = end - now;
		}
		if (!g->warmup && now > drain_end)
			break;
		if (timeout > 100000000)
			timeout = 100000000;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)timeout;
		/* Nanosecond timeouts: a millisecond one would send open-loop
		 * requests up to 1 ms late and charge that to the server. */
		n = epoll_pwait2(g->ep, evs, 256, &ts, NULL);
		for (int i = 0; i < n; i++)
			lg_event(g, evs[i].data.ptr, evs[i].events);
	}
}

/* ------------------------------------------------------------ main */

static double lg_self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int lg_parse_args(struct lg *g, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return -1;
		i++;
		if (strcmp(a, "--host") == 0)
			g->host = v;
		else if (strcmp(a, "--port") == 0)
			g->port = (int)strtol(v, NULL, 10);
		else if (strcmp(a, "--dir") == 0)
			g->dir = v;
		else if (strcmp(a, "--label") == 0)
			g->label = v;
		else if (strcmp(a, "--conns") == 0)
			g->nconns = (int)strtol(v, NULL, 10);
		else if (strcmp(a, "--seconds") == 0)
			g->seconds = strtod(v, NULL);
		else if (strcmp(a, "--rate") == 0)
			g->rate = strtod(v, NULL);
		else if (strcmp(a, "--pool") == 0)
			g->pool_n = strtol(v, NULL, 10);
		else if (strcmp(a, "--population") == 0)
			g->population = strtol(v, NULL, 10);
		else if (strcmp(a, "--pid") == 0)
			g->pid = strtol(v, NULL, 10);
		else if (strcmp(a, "--route") == 0) {
			if (strcmp(v, "health") == 0)
				g->route = R_HEALTH;
			else if (strcmp(v, "resolve") == 0)
				g->route = R_RESOLVE;
			else if (strcmp(v, "enrol") == 0)
				g->route = R_ENROL;
			else if (strcmp(v, "baskets") == 0)
				g->route = R_BASKETS;
			else
				return -1;
		} else
			return -1;
	}
	if (!g->dir || g->port <= 0 || g->port > 65535 || g->nconns < 1 ||
	    g->nconns > LG_MAX_CONNS || g->seconds <= 0 || g->rate < 0 || g->population < 1 ||
	    g->pool_n < 1 || g->pool_n > LG_MAX_POOL)
		return -1;
	return 0;
}

static const char *lg_route_name(enum lg_route r)
{
	static const char *const names[] = { "health", "resolve", "enrol", "baskets" };

	return names[r];
}

int main(int argc, char **argv)
{
	struct lg *g = calloc(1, sizeof *g);
	double cpu0 = 0, cpu1 = 0, self0, self1, sys0, sys1, secs, srv_us = -1, tput, others;
	double kcpu0 = 0, kcpu1 = 0, keys_us = 0;
	uint64_t t0, t1;
	int rc = 1;

	if (!g)
		return 1;
	*g = (struct lg){ .host = "127.0.0.1", .nconns = 64, .seconds = 10, .population = 1000,
			  .pool_n = 100000, .route = R_HEALTH, .ep = -1 };
	if (lg_parse_args(g, argc, argv) < 0) {
		rc = lg_usage();
		goto out;
	}
	if (!g->label)
		g->label = lg_route_name(g->route);
	g->addr.sin_family = AF_INET;
	g->addr.sin_port = htons((uint16_t)g->port);
	if (inet_pton(AF_INET, g->host, &g->addr.sin_addr) != 1 || lg_tls_setup(g) < 0)
		goto out;
	lg_make_gtins(g);
	srandom((unsigned)bench_now_ns());

	/* Everything sealed before any connection opens, so none idles out. */
	t0 = bench_now_ns();
	g->warm = lg_seal_all(g, g->population, false);
	g->hh = calloc((size_t)g->population, sizeof *g->hh);
	if (g->route == R_RESOLVE || g->route == R_ENROL)
		g->pool = lg_seal_all(g, g->pool_n, g->route == R_ENROL);
	else
		g->pool_n = 0;
	if (!g->warm || !g->hh || ((g->route == R_RESOLVE || g->route == R_ENROL) && !g->pool)) {
		fprintf(stderr, "loadgen: sealing failed\n");
		goto out;
	}
	fprintf(stderr, "loadgen: sealed %ld EncTIDs in %.1f s\n", g->population + g->pool_n,
		(double)(bench_now_ns() - t0) / 1e9);

	g->ep = epoll_create1(EPOLL_CLOEXEC);
	g->conns = calloc((size_t)g->nconns, sizeof *g->conns);
	g->backlog = malloc(LG_BACKLOG_MAX * sizeof *g->backlog);
	if (g->ep < 0 || !g->conns || !g->backlog)
		goto out;
	for (int i = 0; i < g->nconns; i++) {
		g->conns[i].fd = -1;
		if (lg_connect(g, &g->conns[i]) < 0) {
			fprintf(stderr, "loadgen: cannot connect to %s:%d\n", g->host, g->port);
			goto out;
		}
	}

	g->warmup = true;
	lg_run(g, bench_now_ns(), 0);
	g->warmup = false;
	for (long i = 0; i < g->population; i++)
		if (g->hh[i].hhid[0])
			g->hh[g->hh_n++] = g->hh[i];
	if (g->hh_n == 0) {
		fprintf(stderr, "loadgen: the warm-up resolved nothing (%s)\n", g->first_error);
		goto out;
	}
	g->errors = 0;
	g->first_error[0] = '\0';
	memset(g->status_counts, 0, sizeof g->status_counts);

	/* The server is its whole family: serve and its keys process. */
	if (g->pid > 0) {
		kcpu0 = bench_children_cpu_s(g->pid);
		cpu0 = bench_proc_cpu_precise_s(g->pid);
	}
	self0 = lg_self_cpu_s();
	sys0 = bench_system_busy_s();
	t0 = bench_now_ns();
	lg_run(g, t0, t0 + (uint64_t)(g->seconds * 1e9));
	t1 = bench_now_ns();
	self1 = lg_self_cpu_s();
	sys1 = bench_system_busy_s();
	if (g->pid > 0) {
		kcpu1 = bench_children_cpu_s(g->pid);
		cpu1 = bench_proc_cpu_precise_s(g->pid);
		if (cpu0 >= 0 && cpu1 >= 0) {
			cpu0 += kcpu0;
			cpu1 += kcpu1;
		}
	}
	/* Cores other processes took meanwhile: on a shared machine they shift
	 * every figure, so they are printed beside them. */
	others = ((sys1 - sys0) - (cpu1 - cpu0) - (self1 - self0)) / ((double)(t1 - t0) / 1e9);
	if (others < 0)
		others = 0;

	secs = g->seconds;
	tput = (double)g->done_in_window / secs;
	qsort(g->lat, g->lat_n, sizeof *g->lat, bench_cmp_u32);
	if (g->pid > 0 && cpu0 >= 0 && cpu1 >= 0 && g->lat_n) {
		srv_us = (cpu1 - cpu0) * 1e6 / (double)g->lat_n;
		keys_us = (kcpu1 - kcpu0) * 1e6 / (double)g->lat_n;
	}
	printf("%s: %s, %d connections, %s%.0f/s: %.0f req/s over %.1f s (%zu answered)\n",
	       g->label, lg_route_name(g->route), g->nconns, g->rate > 0 ? "open loop at " : "",
	       g->rate > 0 ? g->rate : 0.0, tput, (double)(t1 - t0) / 1e9, g->lat_n);
	printf("  latency us: p50 %u  p99 %u  p99.9 %u  max %u\n",
	       bench_quantile(g->lat, g->lat_n, 0.50), bench_quantile(g->lat, g->lat_n, 0.99),
	       bench_quantile(g->lat, g->lat_n, 0.999), bench_quantile(g->lat, g->lat_n, 1.0));
	if (srv_us >= 0)
		printf("  server CPU: %.1f us/request, of which the keys process %.1f (%.2f CPU-s; "
		       "%.2f cores busy)\n",
		       srv_us, keys_us, cpu1 - cpu0, (cpu1 - cpu0) / ((double)(t1 - t0) / 1e9));
	printf("  loadgen CPU: %.1f us/request; other processes: %.2f cores; errors %ld; reconnects "
	       "%ld; pool reused %ld times; backlog dropped %ld\n",
	       g->lat_n ? (self1 - self0) * 1e6 / (double)g->lat_n : 0.0, others, g->errors,
	       g->reconnects, g->reused, g->bl_dropped);
	if (g->first_error[0])
		printf("  first error: %s\n", g->first_error);
	printf("RESULT {\"load_%s\":{\"route\":\"%s\",\"conns\":%d,\"rate\":%.0f,\"seconds\":%.2f,"
	       "\"rps\":%.1f,\"n\":%zu,\"p50_us\":%u,\"p99_us\":%u,\"p999_us\":%u,\"max_us\":%u,"
	       "\"server_cpu_us\":%.2f,\"keys_cpu_us\":%.2f,\"server_cores\":%.3f,"
	       "\"client_cpu_us\":%.2f,"
	       "\"other_cores\":%.3f,"
	       "\"errors\":%ld,\"reconnects\":%ld,\"pool_reused\":%ld}}\n",
	       g->label, lg_route_name(g->route), g->nconns, g->rate, secs, tput, g->lat_n,
	       bench_quantile(g->lat, g->lat_n, 0.50), bench_quantile(g->lat, g->lat_n, 0.99),
	       bench_quantile(g->lat, g->lat_n, 0.999), bench_quantile(g->lat, g->lat_n, 1.0),
	       srv_us, keys_us, (cpu1 - cpu0) / ((double)(t1 - t0) / 1e9),
	       g->lat_n ? (self1 - self0) * 1e6 / (double)g->lat_n : 0.0, others, g->errors,
	       g->reconnects, g->reused);
	rc = 0;
out:
	if (g->conns)
		for (int i = 0; i < g->nconns; i++)
			lg_close(g, &g->conns[i]);
	if (g->ep >= 0)
		close(g->ep);
	for (long i = 0; g->warm && i < g->population; i++)
		free(g->warm[i]);
	for (long i = 0; g->pool && i < g->pool_n; i++)
		free(g->pool[i]);
	free(g->warm);
	free(g->pool);
	free(g->hh);
	free(g->conns);
	free(g->backlog);
	free(g->lat);
	SSL_CTX_free(g->ctx);
	free(g);
	return rc;
}
