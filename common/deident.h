#ifndef POS_DEIDENT_H
#define POS_DEIDENT_H
/*
 * Identifiers computed at central (design section 2):
 *   tid index  = HMAC-SHA256(k_index, TID), 32 bytes
 *   DeIdentTID = "dt_" + Crockford base32 of HMAC-SHA256(k_deident, TID)[0..16)
 *   HHID       = "hh_" + Crockford base32 of 16 random bytes
 * 128 bits in base32 is 26 characters (the last carries 3 bits, zero-padded).
 */
#include <stdbool.h>
#include <stddef.h>
#include "err.h"

#define DEIDENT_INDEX_LEN 32
#define DEIDENT_ID_LEN 29 /* "dt_"/"hh_" + 26 */

/* Crockford base32, upper case, no padding; out needs ceil(n*8/5)+1 bytes. */
int crockford_encode(const unsigned char *in, size_t n, char *out, size_t outcap, pos_err *e);
/* Decodes case-insensitively, accepting O->0 and I/L->1 as Crockford says. */
int crockford_decode(const char *in, size_t n, unsigned char *out, size_t outlen, pos_err *e);

int deident_index(const unsigned char k_index[32], const char *tid,
		  unsigned char out[DEIDENT_INDEX_LEN], pos_err *e);
int deident_tid(const unsigned char k_deident[32], const char *tid,
		char out[DEIDENT_ID_LEN + 1], pos_err *e);
/* HMAC-SHA256 keyed once: the resolver's k_index and k_deident. Read-only
 * after deident_key_new, so threads share one without a lock (each MAC
 * works on its own copy of the keyed state). *out: deident_key_free. */
struct deident_key;
int deident_key_new(const unsigned char key[32], struct deident_key **out, pos_err *e);
void deident_key_free(struct deident_key *k);
/* deident_index and deident_tid with a prepared key; same results. */
int deident_index_key(const struct deident_key *k_index, const char *tid,
		      unsigned char out[DEIDENT_INDEX_LEN], pos_err *e);
int deident_tid_key(const struct deident_key *k_deident, const char *tid,
		    char out[DEIDENT_ID_LEN + 1], pos_err *e);
int deident_hhid_new(char out[DEIDENT_ID_LEN + 1], pos_err *e);
/* Exact shape checks: prefix and 26 canonical upper-case Crockford chars. */
bool deident_hhid_valid(const char *s);
bool deident_dtid_valid(const char *s);

#endif
