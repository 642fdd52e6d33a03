#ifndef POS_CODEC_H
#define POS_CODEC_H
/* base64url (RFC 4648 section 5, no padding) and lowercase hex. */
#include <stddef.h>
#include "err.h"

/* Characters needed for n input bytes, not counting the NUL. */
size_t b64url_encoded_len(size_t n);
/* Writes a NUL-terminated encoding; out must hold b64url_encoded_len(n)+1. */
int b64url_encode(const unsigned char *in, size_t n, char *out, size_t outcap, pos_err *e);
/* Decodes text without padding; rejects '=', '+', '/', whitespace and
 * non-canonical trailing bits. *outlen gets the byte count. */
int b64url_decode(const char *in, size_t n, unsigned char *out, size_t outcap,
		  size_t *outlen, pos_err *e);

int hex_encode(const unsigned char *in, size_t n, char *out, size_t outcap, pos_err *e);
/* The value of one hex digit (either case), -1 for any other character. */
int hex_digit(int c);
/* Accepts upper or lower case; exactly outlen bytes must result. */
int hex_decode(const char *in, size_t n, unsigned char *out, size_t outlen, pos_err *e);

#endif
