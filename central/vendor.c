#include "vendor.h"

#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "gtin.h"
#include "httpd.h"
#include "ids.h"
#include "ingest.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "offers.h"
#include "store_vendor.h"
#include "timeutil.h"
#include "uuid.h"

#define VENDOR_BODY_MAX 8192
#define VENDOR_TOKEN_MAX 128
#define VENDOR_DEPTH 4
/* The message page's cookie: the device token, HttpOnly so no script
 * reads it, SameSite=Strict so no other site's page sends it. */
#define VENDOR_COOKIE "pos_device"

/* ------------------------------------------------------------ signing */

int vendor_sign(const char *secret, long long ts, const void *body, size_t len,
		char out[VENDOR_SIG_B64_LEN + 1], pos_err *e)
{
	unsigned char mac[32];
	unsigned int ml = 0;
	char head[32];
	int hn = snprintf(head, sizeof head, "%lld.", ts);
	unsigned char *msg = malloc((size_t)hn + len + 1);
	int rc = 0;

	if (!msg)
		return err_set(e, POS_ENOMEM, "out of memory");
	memcpy(msg, head, (size_t)hn);
	if (len)
		memcpy(msg + hn, body, len);
	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, (size_t)hn + len, mac, &ml) ||
	    ml != 32)
		rc = err_set(e, POS_ECRYPTO, "HMAC failed");
	else
		EVP_EncodeBlock((unsigned char *)out, mac, 32);
	free(msg);
	OPENSSL_cleanse(mac, sizeof mac);
	return rc;
}

void vendor_pseudonym(const unsigned char key[32], const char *vendor, const char *hhid,
		      char out[VENDOR_VP_LEN + 1])
{
	unsigned char mac[32];
	unsigned int ml = 0;
	char msg[STORE_VENDOR_ID_MAX + DEIDENT_ID_LEN + 4];
	int n = snprintf(msg, sizeof msg, "%s|%s", vendor, hhid);
	pos_err e = { 0 };

	memcpy(out, "vp_", 3);
	if (!HMAC(EVP_sha256(), key, 32, (const unsigned char *)msg, (size_t)n, mac, &ml) ||
	    b64url_encode(mac, 16, out + 3, VENDOR_VP_LEN + 1 - 3, &e) < 0)
		out[3] = '\0';
}

/* ------------------------------------------------------------ workers */

enum vjob_kind { VJ_ACTIVITY = 0, VJ_EVENT, VJ_MESSAGES, VJ_CHOOSE, VJ_SUPPORT };

/* A request waiting for the writer. */
struct vjob {
	struct ingest_job job;
	struct vendor_worker *w;
	struct httpd_req *req;
	const char *route;
	int64_t t0_us;
	enum vjob_kind kind;
	int64_t now_ms;
	/* signed calls */
	char vendor[STORE_VENDOR_ID_MAX + 1];
	int64_t ts;
	unsigned char body_hash[32];
	long keep_s;
	bool replay;
	struct store_activity_in act;
	struct store_vendor_event ev;
	/* device calls */
	int64_t device;
	int64_t msg;
	int limit;
	char option[STORE_VENDOR_REF_MAX + 1];
	/* answers */
	bool created;
	long households;
	int64_t conv;
	json_t *answer;
	struct vjob *next;
};

struct vendor_worker {
	struct event_base *base;
	struct store *store;
	struct ingest *ig;
	long max_skew_s;
	int messages_max;
	int products_max;
	long cookie_days;
	struct event *done_ev;
	pthread_mutex_t mu;
	struct vjob *done; /* guarded by mu */
	size_t waiting;    /* worker thread only */
};

enum vendor_refusal { VR_AUTH = 0, VR_STALE, VR_REPLAY, VR_COUNT };
static const char *const vendor_refusal_names[VR_COUNT] = { "unauthorized", "stale", "replayed" };
static atomic_ulong vendor_refused[VR_COUNT];
static atomic_ulong vendor_outbox[3]; /* by enum vendor_call_result */

void vendor_count_outbox(enum vendor_call_result r)
{
	atomic_fetch_add_explicit(&vendor_outbox[r], 1, memory_order_relaxed);
}

static int vendor_metrics(char *buf, size_t cap)
{
	size_t len = 0;
	int n;

	n = snprintf(buf, cap,
		     "# HELP pos_vendor_refused_total Signed vendor calls refused, by reason.\n"
		     "# TYPE pos_vendor_refused_total counter\n");
	if (n < 0 || (size_t)n >= cap)
		return (int)cap;
	len = (size_t)n;
	for (int i = 0; i < VR_COUNT; i++) {
		n = snprintf(buf + len, cap - len, "pos_vendor_refused_total{reason=\"%s\"} %lu\n",
			     vendor_refusal_names[i], atomic_load(&vendor_refused[i]));
		if (n < 0 || (size_t)n >= cap - len)
			return (int)cap;
		len += (size_t)n;
	}
	n = snprintf(buf + len, cap - len,
		     "# HELP pos_vendor_backend_calls_total Calls to vendor backends, by result.\n"
		     "# TYPE pos_vendor_backend_calls_total counter\n"
		     "pos_vendor_backend_calls_total{result=\"done\"} %lu\n"
		     "pos_vendor_backend_calls_total{result=\"retried\"} %lu\n"
		     "pos_vendor_backend_calls_total{result=\"refused\"} %lu\n",
		     atomic_load(&vendor_outbox[VENDOR_CALL_DONE]),
		     atomic_load(&vendor_outbox[VENDOR_CALL_RETRIED]),
		     atomic_load(&vendor_outbox[VENDOR_CALL_REFUSED]));
	if (n < 0 || (size_t)n >= cap - len)
		return (int)cap;
	return (int)(len + (size_t)n);
}

static void vj_send(struct httpd_req *req, const char *route, int64_t t0_us, int status,
		    json_t *v)
{
	char *s = v ? jsonx_dump(v) : NULL;
	static const char oom[] = "{\"error\":\"internal\",\"detail\":\"out of memory\"}";

	/* The public listener's headers (public.h): every reply carries them. */
	(void)httpd_add_header(req, "Content-Security-Policy",
			       "default-src 'none'; frame-ancestors 'none'; base-uri 'none'");
	(void)httpd_add_header(req, "Strict-Transport-Security", "max-age=31536000");
	(void)httpd_add_header(req, "X-Content-Type-Options", "nosniff");
	(void)httpd_add_header(req, "Referrer-Policy", "no-referrer");
	(void)httpd_add_header(req, "X-Frame-Options", "DENY");
	(void)httpd_add_header(req, "Cache-Control", "no-store");
	log_info("public_request", "route=%s method=%s status=%d latency_us=%lld", route,
		 httpd_method_name(req), s ? status : 500, (long long)(time_mono_us() - t0_us));
	if (s)
		httpd_reply(req, status, "application/json", s, strlen(s));
	else
		httpd_reply(req, 500, "application/json", oom, sizeof oom - 1);
	free(s);
}

static void vj_error(struct httpd_req *req, const char *route, int64_t t0_us, int status,
		     const char *code, const char *detail)
{
	json_t *v = json_pack("{s:s, s:s}", "error", code, "detail", detail ? detail : "");

	vj_send(req, route, t0_us, status, v);
	json_decref(v);
}

static void vj_free(struct vjob *j)
{
	if (!j)
		return;
	json_decref(j->answer);
	free(j);
}

/* Writer thread. */
static int vj_op(struct store *s, struct ingest_job *job, pos_err *e)
{
	struct vjob *j = job->arg;
	int rc;

	json_decref(j->answer);
	j->answer = NULL;
	j->replay = false;
	if (j->kind == VJ_ACTIVITY || j->kind == VJ_EVENT) {
		/* A signature is spent even when what it signed is refused: a
		 * replay of a refused call is refused too. */
		if ((rc = store_vendor_nonce(s, j->vendor, j->ts, j->body_hash, j->keep_s, e)) < 0) {
			j->replay = rc == POS_ECONFLICT;
			return rc;
		}
	}
	switch (j->kind) {
	case VJ_ACTIVITY:
		return store_activity_put(s, &j->act, j->now_ms, &j->created, e);
	case VJ_EVENT:
		return store_vendor_event_apply(s, &j->ev, j->now_ms, &j->households, &j->created,
						e);
	case VJ_MESSAGES:
		return store_device_messages(s, j->device, j->limit, j->now_ms, &j->answer, e);
	case VJ_CHOOSE:
		return store_message_choose(s, j->device, j->msg, j->option, j->now_ms, &j->created,
					    e);
	case VJ_SUPPORT:
		return store_message_support(s, j->device, j->msg, j->now_ms, &j->conv, e);
	}
	return err_set(e, POS_EINVAL, "unknown job");
}

static void vj_done(struct ingest_job *job)
{
	struct vjob *j = job->arg;
	struct vendor_worker *w = j->w;

	pthread_mutex_lock(&w->mu);
	j->next = w->done;
	w->done = j;
	pthread_mutex_unlock(&w->mu);
	event_active(w->done_ev, EV_READ, 1);
}

static void vj_answer(struct vjob *j)
{
	int rc = j->job.rc < 0 ? j->job.rc : j->job.op_rc;
	const pos_err *e = j->job.rc < 0 ? &j->job.err : &j->job.op_err;
	json_t *v = NULL;
	int status = 200;
	char qb[256];

	if (rc == POS_EAGAIN || rc == POS_EDB || rc == POS_ENOMEM || rc == POS_EIO) {
		log_error("store_failed", "route=%s code=%s detail=%s", j->route, err_name(rc),
			  log_q(qb, sizeof qb, e->msg));
		vj_error(j->req, j->route, j->t0_us, 503, "unavailable",
			 "storage is busy or failing; retry later");
		return;
	}
	if (rc < 0) {
		if (j->replay) {
			atomic_fetch_add(&vendor_refused[VR_REPLAY], 1);
			vj_error(j->req, j->route, j->t0_us, 409, "replayed", e->msg);
		} else if (rc == POS_ENOTFOUND)
			vj_error(j->req, j->route, j->t0_us, 404, "not_found", e->msg);
		else if (rc == POS_ECONFLICT)
			vj_error(j->req, j->route, j->t0_us, 409, "conflict", e->msg);
		else if (rc == POS_EPERM)
			vj_error(j->req, j->route, j->t0_us, 403, "forbidden", e->msg);
		else
			vj_error(j->req, j->route, j->t0_us, 400, "bad_request", e->msg);
		return;
	}
	switch (j->kind) {
	case VJ_ACTIVITY:
		status = j->created ? 201 : 200;
		v = json_pack("{s:s, s:s}", "ref", j->act.ref, "status",
			      j->created ? "created" : "duplicate");
		break;
	case VJ_EVENT:
		status = j->created ? 201 : 200;
		v = json_pack("{s:s, s:s, s:i}", "id", j->ev.id, "status",
			      j->created ? "applied" : "duplicate", "households", (int)j->households);
		break;
	case VJ_MESSAGES:
		v = j->answer;
		j->answer = NULL;
		break;
	case VJ_CHOOSE:
		status = j->created ? 202 : 200;
		v = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)j->msg, "option", j->option,
			      "status", "queued");
		break;
	case VJ_SUPPORT:
		status = 201;
		v = json_pack("{s:I, s:I}", "id", (json_int_t)j->msg, "conversation",
			      (json_int_t)j->conv);
		break;
	}
	vj_send(j->req, j->route, j->t0_us, status, v);
	json_decref(v);
}

static void vj_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vendor_worker *w = arg;
	struct vjob *list, *next;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->mu);
	list = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->mu);
	for (; list; list = next) {
		next = list->next;
		vj_answer(list);
		w->waiting--;
		vj_free(list);
	}
}

static void vj_submit(struct vjob *j)
{
	pos_err e = { 0 };

	j->job.kind = INGEST_OP;
	j->job.op = vj_op;
	j->job.done = vj_done;
	j->job.arg = j;
	j->now_ms = time_now_ms();
	if (ingest_submit(j->w->ig, &j->job, &e) < 0) {
		vj_error(j->req, j->route, j->t0_us, 503, "unavailable", e.msg);
		vj_free(j);
		return;
	}
	j->w->waiting++;
}

static struct vjob *vj_new(struct vendor_worker *w, struct httpd_req *req, const char *route,
			   int64_t t0_us, enum vjob_kind kind)
{
	struct vjob *j = calloc(1, sizeof *j);

	if (!j) {
		vj_error(req, route, t0_us, 500, "internal", "out of memory");
		return NULL;
	}
	j->w = w;
	j->req = req;
	j->route = route;
	j->t0_us = t0_us;
	j->kind = kind;
	return j;
}

/* ------------------------------------------------------------ vendor calls */

static const char *vj_bearer(struct httpd_req *req, size_t *len)
{
	const char *h = httpd_header(req, "Authorization");

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	*len = strlen(h);
	return *len && *len <= VENDOR_TOKEN_MAX ? h : NULL;
}

/* Checks token, timestamp and signature; fills j->vendor, ts and the
 * body's hash, v the vendor. false: answered (401). */
static bool vj_verify(struct vjob *j, const char *body, size_t len, struct store_vendor *v)
{
	struct vendor_worker *w = j->w;
	const char *tok, *ts_s, *sig;
	char want[VENDOR_SIG_B64_LEN + 1];
	unsigned char th[32];
	unsigned int hl = 0;
	size_t tl = 0;
	pos_err e = { 0 };
	char *end = NULL;
	long long ts, now = (long long)(time_now_ms() / 1000);
	const char *why = NULL;
	enum vendor_refusal r = VR_AUTH;
	int rc;

	if (!(tok = vj_bearer(j->req, &tl)))
		why = "Authorization: Bearer <vendor token> is missing";
	else if (!(ts_s = httpd_header(j->req, "X-Pos-Timestamp")) || !ts_s[0])
		why = "X-Pos-Timestamp is missing";
	else if (!(sig = httpd_header(j->req, "X-Pos-Signature")) || !sig[0])
		why = "X-Pos-Signature is missing";
	if (why)
		goto refuse;
	ts = strtoll(ts_s, &end, 10);
	if (*end || end == ts_s || ts <= 0) {
		why = "X-Pos-Timestamp: not unix seconds";
		goto refuse;
	}
	if (ts < now - w->max_skew_s || ts > now + w->max_skew_s) {
		why = "X-Pos-Timestamp is stale (more than max_skew_s from central's clock)";
		r = VR_STALE;
		goto refuse;
	}
	(void)EVP_Digest(tok, tl, th, &hl, EVP_sha256(), NULL);
	if ((rc = store_vendor_by_token(w->store, th, v, &e)) < 0) {
		if (rc != POS_ENOTFOUND) {
			vj_error(j->req, j->route, j->t0_us, 503, "unavailable",
				 "storage is busy or failing; retry later");
			return false;
		}
		why = "the vendor token is not known";
		goto refuse;
	}
	if (vendor_sign(v->secret, ts, body, len, want, &e) < 0 || strlen(sig) != strlen(want) ||
	    CRYPTO_memcmp(sig, want, strlen(want)) != 0) {
		why = "X-Pos-Signature does not match the body and timestamp";
		goto refuse;
	}
	OPENSSL_cleanse(want, sizeof want);
	snprintf(j->vendor, sizeof j->vendor, "%s", v->id);
	j->ts = ts;
	j->keep_s = 2 * w->max_skew_s + 60;
	(void)EVP_Digest(body, len, j->body_hash, &hl, EVP_sha256(), NULL);
	return true;
refuse:
	atomic_fetch_add(&vendor_refused[r], 1);
	log_info("vendor_refused", "route=%s reason=%s", j->route, vendor_refusal_names[r]);
	(void)httpd_add_header(j->req, "WWW-Authenticate", "Bearer realm=\"vendor\"");
	vj_error(j->req, j->route, j->t0_us, 401, "unauthorized", why);
	return false;
}

/* A short identifier: 1..max of [A-Za-z0-9._:-]. */
static int vj_ref(json_t *o, const char *key, bool required, char *out, size_t max, pos_err *e)
{
	const char *s = NULL;
	int rc = jsonx_str(o, key, required, max, &s, e);

	if (rc < 0)
		return rc;
	if (!s) {
		out[0] = '\0';
		return 0;
	}
	if (!s[0] || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") !=
			     strlen(s))
		return err_set(e, POS_EINVAL, "%s: 1 to %zu of A-Z a-z 0-9 . _ : -", key, max);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int vj_gtin(json_t *o, const char *key, bool required, char out[GTIN_LEN + 1], pos_err *e)
{
	const char *s = NULL;
	int rc = jsonx_str(o, key, required, GTIN_LEN, &s, e);

	if (rc < 0)
		return rc;
	if (!s) {
		out[0] = '\0';
		return 0;
	}
	if (!gtin14_valid(s))
		return err_set(e, POS_EINVAL, "%s: not a GTIN-14 with a good check digit", key);
	memcpy(out, s, GTIN_LEN + 1);
	return 0;
}

static int vj_time(json_t *o, const char *key, bool required, int64_t *ms, pos_err *e)
{
	const char *s = NULL;
	int rc = jsonx_str(o, key, required, 40, &s, e);

	*ms = 0;
	if (rc < 0 || !s)
		return rc;
	if (time_parse_rfc3339(s, 0, ms, e) < 0)
		return err_set(e, POS_EINVAL, "%s: not an RFC 3339 time", key);
	return 0;
}

static int vj_parse_activity(json_t *o, struct store_activity_in *a, pos_err *e)
{
	static const char *const keys[] = { "ref", "txn", "gtin", "kind", "at", NULL };
	const char *txn = NULL;
	int rc;

	if ((rc = jsonx_only_keys(o, keys, e)) < 0 ||
	    (rc = vj_ref(o, "ref", true, a->ref, STORE_VENDOR_REF_MAX, e)) < 0 ||
	    (rc = jsonx_str(o, "txn", 1, 36, &txn, e)) < 0 ||
	    (rc = vj_gtin(o, "gtin", true, a->gtin, e)) < 0 ||
	    (rc = vj_ref(o, "kind", true, a->kind, STORE_VENDOR_KIND_MAX, e)) < 0 ||
	    (rc = vj_time(o, "at", true, &a->at_ms, e)) < 0)
		return rc;
	if (!uuid_valid(txn))
		return err_set(e, POS_EINVAL, "txn: not a UUID");
	snprintf(a->txn, sizeof a->txn, "%s", txn);
	return 0;
}

static int vj_parse_event(json_t *o, struct store_vendor_event *ev, pos_err *e)
{
	static const char *const keys[] = { "id", "kind", "gtin", "activity", "new_at", "text",
					    NULL };
	const char *kind = NULL, *text = NULL;
	int rc;

	if ((rc = jsonx_only_keys(o, keys, e)) < 0 ||
	    (rc = vj_ref(o, "id", true, ev->id, STORE_VENDOR_REF_MAX, e)) < 0 ||
	    (rc = jsonx_str(o, "kind", 1, 16, &kind, e)) < 0 ||
	    (rc = vj_gtin(o, "gtin", false, ev->gtin, e)) < 0 ||
	    (rc = vj_ref(o, "activity", false, ev->activity, STORE_VENDOR_REF_MAX, e)) < 0 ||
	    (rc = vj_time(o, "new_at", false, &ev->new_at_ms, e)) < 0 ||
	    (rc = jsonx_str(o, "text", 1, STORE_VENDOR_TEXT_MAX, &text, e)) < 0)
		return rc;
	if (offers_text_check("text", text, STORE_VENDOR_TEXT_MAX, e) < 0)
		return POS_EINVAL;
	if (strcmp(kind, "recall") == 0) {
		if (!ev->gtin[0])
			return err_set(e, POS_EINVAL, "gtin: a recall names the item");
	} else if (strcmp(kind, "delay") == 0 || strcmp(kind, "cancel") == 0) {
		if (!ev->activity[0])
			return err_set(e, POS_EINVAL, "activity: a %s names the activity", kind);
		if (strcmp(kind, "delay") == 0 && !ev->new_at_ms)
			return err_set(e, POS_EINVAL, "new_at: a delay gives the new time");
	} else {
		return err_set(e, POS_EINVAL, "kind: recall, delay or cancel");
	}
	snprintf(ev->kind, sizeof ev->kind, "%s", kind);
	snprintf(ev->text, sizeof ev->text, "%s", text);
	return 0;
}

static void vj_vendor_post(struct vendor_worker *w, struct httpd_req *req, const char *route,
			   int64_t t0_us, enum vjob_kind kind)
{
	struct vjob *j = vj_new(w, req, route, t0_us, kind);
	struct store_vendor v;
	json_t *root = NULL;
	pos_err e = { 0 };
	const char *body;
	size_t len = 0;
	int rc;

	if (!j)
		return;
	body = httpd_body(req, &len);
	if (!vj_verify(j, body ? body : "", len, &v))
		goto fail;
	if ((rc = jsonx_parse(body, len, VENDOR_BODY_MAX, VENDOR_DEPTH, &root, &e)) < 0 ||
	    !json_is_object(root)) {
		vj_error(req, route, t0_us, rc == POS_ETOOBIG ? 413 : 400,
			 rc == POS_ETOOBIG ? "too_large" : "bad_request",
			 rc < 0 ? e.msg : "the body must be a JSON object");
		goto fail;
	}
	if (kind == VJ_ACTIVITY) {
		rc = vj_parse_activity(root, &j->act, &e);
		snprintf(j->act.vendor, sizeof j->act.vendor, "%s", v.id);
	} else {
		rc = vj_parse_event(root, &j->ev, &e);
		snprintf(j->ev.vendor, sizeof j->ev.vendor, "%s", v.id);
		snprintf(j->ev.vendor_name, sizeof j->ev.vendor_name, "%s", v.name);
	}
	OPENSSL_cleanse(v.secret, sizeof v.secret);
	json_decref(root);
	if (rc < 0) {
		vj_error(req, route, t0_us, 400, "bad_request", e.msg);
		vj_free(j);
		return;
	}
	vj_submit(j);
	return;
fail:
	OPENSSL_cleanse(v.secret, sizeof v.secret);
	json_decref(root);
	vj_free(j);
}

/* ------------------------------------------------------------ device calls */

/* The device token of the message page's cookie, or NULL. */
static const char *vj_cookie(struct httpd_req *req, size_t *len)
{
	const char *h = httpd_header(req, "Cookie");
	const size_t nl = sizeof VENDOR_COOKIE - 1;

	while (h && *h) {
		size_t n;

		while (*h == ' ' || *h == ';')
			h++;
		n = strcspn(h, ";");
		if (n > nl + 1 && strncmp(h, VENDOR_COOKIE "=", nl + 1) == 0 &&
		    n - nl - 1 <= VENDOR_TOKEN_MAX) {
			*len = n - nl - 1;
			return h + nl + 1;
		}
		h += n;
	}
	return NULL;
}

/* The device of the request: its bearer token or, from the message page,
 * its cookie. A POST with the cookie must be a JSON one: a form of another
 * site cannot send that content type without the browser asking first. */
static bool vj_device(struct vjob *j)
{
	const char *tok, *ct;
	size_t len = 0;
	pos_err e = { 0 };
	int rc;

	if (!(tok = vj_bearer(j->req, &len)) && (tok = vj_cookie(j->req, &len)) &&
	    httpd_method(j->req) == HTTP1_POST &&
	    (!(ct = httpd_header(j->req, "Content-Type")) ||
	     strncasecmp(ct, "application/json", 16) != 0)) {
		vj_error(j->req, j->route, j->t0_us, 415, "unsupported_media_type",
			 "Content-Type must be application/json");
		return false;
	}
	if (!tok) {
		vj_error(j->req, j->route, j->t0_us, 401, "unauthorized",
			 "Authorization: Bearer <device token> is missing");
		return false;
	}
	rc = offers_device_auth(j->w->store, tok, len, &j->device, NULL, &e);
	if (rc == POS_ENOTFOUND || rc == POS_EINVAL) {
		(void)httpd_add_header(j->req, "WWW-Authenticate", "Bearer realm=\"device\"");
		vj_error(j->req, j->route, j->t0_us, 401, "unauthorized", "the device token is not known");
		return false;
	}
	if (rc < 0) {
		vj_error(j->req, j->route, j->t0_us, 503, "unavailable",
			 "storage is busy or failing; retry later");
		return false;
	}
	return true;
}

static void vj_device_call(struct vendor_worker *w, struct httpd_req *req, const char *route,
			   int64_t t0_us, enum vjob_kind kind, const char *id_s)
{
	struct vjob *j = vj_new(w, req, route, t0_us, kind);
	json_t *root = NULL;
	const char *body;
	pos_err e = { 0 };
	size_t len = 0;
	char *end = NULL;
	int rc;

	if (!j || !vj_device(j))
		goto fail;
	j->limit = w->messages_max;
	if (id_s) {
		long long id = strtoll(id_s, &end, 10);

		if (*end || end == id_s || id <= 0) {
			vj_error(req, route, t0_us, 404, "not_found", "no such message");
			goto fail;
		}
		j->msg = id;
	}
	if (kind == VJ_CHOOSE) {
		static const char *const keys[] = { "option", NULL };

		body = httpd_body(req, &len);
		if ((rc = jsonx_parse(body, len, VENDOR_BODY_MAX, VENDOR_DEPTH, &root, &e)) < 0 ||
		    !json_is_object(root) || (rc = jsonx_only_keys(root, keys, &e)) < 0 ||
		    (rc = vj_ref(root, "option", true, j->option, STORE_VENDOR_REF_MAX, &e)) < 0) {
			vj_error(req, route, t0_us, 400, "bad_request",
				 e.msg[0] ? e.msg : "the body must be {\"option\"}");
			goto fail;
		}
		json_decref(root);
	}
	vj_submit(j);
	return;
fail:
	json_decref(root);
	vj_free(j);
}

/* GET /v1/devices/me/products: read on the worker's own connection (no
 * write, so not the writer's). */
static void vj_products(struct vendor_worker *w, struct httpd_req *req, const char *route,
			int64_t t0_us)
{
	struct vjob *j = vj_new(w, req, route, t0_us, VJ_MESSAGES);
	json_t *v = NULL;
	pos_err e = { 0 };
	char qb[256];
	int rc;

	if (!j || !vj_device(j))
		goto out;
	if ((rc = store_device_products(w->store, j->device, w->products_max, &v, &e)) < 0) {
		log_error("store_failed", "route=%s code=%s detail=%s", route, err_name(rc),
			  log_q(qb, sizeof qb, e.msg));
		vj_error(req, route, t0_us, 503, "unavailable", "storage is busy or failing; retry later");
		goto out;
	}
	vj_send(req, route, t0_us, 200, v);
out:
	json_decref(v);
	vj_free(j);
}

/* POST /v1/devices/me/session with the device's bearer token: the message
 * page's cookie, so the token never sits in a URL the page loads. */
static void vj_session(struct vendor_worker *w, struct httpd_req *req, const char *route,
		       int64_t t0_us)
{
	struct vjob *j = vj_new(w, req, route, t0_us, VJ_MESSAGES);
	const char *tok;
	size_t len = 0;
	char cookie[VENDOR_TOKEN_MAX + 128];
	json_t *v;

	if (!j)
		return;
	if (!(tok = vj_bearer(req, &len))) {
		vj_error(req, route, t0_us, 401, "unauthorized",
			 "Authorization: Bearer <device token> is missing");
		goto out;
	}
	if (!vj_device(j))
		goto out;
	snprintf(cookie, sizeof cookie,
		 VENDOR_COOKIE "=%.*s; Path=/; Max-Age=%ld; HttpOnly; Secure; SameSite=Strict",
		 (int)len, tok, w->cookie_days * 86400);
	(void)httpd_add_header(req, "Set-Cookie", cookie);
	OPENSSL_cleanse(cookie, sizeof cookie);
	v = json_pack("{s:b}", "ok", 1);
	vj_send(req, route, t0_us, 200, v);
	json_decref(v);
out:
	vj_free(j);
}

/* ------------------------------------------------------------ routing */

/* The {id} of prefix{id}suffix in path, at most 20 digits, into seg. */
static const char *vj_segment(const char *path, const char *prefix, const char *suffix,
			      char seg[24])
{
	size_t pl = strlen(prefix), sl = strlen(suffix), n;

	if (strncmp(path, prefix, pl) != 0)
		return NULL;
	path += pl;
	n = strlen(path);
	if (n <= sl || strcmp(path + n - sl, suffix) != 0 || n - sl > 20)
		return NULL;
	memcpy(seg, path, n - sl);
	seg[n - sl] = '\0';
	return strchr(seg, '/') ? NULL : seg;
}

static bool vj_method(struct httpd_req *req, const char *route, int64_t t0_us,
		      enum http1_method want)
{
	if (httpd_method(req) == want)
		return true;
	(void)httpd_add_header(req, "Allow", want == HTTP1_GET ? "GET" : "POST");
	vj_error(req, route, t0_us, 405, "method_not_allowed", "method not allowed here");
	return false;
}

bool vendor_handle(struct vendor_worker *w, struct httpd_req *req)
{
	const char *path = httpd_path(req), *route, *x;
	int64_t t0 = time_mono_us();
	char seg[24];

	if (strcmp(path, "/v1/vendor/activities") == 0) {
		route = "/v1/vendor/activities";
		if (vj_method(req, route, t0, HTTP1_POST))
			vj_vendor_post(w, req, route, t0, VJ_ACTIVITY);
	} else if (strcmp(path, "/v1/vendor/events") == 0) {
		route = "/v1/vendor/events";
		if (vj_method(req, route, t0, HTTP1_POST))
			vj_vendor_post(w, req, route, t0, VJ_EVENT);
	} else if (strcmp(path, "/v1/devices/me/messages") == 0) {
		route = "/v1/devices/me/messages";
		if (vj_method(req, route, t0, HTTP1_GET))
			vj_device_call(w, req, route, t0, VJ_MESSAGES, NULL);
	} else if (strcmp(path, "/v1/devices/me/products") == 0) {
		route = "/v1/devices/me/products";
		if (vj_method(req, route, t0, HTTP1_GET))
			vj_products(w, req, route, t0);
	} else if (strcmp(path, "/v1/devices/me/session") == 0) {
		route = "/v1/devices/me/session";
		if (vj_method(req, route, t0, HTTP1_POST))
			vj_session(w, req, route, t0);
	} else if ((x = vj_segment(path, "/v1/messages/", "/choose", seg))) {
		route = "/v1/messages/{id}/choose";
		if (vj_method(req, route, t0, HTTP1_POST))
			vj_device_call(w, req, route, t0, VJ_CHOOSE, x);
	} else if ((x = vj_segment(path, "/v1/messages/", "/support", seg))) {
		route = "/v1/messages/{id}/support";
		if (vj_method(req, route, t0, HTTP1_POST))
			vj_device_call(w, req, route, t0, VJ_SUPPORT, x);
	} else {
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ lifetime */

int vendor_worker_new(struct event_base *base, struct store *store, struct ingest *ig,
		      const struct cconf *c, struct vendor_worker **out, pos_err *e)
{
	struct vendor_worker *w = calloc(1, sizeof *w);

	if (!w)
		return err_set(e, POS_ENOMEM, "out of memory");
	w->base = base;
	w->store = store;
	w->ig = ig;
	w->max_skew_s = c->vendor_max_skew_s;
	w->messages_max = (int)c->vendor_messages_max;
	w->products_max = (int)c->vendor_products_max;
	w->cookie_days = c->vendor_device_cookie_days;
	metrics_add_source(vendor_metrics);
	pthread_mutex_init(&w->mu, NULL);
	if (!(w->done_ev = event_new(base, -1, 0, vj_done_cb, w))) {
		vendor_worker_free(w);
		return err_set(e, POS_ENOMEM, "out of memory");
	}
	*out = w;
	return 0;
}

void vendor_worker_free(struct vendor_worker *w)
{
	if (!w)
		return;
	if (w->done_ev)
		event_free(w->done_ev);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

size_t vendor_waiting(const struct vendor_worker *w)
{
	return w ? w->waiting : 0;
}
