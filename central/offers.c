#include "offers.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "gtin.h"
#include "jsonx.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "wipe.h"

/* ------------------------------------------------------------ rules */

bool offer_open(const struct store_offer *o, int64_t at_ms)
{
	return o && o->ended_ms == 0 && (o->from_ms == 0 || o->from_ms <= at_ms) &&
	       (o->to_ms == 0 || o->to_ms > at_ms);
}

enum store_offer_reason offer_verdict(const struct store_offer_code *c, int64_t at_ms)
{
	if (!c)
		return STORE_OFFER_UNKNOWN;
	if (c->redeemed)
		return STORE_OFFER_USED;
	if (c->offer.ended_ms && c->offer.ended_ms <= at_ms)
		return STORE_OFFER_ENDED;
	if (c->offer.to_ms && c->offer.to_ms <= at_ms)
		return STORE_OFFER_EXPIRED;
	if (c->offer.from_ms && c->offer.from_ms > at_ms)
		return STORE_OFFER_NOT_STARTED;
	return STORE_OFFER_OK;
}

const char *offer_reason_name(enum store_offer_reason r)
{
	switch (r) {
	case STORE_OFFER_OK: return "";
	case STORE_OFFER_UNKNOWN: return "unknown";
	case STORE_OFFER_EXPIRED: return "expired";
	case STORE_OFFER_NOT_STARTED: return "not_started";
	case STORE_OFFER_ENDED: return "ended";
	case STORE_OFFER_USED: return "redeemed";
	}
	return "unknown";
}

#define OFFERS_CSV_LINE_MAX 1024

/* ------------------------------------------------------------ identifiers */

static bool offers_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool offers_code_valid(const char *code)
{
	int cd;

	if (!code || strnlen(code, STORE_OFFER_CODE_LEN + 1) != STORE_OFFER_CODE_LEN ||
	    code[0] != '9' || code[1] != '8' || !offers_digits(code, STORE_OFFER_CODE_LEN))
		return false;
	cd = gtin_check_digit(code, STORE_OFFER_CODE_LEN - 1);
	return cd >= 0 && code[STORE_OFFER_CODE_LEN - 1] == (char)('0' + cd);
}

int offers_code_new(char out[STORE_OFFER_CODE_LEN + 1], pos_err *e)
{
	unsigned char r[32];
	size_t n = 2, i = 0;
	int cd;

	out[0] = '9';
	out[1] = '8';
	/* Rejection sampling keeps every digit uniform: bytes of 250 and up
	 * would favour 0..5. */
	while (n < STORE_OFFER_CODE_LEN - 1) {
		if (i == 0 && RAND_bytes(r, sizeof r) != 1)
			return err_set(e, POS_ECRYPTO, "no randomness for an offer code");
		if (r[i] < 250)
			out[n++] = (char)('0' + r[i] % 10);
		i = (i + 1) % sizeof r;
	}
	cd = gtin_check_digit(out, STORE_OFFER_CODE_LEN - 1);
	if (cd < 0)
		return err_set(e, POS_EINVAL, "offer code check digit failed");
	out[STORE_OFFER_CODE_LEN - 1] = (char)('0' + cd);
	out[STORE_OFFER_CODE_LEN] = '\0';
	return 0;
}

bool offers_id_valid(const char *id)
{
	if (!id || strnlen(id, STORE_OFFER_ID_LEN + 1) != STORE_OFFER_ID_LEN ||
	    strncmp(id, "of_", 3) != 0)
		return false;
	for (size_t i = 3; i < STORE_OFFER_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

int offers_id_new(char out[STORE_OFFER_ID_LEN + 1], pos_err *e)
{
	unsigned char r[8];
	int rc;

	if (RAND_bytes(r, sizeof r) != 1)
		return err_set(e, POS_ECRYPTO, "no randomness for an offer id");
	memcpy(out, "of_", 3);
	rc = hex_encode(r, sizeof r, out + 3, STORE_OFFER_ID_LEN - 3 + 1, e);
	if (rc < 0)
		return rc;
	for (char *p = out + 3; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	return 0;
}

int offers_target_parse(const char *s, char out[STORE_OFFER_TARGET_MAX + 1], pos_err *e)
{
	if (!s)
		return err_set(e, POS_EINVAL, "target must be all or gtin:GTIN14");
	if (strcmp(s, "all") == 0) {
		memcpy(out, "all", 4);
		return 0;
	}
	if (strncmp(s, "gtin:", 5) != 0 || strnlen(s + 5, GTIN_LEN + 1) != GTIN_LEN ||
	    !gtin14_valid(s + 5))
		return err_set(e, POS_EINVAL,
			       "target must be all or gtin: and 14 digits with a valid check digit");
	memcpy(out, s, 5 + GTIN_LEN + 1);
	return 0;
}

int offers_text_check(const char *what, const char *s, size_t max, pos_err *e)
{
	json_t *probe;
	size_t n;

	if (!s || !(n = strnlen(s, max + 1)) || n > max)
		return err_set(e, POS_EINVAL, "%s must be 1 to %zu bytes", what, max);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			return err_set(e, POS_EINVAL, "%s holds a control character", what);
	}
	/* jansson refuses what is not UTF-8: the offer must be sendable. */
	probe = json_string(s);
	if (!probe)
		return err_set(e, POS_EINVAL, "%s must be UTF-8 text", what);
	json_decref(probe);
	return 0;
}

int offers_format_parse(const char *s)
{
	if (s && strcmp(s, "csv") == 0)
		return OFFERS_CSV;
	if (s && strcmp(s, "json") == 0)
		return OFFERS_JSON;
	return -1;
}

/* ------------------------------------------------------------ devices */

static int offers_sha256(const void *p, size_t n, unsigned char out[32], pos_err *e)
{
	unsigned int len = 0;

	if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
		return err_set(e, POS_ECRYPTO, "SHA-256 failed");
	return 0;
}

int offers_token_new(char token[OFFERS_TOKEN_LEN + 1], unsigned char hash[32], pos_err *e)
{
	unsigned char raw[32];
	int rc;

	if (RAND_bytes(raw, sizeof raw) != 1) {
		rc = err_set(e, POS_ECRYPTO, "no randomness for a device token");
		goto out;
	}
	if ((rc = b64url_encode(raw, sizeof raw, token, OFFERS_TOKEN_LEN + 1, e)) < 0)
		goto out;
	rc = offers_sha256(token, OFFERS_TOKEN_LEN, hash, e);
out:
	wipe(raw, sizeof raw);
	return rc;
}

int offers_token_hash(const char *token, size_t len, unsigned char hash[32], pos_err *e)
{
	if (!token || len != OFFERS_TOKEN_LEN)
		return err_set(e, POS_EINVAL, "not a device token");
	for (size_t i = 0; i < len; i++) {
		char ch = token[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return err_set(e, POS_EINVAL, "not a device token");
	}
	return offers_sha256(token, len, hash, e);
}

int offers_device_register(struct store *s, int64_t now_ms, long max_unused,
			   char token[OFFERS_TOKEN_LEN + 1], pos_err *e)
{
	unsigned char hash[32];
	int64_t id = 0;
	long unused = 0;
	int rc;

	/* The count and the insert share the writer's transaction: the cap
	 * holds however many registrations arrive at once. */
	if ((rc = store_device_unused(s, &unused, e)) < 0)
		goto out;
	if (unused >= max_unused) {
		rc = err_set(e, POS_ETOOBIG,
			     "central holds its maximum of %ld device registrations never used",
			     max_unused);
		goto out;
	}
	if ((rc = offers_token_new(token, hash, e)) < 0)
		goto out;
	rc = store_device_add(s, hash, now_ms, &id, e);
out:
	if (rc < 0)
		wipe(token, OFFERS_TOKEN_LEN + 1);
	return rc;
}

int offers_device_auth(struct store *s, const char *token, size_t len, int64_t *device,
		       bool *used, pos_err *e)
{
	unsigned char hash[32];
	int rc;

	if ((rc = offers_token_hash(token, len, hash, e)) < 0)
		return rc;
	return store_device_find(s, hash, device, used, e);
}

int offers_expire_tick(struct store *s, void *arg)
{
	const struct offers_limits *l = arg;
	int64_t before = time_now_ms() - (int64_t)l->unused_ttl_s * 1000;
	pos_err e = { 0 };
	long removed = 0;

	if (store_device_purge(s, before, OFFERS_PURGE_BATCH, &removed, &e) < 0) {
		log_warn("devices_expire_failed", "code=%s", err_name(e.code));
		return 0;
	}
	if (removed > 0) {
		metrics_devices_expired(removed);
		log_info("devices_expired", "removed=%ld unused_ttl_s=%ld", removed,
			 l->unused_ttl_s);
	}
	return removed >= OFFERS_PURGE_BATCH;
}

long offers_expire_interval_ms(const struct offers_limits *l)
{
	/* A registration outlives its TTL by at most half of it, and never
	 * more than a minute; a scan costs one index range read. */
	long ms = l->unused_ttl_s * 500;

	if (ms > 60000)
		ms = 60000;
	return ms < 1000 ? 1000 : ms;
}

/* ------------------------------------------------------------ JSON */

/* json_object_set_new that remembers a failure instead of checking each. */
static void offers_set(json_t *o, const char *k, json_t *v, int *bad)
{
	if (!o || !v || json_object_set_new(o, k, v) != 0) {
		json_decref(v);
		*bad = 1;
	}
}

static json_t *offers_time(int64_t ms)
{
	char t[TIME_RFC3339_LEN];

	time_format_rfc3339(ms, t);
	return json_string(t);
}

json_t *offers_offer_json(const struct store_offer *o)
{
	json_t *v = json_object();
	int bad = 0;

	offers_set(v, "id", json_string(o->id), &bad);
	offers_set(v, "title", json_string(o->title), &bad);
	offers_set(v, "reward", json_string(o->reward), &bad);
	offers_set(v, "target", json_string(o->target), &bad);
	if (o->from_ms)
		offers_set(v, "from", offers_time(o->from_ms), &bad);
	if (o->to_ms)
		offers_set(v, "to", offers_time(o->to_ms), &bad);
	if (bad) {
		json_decref(v);
		return NULL;
	}
	return v;
}

struct offers_walk {
	struct store *s;
	int64_t device;
	int64_t now_ms;
	json_t *arr;
	bool redeemed; /* a code of the device was redeemed */
};

static int offers_open_one(const struct store_offer *o, void *arg)
{
	struct offers_walk *w = arg;
	json_t *v = offers_offer_json(o);

	/* json_array_append_new takes v even when it fails. */
	if (!v || json_array_append_new(w->arr, v) != 0)
		return POS_ENOMEM;
	return 0;
}

/* Marks each listed offer the device accepted. */
static int offers_mark_accepted(const struct store_offer_code *c, void *arg)
{
	struct offers_walk *w = arg;
	size_t i;
	json_t *v;

	json_array_foreach(w->arr, i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "id")), c->offer.id) == 0 &&
		    json_object_set_new(v, "accepted", json_true()) != 0)
			return POS_ENOMEM;
	}
	return 0;
}

int offers_open_json(struct store *s, int64_t device, int64_t now_ms, json_t **out, pos_err *e)
{
	struct offers_walk w = { .s = s, .device = device, .now_ms = now_ms };
	json_t *root = NULL;
	size_t i;
	json_t *v;
	int rc;

	*out = NULL;
	if (!(w.arr = json_array()))
		return err_set(e, POS_ENOMEM, "out of memory");
	rc = store_offer_list(s, true, now_ms, offers_open_one, &w, e);
	json_array_foreach(w.arr, i, v)
	{
		if (rc == 0 && json_object_set_new(v, "accepted", json_false()) != 0)
			rc = POS_ENOMEM;
	}
	if (rc == 0)
		rc = store_device_codes(s, device, offers_mark_accepted, &w, e);
	if (rc == 0 && !(root = json_pack("{s:O}", "offers", w.arr)))
		rc = POS_ENOMEM;
	json_decref(w.arr);
	if (rc == POS_ENOMEM)
		err_set(e, rc, "out of memory");
	if (rc < 0) {
		json_decref(root);
		return rc;
	}
	*out = root;
	return 0;
}

int offers_accept(struct store *s, int64_t device, const char *offer_id, int64_t now_ms,
		  json_t **out, bool *created, pos_err *e)
{
	struct store_offer o;
	char code[STORE_OFFER_CODE_LEN + 1], got[STORE_OFFER_CODE_LEN + 1];
	int rc = POS_ECONFLICT;

	*out = NULL;
	*created = false;
	if (!offers_id_valid(offer_id))
		return err_set(e, POS_ENOTFOUND, "no such offer");
	if ((rc = store_offer_get(s, offer_id, &o, e)) < 0)
		return rc == POS_ENOTFOUND ? err_set(e, rc, "no such offer") : rc;
	/* Accepting again returns the code held even once the offer closed;
	 * a new acceptance needs the offer open. */
	for (int i = 0; i < OFFERS_CODE_TRIES; i++) {
		if ((rc = offers_code_new(code, e)) < 0)
			return rc;
		rc = store_offer_accept(s, device, offer_id, code, offer_open(&o, now_ms),
					now_ms, got, created, e);
		if (rc != POS_ECONFLICT)
			break;
	}
	if (rc == POS_ECONFLICT)
		return err_set(e, POS_EAGAIN, "no free offer code found; retry");
	if (rc == POS_EPERM)
		return err_set(e, POS_ECONFLICT, "this offer is not open");
	if (rc < 0)
		return rc;
	*out = json_pack("{s:s, s:s, s:s, s:s}", "code", got, "offer_id", o.id, "title", o.title,
			 "reward", o.reward);
	if (!*out)
		return err_set(e, POS_ENOMEM, "out of memory");
	return 0;
}

static const char *offers_code_state(const struct store_offer_code *c, int64_t now_ms)
{
	if (c->redeemed)
		return "redeemed";
	return offer_verdict(c, now_ms) == STORE_OFFER_OK ? "accepted" : "expired";
}

static int offers_code_one(const struct store_offer_code *c, void *arg)
{
	struct offers_walk *w = arg;
	json_t *v = json_object();
	int bad = 0;

	offers_set(v, "code", json_string(c->code), &bad);
	offers_set(v, "offer_id", json_string(c->offer.id), &bad);
	offers_set(v, "title", json_string(c->offer.title), &bad);
	offers_set(v, "reward", json_string(c->offer.reward), &bad);
	offers_set(v, "accepted_at", offers_time(c->accepted_ms), &bad);
	offers_set(v, "state", json_string(offers_code_state(c, w->now_ms)), &bad);
	if (c->redeemed) {
		w->redeemed = true;
		offers_set(v, "redeemed_at", offers_time(c->redeemed_ms), &bad);
		offers_set(v, "store", json_string(c->store), &bad);
	} else if (c->offer.to_ms) {
		offers_set(v, "expires_at", offers_time(c->offer.to_ms), &bad);
	}
	if (bad) {
		json_decref(v);
		return POS_ENOMEM;
	}
	return json_array_append_new(w->arr, v) != 0 ? POS_ENOMEM : 0;
}

static int offers_next_one(const struct store_offer *o, bool targeted, void *arg)
{
	struct offers_walk *w = arg;
	json_t *v = offers_offer_json(o);

	if (!v)
		return POS_ENOMEM;
	if (json_object_set_new(v, "why", json_string(targeted ? "bought_item" : "all")) != 0) {
		json_decref(v);
		return POS_ENOMEM;
	}
	return json_array_append_new(w->arr, v) != 0 ? POS_ENOMEM : 0;
}

int offers_sync_json(struct store *s, int64_t device, int64_t now_ms, json_t **out, pos_err *e)
{
	struct offers_walk w = { .s = s, .device = device, .now_ms = now_ms };
	json_t *root = json_object(), *codes = json_array(), *next = NULL;
	int rc = 0;

	*out = NULL;
	if (!root || !codes || json_object_set(root, "codes", codes) != 0)
		rc = POS_ENOMEM;
	w.arr = codes;
	if (rc == 0)
		rc = store_device_codes(s, device, offers_code_one, &w, e);
	if (rc == 0 && w.redeemed) {
		/* A matched redemption is what earns the next offers. */
		if (!(next = json_array()) || json_object_set(root, "next_offers", next) != 0)
			rc = POS_ENOMEM;
		w.arr = next;
		if (rc == 0)
			rc = store_offer_next(s, device, now_ms, OFFERS_NEXT_MAX, offers_next_one, &w,
					      e);
	}
	json_decref(codes);
	json_decref(next);
	if (rc == POS_ENOMEM)
		err_set(e, rc, "out of memory");
	if (rc < 0) {
		json_decref(root);
		return rc;
	}
	*out = root;
	return 0;
}

int offers_check_json(struct store *s, const char *code, int64_t now_ms, json_t **out,
		      pos_err *e)
{
	struct store_offer_code c;
	enum store_offer_reason why = STORE_OFFER_UNKNOWN;
	json_t *v;
	int rc;

	*out = NULL;
	if (offers_code_valid(code)) {
		rc = store_offer_code_get(s, code, &c, e);
		if (rc == 0)
			why = offer_verdict(&c, now_ms);
		else if (rc != POS_ENOTFOUND)
			return rc;
		err_clear(e);
	}
	if (why == STORE_OFFER_OK)
		v = json_pack("{s:s, s:b, s:s}", "code", code, "redeemable", 1, "title",
			      c.offer.title);
	else if (why != STORE_OFFER_UNKNOWN)
		v = json_pack("{s:s, s:b, s:s, s:s}", "code", code, "redeemable", 0, "reason",
			      offer_reason_name(why), "title", c.offer.title);
	else
		v = json_pack("{s:s, s:b, s:s}", "code", code, "redeemable", 0, "reason",
			      offer_reason_name(why));
	if (!v)
		return err_set(e, POS_ENOMEM, "out of memory");
	*out = v;
	return 0;
}

json_t *offers_basket_json(const struct store_basket *b)
{
	json_t *arr;

	if (!b || b->n_offers == 0 || !b->offers || b->offers[0].state == STORE_OFFER_PENDING)
		return NULL;
	if (!(arr = json_array()))
		return NULL;
	for (size_t i = 0; i < b->n_offers; i++) {
		const struct store_offer_use *u = &b->offers[i];
		json_t *v;

		if (u->state == STORE_OFFER_REDEEMED)
			v = json_pack("{s:s, s:s}", "code", u->code, "status", "redeemed");
		else
			v = json_pack("{s:s, s:s, s:s}", "code", u->code, "status", "refused",
				      "reason", offer_reason_name(u->reason));
		if (!v || json_array_append_new(arr, v) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

void offers_log_refusals(const struct store_basket *b)
{
	for (size_t i = 0; b && i < b->n_offers; i++) {
		const struct store_offer_use *u = &b->offers[i];

		if (u->state == STORE_OFFER_REDEEMED)
			log_info("offer_redeemed", "txn=%s store=%s", b->txn, b->store);
		else if (u->state == STORE_OFFER_REFUSED)
			log_warn("offer_refused", "txn=%s store=%s reason=%s", b->txn, b->store,
				 offer_reason_name(u->reason));
	}
}

/* ------------------------------------------------------------ report */

struct offers_report {
	enum offers_format fmt;
	int (*sink)(const void *buf, size_t len, void *arg);
	void *arg;
	long rows;
	pos_err *e;
};

/* RFC 4180 quoting; a cell a spreadsheet would run as a formula gets a
 * leading apostrophe. */
static size_t offers_csv_cell(const char *s, char *out, size_t cap)
{
	size_t n = 0;

	out[n++] = '"';
	if (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@')
		out[n++] = '\'';
	for (; *s && n + 3 < cap; s++) {
		if (*s == '"')
			out[n++] = '"';
		out[n++] = *s;
	}
	out[n++] = '"';
	out[n] = '\0';
	return n;
}

static int offers_report_row(const struct store_offer_report_row *r, void *arg)
{
	struct offers_report *w = arg;
	char line[OFFERS_CSV_LINE_MAX], title[2 * STORE_OFFER_TITLE_MAX + 8];
	char *js = NULL;
	int n, rc;

	if (w->fmt == OFFERS_CSV) {
		offers_csv_cell(r->title, title, sizeof title);
		n = snprintf(line, sizeof line, "%s,%s,%s,%s,%ld\n", r->offer_id, title, r->store,
			     r->day, r->redemptions);
		if (n < 0 || (size_t)n >= sizeof line)
			return err_set(w->e, POS_ETOOBIG, "report line too long");
		rc = w->sink(line, (size_t)n, w->arg);
	} else {
		json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:I}", "offer_id", r->offer_id, "title",
				      r->title, "store", r->store, "day", r->day, "redemptions",
				      (json_int_t)r->redemptions);
		js = v ? jsonx_dump(v) : NULL;
		json_decref(v);
		if (!js)
			return err_set(w->e, POS_ENOMEM, "out of memory");
		rc = w->sink(w->rows ? "," : "", w->rows ? 1 : 0, w->arg);
		if (rc == 0)
			rc = w->sink(js, strlen(js), w->arg);
		free(js);
	}
	w->rows++;
	return rc < 0 ? err_set(w->e, rc, "writing the report failed") : 0;
}

int offers_report_write(struct store *s, enum offers_format fmt,
			int (*sink)(const void *buf, size_t len, void *arg), void *arg, pos_err *e)
{
	static const char header[] = "offer_id,title,store,day,redemptions\n";
	struct offers_report w = { .fmt = fmt, .sink = sink, .arg = arg, .e = e };
	int rc;

	if (fmt == OFFERS_CSV)
		rc = sink(header, sizeof header - 1, arg);
	else
		rc = sink("[", 1, arg);
	if (rc < 0)
		return err_set(e, rc, "writing the report failed");
	if ((rc = store_offer_report(s, offers_report_row, &w, e)) < 0)
		return rc;
	if (fmt == OFFERS_JSON && (rc = sink("]\n", 2, arg)) < 0)
		return err_set(e, rc, "writing the report failed");
	return 0;
}
