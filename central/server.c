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

#include "file.h"
#include "httpd.h"
#include "ids.h"
#include "ingest.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "pki.h"
#include "public.h"
#include "routes.h"
#include "slots.h"
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
#define SERVER_SESSIONS_FILE "tls_sessions"
/* One session as DER: mostly the client certificate. */
#define SERVER_SESS_DER_MAX 16384

/* One session ticket key: a ticket names the key that sealed it. */
struct server_ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
};

/*
 * The session ticket keys. keys[0] seals new tickets; keys[1], when n is
 * 2, is the one it replaced and still opens tickets for one more period.
 * Both live in ticket.key (the current key first) so that terminals
 * reconnecting after a restart resume instead of paying a full handshake
 * each; the file's mtime is when keys[0] began. The main thread rotates
 * them; workers' handshakes read them under the lock.
 */
/*
 * One resumable TLS session, found by the id its ticket carries. epoch is
 * the name of the ticket key current when it was issued: the session
 * resumes while that key is still held (one period more), as a ticket
 * that key sealed would. s is NULL while only der is held (read from the
 * sessions file at start; decoded when its terminal comes back).
 */
struct server_sess {
	unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
	unsigned char epoch[16];
	SSL_SESSION *s;
	unsigned char *der;
	size_t der_len;
	struct server_sess *hnext;         /* same bucket */
	struct server_sess *older, *newer; /* issue order: the oldest goes first */
};

/*
 * The sessions central can resume, at most max ([tls] session_cache). A
 * ticket is only a session's id, so resuming decodes nothing; each resumes
 * once (the resumed connection gets a new ticket). Workers add and take
 * under the mutex; the main thread drops a period's sessions when its key
 * goes, and logs evictions.
 */
struct server_sessions {
	pthread_mutex_t lock;
	bool ready;
	struct server_sess **bucket;
	size_t nbuckets, n, max;
	struct server_sess *oldest, *newest;
	unsigned long evicted; /* since the main thread last logged */
};

struct server_tickets {
	pthread_rwlock_t lock;
	struct server_ticket_key keys[2];
	int n;
	time_t born;
	long period;
	char path[CCONF_PATH_MAX + 16];
	struct server_sessions cache;
};

/*
 * What verifies terminal certificates: the CA and, when crl.pem exists, its
 * CRL with CRL checking on. Every handshake takes the store current when
 * its ClientHello arrives; the main thread builds a new one when crl.pem
 * changes and swaps it in under the lock, so handshakes already running
 * keep the store they took (it is reference counted).
 */
struct server_trust {
	pthread_rwlock_t lock;
	X509_STORE *store;
	X509_CRL *crl;        /* NULL: nothing revoked */
	X509 *ca;             /* must have signed the CRL */
	const char *ca_path;
	char path[CCONF_PATH_MAX + 16];
	struct stat seen;     /* crl.pem as last looked at; st_ino 0: missing */
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
	/* The public listener's, when [central] public_listen is set. */
	int pub_fd;
	SSL_CTX *pub_ssl;
	struct httpd *pub_httpd;
	struct public *pub;
	bool stopping;
	int64_t flush_deadline_us;
};

/* SSL_CTX ex_data slots holding its struct server_tickets and its
 * struct server_trust. */
static int server_ctx_idx = -1;
static int server_trust_idx = -1;
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
	server_trust_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
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

static void server_ticket_key_split(struct server_ticket_key *k, const unsigned char *raw)
{
	memcpy(k->name, raw, sizeof k->name);
	memcpy(k->aes, raw + 16, sizeof k->aes);
	memcpy(k->hmac, raw + 48, sizeof k->hmac);
}

/* Loads ticket.key from central's home (one key, or the current and the
 * previous one), making it first for a home set up before the file
 * existed. Refused when group or others can read it. */
static int server_tickets_load(const struct cconf *c, struct server_tickets *t, pos_err *e)
{
	unsigned char buf[2 * SERVER_TICKET_KEY_LEN + 1];
	struct stat st;
	size_t have = 0;
	int n, rc;

	t->period = c->ticket_rotate_s;
	n = snprintf(t->path, sizeof t->path, "%s/" SERVER_TICKET_FILE, c->dir[0] ? c->dir : ".");
	if (n < 0 || (size_t)n >= sizeof t->path)
		return err_set(e, POS_ETOOBIG, "central's home path is too long for %s",
			       SERVER_TICKET_FILE);
	if (lstat(t->path, &st) != 0) {
		if (errno != ENOENT)
			return err_set(e, POS_EIO, "%s: %s", t->path, strerror(errno));
		if ((rc = server_ticket_key_create(t->path, e)) < 0)
			return rc;
		log_info("ticket_key_created", "file=%s", t->path);
	}
	/* One byte more than two keys, to see a longer file. */
	if ((rc = file_read(t->path, FILE_PRIVATE | FILE_NOFOLLOW, buf, sizeof buf, &have, &st,
			    e)) < 0)
		return rc;
	if (have != SERVER_TICKET_KEY_LEN && have != 2 * SERVER_TICKET_KEY_LEN) {
		wipe(buf, sizeof buf);
		return err_set(e, POS_EINVAL,
			       "%s: expected %d or %d bytes, not %zu; delete it to make a new one",
			       t->path, SERVER_TICKET_KEY_LEN, 2 * SERVER_TICKET_KEY_LEN, have);
	}
	t->n = (int)(have / SERVER_TICKET_KEY_LEN);
	for (int i = 0; i < t->n; i++)
		server_ticket_key_split(&t->keys[i], buf + i * SERVER_TICKET_KEY_LEN);
	t->born = st.st_mtime;
	wipe(buf, sizeof buf);
	return 0;
}

static void server_sessions_tick(struct server_tickets *t, bool purge);

/*
 * Once keys[0] has sealed tickets for a period, a fresh key takes over
 * and keys[0] becomes the previous key (dropped instead when it is two
 * periods old: after a long stop, say). The file is rewritten for the
 * next start; if that fails the keys in memory still rotate. Called from
 * the main thread only.
 */
static void server_tickets_poll(struct server_tickets *t, time_t now)
{
	unsigned char raw[2 * SERVER_TICKET_KEY_LEN];
	struct server_ticket_key fresh;
	pos_err e = { 0 };
	long age = (long)(now - t->born);
	int n;

	if (age < 0)
		t->born = now; /* the clock went back: a period from now */
	if (age < t->period) {
		server_sessions_tick(t, false);
		return;
	}
	if (RAND_bytes(raw, SERVER_TICKET_KEY_LEN) != 1) {
		log_error("ticket_key_rotate_failed", "file=%s error=no random bytes", t->path);
		t->born = now; /* tried again a period later */
		return;
	}
	server_ticket_key_split(&fresh, raw);
	pthread_rwlock_wrlock(&t->lock);
	if (age < 2 * t->period) {
		t->keys[1] = t->keys[0];
		n = 2;
	} else {
		wipe(&t->keys[1], sizeof t->keys[1]);
		n = 1;
	}
	t->keys[0] = fresh;
	t->n = n;
	t->born = now;
	memcpy(raw + SERVER_TICKET_KEY_LEN, &t->keys[1], n == 2 ? SERVER_TICKET_KEY_LEN : 0);
	pthread_rwlock_unlock(&t->lock);
	wipe(&fresh, sizeof fresh);
	if (keys_write_file(t->path, raw, (size_t)n * SERVER_TICKET_KEY_LEN, 0600, 1, &e) < 0)
		log_error("ticket_key_save_failed", "file=%s error=%s", t->path, e.msg);
	else
		log_info("ticket_key_rotated", "file=%s keys=%d period_s=%ld", t->path, n,
			 t->period);
	wipe(raw, sizeof raw);
	server_sessions_tick(t, true);
}

/* ------------------------------------------------------------ sessions */

static int server_trust_revoked(struct server_trust *t, X509 *cert);

/* Seconds a client may keep a ticket: until its period's key is dropped
 * (two periods at most), and never over TLS 1.3's week. */
static long server_sessions_lifetime(long period)
{
	long s = period > 302400 ? 604800 : 2 * period;

	return s > 0 ? s : 1;
}

static int server_sessions_init(struct server_sessions *c, long max, pos_err *e)
{
	if (c->ready)
		return 0;
	c->max = max > 0 ? (size_t)max : 1;
	c->nbuckets = 64;
	while (c->nbuckets < c->max && c->nbuckets < (size_t)1 << 24)
		c->nbuckets <<= 1;
	c->bucket = calloc(c->nbuckets, sizeof *c->bucket);
	if (!c->bucket)
		return err_set(e, POS_ENOMEM, "out of memory for a TLS session cache of %ld", max);
	pthread_mutex_init(&c->lock, NULL);
	c->ready = true;
	return 0;
}

static void server_sess_free(struct server_sess *x)
{
	if (!x)
		return;
	SSL_SESSION_free(x->s); /* OpenSSL wipes its master key */
	if (x->der)
		wipe_free(x->der, x->der_len);
	free(x);
}

/* The id is random: its first bytes spread the buckets. Locked. */
static struct server_sess **server_sess_slot(struct server_sessions *c, const unsigned char *id)
{
	uint64_t h;

	memcpy(&h, id, sizeof h);
	return &c->bucket[h & (c->nbuckets - 1)];
}

/* Takes x out of the table and the age list. Locked. */
static void server_sess_unlink(struct server_sessions *c, struct server_sess *x)
{
	struct server_sess **pp = server_sess_slot(c, x->id);

	while (*pp && *pp != x)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = x->hnext;
	if (x->older)
		x->older->newer = x->newer;
	else
		c->oldest = x->newer;
	if (x->newer)
		x->newer->older = x->older;
	else
		c->newest = x->older;
	x->hnext = x->older = x->newer = NULL;
	c->n--;
}

/* Adds x as the newest; returns the entry evicted to make room (the
 * caller frees it outside the lock), or NULL. Locked. */
static struct server_sess *server_sess_link(struct server_sessions *c, struct server_sess *x)
{
	struct server_sess **pp = server_sess_slot(c, x->id), *gone = NULL;

	if (c->n >= c->max && c->oldest) {
		gone = c->oldest;
		server_sess_unlink(c, gone);
		c->evicted++;
	}
	x->hnext = *pp;
	*pp = x;
	x->older = c->newest;
	x->newer = NULL;
	if (c->newest)
		c->newest->newer = x;
	else
		c->oldest = x;
	c->newest = x;
	c->n++;
	return gone;
}

/* 1 when the key named epoch is still held: its sessions may resume. */
static int server_sess_epoch_held(struct server_tickets *t, const unsigned char epoch[16])
{
	int held = 0;

	pthread_rwlock_rdlock(&t->lock);
	for (int i = 0; i < t->n && !held; i++)
		held = CRYPTO_memcmp(epoch, t->keys[i].name, sizeof t->keys[i].name) == 0;
	pthread_rwlock_unlock(&t->lock);
	return held;
}

/* OpenSSL made a session and sends its id as a ticket: keep a copy of it.
 * A copy, because OpenSSL marks the connection's own session unresumable
 * when the connection closes without our close_notify, as keep-alive
 * connections do. Returns 0: OpenSSL keeps its reference. */
static int server_sess_new_cb(SSL *s, SSL_SESSION *sess)
{
	struct server_tickets *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), server_ctx_idx);
	struct server_sess *x, *gone;
	const unsigned char *id;
	unsigned int len = 0;

	if (!t || !t->cache.ready)
		return 0;
	id = SSL_SESSION_get_id(sess, &len);
	if (len != SSL_MAX_SSL_SESSION_ID_LENGTH || !(x = calloc(1, sizeof *x)))
		return 0;
	if (!(x->s = SSL_SESSION_dup(sess))) {
		free(x);
		return 0;
	}
	memcpy(x->id, id, len);
	pthread_rwlock_rdlock(&t->lock);
	memcpy(x->epoch, t->keys[0].name, sizeof x->epoch);
	pthread_rwlock_unlock(&t->lock);
	pthread_mutex_lock(&t->cache.lock);
	gone = server_sess_link(&t->cache, x);
	pthread_mutex_unlock(&t->cache.lock);
	server_sess_free(gone);
	return 0;
}

/*
 * A client offers a ticket: the session it names, taken out of the cache
 * (a ticket resumes once). NULL, and so a full handshake, when it is
 * unknown, its period's key is gone, or its certificate is revoked now
 * (the full handshake then refuses it). *copy 0: the cache's reference
 * goes to OpenSSL.
 */
static SSL_SESSION *server_sess_get_cb(SSL *s, const unsigned char *id, int len, int *copy)
{
	SSL_CTX *ctx = SSL_get_SSL_CTX(s);
	struct server_tickets *t = SSL_CTX_get_ex_data(ctx, server_ctx_idx);
	struct server_trust *tr = SSL_CTX_get_ex_data(ctx, server_trust_idx);
	struct server_sess *x;
	SSL_SESSION *sess = NULL;
	X509 *peer;

	*copy = 0;
	if (!t || !t->cache.ready || len != SSL_MAX_SSL_SESSION_ID_LENGTH)
		return NULL;
	pthread_mutex_lock(&t->cache.lock);
	for (x = *server_sess_slot(&t->cache, id); x; x = x->hnext)
		if (memcmp(x->id, id, sizeof x->id) == 0)
			break;
	if (x)
		server_sess_unlink(&t->cache, x);
	pthread_mutex_unlock(&t->cache.lock);
	if (!x || !server_sess_epoch_held(t, x->epoch))
		goto out;
	if (!x->s) {
		const unsigned char *p = x->der;

		x->s = d2i_SSL_SESSION(NULL, &p, (long)x->der_len);
		ERR_clear_error();
	}
	peer = x->s ? SSL_SESSION_get0_peer(x->s) : NULL;
	if (!x->s || (peer && tr && server_trust_revoked(tr, peer)))
		goto out;
	sess = x->s;
	x->s = NULL;
out:
	server_sess_free(x);
	return sess;
}

/*
 * Main thread, once a second: after a rotation (purge), the sessions of a
 * period whose key is gone are dropped and their secrets wiped; evictions
 * since the last call are logged once.
 */
static void server_sessions_tick(struct server_tickets *t, bool purge)
{
	struct server_sessions *c = &t->cache;
	struct server_sess *x, *next, *dead = NULL;
	unsigned char names[2][16];
	unsigned long evicted;
	size_t n;
	int held;

	if (!c->ready)
		return;
	pthread_rwlock_rdlock(&t->lock);
	held = t->n;
	memcpy(names[0], t->keys[0].name, 16);
	memcpy(names[1], t->keys[1].name, 16);
	pthread_rwlock_unlock(&t->lock);
	pthread_mutex_lock(&c->lock);
	for (x = purge ? c->oldest : NULL; x; x = next) {
		next = x->newer;
		if (memcmp(x->epoch, names[0], 16) != 0 &&
		    (held < 2 || memcmp(x->epoch, names[1], 16) != 0)) {
			server_sess_unlink(c, x);
			x->hnext = dead;
			dead = x;
		}
	}
	evicted = c->evicted;
	c->evicted = 0;
	n = c->n;
	pthread_mutex_unlock(&c->lock);
	for (; dead; dead = next) {
		next = dead->hnext;
		server_sess_free(dead);
	}
	if (evicted)
		log_warn("tls_session_cache_full",
			 "evicted=%lu sessions=%zu max=%zu (those terminals' next handshakes are "
			 "full ones; raise [tls] session_cache)",
			 evicted, n, c->max);
}

static void server_tickets_wipe(struct server_tickets *t)
{
	struct server_sessions *c = &t->cache;
	struct server_sess *x, *next;

	wipe(t->keys, sizeof t->keys);
	t->n = 0;
	if (!c->ready)
		return;
	for (x = c->oldest; x; x = next) {
		next = x->newer;
		server_sess_free(x);
	}
	free(c->bucket);
	pthread_mutex_destroy(&c->lock);
	memset(c, 0, sizeof *c);
}

/*
 * The sessions file: sealed like a ticket (AES-256-CBC, then HMAC-SHA256
 * over key name, IV and ciphertext) with the ticket key current at the
 * stop, so it opens only while that key is held. Plaintext: per session
 * its epoch (16 bytes), id (32), DER's length (4, big-endian), the DER.
 */
#define SERVER_SESS_REC (16 + SSL_MAX_SSL_SESSION_ID_LENGTH + 4)
static int server_sessions_path(const struct server_tickets *t, char *out, size_t cap)
{
	const char *slash = strrchr(t->path, '/');
	int n = snprintf(out, cap, "%.*s" SERVER_SESSIONS_FILE,
			 slash ? (int)(slash - t->path + 1) : 0, t->path);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int server_sessions_mac(const struct server_ticket_key *k, const unsigned char *p, size_t n,
			       unsigned char mac[32])
{
	size_t len = 0;

	return EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, k->hmac, sizeof k->hmac, p, n, mac, 32,
			 &len) && len == 32
		       ? 0
		       : -1;
}

/*
 * At a clean stop (workers joined): the sessions still resumable, sealed
 * into the sessions file, so terminals reconnecting after a restart resume
 * instead of paying a full handshake each. Best effort: logged, never fatal.
 */
static void server_sessions_save(struct server_tickets *t)
{
	struct server_sessions *c = &t->cache;
	unsigned char *plain = NULL, *out = NULL, *p;
	char path[CCONF_PATH_MAX + 32];
	size_t cap, used = 0, saved = 0;
	int clen = 0, fl = 0;
	EVP_CIPHER_CTX *cc = NULL;
	pos_err e = { 0 };

	if (!c->ready || t->n < 1 || server_sessions_path(t, path, sizeof path) < 0)
		return;
	if (c->n == 0) {
		unlink(path);
		return;
	}
	cap = 0;
	for (struct server_sess *x = c->oldest; x; x = x->newer)
		cap += SERVER_SESS_REC + (x->s ? (size_t)i2d_SSL_SESSION(x->s, NULL) : x->der_len);
	if (cap > INT_MAX / 2 || !(plain = malloc(cap)) || !(out = malloc(16 + 16 + cap + 16 + 32)) ||
	    !(cc = EVP_CIPHER_CTX_new()))
		goto out;
	for (struct server_sess *x = c->oldest; x; x = x->newer) {
		int n = x->s ? i2d_SSL_SESSION(x->s, NULL) : (int)x->der_len;

		if (n <= 0 || n > SERVER_SESS_DER_MAX || used + SERVER_SESS_REC + (size_t)n > cap ||
		    !server_sess_epoch_held(t, x->epoch))
			continue;
		memcpy(plain + used, x->epoch, 16);
		memcpy(plain + used + 16, x->id, sizeof x->id);
		plain[used + 48] = (unsigned char)(n >> 24);
		plain[used + 49] = (unsigned char)(n >> 16);
		plain[used + 50] = (unsigned char)(n >> 8);
		plain[used + 51] = (unsigned char)n;
		p = plain + used + SERVER_SESS_REC;
		if (x->s)
			i2d_SSL_SESSION(x->s, &p);
		else
			memcpy(p, x->der, x->der_len);
		used += SERVER_SESS_REC + (size_t)n;
		saved++;
	}
	memcpy(out, t->keys[0].name, 16);
	if (RAND_bytes(out + 16, 16) != 1 ||
	    EVP_EncryptInit_ex(cc, EVP_aes_256_cbc(), NULL, t->keys[0].aes, out + 16) != 1 ||
	    EVP_EncryptUpdate(cc, out + 32, &clen, plain, (int)used) != 1 ||
	    EVP_EncryptFinal_ex(cc, out + 32 + clen, &fl) != 1 ||
	    server_sessions_mac(&t->keys[0], out, 32 + (size_t)(clen + fl), out + 32 + clen + fl) < 0)
		goto out;
	if (keys_write_file(path, out, 32 + (size_t)(clen + fl) + 32, 0600, 1, &e) < 0)
		log_error("tls_sessions_save_failed", "file=%s error=%s", path, e.msg);
	else
		log_info("tls_sessions_saved", "file=%s sessions=%zu", path, saved);
out:
	EVP_CIPHER_CTX_free(cc);
	if (plain)
		wipe_free(plain, cap);
	free(out);
}

/*
 * At start: the sessions the last clean stop saved, while their key is
 * held; each is decoded only when its terminal comes back. The file is
 * removed once read: a session resumes once, and a crash later must not
 * bring back ones already used. A file that does not open is logged and
 * ignored (those terminals make full handshakes).
 */
static void server_sessions_load(struct server_tickets *t)
{
	struct server_sessions *c = &t->cache;
	const struct server_ticket_key *k = NULL;
	unsigned char *buf = NULL, *plain = NULL, mac[32];
	char path[CCONF_PATH_MAX + 32];
	size_t have = 0, cap, off, loaded = 0;
	int plen = 0, fl = 0;
	EVP_CIPHER_CTX *cc = NULL;
	struct stat st;
	const char *why = "damaged";
	pos_err e = { 0 };

	if (!c->ready || server_sessions_path(t, path, sizeof path) < 0 ||
	    lstat(path, &st) != 0)
		return;
	cap = c->max * (SERVER_SESS_REC + SERVER_SESS_DER_MAX) + 16 + 16 + 16 + 32;
	if ((size_t)st.st_size > cap) {
		why = "larger than [tls] session_cache sessions";
		goto bad;
	}
	if (!(buf = malloc((size_t)st.st_size + 1)) || !(plain = malloc((size_t)st.st_size + 1)) ||
	    !(cc = EVP_CIPHER_CTX_new())) {
		why = "out of memory";
		goto bad;
	}
	if (file_read(path, FILE_PRIVATE | FILE_NOFOLLOW, buf, (size_t)st.st_size + 1, &have, NULL,
		      &e) < 0) {
		why = e.msg;
		goto bad;
	}
	if (have < 16 + 16 + 16 + 32)
		goto bad;
	for (int i = 0; i < t->n && !k; i++)
		if (CRYPTO_memcmp(buf, t->keys[i].name, 16) == 0)
			k = &t->keys[i];
	if (!k) {
		why = "sealed with a ticket key no longer held";
		goto bad;
	}
	if (server_sessions_mac(k, buf, have - 32, mac) < 0 ||
	    CRYPTO_memcmp(mac, buf + have - 32, 32) != 0 ||
	    EVP_DecryptInit_ex(cc, EVP_aes_256_cbc(), NULL, k->aes, buf + 16) != 1 ||
	    EVP_DecryptUpdate(cc, plain, &plen, buf + 32, (int)(have - 64)) != 1 ||
	    EVP_DecryptFinal_ex(cc, plain + plen, &fl) != 1)
		goto bad;
	plen += fl;
	for (off = 0; off + SERVER_SESS_REC <= (size_t)plen;) {
		size_t n = (size_t)plain[off + 48] << 24 | (size_t)plain[off + 49] << 16 |
			   (size_t)plain[off + 50] << 8 | plain[off + 51];
		const unsigned char *rec = plain + off;
		struct server_sess *x, *gone;

		if (n == 0 || n > SERVER_SESS_DER_MAX || n > (size_t)plen - off - SERVER_SESS_REC)
			break;
		off += SERVER_SESS_REC + n;
		if (!(x = calloc(1, sizeof *x)))
			break;
		memcpy(x->epoch, rec, 16);
		memcpy(x->id, rec + 16, sizeof x->id);
		if (!server_sess_epoch_held(t, x->epoch) || !(x->der = malloc(n))) {
			free(x);
			continue;
		}
		memcpy(x->der, rec + SERVER_SESS_REC, n);
		x->der_len = n;
		pthread_mutex_lock(&c->lock);
		gone = server_sess_link(c, x);
		pthread_mutex_unlock(&c->lock);
		server_sess_free(gone);
		loaded++;
	}
	log_info("tls_sessions_loaded", "file=%s sessions=%zu", path, loaded);
	goto out;
bad:
	log_warn("tls_sessions_ignored", "file=%s error=%s (terminals make full handshakes)", path,
		 why);
out:
	if (unlink(path) != 0 && errno != ENOENT)
		log_error("tls_sessions_remove_failed", "file=%s error=%s", path, strerror(errno));
	EVP_CIPHER_CTX_free(cc);
	if (buf)
		wipe_free(buf, (size_t)st.st_size + 1);
	if (plain)
		wipe_free(plain, (size_t)st.st_size + 1);
}

/* ------------------------------------------------------------ CRL */

/* A verification store: the CA file, and crl (when not NULL) checked for
 * the terminal's certificate. *out: X509_STORE_free. */
static int server_trust_store(const char *ca_path, X509_CRL *crl, X509_STORE **out, pos_err *e)
{
	X509_STORE *st = X509_STORE_new();
	char eb[256];

	*out = NULL;
	if (!st)
		return err_set(e, POS_ENOMEM, "TLS: out of memory for a certificate store");
	if (X509_STORE_load_file(st, ca_path) != 1) {
		X509_STORE_free(st);
		return err_set(e, POS_ECRYPTO, "%s: %s", ca_path, server_ssl_error(eb, sizeof eb));
	}
	if (crl && (X509_STORE_add_crl(st, crl) != 1 ||
		    X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK) != 1)) {
		X509_STORE_free(st);
		return err_set(e, POS_ECRYPTO, "TLS: cannot install the CRL: %s",
			       server_ssl_error(eb, sizeof eb));
	}
	*out = st;
	return 0;
}

/* Reads crl.pem as it is now into a new store; *crl NULL when the file is
 * missing. Nothing changes on failure. */
static int server_trust_build(struct server_trust *t, const struct stat *st, X509_STORE **store,
			      X509_CRL **crl, pos_err *e)
{
	int rc;

	*store = NULL;
	*crl = NULL;
	if (st->st_ino != 0) {
		if ((rc = pki_crl_load(t->path, t->ca, crl, e)) < 0)
			return rc;
	}
	if ((rc = server_trust_store(t->ca_path, *crl, store, e)) < 0) {
		X509_CRL_free(*crl);
		*crl = NULL;
	}
	return rc;
}

static int server_crl_count(X509_CRL *crl)
{
	int n = crl ? sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) : 0;

	return n > 0 ? n : 0;
}

static int server_crl_stat(const char *path, struct stat *st, pos_err *e)
{
	memset(st, 0, sizeof *st);
	if (stat(path, st) == 0)
		return 0;
	memset(st, 0, sizeof *st);
	if (errno == ENOENT)
		return 0;
	return err_set(e, POS_EIO, "%s: %s", path, strerror(errno));
}

static int server_trust_init(const struct cconf *c, struct server_trust *t, pos_err *e)
{
	int n, rc;

	t->ca_path = c->tls_ca;
	n = snprintf(t->path, sizeof t->path, "%s/" PKI_CRL_FILE, c->dir[0] ? c->dir : ".");
	if (n < 0 || (size_t)n >= sizeof t->path)
		return err_set(e, POS_ETOOBIG, "central's home path is too long for %s",
			       PKI_CRL_FILE);
	if ((rc = pki_load_cert(c->tls_ca, &t->ca, e)) < 0)
		return rc;
	if ((rc = server_crl_stat(t->path, &t->seen, e)) < 0)
		return rc;
	if ((rc = server_trust_build(t, &t->seen, &t->store, &t->crl, e)) < 0)
		return rc;
	if (t->crl)
		log_info("crl", "file=%s revoked=%d", t->path, server_crl_count(t->crl));
	else
		log_info("crl", "file=%s missing=yes (no certificate is revoked)", t->path);
	return 0;
}

static void server_trust_free(struct server_trust *t)
{
	X509_STORE_free(t->store);
	X509_CRL_free(t->crl);
	X509_free(t->ca);
	t->store = NULL;
	t->crl = NULL;
	t->ca = NULL;
}

static bool server_stat_same(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * Called from the main thread once a second: when crl.pem changed (or
 * went away: nothing revoked), a new store replaces the old one for the
 * handshakes that start from now on. A file that does not load keeps the
 * old store, logged once per version of the file.
 */
static void server_trust_poll(struct server_trust *t)
{
	X509_STORE *store = NULL, *old_store;
	X509_CRL *crl = NULL, *old_crl;
	struct stat st;
	pos_err e = { 0 };

	if (server_crl_stat(t->path, &st, &e) < 0) {
		log_error("crl_reload_failed", "file=%s error=%s", t->path, e.msg);
		return;
	}
	if (server_stat_same(&st, &t->seen))
		return;
	t->seen = st;
	if (server_trust_build(t, &st, &store, &crl, &e) < 0) {
		log_error("crl_reload_failed", "file=%s error=%s (the previous list stays in force)",
			  t->path, e.msg);
		return;
	}
	pthread_rwlock_wrlock(&t->lock);
	old_store = t->store;
	old_crl = t->crl;
	t->store = store;
	t->crl = crl;
	pthread_rwlock_unlock(&t->lock);
	X509_STORE_free(old_store);
	X509_CRL_free(old_crl);
	if (crl)
		log_info("crl_reloaded", "file=%s revoked=%d", t->path, server_crl_count(crl));
	else
		log_warn("crl_removed", "file=%s (no certificate is revoked now)", t->path);
}

/* 1 when the CRL in force now lists cert. */
static int server_trust_revoked(struct server_trust *t, X509 *cert)
{
	int revoked;

	pthread_rwlock_rdlock(&t->lock);
	revoked = pki_crl_revoked(t->crl, cert);
	pthread_rwlock_unlock(&t->lock);
	return revoked;
}

/* At every ClientHello: the handshake verifies the client's certificate
 * against the store current now. */
static int server_hello_cb(SSL *s, int *al, void *arg)
{
	struct server_trust *t = arg;
	X509_STORE *st;

	pthread_rwlock_rdlock(&t->lock);
	st = t->store;
	if (st && X509_STORE_up_ref(st) != 1)
		st = NULL;
	pthread_rwlock_unlock(&t->lock);
	if (!st || SSL_set0_verify_cert_store(s, st) != 1) {
		X509_STORE_free(st);
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

static int server_name_entry(X509_NAME *name, int nid, char out[STORE_ID_MAX + 1]);

/* Verification's verdict unchanged; a revoked terminal trying to connect
 * is worth a warning that names it (a stolen register, say). */
static int server_verify_cb(int ok, X509_STORE_CTX *x)
{
	char store[STORE_ID_MAX + 1] = "?", terminal[STORE_ID_MAX + 1] = "?";
	char serial[PKI_SERIAL_HEX] = "?";
	X509 *cert;

	if (ok || X509_STORE_CTX_get_error(x) != X509_V_ERR_CERT_REVOKED)
		return ok;
	cert = X509_STORE_CTX_get_current_cert(x);
	if (cert) {
		X509_NAME *name = X509_get_subject_name(cert);

		if (server_name_entry(name, NID_organizationalUnitName, store) < 0)
			snprintf(store, sizeof store, "?");
		if (server_name_entry(name, NID_commonName, terminal) < 0)
			snprintf(terminal, sizeof terminal, "?");
		if (pki_serial_hex(cert, serial, NULL) < 0)
			snprintf(serial, sizeof serial, "?");
	}
	log_warn("tls_certificate_revoked", "store=%s terminal=%s serial=%s", store, terminal,
		 serial);
	return ok;
}

static int server_tls(const struct cconf *c, struct server_tickets *tk, struct server_trust *tr,
		      SSL_CTX **out, pos_err *e)
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
	/* The store every handshake verifies with is the trust's current one,
	 * CRL included; the context's own is only its first. */
	SSL_CTX_set1_cert_store(ctx, tr->store);
	SSL_CTX_set_client_hello_cb(ctx, server_hello_cb, tr);
	/* Ask for a certificate but do not demand one: analysts have none.
	 * One that is sent must verify (our CA, in date, clientAuth), or the
	 * handshake fails. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, server_verify_cb);
	SSL_CTX_set_verify_depth(ctx, 4);
	/* Resumption with client certificates needs a session id context, or
	 * OpenSSL refuses it. Tickets are stateful (SSL_OP_NO_TICKET below):
	 * a ticket is a session's id in central's own cache, because OpenSSL
	 * 3.0 decodes the client certificate out of every stateless ticket it
	 * opens or seals, half the cost of a full handshake (see
	 * docs/performance.md). Not OpenSSL's internal cache: it drops a
	 * session whenever its connection closes without our close_notify. */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SERVER_SESSION_CTX,
				       sizeof SERVER_SESSION_CTX - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL |
						    SSL_SESS_CACHE_NO_AUTO_CLEAR);
	/* What a client is told a ticket lasts: until its period's key goes. */
	SSL_CTX_set_timeout(ctx, server_sessions_lifetime(c->ticket_rotate_s));
	if ((rc = server_sessions_init(&tk->cache, c->session_cache, e)) < 0)
		goto fail;
	/* One ticket per handshake: a terminal keeps one connection, and each
	 * ticket is a cache entry until it is used or its period ends. */
	if (SSL_CTX_set_num_tickets(ctx, 1) != 1 ||
	    SSL_CTX_set_ex_data(ctx, server_ctx_idx, tk) != 1 ||
	    SSL_CTX_set_ex_data(ctx, server_trust_idx, tr) != 1) {
		rc = err_set(e, POS_ECRYPTO, "TLS: cannot install the session cache");
		goto fail;
	}
	SSL_CTX_sess_set_new_cb(ctx, server_sess_new_cb);
	SSL_CTX_sess_set_get_cb(ctx, server_sess_get_cb);
	/* Read-ahead: one read(2) takes what the kernel holds, not a record
	 * header and then its body; httpd asks SSL_has_pending before it waits
	 * for the socket. Partial writes: httpd keeps its own offset into a
	 * reply. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				     SSL_OP_NO_TICKET);
	*out = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return rc;
}

/* The public listener's context: its own certificate, no client
 * certificate asked, TLS 1.2 and 1.3 (phones of a few years). */
static int server_public_tls(const struct cconf *c, SSL_CTX **out, pos_err *e)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char eb[256];
	int rc;

	if (!ctx)
		return err_set(e, POS_ENOMEM, "TLS: no context");
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		rc = err_set(e, POS_ECRYPTO, "TLS: cannot set the minimum version");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_public_cert) != 1) {
		rc = err_set(e, POS_ECRYPTO, "%s: %s", c->tls_public_cert,
			     server_ssl_error(eb, sizeof eb));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_public_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		rc = err_set(e, POS_ECRYPTO, "%s: %s", c->tls_public_key,
			     server_ssl_error(eb, sizeof eb));
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	*out = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return rc;
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
	if (!s || n < 0 || !ids_valid_n(ASN1_STRING_get0_data(s), (size_t)n))
		return POS_EPERM;
	memcpy(out, ASN1_STRING_get0_data(s), (size_t)n);
	out[n] = '\0';
	return 0;
}

int server_peer_identity(SSL *ssl, char store[STORE_ID_MAX + 1], char terminal[STORE_ID_MAX + 1])
{
	struct server_trust *t;
	X509 *cert;
	X509_NAME *name;

	store[0] = terminal[0] = '\0';
	if (!ssl)
		return POS_EPERM;
	cert = SSL_get0_peer_certificate(ssl);
	if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
		return POS_EPERM;
	/* A connection opened before its certificate was revoked stays open
	 * until it closes; its requests are refused from the reload on. */
	t = server_trust_idx >= 0 ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), server_trust_idx)
				  : NULL;
	if (t && server_trust_revoked(t, cert))
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
	o.worker = w->idx;
	o.flush_priority = SERVER_PRIORITIES / 2;
	return httpd_new(w->base, &o, &w->pub_httpd, e);
}

static int server_worker_init(struct worker *w, const struct cconf *c, struct slots *slots,
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
	o.slots = slots;
	o.handshake.tv_sec = (time_t)(c->handshake_timeout_ms / 1000);
	o.handshake.tv_usec = (suseconds_t)(c->handshake_timeout_ms % 1000) * 1000;
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

int server_check(const struct cconf *c, pos_err *e)
{
	struct server_tickets tk;
	struct server_trust tr;
	char host[SERVER_LISTEN_MAX], port[8], path[CCONF_PATH_MAX + 16];
	SSL_CTX *ctx = NULL;
	struct stat st;
	int rc;

	memset(&tk, 0, sizeof tk);
	memset(&tr, 0, sizeof tr);
	pthread_rwlock_init(&tk.lock, NULL);
	pthread_rwlock_init(&tr.lock, NULL);
	pthread_once(&server_once, server_once_init);
	if ((rc = server_parse_listen(c->listen, host, port, e)) < 0) {
		err_prefix(e, "%s: [central] listen", c->path);
		goto out;
	}
	/* serve makes a missing ticket.key; one that exists must be right. */
	snprintf(path, sizeof path, "%s/" SERVER_TICKET_FILE, c->dir[0] ? c->dir : ".");
	if (lstat(path, &st) == 0 && (rc = server_tickets_load(c, &tk, e)) < 0)
		goto out;
	if ((rc = server_trust_init(c, &tr, e)) < 0 || (rc = server_tls(c, &tk, &tr, &ctx, e)) < 0)
		goto out;
	rc = server_check_database_place(c, e);
out:
	SSL_CTX_free(ctx);
	server_trust_free(&tr);
	server_tickets_wipe(&tk);
	pthread_rwlock_destroy(&tk.lock);
	pthread_rwlock_destroy(&tr.lock);
	return rc;
}

/* The public routes' limits from central.conf ([ratelimit], [devices]);
 * *rl: ratelimit_free, after every worker stopped. */
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

int server_run(const struct cconf *c, const char *listen_s, const struct keyring *tokens,
	       struct keysproc *kp, pos_err *e)
{
	struct routes_shared sh = { 0 };
	struct server_tickets tk;
	struct server_trust tr;
	struct worker *ws = NULL;
	struct ingest *ig = NULL;
	struct outbox *ob = NULL;
	struct ratelimit *rl = NULL;
	struct store *probe = NULL;
	struct slots *slots = NULL, *pub_slots = NULL;
	struct slots_opts so;
	struct public_shared ps;
	bool pub_on = c->public_listen[0] != '\0';
	SSL_CTX *ctx = NULL, *pub_ctx = NULL;
	int *pub_fds = NULL;
	char pub_addr[SERVER_LISTEN_MAX + 16] = "";
	sigset_t sigs, old;
	int *fds = NULL;
	char addr[SERVER_LISTEN_MAX + 16] = "";
	char why[32];
	long n = server_nworkers(c), i;
	int rc, sig = 0, lock_fd = -1;

	memset(&tk, 0, sizeof tk);
	memset(&tr, 0, sizeof tr);
	memset(&ps, 0, sizeof ps);
	ps.www_fd = -1;
	pthread_rwlock_init(&tk.lock, NULL);
	pthread_rwlock_init(&tr.lock, NULL);

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
	if (server_ctx_idx < 0 || server_trust_idx < 0) {
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
	if ((rc = store_open(c->database, &probe, e)) < 0 ||
	    (rc = server_check_store(c, probe, e)) < 0)
		goto out;
	store_close(probe);
	probe = NULL;
	if ((rc = server_tickets_load(c, &tk, e)) < 0)
		goto out;
	server_tickets_poll(&tk, time(NULL)); /* a key left from long ago */
	if ((rc = server_trust_init(c, &tr, e)) < 0)
		goto out;
	if ((rc = server_tls(c, &tk, &tr, &ctx, e)) < 0)
		goto out;
	server_sessions_load(&tk);
	if (pub_on && ((rc = server_public_tls(c, &pub_ctx, e)) < 0 ||
		       (rc = public_shared_init(&ps, c, e)) < 0))
		goto out;
	if ((rc = ingest_start(c->database, &ig, e)) < 0)
		goto out;
	sh.kr = tokens;
	sh.ingest = ig;
	ps.ingest = ig;
	sh.auto_enrol = c->auto_enrol;
	sh.max_body = (size_t)c->max_body;
	sh.database = c->database;
	sh.min_free_mb = c->min_free_disk_mb;

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
		ws[i].ssl = ctx;
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
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig > 0 && sig != SIGCHLD)
			break;
		server_trust_poll(&tr);
		server_tickets_poll(&tk, time(NULL));
	}
	log_info("stopping", "signal=%s", sig == SIGTERM ? "TERM" : "INT");
	rc = 0;
stop:
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
		server_sessions_save(&tk);
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
	ingest_free(ig);
	ratelimit_free(rl);
	SSL_CTX_free(ctx);
	server_trust_free(&tr);
	server_tickets_wipe(&tk);
	pthread_rwlock_destroy(&tk.lock);
	pthread_rwlock_destroy(&tr.lock);
	if (lock_fd >= 0)
		close(lock_fd); /* releases the home */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
