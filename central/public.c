#include "public.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "httpd.h"
#include "ids.h"
#include "ingest.h"
#include "jsonx.h"
#include "keysproc.h"
#include "log.h"
#include "metrics.h"
#include "offers.h"
#include "outbox.h"
#include "query.h"
#include "ratelimit.h"
#include "receipt.h"
#include "store_public.h"
#include "tid.h"
#include "timeutil.h"
#include "vendor.h"
#include "visitor.h"
#include "wipe.h"
#include "www.h"

#define PUB_BODY_MAX 16384          /* bytes of a JSON body here */
#define PUB_TOKEN_PATH_MAX 64       /* characters of a token in a path */
#define PUB_LIST_MAX 100            /* conversations in one console answer */
#define PUB_MESSAGES_MAX 500        /* messages in one answer */
#define PUB_PENDING 64              /* wake-ups queued per worker before "check all" */
#define PUB_MEMBERS CCONF_MAX_WORKERS
#define PUB_SID_BYTES 32
#define PUB_COOKIE "pos_console"
#define PUB_CSRF_HEADER "X-CSRF-Token"
#define PUB_CSRF_LEN 32
#define PUB_STAFF_TOKEN_MAX 128

static const char pub_csp[] =
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/* ------------------------------------------------------------ counters */

enum pub_refusal {
	PR_RATE = 0,  /* the address's token bucket was empty */
	PR_RECEIPT,   /* an unknown or expired receipt token */
	PR_MESSAGE,   /* a message body refused */
	PR_LOGIN,     /* an unknown staff token */
	PR_SESSION,   /* no or an expired session */
	PR_CSRF,      /* a POST without the session's CSRF token */
	PR_VISITOR,   /* a uid and sig that do not match */
	PR_SMS_SIG,   /* an inbound SMS without the gateway's signature */
	PR_SMS_REF,   /* an inbound SMS whose ref names no visitor */
	PR_COUNT
};
static const char *const pub_refusal_names[PR_COUNT] = {
	"rate_limited", "unknown_receipt", "bad_message", "bad_login", "no_session", "csrf",
	"bad_visitor", "sms_signature", "sms_ref",
};
static atomic_ulong pub_refused[PR_COUNT];
static atomic_ulong pub_requests;
static atomic_ulong pub_messages;
static atomic_long pub_parked;

static void pub_refuse(enum pub_refusal r)
{
	atomic_fetch_add_explicit(&pub_refused[r], 1, memory_order_relaxed);
}

static int pub_metrics(char *buf, size_t cap)
{
	size_t len = 0;
	int n;

	n = snprintf(buf, cap,
		     "# HELP pos_public_requests_total Requests answered on the public listener.\n"
		     "# TYPE pos_public_requests_total counter\n"
		     "pos_public_requests_total %lu\n"
		     "# HELP pos_public_messages_total Chat messages stored.\n"
		     "# TYPE pos_public_messages_total counter\n"
		     "pos_public_messages_total %lu\n"
		     "# HELP pos_public_long_polls Message long polls held now.\n"
		     "# TYPE pos_public_long_polls gauge\n"
		     "pos_public_long_polls %ld\n"
		     "# HELP pos_public_refused_total Public requests refused, by reason.\n"
		     "# TYPE pos_public_refused_total counter\n",
		     atomic_load(&pub_requests), atomic_load(&pub_messages), atomic_load(&pub_parked));
	if (n < 0 || (size_t)n >= cap)
		return (int)cap;
	len = (size_t)n;
	for (int i = 0; i < PR_COUNT; i++) {
		n = snprintf(buf + len, cap - len, "pos_public_refused_total{reason=\"%s\"} %lu\n",
			     pub_refusal_names[i], atomic_load(&pub_refused[i]));
		if (n < 0 || (size_t)n >= cap - len)
			return (int)cap;
		len += (size_t)n;
	}
	return (int)len;
}

/* ------------------------------------------------------------ wake-ups */

struct public_bus {
	pthread_mutex_t mu;
	struct public *members[PUB_MEMBERS];
};

/* A long poll waiting for a message of txn after `after`. */
struct parked {
	struct parked *prev, *next;
	struct public *p;
	struct httpd_req *req;
	int64_t t0_us;
	const char *kind;  /* STORE_CONV_RECEIPT or STORE_CONV_VISITOR */
	const char *route; /* the log's label */
	char txn[37];
	int64_t after;
	struct event *timer;
};

struct public {
	struct event_base *base;
	struct store *store;
	struct keys_chan *keys;
	struct public_shared *sh;
	struct vendor_worker *vw; /* the vendor and message routes (vendor.h) */
	struct event *wake_ev;
	struct parked *parked; /* worker thread only */
	size_t n_parked;
	/* Writes with the writer: counted here, answered on done_ev. */
	size_t n_async;
	struct event *done_ev;
	pthread_mutex_t done_mu;
	struct pub_async *done; /* guarded by done_mu */
	/* Guarded by the bus's mu: txns with a new message, or overflow. */
	char pending[PUB_PENDING][37];
	size_t n_pending;
	bool overflow;
};

/* Wakes every worker's polls on txn (any thread). */
static void pub_notify(struct public_bus *b, const char *txn)
{
	pthread_mutex_lock(&b->mu);
	for (size_t i = 0; i < PUB_MEMBERS; i++) {
		struct public *m = b->members[i];

		if (!m)
			continue;
		if (m->n_pending < PUB_PENDING)
			snprintf(m->pending[m->n_pending++], sizeof m->pending[0], "%s", txn);
		else
			m->overflow = true;
		event_active(m->wake_ev, EV_READ, 1);
	}
	pthread_mutex_unlock(&b->mu);
}

/* ------------------------------------------------------------ answers */

struct pq {
	struct public *p;
	struct httpd_req *req;
	const char *route; /* a fixed label, never the raw path */
	int64_t t0_us;
};

static void pub_headers(struct httpd_req *req, const char *cache)
{
	(void)httpd_add_header(req, "Content-Security-Policy", pub_csp);
	(void)httpd_add_header(req, "Strict-Transport-Security", "max-age=31536000");
	(void)httpd_add_header(req, "X-Content-Type-Options", "nosniff");
	(void)httpd_add_header(req, "Referrer-Policy", "no-referrer");
	(void)httpd_add_header(req, "X-Frame-Options", "DENY");
	(void)httpd_add_header(req, "Cache-Control", cache);
}

static void pub_send_cached(struct pq *q, int status, const char *ctype, const void *body,
			    size_t len, const char *cache)
{
	long long us = (long long)(time_mono_us() - q->t0_us);

	pub_headers(q->req, cache);
	atomic_fetch_add_explicit(&pub_requests, 1, memory_order_relaxed);
	log_info("public_request", "route=%s method=%s status=%d latency_us=%lld", q->route,
		 httpd_method_name(q->req), status, us);
	httpd_reply(q->req, status, ctype, body, len);
}

static void pub_send(struct pq *q, int status, const char *ctype, const void *body, size_t len)
{
	pub_send_cached(q, status, ctype, body, len, "no-store");
}

static void pub_json(struct pq *q, int status, json_t *v)
{
	char *s = v ? jsonx_dump(v) : NULL;

	if (!s) {
		static const char oom[] = "{\"error\":\"internal\",\"detail\":\"out of memory\"}";
		pub_send(q, 500, "application/json", oom, sizeof oom - 1);
		return;
	}
	pub_send(q, status, "application/json", s, strlen(s));
	free(s);
}

static void pub_error(struct pq *q, int status, const char *code, const char *detail)
{
	json_t *v = json_pack("{s:s, s:s}", "error", code, "detail", detail ? detail : "");

	pub_json(q, status, v);
	json_decref(v);
}

static void pub_fail(struct pq *q, int rc, const pos_err *e)
{
	char qb[sizeof e->msg + 16];
	bool busy = rc == POS_EAGAIN || rc == POS_EDB;

	log_error(busy ? "store_failed" : "internal_error", "route=%s code=%s detail=%s", q->route,
		  err_name(rc), log_q(qb, sizeof qb, e ? e->msg : ""));
	if (busy)
		pub_error(q, 503, "unavailable", "storage is busy or failing; retry later");
	else
		pub_error(q, 500, "internal", "internal error");
}

static void pub_bad_input(struct pq *q, int rc, const pos_err *e)
{
	if (rc == POS_ETOOBIG)
		pub_error(q, 413, "too_large", e->msg);
	else if (rc == POS_EINVAL)
		pub_error(q, 400, "bad_request", e->msg);
	else
		pub_fail(q, rc, e);
}

static void pub_not_found(struct pq *q)
{
	pub_error(q, 404, "not_found", "no such page or receipt");
}

/* ------------------------------------------------------------ static files */

/* Serves www/<name> (www_read's rules). */
static void pub_file(struct pq *q, const char *name, int status)
{
	const char *ctype = NULL;
	char *buf = NULL;
	size_t have = 0;
	int rc = www_read(q->p->sh->www_fd, name, &buf, &have, &ctype);

	if (rc == POS_ENOMEM)
		pub_error(q, 500, "internal", "out of memory");
	else if (rc < 0)
		pub_not_found(q);
	else
		pub_send_cached(q, status, ctype, buf, have, "no-cache");
	free(buf);
}

/* ------------------------------------------------------------ receipts */

/*
 * The receipt of a token, still within ttl_days of its basket.
 * Constant work for any token: whatever its shape, it is hashed and
 * looked up, so a malformed, unknown or expired one all take one hash and
 * one index probe, and each answers POS_ENOTFOUND.
 */
static int pub_receipt(struct pq *q, const char *tok, struct store_receipt *r, pos_err *e)
{
	unsigned char h[32];
	size_t n = strnlen(tok, PUB_TOKEN_PATH_MAX + 1);
	bool shape = receipt_token_valid(tok, n);
	int64_t ttl_ms = q->p->sh->c->receipt_ttl_days * 86400000LL;
	int rc;

	if (receipt_token_hash(tok, n, h) < 0)
		return err_set(e, POS_ECRYPTO, "receipt digest failed");
	rc = store_receipt_find(q->p->store, h, r, e);
	if (rc == 0 && (!shape || r->ts_ms + ttl_ms < time_now_ms()))
		rc = err_set(e, POS_ENOTFOUND, "receipt: not found");
	if (rc == POS_ENOTFOUND)
		pub_refuse(PR_RECEIPT);
	return rc;
}

static int pub_line_cb(const struct store_receipt_line *l, void *arg)
{
	json_t **acc = arg; /* [0] items, [1] total, [2] complete */
	json_t *o = json_pack("{s:s, s:s, s:i}", "gtin", l->gtin, "name", l->name, "qty", l->qty);

	if (!o)
		return POS_ENOMEM;
	if (l->price_cents >= 0) {
		json_object_set_new(o, "price_cents", json_integer(l->price_cents));
		json_integer_set(acc[1], json_integer_value(acc[1]) + l->price_cents);
	} else {
		json_object_set_new(o, "price_cents", json_null());
		acc[2] = json_false();
	}
	return json_array_append_new(acc[0], o) == 0 ? 0 : POS_ENOMEM;
}

static int pub_offer_cb(const char *id, const char *title, void *arg)
{
	json_t *o = json_pack("{s:s, s:s}", "id", id, "title", title);

	return o && json_array_append_new(arg, o) == 0 ? 0 : POS_ENOMEM;
}

/* {"store","time","items":[{"gtin","name","qty","price_cents"}],
 *  "total_cents","total_complete","offers":[{"id","title"}]} */
static int pub_receipt_json(struct store *s, const struct store_receipt *r, json_t **out,
			    pos_err *e)
{
	char ts[TIME_RFC3339_LEN];
	json_t *acc[3] = { json_array(), json_integer(0), json_true() };
	json_t *offers = json_array(), *v = NULL;
	int rc;

	*out = NULL;
	if (!acc[0] || !acc[1] || !offers) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = store_receipt_lines(s, r->basket_id, r->ts_ms, pub_line_cb, acc, e)) != 0 ||
	    (rc = store_receipt_offers(s, r->basket_id, pub_offer_cb, offers, e)) != 0) {
		if (rc == POS_ENOMEM)
			err_set(e, rc, "out of memory");
		goto out;
	}
	time_format_rfc3339(r->ts_ms, ts);
	v = json_pack("{s:s, s:s, s:O, s:O, s:O, s:O}", "store", r->store, "time", ts, "items",
		      acc[0], "total_cents", acc[1], "total_complete", acc[2], "offers", offers);
	if (!v) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	*out = v;
	rc = 0;
out:
	json_decref(acc[0]);
	json_decref(acc[1]);
	json_decref(acc[2]);
	json_decref(offers);
	return rc;
}

/* The receipt's JSON, with whether the device presented was linked. */
static void pub_receipt_answer(struct pq *q, const struct store_receipt *r, bool linked)
{
	pos_err e = { 0 };
	json_t *v = NULL;
	int rc;

	if ((rc = pub_receipt_json(q->p->store, r, &v, &e)) < 0) {
		pub_fail(q, rc, &e);
		return;
	}
	json_object_set_new(v, "device_linked", json_boolean(linked));
	pub_json(q, 200, v);
	json_decref(v);
}

static void pub_receipt_link(struct pq *q, const struct store_receipt *r, int64_t device);

/* GET /v1/receipts/{token}; a device token along links that device to the
 * basket's household (the customer scanned their own receipt). */
static void pub_receipt_get(struct pq *q, const char *tok)
{
	struct store_receipt r;
	pos_err e = { 0 };
	const char *dev;
	size_t dlen = 0;
	int64_t device = 0;
	int rc;

	if ((rc = pub_receipt(q, tok, &r, &e)) < 0) {
		if (rc == POS_ENOTFOUND)
			pub_not_found(q);
		else
			pub_fail(q, rc, &e);
		return;
	}
	if ((dev = httpd_bearer(q->req, &dlen))) {
		rc = offers_device_auth(q->p->store, dev, dlen, &device, NULL, &e);
		if (rc == POS_EDB || rc == POS_EAGAIN) {
			pub_fail(q, rc, &e);
			return;
		}
		if (rc < 0) {
			(void)httpd_add_header(q->req, "WWW-Authenticate", "Bearer realm=\"device\"");
			pub_error(q, 401, "unauthorized", "the device token is not known");
			return;
		}
		if (r.hhid[0]) {
			pub_receipt_link(q, &r, device);
			return;
		}
	}
	pub_receipt_answer(q, &r, false);
}

/* ------------------------------------------------------------ messages */

static int pub_msg_cb(const struct store_message *m, void *arg)
{
	json_t **acc = arg; /* [0] array, [1] last id */
	char ts[TIME_RFC3339_LEN];
	json_t *o;

	time_format_rfc3339(m->ts_ms, ts);
	o = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)m->id, "time", ts, "author",
		      m->author, "body", m->body);
	if (!o || json_array_append_new(acc[0], o) != 0)
		return POS_ENOMEM;
	json_integer_set(acc[1], m->id);
	return 0;
}

/* {"messages":[{"id","time","author","body"}],"last":ID} of the
 * conversation of (kind, txn) after `after` (none yet: empty); *n their
 * count. */
static int pub_messages_json(struct store *s, const char *kind, const char *txn, int64_t after,
			     json_t **out, size_t *n, pos_err *e)
{
	struct store_conversation c;
	json_t *acc[2] = { json_array(), json_integer(after) };
	int rc;

	*out = NULL;
	*n = 0;
	if (!acc[0] || !acc[1]) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	rc = store_conversation_find(s, kind, txn, &c, e);
	if (rc == 0)
		rc = store_messages(s, c.id, after, PUB_MESSAGES_MAX, pub_msg_cb, acc, e);
	else if (rc == POS_ENOTFOUND)
		rc = 0;
	if (rc == POS_ENOMEM)
		err_set(e, rc, "out of memory");
	if (rc < 0)
		goto out;
	*n = json_array_size(acc[0]);
	if (!(*out = json_pack("{s:O, s:O}", "messages", acc[0], "last", acc[1])))
		rc = err_set(e, POS_ENOMEM, "out of memory");
out:
	json_decref(acc[0]);
	json_decref(acc[1]);
	return rc;
}

/* Plain text of 1..max characters (UTF-8 code points; jansson has
 * checked the encoding): no control characters but line breaks and tabs,
 * not only white space. */
static int pub_text_ok(const char *s, long max, pos_err *e)
{
	long chars = 0;
	bool ink = false;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xC0) != 0x80)
			chars++;
		if ((*p < 0x20 && *p != '\n' && *p != '\t' && *p != '\r') || *p == 0x7F)
			return err_set(e, POS_EINVAL, "'body' must be plain text without control "
						      "characters");
		if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
			ink = true;
	}
	if (chars == 0 || !ink)
		return err_set(e, POS_EINVAL, "'body' must not be empty");
	if (chars > max)
		return err_set(e, POS_ETOOBIG, "'body' is longer than %ld characters", max);
	return 0;
}

/* A POST body {"body":"..."}: JSON by Content-Type (a cross-site form
 * cannot send that without asking first), the text checked. *root holds
 * the string: json_decref it. */
static int pub_message_body(struct pq *q, json_t **root, const char **text, pos_err *e)
{
	static const char *const keys[] = { "body", NULL };
	const char *ct = httpd_header(q->req, "Content-Type");
	long max = q->p->sh->c->message_max_chars;
	const char *body;
	size_t len;
	int rc;

	*root = NULL;
	if (!ct || strncasecmp(ct, "application/json", 16) != 0)
		return err_set(e, POS_EINVAL, "Content-Type must be application/json");
	body = httpd_body(q->req, &len);
	if ((rc = jsonx_parse(body, len, PUB_BODY_MAX, 2, root, e)) < 0)
		return rc;
	if (!json_is_object(*root))
		return err_set(e, POS_EINVAL, "the body must be {\"body\":\"...\"}");
	if ((rc = jsonx_only_keys(*root, keys, e)) < 0 ||
	    (rc = jsonx_str(*root, "body", 1, (size_t)max * 4, text, e)) < 0)
		return rc;
	return pub_text_ok(*text, max, e);
}

/* ?after=ID&wait=0|1; with visitor also uid= and sig= (read elsewhere). */
static int pub_poll_query(const char *query, bool visitor, int64_t *after, bool *wait,
			  pos_err *e)
{
	static const char *const known[] = { "after", "wait", NULL };
	static const char *const known_visitor[] = { "after", "wait", "uid", "sig", NULL };
	struct query qs;
	const char *v;
	char *end;
	int rc;

	*after = 0;
	*wait = true;
	if ((rc = query_parse(query, &qs, e)) < 0)
		return rc == POS_ETOOBIG ? POS_EINVAL : rc;
	if (query_unknown(&qs, visitor ? known_visitor : known))
		return err_set(e, POS_EINVAL,
			       "unknown query parameter (known: after=ID, wait=0|1)");
	if ((v = query_get(&qs, "after")) != NULL) {
		errno = 0;
		*after = v[0] >= '0' && v[0] <= '9' ? strtoll(v, &end, 10) : -1;
		if (*after < 0 || errno || *end)
			return err_set(e, POS_EINVAL, "after must be a message id");
	}
	if ((v = query_get(&qs, "wait")) != NULL) {
		if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
			return err_set(e, POS_EINVAL, "wait must be 0 or 1");
		*wait = v[0] == '1';
	}
	return 0;
}

static void parked_free(struct parked *k)
{
	struct public *p = k->p;

	if (k->prev)
		k->prev->next = k->next;
	else
		p->parked = k->next;
	if (k->next)
		k->next->prev = k->prev;
	p->n_parked--;
	atomic_fetch_sub(&pub_parked, 1);
	if (k->timer)
		event_free(k->timer);
	free(k);
}

/* Answers a parked poll with what is there now (maybe nothing) and frees
 * it; with only_new, leaves it parked when nothing is there. */
static void parked_answer(struct parked *k, bool only_new)
{
	struct pq q = { k->p, k->req, k->route, k->t0_us };
	pos_err e = { 0 };
	json_t *v = NULL;
	size_t n = 0;
	int rc = pub_messages_json(k->p->store, k->kind, k->txn, k->after, &v, &n, &e);

	if (rc == 0 && n == 0 && only_new) {
		json_decref(v);
		return;
	}
	if (rc < 0)
		pub_fail(&q, rc, &e);
	else
		pub_json(&q, 200, v);
	json_decref(v);
	parked_free(k);
}

static void parked_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	parked_answer(arg, false);
}

/* Worker thread: the bus said some transactions have new messages. */
static void pub_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct public *p = arg;
	char pending[PUB_PENDING][37];
	size_t n;
	bool all;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&p->sh->bus->mu);
	n = p->n_pending;
	all = p->overflow;
	memcpy(pending, p->pending, n * sizeof pending[0]);
	p->n_pending = 0;
	p->overflow = false;
	pthread_mutex_unlock(&p->sh->bus->mu);
	for (struct parked *k = p->parked, *next; k; k = next) {
		bool hit = all;

		next = k->next;
		for (size_t i = 0; i < n && !hit; i++)
			hit = strcmp(pending[i], k->txn) == 0;
		if (hit)
			parked_answer(k, true);
	}
}

/* Answers the messages of (kind, txn) after the query's `after` at once
 * when there are some (or wait=0), else parks the request up to
 * [receipt] poll_s. */
static void pub_poll(struct pq *q, const char *kind, const char *txn, bool visitor)
{
	struct parked *k = NULL;
	struct timeval tv = { (time_t)q->p->sh->c->receipt_poll_s, 0 };
	pos_err e = { 0 };
	json_t *v = NULL;
	int64_t after;
	bool wait;
	size_t n = 0;
	int rc;

	if ((rc = pub_poll_query(httpd_query(q->req), visitor, &after, &wait, &e)) < 0) {
		pub_bad_input(q, rc, &e);
		return;
	}
	if ((rc = pub_messages_json(q->p->store, kind, txn, after, &v, &n, &e)) < 0) {
		pub_fail(q, rc, &e);
		return;
	}
	if (n > 0 || !wait || httpd_method(q->req) == HTTP1_HEAD) {
		pub_json(q, 200, v);
		json_decref(v);
		return;
	}
	json_decref(v);
	if (!(k = calloc(1, sizeof *k)) ||
	    !(k->timer = evtimer_new(q->p->base, parked_timer_cb, k))) {
		free(k);
		pub_error(q, 500, "internal", "out of memory");
		return;
	}
	k->p = q->p;
	k->req = q->req;
	k->t0_us = q->t0_us;
	k->kind = kind;
	k->route = q->route;
	k->after = after;
	snprintf(k->txn, sizeof k->txn, "%s", txn);
	k->next = q->p->parked;
	if (k->next)
		k->next->prev = k;
	q->p->parked = k;
	q->p->n_parked++;
	atomic_fetch_add(&pub_parked, 1);
	evtimer_add(k->timer, &tv);
}

/* GET /v1/receipts/{token}/messages: a long poll (pub_poll). */
static void pub_messages_get(struct pq *q, const char *tok)
{
	struct store_receipt r;
	pos_err e = { 0 };
	int rc;

	if ((rc = pub_receipt(q, tok, &r, &e)) < 0) {
		if (rc == POS_ENOTFOUND)
			pub_not_found(q);
		else
			pub_fail(q, rc, &e);
		return;
	}
	pub_poll(q, STORE_CONV_RECEIPT, r.txn, false);
}

static void pub_receipt_message(struct pq *q, const struct store_receipt *r, const char *text);

/* POST /v1/receipts/{token}/messages {"body"}: the customer writes. */
static void pub_messages_post(struct pq *q, const char *tok)
{
	struct store_receipt r;
	pos_err e = { 0 };
	json_t *root = NULL;
	const char *text = NULL;
	int rc;

	if ((rc = pub_receipt(q, tok, &r, &e)) < 0) {
		if (rc == POS_ENOTFOUND)
			pub_not_found(q);
		else
			pub_fail(q, rc, &e);
		return;
	}
	if ((rc = pub_message_body(q, &root, &text, &e)) < 0) {
		pub_refuse(PR_MESSAGE);
		pub_bad_input(q, rc, &e);
		goto out;
	}
	pub_receipt_message(q, &r, text);
out:
	json_decref(root);
}

/* ------------------------------------------------------------ staff */

static void pub_sha256(const void *p, size_t n, unsigned char out[32])
{
	unsigned int len = 0;

	(void)EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

/* The CSRF token of a session: derived from its id, so only a page that
 * has the session (it was given the token at login) can name it. */
static void pub_csrf(const char *sid, char out[PUB_CSRF_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char h[32];
	char buf[128];
	int n = snprintf(buf, sizeof buf, "pos-csrf/1|%s", sid);

	pub_sha256(buf, (size_t)n, h);
	for (int i = 0; i < PUB_CSRF_LEN / 2; i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 15];
	}
	out[PUB_CSRF_LEN] = '\0';
	wipe(buf, sizeof buf);
}

/* The session id in the Cookie header, or false. */
static bool pub_cookie(struct pq *q, char sid[64])
{
	const char *h = httpd_header(q->req, "Cookie");
	const size_t nl = sizeof PUB_COOKIE - 1;

	while (h && *h) {
		size_t n;

		while (*h == ' ' || *h == ';')
			h++;
		n = strcspn(h, ";");
		if (n > nl + 1 && strncmp(h, PUB_COOKIE "=", nl + 1) == 0 && n - nl - 1 < 64) {
			memcpy(sid, h + nl + 1, n - nl - 1);
			sid[n - nl - 1] = '\0';
			return true;
		}
		h += n;
	}
	return false;
}

/* The staff member of the request's session; for a POST also its CSRF
 * token in the X-CSRF-Token header. False with the answer sent. */
static bool pub_staff(struct pq *q, struct store_staff *st, unsigned char sid_hash[32])
{
	char sid[64], csrf[PUB_CSRF_LEN + 1];
	const char *sent;
	pos_err e = { 0 };
	int rc = POS_ENOTFOUND;

	if (pub_cookie(q, sid)) {
		pub_sha256(sid, strlen(sid), sid_hash);
		rc = store_session_staff(q->p->store, sid_hash, time_now_ms(), st, &e);
	}
	if (rc == POS_EDB || rc == POS_EAGAIN) {
		pub_fail(q, rc, &e);
		return false;
	}
	if (rc < 0) {
		pub_refuse(PR_SESSION);
		pub_error(q, 401, "login_required", "sign in at /console with a staff token");
		return false;
	}
	if (httpd_method(q->req) == HTTP1_POST) {
		pub_csrf(sid, csrf);
		sent = httpd_header(q->req, PUB_CSRF_HEADER);
		if (!sent || strlen(sent) != PUB_CSRF_LEN ||
		    CRYPTO_memcmp(sent, csrf, PUB_CSRF_LEN) != 0) {
			pub_refuse(PR_CSRF);
			pub_error(q, 403, "csrf", "the X-CSRF-Token header is missing or wrong");
			return false;
		}
	}
	wipe(sid, sizeof sid);
	return true;
}

static json_t *pub_me(const struct store_staff *st, const char *csrf)
{
	return json_pack("{s:s, s:s, s:s}", "name", st->name, "store",
			 st->store[0] ? st->store : "*", "csrf", csrf);
}

/* The console's writes, each with its audit row, go to the writer and are
 * answered once committed (see "writes" below). */
static void pub_login_write(struct pq *q, const struct store_staff *st, const char *sid,
			    const unsigned char sess[32], long ttl_s);
static void pub_logout_write(struct pq *q, const struct store_staff *st,
			     const unsigned char sess[32]);
static void pub_reply_write(struct pq *q, const struct store_staff *st,
			    const struct store_conversation *c, const char *text);
static void pub_close_write(struct pq *q, const struct store_staff *st,
			    const struct store_conversation *c);

/* POST /v1/console/login {"token"}: a session cookie and the CSRF token. */
static void pub_login(struct pq *q)
{
	static const char *const keys[] = { "token", NULL };
	const char *ct = httpd_header(q->req, "Content-Type"), *tok = NULL, *body;
	unsigned char raw[PUB_SID_BYTES], h[32];
	char sid[64];
	struct store_staff st;
	pos_err e = { 0 };
	json_t *root = NULL;
	long ttl_s = q->p->sh->c->console_session_hours * 3600;
	size_t len;
	int rc;

	if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
		pub_error(q, 400, "bad_request", "Content-Type must be application/json");
		return;
	}
	body = httpd_body(q->req, &len);
	if ((rc = jsonx_parse(body, len, PUB_BODY_MAX, 2, &root, &e)) < 0 ||
	    (rc = json_is_object(root) ? 0 : err_set(&e, POS_EINVAL, "the body must be {\"token\"}")) <
		    0 ||
	    (rc = jsonx_only_keys(root, keys, &e)) < 0 ||
	    (rc = jsonx_str(root, "token", 1, PUB_STAFF_TOKEN_MAX, &tok, &e)) < 0) {
		pub_bad_input(q, rc, &e);
		goto out;
	}
	pub_sha256(tok, strlen(tok), h);
	if ((rc = store_staff_by_token(q->p->store, h, &st, &e)) < 0) {
		if (rc != POS_ENOTFOUND) {
			pub_fail(q, rc, &e);
			goto out;
		}
		pub_refuse(PR_LOGIN);
		pub_error(q, 401, "unauthorized", "the staff token is not known");
		goto out;
	}
	if (RAND_bytes(raw, sizeof raw) != 1) {
		pub_error(q, 500, "internal", "no random bytes");
		goto out;
	}
	if (b64url_encode(raw, sizeof raw, sid, sizeof sid, &e) < 0) {
		pub_error(q, 500, "internal", "session id");
		goto out;
	}
	pub_sha256(sid, strlen(sid), h);
	pub_login_write(q, &st, sid, h, ttl_s);
out:
	wipe(raw, sizeof raw);
	wipe(sid, sizeof sid);
	json_decref(root);
}

static void pub_logout(struct pq *q)
{
	struct store_staff st;
	unsigned char h[32];

	if (!pub_staff(q, &st, h))
		return;
	pub_logout_write(q, &st, h);
}

static void pub_me_get(struct pq *q)
{
	struct store_staff st;
	unsigned char h[32];
	char sid[64], csrf[PUB_CSRF_LEN + 1];
	json_t *v;

	if (!pub_staff(q, &st, h) || !pub_cookie(q, sid))
		return;
	pub_csrf(sid, csrf);
	wipe(sid, sizeof sid);
	v = pub_me(&st, csrf);
	pub_json(q, 200, v);
	json_decref(v);
}

struct pub_list {
	struct store *s;
	json_t *arr;
	pos_err *e;
};

/* One open conversation with its receipt and messages. */
static int pub_conv_cb(const struct store_conversation *c, void *arg)
{
	struct pub_list *l = arg;
	struct store_receipt r;
	struct store_facts facts;
	char ts[TIME_RFC3339_LEN];
	json_t *o, *rec = NULL, *acc[2] = { json_array(), json_integer(0) };
	int rc;

	time_format_rfc3339(c->updated_ms, ts);
	o = json_pack("{s:I, s:s, s:s, s:s, s:b}", "id", (json_int_t)c->id, "kind", c->kind,
		      "store", c->store, "updated", ts, "open", c->open);
	if (!o || !acc[0] || !acc[1]) {
		rc = POS_ENOMEM;
		goto out;
	}
	rc = store_receipt_by_txn(l->s, c->txn, &r, l->e);
	if (rc == 0)
		rc = pub_receipt_json(l->s, &r, &rec, l->e);
	else if (rc == POS_ENOTFOUND)
		rc = 0;
	if (rc < 0)
		goto out;
	json_object_set_new(o, "receipt", rec ? rec : json_null());
	if ((rc = store_conversation_facts(l->s, c, time_now_ms(), &facts, l->e)) < 0)
		goto out;
	json_object_set_new(o, "enrichment", outbox_enrichment_json(&facts));
	if ((rc = store_messages(l->s, c->id, 0, PUB_MESSAGES_MAX, pub_msg_cb, acc, l->e)) != 0)
		goto out;
	json_object_set(o, "messages", acc[0]);
	rc = json_array_append(l->arr, o) == 0 ? 0 : POS_ENOMEM;
out:
	json_decref(o);
	json_decref(acc[0]);
	json_decref(acc[1]);
	return rc;
}

/* GET /v1/conversations?state=open: the staff's stores only. */
static void pub_conversations(struct pq *q)
{
	static const char *const known[] = { "state", NULL };
	const char *state;
	struct query qs;
	struct store_staff st;
	unsigned char h[32];
	pos_err e = { 0 };
	struct pub_list l = { q->p->store, NULL, &e };
	json_t *v;
	int rc;

	if (!pub_staff(q, &st, h))
		return;
	if (query_parse(httpd_query(q->req), &qs, &e) < 0 || query_unknown(&qs, known) ||
	    !(state = query_get(&qs, "state")) || strcmp(state, "open") != 0) {
		pub_error(q, 400, "bad_request", "the query must be state=open");
		return;
	}
	if (!(l.arr = json_array())) {
		pub_error(q, 500, "internal", "out of memory");
		return;
	}
	rc = store_conversations_open(q->p->store, st.store[0] ? st.store : NULL, PUB_LIST_MAX,
				      pub_conv_cb, &l, &e);
	if (rc == POS_ENOMEM)
		err_set(&e, rc, "out of memory");
	if (rc < 0) {
		pub_fail(q, rc, &e);
	} else {
		v = json_pack("{s:O}", "conversations", l.arr);
		pub_json(q, 200, v);
		json_decref(v);
	}
	json_decref(l.arr);
}

/* The conversation {id} when the staff may act on it (their store), else
 * false with 404 (or a failure) sent. */
static bool pub_staff_conv(struct pq *q, const char *id_s, const struct store_staff *st,
			   struct store_conversation *c)
{
	pos_err e = { 0 };
	char *end;
	long long id;
	int rc;

	errno = 0;
	id = strtoll(id_s, &end, 10);
	if (errno || *end || id <= 0 || id_s[0] == '+') {
		pub_error(q, 404, "not_found", "no such conversation");
		return false;
	}
	rc = store_conversation_get(q->p->store, id, c, &e);
	if (rc == POS_ENOTFOUND || (rc == 0 && st->store[0] && strcmp(st->store, c->store) != 0)) {
		pub_error(q, 404, "not_found", "no such conversation");
		return false;
	}
	if (rc < 0) {
		pub_fail(q, rc, &e);
		return false;
	}
	return true;
}

static void pub_staff_reply(struct pq *q, const char *id_s)
{
	struct store_conversation c;
	struct store_staff st;
	unsigned char h[32];
	pos_err e = { 0 };
	json_t *root = NULL;
	const char *text;
	int rc;

	if (!pub_staff(q, &st, h) || !pub_staff_conv(q, id_s, &st, &c))
		return;
	if ((rc = pub_message_body(q, &root, &text, &e)) < 0) {
		pub_refuse(PR_MESSAGE);
		pub_bad_input(q, rc, &e);
		goto out;
	}
	pub_reply_write(q, &st, &c, text);
out:
	json_decref(root);
}

static void pub_staff_close(struct pq *q, const char *id_s)
{
	struct store_conversation c;
	struct store_staff st;
	unsigned char h[32];

	if (!pub_staff(q, &st, h) || !pub_staff_conv(q, id_s, &st, &c))
		return;
	pub_close_write(q, &st, &c);
}

/* ------------------------------------------------------------ writes */

/*
 * A visitor's message, an inbound SMS, a receipt's customer message and
 * the staff console's writes (sessions, replies, closing, each with its
 * audit row) are written by the writer (ingest.h), inside its group
 * commit, never with a transaction and an fsync on this worker's loop;
 * the answer goes out when the group has committed.
 */
enum pub_write {
	PW_CHAT,
	PW_SMS,
	PW_RECEIPT,
	PW_LINK, /* a device opened its household's receipt: link them */
	PW_LOGIN,
	PW_LOGOUT,
	PW_REPLY,
	PW_CLOSE
};

/* The audit action of each staff write (from PW_LOGIN on). */
static const char *const pub_staff_actions[] = {
	[PW_LOGIN] = "console_login",
	[PW_LOGOUT] = "console_logout",
	[PW_REPLY] = "conversation_reply",
	[PW_CLOSE] = "conversation_close",
};

struct pub_async {
	struct ingest_job job;
	struct pq q;
	enum pub_write kind;
	char uid[37];                 /* PW_RECEIPT: the basket's txn */
	char store[IDS_MAX + 1];      /* PW_RECEIPT */
	char sid[SMS_SID_MAX + 1];
	unsigned char idx[DEIDENT_INDEX_LEN];
	char kid[KEYS_KID_LEN + 1];
	char sealed[ENVELOPE_B64_MAX];
	char *text;
	char tid[TID_MAX];            /* PW_SMS: the sender's number until sealed */
	int64_t now_ms;
	int64_t conv, id;
	bool dup;
	struct store_staff staff;     /* staff writes */
	unsigned char sess[32];       /* PW_LOGIN, PW_LOGOUT: the session id's hash */
	char session[64];             /* PW_LOGIN: the session id, for the cookie */
	long ttl_s;                   /* PW_LOGIN */
	int audit_rc;                 /* staff writes: the audit row's result */
	struct store_receipt receipt; /* PW_LINK: the receipt opened */
	int64_t device;               /* PW_LINK */
	bool created;                 /* PW_LINK: a new link */
	struct pub_async *next_done;
};

static void pub_async_free(struct pub_async *a)
{
	if (!a)
		return;
	wipe(a->idx, sizeof a->idx);
	wipe(a->tid, sizeof a->tid);
	wipe(a->sess, sizeof a->sess);
	wipe(a->session, sizeof a->session);
	free(a->text);
	free(a);
}

/* Writer thread: a staff write, then its audit row. The audit failing is
 * logged with the answer and does not undo the write. */
static int pub_staff_op(struct store *s, struct pub_async *a, pos_err *e)
{
	char actor[32], detail[64];
	int rc;

	switch (a->kind) {
	case PW_LOGIN:
		rc = store_session_add(s, a->sess, a->staff.id, a->now_ms,
				       a->now_ms + a->ttl_s * 1000LL, e);
		break;
	case PW_LOGOUT:
		rc = store_session_del(s, a->sess, e);
		break;
	case PW_REPLY:
		rc = store_message_add(s, a->conv, "staff", a->staff.id, a->text, a->now_ms, &a->id,
				       e);
		break;
	default:
		rc = store_conversation_close(s, a->conv, a->now_ms, e);
		break;
	}
	if (rc < 0)
		return rc;
	snprintf(actor, sizeof actor, "staff:%lld", (long long)a->staff.id);
	snprintf(detail, sizeof detail, "conversation=%lld", (long long)a->conv);
	a->audit_rc = store_audit(s, actor, pub_staff_actions[a->kind], a->conv ? detail : "",
				  NULL);
	return 0;
}

/* Writer thread, in the group's transaction. */
static int pub_op(struct store *s, struct ingest_job *job, pos_err *e)
{
	struct pub_async *a = job->arg;
	struct store_sms_in in = { a->sid, a->uid, a->idx, a->kid, a->sealed, a->text, a->now_ms };

	a->dup = false;
	a->audit_rc = 0;
	if (a->kind >= PW_LOGIN)
		return pub_staff_op(s, a, e);
	if (a->kind == PW_LINK)
		return store_device_link(s, a->device, a->receipt.hhid, a->now_ms, &a->created, e);
	if (a->kind == PW_RECEIPT)
		return store_message_add_keyed(s, STORE_CONV_RECEIPT, a->uid, a->store, "customer",
					       a->text, a->now_ms, &a->conv, &a->id, e);
	if (a->kind == PW_CHAT)
		return store_message_add_keyed(s, STORE_CONV_VISITOR, a->uid, NULL, "customer",
					       a->text, a->now_ms, &a->conv, &a->id, e);
	return store_sms_inbound(s, &in, &a->conv, &a->id, &a->dup, e);
}

/* Writer thread: hands the answer back to the worker. */
static void pub_job_done(struct ingest_job *job)
{
	struct pub_async *a = job->arg;
	struct public *p = a->q.p;

	pthread_mutex_lock(&p->done_mu);
	a->next_done = p->done;
	p->done = a;
	pthread_mutex_unlock(&p->done_mu);
	event_active(p->done_ev, EV_READ, 1);
}

/* A staff write committed (or failed): its answer. */
static void pub_staff_answer(struct pub_async *a, int rc, pos_err *e)
{
	struct pq *q = &a->q;
	char csrf[PUB_CSRF_LEN + 1], cookie[160];
	json_t *v = NULL;

	if (rc == 0 && a->audit_rc < 0)
		log_error("audit_failed", "action=%s code=%s", pub_staff_actions[a->kind],
			  err_name(a->audit_rc));
	if (rc == POS_ECONFLICT && a->kind == PW_CLOSE) {
		pub_error(q, 409, "closed", "the conversation is closed already");
		return;
	}
	if (rc < 0) {
		pub_fail(q, rc, e);
		return;
	}
	switch (a->kind) {
	case PW_LOGIN:
		pub_csrf(a->session, csrf);
		snprintf(cookie, sizeof cookie,
			 PUB_COOKIE "=%s; Path=/; Max-Age=%ld; HttpOnly; Secure; SameSite=Strict",
			 a->session, a->ttl_s);
		(void)httpd_add_header(q->req, "Set-Cookie", cookie);
		wipe(cookie, sizeof cookie);
		v = pub_me(&a->staff, csrf);
		pub_json(q, 200, v);
		break;
	case PW_LOGOUT:
		(void)httpd_add_header(
			q->req, "Set-Cookie",
			PUB_COOKIE "=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
		pub_send(q, 200, "application/json", "{\"ok\":true}", 11);
		break;
	case PW_REPLY:
		atomic_fetch_add_explicit(&pub_messages, 1, memory_order_relaxed);
		log_info("message", "conversation=%lld id=%lld author=staff", (long long)a->conv,
			 (long long)a->id);
		if (a->uid[0])
			pub_notify(q->p->sh->bus, a->uid);
		v = json_pack("{s:I, s:I}", "id", (json_int_t)a->id, "conversation",
			      (json_int_t)a->conv);
		pub_json(q, 201, v);
		break;
	default:
		v = json_pack("{s:I, s:b}", "id", (json_int_t)a->conv, "open", 0);
		pub_json(q, 200, v);
		break;
	}
	json_decref(v);
}

static void pub_async_answer(struct pub_async *a)
{
	struct pq *q = &a->q;
	int rc = a->job.rc < 0 ? a->job.rc : a->job.op_rc;
	json_t *v;

	if (a->kind >= PW_LOGIN) {
		pub_staff_answer(a, rc, a->job.rc < 0 ? &a->job.err : &a->job.op_err);
		return;
	}
	if (rc < 0) {
		pub_fail(q, rc, a->job.rc < 0 ? &a->job.err : &a->job.op_err);
		return;
	}
	if (a->kind == PW_LINK) {
		if (a->created)
			log_info("device_linked", "device=%lld", (long long)a->device);
		pub_receipt_answer(q, &a->receipt, true);
		return;
	}
	if (!a->dup) {
		atomic_fetch_add_explicit(&pub_messages, 1, memory_order_relaxed);
		pub_notify(q->p->sh->bus, a->uid);
	}
	if (a->kind == PW_CHAT || a->kind == PW_RECEIPT) {
		log_info("message", "conversation=%lld id=%lld author=%s", (long long)a->conv,
			 (long long)a->id, a->kind == PW_CHAT ? "visitor" : "customer");
		v = json_pack("{s:I, s:I}", "id", (json_int_t)a->id, "conversation",
			      (json_int_t)a->conv);
	} else {
		log_info("sms_inbound", "conversation=%lld id=%lld duplicate=%d", (long long)a->conv,
			 (long long)a->id, a->dup);
		v = json_pack("{s:I, s:I, s:b}", "id", (json_int_t)a->id, "conversation",
			      (json_int_t)a->conv, "duplicate", a->dup);
	}
	pub_json(q, a->dup ? 200 : 201, v);
	json_decref(v);
}

/* Worker thread: answers the writes the writer has committed. */
static void pub_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct public *p = arg;
	struct pub_async *list, *next;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&p->done_mu);
	list = p->done;
	p->done = NULL;
	pthread_mutex_unlock(&p->done_mu);
	for (; list; list = next) {
		next = list->next_done;
		p->n_async--;
		pub_async_answer(list);
		pub_async_free(list);
	}
}

/* A write for the writer with q's request, its text copied; the answer
 * (or 503 when the writer is stopping) is sent later. */
static struct pub_async *pub_async_new(struct pq *q, enum pub_write kind, const char *uid,
				       const char *text)
{
	struct pub_async *a = calloc(1, sizeof *a);

	if (!a || !(a->text = strdup(text))) {
		free(a);
		pub_error(q, 500, "internal", "out of memory");
		return NULL;
	}
	a->q = *q;
	a->kind = kind;
	snprintf(a->uid, sizeof a->uid, "%s", uid);
	a->now_ms = time_now_ms();
	return a;
}

static void pub_submit(struct pub_async *a)
{
	pos_err e = { 0 };

	a->job.kind = INGEST_OP;
	a->job.op = pub_op;
	a->job.done = pub_job_done;
	a->job.arg = a;
	if (!a->q.p->sh->ingest || ingest_submit(a->q.p->sh->ingest, &a->job, &e) < 0) {
		pub_error(&a->q, 503, "unavailable", e.msg[0] ? e.msg : "no writer");
		pub_async_free(a);
		return;
	}
	a->q.p->n_async++;
}

/* Links device to the receipt's household on the writer; the receipt is
 * answered once the link committed. */
static void pub_receipt_link(struct pq *q, const struct store_receipt *r, int64_t device)
{
	struct pub_async *a = pub_async_new(q, PW_LINK, r->txn, "");

	if (!a)
		return;
	a->receipt = *r;
	a->device = device;
	pub_submit(a);
}

/* A receipt's customer message, written by the writer and answered (201)
 * once its group committed. */
static void pub_receipt_message(struct pq *q, const struct store_receipt *r, const char *text)
{
	struct pub_async *a = pub_async_new(q, PW_RECEIPT, r->txn, text);

	if (!a)
		return;
	snprintf(a->store, sizeof a->store, "%s", r->store);
	pub_submit(a);
}

/* A staff write of conversation conv (0: none) keyed by txn ("" for the
 * conversation's wake-ups: none), with text ("" for none). */
static struct pub_async *pub_staff_async(struct pq *q, enum pub_write kind,
					 const struct store_staff *st, int64_t conv,
					 const char *txn, const char *text)
{
	struct pub_async *a = pub_async_new(q, kind, txn, text);

	if (a) {
		a->staff = *st;
		a->conv = conv;
	}
	return a;
}

static void pub_login_write(struct pq *q, const struct store_staff *st, const char *sid,
			    const unsigned char sess[32], long ttl_s)
{
	struct pub_async *a = pub_staff_async(q, PW_LOGIN, st, 0, "", "");

	if (!a)
		return;
	memcpy(a->sess, sess, sizeof a->sess);
	snprintf(a->session, sizeof a->session, "%s", sid);
	a->ttl_s = ttl_s;
	pub_submit(a);
}

static void pub_logout_write(struct pq *q, const struct store_staff *st,
			     const unsigned char sess[32])
{
	struct pub_async *a = pub_staff_async(q, PW_LOGOUT, st, 0, "", "");

	if (!a)
		return;
	memcpy(a->sess, sess, sizeof a->sess);
	pub_submit(a);
}

static void pub_reply_write(struct pq *q, const struct store_staff *st,
			    const struct store_conversation *c, const char *text)
{
	struct pub_async *a = pub_staff_async(q, PW_REPLY, st, c->id, c->txn, text);

	if (a)
		pub_submit(a);
}

static void pub_close_write(struct pq *q, const struct store_staff *st,
			    const struct store_conversation *c)
{
	struct pub_async *a = pub_staff_async(q, PW_CLOSE, st, c->id, "", "");

	if (a)
		pub_submit(a);
}

/* ------------------------------------------------------------ visitors */

/* The raw value of name in a query string into out (no decoding: uid,
 * sig and numbers have no escapes). False when absent or too long. */
static bool pub_qget(const char *query, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);

	while (query && *query) {
		size_t n = strcspn(query, "&");

		if (n > nl && strncmp(query, name, nl) == 0 && query[nl] == '=') {
			if (n - nl - 1 >= cap)
				return false;
			memcpy(out, query + nl + 1, n - nl - 1);
			out[n - nl - 1] = '\0';
			return true;
		}
		query += n;
		if (*query == '&')
			query++;
	}
	return false;
}

/* The uid of the request's ?uid=&sig= when they match, else false with
 * 403 sent (or the not-found page for a page). */
static bool pub_visitor(struct pq *q, char uid[VISITOR_UID_LEN + 1], bool page)
{
	const char *query = httpd_query(q->req);
	char sig[VISITOR_SIG_LEN + 2];

	if (pub_qget(query, "uid", uid, VISITOR_UID_LEN + 1) &&
	    pub_qget(query, "sig", sig, sizeof sig) &&
	    visitor_sig_ok(q->p->sh->visitor_key, uid, sig))
		return true;
	pub_refuse(PR_VISITOR);
	if (page)
		pub_file(q, "notfound.html", 403);
	else
		pub_error(q, 403, "forbidden", "uid and sig do not match (get them from "
						"POST /v1/visitors)");
	return false;
}

/* POST /v1/visitors: a new uid and its sig; nothing is stored. */
static void pub_visitor_new(struct pq *q)
{
	char uid[VISITOR_UID_LEN + 1], sig[VISITOR_SIG_LEN + 1];
	pos_err e = { 0 };
	json_t *v;
	int rc;

	if ((rc = visitor_new(q->p->sh->visitor_key, uid, sig, &e)) < 0) {
		pub_fail(q, rc, &e);
		return;
	}
	v = json_pack("{s:s, s:s}", "uid", uid, "sig", sig);
	pub_json(q, 201, v);
	json_decref(v);
}

/* The Host header when it is a plain host[:port], else NULL. */
static const char *pub_host(struct pq *q)
{
	const char *h = httpd_header(q->req, "Host");
	size_t n = h ? strlen(h) : 0;

	if (n == 0 || n > 255 ||
	    strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") != n)
		return NULL;
	return h;
}

/* GET /v1/links?uid=&sig=: the chat and SMS links carrying the uid. */
static void pub_links(struct pq *q)
{
	char uid[VISITOR_UID_LEN + 1], sig[VISITOR_SIG_LEN + 2], chat[512], sms[128];
	const char *host = pub_host(q), *num = q->p->sh->c->sms_number;
	json_t *v;

	if (!pub_visitor(q, uid, false))
		return;
	if (!host) {
		pub_error(q, 400, "bad_request", "the Host header is missing or not a host name");
		return;
	}
	(void)pub_qget(httpd_query(q->req), "sig", sig, sizeof sig);
	snprintf(chat, sizeof chat, "https://%s/chat?uid=%s&sig=%s", host, uid, sig);
	snprintf(sms, sizeof sms, "sms:%s?&body=ref%%20%s", num, uid);
	v = json_pack("{s:s, s:o}", "chat", chat, "sms", num[0] ? json_string(sms) : json_null());
	pub_json(q, 200, v);
	json_decref(v);
}

/* GET /chat?uid=&sig=: the visitor chat page. */
static void pub_chat_page(struct pq *q)
{
	char uid[VISITOR_UID_LEN + 1];

	if (pub_visitor(q, uid, true))
		pub_file(q, "chat.html", 200);
}

/* GET /v1/chat/messages?uid=&sig=&after=ID: a long poll (pub_poll). */
static void pub_chat_get(struct pq *q)
{
	char uid[VISITOR_UID_LEN + 1];

	if (pub_visitor(q, uid, false))
		pub_poll(q, STORE_CONV_VISITOR, uid, true);
}

/* POST /v1/chat/messages?uid=&sig= {"body"}: the visitor writes. */
static void pub_chat_post(struct pq *q)
{
	char uid[VISITOR_UID_LEN + 1];
	struct pub_async *a;
	pos_err e = { 0 };
	json_t *root = NULL;
	const char *text = NULL;
	int rc;

	if (!pub_visitor(q, uid, false))
		return;
	if ((rc = pub_message_body(q, &root, &text, &e)) < 0) {
		pub_refuse(PR_MESSAGE);
		pub_bad_input(q, rc, &e);
		goto out;
	}
	if ((a = pub_async_new(q, PW_CHAT, uid, text)))
		pub_submit(a);
out:
	json_decref(root);
}

/* ------------------------------------------------------------ inbound SMS */

/* The URL the gateway signed: [sms] inbound_url, else this request's. */
static int pub_sms_url(struct pq *q, char *out, size_t cap, pos_err *e)
{
	const char *host = pub_host(q), *query = httpd_query(q->req);
	int n;

	if (q->p->sh->c->sms_inbound_url[0])
		n = snprintf(out, cap, "%s", q->p->sh->c->sms_inbound_url);
	else if (!host)
		return err_set(e, POS_EINVAL, "the Host header is missing or not a host name");
	else
		n = snprintf(out, cap, "https://%s%s%s%s", host, httpd_path(q->req),
			     query && *query ? "?" : "", query ? query : "");
	if (n < 0 || (size_t)n >= cap)
		return err_set(e, POS_ETOOBIG, "the URL is too long");
	return 0;
}

/* "phone:" + from, normalised into tid (the caller wipes it). */
static int pub_sms_phone(const char *from, char tid[TID_MAX], pos_err *e)
{
	char in[TID_MAX + 16];
	enum tid_kind kind;
	int rc = 0, n = snprintf(in, sizeof in, "phone:%s", from);

	if (n < 0 || (size_t)n >= sizeof in || tid_normalize(in, tid, &kind, e) < 0 ||
	    kind != TID_PHONE)
		rc = err_set(e, POS_EINVAL, "'From' is not a phone number (+ and 8 to 15 digits)");
	wipe(in, sizeof in);
	return rc;
}

/* A copy of the sender's number sealed to central's HPKE public key for
 * uid (visitor_seal_info): only the keys process opens it. */
static int pub_sms_seal(struct pq *q, const char *tid, const char *uid,
			char sealed[ENVELOPE_B64_MAX], pos_err *e)
{
	char info[ENVELOPE_INFO_MAX];
	int rc;

	if ((rc = visitor_seal_info(info, uid, e)) < 0)
		return rc;
	return envelope_seal_tid(q->p->sh->hpke_pk, q->p->sh->hpke_kid, info, tid, sealed, e);
}

/* The sender's tid index, from the keys process: the conversation found
 * (by its ref, or the one this number wrote to last), the number sealed
 * for it, and the message handed to the writer. */
static void pub_sms_indexed(void *arg, struct keys_open_res *res)
{
	struct pub_async *a = arg;
	struct pq *q = &a->q;
	char sealed[ENVELOPE_B64_MAX];
	pos_err e = { 0 };
	int rc;

	q->p->n_async--;
	if ((rc = res->rc) < 0) {
		pub_bad_input(q, rc, &res->err);
		goto fail;
	}
	memcpy(a->idx, res->idx, sizeof a->idx);
	if (!a->uid[0]) {
		/* No ref: the conversation this number wrote to last. */
		rc = store_sms_last_uid(q->p->store, a->idx, a->uid, &e);
		if (rc == POS_ENOTFOUND) {
			pub_refuse(PR_SMS_REF);
			pub_error(q, 422, "no_ref", "the message has no ref and its sender none before");
			goto fail;
		}
		if (rc < 0) {
			pub_fail(q, rc, &e);
			goto fail;
		}
	}
	rc = pub_sms_seal(q, a->tid, a->uid, sealed, &e);
	wipe(a->tid, sizeof a->tid);
	if (rc < 0) {
		pub_fail(q, rc, &e);
		goto fail;
	}
	snprintf(a->kid, sizeof a->kid, "%s", q->p->sh->hpke_kid);
	snprintf(a->sealed, sizeof a->sealed, "%s", sealed);
	pub_submit(a);
	return;
fail:
	pub_async_free(a);
}

/* POST /v1/sms/inbound: a text message from the gateway, signed. */
static void pub_sms_inbound(struct pq *q)
{
	const struct cconf *c = q->p->sh->c;
	const char *ct = httpd_header(q->req, "Content-Type"), *body, *from, *text, *sid;
	struct sms_param prm[SMS_PARAMS_MAX];
	struct pub_async *a;
	char url[1024], uid[VISITOR_UID_LEN + 8] = "", tid[TID_MAX];
	char *buf = NULL;
	pos_err e = { 0 };
	size_t len, n = 0;
	int rc;

	if (!c->sms_secret[0]) {
		pub_refuse(PR_SMS_SIG);
		pub_error(q, 403, "forbidden", "inbound SMS is off ([sms] secret is empty)");
		return;
	}
	if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
		pub_error(q, 400, "bad_request",
			  "Content-Type must be application/x-www-form-urlencoded");
		return;
	}
	body = httpd_body(q->req, &len);
	if (!(buf = malloc(len + 1))) {
		pub_error(q, 500, "internal", "out of memory");
		return;
	}
	if ((rc = sms_form_parse(body, len, buf, prm, &n, &e)) < 0 ||
	    (rc = pub_sms_url(q, url, sizeof url, &e)) < 0) {
		pub_bad_input(q, rc, &e);
		goto out;
	}
	if (!sms_signature_ok(c->sms_secret, url, prm, n, httpd_header(q->req, "X-Pos-Signature"))) {
		pub_refuse(PR_SMS_SIG);
		pub_error(q, 403, "forbidden", "the X-Pos-Signature header is missing or wrong");
		goto out;
	}
	from = sms_form_get(prm, n, "From");
	text = sms_form_get(prm, n, "Body");
	sid = sms_form_get(prm, n, "MessageSid");
	if (!from || !text || !sid) {
		pub_error(q, 400, "bad_request", "From, Body and MessageSid are required");
		goto out;
	}
	if (!sid[0] || strlen(sid) > SMS_SID_MAX ||
	    strspn(sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
		    strlen(sid)) {
		pub_error(q, 400, "bad_request", "MessageSid must be 1 to 64 of [A-Za-z0-9_-]");
		goto out;
	}
	if ((rc = pub_text_ok(text, c->message_max_chars, &e)) < 0) {
		pub_refuse(PR_MESSAGE);
		pub_bad_input(q, rc, &e);
		goto out;
	}
	rc = visitor_ref(q->p->sh->visitor_key, text, uid, &e);
	if (rc == POS_EINVAL) {
		pub_refuse(PR_SMS_REF);
		pub_error(q, 422, "unknown_ref", "the ref names no visitor");
		goto out;
	}
	if ((rc = pub_sms_phone(from, tid, &e)) < 0) {
		pub_bad_input(q, rc, &e);
		goto out;
	}
	if (!(a = pub_async_new(q, PW_SMS, uid, text)))
		goto out;
	snprintf(a->sid, sizeof a->sid, "%s", sid);
	memcpy(a->tid, tid, sizeof a->tid);
	/* The blind index comes from the keys process (no k_index here),
	 * answered on this loop: pub_sms_indexed goes on. */
	if ((rc = keys_async_blind(keys_chan_async(q->p->keys), a->tid, pub_sms_indexed, a, &e)) <
	    0) {
		pub_bad_input(q, rc, &e);
		pub_async_free(a);
		goto out;
	}
	q->p->n_async++;
out:
	wipe(tid, sizeof tid);
	if (buf) {
		wipe(buf, len + 1);
		free(buf);
	}
	wipe(prm, sizeof prm);
}

/* ------------------------------------------------------------ dispatch */

/* The {x} of PREFIX{x}SUFFIX (x without '/', at most max characters) into
 * out, or NULL. */
static const char *pub_segment(const char *path, const char *prefix, const char *suffix,
			       char *out, size_t max)
{
	size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(path), mid;

	if (n <= pl + sl || strncmp(path, prefix, pl) != 0 || strcmp(path + n - sl, suffix) != 0)
		return NULL;
	mid = n - pl - sl;
	if (mid > max || memchr(path + pl, '/', mid))
		return NULL;
	memcpy(out, path + pl, mid);
	out[mid] = '\0';
	return out;
}

static bool pub_method(struct pq *q, enum http1_method want)
{
	enum http1_method m = httpd_method(q->req);

	if (m == want || (want == HTTP1_GET && m == HTTP1_HEAD))
		return true;
	(void)httpd_add_header(q->req, "Allow", want == HTTP1_GET ? "GET, HEAD" : "POST");
	pub_error(q, 405, "method_not_allowed", want == HTTP1_GET ? "use GET or HEAD" : "use POST");
	return false;
}

/* The receipt page: the page itself for a receipt that opens, else 404. */
static void pub_receipt_page(struct pq *q, const char *tok)
{
	struct store_receipt r;
	pos_err e = { 0 };
	int rc = pub_receipt(q, tok, &r, &e);

	if (rc == 0)
		pub_file(q, "receipt.html", 200);
	else if (rc == POS_ENOTFOUND)
		pub_file(q, "notfound.html", 404);
	else
		pub_fail(q, rc, &e);
}

/* The per-address budget of the public listener (ratelimit.h: keyed
 * hashing, fixed memory, IPv4 by address and IPv6 by /64). */
static bool pub_rate_ok(struct pq *q)
{
	unsigned char key[RATELIMIT_KEY_LEN];
	const struct sockaddr *sa;
	socklen_t sl = 0;
	char after[24];
	long wait;

	sa = httpd_peer_addr(q->req, &sl);
	if (!sa || ratelimit_key(sa, sl, key) < 0)
		return true; /* no address to count by (a unix socket: the test harness) */
	if ((wait = ratelimit_take(q->p->sh->limiter, 0, key, time_mono_us(), NULL)) == 0)
		return true;
	pub_refuse(PR_RATE);
	snprintf(after, sizeof after, "%ld", wait);
	(void)httpd_add_header(q->req, "Retry-After", after);
	pub_error(q, 429, "rate_limited", "too many requests from this address; slow down");
	return false;
}

void public_handle(struct httpd_req *req, void *arg)
{
	struct public *p = arg;
	struct pq q = { p, req, "other", time_mono_us() };
	const char *path = httpd_path(req);
	char seg[PUB_TOKEN_PATH_MAX + 1];
	const char *x;

	if (!pub_rate_ok(&q))
		return;
	if (vendor_handle(p->vw, req))
		return;
	if ((x = pub_segment(path, "/v1/receipts/", "/messages", seg, PUB_TOKEN_PATH_MAX))) {
		q.route = "/v1/receipts/{token}/messages";
		if (httpd_method(req) == HTTP1_POST)
			pub_messages_post(&q, x);
		else if (pub_method(&q, HTTP1_GET))
			pub_messages_get(&q, x);
	} else if ((x = pub_segment(path, "/v1/receipts/", "", seg, PUB_TOKEN_PATH_MAX))) {
		q.route = "/v1/receipts/{token}";
		if (pub_method(&q, HTTP1_GET))
			pub_receipt_get(&q, x);
	} else if ((x = pub_segment(path, "/r/", "", seg, PUB_TOKEN_PATH_MAX))) {
		q.route = "/r/{token}";
		if (pub_method(&q, HTTP1_GET))
			pub_receipt_page(&q, x);
	} else if ((x = pub_segment(path, "/assets/", "", seg, WWW_NAME_MAX))) {
		q.route = "/assets/{file}";
		if (pub_method(&q, HTTP1_GET))
			pub_file(&q, x, 200);
	} else if (strcmp(path, "/console") == 0) {
		q.route = "/console";
		if (pub_method(&q, HTTP1_GET))
			pub_file(&q, "console.html", 200);
	} else if (strcmp(path, "/v1/console/login") == 0) {
		q.route = "/v1/console/login";
		if (pub_method(&q, HTTP1_POST))
			pub_login(&q);
	} else if (strcmp(path, "/v1/console/logout") == 0) {
		q.route = "/v1/console/logout";
		if (pub_method(&q, HTTP1_POST))
			pub_logout(&q);
	} else if (strcmp(path, "/v1/console/me") == 0) {
		q.route = "/v1/console/me";
		if (pub_method(&q, HTTP1_GET))
			pub_me_get(&q);
	} else if (strcmp(path, "/v1/conversations") == 0) {
		q.route = "/v1/conversations";
		if (pub_method(&q, HTTP1_GET))
			pub_conversations(&q);
	} else if ((x = pub_segment(path, "/v1/conversations/", "/messages", seg, 20))) {
		q.route = "/v1/conversations/{id}/messages";
		if (pub_method(&q, HTTP1_POST))
			pub_staff_reply(&q, x);
	} else if ((x = pub_segment(path, "/v1/conversations/", "/close", seg, 20))) {
		q.route = "/v1/conversations/{id}/close";
		if (pub_method(&q, HTTP1_POST))
			pub_staff_close(&q, x);
	} else if (strcmp(path, "/messages") == 0) {
		q.route = "/messages";
		if (pub_method(&q, HTTP1_GET))
			pub_file(&q, "messages.html", 200);
	} else if (strcmp(path, "/v1/visitors") == 0) {
		q.route = "/v1/visitors";
		if (pub_method(&q, HTTP1_POST))
			pub_visitor_new(&q);
	} else if (strcmp(path, "/v1/links") == 0) {
		q.route = "/v1/links";
		if (pub_method(&q, HTTP1_GET))
			pub_links(&q);
	} else if (strcmp(path, "/visit") == 0) {
		q.route = "/visit";
		if (pub_method(&q, HTTP1_GET))
			pub_file(&q, "visit.html", 200);
	} else if (strcmp(path, "/chat") == 0) {
		q.route = "/chat";
		if (pub_method(&q, HTTP1_GET))
			pub_chat_page(&q);
	} else if (strcmp(path, "/v1/chat/messages") == 0) {
		q.route = "/v1/chat/messages";
		if (httpd_method(req) == HTTP1_POST)
			pub_chat_post(&q);
		else if (pub_method(&q, HTTP1_GET))
			pub_chat_get(&q);
	} else if (strcmp(path, "/v1/sms/inbound") == 0) {
		q.route = "/v1/sms/inbound";
		if (pub_method(&q, HTTP1_POST))
			pub_sms_inbound(&q);
	} else if (strcmp(path, "/v1/health") == 0) {
		q.route = "/v1/health";
		if (pub_method(&q, HTTP1_GET))
			pub_send(&q, 200, "application/json", "{\"status\":\"ok\"}", 15);
	} else {
		pub_not_found(&q);
	}
}

/* ------------------------------------------------------------ lifetime */

int public_shared_init(struct public_shared *sh, const struct cconf *c, pos_err *e)
{
	struct ratelimit_rule rule = { c->public_rate_per_min, c->public_burst };
	char pub[CCONF_PATH_MAX + 16];
	int n, rc;

	memset(sh, 0, sizeof *sh);
	sh->www_fd = -1;
	sh->c = c;
	if ((n = www_open(c, sh->www, sizeof sh->www, &sh->www_fd, e)) < 0)
		return n;
	if ((rc = visitor_key_load(c->visitor_key, true, sh->visitor_key, e)) < 0)
		return rc;
	n = snprintf(pub, sizeof pub, "%s/central.pub", c->dir[0] ? c->dir : ".");
	if (n < 0 || (size_t)n >= sizeof pub)
		return err_set(e, POS_ETOOBIG, "central.pub: path too long");
	if ((rc = keys_load_public(pub, sh->hpke_pk, sh->hpke_kid, e)) < 0)
		return rc;
	sh->bus = calloc(1, sizeof *sh->bus);
	if (!sh->bus) {
		public_shared_free(sh);
		return err_set(e, POS_ENOMEM, "public: out of memory");
	}
	pthread_mutex_init(&sh->bus->mu, NULL);
	if ((rc = ratelimit_new((size_t)c->rl_entries, &rule, 1, &sh->limiter, e)) < 0) {
		public_shared_free(sh);
		return rc;
	}
	metrics_add_source(pub_metrics);
	return 0;
}

void public_shared_free(struct public_shared *sh)
{
	if (!sh)
		return;
	if (sh->www_fd >= 0)
		close(sh->www_fd);
	sh->www_fd = -1;
	if (sh->bus)
		pthread_mutex_destroy(&sh->bus->mu);
	free(sh->bus);
	ratelimit_free(sh->limiter);
	wipe(sh->visitor_key, sizeof sh->visitor_key);
	sh->bus = NULL;
	sh->limiter = NULL;
}

int public_new(struct event_base *base, struct store *store, struct keys_chan *keys,
	       struct public_shared *sh, struct public **out, pos_err *e)
{
	struct public *p = calloc(1, sizeof *p);
	bool joined = false;

	*out = NULL;
	if (!p)
		return err_set(e, POS_ENOMEM, "public: out of memory");
	p->base = base;
	p->store = store;
	p->keys = keys;
	p->sh = sh;
	if (!(p->wake_ev = event_new(base, -1, 0, pub_wake_cb, p))) {
		free(p);
		return err_set(e, POS_ENOMEM, "public: out of memory");
	}
	if (vendor_worker_new(base, store, sh->ingest, sh->c, &p->vw, e) < 0) {
		event_free(p->wake_ev);
		free(p);
		return POS_ENOMEM;
	}
	if (!(p->done_ev = event_new(base, -1, 0, pub_done_cb, p))) {
		vendor_worker_free(p->vw);
		event_free(p->wake_ev);
		free(p);
		return err_set(e, POS_ENOMEM, "public: out of memory");
	}
	pthread_mutex_init(&p->done_mu, NULL);
	pthread_mutex_lock(&sh->bus->mu);
	for (size_t i = 0; i < PUB_MEMBERS && !joined; i++)
		if (!sh->bus->members[i]) {
			sh->bus->members[i] = p;
			joined = true;
		}
	pthread_mutex_unlock(&sh->bus->mu);
	if (!joined) {
		vendor_worker_free(p->vw);
		event_free(p->wake_ev);
		event_free(p->done_ev);
		pthread_mutex_destroy(&p->done_mu);
		free(p);
		return err_set(e, POS_ENOMEM, "public: too many workers");
	}
	*out = p;
	return 0;
}

void public_stop(struct public *p)
{
	while (p && p->parked)
		parked_answer(p->parked, false);
}

size_t public_waiting(const struct public *p)
{
	return p ? p->n_parked + p->n_async + vendor_waiting(p->vw) : 0;
}

void public_free(struct public *p)
{
	if (!p)
		return;
	public_stop(p);
	pthread_mutex_lock(&p->sh->bus->mu);
	for (size_t i = 0; i < PUB_MEMBERS; i++)
		if (p->sh->bus->members[i] == p)
			p->sh->bus->members[i] = NULL;
	pthread_mutex_unlock(&p->sh->bus->mu);
	vendor_worker_free(p->vw);
	event_free(p->wake_ev);
	event_free(p->done_ev);
	pthread_mutex_destroy(&p->done_mu);
	free(p);
}
