/* setup, terminal-cert, rotate-key: a central home and a terminal folder
 * made from nothing, refusing to overwrite either. */
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

#include "config.h"
#include "keys.h"
#include "setup.h"

static char base[] = "/tmp/test_setup.XXXXXX";
static char home[256], t1[256];

static void path(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, 256, "%s/%s", dir, name);
	assert_true(n > 0 && n < 256);
}

static int run(int (*fn)(int, char **), const char *a0, ...)
{
	char *argv[16];
	int argc = 0;
	va_list ap;

	argv[argc++] = (char *)a0;
	va_start(ap, a0);
	for (char *s; argc < 15 && (s = va_arg(ap, char *)) != NULL;)
		argv[argc++] = s;
	va_end(ap);
	argv[argc] = NULL;
	return fn(argc, argv);
}

static int make_home(void **st)
{
	(void)st;
	if (!mkdtemp(base))
		return -1;
	path(home, base, "home");
	path(t1, base, "t1");
	if (run(setup_main, "setup", home, (char *)NULL) != 0)
		return -1;
	return run(terminal_cert_main, "terminal-cert", home, "--store", "S1", "--terminal", "T1",
		   "--out", t1, (char *)NULL);
}

static int remove_all(void **st)
{
	char cmd[300];

	(void)st;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

static int mode_of(const char *dir, const char *name)
{
	char p[256];
	struct stat sb;

	path(p, dir, name);
	if (stat(p, &sb) < 0)
		return -1;
	return (int)(sb.st_mode & 0777);
}

static void setup_makes_every_secret_0600_and_the_home_0700(void **st)
{
	static const char *const secret[] = { "ca.key", "server.key", "hpke.key", "k_index.key",
		"k_deident.key", "analyst.token", "admin.token" };
	struct stat sb;

	(void)st;
	for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++)
		assert_int_equal(mode_of(home, secret[i]), 0600);
	assert_true(mode_of(home, "ca.crt") >= 0);
	assert_true(mode_of(home, "server.crt") >= 0);
	assert_true(mode_of(home, "central.pub") >= 0);
	assert_true(mode_of(home, "central.conf") >= 0);
	assert_int_equal(stat(home, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(mode_of(home, "keys"), 0700);
}

static void setup_refuses_an_existing_home(void **st)
{
	char ca[256], before[4096], after[4096];
	FILE *f;
	size_t n1, n2;

	(void)st;
	path(ca, home, "ca.crt");
	f = fopen(ca, "r");
	assert_non_null(f);
	n1 = fread(before, 1, sizeof before, f);
	fclose(f);
	assert_int_equal(run(setup_main, "setup", home, (char *)NULL), 1);
	f = fopen(ca, "r");
	assert_non_null(f);
	n2 = fread(after, 1, sizeof after, f);
	fclose(f);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
}

static void usage_errors_return_2_and_help_returns_0(void **st)
{
	(void)st;
	assert_int_equal(run(setup_main, "setup", (char *)NULL), 2);
	assert_int_equal(run(setup_main, "setup", "--nope", (char *)NULL), 2);
	assert_int_equal(run(setup_main, "setup", "--help", (char *)NULL), 0);
	assert_int_equal(run(terminal_cert_main, "terminal-cert", home, "--store", "S1",
			     (char *)NULL),
			 2);
	assert_int_equal(run(terminal_cert_main, "terminal-cert", home, "--store", "S 1",
			     "--terminal", "T1", "--out", "/tmp/x", (char *)NULL),
			 2);
	assert_int_equal(run(rotate_key_main, "rotate-key", (char *)NULL), 2);
	assert_int_equal(run(rotate_key_main, "rotate-key", "--help", (char *)NULL), 0);
}

static void terminal_folder_holds_what_an_agent_needs(void **st)
{
	char cmd[1024];

	(void)st;
	assert_int_equal(mode_of(t1, "terminal.key"), 0600);
	assert_true(mode_of(t1, "terminal.crt") >= 0);
	assert_true(mode_of(t1, "ca.crt") >= 0);
	assert_true(mode_of(t1, "central.pub") >= 0);
	snprintf(cmd, sizeof cmd,
		 "openssl verify -CAfile '%s/ca.crt' -purpose sslclient '%s/terminal.crt' >/dev/null "
		 "2>&1 && openssl x509 -in '%s/terminal.crt' -noout -subject -nameopt RFC2253 | "
		 "grep -q '^subject=CN=T1,OU=S1$'",
		 home, t1, t1);
	assert_int_equal(system(cmd), 0);
}

static void terminal_conf_has_the_design_sections_and_loads_cleanly(void **st)
{
	char p[256], buf[256];
	struct cfg *c = NULL;
	pos_err e = { 0 };
	const char *v;
	long n;

	(void)st;
	path(p, t1, "terminal.conf");
	assert_int_equal(cfg_load(p, &c, &e), 0);
	assert_int_equal(cfg_str(c, "terminal", "store", NULL, &v, &e), 0);
	assert_string_equal(v, "S1");
	assert_int_equal(cfg_str(c, "terminal", "id", NULL, &v, &e), 0);
	assert_string_equal(v, "T1");
	assert_int_equal(cfg_str(c, "central", "url", NULL, &v, &e), 0);
	assert_string_equal(v, "https://127.0.0.1:8443");
	assert_int_equal(cfg_int(c, "central", "resolve_timeout_ms", 0, 1, 100000, &n, &e), 0);
	assert_int_equal(n, 400);
	static const char *const central_keys[] = { "ca", "cert", "key", "public_key" };
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(cfg_path(c, "central", central_keys[i], NULL, buf, sizeof buf, &e), 0);
	assert_int_equal(cfg_path(c, "spool", "path", NULL, buf, sizeof buf, &e), 0);
	path(p, t1, "spool.db");
	assert_string_equal(buf, p);
	assert_int_equal(cfg_str(c, "control", "socket", NULL, &v, &e), 0);
	assert_string_equal(v, "agent.sock");
	static const char *const codes[] = { "loyalty", "offer", "total", "void", "cancel" };
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(cfg_str(c, "codes", codes[i], NULL, &v, &e), 0);
	assert_string_equal(v, "^CANCEL$");
	/* The device sections are commented examples, nothing else is left. */
	assert_false(cfg_has_section(c, "device.flatbed"));
	assert_int_equal(cfg_check_unused(c, &e), 0);
	cfg_free(c);
}

static void terminal_cert_refuses_to_overwrite_a_terminal_folder(void **st)
{
	(void)st;
	assert_int_equal(run(terminal_cert_main, "terminal-cert", home, "--store", "S1",
			     "--terminal", "T2", "--out", t1, (char *)NULL),
			 1);
	assert_int_equal(mode_of(t1, "terminal.key"), 0600);
}

static void rotate_key_retires_the_old_key_by_kid_and_rewrites_central_pub(void **st)
{
	char conf[256], pub[256], key[256], retired[300];
	unsigned char pk_old[32], pk_new[32];
	char kid_old[KEYS_KID_LEN + 1], kid_new[KEYS_KID_LEN + 1];
	struct hpke_keypair kp;
	pos_err e = { 0 };

	(void)st;
	path(conf, home, "central.conf");
	path(pub, home, "central.pub");
	path(key, home, "hpke.key");
	assert_int_equal(keys_load_public(pub, pk_old, kid_old, &e), 0);
	assert_int_equal(run(rotate_key_main, "rotate-key", "-c", conf, (char *)NULL), 0);
	assert_int_equal(keys_load_public(pub, pk_new, kid_new, &e), 0);
	assert_string_not_equal(kid_old, kid_new);
	assert_int_equal(keys_load_private(key, &kp, &e), 0);
	assert_string_equal(kp.kid, kid_new);
	keys_wipe(&kp);
	snprintf(retired, sizeof retired, "%s/keys/%s.key", home, kid_old);
	assert_int_equal(keys_load_private(retired, &kp, &e), 0);
	assert_string_equal(kp.kid, kid_old);
	assert_memory_equal(kp.pk, pk_old, 32);
	keys_wipe(&kp);
	assert_int_equal(mode_of(home, "hpke.key"), 0600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(setup_makes_every_secret_0600_and_the_home_0700),
		cmocka_unit_test(setup_refuses_an_existing_home),
		cmocka_unit_test(usage_errors_return_2_and_help_returns_0),
		cmocka_unit_test(terminal_folder_holds_what_an_agent_needs),
		cmocka_unit_test(terminal_conf_has_the_design_sections_and_loads_cleanly),
		cmocka_unit_test(terminal_cert_refuses_to_overwrite_a_terminal_folder),
		cmocka_unit_test(rotate_key_retires_the_old_key_by_kid_and_rewrites_central_pub),
	};
	return cmocka_run_group_tests(tests, make_home, remove_all);
}
