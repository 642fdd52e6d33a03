/* ingest: an operation job runs on the writer, in the group's transaction,
 * and hands back its own result; a refused operation fails no one else;
 * the periodic task runs on the writer thread, again at once while it says
 * more is left. Real store files in a mkdtemp() folder. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "offers.h"
#include "store.h"

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	pthread_t writer;
};

static void job_done(struct ingest_job *job)
{
	struct waiter *w = job->arg;

	pthread_mutex_lock(&w->mu);
	w->done++;
	w->writer = pthread_self();
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void wait_for(struct waiter *w, int n)
{
	pthread_mutex_lock(&w->mu);
	while (w->done < n)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

struct reg_job {
	struct ingest_job job;
	char token[OFFERS_TOKEN_LEN + 1];
};

static int op_register_into(struct store *s, struct ingest_job *job, pos_err *e)
{
	struct reg_job *r = (struct reg_job *)(void *)job;

	return offers_device_register(s, 1000, 2, r->token, e);
}

static void operations_commit_with_the_group_and_answer_each(void **st)
{
	char dir[] = "/tmp/test_ingest_XXXXXX", db[128];
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	struct reg_job r[3];
	struct ingest *ig = NULL;
	struct store *s = NULL;
	int64_t dev;
	long unused = -1;
	pos_err e = { 0 };

	(void)st;
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof db, "%s/central.db", dir);
	assert_int_equal(ingest_start(db, &ig, &e), 0);
	memset(r, 0, sizeof r);
	for (int i = 0; i < 3; i++) {
		r[i].job.kind = INGEST_OP;
		r[i].job.op = op_register_into;
		r[i].job.done = job_done;
		r[i].job.arg = &w;
		r[i].job.rc = -99;
		assert_int_equal(ingest_submit(ig, &r[i].job, &e), 0);
	}
	wait_for(&w, 3);
	assert_false(pthread_equal(w.writer, pthread_self()));
	/* The cap is 2: the third is refused, by itself; the group commits. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(r[i].job.rc, 0);
	assert_int_equal(r[0].job.op_rc, 0);
	assert_int_equal(r[1].job.op_rc, 0);
	assert_int_equal(r[2].job.op_rc, POS_ETOOBIG);
	ingest_free(ig);

	assert_int_equal(store_open(db, &s, &e), 0);
	assert_int_equal(store_device_unused(s, &unused, &e), 0);
	assert_int_equal(unused, 2);
	assert_int_equal(offers_device_auth(s, r[0].token, OFFERS_TOKEN_LEN, &dev, NULL, &e), 0);
	assert_int_equal(offers_device_auth(s, r[1].token, OFFERS_TOKEN_LEN, &dev, NULL, &e), 0);
	store_close(s);
	snprintf(db, sizeof db, "rm -rf %s", dir);
	assert_int_equal(system(db), 0);
}

struct ticker {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int runs;
	int more; /* runs still to answer "more" */
	bool on_caller;
};

static pthread_t test_thread;

static int tick(struct store *s, void *arg)
{
	struct ticker *t = arg;
	int more;

	(void)s;
	pthread_mutex_lock(&t->mu);
	t->runs++;
	t->on_caller |= pthread_equal(pthread_self(), test_thread) != 0;
	more = t->more > 0;
	if (t->more > 0)
		t->more--;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return more;
}

static void the_periodic_task_runs_on_the_writer_and_again_while_more_is_left(void **st)
{
	char dir[] = "/tmp/test_ingest_XXXXXX", db[128];
	struct ticker t = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 3, false };
	struct ingest *ig = NULL;
	pos_err e = { 0 };

	(void)st;
	test_thread = pthread_self();
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof db, "%s/central.db", dir);
	assert_int_equal(ingest_start(db, &ig, &e), 0);
	/* Every 10 ms; three runs say more is left, so five runs need far
	 * fewer than five periods, but no timing is asserted: only that the
	 * task keeps running. */
	ingest_every(ig, 10, tick, &t);
	pthread_mutex_lock(&t.mu);
	while (t.runs < 6)
		pthread_cond_wait(&t.cv, &t.mu);
	pthread_mutex_unlock(&t.mu);
	ingest_free(ig);
	assert_false(t.on_caller);
	assert_int_equal(t.more, 0);
	snprintf(db, sizeof db, "rm -rf %s", dir);
	assert_int_equal(system(db), 0);
}

/* Two tasks: one always with more left (a long backlog) does not keep the
 * other from running when it is due. */
static void two_periodic_tasks_both_run_though_one_always_has_more(void **st)
{
	char dir[] = "/tmp/test_ingest_XXXXXX", db[128];
	struct ticker busy = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 1 << 30,
			       false };
	struct ticker t = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, false };
	struct ingest *ig = NULL;
	pos_err e = { 0 };

	(void)st;
	test_thread = pthread_self();
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof db, "%s/central.db", dir);
	assert_int_equal(ingest_start(db, &ig, &e), 0);
	ingest_every(ig, 10, tick, &busy);
	ingest_every(ig, 10, tick, &t);
	pthread_mutex_lock(&t.mu);
	while (t.runs < 3)
		pthread_cond_wait(&t.cv, &t.mu);
	pthread_mutex_unlock(&t.mu);
	ingest_free(ig);
	assert_false(t.on_caller);
	assert_true(busy.runs > 0);
	snprintf(db, sizeof db, "rm -rf %s", dir);
	assert_int_equal(system(db), 0);
}

/* A writer that never runs dry: every job goes back in the queue as soon
 * as its group commits, so no commit ever begins with the WAL copied by
 * the checkpointer alone. */
#define FLOW_JOBS 32
#define FLOW_ITEMS 10
#define FLOW_BASKETS 24000L

struct flow {
	struct ingest *ig;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long submitted, done, failed;
	struct flow_job {
		struct ingest_job job;
		struct store_basket b;
		enum store_put_result result;
		struct store_item items[FLOW_ITEMS];
		struct flow *f;
	} jobs[FLOW_JOBS];
};

static void flow_done(struct ingest_job *job);

/* Called with f->mu held. */
static void flow_submit(struct flow *f, struct flow_job *j)
{
	pos_err e = { 0 };

	snprintf(j->b.txn, sizeof j->b.txn, "01890000-0000-7000-8000-%012lx", f->submitted++);
	j->b.ts_ms = 1700000000000LL + f->submitted;
	memset(&j->job, 0, sizeof j->job);
	j->job.kind = INGEST_BASKETS;
	j->job.baskets = &j->b;
	j->job.n = 1;
	j->job.results = &j->result;
	j->job.done = flow_done;
	j->job.arg = j;
	if (ingest_submit(f->ig, &j->job, &e) < 0)
		f->failed++;
}

static void flow_done(struct ingest_job *job)
{
	struct flow_job *j = job->arg;
	struct flow *f = j->f;

	pthread_mutex_lock(&f->mu);
	f->done++;
	if (job->rc < 0 || j->result != STORE_PUT_CREATED)
		f->failed++;
	if (f->submitted < FLOW_BASKETS)
		flow_submit(f, j);
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static long file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (long)sb.st_size : 0;
}

static void the_wal_starts_over_though_the_writer_never_runs_dry(void **st)
{
	char dir[] = "/tmp/test_ingest_XXXXXX", db[128], wal[160];
	static struct flow f = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	/* Each frame is a 4 KiB page and its 24-byte header. Past
	 * INGEST_WAL_MAX a few groups more may go by while a checkpointer's
	 * pass ends; a WAL that never started over would pass this bound many
	 * times (FLOW_BASKETS write about 7 x INGEST_WAL_MAX frames). */
	const long bound = 2L * INGEST_WAL_MAX * (4096 + 24) + 32;
	long biggest = 0;
	struct store_stats stats;
	struct store *s = NULL;
	pos_err e = { 0 };

	(void)st;
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof db, "%s/central.db", dir);
	snprintf(wal, sizeof wal, "%s-wal", db);
	assert_int_equal(ingest_start(db, &f.ig, &e), 0);
	pthread_mutex_lock(&f.mu);
	for (int i = 0; i < FLOW_JOBS; i++) {
		struct flow_job *j = &f.jobs[i];

		j->f = &f;
		snprintf(j->b.store, sizeof j->b.store, "S1");
		snprintf(j->b.terminal, sizeof j->b.terminal, "T1");
		j->b.items = j->items;
		j->b.n_items = FLOW_ITEMS;
		for (int k = 0; k < FLOW_ITEMS; k++) {
			snprintf(j->items[k].gtin, sizeof j->items[k].gtin, "0%012d%d", i * 100 + k, 0);
			j->items[k].qty = 1;
			j->items[k].price_cents = 100 + k;
		}
		flow_submit(&f, j);
	}
	while (f.done < FLOW_BASKETS) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 2000000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&f.cv, &f.mu, &ts);
		if (file_size(wal) > biggest)
			biggest = file_size(wal);
	}
	pthread_mutex_unlock(&f.mu);
	ingest_free(f.ig);
	assert_int_equal(f.failed, 0);
	print_message("WAL at most %ld KiB over %ld baskets\n", biggest / 1024, FLOW_BASKETS);
	assert_true(biggest > 0);
	assert_true(biggest <= bound);

	assert_int_equal(store_open(db, &s, &e), 0);
	assert_int_equal(store_stats(s, &stats, &e), 0);
	assert_int_equal(stats.baskets, FLOW_BASKETS);
	assert_int_equal(stats.items, FLOW_BASKETS * FLOW_ITEMS);
	store_close(s);
	snprintf(db, sizeof db, "rm -rf %s", dir);
	assert_int_equal(system(db), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(operations_commit_with_the_group_and_answer_each),
		cmocka_unit_test(the_periodic_task_runs_on_the_writer_and_again_while_more_is_left),
		cmocka_unit_test(two_periodic_tasks_both_run_though_one_always_has_more),
		cmocka_unit_test(the_wal_starts_over_though_the_writer_never_runs_dry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
