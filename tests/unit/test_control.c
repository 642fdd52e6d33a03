/* control: the socket a POS application talks to. One reply per request,
 * every event to every client, a client that stops reading is dropped
 * while the others go on, and the parser refuses what is not a request. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"

struct fx {
	char dir[64];
	char path[128];
	struct event_base *base;
	struct control *ctl;
	int requests;
	enum control_cmd last_cmd;
	char last_arg[CONTROL_ARG_MAX + 1];
};

static json_t *handler(const struct control_request *req, void *arg)
{
	struct fx *f = arg;

	f->requests++;
	f->last_cmd = req->cmd;
	memcpy(f->last_arg, req->arg, sizeof f->last_arg);
	return json_pack("{s:b, s:s}", "ok", 1, "cmd", control_cmd_name(req->cmd));
}

static json_t *welcome(void *arg)
{
	(void)arg;
	return json_pack("[{s:s, s:s}]", "event", "device", "state", "up");
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	pos_err e;

	snprintf(f->dir, sizeof f->dir, "/tmp/test_control.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof f->path, "%s/agent.sock", f->dir);
	f->base = event_base_new();
	if (!f->base || control_new(f->base, f->path, handler, f, &f->ctl, &e) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	control_free(f->ctl);
	event_base_free(f->base);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Runs the loop until nothing is left to do right now; unix sockets hand
 * data over inside the kernel, so no waiting is involved. */
static void pump(struct fx *f)
{
	for (int i = 0; i < 20; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
}

static int client(struct fx *f)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	pump(f);
	return fd;
}

static void say(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Everything the agent has sent so far (non-blocking). */
static size_t hear(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	for (;;) {
		ssize_t r = recv(fd, buf + n, cap - 1 - n, MSG_DONTWAIT);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return n;
}

static void a_request_gets_one_reply_after_the_welcome(void **state)
{
	struct fx *f = *state;
	char buf[4096];
	int fd;

	control_set_welcome(f->ctl, welcome);
	fd = client(f);
	say(fd, "{\"cmd\":\"status\"}\n");
	pump(f);
	hear(fd, buf, sizeof buf);
	assert_string_equal(buf, "{\"event\":\"device\",\"state\":\"up\"}\n"
				 "{\"ok\":true,\"cmd\":\"status\"}\n");
	assert_int_equal(f->requests, 1);
	close(fd);
}

static void requests_split_or_batched_are_each_answered(void **state)
{
	struct fx *f = *state;
	char buf[4096];
	int fd = client(f);

	say(fd, "{\"cmd\":\"scan\",\"co");
	pump(f);
	assert_int_equal(f->requests, 0);
	say(fd, "de\":\"9520000000011\"}\r\n\n{\"cmd\":\"total\"}\n");
	pump(f);
	hear(fd, buf, sizeof buf);
	assert_string_equal(buf, "{\"ok\":true,\"cmd\":\"scan\"}\n{\"ok\":true,\"cmd\":\"total\"}\n");
	assert_int_equal(f->requests, 2);
	close(fd);
}

static void a_bad_request_is_refused_and_the_handler_never_sees_it(void **state)
{
	struct fx *f = *state;
	char buf[4096];
	int fd = client(f);

	say(fd, "{\"cmd\":\"fly\"}\nnot json\n{\"cmd\":\"total\",\"x\":1}\n");
	pump(f);
	hear(fd, buf, sizeof buf);
	assert_non_null(strstr(buf, "\"error\":\"unknown_command\""));
	assert_non_null(strstr(buf, "\"error\":\"bad_json\""));
	assert_non_null(strstr(buf, "\"error\":\"bad_request\""));
	assert_int_equal(f->requests, 0);
	close(fd);
}

static void every_client_receives_every_event(void **state)
{
	struct fx *f = *state;
	char buf[4096];
	int a = client(f), b = client(f);
	json_t *ev = json_pack("{s:s, s:s}", "event", "uploaded", "txn", "t1");

	assert_int_equal(control_clients(f->ctl), 2);
	control_broadcast(f->ctl, ev);
	json_decref(ev);
	pump(f);
	hear(a, buf, sizeof buf);
	assert_string_equal(buf, "{\"event\":\"uploaded\",\"txn\":\"t1\"}\n");
	hear(b, buf, sizeof buf);
	assert_string_equal(buf, "{\"event\":\"uploaded\",\"txn\":\"t1\"}\n");
	close(a);
	close(b);
	pump(f);
	assert_int_equal(control_clients(f->ctl), 0);
}

static void a_client_that_does_not_read_is_dropped_and_others_go_on(void **state)
{
	struct fx *f = *state;
	static char buf[1 << 16];
	char pad[1000];
	int reader = client(f), sleeper = client(f);
	size_t got = 0;
	json_t *ev;

	memset(pad, 'x', sizeof pad - 1);
	pad[sizeof pad - 1] = '\0';
	ev = json_pack("{s:s, s:s}", "event", "device", "detail", pad);
	for (int i = 0; i < 2000 && control_clients(f->ctl) == 2; i++) {
		control_broadcast(f->ctl, ev);
		pump(f);
		got += hear(reader, buf, sizeof buf);
	}
	json_decref(ev);
	assert_int_equal(control_clients(f->ctl), 1);
	assert_true(got > CONTROL_OUT_MAX);
	/* The sleeper finds its connection closed once it catches up. */
	while (recv(sleeper, buf, sizeof buf, MSG_DONTWAIT) > 0)
		;
	assert_int_equal(recv(sleeper, buf, sizeof buf, MSG_DONTWAIT), 0);
	close(reader);
	close(sleeper);
}

static void an_over_long_line_is_refused_and_the_connection_closed(void **state)
{
	struct fx *f = *state;
	char big[CONTROL_MAX_LINE + 100], buf[4096];
	int fd = client(f);

	memset(big, ' ', sizeof big);
	big[sizeof big - 1] = '\0';
	say(fd, big);
	pump(f);
	hear(fd, buf, sizeof buf);
	assert_non_null(strstr(buf, "\"error\":\"line_too_long\""));
	assert_int_equal(recv(fd, buf, sizeof buf, MSG_DONTWAIT), 0);
	assert_int_equal(f->requests, 0);
	close(fd);
}

static void the_socket_is_0660_and_not_taken_over_while_alive(void **state)
{
	struct fx *f = *state;
	struct control *second = NULL;
	struct stat st;
	pos_err e;

	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_int_equal(control_new(f->base, f->path, handler, f, &second, &e), POS_EIO);
	assert_non_null(strstr(e.msg, "another agent"));
	assert_null(second);
}

static void a_stale_socket_file_is_replaced_and_removed_at_the_end(void **state)
{
	struct fx *f = *state;
	struct control *c2 = NULL;
	char path2[160];
	struct sockaddr_un sa;
	struct stat st;
	pos_err e;
	int fd;

	/* A socket node nobody listens on: what kill -9 leaves behind. */
	snprintf(path2, sizeof path2, "%s/stale.sock", f->dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path2, strlen(path2) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	close(fd);
	assert_int_equal(control_new(f->base, path2, handler, f, &c2, &e), 0);
	control_free(c2);
	assert_int_equal(stat(path2, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void the_parser_takes_exactly_the_documented_requests(void **state)
{
	struct control_request r;
	const char *code;
	pos_err e;

	(void)state;
#define OK(s, c)                                                                     \
	do {                                                                         \
		assert_int_equal(control_parse_request(s, strlen(s), &r, &code, &e), 0); \
		assert_int_equal(r.cmd, c);                                          \
	} while (0)
#define NO(s, want)                                                                  \
	do {                                                                         \
		assert_true(control_parse_request(s, strlen(s), &r, &code, &e) < 0);  \
		assert_string_equal(code, want);                                     \
	} while (0)
	OK("{\"cmd\":\"status\"}", CONTROL_STATUS);
	OK("{\"cmd\":\"total\"}", CONTROL_TOTAL);
	OK("{\"cmd\":\"void\"}", CONTROL_VOID);
	OK("{\"cmd\":\"cancel\"}", CONTROL_CANCEL);
	OK("{\"cmd\":\"tid\",\"tid\":\"phone:+15550100999\"}", CONTROL_TID);
	assert_string_equal(r.arg, "phone:+15550100999");
	control_request_wipe(&r);
	assert_int_equal(r.arg[0], '\0');
	OK("{\"cmd\":\"scan\",\"code\":\"]E09520000000011\"}", CONTROL_SCAN);
	assert_string_equal(r.arg, "]E09520000000011");
	NO("", "bad_request");
	NO("[]", "bad_request");
	NO("{\"cmd\":\"tid\"}", "bad_request");
	NO("{\"cmd\":\"tid\",\"tid\":\"\"}", "bad_request");
	NO("{\"cmd\":\"tid\",\"tid\":7}", "bad_request");
	NO("{\"cmd\":\"status\",\"tid\":\"x\"}", "bad_request");
	NO("{\"cmd\":\"total\",\"cmd\":\"void\"}", "bad_json");
	NO("{\"cmd\":\"scan\",\"code\":\"a\\u0000b\"}", "bad_json");
	NO("{\"cmd\":\"reboot\"}", "unknown_command");
	NO("{\"cmd\":\"total\"", "bad_json");
#undef OK
#undef NO
}

static void a_refusal_never_repeats_the_tid(void **state)
{
	struct control_request r;
	const char *code;
	pos_err e;
	const char *s = "{\"cmd\":\"tid\",\"tid\":\"phone:+15550100999\",\"x\":\"phone:+15550100999\"}";

	(void)state;
	assert_true(control_parse_request(s, strlen(s), &r, &code, &e) < 0);
	assert_null(strstr(e.msg, "5550100999"));
	assert_int_equal(r.arg[0], '\0');
	s = "{\"cmd\":\"tid\",\"tid\":\"phone:+15550100999\"";
	assert_true(control_parse_request(s, strlen(s), &r, &code, &e) < 0);
	assert_null(strstr(e.msg, "5550100999"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_request_gets_one_reply_after_the_welcome, setup,
						teardown),
		cmocka_unit_test_setup_teardown(requests_split_or_batched_are_each_answered, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_bad_request_is_refused_and_the_handler_never_sees_it,
						setup, teardown),
		cmocka_unit_test_setup_teardown(every_client_receives_every_event, setup, teardown),
		cmocka_unit_test_setup_teardown(a_client_that_does_not_read_is_dropped_and_others_go_on,
						setup, teardown),
		cmocka_unit_test_setup_teardown(an_over_long_line_is_refused_and_the_connection_closed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(the_socket_is_0660_and_not_taken_over_while_alive,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_stale_socket_file_is_replaced_and_removed_at_the_end,
						setup, teardown),
		cmocka_unit_test(the_parser_takes_exactly_the_documented_requests),
		cmocka_unit_test(a_refusal_never_repeats_the_tid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
