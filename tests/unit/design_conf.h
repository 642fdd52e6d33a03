#ifndef POS_TEST_DESIGN_CONF_H
#define POS_TEST_DESIGN_CONF_H
/* terminal.conf exactly as design.md shows it, comments included: the
 * config parser and the agent's config loader both read it in their
 * tests. */
static const char design_terminal_conf[] =
	"[terminal]\n"
	"store = S1\n"
	"id = T1\n"
	"[central]\n"
	"url = https://127.0.0.1:8443\n"
	"ca = ca.crt\n"
	"cert = terminal.crt\n"
	"key = terminal.key\n"
	"public_key = central.pub\n"
	"resolve_timeout_ms = 400\n"
	"[spool]\n"
	"path = spool.db\n"
	"[control]\n"
	"socket = agent.sock\n"
	"[device.flatbed]          ; one section per device, any name after the dot\n"
	"role = scanner            ; scanner | cardreader\n"
	"port = /dev/ttyACM0       ; or usb:VID:PID[:serial]\n"
	"profile = scanner-crlf    ; a profile name from hw/profiles, or a path\n"
	"[codes]                   ; POSIX extended regexes on the code after its AIM id\n"
	"loyalty = ^99[0-9]{11}$\n"
	"offer = ^98[0-9]{11}$\n"
	"total = ^TOTAL$\n"
	"void = ^VOID$\n"
	"cancel = ^CANCEL$\n";

#endif
