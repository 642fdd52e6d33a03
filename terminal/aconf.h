#ifndef POS_ACONF_H
#define POS_ACONF_H
/*
 * terminal.conf (design section 5), read through common/config.h: every key
 * has its type, default and bounds here; relative paths are taken against
 * the file's folder; an unknown key or section, a bad value or a regex that
 * does not compile fails with FILE:LINE.
 *
 *   [terminal] store, id (required, [A-Za-z0-9._-]{1,64}),
 *              log_level = debug|info|warn|error (info),
 *              variable_measure = none|us|uk|se (none)
 *   [central]  url (https://..., up to 4 separated by spaces: the store's
 *              controller first, central as fallback), ca, cert, key, public_key (paths, required),
 *              resolve_timeout_ms (400, 50..10000), keys_refresh_s (3600,
 *              10..86400: how often central.pub is refreshed from GET /v1/keys)
 *   [spool]    path (spool.db)
 *   [control]  socket (agent.sock)
 *   [device.NAME] role = scanner|cardreader, port = path|usb:VID:PID[:serial],
 *              profile = a name from hw/profiles or a path
 *   [receipt]  base_url (https://HOST[:PORT][/PATH]; empty, the default: no
 *              receipt links): at total the agent makes a receipt token and
 *              answers BASE_URL/r/TOKEN
 *   [codes]    loyalty, offer, total, void, cancel: POSIX extended regexes
 *              (defaults as in design section 5; an empty value disables one)
 */
#include <stddef.h>
#include "classify.h"
#include "device.h"
#include "err.h"
#include "ids.h"
#include "log.h"

#define ACONF_PATH_MAX 1024
#define ACONF_MAX_DEVICES 16
#define ACONF_URL_MAX 512
#define ACONF_URLS_MAX 4
#define ACONF_RESOLVE_DEFAULT_MS 400
#define ACONF_RESOLVE_MIN_MS 50
#define ACONF_RESOLVE_MAX_MS 10000
#define ACONF_KEYS_REFRESH_DEFAULT_S 3600
#define ACONF_KEYS_REFRESH_MIN_S 10
#define ACONF_KEYS_REFRESH_MAX_S 86400

struct aconf {
	char file[ACONF_PATH_MAX];
	char store[IDS_MAX + 1];
	char terminal[IDS_MAX + 1];
	enum log_level log_level;
	char url[ACONF_URL_MAX];
	char ca[ACONF_PATH_MAX];
	char cert[ACONF_PATH_MAX];
	char key[ACONF_PATH_MAX];
	char public_key[ACONF_PATH_MAX];
	long resolve_timeout_ms;
	long keys_refresh_s; /* GET /v1/keys this often (and at start) */
	char spool[ACONF_PATH_MAX];
	char socket[ACONF_PATH_MAX];
	struct device_cfg devices[ACONF_MAX_DEVICES];
	size_t ndevices;
	struct classify_rules rules; /* vm = variable_measure */
	char receipt_base_url[ACONF_URL_MAX]; /* "" = no receipt links */
};

/* Reads and checks path. *out: aconf_free. Files named in it are not
 * opened here (see aconf_check_files). */
int aconf_load(const char *path, struct aconf **out, pos_err *e);
/* The same from text in memory; name for messages, dir for relative paths. */
int aconf_load_string(const char *text, size_t len, const char *name, const char *dir,
		      struct aconf **out, pos_err *e);
void aconf_free(struct aconf *c);
/* What `check` and `run` add to the syntax: the CA, certificate and public
 * key are readable, the public key parses, the private key exists and is
 * not accessible by group or others. */
int aconf_check_files(const struct aconf *c, pos_err *e);
struct cfg;
/* Checks a url value: 1 to ACONF_URLS_MAX https://HOST[:PORT] separated by
 * spaces, none with a trailing slash. Errors name cf's file and the key's
 * line in sec. */
int aconf_url_list(struct cfg *cf, const char *sec, const char *v, pos_err *e);

#endif
