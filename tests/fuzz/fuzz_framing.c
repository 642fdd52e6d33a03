/* Feeds arbitrary bytes through the framer of every shipped profile (and of
 * every terminator/prefix combination with a tiny max_len, to reach the
 * over-long paths), in pieces, with idle timeouts where the input says so.
 * Checks what the agent relies on: a delivered frame is 1..max_len code
 * bytes, NUL-terminated, without terminators or control bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "framer.h"
#include "profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char *const fuzz_profiles[] = { "scanner-crlf", "scanner-cr", "scanner-etx",
					     "zebra-default", "msr-ascii" };
#define FUZZ_NPROF (sizeof fuzz_profiles / sizeof fuzz_profiles[0])
#define FUZZ_NCOMBO (6 * 2)

static struct framer_opts fuzz_opts[FUZZ_NPROF + FUZZ_NCOMBO];

struct fuzz_state {
	size_t max_len;
	size_t frames, rejects;
};

static void fuzz_frame(const char *frame, size_t len, void *arg)
{
	struct fuzz_state *st = arg;

	if (len == 0 || len > st->max_len || frame[len] != '\0' || strlen(frame) != len)
		abort();
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)frame[i];
		if (!((b >= 0x20 && b <= 0x7e) || b == 0x1d))
			abort();
	}
	st->frames++;
}

static void fuzz_reject(enum framer_reject why, size_t len, void *arg)
{
	struct fuzz_state *st = arg;

	if (why < FRAMER_REJ_TOO_LONG || why > FRAMER_REJ_INCOMPLETE)
		abort();
	if (why == FRAMER_REJ_TOO_LONG && len <= st->max_len)
		abort();
	st->rejects++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	pos_err e;
	size_t k = 0;

	(void)argc;
	(void)argv;
	for (size_t i = 0; i < FUZZ_NPROF; i++) {
		struct profile p;
		/* The shipped profiles must load: a harness that silently skipped
		 * them would prove nothing. */
		if (profile_load(fuzz_profiles[i], &p, &e) < 0)
			abort();
		profile_framer_opts(&p, &fuzz_opts[k++]);
	}
	for (int t = FRAMER_TERM_CR; t <= FRAMER_TERM_NONE; t++) {
		for (int pre = 0; pre < 2; pre++) {
			fuzz_opts[k].term = (enum framer_term)t;
			fuzz_opts[k].prefix = (enum framer_prefix)pre;
			fuzz_opts[k].max_len = 4;
			k++;
		}
	}
	return 0;
}

/* Byte 0 picks the framer; byte 1 the piece size. In the rest, 0xFE stands
 * for "the idle timer fired" (0xFF and every other byte is data). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_state st = { 0, 0, 0 };
	struct framer *f = NULL;
	const struct framer_opts *o;
	size_t piece, i = 2;

	if (size < 2)
		return 0;
	o = &fuzz_opts[data[0] % (FUZZ_NPROF + FUZZ_NCOMBO)];
	piece = (size_t)(data[1] % 16) + 1;
	st.max_len = o->max_len;
	if (framer_new(o, fuzz_frame, fuzz_reject, &st, &f, NULL) < 0)
		abort();
	while (i < size) {
		size_t n = 0;
		while (i + n < size && n < piece && data[i + n] != 0xfe)
			n++;
		if (n)
			framer_feed(f, data + i, n);
		i += n;
		if (i < size && data[i] == 0xfe) {
			framer_idle(f);
			if (framer_pending(f))
				abort();
			i++;
		}
	}
	framer_idle(f);
	framer_reset(f);
	if (framer_pending(f))
		abort();
	framer_free(f);
	return 0;
}
