/* config: an INI reader whose every complaint names FILE:LINE. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "design_conf.h"

static struct cfg *load(const char *text, pos_err *e)
{
	struct cfg *c = NULL;
	int rc = cfg_load_string(text, strlen(text), "t.conf", "/etc/pos", &c, e);
	if (rc < 0)
		return NULL;
	return c;
}

static int count_section(const char *s, void *arg)
{
	(void)s;
	(*(int *)arg)++;
	return 0;
}

static void design_terminal_conf_loads_with_inline_comments(void **st)
{
	pos_err e = { 0 };
	struct cfg *c = load(design_terminal_conf, &e);
	const char *v;
	long n;
	int devs = 0;

	(void)st;
	assert_non_null(c);
	assert_int_equal(cfg_str(c, "device.flatbed", "profile", NULL, &v, &e), 0);
	assert_string_equal(v, "scanner-crlf");
	assert_int_equal(cfg_str(c, "device.flatbed", "port", NULL, &v, &e), 0);
	assert_string_equal(v, "/dev/ttyACM0");
	assert_int_equal(cfg_str(c, "codes", "loyalty", NULL, &v, &e), 0);
	assert_string_equal(v, "^99[0-9]{11}$");
	assert_int_equal(cfg_int(c, "central", "resolve_timeout_ms", 1, 1, 10000, &n, &e), 0);
	assert_int_equal(n, 400);
	assert_int_equal(cfg_line(c, "device.flatbed", NULL), 15);
	assert_int_equal(cfg_line(c, "codes", "cancel"), 24);
	assert_true(cfg_has_section(c, "spool"));
	assert_false(cfg_has_section(c, "nope"));
	assert_int_equal(cfg_each_section(c, "device.", count_section, &devs), 0);
	assert_int_equal(devs, 1);
	cfg_free(c);
}

static void unused_key_is_reported_with_file_and_line(void **st)
{
	pos_err e = { 0 };
	struct cfg *c = load("[a]\nx = 1\n\n# comment\ny = 2\n", &e);
	const char *v;

	(void)st;
	assert_non_null(c);
	assert_int_equal(cfg_str(c, "a", "x", NULL, &v, &e), 0);
	assert_int_equal(cfg_check_unused(c, &e), POS_EINVAL);
	assert_string_equal(e.msg, "t.conf:5: unknown key 'y' in [a]");
	assert_int_equal(cfg_str(c, "a", "y", NULL, &v, &e), 0);
	assert_int_equal(cfg_check_unused(c, &e), 0);
	cfg_free(c);
}

static void unknown_section_is_reported_before_its_keys(void **st)
{
	pos_err e = { 0 };
	struct cfg *c = load("[a]\nx = 1\n[bogus]\nz = 3\n", &e);
	const char *v;

	(void)st;
	assert_non_null(c);
	assert_int_equal(cfg_str(c, "a", "x", NULL, &v, &e), 0);
	assert_int_equal(cfg_check_unused(c, &e), POS_EINVAL);
	assert_string_equal(e.msg, "t.conf:3: unknown section [bogus]");
	cfg_free(c);
}

static void section_queried_for_defaults_counts_as_known(void **st)
{
	pos_err e = { 0 };
	struct cfg *c = load("[control]\n", &e);
	const char *v;

	(void)st;
	assert_non_null(c);
	assert_int_equal(cfg_str(c, "control", "socket", "agent.sock", &v, &e), 0);
	assert_string_equal(v, "agent.sock");
	assert_int_equal(cfg_check_unused(c, &e), 0);
	cfg_free(c);
}

static void duplicate_key_fails_at_load_naming_both_lines(void **st)
{
	pos_err e = { 0 };
	struct cfg *c = load("[a]\nx = 1\nx = 2\n", &e);

	(void)st;
	assert_null(c);
	assert_int_equal(e.code, POS_EINVAL);
	assert_string_equal(e.msg, "t.conf:3: duplicate key 'x' in [a] (first at line 2)");
}

static void repeated_section_fails_at_load(void **st)
{
	pos_err e = { 0 };
	struct cfg *c = load("[a]\nx = 1\n[a]\ny = 2\n", &e);

	(void)st;
	assert_null(c);
	assert_non_null(strstr(e.msg, "t.conf:3:"));
}

static void syntax_errors_name_the_line(void **st)
{
	static const struct {
		const char *text;
		const char *where;
	} bad[] = {
		{ "x = 1\n", "t.conf:1:" },
		{ "[a]\n\njunk line\n", "t.conf:3:" },
		{ "[a\n", "t.conf:1:" },
		{ "[a] extra\n", "t.conf:1:" },
		{ "[]\n", "t.conf:1:" },
		{ "[a]\n = v\n", "t.conf:2:" },
		{ "[a]\nbad key = v\n", "t.conf:2:" },
		{ "[a]\nk = v\x01\n", "t.conf:2:" },
	};
	(void)st;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pos_err e = { 0 };
		struct cfg *c = load(bad[i].text, &e);
		assert_null(c);
		assert_int_equal(e.code, POS_EINVAL);
		assert_memory_equal(e.msg, bad[i].where, strlen(bad[i].where));
	}
}

static void crlf_comments_and_empty_values_parse(void **st)
{
	pos_err e = { 0 };
	struct cfg *c = load("; top\r\n[a]\r\n  k = v x ; note\r\nh = a#b\r\nempty =\r\n", &e);
	const char *v;

	(void)st;
	assert_non_null(c);
	assert_int_equal(cfg_str(c, "a", "k", NULL, &v, &e), 0);
	assert_string_equal(v, "v x");
	assert_int_equal(cfg_str(c, "a", "h", NULL, &v, &e), 0);
	assert_string_equal(v, "a#b");
	assert_int_equal(cfg_str(c, "a", "empty", "d", &v, &e), 0);
	assert_string_equal(v, "");
	assert_int_equal(cfg_str(c, "a", "empty", NULL, &v, &e), POS_EINVAL);
	assert_string_equal(e.msg, "t.conf:5: 'empty' in [a] must not be empty");
	cfg_free(c);
}

static void int_out_of_bounds_or_not_a_number_fails(void **st)
{
	pos_err e = { 0 };
	struct cfg *c = load("[a]\nn = 70000\nm = 12x\nk = -5\n", &e);
	long v = 0;

	(void)st;
	assert_non_null(c);
	assert_int_equal(cfg_int(c, "a", "n", 0, 1, 65535, &v, &e), POS_EINVAL);
	assert_string_equal(e.msg, "t.conf:2: 'n' in [a] must be an integer from 1 to 65535");
	assert_int_equal(cfg_int(c, "a", "m", 0, 0, 100, &v, &e), POS_EINVAL);
	assert_int_equal(cfg_int(c, "a", "k", 0, -10, 10, &v, &e), 0);
	assert_int_equal(v, -5);
	assert_int_equal(cfg_int(c, "a", "absent", 7, 0, 10, &v, &e), 0);
	assert_int_equal(v, 7);
	cfg_free(c);
}

static void bool_accepts_the_usual_words(void **st)
{
	pos_err e = { 0 };
	struct cfg *c = load("[a]\np = yes\nq = Off\nr = maybe\n", &e);
	bool b = false;

	(void)st;
	assert_non_null(c);
	assert_int_equal(cfg_bool(c, "a", "p", 0, &b, &e), 0);
	assert_true(b);
	assert_int_equal(cfg_bool(c, "a", "q", 1, &b, &e), 0);
	assert_false(b);
	assert_int_equal(cfg_bool(c, "a", "r", 1, &b, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "t.conf:4:"));
	assert_int_equal(cfg_bool(c, "a", "s", 1, &b, &e), 0);
	assert_true(b);
	cfg_free(c);
}

static void required_key_missing_names_the_section(void **st)
{
	pos_err e = { 0 };
	struct cfg *c = load("[a]\nx = 1\n", &e);
	const char *v;

	(void)st;
	assert_non_null(c);
	assert_int_equal(cfg_str(c, "a", "y", NULL, &v, &e), POS_EINVAL);
	assert_string_equal(e.msg, "t.conf:1: [a] needs key 'y'");
	assert_int_equal(cfg_str(c, "b", "y", NULL, &v, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "[b]"));
	cfg_free(c);
}

static void relative_paths_resolve_against_the_file_folder(void **st)
{
	pos_err e = { 0 };
	struct cfg *c = load("[a]\nrel = spool.db\nabs = /var/x.db\n", &e);
	char p[64], tiny[8];

	(void)st;
	assert_non_null(c);
	assert_int_equal(cfg_path(c, "a", "rel", NULL, p, sizeof p, &e), 0);
	assert_string_equal(p, "/etc/pos/spool.db");
	assert_int_equal(cfg_path(c, "a", "abs", NULL, p, sizeof p, &e), 0);
	assert_string_equal(p, "/var/x.db");
	assert_int_equal(cfg_path(c, "a", "dflt", "agent.sock", p, sizeof p, &e), 0);
	assert_string_equal(p, "/etc/pos/agent.sock");
	assert_int_equal(cfg_path(c, "a", "rel", NULL, tiny, sizeof tiny, &e), POS_ETOOBIG);
	cfg_free(c);
}

static void load_from_file_sets_dir_and_refuses_oversize(void **st)
{
	char dir[] = "/tmp/test_config.XXXXXX";
	char path[128], big[128], p[256];
	pos_err e = { 0 };
	struct cfg *c = NULL;
	FILE *f;

	(void)st;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/terminal.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(design_terminal_conf, f);
	fclose(f);
	assert_int_equal(cfg_load(path, &c, &e), 0);
	assert_int_equal(cfg_path(c, "spool", "path", NULL, p, sizeof p, &e), 0);
	assert_memory_equal(p, dir, strlen(dir));
	assert_string_equal(p + strlen(dir), "/spool.db");
	cfg_free(c);

	snprintf(big, sizeof big, "%s/big.conf", dir);
	f = fopen(big, "w");
	assert_non_null(f);
	fputs("[a]\n", f);
	for (int i = 0; i < CFG_MAX_FILE / 8 + 1; i++)
		fputs("; pad..\n", f);
	fclose(f);
	c = NULL;
	assert_int_equal(cfg_load(big, &c, &e), POS_ETOOBIG);
	assert_null(c);
	assert_int_equal(cfg_load("/nonexistent/x.conf", &c, &e), POS_ENOTFOUND);
	unlink(big);
	unlink(path);
	rmdir(dir);
}

static void overlong_value_is_refused(void **st)
{
	char *text = malloc(CFG_MAX_VALUE + 32);
	pos_err e = { 0 };
	struct cfg *c = NULL;

	(void)st;
	assert_non_null(text);
	memcpy(text, "[a]\nk = ", 8);
	memset(text + 8, 'v', CFG_MAX_VALUE + 1);
	text[8 + CFG_MAX_VALUE + 1] = '\n';
	assert_int_equal(cfg_load_string(text, CFG_MAX_VALUE + 10, "t.conf", NULL, &c, &e),
			 POS_ETOOBIG);
	assert_string_equal(e.msg, "t.conf:2: value longer than 1024 bytes");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(design_terminal_conf_loads_with_inline_comments),
		cmocka_unit_test(unused_key_is_reported_with_file_and_line),
		cmocka_unit_test(unknown_section_is_reported_before_its_keys),
		cmocka_unit_test(section_queried_for_defaults_counts_as_known),
		cmocka_unit_test(duplicate_key_fails_at_load_naming_both_lines),
		cmocka_unit_test(repeated_section_fails_at_load),
		cmocka_unit_test(syntax_errors_name_the_line),
		cmocka_unit_test(crlf_comments_and_empty_values_parse),
		cmocka_unit_test(int_out_of_bounds_or_not_a_number_fails),
		cmocka_unit_test(bool_accepts_the_usual_words),
		cmocka_unit_test(required_key_missing_names_the_section),
		cmocka_unit_test(relative_paths_resolve_against_the_file_folder),
		cmocka_unit_test(load_from_file_sets_dir_and_refuses_oversize),
		cmocka_unit_test(overlong_value_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
