/* ctab: the store side's configuration tables take every key with its
 * type, default and bounds, and name FILE:LINE for anything wrong. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "aconf.h"
#include "config.h"
#include "ctab.h"
#include "profile.h"
#include "sconf.h"

struct sample {
	char id[65];
	char url[128];
	char path[256];
	long big;
	int small;
	int word;
};

static const struct ctab_word words[] = { { "one", 1 }, { "two", 2 }, { NULL, 0 } };

#define SF(f) CTAB_FIELD(struct sample, f)
static const struct ctab_key keys[] = {
	{ "a", "id", CT_ID, NULL, 0, 0, SF(id), NULL, NULL },
	{ "a", "url", CT_URLS, "https://x:1", 0, 0, SF(url), NULL, NULL },
	{ "a", "path", CT_PATH, "f.db", 0, 0, SF(path), NULL, NULL },
	{ "b", "big", CT_INT, "7", 1, 100, SF(big), NULL, NULL },
	{ "b", "small", CT_INT, "3", 1, 5, SF(small), NULL, NULL },
	{ "b", "word", CT_WORD, "two", 0, 0, SF(word), words, NULL },
};
#define NKEYS (sizeof keys / sizeof keys[0])

static int take(const char *text, struct sample *s, pos_err *e)
{
	struct cfg *cf = NULL;
	int rc;

	memset(s, 0, sizeof *s);
	if ((rc = cfg_load_string(text, strlen(text), "x.conf", "/etc/pos", &cf, e)) < 0)
		return rc;
	rc = ctab_take(cf, NULL, keys, NKEYS, s, e);
	if (rc == 0)
		rc = cfg_check_unused(cf, e);
	cfg_free(cf);
	return rc;
}

static void defaults_fill_what_the_file_leaves_out(void **state)
{
	struct sample s;
	pos_err e;

	(void)state;
	assert_int_equal(take("[a]\nid = T1\n", &s, &e), 0);
	assert_string_equal(s.id, "T1");
	assert_string_equal(s.url, "https://x:1");
	assert_string_equal(s.path, "/etc/pos/f.db");
	assert_int_equal(s.big, 7);
	assert_int_equal(s.small, 3);
	assert_int_equal(s.word, 2);
}

static void values_of_every_type_are_taken(void **state)
{
	struct sample s;
	pos_err e;

	(void)state;
	assert_int_equal(take("[a]\nid = S-1.x\nurl = https://a:1 https://b:2\npath = /var/f\n"
			      "[b]\nbig = 100\nsmall = 5\nword = one\n",
			      &s, &e),
			 0);
	assert_string_equal(s.url, "https://a:1 https://b:2");
	assert_string_equal(s.path, "/var/f");
	assert_int_equal(s.big, 100);
	assert_int_equal(s.small, 5);
	assert_int_equal(s.word, 1);
}

/* Each bad value names the file, the key's line and what is allowed. */
static void bad_values_name_file_line_and_rule(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "[a]\n", "x.conf" },
		{ "[a]\nid = a b\n", "x.conf:2: 'id' in [a] must be 1 to 64" },
		{ "[a]\nid = T\nurl = http://a\n", "x.conf:3: 'url' in [a] must be https://" },
		{ "[a]\nid = T\n[b]\nbig = 101\n", "x.conf:4" },
		{ "[a]\nid = T\n[b]\nsmall = 0\n", "x.conf:4" },
		{ "[a]\nid = T\n[b]\nword = three\n", "x.conf:4: 'word' in [b] must be one|two" },
		{ "[a]\nid = T\nurll = https://a\n", "x.conf:3: unknown key 'urll'" },
	};
	struct sample s;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		pos_err e = { 0 };

		assert_true(take(cases[i].text, &s, &e) < 0);
		if (!strstr(e.msg, cases[i].want))
			fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, cases[i].want);
	}
}

/* The three file kinds use the tables: a wrong key in each is named. */
static void each_file_kind_refuses_an_unknown_key_with_its_line(void **state)
{
	static const char term[] = "[terminal]\nstore = S1\nid = T1\n[central]\n"
				   "url = https://c:1\nca = ca\ncert = c\nkey = k\npublic_key = p\n"
				   "keys_refresh_s = 5\n";
	static const char store[] = "[store]\nid = S1\n[tls]\nca = a\ncert = b\nkey = c\n"
				    "[central]\nurl = https://c:1\nca = a\ncert = b\nkey = c\nurll = x\n";
	struct aconf *a = NULL;
	struct sconf *sc = NULL;
	pos_err e = { 0 };

	(void)state;
	assert_true(aconf_load_string(term, strlen(term), "terminal.conf", "/t", &a, &e) < 0);
	assert_non_null(strstr(e.msg, "terminal.conf:10: 'keys_refresh_s'"));
	assert_true(sconf_load_string(store, strlen(store), "store.conf", "/s", &sc, &e) < 0);
	assert_non_null(strstr(e.msg, "store.conf:12: unknown key 'urll'"));
}

static void a_device_port_must_parse(void **state)
{
	static const char term[] = "[terminal]\nstore = S1\nid = T1\n[central]\n"
				   "url = https://c:1\nca = ca\ncert = c\nkey = k\npublic_key = p\n"
				   "[device.x]\nrole = scanner\nport = usb:zz:12\nprofile = scanner-crlf\n";
	struct aconf *a = NULL;
	pos_err e = { 0 };

	(void)state;
	assert_true(aconf_load_string(term, strlen(term), "terminal.conf", "/t", &a, &e) < 0);
	assert_non_null(strstr(e.msg, "terminal.conf:12:"));
	assert_non_null(strstr(e.msg, "usb:VID:PID"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_fill_what_the_file_leaves_out),
		cmocka_unit_test(values_of_every_type_are_taken),
		cmocka_unit_test(bad_values_name_file_line_and_rule),
		cmocka_unit_test(each_file_kind_refuses_an_unknown_key_with_its_line),
		cmocka_unit_test(a_device_port_must_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
