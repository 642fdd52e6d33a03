#ifndef POS_SCONF_H
#define POS_SCONF_H
/*
 * store.conf (design section 12), read through common/config.h like
 * terminal.conf: relative paths are taken against the file's folder; an
 * unknown key or section or a bad value fails with FILE:LINE.
 *
 *   [store]   id (required, [A-Za-z0-9._-]{1,64}): lanes' certificates must
 *             carry it as their OU
 *   [listen]  address = HOST:PORT (0.0.0.0:8444)
 *   [tls]     ca, cert, key: the lanes are verified against ca; cert and key
 *             are what the controller shows them
 *   [central] url (https://..., several separated by spaces), ca, cert, key:
 *             the controller's client certificate (OU = id, CN =
 *             store-controller)
 *   [tlog]    path (tlog.db), keep_days (90, 1..3650)
 */
#include "aconf.h"
#include "err.h"

#define SCONF_LISTEN_MAX 128
#define SCONF_KEEP_DEFAULT 90
#define SCONF_KEEP_MAX 3650

struct sconf {
	char file[ACONF_PATH_MAX];
	char store[IDS_MAX + 1];
	char listen[SCONF_LISTEN_MAX];
	char host[SCONF_LISTEN_MAX]; /* listen split: "" for every address */
	char port[8];
	char tls_ca[ACONF_PATH_MAX];
	char tls_cert[ACONF_PATH_MAX];
	char tls_key[ACONF_PATH_MAX];
	char url[ACONF_URL_MAX];
	char ca[ACONF_PATH_MAX];
	char cert[ACONF_PATH_MAX];
	char key[ACONF_PATH_MAX];
	char tlog[ACONF_PATH_MAX];
	long keep_days;
};

/* Reads and checks path into *out (sconf_free). Files named are not
 * opened here (sconf_check_files). */
int sconf_load(const char *path, struct sconf **out, pos_err *e);
/* The same from text; name for messages, dir for relative paths. */
int sconf_load_string(const char *text, size_t len, const char *name, const char *dir,
		      struct sconf **out, pos_err *e);
void sconf_free(struct sconf *c);
/* What check and run add: every certificate and key readable, keys not
 * accessible by group or others, [central] cert is this store's
 * controller (OU = id, CN = store-controller) and issued by [central] ca,
 * [tls] cert issued by [tls] ca. */
int sconf_check_files(const struct sconf *c, pos_err *e);

#endif
