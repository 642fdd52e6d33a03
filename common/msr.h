#ifndef POS_MSR_H
#define POS_MSR_H
/*
 * ISO 7813 tracks from a magstripe reader's ASCII output (one swipe per line,
 * e.g. "%B4242...^NAME/X^2812101...?;4242...=2812101...?"). Track 1 (format
 * B) and track 2 are parsed; a track sent as "%E?" / ";E?" is reported as
 * failed; track 3 is skipped. The PAN comes from track 2 when it decoded,
 * else from track 1, and the two must agree when both decoded. The input
 * line is wiped in place after parsing, whatever the result. The result
 * holds the PAN: wipe it with msr_result_wipe once the TID is sealed.
 */
#include <stdbool.h>
#include <stddef.h>
#include "err.h"

#define MSR_MAX_LINE 512

enum msr_track_state { MSR_TRACK_ABSENT = 0, MSR_TRACK_OK, MSR_TRACK_FAILED };

struct msr_result {
	enum msr_track_state t1, t2;
	char pan[20];        /* digits, NUL-terminated; "" when none */
	bool pan_luhn_ok;
	char expiry[5];      /* YYMM */
	char service[4];     /* service code */
};

/* Fails (POS_EINVAL) when no track yields a PAN; the message names the
 * tracks' states, never data. A PAN that fails Luhn is POS_EINVAL too. */
int msr_parse(char *line, size_t len, struct msr_result *out, pos_err *e);
void msr_result_wipe(struct msr_result *r);

#endif
