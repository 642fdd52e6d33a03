/* codec: base64url (RFC 4648 section 5, unpadded) and hex, strict on input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "codec.h"

/* RFC 4648 section 10 vectors, padding removed. */
static const struct {
	const char *in, *out;
} rfc4648[] = {
	{ "", "" },
	{ "f", "Zg" },
	{ "fo", "Zm8" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg" },
	{ "fooba", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy" },
};

static void encodes_rfc4648_vectors_without_padding(void **st)
{
	char out[16];
	pos_err e = { 0 };

	(void)st;
	for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
		size_t n = strlen(rfc4648[i].in);
		assert_int_equal(b64url_encoded_len(n), strlen(rfc4648[i].out));
		assert_int_equal(b64url_encode((const unsigned char *)rfc4648[i].in, n, out,
					       sizeof out, &e), 0);
		assert_string_equal(out, rfc4648[i].out);
	}
	assert_int_equal(b64url_encoded_len(112), 150);
}

static void uses_the_url_safe_alphabet(void **st)
{
	const unsigned char in[] = { 0xfb, 0xff, 0xbf };
	unsigned char back[3];
	char out[8];
	size_t n = 0;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(b64url_encode(in, 3, out, sizeof out, &e), 0);
	assert_string_equal(out, "-_-_");
	assert_int_equal(b64url_decode(out, 4, back, sizeof back, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(back, in, 3);
}

static void decodes_rfc4648_vectors_and_round_trips_all_lengths(void **st)
{
	unsigned char buf[64], back[64];
	char text[100];
	size_t n = 0;
	pos_err e = { 0 };

	(void)st;
	for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
		const char *t = rfc4648[i].out;
		assert_int_equal(b64url_decode(t, strlen(t), buf, sizeof buf, &n, &e), 0);
		assert_int_equal(n, strlen(rfc4648[i].in));
		assert_memory_equal(buf, rfc4648[i].in, n);
	}
	for (size_t len = 0; len <= sizeof buf; len++) {
		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)(i * 37 + len);
		assert_int_equal(b64url_encode(buf, len, text, sizeof text, &e), 0);
		assert_int_equal(b64url_decode(text, strlen(text), back, sizeof back, &n, &e), 0);
		assert_int_equal(n, len);
		assert_memory_equal(back, buf, len);
	}
}

static void decoder_refuses_padding_std_alphabet_whitespace_and_bad_tails(void **st)
{
	unsigned char out[16];
	size_t n = 7;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(b64url_decode("Zg==", 4, out, sizeof out, &n, &e), POS_EINVAL);
	assert_int_equal(n, 0);
	assert_int_equal(b64url_decode("+/+/", 4, out, sizeof out, &n, &e), POS_EINVAL);
	assert_int_equal(b64url_decode("Zm9v Yg", 7, out, sizeof out, &n, &e), POS_EINVAL);
	assert_int_equal(b64url_decode("Zm9v\nYg", 7, out, sizeof out, &n, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "offset 4"));
	/* Length 1 mod 4 cannot come from any byte string. */
	assert_int_equal(b64url_decode("Zm9vY", 5, out, sizeof out, &n, &e), POS_EINVAL);
	/* "Zh" carries the same byte as "Zg" but with non-zero spare bits. */
	assert_int_equal(b64url_decode("Zh", 2, out, sizeof out, &n, &e), POS_EINVAL);
	assert_int_equal(b64url_decode("Zm9", 3, out, sizeof out, &n, &e), POS_EINVAL);
	/* A NUL inside the counted length is a bad character, not an end. */
	assert_int_equal(b64url_decode("Zm\0v", 4, out, sizeof out, &n, &e), POS_EINVAL);
	/* Output capacity is checked before writing. */
	assert_int_equal(b64url_decode("Zm9vYmFy", 8, out, 5, &n, &e), POS_ETOOBIG);
	assert_int_equal(b64url_decode("Zm9vYmFy", 8, out, 6, &n, &e), 0);
	assert_int_equal(n, 6);
	assert_int_equal(b64url_decode("", 0, out, 0, &n, &e), 0);
	assert_int_equal(n, 0);
}

static void decoder_wipes_partial_output_on_failure(void **st)
{
	unsigned char out[16];
	size_t n = 0;
	pos_err e = { 0 };

	(void)st;
	memset(out, 0xAA, sizeof out);
	assert_int_equal(b64url_decode("Zm9vYmF!", 8, out, sizeof out, &n, &e), POS_EINVAL);
	for (int i = 0; i < 6; i++)
		assert_int_equal(out[i], 0);
}

static void encoder_checks_output_capacity(void **st)
{
	char out[9];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(b64url_encode((const unsigned char *)"foobar", 6, out, 8, &e),
			 POS_ETOOBIG);
	assert_int_equal(b64url_encode((const unsigned char *)"foobar", 6, out, 9, &e), 0);
	assert_string_equal(out, "Zm9vYmFy");
}

static void hex_round_trips_and_accepts_either_case(void **st)
{
	const unsigned char in[] = { 0x00, 0x01, 0xab, 0xcd, 0xef, 0xff };
	unsigned char back[6];
	char out[13];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(hex_encode(in, 6, out, sizeof out, &e), 0);
	assert_string_equal(out, "0001abcdefff");
	assert_int_equal(hex_decode("0001ABCDEFFF", 12, back, 6, &e), 0);
	assert_memory_equal(back, in, 6);
	assert_int_equal(hex_decode("0001aBcDeFfF", 12, back, 6, &e), 0);
	assert_memory_equal(back, in, 6);
	assert_int_equal(hex_encode(in, 6, out, 12, &e), POS_ETOOBIG);
}

static void hex_refuses_wrong_length_and_non_hex(void **st)
{
	unsigned char back[4];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(hex_decode("abc", 3, back, 2, &e), POS_EINVAL);
	assert_int_equal(hex_decode("abcdef", 6, back, 2, &e), POS_EINVAL);
	assert_int_equal(hex_decode("abcg", 4, back, 2, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "offset 3"));
	assert_int_equal(hex_decode("0x12", 4, back, 2, &e), POS_EINVAL);
	assert_int_equal(hex_decode(" 123", 4, back, 2, &e), POS_EINVAL);
	assert_int_equal(hex_decode("", 0, back, 0, &e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encodes_rfc4648_vectors_without_padding),
		cmocka_unit_test(uses_the_url_safe_alphabet),
		cmocka_unit_test(decodes_rfc4648_vectors_and_round_trips_all_lengths),
		cmocka_unit_test(decoder_refuses_padding_std_alphabet_whitespace_and_bad_tails),
		cmocka_unit_test(decoder_wipes_partial_output_on_failure),
		cmocka_unit_test(encoder_checks_output_capacity),
		cmocka_unit_test(hex_round_trips_and_accepts_either_case),
		cmocka_unit_test(hex_refuses_wrong_length_and_non_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
