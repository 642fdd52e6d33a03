#ifndef POS_DEVICE_H
#define POS_DEVICE_H
/*
 * Serial devices (scanners, card readers) on the agent's libevent loop,
 * through libserialport. A port is a path (/dev/ttyACM0) or a USB identity
 * usb:VID:PID[:serial] looked up at every (re)connect, so a re-plugged
 * device that comes back under another name is found again. Bytes are
 * framed by the device's profile (hw/profiles); each complete frame goes to
 * the frame callback, whose buffer is wiped when it returns (swipes carry
 * track data). Garbage, over-long frames and unplugs are reported through
 * the event callback and never stop the loop; reconnects back off.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "err.h"

struct event_base;
struct device;

enum device_role { DEVICE_SCANNER = 1, DEVICE_CARDREADER };

struct device_cfg {
	char name[64];      /* the part after "device." in terminal.conf */
	enum device_role role;
	char port[256];     /* path or usb:VID:PID[:serial] */
	char profile[512];  /* profile name from hw/profiles, or a path */
};

enum device_event {
	DEVICE_UP = 1,      /* detail: the tty path opened */
	DEVICE_DOWN,        /* detail: why (unplugged, open failed: ...) */
	DEVICE_REJECTED,    /* detail: what was dropped (over-long, bad bytes); never data */
};

typedef void (*device_frame_fn)(struct device *d, const char *frame, size_t len, void *arg);
typedef void (*device_event_fn)(struct device *d, enum device_event ev, const char *detail,
				void *arg);

/* Checks role/port/profile (the profile is loaded here: a bad one fails
 * with its file and line) and starts connecting; never blocks. *out:
 * device_free. */
int device_start(struct event_base *base, const struct device_cfg *cfg, device_frame_fn on_frame,
		 device_event_fn on_event, void *arg, struct device **out, pos_err *e);
void device_free(struct device *d);
const char *device_name(const struct device *d);
enum device_role device_role_of(const struct device *d);
bool device_is_up(const struct device *d);
/* The profile the device was started with (kind, aim, framing: see
 * profile.h); owned by d, valid until device_free. */
struct profile;
const struct profile *device_profile(const struct device *d);
/* "scanner" / "cardreader" <-> role; parse returns -1 when unknown. */
const char *device_role_name(enum device_role r);
int device_role_parse(const char *s, enum device_role *out);
/* For `pos-agent doctor`: lists every serial port with its USB identity and
 * says which configured device matches which port. Returns how many
 * configured devices are on no port now. */
int device_doctor(FILE *out, const struct device_cfg *cfgs, size_t n);
/* A port's syntax: a path, or usb:VID:PID[:serial] with hex ids. */
int device_port_check(const char *port, pos_err *e);

#endif
