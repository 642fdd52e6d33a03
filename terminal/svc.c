#include "svc.h"

#include <signal.h>
#include <stdlib.h>

#include "log.h"
#include "sdnotify.h"

struct svc {
	struct event *hup;
	struct event *watchdog;
	void (*reload)(void *arg);
	void *arg;
};

/* Each failure is logged once, when it happens: the unit still runs. */
static void svc_notify(const char *state)
{
	pos_err e = { 0 };

	if (sdnotify_send(state, &e) < 0)
		log_warn("sd_notify_failed", "state=%s error=\"%s\"", state, e.msg);
}

static void svc_on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct svc *s = arg;

	(void)sig;
	(void)what;
	svc_notify("RELOADING=1");
	log_info("reload", "signal=HUP");
	if (s->reload)
		s->reload(s->arg);
	svc_notify("READY=1");
}

static void svc_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	svc_notify("WATCHDOG=1");
}

int svc_start(struct event_base *base, void (*reload)(void *arg), void *arg, struct svc **out,
	      pos_err *e)
{
	struct svc *s;
	uint64_t wd = sdnotify_watchdog_usec();

	*out = NULL;
	s = calloc(1, sizeof *s);
	if (!s)
		return err_set(e, POS_ENOMEM, "out of memory");
	s->reload = reload;
	s->arg = arg;
	s->hup = evsignal_new(base, SIGHUP, svc_on_hup, s);
	if (!s->hup || evsignal_add(s->hup, NULL) != 0)
		goto fail;
	if (wd > 0) {
		struct timeval tv = { (time_t)(wd / 2 / 1000000), (suseconds_t)(wd / 2 % 1000000) };

		s->watchdog = event_new(base, -1, EV_PERSIST, svc_on_watchdog, s);
		if (!s->watchdog || event_add(s->watchdog, &tv) != 0)
			goto fail;
	}
	svc_notify("READY=1");
	if (wd > 0)
		svc_notify("WATCHDOG=1");
	*out = s;
	return 0;
fail:
	if (s->hup)
		event_free(s->hup);
	if (s->watchdog)
		event_free(s->watchdog);
	free(s);
	return err_set(e, POS_ENOMEM, "cannot set up SIGHUP and the watchdog timer");
}

void svc_free(struct svc *s)
{
	if (!s)
		return;
	svc_notify("STOPPING=1");
	if (s->hup)
		event_free(s->hup);
	if (s->watchdog)
		event_free(s->watchdog);
	free(s);
}
