#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analyst.h"
#include "db.h"
#include "httpd.h"
#include "ingest.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "pki.h"
#include "public.h"
#include "routes.h"
#include "service.h"
#include "slots.h"
#include "timeutil.h"
#include "tls.h"
#include "vendor.h"

#define SERVER_BACKLOG 1024
#define SERVER_DRAIN_TICK_MS 20
#define SERVER_PRIORITIES 3
#define SERVER_LOG_FLUSH_MS 10
/* After the writer's queue is empty, how long replies already sent may take
 * to reach their clients before the connections are closed anyway. */
#define SERVER_FLUSH_GRACE_US 3000000

struct worker {
	int idx;
	bool pin; /* [central] pin_threads */
	pthread_t thread;
	bool started;
	int fd;
	SSL_CTX *ssl;
	struct event_base *base;
	struct httpd *httpd;
	struct store *store;
	struct store *reads; /* [store] dsn_read's connection, when set */
	struct routes *routes;
	struct event *stop_ev, *drain_ev;
	struct event *log_ev; /* a timer: writes the buffered log lines */
	/* The public listener's, when [central] public_listen is set. */
	int pub_fd;
	SSL_CTX *pub_ssl;
	struct httpd *pub_httpd;
	struct public *pub;
	bool stopping;
	int64_t flush_deadline_us;
};


/* ------------------------------------------------------------ listen */

int server_parse_listen(const char *s, char host[SERVER_LISTEN_MAX], char port[8], pos_err *e)
{
	const char *colon, *h = s;
	size_t hl;
	char *end;
	long p;

	if (!s || !s[0])
		return err_set(e, POS_EINVAL, "listen: empty address");
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return err_set(e, POS_EINVAL, "listen '%s': expected [IPv6]:PORT", s);
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return err_set(e, POS_EINVAL, "listen '%s': expected HOST:PORT", s);
		if (memchr(s, ':', (size_t)(colon - s)))
			return err_set(e, POS_EINVAL, "listen '%s': put an IPv6 address in brackets",
				       s);
		hl = (size_t)(colon - s);
	}
	if (hl >= SERVER_LISTEN_MAX)
		return err_set(e, POS_EINVAL, "listen: host too long");
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || p < 0 || p > 65535)
		return err_set(e, POS_EINVAL, "listen '%s': port must be 0..65535", s);
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, 8, "%ld", p);
	return 0;
}

/* A listening socket with SO_REUSEPORT (one per worker: the kernel spreads
 * connections) and TCP_NODELAY (accepted sockets inherit it; without it a
 * keep-alive response waits ~40 ms for a delayed ACK). */
static int server_socket(const struct addrinfo *ai, pos_err *e)
{
	int one = 1, fd;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return err_set(e, POS_EIO, "socket: %s", strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
		int rc = err_set(e, POS_EIO, "setsockopt: %s", strerror(errno));
		close(fd);
		return rc;
	}
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SERVER_BACKLOG) != 0) {
		int rc = err_set(e, POS_EIO, "cannot listen: %s", strerror(errno));
		close(fd);
		return rc;
	}
	return fd;
}

/* The workers' sockets use SO_REUSEPORT, which would let a second server
 * bind the same port and silently take a share of the connections. A
 * probe without SO_REUSEPORT cannot bind where anyone listens (SO_REUSEADDR
 * only forgives TIME_WAIT), so EADDRINUSE here means the port is taken. */
static int server_probe(const struct addrinfo *ai, const char *listen_s, pos_err *e)
{
	int one = 1, fd, rc = 0;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return err_set(e, POS_EIO, "socket: %s", strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
		rc = err_set(e, POS_EIO, "setsockopt: %s", strerror(errno));
	else if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		rc = errno == EADDRINUSE
			     ? err_set(e, POS_EIO, "%s is already in use (another pos-central?)",
				       listen_s)
			     : err_set(e, POS_EIO, "cannot listen on %s: %s", listen_s,
				       strerror(errno));
	close(fd);
	return rc;
}

/* Opens n sockets on one address; a port 0 becomes the port the first
 * socket got, so every worker shares it. addr receives "host:port". */
static int server_listen(const char *listen_s, int *fds, int n, char *addr, size_t addrcap,
			 pos_err *e)
{
	char host[SERVER_LISTEN_MAX], port[8];
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char hbuf[NI_MAXHOST], pbuf[NI_MAXSERV];
	int rc, i;

	for (i = 0; i < n; i++)
		fds[i] = -1;
	if ((rc = server_parse_listen(listen_s, host, port, e)) < 0)
		return rc;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (rc != 0)
		return err_set(e, POS_EINVAL, "listen '%s': %s", listen_s, gai_strerror(rc));
	/* Port 0 takes a fresh port, which nobody else can hold. */
	if (strcmp(port, "0") != 0 && (rc = server_probe(ai, listen_s, e)) < 0)
		goto out;
	if ((fds[0] = server_socket(ai, e)) < 0) {
		rc = fds[0];
		fds[0] = -1;
		goto out;
	}
	if (getsockname(fds[0], (struct sockaddr *)&ss, &sl) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof hbuf, pbuf, sizeof pbuf,
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		rc = err_set(e, POS_EIO, "getsockname: %s", strerror(errno));
		goto out;
	}
	/* Later sockets bind the port the first one got. */
	if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = ((struct sockaddr_in6 *)&ss)->sin6_port;
	else
		((struct sockaddr_in *)ai->ai_addr)->sin_port = ((struct sockaddr_in *)&ss)->sin_port;
	for (i = 1; i < n; i++)
		if ((fds[i] = server_socket(ai, e)) < 0) {
			rc = fds[i];
			fds[i] = -1;
			goto out;
		}
	snprintf(addr, addrcap, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", hbuf, pbuf);
	rc = 0;
out:
	freeaddrinfo(ai);
	if (rc < 0)
		for (i = 0; i < n; i++)
			if (fds[i] >= 0) {
				close(fds[i]);
				fds[i] = -1;
			}
	return rc;
}

/* ------------------------------------------------------------ workers */

static void server_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tick = { 0, SERVER_DRAIN_TICK_MS * 1000 };

	(void)fd;
	(void)what;
	/* Requests with the writer hold their connection: never free the
	 * httpd under them (their baskets commit whatever happens to the
	 * client; only the answer can be lost). Replies already sent get a
	 * grace to reach their clients. */
	public_stop(w->pub); /* a poll a kept-alive connection sent since */
	if (routes_waiting(w->routes) > 0 || public_waiting(w->pub) > 0 ||
	    ((httpd_writing(w->httpd) > 0 || (w->pub_httpd && httpd_writing(w->pub_httpd) > 0)) &&
	     time_mono_us() < w->flush_deadline_us)) {
		evtimer_add(w->drain_ev, &tick);
		return;
	}
	httpd_free(w->httpd);
	w->httpd = NULL;
	httpd_free(w->pub_httpd);
	w->pub_httpd = NULL;
	event_base_loopbreak(w->base);
}

/* Activated from the main thread on SIGTERM/SIGINT. */
static void server_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (w->stopping)
		return;
	w->stopping = true;
	httpd_stop_accepting(w->httpd);
	if (w->pub_httpd) {
		httpd_stop_accepting(w->pub_httpd);
		public_stop(w->pub); /* long polls answer now */
	}
	w->flush_deadline_us = time_mono_us() + SERVER_FLUSH_GRACE_US;
	server_drain_cb(-1, 0, w);
}

/* Runs SERVER_LOG_FLUSH_MS after a buffer's first line: the request lines
 * of those milliseconds leave in one write. Flushed once a loop turn
 * instead, a worker at half load wrote once a request (a loop turn then
 * carries one). Warnings and errors never wait (log_emit). */
static void server_log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_buffer_flush();
}

static void server_log_kick(void *arg)
{
	struct worker *w = arg;
	struct timeval tv = { 0, SERVER_LOG_FLUSH_MS * 1000 };

	event_add(w->log_ev, &tv);
}

static void *server_worker_main(void *arg)
{
	struct worker *w = arg;

	/* On the core of its keys thread (docs/performance.md: the tail at
	 * half load). */
	if (w->pin)
		(void)keys_pin_thread((size_t)w->idx);
	/* Without a buffer (no memory) lines are written one by one. */
	(void)log_buffer_start(server_log_kick, w);
	event_base_dispatch(w->base);
	log_buffer_stop();
	return NULL;
}

/* With the changelist, interest changes (httpd drops a connection's read
 * interest while its baskets are with the writer) meet in one epoll_ctl
 * per fd and loop turn, or none when they cancel out. The changelist's
 * caveat (a dup()ed fd) does not apply: every fd here is a socket of its
 * own. */
static struct event_base *server_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (!cfg)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	/* Three priorities: every event gets the middle one by default; the
	 * log flush takes the lowest, so it waits for a quiet moment. */
	if (base && event_base_priority_init(base, SERVER_PRIORITIES) < 0) {
		event_base_free(base);
		base = NULL;
	}
	return base;
}

static void server_conn_refused(void *arg, enum httpd_conn_refusal why)
{
	static const enum metrics_conn_refusal mc[HTTPD_REFUSED_COUNT] = {
		[HTTPD_REFUSED_PER_ADDRESS] = MC_PER_ADDRESS,
		[HTTPD_REFUSED_FULL] = MC_FULL,
		[HTTPD_REFUSED_ANONYMOUS] = MC_ANONYMOUS,
		[HTTPD_REFUSED_EVICTED] = MC_EVICTED,
		[HTTPD_REFUSED_HANDSHAKE_TIMEOUT] = MC_HANDSHAKE_TIMEOUT,
	};

	(void)arg;
	if ((unsigned)why < HTTPD_REFUSED_COUNT)
		metrics_conn_refused(mc[why]);
}

static void server_conn_count(void *arg, int delta)
{
	(void)arg;
	metrics_connection(delta);
}

/* What both listeners' httpds tell the application. */
static const struct httpd_hooks server_hooks = {
	.refusal = routes_refused,
	.conn_refused = server_conn_refused,
	.conn_count = server_conn_count,
	.peer = tls_peer_read,
	.peer_recheck = tls_peer_recheck,
};

/* The worker's second httpd: the public listener with its own
 * certificate and routes (public.h), its own connection budget. */
static int server_worker_public(struct worker *w, const struct cconf *c, struct slots *slots,
				struct public_shared *ps, struct keys_chan *keys, pos_err *e)
{
	struct httpd_opts o = { 0 };
	int rc;

	if ((rc = public_new(w->base, w->store, keys, ps, &w->pub, e)) < 0)
		return rc;
	o.fd = w->pub_fd;
	w->pub_fd = -1;
	o.ssl = w->pub_ssl;
	o.slots = slots;
	o.handshake.tv_sec = (time_t)(c->handshake_timeout_ms / 1000);
	o.handshake.tv_usec = (suseconds_t)(c->handshake_timeout_ms % 1000) * 1000;
	/* A long poll holds its request poll_s; the connection's idle timer
	 * does not run meanwhile, but must outlast the gap between polls. */
	o.idle.tv_sec = (time_t)c->idle_timeout;
	o.max_head = (size_t)c->max_headers;
	o.max_body = 65536;
	o.handler = public_handle;
	o.arg = w->pub;
	o.hooks = server_hooks;
	o.worker = w->idx;
	o.flush_priority = SERVER_PRIORITIES / 2;
	return httpd_new(w->base, &o, &w->pub_httpd, e);
}

static int server_worker_init(struct worker *w, const struct cconf *c, struct slots *slots,
			      const struct routes_shared *sh, struct keys_chan *keys, pos_err *e)
{
	struct httpd_opts o = { 0 };
	int rc;

	if ((rc = cconf_store_open(c, CCONF_STORE_WORKER, &w->store, e)) < 0)
		return rc;
	if (!(w->base = server_base_new()))
		return err_set(e, POS_ENOMEM, "worker %d: cannot make an event base", w->idx);
	if ((rc = routes_new(w->base, w->store, keys, sh, &w->routes, e)) < 0)
		return rc;
	/* Without dsn_read the analysts read the primary through the
	 * worker's read-only connection, which is what CCONF_STORE_READ
	 * would open: no second connection then. */
	if (c->backend == STORE_POSTGRESQL && c->store_dsn_read[0]) {
		if ((rc = cconf_store_open(c, CCONF_STORE_READ, &w->reads, e)) < 0)
			return rc;
		routes_set_reads(w->routes, w->reads);
	}
	w->stop_ev = event_new(w->base, -1, 0, server_stop_cb, w);
	w->drain_ev = evtimer_new(w->base, server_drain_cb, w);
	w->log_ev = event_new(w->base, -1, 0, server_log_flush_cb, w);
	if (!w->stop_ev || !w->drain_ev || !w->log_ev ||
	    event_priority_set(w->log_ev, SERVER_PRIORITIES - 1) < 0)
		return err_set(e, POS_ENOMEM, "worker %d: out of memory", w->idx);
	o.fd = w->fd;
	w->fd = -1; /* the httpd's now, even if httpd_new fails */
	o.ssl = w->ssl;
	o.slots = slots;
	o.handshake.tv_sec = (time_t)(c->handshake_timeout_ms / 1000);
	o.handshake.tv_usec = (suseconds_t)(c->handshake_timeout_ms % 1000) * 1000;
	o.idle.tv_sec = (time_t)c->idle_timeout;
	o.max_head = (size_t)c->max_headers;
	o.max_body = (size_t)c->max_body;
	o.handler = routes_handle;
	o.arg = w->routes;
	o.hooks = server_hooks;
	o.worker = w->idx;
	o.flush_priority = SERVER_PRIORITIES / 2; /* libevent's default for events */
	return httpd_new(w->base, &o, &w->httpd, e);
}

static void server_worker_free(struct worker *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->pub_fd >= 0)
		close(w->pub_fd);
	public_stop(w->pub); /* answers what the httpd still holds */
	httpd_free(w->httpd);
	w->httpd = NULL;
	httpd_free(w->pub_httpd);
	w->pub_httpd = NULL;
	public_free(w->pub);
	if (w->stop_ev)
		event_free(w->stop_ev);
	if (w->drain_ev)
		event_free(w->drain_ev);
	if (w->log_ev)
		event_free(w->log_ev);
	routes_free(w->routes);
	if (w->base)
		event_base_free(w->base);
	store_close(w->store);
	store_close(w->reads);
	memset(w, 0, sizeof *w);
	w->fd = -1;
	w->pub_fd = -1;
}

/* ------------------------------------------------------------ run */

/* One server per home: two would share one database and key set and both
 * claim to be central. An exclusive flock on central.lock (beside
 * central.conf) held for the server's life; the kernel drops it when the
 * process ends, however it ends, so a stale file never blocks a start.
 * Returns the open descriptor or a negative code. */
static int server_lock_home(const struct cconf *c, pos_err *e)
{
	char path[CCONF_PATH_MAX + 16];
	int fd, n;

	n = snprintf(path, sizeof path, "%s/central.lock", c->dir[0] ? c->dir : ".");
	if (n < 0 || (size_t)n >= sizeof path)
		return err_set(e, POS_ETOOBIG, "central's home path is too long for its lock file");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_set(e, POS_EIO, "%s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int rc = errno == EWOULDBLOCK
				 ? err_set(e, POS_EAGAIN,
					   "%s is locked: another pos-central serve runs on this home",
					   path)
				 : err_set(e, POS_EIO, "%s: cannot lock: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	return fd;
}

/* The database file need not exist (serve creates it), but its folder must
 * take the -wal and -shm files and an existing file must be a database
 * file serve may write. Opened by nobody here: check changes nothing. */
static int server_check_database_place(const struct cconf *c, pos_err *e)
{
	char dir[CCONF_PATH_MAX];
	const char *slash = strrchr(c->database, '/');
	struct stat st;

	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - c->database) : 1,
		 slash ? c->database : ".");
	if (!dir[0])
		snprintf(dir, sizeof dir, "/");
	if (access(dir, W_OK | X_OK) != 0)
		return err_set(e, POS_EPERM, "%s: [central] database: folder %s is not writable: %s",
			       c->path, dir, strerror(errno));
	if (lstat(c->database, &st) != 0)
		return errno == ENOENT ? 0
				       : err_set(e, POS_EIO, "%s: %s", c->database, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(e, POS_EINVAL, "%s: [central] database: %s is not a regular file",
			       c->path, c->database);
	if (access(c->database, R_OK | W_OK) != 0)
		return err_set(e, POS_EPERM, "%s: [central] database: %s: %s", c->path, c->database,
			       strerror(errno));
	return 0;
}

/* A damaged database is refused before it is served: serving would fail
 * only when a lane's basket lands on the bad page. */
static int server_check_store(const struct cconf *c, struct store *s, pos_err *e)
{
	int rc = store_quick_check(s, e);

	if (rc < 0)
		err_prefix(e, "%s is damaged; stop here, copy the last `pos-central backup` over "
			      "it and remove its -wal and -shm files (docs/operations.md)",
			   c->database);
	return rc;
}

long server_nworkers(const struct cconf *c)
{
	long n = c->workers;

	if (n <= 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		if (n < 1)
			n = 1;
	}
	if (n > SERVER_MAX_WORKERS)
		n = SERVER_MAX_WORKERS;
	return n;
}

/* PostgreSQL: the dsn (and dsn_read) connect. A connection that only
 * reads, so check creates and migrates nothing; the dsn is named without
 * its password. */
static int server_check_pg(const struct cconf *c, pos_err *e)
{
	const char *dsn[2] = { c->store_dsn, c->store_dsn_read };
	const char *key[2] = { "dsn", "dsn_read" };
	char safe[CCONF_PATH_MAX];
	struct db *db = NULL;
	int rc = 0;

	for (int i = 0; i < 2 && rc == 0; i++) {
		if (!dsn[i][0])
			continue;
		rc = db_open_pg(dsn[i], true, &db, e);
		db_close(db);
		db = NULL;
		if (rc < 0) {
			cconf_dsn_safe(dsn[i], safe, sizeof safe);
			err_prefix(e, "%s: [store] %s (%s)", c->path, key[i], safe);
		}
	}
	return rc;
}

int server_check(const struct cconf *c, pos_err *e)
{
	char host[SERVER_LISTEN_MAX], port[8];
	struct tls *tls = NULL;
	int rc;

	if ((rc = server_parse_listen(c->listen, host, port, e)) < 0) {
		err_prefix(e, "%s: [central] listen", c->path);
		goto out;
	}
	if ((rc = tls_open(c, TLS_CHECK, &tls, e)) < 0)
		goto out;
	if (c->backend == STORE_POSTGRESQL)
		rc = server_check_pg(c, e);
	else
		rc = server_check_database_place(c, e);
out:
	tls_free(tls);
	return rc;
}

/* The public routes' limits from central.conf ([ratelimit], [devices]);
 * *rl: ratelimit_free, after every worker stopped. */
/* GET /v1/keys's answer from the home's central.pub and the retired keys'
 * names. A home without central.pub still serves; the route answers 503. */
static int server_keys_answer(const struct cconf *c, char **out, pos_err *e)
{
	char pub[CCONF_PATH_MAX + 16];
	pos_err ke = { 0 };
	char q[300];

	(void)e;
	snprintf(pub, sizeof pub, "%s/central.pub", c->dir);
	if (routes_keys_answer(pub, c->hpke_retired, out, &ke) < 0)
		log_warn("keys_not_served", "error=%s (GET /v1/keys answers 503)",
			 log_q(q, sizeof q, ke.msg));
	return 0;
}

static int server_limits(const struct cconf *c, struct routes_shared *sh, struct ratelimit **rl,
			 pos_err *e)
{
	struct ratelimit_rule rules[ROUTES_RL_COUNT] = {
		[ROUTES_RL_REGISTER] = { c->rl_register_per_minute, c->rl_register_burst },
		[ROUTES_RL_DEVICE] = { c->rl_device_per_minute, c->rl_device_burst },
	};
	int rc;

	sh->devices.max_unused = c->devices_max_unused;
	sh->devices.unused_ttl_s = c->devices_unused_ttl_s;
	if ((rc = ratelimit_new((size_t)c->rl_entries, rules, ROUTES_RL_COUNT, rl, e)) < 0)
		return rc;
	sh->rl = *rl;
	return 0;
}

int server_run(const struct cconf *c, const char *listen_s, struct keyring *tokens,
	       struct keysproc *kp, pos_err *e)
{
	struct routes_shared sh = { 0 };
	char *keys_answer = NULL;
	struct tls *tls = NULL;
	struct worker *ws = NULL;
	struct ingest *ig = NULL;
	struct vendor_outbox *outbox = NULL;
	struct analyst_folder *folder = NULL;
	struct outbox *ob = NULL;
	struct ratelimit *rl = NULL;
	struct store *probe = NULL;
	struct store_where where;
	struct slots *slots = NULL, *pub_slots = NULL;
	struct slots_opts so;
	struct public_shared ps;
	bool pub_on = c->public_listen[0] != '\0';
	SSL_CTX *pub_ctx = NULL;
	int *pub_fds = NULL;
	char pub_addr[SERVER_LISTEN_MAX + 16] = "";
	sigset_t sigs, old;
	int *fds = NULL;
	char addr[SERVER_LISTEN_MAX + 16] = "";
	char why[32];
	long n = server_nworkers(c), i;
	int rc, sig = 0, lock_fd = -1;

	memset(&ps, 0, sizeof ps);
	ps.www_fd = -1;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP); /* reload: crl.pem, tokens, certificate, log level */
	sigaddset(&sigs, SIGCHLD); /* the keys process ended */
	/* Blocked before any thread starts, so every thread inherits it and
	 * only sigwait below sees the signals. */
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	signal(SIGPIPE, SIG_IGN);

	if (keysproc_nchan(kp) < (size_t)n) {
		rc = err_set(e, POS_EINVAL, "the keys process has %zu channels for %ld workers",
			     keysproc_nchan(kp), n);
		goto out;
	}

	if (evthread_use_pthreads() != 0) {
		rc = err_set(e, POS_ENOMEM, "libevent: no pthreads support");
		goto out;
	}
	/* Before the store is opened: a second server must not even migrate. */
	if ((lock_fd = server_lock_home(c, e)) < 0) {
		rc = lock_fd;
		goto out;
	}
	/* Opening once here migrates the schema before several connections
	 * race to. */
	if ((rc = cconf_store_open(c, CCONF_STORE_WRITE, &probe, e)) < 0 ||
	    (c->backend == STORE_SQLITE && (rc = server_check_store(c, probe, e)) < 0))
		goto out;
	store_close(probe);
	probe = NULL;
	if ((rc = tls_open(c, TLS_SERVE, &tls, e)) < 0)
		goto out;
	if (pub_on && ((rc = tls_public_ctx(c, &pub_ctx, e)) < 0 ||
		       (rc = public_shared_init(&ps, c, e)) < 0))
		goto out;
	cconf_store_where(c, CCONF_STORE_WRITE, &where);
	if ((rc = ingest_start_at(&where, &ig, e)) < 0)
		goto out;
	ps.ingest = ig;
	if (pub_on && (rc = vendor_outbox_start(c, &outbox, e)) < 0)
		goto out;
	sh.kr = tokens;
	sh.ingest = ig;
	if ((rc = analyst_shared_new(c, tokens, ig, &sh.analyst, e)) < 0)
		goto out;
	sh.auto_enrol = c->auto_enrol;
	sh.keys_async.timeout_ms = (int)c->keys_timeout_ms;
	sh.max_body = (size_t)c->max_body;
	/* The free-space check looks at the SQLite file's disk; PostgreSQL's
	 * disk is its DBA's to watch. */
	sh.database = c->backend == STORE_SQLITE ? c->database : NULL;
	sh.min_free_mb = c->min_free_disk_mb;
	if ((rc = server_keys_answer(c, &keys_answer, e)) < 0)
		goto out;
	sh.keys_answer = keys_answer;

	/* One budget for every worker, terminal_reserve_pct of it (rounded
	 * up) kept for terminals. */
	so.max = c->max_connections;
	so.reserved = (c->max_connections * c->terminal_reserve_pct + 99) / 100;
	if (so.reserved >= so.max)
		so.reserved = so.max - 1;
	so.per_address = c->max_connections_per_address;
	if ((rc = slots_new(&so, &slots, e)) < 0)
		goto out;
	if ((rc = server_limits(c, &sh, &rl, e)) < 0)
		goto out;
	ingest_every(ig, offers_expire_interval_ms(&sh.devices), offers_expire_tick, &sh.devices);
	if (c->backend == STORE_POSTGRESQL)
		rc = analyst_folder_start(c, sh.analyst, &folder, e);
	else
		ingest_every(ig, c->analyst_fold_ms, analyst_fold_tick, sh.analyst);
	if (rc < 0)
		goto out;

	if (pub_on) {
		/* Its own budget: browsers never take the lanes' slots. */
		so.reserved = 0;
		if ((rc = slots_new(&so, &pub_slots, e)) < 0)
			goto out;
	}
	ws = calloc((size_t)n, sizeof *ws);
	fds = calloc((size_t)n, sizeof *fds);
	pub_fds = calloc((size_t)n, sizeof *pub_fds);
	if (!ws || !fds || !pub_fds) {
		rc = err_set(e, POS_ENOMEM, "out of memory for %ld workers", n);
		goto out;
	}
	for (i = 0; i < n; i++) {
		ws[i].fd = -1;
		ws[i].pub_fd = -1;
		pub_fds[i] = -1;
	}
	if ((rc = server_listen(listen_s ? listen_s : c->listen, fds, (int)n, addr, sizeof addr,
				e)) < 0)
		goto out;
	if (pub_on && (rc = server_listen(c->public_listen, pub_fds, (int)n, pub_addr,
					  sizeof pub_addr, e)) < 0) {
		err_prefix(e, "public_listen");
		goto out;
	}
	for (i = 0; i < n; i++) {
		ws[i].idx = (int)i;
		ws[i].pin = c->pin_threads;
		ws[i].ssl = tls_ctx(tls);
		ws[i].fd = fds[i];
		fds[i] = -1;
		ws[i].pub_fd = pub_fds[i];
		ws[i].pub_ssl = pub_ctx;
		pub_fds[i] = -1;
		if ((rc = server_worker_init(&ws[i], c, slots, &sh, keysproc_chan(kp, (size_t)i), e)) < 0)
			goto out;
		if (pub_on && (rc = server_worker_public(&ws[i], c, pub_slots, &ps,
							      keysproc_chan(kp, (size_t)i), e)) < 0)
			goto out;
	}
	for (i = 0; i < n; i++) {
		if (pthread_create(&ws[i].thread, NULL, server_worker_main, &ws[i]) != 0) {
			rc = err_set(e, POS_ENOMEM, "cannot start worker %ld", i);
			goto stop;
		}
		ws[i].started = true;
	}
	/* Deliveries out (CRM, SMS replies) on a thread of their own, with
	 * the keys process's spare channel when it has one. */
	if ((rc = outbox_start(c, keysproc_nchan(kp) > (size_t)n ? keysproc_chan(kp, (size_t)n)
								 : NULL,
			       &ob, e)) < 0)
		goto stop;
	log_info("listening",
		 "addr=%s workers=%ld tls=1.3 auto_enrol=%s hpke_keys=%zu keys_pid=%ld", addr, n,
		 c->auto_enrol ? "yes" : "no", keysproc_hpke_keys(kp), (long)keysproc_pid(kp));
	if (pub_on)
		log_info("listening_public", "addr=%s www=%s", pub_addr, ps.www);
	service_notify("READY=1");

	/* The main thread's other work, at most once a second: the keys
	 * process (looked at before each wait: a SIGCHLD from before the mask
	 * is lost), crl.pem and the ticket keys. */
	for (;;) {
		struct timespec tick = { 1, 0 };

		if (!keysproc_alive(kp, why, sizeof why)) {
			log_error("keys_process_ended", "how=\"%s\" detail=\"serve stops\"", why);
			rc = err_set(e, POS_EIO, "the keys process ended (%s): serve stops", why);
			goto stop;
		}
		if (service_watchdog_on())
			service_notify("WATCHDOG=1");
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig == SIGHUP) {
			log_info("reload", "signal=HUP");
			service_reload(c, tls, tokens);
			tls_reread(tls);
		} else if (sig > 0 && sig != SIGCHLD)
			break;
		tls_tick(tls);
	}
	log_info("stopping", "signal=%s", sig == SIGTERM ? "TERM" : "INT");
	rc = 0;
stop:
	service_notify("STOPPING=1");
	outbox_stop(ob);
	for (i = 0; i < n; i++)
		if (ws[i].started)
			event_active(ws[i].stop_ev, EV_READ, 1);
	for (i = 0; i < n; i++)
		if (ws[i].started) {
			pthread_join(ws[i].thread, NULL);
			ws[i].started = false;
		}
	if (rc == 0)
		tls_save(tls);
	/* Every worker waited for its baskets, so the queue is empty; stop
	 * commits whatever is left anyway. */
	vendor_outbox_stop(outbox);
	outbox = NULL;
	analyst_folder_stop(folder);
	folder = NULL;
	ingest_stop(ig);
	if (rc == 0)
		log_info("stopped", "addr=%s", addr);
out:
	for (i = 0; ws && i < n; i++)
		server_worker_free(&ws[i]);
	for (i = 0; fds && i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (i = 0; pub_fds && i < n; i++)
		if (pub_fds[i] >= 0)
			close(pub_fds[i]);
	free(ws);
	free(fds);
	free(pub_fds);
	slots_free(pub_slots);
	SSL_CTX_free(pub_ctx);
	public_shared_free(&ps);
	store_close(probe);
	slots_free(slots);
	vendor_outbox_stop(outbox);
	analyst_folder_stop(folder);
	ingest_free(ig);
	analyst_shared_free(sh.analyst);
	free(keys_answer);
	ratelimit_free(rl);
	tls_free(tls);
	if (lock_fd >= 0)
		close(lock_fd); /* releases the home */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
