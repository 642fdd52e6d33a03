#include "aconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "ctab.h"
#include "ids.h"
#include "keys.h"

/* The [codes] defaults are the ones design section 5 shows, so a
 * terminal.conf without [codes] behaves like the documented example. */
static const char *const aconf_code_defaults[CLASSIFY_RULE_N] = {
	[CLASSIFY_RULE_TOTAL] = "^TOTAL$",
	[CLASSIFY_RULE_VOID] = "^VOID$",
	[CLASSIFY_RULE_CANCEL] = "^CANCEL$",
	[CLASSIFY_RULE_LOYALTY] = "^99[0-9]{11}$",
	[CLASSIFY_RULE_OFFER] = "^98[0-9]{11}$",
};

void aconf_free(struct aconf *c)
{
	if (!c)
		return;
	classify_rules_free(&c->rules);
	free(c);
}

int aconf_url_list(struct cfg *cf, const char *sec, const char *v, pos_err *e)
{
	return ctab_url_list(cf, sec, v, e);
}

static const struct ctab_word aconf_log_levels[] = {
	{ "debug", LOG_LVL_DEBUG }, { "info", LOG_LVL_INFO }, { "warn", LOG_LVL_WARN },
	{ "error", LOG_LVL_ERROR }, { NULL, 0 }
};
static const struct ctab_word aconf_vm_layouts[] = {
	{ "none", GTIN_VM_NONE }, { "us", GTIN_VM_US }, { "uk", GTIN_VM_UK },
	{ "se", GTIN_VM_SE },	  { NULL, 0 }
};
static const struct ctab_word aconf_roles[] = {
	{ "scanner", DEVICE_SCANNER }, { "cardreader", DEVICE_CARDREADER }, { NULL, 0 }
};

/* A unix socket path must fit sun_path. */
static int aconf_socket_len(struct cfg *cf, const char *sec, const char *key, void *out,
			    pos_err *e)
{
	const struct aconf *c = out;
	struct sockaddr_un sun;

	if (strlen(c->socket) < sizeof sun.sun_path)
		return 0;
	return err_set(e, POS_ETOOBIG,
		       "%s:%d: control socket path is %zu characters; a unix socket takes at "
		       "most %zu (use a shorter or relative folder)",
		       cf->name, cfg_line(cf, sec, key), strlen(c->socket), sizeof sun.sun_path - 1);
}

/* [receipt] base_url: where the printed receipt links point (the public
 * listener, or the retailer's site in front of it); empty: no receipts. */
static int aconf_receipt_url(struct cfg *cf, const char *sec, const char *key, void *out,
			     pos_err *e)
{
	const char *v = ((const struct aconf *)out)->receipt_base_url;
	size_t n = strlen(v);

	if (n == 0)
		return 0;
	if (strncmp(v, "https://", 8) != 0 || n <= 8 || strpbrk(v, " \t\"'\\<>") ||
	    v[n - 1] == '/')
		return err_set(e, POS_EINVAL,
			       "%s:%d: 'base_url' in [receipt] must be https://HOST[:PORT][/PATH] "
			       "without a trailing /",
			       cf->name, cfg_line(cf, sec, key));
	return 0;
}

#define AC(f) CTAB_FIELD(struct aconf, f)
#define ACONF_STR(x) #x
#define ACONF_NUM(x) ACONF_STR(x)

/* Every key of terminal.conf but the devices' and [codes]. */
static const struct ctab_key aconf_keys[] = {
	{ "terminal", "store", CT_ID, NULL, 0, 0, AC(store), NULL, NULL },
	{ "terminal", "id", CT_ID, NULL, 0, 0, AC(terminal), NULL, NULL },
	{ "terminal", "log_level", CT_WORD, "info", 0, 0, AC(log_level), aconf_log_levels, NULL },
	{ "terminal", "variable_measure", CT_WORD, "none", 0, 0, AC(rules.vm), aconf_vm_layouts,
	  NULL },
	{ "central", "url", CT_URLS, NULL, 0, 0, AC(url), NULL, NULL },
	{ "central", "ca", CT_PATH, NULL, 0, 0, AC(ca), NULL, NULL },
	{ "central", "cert", CT_PATH, NULL, 0, 0, AC(cert), NULL, NULL },
	{ "central", "key", CT_PATH, NULL, 0, 0, AC(key), NULL, NULL },
	{ "central", "public_key", CT_PATH, NULL, 0, 0, AC(public_key), NULL, NULL },
	{ "central", "keys_refresh_s", CT_INT, ACONF_NUM(ACONF_KEYS_REFRESH_DEFAULT_S),
	  ACONF_KEYS_REFRESH_MIN_S, ACONF_KEYS_REFRESH_MAX_S, AC(keys_refresh_s), NULL, NULL },
	{ "central", "resolve_timeout_ms", CT_INT, ACONF_NUM(ACONF_RESOLVE_DEFAULT_MS),
	  ACONF_RESOLVE_MIN_MS, ACONF_RESOLVE_MAX_MS, AC(resolve_timeout_ms), NULL, NULL },
	{ "spool", "path", CT_PATH, "spool.db", 0, 0, AC(spool), NULL, NULL },
	{ "control", "socket", CT_PATH, "agent.sock", 0, 0, AC(socket), NULL, aconf_socket_len },
	{ "receipt", "base_url", CT_STR, "", 0, 0, AC(receipt_base_url), NULL, aconf_receipt_url },
};

/* port: a usb: identity is kept as written (its syntax checked); a
 * relative tty path is taken against the file's folder like every path. */
static int aconf_port(struct cfg *cf, const char *sec, const char *key, void *out, pos_err *e)
{
	struct device_cfg *d = out;
	char raw[sizeof d->port];
	const char *v;
	int rc;

	if ((rc = cfg_str(cf, sec, key, NULL, &v, e)) < 0)
		return rc;
	if (strncmp(v, "usb:", 4) != 0)
		return 0;
	if (device_port_check(v, e) < 0) {
		err_prefix(e, "%s:%d: [%s]", cf->name, cfg_line(cf, sec, key), sec);
		return POS_EINVAL;
	}
	if (strlen(v) >= sizeof raw)
		return err_set(e, POS_ETOOBIG, "%s:%d: 'port' in [%s] is too long", cf->name,
			       cfg_line(cf, sec, key), sec);
	snprintf(d->port, sizeof d->port, "%s", v);
	return 0;
}

/* profile: a bare name is looked up in hw/profiles by the device layer;
 * anything with a slash is a file path (taken as CT_PATH made it). */
static int aconf_profile(struct cfg *cf, const char *sec, const char *key, void *out, pos_err *e)
{
	struct device_cfg *d = out;
	const char *v;
	int rc;

	if ((rc = cfg_str(cf, sec, key, NULL, &v, e)) < 0)
		return rc;
	if (strchr(v, '/'))
		return 0;
	if (strlen(v) >= sizeof d->profile)
		return err_set(e, POS_ETOOBIG, "%s:%d: 'profile' in [%s] is too long", cf->name,
			       cfg_line(cf, sec, key), sec);
	snprintf(d->profile, sizeof d->profile, "%s", v);
	return 0;
}

#define DC(f) CTAB_FIELD(struct device_cfg, f)

/* One [device.NAME] section. */
static const struct ctab_key aconf_device_keys[] = {
	{ NULL, "role", CT_WORD, NULL, 0, 0, DC(role), aconf_roles, NULL },
	{ NULL, "port", CT_PATH, NULL, 0, 0, DC(port), NULL, aconf_port },
	{ NULL, "profile", CT_PATH, NULL, 0, 0, DC(profile), NULL, aconf_profile },
};

struct aconf_dev_ctx {
	struct cfg *cf;
	struct aconf *c;
	pos_err *e;
	int rc;
};

static int aconf_device(const char *sec, void *arg)
{
	struct aconf_dev_ctx *x = arg;
	struct cfg *cf = x->cf;
	struct aconf *c = x->c;
	struct device_cfg *d;
	const char *name = sec + strlen("device.");
	int line = cfg_line(cf, sec, NULL);

	if (c->ndevices >= ACONF_MAX_DEVICES) {
		x->rc = err_set(x->e, POS_ETOOBIG, "%s:%d: more than %d devices", cf->name, line,
				ACONF_MAX_DEVICES);
		return 1;
	}
	d = &c->devices[c->ndevices];
	memset(d, 0, sizeof *d);
	if (!*name || strlen(name) >= sizeof d->name) {
		x->rc = err_set(x->e, POS_EINVAL, "%s:%d: device name must be 1 to %zu characters",
				cf->name, line, sizeof d->name - 1);
		return 1;
	}
	memcpy(d->name, name, strlen(name) + 1);
	x->rc = ctab_take(cf, sec, aconf_device_keys,
			  sizeof aconf_device_keys / sizeof aconf_device_keys[0], d, x->e);
	if (x->rc < 0)
		return 1;
	c->ndevices++;
	return 0;
}

static int aconf_codes(struct cfg *cf, struct aconf *c, pos_err *e)
{
	for (int i = 0; i < CLASSIFY_RULE_N; i++) {
		const char *key = classify_rule_name((enum classify_rule)i), *v;
		int rc = cfg_str(cf, "codes", key, aconf_code_defaults[i], &v, e);

		if (rc < 0)
			return rc;
		rc = classify_rules_set(&c->rules, (enum classify_rule)i, v, e);
		if (rc < 0) {
			int line = cfg_line(cf, "codes", key);
			if (line > 0)
				err_prefix(e, "%s:%d", cf->name, line);
			else
				err_prefix(e, "%s: default", cf->name);
			return rc;
		}
	}
	return 0;
}

static int aconf_from_cfg(struct cfg *cf, const char *file, struct aconf **out, pos_err *e)
{
	struct aconf *c = calloc(1, sizeof *c);
	struct aconf_dev_ctx dx;
	int rc;

	if (!c)
		return err_set(e, POS_ENOMEM, "%s: out of memory", file);
	classify_rules_init(&c->rules);
	snprintf(c->file, sizeof c->file, "%s", file);
	if ((rc = ctab_take(cf, NULL, aconf_keys, sizeof aconf_keys / sizeof aconf_keys[0], c, e)) <
	    0)
		goto fail;
	dx = (struct aconf_dev_ctx){ .cf = cf, .c = c, .e = e, .rc = 0 };
	cfg_each_section(cf, "device.", aconf_device, &dx);
	if ((rc = dx.rc) < 0)
		goto fail;
	for (size_t i = 0; i < c->ndevices; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->devices[i].port, c->devices[j].port) == 0) {
				char sec[80];
				snprintf(sec, sizeof sec, "device.%s", c->devices[i].name);
				rc = err_set(e, POS_EINVAL, "%s:%d: devices '%s' and '%s' name the same port",
					     cf->name, cfg_line(cf, sec, "port"), c->devices[j].name,
					     c->devices[i].name);
				goto fail;
			}
	if ((rc = aconf_codes(cf, c, e)) < 0)
		goto fail;
	if ((rc = cfg_check_unused(cf, e)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	aconf_free(c);
	return rc;
}

struct aconf_load_arg {
	struct aconf **out;
};

static int aconf_load_cfg(struct cfg *cf, const char *file, void *arg, pos_err *e)
{
	return aconf_from_cfg(cf, file, ((struct aconf_load_arg *)arg)->out, e);
}

int aconf_load(const char *path, struct aconf **out, pos_err *e)
{
	struct aconf_load_arg a = { out };

	if (!out)
		return err_set(e, POS_EINVAL, "config: no output");
	*out = NULL;
	if (!path)
		return err_set(e, POS_EINVAL, "config: no file given");
	return ctab_load(path, NULL, 0, NULL, NULL, aconf_load_cfg, &a, e);
}

int aconf_load_string(const char *text, size_t len, const char *name, const char *dir,
		      struct aconf **out, pos_err *e)
{
	struct aconf_load_arg a = { out };

	if (!out)
		return err_set(e, POS_EINVAL, "config: no output");
	*out = NULL;
	return ctab_load(NULL, text, len, name, dir, aconf_load_cfg, &a, e);
}

static int aconf_readable(const char *what, const char *path, pos_err *e)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return err_set(e, POS_EIO, "%s: %s: %s", what, path, strerror(errno));
	if (!S_ISREG(st.st_mode) || access(path, R_OK) != 0)
		return err_set(e, POS_EIO, "%s: %s: not a readable file", what, path);
	return 0;
}

int aconf_check_files(const struct aconf *c, pos_err *e)
{
	unsigned char pk[32];
	char kid[KEYS_KID_LEN + 1];
	int rc;

	if (!c)
		return err_set(e, POS_EINVAL, "config: none");
	if ((rc = aconf_readable("[central] ca", c->ca, e)) < 0 ||
	    (rc = aconf_readable("[central] cert", c->cert, e)) < 0 ||
	    (rc = aconf_readable("[central] key", c->key, e)) < 0)
		return rc;
	if ((rc = keys_check_private_mode(c->key, e)) < 0)
		return rc;
	if ((rc = keys_load_public(c->public_key, pk, kid, e)) < 0) {
		err_prefix(e, "[central] public_key");
		return rc;
	}
	return 0;
}
