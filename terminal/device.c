#include "device.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>
#include <libserialport.h>

#include "framer.h"
#include "log.h"
#include "profile.h"
#include "wipe.h"

/*
 * Why the tty is opened here and not with sp_open(): libserialport 0.1.1
 * (Debian 12) cannot even look up a pseudo-terminal slave
 * (sp_get_port_by_name("/dev/pts/N") fails: it finds no sysfs entry), and
 * the simulator and every device test run on ptys. So ports are opened
 * with open(O_RDWR|O_NOCTTY|O_NONBLOCK|O_CLOEXEC) and set up with termios,
 * the same calls libserialport makes for a native port; libserialport
 * stays in charge of what it does well: enumeration, USB identities
 * (usb:VID:PID[:serial]) and `doctor`.
 */

#define DEVICE_BACKOFF_MIN_MS 250
#define DEVICE_BACKOFF_MAX_MS 5000
#define DEVICE_READ_CHUNK 512
/* Reads per wake-up, so a chattering port cannot starve the loop. */
#define DEVICE_READS_PER_WAKE 16
#define DEVICE_SERIAL_MAX 128
#define DEVICE_DETAIL_MAX 320

enum device_state { DEVICE_ST_INIT = 0, DEVICE_ST_UP, DEVICE_ST_DOWN };

struct device {
	struct event_base *base;
	struct device_cfg cfg;
	struct profile prof;
	struct framer *fr;
	device_frame_fn on_frame;
	device_event_fn on_event;
	void *arg;

	bool usb; /* port is usb:VID:PID[:serial] */
	int vid, pid;
	char serial[DEVICE_SERIAL_MAX];

	int fd;
	struct termios saved; /* restored on close, as a good tty citizen */
	bool saved_ok;
	char tty[PATH_MAX]; /* the path actually opened */
	enum device_state state;
	char down_why[DEVICE_DETAIL_MAX];
	unsigned backoff_ms;
	struct event *ev_read, *ev_retry, *ev_idle;
};

const char *device_role_name(enum device_role r)
{
	switch (r) {
	case DEVICE_SCANNER:
		return "scanner";
	case DEVICE_CARDREADER:
		return "cardreader";
	}
	return "unknown";
}

int device_role_parse(const char *s, enum device_role *out)
{
	if (!s || !out)
		return -1;
	if (strcmp(s, "scanner") == 0)
		*out = DEVICE_SCANNER;
	else if (strcmp(s, "cardreader") == 0)
		*out = DEVICE_CARDREADER;
	else
		return -1;
	return 0;
}

const char *device_name(const struct device *d)
{
	return d ? d->cfg.name : "";
}

enum device_role device_role_of(const struct device *d)
{
	return d ? d->cfg.role : DEVICE_SCANNER;
}

bool device_is_up(const struct device *d)
{
	return d && d->state == DEVICE_ST_UP;
}

const struct profile *device_profile(const struct device *d)
{
	return d ? &d->prof : NULL;
}

/* Parses hex of 1..4 digits up to ':' or the end; advances *s. */
static int device_hex16(const char **s, int *out)
{
	const char *p = *s;
	int v = 0, n = 0;

	for (; *p && *p != ':'; p++, n++) {
		int dgt;
		if (*p >= '0' && *p <= '9')
			dgt = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			dgt = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			dgt = *p - 'A' + 10;
		else
			return -1;
		if (n == 4)
			return -1;
		v = v * 16 + dgt;
	}
	if (n == 0)
		return -1;
	*out = v;
	*s = p;
	return 0;
}

/* usb:VID:PID[:serial], VID and PID in hex. */
static int device_parse_usb(const char *spec, int *vid, int *pid, char *serial, size_t cap)
{
	const char *p = spec + 4;
	size_t n;

	if (device_hex16(&p, vid) < 0 || *p != ':')
		return -1;
	p++;
	if (device_hex16(&p, pid) < 0)
		return -1;
	serial[0] = '\0';
	if (*p == '\0')
		return 0;
	p++;
	n = strlen(p);
	if (n == 0 || n >= cap)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
			return -1;
	memcpy(serial, p, n + 1);
	return 0;
}

/* Finds the port name of a USB identity among the enumerated ports. */
static int device_usb_lookup(int vid, int pid, const char *serial, char *path, size_t cap)
{
	struct sp_port **list = NULL;
	int rc = -1;

	if (sp_list_ports(&list) != SP_OK)
		return -1;
	for (size_t i = 0; list[i]; i++) {
		int v, p;
		const char *sn, *name;

		if (sp_get_port_transport(list[i]) != SP_TRANSPORT_USB)
			continue;
		if (sp_get_port_usb_vid_pid(list[i], &v, &p) != SP_OK || v != vid || p != pid)
			continue;
		sn = sp_get_port_usb_serial(list[i]);
		if (serial[0] && (!sn || strcmp(sn, serial) != 0))
			continue;
		name = sp_get_port_name(list[i]);
		if (name && strlen(name) < cap) {
			memcpy(path, name, strlen(name) + 1);
			rc = 0;
			break;
		}
	}
	sp_free_port_list(list);
	return rc;
}

static speed_t device_speed(long baud)
{
	switch (baud) {
	case 1200: return B1200;
	case 2400: return B2400;
	case 4800: return B4800;
	case 19200: return B19200;
	case 38400: return B38400;
	case 57600: return B57600;
	case 115200: return B115200;
	case 230400: return B230400;
	default: return B9600;
	}
}

/* Raw mode with the profile's line settings: no echo, no CR/LF
 * translation, every byte as it comes (VMIN 1, non-blocking fd). */
static int device_termios(int fd, const struct profile *p, struct termios *saved, bool *saved_ok)
{
	struct termios t;
	static const tcflag_t sizes[] = { CS5, CS6, CS7, CS8 };

	*saved_ok = tcgetattr(fd, saved) == 0;
	if (!*saved_ok)
		return -1;
	t = *saved;
	cfmakeraw(&t);
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
	t.c_cflag |= sizes[p->data_bits - 5] | CLOCAL | CREAD;
	if (p->parity != PROFILE_PARITY_NONE) {
		t.c_cflag |= PARENB;
		if (p->parity == PROFILE_PARITY_ODD)
			t.c_cflag |= PARODD;
		/* A byte with a parity error reads as NUL, which rejects its frame. */
		t.c_iflag |= INPCK;
	}
	if (p->stop_bits == 2)
		t.c_cflag |= CSTOPB;
	t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
	if (p->flow == PROFILE_FLOW_XONXOFF)
		t.c_iflag |= IXON | IXOFF;
	else if (p->flow == PROFILE_FLOW_RTSCTS)
		t.c_cflag |= CRTSCTS;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (cfsetispeed(&t, device_speed(p->baud)) < 0 || cfsetospeed(&t, device_speed(p->baud)) < 0)
		return -1;
	if (tcsetattr(fd, TCSANOW, &t) < 0)
		return -1;
	/* Bytes from before we listened may be half a code. */
	tcflush(fd, TCIFLUSH);
	return 0;
}

static void device_close(struct device *d)
{
	if (d->ev_read)
		event_del(d->ev_read);
	if (d->ev_idle)
		evtimer_del(d->ev_idle);
	if (d->fd >= 0) {
		if (d->saved_ok)
			tcsetattr(d->fd, TCSANOW, &d->saved);
		close(d->fd);
	}
	d->fd = -1;
	d->saved_ok = false;
	if (d->ev_read) {
		event_free(d->ev_read);
		d->ev_read = NULL;
	}
	framer_reset(d->fr);
}

static void device_schedule(struct device *d)
{
	struct timeval tv = { d->backoff_ms / 1000, (d->backoff_ms % 1000) * 1000 };

	evtimer_add(d->ev_retry, &tv);
	d->backoff_ms *= 2;
	if (d->backoff_ms > DEVICE_BACKOFF_MAX_MS)
		d->backoff_ms = DEVICE_BACKOFF_MAX_MS;
}

/* The device is not (or no longer) usable: report it once per state
 * change, then try again later. The owner logs the event it receives
 * (once, where it is handled); here only debug lines. */
static void device_down(struct device *d, const char *why)
{
	char qn[96], qw[DEVICE_DETAIL_MAX + 16];

	device_close(d);
	device_schedule(d);
	if (d->state == DEVICE_ST_DOWN) {
		if (strcmp(d->down_why, why) != 0) {
			log_debug("device_retry", "name=%s reason=%s",
				  log_q(qn, sizeof qn, d->cfg.name), log_q(qw, sizeof qw, why));
			snprintf(d->down_why, sizeof d->down_why, "%s", why);
		}
		return;
	}
	d->state = DEVICE_ST_DOWN;
	snprintf(d->down_why, sizeof d->down_why, "%s", why);
	log_debug("device_down", "name=%s role=%s reason=%s", log_q(qn, sizeof qn, d->cfg.name),
		  device_role_name(d->cfg.role), log_q(qw, sizeof qw, why));
	if (d->on_event)
		d->on_event(d, DEVICE_DOWN, why, d->arg);
}

static void device_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct device *d = arg;

	(void)fd;
	(void)what;
	framer_idle(d->fr);
}

static void device_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct device *d = arg;
	unsigned char buf[DEVICE_READ_CHUNK];
	char why[DEVICE_DETAIL_MAX];
	bool got = false;

	(void)what;
	for (int i = 0; i < DEVICE_READS_PER_WAKE; i++) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) {
			framer_feed(d->fr, buf, (size_t)n);
			wipe(buf, (size_t)n);
			got = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		/* EOF, EIO, hang-up: the device went away (a pty reports EIO once
		 * its master is closed, a USB tty once it is unplugged). */
		snprintf(why, sizeof why, "unplugged (%s)", n == 0 ? "end of file" : strerror(errno));
		d->backoff_ms = DEVICE_BACKOFF_MIN_MS;
		device_down(d, why);
		return;
	}
	if (!got || d->prof.idle_timeout_ms == 0)
		return;
	/* Inter-character timeout: measured from the last byte. */
	if (framer_pending(d->fr)) {
		struct timeval tv = { d->prof.idle_timeout_ms / 1000,
				      (d->prof.idle_timeout_ms % 1000) * 1000 };
		evtimer_add(d->ev_idle, &tv);
	} else {
		evtimer_del(d->ev_idle);
	}
}

/* Where the port is right now: USB identities are looked up, symlinks
 * (udev names, the simulator's link) followed, at every attempt. */
static int device_resolve(struct device *d, char *path, size_t cap, char *why, size_t whycap)
{
	char real[PATH_MAX];

	if (d->usb) {
		if (device_usb_lookup(d->vid, d->pid, d->serial, path, cap) < 0) {
			snprintf(why, whycap, "not found: no USB serial port %04x:%04x%s%s", d->vid,
				 d->pid, d->serial[0] ? " serial " : "", d->serial);
			return -1;
		}
		return 0;
	}
	if (!realpath(d->cfg.port, real)) {
		snprintf(why, whycap, "not found: %.200s: %s", d->cfg.port, strerror(errno));
		return -1;
	}
	if (strlen(real) >= cap) {
		snprintf(why, whycap, "path too long");
		return -1;
	}
	memcpy(path, real, strlen(real) + 1);
	return 0;
}

static void device_connect(struct device *d)
{
	char path[PATH_MAX], why[DEVICE_DETAIL_MAX], qn[96], qp[PATH_MAX + 16];
	int fd = -1;

	if (device_resolve(d, path, sizeof path, why, sizeof why) < 0)
		goto fail;
	fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, sizeof why, "open failed: %.200s: %s", path, strerror(errno));
		goto fail;
	}
	d->fd = fd;
	if (!isatty(fd)) {
		snprintf(why, sizeof why, "open failed: %.200s: not a terminal", path);
		goto fail;
	}
	/* Two readers on one scanner would each get half the codes. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(why, sizeof why, "open failed: %.200s: %s", path,
			 errno == EWOULDBLOCK ? "in use by another process" : strerror(errno));
		goto fail;
	}
	if (device_termios(fd, &d->prof, &d->saved, &d->saved_ok) < 0) {
		snprintf(why, sizeof why, "open failed: %.200s: line settings: %s", path,
			 strerror(errno));
		goto fail;
	}
	d->ev_read = event_new(d->base, fd, EV_READ | EV_PERSIST, device_read_cb, d);
	if (!d->ev_read || event_add(d->ev_read, NULL) < 0) {
		snprintf(why, sizeof why, "open failed: %.200s: cannot watch the descriptor", path);
		goto fail;
	}
	memcpy(d->tty, path, strlen(path) + 1);
	d->state = DEVICE_ST_UP;
	d->down_why[0] = '\0';
	d->backoff_ms = DEVICE_BACKOFF_MIN_MS;
	log_debug("device_up", "name=%s role=%s path=%s profile=%s",
		  log_q(qn, sizeof qn, d->cfg.name), device_role_name(d->cfg.role),
		  log_q(qp, sizeof qp, path), d->prof.name);
	if (d->on_event)
		d->on_event(d, DEVICE_UP, d->tty, d->arg);
	return;
fail:
	device_down(d, why);
}

static void device_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	device_connect(arg);
}

static void device_frame_cb(const char *frame, size_t len, void *arg)
{
	struct device *d = arg;

	d->on_frame(d, frame, len, d->arg);
}

static void device_reject_cb(enum framer_reject why, size_t len, void *arg)
{
	struct device *d = arg;
	char detail[DEVICE_DETAIL_MAX], qn[96];

	switch (why) {
	case FRAMER_REJ_TOO_LONG:
		snprintf(detail, sizeof detail, "over-long frame dropped (%zu bytes, max %zu)", len,
			 d->prof.max_len);
		break;
	case FRAMER_REJ_BAD_BYTES:
		snprintf(detail, sizeof detail, "frame with bad bytes dropped (%zu bytes)", len);
		break;
	case FRAMER_REJ_INCOMPLETE:
		snprintf(detail, sizeof detail,
			 "incomplete frame dropped after %u ms without a terminator (%zu bytes)",
			 d->prof.idle_timeout_ms, len);
		break;
	default:
		snprintf(detail, sizeof detail, "frame dropped (%zu bytes)", len);
		break;
	}
	log_debug("device_rejected", "name=%s reason=%s", log_q(qn, sizeof qn, d->cfg.name),
		  framer_reject_name(why));
	if (d->on_event)
		d->on_event(d, DEVICE_REJECTED, detail, d->arg);
}

int device_start(struct event_base *base, const struct device_cfg *cfg, device_frame_fn on_frame,
		 device_event_fn on_event, void *arg, struct device **out, pos_err *e)
{
	struct device *d = NULL;
	struct framer_opts fo;
	struct timeval now = { 0, 0 };
	int rc;

	if (!base || !cfg || !on_frame || !out)
		return err_set(e, POS_EINVAL, "device: missing argument");
	if (!memchr(cfg->name, '\0', sizeof cfg->name) || !cfg->name[0])
		return err_set(e, POS_EINVAL, "device: empty name");
	if (cfg->role != DEVICE_SCANNER && cfg->role != DEVICE_CARDREADER)
		return err_set(e, POS_EINVAL, "device.%s: role must be scanner or cardreader",
			       cfg->name);
	if (!memchr(cfg->port, '\0', sizeof cfg->port) || !cfg->port[0])
		return err_set(e, POS_EINVAL, "device.%s: empty port", cfg->name);
	if (!memchr(cfg->profile, '\0', sizeof cfg->profile) || !cfg->profile[0])
		return err_set(e, POS_EINVAL, "device.%s: empty profile", cfg->name);
	d = calloc(1, sizeof(*d));
	if (!d)
		return err_set(e, POS_ENOMEM, "device.%s: out of memory", cfg->name);
	d->fd = -1;
	d->base = base;
	d->cfg = *cfg;
	d->on_frame = on_frame;
	d->on_event = on_event;
	d->arg = arg;
	d->backoff_ms = DEVICE_BACKOFF_MIN_MS;
	if (strncmp(cfg->port, "usb:", 4) == 0) {
		d->usb = true;
		if (device_parse_usb(cfg->port, &d->vid, &d->pid, d->serial, sizeof d->serial) < 0) {
			rc = err_set(e, POS_EINVAL,
				     "device.%s: port '%s' is not usb:VID:PID[:serial] (hex)",
				     cfg->name, cfg->port);
			goto fail;
		}
	}
	rc = profile_load(cfg->profile, &d->prof, e);
	if (rc < 0) {
		err_prefix(e, "device.%s", cfg->name);
		goto fail;
	}
	if ((cfg->role == DEVICE_CARDREADER) != (d->prof.kind == PROFILE_MSR)) {
		rc = err_set(e, POS_EINVAL, "device.%s: profile '%s' (kind %s) does not fit role %s",
			     cfg->name, d->prof.name, profile_kind_name(d->prof.kind),
			     device_role_name(cfg->role));
		goto fail;
	}
	profile_framer_opts(&d->prof, &fo);
	rc = framer_new(&fo, device_frame_cb, device_reject_cb, d, &d->fr, e);
	if (rc < 0)
		goto fail;
	d->ev_retry = evtimer_new(base, device_retry_cb, d);
	d->ev_idle = evtimer_new(base, device_idle_cb, d);
	if (!d->ev_retry || !d->ev_idle) {
		rc = err_set(e, POS_ENOMEM, "device.%s: cannot create timers", cfg->name);
		goto fail;
	}
	/* First attempt from the loop: callbacks never run inside device_start. */
	evtimer_add(d->ev_retry, &now);
	*out = d;
	return 0;
fail:
	device_free(d);
	return rc;
}

void device_free(struct device *d)
{
	if (!d)
		return;
	device_close(d);
	if (d->ev_retry)
		event_free(d->ev_retry);
	if (d->ev_idle)
		event_free(d->ev_idle);
	framer_free(d->fr);
	free(d);
}

static const char *device_transport_name(enum sp_transport t)
{
	switch (t) {
	case SP_TRANSPORT_NATIVE:
		return "native";
	case SP_TRANSPORT_USB:
		return "usb";
	case SP_TRANSPORT_BLUETOOTH:
		return "bluetooth";
	}
	return "unknown";
}

/* Which enumerated port a configured device is on right now, if any;
 * 1 when it is on none. */
static int device_doctor_match(FILE *out, const struct device_cfg *c, struct sp_port **list)
{
	char path[PATH_MAX];
	int vid, pid;
	char serial[DEVICE_SERIAL_MAX];

	fprintf(out, "  %s (%s): %s -> ", c->name, device_role_name(c->role), c->port);
	if (strncmp(c->port, "usb:", 4) == 0) {
		if (device_parse_usb(c->port, &vid, &pid, serial, sizeof serial) < 0) {
			fprintf(out, "bad port (want usb:VID:PID[:serial])\n");
			return 1;
		}
		if (device_usb_lookup(vid, pid, serial, path, sizeof path) < 0) {
			fprintf(out, "PROBLEM: not found (plugged in? see the serial ports above)\n");
			return 1;
		}
		fprintf(out, "%s\n", path);
		return 0;
	}
	if (!realpath(c->port, path)) {
		fprintf(out, "PROBLEM: not found (plugged in? see the serial ports above)\n");
		return 1;
	}
	for (size_t i = 0; list && list[i]; i++) {
		const char *name = sp_get_port_name(list[i]);
		if (name && strcmp(name, path) == 0) {
			fprintf(out, "%s\n", path);
			return 0;
		}
	}
	fprintf(out, "%s (present, not an enumerated serial port: a pseudo-terminal?)\n", path);
	return 0;
}

int device_doctor(FILE *out, const struct device_cfg *cfgs, size_t n)
{
	struct sp_port **list = NULL;
	int missing = 0;

	if (!out)
		return 0;
	fprintf(out, "serial ports:\n");
	if (sp_list_ports(&list) != SP_OK) {
		char *msg = sp_last_error_message();
		fprintf(out, "  cannot list serial ports: %s\n", msg ? msg : "unknown error");
		sp_free_error_message(msg);
		list = NULL;
	} else if (!list[0]) {
		fprintf(out, "  (none)\n");
	}
	for (size_t i = 0; list && list[i]; i++) {
		struct sp_port *p = list[i];
		enum sp_transport t = sp_get_port_transport(p);
		const char *desc = sp_get_port_description(p);
		int vid, pid;

		fprintf(out, "  %s  \"%s\"  %s", sp_get_port_name(p), desc ? desc : "",
			device_transport_name(t));
		if (t == SP_TRANSPORT_USB && sp_get_port_usb_vid_pid(p, &vid, &pid) == SP_OK) {
			const char *sn = sp_get_port_usb_serial(p);
			const char *man = sp_get_port_usb_manufacturer(p);
			const char *prod = sp_get_port_usb_product(p);
			fprintf(out, " %04x:%04x", vid, pid);
			if (sn)
				fprintf(out, " serial %s", sn);
			if (man || prod)
				fprintf(out, " (%s%s%s)", man ? man : "", man && prod ? " " : "",
					prod ? prod : "");
		}
		fputc('\n', out);
	}
	fprintf(out, "devices:\n");
	if (n == 0)
		fprintf(out, "  (none configured)\n");
	for (size_t i = 0; i < n; i++)
		missing += device_doctor_match(out, &cfgs[i], list);
	if (list)
		sp_free_port_list(list);
	return missing;
}

int device_port_check(const char *port, pos_err *e)
{
	char serial[DEVICE_SERIAL_MAX];
	int vid, pid;

	if (!port || !port[0])
		return err_set(e, POS_EINVAL, "empty port");
	if (strncmp(port, "usb:", 4) == 0 &&
	    device_parse_usb(port, &vid, &pid, serial, sizeof serial) < 0)
		return err_set(e, POS_EINVAL,
			       "port '%.80s' is not usb:VID:PID[:serial] (VID and PID: 1 to 4 "
			       "hex digits, as lsusb shows them, e.g. usb:05e0:1200)", port);
	return 0;
}
