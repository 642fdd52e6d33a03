#include "framer.h"

#include <stdlib.h>
#include <string.h>

#include "wipe.h"

#define FRAMER_STX 0x02
#define FRAMER_ETX 0x03
#define FRAMER_LF 0x0a
#define FRAMER_CR 0x0d
#define FRAMER_GS 0x1d

struct framer {
	struct framer_opts o;
	framer_frame_fn on_frame;
	framer_reject_fn on_reject;
	void *arg;
	size_t len;      /* bytes kept in buf */
	size_t seen;     /* bytes of the current frame, kept or not */
	bool active;     /* a frame has started (a byte or an STX arrived) */
	bool stx_seen;   /* prefix STX: the frame was opened by STX */
	bool bad;        /* a byte that may not appear in a code */
	bool too_long;   /* over max_len: discarding up to the terminator */
	bool cr_pending; /* TERM_CRLF: CR seen, LF expected */
	char buf[];      /* max_len + 1 */
};

int framer_new(const struct framer_opts *o, framer_frame_fn on_frame, framer_reject_fn on_reject,
	       void *arg, struct framer **out, pos_err *e)
{
	struct framer *f;

	if (!o || !on_frame || !out)
		return err_set(e, POS_EINVAL, "framer: missing argument");
	if (o->term < FRAMER_TERM_CR || o->term > FRAMER_TERM_NONE)
		return err_set(e, POS_EINVAL, "framer: unknown terminator");
	if (o->prefix != FRAMER_PREFIX_NONE && o->prefix != FRAMER_PREFIX_STX)
		return err_set(e, POS_EINVAL, "framer: unknown prefix");
	if (o->max_len < 1 || o->max_len > FRAMER_MAX_LEN_LIMIT)
		return err_set(e, POS_EINVAL, "framer: max_len must be 1..%d", FRAMER_MAX_LEN_LIMIT);
	f = calloc(1, sizeof(*f) + o->max_len + 1);
	if (!f)
		return err_set(e, POS_ENOMEM, "framer: out of memory");
	f->o = *o;
	f->on_frame = on_frame;
	f->on_reject = on_reject;
	f->arg = arg;
	*out = f;
	return 0;
}

void framer_free(struct framer *f)
{
	if (!f)
		return;
	wipe_free(f, sizeof(*f) + f->o.max_len + 1);
}

static void framer_clear(struct framer *f)
{
	wipe(f->buf, f->len + 1);
	f->len = 0;
	f->seen = 0;
	f->active = false;
	f->stx_seen = false;
	f->bad = false;
	f->too_long = false;
}

void framer_reset(struct framer *f)
{
	if (!f)
		return;
	framer_clear(f);
	f->cr_pending = false;
}

static void framer_reject(struct framer *f, enum framer_reject why)
{
	size_t n = f->seen;

	framer_clear(f);
	if (f->on_reject)
		f->on_reject(why, n, f->arg);
}

/* A terminator (or, for TERM_NONE, the idle timer) closed the frame. */
static void framer_end(struct framer *f)
{
	if (f->too_long) {
		framer_reject(f, FRAMER_REJ_TOO_LONG);
		return;
	}
	if (f->bad) {
		framer_reject(f, FRAMER_REJ_BAD_BYTES);
		return;
	}
	if (f->len == 0) {
		framer_clear(f);
		return;
	}
	f->buf[f->len] = '\0';
	f->on_frame(f->buf, f->len, f->arg);
	framer_clear(f);
}

static bool framer_code_byte(unsigned char b)
{
	return (b >= 0x20 && b <= 0x7e) || b == FRAMER_GS;
}

static void framer_data(struct framer *f, unsigned char b)
{
	f->active = true;
	f->seen++;
	if (f->too_long)
		return;
	/* With STX framing, data before the STX is line noise. */
	if (!framer_code_byte(b) || (f->o.prefix == FRAMER_PREFIX_STX && !f->stx_seen))
		f->bad = true;
	if (f->len == f->o.max_len) {
		/* Keep nothing of an over-long frame: it may be a swipe. */
		f->too_long = true;
		wipe(f->buf, f->len);
		f->len = 0;
		return;
	}
	if (!f->bad)
		f->buf[f->len++] = (char)b;
}

static bool framer_is_term(const struct framer *f, unsigned char b)
{
	switch (f->o.term) {
	case FRAMER_TERM_CR:
		return b == FRAMER_CR;
	case FRAMER_TERM_LF:
		return b == FRAMER_LF;
	case FRAMER_TERM_ETX:
		return b == FRAMER_ETX;
	case FRAMER_TERM_EOL:
		return b == FRAMER_CR || b == FRAMER_LF;
	case FRAMER_TERM_CRLF: /* handled by the caller */
	case FRAMER_TERM_NONE:
		break;
	}
	return false;
}

static void framer_byte(struct framer *f, unsigned char b)
{
	if (f->o.term == FRAMER_TERM_CRLF) {
		if (f->cr_pending) {
			f->cr_pending = false;
			if (b == FRAMER_LF) {
				framer_end(f);
				return;
			}
			/* A CR not followed by LF is a byte of the frame, and a bad one. */
			framer_data(f, FRAMER_CR);
		}
		if (b == FRAMER_CR) {
			f->cr_pending = true;
			return;
		}
	} else if (framer_is_term(f, b)) {
		framer_end(f);
		return;
	}
	if (f->o.prefix == FRAMER_PREFIX_STX && b == FRAMER_STX) {
		/* Resync: whatever came before this STX never got its terminator. */
		if (f->seen > 0)
			framer_reject(f, f->too_long ? FRAMER_REJ_TOO_LONG : FRAMER_REJ_BAD_BYTES);
		else
			framer_clear(f);
		f->active = true;
		f->stx_seen = true;
		return;
	}
	framer_data(f, b);
}

void framer_feed(struct framer *f, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	if (!f || !buf)
		return;
	for (size_t i = 0; i < n; i++)
		framer_byte(f, p[i]);
}

void framer_idle(struct framer *f)
{
	if (!f)
		return;
	if (f->cr_pending) {
		/* The scanner sent CR alone: the frame is complete all the same. */
		f->cr_pending = false;
		framer_end(f);
		return;
	}
	if (!f->active)
		return;
	if (f->o.term == FRAMER_TERM_NONE) {
		framer_end(f);
		return;
	}
	if (f->seen == 0) {
		framer_clear(f);
		return;
	}
	framer_reject(f, f->too_long ? FRAMER_REJ_TOO_LONG : FRAMER_REJ_INCOMPLETE);
}

bool framer_pending(const struct framer *f)
{
	return f && (f->active || f->cr_pending);
}

const char *framer_reject_name(enum framer_reject why)
{
	switch (why) {
	case FRAMER_REJ_TOO_LONG:
		return "over-long";
	case FRAMER_REJ_BAD_BYTES:
		return "bad bytes";
	case FRAMER_REJ_INCOMPLETE:
		return "incomplete";
	}
	return "unknown";
}

static const struct {
	const char *name;
	enum framer_term t;
} framer_terms[] = {
	{ "cr", FRAMER_TERM_CR },   { "lf", FRAMER_TERM_LF },   { "crlf", FRAMER_TERM_CRLF },
	{ "etx", FRAMER_TERM_ETX }, { "eol", FRAMER_TERM_EOL }, { "none", FRAMER_TERM_NONE },
};

int framer_term_parse(const char *s, enum framer_term *out)
{
	if (!s || !out)
		return -1;
	for (size_t i = 0; i < sizeof framer_terms / sizeof framer_terms[0]; i++) {
		if (strcmp(s, framer_terms[i].name) == 0) {
			*out = framer_terms[i].t;
			return 0;
		}
	}
	return -1;
}

const char *framer_term_name(enum framer_term t)
{
	for (size_t i = 0; i < sizeof framer_terms / sizeof framer_terms[0]; i++)
		if (framer_terms[i].t == t)
			return framer_terms[i].name;
	return "unknown";
}
