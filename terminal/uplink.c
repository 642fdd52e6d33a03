#include "uplink.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckey.h"
#include "http.h"
#include "jsonx.h"
#include "log.h"
#include "spool.h"

#define UPLINK_BATCH_MAX 100
/* Keeps one batch well under what central and the http layer accept; a
 * batch always holds at least one basket whatever its size. */
#define UPLINK_BATCH_BYTES (1024 * 1024)
#define UPLINK_BACKOFF_BASE_MS 500
#define UPLINK_BACKOFF_CAP_MS 30000
#define UPLINK_TIMEOUT_MS 15000L
#define UPLINK_ANSWER_MAX (64 * 1024)
#define UPLINK_DETAIL_MAX 64
#define UPLINK_TXN_LEN 37

struct uplink {
	struct event_base *base;
	struct http *http;
	struct uplink_queue q;
	char as[UPLINK_AS_MAX + 1]; /* the lane of the request in flight */
	uplink_event_fn fn;
	void *arg;
	struct event *retry;     /* armed only while backing off */
	int in_flight;
	int batch;               /* the request in flight is a batch */
	int busy;                /* handling an answer: kicks wait for its end */
	int offline;
	unsigned failures;       /* failures in a row, drives the backoff */
	size_t batch_max;        /* lowered by a 413, restored when drained */
	void (*rekey_fn)(void *arg);
	void *rekey_arg;
	int rekey;               /* enum uplink_rekey */
	int rekey_call;          /* rekey_fn is to be called once the answer is handled */
	size_t ntxn;
	char txns[UPLINK_BATCH_MAX][UPLINK_TXN_LEN];
	char done[UPLINK_BATCH_MAX]; /* batch answer: txn already handled */
};

/* UR_IDLE: a key refusal asks for a refresh; UR_WAITING: sending stops
 * until uplink_rekeyed; UR_DONE: the key is fresh, a key refusal now sets
 * the basket aside (back to UR_IDLE when central accepts one). */
enum uplink_rekey { UR_IDLE = 0, UR_WAITING, UR_DONE };

static void uplink_send_next(struct uplink *u);

static void uplink_emit(struct uplink *u, enum uplink_event ev, const char *txn,
			const char *detail)
{
	if (u->fn)
		u->fn(ev, txn, detail, u->arg);
}

/* Central's error codes are short tokens; anything else is not passed on
 * (it reaches logs and the control socket). Writes tok, or fallback. */
static void uplink_token(const char *tok, const char *fallback, char *out, size_t n)
{
	size_t i = 0;

	if (tok)
		for (; tok[i]; i++) {
			char c = tok[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
				break;
		}
	snprintf(out, n, "%s", tok && i > 0 && !tok[i] ? tok : fallback);
}

/* The "error" field of a JSON error answer, else http_<status>. */
static void uplink_error_code(const char *body, size_t len, long status, char *out, size_t n)
{
	json_t *root = NULL;
	const char *code = NULL;
	char fallback[32];
	pos_err e;

	snprintf(fallback, sizeof fallback, "http_%ld", status);
	if (body && len > 0 &&
	    jsonx_parse(body, len, UPLINK_ANSWER_MAX, JSONX_MAX_DEPTH, &root, &e) == 0 &&
	    json_is_object(root))
		jsonx_str(root, "error", 0, UPLINK_DETAIL_MAX, &code, &e);
	uplink_token(code, fallback, out, n);
	json_decref(root);
}

/* Statuses that say "not now" rather than "never": central down or
 * overloaded, our certificate not (yet) accepted, the request timed out. */
static int uplink_transient(long status)
{
	return status < 200 || (status >= 300 && status < 400) || status >= 500 || status == 401 ||
	       status == 408 || status == 429;
}

/* Full jitter (a random wait in [0, cap]) keeps a store's lanes from all
 * retrying in step when central comes back. */
static void uplink_backoff(struct uplink *u)
{
	unsigned shift = u->failures > 0 ? u->failures - 1 : 0;
	long cap = UPLINK_BACKOFF_CAP_MS;
	struct timeval tv;

	if (shift < 16 && ((long)UPLINK_BACKOFF_BASE_MS << shift) < cap)
		cap = (long)UPLINK_BACKOFF_BASE_MS << shift;
	long ms = (long)arc4random_uniform((uint32_t)cap + 1);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(u->retry, &tv);
}

/* A spool write failed: not central's fault, so no OFFLINE event, but the
 * rows stay and the next try waits like any other failure. */
static void uplink_spool_failed(struct uplink *u, const char *what, const pos_err *e)
{
	char q[300];

	log_warn("uplink_spool_error", "op=%s error=%s", what, log_q(q, sizeof q, e->msg));
	u->failures++;
	uplink_backoff(u);
}

/* Central could not be reached or could not take the baskets now. */
static void uplink_failed(struct uplink *u, const char *why)
{
	pos_err e;

	for (size_t i = 0; i < u->ntxn; i++)
		if (u->q.attempted(u->q.q, u->txns[i], &e) < 0)
			break; /* only a counter: the retry matters more */
	u->failures++;
	if (!u->offline) {
		u->offline = 1;
		uplink_emit(u, UPLINK_OFFLINE, NULL, why);
	}
	uplink_backoff(u);
}

static void uplink_answered(struct uplink *u)
{
	u->failures = 0;
	if (u->offline) {
		u->offline = 0;
		uplink_emit(u, UPLINK_ONLINE, NULL, NULL);
	}
}

/* Returns 0, or -1 when the spool failed (the caller stops and backs off). */
static int uplink_accepted(struct uplink *u, const char *txn, const char *how)
{
	pos_err e;

	if (u->q.acked(u->q.q, txn, how, &e) < 0) {
		uplink_spool_failed(u, "delete", &e);
		return -1;
	}
	if (u->rekey == UR_DONE)
		u->rekey = UR_IDLE;
	uplink_emit(u, UPLINK_UPLOADED, txn, how);
	return 0;
}

static int uplink_refused(struct uplink *u, const char *txn, const char *code)
{
	pos_err e;

	if (u->rekey_fn && u->rekey != UR_DONE && ckey_refusal(code)) {
		/* Kept waiting, sent again once the key is refreshed. */
		if (u->rekey == UR_IDLE) {
			u->rekey = UR_WAITING;
			u->rekey_call = 1;
			log_warn("uplink_key_refused", "txn=%s reason=%s (refreshing central's key, "
				 "then one more try)", txn, code);
		}
		(void)u->q.attempted(u->q.q, txn, &e);
		return 0;
	}

	if (u->q.refused(u->q.q, txn, code, &e) < 0) {
		uplink_spool_failed(u, "set_rejected", &e);
		return -1;
	}
	uplink_emit(u, UPLINK_REJECTED, txn, code);
	return 0;
}

/* Returns 0 when the answer moved the spool on, -1 otherwise. */
static int uplink_single_answer(struct uplink *u, long status, const char *body, size_t len)
{
	char code[UPLINK_DETAIL_MAX + 1];

	if (status >= 200 && status < 300)
		return uplink_accepted(u, u->txns[0], status == 200 ? "duplicate" : "created");
	/* Any other 4xx (including 413 for a lone basket) will not change on
	 * a retry: set it aside for store IT instead of wedging the queue. */
	uplink_error_code(body, len, status, code, sizeof code);
	return uplink_refused(u, u->txns[0], code);
}

static int uplink_find_txn(struct uplink *u, const char *txn)
{
	for (size_t i = 0; i < u->ntxn; i++)
		if (!u->done[i] && strcmp(u->txns[i], txn) == 0)
			return (int)i;
	return -1;
}

/* Walks {"results":[{"txn","status","error"?}]}. With apply = 0 only
 * counts the baskets the answer settles; with apply = 1 deletes or sets
 * them aside. Returns that count, or -1 when the spool failed (a retry is
 * then armed). Baskets without a usable result stay spooled. */
static int uplink_batch_results(struct uplink *u, json_t *root, int apply)
{
	json_t *results = json_object_get(root, "results"), *it;
	size_t idx;
	int settled = 0;
	pos_err e;

	memset(u->done, 0, sizeof u->done);
	if (!json_is_array(results))
		return 0;
	json_array_foreach(results, idx, it) {
		const char *txn = NULL, *st = NULL, *err = NULL;
		char code[UPLINK_DETAIL_MAX + 1];
		int i, ok, rc = 0;

		if (!json_is_object(it) || jsonx_str(it, "txn", 1, UPLINK_TXN_LEN - 1, &txn, &e) < 0 ||
		    jsonx_str(it, "status", 1, 32, &st, &e) < 0)
			continue;
		if ((i = uplink_find_txn(u, txn)) < 0)
			continue; /* not one of ours, or a repeat */
		ok = strcmp(st, "created") == 0 || strcmp(st, "duplicate") == 0;
		if (!ok && strcmp(st, "conflict") != 0 && strcmp(st, "invalid") != 0)
			continue; /* unknown status: the basket stays and is retried */
		if (apply && ok) {
			rc = uplink_accepted(u, u->txns[i], st);
		} else if (apply) {
			if (jsonx_str(it, "error", 0, UPLINK_DETAIL_MAX, &err, &e) < 0)
				err = NULL;
			uplink_token(err, st, code, sizeof code);
			rc = uplink_refused(u, u->txns[i], code);
		}
		if (rc < 0)
			return -1;
		u->done[i] = 1;
		settled++;
	}
	if (apply)
		for (size_t i = 0; i < u->ntxn; i++)
			if (!u->done[i] && u->q.attempted(u->q.q, u->txns[i], &e) < 0)
				break; /* only a counter */
	return settled;
}

/* A 2xx batch answer. Returns 0 when it moved the spool on; -1 when it did
 * not (a retry is armed: re-sending at once could spin). */
static int uplink_batch_answer(struct uplink *u, const char *body, size_t len)
{
	json_t *root = NULL;
	pos_err e;
	int rc = -1;

	if (!body || jsonx_parse(body, len, UPLINK_ANSWER_MAX, JSONX_MAX_DEPTH, &root, &e) < 0) {
		uplink_failed(u, "unreadable batch answer from central");
		goto out;
	}
	if (uplink_batch_results(u, root, 0) <= 0) {
		uplink_failed(u, "central settled no basket of the batch");
		goto out;
	}
	uplink_answered(u);
	if (uplink_batch_results(u, root, 1) < 0)
		goto out;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* Starts the refresh a key refusal asked for; true when it did (the
 * refresh's end sends again). */
static int uplink_rekey_call(struct uplink *u)
{
	if (!u->rekey_call)
		return 0;
	u->rekey_call = 0;
	u->rekey_fn(u->rekey_arg);
	return 1;
}

static void uplink_on_done(long status, const char *body, size_t len, const char *errmsg,
			   void *arg)
{
	struct uplink *u = arg;
	char why[128];

	u->in_flight = 0;
	u->busy = 1;
	if (uplink_transient(status)) {
		if (status == 0)
			snprintf(why, sizeof why, "%s", errmsg ? errmsg : "no answer");
		else
			snprintf(why, sizeof why, "central answered http %ld", status);
		uplink_failed(u, why);
		goto out;
	}
	if (!u->batch) {
		uplink_answered(u);
		if (uplink_single_answer(u, status, body, len) < 0)
			goto out; /* the spool failed and a retry is armed */
	} else if (status >= 400) {
		/* 413: too big. Any other 4xx for a whole batch most likely means
		 * one bad basket: smaller batches end in single posts, where each
		 * basket gets its own verdict. */
		uplink_answered(u);
		u->batch_max = u->ntxn / 2 > 0 ? u->ntxn / 2 : 1;
	} else if (uplink_batch_answer(u, body, len) < 0) {
		goto out;
	}
	u->busy = 0;
	if (!uplink_rekey_call(u))
		uplink_send_next(u);
	return;
out:
	u->busy = 0;
	(void)uplink_rekey_call(u);
}

static void uplink_on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	uplink_send_next(arg);
}

/* Builds {"baskets":[b1,b2,...]} from the stored bodies (each a JSON
 * object as spooled), no re-serialisation. */
static char *uplink_batch_body(const struct spool_row *rows, size_t n, size_t *len)
{
	static const char head[] = "{\"baskets\":[";
	static const char tail[] = "]}";
	size_t total = sizeof head - 1 + sizeof tail - 1 + n;
	char *buf, *p;

	for (size_t i = 0; i < n; i++)
		total += rows[i].len;
	buf = malloc(total + 1);
	if (!buf)
		return NULL;
	p = buf;
	memcpy(p, head, sizeof head - 1);
	p += sizeof head - 1;
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		memcpy(p, rows[i].body, rows[i].len);
		p += rows[i].len;
	}
	memcpy(p, tail, sizeof tail - 1);
	p += sizeof tail - 1;
	*p = '\0';
	*len = (size_t)(p - buf);
	return buf;
}

static void uplink_send_next(struct uplink *u)
{
	struct spool_row *rows = NULL;
	size_t n = 0, k, bytes;
	char *batch = NULL;
	pos_err e;
	int rc;

	if (u->in_flight || u->busy || u->rekey == UR_WAITING || evtimer_pending(u->retry, NULL))
		return;
	if (u->q.peek(u->q.q, u->batch_max, &rows, &n, u->as, &e) < 0) {
		uplink_spool_failed(u, "peek", &e);
		return;
	}
	if (n == 0) {
		u->batch_max = UPLINK_BATCH_MAX; /* drained: idle, nothing armed */
		goto out;
	}
	for (k = 1, bytes = rows[0].len; k < n && bytes + rows[k].len + 1 <= UPLINK_BATCH_BYTES; k++)
		bytes += rows[k].len + 1;
	u->ntxn = k;
	for (size_t i = 0; i < k; i++)
		snprintf(u->txns[i], sizeof u->txns[i], "%s", rows[i].txn);
	u->batch = k > 1;
	if (!u->batch) {
		rc = http_post_as(u->http, "/v1/baskets", u->as[0] ? u->as : NULL, rows[0].body,
				  rows[0].len, UPLINK_TIMEOUT_MS, uplink_on_done, u, &e);
	} else {
		size_t blen = 0;
		batch = uplink_batch_body(rows, k, &blen);
		rc = batch ? http_post_as(u->http, "/v1/baskets:batch", u->as[0] ? u->as : NULL,
					  batch, blen, UPLINK_TIMEOUT_MS, uplink_on_done, u, &e)
			   : err_set(&e, POS_ENOMEM, "out of memory building a batch");
	}
	if (rc == POS_ETOOBIG && !u->batch) {
		/* A basket no request can carry would block every one behind it. */
		u->busy = 1;
		rc = uplink_refused(u, u->txns[0], "too_large");
		u->busy = 0;
		if (rc == 0) {
			spool_rows_free(rows, n);
			uplink_send_next(u);
			return;
		}
		goto out;
	}
	if (rc < 0) {
		uplink_failed(u, e.msg);
		goto out;
	}
	u->in_flight = 1;
out:
	free(batch);
	spool_rows_free(rows, n);
}

static int uplink_spool_peek(void *q, size_t max, struct spool_row **rows, size_t *n,
			     char as[UPLINK_AS_MAX + 1], pos_err *e)
{
	as[0] = '\0'; /* the agent sends as itself */
	return spool_peek(q, max, rows, n, e);
}

static int uplink_spool_acked(void *q, const char *txn, const char *how, pos_err *e)
{
	(void)how;
	return spool_delete(q, txn, e);
}

static int uplink_spool_refused(void *q, const char *txn, const char *reason, pos_err *e)
{
	return spool_set_rejected(q, txn, reason, e);
}

static int uplink_spool_attempted(void *q, const char *txn, pos_err *e)
{
	return spool_note_attempt(q, txn, e);
}

int uplink_new(struct event_base *base, struct http *h, struct spool *s, uplink_event_fn fn,
	       void *arg, struct uplink **out, pos_err *e)
{
	struct uplink_queue q = { .q = s,
				  .peek = uplink_spool_peek,
				  .acked = uplink_spool_acked,
				  .refused = uplink_spool_refused,
				  .attempted = uplink_spool_attempted };

	if (out)
		*out = NULL;
	if (!s)
		return err_set(e, POS_EINVAL, "uplink: needs an event base, http client and spool");
	return uplink_new_queue(base, h, &q, fn, arg, out, e);
}

int uplink_new_queue(struct event_base *base, struct http *h, const struct uplink_queue *q,
		     uplink_event_fn fn, void *arg, struct uplink **out, pos_err *e)
{
	struct uplink *u;

	*out = NULL;
	if (!base || !h || !q || !q->peek || !q->acked || !q->refused || !q->attempted)
		return err_set(e, POS_EINVAL, "uplink: needs an event base, http client and spool");
	u = calloc(1, sizeof *u);
	if (!u)
		return err_set(e, POS_ENOMEM, "uplink: out of memory");
	u->base = base;
	u->http = h;
	u->q = *q;
	u->fn = fn;
	u->arg = arg;
	u->batch_max = UPLINK_BATCH_MAX;
	u->retry = evtimer_new(base, uplink_on_retry, u);
	if (!u->retry) {
		free(u);
		return err_set(e, POS_ENOMEM, "uplink: cannot create timer");
	}
	*out = u;
	return 0;
}

void uplink_free(struct uplink *u)
{
	if (!u)
		return;
	http_cancel(u->http, u);
	event_free(u->retry);
	free(u);
}

void uplink_set_rekey(struct uplink *u, void (*fn)(void *arg), void *arg)
{
	if (!u)
		return;
	u->rekey_fn = fn;
	u->rekey_arg = arg;
}

void uplink_rekeyed(struct uplink *u)
{
	if (!u || u->rekey != UR_WAITING)
		return;
	u->rekey = UR_DONE;
	uplink_send_next(u);
}

void uplink_kick(struct uplink *u)
{
	if (u)
		uplink_send_next(u);
}

int uplink_offline(const struct uplink *u)
{
	return u ? u->offline : 0;
}
