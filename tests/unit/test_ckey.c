/* ckey: a GET /v1/keys answer is taken only when its kid is its key's, and
 * central.pub is rewritten whole (never half a file). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckey.h"
#include "codec.h"
#include "keys.h"

static void answer(const struct hpke_keypair *kp, const char *kid, const char *opens, char *out,
		   size_t cap)
{
	char b64[64];
	pos_err e;

	assert_int_equal(b64url_encode(kp->pk, 32, b64, sizeof b64, &e), 0);
	snprintf(out, cap, "{\"kid\":\"%s\",\"public_key\":\"%s\",\"opens\":%s}", kid, b64, opens);
}

static void an_answer_is_taken_with_the_kids_central_opens(void **state)
{
	struct hpke_keypair kp;
	struct ckey_answer a;
	char body[512], sig[CKEY_SIG_MAX];
	pos_err e;

	(void)state;
	assert_int_equal(keys_generate(&kp, &e), 0);
	answer(&kp, kp.kid, "[\"ffffffffffffffff\",\"0000000000000000\"]", body, sizeof body);
	assert_int_equal(ckey_parse(body, strlen(body), &a, &e), 0);
	assert_string_equal(a.kid, kp.kid);
	assert_memory_equal(a.pk, kp.pk, 32);
	assert_int_equal(a.nopens, 3);
	assert_true(ckey_opens(&a, "ffffffffffffffff"));
	assert_false(ckey_opens(&a, "1111111111111111"));
	ckey_signature(&a, sig);
	assert_int_equal(strncmp(sig, "0000000000000000,", 17), 0);
	assert_non_null(strstr(sig, kp.kid));
	keys_wipe(&kp);
}

static void an_answer_whose_kid_is_not_its_key_is_refused(void **state)
{
	struct hpke_keypair kp;
	struct ckey_answer a;
	char body[512];
	pos_err e = { 0 };

	(void)state;
	assert_int_equal(keys_generate(&kp, &e), 0);
	answer(&kp, "0123456789abcdef", "[]", body, sizeof body);
	assert_true(ckey_parse(body, strlen(body), &a, &e) < 0);
	assert_non_null(strstr(e.msg, "does not match"));
	answer(&kp, kp.kid, "[\"not a kid\"]", body, sizeof body);
	assert_true(ckey_parse(body, strlen(body), &a, &e) < 0);
	assert_true(ckey_parse("{\"kid\":1}", 9, &a, &e) < 0);
	keys_wipe(&kp);
}

static void the_key_is_saved_whole_and_reads_back(void **state)
{
	struct hpke_keypair kp, kp2;
	unsigned char pk[32];
	char dir[] = "/tmp/test_ckey.XXXXXX", path[64], kid[KEYS_KID_LEN + 1];
	pos_err e;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/central.pub", dir);
	assert_int_equal(keys_generate(&kp, &e), 0);
	assert_int_equal(keys_generate(&kp2, &e), 0);
	assert_int_equal(ckey_save(path, kp.pk, &e), 0);
	assert_int_equal(ckey_save(path, kp2.pk, &e), 0); /* replaces */
	assert_int_equal(keys_load_public(path, pk, kid, &e), 0);
	assert_memory_equal(pk, kp2.pk, 32);
	assert_string_equal(kid, kp2.kid);
	assert_true(ckey_refusal("bad_tid") && ckey_refusal("bad_kid") && !ckey_refusal("invalid"));
	unlink(path);
	rmdir(dir);
	keys_wipe(&kp);
	keys_wipe(&kp2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_answer_is_taken_with_the_kids_central_opens),
		cmocka_unit_test(an_answer_whose_kid_is_not_its_key_is_refused),
		cmocka_unit_test(the_key_is_saved_whole_and_reads_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
