#ifndef POS_CKEY_H
#define POS_CKEY_H
/*
 * Central's public key as a terminal learns it: GET /v1/keys answers
 * {"kid","public_key","opens":[kids]} over the terminal's authenticated
 * connection (the store controller relays it), so a key rotation needs no
 * copying. The agent refreshes central.pub from it at start, periodically
 * and when central refuses an EncTID; doctor compares it with the file.
 * A kid is always recomputed from the key (design section 3): an answer
 * whose kid does not match its key is refused.
 */
#include <stdbool.h>
#include <stddef.h>

#include "aconf.h"
#include "err.h"
#include "keys.h"

#define CKEY_OPENS_MAX 64
#define CKEY_ANSWER_MAX (16 * 1024)
/* The opens list as one comparable string (kids sorted, joined by ','). */
#define CKEY_SIG_MAX (CKEY_OPENS_MAX * (KEYS_KID_LEN + 1) + 1)

/* Plain value; holds no secret. */
struct ckey_answer {
	char kid[KEYS_KID_LEN + 1];
	unsigned char pk[32];
	char opens[CKEY_OPENS_MAX][KEYS_KID_LEN + 1];
	size_t nopens; /* includes kid */
};

/* Parses and checks an answer: kid = envelope_kid(public_key), every kid 16
 * lower-case hex characters, at most CKEY_OPENS_MAX. */
int ckey_parse(const char *body, size_t len, struct ckey_answer *out, pos_err *e);
/* True when central still opens EncTIDs sealed to kid. */
bool ckey_opens(const struct ckey_answer *a, const char *kid);
/* The opens list, sorted, as one string (for "did it change?"). */
void ckey_signature(const struct ckey_answer *a, char sig[CKEY_SIG_MAX]);
/* Writes pk as a PEM public key file (mode 0644), atomically: a temporary
 * file beside it, fsync, rename, the folder fsynced. */
int ckey_save(const char *path, const unsigned char pk[32], pos_err *e);
/* A central refusal that says the EncTID's key is not (or no longer) one
 * central opens: worth a key refresh and one more try. */
bool ckey_refusal(const char *code);
/*
 * One blocking GET /v1/keys with the terminal's certificate, trying each
 * URL of [central] url in turn (for doctor and check, never the agent's
 * loop). url (cap bytes) gets the URL that answered.
 */
int ckey_fetch(const struct aconf *c, long timeout_ms, struct ckey_answer *out, char *url,
	       size_t cap, pos_err *e);

#endif
