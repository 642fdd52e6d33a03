#include "service.h"

#include <stdlib.h>

#include "cconf.h"
#include "log.h"
#include "sdnotify.h"

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
