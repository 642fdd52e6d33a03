#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd.h"
#include "ingest.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"
#include "timeutil.h"
#include "wipe.h"

#define SERVER_BACKLOG 1024
#define SERVER_DRAIN_TICK_MS 20
#define SERVER_PRIORITIES 3
/* After the writer's queue is empty, how long replies already sent may take
 * to reach their clients before the connections are closed anyway. */
#define SERVER_FLUSH_GRACE_US 3000000
#define SERVER_SESSION_CTX "pos-central"
#define SERVER_TICKET_FILE "ticket.key"

/* The session ticket keys (ticket.key): tickets sealed with them stay
 * valid across a restart, so terminals reconnecting after one resume
 * instead of paying a full handshake each. Read-only after start. */
struct server_ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
};

struct worker {
	int idx;
	pthread_t thread;
	bool started;
	int fd;
	SSL_CTX *ssl;
	struct event_base *base;
	struct httpd *httpd;
	struct store *store;
	struct routes *routes;
	struct event *stop_ev, *drain_ev;
	struct event *log_ev; /* lowest priority: writes the buffered log lines */
	bool stopping;
	int64_t flush_deadline_us;
};

/* SSL_CTX ex_data slot holding its struct server_ticket_key. */
static int server_ctx_idx = -1;
static pthread_once_t server_once = PTHREAD_ONCE_INIT;

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

/* ------------------------------------------------------------ TLS */

static void server_once_init(void)
{
	server_ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* The last OpenSSL error as text for a startup message (no secrets in it:
 * it names files and reasons). */
static const char *server_ssl_error(char *buf, size_t n)
{
	unsigned long code = ERR_peek_last_error();

	if (!code)
		snprintf(buf, n, "unknown TLS error");
	else
		ERR_error_string_n(code, buf, n);
	ERR_clear_error();
	return buf;
}

int server_ticket_key_create(const char *path, pos_err *e)
{
	unsigned char buf[SERVER_TICKET_KEY_LEN];
	int rc;

	if (RAND_bytes(buf, sizeof buf) != 1)
		return err_set(e, POS_ECRYPTO, "no random bytes for the session ticket key");
	rc = keys_write_file(path, buf, sizeof buf, 0600, 0, e);
	wipe(buf, sizeof buf);
	return rc;
}

/* Loads ticket.key from central's home, making it first for a home set up
 * before the file existed. Refused when group or others can read it. */
static int server_ticket_key_load(const struct cconf *c, struct server_ticket_key *k,
				  pos_err *e)
{
	unsigned char buf[SERVER_TICKET_KEY_LEN + 1];
	char path[CCONF_PATH_MAX + 16];
	struct stat st;
	ssize_t got;
	size_t have = 0;
	int fd, n, rc, rerr = 0;

	n = snprintf(path, sizeof path, "%s/" SERVER_TICKET_FILE, c->dir[0] ? c->dir : ".");
	if (n < 0 || (size_t)n >= sizeof path)
		return err_set(e, POS_ETOOBIG, "central's home path is too long for %s",
			       SERVER_TICKET_FILE);
	if (lstat(path, &st) != 0) {
		if (errno != ENOENT)
			return err_set(e, POS_EIO, "%s: %s", path, strerror(errno));
		if ((rc = server_ticket_key_create(path, e)) < 0)
			return rc;
		log_info("ticket_key_created", "file=%s", path);
	}
	if ((rc = keys_check_private_mode(path, e)) < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return err_set(e, POS_EIO, "%s: %s", path, strerror(errno));
	/* One byte more than the size, to see a longer file. */
	while (have < sizeof buf) {
		got = read(fd, buf + have, sizeof buf - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			rerr = errno;
		if (got <= 0)
			break;
		have += (size_t)got;
	}
	close(fd);
	if (rerr)
		return err_set(e, POS_EIO, "%s: %s", path, strerror(rerr));
	if (have != SERVER_TICKET_KEY_LEN) {
		wipe(buf, sizeof buf);
		return err_set(e, POS_EINVAL,
			       "%s: expected %d bytes, not %zu; delete it to make a new one", path,
			       SERVER_TICKET_KEY_LEN, have);
	}
	memcpy(k->name, buf, sizeof k->name);
	memcpy(k->aes, buf + 16, sizeof k->aes);
	memcpy(k->hmac, buf + 48, sizeof k->hmac);
	wipe(buf, sizeof buf);
	return 0;
}

/* OpenSSL's ticket callback: enc seals a new ticket with our key; else
 * opens one, 0 (full handshake) for a key name we do not hold. The
 * ticket's own cipher is AES-256-CBC with HMAC-SHA256 (OpenSSL's format);
 * TLS 1.3 binds it to the handshake besides. */
static int server_ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv,
			    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct server_ticket_key *k =
		SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), server_ctx_idx);
	OSSL_PARAM params[3];

	if (!k)
		return -1;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac,
						      sizeof k->hmac);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (enc) {
		memcpy(key_name, k->name, sizeof k->name);
		if (RAND_bytes(iv, EVP_CIPHER_iv_length(EVP_aes_256_cbc())) != 1 ||
		    EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1 ||
		    EVP_MAC_CTX_set_params(hctx, params) != 1)
			return -1;
		return 1;
	}
	if (CRYPTO_memcmp(key_name, k->name, sizeof k->name) != 0)
		return 0;
	if (EVP_MAC_CTX_set_params(hctx, params) != 1 ||
	    EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1)
		return -1;
	/* 2 = renew: with 1, OpenSSL sends no new ticket on a resumed TLS 1.3
	 * connection, and a client that resumes from that connection's
	 * session next time gets a full handshake (measured: every other
	 * reconnect). */
	return 2;
}

static int server_tls(const struct cconf *c, const struct server_ticket_key *tk, SSL_CTX **out,
		      pos_err *e)
{
	STACK_OF(X509_NAME) *cas = NULL;
	char eb[256];
	SSL_CTX *ctx;
	int rc;

	*out = NULL;
	if ((rc = keys_check_private_mode(c->tls_key, e)) < 0)
		return rc;
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return err_set(e, POS_ENOMEM, "TLS: cannot make a context");
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
		rc = err_set(e, POS_ECRYPTO, "TLS: cannot require TLS 1.3");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1) {
		rc = err_set(e, POS_ECRYPTO, "%s: %s", c->tls_cert, server_ssl_error(eb, sizeof eb));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		rc = err_set(e, POS_ECRYPTO, "%s: %s", c->tls_key, server_ssl_error(eb, sizeof eb));
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, c->tls_ca, NULL) != 1 ||
	    !(cas = SSL_load_client_CA_file(c->tls_ca))) {
		rc = err_set(e, POS_ECRYPTO, "%s: %s", c->tls_ca, server_ssl_error(eb, sizeof eb));
		goto fail;
	}
	SSL_CTX_set_client_CA_list(ctx, cas);
	/* Ask for a certificate but do not demand one: analysts have none.
	 * One that is sent must verify (our CA, in date, clientAuth), or the
	 * handshake fails. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	/* Resumption (tickets, on by default in TLS 1.3) with client
	 * certificates needs a session id context, or OpenSSL refuses it. */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SERVER_SESSION_CTX,
				       sizeof SERVER_SESSION_CTX - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	if (SSL_CTX_set_ex_data(ctx, server_ctx_idx, (void *)tk) != 1 ||
	    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, server_ticket_cb) != 1) {
		rc = err_set(e, POS_ECRYPTO, "TLS: cannot install the session ticket key");
		goto fail;
	}
	/* Read-ahead: one read(2) takes what the kernel holds, not a record
	 * header and then its body; httpd asks SSL_has_pending before it waits
	 * for the socket. Partial writes: httpd keeps its own offset into a
	 * reply. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	*out = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return rc;
}

static bool server_id_valid(const unsigned char *p, int n)
{
	if (n < 1 || n > STORE_ID_MAX)
		return false;
	for (int i = 0; i < n; i++) {
		unsigned char ch = p[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* The one entry of nid in name, copied when it is a valid id. */
static int server_name_entry(X509_NAME *name, int nid, char out[STORE_ID_MAX + 1])
{
	int i = X509_NAME_get_index_by_NID(name, nid, -1);
	const ASN1_STRING *s;
	int n;

	if (i < 0 || X509_NAME_get_index_by_NID(name, nid, i) >= 0)
		return POS_EPERM;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	n = s ? ASN1_STRING_length(s) : 0;
	if (!s || !server_id_valid(ASN1_STRING_get0_data(s), n))
		return POS_EPERM;
	memcpy(out, ASN1_STRING_get0_data(s), (size_t)n);
	out[n] = '\0';
	return 0;
}

int server_peer_identity(SSL *ssl, char store[STORE_ID_MAX + 1], char terminal[STORE_ID_MAX + 1])
{
	X509 *cert;
	X509_NAME *name;

	store[0] = terminal[0] = '\0';
	if (!ssl)
		return POS_EPERM;
	cert = SSL_get0_peer_certificate(ssl);
	if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
		return POS_EPERM;
	name = X509_get_subject_name(cert);
	if (!name || server_name_entry(name, NID_organizationalUnitName, store) < 0 ||
	    server_name_entry(name, NID_commonName, terminal) < 0) {
		store[0] = terminal[0] = '\0';
		return POS_EPERM;
	}
	return 0;
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
	if (routes_waiting(w->routes) > 0 ||
	    (httpd_writing(w->httpd) > 0 && time_mono_us() < w->flush_deadline_us)) {
		evtimer_add(w->drain_ev, &tick);
		return;
	}
	httpd_free(w->httpd);
	w->httpd = NULL;
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
	w->flush_deadline_us = time_mono_us() + SERVER_FLUSH_GRACE_US;
	server_drain_cb(-1, 0, w);
}

/* Runs when the loop has handled every other event that was ready: the
 * request lines of that whole batch leave in one write. */
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

	event_active(w->log_ev, EV_TIMEOUT, 1);
}

static void *server_worker_main(void *arg)
{
	struct worker *w = arg;

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

static int server_worker_init(struct worker *w, const struct cconf *c, long nworkers,
			      const struct routes_shared *sh, struct keys_chan *keys, pos_err *e)
{
	struct httpd_opts o = { 0 };
	int rc;

	if ((rc = store_open(c->database, &w->store, e)) < 0)
		return rc;
	if (!(w->base = server_base_new()))
		return err_set(e, POS_ENOMEM, "worker %d: cannot make an event base", w->idx);
	if ((rc = routes_new(w->base, w->store, keys, sh, &w->routes, e)) < 0)
		return rc;
	w->stop_ev = event_new(w->base, -1, 0, server_stop_cb, w);
	w->drain_ev = evtimer_new(w->base, server_drain_cb, w);
	w->log_ev = event_new(w->base, -1, 0, server_log_flush_cb, w);
	if (!w->stop_ev || !w->drain_ev || !w->log_ev ||
	    event_priority_set(w->log_ev, SERVER_PRIORITIES - 1) < 0)
		return err_set(e, POS_ENOMEM, "worker %d: out of memory", w->idx);
	o.fd = w->fd;
	w->fd = -1; /* the httpd's now, even if httpd_new fails */
	o.ssl = w->ssl;
	/* Round up so the workers together allow max_connections. */
	o.max_conns = (c->max_connections + nworkers - 1) / nworkers;
	o.idle.tv_sec = (time_t)c->idle_timeout;
	o.max_head = (size_t)c->max_headers;
	o.max_body = (size_t)c->max_body;
	o.handler = routes_handle;
	o.arg = w->routes;
	o.worker = w->idx;
	o.flush_priority = SERVER_PRIORITIES / 2; /* libevent's default for events */
	return httpd_new(w->base, &o, &w->httpd, e);
}

static void server_worker_free(struct worker *w)
{
	if (w->fd >= 0)
		close(w->fd);
	httpd_free(w->httpd);
	w->httpd = NULL;
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
	memset(w, 0, sizeof *w);
	w->fd = -1;
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

int server_run(const struct cconf *c, const char *listen_s, const struct keyring *tokens,
	       struct keysproc *kp, pos_err *e)
{
	struct routes_shared sh = { 0 };
	struct server_ticket_key tk = { 0 };
	struct worker *ws = NULL;
	struct ingest *ig = NULL;
	struct store *probe = NULL;
	SSL_CTX *ctx = NULL;
	sigset_t sigs, old;
	int *fds = NULL;
	char addr[SERVER_LISTEN_MAX + 16] = "";
	char why[32];
	long n = server_nworkers(c), i;
	int rc, sig = 0, lock_fd = -1;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
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
	pthread_once(&server_once, server_once_init);
	if (server_ctx_idx < 0) {
		rc = err_set(e, POS_ENOMEM, "TLS: no ex_data slot");
		goto out;
	}
	/* Before the store is opened: a second server must not even migrate. */
	if ((lock_fd = server_lock_home(c, e)) < 0) {
		rc = lock_fd;
		goto out;
	}
	/* Opening once here migrates the schema before several connections
	 * race to. */
	if ((rc = store_open(c->database, &probe, e)) < 0)
		goto out;
	store_close(probe);
	if ((rc = server_ticket_key_load(c, &tk, e)) < 0)
		goto out;
	if ((rc = server_tls(c, &tk, &ctx, e)) < 0)
		goto out;
	if ((rc = ingest_start(c->database, &ig, e)) < 0)
		goto out;
	sh.kr = tokens;
	sh.ingest = ig;
	sh.auto_enrol = c->auto_enrol;
	sh.max_body = (size_t)c->max_body;

	ws = calloc((size_t)n, sizeof *ws);
	fds = calloc((size_t)n, sizeof *fds);
	if (!ws || !fds) {
		rc = err_set(e, POS_ENOMEM, "out of memory for %ld workers", n);
		goto out;
	}
	for (i = 0; i < n; i++)
		ws[i].fd = -1;
	if ((rc = server_listen(listen_s ? listen_s : c->listen, fds, (int)n, addr, sizeof addr,
				e)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		ws[i].idx = (int)i;
		ws[i].ssl = ctx;
		ws[i].fd = fds[i];
		fds[i] = -1;
		if ((rc = server_worker_init(&ws[i], c, n, &sh, keysproc_chan(kp, (size_t)i), e)) < 0)
			goto out;
	}
	for (i = 0; i < n; i++) {
		if (pthread_create(&ws[i].thread, NULL, server_worker_main, &ws[i]) != 0) {
			rc = err_set(e, POS_ENOMEM, "cannot start worker %ld", i);
			goto stop;
		}
		ws[i].started = true;
	}
	log_info("listening",
		 "addr=%s workers=%ld tls=1.3 auto_enrol=%s hpke_keys=%zu keys_pid=%ld", addr, n,
		 c->auto_enrol ? "yes" : "no", keysproc_hpke_keys(kp), (long)keysproc_pid(kp));

	/* Looked at before each wait: a SIGCHLD from before the mask is lost. */
	for (;;) {
		if (!keysproc_alive(kp, why, sizeof why)) {
			log_error("keys_process_ended", "how=\"%s\" detail=\"serve stops\"", why);
			rc = err_set(e, POS_EIO, "the keys process ended (%s): serve stops", why);
			goto stop;
		}
		while (sigwait(&sigs, &sig) != 0)
			;
		if (sig != SIGCHLD)
			break;
	}
	log_info("stopping", "signal=%s", sig == SIGTERM ? "TERM" : "INT");
	rc = 0;
stop:
	for (i = 0; i < n; i++)
		if (ws[i].started)
			event_active(ws[i].stop_ev, EV_READ, 1);
	for (i = 0; i < n; i++)
		if (ws[i].started) {
			pthread_join(ws[i].thread, NULL);
			ws[i].started = false;
		}
	/* Every worker waited for its baskets, so the queue is empty; stop
	 * commits whatever is left anyway. */
	ingest_stop(ig);
	if (rc == 0)
		log_info("stopped", "addr=%s", addr);
out:
	for (i = 0; ws && i < n; i++)
		server_worker_free(&ws[i]);
	for (i = 0; fds && i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(ws);
	free(fds);
	ingest_free(ig);
	SSL_CTX_free(ctx);
	wipe(&tk, sizeof tk);
	if (lock_fd >= 0)
		close(lock_fd); /* releases the home */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
