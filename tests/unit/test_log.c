/* log: one logfmt line per event, whole lines even from many threads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static char tmpdir[] = "/tmp/test_log.XXXXXX";
static char path[128];
static int saved_stderr = -1;

/* Points stderr at a fresh file. */
static int capture_start(void **st)
{
	int fd;

	(void)st;
	snprintf(path, sizeof path, "%s/err.log", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	saved_stderr = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	return 0;
}

static int capture_stop(void **st)
{
	(void)st;
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	unlink(path);
	return 0;
}

static char *captured(void)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void event_line_has_ts_level_prog_event_and_fields(void **st)
{
	char *out;

	(void)st;
	log_init("pos-test", LOG_LVL_INFO, 0);
	log_info("request", "route=%s status=%d", "/v1/resolve", 200);
	out = captured();
	assert_memory_equal(out, "ts=", 3);
	/* ts=YYYY-MM-DDTHH:MM:SS.mmmZ is 27 characters after "ts=". */
	assert_int_equal(out[3 + 4], '-');
	assert_int_equal(out[3 + 23], 'Z');
	assert_string_equal(out + 3 + 24,
			    " level=info prog=pos-test event=request route=/v1/resolve status=200\n");
}

static void levels_below_the_minimum_are_dropped(void **st)
{
	char *out;

	(void)st;
	log_init("pos-test", LOG_LVL_WARN, 0);
	log_info("quiet", "a=1");
	log_debug("quiet", "a=2");
	log_error("loud", "a=3");
	out = captured();
	assert_null(strstr(out, "event=quiet"));
	assert_non_null(strstr(out, "level=error prog=pos-test event=loud a=3\n"));
	assert_int_equal(strchr(out, '\n')[1], '\0');
}

static void newlines_in_values_cannot_forge_a_second_line(void **st)
{
	char *out;

	(void)st;
	log_init("pos-test", LOG_LVL_DEBUG, 0);
	log_warn("x", "detail=%s", "a\nts=forged level=error");
	out = captured();
	assert_int_equal(strchr(out, '\n')[1], '\0');
}

static void overlong_line_is_cut_and_marked(void **st)
{
	char *big = malloc(10000), *out;

	(void)st;
	assert_non_null(big);
	memset(big, 'a', 9999);
	big[9999] = '\0';
	log_init("pos-test", LOG_LVL_DEBUG, 0);
	log_info("big", "v=%s", big);
	out = captured();
	assert_non_null(strstr(out, " truncated=1\n"));
	assert_int_equal(strchr(out, '\n')[1], '\0');
	assert_true(strlen(out) < 4096);
	free(big);
}

static void *writer(void *arg)
{
	for (int i = 0; i < 500; i++)
		log_info("t", "thread=%d i=%d pad=%s", *(int *)arg, i,
			 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	return NULL;
}

static void lines_from_threads_never_interleave(void **st)
{
	pthread_t th[4];
	int ids[4] = { 0, 1, 2, 3 };
	char *out, *line, *save = NULL;
	int lines = 0;

	(void)st;
	log_init("pos-test", LOG_LVL_INFO, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, writer, &ids[i]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	out = captured();
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		assert_memory_equal(line, "ts=", 3);
		assert_non_null(strstr(line, " event=t thread="));
		assert_non_null(strstr(line, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
		assert_null(strstr(line + 3, "ts="));
		lines++;
	}
	assert_int_equal(lines, 2000);
}

/* Points JOURNAL_STREAM at the file stderr now writes to, as systemd does
 * for a service whose StandardError is the journal. */
static void journal_stream_is_stderr(void)
{
	struct stat st;
	char v[64];

	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
}

static void under_journald_each_line_starts_with_its_priority(void **st)
{
	char *out;

	(void)st;
	journal_stream_is_stderr();
	log_init("t", LOG_LVL_DEBUG, 0);
	assert_true(log_to_journal());
	log_error("e1", "x=1");
	log_warn("w1", "x=2");
	log_info("i1", "x=3");
	log_debug("d1", "x=4");
	unsetenv("JOURNAL_STREAM");
	log_init("t", LOG_LVL_INFO, 0);
	out = captured();
	assert_non_null(strstr(out, "<3>ts="));
	assert_non_null(strstr(out, "<4>ts="));
	assert_non_null(strstr(out, "<6>ts="));
	assert_non_null(strstr(out, "<7>ts="));
	assert_true(strstr(out, "<3>ts=") < strstr(out, "event=e1"));
	assert_true(strstr(out, "<7>ts=") < strstr(out, "event=d1"));
}

static void a_journal_stream_of_another_file_leaves_plain_text(void **st)
{
	(void)st;
	/* A child of the service whose stderr went elsewhere, or no journal. */
	setenv("JOURNAL_STREAM", "1:2", 1);
	log_init("t", LOG_LVL_INFO, 0);
	assert_false(log_to_journal());
	log_warn("w1", "x=1");
	setenv("JOURNAL_STREAM", "garbage", 1);
	log_init("t", LOG_LVL_INFO, 0);
	assert_false(log_to_journal());
	unsetenv("JOURNAL_STREAM");
	log_init("t", LOG_LVL_INFO, 0);
	assert_false(log_to_journal());
	log_warn("w2", "x=2");
	assert_null(strchr(captured(), '<'));
	assert_non_null(strstr(captured(), "ts="));
}

static void set_level_changes_what_is_printed(void **st)
{
	char *out;

	(void)st;
	log_init("t", LOG_LVL_WARN, 0);
	log_info("before", "x=1");
	log_set_level(LOG_LVL_DEBUG);
	log_debug("after", "x=2");
	log_set_level(LOG_LVL_INFO);
	out = captured();
	assert_null(strstr(out, "event=before"));
	assert_non_null(strstr(out, "event=after"));
}

static void quote_escapes_spaces_quotes_and_controls(void **st)
{
	char b[64], tiny[8];

	(void)st;
	assert_string_equal(log_q(b, sizeof b, "plain"), "plain");
	assert_string_equal(log_q(b, sizeof b, "a b"), "\"a b\"");
	assert_string_equal(log_q(b, sizeof b, "say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
	assert_string_equal(log_q(b, sizeof b, "l1\nl2\x01"), "\"l1\\nl2\\x01\"");
	assert_string_equal(log_q(b, sizeof b, ""), "\"\"");
	assert_string_equal(log_q(b, sizeof b, NULL), "\"\"");
	assert_string_equal(log_q(tiny, sizeof tiny, "a b c d e f"), "\"a b c\"");
	assert_string_equal(log_q(tiny, sizeof tiny, "abcdefghij"), "abcdefg");
}

static void level_names_parse(void **st)
{
	(void)st;
	assert_int_equal(log_level_parse("debug"), LOG_LVL_DEBUG);
	assert_int_equal(log_level_parse("info"), LOG_LVL_INFO);
	assert_int_equal(log_level_parse("warn"), LOG_LVL_WARN);
	assert_int_equal(log_level_parse("error"), LOG_LVL_ERROR);
	assert_int_equal(log_level_parse("loud"), -1);
	assert_int_equal(log_level_parse(NULL), -1);
}

static int kicks;

static void count_kick(void *arg)
{
	(void)arg;
	kicks++;
}

static void buffered_lines_wait_for_a_flush_and_warnings_do_not(void **st)
{
	char *out;

	(void)st;
	log_init("pos-test", LOG_LVL_DEBUG, 0);
	kicks = 0;
	assert_int_equal(log_buffer_start(count_kick, NULL), 0);
	log_info("request", "n=1");
	log_debug("request", "n=2");
	assert_string_equal(captured(), "");
	assert_int_equal(kicks, 1); /* once per empty-to-filled */
	log_warn("odd", "n=3");     /* flushes the two first, in order */
	out = captured();
	assert_non_null(strstr(out, "n=1\n"));
	assert_true(strstr(out, "n=1\n") < strstr(out, "n=2\n"));
	assert_true(strstr(out, "n=2\n") < strstr(out, "n=3\n"));
	log_info("request", "n=4");
	assert_int_equal(kicks, 2);
	assert_null(strstr(captured(), "n=4"));
	log_buffer_flush();
	assert_non_null(strstr(captured(), "n=4\n"));
	log_info("request", "n=5");
	log_buffer_stop(); /* flushes; then lines go out at once */
	assert_non_null(strstr(captured(), "n=5\n"));
	log_info("request", "n=6");
	assert_non_null(strstr(captured(), "n=6\n"));
	assert_int_equal(kicks, 3);
}

static void a_full_buffer_is_written_before_the_next_line(void **st)
{
	char *out;
	int lines = 0;

	(void)st;
	log_init("pos-test", LOG_LVL_INFO, 0);
	assert_int_equal(log_buffer_start(NULL, NULL), 0);
	/* ~100-byte lines: the buffer fills well before 1,000 of them. */
	for (int i = 0; i < 1000; i++)
		log_info("request", "i=%04d pad=%s", i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	out = captured();
	assert_true(strlen(out) > 0);
	assert_true(strlen(out) <= 1000 * 120 - LOG_BUFFER_BYTES / 2);
	/* What was written is whole lines, in order. */
	for (char *p = out; (p = strstr(p, " i=")) != NULL; p++) {
		char want[16];

		snprintf(want, sizeof want, " i=%04d ", lines);
		assert_memory_equal(p, want, strlen(want));
		lines++;
	}
	assert_int_equal(out[strlen(out) - 1], '\n');
	log_buffer_stop();
	lines = 0;
	out = captured();
	for (char *p = out; (p = strstr(p, " i=")) != NULL; p++)
		lines++;
	assert_int_equal(lines, 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(event_line_has_ts_level_prog_event_and_fields,
						capture_start, capture_stop),
		cmocka_unit_test_setup_teardown(levels_below_the_minimum_are_dropped, capture_start,
						capture_stop),
		cmocka_unit_test_setup_teardown(newlines_in_values_cannot_forge_a_second_line,
						capture_start, capture_stop),
		cmocka_unit_test_setup_teardown(overlong_line_is_cut_and_marked, capture_start,
						capture_stop),
		cmocka_unit_test_setup_teardown(lines_from_threads_never_interleave, capture_start,
						capture_stop),
		cmocka_unit_test_setup_teardown(buffered_lines_wait_for_a_flush_and_warnings_do_not,
						capture_start, capture_stop),
		cmocka_unit_test_setup_teardown(a_full_buffer_is_written_before_the_next_line,
						capture_start, capture_stop),
		cmocka_unit_test_setup_teardown(under_journald_each_line_starts_with_its_priority,
						capture_start, capture_stop),
		cmocka_unit_test_setup_teardown(a_journal_stream_of_another_file_leaves_plain_text,
						capture_start, capture_stop),
		cmocka_unit_test_setup_teardown(set_level_changes_what_is_printed, capture_start,
						capture_stop),
		cmocka_unit_test(quote_escapes_spaces_quotes_and_controls),
		cmocka_unit_test(level_names_parse),
	};
	int rc;

	if (!mkdtemp(tmpdir))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(tmpdir);
	return rc;
}
