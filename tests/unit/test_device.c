/* device: a scanner on a real pseudo-terminal, reached through a symlink
 * like udev's or pos-hwsim's, delivers framed codes to the loop; noise is
 * reported, not delivered; closing the master is an unplug (DEVICE_DOWN)
 * and a new pty behind the re-pointed link comes back up (DEVICE_UP).
 * Every wait is a bounded loop run: a broken device layer fails, never
 * hangs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "device.h"
#include "profile.h"

#define MAXF 16
#define WAIT_S 10

struct world {
	char dir[64];
	char link[128];
	struct event_base *base;
	struct device *dev;
	int master;
	char slave[64];
	char frames[MAXF][128];
	size_t nframes;
	int ups, downs, rejects;
	char last_up[256];
	char last_reject[256];
};

/* A pty pair, the way pos-hwsim makes one: the agent opens the slave. */
static int pty_open(char *slave, size_t cap)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);

	assert_true(m >= 0);
	assert_int_equal(grantpt(m), 0);
	assert_int_equal(unlockpt(m), 0);
	assert_int_equal(ptsname_r(m, slave, cap), 0);
	return m;
}

/* Atomically points the link at a new target, as pos-hwsim does. */
static void relink(struct world *w, const char *target)
{
	char tmp[160];

	snprintf(tmp, sizeof tmp, "%s.new", w->link);
	unlink(tmp);
	assert_int_equal(symlink(target, tmp), 0);
	assert_int_equal(rename(tmp, w->link), 0);
}

static void on_frame(struct device *d, const char *frame, size_t len, void *arg)
{
	struct world *w = arg;

	(void)d;
	assert_int_equal(strlen(frame), len);
	if (w->nframes < MAXF && len < sizeof w->frames[0])
		memcpy(w->frames[w->nframes++], frame, len + 1);
	event_base_loopbreak(w->base);
}

static void on_event(struct device *d, enum device_event ev, const char *detail, void *arg)
{
	struct world *w = arg;

	assert_non_null(detail);
	assert_true(ev == DEVICE_UP || device_is_up(d) == false || ev == DEVICE_REJECTED);
	switch (ev) {
	case DEVICE_UP:
		w->ups++;
		snprintf(w->last_up, sizeof w->last_up, "%s", detail);
		break;
	case DEVICE_DOWN:
		w->downs++;
		break;
	case DEVICE_REJECTED:
		w->rejects++;
		snprintf(w->last_reject, sizeof w->last_reject, "%s", detail);
		break;
	}
	event_base_loopbreak(w->base);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the loop until *counter reaches want, at most WAIT_S seconds. */
static void run_until(struct world *w, const int *counter, int want)
{
	double end = now_s() + WAIT_S;

	while (*counter < want) {
		struct timeval tv = { 0, 200000 };
		assert_true(now_s() < end);
		event_base_loopexit(w->base, &tv);
		event_base_dispatch(w->base);
	}
}

static void run_until_frames(struct world *w, size_t want)
{
	double end = now_s() + WAIT_S;

	while (w->nframes < want) {
		struct timeval tv = { 0, 200000 };
		assert_true(now_s() < end);
		event_base_loopexit(w->base, &tv);
		event_base_dispatch(w->base);
	}
}

static void put(int fd, const char *s)
{
	size_t n = strlen(s);
	assert_int_equal(write(fd, s, n), (ssize_t)n);
}

static int setup(void **st)
{
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	snprintf(w->dir, sizeof w->dir, "/tmp/test_device.XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	snprintf(w->link, sizeof w->link, "%s/scanner.tty", w->dir);
	w->base = event_base_new();
	assert_non_null(w->base);
	w->master = -1;
	unsetenv("POS_PROFILE_DIR");
	*st = w;
	return 0;
}

static int teardown(void **st)
{
	struct world *w = *st;

	device_free(w->dev);
	if (w->master >= 0)
		close(w->master);
	event_base_free(w->base);
	unlink(w->link);
	rmdir(w->dir);
	free(w);
	return 0;
}

static void start(struct world *w, enum device_role role, const char *profile)
{
	struct device_cfg c;
	pos_err e;

	memset(&c, 0, sizeof c);
	snprintf(c.name, sizeof c.name, "flatbed");
	c.role = role;
	snprintf(c.port, sizeof c.port, "%s", w->link);
	snprintf(c.profile, sizeof c.profile, "%s", profile);
	assert_int_equal(device_start(w->base, &c, on_frame, on_event, w, &w->dev, &e), 0);
	assert_false(device_is_up(w->dev)); /* nothing happens inside device_start */
	assert_int_equal(w->ups + w->downs, 0);
}

static void plug(struct world *w)
{
	w->master = pty_open(w->slave, sizeof w->slave);
	relink(w, w->slave);
}

static void codes_written_to_the_pty_arrive_as_frames(void **st)
{
	struct world *w = *st;

	plug(w);
	start(w, DEVICE_SCANNER, "scanner-crlf");
	run_until(w, &w->ups, 1);
	assert_true(device_is_up(w->dev));
	assert_string_equal(w->last_up, w->slave); /* the link was followed */
	assert_string_equal(device_name(w->dev), "flatbed");
	assert_int_equal(device_role_of(w->dev), DEVICE_SCANNER);
	assert_int_equal(device_profile(w->dev)->aim, PROFILE_AIM_OPTIONAL);

	put(w->master, "4006381333931\r\n]E05901234123457\r");
	put(w->master, "\n96385");
	put(w->master, "074\n");
	run_until_frames(w, 3);
	assert_string_equal(w->frames[0], "4006381333931");
	assert_string_equal(w->frames[1], "]E05901234123457");
	assert_string_equal(w->frames[2], "96385074");
	assert_int_equal(w->rejects, 0);
}

static void noise_and_over_long_lines_are_reported_not_delivered(void **st)
{
	struct world *w = *st;
	char longline[1100];

	plug(w);
	start(w, DEVICE_SCANNER, "scanner-crlf");
	run_until(w, &w->ups, 1);
	put(w->master, "\x01\x7f\xfe garbage\r\n");
	run_until(w, &w->rejects, 1);
	assert_non_null(strstr(w->last_reject, "bad bytes"));
	memset(longline, '7', sizeof longline - 3);
	memcpy(longline + sizeof longline - 3, "\r\n", 3);
	put(w->master, longline);
	put(w->master, "4006381333931\r\n");
	run_until_frames(w, 1);
	assert_int_equal(w->rejects, 2);
	assert_non_null(strstr(w->last_reject, "over-long"));
	assert_null(strstr(w->last_reject, "7777")); /* never the data */
	assert_string_equal(w->frames[0], "4006381333931");
	assert_int_equal(w->nframes, 1);
}

static void closing_the_master_is_an_unplug_and_a_new_pty_comes_back_up(void **st)
{
	struct world *w = *st;
	char old[64];
	int m2;

	plug(w);
	start(w, DEVICE_SCANNER, "scanner-crlf");
	run_until(w, &w->ups, 1);
	put(w->master, "4006381333931\r\n");
	run_until_frames(w, 1);

	/* Unplug: the new pty is made first, so it gets another name. */
	snprintf(old, sizeof old, "%s", w->slave);
	m2 = pty_open(w->slave, sizeof w->slave);
	assert_string_not_equal(old, w->slave);
	close(w->master);
	w->master = m2;
	run_until(w, &w->downs, 1);
	assert_false(device_is_up(w->dev));

	relink(w, w->slave);
	run_until(w, &w->ups, 2);
	assert_true(device_is_up(w->dev));
	assert_string_equal(w->last_up, w->slave);
	assert_int_equal(w->downs, 1);
	put(w->master, "5901234123457\r\n");
	run_until_frames(w, 2);
	assert_string_equal(w->frames[1], "5901234123457");
}

static void a_missing_port_is_reported_down_once_then_comes_up(void **st)
{
	struct world *w = *st;
	double end;

	start(w, DEVICE_CARDREADER, "msr-ascii");
	run_until(w, &w->downs, 1);
	/* Let it retry a few times (250 + 500 ms): still one report. */
	end = now_s() + 0.8;
	while (now_s() < end) {
		struct timeval tv = { 0, 100000 };
		event_base_loopexit(w->base, &tv);
		event_base_dispatch(w->base);
	}
	assert_int_equal(w->downs, 1);
	plug(w);
	run_until(w, &w->ups, 1);
	assert_int_equal(w->downs, 1);
	put(w->master, "%B4242424242424242^TEST/CARD^2812101000000000000?;4242424242424242=2812101000000?\r");
	run_until_frames(w, 1);
	assert_string_equal(w->frames[0],
			    "%B4242424242424242^TEST/CARD^2812101000000000000?;4242424242424242=2812101000000?");
}

static void without_a_terminator_the_idle_timeout_ends_the_code(void **st)
{
	struct world *w = *st;

	plug(w);
	start(w, DEVICE_SCANNER, "zebra-default");
	run_until(w, &w->ups, 1);
	put(w->master, "40063813");
	put(w->master, "33931");
	run_until_frames(w, 1);
	assert_string_equal(w->frames[0], "4006381333931");
	assert_int_equal(w->rejects, 0);
}

static void bad_configuration_is_refused_at_start(void **st)
{
	struct world *w = *st;
	struct device_cfg c;
	struct device *d = NULL;
	pos_err e;

	memset(&c, 0, sizeof c);
	snprintf(c.name, sizeof c.name, "msr");
	c.role = DEVICE_CARDREADER;
	snprintf(c.port, sizeof c.port, "usb:0801:zz");
	snprintf(c.profile, sizeof c.profile, "msr-ascii");
	assert_int_equal(device_start(w->base, &c, on_frame, on_event, w, &d, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "device.msr"));
	assert_non_null(strstr(e.msg, "usb:VID:PID"));

	snprintf(c.port, sizeof c.port, "/dev/pos/msr-0");
	snprintf(c.profile, sizeof c.profile, "no-such-profile");
	assert_int_equal(device_start(w->base, &c, on_frame, on_event, w, &d, &e), POS_ENOTFOUND);
	assert_non_null(strstr(e.msg, "device.msr"));

	snprintf(c.profile, sizeof c.profile, "scanner-crlf");
	assert_int_equal(device_start(w->base, &c, on_frame, on_event, w, &d, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "role cardreader"));

	c.role = (enum device_role)7;
	assert_int_equal(device_start(w->base, &c, on_frame, on_event, w, &d, &e), POS_EINVAL);
	c.role = DEVICE_CARDREADER;
	c.port[0] = '\0';
	assert_int_equal(device_start(w->base, &c, on_frame, on_event, w, &d, &e), POS_EINVAL);
	assert_null(d);

	/* A USB identity with a serial number is accepted (and looked up later). */
	snprintf(c.port, sizeof c.port, "usb:0801:0011:B123456");
	snprintf(c.profile, sizeof c.profile, "msr-ascii");
	assert_int_equal(device_start(w->base, &c, on_frame, on_event, w, &d, &e), 0);
	run_until(w, &w->downs, 1); /* no such USB device here */
	device_free(d);
}

static void role_names_round_trip(void **st)
{
	enum device_role r;

	(void)st;
	assert_int_equal(device_role_parse("scanner", &r), 0);
	assert_int_equal(r, DEVICE_SCANNER);
	assert_int_equal(device_role_parse("cardreader", &r), 0);
	assert_string_equal(device_role_name(r), "cardreader");
	assert_int_equal(device_role_parse("printer", &r), -1);
}

static void doctor_says_which_device_is_where(void **st)
{
	struct world *w = *st;
	struct device_cfg c[2];
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	plug(w);
	memset(c, 0, sizeof c);
	snprintf(c[0].name, sizeof c[0].name, "flatbed");
	c[0].role = DEVICE_SCANNER;
	snprintf(c[0].port, sizeof c[0].port, "%s", w->link);
	snprintf(c[1].name, sizeof c[1].name, "msr");
	c[1].role = DEVICE_CARDREADER;
	snprintf(c[1].port, sizeof c[1].port, "usb:ffff:fffe");
	f = open_memstream(&text, &len);
	assert_non_null(f);
	/* One of the two is on no port: the count doctor exits 1 on. */
	assert_int_equal(device_doctor(f, c, 2), 1);
	fclose(f);
	assert_non_null(strstr(text, "serial ports:"));
	assert_non_null(strstr(text, "devices:"));
	assert_non_null(strstr(text, "flatbed (scanner)"));
	assert_non_null(strstr(text, w->slave));
	assert_non_null(strstr(text, "msr (cardreader): usb:ffff:fffe -> PROBLEM: not found"));
	free(text);
}

static void port_syntax_is_checked(void **st)
{
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(device_port_check("/dev/pos/scanner-x", &e), 0);
	assert_int_equal(device_port_check("usb:05e0:1200", &e), 0);
	assert_int_equal(device_port_check("usb:05e0:1200:S123", &e), 0);
	assert_int_equal(device_port_check("usb:zz:12", &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "usb:VID:PID"));
	assert_int_equal(device_port_check("usb:05e0", &e), POS_EINVAL);
	assert_int_equal(device_port_check("usb:123456:1", &e), POS_EINVAL);
	assert_int_equal(device_port_check("", &e), POS_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(port_syntax_is_checked),
		cmocka_unit_test_setup_teardown(codes_written_to_the_pty_arrive_as_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(noise_and_over_long_lines_are_reported_not_delivered, setup, teardown),
		cmocka_unit_test_setup_teardown(closing_the_master_is_an_unplug_and_a_new_pty_comes_back_up, setup, teardown),
		cmocka_unit_test_setup_teardown(a_missing_port_is_reported_down_once_then_comes_up, setup, teardown),
		cmocka_unit_test_setup_teardown(without_a_terminator_the_idle_timeout_ends_the_code, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_configuration_is_refused_at_start, setup, teardown),
		cmocka_unit_test_setup_teardown(role_names_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(doctor_says_which_device_is_where, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
