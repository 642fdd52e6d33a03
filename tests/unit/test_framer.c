/* framer: every terminator ends a code, STX framing resyncs, the idle timer
 * ends a code only where there is no terminator, and garbage, over-long and
 * half lines are reported and never delivered. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framer.h"

#define MAXF 16

struct got {
	char frames[MAXF][128];
	size_t nframes;
	enum framer_reject rej[MAXF];
	size_t rejlen[MAXF];
	size_t nrej;
};

static void on_frame(const char *frame, size_t len, void *arg)
{
	struct got *g = arg;

	assert_int_equal(strlen(frame), len); /* NUL-terminated, no embedded NUL */
	assert_true(g->nframes < MAXF);
	assert_true(len < sizeof g->frames[0]);
	memcpy(g->frames[g->nframes++], frame, len + 1);
}

static void on_reject(enum framer_reject why, size_t len, void *arg)
{
	struct got *g = arg;

	assert_true(g->nrej < MAXF);
	g->rej[g->nrej] = why;
	g->rejlen[g->nrej++] = len;
}

static struct framer *mk(enum framer_term t, enum framer_prefix p, size_t max, struct got *g)
{
	struct framer_opts o = { t, p, max };
	struct framer *f = NULL;
	pos_err e;

	memset(g, 0, sizeof(*g));
	assert_int_equal(framer_new(&o, on_frame, on_reject, g, &f, &e), 0);
	return f;
}

static void feed(struct framer *f, const char *s)
{
	framer_feed(f, s, strlen(s));
}

static void cr_ends_a_code(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_CR, FRAMER_PREFIX_NONE, 64, &g);

	(void)st;
	feed(f, "4006381333931\r]E05901234123457\r");
	assert_int_equal(g.nframes, 2);
	assert_string_equal(g.frames[0], "4006381333931");
	assert_string_equal(g.frames[1], "]E05901234123457");
	assert_int_equal(g.nrej, 0);
	/* An LF on a CR-only line is noise and spoils the next code. */
	feed(f, "\n123\r");
	assert_int_equal(g.nframes, 2);
	assert_int_equal(g.nrej, 1);
	assert_int_equal(g.rej[0], FRAMER_REJ_BAD_BYTES);
	assert_int_equal(g.rejlen[0], 4);
	framer_free(f);
}

static void lf_ends_a_code(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_LF, FRAMER_PREFIX_NONE, 64, &g);

	(void)st;
	feed(f, "abc\ndef\n");
	assert_int_equal(g.nframes, 2);
	assert_string_equal(g.frames[1], "def");
	framer_free(f);
}

static void crlf_needs_both_bytes(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_CRLF, FRAMER_PREFIX_NONE, 64, &g);

	(void)st;
	feed(f, "12345\r\n");
	assert_int_equal(g.nframes, 1);
	assert_string_equal(g.frames[0], "12345");
	/* A bare CR inside a frame is a bad byte. */
	feed(f, "12\r34\r\n");
	assert_int_equal(g.nframes, 1);
	assert_int_equal(g.nrej, 1);
	assert_int_equal(g.rej[0], FRAMER_REJ_BAD_BYTES);
	/* CR CR LF: the first CR is bad, the second terminates. */
	feed(f, "9\r\r\n");
	assert_int_equal(g.nrej, 2);
	/* A trailing CR alone is completed by the idle timer. */
	feed(f, "777\r");
	assert_int_equal(g.nframes, 1);
	assert_true(framer_pending(f));
	framer_idle(f);
	assert_int_equal(g.nframes, 2);
	assert_string_equal(g.frames[1], "777");
	assert_false(framer_pending(f));
	framer_free(f);
}

static void eol_takes_cr_lf_and_crlf_without_empty_frames(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_EOL, FRAMER_PREFIX_NONE, 64, &g);

	(void)st;
	feed(f, "a1\rb2\nc3\r\n\r\n\n\rd4\r\n");
	assert_int_equal(g.nframes, 4);
	assert_string_equal(g.frames[0], "a1");
	assert_string_equal(g.frames[1], "b2");
	assert_string_equal(g.frames[2], "c3");
	assert_string_equal(g.frames[3], "d4");
	assert_int_equal(g.nrej, 0);
	framer_free(f);
}

static void etx_with_stx_prefix_strips_the_stx(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_ETX, FRAMER_PREFIX_STX, 64, &g);

	(void)st;
	feed(f, "\x02" "5901234123457\x03\x02" "]C1010950110153000310\x1d" "10ABC\x03");
	assert_int_equal(g.nframes, 2);
	assert_string_equal(g.frames[0], "5901234123457");
	/* GS, the GS1 FNC1 separator, is part of a code. */
	assert_string_equal(g.frames[1], "]C1010950110153000310\x1d" "10ABC");
	assert_int_equal(g.nrej, 0);
	framer_free(f);
}

static void stx_framing_reports_bytes_outside_a_frame(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_ETX, FRAMER_PREFIX_STX, 64, &g);

	(void)st;
	feed(f, "junk\x03");
	assert_int_equal(g.nframes, 0);
	assert_int_equal(g.nrej, 1);
	assert_int_equal(g.rej[0], FRAMER_REJ_BAD_BYTES);
	assert_int_equal(g.rejlen[0], 4);
	/* An STX mid-frame drops the partial frame and starts over. */
	feed(f, "\x02" "half\x02" "whole\x03");
	assert_int_equal(g.nframes, 1);
	assert_string_equal(g.frames[0], "whole");
	assert_int_equal(g.nrej, 2);
	/* STX ETX is an empty frame: ignored. */
	feed(f, "\x02\x03");
	assert_int_equal(g.nframes, 1);
	assert_int_equal(g.nrej, 2);
	framer_free(f);
}

static void etx_without_prefix_rejects_a_stray_stx(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_ETX, FRAMER_PREFIX_NONE, 64, &g);

	(void)st;
	feed(f, "abc\x03\x02" "def\x03");
	assert_int_equal(g.nframes, 1);
	assert_string_equal(g.frames[0], "abc");
	assert_int_equal(g.nrej, 1);
	framer_free(f);
}

static void idle_ends_a_code_when_there_is_no_terminator(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_NONE, FRAMER_PREFIX_NONE, 64, &g);

	(void)st;
	feed(f, "40063");
	feed(f, "81333931");
	assert_int_equal(g.nframes, 0);
	assert_true(framer_pending(f));
	framer_idle(f);
	assert_int_equal(g.nframes, 1);
	assert_string_equal(g.frames[0], "4006381333931");
	/* CR and LF are not terminators here: they are bad bytes. */
	feed(f, "12\r\n");
	framer_idle(f);
	assert_int_equal(g.nframes, 1);
	assert_int_equal(g.nrej, 1);
	assert_int_equal(g.rej[0], FRAMER_REJ_BAD_BYTES);
	/* Idle with nothing received does nothing. */
	framer_idle(f);
	assert_int_equal(g.nframes + g.nrej, 2);
	framer_free(f);
}

static void idle_drops_a_half_line_on_a_terminated_stream(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_EOL, FRAMER_PREFIX_NONE, 64, &g);

	(void)st;
	feed(f, "95200");
	framer_idle(f);
	assert_int_equal(g.nframes, 0);
	assert_int_equal(g.nrej, 1);
	assert_int_equal(g.rej[0], FRAMER_REJ_INCOMPLETE);
	assert_int_equal(g.rejlen[0], 5);
	feed(f, "4006381333931\r\n");
	assert_int_equal(g.nframes, 1);
	assert_string_equal(g.frames[0], "4006381333931");
	framer_free(f);
}

static void half_line_without_idle_joins_the_next_line(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_EOL, FRAMER_PREFIX_NONE, 64, &g);

	(void)st;
	feed(f, "95200");
	feed(f, "12345\r\n");
	assert_int_equal(g.nframes, 1);
	assert_string_equal(g.frames[0], "9520012345");
	framer_free(f);
}

static void split_input_byte_by_byte_gives_the_same_frames(void **st)
{
	static const char in[] = "\x02" "5901234123457\x03junk\x03\x02" "]E00012345678905\x03";
	struct got whole, bytes;
	struct framer *f1 = mk(FRAMER_TERM_ETX, FRAMER_PREFIX_STX, 64, &whole);
	struct framer *f2 = mk(FRAMER_TERM_ETX, FRAMER_PREFIX_STX, 64, &bytes);

	(void)st;
	framer_feed(f1, in, sizeof in - 1);
	for (size_t i = 0; i < sizeof in - 1; i++)
		framer_feed(f2, in + i, 1);
	assert_int_equal(whole.nframes, 2);
	assert_int_equal(bytes.nframes, 2);
	assert_int_equal(whole.nrej, 1);
	assert_int_equal(bytes.nrej, 1);
	for (size_t i = 0; i < 2; i++)
		assert_string_equal(whole.frames[i], bytes.frames[i]);
	framer_free(f1);
	framer_free(f2);
}

static void over_long_frame_is_dropped_to_the_next_terminator(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_CR, FRAMER_PREFIX_NONE, 8, &g);

	(void)st;
	feed(f, "12345678\r");  /* exactly max_len: fine */
	feed(f, "123456789ABCDEF\r");
	feed(f, "ok\r");
	assert_int_equal(g.nframes, 2);
	assert_string_equal(g.frames[0], "12345678");
	assert_string_equal(g.frames[1], "ok");
	assert_int_equal(g.nrej, 1);
	assert_int_equal(g.rej[0], FRAMER_REJ_TOO_LONG);
	assert_int_equal(g.rejlen[0], 15);
	framer_free(f);
}

static void over_long_frame_without_terminator_ends_at_idle(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_NONE, FRAMER_PREFIX_NONE, 4, &g);

	(void)st;
	feed(f, "123456");
	framer_idle(f);
	assert_int_equal(g.nframes, 0);
	assert_int_equal(g.nrej, 1);
	assert_int_equal(g.rej[0], FRAMER_REJ_TOO_LONG);
	assert_int_equal(g.rejlen[0], 6);
	framer_free(f);
}

static void non_printable_bytes_reject_the_whole_frame(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_EOL, FRAMER_PREFIX_NONE, 64, &g);
	static const char noise[] = "12\x00" "34\xff\x1b[A\r\n";

	(void)st;
	framer_feed(f, noise, sizeof noise - 1);
	feed(f, "\x7f\r%B4242424242424242^TEST/CARD^2812101000?\r");
	assert_int_equal(g.nrej, 2);
	assert_int_equal(g.rej[0], FRAMER_REJ_BAD_BYTES);
	assert_int_equal(g.rejlen[0], 9);
	assert_int_equal(g.rej[1], FRAMER_REJ_BAD_BYTES);
	assert_int_equal(g.nframes, 1);
	assert_string_equal(g.frames[0], "%B4242424242424242^TEST/CARD^2812101000?");
	framer_free(f);
}

static void reset_forgets_a_partial_frame_silently(void **st)
{
	struct got g;
	struct framer *f = mk(FRAMER_TERM_CR, FRAMER_PREFIX_NONE, 64, &g);

	(void)st;
	feed(f, "half");
	framer_reset(f);
	assert_false(framer_pending(f));
	feed(f, "new\r");
	assert_int_equal(g.nframes, 1);
	assert_string_equal(g.frames[0], "new");
	assert_int_equal(g.nrej, 0);
	framer_free(f);
}

static void bad_options_are_refused(void **st)
{
	struct framer_opts o = { FRAMER_TERM_CR, FRAMER_PREFIX_NONE, 0 };
	struct framer *f = NULL;
	struct got g;
	pos_err e;
	enum framer_term t;

	(void)st;
	assert_int_equal(framer_new(&o, on_frame, on_reject, &g, &f, &e), POS_EINVAL);
	o.max_len = FRAMER_MAX_LEN_LIMIT + 1;
	assert_int_equal(framer_new(&o, on_frame, on_reject, &g, &f, &e), POS_EINVAL);
	o.max_len = 10;
	o.term = (enum framer_term)99;
	assert_int_equal(framer_new(&o, on_frame, on_reject, &g, &f, &e), POS_EINVAL);
	assert_null(f);
	framer_free(NULL);
	assert_int_equal(framer_term_parse("crlf", &t), 0);
	assert_int_equal(t, FRAMER_TERM_CRLF);
	assert_int_equal(framer_term_parse("CRLF", &t), -1);
	assert_string_equal(framer_term_name(FRAMER_TERM_EOL), "eol");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cr_ends_a_code),
		cmocka_unit_test(lf_ends_a_code),
		cmocka_unit_test(crlf_needs_both_bytes),
		cmocka_unit_test(eol_takes_cr_lf_and_crlf_without_empty_frames),
		cmocka_unit_test(etx_with_stx_prefix_strips_the_stx),
		cmocka_unit_test(stx_framing_reports_bytes_outside_a_frame),
		cmocka_unit_test(etx_without_prefix_rejects_a_stray_stx),
		cmocka_unit_test(idle_ends_a_code_when_there_is_no_terminator),
		cmocka_unit_test(idle_drops_a_half_line_on_a_terminated_stream),
		cmocka_unit_test(half_line_without_idle_joins_the_next_line),
		cmocka_unit_test(split_input_byte_by_byte_gives_the_same_frames),
		cmocka_unit_test(over_long_frame_is_dropped_to_the_next_terminator),
		cmocka_unit_test(over_long_frame_without_terminator_ends_at_idle),
		cmocka_unit_test(non_printable_bytes_reject_the_whole_frame),
		cmocka_unit_test(reset_forgets_a_partial_frame_silently),
		cmocka_unit_test(bad_options_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
