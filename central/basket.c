#include "basket.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "deident.h"
#include "gtin.h"
#include "ids.h"
#include "jsonx.h"
#include "receipt.h"
#include "resolve.h"
#include "timeutil.h"
#include "wipe.h"

#define BASKET_TS_TEXT_MAX 64

/* SHA-256 is fetched once for the process, not per request. */
static pthread_once_t basket_md_once = PTHREAD_ONCE_INIT;
static EVP_MD *basket_md;

static void basket_md_init(void)
{
	basket_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* The canonical serialisation: each field a one-byte tag, a 4-byte
 * big-endian length and its bytes, so no two different baskets can
 * serialise alike whatever their strings hold. */
static int basket_field(EVP_MD_CTX *md, unsigned char tag, const void *p, size_t n)
{
	unsigned char hdr[5] = { tag, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
				 (unsigned char)(n >> 8), (unsigned char)n };

	return EVP_DigestUpdate(md, hdr, sizeof hdr) == 1 && EVP_DigestUpdate(md, p, n) == 1 ? 0
											   : -1;
}

static int basket_field_str(EVP_MD_CTX *md, unsigned char tag, const char *s)
{
	return basket_field(md, tag, s, strlen(s));
}

static int basket_field_i64(EVP_MD_CTX *md, unsigned char tag, int64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
	return basket_field(md, tag, b, sizeof b);
}

static void basket_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static int basket_item(json_t *it, size_t i, struct store_item *out, pos_err *e)
{
	static const char *const keys[] = { "gtin", "qty", "price_cents", NULL };
	const char *gtin = NULL;
	int64_t qty = 0, price = -1;
	int rc;

	if (!json_is_object(it))
		return err_set(e, POS_EINVAL, "items[%zu] must be an object", i);
	if ((rc = jsonx_only_keys(it, keys, e)) < 0 ||
	    (rc = jsonx_str(it, "gtin", 1, GTIN_LEN, &gtin, e)) < 0 ||
	    (rc = jsonx_int(it, "qty", 1, 1, BASKET_QTY_MAX, &qty, e)) < 0 ||
	    (rc = jsonx_int(it, "price_cents", 0, 0, BASKET_PRICE_MAX, &price, e)) < 0) {
		err_prefix(e, "items[%zu]", i);
		return rc;
	}
	if (strlen(gtin) != GTIN_LEN || !gtin14_valid(gtin))
		return err_set(e, POS_EINVAL,
			       "items[%zu]: gtin must be 14 digits with a valid check digit", i);
	memcpy(out->gtin, gtin, GTIN_LEN + 1);
	out->qty = (int)qty;
	out->price_cents = (long)price;
	return 0;
}

static int basket_items(json_t *items, struct basket_in *out, pos_err *e)
{
	size_t n;
	int rc;

	if (!items)
		return err_set(e, POS_EINVAL, "field 'items' is required");
	if (!json_is_array(items))
		return err_set(e, POS_EINVAL, "field 'items' must be an array");
	n = json_array_size(items);
	if (n == 0 || n > BASKET_MAX_ITEMS)
		return err_set(e, POS_EINVAL, "field 'items' must hold 1 to %d items",
			       BASKET_MAX_ITEMS);
	out->b.items = calloc(n, sizeof *out->b.items);
	if (!out->b.items)
		return err_set(e, POS_ENOMEM, "out of memory for %zu items", n);
	for (size_t i = 0; i < n; i++)
		if ((rc = basket_item(json_array_get(items, i), i, &out->b.items[i], e)) < 0)
			return rc;
	out->b.n_items = n;
	return 0;
}

/* One offer code as sent: a view into the request, not NUL-terminated. */
struct basket_code {
	const char *p;
	size_t n;
};

/* The offer codes, each once, into out->b.offers for the store to redeem;
 * the digest takes them as sent, so the same txn with other offers is a
 * conflict, not a duplicate. A code is any short printable string here:
 * whether it is a code central issued is the store's answer, per code,
 * without refusing the basket. codes were checked by the caller (1 to
 * BASKET_OFFER_MAX bytes, no NUL, at most BASKET_MAX_OFFERS). */
static int basket_offer_list(const struct basket_code *codes, size_t n, EVP_MD_CTX *md,
			     struct basket_in *out, pos_err *e)
{
	if (basket_field_i64(md, 'O', (int64_t)n) < 0)
		return err_set(e, POS_ECRYPTO, "digest failed");
	if (n > 0 && !(out->b.offers = calloc(n, sizeof *out->b.offers)))
		return err_set(e, POS_ENOMEM, "out of memory for %zu offers", n);
	for (size_t i = 0; i < n; i++) {
		bool dup = false;

		if (basket_field(md, 'o', codes[i].p, codes[i].n) < 0)
			return err_set(e, POS_ECRYPTO, "digest failed");
		for (size_t k = 0; k < out->b.n_offers && !dup; k++)
			dup = strlen(out->b.offers[k].code) == codes[i].n &&
			      memcmp(out->b.offers[k].code, codes[i].p, codes[i].n) == 0;
		if (!dup) {
			memcpy(out->b.offers[out->b.n_offers].code, codes[i].p, codes[i].n);
			out->b.offers[out->b.n_offers++].code[codes[i].n] = '\0';
		}
	}
	return 0;
}

/* Checks the offers field and points codes into it (borrowed from offers). */
static int basket_offers(json_t *offers, struct basket_code *codes, size_t *n_out, pos_err *e)
{
	size_t n;

	*n_out = 0;
	if (!offers || json_is_null(offers))
		return 0;
	if (!json_is_array(offers))
		return err_set(e, POS_EINVAL, "field 'offers' must be an array of strings");
	n = json_array_size(offers);
	if (n > BASKET_MAX_OFFERS)
		return err_set(e, POS_EINVAL, "field 'offers' holds more than %d codes",
			       BASKET_MAX_OFFERS);
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(offers, i);
		size_t len;

		if (!json_is_string(v))
			return err_set(e, POS_EINVAL, "offers[%zu] must be a string", i);
		len = json_string_length(v);
		if (len == 0 || len > BASKET_OFFER_MAX || strlen(json_string_value(v)) != len)
			return err_set(e, POS_EINVAL,
				       "offers[%zu] must be 1 to %d characters without NUL", i,
				       BASKET_OFFER_MAX);
		codes[i].p = json_string_value(v);
		codes[i].n = len;
	}
	*n_out = n;
	return 0;
}

static int basket_digest_fields(const struct basket_in *in, EVP_MD_CTX *md)
{
	const struct store_basket *b = &in->b;

	if (basket_field_str(md, 'V', "pos-basket/1") < 0 ||
	    basket_field_str(md, 'x', b->txn) < 0 || basket_field_i64(md, 't', b->ts_ms) < 0 ||
	    basket_field_str(md, 's', b->store) < 0 || basket_field_str(md, 'T', b->terminal) < 0 ||
	    basket_field_str(md, 'h', b->hhid) < 0 || basket_field_str(md, 'd', b->deident) < 0 ||
	    basket_field_str(md, 'k', in->has_tid ? in->tid_kid : "") < 0 ||
	    basket_field_str(md, 'e', in->has_tid ? in->tid_enc : "") < 0 ||
	    basket_field_i64(md, 'N', (int64_t)b->n_items) < 0)
		return -1;
	for (size_t i = 0; i < b->n_items; i++)
		if (basket_field_str(md, 'g', b->items[i].gtin) < 0 ||
		    basket_field_i64(md, 'q', b->items[i].qty) < 0 ||
		    basket_field_i64(md, 'p', b->items[i].price_cents) < 0)
			return -1;
	/* Only when present, so digests of baskets without one stay as
	 * they were. */
	if (b->has_receipt && basket_field(md, 'r', b->receipt, sizeof b->receipt) < 0)
		return -1;
	return 0;
}

/* The receipt token's SHA-256 into the basket; the token itself is not kept. */
static int basket_receipt(const char *tok, size_t n, struct basket_in *out, pos_err *e)
{
	if (!receipt_token_valid(tok, n))
		return err_set(e, POS_EINVAL,
			       "field 'receipt' must be 26 characters of lower-case base32");
	if (receipt_token_hash(tok, n, out->b.receipt) < 0)
		return err_set(e, POS_ECRYPTO, "receipt digest failed");
	out->b.has_receipt = true;
	return 0;
}

/* Copies store and terminal (checked by the caller) and computes the digest
 * over the validated fields, then the offers. */
static int basket_seal(struct basket_in *out, const char *store, const char *terminal,
		       const struct basket_code *codes, size_t n_codes, pos_err *e)
{
	EVP_MD_CTX *md = NULL;
	unsigned int dlen = 0;
	int rc;

	memcpy(out->b.store, store, strlen(store) + 1);
	memcpy(out->b.terminal, terminal, strlen(terminal) + 1);

	pthread_once(&basket_md_once, basket_md_init);
	md = EVP_MD_CTX_new();
	if (!basket_md || !md || EVP_DigestInit_ex(md, basket_md, NULL) != 1 ||
	    basket_digest_fields(out, md) < 0) {
		rc = err_set(e, POS_ECRYPTO, "basket digest failed");
		goto out;
	}
	if ((rc = basket_offer_list(codes, n_codes, md, out, e)) < 0)
		goto out;
	if (EVP_DigestFinal_ex(md, out->b.digest, &dlen) != 1 || dlen != sizeof out->b.digest) {
		rc = err_set(e, POS_ECRYPTO, "basket digest failed");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

int basket_from_json(json_t *obj, const char *store, const char *terminal, int64_t now_ms,
		     struct basket_in *out, pos_err *e)
{
	static const char *const keys[] = { "txn",	   "ts",  "items",  "hhid",
					    "deident_tid", "tid", "offers", "receipt", NULL };
	const char *txn = NULL, *ts = NULL, *hhid = NULL, *dtid = NULL, *receipt = NULL;
	struct basket_code codes[BASKET_MAX_OFFERS];
	size_t n_codes = 0;
	json_t *tid;
	int rc;

	memset(out, 0, sizeof *out);
	if (!store || !terminal || !ids_valid(store) || !ids_valid(terminal)) {
		rc = err_set(e, POS_EINVAL, "store and terminal must be [A-Za-z0-9._-]{1,64}");
		goto out;
	}
	if (!json_is_object(obj)) {
		rc = err_set(e, POS_EINVAL, "a basket must be a JSON object");
		goto out;
	}
	if ((rc = jsonx_only_keys(obj, keys, e)) < 0 ||
	    (rc = jsonx_str(obj, "txn", 1, UUID_STR_LEN, &txn, e)) < 0)
		goto out;
	if ((rc = uuid_v7_check(txn, "txn", e)) < 0)
		goto out;
	memcpy(out->txn_sent, txn, UUID_STR_LEN + 1);
	memcpy(out->b.txn, txn, UUID_STR_LEN + 1);
	basket_lower(out->b.txn);

	if ((rc = jsonx_str(obj, "ts", 1, BASKET_TS_TEXT_MAX, &ts, e)) < 0)
		goto out;
	if (time_parse_rfc3339(ts, 0, &out->b.ts_ms, e) < 0) {
		rc = err_set(e, POS_EINVAL, "ts must be an RFC 3339 time");
		goto out;
	}
	if (out->b.ts_ms < BASKET_TS_MIN_MS || out->b.ts_ms > now_ms + BASKET_TS_AHEAD_MS) {
		rc = err_set(e, POS_EINVAL, "ts must lie between 2000-01-01 and a day from now");
		goto out;
	}

	if ((rc = basket_items(json_object_get(obj, "items"), out, e)) < 0)
		goto out;

	if ((rc = jsonx_str(obj, "hhid", 0, DEIDENT_ID_LEN, &hhid, e)) < 0)
		goto out;
	if (hhid) {
		if (!deident_hhid_valid(hhid)) {
			rc = err_set(e, POS_EINVAL, "hhid must be hh_ and 26 Crockford base32 characters");
			goto out;
		}
		memcpy(out->b.hhid, hhid, DEIDENT_ID_LEN + 1);
	}
	if ((rc = jsonx_str(obj, "deident_tid", 0, DEIDENT_ID_LEN, &dtid, e)) < 0)
		goto out;
	if (dtid) {
		if (!deident_dtid_valid(dtid)) {
			rc = err_set(e, POS_EINVAL,
				     "deident_tid must be dt_ and 26 Crockford base32 characters");
			goto out;
		}
		memcpy(out->b.deident, dtid, DEIDENT_ID_LEN + 1);
	}
	tid = json_object_get(obj, "tid");
	if (tid && !json_is_null(tid)) {
		if ((rc = resolve_enctid_from_json(tid, out->tid_kid, out->tid_enc, e)) < 0)
			goto out;
		out->has_tid = true;
	}

	if ((rc = basket_offers(json_object_get(obj, "offers"), codes, &n_codes, e)) < 0)
		goto out;
	if ((rc = jsonx_str(obj, "receipt", 0, RECEIPT_TOKEN_LEN + 1, &receipt, e)) < 0)
		goto out;
	if (receipt && (rc = basket_receipt(receipt, strlen(receipt), out, e)) < 0)
		goto out;
	rc = basket_seal(out, store, terminal, codes, n_codes, e);
out:
	if (rc < 0)
		basket_free(out);
	return rc;
}

/* The fast path: a basket in the usual shape (every string plain printable
 * ASCII without escapes, integers without sign, fraction or exponent, each
 * known key once, no nulls and no "tid") is read straight from the body,
 * without building a jansson tree (which cost ~24 us and ~100 allocations a
 * 20-item basket). Anything else, valid or not, returns 1 and the body goes
 * through jansson and basket_from_json, which decides and words the error:
 * so this path only ever accepts what that one accepts, and fills out the
 * same way. */
static bool basket_fast_item(struct jsonx_scan *x, struct store_item *it)
{
	bool g = false, q = false, pr = false;
	int64_t v;

	it->price_cents = -1;
	if (!jsonx_scan_eat(x, '{'))
		return false;
	do {
		const char *k;
		size_t kn;

		if (!jsonx_scan_key(x, &k, &kn))
			return false;
		if (jsonx_key_is(k, kn, "gtin") && !g) {
			if (!jsonx_scan_copy(x, it->gtin, GTIN_LEN) || strlen(it->gtin) != GTIN_LEN ||
			    !gtin14_valid(it->gtin))
				return false;
			g = true;
		} else if (jsonx_key_is(k, kn, "qty") && !q) {
			if (!jsonx_scan_uint(x, BASKET_QTY_MAX, &v) || v < 1)
				return false;
			it->qty = (int)v;
			q = true;
		} else if (jsonx_key_is(k, kn, "price_cents") && !pr) {
			if (!jsonx_scan_uint(x, BASKET_PRICE_MAX, &v))
				return false;
			it->price_cents = (long)v;
			pr = true;
		} else {
			return false;
		}
	} while (jsonx_scan_eat(x, ','));
	return jsonx_scan_eat(x, '}') && g && q;
}

static bool basket_fast_items(struct jsonx_scan *x, struct basket_in *out)
{
	size_t cap = 0;

	if (!jsonx_scan_eat(x, '['))
		return false;
	do {
		if (out->b.n_items == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			struct store_item *p;

			if (cap >= BASKET_MAX_ITEMS)
				return false;
			if (ncap > BASKET_MAX_ITEMS)
				ncap = BASKET_MAX_ITEMS;
			p = realloc(out->b.items, ncap * sizeof *p);
			if (!p)
				return false;
			out->b.items = p;
			cap = ncap;
		}
		memset(&out->b.items[out->b.n_items], 0, sizeof *out->b.items);
		if (!basket_fast_item(x, &out->b.items[out->b.n_items]))
			return false;
		out->b.n_items++;
	} while (jsonx_scan_eat(x, ','));
	return jsonx_scan_eat(x, ']');
}

static bool basket_fast_offers(struct jsonx_scan *x, struct basket_code *codes, size_t *n)
{
	if (!jsonx_scan_eat(x, '['))
		return false;
	if (jsonx_scan_eat(x, ']'))
		return true;
	do {
		if (*n >= BASKET_MAX_OFFERS ||
		    !jsonx_scan_str(x, &codes[*n].p, &codes[*n].n) || codes[*n].n == 0 ||
		    codes[*n].n > BASKET_OFFER_MAX)
			return false;
		(*n)++;
	} while (jsonx_scan_eat(x, ','));
	return jsonx_scan_eat(x, ']');
}

/* 0: parsed and sealed; 1: not the usual shape (out cleared); < 0: a
 * failure of this process (memory, digest). */
static int basket_fast(const char *body, size_t len, const char *store, const char *terminal,
		       int64_t now_ms, struct basket_in *out, pos_err *e)
{
	struct jsonx_scan x = { body, body + len };
	struct basket_code codes[BASKET_MAX_OFFERS];
	char ts[BASKET_TS_TEXT_MAX + 1];
	bool have_txn = false, have_ts = false, have_items = false, have_hh = false,
	     have_dt = false, have_off = false, have_rc = false;
	char rtok[RECEIPT_TOKEN_LEN + 1];
	size_t n_codes = 0;
	pos_err te = { 0 };
	int rc;

	if (!jsonx_scan_eat(&x, '{'))
		goto slow;
	do {
		const char *k;
		size_t kn;

		if (!jsonx_scan_key(&x, &k, &kn))
			goto slow;
		if (jsonx_key_is(k, kn, "txn") && !have_txn) {
			if (!jsonx_scan_copy(&x, out->txn_sent, UUID_STR_LEN) ||
			    !uuid_v7_valid(out->txn_sent))
				goto slow;
			have_txn = true;
		} else if (jsonx_key_is(k, kn, "ts") && !have_ts) {
			if (!jsonx_scan_copy(&x, ts, BASKET_TS_TEXT_MAX) ||
			    time_parse_rfc3339(ts, 0, &out->b.ts_ms, &te) < 0 ||
			    out->b.ts_ms < BASKET_TS_MIN_MS ||
			    out->b.ts_ms > now_ms + BASKET_TS_AHEAD_MS)
				goto slow;
			have_ts = true;
		} else if (jsonx_key_is(k, kn, "items") && !have_items) {
			if (!basket_fast_items(&x, out))
				goto slow;
			have_items = true;
		} else if (jsonx_key_is(k, kn, "hhid") && !have_hh) {
			if (!jsonx_scan_copy(&x, out->b.hhid, DEIDENT_ID_LEN) ||
			    !deident_hhid_valid(out->b.hhid))
				goto slow;
			have_hh = true;
		} else if (jsonx_key_is(k, kn, "deident_tid") && !have_dt) {
			if (!jsonx_scan_copy(&x, out->b.deident, DEIDENT_ID_LEN) ||
			    !deident_dtid_valid(out->b.deident))
				goto slow;
			have_dt = true;
		} else if (jsonx_key_is(k, kn, "offers") && !have_off) {
			if (!basket_fast_offers(&x, codes, &n_codes))
				goto slow;
			have_off = true;
		} else if (jsonx_key_is(k, kn, "receipt") && !have_rc) {
			if (!jsonx_scan_copy(&x, rtok, RECEIPT_TOKEN_LEN) ||
			    basket_receipt(rtok, strlen(rtok), out, &te) < 0)
				goto slow;
			have_rc = true;
		} else {
			goto slow;
		}
	} while (jsonx_scan_eat(&x, ','));
	if (!jsonx_scan_eat(&x, '}') || !have_txn || !have_ts || !have_items)
		goto slow;
	if (!jsonx_scan_end(&x))
		goto slow;
	memcpy(out->b.txn, out->txn_sent, UUID_STR_LEN + 1);
	basket_lower(out->b.txn);
	if ((rc = basket_seal(out, store, terminal, codes, n_codes, e)) < 0)
		basket_free(out);
	return rc;
slow:
	basket_free(out);
	memset(out, 0, sizeof *out);
	return 1;
}

int basket_parse(const char *body, size_t len, size_t max_len, const char *store,
		 const char *terminal, int64_t now_ms, struct basket_in *out, pos_err *e)
{
	json_t *root = NULL;
	int rc;

	memset(out, 0, sizeof *out);
	/* The certificate's names are checked here so the fast path never
	 * sees bad ones; a too-long body goes to jsonx_parse for its error. */
	if (store && terminal && ids_valid(store) && ids_valid(terminal) &&
	    len <= max_len) {
		rc = basket_fast(body, len, store, terminal, now_ms, out, e);
		if (rc <= 0)
			return rc;
	}
	if ((rc = jsonx_parse(body, len, max_len, BASKET_MAX_DEPTH, &root, e)) < 0)
		return rc;
	rc = basket_from_json(root, store, terminal, now_ms, out, e);
	json_decref(root);
	return rc;
}

int basket_batch_array(json_t *root, json_t **arr, pos_err *e)
{
	static const char *const keys[] = { "baskets", NULL };
	json_t *a;
	size_t n;
	int rc;

	*arr = NULL;
	if (!json_is_object(root))
		return err_set(e, POS_EINVAL, "the body must be a JSON object {\"baskets\":[...]}");
	if ((rc = jsonx_only_keys(root, keys, e)) < 0)
		return rc;
	a = json_object_get(root, "baskets");
	if (!a || !json_is_array(a))
		return err_set(e, POS_EINVAL, "field 'baskets' must be an array");
	n = json_array_size(a);
	if (n == 0 || n > BASKET_MAX_BATCH)
		return err_set(e, POS_EINVAL, "field 'baskets' must hold 1 to %d baskets",
			       BASKET_MAX_BATCH);
	*arr = a;
	return 0;
}

void basket_txn_hint(json_t *obj, char out[UUID_STR_LEN + 1])
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, "txn") : NULL;

	out[0] = '\0';
	if (!json_is_string(v) || json_string_length(v) != UUID_STR_LEN ||
	    !uuid_valid(json_string_value(v)))
		return;
	memcpy(out, json_string_value(v), UUID_STR_LEN + 1);
	basket_lower(out);
}

void basket_free(struct basket_in *b)
{
	if (!b)
		return;
	free(b->b.items);
	b->b.items = NULL;
	b->b.n_items = 0;
	free(b->b.offers);
	b->b.offers = NULL;
	b->b.n_offers = 0;
	wipe(b->enrol_idx, sizeof b->enrol_idx);
	b->enrol = false;
}
