/* deident: keyed hashes and ids match an independent computation (Python's
 * hmac/hashlib, values below) and the id shape checks are exact. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "deident.h"

/* Known answers, computed with:
 *   k_index = bytes(range(32)); k_deident = bytes(range(32, 64))
 *   hmac.new(k_index, tid.encode(), hashlib.sha256).hexdigest()
 *   "dt_" + crockford(hmac.new(k_deident, tid.encode(), sha256).digest()[:16]) */
static void fixed_keys(unsigned char k_index[32], unsigned char k_deident[32])
{
	for (int i = 0; i < 32; i++) {
		k_index[i] = (unsigned char)i;
		k_deident[i] = (unsigned char)(32 + i);
	}
}

static void crockford_matches_known_encodings(void **st)
{
	unsigned char ff[16], zero[16] = { 0 }, seq[16];
	char out[32];
	pos_err e = { 0 };

	(void)st;
	memset(ff, 0xff, sizeof ff);
	for (int i = 0; i < 16; i++)
		seq[i] = (unsigned char)i;
	assert_int_equal(crockford_encode(ff, 16, out, sizeof out, &e), 0);
	assert_string_equal(out, "ZZZZZZZZZZZZZZZZZZZZZZZZZW");
	assert_int_equal(crockford_encode(zero, 16, out, sizeof out, &e), 0);
	assert_string_equal(out, "00000000000000000000000000");
	assert_int_equal(crockford_encode(seq, 16, out, sizeof out, &e), 0);
	assert_string_equal(out, "000G40R40M30E209185GR38E1W");
	assert_int_equal(crockford_encode((const unsigned char *)"f", 1, out, sizeof out, &e), 0);
	assert_string_equal(out, "CR");
	assert_int_equal(crockford_encode((const unsigned char *)"foobar", 6, out, sizeof out, &e),
			 0);
	assert_string_equal(out, "CSQPYRK1E8");
	/* 26 characters and the NUL: 26 is one short. */
	assert_int_equal(crockford_encode(ff, 16, out, 26, &e), POS_ETOOBIG);
	assert_int_equal(crockford_encode(ff, 16, out, 27, &e), 0);
}

static void crockford_decodes_case_and_aliases_and_refuses_the_rest(void **st)
{
	unsigned char out[16], want[16];
	pos_err e = { 0 };

	(void)st;
	for (int i = 0; i < 16; i++)
		want[i] = (unsigned char)i;
	assert_int_equal(crockford_decode("000G40R40M30E209185GR38E1W", 26, out, 16, &e), 0);
	assert_memory_equal(out, want, 16);
	/* Lower case, O for 0, I and L for 1. */
	assert_int_equal(crockford_decode("oOog40r40m30e209185gr38e1w", 26, out, 16, &e), 0);
	assert_memory_equal(out, want, 16);
	assert_int_equal(crockford_decode("CSQPYRKIE8", 10, out, 6, &e), 0);
	assert_memory_equal(out, "foobar", 6);
	assert_int_equal(crockford_decode("CSQPYRKLE8", 10, out, 6, &e), 0);
	assert_memory_equal(out, "foobar", 6);
	/* U is not in the alphabet; neither are '-' or '='. */
	assert_int_equal(crockford_decode("CSQPYRKUE8", 10, out, 6, &e), POS_EINVAL);
	assert_int_equal(crockford_decode("CSQPY-K1E8", 10, out, 6, &e), POS_EINVAL);
	/* Wrong length for the wanted byte count. */
	assert_int_equal(crockford_decode("CSQPYRK1E", 9, out, 6, &e), POS_EINVAL);
	/* Non-zero padding bits in the last character. */
	assert_int_equal(crockford_decode("CS", 2, out, 1, &e), POS_EINVAL);
	assert_int_equal(crockford_decode("CR", 2, out, 1, &e), 0);
	assert_int_equal(out[0], 'f');
}

static void index_matches_python_hmac_sha256(void **st)
{
	unsigned char ki[32], kd[32], out[DEIDENT_INDEX_LEN], want[32];
	pos_err e = { 0 };

	(void)st;
	fixed_keys(ki, kd);
	assert_int_equal(deident_index(ki, "card:4111111111111111", out, &e), 0);
	assert_int_equal(hex_decode("47bedcc02d6b616128538acb36d6939afcfcea4e0c113ce04d446e56ffccd6c0",
				    64, want, 32, &e), 0);
	assert_memory_equal(out, want, 32);
	assert_int_equal(deident_index(ki, "phone:+4915112345678", out, &e), 0);
	assert_int_equal(hex_decode("dc9a065ff83cfee971a6785426e7d04729f98e34edeb5558f9430ef961356681",
				    64, want, 32, &e), 0);
	assert_memory_equal(out, want, 32);
}

static void deident_tid_matches_python_and_differs_from_index(void **st)
{
	unsigned char ki[32], kd[32], idx[32], raw[16];
	char out[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	(void)st;
	fixed_keys(ki, kd);
	assert_int_equal(deident_tid(kd, "card:4111111111111111", out, &e), 0);
	assert_string_equal(out, "dt_5PXMCB5ZAHB1FB13SMA0QAS76G");
	assert_true(deident_dtid_valid(out));
	assert_int_equal(deident_tid(kd, "phone:+4915112345678", out, &e), 0);
	assert_string_equal(out, "dt_J2V1X6GHQ9AG440STYP7JDS3N8");
	/* Same key for both would make the two ids linkable: check they are
	 * independent when the keys are. */
	assert_int_equal(deident_index(ki, "phone:+4915112345678", idx, &e), 0);
	assert_int_equal(crockford_decode(out + 3, 26, raw, 16, &e), 0);
	assert_memory_not_equal(raw, idx, 16);
}

static void empty_or_overlong_tid_is_refused(void **st)
{
	unsigned char ki[32], kd[32], out[32];
	char id[DEIDENT_ID_LEN + 1], big[300];
	pos_err e = { 0 };

	(void)st;
	fixed_keys(ki, kd);
	assert_int_equal(deident_index(ki, "", out, &e), POS_EINVAL);
	assert_int_equal(deident_tid(kd, NULL, id, &e), POS_EINVAL);
	assert_string_equal(id, "");
	memset(big, '7', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(deident_tid(kd, big, id, &e), POS_EINVAL);
	assert_null(strstr(e.msg, "777"));
}

static void hhids_are_random_and_well_formed(void **st)
{
	char a[DEIDENT_ID_LEN + 1], b[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	(void)st;
	for (int i = 0; i < 200; i++) {
		assert_int_equal(deident_hhid_new(a, &e), 0);
		assert_int_equal(strlen(a), DEIDENT_ID_LEN);
		assert_true(deident_hhid_valid(a));
		assert_false(deident_dtid_valid(a));
	}
	assert_int_equal(deident_hhid_new(b, &e), 0);
	assert_string_not_equal(a, b);
}

static void id_shape_checks_are_exact(void **st)
{
	(void)st;
	assert_true(deident_hhid_valid("hh_000G40R40M30E209185GR38E1W"));
	assert_true(deident_dtid_valid("dt_ZZZZZZZZZZZZZZZZZZZZZZZZZW"));
	assert_false(deident_hhid_valid("hh_ZZZZZZZZZZZZZZZZZZZZZZZZZZ")); /* padding bits set */
	assert_false(deident_hhid_valid("hh_000g40r40m30e209185gr38e1w")); /* lower case */
	assert_false(deident_hhid_valid("hh_O00G40R40M30E209185GR38E1W")); /* alias O */
	assert_false(deident_hhid_valid("hh_U00G40R40M30E209185GR38E1W")); /* not Crockford */
	assert_false(deident_hhid_valid("hh_000G40R40M30E209185GR38E1"));  /* short */
	assert_false(deident_hhid_valid("hh_000G40R40M30E209185GR38E1W0")); /* long */
	assert_false(deident_hhid_valid("dt_000G40R40M30E209185GR38E1W")); /* prefix */
	assert_false(deident_hhid_valid("HH_000G40R40M30E209185GR38E1W"));
	assert_false(deident_hhid_valid(""));
	assert_false(deident_hhid_valid(NULL));
	assert_false(deident_dtid_valid("dt_"));
}

static void prepared_keys_give_the_python_answers_again_and_again(void **st)
{
	unsigned char ki[32], kd[32], out[DEIDENT_INDEX_LEN], want[32];
	struct deident_key *pi = NULL, *pd = NULL, *none;
	char id[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	(void)st;
	fixed_keys(ki, kd);
	assert_int_equal(deident_key_new(ki, &pi, &e), 0);
	assert_int_equal(deident_key_new(kd, &pd, &e), 0);
	assert_int_equal(hex_decode("47bedcc02d6b616128538acb36d6939afcfcea4e0c113ce04d446e56ffccd6c0",
				    64, want, 32, &e), 0);
	/* Repeated calls: the keyed template must not absorb earlier input. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(deident_index_key(pi, "card:4111111111111111", out, &e), 0);
		assert_memory_equal(out, want, 32);
		assert_int_equal(deident_tid_key(pd, "phone:+4915112345678", id, &e), 0);
		assert_string_equal(id, "dt_J2V1X6GHQ9AG440STYP7JDS3N8");
	}
	assert_int_equal(deident_tid_key(pd, "card:4111111111111111", id, &e), 0);
	assert_string_equal(id, "dt_5PXMCB5ZAHB1FB13SMA0QAS76G");
	assert_int_equal(deident_index_key(pi, "", out, &e), POS_EINVAL);
	assert_int_equal(deident_tid_key(pd, NULL, id, &e), POS_EINVAL);
	assert_string_equal(id, "");
	assert_int_equal(deident_tid_key(NULL, "card:4111111111111111", id, &e), POS_EINVAL);
	none = pi;
	assert_int_equal(deident_key_new(NULL, &none, &e), POS_EINVAL);
	assert_null(none);
	deident_key_free(pi);
	deident_key_free(pd);
	deident_key_free(NULL);
}

struct shared_mac_arg {
	const struct deident_key *ki, *kd;
	const unsigned char *raw_ki, *raw_kd;
	int id, ok;
};

static void *shared_mac_loop(void *arg)
{
	struct shared_mac_arg *a = arg;
	unsigned char got[32], want[32];
	char tid[40], id1[DEIDENT_ID_LEN + 1], id2[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	for (int i = 0; i < 2000; i++) {
		snprintf(tid, sizeof tid, "loyalty:%d%08d", a->id, i);
		if (deident_index_key(a->ki, tid, got, &e) != 0 ||
		    deident_index(a->raw_ki, tid, want, &e) != 0 || memcmp(got, want, 32) != 0 ||
		    deident_tid_key(a->kd, tid, id1, &e) != 0 ||
		    deident_tid(a->raw_kd, tid, id2, &e) != 0 || strcmp(id1, id2) != 0)
			return NULL;
	}
	a->ok = 1;
	return a;
}

static void four_threads_share_prepared_keys(void **st)
{
	unsigned char ki[32], kd[32];
	struct deident_key *pi = NULL, *pd = NULL;
	struct shared_mac_arg args[4];
	pthread_t t[4];
	void *ret;
	pos_err e = { 0 };

	(void)st;
	fixed_keys(ki, kd);
	assert_int_equal(deident_key_new(ki, &pi, &e), 0);
	assert_int_equal(deident_key_new(kd, &pd, &e), 0);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct shared_mac_arg){ pi, pd, ki, kd, i, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, shared_mac_loop, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_ptr_equal(ret, &args[i]);
	}
	deident_key_free(pi);
	deident_key_free(pd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crockford_matches_known_encodings),
		cmocka_unit_test(crockford_decodes_case_and_aliases_and_refuses_the_rest),
		cmocka_unit_test(index_matches_python_hmac_sha256),
		cmocka_unit_test(deident_tid_matches_python_and_differs_from_index),
		cmocka_unit_test(empty_or_overlong_tid_is_refused),
		cmocka_unit_test(hhids_are_random_and_well_formed),
		cmocka_unit_test(id_shape_checks_are_exact),
		cmocka_unit_test(prepared_keys_give_the_python_answers_again_and_again),
		cmocka_unit_test(four_threads_share_prepared_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
