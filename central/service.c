#include "service.h"

#include <stdlib.h>
#include <string.h>

#include "cconf.h"
#include "keyring.h"
#include "log.h"
#include "pki.h"
#include "sdnotify.h"
#include "tls.h"

void service_notify(const char *state)
{
	pos_err e = { 0 };

	if (sdnotify_send(state, &e) < 0)
		log_warn("sd_notify_failed", "state=%s error=\"%s\"", state, e.msg);
}

bool service_watchdog_on(void)
{
	return sdnotify_watchdog_usec() > 0;
}

void service_reload_log_level(const char *conf_path)
{
	struct cconf *c = calloc(1, sizeof *c); /* large: not on the stack */
	pos_err e = { 0 };
	char q[300];
	int level;

	if (!c) {
		log_error("reload_failed", "error=\"out of memory\"");
		return;
	}
	if (cconf_load(conf_path, c, &e) < 0) {
		log_error("reload_failed", "error=%s (the running log level stays)",
			  log_q(q, sizeof q, e.msg));
		goto out;
	}
	level = log_level_parse(c->log_level);
	if (level >= 0)
		log_set_level((enum log_level)level);
	log_info("reloaded", "log_level=%s", c->log_level);
out:
	free(c);
}

void service_reload(const struct cconf *c, struct tls *tls, struct keyring *tokens)
{
	char q[300], serial[PKI_SERIAL_HEX];
	pos_err e = { 0 };
	bool changed = false;

	service_reload_log_level(c->path);
	if (tokens) {
		if (keyring_reload_tokens(tokens, c, &changed, &e) < 0)
			log_error("tokens_reload_failed", "error=%s (the tokens in use stay)",
				  log_q(q, sizeof q, e.msg));
		else
			log_info("tokens_reloaded", "changed=%s", changed ? "yes" : "no");
	}
	if (tls) {
		memset(&e, 0, sizeof e);
		if (tls_reload_cert(tls, c, serial, sizeof serial, &e) < 0)
			log_error("certificate_reload_failed",
				  "error=%s (the certificate in use stays)", log_q(q, sizeof q, e.msg));
		else
			log_info("certificate_reloaded", "file=%s serial=%s", c->tls_cert, serial);
	}
}
