#include "receipt.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "wipe.h"

static const char receipt_b32[] = "abcdefghijklmnopqrstuvwxyz234567";

int receipt_token_new(char out[RECEIPT_TOKEN_LEN + 1], pos_err *e)
{
	unsigned char r[16];
	unsigned acc = 0;
	int bits = 0;
	size_t n = 0;

	if (RAND_bytes(r, sizeof r) != 1)
		return err_set(e, POS_ECRYPTO, "no random bytes for a receipt token");
	for (size_t i = 0; i < sizeof r; i++) {
		acc = (acc << 8) | r[i];
		bits += 8;
		while (bits >= 5) {
			out[n++] = receipt_b32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0)
		out[n++] = receipt_b32[(acc << (5 - bits)) & 31];
	out[n] = '\0';
	wipe(r, sizeof r);
	return 0;
}

bool receipt_token_valid(const char *s, size_t n)
{
	if (!s || n != RECEIPT_TOKEN_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *p = s[i] ? strchr(receipt_b32, s[i]) : NULL;

		if (!p)
			return false;
		/* 128 = 25 * 5 + 3: the last character's low 2 bits are 0. */
		if (i == n - 1 && ((p - receipt_b32) & 3) != 0)
			return false;
	}
	return true;
}

int receipt_token_hash(const char *s, size_t n, unsigned char out[32])
{
	unsigned int len = 0;

	if (EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
		return POS_ECRYPTO;
	return 0;
}
