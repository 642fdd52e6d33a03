/* Visitor ids, their sigs and refs, the inbound SMS form and its
 * signature (the gateway's scheme with SHA-256, checked against a value
 * computed independently). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "visitor.h"

static const unsigned char KEY[KEYS_HMAC_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const unsigned char KEY2[KEYS_HMAC_LEN] = { 9 };

static void uid_and_sig_check(void **st)
{
	char uid[VISITOR_UID_LEN + 1], sig[VISITOR_SIG_LEN + 1], u2[VISITOR_UID_LEN + 1];
	char bad[VISITOR_SIG_LEN + 1];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(visitor_new(KEY, uid, sig, &e), 0);
	assert_int_equal(visitor_new(KEY, u2, bad, &e), 0);
	assert_string_not_equal(uid, u2);
	assert_int_equal(strlen(uid), VISITOR_UID_LEN);
	assert_int_equal(strlen(sig), VISITOR_SIG_LEN);
	assert_memory_equal(uid, "vi_", 3);
	assert_true(visitor_uid_ok(KEY, uid));
	assert_true(visitor_sig_ok(KEY, uid, sig));
	assert_false(visitor_uid_ok(KEY2, uid));
	assert_false(visitor_sig_ok(KEY2, uid, sig));
	assert_false(visitor_sig_ok(KEY, u2, sig));
	memcpy(bad, sig, sizeof bad);
	bad[5] = bad[5] == 'A' ? 'B' : 'A';
	assert_false(visitor_sig_ok(KEY, uid, bad));
	/* Every single changed character of a uid breaks its check. */
	for (size_t i = 3; i < VISITOR_UID_LEN; i++) {
		memcpy(u2, uid, sizeof u2);
		u2[i] = u2[i] == 'a' ? 'b' : 'a';
		assert_false(visitor_uid_ok(KEY, u2));
	}
	assert_false(visitor_uid_ok(KEY, ""));
	assert_false(visitor_uid_ok(KEY, "vi_"));
	assert_false(visitor_sig_ok(KEY, uid, ""));
}

static void refs_in_text(void **st)
{
	char uid[VISITOR_UID_LEN + 1], sig[VISITOR_SIG_LEN + 1], got[VISITOR_UID_LEN + 1];
	char text[128];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(visitor_new(KEY, uid, sig, &e), 0);
	snprintf(text, sizeof text, "Is it ready? ref %s thanks", uid);
	assert_int_equal(visitor_ref(KEY, text, got, &e), 0);
	assert_string_equal(got, uid);
	snprintf(text, sizeof text, "REF: %s", uid);
	assert_int_equal(visitor_ref(KEY, text, got, &e), 0);
	assert_int_equal(visitor_ref(KEY, "no ref here", got, &e), POS_ENOTFOUND);
	assert_int_equal(visitor_ref(KEY, "prefer vi_x", got, &e), POS_ENOTFOUND);
	assert_int_equal(visitor_ref(KEY, "ref vi_aaaaaaaaaaaaaaaaaaaaaaaaaa", got, &e), POS_EINVAL);
	assert_int_equal(visitor_ref(KEY, "ref vi_short", got, &e), POS_EINVAL);
	snprintf(text, sizeof text, "ref %s", uid);
	assert_int_equal(visitor_ref(KEY2, text, got, &e), POS_EINVAL);
}

static void form_and_signature(void **st)
{
	static const char body[] = "To=%2B15550100999&MessageSid=SM1&Body=hi+ref+x&From=%2B15550100777";
	char buf[sizeof body], sig[SMS_SIG_LEN + 1];
	struct sms_param p[SMS_PARAMS_MAX];
	pos_err e = { 0 };
	size_t n = 0;
	const char *url = "https://example.com/v1/sms/inbound";

	(void)st;
	assert_int_equal(sms_form_parse(body, strlen(body), buf, p, &n, &e), 0);
	assert_int_equal(n, 4);
	assert_string_equal(p[0].name, "Body");
	assert_string_equal(sms_form_get(p, n, "Body"), "hi ref x");
	assert_string_equal(sms_form_get(p, n, "From"), "+15550100777");
	assert_null(sms_form_get(p, n, "AccountSid"));
	assert_int_equal(sms_signature("secret", url, p, n, sig, &e), 0);
	/* base64(HMAC-SHA256("secret", url + BodyhI... sorted)), from Python's hmac. */
	assert_string_equal(sig, "pA/eLT343bFfwezJWOfoPhU5wMvfHMan4TxAPw/Y3nk=");
	assert_true(sms_signature_ok("secret", url, p, n, sig));
	assert_false(sms_signature_ok("secreT", url, p, n, sig));
	assert_false(sms_signature_ok("secret", "https://example.com/other", p, n, sig));
	assert_false(sms_signature_ok("", url, p, n, sig));
	assert_false(sms_signature_ok("secret", url, p, n, NULL));
	assert_false(sms_signature_ok("secret", url, p, n, "pA/e"));

	assert_int_equal(sms_form_parse("a=%zz", 5, buf, p, &n, &e), POS_EINVAL);
	assert_int_equal(sms_form_parse("a=%4", 4, buf, p, &n, &e), POS_EINVAL);
	assert_int_equal(sms_form_parse("a=%00", 5, buf, p, &n, &e), POS_EINVAL);
	assert_int_equal(sms_form_parse("a=1&a=2", 7, buf, p, &n, &e), POS_EINVAL);
	assert_int_equal(sms_form_parse("a&b", 3, buf, p, &n, &e), POS_EINVAL);
	assert_int_equal(sms_form_parse("a=&&b=", 6, buf, p, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_int_equal(sms_form_parse("", 0, buf, p, &n, &e), 0);
	assert_int_equal(n, 0);
}

static void too_many_fields(void **st)
{
	char body[SMS_PARAMS_MAX * 8 + 16], buf[sizeof body];
	struct sms_param p[SMS_PARAMS_MAX];
	pos_err e = { 0 };
	size_t n = 0, len = 0;

	(void)st;
	for (int i = 0; i <= SMS_PARAMS_MAX; i++)
		len += (size_t)snprintf(body + len, sizeof body - len, "k%d=v&", i);
	assert_int_equal(sms_form_parse(body, len, buf, p, &n, &e), POS_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(uid_and_sig_check),
		cmocka_unit_test(refs_in_text),
		cmocka_unit_test(form_and_signature),
		cmocka_unit_test(too_many_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
