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
 */
#include <stddef.h>

#include "err.h"
#include "store.h"

#define INGEST_GROUP_MAX 2000 /* baskets per commit (a job is never split) */

struct ingest;

struct ingest_job {
	/* Filled by the submitter; owned by it, untouched until done runs. */
	const struct store_basket *baskets;
	size_t n;
	enum store_put_result *results; /* n entries, written by the writer */
	void (*done)(struct ingest_job *job); /* called on the writer thread */
	void *arg;
	/* Filled by the writer before done: 0 when committed, else the error. */
	int rc;
	pos_err err;
	struct ingest_job *next; /* the writer's queue */
};

/* Opens the writer's store connection on db_path and starts the thread.
 * *out: ingest_stop then ingest_free. */
int ingest_start(const char *db_path, struct ingest **out, pos_err *e);
/* Queues a job; done will run exactly once, on the writer thread. Fails
 * (POS_EAGAIN) once stopping, and then done never runs. */
int ingest_submit(struct ingest *ig, struct ingest_job *job, pos_err *e);
/* Commits everything queued, then ends the thread. */
void ingest_stop(struct ingest *ig);
void ingest_free(struct ingest *ig);

#endif
