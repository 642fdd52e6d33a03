#include "history.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "timeutil.h"

/* A fixed output buffer flushed to the sink whenever it fills: memory stays
 * HISTORY_CHUNK bytes whatever the length of the history. */
struct hout {
	history_sink sink;
	void *arg;
	int rc; /* first sink failure; later writes are dropped */
	size_t len;
	long n; /* baskets written so far */
	char buf[HISTORY_CHUNK];
};

static int hout_flush(struct hout *o)
{
	if (o->rc == 0 && o->len) {
		int r = o->sink(o->buf, o->len, o->arg);
		if (r != 0)
			o->rc = r;
	}
	o->len = 0;
	return o->rc;
}

static void hout_put(struct hout *o, const char *s, size_t n)
{
	while (n && o->rc == 0) {
		size_t room = sizeof(o->buf) - o->len;
		size_t k = n < room ? n : room;
		memcpy(o->buf + o->len, s, k);
		o->len += k;
		s += k;
		n -= k;
		if (o->len == sizeof(o->buf))
			hout_flush(o);
	}
}

static void hout_str(struct hout *o, const char *s)
{
	hout_put(o, s, strlen(s));
}

static void hout_fmt(struct hout *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void hout_fmt(struct hout *o, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	hout_put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A CSV field: quoted only when it holds a separator, quote or line break
 * (the ids in a history never should, but the format must not break). */
static void hout_csv(struct hout *o, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		hout_str(o, s);
		return;
	}
	hout_put(o, "\"", 1);
	for (; *s; s++) {
		if (*s == '"')
			hout_put(o, "\"", 1);
		hout_put(o, s, 1);
	}
	hout_put(o, "\"", 1);
}

static void hout_json_str(struct hout *o, const char *s)
{
	hout_put(o, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char esc[2] = { '\\', (char)c };
			hout_put(o, esc, 2);
		} else if (c < 0x20) {
			hout_fmt(o, "\\u%04x", c);
		} else {
			hout_put(o, s, 1);
		}
	}
	hout_put(o, "\"", 1);
}

static void hout_price(struct hout *o, long cents, const char *unknown)
{
	if (cents < 0)
		hout_str(o, unknown);
	else
		hout_fmt(o, "%ld", cents);
}

static int hist_csv(const struct store_basket *b, void *arg)
{
	struct hout *o = arg;
	char ts[TIME_RFC3339_LEN];
	size_t n = b->n_items ? b->n_items : 1;

	time_format_rfc3339(b->ts_ms, ts);
	for (size_t i = 0; i < n; i++) {
		hout_csv(o, b->txn);
		hout_put(o, ",", 1);
		hout_csv(o, ts);
		hout_put(o, ",", 1);
		hout_csv(o, b->store);
		hout_put(o, ",", 1);
		hout_csv(o, b->terminal);
		hout_put(o, ",", 1);
		hout_csv(o, b->hhid);
		hout_put(o, ",", 1);
		if (b->n_items) {
			hout_csv(o, b->items[i].gtin);
			hout_fmt(o, ",%d,", b->items[i].qty);
			hout_price(o, b->items[i].price_cents, "");
		} else {
			hout_str(o, ",,");
		}
		hout_put(o, "\n", 1);
	}
	o->n++;
	return o->rc;
}

static int hist_json(const struct store_basket *b, void *arg)
{
	struct hout *o = arg;
	char ts[TIME_RFC3339_LEN];

	time_format_rfc3339(b->ts_ms, ts);
	hout_str(o, o->n ? ",\n{\"txn\":" : "\n{\"txn\":");
	hout_json_str(o, b->txn);
	hout_str(o, ",\"ts\":");
	hout_json_str(o, ts);
	hout_str(o, ",\"store\":");
	hout_json_str(o, b->store);
	hout_str(o, ",\"terminal\":");
	hout_json_str(o, b->terminal);
	hout_str(o, ",\"hhid\":");
	hout_json_str(o, b->hhid);
	hout_str(o, ",\"items\":[");
	for (size_t i = 0; i < b->n_items; i++) {
		hout_str(o, i ? ",{\"gtin\":" : "{\"gtin\":");
		hout_json_str(o, b->items[i].gtin);
		hout_fmt(o, ",\"qty\":%d,\"price_cents\":", b->items[i].qty);
		hout_price(o, b->items[i].price_cents, "null");
		hout_put(o, "}", 1);
	}
	hout_str(o, "]}");
	o->n++;
	return o->rc;
}

int history_write(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		  enum history_format f, history_sink sink, void *arg, pos_err *e)
{
	struct hout o = { .sink = sink, .arg = arg };
	int rc;

	if (!s || !hhid || !sink || (f != HISTORY_CSV && f != HISTORY_JSON))
		return err_set(e, POS_EINVAL, "history_write: bad argument");
	if (f == HISTORY_CSV)
		hout_str(&o, "txn,ts,store,terminal,hhid,gtin,qty,price_cents\n");
	else
		hout_str(&o, "[");
	rc = store_history(s, hhid, from_ms, to_ms, f == HISTORY_CSV ? hist_csv : hist_json, &o,
			   e);
	if (o.rc != 0)
		return err_set(e, o.rc < 0 ? o.rc : POS_EIO, "history: output stopped");
	if (rc < 0)
		return rc;
	if (f == HISTORY_JSON)
		hout_str(&o, o.n ? "\n]\n" : "]\n");
	hout_flush(&o);
	if (o.rc != 0)
		return err_set(e, o.rc < 0 ? o.rc : POS_EIO, "history: output stopped");
	return rc;
}

static int hist_table(const struct store_basket *b, void *arg)
{
	struct hout *o = arg;
	char ts[TIME_RFC3339_LEN];
	long total = 0;
	int known = 1;

	time_format_rfc3339(b->ts_ms, ts);
	for (size_t i = 0; i < b->n_items; i++) {
		if (b->items[i].price_cents < 0)
			known = 0;
		else
			total += b->items[i].price_cents * b->items[i].qty;
	}
	hout_fmt(o, "%s  %s/%s  txn %s  %zu item%s", ts, b->store, b->terminal, b->txn,
		 b->n_items, b->n_items == 1 ? "" : "s");
	if (known && b->n_items)
		hout_fmt(o, "  total %ld.%02ld", total / 100, total % 100);
	hout_put(o, "\n", 1);
	for (size_t i = 0; i < b->n_items; i++) {
		const struct store_item *it = &b->items[i];
		hout_fmt(o, "    %-14s  x%-4d", it->gtin, it->qty);
		if (it->price_cents < 0)
			hout_str(o, "  price unknown\n");
		else
			hout_fmt(o, "  %6ld.%02ld\n", it->price_cents / 100, it->price_cents % 100);
	}
	o->n++;
	return o->rc;
}

int history_write_table(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
			history_sink sink, void *arg, pos_err *e)
{
	struct hout o = { .sink = sink, .arg = arg };
	int rc;

	if (!s || !hhid || !sink)
		return err_set(e, POS_EINVAL, "history_write_table: bad argument");
	hout_fmt(&o, "household %s\n", hhid);
	rc = store_history(s, hhid, from_ms, to_ms, hist_table, &o, e);
	if (o.rc != 0)
		return err_set(e, o.rc < 0 ? o.rc : POS_EIO, "history: output stopped");
	if (rc < 0)
		return rc;
	hout_fmt(&o, "%ld basket%s\n", o.n, o.n == 1 ? "" : "s");
	hout_flush(&o);
	if (o.rc != 0)
		return err_set(e, o.rc < 0 ? o.rc : POS_EIO, "history: output stopped");
	return rc;
}

int history_format_parse(const char *s)
{
	if (!s)
		return -1;
	if (strcmp(s, "csv") == 0)
		return HISTORY_CSV;
	if (strcmp(s, "json") == 0)
		return HISTORY_JSON;
	return -1;
}
