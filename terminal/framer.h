#ifndef POS_FRAMER_H
#define POS_FRAMER_H
/*
 * A pure byte-stream framer for serial scanners and card readers: feed it
 * bytes as they arrive, it calls back once per complete frame. No I/O, no
 * clock: the caller runs the inter-character idle timer and calls
 * framer_idle when it fires.
 *
 * Rules, in the order they apply:
 * - A frame ends at the terminator (CR, LF, CR LF, ETX, or "eol" = any of
 *   CR, LF, CR LF). With FRAMER_TERM_NONE only framer_idle ends a frame
 *   (a factory-default Zebra sends no suffix at all).
 * - With prefix STX a frame must start with STX (0x02), which is stripped;
 *   bytes outside STX..terminator are garbage, and an STX in the middle of
 *   a frame drops the partial frame and starts a new one (resync).
 * - Frame bytes must be printable ASCII (0x20..0x7E) or GS (0x1D, the FNC1
 *   separator of GS1-128/DataMatrix). Anything else rejects the whole frame.
 * - A frame longer than max_len is dropped up to the next terminator (or
 *   idle) and reported once; the buffer never grows past max_len.
 * - Empty frames (CR LF seen as two terminators, stray terminators) are
 *   ignored silently.
 * - framer_idle on a terminated stream drops the partial frame as
 *   incomplete (a half line is never delivered as a code).
 *
 * The frame buffer is wiped after every frame and on reset/free: card
 * readers send track data through here.
 */
#include <stdbool.h>
#include <stddef.h>
#include "err.h"

#define FRAMER_MAX_LEN_LIMIT 65536

enum framer_term {
	FRAMER_TERM_CR = 1,
	FRAMER_TERM_LF,
	FRAMER_TERM_CRLF,
	FRAMER_TERM_ETX,
	FRAMER_TERM_EOL,  /* CR, LF or CR LF */
	FRAMER_TERM_NONE, /* frames end only at framer_idle */
};

enum framer_prefix { FRAMER_PREFIX_NONE = 0, FRAMER_PREFIX_STX };

enum framer_reject {
	FRAMER_REJ_TOO_LONG = 1, /* over max_len; dropped up to the terminator */
	FRAMER_REJ_BAD_BYTES,    /* non-printable byte, or data outside STX framing */
	FRAMER_REJ_INCOMPLETE,   /* partial frame dropped at idle timeout */
};

struct framer_opts {
	enum framer_term term;
	enum framer_prefix prefix;
	size_t max_len; /* 1..FRAMER_MAX_LEN_LIMIT */
};

struct framer;

/* frame is NUL-terminated (frame[len] == 0), len >= 1, and only valid
 * during the call: it is wiped when the callback returns. */
typedef void (*framer_frame_fn)(const char *frame, size_t len, void *arg);
/* len: how many bytes the dropped frame had (never its content). */
typedef void (*framer_reject_fn)(enum framer_reject why, size_t len, void *arg);

/* on_reject may be NULL. *out: framer_free. */
int framer_new(const struct framer_opts *o, framer_frame_fn on_frame, framer_reject_fn on_reject,
	       void *arg, struct framer **out, pos_err *e);
/* Wipes the buffer and frees; accepts NULL. */
void framer_free(struct framer *f);
/* Callbacks run from inside framer_feed/framer_idle and must not free f. */
void framer_feed(struct framer *f, const void *buf, size_t n);
/* The idle timer fired: ends (TERM_NONE) or drops (otherwise) the partial frame. */
void framer_idle(struct framer *f);
/* True while a frame is partly received (the caller arms its idle timer). */
bool framer_pending(const struct framer *f);
/* Forgets any partial frame without reporting it (device closed). */
void framer_reset(struct framer *f);
/* "over-long", "bad bytes", "incomplete". */
const char *framer_reject_name(enum framer_reject why);
/* Parses "cr", "lf", "crlf", "etx", "eol", "none"; -1 when unknown. */
int framer_term_parse(const char *s, enum framer_term *out);
const char *framer_term_name(enum framer_term t);

#endif
