#include "analyst.h"

#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "gtin.h"
#include "httpd.h"
#include "ids.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "periodic.h"
#include "store_analyst.h"
#include "timeutil.h"
#include "wipe.h"
#include "www.h"

#define AN_COOKIE "pos_analyst"
#define AN_CSRF_HEADER "X-CSRF-Token"
#define AN_SID_BYTES 32
#define AN_CSRF_LEN 32
#define AN_TOKEN_MAX 256
#define AN_QUERY_MAX 512
#define AN_ALSO_MAX 50 /* rows of also_bought shown, the most bought first */
#define AN_WEEKS_MAX 52    /* an offer's before and after window, in weeks */
#define AN_WEEKS_DEFAULT 4
#define AN_HH_PAGE "/analyst/households/"
#define AN_HH_JSON "/v1/analyst/households/"
#define AN_ASSETS "/analyst/assets/"

/* ------------------------------------------------------------ counters */

enum an_refusal {
	AR_AUTH = 0, /* no or an unknown token or session */
	AR_CSRF,     /* a POST without the session's CSRF token */
	AR_INPUT,    /* a bad hhid, filter or body */
	AR_COUNT
};
static const char *const an_refusal_names[AR_COUNT] = { "auth", "csrf", "input" };
static atomic_long an_refused[AR_COUNT];
static atomic_long an_requests;
static atomic_long an_suppressed_rows;  /* also_bought rows left out */
static atomic_long an_suppressed_cohort; /* cohorts whose count was withheld */
static atomic_long an_audit_failed;
static atomic_long an_folded;      /* baskets folded into the cohorts' tables */
static atomic_long an_fold_failed; /* fold runs that failed (retried next time) */

static int an_metrics(char *buf, size_t cap)
{
	size_t len = 0;
	int n = snprintf(buf, cap,
			 "# HELP pos_analyst_requests_total Workbench requests answered.\n"
			 "# TYPE pos_analyst_requests_total counter\n"
			 "pos_analyst_requests_total %ld\n"
			 "# HELP pos_analyst_refused_total Workbench requests refused, by reason.\n"
			 "# TYPE pos_analyst_refused_total counter\n",
			 atomic_load(&an_requests));

	if (n < 0 || (size_t)n >= cap)
		return -1;
	len = (size_t)n;
	for (int i = 0; i < AR_COUNT; i++) {
		n = snprintf(buf + len, cap - len, "pos_analyst_refused_total{reason=\"%s\"} %ld\n",
			     an_refusal_names[i], atomic_load(&an_refused[i]));
		if (n < 0 || (size_t)n >= cap - len)
			return -1;
		len += (size_t)n;
	}
	n = snprintf(buf + len, cap - len,
		     "# HELP pos_analyst_suppressed_total Numbers withheld under [privacy] k_min.\n"
		     "# TYPE pos_analyst_suppressed_total counter\n"
		     "pos_analyst_suppressed_total{what=\"row\"} %ld\n"
		     "pos_analyst_suppressed_total{what=\"cohort\"} %ld\n"
		     "# HELP pos_analyst_audit_failed_total Workbench audit rows not written.\n"
		     "# TYPE pos_analyst_audit_failed_total counter\n"
		     "pos_analyst_audit_failed_total %ld\n"
		     "# HELP pos_analyst_folded_total Baskets folded into the cohorts' tables.\n"
		     "# TYPE pos_analyst_folded_total counter\n"
		     "pos_analyst_folded_total %ld\n"
		     "# HELP pos_analyst_fold_failed_total Fold runs that failed (retried).\n"
		     "# TYPE pos_analyst_fold_failed_total counter\n"
		     "pos_analyst_fold_failed_total %ld\n",
		     atomic_load(&an_suppressed_rows), atomic_load(&an_suppressed_cohort),
		     atomic_load(&an_audit_failed), atomic_load(&an_folded),
		     atomic_load(&an_fold_failed));
	if (n < 0 || (size_t)n >= cap - len)
		return -1;
	return (int)(len + (size_t)n);
}

/* ------------------------------------------------------------ shared */

struct an_session {
	unsigned char hash[32]; /* SHA-256 of the cookie's id; all zero: free */
	int64_t created_ms, expires_ms;
};

struct analyst_shared {
	const struct keyring *kr;
	struct ingest *ingest;
	long k_min;
	long fold_batch;
	long session_s;
	int www_fd;
	char www[CCONF_PATH_MAX];
	pthread_mutex_t mu;
	struct an_session *sess; /* nsess, guarded by mu */
	size_t nsess;
};

static pthread_once_t an_once = PTHREAD_ONCE_INIT;

static void an_once_init(void)
{
	metrics_add_source(an_metrics);
}

int analyst_shared_new(const struct cconf *c, const struct keyring *kr, struct ingest *ig,
		       struct analyst_shared **out, pos_err *e)
{
	struct analyst_shared *a = calloc(1, sizeof *a);
	pos_err we = { 0 };

	*out = NULL;
	if (!a || !(a->sess = calloc((size_t)c->analyst_sessions_max, sizeof *a->sess))) {
		free(a);
		return err_set(e, POS_ENOMEM, "analyst: out of memory");
	}
	a->nsess = (size_t)c->analyst_sessions_max;
	a->kr = kr;
	a->ingest = ig;
	a->k_min = c->privacy_k_min;
	a->fold_batch = c->analyst_fold_batch;
	a->session_s = c->analyst_session_hours * 3600;
	if (www_open(c, a->www, sizeof a->www, &a->www_fd, &we) < 0)
		log_warn("analyst_no_www", "detail=%s", "the workbench pages are off: no www folder");
	pthread_mutex_init(&a->mu, NULL);
	pthread_once(&an_once, an_once_init);
	*out = a;
	return 0;
}

void analyst_shared_free(struct analyst_shared *a)
{
	if (!a)
		return;
	if (a->www_fd >= 0)
		close(a->www_fd);
	pthread_mutex_destroy(&a->mu);
	wipe(a->sess, a->nsess * sizeof *a->sess);
	free(a->sess);
	free(a);
}

int analyst_fold_tick(struct store *s, void *arg)
{
	struct analyst_shared *a = arg;
	pos_err e = { 0 };
	long folded = 0;
	bool more = false;

	if (store_analyst_fold(s, a->fold_batch, time_now_ms(), &folded, &more, &e) < 0) {
		atomic_fetch_add_explicit(&an_fold_failed, 1, memory_order_relaxed);
		log_warn("analyst_fold_failed", "code=%s", err_name(e.code));
		return 0;
	}
	atomic_fetch_add_explicit(&an_folded, folded, memory_order_relaxed);
	return more;
}

struct analyst_folder {
	struct analyst_shared *a;
	struct store *s;
	struct periodic *loop;
};

static int an_folder_run(void *arg)
{
	struct analyst_folder *f = arg;

	return analyst_fold_tick(f->s, f->a);
}

int analyst_folder_start(const struct cconf *c, struct analyst_shared *a,
			 struct analyst_folder **out, pos_err *e)
{
	struct analyst_folder *f = calloc(1, sizeof *f);
	int rc;

	*out = NULL;
	if (!f)
		return err_set(e, POS_ENOMEM, "analyst: out of memory");
	f->a = a;
	if ((rc = cconf_store_open(c, CCONF_STORE_WRITE, &f->s, e)) < 0)
		goto fail;
	if ((rc = periodic_start(c->analyst_fold_ms, c->analyst_fold_ms, an_folder_run, f,
				 &f->loop, e)) < 0) {
		err_prefix(e, "analyst fold");
		goto fail;
	}
	*out = f;
	return 0;
fail:
	analyst_folder_stop(f);
	return rc;
}

void analyst_folder_stop(struct analyst_folder *f)
{
	if (!f)
		return;
	periodic_stop(f->loop);
	store_close(f->s);
	free(f);
}

bool analyst_path(const char *path)
{
	return strcmp(path, "/analyst") == 0 || strncmp(path, "/analyst/", 9) == 0 ||
	       strncmp(path, "/v1/analyst/", 12) == 0;
}

/* ------------------------------------------------------------ answers */

/* One request while it is handled. */
struct aq {
	struct analyst_shared *a;
	struct store *s;
	struct httpd_req *req;
	const char *route; /* a fixed label, never the raw path */
	int64_t t0_us;
	char actor[48];    /* "analyst:token" or "analyst:session:<8 hex>"; "" before auth */
	char sid[64];      /* the session cookie's id, when it was the credential */
};

static const char an_csp[] =
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/* The headers every answer carries, its count and its log line. */
static void an_head(struct aq *q, int status)
{
	long long us = (long long)(time_mono_us() - q->t0_us);

	(void)httpd_add_header(q->req, "Content-Security-Policy", an_csp);
	(void)httpd_add_header(q->req, "Strict-Transport-Security", "max-age=31536000");
	(void)httpd_add_header(q->req, "X-Content-Type-Options", "nosniff");
	(void)httpd_add_header(q->req, "Referrer-Policy", "no-referrer");
	(void)httpd_add_header(q->req, "X-Frame-Options", "DENY");
	(void)httpd_add_header(q->req, "Cache-Control", "no-store");
	atomic_fetch_add_explicit(&an_requests, 1, memory_order_relaxed);
	log_info("analyst_request", "route=%s method=%s status=%d latency_us=%lld actor=%s",
		 q->route, httpd_method_name(q->req), status, us, q->actor[0] ? q->actor : "-");
}

static void an_send(struct aq *q, int status, const char *ctype, const void *body, size_t len)
{
	an_head(q, status);
	httpd_reply(q->req, status, ctype, body, len);
}

static void an_json(struct aq *q, int status, json_t *v)
{
	char *s = v ? jsonx_dump(v) : NULL;

	if (!s) {
		static const char oom[] = "{\"error\":\"internal\",\"detail\":\"out of memory\"}";
		an_send(q, 500, "application/json", oom, sizeof oom - 1);
		return;
	}
	an_send(q, status, "application/json", s, strlen(s));
	free(s);
}

static void an_error(struct aq *q, int status, const char *code, const char *detail)
{
	json_t *v = json_pack("{s:s, s:s}", "error", code, "detail", detail ? detail : "");

	an_json(q, status, v);
	json_decref(v);
}

static void an_refuse(struct aq *q, enum an_refusal r, int status, const char *code,
		      const char *detail)
{
	atomic_fetch_add_explicit(&an_refused[r], 1, memory_order_relaxed);
	an_error(q, status, code, detail);
}

static void an_fail(struct aq *q, int rc, const pos_err *e)
{
	char qb[sizeof e->msg + 16];
	bool busy = rc == POS_EAGAIN || rc == POS_EDB;

	log_error(busy ? "store_failed" : "internal_error", "route=%s code=%s detail=%s", q->route,
		  err_name(rc), log_q(qb, sizeof qb, e ? e->msg : ""));
	if (busy)
		an_error(q, 503, "unavailable", "storage is busy or failing; retry later");
	else
		an_error(q, 500, "internal", "internal error");
}

static void an_buffer(struct aq *q, const char *ctype, struct evbuffer *b)
{
	size_t len = evbuffer_get_length(b);
	const char *p = len ? (const char *)evbuffer_pullup(b, -1) : "";

	if (!p)
		an_error(q, 500, "internal", "out of memory");
	else
		an_send(q, 200, ctype, p, len);
}

/* ------------------------------------------------------------ audit */

struct an_audit {
	struct ingest_job job;
	char actor[48];
	char action[32];
	char detail[192];
};

static int an_audit_op(struct store *s, struct ingest_job *job, pos_err *e)
{
	struct an_audit *au = job->arg;

	return store_audit(s, au->actor, au->action, au->detail, e);
}

static void an_audit_done(struct ingest_job *job)
{
	struct an_audit *au = job->arg;

	if (job->rc < 0 || job->op_rc < 0) {
		atomic_fetch_add_explicit(&an_audit_failed, 1, memory_order_relaxed);
		log_error("audit_failed", "action=%s code=%s", au->action,
			  err_name(job->rc < 0 ? job->rc : job->op_rc));
	}
	free(au);
}

/* Queues who did what to the writer; the answer does not wait for it.
 * detail holds only values this module validated (an hhid, a GTIN, a
 * month, a store id). */
static void an_audit(struct aq *q, const char *action, const char *detail)
{
	struct an_audit *au = calloc(1, sizeof *au);
	pos_err e = { 0 };

	if (!au) {
		atomic_fetch_add_explicit(&an_audit_failed, 1, memory_order_relaxed);
		return;
	}
	snprintf(au->actor, sizeof au->actor, "%s", q->actor[0] ? q->actor : "analyst");
	snprintf(au->action, sizeof au->action, "%s", action);
	snprintf(au->detail, sizeof au->detail, "%s", detail ? detail : "");
	au->job.kind = INGEST_OP;
	au->job.op = an_audit_op;
	au->job.done = an_audit_done;
	au->job.arg = au;
	if (!q->a->ingest || ingest_submit(q->a->ingest, &au->job, &e) < 0) {
		atomic_fetch_add_explicit(&an_audit_failed, 1, memory_order_relaxed);
		free(au);
	}
}

/* ------------------------------------------------------------ sessions */

static void an_sha256(const void *p, size_t n, unsigned char out[32])
{
	unsigned int len = 0;

	(void)EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

static void an_hex(const unsigned char *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* The CSRF token of a session: derived from its id, so only a page that
 * has the session can name it. */
static void an_csrf(const char *sid, char out[AN_CSRF_LEN + 1])
{
	unsigned char h[32];
	char buf[128];
	int n = snprintf(buf, sizeof buf, "pos-analyst-csrf/1|%s", sid);

	an_sha256(buf, (size_t)n, h);
	an_hex(h, AN_CSRF_LEN / 2, out);
	wipe(buf, sizeof buf);
}

static bool an_zero(const unsigned char *p, size_t n)
{
	unsigned char acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* Keeps the session: an expired or free slot, else the oldest. */
static void an_session_add(struct analyst_shared *a, const unsigned char h[32], int64_t now)
{
	size_t pick = 0;

	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < a->nsess; i++) {
		struct an_session *s = &a->sess[i];

		if (an_zero(s->hash, 32) || s->expires_ms <= now) {
			pick = i;
			break;
		}
		if (s->created_ms < a->sess[pick].created_ms)
			pick = i;
	}
	memcpy(a->sess[pick].hash, h, 32);
	a->sess[pick].created_ms = now;
	a->sess[pick].expires_ms = now + a->session_s * 1000LL;
	pthread_mutex_unlock(&a->mu);
}

static bool an_session_find(struct analyst_shared *a, const unsigned char h[32], int64_t now,
			    bool remove)
{
	bool found = false;

	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < a->nsess && !found; i++) {
		struct an_session *s = &a->sess[i];

		if (CRYPTO_memcmp(s->hash, h, 32) != 0 || an_zero(s->hash, 32))
			continue;
		found = s->expires_ms > now;
		if (remove || !found)
			memset(s, 0, sizeof *s);
	}
	pthread_mutex_unlock(&a->mu);
	return found;
}

/* The session id in the Cookie header, or false. */
static bool an_cookie(struct aq *q, char sid[64])
{
	const char *h = httpd_header(q->req, "Cookie");
	const size_t nl = sizeof AN_COOKIE - 1;

	while (h && *h) {
		size_t n;

		while (*h == ' ' || *h == ';')
			h++;
		n = strcspn(h, ";");
		if (n > nl + 1 && strncmp(h, AN_COOKIE "=", nl + 1) == 0 && n - nl - 1 < 64) {
			memcpy(sid, h + nl + 1, n - nl - 1);
			sid[n - nl - 1] = '\0';
			return true;
		}
		h += n;
	}
	return false;
}

/* Whether the caller is an analyst: the bearer token, or a live session
 * (and, for a POST, its CSRF token in X-CSRF-Token). Fills q->actor. */
static bool an_who(struct aq *q, bool *csrf_ok)
{
	const char *h = httpd_header(q->req, "Authorization");
	unsigned char hash[32];
	char csrf[AN_CSRF_LEN + 1], hex[17];
	const char *sent;

	*csrf_ok = false;
	if (h && strncasecmp(h, "Bearer ", 7) == 0) {
		size_t n;

		h += 7;
		while (*h == ' ')
			h++;
		n = strlen(h);
		while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
			n--;
		if (!keyring_analyst_ok(q->a->kr, h, n))
			return false;
		snprintf(q->actor, sizeof q->actor, "analyst:token");
		/* A bearer token is never sent by a browser on its own. */
		*csrf_ok = true;
		return true;
	}
	if (!an_cookie(q, q->sid))
		return false;
	an_sha256(q->sid, strlen(q->sid), hash);
	if (!an_session_find(q->a, hash, time_now_ms(), false))
		return false;
	an_hex(hash, 4, hex);
	snprintf(q->actor, sizeof q->actor, "analyst:session:%s", hex);
	an_csrf(q->sid, csrf);
	sent = httpd_header(q->req, AN_CSRF_HEADER);
	*csrf_ok = sent && strlen(sent) == AN_CSRF_LEN && CRYPTO_memcmp(sent, csrf, AN_CSRF_LEN) == 0;
	return true;
}

/* ------------------------------------------------------------ sign-in */

/* The value of name in an application/x-www-form-urlencoded body. */
static int an_form_value(const char *body, size_t len, const char *name, char *out, size_t cap,
			 pos_err *e)
{
	struct evkeyvalq kv;
	struct evkeyval *p;
	char *copy;
	int rc = err_set(e, POS_EINVAL, "the body must be token=<analyst token>");

	if (len == 0 || len > AN_TOKEN_MAX + 16 || memchr(body, '\0', len))
		return rc;
	if (!(copy = strndup(body, len)))
		return err_set(e, POS_ENOMEM, "out of memory");
	TAILQ_INIT(&kv);
	if (evhttp_parse_query_str(copy, &kv) == 0) {
		TAILQ_FOREACH (p, &kv, next)
		{
			if (strcmp(p->key, name) != 0 || strlen(p->value) >= cap) {
				rc = err_set(e, POS_EINVAL, "the body must be token=<analyst token>");
				break;
			}
			snprintf(out, cap, "%s", p->value);
			rc = 0;
		}
	}
	evhttp_clear_headers(&kv);
	wipe(copy, len);
	free(copy);
	return rc;
}

/* POST /analyst/login token=…: a session cookie; a browser that asked for
 * a page goes on to the cohorts page, a script gets {"csrf"}. */
static void an_login(struct aq *q)
{
	const char *ct = httpd_header(q->req, "Content-Type");
	const char *accept = httpd_header(q->req, "Accept");
	const char *body;
	char tok[AN_TOKEN_MAX + 1], sid[64], csrf[AN_CSRF_LEN + 1], cookie[200], hex[17];
	unsigned char raw[AN_SID_BYTES], h[32];
	pos_err e = { 0 };
	size_t len;

	tok[0] = sid[0] = '\0';
	if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
		an_refuse(q, AR_INPUT, 400, "bad_request",
			  "Content-Type must be application/x-www-form-urlencoded");
		goto out;
	}
	body = httpd_body(q->req, &len);
	if (an_form_value(body, len, "token", tok, sizeof tok, &e) < 0) {
		an_refuse(q, AR_INPUT, 400, "bad_request", e.msg);
		goto out;
	}
	if (!keyring_analyst_ok(q->a->kr, tok, strlen(tok))) {
		if (!accept || !strstr(accept, "application/json")) {
			/* A browser's form: back to the sign-in, which says why. */
			atomic_fetch_add_explicit(&an_refused[AR_AUTH], 1, memory_order_relaxed);
			(void)httpd_add_header(q->req, "Location", "/analyst/?denied=1");
			an_send(q, 303, "text/plain; charset=utf-8", "not signed in\n", 14);
			goto out;
		}
		an_refuse(q, AR_AUTH, 401, "unauthorized", "the analyst token is not known");
		goto out;
	}
	if (RAND_bytes(raw, sizeof raw) != 1 || b64url_encode(raw, sizeof raw, sid, sizeof sid, &e) < 0) {
		an_error(q, 500, "internal", "no random bytes");
		goto out;
	}
	an_sha256(sid, strlen(sid), h);
	an_session_add(q->a, h, time_now_ms());
	an_hex(h, 4, hex);
	snprintf(q->actor, sizeof q->actor, "analyst:session:%s", hex);
	an_audit(q, "analyst_login", "");
	snprintf(cookie, sizeof cookie,
		 AN_COOKIE "=%s; Path=/; Max-Age=%ld; HttpOnly; Secure; SameSite=Strict", sid,
		 q->a->session_s);
	(void)httpd_add_header(q->req, "Set-Cookie", cookie);
	if (accept && strstr(accept, "application/json")) {
		json_t *v;

		an_csrf(sid, csrf);
		v = json_pack("{s:s}", "csrf", csrf);
		an_json(q, 200, v);
		json_decref(v);
	} else {
		static const char moved[] = "signed in\n";

		(void)httpd_add_header(q->req, "Location", "/analyst/cohorts");
		an_send(q, 303, "text/plain; charset=utf-8", moved, sizeof moved - 1);
	}
out:
	wipe(tok, sizeof tok);
	wipe(raw, sizeof raw);
	wipe(sid, sizeof sid);
	wipe(cookie, sizeof cookie);
}

static void an_logout(struct aq *q)
{
	unsigned char h[32];

	if (q->sid[0]) {
		an_sha256(q->sid, strlen(q->sid), h);
		(void)an_session_find(q->a, h, time_now_ms(), true);
	}
	an_audit(q, "analyst_logout", "");
	(void)httpd_add_header(q->req, "Set-Cookie",
			       AN_COOKIE "=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
	an_send(q, 200, "application/json", "{\"ok\":true}", 11);
}

static void an_me(struct aq *q)
{
	char csrf[AN_CSRF_LEN + 1] = "";
	json_t *v;

	if (q->sid[0])
		an_csrf(q->sid, csrf);
	v = json_pack("{s:s, s:s, s:I}", "actor", q->actor, "csrf", csrf, "k_min",
		      (json_int_t)q->a->k_min);
	an_json(q, 200, v);
	json_decref(v);
}

/* ------------------------------------------------------------ pages */

static void an_file(struct aq *q, const char *name)
{
	const char *ctype = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rc = www_read(q->a->www_fd, name, &buf, &len, &ctype);

	if (rc == POS_ENOMEM)
		an_error(q, 500, "internal", "out of memory");
	else if (rc < 0)
		an_error(q, 404, "not_found", "no such page");
	else
		an_send(q, 200, ctype, buf, len);
	free(buf);
}

/* ------------------------------------------------------------ CSV */

/* A text cell: quoted, quotes doubled; a leading = + - @ or control
 * character gets a ' so no spreadsheet reads it as a formula. */
static int an_csv_text(struct evbuffer *b, const char *s)
{
	int rc = evbuffer_add(b, "\"", 1);

	if (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' ||
	    s[0] == '\r')
		rc |= evbuffer_add(b, "'", 1);
	for (const char *p = s; *p; p++)
		rc |= *p == '"' ? evbuffer_add(b, "\"\"", 2) : evbuffer_add(b, p, 1);
	rc |= evbuffer_add(b, "\"", 1);
	return rc;
}

/* A GTIN as text (="…"), so its leading zeros stay. */
static int an_csv_gtin(struct evbuffer *b, const char *g)
{
	return evbuffer_add_printf(b, "=\"%s\"", g) < 0 ? -1 : 0;
}

/* UTF-8 with a byte order mark: spreadsheets then read names right. */
static const char an_bom[] = "\xEF\xBB\xBF";

static void an_csv_send(struct aq *q, struct evbuffer *b, const char *filename)
{
	char cd[128];

	snprintf(cd, sizeof cd, "attachment; filename=\"%s\"", filename);
	(void)httpd_add_header(q->req, "Content-Disposition", cd);
	an_buffer(q, "text/csv; charset=utf-8", b);
}

/* ------------------------------------------------------------ queries */

enum an_format { AF_JSON = 0, AF_CSV };

struct an_query {
	enum an_format fmt;
	char item[GTIN_LEN + 1];
	char from[11], to[11]; /* YYYY-MM or YYYY-MM-DD, "" when open */
	char store[IDS_MAX + 1];
	int64_t from_ms, to_ms;
	int64_t from_day, to_day; /* [from_day, to_day), days since 1970; to_day 0: open */
	char offer[IDS_MAX + 1];
	long weeks;
};

/* The first millisecond of YYYY-MM (plus months), or -1. */
static int64_t an_month_ms(const char *s, int plus)
{
	struct tm tm;
	int y, m;
	char tail;

	if (strlen(s) != 7 || sscanf(s, "%4d-%2d%c", &y, &m, &tail) != 2 || s[4] != '-' ||
	    y < 1970 || y > 9999 || m < 1 || m > 12 || strspn(s, "0123456789-") != 7)
		return -1;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1 + plus;
	tm.tm_mday = 1;
	return (int64_t)timegm(&tm) * 1000;
}

/* The first millisecond of YYYY-MM-DD (plus days), or -1. */
static int64_t an_date_ms(const char *s, int plus)
{
	struct tm tm;
	int y, m, d;
	char tail;

	if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || s[4] != '-' ||
	    s[7] != '-' || y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31 ||
	    strspn(s, "0123456789-") != 10)
		return -1;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	if (timegm(&tm) < 0 || tm.tm_mday != d) /* 2025-02-30 rolls over: refused */
		return -1;
	tm.tm_mday = d + plus;
	return (int64_t)timegm(&tm) * 1000;
}

/* Parses the query string; allowed: a bit per known key (1 format,
 * 2 item, 4 from/to, 8 store, 16 offer/weeks). False with the answer sent. */
static bool an_query(struct aq *q, unsigned allowed, struct an_query *out)
{
	const char *query = httpd_query(q->req);
	struct evkeyvalq kv;
	struct evkeyval *p;
	char d[160] = "";

	memset(out, 0, sizeof *out);
	if (!query || !query[0])
		goto check;
	if (strlen(query) > AN_QUERY_MAX) {
		snprintf(d, sizeof d, "the query string is too long");
		goto bad;
	}
	TAILQ_INIT(&kv);
	if (evhttp_parse_query_str(query, &kv) != 0) {
		evhttp_clear_headers(&kv);
		snprintf(d, sizeof d, "the query string is malformed");
		goto bad;
	}
	TAILQ_FOREACH (p, &kv, next)
	{
		if ((allowed & 1) && strcmp(p->key, "format") == 0) {
			if (strcmp(p->value, "csv") == 0)
				out->fmt = AF_CSV;
			else if (strcmp(p->value, "json") == 0)
				out->fmt = AF_JSON;
			else
				snprintf(d, sizeof d, "format must be json or csv");
		} else if ((allowed & 2) && strcmp(p->key, "item") == 0) {
			struct gtin_scan g;
			pos_err e = { 0 };

			if (strlen(p->value) > GTIN_LEN ||
			    strspn(p->value, "0123456789") != strlen(p->value) ||
			    gtin_parse(p->value, strlen(p->value), GTIN_VM_NONE, &g, &e) < 0)
				snprintf(d, sizeof d,
					 "item must be a GTIN (8, 12, 13 or 14 digits, check digit "
					 "right)");
			else
				memcpy(out->item, g.gtin, sizeof out->item);
		} else if ((allowed & 4) &&
			   (strcmp(p->key, "from") == 0 || strcmp(p->key, "to") == 0)) {
			bool from = p->key[0] == 'f';
			int64_t ms = strlen(p->value) == 10 ? an_date_ms(p->value, from ? 0 : 1)
							   : an_month_ms(p->value, from ? 0 : 1);

			if (ms < 0)
				snprintf(d, sizeof d,
					 "%s must be a day YYYY-MM-DD or a month YYYY-MM", p->key);
			else if (from) {
				snprintf(out->from, sizeof out->from, "%s", p->value);
				out->from_ms = ms;
			} else {
				snprintf(out->to, sizeof out->to, "%s", p->value);
				out->to_ms = ms;
			}
		} else if ((allowed & 16) && strcmp(p->key, "offer") == 0) {
			if (!ids_valid(p->value) || strlen(p->value) > IDS_MAX)
				snprintf(d, sizeof d, "offer must be an offer id");
			else
				snprintf(out->offer, sizeof out->offer, "%s", p->value);
		} else if ((allowed & 16) && strcmp(p->key, "weeks") == 0) {
			char *end = NULL;
			long w = strtol(p->value, &end, 10);

			if (!p->value[0] || !end || *end || w < 1 || w > AN_WEEKS_MAX)
				snprintf(d, sizeof d, "weeks must be a whole number from 1 to %d",
					 AN_WEEKS_MAX);
			else
				out->weeks = w;
		} else if ((allowed & 8) && strcmp(p->key, "store") == 0) {
			if (!ids_valid(p->value) || strlen(p->value) > IDS_MAX)
				snprintf(d, sizeof d, "store must be a store id");
			else
				snprintf(out->store, sizeof out->store, "%s", p->value);
		} else {
			snprintf(d, sizeof d, "unknown query parameter (known: %s%s%s%s%s)",
				 allowed & 2 ? "item, " : "", allowed & 4 ? "from, to, " : "",
				 allowed & 8 ? "store, " : "", allowed & 16 ? "offer, weeks, " : "",
				 "format");
		}
		if (d[0])
			break;
	}
	evhttp_clear_headers(&kv);
	if (d[0])
		goto bad;
check:
	if ((allowed & 2) && !out->item[0]) {
		snprintf(d, sizeof d, "item=GTIN is required");
		goto bad;
	}
	if ((allowed & 16) && !out->offer[0]) {
		snprintf(d, sizeof d, "offer=ID is required");
		goto bad;
	}
	if ((allowed & 16) && !out->weeks)
		out->weeks = AN_WEEKS_DEFAULT;
	out->from_day = out->from_ms / 86400000;
	out->to_day = out->to_ms / 86400000;
	if (out->from_ms && out->to_ms && out->from_ms >= out->to_ms) {
		snprintf(d, sizeof d, "from must not be after to");
		goto bad;
	}
	return true;
bad:
	an_refuse(q, AR_INPUT, 400, "bad_request", d);
	return false;
}

/* ------------------------------------------------------------ households */

static int an_line_csv(const struct store_analyst_line *l, void *arg)
{
	struct evbuffer *b = arg;
	time_t t = (time_t)(l->ts_ms / 1000);
	struct tm tm;
	char ts[24];
	int rc;

	gmtime_r(&t, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
	rc = evbuffer_add_printf(b, "%s,", ts) < 0;
	rc |= an_csv_text(b, l->store);
	rc |= evbuffer_add(b, ",", 1);
	rc |= an_csv_text(b, l->txn);
	rc |= evbuffer_add(b, ",", 1);
	rc |= an_csv_gtin(b, l->gtin);
	rc |= evbuffer_add(b, ",", 1);
	rc |= an_csv_text(b, l->name);
	rc |= evbuffer_add(b, ",", 1);
	rc |= an_csv_text(b, l->category);
	rc |= evbuffer_add_printf(b, ",%ld,", l->qty) < 0;
	if (l->price_cents >= 0)
		rc |= evbuffer_add_printf(b, "%ld.%02ld", l->price_cents / 100,
					  l->price_cents % 100) < 0;
	rc |= evbuffer_add(b, "\r\n", 2);
	return rc ? POS_ENOMEM : 0;
}

/* The visit rhythm and the stores, drawn from the household's item
 * lines (one pass, oldest first): per store its baskets and spend, and
 * the days between one basket and the next in a few buckets. */
static const struct {
	int max_days; /* the bucket holds gaps up to it */
	const char *label;
} an_gap_buckets[] = {
	{ 0, "same day" }, { 1, "1 day" },	{ 3, "2-3 days" }, { 7, "4-7 days" },
	{ 14, "8-14 days" }, { 30, "15-30 days" }, { 1 << 30, "over 30 days" },
};
#define AN_GAPS (sizeof an_gap_buckets / sizeof an_gap_buckets[0])

struct an_rhythm {
	json_t *stores; /* store -> [baskets, spend_cents] */
	char txn[64];
	int64_t prev_day;
	long gaps[AN_GAPS];
	long long gap_days;
	long ngaps;
};

static int an_rhythm_line(const struct store_analyst_line *l, void *arg)
{
	struct an_rhythm *r = arg;
	json_t *st = json_object_get(r->stores, l->store);
	int64_t day = l->ts_ms / 86400000;

	if (!st) {
		if (!(st = json_pack("[i, i]", 0, 0)) || json_object_set_new(r->stores, l->store, st))
			return POS_ENOMEM;
	}
	if (strcmp(r->txn, l->txn) != 0) {
		snprintf(r->txn, sizeof r->txn, "%s", l->txn);
		json_array_set_new(st, 0, json_integer(json_integer_value(json_array_get(st, 0)) + 1));
		if (r->prev_day >= 0) {
			int64_t g = day - r->prev_day;
			size_t b = 0;

			while (b + 1 < AN_GAPS && g > an_gap_buckets[b].max_days)
				b++;
			r->gaps[b]++;
			r->gap_days += g;
			r->ngaps++;
		}
		r->prev_day = day;
	}
	if (l->price_cents > 0)
		json_array_set_new(st, 1, json_integer(json_integer_value(json_array_get(st, 1)) +
						       l->price_cents));
	return 0;
}

static int an_store_cmp(const void *x, const void *y)
{
	json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
	json_int_t na = json_integer_value(json_object_get(a, "baskets"));
	json_int_t nb = json_integer_value(json_object_get(b, "baskets"));

	if (na != nb)
		return na > nb ? -1 : 1;
	return strcmp(json_string_value(json_object_get(a, "store")),
		      json_string_value(json_object_get(b, "store")));
}

/* Adds "stores":[{"store","baskets","spend_cents"}] (the most visited
 * first) and "visits":{"gaps":[{"days","visits"}],"mean_gap_days"} to v. */
static int an_rhythm(struct aq *q, const char *hhid, json_t *v, pos_err *e)
{
	struct an_rhythm r = { .stores = json_object(), .prev_day = -1 };
	json_t *stores = json_array(), *gaps = json_array(), **sorted = NULL, *val;
	const char *key;
	size_t n = 0;
	int rc;

	if (!r.stores || !stores || !gaps) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = store_analyst_lines(q->s, hhid, an_rhythm_line, &r, e)) < 0)
		goto out;
	if (!(sorted = calloc(json_object_size(r.stores) + 1, sizeof *sorted))) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	json_object_foreach (r.stores, key, val) {
		if (!(sorted[n] = json_pack("{s:s, s:O, s:O}", "store", key, "baskets",
					    json_array_get(val, 0), "spend_cents",
					    json_array_get(val, 1)))) {
			rc = err_set(e, POS_ENOMEM, "out of memory");
			goto out;
		}
		n++;
	}
	qsort(sorted, n, sizeof *sorted, an_store_cmp);
	for (size_t i = 0; i < n; i++) {
		rc = json_array_append_new(stores, sorted[i]);
		sorted[i] = NULL;
		if (rc) {
			rc = err_set(e, POS_ENOMEM, "out of memory");
			goto out;
		}
	}
	for (size_t b = 0; b < AN_GAPS; b++)
		if (json_array_append_new(gaps, json_pack("{s:s, s:I}", "days", an_gap_buckets[b].label,
							  "visits", (json_int_t)r.gaps[b]))) {
			rc = err_set(e, POS_ENOMEM, "out of memory");
			goto out;
		}
	if (json_object_set(v, "stores", stores) ||
	    json_object_set_new(v, "visits",
				json_pack("{s:O, s:o}", "gaps", gaps, "mean_gap_days",
					  r.ngaps ? json_real((double)(long)((double)r.gap_days /
									  (double)r.ngaps * 10.0 + 0.5) / 10.0)
						  : json_null()))) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; sorted && i < n; i++)
		json_decref(sorted[i]);
	free(sorted);
	json_decref(r.stores);
	json_decref(stores);
	json_decref(gaps);
	return rc;
}

/* The household's CSV, streamed: a page of baskets at a time as the
 * client takes it, so a long history never sits whole in memory. */
#define AN_LINES_PAGE 64 /* baskets per read */

struct an_lines {
	struct store *s; /* the worker's, which outlives the reply */
	char hhid[40];
	struct store_analyst_pos pos;
	struct evbuffer *buf;
	bool started, done;
};

static void an_lines_free(void *arg)
{
	struct an_lines *ls = arg;

	if (!ls)
		return;
	if (ls->buf)
		evbuffer_free(ls->buf);
	free(ls);
}

static int an_lines_fill(void *arg, size_t want, httpd_sink put, void *put_arg)
{
	struct an_lines *ls = arg;
	pos_err e = { 0 };
	int rc = 1;

	if (!ls->started) {
		if (evbuffer_add_printf(ls->buf, "%stime_utc,store,txn,gtin,name,category,qty,price\r\n",
					an_bom) < 0)
			return POS_ENOMEM;
		ls->started = true;
	}
	while (!ls->done && evbuffer_get_length(ls->buf) < want) {
		rc = store_analyst_lines_page(ls->s, ls->hhid, &ls->pos, AN_LINES_PAGE, an_line_csv,
					      ls->buf, &e);
		if (rc < 0) {
			/* The status went out: the log says why, and the client sees
			 * the body end without its last chunk. */
			log_error("analyst_export_failed", "code=%s", err_name(rc));
			return rc;
		}
		ls->done = rc == 0;
	}
	while (evbuffer_get_length(ls->buf) > 0) {
		size_t n = evbuffer_get_length(ls->buf);
		const void *p = evbuffer_pullup(ls->buf, -1);

		if (!p || put(p, n, put_arg) < 0)
			return POS_ENOMEM;
		evbuffer_drain(ls->buf, n);
	}
	return ls->done ? 0 : 1;
}

static void an_csv_stream(struct aq *q, struct an_lines *ls, const char *filename)
{
	char cd[128];

	snprintf(cd, sizeof cd, "attachment; filename=\"%s\"", filename);
	(void)httpd_add_header(q->req, "Content-Disposition", cd);
	an_head(q, 200);
	httpd_reply_stream(q->req, 200, "text/csv; charset=utf-8", an_lines_fill, an_lines_free,
			   ls);
}

static void an_household(struct aq *q, const char *hhid)
{
	struct an_query f;
	json_t *v = NULL;
	pos_err e = { 0 };
	char detail[64], fname[64];
	int rc;

	if (!deident_hhid_valid(hhid)) {
		an_refuse(q, AR_INPUT, 400, "bad_request",
			  "hhid must be hh_ and 26 Crockford base32 characters");
		return;
	}
	if (!an_query(q, 1, &f))
		return;
	snprintf(detail, sizeof detail, "hhid=%s format=%s", hhid, f.fmt == AF_CSV ? "csv" : "json");
	an_audit(q, "analyst_household", detail);
	rc = store_analyst_household(q->s, hhid, &v, &e);
	if (rc == POS_ENOTFOUND) {
		an_error(q, 404, "unknown_household", "no household has this hhid");
		return;
	}
	if (rc < 0) {
		an_fail(q, rc, &e);
		return;
	}
	if (f.fmt == AF_JSON) {
		if ((rc = an_rhythm(q, hhid, v, &e)) < 0)
			an_fail(q, rc, &e);
		else
			an_json(q, 200, v);
	} else {
		struct an_lines *ls = calloc(1, sizeof *ls);

		if (!ls || !(ls->buf = evbuffer_new())) {
			an_lines_free(ls);
			an_error(q, 500, "internal", "out of memory");
		} else {
			ls->s = q->s;
			snprintf(ls->hhid, sizeof ls->hhid, "%s", hhid);
			ls->pos.ts_ms = INT64_MIN;
			snprintf(fname, sizeof fname, "household-%s.csv", hhid);
			an_csv_stream(q, ls, fname);
		}
	}
	json_decref(v);
}

/* ------------------------------------------------------------ cohorts */

static int an_int_cmp(const void *x, const void *y)
{
	int a = *(const int *)x, b = *(const int *)y;

	return (a > b) - (a < b);
}

const char *analyst_cohort_rule(long k, int *first, int *last, size_t n, long pop, long n_all)
{
	size_t i;

	if ((long)n < k)
		return "under_k";
	if (pop - (long)n > 0 && pop - (long)n < k)
		return "complement";
	if (n_all >= 0 && n_all - (long)n > 0 && n_all - (long)n < k)
		return "difference";
	/* Moving either end of the range inward drops the households whose
	 * purchases all lie beyond it; the fewest it can drop is the number
	 * before the first change of the sorted days. */
	qsort(first, n, sizeof *first, an_int_cmp);
	qsort(last, n, sizeof *last, an_int_cmp);
	for (i = 1; i < n && last[i] == last[0]; i++)
		;
	if (i < n && (long)i < k)
		return "difference";
	for (i = 1; i < n && first[n - 1 - i] == first[n - 1]; i++)
		;
	if (i < n && (long)i < k)
		return "difference";
	return NULL;
}

struct an_also {
	long k, n, pop;
	size_t shown;
	long suppressed;
	json_t *rows;
	struct evbuffer *csv;
};

static int an_also_cb(const struct store_analyst_other *o, void *arg)
{
	struct an_also *x = arg;
	double lift;
	json_t *r;

	if (o->cohort < x->k) {
		x->suppressed++;
		return 0;
	}
	if (x->shown >= AN_ALSO_MAX)
		return 0;
	x->shown++;
	lift = o->population > 0 && x->n > 0
		       ? ((double)o->cohort / (double)x->n) / ((double)o->population / (double)x->pop)
		       : 0.0;
	lift = (double)(long)(lift * 100.0 + 0.5) / 100.0;
	if (x->csv) {
		int rc = an_csv_gtin(x->csv, o->gtin) | evbuffer_add(x->csv, ",", 1) |
			 an_csv_text(x->csv, o->name);

		rc |= evbuffer_add_printf(x->csv, ",%ld,%.2f\r\n", o->cohort, lift) < 0;
		return rc ? POS_ENOMEM : 0;
	}
	r = json_pack("{s:s, s:s, s:I, s:f}", "gtin", o->gtin, "name", o->name, "households",
		      (json_int_t)o->cohort, "lift", lift);
	return r && json_array_append_new(x->rows, r) == 0 ? 0 : POS_ENOMEM;
}

static void an_cohort(struct aq *q)
{
	struct an_query f;
	struct store_analyst_days cf;
	struct an_also x = { 0 };
	int *first = NULL, *last = NULL, *f2 = NULL, *l2 = NULL;
	size_t n = 0, n2 = 0;
	long pop = 0, n_all = -1;
	const char *why;
	json_t *v = NULL;
	pos_err e = { 0 };
	char detail[160], fname[64];
	int rc;

	if (!an_query(q, 1 | 2 | 4 | 8, &f))
		return;
	snprintf(detail, sizeof detail, "item=%s from=%s to=%s store=%s format=%s", f.item,
		 f.from[0] ? f.from : "-", f.to[0] ? f.to : "-", f.store[0] ? f.store : "-",
		 f.fmt == AF_CSV ? "csv" : "json");
	an_audit(q, "analyst_cohort", detail);
	cf.gtin = f.item;
	cf.from_day = f.from_day;
	cf.to_day = f.to_day;
	cf.store = f.store[0] ? f.store : NULL;
	/* The folded tables, by day: the rule below then holds against any
	 * two day ranges sharing an end, the finest cut the filters allow. */
	if ((rc = store_analyst_days_cohort(q->s, &cf, &first, &last, &n, &e)) < 0 ||
	    (rc = store_analyst_days_population(q->s, &cf, &pop, &e)) < 0)
		goto fail;
	if (cf.store) {
		struct store_analyst_days all = cf;

		all.store = NULL;
		if ((rc = store_analyst_days_cohort(q->s, &all, &f2, &l2, &n2, &e)) < 0)
			goto fail;
		n_all = (long)n2;
	}
	why = analyst_cohort_rule(q->a->k_min, first, last, n, pop, n_all);
	x.k = q->a->k_min;
	x.n = (long)n;
	x.pop = pop;
	if (!(x.rows = json_array()))
		goto oom;
	if (f.fmt == AF_CSV && (!(x.csv = evbuffer_new()) ||
				evbuffer_add_printf(x.csv, "%sgtin,name,households,lift\r\n",
						    an_bom) < 0))
		goto oom;
	if (why)
		atomic_fetch_add_explicit(&an_suppressed_cohort, 1, memory_order_relaxed);
	else if ((rc = store_analyst_days_also(q->s, &cf, an_also_cb, &x, &e)) < 0)
		goto fail;
	atomic_fetch_add_explicit(&an_suppressed_rows, x.suppressed, memory_order_relaxed);
	if (x.csv) {
		snprintf(fname, sizeof fname, "cohort-%s.csv", f.item);
		an_csv_send(q, x.csv, fname);
		goto out;
	}
	v = json_pack("{s:s, s:o, s:O, s:I}", "item", f.item, "households",
		      why ? json_null() : json_integer((json_int_t)n), "also_bought", x.rows,
		      "suppressed_rows", (json_int_t)x.suppressed);
	if (!v)
		goto oom;
	if (why)
		json_object_set_new(v, "suppressed", json_string(why));
	an_json(q, 200, v);
	goto out;
oom:
	an_error(q, 500, "internal", "out of memory");
	goto out;
fail:
	an_fail(q, rc, &e);
out:
	json_decref(v);
	json_decref(x.rows);
	if (x.csv)
		evbuffer_free(x.csv);
	free(first);
	free(last);
	free(f2);
	free(l2);
}

/* The cohort of an offer's redeemers: their mean spend per household in
 * the weeks before and after each redemption. Under k households the
 * means are withheld with the count. */
static void an_offer_moves(struct aq *q)
{
	struct an_query f;
	struct store_analyst_move m;
	json_t *v;
	pos_err e = { 0 };
	char detail[128];
	int rc;

	if (!an_query(q, 16, &f))
		return;
	snprintf(detail, sizeof detail, "offer=%s weeks=%ld", f.offer, f.weeks);
	an_audit(q, "analyst_offer_cohort", detail);
	rc = store_analyst_offer_moves(q->s, f.offer, (int64_t)f.weeks * 7 * 86400000LL, &m, &e);
	if (rc == POS_ENOTFOUND) {
		an_error(q, 404, "unknown_offer", "no offer has this id");
		return;
	}
	if (rc < 0) {
		an_fail(q, rc, &e);
		return;
	}
	if (m.households < q->a->k_min) {
		atomic_fetch_add_explicit(&an_suppressed_cohort, 1, memory_order_relaxed);
		v = json_pack("{s:s, s:s, s:I, s:n, s:n, s:n, s:s}", "offer_id", f.offer, "title",
			      m.title, "weeks", (json_int_t)f.weeks, "households", "before_cents",
			      "after_cents", "suppressed", "under_k");
	} else {
		json_int_t before = (json_int_t)(m.before_cents / m.households),
			   after = (json_int_t)(m.after_cents / m.households);

		v = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "offer_id", f.offer, "title", m.title,
			      "weeks", (json_int_t)f.weeks, "households", (json_int_t)m.households,
			      "before_cents", before, "after_cents", after);
	}
	an_json(q, 200, v);
	json_decref(v);
}

/* ------------------------------------------------------------ funnel */

struct an_funnel {
	long k;
	json_t *rows;
	struct evbuffer *csv;
};

static json_t *an_k(long v, long k)
{
	return v < k ? json_null() : json_integer((json_int_t)v);
}

static int an_funnel_cb(const struct store_analyst_funnel *f, void *arg)
{
	struct an_funnel *x = arg;
	long vals[3] = { f->accepted, f->scanned, f->redeemed };
	json_t *r;

	for (int i = 0; i < 3; i++)
		if (vals[i] < x->k)
			atomic_fetch_add_explicit(&an_suppressed_rows, 1, memory_order_relaxed);
	if (x->csv) {
		int rc = an_csv_text(x->csv, f->offer_id) | evbuffer_add(x->csv, ",", 1) |
			 an_csv_text(x->csv, f->title);

		for (int i = 0; i < 3; i++)
			rc |= vals[i] < x->k ? evbuffer_add(x->csv, ",", 1)
					     : (evbuffer_add_printf(x->csv, ",%ld", vals[i]) < 0);
		rc |= evbuffer_add(x->csv, "\r\n", 2);
		return rc ? POS_ENOMEM : 0;
	}
	r = json_pack("{s:s, s:s, s:o, s:o, s:o}", "offer_id", f->offer_id, "title", f->title,
		      "accepted", an_k(f->accepted, x->k), "scanned", an_k(f->scanned, x->k),
		      "redeemed", an_k(f->redeemed, x->k));
	return r && json_array_append_new(x->rows, r) == 0 ? 0 : POS_ENOMEM;
}

static void an_funnel(struct aq *q)
{
	struct an_query f;
	struct an_funnel x = { .k = q->a->k_min };
	pos_err e = { 0 };
	int rc;

	if (!an_query(q, 1, &f))
		return;
	an_audit(q, "analyst_funnel", f.fmt == AF_CSV ? "format=csv" : "format=json");
	if (!(x.rows = json_array()) ||
	    (f.fmt == AF_CSV &&
	     (!(x.csv = evbuffer_new()) ||
	      evbuffer_add_printf(x.csv, "%soffer_id,title,accepted,scanned,redeemed\r\n", an_bom) <
		      0))) {
		an_error(q, 500, "internal", "out of memory");
		goto out;
	}
	if ((rc = store_analyst_funnel(q->s, an_funnel_cb, &x, &e)) < 0)
		an_fail(q, rc, &e);
	else if (x.csv)
		an_csv_send(q, x.csv, "offers-funnel.csv");
	else
		an_json(q, 200, x.rows);
out:
	json_decref(x.rows);
	if (x.csv)
		evbuffer_free(x.csv);
}

/* ------------------------------------------------------------ dispatch */

static bool an_method(struct aq *q, enum http1_method want)
{
	enum http1_method m = httpd_method(q->req);

	if (m == want || (want == HTTP1_GET && m == HTTP1_HEAD))
		return true;
	(void)httpd_add_header(q->req, "Allow", want == HTTP1_GET ? "GET, HEAD" : "POST");
	an_error(q, 405, "method_not_allowed", want == HTTP1_GET ? "use GET or HEAD" : "use POST");
	return false;
}

/* The rest of path after prefix when it is one segment, else NULL. */
static const char *an_tail(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(path, prefix, n) != 0 || !path[n] || strchr(path + n, '/'))
		return NULL;
	return path + n;
}

static void an_dispatch(struct aq *q)
{
	struct httpd_req *req = q->req;
	const char *path = httpd_path(req), *x;
	bool who, csrf_ok = false, page = strncmp(path, "/v1/", 4) != 0;

	/* Signing in and the assets need no analyst. */
	if (strcmp(path, "/analyst") == 0 || strcmp(path, "/analyst/") == 0) {
		q->route = "analyst_signin";
		if (an_method(q, HTTP1_GET))
			an_file(q, "analyst.html");
		return;
	}
	if (strcmp(path, "/analyst/login") == 0) {
		q->route = "analyst_login";
		if (an_method(q, HTTP1_POST))
			an_login(q);
		return;
	}
	if ((x = an_tail(path, AN_ASSETS))) {
		q->route = "analyst_asset";
		if (an_method(q, HTTP1_GET))
			an_file(q, x);
		return;
	}
	who = an_who(q, &csrf_ok);
	if (!who) {
		q->route = page ? "analyst_page" : "analyst_api";
		if (page && httpd_method(req) != HTTP1_POST) {
			/* A page asked for without a session: to the sign-in. */
			atomic_fetch_add_explicit(&an_refused[AR_AUTH], 1, memory_order_relaxed);
			(void)httpd_add_header(req, "Location", "/analyst/");
			an_send(q, 303, "text/plain; charset=utf-8", "sign in\n", 8);
			return;
		}
		(void)httpd_add_header(req, "WWW-Authenticate", "Bearer");
		an_refuse(q, AR_AUTH, 401, "unauthorized",
			  "sign in at /analyst/ or send the analyst token as a Bearer token");
		return;
	}
	if (httpd_method(req) == HTTP1_POST && !csrf_ok) {
		q->route = "analyst_post";
		an_refuse(q, AR_CSRF, 403, "csrf", "the X-CSRF-Token header is missing or wrong");
		return;
	}
	if (strcmp(path, "/analyst/logout") == 0) {
		q->route = "analyst_logout";
		if (an_method(q, HTTP1_POST))
			an_logout(q);
	} else if (strcmp(path, "/v1/analyst/me") == 0) {
		q->route = "analyst_me";
		if (an_method(q, HTTP1_GET))
			an_me(q);
	} else if ((x = an_tail(path, AN_HH_JSON))) {
		q->route = "analyst_household";
		if (an_method(q, HTTP1_GET))
			an_household(q, x);
	} else if (strcmp(path, "/v1/analyst/cohorts") == 0) {
		q->route = "analyst_cohorts";
		if (an_method(q, HTTP1_GET))
			an_cohort(q);
	} else if (strcmp(path, "/v1/analyst/cohorts/offer") == 0) {
		q->route = "analyst_offer_cohort";
		if (an_method(q, HTTP1_GET))
			an_offer_moves(q);
	} else if (strcmp(path, "/v1/analyst/offers/funnel") == 0) {
		q->route = "analyst_funnel";
		if (an_method(q, HTTP1_GET))
			an_funnel(q);
	} else if ((x = an_tail(path, AN_HH_PAGE)) || strcmp(path, "/analyst/cohorts") == 0 ||
		   strcmp(path, "/analyst/offers") == 0) {
		const char *file = x ? "analyst_household.html"
				     : strcmp(path, "/analyst/cohorts") == 0 ? "analyst_cohorts.html"
									      : "analyst_offers.html";
		char detail[64];

		q->route = "analyst_page";
		if (x && !deident_hhid_valid(x)) {
			an_refuse(q, AR_INPUT, 404, "not_found", "no such household page");
			return;
		}
		if (!an_method(q, HTTP1_GET))
			return;
		snprintf(detail, sizeof detail, "page=%s%s%s", file, x ? " hhid=" : "", x ? x : "");
		an_audit(q, "analyst_page", detail);
		an_file(q, file);
	} else {
		q->route = "analyst_other";
		an_error(q, 404, "not_found", "no such route");
	}
}

void analyst_handle(struct analyst_shared *a, struct store *s, struct httpd_req *req)
{
	struct aq q = { .a = a, .s = s, .req = req, .route = "analyst", .t0_us = time_mono_us() };

	an_dispatch(&q);
	wipe(q.sid, sizeof q.sid);
}
