#include "routes.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "analyst.h"
#include "basket.h"
#include "codec.h"
#include "history.h"
#include "httpd.h"
#include "ids.h"
#include "jsonx.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "offers.h"
#include "query.h"
#include "resolve.h"
#include "timeutil.h"
#include "tls.h"
#include "wipe.h"

#define ROUTES_HH_PREFIX "/v1/households/"
#define ROUTES_HH_SUFFIX "/baskets"
#define ROUTES_OFFERS_PREFIX "/v1/offers/"
#define ROUTES_ACCEPT_SUFFIX "/accept"
#define ROUTES_CHECK_BODY_MAX 1024
/* Retry-After when the unused registrations are at their cap: expiry
 * frees room at most every minute. */
#define ROUTES_FULL_RETRY_S "60"

/* One request while it is being handled: on the stack for the routes that
 * answer at once, inside a struct routes_async for those the writer does. */
struct rq {
	struct routes *r;
	struct httpd_req *req;
	enum metrics_route route;
	int64_t t0_us;
	char store[STORE_ID_MAX + 1];
	char terminal[STORE_ID_MAX + 1];
	int64_t device; /* a ROLE_DEVICE route's caller */
};

enum async_kind { ASYNC_ONE, ASYNC_BATCH, ASYNC_REGISTER, ASYNC_ACCEPT, ASYNC_ENROL };

/* A request waiting for the writer. For a batch, entry i is valid
 * when code[i] is NULL; valid ones are copied into job_baskets in order.
 * A registration or an acceptance is an INGEST_OP job: its input and
 * answer are the fields after job_index. */
struct routes_async {
	struct rq q;
	enum async_kind kind;
	struct ingest_job job;
	size_t n;
	struct basket_in *in;          /* n */
	const char **code;             /* n: error code of an invalid entry */
	char (*detail)[sizeof(((pos_err *)0)->msg)]; /* n */
	char (*txn)[UUID_STR_LEN + 1];  /* n: for the results */
	struct store_basket *job_baskets;
	enum store_put_result *results;
	size_t *job_index;             /* entry of each job basket */
	int64_t now_ms;                /* ASYNC_REGISTER, ASYNC_ACCEPT */
	char token[OFFERS_TOKEN_LEN + 1]; /* ASYNC_REGISTER: wiped on free */
	int64_t device;                /* ASYNC_ACCEPT */
	char offer_id[STORE_OFFER_ID_LEN + 1];
	json_t *answer;                /* ASYNC_ACCEPT: set by the writer */
	bool created;
	/* ASYNC_ENROL: a TID no household holds yet, by its index (wiped on
	 * free), and the answer the writer fills. */
	unsigned char idx[DEIDENT_INDEX_LEN];
	struct resolve_result enrolled;
	/* Baskets whose EncTID the keys process is opening: the job goes to
	 * the writer when none is left; a storage failure of one fails all. */
	size_t opening;
	struct routes_tid_open *topen; /* n */
	int fail_rc;
	pos_err fail_err;
	int status_one; /* ASYNC_ONE refused: its status */
	struct routes_async *next_done;
};

/* One basket's EncTID with the keys process. */
struct routes_tid_open {
	struct routes_async *a;
	size_t i;
};

/* A /v1/resolve while the keys process opens its EncTID. */
struct routes_opening {
	struct rq q;
	/* Once opened, waiting for the turn's lookup (routes_lookup_cb). */
	unsigned char idx[DEIDENT_INDEX_LEN];
	char dtid[DEIDENT_ID_LEN + 1];
	struct routes_opening *next;
};

struct routes {
	struct event_base *base;
	struct store *store;
	struct store *reads; /* routes_set_reads; NULL: store */
	struct keys_chan *keys;
	struct keys_async *opens;         /* the resolves' opens, answered on this loop */
	const struct routes_shared *sh;
	struct event *done_ev;
	/* The reads of one loop turn (baskets checked) share one
	 * transaction from the second on (store_reads_begin);
	 * reads_end_ev, made active by the first, ends it once the turn's
	 * events ran. */
	struct event *reads_end_ev;
	unsigned turn_reads;
	/* The resolves a keys answer opened, looked up together once it is
	 * handled (lookup_ev): one statement for all on PostgreSQL. */
	struct event *lookup_ev;
	struct routes_opening *opened, **opened_tail;
	size_t n_opened;
	pthread_mutex_t mu;
	struct routes_async *done; /* guarded by mu: filled by the writer */
	size_t waiting;            /* worker thread only */
	char *text;                /* METRICS_TEXT_MAX scratch for /metrics */
	int64_t full_logged_ms;    /* the last devices_full line: one a minute */
};

/* ------------------------------------------------------------ answers */

/* Sends the answer, counts and logs it. Takes nothing: the reply copies
 * text out. */
static void routes_send_text(struct rq *q, int status, const char *ctype, const char *text,
			     size_t len)
{
	long long us = (long long)(time_mono_us() - q->t0_us);

	(void)httpd_add_header(q->req, "Cache-Control", "no-store");
	metrics_request(q->route, status);
	/* No request value lands here: route is a fixed label, store and
	 * terminal come from our CA's certificate and were validated. */
	log_info("request", "route=%s method=%s status=%d latency_us=%lld store=%s terminal=%s",
		 metrics_route_name(q->route), httpd_method_name(q->req), status, us,
		 q->store[0] ? q->store : "-", q->terminal[0] ? q->terminal : "-");
	httpd_reply(q->req, status, ctype, text, len);
}

/* An evbuffer's bytes as the answer (history and reports are written into
 * one as they are read). */
static void routes_send(struct rq *q, int status, const char *ctype, struct evbuffer *body)
{
	size_t len = evbuffer_get_length(body);
	const char *p = len ? (const char *)evbuffer_pullup(body, -1) : "";

	if (!p)
		routes_send_text(q, 500, NULL, "", 0);
	else
		routes_send_text(q, status, ctype, p, len);
}

static void routes_send_json(struct rq *q, int status, json_t *v)
{
	char *s = v ? jsonx_dump(v) : NULL;

	if (!s) {
		static const char oom[] = "{\"error\":\"internal\",\"detail\":\"out of memory\"}";
		routes_send_text(q, 500, "application/json", oom, sizeof oom - 1);
		return;
	}
	routes_send_text(q, status, "application/json", s, strlen(s));
	free(s);
}

/* Details come from our own validators, which never quote request
 * values; jansson escapes them anyway. */
static void routes_error(struct rq *q, int status, const char *code, const char *detail)
{
	json_t *v = json_object();

	if (v) {
		json_object_set_new(v, "error", json_string(code));
		if (detail && detail[0])
			json_object_set_new(v, "detail", json_string(detail));
	}
	routes_send_json(q, status, v);
	json_decref(v);
}

/* Storage and internal failures: the client learns the class, the
 * operator gets the message in the log (never a TID: store messages hold
 * none). */
static void routes_fail(struct rq *q, int rc, const pos_err *e)
{
	char qb[sizeof e->msg + 16];
	bool busy = rc == POS_EAGAIN || rc == POS_EDB;

	log_error(busy ? "store_failed" : "internal_error", "route=%s code=%s detail=%s",
		  metrics_route_name(q->route), err_name(rc),
		  log_q(qb, sizeof qb, e ? e->msg : ""));
	if (busy)
		routes_error(q, 503, "unavailable", "storage is busy or failing; retry later");
	else
		routes_error(q, 500, "internal", "internal error");
}

static void routes_bad_input(struct rq *q, int rc, const pos_err *e)
{
	if (rc == POS_ETOOBIG)
		routes_error(q, 413, "too_large", e->msg);
	else if (rc == POS_EINVAL)
		routes_error(q, 400, "bad_request", e->msg);
	else
		routes_fail(q, rc, e);
}

/* ------------------------------------------------------------ helpers */

/* The connection's certificate names, as the handshake's end read them,
 * into q; false (and q's names empty) without a verified one. */
static bool routes_peer(struct rq *q)
{
	const struct httpd_peer *p = httpd_peer(q->req);

	snprintf(q->store, sizeof q->store, "%s", p->verified ? p->store : "");
	snprintf(q->terminal, sizeof q->terminal, "%s", p->verified ? p->terminal : "");
	return p->verified;
}

/* The lane a request is for: the certificate's OU and CN, or, from a store
 * controller's certificate (CN = store-controller), the certificate's store
 * and the lane named in Pos-Terminal. Only a controller names a lane, and
 * only one of its own store; a controller never acts as a lane itself. */
static bool routes_need_terminal(struct rq *q)
{
	const char *lane = httpd_header(q->req, TLS_RELAY_HEADER);
	bool controller;

	if (!routes_peer(q)) {
		routes_error(q, 401, "client_certificate_required",
			     "this route needs a terminal certificate issued by central's CA");
		return false;
	}
	controller = strcmp(q->terminal, TLS_CONTROLLER_CN) == 0;
	if (!lane && !controller)
		return true;
	if (!controller) {
		routes_error(q, 403, "relay_refused",
			     "only a store controller's certificate may name a lane in Pos-Terminal");
		return false;
	}
	if (!lane) {
		routes_error(q, 400, "terminal_required",
			     "a store controller names the lane in a Pos-Terminal header");
		return false;
	}
	if (!ids_valid(lane) || strcmp(lane, TLS_CONTROLLER_CN) == 0) {
		routes_error(q, 400, "bad_terminal",
			     "Pos-Terminal must be a terminal id matching [A-Za-z0-9._-]{1,64}");
		return false;
	}
	snprintf(q->terminal, sizeof q->terminal, "%s", lane);
	return true;
}

/* Resolution errors shared by /v1/resolve and baskets carrying an EncTID. */
static int routes_resolve_status(int rc, const char **code)
{
	switch (rc) {
	case POS_ECRYPTO:
	case POS_EINVAL:
		*code = "bad_tid";
		return 400;
	case POS_ENOTFOUND:
		*code = "unknown_tid";
		return 404;
	case POS_EAGAIN:
	case POS_EDB:
		*code = "unavailable";
		return 503;
	default:
		*code = "internal";
		return 500;
	}
}

/* ------------------------------------------------------------ /v1/resolve */

static void routes_resolve_answer(struct rq *q, int rc, const struct resolve_result *res,
				  pos_err *e)
{
	const char *code;
	char out[128];
	int n;

	if (rc < 0) {
		int status = routes_resolve_status(rc, &code);

		if (status >= 500)
			routes_fail(q, rc, e);
		else
			routes_error(q, status, code,
				     rc == POS_ENOTFOUND ? "no household holds this TID" : e->msg);
		return;
	}
	n = snprintf(out, sizeof out, "{\"hhid\":\"%s\",\"deident_tid\":\"%s\",\"new_household\":%s}",
		     res->hhid, res->deident_tid, res->new_household ? "true" : "false");
	routes_send_text(q, 200, "application/json", out, (size_t)n);
}

static struct routes_async *routes_async_new(struct rq *q, enum async_kind kind, size_t n);
static void routes_submit_op(struct routes_async *a,
			     int (*op)(struct store *s, struct ingest_job *job, pos_err *e));

/* Writer thread: the enrolment, in the group's transaction. A TID that
 * another request enrolled meanwhile is found, not enrolled twice. */
static int routes_op_enrol(struct store *s, struct ingest_job *job, pos_err *e)
{
	struct routes_async *a = job->arg;
	bool created = false;
	int rc;

	rc = store_resolve(s, a->idx, true, NULL, a->enrolled.hhid, &created, e);
	a->enrolled.new_household = rc == 0 && created;
	return rc;
}

/* Hands a new TID's enrolment to the writer; the answer goes out when its
 * group commits. Nonzero when it could not be handed over (answered
 * already). */
static int routes_enrol(struct rq *q, const unsigned char idx[DEIDENT_INDEX_LEN],
			const char *dtid)
{
	struct routes_async *a = routes_async_new(q, ASYNC_ENROL, 0);

	if (!a) {
		routes_error(q, 500, "internal", "out of memory");
		return -1;
	}
	memcpy(a->idx, idx, sizeof a->idx);
	snprintf(a->enrolled.deident_tid, sizeof a->enrolled.deident_tid, "%s", dtid);
	routes_submit_op(a, routes_op_enrol);
	return 0;
}

static void routes_reads_end_cb(evutil_socket_t fd, short what, void *arg)
{
	struct routes *r = arg;

	(void)fd;
	(void)what;
	store_reads_end(r->store);
	r->turn_reads = 0;
}

/* Before a read on the worker's connection: see reads_end_ev. */
static void routes_reads_share(struct routes *r)
{
	if (r->turn_reads++ == 0)
		event_active(r->reads_end_ev, EV_TIMEOUT, 1);
	else if (r->turn_reads == 2)
		store_reads_begin(r->store);
}

/* One looked-up resolve answered (hhid "": none holds its TID, which the
 * writer then enrols, and this worker never waits on that commit nor pays
 * its fsync). */
static void routes_lookup_answer(struct routes *r, struct routes_opening *o, int rc,
				 const char *hhid, pos_err *e)
{
	struct resolve_result out;

	r->waiting--;
	memset(&out, 0, sizeof out);
	if (rc == 0 && !hhid[0])
		rc = POS_ENOTFOUND;
	if (rc == POS_ENOTFOUND && r->sh->auto_enrol) {
		/* Handed to the writer, or answered already when it could not be. */
		(void)routes_enrol(&o->q, o->idx, o->dtid);
		goto out;
	}
	if (rc == 0) {
		memcpy(out.hhid, hhid, sizeof out.hhid);
		memcpy(out.deident_tid, o->dtid, sizeof out.deident_tid);
	}
	metrics_resolve_us(time_mono_us() - o->q.t0_us);
	routes_resolve_answer(&o->q, rc, &out, e);
out:
	wipe(o->idx, sizeof o->idx);
	free(o);
}

static void routes_lookup_cb(evutil_socket_t fd, short what, void *arg)
{
	struct routes *r = arg;
	struct routes_opening *list = r->opened, *o, *next;
	size_t n = r->n_opened, i = 0;
	const unsigned char **idx = malloc(n * sizeof *idx);
	char(*hh)[DEIDENT_ID_LEN + 1] = malloc(n * sizeof *hh);
	pos_err e = { 0 };
	int rc;

	(void)fd;
	(void)what;
	r->opened = NULL;
	r->opened_tail = &r->opened;
	r->n_opened = 0;
	if (!idx || !hh) {
		rc = err_set(&e, POS_ENOMEM, "resolve: out of memory");
	} else {
		for (o = list; o; o = o->next)
			idx[i++] = o->idx;
		rc = store_resolve_many(r->store, n, idx, hh, &e);
	}
	for (o = list, i = 0; o; o = next, i++) {
		next = o->next;
		routes_lookup_answer(r, o, rc, rc == 0 ? hh[i] : "", &e);
	}
	free(idx);
	free(hh);
}

/* The keys process's answer for one resolve: queued for the lookup of
 * every resolve this answer brings (lookup_ev), or answered when it did
 * not open. */
static void routes_opened(void *arg, struct keys_open_res *res)
{
	struct routes_opening *o = arg;
	struct routes *r = o->q.r;
	struct resolve_result out;

	if (res->rc < 0) {
		r->waiting--;
		memset(&out, 0, sizeof out);
		metrics_resolve_us(time_mono_us() - o->q.t0_us);
		routes_resolve_answer(&o->q, res->rc, &out, &res->err);
		free(o);
		return;
	}
	memcpy(o->idx, res->idx, sizeof o->idx);
	memcpy(o->dtid, res->dtid, sizeof o->dtid);
	o->next = NULL;
	*r->opened_tail = o;
	r->opened_tail = &o->next;
	if (r->n_opened++ == 0)
		event_active(r->lookup_ev, EV_TIMEOUT, 1);
}

/* Parsed at once; opened by the keys process together with whatever else
 * this loop turn brings, answered when its answer arrives on this loop. */
static void routes_resolve(struct rq *q)
{
	struct routes *r = q->r;
	struct routes_opening *o;
	struct keys_open_req kq;
	struct resolve_req rr;
	const char *body;
	pos_err e = { 0 };
	size_t len;
	int rc;

	body = httpd_body(q->req, &len);
	if ((rc = resolve_parse(body, len, &rr, &e)) < 0) {
		routes_bad_input(q, rc, &e);
		return;
	}
	if (!(o = malloc(sizeof *o))) {
		routes_error(q, 500, "internal", "out of memory");
		return;
	}
	o->q = *q;
	kq = (struct keys_open_req){ q->store, q->terminal, rr.txn, rr.kid, rr.enc };
	if ((rc = keys_async_open(r->opens, &kq, routes_opened, o, &e)) < 0) {
		free(o);
		routes_fail(q, rc, &e);
		return;
	}
	r->waiting++;
}

/* ------------------------------------------------------------ baskets */

/* What needs the store before a basket's EncTID is opened: its hhid
 * exists. 0, or an HTTP status with code and e set. */
static int routes_basket_check(struct rq *q, struct basket_in *bi, const char **code, pos_err *e)
{
	if (!bi->b.hhid[0])
		return 0;
	routes_reads_share(q->r);
	if (!store_household_exists(q->r->store, bi->b.hhid)) {
		*code = "unknown_household";
		err_set(e, POS_ENOTFOUND, "hhid is not a known household");
		return 400;
	}
	return 0;
}

/* The rest once the keys process answered for the basket's EncTID (res):
 * its household found, or its enrolment left to the writer. 0, or an
 * HTTP status with code and e set. */
static int routes_basket_opened(struct rq *q, struct basket_in *bi, struct keys_open_res *res,
				const char **code, pos_err *e)
{
	struct resolve_result out;
	bool opened = res->rc == 0;
	int rc = res->rc;

	if (!opened)
		*e = res->err;
	else
		rc = resolve_store(q->r->store, false, res->idx, res->dtid, &out, e);
	if (opened && rc == POS_ENOTFOUND && q->r->sh->auto_enrol) {
		/* The writer enrols it, in the basket's own transaction. */
		bi->enrol = true;
		memcpy(bi->enrol_idx, res->idx, sizeof bi->enrol_idx);
		snprintf(bi->b.deident, sizeof bi->b.deident, "%s", res->dtid);
		return 0;
	}
	if (opened && rc == POS_ENOTFOUND)
		return 0; /* auto-enrol off: stored as it came, unresolved */
	if (rc < 0) {
		int status = routes_resolve_status(rc, code);
		if (status >= 500)
			err_set(e, rc, "resolving the basket's EncTID failed");
		return status;
	}
	/* Central's own resolution on arrival is the household of record. */
	memcpy(bi->b.hhid, out.hhid, sizeof bi->b.hhid);
	memcpy(bi->b.deident, out.deident_tid, sizeof bi->b.deident);
	return 0;
}

static void routes_async_free(struct routes_async *a)
{
	if (!a)
		return;
	for (size_t i = 0; a->in && i < a->n; i++)
		basket_free(&a->in[i]);
	free(a->in);
	free(a->code);
	free(a->detail);
	free(a->txn);
	free(a->job_baskets);
	free(a->results);
	free(a->job_index);
	free(a->topen);
	json_decref(a->answer);
	wipe(a->token, sizeof a->token);
	wipe(a->idx, sizeof a->idx);
	free(a);
}

static struct routes_async *routes_async_new(struct rq *q, enum async_kind kind, size_t n)
{
	struct routes_async *a = calloc(1, sizeof *a);

	if (!a)
		return NULL;
	a->q = *q;
	a->kind = kind;
	a->n = n;
	a->in = calloc(n, sizeof *a->in);
	a->code = calloc(n, sizeof *a->code);
	a->detail = calloc(n, sizeof *a->detail);
	a->txn = calloc(n, sizeof *a->txn);
	a->job_baskets = calloc(n, sizeof *a->job_baskets);
	a->results = calloc(n, sizeof *a->results);
	a->job_index = calloc(n, sizeof *a->job_index);
	if (!a->in || !a->code || !a->detail || !a->txn || !a->job_baskets || !a->results ||
	    !a->job_index) {
		routes_async_free(a);
		return NULL;
	}
	return a;
}

/* Writer thread: hand the finished job back to its worker. Only the
 * first job of an empty list wakes the worker: routes_done_cb takes the
 * whole list, so later ones ride along (each event_active from another
 * thread takes the worker's loop lock). */
static void routes_job_done(struct ingest_job *job)
{
	struct routes_async *a = job->arg;
	struct routes *r = a->q.r;
	bool first;

	pthread_mutex_lock(&r->mu);
	first = !r->done;
	a->next_done = r->done;
	r->done = a;
	pthread_mutex_unlock(&r->mu);
	if (first)
		event_active(r->done_ev, EV_READ, 1);
}

static const char *routes_put_name(enum store_put_result p)
{
	switch (p) {
	case STORE_PUT_CREATED: return "created";
	case STORE_PUT_DUPLICATE: return "duplicate";
	case STORE_PUT_CONFLICT: return "conflict";
	default: return "invalid";
	}
}

/* {"txn","status"} and, when the basket carried offer codes, what storing
 * did with each. */
static void routes_answer_stored(struct routes_async *a, int status, const char *what)
{
	const struct store_basket *b = &a->job_baskets[0];
	json_t *v = json_pack("{s:s, s:s}", "txn", b->txn, "status", what);
	json_t *offers = offers_basket_json(b);

	if (v && offers)
		json_object_set_new(v, "offers", offers);
	else
		json_decref(offers);
	routes_send_json(&a->q, status, v);
	json_decref(v);
}

static void routes_answer_one(struct routes_async *a)
{
	switch (a->results[0]) {
	case STORE_PUT_CREATED:
		metrics_baskets_stored(1);
		offers_log_refusals(&a->job_baskets[0]);
		routes_answer_stored(a, 201, "created");
		break;
	case STORE_PUT_DUPLICATE:
		routes_answer_stored(a, 200, "duplicate");
		break;
	case STORE_PUT_CONFLICT:
		routes_error(&a->q, 409, "conflict",
			     "this txn is already stored with other content; nothing was stored");
		break;
	default:
		routes_error(&a->q, 500, "internal", "the writer gave no result");
		break;
	}
}

static void routes_answer_batch(struct routes_async *a)
{
	json_t *root = json_object(), *arr = json_array();
	size_t j = 0;
	long created = 0;

	if (!root || !arr) {
		json_decref(arr);
		json_decref(root);
		routes_send_json(&a->q, 500, NULL);
		return;
	}
	json_object_set_new(root, "results", arr);
	for (size_t i = 0; i < a->n; i++) {
		json_t *o = json_object();

		if (!o)
			continue;
		json_object_set_new(o, "txn", a->txn[i][0] ? json_string(a->txn[i]) : json_null());
		if (a->code[i]) {
			json_object_set_new(o, "status", json_string("invalid"));
			json_object_set_new(o, "error", json_string(a->code[i]));
			json_object_set_new(o, "detail", json_string(a->detail[i]));
		} else {
			const struct store_basket *b = &a->job_baskets[j];
			enum store_put_result p = a->results[j++];
			json_t *offers = offers_basket_json(b);

			created += p == STORE_PUT_CREATED;
			if (p == STORE_PUT_CREATED)
				offers_log_refusals(b);
			json_object_set_new(o, "status", json_string(routes_put_name(p)));
			if (p == STORE_PUT_CONFLICT)
				json_object_set_new(o, "error", json_string("conflict"));
			if (offers)
				json_object_set_new(o, "offers", offers);
		}
		json_array_append_new(arr, o);
	}
	metrics_baskets_stored(created);
	routes_send_json(&a->q, 200, root);
	json_decref(root);
}

static void routes_answer_register(struct routes_async *a);
static void routes_answer_accept(struct routes_async *a);

static void routes_answer_enrol(struct routes_async *a)
{
	int rc = a->job.rc < 0 ? a->job.rc : a->job.op_rc;

	routes_resolve_answer(&a->q, rc, &a->enrolled,
			      a->job.rc < 0 ? &a->job.err : &a->job.op_err);
}

static void routes_answer(struct routes_async *a)
{
	if (a->kind == ASYNC_ENROL)
		routes_answer_enrol(a);
	else if (a->kind == ASYNC_REGISTER)
		routes_answer_register(a);
	else if (a->kind == ASYNC_ACCEPT)
		routes_answer_accept(a);
	else if (a->job.n > 0 && a->job.rc < 0)
		routes_fail(&a->q, a->job.rc, &a->job.err);
	else if (a->kind == ASYNC_ONE)
		routes_answer_one(a);
	else
		routes_answer_batch(a);
	routes_async_free(a);
}

/* Worker thread, woken by the writer: answer every finished request. */
static void routes_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct routes *r = arg;
	struct routes_async *list, *next;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&r->mu);
	list = r->done;
	r->done = NULL;
	pthread_mutex_unlock(&r->mu);
	for (; list; list = next) {
		next = list->next_done;
		r->waiting--;
		routes_answer(list);
	}
}

/* Writer thread, first in the group's transaction: the households of the
 * job's baskets whose TID none held yet. */
static int routes_enrol_baskets(struct store *s, struct ingest_job *job, pos_err *e)
{
	struct routes_async *a = job->arg;
	bool created;
	int rc;

	for (size_t k = 0; k < job->n; k++) {
		const struct basket_in *bi = &a->in[a->job_index[k]];

		if (bi->enrol &&
		    (rc = store_resolve(s, bi->enrol_idx, true, NULL, a->job_baskets[k].hhid,
					&created, e)) < 0)
			return rc;
	}
	return 0;
}

static void routes_submit(struct routes_async *a)
{
	pos_err e = { 0 };
	int rc;

	a->job.baskets = a->job_baskets;
	a->job.results = a->results;
	for (size_t k = 0; k < a->job.n && !a->job.prepare; k++)
		if (a->in[a->job_index[k]].enrol)
			a->job.prepare = routes_enrol_baskets;
	a->job.done = routes_job_done;
	a->job.arg = a;
	if (a->job.n == 0) { /* a batch with nothing valid */
		routes_answer(a);
		return;
	}
	if ((rc = ingest_submit(a->q.r->sh->ingest, &a->job, &e)) < 0) {
		routes_error(&a->q, 503, "unavailable", e.msg);
		routes_async_free(a);
		return;
	}
	a->q.r->waiting++;
}

/* A registration or an acceptance, for the writer: answered by
 * routes_done_cb once its group committed. */
static void routes_submit_op(struct routes_async *a,
			     int (*op)(struct store *s, struct ingest_job *job, pos_err *e))
{
	pos_err e = { 0 };

	a->job.kind = INGEST_OP;
	a->job.op = op;
	a->job.done = routes_job_done;
	a->job.arg = a;
	if (ingest_submit(a->q.r->sh->ingest, &a->job, &e) < 0) {
		routes_error(&a->q, 503, "unavailable", e.msg);
		routes_async_free(a);
		return;
	}
	a->q.r->waiting++;
}

/* Every basket's EncTID is open: the valid ones, in order, go to the
 * writer. */
static void routes_baskets_ready(struct routes_async *a)
{
	if (a->fail_rc < 0) {
		routes_fail(&a->q, a->fail_rc, &a->fail_err);
		routes_async_free(a);
		return;
	}
	if (a->kind == ASYNC_ONE && a->code[0]) {
		routes_error(&a->q, a->status_one, a->code[0], a->detail[0]);
		routes_async_free(a);
		return;
	}
	a->job.n = 0;
	for (size_t i = 0; i < a->n; i++) {
		if (a->code[i])
			continue;
		a->job_index[a->job.n] = i;
		a->job_baskets[a->job.n++] = a->in[i].b;
	}
	routes_submit(a);
}

/* Entry i's check failed with status: an invalid entry of a batch (a
 * single basket answers it), or, from 500 up, the whole request. */
static void routes_basket_refused(struct routes_async *a, size_t i, int status, const char *code,
				  const pos_err *e)
{
	if (status >= 500) {
		if (a->fail_rc == 0) {
			a->fail_rc = e->code < 0 ? e->code : POS_EIO;
			a->fail_err = *e;
		}
		return;
	}
	a->code[i] = code;
	a->status_one = status;
	memcpy(a->detail[i], e->msg, sizeof a->detail[i]);
}

static void routes_basket_tid_cb(void *arg, struct keys_open_res *res)
{
	struct routes_tid_open *t = arg;
	struct routes_async *a = t->a;
	const char *code = "bad_request";
	pos_err e = { 0 };
	int status;

	status = routes_basket_opened(&a->q, &a->in[t->i], res, &code, &e);
	if (status)
		routes_basket_refused(a, t->i, status, code, &e);
	if (--a->opening == 0) {
		a->q.r->waiting--;
		routes_baskets_ready(a);
	}
}

/* Entry i, parsed: checked, and its EncTID (if any) sent to the keys
 * process. */
static void routes_basket_start(struct routes_async *a, size_t i)
{
	struct basket_in *bi = &a->in[i];
	const char *code = "bad_request";
	struct keys_open_req kq;
	pos_err e = { 0 };
	int status, rc;

	if ((status = routes_basket_check(&a->q, bi, &code, &e))) {
		routes_basket_refused(a, i, status, code, &e);
		return;
	}
	if (!bi->has_tid)
		return;
	if (!a->topen && !(a->topen = calloc(a->n, sizeof *a->topen))) {
		err_set(&e, POS_ENOMEM, "out of memory");
		routes_basket_refused(a, i, 500, "internal", &e);
		return;
	}
	a->topen[i] = (struct routes_tid_open){ a, i };
	kq = (struct keys_open_req){ bi->b.store, bi->b.terminal, bi->txn_sent, bi->tid_kid,
				     bi->tid_enc };
	if ((rc = keys_async_open(a->q.r->opens, &kq, routes_basket_tid_cb, &a->topen[i], &e)) < 0) {
		routes_basket_refused(a, i, 500, "internal", &e);
		return;
	}
	if (a->opening++ == 0)
		a->q.r->waiting++;
}

static void routes_basket(struct rq *q)
{
	struct routes_async *a;
	const char *body;
	pos_err e = { 0 };
	size_t len;
	int rc;

	body = httpd_body(q->req, &len);
	if (!(a = routes_async_new(q, ASYNC_ONE, 1))) {
		routes_error(q, 500, "internal", "out of memory");
		return;
	}
	rc = basket_parse(body, len, q->r->sh->max_body, q->store, q->terminal, time_now_ms(),
			  &a->in[0], &e);
	if (rc < 0) {
		routes_bad_input(q, rc, &e);
		routes_async_free(a);
		return;
	}
	routes_basket_start(a, 0);
	if (a->opening == 0)
		routes_baskets_ready(a);
}

static void routes_batch(struct rq *q)
{
	struct routes_async *a = NULL;
	json_t *root = NULL, *arr = NULL;
	const char *body;
	pos_err e = { 0 };
	int64_t now = time_now_ms();
	size_t len, n;
	int rc;

	body = httpd_body(q->req, &len);
	if ((rc = jsonx_parse(body, len, q->r->sh->max_body, BASKET_MAX_DEPTH, &root, &e)) < 0 ||
	    (rc = basket_batch_array(root, &arr, &e)) < 0) {
		routes_bad_input(q, rc, &e);
		goto out;
	}
	n = json_array_size(arr);
	if (!(a = routes_async_new(q, ASYNC_BATCH, n))) {
		routes_error(q, 500, "internal", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n && a->fail_rc == 0; i++) {
		json_t *obj = json_array_get(arr, i);

		basket_txn_hint(obj, a->txn[i]);
		e.msg[0] = '\0';
		rc = basket_from_json(obj, q->store, q->terminal, now, &a->in[i], &e);
		if (rc == POS_ENOMEM) {
			e.code = rc;
			routes_basket_refused(a, i, 500, "internal", &e);
		}
		else if (rc < 0)
			routes_basket_refused(a, i, 400, "bad_request", &e);
		else
			routes_basket_start(a, i);
	}
	/* Storage trouble is not the baskets' fault: the batch fails whole
	 * (once the opens already sent are back) so the lane retries it. */
	if (a->opening == 0)
		routes_baskets_ready(a);
	a = NULL;
out:
	routes_async_free(a);
	json_decref(root);
}

/* ------------------------------------------------------------ history */

/* Where the analysts' reads go: [store] dsn_read's connection, if any. */
static struct store *routes_reads(const struct routes *r)
{
	return r->reads ? r->reads : r->store;
}

static int routes_sink(const void *buf, size_t len, void *arg)
{
	return evbuffer_add(arg, buf, len) == 0 ? 0 : POS_ENOMEM;
}

/* Baskets one page may hold: finding a page's end reads this many index
 * entries before the reply starts. */
#define ROUTES_HISTORY_LIMIT_MAX 10000

/* What a history request asks for, from its query string. */
struct hist_query {
	int64_t from, to;
	enum history_format fmt;
	long limit; /* 0: every basket left */
	bool has_cursor;
	struct store_history_pos after;
};

/* The analyst token, or false with 401 sent. A terminal certificate
 * identifies the lane in the log line; it does not grant these routes. */
static bool routes_need_analyst(struct rq *q)
{
	size_t n = 0;
	const char *tok = httpd_bearer(q->req, &n);

	(void)routes_peer(q);
	if (tok && keyring_analyst_ok(q->r->sh->kr, tok, n))
		return true;
	(void)httpd_add_header(q->req, "WWW-Authenticate", "Bearer");
	routes_error(q, 401, "unauthorized", "this route needs the analyst token");
	return false;
}

static int routes_history_query(struct rq *q, struct hist_query *hq)
{
	struct query qs;
	pos_err e = { 0 };
	int rc = 0;

	memset(hq, 0, sizeof *hq);
	hq->fmt = HISTORY_JSON;
	if (query_parse(httpd_query(q->req), &qs, &e) < 0) {
		routes_error(q, 400, "bad_request", e.msg);
		return -1;
	}
	for (size_t i = 0; i < qs.n && rc == 0; i++) {
		const struct query_param *p = &qs.p[i];

		if (strcmp(p->key, "from") == 0 || strcmp(p->key, "to") == 0) {
			int64_t *dst = p->key[0] == 'f' ? &hq->from : &hq->to;

			if (time_parse_rfc3339(p->value, 1, dst, &e) < 0) {
				char d[96];

				snprintf(d, sizeof d, "%s must be an RFC 3339 time or a date",
					 p->key);
				routes_error(q, 400, "bad_request", d);
				rc = -1;
			}
		} else if (strcmp(p->key, "format") == 0) {
			int f = history_format_parse(p->value);

			if (f < 0) {
				routes_error(q, 400, "bad_request", "format must be json or csv");
				rc = -1;
			}
			hq->fmt = (enum history_format)(f < 0 ? 0 : f);
		} else if (strcmp(p->key, "limit") == 0) {
			char *end = NULL;
			long v = 0;

			if (p->value[0] >= '0' && p->value[0] <= '9' && strlen(p->value) <= 6)
				v = strtol(p->value, &end, 10);
			if (!end || *end || v < 1 || v > ROUTES_HISTORY_LIMIT_MAX) {
				char d[96];

				snprintf(d, sizeof d, "limit must be a whole number from 1 to %d",
					 ROUTES_HISTORY_LIMIT_MAX);
				routes_error(q, 400, "bad_request", d);
				rc = -1;
			}
			hq->limit = v;
		} else if (strcmp(p->key, "cursor") == 0) {
			if (history_cursor_decode(p->value, &hq->after, &e) < 0) {
				routes_error(q, 400, "bad_request", e.msg);
				rc = -1;
			}
			hq->has_cursor = true;
		} else {
			routes_error(q, 400, "bad_request",
				     "unknown query parameter (known: from, to, format, limit, "
				     "cursor)");
			rc = -1;
		}
	}
	if (rc == 0 && hq->from && hq->to && hq->from >= hq->to) {
		routes_error(q, 400, "bad_request", "from must be before to");
		rc = -1;
	}
	return rc;
}

static int routes_history_fill(void *arg, size_t want, httpd_sink put, void *put_arg)
{
	pos_err e = { 0 };
	int rc = history_stream_next(arg, want, put, put_arg, &e);

	/* The status went out already: the log is where a failure shows, and
	 * the client sees the body end without its last chunk. */
	if (rc < 0 && rc != POS_ENOMEM)
		log_error("history_failed", "error=%s", e.msg);
	return rc;
}

static void routes_history_done(void *arg)
{
	history_stream_free(arg);
}

/* The page ends at its limit-th basket; the next page's cursor is that
 * basket's place, given only when a basket follows it. Both ends are
 * places, not counts, so baskets stored meanwhile shift nothing: across
 * pages each basket comes once. */
static int routes_history_page_end(struct rq *q, const char *hhid, const struct hist_query *hq,
				   struct store_history_pos *end, bool *has_end, pos_err *e)
{
	char cur[HISTORY_CURSOR_LEN + 1];
	bool more = false;
	int rc;

	*has_end = false;
	if (!hq->limit)
		return 0;
	rc = store_history_seek(routes_reads(q->r), hhid, hq->from, hq->to,
				hq->has_cursor ? &hq->after : NULL, hq->limit, end, &more, e);
	if (rc == POS_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	*has_end = true;
	if (more) {
		history_cursor_encode(end, cur);
		(void)httpd_add_header(q->req, "Pos-Next-Cursor", cur);
	}
	return 0;
}

static void routes_history(struct rq *q, const char *hhid)
{
	struct store_household hh;
	struct history_stream *hs = NULL;
	struct hist_query hq;
	struct store_history_pos end;
	bool has_end = false;
	pos_err e = { 0 };
	int rc;

	if (!deident_hhid_valid(hhid)) {
		routes_error(q, 400, "bad_request",
			     "hhid must be hh_ and 26 Crockford base32 characters");
		return;
	}
	if (routes_history_query(q, &hq) < 0)
		return;
	/* store_household, not store_household_exists: a household merged
	 * away has no history of its own (it moved to the survivor). */
	if ((rc = store_household(routes_reads(q->r), hhid, &hh, &e)) < 0) {
		if (rc != POS_ENOTFOUND) {
			routes_fail(q, rc, &e);
			return;
		}
		routes_error(q, 404, "unknown_household", "no household has this hhid");
		return;
	}
	if ((rc = routes_history_page_end(q, hhid, &hq, &end, &has_end, &e)) < 0 ||
	    (rc = history_stream_new(routes_reads(q->r), hhid, hq.from, hq.to,
				     hq.has_cursor ? &hq.after : NULL, has_end ? &end : NULL,
				     hq.fmt, &hs, &e)) < 0) {
		routes_fail(q, rc, &e);
		return;
	}
	(void)httpd_add_header(q->req, "Cache-Control", "no-store");
	if (hq.fmt == HISTORY_CSV) {
		char cd[80];

		snprintf(cd, sizeof cd, "attachment; filename=\"history-%s.csv\"", hhid);
		(void)httpd_add_header(q->req, "Content-Disposition", cd);
	}
	metrics_request(q->route, 200);
	log_info("request", "route=%s method=%s status=200 latency_us=%lld store=%s terminal=%s",
		 metrics_route_name(q->route), httpd_method_name(q->req),
		 (long long)(time_mono_us() - q->t0_us), q->store[0] ? q->store : "-",
		 q->terminal[0] ? q->terminal : "-");
	httpd_reply_stream(q->req, 200,
			   hq.fmt == HISTORY_CSV ? "text/csv; charset=utf-8" : "application/json",
			   routes_history_fill, routes_history_done, hs);
}

/* ------------------------------------------------------------ offers */

/* A registration's first use, recorded by the writer (so it never
 * expires); nobody waits for it. */
struct routes_mark {
	struct ingest_job job;
	int64_t device;
	int64_t now_ms;
};

static int routes_op_mark(struct store *s, struct ingest_job *job, pos_err *e)
{
	struct routes_mark *m = job->arg;

	return store_device_mark_used(s, m->device, m->now_ms, e);
}

static void routes_mark_done(struct ingest_job *job)
{
	free(job->arg);
}

static void routes_mark_used(struct rq *q, int64_t device)
{
	struct routes_mark *m = calloc(1, sizeof *m);
	pos_err e = { 0 };

	if (!m)
		return; /* marked at a later request */
	m->device = device;
	m->now_ms = time_now_ms();
	m->job.kind = INGEST_OP;
	m->job.op = routes_op_mark;
	m->job.done = routes_mark_done;
	m->job.arg = m;
	if (ingest_submit(q->r->sh->ingest, &m->job, &e) < 0)
		free(m);
}

/* The device of the request's bearer token, or false with 401 sent. */
static bool routes_need_device(struct rq *q, int64_t *device)
{
	const char *tok;
	size_t len = 0;
	pos_err e = { 0 };
	bool used = true;
	int rc = POS_ENOTFOUND;

	tok = httpd_bearer(q->req, &len);
	if (tok)
		rc = offers_device_auth(q->r->store, tok, len, device, &used, &e);
	if (rc == 0) {
		if (!used)
			routes_mark_used(q, *device);
		return true;
	}
	if (rc == POS_EDB || rc == POS_EAGAIN) {
		routes_fail(q, rc, &e);
		return false;
	}
	(void)httpd_add_header(q->req, "WWW-Authenticate", "Bearer realm=\"offers\"");
	routes_error(q, 401, "unauthorized",
		     tok ? "the device token is not known" : "this route needs a device token");
	return false;
}

static void routes_json_or_fail(struct rq *q, int rc, int status, json_t *v, const pos_err *e)
{
	if (rc < 0)
		routes_fail(q, rc, e);
	else
		routes_send_json(q, status, v);
	json_decref(v);
}

/* Writer thread: the registration, in the group's transaction. */
static int routes_op_register(struct store *s, struct ingest_job *job, pos_err *e)
{
	struct routes_async *a = job->arg;

	return offers_device_register(s, a->now_ms, a->q.r->sh->devices.max_unused, a->token, e);
}

static void routes_answer_register(struct routes_async *a)
{
	struct rq *q = &a->q;
	int rc = a->job.rc < 0 ? a->job.rc : a->job.op_rc;
	const pos_err *e = a->job.rc < 0 ? &a->job.err : &a->job.op_err;
	json_t *v = NULL;
	pos_err oom = { 0 };

	if (rc == POS_ETOOBIG) {
		int64_t now = time_mono_us() / 1000;

		metrics_devices_refused();
		if (!q->r->full_logged_ms || now - q->r->full_logged_ms >= 60000) {
			q->r->full_logged_ms = now;
			log_warn("devices_full", "max_unused=%ld", q->r->sh->devices.max_unused);
		}
		(void)httpd_add_header(q->req, "Retry-After", ROUTES_FULL_RETRY_S);
		routes_error(q, 503, "registrations_full",
			     "central holds its maximum of device registrations never used; "
			     "retry later");
		return;
	}
	if (rc == 0 && !(v = json_pack("{s:s}", "device_token", a->token))) {
		rc = err_set(&oom, POS_ENOMEM, "out of memory");
		e = &oom;
	}
	routes_json_or_fail(q, rc, 201, v, e);
}

/* POST /v1/devices: a phone app registers and gets its token, once. The
 * row is written by the writer, in a group commit. */
static void routes_device_register(struct rq *q)
{
	struct routes_async *a = calloc(1, sizeof *a);

	if (!a) {
		routes_error(q, 500, "internal", "out of memory");
		return;
	}
	a->q = *q;
	a->kind = ASYNC_REGISTER;
	a->now_ms = time_now_ms();
	routes_submit_op(a, routes_op_register);
}

static void routes_offers_open(struct rq *q)
{
	json_t *v = NULL;
	pos_err e = { 0 };
	int rc;

	rc = offers_open_json(q->r->store, q->device, time_now_ms(), &v, &e);
	routes_json_or_fail(q, rc, 200, v, &e);
}

/* Writer thread: the acceptance, in the group's transaction. Run again
 * alone when the group fails, so an earlier answer is dropped first. */
static int routes_op_accept(struct store *s, struct ingest_job *job, pos_err *e)
{
	struct routes_async *a = job->arg;

	json_decref(a->answer);
	a->answer = NULL;
	return offers_accept(s, a->device, a->offer_id, a->now_ms, &a->answer, &a->created, e);
}

static void routes_answer_accept(struct routes_async *a)
{
	struct rq *q = &a->q;
	int rc = a->job.rc < 0 ? a->job.rc : a->job.op_rc;
	json_t *v = a->answer;

	a->answer = NULL;
	if (rc == POS_ENOTFOUND) {
		json_decref(v);
		routes_error(q, 404, "unknown_offer", "no offer has this id");
	} else if (rc == POS_ECONFLICT) {
		json_decref(v);
		routes_error(q, 409, "offer_closed", "this offer has ended or is out of its dates");
	} else {
		routes_json_or_fail(q, rc, a->created ? 201 : 200, v,
				    a->job.rc < 0 ? &a->job.err : &a->job.op_err);
	}
}

/* POST /v1/offers/{id}/accept: an unknown offer is answered at once; the
 * code is written by the writer, in a group commit. */
static void routes_offer_accept(struct rq *q, const char *id)
{
	struct routes_async *a;
	struct store_offer o;
	pos_err e = { 0 };
	int rc;

	if (!offers_id_valid(id) ||
	    (rc = store_offer_get(q->r->store, id, &o, &e)) == POS_ENOTFOUND) {
		routes_error(q, 404, "unknown_offer", "no offer has this id");
		return;
	}
	if (rc < 0) {
		routes_fail(q, rc, &e);
		return;
	}
	if (!(a = calloc(1, sizeof *a))) {
		routes_error(q, 500, "internal", "out of memory");
		return;
	}
	a->q = *q;
	a->kind = ASYNC_ACCEPT;
	a->now_ms = time_now_ms();
	a->device = q->device;
	memcpy(a->offer_id, id, sizeof a->offer_id);
	routes_submit_op(a, routes_op_accept);
}

static void routes_device_offers(struct rq *q)
{
	json_t *v = NULL;
	pos_err e = { 0 };
	int rc;

	rc = offers_sync_json(q->r->store, q->device, time_now_ms(), &v, &e);
	routes_json_or_fail(q, rc, 200, v, &e);
}

/* POST /v1/offers/check: a lane asks while the customer is there. */
static void routes_offer_check(struct rq *q)
{
	static const char *const keys[] = { "code", NULL };
	const char *body, *code = NULL;
	json_t *root = NULL, *v = NULL;
	pos_err e = { 0 };
	size_t len;
	int rc;

	body = httpd_body(q->req, &len);
	if ((rc = jsonx_parse(body, len, ROUTES_CHECK_BODY_MAX, 2, &root, &e)) < 0 ||
	    (rc = json_is_object(root) ? 0 : err_set(&e, POS_EINVAL, "the body must be {\"code\"}")) <
		    0 ||
	    (rc = jsonx_only_keys(root, keys, &e)) < 0 ||
	    (rc = jsonx_str(root, "code", 1, STORE_OFFER_USE_MAX, &code, &e)) < 0) {
		routes_bad_input(q, rc, &e);
		json_decref(root);
		return;
	}
	rc = offers_check_json(q->r->store, code, time_now_ms(), &v, &e);
	routes_json_or_fail(q, rc, 200, v, &e);
	json_decref(root);
}

static void routes_offer_report(struct rq *q)
{
	static const char *const report_keys[] = { "format", NULL };
	struct query qs;
	int fmt = OFFERS_JSON;
	struct evbuffer *b;
	pos_err e = { 0 };
	int rc;

	if (query_parse(httpd_query(q->req), &qs, &e) < 0 ||
	    query_unknown(&qs, report_keys) != NULL ||
	    (qs.n == 1 && (fmt = offers_format_parse(query_get(&qs, "format"))) < 0)) {
		routes_error(q, 400, "bad_request",
			     "the only query parameter is format=csv or format=json");
		return;
	}
	if (!(b = evbuffer_new())) {
		routes_error(q, 500, "internal", "out of memory");
		return;
	}
	rc = offers_report_write(routes_reads(q->r), (enum offers_format)fmt, routes_sink, b, &e);
	if (rc < 0) {
		routes_fail(q, rc, &e);
	} else {
		if (fmt == OFFERS_CSV)
			(void)httpd_add_header(q->req, "Content-Disposition",
					       "attachment; filename=\"offers-report.csv\"");
		routes_send(q, 200,
			    fmt == OFFERS_CSV ? "text/csv; charset=utf-8" : "application/json", b);
	}
	evbuffer_free(b);
}

/* ------------------------------------------------------------ others */

static void routes_metrics(struct rq *q)
{
	pos_err e = { 0 };
	int n = metrics_render(q->r->store, time_now_ms(), q->r->text, METRICS_TEXT_MAX, &e);

	if (n < 0) {
		routes_fail(q, n, &e);
		return;
	}
	routes_send_text(q, 200, "text/plain; version=0.0.4; charset=utf-8", q->r->text,
			 (size_t)n);
}

/* Liveness: the worker's loop answers. Nothing else is looked at, so a
 * full disk never makes a supervisor restart a central that is alive. */
static void routes_health(struct rq *q)
{
	static const char ok[] = "{\"status\":\"ok\"}";

	routes_send_text(q, 200, "application/json", ok, sizeof ok - 1);
}

/* The answer made at start: a terminal refreshes central.pub from it. */
static void routes_keys(struct rq *q)
{
	const char *a = q->r->sh->keys_answer;

	if (!a) {
		routes_error(q, 503, "unavailable", "central's public key was not loaded");
		return;
	}
	routes_send_text(q, 200, "application/json", a, strlen(a));
}

/* A retired key's file name is its kid and ".key" (rotate-key names it). */
static bool routes_kid_file(const char *name, char kid[KEYS_KID_LEN + 1])
{
	size_t n = strlen(name);

	if (n != KEYS_KID_LEN + 4 || strcmp(name + KEYS_KID_LEN, ".key") != 0 ||
	    strspn(name, "0123456789abcdef") != KEYS_KID_LEN)
		return false;
	memcpy(kid, name, KEYS_KID_LEN);
	kid[KEYS_KID_LEN] = '\0';
	return true;
}

int routes_keys_answer(const char *pub, const char *retired, char **out, pos_err *e)
{
	unsigned char pk[32];
	char kid[KEYS_KID_LEN + 1], rk[KEYS_KID_LEN + 1], b64[64];
	json_t *root = NULL, *opens = NULL;
	struct dirent *de;
	DIR *d = NULL;
	int rc;

	*out = NULL;
	if ((rc = keys_load_public(pub, pk, kid, e)) < 0 ||
	    (rc = b64url_encode(pk, sizeof pk, b64, sizeof b64, e)) < 0)
		return rc;
	opens = json_array();
	root = json_object();
	if (!opens || !root || json_array_append_new(opens, json_string(kid)) < 0) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	/* No folder yet: nothing was ever rotated. */
	d = retired ? opendir(retired) : NULL;
	while (d && (de = readdir(d)) != NULL)
		if (routes_kid_file(de->d_name, rk) && strcmp(rk, kid) != 0 &&
		    json_array_size(opens) < KEYRING_MAX_KEYS)
			json_array_append_new(opens, json_string(rk));
	if (json_object_set_new(root, "kid", json_string(kid)) < 0 ||
	    json_object_set_new(root, "public_key", json_string(b64)) < 0 ||
	    json_object_set(root, "opens", opens) < 0 || !(*out = jsonx_dump(root))) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (d)
		closedir(d);
	json_decref(opens);
	json_decref(root);
	return rc;
}

/* Why the database cannot take a write now, or NULL. Looks at the file
 * system only (a few syscalls, no lock): a probe transaction would queue
 * behind the writer's commits on this worker's loop. */
static const char *routes_unwritable(const struct routes_shared *sh, char *buf, size_t cap)
{
	const char *db = sh->database ? sh->database : "";
	const char *slash = strrchr(db, '/');
	char dir[CCONF_PATH_MAX];
	struct statvfs vfs;

	if (!sh->database)
		return NULL;
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash == db ? 1 : slash - db), db);
	if (statvfs(dir, &vfs) != 0)
		return "the database's folder cannot be read";
	if (vfs.f_flag & ST_RDONLY)
		return "the database's file system is mounted read-only";
	if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) != 0 ||
	    faccessat(AT_FDCWD, db, W_OK, AT_EACCESS) != 0)
		return "central may not write the database or its folder";
	if ((unsigned long long)vfs.f_bavail * vfs.f_frsize <
	    (unsigned long long)sh->min_free_mb << 20) {
		snprintf(buf, cap, "less than min_free_disk_mb = %ld MB is free beside the database",
			 sh->min_free_mb);
		return buf;
	}
	return NULL;
}

/* Readiness: 503 while the database cannot take a write, so a load
 * balancer sends lanes elsewhere (they spool meanwhile). */
static void routes_ready(struct rq *q)
{
	static const char ok[] = "{\"status\":\"ready\"}";
	char buf[128];
	const char *why = routes_unwritable(q->r->sh, buf, sizeof buf);

	if (why) {
		(void)httpd_add_header(q->req, "Retry-After", "5");
		routes_error(q, 503, "not_ready", why);
		return;
	}
	routes_send_text(q, 200, "application/json", ok, sizeof ok - 1);
}

/* HEAD is served wherever GET is (RFC 9110 9.3.2): the same handler, and
 * httpd sends the head alone, Content-Length included. */
static bool routes_method_ok(struct rq *q, enum http1_method want)
{
	enum http1_method m = httpd_method(q->req);

	if (m == want || (want == HTTP1_GET && m == HTTP1_HEAD))
		return true;
	(void)httpd_add_header(q->req, "Allow", want == HTTP1_GET ? "GET, HEAD" : "POST");
	routes_error(q, 405, "method_not_allowed",
		     want == HTTP1_GET ? "use GET or HEAD" : "use POST");
	return false;
}

/* The {x} of PREFIX{x}SUFFIX copied into out, or NULL for another path. A
 * segment longer than max is cut to max + 1 characters, so the handler's
 * shape check refuses it. */
static const char *routes_segment(const char *path, const char *prefix, const char *suffix,
				  char *out, size_t max)
{
	size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(path), mid;

	if (n <= pl + sl || strncmp(path, prefix, pl) != 0 || strcmp(path + n - sl, suffix) != 0)
		return NULL;
	mid = n - pl - sl;
	if (memchr(path + pl, '/', mid))
		return NULL;
	if (mid > max)
		mid = max + 1;
	memcpy(out, path + pl, mid);
	out[mid] = '\0';
	return out;
}

/* Who may call a route, checked by routes_handle before the handler. */
enum routes_role {
	ROLE_ANYONE,   /* no credential (limited per address when the route has a class) */
	ROLE_TERMINAL, /* a terminal's certificate, or a store controller's naming a lane:
			* q->store and q->terminal are the lane's */
	ROLE_ANALYST,  /* the analyst bearer token */
	ROLE_DEVICE,   /* a registered device's bearer token: q->device */
};

/* The routes anyone may call (no client certificate, no analyst token)
 * may have a per-address bucket: 1 + their enum routes_rl_class; 0 none. */
#define ROUTES_LIMIT(c) ((signed char)((c) + 1))

/*
 * Every route: an exact path, or PREFIX{arg}SUFFIX when suffix is set,
 * with what routes_handle checks before its handler, in this order: the
 * method, the address's bucket (limit), the caller (role), the body's
 * size (body_max; 0: the server's max_body, which httpd enforces). A
 * handler only does its own work. One row per route; leave out what a
 * route does not need.
 */
struct route {
	const char *path;
	const char *suffix;
	size_t arg_max;
	enum http1_method method;
	enum metrics_route label;
	enum routes_role role;
	signed char limit;
	size_t body_max;
	void (*fn)(struct rq *q);
	void (*fn_arg)(struct rq *q, const char *arg);
};

static const struct route routes_table[] = {
	{ .path = "/v1/resolve", .method = HTTP1_POST, .label = MR_RESOLVE,
	  .role = ROLE_TERMINAL, .fn = routes_resolve },
	{ .path = "/v1/baskets", .method = HTTP1_POST, .label = MR_BASKETS,
	  .role = ROLE_TERMINAL, .fn = routes_basket },
	{ .path = "/v1/baskets:batch", .method = HTTP1_POST, .label = MR_BATCH,
	  .role = ROLE_TERMINAL, .fn = routes_batch },
	{ .path = ROUTES_HH_PREFIX, .suffix = ROUTES_HH_SUFFIX, .arg_max = DEIDENT_ID_LEN,
	  .method = HTTP1_GET, .label = MR_HISTORY, .role = ROLE_ANALYST,
	  .fn_arg = routes_history },
	{ .path = "/v1/devices", .method = HTTP1_POST, .label = MR_DEVICES,
	  .limit = ROUTES_LIMIT(ROUTES_RL_REGISTER), .fn = routes_device_register },
	{ .path = "/v1/devices/me/offers", .method = HTTP1_GET, .label = MR_DEVICE_OFFERS,
	  .role = ROLE_DEVICE, .limit = ROUTES_LIMIT(ROUTES_RL_DEVICE),
	  .fn = routes_device_offers },
	{ .path = "/v1/offers", .method = HTTP1_GET, .label = MR_OFFERS, .role = ROLE_DEVICE,
	  .limit = ROUTES_LIMIT(ROUTES_RL_DEVICE), .fn = routes_offers_open },
	{ .path = "/v1/offers/check", .method = HTTP1_POST, .label = MR_OFFER_CHECK,
	  .role = ROLE_TERMINAL, .body_max = ROUTES_CHECK_BODY_MAX, .fn = routes_offer_check },
	{ .path = "/v1/offers/report", .method = HTTP1_GET, .label = MR_OFFER_REPORT,
	  .role = ROLE_ANALYST, .fn = routes_offer_report },
	{ .path = ROUTES_OFFERS_PREFIX, .suffix = ROUTES_ACCEPT_SUFFIX,
	  .arg_max = STORE_OFFER_ID_LEN, .method = HTTP1_POST, .label = MR_OFFER_ACCEPT,
	  .role = ROLE_DEVICE, .limit = ROUTES_LIMIT(ROUTES_RL_DEVICE),
	  .fn_arg = routes_offer_accept },
	{ .path = "/v1/health", .method = HTTP1_GET, .label = MR_HEALTH, .fn = routes_health },
	{ .path = "/v1/health/ready", .method = HTTP1_GET, .label = MR_READY,
	  .fn = routes_ready },
	{ .path = "/metrics", .method = HTTP1_GET, .label = MR_METRICS, .fn = routes_metrics },
	{ .path = "/v1/keys", .method = HTTP1_GET, .label = MR_KEYS, .role = ROLE_TERMINAL,
	  .fn = routes_keys },
};

/* The per-address bucket of the route's class: false with 429 sent when
 * it is empty. An address the kernel cannot tell is not limited (the
 * connection is gone anyway). */
static bool routes_limit_ok(struct rq *q, int limit)
{
	unsigned cls = (unsigned)(limit - 1);
	unsigned char key[RATELIMIT_KEY_LEN];
	const struct sockaddr *sa;
	socklen_t len = 0;
	char ra[24];
	bool evicted = false;
	long wait;

	if (!q->r->sh->rl || !(sa = httpd_peer_addr(q->req, &len)) ||
	    ratelimit_key(sa, len, key) < 0)
		return true;
	wait = ratelimit_take(q->r->sh->rl, cls, key, time_mono_us(), &evicted);
	if (evicted)
		metrics_ratelimit_evicted();
	if (wait == 0)
		return true;
	metrics_ratelimited(cls == ROUTES_RL_REGISTER ? MRC_REGISTER : MRC_DEVICE);
	snprintf(ra, sizeof ra, "%ld", wait);
	(void)httpd_add_header(q->req, "Retry-After", ra);
	routes_error(q, 429, "rate_limited",
		     "too many requests from this address; retry after the seconds in Retry-After");
	return false;
}

/* The route's role: false with the refusal sent. */
static bool routes_caller_ok(struct rq *q, const struct route *rt)
{
	switch (rt->role) {
	case ROLE_TERMINAL:
		return routes_need_terminal(q);
	case ROLE_ANALYST:
		return routes_need_analyst(q);
	case ROLE_DEVICE:
		return routes_need_device(q, &q->device);
	case ROLE_ANYONE:
		break;
	}
	return true;
}

/* The route's own body cap, below the server's: false with 413 sent. */
static bool routes_body_ok(struct rq *q, const struct route *rt)
{
	char d[96];
	size_t len = 0;

	if (!rt->body_max)
		return true;
	(void)httpd_body(q->req, &len);
	if (len <= rt->body_max)
		return true;
	snprintf(d, sizeof d, "the body is over %zu bytes", rt->body_max);
	routes_error(q, 413, "too_large", d);
	return false;
}

void routes_refused(void *arg, int status, const char *detail, struct httpd_refusal_reply *out)
{
	const char *code = status == 413 || status == 431 ? "too_large"
			   : status == 501		  ? "not_implemented"
			   : status == 500		  ? "internal"
			   : status == 503		  ? "unavailable"
							  : "bad_request";
	int n;

	(void)arg;
	metrics_request(MR_OTHER, status);
	/* detail is the httpd's own text and never quotes the request. */
	n = snprintf(out->body, sizeof out->body, "{\"error\":\"%s\",\"detail\":\"%s\"}", code,
		     detail);
	out->ctype = "application/json";
	out->len = n > 0 && (size_t)n < sizeof out->body ? (size_t)n : 0;
}

void routes_handle(struct httpd_req *req, void *arg)
{
	struct routes *r = arg;
	struct rq q = { .r = r, .req = req, .route = MR_OTHER, .t0_us = time_mono_us() };
	const char *path = httpd_path(req);
	/* The longest path argument (an hhid or an offer id), plus one and a NUL. */
	char seg[(DEIDENT_ID_LEN > STORE_OFFER_ID_LEN ? DEIDENT_ID_LEN : STORE_OFFER_ID_LEN) + 2];

	if (r->sh->analyst && analyst_path(path)) {
		analyst_handle(r->sh->analyst, routes_reads(r), req);
		return;
	}
	for (size_t i = 0; i < sizeof routes_table / sizeof routes_table[0]; i++) {
		const struct route *rt = &routes_table[i];
		const char *id = NULL;

		if (rt->suffix) {
			id = routes_segment(path, rt->path, rt->suffix, seg, rt->arg_max);
			if (!id)
				continue;
		} else if (strcmp(path, rt->path) != 0) {
			continue;
		}
		q.route = rt->label;
		if (!routes_method_ok(&q, rt->method) ||
		    (rt->limit && !routes_limit_ok(&q, rt->limit)) || !routes_caller_ok(&q, rt) ||
		    !routes_body_ok(&q, rt))
			return;
		if (rt->fn_arg)
			rt->fn_arg(&q, id);
		else
			rt->fn(&q);
		return;
	}
	routes_error(&q, 404, "not_found", "no such route");
}

/* ------------------------------------------------------------ lifetime */

void routes_set_reads(struct routes *r, struct store *reads)
{
	r->reads = reads;
}

int routes_new(struct event_base *base, struct store *store, struct keys_chan *keys,
	       const struct routes_shared *sh, struct routes **out, pos_err *e)
{
	struct routes *r;
	int rc;

	*out = NULL;
	r = calloc(1, sizeof *r);
	if (!r)
		return err_set(e, POS_ENOMEM, "routes: out of memory");
	r->base = base;
	r->store = store;
	r->keys = keys;
	r->sh = sh;
	pthread_mutex_init(&r->mu, NULL);
	r->text = malloc(METRICS_TEXT_MAX);
	r->done_ev = event_new(base, -1, 0, routes_done_cb, r);
	r->reads_end_ev = event_new(base, -1, 0, routes_reads_end_cb, r);
	r->lookup_ev = event_new(base, -1, 0, routes_lookup_cb, r);
	r->opened_tail = &r->opened;
	if (!r->text || !r->done_ev || !r->reads_end_ev || !r->lookup_ev) {
		routes_free(r);
		return err_set(e, POS_ENOMEM, "routes: out of memory");
	}
	if (keys && (rc = keys_async_new(base, keys, &sh->keys_async, &r->opens, e)) < 0) {
		routes_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void routes_free(struct routes *r)
{
	if (!r)
		return;
	if (r->done_ev)
		event_free(r->done_ev);
	if (r->reads_end_ev) {
		store_reads_end(r->store);
		event_free(r->reads_end_ev);
	}
	if (r->lookup_ev)
		event_free(r->lookup_ev);
	for (struct routes_opening *o = r->opened, *next; o; o = next) {
		next = o->next;
		wipe(o->idx, sizeof o->idx);
		free(o);
	}
	keys_async_free(r->opens);
	pthread_mutex_destroy(&r->mu);
	free(r->text);
	free(r);
}

size_t routes_waiting(const struct routes *r)
{
	return r ? r->waiting : 0;
}
