/* cconf: central.conf loads with the documented defaults, and every bad or
 * unknown line is named by file and line. */
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

#include "cconf.h"

struct tmp {
	char dir[64];
	char conf[128];
};

static int setup(void **st)
{
	struct tmp *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_cconf.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->conf, sizeof(t->conf), "%s/central.conf", t->dir);
	*st = t;
	return 0;
}

static int teardown(void **st)
{
	struct tmp *t = *st;
	unlink(t->conf);
	rmdir(t->dir);
	free(t);
	return 0;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void joined(char *out, size_t cap, const char *dir, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

static void empty_sections_give_header_defaults_with_paths_in_conf_folder(void **st)
{
	struct tmp *t = *st;
	struct cconf c;
	pos_err e = { 0 };
	char want[256];

	write_text(t->conf, "[central]\n");
	assert_int_equal(cconf_load(t->conf, &c, &e), 0);
	assert_string_equal(c.path, t->conf);
	assert_string_equal(c.dir, t->dir);
	assert_string_equal(c.listen, "127.0.0.1:8443");
	joined(want, sizeof(want), t->dir, "central.db");
	assert_string_equal(c.database, want);
	assert_true(c.auto_enrol);
	assert_int_equal(c.workers, 0);
	assert_string_equal(c.log_level, "info");
	assert_string_equal(c.user, "pos-central");
	joined(want, sizeof(want), t->dir, "ca.crt");
	assert_string_equal(c.tls_ca, want);
	joined(want, sizeof(want), t->dir, "server.key");
	assert_string_equal(c.tls_key, want);
	joined(want, sizeof(want), t->dir, "keys");
	assert_string_equal(c.hpke_retired, want);
	joined(want, sizeof(want), t->dir, "k_index.key");
	assert_string_equal(c.k_index, want);
	joined(want, sizeof(want), t->dir, "admin.token");
	assert_string_equal(c.admin_token, want);
	assert_int_equal(c.max_body, 1048576);
	assert_int_equal(c.max_headers, 16384);
	assert_int_equal(c.idle_timeout, 30);
	assert_int_equal(c.max_connections, 4096);
}

static void written_default_loads_back_and_is_0600(void **st)
{
	struct tmp *t = *st;
	struct cconf c;
	struct stat sb;
	pos_err e = { 0 };

	assert_int_equal(cconf_write_default(t->conf, "0.0.0.0:9443", &e), 0);
	assert_int_equal(stat(t->conf, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(cconf_load(t->conf, &c, &e), 0);
	assert_string_equal(c.listen, "0.0.0.0:9443");
	assert_true(c.auto_enrol);
	assert_int_equal(c.max_connections, 4096);
}

static void write_default_refuses_to_overwrite(void **st)
{
	struct tmp *t = *st;
	pos_err e = { 0 };

	write_text(t->conf, "[central]\nlisten = 1.2.3.4:1\n");
	assert_true(cconf_write_default(t->conf, NULL, &e) < 0);
	{
		struct cconf c;
		assert_int_equal(cconf_load(t->conf, &c, &e), 0);
		assert_string_equal(c.listen, "1.2.3.4:1");
	}
}

static void absolute_paths_and_values_are_taken(void **st)
{
	struct tmp *t = *st;
	struct cconf c;
	pos_err e = { 0 };

	write_text(t->conf, "[central]\n"
			    "database = /var/lib/pos/c.db\n"
			    "auto_enrol = no\n"
			    "workers = 4 ; four\n"
			    "log_level = debug\n"
			    "[limits]\n"
			    "max_body = 2048\n");
	assert_int_equal(cconf_load(t->conf, &c, &e), 0);
	assert_string_equal(c.database, "/var/lib/pos/c.db");
	assert_false(c.auto_enrol);
	assert_int_equal(c.workers, 4);
	assert_string_equal(c.log_level, "debug");
	assert_int_equal(c.max_body, 2048);
}

static void bad_value_names_file_and_line(void **st)
{
	struct tmp *t = *st;
	struct cconf c;
	pos_err e = { 0 };
	char want[200];

	write_text(t->conf, "[central]\nlisten = 127.0.0.1:8443\n[limits]\nmax_body = lots\n");
	assert_true(cconf_load(t->conf, &c, &e) < 0);
	snprintf(want, sizeof(want), "%s:4:", t->conf);
	assert_non_null(strstr(e.msg, want));

	write_text(t->conf, "[central]\nworkers = 100000\n");
	assert_true(cconf_load(t->conf, &c, &e) < 0);
	snprintf(want, sizeof(want), "%s:2:", t->conf);
	assert_non_null(strstr(e.msg, want));

	write_text(t->conf, "[central]\n\nlog_level = loud\n");
	assert_true(cconf_load(t->conf, &c, &e) < 0);
	snprintf(want, sizeof(want), "%s:3:", t->conf);
	assert_non_null(strstr(e.msg, want));
	assert_non_null(strstr(e.msg, "log_level"));

	write_text(t->conf, "[central]\nlisten = nowhere\n");
	assert_true(cconf_load(t->conf, &c, &e) < 0);
	snprintf(want, sizeof(want), "%s:2:", t->conf);
	assert_non_null(strstr(e.msg, want));

	write_text(t->conf, "[central]\nauto_enrol = maybe\n");
	assert_true(cconf_load(t->conf, &c, &e) < 0);
	snprintf(want, sizeof(want), "%s:2:", t->conf);
	assert_non_null(strstr(e.msg, want));

	write_text(t->conf, "[sms]\nnumber = 5550100\n");
	assert_true(cconf_load(t->conf, &c, &e) < 0);
	snprintf(want, sizeof(want), "%s:2:", t->conf);
	assert_non_null(strstr(e.msg, want));
	assert_null(strstr(e.msg, "5550100"));

	write_text(t->conf, "[sms]\nnumber = +15550100999\ngateway_url = https://gw\n");
	assert_true(cconf_load(t->conf, &c, &e) < 0);
	assert_non_null(strstr(e.msg, "secret"));

	write_text(t->conf, "[crm]\nurl = https://crm\n");
	assert_true(cconf_load(t->conf, &c, &e) < 0);
	assert_non_null(strstr(e.msg, "[crm] secret"));

	write_text(t->conf, "[sms]\nnumber = +15550100999\nsecret = s\ngateway_url = https://gw\n"
			    "[crm]\nurl = https://crm\nsecret = k\n");
	assert_int_equal(cconf_load(t->conf, &c, &e), 0);
}

static void unknown_key_or_section_fails_with_line(void **st)
{
	struct tmp *t = *st;
	struct cconf c;
	pos_err e = { 0 };
	char want[200];

	write_text(t->conf, "[central]\nlisten = 127.0.0.1:1\nlistne = x\n");
	assert_true(cconf_load(t->conf, &c, &e) < 0);
	snprintf(want, sizeof(want), "%s:3:", t->conf);
	assert_non_null(strstr(e.msg, want));
	assert_non_null(strstr(e.msg, "listne"));

	write_text(t->conf, "[central]\n[extra]\nx = 1\n");
	assert_true(cconf_load(t->conf, &c, &e) < 0);
	assert_non_null(strstr(e.msg, "extra"));
}

static void missing_file_fails(void **st)
{
	struct tmp *t = *st;
	struct cconf c;
	pos_err e = { 0 };

	assert_true(cconf_load(t->conf, &c, &e) < 0);
	assert_true(strlen(e.msg) > 0);
}

static void store_backend_defaults_to_sqlite(void **st)
{
	struct tmp *t = *st;
	struct cconf c;
	struct store_where w;
	pos_err e = { 0 };

	write_text(t->conf, "[central]\n");
	assert_int_equal(cconf_load(t->conf, &c, &e), 0);
	assert_int_equal(c.backend, STORE_SQLITE);
	assert_int_equal(c.store_partitions_ahead, 3);
	cconf_store_where(&c, CCONF_STORE_WRITE, &w);
	assert_int_equal(w.backend, STORE_SQLITE);
	assert_string_equal(w.path, c.database);
	assert_false(w.readonly);
	/* A worker's and an analyst's connection never write. */
	cconf_store_where(&c, CCONF_STORE_WORKER, &w);
	assert_string_equal(w.path, c.database);
	assert_true(w.readonly);
	cconf_store_where(&c, CCONF_STORE_READ, &w);
	assert_true(w.readonly);
}

static void store_postgresql_reads_go_to_dsn_read(void **st)
{
	struct tmp *t = *st;
	struct cconf c;
	struct store_where w;
	pos_err e = { 0 };

	write_text(t->conf, "[store]\nbackend = postgresql\ndsn = host=/pg dbname=pos\n"
			    "dsn_read = host=replica dbname=pos\n");
	assert_int_equal(cconf_load(t->conf, &c, &e), 0);
	assert_int_equal(c.backend, STORE_POSTGRESQL);
	cconf_store_where(&c, CCONF_STORE_WRITE, &w);
	assert_string_equal(w.dsn, "host=/pg dbname=pos");
	assert_false(w.readonly);
	cconf_store_where(&c, CCONF_STORE_READ, &w);
	assert_string_equal(w.dsn, "host=replica dbname=pos");
	assert_true(w.readonly);
}

static void store_bad_backend_or_missing_dsn_names_the_line(void **st)
{
	struct tmp *t = *st;
	struct cconf c;
	pos_err e = { 0 };

	write_text(t->conf, "[central]\n[store]\nbackend = mysql\n");
	assert_int_equal(cconf_load(t->conf, &c, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, ":3:"));
	assert_non_null(strstr(e.msg, "sqlite or postgresql"));
	write_text(t->conf, "[store]\nbackend = postgresql\n");
	assert_int_equal(cconf_load(t->conf, &c, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, ":2:"));
	assert_non_null(strstr(e.msg, "dsn"));
	write_text(t->conf, "[store]\ndsn = host=x password=hunter2\n");
	assert_int_equal(cconf_load(t->conf, &c, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, ":2:"));
	assert_null(strstr(e.msg, "hunter2"));
}

static void dsn_shown_without_its_password(void **st)
{
	char out[256];

	(void)st;
	cconf_dsn_safe("host=/run/postgresql password=hunter2 dbname=pos", out, sizeof(out));
	assert_string_equal(out, "host=/run/postgresql password=*** dbname=pos");
	cconf_dsn_safe("host=db password = 'a b\\' c' dbname=pos", out, sizeof(out));
	assert_null(strstr(out, "a b"));
	assert_non_null(strstr(out, "dbname=pos"));
	cconf_dsn_safe("postgresql://pos:hunter2@db.example/pos?sslmode=require", out, sizeof(out));
	assert_string_equal(out, "postgresql://***@db.example/pos?sslmode=require");
	cconf_dsn_safe("postgresql://db/pos?password=hunter2", out, sizeof(out));
	assert_null(strstr(out, "hunter2"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			empty_sections_give_header_defaults_with_paths_in_conf_folder, setup, teardown),
		cmocka_unit_test_setup_teardown(written_default_loads_back_and_is_0600, setup,
						teardown),
		cmocka_unit_test_setup_teardown(write_default_refuses_to_overwrite, setup, teardown),
		cmocka_unit_test_setup_teardown(absolute_paths_and_values_are_taken, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_value_names_file_and_line, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_key_or_section_fails_with_line, setup,
						teardown),
		cmocka_unit_test_setup_teardown(missing_file_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(store_backend_defaults_to_sqlite, setup, teardown),
		cmocka_unit_test_setup_teardown(store_postgresql_reads_go_to_dsn_read, setup,
						teardown),
		cmocka_unit_test_setup_teardown(store_bad_backend_or_missing_dsn_names_the_line, setup,
						teardown),
		cmocka_unit_test(dsn_shown_without_its_password),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
