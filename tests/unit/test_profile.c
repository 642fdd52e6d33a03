/* profile: every shipped profile loads by name with the line settings and
 * framing its comments promise; a bad or unknown line is named by file and
 * line; lookup order is POS_PROFILE_DIR, then next to the executable. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "profile.h"

struct tmp {
	char dir[64];
	char file[128];
};

static int setup(void **st)
{
	struct tmp *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	snprintf(t->dir, sizeof t->dir, "/tmp/test_profile.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->file, sizeof t->file, "%s/myscanner", t->dir);
	unsetenv("POS_PROFILE_DIR");
	*st = t;
	return 0;
}

static int teardown(void **st)
{
	struct tmp *t = *st;

	unlink(t->file);
	rmdir(t->dir);
	unsetenv("POS_PROFILE_DIR");
	free(t);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void scanner_crlf_ends_codes_at_any_line_end_with_optional_aim(void **st)
{
	struct profile p;
	pos_err e;

	(void)st;
	assert_int_equal(profile_load("scanner-crlf", &p, &e), 0);
	assert_string_equal(p.name, "scanner-crlf");
	assert_int_equal(p.kind, PROFILE_TEXT);
	assert_int_equal(p.term, FRAMER_TERM_EOL);
	assert_int_equal(p.prefix, FRAMER_PREFIX_NONE);
	assert_int_equal(p.aim, PROFILE_AIM_OPTIONAL);
	assert_int_equal(p.baud, 9600);
	assert_int_equal(p.data_bits, 8);
	assert_int_equal(p.parity, PROFILE_PARITY_NONE);
	assert_int_equal(p.stop_bits, 1);
	assert_int_equal(p.flow, PROFILE_FLOW_NONE);
	assert_true(p.max_len >= 256);
	assert_non_null(strstr(p.path, "hw/profiles/scanner-crlf"));
}

static void msr_ascii_is_a_card_reader_profile_without_aim(void **st)
{
	struct profile p;
	pos_err e;

	(void)st;
	assert_int_equal(profile_load("msr-ascii", &p, &e), 0);
	assert_int_equal(p.kind, PROFILE_MSR);
	assert_int_equal(p.aim, PROFILE_AIM_NONE);
	assert_int_equal(p.term, FRAMER_TERM_EOL);
	assert_true(p.max_len <= 512); /* msr_parse takes at most MSR_MAX_LINE */
}

static void every_other_shipped_profile_loads(void **st)
{
	struct profile p;
	pos_err e;

	(void)st;
	assert_int_equal(profile_load("scanner-cr", &p, &e), 0);
	assert_int_equal(p.term, FRAMER_TERM_CR);
	assert_int_equal(profile_load("scanner-etx", &p, &e), 0);
	assert_int_equal(p.term, FRAMER_TERM_ETX);
	assert_int_equal(p.prefix, FRAMER_PREFIX_STX);
	assert_int_equal(profile_load("zebra-default", &p, &e), 0);
	assert_int_equal(p.term, FRAMER_TERM_NONE);
	assert_true(p.idle_timeout_ms > 0);
	assert_int_equal(p.baud, 9600);
}

static void a_spec_with_a_slash_is_a_file(void **st)
{
	struct tmp *t = *st;
	struct profile p;
	pos_err e;

	write_file(t->file, "[profile]\nname = mine\nkind = text\nbaud = 115200\n"
			    "parity = even\ndata_bits = 7\nstop_bits = 2\nflow = rtscts\n"
			    "terminator = crlf\nprefix = stx\nidle_timeout_ms = 50\nmax_len = 32\n");
	assert_int_equal(profile_load(t->file, &p, &e), 0);
	assert_string_equal(p.name, "mine");
	assert_int_equal(p.baud, 115200);
	assert_int_equal(p.parity, PROFILE_PARITY_EVEN);
	assert_int_equal(p.data_bits, 7);
	assert_int_equal(p.stop_bits, 2);
	assert_int_equal(p.flow, PROFILE_FLOW_RTSCTS);
	assert_int_equal(p.term, FRAMER_TERM_CRLF);
	assert_int_equal(p.prefix, FRAMER_PREFIX_STX);
	assert_int_equal(p.idle_timeout_ms, 50);
	assert_int_equal(p.max_len, 32);
	assert_int_equal(p.aim, PROFILE_AIM_NONE); /* the default */
}

static void pos_profile_dir_is_searched_first(void **st)
{
	struct tmp *t = *st;
	char other[160];
	struct profile p;
	pos_err e;

	/* A local scanner-crlf that shadows the shipped one. */
	snprintf(other, sizeof other, "%s/scanner-crlf", t->dir);
	write_file(other, "[profile]\nname = local\nkind = text\nterminator = cr\n");
	setenv("POS_PROFILE_DIR", t->dir, 1);
	assert_int_equal(profile_load("scanner-crlf", &p, &e), 0);
	assert_string_equal(p.name, "local");
	/* Names not in that folder still come from the shipped folder. */
	assert_int_equal(profile_load("msr-ascii", &p, &e), 0);
	assert_string_equal(p.name, "msr-ascii");
	unlink(other);
}

static void bad_value_names_file_and_line(void **st)
{
	struct tmp *t = *st;
	struct profile p;
	pos_err e;
	char want[192];

	write_file(t->file, "[profile]\nname = x\nkind = text\n; comment\nparity = maybe\n"
			    "terminator = cr\n");
	assert_int_equal(profile_load(t->file, &p, &e), POS_EINVAL);
	snprintf(want, sizeof want, "%s:5:", t->file);
	assert_non_null(strstr(e.msg, want));
	assert_non_null(strstr(e.msg, "none|odd|even"));

	write_file(t->file, "[profile]\nname = x\nkind = text\nterminator = cr\nbaud = 9601\n");
	assert_int_equal(profile_load(t->file, &p, &e), POS_EINVAL);
	snprintf(want, sizeof want, "%s:5:", t->file);
	assert_non_null(strstr(e.msg, want));

	write_file(t->file, "[profile]\nname = x\nkind = text\nterminator = cr\nmax_len = 0\n");
	assert_int_equal(profile_load(t->file, &p, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, want));

	write_file(t->file, "[profile]\nname = x\nkind = barcode\nterminator = cr\n");
	assert_int_equal(profile_load(t->file, &p, &e), POS_EINVAL);
	snprintf(want, sizeof want, "%s:3:", t->file);
	assert_non_null(strstr(e.msg, want));
}

static void unknown_key_names_file_and_line(void **st)
{
	struct tmp *t = *st;
	struct profile p;
	pos_err e;
	char want[192];

	write_file(t->file, "[profile]\nname = x\nkind = text\nterminator = cr\nsufix = cr\n");
	assert_int_equal(profile_load(t->file, &p, &e), POS_EINVAL);
	snprintf(want, sizeof want, "%s:5:", t->file);
	assert_non_null(strstr(e.msg, want));
	assert_non_null(strstr(e.msg, "sufix"));
}

static void no_terminator_without_idle_timeout_is_refused(void **st)
{
	struct tmp *t = *st;
	struct profile p;
	pos_err e;
	char want[192];

	write_file(t->file, "[profile]\nname = x\nkind = text\nterminator = none\n");
	assert_int_equal(profile_load(t->file, &p, &e), POS_EINVAL);
	snprintf(want, sizeof want, "%s:4:", t->file);
	assert_non_null(strstr(e.msg, want));
	assert_non_null(strstr(e.msg, "idle_timeout_ms"));
}

static void missing_required_keys_are_refused(void **st)
{
	struct tmp *t = *st;
	struct profile p;
	pos_err e;

	write_file(t->file, "[profile]\nname = x\nkind = text\n");
	assert_int_equal(profile_load(t->file, &p, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "terminator"));
	write_file(t->file, "[device]\nname = x\n");
	assert_int_equal(profile_load(t->file, &p, &e), POS_EINVAL);
}

static void unknown_or_unsafe_names_are_not_found(void **st)
{
	struct profile p;
	pos_err e;

	(void)st;
	assert_int_equal(profile_load("no-such-profile", &p, &e), POS_ENOTFOUND);
	assert_non_null(strstr(e.msg, "no-such-profile"));
	assert_non_null(strstr(e.msg, "hw/profiles"));
	assert_int_equal(profile_load("..", &p, &e), POS_EINVAL);
	assert_int_equal(profile_load("", &p, &e), POS_EINVAL);
	assert_int_equal(profile_load("/nonexistent/profile", &p, &e), POS_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(scanner_crlf_ends_codes_at_any_line_end_with_optional_aim, setup, teardown),
		cmocka_unit_test_setup_teardown(msr_ascii_is_a_card_reader_profile_without_aim, setup, teardown),
		cmocka_unit_test_setup_teardown(every_other_shipped_profile_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(a_spec_with_a_slash_is_a_file, setup, teardown),
		cmocka_unit_test_setup_teardown(pos_profile_dir_is_searched_first, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_value_names_file_and_line, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_key_names_file_and_line, setup, teardown),
		cmocka_unit_test_setup_teardown(no_terminator_without_idle_timeout_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_required_keys_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_or_unsafe_names_are_not_found, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
