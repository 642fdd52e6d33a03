#include "ingest.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "offers.h"
#include "timeutil.h"

/* How often the checkpointer looks for new commits to copy into the
 * database file: the WAL stays a few MB at full ingest rate. */
#define INGEST_CKPT_MS 100L
/*
 * SQLite starts the WAL from the beginning again only when a write
 * begins with every frame copied, which the checkpointer alone never
 * sees while the writer keeps appending. So past INGEST_WAL_FRAMES the
 * checkpointer copies pass after pass, each shorter than the last, and
 * once a pass leaves no more behind than INGEST_WAL_TAIL frames or the
 * last group wrote, the writer copies those itself after answering its
 * group: its next commit restarts the WAL. Copying the whole lag on the
 * writer instead stalled every commit queued behind it for 10-25 ms. At
 * INGEST_WAL_MAX (a checkpointer that cannot catch up) the writer copies
 * whatever is left.
 */
#define INGEST_WAL_TAIL 600

struct ingest {
	struct store *store;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ingest_job *head, *tail; /* guarded by mu */
	bool stopping;                  /* guarded by mu */
	/* The checkpointer: its own connection, so commits never pay for
	 * copying the WAL into the database file. */
	struct store *ckpt;
	pthread_t ckpt_thread;
	bool ckpt_started;
	pthread_cond_t ckpt_cv;   /* signalled on stop, and to catch up */
	unsigned long commits;    /* guarded by mu: groups committed */
	/* Guarded by mu: the WAL is past INGEST_WAL_FRAMES; what the
	 * checkpointer's last pass left (valid while restarts is as it was
	 * when the pass began); the writer's count of WAL restarts. */
	bool catch_up;
	struct store_wal last_pass;
	unsigned long pass_restarts, restarts;
	int writer_frames; /* the writer's own: frames after its last commit */
	/* The periodic tasks (ingest_every); guarded by mu. */
	struct ingest_tick {
		int (*fn)(struct store *s, void *arg);
		void *arg;
		long ms;
		int64_t next_ms; /* monotonic */
		bool more;
	} ticks[INGEST_TICKS_MAX];
	size_t nticks;
	/* The writer's scratch space for one group, grown as needed. */
	struct store_basket *group;
	enum store_put_result *results;
	size_t cap;
};

static int ingest_reserve(struct ingest *ig, size_t n, pos_err *e)
{
	struct store_basket *g;
	enum store_put_result *r;

	if (n <= ig->cap)
		return 0;
	g = realloc(ig->group, n * sizeof *g);
	if (!g)
		return err_set(e, POS_ENOMEM, "ingest: out of memory for %zu baskets", n);
	ig->group = g;
	r = realloc(ig->results, n * sizeof *r);
	if (!r)
		return err_set(e, POS_ENOMEM, "ingest: out of memory for %zu baskets", n);
	ig->results = r;
	ig->cap = n;
	return 0;
}

/* A job's share of a group's INGEST_GROUP_MAX. */
static size_t ingest_weight(const struct ingest_job *j)
{
	return j->kind == INGEST_OP ? 1 : j->n;
}

/* Copies the baskets of jobs [first, end) into the group, in order. */
static void ingest_gather(struct ingest *ig, struct ingest_job *first, struct ingest_job *end)
{
	size_t off = 0;

	for (struct ingest_job *j = first; j != end; j = j->next) {
		if (j->kind == INGEST_OP)
			continue;
		memcpy(ig->group + off, j->baskets, j->n * sizeof *j->baskets);
		off += j->n;
	}
}

/* Commits jobs [first, end) in one transaction; on success copies each
 * job's results. A job's prepare runs first; operations run after the baskets, each undoing itself
 * when it fails, so one refused registration fails no one else. */
static int ingest_commit(struct ingest *ig, struct ingest_job *first, struct ingest_job *end,
			 pos_err *e)
{
	size_t total = 0, off = 0, ops = 0;
	int rc;

	for (struct ingest_job *j = first; j != end; j = j->next) {
		if (j->kind == INGEST_OP || j->prepare)
			ops++; /* needs the group's own transaction */
		if (j->kind != INGEST_OP)
			total += j->n;
	}
	if (total == 0 && ops == 0)
		return 0;
	if ((rc = ingest_reserve(ig, total, e)) < 0)
		return rc;
	if (ops == 0) {
		ingest_gather(ig, first, end);
		if ((rc = store_put_baskets(ig->store, ig->group, total, ig->results, e)) < 0)
			return rc;
	} else {
		if ((rc = store_begin(ig->store, e)) < 0)
			return rc;
		for (struct ingest_job *j = first; j != end; j = j->next)
			if (j->kind != INGEST_OP && j->prepare && (rc = j->prepare(ig->store, j, e)) < 0) {
				store_rollback(ig->store);
				return rc;
			}
		ingest_gather(ig, first, end);
		if ((rc = store_put_baskets(ig->store, ig->group, total, ig->results, e)) < 0) {
			store_rollback(ig->store);
			return rc;
		}
		for (struct ingest_job *j = first; j != end; j = j->next) {
			if (j->kind != INGEST_OP)
				continue;
			memset(&j->op_err, 0, sizeof j->op_err);
			j->op_rc = j->op(ig->store, j, &j->op_err);
			/* An op whose failure ended the whole transaction: the
			 * ops after it must not run on their own; the group fails
			 * and is retried job by job. */
			if (!store_in_txn(ig->store)) {
				store_rollback(ig->store);
				return err_set(e, POS_EDB, "the group's transaction ended: %s",
					       j->op_err.msg);
			}
		}
		if ((rc = store_commit(ig->store, e)) < 0)
			return rc;
	}
	off = 0;
	for (struct ingest_job *j = first; j != end; j = j->next) {
		if (j->kind == INGEST_OP)
			continue;
		memcpy(j->results, ig->results + off, j->n * sizeof *j->results);
		off += j->n;
	}
	return 0;
}

static void ingest_finish(struct ingest_job *first, struct ingest_job *end, int rc,
			  const pos_err *e)
{
	struct ingest_job *j = first, *next;

	while (j != end) {
		next = j->next; /* done may free the job */
		j->rc = rc;
		if (rc < 0 && e)
			j->err = *e;
		j->done(j);
		j = next;
	}
}

/* Frames the checkpointer has not copied, as far as the writer knows:
 * all of them when its last pass saw another WAL. Called with mu held. */
static int ingest_wal_behind(const struct ingest *ig, int frames)
{
	const struct store_wal *p = &ig->last_pass;

	if (ig->pass_restarts != ig->restarts || p->copied < 0 || p->frames > frames)
		return frames;
	return frames - p->copied;
}

/* After each group: see INGEST_WAL_FRAMES. */
static void ingest_wal_check(struct ingest *ig)
{
	int frames = store_wal_frames(ig->store), group, tail;
	pos_err e = { 0 };
	bool copy;

	pthread_mutex_lock(&ig->mu);
	if (frames < ig->writer_frames)
		ig->restarts++;
	group = frames >= ig->writer_frames ? frames - ig->writer_frames : frames;
	tail = group > INGEST_WAL_TAIL ? group : INGEST_WAL_TAIL;
	ig->writer_frames = frames;
	copy = frames >= INGEST_WAL_FRAMES &&
	       (ingest_wal_behind(ig, frames) <= tail || frames >= INGEST_WAL_MAX);
	ig->catch_up = frames >= INGEST_WAL_FRAMES && !copy;
	if (ig->catch_up)
		pthread_cond_signal(&ig->ckpt_cv);
	pthread_mutex_unlock(&ig->mu);
	if (copy && store_checkpoint(ig->store, NULL, &e) < 0)
		log_warn("checkpoint_failed", "code=%s", err_name(e.code));
}

static void ingest_run_group(struct ingest *ig, struct ingest_job *first, struct ingest_job *end)
{
	pos_err e = { 0 };
	int rc;

	rc = ingest_commit(ig, first, end, &e);
	if (rc == 0) {
		pthread_mutex_lock(&ig->mu);
		ig->commits++;
		pthread_mutex_unlock(&ig->mu);
	}
	if (rc == 0 || first->next == end) {
		if (rc < 0)
			log_error("ingest_failed", "baskets=%zu code=%s", ingest_weight(first),
				  err_name(rc));
		ingest_finish(first, end, rc, &e);
		ingest_wal_check(ig);
		return;
	}
	log_warn("ingest_group_failed", "code=%s retry=each", err_name(rc));
	for (struct ingest_job *j = first, *next; j != end; j = next) {
		next = j->next;
		rc = ingest_commit(ig, j, next, &e);
		if (rc < 0)
			log_error("ingest_failed", "baskets=%zu code=%s", ingest_weight(j),
				  err_name(rc));
		ingest_finish(j, next, rc, &e);
	}
	ingest_wal_check(ig);
}

static void ingest_abstime(struct timespec *ts, int64_t mono_ms)
{
	ts->tv_sec = (time_t)(mono_ms / 1000);
	ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

/* Called with mu held: the task to run now (due, or with more left and
 * no job waiting), else NULL. */
static struct ingest_tick *ingest_tick_due(struct ingest *ig, int64_t now_ms)
{
	if (ig->stopping)
		return NULL;
	/* A due task first, so one with a long backlog delays no other. */
	for (size_t i = 0; i < ig->nticks; i++)
		if (now_ms >= ig->ticks[i].next_ms)
			return &ig->ticks[i];
	for (size_t i = 0; i < ig->nticks && !ig->head; i++)
		if (ig->ticks[i].more)
			return &ig->ticks[i];
	return NULL;
}

/* Called with mu held: the earliest time a task is due. */
static int64_t ingest_tick_next(const struct ingest *ig)
{
	int64_t next = ig->ticks[0].next_ms;

	for (size_t i = 1; i < ig->nticks; i++)
		if (ig->ticks[i].next_ms < next)
			next = ig->ticks[i].next_ms;
	return next;
}

/* Called with mu held; runs the task with mu released. */
static void ingest_run_tick(struct ingest *ig, struct ingest_tick *t)
{
	int (*fn)(struct store *, void *) = t->fn;
	void *arg = t->arg;
	int more;

	pthread_mutex_unlock(&ig->mu);
	more = fn(ig->store, arg);
	pthread_mutex_lock(&ig->mu);
	t->more = more > 0;
	t->next_ms = time_mono_us() / 1000 + t->ms;
	ig->commits++; /* the checkpointer copies what it wrote */
}

static void *ingest_thread(void *arg)
{
	struct ingest *ig = arg;

	for (;;) {
		struct ingest_job *first, *end;
		size_t n = 0;

		pthread_mutex_lock(&ig->mu);
		for (;;) {
			int64_t now_ms = time_mono_us() / 1000;
			struct ingest_tick *t = ingest_tick_due(ig, now_ms);
			struct timespec ts;

			if (t) {
				ingest_run_tick(ig, t);
				continue;
			}
			if (ig->head || ig->stopping)
				break;
			if (!ig->nticks) {
				pthread_cond_wait(&ig->cv, &ig->mu);
				continue;
			}
			ingest_abstime(&ts, ingest_tick_next(ig));
			pthread_cond_timedwait(&ig->cv, &ig->mu, &ts);
		}
		if (!ig->head) {
			pthread_mutex_unlock(&ig->mu);
			break;
		}
		/* Everything queued while the last commit ran, up to the cap. */
		first = ig->head;
		end = first;
		do {
			n += ingest_weight(end);
			end = end->next;
		} while (end && n + ingest_weight(end) <= INGEST_GROUP_MAX);
		ig->head = end;
		if (!end)
			ig->tail = NULL;
		pthread_mutex_unlock(&ig->mu);
		ingest_run_group(ig, first, end);
	}
	return NULL;
}

/* Called with mu held: sleeps until a pass is due, at once while catching
 * up, else every INGEST_CKPT_MS if anything was committed. False on stop. */
static bool ingest_ckpt_wait(struct ingest *ig, unsigned long seen)
{
	while (!ig->stopping) {
		struct timespec ts;

		if (ig->commits != seen && ig->catch_up)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += INGEST_CKPT_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&ig->ckpt_cv, &ig->mu, &ts) == ETIMEDOUT &&
		    ig->commits != seen)
			return !ig->stopping;
	}
	return false;
}

/* Every INGEST_CKPT_MS while baskets arrive, and pass after pass while the
 * WAL is past INGEST_WAL_FRAMES, a passive checkpoint from the
 * checkpointer's connection, on the other core while the writer goes on
 * committing. */
static void *ingest_ckpt_thread(void *arg)
{
	struct ingest *ig = arg;
	unsigned long seen = 0, restarts;
	struct store_wal w;

	pthread_mutex_lock(&ig->mu);
	while (ingest_ckpt_wait(ig, seen)) {
		pos_err e = { 0 };

		seen = ig->commits;
		restarts = ig->restarts;
		pthread_mutex_unlock(&ig->mu);
		if (store_checkpoint(ig->ckpt, &w, &e) < 0)
			log_warn("checkpoint_failed", "code=%s", err_name(e.code));
		pthread_mutex_lock(&ig->mu);
		ig->last_pass = w;
		ig->pass_restarts = restarts;
	}
	pthread_mutex_unlock(&ig->mu);
	return NULL;
}

int ingest_start(const char *db_path, struct ingest **out, pos_err *e)
{
	struct store_where w = { .backend = STORE_SQLITE, .path = db_path };

	return ingest_start_at(&w, out, e);
}

int ingest_start_at(const struct store_where *w, struct ingest **out, pos_err *e)
{
	struct ingest *ig;
	int rc;

	*out = NULL;
	ig = calloc(1, sizeof *ig);
	if (!ig)
		return err_set(e, POS_ENOMEM, "ingest: out of memory");
	pthread_mutex_init(&ig->mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&ig->cv, &ca);
		pthread_cond_init(&ig->ckpt_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if ((rc = store_open_at(w, &ig->store, e)) < 0 ||
	    (rc = store_open_at(w, &ig->ckpt, e)) < 0 ||
	    (rc = store_ingest_tune(ig->store, e)) < 0)
		goto fail;
	/* The writer redeems the codes baskets carry, by the offers' rule. */
	store_set_offer_judge(ig->store, offer_verdict);
	if ((rc = ingest_reserve(ig, 64, e)) < 0)
		goto fail;
	if (pthread_create(&ig->thread, NULL, ingest_thread, ig) != 0) {
		rc = err_set(e, POS_ENOMEM, "ingest: cannot start the writer thread");
		goto fail;
	}
	ig->started = true;
	if (pthread_create(&ig->ckpt_thread, NULL, ingest_ckpt_thread, ig) != 0) {
		rc = err_set(e, POS_ENOMEM, "ingest: cannot start the checkpoint thread");
		goto fail;
	}
	ig->ckpt_started = true;
	*out = ig;
	return 0;
fail:
	ingest_free(ig);
	return rc;
}

int ingest_submit(struct ingest *ig, struct ingest_job *job, pos_err *e)
{
	job->next = NULL;
	job->rc = 0;
	memset(&job->err, 0, sizeof job->err);
	pthread_mutex_lock(&ig->mu);
	if (ig->stopping) {
		pthread_mutex_unlock(&ig->mu);
		return err_set(e, POS_EAGAIN, "central is shutting down");
	}
	if (ig->tail)
		ig->tail->next = job;
	else
		ig->head = job;
	ig->tail = job;
	pthread_cond_signal(&ig->cv);
	pthread_mutex_unlock(&ig->mu);
	return 0;
}

void ingest_every(struct ingest *ig, long interval_ms, int (*fn)(struct store *s, void *arg),
		  void *arg)
{
	struct ingest_tick *t;

	if (!ig || !fn || interval_ms < 1)
		return;
	pthread_mutex_lock(&ig->mu);
	if (ig->nticks < INGEST_TICKS_MAX) {
		t = &ig->ticks[ig->nticks++];
		t->fn = fn;
		t->arg = arg;
		t->ms = interval_ms;
		t->next_ms = time_mono_us() / 1000 + interval_ms;
		t->more = false;
	}
	pthread_cond_signal(&ig->cv);
	pthread_mutex_unlock(&ig->mu);
}

void ingest_stop(struct ingest *ig)
{
	if (!ig || !ig->started)
		return;
	pthread_mutex_lock(&ig->mu);
	ig->stopping = true;
	pthread_cond_signal(&ig->cv);
	pthread_cond_signal(&ig->ckpt_cv);
	pthread_mutex_unlock(&ig->mu);
	pthread_join(ig->thread, NULL);
	ig->started = false;
	if (ig->ckpt_started) {
		pthread_join(ig->ckpt_thread, NULL);
		ig->ckpt_started = false;
	}
}

void ingest_free(struct ingest *ig)
{
	if (!ig)
		return;
	ingest_stop(ig);
	store_close(ig->store);
	store_close(ig->ckpt);
	pthread_cond_destroy(&ig->cv);
	pthread_cond_destroy(&ig->ckpt_cv);
	pthread_mutex_destroy(&ig->mu);
	free(ig->group);
	free(ig->results);
	free(ig);
}
