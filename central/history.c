#include "history.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "store_public.h"
#include "timeutil.h"

/* Baskets one store read may return: a slice's read stays short whatever
 * the household's length. On PostgreSQL a slice is one round trip, kept
 * for the chunks that follow (store_basket.c), so a slice holds a typical
 * household's whole history (~200 baskets): each further round trip is a
 * wake-up that a busy machine may delay (JSON p99 at 10M rows, four
 * slices of 64: 8.8-11.9 ms, one of 256: 6.5-7.1 ms). SQLite stops its
 * read when the chunk is full, whatever the slice. */
#define HISTORY_SLICE_BASKETS 256
/* Item names a stream keeps (by GTIN, each in one of HISTORY_NAMES_PROBE
 * slots from its own): a household buys the same items again, so most rows
 * need no lookup. A power of two. */
#define HISTORY_NAMES 64
#define HISTORY_NAMES_PROBE 8

/* A fixed output buffer flushed to the sink whenever it fills: memory stays
 * HISTORY_CHUNK bytes whatever the length of the history. */
struct hout {
	history_sink sink;
	void *arg;
	int rc; /* first sink failure; later writes are dropped */
	size_t len;
	size_t total; /* bytes put so far */
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
	o->total += n;
	if (n < sizeof(o->buf) - o->len) { /* the usual case: it fits */
		memcpy(o->buf + o->len, s, n);
		o->len += n;
		return;
	}
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

/* A JSON string: the runs between characters to escape go out whole (a
 * history writes some 20,000 strings). */
static void hout_json_str(struct hout *o, const char *s)
{
	const char *run = s;

	hout_put(o, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c != '"' && c != '\\' && c >= 0x20)
			continue;
		hout_put(o, run, (size_t)(s - run));
		run = s + 1;
		if (c == '"' || c == '\\') {
			char esc[2] = { '\\', (char)c };
			hout_put(o, esc, 2);
		} else {
			hout_fmt(o, "\\u%04x", c);
		}
	}
	hout_put(o, run, (size_t)(s - run));
	hout_put(o, "\"", 1);
}

/* A decimal number, without printf's machinery (several per item). */
static void hout_long(struct hout *o, long v)
{
	char tmp[24], *p = tmp + sizeof(tmp);
	unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	hout_put(o, p, (size_t)(tmp + sizeof(tmp) - p));
}

static void hout_price(struct hout *o, long cents, const char *unknown)
{
	if (cents < 0)
		hout_str(o, unknown);
	else
		hout_long(o, cents);
}

/* An item's name from the item master, through the stream's small cache:
 * "" when the master has no such GTIN. */
struct hname {
	char gtin[GTIN_LEN + 1];
	char name[STORE_ITEM_TEXT_MAX + 1];
};

struct hnames {
	struct store *s;
	struct hname slot[HISTORY_NAMES];
};

static int hist_name(struct hnames *nc, const char *gtin, const char **name, pos_err *e)
{
	struct store_item_master it;
	struct hname *h = NULL;
	uint32_t k = 2166136261u;
	int rc;

	for (const char *p = gtin; *p; p++)
		k = (k ^ (unsigned char)*p) * 16777619u;
	/* HISTORY_NAMES_PROBE slots from the GTIN's own: two GTINs of one
	 * basket that share a slot would otherwise take turns in it, a
	 * store lookup each time (a round trip on PostgreSQL). A full window
	 * gives up its first slot. */
	for (uint32_t i = 0; i < HISTORY_NAMES_PROBE; i++) {
		struct hname *c = &nc->slot[(k + i) & (HISTORY_NAMES - 1)];

		if (strcmp(c->gtin, gtin) == 0) {
			*name = c->name;
			return 0;
		}
		if (!h && !c->gtin[0])
			h = c;
	}
	if (!h)
		h = &nc->slot[k & (HISTORY_NAMES - 1)];
	rc = store_item_get(nc->s, gtin, &it, e);
	if (rc < 0 && rc != POS_ENOTFOUND)
		return rc;
	snprintf(h->gtin, sizeof h->gtin, "%s", gtin);
	snprintf(h->name, sizeof h->name, "%s", rc == 0 ? it.name : "");
	*name = h->name;
	return 0;
}

static int hist_csv(const struct store_basket *b, struct hout *o, struct hnames *nc, pos_err *e)
{
	char ts[TIME_RFC3339_LEN];
	size_t n = b->n_items ? b->n_items : 1;
	const char *name;
	int rc;

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
			if ((rc = hist_name(nc, b->items[i].gtin, &name, e)) < 0)
				return rc;
			hout_csv(o, b->items[i].gtin);
			hout_put(o, ",", 1);
			hout_long(o, b->items[i].qty);
			hout_put(o, ",", 1);
			hout_price(o, b->items[i].price_cents, "");
			hout_put(o, ",", 1);
			hout_csv(o, name);
		} else {
			hout_str(o, ",,,");
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
		hout_str(o, ",\"qty\":");
		hout_long(o, b->items[i].qty);
		hout_str(o, ",\"price_cents\":");
		hout_price(o, b->items[i].price_cents, "null");
		hout_put(o, "}", 1);
	}
	hout_str(o, "]}");
	o->n++;
	return o->rc;
}

static int hist_table(const struct store_basket *b, struct hout *o, struct hnames *nc, pos_err *e)
{
	char ts[TIME_RFC3339_LEN];
	const char *name;
	long total = 0;
	int known = 1, rc;

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

		if ((rc = hist_name(nc, it->gtin, &name, e)) < 0)
			return rc;
		hout_fmt(o, "    %-14s  x%-4d", it->gtin, it->qty);
		if (it->price_cents < 0)
			hout_str(o, "  price unknown");
		else
			hout_fmt(o, "  %6ld.%02ld", it->price_cents / 100, it->price_cents % 100);
		if (name[0]) {
			hout_str(o, "  ");
			hout_str(o, name);
		}
		hout_put(o, "\n", 1);
	}
	o->n++;
	return o->rc;
}

enum hs_phase { HS_START, HS_BASKETS, HS_DONE };

struct history_stream {
	struct store *s;
	char hhid[DEIDENT_ID_LEN + 1];
	int64_t from_ms, to_ms;
	struct store_history_pos pos, end;
	bool has_end;
	enum history_format f;
	enum hs_phase phase;
	size_t want; /* o.total at which the slice ends */
	pos_err *e;  /* the running history_stream_next's */
	struct hout o;
	struct hnames names;
};

static int hist_stream_basket(const struct store_basket *b, void *arg)
{
	struct history_stream *hs = arg;
	int rc = hs->f == HISTORY_CSV    ? hist_csv(b, &hs->o, &hs->names, hs->e)
		 : hs->f == HISTORY_JSON ? hist_json(b, &hs->o)
					 : hist_table(b, &hs->o, &hs->names, hs->e);

	if (rc != 0)
		return rc;
	return hs->o.total >= hs->want ? 1 : 0;
}

int history_stream_new(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		       const struct store_history_pos *after, const struct store_history_pos *end,
		       enum history_format f, struct history_stream **out, pos_err *e)
{
	struct history_stream *hs;

	if (out)
		*out = NULL;
	if (!s || !hhid || !out || (f != HISTORY_CSV && f != HISTORY_JSON && f != HISTORY_TABLE))
		return err_set(e, POS_EINVAL, "history: bad argument");
	if (!deident_hhid_valid(hhid))
		return err_set(e, POS_EINVAL, "malformed hhid");
	if (!(hs = calloc(1, sizeof *hs)))
		return err_set(e, POS_ENOMEM, "history: out of memory");
	hs->s = s;
	hs->names.s = s;
	memcpy(hs->hhid, hhid, DEIDENT_ID_LEN + 1);
	hs->from_ms = from_ms;
	hs->to_ms = to_ms;
	if (after)
		hs->pos = *after;
	if (end) {
		hs->end = *end;
		hs->has_end = true;
	}
	hs->f = f;
	*out = hs;
	return 0;
}

int history_stream_next(struct history_stream *hs, size_t want, history_sink sink, void *arg,
			pos_err *e)
{
	int rc = 1;

	if (!hs || !sink)
		return err_set(e, POS_EINVAL, "history: bad argument");
	if (hs->phase == HS_DONE)
		return 0;
	hs->o.sink = sink;
	hs->o.arg = arg;
	hs->e = e;
	hs->want = hs->o.total + (want ? want : 1);
	if (hs->phase == HS_START) {
		if (hs->f == HISTORY_CSV)
			hout_str(&hs->o, "txn,ts,store,terminal,hhid,gtin,qty,price_cents,name\n");
		else if (hs->f == HISTORY_JSON)
			hout_str(&hs->o, "[");
		else
			hout_fmt(&hs->o, "household %s\n", hs->hhid);
		hs->phase = HS_BASKETS;
	}
	while (hs->o.rc == 0 && hs->o.total < hs->want) {
		rc = store_history_page(hs->s, hs->hhid, hs->from_ms, hs->to_ms, &hs->pos,
					hs->has_end ? &hs->end : NULL, HISTORY_SLICE_BASKETS,
					hist_stream_basket, hs, e);
		if (rc <= 0)
			break;
	}
	if (rc < 0 && hs->o.rc == 0)
		return rc;
	if (rc == 0 && hs->o.rc == 0) {
		if (hs->f == HISTORY_JSON)
			hout_str(&hs->o, hs->o.n ? "\n]\n" : "]\n");
		else if (hs->f == HISTORY_TABLE)
			hout_fmt(&hs->o, "%ld basket%s\n", hs->o.n, hs->o.n == 1 ? "" : "s");
		hs->phase = HS_DONE;
	}
	hout_flush(&hs->o);
	if (hs->o.rc != 0)
		return err_set(e, hs->o.rc < 0 ? hs->o.rc : POS_EIO, "history: output stopped");
	return hs->phase == HS_DONE ? 0 : 1;
}

void history_stream_free(struct history_stream *hs)
{
	free(hs);
}

int history_write(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		  enum history_format f, history_sink sink, void *arg, pos_err *e)
{
	struct history_stream *hs = NULL;
	int rc;

	if (!sink)
		return err_set(e, POS_EINVAL, "history_write: bad argument");
	rc = history_stream_new(s, hhid, from_ms, to_ms, NULL, NULL, f, &hs, e);
	while (rc == 0 && (rc = history_stream_next(hs, HISTORY_CHUNK, sink, arg, e)) > 0)
		rc = 0;
	history_stream_free(hs);
	return rc;
}

int history_write_table(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
			history_sink sink, void *arg, pos_err *e)
{
	return history_write(s, hhid, from_ms, to_ms, HISTORY_TABLE, sink, arg, e);
}

/* 16 bytes, big-endian: ts_ms, then the basket id. */
void history_cursor_encode(const struct store_history_pos *p, char out[HISTORY_CURSOR_LEN + 1])
{
	unsigned char raw[16];
	uint64_t ts = (uint64_t)p->ts_ms, id = (uint64_t)p->id;

	for (int i = 0; i < 8; i++) {
		raw[i] = (unsigned char)(ts >> (56 - 8 * i));
		raw[8 + i] = (unsigned char)(id >> (56 - 8 * i));
	}
	if (b64url_encode(raw, sizeof raw, out, HISTORY_CURSOR_LEN + 1, NULL) < 0)
		out[0] = '\0';
}

int history_cursor_decode(const char *s, struct store_history_pos *p, pos_err *e)
{
	unsigned char raw[16];
	uint64_t ts = 0, id = 0;
	size_t n = 0;

	if (!s || strlen(s) != HISTORY_CURSOR_LEN ||
	    b64url_decode(s, HISTORY_CURSOR_LEN, raw, sizeof raw, &n, NULL) < 0 || n != sizeof raw)
		goto bad;
	for (int i = 0; i < 8; i++) {
		ts = ts << 8 | raw[i];
		id = id << 8 | raw[8 + i];
	}
	if (id == 0 || id > (uint64_t)INT64_MAX)
		goto bad;
	p->ts_ms = (int64_t)ts;
	p->id = (int64_t)id;
	return 0;
bad:
	return err_set(e, POS_EINVAL,
		       "cursor must be the Pos-Next-Cursor value of a previous page");
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
