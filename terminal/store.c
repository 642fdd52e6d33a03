#include "store.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "ids.h"
#include "jsonx.h"
#include "log.h"
#include "spool.h"
#include "svc.h"
#include "timeutil.h"
#include "tlog.h"
#include "uplink.h"
#include "uuid.h"

#define STORE_CONTROLLER_CN "store-controller"
/* A lane's resolve budget is at most 10 s (terminal.conf); the lane gives
 * up on its own before this. */
#define STORE_RELAY_TIMEOUT_MS 10000L
#define STORE_RELAY_BODY_MAX (64 * 1024)
/* A lane's batch is at most 1 MB (its uplink's cap) plus framing. */
#define STORE_BODY_MAX (2 * 1024 * 1024)
#define STORE_BATCH_MAX 500
#define STORE_BATCH_DEPTH 6
#define STORE_LANES_MAX 256
#define STORE_TICK_S 2
#define STORE_PRUNE_EVERY_MS (3600L * 1000)
#define STORE_DAY_MS (86400LL * 1000)

struct store_lane_seen {
	char id[TLOG_ID_MAX + 1];
	int64_t last_ms;
};

/* Counters for /metrics, by what happened. */
struct store_counts {
	long created, duplicate, conflict, invalid, tlog_failed;
	long relayed, relay_failed;
	long refused_no_cert, refused_wrong_store, refused_controller;
	long forwarded, forward_refused;
};

struct store {
	const struct sconf *cfg;
	struct event_base *base;
	struct svc *svc;
	SSL_CTX *ctx;
	struct evhttp *evh;
	struct http *up;
	struct uplink *uplink;
	struct tlog *tlog;
	struct event *sigterm, *sigint, *tick, *commit;
	int stop_signal;
	int central_down;
	int64_t pruned_ms;
	struct store_counts n;
	struct store_lane_seen lanes[STORE_LANES_MAX];
	size_t nlanes;
};

/* One relayed request waiting for central. */
struct store_relay {
	struct store *s;
	struct evhttp_request *req;
	char lane[TLOG_ID_MAX + 1];
	char path[32];
	int64_t t0_us;
};

/* ------------------------------------------------------------ replies */

static void store_reply(struct evhttp_request *req, int status, const char *ctype,
			const char *body, size_t len)
{
	struct evbuffer *out = evbuffer_new();

	if (out)
		evbuffer_add(out, body, len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	evhttp_send_reply(req, status, NULL, out);
	evbuffer_free(out);
}

static void store_reply_json(struct evhttp_request *req, int status, json_t *v)
{
	char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;

	if (!text) {
		static const char fail[] = "{\"error\":\"internal\",\"detail\":\"out of memory\"}";
		store_reply(req, 500, "application/json", fail, sizeof fail - 1);
		return;
	}
	store_reply(req, status, "application/json", text, strlen(text));
	free(text);
}

static void store_error(struct evhttp_request *req, int status, const char *code,
			const char *detail)
{
	json_t *v = json_pack("{s:s, s:s}", "error", code, "detail", detail ? detail : "");

	store_reply_json(req, status, v);
	json_decref(v);
}

/* ------------------------------------------------------------ lanes */

static void store_seen(struct store *s, const char *lane)
{
	size_t i;

	for (i = 0; i < s->nlanes; i++)
		if (strcmp(s->lanes[i].id, lane) == 0)
			break;
	if (i == s->nlanes) {
		if (s->nlanes >= STORE_LANES_MAX)
			return; /* the metric then says "at least" */
		snprintf(s->lanes[i].id, sizeof s->lanes[i].id, "%s", lane);
		s->nlanes++;
	}
	s->lanes[i].last_ms = time_now_ms();
}

static SSL *store_ssl(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;

	return bev ? bufferevent_openssl_get_ssl(bev) : NULL;
}

/* The subject entry nid when it is there once and is an id. */
static int store_name_entry(X509 *cert, int nid, char out[TLOG_ID_MAX + 1])
{
	X509_NAME *name = X509_get_subject_name(cert);
	int i = name ? X509_NAME_get_index_by_NID(name, nid, -1) : -1;
	const ASN1_STRING *v;
	int n;

	out[0] = '\0';
	if (i < 0 || X509_NAME_get_index_by_NID(name, nid, i) >= 0)
		return -1;
	v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	n = v ? ASN1_STRING_length(v) : 0;
	if (n < 1 || n > TLOG_ID_MAX)
		return -1;
	memcpy(out, ASN1_STRING_get0_data(v), (size_t)n);
	out[n] = '\0';
	if (strlen(out) != (size_t)n || !ids_valid(out)) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/* The lane of a request: a verified certificate of the CA whose OU is this
 * store. Answers the refusal itself and returns -1 otherwise. */
static int store_lane(struct store *s, struct evhttp_request *req, char lane[TLOG_ID_MAX + 1])
{
	SSL *ssl = store_ssl(req);
	X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	char ou[TLOG_ID_MAX + 1], detail[256];

	if (!cert || SSL_get_verify_result(ssl) != X509_V_OK ||
	    store_name_entry(cert, NID_organizationalUnitName, ou) < 0 ||
	    store_name_entry(cert, NID_commonName, lane) < 0) {
		s->n.refused_no_cert++;
		store_error(req, 401, "client_certificate_required",
			    "this route needs a lane certificate issued by the retailer's CA");
		return -1;
	}
	if (strcmp(ou, s->cfg->store) != 0) {
		s->n.refused_wrong_store++;
		log_warn("lane_refused", "reason=wrong_store lane_store=%s terminal=%s", ou, lane);
		snprintf(detail, sizeof detail,
			 "this is the controller of store %s; the certificate is of store %s",
			 s->cfg->store, ou);
		store_error(req, 403, "wrong_store", detail);
		return -1;
	}
	if (strcmp(lane, STORE_CONTROLLER_CN) == 0) {
		s->n.refused_controller++;
		store_error(req, 403, "not_a_lane", "a controller's certificate is not a lane's");
		return -1;
	}
	store_seen(s, lane);
	return 0;
}

/* ------------------------------------------------------------ relay */

static void store_on_relayed(long status, const char *body, size_t len, const char *errmsg,
			     void *arg)
{
	struct store_relay *r = arg;
	struct store *s = r->s;
	long ms = (long)((time_mono_us() - r->t0_us) / 1000);
	char q[160];

	if (status == 0) {
		s->n.relay_failed++;
		log_warn("relay_failed", "path=%s terminal=%s ms=%ld error=%s", r->path, r->lane, ms,
			 log_q(q, sizeof q, errmsg));
		store_error(r->req, 502, "central_unreachable",
			    "the store's controller cannot reach central now");
	} else {
		s->n.relayed++;
		log_debug("relayed", "path=%s terminal=%s status=%ld ms=%ld", r->path, r->lane, status,
			  ms);
		store_reply(r->req, (int)status, "application/json", body ? body : "", len);
	}
	free(r);
}

/* Central opens the EncTID with this store, the lane named here and the
 * txn: exactly as if the lane had asked itself. GET /v1/keys goes the same
 * way: the controller holds no key of its own to hand out, so the lanes
 * behind it learn central's from central. */
static void store_relay(struct store *s, struct evhttp_request *req, const char *path, bool get)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	struct store_relay *r = NULL;
	char *body = NULL;
	pos_err e;

	r = calloc(1, sizeof *r);
	if (!r) {
		store_error(req, 503, "unavailable", "out of memory");
		return;
	}
	if (store_lane(s, req, r->lane) < 0)
		goto out;
	if (!get && (len == 0 || len > STORE_RELAY_BODY_MAX)) {
		store_error(req, len ? 413 : 400, len ? "too_large" : "bad_request",
			    len ? "the body is too large" : "the body is empty");
		goto out;
	}
	if (!get)
		body = (char *)evbuffer_pullup(in, -1);
	r->s = s;
	r->req = req;
	r->t0_us = time_mono_us();
	snprintf(r->path, sizeof r->path, "%s", path);
	if ((get ? http_get_as(s->up, path, r->lane, STORE_RELAY_TIMEOUT_MS, store_on_relayed, r,
			       &e)
		 : http_post_as(s->up, path, r->lane, body, len, STORE_RELAY_TIMEOUT_MS,
				store_on_relayed, r, &e)) < 0) {
		s->n.relay_failed++;
		store_error(req, 502, "central_unreachable", e.msg);
		goto out;
	}
	return;
out:
	free(r);
}

/* ------------------------------------------------------------ baskets */

/* Logs one basket; 0 with *status set (201, 200), or a refusal with
 * code and e set (*status 400, 409 or 503). */
static int store_log_basket(struct store *s, const char *lane, struct tlog_basket *b,
			    int *status, const char **code, pos_err *e)
{
	enum tlog_put_result res;
	int rc = tlog_put(s->tlog, lane, b, time_now_ms(), &res, e);

	if (rc == POS_ECONFLICT) {
		s->n.conflict++;
		*status = 409;
		*code = "conflict";
		return rc;
	}
	if (rc < 0) {
		char q[300];
		s->n.tlog_failed++;
		log_error("tlog_failed", "terminal=%s txn=%s error=%s", lane, b->txn,
			  log_q(q, sizeof q, e->msg));
		*status = 503;
		*code = "unavailable";
		err_set(e, rc, "the store's transaction log cannot take baskets now");
		return rc;
	}
	if (res == TLOG_CREATED) {
		s->n.created++;
		*status = 201;
		log_info("logged", "terminal=%s txn=%s units=%ld", lane, b->txn, b->units);
	} else {
		s->n.duplicate++;
		*status = 200;
	}
	return 0;
}

static void store_basket(struct store *s, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	struct tlog_basket b = { 0 };
	char lane[TLOG_ID_MAX + 1];
	const char *code = NULL;
	int status = 0, rc;
	pos_err e;

	if (store_lane(s, req, lane) < 0)
		return;
	rc = tlog_basket_parse((const char *)evbuffer_pullup(in, -1), len, &b, &e);
	if (rc < 0) {
		s->n.invalid++;
		store_error(req, rc == POS_ETOOBIG ? 413 : 400,
			    rc == POS_ETOOBIG ? "too_large" : "bad_request", e.msg);
		return;
	}
	if (store_log_basket(s, lane, &b, &status, &code, &e) < 0) {
		store_error(req, status, code, e.msg);
	} else {
		json_t *v = json_pack("{s:s, s:s}", "txn", b.txn, "status",
				      status == 201 ? "created" : "duplicate");
		store_reply_json(req, status, v);
		json_decref(v);
		uplink_kick(s->uplink);
	}
	tlog_basket_clear(&b);
}

/* {"baskets":[...]}: each basket gets its own verdict, as from central;
 * the valid ones are committed together (one fsync) before the answer. */
static void store_batch(struct store *s, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in), i, n = 0, k = 0;
	json_t *root = NULL, *arr, *it, *out = NULL, *results, **bad = NULL;
	struct tlog_basket *b = NULL;
	enum tlog_put_result *res = NULL;
	char lane[TLOG_ID_MAX + 1], q[300];
	pos_err e;
	int rc;

	if (store_lane(s, req, lane) < 0)
		return;
	rc = jsonx_parse((const char *)evbuffer_pullup(in, -1), len, STORE_BODY_MAX,
			 STORE_BATCH_DEPTH, &root, &e);
	arr = rc == 0 && json_is_object(root) ? json_object_get(root, "baskets") : NULL;
	if (!json_is_array(arr) || json_array_size(arr) < 1 ||
	    json_array_size(arr) > STORE_BATCH_MAX) {
		s->n.invalid++;
		store_error(req, 400, "bad_request",
			    rc < 0 ? e.msg : "the body must be {\"baskets\":[1 to 500 baskets]}");
		goto done;
	}
	n = json_array_size(arr);
	b = calloc(n, sizeof *b);
	res = calloc(n, sizeof *res);
	bad = calloc(n, sizeof *bad);
	out = json_object();
	results = json_array();
	if (!b || !res || !bad || !out || !results ||
	    json_object_set_new(out, "results", results) < 0) {
		store_error(req, 503, "unavailable", "out of memory");
		goto done;
	}
	/* Valid baskets are packed at the front of b, in order; bad[i] holds
	 * the verdict of an invalid one. */
	json_array_foreach(arr, i, it) {
		const char *txn = NULL;

		if (tlog_basket_from_json(it, &b[k], &e) == 0) {
			k++;
			continue;
		}
		s->n.invalid++;
		if (json_is_object(it) && json_is_string(json_object_get(it, "txn")))
			txn = json_string_value(json_object_get(it, "txn"));
		bad[i] = json_pack("{s:s?, s:s, s:s, s:s}", "txn", txn && uuid_valid(txn) ? txn : NULL,
				   "status", "invalid", "error", "bad_request", "detail", e.msg);
		if (!bad[i]) {
			store_error(req, 503, "unavailable", "out of memory");
			goto done;
		}
	}
	if (k > 0 && (rc = tlog_put_batch(s->tlog, lane, b, k, time_now_ms(), res, &e)) < 0) {
		/* Nothing of the batch is logged: the lane keeps it and retries. */
		s->n.tlog_failed += (long)k;
		log_error("tlog_failed", "terminal=%s baskets=%zu error=%s", lane, k,
			  log_q(q, sizeof q, e.msg));
		store_error(req, 503, "unavailable", "the store's transaction log cannot take baskets now");
		goto done;
	}
	k = 0;
	for (i = 0; i < n; i++) {
		json_t *r = bad[i];

		bad[i] = NULL;
		if (!r) {
			const struct tlog_basket *x = &b[k];
			enum tlog_put_result v = res[k++];

			if (v == TLOG_CREATED) {
				s->n.created++;
				log_info("logged", "terminal=%s txn=%s units=%ld", lane, x->txn, x->units);
				r = json_pack("{s:s, s:s}", "txn", x->txn, "status", "created");
			} else if (v == TLOG_DUPLICATE) {
				s->n.duplicate++;
				r = json_pack("{s:s, s:s}", "txn", x->txn, "status", "duplicate");
			} else {
				s->n.conflict++;
				r = json_pack("{s:s, s:s, s:s}", "txn", x->txn, "status", "conflict",
					      "error", "conflict");
			}
		}
		if (!r || json_array_append_new(results, r) < 0) {
			/* Logged already: the lane's retry hears 200 for each. */
			store_error(req, 503, "unavailable", "out of memory");
			goto done;
		}
	}
	store_reply_json(req, 200, out);
	uplink_kick(s->uplink);
done:
	if (b)
		for (i = 0; i < n; i++)
			tlog_basket_clear(&b[i]);
	if (bad)
		for (i = 0; i < n; i++)
			json_decref(bad[i]);
	free(b);
	free(res);
	free(bad);
	json_decref(out);
	json_decref(root);
}

/* ------------------------------------------------------------ health, metrics */

static void store_health(struct store *s, struct evhttp_request *req)
{
	struct tlog_stats st;
	pos_err e;
	json_t *v;

	if (tlog_stats(s->tlog, &st, &e) < 0) {
		store_error(req, 503, "unavailable", "the transaction log cannot be read");
		return;
	}
	v = json_pack("{s:s, s:s, s:s, s:I, s:I}", "status", "ok", "store", s->cfg->store,
		      "central", s->central_down ? "unreachable" : "up", "queue",
		      (json_int_t)st.unsent, "set_aside", (json_int_t)st.rejected);
	store_reply_json(req, 200, v);
	json_decref(v);
}

static void store_metrics(struct store *s, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();
	struct tlog_stats st = { 0 };
	int64_t now = time_now_ms();
	pos_err e;
	int ok = tlog_stats(s->tlog, &st, &e) == 0;

	if (!b) {
		store_error(req, 503, "unavailable", "out of memory");
		return;
	}
	evbuffer_add_printf(b,
			    "# HELP pos_store_queue_depth Baskets logged and not yet taken by central.\n"
			    "# TYPE pos_store_queue_depth gauge\n"
			    "pos_store_queue_depth %ld\n"
			    "# HELP pos_store_oldest_unsent_seconds Age of the oldest basket not yet "
			    "taken by central.\n"
			    "# TYPE pos_store_oldest_unsent_seconds gauge\n"
			    "pos_store_oldest_unsent_seconds %.3f\n"
			    "# HELP pos_store_set_aside Baskets central refused for good.\n"
			    "# TYPE pos_store_set_aside gauge\n"
			    "pos_store_set_aside %ld\n"
			    "# HELP pos_store_tlog_baskets Baskets in the transaction log.\n"
			    "# TYPE pos_store_tlog_baskets gauge\n"
			    "pos_store_tlog_baskets %ld\n"
			    "# HELP pos_store_tlog_readable 1 when the log answered this scrape.\n"
			    "# TYPE pos_store_tlog_readable gauge\n"
			    "pos_store_tlog_readable %d\n"
			    "# HELP pos_store_lanes_seen Lanes that talked to this controller since "
			    "it started.\n"
			    "# TYPE pos_store_lanes_seen gauge\n"
			    "pos_store_lanes_seen %zu\n"
			    "# HELP pos_store_central_up 1 while central takes the forwarded baskets.\n"
			    "# TYPE pos_store_central_up gauge\n"
			    "pos_store_central_up %d\n",
			    st.unsent,
			    st.oldest_unsent_ms && now > st.oldest_unsent_ms
				    ? (double)(now - st.oldest_unsent_ms) / 1000.0
				    : 0.0,
			    st.rejected, st.total, ok, s->nlanes, !s->central_down);
	evbuffer_add_printf(b,
			    "# HELP pos_store_baskets_total Baskets from lanes by result.\n"
			    "# TYPE pos_store_baskets_total counter\n"
			    "pos_store_baskets_total{result=\"created\"} %ld\n"
			    "pos_store_baskets_total{result=\"duplicate\"} %ld\n"
			    "pos_store_baskets_total{result=\"conflict\"} %ld\n"
			    "pos_store_baskets_total{result=\"invalid\"} %ld\n"
			    "pos_store_baskets_total{result=\"tlog_failed\"} %ld\n"
			    "# HELP pos_store_relay_total Resolves and offer checks relayed to central.\n"
			    "# TYPE pos_store_relay_total counter\n"
			    "pos_store_relay_total{result=\"answered\"} %ld\n"
			    "pos_store_relay_total{result=\"unreachable\"} %ld\n"
			    "# HELP pos_store_refused_total Requests refused for their certificate.\n"
			    "# TYPE pos_store_refused_total counter\n"
			    "pos_store_refused_total{reason=\"no_certificate\"} %ld\n"
			    "pos_store_refused_total{reason=\"wrong_store\"} %ld\n"
			    "pos_store_refused_total{reason=\"not_a_lane\"} %ld\n"
			    "# HELP pos_store_forwarded_total Baskets central took or refused.\n"
			    "# TYPE pos_store_forwarded_total counter\n"
			    "pos_store_forwarded_total{result=\"taken\"} %ld\n"
			    "pos_store_forwarded_total{result=\"refused\"} %ld\n",
			    s->n.created, s->n.duplicate, s->n.conflict, s->n.invalid,
			    s->n.tlog_failed, s->n.relayed, s->n.relay_failed, s->n.refused_no_cert,
			    s->n.refused_wrong_store, s->n.refused_controller, s->n.forwarded,
			    s->n.forward_refused);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, NULL, b);
	evbuffer_free(b);
}

/* ------------------------------------------------------------ routing */

static void store_on_request(struct evhttp_request *req, void *arg)
{
	struct store *s = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);

	/* An answer leaves as several TLS records: without TCP_NODELAY the
	 * last one waits for the lane's delayed ACK (40 ms on Linux). */
	{
		struct evhttp_connection *c = evhttp_request_get_connection(req);
		struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
		evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
		int one = 1;

		if (fd >= 0)
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	if (!path) {
		store_error(req, 400, "bad_request", "no path");
		return;
	}
	if (strcmp(path, "/v1/health") == 0 && m == EVHTTP_REQ_GET)
		store_health(s, req);
	else if (strcmp(path, "/metrics") == 0 && m == EVHTTP_REQ_GET)
		store_metrics(s, req);
	else if (strcmp(path, "/v1/baskets") == 0 && m == EVHTTP_REQ_POST)
		store_basket(s, req);
	else if (strcmp(path, "/v1/baskets:batch") == 0 && m == EVHTTP_REQ_POST)
		store_batch(s, req);
	else if ((strcmp(path, "/v1/resolve") == 0 || strcmp(path, "/v1/offers/check") == 0) &&
		 m == EVHTTP_REQ_POST)
		store_relay(s, req, path, false);
	else if (strcmp(path, "/v1/keys") == 0 && m == EVHTTP_REQ_GET)
		store_relay(s, req, path, true);
	else if (strcmp(path, "/v1/health") == 0 || strcmp(path, "/metrics") == 0 ||
		 strcmp(path, "/v1/keys") == 0 ||
		 strcmp(path, "/v1/baskets") == 0 || strcmp(path, "/v1/baskets:batch") == 0 ||
		 strcmp(path, "/v1/resolve") == 0 || strcmp(path, "/v1/offers/check") == 0)
		store_error(req, 405, "method_not_allowed", "this route takes another method");
	else
		store_error(req, 404, "not_found", "a store controller serves the lane routes only");
}

/* ------------------------------------------------------------ forwarding */

static int store_q_peek(void *q, size_t max, struct spool_row **rows, size_t *n,
			char as[UPLINK_AS_MAX + 1], pos_err *e)
{
	struct store *s = q;

	return tlog_peek(s->tlog, max, rows, n, as, e);
}

/* Central's verdicts on one forwarded batch are written in one transaction
 * committed when the loop turns (store_on_commit), or with the next lane
 * batch: one fsync per batch instead of one per basket. Losing them in a
 * crash only sends those baskets again, and central answers 200. */
static int store_q_open(struct store *s, pos_err *e)
{
	int rc;

	if (tlog_pending(s->tlog))
		return 0;
	if ((rc = tlog_begin(s->tlog, e)) < 0)
		return rc;
	event_active(s->commit, EV_TIMEOUT, 0);
	return 0;
}

static int store_q_acked(void *q, const char *txn, const char *how, pos_err *e)
{
	struct store *s = q;
	int rc = store_q_open(s, e);

	return rc < 0 ? rc : tlog_mark_sent(s->tlog, txn, how, time_now_ms(), e);
}

static int store_q_refused(void *q, const char *txn, const char *reason, pos_err *e)
{
	struct store *s = q;
	int rc = store_q_open(s, e);

	return rc < 0 ? rc : tlog_set_rejected(s->tlog, txn, reason, e);
}

static int store_q_attempted(void *q, const char *txn, pos_err *e)
{
	struct store *s = q;
	int rc = store_q_open(s, e);

	return rc < 0 ? rc : tlog_note_attempt(s->tlog, txn, e);
}

static void store_on_commit(evutil_socket_t fd, short what, void *arg)
{
	struct store *s = arg;
	pos_err e;
	char q[300];

	(void)fd;
	(void)what;
	if (tlog_commit(s->tlog, &e) < 0)
		log_warn("tlog_commit_failed", "error=%s (those baskets are sent again)",
			 log_q(q, sizeof q, e.msg));
}

static void store_on_uplink(enum uplink_event ev, const char *txn, const char *detail, void *arg)
{
	struct store *s = arg;
	char q[200];

	switch (ev) {
	case UPLINK_UPLOADED:
		s->n.forwarded++;
		log_debug("forwarded", "txn=%s result=%s", txn, detail ? detail : "");
		break;
	case UPLINK_REJECTED:
		s->n.forward_refused++;
		log_warn("forward_refused", "txn=%s reason=%s", txn, log_q(q, sizeof q, detail));
		break;
	case UPLINK_OFFLINE:
		s->central_down = 1;
		log_warn("central_unreachable", "error=%s", log_q(q, sizeof q, detail));
		break;
	case UPLINK_ONLINE:
		s->central_down = 0;
		log_info("central_reachable", "url=%s", http_current_url(s->up));
		break;
	}
}

/* Keeps the log to keep_days and sends what replay marked; idle cost one
 * indexed lookup every few seconds. */
static void store_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct store *s = arg;
	int64_t now = time_now_ms();
	long n = 0;
	pos_err e;
	char q[300];

	(void)fd;
	(void)what;
	if (now - s->pruned_ms >= STORE_PRUNE_EVERY_MS) {
		s->pruned_ms = now;
		if (tlog_prune(s->tlog, now - s->cfg->keep_days * STORE_DAY_MS, &n, &e) < 0)
			log_warn("prune_failed", "error=%s", log_q(q, sizeof q, e.msg));
		else if (n > 0)
			log_info("pruned", "baskets=%ld keep_days=%ld", n, s->cfg->keep_days);
	}
	uplink_kick(s->uplink);
}

static void store_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct store *s = arg;

	(void)what;
	s->stop_signal = (int)sig;
	/* Callbacks run one at a time: a log commit is never cut in half. */
	event_base_loopbreak(s->base);
}

/* ------------------------------------------------------------ run */

static struct bufferevent *store_bevcb(struct event_base *base, void *arg)
{
	struct store *s = arg;
	SSL *ssl = SSL_new(s->ctx);
	struct bufferevent *bev;

	if (!ssl)
		return NULL;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* TLS 1.3; a client certificate is asked for and verified against the CA
 * when sent; the lane routes refuse a request without one. */
static int store_tls(struct store *s, pos_err *e)
{
	const struct sconf *c = s->cfg;
	unsigned char sid[] = "pos-store";

	s->ctx = SSL_CTX_new(TLS_server_method());
	if (!s->ctx)
		return err_set(e, POS_ENOMEM, "cannot create the TLS context");
	SSL_CTX_set_min_proto_version(s->ctx, TLS1_3_VERSION);
	if (SSL_CTX_use_certificate_chain_file(s->ctx, c->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(s->ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(s->ctx) != 1) {
		ERR_clear_error();
		return err_set(e, POS_ECRYPTO, "[tls] cert and key: cannot load %s with %s",
			       c->tls_cert, c->tls_key);
	}
	if (SSL_CTX_load_verify_locations(s->ctx, c->tls_ca, NULL) != 1) {
		ERR_clear_error();
		return err_set(e, POS_ECRYPTO, "[tls] ca: cannot load %s", c->tls_ca);
	}
	SSL_CTX_set_client_CA_list(s->ctx, SSL_load_client_CA_file(c->tls_ca));
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_id_context(s->ctx, sid, sizeof sid - 1);
	return 0;
}

static void store_teardown(struct store *s)
{
	svc_free(s->svc);
	if (s->evh)
		evhttp_free(s->evh);
	uplink_free(s->uplink);
	http_free(s->up);
	if (s->tlog)
		store_on_commit(-1, 0, s);
	tlog_close(s->tlog);
	SSL_CTX_free(s->ctx);
	if (s->tick)
		event_free(s->tick);
	if (s->commit)
		event_free(s->commit);
	if (s->sigterm)
		event_free(s->sigterm);
	if (s->sigint)
		event_free(s->sigint);
	if (s->base)
		event_base_free(s->base);
}

static int store_start(struct store *s, pos_err *e)
{
	const struct sconf *c = s->cfg;
	struct uplink_queue q;
	struct http_opts ho;
	struct timeval tv = { STORE_TICK_S, 0 };
	int rc;

	if ((rc = sconf_check_files(c, e)) < 0)
		return rc;
	s->base = event_base_new();
	if (!s->base)
		return err_set(e, POS_ENOMEM, "cannot create the event loop");
	if ((rc = tlog_open(c->tlog, &s->tlog, e)) < 0 || (rc = store_tls(s, e)) < 0)
		return rc;
	ho = (struct http_opts){ .base_url = c->url, .ca = c->ca, .cert = c->cert, .key = c->key };
	q = (struct uplink_queue){ .q = s,
				   .peek = store_q_peek,
				   .acked = store_q_acked,
				   .refused = store_q_refused,
				   .attempted = store_q_attempted };
	if ((rc = http_new(s->base, &ho, &s->up, e)) < 0 ||
	    (rc = uplink_new_queue(s->base, s->up, &q, store_on_uplink, s, &s->uplink, e)) < 0)
		return rc;
	s->evh = evhttp_new(s->base);
	if (!s->evh)
		return err_set(e, POS_ENOMEM, "cannot create the HTTP server");
	evhttp_set_bevcb(s->evh, store_bevcb, s);
	evhttp_set_gencb(s->evh, store_on_request, s);
	evhttp_set_allowed_methods(s->evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_max_body_size(s->evh, STORE_BODY_MAX);
	evhttp_set_max_headers_size(s->evh, 16 * 1024);
	evhttp_set_timeout(s->evh, 60);
	if (evhttp_bind_socket(s->evh, c->host[0] ? c->host : "0.0.0.0",
			       (ev_uint16_t)atoi(c->port)) != 0)
		return err_set(e, POS_EIO, "[listen] address: cannot listen on %s", c->listen);
	s->sigterm = evsignal_new(s->base, SIGTERM, store_on_signal, s);
	s->sigint = evsignal_new(s->base, SIGINT, store_on_signal, s);
	s->tick = event_new(s->base, -1, EV_PERSIST, store_on_tick, s);
	s->commit = event_new(s->base, -1, 0, store_on_commit, s);
	if (!s->sigterm || !s->sigint || !s->tick || !s->commit || evsignal_add(s->sigterm, NULL) != 0 ||
	    evsignal_add(s->sigint, NULL) != 0 || event_add(s->tick, &tv) != 0)
		return err_set(e, POS_ENOMEM, "cannot set up signals and timers");
	/* What a previous run left unsent goes first. */
	store_on_tick(-1, 0, s);
	return 0;
}

int store_run(const struct sconf *cfg, pos_err *e)
{
	struct store *s;
	struct tlog_stats st = { 0 };
	pos_err se;
	int rc;

	if (!cfg)
		return err_set(e, POS_EINVAL, "store: no configuration");
	s = calloc(1, sizeof *s);
	if (!s)
		return err_set(e, POS_ENOMEM, "store: out of memory");
	s->cfg = cfg;
	/* A lane that went away mid-answer must not kill the controller. */
	signal(SIGPIPE, SIG_IGN);
	rc = store_start(s, e);
	if (rc == 0) {
		(void)tlog_stats(s->tlog, &st, &se);
		log_info("started", "store=%s listen=%s central=%s tlog=%s unsent=%ld", cfg->store,
			 cfg->listen, http_current_url(s->up), cfg->tlog, st.unsent);
		/* SIGHUP only tells: every setting of store.conf needs a restart. */
		if ((rc = svc_start(s->base, NULL, NULL, &s->svc, e)) < 0)
			goto out;
		if (event_base_dispatch(s->base) < 0)
			rc = err_set(e, POS_EIO, "event loop failed");
		else {
			(void)tlog_stats(s->tlog, &st, &se);
			log_info("stopped", "signal=%d unsent=%ld", s->stop_signal, st.unsent);
		}
	}
out:
	store_teardown(s);
	free(s);
	return rc;
}
