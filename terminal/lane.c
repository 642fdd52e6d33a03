#include "lane.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "receipt.h"
#include "timeutil.h"
#include "uuid.h"

/* One remembered scan, for void: which line it went to and the price it
 * added there. */
struct lane_scan {
	unsigned line;
	long price_cents;
};

struct lane {
	bool open;
	char txn[LANE_TXN_LEN + 1];
	struct lane_item items[LANE_MAX_LINES];
	size_t nitems; /* lines ever opened in this txn; some may be at qty 0 */
	struct lane_scan scans[LANE_MAX_SCANS];
	size_t nscans;
	char offers[LANE_MAX_OFFERS][LANE_OFFER_MAX + 1];
	size_t noffers;
	char receipt[RECEIPT_TOKEN_LEN + 1]; /* "" when none */
	bool has_tid;
	enum tid_kind tid_kind;
	char kid[KEYS_KID_LEN + 1];
	char enc[ENVELOPE_B64_MAX];
	/* Never reset, not even across transactions: an answer for an old
	 * transaction's TID can never match a new one's generation. */
	unsigned gen;
	bool resolved;
	char hhid[DEIDENT_ID_LEN + 1];
	char dtid[DEIDENT_ID_LEN + 1];
};

int lane_new(struct lane **out, pos_err *e)
{
	if (!out)
		return err_set(e, POS_EINVAL, "lane: no output");
	*out = calloc(1, sizeof **out);
	if (!*out)
		return err_set(e, POS_ENOMEM, "lane: out of memory");
	return 0;
}

void lane_free(struct lane *l)
{
	free(l);
}

bool lane_is_open(const struct lane *l)
{
	return l && l->open;
}

const char *lane_txn(const struct lane *l)
{
	return l && l->open ? l->txn : "";
}

static int lane_need_open(const struct lane *l, pos_err *e)
{
	if (!l)
		return err_set(e, POS_EINVAL, "lane: none");
	if (!l->open)
		return err_set(e, POS_EINVAL, "no open transaction");
	return 0;
}

int lane_begin(struct lane *l, const char *txn, pos_err *e)
{
	if (!l || !txn)
		return err_set(e, POS_EINVAL, "lane: bad arguments");
	if (l->open)
		return err_set(e, POS_EINVAL, "a transaction is already open");
	if (!uuid_valid(txn))
		return err_set(e, POS_EINVAL, "transaction id is not a UUID");
	lane_close(l);
	memcpy(l->txn, txn, LANE_TXN_LEN + 1);
	l->open = true;
	return 0;
}

void lane_close(struct lane *l)
{
	unsigned gen;

	if (!l)
		return;
	gen = l->gen;
	/* Only the touched part: the arrays are large and mostly empty. */
	memset(l->items, 0, l->nitems * sizeof l->items[0]);
	memset(l->scans, 0, l->nscans * sizeof l->scans[0]);
	memset(l->offers, 0, sizeof l->offers);
	l->nitems = l->nscans = l->noffers = 0;
	l->receipt[0] = '\0';
	l->open = l->has_tid = l->resolved = false;
	l->tid_kind = 0;
	memset(l->txn, 0, sizeof l->txn);
	memset(l->kid, 0, sizeof l->kid);
	memset(l->enc, 0, sizeof l->enc);
	memset(l->hhid, 0, sizeof l->hhid);
	memset(l->dtid, 0, sizeof l->dtid);
	l->gen = gen;
}

static void lane_copy_line(const struct lane_item *it, struct lane_item *out)
{
	if (out)
		*out = *it;
}

int lane_add_item(struct lane *l, const char *gtin, long price_cents, struct lane_item *line,
		  pos_err *e)
{
	struct lane_item *it = NULL;
	size_t i;
	int rc;

	if ((rc = lane_need_open(l, e)) < 0)
		return rc;
	if (!gtin || !gtin14_valid(gtin))
		return err_set(e, POS_EINVAL, "not a valid GTIN-14");
	if (price_cents < -1)
		return err_set(e, POS_EINVAL, "negative price");
	if (l->nscans >= LANE_MAX_SCANS)
		return err_set(e, POS_ETOOBIG, "transaction holds %d scans already", LANE_MAX_SCANS);
	for (i = 0; i < l->nitems; i++)
		if (strcmp(l->items[i].gtin, gtin) == 0) {
			it = &l->items[i];
			break;
		}
	if (!it) {
		if (l->nitems >= LANE_MAX_LINES)
			return err_set(e, POS_ETOOBIG, "transaction holds %d lines already",
				       LANE_MAX_LINES);
		it = &l->items[l->nitems];
		memcpy(it->gtin, gtin, GTIN_LEN + 1);
		it->qty = 0;
		i = l->nitems++;
	} else if (it->qty >= LANE_MAX_QTY) {
		return err_set(e, POS_ETOOBIG, "quantity would exceed %d", LANE_MAX_QTY);
	}
	if (it->qty == 0)
		it->price_cents = price_cents < 0 ? -1 : 0;
	it->qty++;
	if (price_cents < 0)
		it->price_cents = -1;
	else if (it->price_cents >= 0)
		it->price_cents += price_cents;
	l->scans[l->nscans].line = (unsigned)i;
	l->scans[l->nscans].price_cents = price_cents;
	l->nscans++;
	lane_copy_line(it, line);
	return 0;
}

int lane_void(struct lane *l, struct lane_item *line, pos_err *e)
{
	struct lane_scan *s;
	struct lane_item *it;
	int rc;

	if ((rc = lane_need_open(l, e)) < 0)
		return rc;
	if (l->nscans == 0)
		return err_set(e, POS_ENOTFOUND, "no item to void");
	s = &l->scans[--l->nscans];
	it = &l->items[s->line];
	it->qty--;
	if (it->qty == 0)
		it->price_cents = -1;
	else if (it->price_cents >= 0 && s->price_cents >= 0)
		it->price_cents -= s->price_cents;
	memset(s, 0, sizeof *s);
	lane_copy_line(it, line);
	return 0;
}

static bool lane_offer_code_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		unsigned char ch = (unsigned char)s[n];
		if (n >= LANE_OFFER_MAX || ch <= 0x20 || ch >= 0x7f)
			return false;
	}
	return n > 0;
}

int lane_add_offer(struct lane *l, const char *code, bool *added, pos_err *e)
{
	int rc;

	if (added)
		*added = false;
	if ((rc = lane_need_open(l, e)) < 0)
		return rc;
	if (!code || !lane_offer_code_ok(code))
		return err_set(e, POS_EINVAL, "offer code must be 1 to %d printable characters",
			       LANE_OFFER_MAX);
	for (size_t i = 0; i < l->noffers; i++)
		if (strcmp(l->offers[i], code) == 0)
			return 0;
	if (l->noffers >= LANE_MAX_OFFERS)
		return err_set(e, POS_ETOOBIG, "transaction holds %d offers already", LANE_MAX_OFFERS);
	memcpy(l->offers[l->noffers++], code, strlen(code) + 1);
	if (added)
		*added = true;
	return 0;
}

static bool lane_charset(const char *s, size_t min, size_t max, const char *allowed_extra,
			 bool hex_only)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char ch = s[n];
		if (n >= max)
			return false;
		if (hex_only) {
			if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
			      (ch >= 'A' && ch <= 'F')))
				return false;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      strchr(allowed_extra, ch)))
			return false;
	}
	return n >= min;
}

int lane_set_tid(struct lane *l, enum tid_kind kind, const char *kid, const char *enc,
		 unsigned *gen, bool *replaced, pos_err *e)
{
	int rc;

	if ((rc = lane_need_open(l, e)) < 0)
		return rc;
	if (kind != TID_CARD && kind != TID_LOYALTY && kind != TID_PHONE)
		return err_set(e, POS_EINVAL, "unknown TID kind");
	if (!kid || !lane_charset(kid, KEYS_KID_LEN, KEYS_KID_LEN, "", true))
		return err_set(e, POS_EINVAL, "EncTID kid must be %d hex characters",
			       KEYS_KID_LEN);
	if (!enc || !lane_charset(enc, 1, ENVELOPE_B64_MAX - 1, "-_", false))
		return err_set(e, POS_EINVAL, "EncTID enc must be base64url");
	if (replaced)
		*replaced = l->has_tid;
	memcpy(l->kid, kid, KEYS_KID_LEN + 1);
	memset(l->enc, 0, sizeof l->enc);
	memcpy(l->enc, enc, strlen(enc) + 1);
	l->has_tid = true;
	l->tid_kind = kind;
	l->resolved = false;
	memset(l->hhid, 0, sizeof l->hhid);
	memset(l->dtid, 0, sizeof l->dtid);
	l->gen++;
	if (l->gen == 0)
		l->gen = 1; /* 0 stays "no TID" */
	if (gen)
		*gen = l->gen;
	return 0;
}

int lane_set_household(struct lane *l, unsigned gen, const char *hhid, const char *deident_tid,
		       pos_err *e)
{
	if (!l)
		return err_set(e, POS_EINVAL, "lane: none");
	if (!l->open || !l->has_tid || gen != l->gen)
		return err_set(e, POS_ENOTFOUND, "the TID was replaced or its transaction closed");
	if (!hhid || !deident_hhid_valid(hhid))
		return err_set(e, POS_EINVAL, "malformed hhid");
	if (!deident_tid || !deident_dtid_valid(deident_tid))
		return err_set(e, POS_EINVAL, "malformed deident_tid");
	memcpy(l->hhid, hhid, DEIDENT_ID_LEN + 1);
	memcpy(l->dtid, deident_tid, DEIDENT_ID_LEN + 1);
	l->resolved = true;
	return 0;
}

size_t lane_lines(const struct lane *l)
{
	size_t n = 0;

	if (!l || !l->open)
		return 0;
	for (size_t i = 0; i < l->nitems; i++)
		if (l->items[i].qty > 0)
			n++;
	return n;
}

long lane_units(const struct lane *l)
{
	long n = 0;

	if (!l || !l->open)
		return 0;
	for (size_t i = 0; i < l->nitems; i++)
		n += l->items[i].qty;
	return n;
}

const struct lane_item *lane_line(const struct lane *l, size_t i)
{
	if (!l || !l->open)
		return NULL;
	for (size_t k = 0; k < l->nitems; k++) {
		if (l->items[k].qty <= 0)
			continue;
		if (i-- == 0)
			return &l->items[k];
	}
	return NULL;
}

bool lane_has_tid(const struct lane *l)
{
	return l && l->open && l->has_tid;
}

enum tid_kind lane_tid_kind(const struct lane *l)
{
	return lane_has_tid(l) ? l->tid_kind : 0;
}

unsigned lane_tid_gen(const struct lane *l)
{
	return lane_has_tid(l) ? l->gen : 0;
}

bool lane_has_household(const struct lane *l)
{
	return l && l->open && l->resolved;
}

const char *lane_hhid(const struct lane *l)
{
	return lane_has_household(l) ? l->hhid : "";
}

int lane_set_receipt(struct lane *l, const char *token, pos_err *e)
{
	int rc;

	if ((rc = lane_need_open(l, e)) < 0)
		return rc;
	if (!token || !receipt_token_valid(token, strlen(token)))
		return err_set(e, POS_EINVAL, "not a receipt token");
	memcpy(l->receipt, token, RECEIPT_TOKEN_LEN + 1);
	return 0;
}

size_t lane_offers(const struct lane *l)
{
	return l && l->open ? l->noffers : 0;
}

/* json_object_set_new that remembers a failure instead of checking each. */
static void lane_set(json_t *o, const char *k, json_t *v, int *bad)
{
	if (!v || json_object_set_new(o, k, v) != 0)
		*bad = 1;
}

int lane_body(const struct lane *l, int64_t ts_ms, char **body, size_t *len, pos_err *e)
{
	json_t *root = NULL, *items = NULL;
	char ts[TIME_RFC3339_LEN];
	char *s = NULL;
	int bad = 0, rc;

	if (!body || !len)
		return err_set(e, POS_EINVAL, "lane: no output");
	*body = NULL;
	*len = 0;
	if ((rc = lane_need_open(l, e)) < 0)
		return rc;
	if (lane_lines(l) == 0)
		return err_set(e, POS_EINVAL, "no items in the transaction");
	time_format_rfc3339(ts_ms, ts);
	root = json_object();
	items = json_array();
	if (!root || !items) {
		json_decref(items);
		goto nomem;
	}
	lane_set(root, "txn", json_string(l->txn), &bad);
	lane_set(root, "ts", json_string(ts), &bad);
	for (size_t i = 0; i < l->nitems; i++) {
		const struct lane_item *it = &l->items[i];
		json_t *o;

		if (it->qty <= 0)
			continue;
		o = json_object();
		if (!o || json_array_append_new(items, o) != 0) {
			bad = 1;
			break;
		}
		lane_set(o, "gtin", json_string(it->gtin), &bad);
		lane_set(o, "qty", json_integer(it->qty), &bad);
		if (it->price_cents >= 0)
			lane_set(o, "price_cents", json_integer(it->price_cents), &bad);
	}
	lane_set(root, "items", items, &bad);
	if (l->resolved) {
		lane_set(root, "hhid", json_string(l->hhid), &bad);
		lane_set(root, "deident_tid", json_string(l->dtid), &bad);
	} else if (l->has_tid) {
		json_t *t = json_object();
		lane_set(root, "tid", t, &bad);
		if (t) {
			lane_set(t, "kid", json_string(l->kid), &bad);
			lane_set(t, "enc", json_string(l->enc), &bad);
		}
	}
	if (l->noffers > 0) {
		json_t *arr = json_array();
		lane_set(root, "offers", arr, &bad);
		for (size_t i = 0; arr && i < l->noffers; i++)
			if (json_array_append_new(arr, json_string(l->offers[i])) != 0)
				bad = 1;
	}
	if (l->receipt[0])
		lane_set(root, "receipt", json_string(l->receipt), &bad);
	if (bad)
		goto nomem;
	s = jsonx_dump(root);
	if (!s)
		goto nomem;
	json_decref(root);
	*body = s;
	*len = strlen(s);
	return 0;
nomem:
	json_decref(root);
	return err_set(e, POS_ENOMEM, "lane: out of memory building the basket");
}
