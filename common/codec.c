#include "codec.h"

#include <stdint.h>
#include <string.h>

#include "wipe.h"

static const char codec_b64url_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of a base64url character, or -1 for anything else (including the
 * '+', '/' and '=' of standard base64, and whitespace). */
static int codec_b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

size_t b64url_encoded_len(size_t n)
{
	return (n / 3) * 4 + ((n % 3) ? (n % 3) + 1 : 0);
}

int b64url_encode(const unsigned char *in, size_t n, char *out, size_t outcap, pos_err *e)
{
	size_t need, i, o = 0;

	if (!out || (!in && n))
		return err_set(e, POS_EINVAL, "base64url encode: missing buffer");
	if (n > (SIZE_MAX / 4) - 4)
		return err_set(e, POS_ETOOBIG, "base64url encode: input too long");
	need = b64url_encoded_len(n) + 1;
	if (outcap < need)
		return err_set(e, POS_ETOOBIG, "base64url encode: output needs %zu bytes, has %zu",
			       need, outcap);
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
		out[o++] = codec_b64url_alpha[(v >> 18) & 63];
		out[o++] = codec_b64url_alpha[(v >> 12) & 63];
		out[o++] = codec_b64url_alpha[(v >> 6) & 63];
		out[o++] = codec_b64url_alpha[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = codec_b64url_alpha[(v >> 18) & 63];
		out[o++] = codec_b64url_alpha[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
		out[o++] = codec_b64url_alpha[(v >> 18) & 63];
		out[o++] = codec_b64url_alpha[(v >> 12) & 63];
		out[o++] = codec_b64url_alpha[(v >> 6) & 63];
	}
	out[o] = '\0';
	return 0;
}

/*
 * Strict decoding: the same bytes have exactly one accepted text, so an
 * EncTID cannot be re-encoded into a second "different" string that opens to
 * the same value. On failure the output is wiped, as it may hold secret bytes.
 */
int b64url_decode(const char *in, size_t n, unsigned char *out, size_t outcap,
		  size_t *outlen, pos_err *e)
{
	size_t need, i, o = 0;
	uint32_t acc = 0;
	int bits = 0, rc = 0;

	if (outlen)
		*outlen = 0;
	if (!out || !outlen || (!in && n))
		return err_set(e, POS_EINVAL, "base64url decode: missing buffer");
	if (n % 4 == 1)
		return err_set(e, POS_EINVAL, "base64url decode: impossible length %zu", n);
	need = (n / 4) * 3 + ((n % 4) ? (n % 4) - 1 : 0);
	if (need > outcap)
		return err_set(e, POS_ETOOBIG, "base64url decode: %zu bytes do not fit in %zu",
			       need, outcap);
	for (i = 0; i < n; i++) {
		int v = codec_b64url_val((unsigned char)in[i]);
		if (v < 0) {
			/* The offending byte could be part of a secret: name its
			 * position only. */
			rc = err_set(e, POS_EINVAL,
				     "base64url decode: invalid character at offset %zu", i);
			goto fail;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (bits && acc) {
		rc = err_set(e, POS_EINVAL, "base64url decode: non-canonical trailing bits");
		goto fail;
	}
	*outlen = o;
	return 0;
fail:
	wipe(out, need);
	return rc;
}

int hex_encode(const unsigned char *in, size_t n, char *out, size_t outcap, pos_err *e)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	if (!out || (!in && n))
		return err_set(e, POS_EINVAL, "hex encode: missing buffer");
	if (n > (SIZE_MAX - 1) / 2 || outcap < n * 2 + 1)
		return err_set(e, POS_ETOOBIG, "hex encode: output buffer too small");
	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
	return 0;
}

int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *in, size_t n, unsigned char *out, size_t outlen, pos_err *e)
{
	size_t i;

	if (!out || (!in && n))
		return err_set(e, POS_EINVAL, "hex decode: missing buffer");
	if (outlen > SIZE_MAX / 2 || n != outlen * 2)
		return err_set(e, POS_EINVAL, "hex decode: expected %zu hex characters, got %zu",
			       outlen <= SIZE_MAX / 2 ? outlen * 2 : outlen, n);
	for (i = 0; i < outlen; i++) {
		int hi = hex_digit((unsigned char)in[2 * i]);
		int lo = hex_digit((unsigned char)in[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			wipe(out, outlen);
			return err_set(e, POS_EINVAL, "hex decode: invalid character at offset %zu",
				       hi < 0 ? 2 * i : 2 * i + 1);
		}
		out[i] = (unsigned char)((hi << 4) | lo);
	}
	return 0;
}
