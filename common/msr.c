/*
 * ISO 7813 tracks from an unencrypted reader's ASCII line
 * (../shared/reference/magstripe.md). Nothing from the wire is trusted for
 * a length: every field is bounded here. Messages name track states only.
 */
#include "msr.h"

#include <string.h>

#include "tid.h"
#include "wipe.h"

#define MSR_PAN_MIN 12
#define MSR_PAN_MAX 19
#define MSR_NAME_MIN 2
#define MSR_NAME_MAX 26
/* ISO track capacities, sentinels included: no body can be longer. */
#define MSR_T1_MAX 79
#define MSR_T2_MAX 40
#define MSR_T3_MAX 107

struct msr_track {
	enum msr_track_state st;
	char pan[MSR_PAN_MAX + 1];
	char expiry[5];
	char service[4];
};

static bool msr_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool msr_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!msr_is_digit(s[i]))
			return false;
	return true;
}

/* PAN digits up to sep; returns the index just after sep, 0 on failure. */
static size_t msr_pan(const char *b, size_t n, size_t i, char sep, struct msr_track *t)
{
	size_t start = i;

	while (i < n && msr_is_digit(b[i]) && i - start <= MSR_PAN_MAX)
		i++;
	if (i >= n || b[i] != sep || i - start < MSR_PAN_MIN || i - start > MSR_PAN_MAX)
		return 0;
	memcpy(t->pan, b + start, i - start);
	t->pan[i - start] = '\0';
	return i + 1;
}

/* YYMM + 3-digit service code at b[i]. */
static bool msr_expiry_service(const char *b, size_t n, size_t i, struct msr_track *t)
{
	if (n - i < 7 || !msr_digits(b + i, 7))
		return false;
	memcpy(t->expiry, b + i, 4);
	t->expiry[4] = '\0';
	memcpy(t->service, b + i + 4, 3);
	t->service[3] = '\0';
	return true;
}

/* Track 1 body between '%' and '?': B PAN ^ NAME ^ YYMM SSS discretionary. */
static void msr_track1(const char *b, size_t n, struct msr_track *t)
{
	size_t i, name;

	if (n == 0) {
		t->st = MSR_TRACK_ABSENT;
		return;
	}
	t->st = MSR_TRACK_FAILED;
	for (i = 0; i < n; i++)
		if ((unsigned char)b[i] < 0x20 || (unsigned char)b[i] > 0x5f)
			goto bad;
	if (b[0] != 'B')
		goto bad;
	i = msr_pan(b, n, 1, '^', t);
	if (!i)
		goto bad;
	name = i;
	while (i < n && b[i] != '^' && i - name <= MSR_NAME_MAX)
		i++;
	if (i >= n || b[i] != '^' || i - name < MSR_NAME_MIN || i - name > MSR_NAME_MAX)
		goto bad;
	if (!msr_expiry_service(b, n, i + 1, t))
		goto bad;
	t->st = MSR_TRACK_OK;
	return;
bad:
	wipe(t->pan, sizeof t->pan);
	wipe(t->expiry, sizeof t->expiry);
	wipe(t->service, sizeof t->service);
}

/* Track 2 body between ';' and '?': PAN = YYMM SSS discretionary. */
static void msr_track2(const char *b, size_t n, struct msr_track *t)
{
	size_t i;

	if (n == 0) {
		t->st = MSR_TRACK_ABSENT;
		return;
	}
	t->st = MSR_TRACK_FAILED;
	/* The track 2 character set is 0x30-0x3F; '?' ends the body. */
	for (i = 0; i < n; i++)
		if (b[i] < 0x30 || b[i] > 0x3e)
			goto bad;
	i = msr_pan(b, n, 0, '=', t);
	if (!i || !msr_expiry_service(b, n, i, t))
		goto bad;
	t->st = MSR_TRACK_OK;
	return;
bad:
	wipe(t->pan, sizeof t->pan);
	wipe(t->expiry, sizeof t->expiry);
	wipe(t->service, sizeof t->service);
}

static const char *msr_state_name(enum msr_track_state s)
{
	switch (s) {
	case MSR_TRACK_OK: return "read";
	case MSR_TRACK_FAILED: return "failed to read";
	case MSR_TRACK_ABSENT:
	default: return "absent";
	}
}

int msr_parse(char *line, size_t len, struct msr_result *out, pos_err *e)
{
	struct msr_track t1, t2;
	const struct msr_track *src = NULL;
	bool seen[3] = { false, false, false };
	size_t i = 0;
	int rc = 0;

	memset(&t1, 0, sizeof t1);
	memset(&t2, 0, sizeof t2);
	if (out)
		memset(out, 0, sizeof *out);
	if (!out || (!line && len)) {
		rc = err_set(e, POS_EINVAL, "card swipe: no buffer given");
		goto done;
	}
	if (len > MSR_MAX_LINE) {
		rc = err_set(e, POS_ETOOBIG, "card swipe line is over the size limit");
		goto done;
	}
	/* Anything outside the sentinels (STX/ESC framing, a card-sensor digit,
	 * CR, ETX) is skipped. */
	while (i < len) {
		char c = line[i];
		size_t max, body, q;
		const char *stop;
		int track;

		/* A start sentinel can never be track data, so meeting one means
		 * the end sentinel was lost. Track 1 data may hold a '+'. */
		if (c == '%') {
			track = 0;
			max = MSR_T1_MAX;
			stop = "?%;";
		} else if (c == ';') {
			track = 1;
			max = MSR_T2_MAX;
			stop = "?%;+";
		} else if (c == '+') {
			track = 2;
			max = MSR_T3_MAX;
			stop = "?%;+";
		} else {
			i++;
			continue;
		}
		body = i + 1;
		q = body;
		while (q < len && q - body <= max && !(line[q] && strchr(stop, line[q])))
			q++;
		if (seen[track]) {
			rc = err_set(e, POS_EINVAL, "card swipe carries track %d more than once",
				     track + 1);
			goto done;
		}
		seen[track] = true;
		if (q >= len || line[q] != '?') {
			/* No end sentinel within the track's capacity: the track is
			 * broken; go on from where the scan stopped. */
			if (track == 0)
				t1.st = MSR_TRACK_FAILED;
			else if (track == 1)
				t2.st = MSR_TRACK_FAILED;
			i = q;
			continue;
		}
		if (track == 0)
			msr_track1(line + body, q - body, &t1);
		else if (track == 1)
			msr_track2(line + body, q - body, &t2);
		i = q + 1;
	}
	out->t1 = t1.st;
	out->t2 = t2.st;
	if (t1.st == MSR_TRACK_OK && t2.st == MSR_TRACK_OK && strcmp(t1.pan, t2.pan) != 0) {
		rc = err_set(e, POS_EINVAL, "card numbers on track 1 and track 2 differ");
		goto done;
	}
	if (t2.st == MSR_TRACK_OK)
		src = &t2;
	else if (t1.st == MSR_TRACK_OK)
		src = &t1;
	if (!src) {
		rc = err_set(e, POS_EINVAL, "no card number: track 1 %s, track 2 %s",
			     msr_state_name(t1.st), msr_state_name(t2.st));
		goto done;
	}
	if (!tid_luhn_valid(src->pan, strlen(src->pan))) {
		rc = err_set(e, POS_EINVAL, "card number fails the Luhn check");
		goto done;
	}
	memcpy(out->pan, src->pan, sizeof out->pan);
	memcpy(out->expiry, src->expiry, sizeof out->expiry);
	memcpy(out->service, src->service, sizeof out->service);
	out->pan_luhn_ok = true;
done:
	wipe(&t1, sizeof t1);
	wipe(&t2, sizeof t2);
	if (line && len)
		wipe(line, len);
	return rc;
}

void msr_result_wipe(struct msr_result *r)
{
	if (r)
		wipe(r, sizeof *r);
}
