#ifndef POS_RECEIPT_H
#define POS_RECEIPT_H
/*
 * The receipt token (design section 13): 128 random bits the agent makes
 * at total, written as RFC 4648 base32 in lower case without padding (26
 * characters), printed on the receipt inside its link. Central keeps only
 * its SHA-256, so a stolen database opens no receipt.
 */
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define RECEIPT_TOKEN_LEN 26

/* A fresh token from the OS's random source. */
int receipt_token_new(char out[RECEIPT_TOKEN_LEN + 1], pos_err *e);
/* Exactly RECEIPT_TOKEN_LEN characters of [a-z2-7], the last one holding
 * only its 3 bits of the 128 (as receipt_token_new writes it). */
bool receipt_token_valid(const char *s, size_t n);
/* SHA-256 of the token's characters. */
int receipt_token_hash(const char *s, size_t n, unsigned char out[32]);

#endif
