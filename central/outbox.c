#include "outbox.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "keysproc.h"
#include "log.h"
#include "metrics.h"
#include "periodic.h"
#include "store.h"
#include "store_public.h"
#include "tid.h"
#include "timeutil.h"
#include "visitor.h"
#include "wipe.h"

#define OB_IDLE_MS 500      /* look for new messages this often when idle */
#define OB_CRM "crm"
#define OB_SMS "sms"
#define OB_ERR_MAX 160

/* One outbox's state between tries (the thread's own). */
struct lane {
	const char *name;
	atomic_ulong *delivered, *failed;
	int64_t next_ms;   /* monotonic: not before this */
	int64_t backoff_ms;
	long attempts;
};

struct outbox {
	const struct cconf *c;
	struct keys_chan *keys;
	struct store *store;
	struct periodic *loop;
	struct lane crm, sms;
};

static atomic_ulong ob_delivered[2], ob_failed[2]; /* [0] crm, [1] sms */

static int ob_metrics(char *buf, size_t cap)
{
	int n = snprintf(buf, cap,
			 "# HELP pos_outbox_delivered_total Events delivered out of central.\n"
			 "# TYPE pos_outbox_delivered_total counter\n"
			 "pos_outbox_delivered_total{outbox=\"crm\"} %lu\n"
			 "pos_outbox_delivered_total{outbox=\"sms\"} %lu\n"
			 "# HELP pos_outbox_failed_total Delivery tries that failed (tried again).\n"
			 "# TYPE pos_outbox_failed_total counter\n"
			 "pos_outbox_failed_total{outbox=\"crm\"} %lu\n"
			 "pos_outbox_failed_total{outbox=\"sms\"} %lu\n",
			 atomic_load(&ob_delivered[0]), atomic_load(&ob_delivered[1]),
			 atomic_load(&ob_failed[0]), atomic_load(&ob_failed[1]));

	return n < 0 || (size_t)n >= cap ? (int)cap : n;
}

/* ------------------------------------------------------------ HTTP */

static size_t ob_discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* POSTs body to url with headers; 0 on a 2xx, else an error naming the
 * status or the transport failure (never the body). */
static int ob_post(const struct cconf *c, const char *url, struct curl_slist *hdrs,
		   const char *body, size_t len, pos_err *e)
{
	CURL *h = curl_easy_init();
	long status = 0;
	CURLcode cc;

	if (!h)
		return err_set(e, POS_ENOMEM, "libcurl: no handle");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, c->outbox_timeout_s);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->outbox_timeout_s);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ob_discard);
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (cc != CURLE_OK)
		return err_set(e, POS_EIO, "%s", curl_easy_strerror(cc));
	if (status < 200 || status > 299)
		return err_set(e, POS_EIO, "answered HTTP %ld", status);
	return 0;
}

/* Appends "name: value". */
static struct curl_slist *ob_header(struct curl_slist *l, bool *ok, const char *name,
				    const char *v)
{
	char line[512];
	struct curl_slist *n;

	snprintf(line, sizeof line, "%s: %s", name, v);
	if (!(n = curl_slist_append(l, line)))
		*ok = false;
	return n ? n : l;
}

/* ------------------------------------------------------------ CRM */

static const char *ob_spend_band(long cents)
{
	if (cents < 2500)
		return "under 25";
	if (cents < 10000)
		return "25-100";
	if (cents < 25000)
		return "100-250";
	return "250 and over";
}

json_t *outbox_enrichment_json(const struct store_facts *f)
{
	char ts[TIME_RFC3339_LEN];
	json_t *top, *v;

	if (!f->known)
		return json_null();
	if (!(top = json_array()))
		return NULL;
	for (int i = 0; i < f->ntop; i++)
		json_array_append_new(top, json_string(f->top[i]));
	if (f->last_visit_ms)
		time_format_rfc3339(f->last_visit_ms, ts);
	v = json_pack("{s:o, s:i, s:s, s:o, s:i}", "last_visit",
		      f->last_visit_ms ? json_string(ts) : json_null(), "visits_90d",
		      (int)f->visits_90d, "spend_band", ob_spend_band(f->spend_90d_cents),
		      "top_categories", top, "offers_redeemed", (int)f->offers_redeemed);
	return v;
}

/*
 * The CRM cursor counts events: 2m once the conversation event of message
 * m (its conversation's first) is delivered, 2m + 1 once its message
 * event is. The next event is then of the first message with id > this.
 */
static int64_t ob_after(int64_t cursor)
{
	return cursor % 2 ? cursor / 2 : cursor / 2 - 1;
}

struct crm_ev {
	struct outbox *o;
	int64_t cursor;
	int64_t next;   /* the cursor after this event */
	char id[48];
	char *body;
	pos_err *e;
};

static int ob_crm_build(const struct store_event *ev, void *arg)
{
	struct crm_ev *x = arg;
	struct store_facts f;
	char ts[TIME_RFC3339_LEN], cts[TIME_RFC3339_LEN];
	bool conv_event = ev->first && x->cursor < 2 * ev->msg_id;
	json_t *v = NULL, *msg = json_null(), *enr;
	int rc;

	if ((rc = store_conversation_facts(x->o->store, &ev->c, time_now_ms(), &f, x->e)) < 0)
		return rc;
	time_format_rfc3339(ev->ts_ms, ts);
	time_format_rfc3339(ev->c.created_ms, cts);
	if (conv_event) {
		snprintf(x->id, sizeof x->id, "conversation-%lld", (long long)ev->c.id);
		x->next = 2 * ev->msg_id;
	} else {
		snprintf(x->id, sizeof x->id, "message-%lld", (long long)ev->msg_id);
		x->next = 2 * ev->msg_id + 1;
		msg = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)ev->msg_id, "time", ts,
				"author", ev->author, "body", ev->body);
	}
	enr = outbox_enrichment_json(&f);
	if (msg && enr)
		v = json_pack("{s:s, s:s, s:o, s:o, s:{s:I, s:s, s:o, s:s}, s:o, s:o}", "event_id",
			      x->id, "type", conv_event ? "conversation" : "message", "uid",
			      strcmp(ev->c.kind, STORE_CONV_VISITOR) == 0 ? json_string(ev->c.txn)
									  : json_null(),
			      "hhid", f.known ? json_string(f.hhid) : json_null(), "conversation",
			      "id", (json_int_t)ev->c.id, "kind", ev->c.kind, "store",
			      ev->c.store[0] ? json_string(ev->c.store) : json_null(), "created",
			      cts, "message", msg, "enrichment", enr);
	else {
		json_decref(msg);
		json_decref(enr);
	}
	if (!v || !(x->body = jsonx_dump(v)))
		rc = err_set(x->e, POS_ENOMEM, "out of memory");
	json_decref(v);
	return rc;
}

static int ob_sign_b64(const char *secret, const char *a, const char *b, const char *c,
		       char out[SMS_SIG_LEN + 1])
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	unsigned char mac[32];
	unsigned int len = 0;
	char *m = malloc(la + lb + lc + 1);
	int rc = 0;

	if (!m)
		return POS_ENOMEM;
	memcpy(m, a, la);
	memcpy(m + la, b, lb);
	memcpy(m + la + lb, c, lc);
	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)m, la + lb + lc, mac,
		  &len) ||
	    EVP_EncodeBlock((unsigned char *)out, mac, 32) != SMS_SIG_LEN)
		rc = POS_ECRYPTO;
	free(m);
	return rc;
}

/* One CRM event: 1 delivered, 0 nothing to do, <0 failed. */
static int ob_crm_step(struct outbox *o, pos_err *e)
{
	const struct cconf *c = o->c;
	struct store_cursor cur;
	struct crm_ev x = { o, 0, 0, "", NULL, e };
	struct curl_slist *h = NULL;
	char tsb[24], sig[SMS_SIG_LEN + 1];
	bool ok = true;
	int rc;

	if ((rc = store_cursor_get(o->store, OB_CRM, &cur, e)) < 0)
		return rc;
	x.cursor = cur.position;
	rc = store_event_next(o->store, ob_after(cur.position), ob_crm_build, &x, e);
	if (rc == POS_ENOTFOUND)
		return 0;
	if (rc < 0)
		goto out;
	snprintf(tsb, sizeof tsb, "%lld", (long long)(time_now_ms() / 1000));
	if (ob_sign_b64(c->crm_secret, tsb, ".", x.body, sig) < 0) {
		rc = err_set(e, POS_ECRYPTO, "signature failed");
		goto out;
	}
	h = ob_header(h, &ok, "Content-Type", "application/json");
	h = ob_header(h, &ok, "Idempotency-Key", x.id);
	h = ob_header(h, &ok, "X-Pos-Timestamp", tsb);
	h = ob_header(h, &ok, "X-Pos-Signature", sig);
	if (!ok) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = ob_post(c, c->crm_url, h, x.body, strlen(x.body), e)) < 0)
		goto out;
	if ((rc = store_cursor_set(o->store, OB_CRM, x.next, time_now_ms(), e)) < 0)
		goto out;
	log_info("crm_delivered", "event=%s", x.id);
	rc = 1;
out:
	curl_slist_free_all(h);
	free(x.body);
	return rc;
}

/* ------------------------------------------------------------ SMS */

struct sms_ev {
	struct outbox *o;
	int64_t msg_id;
	pos_err *e;
	bool sent;
};

/* a=b&c=d of sorted params, each value escaped. */
static char *ob_form(CURL *h, const struct sms_param *p, size_t n)
{
	size_t cap = 1, len = 0;
	char *out, *esc[8];

	for (size_t i = 0; i < n; i++) {
		if (!(esc[i] = curl_easy_escape(h, p[i].value, 0))) {
			for (size_t j = 0; j < i; j++)
				curl_free(esc[j]);
			return NULL;
		}
		cap += strlen(p[i].name) + strlen(esc[i]) + 2;
	}
	if ((out = malloc(cap)))
		for (size_t i = 0; i < n; i++)
			len += (size_t)snprintf(out + len, cap - len, "%s%s=%s", i ? "&" : "",
						p[i].name, esc[i]);
	for (size_t i = 0; i < n; i++) {
		wipe(esc[i], strlen(esc[i]));
		curl_free(esc[i]);
	}
	return out;
}

static int ob_sms_send(const struct store_sms_reply *r, void *arg)
{
	struct sms_ev *x = arg;
	const struct cconf *c = x->o->c;
	char phone[TID_MAX], sig[SMS_SIG_LEN + 1], id[48];
	struct sms_param p[4];
	struct curl_slist *h = NULL;
	char *form = NULL;
	CURL *eh = NULL;
	bool ok = true;
	int rc;

	x->msg_id = r->msg_id;
	if ((rc = keys_open_phone(x->o->keys, r->kid, r->sealed, r->uid, phone, x->e)) < 0)
		return rc;
	/* Sorted by name: the signature's order. */
	p[0] = (struct sms_param){ "Account", c->sms_account };
	p[1] = (struct sms_param){ "Body", r->body };
	p[2] = (struct sms_param){ "From", c->sms_number };
	p[3] = (struct sms_param){ "To", phone + 6 }; /* after "phone:" */
	snprintf(id, sizeof id, "sms-%lld", (long long)r->msg_id);
	if (sms_signature(c->sms_secret, c->sms_gateway_url, p, 4, sig, x->e) < 0) {
		rc = POS_ECRYPTO;
		goto out;
	}
	if (!(eh = curl_easy_init()) || !(form = ob_form(eh, p, 4))) {
		rc = err_set(x->e, POS_ENOMEM, "out of memory");
		goto out;
	}
	h = ob_header(h, &ok, "Content-Type", "application/x-www-form-urlencoded");
	h = ob_header(h, &ok, "Idempotency-Key", id);
	h = ob_header(h, &ok, "X-Pos-Signature", sig);
	if (!ok) {
		rc = err_set(x->e, POS_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = ob_post(c, c->sms_gateway_url, h, form, strlen(form), x->e)) == 0)
		x->sent = true;
out:
	wipe(phone, sizeof phone);
	if (form) {
		wipe(form, strlen(form));
		free(form);
	}
	curl_slist_free_all(h);
	if (eh)
		curl_easy_cleanup(eh);
	return rc;
}

static int ob_sms_step(struct outbox *o, pos_err *e)
{
	struct store_cursor cur;
	struct sms_ev x = { o, 0, e, false };
	int rc;

	if ((rc = store_cursor_get(o->store, OB_SMS, &cur, e)) < 0)
		return rc;
	rc = store_sms_reply_next(o->store, cur.position, ob_sms_send, &x, e);
	if (rc == POS_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	if ((rc = store_cursor_set(o->store, OB_SMS, x.msg_id, time_now_ms(), e)) < 0)
		return rc;
	log_info("sms_sent", "message=%lld", (long long)x.msg_id);
	return 1;
}

/* ------------------------------------------------------------ thread */

/* One try on a lane when due: 1 delivered, 0 idle or waiting. */
static int ob_lane(struct outbox *o, struct lane *l, int (*step)(struct outbox *, pos_err *))
{
	pos_err e = { 0 };
	char qb[OB_ERR_MAX];
	int64_t now = time_mono_us() / 1000;
	int rc;

	if (now < l->next_ms)
		return 0;
	rc = step(o, &e);
	if (rc > 0)
		atomic_fetch_add(l->delivered, 1);
	if (rc >= 0) {
		l->backoff_ms = 0;
		l->attempts = 0;
		return rc;
	}
	l->attempts++;
	atomic_fetch_add(l->failed, 1);
	l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : 1000;
	if (l->backoff_ms > o->c->outbox_retry_max_s * 1000)
		l->backoff_ms = o->c->outbox_retry_max_s * 1000;
	l->next_ms = now + l->backoff_ms;
	log_warn("outbox_failed", "outbox=%s attempts=%ld retry_ms=%lld detail=%s", l->name,
		 l->attempts, (long long)l->backoff_ms, log_q(qb, sizeof qb, e.msg));
	(void)store_cursor_failed(o->store, l->name, l->attempts, e.msg, time_now_ms(), NULL);
	return 0;
}

/* Each lane's try when due; > 0 when one delivered (look again at once). */
static int ob_run(void *arg)
{
	struct outbox *o = arg;
	int did = 0;

	if (o->c->crm_url[0])
		did += ob_lane(o, &o->crm, ob_crm_step);
	if (o->c->sms_gateway_url[0] && o->keys)
		did += ob_lane(o, &o->sms, ob_sms_step);
	return did;
}

int outbox_start(const struct cconf *c, struct keys_chan *keys, struct outbox **out, pos_err *e)
{
	struct outbox *o;
	int rc;

	*out = NULL;
	if (!c->crm_url[0] && !c->sms_gateway_url[0])
		return 0;
	if (c->sms_gateway_url[0] && (!c->sms_secret[0] || !c->sms_number[0]))
		return err_set(e, POS_EINVAL,
			       "[sms] gateway_url needs [sms] secret and number to send replies");
	if (c->crm_url[0] && !c->crm_secret[0])
		return err_set(e, POS_EINVAL, "[crm] url needs [crm] secret to sign its calls");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return err_set(e, POS_EIO, "libcurl: cannot initialise");
	if (!(o = calloc(1, sizeof *o)))
		return err_set(e, POS_ENOMEM, "outbox: out of memory");
	o->c = c;
	o->keys = keys;
	o->crm = (struct lane){ OB_CRM, &ob_delivered[0], &ob_failed[0], 0, 0, 0 };
	o->sms = (struct lane){ OB_SMS, &ob_delivered[1], &ob_failed[1], 0, 0, 0 };
	if ((rc = cconf_store_open(c, CCONF_STORE_WRITE, &o->store, e)) < 0) {
		free(o);
		return rc;
	}
	if ((rc = periodic_start(0, OB_IDLE_MS, ob_run, o, &o->loop, e)) < 0) {
		store_close(o->store);
		free(o);
		err_prefix(e, "outbox");
		return rc;
	}
	metrics_add_source(ob_metrics);
	if (!keys && c->sms_gateway_url[0])
		log_warn("outbox_no_keys", "detail=\"SMS replies are not sent\"");
	*out = o;
	return 0;
}

void outbox_stop(struct outbox *o)
{
	if (!o)
		return;
	periodic_stop(o->loop);
	store_close(o->store);
	free(o);
}

/* ------------------------------------------------------------ status */

static void ob_status_line(FILE *out, const char *name, bool on, const struct store_cursor *cur,
			   int64_t backlog)
{
	fprintf(out, "%s: %s, backlog %lld", name, on ? "on" : "off", (long long)backlog);
	if (cur->attempts)
		fprintf(out, ", failing (%ld tries): %s", cur->attempts, cur->last_error);
	fputc('\n', out);
}

int outbox_status(const struct cconf *c, FILE *out, pos_err *e)
{
	struct store *s = NULL;
	struct store_cursor crm, sms;
	int64_t nc = 0, ns = 0;
	int rc;

	if ((rc = cconf_store_open(c, CCONF_STORE_WRITE, &s, e)) < 0)
		return rc;
	if ((rc = store_cursor_get(s, OB_CRM, &crm, e)) < 0 ||
	    (rc = store_cursor_get(s, OB_SMS, &sms, e)) < 0 ||
	    (rc = store_events_after(s, ob_after(crm.position), &nc, e)) < 0 ||
	    (rc = store_sms_replies_after(s, sms.position, &ns, e)) < 0)
		goto out;
	ob_status_line(out, "crm", c->crm_url[0] != '\0', &crm, nc);
	ob_status_line(out, "sms", c->sms_gateway_url[0] != '\0', &sms, ns);
out:
	store_close(s);
	return rc;
}

#define CRM_USAGE "usage: pos-central crm status -c CONF\n"

int outbox_crm_main(int argc, char **argv)
{
	static struct cconf conf;
	const char *path = NULL;
	pos_err e = { 0 };

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(CRM_USAGE, stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "status") != 0) {
		fprintf(stderr, "pos-central crm: %s\n%s",
			argc < 2 ? "missing action (status)" : "unknown action (status)", CRM_USAGE);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else {
			fprintf(stderr, "pos-central crm: unexpected argument '%s'\n%s", argv[i],
				CRM_USAGE);
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "pos-central crm: -c CONF is required\n%s", CRM_USAGE);
		return 2;
	}
	if (cconf_load(path, &conf, &e) < 0 || outbox_status(&conf, stdout, &e) < 0) {
		fprintf(stderr, "pos-central crm status: %s\n", e.msg);
		return 1;
	}
	return 0;
}
