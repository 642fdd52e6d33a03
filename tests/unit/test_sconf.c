/* store.conf: design section 12's keys with their defaults and bounds;
 * anything unknown or wrong fails naming FILE:LINE. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sconf.h"

static const char design_conf[] =
	"[store]\n"
	"id = S1\n"
	"[listen]\n"
	"address = 0.0.0.0:8444\n"
	"[tls]\n"
	"ca = ca.crt\n"
	"cert = store.crt\n"
	"key = store.key\n"
	"[central]\n"
	"url = https://central.example:8443\n"
	"ca = ca.crt\n"
	"cert = store.crt\n"
	"key = store.key\n"
	"[tlog]\n"
	"path = tlog.db\n"
	"keep_days = 30\n";

static struct sconf *load(const char *text, pos_err *e)
{
	struct sconf *c = NULL;

	if (sconf_load_string(text, strlen(text), "s.conf", "/etc/pos", &c, e) < 0)
		return NULL;
	return c;
}

/* design_conf with the line starting with `key` replaced (NULL: removed). */
static void edit(char *out, size_t cap, const char *key, const char *line)
{
	const char *p = strstr(design_conf, key), *nl = strchr(p, '\n') + 1;

	snprintf(out, cap, "%.*s%s%s", (int)(p - design_conf), design_conf, line ? line : "", nl);
}

static void the_design_example_loads_with_paths_against_its_folder(void **st)
{
	struct sconf *c;
	pos_err e;

	(void)st;
	c = load(design_conf, &e);
	assert_non_null(c);
	assert_string_equal(c->store, "S1");
	assert_string_equal(c->host, "0.0.0.0");
	assert_string_equal(c->port, "8444");
	assert_string_equal(c->tls_ca, "/etc/pos/ca.crt");
	assert_string_equal(c->cert, "/etc/pos/store.crt");
	assert_string_equal(c->url, "https://central.example:8443");
	assert_string_equal(c->tlog, "/etc/pos/tlog.db");
	assert_int_equal(c->keep_days, 30);
	sconf_free(c);
}

static void defaults_fill_listen_and_tlog(void **st)
{
	char text[1024], t2[1024];
	struct sconf *c;
	pos_err e;

	(void)st;
	edit(text, sizeof text, "address", NULL);
	snprintf(t2, sizeof t2, "%.*s", (int)(strstr(text, "[tlog]") - text), text);
	c = load(t2, &e);
	assert_non_null(c);
	assert_string_equal(c->listen, "0.0.0.0:8444");
	assert_string_equal(c->tlog, "/etc/pos/tlog.db");
	assert_int_equal(c->keep_days, SCONF_KEEP_DEFAULT);
	sconf_free(c);
}

static void bad_values_name_file_and_line(void **st)
{
	static const struct {
		const char *key, *line, *want;
	} cases[] = {
		{ "id", "id = S 1\n", "s.conf:2:" },
		{ "address", "address = nowhere\n", "s.conf:4:" },
		{ "address", "address = :99999\n", "s.conf:4:" },
		{ "url", "url = http://central:8443\n", "s.conf:10:" },
		{ "keep_days", "keep_days = 0\n", "s.conf:16:" },
		{ "keep_days", "keep_days = 5\ncolour = blue\n", "s.conf:17:" },
		{ "[tls]", "[tsl]\n", "s.conf:" },
	};
	char text[1024];
	pos_err e;

	(void)st;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		edit(text, sizeof text, cases[i].key, cases[i].line);
		assert_null(load(text, &e));
		if (!strstr(e.msg, cases[i].want))
			fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, cases[i].want);
	}
	edit(text, sizeof text, "id", NULL);
	assert_null(load(text, &e));
	assert_non_null(strstr(e.msg, "'id'"));
}

static void several_central_urls_are_taken(void **st)
{
	char text[1024];
	struct sconf *c;
	pos_err e;

	(void)st;
	edit(text, sizeof text, "url", "url = https://c1:8443 https://c2:8443\n");
	c = load(text, &e);
	assert_non_null(c);
	assert_string_equal(c->url, "https://c1:8443 https://c2:8443");
	sconf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_design_example_loads_with_paths_against_its_folder),
		cmocka_unit_test(defaults_fill_listen_and_tlog),
		cmocka_unit_test(bad_values_name_file_and_line),
		cmocka_unit_test(several_central_urls_are_taken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
