/* envelope: HPKE (RFC 9180) reproduces the RFC vectors byte for byte, and the
 * EncTID envelope refuses every tampered, mis-bound or malformed input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pthread.h>

#include "codec.h"
#include "envelope.h"
#include "keys.h"

/* ------------------------------------------------------------ helpers */

static json_t *load_vector(const char *name)
{
	char path[1024];
	const char *dir = getenv("POS_SHARED_DIR");
	json_error_t jerr;
	json_t *v = NULL;

	if (dir && *dir) {
		snprintf(path, sizeof path, "%s/vectors/%s", dir, name);
		v = json_load_file(path, 0, &jerr);
		if (!v) {
			snprintf(path, sizeof path, "%s/%s", dir, name);
			v = json_load_file(path, 0, &jerr);
		}
	}
	if (!v) {
		snprintf(path, sizeof path, "../shared/vectors/%s", name);
		v = json_load_file(path, 0, &jerr);
	}
	if (!v)
		fail_msg("cannot load test vector %s: %s", name, jerr.text);
	assert_true(json_is_object(v));
	return v;
}

/* Decodes the hex string field `key` of obj; returns its byte length. */
static size_t vhex(const json_t *obj, const char *key, unsigned char *out, size_t cap)
{
	const char *s = json_string_value(json_object_get(obj, key));
	pos_err e = { 0 };
	size_t n;

	if (!s)
		fail_msg("vector field %s missing", key);
	n = strlen(s);
	assert_int_equal(n % 2, 0);
	assert_true(n / 2 <= cap);
	assert_int_equal(hex_decode(s, n, out, n / 2, &e), 0);
	return n / 2;
}

static void assert_field(const json_t *obj, const char *key, const unsigned char *got,
			 size_t got_len)
{
	unsigned char want[512];
	size_t n = vhex(obj, key, want, sizeof want);

	if (n != got_len || memcmp(want, got, n) != 0) {
		char hx[1100];
		pos_err e = { 0 };
		hex_encode(got, got_len, hx, sizeof hx, &e);
		fail_msg("field %s differs: got %s", key, hx);
	}
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* ------------------------------------------------------------ RFC 9180 vectors */

static void reproduce_vector_file(const char *name, uint16_t aead_id, size_t nk)
{
	json_t *v = load_vector(name);
	unsigned char ikm[64], skR[32], pkR[32], skE[32], pkE[32], enc[32], ss[32], info[128];
	unsigned char suite[10] = { 'H', 'P', 'K', 'E', 0, 0x20, 0, 1, 0, 0 };
	unsigned char ksc[65], secret[32], empty_hash[32];
	struct hpke_ctx s, r;
	pos_err e = { 0 };
	size_t n, info_len, i, nenc;
	json_t *encs, *exps;

	assert_int_equal(json_integer_value(json_object_get(v, "mode")), 0);
	assert_int_equal(json_integer_value(json_object_get(v, "kem_id")), HPKE_KEM_X25519_SHA256);
	assert_int_equal(json_integer_value(json_object_get(v, "kdf_id")), HPKE_KDF_SHA256);
	assert_int_equal(json_integer_value(json_object_get(v, "aead_id")), aead_id);
	suite[9] = (unsigned char)aead_id;

	/* DeriveKeyPair for both sides. */
	n = vhex(v, "ikmR", ikm, sizeof ikm);
	assert_int_equal(hpke_derive_keypair(ikm, n, skR, pkR, &e), 0);
	assert_field(v, "skRm", skR, 32);
	assert_field(v, "pkRm", pkR, 32);
	n = vhex(v, "ikmE", ikm, sizeof ikm);
	assert_int_equal(hpke_derive_keypair(ikm, n, skE, pkE, &e), 0);
	assert_field(v, "skEm", skE, 32);
	assert_field(v, "pkEm", pkE, 32);

	/* Key schedule intermediates, from the same labeled primitives. */
	info_len = vhex(v, "info", info, sizeof info);
	ksc[0] = 0;
	assert_int_equal(hpke_labeled_extract(suite, 10, NULL, 0, "psk_id_hash", NULL, 0,
					      ksc + 1, &e), 0);
	assert_int_equal(hpke_labeled_extract(suite, 10, NULL, 0, "info_hash", info, info_len,
					      ksc + 33, &e), 0);
	assert_field(v, "key_schedule_context", ksc, sizeof ksc);

	/* Sender. */
	assert_int_equal(hpke_setup_base_s(aead_id, pkR, skE, info, info_len, enc, ss, &s, &e), 0);
	assert_field(v, "enc", enc, 32);
	assert_field(v, "shared_secret", ss, 32);
	assert_int_equal(hpke_labeled_extract(suite, 10, ss, 32, "secret", NULL, 0, secret, &e),
			 0);
	assert_field(v, "secret", secret, 32);
	assert_int_equal(s.key_len, nk);
	assert_field(v, "key", s.key, s.key_len);
	assert_field(v, "base_nonce", s.base_nonce, HPKE_NONCE_LEN);
	assert_field(v, "exporter_secret", s.exporter_secret, 32);

	/* Recipient derives the same context from enc alone. */
	assert_int_equal(hpke_setup_base_r(aead_id, skR, enc, info, info_len, &r, &e), 0);
	assert_int_equal(r.key_len, nk);
	assert_memory_equal(r.key, s.key, nk);
	assert_memory_equal(r.base_nonce, s.base_nonce, HPKE_NONCE_LEN);
	assert_memory_equal(r.exporter_secret, s.exporter_secret, 32);

	/* Every encryption, in sequence order, sealed and opened. */
	encs = json_object_get(v, "encryptions");
	nenc = json_array_size(encs);
	assert_true(nenc > 0);
	for (i = 0; i < nenc; i++) {
		const json_t *x = json_array_get(encs, i);
		unsigned char aad[64], pt[128], ct[160], back[128], nonce[12];
		size_t aad_len = vhex(x, "aad", aad, sizeof aad);
		size_t pt_len = vhex(x, "pt", pt, sizeof pt);

		/* The vector's sequence number is implied by its nonce. */
		memcpy(nonce, s.base_nonce, 12);
		for (int b = 0; b < 8; b++)
			nonce[11 - b] ^= (unsigned char)(s.seq >> (8 * b));
		assert_field(x, "nonce", nonce, 12);
		assert_int_equal(hpke_seal(&s, aad, aad_len, pt, pt_len, ct, &e), 0);
		assert_field(x, "ct", ct, pt_len + HPKE_TAG_LEN);
		assert_int_equal(hpke_open(&r, aad, aad_len, ct, pt_len + HPKE_TAG_LEN, back, &e),
				 0);
		assert_memory_equal(back, pt, pt_len);
	}
	assert_int_equal(s.seq, nenc);
	assert_int_equal(r.seq, nenc);

	/* Every export, from both sides. */
	exps = json_object_get(v, "exports");
	assert_true(json_array_size(exps) > 0);
	for (i = 0; i < json_array_size(exps); i++) {
		const json_t *x = json_array_get(exps, i);
		unsigned char ectx[64], out[256];
		size_t ectx_len = vhex(x, "exporter_context", ectx, sizeof ectx);
		size_t L = (size_t)json_integer_value(json_object_get(x, "L"));

		assert_true(L > 0 && L <= sizeof out);
		assert_int_equal(hpke_export(&s, ectx, ectx_len, out, L, &e), 0);
		assert_field(x, "exported_value", out, L);
		assert_int_equal(hpke_export(&r, ectx, ectx_len, out, L, &e), 0);
		assert_field(x, "exported_value", out, L);
	}

	/* The labeled extract of the empty psk_id is the same in every suite
	 * use; a cheap sanity check that extract is deterministic. */
	assert_int_equal(hpke_labeled_extract(suite, 10, NULL, 0, "psk_id_hash", NULL, 0,
					      empty_hash, &e), 0);
	assert_memory_equal(empty_hash, ksc + 1, 32);

	hpke_ctx_wipe(&s);
	hpke_ctx_wipe(&r);
	assert_true(all_zero((unsigned char *)&s, sizeof s));
	json_decref(v);
}

static void rfc9180_aes128gcm_vector_is_reproduced_byte_for_byte(void **st)
{
	(void)st;
	reproduce_vector_file("hpke-x25519-sha256-aes128gcm-base.json", HPKE_AEAD_AES128GCM, 16);
}

static void rfc9180_aes256gcm_vector_is_reproduced_byte_for_byte(void **st)
{
	(void)st;
	reproduce_vector_file("hpke-x25519-sha256-aes256gcm-base.json", HPKE_AEAD_AES256GCM, 32);
}

static void unsupported_aead_and_exhausted_sequence_are_refused(void **st)
{
	unsigned char sk[32], pk[32], enc[32], ct[32], pt[4] = "abc";
	struct hpke_ctx c;
	pos_err e = { 0 };

	(void)st;
	memset(sk, 7, sizeof sk);
	assert_int_equal(hpke_x25519_public(sk, pk, &e), 0);
	assert_int_equal(hpke_setup_base_s(0x0003, pk, NULL, NULL, 0, enc, NULL, &c, &e),
			 POS_EINVAL);
	assert_int_equal(hpke_setup_base_s(HPKE_AEAD_AES128GCM, pk, NULL, NULL, 0, enc, NULL, &c,
					   &e), 0);
	c.seq = UINT64_MAX;
	assert_int_equal(hpke_seal(&c, NULL, 0, pt, 3, ct, &e), POS_ECRYPTO);
	hpke_ctx_wipe(&c);
	/* A wiped context is not a usable one. */
	assert_int_equal(hpke_seal(&c, NULL, 0, pt, 3, ct, &e), POS_EINVAL);
}

static void small_order_recipient_key_is_refused(void **st)
{
	/* The all-zero point: X25519 with it yields zero, which RFC 9180
	 * 7.1.4 requires to be rejected. */
	unsigned char zero[32] = { 0 }, enc[32], out[128], pt[16];
	unsigned char sk[32];
	struct hpke_ctx c;
	pos_err e = { 0 };
	size_t n = 0;

	(void)st;
	assert_int_equal(hpke_setup_base_s(HPKE_AEAD_AES128GCM, zero, NULL, NULL, 0, enc, NULL,
					   &c, &e), POS_ECRYPTO);
	memset(sk, 9, sizeof sk);
	memset(out, 0, sizeof out);
	out[40] = 1;
	assert_int_equal(envelope_open(sk, "i", out, 60, pt, sizeof pt, &n, &e), POS_ECRYPTO);
	assert_int_equal(n, 0);
}

/* ------------------------------------------------------------ EncTID envelope */

struct fixture {
	unsigned char sk[32], pk[32];
	char kid[KEYS_KID_LEN + 1];
	char info[ENVELOPE_INFO_MAX];
};

static void make_fixture(struct fixture *f)
{
	unsigned char ikm[32];
	pos_err e = { 0 };

	memset(ikm, 0x42, sizeof ikm);
	assert_int_equal(hpke_derive_keypair(ikm, sizeof ikm, f->sk, f->pk, &e), 0);
	envelope_kid(f->pk, f->kid);
	assert_int_equal(envelope_info(f->info, "S1", "T1",
				       "01890a5d-ac96-774b-bcce-b302099a8057", &e), 0);
}

static void info_binds_store_terminal_and_txn(void **st)
{
	char out[ENVELOPE_INFO_MAX], big[80];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(envelope_info(out, "S1", "T-1.a_b", "txn1", &e), 0);
	assert_string_equal(out, "pos-tid/1|S1|T-1.a_b|txn1");
	assert_int_equal(envelope_info(out, "", "T1", "x", &e), POS_EINVAL);
	assert_string_equal(out, "");
	assert_int_equal(envelope_info(out, "S1", NULL, "x", &e), POS_EINVAL);
	/* A '|' would let "a|b","c" and "a","b|c" make the same info. */
	assert_int_equal(envelope_info(out, "a|b", "c", "x", &e), POS_EINVAL);
	assert_int_equal(envelope_info(out, "S 1", "c", "x", &e), POS_EINVAL);
	memset(big, 'a', 64);
	big[64] = '\0';
	assert_int_equal(envelope_info(out, big, big, big, &e), 0);
	big[64] = 'a';
	big[65] = '\0';
	assert_int_equal(envelope_info(out, "S1", "T1", big, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "txn"));
}

static void sealed_tid_opens_with_the_right_key_and_info(void **st)
{
	struct fixture f;
	const char *tid = "card:4111111111111111";
	unsigned char sealed[ENVELOPE_MAX_SEALED], pt[ENVELOPE_MAX_PT], sealed2[ENVELOPE_MAX_SEALED];
	size_t n = 0, n2 = 0, ptn = 0;
	pos_err e = { 0 };

	(void)st;
	make_fixture(&f);
	assert_int_equal(envelope_seal(f.pk, f.info, (const unsigned char *)tid, strlen(tid),
				       sealed, sizeof sealed, &n, &e), 0);
	assert_int_equal(n, 32 + strlen(tid) + 16);
	assert_int_equal(envelope_open(f.sk, f.info, sealed, n, pt, sizeof pt, &ptn, &e), 0);
	assert_int_equal(ptn, strlen(tid));
	assert_memory_equal(pt, tid, ptn);
	/* A fresh ephemeral key each time: two seals never look alike. */
	assert_int_equal(envelope_seal(f.pk, f.info, (const unsigned char *)tid, strlen(tid),
				       sealed2, sizeof sealed2, &n2, &e), 0);
	assert_int_equal(n2, n);
	assert_memory_not_equal(sealed, sealed2, 32);
	assert_memory_not_equal(sealed + 32, sealed2 + 32, n - 32);
}

static void every_flipped_byte_of_enc_or_ct_fails_and_wipes_pt(void **st)
{
	static const unsigned char masks[] = { 0x01, 0x80, 0xff };
	struct fixture f;
	const char *tid = "phone:+4915112345678";
	unsigned char sealed[ENVELOPE_MAX_SEALED], bad[ENVELOPE_MAX_SEALED], pt[ENVELOPE_MAX_PT];
	size_t n = 0, ptn = 0, i, m;
	pos_err e = { 0 };

	(void)st;
	make_fixture(&f);
	assert_int_equal(envelope_seal(f.pk, f.info, (const unsigned char *)tid, strlen(tid),
				       sealed, sizeof sealed, &n, &e), 0);
	for (i = 0; i < n; i++) {
		for (m = 0; m < sizeof masks; m++) {
			memcpy(bad, sealed, n);
			bad[i] ^= masks[m];
			memset(pt, 0xAA, sizeof pt);
			ptn = 99;
			e.code = 0;
			if (envelope_open(f.sk, f.info, bad, n, pt, sizeof pt, &ptn, &e) != POS_ECRYPTO)
				fail_msg("flip 0x%02x at byte %zu was not refused", masks[m], i);
			assert_int_equal(e.code, POS_ECRYPTO);
			assert_int_equal(ptn, 0);
			assert_true(all_zero(pt, sizeof pt));
		}
	}
	/* The untouched envelope still opens: the failures were the flips. */
	assert_int_equal(envelope_open(f.sk, f.info, sealed, n, pt, sizeof pt, &ptn, &e), 0);
}

static void wrong_info_or_wrong_key_fails(void **st)
{
	struct fixture f;
	const char *tid = "loyalty:9912345678901";
	unsigned char sealed[ENVELOPE_MAX_SEALED], pt[ENVELOPE_MAX_PT], other_sk[32], other_pk[32];
	unsigned char ikm[32];
	char other_info[ENVELOPE_INFO_MAX];
	size_t n = 0, ptn = 0;
	pos_err e = { 0 };

	(void)st;
	make_fixture(&f);
	assert_int_equal(envelope_seal(f.pk, f.info, (const unsigned char *)tid, strlen(tid),
				       sealed, sizeof sealed, &n, &e), 0);
	/* Replayed from another terminal, or into another transaction. */
	assert_int_equal(envelope_info(other_info, "S1", "T2",
				       "01890a5d-ac96-774b-bcce-b302099a8057", &e), 0);
	memset(pt, 0xAA, sizeof pt);
	assert_int_equal(envelope_open(f.sk, other_info, sealed, n, pt, sizeof pt, &ptn, &e),
			 POS_ECRYPTO);
	assert_true(all_zero(pt, sizeof pt));
	assert_int_equal(envelope_info(other_info, "S1", "T1",
				       "01890a5d-ac96-774b-bcce-b302099a8058", &e), 0);
	assert_int_equal(envelope_open(f.sk, other_info, sealed, n, pt, sizeof pt, &ptn, &e),
			 POS_ECRYPTO);
	/* Another central key. */
	memset(ikm, 0x43, sizeof ikm);
	assert_int_equal(hpke_derive_keypair(ikm, sizeof ikm, other_sk, other_pk, &e), 0);
	memset(pt, 0xAA, sizeof pt);
	assert_int_equal(envelope_open(other_sk, f.info, sealed, n, pt, sizeof pt, &ptn, &e),
			 POS_ECRYPTO);
	assert_true(all_zero(pt, sizeof pt));
	assert_null(strstr(e.msg, "9912345678901"));
}

static void truncated_or_oversized_input_is_refused(void **st)
{
	struct fixture f;
	const char *tid = "loyalty:9912345678901";
	unsigned char sealed[ENVELOPE_MAX_SEALED + 8], pt[ENVELOPE_MAX_PT];
	size_t n = 0, ptn = 0, len;
	pos_err e = { 0 };
	unsigned char big[ENVELOPE_MAX_PT + 1];

	(void)st;
	make_fixture(&f);
	assert_int_equal(envelope_seal(f.pk, f.info, (const unsigned char *)tid, strlen(tid),
				       sealed, sizeof sealed, &n, &e), 0);
	for (len = 0; len < n; len++) {
		int want = len < 32 + 16 + 1 ? POS_EINVAL : POS_ECRYPTO;
		memset(pt, 0xAA, sizeof pt);
		assert_int_equal(envelope_open(f.sk, f.info, sealed, len, pt, sizeof pt, &ptn, &e),
				 want);
		assert_true(all_zero(pt, sizeof pt));
	}
	/* Extra trailing bytes are a different ciphertext, not ignored. */
	sealed[n] = 0;
	assert_int_equal(envelope_open(f.sk, f.info, sealed, n + 1, pt, sizeof pt, &ptn, &e),
			 POS_ECRYPTO);
	assert_int_equal(envelope_open(f.sk, f.info, sealed, ENVELOPE_MAX_SEALED + 1, pt,
				       sizeof pt, &ptn, &e), POS_EINVAL);
	/* Too small an output buffer, too long a plaintext, too small out. */
	assert_int_equal(envelope_open(f.sk, f.info, sealed, n, pt, 3, &ptn, &e), POS_ETOOBIG);
	memset(big, 'x', sizeof big);
	assert_int_equal(envelope_seal(f.pk, f.info, big, sizeof big, sealed, sizeof sealed, &n,
				       &e), POS_EINVAL);
	assert_int_equal(envelope_seal(f.pk, f.info, big, 0, sealed, sizeof sealed, &n, &e),
			 POS_EINVAL);
	assert_int_equal(envelope_seal(f.pk, f.info, big, 10, sealed, 57, &n, &e), POS_ETOOBIG);
	assert_int_equal(envelope_seal(f.pk, f.info, big, 10, sealed, 58, &n, &e), 0);
	/* The longest allowed plaintext round-trips. */
	assert_int_equal(envelope_seal(f.pk, f.info, big, ENVELOPE_MAX_PT, sealed, sizeof sealed,
				       &n, &e), 0);
	assert_int_equal(n, ENVELOPE_MAX_SEALED);
	assert_int_equal(envelope_open(f.sk, f.info, sealed, n, pt, sizeof pt, &ptn, &e), 0);
	assert_int_equal(ptn, ENVELOPE_MAX_PT);
}

static void enctid_field_round_trips_as_unpadded_base64url(void **st)
{
	struct fixture f;
	const char *tid = "card:4111111111111111";
	char b64[ENVELOPE_B64_MAX], back[ENVELOPE_MAX_PT + 1];
	unsigned char raw[ENVELOPE_MAX_SEALED];
	size_t rawn = 0;
	pos_err e = { 0 };

	(void)st;
	make_fixture(&f);
	assert_int_equal(envelope_seal_tid(f.pk, f.kid, f.info, tid, b64, &e), 0);
	assert_int_equal(strlen(b64), b64url_encoded_len(32 + strlen(tid) + 16));
	assert_null(strpbrk(b64, "=+/"));
	assert_int_equal(b64url_decode(b64, strlen(b64), raw, sizeof raw, &rawn, &e), 0);
	assert_int_equal(rawn, 32 + strlen(tid) + 16);
	assert_int_equal(envelope_open_tid(f.sk, f.info, b64, back, &e), 0);
	assert_string_equal(back, tid);
	/* NULL kid skips the check. */
	assert_int_equal(envelope_seal_tid(f.pk, NULL, f.info, tid, b64, &e), 0);
	assert_int_equal(envelope_open_tid(f.sk, f.info, b64, back, &e), 0);
	assert_string_equal(back, tid);
}

static void enctid_refuses_bad_text_wrong_kid_and_wipes_tid(void **st)
{
	struct fixture f;
	const char *tid = "card:4111111111111111";
	char b64[ENVELOPE_B64_MAX], bad[ENVELOPE_B64_MAX + 40], back[ENVELOPE_MAX_PT + 1];
	unsigned char sealed[ENVELOPE_MAX_SEALED];
	size_t n = 0, len;
	pos_err e = { 0 };

	(void)st;
	make_fixture(&f);
	assert_int_equal(envelope_seal_tid(f.pk, "0000000000000000", f.info, tid, b64, &e),
			 POS_EINVAL);
	assert_string_equal(b64, "");
	assert_int_equal(envelope_seal_tid(f.pk, f.kid, f.info, "", b64, &e), POS_EINVAL);
	assert_int_equal(envelope_seal_tid(f.pk, f.kid, f.info, tid, b64, &e), 0);
	len = strlen(b64);

	/* Padding, standard-alphabet characters, whitespace: refused. */
	snprintf(bad, sizeof bad, "%s=", b64);
	memset(back, 'Z', sizeof back);
	assert_int_equal(envelope_open_tid(f.sk, f.info, bad, back, &e), POS_EINVAL);
	assert_true(all_zero((unsigned char *)back, sizeof back));
	memcpy(bad, b64, len + 1);
	bad[5] = '+';
	assert_int_equal(envelope_open_tid(f.sk, f.info, bad, back, &e), POS_EINVAL);
	bad[5] = ' ';
	assert_int_equal(envelope_open_tid(f.sk, f.info, bad, back, &e), POS_EINVAL);
	/* A changed character decodes but does not authenticate. */
	memcpy(bad, b64, len + 1);
	bad[len / 2] = bad[len / 2] == 'A' ? 'B' : 'A';
	memset(back, 'Z', sizeof back);
	assert_int_equal(envelope_open_tid(f.sk, f.info, bad, back, &e), POS_ECRYPTO);
	assert_true(all_zero((unsigned char *)back, sizeof back));
	/* Overlong text and empty text. */
	memset(bad, 'A', sizeof bad - 1);
	bad[sizeof bad - 1] = '\0';
	assert_int_equal(envelope_open_tid(f.sk, f.info, bad, back, &e), POS_EINVAL);
	assert_int_equal(envelope_open_tid(f.sk, f.info, "", back, &e), POS_EINVAL);
	/* Wrong info through the JSON form too. */
	assert_int_equal(envelope_open_tid(f.sk, "pos-tid/1|S1|T9|x", b64, back, &e), POS_ECRYPTO);
	/* A plaintext with an embedded NUL is not a TID. */
	assert_int_equal(envelope_seal(f.pk, f.info, (const unsigned char *)"ab\0cd", 5, sealed,
				       sizeof sealed, &n, &e), 0);
	assert_int_equal(b64url_encode(sealed, n, b64, sizeof b64, &e), 0);
	assert_int_equal(envelope_open_tid(f.sk, f.info, b64, back, &e), POS_EINVAL);
	assert_true(all_zero((unsigned char *)back, sizeof back));
}

static void labeled_expand_refuses_lengths_outside_the_rfc_range(void **st)
{
	unsigned char prk[32] = { 1 }, out[8], sk[32], pk[32];
	static unsigned char big[255 * 32 + 1];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(hpke_labeled_expand((const unsigned char *)"KEM\0 ", 5, prk, "x", NULL,
					     0, out, 0, &e), POS_EINVAL);
	assert_int_equal(hpke_labeled_expand((const unsigned char *)"KEM\0 ", 5, prk, "x", NULL,
					     0, big, sizeof big, &e), POS_EINVAL);
	assert_int_equal(hpke_labeled_expand((const unsigned char *)"KEM\0 ", 5, prk, "x", NULL,
					     0, big, sizeof big - 1, &e), 0);
	/* L is part of the labeled info, so a shorter output is not a prefix
	 * of a longer one. */
	assert_int_equal(hpke_labeled_expand((const unsigned char *)"KEM\0 ", 5, prk, "x", NULL,
					     0, out, sizeof out, &e), 0);
	assert_memory_not_equal(out, big, sizeof out);
	assert_int_equal(hpke_derive_keypair(prk, 16, sk, pk, &e), POS_EINVAL);
}

static void *seal_open_loop(void *arg)
{
	struct fixture *f = arg;
	char b64[ENVELOPE_B64_MAX], back[ENVELOPE_MAX_PT + 1], tid[32];
	pos_err e = { 0 };

	for (int i = 0; i < 300; i++) {
		snprintf(tid, sizeof tid, "loyalty:%d", 100000 + i);
		if (envelope_seal_tid(f->pk, f->kid, f->info, tid, b64, &e) != 0 ||
		    envelope_open_tid(f->sk, f->info, b64, back, &e) != 0 || strcmp(back, tid) != 0)
			return NULL;
	}
	return f;
}

static void threads_seal_and_open_concurrently(void **st)
{
	struct fixture f;
	pthread_t t[4];
	void *ret;

	(void)st;
	make_fixture(&f);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, seal_open_loop, &f), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_ptr_equal(ret, &f);
	}
}

/* ------------------------------------------------------------ prepared key */

static void prepared_key_opens_exactly_what_the_raw_key_opens(void **st)
{
	struct fixture f;
	struct envelope_key *k = NULL, *other = NULL;
	unsigned char sealed[ENVELOPE_MAX_SEALED], pt[ENVELOPE_MAX_PT], zero_enc[64] = { 0 };
	unsigned char other_sk[32];
	char b64[ENVELOPE_B64_MAX], back[ENVELOPE_MAX_PT + 1];
	const char *tid = "loyalty:9900000000011";
	size_t n = 0, ptn = 0;
	pos_err e = { 0 };

	(void)st;
	make_fixture(&f);
	assert_int_equal(envelope_key_new(f.sk, &k, &e), 0);
	assert_memory_equal(envelope_key_public(k), f.pk, 32);

	assert_int_equal(envelope_seal_tid(f.pk, f.kid, f.info, tid, b64, &e), 0);
	assert_int_equal(envelope_open_tid_key(k, f.info, b64, back, &e), 0);
	assert_string_equal(back, tid);
	/* The same key opens it many times: nothing in k is consumed. */
	for (int i = 0; i < 3; i++) {
		memset(back, 'x', sizeof back);
		assert_int_equal(envelope_open_tid_key(k, f.info, b64, back, &e), 0);
		assert_string_equal(back, tid);
	}
	assert_int_equal(envelope_open_tid_key(k, "pos-tid/1|S1|T9|x", b64, back, &e),
			 POS_ECRYPTO);
	assert_int_equal(back[0], '\0');

	assert_int_equal(envelope_seal(f.pk, f.info, (const unsigned char *)tid, strlen(tid),
				       sealed, sizeof sealed, &n, &e), 0);
	assert_int_equal(envelope_open_key(k, f.info, sealed, n, pt, sizeof pt, &ptn, &e), 0);
	assert_int_equal(ptn, strlen(tid));
	assert_memory_equal(pt, tid, ptn);
	sealed[n - 1] ^= 1;
	assert_int_equal(envelope_open_key(k, f.info, sealed, n, pt, sizeof pt, &ptn, &e),
			 POS_ECRYPTO);
	assert_int_equal(ptn, 0);
	sealed[n - 1] ^= 1;

	/* Another key does not open it; an all-zero enc (small order) fails. */
	memset(other_sk, 0x17, sizeof other_sk);
	assert_int_equal(envelope_key_new(other_sk, &other, &e), 0);
	assert_int_equal(envelope_open_key(other, f.info, sealed, n, pt, sizeof pt, &ptn, &e),
			 POS_ECRYPTO);
	zero_enc[40] = 1;
	assert_int_equal(envelope_open_key(k, f.info, zero_enc, 60, pt, sizeof pt, &ptn, &e),
			 POS_ECRYPTO);
	envelope_key_free(other);

	assert_int_equal(envelope_key_new(NULL, &other, &e), POS_EINVAL);
	assert_null(other);
	assert_int_equal(envelope_open_tid_key(NULL, f.info, b64, back, &e), POS_EINVAL);
	envelope_key_free(k);
	envelope_key_free(NULL);
}

struct shared_key_arg {
	struct fixture *f;
	const struct envelope_key *k;
	int id;
	int ok;
};

/* Each thread seals its own TIDs and opens them, and some tampered ones,
 * with the one key every thread shares. */
static void *shared_key_loop(void *arg)
{
	struct shared_key_arg *a = arg;
	char b64[ENVELOPE_B64_MAX], back[ENVELOPE_MAX_PT + 1], tid[40];
	pos_err e = { 0 };

	for (int i = 0; i < 250; i++) {
		snprintf(tid, sizeof tid, "card:%d%012d", a->id + 1, i);
		if (envelope_seal_tid(a->f->pk, a->f->kid, a->f->info, tid, b64, &e) != 0 ||
		    envelope_open_tid_key(a->k, a->f->info, b64, back, &e) != 0 ||
		    strcmp(back, tid) != 0)
			return NULL;
		if (i % 10 == 0) {
			b64[5] = b64[5] == 'A' ? 'B' : 'A';
			if (envelope_open_tid_key(a->k, a->f->info, b64, back, &e) != POS_ECRYPTO)
				return NULL;
		}
	}
	a->ok = 1;
	return a;
}

static void four_threads_share_one_prepared_key(void **st)
{
	struct fixture f;
	struct envelope_key *k = NULL;
	struct shared_key_arg args[4];
	pthread_t t[4];
	void *ret;
	pos_err e = { 0 };

	(void)st;
	make_fixture(&f);
	assert_int_equal(envelope_key_new(f.sk, &k, &e), 0);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct shared_key_arg){ .f = &f, .k = k, .id = i, .ok = 0 };
		assert_int_equal(pthread_create(&t[i], NULL, shared_key_loop, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_ptr_equal(ret, &args[i]);
		assert_int_equal(args[i].ok, 1);
	}
	envelope_key_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc9180_aes128gcm_vector_is_reproduced_byte_for_byte),
		cmocka_unit_test(rfc9180_aes256gcm_vector_is_reproduced_byte_for_byte),
		cmocka_unit_test(unsupported_aead_and_exhausted_sequence_are_refused),
		cmocka_unit_test(small_order_recipient_key_is_refused),
		cmocka_unit_test(info_binds_store_terminal_and_txn),
		cmocka_unit_test(sealed_tid_opens_with_the_right_key_and_info),
		cmocka_unit_test(every_flipped_byte_of_enc_or_ct_fails_and_wipes_pt),
		cmocka_unit_test(wrong_info_or_wrong_key_fails),
		cmocka_unit_test(truncated_or_oversized_input_is_refused),
		cmocka_unit_test(enctid_field_round_trips_as_unpadded_base64url),
		cmocka_unit_test(enctid_refuses_bad_text_wrong_kid_and_wipes_tid),
		cmocka_unit_test(labeled_expand_refuses_lengths_outside_the_rfc_range),
		cmocka_unit_test(threads_seal_and_open_concurrently),
		cmocka_unit_test(prepared_key_opens_exactly_what_the_raw_key_opens),
		cmocka_unit_test(four_threads_share_one_prepared_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
