/* aconf: terminal.conf as design section 5 writes it; every mistake is
 * named by FILE:LINE. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aconf.h"
#include "design_conf.h"
#include "ids.h"
#include "keys.h"

/* The minimum: what terminal-cert always writes. */
static const char minimal_conf[] =
	"[terminal]\n"
	"store = S1\n"
	"id = T1\n"
	"[central]\n"
	"url = https://central.example:8443\n"
	"ca = ca.crt\n"
	"cert = terminal.crt\n"
	"key = terminal.key\n"
	"public_key = central.pub\n";

static struct aconf *load(const char *text, pos_err *e)
{
	struct aconf *c = NULL;

	if (aconf_load_string(text, strlen(text), "t.conf", "/var/lib/pos-agent", &c, e) < 0)
		return NULL;
	return c;
}

/* Loads minimal_conf plus extra and expects a failure naming t.conf:line. */
static void expect_error(const char *extra, int line, const char *words)
{
	char text[2048], where[32];
	pos_err e;

	snprintf(text, sizeof text, "%s%s", minimal_conf, extra);
	memset(&e, 0, sizeof e);
	assert_null(load(text, &e));
	snprintf(where, sizeof where, "t.conf:%d:", line);
	if (!strstr(e.msg, where) || (words && !strstr(e.msg, words)))
		fail_msg("message '%s' lacks '%s' / '%s'", e.msg, where, words ? words : "");
}

static void the_design_example_loads_with_paths_beside_the_file(void **st)
{
	pos_err e;
	struct aconf *c = load(design_terminal_conf, &e);

	(void)st;
	if (!c)
		fail_msg("%s", e.msg);
	assert_string_equal(c->store, "S1");
	assert_string_equal(c->terminal, "T1");
	assert_string_equal(c->url, "https://127.0.0.1:8443");
	assert_string_equal(c->ca, "/var/lib/pos-agent/ca.crt");
	assert_string_equal(c->cert, "/var/lib/pos-agent/terminal.crt");
	assert_string_equal(c->key, "/var/lib/pos-agent/terminal.key");
	assert_string_equal(c->public_key, "/var/lib/pos-agent/central.pub");
	assert_string_equal(c->spool, "/var/lib/pos-agent/spool.db");
	assert_string_equal(c->socket, "/var/lib/pos-agent/agent.sock");
	assert_int_equal(c->resolve_timeout_ms, 400);
	assert_int_equal(c->ndevices, 1);
	assert_string_equal(c->devices[0].name, "flatbed");
	assert_int_equal(c->devices[0].role, DEVICE_SCANNER);
	assert_string_equal(c->devices[0].port, "/dev/ttyACM0");
	assert_string_equal(c->devices[0].profile, "scanner-crlf");
	for (int i = 0; i < CLASSIFY_RULE_N; i++)
		assert_true(c->rules.set[i]);
	assert_int_equal(c->rules.vm, GTIN_VM_NONE);
	assert_int_equal(c->log_level, LOG_LVL_INFO);
	aconf_free(c);
}

static void defaults_fill_what_the_file_leaves_out(void **st)
{
	pos_err e;
	struct aconf *c = load(minimal_conf, &e);
	struct classify_result r;

	(void)st;
	if (!c)
		fail_msg("%s", e.msg);
	assert_int_equal(c->resolve_timeout_ms, 400);
	assert_string_equal(c->spool, "/var/lib/pos-agent/spool.db");
	assert_string_equal(c->socket, "/var/lib/pos-agent/agent.sock");
	assert_int_equal(c->ndevices, 0);
	/* The [codes] defaults are the design's. */
	assert_int_equal(classify_code(&c->rules, "TOTAL", 5, &r, &e), 0);
	assert_int_equal(r.kind, CLASSIFY_TOTAL);
	assert_int_equal(classify_code(&c->rules, "9900000000011", 13, &r, &e), 0);
	assert_int_equal(r.kind, CLASSIFY_LOYALTY);
	classify_result_wipe(&r);
	aconf_free(c);
}

static void optional_keys_are_read(void **st)
{
	static const char extra[] =
		"[spool]\npath = /var/spool/pos/s.db\n"
		"[device.msr]\nrole = cardreader\nport = usb:0801:0001:ABC123\nprofile = msr-ascii\n"
		"[device.hand]\nrole = scanner\nport = ttys/hand\nprofile = profiles/mine\n"
		"[codes]\noffer =\n";
	char text[2048];
	pos_err e;
	struct aconf *c;
	struct classify_result r;

	(void)st;
	snprintf(text, sizeof text,
		 "[terminal]\nstore = S1\nid = T1\nlog_level = debug\nvariable_measure = se\n%s%s",
		 strstr(minimal_conf, "[central]"), extra);
	c = load(text, &e);
	if (!c)
		fail_msg("%s", e.msg);
	assert_int_equal(c->log_level, LOG_LVL_DEBUG);
	assert_int_equal(c->rules.vm, GTIN_VM_SE);
	assert_string_equal(c->spool, "/var/spool/pos/s.db");
	assert_int_equal(c->ndevices, 2);
	assert_int_equal(c->devices[0].role, DEVICE_CARDREADER);
	assert_string_equal(c->devices[0].port, "usb:0801:0001:ABC123");
	assert_string_equal(c->devices[1].port, "/var/lib/pos-agent/ttys/hand");
	assert_string_equal(c->devices[1].profile, "/var/lib/pos-agent/profiles/mine");
	/* An empty rule is switched off: an offer-looking code is no offer. */
	assert_false(c->rules.set[CLASSIFY_RULE_OFFER]);
	assert_int_not_equal(classify_code(&c->rules, "9800000000012", 13, &r, &e) == 0 &&
				     r.kind == CLASSIFY_OFFER,
			     1);
	aconf_free(c);
}

static void an_unknown_key_is_an_error_with_its_line(void **st)
{
	(void)st;
	expect_error("resolve_timeout = 400\n", 10, "unknown key 'resolve_timeout'");
	expect_error("[codes]\ntotl = ^T$\n", 11, "unknown key 'totl'");
}

static void an_unknown_section_is_an_error(void **st)
{
	(void)st;
	expect_error("[uplink]\nx = 1\n", 10, "unknown section");
}

static void a_bad_regex_names_file_and_line(void **st)
{
	(void)st;
	expect_error("[codes]\nloyalty = ^99[0-9{11}$\n", 11, "loyalty");
	expect_error("[codes]\nvoid = (VOID\n", 11, "void");
}

static void the_resolve_timeout_is_bounded(void **st)
{
	pos_err e;
	char text[1024];
	struct aconf *c;

	(void)st;
	expect_error("resolve_timeout_ms = 49\n", 10, "50 to 10000");
	expect_error("resolve_timeout_ms = 10001\n", 10, "50 to 10000");
	expect_error("resolve_timeout_ms = soon\n", 10, "resolve_timeout_ms");
	snprintf(text, sizeof text, "%sresolve_timeout_ms = 50\n", minimal_conf);
	c = load(text, &e);
	assert_non_null(c);
	assert_int_equal(c->resolve_timeout_ms, 50);
	aconf_free(c);
}

static void ids_and_url_are_checked(void **st)
{
	pos_err e;
	char text[1024];

	(void)st;
	snprintf(text, sizeof text, "[terminal]\nstore = S 1\nid = T1\n%s",
		 strstr(minimal_conf, "[central]"));
	assert_null(load(text, &e));
	assert_non_null(strstr(e.msg, "t.conf:2:"));
	snprintf(text, sizeof text, "[terminal]\nstore = S1\n%s", strstr(minimal_conf, "[central]"));
	assert_null(load(text, &e));
	assert_non_null(strstr(e.msg, "'id'"));
	snprintf(text, sizeof text, "%s", minimal_conf);
	memcpy(strstr(text, "https://"), "http://c", 8);
	assert_null(load(text, &e));
	assert_non_null(strstr(e.msg, "t.conf:5:"));
	assert_true(ids_valid("S1.north_2-b"));
	assert_false(ids_valid(""));
	assert_false(ids_valid("a/b"));
	snprintf(text, sizeof text, "%s", minimal_conf);
	{
		/* The controller first, central as fallback. */
		char *u = strstr(text, "url = ");
		char rest[1024];
		snprintf(rest, sizeof rest, "%s", strchr(u, '\n'));
		snprintf(u, sizeof text - (size_t)(u - text),
			 "url = https://store1:8444 https://central:8443%s", rest);
		struct aconf *c = load(text, &e);
		assert_non_null(c);
		assert_string_equal(c->url, "https://store1:8444 https://central:8443");
		aconf_free(c);
		snprintf(u, sizeof text - (size_t)(u - text),
			 "url = https://store1:8444 http://central:8443%s", rest);
		assert_null(load(text, &e));
		assert_non_null(strstr(e.msg, "t.conf:5:"));
	}
}

static void device_sections_are_checked(void **st)
{
	(void)st;
	expect_error("[device.x]\nrole = printer\nport = /dev/ttyS0\nprofile = p\n", 11, "role");
	expect_error("[device.x]\nrole = scanner\nprofile = p\n", 10, "port");
	expect_error("[device.x]\nrole = scanner\nport = /dev/ttyS0\nprofile = p\nbaud = 9600\n", 14,
		     "baud");
	expect_error("[device.a]\nrole = scanner\nport = /dev/ttyS0\nprofile = p\n"
		     "[device.b]\nrole = scanner\nport = /dev/ttyS0\nprofile = p\n",
		     16, "same port");
}

static void log_level_and_variable_measure_take_only_known_words(void **st)
{
	pos_err e;
	char text[1024];

	(void)st;
	snprintf(text, sizeof text, "[terminal]\nstore = S1\nid = T1\nlog_level = loud\n%s",
		 strstr(minimal_conf, "[central]"));
	assert_null(load(text, &e));
	assert_non_null(strstr(e.msg, "t.conf:4:"));
	snprintf(text, sizeof text, "[terminal]\nstore = S1\nid = T1\nvariable_measure = fr\n%s",
		 strstr(minimal_conf, "[central]"));
	assert_null(load(text, &e));
	assert_non_null(strstr(e.msg, "t.conf:4:"));
}

static void a_socket_path_too_long_for_unix_is_refused(void **st)
{
	char extra[400];

	(void)st;
	snprintf(extra, sizeof extra, "[control]\nsocket = /%0150d\n", 0);
	expect_error(extra, 11, "unix socket");
}

/* From a real file: the folder of the file anchors relative paths, and
 * check_files accepts good key files and refuses a readable private key. */
static void files_named_by_a_real_conf_are_checked(void **st)
{
	char dir[64], path[160], cmd[200];
	struct hpke_keypair kp;
	struct aconf *c = NULL;
	FILE *f;
	pos_err e;

	(void)st;
	snprintf(dir, sizeof dir, "/tmp/test_aconf.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/terminal.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(minimal_conf, f);
	fclose(f);
	assert_int_equal(aconf_load(path, &c, &e), 0);
	snprintf(path, sizeof path, "%s/spool.db", dir);
	assert_string_equal(c->spool, path);
	/* Nothing exists yet. */
	assert_true(aconf_check_files(c, &e) < 0);
	assert_non_null(strstr(e.msg, "ca.crt"));
	const char *names[] = { "ca.crt", "terminal.crt", "terminal.key" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		f = fopen(path, "w");
		assert_non_null(f);
		fputs("-----BEGIN X-----\n", f);
		fclose(f);
	}
	assert_int_equal(keys_generate(&kp, &e), 0);
	assert_int_equal(keys_save_public(c->public_key, kp.pk, &e), 0);
	keys_wipe(&kp);
	assert_int_equal(chmod(c->key, 0644), 0);
	assert_int_equal(aconf_check_files(c, &e), POS_EPERM);
	assert_non_null(strstr(e.msg, "terminal.key"));
	assert_int_equal(chmod(c->key, 0600), 0);
	if (aconf_check_files(c, &e) != 0)
		fail_msg("%s", e.msg);
	aconf_free(c);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_design_example_loads_with_paths_beside_the_file),
		cmocka_unit_test(defaults_fill_what_the_file_leaves_out),
		cmocka_unit_test(optional_keys_are_read),
		cmocka_unit_test(an_unknown_key_is_an_error_with_its_line),
		cmocka_unit_test(an_unknown_section_is_an_error),
		cmocka_unit_test(a_bad_regex_names_file_and_line),
		cmocka_unit_test(the_resolve_timeout_is_bounded),
		cmocka_unit_test(ids_and_url_are_checked),
		cmocka_unit_test(device_sections_are_checked),
		cmocka_unit_test(log_level_and_variable_measure_take_only_known_words),
		cmocka_unit_test(a_socket_path_too_long_for_unix_is_refused),
		cmocka_unit_test(files_named_by_a_real_conf_are_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
