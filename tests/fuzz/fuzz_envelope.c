/* Feeds arbitrary bytes to everything central does with an EncTID from the
 * network: the raw envelope open, the base64url field decode, and the JSON
 * field open, under one fixed test key and info. Never crash; and a few
 * properties that must always hold are checked with abort():
 *   - a failed open leaves the plaintext buffer all zero;
 *   - a base64url text that decodes re-encodes to exactly itself;
 *   - a successful open of the fixed-key envelope returns a TID that seals
 *     and opens again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "deident.h"
#include "envelope.h"
#include "uuid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seed corpus (tests/fuzz/corpus/envelope/) holds envelopes sealed to
 * this key and info, so the fuzzer starts from inputs that open. */
static const unsigned char fuzz_sk[32] = {
	0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66, 0x45,
	0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a,
};
static const char fuzz_info[] = "pos-tid/1|S1|T1|01890a5d-ac96-774b-bcce-b302099a8057";

static void fuzz_check_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char pt[ENVELOPE_MAX_PT], dec[4096], raw[16];
	char text[4096 + 1], back[sizeof text + 8], tid[ENVELOPE_MAX_PT + 1];
	size_t ptn = 0, decn = 0;
	pos_err e;

	/* 1. The raw envelope, as central sees it after decoding. */
	memset(pt, 0xAA, sizeof pt);
	if (envelope_open(fuzz_sk, fuzz_info, data, size, pt, sizeof pt, &ptn, &e) != 0)
		fuzz_check_zero(pt, sizeof pt);
	else if (ptn < 1 || ptn > ENVELOPE_MAX_PT)
		abort();

	if (size > sizeof text - 1)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	/* 2. The base64url field: strict, so decode-then-encode is identity. */
	if (b64url_decode(text, size, dec, sizeof dec, &decn, &e) == 0) {
		if (b64url_encode(dec, decn, back, sizeof back, &e) != 0 ||
		    strlen(back) != size || memcmp(back, text, size) != 0)
			abort();
	}

	/* 3. The JSON field form (stops at the first NUL, like a C string). */
	memset(tid, 'Z', sizeof tid);
	if (envelope_open_tid(fuzz_sk, fuzz_info, text, tid, &e) != 0) {
		fuzz_check_zero((const unsigned char *)tid, sizeof tid);
	} else {
		unsigned char pk[32];
		char enc[ENVELOPE_B64_MAX], again[ENVELOPE_MAX_PT + 1];

		if (strlen(tid) < 1 || hpke_x25519_public(fuzz_sk, pk, &e) != 0 ||
		    envelope_seal_tid(pk, NULL, fuzz_info, tid, enc, &e) != 0 ||
		    envelope_open_tid(fuzz_sk, fuzz_info, enc, again, &e) != 0 ||
		    strcmp(again, tid) != 0)
			abort();
	}

	/* 4. The other text decoders central applies to request fields. */
	(void)hex_decode(text, size, dec, size / 2, &e);
	(void)crockford_decode(text, size, raw, sizeof raw, &e);
	(void)deident_hhid_valid(text);
	(void)uuid_valid(text);
	return 0;
}
