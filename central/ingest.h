#ifndef POS_INGEST_H
#define POS_INGEST_H
/*
 * The basket writer: one thread with its own store connection. Requests
 * hand it jobs (one basket, or a batch's valid ones); it takes every job
 * queued while the previous commit ran and stores them all in one
 * store_put_baskets transaction (group commit), then completes each job.
 * A basket is acknowledged only after that commit: "persist before you
 * reply", at the speed of batched commits. When a group fails, its jobs
 * are retried one by one, so one job that cannot commit does not fail
 * others that arrived with it.
 *
 * Besides baskets a job can carry an operation (INGEST_OP): a write that
 * a public route triggers (a device registration, an offer acceptance).
 * It runs on the writer thread, against the writer's connection, inside
 * the same group transaction as the baskets, so such writes cost no fsync
 * of their own and never block a worker's event loop.
 *
 * Between groups the writer can run periodic tasks (ingest_every), such
 * as removing expired rows, off the workers' loops.
 */
#include <stddef.h>

#include "err.h"
#include "store.h"

#define INGEST_GROUP_MAX 2000 /* baskets (or operations) per commit (a job is never split) */
#define INGEST_TICKS_MAX 4    /* periodic tasks (ingest_every) */
/* On SQLite the WAL starts over soon after INGEST_WAL_FRAMES frames (16 MB
 * of 4 KiB pages), and at the latest once past INGEST_WAL_MAX, as soon as
 * no checkpoint is running. */
#define INGEST_WAL_FRAMES 4000
#define INGEST_WAL_MAX (4 * INGEST_WAL_FRAMES)

struct ingest;

enum ingest_kind { INGEST_BASKETS = 0, INGEST_OP };

struct ingest_job {
	/* Filled by the submitter; owned by it, untouched until done runs. */
	enum ingest_kind kind;
	const struct store_basket *baskets; /* INGEST_BASKETS */
	size_t n;
	enum store_put_result *results; /* n entries, written by the writer */
	/* INGEST_OP: runs inside the group's transaction; its result goes to
	 * op_rc and op_err. On failure it must leave nothing written (each
	 * store call undoes itself). It may run again, alone, when the group
	 * fails to commit. */
	int (*op)(struct store *s, struct ingest_job *job, pos_err *e);
	/* INGEST_BASKETS, optional: runs first in the group's transaction and
	 * may complete the job's baskets (the household of a basket whose TID
	 * none held yet is enrolled here, not on a worker's loop). Its failure
	 * fails the group, which is then retried job by job. */
	int (*prepare)(struct store *s, struct ingest_job *job, pos_err *e);
	int op_rc;
	pos_err op_err;
	void (*done)(struct ingest_job *job); /* called on the writer thread */
	void *arg;
	/* Filled by the writer before done: 0 when committed, else the error
	 * (then nothing of the job was stored and op_rc means nothing). */
	int rc;
	pos_err err;
	struct ingest_job *next; /* the writer's queue */
};

/* Opens the writer's store connections where w says (read-write) and
 * starts the thread. *out: ingest_stop then ingest_free. */
int ingest_start_at(const struct store_where *w, struct ingest **out, pos_err *e);
/* ingest_start_at on the SQLite file db_path. */
int ingest_start(const char *db_path, struct ingest **out, pos_err *e);
/* Queues a job; done will run exactly once, on the writer thread. Fails
 * (POS_EAGAIN) once stopping, and then done never runs. */
int ingest_submit(struct ingest *ig, struct ingest_job *job, pos_err *e);
/* fn runs on the writer thread with the writer's connection, outside any
 * transaction, every interval_ms (the first one interval after this
 * call), before the next group when it is due. A return > 0 means more is
 * left: it runs again as soon as no job waits. Call once per task (up to
 * INGEST_TICKS_MAX; one past it is not kept), before jobs. */
void ingest_every(struct ingest *ig, long interval_ms, int (*fn)(struct store *s, void *arg),
		  void *arg);
/* Commits everything queued, then ends the thread. */
void ingest_stop(struct ingest *ig);
void ingest_free(struct ingest *ig);

#endif
