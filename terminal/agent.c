#include "agent.h"

#include <event2/event.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckey.h"
#include "classify.h"
#include "control.h"
#include "device.h"
#include "envelope.h"
#include "http.h"
#include "jsonx.h"
#include "keys.h"
#include "lane.h"
#include "log.h"
#include "msr.h"
#include "receipt.h"
#include "spool.h"
#include "svc.h"
#include "tid.h"
#include "timeutil.h"
#include "uplink.h"
#include "uuid.h"
#include "wipe.h"

#define AGENT_RESOLVE_ANSWER_MAX 4096
#define AGENT_DETAIL_MAX 128
/* After a restart the spool drains after a short random pause: a store's
 * lanes coming back together after a power cut do not all hit central in
 * the same second, and clients have time to connect before the first
 * "uploaded" events. */
#define AGENT_START_DRAIN_MS 1000
#define AGENT_START_JITTER_MS 1000
#define AGENT_KEYS_TIMEOUT_MS 5000L
/* A failed refresh is tried again this soon (or keys_refresh_s if less). */
#define AGENT_KEYS_RETRY_S 30

struct agent;

/* One /v1/resolve in flight: the http arg, so it can be cancelled alone. */
struct agent_resolve {
	struct agent *a;
	char txn[LANE_TXN_LEN + 1];
	unsigned gen;
	int64_t started_us;
	struct agent_resolve *prev, *next;
};

/* One /v1/offers/check in flight. Not cancelled by total: the POS still
 * wants to hear about the code the customer showed. */
struct agent_check {
	struct agent *a;
	char txn[LANE_TXN_LEN + 1];
	char code[LANE_OFFER_MAX + 1];
	int64_t started_us;
	struct agent_check *prev, *next;
};

struct agent_dev {
	struct agent *a;
	struct device *dev;
	const struct device_cfg *cfg;
	bool up;
	char detail[AGENT_DETAIL_MAX];
};

struct agent {
	const struct aconf *cfg;
	struct event_base *base;
	struct svc *svc;
	struct event *sigterm, *sigint, *drain;
	struct spool *spool;
	struct http *http;
	struct uplink *uplink;
	struct control *ctl;
	struct lane *lane;
	struct agent_dev devs[ACONF_MAX_DEVICES];
	size_t ndevs;
	unsigned char pk[32];
	char kid[KEYS_KID_LEN + 1];
	struct agent_resolve *resolves;
	struct agent_check *checks;
	int stop_signal;
	/* GET /v1/keys: the http arg is &keys_req (cancelled with it). */
	struct event *keys_timer;
	struct agent *keys_req;
	int keys_in_flight;
	char keys_sig[CKEY_SIG_MAX]; /* the kids central opened at the last answer */
};

/* Set aside for these, a basket may open once central has the key. */
static const char *const agent_key_reasons[] = { "bad_tid", "bad_kid", "unknown_kid", NULL };

static void agent_keys_refresh(struct agent *a, const char *why);

/* ------------------------------------------------------------ events */

/* Sends ev (taken) to every control client. */
static void agent_emit(struct agent *a, json_t *ev)
{
	if (!ev)
		return;
	control_broadcast(a->ctl, ev);
	json_decref(ev);
}

static const char *agent_tid_kind_name(enum tid_kind k)
{
	switch (k) {
	case TID_CARD: return "card";
	case TID_LOYALTY: return "loyalty";
	case TID_PHONE: return "phone";
	}
	return "unknown";
}

/* ------------------------------------------------------------ resolve */

static void agent_resolve_unlink(struct agent *a, struct agent_resolve *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		a->resolves = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

/* Drops the resolves of txn (all of them, or those older than keep_gen):
 * their answers could no longer change anything. */
static void agent_resolve_cancel(struct agent *a, const char *txn, unsigned keep_gen)
{
	struct agent_resolve *r, *next;

	for (r = a->resolves; r; r = next) {
		next = r->next;
		if (strcmp(r->txn, txn) != 0 || (keep_gen && r->gen == keep_gen))
			continue;
		http_cancel(a->http, r);
		agent_resolve_unlink(a, r);
		free(r);
	}
}

static bool agent_resolve_current(struct agent *a, const struct agent_resolve *r)
{
	return lane_is_open(a->lane) && strcmp(lane_txn(a->lane), r->txn) == 0 &&
	       lane_tid_gen(a->lane) == r->gen;
}

/* A short token for why no household came: for events and logs. */
static void agent_resolve_reason(long status, const char *body, size_t len, const char *errmsg,
				 char *out, size_t n)
{
	json_t *root = NULL;
	const char *code = NULL;
	pos_err e;

	if (status == 0) {
		snprintf(out, n, "%s",
			 errmsg && strstr(errmsg, "timed out") ? "timeout" : "unreachable");
		return;
	}
	if (body && len && jsonx_parse(body, len, AGENT_RESOLVE_ANSWER_MAX, 4, &root, &e) == 0 &&
	    json_is_object(root) && jsonx_str(root, "error", 0, 48, &code, &e) == 0 && code &&
	    *code && strspn(code, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(code))
		snprintf(out, n, "%s", code);
	else
		snprintf(out, n, "http_%ld", status);
	json_decref(root);
}

static void agent_on_resolve(long status, const char *body, size_t len, const char *errmsg,
			     void *arg)
{
	struct agent_resolve *r = arg;
	struct agent *a = r->a;
	long ms = (long)((time_mono_us() - r->started_us) / 1000);
	bool current;
	char q[200];
	pos_err e;

	agent_resolve_unlink(a, r);
	current = agent_resolve_current(a, r);
	if (status == 200) {
		json_t *root = NULL;
		const char *hhid = NULL, *dtid = NULL;
		int newhh = 0;

		if (jsonx_parse(body, len, AGENT_RESOLVE_ANSWER_MAX, 4, &root, &e) < 0 ||
		    !json_is_object(root) || jsonx_str(root, "hhid", 1, 64, &hhid, &e) < 0 ||
		    jsonx_str(root, "deident_tid", 1, 64, &dtid, &e) < 0) {
			log_warn("resolve_failed", "txn=%s reason=bad_answer ms=%ld", r->txn, ms);
			if (current)
				agent_emit(a, json_pack("{s:s, s:s, s:s}", "event", "resolve_failed",
							"txn", r->txn, "reason", "bad_answer"));
			json_decref(root);
			goto out;
		}
		newhh = json_is_true(json_object_get(root, "new_household"));
		if (!current || lane_set_household(a->lane, r->gen, hhid, dtid, &e) < 0) {
			/* Too late: the basket left with the EncTID, or the TID
			 * was replaced. Central resolves the basket on arrival. */
			log_info("resolve_late", "txn=%s ms=%ld", r->txn, ms);
			json_decref(root);
			goto out;
		}
		log_info("resolved", "txn=%s hhid=%s new_household=%s ms=%ld", r->txn, hhid,
			 newhh ? "true" : "false", ms);
		agent_emit(a, json_pack("{s:s, s:s, s:s, s:b}", "event", "household", "txn", r->txn,
					"hhid", hhid, "new_household", newhh));
		json_decref(root);
		goto out;
	}
	{
		char reason[64];

		agent_resolve_reason(status, body, len, errmsg, reason, sizeof reason);
		log_warn("resolve_failed", "txn=%s reason=%s status=%ld ms=%ld error=%s", r->txn,
			 reason, status, ms, log_q(q, sizeof q, errmsg ? errmsg : ""));
		if (current)
			agent_emit(a, json_pack("{s:s, s:s, s:s}", "event", "resolve_failed", "txn",
						r->txn, "reason", reason));
		/* The TID is gone, so this resolve cannot be sealed again; the
		 * next customer's will be, to the key central hands out now. */
		if (ckey_refusal(reason))
			agent_keys_refresh(a, reason);
	}
out:
	free(r);
}

static void agent_resolve_start(struct agent *a, const char *txn, unsigned gen, const char *enc)
{
	struct agent_resolve *r = calloc(1, sizeof *r);
	json_t *req = NULL;
	char *body = NULL;
	pos_err e;

	if (!r)
		goto fail;
	r->a = a;
	r->gen = gen;
	memcpy(r->txn, txn, LANE_TXN_LEN + 1);
	r->started_us = time_mono_us();
	req = json_pack("{s:s, s:{s:s, s:s}}", "txn", txn, "tid", "kid", a->kid, "enc", enc);
	body = req ? jsonx_dump(req) : NULL;
	if (!body) {
		err_set(&e, POS_ENOMEM, "out of memory");
		goto fail;
	}
	if (http_post(a->http, "/v1/resolve", body, strlen(body), a->cfg->resolve_timeout_ms,
		      agent_on_resolve, r, &e) < 0)
		goto fail;
	r->next = a->resolves;
	if (a->resolves)
		a->resolves->prev = r;
	a->resolves = r;
	json_decref(req);
	free(body);
	return;
fail:
	{
		char q[300];
		log_warn("resolve_failed", "txn=%s reason=not_sent error=%s", txn,
			 log_q(q, sizeof q, r ? e.msg : "out of memory"));
	}
	agent_emit(a, json_pack("{s:s, s:s, s:s}", "event", "resolve_failed", "txn", txn, "reason",
				"not_sent"));
	json_decref(req);
	free(body);
	free(r);
}

/* ------------------------------------------------------------ the lane */

/* Opens a transaction when none is; *opened says whether this did. */
static int agent_ensure_open(struct agent *a, bool *opened, pos_err *e)
{
	char txn[UUID_STR_LEN + 1];
	int rc;

	*opened = false;
	if (lane_is_open(a->lane))
		return 0;
	if ((rc = uuid_v7(txn, e)) < 0 || (rc = lane_begin(a->lane, txn, e)) < 0)
		return rc;
	*opened = true;
	log_info("txn_open", "txn=%s", txn);
	return 0;
}

/* Seals tid (a normalised TID, wiped by the caller) into the lane. */
static json_t *agent_tid(struct agent *a, const char *tid, enum tid_kind kind)
{
	char info[ENVELOPE_INFO_MAX], enc[ENVELOPE_B64_MAX], txn[LANE_TXN_LEN + 1];
	unsigned gen = 0;
	bool opened = false, replaced = false;
	json_t *reply;
	pos_err e;

	if (agent_ensure_open(a, &opened, &e) < 0)
		return control_error("internal", e.msg);
	memcpy(txn, lane_txn(a->lane), sizeof txn);
	if (envelope_info(info, a->cfg->store, a->cfg->terminal, txn, &e) < 0 ||
	    envelope_seal_tid(a->pk, a->kid, info, tid, enc, &e) < 0 ||
	    lane_set_tid(a->lane, kind, a->kid, enc, &gen, &replaced, &e) < 0) {
		char q[300];
		/* e never holds the TID (common/ never echoes one). */
		log_error("tid_seal_failed", "txn=%s error=%s", txn, log_q(q, sizeof q, e.msg));
		if (opened)
			lane_close(a->lane);
		wipe(enc, sizeof enc);
		return control_error("seal_failed", "the identifier could not be sealed");
	}
	log_info("tid", "txn=%s kind=%s replaced=%s", txn, agent_tid_kind_name(kind),
		 replaced ? "true" : "false");
	if (replaced)
		agent_resolve_cancel(a, txn, gen);
	agent_emit(a, json_pack("{s:s, s:s, s:s, s:b}", "event", "tid", "txn", txn, "kind",
				agent_tid_kind_name(kind), "replaced", replaced));
	agent_resolve_start(a, txn, gen, enc);
	wipe(enc, sizeof enc);
	reply = json_pack("{s:b, s:s, s:s, s:b}", "ok", 1, "txn", txn, "kind",
			  agent_tid_kind_name(kind), "replaced", replaced);
	return reply;
}

static json_t *agent_item(struct agent *a, const struct gtin_scan *scan)
{
	struct lane_item line;
	bool opened = false;
	long price = scan->variable_measure ? scan->price_cents : -1;
	pos_err e;

	if (agent_ensure_open(a, &opened, &e) < 0)
		return control_error("internal", e.msg);
	if (lane_add_item(a->lane, scan->item_gtin, price, &line, &e) < 0) {
		if (opened)
			lane_close(a->lane);
		return control_error("item_refused", e.msg);
	}
	log_info("item", "txn=%s gtin=%s qty=%ld", lane_txn(a->lane), line.gtin, line.qty);
	agent_emit(a, json_pack("{s:s, s:s, s:s, s:I}", "event", "item", "txn", lane_txn(a->lane),
				"gtin", line.gtin, "qty", (json_int_t)line.qty));
	return json_pack("{s:b, s:s, s:s, s:I}", "ok", 1, "txn", lane_txn(a->lane), "gtin",
			 line.gtin, "qty", (json_int_t)line.qty);
}

/* ------------------------------------------------------------ offers */

static void agent_check_unlink(struct agent *a, struct agent_check *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		a->checks = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

/* Central's answer {"code","redeemable","reason"?,"title"?} becomes the
 * "offer" event; no answer in time is an event too, and the code stays in
 * the basket: central decides when the basket is stored. */
static void agent_on_check(long status, const char *body, size_t len, const char *errmsg,
			   void *arg)
{
	struct agent_check *c = arg;
	struct agent *a = c->a;
	long ms = (long)((time_mono_us() - c->started_us) / 1000);
	const char *reason = NULL, *title = NULL;
	json_t *root = NULL, *ev = NULL, *red;
	char why[64];
	pos_err e;

	agent_check_unlink(a, c);
	if (status == 200 &&
	    jsonx_parse(body, len, AGENT_RESOLVE_ANSWER_MAX, 4, &root, &e) == 0 &&
	    json_is_object(root) && json_is_boolean(red = json_object_get(root, "redeemable")) &&
	    jsonx_str(root, "reason", 0, 32, &reason, &e) == 0 &&
	    jsonx_str(root, "title", 0, 512, &title, &e) == 0 &&
	    (!reason || strspn(reason, "abcdefghijklmnopqrstuvwxyz_") == strlen(reason))) {
		log_info("offer_checked", "txn=%s redeemable=%s reason=%s ms=%ld", c->txn,
			 json_is_true(red) ? "true" : "false", reason ? reason : "-", ms);
		ev = json_pack("{s:s, s:s, s:s, s:b, s:b}", "event", "offer", "txn", c->txn, "code",
			       c->code, "checked", 1, "redeemable", json_is_true(red));
		if (ev && reason)
			json_object_set_new(ev, "reason", json_string(reason));
		if (ev && title)
			json_object_set_new(ev, "title", json_string(title));
	} else {
		if (status == 200)
			snprintf(why, sizeof why, "bad_answer");
		else
			agent_resolve_reason(status, body, len, errmsg, why, sizeof why);
		log_warn("offer_unchecked", "txn=%s reason=%s status=%ld ms=%ld", c->txn, why,
			 status, ms);
		ev = json_pack("{s:s, s:s, s:s, s:b, s:s}", "event", "offer", "txn", c->txn, "code",
			       c->code, "checked", 0, "reason", why);
	}
	agent_emit(a, ev);
	json_decref(root);
	free(c);
}

static void agent_check_start(struct agent *a, const char *txn, const char *code)
{
	struct agent_check *c = calloc(1, sizeof *c);
	json_t *req = NULL;
	char *body = NULL;
	pos_err e;

	if (!c)
		goto fail;
	c->a = a;
	memcpy(c->txn, txn, LANE_TXN_LEN + 1);
	/* lane_add_offer took it: at most LANE_OFFER_MAX bytes. */
	memcpy(c->code, code, strnlen(code, LANE_OFFER_MAX));
	c->started_us = time_mono_us();
	req = json_pack("{s:s}", "code", code);
	body = req ? jsonx_dump(req) : NULL;
	if (!body ||
	    http_post(a->http, "/v1/offers/check", body, strlen(body), a->cfg->resolve_timeout_ms,
		      agent_on_check, c, &e) < 0)
		goto fail;
	c->next = a->checks;
	if (a->checks)
		a->checks->prev = c;
	a->checks = c;
	json_decref(req);
	free(body);
	return;
fail:
	log_warn("offer_unchecked", "txn=%s reason=not_sent", txn);
	agent_emit(a, json_pack("{s:s, s:s, s:s, s:b, s:s}", "event", "offer", "txn", txn, "code",
				code, "checked", 0, "reason", "not_sent"));
	json_decref(req);
	free(body);
	free(c);
}

/* A scanned offer code: its check digit first (a misread never reaches
 * central), then into the basket once, then central is asked at once. An
 * offer may open the transaction: customers often show the phone first. */
static json_t *agent_offer(struct agent *a, const char *code)
{
	bool added = false, opened = false;
	pos_err e;

	if (classify_offer_check(code, &e) < 0)
		return control_error("bad_offer", e.msg);
	if (agent_ensure_open(a, &opened, &e) < 0)
		return control_error("internal", e.msg);
	if (lane_add_offer(a->lane, code, &added, &e) < 0) {
		if (opened)
			lane_close(a->lane);
		return control_error("offer_refused", e.msg);
	}
	log_info("offer", "txn=%s added=%s offers=%zu", lane_txn(a->lane), added ? "true" : "false",
		 lane_offers(a->lane));
	if (added)
		agent_check_start(a, lane_txn(a->lane), code);
	return json_pack("{s:b, s:s, s:s, s:b}", "ok", 1, "txn", lane_txn(a->lane), "code", code,
			 "added", added);
}

/* With [receipt] base_url set: a fresh receipt token for the open
 * transaction, into its basket, and the link printed on the receipt into
 * url (a new token each total, so a retried total gets the link of the
 * basket it spools). */
static int agent_receipt(struct agent *a, char *url, size_t cap, pos_err *e)
{
	char tok[RECEIPT_TOKEN_LEN + 1];
	int rc, n;

	if (!a->cfg->receipt_base_url[0])
		return 0;
	if ((rc = receipt_token_new(tok, e)) < 0 || (rc = lane_set_receipt(a->lane, tok, e)) < 0)
		return rc;
	n = snprintf(url, cap, "%s/r/%s", a->cfg->receipt_base_url, tok);
	if (n < 0 || (size_t)n >= cap)
		return err_set(e, POS_ETOOBIG, "receipt link too long");
	return 0;
}

/* The total reply and the spooled event: receipt_url only when one was made. */
static json_t *agent_total_json(json_t *v, const char *url)
{
	if (v && url[0])
		json_object_set_new(v, "receipt_url", json_string(url));
	return v;
}

static json_t *agent_total(struct agent *a)
{
	char url[ACONF_URL_MAX + RECEIPT_TOKEN_LEN + 8];
	char txn[LANE_TXN_LEN + 1];
	char *body = NULL;
	size_t len = 0;
	long units, lines;
	pos_err e;
	int rc;

	if (!lane_is_open(a->lane))
		return control_error("no_transaction", "no open transaction to total");
	url[0] = '\0';
	if (lane_lines(a->lane) > 0 && (rc = agent_receipt(a, url, sizeof url, &e)) < 0)
		return control_error("internal", e.msg);
	if ((rc = lane_body(a->lane, time_now_ms(), &body, &len, &e)) < 0)
		return control_error(rc == POS_EINVAL ? "empty" : "internal", e.msg);
	memcpy(txn, lane_txn(a->lane), sizeof txn);
	/* Persist before answering: once "ok" is said, kill -9 loses nothing. */
	if (spool_put(a->spool, txn, body, len, &e) < 0) {
		char q[300];
		log_error("spool_failed", "txn=%s error=%s", txn, log_q(q, sizeof q, e.msg));
		free(body);
		return control_error("spool_failed", "the basket could not be saved; try again");
	}
	free(body);
	/* "items" counts basket lines, as the basket body and central's
	 * history do; "units" is what the cashier scanned. */
	units = lane_units(a->lane);
	lines = (long)lane_lines(a->lane);
	log_info("spooled", "txn=%s items=%ld units=%ld resolved=%s tid=%s", txn, lines, units,
		 lane_has_household(a->lane) ? "true" : "false",
		 lane_has_tid(a->lane) ? "true" : "false");
	agent_resolve_cancel(a, txn, 0);
	lane_close(a->lane);
	agent_emit(a, agent_total_json(json_pack("{s:s, s:s, s:I, s:I}", "event", "spooled", "txn",
						 txn, "items", (json_int_t)lines, "units",
						 (json_int_t)units),
				       url));
	uplink_kick(a->uplink);
	return agent_total_json(json_pack("{s:b, s:s, s:I, s:I}", "ok", 1, "txn", txn, "items",
					  (json_int_t)lines, "units", (json_int_t)units),
				url);
}

static json_t *agent_void(struct agent *a)
{
	struct lane_item line;
	pos_err e;
	int rc;

	if (!lane_is_open(a->lane))
		return control_error("no_transaction", "no open transaction");
	if ((rc = lane_void(a->lane, &line, &e)) < 0)
		return control_error(rc == POS_ENOTFOUND ? "nothing_to_void" : "internal", e.msg);
	log_info("void", "txn=%s gtin=%s qty=%ld", lane_txn(a->lane), line.gtin, line.qty);
	agent_emit(a, json_pack("{s:s, s:s, s:s, s:I}", "event", "void", "txn", lane_txn(a->lane),
				"gtin", line.gtin, "qty", (json_int_t)line.qty));
	return json_pack("{s:b, s:s, s:s, s:I}", "ok", 1, "txn", lane_txn(a->lane), "gtin",
			 line.gtin, "qty", (json_int_t)line.qty);
}

static json_t *agent_cancel(struct agent *a)
{
	char txn[LANE_TXN_LEN + 1];

	if (!lane_is_open(a->lane))
		return control_error("no_transaction", "no open transaction");
	memcpy(txn, lane_txn(a->lane), sizeof txn);
	agent_resolve_cancel(a, txn, 0);
	lane_close(a->lane);
	log_info("cancel", "txn=%s", txn);
	agent_emit(a, json_pack("{s:s, s:s}", "event", "cancel", "txn", txn));
	return json_pack("{s:b, s:s}", "ok", 1, "txn", txn);
}

static json_t *agent_status(struct agent *a)
{
	json_t *r, *devs = json_array();
	const char *txn = lane_txn(a->lane);

	if (!devs)
		return NULL;
	for (size_t i = 0; i < a->ndevs; i++) {
		const struct agent_dev *d = &a->devs[i];
		json_array_append_new(devs, json_pack("{s:s, s:s, s:b, s:s}", "name", d->cfg->name,
						      "role", device_role_name(d->cfg->role), "up",
						      d->up, "detail", d->detail));
	}
	r = json_pack("{s:b, s:s, s:s, s:o, s:I, s:I, s:b, s:b, s:I, s:I, s:b, s:o}", "ok", 1,
		      "store", a->cfg->store, "terminal", a->cfg->terminal, "txn",
		      *txn ? json_string(txn) : json_null(), "items",
		      (json_int_t)lane_lines(a->lane), "units", (json_int_t)lane_units(a->lane),
		      "tid", lane_has_tid(a->lane), "household", lane_has_household(a->lane),
		      "spooled", (json_int_t)spool_count(a->spool), "rejected",
		      (json_int_t)spool_count_rejected(a->spool), "online",
		      !uplink_offline(a->uplink), "devices", devs);
	return r;
}

/* pos-agent spool retry while the agent runs: the agent moves the rows
 * itself and sends at once (the uplink sleeps while nothing waits). */
static json_t *agent_retry(struct agent *a)
{
	long moved = 0;
	pos_err e;

	if (spool_retry(a->spool, NULL, &moved, &e) < 0)
		return control_error("spool_failed", e.msg);
	log_info("set_aside_retried", "baskets=%ld reason=operator", moved);
	if (moved > 0) {
		agent_emit(a, json_pack("{s:s, s:I, s:s}", "event", "retried", "baskets",
					(json_int_t)moved, "reason", "operator"));
		uplink_kick(a->uplink);
	}
	return json_pack("{s:b, s:I, s:I}", "ok", 1, "moved", (json_int_t)moved, "spooled",
			 (json_int_t)spool_count(a->spool));
}

/* A code from a scanner or a ctl "scan". Commands coded as barcodes do
 * what their ctl twins do. */
static json_t *agent_code(struct agent *a, const char *code, size_t len)
{
	struct classify_result res;
	char tid[TID_MAX];
	json_t *reply = NULL;
	pos_err e;

	if (classify_code(&a->cfg->rules, code, len, &res, &e) < 0)
		return control_error("bad_code", e.msg);
	switch (res.kind) {
	case CLASSIFY_ITEM: reply = agent_item(a, &res.item); break;
	case CLASSIFY_OFFER: reply = agent_offer(a, res.code); break;
	case CLASSIFY_TOTAL: reply = agent_total(a); break;
	case CLASSIFY_VOID: reply = agent_void(a); break;
	case CLASSIFY_CANCEL: reply = agent_cancel(a); break;
	case CLASSIFY_LOYALTY:
		if (tid_from_loyalty(res.code, tid, &e) < 0)
			reply = control_error("bad_code", "not a valid loyalty number");
		else
			reply = agent_tid(a, tid, TID_LOYALTY);
		wipe(tid, sizeof tid);
		break;
	}
	classify_result_wipe(&res);
	return reply;
}

/* ------------------------------------------------------------ control */

static json_t *agent_on_request(const struct control_request *req, void *arg)
{
	struct agent *a = arg;
	char tid[TID_MAX];
	enum tid_kind kind = 0;
	json_t *r;
	pos_err e;

	switch (req->cmd) {
	case CONTROL_STATUS: return agent_status(a);
	case CONTROL_TOTAL: return agent_total(a);
	case CONTROL_VOID: return agent_void(a);
	case CONTROL_CANCEL: return agent_cancel(a);
	case CONTROL_SCAN: return agent_code(a, req->arg, strlen(req->arg));
	case CONTROL_RETRY: return agent_retry(a);
	case CONTROL_TID:
		if (tid_normalize(req->arg, tid, &kind, &e) < 0) {
			wipe(tid, sizeof tid);
			return control_error("bad_tid", e.msg);
		}
		r = agent_tid(a, tid, kind);
		wipe(tid, sizeof tid);
		return r;
	}
	return control_error("unknown_command", "unknown cmd");
}

/* A new client first learns how the devices and the uplink stand. */
static json_t *agent_welcome(void *arg)
{
	struct agent *a = arg;
	json_t *evs = json_array();

	if (!evs)
		return NULL;
	for (size_t i = 0; i < a->ndevs; i++) {
		const struct agent_dev *d = &a->devs[i];
		json_array_append_new(evs, json_pack("{s:s, s:s, s:s, s:s}", "event", "device", "name",
						     d->cfg->name, "state", d->up ? "up" : "down",
						     "detail", d->detail));
	}
	if (uplink_offline(a->uplink))
		json_array_append_new(evs, json_pack("{s:s}", "event", "offline"));
	return evs;
}

/* ------------------------------------------------------------ devices */

static void agent_on_frame(struct device *dev, const char *frame, size_t len, void *arg)
{
	struct agent_dev *d = arg;
	struct agent *a = d->a;
	json_t *reply = NULL;
	pos_err e;

	(void)dev;
	if (d->cfg->role == DEVICE_SCANNER) {
		reply = agent_code(a, frame, len);
	} else {
		char line[MSR_MAX_LINE + 1], tid[TID_MAX];
		struct msr_result res;

		memset(&res, 0, sizeof res);
		if (len > MSR_MAX_LINE) {
			reply = control_error("bad_swipe", "swipe longer than a card's tracks");
		} else {
			memcpy(line, frame, len);
			line[len] = '\0';
			/* msr_parse wipes line whatever the outcome. */
			if (msr_parse(line, len, &res, &e) < 0)
				reply = control_error("bad_swipe", e.msg);
			else if (tid_from_pan(res.pan, tid, &e) < 0)
				reply = control_error("bad_swipe", e.msg);
			else
				reply = agent_tid(a, tid, TID_CARD);
		}
		msr_result_wipe(&res);
		wipe(line, sizeof line);
		wipe(tid, sizeof tid);
	}
	if (reply && !json_is_true(json_object_get(reply, "ok"))) {
		const char *why = json_string_value(json_object_get(reply, "detail"));
		char q[300];

		log_warn("rejected", "source=%s reason=%s", d->cfg->name,
			 log_q(q, sizeof q, why ? why : "refused"));
		agent_emit(a, json_pack("{s:s, s:s, s:s}", "event", "rejected", "source",
					d->cfg->name, "reason", why ? why : "refused"));
	}
	json_decref(reply);
}

static void agent_on_device(struct device *dev, enum device_event ev, const char *detail,
			    void *arg)
{
	struct agent_dev *d = arg;
	struct agent *a = d->a;
	char q[300];

	(void)dev;
	if (!detail)
		detail = "";
	switch (ev) {
	case DEVICE_UP:
	case DEVICE_DOWN:
		d->up = ev == DEVICE_UP;
		snprintf(d->detail, sizeof d->detail, "%s", detail);
		if (d->up)
			log_info("device_up", "name=%s detail=%s", d->cfg->name,
				 log_q(q, sizeof q, detail));
		else
			log_warn("device_down", "name=%s detail=%s", d->cfg->name,
				 log_q(q, sizeof q, detail));
		agent_emit(a, json_pack("{s:s, s:s, s:s, s:s}", "event", "device", "name",
					d->cfg->name, "state", d->up ? "up" : "down", "detail",
					d->detail));
		break;
	case DEVICE_REJECTED:
		log_warn("rejected", "source=%s reason=%s", d->cfg->name, log_q(q, sizeof q, detail));
		agent_emit(a, json_pack("{s:s, s:s, s:s}", "event", "rejected", "source",
					d->cfg->name, "reason", detail));
		break;
	}
}

/* ------------------------------------------------------------ uplink */

static void agent_on_uplink(enum uplink_event ev, const char *txn, const char *detail, void *arg)
{
	struct agent *a = arg;
	char q[300];

	if (!detail)
		detail = "";
	switch (ev) {
	case UPLINK_UPLOADED:
		log_info("uploaded", "txn=%s status=%s", txn ? txn : "-", detail);
		agent_emit(a, json_pack("{s:s, s:s}", "event", "uploaded", "txn", txn ? txn : ""));
		break;
	case UPLINK_REJECTED:
		log_error("basket_rejected", "txn=%s reason=%s", txn ? txn : "-",
			  log_q(q, sizeof q, detail));
		agent_emit(a, json_pack("{s:s, s:s, s:s, s:s}", "event", "rejected", "source",
					"central", "reason", detail, "txn", txn ? txn : ""));
		break;
	case UPLINK_OFFLINE:
		log_warn("offline", "reason=%s spooled=%ld", log_q(q, sizeof q, detail),
			 spool_count(a->spool));
		agent_emit(a, json_pack("{s:s, s:s}", "event", "offline", "reason", detail));
		break;
	case UPLINK_ONLINE:
		log_info("online", "spooled=%ld", spool_count(a->spool));
		agent_emit(a, json_pack("{s:s}", "event", "online"));
		/* Central may be back from a restart with other keys. */
		agent_keys_refresh(a, "online");
		break;
	}
}

/* ------------------------------------------------------------ central's key */

/* Baskets set aside because central could not open their EncTID go back
 * to waiting: central's keys changed since (a restart after a rotation),
 * or this is the agent's first answer since it started. */
static void agent_keys_retry_set_aside(struct agent *a, const char *why)
{
	long moved = 0;
	pos_err e;
	char q[300];

	if (spool_retry(a->spool, agent_key_reasons, &moved, &e) < 0) {
		log_error("spool_failed", "op=retry error=%s", log_q(q, sizeof q, e.msg));
		return;
	}
	if (moved == 0)
		return;
	log_info("set_aside_retried", "baskets=%ld reason=%s", moved, why);
	agent_emit(a, json_pack("{s:s, s:I, s:s}", "event", "retried", "baskets",
				(json_int_t)moved, "reason", why));
	uplink_kick(a->uplink);
}

/* Takes central's current key: in memory for the next seal, and into
 * central.pub (atomically) so a restart starts with it. */
static void agent_keys_adopt(struct agent *a, const struct ckey_answer *k)
{
	char old[KEYS_KID_LEN + 1], q[300];
	pos_err e;

	memcpy(old, a->kid, sizeof old);
	memcpy(a->pk, k->pk, sizeof a->pk);
	memcpy(a->kid, k->kid, sizeof a->kid);
	if (ckey_save(a->cfg->public_key, k->pk, &e) < 0)
		log_error("central_key_not_saved", "kid=%s error=%s (used until the agent stops)",
			  k->kid, log_q(q, sizeof q, e.msg));
	log_info("central_key_refreshed", "old_kid=%s kid=%s", old, k->kid);
	agent_emit(a, json_pack("{s:s, s:s, s:s}", "event", "central_key", "kid", k->kid,
				"old_kid", old));
}

static void agent_keys_arm(struct agent *a, long s)
{
	struct timeval tv = { .tv_sec = s, .tv_usec = 0 };

	evtimer_add(a->keys_timer, &tv);
}

static void agent_on_keys(long status, const char *body, size_t len, const char *errmsg,
			  void *arg)
{
	struct agent *a = *(struct agent **)arg;
	struct ckey_answer k;
	char sig[CKEY_SIG_MAX], q[300];
	bool first = a->keys_sig[0] == '\0';
	pos_err e;

	a->keys_in_flight = 0;
	if (status != 200 || ckey_parse(body, len, &k, &e) < 0) {
		if (status == 200)
			log_warn("keys_refresh_failed", "error=%s", log_q(q, sizeof q, e.msg));
		else
			log_warn("keys_refresh_failed", "status=%ld error=%s", status,
				 log_q(q, sizeof q, errmsg ? errmsg : "refused"));
		agent_keys_arm(a, a->cfg->keys_refresh_s < AGENT_KEYS_RETRY_S ? a->cfg->keys_refresh_s
									      : AGENT_KEYS_RETRY_S);
		uplink_rekeyed(a->uplink);
		return;
	}
	if (strcmp(k.kid, a->kid) != 0)
		agent_keys_adopt(a, &k);
	ckey_signature(&k, sig);
	if (strcmp(sig, a->keys_sig) != 0) {
		memcpy(a->keys_sig, sig, sizeof a->keys_sig);
		agent_keys_retry_set_aside(a, first ? "agent_started" : "central_keys_changed");
	}
	log_debug("keys_refreshed", "kid=%s opens=%s", k.kid, sig);
	agent_keys_arm(a, a->cfg->keys_refresh_s);
	uplink_rekeyed(a->uplink);
}

/* Asks central for its keys unless a request is already out. */
static void agent_keys_refresh(struct agent *a, const char *why)
{
	pos_err e;
	char q[300];

	if (a->keys_in_flight)
		return;
	evtimer_del(a->keys_timer);
	if (http_get(a->http, "/v1/keys", AGENT_KEYS_TIMEOUT_MS, agent_on_keys, &a->keys_req, &e) <
	    0) {
		log_warn("keys_refresh_failed", "why=%s error=%s", why, log_q(q, sizeof q, e.msg));
		agent_keys_arm(a, AGENT_KEYS_RETRY_S);
		uplink_rekeyed(a->uplink);
		return;
	}
	a->keys_in_flight = 1;
	log_debug("keys_refresh", "why=%s", why);
}

static void agent_on_keys_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	agent_keys_refresh(arg, "periodic");
}

static void agent_on_uplink_rekey(void *arg)
{
	agent_keys_refresh(arg, "basket_refused");
}

static void agent_on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	(void)fd;
	(void)what;
	uplink_kick(a->uplink);
}

static void agent_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct agent *a = arg;

	(void)what;
	a->stop_signal = (int)sig;
	/* Callbacks run one at a time: a spool commit is never cut in half. */
	event_base_loopbreak(a->base);
}

/* ------------------------------------------------------------ run */

/* SIGHUP: what is cheap and safe to change without a restart, the log
 * level; devices, central and the spool keep their settings. */
static void agent_reload(void *arg)
{
	struct agent *a = arg;
	struct aconf *fresh = NULL;
	pos_err e = { 0 };
	char q[300];

	if (aconf_load(a->cfg->file, &fresh, &e) < 0) {
		log_error("reload_failed", "error=%s (the running settings stay)",
			  log_q(q, sizeof q, e.msg));
		return;
	}
	log_set_level(fresh->log_level);
	log_info("reloaded", "log_level=%d", (int)fresh->log_level);
	aconf_free(fresh);
}

static void agent_teardown(struct agent *a)
{
	svc_free(a->svc);
	for (size_t i = 0; i < a->ndevs; i++)
		device_free(a->devs[i].dev);
	control_free(a->ctl);
	uplink_free(a->uplink);
	while (a->resolves) {
		struct agent_resolve *r = a->resolves;
		http_cancel(a->http, r);
		agent_resolve_unlink(a, r);
		free(r);
	}
	while (a->checks) {
		struct agent_check *c = a->checks;
		http_cancel(a->http, c);
		agent_check_unlink(a, c);
		free(c);
	}
	http_free(a->http);
	if (a->keys_timer)
		event_free(a->keys_timer);
	spool_close(a->spool);
	lane_free(a->lane);
	if (a->drain)
		event_free(a->drain);
	if (a->sigterm)
		event_free(a->sigterm);
	if (a->sigint)
		event_free(a->sigint);
	wipe(a->pk, sizeof a->pk);
	if (a->base)
		event_base_free(a->base);
}

static int agent_start(struct agent *a, pos_err *e)
{
	struct http_opts ho;
	struct timeval tv;
	long ms;
	int rc;

	if ((rc = keys_load_public(a->cfg->public_key, a->pk, a->kid, e)) < 0) {
		err_prefix(e, "[central] public_key");
		return rc;
	}
	if ((rc = aconf_check_files(a->cfg, e)) < 0)
		return rc;
	a->base = event_base_new();
	if (!a->base)
		return err_set(e, POS_ENOMEM, "cannot create the event loop");
	if ((rc = lane_new(&a->lane, e)) < 0 || (rc = spool_open(a->cfg->spool, &a->spool, e)) < 0)
		return rc;
	ho = (struct http_opts){ .base_url = a->cfg->url, .ca = a->cfg->ca, .cert = a->cfg->cert,
				 .key = a->cfg->key };
	if ((rc = http_new(a->base, &ho, &a->http, e)) < 0 ||
	    (rc = uplink_new(a->base, a->http, a->spool, agent_on_uplink, a, &a->uplink, e)) < 0 ||
	    (rc = control_new(a->base, a->cfg->socket, agent_on_request, a, &a->ctl, e)) < 0)
		return rc;
	control_set_welcome(a->ctl, agent_welcome);
	uplink_set_rekey(a->uplink, agent_on_uplink_rekey, a);
	a->keys_req = a;
	if (!(a->keys_timer = evtimer_new(a->base, agent_on_keys_timer, a)))
		return err_set(e, POS_ENOMEM, "cannot create a timer");
	for (size_t i = 0; i < a->cfg->ndevices; i++) {
		struct agent_dev *d = &a->devs[i];
		d->a = a;
		d->cfg = &a->cfg->devices[i];
		snprintf(d->detail, sizeof d->detail, "connecting");
		a->ndevs = i + 1;
		rc = device_start(a->base, d->cfg, agent_on_frame, agent_on_device, d, &d->dev, e);
		if (rc < 0) {
			err_prefix(e, "device %s", d->cfg->name);
			return rc;
		}
	}
	a->sigterm = evsignal_new(a->base, SIGTERM, agent_on_signal, a);
	a->sigint = evsignal_new(a->base, SIGINT, agent_on_signal, a);
	a->drain = evtimer_new(a->base, agent_on_drain, a);
	if (!a->sigterm || !a->sigint || !a->drain || evsignal_add(a->sigterm, NULL) != 0 ||
	    evsignal_add(a->sigint, NULL) != 0)
		return err_set(e, POS_ENOMEM, "cannot set up signal handling");
	ms = AGENT_START_DRAIN_MS + (long)arc4random_uniform(AGENT_START_JITTER_MS + 1);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(a->drain, &tv);
	/* Before the first basket drains: a key refused since the last run
	 * is refreshed first, and what it set aside is retried. */
	agent_keys_refresh(a, "start");
	return 0;
}

int agent_run(const struct aconf *cfg, pos_err *e)
{
	struct agent *a;
	int rc;

	if (!cfg)
		return err_set(e, POS_EINVAL, "agent: no configuration");
	a = calloc(1, sizeof *a);
	if (!a)
		return err_set(e, POS_ENOMEM, "agent: out of memory");
	a->cfg = cfg;
	/* Writes to a control client that went away must not kill the agent. */
	signal(SIGPIPE, SIG_IGN);
	rc = agent_start(a, e);
	if (rc == 0) {
		log_info("started", "store=%s terminal=%s devices=%zu spooled=%ld socket=%s",
			 cfg->store, cfg->terminal, cfg->ndevices, spool_count(a->spool),
			 cfg->socket);
		if ((rc = svc_start(a->base, agent_reload, a, &a->svc, e)) < 0)
			goto out;
		if (event_base_dispatch(a->base) < 0)
			rc = err_set(e, POS_EIO, "event loop failed");
		else
			log_info("stopped", "signal=%d spooled=%ld", a->stop_signal,
				 spool_count(a->spool));
	}
out:
	agent_teardown(a);
	free(a);
	return rc;
}
