/* admin: `pos-central household ...` and `pos-central history` run against a
 * real home folder, with stdin and stdout redirected to files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "cconf.h"
#include "keys.h"
#include "store.h"

struct home {
	char dir[64];
	char conf[128];
	char in[128], out[128], err[128];
	char *o, *e; /* what the last run printed */
};

static int setup(void **st)
{
	struct home *h = calloc(1, sizeof(*h));
	char p[160];
	pos_err e = { 0 };

	assert_non_null(h);
	snprintf(h->dir, sizeof(h->dir), "/tmp/test_admin.XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(h->conf, sizeof(h->conf), "%s/central.conf", h->dir);
	snprintf(h->in, sizeof(h->in), "%s/stdin.txt", h->dir);
	snprintf(h->out, sizeof(h->out), "%s/stdout.txt", h->dir);
	snprintf(h->err, sizeof(h->err), "%s/stderr.txt", h->dir);
	assert_int_equal(cconf_write_default(h->conf, NULL, &e), 0);
	snprintf(p, sizeof(p), "%s/k_index.key", h->dir);
	assert_int_equal(keys_generate_hmac(p, &e), 0);
	*st = h;
	return 0;
}

static int teardown(void **st)
{
	struct home *h = *st;
	DIR *d = opendir(h->dir);
	struct dirent *de;
	char p[400];

	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", h->dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(h->dir);
	free(h->o);
	free(h->e);
	free(h);
	return 0;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

/* Runs fn(argv) with stdin from `input` and stdout/stderr captured. */
static int run(struct home *h, int (*fn)(int, char **), const char *input, ...)
{
	char *argv[16];
	int argc = 0, rc, in_fd, out_fd, err_fd, s0, s1, s2;
	va_list ap;
	FILE *f;

	va_start(ap, input);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;

	f = fopen(h->in, "w");
	assert_non_null(f);
	fputs(input ? input : "", f);
	fclose(f);
	fflush(stdout);
	fflush(stderr);
	s0 = dup(0);
	s1 = dup(1);
	s2 = dup(2);
	in_fd = open(h->in, O_RDONLY);
	out_fd = open(h->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	err_fd = open(h->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(in_fd >= 0 && out_fd >= 0 && err_fd >= 0);
	dup2(in_fd, 0);
	dup2(out_fd, 1);
	dup2(err_fd, 2);
	rc = fn(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(s0, 0);
	dup2(s1, 1);
	dup2(s2, 2);
	close(s0);
	close(s1);
	close(s2);
	close(in_fd);
	close(out_fd);
	close(err_fd);
	free(h->o);
	free(h->e);
	h->o = slurp(h->out, NULL);
	h->e = slurp(h->err, NULL);
	assert_non_null(h->o);
	assert_non_null(h->e);
	return rc;
}

/* The hhid printed for input line n ("n,hh_...") into out. */
static void hhid_of_line(const char *text, int n, char out[DEIDENT_ID_LEN + 1])
{
	char key[16];
	const char *p;

	snprintf(key, sizeof(key), "%d,", n);
	for (p = text; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, key, strlen(key)) == 0) {
			memcpy(out, p + strlen(key), DEIDENT_ID_LEN);
			out[DEIDENT_ID_LEN] = '\0';
			return;
		}
		if (!*p)
			break;
	}
	fail_msg("no output for line %d in:\n%s", n, text);
}

static const char enrol_input[] = "household_ref,tid\n"
				  "A,card:4111111111111111\n"
				  "A,loyalty:99123456789012\n"
				  ",phone:+1 415 555 0123\n"
				  "B,card:4111111111111112\n"
				  "B,phone:+14155550199\n"
				  "B,card:4111111111111111\n"
				  "\n"
				  "no comma here\n"
				  "\"C\",\"loyalty:99123456789012\"\r\n";

static void enroll_groups_by_ref_and_reports_bad_lines_without_the_tid(void **st)
{
	struct home *h = *st;
	char a2[30], a3[30], n4[30], b6[30], c10[30];

	assert_int_equal(run(h, household_main, enrol_input, "household", "enroll", "-c", h->conf,
			     NULL),
			 1);
	hhid_of_line(h->o, 2, a2);
	hhid_of_line(h->o, 3, a3);
	hhid_of_line(h->o, 4, n4);
	hhid_of_line(h->o, 6, b6);
	hhid_of_line(h->o, 10, c10);
	assert_string_equal(a2, a3);
	assert_string_not_equal(a2, n4);
	assert_string_not_equal(a2, b6);
	assert_string_equal(c10, a2); /* a new ref adopts the TID's household */
	assert_null(strstr(h->o, "\n5,"));
	assert_null(strstr(h->o, "\n7,"));

	assert_non_null(strstr(h->e, "line 5: card number fails the Luhn check"));
	assert_non_null(strstr(h->e, "line 7: already enrolled in household "));
	assert_non_null(strstr(h->e, a2));
	assert_non_null(strstr(h->e, "use household merge"));
	assert_non_null(strstr(h->e, "line 9: "));
	assert_null(strstr(h->e, "line 8"));
	assert_null(strstr(h->e, "4111111111111112"));
	assert_null(strstr(h->e, "411111"));
}

static void enroll_rerun_is_idempotent_and_exits_0_when_clean(void **st)
{
	struct home *h = *st;
	const char *in = "r1,card:4111111111111111\nr1,phone:+4930123456\n,loyalty:12345678\n";
	char first[3][30], again[30];

	assert_int_equal(run(h, household_main, in, "household", "enroll", "-c", h->conf, NULL), 0);
	for (int i = 0; i < 3; i++)
		hhid_of_line(h->o, i + 1, first[i]);
	assert_string_equal(first[0], first[1]);
	assert_int_equal(run(h, household_main, in, "household", "enroll", "-c", h->conf, NULL), 0);
	for (int i = 0; i < 3; i++) {
		hhid_of_line(h->o, i + 1, again);
		assert_string_equal(again, first[i]);
	}
}

static int contains(const char *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(hay + i, needle, k) == 0)
			return 1;
	return 0;
}

static void enrolled_tid_digits_never_reach_any_file_in_the_home(void **st)
{
	struct home *h = *st;
	DIR *d;
	struct dirent *de;
	int scanned = 0;

	assert_int_equal(run(h, household_main,
			     "x,card:4111111111111111\nx,phone:+14155550123\ny,loyalty:99123456789012\n",
			     "household", "enroll", "-c", h->conf, NULL),
			 0);
	/* The input file itself holds them, by construction: remove it. */
	unlink(h->in);
	d = opendir(h->dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char p[400];
		size_t n;
		char *buf;
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", h->dir, de->d_name);
		buf = slurp(p, &n);
		if (!buf)
			continue;
		assert_false(contains(buf, n, "4111111111111111"));
		assert_false(contains(buf, n, "14155550123"));
		assert_false(contains(buf, n, "99123456789012"));
		assert_false(contains(buf, n, "card:"));
		if (strcmp(de->d_name, "central.db") == 0)
			assert_true(n > 0);
		scanned++;
		free(buf);
	}
	closedir(d);
	assert_true(scanned >= 3);
}

static void put_baskets(struct home *h, const char *hhid)
{
	struct store *s = NULL;
	char db[160];
	pos_err e = { 0 };
	struct store_item items[2] = { { "00012345678905", 2, 199 }, { "04006381333931", 1, -1 } };
	struct store_basket b[2];
	enum store_put_result r[2];

	snprintf(db, sizeof(db), "%s/central.db", h->dir);
	assert_int_equal(store_open(db, &s, &e), 0);
	memset(b, 0, sizeof(b));
	for (int i = 0; i < 2; i++) {
		snprintf(b[i].txn, sizeof(b[i].txn), "0190a000-0000-7000-8000-00000000000%c",
			 "01"[i]);
		snprintf(b[i].store, sizeof(b[i].store), "S1");
		snprintf(b[i].terminal, sizeof(b[i].terminal), "T%d", i);
		snprintf(b[i].hhid, sizeof(b[i].hhid), "%s", hhid);
		b[i].items = items;
		b[i].n_items = (size_t)(2 - i);
	}
	b[0].ts_ms = 1795000000000; /* 2026-11-18T... */
	b[1].ts_ms = 1795100000000;
	assert_int_equal(store_put_baskets(s, b, 2, r, &e), 0);
	store_close(s);
}

static void show_merge_and_history_work_on_enrolled_households(void **st)
{
	struct home *h = *st;
	char a[30], b[30], want[128];

	assert_int_equal(run(h, household_main, "a,card:4111111111111111\nb,phone:+14155550123\n",
			     "household", "enroll", "-c", h->conf, NULL),
			 0);
	hhid_of_line(h->o, 1, a);
	hhid_of_line(h->o, 2, b);
	put_baskets(h, a);

	assert_int_equal(run(h, household_main, "", "household", "show", "-c", h->conf, "--hhid", a,
			     NULL),
			 0);
	assert_non_null(strstr(h->o, "tids: 1\n"));
	assert_non_null(strstr(h->o, "baskets: 2\n"));
	assert_non_null(strstr(h->o, "last basket: 2026-"));

	assert_int_equal(run(h, history_main, "", "history", "-c", h->conf, "--hhid", a, NULL), 0);
	assert_non_null(strstr(h->o, "txn,ts,store,terminal,hhid,gtin,qty,price_cents,name\n"
				     "0190a000-0000-7000-8000-000000000001,"));
	assert_non_null(strstr(h->o, ",S1,T0,"));
	assert_non_null(strstr(h->o, ",04006381333931,1,,\n"));
	assert_non_null(strstr(h->o, ",00012345678905,2,199,\n"));

	assert_int_equal(run(h, history_main, "", "history", "-c", h->conf, "--hhid", a, "--format",
			     "json", "--to", "2026-11-19T00:00:00Z", NULL),
			 0);
	assert_non_null(strstr(h->o, "\"txn\":\"0190a000-0000-7000-8000-000000000000\""));
	assert_null(strstr(h->o, "000000000001"));
	assert_non_null(strstr(h->o, "\"price_cents\":null"));
	assert_int_equal(h->o[0], '[');

	assert_int_equal(run(h, history_main, "", "history", "-c", h->conf, "--hhid", a, "--format",
			     "table", NULL),
			 0);
	assert_non_null(strstr(h->o, "2 baskets"));

	assert_int_equal(run(h, household_main, "", "household", "merge", "-c", h->conf, "--from",
			     a, "--into", b, NULL),
			 0);
	assert_int_equal(run(h, household_main, "", "household", "show", "-c", h->conf, "--hhid", b,
			     NULL),
			 0);
	assert_non_null(strstr(h->o, "tids: 2\n"));
	assert_non_null(strstr(h->o, "baskets: 2\n"));
	snprintf(want, sizeof(want), "household %s was merged into %s:", a, b);
	assert_int_equal(run(h, history_main, "", "history", "-c", h->conf, "--hhid", a, NULL), 1);
	assert_non_null(strstr(h->e, want));
	assert_int_equal(run(h, household_main, "", "household", "show", "-c", h->conf, "--hhid", a,
			     NULL),
			 1);
	assert_non_null(strstr(h->e, want));
}

static void unlink_reads_tids_from_stdin(void **st)
{
	struct home *h = *st;
	char a[30];

	assert_int_equal(run(h, household_main, "a,card:4111111111111111\n", "household", "enroll",
			     "-c", h->conf, NULL),
			 0);
	hhid_of_line(h->o, 1, a);
	assert_int_equal(run(h, household_main, "card:4111 1111 1111 1111\nloyalty:55555555\n",
			     "household", "unlink", "-c", h->conf, NULL),
			 1);
	assert_non_null(strstr(h->o, "1,"));
	assert_non_null(strstr(h->o, a));
	assert_non_null(strstr(h->e, "line 2: not enrolled"));
	assert_null(strstr(h->e, "55555555"));
	assert_int_equal(run(h, household_main, "", "household", "show", "-c", h->conf, "--hhid", a,
			     NULL),
			 0);
	assert_non_null(strstr(h->o, "tids: 0\n"));
}

static void usage_errors_exit_2_and_help_exits_0(void **st)
{
	struct home *h = *st;

	assert_int_equal(run(h, household_main, "", "household", NULL), 2);
	assert_non_null(strstr(h->e, "missing action"));
	assert_non_null(strstr(h->e, "(see pos-central household --help)\n"));
	assert_non_null(strchr(h->e, '\n') == h->e + strlen(h->e) - 1 ? h->e : NULL);
	assert_int_equal(run(h, household_main, "", "household", "frobnicate", NULL), 2);
	assert_int_equal(run(h, household_main, "", "household", "enroll", NULL), 2);
	assert_non_null(strstr(h->e, "missing -c CONF"));
	assert_int_equal(run(h, household_main, "", "household", "show", "-c", h->conf, NULL), 2);
	assert_non_null(strstr(h->e, "--hhid"));
	assert_int_equal(run(h, household_main, "", "household", "show", "-c", h->conf, "--hhid",
			     "hh_nope", NULL),
			 2);
	assert_non_null(strstr(h->e, "--hhid has 'n' at character 4: household ids are upper case"));
	assert_int_equal(run(h, household_main, "", "household", "show", "-c", h->conf, "--hhid",
			     "hh_I0000000000000000000000000", NULL),
			 2);
	assert_non_null(strstr(h->e, "'I' at character 4: household ids use 0-9 and A-Z "
				     "without I, L, O and U"));
	assert_int_equal(run(h, household_main, "", "household", "show", "-c", h->conf, "--hhid",
			     "hh_000", NULL),
			 2);
	assert_non_null(strstr(h->e, "has 3 characters after hh_, not 26"));
	assert_int_equal(run(h, household_main, "", "household", "show", "-c", h->conf, "--hhid",
			     "HH_00000000000000000000000000", NULL),
			 2);
	assert_non_null(strstr(h->e, "does not start with hh_"));
	assert_int_equal(run(h, household_main, "", "household", "unlink", "-c", h->conf,
			     "card:4111111111111111", NULL),
			 2);
	assert_null(strstr(h->e, "4111"));
	assert_int_equal(run(h, household_main, "", "household", "enroll", "-c", h->conf, "--hhid",
			     "x", NULL),
			 2);
	assert_non_null(strstr(h->e, "does not take --hhid"));
	assert_int_equal(run(h, household_main, "", "household", "merge", "-c", h->conf, "--to",
			     "x", NULL),
			 2);
	assert_int_equal(run(h, history_main, "", "history", "-c", h->conf, "--hhid",
			     "hh_00000000000000000000000000", "--format", "xml", NULL),
			 2);
	assert_non_null(strstr(h->e, "--format"));
	assert_int_equal(run(h, history_main, "", "history", "-c", h->conf, "--hhid",
			     "hh_00000000000000000000000000", "--from", "yesterday", NULL),
			 2);
	assert_int_equal(run(h, history_main, "", "history", "-c", h->conf, "--bogus", NULL), 2);
	assert_non_null(strstr(h->e, "unknown option --bogus"));
	assert_int_equal(run(h, history_main, "", "history", "-c", NULL), 2);
	assert_non_null(strstr(h->e, "needs a value"));
	assert_int_equal(run(h, history_main, "", "history", "--help", NULL), 0);
	assert_non_null(strstr(h->o, "usage:"));
	assert_int_equal(run(h, household_main, "", "household", "--help", NULL), 0);
	assert_int_equal(run(h, household_main, "", "household", "merge", "--help", NULL), 0);
}

static void history_of_unknown_household_fails(void **st)
{
	struct home *h = *st;

	assert_int_equal(run(h, history_main, "", "history", "-c", h->conf, "--hhid",
			     "hh_00000000000000000000000000", NULL),
			 1);
	assert_non_null(strstr(h->e, "unknown household"));
	assert_string_equal(h->o, "");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(enroll_groups_by_ref_and_reports_bad_lines_without_the_tid),
		T(enroll_rerun_is_idempotent_and_exits_0_when_clean),
		T(enrolled_tid_digits_never_reach_any_file_in_the_home),
		T(show_merge_and_history_work_on_enrolled_households),
		T(unlink_reads_tids_from_stdin),
		T(usage_errors_exit_2_and_help_exits_0),
		T(history_of_unknown_household_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
