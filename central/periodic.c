#include "periodic.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct periodic {
	periodic_fn fn;
	void *arg;
	long first_ms, every_ms;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	bool stop;         /* guarded by mu */
	bool woken;        /* guarded by mu: a wake not yet answered by a run */
};

static bool pd_stopping(struct periodic *p)
{
	bool stop;

	pthread_mutex_lock(&p->mu);
	stop = p->stop;
	pthread_mutex_unlock(&p->mu);
	return stop;
}

/* Sleeps ms from now, or until a wake or stop; true to run, false to end.
 * A wake that came while fn ran is found here before any wait. */
static bool pd_wait(struct periodic *p, long ms)
{
	struct timespec due;
	bool run;

	clock_gettime(CLOCK_MONOTONIC, &due);
	due.tv_sec += ms / 1000;
	due.tv_nsec += (ms % 1000) * 1000000L;
	if (due.tv_nsec >= 1000000000L) {
		due.tv_sec++;
		due.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->mu);
	/* 0 is a signal or a spurious return: look again; ETIMEDOUT is due. */
	while (!p->stop && !p->woken && pthread_cond_timedwait(&p->cv, &p->mu, &due) == 0)
		;
	p->woken = false;
	run = !p->stop;
	pthread_mutex_unlock(&p->mu);
	return run;
}

static void *pd_main(void *arg)
{
	struct periodic *p = arg;
	long ms = p->first_ms;

	while (pd_wait(p, ms)) {
		while (p->fn(p->arg) > 0 && !pd_stopping(p))
			;
		ms = p->every_ms;
	}
	return NULL;
}

int periodic_start(long first_ms, long every_ms, periodic_fn fn, void *arg,
		   struct periodic **out, pos_err *e)
{
	struct periodic *p = NULL;
	pthread_condattr_t ca;
	bool cv = false;
	int rc;

	*out = NULL;
	if (first_ms < 0 || every_ms < 1 || !fn)
		return err_set(e, POS_EINVAL,
			       "a loop's first_ms must be >= 0 and every_ms >= 1 (%ld, %ld)",
			       first_ms, every_ms);
	if (!(p = calloc(1, sizeof *p)) || pthread_condattr_init(&ca) != 0) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	p->fn = fn;
	p->arg = arg;
	p->first_ms = first_ms;
	p->every_ms = every_ms;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	cv = pthread_cond_init(&p->cv, &ca) == 0;
	pthread_condattr_destroy(&ca);
	if (!cv) {
		rc = err_set(e, POS_ENOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_init(&p->mu, NULL);
	if (pthread_create(&p->th, NULL, pd_main, p) != 0) {
		rc = err_set(e, POS_ENOMEM, "cannot start a thread");
		goto out;
	}
	*out = p;
	return 0;
out:
	if (cv) {
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
	}
	free(p);
	return rc;
}

/* Sets *flag (stop or woken) and ends the thread's wait. */
static void pd_tell(struct periodic *p, bool *flag)
{
	pthread_mutex_lock(&p->mu);
	*flag = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void periodic_wake(struct periodic *p)
{
	if (p)
		pd_tell(p, &p->woken);
}

void periodic_stop(struct periodic *p)
{
	if (!p)
		return;
	pd_tell(p, &p->stop);
	pthread_join(p->th, NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
