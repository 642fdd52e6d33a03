#include "tls.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "httpd.h"
#include "ids.h"
#include "keys.h"
#include "log.h"
#include "pki.h"
#include "wipe.h"

_Static_assert(HTTPD_PEER_ID_MAX == IDS_MAX, "a peer holds an id");

#define TLS_SESSION_CTX "pos-central"
#define TLS_TICKET_FILE "ticket.key"
#define TLS_SESSIONS_FILE "tls_sessions"
/* One session as DER: mostly the client certificate. */
#define TLS_SESS_DER_MAX 16384
/* The saved sessions file is read whole at start: at most this much (a
 * session with its certificate is about 2 KB). */
#define TLS_SESSIONS_FILE_MAX (64L * 1024 * 1024)

/* One session ticket key: a ticket names the key that sealed it. */
struct tls_ticket_key {
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
struct tls_sess {
	unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
	unsigned char epoch[16];
	SSL_SESSION *s;
	unsigned char *der;
	size_t der_len;
	struct tls_sess *hnext;         /* same bucket */
	struct tls_sess *older, *newer; /* issue order: the oldest goes first */
};

/*
 * The sessions central can resume, at most max ([tls] session_cache). A
 * ticket is only a session's id, so resuming decodes nothing; each resumes
 * once (the resumed connection gets a new ticket). Workers add and take
 * under the mutex; the main thread drops a period's sessions when its key
 * goes, and logs evictions.
 */
struct tls_sessions {
	pthread_mutex_t lock;
	bool ready;
	struct tls_sess **bucket;
	size_t nbuckets, n, max;
	struct tls_sess *oldest, *newest;
	unsigned long evicted; /* since the main thread last logged */
};

struct tls_tickets {
	pthread_rwlock_t lock;
	struct tls_ticket_key keys[2];
	int n;
	time_t born;
	long period;
	char path[CCONF_PATH_MAX + 16];
	struct tls_sessions cache;
};

/*
 * What verifies terminal certificates: the CA and, when crl.pem exists, its
 * CRL with CRL checking on. Every handshake takes the store current when
 * its ClientHello arrives; the main thread builds a new one when crl.pem
 * changes and swaps it in under the lock, so handshakes already running
 * keep the store they took (it is reference counted).
 */
struct tls_trust {
	pthread_rwlock_t lock;
	X509_STORE *store;
	X509_CRL *crl;        /* NULL: nothing revoked */
	X509 *ca;             /* must have signed the CRL */
	const char *ca_path;
	char path[CCONF_PATH_MAX + 16];
	struct stat seen;     /* crl.pem as last looked at; st_ino 0: missing */
	atomic_ulong gen;     /* reloads so far: a peer read before one is looked at again */
	/* The server's certificate, key and chain read again on a reload
	 * (tls_reload_cert); NULL until then: the context's own are used. */
	X509 *id_cert;
	EVP_PKEY *id_key;
	STACK_OF(X509) *id_chain;
};


/* SSL_CTX ex_data slots holding its struct tls_tickets and its
 * struct tls_trust. */
static int tls_ctx_idx = -1;
static int tls_trust_idx = -1;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

/* ------------------------------------------------------------ TLS */

static void tls_once_init(void)
{
	tls_ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	tls_trust_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* The last OpenSSL error as text for a startup message (no secrets in it:
 * it names files and reasons). */
static const char *tls_ssl_error(char *buf, size_t n)
{
	unsigned long code = ERR_peek_last_error();

	if (!code)
		snprintf(buf, n, "unknown TLS error");
	else
		ERR_error_string_n(code, buf, n);
	ERR_clear_error();
	return buf;
}

int tls_ticket_key_create(const char *path, pos_err *e)
{
	unsigned char buf[TLS_TICKET_KEY_LEN];
	int rc;

	if (RAND_bytes(buf, sizeof buf) != 1)
		return err_set(e, POS_ECRYPTO, "no random bytes for the session ticket key");
	rc = keys_write_file(path, buf, sizeof buf, 0600, 0, e);
	wipe(buf, sizeof buf);
	return rc;
}

static void tls_ticket_key_split(struct tls_ticket_key *k, const unsigned char *raw)
{
	memcpy(k->name, raw, sizeof k->name);
	memcpy(k->aes, raw + 16, sizeof k->aes);
	memcpy(k->hmac, raw + 48, sizeof k->hmac);
}

/* Loads ticket.key from central's home (one key, or the current and the
 * previous one), making it first for a home set up before the file
 * existed. Refused when group or others can read it. */
static int tls_tickets_load(const struct cconf *c, struct tls_tickets *t, pos_err *e)
{
	unsigned char buf[2 * TLS_TICKET_KEY_LEN + 1];
	struct stat st;
	size_t have = 0;
	int n, rc;

	t->period = c->ticket_rotate_s;
	n = snprintf(t->path, sizeof t->path, "%s/" TLS_TICKET_FILE, c->dir[0] ? c->dir : ".");
	if (n < 0 || (size_t)n >= sizeof t->path)
		return err_set(e, POS_ETOOBIG, "central's home path is too long for %s",
			       TLS_TICKET_FILE);
	if (lstat(t->path, &st) != 0) {
		if (errno != ENOENT)
			return err_set(e, POS_EIO, "%s: %s", t->path, strerror(errno));
		if ((rc = tls_ticket_key_create(t->path, e)) < 0)
			return rc;
		log_info("ticket_key_created", "file=%s", t->path);
	}
	/* One byte more than two keys, to see a longer file. */
	if ((rc = file_read(t->path, FILE_PRIVATE | FILE_NOFOLLOW, buf, sizeof buf, &have, &st,
			    e)) < 0)
		return rc;
	if (have != TLS_TICKET_KEY_LEN && have != 2 * TLS_TICKET_KEY_LEN) {
		wipe(buf, sizeof buf);
		return err_set(e, POS_EINVAL,
			       "%s: expected %d or %d bytes, not %zu; delete it to make a new one",
			       t->path, TLS_TICKET_KEY_LEN, 2 * TLS_TICKET_KEY_LEN, have);
	}
	t->n = (int)(have / TLS_TICKET_KEY_LEN);
	for (int i = 0; i < t->n; i++)
		tls_ticket_key_split(&t->keys[i], buf + i * TLS_TICKET_KEY_LEN);
	t->born = st.st_mtime;
	wipe(buf, sizeof buf);
	return 0;
}

static void tls_sessions_tick(struct tls_tickets *t, bool purge);

/*
 * Once keys[0] has sealed tickets for a period, a fresh key takes over
 * and keys[0] becomes the previous key (dropped instead when it is two
 * periods old: after a long stop, say). The file is rewritten for the
 * next start; if that fails the keys in memory still rotate. Called from
 * the main thread only.
 */
static void tls_tickets_poll(struct tls_tickets *t, time_t now)
{
	unsigned char raw[2 * TLS_TICKET_KEY_LEN];
	struct tls_ticket_key fresh;
	pos_err e = { 0 };
	long age = (long)(now - t->born);
	int n;

	if (age < 0)
		t->born = now; /* the clock went back: a period from now */
	if (age < t->period) {
		tls_sessions_tick(t, false);
		return;
	}
	if (RAND_bytes(raw, TLS_TICKET_KEY_LEN) != 1) {
		log_error("ticket_key_rotate_failed", "file=%s error=no random bytes", t->path);
		t->born = now; /* tried again a period later */
		return;
	}
	tls_ticket_key_split(&fresh, raw);
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
	memcpy(raw + TLS_TICKET_KEY_LEN, &t->keys[1], n == 2 ? TLS_TICKET_KEY_LEN : 0);
	pthread_rwlock_unlock(&t->lock);
	wipe(&fresh, sizeof fresh);
	if (keys_write_file(t->path, raw, (size_t)n * TLS_TICKET_KEY_LEN, 0600, 1, &e) < 0)
		log_error("ticket_key_save_failed", "file=%s error=%s", t->path, e.msg);
	else
		log_info("ticket_key_rotated", "file=%s keys=%d period_s=%ld", t->path, n,
			 t->period);
	wipe(raw, sizeof raw);
	tls_sessions_tick(t, true);
}

/* ------------------------------------------------------------ sessions */

static int tls_trust_revoked(struct tls_trust *t, X509 *cert);

/* Seconds a client may keep a ticket: until its period's key is dropped
 * (two periods at most), and never over TLS 1.3's week. */
static long tls_sessions_lifetime(long period)
{
	long s = period > 302400 ? 604800 : 2 * period;

	return s > 0 ? s : 1;
}

static int tls_sessions_init(struct tls_sessions *c, long max, pos_err *e)
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

static void tls_sess_free(struct tls_sess *x)
{
	if (!x)
		return;
	SSL_SESSION_free(x->s); /* OpenSSL wipes its master key */
	if (x->der)
		wipe_free(x->der, x->der_len);
	free(x);
}

/* The id is random: its first bytes spread the buckets. Locked. */
static struct tls_sess **tls_sess_slot(struct tls_sessions *c, const unsigned char *id)
{
	uint64_t h;

	memcpy(&h, id, sizeof h);
	return &c->bucket[h & (c->nbuckets - 1)];
}

/* Takes x out of the table and the age list. Locked. */
static void tls_sess_unlink(struct tls_sessions *c, struct tls_sess *x)
{
	struct tls_sess **pp = tls_sess_slot(c, x->id);

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
static struct tls_sess *tls_sess_link(struct tls_sessions *c, struct tls_sess *x)
{
	struct tls_sess **pp = tls_sess_slot(c, x->id), *gone = NULL;

	if (c->n >= c->max && c->oldest) {
		gone = c->oldest;
		tls_sess_unlink(c, gone);
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
static int tls_sess_epoch_held(struct tls_tickets *t, const unsigned char epoch[16])
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
static int tls_sess_new_cb(SSL *s, SSL_SESSION *sess)
{
	struct tls_tickets *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), tls_ctx_idx);
	struct tls_sess *x, *gone;
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
	gone = tls_sess_link(&t->cache, x);
	pthread_mutex_unlock(&t->cache.lock);
	tls_sess_free(gone);
	return 0;
}

/*
 * A client offers a ticket: the session it names, taken out of the cache
 * (a ticket resumes once). NULL, and so a full handshake, when it is
 * unknown, its period's key is gone, or its certificate is revoked now
 * (the full handshake then refuses it). *copy 0: the cache's reference
 * goes to OpenSSL.
 */
static SSL_SESSION *tls_sess_get_cb(SSL *s, const unsigned char *id, int len, int *copy)
{
	SSL_CTX *ctx = SSL_get_SSL_CTX(s);
	struct tls_tickets *t = SSL_CTX_get_ex_data(ctx, tls_ctx_idx);
	struct tls_trust *tr = SSL_CTX_get_ex_data(ctx, tls_trust_idx);
	struct tls_sess *x;
	SSL_SESSION *sess = NULL;
	X509 *peer;

	*copy = 0;
	if (!t || !t->cache.ready || len != SSL_MAX_SSL_SESSION_ID_LENGTH)
		return NULL;
	pthread_mutex_lock(&t->cache.lock);
	for (x = *tls_sess_slot(&t->cache, id); x; x = x->hnext)
		if (memcmp(x->id, id, sizeof x->id) == 0)
			break;
	if (x)
		tls_sess_unlink(&t->cache, x);
	pthread_mutex_unlock(&t->cache.lock);
	if (!x || !tls_sess_epoch_held(t, x->epoch))
		goto out;
	if (!x->s) {
		const unsigned char *p = x->der;

		x->s = d2i_SSL_SESSION(NULL, &p, (long)x->der_len);
		ERR_clear_error();
	}
	peer = x->s ? SSL_SESSION_get0_peer(x->s) : NULL;
	/* Revoked since, or expired since: a full handshake refuses it. */
	if (!x->s || (peer && ((tr && tls_trust_revoked(tr, peer)) ||
			       X509_cmp_current_time(X509_get0_notAfter(peer)) <= 0)))
		goto out;
	sess = x->s;
	x->s = NULL;
out:
	tls_sess_free(x);
	return sess;
}

/*
 * Main thread, once a second: after a rotation (purge), the sessions of a
 * period whose key is gone are dropped and their secrets wiped; evictions
 * since the last call are logged once.
 */
static void tls_sessions_tick(struct tls_tickets *t, bool purge)
{
	struct tls_sessions *c = &t->cache;
	struct tls_sess *x, *next, *dead = NULL;
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
			tls_sess_unlink(c, x);
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
		tls_sess_free(dead);
	}
	if (evicted)
		log_warn("tls_session_cache_full",
			 "evicted=%lu sessions=%zu max=%zu (those terminals' next handshakes are "
			 "full ones; raise [tls] session_cache)",
			 evicted, n, c->max);
}

static void tls_tickets_wipe(struct tls_tickets *t)
{
	struct tls_sessions *c = &t->cache;
	struct tls_sess *x, *next;

	wipe(t->keys, sizeof t->keys);
	t->n = 0;
	if (!c->ready)
		return;
	for (x = c->oldest; x; x = next) {
		next = x->newer;
		tls_sess_free(x);
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
#define TLS_SESS_REC (16 + SSL_MAX_SSL_SESSION_ID_LENGTH + 4)
static int tls_sessions_path(const struct tls_tickets *t, char *out, size_t cap)
{
	const char *slash = strrchr(t->path, '/');
	int n = snprintf(out, cap, "%.*s" TLS_SESSIONS_FILE,
			 slash ? (int)(slash - t->path + 1) : 0, t->path);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int tls_sessions_mac(const struct tls_ticket_key *k, const unsigned char *p, size_t n,
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
static void tls_sessions_save(struct tls_tickets *t)
{
	struct tls_sessions *c = &t->cache;
	unsigned char *plain = NULL, *out = NULL, *p;
	char path[CCONF_PATH_MAX + 32];
	size_t cap, used = 0, saved = 0;
	int clen = 0, fl = 0;
	EVP_CIPHER_CTX *cc = NULL;
	pos_err e = { 0 };

	if (!c->ready || t->n < 1 || tls_sessions_path(t, path, sizeof path) < 0)
		return;
	if (c->n == 0) {
		unlink(path);
		return;
	}
	cap = 0;
	for (struct tls_sess *x = c->oldest; x; x = x->newer)
		cap += TLS_SESS_REC + (x->s ? (size_t)i2d_SSL_SESSION(x->s, NULL) : x->der_len);
	if (cap > INT_MAX / 2 || !(plain = malloc(cap)) || !(out = malloc(16 + 16 + cap + 16 + 32)) ||
	    !(cc = EVP_CIPHER_CTX_new()))
		goto out;
	for (struct tls_sess *x = c->oldest; x; x = x->newer) {
		int n = x->s ? i2d_SSL_SESSION(x->s, NULL) : (int)x->der_len;

		if (n <= 0 || n > TLS_SESS_DER_MAX || used + TLS_SESS_REC + (size_t)n > cap ||
		    !tls_sess_epoch_held(t, x->epoch))
			continue;
		memcpy(plain + used, x->epoch, 16);
		memcpy(plain + used + 16, x->id, sizeof x->id);
		plain[used + 48] = (unsigned char)(n >> 24);
		plain[used + 49] = (unsigned char)(n >> 16);
		plain[used + 50] = (unsigned char)(n >> 8);
		plain[used + 51] = (unsigned char)n;
		p = plain + used + TLS_SESS_REC;
		if (x->s)
			i2d_SSL_SESSION(x->s, &p);
		else
			memcpy(p, x->der, x->der_len);
		used += TLS_SESS_REC + (size_t)n;
		saved++;
	}
	memcpy(out, t->keys[0].name, 16);
	if (RAND_bytes(out + 16, 16) != 1 ||
	    EVP_EncryptInit_ex(cc, EVP_aes_256_cbc(), NULL, t->keys[0].aes, out + 16) != 1 ||
	    EVP_EncryptUpdate(cc, out + 32, &clen, plain, (int)used) != 1 ||
	    EVP_EncryptFinal_ex(cc, out + 32 + clen, &fl) != 1 ||
	    tls_sessions_mac(&t->keys[0], out, 32 + (size_t)(clen + fl), out + 32 + clen + fl) < 0)
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
static void tls_sessions_load(struct tls_tickets *t)
{
	struct tls_sessions *c = &t->cache;
	const struct tls_ticket_key *k = NULL;
	unsigned char *buf = NULL, *plain = NULL, mac[32];
	char path[CCONF_PATH_MAX + 32];
	size_t have = 0, cap, off, loaded = 0;
	int plen = 0, fl = 0;
	EVP_CIPHER_CTX *cc = NULL;
	struct stat st;
	const char *why = "damaged";
	pos_err e = { 0 };

	if (!c->ready || tls_sessions_path(t, path, sizeof path) < 0 ||
	    lstat(path, &st) != 0)
		return;
	cap = c->max * (TLS_SESS_REC + TLS_SESS_DER_MAX) + 16 + 16 + 16 + 32;
	if (cap > TLS_SESSIONS_FILE_MAX)
		cap = TLS_SESSIONS_FILE_MAX;
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
	if (tls_sessions_mac(k, buf, have - 32, mac) < 0 ||
	    CRYPTO_memcmp(mac, buf + have - 32, 32) != 0 ||
	    EVP_DecryptInit_ex(cc, EVP_aes_256_cbc(), NULL, k->aes, buf + 16) != 1 ||
	    EVP_DecryptUpdate(cc, plain, &plen, buf + 32, (int)(have - 64)) != 1 ||
	    EVP_DecryptFinal_ex(cc, plain + plen, &fl) != 1)
		goto bad;
	plen += fl;
	for (off = 0; off + TLS_SESS_REC <= (size_t)plen;) {
		size_t n = (size_t)plain[off + 48] << 24 | (size_t)plain[off + 49] << 16 |
			   (size_t)plain[off + 50] << 8 | plain[off + 51];
		const unsigned char *rec = plain + off;
		struct tls_sess *x, *gone;

		if (n == 0 || n > TLS_SESS_DER_MAX || n > (size_t)plen - off - TLS_SESS_REC)
			break;
		off += TLS_SESS_REC + n;
		if (!(x = calloc(1, sizeof *x)))
			break;
		memcpy(x->epoch, rec, 16);
		memcpy(x->id, rec + 16, sizeof x->id);
		if (!tls_sess_epoch_held(t, x->epoch) || !(x->der = malloc(n))) {
			free(x);
			continue;
		}
		memcpy(x->der, rec + TLS_SESS_REC, n);
		x->der_len = n;
		pthread_mutex_lock(&c->lock);
		gone = tls_sess_link(c, x);
		pthread_mutex_unlock(&c->lock);
		tls_sess_free(gone);
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
static int tls_trust_store(const char *ca_path, X509_CRL *crl, X509_STORE **out, pos_err *e)
{
	X509_STORE *st = X509_STORE_new();
	char eb[256];

	*out = NULL;
	if (!st)
		return err_set(e, POS_ENOMEM, "TLS: out of memory for a certificate store");
	if (X509_STORE_load_file(st, ca_path) != 1) {
		X509_STORE_free(st);
		return err_set(e, POS_ECRYPTO, "%s: %s", ca_path, tls_ssl_error(eb, sizeof eb));
	}
	if (crl && (X509_STORE_add_crl(st, crl) != 1 ||
		    X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK) != 1)) {
		X509_STORE_free(st);
		return err_set(e, POS_ECRYPTO, "TLS: cannot install the CRL: %s",
			       tls_ssl_error(eb, sizeof eb));
	}
	*out = st;
	return 0;
}

/* Reads crl.pem as it is now into a new store; *crl NULL when the file is
 * missing. Nothing changes on failure. */
static int tls_trust_build(struct tls_trust *t, const struct stat *st, X509_STORE **store,
			      X509_CRL **crl, pos_err *e)
{
	int rc;

	*store = NULL;
	*crl = NULL;
	if (st->st_ino != 0) {
		if ((rc = pki_crl_load(t->path, t->ca, crl, e)) < 0)
			return rc;
	}
	if ((rc = tls_trust_store(t->ca_path, *crl, store, e)) < 0) {
		X509_CRL_free(*crl);
		*crl = NULL;
	}
	return rc;
}

static int tls_crl_count(X509_CRL *crl)
{
	int n = crl ? sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) : 0;

	return n > 0 ? n : 0;
}

static int tls_crl_stat(const char *path, struct stat *st, pos_err *e)
{
	memset(st, 0, sizeof *st);
	if (stat(path, st) == 0)
		return 0;
	memset(st, 0, sizeof *st);
	if (errno == ENOENT)
		return 0;
	return err_set(e, POS_EIO, "%s: %s", path, strerror(errno));
}

static int tls_trust_init(const struct cconf *c, struct tls_trust *t, pos_err *e)
{
	int n, rc;

	t->ca_path = c->tls_ca;
	n = snprintf(t->path, sizeof t->path, "%s/" PKI_CRL_FILE, c->dir[0] ? c->dir : ".");
	if (n < 0 || (size_t)n >= sizeof t->path)
		return err_set(e, POS_ETOOBIG, "central's home path is too long for %s",
			       PKI_CRL_FILE);
	if ((rc = pki_load_cert(c->tls_ca, &t->ca, e)) < 0)
		return rc;
	if ((rc = tls_crl_stat(t->path, &t->seen, e)) < 0)
		return rc;
	if ((rc = tls_trust_build(t, &t->seen, &t->store, &t->crl, e)) < 0)
		return rc;
	if (t->crl)
		log_info("crl", "file=%s revoked=%d", t->path, tls_crl_count(t->crl));
	else
		log_info("crl", "file=%s missing=yes (no certificate is revoked)", t->path);
	return 0;
}

static void tls_trust_free(struct tls_trust *t)
{
	X509_free(t->id_cert);
	EVP_PKEY_free(t->id_key);
	sk_X509_pop_free(t->id_chain, X509_free);
	t->id_cert = NULL;
	t->id_key = NULL;
	t->id_chain = NULL;
	X509_STORE_free(t->store);
	X509_CRL_free(t->crl);
	X509_free(t->ca);
	t->store = NULL;
	t->crl = NULL;
	t->ca = NULL;
}

static bool tls_stat_same(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* A reload may only add revocations: once a list is in force, a missing
 * file or an older list (a lower crlNumber: a copy from a backup) would
 * let revoked terminals back in, so it is refused. 0 or why not. */
static const char *tls_crl_successor(const X509_CRL *cur, const X509_CRL *next)
{
	ASN1_INTEGER *a, *b;
	int older;

	if (!cur)
		return NULL;
	if (!next)
		return "crl.pem is gone";
	a = X509_CRL_get_ext_d2i(cur, NID_crl_number, NULL, NULL);
	b = X509_CRL_get_ext_d2i(next, NID_crl_number, NULL, NULL);
	older = a && (!b || ASN1_INTEGER_cmp(b, a) < 0);
	ASN1_INTEGER_free(a);
	ASN1_INTEGER_free(b);
	return older ? "its crlNumber is older than the list in force" : NULL;
}

/*
 * Called from the main thread once a second: when crl.pem changed, a new
 * store replaces the old one for the handshakes that start from now on. A
 * file that does not load, is gone, or is older than the list in force
 * keeps the old store, logged once per version of the file.
 */
static void tls_trust_poll(struct tls_trust *t)
{
	X509_STORE *store = NULL, *old_store;
	X509_CRL *crl = NULL, *old_crl;
	const char *why;
	struct stat st;
	pos_err e = { 0 };

	if (tls_crl_stat(t->path, &st, &e) < 0) {
		log_error("crl_reload_failed", "file=%s error=%s", t->path, e.msg);
		return;
	}
	if (tls_stat_same(&st, &t->seen))
		return;
	t->seen = st;
	if (tls_trust_build(t, &st, &store, &crl, &e) < 0) {
		log_error("crl_reload_failed", "file=%s error=%s (the previous list stays in force)",
			  t->path, e.msg);
		return;
	}
	if ((why = tls_crl_successor(t->crl, crl))) {
		log_error("crl_reload_refused", "file=%s error=%s (the previous list stays in force)",
			  t->path, why);
		X509_STORE_free(store);
		X509_CRL_free(crl);
		return;
	}
	pthread_rwlock_wrlock(&t->lock);
	old_store = t->store;
	old_crl = t->crl;
	t->store = store;
	t->crl = crl;
	atomic_fetch_add(&t->gen, 1);
	pthread_rwlock_unlock(&t->lock);
	X509_STORE_free(old_store);
	X509_CRL_free(old_crl);
	if (crl)
		log_info("crl_reloaded", "file=%s revoked=%d", t->path, tls_crl_count(crl));
	else
		log_warn("crl_removed", "file=%s (no certificate is revoked now)", t->path);
}

/* 1 when the CRL in force now lists cert. */
static int tls_trust_revoked(struct tls_trust *t, X509 *cert)
{
	int revoked;

	pthread_rwlock_rdlock(&t->lock);
	revoked = pki_crl_revoked(t->crl, cert);
	pthread_rwlock_unlock(&t->lock);
	return revoked;
}

/* At every ClientHello: the handshake verifies the client's certificate
 * against the store current now. */
static int tls_hello_cb(SSL *s, int *al, void *arg)
{
	struct tls_trust *t = arg;
	X509_STORE *st;
	bool ok;

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
	/* A certificate reloaded since start: this handshake presents it
	 * (OpenSSL takes its own references under the lock). */
	pthread_rwlock_rdlock(&t->lock);
	ok = !t->id_cert || SSL_use_cert_and_key(s, t->id_cert, t->id_key, t->id_chain, 1) == 1;
	pthread_rwlock_unlock(&t->lock);
	if (!ok) {
		ERR_clear_error();
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

static int tls_name_entry(X509_NAME *name, int nid, char out[IDS_MAX + 1]);

/* Verification's verdict unchanged; a revoked terminal trying to connect
 * is worth a warning that names it (a stolen register, say). */
static int tls_verify_cb(int ok, X509_STORE_CTX *x)
{
	char store[IDS_MAX + 1] = "?", terminal[IDS_MAX + 1] = "?";
	char serial[PKI_SERIAL_HEX] = "?";
	X509 *cert;

	if (ok || X509_STORE_CTX_get_error(x) != X509_V_ERR_CERT_REVOKED)
		return ok;
	cert = X509_STORE_CTX_get_current_cert(x);
	if (cert) {
		X509_NAME *name = X509_get_subject_name(cert);

		if (tls_name_entry(name, NID_organizationalUnitName, store) < 0)
			snprintf(store, sizeof store, "?");
		if (tls_name_entry(name, NID_commonName, terminal) < 0)
			snprintf(terminal, sizeof terminal, "?");
		if (pki_serial_hex(cert, serial, NULL) < 0)
			snprintf(serial, sizeof serial, "?");
	}
	log_warn("tls_certificate_revoked", "store=%s terminal=%s serial=%s", store, terminal,
		 serial);
	return ok;
}

static int tls_terminal_ctx(const struct cconf *c, struct tls_tickets *tk, struct tls_trust *tr,
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
		rc = err_set(e, POS_ECRYPTO, "%s: %s", c->tls_cert, tls_ssl_error(eb, sizeof eb));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		rc = err_set(e, POS_ECRYPTO, "%s: %s", c->tls_key, tls_ssl_error(eb, sizeof eb));
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, c->tls_ca, NULL) != 1 ||
	    !(cas = SSL_load_client_CA_file(c->tls_ca))) {
		rc = err_set(e, POS_ECRYPTO, "%s: %s", c->tls_ca, tls_ssl_error(eb, sizeof eb));
		goto fail;
	}
	SSL_CTX_set_client_CA_list(ctx, cas);
	/* The store every handshake verifies with is the trust's current one,
	 * CRL included; the context's own is only its first. */
	SSL_CTX_set1_cert_store(ctx, tr->store);
	SSL_CTX_set_client_hello_cb(ctx, tls_hello_cb, tr);
	/* Ask for a certificate but do not demand one: analysts have none.
	 * One that is sent must verify (our CA, in date, clientAuth), or the
	 * handshake fails. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_cb);
	SSL_CTX_set_verify_depth(ctx, 4);
	/* Resumption with client certificates needs a session id context, or
	 * OpenSSL refuses it. Tickets are stateful (SSL_OP_NO_TICKET below):
	 * a ticket is a session's id in central's own cache, because OpenSSL
	 * 3.0 decodes the client certificate out of every stateless ticket it
	 * opens or seals, half the cost of a full handshake (see
	 * docs/performance.md). Not OpenSSL's internal cache: it drops a
	 * session whenever its connection closes without our close_notify. */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TLS_SESSION_CTX,
				       sizeof TLS_SESSION_CTX - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL |
						    SSL_SESS_CACHE_NO_AUTO_CLEAR);
	/* What a client is told a ticket lasts: until its period's key goes. */
	SSL_CTX_set_timeout(ctx, tls_sessions_lifetime(c->ticket_rotate_s));
	if ((rc = tls_sessions_init(&tk->cache, c->session_cache, e)) < 0)
		goto fail;
	/* One ticket per handshake: a terminal keeps one connection, and each
	 * ticket is a cache entry until it is used or its period ends. */
	if (SSL_CTX_set_num_tickets(ctx, 1) != 1 ||
	    SSL_CTX_set_ex_data(ctx, tls_ctx_idx, tk) != 1 ||
	    SSL_CTX_set_ex_data(ctx, tls_trust_idx, tr) != 1) {
		rc = err_set(e, POS_ECRYPTO, "TLS: cannot install the session cache");
		goto fail;
	}
	SSL_CTX_sess_set_new_cb(ctx, tls_sess_new_cb);
	SSL_CTX_sess_set_get_cb(ctx, tls_sess_get_cb);
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
int tls_public_ctx(const struct cconf *c, SSL_CTX **out, pos_err *e)
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
			     tls_ssl_error(eb, sizeof eb));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_public_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		rc = err_set(e, POS_ECRYPTO, "%s: %s", c->tls_public_key,
			     tls_ssl_error(eb, sizeof eb));
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
static int tls_name_entry(X509_NAME *name, int nid, char out[IDS_MAX + 1])
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

void tls_peer_read(void *arg, SSL *ssl, struct httpd_peer *out)
{
	struct tls_trust *t;
	X509 *cert;
	X509_NAME *name;

	(void)arg;
	memset(out, 0, sizeof *out);
	if (!ssl)
		return;
	cert = SSL_get0_peer_certificate(ssl);
	if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
		return;
	t = tls_trust_idx >= 0 ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_trust_idx) : NULL;
	/* The generation before the look: a reload in between is seen by the
	 * next recheck. */
	if (t)
		out->gen = atomic_load(&t->gen);
	if (t && tls_trust_revoked(t, cert))
		return;
	name = X509_get_subject_name(cert);
	if (!name || tls_name_entry(name, NID_organizationalUnitName, out->store) < 0 ||
	    tls_name_entry(name, NID_commonName, out->terminal) < 0) {
		out->store[0] = out->terminal[0] = '\0';
		return;
	}
	out->verified = true;
}

void tls_peer_recheck(void *arg, SSL *ssl, struct httpd_peer *p)
{
	struct tls_trust *t;
	unsigned long gen;
	X509 *cert;

	(void)arg;
	if (!p->verified || !ssl || tls_trust_idx < 0 ||
	    !(t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_trust_idx)))
		return;
	gen = atomic_load(&t->gen);
	if (gen == p->gen)
		return;
	p->gen = gen;
	cert = SSL_get0_peer_certificate(ssl);
	if (!cert || tls_trust_revoked(t, cert)) {
		p->verified = false;
		p->store[0] = p->terminal[0] = '\0';
	}
}

/* ------------------------------------------------------------ struct tls */

struct tls {
	struct tls_tickets tk;
	struct tls_trust tr;
	SSL_CTX *ctx;
};

int tls_open(const struct cconf *c, enum tls_use use, struct tls **out, pos_err *e)
{
	struct tls *t = calloc(1, sizeof *t);
	char path[CCONF_PATH_MAX + 16];
	struct stat st;
	int rc;

	*out = NULL;
	if (!t)
		return err_set(e, POS_ENOMEM, "out of memory");
	pthread_rwlock_init(&t->tk.lock, NULL);
	pthread_rwlock_init(&t->tr.lock, NULL);
	pthread_once(&tls_once, tls_once_init);
	if (tls_ctx_idx < 0 || tls_trust_idx < 0) {
		rc = err_set(e, POS_ENOMEM, "TLS: no ex_data slot");
		goto out;
	}
	if (use == TLS_SERVE) {
		if ((rc = tls_tickets_load(c, &t->tk, e)) < 0)
			goto out;
		tls_tickets_poll(&t->tk, time(NULL)); /* a key left from long ago */
	} else {
		/* serve makes a missing ticket.key; one that exists must be right. */
		snprintf(path, sizeof path, "%s/" TLS_TICKET_FILE, c->dir[0] ? c->dir : ".");
		if (lstat(path, &st) == 0 && (rc = tls_tickets_load(c, &t->tk, e)) < 0)
			goto out;
	}
	if ((rc = tls_trust_init(c, &t->tr, e)) < 0 ||
	    (rc = tls_terminal_ctx(c, &t->tk, &t->tr, &t->ctx, e)) < 0)
		goto out;
	if (use == TLS_SERVE)
		tls_sessions_load(&t->tk);
	*out = t;
	t = NULL;
out:
	tls_free(t);
	return rc;
}

SSL_CTX *tls_ctx(struct tls *t)
{
	return t->ctx;
}

void tls_tick(struct tls *t)
{
	tls_trust_poll(&t->tr);
	tls_tickets_poll(&t->tk, time(NULL));
}

void tls_reread(struct tls *t)
{
	memset(&t->tr.seen, 0, sizeof t->tr.seen);
}

/* The certificate file as serve reads it: the server's certificate first,
 * then its chain (at most 8 more). *leaf: X509_free; *chain:
 * sk_X509_pop_free. */
#define TLS_CHAIN_FILE_MAX (256 * 1024)
static int tls_read_chain(const char *path, X509 **leaf, STACK_OF(X509) **chain, pos_err *e)
{
	STACK_OF(X509) *more = NULL;
	struct stat st;
	BIO *b = NULL;
	X509 *x;
	int rc = 0;

	*leaf = NULL;
	*chain = NULL;
	if (stat(path, &st) < 0)
		return err_set(e, POS_EIO, "%s: cannot read it: %s", path, strerror(errno));
	if (st.st_size > TLS_CHAIN_FILE_MAX)
		return err_set(e, POS_ETOOBIG, "%s: larger than %d bytes", path, TLS_CHAIN_FILE_MAX);
	if (!(b = BIO_new_file(path, "r")) || !(more = sk_X509_new_null())) {
		rc = err_set(e, POS_EIO, "%s: cannot read it", path);
		goto out;
	}
	if (!(*leaf = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		rc = err_set(e, POS_EINVAL, "%s: not a PEM certificate", path);
		goto out;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_num(more) >= 8 || !sk_X509_push(more, x)) {
			X509_free(x);
			rc = err_set(e, POS_EINVAL, "%s: more than 8 certificates in its chain", path);
			goto out;
		}
	}
	*chain = more;
	more = NULL;
out:
	ERR_clear_error(); /* the end of the file, or the reason already named */
	if (rc < 0) {
		X509_free(*leaf);
		*leaf = NULL;
	}
	sk_X509_pop_free(more, X509_free);
	BIO_free(b);
	return rc;
}

int tls_reload_cert(struct tls *t, const struct cconf *c, char *serial, size_t cap, pos_err *e)
{
	X509 *cert = NULL, *old_cert;
	EVP_PKEY *key = NULL, *old_key;
	STACK_OF(X509) *chain = NULL, *old_chain;
	char hex[PKI_SERIAL_HEX];
	int rc;

	if ((rc = tls_read_chain(c->tls_cert, &cert, &chain, e)) < 0)
		goto out;
	if ((rc = pki_load_key(c->tls_key, &key, e)) < 0)
		goto out;
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		rc = err_set(e, POS_ECRYPTO, "%s does not belong to %s", c->tls_key, c->tls_cert);
		goto out;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0 ||
	    X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
		rc = err_set(e, POS_EINVAL, "%s is not valid now (expired or not yet valid)",
			     c->tls_cert);
		goto out;
	}
	if (pki_serial_hex(cert, hex, NULL) < 0)
		snprintf(hex, sizeof hex, "?");
	snprintf(serial, cap, "%s", hex);
	pthread_rwlock_wrlock(&t->tr.lock);
	old_cert = t->tr.id_cert;
	old_key = t->tr.id_key;
	old_chain = t->tr.id_chain;
	t->tr.id_cert = cert;
	t->tr.id_key = key;
	t->tr.id_chain = chain;
	pthread_rwlock_unlock(&t->tr.lock);
	cert = old_cert;
	key = old_key;
	chain = old_chain;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

void tls_save(struct tls *t)
{
	tls_sessions_save(&t->tk);
}

void tls_free(struct tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	tls_trust_free(&t->tr);
	tls_tickets_wipe(&t->tk);
	pthread_rwlock_destroy(&t->tk.lock);
	pthread_rwlock_destroy(&t->tr.lock);
	free(t);
}
