#include "aconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
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

static int aconf_copy(struct cfg *cf, const char *sec, const char *key, const char *v, char *out,
		      size_t cap, pos_err *e)
{
	size_t n = strlen(v);

	if (n >= cap)
		return err_set(e, POS_ETOOBIG, "%s:%d: '%s' in [%s] is longer than %zu characters",
			       cf->name, cfg_line(cf, sec, key), key, sec, cap - 1);
	memcpy(out, v, n + 1);
	return 0;
}

static int aconf_id(struct cfg *cf, const char *key, char *out, pos_err *e)
{
	const char *v;
	int rc = cfg_str(cf, "terminal", key, NULL, &v, e);

	if (rc < 0)
		return rc;
	if (!ids_valid(v))
		return err_set(e, POS_EINVAL,
			       "%s:%d: '%s' in [terminal] must be 1 to %d of A-Z a-z 0-9 . _ -",
			       cf->name, cfg_line(cf, "terminal", key), key, IDS_MAX);
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int aconf_terminal(struct cfg *cf, struct aconf *c, pos_err *e)
{
	const char *v;
	int rc, lvl;

	if ((rc = aconf_id(cf, "store", c->store, e)) < 0 ||
	    (rc = aconf_id(cf, "id", c->terminal, e)) < 0)
		return rc;
	if ((rc = cfg_str(cf, "terminal", "log_level", "info", &v, e)) < 0)
		return rc;
	if ((lvl = log_level_parse(v)) < 0)
		return err_set(e, POS_EINVAL,
			       "%s:%d: 'log_level' in [terminal] must be debug, info, warn or error",
			       cf->name, cfg_line(cf, "terminal", "log_level"));
	c->log_level = (enum log_level)lvl;
	if ((rc = cfg_str(cf, "terminal", "variable_measure", "none", &v, e)) < 0)
		return rc;
	if (gtin_vm_layout_parse(v, &c->rules.vm) < 0)
		return err_set(e, POS_EINVAL,
			       "%s:%d: 'variable_measure' in [terminal] must be none, us, uk or se",
			       cf->name, cfg_line(cf, "terminal", "variable_measure"));
	return 0;
}

int aconf_url_list(struct cfg *cf, const char *sec, const char *v, pos_err *e)
{
	const char *p = v;
	int count = 0;

	while (*p) {
		size_t n;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		n = strcspn(p, " ");
		/* No plain http: the TID envelope is sealed, but baskets and the
		 * terminal's identity still need TLS. */
		if (n <= 8 || strncmp(p, "https://", 8) != 0 || p[n - 1] == '/' ||
		    memchr(p, '\t', n) || memchr(p, '"', n) || memchr(p, '\'', n) ||
		    memchr(p, '\\', n))
			return err_set(e, POS_EINVAL,
				       "%s:%d: 'url' in [%s] must be https://HOST[:PORT] without a "
				       "trailing /, several separated by spaces",
				       cf->name, cfg_line(cf, sec, "url"), sec);
		if (++count > ACONF_URLS_MAX)
			return err_set(e, POS_EINVAL, "%s:%d: 'url' in [%s] lists more than %d URLs",
				       cf->name, cfg_line(cf, sec, "url"), sec, ACONF_URLS_MAX);
		p += n;
	}
	if (count == 0)
		return err_set(e, POS_EINVAL, "%s:%d: 'url' in [%s] is empty", cf->name,
			       cfg_line(cf, sec, "url"), sec);
	return 0;
}

static int aconf_central(struct cfg *cf, struct aconf *c, pos_err *e)
{
	const char *v;
	int rc;

	if ((rc = cfg_str(cf, "central", "url", NULL, &v, e)) < 0)
		return rc;
	if ((rc = aconf_url_list(cf, "central", v, e)) < 0)
		return rc;
	if ((rc = aconf_copy(cf, "central", "url", v, c->url, sizeof c->url, e)) < 0)
		return rc;
	if ((rc = cfg_path(cf, "central", "ca", NULL, c->ca, sizeof c->ca, e)) < 0 ||
	    (rc = cfg_path(cf, "central", "cert", NULL, c->cert, sizeof c->cert, e)) < 0 ||
	    (rc = cfg_path(cf, "central", "key", NULL, c->key, sizeof c->key, e)) < 0 ||
	    (rc = cfg_path(cf, "central", "public_key", NULL, c->public_key, sizeof c->public_key,
			   e)) < 0)
		return rc;
	if ((rc = cfg_int(cf, "central", "keys_refresh_s", ACONF_KEYS_REFRESH_DEFAULT_S,
			  ACONF_KEYS_REFRESH_MIN_S, ACONF_KEYS_REFRESH_MAX_S, &c->keys_refresh_s, e)) <
	    0)
		return rc;
	return cfg_int(cf, "central", "resolve_timeout_ms", ACONF_RESOLVE_DEFAULT_MS,
		       ACONF_RESOLVE_MIN_MS, ACONF_RESOLVE_MAX_MS, &c->resolve_timeout_ms, e);
}

static int aconf_local(struct cfg *cf, struct aconf *c, pos_err *e)
{
	struct sockaddr_un sun;
	int rc;

	if ((rc = cfg_path(cf, "spool", "path", "spool.db", c->spool, sizeof c->spool, e)) < 0 ||
	    (rc = cfg_path(cf, "control", "socket", "agent.sock", c->socket, sizeof c->socket, e)) <
		    0)
		return rc;
	if (strlen(c->socket) >= sizeof sun.sun_path)
		return err_set(e, POS_ETOOBIG,
			       "%s:%d: control socket path is %zu characters; a unix socket takes at "
			       "most %zu (use a shorter or relative folder)",
			       cf->name, cfg_line(cf, "control", "socket"), strlen(c->socket),
			       sizeof sun.sun_path - 1);
	return 0;
}

/* [receipt] base_url: where the printed receipt links point (the public
 * listener, or the retailer's site in front of it); empty: no receipts. */
static int aconf_receipt(struct cfg *cf, struct aconf *c, pos_err *e)
{
	const char *v;
	size_t n;
	int rc;

	if ((rc = cfg_str(cf, "receipt", "base_url", "", &v, e)) < 0)
		return rc;
	n = strlen(v);
	if (n == 0)
		return 0;
	if (strncmp(v, "https://", 8) != 0 || n <= 8 || strpbrk(v, " \t\"'\\<>") ||
	    v[n - 1] == '/')
		return err_set(e, POS_EINVAL,
			       "%s:%d: 'base_url' in [receipt] must be https://HOST[:PORT][/PATH] "
			       "without a trailing /",
			       cf->name, cfg_line(cf, "receipt", "base_url"));
	return aconf_copy(cf, "receipt", "base_url", v, c->receipt_base_url,
			  sizeof c->receipt_base_url, e);
}

struct aconf_dev_ctx {
	struct cfg *cf;
	struct aconf *c;
	pos_err *e;
	int rc;
};

/* port: a usb: identity is kept as written; a relative tty path is taken
 * against the file's folder like every other path. */
static int aconf_port(struct cfg *cf, const char *sec, struct device_cfg *d, pos_err *e)
{
	const char *v;
	int rc = cfg_str(cf, sec, "port", NULL, &v, e);

	if (rc < 0)
		return rc;
	if (strncmp(v, "usb:", 4) == 0) {
		if (device_port_check(v, e) < 0) {
			err_prefix(e, "%s:%d: [%s]", cf->name, cfg_line(cf, sec, "port"), sec);
			return POS_EINVAL;
		}
		return aconf_copy(cf, sec, "port", v, d->port, sizeof d->port, e);
	}
	return cfg_path(cf, sec, "port", NULL, d->port, sizeof d->port, e);
}

/* profile: a bare name is looked up in hw/profiles by the device layer;
 * anything with a slash is a file path. */
static int aconf_profile(struct cfg *cf, const char *sec, struct device_cfg *d, pos_err *e)
{
	const char *v;
	int rc = cfg_str(cf, sec, "profile", NULL, &v, e);

	if (rc < 0)
		return rc;
	if (!strchr(v, '/'))
		return aconf_copy(cf, sec, "profile", v, d->profile, sizeof d->profile, e);
	return cfg_path(cf, sec, "profile", NULL, d->profile, sizeof d->profile, e);
}

static int aconf_device(const char *sec, void *arg)
{
	struct aconf_dev_ctx *x = arg;
	struct cfg *cf = x->cf;
	struct aconf *c = x->c;
	struct device_cfg *d;
	const char *name = sec + strlen("device."), *v;
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
	if ((x->rc = cfg_str(cf, sec, "role", NULL, &v, x->e)) < 0)
		return 1;
	if (device_role_parse(v, &d->role) < 0) {
		x->rc = err_set(x->e, POS_EINVAL, "%s:%d: 'role' in [%s] must be scanner or cardreader",
				cf->name, cfg_line(cf, sec, "role"), sec);
		return 1;
	}
	if ((x->rc = aconf_port(cf, sec, d, x->e)) < 0 ||
	    (x->rc = aconf_profile(cf, sec, d, x->e)) < 0)
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
	if ((rc = aconf_terminal(cf, c, e)) < 0 || (rc = aconf_central(cf, c, e)) < 0 ||
	    (rc = aconf_local(cf, c, e)) < 0 || (rc = aconf_receipt(cf, c, e)) < 0)
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

int aconf_load(const char *path, struct aconf **out, pos_err *e)
{
	struct cfg *cf = NULL;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "config: no output");
	*out = NULL;
	if (!path || !*path)
		return err_set(e, POS_EINVAL, "config: no file given");
	if ((rc = cfg_load(path, &cf, e)) < 0)
		return rc;
	rc = aconf_from_cfg(cf, path, out, e);
	cfg_free(cf);
	return rc;
}

int aconf_load_string(const char *text, size_t len, const char *name, const char *dir,
		      struct aconf **out, pos_err *e)
{
	struct cfg *cf = NULL;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "config: no output");
	*out = NULL;
	if ((rc = cfg_load_string(text, len, name, dir, &cf, e)) < 0)
		return rc;
	rc = aconf_from_cfg(cf, name ? name : "<config>", out, e);
	cfg_free(cf);
	return rc;
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
