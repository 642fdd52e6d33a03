#ifndef POS_PROFILE_H
#define POS_PROFILE_H
/*
 * Device profiles (hw/profiles/NAME): line settings and framing of one
 * device family, as an INI file with a single [profile] section:
 *
 *   name = scanner-crlf        kind = text | msr
 *   baud = 9600                data_bits = 5..8
 *   parity = none|odd|even     stop_bits = 1 | 2
 *   flow = none|xonxoff|rtscts
 *   terminator = cr|lf|crlf|etx|eol|none   (eol: CR, LF or CR LF)
 *   prefix = none|stx          idle_timeout_ms = 0..60000 (0 = off)
 *   aim = optional|none        max_len = 1..65536
 *
 * Unknown keys and bad values fail with FILE:LINE. terminator = none needs
 * an idle timeout (it is the only end of a frame then).
 *
 * A spec containing '/' is a file path. A bare name is looked up, first hit
 * wins, in: $POS_PROFILE_DIR, then relative to the running executable
 * (/proc/self/exe) ../share/pos/profiles (installed: PREFIX/bin and
 * PREFIX/share/pos/profiles), ../../hw/profiles (binaries in build/bin/ of
 * the source tree), ../../../hw/profiles (build/<variant>/bin/).
 */
#include <stdbool.h>
#include <stddef.h>
#include "err.h"
#include "framer.h"

#define PROFILE_NAME_MAX 64
#define PROFILE_PATH_MAX 512

enum profile_kind { PROFILE_TEXT = 1, PROFILE_MSR };
enum profile_parity { PROFILE_PARITY_NONE = 0, PROFILE_PARITY_ODD, PROFILE_PARITY_EVEN };
enum profile_flow { PROFILE_FLOW_NONE = 0, PROFILE_FLOW_XONXOFF, PROFILE_FLOW_RTSCTS };
/* optional: the code may start with an AIM id (]E0...), taken when present. */
enum profile_aim { PROFILE_AIM_OPTIONAL = 1, PROFILE_AIM_NONE };

/* Plain value, owned by the caller; holds no secrets. */
struct profile {
	char name[PROFILE_NAME_MAX];
	char path[PROFILE_PATH_MAX]; /* the file it came from */
	enum profile_kind kind;
	long baud;
	int data_bits;
	enum profile_parity parity;
	int stop_bits;
	enum profile_flow flow;
	enum framer_term term;
	enum framer_prefix prefix;
	unsigned idle_timeout_ms;
	size_t max_len;
	enum profile_aim aim;
};

/* Loads a profile by bare name (search path above) or by path. */
int profile_load(const char *spec, struct profile *out, pos_err *e);
/* Loads exactly this file. */
int profile_load_file(const char *path, struct profile *out, pos_err *e);
/* Finds the file of a bare name; fails with the folders it looked in. */
int profile_find(const char *name, char *path, size_t cap, pos_err *e);
/* The framer settings of a profile. */
void profile_framer_opts(const struct profile *p, struct framer_opts *o);
const char *profile_kind_name(enum profile_kind k);

#endif
